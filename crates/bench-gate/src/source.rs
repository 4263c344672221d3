//! Where a baseline comes from: a command-line argument names either a baseline saved under the
//! Criterion directory or an exported file. [`BaselineSource`] says which, and loads it through
//! [`crate::criterion`] or [`crate::export`]. A [`RoundSet`] is one side of a comparison of
//! interleaved rounds: baselines `NAME-r1`, `NAME-r2`, ... plus, optionally, the benchmarks run
//! once per side under `NAME` itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::criterion::{self, Baseline};
use crate::error::{Error, Result};
use crate::{callgrind, export, locate};

/// A baseline as named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaselineSource {
    /// A baseline saved by Criterion (`--save-baseline NAME`, or its own `base`/`new`).
    Saved(String),
    /// An exported baseline file (`bench-gate export`).
    Exported(PathBuf),
}

impl BaselineSource {
    /// Reads a command-line argument: an existing file, or anything ending in `.json`, is an
    /// export (so a mistyped file name gets "file not found", not "no such baseline"); anything
    /// else is a baseline name.
    pub fn parse(arg: &str) -> BaselineSource {
        let path = Path::new(arg);
        if path.is_file() || arg.ends_with(".json") {
            BaselineSource::Exported(path.to_path_buf())
        } else {
            BaselineSource::Saved(arg.to_string())
        }
    }

    /// Loads the baseline; `criterion_dir` is where saved baselines are looked up. A saved
    /// baseline also holds the instruction counts saved under its name
    /// ([`locate::instructions_dir`]); either part may be absent, not both.
    pub fn load(&self, criterion_dir: &Path) -> Result<Baseline> {
        match self {
            BaselineSource::Saved(name) => load_saved(criterion_dir, name),
            BaselineSource::Exported(path) => export::read(path),
        }
    }
}

/// A saved baseline: Criterion's benchmarks and callgrind's counts of that name.
fn load_saved(criterion_dir: &Path, name: &str) -> Result<Baseline> {
    let counts_dir = locate::instructions_dir(criterion_dir);
    let counts = callgrind::load(&counts_dir, name)?;
    let timed = match criterion::load(criterion_dir, name) {
        Ok(baseline) => Some(baseline),
        Err(Error::MissingBaseline { .. }) if !counts.is_empty() => None,
        Err(_) if !counts.is_empty() && !criterion_dir.is_dir() => None,
        Err(e) => return Err(e),
    };
    let mut baseline = timed.unwrap_or_else(|| Baseline {
        name: name.to_string(),
        source: counts_dir.clone(),
        machine: None,
        benchmarks: BTreeMap::new(),
    });
    for (id, bench) in counts {
        if let Some(other) = baseline.benchmarks.get(&id) {
            return Err(Error::invalid(
                &bench.source,
                format!(
                    "benchmark id '{id}' is both an instruction count and a Criterion benchmark \
                     ({})",
                    other.source.display()
                ),
            ));
        }
        baseline.benchmarks.insert(id, bench);
    }
    Ok(baseline)
}

/// Loads the baseline a command-line argument names (see [`BaselineSource::parse`]).
pub fn resolve(arg: &str, criterion_dir: &Path) -> Result<Baseline> {
    BaselineSource::parse(arg).load(criterion_dir)
}

/// What separates a side's name from its round number: round 3 of `base` is `base-r3`.
pub const ROUND_INFIX: &str = "-r";

/// The baseline name of round `k` (from 1) of side `name`.
pub fn round_name(name: &str, k: usize) -> String {
    format!("{name}{ROUND_INFIX}{k}")
}

/// A round-set argument: `NAME-r*` names every round of `NAME`; returns `NAME`.
pub fn round_pattern(arg: &str) -> Option<&str> {
    arg.strip_suffix("-r*").filter(|name| !name.is_empty())
}

/// One side of a comparison of interleaved rounds.
#[derive(Clone, Debug)]
pub struct RoundSet {
    /// The side's name (`base`, `head`).
    pub name: String,
    /// The Criterion directory the rounds were read from.
    pub source: PathBuf,
    /// Rounds 1, 2, ... in order.
    pub rounds: Vec<Baseline>,
    /// Benchmarks measured once for this side rather than in every round (deterministic or slow
    /// ones: instruction counts, quality, footprint), saved under the side's own name.
    pub single: Option<Baseline>,
}

impl RoundSet {
    /// The rounds' baseline names.
    pub fn names(&self) -> Vec<String> {
        self.rounds.iter().map(|r| r.name.clone()).collect()
    }

    /// Loads the rounds of side `name` from the Criterion directory `root`: rounds `1..=count`,
    /// or, without a count, every round saved (numbered from 1 without a gap). A missing round
    /// is an error naming it. The side's single baseline `name`, when saved, comes along.
    pub fn load(root: &Path, name: &str, count: Option<usize>) -> Result<RoundSet> {
        locate::check_dir(root)?;
        let present = locate::list(root)?;
        let saved: BTreeMap<usize, &String> = present
            .keys()
            .filter_map(|b| {
                let k = b.strip_prefix(name)?.strip_prefix(ROUND_INFIX)?;
                let digits_only = !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit());
                digits_only
                    .then(|| k.parse().ok())
                    .flatten()
                    .map(|k| (k, b))
            })
            .collect();
        let count = count.unwrap_or_else(|| saved.keys().next_back().copied().unwrap_or(0));
        if count == 0 {
            return Err(Error::Rounds {
                message: format!(
                    "no rounds of '{name}' under {} (looked for {}; baselines present: {})",
                    root.display(),
                    round_name(name, 1),
                    list_or_none(present.keys())
                ),
            });
        }
        let mut rounds = Vec::with_capacity(count);
        for k in 1..=count {
            if !saved.contains_key(&k) {
                return Err(Error::Rounds {
                    message: format!(
                        "round '{}' not found under {}: a round that crashed or was not run \
                         (rounds of '{name}' present: {})",
                        round_name(name, k),
                        root.display(),
                        list_or_none(saved.values().copied())
                    ),
                });
            }
            rounds.push(criterion::load(root, &round_name(name, k))?);
        }
        let counted = callgrind::list(&locate::instructions_dir(root))?;
        let single = if present.contains_key(name) || counted.contains_key(name) {
            Some(BaselineSource::Saved(name.to_string()).load(root)?)
        } else {
            None
        };
        Ok(RoundSet {
            name: name.to_string(),
            source: root.to_path_buf(),
            rounds,
            single,
        })
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// One side of a comparison: a baseline, or a set of interleaved rounds.
#[derive(Clone, Debug)]
pub enum Side {
    /// One baseline (saved or exported).
    Baseline(Baseline),
    /// Interleaved rounds.
    Rounds(RoundSet),
}

/// Loads one side of a comparison: with `rounds`, rounds `1..=rounds` of `arg`; `NAME-r*` for
/// every round of `NAME`; anything else is one baseline ([`resolve`]).
pub fn resolve_side(arg: &str, rounds: Option<usize>, criterion_dir: &Path) -> Result<Side> {
    if let Some(count) = rounds {
        if count == 0 {
            return Err(Error::Rounds {
                message: "--rounds must be at least 1".into(),
            });
        }
        let name = round_pattern(arg).unwrap_or(arg);
        return RoundSet::load(criterion_dir, name, Some(count)).map(Side::Rounds);
    }
    match round_pattern(arg) {
        Some(name) => RoundSet::load(criterion_dir, name, None).map(Side::Rounds),
        None => resolve(arg, criterion_dir).map(Side::Baseline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_name_is_a_file_and_anything_else_a_saved_baseline() {
        assert_eq!(
            BaselineSource::parse("baselines/missing.json"),
            BaselineSource::Exported("baselines/missing.json".into())
        );
        assert_eq!(
            BaselineSource::parse("main"),
            BaselineSource::Saved("main".into())
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        let arg = file.path().to_str().unwrap();
        assert_eq!(
            BaselineSource::parse(arg),
            BaselineSource::Exported(file.path().to_path_buf())
        );
    }
}

#[cfg(test)]
mod round_tests {
    use super::*;

    #[test]
    fn round_names_and_patterns() {
        assert_eq!(round_name("base", 3), "base-r3");
        assert_eq!(round_pattern("base-r*"), Some("base"));
        assert_eq!(round_pattern("-r*"), None);
        assert_eq!(round_pattern("base"), None);
    }
}
