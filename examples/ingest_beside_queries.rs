//! A paced ingest beside a loop of ANN queries on the 100,000-entry fixture (in a temporary
//! store): the writer's achieved rate and `insert_batch` latency percentiles, the largest
//! unlinked backlog, and ANN latency percentiles with the CPU time each query used (the rest
//! of its latency is waiting for a core). The Criterion bench `tail/ann_during_ingest` measures
//! the queries' side; this shows the writer's side too.
//!
//! By default the queries run back to back (a closed loop that keeps a core busy). With
//! `PROBE_QPS` they start on a fixed schedule instead and each latency counts from its scheduled
//! start, so a query that waited for an earlier slow one is charged the wait (no coordinated
//! omission). They arrive every `1 / PROBE_QPS` seconds, or with `PROBE_ARRIVALS=poisson` at
//! exponentially distributed gaps of that mean (a seeded Poisson process): at 100 queries/s the
//! fixed schedule falls on the writer's own 10 ms grid, so every query starts as a batch does.
//!
//! `PROBE_SLICE_US` asks the kernel for a shorter time slice for the query thread (Linux 6.12 and
//! later: `sched_setattr` with `sched_runtime`, no privilege needed, 100 us at the least): under
//! EEVDF a thread with a shorter slice gets earlier deadlines, so a writer that wakes does not
//! preempt it as readily. It is what an application can do for its own query threads; the
//! engine leaves the caller's threads as they are.
//!
//! ```text
//! cargo run --release --example ingest_beside_queries
//! PROBE_RATE=10000 cargo run --release --example ingest_beside_queries   # entries/s (default 20,000)
//! PROBE_NO_QUERIES=1 cargo run --release --example ingest_beside_queries # the writer alone
//! PROBE_ENTRIES=100000 cargo run --release --example ingest_beside_queries # entries written (30,000)
//! PROBE_QPS=200 cargo run --release --example ingest_beside_queries     # queries/s, open loop
//! PROBE_QPS=100 PROBE_ARRIVALS=poisson cargo run --release --example ingest_beside_queries
//! PROBE_SLICE_US=100 cargo run --release --example ingest_beside_queries  # query thread's slice
//! ```
use std::time::{Duration, Instant};

use memory_bench::fixture;
use memory_bench::measure::percentile;
use memory_bench::queries::search_query;
use memory_core::{MemoryConfig, NewEntry, SearchMode};
use rand::{Rng, SeedableRng};

fn main() {
    let total = setting("PROBE_ENTRIES", 30_000.0) as usize;
    let rate = setting("PROBE_RATE", 20_000.0);
    if rate == 0.0 {
        eprintln!("PROBE_RATE must be above 0");
        std::process::exit(2)
    }
    let batch = ((rate / 100.0) as usize).max(1);
    let qps = setting("PROBE_QPS", 0.0);
    let poisson = match std::env::var("PROBE_ARRIVALS").as_deref() {
        Err(_) | Ok("fixed") => false,
        Ok("poisson") => true,
        Ok(other) => {
            eprintln!("PROBE_ARRIVALS={other:?} is neither \"fixed\" nor \"poisson\"");
            std::process::exit(2)
        }
    };
    let slice = setting("PROBE_SLICE_US", 0.0);
    let size = 100_000;
    let f = fixture::build_with(
        size,
        1,
        200,
        fixture::salt(size, 1),
        MemoryConfig::default(),
        "",
    )
    .unwrap();
    fixture::wait_until_searchable(&f.memory);
    let agent = "agent-0";
    let messages = fixture::workload().messages(total, 1, 0x1a9e57);
    let queries_on = std::env::var("PROBE_NO_QUERIES").is_err();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ins, lat, cpu, lag) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let mut ins = Vec::new();
            let start = Instant::now();
            let mut due = start;
            let mut lag = 0;
            for chunk in messages.chunks(batch) {
                let now = Instant::now();
                if now < due {
                    std::thread::sleep(due - now);
                }
                due += Duration::from_secs_f64(batch as f64 / rate);
                let t = Instant::now();
                f.memory
                    .insert_batch(
                        chunk
                            .iter()
                            .map(|m| {
                                NewEntry::new(agent, "s", m.role, m.text.clone())
                                    .with_embedding(m.embedding.clone())
                            })
                            .collect(),
                    )
                    .unwrap();
                ins.push(t.elapsed());
                lag = lag.max(f.memory.pending_index_links());
            }
            let secs = start.elapsed().as_secs_f64();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            println!("writer: {:.0} entries/s", (ins.len() * batch) as f64 / secs);
            (ins, lag)
        });
        let mut lat = Vec::new();
        let mut cpu = Vec::new();
        let mut i = 0;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e3779b9);
        let mut due = Instant::now();
        if slice > 0.0 {
            if let Err(e) = request_slice(Duration::from_secs_f64(slice / 1e6)) {
                eprintln!("PROBE_SLICE_US={slice}: the kernel refused the slice: {e}");
                std::process::exit(2)
            }
        }
        while queries_on && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let q = search_query(agent, &f.queries[i % f.queries.len()], SearchMode::Vector);
            let t = if qps > 0.0 {
                // The gap to the next arrival: fixed, or drawn from the exponential distribution
                // (arrivals of a Poisson process, as of independent users).
                due += Duration::from_secs_f64(if poisson {
                    -(1.0 - rng.random::<f64>()).ln() / qps
                } else {
                    1.0 / qps
                });
                let now = Instant::now();
                if now < due {
                    std::thread::sleep(due - now);
                }
                due
            } else {
                Instant::now()
            };
            i += 1;
            let cpu_before = thread_cpu_time();
            f.memory.search(&q).unwrap();
            lat.push(t.elapsed());
            cpu.push(thread_cpu_time().saturating_sub(cpu_before));
        }
        let (ins, lag) = w.join().unwrap();
        (ins, lat, cpu, lag)
    });
    let (mut ins, mut lat, mut cpu) = (ins, lat, cpu);
    ins.sort();
    lat.sort();
    let n = ins.len();
    println!(
        "insert_batch x{n}: p50 {:?} p90 {:?} p99 {:?} max {:?}; unlinked up to {lag}",
        percentile(&ins, 0.5),
        percentile(&ins, 0.9),
        percentile(&ins, 0.99),
        percentile(&ins, 1.0)
    );
    if !lat.is_empty() {
        println!(
            "ANN x{}: p50 {:?} p95 {:?} p99 {:?} max {:?}",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.95),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0)
        );
        cpu.sort();
        if cfg!(target_os = "linux") {
            println!(
            "ANN CPU per query: p50 {:?} p95 {:?} p99 {:?} (the rest of the latency is waiting)",
            percentile(&cpu, 0.5),
            percentile(&cpu, 0.95),
            percentile(&cpu, 0.99)
            );
        }
    }
}

/// A non-negative number from the environment, `default` when unset; exits on anything else.
fn setting(var: &str, default: f64) -> f64 {
    match std::env::var(var) {
        Err(_) => default,
        Ok(s) => match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            _ => {
                eprintln!("{var}={s:?} is not a non-negative number");
                std::process::exit(2)
            }
        },
    }
}

/// CPU time this thread has used: a query's share of it, set beside its wall-clock latency,
/// tells the work a query does from its waits for a core.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Elsewhere the CPU line is not printed.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    Duration::ZERO
}

/// `struct sched_attr` of `sched_setattr(2)` (the first version, 48 bytes, which every kernel
/// since 3.14 accepts; the utilization fields of the second are not needed here).
#[cfg(target_os = "linux")]
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Asks for `slice` as this thread's time slice under the normal policy at nice 0 (which the
/// probe's threads have). Kernels before 6.12 accept the call and ignore the runtime.
#[cfg(target_os = "linux")]
fn request_slice(slice: Duration) -> std::io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice: 0,
        priority: 0,
        runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
        deadline: 0,
        period: 0,
    };
    // SAFETY: `attr` is a valid sched_attr of the size it states, read by the kernel only; pid
    // 0 is this thread.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn request_slice(_: Duration) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "time slices are a Linux scheduler setting",
    ))
}
