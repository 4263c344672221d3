//! Footprint: heap bytes per 1,000 entries (Rust heap from a counting global allocator plus
//! SQLite's own heap) and on-disk bytes per 1,000 entries of the long-term file and of its index
//! snapshot, reported through a byte-valued Criterion measurement so baselines hold them like
//! times.

use std::path::Path;

use bench_gate::Kind;
use criterion::{BenchmarkId, Criterion, SamplingMode};
use memory_bench::fixture;
use memory_bench::measure::{self, Bytes, CountingAlloc};
use memory_bench::targets::Targets;
use memory_bench::workload::Message;
use memory_bench::{settings, stats};
use memory_core::{Memory, MemoryConfig, Storage};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const AGENT: &str = "agent-0";

fn main() {
    stats::run_started();
    if !measure::allocator_installed() {
        eprintln!("error: the counting allocator is not installed; heap figures would be zero");
        std::process::exit(1);
    }
    let s = settings();
    eprintln!("{}", s.banner());
    let mut c = s.configure(Criterion::default().with_measurement(Bytes));
    footprint(&mut c);
    c.final_summary();
    report();
}

/// SQLite's heap in use, process-wide (its allocations bypass the Rust allocator).
fn sqlite_heap() -> i64 {
    // SAFETY: a read of SQLite's memory statistics; it takes no pointers.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// Heap growth from storing `messages`, split into (Rust bytes, SQLite bytes).
#[derive(Clone, Copy, Debug, Default)]
struct Heap {
    rust: i64,
    sqlite: i64,
}

fn ltm_heap(messages: &[Message]) -> Heap {
    let memory = Memory::open(Storage::Temporary, MemoryConfig::default()).expect("open store");
    // Baselines after opening, so the fixed cost of an empty store is not charged per entry; the
    // entries handed in are built and freed inside the window and so cancel out.
    let (rust0, sqlite0) = (measure::live_bytes(), sqlite_heap());
    fixture::fill(&memory, messages, "footprint store").expect("fill");
    let heap = Heap {
        rust: measure::live_bytes() - rust0,
        sqlite: sqlite_heap() - sqlite0,
    };
    drop(memory);
    heap
}

fn stm_heap(messages: &[Message]) -> Heap {
    let config = MemoryConfig::default();
    let cap = config.stm_capacity;
    let memory = Memory::open(Storage::InMemory, config).expect("open store");
    let (rust0, sqlite0) = (measure::live_bytes(), sqlite_heap());
    // One session per window's worth of messages, so every entry stays resident.
    for (i, m) in messages.iter().enumerate() {
        let session = format!("w-{}", i / cap);
        if i % cap == 0 {
            memory.open_session(AGENT, &session).expect("open_session");
        }
        let mut e = m.to_entry();
        e.agent_id = AGENT.into();
        e.session_id = session.into();
        memory.append(e).expect("append");
    }
    let heap = Heap {
        rust: measure::live_bytes() - rust0,
        sqlite: sqlite_heap() - sqlite0,
    };
    drop(memory);
    heap
}

/// Bytes of one file of the store at `db` (`""`, `"-wal"` or `"-shm"`); 0 when absent.
fn file_bytes(db: &Path, suffix: &str) -> u64 {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// On-disk bytes of a long-term file store holding `messages`, after the store is closed.
#[derive(Clone, Copy, Debug, Default)]
struct Disk {
    /// The database file.
    database: u64,
    /// Its write-ahead log and the log's index.
    wal: u64,
    /// The index snapshot beside it (`<file>.idx/`, written on close).
    snapshot: u64,
}

fn disk_bytes(messages: &[Message]) -> Disk {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("ltm.db");
    {
        let memory =
            Memory::open(Storage::File(db.clone()), MemoryConfig::default()).expect("open store");
        fixture::fill(&memory, messages, "footprint file").expect("fill");
    }
    let mut idx = db.as_os_str().to_owned();
    idx.push(".idx");
    let snapshot = std::fs::read_dir(&idx)
        .expect("a closed file store has its index snapshot")
        .map(|e| e.and_then(|e| e.metadata()).expect("snapshot file").len())
        .sum();
    Disk {
        database: file_bytes(&db, ""),
        wal: file_bytes(&db, "-wal") + file_bytes(&db, "-shm"),
        snapshot,
    }
}

fn per_thousand(bytes: i64, entries: usize) -> f64 {
    bytes as f64 * 1_000.0 / entries.max(1) as f64
}

/// Corpora cycled through by successive measurements: each is the same size and shape but a
/// different draw, so samples vary as real stores do (identical samples have zero variance, which
/// Criterion's comparison statistics and plots cannot handle).
const CORPORA: u64 = 5;

fn corpus(call: &mut u64) -> Vec<Message> {
    *call += 1;
    let n = settings().footprint_entries();
    fixture::workload().messages(n, 1, 0xf007 + *call % CORPORA)
}

fn footprint(c: &mut Criterion<Bytes>) {
    let n = settings().footprint_entries();
    let mut call = 0u64;
    let mut g = c.benchmark_group("footprint/heap");
    // Every call stores a whole corpus anew; the value does not depend on the iteration count.
    // Byte counts vary little between corpora, so Criterion's minimum of 10 samples suffices.
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.bench_function(BenchmarkId::new("ltm_per_1000", n), |b| {
        b.iter_custom(|iters| {
            let h = ltm_heap(&corpus(&mut call));
            record("heap/ltm_per_1000", h);
            per_thousand(h.rust + h.sqlite, n) * iters as f64
        })
    });
    g.bench_function(BenchmarkId::new("stm_per_1000", n), |b| {
        b.iter_custom(|iters| {
            let h = stm_heap(&corpus(&mut call));
            record("heap/stm_per_1000", h);
            per_thousand(h.rust + h.sqlite, n) * iters as f64
        })
    });
    g.finish();
    let mut g = c.benchmark_group("footprint/disk");
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.bench_function(BenchmarkId::new("ltm_per_1000", n), |b| {
        b.iter_custom(|iters| {
            let d = disk_bytes(&corpus(&mut call));
            // The breakdown reuses `Heap`'s two slots: main file, then WAL and its index.
            record(
                "disk/ltm_per_1000",
                Heap {
                    rust: d.database as i64,
                    sqlite: d.wal as i64,
                },
            );
            per_thousand((d.database + d.wal) as i64, n) * iters as f64
        })
    });
    g.bench_function(BenchmarkId::new("snapshot_per_1000", n), |b| {
        b.iter_custom(|iters| {
            let d = disk_bytes(&corpus(&mut call));
            record(
                "disk/snapshot_per_1000",
                Heap {
                    rust: d.snapshot as i64,
                    sqlite: 0,
                },
            );
            per_thousand(d.snapshot as i64, n) * iters as f64
        })
    });
    g.finish();
}

type Seen = std::sync::Mutex<Vec<(&'static str, Heap)>>;

fn seen() -> &'static Seen {
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// Keeps the last breakdown of each measurement for the closing table.
fn record(what: &'static str, h: Heap) {
    let mut v = seen().lock().unwrap_or_else(|p| p.into_inner());
    v.retain(|(w, _)| *w != what);
    v.push((what, h));
}

fn report() {
    let n = settings().footprint_entries();
    let v = seen().lock().unwrap_or_else(|p| p.into_inner());
    if v.is_empty() {
        return;
    }
    let targets = Targets::load();
    let mb = |b: i64| per_thousand(b, n) / 1e6;
    println!("\nfootprint per 1,000 entries ({n} entries, 384-d f32 embeddings):");
    for (what, h) in v.iter() {
        let breakdown = if what.starts_with("disk/snapshot") {
            // Raw f32 bytes of the vectors, per 1,000 entries.
            let raw = 1_000.0 * 4.0 * MemoryConfig::default().embedding_dim as f64;
            format!(
                "{:>8.3} MB on disk in the index snapshot after close ({:.2}x the raw f32 vectors)",
                mb(h.rust),
                per_thousand(h.rust, n) / raw
            )
        } else if what.starts_with("disk") {
            format!(
                "{:>8.3} MB on disk = {:.3} MB database + {:.3} MB WAL after close",
                mb(h.rust + h.sqlite),
                mb(h.rust),
                mb(h.sqlite)
            )
        } else {
            format!(
                "{:>8.3} MB total = {:.3} MB Rust heap + {:.3} MB SQLite heap",
                mb(h.rust + h.sqlite),
                mb(h.rust),
                mb(h.sqlite)
            )
        };
        // The budgets are on the measured ids, bytes per 1,000 entries.
        let target = targets
            .budget(&format!("footprint/{what}/{n}"), Kind::Footprint)
            .map_or(String::new(), |b| {
                format!(
                    "  (target {} {:.3} MB)",
                    b.bound().symbol(),
                    b.limit() / 1e6
                )
            });
        println!("  {what:<22} {breakdown}{target}");
    }
    println!("  ({})", targets.note());
}
