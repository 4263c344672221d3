//! The HTML pages as a person sees them: each is loaded from disk in headless Chromium (driven by
//! `tests/browser/check-pages.mjs` through playwright-core), which must report no console error,
//! no script error and no request leaving the file, every card's charts laid out with their
//! marks, the first flagged benchmark explained within the first screen, and the history's
//! filter box narrowing the charts. Screenshots land in `target/tmp/bench-gate-browser/`.
//!
//! Needs Chromium (`apt-get install chromium`; or `BENCH_GATE_CHROMIUM=/path`), node and
//! `npm ci --prefix crates/bench-gate/tests/browser`. Without them the test says what is missing
//! and passes, unless `BENCH_GATE_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BENCH_GATE_CHROMIUM").filter(|p| !p.is_empty()) {
        // Named explicitly: that one or none, never another found on PATH.
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

/// What the browser test needs, or why it cannot run here.
fn requirements() -> Result<PathBuf, String> {
    let chromium = find_chromium().ok_or(
        "no Chromium found (apt-get install chromium, or set BENCH_GATE_CHROMIUM)".to_string(),
    )?;
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not on PATH".into());
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        return Err(
            "playwright-core is not installed (npm ci --prefix crates/bench-gate/tests/browser)"
                .into(),
        );
    }
    Ok(chromium)
}

fn required() -> bool {
    std::env::var("BENCH_GATE_REQUIRE_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn run_history(s: &Scratch, ten: &TenExports, page: &Path) {
    let mut args = vec!["history".to_string()];
    args.extend(ten.files.iter().map(|f| path(f).to_string()));
    args.extend(["--html".into(), path(page).to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.run_in(Some(&ten.repo), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn pages_render_in_headless_chromium_with_their_charts_and_no_errors() {
    let chromium = match requirements() {
        Ok(c) => c,
        Err(why) if required() => panic!("BENCH_GATE_REQUIRE_BROWSER is set but {why}"),
        Err(why) => {
            // Written to the handle, not through eprintln!, which the test harness captures:
            // a skip must show in a plain `cargo test`.
            let _ = writeln!(std::io::stderr(), "browser test SKIPPED: {why}");
            return;
        }
    };
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-gate-browser");
    std::fs::create_dir_all(&out_dir).unwrap();
    let s = Scratch::new();
    // A Criterion page to link to, as the default and full profiles write them.
    let report_dir = s.path("criterion/latency_fixture/spin_small/report");
    std::fs::create_dir_all(&report_dir).unwrap();
    std::fs::write(
        report_dir.join("index.html"),
        "<!DOCTYPE html><title>c</title>",
    )
    .unwrap();
    let regression = s.path("comparison.html");
    let (code, _) = s.report("base", "slow25", &regression);
    assert_eq!(code, 2);
    let quiet = s.path("comparison-pass.html");
    let (code, _) = s.report("base", "same", &quiet);
    assert_eq!(code, 0);
    let ten = ten_exports(&s);
    let history = s.path("history.html");
    run_history(&s, &ten, &history);

    let spec = json!({
        "chromium": chromium,
        "outDir": out_dir,
        "pages": [
            {"name": "comparison", "file": regression},
            {"name": "comparison-pass", "file": quiet},
            {"name": "history", "file": history, "filter": "latency/"},
        ],
    });
    let spec_file = s.path("spec.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let out = Command::new("node")
        .arg(browser_dir().join("check-pages.mjs"))
        .arg(&spec_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check-pages.mjs failed: {}",
        stderr(&out)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), 3);

    for r in &results {
        let name = r["name"].as_str().unwrap();
        assert_eq!(r["errors"], json!([]), "{name}: script errors");
        let bad: Vec<&Value> = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "error" || m["type"] == "warning")
            .collect();
        assert!(bad.is_empty(), "{name}: console {bad:?}");
        assert_eq!(r["external"], json!([]), "{name}: requests beyond the file");
        let cards = r["layout"]["cards"].as_array().unwrap();
        assert_eq!(cards.len(), 4, "{name}: one card per benchmark");
        for card in cards {
            let charts = card["charts"].as_array().unwrap();
            assert!(!charts.is_empty(), "{name}: {card}");
            for chart in charts {
                assert!(chart["width"].as_f64().unwrap() > 100.0, "{name}: {chart}");
                assert!(chart["height"].as_f64().unwrap() > 50.0, "{name}: {chart}");
                assert!(chart["marks"].as_u64().unwrap() > 10, "{name}: {chart}");
            }
        }
        for suffix in ["", "-full"] {
            let png = out_dir.join(format!("{name}{suffix}.png"));
            let bytes = std::fs::read(&png).unwrap();
            assert!(
                bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
                "{png:?}"
            );
        }
    }

    // The regression: named in the banner, and its card's explanation and charts are on the
    // first screen (1280 x 900), so a reader sees what and why without scrolling.
    let comparison = &results[0]["layout"];
    let banner = comparison["banner"].as_str().unwrap();
    assert!(banner.contains("FAIL: 1 benchmark regressed"), "{banner}");
    let first = &comparison["firstFlagged"];
    assert_eq!(first["id"], SPIN_SMALL);
    let screen = comparison["viewportHeight"].as_f64().unwrap();
    assert!(
        first["plots"]["bottom"].as_f64().unwrap() <= screen,
        "the flagged benchmark's charts end below the first screen: {first}"
    );
    let cards = comparison["cards"].as_array().unwrap();
    assert_eq!(cards[0]["verdict"], "regressed");
    assert_eq!(cards[0]["charts"].as_array().unwrap().len(), 2);

    let pass = &results[1]["layout"];
    assert!(pass["banner"].as_str().unwrap().contains("nothing flagged"));
    assert_eq!(pass["firstFlagged"], Value::Null);

    // The history's filter box keeps exactly the charts whose id starts with the prefix.
    let filter = &results[2]["filter"];
    let visible: Vec<&str> = filter["visible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(visible, [SPIN_SMALL, SPIN_LARGE]);
    assert_eq!(filter["shown"], "showing 2 of 4");
    eprintln!("screenshots in {}", out_dir.display());
}
