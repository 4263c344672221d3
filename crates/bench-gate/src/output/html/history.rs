//! The history page (`bench-gate history FILES... --html FILE`): the exports in commit order,
//! the steps beyond a threshold, and one small chart per benchmark with the threshold band
//! around its latest value; a filter box narrows the charts by id prefix.

use std::fmt::Write as _;

use super::chart::{self, Trend, TrendPoint};
use super::comparison::short;
use super::{escape, page};
use crate::error::Result;
use crate::history::{History, OrderedBy, Series, Step};
use crate::kind::Kind;
use crate::output;
use crate::verdict::Verdict;

const TREND_SIZE: (u32, u32) = (560, 160);

/// Bands wider than this (a fraction of the latest value, or of a whole share for quality) are
/// left off the chart: a threshold of 1e12% marks a benchmark that never decides, and its band
/// would flatten the line.
const MAX_BAND: f64 = 1.0;

/// The threshold band around `mean`, in the series' unit: `mean` ± the threshold, relative to
/// `mean` (a threshold in percent), or absolute for a kind whose threshold is in points (2
/// points around a recall of 0.85 is 0.83 to 0.87). `None` when the band is off scale.
fn band_around(kind: Kind, mean: f64, threshold_pct: f64) -> Option<(f64, f64)> {
    let t = threshold_pct.abs() / 100.0;
    if t > MAX_BAND {
        None
    } else if kind.change_in_points() {
        Some((mean - t, mean + t))
    } else {
        Some((mean * (1.0 - t), mean * (1.0 + t)))
    }
}

/// The whole history page.
pub fn render(history: &History) -> Result<String> {
    let n = history.exports.len();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>bench-gate history: {n} export{}, {} benchmarks</h1>",
        if n == 1 { "" } else { "s" },
        history.series.len()
    );
    body.push_str(&banner(history));
    for w in &history.warnings {
        let _ = writeln!(body, "<p class=\"warn\">⚠ {}</p>", escape(w));
    }
    body.push_str(&span_line(history));
    let _ = writeln!(
        body,
        "<h2>Benchmarks</h2>\n<p class=\"legend\">One chart per benchmark: the mean of each \
         export (a dot; the grey bar spans its samples' quartiles), \
         <span style=\"color:#cc3311\">red</span> / <span style=\"color:#228833\">green</span> \
         segments: a step for the worse / better between two exports, which the gate's own test \
         (significant, the whole interval beyond the threshold) would flag; the blue band: the \
         threshold around the latest value. Exports are numbered oldest first (list at the end); \
         benchmarks with a step for the worse come first, the largest step first.</p>\n\
         <div class=\"filter\"><label>Filter by id prefix: <input id=\"filter\" type=\"search\" \
         placeholder=\"e.g. latency/search/\" autocomplete=\"off\" spellcheck=\"false\"></label> \
         <span id=\"shown\" class=\"meta\">showing {m} of {m}</span></div>\n<div class=\"cards small\" id=\"charts\">",
        m = history.series.len()
    );
    for (i, s) in history.series.iter().enumerate() {
        body.push_str(&card(s, i)?);
    }
    body.push_str("</div>\n");
    body.push_str(&exports_table(history));
    Ok(page(
        &format!("bench-gate history: {n} exports"),
        &body,
        Some(FILTER_SCRIPT),
    ))
}

const FILTER_SCRIPT: &str = r#"(function () {
  const input = document.getElementById('filter');
  const shown = document.getElementById('shown');
  const cards = Array.from(document.querySelectorAll('#charts .card'));
  function apply() {
    const prefix = input.value.trim();
    let visible = 0;
    for (const card of cards) {
      const hit = card.dataset.id.startsWith(prefix);
      card.classList.toggle('hidden', !hit);
      if (hit) visible++;
    }
    shown.textContent = 'showing ' + visible + ' of ' + cards.length;
  }
  input.addEventListener('input', apply);
  apply();
})();"#;

fn banner(history: &History) -> String {
    if history.exports.len() == 1 {
        return "<div class=\"banner info\" id=\"verdict\">Only one export: no history yet\
                <span class=\"sub\">Each chart shows this export's value and its threshold \
                band; add exports of later commits to see steps and drift.</span></div>\n"
            .to_string();
    }
    let worse = history
        .series
        .iter()
        .filter(|s| s.worst_step().is_some())
        .count();
    let better = history
        .series
        .iter()
        .filter(|s| s.worst_step().is_none() && !s.steps.is_empty())
        .count();
    let sub = "A step is a change between two consecutive exports that the gate would call a \
               regression or an improvement: significant, with its whole interval beyond the \
               benchmark's threshold.";
    let (class, headline) = match (worse, better) {
        (0, 0) => (
            "pass",
            "No step beyond a threshold between consecutive exports".to_string(),
        ),
        (0, b) => (
            "pass",
            format!("No step for the worse; {b} benchmark(s) stepped for the better"),
        ),
        (w, b) => (
            "fail",
            format!(
                "{w} benchmark(s) stepped beyond their threshold for the worse{}",
                if b > 0 {
                    format!(", {b} for the better")
                } else {
                    String::new()
                }
            ),
        ),
    };
    format!(
        "<div class=\"banner {class}\" id=\"verdict\" data-worse=\"{worse}\" data-better=\"{better}\">{}{}<span class=\"sub\">{sub}</span></div>\n",
        escape(&headline),
        worst_list(history)
    )
}

/// Links to the benchmarks with a step for the worse (the largest first, as the charts are
/// ordered), each with its largest step; the first few only.
fn worst_list(history: &History) -> String {
    const SHOWN: usize = 8;
    let stepped: Vec<(usize, &Series, &Step)> = history
        .series
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.worst_step().map(|st| (i, s, st)))
        .collect();
    if stepped.is_empty() {
        return String::new();
    }
    let mut items: Vec<String> = stepped
        .iter()
        .take(SHOWN)
        .map(|(i, s, st)| {
            format!(
                "<a class=\"id\" href=\"#h-{i}\">{}</a> {} at #{}",
                escape(&s.id),
                output::change_point_of(s.kind, st.change.point),
                st.to + 1
            )
        })
        .collect();
    if stepped.len() > SHOWN {
        items.push(format!("and {} more below", stepped.len() - SHOWN));
    }
    format!("<span class=\"list\">{}</span>", items.join(" · "))
}

/// The span of the history in one line: first and last export, and what ordered them.
fn span_line(history: &History) -> String {
    let label = |i: usize| {
        let e = &history.exports[i];
        let commit = e.commit.as_deref().map(short).unwrap_or("no commit");
        let date = e
            .commit_date
            .as_deref()
            .or(e.export_date.as_deref())
            .and_then(|d| d.get(..10))
            .unwrap_or("no date");
        format!(
            "#{} <code>{}</code> ({})",
            i + 1,
            escape(commit),
            escape(date)
        )
    };
    let n = history.exports.len();
    let span = if n == 1 {
        label(0)
    } else {
        format!("from {} to {}", label(0), label(n - 1))
    };
    let count = |by: OrderedBy| {
        history
            .exports
            .iter()
            .filter(|e| e.ordered_by == by)
            .count()
    };
    let order = match (count(OrderedBy::CommitDate), count(OrderedBy::ExportDate)) {
        (c, _) if c == n => "by commit date".to_string(),
        (_, e) if e == n => "by export date (git could not look the commits up here)".to_string(),
        (0, 0) => "as given (no dates recorded)".to_string(),
        (c, e) => {
            format!("by commit date where git knows the commit ({c}), else by export date ({e})")
        }
    };
    format!(
        "<p class=\"meta\" id=\"span\">{n} export{} {span}, oldest first, placed {order}; the \
         numbered list is <a href=\"#exports\">at the end</a>.</p>\n",
        if n == 1 { "" } else { "s" }
    )
}

fn exports_table(history: &History) -> String {
    let mut out = String::from(
        "<h2>Exports, oldest first</h2>\n<table id=\"exports\">\n<tr><th>#</th><th>commit</th>\
         <th>commit date (UTC)</th><th>exported (UTC)</th><th>baseline</th><th>file</th>\
         <th class=\"num\">benchmarks</th></tr>\n",
    );
    for (i, e) in history.exports.iter().enumerate() {
        let placed = match e.ordered_by {
            OrderedBy::CommitDate => "",
            OrderedBy::ExportDate => " title=\"placed by its export date\"",
            OrderedBy::Given => " title=\"no date: placed as given\"",
        };
        let _ = writeln!(
            out,
            "<tr{placed}><td>#{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
             <td>{}</td><td><code title=\"{}\">{}</code></td><td class=\"num\">{}</td></tr>",
            i + 1,
            e.commit
                .as_deref()
                .map(short)
                .map(escape)
                .unwrap_or("-".into()),
            e.commit_date.as_deref().map(escape).unwrap_or("-".into()),
            e.export_date.as_deref().map(escape).unwrap_or("-".into()),
            escape(&e.name),
            escape(&e.source.display().to_string()),
            escape(
                &e.source
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            e.benchmarks
        );
    }
    out.push_str("</table>\n");
    let by_export = history
        .exports
        .iter()
        .filter(|e| e.ordered_by == OrderedBy::ExportDate)
        .count();
    if by_export > 0 {
        let _ = writeln!(
            out,
            "<p class=\"meta\">Ordered by commit date; {by_export} export(s) whose commit could \
             not be looked up (no git history here) are placed by their export date.</p>"
        );
    }
    out
}

fn card(s: &Series, index: usize) -> Result<String> {
    let class = match (s.worst_step(), s.steps.is_empty()) {
        (Some(_), _) => " stepped-worse",
        (None, false) => " stepped-better",
        (None, true) => "",
    };
    let latest = s.latest();
    let band = latest.and_then(|(_, p)| band_around(s.kind, p.mean, s.threshold_pct));
    let band_data = band.map_or_else(String::new, |(low, high)| {
        format!(" data-band-low=\"{low}\" data-band-high=\"{high}\"")
    });
    let mut out = format!(
        "<article class=\"card{class}\" id=\"h-{index}\" data-id=\"{}\" data-steps=\"{}\" \
         data-present=\"{}\"{band_data}>\n<header><span class=\"id\">{}</span><span class=\"meta\">{}, \
         threshold {}</span></header>\n",
        escape(&s.id),
        s.steps.len(),
        s.present(),
        escape(&s.id),
        s.kind.name(),
        output::threshold_of(s.kind, s.threshold_pct)
    );
    let mut facts = Vec::new();
    if let Some((i, p)) = latest {
        facts.push(format!(
            "latest {} (#{})",
            output::value(p.mean, s.unit),
            i + 1
        ));
    }
    // The latest steps, newest last; a benchmark that flips at every export would otherwise
    // fill its card with them.
    const STEPS_SHOWN: usize = 3;
    let hidden = s.steps.len().saturating_sub(STEPS_SHOWN);
    if hidden > 0 {
        facts.push(format!("{hidden} earlier step(s)"));
    }
    for st in &s.steps[hidden..] {
        let word = if st.verdict == Verdict::Regressed {
            "worse"
        } else {
            "better"
        };
        facts.push(format!(
            "<span class=\"badge {word}\" title=\"{}\">{}</span> #{} → #{}",
            output::change_of(s.kind, &st.change),
            output::change_point_of(s.kind, st.change.point),
            st.from + 1,
            st.to + 1
        ));
    }
    let absent: Vec<String> = s
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_none())
        .map(|(i, _)| format!("#{}", i + 1))
        .collect();
    if !absent.is_empty() {
        facts.push(format!("absent from {}", absent.join(", ")));
    }
    if latest.is_some() && band.is_none() {
        facts.push("threshold band off scale".into());
    }
    let _ = writeln!(out, "<p class=\"figures\">{}</p>", facts.join(" · "));
    let points: Vec<Option<TrendPoint>> = s
        .points
        .iter()
        .map(|p| {
            p.map(|p| TrendPoint {
                value: p.mean,
                q1: p.q1,
                q3: p.q3,
            })
        })
        .collect();
    let steps: Vec<(usize, usize, bool)> = s
        .steps
        .iter()
        .map(|st| (st.from, st.to, st.verdict == Verdict::Regressed))
        .collect();
    let trend = Trend {
        points: &points,
        unit: s.unit,
        band,
        steps: &steps,
    };
    let _ = writeln!(
        out,
        "<div class=\"trend\">{}</div>",
        chart::trend(&s.id, &trend, TREND_SIZE.0, TREND_SIZE.1)?
    );
    out.push_str("</article>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_in_points_is_absolute_and_a_band_in_percent_relative() {
        let (low, high) = band_around(Kind::Quality, 0.85, -2.0).unwrap();
        assert!((low - 0.83).abs() < 1e-12 && (high - 0.87).abs() < 1e-12);
        let (low, high) = band_around(Kind::Latency, 200.0, 5.0).unwrap();
        assert!((low - 190.0).abs() < 1e-9 && (high - 210.0).abs() < 1e-9);
        assert_eq!(band_around(Kind::Quality, 0.85, -1e12), None);
    }
}
