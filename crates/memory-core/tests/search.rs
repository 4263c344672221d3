//! Retrieval through the `Memory` handle: both tiers, every mode, filters, agent isolation, the
//! query cache, access recording, bad queries, and context building.

use std::time::Duration;

mod common;

use memory_core::{
    ContextQuery, Error, Fusion, FusionWeights, Memory, MemoryConfig, NewEntry, Role, SearchMode,
    SearchQuery, Storage, Tier, Timestamp, TokenCounter, ToolDefinition,
};

const DIM: usize = 64;

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        stm_capacity: 5,
        ..MemoryConfig::default()
    }
}

const START: Timestamp = Timestamp(1_700_000_000_000_000);

fn entry(agent: &str, session: &str, text: &str) -> NewEntry {
    NewEntry::new(agent, session, Role::User, text)
}

const MODES: [SearchMode; 4] = [
    SearchMode::Keyword,
    SearchMode::Vector,
    SearchMode::ExactVector,
    SearchMode::Hybrid,
];

fn contents(hits: &[memory_core::SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.entry.content.as_str()).collect()
}

#[test]
fn search_never_returns_entries_of_another_agent() {
    common::each_backend_from(START, config(), |m, _clock| {
        m.insert(entry(
            "alice",
            "s",
            "my passport number is in the blue drawer",
        ))
        .unwrap();
        m.append(entry("alice", "s", "the passport expires next year"))
            .unwrap();
        m.insert(entry("bob", "s", "bob keeps his passport in the safe"))
            .unwrap();
        for mode in MODES {
            let hits = m
                .search(
                    &SearchQuery::new("bob", "passport")
                        .with_mode(mode)
                        .with_k(50),
                )
                .unwrap();
            assert!(!hits.is_empty(), "{mode:?}");
            assert!(hits.iter().all(|h| &*h.entry.agent_id == "bob"), "{mode:?}");
            let none = m
                .search(&SearchQuery::new("carol", "passport").with_mode(mode))
                .unwrap();
            assert!(none.is_empty(), "{mode:?}");
        }
    });
}

#[test]
fn one_query_searches_both_tiers_and_says_which_tier_each_hit_is_from() {
    common::each_backend_from(START, config(), |m, _clock| {
        m.insert(entry("a", "old", "we adopted a cat named Miso"))
            .unwrap();
        m.append(entry("a", "now", "Miso the cat knocked over a plant"))
            .unwrap();
        m.append(entry("a", "now", "unrelated talk about taxes"))
            .unwrap();
        let hits = m.search(&SearchQuery::new("a", "cat Miso")).unwrap();
        let tiers: Vec<Tier> = hits.iter().take(2).map(|h| h.entry.tier).collect();
        assert!(
            tiers.contains(&Tier::LongTerm) && tiers.contains(&Tier::ShortTerm),
            "{hits:?}"
        );
        let only_ltm = m
            .search(&SearchQuery::new("a", "cat Miso").with_tiers(memory_core::Tiers::LongTerm))
            .unwrap();
        assert!(only_ltm.iter().all(|h| h.entry.tier == Tier::LongTerm));
        let only_stm = m
            .search(&SearchQuery::new("a", "cat Miso").with_tiers(memory_core::Tiers::ShortTerm))
            .unwrap();
        assert!(only_stm.iter().all(|h| h.entry.tier == Tier::ShortTerm));
    });
}

#[test]
fn an_entry_in_both_tiers_is_returned_once() {
    common::each_backend_from(START, config(), |m, _clock| {
        m.append(entry("a", "s", "the launch code is swordfish").with_importance(1.0))
            .unwrap();
        assert_eq!(m.consolidate().unwrap().promoted, 1);
        // Now in LTM and still in the recent window.
        let hits = m
            .search(&SearchQuery::new("a", "launch code swordfish").with_k(10))
            .unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
    });
}

#[test]
fn hits_carry_the_components_of_their_score() {
    // First in both rankings: weighted RRF gives (1 - w) / (k + 1) + w / (k + 1); min-max
    // normalization gives the best BM25 and the best cosine 1 each, so (1 - w) + w.
    for (fusion, expected) in [(Fusion::Rrf { k: 60.0 }, 1.0 / 61.0), (Fusion::MinMax, 1.0)] {
        let mut config = config();
        config.search.fusion = fusion;
        config.search.vector_weight = Some(0.3);
        common::each_backend_from(START, config, |m, _clock| {
            m.insert(entry("a", "s", "apples and pears")).unwrap();
            m.insert(entry("a", "s", "bananas only")).unwrap();
            let hits = m
                .search(&SearchQuery::new("a", "apples").with_mode(SearchMode::Hybrid))
                .unwrap();
            let top = &hits[0];
            assert_eq!(top.entry.content, "apples and pears", "{fusion:?}");
            assert_eq!(top.components.keyword_rank, Some(1));
            assert!(top.components.keyword.unwrap() > 0.0);
            assert_eq!(top.components.vector_rank, Some(1));
            assert!(top.components.vector.unwrap() > 0.0);
            assert!(
                (top.components.fused - expected).abs() < 1e-6,
                "{fusion:?}: {}",
                top.components.fused
            );
            assert_eq!(top.score, top.components.fused);
        });
    }
}

/// Stores `text` with vector `v` for agent "a" in `tiers`: inserted into long-term memory, or
/// appended to the short-term window.
fn put_in(m: &Memory, tiers: memory_core::Tiers, text: &str, v: Vec<f32>) {
    let e = entry("a", "s", text).with_embedding(v);
    if tiers == memory_core::Tiers::LongTerm {
        m.insert(e).unwrap();
    } else {
        m.append(e).unwrap();
    }
}

/// A unit vector of the tests' dimension along axis `i`.
fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i] = 1.0;
    v
}

#[test]
fn min_max_fusion_scores_a_vector_candidate_by_the_query_words_it_holds() {
    // Two candidates per signal. The keyword top 2 are the two "apple"-heavy entries, which
    // point away from the query vector; "apple banana" shares a query word but ranks third by
    // BM25, and "cherry" shares none: both lie along the query vector. Scoring "apple banana" as
    // if it held no query word would tie it with "cherry" (and with "apple apple apple", the
    // best BM25 with the worst cosine) at w = 0.5; its own BM25 puts it first.
    let mut config = config();
    config.search.fusion = Fusion::MinMax;
    config.search.vector_weight = Some(0.5);
    config.search.candidates = 2;
    for tiers in [memory_core::Tiers::LongTerm, memory_core::Tiers::ShortTerm] {
        common::each_backend_from(START, config.clone(), |m, _clock| {
            let put = |text: &str, v: Vec<f32>| put_in(&m, tiers, text, v);
            put("cherry", axis(0));
            put("apple apple apple", axis(1));
            put("apple apple", axis(1));
            put("apple banana", axis(0));
            let hits = m
                .search(
                    &SearchQuery::new("a", "apple")
                        .with_mode(SearchMode::Hybrid)
                        .with_vector(axis(0))
                        .with_tiers(tiers)
                        .with_k(2),
                )
                .unwrap();
            assert_eq!(contents(&hits)[0], "apple banana", "{tiers:?}: {hits:?}");
            assert!(hits[0].score > 0.5 + 1e-3, "{tiers:?}: {}", hits[0].score);
        });
    }
}

#[test]
fn the_vector_weight_leans_per_query_on_the_signal_whose_leader_stands_out() {
    // "zanzibar trip" has one entry with the rare word (a clear keyword leader, pointing away
    // from the query vector) and six with "trip" only, whose cosines to the query spread evenly
    // from 0.9 down: no vector candidate stands out as far. At a fixed w = 0.5 the best cosine
    // wins; moved by the standouts, the weight leans on BM25 and the rare word wins.
    let mut config = config();
    config.stm_capacity = 16;
    config.search.fusion = Fusion::MinMax;
    config.search.vector_weight = Some(0.5);
    let toward = |cos: f32| {
        let mut v = axis(0);
        v[0] = cos;
        v[1] = (1.0 - cos * cos).sqrt();
        v
    };
    for standout in [true, false] {
        config.search.weight_by_standout = standout;
        for tiers in [memory_core::Tiers::LongTerm, memory_core::Tiers::ShortTerm] {
            common::each_backend_from(START, config.clone(), |m, _clock| {
                let put = |text: &str, v: Vec<f32>| put_in(&m, tiers, text, v);
                put("zanzibar trip", axis(1));
                for (i, cos) in [0.9, 0.8, 0.7, 0.6, 0.5, 0.4].into_iter().enumerate() {
                    put(&format!("trip notes {i}"), toward(cos));
                }
                let hits = m
                    .search(
                        &SearchQuery::new("a", "zanzibar trip")
                            .with_mode(SearchMode::Hybrid)
                            .with_vector(axis(0))
                            .with_tiers(tiers)
                            .with_k(3),
                    )
                    .unwrap();
                let want = if standout {
                    "zanzibar trip"
                } else {
                    "trip notes 0"
                };
                assert_eq!(contents(&hits)[0], want, "standout {standout}, {tiers:?}");
            });
        }
    }
}

#[test]
fn hybrid_search_with_the_default_embedder_ranks_keyword_matches_as_keyword_search_does() {
    // The built-in embedder hashes words and their letter trigrams, so hybrid search with it
    // keeps BM25's ranking whole (`HASHING_VECTOR_WEIGHT` is 0) and its vectors only order what
    // holds no query word, after every keyword match. The first two entries tie on BM25 (the
    // same length, the same query words); the second shares more trigrams with the query
    // ("arden"), which must not lift it over the first, as the keyword ranking has them.
    let mut config = config();
    config.stm_capacity = 16;
    let texts = [
        "garden roses quietly",
        "garden roses arden",
        "my garden is small but sunny and warm all day",
        "tulips and roses everywhere",
        "a warden guarded the den",
    ];
    for tiers in [memory_core::Tiers::LongTerm, memory_core::Tiers::ShortTerm] {
        common::each_backend_from(START, config.clone(), |m, _clock| {
            for text in texts {
                let e = entry("a", "s", text);
                if tiers == memory_core::Tiers::LongTerm {
                    m.insert(e).unwrap();
                } else {
                    m.append(e).unwrap();
                }
            }
            let search = |mode| {
                let q = SearchQuery::new("a", "garden roses")
                    .with_mode(mode)
                    .with_tiers(tiers)
                    .with_k(texts.len());
                m.search(&q).unwrap()
            };
            let keyword = search(SearchMode::Keyword);
            let hybrid = search(SearchMode::Hybrid);
            assert!(keyword.len() >= 3, "{tiers:?}: {keyword:?}");
            assert_eq!(
                contents(&hybrid)[..keyword.len()],
                contents(&keyword)[..],
                "{tiers:?}"
            );
        });
    }
}

#[test]
fn the_top_k_of_min_max_fusion_is_the_same_whatever_k_skips() {
    // A small k lets the search skip scoring vector candidates that cannot reach its top k; the
    // top 10 must still be what a search deep enough to score nearly every candidate ranks first.
    let words = [
        "garden", "tomato", "hiking", "trail", "piano", "lesson", "paris", "trip", "dog", "walk",
        "recipe", "soup", "marathon", "training", "novel", "chapter",
    ];
    // Vectors unrelated to the words (as a sentence embedder's can be), so that a vector
    // candidate's own BM25 decides whether it enters the top k.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut unit = move || {
        let mut v: Vec<f32> = (0..DIM)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    };
    let entries: Vec<(String, Vec<f32>)> = (0..400usize)
        .map(|i| {
            let text = format!(
                "{} {} {} and {} {}",
                words[i % 16],
                words[(i * 7 + 3) % 16],
                words[(i * 5 + 1) % 16],
                words[(i / 3) % 16],
                i % 17
            );
            (text, unit())
        })
        .collect();
    let queries: Vec<(&str, Vec<f32>)> = [
        "garden tomato soup",
        "piano lesson in paris",
        "dog walk trail",
    ]
    .into_iter()
    .map(|t| (t, unit()))
    .collect();
    let mut config = config();
    config.search.fusion = Fusion::MinMax;
    config.search.vector_weight = Some(0.5);
    common::each_backend_from(START, config, |m, _clock| {
        m.insert_batch(
            entries
                .iter()
                .map(|(t, v)| entry("a", "s", t).with_embedding(v.clone()))
                .collect(),
        )
        .unwrap();
        for (text, v) in &queries {
            let q = SearchQuery::new("a", *text)
                .with_mode(SearchMode::Hybrid)
                .with_vector(v.clone())
                .without_cache();
            let top = m.search(&q.clone().with_k(10)).unwrap();
            let deep = m.search(&q.with_k(50)).unwrap();
            let ids =
                |h: &[memory_core::SearchHit]| h.iter().map(|h| h.entry.id).collect::<Vec<_>>();
            assert_eq!(ids(&top), ids(&deep[..10]), "{text}");
            for (a, b) in top.iter().zip(&deep) {
                assert!((a.score - b.score).abs() < 1e-6, "{text}");
            }
        }
    });
}

#[test]
fn a_vector_weight_outside_the_unit_interval_is_refused() {
    for w in [-0.1, 1.5, f32::NAN] {
        let mut config = config();
        config.search.vector_weight = Some(w);
        assert!(
            matches!(
                Memory::open(Storage::InMemory, config),
                Err(Error::InvalidConfig(_))
            ),
            "weight {w}"
        );
    }
}

#[test]
fn exact_and_approximate_vector_search_agree_on_a_small_store() {
    common::each_backend_from(START, config(), |m, _clock| {
        let texts = [
            "red apple pie",
            "green apple",
            "blue sky",
            "red car",
            "apple tree",
        ];
        for t in texts {
            m.insert(entry("a", "s", t)).unwrap();
        }
        let q = |mode| {
            SearchQuery::new("a", "red apple")
                .with_mode(mode)
                .with_k(3)
                .without_cache()
        };
        let exact = m.search(&q(SearchMode::ExactVector)).unwrap();
        let approx = m.search(&q(SearchMode::Vector)).unwrap();
        assert_eq!(contents(&exact), contents(&approx));
    });
}

#[test]
fn a_precomputed_query_vector_is_used() {
    common::each_backend_from(START, config(), |m, _clock| {
        let mut x = vec![0.0; DIM];
        x[3] = 1.0;
        let mut y = vec![0.0; DIM];
        y[7] = 1.0;
        m.insert(entry("a", "s", "first").with_embedding(x.clone()))
            .unwrap();
        m.insert(entry("a", "s", "second").with_embedding(y))
            .unwrap();
        let hits = m
            .search(
                &SearchQuery::new("a", "")
                    .with_vector(x)
                    .with_mode(SearchMode::ExactVector)
                    .with_k(1),
            )
            .unwrap();
        assert_eq!(contents(&hits), ["first"]);
    });
}

#[test]
fn filters_by_session_role_time_and_metadata() {
    common::each_backend_from(START, config(), |m, clock| {
        let t0 = memory_core::Clock::now(&*clock);
        m.insert(
            entry("a", "s1", "coffee at nine").with_metadata(serde_json::json!({"topic": "food"})),
        )
        .unwrap();
        clock.advance(Duration::from_secs(60));
        m.insert(
            NewEntry::new("a", "s2", Role::Assistant, "coffee is brewing")
                .with_metadata(serde_json::json!({"topic": "food"})),
        )
        .unwrap();
        clock.advance(Duration::from_secs(60));
        m.insert(
            entry("a", "s2", "coffee shop closed")
                .with_metadata(serde_json::json!({"topic": "places"})),
        )
        .unwrap();
        let base = || SearchQuery::new("a", "coffee").with_k(10).without_cache();
        assert_eq!(
            contents(&m.search(&base().with_session("s1")).unwrap()),
            ["coffee at nine"]
        );
        assert_eq!(
            contents(&m.search(&base().with_role(Role::Assistant)).unwrap()),
            ["coffee is brewing"]
        );
        let window = base().with_created_between(
            Some(t0.plus(Duration::from_secs(30))),
            Some(t0.plus(Duration::from_secs(90))),
        );
        assert_eq!(contents(&m.search(&window).unwrap()), ["coffee is brewing"]);
        let mut food = contents(&m.search(&base().with_metadata("topic", "food")).unwrap())
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        food.sort();
        assert_eq!(food, ["coffee at nine", "coffee is brewing"]);
        let places = m
            .search(&base().with_metadata("topic", "places").with_session("s2"))
            .unwrap();
        assert_eq!(contents(&places), ["coffee shop closed"]);
    });
}

#[test]
fn a_metadata_filter_finds_matches_beyond_the_first_candidates() {
    common::each_backend_from(START, config(), |m, _clock| {
        let batch = (0..300)
            .map(|i| {
                let tag = if i == 277 { "rare" } else { "common" };
                entry("a", "s", &format!("meeting notes number {i}"))
                    .with_metadata(serde_json::json!({ "tag": tag }))
            })
            .collect();
        m.insert_batch(batch).unwrap();
        let hits = m
            .search(
                &SearchQuery::new("a", "meeting notes")
                    .with_k(1)
                    .with_metadata("tag", "rare"),
            )
            .unwrap();
        assert_eq!(contents(&hits), ["meeting notes number 277"]);
    });
}

#[test]
fn repeated_queries_hit_the_cache_until_the_agent_writes() {
    common::each_backend_from(START, config(), |m, _clock| {
        m.insert(entry("a", "s", "the wifi password is hunter2"))
            .unwrap();
        let q = SearchQuery::new("a", "wifi password");
        let first = m.search(&q).unwrap();
        let second = m.search(&q).unwrap();
        assert_eq!(first, second);
        assert_eq!(m.cache_stats().hits, 1);
        assert_eq!(m.cache_stats().misses, 1);

        // Another agent's write does not invalidate a's answers...
        m.insert(entry("b", "s", "wifi password for b")).unwrap();
        m.search(&q).unwrap();
        assert_eq!(m.cache_stats().hits, 2);
        // ...but a's own writes do, in either tier, and so does forgetting.
        let id = m
            .insert(entry("a", "s", "the new wifi password is hunter3"))
            .unwrap();
        assert_eq!(m.search(&q).unwrap().len(), 2);
        assert_eq!(m.cache_stats().misses, 2);
        m.append(entry("a", "s", "wifi password changed again"))
            .unwrap();
        assert_eq!(m.search(&q).unwrap().len(), 3);
        m.forget("a", id).unwrap();
        assert_eq!(m.search(&q).unwrap().len(), 2);
        assert_eq!(m.cache_stats().misses, 4);
        // Bypassing the cache counts neither.
        m.search(&q.clone().without_cache()).unwrap();
        assert_eq!(m.cache_stats().hits + m.cache_stats().misses, 6);
    });
}

#[test]
fn cached_answers_expire_after_the_ttl_on_the_injected_clock() {
    let cfg = MemoryConfig {
        search: memory_core::SearchConfig {
            cache_ttl: Duration::from_secs(300),
            ..Default::default()
        },
        ..config()
    };
    common::each_backend_from(START, cfg, |m, clock| {
        m.insert(entry("a", "s", "hello there")).unwrap();
        let q = SearchQuery::new("a", "hello");
        m.search(&q).unwrap();
        clock.advance(Duration::from_secs(299));
        m.search(&q).unwrap();
        assert_eq!((m.cache_stats().hits, m.cache_stats().misses), (1, 1));
        clock.advance(Duration::from_secs(1));
        let again = m.search(&q).unwrap();
        assert_eq!((m.cache_stats().hits, m.cache_stats().misses), (1, 2));
        assert_eq!(
            again.len(),
            1,
            "an expired answer is computed again, not lost"
        );
        m.search(&q).unwrap();
        assert_eq!(m.cache_stats().hits, 2, "and cached again");
    });
}

/// Retrieval counts ride along with a commit at most once a second (each updates a row at a
/// random place, which slowed a paced ingest beside a query loop several-fold when every commit
/// carried them): a commit soon after the retrievals leaves them in RAM, one a second later
/// writes them, and the last handle's close writes what is left.
#[test]
fn retrievals_are_written_back_by_a_later_commit_or_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let open = || Memory::open(Storage::File(path.clone()), config()).unwrap();
    let m = open();
    let id = m.insert(entry("a", "s", "remember the milk")).unwrap();
    let search = |m: &Memory| {
        m.search(&SearchQuery::new("a", "milk").without_cache())
            .unwrap()
    };
    search(&m);
    // More than the interval later, the next commit carries the count.
    std::thread::sleep(Duration::from_millis(1_100));
    m.insert(entry("a", "s", "buy bread")).unwrap();
    assert_eq!(m.get("a", id).unwrap().unwrap().access_count, 1);
    // A clone closing writes nothing yet; the last handle's close does.
    let other = m.clone();
    search(&m);
    drop(m);
    search(&other);
    drop(other);
    let m = open();
    assert_eq!(m.get("a", id).unwrap().unwrap().access_count, 3);
}

#[test]
fn retrieval_records_accesses_without_blocking_on_the_writer() {
    common::each_backend_from(START, config(), |m, clock| {
        let id = m.insert(entry("a", "s", "remember the milk")).unwrap();
        for _ in 0..3 {
            clock.advance(Duration::from_secs(1));
            m.search(&SearchQuery::new("a", "milk").without_cache())
                .unwrap();
        }
        // Deferred: written back with the next write (or flush).
        m.flush().unwrap();
        let e = m.get("a", id).unwrap().unwrap();
        assert_eq!(e.access_count, 3);
        assert_eq!(e.last_accessed_at, memory_core::Clock::now(&*clock));
    });
}

#[test]
fn reweighting_by_importance_can_reorder_hits() {
    common::each_backend_from(START, config(), |m, _clock| {
        m.insert(entry("a", "s", "budget budget budget report").with_importance(0.0))
            .unwrap();
        m.insert(entry("a", "s", "quarterly budget").with_importance(1.0))
            .unwrap();
        let q = SearchQuery::new("a", "budget")
            .with_mode(SearchMode::Keyword)
            .without_cache();
        let plain = m.search(&q).unwrap();
        assert_eq!(plain[0].entry.content, "budget budget budget report");
        let weighted = m
            .search(&q.clone().with_reweighting(FusionWeights {
                relevance: 1.0,
                recency: 0.0,
                importance: 1.0,
            }))
            .unwrap();
        assert_eq!(weighted[0].entry.content, "quarterly budget");
        assert!(weighted[0].score > weighted[1].score);
        // The top 1 by the final score, not the relevance top 1 re-scored.
        for mode in [SearchMode::Keyword, SearchMode::Hybrid] {
            let top1 = m
                .search(
                    &q.clone()
                        .with_mode(mode)
                        .with_k(1)
                        .with_reweighting(FusionWeights {
                            relevance: 1.0,
                            recency: 0.0,
                            importance: 1.0,
                        }),
                )
                .unwrap();
            assert_eq!(top1.len(), 1);
            assert_eq!(top1[0].entry.content, "quarterly budget", "{mode:?}");
        }
    });
}

#[test]
fn bad_queries_get_an_error_or_a_well_defined_empty_result() {
    common::each_backend_from(START, config(), |m, _clock| {
        m.insert(entry("a", "s", "something")).unwrap();
        assert!(matches!(
            m.search(&SearchQuery::new("a", "  ")),
            Err(Error::InvalidQuery(_))
        ));
        assert!(matches!(
            m.search(&SearchQuery::new("", "x")),
            Err(Error::EmptyId { .. })
        ));
        for mode in MODES {
            let punct = m
                .search(&SearchQuery::new("a", "?!...").with_mode(mode))
                .unwrap();
            assert!(punct.is_empty(), "{mode:?}");
        }
        assert!(m
            .search(&SearchQuery::new("a", "something").with_k(0))
            .unwrap()
            .is_empty());
        assert_eq!(
            m.search(&SearchQuery::new("a", "something").with_k(usize::MAX))
                .unwrap()
                .len(),
            1
        );
        let wrong = SearchQuery::new("a", "x").with_vector(vec![1.0; DIM + 1]);
        assert!(matches!(
            m.search(&wrong),
            Err(Error::DimensionMismatch { .. })
        ));
        let mut nan = vec![1.0; DIM];
        nan[5] = f32::NAN;
        let nan = SearchQuery::new("a", "x").with_vector(nan);
        assert!(matches!(
            m.search(&nan),
            Err(Error::NonFiniteEmbedding { index: 5, .. })
        ));
        let nan = FusionWeights {
            relevance: f32::NAN,
            recency: 0.0,
            importance: 0.0,
        };
        // A sum that overflows would make every score infinite (hits in id order).
        let overflowing = FusionWeights {
            relevance: f32::MAX,
            recency: f32::MAX,
            importance: 0.0,
        };
        for weights in [nan, overflowing] {
            let bad_weights = SearchQuery::new("a", "x").with_reweighting(weights);
            assert!(
                matches!(m.search(&bad_weights), Err(Error::InvalidQuery(_))),
                "{weights:?}"
            );
        }
    });
}

#[test]
fn a_reopened_store_rebuilds_its_indexes() {
    common::each_store(config(), |store, m, _clock| {
        {
            m.insert_batch(
                (0..50)
                    .map(|i| entry("a", "s", &format!("note {i} about gardening")))
                    .collect(),
            )
            .unwrap();
            m.insert(entry("a", "s", "tomatoes need sun")).unwrap();
        }
        drop(m);
        let m = store.open(config()).unwrap();
        for mode in MODES {
            let hits = m
                .search(
                    &SearchQuery::new("a", "tomatoes sun")
                        .with_mode(mode)
                        .with_k(1),
                )
                .unwrap();
            assert_eq!(contents(&hits), ["tomatoes need sun"], "{mode:?}");
        }
    });
}

#[test]
fn forgotten_entries_are_not_found() {
    common::each_backend_from(START, config(), |m, _clock| {
        let id = m.insert(entry("a", "s", "delete this secret")).unwrap();
        m.forget("a", id).unwrap();
        for mode in MODES {
            assert!(m
                .search(&SearchQuery::new("a", "secret").with_mode(mode))
                .unwrap()
                .is_empty());
        }
    });
}

#[test]
fn context_building_packs_memories_and_recent_turns_under_the_budget() {
    common::each_backend_from(START, config(), |m, _clock| {
        m.insert(entry("a", "old", "the user is allergic to peanuts"))
            .unwrap();
        for i in 0..5 {
            m.append(entry(
                "a",
                "chat",
                &format!("turn {i}: what should I cook tonight?"),
            ))
            .unwrap();
        }
        let tool = ToolDefinition::from_json_schema(
            "search_recipes",
            "find recipes",
            r#"{"type":"object","properties":{"q":{"type":"string"}}}"#,
        )
        .unwrap();
        let request = ContextQuery::new(
            SearchQuery::new("a", "cook peanuts allergy"),
            "chat",
            "You are a helpful cook.",
            400,
        )
        .with_tools(vec![tool]);
        let ctx = m.build_context(&request).unwrap();
        let prompt = ctx.render();
        assert!(prompt.contains("allergic to peanuts"), "{prompt}");
        assert!(prompt.contains("turn 4"), "{prompt}");
        assert!(prompt.contains("search_recipes"));
        assert!(ctx.total_tokens <= 400);
        assert_eq!(
            memory_core::HeuristicCounter.count(&prompt),
            ctx.total_tokens
        );

        // A tight budget drops the oldest turns first and reports it.
        let tight = m
            .build_context(&ContextQuery {
                budget: 60,
                ..request.clone()
            })
            .unwrap();
        assert!(tight.total_tokens <= 60);
        assert!(!tight.omitted.is_empty());
        let too_small = m
            .build_context(&ContextQuery {
                budget: 2,
                ..request
            })
            .unwrap_err();
        assert!(matches!(too_small, Error::BudgetTooSmall { .. }));
    });
}

/// The retrieval of a context records accesses: a request refused for its memory share, its
/// tools or its budget must be refused before it, and change nothing.
#[test]
fn a_refused_context_request_records_no_retrieval() {
    common::each_backend_from(START, config(), |m, _clock| {
        let id = m
            .insert(entry("a", "old", "the user is allergic to peanuts"))
            .unwrap();
        m.append(entry("a", "chat", "no peanuts in the curry please"))
            .unwrap();
        let request = ContextQuery::new(
            SearchQuery::new("a", "peanuts").without_cache(),
            "chat",
            "You are a helpful cook.",
            400,
        );
        let tool =
            ToolDefinition::from_json_schema("search_recipes", "find recipes", "{}").unwrap();
        let accesses = |m: &Memory| {
            m.flush().unwrap();
            (
                m.get("a", id).unwrap().unwrap().access_count,
                m.recent("a", "chat", 1).unwrap()[0].access_count,
            )
        };
        let refused = |req: &ContextQuery| m.build_context(req).unwrap_err();
        let bad_share = refused(&request.clone().with_memory_share(f32::NAN));
        assert!(matches!(bad_share, Error::InvalidQuery(_)), "{bad_share}");
        let same_tools = refused(&request.clone().with_tools(vec![tool.clone(), tool]));
        assert!(
            matches!(same_tools, Error::InvalidTool { .. }),
            "{same_tools}"
        );
        let tiny = refused(&ContextQuery {
            budget: 2,
            ..request.clone()
        });
        assert!(matches!(tiny, Error::BudgetTooSmall { .. }), "{tiny}");
        assert_eq!(accesses(&m), (0, 0));
        m.build_context(&request).unwrap();
        assert_eq!(accesses(&m), (1, 1));
    });
}

#[test]
fn the_background_linker_builds_the_graph_and_search_is_complete_before_it_does() {
    let cfg = MemoryConfig {
        search: memory_core::SearchConfig {
            hnsw: memory_core::index::vector::HnswParams {
                min_len: 64,
                ..Default::default()
            },
            ..Default::default()
        },
        ..config()
    };
    let m = Memory::open(Storage::InMemory, cfg).unwrap();
    let batch = (0..1_000)
        .map(|i| entry("a", "s", &format!("note {i} topic {}", i % 37)))
        .collect();
    m.insert_batch(batch).unwrap();
    let target = m
        .insert(entry("a", "s", "zebra crossing near the school"))
        .unwrap();
    // Whether or not the linker has caught up, the newest entry is found.
    let q = SearchQuery::new("a", "zebra crossing school")
        .with_mode(SearchMode::Vector)
        .with_k(1)
        .without_cache();
    assert_eq!(m.search(&q).unwrap()[0].entry.id, target);
    m.wait_for_indexing();
    // Linked: approximate search now walks the graph; it agrees with the exact scan on a
    // query with many neighbours, and hybrid search still finds the needle by its words.
    let near = |mode| {
        SearchQuery::new("a", "note topic 5")
            .with_mode(mode)
            .with_k(5)
            .without_cache()
    };
    // The texts are near-identical, so the exact top 5 often ends on a tie that an approximate
    // walk may break either way: a hit counts as found when it is as similar to the query as
    // the exact fifth one, whichever entry it is.
    let exact = m.search(&near(SearchMode::ExactVector)).unwrap();
    let approx = m.search(&near(SearchMode::Vector)).unwrap();
    let cosine = |h: &memory_core::SearchHit| h.components.vector.expect("vector search ran");
    let fifth = cosine(&exact[4]);
    let found = approx.iter().filter(|h| cosine(h) >= fifth - 1e-5).count();
    assert!(
        found >= 4,
        "{found} of 5 approximate hits are as similar as the exact fifth ({fifth})"
    );
    let hybrid = m.search(&q.with_mode(SearchMode::Hybrid)).unwrap();
    assert_eq!(hybrid[0].entry.id, target);
}

/// A corpus of sentences drawn from a small vocabulary (so that words recur and both signals
/// have something to rank), each sentence distinct.
fn sentences(n: usize, seed: u64) -> Vec<String> {
    const WORDS: [&str; 40] = [
        "river", "garden", "violin", "passport", "tomato", "bicycle", "winter", "coffee",
        "lantern", "doctor", "harbor", "pencil", "market", "thunder", "orchid", "ladder", "castle",
        "wallet", "meadow", "rocket", "salmon", "blanket", "canyon", "teacher", "marble", "pepper",
        "island", "kitchen", "falcon", "velvet", "mirror", "glacier", "puzzle", "anchor", "cherry",
        "engine", "forest", "helmet", "jacket", "lemon",
    ];
    let mut x = seed;
    let mut next = move || {
        // xorshift64: deterministic, no dependency
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..6).map(|_| WORDS[(next() % 40) as usize]).collect();
            format!("{} note {i}", words.join(" "))
        })
        .collect()
}

#[test]
fn hybrid_search_ranks_alike_on_every_backend_with_and_without_a_filter() {
    // The embedded store is the reference: a shared backend may fetch the two signals its own
    // way (PostgreSQL: both at once, similarities with the keyword candidates), but the fused
    // hits must be the same entries with the same scores (ids differ between stores).
    let corpus = sentences(400, 0x5eed);
    let fill = |m: &Memory| {
        for (i, chunk) in corpus.chunks(100).enumerate() {
            let session = format!("s{}", i % 2);
            m.insert_batch(chunk.iter().map(|t| entry("a", &session, t)).collect())
                .unwrap();
        }
        for t in sentences(4, 0xabc) {
            m.append(entry("a", "live", &t)).unwrap();
        }
        m.wait_for_indexing();
    };
    let reference = Memory::open(Storage::Temporary, config()).unwrap();
    fill(&reference);
    let queries = [
        "river garden violin",
        "passport wallet",
        "coffee in the kitchen",
        "thunder over the glacier",
        "lemon",
    ];
    common::each_backend_from(START, config(), |m, _clock| {
        fill(&m);
        for text in queries {
            for session in [None, Some("s1")] {
                let mut q = SearchQuery::new("a", text)
                    .with_mode(SearchMode::Hybrid)
                    .with_k(10)
                    .without_cache();
                if let Some(s) = session {
                    q = q.with_session(s);
                }
                let scored = |hits: Vec<memory_core::SearchHit>| -> Vec<(String, f32)> {
                    hits.iter()
                        .map(|h| (h.entry.content.clone(), h.score))
                        .collect()
                };
                let got = scored(m.search(&q).unwrap());
                let want = scored(reference.search(&q).unwrap());
                assert_eq!(got.len(), want.len(), "{text:?} {session:?}");
                let last = want.last().map_or(0.0, |h| h.1);
                for (content, score) in &got {
                    match want.iter().find(|w| &w.0 == content) {
                        Some(w) => assert!(
                            (w.1 - score).abs() < 1e-4,
                            "{text:?} {session:?}: {content:?} scored {score}, reference {}",
                            w.1
                        ),
                        // Only a tie at the cut may pick another entry.
                        None => assert!(
                            (score - last).abs() < 1e-4,
                            "{text:?} {session:?}: {content:?} ({score}) is not in the reference's top 10 {want:?}"
                        ),
                    }
                }
            }
        }
    });
}

#[test]
fn hybrid_hits_on_a_large_agent_carry_the_keyword_search_scores() {
    // Past 4,096 entries a shared backend ranks keywords with its pruned plan (and past 2,000
    // vectors with its approximate index), so the fused hits may differ from the embedded
    // store's; each hit's BM25 part must still be what a keyword search gives that entry.
    let corpus = sentences(4_200, 0xb16);
    common::each_backend_from(START, config(), |m, _clock| {
        for chunk in corpus.chunks(1_000) {
            m.insert_batch(chunk.iter().map(|t| entry("a", "s", t)).collect())
                .unwrap();
        }
        m.wait_for_indexing();
        for text in ["river garden violin", "passport wallet", "lemon"] {
            let hybrid = m
                .search(
                    &SearchQuery::new("a", text)
                        .with_mode(SearchMode::Hybrid)
                        .with_k(10),
                )
                .unwrap();
            let keyword = m
                .search(
                    &SearchQuery::new("a", text)
                        .with_mode(SearchMode::Keyword)
                        .with_k(config().search.candidates),
                )
                .unwrap();
            assert_eq!(hybrid.len(), 10, "{text:?}");
            for h in &hybrid {
                if let Some(score) = h.components.keyword {
                    let k = keyword.iter().find(|k| k.entry.id == h.entry.id);
                    let k = k.unwrap_or_else(|| panic!("{text:?}: {h:?} is no keyword candidate"));
                    let bm25 = k.components.keyword.unwrap_or(f32::NAN);
                    assert!((bm25 - score).abs() < 1e-4, "{text:?}: {h:?} vs {k:?}");
                }
            }
        }
    });
}

/// The hashing embedder, counting the texts it embeds.
#[derive(Debug)]
struct Counting {
    inner: memory_core::HashingEmbedder,
    texts: std::sync::atomic::AtomicUsize,
}

impl memory_core::Embedder for Counting {
    fn dimension(&self) -> usize {
        DIM
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        self.texts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.embed(text)
    }

    fn id(&self) -> String {
        "hashing-counted".into()
    }
}

/// Short-term entries are appended without a vector (appends do not embed); a search made one
/// for each, every time: with a model embedder, milliseconds per entry per search. Now each is
/// embedded once, and a consolidation uses the same vectors.
#[test]
fn short_term_entries_without_vectors_are_embedded_once() {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let counting = std::sync::Arc::new(Counting {
            inner: memory_core::HashingEmbedder::new(DIM).unwrap(),
            texts: Default::default(),
        });
        let m = store
            .builder()
            .with_config(config())
            .with_embedder(counting.clone())
            .open()
            .unwrap();
        let texts = |c: &Counting| c.texts.load(std::sync::atomic::Ordering::Relaxed);
        for i in 0..4 {
            m.append(entry("a", "s", &format!("note {i} about kites and string")))
                .unwrap();
        }
        let before = texts(&counting);
        let searches = 5;
        for _ in 0..searches {
            let hits = m
                .search(
                    &SearchQuery::new("a", "kites")
                        .with_mode(SearchMode::Hybrid)
                        .with_tiers(memory_core::Tiers::ShortTerm)
                        .without_cache(),
                )
                .unwrap();
            assert_eq!(hits.len(), 4, "on the {}", store.label());
        }
        assert_eq!(
            texts(&counting) - before,
            searches + 4,
            "each query once and each entry once, on the {}",
            store.label()
        );
        let before = texts(&counting);
        m.consolidate().unwrap();
        assert_eq!(
            texts(&counting) - before,
            0,
            "the consolidation embedded again, on the {}",
            store.label()
        );
    }
}
