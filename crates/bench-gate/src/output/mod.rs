//! Renderers of a [`crate::Report`]: an aligned terminal table, Markdown for job summaries and
//! PR comments, versioned JSON, and HTML pages (a comparison, a history of exports). Shared
//! number formatting lives here.

pub mod html;
pub mod json;
pub mod markdown;
pub mod text;

use crate::kind::{DisplayUnit, Kind};
use crate::verdict::{Change, Counts, Row};

/// Formats `value` of `unit` with a readable prefix and three significant digits.
pub fn value(value: f64, unit: DisplayUnit) -> String {
    match unit {
        DisplayUnit::Nanoseconds => {
            let (v, u) = if value < 1e3 {
                (value, "ns")
            } else if value < 1e6 {
                (value / 1e3, "µs")
            } else if value < 1e9 {
                (value / 1e6, "ms")
            } else {
                (value / 1e9, "s")
            };
            format!("{} {u}", sig3(v))
        }
        DisplayUnit::Bytes => {
            let (v, u) = if value < 1024.0 {
                (value, "B")
            } else if value < 1024.0 * 1024.0 {
                (value / 1024.0, "KiB")
            } else if value < 1024.0 * 1024.0 * 1024.0 {
                (value / (1024.0 * 1024.0), "MiB")
            } else {
                (value / (1024.0 * 1024.0 * 1024.0), "GiB")
            };
            format!("{} {u}", sig3(v))
        }
        DisplayUnit::OpsPerSec | DisplayUnit::BytesPerSec | DisplayUnit::BitsPerSec => {
            let (v, p) = decimal_prefix(value);
            format!("{} {p}{unit}", sig3(v))
        }
        DisplayUnit::Instructions => {
            let (v, p) = decimal_prefix(value);
            if p.is_empty() {
                format!("{value:.0} instr")
            } else {
                format!("{} {p} instr", sig3(v))
            }
        }
        // Shares on a 2^-30 grid: three decimals show every point and a tenth of one.
        DisplayUnit::Ratio => format!("{value:.3}"),
    }
}

/// `value` scaled to a decimal prefix: below 1,000 as it is, then K, M, G.
fn decimal_prefix(value: f64) -> (f64, &'static str) {
    if value < 1e3 {
        (value, "")
    } else if value < 1e6 {
        (value / 1e3, "K")
    } else if value < 1e9 {
        (value / 1e6, "M")
    } else {
        (value / 1e9, "G")
    }
}

fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Formats a fraction as a signed percentage (`0.253` -> `+25.3%`).
pub fn pct(fraction: f64) -> String {
    let pct = fraction * 100.0;
    // Bootstrap rounding can leave -0.00001%; print that as +0.0%, not -0.0%.
    let pct = if pct.abs() < 0.05 { 0.0 } else { pct };
    format!("{pct:+.1}%")
}

/// `+25.3% [+21.0%, +29.9%]`.
pub fn change(c: &Change) -> String {
    format!("{} [{}, {}]", pct(c.point), pct(c.lower), pct(c.upper))
}

/// A difference of shares in points (`-0.021` -> `-2.1 pts`).
pub fn points(fraction: f64) -> String {
    let pts = fraction * 100.0;
    let pts = if pts.abs() < 0.05 { 0.0 } else { pts };
    format!("{pts:+.1} pts")
}

/// One change in its kind's scale: a percentage (`+25.3%`), or points for quality (`-2.1 pts`).
pub fn change_point_of(kind: Kind, fraction: f64) -> String {
    if kind.change_in_points() {
        points(fraction)
    } else {
        pct(fraction)
    }
}

/// The change of a row in its kind's scale: a percentage, or points for quality; an exact
/// change (deterministic kinds) has no interval to show.
pub fn change_of(kind: Kind, c: &Change) -> String {
    let one = |x: f64| change_point_of(kind, x);
    if kind.is_deterministic() && c.lower == c.upper {
        format!("{} (exact)", one(c.point))
    } else {
        format!("{} [{}, {}]", one(c.point), one(c.lower), one(c.upper))
    }
}

/// The threshold of a row in its kind's scale (`+10%`, `-2 pts`).
pub fn threshold_of(kind: Kind, pct: f64) -> String {
    if kind.change_in_points() {
        format!("{pct:+} pts")
    } else {
        threshold(pct)
    }
}

/// What a summary line adds for informational regressions (" (2 informational regressed, not
/// failing)"); empty when there are none.
pub fn informational_note(c: &Counts) -> String {
    if c.informational_regressed > 0 {
        format!(
            " ({} informational regressed, not failing)",
            c.informational_regressed
        )
    } else {
        String::new()
    }
}

/// The verdict of a row as shown: an informational row's verdict is marked as such.
pub fn verdict_of(row: &Row) -> String {
    if row.decides() {
        row.verdict.name().to_string()
    } else {
        format!("{} (info)", row.verdict.name())
    }
}

/// The per-round changes of a row (`+1.2% +0.8% -0.3%`), empty without rounds.
pub fn round_changes(row: &Row) -> String {
    row.round_changes
        .iter()
        .map(|&c| change_point_of(row.kind, c))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a row's per-round changes are worth showing: flagged rows (anything but unchanged,
/// new or missing) of a comparison of rounds.
pub fn shows_rounds(row: &Row) -> bool {
    !row.round_changes.is_empty()
        && matches!(
            row.verdict,
            crate::Verdict::Regressed | crate::Verdict::Inconclusive | crate::Verdict::Improved
        )
}

/// p-value with enough digits to tell 0.049 from 0.051, and tiny values as `<0.001`.
pub fn p_value(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Threshold in percent, signed (`+10%`, `-10%`).
pub fn threshold(pct: f64) -> String {
    format!("{pct:+}%")
}
