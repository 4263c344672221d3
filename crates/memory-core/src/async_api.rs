//! The async facade for tokio. Short-term operations in RAM take microseconds, so they run inline;
//! with a short-term tier on a server (Redis) they are blocking work like the rest, and so is the
//! one append in a block of ids that waits for the next block from a long-term store on a server
//! (PostgreSQL). Everything that touches SQLite or scans an index runs as blocking work: on a
//! multi-thread runtime through `block_in_place` (the worker's other tasks move to another thread
//! first, so the runtime never waits on disk), on a current-thread runtime on the blocking pool.

use crate::consolidate::ConsolidationReport;
use crate::context::{Context, ContextQuery};
use crate::entry::{EntryId, MemoryEntry, NewEntry};
use crate::error::{Error, Result};
use crate::index::ListQuery;
use crate::memory::Memory;
use crate::query::{SearchHit, SearchQuery};

/// An async view of a [`Memory`]. Cheap to clone; must be used inside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), memory_core::Error> {
/// use memory_core::{AsyncMemory, Memory, MemoryConfig, NewEntry, Role, Storage};
///
/// let memory = AsyncMemory::new(Memory::open(Storage::InMemory, MemoryConfig::default())?);
/// let id = memory.insert(NewEntry::new("agent", "s", Role::User, "hello")).await?;
/// assert!(memory.get("agent", id).await?.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AsyncMemory {
    memory: Memory,
}

impl AsyncMemory {
    /// Wraps a store.
    pub fn new(memory: Memory) -> Self {
        AsyncMemory { memory }
    }

    /// The synchronous store behind this facade.
    pub fn sync(&self) -> &Memory {
        &self.memory
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Memory) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        {
            // The call runs on this thread; tokio first hands the worker's other tasks to
            // another thread, so the runtime goes on running them while this one reads SQLite.
            // That saves the two cross-thread wake-ups of a trip to the blocking pool (about
            // 40 us on the development machine, longer than a get by id).
            return tokio::task::block_in_place(|| f(&self.memory));
        }
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || f(&memory))
            .await
            .map_err(|e| Error::TaskFailed(e.to_string()))?
    }

    /// See [`Memory::open_session`].
    pub async fn open_session(&self, agent: &str, session: &str) -> Result<()> {
        if self.memory.short_term_waits_on_server() {
            let (agent, session) = (agent.to_owned(), session.to_owned());
            return self
                .blocking(move |m| m.open_session(&agent, &session))
                .await;
        }
        self.memory.open_session(agent, session)
    }

    /// See [`Memory::append`].
    pub async fn append(&self, entry: NewEntry) -> Result<EntryId> {
        if self.memory.append_may_wait() {
            return self.blocking(move |m| m.append(entry)).await;
        }
        self.memory.append(entry)
    }

    /// See [`Memory::recent`].
    pub async fn recent(&self, agent: &str, session: &str, n: usize) -> Result<Vec<MemoryEntry>> {
        if self.memory.short_term_waits_on_server() {
            let (agent, session) = (agent.to_owned(), session.to_owned());
            return self.blocking(move |m| m.recent(&agent, &session, n)).await;
        }
        self.memory.recent(agent, session, n)
    }

    /// See [`Memory::insert`].
    pub async fn insert(&self, entry: NewEntry) -> Result<EntryId> {
        self.blocking(move |m| m.insert(entry)).await
    }

    /// See [`Memory::insert_batch`].
    pub async fn insert_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<EntryId>> {
        self.blocking(move |m| m.insert_batch(entries)).await
    }

    /// See [`Memory::get`].
    pub async fn get(&self, agent: &str, id: EntryId) -> Result<Option<MemoryEntry>> {
        let agent = agent.to_owned();
        self.blocking(move |m| m.get(&agent, id)).await
    }

    /// See [`Memory::forget`].
    pub async fn forget(&self, agent: &str, id: EntryId) -> Result<bool> {
        let agent = agent.to_owned();
        self.blocking(move |m| m.forget(&agent, id)).await
    }

    /// See [`Memory::list`].
    pub async fn list(&self, agent: &str, query: ListQuery) -> Result<Vec<MemoryEntry>> {
        let agent = agent.to_owned();
        self.blocking(move |m| m.list(&agent, &query)).await
    }

    /// See [`Memory::count`].
    pub async fn count(&self, agent: &str) -> Result<u64> {
        let agent = agent.to_owned();
        self.blocking(move |m| m.count(&agent)).await
    }

    /// See [`Memory::search`]. Runs on the blocking pool: it scans indexes and reads SQLite.
    pub async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>> {
        self.blocking(move |m| m.search(&query)).await
    }

    /// See [`Memory::build_context`].
    pub async fn build_context(&self, request: ContextQuery) -> Result<Context> {
        self.blocking(move |m| m.build_context(&request)).await
    }

    /// See [`Memory::consolidate`].
    pub async fn consolidate(&self) -> Result<ConsolidationReport> {
        self.blocking(|m| m.consolidate()).await
    }
}

// The handles are meant to be shared across threads and tasks; keep it that way.
const _: () = {
    const fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Memory>();
    shareable::<AsyncMemory>();
};

impl Memory {
    /// An async facade over this store.
    pub fn to_async(&self) -> AsyncMemory {
        AsyncMemory::new(self.clone())
    }
}
