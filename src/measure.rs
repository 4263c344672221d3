//! Footprint measurement: a counting global allocator (wrapping `System`) that keeps the live heap
//! bytes of the process, and a Criterion [`Measurement`] whose values are bytes, so footprints are
//! saved in baselines and compared by the regression gate exactly like times.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// A global allocator that forwards to [`System`] and counts live bytes. Install it in a bench
/// binary with `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
///
/// It sees Rust allocations only: memory a C library takes with its own `malloc` (SQLite's page
/// cache) is not counted here; the footprint bench adds `sqlite3_memory_used` for that.
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only adds
// relaxed counter updates, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }
}

/// Live heap bytes allocated through [`CountingAlloc`].
pub fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Whether [`CountingAlloc`] is the process's global allocator (so [`live_bytes`] means
/// something): a fresh allocation must move its counter.
pub fn allocator_installed() -> bool {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    drop(probe);
    after > before
}

/// A Criterion measurement in bytes. Benchmarks use `iter_custom` and return bytes scaled by the
/// iteration count; `start`/`end` measure the live-heap change for plain `iter` use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bytes;

impl Measurement for Bytes {
    type Intermediate = i64;
    type Value = f64;

    fn start(&self) -> i64 {
        live_bytes()
    }

    fn end(&self, start: i64) -> f64 {
        (live_bytes() - start) as f64
    }

    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &BytesFormatter
    }
}

/// Formats byte counts in decimal units (B, KB, MB, GB).
pub struct BytesFormatter;

fn unit_for(typical: f64) -> (f64, &'static str) {
    let t = typical.abs();
    if t < 1e3 {
        (1.0, "B")
    } else if t < 1e6 {
        (1e3, "KB")
    } else if t < 1e9 {
        (1e6, "MB")
    } else {
        (1e9, "GB")
    }
}

impl ValueFormatter for BytesFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = unit_for(typical);
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        // Bytes per element is the only rate that means something for a footprint.
        let per = match *throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => n,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => n,
            Throughput::Bits(n) => n,
        }
        .max(1) as f64;
        let (div, unit) = unit_for(typical / per);
        values.iter_mut().for_each(|v| *v /= per * div);
        match unit {
            "B" => "B/elem",
            "KB" => "KB/elem",
            "MB" => "MB/elem",
            _ => "GB/elem",
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "bytes"
    }
}

/// The `p` quantile (0 to 1, nearest rank) of `sorted` latencies, which must be sorted and not
/// empty.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `d` in milliseconds.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One line summing up latencies: `n=.. p50 .. p90 .. p99 .. max .. ms; over L ms: ..`, with
/// how many took longer than `over`. Sorts `latencies`; "n=0" when there are none.
pub fn latency_summary(latencies: &mut [std::time::Duration], over: std::time::Duration) -> String {
    latencies.sort_unstable();
    let Some(&max) = latencies.last() else {
        return "n=0".to_string();
    };
    format!(
        "n={} p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} ms; over {} ms: {}",
        latencies.len(),
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.9)),
        ms(percentile(latencies, 0.99)),
        ms(max),
        ms(over),
        latencies.iter().filter(|d| **d > over).count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_summary_gives_percentiles_and_the_count_over_the_limit() {
        use std::time::Duration;
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(
            latency_summary(&mut v, Duration::from_millis(95)),
            "n=100 p50 51.00 p90 90.00 p99 99.00 max 100.00 ms; over 95 ms: 5"
        );
        assert_eq!(latency_summary(&mut [], Duration::from_millis(5)), "n=0");
    }

    // The two tests below share the global counters; run them one at a time.
    static COUNTERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn counting_allocator_tracks_alloc_realloc_and_free() {
        let _guard = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
        let a = CountingAlloc;
        let before = live_bytes();
        let layout = Layout::from_size_align(1_000, 8).unwrap();
        // SAFETY: a valid non-zero layout; the pointer is freed with the layout it has.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(live_bytes() - before, 1_000);
            let q = a.realloc(p, layout, 3_000);
            assert!(!q.is_null());
            assert_eq!(live_bytes() - before, 3_000);
            a.dealloc(q, Layout::from_size_align(3_000, 8).unwrap());
        }
        assert_eq!(live_bytes(), before);
    }

    #[test]
    fn allocator_is_not_reported_installed_in_the_test_binary() {
        // The unit-test binary uses the default allocator; the footprint bench must detect that.
        let _guard = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
        assert!(!allocator_installed());
    }

    #[test]
    fn bytes_are_formatted_in_decimal_units() {
        let f = BytesFormatter;
        assert_eq!(f.format_value(512.0).trim(), "512.00 B");
        assert!(f.format_value(2_500_000.0).contains("MB"));
        assert!(f.format_value(2_500_000.0).contains("2.5"));
        let mut v = [4_000.0];
        let unit = f.scale_throughputs(4_000.0, &Throughput::Elements(1_000), &mut v);
        assert_eq!((unit, v[0]), ("B/elem", 4.0));
    }

    #[test]
    fn measurement_adds_values_as_bytes() {
        let m = Bytes;
        assert_eq!(m.add(&1.5, &2.0), 3.5);
        assert_eq!(m.to_f64(&m.zero()), 0.0);
    }

    #[test]
    fn percentile_takes_the_nearest_rank() {
        use std::time::Duration;
        let sorted: Vec<Duration> = (1..=101).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_millis(101));
    }
}
