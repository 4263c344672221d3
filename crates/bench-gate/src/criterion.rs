//! Reads Criterion's saved files (`benchmark.json`, `estimates.json`, `sample.json`,
//! `tukey.json`) into typed structs that mirror them, and gathers one baseline's benchmarks from
//! the directories [`crate::locate`] finds. Directory names are sanitised ids, so a benchmark's id
//! always comes from `benchmark.json`'s `full_id`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kind::{DisplayUnit, Unit};
use crate::locate;
use crate::machine::Machine;

/// Criterion's `benchmark.json`: the identity of one benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkInfo {
    /// Group name (`latency/stm` for `latency/stm/append`).
    pub group_id: String,
    /// Function name inside the group, if any.
    pub function_id: Option<String>,
    /// Parameter string, if the benchmark was parameterised.
    pub value_str: Option<String>,
    /// Throughput setting of the benchmark, if any.
    pub throughput: Option<Throughput>,
    /// The full id, e.g. `throughput/mixed/4`.
    pub full_id: String,
    /// The sanitised directory path of the benchmark under the Criterion directory.
    pub directory_name: String,
    /// Display title (absent in old Criterion versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Criterion's throughput setting, serialised exactly as Criterion does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Throughput {
    /// Bits processed per iteration.
    Bits(u64),
    /// Bytes processed per iteration.
    Bytes(u64),
    /// Bytes processed per iteration, shown with decimal prefixes.
    BytesDecimal(u64),
    /// Elements (operations) processed per iteration.
    Elements(u64),
    /// Both; elements are the primary quantity.
    ElementsAndBytes {
        /// Elements per iteration.
        elements: u64,
        /// Bytes per iteration.
        bytes: u64,
    },
}

impl Throughput {
    /// The per-iteration amount and the unit of its per-second rate.
    pub fn amount(&self) -> (u64, DisplayUnit) {
        match *self {
            Throughput::Bits(n) => (n, DisplayUnit::BitsPerSec),
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n, DisplayUnit::BytesPerSec),
            Throughput::Elements(n) => (n, DisplayUnit::OpsPerSec),
            Throughput::ElementsAndBytes { elements, .. } => (elements, DisplayUnit::OpsPerSec),
        }
    }
}

/// One statistic of `estimates.json` with its bootstrap confidence interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Criterion's bootstrap interval.
    pub confidence_interval: ConfidenceInterval,
    /// The point estimate.
    pub point_estimate: f64,
    /// Standard error of the estimate.
    pub standard_error: f64,
}

/// A confidence interval as stored by Criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// E.g. 0.95.
    pub confidence_level: f64,
    /// Lower bound.
    pub lower_bound: f64,
    /// Upper bound.
    pub upper_bound: f64,
}

/// Criterion's `estimates.json`. `slope` is absent or null for flat sampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimates {
    /// Mean time per iteration.
    pub mean: Estimate,
    /// Median time per iteration.
    pub median: Estimate,
    /// Median absolute deviation.
    pub median_abs_dev: Estimate,
    /// Slope of the linear regression of time on iterations (linear sampling only).
    #[serde(default)]
    pub slope: Option<Estimate>,
    /// Standard deviation.
    pub std_dev: Estimate,
}

/// Fewest samples per side a comparison accepts (Criterion itself insists on at least 10).
pub const MIN_SAMPLES: usize = 2;

/// Criterion's `sample.json`: per sample, the iteration count and the total measured value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `Linear` or `Flat`.
    pub sampling_mode: String,
    /// Iterations per sample.
    pub iters: Vec<f64>,
    /// Total measured value per sample (ns for wall time, bytes for a byte measurement).
    pub times: Vec<f64>,
}

impl Sample {
    /// Checks the sample can be analysed; `path` names the file in the error.
    pub fn validate(&self, path: &Path) -> Result<()> {
        self.validate_with(path, MIN_SAMPLES)
    }

    /// [`Sample::validate`] with the fewest samples accepted given (1 for an exact count).
    pub fn validate_with(&self, path: &Path, min_samples: usize) -> Result<()> {
        if self.iters.is_empty() || self.times.is_empty() {
            return Err(Error::invalid(path, "benchmark has zero samples"));
        }
        if self.iters.len() != self.times.len() {
            return Err(Error::invalid(
                path,
                format!(
                    "{} iteration counts but {} times",
                    self.iters.len(),
                    self.times.len()
                ),
            ));
        }
        if let Some(i) = self.iters.iter().position(|n| !n.is_finite() || *n <= 0.0) {
            return Err(Error::invalid(
                path,
                format!("sample {i} has a non-positive iteration count"),
            ));
        }
        if let Some(i) = self.times.iter().position(|t| !t.is_finite() || *t < 0.0) {
            return Err(Error::invalid(
                path,
                format!("sample {i} has a negative or non-finite value"),
            ));
        }
        // One sample has no variance: the t-test would call any difference certain.
        if self.times.len() < min_samples {
            return Err(Error::invalid(
                path,
                format!(
                    "benchmark has only {} sample; at least {min_samples} are needed to judge \
                     significance",
                    self.times.len()
                ),
            ));
        }
        Ok(())
    }

    /// The measured value per iteration of each sample, as Criterion computes `avg_times`.
    pub fn per_iteration(&self) -> Vec<f64> {
        self.iters
            .iter()
            .zip(&self.times)
            .map(|(n, t)| t / n)
            .collect()
    }
}

/// One benchmark of one baseline, with everything Criterion saved about it.
#[derive(Clone, Debug)]
pub struct Benchmark {
    /// Identity (`benchmark.json`).
    pub info: BenchmarkInfo,
    /// Criterion's own estimates (`estimates.json`).
    pub estimates: Estimates,
    /// Raw samples (`sample.json`).
    pub sample: Sample,
    /// Tukey fences (`tukey.json`), kept verbatim so an import restores Criterion's files fully.
    pub tukey: Option<serde_json::Value>,
    /// Unit recorded in an exported file; `None` for a Criterion directory (config decides).
    pub unit: Option<Unit>,
    /// The directory or file the benchmark was read from, for error messages.
    pub source: PathBuf,
}

/// All benchmarks of one baseline.
#[derive(Clone, Debug)]
pub struct Baseline {
    /// Baseline name (`new`, `base`, ...).
    pub name: String,
    /// Criterion directory or export file it came from.
    pub source: PathBuf,
    /// Machine the baseline was recorded on, when known (exported files record it).
    pub machine: Option<Machine>,
    /// Benchmarks by full id.
    pub benchmarks: BTreeMap<String, Benchmark>,
}

/// Reads and deserialises one JSON file, naming the file in any error.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::json(path, e))
}

/// Reads one `estimates.json` (Criterion's point estimates and intervals of one run).
pub fn read_estimates(path: &Path) -> Result<Estimates> {
    read_json(path)
}

/// Reads one benchmark's saved directory (`<id dir>/<baseline>/`).
pub fn read_benchmark_dir(dir: &Path) -> Result<Benchmark> {
    let info: BenchmarkInfo = read_json(&dir.join("benchmark.json"))?;
    let estimates: Estimates = read_json(&dir.join("estimates.json"))?;
    let sample_path = dir.join("sample.json");
    let sample: Sample = read_json(&sample_path)?;
    sample.validate(&sample_path)?;
    let tukey_path = dir.join("tukey.json");
    let tukey = if tukey_path.is_file() {
        Some(read_json(&tukey_path)?)
    } else {
        None
    };
    Ok(Benchmark {
        info,
        estimates,
        sample,
        tukey,
        unit: None,
        source: dir.to_path_buf(),
    })
}

/// Loads every benchmark saved under baseline `name` in the Criterion directory `root`.
pub fn load(root: &Path, name: &str) -> Result<Baseline> {
    locate::check_dir(root)?;
    let dirs = locate::baseline_dirs(root)?;
    let mut benchmarks = BTreeMap::new();
    for (_, dir) in dirs.iter().filter(|(n, _)| n == name) {
        let bench = read_benchmark_dir(dir)?;
        if let Some(previous) = benchmarks.insert(bench.info.full_id.clone(), bench) {
            return Err(Error::invalid(
                dir,
                format!(
                    "benchmark id '{}' also saved in {}",
                    previous.info.full_id,
                    previous.source.display()
                ),
            ));
        }
    }
    if benchmarks.is_empty() {
        let mut present: Vec<String> = dirs.into_iter().map(|(n, _)| n).collect();
        present.dedup();
        return Err(Error::MissingBaseline {
            name: name.to_string(),
            dir: root.to_path_buf(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        });
    }
    Ok(Baseline {
        name: name.to_string(),
        source: root.to_path_buf(),
        machine: None,
        benchmarks,
    })
}
