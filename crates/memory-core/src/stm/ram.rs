//! Short-term memory: per (agent, session) windows of the most recent entries, in RAM.
//!
//! Windows live in independently locked shards chosen by a hash of (agent, session), so sessions do
//! not contend on one lock. An entry that leaves its window, or whose session expires, is parked in
//! its shard's hand-off list for consolidation; nothing is dropped here.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::clock::Timestamp;
use crate::entry::{EntryId, MemoryEntry};
use crate::error::Result;
use crate::stm::{ShortTermStore, StmHandOff, StmStats, WindowItem, WindowKey};

#[derive(Debug, Default)]
struct SessionWindow {
    items: VecDeque<WindowItem>,
    last_active: Timestamp,
}

#[derive(Debug, Default)]
struct Shard {
    /// agent -> session -> window. Nested so that lookups by `&str` need no allocation.
    agents: FxHashMap<Arc<str>, FxHashMap<Arc<str>, SessionWindow>>,
    /// Entries that left a window (evicted or expired) and wait for consolidation.
    handed_off: Vec<WindowItem>,
}

/// Agent and id of entries `forget` removed while a consolidation was under way.
type ForgottenMarks = FxHashSet<(Arc<str>, EntryId)>;

/// The short-term tier in this process's RAM.
#[derive(Debug)]
pub(crate) struct RamShortTerm {
    shards: Box<[Mutex<Shard>]>,
    /// Copies of the entries the consolidation under way took out of their windows (one at a
    /// time: the caller serializes), which searches still see until it settles or hands them
    /// back: between the sweep and the long-term commit they are in neither tier otherwise.
    in_flight: Mutex<Vec<MemoryEntry>>,
    /// Held shared by a visit of an agent's entries, exclusively while entries move between
    /// the shards and `in_flight` (sweep, hand-back), so that a visit sees each entry in one
    /// place or the other, never in neither (nor in both).
    moving: RwLock<()>,
    /// The entries forgotten since the consolidation under way swept (`None` when none is):
    /// read by it after its commit, dropped when it settles or hands back.
    forgotten: Mutex<Option<ForgottenMarks>>,
    mask: usize,
    capacity: usize,
    ttl: Duration,
}

impl RamShortTerm {
    pub fn new(shards: usize, capacity: usize, ttl: Duration) -> Self {
        let n = shards.next_power_of_two();
        RamShortTerm {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            in_flight: Mutex::new(Vec::new()),
            moving: RwLock::new(()),
            forgotten: Mutex::new(None),
            mask: n - 1,
            capacity,
            ttl,
        }
    }

    fn shard(&self, agent: &str, session: &str) -> &Mutex<Shard> {
        let mut h = FxHasher::default();
        agent.hash(&mut h);
        session.hash(&mut h);
        &self.shards[(h.finish() as usize) & self.mask]
    }

    fn expired(&self, w: &SessionWindow, now: Timestamp) -> bool {
        now.since(w.last_active) > self.ttl
    }
}

impl ShortTermStore for RamShortTerm {
    fn open_session(&self, agent: &Arc<str>, session: &Arc<str>, now: Timestamp) -> Result<()> {
        let mut shard = self.shard(agent, session).lock();
        let Shard { agents, handed_off } = &mut *shard;
        let sessions = match agents.get_mut(&**agent) {
            Some(s) => s,
            None => agents.entry(agent.clone()).or_default(),
        };
        match sessions.get_mut(&**session) {
            Some(w) => {
                if self.expired(w, now) {
                    handed_off.extend(w.items.drain(..));
                }
                w.last_active = now;
            }
            None => {
                // No room is reserved until the first append: opening a session costs one map
                // entry, and sessions that are opened but never used cost no more.
                let window = SessionWindow {
                    items: VecDeque::new(),
                    last_active: now,
                };
                sessions.insert(session.clone(), window);
            }
        }
        Ok(())
    }

    fn append(&self, entry: MemoryEntry, now: Timestamp) -> Result<()> {
        let mut shard = self.shard(&entry.agent_id, &entry.session_id).lock();
        let Shard { agents, handed_off } = &mut *shard;
        let sessions = match agents.get_mut(&*entry.agent_id) {
            Some(s) => s,
            None => agents.entry(entry.agent_id.clone()).or_default(),
        };
        let window = match sessions.get_mut(&*entry.session_id) {
            Some(w) => w,
            None => sessions.entry(entry.session_id.clone()).or_default(),
        };
        if self.expired(window, now) && !window.items.is_empty() {
            handed_off.extend(window.items.drain(..));
        }
        window.last_active = now;
        if window.items.capacity() == 0 {
            // The whole window at once (plus the one that pushes the oldest out), so the deque
            // never reallocates.
            window.items.reserve_exact(self.capacity.min(64) + 1);
        }
        window.items.push_back(WindowItem {
            entry,
            persisted: false,
        });
        while window.items.len() > self.capacity {
            if let Some(old) = window.items.pop_front() {
                handed_off.push(old);
            }
        }
        Ok(())
    }

    fn recent(
        &self,
        agent: &str,
        session: &str,
        n: usize,
        now: Timestamp,
    ) -> Result<Vec<MemoryEntry>> {
        let shard = self.shard(agent, session).lock();
        let Some(w) = shard.agents.get(agent).and_then(|s| s.get(session)) else {
            return Ok(Vec::new());
        };
        if self.expired(w, now) {
            return Ok(Vec::new());
        }
        let skip = w.items.len().saturating_sub(n);
        Ok(w.items.iter().skip(skip).map(|i| i.entry.clone()).collect())
    }

    /// `visit` runs under a shard's lock: keep it short.
    fn for_each_of_agent(
        &self,
        agent: &str,
        _now: Timestamp,
        visit: &mut dyn FnMut(&MemoryEntry),
    ) -> Result<()> {
        let _no_move = self.moving.read();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            if let Some(sessions) = shard.agents.get(agent) {
                for w in sessions.values() {
                    w.items.iter().for_each(|i| visit(&i.entry));
                }
            }
            shard
                .handed_off
                .iter()
                .filter(|i| &*i.entry.agent_id == agent)
                .for_each(|i| visit(&i.entry));
        }
        self.in_flight
            .lock()
            .iter()
            .filter(|e| &*e.agent_id == agent)
            .for_each(visit);
        Ok(())
    }

    fn forget(&self, agent: &str, id: EntryId) -> Result<bool> {
        // Not beside a sweep: the entry is either still in its window (and gone before the
        // sweep) or taken by it, with the consolidation's marks in place.
        let _no_move = self.moving.read();
        let mut found = false;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let Shard { agents, handed_off } = &mut *shard;
            for w in agents
                .get_mut(agent)
                .into_iter()
                .flat_map(|s| s.values_mut())
            {
                let before = w.items.len();
                w.items.retain(|i| i.entry.id != id);
                found |= w.items.len() < before;
            }
            let before = handed_off.len();
            handed_off.retain(|i| i.entry.id != id || &*i.entry.agent_id != agent);
            found |= handed_off.len() < before;
        }
        // The copy a running consolidation's search view holds; its own copy, which it may still
        // commit, is out of reach: the mark makes it delete what it committed.
        let mut in_flight = self.in_flight.lock();
        let before = in_flight.len();
        in_flight.retain(|e| e.id != id || &*e.agent_id != agent);
        found |= in_flight.len() < before;
        drop(in_flight);
        if let Some(marks) = self.forgotten.lock().as_mut() {
            marks.insert((Arc::from(agent), id));
        }
        Ok(found)
    }

    fn forgotten(&self, entries: &[(Arc<str>, EntryId)]) -> Result<Vec<bool>> {
        let marks = self.forgotten.lock();
        Ok(entries
            .iter()
            .map(|e| marks.as_ref().is_some_and(|m| m.contains(e)))
            .collect())
    }

    fn record_access(
        &self,
        agent: &str,
        ids: &[(Arc<str>, EntryId)],
        now: Timestamp,
    ) -> Result<()> {
        for (session, id) in ids {
            let mut shard = self.shard(agent, session).lock();
            if let Some(w) = shard
                .agents
                .get_mut(agent)
                .and_then(|s| s.get_mut(&**session))
            {
                if let Some(item) = w.items.iter_mut().find(|i| i.entry.id == *id) {
                    item.entry.access_count = item.entry.access_count.saturating_add(1);
                    item.entry.last_accessed_at = now;
                }
            }
        }
        Ok(())
    }

    fn sweep(&self, now: Timestamp) -> Result<StmHandOff> {
        let mut out = StmHandOff::default();
        {
            // Only the move of the leaving entries into `in_flight` holds every visit back.
            let _moving = self.moving.write();
            for shard in self.shards.iter() {
                let mut shard = shard.lock();
                let Shard { agents, handed_off } = &mut *shard;
                out.leaving.append(handed_off);
                agents.retain(|_, sessions| {
                    sessions.retain(|_, w| {
                        let expired = self.expired(w, now);
                        if expired {
                            out.expired_sessions += 1;
                            out.leaving.extend(w.items.drain(..));
                        }
                        !expired
                    });
                    !sessions.is_empty()
                });
            }
            *self.in_flight.lock() = out.leaving.iter().map(|i| i.entry.clone()).collect();
            *self.forgotten.lock() = Some(FxHashSet::default());
        }
        // Copies of the staying entries, a shard at a time, beside searches (with 100,000 entries
        // in short-term memory, copying them under `moving` held every search 30 ms). An entry
        // forgotten from here on is marked (above), as one forgotten after the copy always was.
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for sessions in shard.agents.values() {
                for w in sessions.values() {
                    out.staying.extend(
                        w.items
                            .iter()
                            .filter(|i| !i.persisted)
                            .map(|i| i.entry.clone()),
                    );
                }
            }
        }
        Ok(out)
    }

    /// The leaving entries were taken out of RAM by the sweep: only `settled` is left to mark.
    fn settle(&self, settled: &[WindowKey]) -> Result<()> {
        // Committed: what was promoted is found in long-term memory now (a search reads it after
        // its short-term part), the rest is gone.
        self.in_flight.lock().clear();
        *self.forgotten.lock() = None;
        for (agent, session, id) in settled {
            let mut shard = self.shard(agent, session).lock();
            if let Some(w) = shard
                .agents
                .get_mut(&**agent)
                .and_then(|s| s.get_mut(&**session))
            {
                if let Some(item) = w.items.iter_mut().find(|i| i.entry.id == *id) {
                    item.persisted = true;
                }
            }
        }
        Ok(())
    }

    /// What was forgotten meanwhile does not come back.
    fn hand_back(&self, leaving: Vec<WindowItem>) -> Result<()> {
        let _moving = self.moving.write();
        let forgotten = self.forgotten.lock().take().unwrap_or_default();
        for item in leaving {
            if forgotten.contains(&(item.entry.agent_id.clone(), item.entry.id)) {
                continue;
            }
            self.shard(&item.entry.agent_id, &item.entry.session_id)
                .lock()
                .handed_off
                .push(item);
        }
        self.in_flight.lock().clear();
        Ok(())
    }

    fn stats(&self) -> Result<StmStats> {
        let mut sessions = 0;
        let mut entries = 0;
        for shard in self.shards.iter() {
            let shard = shard.lock();
            entries += shard.handed_off.len();
            for s in shard.agents.values() {
                sessions += s.len();
                entries += s.values().map(|w| w.items.len()).sum::<usize>();
            }
        }
        Ok(StmStats { sessions, entries })
    }
}
