//! Renderers of a [`crate::Report`]: an aligned terminal table, Markdown for job summaries and
//! PR comments, versioned JSON, and HTML pages (a comparison, a history of exports). Shared
//! number formatting lives here.

pub mod html;
pub mod json;
pub mod markdown;
pub mod text;

use crate::kind::DisplayUnit;
use crate::verdict::Change;

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
            let (v, p) = if value < 1e3 {
                (value, "")
            } else if value < 1e6 {
                (value / 1e3, "K")
            } else if value < 1e9 {
                (value / 1e6, "M")
            } else {
                (value / 1e9, "G")
            };
            format!("{} {p}{unit}", sig3(v))
        }
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
