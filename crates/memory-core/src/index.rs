//! The in-RAM retrieval indexes of long-term memory, one set per agent: a BM25 inverted index, a
//! vector index (exact scan and HNSW over one arena), and the few attributes filters need. They
//! are rebuilt from SQLite on open and updated after every commit.
//!
//! One index set per agent keeps agent isolation structural (a query only ever reads its own
//! agent's index) and keeps BM25 statistics per agent, whose memory is its own corpus.
//!
//! Linking a vector into the HNSW graph is the one expensive step of a write (a few hundred
//! microseconds at 100K vectors), so writes only append to the vector arena and a background
//! linker thread links them, a few at a time under the agent's write lock. Searches never miss a
//! vector meanwhile: approximate search scans the unlinked tail exactly.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::clock::Timestamp;
use crate::config::MemoryConfig;
use crate::entry::{EntryId, MemoryEntry, Role};
use crate::error::Result;
use crate::keyword::{Bm25Params, KeywordIndex};
use crate::vector::{VectorIndex, VectorIndexConfig};

pub(crate) use crate::vector::kernel::dot;

/// The filters that can be checked in RAM, before anything is read from SQLite.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DocFilter {
    pub session: Option<String>,
    pub role: Option<Role>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl DocFilter {
    fn is_empty(&self) -> bool {
        *self == DocFilter::default()
    }

    pub fn matches(&self, session: &str, role: Role, created_at: Timestamp) -> bool {
        self.session.as_deref().is_none_or(|s| s == session)
            && self.role.is_none_or(|r| r == role)
            && self.since.is_none_or(|t| created_at >= t)
            && self.until.is_none_or(|t| created_at < t)
    }
}

/// What filters need of an entry.
#[derive(Debug)]
struct DocInfo {
    session: Arc<str>,
    role: Role,
    created_at: Timestamp,
}

#[derive(Debug)]
struct AgentIndex {
    keyword: KeywordIndex,
    vectors: VectorIndex,
    docs: FxHashMap<EntryId, DocInfo>,
    /// Interned session ids, so that each entry holds a pointer rather than a copy.
    sessions: FxHashSet<Arc<str>>,
    /// Whether this index waits in the linker's queue (set and cleared under its write lock).
    link_queued: bool,
}

impl AgentIndex {
    fn matcher<'a>(&'a self, filter: &'a DocFilter) -> impl Fn(EntryId) -> bool + 'a {
        let all = filter.is_empty();
        move |id| {
            all || self
                .docs
                .get(&id)
                .is_some_and(|d| filter.matches(&d.session, d.role, d.created_at))
        }
    }

    fn add(
        &mut self,
        id: EntryId,
        session: &str,
        role: Role,
        created_at: Timestamp,
        content: &str,
        embedding: Option<&[f32]>,
    ) -> Result<()> {
        if let Some(v) = embedding {
            self.vectors.insert_unlinked(id, v)?;
        }
        self.keyword.insert(id, content);
        let session = match self.sessions.get(session) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = Arc::from(session);
                self.sessions.insert(s.clone());
                s
            }
        };
        self.docs.insert(
            id,
            DocInfo {
                session,
                role,
                created_at,
            },
        );
        Ok(())
    }
}

type SharedIndex = Arc<RwLock<AgentIndex>>;

/// Vectors linked per hold of an agent's write lock: one, so a search or insert of that agent waits
/// at most one link (a few hundred microseconds at 100K vectors) behind the linker.
const LINKS_PER_LOCK: usize = 1;

#[derive(Default)]
struct LinkerState {
    queue: VecDeque<SharedIndex>,
    busy: bool,
    shutdown: bool,
}

/// The background linker's queue of agent indexes with unlinked vectors.
#[derive(Default)]
struct Linker {
    state: Mutex<LinkerState>,
    work: Condvar,
    idle: Condvar,
}

impl Linker {
    fn enqueue(&self, index: SharedIndex) {
        self.state.lock().queue.push_back(index);
        self.work.notify_one();
    }

    fn run(&self) {
        loop {
            let index = {
                let mut state = self.state.lock();
                loop {
                    if state.shutdown {
                        return;
                    }
                    if let Some(index) = state.queue.pop_front() {
                        state.busy = true;
                        break index;
                    }
                    state.busy = false;
                    self.idle.notify_all();
                    self.work.wait(&mut state);
                }
            };
            loop {
                if self.state.lock().shutdown {
                    return;
                }
                let mut idx = index.write();
                if idx.vectors.link_pending(LINKS_PER_LOCK) == 0 {
                    idx.link_queued = false;
                    break;
                }
                // Hand the lock straight to a waiting writer or reader: re-locking at once
                // would starve inserts and searches of this agent while a backlog is linked.
                parking_lot::RwLockWriteGuard::unlock_fair(idx);
            }
        }
    }

    fn wait_idle(&self) {
        let mut state = self.state.lock();
        while state.busy || !state.queue.is_empty() {
            self.idle.wait(&mut state);
        }
    }
}

/// Per-agent indexes.
pub(crate) struct Indexes {
    agents: RwLock<FxHashMap<Arc<str>, SharedIndex>>,
    bm25: Bm25Params,
    vector_config: VectorIndexConfig,
    linker: Arc<Linker>,
}

impl std::fmt::Debug for Indexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexes")
            .field("agents", &self.agents.read().len())
            .finish_non_exhaustive()
    }
}

impl Drop for Indexes {
    fn drop(&mut self) {
        self.linker.state.lock().shutdown = true;
        self.linker.work.notify_all();
        self.linker.idle.notify_all();
    }
}

impl Indexes {
    /// Empty indexes, with their linker thread started.
    pub fn new(config: &MemoryConfig) -> Result<Self> {
        let linker = Arc::new(Linker::default());
        let worker = linker.clone();
        std::thread::Builder::new()
            .name("memory-core-linker".into())
            .spawn(move || worker.run())
            .map_err(|source| crate::error::Error::Io {
                path: "<linker thread>".into(),
                source,
            })?;
        Ok(Indexes {
            agents: RwLock::default(),
            bm25: config.search.bm25,
            vector_config: config.vector_index_config(),
            linker,
        })
    }

    /// Hands an agent's index to the linker if it has unlinked vectors and is not queued yet.
    /// Called with the index's write lock held (so the flag cannot race with the linker).
    fn schedule(&self, shared: &SharedIndex, idx: &mut AgentIndex) {
        if !idx.link_queued && idx.vectors.pending_links() > 0 {
            idx.link_queued = true;
            self.linker.enqueue(shared.clone());
        }
    }

    /// Vectors stored but not yet linked into their agent's graph, over all agents.
    pub fn pending_links(&self) -> usize {
        let agents: Vec<SharedIndex> = self.agents.read().values().cloned().collect();
        agents
            .iter()
            .map(|a| a.read().vectors.pending_links())
            .sum()
    }

    /// Blocks until every stored vector is linked into its agent's graph.
    pub fn wait_for_linking(&self) {
        self.linker.wait_idle();
    }

    fn agent(&self, agent: &str) -> Option<Arc<RwLock<AgentIndex>>> {
        self.agents.read().get(agent).cloned()
    }

    fn agent_or_create(&self, agent: &str) -> Result<Arc<RwLock<AgentIndex>>> {
        if let Some(a) = self.agent(agent) {
            return Ok(a);
        }
        let fresh = AgentIndex {
            keyword: KeywordIndex::new(self.bm25)?,
            vectors: VectorIndex::new(self.vector_config)?,
            docs: FxHashMap::default(),
            sessions: FxHashSet::default(),
            link_queued: false,
        };
        let mut agents = self.agents.write();
        Ok(agents
            .entry(Arc::from(agent))
            .or_insert_with(|| Arc::new(RwLock::new(fresh)))
            .clone())
    }

    /// Indexes committed entries (all of one batch; usually one agent).
    pub fn add(&self, entries: &[&MemoryEntry]) -> Result<()> {
        let mut i = 0;
        while i < entries.len() {
            let agent = &entries[i].agent_id;
            let shared = self.agent_or_create(agent)?;
            let mut idx = shared.write();
            while i < entries.len() && entries[i].agent_id == *agent {
                let e = entries[i];
                let v = e.embedding.as_deref();
                let added = idx.add(e.id, &e.session_id, e.role, e.created_at, &e.content, v);
                if added.is_err() {
                    self.schedule(&shared, &mut idx);
                }
                added?;
                i += 1;
            }
            self.schedule(&shared, &mut idx);
        }
        Ok(())
    }

    /// Indexes one entry read back from disk on open.
    pub fn add_stored(&self, row: StoredRow<'_>) -> Result<()> {
        let shared = self.agent_or_create(row.agent)?;
        let mut idx = shared.write();
        let added = idx.add(
            row.id,
            row.session,
            row.role,
            row.created_at,
            row.content,
            row.embedding,
        );
        self.schedule(&shared, &mut idx);
        added
    }

    /// Removes a deleted entry.
    pub fn remove(&self, agent: &str, id: EntryId) {
        if let Some(shared) = self.agent(agent) {
            let mut idx = shared.write();
            idx.keyword.remove(id);
            idx.vectors.remove(id);
            idx.docs.remove(&id);
            // Past the tombstone limit the graph is dropped and must be linked again.
            self.schedule(&shared, &mut idx);
        }
    }

    /// Highest cosine similarity of `v` to the agent's long-term entries (approximate).
    pub fn max_similarity(&self, agent: &str, v: &[f32]) -> Result<Option<f32>> {
        let Some(idx) = self.agent(agent) else {
            return Ok(None);
        };
        let idx = idx.read();
        Ok(idx
            .vectors
            .search_approx(v, 1, &|_| true)?
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
        let Some(idx) = self.agent(agent) else {
            return Vec::new();
        };
        let idx = idx.read();
        let hits = idx.keyword.search(query, k, &idx.matcher(filter));
        hits
    }

    /// Vector ranking (exact or approximate) of the agent's long-term entries. Entries in `also`
    /// (the keyword candidates of a hybrid query) are scored exactly and ranked in too, so that
    /// an approximate search missing one of them cannot hide its true similarity.
    pub fn vector(
        &self,
        agent: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
        also: &[EntryId],
    ) -> Result<Vec<(EntryId, f32)>> {
        let Some(agent_index) = self.agent(agent) else {
            return Ok(Vec::new());
        };
        let idx = agent_index.read();
        let accept = idx.matcher(filter);
        let mut hits = if exact {
            idx.vectors.search_exact(q, k, &accept)?
        } else {
            idx.vectors.search_approx(q, k, &accept)?
        };
        let before = hits.len();
        for id in also {
            if hits[..before].iter().all(|h| h.0 != *id) {
                if let Some(s) = idx.vectors.similarity(*id, q) {
                    hits.push((*id, s));
                }
            }
        }
        if hits.len() > before {
            crate::topk::sort_ranking(&mut hits);
        }
        Ok(hits)
    }

    /// Heap bytes held by all indexes (an estimate from the indexes' own accounting).
    pub fn heap_bytes(&self) -> usize {
        self.agents
            .read()
            .values()
            .map(|a| {
                let a = a.read();
                a.keyword.heap_bytes() + a.vectors.heap_bytes()
            })
            .sum()
    }
}

/// One long-term row as read back on open.
pub(crate) struct StoredRow<'a> {
    pub id: EntryId,
    pub agent: &'a str,
    pub session: &'a str,
    pub role: Role,
    pub created_at: Timestamp,
    pub content: &'a str,
    pub embedding: Option<&'a [f32]>,
}
