//! The charts of the HTML pages, drawn by plotters' SVG backend into strings the pages inline:
//! a benchmark's distributions side by side, its change against the threshold (with one dot per
//! round when the sides are sets of rounds), and one benchmark's values over a row of exports.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::kind::DisplayUnit;
use crate::stats;

/// Colour of the BASE side.
pub(crate) const BASE: RGBColor = RGBColor(0x44, 0x77, 0xAA);
/// Colour of the NEW (head) side.
pub(crate) const NEW: RGBColor = RGBColor(0xEE, 0x77, 0x33);
/// Colour of a change for the worse.
pub(crate) const WORSE: RGBColor = RGBColor(0xCC, 0x33, 0x11);
/// Colour of a change for the better.
pub(crate) const BETTER: RGBColor = RGBColor(0x22, 0x88, 0x33);
/// Colour of a change that decides nothing (unchanged, inconclusive).
pub(crate) const NEUTRAL: RGBColor = RGBColor(0x55, 0x55, 0x55);
/// Colour of an undecided change (inconclusive).
pub(crate) const UNDECIDED: RGBColor = RGBColor(0xBB, 0x88, 0x00);

const FONT: &str = "sans-serif";
// plotters' SVG backend writes a font size of `size / 1.24` pixels: these are 12 and 11 px.
const LABEL_SIZE: f64 = 14.88;
const SMALL_SIZE: f64 = 13.64;
/// Above this many samples a side is drawn as a box plot with its outliers only: every dot of
/// Criterion's default 100 samples on 100 benchmarks would weigh megabytes.
const MAX_DOTS: usize = 30;
const GRID: RGBColor = RGBColor(0xEE, 0xEE, 0xEE);
const AXIS: RGBColor = RGBColor(0x99, 0x99, 0x99);

/// The unit prefix of an axis: values are divided by `divisor` and the axis says `label`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scale {
    /// What one shown unit is worth in the display unit.
    pub divisor: f64,
    /// The prefixed unit (`µs`, `KiB`, `K ops/s`).
    pub label: String,
}

impl Scale {
    /// The prefix the text reports would use for values of size `magnitude`
    /// (see [`crate::output::value`]).
    pub fn for_magnitude(unit: DisplayUnit, magnitude: f64) -> Scale {
        let steps: [(f64, &str); 4] = match unit {
            DisplayUnit::Nanoseconds => [(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")],
            DisplayUnit::Bytes => [
                (1.0, "B"),
                (1024.0, "KiB"),
                (1024.0 * 1024.0, "MiB"),
                (1024.0 * 1024.0 * 1024.0, "GiB"),
            ],
            DisplayUnit::OpsPerSec
            | DisplayUnit::BytesPerSec
            | DisplayUnit::BitsPerSec
            | DisplayUnit::Instructions => [(1.0, ""), (1e3, "K"), (1e6, "M"), (1e9, "G")],
            // Shares between 0 and 1: no prefix.
            DisplayUnit::Ratio => [(1.0, ""); 4],
        };
        let (divisor, prefix) = steps
            .iter()
            .rev()
            .find(|(d, _)| magnitude >= *d)
            .copied()
            .unwrap_or(steps[0]);
        let label = match unit {
            _ if unit.is_rate() => format!("{prefix}{}", unit.label()),
            DisplayUnit::Instructions => format!("{prefix} instr").trim_start().to_string(),
            _ => prefix.to_string(),
        };
        Scale { divisor, label }
    }
}

/// One row of a strip chart: the per-sample values of one side.
pub(crate) struct Strip<'a> {
    /// Row label (`base`, `head`).
    pub label: &'a str,
    /// One value per sample, in the display unit.
    pub values: &'a [f64],
    /// The mean the gate compares, in the display unit.
    pub mean: f64,
    /// Colour of the row.
    pub color: RGBColor,
}

/// Where a benchmark's change lies against its threshold.
pub(crate) struct ChangeMark<'a> {
    /// Point estimate of the relative change (0.25 = +25%).
    pub point: f64,
    /// Lower end of its interval.
    pub lower: f64,
    /// Upper end of its interval.
    pub upper: f64,
    /// Magnitude of the threshold, as a fraction.
    pub threshold: f64,
    /// Whether a rise is an improvement (throughput).
    pub higher_is_better: bool,
    /// Colour of the verdict.
    pub color: RGBColor,
    /// Relative change of each round (interleaved round sets); empty for two plain baselines.
    pub rounds: &'a [f64],
    /// Whether the change is a difference of shares in points (quality), not a relative
    /// change: the axis then reads "pt", not "%".
    pub in_points: bool,
}

/// One export's value of a benchmark in a history chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TrendPoint {
    /// The mean, in the display unit.
    pub value: f64,
    /// First quartile of the samples, in the display unit.
    pub q1: f64,
    /// Third quartile of the samples, in the display unit.
    pub q3: f64,
}

/// A benchmark's values over the exports, oldest first.
pub(crate) struct Trend<'a> {
    /// One entry per export; `None` where the benchmark is absent.
    pub points: &'a [Option<TrendPoint>],
    /// Display unit of the values.
    pub unit: DisplayUnit,
    /// The threshold band around the latest value (low, high), when it is drawn to scale.
    pub band: Option<(f64, f64)>,
    /// Steps beyond the threshold: (from export, to export, for the worse).
    pub steps: &'a [(usize, usize, bool)],
}

fn chart_error(id: &str) -> impl Fn(&dyn std::fmt::Display) -> Error + '_ {
    move |e| Error::Chart {
        id: id.to_string(),
        message: e.to_string(),
    }
}

/// Maps plotters' errors (which name the backend) to [`Error::Chart`].
macro_rules! drawn {
    ($id:expr, $e:expr) => {
        $e.map_err(|e| chart_error($id)(&e))
    };
}

/// Smallest and largest finite value, widened by `pad` of the span on each side (or around a
/// single value), so no mark sits on the frame.
fn padded_extent(values: impl IntoIterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let span = if span > 0.0 {
        span
    } else if lo != 0.0 {
        lo.abs() * 0.1
    } else {
        1.0
    };
    (lo - span * pad, hi + span * pad)
}

/// `extent` widened around its middle to at least `share` of its largest magnitude: byte counts
/// that differ in the sixth digit would otherwise get an axis whose ticks all read the same.
fn widened((lo, hi): (f64, f64), share: f64) -> (f64, f64) {
    at_least((lo, hi), lo.abs().max(hi.abs()) * share)
}

/// `extent` widened around its middle to a span of at least `min_span`.
fn at_least((lo, hi): (f64, f64), min_span: f64) -> (f64, f64) {
    if hi - lo >= min_span {
        return (lo, hi);
    }
    let mid = (lo + hi) / 2.0;
    (mid - min_span / 2.0, mid + min_span / 2.0)
}

/// Decimals that tell ticks `step` apart.
fn decimals_for(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    (-step.log10()).ceil().clamp(0.0, 6.0) as usize
}

fn tick(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A value in [-0.5, 0.5) for the `k`-th point of a row, spread evenly and the same every time.
fn jitter(k: usize) -> f64 {
    (k as f64 * 0.618_033_988_749_895).fract() - 0.5
}

/// Quartiles and Tukey whisker ends (1.5 IQR) of `values`, which must not be empty.
fn box_of(values: &[f64]) -> [f64; 5] {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q1 = stats::quantile(&sorted, 0.25);
    let median = stats::quantile(&sorted, 0.5);
    let q3 = stats::quantile(&sorted, 0.75);
    let iqr = q3 - q1;
    let low = sorted
        .iter()
        .copied()
        .find(|v| *v >= q1 - 1.5 * iqr)
        .unwrap_or(q1);
    let high = sorted
        .iter()
        .rev()
        .copied()
        .find(|v| *v <= q3 + 1.5 * iqr)
        .unwrap_or(q3);
    [low, q1, median, q3, high]
}

/// A vertical axis of `n` categories at `0..n`; its ticks fall on halves, so labels are written
/// at the whole ones only (see [`row_index`]).
fn rows_axis(n: usize) -> std::ops::Range<f64> {
    -0.55..(n as f64 - 0.45)
}

fn row_index(y: f64, n: usize) -> Option<usize> {
    let r = y.round();
    (r >= 0.0 && r < n as f64 && (y - r).abs() < 1e-6).then_some(r as usize)
}

fn thin(color: RGBColor) -> ShapeStyle {
    color.stroke_width(1)
}

/// The per-sample values of each side as a box plot over the samples (one dot each) with the
/// mean marked: the picture of "a clean shift" versus "one noisy sample". Rows top to bottom.
/// Height of a chart of `rows` rows (strips or change), so charts side by side line up.
pub(crate) fn height_for(rows: usize) -> u32 {
    48 + 40 * rows as u32
}

pub(crate) fn strips(
    id: &str,
    rows: &[Strip<'_>],
    unit: DisplayUnit,
    width: u32,
) -> Result<String> {
    let n = rows.len();
    let height = height_for(n);
    let all = rows
        .iter()
        .flat_map(|r| r.values.iter().copied().chain([r.mean]));
    let (lo, hi) = widened(padded_extent(all, 0.06), 0.01);
    let scale = Scale::for_magnitude(unit, lo.abs().max(hi.abs()));
    let (lo, hi) = (lo / scale.divisor, hi / scale.divisor);
    let decimals = decimals_for((hi - lo) / 6.0);
    let per = match unit {
        DisplayUnit::Nanoseconds | DisplayUnit::Bytes => " per iteration",
        DisplayUnit::Instructions => " per call",
        _ => "",
    };
    let many = rows.iter().any(|r| r.values.len() > MAX_DOTS);
    let dots = if many {
        "dots: samples beyond the whiskers"
    } else {
        "one dot per sample"
    };
    let desc = format!("{}{per}, {dots}", scale.label);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        drawn!(id, root.fill(&WHITE))?;
        let mut chart = drawn!(
            id,
            ChartBuilder::on(&root)
                .margin_top(8)
                .margin_right(16)
                .margin_left(4)
                .x_label_area_size(42)
                .y_label_area_size(56)
                .build_cartesian_2d(lo..hi, rows_axis(n))
        )?;
        let label_of = |y: &f64| {
            row_index(*y, n)
                .map(|i| rows[n - 1 - i].label.to_string())
                .unwrap_or_default()
        };
        drawn!(
            id,
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_labels(6)
                .y_labels(2 * n + 1)
                .set_tick_mark_size(LabelAreaPosition::Left, 0)
                .x_label_formatter(&|v| tick(*v, decimals))
                .y_label_formatter(&label_of)
                .x_desc(desc)
                .label_style((FONT, LABEL_SIZE))
                .axis_desc_style((FONT, SMALL_SIZE))
                .axis_style(AXIS)
                .bold_line_style(GRID)
                .max_light_lines(0)
                .draw()
        )?;
        for (i, row) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let values: Vec<f64> = row
                .values
                .iter()
                .map(|v| v / scale.divisor)
                .filter(|v| v.is_finite())
                .collect();
            if values.is_empty() {
                continue;
            }
            let [low, q1, median, q3, high] = box_of(&values);
            let h = 0.3;
            let c = row.color;
            drawn!(
                id,
                chart.draw_series([
                    Rectangle::new([(q1, y - h), (q3, y + h)], c.mix(0.12).filled()),
                    Rectangle::new([(q1, y - h), (q3, y + h)], thin(c)),
                ])
            )?;
            drawn!(
                id,
                chart.draw_series([
                    PathElement::new(vec![(low, y), (q1, y)], thin(c)),
                    PathElement::new(vec![(q3, y), (high, y)], thin(c)),
                    PathElement::new(vec![(low, y - h / 2.0), (low, y + h / 2.0)], thin(c)),
                    PathElement::new(vec![(high, y - h / 2.0), (high, y + h / 2.0)], thin(c)),
                    PathElement::new(vec![(median, y - h), (median, y + h)], c.stroke_width(2)),
                ])
            )?;
            let shown = values
                .iter()
                .filter(|v| values.len() <= MAX_DOTS || **v < low || **v > high);
            drawn!(
                id,
                chart.draw_series(shown.enumerate().map(|(k, v)| {
                    Circle::new((*v, y + jitter(k) * 0.4), 3, c.mix(0.75).filled())
                }))
            )?;
            let mean = row.mean / scale.divisor;
            if mean.is_finite() {
                drawn!(
                    id,
                    chart.draw_series([EmptyElement::at((mean, y))
                        + Polygon::new(vec![(0, -8), (5, 0), (0, 8), (-5, 0)], BLACK.filled())])
                )?;
            }
        }
        drawn!(id, root.present())?;
    }
    Ok(svg)
}

/// The relative change (or, for shares, the difference in points) with its interval on an axis
/// of percent (points), over the threshold's zones
/// (red: beyond the threshold for the worse, green: for the better). A second row shows each
/// round's change when there are rounds.
/// `height` lets the chart line up with the strips beside it (see [`height_for`]).
pub(crate) fn change(id: &str, mark: &ChangeMark<'_>, width: u32, height: u32) -> Result<String> {
    let has_rounds = !mark.rounds.is_empty();
    let n = if has_rounds { 2 } else { 1 };
    let height = height.max(height_for(n));
    let pct = |f: f64| f * 100.0;
    let t = pct(mark.threshold.abs());
    let data = [mark.point, mark.lower, mark.upper]
        .into_iter()
        .chain(mark.rounds.iter().copied())
        .map(pct)
        .filter(|v| v.is_finite());
    let magnitude = data.clone().fold(0.0_f64, |m, v| m.max(v.abs()));
    // A threshold far beyond every value (the 1e12% of a benchmark that never decides) would
    // squash the interval into a dot: leave it off the axis, everything is inside it anyway.
    let threshold_on_scale = t <= (3.0 * magnitude).max(50.0);
    let bounds = if threshold_on_scale {
        vec![-t, t, 0.0]
    } else {
        vec![0.0]
    };
    // At least 0.2 percentage points: identical sides must not get an axis of equal ticks.
    let (lo, hi) = at_least(padded_extent(data.chain(bounds), 0.12), 0.2);
    let decimals = decimals_for((hi - lo) / 5.0);
    let (worse_sign, better_sign) = if mark.higher_is_better {
        (-1.0, 1.0)
    } else {
        (1.0, -1.0)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        drawn!(id, root.fill(&WHITE))?;
        let mut chart = drawn!(
            id,
            ChartBuilder::on(&root)
                .margin_top(8)
                .margin_right(16)
                .margin_left(4)
                .x_label_area_size(42)
                .y_label_area_size(if has_rounds { 60 } else { 8 })
                .build_cartesian_2d(lo..hi, rows_axis(n))
        )?;
        let label_of = |y: &f64| match (row_index(*y, n), has_rounds) {
            (Some(1), true) => "mean".to_string(),
            (Some(0), true) => "rounds".to_string(),
            _ => String::new(),
        };
        let (suffix, what) = if mark.in_points {
            ("pt", "points")
        } else {
            ("%", "%")
        };
        let desc = if threshold_on_scale {
            format!("change of the mean, {what}")
        } else {
            format!("change of the mean, {what} (threshold off scale)")
        };
        drawn!(
            id,
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_labels(6)
                .y_labels(2 * n + 1)
                .set_tick_mark_size(LabelAreaPosition::Left, 0)
                .x_label_formatter(&|v| {
                    let s = tick(*v, decimals);
                    if *v > 0.0 {
                        format!("+{s}{suffix}")
                    } else {
                        format!("{s}{suffix}")
                    }
                })
                .y_label_formatter(&label_of)
                .x_desc(desc)
                .label_style((FONT, LABEL_SIZE))
                .axis_desc_style((FONT, SMALL_SIZE))
                .axis_style(AXIS)
                .bold_line_style(GRID)
                .max_light_lines(0)
                .draw()
        )?;
        let (y0, y1) = (-0.55, n as f64 - 0.45);
        if threshold_on_scale {
            let zone = |from: f64, to: f64, color: RGBColor| {
                Rectangle::new([(from, y0), (to, y1)], color.mix(0.10).filled())
            };
            let worse_edge = worse_sign * t;
            let better_edge = better_sign * t;
            let worse_end = if worse_sign > 0.0 { hi } else { lo };
            let better_end = if better_sign > 0.0 { hi } else { lo };
            drawn!(
                id,
                chart.draw_series([
                    zone(worse_edge, worse_end, WORSE),
                    zone(better_edge, better_end, BETTER),
                ])
            )?;
            drawn!(
                id,
                chart.draw_series([
                    PathElement::new(vec![(worse_edge, y0), (worse_edge, y1)], thin(WORSE)),
                    PathElement::new(vec![(better_edge, y0), (better_edge, y1)], thin(BETTER)),
                ])
            )?;
            // Labels inside the zone between the lines when it has room for both, else each
            // on the far side of its line.
            let inside = 2.0 * t >= 0.3 * (hi - lo);
            let label = |x: f64, color: &'static RGBColor| {
                let rightwards = (x > 0.0) != inside;
                let anchor = if rightwards { HPos::Left } else { HPos::Right };
                let style = TextStyle::from((FONT, SMALL_SIZE).into_font())
                    .color(color)
                    .pos(Pos::new(anchor, VPos::Top));
                let offset = if rightwards { 3 } else { -3 };
                EmptyElement::at((x, y1)) + Text::new(format!("{x:+}{suffix}"), (offset, 2), style)
            };
            drawn!(
                id,
                chart.draw_series([label(worse_edge, &WORSE), label(better_edge, &BETTER)])
            )?;
        }
        drawn!(
            id,
            chart.draw_series([PathElement::new(vec![(0.0, y0), (0.0, y1)], thin(AXIS))])
        )?;
        let y = (n - 1) as f64;
        let (point, lower, upper) = (pct(mark.point), pct(mark.lower), pct(mark.upper));
        let c = mark.color;
        if [point, lower, upper].iter().all(|v| v.is_finite()) {
            drawn!(
                id,
                chart.draw_series([
                    PathElement::new(vec![(lower, y), (upper, y)], c.stroke_width(3)),
                    PathElement::new(
                        vec![(lower, y - 0.18), (lower, y + 0.18)],
                        c.stroke_width(2)
                    ),
                    PathElement::new(
                        vec![(upper, y - 0.18), (upper, y + 0.18)],
                        c.stroke_width(2)
                    ),
                ])
            )?;
            drawn!(
                id,
                chart.draw_series([Circle::new((point, y), 5, c.filled())])
            )?;
        }
        if has_rounds {
            drawn!(
                id,
                chart.draw_series(
                    mark.rounds
                        .iter()
                        .map(|r| pct(*r))
                        .filter(|r| r.is_finite())
                        .enumerate()
                        .map(|(k, r)| Circle::new((r, jitter(k) * 0.4), 3, c.stroke_width(1)))
                )
            )?;
        }
        drawn!(id, root.present())?;
    }
    Ok(svg)
}

/// One benchmark over the exports: the mean of each (a dot, its samples' quartiles as a bar),
/// lines between exports that have it, steps beyond the threshold in the verdict's colour, and
/// the threshold band around the latest value.
pub(crate) fn trend(id: &str, trend: &Trend<'_>, width: u32, height: u32) -> Result<String> {
    let n = trend.points.len().max(1);
    let present: Vec<(usize, TrendPoint)> = trend
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    let values = present
        .iter()
        .flat_map(|(_, p)| [p.value, p.q1, p.q3])
        .chain(trend.band.into_iter().flat_map(|(a, b)| [a, b]));
    let (lo, hi) = widened(padded_extent(values, 0.08), 0.01);
    let scale = Scale::for_magnitude(trend.unit, lo.abs().max(hi.abs()));
    let (lo, hi) = (lo / scale.divisor, hi / scale.divisor);
    let decimals = decimals_for((hi - lo) / 4.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        drawn!(id, root.fill(&WHITE))?;
        let mut chart = drawn!(
            id,
            ChartBuilder::on(&root)
                .margin_top(8)
                .margin_right(12)
                .margin_left(4)
                .x_label_area_size(26)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), lo..hi)
        )?;
        let unit_label = scale.label.clone();
        drawn!(
            id,
            chart
                .configure_mesh()
                .disable_x_mesh()
                // At most ten labelled exports, so the labels never overlap; ticks between
                // exports stay unlabelled.
                .x_labels(n.min(10))
                .y_labels(4)
                .x_label_formatter(&|v| {
                    row_index(*v, n)
                        .map(|i| format!("#{}", i + 1))
                        .unwrap_or_default()
                })
                .y_label_formatter(&|v| format!("{} {unit_label}", tick(*v, decimals)))
                .label_style((FONT, SMALL_SIZE))
                .axis_style(AXIS)
                .bold_line_style(GRID)
                .max_light_lines(0)
                .draw()
        )?;
        let s = |v: f64| v / scale.divisor;
        let (x0, x1) = (-0.5, n as f64 - 0.5);
        if let (Some((band_lo, band_hi)), Some((_, latest))) = (trend.band, present.last()) {
            drawn!(
                id,
                chart.draw_series([Rectangle::new(
                    [(x0, s(band_lo)), (x1, s(band_hi))],
                    BASE.mix(0.12).filled()
                )])
            )?;
            // Solid: plotters draws a dashed line as one element per dash.
            drawn!(
                id,
                chart.draw_series([PathElement::new(
                    vec![(x0, s(latest.value)), (x1, s(latest.value))],
                    BASE.mix(0.7).stroke_width(1)
                )])
            )?;
        }
        drawn!(
            id,
            chart.draw_series(present.iter().map(|(i, p)| {
                let x = *i as f64;
                PathElement::new(vec![(x, s(p.q1)), (x, s(p.q3))], AXIS.stroke_width(3))
            }))
        )?;
        for w in present.windows(2) {
            let ((a, pa), (b, pb)) = (w[0], w[1]);
            let step = trend.steps.iter().find(|(f, t, _)| *f == a && *t == b);
            let style = match step {
                Some((_, _, true)) => WORSE.stroke_width(3),
                Some((_, _, false)) => BETTER.stroke_width(3),
                None => NEUTRAL.stroke_width(1),
            };
            let ends = [(a as f64, s(pa.value)), (b as f64, s(pb.value))];
            if b == a + 1 {
                drawn!(
                    id,
                    chart.draw_series([PathElement::new(ends.to_vec(), style)])
                )?;
            } else {
                // Across exports that lack the benchmark: dashed, so the gap shows.
                drawn!(
                    id,
                    chart.draw_series(DashedLineSeries::new(ends, 5, 4, style))
                )?;
            }
        }
        drawn!(
            id,
            chart.draw_series(present.iter().map(|(i, p)| Circle::new(
                (*i as f64, s(p.value)),
                3,
                NEUTRAL.filled()
            )))
        )?;
        drawn!(id, root.present())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of each `<text>` element of an SVG document.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let start = t.find('>')? + 1;
                let end = t.find("</text>")?;
                Some(t[start..end].trim().to_string())
            })
            .collect()
    }

    #[test]
    fn axes_use_the_prefix_of_the_text_reports() {
        let s = Scale::for_magnitude(DisplayUnit::Nanoseconds, 41_320.7);
        assert_eq!((s.divisor, s.label.as_str()), (1e3, "µs"));
        let s = Scale::for_magnitude(DisplayUnit::Bytes, 3.0 * 1024.0 * 1024.0);
        assert_eq!(s.label, "MiB");
        let s = Scale::for_magnitude(DisplayUnit::OpsPerSec, 31_586.0);
        assert_eq!(s.label, "Kops/s");
        let s = Scale::for_magnitude(DisplayUnit::Nanoseconds, 0.5);
        assert_eq!(s.label, "ns");
        let s = Scale::for_magnitude(DisplayUnit::Instructions, 2_400_000.0);
        assert_eq!((s.divisor, s.label.as_str()), (1e6, "M instr"));
        let s = Scale::for_magnitude(DisplayUnit::Ratio, 0.8);
        assert_eq!((s.divisor, s.label.as_str()), (1.0, ""));
    }

    #[test]
    fn ticks_have_the_decimals_their_step_needs() {
        assert_eq!(tick(12.25, decimals_for(0.05)), "12.25");
        assert_eq!(tick(12.0, decimals_for(0.5)), "12");
        assert_eq!(tick(-0.0001, decimals_for(1.0)), "0");
        assert_eq!(tick(1500.0, decimals_for(200.0)), "1500");
    }

    #[test]
    fn the_extent_of_one_value_or_none_is_still_a_range() {
        let (lo, hi) = padded_extent([5.0], 0.1);
        assert!(lo < 5.0 && hi > 5.0);
        assert_eq!(padded_extent([f64::NAN], 0.1), (0.0, 1.0));
        let (lo, hi) = padded_extent([0.0, 0.0], 0.1);
        assert!(lo < 0.0 && hi > 0.0);
    }

    #[test]
    fn a_strip_chart_has_one_dot_per_sample_and_a_mean_marker_per_side() {
        let base = [10.0, 11.0, 12.0, 10.5];
        let new = [13.0, 14.0, 13.5];
        let rows = [
            Strip {
                label: "base",
                values: &base,
                mean: 10.875,
                color: BASE,
            },
            Strip {
                label: "head",
                values: &new,
                mean: 13.5,
                color: NEW,
            },
        ];
        let svg = strips("x", &rows, DisplayUnit::Nanoseconds, 500).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        // Four + three sample dots; the mean diamonds are polygons.
        assert_eq!(svg.matches("<circle").count(), 7);
        assert_eq!(svg.matches("<polygon").count(), 2);
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "base"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "head"), "{texts:?}");
    }

    #[test]
    fn many_samples_are_drawn_as_a_box_with_its_outliers() {
        let values: Vec<f64> = (0..100)
            .map(|i| 100.0 + f64::from(i % 10))
            .chain([500.0])
            .collect();
        let rows = [Strip {
            label: "base",
            values: &values,
            mean: 104.0,
            color: BASE,
        }];
        let svg = strips("x", &rows, DisplayUnit::Nanoseconds, 500).unwrap();
        assert_eq!(svg.matches("<circle").count(), 1, "only the outlier");
        assert!(texts(&svg)
            .iter()
            .any(|t| t.contains("beyond the whiskers")));
    }

    #[test]
    fn a_huge_threshold_is_left_off_the_change_axis() {
        let mark = ChangeMark {
            point: 0.02,
            lower: 0.01,
            upper: 0.03,
            threshold: 1e10,
            higher_is_better: false,
            color: NEUTRAL,
            rounds: &[],
            in_points: false,
        };
        let svg = change("x", &mark, 300, height_for(1)).unwrap();
        assert!(svg.contains("off scale"), "{svg}");
        let rounds = [0.01, 0.04, 0.02];
        let mark = ChangeMark {
            threshold: 0.10,
            rounds: &rounds,
            ..mark
        };
        let svg = change("x", &mark, 300, height_for(1)).unwrap();
        assert!(!svg.contains("off scale"));
        assert!(texts(&svg).iter().any(|t| t == "rounds"), "{svg}");
        // The point estimate and one hollow dot per round.
        assert_eq!(svg.matches("<circle").count(), 4);
    }
}
