//! The background linker: one thread that moves staged vectors into their agent's vector index
//! and links them into its HNSW graph, beside searches. Writes never wait for it; searches scan
//! what it has not linked yet exactly.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::index::agent::SharedIndex;

/// How long the linker waits before looking again while a writer links an index itself.
const STAND_ASIDE: Duration = Duration::from_millis(1);

/// How long the linker works on one index before it lets the next queued one have a turn: a
/// steady ingest into one agent (or a large backlog) no longer leaves every other agent's
/// staged vectors waiting, scanned exactly by each search, until it is done. A link step is a
/// few milliseconds at most, so a turn is several steps.
const TURN: Duration = Duration::from_millis(20);

#[derive(Default)]
struct LinkerState {
    queue: VecDeque<SharedIndex>,
    busy: bool,
    shutdown: bool,
}

/// A queue of agent indexes with staged or unlinked vectors, and the thread that works it off.
/// Dropping the last handle stops the thread.
pub(crate) struct Linker {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<LinkerState>,
    work: Condvar,
    idle: Condvar,
}

impl Linker {
    /// Starts the linker thread (at low priority: see `background.rs`).
    pub fn start() -> Result<Linker> {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        crate::background::spawn(
            "memory-core-linker",
            crate::background::Priority::Idle,
            move || worker.run(),
        )
        .map_err(|source| Error::Io {
            path: "<linker thread>".into(),
            source,
        })?;
        Ok(Linker { shared })
    }

    /// Queues `index` unless it is queued already.
    pub fn schedule(&self, index: &SharedIndex) {
        if index.try_queue() {
            self.shared.state.lock().queue.push_back(index.clone());
            self.shared.work.notify_one();
        }
    }

    /// Blocks until the queue is empty and the thread idle.
    pub fn wait_idle(&self) {
        let mut state = self.shared.state.lock();
        while state.busy || !state.queue.is_empty() {
            self.shared.idle.wait(&mut state);
        }
    }
}

impl Drop for Linker {
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.work.notify_all();
        self.shared.idle.notify_all();
    }
}

impl Shared {
    /// Puts `index` (still marked queued) back at the end of the queue when another index
    /// waits; whether it did.
    fn requeue_if_others_wait(&self, index: &SharedIndex) -> bool {
        let mut state = self.state.lock();
        if state.queue.is_empty() {
            return false;
        }
        state.queue.push_back(index.clone());
        true
    }

    fn run(&self) {
        let mut share = crate::background::StarvationGuard::new();
        loop {
            let index = {
                let mut state = self.state.lock();
                loop {
                    if state.shutdown {
                        return;
                    }
                    if let Some(index) = state.queue.pop_front() {
                        state.busy = true;
                        break index;
                    }
                    state.busy = false;
                    self.idle.notify_all();
                    self.work.wait(&mut state);
                    share.restart();
                }
            };
            let turn = Instant::now();
            loop {
                if self.state.lock().shutdown {
                    return;
                }
                if index.writers_linking() {
                    // A writer links at its own priority; taking the link lock now would make
                    // it wait for this low-priority thread (see `writers_linking`). Another
                    // index gets the turn meanwhile, if one waits.
                    if self.requeue_if_others_wait(&index) {
                        break;
                    }
                    std::thread::sleep(STAND_ASIDE);
                    share.restart();
                    continue;
                }
                if index.link_step() {
                    share.working();
                    if turn.elapsed() >= TURN && self.requeue_if_others_wait(&index) {
                        break;
                    }
                    continue;
                }
                // Nothing left. Leave the queue, then look again: a write between the last step
                // and the flag's reset found the flag set and did not queue the index.
                index.leave_queue();
                if !index.has_link_work() || !index.try_queue() {
                    break;
                }
            }
        }
    }
}
