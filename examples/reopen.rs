//! What a big file store costs across a restart (issue 13): ingest until every entry is
//! searchable at full ANN speed, the clean close (which saves the index snapshot), and the
//! reopen until the first query is answered with the whole HNSW graph, with and without the
//! snapshot; plus ANN latency percentiles while a second thread ingests.
//!
//! ```sh
//! cargo run --release --example reopen -- 100000     # entries (default 100,000), 384-d, one agent
//! ```
//!
//! With `MEMBENCH_REOPEN_KEEP=<dir>` the store is kept in `<dir>`: a first run builds it (and
//! stops after the close), later runs only reopen it with its snapshot, three times (to measure
//! a change to the loader without ingesting again). With `MEMBENCH_REOPEN_COLD=1` as well, the
//! store's files are evicted from the page cache before each of those reopens
//! (`posix_fadvise(DONTNEED)`), as after a reboot.
//!
//! Prints one line per phase. Timings depend on what else runs on the machine: say so beside
//! any figure taken from here.

use std::time::{Duration, Instant};

use memory_bench::fixture::wait_until_searchable;
use memory_bench::measure::percentile;
use memory_bench::workload::Workload;
use memory_core::{Memory, MemoryConfig, SearchMode, SearchQuery, Storage, Tiers};

/// Asks the kernel to drop the cached pages of every file under `dir` (clean pages only, so the
/// files are synced first). Returns the bytes of the files.
#[cfg(target_os = "linux")]
fn evict_from_page_cache(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            bytes += evict_from_page_cache(&path)?;
            continue;
        }
        let file = std::fs::File::open(&path)?;
        file.sync_all()?;
        // SAFETY: fadvise only advises the kernel about the open descriptor's cached pages.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        bytes += file.metadata()?.len();
    }
    Ok(bytes)
}

#[cfg(not(target_os = "linux"))]
fn evict_from_page_cache(_dir: &std::path::Path) -> std::io::Result<u64> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "MEMBENCH_REOPEN_COLD needs Linux (posix_fadvise)",
    ))
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn ann_latencies(
    m: &Memory,
    queries: &[memory_bench::workload::Query],
    agent: &str,
) -> Vec<Duration> {
    let mut out: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let query = SearchQuery::new(agent, q.text.clone())
                .with_mode(SearchMode::Vector)
                .with_tiers(Tiers::LongTerm)
                .with_vector(q.vector.clone())
                .without_cache();
            let t = Instant::now();
            m.search(&query).expect("search");
            t.elapsed()
        })
        .collect();
    out.sort();
    out
}

fn main() -> anyhow_free::Result {
    let n: usize = match std::env::args().nth(1) {
        None => 100_000,
        Some(a) => match a.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("reopen: the number of entries {a:?} is not a whole number above 0");
                std::process::exit(2);
            }
        },
    };
    let keep = std::env::var_os("MEMBENCH_REOPEN_KEEP").map(std::path::PathBuf::from);
    let dir = match &keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => tempfile_dir(),
    };
    let db = dir.join("store.db");
    let workload = Workload::standard();
    let queries = workload.queries(500, 7);
    let config = MemoryConfig::default();
    if keep.is_some() && db.exists() {
        let agent = workload.messages(1, 1, 13)[0].agent.to_string();
        let cold = std::env::var_os("MEMBENCH_REOPEN_COLD").is_some();
        for _ in 0..3 {
            if cold {
                let evicted = evict_from_page_cache(&dir)?;
                println!(
                    "evicted {:.1} MB of the store's files from the page cache",
                    evicted as f64 / 1e6
                );
            }
            let t = Instant::now();
            let m = Memory::open(Storage::File(db.clone()), config.clone())?;
            let opened = t.elapsed();
            let lat = ann_latencies(&m, &queries[..1], &agent);
            let first_query = t.elapsed();
            let pending = m.pending_index_links();
            let lat_after = ann_latencies(&m, &queries, &agent);
            println!(
                "reopen with the snapshot: open {:.3} s, first query answered at {:.3} s (it took {:?}; {pending} vectors unlinked then); ANN after: p50 {:?} p99 {:?}",
                opened.as_secs_f64(),
                first_query.as_secs_f64(),
                lat[0],
                percentile(&lat_after, 0.5),
                percentile(&lat_after, 0.99)
            );
            if pending > 0 {
                // A snapshot of another format was rebuilt: let the next round load a whole graph.
                m.wait_for_indexing();
            }
            let t = Instant::now();
            drop(m);
            println!("close: {:.3} s", t.elapsed().as_secs_f64());
        }
        return Ok(());
    }
    let messages = workload.messages(n, 1, 13);
    let agent = messages[0].agent.to_string();

    // Ingest: batches of 1,000, then wait until the linker has caught up.
    let m = Memory::open(Storage::File(db.clone()), config.clone())?;
    let t = Instant::now();
    for chunk in messages.chunks(1_000) {
        m.insert_batch(chunk.iter().map(|msg| msg.to_entry()).collect())?;
    }
    let committed = t.elapsed();
    wait_until_searchable(&m);
    let searchable = t.elapsed();
    m.wait_for_indexing();
    let refined = t.elapsed();
    println!(
        "ingest {n}: committed in {:.2} s ({:.0} entries/s), all linked after {:.2} s ({:.0} entries/s searchable at full ANN speed), quick links refined after {:.2} s",
        committed.as_secs_f64(),
        n as f64 / committed.as_secs_f64(),
        searchable.as_secs_f64(),
        n as f64 / searchable.as_secs_f64(),
        refined.as_secs_f64()
    );
    let lat = ann_latencies(&m, &queries, &agent);
    println!(
        "ANN (k=10) idle: p50 {:?} p99 {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    let t = Instant::now();
    drop(m);
    println!(
        "close (saves the snapshot): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let idx = dir.join("store.db.idx");
    let raw = (n * 384 * 4) as u64;
    println!(
        "snapshot on disk: {:.1} MB = {:.2}x the raw f32 vector bytes ({:.1} MB)",
        dir_bytes(&idx) as f64 / 1e6,
        dir_bytes(&idx) as f64 / raw as f64,
        raw as f64 / 1e6
    );
    if keep.is_some() {
        println!("store kept in {}", dir.display());
        return Ok(());
    }

    for (label, remove) in [("with the snapshot", false), ("without (rebuild)", true)] {
        if remove {
            std::fs::remove_dir_all(&idx)?;
        }
        let t = Instant::now();
        let m = Memory::open(Storage::File(db.clone()), config.clone())?;
        let opened = t.elapsed();
        let q = &queries[0];
        m.search(
            &SearchQuery::new(&*agent, q.text.clone())
                .with_mode(SearchMode::Vector)
                .with_tiers(Tiers::LongTerm)
                .with_vector(q.vector.clone())
                .without_cache(),
        )?;
        let first_query = t.elapsed();
        let pending = m.pending_index_links();
        wait_until_searchable(&m);
        let full_speed = t.elapsed();
        m.wait_for_indexing();
        println!(
            "reopen {label}: open {:.3} s, first query answered at {:.3} s ({pending} vectors still unlinked then), every vector linked at {:.3} s",
            opened.as_secs_f64(),
            first_query.as_secs_f64(),
            full_speed.as_secs_f64()
        );
        if remove {
            // Leave the rebuilt store's snapshot for the ingest phase below.
            drop(m);
        } else {
            let lat = ann_latencies(&m, &queries, &agent);
            println!(
                "ANN right after the reopen: p50 {:?} p99 {:?}",
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            );
        }
    }

    // ANN latency while another thread ingests batches of 100 at full speed.
    let m = Memory::open(Storage::File(db.clone()), config)?;
    let extra = workload.messages(n / 5, 1, 99);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ingested, secs, lat, lag) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let t = Instant::now();
            let mut done = 0;
            for chunk in extra.chunks(100) {
                m.insert_batch(chunk.iter().map(|msg| msg.to_entry()).collect())
                    .expect("insert");
                done += chunk.len();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            (done, t.elapsed())
        });
        let mut lat = Vec::new();
        let mut lag = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            lat.extend(ann_latencies(&m, &queries[..50], &agent));
            lag = lag.max(m.pending_index_links());
        }
        let (done, took) = writer.join().expect("writer");
        lat.sort();
        (done, took, lat, lag)
    });
    let t = Instant::now();
    wait_until_searchable(&m);
    println!(
        "during ingest of {ingested} more ({:.0} entries/s committed): ANN p50 {:?} p99 {:?} over {} queries; unlinked backlog up to {lag}; linked {:.2} s after the last commit",
        ingested as f64 / secs.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len(),
        t.elapsed().as_secs_f64()
    );
    drop(m);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("membench-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

mod anyhow_free {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}
