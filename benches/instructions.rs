//! Instructions executed by one call of each core operation of memory-core, counted by valgrind's
//! callgrind through gungraun: a deterministic channel beside the timed benchmarks, so that a
//! change of a few percent in an operation's CPU work shows whatever the machine's load.
//!
//! Each benchmark runs in a process of its own under callgrind; only the benchmark function
//! (one call of the operation) is counted, and only on the calling thread (callgrind's
//! `--toggle-collect` is per thread). Setup (building the store, one warm-up call so statements
//! are prepared and caches filled) runs before it, uncounted. Stores are in memory (SQLite
//! `:memory:`: no disk, no WAL checkpointer thread) and fully indexed (`wait_for_indexing`)
//! before the call, so the background HNSW linker sleeps unless the operation itself writes. The
//! corpus comes from the workload's fixed seed, every store runs on a manual clock (recency and
//! expiry see the same ages), and memory-core hashes with a fixed hasher, so the same code
//! counts the same instructions in every run.
//!
//! Bench-gate reads the counts saved with `--save-baseline=NAME` as kind `instructions`. Needs
//! valgrind and `gungraun-runner` 0.20.0 (`cargo install --locked gungraun-runner --version
//! 0.20.0`); without them it says so and records nothing. `-- --test` runs every operation once,
//! natively, without valgrind (the smoke run of `.ci/run`).

use std::hint::black_box;
use std::process::{Command, ExitCode};

use gungraun::{library_benchmark, library_benchmark_group, LibraryBenchmarkConfig};
use memory_bench::fixture::workload;
use memory_bench::queries::{context_query, search_query, tool_definitions};
use memory_bench::workload::{Message, Query};
use memory_core::context::ToolDefinition;
use memory_core::{
    ConsolidationReport, ContextQuery, EntryId, ManualClock, Memory, MemoryConfig, NewEntry,
    SearchMode, Storage, Timestamp,
};

/// The gungraun version this bench is built with; its runner must be the same version.
const GUNGRAUN_VERSION: &str = "0.20.0";

/// Entries in the long-term store the read benchmarks run against: large enough for HNSW (with
/// the graph threshold of [`config`]) and BM25 to do real work, small enough to build under
/// callgrind in seconds.
const STORE: usize = 1_000;
/// Entries one `insert_batch` call writes.
const BATCH: usize = 100;
/// Short-term entries one consolidation moves.
const STM_ENTRIES: usize = 200;
const AGENT: &str = "agent-0";

/// A store ready for one counted call, with what the call needs.
struct Prepared<T> {
    memory: Memory,
    input: T,
}

fn messages(n: usize, salt: u64) -> Vec<Message> {
    workload().messages(n, 1, salt)
}

fn queries() -> Vec<Query> {
    workload().queries(8, 0x1257)
}

/// The time every store starts at. Searches weigh recency and windows expire by the clock, so a
/// store on the system clock would count other instructions in every run (other sort orders,
/// other branches); on a manual clock every run sees the same ages.
const START: Timestamp = Timestamp(1_700_000_000_000_000);

/// The default configuration with an HNSW graph from 512 vectors on: the default keeps none
/// below 1,024, where approximate search scans exactly, so `search/ann` and the vector half of
/// `search/hybrid` and `context/build` counted an exact scan at [`STORE`] entries and no change
/// to the graph's code could show in them.
fn config() -> MemoryConfig {
    let mut c = MemoryConfig::default();
    c.search.hnsw.min_len = 512;
    c
}

/// An empty in-memory store on a manual clock at [`START`].
fn open() -> Memory {
    let clock = std::sync::Arc::new(ManualClock::new(START));
    Memory::open_with_clock(Storage::InMemory, config(), clock).expect("open an in-memory store")
}

/// An in-memory long-term store of [`STORE`] entries of one agent, fully indexed, with their ids.
fn store_with_ids() -> (Memory, Vec<EntryId>) {
    let memory = open();
    let entries: Vec<NewEntry> = messages(STORE, 0x5eed)
        .iter()
        .map(Message::to_entry)
        .collect();
    let ids = memory.insert_batch(entries).expect("fill the store");
    memory.wait_for_indexing();
    (memory, ids)
}

fn store() -> Memory {
    store_with_ids().0
}

fn setup_get() -> Prepared<EntryId> {
    let (memory, ids) = store_with_ids();
    // Warm up on one id, count another.
    let _ = memory.get(AGENT, ids[1]);
    Prepared {
        memory,
        input: ids[ids.len() / 2],
    }
}

fn setup_search(mode: SearchMode) -> Prepared<memory_core::SearchQuery> {
    let memory = store();
    let qs = queries();
    let _ = memory.search(&search_query(AGENT, &qs[0], mode));
    Prepared {
        memory,
        input: search_query(AGENT, &qs[1], mode),
    }
}

fn setup_keyword() -> Prepared<memory_core::SearchQuery> {
    setup_search(SearchMode::Keyword)
}

fn setup_ann() -> Prepared<memory_core::SearchQuery> {
    setup_search(SearchMode::Vector)
}

fn setup_hybrid() -> Prepared<memory_core::SearchQuery> {
    setup_search(SearchMode::Hybrid)
}

fn tools() -> Vec<ToolDefinition> {
    tool_definitions(&workload().tools(16, 0)).expect("generated tools are valid")
}

/// A store with a live session of 20 turns, and a context request over both tiers.
fn setup_context() -> Prepared<ContextQuery> {
    let memory = store();
    memory.open_session(AGENT, "live-0").expect("open_session");
    for m in messages(20, 0x11fe) {
        let e = NewEntry::new(AGENT, "live-0", m.role, m.text).with_embedding(m.embedding);
        memory.append(e).expect("append");
    }
    let qs = queries();
    let tools = tools();
    let _ = memory.build_context(&context_query(AGENT, "live-0", &qs[0], &tools, 4_000));
    Prepared {
        memory,
        input: context_query(AGENT, "live-0", &qs[1], &tools, 4_000),
    }
}

/// A short-term store with 64 open sessions and one entry to append (taken out of the input by
/// the counted call, not copied there).
fn setup_append() -> Prepared<Option<NewEntry>> {
    let memory = open();
    let pool = messages(65, 0xa11ce);
    for (s, m) in pool[..64].iter().enumerate() {
        let session = format!("s-{s}");
        memory.open_session(AGENT, &session).expect("open_session");
        let e = NewEntry::new(AGENT, session.as_str(), m.role, m.text.clone())
            .with_embedding(m.embedding.clone());
        memory.append(e).expect("warm-up append");
    }
    let m = &pool[64];
    let entry = NewEntry::new(AGENT, "s-7", m.role, m.text.clone())
        .with_embedding(m.embedding.clone())
        .with_importance(m.importance);
    Prepared {
        memory,
        input: Some(entry),
    }
}

/// A store of [`STORE`] entries and a batch of [`BATCH`] new ones. In memory, the insert is CPU
/// work only: checks, tokenizing, normalizing, the SQLite transaction, indexing.
fn setup_insert_batch() -> Prepared<Vec<NewEntry>> {
    let memory = store();
    let warm: Vec<NewEntry> = messages(BATCH, 0xbeef)
        .iter()
        .map(Message::to_entry)
        .collect();
    memory.insert_batch(warm).expect("warm-up batch");
    memory.wait_for_indexing();
    let batch = messages(BATCH, 0xfeed)
        .iter()
        .map(Message::to_entry)
        .collect();
    Prepared {
        memory,
        input: batch,
    }
}

/// [`STM_ENTRIES`] important short-term entries over 10 sessions, after a warm-up
/// consolidation of one entry (its first long-term write prepares the statements).
fn setup_consolidate() -> Prepared<()> {
    let memory = open();
    let warm = messages(1, 0xc0df);
    let m = &warm[0];
    memory
        .append(
            NewEntry::new(AGENT, "warm-up", m.role, m.text.clone())
                .with_embedding(m.embedding.clone())
                .with_importance(0.95),
        )
        .expect("warm-up append");
    memory.consolidate().expect("warm-up consolidation");
    for (i, m) in messages(STM_ENTRIES, 0xc0de).into_iter().enumerate() {
        let session = format!("s-{}", i / 20);
        memory.open_session(AGENT, &session).expect("open_session");
        let e = NewEntry::new(AGENT, session.as_str(), m.role, m.text)
            .with_embedding(m.embedding)
            .with_importance(0.95);
        memory.append(e).expect("append");
    }
    Prepared { memory, input: () }
}

// The operations, shared by the counted benchmarks and the native smoke run. Each returns the
// prepared store so that dropping it (threads joined, memory freed) happens after the count.

fn op_get(p: Prepared<EntryId>) -> Prepared<EntryId> {
    black_box(p.memory.get(AGENT, p.input).expect("get"));
    p
}

fn op_search(p: Prepared<memory_core::SearchQuery>) -> Prepared<memory_core::SearchQuery> {
    black_box(p.memory.search(&p.input).expect("search"));
    p
}

fn op_context(p: Prepared<ContextQuery>) -> Prepared<ContextQuery> {
    black_box(p.memory.build_context(&p.input).expect("build_context"));
    p
}

fn op_append(mut p: Prepared<Option<NewEntry>>) -> Prepared<Option<NewEntry>> {
    let entry = p.input.take().expect("an entry to append");
    black_box(p.memory.append(entry).expect("append"));
    p
}

fn op_insert_batch(mut p: Prepared<Vec<NewEntry>>) -> Prepared<Vec<NewEntry>> {
    let batch = std::mem::take(&mut p.input);
    black_box(p.memory.insert_batch(batch).expect("insert_batch"));
    p
}

fn op_consolidate(p: Prepared<()>) -> (Prepared<()>, ConsolidationReport) {
    let report = p.memory.consolidate().expect("consolidate");
    (p, black_box(report))
}

#[library_benchmark]
#[bench::n1000(setup = setup_get)]
fn get(p: Prepared<EntryId>) -> Prepared<EntryId> {
    op_get(p)
}

#[library_benchmark]
#[bench::n1000(setup = setup_keyword)]
fn keyword(p: Prepared<memory_core::SearchQuery>) -> Prepared<memory_core::SearchQuery> {
    op_search(p)
}

#[library_benchmark]
#[bench::n1000(setup = setup_ann)]
fn ann(p: Prepared<memory_core::SearchQuery>) -> Prepared<memory_core::SearchQuery> {
    op_search(p)
}

#[library_benchmark]
#[bench::n1000(setup = setup_hybrid)]
fn hybrid(p: Prepared<memory_core::SearchQuery>) -> Prepared<memory_core::SearchQuery> {
    op_search(p)
}

#[library_benchmark]
#[bench::n1000(setup = setup_context)]
fn build(p: Prepared<ContextQuery>) -> Prepared<ContextQuery> {
    op_context(p)
}

#[library_benchmark]
#[bench::s64(setup = setup_append)]
fn append(p: Prepared<Option<NewEntry>>) -> Prepared<Option<NewEntry>> {
    op_append(p)
}

#[library_benchmark]
#[bench::b100(setup = setup_insert_batch)]
fn insert_batch(p: Prepared<Vec<NewEntry>>) -> Prepared<Vec<NewEntry>> {
    op_insert_batch(p)
}

#[library_benchmark]
#[bench::stm200(setup = setup_consolidate)]
fn consolidate(p: Prepared<()>) -> (Prepared<()>, ConsolidationReport) {
    op_consolidate(p)
}

library_benchmark_group!(name = ltm; benchmarks = get, insert_batch);
library_benchmark_group!(name = search; benchmarks = keyword, ann, hybrid);
library_benchmark_group!(name = context; benchmarks = build);
library_benchmark_group!(name = stm; benchmarks = append, consolidate);

/// gungraun's generated entry point, kept in a module so that `main` below can check the tools
/// first.
mod counted {
    use super::*;

    // gungraun clears the environment of the benchmark it runs under valgrind; the planted
    // slowdown of bench-gate's accuracy script (a `--cfg membench_planted` build only) is set
    // through these two, so they must reach it.
    gungraun::main!(
        config = LibraryBenchmarkConfig::default()
            .pass_through_envs(["MEMBENCH_PLANTED", "MEMBENCH_PLANTED_WORK"]);
        library_benchmark_groups = ltm, search, context, stm
    );

    /// Runs gungraun's main: the runner when started by `cargo bench`, one benchmark when started
    /// by the runner under valgrind.
    pub(crate) fn run() {
        main();
    }
}

/// Every operation once, natively: proves setups and operations work without valgrind.
fn smoke() {
    eprintln!("instructions: --test: each operation once, natively (no valgrind, no counts)");
    op_get(setup_get());
    op_search(setup_keyword());
    op_search(setup_ann());
    op_search(setup_hybrid());
    op_context(setup_context());
    op_append(setup_append());
    op_insert_batch(setup_insert_batch());
    let (_, report) = op_consolidate(setup_consolidate());
    if report.promoted == 0 {
        eprintln!("instructions: warning: consolidation moved nothing; it counts a scan only");
    }
    eprintln!("instructions: 8 operations ran");
}

/// What is missing to count instructions, if anything.
fn missing_tools() -> Option<String> {
    let valgrind = Command::new("valgrind").arg("--version").output();
    if !valgrind.is_ok_and(|o| o.status.success()) {
        return Some(
            "valgrind not found (install it with the OS package manager, e.g. `apt-get install \
             valgrind`)"
                .into(),
        );
    }
    let runner = std::env::var("GUNGRAUN_RUNNER").unwrap_or_else(|_| "gungraun-runner".into());
    let install = format!("`cargo install --locked gungraun-runner --version {GUNGRAUN_VERSION}`");
    match Command::new(&runner).arg("--version").output() {
        Ok(o) if o.status.success() => {
            let version = String::from_utf8_lossy(&o.stdout);
            if version.contains(GUNGRAUN_VERSION) {
                None
            } else {
                Some(format!(
                    "{runner} is version '{}', this bench needs {GUNGRAUN_VERSION} ({install})",
                    version.trim()
                ))
            }
        }
        _ => Some(format!("{runner} not found ({install})")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // Started by the runner under valgrind: run the one benchmark asked for.
    if args.get(1).is_some_and(|a| a == "--gungraun-run") {
        counted::run();
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--test") {
        smoke();
        return ExitCode::SUCCESS;
    }
    if let Some(problem) = missing_tools() {
        eprintln!("instructions: SKIPPED, no instruction counts recorded: {problem}");
        return ExitCode::SUCCESS;
    }
    counted::run();
    ExitCode::SUCCESS
}
