//! End-to-end tests of the `bench-gate` binary on fixture Criterion directories produced by real
//! Criterion runs of `examples/fixture_bench.rs` (see `scripts/regenerate-fixtures.sh`):
//! `base` and `same` are the same code; `slow25` slows `latency/fixture/spin_small` by 25%;
//! `fast30` speeds `latency/fixture/spin_large` up by 30%; `tput_drop` slows the throughput
//! benchmark by 25% (-20% ops/s); `fat` grows the footprint benchmark's strings by 50%.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SPIN_SMALL: &str = "latency/fixture/spin_small";
const SPIN_LARGE: &str = "latency/fixture/spin_large";
const BATCH: &str = "throughput/fixture/batch/64";
const STRINGS: &str = "footprint/fixture/strings/1000";
const QUALITY: &str = "quality/fixture/r@10";

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

/// A scratch workspace: a copy of the fixtures under `criterion/`, used as the working directory
/// so no `bench-gate.toml` of the repository is picked up.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixtures(), &dir.path().join("criterion"));
        Scratch { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn crit(&self) -> String {
        self.path("criterion").display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bench-gate"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("CRITERION_HOME")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("GUNGRAUN_HOME")
            .env("NO_COLOR", "1");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Exports the fixture baseline `name` to `<name>.json` in the scratch directory.
    fn export(&self, name: &str) -> PathBuf {
        let file = self.path(&format!("{name}.json"));
        let crit = self.crit();
        let out = self.run(&[
            "export",
            name,
            "--criterion-dir",
            &crit,
            "-o",
            &file.display().to_string(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "export {name}: {}",
            stderr(&out)
        );
        file
    }

    /// Writes `config` to the file `name` and checks the fixture baseline `base` against it.
    fn slo_with(&self, name: &str, config: &str, extra: &[&str]) -> Output {
        std::fs::write(self.path(name), config).unwrap();
        let crit = self.crit();
        let mut args = vec!["slo", "base", "--criterion-dir", &crit, "--config", name];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Writes a config whose only entry overrides the threshold of benchmark `id`; returns its path.
    fn threshold_override(&self, id: &str, threshold_pct: u32) -> String {
        let path = self.path(&format!("override-{threshold_pct}.toml"));
        let text = format!("[[override]]\nid = \"{id}\"\nthreshold = {threshold_pct}\n");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn compare_json(&self, base: &str, new: &str, extra: &[&str]) -> (i32, Value) {
        let crit = self.crit();
        let mut args = vec![
            "compare",
            base,
            new,
            "--criterion-dir",
            &crit,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let code = out.status.code().unwrap();
        assert!(
            code == 0 || code == 2,
            "compare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (code, serde_json::from_slice(&out.stdout).unwrap())
    }
}

impl Scratch {
    /// Copies fixture baseline `from` as baseline `to` (every benchmark's `<dir>/from/`).
    fn copy_baseline(&self, from: &str, to: &str) {
        let root = self.path("criterion");
        let mut stack = vec![root];
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

    /// Three rounds per side, sides `old` and `pr` (names without a single run: the fixtures
    /// hold a baseline called `base`): `old` rounds from `base`, `same`, `base` (the same code),
    /// `pr` rounds from `head` three times.
    fn rounds(&self, head: &str) {
        self.copy_baseline("base", "old-r1");
        self.copy_baseline("same", "old-r2");
        self.copy_baseline("base", "old-r3");
        for k in 1..=3 {
            self.copy_baseline(head, &format!("pr-r{k}"));
        }
    }

    /// Writes baseline `name` of the quality benchmark [`QUALITY`] (see
    /// [`common::write_quality`]).
    fn quality(&self, name: &str, value: f64, samples: usize) {
        common::write_quality(&self.path("criterion"), name, value, samples);
    }

    /// Writes a callgrind output file of baseline `name` for gungraun benchmark `bench` (path
    /// under the package directory) counting `ir` instructions.
    fn count(&self, bench: &str, name: &str, ir: u64) {
        let dir = self.path("gungraun/memory-bench").join(bench);
        std::fs::create_dir_all(&dir).unwrap();
        let leaf = bench.rsplit('/').next().unwrap();
        let file = format!("callgrind.{leaf}.t1.p1.out.base@{name}");
        let text = format!("events: Ir\nsummary: {ir}\n\nfn=main\n0 {ir}\ntotals: {ir}\n");
        std::fs::write(dir.join(file), text).unwrap();
    }
}

/// The row of benchmark `id` in a JSON report.
fn row<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row '{id}' in {report}"))
}

fn verdicts(report: &Value) -> Vec<(String, String)> {
    report["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_string(),
                b["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ids_with(report: &Value, verdict: &str) -> Vec<String> {
    verdicts(report)
        .into_iter()
        .filter(|(_, v)| v == verdict)
        .map(|(id, _)| id)
        .collect()
}

fn find_row<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("no row for {id}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn same_code_twice_passes_with_exit_0() {
    let s = Scratch::new();
    let (code, report) = s.compare_json("base", "same", &[]);
    assert_eq!(code, 0);
    assert_eq!(report["schema"], "bench-gate/compare");
    assert_eq!(report["version"], 1);
    assert_eq!(report["passed"], true);
    assert_eq!(report["exit_code"], 0);
    assert!(ids_with(&report, "regressed").is_empty());
    assert_eq!(verdicts(&report).len(), 4);
}

#[test]
fn a_significant_change_whose_interval_straddles_the_threshold_is_inconclusive() {
    let s = Scratch::new();
    // spin_small in slow25 measured +22.8% [+14.7%, +29.8%] (p < 0.001): a 20% threshold lies
    // inside that interval.
    let config = s.threshold_override(SPIN_SMALL, 20);
    let (code, report) = s.compare_json("base", "slow25", &["--config", &config]);
    assert_eq!(code, 0);
    let row = find_row(&report, SPIN_SMALL);
    assert_eq!(row["verdict"], "inconclusive");
    let change = &row["change"];
    assert!(change["p_value"].as_f64().unwrap() < 0.05);
    assert!(change["lower_pct"].as_f64().unwrap() < 20.0);
    assert!(change["upper_pct"].as_f64().unwrap() > 20.0);
}

#[test]
fn piped_text_output_has_no_colour_even_without_no_color() {
    let s = Scratch::new();
    let out = Command::new(env!("CARGO_BIN_EXE_bench-gate"))
        .args(["compare", "base", "slow25", "--criterion-dir", &s.crit()])
        .current_dir(s.dir.path())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!stdout(&out).contains('\x1b'), "{}", stdout(&out));
}

#[test]
fn slowdown_of_25_percent_fails_naming_only_that_benchmark() {
    let s = Scratch::new();
    let (code, report) = s.compare_json("base", "slow25", &[]);
    assert_eq!(code, 2);
    assert_eq!(ids_with(&report, "regressed"), vec![SPIN_SMALL.to_string()]);
    let row = find_row(&report, SPIN_SMALL);
    assert!(row["change"]["lower_pct"].as_f64().unwrap() > 10.0);

    let crit = s.crit();
    let text = s.run(&["compare", "base", "slow25", "--criterion-dir", &crit]);
    assert_eq!(text.status.code(), Some(2));
    let regressed_lines: Vec<String> = stdout(&text)
        .lines()
        .filter(|l| l.ends_with("regressed"))
        .map(String::from)
        .collect();
    assert_eq!(regressed_lines.len(), 1, "{}", stdout(&text));
    assert!(regressed_lines[0].starts_with(SPIN_SMALL));
}

#[test]
fn speedup_of_30_percent_is_improved_with_exit_0() {
    let s = Scratch::new();
    let (code, report) = s.compare_json("base", "fast30", &[]);
    assert_eq!(code, 0);
    assert_eq!(ids_with(&report, "improved"), vec![SPIN_LARGE.to_string()]);
    assert!(ids_with(&report, "regressed").is_empty());
}

#[test]
fn throughput_drop_beyond_10_percent_fails_in_ops_per_second() {
    let s = Scratch::new();
    let (code, report) = s.compare_json("base", "tput_drop", &[]);
    assert_eq!(code, 2);
    assert_eq!(ids_with(&report, "regressed"), vec![BATCH.to_string()]);
    let row = find_row(&report, BATCH);
    assert_eq!(row["unit"], "ops/s");
    assert!(row["new"].as_f64().unwrap() < row["base"].as_f64().unwrap());
    assert!(row["change"]["upper_pct"].as_f64().unwrap() < -10.0);
}

#[test]
fn footprint_is_compared_in_bytes_not_time() {
    let s = Scratch::new();
    let (code, report) = s.compare_json("base", "fat", &[]);
    assert_eq!(code, 2);
    assert_eq!(ids_with(&report, "regressed"), vec![STRINGS.to_string()]);
    let row = find_row(&report, STRINGS);
    assert_eq!(row["unit"], "bytes");
    assert_eq!(row["kind"], "footprint");
    // 1,000 strings of 48 bytes plus 1,000 String headers: a byte count, not nanoseconds.
    assert_eq!(
        row["base"].as_f64().unwrap(),
        48_000.0 + 24.0 * 1_000.0 + 16_000.0
    );
}

#[test]
fn a_per_benchmark_override_replaces_the_kind_threshold() {
    let s = Scratch::new();
    let config = s.threshold_override(SPIN_SMALL, 50);
    let (code, report) = s.compare_json("base", "slow25", &["--config", &config]);
    assert_eq!(code, 0);
    let row = find_row(&report, SPIN_SMALL);
    assert_eq!(row["threshold_pct"], 50.0);
    assert_eq!(row["verdict"], "unchanged");
}

#[test]
fn export_then_import_then_compare_round_trips_to_the_same_verdicts() {
    let s = Scratch::new();
    for name in ["base", "slow25", "fast30", "tput_drop"] {
        s.export(name);
    }
    let fresh = s.path("restored").display().to_string();
    for name in ["base", "slow25", "fast30", "tput_drop"] {
        let file = s.path(&format!("{name}.json")).display().to_string();
        let as_name = format!("r_{name}");
        let out = s.run(&["import", &file, "--criterion-dir", &fresh, "--as", &as_name]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    for new in ["slow25", "fast30", "tput_drop"] {
        let (code_dir, from_dirs) = s.compare_json("base", new, &[]);
        let base_file = s.path("base.json").display().to_string();
        let new_file = s.path(&format!("{new}.json")).display().to_string();
        let (code_file, from_files) = s.compare_json(&base_file, &new_file, &[]);
        let r_base = "r_base".to_string();
        let r_new = format!("r_{new}");
        let out = s.run(&[
            "compare",
            &r_base,
            &r_new,
            "--criterion-dir",
            &fresh,
            "--format",
            "json",
        ]);
        let from_import: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(code_dir, code_file);
        assert_eq!(Some(code_dir), out.status.code());
        assert_eq!(verdicts(&from_dirs), verdicts(&from_files));
        assert_eq!(verdicts(&from_dirs), verdicts(&from_import));
        // Same samples and seed: the numbers, not just the verdicts, survive the round trip.
        assert_eq!(from_dirs["benchmarks"], from_files["benchmarks"]);
    }
}

#[test]
fn import_restores_criterions_files_byte_for_byte_in_content() {
    let s = Scratch::new();
    let file = s.export("base").display().to_string();
    let fresh = s.path("restored");
    let out = s.run(&[
        "import",
        &file,
        "--criterion-dir",
        &fresh.display().to_string(),
        "--as",
        "base",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for dir in [
        "latency_fixture/spin_small",
        "throughput_fixture/batch/64",
        "footprint_fixture/strings/1000",
    ] {
        for f in [
            "benchmark.json",
            "estimates.json",
            "sample.json",
            "tukey.json",
        ] {
            let read = |root: &Path| -> Value {
                let p = root.join(dir).join("base").join(f);
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
            };
            assert_eq!(read(&s.path("criterion")), read(&fresh), "{dir}/{f}");
        }
    }
}

/// The fixture bench built by `cargo test` next to the binary under test.
fn fixture_bench() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_bench-gate"));
    let bench = exe
        .with_file_name("examples")
        .join(format!("fixture_bench{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bench.is_file(),
        "{} is missing: run `cargo test -p bench-gate`, which builds the examples",
        bench.display()
    );
    bench
}

#[test]
fn criterion_compares_against_an_imported_baseline() {
    let s = Scratch::new();
    let file = s.export("base").display().to_string();
    let fresh = s.path("restored");
    let out = s.run(&[
        "import",
        &file,
        "--criterion-dir",
        &fresh.display().to_string(),
        "--as",
        "main",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // What `cargo bench -- --baseline main` runs: Criterion must load the imported files and
    // report a change against them (it panics when the baseline cannot be read).
    let out = Command::new(fixture_bench())
        .args([
            "--bench",
            "--baseline",
            "main",
            "--warm-up-time",
            "0.05",
            "--measurement-time",
            "0.2",
            "spin_small",
        ])
        .env("CRITERION_HOME", &fresh)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("change:"), "{}", stdout(&out));
    assert!(fresh
        .join("latency_fixture/spin_small/change/estimates.json")
        .is_file());
}

#[test]
fn export_is_a_superset_of_critcmps_format_with_machine_information() {
    let s = Scratch::new();
    let crit = s.crit();
    let out = s.run(&["export", "base", "--criterion-dir", &crit]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    // A distinct name per export (critcmp keys baselines by it): base@<commit>, or the date
    // outside a git checkout.
    let name = doc["name"].as_str().unwrap();
    assert!(name.starts_with("base@"), "{name}");
    assert_eq!(doc["format"], "bench-gate-export");
    assert_eq!(doc["version"], 2);
    for key in ["cpu_model", "cores", "os", "rustc", "date"] {
        assert!(!doc["machine"][key].is_null(), "machine.{key}");
    }
    let b = &doc["benchmarks"][SPIN_SMALL];
    // The fields critcmp's `Benchmark` struct requires.
    assert_eq!(b["baseline"], name);
    assert_eq!(b["fullname"], format!("{name}/{SPIN_SMALL}"));
    assert_eq!(b["criterion_benchmark_v1"]["full_id"], SPIN_SMALL);
    for stat in ["mean", "median", "median_abs_dev", "slope", "std_dev"] {
        assert!(
            b["criterion_estimates_v1"][stat]["point_estimate"].is_f64(),
            "{stat}"
        );
    }
    assert_eq!(b["unit"], "ns");
    // Bytes are kept out of critcmp's part, which would print them as durations.
    assert!(doc["benchmarks"][STRINGS].is_null());
    assert_eq!(doc["measurements"][STRINGS]["unit"], "bytes");
    assert_eq!(
        b["criterion_sample_v1"]["iters"].as_array().unwrap().len(),
        b["criterion_sample_v1"]["times"].as_array().unwrap().len()
    );
}

#[test]
fn list_shows_each_baseline_with_its_benchmark_count() {
    let s = Scratch::new();
    let out = s.run(&["list", "--criterion-dir", &s.crit()]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for name in ["base", "same", "slow25", "fast30", "tput_drop", "fat"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [name, "4"]),
            "{name} missing from\n{text}"
        );
    }
}

#[test]
fn criterion_home_is_the_default_directory() {
    let s = Scratch::new();
    let out = Command::new(env!("CARGO_BIN_EXE_bench-gate"))
        .args(["compare", "base", "same"])
        .current_dir(s.dir.path())
        .env("CRITERION_HOME", s.crit())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_default_directory_is_cargo_target_dir_then_the_workspace_target() {
    let s = Scratch::new();
    // $CARGO_TARGET_DIR/criterion (the scratch copy lives in <tmp>/criterion).
    let out = Command::new(env!("CARGO_BIN_EXE_bench-gate"))
        .args(["compare", "base", "same"])
        .current_dir(s.dir.path())
        .env_remove("CRITERION_HOME")
        .env("CARGO_TARGET_DIR", s.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Else target/criterion of the enclosing workspace, from a member's directory.
    std::fs::create_dir_all(s.path("target")).unwrap();
    std::fs::rename(s.path("criterion"), s.path("target/criterion")).unwrap();
    std::fs::write(
        s.path("Cargo.toml"),
        "[workspace]\nmembers = [\"member\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(s.path("member/src")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bench-gate"))
        .args(["list"])
        .current_dir(s.path("member/src"))
        .env_remove("CRITERION_HOME")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("slow25"), "{}", stdout(&out));
}

#[test]
fn markdown_puts_the_summary_first_and_regressions_before_the_folded_table() {
    let s = Scratch::new();
    let crit = s.crit();
    let out = s.run(&[
        "compare",
        "base",
        "slow25",
        "--criterion-dir",
        &crit,
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let md = stdout(&out);
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "<!-- bench-gate-report -->");
    assert!(
        lines[1].contains("1 regression") && lines[1].contains("1 regressed"),
        "{md}"
    );
    let regressions = md.find("#### Regressions").unwrap();
    let details = md.find("<details>").unwrap();
    assert!(regressions < details);
    let section = &md[regressions..details];
    assert!(section.contains(SPIN_SMALL) && !section.contains(SPIN_LARGE));
    assert!(md.contains("</details>"));
}

#[test]
fn missing_benchmarks_are_reported_and_fail_only_when_configured() {
    let s = Scratch::new();
    std::fs::remove_dir_all(s.path("criterion/latency_fixture/spin_large/same")).unwrap();
    let (code, report) = s.compare_json("base", "same", &[]);
    assert_eq!(code, 0);
    assert_eq!(ids_with(&report, "missing"), vec![SPIN_LARGE.to_string()]);
    let (code, report) = s.compare_json("same", "base", &[]);
    assert_eq!(code, 0);
    assert_eq!(ids_with(&report, "new"), vec![SPIN_LARGE.to_string()]);

    std::fs::write(s.path("strict.toml"), "[gate]\nfail_on_missing = true\n").unwrap();
    let (code, _) = s.compare_json("base", "same", &["--config", "strict.toml"]);
    assert_eq!(code, 2);
    let out = s.run(&[
        "compare",
        "base",
        "same",
        "--criterion-dir",
        &s.crit(),
        "--config",
        "strict.toml",
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let md = stdout(&out);
    assert!(md.lines().nth(1).unwrap().contains("1 missing"), "{md}");
    let section = md
        .find("#### Missing benchmarks")
        .expect("a missing section");
    assert!(md[section..md.find("<details>").unwrap()].contains(SPIN_LARGE));
}

#[test]
fn baselines_from_different_machines_pass_with_a_warning() {
    let s = Scratch::new();
    let crit = s.crit();
    let file = s.export("base");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    doc["machine"]["cpu_model"] = "Some Other CPU @ 1.0GHz".into();
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = s.run(&[
        "compare",
        &file.display().to_string(),
        "same",
        "--criterion-dir",
        &crit,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("different machines"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("Some Other CPU"));
}

#[test]
fn slo_passes_within_budgets_and_exits_2_when_one_is_broken() {
    let s = Scratch::new();
    let out = s.slo_with(
        "ok.toml",
        "[[slo]]\nid = \"latency/fixture/spin_small\"\nmax_ns = 1e9\n\
         [[slo]]\nprefix = \"throughput/\"\nmin_ops_per_sec = 1000\n\
         [[slo]]\nprefix = \"footprint/\"\nmax_bytes = 1e6\n",
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = s.slo_with(
        "tight.toml",
        "[[slo]]\nprefix = \"footprint/\"\nmax_bytes = 1000\n",
        &["--format", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["budgets"][0]["status"], "broken");
    assert_eq!(doc["budgets"][0]["id"], STRINGS);
}

#[test]
fn slo_reads_a_throughput_budget_in_ops_per_second_whatever_the_gate_kind() {
    let s = Scratch::new();
    // Like the suite's `latency/ltm/insert_batch/*`: gated as latency, budgeted in ops/s.
    let out = s.slo_with(
        "rate.toml",
        "[[rule]]\nprefix = \"throughput/\"\nkind = \"latency\"\n\
         [[slo]]\nprefix = \"throughput/\"\nmin_ops_per_sec = 1000\n",
        &["--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["budgets"][0]["id"], BATCH);
    assert_eq!(doc["budgets"][0]["unit"], "ops/s");
    assert!(doc["budgets"][0]["value"].as_f64().unwrap() > 100_000.0);

    // Bytes and times never mix.
    let out = s.slo_with(
        "mixed.toml",
        "[[slo]]\nid = \"latency/fixture/spin_small\"\nmax_bytes = 1000\n",
        &[],
    );
    assert_error(&out, &["mixed.toml", "spin_small", "measured in ns"]);
}

#[test]
fn slo_refuses_an_ops_per_second_floor_on_a_throughput_in_bytes() {
    let s = Scratch::new();
    // Like the suite's `latency/reference/seq_read/*` (`Throughput::Bytes`): its rate is in B/s,
    // tens of millions of times its ops/s, so a floor in ops/s read against it always held.
    let info = s.path("criterion/throughput_fixture/batch/64/base/benchmark.json");
    let text = std::fs::read_to_string(&info).unwrap();
    assert!(text.contains("{\"Elements\":64}"), "{text}");
    std::fs::write(&info, text.replace("{\"Elements\":64}", "{\"Bytes\":64}")).unwrap();
    let out = s.slo_with(
        "rate.toml",
        "[[slo]]\nprefix = \"throughput/\"\nmin_ops_per_sec = 1000\n",
        &["--format", "json"],
    );
    assert_error(&out, &["rate.toml", BATCH, "ops/s", "Bytes(64)", "B/s"]);
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
}

#[test]
fn a_reader_that_closed_the_pipe_ends_the_output_quietly_with_the_commands_exit_code() {
    let s = Scratch::new();
    let crit = s.crit();
    std::fs::write(
        s.path("budget.toml"),
        "[[slo]]\nprefix = \"footprint/\"\nmax_bytes = 1000\n",
    )
    .unwrap();
    let cases: [(&[&str], i32); 7] = [
        (&["compare", "base", "slow25", "--format", "json"], 2),
        (&["compare", "base", "slow25", "--format", "markdown"], 2),
        (&["compare", "base", "same"], 0),
        (&["export", "base"], 0),
        (&["export", "base", "--format", "bmf"], 0),
        (&["list"], 0),
        (&["slo", "base", "--config", "budget.toml"], 2),
    ];
    for (args, code) in cases {
        let mut args = args.to_vec();
        args.extend(["--criterion-dir", &crit]);
        // `bench-gate ... | head -c 100` once head has its bytes: the reading end is closed
        // (here before the binary starts, so every write meets it closed).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = s
            .command(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

// ---- bad input: every case exits 1 with a message naming the file and the problem ----

fn assert_error(out: &Output, needles: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

#[test]
fn missing_baseline_is_an_error_naming_it() {
    let s = Scratch::new();
    let out = s.run(&["compare", "base", "nosuch", "--criterion-dir", &s.crit()]);
    assert_error(&out, &["nosuch", "not found", "slow25"]);
    let out = s.run(&[
        "compare",
        "base",
        "nosuch.json",
        "--criterion-dir",
        &s.crit(),
    ]);
    assert_error(&out, &["nosuch.json"]);
}

#[test]
fn truncated_export_file_is_an_error_naming_the_file() {
    let s = Scratch::new();
    let crit = s.crit();
    let file = s.export("base");
    let full = std::fs::read(&file).unwrap();
    std::fs::write(&file, &full[..full.len() / 2]).unwrap();
    let out = s.run(&[
        "compare",
        &file.display().to_string(),
        "same",
        "--criterion-dir",
        &crit,
    ]);
    assert_error(&out, &["base.json", "truncated JSON"]);
}

#[test]
fn truncated_sample_file_in_the_criterion_directory_is_an_error_naming_it() {
    let s = Scratch::new();
    let sample = s.path("criterion/latency_fixture/spin_small/same/sample.json");
    std::fs::write(&sample, "{\"sampling_mode\":\"Linear\",\"iters\":[1.0,").unwrap();
    let out = s.run(&["compare", "base", "same", "--criterion-dir", &s.crit()]);
    assert_error(&out, &["spin_small/same/sample.json", "truncated JSON"]);
}

#[test]
fn malformed_json_is_an_error_naming_the_file_and_the_problem() {
    let s = Scratch::new();
    let estimates = s.path("criterion/latency_fixture/spin_large/base/estimates.json");
    std::fs::write(&estimates, "{\"mean\": }").unwrap();
    let out = s.run(&["compare", "base", "same", "--criterion-dir", &s.crit()]);
    assert_error(
        &out,
        &["spin_large/base/estimates.json", "malformed JSON", "line 1"],
    );

    // Valid JSON of the wrong shape is named as such.
    let s = Scratch::new();
    let info = s.path("criterion/latency_fixture/spin_large/same/benchmark.json");
    std::fs::write(&info, "{\"full_id\": 42}").unwrap();
    let out = s.run(&["compare", "base", "same", "--criterion-dir", &s.crit()]);
    assert_error(
        &out,
        &["spin_large/same/benchmark.json", "unexpected JSON content"],
    );
}

#[test]
fn a_missing_sample_file_is_an_error_naming_it() {
    let s = Scratch::new();
    std::fs::remove_file(s.path("criterion/latency_fixture/spin_small/same/sample.json")).unwrap();
    let out = s.run(&["compare", "base", "same", "--criterion-dir", &s.crit()]);
    assert_error(&out, &["spin_small/same/sample.json", "No such file"]);
}

#[test]
fn a_criterion_directory_that_does_not_exist_is_an_error_naming_it() {
    let s = Scratch::new();
    let missing = s.path("no-such-dir").display().to_string();
    for args in [
        &["compare", "base", "same", "--criterion-dir", &missing][..],
        &["list", "--criterion-dir", &missing][..],
        &["export", "base", "--criterion-dir", &missing][..],
        &["slo", "base", "--criterion-dir", &missing][..],
    ] {
        assert_error(&s.run(args), &["no-such-dir", "does not exist"]);
    }
}

#[test]
fn an_export_of_another_format_or_version_is_an_error() {
    let s = Scratch::new();
    let crit = s.crit();
    let file = s.export("base");
    let original: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    // (file name, top-level field, its new value or None to remove it, expected complaint)
    let cases = [
        (
            "other-format",
            "format",
            Some(Value::from("something-else")),
            "unknown format",
        ),
        ("future", "version", Some(Value::from(3)), "version 3"),
        ("ancient", "version", Some(Value::from(0)), "version 0"),
        ("unversioned", "version", None, "without a `version`"),
    ];
    for (name, field, value, problem) in cases {
        let mut doc = original.clone();
        let top = doc.as_object_mut().unwrap();
        match value {
            Some(v) => top.insert(field.to_string(), v),
            None => top.remove(field),
        };
        let path = s.path(&format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        let path = path.display().to_string();
        assert_error(
            &s.run(&["compare", &path, "same", "--criterion-dir", &crit]),
            &[&format!("{name}.json"), problem],
        );
        let restored = s.path("restored").display().to_string();
        assert_error(
            &s.run(&["import", &path, "--criterion-dir", &restored]),
            &[&format!("{name}.json"), problem],
        );
    }
}

#[test]
fn throughput_in_elements_on_one_side_and_bytes_on_the_other_is_a_unit_mismatch() {
    let s = Scratch::new();
    let info = s.path("criterion/throughput_fixture/batch/64/same/benchmark.json");
    let text = std::fs::read_to_string(&info).unwrap();
    assert!(text.contains("{\"Elements\":64}"), "{text}");
    std::fs::write(&info, text.replace("{\"Elements\":64}", "{\"Bytes\":64}")).unwrap();
    let out = s.run(&["compare", "base", "same", "--criterion-dir", &s.crit()]);
    assert_error(
        &out,
        &[BATCH, "unit mismatch", "ops/s", "B/s", "batch/64/same"],
    );
}

/// Zero samples, or one (no spread to judge from), in one side's `sample.json`.
#[test]
fn too_few_samples_are_an_error_naming_the_file() {
    for (bench, samples, complaint) in [
        ("latency_fixture/spin_small", "[10.0]", "only 1 sample"),
        ("throughput_fixture/batch/64", "[]", "zero samples"),
    ] {
        let s = Scratch::new();
        let times = if samples == "[]" { "[]" } else { "[5000.0]" };
        std::fs::write(
            s.path(&format!("criterion/{bench}/same/sample.json")),
            format!(r#"{{"sampling_mode":"Linear","iters":{samples},"times":{times}}}"#),
        )
        .unwrap();
        let out = s.run(&["compare", "base", "same", "--criterion-dir", &s.crit()]);
        let file = format!("{}/same/sample.json", bench.split_once('/').unwrap().1);
        assert_error(&out, &[&file, complaint]);
    }
}

#[test]
fn mismatched_units_between_the_two_sides_are_an_error() {
    let s = Scratch::new();
    let crit = s.crit();
    let file = s.export("base");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    doc["measurements"][STRINGS]["unit"] = "ns".into();
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = s.run(&[
        "compare",
        &file.display().to_string(),
        "fat",
        "--criterion-dir",
        &crit,
    ]);
    assert_error(&out, &[STRINGS, "unit mismatch", "base.json"]);
}

#[test]
fn unknown_config_key_is_an_error_naming_file_and_key() {
    let s = Scratch::new();
    std::fs::write(s.path("typo.toml"), "[thresholds]\nlatncy = 5\n").unwrap();
    let out = s.run(&[
        "compare",
        "base",
        "same",
        "--criterion-dir",
        &s.crit(),
        "--config",
        "typo.toml",
    ]);
    assert_error(&out, &["typo.toml", "latncy"]);
}

#[test]
fn bad_command_line_exits_1_not_2() {
    let s = Scratch::new();
    assert_error(&s.run(&["compare", "base"]), &["NEW"]);
    assert_error(
        &s.run(&["compare", "base", "same", "--format", "html"]),
        &["html"],
    );
}

#[test]
fn plain_critcmp_export_without_samples_is_rejected() {
    let s = Scratch::new();
    let crit = s.crit();
    let file = s.export("base");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for (_, b) in doc["benchmarks"].as_object_mut().unwrap() {
        b.as_object_mut().unwrap().remove("criterion_sample_v1");
    }
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = s.run(&[
        "compare",
        &file.display().to_string(),
        "same",
        "--criterion-dir",
        &crit,
    ]);
    assert_error(&out, &["base.json", "criterion_sample_v1"]);
}

/// The exported baselines kept in the repository's `baselines/` stay readable by this gate: each
/// compares with itself as unchanged, and the repository's budgets can be checked against it
/// (exit 0 or 2, never an error), so a change of the export format cannot strand them.
#[test]
fn the_repositorys_kept_baselines_read_compare_and_check() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut kept: Vec<PathBuf> = std::fs::read_dir(repo.join("baselines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    kept.sort();
    assert!(!kept.is_empty(), "no exported baseline in baselines/");
    let config = repo.join("bench-gate.toml").display().to_string();
    let scratch = Scratch::new();
    for file in &kept {
        let file = file.display().to_string();
        let (code, report) = scratch.compare_json(&file, &file, &["--config", config.as_str()]);
        assert_eq!(code, 0, "{file} compared with itself");
        let rows = verdicts(&report);
        assert!(!rows.is_empty(), "{file} holds no benchmark");
        assert!(
            rows.iter().all(|(_, v)| v == "unchanged"),
            "{file} against itself: {rows:?}"
        );
        let out = scratch.run(&["slo", &file, "--config", &config]);
        let code = out.status.code().unwrap();
        assert!(
            code == 0 || code == 2,
            "slo on {file} failed: {}",
            stderr(&out)
        );
    }
}

// ---- interleaved rounds ----

#[test]
fn rounds_are_paired_and_a_planted_slowdown_regresses_with_its_per_round_changes() {
    let s = Scratch::new();
    s.rounds("slow25");
    let (code, report) = s.compare_json("old", "pr", &["--rounds", "3"]);
    assert_eq!(code, 2);
    assert_eq!(report["rounds"].as_array().unwrap().len(), 3);
    assert_eq!(report["rounds"][1]["base"], "old-r2");
    let row = report["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == SPIN_SMALL)
        .unwrap();
    assert_eq!(row["verdict"], "regressed");
    let per_round = row["round_changes_pct"].as_array().unwrap();
    assert_eq!(per_round.len(), 3);
    assert!(
        per_round.iter().all(|c| c.as_f64().unwrap() > 19.0),
        "{row}"
    );
    // The pattern form finds the same rounds.
    let (code, by_pattern) = s.compare_json("old-r*", "pr-r*", &[]);
    assert_eq!(code, 2);
    assert_eq!(verdicts(&by_pattern), verdicts(&report));
    // The text report shows the rounds of the flagged benchmark.
    let crit = s.crit();
    let out = s.run(&[
        "compare",
        "old",
        "pr",
        "--rounds",
        "3",
        "--criterion-dir",
        &crit,
    ]);
    let text = stdout(&out);
    assert!(text.contains("3 interleaved rounds"), "{text}");
    assert!(text.contains("change per round"), "{text}");
}

/// A burst of load that slows a quarter of one round's samples eightfold: the round's mean
/// moves with it, its median does not. `gate.round_statistic` picks what rounds are paired by.
#[test]
fn a_burst_in_a_few_samples_of_a_round_moves_its_mean_not_its_median() {
    let s = Scratch::new();
    for (side, k, from) in [
        ("old", 1, "base"),
        ("old", 2, "same"),
        ("old", 3, "base"),
        ("pr", 1, "same"),
        ("pr", 2, "base"),
        ("pr", 3, "same"),
    ] {
        s.copy_baseline(from, &format!("{side}-r{k}"));
    }
    // Criterion's directory of a group "latency/fixture" is "latency_fixture".
    let sample = s.path("criterion/latency_fixture/spin_small/pr-r1/sample.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&sample).unwrap()).unwrap();
    let times = json["times"].as_array_mut().unwrap();
    let n = times.len();
    for t in times.iter_mut().skip(n - n / 4) {
        *t = Value::from(t.as_f64().unwrap() * 8.0);
    }
    std::fs::write(&sample, serde_json::to_vec(&json).unwrap()).unwrap();
    let first_round = |statistic: &str| {
        let config = s.path(&format!("{statistic}.toml"));
        std::fs::write(
            &config,
            format!("[gate]\nround_statistic = \"{statistic}\"\n"),
        )
        .unwrap();
        let config = config.display().to_string();
        let (_, report) = s.compare_json("old", "pr", &["--rounds", "3", "--config", &config]);
        let row = report["benchmarks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == SPIN_SMALL)
            .unwrap()
            .clone();
        (
            row["verdict"].as_str().unwrap().to_string(),
            row["round_changes_pct"][0].as_f64().unwrap(),
        )
    };
    let (_, by_mean) = first_round("mean");
    assert!(by_mean > 100.0, "mean: round 1 changed {by_mean}%");
    let (verdict, by_median) = first_round("median");
    assert!(
        by_median.abs() < 20.0,
        "median: round 1 changed {by_median}%"
    );
    assert_ne!(verdict, "regressed");
}

#[test]
fn same_code_in_rounds_passes() {
    let s = Scratch::new();
    s.copy_baseline("base", "old-r1");
    s.copy_baseline("same", "old-r2");
    s.copy_baseline("same", "pr-r1");
    s.copy_baseline("base", "pr-r2");
    let (code, report) = s.compare_json("old", "pr", &["--rounds", "2"]);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn a_missing_round_is_an_error_naming_it() {
    let s = Scratch::new();
    s.rounds("slow25");
    let crit = s.crit();
    let out = s.run(&[
        "compare",
        "old",
        "pr",
        "--rounds",
        "4",
        "--criterion-dir",
        &crit,
    ]);
    assert_error(&out, &["old-r4", "not found", "crashed"]);
    // Sets of different sizes by pattern.
    s.copy_baseline("same", "pr-r4");
    let out = s.run(&["compare", "old-r*", "pr-r*", "--criterion-dir", &crit]);
    assert_error(&out, &["3 round(s)", "pr-r4"]);
}

#[test]
fn a_benchmark_in_some_rounds_only_is_an_error_naming_benchmark_and_rounds() {
    let s = Scratch::new();
    s.rounds("same");
    std::fs::remove_dir_all(s.path("criterion/latency_fixture/spin_small/pr-r2")).unwrap();
    let crit = s.crit();
    let out = s.run(&[
        "compare",
        "old",
        "pr",
        "--rounds",
        "3",
        "--criterion-dir",
        &crit,
    ]);
    assert_error(&out, &[SPIN_SMALL, "pr-r2", "cannot be paired"]);
}

#[test]
fn rounds_with_different_sample_counts_are_an_error() {
    let s = Scratch::new();
    s.rounds("same");
    let sample = s.path("criterion/latency_fixture/spin_small/pr-r2/sample.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&sample).unwrap()).unwrap();
    for key in ["iters", "times"] {
        doc[key].as_array_mut().unwrap().pop();
    }
    std::fs::write(&sample, serde_json::to_vec(&doc).unwrap()).unwrap();
    let crit = s.crit();
    let out = s.run(&[
        "compare",
        "old",
        "pr",
        "--rounds",
        "3",
        "--criterion-dir",
        &crit,
    ]);
    assert_error(&out, &[SPIN_SMALL, "different sample counts", "profiles"]);
}

#[test]
fn a_baseline_against_rounds_is_an_error() {
    let s = Scratch::new();
    s.rounds("same");
    let crit = s.crit();
    let out = s.run(&["compare", "base", "pr-r*", "--criterion-dir", &crit]);
    assert_error(&out, &["one baseline", "set of 3 rounds"]);
}

#[test]
fn benchmarks_run_once_per_side_join_a_comparison_of_rounds() {
    let s = Scratch::new();
    s.copy_baseline("base", "base-r1");
    s.copy_baseline("same", "base-r2");
    s.copy_baseline("same", "head-r1");
    s.copy_baseline("same", "head-r2");
    // `base` exists as a fixture baseline: it is BASE's single run; HEAD's is `fat`, copied.
    s.copy_baseline("fat", "head");
    let crit = s.crit();
    let out = s.run(&[
        "compare",
        "base",
        "head",
        "--rounds",
        "2",
        "--criterion-dir",
        &crit,
    ]);
    // The single runs hold the same ids as the rounds: refused, not silently merged.
    assert_error(&out, &["both in the rounds and in the single runs"]);
    // Without a single run on HEAD's side, BASE's single run is unmatched.
    std::fs::remove_dir_all(s.path("criterion/footprint_fixture/strings/1000/head")).unwrap();
    for dir in [
        "latency_fixture/spin_small",
        "latency_fixture/spin_large",
        "throughput_fixture/batch/64",
    ] {
        std::fs::remove_dir_all(s.path(&format!("criterion/{dir}/head"))).unwrap();
    }
    let out = s.run(&[
        "compare",
        "base",
        "head",
        "--rounds",
        "2",
        "--criterion-dir",
        &crit,
    ]);
    assert_error(&out, &["'base' has benchmarks run once", "'head' missing"]);
}

#[test]
fn warnings_given_on_the_command_line_are_in_the_report() {
    let s = Scratch::new();
    let (_, report) = s.compare_json("base", "same", &["--warn", "instruction counts skipped"]);
    assert!(report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w == "instruction counts skipped"));
}

// ---- instruction counts and quality ----

#[test]
fn instruction_counts_are_decided_exactly_against_a_tight_threshold() {
    let s = Scratch::new();
    s.count("instructions/counted/ltm/get.n1000", "base", 100_000);
    s.count("instructions/counted/ltm/get.n1000", "head", 102_500);
    s.count("instructions/counted/search/ann.n1000", "base", 5_000_000);
    s.count("instructions/counted/search/ann.n1000", "head", 5_000_000);
    let (code, report) = s.compare_json("base", "head", &[]);
    assert_eq!(code, 2, "{report}");
    let get = row(&report, "instructions/ltm/get/n1000");
    assert_eq!(get["kind"], "instructions");
    assert_eq!(get["unit"], "instructions");
    assert_eq!(get["verdict"], "regressed", "+2.5% beyond +2%: {get}");
    assert_eq!(get["change"]["p_value"], 0.0);
    assert_eq!(get["change"]["lower_pct"], get["change"]["upper_pct"]);
    let ann = row(&report, "instructions/search/ann/n1000");
    assert_eq!(ann["verdict"], "unchanged");
    assert_eq!(ann["change"]["p_value"], 1.0);
    // Counts export and read back as counts (one exact sample each).
    let crit = s.crit();
    let file = s.path("head-counts.json").display().to_string();
    let out = s.run(&["export", "head", "--criterion-dir", &crit, "-o", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(doc["benchmarks"].as_object().unwrap().is_empty());
    assert_eq!(
        doc["measurements"]["instructions/ltm/get/n1000"]["unit"],
        "instructions"
    );
    let (code, again) = s.compare_json("base", &file, &[]);
    assert_eq!(code, 2);
    assert_eq!(verdicts(&again), verdicts(&report));
}

#[test]
fn repeated_counts_are_samples_and_a_change_must_exceed_their_spread() {
    let s = Scratch::new();
    // The false flag of a PR run on a busy machine: base's executable counted 5,902 once and
    // 6,216 when counted again (as head did both times).
    let append = "instructions/counted/stm/append.s64";
    s.count(append, "base", 5_902);
    s.count(append, "base_repeat2", 6_216);
    s.count(append, "head", 6_216);
    s.count(append, "head_repeat2", 6_216);
    // A real +3% change beside a jitter of 0.15% on each side.
    let keyword = "instructions/counted/search/keyword.n1000";
    s.count(keyword, "base", 194_400);
    s.count(keyword, "base_repeat2", 194_700);
    s.count(keyword, "head", 200_300);
    s.count(keyword, "head_repeat2", 200_600);
    let (code, report) = s.compare_json("base", "head", &[]);
    assert_eq!(code, 2, "{report}");
    let a = row(&report, "instructions/stm/append/s64");
    assert_eq!(a["verdict"], "inconclusive", "an outlying count alone: {a}");
    assert_eq!(
        a["samples"],
        serde_json::json!({"base": 2, "new": 2}),
        "{a}"
    );
    assert_eq!(a["change"]["lower_pct"], 0.0, "{a}");
    assert!(a["change"]["upper_pct"].as_f64().unwrap() > 5.0, "{a}");
    let k = row(&report, "instructions/search/keyword/n1000");
    assert_eq!(
        k["verdict"], "regressed",
        "+3% beyond the 0.15% spread: {k}"
    );
    assert!(k["change"]["lower_pct"].as_f64().unwrap() > 2.8, "{k}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("5902 to 6216")),
        "{report}"
    );
    // A spread well inside the threshold (0.15% of 2%) decides nothing and is not reported.
    assert!(
        !report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("keyword")),
        "{report}"
    );

    // Counted once, the outlier decides (what the repeat is for).
    s.count(append, "once_base", 5_902);
    s.count(append, "once_head", 6_216);
    let (code, once) = s.compare_json("once_base", "once_head", &[]);
    assert_eq!(code, 2);
    assert_eq!(verdicts(&once)[0].1, "regressed");

    // A repeat without its first count is a crashed run, not a baseline.
    s.count(append, "lost_repeat2", 6_216);
    let crit = s.crit();
    let out = s.run(&["compare", "lost", "head", "--criterion-dir", &crit]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no first count in baseline 'lost'"), "{err}");
}

#[test]
fn quality_is_higher_is_better_in_points_and_identical_constants_are_unchanged() {
    let s = Scratch::new();
    // Ratios of 0.85 and 0.82, and an identical copy.
    s.quality("q_base", 0.85, 10);
    s.quality("q_same", 0.85, 12);
    s.quality("q_drop", 0.82, 10);
    s.quality("q_gain", 0.95, 10);
    let row_of = |report: &Value| row(report, QUALITY).clone();
    let (code, same) = s.compare_json("q_base", "q_same", &[]);
    assert_eq!(code, 0);
    let row = row_of(&same);
    assert_eq!(row["kind"], "quality");
    assert_eq!(row["verdict"], "unchanged");
    assert_eq!(row["change"]["p_value"], 1.0, "identical figures: {row}");
    let (code, drop) = s.compare_json("q_base", "q_drop", &[]);
    assert_eq!(code, 2);
    let row = row_of(&drop);
    assert_eq!(row["verdict"], "regressed");
    assert_eq!(row["change"]["scale"], "points");
    assert!(
        (row["change"]["point_pct"].as_f64().unwrap() + 3.0).abs() < 1e-6,
        "{row}"
    );
    let (code, gain) = s.compare_json("q_base", "q_gain", &[]);
    assert_eq!(code, 0);
    assert_eq!(row_of(&gain)["verdict"], "improved");
}

#[test]
fn a_configs_own_rule_adds_to_the_built_in_rules_instead_of_replacing_them() {
    let s = Scratch::new();
    s.quality("q_base", 0.85, 10);
    s.quality("q_gain", 0.95, 10);
    // A rule for one prefix only: quality/ ids keep their built-in kind. (They used to fall to
    // the default kind, latency, and a recall gain of 10 points failed as a +11.8% slowdown.)
    std::fs::write(
        s.path("rules.toml"),
        "[[rule]]\nprefix = \"scaling/\"\nkind = \"latency\"\n",
    )
    .unwrap();
    let (code, report) = s.compare_json("q_base", "q_gain", &["--config", "rules.toml"]);
    assert_eq!(code, 0, "{report}");
    let row = find_row(&report, QUALITY);
    assert_eq!(row["kind"], "quality", "{row}");
    assert_eq!(row["verdict"], "improved", "{row}");
    // The footprint fixture stays in bytes, the throughput one in ops/s.
    let (_, report) = s.compare_json("base", "fat", &["--config", "rules.toml"]);
    assert_eq!(find_row(&report, STRINGS)["unit"], "bytes");
    assert_eq!(find_row(&report, BATCH)["unit"], "ops/s");
    // A rule of the file still wins where it matches.
    std::fs::write(
        s.path("mine.toml"),
        "[[rule]]\nprefix = \"footprint/\"\nkind = \"latency\"\n",
    )
    .unwrap();
    let (_, report) = s.compare_json("base", "fat", &["--config", "mine.toml"]);
    assert_eq!(find_row(&report, STRINGS)["kind"], "latency");
}

#[test]
fn informational_benchmarks_are_shown_but_never_fail() {
    let s = Scratch::new();
    std::fs::write(
        s.path("info.toml"),
        format!("[[informational]]\nid = \"{SPIN_SMALL}\"\nreason = \"too noisy here\"\n"),
    )
    .unwrap();
    let (code, report) = s.compare_json("base", "slow25", &["--config", "info.toml"]);
    assert_eq!(code, 0, "{report}");
    let row = row(&report, SPIN_SMALL);
    assert_eq!(row["verdict"], "regressed");
    assert_eq!(row["informational"], "too noisy here");
    assert_eq!(report["counts"]["informational_regressed"], 1);
    assert_eq!(report["counts"]["regressed"], 0);
}

#[test]
fn markdown_lists_only_deciding_rows_as_failing() {
    let s = Scratch::new();
    let crit = s.crit();
    let markdown = |base: &str, new: &str, config: &str| {
        let out = s.run(&[
            "compare",
            base,
            new,
            "--criterion-dir",
            &crit,
            "--config",
            config,
            "--format",
            "markdown",
        ]);
        (out.status.code().unwrap(), stdout(&out))
    };
    // An informational regression passes: it is counted apart and shown in the folded table
    // only, not under "Regressions".
    std::fs::write(
        s.path("info.toml"),
        format!("[[informational]]\nid = \"{SPIN_SMALL}\"\nreason = \"too noisy here\"\n"),
    )
    .unwrap();
    let (code, md) = markdown("base", "slow25", "info.toml");
    assert_eq!(code, 0, "{md}");
    let headline = md.lines().nth(1).unwrap();
    assert!(
        headline.contains("pass") && headline.contains("1 informational regressed, not failing"),
        "{md}"
    );
    assert!(!md.contains("#### Regressions"), "{md}");
    let details = md.find("<details>").unwrap();
    assert!(md[details..].contains("regressed (info)"), "{md}");

    // With fail_on_missing, an informational benchmark missing from NEW is not listed as failing;
    // a deciding regression still fails, alone.
    std::fs::remove_dir_all(s.path("criterion/latency_fixture/spin_large/slow25")).unwrap();
    std::fs::write(
        s.path("strict.toml"),
        format!(
            "[gate]\nfail_on_missing = true\n\
             [[informational]]\nid = \"{SPIN_LARGE}\"\nreason = \"not every run has it\"\n"
        ),
    )
    .unwrap();
    let (code, md) = markdown("base", "slow25", "strict.toml");
    assert_eq!(code, 2, "{md}");
    assert!(md.lines().nth(1).unwrap().contains("1 regression"), "{md}");
    assert!(!md.contains("#### Missing benchmarks"), "{md}");
    let regressions = md.find("#### Regressions").unwrap();
    let section = &md[regressions..md.find("<details>").unwrap()];
    assert!(
        section.contains(SPIN_SMALL) && !section.contains(SPIN_LARGE),
        "{md}"
    );
}

#[test]
fn bmf_export_names_a_bencher_measure_per_benchmark() {
    let s = Scratch::new();
    let crit = s.crit();
    let out = s.run(&[
        "export",
        "base",
        "--criterion-dir",
        &crit,
        "--format",
        "bmf",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc[SPIN_SMALL]["latency"]["value"].as_f64().unwrap() > 0.0);
    assert!(doc[BATCH]["throughput"]["value"].as_f64().unwrap() > 0.0);
    assert!(doc[STRINGS]["footprint-bytes"]["value"].as_f64().unwrap() > 0.0);
}
