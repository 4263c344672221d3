//! The model of an absolute budget (`[[slo]]` in `bench-gate.toml`): which benchmarks it covers
//! ([`Selector`]) and the limit it sets ([`Budget`]). Built from the file's shape ([`SloEntry`])
//! so that a budget in hand always has exactly one positive limit and one way of selecting.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kind::{DisplayUnit, Kind};

/// The benchmarks a budget covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Exactly this benchmark id.
    Id(String),
    /// Every id starting with `prefix` and ending with `suffix` (at least one is given).
    Pattern {
        /// Id prefix, e.g. `tail/`.
        prefix: Option<String>,
        /// Id suffix, e.g. `/p99`.
        suffix: Option<String>,
    },
}

impl Selector {
    /// Whether benchmark `id` is covered.
    pub fn matches(&self, id: &str) -> bool {
        match self {
            Selector::Id(exact) => exact == id,
            Selector::Pattern { prefix, suffix } => {
                prefix.as_deref().is_none_or(|p| id.starts_with(p))
                    && suffix.as_deref().is_none_or(|s| id.ends_with(s))
            }
        }
    }
}

/// `tail/ltm_get/p99`, or `tail/*/p99` for a pattern.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Id(id) => f.write_str(id),
            Selector::Pattern { prefix, suffix } => write!(
                f,
                "{}*{}",
                prefix.as_deref().unwrap_or(""),
                suffix.as_deref().unwrap_or("")
            ),
        }
    }
}

/// A limit on a benchmark's mean, in the unit its key names.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Time per iteration at most this many nanoseconds (`max_ns`).
    MaxNs(f64),
    /// At least this many operations per second, from Criterion's throughput setting
    /// (`min_ops_per_sec`).
    MinOpsPerSec(f64),
    /// At most this many bytes, per 1,000 entries for footprint ids (`max_bytes`).
    MaxBytes(f64),
}

/// Which side of its limit a budget holds on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bound {
    /// A ceiling: the value may not exceed the limit.
    AtMost,
    /// A floor: the value may not fall below the limit.
    AtLeast,
}

impl Bound {
    /// `<=` or `>=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Bound::AtMost => "<=",
            Bound::AtLeast => ">=",
        }
    }
}

impl Budget {
    /// The kind of measurement the budget reads the benchmark as.
    pub fn kind(self) -> Kind {
        match self {
            Budget::MaxNs(_) => Kind::Latency,
            Budget::MinOpsPerSec(_) => Kind::Throughput,
            Budget::MaxBytes(_) => Kind::Footprint,
        }
    }

    /// The limit, in [`Budget::unit`].
    pub fn limit(self) -> f64 {
        match self {
            Budget::MaxNs(v) | Budget::MinOpsPerSec(v) | Budget::MaxBytes(v) => v,
        }
    }

    /// A ceiling or a floor.
    pub fn bound(self) -> Bound {
        match self {
            Budget::MaxNs(_) | Budget::MaxBytes(_) => Bound::AtMost,
            Budget::MinOpsPerSec(_) => Bound::AtLeast,
        }
    }

    /// The unit of the limit.
    pub fn unit(self) -> DisplayUnit {
        self.kind().display_unit()
    }

    /// Whether `value` (in the budget's unit) keeps the budget.
    pub fn holds(self, value: f64) -> bool {
        match self.bound() {
            Bound::AtMost => value <= self.limit(),
            Bound::AtLeast => value >= self.limit(),
        }
    }

    /// Of several budgets of one kind and bound, the one that binds: the lowest ceiling or the
    /// highest floor.
    pub fn tighter(self, other: Budget) -> Budget {
        let self_first = match self.bound() {
            Bound::AtMost => self.limit() <= other.limit(),
            Bound::AtLeast => self.limit() >= other.limit(),
        };
        if self_first {
            self
        } else {
            other
        }
    }
}

/// One `[[slo]]`: a budget on the mean of each benchmark the selector covers.
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    /// The benchmarks covered.
    pub selector: Selector,
    /// The limit on each of them.
    pub budget: Budget,
}

impl Slo {
    /// Whether benchmark `id` is covered by this budget.
    pub fn matches(&self, id: &str) -> bool {
        self.selector.matches(id)
    }
}

impl Serialize for Slo {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SloEntry::from(self).serialize(serializer)
    }
}

/// `[[slo]]` as written in `bench-gate.toml`: one of `id` or `prefix`/`suffix`, and one of the
/// three limits. Unknown keys are errors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloEntry {
    /// Exact benchmark id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Id prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Id suffix, combined with `prefix` (e.g. prefix `tail/`, suffix `/p99`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Latency budget: mean time per iteration at most this many nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ns: Option<f64>,
    /// Throughput budget: at least this many operations per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ops_per_sec: Option<f64>,
    /// Footprint budget: at most this many bytes (per 1,000 entries for footprint ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<f64>,
}

impl SloEntry {
    /// How the entry names its benchmarks in messages, even when it is malformed.
    fn describe(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => Selector::Pattern {
                prefix: self.prefix.clone(),
                suffix: self.suffix.clone(),
            }
            .to_string(),
        }
    }
}

/// Checks the entry; the error is a one-line message for the configuration's error.
impl TryFrom<SloEntry> for Slo {
    type Error = String;

    fn try_from(entry: SloEntry) -> Result<Slo, String> {
        let name = entry.describe();
        let budget = match (entry.max_ns, entry.min_ops_per_sec, entry.max_bytes) {
            (Some(v), None, None) => Budget::MaxNs(v),
            (None, Some(v), None) => Budget::MinOpsPerSec(v),
            (None, None, Some(v)) => Budget::MaxBytes(v),
            _ => {
                return Err(format!(
                    "[[slo]] {name}: needs exactly one of max_ns, min_ops_per_sec, max_bytes"
                ))
            }
        };
        let selector = match (entry.id, entry.prefix, entry.suffix) {
            (Some(id), None, None) => Selector::Id(id),
            (Some(_), _, _) => {
                return Err(format!(
                    "[[slo]] {name}: `id` cannot be combined with `prefix`/`suffix`"
                ))
            }
            (None, None, None) => return Err("a [[slo]] needs `id`, `prefix` or `suffix`".into()),
            (None, prefix, suffix) => Selector::Pattern { prefix, suffix },
        };
        let limit = budget.limit();
        if !(limit.is_finite() && limit > 0.0) {
            return Err(format!(
                "[[slo]] {name}: the budget must be a positive number"
            ));
        }
        Ok(Slo { selector, budget })
    }
}

impl From<&Slo> for SloEntry {
    fn from(slo: &Slo) -> SloEntry {
        let mut entry = SloEntry::default();
        match &slo.selector {
            Selector::Id(id) => entry.id = Some(id.clone()),
            Selector::Pattern { prefix, suffix } => {
                entry.prefix = prefix.clone();
                entry.suffix = suffix.clone();
            }
        }
        match slo.budget {
            Budget::MaxNs(v) => entry.max_ns = Some(v),
            Budget::MinOpsPerSec(v) => entry.min_ops_per_sec = Some(v),
            Budget::MaxBytes(v) => entry.max_bytes = Some(v),
        }
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> SloEntry {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn an_entry_becomes_one_selector_and_one_budget() {
        let slo = Slo::try_from(entry(
            "prefix = \"tail/\"\nsuffix = \"/p99\"\nmax_ns = 5e6\n",
        ))
        .unwrap();
        assert_eq!(slo.budget, Budget::MaxNs(5e6));
        assert_eq!(slo.selector.to_string(), "tail/*/p99");
        assert!(slo.matches("tail/search/p99") && !slo.matches("tail/search/p50"));
        assert_eq!(
            SloEntry::from(&slo),
            entry("prefix = \"tail/\"\nsuffix = \"/p99\"\nmax_ns = 5e6\n")
        );
    }

    #[test]
    fn malformed_entries_are_refused_with_the_reason() {
        let err = |text: &str| Slo::try_from(entry(text)).unwrap_err();
        assert!(err("id = \"a\"\n").contains("exactly one of"));
        assert!(err("id = \"a\"\nmax_ns = 1\nmax_bytes = 2\n").contains("exactly one of"));
        assert!(err("id = \"a\"\nsuffix = \"x\"\nmax_ns = 1\n").contains("cannot be combined"));
        assert!(err("max_ns = 1\n").contains("needs `id`, `prefix` or `suffix`"));
        assert!(err("id = \"a\"\nmin_ops_per_sec = 0\n").contains("positive"));
        assert!(err("id = \"a\"\nmax_bytes = nan\n").contains("positive"));
    }

    #[test]
    fn a_ceiling_holds_at_or_below_and_a_floor_at_or_above() {
        assert!(Budget::MaxNs(2_000.0).holds(2_000.0));
        assert!(!Budget::MaxNs(2_000.0).holds(2_000.1));
        assert!(Budget::MinOpsPerSec(200_000.0).holds(200_000.0));
        assert!(!Budget::MinOpsPerSec(200_000.0).holds(130_000.0));
        assert_eq!(Budget::MaxBytes(1.0).bound(), Bound::AtMost);
        assert_eq!(Budget::MinOpsPerSec(1.0).unit(), DisplayUnit::OpsPerSec);
    }

    #[test]
    fn the_tighter_budget_is_the_lower_ceiling_or_the_higher_floor() {
        let (one_ms, five_ms) = (Budget::MaxNs(1e6), Budget::MaxNs(5e6));
        assert_eq!(one_ms.tighter(five_ms), one_ms);
        assert_eq!(five_ms.tighter(one_ms), one_ms);
        let (low, high) = (Budget::MinOpsPerSec(1e3), Budget::MinOpsPerSec(1e5));
        assert_eq!(low.tighter(high), high);
    }
}
