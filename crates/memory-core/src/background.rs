//! Background threads of a store (the HNSW linker, the WAL checkpointer, the snapshot saver):
//! started by name, at a lower scheduling priority than the threads calling into the store.

use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    /// not leave a backlog links it itself (`SearchConfig::max_unlinked`). A thread that starves
    /// at it moves itself to [`Priority::Low`] for a while (see [`StarvationGuard`]).
    Idle,
}

/// How often a [`StarvationGuard`] looks at its thread's share of a core.
const SHARE_WINDOW: Duration = Duration::from_millis(100);

/// Share of one core below which a working thread counts as starved (nice 10 gets about a
/// tenth of a busy core).
const STARVED_BELOW: f64 = 0.05;

/// Keeps a [`Priority::Idle`] thread that has work from starving. Callers that keep every core
/// busy leave an idle-policy thread almost nothing (a weight of 3 against 1,024), and a linker
/// that never catches up makes every ANN query scan its backlog exactly, which keeps the cores
/// busier still. So while the thread works it measures its own CPU time: in a window where it
/// got less than [`STARVED_BELOW`] of a core it moves to [`Priority::Low`], and back to idle in
/// a window where it got more (it then gets at least about half of what nice 10 would give).
pub(crate) struct StarvationGuard {
    window_start: Instant,
    cpu_at_start: Option<Duration>,
    at: Priority,
}

impl StarvationGuard {
    /// A guard for the calling thread, which runs at [`Priority::Idle`].
    pub fn new() -> Self {
        StarvationGuard {
            window_start: Instant::now(),
            cpu_at_start: thread_cpu_time(),
            at: Priority::Idle,
        }
    }

    /// Starts a new window: after the thread waited for work, or stood aside on purpose (time
    /// it did not want the CPU is not starvation).
    pub fn restart(&mut self) {
        self.window_start = Instant::now();
        self.cpu_at_start = thread_cpu_time();
    }

    /// Called between units of work: once a window has passed, moves the thread to the
    /// priority its share of the window calls for.
    pub fn working(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.window_start) < SHARE_WINDOW {
            return;
        }
        let Some(cpu) = thread_cpu_time() else {
            return;
        };
        if let Some(to) = self.next(now, cpu) {
            lower_priority(to);
        }
    }

    /// The priority to move to for a window ending at `now` with the thread's CPU time `cpu`, if
    /// it differs from the current one; starts the next window.
    fn next(&mut self, now: Instant, cpu: Duration) -> Option<Priority> {
        let wall = now.duration_since(self.window_start);
        let used = cpu.saturating_sub(self.cpu_at_start.unwrap_or(cpu));
        self.window_start = now;
        self.cpu_at_start = Some(cpu);
        let starved = used.as_secs_f64() < wall.as_secs_f64() * STARVED_BELOW;
        let want = if starved {
            Priority::Low
        } else {
            Priority::Idle
        };
        (want != self.at).then(|| {
            self.at = want;
            want
        })
    }
}

/// CPU time the calling thread has used (Linux's per-thread clock), if the platform tells.
fn thread_cpu_time() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we pass and nothing else.
        let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
        ok.then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    #[cfg(not(target_os = "linux"))]
    None
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

/// Sets the calling thread's priority below callers'. On Linux the nice value and the
/// scheduling policy are per thread, and `setpriority(PRIO_PROCESS, 0, ..)` /
/// `sched_setscheduler(0, ..)` apply to the calling thread only; elsewhere they would apply to
/// the whole process, so nothing is done. The nice value is 10 either way (the idle policy
/// ignores it, and a move back to the normal policy keeps it). Failure is harmless (the thread
/// keeps its priority, or nice 10 instead of idle).
fn lower_priority(priority: Priority) {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler reads the `sched_param` we pass and setpriority reads no memory
    // of ours; both change only the calling thread's scheduling.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let policy = match priority {
            Priority::Low => libc::SCHED_OTHER,
            Priority::Idle => libc::SCHED_IDLE,
        };
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
        libc::sched_setscheduler(0, policy, &param);
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
                matches!(policy, libc::SCHED_IDLE | libc::SCHED_OTHER),
                "policy {policy}"
            );
            assert_eq!(nice, BACKGROUND_NICE);
            let worker = std::thread::spawn(policy_and_nice).join().unwrap();
            assert_eq!(worker, (policy, nice));
            // A starving thread's guard moves it to nice 10 and back.
            lower_priority(Priority::Low);
            assert_eq!(policy_and_nice(), (libc::SCHED_OTHER, BACKGROUND_NICE));
            lower_priority(Priority::Idle);
            assert_eq!(policy_and_nice(), (policy, nice));
        })
        .unwrap();
        idle.join().unwrap();
        assert_eq!(
            policy_and_nice().0,
            libc::SCHED_OTHER,
            "the caller is untouched"
        );
    }

    #[test]
    fn a_guard_moves_its_thread_up_in_a_starved_window_and_back_down_after() {
        let start = Instant::now();
        let mut guard = StarvationGuard {
            window_start: start,
            cpu_at_start: Some(Duration::ZERO),
            at: Priority::Idle,
        };
        let ms = Duration::from_millis;
        // 1 ms of CPU in a 100 ms window: starved.
        assert_eq!(guard.next(start + ms(100), ms(1)), Some(Priority::Low));
        // Still starved: no change to make.
        assert_eq!(guard.next(start + ms(200), ms(2)), None);
        // 30 ms in the next window: fed again.
        assert_eq!(guard.next(start + ms(300), ms(32)), Some(Priority::Idle));
        assert_eq!(guard.next(start + ms(400), ms(62)), None);
        // A window measured from a restart does not count the time before it.
        guard.window_start = start + ms(1_000);
        guard.cpu_at_start = Some(ms(62));
        assert_eq!(guard.next(start + ms(1_100), ms(92)), None);
    }
}
