//! The export format: one JSON file per baseline holding, per benchmark, Criterion's
//! `benchmark.json`, `estimates.json`, `sample.json` and `tukey.json`, the unit, and the machine.
//! It is a superset of `critcmp --export` (same top-level `name`/`benchmarks` and per-benchmark
//! `baseline`/`fullname`/`criterion_benchmark_v1`/`criterion_estimates_v1`), so critcmp reads it.
//! critcmp takes every value for nanoseconds, so `benchmarks` holds time-valued benchmarks only;
//! bytes, quality figures and instruction counts go to `measurements`, which critcmp ignores.
//! critcmp keys baselines by `name`, so each export gets a distinct one (baseline@commit).
//! Also the Bencher Metric Format ([`to_bmf`]), for users of that service.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::cost::Costs;
use crate::criterion::{read_json, Baseline, Benchmark, BenchmarkInfo, Estimates, Sample};
use crate::error::{Error, Result};
use crate::kind::{Kind, Unit};
use crate::machine::Machine;

/// Value of the `format` field identifying a bench-gate export.
pub const FORMAT: &str = "bench-gate-export";
/// Current export format version: 2 keeps non-time benchmarks out of `benchmarks`.
pub const VERSION: u32 = 2;
/// Versions this crate reads.
pub const READS: [u32; 2] = [1, 2];

/// Top level of an exported baseline file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportFile {
    /// Always [`FORMAT`]; absent in a plain critcmp export.
    #[serde(default)]
    pub format: Option<String>,
    /// Format version, [`VERSION`] when written by this crate.
    #[serde(default)]
    pub version: Option<u32>,
    /// Baseline name.
    pub name: String,
    /// Machine the baseline was measured on.
    #[serde(default)]
    pub machine: Option<Machine>,
    /// Time-valued benchmarks (unit `ns`) by full id: the part critcmp reads.
    pub benchmarks: BTreeMap<String, ExportedBenchmark>,
    /// Every other benchmark (bytes, ratios, instruction counts) by full id, out of critcmp's
    /// sight (version 2; a version 1 file has them in `benchmarks`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: BTreeMap<String, ExportedBenchmark>,
}

impl ExportFile {
    /// The same export under another name (top level and every benchmark's `baseline` and
    /// `fullname`, which critcmp shows).
    pub fn renamed(mut self, name: &str) -> ExportFile {
        self.name = name.to_string();
        for (id, b) in self
            .benchmarks
            .iter_mut()
            .chain(self.measurements.iter_mut())
        {
            b.baseline = name.to_string();
            b.fullname = format!("{name}/{id}");
        }
        self
    }

    /// Number of benchmarks in both parts.
    pub fn len(&self) -> usize {
        self.benchmarks.len() + self.measurements.len()
    }

    /// Whether the export holds no benchmark.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The name an export of `baseline` gets unless told otherwise: `baseline@<short commit>`, so
/// that exports of different commits never share critcmp's key; without a commit, the date.
pub fn export_name(baseline: &str, machine: &Machine) -> String {
    match &machine.git_commit {
        Some(commit) if !commit.is_empty() => {
            format!("{baseline}@{}", &commit[..commit.len().min(7)])
        }
        _ => format!(
            "{baseline}@{}",
            machine.date.split('T').next().unwrap_or(&machine.date)
        ),
    }
}

/// One benchmark in an export file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportedBenchmark {
    /// Baseline name (critcmp field).
    pub baseline: String,
    /// `<baseline>/<full id>` (critcmp field).
    pub fullname: String,
    /// Criterion's `benchmark.json`.
    pub criterion_benchmark_v1: BenchmarkInfo,
    /// Criterion's `estimates.json`; `slope` is always present because critcmp requires it.
    pub criterion_estimates_v1: Estimates,
    /// Criterion's `sample.json` (bench-gate extension; critcmp ignores it).
    #[serde(default)]
    pub criterion_sample_v1: Option<Sample>,
    /// Criterion's `tukey.json`, verbatim, when it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion_tukey_v1: Option<serde_json::Value>,
    /// Unit of the sample values.
    #[serde(default)]
    pub unit: Option<Unit>,
    /// True when Criterion saved no slope (flat sampling) and `slope` repeats the mean only to
    /// satisfy critcmp; import restores the missing slope.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slope_is_mean: bool,
}

/// Builds the export document of `baseline`, recording units from `config` and `machine`, named
/// by [`export_name`] (see [`ExportFile::renamed`] for another name).
pub fn to_export(baseline: &Baseline, config: &Config, machine: Machine) -> ExportFile {
    let name = export_name(&baseline.name, &machine);
    let (timed, other): (Vec<_>, Vec<_>) = baseline
        .benchmarks
        .iter()
        .map(|(id, b)| {
            let mut estimates = b.estimates.clone();
            let slope_is_mean = estimates.slope.is_none();
            if slope_is_mean {
                estimates.slope = Some(estimates.mean.clone());
            }
            let unit = b.unit.unwrap_or_else(|| config.kind_of(id).unit());
            let exported = ExportedBenchmark {
                baseline: name.clone(),
                fullname: format!("{name}/{id}"),
                criterion_benchmark_v1: b.info.clone(),
                criterion_estimates_v1: estimates,
                criterion_sample_v1: Some(b.sample.clone()),
                criterion_tukey_v1: b.tukey.clone(),
                unit: Some(unit),
                slope_is_mean,
            };
            (id.clone(), exported)
        })
        .partition(|(_, e)| e.unit == Some(Unit::Nanoseconds));
    ExportFile {
        format: Some(FORMAT.to_string()),
        version: Some(VERSION),
        name,
        machine: Some(machine),
        benchmarks: timed.into_iter().collect(),
        measurements: other.into_iter().collect(),
    }
}

/// Serialises `file` as pretty JSON.
pub fn to_json(file: &ExportFile) -> String {
    // Serialising plain data structs with string keys cannot fail.
    serde_json::to_string_pretty(file).unwrap_or_default()
}

/// Reads an exported baseline file, validating every benchmark's samples.
pub fn read(path: &Path) -> Result<Baseline> {
    let file: ExportFile = read_json(path)?;
    check_format(path, &file)?;
    if file.is_empty() {
        return Err(Error::invalid(path, "the export holds no benchmarks"));
    }
    if let Some((id, b)) = file.benchmarks.iter().find(|(_, b)| {
        b.unit.is_some_and(|u| u != Unit::Nanoseconds) && file.version == Some(VERSION)
    }) {
        return Err(Error::invalid(
            path,
            format!(
                "benchmark '{id}' is in `benchmarks` (read by critcmp as nanoseconds) but \
                 measured in {}; it belongs in `measurements`",
                b.unit.map_or("?".into(), |u| u.to_string())
            ),
        ));
    }
    let mut benchmarks = BTreeMap::new();
    for (id, exported) in file.benchmarks.into_iter().chain(file.measurements) {
        let bench = benchmark(path, &id, exported)?;
        if benchmarks.insert(id.clone(), bench).is_some() {
            return Err(Error::invalid(
                path,
                format!("benchmark '{id}' is both in `benchmarks` and in `measurements`"),
            ));
        }
    }
    Ok(Baseline {
        name: file.name,
        source: path.to_path_buf(),
        machine: file.machine,
        benchmarks,
    })
}

/// A file naming a format must name this one, in a version this crate reads.
fn check_format(path: &Path, file: &ExportFile) -> Result<()> {
    // Without `format` the file may be a plain critcmp export; that is caught later, by the
    // missing samples, with a message saying so.
    let Some(format) = &file.format else {
        return Ok(());
    };
    if format != FORMAT {
        return Err(Error::invalid(
            path,
            format!("unknown format '{format}', expected '{FORMAT}'"),
        ));
    }
    match file.version {
        Some(v) if READS.contains(&v) => Ok(()),
        Some(v) => Err(Error::invalid(
            path,
            format!(
                "unsupported export format version {v} (this bench-gate reads versions 1 and \
                 {VERSION})"
            ),
        )),
        None => Err(Error::invalid(
            path,
            format!("a '{FORMAT}' file without a `version` field"),
        )),
    }
}

/// One exported benchmark back as read from Criterion's files, its samples checked.
fn benchmark(path: &Path, id: &str, b: ExportedBenchmark) -> Result<Benchmark> {
    if b.criterion_benchmark_v1.full_id != id {
        return Err(Error::invalid(
            path,
            format!(
                "benchmark '{id}' has full_id '{}' in criterion_benchmark_v1",
                b.criterion_benchmark_v1.full_id
            ),
        ));
    }
    let sample = b.criterion_sample_v1.ok_or_else(|| {
        Error::invalid(
            path,
            format!(
                "benchmark '{id}' has no criterion_sample_v1 (raw samples); \
                 a plain critcmp export cannot be gated"
            ),
        )
    })?;
    // An instruction count is one exact value; anything else needs samples to test.
    let min_samples = if b.unit == Some(Unit::Instructions) {
        1
    } else {
        crate::criterion::MIN_SAMPLES
    };
    sample
        .validate_with(path, min_samples)
        .map_err(|e| Error::invalid(path, format!("benchmark '{id}': {}", strip_path(&e))))?;
    let mut estimates = b.criterion_estimates_v1;
    if b.slope_is_mean {
        estimates.slope = None;
    }
    Ok(Benchmark {
        info: b.criterion_benchmark_v1,
        estimates,
        sample,
        tukey: b.criterion_tukey_v1,
        unit: b.unit,
        source: path.to_path_buf(),
    })
}

fn strip_path(e: &Error) -> String {
    match e {
        Error::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Checks a baseline name can be used as a directory name inside Criterion's tree.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty()
        || name == "change"
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
    {
        return Err(format!(
            "'{name}' cannot be a baseline name (empty, 'change', or containing a path separator)"
        ));
    }
    Ok(())
}

/// Writes `baseline` into the Criterion directory `root` as baseline `name`, laid out exactly
/// as Criterion's `--save-baseline` does, so `cargo bench -- --baseline NAME` compares with it.
/// Instruction counts are not Criterion's to hold and are left out. Returns the number of
/// benchmarks written and the number left out.
pub fn import(baseline: &Baseline, root: &Path, name: &str) -> Result<(usize, usize)> {
    validate_name(name).map_err(|m| Error::invalid(&baseline.source, m))?;
    let (criterion, counts): (Vec<&Benchmark>, Vec<&Benchmark>) = baseline
        .benchmarks
        .values()
        .partition(|b| b.unit != Some(Unit::Instructions));
    for bench in &criterion {
        let rel = Path::new(&bench.info.directory_name);
        let escapes = rel.components().any(|c| !matches!(c, Component::Normal(_)));
        if escapes || bench.info.directory_name.is_empty() {
            return Err(Error::invalid(
                &baseline.source,
                format!(
                    "benchmark '{}' has unsafe directory_name '{}'",
                    bench.info.full_id, bench.info.directory_name
                ),
            ));
        }
    }
    for bench in &criterion {
        let dir = root.join(&bench.info.directory_name).join(name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_json(&dir.join("benchmark.json"), &bench.info)?;
        write_json(&dir.join("estimates.json"), &bench.estimates)?;
        write_json(&dir.join("sample.json"), &bench.sample)?;
        if let Some(tukey) = &bench.tukey {
            write_json(&dir.join("tukey.json"), tukey)?;
        }
    }
    Ok((criterion.len(), counts.len()))
}

/// One benchmark's value in the Bencher Metric Format: the mean in its unit, and the range of
/// its samples when they vary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BmfMetric {
    /// The mean, in the measure's unit.
    pub value: f64,
    /// The lowest sample, when the samples vary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_value: Option<f64>,
    /// The highest sample, when the samples vary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_value: Option<f64>,
}

/// Bencher's measure (its slug) for a kind: its built-in `latency` (ns) and `throughput` (ops/s),
/// and measures of their own for the rest (Bencher creates a measure on first use).
pub fn bmf_measure(kind: Kind, unit: crate::kind::DisplayUnit) -> &'static str {
    use crate::kind::DisplayUnit;
    match (kind, unit) {
        (Kind::Throughput, DisplayUnit::BytesPerSec) => "throughput-bytes",
        (Kind::Throughput, DisplayUnit::BitsPerSec) => "throughput-bits",
        (Kind::Throughput, _) => "throughput",
        (Kind::Latency, _) => "latency",
        (Kind::Footprint, _) => "footprint-bytes",
        (Kind::Instructions, _) => "instructions",
        (Kind::Quality, _) => "quality",
    }
}

/// The Bencher Metric Format document of `baseline`: `{id: {measure: {value, lower_value,
/// upper_value}}}`, each benchmark read as the kind `config` gives it.
pub fn to_bmf(
    baseline: &Baseline,
    config: &Config,
) -> Result<BTreeMap<String, BTreeMap<String, BmfMetric>>> {
    let mut out = BTreeMap::new();
    for (id, bench) in &baseline.benchmarks {
        let kind = config.kind_of(id);
        let costs = Costs::of(bench, kind)?;
        let shown: Vec<f64> = costs
            .values
            .iter()
            .map(|&c| costs.unit.from_cost(c))
            .collect();
        let (lo, hi) = shown
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let varies = lo < hi;
        let metric = BmfMetric {
            value: costs.shown_mean(),
            lower_value: varies.then_some(lo),
            upper_value: varies.then_some(hi),
        };
        let measure = bmf_measure(kind, costs.unit).to_string();
        out.insert(id.clone(), BTreeMap::from([(measure, metric)]));
    }
    Ok(out)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|e| Error::json(path, e))?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}
