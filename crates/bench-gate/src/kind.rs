//! What a benchmark measures ([`Kind`]), the unit Criterion saved its values in ([`Unit`]) and the
//! unit a report shows them in ([`DisplayUnit`]). A new kind of benchmark starts here: its raw
//! unit, its direction (is more better?) and how its values are shown.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a benchmark measures, which decides its unit, its direction and its default threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Time per iteration (means and percentile ids alike); lower is better.
    Latency,
    /// Operations per second derived from Criterion's throughput setting; higher is better.
    Throughput,
    /// Bytes from a custom measurement; lower is better.
    Footprint,
    /// Instructions counted under valgrind's callgrind for one call; lower is better.
    /// Deterministic: the same code counts the same instructions, so no test of significance.
    Instructions,
    /// A unitless share in [0, 1] (recall, MRR) from a ratio measurement; higher is better. Its
    /// threshold and change are absolute, in points (0.02 = 2 points). Deterministic.
    Quality,
}

impl Kind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Kind; 5] = [
        Kind::Latency,
        Kind::Throughput,
        Kind::Footprint,
        Kind::Instructions,
        Kind::Quality,
    ];

    /// Unit of the raw values Criterion saved for this kind.
    pub fn unit(self) -> Unit {
        match self {
            Kind::Latency | Kind::Throughput => Unit::Nanoseconds,
            Kind::Footprint => Unit::Bytes,
            Kind::Instructions => Unit::Instructions,
            Kind::Quality => Unit::Ratio,
        }
    }

    /// Whether a larger value is an improvement.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Kind::Throughput | Kind::Quality)
    }

    /// Whether the same code always measures the same value, so a change is decided exactly (any
    /// difference is real) rather than by a test of significance and a bootstrap interval.
    pub fn is_deterministic(self) -> bool {
        matches!(self, Kind::Instructions | Kind::Quality)
    }

    /// Whether changes and thresholds are absolute differences (in points: 0.02 is 2 points of a
    /// share) rather than relative ones (0.02 is 2%). A recall of 0.10 falling to 0.08 is a
    /// small loss in points but -20% relative, so shares are judged in points.
    pub fn change_in_points(self) -> bool {
        matches!(self, Kind::Quality)
    }

    /// Lower-case name as used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Latency => "latency",
            Kind::Throughput => "throughput",
            Kind::Footprint => "footprint",
            Kind::Instructions => "instructions",
            Kind::Quality => "quality",
        }
    }

    /// The unit values of this kind are shown in when the benchmark does not say otherwise (a
    /// throughput benchmark's own setting may make it bytes or bits per second).
    pub fn display_unit(self) -> DisplayUnit {
        match self {
            Kind::Latency => DisplayUnit::Nanoseconds,
            Kind::Throughput => DisplayUnit::OpsPerSec,
            Kind::Footprint => DisplayUnit::Bytes,
            Kind::Instructions => DisplayUnit::Instructions,
            Kind::Quality => DisplayUnit::Ratio,
        }
    }

    /// Whether Criterion's own tools (and critcmp) read this kind's raw values correctly: they
    /// take every value for nanoseconds, so only time-valued kinds are.
    pub fn is_time(self) -> bool {
        self.unit() == Unit::Nanoseconds
    }
}

/// What a benchmark's raw values are measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// Wall time in nanoseconds (Criterion's default measurement).
    #[serde(rename = "ns")]
    Nanoseconds,
    /// Bytes, from a custom measurement.
    #[serde(rename = "bytes")]
    Bytes,
    /// Instructions executed (callgrind's `Ir` event).
    #[serde(rename = "instructions")]
    Instructions,
    /// A plain number without unit (a share, a mean reciprocal rank).
    #[serde(rename = "ratio")]
    Ratio,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Nanoseconds => "ns",
            Unit::Bytes => "bytes",
            Unit::Instructions => "instructions",
            Unit::Ratio => "ratio",
        })
    }
}

/// The unit a value is shown in: a cost per iteration (time or bytes) or a rate per second.
///
/// Rates are computed from costs: a mean cost of `c` nanoseconds per element is `1e9 / c`
/// elements (or bytes, or bits) per second. The serialised names are the labels of reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DisplayUnit {
    /// Nanoseconds per iteration.
    #[serde(rename = "ns")]
    Nanoseconds,
    /// Bytes per iteration.
    #[serde(rename = "bytes")]
    Bytes,
    /// Operations (Criterion's elements) per second.
    #[serde(rename = "ops/s")]
    OpsPerSec,
    /// Bytes per second.
    #[serde(rename = "B/s")]
    BytesPerSec,
    /// Bits per second.
    #[serde(rename = "bit/s")]
    BitsPerSec,
    /// Instructions per call.
    #[serde(rename = "instructions")]
    Instructions,
    /// A unitless share or score.
    #[serde(rename = "ratio")]
    Ratio,
}

impl DisplayUnit {
    /// The label reports print after a value (`ns`, `bytes`, `ops/s`, `B/s`, `bit/s`).
    pub fn label(self) -> &'static str {
        match self {
            DisplayUnit::Nanoseconds => "ns",
            DisplayUnit::Bytes => "bytes",
            DisplayUnit::OpsPerSec => "ops/s",
            DisplayUnit::BytesPerSec => "B/s",
            DisplayUnit::BitsPerSec => "bit/s",
            DisplayUnit::Instructions => "instructions",
            DisplayUnit::Ratio => "ratio",
        }
    }

    /// Whether this is a rate per second (shown as the reciprocal of a cost).
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            DisplayUnit::OpsPerSec | DisplayUnit::BytesPerSec | DisplayUnit::BitsPerSec
        )
    }

    /// The shown value of a mean cost: the cost itself, or for a rate the amount per second of
    /// a cost in nanoseconds per unit of amount.
    pub fn from_cost(self, mean_cost: f64) -> f64 {
        if self.is_rate() {
            1e9 / mean_cost
        } else {
            mean_cost
        }
    }
}

impl fmt::Display for DisplayUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_units_serialise_as_their_labels() {
        for unit in [
            DisplayUnit::Nanoseconds,
            DisplayUnit::Bytes,
            DisplayUnit::OpsPerSec,
            DisplayUnit::BytesPerSec,
            DisplayUnit::BitsPerSec,
            DisplayUnit::Instructions,
            DisplayUnit::Ratio,
        ] {
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(json, format!("\"{}\"", unit.label()));
            assert_eq!(serde_json::from_str::<DisplayUnit>(&json).unwrap(), unit);
        }
    }

    #[test]
    fn a_rate_is_the_reciprocal_of_a_cost_in_nanoseconds() {
        assert_eq!(DisplayUnit::OpsPerSec.from_cost(5_000.0), 200_000.0);
        assert_eq!(DisplayUnit::Nanoseconds.from_cost(5_000.0), 5_000.0);
        assert_eq!(DisplayUnit::Bytes.from_cost(2_500.0), 2_500.0);
    }
}
