//! memory-core's own HNSW graph next to the `hnsw_rs` crate, on the benchmark corpus: build
//! time, and recall@10 (against an exact scan) and latency of one-thread queries at several
//! candidate-list sizes. The issue that asked for approximate search allowed an HNSW of our own
//! only if it measures better than a well-kept crate; this is that measurement.
//!
//! ```sh
//! cargo run --release --features compare-hnsw-rs --example hnsw_vs_hnsw_rs [ENTRIES]
//! ```
//!
//! Both graphs get the same parameters (16 links per node, 32 on layer 0, ef_construction 100)
//! and the same unit vectors; similarity is the dot product (`DistDot` in hnsw_rs).

use std::time::{Duration, Instant};

use anndists::dist::DistDot;
use hnsw_rs::prelude::Hnsw;
use memory_bench::fixture;
use memory_core::index::vector::{VectorIndex, VectorIndexConfig};
use memory_core::EntryId;

const K: usize = 10;
const QUERIES: usize = 500;
const EFS: [usize; 3] = [32, 64, 128];

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Recall@K of `found` against `truth`, over all queries.
fn recall(found: &[Vec<usize>], truth: &[Vec<usize>]) -> f64 {
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| f.iter().filter(|x| t.contains(x)).count())
        .sum();
    hits as f64 / (K * truth.len()) as f64
}

/// Runs every query three times through `search`, timing each call; returns the last round's
/// results and (mean, p50, p99) over all calls.
fn run(
    queries: &[Vec<f32>],
    mut search: impl FnMut(&[f32]) -> Vec<usize>,
) -> (Vec<Vec<usize>>, [Duration; 3]) {
    let mut times = Vec::with_capacity(queries.len() * 3);
    let mut found = Vec::new();
    for _ in 0..3 {
        found.clear();
        for q in queries {
            let start = Instant::now();
            found.push(search(q));
            times.push(start.elapsed());
        }
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let pick = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    (found, [mean, pick(50), pick(99)])
}

fn report(name: &str, ef: usize, found: &[Vec<usize>], truth: &[Vec<usize>], t: [Duration; 3]) {
    println!(
        "{name:<12} ef {ef:>3}: recall@10 {:.3}  mean {:>6.0} us  p50 {:>6.0} us  p99 {:>6.0} us",
        recall(found, truth),
        t[0].as_secs_f64() * 1e6,
        t[1].as_secs_f64() * 1e6,
        t[2].as_secs_f64() * 1e6,
    );
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 100_000,
        Some(Ok(n)) if n >= 1_000 => n,
        Some(_) => {
            eprintln!("usage: hnsw_vs_hnsw_rs [ENTRIES >= 1000]");
            std::process::exit(2);
        }
    };
    let w = fixture::workload();
    eprintln!("generating {n} messages and {QUERIES} queries ...");
    let data: Vec<Vec<f32>> = w
        .messages(n, 1, 7)
        .into_iter()
        .map(|m| unit(m.embedding))
        .collect();
    let queries: Vec<Vec<f32>> = w
        .queries(QUERIES, 3)
        .into_iter()
        .map(|q| unit(q.vector))
        .collect();
    eprintln!("exact top-{K} of every query ...");
    let truth: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| {
            let mut all: Vec<(f32, usize)> = data
                .iter()
                .enumerate()
                .map(|(i, v)| (dot(v, q), i))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            all.iter().take(K).map(|x| x.1).collect()
        })
        .collect();

    eprintln!("building memory-core's graph (one thread) ...");
    let start = Instant::now();
    let mut ours = VectorIndex::new(VectorIndexConfig::new(384)).expect("valid config");
    for (i, v) in data.iter().enumerate() {
        ours.insert_unlinked(EntryId(i as u64), v)
            .expect("unit vectors of the configured dimension");
    }
    ours.link_pending(usize::MAX);
    println!(
        "memory-core  build {:.1} s (one thread), {n} x 384-d",
        start.elapsed().as_secs_f64()
    );
    for ef in EFS {
        ours.set_ef_search(ef);
        let (found, t) = run(&queries, |q| {
            ours.search_approx(q, K, &|_| true)
                .expect("query of the right dimension")
                .iter()
                .map(|h| h.0 .0 as usize)
                .collect()
        });
        report("memory-core", ef, &found, &truth, t);
    }

    for parallel in [false, true] {
        let how = if parallel {
            "parallel_insert, all cores"
        } else {
            "insert, one thread"
        };
        eprintln!("building hnsw_rs's graph ({how}) ...");
        let start = Instant::now();
        let mut theirs = Hnsw::<f32, DistDot>::new(16, n, 16, 100, DistDot {});
        if parallel {
            let items: Vec<(&Vec<f32>, usize)> = data.iter().zip(0..).collect();
            theirs.parallel_insert(&items);
        } else {
            for (i, v) in data.iter().enumerate() {
                theirs.insert((v.as_slice(), i));
            }
        }
        println!(
            "hnsw_rs      build {:.1} s ({how})",
            start.elapsed().as_secs_f64()
        );
        theirs.set_searching_mode(true);
        for ef in EFS {
            let (found, t) = run(&queries, |q| {
                theirs.search(q, K, ef).iter().map(|nb| nb.d_id).collect()
            });
            report("hnsw_rs", ef, &found, &truth, t);
        }
    }
}
