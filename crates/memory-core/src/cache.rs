//! The query cache: repeated queries are answered from memory for a time-to-live, and any write to
//! an agent's memory invalidates that agent's cached answers at once.
//!
//! Invalidation is O(1): each agent hashes to a generation counter that every write bumps, and the
//! counter is part of the cache key, so stale answers are never looked up again (the cache evicts
//! them as it fills). Two agents sharing a counter only cost each other spurious misses.
//!
//! The cache itself is `quick_cache` (sharded, CLOCK-Pro eviction, no background work). Each
//! answer carries the time it was computed, read from the store's [`Clock`](crate::Clock), and is
//! a miss once older than the time-to-live, so expiry is as testable as the rest of the engine.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use rustc_hash::FxHasher;

use crate::clock::Timestamp;
use crate::entry::Role;
use crate::query::{SearchHit, SearchMode, SearchQuery, Tiers};

const GENERATION_SLOTS: usize = 4096;

/// Hit and miss counts of the query cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// Everything that makes two queries the same question, plus the agent's generation.
///
/// The key's hash is computed once, when the key is made, by a fast hash of all its fields
/// (a query vector is 1.5 KB: hashed by the cache's SipHash on every lookup it would cost more
/// than the rest of a cache hit). Equality still compares every field, so a collision costs a
/// comparison, never a wrong answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CacheKey {
    hash: u64,
    agent: String,
    generation: u64,
    /// The generations of the shared tiers, read from their servers (see `State::shared_generation`).
    shared: [Option<u64>; 2],
    text: String,
    vector: Option<Box<[u32]>>,
    k: usize,
    mode: SearchMode,
    tiers: Tiers,
    session: Option<String>,
    role: Option<Role>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    metadata: Option<(String, String)>,
    reweighting: [u32; 3],
}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A hash of `words` in four independent multiply-rotate lanes (so the CPU runs them in
/// parallel), folded with the SplitMix64 finalizer.
fn hash_words(words: &[u32]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lanes: [u64; 4] = [
        0x243F_6A88_85A3_08D3,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
    ];
    let chunks = words.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from(c[2 * i]) | u64::from(c[2 * i + 1]) << 32;
            *lane = (*lane ^ w).wrapping_mul(K).rotate_left(29);
        }
    }
    let mut h = words.len() as u64;
    for &w in tail {
        h = (h ^ u64::from(w)).wrapping_mul(K).rotate_left(29);
    }
    for lane in lanes {
        h = crate::embed::splitmix64(h ^ lane);
    }
    h
}

/// A computed answer and when it was computed.
#[derive(Clone, Debug)]
struct Answer {
    at: Timestamp,
    hits: Arc<Vec<SearchHit>>,
}

#[derive(Debug)]
pub(crate) struct QueryCache {
    cache: Cache<CacheKey, Answer>,
    ttl: Duration,
    generations: Box<[AtomicU64]>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl QueryCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        QueryCache {
            cache: Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX).max(1)),
            ttl,
            generations: (0..GENERATION_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn slot(&self, agent: &str) -> &AtomicU64 {
        let mut h = FxHasher::default();
        agent.hash(&mut h);
        &self.generations[(h.finish() as usize) % GENERATION_SLOTS]
    }

    /// The key of `q` at the agent's current generation. Take it before computing an answer, so
    /// that a write racing with the computation makes the answer unreachable, never stale.
    ///
    /// `shared` are the generations of the tiers other handles write (`[None, None]` when only
    /// this handle writes), read before the answer is computed: another instance's write changes
    /// them, so its effect is never hidden behind an answer cached here.
    pub fn key(&self, q: &SearchQuery, shared: [Option<u64>; 2]) -> CacheKey {
        // Destructured field by field, with no `..`: a field added to `SearchQuery` does not
        // compile here until it is part of the key (or explicitly left out, as `use_cache` is).
        let SearchQuery {
            agent_id,
            text,
            vector,
            k,
            mode,
            tiers,
            session,
            role,
            since,
            until,
            metadata,
            reweighting,
            use_cache: _,
        } = q;
        let w = reweighting;
        let mut key = CacheKey {
            hash: 0,
            agent: agent_id.clone(),
            generation: self.slot(agent_id).load(Ordering::Acquire),
            shared,
            text: text.clone(),
            vector: vector
                .as_ref()
                .map(|v| v.iter().map(|x| x.to_bits()).collect()),
            k: *k,
            mode: *mode,
            tiers: *tiers,
            session: session.clone(),
            role: *role,
            since: *since,
            until: *until,
            metadata: metadata.as_ref().map(|(k, v)| (k.clone(), v.to_string())),
            reweighting: [
                w.relevance.to_bits(),
                w.recency.to_bits(),
                w.importance.to_bits(),
            ],
        };
        let mut h = FxHasher::default();
        let CacheKey {
            hash: _,
            agent,
            generation,
            shared,
            text,
            vector,
            k,
            mode,
            tiers,
            session,
            role,
            since,
            until,
            metadata,
            reweighting,
        } = &key;
        (
            agent, generation, shared, text, k, mode, tiers, session, role,
        )
            .hash(&mut h);
        (since, until, metadata, reweighting).hash(&mut h);
        vector.as_deref().map(hash_words).hash(&mut h);
        key.hash = h.finish();
        key
    }

    /// The answer cached for `key` and still fresh at `now`, counting a hit or a miss.
    pub fn get(&self, key: &CacheKey, now: Timestamp) -> Option<Vec<SearchHit>> {
        match self.cache.get(key) {
            Some(answer) if now.since(answer.at) < self.ttl => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(answer.hits.as_ref().clone())
            }
            stale => {
                if stale.is_some() {
                    self.cache.remove(key);
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps an answer computed at `at`, after `key` was taken.
    pub fn insert(&self, key: CacheKey, hits: &[SearchHit], at: Timestamp) {
        let hits = Arc::new(hits.to_vec());
        self.cache.insert(key, Answer { at, hits });
    }

    /// Invalidates every cached answer for `agent`.
    pub fn invalidate(&self, agent: &str) {
        self.slot(agent).fetch_add(1, Ordering::AcqRel);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_hashes_see_every_word_and_the_length() {
        let base: Vec<u32> = (0..387).collect();
        let h = hash_words(&base);
        for i in [0, 7, 8, 200, 383, 384, 386] {
            let mut v = base.clone();
            v[i] ^= 1;
            assert_ne!(hash_words(&v), h, "word {i}");
        }
        assert_ne!(hash_words(&base[..386]), h);
        assert_ne!(hash_words(&[]), hash_words(&[0]));
    }

    #[test]
    fn equal_queries_make_equal_keys_and_any_difference_a_different_key() {
        let cache = QueryCache::new(10, Duration::from_secs(60));
        let q = SearchQuery::new("a", "lisbon").with_vector(vec![0.5; 8]);
        let key = |q: &SearchQuery| cache.key(q, [None, None]);
        assert_eq!(key(&q), key(&q.clone()));
        assert_eq!(key(&q).hash, key(&q.clone()).hash);
        let mut other = q.clone();
        other.vector.as_mut().unwrap()[7] = 0.25;
        assert_ne!(key(&q), key(&other));
        assert_ne!(key(&q), key(&q.clone().with_k(11)));
        assert_ne!(key(&q), key(&q.clone().with_session("s")));
        let before = key(&q);
        cache.invalidate("a");
        assert_ne!(before, key(&q), "a write makes a new generation");
        assert_ne!(
            cache.key(&q, [Some(1), None]),
            cache.key(&q, [Some(2), None]),
            "another instance's write makes a new shared generation"
        );
    }
}
