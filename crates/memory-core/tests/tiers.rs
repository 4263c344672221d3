//! Behaviour of the storage tiers: short-term windows, TTL, long-term storage, consolidation,
//! agent isolation, reopening, and bad input.

use std::time::Duration;

mod common;

use memory_core::Embedder as _;
use memory_core::{
    ConsolidationConfig, EntryId, Error, ListQuery, ManualClock, Memory, MemoryConfig, NewEntry,
    Role, ScoreWeights, SearchQuery, Storage, Tier, Timestamp,
};

const DIM: usize = 4;

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        stm_capacity: 3,
        stm_ttl: Duration::from_secs(60),
        ..MemoryConfig::default()
    }
}

fn msg(agent: &str, session: &str, text: &str) -> NewEntry {
    NewEntry::new(agent, session, Role::User, text)
}

fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i] = 1.0;
    v
}

#[test]
fn window_keeps_only_the_most_recent_entries_in_order() {
    common::each_backend(config(), |m, _clock| {
        for i in 0..5 {
            m.append(msg("a", "s", &format!("turn {i}"))).unwrap();
        }
        let recent: Vec<_> = m
            .recent("a", "s", 10)
            .unwrap()
            .into_iter()
            .map(|e| e.content)
            .collect();
        assert_eq!(recent, ["turn 2", "turn 3", "turn 4"]);
        let last2: Vec<_> = m
            .recent("a", "s", 2)
            .unwrap()
            .into_iter()
            .map(|e| e.content)
            .collect();
        assert_eq!(last2, ["turn 3", "turn 4"]);
        assert!(m
            .recent("a", "s", 10)
            .unwrap()
            .iter()
            .all(|e| e.tier == Tier::ShortTerm));
    });
}

#[test]
fn entries_evicted_from_a_window_are_handed_to_consolidation_not_dropped() {
    common::each_backend(config(), |m, _clock| {
        for i in 0..5 {
            // No turn is a near-duplicate of another (cosine 0 or 0.5) in 4 dimensions.
            let v = if i < DIM { axis(i) } else { vec![0.5; DIM] };
            m.append(
                msg("a", "s", &format!("turn {i}"))
                    .with_importance(1.0)
                    .with_embedding(v),
            )
            .unwrap();
        }
        // 3 in the window + 2 evicted and waiting.
        assert_eq!(m.stats().unwrap().stm_entries, 5);
        let report = m.consolidate().unwrap();
        assert_eq!(report.examined, 5);
        assert_eq!(report.promoted, 5);
        assert_eq!(m.count("a").unwrap(), 5);
        // The recent window still shows the last turns; they are not promoted twice.
        assert_eq!(m.recent("a", "s", 10).unwrap().len(), 3);
        let again = m.consolidate().unwrap();
        assert_eq!(again.promoted, 0);
        assert_eq!(again.examined, 0);
        assert_eq!(m.count("a").unwrap(), 5);
    });
}

#[test]
fn sessions_expire_after_the_ttl_with_the_injected_clock() {
    common::each_backend(config(), |m, clock| {
        m.append(msg("a", "s", "hello")).unwrap();
        clock.advance(Duration::from_secs(59));
        assert_eq!(m.recent("a", "s", 10).unwrap().len(), 1);
        clock.advance(Duration::from_secs(2));
        assert!(m.recent("a", "s", 10).unwrap().is_empty());
        let report = m.consolidate().unwrap();
        assert_eq!(report.expired_sessions, 1);
        assert_eq!(m.stats().unwrap().stm_sessions, 0);
    });
}

#[test]
fn an_expired_sessions_entries_are_found_until_consolidation_takes_them() {
    common::each_backend(config(), |m, clock| {
        let id = m
            .append(msg("a", "s", "my sister moved to Lisbon"))
            .unwrap();
        let q = SearchQuery::new("a", "lisbon")
            .with_mode(memory_core::SearchMode::Keyword)
            .with_k(10);
        let found = |q: &SearchQuery| -> Vec<EntryId> {
            m.search(q).unwrap().iter().map(|h| h.entry.id).collect()
        };
        assert_eq!(found(&q), vec![id]); // cached now
        clock.advance(Duration::from_secs(61));
        // Expired: gone from the conversation, waiting for consolidation, found by search
        // (cached or not, the same answer).
        assert!(m.recent("a", "s", 10).unwrap().is_empty());
        assert_eq!(found(&q), vec![id]);
        assert_eq!(found(&q.clone().without_cache()), vec![id]);
        // A new turn in the session hands the old ones off: still found, once.
        m.append(msg("a", "s", "hello again")).unwrap();
        assert_eq!(found(&q.clone().without_cache()), vec![id]);
        assert_eq!(found(&q), vec![id]);
        // Consolidation decides: kept in long-term memory (a fact of the speaker's) and found
        // there, cached or not.
        clock.advance(Duration::from_secs(61));
        m.consolidate().unwrap();
        assert!(m.get("a", id).unwrap().is_some());
        assert_eq!(found(&q), vec![id]);
        assert_eq!(found(&q.without_cache()), vec![id]);
    });
}

/// An embedder that holds the thread embedding a text with "PAUSE" in it until let go.
#[derive(Debug)]
struct Pausing {
    inner: memory_core::HashingEmbedder,
    reached: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    go: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl memory_core::Embedder for Pausing {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        if text.contains("PAUSE") {
            if let Some(reached) = self.reached.lock().unwrap().take() {
                reached.send(()).unwrap();
                self.go.lock().unwrap().take().unwrap().recv().unwrap();
            }
        }
        self.inner.embed(text)
    }
}

impl Pausing {
    /// An embedder that pauses once, when `reached` has a sender, and one that never does.
    fn new(
        reached: Option<std::sync::mpsc::Sender<()>>,
        go: Option<std::sync::mpsc::Receiver<()>>,
    ) -> std::sync::Arc<Pausing> {
        std::sync::Arc::new(Pausing {
            inner: memory_core::HashingEmbedder::new(DIM).unwrap(),
            reached: std::sync::Mutex::new(reached),
            go: std::sync::Mutex::new(go),
        })
    }
}

/// An embedder that panics on a text with "PANIC" in it while armed.
#[derive(Debug)]
struct Panicking {
    inner: memory_core::HashingEmbedder,
    armed: std::sync::atomic::AtomicBool,
}

impl memory_core::Embedder for Panicking {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        if text.contains("PANIC") && self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("the embedder failed on {text:?}");
        }
        self.inner.embed(text)
    }
}

/// After the sweep, the entries that left their windows are only in the consolidation's hands:
/// a panic there (here in a caller's embedder) must hand them back to short-term memory, for
/// a later consolidation to store.
#[test]
fn a_consolidation_that_panics_hands_its_entries_back() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let embedder = std::sync::Arc::new(Panicking {
            inner: memory_core::HashingEmbedder::new(DIM).unwrap(),
            armed: std::sync::atomic::AtomicBool::new(true),
        });
        let m = store
            .builder()
            .with_config(config())
            .with_embedder(embedder.clone())
            .with_clock(std::sync::Arc::new(ManualClock::new(Timestamp(
                1_000_000_000,
            ))))
            .open()
            .unwrap();
        // A window of 3: the first two leave it.
        let ids: Vec<EntryId> = [
            "my sister Ana lives in Porto PANIC",
            "my brother Tom lives in Lisbon",
            "turn 1",
            "turn 2",
            "turn 3",
        ]
        .into_iter()
        .map(|text| m.append(msg("a", "s", text).with_importance(1.0)).unwrap())
        .collect();
        assert_eq!(m.stats().unwrap().stm_entries, 5);
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.consolidate())).is_err();
        assert!(panicked, "{}", store.label());
        assert_eq!(m.stats().unwrap().stm_entries, 5, "{}", store.label());
        assert_eq!(m.count("a").unwrap(), 0);
        embedder
            .armed
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let report = m.consolidate().unwrap();
        assert_eq!(report.promoted, 5, "{}: {report:?}", store.label());
        for id in &ids[..2] {
            assert!(m.get("a", *id).unwrap().is_some(), "{}", store.label());
        }
    }
}

/// Between the sweep that takes entries out of their windows and the long-term commit, the
/// entries are in neither tier's usual place: searches (of this handle, and of another one on
/// a shared store) still find them, and `forget` still removes them, from what searches see and
/// from what the consolidation commits (an evicted entry, and one of a live window it copies).
#[test]
fn entries_a_consolidation_is_moving_stay_found_until_it_commits() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let (reached_tx, reached_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let open = |embedder| {
            store
                .builder()
                .with_config(config())
                .with_embedder(embedder)
                .open()
                .unwrap()
        };
        let m = open(Pausing::new(Some(reached_tx), Some(go_rx)));
        let other = backend.is_shared().then(|| open(Pausing::new(None, None)));
        let id = m
            .append(msg("a", "s", "the zebra is called PAUSE").with_importance(1.0))
            .unwrap();
        let gone = m
            .append(msg("a", "s", "the zebra's keeper is Tom").with_importance(1.0))
            .unwrap();
        // Agent b's evicted entry is not worth keeping: consolidation drops it.
        let dropped = m
            .append(msg("b", "s", "a zebra, how nice").with_importance(0.0))
            .unwrap();
        for i in 0..2 {
            m.append(msg("a", "s", &format!("turn {i}"))).unwrap();
        }
        for i in 0..3 {
            m.append(msg("b", "s", &format!("turn {i}"))).unwrap();
        }
        // Still in the window of three: the consolidation copies it to long-term memory.
        let staying = m
            .append(msg("a", "s", "the zebra's vet is Ana").with_importance(1.0))
            .unwrap();
        let q = SearchQuery::new("a", "zebra")
            .with_mode(memory_core::SearchMode::Keyword)
            .without_cache();
        let found = |m: &Memory| -> Vec<EntryId> {
            let mut ids: Vec<EntryId> = m.search(&q).unwrap().iter().map(|h| h.entry.id).collect();
            ids.sort();
            ids
        };
        // Cached: an answer given while the consolidation runs must not outlive what it drops.
        let of_b = SearchQuery::new("b", "zebra").with_mode(memory_core::SearchMode::Keyword);
        let found_of_b = |m: &Memory| -> Vec<EntryId> {
            m.search(&of_b)
                .unwrap()
                .iter()
                .map(|h| h.entry.id)
                .collect()
        };
        std::thread::scope(|s| {
            // The consolidation has taken the evicted entries and is embedding them to score
            // them.
            let consolidation = s.spawn(|| m.consolidate());
            reached_rx.recv().unwrap();
            let mut seen = vec![found(&m)];
            seen.extend(other.iter().map(found));
            let mut seen_of_b = vec![found_of_b(&m)];
            seen_of_b.extend(other.iter().map(found_of_b));
            let forgot = [m.forget("a", gone), m.forget("a", staying)];
            let after_forget = found(&m);
            go_tx.send(()).unwrap();
            for (handle, ids) in seen.iter().enumerate() {
                assert_eq!(
                    ids,
                    &vec![id, gone, staying],
                    "handle {handle} of the {}: entries under consolidation are in neither tier",
                    store.label()
                );
            }
            for ids in &seen_of_b {
                assert_eq!(ids, &vec![dropped], "{}", store.label());
            }
            for forgot in forgot {
                assert!(forgot.unwrap(), "{}", store.label());
            }
            assert_eq!(after_forget, vec![id], "{}", store.label());
            assert!(consolidation.join().unwrap().unwrap().promoted >= 1);
        });
        // What was forgotten while the consolidation ran is not what it committed.
        assert_eq!(found(&m), vec![id], "{}", store.label());
        assert!(m.get("a", id).unwrap().is_some());
        for forgotten in [gone, staying] {
            assert!(
                m.get("a", forgotten).unwrap().is_none(),
                "{}: an entry forgotten during a consolidation was stored by it",
                store.label()
            );
        }
        assert!(m.get("b", dropped).unwrap().is_none());
        assert_eq!(found_of_b(&m), vec![], "{}", store.label());
        if let Some(other) = &other {
            assert_eq!(found(other), vec![id], "{}", store.label());
            assert_eq!(
                found_of_b(other),
                vec![],
                "{}: another handle's cached answer outlived the consolidation",
                store.label()
            );
        }
    }
}

#[test]
fn appending_keeps_a_session_alive() {
    common::each_backend(config(), |m, clock| {
        for _ in 0..5 {
            m.append(msg("a", "s", "still here")).unwrap();
            clock.advance(Duration::from_secs(50));
        }
        assert_eq!(m.recent("a", "s", 10).unwrap().len(), 3);
    });
}

#[test]
fn consolidation_promotes_at_or_above_the_threshold_and_drops_expired_low_scorers() {
    let cfg = MemoryConfig {
        consolidation: ConsolidationConfig {
            // Importance alone decides, so the threshold is exact.
            weights: ScoreWeights {
                importance: 1.0,
                frequency: 0.0,
                recency: 0.0,
                novelty: 0.0,
            },
            threshold: 0.5,
            ..ConsolidationConfig::default()
        },
        ..config()
    };
    common::each_backend(cfg, |m, clock| {
        m.append(msg("a", "s", "exactly at threshold").with_importance(0.5))
            .unwrap();
        m.append(msg("a", "s", "above").with_importance(0.9))
            .unwrap();
        m.append(msg("a", "s", "below").with_importance(0.2))
            .unwrap();

        let live = m.consolidate().unwrap();
        assert_eq!((live.promoted, live.kept_in_stm, live.dropped), (2, 1, 0));

        clock.advance(Duration::from_secs(120));
        let expired = m.consolidate().unwrap();
        assert_eq!(expired.expired_sessions, 1);
        assert_eq!((expired.promoted, expired.dropped), (0, 1));
        let mut stored: Vec<_> = m
            .list("a", &ListQuery::default())
            .unwrap()
            .into_iter()
            .map(|e| e.content)
            .collect();
        stored.sort();
        assert_eq!(stored, ["above", "exactly at threshold"]);
    });
}

#[test]
fn consolidation_does_not_store_near_duplicates_twice() {
    common::each_backend(config(), |m, _clock| {
        m.insert(msg("a", "s", "the sky is blue").with_embedding(axis(0)))
            .unwrap();
        // Almost the same direction as what LTM holds, and important.
        let mut near = axis(0);
        near[1] = 0.05;
        m.append(
            msg("a", "s", "the sky is blue!")
                .with_embedding(near)
                .with_importance(1.0),
        )
        .unwrap();
        // Two identical new entries in one batch: only one is kept.
        m.append(
            msg("a", "s", "cats purr")
                .with_embedding(axis(2))
                .with_importance(1.0),
        )
        .unwrap();
        m.append(
            msg("a", "s2", "cats purr")
                .with_embedding(axis(2))
                .with_importance(1.0),
        )
        .unwrap();
        let report = m.consolidate().unwrap();
        assert_eq!(report.duplicates, 2, "{report:?}");
        assert_eq!(report.promoted, 1, "{report:?}");
        assert_eq!(m.count("a").unwrap(), 2);
    });
}

#[test]
fn a_near_duplicate_of_another_agents_memory_is_still_stored() {
    common::each_backend(config(), |m, _clock| {
        m.insert(msg("a", "s", "shared fact").with_embedding(axis(0)))
            .unwrap();
        m.append(
            msg("b", "s", "shared fact")
                .with_embedding(axis(0))
                .with_importance(1.0),
        )
        .unwrap();
        assert_eq!(m.consolidate().unwrap().promoted, 1);
        assert_eq!(m.count("b").unwrap(), 1);
    });
}

#[test]
fn no_operation_returns_another_agents_entries() {
    common::each_backend(config(), |m, _clock| {
        let a = m.insert(msg("alice", "s", "alice secret")).unwrap();
        let b = m.insert(msg("bob", "s", "bob secret")).unwrap();
        m.append(msg("alice", "s", "alice recent")).unwrap();
        assert!(m.get("bob", a).unwrap().is_none());
        assert!(m.get("alice", b).unwrap().is_none());
        assert!(m.recent("bob", "s", 10).unwrap().is_empty());
        assert!(!m.forget("bob", a).unwrap());
        assert!(m.get("alice", a).unwrap().is_some());
        let listed = m.list("bob", &ListQuery::default()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].content, "bob secret");
        assert_eq!(m.count("alice").unwrap(), 1);
    });
}

#[test]
fn every_write_path_stores_the_embedding_at_unit_length() {
    common::each_backend(config(), |m, _clock| {
        let unit = [0.6, 0.0, 0.8, 0.0];
        m.open_session("a", "s").unwrap();
        m.append(msg("a", "s", "short").with_embedding(vec![3.0, 0.0, 4.0, 0.0]))
            .unwrap();
        let recent = m.recent("a", "s", 1).unwrap();
        assert_eq!(recent[0].embedding.as_deref(), Some(&unit[..]));
        let ids = m
            .insert_batch(vec![
                msg("a", "s", "batch").with_embedding(vec![30.0, 0.0, 40.0, 0.0]),
                // Outside f32's normal range the scale is computed in f64.
                msg("a", "s", "tiny").with_embedding(vec![3.0e-30, 0.0, 4.0e-30, 0.0]),
            ])
            .unwrap();
        for id in ids {
            let v = m.get("a", id).unwrap().unwrap().embedding.unwrap();
            assert!(
                v.iter().zip(unit).all(|(x, y)| (x - y).abs() < 1e-6),
                "{v:?}"
            );
        }
    });
}

#[test]
fn long_term_entries_round_trip_every_field() {
    common::each_backend(config(), |m, _clock| {
        let meta = serde_json::json!({"topic": "travel", "n": 3});
        let id = m
            .insert(
                msg("a", "s", "I moved to Lisbon")
                    .with_importance(0.75)
                    .with_embedding(vec![3.0, 0.0, 4.0, 0.0])
                    .with_metadata(meta.clone()),
            )
            .unwrap();
        let e = m.get("a", id).unwrap().unwrap();
        assert_eq!(e.id, id);
        assert_eq!(&*e.agent_id, "a");
        assert_eq!(&*e.session_id, "s");
        assert_eq!(e.role, Role::User);
        assert_eq!(e.content, "I moved to Lisbon");
        assert_eq!(e.importance, Some(0.75));
        assert_eq!(e.metadata, meta);
        assert_eq!(e.tier, Tier::LongTerm);
        assert_eq!(e.access_count, 0);
        assert_eq!(e.created_at, Timestamp(1_000_000_000));
        assert_eq!(e.embedding.as_deref(), Some(&[0.6, 0.0, 0.8, 0.0][..]));
        // serde round trip of the entry itself
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            serde_json::from_str::<memory_core::MemoryEntry>(&json).unwrap(),
            e
        );
    });
}

#[test]
fn forget_removes_an_entry() {
    common::each_backend(config(), |m, _clock| {
        let id = m.insert(msg("a", "s", "forget me")).unwrap();
        assert!(m.forget("a", id).unwrap());
        assert!(m.get("a", id).unwrap().is_none());
        assert!(!m.forget("a", id).unwrap());
        assert_eq!(m.count("a").unwrap(), 0);
    });
}

#[test]
fn a_forgotten_entry_is_gone_from_both_tiers() {
    common::each_backend(config(), |m, _clock| {
        let ids: Vec<EntryId> = (0..5)
            .map(|i| {
                let v = if i < DIM { axis(i) } else { vec![0.5; DIM] };
                m.append(
                    msg("a", "s", &format!("the vault code is {i}"))
                        .with_importance(1.0)
                        .with_embedding(v),
                )
                .unwrap()
            })
            .collect();
        // One promoted and still a recent turn, one waiting for consolidation (evicted), one
        // only in its window.
        m.consolidate().unwrap();
        let extra = m
            .append(msg("a", "s", "the vault code is 5").with_importance(1.0))
            .unwrap();
        let (promoted, in_window, waiting) = (ids[4], extra, ids[2]);
        assert!(m.get("a", promoted).unwrap().is_some());
        for id in [promoted, in_window, waiting] {
            assert!(m.forget("a", id).unwrap(), "{id:?}");
            assert!(!m.forget("a", id).unwrap(), "{id:?} forgotten twice");
            assert!(m.get("a", id).unwrap().is_none());
            let q = SearchQuery::new("a", "vault code").with_k(100);
            for q in [q.clone(), q.without_cache()] {
                let hits = m.search(&q).unwrap();
                assert!(hits.iter().all(|h| h.entry.id != id), "{id:?} still found");
            }
            let recent = m.recent("a", "s", 10).unwrap();
            assert!(recent.iter().all(|e| e.id != id), "{id:?} still recent");
        }
        // Nothing brings them back.
        m.consolidate().unwrap();
        for id in [promoted, in_window, waiting] {
            assert!(m.get("a", id).unwrap().is_none(), "{id:?} came back");
        }
    });
}

#[test]
fn list_filters_by_session_and_time_range_newest_first() {
    common::each_backend(config(), |m, clock| {
        let t0 = clock.now_ts();
        for i in 0..6 {
            let session = if i % 2 == 0 { "even" } else { "odd" };
            m.insert(msg("a", session, &format!("m{i}"))).unwrap();
            clock.advance(Duration::from_secs(10));
        }
        let contents = |q: ListQuery| -> Vec<String> {
            m.list("a", &q)
                .unwrap()
                .into_iter()
                .map(|e| e.content)
                .collect()
        };
        assert_eq!(
            contents(ListQuery::default()),
            ["m5", "m4", "m3", "m2", "m1", "m0"]
        );
        let even = ListQuery {
            session: Some("even".into()),
            ..ListQuery::default()
        };
        assert_eq!(contents(even), ["m4", "m2", "m0"]);
        let window = ListQuery {
            since: Some(t0.plus(Duration::from_secs(10))),
            until: Some(t0.plus(Duration::from_secs(40))),
            ..ListQuery::default()
        };
        assert_eq!(contents(window), ["m3", "m2", "m1"]);
        let limited = ListQuery {
            limit: Some(2),
            ..ListQuery::default()
        };
        assert_eq!(contents(limited), ["m5", "m4"]);
    });
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}
impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        memory_core::Clock::now(self)
    }
}

#[test]
fn batch_insert_is_all_or_nothing_on_bad_input() {
    common::each_backend(config(), |m, _clock| {
        let batch = vec![
            msg("a", "s", "fine"),
            msg("a", "s", "bad").with_embedding(vec![1.0; DIM + 1]),
        ];
        assert!(matches!(
            m.insert_batch(batch),
            Err(Error::DimensionMismatch { .. })
        ));
        assert_eq!(m.count("a").unwrap(), 0);
        let ids = m
            .insert_batch(vec![msg("a", "s", "one"), msg("a", "s", "two")])
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(m.count("a").unwrap(), 2);
    });
}

/// A created_at far in the future kept an entry's recency at 1 until the clock caught up. Up to
/// MAX_CLOCK_SKEW after the clock is accepted (clocks disagree), later is refused on every write
/// path, a batch whole; any past time is accepted (imported history).
#[test]
fn a_created_at_past_the_allowed_clock_skew_is_refused_and_past_ones_are_kept() {
    common::each_backend(config(), |m, clock| {
        let now = memory_core::Clock::now(&*clock);
        let latest = now.plus(memory_core::MAX_CLOCK_SKEW);
        let future = latest.plus(Duration::from_micros(1));
        let refused = |e: Error| matches!(e, Error::CreatedAtInFuture { created_at, .. } if created_at == future);
        let late = || msg("a", "s", "from the future").with_created_at(future);
        assert!(refused(m.append(late()).unwrap_err()));
        assert!(refused(m.insert(late()).unwrap_err()));
        assert!(refused(
            m.insert_batch(vec![msg("a", "s", "fine"), late()])
                .unwrap_err()
        ));
        assert_eq!(m.stats().unwrap().stm_entries, 0);
        assert_eq!(m.count("a").unwrap(), 0);
        // At the allowance, and long ago, both tiers take it with its time.
        let past = Timestamp(-86_400_000_000 * 365 * 30);
        let id = m
            .append(msg("a", "s", "skewed").with_created_at(latest))
            .unwrap();
        assert_eq!(m.recent("a", "s", 1).unwrap()[0].id, id);
        let ids = m
            .insert_batch(vec![
                msg("a", "s", "at the allowance").with_created_at(latest),
                msg("a", "s", "imported").with_created_at(past),
            ])
            .unwrap();
        assert_eq!(m.get("a", ids[0]).unwrap().unwrap().created_at, latest);
        assert_eq!(m.get("a", ids[1]).unwrap().unwrap().created_at, past);
        // The allowance moves with the clock.
        clock.advance(Duration::from_secs(1));
        m.insert(late()).unwrap();
    });
}

#[test]
fn bad_input_gets_a_typed_error_and_stores_nothing() {
    let cfg = MemoryConfig {
        max_content_bytes: 100,
        ..config()
    };
    common::each_backend(cfg, |m, _clock| {
        type IsExpected = fn(&Error) -> bool;
        let cases: Vec<(NewEntry, IsExpected)> = vec![
            (msg("", "s", "x"), |e| {
                matches!(e, Error::EmptyId { field: "agent_id" })
            }),
            (msg("a", "", "x"), |e| {
                matches!(
                    e,
                    Error::EmptyId {
                        field: "session_id"
                    }
                )
            }),
            (msg("a", "s", ""), |e| matches!(e, Error::EmptyContent)),
            (msg("a", "s", &"x".repeat(101)), |e| {
                matches!(e, Error::ContentTooLarge { .. })
            }),
            (msg("a", "s", "x").with_importance(-0.1), |e| {
                matches!(e, Error::ImportanceOutOfRange(_))
            }),
            (msg("a", "s", "x").with_embedding(vec![1.0; 3]), |e| {
                matches!(
                    e,
                    Error::DimensionMismatch {
                        expected: 4,
                        actual: 3
                    }
                )
            }),
            (
                msg("a", "s", "x").with_embedding(vec![1.0, f32::INFINITY, 0.0, 0.0]),
                |e| matches!(e, Error::NonFiniteEmbedding { index: 1, .. }),
            ),
        ];
        for (entry, is_expected) in cases {
            let e1 = m.append(entry.clone()).unwrap_err();
            assert!(is_expected(&e1), "append: {e1}");
            let e2 = m.insert(entry).unwrap_err();
            assert!(is_expected(&e2), "insert: {e2}");
            assert!(!e2.to_string().is_empty());
        }
        assert_eq!(m.stats().unwrap().stm_entries, 0);
        assert_eq!(m.stats().unwrap().ltm_entries, 0);
        assert!(matches!(m.recent("", "s", 1), Err(Error::EmptyId { .. })));
        assert!(matches!(
            m.open_session("a", ""),
            Err(Error::EmptyId { .. })
        ));
    });
}

#[test]
fn invalid_configuration_is_rejected() {
    let bad = MemoryConfig {
        stm_capacity: 0,
        ..MemoryConfig::default()
    };
    assert!(matches!(
        Memory::open(Storage::InMemory, bad),
        Err(Error::InvalidConfig(_))
    ));
    let bad = MemoryConfig {
        consolidation: ConsolidationConfig {
            threshold: f32::NAN,
            ..ConsolidationConfig::default()
        },
        ..MemoryConfig::default()
    };
    assert!(matches!(
        Memory::open(Storage::InMemory, bad),
        Err(Error::InvalidConfig(_))
    ));
}

/// A zero time-to-live would expire every window as soon as the clock moves, and a duplicate
/// similarity of 0 (or below) would make every entry a near-duplicate of anything stored.
#[test]
fn a_zero_ttl_or_a_duplicate_similarity_that_keeps_nothing_is_refused() {
    let zero_ttl = MemoryConfig {
        stm_ttl: Duration::ZERO,
        ..config()
    };
    let below_resolution = MemoryConfig {
        stm_ttl: Duration::from_nanos(999),
        ..config()
    };
    let mut bad = vec![zero_ttl, below_resolution];
    for similarity in [0.0, -0.5, 1.5, f32::NAN] {
        bad.push(MemoryConfig {
            consolidation: ConsolidationConfig {
                duplicate_similarity: similarity,
                ..ConsolidationConfig::default()
            },
            ..config()
        });
    }
    for config in bad {
        assert!(
            matches!(
                Memory::open(Storage::InMemory, config.clone()),
                Err(Error::InvalidConfig(_))
            ),
            "{:?} {:?}",
            config.stm_ttl,
            config.consolidation.duplicate_similarity
        );
    }
    let edges = MemoryConfig {
        stm_ttl: Duration::from_micros(1),
        consolidation: ConsolidationConfig {
            duplicate_similarity: 1.0,
            ..ConsolidationConfig::default()
        },
        ..config()
    };
    Memory::open(Storage::InMemory, edges).unwrap();
}

/// Weights whose sum overflows f32 (f32::MAX twice) made every score inf / inf = NaN, below any
/// threshold: consolidation dropped every entry leaving its window. Subnormal sums lose the
/// precision of the score. Both are refused; large weights with a finite sum score as their
/// proportions do.
#[test]
fn score_weights_must_have_a_finite_positive_sum() {
    let with = |weights| MemoryConfig {
        consolidation: ConsolidationConfig {
            weights,
            ..ConsolidationConfig::default()
        },
        ..config()
    };
    let huge = ScoreWeights {
        importance: f32::MAX,
        frequency: f32::MAX,
        recency: f32::MAX,
        novelty: f32::MAX,
    };
    let tiny = ScoreWeights {
        importance: 1e-45,
        frequency: 1e-45,
        recency: 0.0,
        novelty: 0.0,
    };
    for weights in [huge, tiny] {
        assert!(
            matches!(
                Memory::open(Storage::InMemory, with(weights)),
                Err(Error::InvalidConfig(_))
            ),
            "{weights:?}"
        );
    }
    let large = ScoreWeights {
        importance: 1e38,
        frequency: 0.0,
        recency: 0.0,
        novelty: 0.0,
    };
    common::each_backend(with(large), |m, clock| {
        m.append(msg("a", "s", "kept").with_importance(0.9))
            .unwrap();
        m.append(msg("a", "s", "dropped").with_importance(0.1))
            .unwrap();
        clock.advance(Duration::from_secs(120));
        let report = m.consolidate().unwrap();
        assert_eq!((report.promoted, report.dropped), (1, 1));
    });
}

#[test]
fn a_reopened_store_has_everything_that_was_acknowledged() {
    common::each_store(config(), |store, m, _clock| {
        let ids = {
            let mut ids = vec![m
                .insert(msg("a", "s", "one").with_embedding(axis(1)))
                .unwrap()];
            ids.extend(
                m.insert_batch(vec![msg("a", "s", "two"), msg("b", "s", "three")])
                    .unwrap(),
            );
            ids
        };
        drop(m);
        let m = store.open(config()).unwrap();
        assert_eq!(m.get("a", ids[0]).unwrap().unwrap().content, "one");
        assert_eq!(m.get("a", ids[1]).unwrap().unwrap().content, "two");
        assert_eq!(m.get("b", ids[2]).unwrap().unwrap().content, "three");
        m.check_integrity().unwrap();
        // New ids never collide with stored ones.
        let next = m.insert(msg("a", "s", "four")).unwrap();
        assert!(ids.iter().all(|id| *id < next));
        // The reopened vector index knows the old embedding: a duplicate is detected.
        m.append(
            msg("a", "s", "one again")
                .with_embedding(axis(1))
                .with_importance(1.0),
        )
        .unwrap();
        assert_eq!(m.consolidate().unwrap().duplicates, 1);
    });
}

/// An embedder of `DIM`-dimensional vectors whose id is `id`: what a store recorded is what is
/// compared, so the vectors themselves do not matter here.
#[derive(Debug)]
struct Named(&'static str);

impl memory_core::Embedder for Named {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        axis(text.len() % DIM)
    }

    fn id(&self) -> String {
        self.0.to_string()
    }
}

#[test]
fn a_store_is_not_reopened_with_another_embedder_unless_told_and_loses_nothing() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let open = |id: &'static str, accept: bool| {
            let b = store
                .builder()
                .with_config(config())
                .with_embedder(std::sync::Arc::new(Named(id)));
            if accept {
                b.accept_embedder_change().open()
            } else {
                b.open()
            }
        };
        let id = {
            let m = store.open(config()).unwrap();
            m.insert(msg("a", "s", "written with the default embedder"))
                .unwrap()
        };
        let default_id = memory_core::HashingEmbedder::new(DIM).unwrap().id();
        let Err(err) = open("another-model", false) else {
            panic!("{}: opened with another embedder", backend.name());
        };
        match &err {
            Error::StoreEmbedderMismatch {
                stored, configured, ..
            } => {
                assert_eq!(stored, &default_id);
                assert_eq!(configured, "another-model");
            }
            other => panic!("{}: {other}", backend.name()),
        }
        assert!(err.to_string().contains("accept_embedder_change"), "{err}");
        // Nothing was lost or changed: the default embedder still opens it.
        let m = store.open(config()).unwrap();
        assert_eq!(
            m.get("a", id).unwrap().unwrap().content,
            "written with the default embedder"
        );
        drop(m);
        // Told so, the open goes ahead and the new embedder is the store's from then on.
        let m = open("another-model", true).unwrap();
        assert!(m.get("a", id).unwrap().is_some());
        drop(m);
        drop(open("another-model", false).unwrap());
        assert!(matches!(
            store.open(config()).unwrap_err(),
            Error::StoreEmbedderMismatch { .. }
        ));
    }
}

/// Puts a text on the axis of the first of [`WORDS`] it holds, turned by `turn` (all zeros,
/// no vector, for a text without one): two embedders with other turns put every text at
/// another place. Counts the texts it embeds, and panics on `fail_on` (an interruption).
#[derive(Debug)]
struct Turned {
    turn: usize,
    embedded: std::sync::atomic::AtomicUsize,
    fail_on: Option<&'static str>,
}

const WORDS: [&str; DIM] = ["apple", "pear", "plum", "fig"];

impl Turned {
    fn new(turn: usize) -> std::sync::Arc<Turned> {
        std::sync::Arc::new(Turned {
            turn,
            embedded: Default::default(),
            fail_on: None,
        })
    }

    fn embedded(&self) -> usize {
        self.embedded.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl memory_core::Embedder for Turned {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        assert_ne!(
            Some(text),
            self.fail_on,
            "the embedder fails here (a test's fault)"
        );
        self.embedded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WORDS
            .iter()
            .position(|w| text.split(' ').any(|t| t == *w))
            .map_or(vec![0.0; DIM], |i| axis((i + self.turn) % DIM))
    }

    fn id(&self) -> String {
        format!("turned-by-{}", self.turn)
    }
}

#[test]
fn an_embedder_id_a_store_could_misread_is_refused_and_changes_nothing() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        {
            let m = builder_with(&store, Turned::new(1)).open().unwrap();
            m.insert(msg("a", "s", "apple")).unwrap();
        }
        // The mark of an interrupted re-embedding to "turned-by-1" would read as this id's.
        for id in ["reembedding:turned-by-1", "", "bad\nid"] {
            let e = store
                .builder()
                .with_config(config())
                .with_embedder(std::sync::Arc::new(Named(id)))
                .reembed_on_embedder_change()
                .open()
                .unwrap_err();
            assert!(
                matches!(e, memory_core::Error::InvalidConfig(_)),
                "{id:?}: {e}"
            );
        }
        let m = builder_with(&store, Turned::new(1)).open().unwrap();
        assert_eq!(nearest(&m, "a", "apple", 1), ["apple"]);
    }
}

/// A builder of a handle on `store` with `embedder`.
fn builder_with(
    store: &common::TestStore,
    embedder: std::sync::Arc<Turned>,
) -> memory_core::MemoryBuilder {
    store
        .builder()
        .with_config(config())
        .with_embedder(embedder)
}

/// The contents of an exact vector search's hits for `word` (what the store's vectors rank
/// first; exact, since many entries share a vector here).
fn nearest(m: &Memory, agent: &str, word: &str, k: usize) -> Vec<String> {
    let query = memory_core::SearchQuery::new(agent, word)
        .with_mode(memory_core::SearchMode::ExactVector)
        .with_tiers(memory_core::Tiers::LongTerm)
        .with_k(k);
    m.search(&query)
        .unwrap()
        .into_iter()
        .map(|h| h.entry.content.clone())
        .collect()
}

#[test]
fn a_store_reembedded_with_another_embedder_searches_in_its_space_and_keeps_every_entry() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let open = |embedder| builder_with(&store, embedder);
        let texts = ["an apple", "a pear", "a plum", "a fig", "nothing to embed"];
        let ids = {
            let m = open(Turned::new(0)).open().unwrap();
            let ids = m
                .insert_batch(texts.iter().map(|t| msg("a", "s", t)).collect())
                .unwrap();
            assert_eq!(
                nearest(&m, "a", "apple", 1),
                ["an apple"],
                "{}",
                backend.name()
            );
            ids
        };
        // Taken as the new embedder's, the old vectors answer in the wrong space: its "fig" is
        // where the old one put "apple" (what re-embedding is for).
        {
            let m = open(Turned::new(1))
                .accept_embedder_change()
                .open()
                .unwrap();
            assert_eq!(
                nearest(&m, "a", "fig", 1),
                ["an apple"],
                "{}",
                backend.name()
            );
        }
        let turned = Turned::new(2);
        let m = open(turned.clone())
            .reembed_on_embedder_change()
            .open()
            .unwrap();
        assert_eq!(turned.embedded(), texts.len(), "{}", backend.name());
        for word in WORDS {
            let hits = nearest(&m, "a", word, 5);
            assert_eq!(hits.len(), DIM, "{}: {hits:?}", backend.name());
            assert!(
                hits[0].ends_with(word),
                "{}: {word}: {hits:?}",
                backend.name()
            );
        }
        for (id, text) in ids.iter().zip(texts) {
            let entry = m.get("a", *id).unwrap().unwrap();
            assert_eq!(entry.content, text, "{}", backend.name());
            assert_eq!(entry.embedding.is_some(), text != "nothing to embed");
        }
        assert_eq!(m.count("a").unwrap(), texts.len() as u64);
        drop(m);
        // The store is the new embedder's now: it opens without being told, and the old one is
        // refused.
        let again = Turned::new(2);
        let m = open(again.clone()).open().unwrap();
        assert_eq!(again.embedded(), 0, "{}: re-embedded twice", backend.name());
        assert_eq!(
            nearest(&m, "a", "plum", 1),
            ["a plum"],
            "{}",
            backend.name()
        );
        drop(m);
        assert!(
            matches!(
                open(Turned::new(1)).open().unwrap_err(),
                Error::StoreEmbedderMismatch { .. }
            ),
            "{}",
            backend.name()
        );
    }
}

#[test]
fn an_interrupted_reembedding_is_taken_up_where_it_stopped_and_no_other_embedder_takes_the_store() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let open = |embedder| builder_with(&store, embedder);
        let n = 700;
        let text = |i: usize| format!("{} {i}", WORDS[i % DIM]);
        {
            let m = open(Turned::new(0)).open().unwrap();
            m.insert_batch((0..n).map(|i| msg("a", "s", &text(i))).collect())
                .unwrap();
        }
        // The new embedder fails part of the way through (a crash, as far as the store knows).
        let failing = std::sync::Arc::new(Turned {
            turn: 1,
            embedded: Default::default(),
            fail_on: Some(Box::leak(text(n - 50).into_boxed_str())),
        });
        let interrupted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            open(failing.clone()).reembed_on_embedder_change().open()
        }));
        assert!(interrupted.is_err(), "{}", backend.name());
        let done_before = failing.embedded();
        assert!(done_before > 0 && done_before < n, "{}", backend.name());
        // Half re-embedded: neither the old embedder nor a third one takes it as theirs.
        for other in [0, 2] {
            let err = open(Turned::new(other)).open().unwrap_err();
            assert!(
                matches!(err, Error::StoreEmbedderMismatch { .. }),
                "{}: {err}",
                backend.name()
            );
            assert!(err.to_string().contains("interrupted"), "{err}");
        }
        // Nor one told to accept a change: the vectors are two embedders' (part each).
        let err = open(Turned::new(2))
            .accept_embedder_change()
            .open()
            .unwrap_err();
        assert!(
            matches!(err, Error::StoreEmbedderMismatch { .. }),
            "{}: {err}",
            backend.name()
        );
        // The next open with the new embedder finishes it, without being told again and without
        // recomputing the batches already committed.
        let resumed = Turned::new(1);
        let m = open(resumed.clone()).open().unwrap();
        assert!(
            resumed.embedded() < n,
            "{}: began again ({} texts)",
            backend.name(),
            resumed.embedded()
        );
        assert_eq!(m.count("a").unwrap(), n as u64, "{}", backend.name());
        for word in WORDS {
            let hits = nearest(&m, "a", word, 10);
            assert_eq!(hits.len(), 10, "{}", backend.name());
            assert!(
                hits.iter().all(|h| h.starts_with(word)),
                "{}: {word}: {hits:?}",
                backend.name()
            );
        }
    }
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = Memory::open(Storage::File(path.clone()), config()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("junk.db"), "{err}");
}

#[test]
fn a_truncated_database_is_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ltm.db");
    {
        let m = Memory::open(Storage::File(path.clone()), config()).unwrap();
        let batch =
            (0..2000).map(|i| msg("a", "s", &format!("entry number {i} {}", "pad ".repeat(20))));
        m.insert_batch(batch.collect()).unwrap();
        m.checkpoint().unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    // Opening may succeed (the header is intact); using the damaged part must give an error.
    match Memory::open(Storage::File(path.clone()), config()) {
        Err(e) => assert!(
            matches!(e, Error::Corrupt { .. } | Error::Database { .. }),
            "{e}"
        ),
        Ok(m) => assert!(m.check_integrity().is_err() || m.count("a").is_err()),
    }
}

/// Writes a store file as version 1 of memory-core wrote it (two secondary indexes, retrieval
/// counts in the rows): entries 7 ("older", 2 retrievals, last at 100) and 9 of agent `a`, 8 of
/// agent `b`.
fn write_version_1_file(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE entries (
                 id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, session_id TEXT NOT NULL,
                 role INTEGER NOT NULL, content TEXT NOT NULL, embedding BLOB,
                 importance REAL NOT NULL, created_at INTEGER NOT NULL,
                 last_accessed_at INTEGER NOT NULL, access_count INTEGER NOT NULL, metadata TEXT);
             CREATE INDEX entries_by_agent_time ON entries(agent_id, created_at);
             CREATE INDEX entries_by_agent_session_time
                 ON entries(agent_id, session_id, created_at);
             INSERT INTO entries VALUES (7, 'a', 's1', 0, 'older', NULL, 0.5, 100, 100, 2, NULL);
             INSERT INTO entries VALUES (9, 'a', 's2', 1, 'newer', NULL, 0.7, 200, 200, 0,
                                         '{\"topic\":\"x\"}');
             INSERT INTO entries VALUES (8, 'b', 's1', 0, 'other agent', NULL, 0.5, 150, 150, 0, NULL);
             PRAGMA user_version = 1;
             PRAGMA application_id = 1296387395;",
    )
    .unwrap();
}

#[test]
fn a_version_1_file_is_migrated_and_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    write_version_1_file(&path);
    let m = Memory::open(Storage::File(path.clone()), config()).unwrap();
    assert_eq!(m.count("a").unwrap(), 2);
    let listed: Vec<String> = m
        .list("a", &ListQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.content)
        .collect();
    assert_eq!(listed, ["newer", "older"]);
    let e = m.get("a", memory_core::EntryId(9)).unwrap().unwrap();
    assert_eq!(e.metadata["topic"], "x");
    assert_eq!(
        m.get("a", memory_core::EntryId(7))
            .unwrap()
            .unwrap()
            .access_count,
        2
    );
    drop(m);
    let c = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, memory_core::SCHEMA_VERSION);
    let indexes: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0, "version 2 keeps no secondary index");
}

/// The file store at `path` with the test configuration and `clock`.
fn open_file_with_clock(path: &std::path::Path, clock: &std::sync::Arc<ManualClock>) -> Memory {
    Memory::builder(Storage::File(path.to_path_buf()))
        .with_config(config())
        .with_clock(clock.clone())
        .open()
        .unwrap()
}

/// (count, last access) of each row of the file's `access` table, read beside the open store.
fn access_rows(path: &std::path::Path) -> Vec<(i64, i64, i64)> {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut stmt = c
        .prepare("SELECT id, count, last_at FROM access ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

/// Retrieval counts of a file written by an older version stay in its rows (the base); counts
/// recorded after the migration go to the `access` table and add to them, also after a reopen.
#[test]
fn counts_recorded_after_a_migration_add_to_the_counts_the_old_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    write_version_1_file(&path);
    let clock = std::sync::Arc::new(ManualClock::new(Timestamp(5_000)));
    let open = || open_file_with_clock(&path, &clock);
    let retrieve = |m: &Memory| {
        let hits = m
            .search(
                &SearchQuery::new("a", "older")
                    .with_mode(memory_core::SearchMode::Keyword)
                    .without_cache(),
            )
            .unwrap();
        assert_eq!(
            hits.iter().map(|h| h.entry.id).collect::<Vec<_>>(),
            [EntryId(7)]
        );
        m.flush().unwrap();
    };
    let counts = |m: &Memory| {
        let e = m.get("a", EntryId(7)).unwrap().unwrap();
        (e.access_count, e.last_accessed_at)
    };
    let m = open();
    assert_eq!(counts(&m), (2, Timestamp(100)));
    retrieve(&m);
    assert_eq!(counts(&m), (3, Timestamp(5_000)));
    // The old row keeps its base; the new count is a narrow row of its own.
    let base: (i64, i64) = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT access_count, last_accessed_at FROM entries WHERE id = 7",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(base, (2, 100));
    assert_eq!(access_rows(&path), [(7, 1, 5_000)]);
    drop(m);
    clock.advance(Duration::from_secs(1));
    let m = open();
    assert_eq!(counts(&m), (3, Timestamp(5_000)));
    retrieve(&m);
    assert_eq!(counts(&m), (4, Timestamp(1_005_000)));
    drop(m);
    let m = open();
    assert_eq!(counts(&m), (4, Timestamp(1_005_000)));
}

/// Forgetting an entry removes its retrieval counts with it, also those still pending in RAM
/// (written by the forget's flush, then deleted in the forget's transaction): the file keeps
/// no row for an id no entry has.
#[test]
fn a_forgotten_entry_leaves_no_retrieval_counts_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let clock = std::sync::Arc::new(ManualClock::new(Timestamp(5_000)));
    let open = || open_file_with_clock(&path, &clock);
    let m = open();
    let milk = m.insert(msg("a", "s", "remember the milk")).unwrap();
    let bread = m.insert(msg("a", "s", "buy bread")).unwrap();
    let retrieve = |m: &Memory, text: &str| {
        let hits = m
            .search(
                &SearchQuery::new("a", text)
                    .with_mode(memory_core::SearchMode::Keyword)
                    .without_cache(),
            )
            .unwrap();
        assert_eq!(hits.len(), 1, "{text}");
    };
    retrieve(&m, "milk");
    retrieve(&m, "bread");
    m.flush().unwrap();
    let (milk_row, bread_row) = (milk.0 as i64, bread.0 as i64);
    assert_eq!(
        access_rows(&path),
        [(milk_row, 1, 5_000), (bread_row, 1, 5_000)]
    );
    // Retrieved again (pending in RAM), then forgotten.
    retrieve(&m, "milk");
    assert!(m.forget("a", milk).unwrap());
    assert_eq!(access_rows(&path), [(bread_row, 1, 5_000)]);
    assert!(m.get("a", milk).unwrap().is_none());
    drop(m);
    let m = open();
    assert_eq!(m.get("a", bread).unwrap().unwrap().access_count, 1);
    assert_eq!(access_rows(&path), [(bread_row, 1, 5_000)]);
}

#[test]
fn a_database_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ltm.db");
    drop(Memory::open(Storage::File(path.clone()), config()).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(&format!(
        "PRAGMA user_version = {}",
        memory_core::SCHEMA_VERSION + 1
    ))
    .unwrap();
    drop(c);
    let err = Memory::open(Storage::File(path), config()).unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
}

#[test]
fn another_programs_sqlite_database_is_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE users (name TEXT)").unwrap();
    drop(c);
    let err = Memory::open(Storage::File(path), config()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn a_temporary_store_is_a_real_file_that_disappears_on_drop() {
    let m = Memory::open(Storage::Temporary, config()).unwrap();
    m.insert(msg("a", "s", "x")).unwrap();
    let path = std::path::PathBuf::from(m.location());
    assert!(path.exists());
    assert!(m.stats().unwrap().disk_bytes > 0);
    drop(m);
    assert!(!path.exists());
}

#[test]
fn power_loss_durability_opens_and_writes() {
    let cfg = MemoryConfig {
        durability: memory_core::Durability::PowerLoss,
        ..config()
    };
    let m = Memory::open(Storage::Temporary, cfg).unwrap();
    let id = m.insert(msg("a", "s", "fsynced")).unwrap();
    assert!(m.get("a", id).unwrap().is_some());
}

/// A batch whose transaction fails (here: a trigger another connection installed rejects one of
/// its rows) stores nothing and leaves nothing in the indexes, whether the batch was indexed
/// after the write (small) or beside it (large).
#[test]
fn a_failed_batch_leaves_neither_rows_nor_index_entries() {
    use memory_core::{SearchMode, SearchQuery};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ltm.db");
    let m = Memory::open(Storage::File(path.clone()), config()).unwrap();
    m.insert(msg("a", "s", "kept before the failures")).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TRIGGER reject BEFORE INSERT ON entries WHEN NEW.content LIKE '%poison%'
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    for size in [10, 400] {
        let mut batch: Vec<NewEntry> = (0..size)
            .map(|i| msg("a", "s", &format!("zebra number {i}")))
            .collect();
        batch[size / 2] = msg("a", "s", "poison row");
        let err = m.insert_batch(batch).unwrap_err();
        assert!(matches!(err, Error::Database { .. }), "{err}");
        assert_eq!(m.count("a").unwrap(), 1, "batch of {size}");
        for mode in [
            SearchMode::Keyword,
            SearchMode::ExactVector,
            SearchMode::Hybrid,
        ] {
            let q = SearchQuery::new("a", "zebra")
                .with_mode(mode)
                .without_cache()
                .with_k(50);
            let hits = m.search(&q).unwrap();
            assert!(
                hits.iter().all(|h| !h.entry.content.contains("zebra")),
                "batch of {size}, {mode:?}: {} hits",
                hits.len()
            );
        }
        assert_eq!(m.list("a", &ListQuery::default()).unwrap().len(), 1);
    }
    c.execute_batch("DROP TRIGGER reject").unwrap();
    let ids = m
        .insert_batch(
            (0..300)
                .map(|i| msg("a", "s", &format!("zebra {i}")))
                .collect(),
        )
        .unwrap();
    assert_eq!(m.count("a").unwrap(), 301);
    let q = SearchQuery::new("a", "zebra")
        .with_mode(SearchMode::Keyword)
        .with_k(500);
    assert_eq!(m.search(&q).unwrap().len(), ids.len());
}

/// Concurrent writers share transactions; one writer's failing entry must fail only its own
/// call, never the writes it happened to be grouped with.
#[test]
fn a_failing_writer_does_not_fail_the_writers_it_shares_a_commit_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ltm.db");
    let m = Memory::open(Storage::File(path.clone()), config()).unwrap();
    m.insert(msg("a", "s", "warm up")).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER reject BEFORE INSERT ON entries WHEN NEW.content LIKE '%poison%'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let m = m.clone();
            s.spawn(move || {
                for i in 0..100 {
                    let poison = t == 0 && i % 3 == 0;
                    let text = if poison {
                        format!("poison {i}")
                    } else {
                        format!("good {t} {i}")
                    };
                    let agent = format!("agent{t}");
                    let result = m.insert(msg(&agent, "s", &text));
                    assert_eq!(result.is_err(), poison, "{text}: {result:?}");
                }
            });
        }
    });
    assert_eq!(m.count("agent0").unwrap(), 100 - 34);
    for t in 1..4 {
        assert_eq!(m.count(&format!("agent{t}")).unwrap(), 100);
    }
    drop(m);
    let m = Memory::open(Storage::File(path), config()).unwrap();
    assert_eq!(m.count("agent0").unwrap(), 66, "and so on disk");
}
