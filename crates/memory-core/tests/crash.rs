//! Acknowledged writes survive a crash: a child process works on a store and reports each id it
//! knows is committed; the parent kills it with SIGKILL at a random point, reopens the file, and
//! checks that every acknowledged entry is there, intact, that nothing was set aside, and that the
//! file is consistent. Rounds run on the same file, so each also recovers from the previous kill,
//! and they cycle through three kinds of work the kill can land in:
//!
//! - `insert`: single inserts and batches (acknowledged when the call returns);
//! - `consolidate`: appends to short-term windows and consolidations (an entry is acknowledged
//!   once a consolidation returned and the child read it back from long-term memory);
//! - `open`: opening the store, i.e. the rebuild of the in-RAM indexes and the background linking
//!   after it (killed a random time after the child starts opening);
//! - `snapshot`: batches, each followed by `Memory::checkpoint`, which saves the index snapshot
//!   (so the kill often lands inside a snapshot write); the next open loads the last whole
//!   snapshot and replays the rest, and must still find every acknowledged entry.
//!
//! A second test kills a child while its open re-embeds the store with another embedder
//! (`reembed_on_embedder_change`): the next open must finish the re-embedding, with every entry
//! intact and every vector the new embedder's.
//!
//! The child is this test binary run again with `CRASH_CHILD_STORE` set, executing only
//! `crash_child`. Every backend of the suite runs it (see `common`); on the server backend the
//! store is a PostgreSQL schema and a Redis prefix, and a round's kill also cuts the child's
//! connections mid-request.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use memory_core::{EntryId, Memory, MemoryConfig, NewEntry, Role};
use rand::{Rng, SeedableRng};

const DIM: usize = 32;

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        stm_capacity: 5,
        ..MemoryConfig::default()
    }
}

fn content(round: u64, n: u64) -> String {
    format!(
        "round {round} entry {n}: {}",
        "lorem ipsum ".repeat((n % 7) as usize)
    )
}

/// Distinct directions, so that consolidation never skips an entry as a near-duplicate.
fn embedding(round: u64, n: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(round << 32 | n);
    (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn ack(out: &std::io::Stdout, id: EntryId, round: u64, n: u64) {
    let mut lock = out.lock();
    writeln!(lock, "ack {} {round} {n}", id.0).unwrap();
    lock.flush().unwrap();
}

/// Pauses the thread that reports a re-embedding done (the new embedder recorded, the open's
/// indexes not built yet), after printing "recorded": a kill then lands exactly there.
struct PauseAfterRecord;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PauseAfterRecord {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.contains("vectors are re-embedded") {
            println!("recorded");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(600));
        }
    }
}

/// The child: does the work of `CRASH_CHILD_MODE` forever, printing "ack <id> <round> <n>" for
/// each committed entry. Does nothing when run as an ordinary test.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var("CRASH_CHILD_STORE") else {
        return;
    };
    let round: u64 = std::env::var("CRASH_CHILD_ROUND").unwrap().parse().unwrap();
    let mode = std::env::var("CRASH_CHILD_MODE").unwrap();
    let out = std::io::stdout();
    if mode == "open" {
        println!("opening");
        let m = common::open_spec(&spec, config()).unwrap();
        println!("opened");
        m.wait_for_indexing();
        println!("indexed");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    if mode == "reembed" {
        if std::env::var_os("CRASH_CHILD_PAUSE_AFTER_RECORD").is_some() {
            use tracing_subscriber::layer::SubscriberExt;
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(PauseAfterRecord),
            )
            .unwrap();
        }
        println!("opening");
        let pause_at = std::env::var("CRASH_CHILD_PAUSE_AT")
            .ok()
            .map(|n| n.parse().unwrap());
        let m = common::builder_spec(&spec)
            .with_config(config())
            .with_embedder(std::sync::Arc::new(Keyed {
                pause_at,
                ..Arc::into_inner(Keyed::new(round)).unwrap()
            }))
            .reembed_on_embedder_change()
            .open()
            .unwrap();
        println!("opened");
        m.wait_for_indexing();
        println!("indexed");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let m = common::open_spec(&spec, config()).unwrap();
    let mut n = 0u64;
    loop {
        match mode.as_str() {
            "insert" if n.is_multiple_of(3) => {
                let batch: Vec<_> = (n..n + 10)
                    .map(|k| {
                        NewEntry::new("agent", format!("s{round}"), Role::User, content(round, k))
                            .with_embedding(embedding(round, k))
                    })
                    .collect();
                let ids = m.insert_batch(batch).unwrap();
                for (k, id) in (n..n + 10).zip(ids) {
                    ack(&out, id, round, k);
                }
                n += 10;
            }
            "insert" => {
                let e = NewEntry::new(
                    "agent",
                    format!("s{round}"),
                    Role::Assistant,
                    content(round, n),
                )
                .with_embedding(embedding(round, n));
                let id = m.insert(e).unwrap();
                ack(&out, id, round, n);
                n += 1;
            }
            "snapshot" => {
                let batch: Vec<_> = (n..n + 25)
                    .map(|k| {
                        NewEntry::new("agent", format!("s{round}"), Role::User, content(round, k))
                            .with_embedding(embedding(round, k))
                    })
                    .collect();
                let ids = m.insert_batch(batch).unwrap();
                for (k, id) in (n..n + 25).zip(ids) {
                    ack(&out, id, round, k);
                }
                m.checkpoint().unwrap();
                n += 25;
            }
            "consolidate" => {
                let mut appended = Vec::new();
                for k in n..n + 12 {
                    let e = NewEntry::new(
                        "agent",
                        format!("s{round}-{}", k % 3),
                        Role::User,
                        content(round, k),
                    )
                    .with_embedding(embedding(round, k))
                    .with_importance(1.0);
                    appended.push((m.append(e).unwrap(), k));
                }
                m.consolidate().unwrap();
                for (id, k) in appended {
                    if m.get("agent", id).unwrap().is_some() {
                        ack(&out, id, round, k);
                    }
                }
                n += 12;
            }
            other => panic!("unknown mode {other}"),
        }
    }
}

/// Fills the store so that opening it (rebuilding the indexes) takes long enough to be killed in.
fn prefill(m: &Memory, chunks: u64, acked: &mut BTreeMap<u64, (u64, u64)>) {
    const PREFILL_ROUND: u64 = 1_000;
    for chunk in 0..chunks {
        let batch: Vec<_> = (chunk * 1_000..(chunk + 1) * 1_000)
            .map(|k| {
                NewEntry::new("agent", "prefill", Role::User, content(PREFILL_ROUND, k))
                    .with_embedding(embedding(PREFILL_ROUND, k))
            })
            .collect();
        let ids = m.insert_batch(batch).unwrap();
        for (k, id) in (chunk * 1_000..).zip(ids) {
            acked.insert(id.0, (PREFILL_ROUND, k));
        }
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    for backend in common::backends() {
        eprintln!("-- on the {} store", backend.name());
        sigkill_rounds(&backend.fresh_store());
    }
}

fn sigkill_rounds(store: &common::TestStore) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    // id -> (round, n) of every acknowledged entry over all rounds
    let mut acked: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    {
        // The embedded store rebuilds its indexes on open: enough entries for a kill to land
        // in it. A server store opens without a rebuild; a small fill is enough.
        let m = store.open(config()).unwrap();
        prefill(
            &m,
            if store.backend.is_shared() { 1 } else { 20 },
            &mut acked,
        );
    }
    let modes = ["insert", "consolidate", "open", "snapshot"];
    let rounds: u64 = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if store.backend.is_shared() { 20 } else { 12 });
    let mut acked_by_mode = BTreeMap::new();
    for round in 0..rounds {
        let mode = modes[(round % 4) as usize];
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("CRASH_CHILD_STORE", store.spec())
            .env("CRASH_CHILD_ROUND", round.to_string())
            .env("CRASH_CHILD_MODE", mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        if mode == "open" {
            // Killed while opening, or while linking right after.
            let wait_for = rng.random_range(0..1_500u64);
            let began = Instant::now();
            // libtest prints "test crash_child ... " first, on the same line.
            let opening = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.ends_with("opening"));
            assert!(opening, "round {round}: the child never started opening");
            std::thread::sleep(Duration::from_millis(wait_for).saturating_sub(began.elapsed()));
        } else {
            let kill_after: usize = rng.random_range(1..400);
            let mut seen = 0;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                // The first line starts with libtest's "test crash_child ... ".
                let Some(at) = line.find("ack ") else {
                    continue;
                };
                let mut parts = line[at..].split_whitespace();
                parts.next();
                let nums: Vec<u64> = parts.map(|p| p.parse().unwrap()).collect();
                acked.insert(nums[0], (nums[1], nums[2]));
                *acked_by_mode.entry(mode).or_insert(0) += 1;
                seen += 1;
                if seen >= kill_after {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round} ({mode}): the child must have been killed"
        );

        let m = store.open(config()).unwrap();
        let report = m.check_integrity().unwrap();
        assert!(
            report.quarantined.is_empty(),
            "round {round} ({mode}): rows set aside: {report:?}"
        );
        for (id, (r, n)) in &acked {
            let e = m.get("agent", EntryId(*id)).unwrap().unwrap_or_else(|| {
                panic!("round {round} ({mode}): acknowledged entry {id} is missing")
            });
            assert_eq!(e.content, content(*r, *n), "entry {id}");
            assert_eq!(e.embedding.as_ref().map(|v| v.len()), Some(DIM));
        }
        assert!(m.count("agent").unwrap() >= acked.len() as u64);
    }
    for mode in ["insert", "consolidate", "snapshot"] {
        assert!(
            acked_by_mode.get(mode).copied().unwrap_or(0) > 5,
            "the {mode} rounds acknowledged too few writes to test anything: {acked_by_mode:?}"
        );
    }
}

/// An embedder of its own per `key`: a text's vector is drawn from a generator seeded by the text
/// and the key, so two keys put every text at unrelated places. Takes 100 us a text, so that a
/// re-embedding of a few thousand entries lasts long enough to be killed in; with `pause_at`,
/// the call that embeds that many texts prints "paused" and never returns (a kill then lands
/// exactly there).
#[derive(Debug)]
struct Keyed {
    key: u64,
    embedded: std::sync::atomic::AtomicUsize,
    pause_at: Option<usize>,
}

impl Keyed {
    fn new(key: u64) -> std::sync::Arc<Keyed> {
        std::sync::Arc::new(Keyed {
            key,
            embedded: Default::default(),
            pause_at: None,
        })
    }

    /// Texts embedded so far.
    fn embedded(&self) -> usize {
        self.embedded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The unit vector a store holds for `text`.
    fn unit(&self, text: &str) -> Vec<f32> {
        let v = self.draw(text);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    fn draw(&self, text: &str) -> Vec<f32> {
        let seed = text
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64 ^ self.key, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }
}

impl memory_core::Embedder for Keyed {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        std::thread::sleep(Duration::from_micros(100));
        let n = 1 + self
            .embedded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if Some(n) == self.pause_at {
            println!("paused");
            std::thread::sleep(Duration::from_secs(600));
        }
        self.draw(text)
    }

    fn id(&self) -> String {
        format!("keyed-{}", self.key)
    }
}

#[test]
fn a_reembedding_killed_at_any_point_is_finished_by_the_next_open() {
    for backend in common::backends() {
        eprintln!("-- on the {} store", backend.name());
        let store = backend.fresh_store();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x4e3b);
        // id -> content; the store's embedder (the default) makes the vectors.
        let mut stored = BTreeMap::new();
        {
            let m = store.open(config()).unwrap();
            for chunk in 0..4u64 {
                let contents: Vec<String> = (chunk * 1_000..(chunk + 1) * 1_000)
                    .map(|k| content(2_000, k))
                    .collect();
                let ids = m
                    .insert_batch(
                        contents
                            .iter()
                            .map(|c| NewEntry::new("agent", "s", Role::User, c.clone()))
                            .collect(),
                    )
                    .unwrap();
                stored.extend(ids.into_iter().map(|id| id.0).zip(contents));
            }
        }
        let rounds: u64 = std::env::var("CRASH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6);
        let n = stored.len();
        for round in 0..rounds {
            // Each round moves the store to an embedder of its own. The child is killed where
            // its embedder pauses, part of the way through (rounds 0, 3, ...); at a random time
            // (before, during or after its re-embedding, in a write or not: 1, 4, ...); or where
            // it pauses once the re-embedding is recorded done, before its open has built the
            // indexes anew (2, 5, ...: the snapshot on disk then holds the old vectors).
            let pause_at = (round % 3 == 0).then(|| rng.random_range(300..n - 300));
            let after_record = round % 3 == 2;
            let mut child = Command::new(std::env::current_exe().unwrap());
            child
                .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
                .env("CRASH_CHILD_STORE", store.spec())
                .env("CRASH_CHILD_ROUND", round.to_string())
                .env("CRASH_CHILD_MODE", "reembed")
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            if let Some(at) = pause_at {
                child.env("CRASH_CHILD_PAUSE_AT", at.to_string());
            }
            if after_record {
                child.env("CRASH_CHILD_PAUSE_AFTER_RECORD", "1");
            }
            let mut child = child.spawn().unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let awaited = if pause_at.is_some() {
                "paused"
            } else if after_record {
                "recorded"
            } else {
                "opening"
            };
            let seen = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.ends_with(awaited));
            assert!(seen, "round {round}: the child never printed {awaited}");
            if pause_at.is_none() && !after_record {
                std::thread::sleep(Duration::from_millis(rng.random_range(0..600)));
            }
            child.kill().unwrap(); // SIGKILL on Unix
            assert!(!child.wait().unwrap().success(), "round {round}");

            // Killed before the child recorded the change, the store is the last round's; after,
            // it is part re-embedded. Either way this open with the round's embedder finishes it.
            let target = Keyed::new(round);
            let m = store
                .builder()
                .with_config(config())
                .with_embedder(target.clone())
                .reembed_on_embedder_change()
                .open()
                .unwrap();
            if pause_at.is_some() {
                // Taken up after the batches the child committed, not begun again.
                assert!(
                    (1..n).contains(&target.embedded()),
                    "round {round}: the open embedded {} of {n}",
                    target.embedded()
                );
            }
            let report = m.check_integrity().unwrap();
            assert!(report.quarantined.is_empty(), "round {round}: {report:?}");
            assert_eq!(m.count("agent").unwrap(), stored.len() as u64);
            for (&id, text) in &stored {
                let e = m.get("agent", EntryId(id)).unwrap().unwrap();
                assert_eq!(&e.content, text, "round {round}: entry {id}");
                let v = e.embedding.as_deref().unwrap();
                let want = target.unit(text);
                let off = v
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    off < 1e-5,
                    "round {round}: entry {id} holds another embedder's vector (off by {off})"
                );
            }
            // The indexes hold the new vectors too (not a snapshot of the old ones): an entry's
            // own text is nearest to it. (Exact search: an approximate one may miss a vector
            // even of its own text, now and then, among 4,000 random ones.)
            for (&id, text) in stored.iter().step_by(97) {
                let hits = m
                    .search(
                        &memory_core::SearchQuery::new("agent", text.as_str())
                            .with_mode(memory_core::SearchMode::ExactVector)
                            .with_tiers(memory_core::Tiers::LongTerm)
                            .with_k(1),
                    )
                    .unwrap();
                assert_eq!(
                    hits.first().map(|h| h.entry.id.0),
                    Some(id),
                    "round {round}: vector search for entry {id}'s own text finds another"
                );
            }
            // Another embedder does not take the store for its own.
            drop(m);
            assert!(store
                .builder()
                .with_config(config())
                .with_embedder(Keyed::new(round + 100))
                .open()
                .is_err());
        }
    }
}
