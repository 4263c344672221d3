//! No acknowledged write is lost or locked away: one handle per store file, vectors of any
//! finite magnitude that always read back, limits checked at the call, and files holding rows
//! that cannot be read (written by hand or by an older version) that still open, with those rows
//! set aside and reported.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use memory_core::{
    EntryId, Error, ListQuery, Memory, MemoryConfig, NewEntry, Role, SearchMode, SearchQuery,
    Storage,
};

const DIM: usize = 4;

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        ..MemoryConfig::default()
    }
}

fn store(dir: &Path) -> Storage {
    Storage::File(dir.join("ltm.db"))
}

fn msg(text: &str) -> NewEntry {
    NewEntry::new("a", "s", Role::User, text)
}

/// The store lock belongs to an open file, which a child process forked by any thread shares
/// until it executes its program: a lock released a moment after the open begins (as when a
/// handle was closed during such a fork) is waited for, not reported as another handle.
#[test]
fn a_lock_released_a_moment_later_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    drop(Memory::open(store(dir.path()), config()).unwrap());
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join("ltm.db.lock"))
        .unwrap();
    held.lock().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(held);
    });
    let m = Memory::open(store(dir.path()), config()).expect("opened once the lock was let go");
    release.join().unwrap();
    m.insert(msg("written after the wait")).unwrap();
}

#[test]
fn a_second_handle_on_one_file_is_refused_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = Memory::open(store(dir.path()), config()).unwrap();
    let id = first.insert(msg("kept by the first handle")).unwrap();
    let err = Memory::open(store(dir.path()), config()).unwrap_err();
    assert!(matches!(err, Error::StoreLocked { .. }), "{err}");
    assert!(err.to_string().contains("ltm.db"), "{err}");
    // The refused open touched nothing: the first handle goes on writing and reading.
    first.insert(msg("a second entry")).unwrap();
    assert_eq!(first.count("a").unwrap(), 2);
    drop(first);
    let again = Memory::open(store(dir.path()), config()).unwrap();
    assert_eq!(again.count("a").unwrap(), 2);
    assert!(again.get("a", id).unwrap().is_some());
}

#[test]
fn two_names_of_one_file_share_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = Memory::open(store(dir.path()), config()).unwrap();
    first.insert(msg("kept by the first handle")).unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(dir.path().join("ltm.db"), &link).unwrap();
    let dotted = dir.path().join(".").join("sub").join("..").join("ltm.db");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for other in [link, dotted] {
        let err = Memory::open(Storage::File(other.clone()), config()).unwrap_err();
        assert!(
            matches!(err, Error::StoreLocked { .. }),
            "{}: {err}",
            other.display()
        );
    }
}

/// Hard links are two names of one file that no path tells apart: each would take a lock of
/// its own and SQLite would keep a log per name. A file with several names is refused, and the
/// refusal writes nothing.
#[test]
fn a_store_file_with_a_hard_link_is_refused_until_the_link_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let first = Memory::open(store(dir.path()), config()).unwrap();
    let id = first.insert(msg("written before the link")).unwrap();
    drop(first);
    let link = dir.path().join("hard.db");
    std::fs::hard_link(dir.path().join("ltm.db"), &link).unwrap();
    let before = std::fs::read(&link).unwrap();
    for name in [store(dir.path()), Storage::File(link.clone())] {
        let err = Memory::open(name, config()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidPath { reason, .. } if reason.contains("hard links")),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(&link).unwrap(),
        before,
        "a refused open wrote"
    );
    std::fs::remove_file(&link).unwrap();
    let m = Memory::open(store(dir.path()), config()).unwrap();
    assert!(m.get("a", id).unwrap().is_some());
}

/// A relative path beginning with `file:` names a file of that name, as any other path does
/// (SQLite, built to read URIs, took it for a URI naming another file than the store lock's).
#[test]
fn a_path_beginning_with_file_colon_is_a_file_of_that_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = lock_holder("file:ltm.db".as_ref(), dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.path().join("file:ltm.db").is_file());
    assert!(
        !dir.path().join("ltm.db").exists(),
        "the store went to another file than its name"
    );
    let m = Memory::open(Storage::File(dir.path().join("file:ltm.db")), config()).unwrap();
    assert_eq!(m.count("a").unwrap(), 1);
}

/// A large batch's text is indexed while it commits. A search meanwhile must still answer k
/// hits of committed entries (the batch's rows ranked first had no row yet, so the search
/// answered fewer, none at all here), `count` must not count the batch, and `list` with a limit
/// must fill it; and when the commit fails, no answer computed meanwhile (with the batch in the
/// index's statistics) outlives the failure in the query cache.
#[test]
fn a_large_batch_while_and_after_its_commit_fails_changes_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let m = Memory::open(store(dir.path()), config()).unwrap();
    for i in 0..10 {
        m.insert(msg(&format!(
            "entry {i}: my sister moved to lisbon after years of planning and saving"
        )))
        .unwrap();
    }
    let q = SearchQuery::new("a", "lisbon")
        .with_mode(SearchMode::Keyword)
        .with_k(5);
    let hits = |q: &SearchQuery| -> Vec<(EntryId, f32)> {
        m.search(q)
            .unwrap()
            .iter()
            .map(|h| (h.entry.id, h.score))
            .collect()
    };
    let ids = |hits: &[(EntryId, f32)]| -> Vec<EntryId> { hits.iter().map(|h| h.0).collect() };
    let before = hits(&q.clone().without_cache());
    let committed = ids(&before);
    assert_eq!(committed.len(), 5);
    let newest = |m: &Memory| -> Vec<EntryId> {
        let limit = ListQuery {
            limit: Some(3),
            ..ListQuery::default()
        };
        m.list("a", &limit).unwrap().iter().map(|e| e.id).collect()
    };
    let listed = newest(&m);
    // Another program holds SQLite's write lock: the batch waits for it, then fails.
    let blocker = rusqlite::Connection::open(dir.path().join("ltm.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::scope(|s| {
        // Its entries say "lisbon" more often: they rank above the committed ones.
        let batch =
            s.spawn(|| m.insert_batch((0..300).map(|_| msg("lisbon lisbon lisbon")).collect()));
        // The index holds the batch once the scores change (its statistics count the batch).
        let waited = std::time::Instant::now();
        let mut during = before.clone();
        while during == before && waited.elapsed() < std::time::Duration::from_secs(4) {
            std::thread::sleep(std::time::Duration::from_millis(5));
            during = hits(&q.clone().without_cache());
        }
        let (count, list) = (m.count("a").unwrap(), newest(&m));
        // Cached: an answer of that moment.
        hits(&q);
        assert!(batch.join().unwrap().is_err(), "the batch got the lock");
        assert_ne!(during, before, "the batch never reached the index");
        assert_eq!(
            ids(&during),
            committed,
            "a search while a large batch commits answered fewer than k committed entries"
        );
        assert_eq!(count, 10, "count included a batch whose commit ran");
        assert_eq!(list, listed, "list skipped past a batch whose commit ran");
    });
    drop(blocker);
    assert_eq!(m.count("a").unwrap(), 10);
    assert_eq!(
        hits(&q),
        hits(&q.clone().without_cache()),
        "a cached answer of the failed batch's moment"
    );
}

/// A child process (`lock_child_holder`) that opened the store at `db` (relative to `cwd`),
/// wrote an entry and holds the store until it is killed.
fn lock_holder(db: &Path, cwd: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_child_holder",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(cwd)
        .env("LOCK_CHILD_DB", db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let holding = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("holding"));
    assert!(holding, "the child never opened the store");
    child
}

/// The child: opens the store named by `LOCK_CHILD_DB`, says so, and waits to be killed.
#[test]
fn lock_child_holder() {
    let Ok(db) = std::env::var("LOCK_CHILD_DB") else {
        return;
    };
    let m = Memory::open(Storage::File(PathBuf::from(db)), config()).unwrap();
    m.insert(msg("written by the child")).unwrap();
    println!("holding");
    std::thread::sleep(std::time::Duration::from_secs(600));
}

#[test]
fn another_process_cannot_open_a_store_until_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ltm.db");
    let mut child = lock_holder(&db, dir.path());
    let err = Memory::open(Storage::File(db.clone()), config()).unwrap_err();
    assert!(matches!(err, Error::StoreLocked { .. }), "{err}");
    // SIGKILL: the OS drops the child's lock with its process.
    child.kill().unwrap();
    child.wait().unwrap();
    let m = Memory::open(Storage::File(db), config()).unwrap();
    assert_eq!(m.count("a").unwrap(), 1);
}

#[test]
fn paths_sqlite_would_not_treat_as_a_file_are_refused() {
    for path in ["", ":memory:"] {
        let err = Memory::open(Storage::File(PathBuf::from(path)), config()).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{path:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let err = Memory::open(Storage::File(dir.path().to_path_buf()), config()).unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
}

#[test]
fn vectors_of_subnormal_and_huge_magnitude_are_stored_and_the_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let vectors: [[f32; DIM]; 3] = [
        [1e-45, 0.0, 0.0, 0.0],
        [f32::MAX, -f32::MAX, 0.0, 1.0],
        [1e-40, 1e-42, -1e-41, 0.0],
    ];
    let mut ids = Vec::new();
    {
        let m = Memory::open(store(dir.path()), config()).unwrap();
        for (i, v) in vectors.iter().enumerate() {
            let e = msg(&format!("vector {i}")).with_embedding(v.to_vec());
            ids.push(m.insert(e).unwrap());
        }
        // Through the short-term tier and consolidation as well.
        m.append(
            NewEntry::new("a", "s2", Role::User, "appended tiny")
                .with_embedding(vec![0.0, 1e-45, 0.0, 0.0])
                .with_importance(1.0),
        )
        .unwrap();
        m.consolidate().unwrap();
    }
    let m = Memory::open(store(dir.path()), config()).unwrap();
    assert!(m.check_integrity().unwrap().quarantined.is_empty());
    for id in &ids {
        let e = m.get("a", *id).unwrap().unwrap();
        let v = e.embedding.unwrap();
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{v:?}");
    }
    let q = SearchQuery::new("a", "vector")
        .with_vector(vec![1.0, 0.0, 0.0, 0.0])
        .with_mode(SearchMode::ExactVector);
    assert_eq!(m.search(&q).unwrap()[0].entry.id, ids[0]);
    m.consolidate().unwrap();
}

#[test]
fn metadata_and_query_limits_are_typed_errors_at_the_call() {
    let m = Memory::open(Storage::InMemory, config()).unwrap();
    let nest = |depth: usize| {
        let mut v = serde_json::json!("leaf");
        for _ in 0..depth {
            v = serde_json::json!({ "k": v });
        }
        v
    };
    let ok = m.insert(msg("shallow").with_metadata(nest(32))).unwrap();
    assert_eq!(m.get("a", ok).unwrap().unwrap().metadata, nest(32));
    for depth in [33, 128, 5_000] {
        let err = m
            .insert(msg("deep").with_metadata(nest(depth)))
            .unwrap_err();
        assert!(matches!(err, Error::MetadataTooDeep { limit: 32 }), "{err}");
        let err = m
            .append(msg("deep").with_metadata(nest(depth)))
            .unwrap_err();
        assert!(matches!(err, Error::MetadataTooDeep { .. }), "{err}");
    }
    let big = serde_json::json!({ "blob": "x".repeat(70 * 1024) });
    let err = m.insert(msg("big").with_metadata(big)).unwrap_err();
    assert!(matches!(err, Error::MetadataTooLarge { .. }), "{err}");
    // Nothing refused was stored, and everything can be read back.
    assert_eq!(m.count("a").unwrap(), 1);
    assert_eq!(m.list("a", &Default::default()).unwrap().len(), 1);

    let err = m
        .search(&SearchQuery::new("a", "x".repeat(100 * 1024)))
        .unwrap_err();
    assert!(matches!(err, Error::QueryTooLarge { .. }), "{err}");
    let err = m
        .search(&SearchQuery::new("a", "x").with_metadata("k", nest(40)))
        .unwrap_err();
    assert!(matches!(err, Error::MetadataTooDeep { .. }), "{err}");

    let bad = MemoryConfig {
        max_metadata_depth: 500,
        ..config()
    };
    assert!(matches!(
        Memory::open(Storage::InMemory, bad),
        Err(Error::InvalidConfig(_))
    ));
}

/// Writes a row straight into the file, as an older version or a person with sqlite3 might.
fn write_raw(path: &Path, sql: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(sql).unwrap();
}

#[test]
fn rows_that_cannot_be_read_back_are_set_aside_on_open_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ltm.db");
    let good = {
        let m = Memory::open(Storage::File(path.clone()), config()).unwrap();
        let ids = m
            .insert_batch((0..20).map(|i| msg(&format!("good entry {i}"))).collect())
            .unwrap();
        m.checkpoint().unwrap();
        ids
    };
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let zero = hex(&[0u8; 16]);
    let short = hex(&[0u8; 12]);
    let nan = hex(&f32::NAN.to_le_bytes().repeat(4));
    write_raw(
        &path,
        &format!(
            "INSERT INTO entries VALUES (1, 'a', 's', 0, 'deep metadata', NULL, 0.5, 1, 1, 0, '{deep}');
             INSERT INTO entries VALUES (2, 'a', 's', 9, 'unknown role', NULL, 0.5, 1, 1, 0, NULL);
             INSERT INTO entries VALUES (3, 'a', 's', 0, 'zero vector', x'{zero}', 0.5, 1, 1, 0, NULL);
             INSERT INTO entries VALUES (4, 'a', 's', 0, 'short vector', x'{short}', 0.5, 1, 1, 0, NULL);
             INSERT INTO entries VALUES (5, 'a', 's', 0, 'nan vector', x'{nan}', 0.5, 1, 1, 0, NULL);
             INSERT INTO entries VALUES (6, 'a', 's', 0, 'not json', NULL, 0.5, 1, 1, 0, '{{oops');
             INSERT INTO entries VALUES (7, 'a', 's', 0, x'fffe', NULL, 0.5, 1, 1, 0, NULL);
             INSERT INTO entries VALUES (8, 'a', 's', 0, 'importance', NULL, 'high', 1, 1, 0, NULL);"
        ),
    );
    for round in 0..2 {
        let m = Memory::open(Storage::File(path.clone()), config()).unwrap();
        let report = m.check_integrity().unwrap();
        let ids: Vec<u64> = report.quarantined.iter().map(|q| q.id.0).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8], "round {round}: {report:?}");
        assert!(
            report.quarantined[0].reason.contains("metadata"),
            "{report:?}"
        );
        // The 20 good entries, and one written after each earlier round.
        let expected = 20 + round;
        assert_eq!(m.count("a").unwrap(), expected as u64);
        for id in &good {
            assert!(m.get("a", *id).unwrap().is_some());
        }
        assert_eq!(m.list("a", &Default::default()).unwrap().len(), expected);
        let hits = m
            .search(&SearchQuery::new("a", "entry metadata role vector round").with_k(50))
            .unwrap();
        assert_eq!(hits.len(), expected);
        m.consolidate().unwrap();
        m.insert(msg(&format!("written after round {round}")))
            .unwrap();
    }
    // Quarantined rows are kept whole in the file.
    let c = rusqlite::Connection::open(&path).unwrap();
    let kept: i64 = c
        .query_row("SELECT COUNT(*) FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 8);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_store_is_not_reopened_with_another_embedding_dimension() {
    let dir = tempfile::tempdir().unwrap();
    {
        let m = Memory::open(store(dir.path()), config()).unwrap();
        m.insert(msg("four dimensions")).unwrap();
    }
    let other = MemoryConfig {
        embedding_dim: 8,
        ..config()
    };
    let err = Memory::open(store(dir.path()), other).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StoreDimensionMismatch {
                stored: 4,
                configured: 8,
                ..
            }
        ),
        "{err}"
    );
    // The refusal changed nothing.
    let m = Memory::open(store(dir.path()), config()).unwrap();
    assert_eq!(m.count("a").unwrap(), 1);
}

#[test]
fn a_negative_schema_version_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ltm.db");
    drop(Memory::open(Storage::File(path.clone()), config()).unwrap());
    write_raw(&path, "PRAGMA user_version = -1");
    let err = Memory::open(Storage::File(path), config()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn ids_never_wrap_past_the_largest_integer_sqlite_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ltm.db");
    drop(Memory::open(Storage::File(path.clone()), config()).unwrap());
    write_raw(
        &path,
        &format!(
            "INSERT INTO entries VALUES ({}, 'a', 's', 0, 'the last id', NULL, 0.5, 1, 1, 0, NULL)",
            i64::MAX
        ),
    );
    let m = Memory::open(Storage::File(path), config()).unwrap();
    let last = m.get("a", EntryId(i64::MAX as u64)).unwrap().unwrap();
    assert_eq!(last.content, "the last id");
    let err = m.insert(msg("one too many")).unwrap_err();
    assert!(matches!(err, Error::IdsExhausted { .. }), "{err}");
    assert_eq!(m.count("a").unwrap(), 1);
}
