//! Searches during a large `forget`: ANN queries every 2 ms against one agent of `SIZE` entries
//! (100,000 by default, a temporary store built for the run) while the main thread forgets
//! `FRACTION` of them (0.35 by default: past the keyword index's tombstone limit, a quarter of its
//! slots, and the vector index's, 30%), one `Memory::forget` at a time, scattered over the
//! store. Prints each phase's query latency percentiles (before, during the forgets, after them
//! until the background linker is idle again, and after that), the forgets' own durations (the
//! one that compacts an index is the slowest), how long the linker worked after the forgets,
//! and recall@10 of ANN against exact search before, right after and once the linker is idle.
//!
//! A compaction rewrites an index without its removed entries; what a search meets meanwhile,
//! and whether the HNSW graph survives it, is what this shows (see
//! `crates/memory-core/src/index/agent.rs`, `AgentIndex::remove`).
//!
//! ```text
//! cargo run --release --example compact_beside_queries                  # 100,000 entries, 35%
//! cargo run --release --example compact_beside_queries -- 126650 0.35
//! ```
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memory_bench::fixture::{self, Fixture};
use memory_bench::measure::{ms, percentile};
use memory_bench::quality;
use memory_bench::queries::search_query;
use memory_core::{EntryId, Memory, MemoryConfig, SearchMode};

const AGENT: &str = "agent-0";
/// Queries whose recall@10 is measured at each point.
const RECALL_QUERIES: usize = 100;

fn main() {
    let mut args = std::env::args().skip(1);
    let size = match args.next().map(|a| a.replace(['_', ','], "").parse()) {
        None => 100_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => usage(),
    };
    let fraction: f64 = match args.next().map(|a| a.parse()) {
        None => 0.35,
        Some(Ok(f)) if (0.0..1.0).contains(&f) => f,
        Some(_) => usage(),
    };
    let f = fixture::build_with(
        size,
        1,
        RECALL_QUERIES,
        fixture::salt(size, 1),
        MemoryConfig::default(),
        "",
    )
    .expect("build the store");
    let memory = &f.memory;
    let doomed: Vec<EntryId> = f
        .ids
        .iter()
        .enumerate()
        .filter(|&(i, _)| (mix(i as u64) % 1_000) < (fraction * 1_000.0) as u64)
        .map(|(_, &id)| id)
        .collect();
    println!(
        "{} entries, forgetting {} ({:.0}%)",
        size,
        doomed.len(),
        100.0 * doomed.len() as f64 / size as f64
    );
    let before = recall(memory, &f);
    let stop = AtomicBool::new(false);
    let latencies = Mutex::new(Vec::new());
    let t0 = Instant::now();
    let (forgets, forgetting, linking, right_after) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let q = search_query(AGENT, &f.queries[i % f.queries.len()], SearchMode::Vector);
                i += 1;
                let start = Instant::now();
                memory.search(&q).expect("search");
                let took = start.elapsed();
                latencies.lock().unwrap().push((start - t0, took));
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        std::thread::sleep(Duration::from_secs(2));
        let began = t0.elapsed();
        let mut forgets = Vec::with_capacity(doomed.len());
        for &id in &doomed {
            let start = Instant::now();
            assert!(memory.forget(AGENT, id).expect("forget"));
            forgets.push(start.elapsed());
        }
        let ended = t0.elapsed();
        // While the linker works (the queries of the measure add to the load).
        let right_after = recall(memory, &f);
        memory.wait_for_indexing();
        let idle = t0.elapsed();
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        (forgets, began..ended, ended..idle, right_after)
    });
    let after = recall(memory, &f);
    let mut forgets = forgets;
    forgets.sort();
    println!(
        "forgets: {:.1} s, each p50 {:.0} us, p99 {:.0} us, max {:.1} ms (the three slowest: {})",
        (forgetting.end - forgetting.start).as_secs_f64(),
        us(percentile(&forgets, 0.5)),
        us(percentile(&forgets, 0.99)),
        ms(forgets[forgets.len() - 1]),
        forgets
            .iter()
            .rev()
            .take(3)
            .map(|d| format!("{:.1} ms", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "linker busy after the forgets: {:.1} s",
        (linking.end - linking.start).as_secs_f64()
    );
    let latencies = latencies.into_inner().unwrap();
    let phases = [
        ("before", Duration::ZERO..forgetting.start),
        ("during the forgets", forgetting.clone()),
        ("until the linker is idle", linking.clone()),
        ("after", linking.end..Duration::MAX),
    ];
    for (name, inside) in phases {
        let mut part: Vec<Duration> = latencies
            .iter()
            .filter(|(at, _)| inside.contains(at))
            .map(|(_, l)| *l)
            .collect();
        part.sort();
        if part.is_empty() {
            println!("ANN queries {name}: none");
            continue;
        }
        println!(
            "ANN queries {name}: {} queries, p50 {:.0} us, p99 {:.0} us, max {:.1} ms",
            part.len(),
            us(percentile(&part, 0.50)),
            us(percentile(&part, 0.99)),
            ms(part[part.len() - 1])
        );
    }
    println!(
        "recall@10 against exact search: before {before:.3}, right after the forgets \
         {right_after:.3}, once the linker is idle {after:.3}"
    );
}

/// Mean recall@10 of ANN search against exact search over the first [`RECALL_QUERIES`] queries.
fn recall(memory: &Memory, f: &Fixture) -> f64 {
    let top = |qi: usize, mode| -> Vec<EntryId> {
        let q = search_query(AGENT, &f.queries[qi], mode);
        let hits = memory.search(&q).expect("search");
        hits.into_iter().map(|h| h.entry.id).collect()
    };
    let n = RECALL_QUERIES.min(f.queries.len());
    let sum: f64 = (0..n)
        .map(|qi| {
            quality::recall(
                &top(qi, SearchMode::ExactVector),
                &top(qi, SearchMode::Vector),
            )
        })
        .sum();
    sum / n as f64
}

/// A scattering hash (splitmix64's finalizer).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn usage() -> ! {
    eprintln!(
        "usage: compact_beside_queries [SIZE [FRACTION]]  (SIZE above 0, FRACTION in [0, 1))"
    );
    std::process::exit(2)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
