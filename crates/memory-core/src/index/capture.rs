//! A reader-writer lock with a third kind of access for long reads, such as an index snapshot's
//! copy, that must not stall the other readers.
//!
//! `parking_lot`'s [`RwLock`] is fair: once a writer waits, new readers wait behind it, so that a
//! stream of readers cannot starve writers. Most reads are short, and that is what one wants.
//! But a read that lasts (a snapshot writes an agent's whole index to disk under its read lock:
//! 0.1-0.2 s at 100K entries, seconds at a million) then holds back every search that arrives
//! after the first write queued behind it: a search measured 74-101 ms during the save of a
//! 100,000-entry store (`latency` p99 otherwise under 1 ms).
//!
//! [`CaptureLock`] puts a gate before the writers: every write takes the gate first, and so does
//! a [`CaptureLock::capture`]. While a capture runs, writers wait at the gate, not on the lock,
//! so no writer is queued on the lock and readers come and go as if no writer existed. Writers
//! wait for the capture as they waited for the long read before; only readers gain. Plain
//! [`CaptureLock::read`]s and [`CaptureLock::write`]s keep the lock's fairness between them.
//!
//! A write can turn into a capture and back without letting the gate go
//! ([`WriteGuard::into_capture`], [`CaptureGuard::into_write`]): an index compaction builds its
//! rewrite beside the searches that way, and holds the lock itself only to swap it in.

use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct CaptureLock<T> {
    /// Held by each writer and each capture for as long as its access lasts.
    gate: Mutex<()>,
    lock: RwLock<T>,
}

/// Write access (releases the lock, then the gate).
pub(crate) struct WriteGuard<'a, T> {
    guard: RwLockWriteGuard<'a, T>,
    _gate: MutexGuard<'a, ()>,
}

/// Long read access that writers wait for at the gate (releases the lock, then the gate).
pub(crate) struct CaptureGuard<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    _gate: MutexGuard<'a, ()>,
}

impl<T> CaptureLock<T> {
    pub fn new(value: T) -> Self {
        CaptureLock {
            gate: Mutex::new(()),
            lock: RwLock::new(value),
        }
    }

    /// Shared access for a short read (behind a waiting writer, as with a fair lock).
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.lock.read()
    }

    /// Exclusive access.
    pub fn write(&self) -> WriteGuard<'_, T> {
        let gate = self.gate.lock();
        WriteGuard {
            guard: self.lock.write(),
            _gate: gate,
        }
    }

    /// Shared access for a long read: writers wait at the gate until it ends, readers do not
    /// wait at all.
    pub fn capture(&self) -> CaptureGuard<'_, T> {
        let gate = self.gate.lock();
        CaptureGuard {
            guard: self.lock.read(),
            _gate: gate,
        }
    }
}

impl<'a, T> WriteGuard<'a, T> {
    /// Turns this write into a capture without letting the gate go: readers come in again,
    /// writers still wait, so a long rewrite can be built from what was just written beside the
    /// searches, then put in with [`CaptureGuard::into_write`] (`AgentIndex::remove`).
    pub fn into_capture(self) -> CaptureGuard<'a, T> {
        let WriteGuard { guard, _gate } = self;
        CaptureGuard {
            guard: RwLockWriteGuard::downgrade(guard),
            _gate,
        }
    }
}

impl<'a, T> CaptureGuard<'a, T> {
    /// Turns this capture into a write without letting the gate go: no writer can have changed
    /// the value in between. Waits for the readers inside, as any write does.
    pub fn into_write(self) -> WriteGuard<'a, T> {
        let CaptureGuard { guard, _gate } = self;
        let lock = RwLockReadGuard::rwlock(&guard);
        drop(guard);
        WriteGuard {
            guard: lock.write(),
            _gate,
        }
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Deref for CaptureGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// How long a test gives a thread to reach a lock and park there, and how long it waits
    /// for an access that must not block before calling it blocked: liveness bounds, not
    /// timings (a slow machine makes the first check weaker, never the test flaky).
    const PARK: Duration = Duration::from_millis(100);
    const STUCK: Duration = Duration::from_secs(20);

    #[test]
    fn a_reader_passes_a_writer_waiting_for_a_capture() {
        let lock = CaptureLock::new(1u32);
        let lock = &lock;
        std::thread::scope(|s| {
            let capture = lock.capture();
            let (queued, writer_queued) = mpsc::channel();
            let writer = s.spawn(move || {
                queued.send(()).unwrap();
                *lock.write() += 1;
            });
            writer_queued.recv().unwrap();
            std::thread::sleep(PARK);
            // With the capture a plain read, the parked writer would hold this reader back.
            let (done, read) = mpsc::channel();
            s.spawn(move || done.send(*lock.read()).unwrap());
            assert_eq!(
                read.recv_timeout(STUCK),
                Ok(1),
                "the reader waited for the writer"
            );
            assert_eq!(*capture, 1, "the writer got in during the capture");
            drop(capture);
            writer.join().unwrap();
        });
        assert_eq!(*lock.read(), 2);
    }

    #[test]
    fn a_write_turned_into_a_capture_lets_readers_in_and_no_writer_until_it_is_a_write_again() {
        let lock = CaptureLock::new(1u32);
        let lock = &lock;
        std::thread::scope(|s| {
            let mut write = lock.write();
            *write = 2;
            let capture = write.into_capture();
            let (queued, writer_queued) = mpsc::channel();
            let writer = s.spawn(move || {
                queued.send(()).unwrap();
                *lock.write() += 10;
            });
            writer_queued.recv().unwrap();
            std::thread::sleep(PARK);
            let (done, read) = mpsc::channel();
            s.spawn(move || done.send(*lock.read()).unwrap());
            assert_eq!(read.recv_timeout(STUCK), Ok(2), "the reader waited");
            let mut write = capture.into_write();
            assert_eq!(*write, 2, "a writer got in between");
            *write = 3;
            drop(write);
            writer.join().unwrap();
        });
        assert_eq!(*lock.read(), 13);
    }

    #[test]
    fn writes_wait_for_each_other_and_for_readers() {
        let lock = CaptureLock::new(0u64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1_000 {
                        let mut w = lock.write();
                        let seen = *w;
                        *w = seen + 1;
                        drop(w);
                        let r = lock.read();
                        assert!(*r > seen);
                    }
                });
            }
        });
        assert_eq!(*lock.read(), 4_000);
    }
}
