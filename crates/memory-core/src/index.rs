//! The in-RAM retrieval indexes of long-term memory, one set per agent: a BM25 inverted index, a
//! vector index (exact scan and HNSW over one arena), and the few attributes filters need. They
//! are rebuilt from SQLite on open and updated after every commit.
//!
//! One index set per agent keeps agent isolation structural (a query only ever reads its own
//! agent's index) and keeps BM25 statistics per agent, whose memory is its own corpus.

use std::sync::Arc;

use parking_lot::RwLock;
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
            self.vectors.insert(id, v)?;
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

/// Per-agent indexes.
#[derive(Debug)]
pub(crate) struct Indexes {
    agents: RwLock<FxHashMap<Arc<str>, Arc<RwLock<AgentIndex>>>>,
    bm25: Bm25Params,
    vector_config: VectorIndexConfig,
}

impl Indexes {
    pub fn new(config: &MemoryConfig) -> Self {
        Indexes {
            agents: RwLock::default(),
            bm25: config.search.bm25,
            vector_config: config.vector_index_config(),
        }
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
            let idx = self.agent_or_create(agent)?;
            let mut idx = idx.write();
            while i < entries.len() && entries[i].agent_id == *agent {
                let e = entries[i];
                let v = e.embedding.as_deref();
                idx.add(e.id, &e.session_id, e.role, e.created_at, &e.content, v)?;
                i += 1;
            }
        }
        Ok(())
    }

    /// Indexes one entry read back from disk on open.
    pub fn add_stored(&self, row: StoredRow<'_>) -> Result<()> {
        let idx = self.agent_or_create(row.agent)?;
        let mut idx = idx.write();
        idx.add(
            row.id,
            row.session,
            row.role,
            row.created_at,
            row.content,
            row.embedding,
        )
    }

    /// Removes a deleted entry.
    pub fn remove(&self, agent: &str, id: EntryId) {
        if let Some(idx) = self.agent(agent) {
            let mut idx = idx.write();
            idx.keyword.remove(id);
            idx.vectors.remove(id);
            idx.docs.remove(&id);
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

    /// Vector ranking (exact or approximate) of the agent's long-term entries.
    pub fn vector(
        &self,
        agent: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
    ) -> Result<Vec<(EntryId, f32)>> {
        let Some(idx) = self.agent(agent) else {
            return Ok(Vec::new());
        };
        let idx = idx.read();
        let accept = idx.matcher(filter);
        let hits = if exact {
            idx.vectors.search_exact(q, k, &accept)
        } else {
            idx.vectors.search_approx(q, k, &accept)
        };
        hits
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
