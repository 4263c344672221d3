//! Shared store fixtures: long-term stores filled with a generated corpus, built once per process
//! and size (the 100,000-entry store with its indexes is expensive), with progress on stderr.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use memory_core::{EntryId, Memory, MemoryConfig, Result, Storage};

use crate::workload::{Message, Query, Workload};

/// Entries per `insert_batch` call while filling a fixture.
pub const CHUNK: usize = 5_000;

/// A long-term store holding a generated corpus, with what the benchmarks need to query it.
pub struct Fixture {
    /// The store (a temporary directory, deleted when the process ends).
    pub memory: Memory,
    /// Entries stored.
    pub size: usize,
    /// Agents owning them (`agent-0` .. `agent-{agents-1}`).
    pub agents: usize,
    /// Ids in insertion order.
    pub ids: Vec<EntryId>,
    /// Each entry's agent index, in insertion order.
    pub agent_of: Vec<u32>,
    /// Each entry's embedding, row-major in insertion order (for exact top-k and recall).
    pub vectors: Vec<f32>,
    /// Queries cycled through by the search benchmarks.
    pub queries: Vec<Query>,
}

impl Fixture {
    /// Rows of `vectors` that belong to agent `agent`, with their ids.
    pub fn agent_rows(&self, agent: usize) -> (Vec<f32>, Vec<EntryId>) {
        let dim = self.vectors.len() / self.size.max(1);
        let mut rows = Vec::new();
        let mut ids = Vec::new();
        for (i, a) in self.agent_of.iter().enumerate() {
            if *a as usize == agent {
                rows.extend_from_slice(&self.vectors[i * dim..(i + 1) * dim]);
                ids.push(self.ids[i]);
            }
        }
        (rows, ids)
    }
}

/// The shared generator (vocabulary and embedding space are built once).
pub fn workload() -> &'static Workload {
    static W: OnceLock<Workload> = OnceLock::new();
    W.get_or_init(Workload::standard)
}

/// Inserts `messages` into `memory`'s long-term tier in chunks of [`CHUNK`], printing progress
/// to stderr for large loads.
pub fn fill(memory: &Memory, messages: &[Message], label: &str) -> Result<Vec<EntryId>> {
    let total = messages.len();
    let loud = total >= 20_000;
    let start = Instant::now();
    let mut ids = Vec::with_capacity(total);
    let step = (total / 10).max(CHUNK);
    let mut next_report = step;
    for chunk in messages.chunks(CHUNK) {
        ids.extend(memory.insert_batch(chunk.iter().map(Message::to_entry).collect())?);
        if loud && ids.len() >= next_report && ids.len() < total {
            eprintln!(
                "building {label}: {}/{} ({:.1} s)",
                group_digits(ids.len()),
                group_digits(total),
                start.elapsed().as_secs_f64()
            );
            next_report += step;
        }
    }
    if loud {
        eprintln!(
            "building {label}: {}/{} stored in {:.1} s",
            group_digits(ids.len()),
            group_digits(total),
            start.elapsed().as_secs_f64()
        );
    }
    wait_for_indexing(memory, label, loud);
    if loud {
        eprintln!(
            "building {label}: done in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
    Ok(ids)
}

/// Waits until the store's background linker has put every vector into its HNSW graph, so that
/// no benchmark measures a half-built graph or competes with the linker for the CPU.
pub fn wait_for_indexing(memory: &Memory, label: &str, loud: bool) {
    let start = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let pending = memory.pending_index_links();
        if pending == 0 {
            break;
        }
        if loud && last_report.elapsed().as_secs() >= 5 {
            eprintln!(
                "building {label}: linking HNSW graph, {} vectors to go ({:.0} s)",
                group_digits(pending),
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    memory.wait_for_indexing();
}

/// Builds a temporary store of `size` entries spread over `agents` agents. `salt` varies the
/// corpus between fixtures.
pub fn build(size: usize, agents: usize, query_count: usize, salt: u64) -> Result<Fixture> {
    build_with(size, agents, query_count, salt, MemoryConfig::default(), "")
}

/// [`build`] with a given store configuration; `note` is added to the progress label.
pub fn build_with(
    size: usize,
    agents: usize,
    query_count: usize,
    salt: u64,
    config: MemoryConfig,
    note: &str,
) -> Result<Fixture> {
    let w = workload();
    let label = format!("{}-entry fixture{note}", group_digits(size));
    let gen_start = Instant::now();
    let messages = w.messages(size, agents, salt);
    if size >= 20_000 {
        eprintln!(
            "building {label}: generated corpus in {:.1} s",
            gen_start.elapsed().as_secs_f64()
        );
    }
    let memory = Memory::open(Storage::Temporary, config)?;
    let ids = fill(&memory, &messages, &label)?;
    let dim = w.space().dim();
    let mut vectors = Vec::with_capacity(size * dim);
    let mut agent_of = Vec::with_capacity(size);
    for m in &messages {
        vectors.extend_from_slice(&m.embedding);
        let idx = m
            .agent
            .strip_prefix("agent-")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        agent_of.push(idx);
    }
    Ok(Fixture {
        memory,
        size,
        agents: agents.max(1),
        ids,
        agent_of,
        vectors,
        queries: w.queries(query_count, salt),
    })
}

/// The fixture of `size` entries for one agent, built on first use and kept for the process.
pub fn shared(size: usize, query_count: usize) -> Arc<Fixture> {
    shared_with_agents(size, 1, query_count)
}

type Cache = Mutex<HashMap<(usize, usize), Arc<Fixture>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Drops every shared fixture. Statics are never dropped at exit, so without this each run would
/// leave its temporary stores (hundreds of MB at 100K entries) behind; call it at the end of a
/// bench's `main`.
pub fn release_all() {
    let fixtures: Vec<Arc<Fixture>> = {
        let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
        map.drain().map(|(_, f)| f).collect()
    };
    drop(fixtures);
}

/// The fixture of `size` entries spread over `agents` agents, built on first use and kept.
pub fn shared_with_agents(size: usize, agents: usize, query_count: usize) -> Arc<Fixture> {
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = map.get(&(size, agents)) {
        return f.clone();
    }
    let fixture = match build(size, agents, query_count, salt(size, agents)) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            // A bench cannot measure anything without its store: stop with the reason.
            eprintln!("error: building the {size}-entry fixture failed: {e}");
            std::process::exit(1);
        }
    };
    map.insert((size, agents), fixture.clone());
    fixture
}

/// A cheap deterministic walk over `0..len` (a full-period LCG), so successive benchmark calls
/// touch scattered entries instead of neighbours.
#[derive(Clone, Debug)]
pub struct Scatter {
    state: u64,
}

impl Scatter {
    /// A walk starting at `seed`.
    pub fn new(seed: u64) -> Scatter {
        Scatter { state: seed }
    }

    /// The next index below `len` (0 when `len` is 0).
    pub fn next_index(&mut self, len: usize) -> usize {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if len == 0 {
            0
        } else {
            ((self.state >> 33) % len as u64) as usize
        }
    }
}

/// The corpus salt of the shared fixture of `size` entries over `agents` agents, so a side-by-side
/// reference can regenerate the very same messages.
pub fn salt(size: usize, agents: usize) -> u64 {
    (size as u64) ^ ((agents as u64) << 32)
}

/// `100000` as `100,000`.
pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
        assert_eq!(group_digits(1_000_000), "1,000,000");
    }

    #[test]
    fn scatter_stays_in_range_and_spreads() {
        let mut s = Scatter::new(1);
        let seen: std::collections::HashSet<usize> =
            (0..1_000).map(|_| s.next_index(100)).collect();
        assert!(seen.iter().all(|i| *i < 100));
        assert!(seen.len() > 90, "only {} distinct indexes", seen.len());
        assert_eq!(s.next_index(0), 0);
    }

    #[test]
    fn releasing_shared_fixtures_deletes_their_stores() {
        let f = shared_with_agents(50, 7, 2);
        let dir = std::path::PathBuf::from(f.memory.location());
        assert!(dir.exists());
        drop(f);
        release_all();
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn fixture_stores_every_entry_for_its_agents() {
        let f = build(600, 3, 4, 9).unwrap();
        assert_eq!(f.ids.len(), 600);
        assert_eq!(f.vectors.len(), 600 * 384);
        let total: u64 = (0..3)
            .map(|a| f.memory.count(&crate::workload::agent_name(a)).unwrap())
            .sum();
        assert_eq!(total, 600);
        let (rows, ids) = f.agent_rows(1);
        assert_eq!(rows.len(), ids.len() * 384);
        assert_eq!(ids.len() as u64, f.memory.count("agent-1").unwrap());
        let got = f.memory.get("agent-0", f.ids[0]).unwrap();
        assert!(got.is_some(), "first inserted entry is readable");
    }
}
