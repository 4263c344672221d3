//! How the HNSW search list `ef` was chosen by size: recall@10 of approximate search against
//! exact search for several `ef` at growing index sizes, on the suite's generated messages.
//!
//! ```sh
//! cargo run --release --example ef_sweep            # 25K to 400K
//! EF_SWEEP_MAX=1000000 cargo run --release --example ef_sweep
//! EF_SWEEP_CONSTRUCTION=64 EF_SWEEP_QUANTIZATION=int8 cargo run --release --example ef_sweep
//! ```
//!
//! `EF_SWEEP_CONSTRUCTION` sets the graph's `ef_construction` and `EF_SWEEP_QUANTIZATION`
//! (`f32`, `f16` or `int8`) the arena, to weigh build speed (printed per checkpoint, one thread)
//! against recall; `EF_SWEEP_LINK_WITH_CODES=0` builds the graph from the arena's rows instead of
//! int8 codes beside them. `EF_SWEEP_BUILD=backlog` builds as the store's linker does on a backlog:
//! every checkpoint's vectors stored unlinked, linked with the short candidate list by every
//! core (`link_parallel_quick`), then refined (`refine`); recall is printed for the graph
//! before and after the refinement. With it, `EF_SWEEP_THREADS` and `EF_SWEEP_BATCH` set the
//! linking threads (default: every core) and the vectors per parallel batch (default 32, the
//! store's), to weigh what parallel linking gains.

use std::time::Instant;

use memory_bench::fixture;
use memory_core::index::vector::{HnswParams, Quantization, VectorIndex, VectorIndexConfig};
use memory_core::EntryId;

const QUERIES: usize = 200;
const EFS: [usize; 8] = [32, 48, 64, 96, 128, 192, 256, 384];

/// A numeric setting from the environment, `default` when unset; exits on a malformed value.
fn setting(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Err(_) => default,
        Ok(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("{var}={s:?} is not a whole number");
            std::process::exit(2)
        }),
    }
}

fn main() {
    let max = setting("EF_SWEEP_MAX", 400_000);
    let started = Instant::now();
    let messages = fixture::workload().messages(max + QUERIES, 8, 0xef5);
    let dim = messages[0].embedding.len();
    eprintln!(
        "{} messages of {dim} dims in {:.1} s",
        messages.len(),
        started.elapsed().as_secs_f64()
    );
    let (corpus, queries) = messages.split_at(max);
    let mut config = VectorIndexConfig::new(dim);
    config.hnsw.ef_construction = setting("EF_SWEEP_CONSTRUCTION", config.hnsw.ef_construction);
    config.quantization = match std::env::var("EF_SWEEP_QUANTIZATION").as_deref() {
        Err(_) | Ok("f32") => Quantization::None,
        Ok("int8") => Quantization::Int8,
        Ok("f16") => Quantization::F16,
        Ok(other) => {
            eprintln!("EF_SWEEP_QUANTIZATION={other:?}: expected f32, f16 or int8");
            std::process::exit(2)
        }
    };
    config.link_with_codes = setting("EF_SWEEP_LINK_WITH_CODES", 1) != 0;
    eprintln!(
        "ef_construction {}, {:?} arena, linking with codes {}",
        config.hnsw.ef_construction, config.quantization, config.link_with_codes
    );
    let backlog = match std::env::var("EF_SWEEP_BUILD").as_deref() {
        Err(_) | Ok("serial") => false,
        Ok("backlog") => true,
        Ok(other) => {
            eprintln!("EF_SWEEP_BUILD={other:?}: expected serial or backlog");
            std::process::exit(2)
        }
    };
    let threads = setting(
        "EF_SWEEP_THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    // The store's linker links a backlog in batches of 32 (`PARALLEL_LINK_BATCH`).
    let batch = setting("EF_SWEEP_BATCH", 32);
    let mut index = VectorIndex::new(config).unwrap_or_else(|e| {
        eprintln!("bad index settings: {e}");
        std::process::exit(2)
    });
    let mut checkpoints: Vec<usize> = [25_000, 50_000, 100_000, 200_000, 400_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    if checkpoints.last() != Some(&max) {
        checkpoints.push(max);
    }
    println!(
        "{:>9} {}  default (the scaled ef of the store's own settings)",
        "n",
        EFS.map(|ef| format!("ef={ef:<5}")).join(" ")
    );
    let mut inserted = 0;
    for n in checkpoints {
        let (t, from) = (Instant::now(), inserted);
        if backlog {
            while inserted < n {
                index
                    .insert_unlinked(EntryId(inserted as u64 + 1), &corpus[inserted].embedding)
                    .expect("insert");
                inserted += 1;
            }
            // An empty graph is started by `link_next`; a batch of fewer than `min_len`
            // vectors keeps no graph at all (both then link nothing in parallel).
            while index.link_parallel_quick(threads, batch) > 0 || index.link_next() {}
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "linked to {n} in {secs:.1} s ({:.0} vectors/s, short list, {threads} threads)",
                (n - from) as f64 / secs
            );
            println!(
                "{n:>9} {}  (short list)",
                recall_row(&mut index, queries, n)
            );
            let t = Instant::now();
            while index.refine(threads, batch) > 0 {}
            eprintln!("refined in {:.1} s", t.elapsed().as_secs_f64());
            println!("{n:>9} {}  (refined)", recall_row(&mut index, queries, n));
            continue;
        }
        while inserted < n {
            index
                .insert(EntryId(inserted as u64 + 1), &corpus[inserted].embedding)
                .expect("insert");
            inserted += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "built to {n} in {secs:.1} s ({:.0} vectors/s linked on one thread)",
            (n - from) as f64 / secs
        );
        println!("{n:>9} {}", recall_row(&mut index, queries, n));
    }
}

/// Recall@10 against the exact top 10 and the mean time per query, for each `ef` of [`EFS`] and
/// for the `ef` the default settings give an index of `n` vectors.
fn recall_row(
    index: &mut VectorIndex,
    queries: &[memory_bench::workload::Message],
    n: usize,
) -> String {
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
    let default_ef = HnswParams::default().ef_for(10, n);
    let mut row = Vec::new();
    for ef in EFS.into_iter().chain([default_ef]) {
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
        let recall = format!("{:.3}/{us:.0}us", hits as f64 / total.max(1) as f64);
        row.push(if row.len() == EFS.len() {
            format!(" ef={default_ef}: {recall}")
        } else {
            recall
        });
    }
    row.join(" ")
}
