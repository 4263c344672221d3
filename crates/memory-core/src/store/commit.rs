//! Group commit: writers of long-term memory that arrive while a commit is under way wait for
//! it, then share the next transaction, so that N concurrent writers cost about one commit rather
//! than N one after another. Each writer still returns only when its own entries are committed
//! (or have failed), with its own result.
//!
//! One writer at a time leads: it takes every waiting request, commits them together, hands each
//! its result, and passes the lead to the first request that arrived meanwhile (or gives it up).
//! A lone writer leads at once and pays two uncontended lock operations for the machinery.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::entry::MemoryEntry;
use crate::error::{Error, Result};

/// Where one request waits for its turn or its result.
#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
enum State {
    /// Queued behind the current leader.
    #[default]
    Waiting,
    /// Handed the lead by the previous leader: commit what is queued.
    Lead,
    /// Committed (or failed); the result is taken by the request's owner.
    Done(Result<usize>),
}

impl Slot {
    fn set(&self, state: State) {
        *self.state.lock() = state;
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(Vec<MemoryEntry>, Arc<Slot>)>,
    /// Whether some writer leads (committing, or about to).
    leading: bool,
}

/// The queue of writers waiting to commit together.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// Commits a group: the requests' entries in arrival order, one result per request.
pub(crate) type CommitFn<'a> = &'a dyn Fn(Vec<Vec<MemoryEntry>>) -> Vec<Result<usize>>;

impl GroupCommit {
    /// Commits `entries` together with whatever other writers are waiting, through `commit`, and
    /// returns this request's result once its entries are committed.
    pub fn submit(&self, entries: Vec<MemoryEntry>, commit: CommitFn<'_>) -> Result<usize> {
        let slot = Arc::new(Slot::default());
        let lead_now = {
            let mut q = self.queue.lock();
            q.waiting.push((entries, slot.clone()));
            !std::mem::replace(&mut q.leading, true)
        };
        if !lead_now {
            let mut state = slot.state.lock();
            loop {
                match std::mem::take(&mut *state) {
                    State::Waiting => slot.wake.wait(&mut state),
                    State::Lead => break,
                    State::Done(result) => return result,
                }
            }
        }
        self.lead(commit);
        // The leader's own request was queued when it took the lead, so it was in the group.
        let mut state = slot.state.lock();
        match std::mem::take(&mut *state) {
            State::Done(result) => result,
            State::Waiting | State::Lead => Err(Error::CommitPanicked(
                "group commit finished without this request's result".into(),
            )),
        }
    }

    /// Commits everything queued, hands out the results, and passes the lead on.
    fn lead(&self, commit: CommitFn<'_>) {
        let group = std::mem::take(&mut self.queue.lock().waiting);
        let (entries, slots): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let outcome = catch_unwind(AssertUnwindSafe(|| commit(entries)));
        let panic = match outcome {
            Ok(results) if results.len() == slots.len() => {
                for (slot, result) in slots.iter().zip(results) {
                    slot.set(State::Done(result));
                }
                None
            }
            Ok(_) => {
                for slot in &slots {
                    slot.set(State::Done(Err(Error::CommitPanicked(
                        "group commit returned the wrong number of results".into(),
                    ))));
                }
                None
            }
            Err(panic) => {
                // The writers waiting on this group get an error instead of hanging; the panic
                // goes on in the leader's thread once the lead is passed.
                let what = panic_message(&panic);
                for slot in &slots {
                    slot.set(State::Done(Err(Error::CommitPanicked(what.clone()))));
                }
                Some(panic)
            }
        };
        {
            let mut q = self.queue.lock();
            match q.waiting.first() {
                Some((_, next)) => next.set(State::Lead),
                None => q.leading = false,
            }
        }
        if let Some(panic) = panic {
            resume_unwind(panic);
        }
    }
}

/// The text a panic was raised with, when it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryId;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn entry(id: u64) -> MemoryEntry {
        MemoryEntry::for_test(id, &format!("entry {id}"), None)
    }

    #[test]
    fn concurrent_writers_share_commits_and_each_gets_its_own_result() {
        let gc = GroupCommit::default();
        let commits = AtomicUsize::new(0);
        let committed = Mutex::new(Vec::new());
        let commit = |groups: Vec<Vec<MemoryEntry>>| {
            commits.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(2));
            groups
                .into_iter()
                .map(|g| {
                    if g.iter().any(|e| e.id.0 % 100 == 99) {
                        return Err(Error::InvalidQuery("rejected".into()));
                    }
                    committed.lock().extend(g.iter().map(|e| e.id));
                    Ok(g.len())
                })
                .collect()
        };
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (gc, commit) = (&gc, &commit);
                s.spawn(move || {
                    for i in 0..25u64 {
                        let id = t * 100 + i * 4;
                        let batch: Vec<MemoryEntry> = (id..id + 4).map(entry).collect();
                        let rejected = (id..id + 4).any(|x| x % 100 == 99);
                        match gc.submit(batch, commit) {
                            Ok(n) => assert!(!rejected && n == 4),
                            Err(_) => assert!(rejected),
                        }
                    }
                });
            }
        });
        let mut ids = committed.into_inner();
        ids.sort();
        let want: Vec<EntryId> = (0..800).filter(|x| x % 100 < 96).map(EntryId).collect();
        assert_eq!(ids, want, "every accepted entry once, no rejected one");
        let commits = commits.load(Ordering::Relaxed);
        assert!(
            commits < 200,
            "{commits} commits for 200 requests: none shared"
        );
    }

    #[test]
    fn a_panicking_commit_fails_its_group_and_the_next_writer_still_leads() {
        let gc = GroupCommit::default();
        let boom = |_: Vec<Vec<MemoryEntry>>| -> Vec<Result<usize>> { panic!("injected") };
        let caught = catch_unwind(AssertUnwindSafe(|| gc.submit(vec![entry(1)], &boom)));
        assert!(caught.is_err());
        let ok = |groups: Vec<Vec<MemoryEntry>>| groups.iter().map(|g| Ok(g.len())).collect();
        assert_eq!(gc.submit(vec![entry(2), entry(3)], &ok).unwrap(), 2);
    }
}
