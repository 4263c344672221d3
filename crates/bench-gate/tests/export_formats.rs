//! The export against the rules of the tools that read it: critcmp's data model of a baseline
//! file (mirrored below from critcmp's `src/data.rs`: every field it requires, nothing it does
//! not), and the Bencher Metric Format's JSON schema (an object of benchmarks, each an object of
//! measures, each with a numeric `value` and optional `lower_value`/`upper_value`).

use std::collections::BTreeMap;
use std::path::Path;

use bench_gate::export::{self, ExportFile};
use bench_gate::machine::Machine;
use bench_gate::{criterion, Config, Unit};
use serde::Deserialize;

/// critcmp's `BaseBenchmarks`: one baseline file, keyed by `name` when several are loaded.
#[derive(Deserialize)]
struct BaseBenchmarks {
    name: String,
    benchmarks: BTreeMap<String, CritcmpBenchmark>,
}

#[derive(Deserialize)]
struct CritcmpBenchmark {
    baseline: String,
    fullname: String,
    #[serde(rename = "criterion_benchmark_v1")]
    info: CBenchmark,
    #[serde(rename = "criterion_estimates_v1")]
    estimates: CEstimates,
}

#[derive(Deserialize)]
#[allow(dead_code)] // fields exist to be required, as critcmp requires them
struct CBenchmark {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<CThroughput>,
    full_id: String,
    directory_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct CThroughput {
    bytes: Option<u64>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CEstimates {
    mean: CStats,
    median: CStats,
    median_abs_dev: CStats,
    slope: CStats,
    std_dev: CStats,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CStats {
    confidence_interval: CConfidenceInterval,
    point_estimate: f64,
    standard_error: f64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CConfidenceInterval {
    confidence_level: f64,
    lower_bound: f64,
    upper_bound: f64,
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion")
}

fn machine(commit: &str) -> Machine {
    Machine {
        cpu_model: "test cpu".into(),
        cores: 2,
        os: "test os".into(),
        rustc: "rustc test".into(),
        date: "2026-12-01T00:00:00Z".into(),
        git_commit: Some(commit.into()),
    }
}

fn export_of(name: &str, commit: &str) -> (ExportFile, String) {
    let baseline = criterion::load(&fixtures(), name).unwrap();
    let file = export::to_export(&baseline, &Config::default(), machine(commit));
    let json = export::to_json(&file);
    (file, json)
}

#[test]
fn critcmp_reads_the_export_and_sees_only_time_valued_benchmarks() {
    let (file, json) = export_of("base", "0123456789abcdef");
    let parsed: BaseBenchmarks = serde_json::from_str(&json).expect("critcmp's model parses it");
    assert_eq!(parsed.name, "base@0123456");
    assert!(!parsed.benchmarks.is_empty());
    for (id, b) in &parsed.benchmarks {
        assert_eq!(b.baseline, parsed.name, "{id}");
        assert_eq!(b.fullname, format!("{}/{id}", parsed.name));
        assert_eq!(&b.info.full_id, id);
        assert!(b.estimates.mean.point_estimate > 0.0);
        // critcmp prints every value as a duration: only nanoseconds may be here.
        assert_eq!(file.benchmarks[id].unit, Some(Unit::Nanoseconds), "{id}");
    }
    // The byte-valued fixture benchmark is out of critcmp's sight, but still in the file.
    let bytes: Vec<&String> = file.measurements.keys().collect();
    assert_eq!(bytes, ["footprint/fixture/strings/1000"]);
    assert_eq!(
        file.measurements["footprint/fixture/strings/1000"].unit,
        Some(Unit::Bytes)
    );
    assert!(!parsed
        .benchmarks
        .contains_key("footprint/fixture/strings/1000"));
}

#[test]
fn exports_of_different_commits_get_different_critcmp_keys() {
    let (a, _) = export_of("base", "aaaaaaa1");
    let (b, _) = export_of("base", "bbbbbbb2");
    assert_ne!(
        a.name, b.name,
        "critcmp would keep only the last of the two"
    );
    let renamed = b.renamed("main-bbbbbbb-quick");
    let json = export::to_json(&renamed);
    let parsed: BaseBenchmarks = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.name, "main-bbbbbbb-quick");
    assert!(parsed.benchmarks.values().all(
        |x| x.baseline == "main-bbbbbbb-quick" && x.fullname.starts_with("main-bbbbbbb-quick/")
    ));
}

#[test]
fn an_export_reads_back_with_every_benchmark_and_compares_like_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (_, json) = export_of("slow25", "cafe");
    let path = dir.path().join("slow25.json");
    std::fs::write(&path, json).unwrap();
    let back = export::read(&path).unwrap();
    let original = criterion::load(&fixtures(), "slow25").unwrap();
    assert_eq!(
        back.benchmarks.keys().collect::<Vec<_>>(),
        original.benchmarks.keys().collect::<Vec<_>>()
    );
    let base = criterion::load(&fixtures(), "base").unwrap();
    let config = Config::default();
    let from_dir = bench_gate::compare(&base, &original, &config).unwrap();
    let from_file = bench_gate::compare(&base, &back, &config).unwrap();
    let verdicts = |r: &bench_gate::Report| {
        r.rows
            .iter()
            .map(|row| (row.id.clone(), row.verdict))
            .collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&from_dir), verdicts(&from_file));
}

#[test]
fn bmf_follows_bencher_schema_with_a_measure_per_kind() {
    let baseline = criterion::load(&fixtures(), "base").unwrap();
    let bmf = export::to_bmf(&baseline, &Config::default()).unwrap();
    let json = serde_json::to_value(&bmf).unwrap();
    let benchmarks = json.as_object().expect("an object of benchmarks");
    assert_eq!(benchmarks.len(), baseline.benchmarks.len());
    for (name, measures) in benchmarks {
        let measures = measures.as_object().expect("an object of measures");
        assert_eq!(measures.len(), 1, "{name}");
        for (slug, metric) in measures {
            assert!(!slug.is_empty() && slug.len() <= 64, "{slug}");
            let metric = metric.as_object().unwrap();
            assert!(metric["value"].is_f64(), "{name}: {metric:?}");
            for key in metric.keys() {
                assert!(
                    ["value", "lower_value", "upper_value"].contains(&key.as_str()),
                    "{key}"
                );
            }
            if let (Some(lo), Some(hi)) = (metric.get("lower_value"), metric.get("upper_value")) {
                let v = metric["value"].as_f64().unwrap();
                assert!(lo.as_f64().unwrap() <= v && v <= hi.as_f64().unwrap());
            }
        }
    }
    assert!(benchmarks["latency/fixture/spin_small"]
        .get("latency")
        .is_some());
    assert!(benchmarks["throughput/fixture/batch/64"]
        .get("throughput")
        .is_some());
    assert!(benchmarks["footprint/fixture/strings/1000"]
        .get("footprint-bytes")
        .is_some());
}
