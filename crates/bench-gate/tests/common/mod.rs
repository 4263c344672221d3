//! Shared by the HTML page tests (and, for the quality baseline writer, the CLI tests): a
//! scratch copy of the fixture Criterion directory (real output of `examples/fixture_bench.rs`),
//! the binary run inside it, and a history of ten exports built from the fixture baselines, with
//! real commits of a scratch git repository.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

pub const SPIN_SMALL: &str = "latency/fixture/spin_small";
pub const SPIN_LARGE: &str = "latency/fixture/spin_large";
pub const BATCH: &str = "throughput/fixture/batch/64";
pub const STRINGS: &str = "footprint/fixture/strings/1000";
/// The quality benchmark [`Scratch::quality`] writes (kind `quality` by its prefix).
pub const QUALITY: &str = "quality/fixture/r@10";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A scratch directory holding a copy of the fixtures under `criterion/`; commands run there,
/// so no `bench-gate.toml` of the repository is picked up.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixtures(), &dir.path().join("criterion"));
        Scratch { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Copies fixture baseline `from` as baseline `to` (every benchmark's `<dir>/from/`), e.g.
    /// to lay out interleaved rounds `base-r1`, `base-r2`, ... from the fixtures.
    pub fn copy_baseline(&self, from: &str, to: &str) {
        let mut stack = vec![self.path("criterion")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if !path.is_dir() {
                    continue;
                }
                if path.file_name().unwrap() == from && path.join("benchmark.json").is_file() {
                    copy_dir(&path, &dir.join(to));
                } else {
                    stack.push(path);
                }
            }
        }
    }

    pub fn crit(&self) -> String {
        self.path("criterion").display().to_string()
    }

    /// Writes baseline `name` of the quality benchmark [`QUALITY`] (see [`write_quality`]).
    pub fn quality(&self, name: &str, value: f64, samples: usize) {
        write_quality(&self.path("criterion"), name, value, samples);
    }

    /// Runs the binary with `args` in `cwd` (the scratch directory when `None`).
    pub fn run_in(&self, cwd: Option<&Path>, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bench-gate"))
            .args(args)
            .current_dir(cwd.unwrap_or(self.dir.path()))
            .env_remove("CRITERION_HOME")
            .env_remove("CARGO_TARGET_DIR")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(None, args)
    }

    /// Exports fixture baseline `name` and returns the parsed file.
    pub fn export(&self, name: &str) -> Value {
        let file = self.path(&format!("{name}.json"));
        let crit = self.crit();
        let out = self.run(&["export", name, "--criterion-dir", &crit, "-o", path(&file)]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
    }

    /// `report BASE NEW --html FILE` on the fixtures; returns the exit code and the page.
    pub fn report(&self, base: &str, new: &str, html: &Path) -> (i32, String) {
        let crit = self.crit();
        let out = self.run(&[
            "report",
            base,
            new,
            "--criterion-dir",
            &crit,
            "--html",
            path(html),
        ]);
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 2, "{}", stderr(&out));
        (code, std::fs::read_to_string(html).unwrap())
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One export of the made-up history: which fixture baseline each benchmark comes from, and a
/// factor applied to every sample (a drift of a fraction of a percent).
struct Commit {
    parts: [(&'static str, &'static str); 4],
    factor: f64,
    /// Benchmark left out of this export.
    without: Option<&'static str>,
}

const fn commit(
    small: &'static str,
    large: &'static str,
    batch: &'static str,
    strings: &'static str,
    factor: f64,
) -> Commit {
    Commit {
        parts: [
            (SPIN_SMALL, small),
            (SPIN_LARGE, large),
            (BATCH, batch),
            (STRINGS, strings),
        ],
        factor,
        without: None,
    }
}

/// Ten commits: drift only, then spin_small slows by 25% at #5 (a step for the worse),
/// strings grow by 50% at #7 (worse), spin_large speeds up by 30% at #8 (better), and the
/// throughput benchmark is missing from #9.
fn commits() -> Vec<Commit> {
    let mut c = vec![
        commit("base", "base", "base", "base", 1.0),
        commit("same", "same", "same", "same", 1.0),
        commit("base", "base", "base", "base", 1.005),
        commit("same", "same", "same", "same", 0.995),
        commit("slow25", "base", "base", "base", 1.0),
        commit("slow25", "same", "same", "same", 1.003),
        commit("slow25", "base", "base", "fat", 1.0),
        commit("slow25", "fast30", "base", "fat", 1.0),
        commit("slow25", "fast30", "same", "fat", 1.002),
        commit("slow25", "fast30", "same", "fat", 0.998),
    ];
    c[8].without = Some(BATCH);
    c
}

/// What [`ten_exports`] made.
pub struct TenExports {
    /// The export files, in an order that is neither commit nor export order.
    pub files: Vec<PathBuf>,
    /// The git repository holding the commits (run `history` there to order by commit date).
    pub repo: PathBuf,
    /// Commit hashes, oldest commit first.
    pub commits: Vec<String>,
}

fn git(repo: &Path, args: &[&str], date: Option<&str>) -> String {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args);
    if let Some(d) = date {
        cmd.env("GIT_AUTHOR_DATE", d).env("GIT_COMMITTER_DATE", d);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// Ten exports built from the fixture baselines (see [`commits`]), each naming a real commit of
/// a scratch git repository; commits are a day apart, exports are dated in reverse order, and
/// file names sort in a third order, so only the commit date puts them right.
pub fn ten_exports(scratch: &Scratch) -> TenExports {
    let sources: Vec<(&str, Value)> = ["base", "same", "slow25", "fast30", "fat"]
        .into_iter()
        .map(|n| (n, scratch.export(n)))
        .collect();
    let source = |name: &str| &sources.iter().find(|(n, _)| *n == name).unwrap().1;
    let repo = scratch.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"], None);
    let mut hashes = Vec::new();
    for i in 0..10 {
        let date = format!("2026-11-{:02}T12:00:00Z", 10 + i);
        git(
            &repo,
            &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")],
            Some(&date),
        );
        hashes.push(git(&repo, &["rev-parse", "HEAD"], None));
    }
    let dir = scratch.path("exports");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (i, c) in commits().iter().enumerate() {
        let name = format!("main-{}", &hashes[i][..7]);
        let mut machine = source("base")["machine"].clone();
        machine["git_commit"] = json!(hashes[i]);
        machine["date"] = json!(format!("2026-12-{:02}T08:00:00Z", 20 - i));
        let mut benchmarks = serde_json::Map::new();
        for (id, from) in c.parts {
            if c.without == Some(id) {
                continue;
            }
            // Format 2 keeps non-time benchmarks (footprint) under `measurements`; these files
            // are written as format 1, which holds every benchmark under `benchmarks`.
            let exported = &source(from);
            let mut b = match &exported["benchmarks"][id] {
                Value::Null => exported["measurements"][id].clone(),
                b => b.clone(),
            };
            assert!(b.is_object(), "{from} has no {id}");
            b["baseline"] = json!(name);
            b["fullname"] = json!(format!("{name}/{id}"));
            let times = b["criterion_sample_v1"]["times"].as_array_mut().unwrap();
            for t in times.iter_mut() {
                *t = json!(t.as_f64().unwrap() * c.factor);
            }
            benchmarks.insert(id.to_string(), b);
        }
        let file = json!({
            "format": "bench-gate-export",
            "version": 1,
            "name": name,
            "machine": machine,
            "benchmarks": benchmarks,
        });
        // Names that sort neither by commit nor by export date.
        let path = dir.join(format!("export-{}.json", (i * 7) % 10));
        std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
        files.push(path);
    }
    files.sort();
    TenExports {
        files,
        repo,
        commits: hashes,
    }
}

/// The value of attribute `name` in the opening tag `tag` (`data-id="..."` -> `...`), unescaped.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = start + tag[start..].find('"')?;
    Some(unescape(&tag[start..end]))
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Each `<article ...>...</article>` of a page: (opening tag, whole element).
pub fn cards(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<article ") {
        let after = &rest[start..];
        let tag_end = after.find('>').unwrap();
        let end = after.find("</article>").unwrap() + "</article>".len();
        out.push((after[..=tag_end].to_string(), after[..end].to_string()));
        rest = &after[end..];
    }
    out
}

/// Writes baseline `name` of the quality benchmark [`QUALITY`] under the Criterion directory
/// `criterion`: a constant share `value` in every sample, as the suite's ratio measurement
/// records it (per-iteration values off by an ulp, as Criterion's own division of large
/// iteration counts leaves them).
pub fn write_quality(criterion: &Path, name: &str, value: f64, samples: usize) {
    let dir = criterion.join("quality_fixture/r10").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let info = json!({"group_id": "quality/fixture", "function_id": "r@10",
        "value_str": null, "throughput": null, "full_id": QUALITY,
        "directory_name": "quality_fixture/r10", "title": QUALITY});
    let est = |v: f64| {
        json!({"confidence_interval": {"confidence_level": 0.95,
        "lower_bound": v, "upper_bound": v}, "point_estimate": v, "standard_error": 0.0})
    };
    let estimates = json!({"mean": est(value), "median": est(value),
        "median_abs_dev": est(0.0), "slope": est(value), "std_dev": est(0.0)});
    let iters: Vec<f64> = (1..=samples).map(|i| (i as f64) * 9_000_001.0).collect();
    let times: Vec<f64> = iters.iter().map(|n| value * n).collect();
    let sample = json!({"sampling_mode": "Linear", "iters": iters, "times": times});
    std::fs::write(dir.join("benchmark.json"), info.to_string()).unwrap();
    std::fs::write(dir.join("estimates.json"), estimates.to_string()).unwrap();
    std::fs::write(dir.join("sample.json"), sample.to_string()).unwrap();
}
