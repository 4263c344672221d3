//! Terminal rendering: a column-aligned table; colours only when asked (the CLI asks when
//! stdout is a TTY and `NO_COLOR` is unset), so logs and pipes get plain text.

use crate::slo::SloReport;
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
/// counts once). The last column is not padded.
fn table(rows: &[Vec<String>]) -> Vec<String> {
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
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
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
            r.base.map_or("-".into(), |v| super::value(v, &r.unit)),
            r.new.map_or("-".into(), |v| super::value(v, &r.unit)),
            r.change.as_ref().map_or("-".into(), super::change),
            r.change
                .as_ref()
                .map_or("-".into(), |c| super::p_value(c.p_value)),
            super::threshold(r.threshold_pct),
            r.verdict.name().into(),
        ]);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "bench-gate: {} ({}) vs {} ({})\n\n",
        report.base_name,
        report.base_source.display(),
        report.new_name,
        report.new_source.display()
    ));
    for (i, line) in table(&cells).into_iter().enumerate() {
        if i == 0 {
            out.push_str(&line);
        } else {
            // Colour after alignment so escape codes do not disturb column widths.
            let verdict = report.rows[i - 1].verdict;
            let name = verdict.name();
            match line.strip_suffix(name) {
                Some(head) => {
                    out.push_str(head);
                    out.push_str(&paint(name, verdict, colour));
                }
                None => out.push_str(&line),
            }
        }
        out.push('\n');
    }
    for w in &report.warnings {
        out.push_str(&format!("\nwarning: {w}\n"));
    }
    let c = report.counts();
    out.push_str(&format!(
        "\n{}: {} regressed, {} inconclusive, {} improved, {} unchanged, {} new, {} missing\n",
        if report.passed() { "PASS" } else { "FAIL" },
        c.regressed,
        c.inconclusive,
        c.improved,
        c.unchanged,
        c.new,
        c.missing
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
        let (status, v) = match r.ok {
            Some(true) => ("ok", Verdict::Unchanged),
            Some(false) => ("BROKEN", Verdict::Regressed),
            None => ("missing", Verdict::Missing),
        };
        verdicts.push((status, v));
        cells.push(vec![
            r.selector.clone(),
            r.id.clone().unwrap_or_else(|| "-".into()),
            r.value.map_or("-".into(), |v| super::value(v, &r.unit)),
            format!(
                "{} {}",
                if r.is_max { "<=" } else { ">=" },
                super::value(r.limit, &r.unit)
            ),
            status.into(),
        ]);
    }
    let mut out = format!(
        "bench-gate slo: {} ({})\n\n",
        report.baseline,
        report.source.display()
    );
    for (i, line) in table(&cells).into_iter().enumerate() {
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
