//! Short-term memory behind one boundary: per (agent, session) windows of the most recent
//! entries with a time-to-live, and the hand-off of entries that leave a window to consolidation.
//! [`ShortTermStore`] is what the engine asks of the tier; `ram.rs` keeps the windows in this
//! process's RAM (the default), `redis/` in a Redis server that many app instances share
//! (feature `redis`).

pub(crate) mod ram;
#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::sync::Arc;

#[cfg(feature = "redis")]
use self::redis::config::RedisConfig;
use crate::clock::Timestamp;
use crate::entry::{EntryId, MemoryEntry};
use crate::error::Result;

/// An entry in a window, and whether consolidation already wrote it to long-term memory (it stays
/// in the window as a recent turn; it is not written twice).
#[derive(Clone, Debug)]
pub(crate) struct WindowItem {
    pub entry: MemoryEntry,
    pub persisted: bool,
}

/// What a sweep of short-term memory hands to consolidation.
#[derive(Debug, Default)]
pub(crate) struct StmHandOff {
    /// Entries that left their window (evicted by newer ones or by session expiry).
    pub leaving: Vec<WindowItem>,
    /// Entries still in a live window and not yet persisted.
    pub staying: Vec<MemoryEntry>,
    /// Sessions that expired in this sweep.
    pub expired_sessions: usize,
}

/// Where the short-term tier lives; chosen with
/// [`MemoryBuilder::with_short_term`](crate::MemoryBuilder::with_short_term).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShortTermStorage {
    /// In this process's RAM (the default): fastest, gone with the process.
    #[default]
    Ram,
    /// In a Redis server (feature `redis`): shared by every handle and process with the same
    /// server and key prefix, and kept across app restarts and crashes, including entries
    /// waiting for consolidation. See [`RedisConfig`](crate::RedisConfig).
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
}

/// (agent, session, id) of an entry in a live window.
pub(crate) type WindowKey = (Arc<str>, Arc<str>, EntryId);

/// Sizes of the short-term tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StmStats {
    /// Live sessions.
    pub sessions: usize,
    /// Entries in windows plus those waiting for consolidation.
    pub entries: usize,
}

/// The short-term tier, as the engine sees it. Nothing is ever dropped here: an entry leaves
/// only through [`sweep`](ShortTermStore::sweep) to consolidation, which either settles it or
/// hands it back.
pub(crate) trait ShortTermStore: Send + Sync + std::fmt::Debug {
    /// Creates the session's window if absent (or revives an expired one, handing its old
    /// entries off).
    fn open_session(&self, agent: &Arc<str>, session: &Arc<str>, now: Timestamp) -> Result<()>;

    /// Appends to the session's window (creating it); an entry pushed out is handed off.
    fn append(&self, entry: MemoryEntry, now: Timestamp) -> Result<()>;

    /// The last `n` entries of a live session, oldest first.
    fn recent(
        &self,
        agent: &str,
        session: &str,
        n: usize,
        now: Timestamp,
    ) -> Result<Vec<MemoryEntry>>;

    /// Every entry of `agent` in short-term memory, passed to `visit`: in a window (a live one,
    /// or an expired one, whose entries wait for consolidation as the hand-off's do), waiting in
    /// the hand-off, or (in RAM) taken by the consolidation under way and not yet committed.
    fn for_each_of_agent(
        &self,
        agent: &str,
        now: Timestamp,
        visit: &mut dyn FnMut(&MemoryEntry),
    ) -> Result<()>;

    /// Removes the entry `id` of `agent` from its window, the hand-off to consolidation, or what
    /// a consolidation under way has taken; whether it was there. It also leaves a mark that
    /// the entry was forgotten, which a consolidation under way (of any handle sharing the
    /// tier) reads after its commit ([`forgotten`](Self::forgotten)): it may have taken the
    /// entry before, and must then delete what it committed.
    fn forget(&self, agent: &str, id: EntryId) -> Result<bool>;

    /// Which of `entries` (agent and id) were forgotten since the consolidation under way swept
    /// (marks of `forget`); read by that consolidation after its commit.
    fn forgotten(&self, entries: &[(Arc<str>, EntryId)]) -> Result<Vec<bool>>;

    /// Records retrievals of entries of live windows (access count and time).
    fn record_access(&self, agent: &str, ids: &[(Arc<str>, EntryId)], now: Timestamp)
        -> Result<()>;

    /// Takes what consolidation must look at: entries handed off and those of expired sessions
    /// (removed), and unpersisted entries of live windows (copied).
    fn sweep(&self, now: Timestamp) -> Result<StmHandOff>;

    /// After consolidation committed: the leaving entries of the sweep are gone for good, and
    /// `settled` entries of live windows are marked persisted.
    fn settle(&self, settled: &[WindowKey]) -> Result<()>;

    /// After consolidation failed: the leaving entries go back to the hand-off lists.
    fn hand_back(&self, leaving: Vec<WindowItem>) -> Result<()>;

    /// Live sessions and entries held.
    fn stats(&self) -> Result<StmStats>;

    /// A number that changes whenever another handle changes the agent's windows, for the query
    /// cache; `None` when only this handle changes them (see `LongTermStore::generation`).
    fn generation(&self, _agent: &str) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Whether calls wait on a server (then the async facade runs them as blocking work), as
    /// opposed to taking microseconds in RAM.
    fn waits_on_server(&self) -> bool {
        false
    }
}
