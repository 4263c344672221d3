//! Terminal rendering: a column-aligned table; colours only when asked (the CLI asks when
//! stdout is a TTY and `NO_COLOR` is unset), so logs and pipes get plain text.

use crate::slo::{BudgetStatus, SloReport};
use crate::verdict::{Report, Verdict};

fn paint(text: &str, verdict: Verdict, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match verdict {
        Verdict::Regressed => "1;31",
        Verdict::Improved => "32",
        Verdict::Inconclusive => "33",
        Verdict::Missing => "35",
        Verdict::New => "36",
        Verdict::Unchanged => return text.to_string(),
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Lays out rows of cells with every column padded to its widest cell (by characters, so `µ`
/// counts once), numbers flush right where `right[i]` says so. The last column is not padded.
fn table(rows: &[Vec<String>], right: &[bool]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                let last = i + 1 == row.len();
                if right.get(i).copied().unwrap_or(false) {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
                if !last {
                    line.push_str("  ");
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// Renders a comparison as a plain or coloured text table with a closing summary line.
pub fn render(report: &Report, colour: bool) -> String {
    let mut cells = vec![vec![
        "benchmark".to_string(),
        "base".into(),
        "new".into(),
        format!("change [{:.0}% CI]", report.confidence * 100.0),
        "p".into(),
        "threshold".into(),
        "verdict".into(),
    ]];
    for r in &report.rows {
        cells.push(vec![
            r.id.clone(),
            r.base.map_or("-".into(), |v| super::value(v, r.unit)),
            r.new.map_or("-".into(), |v| super::value(v, r.unit)),
            r.change
                .as_ref()
                .map_or("-".into(), |c| super::change_of(r.kind, c)),
            r.change
                .as_ref()
                .map_or("-".into(), |c| super::p_value(c.p_value)),
            super::threshold_of(r.kind, r.threshold_pct),
            super::verdict_of(r),
        ]);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "bench-gate: {} ({}) vs {} ({}){}\n\n",
        report.base_name,
        report.base_source.display(),
        report.new_name,
        report.new_source.display(),
        if report.rounds.is_empty() {
            String::new()
        } else {
            format!(
                ", {} interleaved rounds, paired by round",
                report.rounds.len()
            )
        }
    ));
    // benchmark | base | new | change | p | threshold | verdict
    let right = [false, true, true, true, true, true, false];
    for (i, line) in table(&cells, &right).into_iter().enumerate() {
        if i == 0 {
            out.push_str(&line);
        } else {
            // Colour after alignment so escape codes do not disturb column widths.
            let row = &report.rows[i - 1];
            let shown = super::verdict_of(row);
            match line.strip_suffix(shown.as_str()) {
                Some(head) => {
                    out.push_str(head);
                    out.push_str(&paint(&shown, row.verdict, colour && row.decides()));
                }
                None => out.push_str(&line),
            }
        }
        out.push('\n');
    }
    let flagged: Vec<&crate::verdict::Row> = report
        .rows
        .iter()
        .filter(|r| super::shows_rounds(r))
        .collect();
    if !flagged.is_empty() {
        out.push_str(
            "\nchange per round (NEW round k against BASE round k) of flagged benchmarks:\n",
        );
        let mut cells = Vec::new();
        for r in flagged {
            cells.push(vec![r.id.clone(), super::round_changes(r)]);
        }
        for line in table(&cells, &[false, false]) {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    let reasons: std::collections::BTreeSet<&str> = report
        .rows
        .iter()
        .filter_map(|r| r.informational.as_deref())
        .collect();
    for reason in reasons {
        out.push_str(&format!("\n(info): shown, never failing: {reason}\n"));
    }
    for w in &report.warnings {
        out.push_str(&format!("\nwarning: {w}\n"));
    }
    let c = report.counts();
    out.push_str(&format!(
        "\n{}: {} regressed, {} inconclusive, {} improved, {} unchanged, {} new, {} missing{}\n",
        if report.passed() { "PASS" } else { "FAIL" },
        c.regressed,
        c.inconclusive,
        c.improved,
        c.unchanged,
        c.new,
        c.missing,
        super::informational_note(&c)
    ));
    out
}

/// Renders the result of `bench-gate slo`.
pub fn render_slo(report: &SloReport, colour: bool) -> String {
    let mut cells = vec![vec![
        "budget".to_string(),
        "benchmark".into(),
        "value".into(),
        "limit".into(),
        "status".into(),
    ]];
    let mut verdicts = Vec::new();
    for r in &report.rows {
        let (status, v) = match r.status {
            BudgetStatus::Ok => ("ok", Verdict::Unchanged),
            BudgetStatus::Broken => ("BROKEN", Verdict::Regressed),
            BudgetStatus::Missing => ("missing", Verdict::Missing),
        };
        verdicts.push((status, v));
        cells.push(vec![
            r.selector.clone(),
            r.id.clone().unwrap_or_else(|| "-".into()),
            r.value.map_or("-".into(), |v| super::value(v, r.unit)),
            format!(
                "{} {}",
                r.budget.bound().symbol(),
                super::value(r.budget.limit(), r.unit)
            ),
            status.into(),
        ]);
    }
    let mut out = format!(
        "bench-gate slo: {} ({})\n\n",
        report.baseline,
        report.source.display()
    );
    // budget | benchmark | value | limit | status
    let right = [false, false, true, true, false];
    for (i, line) in table(&cells, &right).into_iter().enumerate() {
        if i > 0 {
            let (status, v) = verdicts[i - 1];
            if let Some(head) = line.strip_suffix(status) {
                out.push_str(head);
                out.push_str(&paint(status, v, colour));
                out.push('\n');
                continue;
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(if report.passed() {
        "\nPASS: every budget holds\n"
    } else {
        "\nFAIL: a budget is broken (or unmatched with fail_on_missing)\n"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{DisplayUnit, Kind};
    use crate::verdict::{Change, Row};

    fn report(verdicts: &[(&str, f64, Verdict)]) -> Report {
        Report {
            base_name: "base".into(),
            base_source: "c".into(),
            new_name: "new".into(),
            new_source: "c".into(),
            alpha: 0.05,
            confidence: 0.95,
            fail_on_missing: false,
            warnings: Vec::new(),
            rounds: Vec::new(),
            rows: verdicts
                .iter()
                .map(|&(id, point, verdict)| Row {
                    id: id.into(),
                    kind: Kind::Latency,
                    unit: DisplayUnit::Nanoseconds,
                    threshold_pct: 10.0,
                    base: Some(1_000.0),
                    new: Some(1_000.0 * (1.0 + point)),
                    samples: (20, 20),
                    change: Some(Change {
                        point,
                        lower: point - 0.05,
                        upper: point + 0.05,
                        p_value: 0.001,
                    }),
                    verdict,
                    informational: None,
                    round_changes: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn columns_line_up_whatever_the_width_of_the_values() {
        let r = report(&[
            ("latency/a", 0.25, Verdict::Regressed),
            ("latency/much_longer_name", 0.0, Verdict::Unchanged),
        ]);
        let out = render(&r, false);
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("latency/")).collect();
        assert_eq!(lines.len(), 2);
        // Right-aligned numbers end in the same column, so the verdicts start in the same one.
        let verdict_col = |l: &str| l.chars().count() - l.split_whitespace().last().unwrap().len();
        assert_eq!(verdict_col(lines[0]), verdict_col(lines[1]), "{out}");
        let threshold_end = |l: &str| l.find("+10%").unwrap();
        assert_eq!(threshold_end(lines[0]), threshold_end(lines[1]), "{out}");
    }

    #[test]
    fn colour_codes_appear_only_when_asked_for() {
        let r = report(&[("latency/a", 0.25, Verdict::Regressed)]);
        assert!(!render(&r, false).contains('\x1b'));
        assert!(render(&r, true).contains("\x1b[1;31mregressed\x1b[0m"));
    }
}
