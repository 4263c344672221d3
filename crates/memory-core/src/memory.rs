//! The `Memory` handle: the one entry point that ties the tiers, the indexes and consolidation
//! together. Cloning it is cheap; every clone is the same store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::config::MemoryConfig;
use crate::consolidate::{self, ConsolidationReport};
use crate::entry::{self, EntryId, MemoryEntry, NewEntry, Tier};
use crate::error::Result;
use crate::index::Indexes;
use crate::ltm::{ListQuery, LongTermMemory, Storage};
use crate::scoring::ImportanceScorer;
use crate::stm::ShortTermMemory;

/// A tiered memory store. `Send + Sync + Clone`: share it across threads and tokio tasks.
///
/// ```
/// use memory_core::{Memory, MemoryConfig, NewEntry, Role, Storage};
///
/// let memory = Memory::open(Storage::InMemory, MemoryConfig::default())?;
/// memory.append(NewEntry::new("agent", "session", Role::User, "I moved to Lisbon in May"))?;
/// let id = memory.insert(NewEntry::new("agent", "session", Role::User, "My sister is Ana"))?;
/// assert_eq!(memory.recent("agent", "session", 10)?.len(), 1);
/// assert_eq!(memory.get("agent", id)?.unwrap().content, "My sister is Ana");
/// assert!(memory.get("another-agent", id)?.is_none());
/// # Ok::<(), memory_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Memory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: MemoryConfig,
    pub clock: Arc<dyn Clock>,
    pub stm: ShortTermMemory,
    pub ltm: LongTermMemory,
    pub indexes: Indexes,
    pub scorer: ImportanceScorer,
    next_id: AtomicU64,
    /// Retrievals of long-term entries not yet written back (id -> (count, last access)), so that
    /// readers never wait on the writer. Flushed with the next write.
    access_log: Mutex<FxHashMap<EntryId, (u32, Timestamp)>>,
    /// One consolidation at a time.
    consolidating: Mutex<()>,
}

/// Sizes of the tiers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub stm_sessions: usize,
    /// Entries in short-term windows plus those waiting for consolidation.
    pub stm_entries: usize,
    pub ltm_entries: u64,
    /// Database file plus write-ahead log, in bytes.
    pub disk_bytes: u64,
}

impl Memory {
    /// Opens (or creates) a store, on the system clock.
    pub fn open(storage: Storage, config: MemoryConfig) -> Result<Memory> {
        Memory::open_with_clock(storage, config, Arc::new(SystemClock))
    }

    /// Opens (or creates) a store whose notion of time comes from `clock`.
    pub fn open_with_clock(
        storage: Storage,
        config: MemoryConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Memory> {
        config.validate()?;
        let ltm = LongTermMemory::open(&storage, config.durability)?;
        let indexes = Indexes::default();
        ltm.scan_for_index(|id, agent, content, embedding| {
            indexes.add_raw(agent, id, content, embedding)
        })?;
        // Ids grow from the wall clock in microseconds, and past anything already stored, so that
        // ids of short-term entries lost in a crash are not handed out again soon after.
        let wall = SystemClock.now().0.max(0) as u64;
        let next = ltm.max_id()?.map_or(wall, |m| wall.max(m + 1));
        let inner = Inner {
            stm: ShortTermMemory::new(config.stm_shards, config.stm_capacity, config.stm_ttl),
            scorer: ImportanceScorer::new(config.consolidation.clone()),
            config,
            clock,
            ltm,
            indexes,
            next_id: AtomicU64::new(next),
            access_log: Mutex::new(FxHashMap::default()),
            consolidating: Mutex::new(()),
        };
        Ok(Memory {
            inner: Arc::new(inner),
        })
    }

    /// The store's configuration.
    pub fn config(&self) -> &MemoryConfig {
        &self.inner.config
    }

    /// The long-term database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &std::path::Path {
        self.inner.ltm.path()
    }

    // ---- short-term memory ----

    /// Opens a session's short-term window (appending opens it too). Cheap: one hash-map insert
    /// under one shard's lock.
    pub fn open_session(&self, agent: &str, session: &str) -> Result<()> {
        entry::validate_id("agent_id", agent)?;
        entry::validate_id("session_id", session)?;
        let now = self.inner.clock.now();
        self.inner
            .stm
            .open_session(&Arc::from(agent), &Arc::from(session), now);
        Ok(())
    }

    /// Appends an entry to its session's short-term window. The entry that falls out of a full
    /// window waits for [`consolidate`](Self::consolidate).
    pub fn append(&self, entry: NewEntry) -> Result<EntryId> {
        let entry = self.inner.materialize(entry, Tier::ShortTerm)?;
        let id = entry.id;
        let now = entry.created_at;
        self.inner.stm.append(entry, now);
        Ok(id)
    }

    /// The last `n` entries of a session's window, oldest first.
    pub fn recent(&self, agent: &str, session: &str, n: usize) -> Result<Vec<MemoryEntry>> {
        entry::validate_id("agent_id", agent)?;
        entry::validate_id("session_id", session)?;
        Ok(self
            .inner
            .stm
            .recent(agent, session, n, self.inner.clock.now()))
    }

    // ---- long-term memory ----

    /// Writes one entry to long-term memory. When this returns, the entry is committed.
    pub fn insert(&self, entry: NewEntry) -> Result<EntryId> {
        let entry = self.inner.materialize(entry, Tier::LongTerm)?;
        let id = entry.id;
        self.inner.store_long_term(vec![entry])?;
        Ok(id)
    }

    /// Writes entries to long-term memory in one transaction: all or none are committed. Every
    /// entry is checked before anything is written.
    pub fn insert_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<EntryId>> {
        let entries = entries
            .into_iter()
            .map(|e| self.inner.materialize(e, Tier::LongTerm))
            .collect::<Result<Vec<_>>>()?;
        let ids = entries.iter().map(|e| e.id).collect();
        self.inner.store_long_term(entries)?;
        Ok(ids)
    }

    /// One long-term entry of `agent`; `None` if absent or owned by another agent.
    pub fn get(&self, agent: &str, id: EntryId) -> Result<Option<MemoryEntry>> {
        entry::validate_id("agent_id", agent)?;
        self.inner.ltm.get(agent, id)
    }

    /// Deletes a long-term entry of `agent`. Returns whether it existed.
    pub fn forget(&self, agent: &str, id: EntryId) -> Result<bool> {
        entry::validate_id("agent_id", agent)?;
        self.inner.flush_access_log()?;
        let existed = self.inner.ltm.delete(agent, id)?;
        if existed {
            self.inner.indexes.remove(agent, id);
        }
        Ok(existed)
    }

    /// Long-term entries of `agent` matching `query`, newest first.
    pub fn list(&self, agent: &str, query: &ListQuery) -> Result<Vec<MemoryEntry>> {
        entry::validate_id("agent_id", agent)?;
        self.inner.ltm.list(agent, query)
    }

    /// Number of long-term entries of `agent`.
    pub fn count(&self, agent: &str) -> Result<u64> {
        entry::validate_id("agent_id", agent)?;
        self.inner.ltm.count(agent)
    }

    /// Scores short-term entries and moves those worth keeping into long-term memory; see
    /// [`ConsolidationReport`].
    pub fn consolidate(&self) -> Result<ConsolidationReport> {
        let _one_at_a_time = self.inner.consolidating.lock();
        self.inner.flush_access_log()?;
        consolidate::consolidate(&self.inner)
    }

    /// Writes deferred access records (retrieval counts) to long-term memory now.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush_access_log()
    }

    /// Checks the long-term file with SQLite's `quick_check`.
    pub fn check_integrity(&self) -> Result<()> {
        self.inner.ltm.check_integrity()
    }

    /// Sizes of the tiers.
    pub fn stats(&self) -> Result<StoreStats> {
        let (stm_sessions, stm_entries) = self.inner.stm.stats();
        Ok(StoreStats {
            stm_sessions,
            stm_entries,
            ltm_entries: self.inner.ltm.count_all()?,
            disk_bytes: self.inner.ltm.disk_bytes(),
        })
    }

    /// Folds the write-ahead log into the database file (for measuring its size, or before a copy).
    pub fn checkpoint(&self) -> Result<()> {
        self.inner.ltm.checkpoint()
    }
}

impl Inner {
    /// Checks a new entry and gives it an id, timestamps and a tier.
    fn materialize(&self, mut e: NewEntry, tier: Tier) -> Result<MemoryEntry> {
        e.validate(self.config.embedding_dim, self.config.max_content_bytes)?;
        let now = self.clock.now();
        Ok(MemoryEntry {
            id: EntryId(self.next_id.fetch_add(1, Ordering::Relaxed)),
            agent_id: e.agent_id,
            session_id: e.session_id,
            role: e.role,
            content: e.content,
            embedding: e.embedding.map(Arc::from),
            importance: e.importance,
            created_at: now,
            last_accessed_at: now,
            access_count: 0,
            metadata: e.metadata,
            tier,
        })
    }

    /// The store's embedding of `text`, or `None` when it has no words to embed.
    pub(crate) fn embed(&self, _text: &str) -> Option<Vec<f32>> {
        None
    }

    /// Commits entries to long-term memory, then indexes them. Returns how many were new.
    pub(crate) fn store_long_term(&self, entries: Vec<MemoryEntry>) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.flush_access_log()?;
        let inserted = self.ltm.insert(&entries)?;
        let mut n = 0;
        for (e, new) in entries.iter().zip(inserted) {
            if new {
                self.indexes.add(e);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Notes that long-term entries were retrieved (written back with the next write).
    pub(crate) fn record_ltm_access(&self, ids: impl IntoIterator<Item = EntryId>) {
        let now = self.clock.now();
        let mut log = self.access_log.lock();
        for id in ids {
            let slot = log.entry(id).or_insert((0, now));
            slot.0 = slot.0.saturating_add(1);
            slot.1 = now;
        }
    }

    fn flush_access_log(&self) -> Result<()> {
        let pending: Vec<(EntryId, u32, Timestamp)> = {
            let mut log = self.access_log.lock();
            if log.is_empty() {
                return Ok(());
            }
            log.drain().map(|(id, (n, at))| (id, n, at)).collect()
        };
        self.ltm.record_access(&pending)
    }
}
