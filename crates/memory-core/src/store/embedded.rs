//! The embedded long-term store, the default: rows in one SQLite file (`sqlite.rs`), every
//! question other than "the row with this id" answered by the in-RAM indexes (`index/`), which
//! are loaded from their snapshot on open (`snapshot.rs`; rebuilt from the file when there is
//! none usable) and updated after each commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::MemoryConfig;
use crate::entry::{EntryId, MemoryEntry};
use crate::error::{Error, Result};
use crate::index::agent::SharedIndex;
use crate::index::{Indexes, ListQuery};
use crate::query::DocFilter;
use crate::store::embedder::EmbedderCheck;
use crate::store::snapshot::Snapshots;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    AccessRecord, IntegrityReport, LongTermStore, QuarantinedEntry, Ranking, Storage,
};

/// Batches of long-term entries at least this large are indexed on a second thread while SQLite
/// commits them (below it, starting the thread costs more than it saves).
const PARALLEL_INDEX_BATCH: usize = 256;

/// The largest id a store hands out (SQLite's `INTEGER PRIMARY KEY` is a signed 64-bit integer).
const MAX_ID: u64 = i64::MAX as u64;

/// SQLite rows plus in-RAM indexes.
#[derive(Debug)]
pub(crate) struct EmbeddedStore {
    sqlite: Arc<SqliteStore>,
    indexes: Arc<Indexes>,
    /// Index snapshots beside a database file (`Storage::File` only: a temporary store is
    /// never reopened).
    snapshots: Option<Snapshots>,
    location: String,
    next_id: AtomicU64,
    /// `SearchConfig::max_unlinked`: the backlog a write leaves the linker at most.
    max_unlinked: Option<usize>,
    /// Rows set aside on open that could not be moved to the quarantine table (a file that could
    /// not be written then): not indexed, and reported with the quarantine.
    unmoved: Vec<QuarantinedEntry>,
}

impl EmbeddedStore {
    /// Opens (or creates) the file and rebuilds the indexes from it.
    /// Rows that cannot be read back or indexed are moved to the file's quarantine, reported
    /// by a tracing warning and by [`LongTermStore::check_integrity`]; the store opens with
    /// everything else.
    /// The embedder is checked before anything is loaded (see [`EmbedderCheck`]).
    pub fn open(
        storage: &Storage,
        config: &MemoryConfig,
        embedder: &EmbedderCheck,
    ) -> Result<EmbeddedStore> {
        let mut sqlite = SqliteStore::open(storage, config.durability)?;
        if matches!(storage, Storage::File(_)) {
            sqlite = sqlite.with_change_log();
        }
        match sqlite.stored_dimension()? {
            Some(stored) if stored != config.embedding_dim => {
                return Err(Error::StoreDimensionMismatch {
                    store: sqlite.path().display().to_string(),
                    stored,
                    configured: config.embedding_dim,
                })
            }
            Some(_) => {}
            None => sqlite.record_dimension(config.embedding_dim)?,
        }
        let location = sqlite.path().display().to_string();
        let step = embedder.apply(&location, sqlite.recorded_embedder()?.as_deref())?;
        if let Some(record) = step.record() {
            sqlite.record_embedder(record)?;
        }
        if step.reembeds() {
            embedder.reembed(&location, &mut &sqlite)?;
        }
        let mut snapshots = match storage {
            Storage::File(path) => Some(Snapshots::new(path, &sqlite, config)?),
            _ => None,
        };
        let mut indexes = Indexes::new(config.search.bm25, config.vector_index_config())?;
        // A snapshot holds the vectors of before a re-embedding, and a replay never replaces a
        // vector it holds: the indexes are built anew (each batch of the re-embedding also
        // dropped the log rows that older snapshots' stamps name, so that an open after a crash
        // past the re-embedding's end refuses them too).
        let loaded = snapshots
            .as_ref()
            .filter(|_| !step.reembeds())
            .and_then(|s| s.load(&sqlite, &indexes, config.embedding_dim));
        let bad = match loaded {
            Some(loaded) => loaded.bad,
            None => {
                // Whatever a rejected snapshot left in them is dropped with them.
                indexes = Indexes::new(config.search.bm25, config.vector_index_config())?;
                let bad = sqlite.scan_for_index(config.embedding_dim, |row| {
                    indexes.add_stored(
                        row.id,
                        row.agent,
                        (row.session, row.role, row.created_at),
                        row.content,
                        row.embedding,
                    )
                })?;
                indexes.schedule_all();
                if let Some(s) = &snapshots {
                    // Everything is new to the next snapshot, and the log before now is of no
                    // use to it.
                    s.state
                        .changes
                        .store(indexes.total_count().max(1), Ordering::Relaxed);
                    if let Some((head, _)) = sqlite.log_head()? {
                        if let Err(e) = sqlite.prune_log(head) {
                            tracing::warn!(error = %e, "could not prune the change log");
                        }
                    }
                }
                bad
            }
        };
        let mut unmoved = Vec::new();
        if !bad.is_empty() {
            tracing::warn!(
                store = %sqlite.path().display(),
                rows = bad.len(),
                first_id = bad[0].0 .0,
                first_reason = %bad[0].1,
                "rows that cannot be read back or indexed were moved to the store's quarantine \
                 table (see Memory::check_integrity)"
            );
            // Set aside either way: they are not indexed. Moving them is what keeps `get` of one
            // of their ids from failing later; if the file cannot be written now, the next open
            // tries again.
            if let Err(e) = sqlite.quarantine(&bad, SystemClock.now()) {
                tracing::warn!(error = %e, "could not move the rows to the quarantine table");
                unmoved = bad;
            }
        }
        // Ids grow from the wall clock in microseconds, and past anything already stored, so that
        // ids of short-term entries lost in a crash are not handed out again soon after.
        let wall = SystemClock.now().0.max(0) as u64;
        let next = sqlite
            .max_id()?
            .map_or(wall, |m| wall.max(m.saturating_add(1)));
        let (sqlite, indexes) = (Arc::new(sqlite), Arc::new(indexes));
        if let Some(s) = snapshots.as_mut() {
            s.start(sqlite.clone(), indexes.clone())?;
        }
        Ok(EmbeddedStore {
            snapshots,
            location: sqlite.path().display().to_string(),
            unmoved: unmoved
                .into_iter()
                .map(|(id, reason)| QuarantinedEntry {
                    id,
                    agent_id: String::new(),
                    reason,
                })
                .collect(),
            sqlite,
            indexes,
            next_id: AtomicU64::new(next),
            max_unlinked: config.search.max_unlinked,
        })
    }

    /// Commits `entries` and indexes them (the write of [`LongTermStore::insert`] without the
    /// wait for the linker).
    fn insert_and_index(
        &self,
        entries: &[MemoryEntry],
        accesses: &[AccessRecord],
    ) -> Result<Vec<bool>> {
        // Held from the commit until the entries are indexed: a snapshot's stamp is read
        // between writes (see `snapshot.rs`).
        let snapshot = self.snapshots.as_ref().map(|s| &*s.state);
        let _gate = snapshot.map(|s| s.gate.read());
        if entries.len() < PARALLEL_INDEX_BATCH {
            let inserted = self.sqlite.insert(entries, accesses)?;
            let fresh: Vec<&MemoryEntry> = entries
                .iter()
                .zip(&inserted)
                .filter_map(|(e, &new)| new.then_some(e))
                .collect();
            if let Some(s) = snapshot {
                s.changes.fetch_add(fresh.len() as u64, Ordering::Relaxed);
            }
            // Committed entries were checked before the write, so indexing them does not fail;
            // if it ever did, they are safe on disk and indexed again on the next open (which
            // then must not trust a snapshot of these indexes).
            if let Err(e) = self.indexes.add(&fresh) {
                if let Some(s) = snapshot {
                    s.index_gaps.store(true, Ordering::Relaxed);
                }
                return Err(e);
            }
            return Ok(inserted);
        }
        // A large batch is written to SQLite on a second thread while this one indexes its
        // text: two cores instead of one. The text stays on this thread because it is the
        // longer part and this thread's stem cache is warm (a thread started per batch would
        // stem every word of every batch again); the vectors are staged on the SQLite thread
        // once the write is done, which evens out the two shares. A search may then meet an
        // entry in the index a moment before its row commits (the fetch skips it), and if the
        // commit fails the entries leave the index again.
        let absent = self.indexes.absent(entries);
        let (written, (uncommitted, indexed)) = std::thread::scope(|s| {
            let writing = s.spawn(|| {
                let written = self.sqlite.insert(entries, accesses);
                let staged = match written {
                    Ok(_) => self.indexes.add_vectors(&absent),
                    Err(_) => Ok(()),
                };
                (written, staged)
            });
            let (uncommitted, indexed) = self.indexes.add_uncommitted_text(&absent);
            // Counted in again when this guard goes, also if the commit's thread panicked.
            let uncommitted = Uncommitted(uncommitted);
            let (written, staged) = writing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (written, (uncommitted, indexed.and(staged)))
        });
        drop(uncommitted);
        match written {
            Ok(inserted) => {
                if let Some(s) = snapshot {
                    let fresh = inserted.iter().filter(|&&new| new).count();
                    s.changes.fetch_add(fresh as u64, Ordering::Relaxed);
                    if indexed.is_err() {
                        s.index_gaps.store(true, Ordering::Relaxed);
                    }
                }
                indexed?;
                Ok(inserted)
            }
            Err(e) => {
                for entry in absent {
                    self.indexes.remove(&entry.agent_id, entry.id);
                }
                if let Some(s) = snapshot {
                    s.aborted_batches.fetch_add(1, Ordering::AcqRel);
                }
                Err(e)
            }
        }
    }
}

/// A large batch's entries whose text is indexed while their commit runs, per agent index: the
/// commit has ended (or failed) when this is dropped, and they count again.
struct Uncommitted(Vec<(SharedIndex, u64)>);

impl Drop for Uncommitted {
    fn drop(&mut self) {
        for (index, n) in &self.0 {
            index.committed(*n);
        }
    }
}

impl LongTermStore for EmbeddedStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn allocate_ids(&self, n: u64) -> Result<u64> {
        // Ids are stored as SQLite's signed 64-bit integers: the block must end at i64::MAX.
        self.next_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                next.checked_add(n).filter(|end| *end <= MAX_ID + 1)
            })
            .map_err(|_| Error::IdsExhausted {
                store: self.location.clone(),
            })
    }

    fn insert(&self, entries: &[MemoryEntry], accesses: &[AccessRecord]) -> Result<Vec<bool>> {
        let inserted = self.insert_and_index(entries, accesses)?;
        if let Some(max) = self.max_unlinked {
            for group in entries.chunk_by(|a, b| a.agent_id == b.agent_id) {
                self.indexes.keep_up(&group[0].agent_id, max);
            }
        }
        Ok(inserted)
    }

    fn record_access(&self, accesses: &[AccessRecord]) -> Result<()> {
        self.sqlite.record_access(accesses)
    }

    fn delete(&self, agent: &str, id: EntryId) -> Result<bool> {
        let snapshot = self.snapshots.as_ref().map(|s| &*s.state);
        let _gate = snapshot.map(|s| s.gate.read());
        let existed = self.sqlite.delete(agent, id)?;
        if existed {
            self.indexes.remove(agent, id);
            if let Some(s) = snapshot {
                s.changes.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(existed)
    }

    fn get(&self, agent: &str, id: EntryId) -> Result<Option<MemoryEntry>> {
        self.sqlite.get(agent, id)
    }

    fn get_many(&self, agent: &str, ids: &[EntryId]) -> Result<Vec<MemoryEntry>> {
        self.sqlite.get_many(agent, ids)
    }

    fn list(&self, agent: &str, query: &ListQuery) -> Result<Vec<MemoryEntry>> {
        // Past the entries of a batch whose commit runs (the index holds them, SQLite not yet).
        let extra = usize::try_from(self.indexes.uncommitted(agent)).unwrap_or(usize::MAX);
        let asked = ListQuery {
            limit: query.limit.map(|l| l.saturating_add(extra)),
            ..query.clone()
        };
        let ids = self.indexes.list(agent, &asked);
        // Kept in the order asked for; an entry forgotten in between is skipped.
        let mut rows = self.sqlite.get_many(agent, &ids)?;
        if let Some(limit) = query.limit {
            rows.truncate(limit);
        }
        Ok(rows)
    }

    fn count(&self, agent: &str) -> Result<u64> {
        Ok(self.indexes.count(agent))
    }

    fn count_all(&self) -> Result<u64> {
        self.sqlite.count_all()
    }

    fn keyword(&self, agent: &str, text: &str, k: usize, filter: &DocFilter) -> Result<Ranking> {
        Ok(self.indexes.keyword(agent, text, k, filter))
    }

    fn vector(
        &self,
        agent: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
    ) -> Result<Ranking> {
        self.indexes.vector(agent, q, k, exact, filter)
    }

    fn similarities(&self, agent: &str, q: &[f32], ids: &[EntryId]) -> Result<Ranking> {
        Ok(self.indexes.similarities(agent, q, ids))
    }

    fn keyword_scores(&self, agent: &str, text: &str, ids: &[EntryId]) -> Result<Ranking> {
        Ok(self.indexes.keyword_scores(agent, text, ids))
    }

    fn max_similarity(&self, agent: &str, v: &[f32]) -> Result<Option<f32>> {
        self.indexes.max_similarity(agent, v)
    }

    fn check_integrity(&self) -> Result<IntegrityReport> {
        self.sqlite.check_integrity()?;
        let mut quarantined = self.sqlite.quarantined()?;
        quarantined.extend(self.unmoved.iter().cloned());
        Ok(IntegrityReport { quarantined })
    }

    fn disk_bytes(&self) -> u64 {
        self.sqlite.disk_bytes()
    }

    fn checkpoint(&self) -> Result<()> {
        self.sqlite.checkpoint()?;
        if let Some(s) = &self.snapshots {
            s.save(&self.sqlite, &self.indexes)?;
        }
        Ok(())
    }

    fn wait_for_indexing(&self) {
        self.indexes.wait_for_linking();
    }

    fn pending_index_links(&self) -> usize {
        self.indexes.pending_links()
    }

    fn index_heap_bytes(&self) -> usize {
        self.indexes.heap_bytes()
    }
}

impl Drop for EmbeddedStore {
    /// A clean close saves the index snapshot, so that the next open reads it.
    fn drop(&mut self) {
        if let Some(s) = self.snapshots.as_mut() {
            s.close(&self.sqlite, &self.indexes);
        }
    }
}
