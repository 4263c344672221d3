//! The in-RAM retrieval indexes of the embedded long-term store, one set per agent: a BM25
//! inverted index, a vector index (exact scan and HNSW over one arena), and the few attributes
//! filters need. They are rebuilt from SQLite on open and updated after every commit.
//!
//! One index set per agent keeps agent isolation structural (a query only ever reads its own
//! agent's index) and keeps BM25 statistics per agent, whose memory is its own corpus.
//!
//! Linking a vector into the HNSW graph is the one expensive step of a write (a few hundred
//! microseconds at 100K vectors), so a write only appends the vector to a staging buffer, and a
//! background linker thread moves staged vectors into the index and links them, beside searches
//! (see `agent.rs` for who waits for whom). Searches never miss a vector meanwhile: staged
//! and unlinked vectors are scanned exactly.
//!
//! The building blocks are public for standalone use and for tests against brute force:
//! [`keyword::KeywordIndex`], [`vector::VectorIndex`] and [`fusion`].

pub(crate) mod agent;
pub(crate) mod capture;
pub(crate) mod codec;
pub(crate) mod column;
pub mod fusion;
pub(crate) mod growth;
pub(crate) mod idmap;
pub mod keyword;
mod linker;
pub(crate) mod snapshot;
pub(crate) mod text;
pub(crate) mod topk;
pub mod vector;

use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::clock::Timestamp;
use crate::entry::{EntryId, MemoryEntry, Role};
use crate::error::Result;
use crate::query::DocFilter;
use agent::{AgentIndex, SharedIndex};
use keyword::Bm25Params;
use linker::Linker;
use vector::VectorIndexConfig;

/// Which long-term entries [`Memory::list`](crate::Memory::list) returns; answered by the
/// index (the store keeps rows by id only).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Only this session.
    pub session: Option<String>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// At most this many, newest first; all when `None`.
    pub limit: Option<usize>,
}

/// Per-agent indexes, and the linker that keeps their HNSW graphs up to date.
pub(crate) struct Indexes {
    agents: RwLock<FxHashMap<Arc<str>, SharedIndex>>,
    bm25: Bm25Params,
    vector_config: VectorIndexConfig,
    linker: Linker,
}

impl std::fmt::Debug for Indexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexes")
            .field("agents", &self.agents.read().len())
            .finish_non_exhaustive()
    }
}

impl Indexes {
    /// Empty indexes, with their linker thread started.
    pub fn new(bm25: Bm25Params, vector_config: VectorIndexConfig) -> Result<Self> {
        Ok(Indexes {
            agents: RwLock::default(),
            bm25,
            vector_config,
            linker: Linker::start()?,
        })
    }

    /// Vectors stored but not yet linked into their agent's graph, over all agents.
    pub fn pending_links(&self) -> usize {
        let agents: Vec<SharedIndex> = self.agents.read().values().cloned().collect();
        agents.iter().map(|a| a.pending_links()).sum()
    }

    /// Links `agent`'s vectors in the calling thread (with every core on a backlog, as the
    /// linker does) until at most `max` are staged or unlinked: the wait a write makes under
    /// `SearchConfig::max_unlinked`. The background linker stands aside meanwhile (see
    /// `AgentIndex::writers_linking`); several writers take the graph's link lock in turn.
    pub fn keep_up(&self, agent: &str, max: usize) {
        let Some(shared) = self.agent(agent) else {
            return;
        };
        // A step finds nothing to do when another thread linked the vectors it saw waiting (the
        // staged ones are then moved in by the next step): give up only when that repeats.
        let _linking = shared.writer_linking();
        let mut idle = 0;
        while shared.pending_links() > max && idle < 3 {
            idle = if shared.link_step() { 0 } else { idle + 1 };
        }
    }

    /// Blocks until every stored vector is linked into its agent's graph.
    pub fn wait_for_linking(&self) {
        self.linker.wait_idle();
    }

    fn agent(&self, agent: &str) -> Option<SharedIndex> {
        self.agents.read().get(agent).cloned()
    }

    fn agent_or_create(&self, agent: &str) -> Result<SharedIndex> {
        if let Some(a) = self.agent(agent) {
            return Ok(a);
        }
        let fresh = AgentIndex::new(self.bm25, &self.vector_config)?;
        let mut agents = self.agents.write();
        Ok(agents
            .entry(Arc::from(agent))
            .or_insert_with(|| Arc::new(fresh))
            .clone())
    }

    /// The entries of `entries` not indexed yet (by id, per agent).
    pub fn absent<'a>(&self, entries: &'a [MemoryEntry]) -> Vec<&'a MemoryEntry> {
        let mut out = Vec::with_capacity(entries.len());
        for group in entries.chunk_by(|a, b| a.agent_id == b.agent_id) {
            match self.agent(&group[0].agent_id) {
                Some(idx) => out.extend(group.iter().filter(|e| !idx.contains(e.id))),
                None => out.extend(group),
            }
        }
        out
    }

    /// Indexes entries (all of one batch; usually one agent): [`Indexes::add_text`], then
    /// [`Indexes::add_vectors`].
    pub fn add(&self, entries: &[&MemoryEntry]) -> Result<()> {
        self.add_text(entries)?;
        self.add_vectors(entries)
    }

    /// Indexes the text and attributes of entries: keyword search, filters and listing see them.
    pub fn add_text(&self, entries: &[&MemoryEntry]) -> Result<()> {
        for group in entries.chunk_by(|a, b| a.agent_id == b.agent_id) {
            self.agent_or_create(&group[0].agent_id)?.add_text(group);
        }
        Ok(())
    }

    /// [`Indexes::add_text`] for entries whose commit runs meanwhile: [`Indexes::count`] leaves
    /// them out until each returned index is told [`AgentIndex::committed`] (also if the commit
    /// fails and they leave the index). Returns the indexes with how many each took, and whether
    /// every agent's index could be had.
    pub fn add_uncommitted_text(
        &self,
        entries: &[&MemoryEntry],
    ) -> (Vec<(SharedIndex, u64)>, Result<()>) {
        let mut added = Vec::new();
        for group in entries.chunk_by(|a, b| a.agent_id == b.agent_id) {
            match self.agent_or_create(&group[0].agent_id) {
                Ok(idx) => {
                    idx.add_uncommitted_text(group);
                    added.push((idx, group.len() as u64));
                }
                Err(e) => return (added, Err(e)),
            }
        }
        (added, Ok(()))
    }

    /// Stages the vectors of entries (searched exactly until the linker has them in the graph).
    pub fn add_vectors(&self, entries: &[&MemoryEntry]) -> Result<()> {
        for group in entries.chunk_by(|a, b| a.agent_id == b.agent_id) {
            let shared = self.agent_or_create(&group[0].agent_id)?;
            let added = shared.add_vectors(group);
            self.linker.schedule(&shared);
            added?;
        }
        Ok(())
    }

    /// Indexes one entry read back from disk on open (straight into the vector index, unlinked).
    /// The linker is not woken per row: each link it made would hold the index's read lock
    /// against the next row's write (a 100,000-row rebuild took 20 s instead of 3); the load
    /// calls [`Indexes::schedule_all`] when every row is in.
    pub fn add_stored(
        &self,
        id: EntryId,
        agent: &str,
        attributes: (&str, Role, Timestamp),
        content: &str,
        embedding: Option<&[f32]>,
    ) -> Result<()> {
        self.agent_or_create(agent)?
            .add_stored(id, attributes, content, embedding)
    }

    /// Removes a deleted entry.
    pub fn remove(&self, agent: &str, id: EntryId) {
        if let Some(shared) = self.agent(agent) {
            shared.remove(id);
            self.linker.schedule(&shared);
        }
    }

    /// Number of long-term entries of `agent`.
    pub fn count(&self, agent: &str) -> u64 {
        self.agent(agent).map_or(0, |idx| idx.count())
    }

    /// Entries of `agent` whose text is indexed while their commit runs.
    pub fn uncommitted(&self, agent: &str) -> u64 {
        self.agent(agent).map_or(0, |idx| idx.uncommitted())
    }

    /// Ids of `agent`'s long-term entries matching `q`, newest first (by creation time, then
    /// id). This is the store's secondary index: SQLite keeps rows by id only, which keeps a
    /// commit to one or two pages (see `store/sqlite.rs`).
    pub fn list(&self, agent: &str, q: &ListQuery) -> Vec<EntryId> {
        let Some(idx) = self.agent(agent) else {
            return Vec::new();
        };
        let filter = DocFilter {
            session: q.session.clone(),
            role: None,
            since: q.since,
            until: q.until,
        };
        idx.newest(&filter, q.limit.unwrap_or(usize::MAX))
    }

    /// Highest cosine similarity of `v` to the agent's long-term entries (approximate).
    pub fn max_similarity(&self, agent: &str, v: &[f32]) -> Result<Option<f32>> {
        let Some(idx) = self.agent(agent) else {
            return Ok(None);
        };
        Ok(idx
            .vector(v, 1, false, &DocFilter::default())?
            .first()
            .map(|h| h.1))
    }

    /// BM25 ranking of the agent's long-term entries.
    pub fn keyword(
        &self,
        agent: &str,
        query: &str,
        k: usize,
        filter: &DocFilter,
    ) -> Vec<(EntryId, f32)> {
        self.agent(agent)
            .map_or_else(Vec::new, |idx| idx.keyword(query, k, filter))
    }

    /// Vector ranking (exact or approximate) of the agent's long-term entries.
    pub fn vector(
        &self,
        agent: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
    ) -> Result<Vec<(EntryId, f32)>> {
        match self.agent(agent) {
            Some(idx) => idx.vector(q, k, exact, filter),
            None => Ok(Vec::new()),
        }
    }

    /// BM25 score for `query` of each of `agent`'s entries in `ids` that holds a query term.
    pub fn keyword_scores(&self, agent: &str, query: &str, ids: &[EntryId]) -> Vec<(EntryId, f32)> {
        self.agent(agent)
            .map_or_else(Vec::new, |idx| idx.keyword_scores(query, ids))
    }

    /// Exact cosine similarity of `q` to each of `agent`'s entries in `ids` that has a vector.
    pub fn similarities(&self, agent: &str, q: &[f32], ids: &[EntryId]) -> Vec<(EntryId, f32)> {
        self.agent(agent)
            .map_or_else(Vec::new, |idx| idx.similarities(q, ids))
    }

    /// Heap bytes held by all indexes (an estimate from the indexes' own accounting).
    pub fn heap_bytes(&self) -> usize {
        let agents: Vec<SharedIndex> = self.agents.read().values().cloned().collect();
        agents.iter().map(|a| a.heap_bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry(id: u64, dim: usize) -> MemoryEntry {
        let v: Vec<f32> = (0..dim)
            .map(|d| ((id as usize * 31 + d * 7) % 23) as f32 + 1.0)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let unit = v.iter().map(|x| x / norm).collect();
        MemoryEntry::for_test(id, &format!("entry {id}"), Some(unit))
    }

    /// Indexes of 16-dimensional vectors with a graph from 16 on.
    fn small_indexes() -> Indexes {
        let mut config = VectorIndexConfig::new(16);
        config.hnsw.min_len = 16;
        Indexes::new(Bm25Params::default(), config).unwrap()
    }

    /// One agent's large backlog does not keep the linker from another agent's few vectors:
    /// they are linked in the next turn, long before the backlog is (they waited for all of it).
    #[test]
    fn the_linker_takes_turns_between_agents() {
        let indexes = small_indexes();
        let backlog: Vec<MemoryEntry> = (1..=20_000).map(|i| entry(i, 16)).collect();
        indexes.add(&backlog.iter().collect::<Vec<_>>()).unwrap();
        let few: Vec<MemoryEntry> = (20_001..=20_010)
            .map(|i| {
                let mut e = entry(i, 16);
                e.agent_id = Arc::from("b");
                e
            })
            .collect();
        indexes.add(&few.iter().collect::<Vec<_>>()).unwrap();
        let (a, b) = (indexes.agent("a").unwrap(), indexes.agent("b").unwrap());
        let left_of_a = loop {
            let (left_of_a, left_of_b) = (a.pending_links(), b.pending_links());
            if left_of_a == 0 || left_of_b == 0 {
                break left_of_a;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(
            left_of_a > 0,
            "agent b's 10 vectors waited until agent a's backlog of 20,000 was linked"
        );
        indexes.wait_for_linking();
        assert_eq!(indexes.pending_links(), 0);
    }

    #[test]
    fn the_background_linker_stands_aside_while_a_writer_links_and_resumes_after() {
        let indexes = small_indexes();
        let first: Vec<MemoryEntry> = (1..=100).map(|i| entry(i, 16)).collect();
        indexes.add(&first.iter().collect::<Vec<_>>()).unwrap();
        indexes.wait_for_linking();
        assert_eq!(indexes.pending_links(), 0);

        // A writer linking the agent's backlog: the linker must not touch it meanwhile.
        let agent = indexes.agent("a").unwrap();
        let linking = agent.writer_linking();
        assert!(agent.writers_linking());
        let more: Vec<MemoryEntry> = (101..=2_100).map(|i| entry(i, 16)).collect();
        indexes.add(&more.iter().collect::<Vec<_>>()).unwrap();
        let pending = indexes.pending_links();
        assert_eq!(pending, 2_000);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            indexes.pending_links(),
            pending,
            "the linker linked beside the writer"
        );

        drop(linking);
        assert!(!agent.writers_linking());
        indexes.wait_for_linking();
        assert_eq!(indexes.pending_links(), 0);
    }
}
