//! The comparison page (`bench-gate report BASE NEW --html FILE`): the verdict first, then one
//! card per benchmark, flagged ones first, each with the two sides' samples, the change with its
//! interval against the threshold, and a link to Criterion's own page of the benchmark.
//!
//! The page reads a [`Report`] and each side's samples; when the sides are sets of interleaved
//! rounds, [`ComparisonPage::set_round_changes`] adds each round's change to the change chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::chart::{self, ChangeMark, Strip};
use super::{escape, page, relative_url, verdict_class};
use crate::cost::Costs;
use crate::criterion::Baseline;
use crate::error::Result;
use crate::kind::Kind;
use crate::machine::Machine;
use crate::output;
use crate::source::Side;
use crate::verdict::{Report, Row, Verdict};

/// The samples of one benchmark on each side, as shown (per-iteration values, or rates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SideSamples {
    /// BASE's values; empty when the benchmark is only in NEW.
    pub base: Vec<f64>,
    /// NEW's values; empty when the benchmark is only in BASE.
    pub new: Vec<f64>,
}

/// Sizes of the two charts of a card, in pixels (drawn at this size, shrunk on narrow screens).
#[derive(Clone, Copy)]
struct CardSize {
    strips: u32,
    change: u32,
}

/// Cards of flagged benchmarks get room; the unchanged ones sit two to a row.
const FLAGGED: CardSize = CardSize {
    strips: 680,
    change: 440,
};
const UNCHANGED: CardSize = CardSize {
    strips: 330,
    change: 230,
};

/// A comparison as one self-contained HTML page.
pub struct ComparisonPage<'a> {
    report: &'a Report,
    samples: BTreeMap<String, SideSamples>,
    directories: BTreeMap<String, String>,
    criterion_pages: BTreeMap<String, String>,
    round_changes: BTreeMap<String, Vec<f64>>,
    machines: (Option<Machine>, Option<Machine>),
}

impl<'a> ComparisonPage<'a> {
    /// The page of `report`, with the samples of each benchmark read from the two baselines it
    /// was computed from (the same per-iteration values the verdict used).
    pub fn new(report: &'a Report, base: &Baseline, new: &Baseline) -> Result<Self> {
        ComparisonPage::pooled(report, &[base], &[new])
    }

    /// The page of `report` computed from two sides of any shape ([`verdict::compare_sides`]):
    /// for sets of interleaved rounds, each side's samples are its rounds pooled (with its
    /// single run's benchmarks), and each benchmark shows its change in every round.
    ///
    /// [`verdict::compare_sides`]: crate::verdict::compare_sides
    pub fn of_sides(report: &'a Report, base: &Side, new: &Side) -> Result<Self> {
        ComparisonPage::pooled(report, &side_baselines(base), &side_baselines(new))
    }

    /// The page with each side's samples pooled over `base` and `new` (one baseline each, or the
    /// rounds and single run of a set of rounds), and the per-round changes of the report's rows.
    fn pooled(report: &'a Report, base: &[&Baseline], new: &[&Baseline]) -> Result<Self> {
        let mut samples = BTreeMap::new();
        let mut directories = BTreeMap::new();
        for row in &report.rows {
            let shown = |side: &[&Baseline]| -> Result<Vec<f64>> {
                let mut values = Vec::new();
                for baseline in side {
                    if let Some(bench) = baseline.benchmarks.get(&row.id) {
                        let costs = Costs::of(bench, row.kind)?;
                        values.extend(costs.values.iter().map(|c| costs.unit.from_cost(*c)));
                    }
                }
                Ok(values)
            };
            samples.insert(
                row.id.clone(),
                SideSamples {
                    base: shown(base)?,
                    new: shown(new)?,
                },
            );
            let bench = new
                .iter()
                .chain(base)
                .find_map(|baseline| baseline.benchmarks.get(&row.id));
            if let Some(bench) = bench {
                directories.insert(row.id.clone(), bench.info.directory_name.clone());
            }
        }
        let mut page = ComparisonPage::from_samples(report, samples);
        for row in &report.rows {
            if !row.round_changes.is_empty() {
                page.set_round_changes(&row.id, row.round_changes.clone());
            }
        }
        page.directories = directories;
        let machine = |side: &[&Baseline]| side.first().and_then(|b| b.machine.clone());
        page.machines = (machine(base), machine(new));
        Ok(page)
    }

    /// The page of `report` with each benchmark's samples given by id (shown values: costs per
    /// iteration, or rates), for sides that are not one baseline each, such as sets of
    /// interleaved rounds pooled per side. No Criterion links and no machines until set.
    pub fn from_samples(report: &'a Report, samples: BTreeMap<String, SideSamples>) -> Self {
        ComparisonPage {
            report,
            samples,
            directories: BTreeMap::new(),
            criterion_pages: BTreeMap::new(),
            round_changes: BTreeMap::new(),
            machines: (None, None),
        }
    }

    /// Links each benchmark to Criterion's page of it (`<dir>/<benchmark>/report/index.html`)
    /// where that file exists, relative to `page_dir`, the directory the page is written to.
    /// Both paths should be absolute (or relative to the same directory).
    pub fn link_criterion_pages(&mut self, criterion_dir: &Path, page_dir: &Path) {
        for (id, directory) in &self.directories {
            let index = criterion_dir
                .join(directory)
                .join("report")
                .join("index.html");
            if index.is_file() {
                if let Some(url) = relative_url(page_dir, &index) {
                    self.criterion_pages.insert(id.clone(), url);
                }
            }
        }
    }

    /// The relative change of each round of benchmark `id` (fractions, 0.05 = +5%), shown as
    /// dots beside its overall change, when the sides are sets of interleaved rounds.
    pub fn set_round_changes(&mut self, id: &str, changes: Vec<f64>) {
        self.round_changes.insert(id.to_string(), changes);
    }

    /// The URL of Criterion's page for `id`, if one was linked.
    pub fn criterion_page(&self, id: &str) -> Option<&str> {
        self.criterion_pages.get(id).map(String::as_str)
    }

    /// The whole page.
    pub fn render(&self) -> Result<String> {
        let r = self.report;
        let rows = r.rows_by_severity();
        let (flagged, unchanged): (Vec<&Row>, Vec<&Row>) = rows
            .into_iter()
            .partition(|row| row.verdict != Verdict::Unchanged);
        // The rows that fail the gate come first, as cards right under the verdict; the rest of
        // the flagged rows get a table and their cards after them.
        let (deciding, others): (Vec<&Row>, Vec<&Row>) =
            flagged.iter().partition(|row| self.fails_gate(row));
        let index: BTreeMap<&str, usize> = r
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| (row.id.as_str(), i))
            .collect();
        let anchor = |row: &Row| format!("b-{}", index.get(row.id.as_str()).unwrap_or(&0));
        let mut body = String::new();
        let _ = writeln!(
            body,
            "<h1>bench-gate: <code>{}</code> → <code>{}</code></h1>",
            escape(&r.base_name),
            escape(&r.new_name)
        );
        body.push_str(&self.banner(&flagged, &deciding, &anchor));
        body.push_str(&self.counts());
        for w in &r.warnings {
            let _ = writeln!(body, "<p class=\"warn\">⚠ {}</p>", escape(w));
        }
        body.push_str(&self.inputs());
        body.push_str(LEGEND);
        if !deciding.is_empty() {
            let _ = writeln!(
                body,
                "<h2>Failing the gate ({})</h2>\n<div class=\"cards flagged\">",
                deciding.len()
            );
            for row in &deciding {
                body.push_str(&self.card(row, &anchor(row), FLAGGED)?);
            }
            body.push_str("</div>\n");
        }
        if !others.is_empty() {
            let heading = if deciding.is_empty() {
                "Flagged"
            } else {
                "Also flagged"
            };
            let _ = writeln!(body, "<h2>{heading} ({})</h2>", others.len());
            body.push_str(&flagged_table(&others, &anchor));
            body.push_str("<div class=\"cards flagged\">\n");
            for row in &others {
                body.push_str(&self.card(row, &anchor(row), FLAGGED)?);
            }
            body.push_str("</div>\n");
        }
        if !unchanged.is_empty() {
            let _ = writeln!(
                body,
                "<h2>Unchanged ({})</h2>\n<div class=\"cards small\">",
                unchanged.len()
            );
            for row in &unchanged {
                body.push_str(&self.card(row, &anchor(row), UNCHANGED)?);
            }
            body.push_str("</div>\n");
        }
        let title = format!("bench-gate: {} → {}", r.base_name, r.new_name);
        Ok(page(&title, &body, None))
    }

    /// Whether `row` alone fails the gate (a regression, or a missing benchmark when missing
    /// ones fail).
    fn fails_gate(&self, row: &Row) -> bool {
        row.decides()
            && (row.verdict == Verdict::Regressed
                || (row.verdict == Verdict::Missing && self.report.fail_on_missing))
    }

    /// The verdict in one line, and what it rests on.
    fn banner(
        &self,
        flagged: &[&Row],
        deciding: &[&Row],
        anchor: &dyn Fn(&Row) -> String,
    ) -> String {
        let r = self.report;
        let c = r.counts();
        let total = r.rows.len();
        // Only deciding rows fail: an `[[informational]]` benchmark missing from NEW does not.
        let missing = deciding
            .iter()
            .filter(|row| row.verdict == Verdict::Missing)
            .count();
        let (class, headline) = if !r.passed() {
            let mut parts = Vec::new();
            if c.regressed > 0 {
                parts.push(format!("{} regressed", plural(c.regressed, "benchmark")));
            }
            if missing > 0 {
                parts.push(format!(
                    "{} missing from {}",
                    plural(missing, "benchmark"),
                    r.new_name
                ));
            }
            ("fail", format!("FAIL: {}", parts.join(", ")))
        } else if flagged.is_empty() {
            ("pass", "PASS: no regression, nothing flagged".to_string())
        } else {
            (
                "pass",
                format!(
                    "PASS: no regression; {} flagged for a look",
                    plural(flagged.len(), "benchmark")
                ),
            )
        };
        let sub = if flagged.is_empty() {
            format!(
                "All {total} benchmarks are unchanged: no change is both significant \
                 (p &lt; α {}) and beyond its threshold.",
                r.alpha
            )
        } else {
            let test = if r.rounds.is_empty() {
                "Welch's t-test".to_string()
            } else {
                format!(
                    "the paired t-test of the per-round ratios over {} rounds",
                    r.rounds.len()
                )
            };
            format!(
                "{total} benchmarks compared. A regression needs p &lt; α {} ({test}) and the \
                 whole {}% interval of the change beyond the benchmark's threshold (instruction \
                 counts: the exact change beyond it).",
                r.alpha,
                pct_level(r.confidence)
            )
        };
        format!(
            "<div class=\"banner {class}\" id=\"verdict\" data-passed=\"{}\">{}{}<span class=\"sub\">{sub}</span></div>\n",
            r.passed(),
            escape(&headline),
            deciding_list(deciding, anchor)
        )
    }

    /// One badge per verdict, the empty ones faded.
    fn counts(&self) -> String {
        let c = self.report.counts();
        let mut out = String::from("<div class=\"counts\" id=\"counts\">");
        for (verdict, n) in [
            (Verdict::Regressed, c.regressed),
            (Verdict::Missing, c.missing),
            (Verdict::Inconclusive, c.inconclusive),
            (Verdict::Improved, c.improved),
            (Verdict::New, c.new),
            (Verdict::Unchanged, c.unchanged),
        ] {
            let zero = if n == 0 { " zero" } else { "" };
            let _ = write!(
                out,
                "<span class=\"badge {}{zero}\" data-verdict=\"{}\" data-count=\"{n}\">{n} {}</span>",
                verdict_class(verdict),
                verdict.name(),
                verdict.name()
            );
        }
        // Regressions of `[[informational]]` benchmarks are shown apart: they never fail.
        let n = c.informational_regressed;
        let zero = if n == 0 { " zero" } else { "" };
        let _ = write!(
            out,
            "<span class=\"badge {}{zero}\" data-verdict=\"informational_regressed\" \
             data-count=\"{n}\">{n} regressed (info)</span>",
            verdict_class(Verdict::Inconclusive)
        );
        out.push_str("</div>\n");
        out
    }

    /// Where each side came from, and on which machine when known.
    fn inputs(&self) -> String {
        let r = self.report;
        let side = |name: &str, source: &Path, machine: &Option<Machine>| {
            let mut s = format!(
                "<code>{}</code> from <code>{}</code>",
                escape(name),
                escape(&source.display().to_string())
            );
            if let Some(m) = machine {
                let commit = m
                    .git_commit
                    .as_deref()
                    .map(|c| format!(", commit {}", escape(short(c))))
                    .unwrap_or_default();
                let _ = write!(
                    s,
                    " ({}{commit}, {} cores, {})",
                    escape(&m.date),
                    m.cores,
                    escape(&m.cpu_model)
                );
            }
            s
        };
        // A comparison of rounds says how many were paired: the verdict of each benchmark is a
        // paired test over them.
        let rounds = if r.rounds.is_empty() {
            String::new()
        } else {
            format!(" · {} interleaved rounds, paired", r.rounds.len())
        };
        format!(
            "<p class=\"meta\">BASE {} · NEW {}{rounds} · α {} · {}% intervals{}</p>\n",
            side(&r.base_name, &r.base_source, &self.machines.0),
            side(&r.new_name, &r.new_source, &self.machines.1),
            r.alpha,
            pct_level(r.confidence),
            if r.fail_on_missing {
                " · missing benchmarks fail"
            } else {
                ""
            }
        )
    }

    /// One benchmark: what was decided and why, its samples and its change.
    fn card(&self, row: &Row, anchor: &str, size: CardSize) -> Result<String> {
        let r = self.report;
        let mut out = format!(
            "<article class=\"card {}\" id=\"{anchor}\" data-id=\"{}\" data-verdict=\"{}\" \
             data-kind=\"{}\" data-unit=\"{}\" data-threshold-pct=\"{}\" data-samples-base=\"{}\" \
             data-samples-new=\"{}\"",
            verdict_class(row.verdict),
            escape(&row.id),
            row.verdict.name(),
            row.kind.name(),
            escape(row.unit.label()),
            row.threshold_pct,
            row.samples.0,
            row.samples.1
        );
        if let Some(v) = row.base {
            let _ = write!(out, " data-base=\"{v}\"");
        }
        if let Some(v) = row.new {
            let _ = write!(out, " data-new=\"{v}\"");
        }
        if let Some(c) = &row.change {
            let _ = write!(
                out,
                " data-point-pct=\"{}\" data-lower-pct=\"{}\" data-upper-pct=\"{}\" data-p-value=\"{}\"",
                c.point * 100.0,
                c.lower * 100.0,
                c.upper * 100.0,
                c.p_value
            );
        }
        out.push_str(">\n<header>");
        let _ = write!(
            out,
            "<span class=\"badge {}\">{}</span><span class=\"id\">{}</span>\
             <span class=\"meta\">{}, {} is better</span>",
            verdict_class(row.verdict),
            row.verdict.name(),
            escape(&row.id),
            row.kind.name(),
            if row.kind.higher_is_better() {
                "higher"
            } else {
                "lower"
            }
        );
        if let Some(url) = self.criterion_page(&row.id) {
            let _ = write!(
                out,
                "<a class=\"link\" href=\"{}\">Criterion's page of this benchmark</a>",
                escape(url)
            );
        }
        out.push_str("</header>\n");
        let _ = writeln!(out, "<p class=\"why\">{}</p>", why(r, row));
        if let Some(reason) = &row.informational {
            let _ = writeln!(
                out,
                "<p class=\"info\">Informational: never fails the gate ({}).</p>",
                escape(reason)
            );
        }
        let value = |v: Option<f64>| v.map_or("-".into(), |v| output::value(v, row.unit));
        let _ = writeln!(
            out,
            "<p class=\"figures\">mean {} <span class=\"value-base\">{}</span> (n={}) → {} \
             <span class=\"value-new\">{}</span> (n={})</p>",
            escape(&r.base_name),
            value(row.base),
            row.samples.0,
            escape(&r.new_name),
            value(row.new),
            row.samples.1
        );
        out.push_str(&self.round_line(row));
        out.push_str("<div class=\"plots\">");
        let _ = write!(
            out,
            "<figure class=\"distributions\">{}</figure>",
            self.strips_svg(row, size.strips)?
        );
        if let Some(c) = &row.change {
            let rounds = self
                .round_changes
                .get(&row.id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let mark = ChangeMark {
                point: c.point,
                lower: c.lower,
                upper: c.upper,
                threshold: row.threshold_pct.abs() / 100.0,
                higher_is_better: row.kind.higher_is_better(),
                color: verdict_color(row.verdict),
                rounds,
                in_points: row.kind.change_in_points(),
            };
            let _ = write!(
                out,
                "<figure class=\"change\">{}</figure>",
                chart::change(
                    &row.id,
                    &mark,
                    size.change,
                    chart::height_for(self.sides(row))
                )?
            );
        }
        out.push_str("</div>\n</article>\n");
        Ok(out)
    }

    /// The change of each round, in words, for a flagged benchmark of a comparison of rounds: so
    /// a reader sees whether a verdict rests on every round or on one odd round.
    fn round_line(&self, row: &Row) -> String {
        let Some(changes) = self.round_changes.get(&row.id).filter(|c| !c.is_empty()) else {
            return String::new();
        };
        let flagged = matches!(
            row.verdict,
            Verdict::Regressed | Verdict::Inconclusive | Verdict::Improved
        );
        if !flagged {
            return String::new();
        }
        let shown: Vec<String> = changes
            .iter()
            .map(|&c| output::change_point_of(row.kind, c))
            .collect();
        let data: Vec<String> = changes.iter().map(|c| (c * 100.0).to_string()).collect();
        format!(
            "<p class=\"rounds\" data-round-changes-pct=\"{}\">change per round ({} round k \
             against {} round k, k = 1..{}): {}</p>\n",
            data.join(" "),
            escape(&self.report.new_name),
            escape(&self.report.base_name),
            changes.len(),
            escape(&shown.join(", "))
        )
    }

    /// Number of sides holding the benchmark (rows of its strips chart).
    fn sides(&self, row: &Row) -> usize {
        usize::from(row.base.is_some()) + usize::from(row.new.is_some())
    }

    fn strips_svg(&self, row: &Row, width: u32) -> Result<String> {
        let empty = SideSamples::default();
        let samples = self.samples.get(&row.id).unwrap_or(&empty);
        let mut strips = Vec::new();
        if let Some(mean) = row.base {
            strips.push(Strip {
                label: &self.report.base_name,
                values: &samples.base,
                mean,
                color: chart::BASE,
            });
        }
        if let Some(mean) = row.new {
            strips.push(Strip {
                label: &self.report.new_name,
                values: &samples.new,
                mean,
                color: chart::NEW,
            });
        }
        chart::strips(&row.id, &strips, row.unit, width)
    }
}

/// How the verdict was reached, in words, with the numbers of the JSON report.
/// The baselines a side's samples come from: the baseline itself, or every round of a set of
/// rounds followed by its single run.
fn side_baselines(side: &Side) -> Vec<&Baseline> {
    match side {
        Side::Baseline(b) => vec![b],
        Side::Rounds(set) => set.rounds.iter().chain(set.single.as_ref()).collect(),
    }
}

fn why(r: &Report, row: &Row) -> String {
    let Some(c) = &row.change else {
        return match row.verdict {
            Verdict::Missing => format!(
                "Only in {}: absent from {}.{}",
                escape(&r.base_name),
                escape(&r.new_name),
                if r.fail_on_missing {
                    " Missing benchmarks fail the gate."
                } else {
                    ""
                }
            ),
            _ => format!("Only in {}: nothing to compare with.", escape(&r.new_name)),
        };
    };
    let what = match row.kind {
        Kind::Latency => "Time per iteration",
        Kind::Throughput => "Throughput",
        Kind::Footprint => "Bytes per iteration",
        Kind::Instructions => "Instructions per call",
        Kind::Quality => "The score",
    };
    let t = row.threshold_pct.abs();
    let unit = if row.kind.change_in_points() {
        " pts"
    } else {
        "%"
    };
    let reason = match row.verdict {
        Verdict::Regressed => format!(
            "The whole {}% interval lies beyond the threshold and the change is significant: a \
             regression.",
            pct_level(r.confidence)
        ),
        Verdict::Improved => format!(
            "The whole {}% interval lies beyond {} in the better direction and the change is \
             significant: an improvement.",
            pct_level(r.confidence),
            output::threshold_of(row.kind, -row.threshold_pct)
        ),
        Verdict::Inconclusive => format!(
            "Significant, but the interval straddles the ±{t}{unit} threshold: not enough \
             evidence either way."
        ),
        _ if c.p_value.is_nan() || c.p_value >= r.alpha => {
            format!("Not significant (p ≥ α {}).", r.alpha)
        }
        _ => format!("Significant, but the whole interval is within ±{t}{unit}."),
    };
    let p = output::p_value(c.p_value);
    // `<0.001` reads as "p < 0.001"; a number as "p = 0.032".
    let relation = if p.starts_with('<') { "" } else { "= " };
    format!(
        "{what} <strong class=\"change\">{}</strong> against a threshold of \
         <span class=\"threshold\">{}</span>, p {relation}<span class=\"p\">{}</span>. {reason}",
        output::change_of(row.kind, c),
        output::threshold_of(row.kind, row.threshold_pct),
        escape(&p)
    )
}

/// Links to the rows that fail the gate, with their change, for the banner: the first few, so a
/// run where everything moved still fits on the first screen.
fn deciding_list(deciding: &[&Row], anchor: &dyn Fn(&Row) -> String) -> String {
    const SHOWN: usize = 8;
    if deciding.is_empty() {
        return String::new();
    }
    let mut items: Vec<String> = deciding
        .iter()
        .take(SHOWN)
        .map(|row| {
            let change = row.change.as_ref().map_or_else(
                || row.verdict.name().to_string(),
                |c| output::change_point_of(row.kind, c.point),
            );
            format!(
                "<a class=\"id\" href=\"#{}\">{}</a> {}",
                anchor(row),
                escape(&row.id),
                change
            )
        })
        .collect();
    if deciding.len() > SHOWN {
        items.push(format!("and {} more below", deciding.len() - SHOWN));
    }
    format!("<span class=\"list\">{}</span>", items.join(" · "))
}

fn flagged_table(flagged: &[&Row], anchor: &dyn Fn(&Row) -> String) -> String {
    let mut out = String::from(
        "<table id=\"flagged-table\">\n<tr><th>verdict</th><th>benchmark</th>\
         <th class=\"num\">change [interval]</th><th class=\"num\">threshold</th>\
         <th class=\"num\">base</th><th class=\"num\">new</th></tr>\n",
    );
    for row in flagged {
        let value = |v: Option<f64>| v.map_or("-".into(), |v| output::value(v, row.unit));
        let _ = writeln!(
            out,
            "<tr><td><span class=\"badge {}\">{}</span></td><td><a class=\"id\" href=\"#{}\">{}</a></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            verdict_class(row.verdict),
            row.verdict.name(),
            anchor(row),
            escape(&row.id),
            row.change
                .as_ref()
                .map_or("-".into(), |c| output::change_of(row.kind, c)),
            output::threshold_of(row.kind, row.threshold_pct),
            value(row.base),
            value(row.new)
        );
    }
    out.push_str("</table>\n");
    out
}

const LEGEND: &str = "<p class=\"legend\">Charts, left: each side's samples \
(<span class=\"swatch\" style=\"background:#4477aa\"></span> base, \
<span class=\"swatch\" style=\"background:#ee7733\"></span> new), one dot per Criterion sample, \
the box over the quartiles, ◆ the mean the gate compares. Right: the change of the mean with its \
interval; past the <span style=\"color:#cc3311\">red line</span> worse than the threshold \
allows, past the <span style=\"color:#228833\">green line</span> better.</p>\n";

fn verdict_color(v: Verdict) -> plotters::style::RGBColor {
    match v {
        Verdict::Regressed | Verdict::Missing => chart::WORSE,
        Verdict::Improved => chart::BETTER,
        Verdict::Inconclusive => chart::UNDECIDED,
        Verdict::Unchanged | Verdict::New => chart::NEUTRAL,
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `0.95` -> `95`.
fn pct_level(confidence: f64) -> String {
    let p = confidence * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}", p.round())
    } else {
        format!("{p}")
    }
}

/// The first 7 characters of a commit hash.
pub(super) fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}
