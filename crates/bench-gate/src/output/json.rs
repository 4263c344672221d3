//! Versioned JSON output. The schema is documented in the crate README ("JSON output");
//! any incompatible change must bump [`VERSION`].

use serde_json::{json, Value};

use crate::budget::Bound;
use crate::slo::SloReport;
use crate::verdict::Report;

/// Schema version of the JSON documents.
pub const VERSION: u32 = 1;

/// The comparison as a JSON document (schema `bench-gate/compare`, version [`VERSION`]).
pub fn compare_value(report: &Report) -> Value {
    let benchmarks: Vec<Value> = report
        .rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "kind": r.kind.name(),
                "unit": r.unit.label(),
                "threshold_pct": r.threshold_pct,
                "base": r.base,
                "new": r.new,
                "samples": {"base": r.samples.0, "new": r.samples.1},
                "change": r.change.map(|c| json!({
                    "point_pct": c.point * 100.0,
                    "lower_pct": c.lower * 100.0,
                    "upper_pct": c.upper * 100.0,
                    "p_value": c.p_value,
                    "scale": if r.kind.change_in_points() { "points" } else { "percent" },
                })),
                "verdict": r.verdict.name(),
                "informational": r.informational,
                "round_changes_pct": r.round_changes.iter().map(|c| c * 100.0).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "schema": "bench-gate/compare",
        "version": VERSION,
        "passed": report.passed(),
        "exit_code": report.exit_code(),
        "base": {"name": report.base_name, "source": report.base_source},
        "new": {"name": report.new_name, "source": report.new_source},
        "settings": {
            "alpha": report.alpha,
            "confidence": report.confidence,
            "fail_on_missing": report.fail_on_missing,
        },
        "counts": report.counts(),
        "warnings": report.warnings,
        "rounds": report.rounds,
        "benchmarks": benchmarks,
    })
}

/// Pretty-printed [`compare_value`].
pub fn render(report: &Report) -> String {
    serde_json::to_string_pretty(&compare_value(report)).unwrap_or_default()
}

/// The SLO check as a JSON document (schema `bench-gate/slo`, version [`VERSION`]).
pub fn render_slo(report: &SloReport) -> String {
    let value = json!({
        "schema": "bench-gate/slo",
        "version": VERSION,
        "passed": report.passed(),
        "exit_code": report.exit_code(),
        "baseline": {"name": report.baseline, "source": report.source},
        "budgets": report.rows.iter().map(|r| json!({
            "selector": r.selector,
            "id": r.id,
            "kind": r.budget.kind().name(),
            "unit": r.unit.label(),
            "value": r.value,
            "limit": r.budget.limit(),
            "bound": match r.budget.bound() { Bound::AtMost => "max", Bound::AtLeast => "min" },
            "status": r.status.name(),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
