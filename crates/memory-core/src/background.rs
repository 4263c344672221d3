//! Background threads of a store (the HNSW linker, the WAL checkpointer): started by name, at a
//! lower scheduling priority than the threads calling into the store.

use std::io;
use std::thread::JoinHandle;

/// Nice value of background threads: under load, the kernel runs callers' threads (and its own
/// writeback) first, so index and checkpoint upkeep does not show up in their latency, but the
/// upkeep is not starved either (a nice-10 thread still gets about a tenth of a busy core).
const BACKGROUND_NICE: i32 = 10;

/// Spawns a named thread that runs `f` at background priority.
pub(crate) fn spawn<F>(name: &str, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_priority();
            f()
        })
}

/// Lowers the calling thread's priority. On Linux the nice value is per thread, and
/// `setpriority(PRIO_PROCESS, 0, ..)` applies to the calling thread only; elsewhere it would
/// apply to the whole process, so nothing is done. Failure is harmless (the thread keeps the
/// default priority).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads no memory of ours; it only changes the calling thread's nice
    // value.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
}
