//! Absolute budgets (`[[slo]]` in `bench-gate.toml`) checked against one baseline: p99 latency
//! ceilings, ops/s floors, bytes-per-1K-entries ceilings. Relative gates miss slow drifts that
//! each stay under the threshold; budgets catch them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::budget::{Budget, Slo};
use crate::config::Config;
use crate::cost::Costs;
use crate::criterion::{Baseline, Benchmark};
use crate::error::Result;
use crate::kind::DisplayUnit;

/// Whether one budget holds for one benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetStatus {
    /// The benchmark keeps the budget.
    Ok,
    /// The benchmark breaks the budget.
    Broken,
    /// No benchmark of the baseline matched the budget's selector.
    Missing,
}

impl BudgetStatus {
    /// Lower-case name, as in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            BudgetStatus::Ok => "ok",
            BudgetStatus::Broken => "broken",
            BudgetStatus::Missing => "missing",
        }
    }
}

/// One budget applied to one benchmark (or to nothing, when no benchmark matched).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloRow {
    /// The budget's selector (`id` or `prefix*suffix`).
    pub selector: String,
    /// Benchmark checked; `None` when the selector matched nothing.
    pub id: Option<String>,
    /// The budget, whose limit is in `unit`.
    pub budget: Budget,
    /// Unit of `value` and of the budget's limit.
    pub unit: DisplayUnit,
    /// Mean of the benchmark in `unit`.
    pub value: Option<f64>,
    /// Whether the budget holds.
    pub status: BudgetStatus,
}

/// Result of `bench-gate slo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloReport {
    /// Baseline checked.
    pub baseline: String,
    /// Where it was read from.
    pub source: PathBuf,
    /// Whether a budget matching no benchmark fails.
    pub fail_on_missing: bool,
    /// One row per (budget, matching benchmark).
    pub rows: Vec<SloRow>,
}

impl SloReport {
    /// True when every budget holds (and every budget matched, if missing ones fail).
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| match r.status {
            BudgetStatus::Ok => true,
            BudgetStatus::Broken => false,
            BudgetStatus::Missing => !self.fail_on_missing,
        })
    }

    /// Process exit code: 0 pass, 2 a budget is broken.
    pub fn exit_code(&self) -> i32 {
        if self.passed() {
            0
        } else {
            2
        }
    }
}

/// Checks every `[[slo]]` of `config` against `baseline`.
pub fn check(baseline: &Baseline, config: &Config) -> Result<SloReport> {
    if config.slos.is_empty() {
        return Err(
            config.error("no [[slo]] budgets are configured, so there is nothing to check".into())
        );
    }
    let mut rows = Vec::new();
    for slo in &config.slos {
        let before = rows.len();
        for (id, bench) in baseline.benchmarks.iter().filter(|(id, _)| slo.matches(id)) {
            rows.push(check_one(slo, id, bench, config)?);
        }
        if rows.len() == before {
            rows.push(SloRow {
                selector: slo.selector.to_string(),
                id: None,
                budget: slo.budget,
                unit: slo.budget.unit(),
                value: None,
                status: BudgetStatus::Missing,
            });
        }
    }
    Ok(SloReport {
        baseline: baseline.name.clone(),
        source: baseline.source.clone(),
        fail_on_missing: config.gate.fail_on_missing,
        rows,
    })
}

/// Holds benchmark `id` to `slo`'s budget.
fn check_one(slo: &Slo, id: &str, bench: &Benchmark, config: &Config) -> Result<SloRow> {
    let kind = slo.budget.kind();
    // A time sample can be held to a latency budget or, through its Throughput setting, to an
    // ops/s budget, whatever kind its relative gate uses (e.g. `latency/ltm/insert_batch/*`);
    // only bytes and times never mix.
    let actual = bench.unit.unwrap_or_else(|| config.kind_of(id).unit());
    if actual != kind.unit() {
        return Err(config.error(format!(
            "[[slo]] {} sets a {} budget (in {}) but benchmark '{id}' is measured in {actual}",
            slo.selector,
            kind.name(),
            kind.unit()
        )));
    }
    let costs = Costs::of(bench, kind)?;
    // A throughput setting in bytes or bits makes the rate B/s or bit/s: an ops/s floor read
    // against it would compare operations with bytes (and pass by orders of magnitude), so the
    // rate must be in the budget's own unit, as `compare` requires of its two sides.
    if costs.unit != slo.budget.unit() {
        return Err(config.error(format!(
            "[[slo]] {} sets a {} budget in {} but benchmark '{id}' has a throughput of {}, so \
             its rate is in {}",
            slo.selector,
            kind.name(),
            slo.budget.unit(),
            bench
                .info
                .throughput
                .map_or_else(|| "none".to_string(), |t| format!("{t:?}")),
            costs.unit
        )));
    }
    let value = costs.shown_mean();
    Ok(SloRow {
        selector: slo.selector.to_string(),
        id: Some(id.to_string()),
        budget: slo.budget,
        unit: costs.unit,
        value: Some(value),
        status: if slo.budget.holds(value) {
            BudgetStatus::Ok
        } else {
            BudgetStatus::Broken
        },
    })
}
