//! Tail latency: every call of an operation is timed into an HDR histogram. Each Criterion sample
//! of `tail/<op>/p99` reports that sample's 99th percentile as its per-iteration time, so saved
//! baselines hold real percentiles the regression gate can compare; an aggregate over the whole
//! run is printed as a table and written as JSON beside Criterion's output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bench_gate::Kind;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use hdrhistogram::Histogram;

use crate::targets::Targets;

/// Largest latency a histogram tracks; slower calls are recorded as this.
const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// The percentiles kept, by benchmark name.
pub const PERCENTILES: [(&str, f64); 3] = [("p50", 0.50), ("p95", 0.95), ("p99", 0.99)];

/// Calls above a sample's percentile, at the least: a sample of `iters` calls makes as many
/// calls more as it takes (see [`calls_for`]).
const CALLS_ABOVE: u64 = 2;

/// How many calls a sample of `iters` iterations makes for percentile `q`: `iters`, or enough
/// that at least [`CALLS_ABOVE`] calls lie above the percentile (200 for p99, 40 for p95, 4 for
/// p50). Criterion sizes samples by time, and a slow operation gets a few dozen calls a sample
/// in a short run, whose p99 would be its slowest call, not a percentile. The sample still
/// reports `iters` iterations of the percentile's latency. (Two calls, not more: a sample of a
/// 2 ms search, as during an ingest, then takes 0.4 s for its p99, where a short run planned
/// about 0.1 s.)
pub fn calls_for(q: f64, iters: u64) -> u64 {
    let above = 1.0 - q;
    let floor = if above > 0.0 {
        (CALLS_ABOVE as f64 / above).round() as u64
    } else {
        u64::MAX
    };
    iters.max(floor)
}

/// An empty histogram of nanoseconds with 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: creation cannot fail.
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("valid constant histogram bounds")
}

/// Runs `op` `iters` times, recording each call's latency in `hist`.
pub fn record<F: FnMut()>(hist: &mut Histogram<u64>, iters: u64, mut op: F) {
    for _ in 0..iters {
        let start = Instant::now();
        op();
        let ns = start.elapsed().as_nanos();
        hist.saturating_record(u64::try_from(ns).unwrap_or(u64::MAX).max(1));
    }
}

/// The per-iteration duration whose total Criterion expects from `iters` iterations, when each
/// iteration is to read as `value_ns`.
pub fn scaled(value_ns: u64, iters: u64) -> Duration {
    Duration::from_nanos(value_ns.saturating_mul(iters))
}

/// Aggregate histograms of the run, by operation.
#[derive(Default)]
pub struct TailRegistry {
    ops: Mutex<BTreeMap<String, Histogram<u64>>>,
}

impl TailRegistry {
    /// Adds a sample's histogram to the aggregate of `op`.
    pub fn merge(&self, op: &str, hist: &Histogram<u64>) {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let agg = ops.entry(op.to_string()).or_insert_with(new_histogram);
        // Same bounds on both sides: adding cannot fail.
        let _ = agg.add(hist);
    }

    /// The aggregate percentiles of every operation recorded so far.
    pub fn summary(&self) -> Vec<TailRow> {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(op, h)| TailRow {
                op: op.clone(),
                count: h.len(),
                p50_ns: h.value_at_quantile(0.50),
                p95_ns: h.value_at_quantile(0.95),
                p99_ns: h.value_at_quantile(0.99),
                max_ns: h.max(),
            })
            .collect()
    }
}

/// The registry of this process.
pub fn registry() -> &'static TailRegistry {
    static REGISTRY: OnceLock<TailRegistry> = OnceLock::new();
    REGISTRY.get_or_init(TailRegistry::default)
}

/// One operation's aggregate percentiles.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TailRow {
    pub op: String,
    pub count: u64,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Runs `setup` then `op` on its output `iters` times, recording only `op`'s latency.
pub fn record_with_setup<I, S, F>(hist: &mut Histogram<u64>, iters: u64, mut setup: S, mut op: F)
where
    S: FnMut() -> I,
    F: FnMut(I),
{
    for _ in 0..iters {
        let input = setup();
        let start = Instant::now();
        op(input);
        let ns = start.elapsed().as_nanos();
        hist.saturating_record(u64::try_from(ns).unwrap_or(u64::MAX).max(1));
    }
}

/// Benchmarks `tail/<op>/p50`, `tail/<op>/p95` and `tail/<op>/p99`, each sample's value being
/// that sample's percentile of `op`'s per-call latency.
pub fn bench_tail<F: FnMut()>(c: &mut Criterion, op: &str, mut f: F) {
    bench_tail_with_setup(c, op, || (), |()| f());
}

/// Like [`bench_tail`], with an untimed `setup` producing each call's input (an entry to append,
/// say), so building the input does not count as the operation's latency.
pub fn bench_tail_with_setup<I, S, F>(c: &mut Criterion, op: &str, setup: S, f: F)
where
    S: FnMut() -> I,
    F: FnMut(I),
{
    bench_tail_around(c, op, |_| {}, setup, f);
}

/// Like [`bench_tail_with_setup`], calling `around(true)` before each sample's timed calls and
/// `around(false)` after them: a load that should run only while the calls are measured (a
/// writer beside the searches, say) starts and stops there.
pub fn bench_tail_around<I, A, S, F>(
    c: &mut Criterion,
    op: &str,
    mut around: A,
    mut setup: S,
    mut f: F,
) where
    A: FnMut(bool),
    S: FnMut() -> I,
    F: FnMut(I),
{
    let mut group: BenchmarkGroup<'_, WallTime> = c.benchmark_group(format!("tail/{op}"));
    let mut warmed = false;
    for (name, q) in PERCENTILES {
        group.bench_function(name, |b| {
            if !warmed {
                warm_up(&mut setup, &mut f);
                warmed = true;
            }
            b.iter_custom(|iters| {
                let mut hist = new_histogram();
                around(true);
                // `--test` runs each benchmark once, to see that it runs: one call.
                let calls = if crate::profile::settings().test_mode {
                    iters
                } else {
                    calls_for(q, iters)
                };
                record_with_setup(&mut hist, calls, &mut setup, &mut f);
                around(false);
                registry().merge(op, &hist);
                scaled(hist.value_at_quantile(q), iters)
            })
        });
    }
    group.finish();
}

/// How long a tail group calls its operation untimed before its first percentile id.
///
/// The three ids of a group are measured one after another, each from its own calls. Without
/// this, the first (`p50`) met the store straight after the process opened it, with its
/// memory-mapped files not yet faulted in and its caches cold, and the later ids a warm store:
/// in the eight rounds of one PR job `tail/ltm_get/p50` read 9.5-10.8 us where `p95` read
/// 4.1-4.9 us, and `tail/cache_hit/p50` jumped between about 0.55 and 1.3 us by round (above
/// `p95`'s 0.4 us), which raised a false regression in an A/A run. With the warm-up, three
/// launches each: `ltm_get` p50 / p95 3.7-3.9 / 4.2-4.4 us, `cache_hit` 0.38-0.40 / 0.39-0.44
/// us, `keyword` 28-30 / 41-52 us (without: 9.7-10.2, 0.56-0.63, 63-65 us for p50).
const WARM_UP: Duration = Duration::from_millis(500);

/// Calls `f` on `setup`'s inputs, untimed, for [`WARM_UP`] (not in Criterion's `--test` mode).
fn warm_up<I>(setup: &mut impl FnMut() -> I, f: &mut impl FnMut(I)) {
    if crate::profile::settings().test_mode {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < WARM_UP {
        f(setup());
    }
}

/// Formats nanoseconds with a unit that keeps three significant digits readable.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} us", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// The targets of operation `op` (`p99 <= 2.00 us`): the latency budgets of its percentile ids
/// `tail/<op>/p50|p95|p99`, empty when it has none.
pub fn target_of(op: &str, targets: &Targets) -> String {
    PERCENTILES
        .iter()
        .filter_map(|(name, _)| {
            let budget = targets.budget(&format!("tail/{op}/{name}"), Kind::Latency)?;
            Some(format!(
                "{name} {} {}",
                budget.bound().symbol(),
                fmt_ns(budget.limit())
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table of `rows`, with each operation's target (if any) in the last column and, below,
/// where the targets come from.
pub fn format_table(rows: &[TailRow], targets: &Targets) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>10} {:>11} {:>11} {:>11} {:>11}  target",
        "tail latency (run)", "calls", "p50", "p95", "p99", "max"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>11} {:>11} {:>11} {:>11}  {}",
            r.op,
            r.count,
            fmt_ns(r.p50_ns as f64),
            fmt_ns(r.p95_ns as f64),
            fmt_ns(r.p99_ns as f64),
            fmt_ns(r.max_ns as f64),
            target_of(&r.op, targets)
        );
    }
    let _ = writeln!(out, "({})", targets.note());
    out
}

/// Writes `rows` as JSON to `path`.
pub fn write_json(rows: &[TailRow], path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(rows).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_has_calls_above_its_percentile() {
        for (name, q) in PERCENTILES {
            for iters in [1, 2, 10, 37, 99, 100, 199, 200, 201, 10_000] {
                let n = calls_for(q, iters);
                assert!(n >= iters, "{name}: fewer calls than iterations");
                // The rank HDR reads the percentile at (ceil(q * n)) and the calls above it.
                let rank = (q * n as f64).ceil() as u64;
                assert!(n - rank >= CALLS_ABOVE, "{name} of {n} calls is a maximum");
            }
        }
        assert_eq!(calls_for(0.99, 1), 200);
        assert_eq!(calls_for(0.95, 1), 40);
        assert_eq!(calls_for(0.50, 1), 4);
        assert_eq!(calls_for(0.99, 2_000), 2_000);
    }

    #[test]
    fn percentiles_of_recorded_latencies_follow_the_slow_calls() {
        let mut hist = new_histogram();
        let mut n = 0u32;
        // 1 call in 50 spins ~100x longer; p99 must see it and p50 must not.
        record(&mut hist, 1_000, || {
            n += 1;
            let spins = if n.is_multiple_of(50) { 100_000 } else { 1_000 };
            let mut x = 0u64;
            for i in 0..spins {
                x = std::hint::black_box(x.wrapping_add(i));
            }
        });
        assert_eq!(hist.len(), 1_000);
        assert!(hist.value_at_quantile(0.99) > 10 * hist.value_at_quantile(0.50));
    }

    #[test]
    fn scaled_duration_reads_back_as_the_percentile_per_iteration() {
        let d = scaled(1_234, 1_000);
        assert_eq!(d.as_nanos() / 1_000, 1_234);
        assert_eq!(scaled(u64::MAX, 2), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn registry_aggregates_samples_per_operation() {
        let reg = TailRegistry::default();
        let mut a = new_histogram();
        a.saturating_record(100);
        let mut b = new_histogram();
        b.saturating_record(10_000);
        reg.merge("op", &a);
        reg.merge("op", &b);
        reg.merge("other", &a);
        let rows = reg.summary();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].op, "op");
        assert_eq!(rows[0].count, 2);
        assert!(rows[0].max_ns >= 10_000 && rows[0].p50_ns < 200);
    }

    #[test]
    fn table_lists_each_operation_with_its_target() {
        let rows = vec![TailRow {
            op: "stm_append".into(),
            count: 10,
            p50_ns: 900,
            p95_ns: 1_500,
            p99_ns: 2_500_000,
            max_ns: 3_000_000,
        }];
        let config = bench_gate::Config::parse(
            "[[slo]]\nid = \"tail/stm_append/p99\"\nmax_ns = 2000.0\n",
            Path::new("bench-gate.toml"),
        )
        .unwrap();
        let t = format_table(&rows, &Targets::from_config(config));
        assert!(t.contains("stm_append"));
        assert!(t.contains("2.50 ms"));
        assert!(t.contains("p99 <= 2.00 us"), "{t}");
        assert!(t.contains("targets: [[slo]] of bench-gate.toml"), "{t}");
    }

    #[test]
    fn without_budgets_the_table_has_no_targets_and_says_why() {
        let rows = vec![TailRow {
            op: "stm_append".into(),
            count: 1,
            p50_ns: 1,
            p95_ns: 1,
            p99_ns: 1,
            max_ns: 1,
        }];
        let t = format_table(&rows, &Targets::from_config(bench_gate::Config::default()));
        let row = t.lines().nth(1).unwrap();
        assert!(row.trim_end().ends_with("1 ns"), "{t}");
        assert!(t.contains("targets not shown"), "{t}");
    }
}
