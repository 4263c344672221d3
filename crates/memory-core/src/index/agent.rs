//! One agent's indexes: its keyword index with the attributes filters read, its vector index,
//! and the staging buffer writes append vectors to; each behind its own lock (see
//! [`AgentIndex`] for who waits for whom).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::clock::Timestamp;
use crate::entry::{EntryId, MemoryEntry, Role};
use crate::error::Result;
use crate::index::capture::{CaptureLock, WriteGuard};
use crate::index::keyword::{Bm25Params, KeywordIndex};
use crate::index::topk::sort_ranking;
use crate::index::vector::{VectorIndex, VectorIndexConfig, VectorStaging};
use crate::query::DocFilter;

mod snapshot;

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
    /// Entries of `docs` whose commit is still running (a large batch's text is indexed beside
    /// its commit; see `store/embedded.rs`): counted out of [`AgentIndex::count`] under the same
    /// lock that adds them, so a count never sees the batch half.
    uncommitted: u64,
}

impl TextIndex {
    fn new(keyword: KeywordIndex) -> Self {
        TextIndex {
            keyword,
            docs: FxHashMap::default(),
            sessions: Vec::new(),
            session_index: FxHashMap::default(),
            uncommitted: 0,
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
/// - the linker links under a capture of `vectors` (beside searches; a writer waits for it at the
///   gate without holding back the searches behind it), and takes it for writing
///   only to move staged vectors in, [`MOVE_CHUNK`] at a time (with `staging`).
///
/// Lock order, wherever two are held: `text`, then `vectors`, then `staging`. Every
/// lock is taken in this file only, so the order is checked here. A snapshot's copy reads `text`
/// and then `vectors` as a [`CaptureLock::capture`], which writers wait for without holding
/// back searches (`capture.rs`).
#[derive(Debug)]
pub(crate) struct AgentIndex {
    text: CaptureLock<TextIndex>,
    vectors: CaptureLock<VectorIndex>,
    staging: RwLock<VectorStaging>,
    /// Whether this index waits in the linker's queue or is being worked on by it.
    link_queued: AtomicBool,
    /// Writers linking their own backlog right now (`SearchConfig::max_unlinked`); the
    /// background linker stands aside meanwhile (see [`AgentIndex::writers_linking`]).
    writers_linking: AtomicUsize,
}

pub(crate) type SharedIndex = Arc<AgentIndex>;

/// A writer linking an index's backlog (see [`AgentIndex::writer_linking`]).
pub(crate) struct WriterLinking<'a>(&'a AtomicUsize);

impl Drop for WriterLinking<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Staged vectors past which the linker moves them into the index even while it still has
/// unlinked vectors there. Searches scan staged vectors as stored (f32), under a lock that
/// writes wait for, while the index scans a backlog through int8 codes (see `vector/tail.rs`),
/// so the buffer is kept short: at 4,096 a search during a 20,000 entries/s ingest at 100K spent
/// about a third of its CPU on the staged vectors (`examples/ingest_beside_queries.rs`: 855 ->
/// 613 us of CPU per query at 512). A move copies the buffer under the index's write lock, so
/// smaller moves also shorten the searches' waits.
const STAGING_MOVE_AT: usize = 512;

/// Staged vectors moved into the index per write lock of it (and of the staging buffer): each
/// move holds back the agent's vector searches and its writers' appends while it copies. Moved
/// whole, the staged buffer of a 20,000 entries/s ingest at 100K (600 to 4,600 vectors when
/// the linker got a core) held both 1.4-9.9 ms on a loaded host, and a 10,000-entry batch about
/// 30 ms (`examples/ingest_beside_queries.rs`; the linker moves the rest in the steps after,
/// before it links).
const MOVE_CHUNK: usize = 256;

/// Entries of a batch whose text is indexed per write lock of the text index: 10,000 in one lock
/// held it 25-51 ms (a review's traced runs), and every keyword, hybrid and filtered search
/// waited as long.
const TEXT_CHUNK: usize = 512;

/// An idle staging buffer larger than this gives its memory back (a bulk load's).
const STAGING_KEEP_BYTES: usize = 1 << 20;

/// Unlinked vectors from which the linker links with every core (in batches of
/// [`PARALLEL_LINK_BATCH`]); below it, one vector at a time on the linker thread alone, which
/// builds the same graph for the same insertion order every time.
const PARALLEL_LINK_AT: usize = 512;

/// Unlinked vectors from which the linker links with a candidate list a quarter as long (about
/// 2-2.5x as fast), so that a sustained ingest's backlog reaches the graph sooner; the vectors
/// linked that way are linked again with the full list once nothing waits (see
/// [`VectorIndex::refine`]). Below it the backlog costs each ANN query well under a millisecond
/// of exact scan (1,024 vectors of 384 dimensions: 1.5 MB).
const QUICK_LINK_AT: usize = 1_024;

/// Vectors per parallel batch: the batch holds a capture of the index, so a writer waits at the
/// gate for this many links split over the cores (a few milliseconds on idle cores, more when
/// the linker's idle priority lets other threads preempt it), as a single link holds it now;
/// searches do not wait for it.
const PARALLEL_LINK_BATCH: usize = 32;

/// Threads the linker uses on a backlog: the machine's cores, at most 8.
fn link_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

impl AgentIndex {
    pub fn new(bm25: Bm25Params, vectors: &VectorIndexConfig) -> Result<Self> {
        Ok(AgentIndex {
            text: CaptureLock::new(TextIndex::new(KeywordIndex::new(bm25)?)),
            vectors: CaptureLock::new(VectorIndex::new(*vectors)?),
            staging: RwLock::new(VectorStaging::new(vectors)),
            link_queued: AtomicBool::new(false),
            writers_linking: AtomicUsize::new(0),
        })
    }

    /// Whether the entry is indexed.
    pub fn contains(&self, id: EntryId) -> bool {
        self.text.read().docs.contains_key(&id)
    }

    /// Indexes the text and attributes of a batch of this agent's new entries.
    pub fn add_text(&self, entries: &[&MemoryEntry]) {
        self.add_text_chunked(entries, false);
    }

    /// [`AgentIndex::add_text`] for entries whose commit is still running: left out of
    /// [`AgentIndex::count`] until [`AgentIndex::committed`] says they are in.
    pub fn add_uncommitted_text(&self, entries: &[&MemoryEntry]) {
        self.add_text_chunked(entries, true);
    }

    /// A large batch is indexed [`TEXT_CHUNK`] entries per write lock, so that the searches
    /// reading the text index (keyword, hybrid, filtered) wait for one chunk, not the batch.
    fn add_text_chunked(&self, entries: &[&MemoryEntry], uncommitted: bool) {
        for chunk in entries.chunks(TEXT_CHUNK) {
            #[cfg(test)]
            if !std::ptr::eq(chunk.as_ptr(), entries.as_ptr()) {
                tests::pause_point("between text chunks");
            }
            let mut text = self.text.write();
            text.add_many(chunk);
            if uncommitted {
                text.uncommitted += chunk.len() as u64;
            }
        }
    }

    /// `n` entries added by [`AgentIndex::add_uncommitted_text`] are committed, or have left
    /// the index again.
    pub fn committed(&self, n: u64) {
        let mut text = self.text.write();
        text.uncommitted = text.uncommitted.saturating_sub(n);
    }

    /// Entries whose text is indexed while their commit runs.
    pub fn uncommitted(&self) -> u64 {
        self.text.read().uncommitted
    }

    /// Puts the vectors of a batch of this agent's new entries into the staging buffer (the
    /// linker moves them on).
    pub fn add_vectors(&self, entries: &[&MemoryEntry]) -> Result<()> {
        let mut staging = self.staging.write();
        staging.reserve(entries.iter().filter(|e| e.embedding.is_some()).count());
        entries
            .iter()
            .try_for_each(|e| match e.embedding.as_deref() {
                Some(v) => staging.push(e.id, v),
                None => Ok(()),
            })
    }

    /// Indexes one entry read back from disk on open: straight into the vector index, unlinked.
    pub fn add_stored(
        &self,
        id: EntryId,
        attributes: (&str, Role, Timestamp),
        content: &str,
        embedding: Option<&[f32]>,
    ) -> Result<()> {
        let (session, role, created_at) = attributes;
        self.text
            .write()
            .add(id, session, role, created_at, content);
        if let Some(v) = embedding {
            self.vectors.write().insert_unlinked(id, v)?;
        }
        Ok(())
    }

    /// Removes an entry from every index. The removal that takes an index past its tombstone
    /// limit compacts it beside the searches: the write turns into a capture (writers keep
    /// waiting at the gate, searches read the index as it is), the compacted copy is built, and
    /// the write lock is taken again only to swap it in (the old copy is freed after).
    pub fn remove(&self, id: EntryId) {
        let mut text = self.text.write();
        text.keyword.tombstone(id);
        text.docs.remove(&id);
        if text.keyword.wants_compaction() {
            let text = text.into_capture();
            let compacted = text.keyword.compacted();
            #[cfg(test)]
            tests::pause_point("text compaction");
            let old = std::mem::replace(&mut text.into_write().keyword, compacted);
            drop(old);
        } else {
            drop(text);
        }
        let mut vectors = self.vectors.write();
        if !self.staging.write().remove(id) {
            vectors.tombstone(id);
        }
        self.compact_vectors(vectors);
    }

    /// Compacts the vector index if it is past its tombstone limit, as [`AgentIndex::remove`]
    /// says; lets the write go either way. The graph is kept through it, and its nodes that lost
    /// links are queued for the linker's refinement (`VectorIndex::compacted`).
    fn compact_vectors(&self, vectors: WriteGuard<'_, VectorIndex>) {
        if !vectors.wants_compaction() {
            return;
        }
        let vectors = vectors.into_capture();
        let compacted = vectors.compacted();
        #[cfg(test)]
        tests::pause_point("vector compaction");
        let old = std::mem::replace(&mut *vectors.into_write(), compacted);
        drop(old);
    }

    /// Number of indexed entries whose commit has ended.
    pub fn count(&self) -> u64 {
        let text = self.text.read();
        (text.docs.len() as u64).saturating_sub(text.uncommitted)
    }

    /// Ids of the entries passing `filter`, newest first (by creation time, then id), at most
    /// `limit` of them.
    pub fn newest(&self, filter: &DocFilter, limit: usize) -> Vec<EntryId> {
        if limit == 0 {
            return Vec::new();
        }
        // The newest `limit` by (created_at, id): a min-heap of the best seen so far.
        let mut newest: BinaryHeap<Reverse<(Timestamp, EntryId)>> = BinaryHeap::new();
        let text = self.text.read();
        let session = text.session_number(filter);
        for (&id, d) in &text.docs {
            if !TextIndex::passes(filter, session, d) {
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

    /// BM25 ranking of the entries passing `filter`.
    pub fn keyword(&self, query: &str, k: usize, filter: &DocFilter) -> Vec<(EntryId, f32)> {
        let text = self.text.read();
        if filter.is_empty() {
            text.keyword.search(query, k, &|_| true)
        } else {
            text.keyword.search(query, k, &text.matcher(filter))
        }
    }

    /// BM25 score for `query` of each entry of `ids` that holds a query term (see
    /// [`KeywordIndex::scores`](crate::index::keyword::KeywordIndex::scores)).
    pub fn keyword_scores(&self, query: &str, ids: &[EntryId]) -> Vec<(EntryId, f32)> {
        self.text.read().keyword.scores(query, ids)
    }

    /// Vector ranking (exact or approximate) of the entries passing `filter`.
    pub fn vector(
        &self,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
    ) -> Result<Vec<(EntryId, f32)>> {
        if filter.is_empty() {
            return self.vector_search(q, k, exact, &|_| true);
        }
        // Filters read the entries' attributes, which live with the keyword index.
        let text = self.text.read();
        let hits = self.vector_search(q, k, exact, &text.matcher(filter));
        hits
    }

    /// The vector ranking of the index and the staged vectors together.
    fn vector_search(
        &self,
        q: &[f32],
        k: usize,
        exact: bool,
        accept: &dyn Fn(EntryId) -> bool,
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
            sort_ranking(&mut hits);
            hits.truncate(k);
        }
        Ok(hits)
    }

    /// Exact cosine similarity of `q` to each entry of `ids` that has a vector.
    pub fn similarities(&self, q: &[f32], ids: &[EntryId]) -> Vec<(EntryId, f32)> {
        let vectors = self.vectors.read();
        let staging = self.staging.read();
        ids.iter()
            .filter_map(|&id| {
                let sim = vectors
                    .similarity(id, q)
                    .or_else(|| staging.similarity(id, q))?;
                Some((id, sim))
            })
            .collect()
    }

    /// Heap bytes of this agent's indexes, by their own accounting.
    pub fn heap_bytes(&self) -> usize {
        let text = self.text.read().keyword.heap_bytes();
        let vectors = self.vectors.read().heap_bytes();
        let staging = self.staging.read().heap_bytes();
        text + vectors + staging
    }

    // ---- the linker's side ----

    /// Marks a writer as linking this index's backlog until the guard is dropped.
    pub fn writer_linking(&self) -> WriterLinking<'_> {
        self.writers_linking.fetch_add(1, Ordering::AcqRel);
        WriterLinking(&self.writers_linking)
    }

    /// Whether some writer is linking this index's backlog itself. The background linker then
    /// stands aside: a link batch holds the graph's link lock, and the linker runs at low
    /// priority, so a batch of it that the scheduler leaves waiting behind the writer's work
    /// (and the searches) would make the writer, at normal priority, wait for it in turn.
    pub fn writers_linking(&self) -> bool {
        self.writers_linking.load(Ordering::Acquire) > 0
    }

    /// Marks the index as queued for the linker; false if it already was.
    pub fn try_queue(&self) -> bool {
        self.link_queued
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Takes the index out of the linker's queue.
    pub fn leave_queue(&self) {
        self.link_queued.store(false, Ordering::Release);
    }

    /// Work left for the linker: staged vectors to move in, unlinked ones to link, quickly
    /// linked ones to refine, or link codes to make (after a load).
    pub fn has_link_work(&self) -> bool {
        self.pending_links() > 0 || self.unrefined() > 0 || self.vectors.read().link_codes_missing()
    }

    /// Vectors staged or not yet linked. Both are read under the index's read lock, in the lock
    /// order (`vectors` before `staging`, as searches take them), so a move of staged vectors
    /// into the index, which needs the write lock, cannot happen between the two reads and
    /// count the moved vectors twice.
    pub fn pending_links(&self) -> usize {
        let vectors = self.vectors.read();
        let staged = self.staging.read().len();
        staged + vectors.pending_links()
    }

    /// Vectors linked with the short candidate list, or that lost links in a compaction, and
    /// not refined yet.
    pub fn unrefined(&self) -> usize {
        self.vectors.read().unrefined()
    }

    /// One unit of the linker's work: make link codes (after a load), move staged vectors in
    /// (when nothing else is left to link or the buffer is long), else link one vector. Returns
    /// false when there was nothing to do.
    pub fn link_step(&self) -> bool {
        // The linker's reads of the index are captures: a removal that arrives meanwhile waits
        // at the gate, not on the lock, so the searches after it do not wait for the rest of a
        // batch (which, at the linker's idle priority, can take a preempted thread hundreds of
        // milliseconds on busy cores; `capture.rs`).
        //
        // After a load, the link codes come first (a fraction of a second at a million vectors,
        // a chunk per capture), so that the links after them compare codes.
        {
            let vectors = self.vectors.capture();
            if vectors.link_codes_missing() {
                if !vectors.make_link_codes() {
                    drop(vectors);
                    self.vectors.write().install_link_codes();
                }
                return true;
            }
        }
        let staged = self.staging.read().len();
        if staged > 0 {
            let unlinked = self.vectors.read().pending_links();
            if unlinked == 0 || staged >= STAGING_MOVE_AT {
                self.move_staged_in();
                return true;
            }
        }
        let vectors = self.vectors.capture();
        #[cfg(test)]
        tests::pause_point("link batch");
        let threads = link_threads();
        let unlinked = vectors.pending_links();
        if threads > 1 && unlinked >= PARALLEL_LINK_AT {
            // A backlog (an ingest burst, a reopen without snapshot): every core, a short batch
            // per capture so that a waiting writer gets in soon; past QUICK_LINK_AT with the
            // short candidate list, refined once the backlog is gone.
            let linked = if unlinked >= QUICK_LINK_AT {
                vectors.link_parallel_quick(threads, PARALLEL_LINK_BATCH)
            } else {
                vectors.link_parallel(threads, PARALLEL_LINK_BATCH)
            };
            if linked > 0 {
                return true;
            }
        }
        // One vector per capture, so that a waiting writer (a move, a removal) gets in soon.
        if vectors.link_next() {
            return true;
        }
        // Another thread (a writer keeping up with its backlog) may have linked the vectors
        // counted above while this one waited for the link lock: the staged vectors are then
        // next, and a step that left them would report nothing to do with a backlog waiting.
        drop(vectors);
        if !self.staging.read().is_empty() {
            self.move_staged_in();
            return true;
        }
        let vectors = self.vectors.capture();
        // Nothing left to link: refine what a backlog linked quickly, a batch per capture.
        if vectors.refine(threads, PARALLEL_LINK_BATCH) > 0 {
            return true;
        }
        // Done: the int8 codes a backlog kept for its scan are not needed any more; the empty
        // staging buffer keeps up to STAGING_KEEP_BYTES (so that the next small batch of a
        // sustained ingest writes to memory already mapped) and gives back the rest.
        drop(vectors);
        if self.vectors.read().has_linked_codes() {
            self.vectors.write().forget_linked_codes();
        }
        self.staging.write().shrink_if_over(STAGING_KEEP_BYTES);
        false
    }

    /// Moves up to [`MOVE_CHUNK`] of the oldest staged vectors into the vector index, under
    /// the index's write lock and then the staging buffer's: searches read the index before the
    /// staging buffer while holding it, so none sees a vector in neither place (or in both), and
    /// the vectors still staged stay where searches find them until a later step moves them.
    fn move_staged_in(&self) {
        let mut vectors = self.vectors.write();
        let mut staging = self.staging.write();
        vectors.absorb(&mut staging, MOVE_CHUNK);
        drop(staging);
        // Vectors that replaced others left tombstones.
        self.compact_vectors(vectors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::sync::mpsc;
    use std::time::Duration;

    type PauseHook = Box<dyn FnMut(&str)>;

    thread_local! {
        /// Called on this thread at the named points of the code under test: `"link batch"`
        /// ([`AgentIndex::link_step`] holds its capture of the index for a link batch),
        /// `"between text chunks"` (a large batch's text is partly indexed, no lock held),
        /// `"text compaction"` and `"vector compaction"` ([`AgentIndex::remove`] has built the
        /// compacted copy under a capture and is about to swap it in).
        static PAUSE: RefCell<Option<PauseHook>> = RefCell::new(None);
    }

    pub(super) fn pause_point(name: &str) {
        PAUSE.with(|hook| {
            if let Some(f) = hook.borrow_mut().as_mut() {
                f(name)
            }
        });
    }

    /// Runs `work` on a thread of `s` that stops at the first pause point named `at` until the
    /// returned sender says go on; returns once it has stopped there.
    fn paused_at<'s, T: Send + 's>(
        s: &'s std::thread::Scope<'s, '_>,
        at: &'static str,
        work: impl FnOnce() -> T + Send + 's,
    ) -> (std::thread::ScopedJoinHandle<'s, T>, mpsc::Sender<()>) {
        let (paused_tx, paused) = mpsc::channel();
        let (resume, resume_rx) = mpsc::channel::<()>();
        let worker = s.spawn(move || {
            let mut once = Some((paused_tx, resume_rx));
            PAUSE.with(|hook| {
                *hook.borrow_mut() = Some(Box::new(move |name| {
                    if name == at {
                        if let Some((paused_tx, resume_rx)) = once.take() {
                            paused_tx.send(()).unwrap();
                            resume_rx.recv().unwrap();
                        }
                    }
                }))
            });
            work()
        });
        paused.recv().unwrap();
        (worker, resume)
    }

    #[test]
    fn searches_do_not_wait_behind_a_removal_queued_for_a_link_batch() {
        // How long the removal gets to reach its lock and park there, and how long a search
        // may take before it counts as stuck: liveness bounds, not timings.
        const PARK: Duration = Duration::from_millis(100);
        const STUCK: Duration = Duration::from_secs(20);
        let mut config = VectorIndexConfig::new(16);
        config.hnsw.min_len = 16;
        let index = &AgentIndex::new(Bm25Params::default(), &config).unwrap();
        for i in 0..200u64 {
            index
                .add_stored(
                    EntryId(i),
                    ("s", Role::User, Timestamp(0)),
                    "text",
                    Some(&unit_vector(i, 16)),
                )
                .unwrap();
        }
        std::thread::scope(|s| {
            let (linker, resume) = paused_at(s, "link batch", move || index.link_step());
            let (queued_tx, queued) = mpsc::channel();
            let remover = s.spawn(move || {
                queued_tx.send(()).unwrap();
                index.remove(EntryId(7));
            });
            queued.recv().unwrap();
            std::thread::sleep(PARK);
            let (done, answered) = mpsc::channel();
            s.spawn(move || {
                let q = unit_vector(3, 16);
                done.send(index.vector(&q, 5, false, &DocFilter::default()))
                    .unwrap()
            });
            let got = answered.recv_timeout(STUCK);
            resume.send(()).unwrap();
            let hits = got.expect("a search waited for the link batch").unwrap();
            assert_eq!(hits[0].0, EntryId(3));
            assert!(linker.join().unwrap());
            remover.join().unwrap();
        });
        assert!(!index.contains(EntryId(7)));
    }

    /// A removal that compacts an index builds the compacted copy beside the searches: paused
    /// while the copy is made (its gate held), it holds back neither a search nor the searches
    /// behind a removal queued at the gate. Before, the rewrite ran under the write lock.
    #[test]
    fn searches_run_beside_a_removal_compacting_the_text_and_vector_indexes() {
        const PARK: Duration = Duration::from_millis(100);
        const STUCK: Duration = Duration::from_secs(20);
        let mut config = VectorIndexConfig::new(16);
        config.hnsw.min_len = 16;
        let index = &AgentIndex::new(Bm25Params::default(), &config).unwrap();
        for i in 0..400u64 {
            let text = if i % 2 == 0 {
                "otters swim"
            } else {
                "badgers dig"
            };
            let v = unit_vector(i, 16);
            let attributes = ("s", Role::User, Timestamp(0));
            index
                .add_stored(EntryId(i), attributes, text, Some(&v))
                .unwrap();
        }
        while index.link_step() {}
        // Text compacts past a quarter of its slots removed: at the 101st removal (id 100).
        // Vectors past 30%: at the 121st, id 119 (ids 0..=118 and 399, removed during the first
        // compaction, are the 120 before it).
        let mut next = 0u64;
        for (pause, compacting, queued_id) in [
            ("text compaction", 100, 399),
            ("vector compaction", 119, 397),
        ] {
            while next < compacting {
                index.remove(EntryId(next));
                next += 1;
            }
            let compacting = EntryId(compacting);
            std::thread::scope(|s| {
                let (remover, resume) = paused_at(s, pause, move || index.remove(compacting));
                // A removal (of an odd id, which the keyword search below does not find)
                // queued behind the compaction.
                let (queued_tx, queued) = mpsc::channel();
                let queued_removal = s.spawn(move || {
                    queued_tx.send(()).unwrap();
                    index.remove(EntryId(queued_id));
                });
                queued.recv().unwrap();
                std::thread::sleep(PARK);
                let (done, answered) = mpsc::channel();
                s.spawn(move || {
                    let words = index.keyword("otters", 1_000, &DocFilter::default());
                    let q = unit_vector(next + 1, 16);
                    let near = index.vector(&q, 5, false, &DocFilter::default());
                    done.send((words, near)).unwrap()
                });
                let got = answered.recv_timeout(STUCK);
                resume.send(()).unwrap();
                let (words, near) =
                    got.unwrap_or_else(|_| panic!("a search waited for the {pause}"));
                // The searches see the removal that compacts.
                let even_left = (next + 1..400).filter(|i| i % 2 == 0).count();
                assert_eq!(words.len(), even_left, "{pause}");
                assert!(words.iter().all(|h| h.0 != compacting));
                if pause == "vector compaction" {
                    assert!(near.unwrap().iter().all(|h| h.0 != compacting));
                }
                remover.join().unwrap();
                queued_removal.join().unwrap();
            });
            next += 1;
        }
        let vectors = index.vectors.read();
        // 121 compacted away, then 397 removed.
        assert_eq!((vectors.len(), vectors.tombstones()), (400 - 121 - 1, 1));
        assert!(vectors.has_graph() && vectors.pending_links() == 0);
        assert!(
            vectors.unrefined() > 0,
            "the nodes that lost links wait to be refined"
        );
        drop(vectors);
        while index.link_step() {}
        assert_eq!(index.unrefined(), 0);
        let q = unit_vector(200, 16);
        let exact = index.vector(&q, 10, true, &DocFilter::default()).unwrap();
        let approx = index.vector(&q, 10, false, &DocFilter::default()).unwrap();
        assert_eq!(approx[0].1, exact[0].1);
    }

    #[test]
    fn a_large_batch_is_indexed_a_chunk_per_lock_and_counted_once_committed() {
        let index = &AgentIndex::new(Bm25Params::default(), &VectorIndexConfig::new(4)).unwrap();
        let entry = |i: u64| MemoryEntry::for_test(i, "a word about otters", None);
        let committed: Vec<MemoryEntry> = (0..10).map(entry).collect();
        index.add_text(&committed.iter().collect::<Vec<_>>());
        let batch: Vec<MemoryEntry> = (100..100 + 2 * TEXT_CHUNK as u64 + 7).map(entry).collect();
        let batch_refs: Vec<&MemoryEntry> = batch.iter().collect();
        std::thread::scope(|s| {
            let (writer, resume) = paused_at(s, "between text chunks", || {
                index.add_uncommitted_text(&batch_refs)
            });
            // The first chunk is in and no lock is held: searches run, and see it.
            let found = index.keyword("otters", 10_000, &DocFilter::default());
            assert_eq!(found.len(), 10 + TEXT_CHUNK);
            assert_eq!(index.count(), 10, "entries whose commit runs were counted");
            assert_eq!(index.uncommitted(), TEXT_CHUNK as u64);
            resume.send(()).unwrap();
            writer.join().unwrap();
        });
        assert_eq!(index.count(), 10);
        index.committed(batch.len() as u64);
        assert_eq!(index.count(), 10 + batch.len() as u64);
        assert_eq!(index.uncommitted(), 0);
    }

    #[test]
    fn the_linker_drops_the_codes_of_a_backlog_once_it_has_linked_it() {
        let mut config = VectorIndexConfig::new(16);
        config.hnsw.min_len = 16;
        let index = AgentIndex::new(Bm25Params::default(), &config).unwrap();
        for i in 0..3_000u64 {
            let v = unit_vector(i, 16);
            index
                .add_stored(
                    EntryId(i),
                    ("s", Role::User, Timestamp(0)),
                    "text",
                    Some(&v),
                )
                .unwrap();
        }
        // 3,000 unlinked: codes from the 512th vector on.
        assert_eq!(index.vectors.read().coded_slots(), 2_489);
        let mut steps = 0;
        while index.link_step() {
            steps += 1;
            assert!(steps < 100_000, "the linker never ran out of work");
        }
        let vectors = index.vectors.read();
        assert_eq!(vectors.pending_links(), 0);
        assert_eq!(vectors.coded_slots(), 0);
    }

    fn unit_vector(i: u64, dim: u64) -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|d| ((i * 31 + d * 7) % 23) as f32 + 1.0)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn vectors_moved_in_beside_writes_and_searches_are_found_exactly_once() {
        const TOTAL: u64 = 12_000;
        const BATCH: u64 = 300;
        let mut config = VectorIndexConfig::new(16);
        config.hnsw.min_len = 16;
        let index = AgentIndex::new(Bm25Params::default(), &config).unwrap();
        // Ids below `published` were staged before the search that reads it began.
        let published = std::sync::atomic::AtomicU64::new(0);
        let writing = AtomicBool::new(true);
        std::thread::scope(|s| {
            s.spawn(|| {
                for start in (0..TOTAL).step_by(BATCH as usize) {
                    let entries: Vec<MemoryEntry> = (start..start + BATCH)
                        .map(|i| MemoryEntry::for_test(i, "text", Some(unit_vector(i, 16))))
                        .collect();
                    let refs: Vec<&MemoryEntry> = entries.iter().collect();
                    index.add_vectors(&refs).unwrap();
                    published.store(start + BATCH, Ordering::Release);
                }
                writing.store(false, Ordering::Release);
            });
            s.spawn(|| {
                while writing.load(Ordering::Acquire) || index.has_link_work() {
                    if !index.link_step() {
                        std::thread::yield_now();
                    }
                }
            });
            let q = unit_vector(7, 16);
            loop {
                let done = !writing.load(Ordering::Acquire);
                let n = published.load(Ordering::Acquire);
                let hits = index
                    .vector_search(&q, TOTAL as usize, true, &|_| true)
                    .unwrap();
                let mut ids: Vec<u64> = hits.iter().map(|(id, _)| id.0).collect();
                ids.sort_unstable();
                let before = ids.len();
                ids.dedup();
                assert_eq!(ids.len(), before, "a vector was found twice");
                let missing = (0..n).find(|i| ids.binary_search(i).is_err());
                assert_eq!(missing, None, "a staged vector was found nowhere");
                if done {
                    break;
                }
            }
        });
        while index.link_step() {}
        assert_eq!(index.pending_links(), 0);
    }

    #[test]
    fn a_move_takes_a_chunk_and_leaves_the_rest_staged_and_found_and_idle_keeps_the_buffer() {
        let mut config = VectorIndexConfig::new(16);
        config.hnsw.min_len = 16;
        let index = AgentIndex::new(Bm25Params::default(), &config).unwrap();
        let entries: Vec<MemoryEntry> = (0..1_000)
            .map(|i| MemoryEntry::for_test(i, "text", Some(unit_vector(i, 16))))
            .collect();
        index
            .add_vectors(&entries.iter().collect::<Vec<_>>())
            .unwrap();
        let every_id_once = |index: &AgentIndex| {
            let hits = index
                .vector(&unit_vector(5, 16), 2_000, true, &DocFilter::default())
                .unwrap();
            let mut ids: Vec<u64> = hits.iter().map(|(id, _)| id.0).collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..1_000).collect::<Vec<u64>>());
        };
        // One move holds the locks for one chunk (a whole backlog held them 1.4-30 ms).
        index.move_staged_in();
        assert_eq!(index.vectors.read().len(), MOVE_CHUNK);
        assert_eq!(index.staging.read().len(), 1_000 - MOVE_CHUNK);
        assert_eq!(index.pending_links(), 1_000);
        every_id_once(&index);
        // A removal and a later vector of a staged id behind the front.
        index.remove(EntryId(900));
        let again = MemoryEntry::for_test(901, "text", Some(unit_vector(7, 16)));
        index.add_vectors(&[&again]).unwrap();
        index.move_staged_in();
        assert_eq!(index.vectors.read().len(), 2 * MOVE_CHUNK);
        while index.link_step() {}
        assert!(index.staging.read().is_empty());
        assert_eq!(index.vectors.read().len(), 999);
        let q = unit_vector(7, 16);
        let sims = index.similarities(&q, &[EntryId(901), EntryId(900)]);
        assert_eq!(sims.len(), 1, "900 removed, 901 held once");
        assert!(
            sims[0].1 > 0.999,
            "the later vector of 901 won: {}",
            sims[0].1
        );
        // 64 KB, below what an idle buffer may keep: the next small batch needs no allocation.
        assert!(index.staging.read().capacity() >= 1_000);
    }
}
