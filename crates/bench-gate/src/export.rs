//! The export format: one JSON file per baseline holding, per benchmark, Criterion's
//! `benchmark.json`, `estimates.json`, `sample.json` and `tukey.json`, the unit, and the machine.
//! It is a superset of `critcmp --export` (same top-level `name`/`benchmarks` and per-benchmark
//! `baseline`/`fullname`/`criterion_benchmark_v1`/`criterion_estimates_v1`), so critcmp reads it.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::criterion::{read_json, Baseline, Benchmark, BenchmarkInfo, Estimates, Sample};
use crate::error::{Error, Result};
use crate::kind::Unit;
use crate::machine::Machine;

/// Value of the `format` field identifying a bench-gate export.
pub const FORMAT: &str = "bench-gate-export";
/// Current export format version.
pub const VERSION: u32 = 1;

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
    /// Benchmarks by full id.
    pub benchmarks: BTreeMap<String, ExportedBenchmark>,
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

/// Builds the export document of `baseline`, recording units from `config` and `machine`.
pub fn to_export(baseline: &Baseline, config: &Config, machine: Machine) -> ExportFile {
    let benchmarks = baseline
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
                baseline: baseline.name.clone(),
                fullname: format!("{}/{}", baseline.name, id),
                criterion_benchmark_v1: b.info.clone(),
                criterion_estimates_v1: estimates,
                criterion_sample_v1: Some(b.sample.clone()),
                criterion_tukey_v1: b.tukey.clone(),
                unit: Some(unit),
                slope_is_mean,
            };
            (id.clone(), exported)
        })
        .collect();
    ExportFile {
        format: Some(FORMAT.to_string()),
        version: Some(VERSION),
        name: baseline.name.clone(),
        machine: Some(machine),
        benchmarks,
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
    if file.benchmarks.is_empty() {
        return Err(Error::invalid(path, "the export holds no benchmarks"));
    }
    let benchmarks = file
        .benchmarks
        .into_iter()
        .map(|(id, exported)| Ok((id.clone(), benchmark(path, &id, exported)?)))
        .collect::<Result<_>>()?;
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
        Some(VERSION) => Ok(()),
        Some(v) => Err(Error::invalid(
            path,
            format!(
                "unsupported export format version {v} (this bench-gate reads version {VERSION})"
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
    sample
        .validate(path)
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
/// Returns the number of benchmarks written.
pub fn import(baseline: &Baseline, root: &Path, name: &str) -> Result<usize> {
    validate_name(name).map_err(|m| Error::invalid(&baseline.source, m))?;
    for bench in baseline.benchmarks.values() {
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
    for bench in baseline.benchmarks.values() {
        let dir = root.join(&bench.info.directory_name).join(name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_json(&dir.join("benchmark.json"), &bench.info)?;
        write_json(&dir.join("estimates.json"), &bench.estimates)?;
        write_json(&dir.join("sample.json"), &bench.sample)?;
        if let Some(tukey) = &bench.tukey {
            write_json(&dir.join("tukey.json"), tukey)?;
        }
    }
    Ok(baseline.benchmarks.len())
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|e| Error::json(path, e))?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}
