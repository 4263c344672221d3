//! Throughput under concurrency: a tokio multi-thread runtime with 1, 2, 4 and 8 concurrent
//! workers driving the async facade, for pure long-term writes, pure search and a mixed 80% search
//! / 20% write load. Criterion reports operations per second (`Throughput::Elements`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use memory_bench::fixture::{self, Fixture};
use memory_bench::queries::search_query;
use memory_bench::{settings, stats};
use memory_core::{AsyncMemory, NewEntry, SearchMode};

const AGENT: &str = "agent-0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Store,
    Search,
    Mixed,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Store => "store",
            Load::Search => "search",
            Load::Mixed => "mixed_80_20",
        }
    }

    /// Whether operation number `i` of a worker is a write.
    fn writes(self, i: u64) -> bool {
        match self {
            Load::Store => true,
            Load::Search => false,
            // 1 in 5 operations writes: 80% search / 20% write, interleaved evenly.
            Load::Mixed => i % 5 == 4,
        }
    }
}

fn main() {
    stats::run_started();
    let s = settings();
    eprintln!("{}", s.banner());
    let mut c = s.criterion();
    for load in [Load::Store, Load::Search, Load::Mixed] {
        if load != Load::Store {
            // The store load leaves vectors for the background linker to link: each load starts
            // with it idle, so that no worker count of the next one pays for the previous one's
            // backlog (searches on one worker would share the cores with it, on two not).
            fixture::shared(s.fixture_size(), s.query_count())
                .memory
                .wait_for_indexing();
        }
        bench_load(&mut c, load);
    }
    ingest_searchable(&mut c);
    c.final_summary();
    fixture::release_all();
    report();
}

/// `throughput/ingest_searchable/<n>`: entries per second from the first `insert_batch` (of 1,000)
/// into a fresh store until all `n` are linked into the HNSW graph, i.e. searchable at full ANN
/// speed, rather than until the commits returned (the refinement of quickly linked vectors that
/// follows is not timed).
fn ingest_searchable(c: &mut Criterion) {
    let s = settings();
    let n = if s.test_mode {
        1_000
    } else {
        match s.profile {
            memory_bench::profile::Profile::Quick => 2_000,
            _ => 10_000,
        }
    };
    let messages = fixture::workload().messages(n, 1, 0x1a9e);
    let mut g = c.benchmark_group("throughput/ingest_searchable");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let memory =
                    memory_core::Memory::open(memory_core::Storage::Temporary, Default::default())
                        .expect("open a temporary store");
                let began = Instant::now();
                for chunk in messages.chunks(1_000) {
                    memory
                        .insert_batch(chunk.iter().map(|m| m.to_entry()).collect())
                        .expect("insert_batch");
                }
                fixture::wait_until_searchable(&memory);
                total += began.elapsed();
                memory.wait_for_indexing();
            }
            total
        })
    });
    g.finish();
}

/// A writer's entry: pool messages re-addressed to the worker's own agent, so writes never change
/// what the searching agent finds.
fn write_entry(worker: usize, i: u64) -> NewEntry {
    let pool = pool();
    let m = &pool[(i as usize * 7 + worker) % pool.len()];
    NewEntry::new(format!("writer-{worker}"), "s-0", m.role, m.text.clone())
        .with_embedding(m.embedding.clone())
        .with_importance(m.importance)
}

fn pool() -> &'static [memory_bench::workload::Message] {
    static POOL: std::sync::OnceLock<Vec<memory_bench::workload::Message>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| fixture::workload().messages(2_048, 4, 0x7470))
}

/// Runs `iters` operations split over `workers` concurrent tasks and returns the wall time.
async fn run(
    f: Arc<Fixture>,
    mem: AsyncMemory,
    load: Load,
    workers: usize,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(workers);
    for w in 0..workers {
        // Spread the remainder so exactly `iters` operations run in total.
        let share = iters / workers as u64 + u64::from((w as u64) < iters % workers as u64);
        let mem = mem.clone();
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..share {
                if load.writes(i) {
                    mem.insert(write_entry(w, i)).await.expect("insert");
                } else {
                    let q = &f.queries[(i as usize * workers + w) % f.queries.len()];
                    let q = search_query(AGENT, q, SearchMode::Hybrid);
                    black_box(mem.search(q).await.expect("search"));
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("worker task");
    }
    start.elapsed()
}

fn bench_load(c: &mut Criterion, load: Load) {
    let s = settings();
    let mut g = c.benchmark_group(format!("throughput/{}", load.name()));
    g.throughput(Throughput::Elements(1));
    for workers in s.worker_counts() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("tokio runtime");
        g.bench_function(BenchmarkId::from_parameter(workers), |b| {
            let f = fixture::shared(s.fixture_size(), s.query_count());
            let mem = AsyncMemory::new(f.memory_for_writes().clone());
            b.to_async(&rt)
                .iter_custom(|iters| run(f.clone(), mem.clone(), load, workers, iters))
        });
    }
    g.finish();
}

fn report() {
    let s = settings();
    for load in [Load::Store, Load::Search, Load::Mixed] {
        let group = format!("throughput/{}", load.name());
        let per_op: Vec<(usize, f64)> = s
            .worker_counts()
            .into_iter()
            .filter_map(|w| {
                stats::fresh_median(&stats::bench_dir(&group, &[&w.to_string()])).map(|t| (w, t))
            })
            .collect();
        let Some(&(_, one)) = per_op.iter().find(|(w, _)| *w == 1) else {
            continue;
        };
        let line: Vec<String> = per_op
            .iter()
            .map(|(w, t)| format!("{w}w {:.0} ops/s ({:.2}x)", 1e9 / t, one / t))
            .collect();
        println!("{group}: {}", line.join(", "));
    }
    println!("(target: search with 2 workers >= 1.8x one worker)");
}
