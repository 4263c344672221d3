//! Shared store fixtures: long-term stores filled with a generated corpus, built once per process
//! and size (the 100,000-entry store with its indexes is expensive), with progress on stderr.
//!
//! Fixtures of [`CACHE_MIN_ENTRIES`] entries or more are also kept on disk between runs (see
//! [`cache_dir`]): a file store closed with its index snapshot, which the next run of the same
//! bench executable reopens in about a second instead of building again (minutes at 1,000,000
//! entries). The key holds a fingerprint of the executable, so another build of the engine (the
//! other side of a PR comparison) never measures a store its code did not build.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use memory_core::{EntryId, Memory, MemoryConfig, Result, Storage};

use crate::workload::{Message, Query, Workload};

/// Entries per `insert_batch` call while filling a fixture.
pub const CHUNK: usize = 5_000;

/// A long-term store holding a generated corpus, with what the benchmarks need to query it.
pub struct Fixture {
    /// The store (a temporary directory, deleted when the process ends).
    pub memory: Memory,
    /// Entries stored.
    pub size: usize,
    /// Agents owning them (`agent-0` .. `agent-{agents-1}`).
    pub agents: usize,
    /// Ids in insertion order.
    pub ids: Vec<EntryId>,
    /// Each entry's agent index, in insertion order.
    pub agent_of: Vec<u32>,
    /// Each entry's embedding, row-major in insertion order (for exact top-k and recall).
    pub vectors: Vec<f32>,
    /// Queries cycled through by the search benchmarks.
    pub queries: Vec<Query>,
    /// The directory of the kept copy, when the fixture is kept between runs.
    kept: Option<PathBuf>,
}

impl Fixture {
    /// The store, for a benchmark that writes into it: a fixture kept between runs is then no
    /// longer reused (the next run builds it again), so no run measures another run's writes.
    pub fn memory_for_writes(&self) -> &Memory {
        if let Some(dir) = &self.kept {
            let _ = std::fs::remove_file(dir.join(COMPLETE));
        }
        &self.memory
    }

    /// Rows of `vectors` that belong to agent `agent`, with their ids.
    pub fn agent_rows(&self, agent: usize) -> (Vec<f32>, Vec<EntryId>) {
        let dim = self.vectors.len() / self.size.max(1);
        let mut rows = Vec::new();
        let mut ids = Vec::new();
        for (i, a) in self.agent_of.iter().enumerate() {
            if *a as usize == agent {
                rows.extend_from_slice(&self.vectors[i * dim..(i + 1) * dim]);
                ids.push(self.ids[i]);
            }
        }
        (rows, ids)
    }
}

/// The shared generator (vocabulary and embedding space are built once).
pub fn workload() -> &'static Workload {
    static W: OnceLock<Workload> = OnceLock::new();
    W.get_or_init(Workload::standard)
}

/// Inserts `messages` into `memory`'s long-term tier in chunks of [`CHUNK`], printing progress
/// to stderr for large loads.
pub fn fill(memory: &Memory, messages: &[Message], label: &str) -> Result<Vec<EntryId>> {
    let total = messages.len();
    let loud = total >= 20_000;
    let start = Instant::now();
    let mut ids = Vec::with_capacity(total);
    let step = (total / 10).max(CHUNK);
    let mut next_report = step;
    for chunk in messages.chunks(CHUNK) {
        ids.extend(memory.insert_batch(chunk.iter().map(Message::to_entry).collect())?);
        if loud && ids.len() >= next_report && ids.len() < total {
            eprintln!(
                "building {label}: {}/{} ({:.1} s)",
                group_digits(ids.len()),
                group_digits(total),
                start.elapsed().as_secs_f64()
            );
            next_report += step;
        }
    }
    if loud {
        eprintln!(
            "building {label}: {}/{} stored in {:.1} s",
            group_digits(ids.len()),
            group_digits(total),
            start.elapsed().as_secs_f64()
        );
    }
    wait_for_indexing(memory, label, loud);
    if loud {
        eprintln!(
            "building {label}: done in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
    Ok(ids)
}

/// Returns once every long-term vector is linked into its HNSW graph (searchable at full ANN
/// speed), polling every millisecond; unlike [`Memory::wait_for_indexing`] it does not wait for
/// the linker to refine what a backlog linked quickly. For timings of "searchable".
pub fn wait_until_searchable(memory: &Memory) {
    while memory.pending_index_links() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Waits until the store's background linker has put every vector into its HNSW graph, so that
/// no benchmark measures a half-built graph or competes with the linker for the CPU.
pub fn wait_for_indexing(memory: &Memory, label: &str, loud: bool) {
    let start = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let pending = memory.pending_index_links();
        if pending == 0 {
            break;
        }
        if loud && last_report.elapsed().as_secs() >= 5 {
            eprintln!(
                "building {label}: linking HNSW graph, {} vectors to go ({:.0} s)",
                group_digits(pending),
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    memory.wait_for_indexing();
}

/// Builds a store of `size` entries spread over `agents` agents (default configuration), or
/// reopens the copy kept by an earlier run of this executable. `salt` varies the corpus between
/// fixtures.
pub fn build(size: usize, agents: usize, query_count: usize, salt: u64) -> Result<Fixture> {
    if size >= CACHE_MIN_ENTRIES {
        if let Some(root) = cache_dir() {
            match build_kept(size, agents, query_count, salt, &root) {
                Ok(f) => return Ok(f),
                Err(e) => eprintln!(
                    "note: the {}-entry fixture cannot be kept in {} ({e}): building a \
                     temporary one",
                    group_digits(size),
                    root.display()
                ),
            }
        }
    }
    build_with(size, agents, query_count, salt, MemoryConfig::default(), "")
}

/// Fixtures of at least this many entries are kept between runs.
pub const CACHE_MIN_ENTRIES: usize = 100_000;

/// Written last into a kept fixture's directory: the store in it is whole.
const COMPLETE: &str = "complete";

/// Where fixtures are kept between runs: `$MEMBENCH_FIXTURE_CACHE`, else
/// `$CARGO_TARGET_DIR/membench-fixtures`, else `target/membench-fixtures` in the workspace;
/// `None` (every fixture temporary) with `MEMBENCH_FIXTURE_CACHE=off`.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("MEMBENCH_FIXTURE_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
            Some(target.join("membench-fixtures"))
        }
    }
}

/// A fingerprint of the running executable's bytes (FNV-1a over 64-bit words): another build
/// gets other kept fixtures.
fn executable_fingerprint() -> std::io::Result<u64> {
    let bytes = std::fs::read(std::env::current_exe()?)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x100_0000_01b3);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    Ok(h ^ bytes.len() as u64)
}

/// The kept fixture of these parameters: reopened when an earlier run of this executable left
/// it whole, else built (in a directory of its own, renamed into place once closed whole).
fn build_kept(
    size: usize,
    agents: usize,
    query_count: usize,
    salt: u64,
    root: &Path,
) -> std::result::Result<Fixture, String> {
    let fingerprint = executable_fingerprint().map_err(|e| format!("executable: {e}"))?;
    let prefix = format!("{size}x{agents}-{salt:x}-");
    let key = format!("{prefix}{fingerprint:016x}");
    let dir = root.join(&key);
    let label = format!("{}-entry fixture", group_digits(size));
    let w = workload();
    let messages = w.messages(size, agents, salt);
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let kept = |(memory, ids)| {
        let dir = Some(dir.clone());
        assemble(memory, ids, &messages, agents, query_count, salt, dir)
    };
    if dir.join(COMPLETE).exists() {
        match reopen_kept(&dir, size, &label) {
            Ok(opened) => return Ok(kept(opened)),
            Err(e) => {
                eprintln!("note: the kept {label} is unusable ({e}): building it again");
                std::fs::remove_dir_all(&dir).map_err(|e| failed("remove", &e))?;
            }
        }
    } else if dir.exists() {
        // Spoiled by a run that wrote into it (`Fixture::memory_for_writes`).
        std::fs::remove_dir_all(&dir).map_err(|e| failed("remove", &e))?;
    }
    std::fs::create_dir_all(root).map_err(|e| failed("create", &e))?;
    remove_abandoned(root, &prefix);
    let partial = root.join(format!("{key}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| failed("create", &e))?;
    let memory = Memory::open(
        Storage::File(partial.join("store.db")),
        MemoryConfig::default(),
    )
    .map_err(|e| failed("open", &e))?;
    let ids = fill(&memory, &messages, &label).map_err(|e| failed("fill", &e))?;
    drop(memory); // a clean close saves the index snapshot
    let id_bytes: Vec<u8> = ids.iter().flat_map(|id| id.0.to_le_bytes()).collect();
    std::fs::write(partial.join("ids"), id_bytes).map_err(|e| failed("write ids", &e))?;
    std::fs::write(partial.join(COMPLETE), b"").map_err(|e| failed("write", &e))?;
    if std::fs::rename(&partial, &dir).is_err() {
        if dir.join(COMPLETE).exists() {
            // Another run kept the same fixture meanwhile: use that one.
            let _ = std::fs::remove_dir_all(&partial);
        } else {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&partial, &dir).map_err(|e| failed("rename", &e))?;
        }
    }
    evict(root, &prefix, &key);
    let opened = reopen_kept(&dir, size, &label)?;
    eprintln!("building {label}: kept in {} for later runs", dir.display());
    Ok(kept(opened))
}

/// Opens a kept fixture and checks it holds `size` entries.
fn reopen_kept(
    dir: &Path,
    size: usize,
    label: &str,
) -> std::result::Result<(Memory, Vec<EntryId>), String> {
    let start = Instant::now();
    let ids: Vec<EntryId> = std::fs::read(dir.join("ids"))
        .map_err(|e| format!("ids: {e}"))?
        .chunks_exact(8)
        .map(|b| EntryId(u64::from_le_bytes(b.try_into().expect("8 bytes"))))
        .collect();
    if ids.len() != size {
        return Err(format!("{} ids where {size} were kept", ids.len()));
    }
    let memory = Memory::open(Storage::File(dir.join("store.db")), MemoryConfig::default())
        .map_err(|e| format!("open: {e}"))?;
    let stored = memory
        .stats()
        .map_err(|e| format!("stats: {e}"))?
        .ltm_entries;
    if stored != size as u64 {
        return Err(format!("{stored} entries stored where {size} were kept"));
    }
    wait_for_indexing(&memory, label, true);
    // Touched on every use: eviction keeps the most recently used.
    let _ = std::fs::write(dir.join(COMPLETE), b"");
    eprintln!(
        "{label}: reopened the kept store in {:.2} s ({})",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok((memory, ids))
}

/// Kept fixtures of the same parameters and another executable beyond the two most recently
/// used are removed (a PR comparison alternates two executables), spoiled ones first.
fn evict(root: &Path, prefix: &str, keep: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut others: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name != keep && !name.contains(".partial-")
        })
        .map(|e| {
            let used = std::fs::metadata(e.path().join(COMPLETE))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (used, e.path())
        })
        .collect();
    others.sort_by_key(|o| std::cmp::Reverse(o.0));
    for (_, path) in others.into_iter().skip(1) {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// Removes half-built fixtures of these parameters left by runs that are gone (killed while
/// building); on machines without `/proc` nothing is removed.
fn remove_abandoned(root: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(".partial-"))
            .map(|(_, pid)| pid.to_string())
        else {
            continue;
        };
        if !Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A fixture of `memory` (holding `messages` under `ids`).
fn assemble(
    memory: Memory,
    ids: Vec<EntryId>,
    messages: &[Message],
    agents: usize,
    query_count: usize,
    salt: u64,
    kept: Option<PathBuf>,
) -> Fixture {
    let w = workload();
    let dim = w.space().dim();
    let mut vectors = Vec::with_capacity(messages.len() * dim);
    let mut agent_of = Vec::with_capacity(messages.len());
    for m in messages {
        vectors.extend_from_slice(&m.embedding);
        let idx = m
            .agent
            .strip_prefix("agent-")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        agent_of.push(idx);
    }
    Fixture {
        memory,
        size: messages.len(),
        agents: agents.max(1),
        ids,
        agent_of,
        vectors,
        queries: w.queries(query_count, salt),
        kept,
    }
}

/// [`build`] with a given store configuration; `note` is added to the progress label.
pub fn build_with(
    size: usize,
    agents: usize,
    query_count: usize,
    salt: u64,
    config: MemoryConfig,
    note: &str,
) -> Result<Fixture> {
    let w = workload();
    let label = format!("{}-entry fixture{note}", group_digits(size));
    let gen_start = Instant::now();
    let messages = w.messages(size, agents, salt);
    if size >= 20_000 {
        eprintln!(
            "building {label}: generated corpus in {:.1} s",
            gen_start.elapsed().as_secs_f64()
        );
    }
    let memory = Memory::open(Storage::Temporary, config)?;
    let ids = fill(&memory, &messages, &label)?;
    Ok(assemble(
        memory,
        ids,
        &messages,
        agents,
        query_count,
        salt,
        None,
    ))
}

/// The fixture of `size` entries for one agent, built on first use and kept for the process.
pub fn shared(size: usize, query_count: usize) -> Arc<Fixture> {
    shared_with_agents(size, 1, query_count)
}

type Cache = Mutex<HashMap<(usize, usize), Arc<Fixture>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Drops every shared fixture. Statics are never dropped at exit, so without this each run would
/// leave its temporary stores (hundreds of MB at 100K entries) behind; call it at the end of a
/// bench's `main`.
pub fn release_all() {
    let fixtures: Vec<Arc<Fixture>> = {
        let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
        map.drain().map(|(_, f)| f).collect()
    };
    drop(fixtures);
}

/// The fixture of `size` entries spread over `agents` agents, built on first use and kept.
pub fn shared_with_agents(size: usize, agents: usize, query_count: usize) -> Arc<Fixture> {
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = map.get(&(size, agents)) {
        return f.clone();
    }
    let fixture = match build(size, agents, query_count, salt(size, agents)) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            // A bench cannot measure anything without its store: stop with the reason.
            eprintln!("error: building the {size}-entry fixture failed: {e}");
            std::process::exit(1);
        }
    };
    map.insert((size, agents), fixture.clone());
    fixture
}

/// A cheap deterministic walk over `0..len` (a full-period LCG), so successive benchmark calls
/// touch scattered entries instead of neighbours.
#[derive(Clone, Debug)]
pub struct Scatter {
    state: u64,
}

impl Scatter {
    /// A walk starting at `seed`.
    pub fn new(seed: u64) -> Scatter {
        Scatter { state: seed }
    }

    /// The next index below `len` (0 when `len` is 0).
    pub fn next_index(&mut self, len: usize) -> usize {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if len == 0 {
            0
        } else {
            ((self.state >> 33) % len as u64) as usize
        }
    }
}

/// The corpus salt of the shared fixture of `size` entries over `agents` agents, so a side-by-side
/// reference can regenerate the very same messages.
pub fn salt(size: usize, agents: usize) -> u64 {
    (size as u64) ^ ((agents as u64) << 32)
}

/// `100000` as `100,000`.
pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
        assert_eq!(group_digits(1_000_000), "1,000,000");
    }

    #[test]
    fn scatter_stays_in_range_and_spreads() {
        let mut s = Scatter::new(1);
        let seen: std::collections::HashSet<usize> =
            (0..1_000).map(|_| s.next_index(100)).collect();
        assert!(seen.iter().all(|i| *i < 100));
        assert!(seen.len() > 90, "only {} distinct indexes", seen.len());
        assert_eq!(s.next_index(0), 0);
    }

    #[test]
    fn releasing_shared_fixtures_deletes_their_stores() {
        let f = shared_with_agents(50, 7, 2);
        let dir = std::path::PathBuf::from(f.memory.location());
        assert!(dir.exists());
        drop(f);
        release_all();
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn fixture_stores_every_entry_for_its_agents() {
        let f = build(600, 3, 4, 9).unwrap();
        assert_eq!(f.ids.len(), 600);
        assert_eq!(f.vectors.len(), 600 * 384);
        let total: u64 = (0..3)
            .map(|a| f.memory.count(&crate::workload::agent_name(a)).unwrap())
            .sum();
        assert_eq!(total, 600);
        let (rows, ids) = f.agent_rows(1);
        assert_eq!(rows.len(), ids.len() * 384);
        assert_eq!(ids.len() as u64, f.memory.count("agent-1").unwrap());
        let got = f.memory.get("agent-0", f.ids[0]).unwrap();
        assert!(got.is_some(), "first inserted entry is readable");
    }

    #[test]
    fn a_kept_fixture_is_reopened_by_the_next_run_and_rebuilt_once_written_into() {
        let root = tempfile::tempdir().unwrap();
        let (size, agents, salt) = (500, 2, 77);
        let prefix = format!("{size}x{agents}-{salt:x}-");
        // Left behind by a run that is gone, and two fixtures of other executables.
        std::fs::create_dir_all(root.path().join(format!("{prefix}00.partial-999999999"))).unwrap();
        for (name, age) in [("01", 100), ("02", 10)] {
            let d = root.path().join(format!("{prefix}{name}"));
            std::fs::create_dir_all(&d).unwrap();
            let f = std::fs::File::create(d.join(COMPLETE)).unwrap();
            f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(age))
                .unwrap();
        }

        let f = build_kept(size, agents, 3, salt, root.path()).unwrap();
        let dir = f.kept.clone().expect("kept");
        let ids = f.ids.clone();
        assert_eq!(f.memory.stats().unwrap().ltm_entries, size as u64);
        let mut left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let own = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            left,
            [format!("{prefix}02"), own],
            "the abandoned build and the least recently used other fixture are gone"
        );
        // A file of our own in the kept directory tells a reuse from a rebuild (which replaces
        // the directory; inode numbers would not: a new file may get the old one's).
        let probe = dir.join("probe");
        std::fs::write(&probe, b"").unwrap();
        drop(f);

        let f = build_kept(size, agents, 3, salt, root.path()).unwrap();
        assert_eq!(f.kept.as_deref(), Some(dir.as_path()));
        assert!(probe.exists(), "reopened, not built again");
        assert_eq!(f.ids, ids);
        let hits = f
            .memory
            .search(&memory_core::SearchQuery::new(
                "agent-0",
                f.queries[0].text.clone(),
            ))
            .unwrap();
        assert!(!hits.is_empty());
        f.memory_for_writes();
        drop(f);

        let f = build_kept(size, agents, 3, salt, root.path()).unwrap();
        assert!(!probe.exists(), "a spoiled fixture is built again");
        assert!(dir.join(COMPLETE).exists());
        assert_eq!(f.memory.stats().unwrap().ltm_entries, size as u64);
    }
}
