//! Searches during an index snapshot save: ANN queries every 2 ms and a writer inserting 50
//! entries every 10 ms run against a kept file store (the fixture of `SIZE` entries, 100,000 by
//! default) while the main thread saves a snapshot (`Memory::checkpoint`) after 3 s; prints the
//! save's duration and the queries' latency percentiles inside and outside it.
//!
//! A save writes each agent's indexes under read locks; the writer's next write waits for it.
//! This shows whether the searches arriving meanwhile wait too (they must not; see
//! `crates/memory-core/src/index/capture.rs`).
//!
//! ```text
//! cargo run --release --example save_beside_queries            # 100,000 entries
//! cargo run --release --example save_beside_queries -- 1000000
//! ```
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use memory_bench::fixture;
use memory_bench::measure::percentile;
use memory_bench::queries::search_query;
use memory_core::{NewEntry, SearchMode};

fn main() {
    let size = match std::env::args()
        .nth(1)
        .map(|a| a.replace(['_', ','], "").parse())
    {
        None => 100_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: save_beside_queries [SIZE]  (SIZE: entries, above 0)");
            std::process::exit(2)
        }
    };
    let f = fixture::shared(size, 200);
    // The writes below change the kept store: the next run builds it again.
    let memory = f.memory_for_writes();
    fixture::wait_until_searchable(memory);
    let agent = "agent-0";
    let messages = fixture::workload().messages(40_000, 1, 0x5a7e);
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let (latencies, saved) = std::thread::scope(|s| {
        s.spawn(|| {
            for chunk in messages.chunks(50) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                let batch = chunk
                    .iter()
                    .map(|m| {
                        NewEntry::new(agent, "s", m.role, m.text.clone())
                            .with_embedding(m.embedding.clone())
                    })
                    .collect();
                memory.insert_batch(batch).expect("insert_batch");
            }
        });
        let queries = s.spawn(|| {
            let mut latencies = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let q = search_query(agent, &f.queries[i % f.queries.len()], SearchMode::Vector);
                i += 1;
                let start = Instant::now();
                memory.search(&q).expect("search");
                latencies.push((start - t0, start.elapsed()));
                std::thread::sleep(Duration::from_millis(2));
            }
            latencies
        });
        std::thread::sleep(Duration::from_secs(3));
        let began = t0.elapsed();
        memory.checkpoint().expect("checkpoint");
        let ended = t0.elapsed();
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        (queries.join().expect("query thread"), began..=ended)
    });
    println!(
        "snapshot save: {:.1} ms",
        (*saved.end() - *saved.start()).as_secs_f64() * 1e3
    );
    let (inside, outside): (Vec<_>, Vec<_>) =
        latencies.iter().partition(|(at, _)| saved.contains(at));
    for (name, part) in [("during the save", inside), ("otherwise", outside)] {
        let mut sorted: Vec<Duration> = part.iter().map(|(_, l)| *l).collect();
        sorted.sort();
        if sorted.is_empty() {
            println!("{name}: no query");
            continue;
        }
        println!(
            "{name}: {} queries, p50 {:.0} us, p99 {:.0} us, max {:.0} us",
            sorted.len(),
            us(percentile(&sorted, 0.50)),
            us(percentile(&sorted, 0.99)),
            us(sorted[sorted.len() - 1])
        );
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
