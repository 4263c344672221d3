//! A benchmark suite over time: exported baselines put in commit order, each benchmark's value
//! in each export, and the steps between consecutive exports that the gate itself would call a
//! regression or an improvement (same test, same threshold), so a step stands apart from drift.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::config::Config;
use crate::cost::Costs;
use crate::criterion::Baseline;
use crate::error::{Error, Result};
use crate::kind::{DisplayUnit, Kind};
use crate::machine::{self, Machine};
use crate::stats;
use crate::verdict::{self, Change, Verdict};

/// What decided an export's place in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderedBy {
    /// The commit's date, looked up from its hash.
    CommitDate,
    /// The export's own date (the commit is unknown or could not be looked up).
    ExportDate,
    /// Nothing: no date at all; kept in the order given.
    Given,
}

/// One export in the history.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportInfo {
    /// Baseline name recorded in the file.
    pub name: String,
    /// The file.
    pub source: PathBuf,
    /// Commit the export was made from, when recorded.
    pub commit: Option<String>,
    /// UTC date of that commit (RFC 3339), when it could be looked up.
    pub commit_date: Option<String>,
    /// UTC date of the export (RFC 3339), when recorded.
    pub export_date: Option<String>,
    /// What placed it.
    pub ordered_by: OrderedBy,
    /// The machine it was measured on, when recorded.
    pub machine: Option<Machine>,
    /// Number of benchmarks in it.
    pub benchmarks: usize,
}

/// A benchmark's value in one export.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Mean in the series' unit (what the gate compares).
    pub mean: f64,
    /// First quartile of the per-sample values, in the series' unit.
    pub q1: f64,
    /// Third quartile of the per-sample values, in the series' unit.
    pub q3: f64,
    /// Number of samples.
    pub samples: usize,
}

/// A change between two consecutive exports holding the benchmark that the gate classifies as
/// a regression or an improvement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Index of the earlier export.
    pub from: usize,
    /// Index of the later export.
    pub to: usize,
    /// The change from `from` to `to`.
    pub change: Change,
    /// [`Verdict::Regressed`] or [`Verdict::Improved`].
    pub verdict: Verdict,
}

/// One benchmark over the exports.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Benchmark id.
    pub id: String,
    /// Kind from the configuration.
    pub kind: Kind,
    /// Unit of the points.
    pub unit: DisplayUnit,
    /// Threshold in percent, signed in the worse direction.
    pub threshold_pct: f64,
    /// One entry per export, in history order; `None` where the benchmark is absent.
    pub points: Vec<Option<Point>>,
    /// Steps beyond the threshold, oldest first.
    pub steps: Vec<Step>,
}

impl Series {
    /// The latest point, with its export index.
    pub fn latest(&self) -> Option<(usize, Point)> {
        self.points
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, p)| p.map(|p| (i, p)))
    }

    /// The largest step for the worse, by the size of its change.
    pub fn worst_step(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.verdict == Verdict::Regressed)
            .max_by(|a, b| a.change.point.abs().total_cmp(&b.change.point.abs()))
    }

    /// Number of exports holding the benchmark.
    pub fn present(&self) -> usize {
        self.points.iter().filter(|p| p.is_some()).count()
    }

    fn rank(&self) -> (u8, f64) {
        if let Some(s) = self.worst_step() {
            (0, -s.change.point.abs())
        } else if !self.steps.is_empty() {
            (1, 0.0)
        } else {
            (2, 0.0)
        }
    }
}

/// The exports in order and every benchmark's series.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The exports, oldest first.
    pub exports: Vec<ExportInfo>,
    /// One series per benchmark id: those with a step for the worse first (largest step
    /// first), then those with a step for the better, then the rest, ids in order.
    pub series: Vec<Series>,
    /// What a reader should know: different machines, benchmarks missing from some exports.
    pub warnings: Vec<String>,
}

/// Unix seconds of an RFC 3339 UTC date as [`machine::rfc3339`] writes it
/// (`YYYY-MM-DDTHH:MM:SSZ`); `None` for anything else.
pub fn parse_utc(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| date.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Howard Hinnant's days-from-civil, the inverse of `machine::rfc3339`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

impl History {
    /// Orders `exports` by the date of their commit (from `commit_time`, Unix seconds of a
    /// commit hash, e.g. asked of git), else by their export date, else as given, and builds
    /// each benchmark's series under `config`. Errors name the export concerned.
    pub fn build(
        exports: Vec<Baseline>,
        config: &Config,
        commit_time: &dyn Fn(&str) -> Option<i64>,
    ) -> Result<History> {
        if exports.is_empty() {
            return Err(Error::invalid(".", "a history needs at least one export"));
        }
        let mut placed: Vec<(Option<i64>, usize, ExportInfo, Baseline)> = exports
            .into_iter()
            .enumerate()
            .map(|(given, b)| {
                let commit = b.machine.as_ref().and_then(|m| m.git_commit.clone());
                let export_date = b.machine.as_ref().map(|m| m.date.clone());
                let commit_secs = commit.as_deref().and_then(commit_time);
                let export_secs = export_date.as_deref().and_then(parse_utc);
                let (key, ordered_by) = match (commit_secs, export_secs) {
                    (Some(t), _) => (Some(t), OrderedBy::CommitDate),
                    (None, Some(t)) => (Some(t), OrderedBy::ExportDate),
                    (None, None) => (None, OrderedBy::Given),
                };
                let info = ExportInfo {
                    name: b.name.clone(),
                    source: b.source.clone(),
                    commit,
                    commit_date: commit_secs.map(machine::rfc3339),
                    export_date,
                    ordered_by,
                    machine: b.machine.clone(),
                    benchmarks: b.benchmarks.len(),
                };
                (key, given, info, b)
            })
            .collect();
        // Dated exports by date; undated ones after them, in the order given.
        placed.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        let (infos, baselines): (Vec<ExportInfo>, Vec<Baseline>) =
            placed.into_iter().map(|(_, _, i, b)| (i, b)).unzip();
        let ids: BTreeSet<&String> = baselines.iter().flat_map(|b| b.benchmarks.keys()).collect();
        let mut series = ids
            .into_iter()
            .map(|id| series_of(id, &baselines, config))
            .collect::<Result<Vec<_>>>()?;
        series.sort_by(|a, b| {
            let (ra, rb) = (a.rank(), b.rank());
            ra.0.cmp(&rb.0)
                .then(ra.1.total_cmp(&rb.1))
                .then(a.id.cmp(&b.id))
        });
        let warnings = warnings(&infos, &series);
        Ok(History {
            exports: infos,
            series,
            warnings,
        })
    }
}

/// One benchmark's points and steps over the ordered exports.
fn series_of(id: &str, baselines: &[Baseline], config: &Config) -> Result<Series> {
    let kind = config.kind_of(id);
    let threshold_pct = config.threshold_of(id, kind)?;
    let mut unit = kind.display_unit();
    let mut points = Vec::with_capacity(baselines.len());
    for b in baselines {
        let Some(bench) = b.benchmarks.get(id) else {
            points.push(None);
            continue;
        };
        let costs = Costs::of(bench, kind)?;
        unit = costs.unit;
        let mut shown: Vec<f64> = costs
            .values
            .iter()
            .map(|c| costs.unit.from_cost(*c))
            .collect();
        shown.sort_by(f64::total_cmp);
        points.push(Some(Point {
            mean: costs.shown_mean(),
            q1: stats::quantile(&shown, 0.25),
            q3: stats::quantile(&shown, 0.75),
            samples: shown.len(),
        }));
    }
    let present: Vec<usize> = (0..baselines.len())
        .filter(|i| points[*i].is_some())
        .collect();
    let mut steps = Vec::new();
    for pair in present.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let one = |b: &Baseline| Baseline {
            name: b.name.clone(),
            source: b.source.clone(),
            // Machines are compared once for the whole history, not per pair.
            machine: None,
            benchmarks: b
                .benchmarks
                .get_key_value(id)
                .map(|(k, v)| BTreeMap::from([(k.clone(), v.clone())]))
                .unwrap_or_default(),
        };
        let report = verdict::compare(&one(&baselines[from]), &one(&baselines[to]), config)?;
        for row in report.rows {
            if let (Some(change), Verdict::Regressed | Verdict::Improved) =
                (row.change, row.verdict)
            {
                steps.push(Step {
                    from,
                    to,
                    change,
                    verdict: row.verdict,
                });
            }
        }
    }
    Ok(Series {
        id: id.to_string(),
        kind,
        unit,
        threshold_pct,
        points,
        steps,
    })
}

fn warnings(exports: &[ExportInfo], series: &[Series]) -> Vec<String> {
    let mut out = Vec::new();
    let machines: Vec<&Machine> = exports.iter().filter_map(|e| e.machine.as_ref()).collect();
    if let Some(first) = machines.first() {
        let differing: BTreeSet<String> =
            machines.iter().flat_map(|m| first.differences(m)).collect();
        if !differing.is_empty() {
            out.push(format!(
                "the exports were measured on different machines ({}); absolute numbers do not \
                 travel between machines, so a step may be the machine",
                differing.into_iter().collect::<Vec<_>>().join("; ")
            ));
        }
    }
    let partial = series
        .iter()
        .filter(|s| s.present() < exports.len())
        .count();
    if partial > 0 {
        out.push(format!(
            "{partial} of {} benchmarks are missing from some exports (renamed, added or \
             removed, or another profile); their charts have gaps",
            series.len()
        ));
    }
    let undated = exports
        .iter()
        .filter(|e| e.ordered_by == OrderedBy::Given)
        .count();
    if undated > 0 {
        out.push(format!(
            "{undated} export(s) record neither a commit nor a date; they are placed last, in \
             the order given"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_round_trip_through_rfc3339() {
        for secs in [0, 951_782_400, 1_795_000_000, 1_795_000_059] {
            assert_eq!(parse_utc(&machine::rfc3339(secs)), Some(secs));
        }
        assert_eq!(parse_utc("2026-11-23T17:41:38+01:00"), None);
        assert_eq!(parse_utc("unknown"), None);
        assert_eq!(parse_utc("2026-13-01T00:00:00Z"), None);
    }
}
