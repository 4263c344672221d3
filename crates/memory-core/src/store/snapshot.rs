//! Index snapshots of the embedded store: its in-RAM indexes saved beside the database file, in
//! `<database>.idx/`, so that opening a big store reads them back instead of rebuilding every
//! index (the HNSW graph above all) from every row.
//!
//! **Files.** `MANIFEST` stamps one set of snapshot files and names one file per agent
//! (`<seq>-<save>-<n>.agent`, with its size and CRC-32; `<save>` is random per save, so that no
//! save overwrites a file the current manifest names). The stamp says what the set covers: the
//! database's identity (a random store id in its meta table), the change-log row up to which it
//! covers (`index_log` in SQLite: one row per transaction that inserted or deleted entries, with
//! the ids and a random token), the format version, the embedding dimension, the quantization,
//! the graph parameters and the keyword analyzer. A save writes the agent files, then the
//! manifest, each to a temporary file that is fsynced and renamed, then fsyncs the directory;
//! files of older sets are removed only after that. A crash at any point leaves the previous
//! manifest with its files whole.
//!
//! **Open.** The manifest is read and every agent file memory-mapped and checked (checksums,
//! version, dimension, quantization, graph parameters, analyzer, store id, and every
//! cross-reference inside; the checksum and the scan of every vector run on a verifier thread while
//! the loader decodes the rest). The vector arena is not copied: the loaded index views it in the
//! mapped file ([`crate::index::column`]) and keeps the map for as long as it does (so a replaced
//! snapshot's files, once unlinked, hold their disk space until then). The stamp is also
//! checked against the database: its log row must still be there with the same token (else
//! the snapshot is older than the last one saved, or from a copy of the database that went on
//! differently, or the database was restored from a backup), and not newer than the database;
//! so must the newest row when the save's copy ended (the manifest's `reach`), since writes go
//! on during the copy and the files may hold them: a database without that row (restored from
//! a backup taken during a save, or commits lost in a system crash) would leave them in the
//! indexes with nothing in the log to undo them.
//! Then every id the log names after the stamp is brought in line with its row (added, or
//! removed when the row is gone), so entries forgotten after the snapshot do not come back. Any
//! failure is reported in a tracing event and the indexes are rebuilt from the rows.
//!
//! **When.** In the background when enough has changed (see [`due`]), on `Memory::checkpoint`,
//! and when the store is closed. A save's stamp is read while no write is between its commit
//! and its indexing (the write gate), so everything up to the stamp is in the indexes; what is
//! written after it is replayed from the log on the next open.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::MemoryConfig;
use crate::error::{Error, Result};
use crate::index::codec::{ensure, Check, Decoded, Decoder, Encoder, SnapshotDefect, Verifier};
use crate::index::snapshot::ReplayedRow;
use crate::index::vector::Quantization;
use crate::index::Indexes;
use crate::store::sqlite::SqliteStore;

/// Version of the snapshot format this build writes and reads; any other is rebuilt.
/// (2: vector arrays aligned for viewing in place in the mapped file; 3: the offset of an agent
/// file's vector part at its end, so the two parts are decoded at once; 4: the graph's nodes
/// still to refine, after a backlog linked them quickly; 5: the keyword analyzer in the manifest,
/// the terms of version 4 being unstemmed tokens; 6: the int8 codes graph construction compares,
/// after a half or f32 arena (written as absent since the twenty-eighth session: made after a
/// load); 7: the keyword postings and the documents' term lists as aligned columns, viewed in
/// place by the loader; 8: the change-log row the copy may reach past its stamp, in the manifest.)
pub(crate) const FORMAT_VERSION: u32 = 8;

const MANIFEST: &str = "MANIFEST";
const MANIFEST_MAGIC: &[u8; 8] = b"MEMCSNAP";
const AGENT_MAGIC: &[u8; 8] = b"MEMCAGNT";

/// Changed entries past which a background save is due, at the least (a smaller store is
/// saved on close and on checkpoint only: rebuilding it on open takes well under a second).
const MIN_CHANGES: u64 = 20_000;

/// How often the background saver looks at the store.
const POLL: Duration = Duration::from_secs(2);

/// After a failed background save, how long the saver waits before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a background save is due: a quarter of the store changed and the linker has caught
/// up (a snapshot then holds a whole graph), or twice as much as the store holds changed (deletes
/// and inserts) whatever the linker's state; a store that only grows while the linker is behind
/// is saved once it catches up, or on close. Each save rewrites the whole snapshot, so the share bounds the bytes written
/// per entry to a few times its own size, and a crash leaves at most that share to index again.
fn due(changes: u64, entries: u64, pending_links: usize) -> bool {
    let share = MIN_CHANGES.max(entries / 4);
    (changes >= share && pending_links == 0)
        || changes >= MIN_CHANGES.max(entries.saturating_mul(2))
}

/// Vectors the linker has still to link or to refine, over all agents.
fn link_work(indexes: &Indexes) -> u64 {
    (indexes.pending_links() + indexes.unrefined()) as u64
}

/// The stamp of a snapshot: which database, and up to which change-log row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub store_id: u128,
    pub seq: u64,
    pub token: u64,
    /// The newest change-log row when the copy of the indexes ended (and its token): the files
    /// hold everything up to `seq`, and may hold changes up to this one too (writes go on
    /// during the copy), which the database must therefore still have.
    pub reach: (u64, u64),
}

/// What must match between a snapshot and the store opening it.
#[derive(Clone, Copy, Debug)]
struct Shape {
    dim: u32,
    quantization: u8,
    m: u32,
    ef_construction: u32,
    seed: u64,
    /// [`crate::Analyzer::code`] of the keyword index's terms.
    analyzer: u8,
}

impl Shape {
    fn of(config: &MemoryConfig) -> Shape {
        let v = config.vector_index_config();
        Shape {
            dim: v.dim as u32,
            quantization: match v.quantization {
                Quantization::None => 0,
                Quantization::Int8 => 1,
                Quantization::F16 => 2,
            },
            m: v.hnsw.m as u32,
            ef_construction: v.hnsw.ef_construction as u32,
            seed: v.seed,
            analyzer: config.search.bm25.analyzer.code(),
        }
    }
}

/// The snapshot directory of a database file: `<database>.idx`.
pub(crate) fn directory_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".idx");
    PathBuf::from(name)
}

/// State shared by the store's writes, its saver thread and its close.
#[derive(Debug, Default)]
pub(crate) struct SnapshotState {
    /// Writes hold it shared from their commit until their entries are indexed (or taken out
    /// again); a save holds it exclusively to read its stamp, and again before publishing.
    pub gate: RwLock<()>,
    /// Entries inserted or deleted since the last save.
    pub changes: AtomicU64,
    /// Batches indexed while their commit ran and then taken out because it failed: a save that
    /// overlapped one may hold its entries, and is dropped.
    pub aborted_batches: AtomicU64,
    /// Set when a committed entry could not be indexed: the indexes then lack a row the log will
    /// not replay, so no snapshot is saved by this handle.
    pub index_gaps: AtomicBool,
    saved_seq: AtomicU64,
    /// Vectors the last saved snapshot held unlinked or still to refine: a later save of the
    /// same stamp is worth it when the linker has done some of that work since (else every
    /// reopen would link or refine them again).
    saved_link_work: AtomicU64,
    /// One save at a time.
    saving: Mutex<()>,
    shutdown: Mutex<bool>,
    wake: Condvar,
}

/// The snapshots of one store: where they live, and the background saver.
#[derive(Debug)]
pub(crate) struct Snapshots {
    dir: PathBuf,
    pub state: Arc<SnapshotState>,
    store_id: u128,
    shape: Shape,
    saver: Option<std::thread::JoinHandle<()>>,
}

/// Why a snapshot was not used.
#[derive(Debug)]
enum Rejection {
    Missing,
    Unusable(String),
}

impl From<SnapshotDefect> for Rejection {
    fn from(d: SnapshotDefect) -> Self {
        Rejection::Unusable(d.0)
    }
}

/// What the loader did.
pub(crate) struct Loaded {
    /// Entries brought in line with the database after the stamp.
    pub replayed: usize,
    /// Rows that could not be read back or indexed, for the quarantine.
    pub bad: Vec<(crate::entry::EntryId, String)>,
}

impl Snapshots {
    /// The snapshots of the database at `database`.
    pub fn new(database: &Path, sqlite: &SqliteStore, config: &MemoryConfig) -> Result<Snapshots> {
        Ok(Snapshots {
            dir: directory_of(database),
            state: Arc::default(),
            store_id: sqlite.store_id()?,
            shape: Shape::of(config),
            saver: None,
        })
    }

    /// Loads the snapshot into `indexes` (fresh) and replays the changes after it. `None` (with
    /// a tracing event saying why) when there is no usable snapshot: `indexes` may then hold
    /// part of one and must be thrown away.
    pub fn load(&self, sqlite: &SqliteStore, indexes: &Indexes, dim: usize) -> Option<Loaded> {
        let began = Instant::now();
        // The rows are counted (for the check below) while the files are read: the count
        // visits every leaf of the table, which at a million rows is most of the database file,
        // 20-100 ms from the page cache and 0.4-1.1 s from a cold disk (measured), as long as
        // the snapshot files take; nothing writes the database during an open.
        let (stamp, rows) = std::thread::scope(|s| {
            let rows = s.spawn(|| sqlite.count_all());
            let stamp = self.read_files(sqlite, indexes);
            let rows = rows.join().unwrap_or_else(|_| {
                Err(Error::Corrupt {
                    store: sqlite.path().display().to_string(),
                    detail: "the thread counting the rows panicked".into(),
                })
            });
            (stamp, rows)
        });
        let stamp = match stamp {
            Ok(stamp) => stamp,
            Err(Rejection::Missing) => {
                tracing::info!(
                    snapshot = %self.dir.display(),
                    "no index snapshot: rebuilding the indexes from the database"
                );
                return None;
            }
            Err(Rejection::Unusable(reason)) => {
                tracing::warn!(
                    snapshot = %self.dir.display(),
                    %reason,
                    "index snapshot not used: rebuilding the indexes from the database"
                );
                return None;
            }
        };
        let read = began.elapsed();
        let replay = sqlite.log_ids_after(stamp.seq).and_then(|ids| {
            let n = ids.len();
            let bad = sqlite.rows_for_replay(&ids, dim, |id, row| {
                indexes.reconcile(
                    id,
                    row.map(|r| ReplayedRow {
                        agent: r.agent,
                        session: r.session,
                        role: r.role,
                        created_at: r.created_at,
                        content: r.content,
                        embedding: r.embedding,
                    }),
                )
            })?;
            for (id, _) in &bad {
                indexes.reconcile(*id, None)?;
            }
            Ok(Loaded { replayed: n, bad })
        });
        // Rows written past the engine (by hand, with sqlite3) are in no log: the count of rows
        // tells of those that add or remove rows. The replayed rows that cannot be indexed are
        // still in the table (they go to the quarantine after this).
        let replay = replay.and_then(|loaded| {
            let rows = rows?.saturating_sub(loaded.bad.len() as u64);
            let indexed = indexes.total_count();
            if rows != indexed {
                return Err(Error::Corrupt {
                    store: sqlite.path().display().to_string(),
                    detail: format!(
                        "the database holds {rows} entries, the snapshot with the changes after \
                         it {indexed}: rows were written past the engine"
                    ),
                });
            }
            Ok(loaded)
        });
        match replay {
            Ok(loaded) => {
                indexes.schedule_all();
                self.state.saved_seq.store(stamp.seq, Ordering::Relaxed);
                self.state
                    .saved_link_work
                    .store(link_work(indexes), Ordering::Relaxed);
                self.state
                    .changes
                    .store(loaded.replayed as u64, Ordering::Relaxed);
                tracing::info!(
                    snapshot = %self.dir.display(),
                    seq = stamp.seq,
                    entries = indexes.total_count(),
                    replayed = loaded.replayed,
                    unlinked = indexes.pending_links(),
                    unrefined = indexes.unrefined(),
                    read_ms = read.as_millis() as u64,
                    total_ms = began.elapsed().as_millis() as u64,
                    "indexes loaded from the snapshot"
                );
                Some(loaded)
            }
            Err(e) => {
                tracing::warn!(
                    snapshot = %self.dir.display(),
                    error = %e,
                    "index snapshot not used (it does not agree with the database): \
                     rebuilding the indexes from the database"
                );
                None
            }
        }
    }

    /// Reads and checks the manifest and every agent file into `indexes`; the stamp.
    fn read_files(
        &self,
        sqlite: &SqliteStore,
        indexes: &Indexes,
    ) -> std::result::Result<Stamp, Rejection> {
        let path = self.dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Rejection::Missing),
            Err(e) => {
                return Err(Rejection::Unusable(format!(
                    "cannot read the manifest: {e}"
                )))
            }
        };
        let mut dec = Decoder::new(&bytes);
        let (stamp, files) = self.read_manifest(&mut dec)?;
        dec.finish()?;
        let db = |e: Error| Rejection::Unusable(format!("cannot read the change log: {e}"));
        let head = sqlite.log_head().map_err(db)?;
        if head.is_none_or(|(seq, _)| seq < stamp.reach.0) {
            return Err(Rejection::Unusable(format!(
                "the snapshot holds changes up to {} but the database ends at {}: it is newer \
                 than the database (restored from a backup, or commits lost in a system crash)",
                stamp.reach.0,
                head.map_or(0, |h| h.0)
            )));
        }
        match sqlite.log_token(stamp.seq).map_err(db)? {
            Some(token) if token == stamp.token => {}
            _ => {
                return Err(Rejection::Unusable(format!(
                    "change {} of the database is not the one the snapshot covers: the snapshot \
                     is stale (older than the last one saved) or the database went on \
                     differently (a copy, or restored from a backup)",
                    stamp.seq
                )))
            }
        }
        // Changes the copy may hold past the stamp: replayed from the log if the database has
        // them; if it does not (its row is gone or another), they would stay in the indexes.
        if stamp.reach.0 != stamp.seq
            && sqlite.log_token(stamp.reach.0).map_err(db)? != Some(stamp.reach.1)
        {
            return Err(Rejection::Unusable(format!(
                "the snapshot may hold change {} and the database has not got it: it went on \
                 differently (restored from a backup taken during a save, or commits lost in a \
                 system crash)",
                stamp.reach.0
            )));
        }
        for (agent, name, bytes, crc) in files {
            self.read_agent(indexes, &stamp, &agent, &name, bytes, crc)
                .map_err(|d| Rejection::Unusable(format!("{name}: {d}")))?;
        }
        Ok(stamp)
    }

    #[allow(clippy::type_complexity)]
    fn read_manifest(
        &self,
        dec: &mut Decoder<'_>,
    ) -> std::result::Result<(Stamp, Vec<(String, String, u64, u32)>), Rejection> {
        let mut magic = [0u8; 8];
        dec.raw(&mut magic)?;
        if &magic != MANIFEST_MAGIC {
            return Err(Rejection::Unusable(
                "the manifest is not a snapshot manifest".into(),
            ));
        }
        let version = dec.u32()?;
        if version != FORMAT_VERSION {
            return Err(Rejection::Unusable(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let store_id = u128::from(dec.u64()?) << 64 | u128::from(dec.u64()?);
        let seq = dec.u64()?;
        let token = dec.u64()?;
        let reach = (dec.u64()?, dec.u64()?);
        if reach.0 < seq {
            return Err(Rejection::Unusable(format!(
                "the manifest's copy ends at change {} before its stamp {seq}",
                reach.0
            )));
        }
        let shape = Shape {
            dim: dec.u32()?,
            quantization: dec.u8()?,
            m: dec.u32()?,
            ef_construction: dec.u32()?,
            seed: dec.u64()?,
            analyzer: dec.u8()?,
        };
        if store_id != self.store_id {
            return Err(Rejection::Unusable(format!(
                "the snapshot belongs to store {store_id:032x}, this database is {:032x}",
                self.store_id
            )));
        }
        let want = self.shape;
        if shape.dim != want.dim {
            return Err(Rejection::Unusable(format!(
                "embedding dimension {} in the snapshot, {} configured",
                shape.dim, want.dim
            )));
        }
        if shape.quantization != want.quantization {
            return Err(Rejection::Unusable(format!(
                "quantization {} in the snapshot, {} configured",
                shape.quantization, want.quantization
            )));
        }
        if (shape.m, shape.ef_construction, shape.seed) != (want.m, want.ef_construction, want.seed)
        {
            return Err(Rejection::Unusable(
                "the HNSW parameters differ from the configured ones".into(),
            ));
        }
        if shape.analyzer != want.analyzer {
            return Err(Rejection::Unusable(format!(
                "keyword analyzer {} in the snapshot, {} configured",
                shape.analyzer, want.analyzer
            )));
        }
        let n = dec.len(8)?;
        let mut files = Vec::with_capacity(n);
        for _ in 0..n {
            let agent = dec.str()?;
            let name = dec.str()?;
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !ok || name == MANIFEST {
                return Err(Rejection::Unusable(format!("bad file name {name:?}")));
            }
            files.push((agent, name, dec.u64()?, dec.u32()?));
        }
        Ok((
            Stamp {
                store_id,
                seq,
                token,
                reach,
            },
            files,
        ))
    }

    fn read_agent(
        &self,
        indexes: &Indexes,
        stamp: &Stamp,
        agent: &str,
        name: &str,
        bytes: u64,
        crc: u32,
    ) -> Decoded<()> {
        let file = File::open(self.dir.join(name))
            .map_err(|e| SnapshotDefect(format!("cannot open: {e}")))?;
        let size = file.metadata()?.len();
        ensure(size == bytes, || {
            format!("{size} bytes where the manifest says {bytes} (truncated?)")
        })?;
        ensure(size >= 4, || "the file ends early (truncated)".into())?;
        // SAFETY: snapshot files are written once, to a temporary name, and renamed into place;
        // nothing writes them after that (a new snapshot gets new names), so the mapping does
        // not change under the indexes that view it. (A process that truncated the file by hand
        // would make reads of the lost pages fault, as with any memory-mapped database.)
        let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }?);
        // A verifier thread computes the checksum and runs the long scans the decoder hands it
        // (vectors viewed in the map) while this one decodes, then this one joins in; the
        // decoded index is used only if every part succeeds.
        let (checks, queue) = std::sync::mpsc::channel::<Check>();
        let verifier = Verifier::new(&map, queue)?;
        let (index, mine, theirs) = std::thread::scope(|s| {
            let helper = s.spawn(|| verifier.work());
            let index = self.decode_agent_file(indexes, stamp, agent, &map, checks);
            if index.is_err() {
                verifier.abandon();
            }
            let mine = verifier.work();
            (index, mine, helper.join())
        });
        let index = index?;
        mine?;
        theirs.map_err(|_| SnapshotDefect("the verifier thread panicked".into()))??;
        let file_crc = verifier.finish()?;
        ensure(file_crc == crc, || "not the file the manifest names".into())?;
        indexes.insert_loaded(agent, index);
        Ok(())
    }

    /// Decodes an agent file's header and index (its checksum is checked by the caller).
    fn decode_agent_file(
        &self,
        indexes: &Indexes,
        stamp: &Stamp,
        agent: &str,
        map: &Arc<memmap2::Mmap>,
        checks: std::sync::mpsc::Sender<Check>,
    ) -> Decoded<crate::index::agent::AgentIndex> {
        let mut dec = Decoder::mapped(map);
        dec.defer_checks_to(checks);
        let mut magic = [0u8; 8];
        dec.raw(&mut magic)?;
        ensure(&magic == AGENT_MAGIC, || {
            "not an agent snapshot file".into()
        })?;
        ensure(dec.u32()? == FORMAT_VERSION, || {
            "another format version".into()
        })?;
        let store_id = u128::from(dec.u64()?) << 64 | u128::from(dec.u64()?);
        ensure(store_id == stamp.store_id, || "another store's file".into())?;
        let _written_at = dec.u64()?;
        ensure(dec.str()? == agent, || "another agent's file".into())?;
        let index = indexes.decode_agent(&mut dec)?;
        dec.done()?;
        Ok(index)
    }

    /// Saves a snapshot now, unless nothing changed since the last one. Returns its stamp.
    /// Fails with `Error::Io` naming the file when the directory cannot be written.
    pub fn save(&self, sqlite: &SqliteStore, indexes: &Indexes) -> Result<Option<Stamp>> {
        let _one_at_a_time = self.state.saving.lock();
        if self.state.index_gaps.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let (head, aborted, changes) = {
            let _no_write_in_flight = self.state.gate.write();
            (
                sqlite.log_head()?,
                self.state.aborted_batches.load(Ordering::Acquire),
                self.state.changes.load(Ordering::Acquire),
            )
        };
        let Some((seq, token)) = head else {
            return Ok(None);
        };
        let link_work = link_work(indexes);
        if seq == self.state.saved_seq.load(Ordering::Relaxed)
            && link_work >= self.state.saved_link_work.load(Ordering::Relaxed)
        {
            return Ok(None);
        }
        let mut stamp = Stamp {
            store_id: self.store_id,
            seq,
            token,
            reach: (seq, token),
        };
        tracing::debug!(seq, "index snapshot: copying the indexes");
        // A name of this save's own: a save at the same stamp (the linker did more since) must
        // not overwrite the files the current manifest names before its own manifest replaces
        // that one (a crash in between would leave no usable snapshot).
        let save = crate::store::sqlite::change_token() as u32;
        let began = Instant::now();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let mut written = Vec::new();
        let mut bytes_total = 0u64;
        for (i, (agent, index)) in indexes.agents_for_snapshot().into_iter().enumerate() {
            let name = format!("{seq:016x}-{save:08x}-{i}.agent");
            let path = self.dir.join(&name);
            let (bytes, crc) = write_atomically(&path, |enc| {
                enc.raw(AGENT_MAGIC)?;
                enc.u32(FORMAT_VERSION)?;
                enc.u64((stamp.store_id >> 64) as u64)?;
                enc.u64(stamp.store_id as u64)?;
                enc.u64(seq)?;
                enc.str(&agent)?;
                index.encode(enc)
            })
            .map_err(io(&path))?;
            bytes_total += bytes;
            written.push((agent, name, bytes, crc));
        }
        {
            // Any batch that was indexed during the capture has finished by now, one way or the
            // other: if one failed, its entries may be in the files without rows.
            let _no_write_in_flight = self.state.gate.write();
            if self.state.aborted_batches.load(Ordering::Acquire) != aborted {
                tracing::debug!("a batch failed during the index snapshot: dropped, retried later");
                for (_, name, _, _) in &written {
                    let _ = std::fs::remove_file(self.dir.join(name));
                }
                return Ok(None);
            }
            // Every change the files may hold is committed by now, up to this row.
            if let Some(reach) = sqlite.log_head()? {
                stamp.reach = reach;
            }
        }
        let manifest = self.dir.join(MANIFEST);
        write_atomically(&manifest, |enc| {
            enc.raw(MANIFEST_MAGIC)?;
            enc.u32(FORMAT_VERSION)?;
            enc.u64((stamp.store_id >> 64) as u64)?;
            enc.u64(stamp.store_id as u64)?;
            enc.u64(seq)?;
            enc.u64(token)?;
            enc.u64(stamp.reach.0)?;
            enc.u64(stamp.reach.1)?;
            let s = self.shape;
            enc.u32(s.dim)?;
            enc.u8(s.quantization)?;
            enc.u32(s.m)?;
            enc.u32(s.ef_construction)?;
            enc.u64(s.seed)?;
            enc.u8(s.analyzer)?;
            enc.len(written.len())?;
            for (agent, name, bytes, crc) in &written {
                enc.str(agent)?;
                enc.str(name)?;
                enc.u64(*bytes)?;
                enc.u32(*crc)?;
            }
            Ok(())
        })
        .map_err(io(&manifest))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        self.state.saved_seq.store(seq, Ordering::Relaxed);
        self.state
            .saved_link_work
            .store(link_work, Ordering::Relaxed);
        self.state.changes.fetch_sub(changes, Ordering::AcqRel);
        self.remove_other_files(&written);
        // The log before this snapshot's row is no longer needed by any snapshot.
        if let Err(e) = sqlite.prune_log(seq) {
            tracing::warn!(error = %e, "could not prune the change log (retried at the next save)");
        }
        tracing::info!(
            snapshot = %self.dir.display(),
            seq,
            agents = written.len(),
            bytes = bytes_total,
            ms = began.elapsed().as_millis() as u64,
            "index snapshot saved"
        );
        Ok(Some(stamp))
    }

    /// Removes files of older snapshots and temporary files left by an interrupted save.
    fn remove_other_files(&self, keep: &[(std::sync::Arc<str>, String, u64, u32)]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let ours = name.ends_with(".agent") || name.ends_with(".tmp");
            if ours && !keep.iter().any(|k| k.1 == name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Starts the background saver.
    pub fn start(&mut self, sqlite: Arc<SqliteStore>, indexes: Arc<Indexes>) -> Result<()> {
        let me = SaverContext {
            dir: self.dir.clone(),
            state: self.state.clone(),
            store_id: self.store_id,
            shape: self.shape,
        };
        let thread = crate::background::spawn(
            "memory-core-snapshot",
            crate::background::Priority::Low,
            move || me.run(&sqlite, &indexes),
        )
        .map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })?;
        self.saver = Some(thread);
        Ok(())
    }

    /// Stops the background saver (waiting for a save under way), then saves what changed since
    /// the last one. Failures are reported in a tracing event: nothing is lost, the next open
    /// rebuilds or replays.
    pub fn close(&mut self, sqlite: &SqliteStore, indexes: &Indexes) {
        *self.state.shutdown.lock() = true;
        self.state.wake.notify_all();
        if let Some(t) = self.saver.take() {
            let _ = t.join();
        }
        if let Err(e) = self.save(sqlite, indexes) {
            tracing::warn!(error = %e, "could not save the index snapshot on close");
        }
    }
}

/// What the saver thread needs of [`Snapshots`].
struct SaverContext {
    dir: PathBuf,
    state: Arc<SnapshotState>,
    store_id: u128,
    shape: Shape,
}

impl SaverContext {
    fn run(&self, sqlite: &SqliteStore, indexes: &Indexes) {
        let snapshots = Snapshots {
            dir: self.dir.clone(),
            state: self.state.clone(),
            store_id: self.store_id,
            shape: self.shape,
            saver: None,
        };
        let mut retry_at: Option<Instant> = None;
        loop {
            {
                let mut stop = self.state.shutdown.lock();
                if !*stop {
                    self.state.wake.wait_for(&mut stop, POLL);
                }
                if *stop {
                    return;
                }
            }
            if retry_at.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            let changes = self.state.changes.load(Ordering::Relaxed);
            if changes == 0 || !due(changes, indexes.total_count(), indexes.pending_links()) {
                continue;
            }
            match snapshots.save(sqlite, indexes) {
                Ok(_) => retry_at = None,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "could not save the index snapshot (nothing is lost: the next open \
                         rebuilds); retrying in a minute"
                    );
                    retry_at = Some(Instant::now() + RETRY_AFTER);
                }
            }
        }
    }
}

/// Writes a file through `fill` to `<path>.tmp`, fsyncs it and renames it to `path`. Returns
/// its size and checksum.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut Encoder<BufWriter<File>>) -> std::io::Result<()>,
) -> std::io::Result<(u64, u32)> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let out = (|| {
        let file = File::create(&tmp)?;
        let mut enc = Encoder::new(BufWriter::with_capacity(1 << 20, file));
        fill(&mut enc)?;
        let (mut w, crc) = enc.finish()?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        std::fs::rename(&tmp, path)?;
        Ok((bytes, crc))
    })();
    if out.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    out
}

/// Makes renames in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_wait_for_a_quarter_of_the_store_and_the_linker() {
        assert!(!due(19_999, 0, 0));
        assert!(due(20_000, 0, 0));
        assert!(!due(20_000, 30_000, 5), "the linker is behind");
        assert!(!due(100_000, 1_000_000, 0));
        assert!(due(250_000, 1_000_000, 0));
        assert!(
            !due(1_000_000, 1_000_000, 7),
            "a growing store waits for the linker"
        );
        assert!(
            due(2_000_000, 1_000_000, 7),
            "forced past twice the store's size"
        );
    }
}
