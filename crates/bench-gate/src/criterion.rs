//! Reads Criterion's saved files (`benchmark.json`, `estimates.json`, `sample.json`) into typed
//! structs and gathers the benchmarks of one baseline by walking the Criterion directory; directory
//! names are sanitised ids, so the id always comes from `benchmark.json`'s `full_id`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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
    pub fn amount(&self) -> (u64, &'static str) {
        match *self {
            Throughput::Bits(n) => (n, "bit/s"),
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n, "B/s"),
            Throughput::Elements(n) => (n, "ops/s"),
            Throughput::ElementsAndBytes { elements, .. } => (elements, "ops/s"),
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
        if self.times.len() < MIN_SAMPLES {
            return Err(Error::invalid(
                path,
                format!(
                    "benchmark has only {} sample; at least {MIN_SAMPLES} are needed to judge \
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

/// What a benchmark's raw values are measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// Wall time in nanoseconds (Criterion's default measurement).
    #[serde(rename = "ns")]
    Nanoseconds,
    /// Bytes, from a custom measurement.
    #[serde(rename = "bytes")]
    Bytes,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Nanoseconds => "ns",
            Unit::Bytes => "bytes",
        })
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

/// The Criterion directory: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion` of the enclosing Cargo workspace (or of the current directory).
pub fn default_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(target).join("criterion");
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    workspace_root(&cwd)
        .unwrap_or(cwd)
        .join("target")
        .join("criterion")
}

/// The outermost ancestor of `start` holding a `Cargo.toml` with a `[workspace]` table.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    let mut found = None;
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                found = Some(dir.to_path_buf());
            }
        }
    }
    found
}

/// Reads and deserialises one JSON file, naming the file in any error.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::json(path, e))
}

/// Directories holding a saved Criterion benchmark (`benchmark.json` inside), with the baseline
/// name (the directory's own name). `change/` holds Criterion's comparison, not a baseline.
fn baseline_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let is_dir = entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir();
            if !is_dir {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if dir == root && name == "report" {
                continue;
            }
            if name != "change" && path.join("benchmark.json").is_file() {
                out.push((name, path));
            } else {
                stack.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Fails with a message naming `root` unless it is an existing directory.
fn check_dir(root: &Path) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    let problem = if root.exists() {
        "not a directory, so it cannot be the Criterion directory"
    } else {
        "the Criterion directory does not exist"
    };
    Err(Error::invalid(
        root,
        format!(
            "{problem} (run the benchmarks first, or point --criterion-dir or CRITERION_HOME \
             at it)"
        ),
    ))
}

/// Baselines present under `root` and how many benchmarks each holds.
pub fn list(root: &Path) -> Result<BTreeMap<String, usize>> {
    check_dir(root)?;
    let mut counts = BTreeMap::new();
    for (name, _) in baseline_dirs(root)? {
        *counts.entry(name).or_insert(0) += 1;
    }
    Ok(counts)
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
    check_dir(root)?;
    let dirs = baseline_dirs(root)?;
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

/// Resolves a command-line baseline argument: an existing file (or anything ending in `.json`)
/// is an exported baseline, anything else a baseline name under `root`.
pub fn resolve(arg: &str, root: &Path) -> Result<Baseline> {
    let path = Path::new(arg);
    if path.is_file() || arg.ends_with(".json") {
        crate::export::read(path)
    } else {
        load(root, arg)
    }
}
