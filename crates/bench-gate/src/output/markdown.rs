//! Markdown for `$GITHUB_STEP_SUMMARY` and the PR comment: a summary line first, then the rows
//! that fail the gate (regressions, and missing benchmarks when they fail; never an
//! `[[informational]]` row, which only the folded table shows, marked `(info)`), then the full
//! table folded in a `<details>` block. The first line is an HTML marker the workflow uses to find and update
//! its own comment.

use crate::budget::Bound;
use crate::slo::{BudgetStatus, SloReport};
use crate::verdict::{Report, Row, Verdict};

/// Hidden marker identifying bench-gate's PR comment.
pub const MARKER: &str = "<!-- bench-gate-report -->";

fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

fn cells(r: &Row) -> [String; 6] {
    [
        format!("`{}`", escape(&r.id)),
        r.base.map_or("-".into(), |v| super::value(v, r.unit)),
        r.new.map_or("-".into(), |v| super::value(v, r.unit)),
        r.change
            .as_ref()
            .map_or("-".into(), |c| super::change_of(r.kind, c)),
        r.change
            .as_ref()
            .map_or("-".into(), |c| super::p_value(c.p_value)),
        super::threshold_of(r.kind, r.threshold_pct),
    ]
}

fn icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "🔴 regressed",
        Verdict::Improved => "🟢 improved",
        Verdict::Unchanged => "⚪ unchanged",
        Verdict::Inconclusive => "🟡 inconclusive",
        Verdict::New => "🆕 new",
        Verdict::Missing => "❓ missing",
    }
}

/// The verdict cell: informational rows say so (they never fail the gate).
fn verdict_cell(r: &Row) -> String {
    if r.decides() {
        icon(r.verdict).to_string()
    } else {
        format!("{} (info)", r.verdict.name())
    }
}

/// Renders a comparison as Markdown.
pub fn render(report: &Report) -> String {
    let c = report.counts();
    let conf = format!("{:.0}%", report.confidence * 100.0);
    let mut out = String::new();
    out.push_str(MARKER);
    out.push('\n');
    // Only rows that decide can fail the gate; `[[informational]]` rows are shown, never listed
    // as failing (they stay in the folded table, marked `(info)`).
    let failing = |verdict: Verdict| -> Vec<&Row> {
        report
            .rows
            .iter()
            .filter(|r| r.verdict == verdict && r.decides())
            .collect()
    };
    let headline = if report.passed() {
        "✅ **bench-gate: pass**".to_string()
    } else if c.regressed > 0 {
        format!(
            "❌ **bench-gate: {} regression{}**",
            c.regressed,
            if c.regressed == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "❌ **bench-gate: {} missing benchmark(s)**",
            failing(Verdict::Missing).len()
        )
    };
    out.push_str(&format!(
        "{headline} — {} regressed, {} inconclusive, {} improved, {} unchanged, {} new, {} \
         missing{} (`{}` → `{}`{})\n\n",
        c.regressed,
        c.inconclusive,
        c.improved,
        c.unchanged,
        c.new,
        c.missing,
        super::informational_note(&c),
        escape(&report.base_name),
        escape(&report.new_name),
        if report.rounds.is_empty() {
            String::new()
        } else {
            format!(", {} interleaved rounds", report.rounds.len())
        }
    ));
    for w in &report.warnings {
        out.push_str(&format!("> ⚠️ {}\n\n", escape(w)));
    }
    let header = format!(
        "| benchmark | base | new | change [{conf} CI] | p | threshold | verdict |\n\
         |---|---:|---:|---:|---:|---:|---|\n"
    );
    // Everything that fails the gate comes before the folded table.
    let mut sections = vec![(Verdict::Regressed, "Regressions")];
    if report.fail_on_missing {
        sections.push((Verdict::Missing, "Missing benchmarks (`fail_on_missing`)"));
    }
    for (verdict, title) in sections {
        let rows = failing(verdict);
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("#### {title}\n\n"));
        out.push_str(&header);
        for r in rows {
            let [a, b, n, ch, p, t] = cells(r);
            out.push_str(&format!(
                "| {a} | {b} | {n} | {ch} | {p} | {t} | {} |\n",
                verdict_cell(r)
            ));
        }
        out.push('\n');
    }
    let flagged: Vec<&Row> = report
        .rows_by_severity()
        .into_iter()
        .filter(|r| super::shows_rounds(r))
        .collect();
    if !flagged.is_empty() {
        out.push_str("#### Change per round of flagged benchmarks\n\n| benchmark | change in round 1, 2, ... |\n|---|---|\n");
        for r in flagged {
            out.push_str(&format!(
                "| `{}` | {} |\n",
                escape(&r.id),
                super::round_changes(r)
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "<details><summary>All {} benchmarks</summary>\n\n",
        report.rows.len()
    ));
    out.push_str(&header);
    for r in report.rows_by_severity() {
        let [a, b, n, ch, p, t] = cells(r);
        out.push_str(&format!(
            "| {a} | {b} | {n} | {ch} | {p} | {t} | {} |\n",
            verdict_cell(r)
        ));
    }
    let test = if report.rounds.is_empty() {
        format!(
            "Welch's t-test p < {} **and** the whole {conf} bootstrap interval",
            report.alpha
        )
    } else {
        format!(
            "the paired t-test over the {} rounds p < {} **and** the whole {conf} interval",
            report.rounds.len(),
            report.alpha
        )
    };
    out.push_str(&format!(
        "\nA regression needs {test} of the change beyond the threshold; a significant change \
         whose interval straddles a threshold is inconclusive. Instruction counts and quality \
         figures are deterministic and decided exactly (quality in points). Rows marked (info) \
         never fail the gate.\n\n</details>\n"
    ));
    out
}

/// Renders the result of `bench-gate slo` as Markdown.
pub fn render_slo(report: &SloReport) -> String {
    let mut out = format!(
        "{MARKER}\n{} **bench-gate slo** on `{}`\n\n| budget | benchmark | value | limit | status |\n|---|---|---:|---:|---|\n",
        if report.passed() { "✅" } else { "❌" },
        escape(&report.baseline)
    );
    for r in &report.rows {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} {} | {} |\n",
            escape(&r.selector),
            r.id.as_deref()
                .map_or("-".into(), |id| format!("`{}`", escape(id))),
            r.value.map_or("-".into(), |v| super::value(v, r.unit)),
            match r.budget.bound() {
                Bound::AtMost => "≤",
                Bound::AtLeast => "≥",
            },
            super::value(r.budget.limit(), r.unit),
            match r.status {
                BudgetStatus::Ok => "ok",
                BudgetStatus::Broken => "🔴 broken",
                BudgetStatus::Missing => "❓ missing",
            }
        ));
    }
    out
}
