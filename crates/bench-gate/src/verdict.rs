//! The verdict: pairs the benchmarks of BASE and NEW by id, tests each pair and classifies it
//! against its threshold. Two baselines: Welch's t-test on per-iteration values plus a bootstrap
//! interval of the relative change. Two sets of interleaved rounds: a paired t-test on the log
//! ratios of the rounds, so that the machine's drift between rounds cancels. Deterministic kinds
//! (instruction counts, quality figures) are decided exactly. A regression needs significance
//! AND an interval wholly beyond the threshold.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, RoundStatistic};
use crate::cost::Costs;
use crate::criterion::{Baseline, Benchmark};
use crate::error::{Error, Result};
use crate::kind::{DisplayUnit, Kind};
use crate::machine::Machine;
use crate::source::{RoundSet, Side};
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

/// Change NEW vs BASE of the displayed value, with its interval and p-value: relative (a
/// fraction of BASE) for every kind but quality, whose change is the absolute difference of the
/// shares (0.02 = 2 points; see [`Kind::change_in_points`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Point estimate, as a fraction (0.25 = +25%, or 25 points for quality).
    pub point: f64,
    /// Lower bound of the bootstrap interval, as a fraction.
    pub lower: f64,
    /// Upper bound of the bootstrap interval, as a fraction.
    pub upper: f64,
    /// Two-sided p-value: Welch's t-test of two baselines, the paired t-test of rounds, and 0 or 1
    /// for a deterministic kind (the values differ or they do not).
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
    /// Why this benchmark never fails the gate (`[[informational]]` in the config), if it does
    /// not; its verdict is still computed and shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub informational: Option<String>,
    /// For a comparison of rounds: the change of each round, NEW round k against BASE round k, in
    /// the same scale as `change` (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub round_changes: Vec<f64>,
}

impl Row {
    /// Whether this row's verdict can fail the gate.
    pub fn decides(&self) -> bool {
        self.informational.is_none()
    }
}

/// The two rounds compared as round k of a comparison of interleaved rounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundPair {
    /// BASE's round (a baseline name such as `base-r3`).
    pub base: String,
    /// NEW's round (`head-r3`).
    pub new: String,
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
    /// The rounds paired, in order, when two sets of interleaved rounds were compared (empty for
    /// two baselines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<RoundPair>,
}

impl Report {
    /// The report of `rows` between the sides `base` and `new` (each a name and where it was
    /// read from), under `config`'s statistics; adds the warning of a shift common to all rows.
    fn new(
        base: (&str, &Path),
        new: (&str, &Path),
        config: &Config,
        mut warnings: Vec<String>,
        rows: Vec<Row>,
        rounds: Vec<RoundPair>,
    ) -> Report {
        warnings.extend(uniform_shift_warning(&rows, config.gate.alpha));
        Report {
            base_name: base.0.to_owned(),
            base_source: base.1.to_path_buf(),
            new_name: new.0.to_owned(),
            new_source: new.1.to_path_buf(),
            alpha: config.gate.alpha,
            confidence: config.gate.confidence,
            fail_on_missing: config.gate.fail_on_missing,
            warnings,
            rows,
            rounds,
        }
    }
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
    /// Informational rows (never failing) whose verdict is `regressed`; not in `regressed`.
    #[serde(default)]
    pub informational_regressed: usize,
}

impl Report {
    /// Rows per verdict.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.rows {
            match r.verdict {
                Verdict::Regressed if !r.decides() => c.informational_regressed += 1,
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

    /// True when no deciding row regressed (and nothing is missing, if that is configured to
    /// fail).
    pub fn passed(&self) -> bool {
        let c = self.counts();
        let missing = self
            .rows
            .iter()
            .any(|r| r.verdict == Verdict::Missing && r.decides());
        c.regressed == 0 && !(self.fail_on_missing && missing)
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
    let mut warnings: Vec<String> = machine_warning(base, new).into_iter().collect();
    for id in ids {
        let kind = config.kind_of(id);
        let threshold_pct = config.threshold_of(id, kind)?;
        let row = match (base.benchmarks.get(id), new.benchmarks.get(id)) {
            (Some(b), Some(n)) => {
                check_recorded_units(id, kind, b, n)?;
                let (base_costs, new_costs) = comparable_costs(id, kind, b, n)?;
                warnings.extend(nondeterminism_warning(
                    id,
                    kind,
                    threshold_pct,
                    &[(b, &base_costs), (n, &new_costs)],
                ));
                let change = relative_change(id, kind, &base_costs, &new_costs, config);
                decided_row(
                    id,
                    kind,
                    threshold_pct,
                    &base_costs,
                    &new_costs,
                    change,
                    config,
                )
            }
            (Some(b), None) => one_sided(id, kind, threshold_pct, b, OneSide::Base)?,
            (None, Some(n)) => one_sided(id, kind, threshold_pct, n, OneSide::New)?,
            (None, None) => continue,
        };
        rows.push(with_informational(row, config));
    }
    Ok(Report::new(
        (&base.name, &base.source),
        (&new.name, &new.source),
        config,
        warnings,
        rows,
        Vec::new(),
    ))
}

/// Fewest rounds a paired comparison of rounds needs: one round has no spread between rounds, so
/// nothing to test the change against.
pub const MIN_ROUNDS: usize = 2;

/// Compares two sets of interleaved rounds, round k of NEW against round k of BASE.
///
/// Per benchmark, each round gives the ratio of NEW's mean to BASE's mean; the change is the
/// geometric mean of those ratios with a t interval on their logarithms ([`stats::paired_ratio`]),
/// whose variance is moderated toward the level pooled over the comparison's timed benchmarks
/// when `gate.pooled_noise_df` is above 0 ([`stats::NoisePrior`]).
/// Whatever slows the machine down for a while slows both halves of a round alike and cancels in
/// its ratio; what is left is the spread between rounds, which the interval is made of. A
/// deterministic kind pools its rounds and is decided exactly.
///
/// Bad input is an error: sets of different sizes, a benchmark measured in some rounds but not
/// others (a round that crashed or was cut short), or a benchmark whose rounds hold different
/// numbers of samples (rounds run with different profiles or settings).
pub fn compare_rounds(base: &RoundSet, new: &RoundSet, config: &Config) -> Result<Report> {
    if base.rounds.len() != new.rounds.len() {
        return Err(Error::Rounds {
            message: format!(
                "{} has {} round(s) ({}) but {} has {} ({}): every round needs its partner",
                base.name,
                base.rounds.len(),
                base.names().join(", "),
                new.name,
                new.rounds.len(),
                new.names().join(", ")
            ),
        });
    }
    if base.rounds.is_empty() {
        return Err(Error::Rounds {
            message: format!("no rounds of {} to compare", base.name),
        });
    }
    let ids: BTreeSet<&String> = base
        .rounds
        .iter()
        .chain(&new.rounds)
        .flat_map(|b| b.benchmarks.keys())
        .collect();
    let mut rows = Vec::with_capacity(ids.len());
    let mut warnings: Vec<String> = machine_warning(&base.rounds[0], &new.rounds[0])
        .into_iter()
        .collect();
    if base.rounds.len() < MIN_ROUNDS {
        warnings.push(format!(
            "only one round per side: the verdict comes from the samples of that round alone, \
             so a change of the machine between its two halves reads as a change of the code; \
             run {MIN_ROUNDS} or more rounds"
        ));
    }
    // The noise level of this comparison's timed benchmarks, which each one's own rounds are
    // moderated toward (`gate.pooled_noise_df`; bad rows are reported below, not here). Not
    // computed when nothing is moderated.
    let pooling = config.gate.pooled_noise_df > 0.0;
    let variances: Vec<f64> = ids
        .iter()
        .filter(|_| pooling)
        .filter_map(|id| {
            let (b, n) = (presence(id, base), presence(id, new));
            if b.len() != base.rounds.len() || n.len() != new.rounds.len() {
                return None;
            }
            let logs = timed_log_ratios(id, config.kind_of(id), &b, &n, config).ok()??;
            Some(stats::variance(&logs))
        })
        .collect();
    let prior = stats::pooled_noise(
        &variances,
        base.rounds.len() as f64 - 1.0,
        config.gate.pooled_noise_df,
    );
    for id in ids {
        let kind = config.kind_of(id);
        let threshold_pct = config.threshold_of(id, kind)?;
        let in_base = presence(id, base);
        let in_new = presence(id, new);
        let row = match (in_base.as_slice(), in_new.as_slice()) {
            (b, n) if b.len() == base.rounds.len() && n.len() == new.rounds.len() => {
                rounds_row(id, kind, threshold_pct, b, n, config, prior, &mut warnings)?
            }
            (b, []) if b.len() == base.rounds.len() => {
                one_sided(id, kind, threshold_pct, b[0], OneSide::Base)?
            }
            ([], n) if n.len() == new.rounds.len() => {
                one_sided(id, kind, threshold_pct, n[0], OneSide::New)?
            }
            _ => return Err(partial_presence(id, base, new)),
        };
        rows.push(with_informational(row, config));
    }
    join_single_runs(base, new, config, &mut rows, &mut warnings)?;
    let rounds = base
        .rounds
        .iter()
        .zip(&new.rounds)
        .map(|(b, n)| RoundPair {
            base: b.name.clone(),
            new: n.name.clone(),
        })
        .collect();
    Ok(Report::new(
        (&base.name, &base.source),
        (&new.name, &new.source),
        config,
        warnings,
        rows,
        rounds,
    ))
}

/// Compares two sides of any shape: two baselines, or two sets of rounds. A baseline against a
/// set of rounds is an error (nothing to pair the rounds with).
pub fn compare_sides(base: &Side, new: &Side, config: &Config) -> Result<Report> {
    match (base, new) {
        (Side::Baseline(b), Side::Baseline(n)) => compare(b, n, config),
        (Side::Rounds(b), Side::Rounds(n)) => compare_rounds(b, n, config),
        (Side::Baseline(b), Side::Rounds(n)) | (Side::Rounds(n), Side::Baseline(b)) => {
            Err(Error::Rounds {
                message: format!(
                    "'{}' is one baseline but '{}' is a set of {} rounds: compare rounds with \
                     rounds (--rounds N, or NAME-r* on both sides)",
                    b.name,
                    n.name,
                    n.rounds.len()
                ),
            })
        }
    }
}

/// Adds the rows of the benchmarks each side ran once (its single baseline) to a comparison of
/// rounds: compared as two baselines. Both sides need one, or neither; an id may not be both in
/// the rounds and in the single run.
fn join_single_runs(
    base: &RoundSet,
    new: &RoundSet,
    config: &Config,
    rows: &mut Vec<Row>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let (b, n) = match (&base.single, &new.single) {
        (None, None) => return Ok(()),
        (Some(b), Some(n)) => (b, n),
        (Some(_), None) | (None, Some(_)) => {
            let (has, lacks) = if base.single.is_some() {
                (&base.name, &new.name)
            } else {
                (&new.name, &base.name)
            };
            return Err(Error::Rounds {
                message: format!(
                    "'{has}' has benchmarks run once (baseline '{has}') but '{lacks}' has none \
                     (baseline '{lacks}' missing: did its single run crash?)"
                ),
            });
        }
    };
    let single = compare(b, n, config)?;
    for row in &single.rows {
        if rows.iter().any(|r| r.id == row.id) {
            return Err(Error::Rounds {
                message: format!(
                    "benchmark '{}' is both in the rounds and in the single runs '{}'/'{}'",
                    row.id, b.name, n.name
                ),
            });
        }
    }
    rows.extend(single.rows);
    rows.sort_by(|x, y| x.id.cmp(&y.id));
    for w in single.warnings {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    Ok(())
}

/// The benchmark `id` of each round of `set` that has it.
fn presence<'a>(id: &str, set: &'a RoundSet) -> Vec<&'a Benchmark> {
    set.rounds
        .iter()
        .filter_map(|r| r.benchmarks.get(id))
        .collect()
}

/// The error for a benchmark measured in some rounds but not in others, naming them.
fn partial_presence(id: &str, base: &RoundSet, new: &RoundSet) -> Error {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in base.rounds.iter().chain(&new.rounds) {
        if round.benchmarks.contains_key(id) {
            with.push(round.name.as_str());
        } else {
            without.push(round.name.as_str());
        }
    }
    Error::Rounds {
        message: format!(
            "benchmark '{id}' is in round(s) {} but not in {}: a round crashed, was cut short or \
             ran another selection of benchmarks, so its rounds cannot be paired",
            with.join(", "),
            without.join(", ")
        ),
    }
}

/// The per-round log ratios NEW/BASE of a timed benchmark with at least [`MIN_ROUNDS`] rounds
/// (`None` for a deterministic kind or a single round), by the configured round statistic.
fn timed_log_ratios(
    id: &str,
    kind: Kind,
    base: &[&Benchmark],
    new: &[&Benchmark],
    config: &Config,
) -> Result<Option<Vec<f64>>> {
    if kind.is_deterministic() || base.len() < MIN_ROUNDS {
        return Ok(None);
    }
    let statistic = config.gate.round_statistic;
    base.iter()
        .zip(new)
        .map(|(b, n)| {
            let (bc, nc) = comparable_costs(id, kind, b, n)?;
            Ok((nc.location(statistic) / bc.location(statistic)).ln())
        })
        .collect::<Result<Vec<f64>>>()
        .map(Some)
}

/// The row of a benchmark present in every round of both sides; a timed one's interval uses
/// `prior`, the comparison's pooled noise level, when there is one.
#[allow(clippy::too_many_arguments)]
fn rounds_row(
    id: &str,
    kind: Kind,
    threshold_pct: f64,
    base: &[&Benchmark],
    new: &[&Benchmark],
    config: &Config,
    prior: Option<stats::NoisePrior>,
    warnings: &mut Vec<String>,
) -> Result<Row> {
    let mut base_costs = Vec::with_capacity(base.len());
    let mut new_costs = Vec::with_capacity(new.len());
    for (b, n) in base.iter().zip(new) {
        check_recorded_units(id, kind, b, n)?;
        let (bc, nc) = comparable_costs(id, kind, b, n)?;
        base_costs.push(bc);
        new_costs.push(nc);
    }
    check_round_settings(
        id,
        base.iter()
            .chain(new)
            .copied()
            .zip(base_costs.iter().chain(&new_costs)),
    )?;
    let pooled = |costs: &[Costs]| Costs {
        values: costs
            .iter()
            .flat_map(|c| c.values.iter().copied())
            .collect(),
        unit: costs[0].unit,
    };
    let (all_base, all_new) = (pooled(&base_costs), pooled(&new_costs));
    // Instruction counts are decided on every round's counts at once (below), so their rounds
    // show the change of means; timed rounds show what they are paired by.
    let statistic = if kind.is_deterministic() {
        RoundStatistic::Mean
    } else {
        config.gate.round_statistic
    };
    let round_changes: Vec<f64> = base_costs
        .iter()
        .zip(&new_costs)
        .map(|(b, n)| shown_change(kind, b.location(statistic), n.location(statistic)))
        .collect();
    if kind.is_deterministic() {
        // A side's rounds pooled, as they are decided.
        let sides = [(base[0], &all_base), (new[0], &all_new)];
        warnings.extend(nondeterminism_warning(id, kind, threshold_pct, &sides));
        let change = exact_change(kind, &all_base, &all_new);
        let mut row = decided_row(id, kind, threshold_pct, &all_base, &all_new, change, config);
        row.round_changes = round_changes;
        return Ok(row);
    }
    let change = if base_costs.len() < MIN_ROUNDS {
        relative_change(id, kind, &base_costs[0], &new_costs[0], config)
    } else {
        let ratios: Vec<f64> = base_costs
            .iter()
            .zip(&new_costs)
            .map(|(b, n)| n.location(statistic) / b.location(statistic))
            .collect();
        let paired = stats::paired_ratio_with(&ratios, config.gate.confidence, prior);
        cost_ratio_change(
            kind,
            stats::RatioInterval {
                point: paired.point,
                lower: paired.lower,
                upper: paired.upper,
            },
            paired.p,
        )
    };
    let mut row = decided_row(id, kind, threshold_pct, &all_base, &all_new, change, config);
    row.round_changes = round_changes;
    Ok(row)
}

/// Every round of a benchmark must hold the same number of samples: a different count means the
/// rounds ran with different settings (profiles, `--sample-size`), whose means do not pair.
fn check_round_settings<'a>(
    id: &str,
    rounds: impl Iterator<Item = (&'a Benchmark, &'a Costs)>,
) -> Result<()> {
    let counts: Vec<(String, usize)> = rounds
        .map(|(b, c)| (round_name(b), c.values.len()))
        .collect();
    if counts.windows(2).all(|w| w[0].1 == w[1].1) {
        return Ok(());
    }
    Err(Error::Rounds {
        message: format!(
            "benchmark '{id}' has different sample counts in its rounds ({}): rounds of \
             different profiles or settings cannot be paired",
            counts
                .iter()
                .map(|(name, n)| format!("{name}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The baseline (round) a benchmark was read from: the last component of its directory.
fn round_name(b: &Benchmark) -> String {
    b.source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| b.source.display().to_string())
}

/// The change of the shown value from one BASE mean cost to one NEW mean cost.
fn shown_change(kind: Kind, base_cost: f64, new_cost: f64) -> f64 {
    if kind.change_in_points() {
        new_cost - base_cost
    } else if kind == Kind::Throughput {
        base_cost / new_cost - 1.0
    } else {
        new_cost / base_cost - 1.0
    }
}

/// The row of a benchmark with a change: classified against its threshold.
fn decided_row(
    id: &str,
    kind: Kind,
    threshold_pct: f64,
    base: &Costs,
    new: &Costs,
    change: Change,
    config: &Config,
) -> Row {
    let verdict = classify(
        &change,
        kind.higher_is_better(),
        threshold_pct.abs() / 100.0,
        config.gate.alpha,
    );
    Row {
        id: id.to_string(),
        kind,
        unit: base.unit,
        threshold_pct,
        base: Some(base.shown_mean()),
        new: Some(new.shown_mean()),
        samples: (base.values.len(), new.values.len()),
        change: Some(change),
        verdict,
        informational: None,
        round_changes: Vec::new(),
    }
}

/// Marks the row informational when the config says so.
fn with_informational(mut row: Row, config: &Config) -> Row {
    row.informational = config.informational_reason(&row.id).map(str::to_string);
    row
}

/// A deterministic kind whose samples vary within a side was not measured deterministically:
/// say so when the widest side's spread reaches [`NOTABLE_SPREAD`] of the threshold, where it
/// weighs against the threshold (the verdict allows for it, see `exact_change`). Smaller
/// spreads, such as the 0.01-0.3% by which instruction counts of searches differ from run to
/// run, are what the threshold is set above, and a warning per benchmark in every report would
/// bury the others.
fn nondeterminism_warning(
    id: &str,
    kind: Kind,
    threshold_pct: f64,
    sides: &[(&Benchmark, &Costs)],
) -> Option<String> {
    if !kind.is_deterministic() {
        return None;
    }
    // Each side's spread, in the threshold's terms (points, or a fraction of the lowest value).
    let spread = |values: &[f64]| {
        let (lo, hi) = stats::range(values);
        if !varies(lo, hi) {
            0.0
        } else if kind.change_in_points() {
            hi - lo
        } else if lo > 0.0 {
            hi / lo - 1.0
        } else {
            f64::INFINITY
        }
    };
    let (widest, costs) = sides
        .iter()
        .map(|(b, c)| (spread(&c.values), (b, c)))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    if widest == 0.0 || widest < NOTABLE_SPREAD * threshold_pct.abs() / 100.0 {
        return None;
    }
    let (lo, hi) = stats::range(&costs.1.values);
    let by = if kind.change_in_points() || !widest.is_finite() {
        format!("{}", hi - lo)
    } else {
        format!("{:.3}%", widest * 100.0)
    };
    Some(format!(
        "'{id}' is deterministic by kind ({}) but its values vary by {by} within one side ({lo} \
         to {hi} in {}): a change counts only beyond that spread",
        kind.name(),
        costs.0.source.display()
    ))
}

/// Share of a deterministic benchmark's threshold from which a spread of its values is
/// reported ([`nondeterminism_warning`]).
pub const NOTABLE_SPREAD: f64 = 0.25;

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

/// The per-iteration costs of a benchmark present on both sides, checked comparable.
fn comparable_costs(id: &str, kind: Kind, b: &Benchmark, n: &Benchmark) -> Result<(Costs, Costs)> {
    let base = Costs::of(b, kind)?;
    let new = Costs::of(n, kind)?;
    check_comparable(id, kind, (b, &base), (n, &new))?;
    Ok((base, new))
}

/// A relative change needs the same rate unit on both sides and a positive mean on each.
fn check_comparable(
    id: &str,
    kind: Kind,
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
        // A difference in points needs no positive base; a ratio does.
        let usable = mean.is_finite() && (mean > 0.0 || (kind.change_in_points() && mean >= 0.0));
        if !usable {
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

/// The change of the shown value NEW vs BASE: exact for a deterministic kind, else Welch's
/// p-value and a seeded bootstrap interval of the ratio of mean costs (per benchmark id, so each
/// id has its own reproducible stream).
fn relative_change(id: &str, kind: Kind, base: &Costs, new: &Costs, config: &Config) -> Change {
    if kind.is_deterministic() {
        return exact_change(kind, base, new);
    }
    let welch = stats::welch(&base.values, &new.values);
    let ratio = stats::bootstrap_ratio(
        &base.values,
        &new.values,
        config.gate.resamples,
        config.gate.confidence,
        config.gate.seed ^ fnv1a(id),
    );
    cost_ratio_change(kind, ratio, welch.p)
}

/// The change of the shown value from an interval of the ratio of mean costs NEW/BASE.
fn cost_ratio_change(kind: Kind, ratio: stats::RatioInterval, p_value: f64) -> Change {
    if kind == Kind::Throughput {
        // Throughput is the reciprocal of cost, so the interval's ends swap.
        Change {
            point: 1.0 / ratio.point - 1.0,
            lower: 1.0 / ratio.upper - 1.0,
            upper: 1.0 / ratio.lower - 1.0,
            p_value,
        }
    } else {
        Change {
            point: ratio.point - 1.0,
            lower: ratio.lower - 1.0,
            upper: ratio.upper - 1.0,
            p_value,
        }
    }
}

/// Relative difference below which two values of a deterministic kind are the same value: what
/// is left of floating-point rounding once Criterion divides a sample's total by an iteration
/// count above 2^23 (a quality figure on the 2^-30 grid is then off by an ulp or two).
pub const EXACT_TOLERANCE: f64 = 1e-9;

/// The change of a deterministic kind: the difference of the means (relative, or in points),
/// certain when the means differ (p = 0) and none when they are equal up to
/// [`EXACT_TOLERANCE`] (p = 1, change 0). No bootstrap: there is no noise to resample.
///
/// Unless a side's values vary after all (a count taken twice that came out different, see
/// `callgrind`): then the interval spans every change from a value of BASE to a value of NEW,
/// so a change is decided only when it is larger than the two sides' spread, and a row whose
/// repeats disagree by more than its threshold is inconclusive, not regressed on one draw.
fn exact_change(kind: Kind, base: &Costs, new: &Costs) -> Change {
    let (b, n) = (base.mean(), new.mean());
    let same = (b - n).abs() <= EXACT_TOLERANCE * b.abs().max(n.abs());
    let point = if same { 0.0 } else { shown_change(kind, b, n) };
    let p_value = if same { 1.0 } else { 0.0 };
    let ((b_lo, b_hi), (n_lo, n_hi)) = (stats::range(&base.values), stats::range(&new.values));
    if !varies(b_lo, b_hi) && !varies(n_lo, n_hi) {
        return Change {
            point,
            lower: point,
            upper: point,
            p_value,
        };
    }
    let ends = [
        shown_change(kind, b_lo, n_lo),
        shown_change(kind, b_lo, n_hi),
        shown_change(kind, b_hi, n_lo),
        shown_change(kind, b_hi, n_hi),
    ];
    Change {
        point,
        lower: ends.iter().copied().fold(point, f64::min),
        upper: ends.iter().copied().fold(point, f64::max),
        p_value,
    }
}

/// Whether values from `lo` to `hi` of a deterministic kind differ by more than rounding
/// ([`EXACT_TOLERANCE`]).
fn varies(lo: f64, hi: f64) -> bool {
    hi - lo > EXACT_TOLERANCE * hi.abs().max(lo.abs())
}

/// The side a one-sided benchmark is on.
#[derive(Clone, Copy, PartialEq)]
enum OneSide {
    Base,
    New,
}

/// The row of a benchmark present on one side only: `missing` from NEW or `new` in it.
fn one_sided(
    id: &str,
    kind: Kind,
    threshold_pct: f64,
    bench: &Benchmark,
    side: OneSide,
) -> Result<Row> {
    let costs = Costs::of(bench, kind)?;
    let (value, samples) = (Some(costs.shown_mean()), costs.values.len());
    let in_base = side == OneSide::Base;
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
        informational: None,
        round_changes: Vec::new(),
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
            informational: None,
            round_changes: Vec::new(),
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
