//! Latency of every memory-core operation, per tier, with side-by-side references (raw SQLite
//! FTS5, exact scan vs ANN, cache hit vs miss, sequential memory bandwidth) and the tail
//! percentiles `tail/<op>/p50|p95|p99`, printed as a table at the end of the run.

use std::cell::OnceCell;
use std::cell::RefCell;
use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bench_gate::{locate, Kind};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use memory_bench::fixture::{self, Fixture, Scatter};
use memory_bench::ingest::{IngestSummary, PacedIngest};
use memory_bench::queries::{context_query, search_query, tool_definitions};
use memory_bench::targets::Targets;
use memory_bench::workload::Message;
use memory_bench::{settings, stats, tail};
use memory_core::context::ToolDefinition;
use memory_core::{
    AsyncMemory, ContextQuery, Durability, Memory, MemoryConfig, NewEntry, SearchMode, SearchQuery,
    Storage, Tiers,
};

const AGENT: &str = "agent-0";

/// Entries per `insert_batch` call of `latency/ltm/insert_batch/<n>`.
const INSERT_BATCHES: [usize; 2] = [100, 1_000];

fn main() {
    stats::run_started();
    let s = settings();
    eprintln!("{}", s.banner());
    let mut c = s.criterion();
    stm(&mut c);
    ltm(&mut c);
    reopen(&mut c);
    search(&mut c);
    keyword_side_by_side(&mut c);
    cache(&mut c);
    consolidate(&mut c);
    context(&mut c);
    api_overhead(&mut c);
    reference(&mut c);
    embedding(&mut c);
    tails(&mut c);
    // Writes into the shared fixture: after every benchmark that reads it.
    ann_during_ingest(&mut c);
    c.final_summary();
    fixture::release_all();
    report();
}

/// The shared long-term fixture of the profile's size.
fn big() -> Arc<Fixture> {
    let s = settings();
    fixture::shared(s.fixture_size(), s.query_count())
}

/// Messages for the write benchmarks (a pool cycled through, generated once).
fn pool() -> &'static [Message] {
    static POOL: OnceLock<Vec<Message>> = OnceLock::new();
    POOL.get_or_init(|| fixture::workload().messages(4_096, 8, 0xa11ce))
}

/// An entry of the pool, for `agent` and `session`, with its embedding.
fn entry(i: usize, agent: &str, session: &str) -> NewEntry {
    let m = &pool()[i % pool().len()];
    NewEntry::new(agent, session, m.role, m.text.clone())
        .with_embedding(m.embedding.clone())
        .with_importance(m.importance)
}

fn open(durability: Durability) -> Memory {
    let config = MemoryConfig {
        durability,
        ..MemoryConfig::default()
    };
    Memory::open(Storage::Temporary, config).expect("open a temporary store")
}

/// Entries a write benchmark puts into one long-term store before switching to a fresh one.
/// Without a bound, what an insert costs would depend on how long Criterion happened to run
/// (a store grown to millions of entries, with its background linker ever further behind); with
/// it, the write benchmarks measure inserts into a store of up to this many entries.
const LTM_ROTATE: usize = 50_000;

/// A long-term store for the write benchmarks, replaced by a fresh one (outside the timed call)
/// every [`LTM_ROTATE`] entries.
struct RotatingStore {
    durability: Durability,
    memory: RefCell<Memory>,
    written: std::cell::Cell<usize>,
}

impl RotatingStore {
    fn new(durability: Durability) -> Self {
        RotatingStore {
            durability,
            memory: RefCell::new(open(durability)),
            written: std::cell::Cell::new(0),
        }
    }

    /// Counts `n` entries about to be written, first switching stores if this one is full.
    /// Call it from the untimed setup.
    fn make_room(&self, n: usize) {
        if self.written.get() + n > LTM_ROTATE {
            // The old store (its files, its background threads) goes here, untimed.
            *self.memory.borrow_mut() = open(self.durability);
            self.written.set(0);
        }
        self.written.set(self.written.get() + n);
    }

    fn get(&self) -> std::cell::Ref<'_, Memory> {
        self.memory.borrow()
    }
}

/// Tools for the context benchmarks.
fn tools(n: usize) -> Vec<ToolDefinition> {
    tool_definitions(&fixture::workload().tools(n, 0)).expect("generated tools are valid")
}

/// Appends before the STM benchmarks switch to a fresh store (outside the timed call). Without
/// consolidation every entry pushed out of a window waits in RAM; an application consolidates
/// every few thousand appends, and so the waiting list here never grows past that either (a
/// list of millions would measure page faults of a multi-gigabyte heap, not the append).
const STM_ROTATE: usize = 5_000;

/// `iters` appends' stores and entries, made before any is timed: a fresh store (`make`) for
/// every `STM_ROTATE` entries, so that no store holds more than an application that
/// consolidates every few thousand appends would.
fn in_fresh_stores(
    iters: u64,
    make: impl Fn() -> Memory,
    entry_of: impl Fn(usize) -> NewEntry,
) -> Vec<(Memory, Vec<NewEntry>)> {
    let iters = usize::try_from(iters).unwrap_or(usize::MAX);
    (0..iters)
        .step_by(STM_ROTATE)
        .map(|first| {
            let n = (iters - first).min(STM_ROTATE);
            (make(), (first..first + n).map(&entry_of).collect())
        })
        .collect()
}

/// The time the synchronous appends of `stores` (from [`in_fresh_stores`]) take.
fn timed_appends(stores: Vec<(Memory, Vec<NewEntry>)>) -> Duration {
    stores
        .into_iter()
        .map(|(memory, entries)| {
            let start = Instant::now();
            for e in entries {
                memory.append(e).expect("append");
            }
            start.elapsed()
        })
        .sum()
}

/// A short-term store with 64 open sessions of one agent.
fn stm_store() -> Memory {
    let memory = Memory::open(Storage::InMemory, MemoryConfig::default()).expect("open store");
    for s in 0..64 {
        memory
            .open_session(AGENT, &format!("s-{s}"))
            .expect("open_session");
    }
    memory
}

fn stm(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency/stm");
    g.bench_function("open_session", |b| {
        // Sessions pile up in RAM; a fresh store every 20,000 keeps the benchmark's memory bounded
        // without timing the store's creation.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let memory = Memory::open(Storage::InMemory, MemoryConfig::default())
                    .expect("open an in-memory store");
                let n = (iters - done).min(20_000);
                let names: Vec<String> = (0..n).map(|i| format!("s-{i}")).collect();
                let start = Instant::now();
                for name in &names {
                    memory.open_session(AGENT, name).expect("open_session");
                }
                total += start.elapsed();
                done += n;
            }
            total
        })
    });

    g.bench_function("append", |b| {
        b.iter_custom(|iters| {
            timed_appends(in_fresh_stores(iters, stm_store, |i| {
                entry(i, AGENT, &format!("s-{}", i % 64))
            }))
        })
    });
    let memory = stm_store();
    for i in 0..STM_ROTATE {
        memory
            .append(entry(i, AGENT, &format!("s-{}", i % 64)))
            .expect("append");
    }
    g.bench_function(BenchmarkId::new("recent", 20), |b| {
        let mut s = Scatter::new(3);
        let sessions: Vec<String> = (0..64).map(|i| format!("s-{i}")).collect();
        b.iter(|| {
            let session = &sessions[s.next_index(64)];
            black_box(memory.recent(AGENT, session, 20).expect("recent"))
        })
    });
    g.finish();
}

fn ltm(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency/ltm");
    for (name, durability) in [
        ("process_crash", Durability::ProcessCrash),
        ("power_loss", Durability::PowerLoss),
    ] {
        let memory = RotatingStore::new(durability);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("insert", name), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    memory.make_room(1);
                    entry(i, AGENT, "s-ltm")
                },
                |e| memory.get().insert(e).expect("insert"),
                BatchSize::SmallInput,
            )
        });
    }
    let memory = RotatingStore::new(Durability::ProcessCrash);
    // `insert_batch_embedding`: the same without the callers' vectors, which the store's
    // embedder (the default, hashing) then makes, as for a caller who passes none.
    let batches = INSERT_BATCHES
        .map(|batch| ("insert_batch", batch, true))
        .into_iter()
        .chain([("insert_batch_embedding", 1_000, false)]);
    for (name, batch, with_vectors) in batches {
        g.throughput(Throughput::Elements(batch as u64));
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new(name, batch), |b| {
            b.iter_batched(
                || {
                    memory.make_room(batch);
                    (0..batch)
                        .map(|_| {
                            i += 1;
                            let mut e = entry(i, AGENT, "s-batch");
                            if !with_vectors {
                                e.embedding = None;
                            }
                            e
                        })
                        .collect::<Vec<_>>()
                },
                |entries| memory.get().insert_batch(entries).expect("insert_batch"),
                BatchSize::PerIteration,
            )
        });
    }
    g.throughput(Throughput::Elements(1));
    let size = settings().fixture_size();
    g.bench_function(BenchmarkId::new("get", size), |b| {
        let f = big();
        let mut s = Scatter::new(11);
        b.iter(|| {
            let id = f.ids[s.next_index(f.ids.len())];
            black_box(f.memory.get(AGENT, id).expect("get"))
        })
    });
    g.finish();
}

/// `latency/open/<size>`: reopening a file store of `size` entries (384-d, one agent, closed
/// cleanly, so with its index snapshot) until its first vector query is answered with every
/// vector linked into the graph: what a restart costs before memory is back at full speed.
fn reopen(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency/open");
    g.sample_size(10);
    let query = &fixture::workload().queries(1, 0x09e7)[0];
    for size in settings().ltm_sizes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("open.db");
        // Built when the benchmark runs (not when a filter skips it), then closed: the snapshot
        // is saved.
        let build = || {
            eprintln!("latency/open: building a file store of {size} entries");
            let memory = Memory::open(Storage::File(db.clone()), MemoryConfig::default())
                .expect("open a file store");
            for chunk in fixture::workload().messages(size, 1, 0x09e7).chunks(1_000) {
                memory
                    .insert_batch(chunk.iter().map(Message::to_entry).collect())
                    .expect("insert_batch");
            }
            memory.wait_for_indexing();
        };
        let agent = fixture::workload().messages(1, 1, 0x09e7)[0]
            .agent
            .to_string();
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            if !db.exists() {
                build();
            }
            // One handle at a time (a store file has one), closed outside the timed part.
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let began = Instant::now();
                    let memory = Memory::open(Storage::File(db.clone()), MemoryConfig::default())
                        .expect("reopen");
                    // Searchable at full ANN speed: every vector in the graph (not also the
                    // link codes and refinement the linker makes after a load).
                    fixture::wait_until_searchable(&memory);
                    let q = SearchQuery::new(agent.as_str(), query.text.clone())
                        .with_mode(SearchMode::Vector)
                        .with_tiers(Tiers::LongTerm)
                        .with_vector(query.vector.clone())
                        .without_cache();
                    black_box(memory.search(&q).expect("search"));
                    total += began.elapsed();
                    drop(memory);
                }
                total
            })
        });
    }
    g.finish();
}

fn search(c: &mut Criterion) {
    let size = settings().fixture_size();
    let mut g = c.benchmark_group("latency/search");
    for (name, mode) in [
        ("keyword", SearchMode::Keyword),
        ("exact_vector", SearchMode::ExactVector),
        ("ann", SearchMode::Vector),
        ("hybrid", SearchMode::Hybrid),
    ] {
        g.bench_function(BenchmarkId::new(name, size), |b| {
            let f = big();
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                let q = search_query(AGENT, &f.queries[i % f.queries.len()], mode);
                black_box(f.memory.search(&q).expect("search"))
            })
        });
    }
    g.bench_function(BenchmarkId::new("cross_tier", size), |b| {
        let f = big();
        ensure_stm(f.memory_for_writes());
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let q = search_query(AGENT, &f.queries[i % f.queries.len()], SearchMode::Hybrid)
                .with_tiers(Tiers::Both);
            black_box(f.memory.search(&q).expect("search"))
        })
    });
    g.finish();
}

/// Fills a few short-term windows of the agent in the shared fixture (once), so cross-tier search
/// and context building have recent turns to merge.
fn ensure_stm(memory: &Memory) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for s in 0..4 {
            let session = format!("live-{s}");
            memory.open_session(AGENT, &session).expect("open_session");
            for i in 0..20 {
                memory
                    .append(entry(s * 20 + i, AGENT, &session))
                    .expect("append");
            }
        }
    });
}

/// The raw FTS5 table a user would hand-roll over the same corpus as the fixture.
fn build_fts5(f: &Fixture) -> (rusqlite::Connection, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = rusqlite::Connection::open(dir.path().join("fts5.db")).expect("open sqlite");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE VIRTUAL TABLE t USING fts5(content);",
    )
    .expect("create fts5 table");
    let msgs = fixture::workload().messages(f.size, 1, fixture::salt(f.size, 1));
    let tx = conn.unchecked_transaction().expect("begin");
    {
        let mut ins = tx
            .prepare("INSERT INTO t(content) VALUES (?1)")
            .expect("prepare");
        for m in &msgs {
            ins.execute([&m.text]).expect("insert");
        }
    }
    tx.commit().expect("commit");
    (conn, dir)
}

/// An FTS5 query matching any of the words, as keyword search does.
fn fts5_match(text: &str) -> String {
    text.split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn keyword_side_by_side(c: &mut Criterion) {
    let size = settings().fixture_size();
    let mut raw = None;
    let mut g = c.benchmark_group("latency/keyword");
    g.bench_function(BenchmarkId::new("memory_core", size), |b| {
        let f = big();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let q = search_query(AGENT, &f.queries[i % f.queries.len()], SearchMode::Keyword);
            black_box(f.memory.search(&q).expect("search"))
        })
    });
    g.bench_function(BenchmarkId::new("fts5_raw", size), |b| {
        let f = big();
        let (conn, _dir) = raw.get_or_insert_with(|| build_fts5(&f));
        let matches: Vec<String> = f.queries.iter().map(|q| fts5_match(&q.text)).collect();
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid, content FROM t WHERE t MATCH ?1 ORDER BY bm25(t) LIMIT 10",
            )
            .expect("prepare");
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let rows: Vec<(i64, String)> = stmt
                .query_map([&matches[i % matches.len()]], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            black_box(rows)
        })
    });
    g.finish();
}

fn cache(c: &mut Criterion) {
    let size = settings().fixture_size();
    let mut g = c.benchmark_group("latency/cache");
    g.bench_function(BenchmarkId::new("hit", size), |b| {
        let f = big();
        let q = SearchQuery::new(AGENT, f.queries[0].text.as_str())
            .with_k(10)
            .with_mode(SearchMode::Hybrid)
            .with_tiers(Tiers::LongTerm)
            .with_vector(f.queries[0].vector.clone());
        f.memory.search(&q).expect("prime the cache");
        let before = f.memory.cache_stats();
        b.iter(|| black_box(f.memory.search(&q).expect("search")));
        let after = f.memory.cache_stats();
        if after.hits <= before.hits {
            eprintln!("warning: latency/cache/hit saw no cache hits; it measured misses");
        }
    });
    // A miss pays the full search the cache would have saved: the same queries, cache bypassed.
    g.bench_function(BenchmarkId::new("miss", size), |b| {
        let f = big();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let q = search_query(AGENT, &f.queries[i % f.queries.len()], SearchMode::Hybrid);
            black_box(f.memory.search(&q).expect("search"))
        })
    });
    g.finish();
}

fn consolidate(c: &mut Criterion) {
    const STM_ENTRIES: usize = 200;
    let mut g = c.benchmark_group("latency/consolidate");
    g.throughput(Throughput::Elements(STM_ENTRIES as u64));
    let mut warned = false;
    g.bench_function(BenchmarkId::new("stm_entries", STM_ENTRIES), |b| {
        b.iter_batched(
            || {
                let memory =
                    Memory::open(Storage::InMemory, MemoryConfig::default()).expect("open store");
                for i in 0..STM_ENTRIES {
                    let session = format!("s-{}", i / 20);
                    memory.open_session(AGENT, &session).expect("open_session");
                    // High importance so consolidation really moves entries to long-term memory.
                    let e = entry(i, AGENT, &session).with_importance(0.95);
                    memory.append(e).expect("append");
                }
                memory
            },
            |memory| {
                let report = memory.consolidate().expect("consolidate");
                if report.promoted == 0 && !warned {
                    warned = true;
                    eprintln!("warning: consolidate moved nothing; it measured a scan only");
                }
                memory
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn context_request(f: &Fixture, i: usize, tool_defs: &[ToolDefinition]) -> ContextQuery {
    context_query(
        AGENT,
        "live-0",
        &f.queries[i % f.queries.len()],
        tool_defs,
        4_000,
    )
}

fn context(c: &mut Criterion) {
    let size = settings().fixture_size();
    let tool_defs = tools(16);
    let mut g = c.benchmark_group("latency/context");
    g.bench_function(BenchmarkId::new("build", size), |b| {
        let f = big();
        ensure_stm(f.memory_for_writes());
        let mut i = 0usize;
        b.iter_batched(
            || {
                i += 1;
                context_request(&f, i, &tool_defs)
            },
            |req| f.memory.build_context(&req).expect("build_context"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn api_overhead(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("latency/api");
    g.bench_function("get_sync", |b| {
        let f = big();
        let mut s = Scatter::new(5);
        b.iter(|| black_box(f.memory.get(AGENT, f.ids[s.next_index(f.ids.len())])))
    });
    g.bench_function("get_async", |b| {
        let f = big();
        let a = AsyncMemory::new(f.memory.clone());
        let mut s = Scatter::new(5);
        b.to_async(&rt).iter(|| {
            let id = f.ids[s.next_index(f.ids.len())];
            let a = a.clone();
            async move { black_box(a.get(AGENT, id).await) }
        })
    });
    // Both into fresh stores of the same size (see `in_fresh_stores`): one growing store for
    // both would have the async calls pay for the sync ones' hand-off list.
    let api_store = || {
        let memory = Memory::open(Storage::InMemory, MemoryConfig::default()).expect("open store");
        memory.open_session(AGENT, "s-api").expect("open_session");
        memory
    };
    g.bench_function("append_sync", |b| {
        b.iter_custom(|iters| {
            timed_appends(in_fresh_stores(iters, api_store, |i| {
                entry(i, AGENT, "s-api")
            }))
        })
    });
    g.bench_function("append_async", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for (memory, entries) in in_fresh_stores(iters, api_store, |i| entry(i, AGENT, "s-api"))
            {
                let a = AsyncMemory::new(memory);
                let start = Instant::now();
                for e in entries {
                    a.append(e).await.expect("append");
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// Bytes of the embeddings an exact scan of the fixture reads, as the default configuration
/// holds them (halves: 768 bytes per 384-d vector).
fn arena_bytes() -> usize {
    use memory_core::index::vector::{VectorIndex, VectorIndexConfig};
    let config = VectorIndexConfig {
        quantization: memory_core::MemoryConfig::default().search.quantization,
        ..VectorIndexConfig::new(384)
    };
    let index = VectorIndex::new(config).expect("the default vector index settings are valid");
    settings().fixture_size() * index.bytes_per_vector()
}

/// Sums a buffer with eight independent accumulators so the loop is bound by memory, not by
/// the floating-point add latency.
fn seq_read(buf: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for chunk in buf.chunks_exact(8) {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum()
}

fn reference(c: &mut Criterion) {
    let bytes = arena_bytes();
    let mut g = c.benchmark_group("latency/reference");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(BenchmarkId::new("seq_read", bytes), |b| {
        let buf: Vec<f32> = (0..bytes / 4).map(|i| (i % 7) as f32).collect();
        b.iter(|| black_box(seq_read(black_box(&buf))))
    });
    g.finish();
}

/// What embedding costs on the write path: one sentence, and a batch of 32 (what `insert_batch`
/// hands the embedder), per embedder: `latency/embed/<embedder>/{sentence,batch32}`.
fn embedding(c: &mut Criterion) {
    let texts: Vec<&str> = pool().iter().take(32).map(|m| m.text.as_str()).collect();
    #[cfg_attr(not(feature = "minilm"), allow(unused_mut))]
    let mut embedders: Vec<(String, Arc<dyn memory_core::Embedder>)> = vec![(
        "hashing".into(),
        Arc::new(
            memory_core::HashingEmbedder::new(MemoryConfig::default().embedding_dim)
                .expect("default dimension"),
        ),
    )];
    #[cfg(feature = "minilm")]
    match memory_bench::retrieval::NamedEmbedder::minilm() {
        Ok(m) => embedders.push((m.name, m.embedder)),
        Err(why) => eprintln!("latency/embed/minilm SKIPPED: {why}"),
    }
    let mut g = c.benchmark_group("latency/embed");
    for (name, embedder) in &embedders {
        let mut i = 0usize;
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new(name.as_str(), "sentence"), |b| {
            b.iter(|| {
                i += 1;
                black_box(embedder.embed(texts[i % texts.len()]))
            })
        });
        g.throughput(Throughput::Elements(texts.len() as u64));
        g.bench_function(BenchmarkId::new(name.as_str(), "batch32"), |b| {
            b.iter(|| black_box(embedder.embed_batch(&texts)))
        });
    }
    g.finish();
}

fn tails(c: &mut Criterion) {
    let memory = RefCell::new(stm_store());
    let mut i = 0usize;
    tail::bench_tail_with_setup(
        c,
        "stm_append",
        || {
            i += 1;
            if i.is_multiple_of(STM_ROTATE) {
                // Dropping the old store happens here, outside the timed call.
                *memory.borrow_mut() = stm_store();
            }
            entry(i, AGENT, &format!("s-{}", i % 64))
        },
        |e| {
            memory.borrow().append(e).expect("append");
        },
    );
    for (op, durability) in [
        ("ltm_insert", Durability::ProcessCrash),
        ("ltm_insert_power_loss", Durability::PowerLoss),
    ] {
        let store = RotatingStore::new(durability);
        let mut i = 0usize;
        tail::bench_tail_with_setup(
            c,
            op,
            || {
                i += 1;
                store.make_room(1);
                entry(i, AGENT, "s-tail")
            },
            |e| {
                store.get().insert(e).expect("insert");
            },
        );
    }
    // The fixture is built on the first call that needs it, so a filtered run skips it.
    let fx: OnceCell<Arc<Fixture>> = OnceCell::new();
    let mut s = Scatter::new(17);
    tail::bench_tail(c, "ltm_get", || {
        let f = fx.get_or_init(big);
        black_box(f.memory.get(AGENT, f.ids[s.next_index(f.ids.len())]).ok());
    });
    for (op, mode) in [
        ("keyword", SearchMode::Keyword),
        ("ann", SearchMode::Vector),
        ("hybrid", SearchMode::Hybrid),
    ] {
        let mut i = 0usize;
        tail::bench_tail_with_setup(
            c,
            op,
            || {
                i += 1;
                let f = fx.get_or_init(big);
                search_query(AGENT, &f.queries[i % f.queries.len()], mode)
            },
            |q| {
                black_box(fx.get_or_init(big).memory.search(&q).ok());
            },
        );
    }
    let tool_defs = tools(16);
    let mut i = 0usize;
    tail::bench_tail_with_setup(
        c,
        "hybrid_context",
        || {
            i += 1;
            let f = fx.get_or_init(big);
            ensure_stm(f.memory_for_writes());
            context_request(f, i, &tool_defs)
        },
        |req| {
            black_box(fx.get_or_init(big).memory.build_context(&req).ok());
        },
    );
    let cached: OnceCell<SearchQuery> = OnceCell::new();
    tail::bench_tail(c, "cache_hit", || {
        let f = fx.get_or_init(big);
        let q = cached.get_or_init(|| {
            let q = SearchQuery::new(AGENT, f.queries[0].text.as_str())
                .with_k(10)
                .with_mode(SearchMode::Hybrid)
                .with_tiers(Tiers::LongTerm)
                .with_vector(f.queries[0].vector.clone());
            // Prime the cache so every timed call is a hit.
            let _ = f.memory.search(&q);
            q
        });
        black_box(f.memory.search(q).ok());
    });
}

/// The sustained ingest beside `tail/ann_during_ingest*`: 20,000 entries/s into the
/// 100,000-entry fixture (the target), proportionally less into smaller fixtures, in
/// batches of 1/100 s.
const INGEST_RATE_PER_100K: f64 = 20_000.0;

/// Entries per second the writer is paced at beside a fixture of `size` entries.
fn ingest_rate(size: usize) -> f64 {
    INGEST_RATE_PER_100K * size as f64 / 100_000.0
}

/// `SearchConfig::max_unlinked` of the store behind `tail/ann_during_ingest_bounded`.
const BOUNDED_UNLINKED: usize = 4_096;

/// What the writer beside each `tail/ann_during_ingest*` did, for the report.
static INGESTS: Mutex<Vec<(&'static str, IngestSummary)>> = Mutex::new(Vec::new());

/// `tail/ann_during_ingest/p50|p95|p99`: ANN search of the shared fixture's agent while a writer
/// commits new entries into the same agent at a fixed rate. Until the background linker has
/// linked a new vector into the HNSW graph, every ANN query scans it exactly, so this is what
/// sustained ingest costs readers; the report adds how far the linker fell behind.
///
/// `tail/ann_during_ingest_bounded/...`: the same on a store of the same size opened with
/// `max_unlinked` = 4,096, where writes wait for linking instead (the report gives the rate the
/// writer then reached).
///
/// The writers run only during the timed calls and stop after twice as many entries as the
/// fixture holds (the later samples of a run that reaches that limit search without writes; the
/// report says so).
fn ann_during_ingest(c: &mut Criterion) {
    ingest_beside_ann(c, "ann_during_ingest", big);
    ingest_beside_ann(c, "ann_during_ingest_bounded", || {
        let s = settings();
        let config = MemoryConfig {
            search: memory_core::SearchConfig {
                max_unlinked: Some(BOUNDED_UNLINKED),
                ..Default::default()
            },
            ..MemoryConfig::default()
        };
        let note = format!(
            " (max_unlinked {})",
            fixture::group_digits(BOUNDED_UNLINKED)
        );
        let size = s.fixture_size();
        let salt = fixture::salt(size, 1);
        Arc::new(
            fixture::build_with(size, 1, s.query_count(), salt, config, &note)
                .expect("build the bounded fixture"),
        )
    });
}

/// `tail/<op>/p50|p95|p99` of ANN search on the fixture `make` returns while a paced writer
/// ingests into the same agent.
fn ingest_beside_ann(c: &mut Criterion, op: &'static str, make: impl Fn() -> Arc<Fixture>) {
    let s = settings();
    let size = s.fixture_size();
    let rate = ingest_rate(size);
    let batch = ((rate / 100.0).round() as usize).max(1);
    // Built on the first sample that needs it, so a filtered run skips it.
    let fx: OnceCell<(Arc<Fixture>, PacedIngest)> = OnceCell::new();
    let started = || {
        fx.get_or_init(|| {
            let f = make();
            let limit = 2 * size;
            let messages = fixture::workload().messages(limit, 1, 0x1a9e57);
            let writer = PacedIngest::start(
                f.memory_for_writes().clone(),
                rate,
                batch,
                limit,
                move |i| {
                    let m = &messages[i % messages.len()];
                    NewEntry::new(AGENT, "s-ingest", m.role, m.text.clone())
                        .with_embedding(m.embedding.clone())
                        .with_importance(m.importance)
                },
            );
            (f, writer)
        })
    };
    let mut i = 0usize;
    tail::bench_tail_around(
        c,
        op,
        |timed| {
            if timed {
                started().1.resume();
            } else {
                started().1.pause();
            }
        },
        || {
            i += 1;
            let f = &started().0;
            search_query(AGENT, &f.queries[i % f.queries.len()], SearchMode::Vector)
        },
        |q| {
            black_box(started().0.memory.search(&q).ok());
        },
    );
    if let Some((_, writer)) = fx.into_inner() {
        let summary = writer.stop();
        INGESTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((op, summary));
    }
}

/// The writers' side of `tail/ann_during_ingest*`.
fn ingest_report(targets: &Targets) {
    let size = settings().fixture_size();
    let paced = ingest_rate(size);
    let per_sec = |r: f64| fixture::group_digits(r.round() as usize);
    for (op, w) in INGESTS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!(
            "{op}: writer {} entries/s (paced at {}) into the {}-entry fixture, {} written{}; \
             unlinked backlog at most {} entries = {:.2} s of ingest (target <= 1 s at 20,000/s \
             and 100K); all linked {:.2} s after the writer stopped; ANN target {}",
            per_sec(w.rate()),
            per_sec(paced),
            fixture::group_digits(size),
            fixture::group_digits(w.inserted),
            if w.hit_limit {
                " (its limit: later samples ran without writes)"
            } else {
                ""
            },
            fixture::group_digits(w.max_unlinked),
            w.max_lag().as_secs_f64(),
            w.drain.as_secs_f64(),
            tail::target_of(op, targets),
        );
        if let Some(e) = &w.error {
            eprintln!("warning: the writer beside tail/{op} stopped at an error: {e}");
        }
    }
}

fn report() {
    let targets = Targets::load();
    let rows = tail::registry().summary();
    if !rows.is_empty() {
        println!("\n{}", tail::format_table(&rows, &targets));
    }
    if !rows.is_empty() && !settings().test_mode {
        let path = locate::criterion_dir().join("membench-tail.json");
        match tail::write_json(&rows, &path) {
            Ok(()) => println!("tail table written to {}", path.display()),
            Err(e) => eprintln!("warning: could not write {}: {e}", path.display()),
        }
    }
    batch_insert_rates(&targets);
    ingest_report(&targets);
    // Exact scan efficiency against the machine's sequential-read bandwidth, from this run.
    let size = settings().fixture_size();
    let bytes = arena_bytes() as f64;
    let scan = stats::fresh_median(&stats::bench_dir(
        "latency/search",
        &["exact_vector", &size.to_string()],
    ));
    let read = stats::fresh_median(&stats::bench_dir(
        "latency/reference",
        &["seq_read", &(bytes as usize).to_string()],
    ));
    if let (Some(scan), Some(read)) = (scan, read) {
        let scan_gbs = bytes / scan;
        let read_gbs = bytes / read;
        println!(
            "exact scan of {size} x 384-d vectors ({:?} arena): {scan_gbs:.2} GB/s = {:.0}% of measured sequential read {read_gbs:.2} GB/s (target >= 50%)",
            memory_core::MemoryConfig::default().search.quantization,
            100.0 * scan_gbs / read_gbs
        );
    }
}

/// Entries per second of each batched insert in this run (Criterion's median time per batch),
/// with its budget.
fn batch_insert_rates(targets: &Targets) {
    let rates: Vec<String> = INSERT_BATCHES
        .iter()
        .filter_map(|&batch| {
            let dir = stats::bench_dir("latency/ltm", &["insert_batch", &batch.to_string()]);
            let rate = batch as f64 * 1e9 / stats::fresh_median(&dir)?;
            let id = format!("latency/ltm/insert_batch/{batch}");
            let per_sec = |r: f64| fixture::group_digits(r.round() as usize);
            let target = targets
                .budget(&id, Kind::Throughput)
                .map_or(String::new(), |b| {
                    format!(" (target {} {}/s)", b.bound().symbol(), per_sec(b.limit()))
                });
            Some(format!(
                "insert_batch/{batch} {} entries/s{target}",
                per_sec(rate)
            ))
        })
        .collect();
    if !rates.is_empty() {
        println!("ltm {}; {}", rates.join(", "), targets.note());
    }
}
