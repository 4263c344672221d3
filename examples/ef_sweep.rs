//! How the HNSW search list `ef` was chosen by size: recall@10 of approximate search against
//! exact search for several `ef` at growing index sizes, on the suite's generated messages.
//!
//! ```sh
//! cargo run --release --example ef_sweep            # 25K to 400K
//! EF_SWEEP_MAX=1000000 cargo run --release --example ef_sweep
//! ```

use std::time::Instant;

use memory_bench::fixture;
use memory_core::index::vector::{VectorIndex, VectorIndexConfig};
use memory_core::EntryId;

const QUERIES: usize = 200;
const EFS: [usize; 8] = [32, 48, 64, 96, 128, 192, 256, 384];

fn main() {
    let max: usize = std::env::var("EF_SWEEP_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400_000);
    let started = Instant::now();
    let messages = fixture::workload().messages(max + QUERIES, 8, 0xef5);
    let dim = messages[0].embedding.len();
    eprintln!(
        "{} messages of {dim} dims in {:.1} s",
        messages.len(),
        started.elapsed().as_secs_f64()
    );
    let (corpus, queries) = messages.split_at(max);
    let mut index = VectorIndex::new(VectorIndexConfig::new(dim)).expect("config");
    let mut checkpoints: Vec<usize> = [25_000, 50_000, 100_000, 200_000, 400_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    if checkpoints.last() != Some(&max) {
        checkpoints.push(max);
    }
    println!(
        "{:>9} {}",
        "n",
        EFS.map(|ef| format!("ef={ef:<5}")).join(" ")
    );
    let mut inserted = 0;
    for n in checkpoints {
        let t = Instant::now();
        while inserted < n {
            index
                .insert(EntryId(inserted as u64 + 1), &corpus[inserted].embedding)
                .expect("insert");
            inserted += 1;
        }
        eprintln!("built to {n} in {:.1} s", t.elapsed().as_secs_f64());
        let truth: Vec<Vec<EntryId>> = queries
            .iter()
            .map(|q| {
                index
                    .search_exact(&q.embedding, 10, &|_| true)
                    .expect("exact")
                    .into_iter()
                    .map(|h| h.0)
                    .collect()
            })
            .collect();
        let mut row = Vec::new();
        for ef in EFS {
            index.set_ef_search(ef);
            let t = Instant::now();
            let mut hits = 0usize;
            let mut total = 0usize;
            for (q, want) in queries.iter().zip(&truth) {
                let got = index
                    .search_approx(&q.embedding, 10, &|_| true)
                    .expect("ann");
                hits += got.iter().filter(|h| want.contains(&h.0)).count();
                total += want.len();
            }
            let us = t.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
            row.push(format!(
                "{:.3}/{us:.0}us",
                hits as f64 / total.max(1) as f64
            ));
        }
        println!("{n:>9} {}", row.join(" "));
    }
}
