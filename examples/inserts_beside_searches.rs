//! One-entry inserts beside a loop of ANN searches, and the write-ahead log a flush of the
//! searches' retrieval counts writes, on a copy of a closed file store (the directory holding
//! its `store.db`, e.g. one left by `MEMBENCH_REOPEN_KEEP=<dir> cargo run --release --example
//! reopen`; the searches go to `agent-0`).
//!
//! 1. Flush: after `Memory::checkpoint` (the log truncated), searches for `SECONDS` with no
//!    write, then `Memory::flush`: the log's bytes and frames after it, and its time.
//!    Repeated `ROUNDS` times.
//! 2. Inserts: one entry every 10 ms, 300 alone, then 600 beside a search loop (whose retrieval
//!    counts ride along with an insert's commit about once a second): p50/p90/p99/max.
//!
//! ```text
//! cargo run --release --example inserts_beside_searches -- /path/to/store-dir [ROUNDS] [SECONDS]
//! ```
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use memory_bench::fixture;
use memory_bench::measure::{latency_summary, ms, percentile};
use memory_bench::queries::search_query;
use memory_core::{EntryId, Memory, MemoryConfig, NewEntry, SearchMode, Storage};

const AGENT: &str = "agent-0";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(base) = args.first().map(PathBuf::from) else {
        eprintln!("usage: inserts_beside_searches STORE_DIR [ROUNDS] [SECONDS]");
        std::process::exit(2)
    };
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let seconds: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let dir = base.with_file_name(format!(
        "{}-copy-{}",
        base.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    copy_dir(&base, &dir);
    let db = dir.join("store.db");
    let began = Instant::now();
    let memory = Memory::open(Storage::File(db.clone()), MemoryConfig::default()).expect("open");
    let opened = began.elapsed();
    fixture::wait_until_searchable(&memory);
    println!(
        "{} entries of {AGENT}; schema version {}; opened in {:.2} s, searchable after {:.2} s",
        memory.count(AGENT).expect("count"),
        memory_core::SCHEMA_VERSION,
        opened.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    let queries = fixture::workload().queries(2_000, 77);

    // 0. Searches alone (their retrievals stay in RAM: nothing is written meanwhile).
    let mut latencies = Vec::new();
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < 2.0 * seconds {
        let q = search_query(
            AGENT,
            &queries[latencies.len() % queries.len()],
            SearchMode::Vector,
        );
        let start = Instant::now();
        memory.search(&q).expect("search");
        latencies.push(start.elapsed());
    }
    let rate = latencies.len() as f64 / t.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "  searches alone: {rate:.0}/s, p50 {:.3} p99 {:.3} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let wal_bytes = || std::fs::metadata(&wal).map_or(0, |m| m.len());

    // 1. The log one flush writes.
    let mut next = 0;
    for round in 0..rounds {
        memory.checkpoint().expect("checkpoint");
        let before = wal_bytes();
        let t = Instant::now();
        let mut retrieved: HashSet<EntryId> = HashSet::new();
        let mut searches = 0;
        while t.elapsed().as_secs_f64() < seconds {
            let q = search_query(AGENT, &queries[next % queries.len()], SearchMode::Vector);
            next += 1;
            searches += 1;
            for h in memory.search(&q).expect("search") {
                retrieved.insert(h.entry.id);
            }
        }
        let t = Instant::now();
        memory.flush().expect("flush");
        let took = t.elapsed();
        let after = wal_bytes();
        let grew = after.saturating_sub(before);
        println!(
            "  flush {round}: {searches} searches, {} distinct entries retrieved; the flush took \
             {:.1} ms and wrote {:.2} MB of log ({} frames of 16 KiB pages)",
            retrieved.len(),
            ms(took),
            grew as f64 / 1e6,
            grew.saturating_sub(32) / (16_384 + 24)
        );
    }

    // 2. Inserts alone, then beside searches.
    let stop = AtomicBool::new(false);
    let searching = AtomicBool::new(false);
    let feed: Vec<NewEntry> = fixture::workload()
        .messages(900, 1, 0xacc)
        .iter()
        .map(|m| {
            NewEntry::new(AGENT, "feed", m.role, m.text.clone()).with_embedding(m.embedding.clone())
        })
        .collect();
    let (alone, beside, searches) = std::thread::scope(|s| {
        let searcher = s.spawn(|| {
            while !searching.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let q = search_query(AGENT, &queries[n % queries.len()], SearchMode::Vector);
                memory.search(&q).expect("search");
                n += 1;
            }
            n
        });
        let mut alone = Vec::new();
        let mut beside = Vec::new();
        let mut began = Instant::now();
        for (i, e) in feed.into_iter().enumerate() {
            if i == 300 {
                searching.store(true, Ordering::Relaxed);
                began = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
            let start = Instant::now();
            memory.insert(e).expect("insert");
            let l = start.elapsed();
            if i < 300 {
                alone.push(l);
            } else {
                beside.push(l);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let n = searcher.join().expect("search thread");
        (alone, beside, n as f64 / began.elapsed().as_secs_f64())
    });
    show("alone", alone);
    show(&format!("beside {searches:.0} searches/s"), beside);
    drop(memory);
    let _ = std::fs::remove_dir_all(&dir);
}

fn show(name: &str, mut v: Vec<Duration>) {
    let summary = latency_summary(&mut v, Duration::from_millis(5));
    println!("  insert one, {name}: {summary}");
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("create the copy");
    for e in std::fs::read_dir(from).expect("read the store directory") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}
