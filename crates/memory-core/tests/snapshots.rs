//! Index snapshots of a file store (`<db>.idx/`): a reopened store answers exactly as before and
//! as a rebuild from the rows would; every kind of unusable snapshot (missing, truncated,
//! corrupt, another format version, dimension, quantization, keyword analyzer or database, older
//! than the last save, newer than the database) is detected, reported in a tracing event and
//! rebuilt from the rows; changes after the snapshot (inserts and forgets, also after a SIGKILL)
//! are replayed; a snapshot directory that cannot be written costs nothing but a typed error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use memory_core::{
    EntryId, Error, Memory, MemoryConfig, NewEntry, Quantization, Role, SearchMode, SearchQuery,
    Storage, Tiers,
};
use rand::{Rng, SeedableRng};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const DIM: usize = 16;

fn config() -> MemoryConfig {
    let mut c = MemoryConfig {
        embedding_dim: DIM,
        ..MemoryConfig::default()
    };
    // A graph from a few hundred vectors on, so that small stores have one to save.
    c.search.hnsw.min_len = 200;
    c
}

const WORDS: [&str; 12] = [
    "lisbon", "porto", "sister", "moved", "coffee", "tea", "guitar", "piano", "river", "train",
    "garden", "winter",
];

fn entry(agent: &str, rng: &mut impl Rng) -> NewEntry {
    let words: Vec<&str> = (0..rng.random_range(2..8))
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    NewEntry::new(
        agent,
        format!("s{}", rng.random_range(0..4)),
        Role::User,
        words.join(" "),
    )
    .with_embedding(v)
}

/// Inserts `n` entries for each agent, in batches and one by one.
fn fill(m: &Memory, seed: u64, n: usize) -> Vec<EntryId> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut ids = Vec::new();
    for agent in ["ada", "bob"] {
        let batch: Vec<NewEntry> = (0..n - 10).map(|_| entry(agent, &mut rng)).collect();
        ids.extend(m.insert_batch(batch).unwrap());
        for _ in 0..10 {
            ids.push(m.insert(entry(agent, &mut rng)).unwrap());
        }
    }
    ids
}

/// What the store answers: ids and scores of keyword, approximate, exact and hybrid queries,
/// filtered and not, plus counts.
fn answers(m: &Memory) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut out = Vec::new();
    for agent in ["ada", "bob"] {
        out.push(format!("count {agent} {}", m.count(agent).unwrap()));
        for q in 0..6 {
            let text = format!("{} {}", WORDS[q * 2], WORDS[q * 2 + 1]);
            let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            for mode in [
                SearchMode::Keyword,
                SearchMode::Vector,
                SearchMode::ExactVector,
                SearchMode::Hybrid,
            ] {
                let mut query = SearchQuery::new(agent, text.clone())
                    .with_k(8)
                    .with_mode(mode)
                    .with_tiers(Tiers::LongTerm)
                    .with_vector(v.clone())
                    .without_cache();
                if q % 2 == 1 {
                    query = query.with_session("s1");
                }
                let hits = m.search(&query).unwrap();
                let ids: Vec<String> = hits
                    .iter()
                    .map(|h| format!("{}:{:.5}", h.entry.id.0, h.score))
                    .collect();
                out.push(format!("{agent} {q} {mode:?} {}", ids.join(",")));
            }
        }
    }
    out
}

/// The exact answers only (keyword and exact vector): what a rebuild must give whatever order
/// it links the graph in.
fn exact_answers(m: &Memory) -> Vec<String> {
    answers(m)
        .into_iter()
        .filter(|l| !l.contains("Vector ") && !l.contains("Hybrid"))
        .collect()
}

/// Tracing events seen on this thread, as "message field=value ...".
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}{}", self.0);
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
}

impl Events {
    fn any(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    fn dump(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// Runs `f` with this thread's tracing events recorded.
fn traced<T>(f: impl FnOnce() -> T) -> (T, Events) {
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, events)
}

fn open(db: &Path, config: MemoryConfig) -> (Memory, Events) {
    traced(|| Memory::open(Storage::File(db.to_path_buf()), config).unwrap())
}

fn idx(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.idx", db.display()))
}

/// A store with entries of two agents, some forgotten, closed cleanly (so with a snapshot);
/// returns its answers before closing.
fn closed_store(db: &Path, seed: u64) -> Vec<String> {
    let m = Memory::open(Storage::File(db.to_path_buf()), config()).unwrap();
    let ids = fill(&m, seed, 400);
    for id in ids.iter().step_by(9) {
        let agent = if m.get("ada", *id).unwrap().is_some() {
            "ada"
        } else {
            "bob"
        };
        assert!(m.forget(agent, *id).unwrap());
    }
    m.wait_for_indexing();
    let before = answers(&m);
    let ((), events) = traced(|| drop(m));
    assert!(events.any("index snapshot saved"), "{}", events.dump());
    before
}

/// The exact answers of the store at `db` with its indexes built anew from its rows (its
/// snapshot deleted): what a loaded snapshot must answer.
fn rebuilt_answers(db: &Path, config: MemoryConfig) -> Vec<String> {
    std::fs::remove_dir_all(idx(db)).unwrap();
    let (m, _) = open(db, config);
    m.wait_for_indexing();
    exact_answers(&m)
}

fn agent_files(db: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(idx(db))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "agent"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_reopened_store_answers_as_before_and_as_a_rebuild_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let before = closed_store(&db, 1);
    assert_eq!(agent_files(&db).len(), 2, "one file per agent");

    let (m, events) = open(&db, config());
    assert!(
        events.any("indexes loaded from the snapshot"),
        "{}",
        events.dump()
    );
    assert_eq!(m.pending_index_links(), 0, "the graph came back whole");
    assert_eq!(
        answers(&m),
        before,
        "approximate answers too: the same graph"
    );
    drop(m);

    std::fs::remove_dir_all(idx(&db)).unwrap();
    let (m, events) = open(&db, config());
    assert!(events.any("no index snapshot"), "{}", events.dump());
    m.wait_for_indexing();
    let rebuilt = exact_answers(&m);
    let expected: Vec<String> = before
        .into_iter()
        .filter(|l| !l.contains("Vector ") && !l.contains("Hybrid"))
        .collect();
    assert_eq!(rebuilt, expected);
}

/// The loader views the vectors in the mapped snapshot file: entries added after the reopen go
/// on the heap beside them, and forgetting past the tombstone limit rewrites the arena (the
/// mapped part copied out). Either way the answers are a rebuild's.
#[test]
fn a_reopened_store_grows_and_compacts_past_its_mapped_vectors_like_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 11);
    let (m, events) = open(&db, config());
    assert!(
        events.any("indexes loaded from the snapshot"),
        "{}",
        events.dump()
    );
    fill(&m, 110, 200);
    let ids: Vec<EntryId> = m
        .list("ada", &Default::default())
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    for id in ids.iter().step_by(2) {
        assert!(m.forget("ada", *id).unwrap());
    }
    m.wait_for_indexing();
    let got = exact_answers(&m);
    drop(m);

    std::fs::remove_dir_all(idx(&db)).unwrap();
    let (m, events) = open(&db, config());
    assert!(events.any("no index snapshot"), "{}", events.dump());
    m.wait_for_indexing();
    assert_eq!(exact_answers(&m), got);
}

#[test]
fn int8_snapshots_round_trip_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let mut c = config();
    c.search.quantization = Quantization::Int8;
    let m = Memory::open(Storage::File(db.clone()), c.clone()).unwrap();
    fill(&m, 5, 300);
    m.wait_for_indexing();
    let before = answers(&m);
    drop(m);
    let (m, events) = open(&db, c);
    assert!(
        events.any("indexes loaded from the snapshot"),
        "{}",
        events.dump()
    );
    assert_eq!(answers(&m), before);
}

/// Damages the snapshot with `damage`, reopens, and checks that it was reported with `reason`
/// and that the rebuilt store answers what the rows say.
fn rejected(damage: impl FnOnce(&Path), reason: &str, config: MemoryConfig) {
    // Exact vector scores change with the quantization; keywords and counts do not.
    let same_vectors = config.search.quantization == self::config().search.quantization;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let before = closed_store(&db, 2);
    damage(&db);
    let (m, events) = open(&db, config);
    assert!(
        events.any("index snapshot not used") && events.any(reason),
        "expected {reason:?} in:\n{}",
        events.dump()
    );
    assert!(!events.any("indexes loaded from the snapshot"));
    m.wait_for_indexing();
    let comparable = |l: &String| {
        !l.contains("Vector ") && !l.contains("Hybrid") && (same_vectors || !l.contains("Exact"))
    };
    let expected: Vec<String> = before.into_iter().filter(comparable).collect();
    let got: Vec<String> = exact_answers(&m).into_iter().filter(comparable).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_truncated_agent_file_is_rebuilt() {
    rejected(
        |db| {
            let f = &agent_files(db)[0];
            let len = std::fs::metadata(f).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(f).unwrap();
            file.set_len(len / 2).unwrap();
        },
        "truncated",
        config(),
    );
}

#[test]
fn a_corrupt_agent_file_is_rebuilt() {
    rejected(
        |db| {
            let f = &agent_files(db)[1];
            let mut bytes = std::fs::read(f).unwrap();
            let at = bytes.len() * 2 / 3;
            bytes[at] ^= 0x5a;
            std::fs::write(f, bytes).unwrap();
        },
        "reason=",
        config(),
    );
}

#[test]
fn a_corrupt_manifest_is_rebuilt() {
    rejected(
        |db| {
            let f = idx(db).join("MANIFEST");
            let mut bytes = std::fs::read(&f).unwrap();
            let last = bytes.len() - 6;
            bytes[last] ^= 1;
            std::fs::write(f, bytes).unwrap();
        },
        "checksum",
        config(),
    );
}

/// Overwrites bytes of the manifest (the checks before its checksum are what is tested).
fn patch_manifest(db: &Path, at: usize, with: &[u8]) {
    let f = idx(db).join("MANIFEST");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[at..at + with.len()].copy_from_slice(with);
    std::fs::write(f, bytes).unwrap();
}

#[test]
fn another_format_version_is_rebuilt() {
    rejected(
        // The version before this build's (an upgrade).
        |db| patch_manifest(db, 8, &7u32.to_le_bytes()),
        "format version 7",
        config(),
    );
}

#[test]
fn another_dimension_is_rebuilt() {
    // magic 8, version 4, store id 16, seq 8, token 8, the copy's last change and its token
    // 16: the dimension is at 60.
    rejected(
        |db| patch_manifest(db, 60, &(DIM as u32 * 2).to_le_bytes()),
        "embedding dimension 32",
        config(),
    );
}

#[test]
fn another_quantization_is_rebuilt() {
    let mut c = config();
    c.search.quantization = Quantization::Int8;
    rejected(|_| {}, "quantization 2 in the snapshot, 1 configured", c);
}

#[test]
fn another_keyword_analyzer_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 2);
    let mut plain = config();
    plain.search.bm25.analyzer = memory_core::Analyzer::Plain;
    let (m, events) = open(&db, plain.clone());
    assert!(
        events.any("keyword analyzer 2 in the snapshot, 1 configured"),
        "{}",
        events.dump()
    );
    m.wait_for_indexing();
    let got = exact_answers(&m);
    drop(m);
    // The truth: the same rows indexed with plain terms from scratch.
    assert_eq!(rebuilt_answers(&db, plain), got);
}

#[test]
fn another_databases_snapshot_is_rebuilt() {
    let other = tempfile::tempdir().unwrap();
    let other_db = other.path().join("other.db");
    closed_store(&other_db, 3);
    rejected(
        |db| {
            std::fs::remove_dir_all(idx(db)).unwrap();
            copy_dir(&idx(&other_db), &idx(db));
        },
        "belongs to store",
        config(),
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn an_older_snapshot_than_the_last_saved_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 4);
    let old = dir.path().join("old.idx");
    copy_dir(&idx(&db), &old);
    // More writes and another save: the old snapshot's log row is pruned.
    let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
    let ids = fill(&m, 40, 50);
    m.forget("ada", ids[0]).unwrap();
    m.wait_for_indexing();
    let expected = exact_answers(&m);
    drop(m);
    std::fs::remove_dir_all(idx(&db)).unwrap();
    copy_dir(&old, &idx(&db));
    let (m, events) = open(&db, config());
    assert!(events.any("is stale"), "{}", events.dump());
    m.wait_for_indexing();
    assert_eq!(exact_answers(&m), expected);
}

#[test]
fn a_snapshot_newer_than_a_restored_database_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 6);
    let backup = dir.path().join("backup.db");
    std::fs::copy(&db, &backup).unwrap(); // closed cleanly: no WAL beside it
    let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
    fill(&m, 60, 50);
    drop(m); // saves a newer snapshot
    std::fs::copy(&backup, &db).unwrap();
    let (m, events) = open(&db, config());
    assert!(events.any("newer than the database"), "{}", events.dump());
    m.wait_for_indexing();
    let got = exact_answers(&m);
    drop(m);
    assert_eq!(got, rebuilt_answers(&db, config()));
}

#[test]
fn changes_after_the_snapshot_are_replayed_and_forgotten_entries_stay_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 7);
    let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
    let old: Vec<EntryId> = m
        .list("ada", &Default::default())
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    m.checkpoint().unwrap(); // nothing changed: no new snapshot needed
    let fresh = fill(&m, 70, 30);
    for id in old.iter().take(25).chain(fresh.iter().take(5)) {
        assert!(m.forget("ada", *id).unwrap());
    }
    m.wait_for_indexing();
    let expected = answers(&m);
    // The changes are in the database only: a copy of the files as a crash would leave them
    // (this handle is leaked, so it saves nothing more).
    let crashed = crash_copy(m, &db);
    let (m, events) = open(&crashed, config());
    assert!(
        events.any("indexes loaded from the snapshot"),
        "{}",
        events.dump()
    );
    assert!(events.any("replayed=85"), "{}", events.dump());
    for id in old.iter().take(25) {
        assert!(m.get("ada", *id).unwrap().is_none());
    }
    m.wait_for_indexing();
    let now = answers(&m);
    assert_eq!(exact_only(&now), exact_only(&expected));
}

/// A row written after the snapshot that cannot be indexed any more (damaged by hand here) is
/// quarantined when its change is replayed, and the snapshot is used all the same: the rows
/// count it was checked against still held the row (that cost a full rebuild).
#[test]
fn a_replayed_row_that_must_be_quarantined_leaves_the_snapshot_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 8);
    let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(80);
    let fresh: Vec<EntryId> = (0..5)
        .map(|_| m.insert(entry("ada", &mut rng)).unwrap())
        .collect();
    let crashed = crash_copy(m, &db);
    let nan: String = f32::NAN
        .to_le_bytes()
        .repeat(DIM)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    rusqlite::Connection::open(&crashed)
        .unwrap()
        .execute_batch(&format!(
            "UPDATE entries SET embedding = x'{nan}' WHERE id = {}",
            fresh[2].0
        ))
        .unwrap();
    let (m, events) = open(&crashed, config());
    assert!(
        events.any("indexes loaded from the snapshot"),
        "{}",
        events.dump()
    );
    let report = m.check_integrity().unwrap();
    assert_eq!(
        report.quarantined.iter().map(|q| q.id).collect::<Vec<_>>(),
        vec![fresh[2]]
    );
    assert!(m.get("ada", fresh[2]).unwrap().is_none());
    for id in [fresh[0], fresh[1], fresh[3], fresh[4]] {
        assert!(m.get("ada", id).unwrap().is_some());
    }
    m.wait_for_indexing();
    let got = exact_answers(&m);
    drop(m);
    assert_eq!(rebuilt_answers(&crashed, config()), got);
}

/// Holds the thread that emits an event with `message` in it until the test lets it go (once).
struct HoldAt {
    message: &'static str,
    reached: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    go: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl<S: tracing::Subscriber> Layer<S> for HoldAt {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        if !line.0.contains(self.message) {
            return;
        }
        if let Some(reached) = self.reached.lock().unwrap().take() {
            reached.send(()).unwrap();
            if let Some(go) = self.go.lock().unwrap().take() {
                go.recv().unwrap();
            }
        }
    }
}

#[test]
fn a_snapshot_holding_changes_a_restored_database_lacks_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 8);
    let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
    fill(&m, 80, 20); // something for the next save to save
    let victim = m.list("ada", &Default::default()).unwrap()[0].clone();
    let backup = dir.path().join("backup.db");
    let (reached_tx, reached_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let hold = HoldAt {
        message: "copying the indexes",
        reached: Mutex::new(Some(reached_tx)),
        go: Mutex::new(Some(go_rx)),
    };
    let added = std::thread::scope(|s| {
        let saver = s.spawn(|| {
            let subscriber = tracing_subscriber::registry().with(hold);
            tracing::subscriber::with_default(subscriber, || m.checkpoint())
        });
        // The save has read its stamp and is about to copy the indexes: a backup taken now
        // holds everything up to the stamp, and nothing written during the copy.
        reached_rx.recv().unwrap();
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
            .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(81);
        let added = m.insert(entry("ada", &mut rng)).unwrap();
        assert!(m.forget("ada", victim.id).unwrap());
        go_tx.send(()).unwrap();
        saver.join().unwrap().unwrap();
        added
    });
    // The database restored from the backup beside the snapshot saved after it (at a path of
    // its own: `m` is leaked, as a crash would leave it, and keeps its lock): the snapshot's
    // stamp is in the backup, the two writes of the copy are not.
    let db = dir.path().join("restored.db");
    std::fs::copy(&backup, &db).unwrap();
    copy_dir(&idx(&dir.path().join("m.db")), &idx(&db));
    std::mem::forget(m);
    let (m, events) = open(&db, config());
    assert!(
        events.any("the snapshot holds changes up to") || events.any("has not got it"),
        "{}",
        events.dump()
    );
    assert!(m.get("ada", added).unwrap().is_none());
    let hits = m
        .search(
            &SearchQuery::new("ada", victim.content.as_str())
                .with_mode(SearchMode::Keyword)
                .with_k(1_000)
                .without_cache(),
        )
        .unwrap();
    assert!(
        hits.iter().any(|h| h.entry.id == victim.id),
        "an entry of the restored database is missing from its index"
    );
    m.wait_for_indexing();
    let got = exact_answers(&m);
    drop(m);
    assert_eq!(rebuilt_answers(&db, config()), got);
}

#[test]
fn a_failed_save_at_the_same_stamp_leaves_the_snapshot_before_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    m.insert_batch((0..20_000).map(|_| entry("ada", &mut rng)).collect())
        .unwrap();
    // Saved while the linker is still at work, then again at the same stamp once it is done.
    m.checkpoint().unwrap();
    m.wait_for_indexing();
    // The second save's manifest cannot be written.
    let blocker = idx(&db).join("MANIFEST.tmp");
    std::fs::create_dir(&blocker).unwrap();
    let (failed, events) = traced(|| m.checkpoint());
    assert!(
        events.any("copying the indexes"),
        "no second save at the same stamp (the linker was done at the first): {}",
        events.dump()
    );
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    std::fs::remove_dir(&blocker).unwrap();
    let crashed = crash_copy(m, &db);
    let (_m, events) = open(&crashed, config());
    assert!(
        events.any("indexes loaded from the snapshot"),
        "{}",
        events.dump()
    );
}

fn exact_only(v: &[String]) -> Vec<String> {
    v.iter()
        .filter(|l| !l.contains("Vector ") && !l.contains("Hybrid"))
        .cloned()
        .collect()
}

/// Copies the database, its WAL and its snapshot to a second path while `m` is idle, then leaks
/// `m` (no close, so no save): the copy is the store as a crash would leave it.
fn crash_copy(m: Memory, db: &Path) -> PathBuf {
    let crashed = PathBuf::from(format!("{}.crashed", db.display()));
    for suffix in ["", "-wal"] {
        let from = PathBuf::from(format!("{}{suffix}", db.display()));
        if from.exists() {
            std::fs::copy(&from, format!("{}{suffix}", crashed.display())).unwrap();
        }
    }
    copy_dir(&idx(db), &idx(&crashed));
    std::mem::forget(m);
    crashed
}

#[test]
fn an_unwritable_snapshot_directory_costs_a_typed_error_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    // A file where the directory would be: creating it fails, whoever runs the test (root
    // ignores permission bits, so a read-only directory would not do).
    std::fs::write(idx(&db), b"not a directory").unwrap();
    let (m, events) = open(&db, config());
    assert!(events.any("index snapshot not used"), "{}", events.dump());
    let ids = fill(&m, 8, 300);
    match m.checkpoint() {
        Err(Error::Io { path, .. }) => assert!(path.starts_with(idx(&db)), "{}", path.display()),
        other => panic!("expected Error::Io naming the snapshot directory, got {other:?}"),
    }
    m.wait_for_indexing();
    let before = exact_answers(&m);
    let ((), events) = traced(|| drop(m));
    assert!(
        events.any("could not save the index snapshot on close"),
        "{}",
        events.dump()
    );
    let (m, _) = open(&db, config());
    m.wait_for_indexing();
    assert_eq!(exact_answers(&m), before);
    assert!(m.get("bob", *ids.last().unwrap()).unwrap().is_some());
}

/// Kills a child process at random points while it saves snapshots (each checkpoint saves one),
/// then checks that the store opens with a usable snapshot or a rebuild, never a wrong one.
#[test]
fn a_kill_during_a_snapshot_save_never_leaves_a_wrong_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 9);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (mut used, mut interrupted) = (0, 0);
    let rounds: u64 = std::env::var("SNAPSHOT_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "snapshot_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SNAPSHOT_CHILD_DB", &db)
            .env("SNAPSHOT_CHILD_ROUND", round.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(
            rng.random_range(300..1_500),
        ));
        child.kill().unwrap(); // SIGKILL on Unix
        assert!(
            !child.wait().unwrap().success(),
            "round {round}: the child must have been killed"
        );
        // Files of a save the kill interrupted: temporary files, or a set the manifest does not
        // name yet (two agents per set).
        let leftovers = std::fs::read_dir(idx(&db)).map(|d| d.count()).unwrap_or(0);
        if leftovers > 3 {
            interrupted += 1;
        }
        let (m, events) = open(&db, config());
        if events.any("indexes loaded from the snapshot") {
            used += 1;
        }
        m.wait_for_indexing();
        let got = exact_answers(&m);
        drop(m);
        // The truth: the same file, indexes rebuilt from its rows.
        std::fs::remove_dir_all(idx(&db)).unwrap();
        let (m, events) = open(&db, config());
        assert!(events.any("no index snapshot"));
        m.wait_for_indexing();
        assert_eq!(got, exact_answers(&m), "round {round}");
    }
    eprintln!(
        "{used} of {rounds} reopenings used a snapshot; {interrupted} kills left a save unfinished"
    );
    assert!(
        used > 0,
        "no reopening used a snapshot: the test tested nothing"
    );
}

/// The child of the kill test: inserts, forgets and checkpoints (saving a snapshot) forever.
#[test]
fn snapshot_child() {
    let Ok(db) = std::env::var("SNAPSHOT_CHILD_DB") else {
        return;
    };
    let round: u64 = std::env::var("SNAPSHOT_CHILD_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let m = Memory::open(Storage::File(db.into()), config()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(round);
    loop {
        let batch: Vec<NewEntry> = (0..300).map(|_| entry("ada", &mut rng)).collect();
        let ids = m.insert_batch(batch).unwrap();
        m.insert(entry("bob", &mut rng)).unwrap();
        for id in ids.iter().step_by(17) {
            m.forget("ada", *id).unwrap();
        }
        m.checkpoint().unwrap();
    }
}

/// Snapshots saved while other threads insert (small and parallel-indexed batches) and forget
/// catch some entries half indexed; the reopen must bring every one of them in line.
#[test]
fn snapshots_saved_during_writes_reopen_to_the_same_answers_as_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    closed_store(&db, 12);
    let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let saves = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(120);
            // Writes until the main thread has kept its snapshot, and some more after it.
            let mut after = 0;
            for round in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    after += 1;
                    if after > 10 {
                        break;
                    }
                }
                // 300 entries: indexed on a second thread while SQLite commits them.
                let size = if round % 2 == 0 { 300 } else { 20 };
                let agent = if round % 3 == 0 { "bob" } else { "ada" };
                let batch: Vec<NewEntry> = (0..size).map(|_| entry(agent, &mut rng)).collect();
                let ids = m.insert_batch(batch).unwrap();
                for id in ids.iter().step_by(7) {
                    assert!(m.forget(agent, *id).unwrap());
                }
            }
        });
        // Five saves during the writes; the fifth is kept aside (no save after it prunes the
        // log it needs), and the writes go on after it (the background saver waits for 20,000
        // changes, far more than this test makes).
        let mut saves = 0;
        while saves < 5 {
            m.checkpoint().unwrap();
            saves += 1;
        }
        copy_dir(&idx(&db), &dir.path().join("kept.idx"));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        saves
    });
    assert_eq!(saves, 5);
    m.wait_for_indexing();
    let expected = exact_answers(&m);
    let crashed = crash_copy(m, &db);
    std::fs::remove_dir_all(idx(&crashed)).unwrap();
    copy_dir(&dir.path().join("kept.idx"), &idx(&crashed));
    let (m, events) = open(&crashed, config());
    assert!(
        events.any("indexes loaded from the snapshot"),
        "{}",
        events.dump()
    );
    m.wait_for_indexing();
    assert_eq!(exact_answers(&m), expected);
    drop(m);
    std::fs::remove_dir_all(idx(&crashed)).unwrap();
    let (m, _) = open(&crashed, config());
    m.wait_for_indexing();
    assert_eq!(
        exact_answers(&m),
        expected,
        "a rebuild from the rows agrees"
    );
}

/// A backlog of vectors is linked with a short candidate list first and refined afterwards. A
/// snapshot saved between the two keeps the nodes still to refine: the reopened store refines
/// them (and answers meanwhile), and its next snapshot has none left.
#[test]
fn a_snapshot_saved_before_a_backlog_was_refined_is_refined_after_reopening() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("skipped: one core, so a backlog is linked one vector at a time, never quickly");
        return;
    }
    const DIM: usize = 32;
    let config = || {
        let mut c = config();
        c.embedding_dim = DIM;
        c
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let centers: Vec<Vec<f32>> = (0..40)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let near = |rng: &mut rand::rngs::StdRng| -> Vec<f32> {
        let c = &centers[rng.random_range(0..centers.len())];
        c.iter()
            .map(|x| x + rng.random_range(-0.3f32..0.3))
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut saved = None;
    // The refinement runs as soon as the quick linking is done, so the save may come too late;
    // a few tries (each on a new store) catch it in between.
    for attempt in 0..5 {
        let db = dir.path().join(format!("m{attempt}.db"));
        let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
        let batch: Vec<NewEntry> = (0..8_000)
            .map(|i| {
                NewEntry::new("ada", "s", Role::User, format!("note {i}"))
                    .with_embedding(near(&mut rng))
            })
            .collect();
        m.insert_batch(batch).unwrap();
        while m.pending_index_links() > 0 {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        m.checkpoint().unwrap();
        let crashed = crash_copy(m, &db);
        let (m, events) = open(&crashed, config());
        let unrefined = loaded_field(&events, "unrefined");
        eprintln!("attempt {attempt}: the snapshot holds {unrefined} nodes to refine");
        if unrefined > 0 {
            saved = Some((crashed, m));
            break;
        }
    }
    let (db, m) = saved.expect("no snapshot in five caught the backlog before its refinement");
    // Searches run beside the refinement and find what an exact scan finds.
    let queries: Vec<Vec<f32>> = (0..30).map(|_| near(&mut rng)).collect();
    let recall = |m: &Memory| {
        let mut found = 0;
        for v in &queries {
            let query = |mode| {
                SearchQuery::new("ada", "note")
                    .with_mode(mode)
                    .with_k(10)
                    .with_vector(v.clone())
                    .with_tiers(Tiers::LongTerm)
                    .without_cache()
            };
            let exact = m.search(&query(SearchMode::ExactVector)).unwrap();
            let tenth = exact[9].components.vector.unwrap();
            found += m
                .search(&query(SearchMode::Vector))
                .unwrap()
                .iter()
                .filter(|h| h.components.vector.unwrap() >= tenth - 1e-5)
                .count();
        }
        found as f64 / (10 * queries.len()) as f64
    };
    let during = recall(&m);
    m.wait_for_indexing();
    let refined = recall(&m);
    eprintln!("recall@10 while refining {during:.3}, refined {refined:.3}");
    assert!(
        refined >= 0.9,
        "recall@10 after the refinement: {refined:.3}"
    );
    drop(m);
    let (m, events) = open(&db, config());
    assert_eq!(loaded_field(&events, "unrefined"), 0, "{}", events.dump());
    assert_eq!(m.pending_index_links(), 0);
    assert_eq!(recall(&m), refined, "the refined graph came back as it was");
}

/// A numeric field of the "indexes loaded from the snapshot" event.
fn loaded_field(events: &Events, field: &str) -> usize {
    let lines = events.0.lock().unwrap();
    let line = lines
        .iter()
        .find(|l| l.contains("indexes loaded from the snapshot"))
        .unwrap_or_else(|| panic!("the snapshot was not loaded: {}", lines.join("\n")));
    let key = format!(" {field}=");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        + key.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{field} is not a number in {line}"))
}
