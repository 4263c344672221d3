//! The write path, the twin of `search.rs`: every change to a store goes through here. A write is
//! validated and given its id and times (`materialize`), committed (long-term writes through
//! group commit, so that concurrent writers share transactions), made searchable by the store,
//! and then the agent's cached answers are invalidated, in [`WritePath::changed`] and nowhere
//! else. Retrievals are recorded here too: they are writes deferred to a later commit (at most
//! one a second carries them) or an explicit flush.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::clock::Timestamp;
use crate::entry::{self, EntryId, MemoryEntry, NewEntry, Tier};
use crate::error::Result;
use crate::query::SearchHit;
use crate::scoring::ImportanceScorer;
use crate::stages;
use crate::state::State;
use crate::store::commit::GroupCommit;
use crate::store::AccessRecord;

/// At most how often the access log rides along with a commit. When each record updated its
/// entry's wide row, a commit that carried a few thousand of them wrote as many pages (measured
/// at 100K entries: 200-entry batches every 10 ms beside a loop of ANN queries took 38 ms at p90
/// and 182 ms at p99 instead of 3-8 ms). The records now go to a narrow table of their own
/// (`access`, see `store/sqlite.rs`, and PostgreSQL's migration 8 in `store/postgres/schema.sql`),
/// where thousands of them fill a few pages; the interval
/// still keeps that work to one commit a second, and between writes repeated retrievals of an
/// entry merge in RAM.
const ACCESS_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// Records past which the log rides along with the next commit whatever the interval (so its
/// memory stays bounded: about 40 bytes each).
const ACCESS_LOG_MAX: usize = 65_536;

/// The write machinery of one store: the group-commit queue and the deferred access log.
#[derive(Debug)]
pub(crate) struct WritePath {
    /// Writers of long-term memory waiting to share a transaction.
    commits: GroupCommit,
    /// Retrievals of long-term entries not yet written back (id -> (count, last access)), so that
    /// readers never wait on the writer. Written with a commit at most every
    /// [`ACCESS_WRITE_INTERVAL`], and by [`WritePath::flush_access_log`] (`Memory::flush`,
    /// forget, consolidation, the last handle's close).
    access_log: Mutex<FxHashMap<EntryId, (u32, Timestamp)>>,
    /// When the access log last rode along with a commit.
    access_written: Mutex<Instant>,
}

impl Default for WritePath {
    fn default() -> Self {
        WritePath {
            commits: GroupCommit::default(),
            access_log: Mutex::default(),
            access_written: Mutex::new(Instant::now()),
        }
    }
}

impl WritePath {
    // ---- short-term ----

    /// Appends to a session's short-term window.
    pub fn append(&self, state: &State, entry: NewEntry) -> Result<EntryId> {
        let _span = tracing::debug_span!(stages::REMEMBER).entered();
        let entry = self.materialize(state, entry, Tier::ShortTerm)?;
        let id = entry.id;
        let agent = entry.agent_id.clone();
        state.stm.append(entry, state.clock.now())?;
        self.changed(state, [&*agent]);
        Ok(id)
    }

    // ---- long-term ----

    /// Validates, commits and indexes one entry.
    pub fn insert_one(&self, state: &State, entry: NewEntry) -> Result<EntryId> {
        let _span = tracing::debug_span!(stages::REMEMBER).entered();
        let entry = self.materialize(state, entry, Tier::LongTerm)?;
        let id = entry.id;
        self.store_long_term(state, vec![entry])?;
        Ok(id)
    }

    /// Validates, commits and indexes entries in one transaction: all or none.
    pub fn insert(&self, state: &State, entries: Vec<NewEntry>) -> Result<Vec<EntryId>> {
        let _span = tracing::debug_span!(stages::REMEMBER).entered();
        let entries = self.materialize_all(state, entries, Tier::LongTerm)?;
        let ids = entries.iter().map(|e| e.id).collect();
        self.store_long_term(state, entries)?;
        Ok(ids)
    }

    /// Commits entries that already have their ids (from `materialize`, or consolidation's
    /// short-term entries), then indexes them. Returns how many were new. Concurrent callers
    /// share transactions (see `store/commit.rs`).
    pub fn store_long_term(&self, state: &State, entries: Vec<MemoryEntry>) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.commits
            .submit(entries, &|groups| self.commit_groups(state, groups))
    }

    /// Commits the entries of several writers in one transaction; one result per writer. If the
    /// shared transaction fails, each writer's entries are committed on their own, so that one
    /// bad request fails alone.
    fn commit_groups(&self, state: &State, groups: Vec<Vec<MemoryEntry>>) -> Vec<Result<usize>> {
        if groups.len() == 1 {
            return groups.into_iter().map(|g| self.commit(state, &g)).collect();
        }
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        let all: Vec<MemoryEntry> = groups.into_iter().flatten().collect();
        match self.commit_counting(state, &all) {
            Ok(inserted) => {
                let mut at = 0;
                sizes
                    .iter()
                    .map(|&n| {
                        let new = inserted[at..at + n].iter().filter(|&&b| b).count();
                        at += n;
                        Ok(new)
                    })
                    .collect()
            }
            Err(_) => {
                let mut at = 0;
                sizes
                    .iter()
                    .map(|&n| {
                        let group = &all[at..at + n];
                        at += n;
                        self.commit(state, group)
                    })
                    .collect()
            }
        }
    }

    /// Commits one transaction; how many entries were new.
    fn commit(&self, state: &State, entries: &[MemoryEntry]) -> Result<usize> {
        let inserted = self.commit_counting(state, entries)?;
        Ok(inserted.iter().filter(|&&b| b).count())
    }

    /// Commits one transaction, with the deferred access records riding along (one commit, not
    /// two; if it fails they go back to the log), then invalidates the agents' cached answers.
    fn commit_counting(&self, state: &State, entries: &[MemoryEntry]) -> Result<Vec<bool>> {
        let accesses = self.take_access_log_if_due();
        match state.ltm.insert(entries, &accesses) {
            Ok(inserted) => {
                self.changed(state, entries.iter().map(|e| &*e.agent_id));
                Ok(inserted)
            }
            Err(e) => {
                self.restore_access_log(accesses);
                // A large batch is indexed while it commits (and taken out again when the
                // commit fails): an answer computed meanwhile may hold its rows, or have lost
                // places in its top k to them, and must not outlive the failure in the cache.
                self.changed(state, entries.iter().map(|e| &*e.agent_id));
                Err(e)
            }
        }
    }

    /// Deletes an entry of `agent` from both tiers; whether it was in either.
    pub fn forget(&self, state: &State, agent: &str, id: EntryId) -> Result<bool> {
        entry::validate_id("agent_id", agent)?;
        self.flush_access_log(state)?;
        // Short-term memory first: it leaves the mark a consolidation under way reads after its
        // commit (see `consolidate`); a commit after that look is before this delete.
        let short_term = state.stm.forget(agent, id)?;
        if short_term {
            // Before the long-term delete, which may fail: a cached answer holding the entry
            // must go whatever happens next.
            self.changed(state, [agent]);
        }
        let long_term = state.ltm.delete(agent, id)?;
        if long_term {
            self.changed(state, [agent]);
        }
        Ok(long_term || short_term)
    }

    // ---- the pieces every write shares ----

    /// Checks a new entry and gives it an id, timestamps and a tier.
    pub fn materialize(&self, state: &State, entry: NewEntry, tier: Tier) -> Result<MemoryEntry> {
        let mut entry = entry;
        let scale = entry.validate(&state.config.entry_limits())?;
        entry.check_created_at(state.clock.now())?;
        if tier == Tier::LongTerm {
            embed_missing(state, std::slice::from_mut(&mut entry));
        }
        let id = state.ltm.allocate_ids(1)?;
        Ok(materialize_checked(state, entry, scale, tier, EntryId(id)))
    }

    /// [`materialize`](Self::materialize) for a batch: every entry is checked before any id is
    /// taken.
    fn materialize_all(
        &self,
        state: &State,
        entries: Vec<NewEntry>,
        tier: Tier,
    ) -> Result<Vec<MemoryEntry>> {
        let mut entries = entries;
        let limits = state.config.entry_limits();
        let now = state.clock.now();
        let scales = entries
            .iter_mut()
            .map(|e| {
                let scale = e.validate(&limits)?;
                e.check_created_at(now)?;
                Ok(scale)
            })
            .collect::<Result<Vec<f32>>>()?;
        if tier == Tier::LongTerm {
            embed_missing(state, &mut entries);
        }
        let first = state.ltm.allocate_ids(entries.len() as u64)?;
        Ok(entries
            .into_iter()
            .zip(scales)
            .zip(first..)
            .map(|((e, scale), id)| materialize_checked(state, e, scale, tier, EntryId(id)))
            .collect())
    }

    /// The one place where cached answers are invalidated: every change to an agent's memory
    /// ends here.
    pub fn changed<'a>(&self, state: &State, agents: impl IntoIterator<Item = &'a str>) {
        let mut agents: Vec<&str> = agents.into_iter().collect();
        agents.sort_unstable();
        agents.dedup();
        for agent in agents {
            state.cache.invalidate(agent);
        }
    }

    // ---- retrievals ----

    /// Notes that `hits` were retrieved: short-term entries at once (in RAM), long-term ones in
    /// the access log, written back later (see [`ACCESS_WRITE_INTERVAL`]) so that readers never
    /// wait on the writer.
    pub fn record_retrievals(&self, state: &State, agent: &str, hits: &[SearchHit]) -> Result<()> {
        let now = state.clock.now();
        let mut stm_ids: Vec<(Arc<str>, EntryId)> = Vec::new();
        let mut log = self.access_log.lock();
        for h in hits {
            match h.entry.tier {
                Tier::ShortTerm => stm_ids.push((h.entry.session_id.clone(), h.entry.id)),
                Tier::LongTerm => {
                    let slot = log.entry(h.entry.id).or_insert((0, now));
                    slot.0 = slot.0.saturating_add(1);
                    slot.1 = now;
                }
            }
        }
        drop(log);
        if !stm_ids.is_empty() {
            state.stm.record_access(agent, &stm_ids, now)?;
        }
        Ok(())
    }

    /// Writes deferred access records now.
    pub fn flush_access_log(&self, state: &State) -> Result<()> {
        let pending = self.take_access_log();
        if pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = state.ltm.record_access(&pending) {
            self.restore_access_log(pending);
            return Err(e);
        }
        Ok(())
    }

    /// [`take_access_log`](Self::take_access_log) when the interval since the last write has
    /// passed or the log is long; else nothing.
    fn take_access_log_if_due(&self) -> Vec<AccessRecord> {
        let long = self.access_log.lock().len() >= ACCESS_LOG_MAX;
        {
            let mut written = self.access_written.lock();
            if !long && written.elapsed() < ACCESS_WRITE_INTERVAL {
                return Vec::new();
            }
            *written = Instant::now();
        }
        self.take_access_log()
    }

    /// Empties the access log, returning what it held.
    fn take_access_log(&self) -> Vec<AccessRecord> {
        let mut log = self.access_log.lock();
        if log.is_empty() {
            return Vec::new();
        }
        log.drain()
            .map(|(id, (count, at))| AccessRecord { id, count, at })
            .collect()
    }

    /// Puts access records whose write failed back into the log (merged with any newer ones).
    fn restore_access_log(&self, pending: Vec<AccessRecord>) {
        let mut log = self.access_log.lock();
        for a in pending {
            let slot = log.entry(a.id).or_insert((0, a.at));
            slot.0 = slot.0.saturating_add(a.count);
            slot.1 = slot.1.max(a.at);
        }
    }
}

/// Embeds, in one batch, the entries that came without a vector. Long-term entries are embedded
/// when written so that vector search finds them; short-term ones lazily (at search or
/// consolidation), which keeps appends cheap.
fn embed_missing(state: &State, entries: &mut [NewEntry]) {
    let missing: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].embedding.is_none())
        .collect();
    let texts: Vec<&str> = missing
        .iter()
        .map(|&i| entries[i].content.as_str())
        .collect();
    let vectors = state.embed_batch(&texts);
    for (i, v) in missing.into_iter().zip(vectors) {
        entries[i].embedding = v;
    }
}

/// Makes the checked `e` an entry of `tier` with id `id`, created now.
fn materialize_checked(
    state: &State,
    e: NewEntry,
    scale: f32,
    tier: Tier,
    id: EntryId,
) -> MemoryEntry {
    let created_at = e.created_at.unwrap_or_else(|| state.clock.now());
    // Long-term entries get their estimate now (they are ranked by it at once); short-term ones
    // when consolidation scores them, which keeps appends cheap.
    let importance = match (e.importance, tier) {
        (Some(given), _) => Some(given),
        (None, Tier::LongTerm) => Some(ImportanceScorer::estimate(&e.content)),
        (None, Tier::ShortTerm) => None,
    };
    MemoryEntry {
        id,
        agent_id: e.agent_id,
        session_id: e.session_id,
        role: e.role,
        embedding: e.embedding.map(|v| entry::unit_embedding(v, scale)),
        importance,
        content: e.content,
        created_at,
        // An imported entry was last touched when it was made.
        last_accessed_at: created_at,
        access_count: 0,
        metadata: e.metadata,
        tier,
    }
}
