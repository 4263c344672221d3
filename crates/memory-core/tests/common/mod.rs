//! One test suite, every backend: the stores a test runs against. The embedded store always;
//! the server-backed store (PostgreSQL long-term + Redis short-term) when memory-core is built
//! with the `postgres` and `redis` features and `MEMORY_CORE_POSTGRES_URL` /
//! `MEMORY_CORE_REDIS_URL` name the servers (see [`backends`]). A test asks for [`backends`]
//! (or [`each_backend`]) and runs its body once per [`Backend`], each time in a fresh, isolated
//! store: its own PostgreSQL schema and Redis key prefix, deleted when the test's store drops.
//!
//! Include with `mod common;` from a test file. Each test binary compiles this file on its own,
//! so helpers one binary does not call are allowed to be dead there.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use memory_core::{
    Clock, ManualClock, Memory, MemoryConfig, Result, Storage, SystemClock, Timestamp,
};

/// A kind of store the suite runs against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file plus in-RAM indexes, short-term windows in RAM (the default).
    Embedded,
    /// PostgreSQL + pgvector for long-term memory, Redis for short-term memory: the shared
    /// backend many app instances use at once.
    #[cfg(all(feature = "postgres", feature = "redis"))]
    Servers {
        postgres_url: String,
        redis_url: String,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            #[cfg(all(feature = "postgres", feature = "redis"))]
            Backend::Servers { .. } => "postgres+redis",
        }
    }

    /// Whether several handles (and processes) may open one store at once.
    pub fn is_shared(&self) -> bool {
        !matches!(self, Backend::Embedded)
    }

    /// Whether short-term windows outlive the handle (and the process).
    pub fn short_term_survives_reopen(&self) -> bool {
        self.is_shared()
    }

    /// A fresh, empty store of this kind, isolated from every other test's.
    pub fn fresh_store(&self) -> TestStore {
        let dir = tempfile::tempdir().expect("temporary directory");
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        // Unique across the test binaries that run at once: pid, counter, time.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        TestStore {
            backend: self.clone(),
            path: dir.path().join("ltm.db"),
            name: format!("t_{}_{n}_{nanos:x}", std::process::id()),
            _dir: dir,
        }
    }
}

/// Whether server tests must run: with `MEMORY_CORE_REQUIRE_SERVERS=1` a missing server or
/// feature fails the test instead of skipping its server half.
fn servers_required() -> bool {
    std::env::var("MEMORY_CORE_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

fn env_url(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The backends available in this run. The server-backed one joins when it is built and its
/// servers are configured; when it is not, a line on stderr says it was skipped and why (once
/// per test binary), and with `MEMORY_CORE_REQUIRE_SERVERS=1` the test fails instead.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Embedded];
    match server_backend() {
        Ok(b) => out.push(b),
        Err(why) => {
            if servers_required() {
                panic!("MEMORY_CORE_REQUIRE_SERVERS=1 but the server backend cannot run: {why}");
            }
            static SAID: Once = Once::new();
            // Straight to stderr: libtest captures `eprintln!` of a passing test, and this
            // line is what tells a plain `cargo test` run that the server half did not run.
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "note: server backend (postgres+redis) tests skipped: {why}"
                );
            });
        }
    }
    out
}

/// Only the server-backed backend, for the multi-instance tests (empty when skipped, with the
/// same message and the same `MEMORY_CORE_REQUIRE_SERVERS` rule as [`backends`]).
pub fn shared_backends() -> Vec<Backend> {
    backends().into_iter().filter(Backend::is_shared).collect()
}

#[cfg(all(feature = "postgres", feature = "redis"))]
fn server_backend() -> std::result::Result<Backend, String> {
    match (
        env_url("MEMORY_CORE_POSTGRES_URL"),
        env_url("MEMORY_CORE_REDIS_URL"),
    ) {
        (Some(postgres_url), Some(redis_url)) => Ok(Backend::Servers {
            postgres_url,
            redis_url,
        }),
        (p, r) => {
            let mut unset = Vec::new();
            if p.is_none() {
                unset.push("MEMORY_CORE_POSTGRES_URL");
            }
            if r.is_none() {
                unset.push("MEMORY_CORE_REDIS_URL");
            }
            Err(format!(
                "{} unset (scripts/services.sh start; eval \"$(scripts/services.sh env)\")",
                unset.join(" and ")
            ))
        }
    }
}

#[cfg(not(all(feature = "postgres", feature = "redis")))]
fn server_backend() -> std::result::Result<Backend, String> {
    Err(
        "memory-core built without the `postgres` and `redis` features \
         (cargo test -p memory-core --features postgres,redis)"
            .into(),
    )
}

/// One isolated store of a backend: open it (again and again, to test reopening, or several
/// handles at once on a shared backend) with [`TestStore::open`]; it is removed when dropped.
#[derive(Debug)]
pub struct TestStore {
    pub backend: Backend,
    path: PathBuf,
    /// PostgreSQL schema and Redis key prefix of this store.
    name: String,
    _dir: tempfile::TempDir,
}

impl TestStore {
    /// Opens a handle on this store with the system clock.
    pub fn open(&self, config: MemoryConfig) -> Result<Memory> {
        self.open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens a handle on this store. On the embedded backend drop the previous handle first: a
    /// store file has one handle.
    pub fn open_with_clock(&self, config: MemoryConfig, clock: Arc<dyn Clock>) -> Result<Memory> {
        self.builder().with_config(config).with_clock(clock).open()
    }

    /// A builder of a handle on this store, for what [`TestStore::open`] leaves at its default.
    pub fn builder(&self) -> memory_core::MemoryBuilder {
        match &self.backend {
            Backend::Embedded => Memory::builder(Storage::File(self.path.clone())),
            #[cfg(all(feature = "postgres", feature = "redis"))]
            Backend::Servers { .. } => {
                let (pg, redis) = self.server_configs();
                Memory::builder(Storage::Postgres(pg))
                    .with_short_term(memory_core::ShortTermStorage::Redis(redis))
            }
        }
    }

    /// The server configurations of this store (schema and key prefix of its own).
    #[cfg(all(feature = "postgres", feature = "redis"))]
    pub fn server_configs(&self) -> (memory_core::PostgresConfig, memory_core::RedisConfig) {
        match &self.backend {
            Backend::Servers {
                postgres_url,
                redis_url,
            } => (
                memory_core::PostgresConfig::new(postgres_url.clone())
                    .with_schema(self.name.clone())
                    .with_pool_size(4)
                    .with_application_name(format!("memory-core-test {}", self.name)),
                memory_core::RedisConfig::new(redis_url.clone())
                    .with_prefix(format!("test:{}", self.name)),
            ),
            Backend::Embedded => panic!("the embedded backend has no servers"),
        }
    }

    /// The name of this store's PostgreSQL schema and Redis key prefix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How a child process opens this same store (see [`open_spec`]): pass it in an
    /// environment variable. The child must not drop a `TestStore`, which would delete it.
    pub fn spec(&self) -> String {
        match &self.backend {
            Backend::Embedded => format!("embedded\t{}", self.path.display()),
            #[cfg(all(feature = "postgres", feature = "redis"))]
            Backend::Servers {
                postgres_url,
                redis_url,
            } => format!("servers\t{postgres_url}\t{redis_url}\t{}", self.name),
        }
    }

    /// What the test names in assertion messages.
    pub fn label(&self) -> String {
        format!("{} store", self.backend.name())
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        #[cfg(all(feature = "postgres", feature = "redis"))]
        if self.backend.is_shared() {
            let (pg, redis) = self.server_configs();
            if let Err(e) = pg.destroy_store() {
                eprintln!("warning: could not drop test schema {}: {e}", self.name);
            }
            if let Err(e) = redis.destroy() {
                eprintln!("warning: could not delete test keys {}: {e}", self.name);
            }
        }
    }
}

/// Runs `body` once per backend on a fresh store opened with `config` and a manual clock
/// starting at one second past the epoch's first million microseconds.
pub fn each_backend(config: MemoryConfig, body: impl Fn(Memory, Arc<ManualClock>)) {
    each_backend_from(Timestamp(1_000_000_000), config, body)
}

/// [`each_backend`] with the manual clock starting at `start`.
pub fn each_backend_from(
    start: Timestamp,
    config: MemoryConfig,
    body: impl Fn(Memory, Arc<ManualClock>),
) {
    for backend in backends() {
        let store = backend.fresh_store();
        let clock = Arc::new(ManualClock::new(start));
        let m = store
            .open_with_clock(config.clone(), clock.clone())
            .unwrap_or_else(|e| panic!("opening a {}: {e}", store.label()));
        eprintln!("-- on the {}", store.label());
        body(m, clock);
    }
}

/// [`each_backend`] that also hands the body its [`TestStore`], to reopen it.
pub fn each_store(config: MemoryConfig, body: impl Fn(&TestStore, Memory, Arc<ManualClock>)) {
    for backend in backends() {
        let store = backend.fresh_store();
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000_000)));
        let m = store
            .open_with_clock(config.clone(), clock.clone())
            .unwrap_or_else(|e| panic!("opening a {}: {e}", store.label()));
        eprintln!("-- on the {}", store.label());
        body(&store, m, clock);
    }
}

/// Opens the store a [`TestStore::spec`] names (in a child process).
pub fn open_spec(spec: &str, config: MemoryConfig) -> Result<Memory> {
    builder_spec(spec).with_config(config).open()
}

/// A builder of a handle on the store a [`TestStore::spec`] names (in a child process).
pub fn builder_spec(spec: &str) -> memory_core::MemoryBuilder {
    let parts: Vec<&str> = spec.split('\t').collect();
    match parts.as_slice() {
        ["embedded", path] => Memory::builder(Storage::File(PathBuf::from(path))),
        #[cfg(all(feature = "postgres", feature = "redis"))]
        ["servers", postgres_url, redis_url, name] => {
            let store = TestStore {
                backend: Backend::Servers {
                    postgres_url: (*postgres_url).to_owned(),
                    redis_url: (*redis_url).to_owned(),
                },
                path: PathBuf::new(),
                name: (*name).to_owned(),
                _dir: tempfile::tempdir().expect("temporary directory"),
            };
            let builder = store.builder();
            // This process only borrows the store: it must outlive us.
            std::mem::forget(store);
            builder
        }
        _ => panic!("not a store spec: {spec:?}"),
    }
}
