//! Long-term storage behind one boundary. [`LongTermStore`] is everything the engine asks of the
//! durable tier: commit entries, read them back, and rank an agent's entries by keywords and by
//! vector similarity. The embedded store ([`embedded::EmbeddedStore`]: one SQLite file plus
//! in-RAM indexes) is the default; other backends implement the same trait, so that the write
//! path, search and consolidation above never know which one they talk to.
//!
//! [`commit`] (group commit) sits in front of any store: concurrent writers share transactions.

pub(crate) mod commit;
pub(crate) mod embedded;
pub(crate) mod embedder;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod snapshot;
pub(crate) mod sqlite;

use std::path::PathBuf;

#[cfg(feature = "postgres")]
use self::postgres::config::PostgresConfig;
use crate::clock::Timestamp;
use crate::entry::{EntryId, MemoryEntry};
use crate::error::Result;
use crate::index::ListQuery;
use crate::query::DocFilter;

/// The long-term candidates of a hybrid search ([`LongTermStore::hybrid_candidates`]).
#[derive(Debug, Default)]
pub(crate) struct HybridCandidates {
    /// The BM25 ranking.
    pub keyword: Ranking,
    /// The cosine ranking.
    pub vector: Ranking,
    /// The exact similarity of every keyword candidate that has a vector, when the store
    /// computed it with the keyword ranking; `None` leaves it to `similarities`.
    pub keyword_similarities: Option<Ranking>,
}

/// Where the long-term store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A database file at this path (created if absent, with its directory).
    File(PathBuf),
    /// A database file in a fresh temporary directory, deleted when the last handle is dropped.
    /// Same code path and durability as `File`; for tests and benchmarks.
    Temporary,
    /// An in-memory SQLite database: nothing survives the process. Reads share the writer's
    /// connection (SQLite's in-memory databases are per connection).
    InMemory,
    /// A PostgreSQL database with the pgvector extension (feature `postgres`), shared by every
    /// handle and process that opens the same server and schema: each sees the others' writes on
    /// its next query. See [`PostgresConfig`](crate::PostgresConfig).
    #[cfg(feature = "postgres")]
    Postgres(PostgresConfig),
}

/// A row moved to the quarantine on open because it could not be read back or indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinedEntry {
    pub id: EntryId,
    /// The agent as stored (empty if it was not text).
    pub agent_id: String,
    /// What was wrong with the row.
    pub reason: String,
}

/// What [`Memory::check_integrity`](crate::Memory::check_integrity) found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Rows that could not be read back or indexed (written by an older version or by hand),
    /// moved aside on open with the reason; kept whole in the file's quarantine.
    pub quarantined: Vec<QuarantinedEntry>,
}

/// Retrievals of one long-term entry not yet written back: how many, and the latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccessRecord {
    pub id: EntryId,
    pub count: u32,
    pub at: Timestamp,
}

/// A ranking of entries by one signal: (id, raw score), best first.
pub(crate) type Ranking = Vec<(EntryId, f32)>;

/// The durable tier, as the engine sees it. Every method is scoped to one agent where it reads
/// entries, so agent isolation holds whatever the backend.
pub(crate) trait LongTermStore: Send + Sync + std::fmt::Debug {
    /// Where the store lives, for messages: a file path, or a server address without secrets.
    fn location(&self) -> &str;

    /// Reserves `n` fresh entry ids and returns the first; the block is `first..first + n`. Ids
    /// handed out are never handed out again by this store, to this handle or to another.
    fn allocate_ids(&self, n: u64) -> Result<u64>;

    /// Whether `allocate_ids(n)` would answer from ids this handle holds, without waiting for
    /// a server (the async facade runs calls that may wait off the runtime's thread).
    fn ids_at_hand(&self, _n: u64) -> bool {
        true
    }

    /// Commits `entries` in one transaction, with deferred access records riding along, and
    /// makes them searchable. Returns per entry whether it was new (an entry whose id is already
    /// stored is the same entry, stored before). All or nothing.
    fn insert(&self, entries: &[MemoryEntry], accesses: &[AccessRecord]) -> Result<Vec<bool>>;

    /// Writes deferred access records (retrieval counts and times).
    fn record_access(&self, accesses: &[AccessRecord]) -> Result<()>;

    /// Deletes one entry of `agent`; whether it existed.
    fn delete(&self, agent: &str, id: EntryId) -> Result<bool>;

    /// One entry of `agent`, `None` if absent or another agent's.
    fn get(&self, agent: &str, id: EntryId) -> Result<Option<MemoryEntry>>;

    /// Entries of `agent` by id, in the order asked; unknown ids are skipped.
    fn get_many(&self, agent: &str, ids: &[EntryId]) -> Result<Vec<MemoryEntry>>;

    /// Entries of `agent` matching `query`, newest first.
    fn list(&self, agent: &str, query: &ListQuery) -> Result<Vec<MemoryEntry>>;

    /// Number of entries of `agent`.
    fn count(&self, agent: &str) -> Result<u64>;

    /// Number of entries of all agents.
    fn count_all(&self) -> Result<u64>;

    /// BM25 ranking of `agent`'s entries passing `filter`, the best `k`.
    fn keyword(&self, agent: &str, text: &str, k: usize, filter: &DocFilter) -> Result<Ranking>;

    /// Cosine ranking of `agent`'s entries passing `filter` against the unit vector `q`, the best
    /// `k` (exact or approximate). Candidates an approximate search may miss get their exact
    /// similarity from [`LongTermStore::similarities`].
    fn vector(
        &self,
        agent: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
    ) -> Result<Ranking>;

    /// Both long-term signals of a hybrid search: the best `k` by BM25 and the best `k` by cosine
    /// (approximate) against the unit vector `q`, both among `agent`'s entries passing
    /// `filter`. A store may answer them at once and bring the exact similarity of each keyword
    /// candidate along (saving a [`LongTermStore::similarities`] request); by default they are
    /// asked for one after the other.
    fn hybrid_candidates(
        &self,
        agent: &str,
        text: &str,
        q: &[f32],
        k: usize,
        filter: &DocFilter,
    ) -> Result<HybridCandidates> {
        let keyword = {
            let _span = tracing::debug_span!(crate::stages::KEYWORD).entered();
            self.keyword(agent, text, k, filter)?
        };
        let vector = {
            let _span = tracing::debug_span!(crate::stages::VECTOR).entered();
            self.vector(agent, q, k, false, filter)?
        };
        Ok(HybridCandidates {
            keyword,
            vector,
            keyword_similarities: None,
        })
    }

    /// Exact cosine similarity of the unit vector `q` to each of `agent`'s entries in `ids` that
    /// has a vector (others are left out), in no particular order.
    fn similarities(&self, agent: &str, q: &[f32], ids: &[EntryId]) -> Result<Ranking>;

    /// BM25 score for `text` of each of `agent`'s entries in `ids` that holds one of its terms
    /// (others are left out), in no particular order: the score [`LongTermStore::keyword`] gives
    /// the entry, for the vector candidates a hybrid search's keyword ranking left out.
    fn keyword_scores(&self, agent: &str, text: &str, ids: &[EntryId]) -> Result<Ranking>;

    /// Highest cosine similarity of `v` to `agent`'s entries (approximate), for novelty and
    /// near-duplicate checks.
    fn max_similarity(&self, agent: &str, v: &[f32]) -> Result<Option<f32>>;

    /// A number that changes whenever the agent's entries change, read from the shared store;
    /// `None` for a store that only this handle writes (its own invalidation is then enough).
    /// The query cache reads it before computing an answer (see `cache.rs`).
    fn generation(&self, _agent: &str) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Checks the stored data: damage is an error (`Error::Corrupt`); rows set aside on open
    /// are reported.
    fn check_integrity(&self) -> Result<IntegrityReport>;

    /// Bytes on disk (0 where the store does not know or is not local).
    fn disk_bytes(&self) -> u64;

    /// Folds logs into the main file, where the backend has such a thing.
    fn checkpoint(&self) -> Result<()>;

    /// Blocks until background index upkeep has caught up with every committed write.
    fn wait_for_indexing(&self);

    /// Vectors committed but not yet in their approximate index (0 where the server indexes).
    fn pending_index_links(&self) -> usize;

    /// Heap bytes held by in-process indexes (0 where the server indexes).
    fn index_heap_bytes(&self) -> usize;
}
