//! A tiny, real Criterion benchmark used to generate bench-gate's test fixtures and accuracy runs.
//! Its work is a deterministic busy loop scaled by `FIXTURE_SCALE` (all benchmarks) and
//! `FIXTURE_SLOW="id=factor,..."` (single benchmarks), so a known slowdown can be injected.
//!
//! `FIXTURE_CLOCK=cpu` measures the time benchmarks in thread CPU time instead of wall time, which
//! a machine shared with other busy processes does not inflate (used by scripts/accuracy.sh).
//!
//! Run: `CRITERION_HOME=DIR cargo run --release -p bench-gate --example fixture_bench -- --bench --save-baseline NAME`

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Iterations of the spin loop for the small latency benchmark at scale 1.0.
const SMALL_WORK: f64 = 8_000.0;
/// Iterations of the spin loop for the large latency benchmark at scale 1.0.
const LARGE_WORK: f64 = 40_000.0;
/// Elements handled per iteration by the throughput benchmark.
const BATCH: u64 = 64;
/// Spin iterations per element in the throughput benchmark at scale 1.0.
const PER_ELEMENT_WORK: f64 = 300.0;

/// Scale factor for one benchmark id: `FIXTURE_SCALE` times the matching `FIXTURE_SLOW` entry.
/// Malformed values abort the fixture run loudly: a silently ignored slowdown would make the
/// accuracy measurements meaningless.
fn scale_for(id: &str) -> f64 {
    let global = match std::env::var("FIXTURE_SCALE") {
        Ok(v) => v
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("FIXTURE_SCALE={v} is not a number")),
        Err(_) => 1.0,
    };
    let mut own = 1.0;
    if let Ok(list) = std::env::var("FIXTURE_SLOW") {
        for item in list.split(',').filter(|s| !s.trim().is_empty()) {
            let (name, factor) = item
                .split_once('=')
                .unwrap_or_else(|| panic!("FIXTURE_SLOW entry {item:?} is not id=factor"));
            let factor: f64 = factor
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("FIXTURE_SLOW factor {factor:?} is not a number"));
            if name.trim() == id {
                own *= factor;
            }
        }
    }
    global * own
}

/// A dependency chain of multiply/xor steps the optimiser cannot collapse.
fn spin(n: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..black_box(n) {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
        x ^= x >> 29;
    }
    x
}

fn work(base: f64, id: &str) -> u64 {
    (base * scale_for(id)).round().max(1.0) as u64
}

fn latency<M: Measurement>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("latency/fixture");
    let small = work(SMALL_WORK, "latency/fixture/spin_small");
    let large = work(LARGE_WORK, "latency/fixture/spin_large");
    group.bench_function("spin_small", |b| b.iter(|| spin(small)));
    group.bench_function("spin_large", |b| b.iter(|| spin(large)));
    group.finish();
}

fn throughput<M: Measurement>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("throughput/fixture");
    let per_element = work(PER_ELEMENT_WORK, "throughput/fixture/batch/64");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_with_input(BenchmarkId::new("batch", BATCH), &BATCH, |b, &n| {
        b.iter(|| {
            let mut acc = 0u64;
            for e in 0..n {
                acc ^= spin(per_element + e % 2);
            }
            acc
        })
    });
    group.finish();
}

/// A measurement whose values are bytes, like the suite's footprint benchmarks: Criterion stores
/// them in the same `times` arrays, so only configuration tells a reader they are not nanoseconds.
struct Bytes;

struct BytesFormatter;

impl ValueFormatter for BytesFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "B"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "B"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "B"
    }
}

impl Measurement for Bytes {
    type Intermediate = ();
    type Value = f64;
    fn start(&self) {}
    fn end(&self, _i: ()) -> f64 {
        0.0
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, v: &f64) -> f64 {
        *v
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &BytesFormatter
    }
}

/// Heap bytes held by 1,000 boxed strings whose length is scaled like the other benchmarks.
fn bytes_per_1k_entries(id: &str) -> f64 {
    let len = work(48.0, id) as usize;
    let entries: Vec<String> = (0..1_000).map(|i| format!("{i:0>len$}")).collect();
    let heap: usize = entries.iter().map(String::capacity).sum();
    (heap + entries.capacity() * std::mem::size_of::<String>()) as f64
}

fn footprint(c: &mut Criterion<Bytes>) {
    let mut group = c.benchmark_group("footprint/fixture");
    group.bench_function(BenchmarkId::new("strings", 1000), |b| {
        b.iter_custom(|iters| {
            let one = bytes_per_1k_entries("footprint/fixture/strings/1000");
            one * iters as f64
        })
    });
    group.finish();
}

/// Thread CPU time in nanoseconds (Linux `CLOCK_THREAD_CPUTIME_ID`).
struct CpuTime;

#[cfg(target_os = "linux")]
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

#[cfg(target_os = "linux")]
extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

#[cfg(target_os = "linux")]
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

#[cfg(not(target_os = "linux"))]
fn thread_cpu_ns() -> f64 {
    panic!("FIXTURE_CLOCK=cpu is only implemented on Linux")
}

#[cfg(target_os = "linux")]
fn thread_cpu_ns() -> f64 {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec with the C layout on 64-bit Linux.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

static WALL: WallTime = WallTime;

impl Measurement for CpuTime {
    type Intermediate = f64;
    type Value = f64;
    fn start(&self) -> f64 {
        thread_cpu_ns()
    }
    fn end(&self, start: f64) -> f64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, v: &f64) -> f64 {
        *v
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Same unit (ns) as wall time, so Criterion's own formatter fits.
        WALL.formatter()
    }
}

fn configure<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .without_plots()
        .configure_from_args()
}

fn main() {
    if std::env::var("FIXTURE_CLOCK").as_deref() == Ok("cpu") {
        let mut c = configure(Criterion::default().with_measurement(CpuTime));
        latency(&mut c);
        throughput(&mut c);
        c.final_summary();
    } else {
        let mut c = configure(Criterion::default());
        latency(&mut c);
        throughput(&mut c);
        c.final_summary();
    }
    let mut bytes = Criterion::default()
        .with_measurement(Bytes)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(200))
        .without_plots()
        .configure_from_args();
    footprint(&mut bytes);
    bytes.final_summary();
}
