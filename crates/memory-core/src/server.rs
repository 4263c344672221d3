//! What the server backends (PostgreSQL, Redis) share: a small tokio runtime of their own on
//! which the async clients run, and the bridge that lets the engine's synchronous calls wait on
//! them from any thread, including a thread that is itself inside a tokio runtime.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Error, Result, ServerProblem};

/// The runtime a server backend's clients (connection drivers, pools) live on.
///
/// The engine's API is synchronous and may be called from anywhere: a plain thread, a tokio
/// worker inside `block_in_place` (what `AsyncMemory` does on a multi-thread runtime), or the
/// blocking pool. `Runtime::block_on` panics inside a runtime context, so [`ServerRuntime::run`]
/// only uses it on threads without one; elsewhere it spawns the request onto this runtime and
/// waits on a channel.
pub(crate) struct ServerRuntime {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl std::fmt::Debug for ServerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRuntime").finish_non_exhaustive()
    }
}

impl ServerRuntime {
    /// A runtime with two worker threads named after `name`: enough to drive the connections
    /// (the work itself is the server's) while callers wait.
    pub fn new(name: &str) -> Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("memory-core-{name}"))
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                path: format!("<{name} client runtime>").into(),
                source: e,
            })?;
        Ok(ServerRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `request` on this runtime and waits for its result, from any thread.
    pub fn run<T, F>(&self, request: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        if Handle::try_current().is_err() {
            // No runtime on this thread: wait here (the workers drive the sockets).
            return self.handle.block_on(request);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(request.await);
        });
        rx.recv().map_err(|_| {
            Error::TaskFailed("a server request panicked or its runtime shut down".into())
        })?
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end and panics inside an async context (the
        // last handle may well be dropped in a tokio task); shutting down in the background
        // does neither. Open connections are closed by the server when their sockets go.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Retries of a request that failed because its connection was lost, before giving up.
pub(crate) const RETRIES: u32 = 3;

/// A random number, for names and tokens that must differ between calls and processes (no
/// crate needed: the std hasher is randomly keyed per process and rekeyed per call).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The pause before retry `attempt` (1-based): 50 ms, 100 ms, 200 ms.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.saturating_sub(1).min(6))
}

/// An `Error::Server` for `server`.
pub(crate) fn server_error(
    server: &str,
    problem: ServerProblem,
    source: Option<crate::error::BoxError>,
) -> Error {
    Error::Server {
        server: server.to_owned(),
        problem,
        source,
    }
}

/// What an I/O error while connecting means for the caller.
pub(crate) fn connect_problem(e: &std::io::Error) -> ServerProblem {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ServerProblem::ConnectionRefused,
        std::io::ErrorKind::TimedOut => ServerProblem::Timeout(Duration::ZERO),
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof => ServerProblem::ConnectionLost(e.to_string()),
        _ => ServerProblem::Unreachable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_works_outside_and_inside_a_tokio_runtime() {
        let rt = ServerRuntime::new("test").unwrap();
        assert_eq!(rt.run(async { Ok(1) }).unwrap(), 1);
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Inside a current-thread runtime's task: `block_on` would panic; `run` must not.
        let got = outer.block_on(async { rt.run(async { Ok(2) }) });
        assert_eq!(got.unwrap(), 2);
        // The last handle dropped inside an async context must not panic either.
        outer.block_on(async move { drop(rt) });
    }
}
