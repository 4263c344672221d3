//! How the defaults of hybrid search were chosen: retrieval quality on LoCoMo-format
//! conversations for each fusion method, vector weight and candidate depth, per embedder.
//!
//! ```sh
//! cargo run --release --example fusion_sweep                      # the generated dataset, hashing
//! cargo run --release --features minilm --example fusion_sweep    # and MiniLM (scripts/fetch-minilm.sh)
//! MEMBENCH_LOCOMO=target/datasets/cri.json cargo run --release --example fusion_sweep
//! SWEEP_EMBEDDERS=hashing cargo run --release --example fusion_sweep   # only the named embedders
//! ```
//!
//! Each turn is embedded once per embedder and handed to the store with `with_embedding`, and
//! each question's vector with `with_vector`, so that a configuration costs a store and its
//! searches, not a model run. Prints R@1, R@5, R@10 and MRR@10 over all questions with
//! evidence. `SWEEP_FUSIONS=minmax`, `SWEEP_DEPTHS=50` and `SWEEP_WEIGHTING=standout` (or
//! `fixed`: the vector weight as configured, or moved per query by
//! `SearchConfig::weight_by_standout`) narrow the grid.

use std::sync::Arc;

use memory_bench::conversations::{self, ConversationConfig};
use memory_bench::locomo::{Conversation, Dataset, ResolvedQuestion};
use memory_bench::retrieval::{recall_at, reciprocal_rank};
use memory_core::{
    Embedder, EntryId, Fusion, HashingEmbedder, Memory, MemoryConfig, NewEntry, Role, SearchConfig,
    SearchMode, SearchQuery, Storage, Tiers,
};

struct Prepared {
    conv: Conversation,
    resolved: Vec<ResolvedQuestion>,
    turns: Vec<Vec<f32>>,
    questions: Vec<Vec<f32>>,
}

fn embedders() -> Vec<(String, Arc<dyn Embedder>)> {
    #[allow(unused_mut)] // pushed to with the minilm feature
    let mut out: Vec<(String, Arc<dyn Embedder>)> = vec![(
        "hashing".into(),
        Arc::new(HashingEmbedder::new(384).expect("valid dimension")),
    )];
    #[cfg(feature = "minilm")]
    {
        let dir = std::env::var("MEMORY_CORE_MINILM_DIR")
            .unwrap_or_else(|_| "target/models/all-MiniLM-L6-v2".into());
        match memory_core::MiniLmEmbedder::load(&dir) {
            Ok(m) => out.push(("minilm".into(), Arc::new(m))),
            Err(e) => eprintln!("minilm skipped: {e}"),
        }
    }
    out
}

fn prepare(conv: &Conversation, embedder: &dyn Embedder) -> Prepared {
    let (resolved, _) = conv.resolve();
    let texts: Vec<String> = conv.flat_turns().map(|(_, t)| t.content()).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let turns = embedder.embed_batch(&refs);
    let qs: Vec<&str> = conv.questions.iter().map(|q| q.question.as_str()).collect();
    let questions = embedder.embed_batch(&qs);
    Prepared {
        conv: conv.clone(),
        resolved,
        turns,
        questions,
    }
}

/// Mean (R@1, R@5, R@10, MRR@10) of `mode` under `search`.
fn evaluate(prepared: &[Prepared], search: &SearchConfig, mode: SearchMode) -> [f64; 4] {
    let mut sums = [0.0; 4];
    let mut n = 0.0_f64;
    for p in prepared {
        let config = MemoryConfig {
            search: search.clone(),
            ..MemoryConfig::default()
        };
        let memory = Memory::open(Storage::InMemory, config).expect("store");
        let agent = p.conv.sample_id.as_str();
        let entries: Vec<NewEntry> = p
            .conv
            .flat_turns()
            .zip(&p.turns)
            .map(|((s, t), v)| {
                let e = NewEntry::new(
                    agent,
                    format!("session_{}", s.number),
                    Role::User,
                    t.content(),
                );
                // A text with nothing to embed gets no vector, as the store would do.
                if v.iter().any(|x| *x != 0.0) {
                    e.with_embedding(v.clone())
                } else {
                    e
                }
            })
            .collect();
        let ids: Vec<EntryId> = memory.insert_batch(entries).expect("insert");
        memory.wait_for_indexing();
        for r in &p.resolved {
            let evidence: Vec<EntryId> = r.evidence.iter().map(|&i| ids[i]).collect();
            if evidence.is_empty() {
                continue;
            }
            let q = &p.conv.questions[r.index];
            let mut query = SearchQuery::new(agent, q.question.as_str())
                .with_k(10)
                .with_mode(mode)
                .with_tiers(Tiers::LongTerm)
                .without_cache();
            let qv = &p.questions[r.index];
            if qv.iter().any(|x| *x != 0.0) {
                query = query.with_vector(qv.clone());
            }
            let ranking: Vec<EntryId> = match memory.search(&query) {
                Ok(hits) => hits.iter().map(|h| h.entry.id).collect(),
                Err(_) => Vec::new(),
            };
            sums[0] += recall_at(&evidence, &ranking, 1);
            sums[1] += recall_at(&evidence, &ranking, 5);
            sums[2] += recall_at(&evidence, &ranking, 10);
            sums[3] += reciprocal_rank(&evidence, &ranking, 10);
            n += 1.0;
        }
    }
    sums.map(|s| s / n.max(1.0))
}

fn datasets() -> Vec<(String, Dataset)> {
    let var = std::env::var("MEMBENCH_LOCOMO").unwrap_or_default();
    let mut out: Vec<(String, Dataset)> = var
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let d = Dataset::load(std::path::Path::new(p)).unwrap_or_else(|e| panic!("{e}"));
            (p.to_string(), d)
        })
        .collect();
    if out.is_empty() {
        out.push((
            "generated".into(),
            conversations::generate(&ConversationConfig::default()),
        ));
    }
    out
}

/// The vector weights tried: `SWEEP_WEIGHTS` (comma-separated), else 0.1 to 0.9 in steps of 0.1.
fn weights() -> Vec<f32> {
    let default = || (1..=9).map(|i| i as f32 / 10.0).collect();
    match std::env::var("SWEEP_WEIGHTS") {
        Ok(v) if !v.trim().is_empty() => {
            let parsed: Result<Vec<f32>, _> = v.split(',').map(|w| w.trim().parse()).collect();
            match parsed {
                Ok(ws) if ws.iter().all(|w| (0.0..=1.0).contains(w)) => ws,
                _ => {
                    eprintln!("SWEEP_WEIGHTS={v:?}: expected numbers in 0..=1, comma-separated");
                    std::process::exit(2);
                }
            }
        }
        _ => default(),
    }
}

/// Whether `item` is in the comma-separated list of `var` (any item when it is unset or empty).
fn wanted(var: &str, item: &str) -> bool {
    let v = std::env::var(var).unwrap_or_default();
    v.is_empty() || v.split(',').any(|x| x == item)
}

fn main() {
    for (dataset_name, dataset) in datasets() {
        for (name, embedder) in embedders() {
            if !wanted("SWEEP_EMBEDDERS", &name) {
                continue;
            }
            let started = std::time::Instant::now();
            let prepared: Vec<Prepared> = dataset
                .conversations
                .iter()
                .map(|c| prepare(c, embedder.as_ref()))
                .collect();
            eprintln!(
                "{dataset_name} / {name}: embedded in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            let base = SearchConfig::default();
            let show = |label: String, m: [f64; 4]| {
                println!(
                    "{dataset_name:<28} {name:<8} {label:<38} r@1 {:.3}  r@5 {:.3}  r@10 {:.3}  mrr {:.3}",
                    m[0], m[1], m[2], m[3]
                );
            };
            show(
                "keyword".into(),
                evaluate(&prepared, &base, SearchMode::Keyword),
            );
            show(
                "vector (exact)".into(),
                evaluate(&prepared, &base, SearchMode::ExactVector),
            );
            let fusions = [("rrf", Fusion::Rrf { k: 60.0 }), ("minmax", Fusion::MinMax)];
            for depth in [10, 50, 100] {
                if !wanted("SWEEP_DEPTHS", &depth.to_string()) {
                    continue;
                }
                for (fname, fusion) in fusions {
                    if !wanted("SWEEP_FUSIONS", fname) {
                        continue;
                    }
                    for (standout, weighting) in [(false, "fixed"), (true, "standout")] {
                        if !wanted("SWEEP_WEIGHTING", weighting) {
                            continue;
                        }
                        for w in weights() {
                            let search = SearchConfig {
                                fusion,
                                vector_weight: Some(w),
                                weight_by_standout: standout,
                                candidates: depth,
                                ..base.clone()
                            };
                            let m = evaluate(&prepared, &search, SearchMode::Hybrid);
                            show(format!("hybrid {fname} {weighting} w={w} d={depth}"), m);
                        }
                    }
                }
            }
        }
    }
}
