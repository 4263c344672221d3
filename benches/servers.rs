//! The shared backend beside the embedded default: the same corpus and queries against a
//! PostgreSQL + pgvector long-term store and an embedded one, as Criterion ids
//! `latency/search/<mode>/postgres/<size>` and `latency/cache/hit/postgres/<size>`, the write
//! path as `latency/ltm/{insert,insert_batch_100}/postgres/<size>` (a committed insert of one
//! entry, of 100 in one transaction, into another agent of the same store), a printed
//! side-by-side table of per-query percentiles, and search throughput with 1/2/4/8 app
//! instances as separate processes on one server.
//!
//! Needs memory-bench built with `--features postgres` and `MEMORY_CORE_POSTGRES_URL`; without
//! either it prints that it was skipped and exits successfully, so a plain `cargo bench` needs no
//! server (with `MEMORY_CORE_REQUIRE_SERVERS=1`, as in `.ci/run`, a skip fails instead).

#[cfg(feature = "postgres")]
mod run {
    use std::hint::black_box;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use criterion::{BatchSize, BenchmarkId, Throughput};
    use memory_bench::fixture::{fill, workload};
    use memory_bench::queries::search_query;
    use memory_bench::settings;
    use memory_bench::workload::Query;
    use memory_core::{Memory, MemoryConfig, PostgresConfig, SearchMode, Storage};

    const AGENT: &str = "agent-0";
    /// The agent the write benchmarks write to.
    const WRITER: &str = "writer";
    const CHILD_VAR: &str = "MEMBENCH_SERVERS_CHILD";
    const MODES: [(&str, SearchMode); 4] = [
        ("keyword", SearchMode::Keyword),
        ("exact_vector", SearchMode::ExactVector),
        ("ann", SearchMode::Vector),
        ("hybrid", SearchMode::Hybrid),
    ];

    fn pg(url: &str, schema: &str) -> PostgresConfig {
        PostgresConfig::new(url)
            .with_schema(schema)
            .with_application_name("memory-bench")
    }

    fn open_pg(url: &str, schema: &str) -> Memory {
        Memory::open(Storage::Postgres(pg(url, schema)), MemoryConfig::default())
            .unwrap_or_else(|e| panic!("open the PostgreSQL store: {e}"))
    }

    /// Per-query latencies of `mode` over `queries`, sorted (microseconds).
    fn latencies(m: &Memory, queries: &[Query], mode: SearchMode, n: usize) -> Vec<f64> {
        let mut out: Vec<f64> = (0..n)
            .map(|i| {
                let q = search_query(AGENT, &queries[i % queries.len()], mode);
                let t = Instant::now();
                black_box(m.search(&q).expect("search"));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out
    }

    fn pct(sorted: &[f64], p: f64) -> f64 {
        sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
    }

    /// A child instance: hybrid searches until the deadline, then prints how many.
    pub fn child(spec: &str) {
        let mut parts = spec.split('\t');
        let (url, schema, size, until) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0),
            parts
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0),
        );
        let m = open_pg(url, schema);
        let queries = workload().queries(256, size as u64);
        // Warm the connections before the common start.
        for q in queries.iter().take(8) {
            black_box(m.search(&search_query(AGENT, q, SearchMode::Hybrid)).ok());
        }
        let wall = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        while wall() < until - 3_000 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut n = 0usize;
        while wall() < until {
            let q = search_query(AGENT, &queries[n % queries.len()], SearchMode::Hybrid);
            black_box(m.search(&q).expect("search"));
            n += 1;
        }
        println!("searches {n}");
    }

    /// Hybrid searches per second of `instances` processes searching at once for 3 s.
    fn throughput(url: &str, schema: &str, size: usize, instances: usize) -> f64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Starts together 4 s from now (time to connect), measures 3 s.
        let until = wall + 7_000;
        let children: Vec<_> = (0..instances)
            .map(|_| {
                Command::new(std::env::current_exe().expect("own path"))
                    .env(CHILD_VAR, format!("{url}\t{schema}\t{size}\t{until}"))
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn an instance")
            })
            .collect();
        let mut total = 0usize;
        for c in children {
            let out = c.wait_with_output().expect("instance output");
            let text = String::from_utf8_lossy(&out.stdout);
            total += text
                .lines()
                .find_map(|l| l.strip_prefix("searches ")?.trim().parse::<usize>().ok())
                .unwrap_or(0);
        }
        total as f64 / 3.0
    }

    pub fn main() {
        let s = settings();
        let url = match memory_bench::servers::postgres_url() {
            Ok(url) => url,
            Err(why) => return super::skipped(&why),
        };
        eprintln!("{}", s.banner());
        let sizes: Vec<usize> = if s.test_mode {
            vec![1_000]
        } else {
            s.ltm_sizes().into_iter().filter(|n| *n >= 10_000).collect()
        };
        let mut c = s.criterion();
        let mut table = Vec::new();
        let mut scaling = Vec::new();
        for &size in &sizes {
            let schema = format!("bench_{}_{size}", std::process::id());
            let messages = workload().messages(size, 1, size as u64);
            let queries = workload().queries(256, size as u64);
            let postgres = open_pg(&url, &schema);
            let embedded = Memory::open(Storage::Temporary, MemoryConfig::default())
                .expect("open an embedded store");
            fill(
                &postgres,
                &messages,
                &format!("{size}-entry PostgreSQL store"),
            )
            .expect("fill");
            fill(
                &embedded,
                &messages,
                &format!("{size}-entry embedded store"),
            )
            .expect("fill");

            let mut g = c.benchmark_group("latency/search");
            for (name, mode) in MODES {
                g.bench_function(BenchmarkId::new(format!("{name}/postgres"), size), |b| {
                    let mut i = 0usize;
                    b.iter(|| {
                        i += 1;
                        let q = search_query(AGENT, &queries[i % queries.len()], mode);
                        black_box(postgres.search(&q).expect("search"))
                    })
                });
            }
            g.finish();
            let mut g = c.benchmark_group("latency/cache");
            g.bench_function(BenchmarkId::new("hit/postgres", size), |b| {
                let mut q = search_query(AGENT, &queries[0], SearchMode::Hybrid);
                q.use_cache = true;
                postgres.search(&q).expect("search");
                b.iter(|| black_box(postgres.search(&q).expect("search")))
            });
            g.finish();

            let n = if s.test_mode { 50 } else { 400 };
            for (name, mode) in MODES {
                let e = latencies(&embedded, &queries, mode, n);
                let p = latencies(&postgres, &queries, mode, n);
                table.push((size, name, e, p));
            }
            if !s.test_mode {
                let one = throughput(&url, &schema, size, 1);
                for k in [1usize, 2, 4, 8] {
                    let ops = if k == 1 {
                        one
                    } else {
                        throughput(&url, &schema, size, k)
                    };
                    scaling.push((size, k, ops, ops / one.max(1e-9)));
                }
            }
            // Writes last, into an agent of their own: the store the searches met stays as
            // filled (the vector index is shared by all agents).
            let writes = workload().messages(4_096, 1, size as u64 ^ 0x5752);
            let entry = |i: usize| {
                let mut e = writes[i % writes.len()].to_entry();
                e.agent_id = WRITER.into();
                e
            };
            let mut g = c.benchmark_group("latency/ltm");
            g.bench_function(BenchmarkId::new("insert/postgres", size), |b| {
                let mut i = 0usize;
                b.iter_batched(
                    || {
                        i += 1;
                        entry(i)
                    },
                    |e| black_box(postgres.insert(e).expect("insert")),
                    BatchSize::SmallInput,
                )
            });
            g.throughput(Throughput::Elements(100));
            g.bench_function(BenchmarkId::new("insert_batch_100/postgres", size), |b| {
                let mut i = 0usize;
                b.iter_batched(
                    || {
                        i += 100;
                        (i..i + 100).map(entry).collect::<Vec<_>>()
                    },
                    |batch| black_box(postgres.insert_batch(batch).expect("insert_batch")),
                    BatchSize::SmallInput,
                )
            });
            g.finish();
            drop(postgres);
            if let Err(e) = pg(&url, &schema).destroy_store() {
                eprintln!("warning: could not drop schema {schema}: {e}");
            }
        }
        c.final_summary();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "\nembedded vs PostgreSQL, per-query latency in ms (load average {})",
            load.trim()
        );
        println!(
            "{:>8} {:>13} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
            "entries", "mode", "emb p50", "emb p95", "emb p99", "pg p50", "pg p95", "pg p99"
        );
        for (size, name, e, p) in &table {
            println!(
                "{size:>8} {name:>13} | {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2}",
                pct(e, 0.5) / 1e3,
                pct(e, 0.95) / 1e3,
                pct(e, 0.99) / 1e3,
                pct(p, 0.5) / 1e3,
                pct(p, 0.95) / 1e3,
                pct(p, 0.99) / 1e3
            );
        }
        if !scaling.is_empty() {
            println!("\nhybrid search throughput, app instances as processes on one PostgreSQL");
            println!(
                "{:>8} {:>10} {:>12} {:>9}",
                "entries", "instances", "searches/s", "speed-up"
            );
            for (size, k, ops, up) in &scaling {
                println!("{size:>8} {k:>10} {ops:>12.0} {up:>8.2}x");
            }
        }
    }
}

fn main() {
    #[cfg(feature = "postgres")]
    {
        if let Ok(spec) = std::env::var("MEMBENCH_SERVERS_CHILD") {
            run::child(&spec);
            return;
        }
        run::main();
    }
    #[cfg(not(feature = "postgres"))]
    skipped(
        "memory-bench built without the `postgres` feature \
         (cargo bench --features postgres --bench servers)",
    );
}

/// Says why the bench did not run; with `MEMORY_CORE_REQUIRE_SERVERS=1` (CI with servers) a skip
/// is a failure, as it is for the server tests.
fn skipped(why: &str) {
    if memory_bench::servers::required() {
        eprintln!(
            "error: {}=1 but the servers bench cannot run: {why}",
            memory_bench::servers::REQUIRE_VAR
        );
        std::process::exit(1);
    }
    println!("servers bench skipped: {why}");
}
