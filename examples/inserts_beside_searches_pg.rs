//! The PostgreSQL twin of `inserts_beside_searches.rs`: what writing back the searches'
//! retrieval counts costs a PostgreSQL + pgvector long-term store, and one-entry inserts beside
//! a search loop.
//!
//! `fill` builds a base database of `N` entries of `agent-0` (the benchmark corpus, 384-d
//! vectors), vacuumed and analyzed. Each `run` measures a fresh copy of it
//! (`CREATE DATABASE ... TEMPLATE`, dropped after), so that runs of two builds start from the
//! same rows, pages and statistics (a build that migrates the schema does so in its copy):
//!
//! 0. ANN searches of `agent-0` alone for 2 x `SECONDS` (their retrievals stay in RAM).
//! 1. Write-back, `ROUNDS` times: `CHECKPOINT` (so each round pays its full-page images, the
//!    worst case of a checkpoint cycle), `SEARCHERS` threads search for `SECONDS`, then
//!    `Memory::flush` writes their counts in one request: its time, the WAL it wrote
//!    (`pg_current_wal_lsn()` before and after) and the distinct entries it counted.
//! 2. Inserts: one entry every 10 ms, 300 alone, then 600 beside the searchers (whose counts
//!    ride along with an insert's transaction about once a second; at most 60 s of them):
//!    p50/p90/p99/max, and the WAL of the phase.
//!
//! Then the relations' sizes before and after, and the tables' update counters
//! (`pg_stat_user_tables`, read after the store's connections closed, so that they are flushed).
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo run --release --features postgres --example inserts_beside_searches_pg -- fill [N]
//! cargo run --release --features postgres --example inserts_beside_searches_pg -- run [ROUNDS] [SECONDS] [SEARCHERS]
//! ```
//! The server is `MEMORY_CORE_POSTGRES_URL`'s (its role must create databases); the base
//! database is `MEMBENCH_ACCESS_BASE` (default `access_base`) on it.
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memory_bench::fixture;
use memory_bench::measure::{latency_summary, ms, percentile};
use memory_bench::queries::search_query;
use memory_bench::workload::Query;
use memory_core::{EntryId, Memory, MemoryConfig, NewEntry, PostgresConfig, SearchMode, Storage};

const AGENT: &str = "agent-0";
const SCHEMA: &str = "memory_core";
/// Inserts beside the searches stop after this long even when fewer than 600 were made (a
/// write-back that takes longer than its interval makes every insert carry the next one).
const BESIDE_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = memory_bench::servers::postgres_url().unwrap_or_else(|why| {
        eprintln!("{why}");
        std::process::exit(2)
    });
    let base = std::env::var("MEMBENCH_ACCESS_BASE").unwrap_or_else(|_| "access_base".into());
    let admin = Admin::connect(&url);
    match args.first().map(String::as_str) {
        Some("fill") => {
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
            fill(&admin, &url, &base, n);
        }
        Some("run") => {
            let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
            let seconds: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1.0);
            let searchers: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2);
            let copy = format!("{base}_run_{}", std::process::id());
            admin.exec(&format!("DROP DATABASE IF EXISTS {copy}"));
            let t = Instant::now();
            admin.exec(&format!(
                "CREATE DATABASE {copy} TEMPLATE {base} STRATEGY FILE_COPY"
            ));
            println!(
                "copied {base} to {copy} in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            run(&with_database(&url, &copy), rounds, seconds, searchers);
            admin.exec(&format!("DROP DATABASE {copy} WITH (FORCE)"));
        }
        _ => {
            eprintln!(
                "usage: inserts_beside_searches_pg fill [N] | run [ROUNDS] [SECONDS] [SEARCHERS]"
            );
            std::process::exit(2)
        }
    }
}

/// `url` naming database `db` instead of its own.
fn with_database(url: &str, db: &str) -> String {
    let (server, _) = url.rsplit_once('/').expect("a URL ending in /<database>");
    format!("{server}/{db}")
}

fn open(url: &str) -> Memory {
    let pg = PostgresConfig::new(url)
        .with_schema(SCHEMA)
        .with_application_name("inserts_beside_searches_pg");
    Memory::open(Storage::Postgres(pg), MemoryConfig::default()).expect("open the store")
}

fn fill(admin: &Admin, url: &str, base: &str, n: usize) {
    admin.exec(&format!("DROP DATABASE IF EXISTS {base} WITH (FORCE)"));
    admin.exec(&format!("CREATE DATABASE {base}"));
    let url = with_database(url, base);
    let memory = open(&url);
    let messages = fixture::workload().messages(n, 1, 0x5eed);
    let t = Instant::now();
    fixture::fill(&memory, &messages, &format!("{n}-entry PostgreSQL store")).expect("fill");
    println!(
        "{n} entries stored in {:.1} s (schema version {})",
        t.elapsed().as_secs_f64(),
        memory_core::POSTGRES_SCHEMA_VERSION
    );
    drop(memory);
    let db = Admin::connect(&url);
    db.exec(&format!("VACUUM (ANALYZE) {SCHEMA}.entries"));
    db.exec("CHECKPOINT");
}

fn run(url: &str, rounds: usize, seconds: f64, searchers: usize) {
    let db = Admin::connect(url);
    let memory = open(url);
    println!(
        "{} entries of {AGENT}; this build's schema version {}",
        memory.count(AGENT).expect("count"),
        memory_core::POSTGRES_SCHEMA_VERSION
    );
    let sizes_before = db.sizes();
    let queries = fixture::workload().queries(2_000, 77);
    let next = AtomicUsize::new(0);

    // 0. Searches alone.
    let mut latencies = Vec::new();
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < 2.0 * seconds {
        let q = next_query(&queries, &next);
        let start = Instant::now();
        memory.search(&q).expect("search");
        latencies.push(start.elapsed());
    }
    let rate = latencies.len() as f64 / t.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "  searches alone, one thread: {rate:.0}/s, p50 {:.2} p99 {:.2} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    // Their counts are written now, so that round 0 starts from none pending.
    memory.flush().expect("flush");

    // 1. Write-backs.
    for round in 0..rounds {
        db.exec("CHECKPOINT");
        let retrieved = Mutex::new(HashSet::<EntryId>::new());
        let searches = AtomicUsize::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..searchers.max(1) {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while t.elapsed().as_secs_f64() < seconds {
                        let q = next_query(&queries, &next);
                        for h in memory.search(&q).expect("search") {
                            mine.push(h.entry.id);
                        }
                        searches.fetch_add(1, Ordering::Relaxed);
                    }
                    retrieved.lock().unwrap().extend(mine);
                });
            }
        });
        let lsn = db.wal_lsn();
        let t = Instant::now();
        memory.flush().expect("flush");
        let took = t.elapsed();
        let wal = db.wal_lsn() - lsn;
        let distinct = retrieved.into_inner().unwrap().len();
        println!(
            "  write-back {round}: {} searches, {} distinct entries counted; it took {:.1} ms \
             and wrote {:.2} MB of WAL ({:.0} bytes per entry)",
            searches.into_inner(),
            distinct,
            ms(took),
            wal as f64 / 1e6,
            wal as f64 / distinct.max(1) as f64
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
    let mut beside_wal = 0;
    let (alone, beside, searches) = std::thread::scope(|s| {
        let loops: Vec<_> = (0..searchers.max(1))
            .map(|_| {
                s.spawn(|| {
                    while !searching.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        memory.search(&next_query(&queries, &next)).expect("search");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut alone = Vec::new();
        let mut beside = Vec::new();
        let mut began = Instant::now();
        let mut lsn = 0;
        for (i, e) in feed.into_iter().enumerate() {
            if i > 300 && began.elapsed() > BESIDE_LIMIT {
                break;
            }
            if i == 300 {
                lsn = db.wal_lsn();
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
        let elapsed = began.elapsed().as_secs_f64();
        beside_wal = db.wal_lsn() - lsn;
        let n: usize = loops.into_iter().map(|l| l.join().expect("searcher")).sum();
        (alone, beside, n as f64 / elapsed)
    });
    show("alone", alone);
    show(&format!("beside {searches:.0} searches/s"), beside);
    println!(
        "  WAL while inserting beside the searches: {:.2} MB",
        beside_wal as f64 / 1e6
    );
    drop(memory);
    // The closed connections' statistics reach pg_stat_user_tables when their backends exit.
    std::thread::sleep(Duration::from_millis(1_500));
    let sizes_after = db.sizes();
    println!("  relation sizes (MB), before -> after:");
    for ((name, before), (_, after)) in sizes_before.iter().zip(&sizes_after) {
        println!(
            "    {name:<34} {:>8.2} -> {:>8.2}",
            *before as f64 / 1e6,
            *after as f64 / 1e6
        );
    }
    for row in db.table_stats() {
        println!("  {row}");
    }
}

fn next_query(queries: &[Query], next: &AtomicUsize) -> memory_core::SearchQuery {
    let i = next.fetch_add(1, Ordering::Relaxed);
    search_query(AGENT, &queries[i % queries.len()], SearchMode::Vector)
}

fn show(name: &str, mut v: Vec<Duration>) {
    let summary = latency_summary(&mut v, Duration::from_millis(20));
    println!("  insert one, {name}: {summary}");
}

/// A plain connection for the measurements (not the store's pool).
struct Admin {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Admin {
    fn connect(url: &str) -> Admin {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect to PostgreSQL");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        Admin { runtime, client }
    }

    fn exec(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    fn rows(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.runtime
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    /// The WAL position, in bytes.
    fn wal_lsn(&self) -> i64 {
        self.rows("SELECT (pg_current_wal_lsn() - '0/0')::bigint")[0].get(0)
    }

    /// Bytes of the store's tables and indexes (the access table's where there is one).
    fn sizes(&self) -> Vec<(String, i64)> {
        self.rows(&format!(
            "SELECT c.relname::text, pg_relation_size(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{SCHEMA}' AND c.relkind IN ('r', 'i') \
               AND (c.relname LIKE 'entries%' OR c.relname LIKE 'access%') \
             ORDER BY c.relname"
        ))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    fn table_stats(&self) -> Vec<String> {
        self.rows(&format!(
            "SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, \
                    autovacuum_count + vacuum_count \
             FROM pg_stat_user_tables WHERE schemaname = '{SCHEMA}' \
               AND relname IN ('entries', 'access') ORDER BY relname"
        ))
        .iter()
        .map(|r| {
            format!(
                "{}: inserted {}, updated {} ({} HOT), dead {}, vacuums {}",
                r.get::<_, String>(0),
                r.get::<_, i64>(1),
                r.get::<_, i64>(2),
                r.get::<_, i64>(3),
                r.get::<_, i64>(4),
                r.get::<_, i64>(5)
            )
        })
        .collect()
    }
}
