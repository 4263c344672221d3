//! Concurrency under load: threads and tokio tasks reading and writing the same store at once. No
//! deadlock (the test finishes), no lost write (counts match), readers see only whole entries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod common;

use memory_core::{Memory, MemoryConfig, NewEntry, Role, Storage};

const DIM: usize = 8;

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        stm_capacity: 8,
        ..MemoryConfig::default()
    }
}

fn entry(agent: &str, session: &str, i: usize) -> NewEntry {
    let v = (0..DIM).map(|d| ((i + d) % 3) as f32 + 0.5).collect();
    NewEntry::new(
        agent,
        session,
        Role::User,
        format!("{agent} {session} message {i}"),
    )
    .with_embedding(v)
}

/// Every agent's count after reopening the store (the embedded store's in-RAM indexes are
/// rebuilt from SQLite, so these are the rows on disk) must equal the count the running store
/// reported.
fn assert_disk_matches(store: &common::TestStore, m: Memory, agents: &[String]) {
    let before: Vec<u64> = agents.iter().map(|a| m.count(a).unwrap()).collect();
    drop(m);
    let m = store.open(config()).unwrap();
    let after: Vec<u64> = agents.iter().map(|a| m.count(a).unwrap()).collect();
    assert_eq!(
        before, after,
        "counts of {agents:?} before and after reopening"
    );
    m.check_integrity().unwrap();
}

#[test]
fn threads_writing_and_reading_at_once_lose_no_write() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let m = store.open(config()).unwrap();
        const WRITERS: usize = 4;
        const PER_WRITER: usize = 200;
        let reads = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let m = m.clone();
                s.spawn(move || {
                    let agent = format!("agent{w}");
                    for i in 0..PER_WRITER {
                        if i % 10 == 0 {
                            let batch =
                                (0..5).map(|k| entry(&agent, "batch", i * 10 + k)).collect();
                            m.insert_batch(batch).unwrap();
                        } else {
                            let id = m.insert(entry(&agent, "single", i)).unwrap();
                            assert!(m.get(&agent, id).unwrap().is_some(), "read-your-write");
                        }
                        m.append(entry(&agent, &format!("stm{}", i % 4), i))
                            .unwrap();
                    }
                });
            }
            for r in 0..3 {
                let m = m.clone();
                let reads = reads.clone();
                s.spawn(move || {
                    for i in 0..300 {
                        let agent = format!("agent{}", (i + r) % WRITERS);
                        for e in m.list(&agent, &Default::default()).unwrap().iter().take(5) {
                            assert_eq!(&*e.agent_id, agent);
                            assert!(e.content.starts_with(&agent));
                        }
                        m.count(&agent).unwrap();
                        m.recent(&agent, "stm0", 8).unwrap();
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            let m = m.clone();
            s.spawn(move || {
                for _ in 0..20 {
                    m.consolidate().unwrap();
                }
            });
        });
        let singles = PER_WRITER - PER_WRITER / 10;
        let batched = (PER_WRITER / 10) * 5;
        for w in 0..WRITERS {
            let agent = format!("agent{w}");
            let stored = m.count(&agent).unwrap() as usize;
            // Everything inserted directly, plus whatever consolidation promoted from STM.
            assert!(stored >= singles + batched, "{agent}: {stored}");
        }
        assert_eq!(reads.load(Ordering::Relaxed), 900);
        m.check_integrity().unwrap();
        let agents: Vec<String> = (0..WRITERS).map(|w| format!("agent{w}")).collect();
        assert_disk_matches(&store, m, &agents);
    }
}

#[test]
fn tokio_tasks_on_the_async_facade_lose_no_write() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for backend in common::backends() {
        let store = backend.fresh_store();
        let m = store.open(config()).unwrap();
        let a = m.clone().to_async();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..16 {
                let a = a.clone();
                tasks.push(tokio::spawn(async move {
                    let agent = format!("agent{}", t % 4);
                    let mut ids = Vec::new();
                    for i in 0..50 {
                        ids.push(a.insert(entry(&agent, &format!("t{t}"), i)).await.unwrap());
                        a.append(entry(&agent, &format!("t{t}"), i)).await.unwrap();
                        if i % 7 == 0 {
                            let got = a.get(&agent, ids[i / 2]).await.unwrap();
                            assert!(got.is_some());
                        }
                    }
                    ids
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 16 * 50, "ids are unique");
            let mut total = 0;
            for agent in 0..4 {
                total += a.count(&format!("agent{agent}")).await.unwrap();
            }
            assert_eq!(total, 16 * 50);
        });
        drop(a);
        let agents: Vec<String> = (0..4).map(|a| format!("agent{a}")).collect();
        assert_disk_matches(&store, m, &agents);
    }
}

/// Spread-out unit vectors of dimension `DIM` (a deterministic pseudo-random walk).
fn spread_vector(i: usize) -> Vec<f32> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..DIM)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

#[test]
fn searches_while_vectors_are_staged_moved_and_linked_see_each_entry_once() {
    use memory_core::{SearchMode, SearchQuery, Tiers};
    let cfg = MemoryConfig {
        search: memory_core::SearchConfig {
            cache_capacity: 0,
            hnsw: memory_core::index::vector::HnswParams {
                min_len: 64,
                ..Default::default()
            },
            ..Default::default()
        },
        ..config()
    };
    let m = Memory::open(Storage::Temporary, cfg).unwrap();
    const N: usize = 3_000;
    let vectors: Vec<Vec<f32>> = (0..N).map(spread_vector).collect();
    // Entries 0..published have been acknowledged (and forgotten, for multiples of 97).
    let published = AtomicUsize::new(0);
    let ids: Vec<memory_core::EntryId> = std::thread::scope(|s| {
        let writer = {
            let (m, vectors, published) = (m.clone(), &vectors, &published);
            s.spawn(move || {
                let mut ids = Vec::new();
                for (i, v) in vectors.iter().enumerate() {
                    let e = NewEntry::new("a", "s", Role::User, format!("entry {i}"))
                        .with_embedding(v.clone());
                    if i % 100 < 50 {
                        ids.push(m.insert(e).unwrap());
                    } else {
                        ids.extend(m.insert_batch(vec![e]).unwrap());
                    }
                    // Forget some while they may still be staged or unlinked.
                    if i % 97 == 0 {
                        assert!(m.forget("a", ids[i]).unwrap());
                    }
                    published.store(i + 1, Ordering::Release);
                }
                ids
            })
        };
        for t in 0..2 {
            let (m, vectors, published) = (m.clone(), &vectors, &published);
            s.spawn(move || {
                for round in 0..300 {
                    let done = published.load(Ordering::Acquire);
                    let i = (round * 37 + t * 11) % N;
                    for mode in [SearchMode::ExactVector, SearchMode::Vector] {
                        let q = SearchQuery::new("a", "")
                            .with_vector(vectors[i].clone())
                            .with_mode(mode)
                            .with_tiers(Tiers::LongTerm)
                            .with_k(10);
                        let hits = m.search(&q).unwrap();
                        let mut seen: Vec<_> = hits.iter().map(|h| h.entry.id).collect();
                        seen.sort();
                        seen.dedup();
                        assert_eq!(seen.len(), hits.len(), "an entry twice in {mode:?}");
                        let scores: Vec<f32> =
                            hits.iter().filter_map(|h| h.components.vector).collect();
                        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
                        // Read-your-writes: an acknowledged entry is found by the exact scan
                        // wherever it is (staged, moved but unlinked, or linked).
                        if mode == SearchMode::ExactVector && i < done && !i.is_multiple_of(97) {
                            assert_eq!(hits[0].entry.content, format!("entry {i}"));
                        }
                    }
                }
            });
        }
        writer.join().unwrap()
    });
    m.wait_for_indexing();
    assert_eq!(m.pending_index_links(), 0);
    // Once everything is linked, each live entry is its own nearest neighbour.
    for (i, v) in vectors.iter().enumerate().step_by(13) {
        let q = SearchQuery::new("a", "")
            .with_vector(v.clone())
            .with_mode(SearchMode::ExactVector)
            .with_tiers(Tiers::LongTerm)
            .with_k(1);
        let top = m.search(&q).unwrap();
        if i % 97 == 0 {
            assert!(
                top.iter().all(|h| h.entry.id != ids[i]),
                "forgotten {i} found"
            );
        } else {
            assert_eq!(top[0].entry.id, ids[i], "entry {i}");
        }
    }
    assert_eq!(m.count("a").unwrap() as usize, N - N.div_ceil(97));
}

#[test]
fn async_search_and_context_run_on_the_blocking_pool() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let a = Memory::open(Storage::InMemory, config())
        .unwrap()
        .to_async();
    rt.block_on(async {
        a.insert(entry("agent0", "s", 1)).await.unwrap();
        a.append(entry("agent0", "s", 2)).await.unwrap();
        let q = memory_core::SearchQuery::new("agent0", "message");
        let hits = a.search(q.clone()).await.unwrap();
        assert_eq!(hits.len(), 2);
        let ctx = a
            .build_context(memory_core::ContextQuery::new(q, "s", "system", 200))
            .await
            .unwrap();
        assert!(ctx.total_tokens <= 200);
    });
}

/// Progress polling (`pending_index_links`, as a bulk loader's progress bar calls it) while
/// writes stage vectors and the linker moves and links them. A watchdog turns a deadlock into a
/// failure instead of a hang.
#[test]
fn polling_index_progress_during_writes_and_linking_never_deadlocks() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let cfg = MemoryConfig {
            search: memory_core::SearchConfig {
                hnsw: memory_core::index::vector::HnswParams {
                    min_len: 16,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..config()
        };
        let m = Memory::open(Storage::Temporary, cfg).unwrap();
        let writing = std::sync::atomic::AtomicBool::new(true);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..4_000 {
                    let e = NewEntry::new("a", "s", Role::User, format!("entry {i}"))
                        .with_embedding(spread_vector(i));
                    if i % 2 == 0 {
                        m.insert(e).unwrap();
                    } else {
                        m.insert_batch(vec![e]).unwrap();
                    }
                }
                writing.store(false, Ordering::Release);
            });
            for _ in 0..2 {
                s.spawn(|| {
                    while writing.load(Ordering::Acquire) {
                        std::hint::black_box(m.pending_index_links());
                        std::hint::black_box(m.index_heap_bytes());
                    }
                });
            }
        });
        m.wait_for_indexing();
        assert_eq!(m.pending_index_links(), 0);
        done_tx.send(()).unwrap();
    });
    if done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .is_err()
    {
        panic!("no progress in 60 s: the store deadlocked");
    }
    worker.join().unwrap();
}

/// `SearchConfig::max_unlinked`: every write returns with its agent's backlog (staged plus
/// unlinked vectors) at the bound or under it, single or batched, from several writers at once,
/// and searches beside them still find every entry; an agent the writes do not touch keeps its
/// backlog to the background linker.
#[test]
fn writes_keep_the_unlinked_backlog_within_max_unlinked() {
    const MAX: usize = 100;
    let cfg = MemoryConfig {
        search: memory_core::SearchConfig {
            hnsw: memory_core::index::vector::HnswParams {
                min_len: 64,
                ..Default::default()
            },
            max_unlinked: Some(MAX),
            ..Default::default()
        },
        ..config()
    };
    let m = Memory::open(Storage::Temporary, cfg).unwrap();
    let entry = |w: usize, i: usize| {
        NewEntry::new("a", "s", Role::User, format!("writer {w} entry {i}"))
            .with_embedding(spread_vector(w * 100_000 + i))
    };
    std::thread::scope(|s| {
        for w in 0..3 {
            let m = &m;
            s.spawn(move || {
                for i in 0..90 {
                    if i % 3 == 0 {
                        m.insert_batch((0..700).map(|j| entry(w, 1_000 + i * 700 + j)).collect())
                            .unwrap();
                    } else {
                        m.insert(entry(w, i)).unwrap();
                    }
                    // Other writers may add up to one batch each after this one returned.
                    let backlog = m.pending_index_links();
                    assert!(backlog <= MAX + 2 * 700, "backlog {backlog} after a write");
                }
            });
        }
    });
    // Alone now: each write leaves at most MAX.
    for i in 0..20 {
        m.insert_batch((0..500).map(|j| entry(9, i * 500 + j)).collect())
            .unwrap();
        let backlog = m.pending_index_links();
        assert!(backlog <= MAX, "backlog {backlog} after a lone batch");
    }
    assert_eq!(m.count("a").unwrap(), 3 * (60 + 30 * 700) + 20 * 500);
    m.wait_for_indexing();
    assert_eq!(m.pending_index_links(), 0);
}
