//! Concurrency under load: threads and tokio tasks reading and writing the same store at once. No
//! deadlock (the test finishes), no lost write (counts match), readers see only whole entries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

#[test]
fn threads_writing_and_reading_at_once_lose_no_write() {
    let m = Memory::open(Storage::Temporary, config()).unwrap();
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
                        let batch = (0..5).map(|k| entry(&agent, "batch", i * 10 + k)).collect();
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
}

#[test]
fn tokio_tasks_on_the_async_facade_lose_no_write() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let m = Memory::open(Storage::Temporary, config()).unwrap();
    let a = m.to_async();
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
