//! The in-RAM retrieval indexes of long-term memory, one set per agent: a BM25 inverted index, a
//! vector index (exact scan and HNSW over one arena), and the few attributes filters need. They
//! are rebuilt from SQLite on open and updated after every commit.
//!
//! One index set per agent keeps agent isolation structural (a query only ever reads its own
//! agent's index) and keeps BM25 statistics per agent, whose memory is its own corpus.
//!
//! Linking a vector into the HNSW graph is the one expensive step of a write (a few hundred
//! microseconds at 100K vectors), so a write only appends the vector to a staging buffer, and a
//! background linker thread moves staged vectors into the index and links them, beside searches
//! (see [`AgentIndex`] for who waits for whom). Searches never miss a vector meanwhile: staged
//! and unlinked vectors are scanned exactly.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap;

use crate::clock::Timestamp;
use crate::config::MemoryConfig;
use crate::entry::{EntryId, MemoryEntry, Role};
use crate::error::Result;
use crate::keyword::{Bm25Params, KeywordIndex};
use crate::ltm::ListQuery;
use crate::vector::{VectorIndex, VectorIndexConfig, VectorStaging};

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

/// What filters need of an entry: 16 bytes, the session as an index into [`TextIndex`]'s
/// interned sessions.
#[derive(Clone, Copy, Debug)]
struct DocInfo {
    created_at: Timestamp,
    session: u32,
    role: Role,
}

/// The keyword index of one agent and the attributes its filters read.
#[derive(Debug)]
struct TextIndex {
    keyword: KeywordIndex,
    docs: FxHashMap<EntryId, DocInfo>,
    /// Interned session ids: each entry holds a `u32` rather than a copy or a pointer.
    sessions: Vec<Arc<str>>,
    session_index: FxHashMap<Arc<str>, u32>,
}

impl TextIndex {
    fn new(keyword: KeywordIndex) -> Self {
        TextIndex {
            keyword,
            docs: FxHashMap::default(),
            sessions: Vec::new(),
            session_index: FxHashMap::default(),
        }
    }

    /// The filter's session as this index numbers it (`u32::MAX`, which no entry has, for a
    /// session the agent never wrote to).
    fn session_number(&self, filter: &DocFilter) -> Option<u32> {
        filter
            .session
            .as_deref()
            .map(|s| self.session_index.get(s).copied().unwrap_or(u32::MAX))
    }

    /// Whether a document passes `filter`, with the filter's session resolved once.
    fn matcher<'a>(&'a self, filter: &'a DocFilter) -> impl Fn(EntryId) -> bool + 'a {
        let session = self.session_number(filter);
        move |id| {
            self.docs
                .get(&id)
                .is_some_and(|d| Self::passes(filter, session, d))
        }
    }

    fn passes(filter: &DocFilter, session: Option<u32>, d: &DocInfo) -> bool {
        session.is_none_or(|s| s == d.session)
            && filter.role.is_none_or(|r| r == d.role)
            && filter.since.is_none_or(|t| d.created_at >= t)
            && filter.until.is_none_or(|t| d.created_at < t)
    }

    fn add(&mut self, id: EntryId, session: &str, role: Role, created_at: Timestamp, text: &str) {
        self.keyword.insert(id, text);
        self.add_attributes(id, session, role, created_at);
    }

    /// Indexes a batch of entries of this agent (one pass over the keyword index).
    fn add_many(&mut self, entries: &[&MemoryEntry]) {
        self.keyword
            .insert_many(entries.iter().map(|e| (e.id, e.content.as_str())));
        self.docs.reserve(entries.len());
        for e in entries {
            self.add_attributes(e.id, &e.session_id, e.role, e.created_at);
        }
    }

    fn add_attributes(&mut self, id: EntryId, session: &str, role: Role, created_at: Timestamp) {
        let session = match self.session_index.get(session) {
            Some(&s) => s,
            None => {
                let s = u32::try_from(self.sessions.len()).unwrap_or(u32::MAX);
                let name: Arc<str> = Arc::from(session);
                self.sessions.push(name.clone());
                self.session_index.insert(name, s);
                s
            }
        };
        self.docs.insert(
            id,
            DocInfo {
                created_at,
                session,
                role,
            },
        );
    }
}

/// The indexes of one agent, each behind its own lock so that the three kinds of work on them
/// wait for each other as little as possible:
/// - a write takes `text` and `staging` for a moment each (appends);
/// - a search reads `vectors` and, briefly, `staging` (and `text` for keywords or filters);
/// - the linker links under a read lock of `vectors` (beside searches), and takes it for writing
///   only to move staged vectors in, a batch at a time.
///
/// Lock order, wherever two are held: `text`, then `vectors`, then `staging`.
#[derive(Debug)]
struct AgentIndex {
    text: RwLock<TextIndex>,
    vectors: RwLock<VectorIndex>,
    staging: RwLock<VectorStaging>,
    /// Whether this index waits in the linker's queue or is being worked on by it.
    link_queued: AtomicBool,
}

impl AgentIndex {
    /// Work left for the linker: staged vectors to move in, or unlinked ones to link.
    fn has_link_work(&self) -> bool {
        self.pending_links() > 0
    }

    /// Vectors staged or not yet linked. One lock at a time: a guard kept across both reads
    /// would take `staging` before `vectors`, against the lock order, and could deadlock with the
    /// linker moving vectors in.
    fn pending_links(&self) -> usize {
        let staged = self.staging.read().len();
        let unlinked = self.vectors.read().pending_links();
        staged + unlinked
    }

    /// The vector ranking of the index and the staged vectors together.
    fn vector_search(
        &self,
        q: &[f32],
        k: usize,
        exact: bool,
        accept: &dyn Fn(EntryId) -> bool,
        also: &[EntryId],
    ) -> Result<Vec<(EntryId, f32)>> {
        // Held throughout: the linker cannot move staged vectors in while the index and then
        // the staging buffer are read, so no vector is seen twice or missed.
        let vectors = self.vectors.read();
        let mut hits = if exact {
            vectors.search_exact(q, k, accept)?
        } else {
            vectors.search_approx(q, k, accept)?
        };
        let staging = self.staging.read();
        if !staging.is_empty() {
            hits.extend(staging.search(q, k, accept));
            crate::topk::sort_ranking(&mut hits);
            hits.truncate(k);
        }
        let before = hits.len();
        for id in also {
            if hits[..before].iter().all(|h| h.0 != *id) {
                let sim = vectors
                    .similarity(*id, q)
                    .or_else(|| staging.similarity(*id, q));
                if let Some(s) = sim {
                    hits.push((*id, s));
                }
            }
        }
        if hits.len() > before {
            crate::topk::sort_ranking(&mut hits);
        }
        Ok(hits)
    }
}

type SharedIndex = Arc<AgentIndex>;

/// Staged vectors past which the linker moves them into the index even while it still has
/// unlinked vectors there: searches scan staged vectors under a lock that writes wait for, so
/// the buffer is kept short.
const STAGING_MOVE_AT: usize = 4_096;

#[derive(Default)]
struct LinkerState {
    queue: VecDeque<SharedIndex>,
    busy: bool,
    shutdown: bool,
}

/// The background linker: a queue of agent indexes with staged or unlinked vectors, and one
/// thread that moves and links them.
#[derive(Default)]
struct Linker {
    state: Mutex<LinkerState>,
    work: Condvar,
    idle: Condvar,
}

impl Linker {
    /// Queues `index` unless it is queued already.
    fn schedule(&self, index: &SharedIndex) {
        if index
            .link_queued
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.state.lock().queue.push_back(index.clone());
            self.work.notify_one();
        }
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
                if Linker::step(&index) {
                    continue;
                }
                // Nothing left. Leave the queue, then look again: a write between the last step
                // and the flag's reset found the flag set and did not queue the index.
                index.link_queued.store(false, Ordering::Release);
                if !index.has_link_work()
                    || index
                        .link_queued
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                {
                    break;
                }
            }
        }
    }

    /// One unit of work on `index`: move staged vectors in (when nothing else is left to link
    /// or the buffer is long), else link one vector. Returns false when there was nothing to do.
    fn step(index: &AgentIndex) -> bool {
        let staged = index.staging.read().len();
        if staged > 0 {
            let unlinked = index.vectors.read().pending_links();
            if unlinked == 0 || staged >= STAGING_MOVE_AT {
                let mut vectors = index.vectors.write();
                let mut staging = index.staging.write();
                vectors.absorb(&mut staging, usize::MAX);
                return true;
            }
        }
        // One vector per read lock, so that a waiting writer (a move, a removal) gets in soon.
        index.vectors.read().link_next()
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
        crate::background::spawn("memory-core-linker", move || worker.run()).map_err(|source| {
            crate::error::Error::Io {
                path: "<linker thread>".into(),
                source,
            }
        })?;
        Ok(Indexes {
            agents: RwLock::default(),
            bm25: config.search.bm25,
            vector_config: config.vector_index_config(),
            linker,
        })
    }

    /// Vectors stored but not yet linked into their agent's graph, over all agents.
    pub fn pending_links(&self) -> usize {
        let agents: Vec<SharedIndex> = self.agents.read().values().cloned().collect();
        agents.iter().map(|a| a.pending_links()).sum()
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
        let fresh = AgentIndex {
            text: RwLock::new(TextIndex::new(KeywordIndex::new(self.bm25)?)),
            vectors: RwLock::new(VectorIndex::new(self.vector_config)?),
            staging: RwLock::new(VectorStaging::new(&self.vector_config)),
            link_queued: AtomicBool::new(false),
        };
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
                Some(idx) => {
                    let text = idx.text.read();
                    out.extend(group.iter().filter(|e| !text.docs.contains_key(&e.id)));
                }
                None => out.extend(group),
            }
        }
        out
    }

    /// Indexes entries (all of one batch; usually one agent).
    pub fn add(&self, entries: &[&MemoryEntry]) -> Result<()> {
        for group in entries.chunk_by(|a, b| a.agent_id == b.agent_id) {
            let shared = self.agent_or_create(&group[0].agent_id)?;
            shared.text.write().add_many(group);
            let staged = {
                let mut staging = shared.staging.write();
                group.iter().try_for_each(|e| match e.embedding.as_deref() {
                    Some(v) => staging.push(e.id, v),
                    None => Ok(()),
                })
            };
            self.linker.schedule(&shared);
            staged?;
        }
        Ok(())
    }

    /// Indexes one entry read back from disk on open (straight into the vector index, unlinked;
    /// the linker links it).
    pub fn add_stored(&self, row: StoredRow<'_>) -> Result<()> {
        let shared = self.agent_or_create(row.agent)?;
        shared
            .text
            .write()
            .add(row.id, row.session, row.role, row.created_at, row.content);
        if let Some(v) = row.embedding {
            shared.vectors.write().insert_unlinked(row.id, v)?;
            self.linker.schedule(&shared);
        }
        Ok(())
    }

    /// Removes a deleted entry.
    pub fn remove(&self, agent: &str, id: EntryId) {
        if let Some(shared) = self.agent(agent) {
            {
                let mut text = shared.text.write();
                text.keyword.remove(id);
                text.docs.remove(&id);
            }
            let mut vectors = shared.vectors.write();
            let mut staging = shared.staging.write();
            if !staging.remove(id) {
                // Past the tombstone limit the graph is dropped and must be linked again.
                vectors.remove(id);
            }
            drop((vectors, staging));
            self.linker.schedule(&shared);
        }
    }

    /// Number of long-term entries of `agent`.
    pub fn count(&self, agent: &str) -> u64 {
        self.agent(agent)
            .map_or(0, |idx| idx.text.read().docs.len() as u64)
    }

    /// Ids of `agent`'s long-term entries matching `q`, newest first (by creation time, then
    /// id). This is the store's secondary index: SQLite keeps rows by id only, which keeps a
    /// commit to one or two pages (see `ltm.rs`).
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
        let limit = q.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Vec::new();
        }
        // The newest `limit` by (created_at, id): a min-heap of the best seen so far.
        let mut newest: BinaryHeap<Reverse<(Timestamp, EntryId)>> = BinaryHeap::new();
        let text = idx.text.read();
        let session = text.session_number(&filter);
        for (&id, d) in &text.docs {
            if !TextIndex::passes(&filter, session, d) {
                continue;
            }
            let key = (d.created_at, id);
            if newest.len() < limit {
                newest.push(Reverse(key));
            } else if newest.peek().is_some_and(|w| key > w.0) {
                newest.pop();
                newest.push(Reverse(key));
            }
        }
        drop(text);
        // Ascending order of `Reverse` is descending order of the keys: newest first.
        newest
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0 .1)
            .collect()
    }

    /// Highest cosine similarity of `v` to the agent's long-term entries (approximate).
    pub fn max_similarity(&self, agent: &str, v: &[f32]) -> Result<Option<f32>> {
        let Some(idx) = self.agent(agent) else {
            return Ok(None);
        };
        Ok(idx
            .vector_search(v, 1, false, &|_| true, &[])?
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
        let text = idx.text.read();
        if filter.is_empty() {
            text.keyword.search(query, k, &|_| true)
        } else {
            text.keyword.search(query, k, &text.matcher(filter))
        }
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
        let Some(idx) = self.agent(agent) else {
            return Ok(Vec::new());
        };
        if filter.is_empty() {
            return idx.vector_search(q, k, exact, &|_| true, also);
        }
        // Filters read the entries' attributes, which live with the keyword index.
        let text = idx.text.read();
        let hits = idx.vector_search(q, k, exact, &text.matcher(filter), also);
        hits
    }

    /// Heap bytes held by all indexes (an estimate from the indexes' own accounting).
    pub fn heap_bytes(&self) -> usize {
        self.agents
            .read()
            .values()
            .map(|a| {
                let text = a.text.read().keyword.heap_bytes();
                let vectors = a.vectors.read().heap_bytes();
                let staging = a.staging.read().heap_bytes();
                text + vectors + staging
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
