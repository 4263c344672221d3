//! Acknowledged writes survive a crash: a child process writes entries and reports each id it got
//! back; the parent kills it with SIGKILL at a random point, reopens the file, and checks that
//! every acknowledged entry is there, intact, and that the file is consistent. Several rounds, on
//! the same file, so each round also recovers from the previous one's kill.
//!
//! The child is this test binary run again with `CRASH_CHILD_DB` set, executing only
//! `crash_child_writer`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use memory_core::{EntryId, Memory, MemoryConfig, NewEntry, Role, Storage};
use rand::{Rng, SeedableRng};

const DIM: usize = 8;

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        ..MemoryConfig::default()
    }
}

fn content(round: u64, n: u64) -> String {
    format!(
        "round {round} entry {n}: {}",
        "lorem ipsum ".repeat((n % 7) as usize)
    )
}

fn embedding(n: u64) -> Vec<f32> {
    (0..DIM)
        .map(|i| ((n as usize + i) % 5) as f32 + 1.0)
        .collect()
}

/// The child: writes single entries and batches forever, printing "ack <id> <round> <n>" after
/// each commit returns. Does nothing when run as an ordinary test.
#[test]
fn crash_child_writer() {
    let Ok(db) = std::env::var("CRASH_CHILD_DB") else {
        return;
    };
    let round: u64 = std::env::var("CRASH_CHILD_ROUND").unwrap().parse().unwrap();
    let m = Memory::open(Storage::File(db.into()), config()).unwrap();
    let out = std::io::stdout();
    let mut n = 0u64;
    loop {
        if n.is_multiple_of(3) {
            let batch: Vec<_> = (n..n + 10)
                .map(|k| {
                    NewEntry::new("agent", format!("s{round}"), Role::User, content(round, k))
                        .with_embedding(embedding(k))
                })
                .collect();
            let ids = m.insert_batch(batch).unwrap();
            let mut lock = out.lock();
            for (k, id) in (n..n + 10).zip(ids) {
                writeln!(lock, "ack {} {round} {k}", id.0).unwrap();
            }
            lock.flush().unwrap();
            n += 10;
        } else {
            let e = NewEntry::new(
                "agent",
                format!("s{round}"),
                Role::Assistant,
                content(round, n),
            )
            .with_embedding(embedding(n));
            let id = m.insert(e).unwrap();
            let mut lock = out.lock();
            writeln!(lock, "ack {} {round} {n}", id.0).unwrap();
            lock.flush().unwrap();
            n += 1;
        }
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    // id -> (round, n) of every acknowledged entry over all rounds
    let mut acked: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for round in 0..5u64 {
        let kill_after: usize = rng.random_range(1..400);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CRASH_CHILD_DB", &db)
            .env("CRASH_CHILD_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split_whitespace();
            if parts.next() != Some("ack") {
                continue; // libtest's own output
            }
            let nums: Vec<u64> = parts.map(|p| p.parse().unwrap()).collect();
            acked.insert(nums[0], (nums[1], nums[2]));
            seen += 1;
            if seen >= kill_after {
                child.kill().unwrap(); // SIGKILL on Unix
                break;
            }
        }
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child must have been killed"
        );

        let m = Memory::open(Storage::File(db.clone()), config()).unwrap();
        m.check_integrity().unwrap();
        for (id, (r, n)) in &acked {
            let e = m
                .get("agent", EntryId(*id))
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged entry {id} is missing"));
            assert_eq!(e.content, content(*r, *n), "entry {id}");
            assert_eq!(e.embedding.as_ref().map(|v| v.len()), Some(DIM));
        }
        assert!(m.count("agent").unwrap() >= acked.len() as u64);
    }
    assert!(
        acked.len() > 5,
        "the child acknowledged too few writes to test anything"
    );
}
