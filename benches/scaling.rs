//! How costs grow: search latency against long-term store size (1K, 10K, 100K; 1M in `full`),
//! context building against session and tool counts, search against agent count up to 1,000.
//! Each series ends with its empirical exponent (`O(n^k)`), and a recall@10 quality table (ANN and
//! int8 versus exact) is printed and written to `membench-quality.json` beside Criterion's output.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Mutex, OnceLock};

use criterion::{BatchSize, BenchmarkId, Criterion};
use memory_bench::fixture::{self, Fixture};
use memory_bench::quality::{self, Int8Vectors, QualityRow};
use memory_bench::queries::{context_query, search_query, tool_definitions};
use memory_bench::workload::Query;
use memory_bench::{settings, stats};
use memory_core::index::vector::Quantization;
use memory_core::{EntryId, Memory, MemoryConfig, SearchMode, Storage};

const AGENT: &str = "agent-0";

fn main() {
    stats::run_started();
    let s = settings();
    eprintln!("{}", s.banner());
    let mut c = s.criterion();
    let mut lines = Vec::new();
    for (series, mode) in [
        ("ltm_keyword", SearchMode::Keyword),
        ("ltm_exact", SearchMode::ExactVector),
        ("ltm_ann", SearchMode::Vector),
        ("ltm_hybrid", SearchMode::Hybrid),
    ] {
        lines.extend(ltm_series(&mut c, series, mode));
    }
    lines.extend(context_sessions(&mut c));
    lines.extend(context_tools(&mut c));
    lines.extend(agents(&mut c));
    c.final_summary();
    fixture::release_all();
    report(&lines);
}

/// Median times of a series' sizes measured in this run, printed as its exponent.
fn exponent(group: &str, sizes: &[usize]) -> Option<String> {
    let points: Vec<(f64, f64)> = sizes
        .iter()
        .filter_map(|n| {
            stats::fresh_median(&stats::bench_dir(group, &[&n.to_string()])).map(|t| (*n as f64, t))
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let line = stats::exponent_line(group, &points);
    println!("{line}");
    Some(line)
}

fn ltm_series(c: &mut Criterion, series: &str, mode: SearchMode) -> Option<String> {
    let s = settings();
    let sizes = s.ltm_sizes();
    let group = format!("scaling/{series}");
    let mut g = c.benchmark_group(&group);
    for &size in &sizes {
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            let f = fixture::shared(size, s.query_count());
            if mode == SearchMode::Vector {
                measure_quality(&f);
            }
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                let q = search_query(AGENT, &f.queries[i % f.queries.len()], mode);
                black_box(f.memory.search(&q).expect("search"))
            })
        });
    }
    g.finish();
    let line = exponent(&group, &sizes);
    // The targets speak of 10K -> 100K; give that pair's exponent too when it was measured.
    let pair: Vec<usize> = sizes
        .iter()
        .copied()
        .filter(|n| *n == 10_000 || *n == 100_000)
        .collect();
    if pair.len() == 2 && sizes.len() > 2 {
        if let Some(l) = exponent(&group, &pair) {
            return line.map(|all| format!("{all}\n    10K->100K only: {l}"));
        }
    }
    line
}

type QualityTable = Mutex<BTreeMap<usize, QualityRow>>;

fn quality_rows() -> &'static QualityTable {
    static ROWS: OnceLock<QualityTable> = OnceLock::new();
    ROWS.get_or_init(Default::default)
}

fn top_ids(memory: &Memory, f: &Fixture, qi: usize, mode: SearchMode) -> Vec<EntryId> {
    let q = search_query(AGENT, &f.queries[qi], mode);
    memory
        .search(&q)
        .expect("search")
        .into_iter()
        .map(|h| h.entry.id)
        .collect()
}

/// Recall@10 of memory-core's ANN and of an int8 copy of the vectors against exact search, once
/// per size (the first time its ANN benchmark runs).
fn measure_quality(f: &Fixture) {
    if quality_rows()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&f.size)
    {
        return;
    }
    let dim = f.vectors.len() / f.size.max(1);
    let q8 = Int8Vectors::new(&f.vectors, dim);
    let n = settings().recall_queries().min(f.queries.len());
    // The same corpus in a store holding int8 vectors.
    let mut config = MemoryConfig::default();
    config.search.quantization = Quantization::Int8;
    let salt = fixture::salt(f.size, 1);
    let int8_store =
        fixture::build_with(f.size, 1, 0, salt, config, " (int8)").expect("build the int8 store");
    let pos8: std::collections::HashMap<EntryId, usize> = int8_store
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let (mut ann, mut int8, mut agree, mut core8, mut core8_ann) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for qi in 0..n {
        let exact_core = top_ids(&f.memory, f, qi, SearchMode::ExactVector);
        let ann_core = top_ids(&f.memory, f, qi, SearchMode::Vector);
        ann += quality::recall(&exact_core, &ann_core);
        let v = &f.queries[qi].vector;
        let truth: Vec<EntryId> = quality::exact_top_k(&f.vectors, dim, v, 10)
            .into_iter()
            .map(|i| f.ids[i])
            .collect();
        agree += quality::recall(&truth, &exact_core);
        let got: Vec<EntryId> = q8.top_k(v, 10).into_iter().map(|i| f.ids[i]).collect();
        int8 += quality::recall(&truth, &got);
        // Ids differ between the two stores; compare by insertion position.
        let pos_truth: Vec<usize> = quality::exact_top_k(&f.vectors, dim, v, 10);
        let position = |ids: Vec<EntryId>| -> Vec<usize> {
            ids.iter().filter_map(|id| pos8.get(id).copied()).collect()
        };
        let exact8 = top_ids(&int8_store.memory, f, qi, SearchMode::ExactVector);
        core8 += quality::recall(&pos_truth, &position(exact8));
        let ann8 = top_ids(&int8_store.memory, f, qi, SearchMode::Vector);
        core8_ann += quality::recall(&pos_truth, &position(ann8));
    }
    let n_f = n.max(1) as f64;
    quality_rows()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            f.size,
            QualityRow {
                size: f.size,
                queries: n,
                ann_recall_at_10: Some(ann / n_f),
                core_int8_exact_recall_at_10: Some(core8 / n_f),
                core_int8_ann_recall_at_10: Some(core8_ann / n_f),
                int8_recall_at_10: int8 / n_f,
                exact_agreement_at_10: Some(agree / n_f),
            },
        );
}

/// A store whose agent has `sessions` full short-term windows and a small long-term history.
fn sessions_store(sessions: usize) -> (Memory, Vec<Query>) {
    let memory = Memory::open(Storage::InMemory, MemoryConfig::default()).expect("open store");
    let w = fixture::workload();
    let ltm = w.messages(1_000, 1, 0x17);
    fixture::fill(&memory, &ltm, "context store").expect("fill");
    let stm = w.messages(sessions * 20, 1, 0x5e55);
    for (i, m) in stm.iter().enumerate() {
        let session = format!("live-{}", i / 20);
        if i % 20 == 0 {
            memory.open_session(AGENT, &session).expect("open_session");
        }
        let mut e = m.to_entry();
        e.session_id = session.into();
        memory.append(e).expect("append");
    }
    (memory, w.queries(settings().query_count(), 0x17))
}

fn context_sessions(c: &mut Criterion) -> Option<String> {
    let s = settings();
    let counts = s.session_counts();
    let tools = tool_definitions(&fixture::workload().tools(8, 0)).expect("valid tools");
    let group = "scaling/context_sessions";
    let mut g = c.benchmark_group(group);
    for &n in &counts {
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let (memory, queries) = sessions_store(n);
            let mut i = 0usize;
            b.iter_batched(
                || {
                    i += 1;
                    context_query(AGENT, "live-0", &queries[i % queries.len()], &tools, 4_000)
                },
                |req| black_box(memory.build_context(&req).expect("build_context")),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    exponent(group, &counts)
}

fn context_tools(c: &mut Criterion) -> Option<String> {
    let s = settings();
    let counts = s.tool_counts();
    let group = "scaling/context_tools";
    let mut g = c.benchmark_group(group);
    let mut store = None;
    for &n in &counts {
        let tools = tool_definitions(&fixture::workload().tools(n, 0)).expect("valid tools");
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            let (memory, queries) = store.get_or_insert_with(|| sessions_store(4));
            let mut i = 0usize;
            // A budget large enough that every tool fits: the series measures rendering them.
            b.iter_batched(
                || {
                    i += 1;
                    context_query(AGENT, "live-0", &queries[i % queries.len()], &tools, 64_000)
                },
                |req| black_box(memory.build_context(&req).expect("build_context")),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    exponent(group, &counts)
}

fn agents(c: &mut Criterion) -> Option<String> {
    let s = settings();
    let counts = s.agent_counts();
    let group = "scaling/agents_search";
    let mut g = c.benchmark_group(group);
    for &n in &counts {
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let f = fixture::shared_with_agents(n * s.entries_per_agent(), n, s.query_count());
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                let q = search_query(AGENT, &f.queries[i % f.queries.len()], SearchMode::Hybrid);
                black_box(f.memory.search(&q).expect("search"))
            })
        });
    }
    g.finish();
    exponent(group, &counts)
}

fn report(lines: &[String]) {
    if !lines.is_empty() {
        println!("\nscaling exponents (least squares of ln median time over ln size, this run):");
        for l in lines {
            println!("  {l}");
        }
        println!("  (targets: ltm_keyword and ltm_ann exponent <= 0.5 from 10K to 100K)");
    }
    let rows: Vec<QualityRow> = quality_rows()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    if rows.is_empty() {
        return;
    }
    println!("\n{}", quality::format_quality(&rows));
    println!("  (all against exact f32 search; target: ANN recall@10 >= 0.95 at 100K)");
    if settings().test_mode {
        // A --test run's tiny sizes must not overwrite a real run's table.
        return;
    }
    let path = bench_gate::locate::criterion_dir().join("membench-quality.json");
    match quality::write_quality_json(&rows, &path) {
        Ok(()) => println!("quality table written to {}", path.display()),
        Err(e) => eprintln!("warning: could not write {}: {e}", path.display()),
    }
}
