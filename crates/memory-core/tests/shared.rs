//! Many app instances on one memory (the server backend: PostgreSQL + Redis): two handles and
//! two processes see each other's writes on their next query, ids never collide, agents stay
//! isolated; and bad servers (down, refusing, silent, newer schema, wrong password, connections
//! killed mid-request) give typed errors naming the server, never a password, and lose nothing
//! acknowledged. Skipped, with a message, when the servers are not configured (see `common`).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use memory_core::{EntryId, Memory, MemoryConfig, NewEntry, Role, SearchQuery, Tiers};

const DIM: usize = 16;

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        stm_capacity: 4,
        ..MemoryConfig::default()
    }
}

fn msg(agent: &str, text: &str) -> NewEntry {
    NewEntry::new(agent, "s", Role::User, text)
}

fn ids_of(hits: &[memory_core::SearchHit]) -> Vec<EntryId> {
    hits.iter().map(|h| h.entry.id).collect()
}

#[test]
fn two_handles_see_each_others_writes_on_their_next_query() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let a = store.open(config()).unwrap();
        let b = store.open(config()).unwrap();
        let q = SearchQuery::new("agent", "lighthouse keeper");
        // A caches an answer...
        assert!(a.search(&q).unwrap().is_empty());
        assert!(a.search(&q).unwrap().is_empty());
        assert_eq!(a.cache_stats().hits, 1);
        // ...B writes long-term; A's next query must see it, not the cached answer.
        let id = b
            .insert(msg("agent", "the lighthouse keeper retired"))
            .unwrap();
        assert_eq!(ids_of(&a.search(&q).unwrap()), [id]);
        assert_eq!(
            a.get("agent", id).unwrap().unwrap().content,
            "the lighthouse keeper retired"
        );
        // Short-term: B appends, A's window and search see it at once.
        let stm = b
            .append(msg("agent", "a lighthouse keeper visits today"))
            .unwrap();
        assert_eq!(a.recent("agent", "s", 10).unwrap()[0].id, stm);
        let both = a.search(&q.clone().with_tiers(Tiers::Both)).unwrap();
        assert!(ids_of(&both).contains(&stm), "{both:?}");
        // A forgets; B's next (cached) query no longer returns it.
        b.search(&q.clone().with_tiers(Tiers::LongTerm)).unwrap();
        assert!(a.forget("agent", id).unwrap());
        assert!(b
            .search(&q.clone().with_tiers(Tiers::LongTerm))
            .unwrap()
            .is_empty());
        // A consolidates what B appended; B finds it in long-term memory.
        a.consolidate().unwrap();
        let promoted = b.search(&q.clone().with_tiers(Tiers::LongTerm)).unwrap();
        assert!(ids_of(&promoted).contains(&stm) || b.get("agent", stm).unwrap().is_none());
    }
}

/// The hashing embedder's vectors under an id of their own, counting the texts it embeds (at
/// 100 us a text, so that a re-embedding lasts a while).
#[derive(Debug)]
struct Counting {
    inner: memory_core::HashingEmbedder,
    embedded: std::sync::atomic::AtomicUsize,
}

impl memory_core::Embedder for Counting {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        std::thread::sleep(std::time::Duration::from_micros(100));
        self.embedded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.embed(text)
    }

    fn id(&self) -> String {
        "counting-hashing".into()
    }
}

#[test]
fn instances_opening_with_reembedding_at_once_reembed_the_store_once() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let n = 600;
        {
            let m = store.open(config()).unwrap();
            m.insert_batch((0..n).map(|i| msg("agent", &format!("fact {i}"))).collect())
                .unwrap();
        }
        let counting = std::sync::Arc::new(Counting {
            inner: memory_core::HashingEmbedder::new(DIM).unwrap(),
            embedded: Default::default(),
        });
        // Three instances restarted together with the new embedder: one re-embeds, the others
        // wait for it and find the store done.
        let instances: Vec<Memory> = std::thread::scope(|s| {
            let opening: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        store
                            .builder()
                            .with_config(config())
                            .with_embedder(counting.clone())
                            .reembed_on_embedder_change()
                            .open()
                            .unwrap()
                    })
                })
                .collect();
            opening.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let embedded = counting.embedded.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(embedded, n, "re-embedded more than once");
        for m in &instances {
            assert_eq!(m.count("agent").unwrap(), n as u64);
            let hits = m
                .search(
                    &SearchQuery::new("agent", "fact 417")
                        .with_mode(memory_core::SearchMode::Vector)
                        .with_k(1),
                )
                .unwrap();
            assert_eq!(hits[0].entry.content, "fact 417");
        }
    }
}

/// The hashing embedder's vectors with their components in reverse order, under an id of their
/// own: another space than the default embedder's, with the same texts.
#[derive(Debug)]
struct Reversed(memory_core::HashingEmbedder);

impl Reversed {
    fn new() -> std::sync::Arc<Reversed> {
        std::sync::Arc::new(Reversed(memory_core::HashingEmbedder::new(DIM).unwrap()))
    }
}

impl memory_core::Embedder for Reversed {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = self.0.embed(text);
        v.reverse();
        v
    }

    fn id(&self) -> String {
        "reversed-hashing".into()
    }
}

fn is_mismatch(e: &memory_core::Error) -> bool {
    matches!(e, memory_core::Error::StoreEmbedderMismatch { .. })
}

#[test]
fn an_instance_whose_embedder_the_store_no_longer_records_can_neither_write_nor_search() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let old = store.open(config()).unwrap();
        old.insert(msg("agent", "the heron nests by the weir"))
            .unwrap();
        let q = SearchQuery::new("agent", "heron");
        assert_eq!(old.search(&q).unwrap().len(), 1);
        // Another instance moves the store to its embedder while `old` runs.
        let new = store
            .builder()
            .with_config(config())
            .with_embedder(Reversed::new())
            .reembed_on_embedder_change()
            .open()
            .unwrap();
        // `old` would write vectors of the old space into the new one, and compare its query
        // vectors with the new ones: both are refused, with the error that says what to do.
        let write = old.insert(msg("agent", "an old-space vector")).unwrap_err();
        assert!(is_mismatch(&write), "{write}");
        assert!(write.to_string().contains("reversed-hashing"), "{write}");
        let batch = old
            .insert_batch(vec![msg("agent", "a"), msg("agent", "b")])
            .unwrap_err();
        assert!(is_mismatch(&batch), "{batch}");
        let search = old.search(&q).unwrap_err();
        assert!(is_mismatch(&search), "{search}");
        // A search that skips the cache reads the record with the agent's entry count, which
        // it trusts for a second.
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        for mode in [
            memory_core::SearchMode::Vector,
            memory_core::SearchMode::ExactVector,
        ] {
            let uncached = q.clone().with_mode(mode).without_cache();
            let e = old.search(&uncached).unwrap_err();
            assert!(is_mismatch(&e), "{mode:?}: {e}");
        }
        // Consolidation writes long-term too: refused, and the short-term entry is kept.
        old.append(msg("agent", "an important turn about herons").with_importance(1.0))
            .unwrap();
        let consolidated = old.consolidate().unwrap_err();
        assert!(is_mismatch(&consolidated), "{consolidated}");
        assert_eq!(new.count("agent").unwrap(), 1, "a refused write was stored");
        assert_eq!(
            new.recent("agent", "s", 10).unwrap().len(),
            1,
            "the short-term entry was lost"
        );
        // The instance with the recorded embedder writes and searches; an accepted change by a
        // third one then refuses it in turn.
        new.insert(msg("agent", "a heron again")).unwrap();
        let long_term = q.clone().with_tiers(Tiers::LongTerm);
        assert_eq!(new.search(&long_term).unwrap().len(), 2);
        let _third = store
            .builder()
            .with_config(config())
            .accept_embedder_change()
            .open()
            .unwrap();
        let after = new.insert(msg("agent", "refused now")).unwrap_err();
        assert!(is_mismatch(&after), "{after}");
        // A restart with the recorded embedder is the way back.
        let restarted = store.open(config()).unwrap();
        restarted.insert(msg("agent", "written again")).unwrap();
        assert_eq!(restarted.count("agent").unwrap(), 3);
    }
}

#[test]
fn writes_under_way_during_a_reembedding_end_with_the_new_embedders_vectors_or_are_refused() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let old = store.open(config()).unwrap();
        old.insert_batch(
            (0..500)
                .map(|i| msg("agent", &format!("seed {i}")))
                .collect(),
        )
        .unwrap();
        // `old` writes as fast as it can while another instance re-embeds the store; it stops at
        // its first refusal, which must come once the re-embedding has begun.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (acknowledged, refusal, new) = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let text = format!("written during the move {i}");
                    match old.insert(msg("agent", &text)) {
                        Ok(id) => acknowledged.push((id, text)),
                        Err(e) => return (acknowledged, Some(e)),
                    }
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // One more write after the other instance opened: refused.
                        let e = old.insert(msg("agent", "after the move")).unwrap_err();
                        return (acknowledged, Some(e));
                    }
                }
                unreachable!()
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            let new = store
                .builder()
                .with_config(config())
                .with_embedder(Reversed::new())
                .reembed_on_embedder_change()
                .open()
                .unwrap();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (acknowledged, refusal) = writer.join().unwrap();
            (acknowledged, refusal, new)
        });
        let refusal = refusal.expect("the writer was never refused");
        assert!(is_mismatch(&refusal), "{refusal}");
        assert!(
            !acknowledged.is_empty(),
            "no write went through before the move"
        );
        // Every acknowledged write is stored, with the new embedder's vector of its text.
        let reversed = Reversed::new();
        for (id, text) in &acknowledged {
            let entry = new
                .get("agent", *id)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged write {id:?} lost"));
            assert_eq!(&entry.content, text);
            let stored = entry.embedding.expect("a vector");
            let want = memory_core::Embedder::embed(reversed.as_ref(), text);
            let cos: f32 = stored.iter().zip(&want).map(|(a, b)| a * b).sum();
            assert!(
                cos > 0.999,
                "{text:?} kept a vector of the old embedder (cos {cos})"
            );
        }
        assert_eq!(new.count("agent").unwrap(), 500 + acknowledged.len() as u64);
    }
}

#[test]
fn an_agent_named_like_the_reembedding_lock_does_not_hold_the_reembedding_up() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        // The name the re-embedding's lock is hashed from.
        let agent = format!("{}.reembed", store.name());
        store
            .open(config())
            .unwrap()
            .insert(msg(&agent, "a turn of an oddly named agent"))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let builder = store
            .builder()
            .with_config(config())
            .with_embedder(Reversed::new())
            .reembed_on_embedder_change();
        // On a thread of its own: the failure this guards against is a wait with no end.
        std::thread::spawn(move || {
            let _ = tx.send(builder.open().map(|m| m.count(&agent)));
        });
        let opened = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the re-embedding waited for its own lock");
        assert_eq!(opened.unwrap().unwrap(), 1);
    }
}

/// An embedder whose re-embedding of a store dies part way: it tells when its first batch is
/// written, waits to be let go, embeds one more batch and then panics (the instance's death).
#[derive(Debug)]
struct DiesMidway {
    inner: memory_core::HashingEmbedder,
    embedded: std::sync::atomic::AtomicUsize,
    first_batch_written: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    go: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl memory_core::Embedder for DiesMidway {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        // A re-embedding embeds and writes batches of 256 in turn.
        let n = self
            .embedded
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 256 {
            if let Some(tx) = self.first_batch_written.lock().unwrap().take() {
                let _ = tx.send(());
            }
            if let Some(rx) = self.go.lock().unwrap().take() {
                let _ = rx.recv();
            }
        }
        assert!(n < 512, "the instance dies");
        let mut v = self.inner.embed(text);
        v.iter_mut().for_each(|x| *x = -*x);
        v
    }

    fn id(&self) -> String {
        "negated-hashing".into()
    }
}

#[test]
fn a_reembedding_begun_while_another_runs_redoes_what_the_other_wrote() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let texts: Vec<String> = (0..1_000).map(|i| format!("fact number {i}")).collect();
        store
            .open(config())
            .unwrap()
            .insert_batch(texts.iter().map(|t| msg("agent", t)).collect())
            .unwrap();
        let (written_tx, written_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let dies = std::sync::Arc::new(DiesMidway {
            inner: memory_core::HashingEmbedder::new(DIM).unwrap(),
            embedded: Default::default(),
            first_batch_written: std::sync::Mutex::new(Some(written_tx)),
            go: std::sync::Mutex::new(Some(go_rx)),
        });
        let opening = |embedder: std::sync::Arc<dyn memory_core::Embedder>| {
            let builder = store
                .builder()
                .with_config(config())
                .with_embedder(embedder)
                .reembed_on_embedder_change();
            move || builder.open()
        };
        std::thread::scope(|s| {
            // The first instance re-embeds to its embedder and dies after two batches.
            let first = s.spawn(opening(dies.clone()));
            written_rx.recv().unwrap();
            // A second instance, with a third embedder, opens meanwhile: it must not take the
            // first one's batches for its own.
            let second = s.spawn(opening(Reversed::new()));
            std::thread::sleep(std::time::Duration::from_millis(1_500));
            go_tx.send(()).unwrap();
            assert!(first.join().is_err(), "the first instance did not die");
            let m = second.join().unwrap().unwrap();
            let reversed = Reversed::new();
            let entries = m.list("agent", &memory_core::ListQuery::default()).unwrap();
            assert_eq!(entries.len(), texts.len());
            let stale = entries
                .iter()
                .filter(|e| {
                    let want = memory_core::Embedder::embed(reversed.as_ref(), &e.content);
                    let got = e.embedding.as_ref().expect("a vector");
                    got.iter().zip(&want).map(|(a, b)| a * b).sum::<f32>() < 0.999
                })
                .count();
            assert_eq!(stale, 0, "entries kept another embedder's vectors");
        });
    }
}

/// The child of the two-process tests: runs the action in `SHARED_CHILD_ACTION` on the store in
/// `SHARED_CHILD_STORE`, printing "id <n>" per write. Does nothing as an ordinary test.
#[test]
fn shared_child() {
    let Ok(spec) = std::env::var("SHARED_CHILD_STORE") else {
        return;
    };
    let m = common::open_spec(&spec, config()).unwrap();
    let action = std::env::var("SHARED_CHILD_ACTION").unwrap();
    match action.as_str() {
        "write" => {
            // Long-term single inserts and batches, and a short-term append.
            for i in 0..20 {
                let id = m
                    .insert(msg("agent", &format!("child note {i} about otters")))
                    .unwrap();
                println!("id {}", id.0);
            }
            for id in m
                .insert_batch(
                    (0..30)
                        .map(|i| msg("agent", &format!("child batch {i}")))
                        .collect(),
                )
                .unwrap()
            {
                println!("id {}", id.0);
            }
            let id = m
                .append(msg("agent", "child window turn about otters"))
                .unwrap();
            println!("stm {}", id.0);
        }
        "check" => {
            // The parent's write must be visible at once.
            let hits = m
                .search(&SearchQuery::new("agent", "parent walrus"))
                .unwrap();
            assert!(
                hits.iter()
                    .any(|h| h.entry.content == "the parent saw a walrus"),
                "{hits:?}"
            );
            println!("seen");
        }
        other => panic!("unknown action {other}"),
    }
}

fn run_child(store: &common::TestStore, action: &str) -> Vec<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["shared_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("SHARED_CHILD_STORE", store.spec())
        .env("SHARED_CHILD_ACTION", action)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "child {action} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_start_matches("test shared_child ... ").to_owned())
        .collect()
}

#[test]
fn two_processes_see_each_others_writes_on_their_next_query() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let m = store.open(config()).unwrap();
        let q = SearchQuery::new("agent", "otters")
            .with_k(50)
            .with_tiers(Tiers::Both);
        assert!(m.search(&q).unwrap().is_empty()); // cached empty answer
        let lines = run_child(&store, "write");
        let ids: Vec<u64> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("id ")?.parse().ok())
            .collect();
        let stm: u64 = lines
            .iter()
            .find_map(|l| l.strip_prefix("stm ")?.parse().ok())
            .unwrap();
        assert_eq!(ids.len(), 50);
        for id in &ids {
            assert!(
                m.get("agent", EntryId(*id)).unwrap().is_some(),
                "entry {id}"
            );
        }
        assert_eq!(m.count("agent").unwrap(), 50);
        let found = ids_of(&m.search(&q).unwrap());
        assert!(found.contains(&EntryId(stm)), "the child's window entry");
        assert!(found.len() >= 21, "{found:?}");
        // And the other way round.
        m.insert(msg("agent", "the parent saw a walrus")).unwrap();
        assert!(run_child(&store, "check")
            .iter()
            .any(|l| l.contains("seen")));
    }
}

#[test]
fn ids_never_collide_across_handles_threads_and_processes() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let mut children: Vec<_> = (0..2)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args(["shared_child", "--exact", "--nocapture", "--test-threads=1"])
                    .env("SHARED_CHILD_STORE", store.spec())
                    .env("SHARED_CHILD_ACTION", "write")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let handles: Vec<Memory> = (0..2).map(|_| store.open(config()).unwrap()).collect();
        let mut ids: Vec<u64> = std::thread::scope(|s| {
            let threads: Vec<_> = handles
                .iter()
                .flat_map(|m| (0..2).map(move |t| (m, t)))
                .map(|(m, t)| {
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        for i in 0..40 {
                            let e = msg("agent", &format!("thread {t} entry {i}"));
                            mine.push(
                                if i % 2 == 0 { m.insert(e) } else { m.append(e) }
                                    .unwrap()
                                    .0,
                            );
                        }
                        mine
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        for child in &mut children {
            let out = BufReader::new(child.stdout.take().unwrap());
            ids.extend(out.lines().map_while(Result::ok).filter_map(|l| {
                let l = l.trim_start_matches("test shared_child ... ").to_owned();
                let (_, n) = l.split_once(' ')?;
                n.parse::<u64>().ok()
            }));
            assert!(child.wait().unwrap().success());
        }
        let distinct: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(ids.len(), 4 * 40 + 2 * 51);
        assert_eq!(distinct.len(), ids.len(), "an id was handed out twice");
    }
}

#[test]
fn agents_stay_isolated_across_instances() {
    for backend in common::shared_backends() {
        let store = backend.fresh_store();
        let a = store.open(config()).unwrap();
        let b = store.open(config()).unwrap();
        let secret = a
            .insert(msg("alice", "alice keeps the vault code 7421"))
            .unwrap();
        a.append(msg("alice", "alice whispers the vault code"))
            .unwrap();
        for q in [
            SearchQuery::new("bob", "vault code"),
            SearchQuery::new("bob", "vault code").with_tiers(Tiers::Both),
        ] {
            assert!(b.search(&q).unwrap().is_empty());
        }
        assert!(b.get("bob", secret).unwrap().is_none());
        assert!(!b.forget("bob", secret).unwrap());
        assert!(b.recent("bob", "s", 10).unwrap().is_empty());
        assert_eq!(b.count("bob").unwrap(), 0);
        assert_eq!(b.count("alice").unwrap(), 1);
    }
}

#[cfg(all(feature = "postgres", feature = "redis"))]
mod bad_servers {
    use std::time::Duration;

    use super::*;
    use memory_core::{
        Analyzer, Error, PostgresConfig, RedisConfig, ServerProblem, ShortTermStorage, Storage,
    };

    /// A loopback port with nothing listening.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        port
    }

    fn assert_server_error(e: &Error, want: fn(&ServerProblem) -> bool, names: &str) {
        match e {
            Error::Server {
                server, problem, ..
            } => {
                assert!(want(problem), "{e}");
                assert!(server.contains(names), "{e}");
                assert!(!e.to_string().contains("hunter2"), "password leaked: {e}");
                assert!(
                    !format!("{e:?}").contains("hunter2"),
                    "password leaked: {e:?}"
                );
            }
            other => panic!("expected a server error, got {other}"),
        }
    }

    #[test]
    fn a_server_that_is_down_is_a_typed_error_naming_it() {
        let port = closed_port();
        let pg = PostgresConfig::new(format!("postgres://app:hunter2@127.0.0.1:{port}/db"));
        let e = Memory::open(Storage::Postgres(pg), config()).unwrap_err();
        assert_server_error(
            &e,
            |p| matches!(p, ServerProblem::ConnectionRefused),
            &format!("127.0.0.1:{port}"),
        );
        let redis = RedisConfig::new(format!("redis://:hunter2@127.0.0.1:{port}"));
        let e = Memory::builder(Storage::InMemory)
            .with_short_term(ShortTermStorage::Redis(redis))
            .with_config(config())
            .open()
            .unwrap_err();
        assert_server_error(
            &e,
            |p| matches!(p, ServerProblem::ConnectionRefused),
            &format!("127.0.0.1:{port}"),
        );
    }

    #[test]
    fn a_server_that_never_answers_times_out_with_a_typed_error() {
        // Accepts connections (the kernel does) and never says a word.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let pg = PostgresConfig::new(format!("postgres://app:hunter2@127.0.0.1:{port}/db"))
            .with_connect_timeout(Duration::from_millis(500));
        let e = Memory::open(Storage::Postgres(pg), config()).unwrap_err();
        assert_server_error(
            &e,
            |p| matches!(p, ServerProblem::Timeout(_) | ServerProblem::Unreachable(_)),
            &format!("127.0.0.1:{port}"),
        );
        let redis = RedisConfig::new(format!("redis://127.0.0.1:{port}"))
            .with_timeout(Duration::from_millis(500));
        let e = Memory::builder(Storage::InMemory)
            .with_short_term(ShortTermStorage::Redis(redis))
            .with_config(config())
            .open()
            .unwrap_err();
        assert_server_error(
            &e,
            |p| {
                matches!(
                    p,
                    ServerProblem::Timeout(_) | ServerProblem::ConnectionLost(_)
                )
            },
            &format!("127.0.0.1:{port}"),
        );
        drop(silent);
    }

    fn admin(url: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        (rt, client)
    }

    fn redis_url() -> Option<String> {
        common::shared_backends().into_iter().find_map(|b| match b {
            common::Backend::Servers { redis_url, .. } => Some(redis_url),
            _ => None,
        })
    }

    /// A TCP relay to a server that, once armed, passes on the first request holding every one
    /// of its marks and then closes that connection instead of passing on the reply: the
    /// command ran, and the client never hears so (a reply lost on the way back).
    struct LosingRelay {
        port: u16,
        armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
        lost: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl LosingRelay {
        fn start(target: String, marks: &'static [&'static [u8]]) -> LosingRelay {
            use std::io::{Read, Write};
            use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
            use std::sync::Arc;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let armed = Arc::new(AtomicBool::new(false));
            let lost = Arc::new(AtomicUsize::new(0));
            let (armed2, lost2) = (armed.clone(), lost.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(mut client) = client else { return };
                    let Ok(mut server) = std::net::TcpStream::connect(&target) else {
                        continue;
                    };
                    let swallow = Arc::new(AtomicBool::new(false));
                    let (mut client_w, mut server_r) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let (swallow2, lost3) = (swallow.clone(), lost2.clone());
                    // Server to client: the reply of the marked request is dropped with the
                    // connection.
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 16];
                        loop {
                            let n = match server_r.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if swallow2.load(Ordering::SeqCst) {
                                lost3.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            if client_w.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = client_w.shutdown(std::net::Shutdown::Both);
                        let _ = server_r.shutdown(std::net::Shutdown::Both);
                    });
                    let armed3 = armed2.clone();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 16];
                        loop {
                            let n = match client.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let chunk = &buf[..n];
                            let marked = marks
                                .iter()
                                .all(|m| chunk.windows(m.len()).any(|w| w == *m));
                            if marked && armed3.swap(false, Ordering::SeqCst) {
                                swallow.store(true, Ordering::SeqCst);
                            }
                            if server.write_all(chunk).is_err() {
                                break;
                            }
                        }
                        let _ = server.shutdown(std::net::Shutdown::Both);
                    });
                }
            });
            LosingRelay { port, armed, lost }
        }

        /// `url` with its host and port replaced by the relay's.
        fn url(&self, url: &str) -> String {
            let (scheme, rest) = url.split_once("://").unwrap();
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let user = authority.rfind('@').map_or("", |at| &authority[..=at]);
            format!("{scheme}://{user}127.0.0.1:{}{path}", self.port)
        }

        fn arm(&self) {
            self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        }

        fn replies_lost(&self) -> usize {
            self.lost.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// The host and port of a server URL.
    fn address(url: &str) -> String {
        let rest = url.split_once("://").unwrap().1;
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        authority[authority.rfind('@').map_or(0, |at| at + 1)..].to_owned()
    }

    #[test]
    fn a_consolidation_whose_sweep_reply_is_lost_still_keeps_what_the_sweep_moved() {
        let Some(url) = redis_url() else { return };
        // The script that moves an agent's hand-off list into the consolidation's batch: the
        // only request that names both a hand-off list (`:h:`) and a batch (`:f:`).
        let relay = LosingRelay::start(address(&url), &[b"EVALSHA", b":h:", b":f:"]);
        let store = common::shared_backends()[0].fresh_store();
        let redis = RedisConfig::new(relay.url(&url))
            .with_prefix(format!("test:{}", store.name()))
            .with_timeout(Duration::from_secs(2));
        let m = Memory::builder(Storage::InMemory)
            .with_short_term(ShortTermStorage::Redis(redis.clone()))
            .with_config(config())
            .open()
            .unwrap();
        // Runs every script of a consolidation once, so that the server holds them and the
        // marked request is one that runs (not one refused for an unknown script).
        for i in 0..5 {
            m.append(msg("agent", &format!("warm-up turn {i}")))
                .unwrap();
        }
        m.consolidate().unwrap();
        let ids: Vec<EntryId> = (0..8)
            .map(|i| {
                m.append(
                    msg(
                        "agent",
                        &format!("planted fact {i}: the vault code is {i}{i}"),
                    )
                    .with_importance(1.0),
                )
                .unwrap()
            })
            .collect();
        relay.arm();
        m.consolidate().unwrap();
        assert_eq!(relay.replies_lost(), 1, "the relay lost no reply");
        // The first four left the window of four: they were in the hand-off list the lost
        // sweep moved, and important enough to keep.
        for id in &ids[..4] {
            assert!(
                m.get("agent", *id).unwrap().is_some(),
                "{id:?} is in neither tier after the sweep's reply was lost"
            );
        }
        drop(m);
        redis.destroy().unwrap();
    }

    /// Retrieval counts are written to PostgreSQL deferred, on their own (`flush`) or riding
    /// along with an insert. When the reply to that write is lost, the write is sent again on a
    /// new connection: the counts must be added once, not twice.
    #[test]
    fn access_counts_whose_reply_is_lost_are_added_once() {
        let Some(url) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        let (pg, _) = store.server_configs();
        let m = Memory::builder(Storage::Postgres(pg.clone()))
            .with_config(config())
            .open()
            .unwrap();
        let ids = m
            .insert_batch(vec![
                msg("agent", "my sister lives in lisbon"),
                msg("agent", "the weather is grey"),
            ])
            .unwrap();
        // One handle through a relay that loses the reply to the next request naming the
        // entry's id (binary, in the parameters): the access write of a flush. Another through
        // one that loses the reply to the next COMMIT: an insert with the counts riding along.
        let id_bytes: &'static [u8] = Box::leak(Box::new((ids[0].0 as i64).to_be_bytes()));
        let marks: &'static [&'static [u8]] = Box::leak(Box::new([id_bytes]));
        let (by_id, by_commit) = (
            LosingRelay::start(address(&url), marks),
            LosingRelay::start(address(&url), &[b"COMMIT"]),
        );
        let through = |relay: &LosingRelay| {
            let pg = PostgresConfig {
                url: relay.url(&url),
                ..pg.clone()
            };
            Memory::builder(Storage::Postgres(pg))
                .with_config(config())
                .open()
                .unwrap()
        };
        let retrieve = |m: &Memory| {
            let hits = m
                .search(&SearchQuery::new("agent", "lisbon").without_cache())
                .unwrap();
            assert_eq!(ids_of(&hits)[0], ids[0]);
        };
        let count = || m.get("agent", ids[0]).unwrap().unwrap().access_count;

        let flushing = through(&by_id);
        retrieve(&flushing);
        by_id.arm();
        // An error here would have the caller flush again, adding the counts a second time.
        flushing.flush().unwrap();
        flushing.flush().unwrap();
        assert_eq!(by_id.replies_lost(), 1, "the relay lost no reply");
        assert_eq!(
            count(),
            1,
            "one retrieval, counted by a flush whose reply was lost"
        );

        let inserting = through(&by_commit);
        retrieve(&inserting);
        // The counts ride along with the first insert a second after the handle's last access
        // write (its open).
        std::thread::sleep(Duration::from_millis(1_100));
        by_commit.arm();
        inserting
            .insert(msg("agent", "a new entry carrying the counts"))
            .unwrap();
        assert_eq!(by_commit.replies_lost(), 1, "the relay lost no reply");
        inserting.flush().unwrap();
        assert_eq!(
            count(),
            2,
            "one more retrieval, riding along with an insert"
        );
    }

    /// (xmin, ctid) of each entry row of the store: another version of a row (an UPDATE)
    /// changes both.
    fn row_versions(
        rt: &tokio::runtime::Runtime,
        client: &tokio_postgres::Client,
        schema: &str,
    ) -> Vec<(i64, String, String)> {
        rt.block_on(client.query(
            &format!("SELECT id, xmin::text, ctid::text FROM {schema}.entries ORDER BY id"),
            &[],
        ))
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    }

    /// (id, count) of each row of the store's `access` table.
    fn access_rows(
        rt: &tokio::runtime::Runtime,
        client: &tokio_postgres::Client,
        schema: &str,
    ) -> Vec<(i64, i64)> {
        rt.block_on(client.query(
            &format!("SELECT id, count FROM {schema}.access ORDER BY id"),
            &[],
        ))
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    fn keyword_search(m: &Memory, text: &str) -> Vec<EntryId> {
        ids_of(
            &m.search(
                &SearchQuery::new("agent", text)
                    .with_mode(memory_core::SearchMode::Keyword)
                    .without_cache(),
            )
            .unwrap(),
        )
    }

    /// Retrieval counts written back go to a narrow table (schema migration 8): the entries'
    /// rows stay as they were, where each write-back used to write a new version of every
    /// retrieved row (text, vector and all) and a tuple into every index of the table, the HNSW
    /// graph's included. The counts are read with the entries, and survive a reopen.
    #[test]
    fn written_back_retrieval_counts_leave_the_entry_rows_as_they_were_and_survive_reopening() {
        let Some(url) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        let (pg, _) = store.server_configs();
        let open = || {
            Memory::builder(Storage::Postgres(pg.clone()))
                .with_config(config())
                .open()
                .unwrap()
        };
        let m = open();
        let ids = m
            .insert_batch(vec![
                msg("agent", "my sister lives in lisbon"),
                msg("agent", "the weather is grey"),
            ])
            .unwrap();
        let (rt, client) = admin(&url);
        let schema = store.name();
        let before = row_versions(&rt, &client, schema);
        let count = |m: &Memory| m.get("agent", ids[0]).unwrap().unwrap().access_count;

        // A write-back of its own (`flush`).
        assert_eq!(keyword_search(&m, "lisbon"), [ids[0]]);
        m.flush().unwrap();
        assert_eq!(
            row_versions(&rt, &client, schema),
            before,
            "a write-back of retrieval counts wrote new versions of the entry rows"
        );
        assert_eq!(count(&m), 1);
        assert_eq!(access_rows(&rt, &client, schema), [(ids[0].0 as i64, 1)]);

        // Riding along with an insert, a second after the last write-back.
        assert_eq!(keyword_search(&m, "lisbon"), [ids[0]]);
        assert_eq!(keyword_search(&m, "weather"), [ids[1]]);
        std::thread::sleep(Duration::from_millis(1_100));
        m.insert(msg("agent", "a new entry carrying the counts"))
            .unwrap();
        assert_eq!(
            row_versions(&rt, &client, schema)[..2],
            before[..],
            "a write-back riding along with an insert wrote new versions of the entry rows"
        );
        assert_eq!(count(&m), 2);
        assert_eq!(
            access_rows(&rt, &client, schema),
            [(ids[0].0 as i64, 2), (ids[1].0 as i64, 1)]
        );
        let listed = m.list("agent", &Default::default()).unwrap();
        let last = listed.iter().find(|e| e.id == ids[0]).unwrap();
        assert_eq!(last.access_count, 2);
        assert!(last.last_accessed_at > last.created_at);
        let at = last.last_accessed_at;
        drop(m);

        let m = open();
        let e = m.get("agent", ids[0]).unwrap().unwrap();
        assert_eq!((e.access_count, e.last_accessed_at), (2, at));
        assert_eq!(m.get("agent", ids[1]).unwrap().unwrap().access_count, 1);
    }

    /// Forgetting an entry removes its retrieval counts in the same transaction, those still
    /// pending in RAM too (the forget writes them back first): no row is left for an id no
    /// entry has.
    #[test]
    fn a_forgotten_entry_takes_its_retrieval_counts_along() {
        let Some(url) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        let m = store.open(config()).unwrap();
        let (rt, client) = admin(&url);
        let schema = store.name();
        let milk = m.insert(msg("agent", "remember the milk")).unwrap();
        let bread = m.insert(msg("agent", "buy bread")).unwrap();
        assert_eq!(keyword_search(&m, "milk"), [milk]);
        assert_eq!(keyword_search(&m, "bread"), [bread]);
        m.flush().unwrap();
        assert_eq!(
            access_rows(&rt, &client, schema),
            [(milk.0 as i64, 1), (bread.0 as i64, 1)]
        );
        // Retrieved again (pending in RAM), then forgotten.
        assert_eq!(keyword_search(&m, "milk"), [milk]);
        assert!(m.forget("agent", milk).unwrap());
        assert_eq!(access_rows(&rt, &client, schema), [(bread.0 as i64, 1)]);
        assert!(m.get("agent", milk).unwrap().is_none());
        drop(m);
        let m = store.open(config()).unwrap();
        assert_eq!(m.get("agent", bread).unwrap().unwrap().access_count, 1);
    }

    #[test]
    fn destroying_a_tier_leaves_the_tier_whose_prefix_extends_its_prefix() {
        let Some(url) = redis_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        let outer = RedisConfig::new(url.clone()).with_prefix(format!("test:{}", store.name()));
        let inner = RedisConfig::new(url).with_prefix(format!("test:{}:x", store.name()));
        let open = |redis: &RedisConfig| {
            Memory::builder(Storage::InMemory)
                .with_short_term(ShortTermStorage::Redis(redis.clone()))
                .with_config(config())
                .open()
                .unwrap()
        };
        let (a, b) = (open(&outer), open(&inner));
        b.append(msg("agent", "the inner tier's turn")).unwrap();
        a.append(msg("agent", "the outer tier's turn")).unwrap();
        drop((a, b));
        outer.destroy().unwrap();
        let (a, b) = (open(&outer), open(&inner));
        assert_eq!(a.stats().unwrap().stm_entries, 0);
        assert_eq!(
            b.stats().unwrap().stm_entries,
            1,
            "destroying the tier of {:?} deleted the turn of the tier of {:?}",
            outer.prefix,
            inner.prefix
        );
        drop((a, b));
        inner.destroy().unwrap();
    }

    fn postgres_url() -> Option<String> {
        common::shared_backends().into_iter().find_map(|b| match b {
            common::Backend::Servers { postgres_url, .. } => Some(postgres_url),
            _ => None,
        })
    }

    /// With long-term memory on PostgreSQL and short-term memory in RAM, appends run inline on
    /// the runtime's thread, except the one that waits for a new block of ids from the server:
    /// that one must leave the thread to the runtime's other tasks (a first poll that is still
    /// pending), as every other call that waits on a server does.
    #[test]
    fn an_async_append_that_waits_for_new_ids_leaves_the_runtime_thread() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};

        let Some(_) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        let (pg, _) = store.server_configs();
        let m = Memory::builder(Storage::Postgres(pg))
            .with_config(config())
            .open()
            .unwrap();
        let memory = memory_core::AsyncMemory::new(m);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let waited: Vec<usize> = runtime.block_on(async {
            let mut waited = Vec::new();
            for i in 0..1_100 {
                let mut append = std::pin::pin!(memory.append(msg("agent", &format!("turn {i}"))));
                let first = append
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()));
                if first.is_pending() {
                    waited.push(i);
                    append.await.unwrap();
                } else if let Poll::Ready(id) = first {
                    id.unwrap();
                }
            }
            waited
        });
        // The first append takes the first block; 1,100 appends need a second one.
        assert_eq!(waited.first(), Some(&0), "waited at {waited:?}");
        assert_eq!(waited.len(), 2, "waited at {waited:?}");
    }

    #[test]
    fn a_wrong_password_is_refused_without_showing_it() {
        let Some(url) = postgres_url() else { return };
        let mut parsed: tokio_postgres::Config = url.parse().unwrap();
        parsed.password("hunter2");
        let host = match &parsed.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[allow(unreachable_patterns)]
            _ => return,
        };
        let bad = format!(
            "postgres://{}:hunter2@{host}:{}/{}",
            parsed.get_user().unwrap(),
            parsed.get_ports()[0],
            parsed.get_dbname().unwrap()
        );
        let e = Memory::open(Storage::Postgres(PostgresConfig::new(bad)), config()).unwrap_err();
        assert_server_error(&e, |p| matches!(p, ServerProblem::LoginRefused(_)), &host);
    }

    #[test]
    fn new_stores_created_at_once_in_a_database_without_pgvector_both_open() {
        let Some(url) = postgres_url() else { return };
        let (rt, admin_client) = admin(&url);
        let (base, _) = url.rsplit_once('/').unwrap();
        for round in 0..5 {
            let db = format!("t_ext_{}_{round}", std::process::id());
            rt.block_on(admin_client.batch_execute(&format!("CREATE DATABASE {db}")))
                .unwrap();
            let db_url = format!("{base}/{db}");
            let barrier = std::sync::Barrier::new(2);
            let opened: Vec<Result<Memory, Error>> = std::thread::scope(|s| {
                let opening: Vec<_> = ["tenant_a", "tenant_b"]
                    .into_iter()
                    .map(|schema| {
                        let (barrier, pg) = (
                            &barrier,
                            PostgresConfig::new(db_url.clone()).with_schema(schema),
                        );
                        s.spawn(move || {
                            barrier.wait();
                            Memory::open(Storage::Postgres(pg), config())
                        })
                    })
                    .collect();
                opening.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let failures: Vec<String> = opened
                .iter()
                .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
                .collect();
            drop(opened);
            rt.block_on(admin_client.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")))
                .unwrap();
            assert!(failures.is_empty(), "round {round}: {failures:?}");
        }
    }

    #[test]
    fn a_server_error_shows_what_the_server_said() {
        let Some(url) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        let m = store.open(config()).unwrap();
        // A store damaged behind the engine's back: its write function is gone.
        let (rt, client) = admin(&url);
        rt.block_on(client.batch_execute(&format!(
            "DROP FUNCTION {}.insert_entries CASCADE",
            store.name()
        )))
        .unwrap();
        let e = m.insert(msg("agent", "anything")).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains("42883") && shown.contains("insert_entries"),
            "{shown}"
        );
    }

    #[test]
    fn a_store_with_a_newer_schema_is_refused() {
        let Some(url) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        drop(store.open(config()).unwrap());
        let (rt, client) = admin(&url);
        rt.block_on(client.execute(
            &format!(
                "INSERT INTO {}.migrations (version, description) VALUES (99, 'from the future')",
                store.name()
            ),
            &[],
        ))
        .unwrap();
        match store.open(config()).unwrap_err() {
            Error::SchemaTooNew {
                found, supported, ..
            } => {
                assert_eq!(found, 99);
                assert_eq!(supported, memory_core::POSTGRES_SCHEMA_VERSION);
            }
            other => panic!("{other}"),
        }
        // Another dimension than the store was created with is refused too.
        let other_dim = MemoryConfig {
            embedding_dim: DIM * 2,
            ..config()
        };
        let fresh = common::shared_backends()[0].fresh_store();
        drop(fresh.open(config()).unwrap());
        assert!(matches!(
            fresh.open(other_dim).unwrap_err(),
            Error::StoreDimensionMismatch { .. }
        ));
    }

    #[test]
    fn a_store_of_schema_version_1_is_migrated_on_open_and_keeps_its_entries() {
        let Some(url) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        // Past 2,000 entries vector search takes the HNSW path, which migration 2 changed.
        let texts: Vec<String> = (0..2_100)
            .map(|i| format!("entry {i} about topic {}", i % 37))
            .collect();
        // Version 1 wrote plain tokens (no stems).
        let plain = {
            let mut c = config();
            c.search.bm25.analyzer = Analyzer::Plain;
            c
        };
        let m = store.open(plain).unwrap();
        for chunk in texts.chunks(700) {
            m.insert_batch(chunk.iter().map(|t| msg("a", t)).collect())
                .unwrap();
        }
        m.insert(msg("a", "we painted the fence")).unwrap();
        drop(m);
        // Back to what version 1 left: no vector_top_k, set_embeddings, embedder_for_write or
        // record_access_once, no applied_access or access table, no analyzer, embedder or
        // re-embedding column, no record of migrations 2 to 8 (delete_entries is migration 8's,
        // which its migration replaces again).
        let (rt, client) = admin(&url);
        rt.block_on(client.batch_execute(&format!(
            "DROP FUNCTION {s}.vector_top_k; DROP FUNCTION {s}.set_embeddings; \
             DROP FUNCTION {s}.embedder_for_write; \
             DROP FUNCTION {s}.record_access_once; DROP TABLE {s}.applied_access; \
             DROP TABLE {s}.access; \
             ALTER TABLE {s}.store DROP COLUMN analyzer; \
             ALTER TABLE {s}.store DROP COLUMN embedder; \
             ALTER TABLE {s}.store DROP COLUMN reembedded_through; \
             DELETE FROM {s}.migrations WHERE version >= 2",
            s = store.name()
        )))
        .unwrap();
        // Opened with the default (English) analyzer, the store keeps the plain terms it holds.
        let m = store.open(config()).unwrap();
        let keyword = |q: &str| {
            m.search(
                &SearchQuery::new("a", q)
                    .with_mode(memory_core::SearchMode::Keyword)
                    .with_k(3),
            )
            .unwrap()
        };
        assert_eq!(keyword("painted")[0].entry.content, "we painted the fence");
        assert!(keyword("paint").is_empty(), "plain terms: no stems");
        let versions: Vec<i64> = rt
            .block_on(client.query(
                &format!(
                    "SELECT version::bigint FROM {}.migrations ORDER BY version",
                    store.name()
                ),
                &[],
            ))
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            versions,
            (1..=memory_core::POSTGRES_SCHEMA_VERSION).collect::<Vec<_>>()
        );
        assert_eq!(m.stats().unwrap().ltm_entries, 2_101);
        let hits = m
            .search(
                &SearchQuery::new("a", "entry 1234 about topic 13")
                    .with_mode(memory_core::SearchMode::Vector)
                    .with_k(5),
            )
            .unwrap();
        // Approximate: five hits of the agent, whichever they are.
        assert_eq!(hits.len(), 5, "{hits:?}");
        assert!(hits.iter().all(|h| &*h.entry.agent_id == "a"));
    }

    #[test]
    fn an_empty_store_takes_the_configured_analyzer_and_a_written_one_keeps_its_own() {
        if postgres_url().is_none() {
            return;
        }
        let store = common::shared_backends()[0].fresh_store();
        let with = |analyzer| {
            let mut c = config();
            c.search.bm25.analyzer = analyzer;
            c
        };
        let found = |m: &Memory, q: &str| {
            m.search(
                &SearchQuery::new("a", q)
                    .with_mode(memory_core::SearchMode::Keyword)
                    .with_k(3),
            )
            .unwrap()
            .len()
        };
        // Created plain but still empty: the next open's configuration decides.
        drop(store.open(with(Analyzer::Plain)).unwrap());
        let m = store.open(with(Analyzer::English)).unwrap();
        m.insert(msg("a", "we painted the fence")).unwrap();
        assert_eq!(found(&m, "paint"), 1, "English stems");
        drop(m);
        // Written with stems, the store keeps them whatever the configuration says.
        let m = store.open(with(Analyzer::Plain)).unwrap();
        assert_eq!(found(&m, "paintings"), 1);
        assert_eq!(found(&m, "fences"), 1);
    }

    #[test]
    fn connections_killed_mid_request_are_retried_and_lose_nothing_acknowledged() {
        let Some(url) = postgres_url() else { return };
        let store = common::shared_backends()[0].fresh_store();
        let m = store.open(config()).unwrap();
        let (rt, client) = admin(&url);
        let app = format!("memory-core-test {}", store.name());
        let kill = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{app}'"
        );
        let acked = std::sync::Mutex::new(Vec::new());
        let failed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            let writer = s.spawn(|| {
                for i in 0..60 {
                    let batch: Vec<_> = (0..50)
                        .map(|k| msg("agent", &format!("batch {i} entry {k}")))
                        .collect();
                    match m.insert_batch(batch) {
                        Ok(ids) => acked.lock().unwrap().extend(ids),
                        // Allowed: a typed error after the retries, never a lost ack.
                        Err(Error::Server { .. }) => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                    let _ = m.search(&SearchQuery::new("agent", "entry"));
                }
            });
            while !writer.is_finished() {
                rt.block_on(client.execute(&kill, &[])).unwrap();
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let acked = acked.into_inner().unwrap();
        assert!(!acked.is_empty(), "no write got through the retries");
        let fresh = store.open(config()).unwrap();
        for id in &acked {
            assert!(
                fresh.get("agent", *id).unwrap().is_some(),
                "acknowledged {id:?} lost"
            );
        }
        fresh.check_integrity().unwrap();
        eprintln!(
            "{} batches acknowledged, {} failed with a typed error",
            acked.len() / 50,
            failed.into_inner()
        );
    }
}
