//! Background threads of a store (the HNSW linker, the WAL checkpointer, the snapshot saver):
//! started by name, at a lower scheduling priority than the threads calling into the store.

use std::io;
use std::thread::JoinHandle;

/// Nice value of background threads at [`Priority::Low`]: under load, the kernel runs callers'
/// threads (and its own writeback) first, so upkeep does not show up in their latency, but the
/// upkeep is not starved either (a nice-10 thread still gets about a tenth of a busy core).
const BACKGROUND_NICE: i32 = 10;

/// How a background thread yields to callers' threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Priority {
    /// Nice 10: for upkeep that must progress under any load (the checkpointer bounds the WAL's
    /// size; a snapshot save bounds the replay of the next open).
    Low,
    /// Linux's `SCHED_IDLE` (nice 10 elsewhere, or where it is refused): runs only on CPU time
    /// no caller's thread wants. The kernel places a waking caller's thread on a core that runs
    /// only such threads as if it were idle; at nice 10 a busy linker kept one of two cores,
    /// and a large batch's two threads took turns on the other (`latency/ltm/insert_batch/1000`
    /// 188K -> 202K entries/s with this). For work whose lag costs speed, not correctness: an
    /// unlinked vector is scanned exactly until the linker reaches it, and a writer that must
    /// not leave a backlog links it itself (`SearchConfig::max_unlinked`).
    Idle,
}

/// Spawns a named thread that runs `f` at `priority`. Threads it starts inherit it.
pub(crate) fn spawn<F>(name: &str, priority: Priority, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_priority(priority);
            f()
        })
}

/// Lowers the calling thread's priority. On Linux the nice value and the scheduling policy are
/// per thread, and `setpriority(PRIO_PROCESS, 0, ..)` / `sched_setscheduler(0, ..)` apply to the
/// calling thread only; elsewhere they would apply to the whole process, so nothing is done.
/// Failure is harmless (the thread keeps the default priority, or nice 10 instead of idle).
fn lower_priority(priority: Priority) {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler reads the `sched_param` we pass and setpriority reads no memory
    // of ours; both change only the calling thread's scheduling.
    unsafe {
        if priority == Priority::Idle {
            let param = libc::sched_param { sched_priority: 0 };
            if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 {
                return;
            }
        }
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = priority;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy_and_nice() -> (i32, i32) {
        // SAFETY: both read the calling thread's scheduling only.
        unsafe {
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, 0),
            )
        }
    }

    #[test]
    fn background_threads_run_below_callers_and_their_workers_inherit_it() {
        let low = spawn("test-low", Priority::Low, || {
            assert_eq!(policy_and_nice(), (libc::SCHED_OTHER, BACKGROUND_NICE));
        })
        .unwrap();
        low.join().unwrap();
        let idle = spawn("test-idle", Priority::Idle, || {
            let (policy, nice) = policy_and_nice();
            // Refused only where the kernel lacks SCHED_IDLE; then nice 10.
            assert!(
                policy == libc::SCHED_IDLE
                    || (policy, nice) == (libc::SCHED_OTHER, BACKGROUND_NICE),
                "policy {policy}, nice {nice}"
            );
            let worker = std::thread::spawn(policy_and_nice).join().unwrap();
            assert_eq!(worker, (policy, nice));
        })
        .unwrap();
        idle.join().unwrap();
        assert_eq!(
            policy_and_nice().0,
            libc::SCHED_OTHER,
            "the caller is untouched"
        );
    }
}
