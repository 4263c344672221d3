//! The `Memory` handle: the one entry point that ties the tiers, the indexes and consolidation
//! together. Cloning it is cheap; every clone is the same store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::cache::{CacheStats, QueryCache};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::commit::GroupCommit;
use crate::config::MemoryConfig;
use crate::consolidate::{self, ConsolidationReport};
use crate::context::{Context, ContextBuilder, ContextRequest, ToolDefinition};
use crate::embed::{Embedder, HashingEmbedder};
use crate::entry::{self, EntryId, MemoryEntry, NewEntry, Tier};
use crate::error::{Error, Result};
use crate::index::Indexes;
use crate::ltm::{ListQuery, LongTermMemory, Storage};
use crate::scoring::ImportanceScorer;
use crate::search::{self, SearchHit, SearchQuery};
use crate::stages;
use crate::stm::ShortTermMemory;
use crate::tokens::{HeuristicCounter, TokenCounter};

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
#[derive(Clone)]
pub struct Memory {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: MemoryConfig,
    pub clock: Arc<dyn Clock>,
    pub stm: ShortTermMemory,
    pub ltm: LongTermMemory,
    pub indexes: Indexes,
    pub scorer: ImportanceScorer,
    pub embedder: Arc<dyn Embedder>,
    pub cache: QueryCache,
    context: ContextBuilder,
    next_id: AtomicU64,
    /// Retrievals of long-term entries not yet written back (id -> (count, last access)), so that
    /// readers never wait on the writer. Flushed with the next write.
    access_log: Mutex<FxHashMap<EntryId, (u32, Timestamp)>>,
    /// Writers of long-term memory waiting to share a transaction.
    commits: GroupCommit,
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

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("path", &self.inner.ltm.path())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Memory {
    /// Opens (or creates) a store with the system clock, the hashing embedder and the heuristic
    /// token counter. See [`Memory::builder`] to choose others.
    pub fn open(storage: Storage, config: MemoryConfig) -> Result<Memory> {
        Memory::builder(storage).config(config).open()
    }

    /// Opens (or creates) a store whose notion of time comes from `clock`.
    pub fn open_with_clock(
        storage: Storage,
        config: MemoryConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Memory> {
        Memory::builder(storage).config(config).clock(clock).open()
    }

    /// A builder for a store with a custom clock, embedder or token counter.
    pub fn builder(storage: Storage) -> MemoryBuilder {
        MemoryBuilder {
            storage,
            config: MemoryConfig::default(),
            clock: None,
            embedder: None,
            token_counter: None,
        }
    }

    /// The store's configuration.
    pub fn config(&self) -> &MemoryConfig {
        &self.inner.config
    }

    /// The long-term database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &std::path::Path {
        self.inner.ltm.path()
    }

    // ---- retrieval ----

    /// Searches the agent's memory; see [`SearchQuery`]. Repeated queries are answered from the
    /// query cache until the agent's memory changes or the cache's time-to-live passes.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let _span = tracing::debug_span!(stages::SEARCH).entered();
        let inner = &*self.inner;
        if !query.use_cache || inner.config.search.cache_capacity == 0 {
            return search::run(inner, query);
        }
        let key = {
            let _span = tracing::debug_span!(stages::CACHE).entered();
            let key = inner.cache.key(query);
            if let Some(hits) = inner.cache.get(&key, inner.clock.now()) {
                return Ok(hits);
            }
            key
        };
        // The answer's age counts from before it was computed, never from after.
        let at = inner.clock.now();
        let hits = search::run(inner, query)?;
        inner.cache.insert(key, &hits, at);
        Ok(hits)
    }

    /// Hit and miss counts of the query cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// Builds a prompt: the system prompt, the tools, the memories retrieved for
    /// `request.query`, and the session's recent window, packed under `request.budget` tokens.
    pub fn build_context(&self, request: &ContextQuery) -> Result<Context> {
        let _span = tracing::debug_span!("context").entered();
        let agent = &request.query.agent_id;
        let turns = self.recent(agent, &request.session, request.recent_turns)?;
        let memories = self.search(&request.query)?;
        let req = ContextRequest::new(&request.system_prompt, request.budget)
            .with_tools(&request.tools)
            .with_recent_turns(&turns)
            .with_memories(&memories)
            .with_memory_share(request.memory_share);
        self.inner.context.build(&req)
    }

    /// The store's embedding of `text` (`None` when the text has no words to embed).
    pub fn embed(&self, text: &str) -> Option<Vec<f32>> {
        self.inner.embed(text)
    }

    /// Blocks until every long-term vector is linked into its agent's HNSW graph. Linking runs in
    /// the background after writes and after open; searches are complete before it finishes
    /// (unlinked vectors are scanned exactly) but slower. Benchmarks call this before measuring.
    pub fn wait_for_indexing(&self) {
        self.inner.indexes.wait_for_linking();
    }

    /// Long-term vectors not yet linked into their agent's HNSW graph (for progress reports).
    pub fn pending_index_links(&self) -> usize {
        self.inner.indexes.pending_links()
    }

    /// Heap bytes held by the long-term indexes, by their own accounting.
    pub fn index_heap_bytes(&self) -> usize {
        self.inner.indexes.heap_bytes()
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
    /// window waits in RAM for [`consolidate`](Self::consolidate), which decides whether it is
    /// kept; call that regularly (say, every few hundred appends or every minute), since waiting
    /// entries are never dropped on their own.
    pub fn append(&self, entry: NewEntry) -> Result<EntryId> {
        let entry = self.inner.materialize(entry, Tier::ShortTerm)?;
        let id = entry.id;
        let now = entry.created_at;
        let agent = entry.agent_id.clone();
        self.inner.stm.append(entry, now);
        self.inner.cache.invalidate(&agent);
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
            self.inner.cache.invalidate(agent);
        }
        Ok(existed)
    }

    /// Long-term entries of `agent` matching `query`, newest first.
    pub fn list(&self, agent: &str, query: &ListQuery) -> Result<Vec<MemoryEntry>> {
        entry::validate_id("agent_id", agent)?;
        let ids = self.inner.indexes.list(agent, query);
        // Kept in the order asked for; an entry forgotten in between is skipped.
        self.inner.ltm.get_many(agent, &ids)
    }

    /// Number of long-term entries of `agent`.
    pub fn count(&self, agent: &str) -> Result<u64> {
        entry::validate_id("agent_id", agent)?;
        Ok(self.inner.indexes.count(agent))
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
        // Long-term entries are embedded now so that vector search finds them; short-term ones
        // lazily (at search or consolidation), which keeps appends cheap.
        if tier == Tier::LongTerm && e.embedding.is_none() {
            e.embedding = self.embed(&e.content);
        }
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
    pub(crate) fn embed(&self, text: &str) -> Option<Vec<f32>> {
        let mut v = self.embedder.embed(text);
        // A custom embedder's vector gets the same checks as a caller's; a text with nothing to
        // embed (all zeros) gets no vector.
        entry::check_embedding(&v, self.config.embedding_dim).ok()?;
        entry::normalize(&mut v).ok()?;
        Some(v)
    }

    /// Commits entries to long-term memory, then indexes them. Returns how many were new.
    /// Concurrent callers share transactions (see `commit.rs`).
    pub(crate) fn store_long_term(&self, entries: Vec<MemoryEntry>) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.commits
            .submit(entries, &|groups| self.commit_groups(groups))
    }

    /// Commits the entries of several writers in one transaction and indexes them; one result
    /// per writer. If the shared transaction fails, each writer's entries are committed on their
    /// own, so that one bad request fails alone.
    fn commit_groups(&self, groups: Vec<Vec<MemoryEntry>>) -> Vec<Result<usize>> {
        if groups.len() == 1 {
            return groups.into_iter().map(|g| self.commit_one(g)).collect();
        }
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        let all: Vec<MemoryEntry> = groups.into_iter().flatten().collect();
        let accesses = self.take_access_log();
        let inserted = match self.ltm.insert(&all, &accesses) {
            Ok(inserted) => inserted,
            Err(_) => {
                self.restore_access_log(accesses);
                let mut all = all.into_iter();
                return sizes
                    .iter()
                    .map(|&n| self.commit_one(all.by_ref().take(n).collect()))
                    .collect();
            }
        };
        let mut results = Vec::with_capacity(sizes.len());
        let mut at = 0;
        for n in sizes {
            let range = at..at + n;
            at += n;
            results.push(self.publish(&all[range.clone()], &inserted[range], None));
        }
        results
    }

    /// Makes committed entries visible: indexes those `inserted` marks new (unless `indexed`
    /// already holds the result of indexing them early), invalidates their agents' cached
    /// answers, and returns how many were new.
    fn publish(
        &self,
        entries: &[MemoryEntry],
        inserted: &[bool],
        indexed: Option<Result<()>>,
    ) -> Result<usize> {
        let fresh: Vec<&MemoryEntry> = entries
            .iter()
            .zip(inserted)
            .filter_map(|(e, &new)| new.then_some(e))
            .collect();
        // Committed entries were checked before the write, so indexing them does not fail; if it
        // ever did, they are safe on disk and indexed again on the next open.
        let indexed = indexed.unwrap_or_else(|| self.indexes.add(&fresh));
        self.invalidate_cache_of(&fresh);
        indexed?;
        Ok(fresh.len())
    }

    /// Bumps the cache generation of every agent among `entries`.
    fn invalidate_cache_of(&self, entries: &[&MemoryEntry]) {
        let mut agents: Vec<&str> = entries.iter().map(|e| &*e.agent_id).collect();
        agents.sort_unstable();
        agents.dedup();
        for agent in agents {
            self.cache.invalidate(agent);
        }
    }

    /// Commits one writer's entries in a transaction of their own and indexes them.
    fn commit_one(&self, entries: Vec<MemoryEntry>) -> Result<usize> {
        // Deferred access records are written in the same transaction (one commit, not two);
        // if it fails they go back to the log.
        let accesses = self.take_access_log();
        // A large batch is indexed on a second thread while SQLite writes it: two cores instead
        // of one. A search may then meet an entry in the index a moment before its row commits
        // (the fetch skips it), and if the commit fails the entries leave the index again.
        let parallel = entries.len() >= PARALLEL_INDEX_BATCH;
        let absent = if parallel {
            self.indexes.absent(&entries)
        } else {
            Vec::new()
        };
        let (written, indexed_early) = if parallel {
            std::thread::scope(|s| {
                let indexing = s.spawn(|| self.indexes.add(&absent));
                let written = self.ltm.insert(&entries, &accesses);
                let indexed = indexing
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (written, Some(indexed))
            })
        } else {
            (self.ltm.insert(&entries, &accesses), None)
        };
        let inserted = match written {
            Ok(inserted) => inserted,
            Err(e) => {
                self.restore_access_log(accesses);
                for entry in absent {
                    self.indexes.remove(&entry.agent_id, entry.id);
                }
                return Err(e);
            }
        };
        self.publish(&entries, &inserted, indexed_early)
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
        let pending = self.take_access_log();
        if pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.ltm.record_access(&pending) {
            self.restore_access_log(pending);
            return Err(e);
        }
        Ok(())
    }

    /// Empties the access log, returning what it held.
    fn take_access_log(&self) -> Vec<(EntryId, u32, Timestamp)> {
        let mut log = self.access_log.lock();
        if log.is_empty() {
            return Vec::new();
        }
        log.drain().map(|(id, (n, at))| (id, n, at)).collect()
    }

    /// Puts access records whose write failed back into the log (merged with any newer ones).
    fn restore_access_log(&self, pending: Vec<(EntryId, u32, Timestamp)>) {
        let mut log = self.access_log.lock();
        for (id, n, at) in pending {
            let slot = log.entry(id).or_insert((0, at));
            slot.0 = slot.0.saturating_add(n);
            slot.1 = slot.1.max(at);
        }
    }
}

/// Batches of long-term entries at least this large are indexed on a second thread while SQLite
/// commits them (below it, starting the thread costs more than it saves).
const PARALLEL_INDEX_BATCH: usize = 256;

/// Opens a [`Memory`] with a custom clock, embedder or token counter.
///
/// ```
/// use memory_core::{Memory, MemoryConfig, Storage};
///
/// let memory = Memory::builder(Storage::InMemory)
///     .config(MemoryConfig { embedding_dim: 128, ..MemoryConfig::default() })
///     .open()?;
/// assert_eq!(memory.config().embedding_dim, 128);
/// # Ok::<(), memory_core::Error>(())
/// ```
#[must_use]
pub struct MemoryBuilder {
    storage: Storage,
    config: MemoryConfig,
    clock: Option<Arc<dyn Clock>>,
    embedder: Option<Arc<dyn Embedder>>,
    token_counter: Option<Arc<dyn TokenCounter>>,
}

impl MemoryBuilder {
    pub fn config(mut self, config: MemoryConfig) -> Self {
        self.config = config;
        self
    }

    /// Where time comes from (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// What embeds text without a caller-given embedding (default: [`HashingEmbedder`]). Its
    /// dimension must be the configured `embedding_dim`.
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// What counts tokens in [`Memory::build_context`] (default: [`HeuristicCounter`]).
    pub fn token_counter(mut self, counter: Arc<dyn TokenCounter>) -> Self {
        self.token_counter = Some(counter);
        self
    }

    /// Opens the store: creates or migrates the file and rebuilds the in-RAM indexes from it.
    pub fn open(self) -> Result<Memory> {
        let config = self.config;
        config.validate()?;
        let embedder: Arc<dyn Embedder> = match self.embedder {
            Some(e) => e,
            None => Arc::new(HashingEmbedder::new(config.embedding_dim)?),
        };
        if embedder.dimension() != config.embedding_dim {
            return Err(Error::InvalidConfig(format!(
                "the embedder makes {}-dimensional vectors, but embedding_dim is {}",
                embedder.dimension(),
                config.embedding_dim
            )));
        }
        let ltm = LongTermMemory::open(&self.storage, config.durability)?;
        let indexes = Indexes::new(&config)?;
        ltm.scan_for_index(|row| indexes.add_stored(row))?;
        // Ids grow from the wall clock in microseconds, and past anything already stored, so that
        // ids of short-term entries lost in a crash are not handed out again soon after.
        let wall = SystemClock.now().0.max(0) as u64;
        let next = ltm.max_id()?.map_or(wall, |m| wall.max(m + 1));
        let counter = self
            .token_counter
            .unwrap_or_else(|| Arc::new(HeuristicCounter));
        let inner = Inner {
            stm: ShortTermMemory::new(config.stm_shards, config.stm_capacity, config.stm_ttl),
            scorer: ImportanceScorer::new(config.consolidation.clone()),
            cache: QueryCache::new(config.search.cache_capacity, config.search.cache_ttl),
            context: ContextBuilder::new(counter),
            embedder,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            config,
            ltm,
            indexes,
            next_id: AtomicU64::new(next),
            access_log: Mutex::new(FxHashMap::default()),
            commits: GroupCommit::default(),
            consolidating: Mutex::new(()),
        };
        Ok(Memory {
            inner: Arc::new(inner),
        })
    }
}

/// What [`Memory::build_context`] builds a prompt from.
#[derive(Clone, Debug)]
pub struct ContextQuery {
    /// The retrieval for the current turn (its agent is the context's agent).
    pub query: SearchQuery,
    /// The session whose recent window is included.
    pub session: String,
    pub system_prompt: String,
    pub tools: Vec<ToolDefinition>,
    /// Most tokens the prompt may cost.
    pub budget: usize,
    /// How many recent turns of the session to consider (default: all of the window).
    pub recent_turns: usize,
    /// Share of the flexible budget given to retrieved memories (default 0.5).
    pub memory_share: f32,
}

impl ContextQuery {
    pub fn new(
        query: SearchQuery,
        session: impl Into<String>,
        system_prompt: impl Into<String>,
        budget: usize,
    ) -> Self {
        ContextQuery {
            query,
            session: session.into(),
            system_prompt: system_prompt.into(),
            tools: Vec::new(),
            budget,
            recent_turns: usize::MAX,
            memory_share: crate::context::DEFAULT_MEMORY_SHARE,
        }
    }

    pub fn tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }
}
