//! The verdict: pairs the benchmarks of BASE and NEW by id, tests each pair (Welch's t-test on
//! per-iteration values plus a bootstrap interval of the relative change) and classifies it
//! against its threshold. A regression needs significance AND an interval wholly beyond it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::cost::Costs;
use crate::criterion::{Baseline, Benchmark};
use crate::error::{Error, Result};
use crate::kind::{DisplayUnit, Kind};
use crate::machine::Machine;
use crate::stats;

/// Outcome for one benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly worse, with the whole interval beyond the threshold.
    Regressed,
    /// Significantly better, with the whole interval beyond the threshold in the good direction.
    Improved,
    /// Not significant, or significant but wholly within the thresholds.
    Unchanged,
    /// Significant, but the interval straddles a threshold: not enough evidence either way.
    Inconclusive,
    /// Only in NEW.
    New,
    /// Only in BASE.
    Missing,
}

impl Verdict {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
            Verdict::New => "new",
            Verdict::Missing => "missing",
        }
    }

    /// Order used to put the most important rows first.
    pub fn severity(self) -> u8 {
        match self {
            Verdict::Regressed => 0,
            Verdict::Missing => 1,
            Verdict::Inconclusive => 2,
            Verdict::Improved => 3,
            Verdict::New => 4,
            Verdict::Unchanged => 5,
        }
    }
}

/// Relative change NEW vs BASE of the displayed value, with its interval and p-value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Point estimate, as a fraction (0.25 = +25%).
    pub point: f64,
    /// Lower bound of the bootstrap interval, as a fraction.
    pub lower: f64,
    /// Upper bound of the bootstrap interval, as a fraction.
    pub upper: f64,
    /// Two-sided p-value of Welch's t-test.
    pub p_value: f64,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Benchmark id.
    pub id: String,
    /// Kind from the configuration.
    pub kind: Kind,
    /// Unit of `base` and `new`: `ns` (per iteration), `ops/s` (or `B/s`, `bit/s`), `bytes`.
    pub unit: DisplayUnit,
    /// Allowed change in percent, signed in the worse direction.
    pub threshold_pct: f64,
    /// Mean of BASE in `unit`, if present.
    pub base: Option<f64>,
    /// Mean of NEW in `unit`, if present.
    pub new: Option<f64>,
    /// Number of samples in BASE / NEW.
    pub samples: (usize, usize),
    /// Change, when both sides exist.
    pub change: Option<Change>,
    /// The verdict.
    pub verdict: Verdict,
}

/// A full comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// BASE baseline name.
    pub base_name: String,
    /// Where BASE was read from.
    pub base_source: PathBuf,
    /// NEW baseline name.
    pub new_name: String,
    /// Where NEW was read from.
    pub new_source: PathBuf,
    /// Significance level used.
    pub alpha: f64,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// Whether missing benchmarks fail the gate.
    pub fail_on_missing: bool,
    /// Warnings (e.g. baselines from different machines).
    pub warnings: Vec<String>,
    /// One row per benchmark id, sorted by id.
    pub rows: Vec<Row>,
}

/// Number of rows per verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Regressed rows.
    pub regressed: usize,
    /// Improved rows.
    pub improved: usize,
    /// Unchanged rows.
    pub unchanged: usize,
    /// Inconclusive rows.
    pub inconclusive: usize,
    /// New rows.
    pub new: usize,
    /// Missing rows.
    pub missing: usize,
}

impl Report {
    /// Rows per verdict.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.rows {
            match r.verdict {
                Verdict::Regressed => c.regressed += 1,
                Verdict::Improved => c.improved += 1,
                Verdict::Unchanged => c.unchanged += 1,
                Verdict::Inconclusive => c.inconclusive += 1,
                Verdict::New => c.new += 1,
                Verdict::Missing => c.missing += 1,
            }
        }
        c
    }

    /// True when nothing regressed (and nothing is missing, if that is configured to fail).
    pub fn passed(&self) -> bool {
        let c = self.counts();
        c.regressed == 0 && !(self.fail_on_missing && c.missing > 0)
    }

    /// Process exit code: 0 pass, 2 fail.
    pub fn exit_code(&self) -> i32 {
        if self.passed() {
            0
        } else {
            2
        }
    }

    /// Rows with the most important verdicts first, ids in order within a verdict.
    pub fn rows_by_severity(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by(|a, b| (a.verdict.severity(), &a.id).cmp(&(b.verdict.severity(), &b.id)));
        rows
    }
}

/// FNV-1a, to derive an independent but reproducible bootstrap stream per benchmark id.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Classifies a change given the kind's direction and the threshold magnitude `t` (fraction).
pub fn classify(change: &Change, higher_is_better: bool, t: f64, alpha: f64) -> Verdict {
    if change.p_value.is_nan() || change.p_value >= alpha {
        return Verdict::Unchanged;
    }
    // Express everything as "how much worse": positive is bad for every kind.
    let (lo, hi) = if higher_is_better {
        (-change.upper, -change.lower)
    } else {
        (change.lower, change.upper)
    };
    if lo > t {
        Verdict::Regressed
    } else if hi < -t {
        Verdict::Improved
    } else if (lo <= t && hi >= t) || (lo <= -t && hi >= -t) {
        Verdict::Inconclusive
    } else {
        Verdict::Unchanged
    }
}

/// Compares NEW against BASE under `config`.
pub fn compare(base: &Baseline, new: &Baseline, config: &Config) -> Result<Report> {
    let ids: BTreeSet<&String> = base
        .benchmarks
        .keys()
        .chain(new.benchmarks.keys())
        .collect();
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let kind = config.kind_of(id);
        let threshold_pct = config.threshold_of(id, kind)?;
        let row = match (base.benchmarks.get(id), new.benchmarks.get(id)) {
            (Some(b), Some(n)) => {
                check_recorded_units(id, kind, b, n)?;
                compare_pair(id, kind, threshold_pct, b, n, config)?
            }
            (Some(b), None) => one_sided(id, kind, threshold_pct, b, Side::Base)?,
            (None, Some(n)) => one_sided(id, kind, threshold_pct, n, Side::New)?,
            (None, None) => continue,
        };
        rows.push(row);
    }
    let mut warnings: Vec<String> = machine_warning(base, new).into_iter().collect();
    warnings.extend(uniform_shift_warning(&rows, config.gate.alpha));
    Ok(Report {
        base_name: base.name.clone(),
        base_source: base.source.clone(),
        new_name: new.name.clone(),
        new_source: new.source.clone(),
        alpha: config.gate.alpha,
        confidence: config.gate.confidence,
        fail_on_missing: config.gate.fail_on_missing,
        warnings,
        rows,
    })
}

/// Both sides must record the unit the configuration's kind measures in (an export records
/// its unit; a Criterion directory leaves it to the configuration).
fn check_recorded_units(id: &str, kind: Kind, b: &Benchmark, n: &Benchmark) -> Result<()> {
    let recorded = |bench: &Benchmark| bench.unit.unwrap_or(kind.unit());
    let (ub, un) = (recorded(b), recorded(n));
    if ub != un {
        return Err(Error::UnitMismatch {
            id: id.to_string(),
            base_unit: ub.to_string(),
            base_source: b.source.clone(),
            new_unit: un.to_string(),
            new_source: n.source.clone(),
        });
    }
    if ub != kind.unit() {
        return Err(Error::invalid(
            &b.source,
            format!(
                "benchmark '{id}' is recorded in {ub} but the configuration makes it a {} \
                 benchmark measured in {}",
                kind.name(),
                kind.unit()
            ),
        ));
    }
    Ok(())
}

/// The row of a benchmark present on both sides: its change and verdict.
fn compare_pair(
    id: &str,
    kind: Kind,
    threshold_pct: f64,
    b: &Benchmark,
    n: &Benchmark,
    config: &Config,
) -> Result<Row> {
    let base = Costs::of(b, kind)?;
    let new = Costs::of(n, kind)?;
    check_comparable(id, (b, &base), (n, &new))?;
    let change = relative_change(id, kind, &base, &new, config);
    let verdict = classify(
        &change,
        kind.higher_is_better(),
        threshold_pct.abs() / 100.0,
        config.gate.alpha,
    );
    Ok(Row {
        id: id.to_string(),
        kind,
        unit: base.unit,
        threshold_pct,
        base: Some(base.shown_mean()),
        new: Some(new.shown_mean()),
        samples: (base.values.len(), new.values.len()),
        change: Some(change),
        verdict,
    })
}

/// A relative change needs the same rate unit on both sides and a positive mean on each.
fn check_comparable(
    id: &str,
    (b, base): (&Benchmark, &Costs),
    (n, new): (&Benchmark, &Costs),
) -> Result<()> {
    // Throughput::Elements on one side and Bytes on the other would compare ops/s with B/s.
    if base.unit != new.unit {
        return Err(Error::UnitMismatch {
            id: id.to_string(),
            base_unit: base.unit.to_string(),
            base_source: b.source.clone(),
            new_unit: new.unit.to_string(),
            new_source: n.source.clone(),
        });
    }
    for (costs, bench) in [(base, b), (new, n)] {
        let mean = costs.mean();
        if !mean.is_finite() || mean <= 0.0 {
            return Err(Error::invalid(
                &bench.source,
                format!(
                    "benchmark '{id}': mean value per iteration is {mean}, so no relative \
                     change can be computed"
                ),
            ));
        }
    }
    Ok(())
}

/// The change of the shown value NEW vs BASE: Welch's p-value and a seeded bootstrap interval
/// of the ratio of mean costs (per benchmark id, so each id has its own reproducible stream).
fn relative_change(id: &str, kind: Kind, base: &Costs, new: &Costs, config: &Config) -> Change {
    let welch = stats::welch(&base.values, &new.values);
    let ratio = stats::bootstrap_ratio(
        &base.values,
        &new.values,
        config.gate.resamples,
        config.gate.confidence,
        config.gate.seed ^ fnv1a(id),
    );
    if kind == Kind::Throughput {
        // Throughput is the reciprocal of cost, so the interval's ends swap.
        Change {
            point: 1.0 / ratio.point - 1.0,
            lower: 1.0 / ratio.upper - 1.0,
            upper: 1.0 / ratio.lower - 1.0,
            p_value: welch.p,
        }
    } else {
        Change {
            point: ratio.point - 1.0,
            lower: ratio.lower - 1.0,
            upper: ratio.upper - 1.0,
            p_value: welch.p,
        }
    }
}

/// The side a one-sided benchmark is on.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Base,
    New,
}

/// The row of a benchmark present on one side only: `missing` from NEW or `new` in it.
fn one_sided(
    id: &str,
    kind: Kind,
    threshold_pct: f64,
    bench: &Benchmark,
    side: Side,
) -> Result<Row> {
    let costs = Costs::of(bench, kind)?;
    let (value, samples) = (Some(costs.shown_mean()), costs.values.len());
    let in_base = side == Side::Base;
    Ok(Row {
        id: id.to_string(),
        kind,
        unit: costs.unit,
        threshold_pct,
        base: if in_base { value } else { None },
        new: if in_base { None } else { value },
        samples: if in_base { (samples, 0) } else { (0, samples) },
        change: None,
        verdict: if in_base {
            Verdict::Missing
        } else {
            Verdict::New
        },
    })
}

/// A warning when the two sides were measured on different machines (known only for exports).
fn machine_warning(base: &Baseline, new: &Baseline) -> Option<String> {
    if base.machine.is_none() && new.machine.is_none() {
        return None;
    }
    let here = || Machine::current();
    let bm = base.machine.clone().unwrap_or_else(here);
    let nm = new.machine.clone().unwrap_or_else(here);
    let diffs = bm.differences(&nm);
    if diffs.is_empty() {
        return None;
    }
    Some(format!(
        "BASE and NEW were measured on different machines ({}); absolute numbers do not travel \
         between machines, so treat this verdict with suspicion",
        diffs.join("; ")
    ))
}

/// Smallest number of timed benchmarks for which a shift of all of them is worth a warning.
const MIN_ROWS_FOR_SHIFT: usize = 3;
/// Smallest median shift (fraction) worth a warning.
const MIN_SHIFT: f64 = 0.05;

/// Warns when every timed benchmark moved significantly in the same direction: on a shared or
/// throttled machine the whole run gets slower or faster at once, which no within-run interval
/// captures. A genuine global regression looks the same, hence a warning and not a verdict.
pub fn uniform_shift_warning(rows: &[Row], alpha: f64) -> Option<String> {
    let worse: Vec<f64> = rows
        .iter()
        .filter(|r| matches!(r.kind, Kind::Latency | Kind::Throughput))
        .filter_map(|r| r.change.map(|c| (r.kind, c)))
        .map(|(kind, c)| {
            if c.p_value >= alpha {
                0.0
            } else if kind.higher_is_better() {
                // A rate falling by x is the cost growing by 1/(1-x) - 1; compare like with like.
                1.0 / (1.0 + c.point) - 1.0
            } else {
                c.point
            }
        })
        .collect();
    if worse.len() < MIN_ROWS_FOR_SHIFT {
        return None;
    }
    let all_slower = worse.iter().all(|w| *w > 0.0);
    let all_faster = worse.iter().all(|w| *w < 0.0);
    if !(all_slower || all_faster) {
        return None;
    }
    let mut sorted = worse.clone();
    sorted.sort_by(f64::total_cmp);
    let median = stats::quantile(&sorted, 0.5);
    if median.abs() < MIN_SHIFT {
        return None;
    }
    Some(format!(
        "all {} timed benchmarks got significantly {} (median {:+.1}% time); unless the change \
         explains a uniform shift, suspect the machine (load, frequency scaling) and re-run",
        worse.len(),
        if all_slower { "slower" } else { "faster" },
        median * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, kind: Kind, point: f64, p: f64) -> Row {
        Row {
            id: id.into(),
            kind,
            unit: DisplayUnit::Nanoseconds,
            threshold_pct: 10.0,
            base: Some(1.0),
            new: Some(1.0 + point),
            samples: (20, 20),
            change: Some(Change {
                point,
                lower: point - 0.01,
                upper: point + 0.01,
                p_value: p,
            }),
            verdict: Verdict::Unchanged,
        }
    }

    #[test]
    fn a_run_where_everything_got_slower_is_flagged_as_a_possible_machine_shift() {
        let rows = [
            row("latency/a", Kind::Latency, 0.30, 0.001),
            row("latency/b", Kind::Latency, 0.25, 0.001),
            row("throughput/c", Kind::Throughput, -0.20, 0.001),
        ];
        let w = uniform_shift_warning(&rows, 0.05).unwrap();
        assert!(
            w.contains("all 3 timed benchmarks got significantly slower"),
            "{w}"
        );
    }

    #[test]
    fn a_single_regression_among_stable_benchmarks_is_not_a_machine_shift() {
        let rows = [
            row("latency/a", Kind::Latency, 0.30, 0.001),
            row("latency/b", Kind::Latency, 0.01, 0.60),
            row("latency/c", Kind::Latency, -0.02, 0.40),
            row("footprint/d", Kind::Footprint, 0.5, 0.0),
        ];
        assert_eq!(uniform_shift_warning(&rows, 0.05), None);
        assert_eq!(uniform_shift_warning(&rows[..1], 0.05), None);
    }

    fn change(lower: f64, upper: f64, p: f64) -> Change {
        Change {
            point: (lower + upper) / 2.0,
            lower,
            upper,
            p_value: p,
        }
    }

    #[test]
    fn regression_needs_significance_and_an_interval_beyond_the_threshold() {
        assert_eq!(
            classify(&change(0.15, 0.30, 0.001), false, 0.10, 0.05),
            Verdict::Regressed
        );
        assert_eq!(
            classify(&change(0.15, 0.30, 0.20), false, 0.10, 0.05),
            Verdict::Unchanged
        );
        assert_eq!(
            classify(&change(0.05, 0.30, 0.001), false, 0.10, 0.05),
            Verdict::Inconclusive
        );
        assert_eq!(
            classify(&change(0.02, 0.06, 0.001), false, 0.10, 0.05),
            Verdict::Unchanged
        );
    }

    #[test]
    fn improvement_is_the_mirror_image() {
        assert_eq!(
            classify(&change(-0.35, -0.20, 0.001), false, 0.10, 0.05),
            Verdict::Improved
        );
        assert_eq!(
            classify(&change(-0.15, -0.05, 0.001), false, 0.10, 0.05),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn throughput_drop_is_a_regression_and_rise_an_improvement() {
        assert_eq!(
            classify(&change(-0.30, -0.15, 0.001), true, 0.10, 0.05),
            Verdict::Regressed
        );
        assert_eq!(
            classify(&change(0.15, 0.30, 0.001), true, 0.10, 0.05),
            Verdict::Improved
        );
    }
}
