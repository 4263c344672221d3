//! The SQLite file of the embedded long-term store, in write-ahead-log mode.
//!
//! All writes go through one writer connection behind a mutex (SQLite allows one writer at a time
//! anyway, and a single path keeps transactions simple). Reads take a connection from a small pool,
//! so they run while the writer writes: WAL readers see the last committed state and never block.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row};

use crate::clock::Timestamp;
use crate::config::Durability;
use crate::entry::{EntryId, MemoryEntry, Role, Tier};
use crate::error::{Error, Result};
use crate::store::embedder::StoredVectors;
use crate::store::{AccessRecord, QuarantinedEntry, Storage};

/// `PRAGMA application_id` of memory-core files ("MEMC"), so we never adopt someone else's database.
const APPLICATION_ID: i64 = 0x4D45_4D43;

/// Schema migrations, in order. Migration `i` takes the schema from version `i` to `i + 1`; the
/// version is kept in `PRAGMA user_version`. Never edit a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // v1: the entries table. Embeddings are little-endian f32 blobs; metadata is JSON text.
    "CREATE TABLE entries (
         id               INTEGER PRIMARY KEY,
         agent_id         TEXT    NOT NULL,
         session_id       TEXT    NOT NULL,
         role             INTEGER NOT NULL,
         content          TEXT    NOT NULL,
         embedding        BLOB,
         importance       REAL    NOT NULL,
         created_at       INTEGER NOT NULL,
         last_accessed_at INTEGER NOT NULL,
         access_count     INTEGER NOT NULL,
         metadata         TEXT
     );
     CREATE INDEX entries_by_agent_time ON entries(agent_id, created_at);
     CREATE INDEX entries_by_agent_session_time ON entries(agent_id, session_id, created_at);",
    // v2: no secondary indexes. Listing by agent, session and time is answered from the
    // engine's in-RAM index (rebuilt from this table on open), so a commit writes the table's
    // leaf page only, instead of that page plus a leaf of each index: about half the cost of a
    // single-entry commit, and a third more batched inserts per second, on the development
    // machine.
    "DROP INDEX IF EXISTS entries_by_agent_time;
     DROP INDEX IF EXISTS entries_by_agent_session_time;",
    // v3: facts about the store (the embedding dimension, so that a file is never opened with
    // another one), and the quarantine: rows that cannot be read back or indexed (written by an
    // older version, or by hand) are moved here on open, whole, with the reason, instead of
    // making the store unopenable. Columns are untyped on purpose: a quarantined value may be
    // anything.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE quarantine (
         id INTEGER PRIMARY KEY, agent_id, session_id, role, content, embedding, importance,
         created_at, last_accessed_at, access_count, metadata,
         reason TEXT NOT NULL, quarantined_at INTEGER NOT NULL
     );",
    // v4: the change log that index snapshots are stamped against (`store/snapshot.rs`): one
    // row per transaction that inserted or deleted entries, with the ids it touched (little-endian
    // u64s) and a random token, so that a snapshot can tell this file's history from another
    // copy's. Rows before the newest snapshot's are pruned when it is saved.
    "CREATE TABLE index_log (seq INTEGER PRIMARY KEY, token INTEGER NOT NULL, ids BLOB NOT NULL);",
    // v5: retrieval counts written back since v5, in a narrow table of their own: one row per
    // entry retrieved (count and last access time), added to the base counts kept in `entries`
    // (written at insert, and holding what older versions wrote) when an entry is read. Adding
    // to the wide rows of `entries` rewrote a whole page (rows with their 1.5 KB embeddings)
    // per entry: a write-back of 16,600 entries' counts wrote 164 MB of log, 0.4 MB here. A row
    // exists only for an id stored in `entries`, and goes with it.
    "CREATE TABLE access (id INTEGER PRIMARY KEY, count INTEGER NOT NULL, last_at INTEGER NOT NULL);",
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The columns of `entries`, in the order `entry_from_row` reads them (a macro, so that the
/// statements below are string literals and need no formatting per call).
macro_rules! columns {
    () => {
        "id, agent_id, session_id, role, content, embedding, importance, created_at, \
         last_accessed_at, access_count, metadata"
    };
}

const INSERT_ENTRY: &str = concat!(
    "INSERT OR IGNORE INTO entries (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
);
/// One entry with its retrieval counts: the columns of `entries`, then the count and time of
/// its row in `access` (NULL without one), which `entry_from_row` adds to the base columns.
/// Scalar subqueries, not a LEFT JOIN: measured on a 126,650-entry file (random ids, ten to a
/// read transaction, as a search's `get_many`), a row cost 2.0-2.3 us alone, 2.4-2.7 us with
/// the subqueries and 3.8-4.3 us with the join, with `access` empty or holding an eighth of the
/// ids.
const SELECT_ENTRY: &str = concat!(
    "SELECT ",
    columns!(),
    ", (SELECT count FROM access a WHERE a.id = e.id), \
     (SELECT last_at FROM access a WHERE a.id = e.id) \
     FROM entries e WHERE id = ?1 AND agent_id = ?2"
);

/// The SQLite file of the embedded long-term store: rows by id, nothing else (the in-RAM
/// indexes answer every other question; see `store/embedded.rs`).
#[derive(Debug)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    /// Shared with the checkpointer, which pauses writes briefly to let the log restart.
    writer: Arc<Mutex<Connection>>,
    /// Idle read connections; empty and unused for `Storage::InMemory`.
    readers: Mutex<Vec<Reader>>,
    in_memory: bool,
    /// Checkpoints the WAL beside the writer (absent in memory).
    checkpointer: Option<Checkpointer>,
    /// Whether transactions that insert or delete entries append to `index_log` (only where
    /// index snapshots are kept: see `store/snapshot.rs`).
    change_log: bool,
    /// The store's lock file, held for the store's life (absent in memory).
    _lock: Option<StoreLock>,
    /// Keeps a `Storage::Temporary` directory alive as long as the store. Declared last: the
    /// directory goes after everything in it is closed.
    _temp_dir: Option<tempfile::TempDir>,
}

/// Rows written past which the checkpointer folds the WAL into the database file (about 4 to 8
/// MiB of log with 384-d embeddings).
const CHECKPOINT_ROWS: i64 = 2_000;

/// Frames in the log past which the checkpointer, after its passive round, pauses the writer to
/// fold in the rest (32 MiB of 16 KiB pages).
const RESTART_FRAMES: i64 = 2_048;

/// A thread with its own connection that checkpoints the WAL in PASSIVE mode (it never blocks
/// the writer or readers) when the writer has appended enough, or every few seconds.
///
/// The log restarts at its beginning only when a write starts with every frame already copied
/// into the database; under a steady stream of writes a passive checkpoint never quite catches
/// up, so the log would grow without bound (seen: 400 MB during a bulk load, every commit
/// extending the file). So once the log passes [`RESTART_FRAMES`], the checkpointer takes the
/// writer's lock and copies the frames written since its passive round: a short pause (those
/// frames only), after which the next commit starts the log over.
#[derive(Debug)]
struct Checkpointer {
    state: Arc<(Mutex<CheckpointState>, parking_lot::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct CheckpointState {
    /// Rows written since the last checkpoint (as told by the writer).
    rows: i64,
    shutdown: bool,
}

impl Checkpointer {
    fn start(path: &Path, writer: Arc<Mutex<Connection>>) -> Result<Checkpointer> {
        let conn =
            Connection::open_with_flags(path, file_flags(false)).map_err(|e| db_error(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| db_error(path, e))?;
        let state: Arc<(Mutex<CheckpointState>, parking_lot::Condvar)> = Arc::default();
        let shared = state.clone();
        let thread = crate::background::spawn(
            "memory-core-checkpoint",
            crate::background::Priority::Low,
            move || Checkpointer::run(&conn, &writer, &shared),
        )
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Checkpointer {
            state,
            thread: Some(thread),
        })
    }

    fn run(
        conn: &Connection,
        writer: &Mutex<Connection>,
        state: &(Mutex<CheckpointState>, parking_lot::Condvar),
    ) {
        let (lock, wake) = state;
        loop {
            {
                let mut s = lock.lock();
                if s.rows < CHECKPOINT_ROWS && !s.shutdown {
                    wake.wait_for(&mut s, std::time::Duration::from_secs(2));
                }
                if s.shutdown {
                    return;
                }
                s.rows = 0;
            }
            // A failed checkpoint loses nothing (the WAL keeps every frame); the next round, or
            // closing the last connection, tries again.
            if let Ok(frames) = passive_checkpoint(conn) {
                if frames >= RESTART_FRAMES {
                    let _ = passive_checkpoint(&writer.lock());
                }
            }
        }
    }

    /// Tells the checkpointer that a commit wrote `rows` rows.
    fn wrote(&self, rows: i64) {
        let (lock, wake) = &*self.state;
        let mut s = lock.lock();
        s.rows += rows;
        if s.rows >= CHECKPOINT_ROWS {
            wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.state.0.lock().shutdown = true;
        self.state.1.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How connections open the store's file: a plain path (never a `file:` URI), without SQLite's
/// per-connection mutex (each connection is used by one thread at a time).
fn file_flags(read_only: bool) -> OpenFlags {
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    };
    access | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Rejects file paths SQLite would not treat as a file of that name.
fn check_file_path(path: &Path) -> Result<()> {
    let problem = if path.as_os_str().is_empty() {
        "the path is empty"
    } else if path.as_os_str() == ":memory:" {
        "SQLite reads \":memory:\" as an in-memory database, not a file: use Storage::InMemory"
    } else if path.is_dir() {
        "the path is a directory; name a file in it"
    } else {
        return Ok(());
    };
    Err(Error::InvalidPath {
        path: path.to_path_buf(),
        reason: problem.into(),
    })
}

/// The file `path` names, as an absolute path without symbolic links (its directory exists):
/// what the store lock, the snapshot directory and SQLite all go by, so that two names of one
/// file (a link, a relative and an absolute path) share one lock. Absolute, it never begins with
/// `file:`, which SQLite (built to read URIs) would take for a URI naming another file than the
/// lock's. (Hard links stay two names, which nothing in a path tells apart: a file with
/// several is refused at open, `refuse_other_names`.)
fn real_file_path(path: &Path) -> Result<PathBuf> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::canonicalize(path) {
        Ok(real) => Ok(real),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let Some(name) = path.file_name() else {
                return Err(Error::InvalidPath {
                    path: path.to_path_buf(),
                    reason: "the path does not end in a file name".into(),
                });
            };
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = std::fs::canonicalize(dir.unwrap_or(Path::new("."))).map_err(io)?;
            Ok(dir.join(name))
        }
        Err(e) => Err(io(e)),
    }
}

/// Refuses a store file with hard links: each name would take a lock of its own, and SQLite,
/// which keeps the write-ahead log beside the name (`<name>-wal`), would give each a log of its
/// own, so writers through two names would overwrite each other's pages. Checked under the
/// lock, before SQLite opens the file; nothing is written.
fn refuse_other_names(database: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(database) {
            Ok(meta) if meta.nlink() > 1 => Err(Error::InvalidPath {
                path: database.to_path_buf(),
                reason: format!(
                    "the file has {} names (hard links); SQLite keeps a write-ahead log per \
                     name, so writers through two names would corrupt it: remove the other \
                     names, or copy the file",
                    meta.nlink()
                ),
            }),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                path: database.to_path_buf(),
                source,
            }),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = database;
        Ok(())
    }
}

/// An exclusive OS lock on `<database>.lock`, so that one store file has one writer. The OS
/// releases it when the file is closed, also when the process dies, so a crash never leaves a
/// stale lock behind. (SQLite's own locks are per transaction; two handles that each believe
/// they own the file would each hand out ids and index only their own rows.)
#[derive(Debug)]
struct StoreLock {
    _file: std::fs::File,
}

impl StoreLock {
    fn acquire(database: &Path) -> Result<StoreLock> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        // The lock belongs to the open file, which a child process forked by any thread of
        // this process shares until it executes its program: a handle closed just then leaves
        // the lock held for that moment. A short grace period tells that from another handle.
        let began = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if began.elapsed() < LOCK_GRACE => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::StoreLocked {
                        store: database.display().to_string(),
                        lock_file: path,
                    })
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(Error::Io { path, source })
                }
            }
        }
    }
}

/// How long opening waits for a store lock held elsewhere before reporting `StoreLocked`.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs a passive checkpoint and returns the number of frames in the log.
fn passive_checkpoint(c: &Connection) -> rusqlite::Result<i64> {
    // The row is (busy, frames in the log, frames checkpointed).
    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

/// Most idle read connections kept; more are opened under load and closed after use.
const MAX_IDLE_READERS: usize = 8;

impl SqliteStore {
    pub fn open(storage: &Storage, durability: Durability) -> Result<SqliteStore> {
        let (path, temp_dir) = match storage {
            Storage::File(p) => {
                check_file_path(p)?;
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                (real_file_path(p)?, None)
            }
            Storage::Temporary => {
                let dir = tempfile::Builder::new()
                    .prefix("memory-core-")
                    .tempdir()
                    .map_err(|source| Error::Io {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (dir.path().join("ltm.sqlite3"), Some(dir))
            }
            Storage::InMemory => (PathBuf::from(":memory:"), None),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => {
                return Err(Error::InvalidConfig(
                    "a PostgreSQL store is not an SQLite file".into(),
                ))
            }
        };
        let in_memory = matches!(storage, Storage::InMemory);
        // Taken before SQLite touches the file, and held as long as this store: a second handle
        // (in this process or another) is refused here rather than writing beside this one.
        let lock = if in_memory {
            None
        } else {
            let lock = StoreLock::acquire(&path)?;
            refuse_other_names(&path)?;
            Some(lock)
        };
        let writer = if in_memory {
            Connection::open_in_memory()
        } else {
            Connection::open_with_flags(&path, file_flags(false))
        }
        .map_err(|e| db_error(&path, e))?;
        configure(&writer, &path, durability, true)?;
        migrate(&writer, &path)?;
        let writer = Arc::new(Mutex::new(writer));
        let checkpointer = if in_memory {
            None
        } else {
            Some(Checkpointer::start(&path, writer.clone())?)
        };
        Ok(SqliteStore {
            path,
            writer,
            readers: Mutex::new(Vec::new()),
            in_memory,
            checkpointer,
            change_log: false,
            _lock: lock,
            _temp_dir: temp_dir,
        })
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        db_error(&self.path, e)
    }

    /// Runs `f` on a read connection. Readers never wait for the writer (WAL), except in memory.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        if self.in_memory {
            return f(&self.writer.lock()).map_err(|e| self.err(e));
        }
        let pooled = self.readers.lock().pop();
        let mut reader = match pooled {
            Some(r) => r,
            None => {
                let c = Connection::open_with_flags(&self.path, file_flags(true))
                    .map_err(|e| self.err(e))?;
                configure(&c, &self.path, Durability::ProcessCrash, false)?;
                Reader {
                    conn: c,
                    seen: None,
                    streak: 0,
                    mapped: true,
                }
            }
        };
        let out = f(&reader.conn).map_err(|e| self.err(e));
        reader.follow_writes();
        let mut idle = self.readers.lock();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(reader);
        }
        out
    }

    /// Runs `f` inside one write transaction on the writer connection: committed if `f` and
    /// the commit succeed, rolled back otherwise (also if `f` panics).
    fn write<T>(&self, f: impl FnOnce(&Connection) -> std::result::Result<T, Abort>) -> Result<T> {
        let conn = self.writer.lock();
        let rows_before = conn.total_changes() as i64;
        // BEGIN and COMMIT go through the statement cache: rusqlite's `Transaction` prepares
        // them anew on every call, a few microseconds of a single-entry write.
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| self.err(e))?;
        let tx = OpenTransaction(&conn);
        let out = f(&conn).map_err(|abort| match abort {
            Abort::Sql(e) => self.err(e),
            Abort::IdConflict(id) => Error::IdConflict {
                store: self.path.display().to_string(),
                id,
            },
        })?;
        conn.prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| self.err(e))?;
        std::mem::forget(tx);
        if let Some(c) = &self.checkpointer {
            c.wrote(conn.total_changes() as i64 - rows_before);
        }
        Ok(out)
    }

    /// Inserts entries in one transaction and returns, per entry, whether it was new. An entry
    /// whose id is already stored must be that same entry (same agent, session and text: a
    /// consolidation retried after its commit), and is left as it is; any other row under that id
    /// fails the whole transaction with `Error::IdConflict`, so no write is ever acknowledged
    /// without its row. Deferred access records ride along in the same transaction (see
    /// [`SqliteStore::record_access`]). Returns when the transaction is committed.
    pub fn insert(&self, entries: &[MemoryEntry], accesses: &[AccessRecord]) -> Result<Vec<bool>> {
        self.write(|tx| {
            apply_accesses(tx, accesses)?;
            let mut inserted = Vec::with_capacity(entries.len());
            let mut chunks = entries.chunks_exact(ROWS_PER_INSERT);
            if chunks.len() > 0 {
                let mut many = tx.prepare_cached(&INSERT_ROWS)?;
                for chunk in &mut chunks {
                    for (i, e) in chunk.iter().enumerate() {
                        bind_entry(&mut many, i * ENTRY_COLUMNS, e)?;
                    }
                    match many.raw_execute() {
                        Ok(_) => inserted.extend(std::iter::repeat_n(true, chunk.len())),
                        // An id already stored (a retried consolidation) fails the statement
                        // alone, which SQLite backs out whole; its rows go one by one instead.
                        Err(e) if is_primary_key_conflict(&e) => {
                            insert_one_by_one(tx, chunk, &mut inserted)?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            insert_one_by_one(tx, chunks.remainder(), &mut inserted)?;
            if self.change_log {
                let ids = entries
                    .iter()
                    .zip(&inserted)
                    .filter_map(|(e, &new)| new.then_some(e.id));
                log_change(tx, ids)?;
            }
            Ok(inserted)
        })
    }

    /// One entry of `agent`, or `None` (also when the id belongs to another agent).
    pub fn get(&self, agent: &str, id: EntryId) -> Result<Option<MemoryEntry>> {
        self.read(|c| {
            c.prepare_cached(SELECT_ENTRY)?
                .query_row(params![id.0 as i64, agent], entry_from_row)
                .optional()
        })
    }

    /// Several entries of `agent` by id, in the order of `ids`; unknown ids (and ids of other
    /// agents) are skipped.
    pub fn get_many(&self, agent: &str, ids: &[EntryId]) -> Result<Vec<MemoryEntry>> {
        self.read(|c| {
            // One read transaction for all of them: each statement outside a transaction is a
            // transaction of its own, and starting one takes SQLite's file-lock mutexes, which
            // concurrent readers of the process queue on.
            let _tx = if ids.len() > 1 {
                c.prepare_cached("BEGIN")?.execute([])?;
                Some(OpenTransaction(c))
            } else {
                None
            };
            let mut stmt = c.prepare_cached(SELECT_ENTRY)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(e) = stmt
                    .query_row(params![id.0 as i64, agent], entry_from_row)
                    .optional()?
                {
                    out.push(e);
                }
            }
            Ok(out)
        })
    }

    /// Deletes one entry of `agent`, with its retrieval counts. Returns whether it existed.
    pub fn delete(&self, agent: &str, id: EntryId) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM entries WHERE id = ?1 AND agent_id = ?2")?
                .execute(params![id.0 as i64, agent])?;
            if n > 0 {
                delete_access(tx, id)?;
                if self.change_log {
                    log_change(tx, std::iter::once(id))?;
                }
            }
            Ok(n > 0)
        })
    }

    /// Number of entries of all agents.
    pub fn count_all(&self) -> Result<u64> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
    }

    /// The largest id stored, if any.
    pub fn max_id(&self) -> Result<Option<u64>> {
        self.read(|c| {
            c.query_row("SELECT MAX(id) FROM entries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
        })
        .map(|v| v.map(|x| x as u64))
    }

    /// Applies deferred access records in a transaction of their own: for each id still stored,
    /// adds `count` and keeps the later access time (see [`apply_accesses`]).
    pub fn record_access(&self, accesses: &[AccessRecord]) -> Result<()> {
        if accesses.is_empty() {
            return Ok(());
        }
        self.write(|tx| Ok(apply_accesses(tx, accesses)?))
    }

    /// Visits every entry in id order, for rebuilding the in-RAM indexes on open. A row that
    /// cannot be read back whole, or whose embedding cannot be indexed (see [`row_problem`]), is
    /// not visited: its id and the reason are returned, for [`SqliteStore::quarantine`].
    pub fn scan_for_index(
        &self,
        dimension: usize,
        mut visit: impl FnMut(StoredRow<'_>) -> Result<()>,
    ) -> Result<Vec<(EntryId, String)>> {
        let mut failed = None;
        let mut bad = Vec::new();
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, agent_id, session_id, role, created_at, content, embedding, metadata, \
                 importance, last_accessed_at, access_count FROM entries ORDER BY id",
            )?;
            let mut rows = stmt.query([])?;
            let mut embedding = Vec::new();
            while let Some(r) = rows.next()? {
                let id = EntryId(r.get::<_, i64>(0)? as u64);
                let row = match decode_stored_row(r, dimension, &mut embedding) {
                    Ok(row) => row,
                    Err(problem) => {
                        bad.push((id, problem));
                        continue;
                    }
                };
                if let Err(e) = visit(row) {
                    failed = Some(e);
                    break;
                }
            }
            Ok(())
        })?;
        failed.map_or(Ok(bad), Err)
    }

    /// Moves rows into the quarantine table, whole (the base columns as stored), with the reason,
    /// in one transaction; their retrieval counts in `access` are dropped with them.
    pub fn quarantine(&self, rows: &[(EntryId, String)], now: Timestamp) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut copy = tx.prepare_cached(
                "INSERT OR REPLACE INTO quarantine SELECT id, agent_id, session_id, role, content, \
                 embedding, importance, created_at, last_accessed_at, access_count, metadata, \
                 ?2, ?3 FROM entries WHERE id = ?1",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM entries WHERE id = ?1")?;
            for (id, reason) in rows {
                copy.execute(params![id.0 as i64, reason, now.0])?;
                delete.execute(params![id.0 as i64])?;
                delete_access(tx, *id)?;
            }
            if self.change_log {
                log_change(tx, rows.iter().map(|r| r.0))?;
            }
            Ok(())
        })
    }

    /// The rows in quarantine: id, agent (as stored, lossily decoded), reason.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedEntry>> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT id, CAST(agent_id AS TEXT), reason FROM quarantine ORDER BY id")?;
            let rows = stmt.query_map([], |r| {
                Ok(QuarantinedEntry {
                    id: EntryId(r.get::<_, i64>(0)? as u64),
                    agent_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    reason: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The embedding dimension the store was created with: as recorded, else (files of schema
    /// v2) the length of a stored embedding, else `None` (no embedding stored yet).
    pub fn stored_dimension(&self) -> Result<Option<usize>> {
        self.read(|c| {
            let recorded: Option<String> = c
                .query_row(
                    "SELECT value FROM meta WHERE key = 'embedding_dim'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(v) = recorded {
                return Ok(v.parse::<usize>().ok());
            }
            let bytes: Option<i64> = c
                .query_row(
                    "SELECT length(embedding) FROM entries WHERE typeof(embedding) = 'blob' \
                     GROUP BY length(embedding) ORDER BY COUNT(*) DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(bytes.map(|b| (b / 4) as usize))
        })
    }

    /// Records the embedding dimension of the store.
    pub fn record_dimension(&self, dimension: usize) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('embedding_dim', ?1)",
                params![dimension.to_string()],
            )?;
            Ok(())
        })
    }

    /// The embedder the store's vectors were made with, as recorded (`None` before the first
    /// record: a new store, or one written before embedders were recorded).
    pub fn recorded_embedder(&self) -> Result<Option<String>> {
        self.read(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'embedder'", [], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Records the embedder the store's vectors are made with (or the mark of a re-embedding
    /// begun), and forgets any re-embedding's progress.
    pub fn record_embedder(&self, id: &str) -> Result<()> {
        self.write(|tx| Ok(record_embedder(tx, id)?))
    }

    /// Runs SQLite's `quick_check` and reports the first problem, if any.
    pub fn check_integrity(&self) -> Result<()> {
        let report: String = self.read(|c| c.query_row("PRAGMA quick_check", [], |r| r.get(0)))?;
        if report == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt {
                store: self.path.display().to_string(),
                detail: report,
            })
        }
    }

    /// Size of the database file plus its WAL, in bytes (0 in memory).
    pub fn disk_bytes(&self) -> u64 {
        if self.in_memory {
            return 0;
        }
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        [&self.path, &wal]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Turns on the change log that index snapshots are stamped against.
    pub fn with_change_log(mut self) -> Self {
        self.change_log = !self.in_memory;
        self
    }

    /// The identity of this database file: a random number kept in the meta table, created on
    /// first use.
    pub fn store_id(&self) -> Result<u128> {
        let read = |c: &Connection| {
            c.query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        };
        if let Some(hex) = self.read(read)? {
            return u128::from_str_radix(&hex, 16).map_err(|_| Error::Corrupt {
                store: self.path.display().to_string(),
                detail: format!("the store id {hex:?} is not hexadecimal"),
            });
        }
        let fresh = u128::from(change_token()) << 64 | u128::from(change_token());
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?1)",
                params![format!("{fresh:032x}")],
            )?;
            Ok(())
        })?;
        let hex = self.read(read)?.unwrap_or_default();
        u128::from_str_radix(&hex, 16).map_err(|_| Error::Corrupt {
            store: self.path.display().to_string(),
            detail: format!("the store id {hex:?} is not hexadecimal"),
        })
    }

    /// The newest change-log row: (sequence number, token), if any.
    pub fn log_head(&self) -> Result<Option<(u64, u64)>> {
        self.read(|c| {
            c.query_row(
                "SELECT seq, token FROM index_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
        })
    }

    /// The token of change-log row `seq`, if it is kept.
    pub fn log_token(&self, seq: u64) -> Result<Option<u64>> {
        self.read(|c| {
            c.query_row(
                "SELECT token FROM index_log WHERE seq = ?1",
                params![seq as i64],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|t| t.map(|t| t as u64))
    }

    /// The ids changed by transactions after `seq`, each once, in the order first changed.
    pub fn log_ids_after(&self, seq: u64) -> Result<Vec<EntryId>> {
        let blobs: Vec<Vec<u8>> = self.read(|c| {
            let mut stmt = c.prepare("SELECT ids FROM index_log WHERE seq > ?1 ORDER BY seq")?;
            let rows = stmt.query_map(params![seq as i64], |r| r.get::<_, Vec<u8>>(0))?;
            rows.collect()
        })?;
        let mut seen = rustc_hash::FxHashSet::default();
        let mut ids = Vec::new();
        for blob in blobs {
            for chunk in blob.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                let id = EntryId(u64::from_le_bytes(b));
                if seen.insert(id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Drops change-log rows before `seq` (the stamp of the newest snapshot saved, whose own row
    /// is kept for the next open to check).
    pub fn prune_log(&self, seq: u64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM index_log WHERE seq < ?1", params![seq as i64])?;
            Ok(())
        })
    }

    /// Visits the rows of `ids` for the snapshot loader: `Some(row)` for a stored row,
    /// `None` for an id with no row. Rows that cannot be read back or indexed are returned
    /// (id and reason), not visited, as in [`SqliteStore::scan_for_index`].
    pub fn rows_for_replay(
        &self,
        ids: &[EntryId],
        dimension: usize,
        mut visit: impl FnMut(EntryId, Option<StoredRow<'_>>) -> Result<()>,
    ) -> Result<Vec<(EntryId, String)>> {
        let mut failed = None;
        let mut bad = Vec::new();
        self.read(|c| {
            let _tx = {
                c.prepare_cached("BEGIN")?.execute([])?;
                OpenTransaction(c)
            };
            let mut stmt = c.prepare_cached(
                "SELECT id, agent_id, session_id, role, created_at, content, embedding, metadata, \
                 importance, last_accessed_at, access_count FROM entries WHERE id = ?1",
            )?;
            let mut embedding = Vec::new();
            for &id in ids {
                let mut rows = stmt.query(params![id.0 as i64])?;
                let outcome = match rows.next()? {
                    None => visit(id, None),
                    Some(r) => match decode_stored_row(r, dimension, &mut embedding) {
                        Ok(row) => visit(id, Some(row)),
                        Err(problem) => {
                            bad.push((id, problem));
                            continue;
                        }
                    },
                };
                if let Err(e) = outcome {
                    failed = Some(e);
                    break;
                }
            }
            Ok(())
        })?;
        failed.map_or(Ok(bad), Err)
    }

    /// Folds the WAL back into the main file.
    pub fn checkpoint(&self) -> Result<()> {
        self.writer
            .lock()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(|e| self.err(e))
    }
}

/// Re-embedding over the file's rows (see [`crate::store::embedder`]).
impl StoredVectors for &SqliteStore {
    fn progress(&mut self) -> Result<Option<EntryId>> {
        let through: Option<String> = self.read(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE key = 'reembedded_through'",
                [],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(through.and_then(|t| t.parse().ok()).map(EntryId))
    }

    fn count(&mut self) -> Result<u64> {
        self.count_all()
    }

    fn contents_after(
        &mut self,
        after: Option<EntryId>,
        limit: usize,
    ) -> Result<Vec<(EntryId, String)>> {
        // Ids are below 2^63 (`MAX_ID`); -1 is below every one.
        let after = after.map_or(-1, |id| id.0 as i64);
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, content FROM entries WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after, limit as i64])?;
            let mut out = Vec::with_capacity(limit);
            while let Some(r) = rows.next()? {
                let id = EntryId(r.get::<_, i64>(0)? as u64);
                // Damaged content is left to the open's scan, which sets the row aside.
                if let rusqlite::types::ValueRef::Text(text) = r.get_ref(1)? {
                    if let Ok(text) = std::str::from_utf8(text) {
                        out.push((id, text.to_owned()));
                    }
                }
            }
            Ok(out)
        })
    }

    fn write_vectors(&mut self, rows: &[(EntryId, Option<Vec<f32>>)]) -> Result<()> {
        let Some(&(last, _)) = rows.last() else {
            return Ok(());
        };
        self.write(|tx| {
            let mut update =
                tx.prepare_cached("UPDATE entries SET embedding = ?2 WHERE id = ?1")?;
            for (id, vector) in rows {
                update.execute(params![id.0 as i64, vector.as_deref().map(embedding_bytes)])?;
            }
            if self.change_log {
                log_change(tx, rows.iter().map(|r| r.0))?;
                // A snapshot's replay brings in rows added or removed after it, never a new
                // vector of a row it holds: every snapshot saved before this batch is made
                // unusable (the log row its stamp names is gone), so the next open builds the
                // indexes anew, also one after a crash between the end of the re-embedding and
                // the end of the open that ran it.
                tx.prepare_cached(
                    "DELETE FROM index_log WHERE seq < (SELECT max(seq) FROM index_log)",
                )?
                .execute([])?;
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('reembedded_through', ?1)",
            )?
            .execute(params![last.0.to_string()])?;
            Ok(())
        })
    }

    fn record(&mut self, value: &str) -> Result<()> {
        self.record_embedder(value)
    }
}

/// Records the store's embedder (or a re-embedding's mark) and forgets re-embedding progress.
fn record_embedder(c: &Connection, id: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('embedder', ?1)",
        params![id],
    )?;
    c.execute("DELETE FROM meta WHERE key = 'reembedded_through'", [])?;
    Ok(())
}

/// Appends a row to the change log naming `ids` (nothing when there are none), inside the
/// caller's transaction.
fn log_change(c: &Connection, ids: impl Iterator<Item = EntryId>) -> rusqlite::Result<()> {
    let blob: Vec<u8> = ids.flat_map(|id| id.0.to_le_bytes()).collect();
    if blob.is_empty() {
        return Ok(());
    }
    c.prepare_cached("INSERT INTO index_log (token, ids) VALUES (?1, ?2)")?
        .execute(params![change_token() as i64, blob])?;
    Ok(())
}

/// A random token for a change-log row: two copies of a file that each went on writing give
/// their rows of the same sequence number different tokens.
pub(crate) fn change_token() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    crate::embed::splitmix64(nanos ^ u64::from(std::process::id()).rotate_left(32) ^ splitmix(n))
}

fn splitmix(n: u64) -> u64 {
    crate::embed::splitmix64(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Why a write transaction was rolled back.
enum Abort {
    Sql(rusqlite::Error),
    /// A row under this id holds another entry.
    IdConflict(EntryId),
}

impl From<rusqlite::Error> for Abort {
    fn from(e: rusqlite::Error) -> Self {
        Abort::Sql(e)
    }
}

/// Columns of a row of `entries`, bound in the order of [`columns!`].
const ENTRY_COLUMNS: usize = 11;

/// Rows per multi-row INSERT of a batch: one statement step instead of 64 (binding, stepping
/// and resetting a statement per row was about a fifth of a batch's time in SQLite), with
/// 704 parameters, far under SQLite's limit of 32,766.
const ROWS_PER_INSERT: usize = 64;

/// `INSERT INTO entries (..) VALUES (?, ..), ..` of [`ROWS_PER_INSERT`] rows. A plain INSERT,
/// not OR IGNORE: a conflict must fail the statement, so that its rows can be retried one by one
/// and each told apart (see [`SqliteStore::insert`]).
static INSERT_ROWS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let row = format!("({})", ["?"; ENTRY_COLUMNS].join(", "));
    format!(
        "INSERT INTO entries ({}) VALUES {}",
        columns!(),
        vec![row.as_str(); ROWS_PER_INSERT].join(", ")
    )
});

/// Binds `e` to the [`ENTRY_COLUMNS`] parameters after the first `offset` of `stmt`.
fn bind_entry(
    stmt: &mut rusqlite::Statement<'_>,
    offset: usize,
    e: &MemoryEntry,
) -> rusqlite::Result<()> {
    let metadata = (!e.metadata.is_null()).then(|| e.metadata.to_string());
    let embedding = e.embedding.as_deref().map(embedding_bytes);
    stmt.raw_bind_parameter(offset + 1, e.id.0 as i64)?;
    stmt.raw_bind_parameter(offset + 2, &*e.agent_id)?;
    stmt.raw_bind_parameter(offset + 3, &*e.session_id)?;
    stmt.raw_bind_parameter(offset + 4, role_code(e.role))?;
    stmt.raw_bind_parameter(offset + 5, e.content.as_str())?;
    stmt.raw_bind_parameter(offset + 6, embedding.as_deref())?;
    stmt.raw_bind_parameter(offset + 7, f64::from(e.importance()))?;
    stmt.raw_bind_parameter(offset + 8, e.created_at.0)?;
    stmt.raw_bind_parameter(offset + 9, e.last_accessed_at.0)?;
    stmt.raw_bind_parameter(offset + 10, e.access_count as i64)?;
    stmt.raw_bind_parameter(offset + 11, metadata)
}

/// Whether `e` is SQLite refusing a row whose primary key is taken.
fn is_primary_key_conflict(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Inserts entries one statement each, pushing per entry whether it was new. An id already
/// stored must hold that same entry (see [`SqliteStore::insert`]).
fn insert_one_by_one(
    tx: &Connection,
    entries: &[MemoryEntry],
    inserted: &mut Vec<bool>,
) -> std::result::Result<(), Abort> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(INSERT_ENTRY)?;
    for e in entries {
        bind_entry(&mut stmt, 0, e)?;
        let n = stmt.raw_execute()?;
        if n == 0 && !same_entry_stored(tx, e)? {
            return Err(Abort::IdConflict(e.id));
        }
        inserted.push(n == 1);
    }
    Ok(())
}

/// Whether the row stored under `e`'s id is `e` itself (agent, session and text).
fn same_entry_stored(c: &Connection, e: &MemoryEntry) -> rusqlite::Result<bool> {
    let stored: Option<(String, String, String)> = c
        .prepare_cached("SELECT agent_id, session_id, content FROM entries WHERE id = ?1")?
        .query_row(params![e.id.0 as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(stored.is_some_and(|(agent, session, content)| {
        *agent == *e.agent_id && *session == *e.session_id && content == e.content
    }))
}

/// A transaction that is open until this guard is forgotten (after COMMIT); dropping it rolls
/// back, so an error or a panic between BEGIN and COMMIT never leaves a connection inside a
/// transaction. For a read transaction, rolling back is how it ends.
struct OpenTransaction<'a>(&'a Connection);

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// Page size of new database files. A row with a 384-d f32 embedding takes about 2 KB, so a
/// 4 KiB page (SQLite's default) holds one or two rows and leaves much of itself empty; 16 KiB
/// pages hold seven or eight. Measured on the development machine, batched inserts of such rows
/// ran about 1.3-1.8x faster with 16 KiB pages, and the file is smaller.
const PAGE_SIZE: u32 = 16_384;

/// Bytes of the database file a read connection maps into memory. Reads of a mapped page are
/// a pointer into the OS page cache instead of a `pread` copy of the page into SQLite's cache;
/// pages beyond the mapping are read as usual. Virtual address space only: the pages are the OS
/// page cache's, shared by every connection, and not this process's heap.
const READER_MMAP_BYTES: u64 = 1 << 32;

/// Reads in a row that found (or did not find) a commit since the reader's previous one, after
/// which the reader stops (or starts again) mapping the file.
const MAP_SWITCH_AFTER: i32 = 4;

/// A pooled read connection, and whether it maps the database file.
///
/// A read transaction that begins after another connection committed makes SQLite drop the
/// reader's page cache and unmap the file (`pagerBeginReadTransaction` calls
/// `sqlite3OsUnfetch` when the WAL changed), so under a steady stream of commits every read maps
/// the file again and faults its pages back in: `munmap` was a quarter of a vector search's CPU
/// in a profile beside 100 commits a second. Read with `pread` instead, the same search used 313
/// instead of 380 us of CPU there, but 150-160 instead of 120 us with no writes, where the
/// mapping is kept. So a reader that meets a new commit at [`MAP_SWITCH_AFTER`] reads in a row
/// stops mapping, and maps again after as many reads that met none. What a read met is SQLite's
/// own account (`SQLITE_FCNTL_DATA_VERSION`, see [`data_version`]), so the commits of another
/// program writing to the file (the store's lock keeps out a second handle, not a `sqlite3`
/// shell) count as this handle's writer's do.
#[derive(Debug)]
struct Reader {
    conn: Connection,
    /// The data version of the database as this reader's previous read saw it.
    seen: Option<u32>,
    /// Reads in a row that met a new commit (positive) or none (negative).
    streak: i32,
    /// Whether `mmap_size` is [`READER_MMAP_BYTES`] (else 0).
    mapped: bool,
}

impl Reader {
    /// Counts whether the read just done met a commit made since this reader's previous read
    /// and switches the mapping for the next reads when the streak says so. Only a hint: if the
    /// data version cannot be read or the switch fails, the reader reads as it did.
    fn follow_writes(&mut self) {
        let Some(version) = data_version(&self.conn) else {
            return;
        };
        let changed = self.seen.is_some_and(|seen| seen != version);
        self.seen = Some(version);
        self.streak = match (changed, self.streak) {
            (true, s) if s > 0 => s.saturating_add(1),
            (true, _) => 1,
            (false, s) if s < 0 => s.saturating_sub(1),
            (false, _) => -1,
        };
        let want = if self.streak >= MAP_SWITCH_AFTER {
            false
        } else if self.streak <= -MAP_SWITCH_AFTER {
            true
        } else {
            self.mapped
        };
        if want != self.mapped {
            let bytes = if want { READER_MMAP_BYTES } else { 0 };
            if self
                .conn
                .execute_batch(&format!("PRAGMA mmap_size={bytes};"))
                .is_ok()
            {
                self.mapped = want;
            }
        }
    }
}

/// The data version of `conn`'s main database: SQLite's pager counts one more each time a
/// transaction of this connection finds that the database changed since its previous one (a
/// commit by any connection or process; also when it drops its page cache and unmaps the file),
/// without starting a transaction itself. `None` if SQLite refuses the file control.
fn data_version(conn: &Connection) -> Option<u32> {
    let mut version: std::ffi::c_uint = 0;
    // SAFETY: the handle is `conn`'s open connection, used on this thread only while `conn` is
    // borrowed; "main" is a NUL-terminated database name; SQLITE_FCNTL_DATA_VERSION writes one
    // unsigned int through the pointer, which points to one.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_DATA_VERSION,
            (&raw mut version).cast(),
        )
    };
    (rc == rusqlite::ffi::SQLITE_OK).then_some(version)
}

/// Connection settings. These pragmas are the durability contract of the store:
/// - `journal_mode=WAL`: a commit appends to the write-ahead log; readers keep reading the last
///   committed state while a writer works.
/// - `synchronous=NORMAL` (Durability::ProcessCrash): the WAL is not fsynced at each commit. A
///   committed transaction is in the OS page cache, so it survives a crash or kill of this process;
///   an OS crash or power loss may lose the last commits (never corrupts the file).
/// - `synchronous=FULL` (Durability::PowerLoss): the WAL is fsynced at every commit, so a commit
///   survives power loss.
/// - `wal_autocheckpoint=0`: the writer never checkpoints. A checkpoint copies the WAL into the
///   database file and fsyncs it, which would stall whichever commit crossed the threshold for
///   milliseconds; the checkpointer thread (see `Checkpointer`) does it beside the writer instead.
///   Durability is unchanged: a committed transaction is in the WAL either way.
/// - `journal_size_limit`: after a checkpoint resets the WAL, its file is truncated to 64 MiB.
/// - `cache_size`: 2 MiB of page cache for the writer (it appends at the right edge of one
///   B-tree and rereads little), 1 MiB per reader (readers map the file; the cache holds pages
///   read from the WAL); the OS page cache holds the rest of a hot file, and the engine's own
///   indexes live in RAM anyway.
/// - `mmap_size` (readers only): see [`READER_MMAP_BYTES`]; a reader that keeps meeting new
///   commits reads without the mapping for as long as they go on (see [`Reader`]). The writer
///   writes with `pwrite` as always, so durability does not depend on the mapping.
/// - `busy_timeout`: another process holding the write lock makes us wait, not fail at once.
/// - `page_size` (new files only): see [`PAGE_SIZE`].
fn configure(c: &Connection, path: &Path, durability: Durability, writer: bool) -> Result<()> {
    let err = |e| db_error(path, e);
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    c.set_prepared_statement_cache_capacity(32);
    if writer {
        let sync = match durability {
            Durability::ProcessCrash => "NORMAL",
            Durability::PowerLoss => "FULL",
        };
        // Only takes effect on a new, empty file (an existing file keeps its page size).
        c.execute_batch(&format!("PRAGMA page_size={PAGE_SIZE};"))
            .map_err(err)?;
        // journal_mode answers with a row; a file that is not a database fails here first.
        let _mode: String = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        c.execute_batch(&format!(
            "PRAGMA synchronous={sync}; PRAGMA cache_size=-2048; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=0; \
             PRAGMA journal_size_limit=67108864;"
        ))
        .map_err(err)?;
    } else {
        c.execute_batch(&format!(
            "PRAGMA cache_size=-1024; PRAGMA mmap_size={READER_MMAP_BYTES};"
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Brings the schema up to `SCHEMA_VERSION`, refusing files that are not ours or are newer.
fn migrate(c: &Connection, path: &Path) -> Result<()> {
    let err = |e| db_error(path, e);
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    let app_id: i64 = c
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(err)?;
    if version < 0 {
        return Err(Error::Corrupt {
            store: path.display().to_string(),
            detail: format!("schema version {version} is not one memory-core writes"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            store: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if app_id != APPLICATION_ID && app_id != 0 {
        return Err(Error::Corrupt {
            store: path.display().to_string(),
            detail: format!("application_id is {app_id:#x}, not memory-core's {APPLICATION_ID:#x}"),
        });
    }
    if version == 0 {
        let tables: i64 = c
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(err)?;
        if tables > 0 {
            return Err(Error::Corrupt {
                store: path.display().to_string(),
                detail: "the file holds tables but no memory-core schema version".into(),
            });
        }
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        c.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; PRAGMA application_id = {APPLICATION_ID}; COMMIT;",
            v + 1
        ))
        .map_err(|e| {
            let _ = c.execute_batch("ROLLBACK");
            err(e)
        })?;
    }
    Ok(())
}

/// The names of the columns `entry_from_row` reads ([`SELECT_ENTRY`]'s), in order.
const COLUMN_NAMES: [&str; 13] = [
    "id",
    "agent_id",
    "session_id",
    "role",
    "content",
    "embedding",
    "importance",
    "created_at",
    "last_accessed_at",
    "access_count",
    "metadata",
    "access.count",
    "access.last_at",
];

/// Maps SQLite's corruption codes and undecodable rows to `Error::Corrupt`, everything else to
/// `Error::Database`.
fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    if let rusqlite::Error::FromSqlConversionFailure(col, _, detail) = &e {
        // rusqlite reports `usize::MAX` when the failing column is not known.
        let detail = match COLUMN_NAMES.get(*col) {
            Some(name) => format!("column {name}: {detail}"),
            None => detail.to_string(),
        };
        return Error::Corrupt {
            store: path.display().to_string(),
            detail,
        };
    }
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) {
            return Error::Corrupt {
                store: path.display().to_string(),
                detail: msg.clone().unwrap_or_else(|| f.to_string()),
            };
        }
    }
    Error::Database {
        store: path.display().to_string(),
        source: Box::new(e),
    }
}

/// Adds retrieval counts and last-access times to the `access` table, inside the caller's
/// transaction: one narrow row per entry (about 20 bytes, hundreds to a page), so a write-back
/// of thousands of records dirties a few pages of it instead of one page of `entries` per
/// record. Ids no longer stored (an entry forgotten after its retrieval) get no row: a row is
/// made only for an id found in `entries`, and goes when its entry goes (`delete_access`), so
/// an id that has one is stored and its row is updated without looking at `entries` (a look
/// reads a wide leaf page per record: measured at 126,650 entries, 66-75 ms for the counts of
/// 16,600 entries without rows, 7-12 ms for as many updates). Applied in id order, so that each
/// page of either table is visited once. A count saturates at `u32::MAX`, as the entry's count
/// does.
fn apply_accesses(c: &Connection, accesses: &[AccessRecord]) -> rusqlite::Result<()> {
    if accesses.is_empty() {
        return Ok(());
    }
    let mut update = c.prepare_cached(
        "UPDATE access SET count = MIN(count + ?2, 4294967295), last_at = MAX(last_at, ?3) \
         WHERE id = ?1",
    )?;
    let mut insert = c.prepare_cached(
        "INSERT INTO access (id, count, last_at) \
         SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM entries WHERE id = ?1)",
    )?;
    let mut sorted: Vec<&AccessRecord> = accesses.iter().collect();
    sorted.sort_unstable_by_key(|a| a.id.0);
    for a in sorted {
        let row = params![a.id.0 as i64, i64::from(a.count), a.at.0];
        if update.execute(row)? == 0 {
            insert.execute(row)?;
        }
    }
    Ok(())
}

/// Drops the retrieval counts of a removed entry, inside the caller's transaction: a row left
/// behind would be read by nothing, and added to any later entry given the same id (ids start
/// after the largest stored, or at the clock, on open).
fn delete_access(c: &Connection, id: EntryId) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM access WHERE id = ?1")?
        .execute(params![id.0 as i64])?;
    Ok(())
}

fn role_code(r: Role) -> i64 {
    Role::ALL.iter().position(|x| *x == r).unwrap_or(0) as i64
}

/// An embedding as stored: its f32s in little-endian order. On a little-endian machine that is
/// the vector's own memory, borrowed without a copy.
fn embedding_bytes(v: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: the pointer and length cover exactly the slice's initialized memory, u8 has
        // alignment 1, and every byte of an f32 is a valid u8.
        let bytes = unsafe {
            std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v))
        };
        std::borrow::Cow::Borrowed(bytes)
    }
    #[cfg(not(target_endian = "little"))]
    std::borrow::Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn blob_floats(b: &[u8]) -> rusqlite::Result<impl Iterator<Item = f32> + '_> {
    if !b.len().is_multiple_of(4) {
        return Err(corrupt_column(
            5,
            "embedding blob length is not a multiple of 4".into(),
        ));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
}

/// Column `idx` as an integer, or `None` when NULL.
fn optional_integer(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<i64>> {
    match r.get_ref(idx)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        rusqlite::types::ValueRef::Integer(n) => Ok(Some(n)),
        other => Err(corrupt_column(
            idx,
            format!("not an integer but {}", other.data_type()),
        )),
    }
}

fn role_from_code(code: i64) -> rusqlite::Result<Role> {
    usize::try_from(code)
        .ok()
        .and_then(|i| Role::ALL.get(i).copied())
        .ok_or_else(|| corrupt_column(3, format!("unknown role code {code}")))
}

fn corrupt_column(idx: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, what.into())
}

/// An entry from a row of [`SELECT_ENTRY`]: its retrieval count is the base count of `entries`
/// plus the count in `access` (saturating at `u32::MAX`), its last access the later of the two.
fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<MemoryEntry> {
    let role = role_from_code(r.get(3)?)?;
    let added = optional_integer(r, 11)?;
    let added_at = optional_integer(r, 12)?;
    let embedding = match r.get_ref(5)?.as_blob_or_null()? {
        Some(b) => Some(blob_floats(b)?.collect::<Arc<[f32]>>()),
        None => None,
    };
    let metadata = match r.get_ref(10)?.as_str_or_null()? {
        None => serde_json::Value::Null,
        Some(s) => serde_json::from_str(s)
            .map_err(|e| corrupt_column(10, format!("metadata is not JSON: {e}")))?,
    };
    let text = |i: usize| -> rusqlite::Result<&str> {
        r.get_ref(i)?
            .as_str()
            .map_err(|e| corrupt_column(i, e.to_string()))
    };
    Ok(MemoryEntry {
        id: EntryId(r.get::<_, i64>(0)? as u64),
        agent_id: Arc::from(text(1)?),
        session_id: Arc::from(text(2)?),
        role,
        content: text(4)?.to_owned(),
        embedding,
        importance: Some(r.get::<_, f64>(6)? as f32),
        created_at: Timestamp(r.get(7)?),
        last_accessed_at: Timestamp(r.get::<_, i64>(8)?.max(added_at.unwrap_or(i64::MIN))),
        access_count: u32::try_from(r.get::<_, i64>(9)?)
            .unwrap_or(u32::MAX)
            .saturating_add(added.map_or(0, |n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))),
        metadata,
        tier: Tier::LongTerm,
    })
}

/// Why a stored row cannot be used, if it cannot: every column decodes as `entry_from_row`
/// decodes it (role, text, metadata JSON within serde_json's nesting limit), and the embedding
/// has the store's dimension, finite values, and a direction (it normalizes).
fn decode_stored_row<'r>(
    r: &'r Row<'_>,
    dimension: usize,
    embedding: &'r mut Vec<f32>,
) -> std::result::Result<StoredRow<'r>, String> {
    let text = |i: usize, name: &str| -> std::result::Result<&'r str, String> {
        r.get_ref(i)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(|e| format!("{name} is not text: {e}"))
    };
    let role = r
        .get::<_, i64>(3)
        .map_err(|e| e.to_string())
        .and_then(|code| role_from_code(code).map_err(|_| format!("unknown role code {code}")))?;
    let created_at = r
        .get::<_, i64>(4)
        .map_err(|e| format!("created_at is not an integer: {e}"))?;
    r.get::<_, f64>(8)
        .map_err(|e| format!("importance is not a number: {e}"))?;
    for (i, name) in [(9, "last_accessed_at"), (10, "access_count")] {
        r.get::<_, i64>(i)
            .map_err(|e| format!("{name} is not an integer: {e}"))?;
    }
    if let Some(json) = r
        .get_ref(7)
        .and_then(|v| v.as_str_or_null().map_err(Into::into))
        .map_err(|e| format!("metadata is not text: {e}"))?
    {
        // Parsed as `entry_from_row` parses it (into a `Value`, where serde_json enforces its
        // nesting limit; skipping the value would not).
        serde_json::from_str::<serde_json::Value>(json)
            .map_err(|e| format!("metadata cannot be read back: {e}"))?;
    }
    let blob = r
        .get_ref(6)
        .and_then(|v| v.as_blob_or_null().map_err(Into::into))
        .map_err(|e| format!("embedding is not a blob: {e}"))?;
    embedding.clear();
    if let Some(b) = blob {
        embedding
            .extend(blob_floats(b).map_err(|_| "embedding blob length is not a multiple of 4")?);
        crate::entry::check_embedding(embedding, dimension).map_err(|e| e.to_string())?;
        // Stored embeddings are unit length (normalized on insert): anything else would rank
        // wrongly under cosine similarity, or not at all (all zeros).
        let squared: f32 = crate::index::vector::kernel::dot(embedding, embedding);
        if !(0.99..=1.01).contains(&squared) {
            return Err(format!(
                "embedding is not unit length (squared norm {squared})"
            ));
        }
    }
    Ok(StoredRow {
        id: EntryId(r.get::<_, i64>(0).map_err(|e| e.to_string())? as u64),
        agent: text(1, "agent_id")?,
        session: text(2, "session_id")?,
        role,
        created_at: Timestamp(created_at),
        content: text(5, "content")?,
        embedding: blob.map(|_| embedding.as_slice()),
    })
}

/// One long-term row as read back on open, borrowed from the statement: what the in-RAM indexes
/// are rebuilt from.
pub(crate) struct StoredRow<'a> {
    pub id: EntryId,
    pub agent: &'a str,
    pub session: &'a str,
    pub role: Role,
    pub created_at: Timestamp,
    pub content: &'a str,
    pub embedding: Option<&'a [f32]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, content: &str) -> MemoryEntry {
        MemoryEntry::for_test(id, content, None)
    }

    /// The reader the pool hands out next: its mapping flag and SQLite's own `mmap_size`.
    fn pooled_mapping(store: &SqliteStore) -> (bool, i64) {
        let idle = store.readers.lock();
        let r = idle.last().expect("a pooled reader");
        let size: i64 = r
            .conn
            .query_row("PRAGMA mmap_size", [], |row| row.get(0))
            .unwrap();
        (r.mapped, size)
    }

    #[test]
    fn a_reader_that_keeps_meeting_commits_stops_mapping_the_file_and_maps_it_again_when_they_stop()
    {
        let store = SqliteStore::open(&Storage::Temporary, Durability::ProcessCrash).unwrap();
        let get = |id: u64| store.get("a", EntryId(id)).unwrap().map(|e| e.content);
        assert_eq!(get(1), None);
        assert!(pooled_mapping(&store).0 && pooled_mapping(&store).1 > 0);
        // A commit before every read: mapped for the first reads, then read with pread.
        for i in 1..=MAP_SWITCH_AFTER as u64 {
            store.insert(&[entry(i, &format!("e{i}"))], &[]).unwrap();
            assert_eq!(get(i), Some(format!("e{i}")));
            let mapped = i < MAP_SWITCH_AFTER as u64;
            assert_eq!(
                pooled_mapping(&store).0,
                mapped,
                "after {i} reads that met a commit"
            );
        }
        assert_eq!(pooled_mapping(&store), (false, 0));
        // Reads with no commit between them: mapped again after as many.
        for i in 1..=MAP_SWITCH_AFTER {
            assert_eq!(get(2), Some("e2".to_string()));
            assert_eq!(
                pooled_mapping(&store).0,
                i == MAP_SWITCH_AFTER,
                "after {i} quiet reads"
            );
        }
        let (mapped, size) = pooled_mapping(&store);
        assert!(mapped && size > 0, "{size}");
        // A single commit does not switch it.
        store.insert(&[entry(99, "late")], &[]).unwrap();
        assert_eq!(get(99), Some("late".to_string()));
        assert!(pooled_mapping(&store).0);
    }

    #[test]
    fn commits_by_another_connection_to_the_file_switch_the_mapping_as_this_handles_do() {
        // The store's lock keeps a second handle out, not a connection of another program (a
        // `sqlite3` shell, a backup tool): its commits unmap the readers' file as well.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let store =
            SqliteStore::open(&Storage::File(path.clone()), Durability::ProcessCrash).unwrap();
        store.insert(&[entry(1, "kept")], &[]).unwrap();
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE elsewhere(x INTEGER);")
            .unwrap();
        let get = || store.get("a", EntryId(1)).unwrap().map(|e| e.content);
        assert_eq!(get().as_deref(), Some("kept"));
        for i in 1..=MAP_SWITCH_AFTER {
            other
                .execute("INSERT INTO elsewhere VALUES (?1)", [i])
                .unwrap();
            assert_eq!(get().as_deref(), Some("kept"));
            assert_eq!(
                pooled_mapping(&store).0,
                i < MAP_SWITCH_AFTER,
                "after {i} commits"
            );
        }
        assert_eq!(pooled_mapping(&store), (false, 0));
        for i in 1..=MAP_SWITCH_AFTER {
            assert_eq!(get().as_deref(), Some("kept"));
            assert_eq!(
                pooled_mapping(&store).0,
                i == MAP_SWITCH_AFTER,
                "after {i} quiet reads"
            );
        }
    }

    #[test]
    fn a_large_batch_tells_new_entries_from_retried_ones_and_refuses_a_conflict_whole() {
        // 150 rows: two full multi-row statements and a remainder written row by row.
        let store = SqliteStore::open(&Storage::InMemory, Durability::ProcessCrash).unwrap();
        let batch: Vec<MemoryEntry> = (1..=150)
            .map(|i| {
                let mut e = entry(i, &format!("entry {i}"));
                e.embedding = Some(vec![i as f32, -0.5, 0.25].into());
                e.metadata = serde_json::json!({ "n": i });
                e
            })
            .collect();
        // Stored before: one row of each statement and one of the remainder.
        let retried = [10, 70, 140];
        let before: Vec<MemoryEntry> = retried.iter().map(|&i| batch[i].clone()).collect();
        store.insert(&before, &[]).unwrap();
        let inserted = store.insert(&batch, &[]).unwrap();
        let expected: Vec<bool> = (0..150).map(|i| !retried.contains(&i)).collect();
        assert_eq!(inserted, expected);
        assert_eq!(store.count_all().unwrap(), 150);
        for e in &batch {
            assert_eq!(store.get("a", e.id).unwrap().as_ref(), Some(e));
        }
        // Another entry under a stored id in the second statement: nothing of the batch lands.
        let mut next: Vec<MemoryEntry> = (151..=300).map(|i| entry(i, "later")).collect();
        next[100] = entry(20, "someone else");
        let err = store.insert(&next, &[]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::IdConflict {
                    id: EntryId(20),
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(store.count_all().unwrap(), 150);
        assert_eq!(
            store.get("a", EntryId(20)).unwrap().unwrap().content,
            "entry 20"
        );
    }

    /// The rows of the `access` table: (id, count, last access).
    fn access_rows(store: &SqliteStore) -> Vec<(i64, i64, i64)> {
        let c = store.writer.lock();
        let mut stmt = c
            .prepare("SELECT id, count, last_at FROM access ORDER BY id")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    fn access(id: u64, count: u32, at: i64) -> AccessRecord {
        AccessRecord {
            id: EntryId(id),
            count,
            at: Timestamp(at),
        }
    }

    /// Retrieval counts go to the narrow `access` table, not into the entries' wide rows: a
    /// write-back of counts for every entry writes a few pages of log, where updating each row
    /// rewrote every page of the table (about 200 here; 10,000 pages, 164 MB, per second of
    /// searches on a 126,650-entry store).
    #[test]
    fn writing_back_retrieval_counts_of_many_entries_writes_a_few_pages_of_log() {
        let store = SqliteStore::open(&Storage::Temporary, Durability::ProcessCrash).unwrap();
        let n = 2_000u64;
        let batch: Vec<MemoryEntry> = (1..=n)
            .map(|i| {
                let mut v = vec![0.0f32; 384];
                v[(i % 384) as usize] = 1.0;
                MemoryEntry::for_test(
                    i,
                    &format!("entry {i} with some words of text to store"),
                    Some(v),
                )
            })
            .collect();
        for chunk in batch.chunks(500) {
            store.insert(chunk, &[]).unwrap();
        }
        let wal = PathBuf::from(format!("{}-wal", store.path().display()));
        let wal_bytes = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        let truncate_log = || {
            // A TRUNCATE checkpoint is turned away while the checkpointer thread runs a round.
            for _ in 0..100 {
                store.checkpoint().unwrap();
                if wal_bytes() == 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert_eq!(wal_bytes(), 0, "the checkpoint truncates the log");
        };
        truncate_log();
        let table_pages: i64 = store
            .writer
            .lock()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        assert!(table_pages > 150, "{table_pages}");
        // First counts of every entry (new rows), then more (the rows updated).
        for (round, at) in [(1, 1_000), (2, 2_000)] {
            let records: Vec<AccessRecord> = (1..=n).map(|i| access(i, 2, at)).collect();
            store.record_access(&records).unwrap();
            let frames = wal_bytes().saturating_sub(32) / (u64::from(PAGE_SIZE) + 24);
            assert!(
                frames > 0 && frames * 20 < table_pages as u64,
                "{frames} pages of log for the counts of {n} entries in {table_pages} pages"
            );
            assert_eq!(access_rows(&store).len(), n as usize);
            let e = store.get("a", EntryId(n)).unwrap().unwrap();
            assert_eq!(
                (e.access_count, e.last_accessed_at),
                (2 * round, Timestamp(at))
            );
            truncate_log();
        }
    }

    #[test]
    fn an_entry_reads_its_base_counts_plus_the_recorded_ones_saturating_at_u32_max() {
        let store = SqliteStore::open(&Storage::InMemory, Durability::ProcessCrash).unwrap();
        let mut e = entry(1, "counted");
        e.access_count = u32::MAX - 2;
        e.last_accessed_at = Timestamp(50);
        store.insert(&[e, entry(2, "plain")], &[]).unwrap();
        let counts = |id: u64| {
            let e = store.get("a", EntryId(id)).unwrap().unwrap();
            (e.access_count, e.last_accessed_at.0)
        };
        assert_eq!(counts(2), (0, 1), "no row in access: the base alone");
        // An earlier access time than the base's does not go back.
        store.record_access(&[access(1, 1, 40)]).unwrap();
        assert_eq!(counts(1), (u32::MAX - 1, 50));
        // Rides along with an insert as well; the count in `access` stops at u32::MAX.
        store
            .insert(&[entry(3, "third")], &[access(1, u32::MAX, 70)])
            .unwrap();
        store.record_access(&[access(1, u32::MAX, 60)]).unwrap();
        assert_eq!(access_rows(&store), [(1, i64::from(u32::MAX), 70)]);
        assert_eq!(counts(1), (u32::MAX, 70));
        // A base count past u32 (an older file, or by hand): no overflow, no error.
        store
            .writer
            .lock()
            .execute(
                "UPDATE entries SET access_count = ?1 WHERE id = 1",
                [i64::MAX],
            )
            .unwrap();
        assert_eq!(counts(1), (u32::MAX, 70));
        let many = store.get_many("a", &[EntryId(2), EntryId(1)]).unwrap();
        assert_eq!(
            many.iter().map(|e| e.access_count).collect::<Vec<_>>(),
            [0, u32::MAX]
        );
    }

    #[test]
    fn a_removed_entry_takes_its_counts_along_and_later_counts_for_it_make_no_row() {
        let store = SqliteStore::open(&Storage::InMemory, Durability::ProcessCrash).unwrap();
        store
            .insert(&[entry(1, "one"), entry(2, "two"), entry(3, "three")], &[])
            .unwrap();
        let all: Vec<AccessRecord> = (1..=3).map(|i| access(i, 1, 10)).collect();
        store.record_access(&all).unwrap();
        assert_eq!(access_rows(&store).len(), 3);
        // Forgotten: its row goes in the same transaction.
        assert!(store.delete("a", EntryId(1)).unwrap());
        assert_eq!(access_rows(&store), [(2, 1, 10), (3, 1, 10)]);
        // Quarantined on open: likewise; the quarantine keeps the row's base columns.
        store
            .quarantine(&[(EntryId(2), "test".into())], Timestamp(20))
            .unwrap();
        assert_eq!(access_rows(&store), [(3, 1, 10)]);
        // Counts recorded afterwards for those ids, or an id never stored, make no row.
        store
            .record_access(&[access(1, 5, 30), access(2, 5, 30), access(99, 5, 30)])
            .unwrap();
        store
            .insert(&[entry(4, "four")], &[access(1, 5, 40), access(3, 2, 40)])
            .unwrap();
        assert_eq!(access_rows(&store), [(3, 3, 40)]);
        assert_eq!(store.get("a", EntryId(3)).unwrap().unwrap().access_count, 3);
    }

    #[test]
    fn an_id_holding_another_entry_fails_the_whole_write_and_the_same_entry_is_idempotent() {
        let store = SqliteStore::open(&Storage::InMemory, Durability::ProcessCrash).unwrap();
        assert_eq!(store.insert(&[entry(5, "first")], &[]).unwrap(), [true]);
        // The same entry again (a consolidation retried after its commit): not new, no error.
        assert_eq!(store.insert(&[entry(5, "first")], &[]).unwrap(), [false]);
        // Another entry under the same id, in a batch: refused whole, nothing of it written.
        let err = store
            .insert(&[entry(6, "fresh"), entry(5, "someone else")], &[])
            .unwrap_err();
        assert!(
            matches!(err, Error::IdConflict { id: EntryId(5), .. }),
            "{err}"
        );
        assert_eq!(store.count_all().unwrap(), 1);
        assert_eq!(
            store.get("a", EntryId(5)).unwrap().unwrap().content,
            "first"
        );
        assert!(store.get("a", EntryId(6)).unwrap().is_none());
    }
}
