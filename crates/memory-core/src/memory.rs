//! The `Memory` handle: the one entry point of the engine. Each public operation is a short
//! function that checks its arguments and calls the module that does the work: `write.rs` for
//! every change, `search.rs` for retrieval, `consolidate.rs`, and the context builder. Cloning the
//! handle is cheap; every clone is the same store.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::cache::CacheStats;
use crate::clock::{Clock, SystemClock};
use crate::config::MemoryConfig;
use crate::consolidate::{self, ConsolidationReport};
use crate::context::{Context, ContextBuilder, ContextMaterial, ContextQuery};
use crate::embed::{Embedder, HashingEmbedder};
use crate::entry::{self, EntryId, MemoryEntry, NewEntry};
use crate::error::{Error, Result};
use crate::index::ListQuery;
use crate::query::{SearchHit, SearchQuery};
use crate::search;
use crate::stages;
use crate::state::State;
use crate::stm::ShortTermStorage;
use crate::store::embedder::OnEmbedderChange;
use crate::store::{IntegrityReport, Storage};
use crate::tokens::{HeuristicCounter, TokenCounter};
use crate::write::WritePath;

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

/// What the clones of one handle share.
struct Inner {
    state: State,
    writes: WritePath,
    context: ContextBuilder,
    /// One consolidation at a time.
    consolidating: Mutex<()>,
}

impl Drop for Inner {
    /// The last handle's close writes the retrievals not written back yet (a crash loses at
    /// most those of the last second or so: retrieval counts are advisory, never acknowledged).
    fn drop(&mut self) {
        if let Err(e) = self.writes.flush_access_log(&self.state) {
            tracing::warn!(error = %e, "could not write the retrieval counts on close");
        }
    }
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
            .field("store", &self.inner.state.ltm.location())
            .field("config", &self.inner.state.config)
            .finish_non_exhaustive()
    }
}

impl Memory {
    /// Opens (or creates) a store with the system clock, the hashing embedder and the heuristic
    /// token counter. See [`Memory::builder`] to choose others.
    pub fn open(storage: Storage, config: MemoryConfig) -> Result<Memory> {
        Memory::builder(storage).with_config(config).open()
    }

    /// Opens (or creates) a store whose notion of time comes from `clock`.
    pub fn open_with_clock(
        storage: Storage,
        config: MemoryConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Memory> {
        Memory::builder(storage)
            .with_config(config)
            .with_clock(clock)
            .open()
    }

    /// A builder for a store with a custom clock, embedder or token counter.
    pub fn builder(storage: Storage) -> MemoryBuilder {
        MemoryBuilder {
            storage,
            short_term: ShortTermStorage::default(),
            config: MemoryConfig::default(),
            clock: None,
            embedder: None,
            token_counter: None,
            on_embedder_change: OnEmbedderChange::Refuse,
        }
    }

    fn state(&self) -> &State {
        &self.inner.state
    }

    /// Whether short-term operations wait on a server (the async facade then runs them as
    /// blocking work).
    pub(crate) fn short_term_waits_on_server(&self) -> bool {
        self.state().stm.waits_on_server()
    }

    /// Whether an append may wait on a server: in a short-term tier on one, or for a new block
    /// of entry ids from a long-term store on one (once per block).
    pub(crate) fn append_may_wait(&self) -> bool {
        let state = self.state();
        state.stm.waits_on_server() || !state.ltm.ids_at_hand(1)
    }

    /// The store's configuration.
    pub fn config(&self) -> &MemoryConfig {
        &self.state().config
    }

    /// Where the long-term store lives: its file (`:memory:` for an in-memory store).
    pub fn location(&self) -> &str {
        self.state().ltm.location()
    }

    // ---- retrieval ----

    /// Searches the agent's memory; see [`SearchQuery`]. Repeated queries are answered from the
    /// query cache until the agent's memory changes or the cache's time-to-live passes.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        #[cfg(membench_planted)]
        let _planted = crate::planted::Planted::start(crate::planted::Op::Search);
        let _span = tracing::debug_span!(stages::SEARCH).entered();
        let state = self.state();
        // Checked before the cache key copies the query.
        query.check(&state.config.query_limits())?;
        if !query.use_cache || state.config.search.cache_capacity == 0 {
            return self.search_uncached(query);
        }
        let key = {
            let _span = tracing::debug_span!(stages::CACHE).entered();
            // Shared tiers: one read of their generations, so that another instance's write is
            // seen on this query (an embedded store reads nothing here).
            let shared = state.shared_generation(&query.agent_id, query.tiers)?;
            let key = state.cache.key(query, shared);
            if let Some(hits) = state.cache.get(&key, state.clock.now()) {
                return Ok(hits);
            }
            key
        };
        // The answer's age counts from before it was computed, never from after.
        let at = state.clock.now();
        let hits = self.search_uncached(query)?;
        state.cache.insert(key, &hits, at);
        Ok(hits)
    }

    fn search_uncached(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let hits = search::run(self.state(), query)?;
        self.inner
            .writes
            .record_retrievals(self.state(), &query.agent_id, &hits)?;
        Ok(hits)
    }

    /// Hit and miss counts of the query cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.state().cache.stats()
    }

    /// Builds a prompt: the system prompt, the tools, the memories retrieved for
    /// `request.query`, and the session's recent window, packed under `request.budget` tokens.
    /// The whole request is checked before anything is retrieved: a refused one (see
    /// [`ContextBuilder::build`] and [`SearchQuery`]) records no retrieval.
    pub fn build_context(&self, request: &ContextQuery) -> Result<Context> {
        let _span = tracing::debug_span!(stages::CONTEXT).entered();
        let agent = &request.query.agent_id;
        entry::validate_id("agent_id", agent)?;
        entry::validate_id("session_id", &request.session)?;
        request.query.check(&self.state().config.query_limits())?;
        self.inner
            .context
            .check(&context_material(request, &[], &[]))?;
        let turns = self.recent(agent, &request.session, request.recent_turns)?;
        let memories = self.search(&request.query)?;
        self.inner
            .context
            .build(&context_material(request, &turns, &memories))
    }

    /// The store's embedding of `text` (`None` when the text has no words to embed).
    pub fn embed(&self, text: &str) -> Option<Vec<f32>> {
        self.state().embed(text)
    }

    /// Blocks until every long-term vector is linked into its agent's HNSW graph, and the
    /// vectors a backlog had linked quickly are linked again with the full candidate list.
    /// Linking runs in the background after writes and after open; searches are complete before
    /// it finishes (unlinked vectors are scanned exactly) but slower. Benchmarks call this
    /// before measuring. (Searchable at full ANN speed is earlier: when
    /// [`Memory::pending_index_links`] reaches 0.)
    pub fn wait_for_indexing(&self) {
        self.state().ltm.wait_for_indexing();
    }

    /// Long-term vectors not yet linked into their agent's HNSW graph (for progress reports).
    pub fn pending_index_links(&self) -> usize {
        self.state().ltm.pending_index_links()
    }

    /// Heap bytes held by the long-term indexes, by their own accounting. Vectors that a reopened
    /// file store views in its memory-mapped index snapshot are not on the heap and not counted
    /// (they are in the page cache, shared with the file).
    pub fn index_heap_bytes(&self) -> usize {
        self.state().ltm.index_heap_bytes()
    }

    // ---- short-term memory ----

    /// Opens a session's short-term window (appending opens it too). Cheap: one hash-map insert
    /// under one shard's lock.
    pub fn open_session(&self, agent: &str, session: &str) -> Result<()> {
        entry::validate_id("agent_id", agent)?;
        entry::validate_id("session_id", session)?;
        let state = self.state();
        state
            .stm
            .open_session(&Arc::from(agent), &Arc::from(session), state.clock.now())
    }

    /// Appends an entry to its session's short-term window. The entry that falls out of a full
    /// window waits in RAM for [`consolidate`](Self::consolidate), which decides whether it is
    /// kept; call that regularly (say, every few hundred appends or every minute), since waiting
    /// entries are never dropped on their own.
    pub fn append(&self, entry: NewEntry) -> Result<EntryId> {
        self.inner.writes.append(self.state(), entry)
    }

    /// The last `n` entries of a session's window, oldest first.
    pub fn recent(&self, agent: &str, session: &str, n: usize) -> Result<Vec<MemoryEntry>> {
        entry::validate_id("agent_id", agent)?;
        entry::validate_id("session_id", session)?;
        let state = self.state();
        state.stm.recent(agent, session, n, state.clock.now())
    }

    // ---- long-term memory ----

    /// Writes one entry to long-term memory. When this returns, the entry is committed.
    pub fn insert(&self, entry: NewEntry) -> Result<EntryId> {
        self.inner.writes.insert_one(self.state(), entry)
    }

    /// Writes entries to long-term memory in one transaction: all or none are committed. Every
    /// entry is checked before anything is written.
    pub fn insert_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<EntryId>> {
        self.inner.writes.insert(self.state(), entries)
    }

    /// One long-term entry of `agent`; `None` if absent or owned by another agent.
    pub fn get(&self, agent: &str, id: EntryId) -> Result<Option<MemoryEntry>> {
        #[cfg(membench_planted)]
        let _planted = crate::planted::Planted::start(crate::planted::Op::Get);
        entry::validate_id("agent_id", agent)?;
        self.state().ltm.get(agent, id)
    }

    /// Deletes an entry of `agent` from memory: from long-term memory, and from short-term
    /// memory too (its session's window, where a consolidated entry stays as a recent turn, or
    /// the hand-off to consolidation), so that no search, context or later consolidation brings
    /// it back. Returns whether it was in either tier. An entry that a consolidation running at
    /// that moment has already taken (between its sweep and its commit, also of another
    /// instance sharing a Redis short-term tier) is deleted again by that consolidation right
    /// after its commit: once it returns, the entry is in neither tier.
    pub fn forget(&self, agent: &str, id: EntryId) -> Result<bool> {
        self.inner.writes.forget(self.state(), agent, id)
    }

    /// Long-term entries of `agent` matching `query`, newest first.
    pub fn list(&self, agent: &str, query: &ListQuery) -> Result<Vec<MemoryEntry>> {
        entry::validate_id("agent_id", agent)?;
        self.state().ltm.list(agent, query)
    }

    /// Number of long-term entries of `agent`.
    pub fn count(&self, agent: &str) -> Result<u64> {
        entry::validate_id("agent_id", agent)?;
        self.state().ltm.count(agent)
    }

    /// Scores short-term entries and moves those worth keeping into long-term memory; see
    /// [`ConsolidationReport`]. On an error, or a panic (of the embedder, say: it goes on up to
    /// the caller), the entries it took stay in short-term memory for the next run.
    pub fn consolidate(&self) -> Result<ConsolidationReport> {
        let _one_at_a_time = self.inner.consolidating.lock();
        self.inner.writes.flush_access_log(self.state())?;
        consolidate::consolidate(self.state(), &self.inner.writes)
    }

    /// Writes deferred access records (retrieval counts) to long-term memory now.
    pub fn flush(&self) -> Result<()> {
        self.inner.writes.flush_access_log(self.state())
    }

    /// Checks the long-term store (SQLite's `quick_check` for the embedded store): damage is
    /// `Error::Corrupt`; the report lists rows set aside on open because they could not be read
    /// back or indexed.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        self.state().ltm.check_integrity()
    }

    /// Sizes of the tiers.
    pub fn stats(&self) -> Result<StoreStats> {
        let state = self.state();
        let stm = state.stm.stats()?;
        Ok(StoreStats {
            stm_sessions: stm.sessions,
            stm_entries: stm.entries,
            ltm_entries: state.ltm.count_all()?,
            disk_bytes: state.ltm.disk_bytes(),
        })
    }

    /// Folds the write-ahead log into the database file (for measuring its size, or before a copy),
    /// and saves the index snapshot of a file store (`Error::Io` naming its directory when that
    /// cannot be written; the data is safe either way).
    pub fn checkpoint(&self) -> Result<()> {
        self.state().ltm.checkpoint()
    }
}

/// What [`Memory::build_context`] packs: `request` with its retrieved turns and memories.
fn context_material<'a>(
    request: &'a ContextQuery,
    turns: &'a [MemoryEntry],
    memories: &'a [SearchHit],
) -> ContextMaterial<'a> {
    ContextMaterial::new(&request.system_prompt, request.budget)
        .with_tools(&request.tools)
        .with_recent_turns(turns)
        .with_memories(memories)
        .with_memory_share(request.memory_share)
        .with_memory_dates(request.memory_dates)
}

/// Opens a [`Memory`] with a custom clock, embedder or token counter.
///
/// ```
/// use memory_core::{Memory, MemoryConfig, Storage};
///
/// let memory = Memory::builder(Storage::InMemory)
///     .with_config(MemoryConfig { embedding_dim: 128, ..MemoryConfig::default() })
///     .open()?;
/// assert_eq!(memory.config().embedding_dim, 128);
/// # Ok::<(), memory_core::Error>(())
/// ```
#[must_use]
pub struct MemoryBuilder {
    storage: Storage,
    short_term: ShortTermStorage,
    config: MemoryConfig,
    clock: Option<Arc<dyn Clock>>,
    embedder: Option<Arc<dyn Embedder>>,
    token_counter: Option<Arc<dyn TokenCounter>>,
    on_embedder_change: OnEmbedderChange,
}

impl MemoryBuilder {
    /// Where the short-term tier lives (default: [`ShortTermStorage::Ram`], this process's RAM).
    pub fn with_short_term(mut self, short_term: ShortTermStorage) -> Self {
        self.short_term = short_term;
        self
    }

    /// The store's configuration (default: [`MemoryConfig::default`]).
    pub fn with_config(mut self, config: MemoryConfig) -> Self {
        self.config = config;
        self
    }

    /// Where time comes from (default: the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// What embeds text without a caller-given embedding (default: [`HashingEmbedder`]). Its
    /// dimension must be the configured `embedding_dim`.
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Opens a store whose vectors another embedder made ([`Embedder::id`]) with this one
    /// anyway, and records this one: for an embedder that makes the same vectors under another
    /// id (a type renamed, a model copied with another vocabulary file that splits words the
    /// same way). Without it (or [`reembed_on_embedder_change`](Self::reembed_on_embedder_change))
    /// such an open fails with [`Error::StoreEmbedderMismatch`]. The stored vectors are kept as
    /// they are: if the two embedders do differ, old entries rank as noise in vector search
    /// until they are written again. A store part way through a re-embedding holds two
    /// embedders' vectors and is still refused (finish the re-embedding, or re-embed it with
    /// this one).
    pub fn accept_embedder_change(mut self) -> Self {
        self.on_embedder_change = OnEmbedderChange::Accept;
        self
    }

    /// Opens a store whose vectors another embedder made ([`Embedder::id`]) by recomputing
    /// every long-term entry's vector from its content with this embedder first, then records
    /// this one: how a store moves to another model of the same dimension (from the built-in
    /// hashing embedder to a sentence model, say). Vectors a caller passed with
    /// [`NewEntry::with_embedding`](crate::NewEntry::with_embedding) are recomputed too.
    ///
    /// The open takes as long as embedding every entry (tracing events report the progress)
    /// and then rebuilds the indexes; each batch is committed as it goes, so an interrupted
    /// re-embedding is taken up where it stopped by the next open with this embedder (with or
    /// without this call), and an open with any other embedder is refused until it is done.
    /// PostgreSQL instances that open with this call at once re-embed the store once: the others
    /// wait for it (a tracing event says so) and open when it is done.
    /// PostgreSQL instances already running with the old embedder are refused from then on
    /// ([`Error::StoreEmbedderMismatch`](crate::Error::StoreEmbedderMismatch) on their writes
    /// and searches, a search that skips the query cache from its next read of the agent's
    /// entry count, at most a second later; their writes under way end before the re-embedding
    /// begins, so it covers them): restart them with the new embedder. (A file store has one
    /// handle at a time.) Short-term entries hold only the vectors their callers passed (the
    /// others are embedded when searched or consolidated, by the handle's embedder): those stay
    /// as they are.
    pub fn reembed_on_embedder_change(mut self) -> Self {
        self.on_embedder_change = OnEmbedderChange::Reembed;
        self
    }

    /// What counts tokens in [`Memory::build_context`] (default: [`HeuristicCounter`]).
    pub fn with_token_counter(mut self, counter: Arc<dyn TokenCounter>) -> Self {
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
        crate::store::embedder::check_id(&embedder.id())?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let counter = self
            .token_counter
            .unwrap_or_else(|| Arc::new(HeuristicCounter));
        let state = State::open(
            &self.storage,
            &self.short_term,
            config,
            clock,
            embedder,
            self.on_embedder_change,
        )?;
        Ok(Memory {
            inner: Arc::new(Inner {
                state,
                writes: WritePath::default(),
                context: ContextBuilder::new(counter),
                consolidating: Mutex::new(()),
            }),
        })
    }
}
