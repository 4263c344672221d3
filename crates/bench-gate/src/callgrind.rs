//! Instruction counts recorded by valgrind's callgrind through gungraun (the memory-bench suite's
//! `benches/instructions.rs`): one benchmark per directory of gungraun's output tree, one count
//! per saved baseline, read from callgrind's own output files (`callgrind.*.out.base@NAME`, one
//! per thread or part, whose `totals:` lines add up).
//!
//! A count is meant to be deterministic, but it is not always: the same executable has counted
//! 5% fewer instructions in one run of a busy machine than in eight later ones, and searches vary
//! by 0.1-0.3% from run to run. So a side may be counted more than once: its later counts are
//! saved as baselines `NAME_repeat2`, `NAME_repeat3`, ... ([`repeat_name`]) and load as further
//! samples of `NAME`'s benchmarks, whose spread the verdict then allows for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::criterion::{Benchmark, BenchmarkInfo, ConfidenceInterval, Estimate, Estimates, Sample};
use crate::error::{Error, Result};
use crate::kind::Unit;

/// The event whose count a benchmark reports: instructions executed (`Ir`).
pub const EVENT: &str = "Ir";

/// What every instruction-count id starts with (the default rule of kind `instructions`).
pub const ID_PREFIX: &str = "instructions/";

/// What separates a baseline's name from the number of a repeated count (see [`repeat_name`]).
/// gungraun's file names end the baseline name at the first `.` or `-`, so it cannot be `-r` as
/// for Criterion's rounds.
pub const REPEAT_INFIX: &str = "_repeat";

/// The baseline name of count `k` of baseline `name`: `name` itself for the first, then
/// `base_repeat2`, `base_repeat3`, ...
pub fn repeat_name(name: &str, k: usize) -> String {
    if k <= 1 {
        name.to_string()
    } else {
        format!("{name}{REPEAT_INFIX}{k}")
    }
}

/// The count number of baseline `baseline` as a count of `name`: 1 for `name` itself, k for
/// [`repeat_name`]`(name, k)` with k >= 2, `None` for any other baseline.
fn count_of(baseline: &str, name: &str) -> Option<usize> {
    if baseline == name {
        return Some(1);
    }
    let k = baseline.strip_prefix(name)?.strip_prefix(REPEAT_INFIX)?;
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || k.starts_with('0') {
        return None;
    }
    k.parse().ok().filter(|&k| k >= 2)
}

/// The baseline a repeated count belongs to: `base` for `base_repeat2`; any other name is its
/// own.
fn counted_baseline(baseline: &str) -> &str {
    match baseline.rsplit_once(REPEAT_INFIX) {
        Some((name, _)) if !name.is_empty() && count_of(baseline, name).is_some() => name,
        _ => baseline,
    }
}

/// Loads the instruction counts saved under baseline `name` (`--save-baseline=NAME`) in the
/// gungraun output directory `root`, keyed by benchmark id, with the repeated counts saved as
/// [`repeat_name`]`(name, k)` as further samples. No directory, or no count of that baseline, is
/// an empty map: the caller decides whether counts were expected. A benchmark with repeated
/// counts but none under `name` itself is an error (a first count that crashed).
///
/// A benchmark's id is `instructions/<group>/<function>/<case>` from the last two levels of
/// gungraun's tree, `<group>/<function>.<case>`: `memory-bench/instructions/counted/ltm/get.n1000`
/// is `instructions/ltm/get/n1000`. (What lies above them, the package directory when run by
/// cargo and the module path, varies with how the bench was started.)
pub fn load(root: &Path, name: &str) -> Result<BTreeMap<String, Benchmark>> {
    let mut out = BTreeMap::new();
    if !root.is_dir() {
        return Ok(out);
    }
    for (dir, counts) in baseline_files(root, name)? {
        let id = benchmark_id(root, &dir)?;
        if !counts.contains_key(&1) {
            let repeats: Vec<String> = counts.keys().map(|&k| repeat_name(name, k)).collect();
            return Err(Error::invalid(
                &dir,
                format!(
                    "benchmark '{id}' was counted again ({}) but has no first count in baseline \
                     '{name}': did that run crash?",
                    repeats.join(", ")
                ),
            ));
        }
        let mut per_count = Vec::with_capacity(counts.len());
        for (k, files) in &counts {
            let mut total: u64 = 0;
            for file in files {
                total = total.saturating_add(totals(file)?);
            }
            if total == 0 {
                let baseline = repeat_name(name, *k);
                return Err(Error::invalid(
                    &dir,
                    format!(
                        "benchmark '{id}' counted no instructions in baseline '{baseline}': \
                         nothing ran inside the measured function, or callgrind collected nothing"
                    ),
                ));
            }
            per_count.push(total);
        }
        let bench = benchmark(&id, &dir, root, &per_count);
        if out.insert(id.clone(), bench).is_some() {
            return Err(Error::invalid(
                &dir,
                format!("benchmark id '{id}' found twice in {}", root.display()),
            ));
        }
    }
    Ok(out)
}

/// Names of the baselines with instruction counts under `root`, and their benchmark counts. A
/// repeated count is listed as the baseline it repeats (`base_repeat2` as `base`).
pub fn list(root: &Path) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut by_dir: BTreeMap<(PathBuf, String), ()> = BTreeMap::new();
    walk(root, &mut |path| {
        if let Some(name) = file_name(path).and_then(baseline_of) {
            if let Some(dir) = path.parent() {
                by_dir.insert((dir.to_path_buf(), counted_baseline(&name).to_string()), ());
            }
        }
    })?;
    for (_, name) in by_dir.into_keys() {
        *out.entry(name).or_insert(0) += 1;
    }
    Ok(out)
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

/// The baseline of a callgrind output file name `callgrind.<bench>.out.base@<NAME>[suffix]`,
/// where the suffix is a process (`.#123`), a part (`.2`) or a thread (`-02`).
fn baseline_of(file: &str) -> Option<String> {
    if !file.starts_with("callgrind.") {
        return None;
    }
    let (_, rest) = file.split_once(".out.base@")?;
    let end = rest.find(['.', '-']).unwrap_or(rest.len());
    let (name, suffix) = rest.split_at(end);
    let suffix_ok = suffix.split(['.', '-']).skip(1).all(|part| {
        let part = part.strip_prefix('#').unwrap_or(part);
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
    });
    (suffix_ok && !name.is_empty()).then(|| name.to_string())
}

/// Directories holding output files of baseline `name` or its repeated counts, with those
/// files by count number (1 for `name` itself).
fn baseline_files(
    root: &Path,
    name: &str,
) -> Result<BTreeMap<PathBuf, BTreeMap<usize, Vec<PathBuf>>>> {
    let mut out: BTreeMap<PathBuf, BTreeMap<usize, Vec<PathBuf>>> = BTreeMap::new();
    walk(root, &mut |path| {
        let count = file_name(path)
            .and_then(baseline_of)
            .and_then(|b| count_of(&b, name));
        if let (Some(k), Some(dir)) = (count, path.parent()) {
            out.entry(dir.to_path_buf())
                .or_default()
                .entry(k)
                .or_default()
                .push(path.to_path_buf());
        }
    })?;
    Ok(out)
}

fn walk(root: &Path, visit: &mut dyn FnMut(&Path)) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if file_type.is_dir() {
                stack.push(path);
            } else {
                visit(&path);
            }
        }
    }
    Ok(())
}

/// The `Ir` count of one callgrind output file: its `totals:` line (or the `summary:` line of
/// the header), in the column the `events:` line gives `Ir`.
pub fn totals(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_totals(&text).map_err(|message| Error::invalid(path, message))
}

/// [`totals`] of a file's text.
pub fn parse_totals(text: &str) -> std::result::Result<u64, String> {
    let mut column = None;
    let mut summary = None;
    let mut totals = None;
    for line in text.lines() {
        if let Some(events) = line.strip_prefix("events:") {
            column = events.split_whitespace().position(|e| e == EVENT);
            if column.is_none() {
                return Err(format!(
                    "callgrind counted no '{EVENT}' event (events: {})",
                    events.trim()
                ));
            }
        } else if let Some(v) = line.strip_prefix("summary:") {
            summary = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("totals:") {
            totals = Some(v.to_string());
        }
    }
    let column = column.ok_or("not a callgrind output file: no `events:` line")?;
    let values = totals
        .or(summary)
        .ok_or("truncated callgrind output: no `totals:` or `summary:` line")?;
    // A trailing zero count may be left out, so a missing column is zero.
    match values.split_whitespace().nth(column) {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| format!("'{v}' is not an instruction count")),
    }
}

/// The gate's id of the benchmark in `dir` (see [`load`]): its group directory and its own.
fn benchmark_id(root: &Path, dir: &Path) -> Result<String> {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let [.., group, bench] = parts.as_slice() else {
        return Err(Error::invalid(
            dir,
            "not a gungraun benchmark directory (expected .../<group>/<function>[.<case>])",
        ));
    };
    Ok(match bench.split_once('.') {
        Some((function, case)) => format!("{ID_PREFIX}{group}/{function}/{case}"),
        None => format!("{ID_PREFIX}{group}/{bench}"),
    })
}

/// Counts of one benchmark as a benchmark: a sample of one iteration per count, the estimates
/// their mean (with their range as its interval).
fn benchmark(id: &str, dir: &Path, root: &Path, counts: &[u64]) -> Benchmark {
    let values: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    let mean = crate::stats::mean(&values);
    let (lo, hi) = crate::stats::range(&values);
    let exact = || Estimate {
        confidence_interval: ConfidenceInterval {
            confidence_level: 0.95,
            lower_bound: lo,
            upper_bound: hi,
        },
        point_estimate: mean,
        standard_error: 0.0,
    };
    let zero = || Estimate {
        confidence_interval: ConfidenceInterval {
            confidence_level: 0.95,
            lower_bound: 0.0,
            upper_bound: 0.0,
        },
        point_estimate: 0.0,
        standard_error: 0.0,
    };
    let (group, function) = id.rsplit_once('/').unwrap_or(("instructions", id));
    Benchmark {
        info: BenchmarkInfo {
            group_id: group.to_string(),
            function_id: Some(function.to_string()),
            value_str: None,
            throughput: None,
            full_id: id.to_string(),
            directory_name: dir
                .strip_prefix(root)
                .unwrap_or(dir)
                .to_string_lossy()
                .into_owned(),
            title: None,
        },
        estimates: Estimates {
            mean: exact(),
            median: exact(),
            median_abs_dev: zero(),
            slope: Some(exact()),
            std_dev: zero(),
        },
        sample: Sample {
            sampling_mode: "Flat".into(),
            iters: vec![1.0; values.len()],
            times: values,
        },
        tukey: None,
        unit: Some(Unit::Instructions),
        source: dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\n\
        cmd: bench --gungraun-run\npart: 1\n\npositions: line\nevents: Ir\nsummary: 3456\n\n\
        fn=(1) main\n0 3456\n\ntotals: 3456\n";

    #[test]
    fn totals_come_from_the_ir_column() {
        assert_eq!(parse_totals(OUT), Ok(3456));
        let two = "events: Dr Ir Dw\nsummary: 1 2 3\ntotals: 10 20 30\n";
        assert_eq!(parse_totals(two), Ok(20));
        assert_eq!(parse_totals("events: Ir\nsummary: 5\n"), Ok(5));
        assert!(parse_totals("events: Ir\n")
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_totals("totals: 5\n")
            .unwrap_err()
            .contains("no `events:`"));
        assert!(parse_totals("events: Dr\ntotals: 5\n")
            .unwrap_err()
            .contains("'Ir'"));
        assert!(parse_totals("events: Ir\ntotals: x\n").is_err());
    }

    #[test]
    fn baseline_names_come_from_the_file_suffix() {
        let of = |f: &str| baseline_of(f);
        assert_eq!(
            of("callgrind.get.n2000.out.base@head").as_deref(),
            Some("head")
        );
        assert_eq!(
            of("callgrind.get.n2000.out.base@head-02").as_deref(),
            Some("head")
        );
        assert_eq!(
            of("callgrind.get.out.base@base.#123.2-01").as_deref(),
            Some("base")
        );
        assert_eq!(of("callgrind.get.out.base@base.json"), None);
        assert_eq!(of("callgrind.get.out"), None);
        assert_eq!(of("callgrind.get.out.old"), None);
        assert_eq!(of("callgrind.get.log.base@head"), None);
        assert_eq!(of("summary.json"), None);
    }

    #[test]
    fn a_baseline_is_the_sum_of_its_thread_files_and_ids_follow_the_tree() {
        let root = tempfile::tempdir().unwrap();
        let bench = root
            .path()
            .join("memory-bench/instructions/counted/ltm/get.n2000");
        std::fs::create_dir_all(&bench).unwrap();
        let write = |name: &str, n: u64| {
            let text = format!("events: Ir\nsummary: {n}\ntotals: {n}\n");
            std::fs::write(bench.join(name), text).unwrap();
        };
        // gungraun 0.20's names: thread and part before `.out`.
        write("callgrind.get.n2000.t1.p1.out.base@head", 1_000);
        write("callgrind.get.n2000.t2.p1.out.base@head", 0);
        write("callgrind.get.n2000.t1.p1.out.base@base", 900);
        write("callgrind.get.n2000.t1.p1.out.old", 5);
        std::fs::write(bench.join("callgrind.get.n2000.log.base@head"), "log").unwrap();
        let head = load(root.path(), "head").unwrap();
        let b = &head["instructions/ltm/get/n2000"];
        assert_eq!(b.sample.times, [1_000.0]);
        assert_eq!(b.unit, Some(Unit::Instructions));
        assert_eq!(load(root.path(), "base").unwrap().len(), 1);
        assert!(load(root.path(), "other").unwrap().is_empty());
        let listed = list(root.path()).unwrap();
        assert_eq!(listed.get("head"), Some(&1));
        assert_eq!(listed.get("base"), Some(&1));
    }

    #[test]
    fn repeated_counts_belong_to_their_baseline() {
        assert_eq!(count_of("base", "base"), Some(1));
        assert_eq!(count_of("base_repeat2", "base"), Some(2));
        assert_eq!(count_of("base_repeat12", "base"), Some(12));
        for other in [
            "base_repeat1",
            "base_repeat02",
            "base_repeat",
            "base_repeatx",
            "based",
        ] {
            assert_eq!(count_of(other, "base"), None, "{other}");
        }
        assert_eq!(counted_baseline("head_repeat3"), "head");
        assert_eq!(counted_baseline("head"), "head");
        assert_eq!(counted_baseline("head_repeat1"), "head_repeat1");
        assert_eq!(counted_baseline("_repeat2"), "_repeat2");
        assert_eq!(repeat_name("base", 2), "base_repeat2");
        assert_eq!(repeat_name("base", 1), "base");

        let root = tempfile::tempdir().unwrap();
        let bench = root
            .path()
            .join("memory-bench/instructions/counted/stm/append.s64");
        std::fs::create_dir_all(&bench).unwrap();
        for (name, n) in [
            ("base", 5_902),
            ("base_repeat2", 6_216),
            ("base_repeat3", 6_225),
        ] {
            let text = format!("events: Ir\ntotals: {n}\n");
            std::fs::write(
                bench.join(format!("callgrind.append.s64.out.base@{name}")),
                text,
            )
            .unwrap();
        }
        let base = load(root.path(), "base").unwrap();
        let b = &base["instructions/stm/append/s64"];
        assert_eq!(b.sample.times, [5_902.0, 6_216.0, 6_225.0]);
        assert_eq!(b.sample.iters, [1.0; 3]);
        assert_eq!(
            b.estimates.mean.point_estimate,
            (5_902.0 + 6_216.0 + 6_225.0) / 3.0
        );
        assert_eq!(b.estimates.mean.confidence_interval.lower_bound, 5_902.0);
        assert_eq!(b.estimates.mean.confidence_interval.upper_bound, 6_225.0);
        let listed = list(root.path()).unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed.get("base"), Some(&1));
        // A repeat loaded by its own name is one count.
        assert_eq!(
            load(root.path(), "base_repeat2").unwrap()["instructions/stm/append/s64"]
                .sample
                .times,
            [6_216.0]
        );
    }

    #[test]
    fn a_count_of_zero_is_an_error_naming_the_benchmark() {
        let root = tempfile::tempdir().unwrap();
        let bench = root.path().join("instructions/g/f.x");
        std::fs::create_dir_all(&bench).unwrap();
        std::fs::write(
            bench.join("callgrind.f.x.out.base@b"),
            "events: Ir\ntotals: 0\n",
        )
        .unwrap();
        let err = load(root.path(), "b").unwrap_err().to_string();
        assert!(
            err.contains("instructions/g/f/x") && err.contains("no instructions"),
            "{err}"
        );
    }
}
