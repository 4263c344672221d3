//! Absolute budgets (`[[slo]]` in `bench-gate.toml`) checked against one baseline: p99 latency
//! ceilings, ops/s floors, bytes-per-1K-entries ceilings. Relative gates miss slow drifts that
//! each stay under the threshold; budgets catch them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::cost::Costs;
use crate::criterion::Baseline;
use crate::error::{Error, Result};
use crate::kind::{DisplayUnit, Kind};

/// One budget applied to one benchmark (or to nothing, when no benchmark matched).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloRow {
    /// The budget's selector (`id` or `prefix*suffix`).
    pub selector: String,
    /// Benchmark checked; `None` when the selector matched nothing.
    pub id: Option<String>,
    /// Kind the budget applies to.
    pub kind: Kind,
    /// Unit of `value` and `limit`.
    pub unit: DisplayUnit,
    /// Mean of the benchmark in `unit`.
    pub value: Option<f64>,
    /// The budget.
    pub limit: f64,
    /// True for a ceiling (`max_*`), false for a floor (`min_*`).
    pub is_max: bool,
    /// Whether the budget holds; `None` when no benchmark matched.
    pub ok: Option<bool>,
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
        self.rows.iter().all(|r| match r.ok {
            Some(ok) => ok,
            None => !self.fail_on_missing,
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
    let config_path = config
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from("<built-in defaults>"));
    if config.slos.is_empty() {
        return Err(Error::Config {
            path: config_path,
            message: "no [[slo]] budgets are configured, so there is nothing to check".into(),
        });
    }
    let mut rows = Vec::new();
    for slo in &config.slos {
        let (kind, limit, is_max) = slo.budget();
        let mut matched = false;
        for (id, bench) in baseline.benchmarks.iter().filter(|(id, _)| slo.matches(id)) {
            matched = true;
            // A time sample can be held to a latency budget or, through its Throughput
            // setting, to an ops/s budget, whatever kind its relative gate uses (e.g.
            // `latency/ltm/insert_batch/*`); only bytes and times never mix.
            let actual = bench.unit.unwrap_or_else(|| config.kind_of(id).unit());
            if actual != kind.unit() {
                return Err(Error::Config {
                    path: config_path,
                    message: format!(
                        "[[slo]] {} sets a {} budget (in {}) but benchmark '{id}' is measured \
                         in {actual}",
                        slo.selector(),
                        kind.name(),
                        kind.unit()
                    ),
                });
            }
            let costs = Costs::of(bench, kind)?;
            let value = costs.shown_mean();
            let ok = if is_max {
                value <= limit
            } else {
                value >= limit
            };
            rows.push(SloRow {
                selector: slo.selector(),
                id: Some(id.clone()),
                kind,
                unit: costs.unit,
                value: Some(value),
                limit,
                is_max,
                ok: Some(ok),
            });
        }
        if !matched {
            rows.push(SloRow {
                selector: slo.selector(),
                id: None,
                kind,
                unit: kind.display_unit(),
                value: None,
                limit,
                is_max,
                ok: None,
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
