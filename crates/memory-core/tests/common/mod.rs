//! One test suite, every backend: the stores a test runs against. The embedded store always;
//! server-backed stores when their server is configured (see [`backends`]). A test asks for
//! [`backends`] and runs its body once per [`Backend`], each time in a fresh, isolated store.
//!
//! Include with `mod common;` from a test file. Each test binary compiles this file on its own,
//! so helpers one binary does not call are allowed to be dead there.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use memory_core::{Clock, Memory, MemoryConfig, Result, Storage, SystemClock};

/// A kind of store the suite runs against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file plus in-RAM indexes, short-term windows in RAM (the default).
    Embedded,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
        }
    }

    /// A fresh, empty store of this kind, isolated from every other test's.
    pub fn fresh_store(&self) -> TestStore {
        match self {
            Backend::Embedded => {
                let dir = tempfile::tempdir().expect("temporary directory");
                TestStore {
                    backend: self.clone(),
                    path: dir.path().join("ltm.db"),
                    _dir: dir,
                }
            }
        }
    }
}

/// The backends available in this run. Server-backed ones join when their server is
/// configured; when one is not, a line says it was skipped and why.
pub fn backends() -> Vec<Backend> {
    vec![Backend::Embedded]
}

/// One isolated store of a backend: open it (again and again, to test reopening) with
/// [`TestStore::open`]; it is removed when dropped.
#[derive(Debug)]
pub struct TestStore {
    pub backend: Backend,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestStore {
    /// Opens a handle on this store with the system clock.
    pub fn open(&self, config: MemoryConfig) -> Result<Memory> {
        self.open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens a handle on this store. Drop the previous handle first: a store has one handle.
    pub fn open_with_clock(&self, config: MemoryConfig, clock: Arc<dyn Clock>) -> Result<Memory> {
        match self.backend {
            Backend::Embedded => {
                Memory::open_with_clock(Storage::File(self.path.clone()), config, clock)
            }
        }
    }

    /// What the test names in assertion messages.
    pub fn label(&self) -> String {
        format!("{} store", self.backend.name())
    }
}
