//! Retrieval quality on conversations in the LoCoMo format: recall of evidence turns per search
//! mode and embedder, MRR, evidence inside packed contexts, and transition accuracy through
//! short-term memory. Each figure is a benchmark `quality/<dataset>/<embedder>/<mode>/<metric>`
//! whose value (a [`Ratio`]) is the figure, so baselines keep it and the gate compares it.
//!
//! The dataset: `MEMBENCH_LOCOMO=path[,path...]` (LoCoMo JSON files), else a generated one.
//! The backend: the embedded default; built with `--features postgres` and with
//! `MEMORY_CORE_POSTGRES_URL` set, also a PostgreSQL + pgvector long-term store (ids
//! `quality/<dataset>/<embedder>/postgres/...`), with a printed parity table of the two.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use memory_bench::conversations::{self, ConversationConfig};
use memory_bench::locomo::{Dataset, EvidenceReport};
use memory_bench::ratio::{self, Ratio};
use memory_bench::retrieval::{
    self, Backend, NamedEmbedder, QualityRow, TransitionOutcome, TransitionRow, METRICS,
};
use memory_bench::{servers, settings, stats};
use serde_json::json;

/// The environment variable naming dataset files.
const DATASET_VAR: &str = "MEMBENCH_LOCOMO";

fn main() {
    stats::run_started();
    let s = settings();
    eprintln!("{}", s.banner());
    let started = Instant::now();
    let datasets = match datasets(s.test_mode) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let backends = match backends() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let results = match measure(&datasets, &embedders(), &backends) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "quality: figures computed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Constant figures have no distribution to plot.
    let mut c = s
        .configure(Criterion::default().with_measurement(Ratio))
        .without_plots();
    report_to_criterion(&mut c, &results);
    c.final_summary();

    print!(
        "\n{}",
        retrieval::format_table(&results.rows, &results.transitions)
    );
    if backends.len() > 1 {
        print!("\n{}", retrieval::format_parity(&results.rows));
    }
    if s.test_mode {
        // A smoke run's figures (one conversation) must not replace a real run's table.
        return;
    }
    let path = bench_gate::locate::criterion_dir().join("membench-quality-locomo.json");
    match retrieval::write_json(
        &path,
        &results.rows,
        &results.transitions,
        &results.datasets,
    ) {
        Ok(()) => println!("quality table written to {}", path.display()),
        Err(e) => eprintln!("warning: cannot write {}: {e}", path.display()),
    }
}

/// The embedders measured, each under its own name in the ids; each gets its own store per
/// conversation. Another embedder (a sentence embedder behind a cargo feature) joins by being
/// pushed here as a `NamedEmbedder` with its `Arc<dyn Embedder>`.
fn embedders() -> Vec<NamedEmbedder> {
    #[allow(unused_mut)] // pushed to with the minilm feature
    let mut out = vec![NamedEmbedder::hashing()];
    #[cfg(feature = "minilm")]
    match NamedEmbedder::minilm() {
        Ok(m) => out.push(m),
        Err(why) => eprintln!("quality: minilm SKIPPED: {why}"),
    }
    #[cfg(not(feature = "minilm"))]
    eprintln!("quality: minilm not measured (build with --features minilm)");
    out
}

/// The long-term backends measured: the embedded default always; PostgreSQL too when
/// memory-bench is built with `--features postgres` and `MEMORY_CORE_POSTGRES_URL` names a
/// server (`Err` when `MEMORY_CORE_REQUIRE_SERVERS=1` but it cannot be measured).
fn backends() -> Result<Vec<Backend>, String> {
    let mut out = vec![Backend::Embedded];
    match postgres_backend() {
        Ok(pg) => out.push(pg),
        Err(why) if servers::required() => {
            return Err(format!(
                "{}=1 but the postgres backend cannot be measured: {why}",
                servers::REQUIRE_VAR
            ))
        }
        Err(why) => eprintln!("quality: postgres not measured: {why}"),
    }
    Ok(out)
}

/// The PostgreSQL backend, or why not.
#[cfg(feature = "postgres")]
fn postgres_backend() -> Result<Backend, String> {
    servers::postgres_url().map(|url| Backend::Postgres { url })
}

#[cfg(not(feature = "postgres"))]
fn postgres_backend() -> Result<Backend, String> {
    Err(
        "built without the `postgres` feature (cargo bench --features postgres --bench quality)"
            .into(),
    )
}

/// A dataset and the name its benchmark ids use.
struct NamedDataset {
    name: String,
    dataset: Dataset,
}

fn datasets(test_mode: bool) -> Result<Vec<NamedDataset>, String> {
    let var = std::env::var(DATASET_VAR).unwrap_or_default();
    let paths: Vec<PathBuf> = var
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        let config = if test_mode {
            ConversationConfig::small()
        } else {
            ConversationConfig::default()
        };
        return Ok(vec![NamedDataset {
            name: "generated".to_string(),
            dataset: conversations::generate(&config),
        }]);
    }
    let mut out: Vec<NamedDataset> = Vec::with_capacity(paths.len());
    for path in paths {
        let mut dataset = Dataset::load(&path).map_err(|e| e.to_string())?;
        if test_mode {
            // A smoke run touches every code path on a sliver of the data.
            dataset.conversations.truncate(1);
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut name = retrieval::id_part(&stem);
        while out.iter().any(|d| d.name == name) {
            name.push('_');
        }
        out.push(NamedDataset { name, dataset });
    }
    Ok(out)
}

/// Every figure of the run.
struct Results {
    rows: Vec<QualityRow>,
    transitions: Vec<TransitionRow>,
    datasets: Vec<serde_json::Value>,
}

fn measure(
    datasets: &[NamedDataset],
    embedders: &[NamedEmbedder],
    backends: &[Backend],
) -> Result<Results, String> {
    let mut results = Results {
        rows: Vec::new(),
        transitions: Vec::new(),
        datasets: Vec::new(),
    };
    for d in datasets {
        let resolved: Vec<_> = d
            .dataset
            .conversations
            .iter()
            .map(|c| c.resolve())
            .collect();
        let reports: Vec<&EvidenceReport> = resolved.iter().map(|(_, r)| r).collect();
        let scored: usize = reports
            .iter()
            .map(|r| r.questions - r.without_evidence)
            .sum();
        eprintln!(
            "quality: {}: {} conversations, {} turns, {} questions ({} with evidence)",
            d.name,
            d.dataset.conversations.len(),
            d.dataset.turns(),
            d.dataset.questions(),
            scored
        );
        for r in reports.iter().filter(|r| r.has_problems()) {
            eprintln!("  evidence: {r}");
        }
        // Counted once per dataset: every backend and embedder store the same turns (the first
        // pass's counts stand for all); what the engine cannot search depends on the embedder
        // (a question of no words it knows), so that is the largest count of any pass.
        let (mut rejected, mut rejected_evidence, mut refused_streaming) = (0, 0, 0);
        let mut unsearchable = 0;
        let passes = backends
            .iter()
            .flat_map(|b| embedders.iter().map(move |e| (b, e)));
        for (pass, (backend, embedder)) in passes.enumerate() {
            let t0 = Instant::now();
            let mut outcomes = Vec::new();
            let mut transition = TransitionOutcome::default();
            let mut pass_unsearchable = 0;
            for (conv, (questions, _)) in d.dataset.conversations.iter().zip(&resolved) {
                let err = |what: &str, e: memory_core::Error| {
                    format!(
                        "{} / {} / {} / {}: {what}: {e}",
                        d.name,
                        embedder.name,
                        backend.name(),
                        conv.sample_id
                    )
                };
                let out = retrieval::evaluate_retrieval(conv, questions, embedder, backend)
                    .map_err(|x| err("retrieval", x))?;
                let t = retrieval::stream_transition(conv, questions, embedder, backend)
                    .map_err(|x| err("transition", x))?;
                if pass == 0 {
                    rejected += out.rejected_turns;
                    rejected_evidence += out.rejected_evidence;
                    refused_streaming += t.rejected_turns;
                }
                pass_unsearchable += out.unsearchable;
                outcomes.extend(out.questions);
                transition.merge(&t);
            }
            unsearchable = unsearchable.max(pass_unsearchable);
            eprintln!(
                "quality: {} / {} / {}: measured in {:.1} s",
                d.name,
                embedder.name,
                backend.name(),
                t0.elapsed().as_secs_f64()
            );
            results.rows.extend(retrieval::rows(
                &d.name,
                &embedder.name,
                backend.name(),
                &outcomes,
            ));
            results.transitions.push(TransitionRow {
                dataset: d.name.clone(),
                embedder: embedder.name.clone(),
                backend: backend.name().to_string(),
                outcome: transition,
                evidence_kept: transition.evidence_kept(),
                turns_kept: transition.turns_kept(),
            });
        }
        if rejected > 0 {
            eprintln!(
                "  warning: the store refused {rejected} turns (empty or oversized text); \
                 {rejected_evidence} evidence references name them and count as missed"
            );
        }
        if refused_streaming > 0 {
            eprintln!(
                "  warning: short-term memory refused {refused_streaming} turns (counted as not \
                 kept)"
            );
        }
        if unsearchable > 0 {
            eprintln!(
                "  warning: the engine refused to search {unsearchable} questions (scored 0)"
            );
        }
        results.datasets.push(json!({
            "name": d.name,
            "conversations": d.dataset.conversations.len(),
            "turns": d.dataset.turns(),
            "questions": d.dataset.questions(),
            "scored_questions": scored,
            "evidence": reports,
        }));
    }
    Ok(results)
}

/// The id segment naming a backend: none for the embedded default (its ids predate the
/// others), `/<backend>` otherwise.
fn backend_part(backend: &str) -> String {
    if backend == Backend::Embedded.name() {
        String::new()
    } else {
        format!("/{backend}")
    }
}

/// One Criterion benchmark per figure: `quality/<dataset>/<embedder>[/<backend>]/<mode>/<metric>`
/// for the overall means, `quality/<dataset>/<embedder>[/<backend>]/transition/{evidence_kept,
/// turns_kept}` (no `evidence_kept` for a dataset without questions); the backend segment is left
/// out for the embedded default.
fn report_to_criterion(c: &mut Criterion<Ratio>, results: &Results) {
    let mut figures: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for r in results.rows.iter().filter(|r| r.category == "all") {
        let group = format!(
            "quality/{}/{}{}/{}",
            r.dataset,
            r.embedder,
            backend_part(&r.backend),
            r.mode
        );
        let metrics = METRICS
            .iter()
            .map(|m| (m.to_string(), r.metrics.get(*m).copied().unwrap_or(0.0)))
            .collect();
        figures.insert(group, metrics);
    }
    for t in &results.transitions {
        let mut kept = vec![("turns_kept".to_string(), t.turns_kept)];
        // A dataset without questions (a small-talk corpus) has no evidence to keep.
        if t.outcome.evidence_turns > 0 {
            kept.insert(0, ("evidence_kept".to_string(), t.evidence_kept));
        }
        figures.insert(
            format!(
                "quality/{}/{}{}/transition",
                t.dataset,
                t.embedder,
                backend_part(&t.backend)
            ),
            kept,
        );
    }
    for (group, metrics) in figures {
        let mut g = c.benchmark_group(group);
        // Each call returns a precomputed figure: no warm-up or long measurement is needed, and
        // flat sampling keeps the same iteration count for every sample.
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_nanos(1))
            .measurement_time(Duration::from_millis(10))
            .nresamples(10_000);
        for (metric, figure) in metrics {
            g.bench_function(metric, |b| {
                b.iter_custom(|iters| ratio::scaled(figure, iters))
            });
        }
        g.finish();
    }
}
