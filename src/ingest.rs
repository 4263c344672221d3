//! Sustained ingest beside a measurement: a thread that writes into a store at a fixed rate
//! (batches of `insert_batch`) while the benchmark measures something else on the same store, and
//! records how far the background index linker fell behind.
//!
//! The writer only runs while it is resumed, so a benchmark can confine the load to its timed
//! samples ([`PacedIngest::resume`] / [`PacedIngest::pause`]) and the store grows by the rate times
//! the time measured, not by whatever Criterion spends between samples. It stops for good after
//! `limit` entries, so no run can grow a store without bound.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::{Condvar, Mutex, MutexGuard};

use memory_core::{Memory, NewEntry};

/// What a writer did, read when it stops.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestSummary {
    /// Entries the writer committed.
    pub inserted: usize,
    /// Time it spent resumed.
    pub active: Duration,
    /// The largest number of committed vectors not yet linked into the HNSW graph, read after each
    /// batch.
    pub max_unlinked: usize,
    /// Time from the writer's stop until the linker had linked everything.
    pub drain: Duration,
    /// Whether it stopped because it reached its limit.
    pub hit_limit: bool,
    /// The first write error, if any (the writer stops at it).
    pub error: Option<String>,
}

impl IngestSummary {
    /// Entries per second while resumed.
    pub fn rate(&self) -> f64 {
        let s = self.active.as_secs_f64();
        if s > 0.0 {
            self.inserted as f64 / s
        } else {
            0.0
        }
    }

    /// The largest unlinked backlog, in seconds of ingest at the achieved rate: how long the
    /// newest entries waited at most before the ANN graph covered them.
    pub fn max_lag(&self) -> Duration {
        let rate = self.rate();
        if rate > 0.0 {
            Duration::from_secs_f64(self.max_unlinked as f64 / rate)
        } else {
            Duration::ZERO
        }
    }
}

#[derive(Default)]
struct State {
    running: bool,
    stop: bool,
    summary: IngestSummary,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    /// The state (a panic elsewhere while holding it leaves plain counters: still readable).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A writer thread ingesting at `rate` entries per second while resumed.
pub struct PacedIngest {
    shared: Arc<Shared>,
    memory: Memory,
    thread: Option<JoinHandle<()>>,
}

impl PacedIngest {
    /// Starts a paused writer that inserts `entries(i)` for i = 0, 1, 2, ... into `memory` in
    /// batches of `batch`, `rate` entries per second while resumed, at most `limit` in all.
    pub fn start(
        memory: Memory,
        rate: f64,
        batch: usize,
        limit: usize,
        entries: impl Fn(usize) -> NewEntry + Send + 'static,
    ) -> PacedIngest {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let batch = batch.max(1);
        let per_batch = Duration::from_secs_f64(batch as f64 / rate.max(1e-3));
        let thread = {
            let shared = shared.clone();
            let memory = memory.clone();
            std::thread::spawn(move || {
                write_while_resumed(&shared, &memory, per_batch, batch, limit, entries)
            })
        };
        PacedIngest {
            shared,
            memory,
            thread: Some(thread),
        }
    }

    /// Lets the writer run.
    pub fn resume(&self) {
        self.shared.lock().running = true;
        self.shared.wake.notify_all();
    }

    /// Holds the writer after its current batch.
    pub fn pause(&self) {
        self.shared.lock().running = false;
    }

    /// Stops the writer, waits until the linker has linked everything it wrote, and returns the
    /// summary.
    pub fn stop(mut self) -> IngestSummary {
        {
            let mut st = self.shared.lock();
            st.stop = true;
            st.running = false;
        }
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                self.shared.lock().summary.error = Some("the writer thread panicked".into());
            }
        }
        let began = Instant::now();
        self.memory.wait_for_indexing();
        let mut summary = self.shared.lock().summary.clone();
        summary.drain = began.elapsed();
        summary
    }
}

/// The writer thread: waits to be resumed, then inserts a batch every `per_batch` until paused,
/// stopped, at `limit`, or at the first error.
fn write_while_resumed(
    shared: &Shared,
    memory: &Memory,
    per_batch: Duration,
    batch: usize,
    limit: usize,
    entries: impl Fn(usize) -> NewEntry,
) {
    let mut next = 0usize;
    loop {
        {
            let mut st = shared.lock();
            while !st.running && !st.stop {
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop {
                return;
            }
        }
        let resumed = Instant::now();
        let mut due = resumed;
        loop {
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            }
            let mut st = shared.lock();
            if !st.running || st.stop || next >= limit {
                st.summary.active += resumed.elapsed();
                st.summary.hit_limit = next >= limit;
                if st.summary.hit_limit {
                    return;
                }
                break;
            }
            drop(st);
            let take = batch.min(limit - next);
            let result = memory.insert_batch((next..next + take).map(&entries).collect());
            let unlinked = memory.pending_index_links();
            next += take;
            // Behind schedule (a slow batch), the next one goes at once: the rate achieved is
            // then what the store sustains, and the summary says so.
            due += per_batch;
            let mut st = shared.lock();
            st.summary.max_unlinked = st.summary.max_unlinked.max(unlinked);
            match result {
                Ok(ids) => st.summary.inserted += ids.len(),
                Err(e) => {
                    st.summary.error = Some(e.to_string());
                    st.summary.active += resumed.elapsed();
                    return;
                }
            }
        }
    }
}

impl Drop for PacedIngest {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memory_core::{MemoryConfig, Role, Storage};

    fn entry(i: usize) -> NewEntry {
        NewEntry::new(
            "agent-0",
            "s-ingest",
            Role::User,
            format!("ingested note number {i}"),
        )
    }

    #[test]
    fn a_paused_writer_writes_nothing_and_a_resumed_one_commits_every_entry_it_counts() {
        let memory = Memory::open(Storage::Temporary, MemoryConfig::default()).unwrap();
        let ingest = PacedIngest::start(memory.clone(), 1e6, 50, 400, entry);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(memory.count("agent-0").unwrap(), 0, "paused at start");
        ingest.resume();
        // Wait (without a time bound on the work) until it has written something.
        while memory.count("agent-0").unwrap() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let summary = ingest.stop();
        assert_eq!(summary.error, None);
        assert!(summary.inserted > 0);
        assert_eq!(memory.count("agent-0").unwrap(), summary.inserted as u64);
        assert_eq!(memory.pending_index_links(), 0, "stop waits for the linker");
    }

    #[test]
    fn the_writer_stops_at_its_limit() {
        let memory = Memory::open(Storage::Temporary, MemoryConfig::default()).unwrap();
        let ingest = PacedIngest::start(memory.clone(), 1e6, 64, 300, entry);
        ingest.resume();
        while !ingest.shared.lock().summary.hit_limit {
            std::thread::sleep(Duration::from_millis(1));
        }
        let summary = ingest.stop();
        assert!(summary.hit_limit);
        assert_eq!(summary.inserted, 300);
        assert_eq!(memory.count("agent-0").unwrap(), 300);
    }
}
