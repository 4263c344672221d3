//! Reading a run's results back: the median Criterion estimated for a benchmark in this run,
//! and the empirical scaling exponent of a series (least-squares slope of log time over log
//! size), printed as `O(n^0.31)`. Where Criterion writes and what its files hold are
//! bench-gate's to know ([`bench_gate::locate`], [`bench_gate::criterion`]); this module asks it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use bench_gate::{criterion, locate};

/// The moment this process started measuring; results older than it are from another run.
pub fn run_started() -> SystemTime {
    static START: OnceLock<SystemTime> = OnceLock::new();
    *START.get_or_init(SystemTime::now)
}

/// The directory of benchmark `group` with function and/or parameter `rest` (e.g.
/// `("scaling/ltm_keyword", ["1000"])`) under the Criterion directory
/// ([`locate::criterion_dir`]: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
/// workspace's `target/criterion`; an empty variable counts as unset).
pub fn bench_dir(group: &str, rest: &[&str]) -> PathBuf {
    locate::benchmark_dir(&locate::criterion_dir(), group, rest)
}

/// The median per-iteration estimate (in the measurement's unit, nanoseconds for time) that
/// Criterion wrote for the benchmark in `dir` during this run; `None` if the benchmark did not run
/// in this process (filtered out, `--test` mode, or a stale file from an earlier run).
pub fn fresh_median(dir: &Path) -> Option<f64> {
    let file = dir.join("new").join("estimates.json");
    let modified = std::fs::metadata(&file).ok()?.modified().ok()?;
    // File times come from a coarse kernel clock that may lag `SystemTime::now` by a tick.
    if modified + std::time::Duration::from_millis(100) < run_started() {
        return None;
    }
    // An unreadable file is as good as absent: the summary line is left out, the run goes on.
    let estimates = criterion::read_estimates(&file).ok()?;
    Some(estimates.median.point_estimate)
}

/// Least-squares slope of ln(time) over ln(size): the empirical exponent k of time ~ n^k.
/// `None` with fewer than two distinct positive sizes.
pub fn scaling_exponent(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(n, t)| *n > 0.0 && *t > 0.0)
        .map(|(n, t)| (n.ln(), t.ln()))
        .collect();
    if logs.len() < 2 {
        return None;
    }
    let len = logs.len() as f64;
    let mx = logs.iter().map(|p| p.0).sum::<f64>() / len;
    let my = logs.iter().map(|p| p.1).sum::<f64>() / len;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = logs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

/// `scaling/ltm_keyword: O(n^0.31)  [1000: 12.3 us, 10000: 25.1 us]`, or a note why there is no
/// figure.
pub fn exponent_line(series: &str, points: &[(f64, f64)]) -> String {
    let detail: Vec<String> = points
        .iter()
        .map(|(n, t)| format!("{n}: {}", crate::tail::fmt_ns(*t)))
        .collect();
    match scaling_exponent(points) {
        Some(k) => format!("{series}: O(n^{k:.2})  [{}]", detail.join(", ")),
        None => format!(
            "{series}: exponent needs two or more sizes measured in this run  [{}]",
            detail.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponent_of_a_power_law_is_its_power() {
        let pts: Vec<(f64, f64)> = [1e3, 1e4, 1e5]
            .iter()
            .map(|&n| (n, 7.0 * f64::powf(n, 0.3)))
            .collect();
        let k = scaling_exponent(&pts).unwrap();
        assert!((k - 0.3).abs() < 1e-9, "{k}");
        let linear: Vec<(f64, f64)> = [10.0, 20.0, 40.0].iter().map(|&n| (n, n * 3.0)).collect();
        assert!((scaling_exponent(&linear).unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn exponent_needs_two_distinct_sizes() {
        assert_eq!(scaling_exponent(&[(1e3, 5.0)]), None);
        assert_eq!(scaling_exponent(&[(1e3, 5.0), (1e3, 6.0)]), None);
        assert_eq!(scaling_exponent(&[(0.0, 5.0), (1e3, 6.0)]), None);
        assert!(exponent_line("s", &[(1e3, 5.0)]).contains("needs two"));
    }

    #[test]
    fn exponent_line_reads_like_big_o() {
        let line = exponent_line("scaling/x", &[(1e3, 1_000.0), (1e4, 2_000.0)]);
        assert!(line.starts_with("scaling/x: O(n^0.30)"), "{line}");
    }

    #[test]
    fn bench_dir_follows_criterion_naming() {
        let d = bench_dir("scaling/ltm_keyword", &["1000"]);
        assert!(d.ends_with("scaling_ltm_keyword/1000"), "{}", d.display());
    }

    /// Criterion's `estimates.json` with every statistic at `point`.
    fn estimates_json(point: f64) -> String {
        let estimate = criterion::Estimate {
            confidence_interval: criterion::ConfidenceInterval {
                confidence_level: 0.95,
                lower_bound: point * 0.9,
                upper_bound: point * 1.1,
            },
            point_estimate: point,
            standard_error: point * 0.01,
        };
        serde_json::to_string(&criterion::Estimates {
            mean: estimate.clone(),
            median: estimate.clone(),
            median_abs_dev: estimate.clone(),
            slope: None,
            std_dev: estimate,
        })
        .unwrap()
    }

    #[test]
    fn fresh_median_ignores_missing_and_stale_estimates() {
        let _ = run_started();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fresh_median(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("new")).unwrap();
        let file = dir.path().join("new/estimates.json");
        std::fs::write(&file, estimates_json(1234.5)).unwrap();
        // Written after the run started: fresh.
        assert_eq!(fresh_median(dir.path()), Some(1234.5));
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(fresh_median(dir.path()), None);
    }

    #[test]
    fn fresh_median_of_a_malformed_file_is_none() {
        let _ = run_started();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("new")).unwrap();
        std::fs::write(dir.path().join("new/estimates.json"), "{\"median\":").unwrap();
        assert_eq!(fresh_median(dir.path()), None);
    }
}
