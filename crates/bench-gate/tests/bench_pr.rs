//! Tests of `scripts/bench-pr.sh` without benchmarking anything: a scratch git repository stands
//! in for the project, `BENCH_BUILD_CMD` is a fake build whose JSON names one bench executable,
//! and that executable is a fake harness that copies one of the fixture baselines (real Criterion
//! output) into `CRITERION_HOME` under the name the script asks it to save. This checks the
//! plumbing: worktree handling, interleaved rounds, the HTML page, argument checks and exit-code
//! propagation.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fake harness: `fake-bench --bench --save-baseline NAME ... [FILTER]` copies fixture
/// baseline `$FAKE_BASE` (for `base-r<k>`) or `$FAKE_HEAD` (for `head-r<k>`), only the
/// benchmarks whose id FILTER (an extended regex, the last argument when it starts with `^(`)
/// matches; `fake-bench --list [FILTER]` lists the fixture's ids as Criterion does; `FAKE_FAIL=NAME`
/// makes that round fail. Each run is logged to `$FAKE_LOG` with the directory it ran in, the
/// executable and the filter.
const FAKE_BENCH: &str = r#"#!/bin/sh
set -eu
ids() { # FILTER: the fixture's ids that FILTER matches
  cd "$FIXTURES"
  find . -path "*/$FAKE_BASE/benchmark.json" | sort | while read -r f; do
    id=$(sed -n 's/.*"full_id":"\([^"]*\)".*/\1/p' "$f")
    if [ -z "$1" ] || printf '%s\n' "$id" | grep -Eq -- "$1"; then echo "$id"; fi
  done
}
if [ "$1" = --list ]; then
  ids "${2:-}" | sed 's/$/: benchmark/'
  exit 0
fi
[ "$1" = --bench ] && [ "$2" = --save-baseline ] || { echo "fake-bench: unexpected $*" >&2; exit 64; }
name=$3
filter=""
for a in "$@"; do last=$a; done
case $last in '^('*) filter=$last ;; esac
echo "$name $(pwd) $0 $filter" >>"$FAKE_LOG"
if [ "${FAKE_FAIL:-}" = "$name" ]; then echo "fake-bench: failing $name" >&2; exit 101; fi
case $name in base-r*) src=$FAKE_BASE ;; head-r*) src=$FAKE_HEAD ;; *) exit 65 ;; esac
wanted=$(ids "$filter")
cd "$FIXTURES"
find . -type d -name "$src" | while read -r dir; do
  id=$(sed -n 's/.*"full_id":"\([^"]*\)".*/\1/p' "$dir/benchmark.json")
  printf '%s\n' "$wanted" | grep -qxF -- "$id" || continue
  target="$CRITERION_HOME/$(dirname "$dir")/$name"
  mkdir -p "$target"
  cp "$dir"/* "$target/"
done
"#;

/// The fake instruction counter: `fake-instructions --bench --save-baseline=NAME` writes a
/// callgrind file of baseline NAME for one gungraun benchmark (`stm/append.s64`) under
/// `$GUNGRAUN_HOME`, counting what `$FAKE_COUNTS` (`NAME=COUNT ...`) gives NAME; logged to
/// `$FAKE_LOG` as `instructions NAME`. The fake build names it when `$FAKE_INSTRUCTIONS` is set.
const FAKE_INSTRUCTIONS: &str = r#"#!/bin/sh
set -eu
[ "$1" = --bench ] || { echo "fake-instructions: unexpected $*" >&2; exit 64; }
name=${2#--save-baseline=}
echo "instructions $name" >>"$FAKE_LOG"
count=$(printf '%s\n' $FAKE_COUNTS | sed -n "s/^$name=//p")
[ -n "$count" ] || { echo "fake-instructions: no count for $name" >&2; exit 65; }
dir="$GUNGRAUN_HOME/memory-bench/instructions/counted/stm/append.s64"
mkdir -p "$dir"
printf 'events: Ir\ntotals: %s\n' "$count" >"$dir/callgrind.append.s64.t1.p1.out.base@$name"
"#;

/// Part of the fake build: two compiled units in `$CARGO_TARGET_DIR/release`, a third-party
/// dependency and a workspace crate, each with its fingerprint directory, written only where
/// absent and holding the target directory that built them; with Cargo's JSON message of each.
const FAKE_UNITS: &str = r#"r=$CARGO_TARGET_DIR/release
mkdir -p "$r/deps" "$r/.fingerprint/dep-0123456789abcdef" "$r/.fingerprint/member-fedcba9876543210"
[ -e "$r/deps/libdep-0123456789abcdef.rlib" ] || echo "$CARGO_TARGET_DIR" >"$r/deps/libdep-0123456789abcdef.rlib"
[ -e "$r/deps/libmember-fedcba9876543210.rlib" ] || echo "$CARGO_TARGET_DIR" >"$r/deps/libmember-fedcba9876543210.rlib"
echo "{\"reason\":\"compiler-artifact\",\"package_id\":\"registry+https://github.com/rust-lang/crates.io-index#dep@1.0.0\",\"target\":{\"kind\":[\"lib\"],\"name\":\"dep\"},\"filenames\":[\"$r/deps/libdep-0123456789abcdef.rlib\"],\"fresh\":false}"
echo "{\"reason\":\"compiler-artifact\",\"package_id\":\"path+file:///repo#member@0.1.0\",\"target\":{\"kind\":[\"lib\"],\"name\":\"member\"},\"filenames\":[\"$r/deps/libmember-fedcba9876543210.rlib\"],\"fresh\":false}"
"#;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A git repository with one commit, the fake harness and an empty temporary directory.
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let p = Project { dir };
        std::fs::create_dir_all(p.path("repo")).unwrap();
        std::fs::create_dir_all(p.path("tmp")).unwrap();
        std::fs::write(p.path("repo/README"), "scratch\n").unwrap();
        p.git(&["init", "--quiet"]);
        p.git(&["add", "README"]);
        p.git(&[
            "-c",
            "user.name=bench-gate tests",
            "-c",
            "user.email=tests@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--quiet",
            "-m",
            "scratch",
        ]);
        let fake = p.path("fake-bench");
        std::fs::write(&fake, FAKE_BENCH).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A build into $CARGO_TARGET_DIR: the harness copied there, and Cargo's JSON message for
        // one bench target naming it, as `cargo bench --no-run` prints it. `FAKE_SHARED_EXE`
        // names one executable whatever the target directory (what a shared one did).
        let counter = p.path("fake-instructions");
        std::fs::write(&counter, FAKE_INSTRUCTIONS).unwrap();
        std::fs::set_permissions(&counter, std::fs::Permissions::from_mode(0o755)).unwrap();
        let counted = "{\"reason\":\"compiler-artifact\",\"target\":{\"kind\":[\"bench\"],\
             \"crate_types\":[\"bin\"],\"name\":\"instructions\",\
             \"src_path\":\"benches/instructions.rs\"},\
             \"executable\":\"$CARGO_TARGET_DIR/fake-instructions\",\"fresh\":false}";
        let build = p.path("fake-build");
        let artifact = "{\"reason\":\"compiler-artifact\",\"target\":{\"kind\":[\"bench\"],\
             \"crate_types\":[\"bin\"],\"name\":\"latency\",\"src_path\":\"benches/latency.rs\"},\
             \"executable\":\"$exe\",\"fresh\":false}";
        std::fs::write(
            &build,
            format!(
                "#!/bin/sh\nset -eu\necho 'Compiling...' >&2\n[ -n \"${{FAKE_BUILD_FAIL:-}}\" ] && exit 101\n\
                 exe=\"$CARGO_TARGET_DIR/fake-bench\"\n[ -n \"${{FAKE_SHARED_EXE:-}}\" ] && exe=\"$FAKE_SHARED_EXE\"\n\
                 mkdir -p \"$CARGO_TARGET_DIR\"\n[ \"$exe\" = \"{fake}\" ] || cp \"{fake}\" \"$exe\"\n\
                 {FAKE_UNITS}echo '{{\"reason\":\"build-finished\"}}'\necho \"{artifact}\"\n\
                 if [ -n \"${{FAKE_INSTRUCTIONS:-}}\" ]; then cp \"{counter}\" \"$CARGO_TARGET_DIR/fake-instructions\"; \
                 echo \"{counted}\"; fi\n",
                fake = fake.display(),
                artifact = artifact.replace('"', "\\\""),
                counter = counter.display(),
                counted = counted.replace('"', "\\\""),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&build, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        isolate_git(&mut cmd);
        let out = cmd
            .args(args)
            .current_dir(self.path("repo"))
            .output()
            .expect("git must be installed to test bench-pr.sh");
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the script in the scratch repository with `env` on top of the fake setup.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-pr.sh");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion");
        let mut cmd = Command::new("bash");
        isolate_git(&mut cmd);
        cmd.arg(script)
            .args(args)
            .current_dir(self.path("repo"))
            .env("BENCH_BUILD_CMD", self.path("fake-build"))
            .env("BENCH_INSTRUCTIONS", "off")
            .env("BENCH_ROUNDS", "2")
            .env("BENCH_GATE", env!("CARGO_BIN_EXE_bench-gate"))
            .env("CRITERION_HOME", self.path("criterion"))
            .env("CARGO_TARGET_DIR", self.path("target"))
            .env("TMPDIR", self.path("tmp"))
            .env("FIXTURES", fixtures)
            .env("FAKE_LOG", self.path("bench.log"))
            .env("FAKE_BASE", "base")
            .env("FAKE_HEAD", "same")
            .env("NO_COLOR", "1")
            .env_remove("BENCH_ARGS")
            .env_remove("BENCH_INTERLEAVE")
            .env_remove("BENCH_ROUND_ARGS")
            .env_remove("BENCH_ONCE")
            .env_remove("GUNGRAUN_RUNNER")
            .env_remove("BENCH_GATE_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn bench_log(&self) -> String {
        std::fs::read_to_string(self.path("bench.log")).unwrap_or_default()
    }

    /// The script's worktree is gone: unregistered and its temporary directory removed.
    fn assert_worktree_removed(&self) {
        let list = self.git(&["worktree", "list", "--porcelain"]);
        assert_eq!(list.matches("worktree ").count(), 1, "{list}");
        let left: Vec<_> = std::fs::read_dir(self.path("tmp")).unwrap().collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    }
}

/// Keeps git on the scratch repository even when the tests run under a git hook or another
/// process that points git elsewhere through the environment.
fn isolate_git(cmd: &mut Command) {
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
        "GIT_OBJECT_DIRECTORY",
        "GIT_CEILING_DIRECTORIES",
    ] {
        cmd.env_remove(var);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn same_code_on_both_sides_exits_0_and_benchmarks_base_in_a_worktree() {
    let p = Project::new();
    let out = p.run(&["HEAD"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("PASS"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("2 interleaved rounds"),
        "{}",
        stdout(&out)
    );
    let log = p.bench_log();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    // Two rounds of three groups (footprint/fixture, latency/fixture, throughput/fixture), both
    // sides each.
    assert_eq!(lines.len(), 12, "{log}");
    // (baseline, directory it ran in, executable); which side goes first is drawn.
    let target = p.path("target");
    for line in &lines {
        if line[0].starts_with("base-r") {
            assert!(line[1].contains("bench-pr."), "{log}");
            // Each side ran the executable of its own build: the base's from its own target
            // directory.
            assert_eq!(
                Path::new(line[2]),
                target.join("bench-pr-base/fake-bench"),
                "{log}"
            );
        } else {
            assert!(line[0].starts_with("head-r"), "{log}");
            assert!(line[1].ends_with("/repo"), "{log}");
            assert_eq!(Path::new(line[2]), target.join("fake-bench"), "{log}");
        }
    }
    p.assert_worktree_removed();
}

#[test]
fn the_base_build_starts_from_heads_third_party_units_never_from_its_workspace_crates() {
    let p = Project::new();
    let out = p.run(&["HEAD"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head = p.path("target");
    let base = head.join("bench-pr-base");
    let built_in = |dir: &Path, file: &str| {
        std::fs::read_to_string(dir.join("release/deps").join(file))
            .unwrap_or_else(|e| panic!("{file} in {}: {e}", dir.display()))
    };
    // The dependency was copied from HEAD's build (the base's build found it and kept it) ...
    assert_eq!(
        built_in(&base, "libdep-0123456789abcdef.rlib").trim(),
        head.display().to_string()
    );
    assert!(base
        .join("release/.fingerprint/dep-0123456789abcdef")
        .is_dir());
    // ... the workspace crate was built by the base's own build, and its fingerprint not copied.
    assert_eq!(
        built_in(&base, "libmember-fedcba9876543210.rlib").trim(),
        base.display().to_string()
    );
    assert!(
        stderr(&out).contains("seeded the base's target directory with 2 entries"),
        "{}",
        stderr(&out)
    );
    // A second run finds the base's units in place and copies nothing.
    let out = p.run(&["HEAD"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("with 0 entries"), "{}", stderr(&out));
}

#[test]
fn builds_that_name_one_executable_for_both_sides_exit_1_before_benchmarking() {
    // What a target directory shared by both sides did: the second build's executables were the
    // first's, and every comparison ran one side's code twice.
    let p = Project::new();
    let shared = p.path("fake-bench");
    let out = p.run(&["HEAD"], &[("FAKE_SHARED_EXE", shared.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the same executable"),
        "{}",
        stderr(&out)
    );
    assert!(p.bench_log().is_empty(), "{}", p.bench_log());
    p.assert_worktree_removed();
}

#[test]
fn group_rounds_pair_the_sides_group_by_group_each_side_first_once_per_two_rounds() {
    let p = Project::new();
    let out = p.run(&["HEAD", "--format", "json"], &[("BENCH_ROUNDS", "2")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs: Vec<(String, String)> = p
        .bench_log()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].to_string(),
                f.get(3).copied().unwrap_or("").to_string(),
            )
        })
        .collect();
    let g = |id: &str| format!("^({id})$");
    let groups = [
        g("footprint/fixture/strings/1000"),
        g("latency/fixture/spin_large|latency/fixture/spin_small"),
        g("throughput/fixture/batch/64"),
    ];
    // Round by round, group by group, both sides back to back.
    assert_eq!(runs.len(), 12, "{runs:?}");
    for (i, pair) in runs.chunks(2).enumerate() {
        let (round, group) = (i / 3 + 1, &groups[i % 3]);
        let mut sides: Vec<&str> = pair.iter().map(|r| r.0.as_str()).collect();
        assert!(pair.iter().all(|r| &r.1 == group), "{runs:?}");
        sides.sort_unstable();
        assert_eq!(
            sides,
            [format!("base-r{round}"), format!("head-r{round}")],
            "{runs:?}"
        );
    }
    // Each group runs the base first in exactly one of the two rounds (which one is drawn).
    for n in 0..3 {
        let firsts: Vec<bool> = [n, n + 3]
            .iter()
            .map(|&i| runs[2 * i].0.starts_with("base"))
            .collect();
        assert_eq!(firsts.iter().filter(|&&b| b).count(), 1, "{runs:?}");
    }
    // Every benchmark of both sides in both rounds, paired by the gate.
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = report["benchmarks"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{report}");
    for row in rows {
        assert_eq!(
            row["round_changes_pct"].as_array().map(Vec::len),
            Some(2),
            "{row}"
        );
    }
}

#[test]
fn a_filter_in_bench_args_narrows_the_groups_and_two_filters_are_an_error() {
    let p = Project::new();
    let out = p.run(&["HEAD"], &[("BENCH_ARGS", "--sample-size 10 spin_small")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let filters: Vec<String> = p
        .bench_log()
        .lines()
        .map(|l| l.split(' ').nth(3).unwrap_or("").to_string())
        .collect();
    assert_eq!(filters.len(), 4, "{filters:?}");
    assert!(
        filters
            .iter()
            .all(|f| f == "^(latency/fixture/spin_small)$"),
        "{filters:?}"
    );
    let p = Project::new();
    let out = p.run(&["HEAD"], &[("BENCH_ARGS", "spin_small spin_large")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("two filters"), "{}", stderr(&out));
    p.assert_worktree_removed();
}

#[test]
fn suite_rounds_run_in_abba_order_each_saved_as_its_own_baseline() {
    let p = Project::new();
    let out = p.run(
        &["HEAD"],
        &[("BENCH_ROUNDS", "4"), ("BENCH_INTERLEAVE", "suite")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let order: Vec<String> = p
        .bench_log()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        order,
        ["base-r1", "head-r1", "head-r2", "base-r2", "base-r3", "head-r3", "head-r4", "base-r4"]
    );
    let listed = Command::new(env!("CARGO_BIN_EXE_bench-gate"))
        .args(["list", "--criterion-dir"])
        .arg(p.path("criterion"))
        .output()
        .unwrap();
    assert!(stdout(&listed).contains("head-r4"), "{}", stdout(&listed));
}

#[test]
fn a_crashed_round_exits_1_naming_the_round() {
    let p = Project::new();
    let out = p.run(&["HEAD"], &[("FAKE_FAIL", "head-r2")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("in head-r2"), "{}", stderr(&out));
    p.assert_worktree_removed();
}

#[test]
fn a_skipped_instruction_channel_is_a_warning_in_the_report_or_an_error_when_required() {
    let p = Project::new();
    let missing = [
        ("BENCH_INSTRUCTIONS", "auto"),
        ("GUNGRAUN_RUNNER", "/nonexistent/runner"),
    ];
    let out = p.run(&["HEAD", "--format", "markdown"], &missing);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("instruction counts skipped"),
        "{}",
        stdout(&out)
    );
    let required = [
        ("BENCH_INSTRUCTIONS", "required"),
        ("GUNGRAUN_RUNNER", "/nonexistent/runner"),
    ];
    let out = p.run(&["HEAD"], &required);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("BENCH_INSTRUCTIONS=required"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn instructions_are_counted_twice_per_side_in_abba_order_and_one_outlying_count_does_not_fail() {
    let p = Project::new();
    // A fake valgrind on PATH and a fake runner: the script only checks that they answer.
    let bin = p.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["valgrind", "gungraun-runner"] {
        std::fs::write(bin.join(tool), "#!/bin/sh\necho fake\n").unwrap();
        std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let runner = bin.join("gungraun-runner").display().to_string();
    let gungraun = p.path("gungraun").display().to_string();
    let env = |counts: &'static str| {
        [
            ("BENCH_INSTRUCTIONS", "required"),
            ("FAKE_INSTRUCTIONS", "1"),
            ("FAKE_COUNTS", counts),
        ]
    };
    let run = |counts: &'static str, extra: &[(&str, &str)]| {
        let _ = std::fs::remove_file(p.path("bench.log"));
        let mut all: Vec<(&str, &str)> = env(counts).to_vec();
        all.extend_from_slice(&[
            ("PATH", path.as_str()),
            ("GUNGRAUN_RUNNER", runner.as_str()),
            ("GUNGRAUN_HOME", gungraun.as_str()),
        ]);
        all.extend_from_slice(extra);
        p.run(&["HEAD", "--format", "json"], &all)
    };
    // base counted 5,902 once and 6,216 the second time, head 6,216 both times: inconclusive,
    // so the gate passes.
    let out = run(
        "base=5902 head=6216 head_repeat2=6216 base_repeat2=6216",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let counted: Vec<String> = p
        .bench_log()
        .lines()
        .filter_map(|l| l.strip_prefix("instructions ").map(str::to_string))
        .collect();
    assert_eq!(counted, ["base", "head", "head_repeat2", "base_repeat2"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = report["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "instructions/stm/append/s64")
        .unwrap()
        .clone();
    assert_eq!(row["verdict"], "inconclusive", "{row}");
    assert_eq!(
        row["samples"],
        serde_json::json!({"base": 2, "new": 2}),
        "{row}"
    );

    // Counted once per side (and a stale repeat of the first run deleted), the outlier decides.
    let out = run("base=5902 head=6216", &[("BENCH_INSTRUCTION_COUNTS", "1")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Both counts of a side agree on a real change: regressed.
    let out = run(
        "base=6000 head=6216 head_repeat2=6216 base_repeat2=6000",
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run("base=1", &[("BENCH_INSTRUCTION_COUNTS", "0")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("BENCH_INSTRUCTION_COUNTS='0'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_regression_exits_2_with_the_markdown_report_on_stdout() {
    let p = Project::new();
    let out = p.run(
        &["HEAD", "--format", "markdown"],
        &[("FAKE_HEAD", "slow25")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.starts_with("<!-- bench-gate-report -->"), "{md}");
    // Every fake round is the same copy, so the rounds agree exactly: both spin benchmarks of
    // `slow25` (+22.8%, +10.7%) are beyond +10% in each round.
    assert!(md.contains("2 regressions"), "{md}");
    assert!(
        md.contains("Change per round of flagged benchmarks"),
        "{md}"
    );
    p.assert_worktree_removed();
}

#[test]
fn html_writes_the_page_of_the_rounds_with_the_per_round_changes_of_flagged_benchmarks() {
    let p = Project::new();
    // In a directory that does not exist yet (a fresh checkout has no target/): made.
    let page = p.path("reports/pr/page.html");
    let out = p.run(
        &[
            "HEAD",
            "--format",
            "markdown",
            "--html",
            page.to_str().unwrap(),
        ],
        &[("FAKE_HEAD", "slow25")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("2 interleaved rounds, paired"), "{html}");
    // Both regressed benchmarks carry their two rounds' changes; the page shows the same
    // warning as the report (the instruction channel is off in these tests).
    assert_eq!(html.matches("data-round-changes-pct=").count(), 2, "{html}");
    assert!(html.contains("instruction counts skipped"), "{html}");
    p.assert_worktree_removed();
    // A page whose directory cannot be made (a file is in the way, whoever runs the test) is
    // an error before any benchmark runs.
    let p = Project::new();
    std::fs::write(p.path("blocker"), "a file, not a directory").unwrap();
    let unwritable = p.path("blocker/page.html");
    let out = p.run(&["HEAD", "--html", unwritable.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("blocker"), "{}", stderr(&out));
    assert_eq!(p.bench_log(), "");
}

#[test]
fn a_failing_benchmark_run_exits_1_and_still_removes_the_worktree() {
    for side in ["base", "head"] {
        let p = Project::new();
        let out = p.run(&["HEAD"], &[("FAKE_FAIL", &format!("{side}-r1"))]);
        assert_eq!(out.status.code(), Some(1), "{side}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("benchmarking {side} failed")),
            "{}",
            stderr(&out)
        );
        p.assert_worktree_removed();
    }
    let p = Project::new();
    let out = p.run(&["HEAD"], &[("FAKE_BUILD_FAIL", "1")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // HEAD builds first (it seeds the base's target directory), so its failure is the one seen.
    assert!(stderr(&out).contains("building the benchmarks of head failed"));
    assert_eq!(p.bench_log(), "");
    p.assert_worktree_removed();
}

#[test]
fn a_gate_error_exits_1_not_its_own_code() {
    let p = Project::new();
    let broken_gate = p.path("broken-gate");
    std::fs::write(&broken_gate, "#!/bin/sh\nexit 101\n").unwrap();
    std::fs::set_permissions(&broken_gate, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = p.run(&["HEAD"], &[("BENCH_GATE", broken_gate.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("bench-gate failed (exit 101)"));
    p.assert_worktree_removed();
}

#[test]
fn bad_arguments_exit_1_before_any_benchmark_runs() {
    let p = Project::new();
    for args in [
        &[][..],
        &["no-such-ref"][..],
        &["HEAD", "--format", "html"][..],
        &["HEAD", "--format"][..],
        &["HEAD", "--html"][..],
        &["HEAD", "extra"][..],
    ] {
        let out = p.run(args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} printed no reason");
    }
    for env in [
        ("BENCH_ROUNDS", "0"),
        ("BENCH_ROUNDS", "x"),
        ("BENCH_INSTRUCTIONS", "maybe"),
        ("BENCH_INTERLEAVE", "bench"),
        ("BENCH_ARGS", "one two"),
    ] {
        let out = p.run(&["HEAD"], &[env]);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{env:?} printed no reason");
    }
    assert_eq!(p.bench_log(), "", "a benchmark ran despite bad arguments");
    p.assert_worktree_removed();
}
