//! The query cache: repeated queries are answered from memory for a time-to-live, and any write to
//! an agent's memory invalidates that agent's cached answers at once.
//!
//! Invalidation is O(1): each agent hashes to a generation counter that every write bumps, and the
//! counter is part of the cache key, so stale answers are never looked up again (moka evicts them
//! by time-to-live and size). Two agents sharing a counter only cost each other spurious misses.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use rustc_hash::FxHasher;

use crate::clock::Timestamp;
use crate::entry::Role;
use crate::search::{SearchHit, SearchMode, SearchQuery, Tiers};

const GENERATION_SLOTS: usize = 4096;

/// Hit and miss counts of the query cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// Everything that makes two queries the same question, plus the agent's generation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    agent: String,
    generation: u64,
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

#[derive(Debug)]
pub(crate) struct QueryCache {
    cache: Cache<CacheKey, std::sync::Arc<Vec<SearchHit>>>,
    generations: Box<[AtomicU64]>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl QueryCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        QueryCache {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
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
    pub fn key(&self, q: &SearchQuery) -> CacheKey {
        let w = q.reweighting;
        CacheKey {
            agent: q.agent_id.clone(),
            generation: self.slot(&q.agent_id).load(Ordering::Acquire),
            text: q.text.clone(),
            vector: q
                .vector
                .as_ref()
                .map(|v| v.iter().map(|x| x.to_bits()).collect()),
            k: q.k,
            mode: q.mode,
            tiers: q.tiers,
            session: q.session.clone(),
            role: q.role,
            since: q.since,
            until: q.until,
            metadata: q.metadata.as_ref().map(|(k, v)| (k.clone(), v.to_string())),
            reweighting: [
                w.relevance.to_bits(),
                w.recency.to_bits(),
                w.importance.to_bits(),
            ],
        }
    }

    /// The cached answer for `key`, counting a hit or a miss.
    pub fn get(&self, key: &CacheKey) -> Option<Vec<SearchHit>> {
        match self.cache.get(key) {
            Some(hits) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(hits.as_ref().clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps an answer computed after `key` was taken.
    pub fn insert(&self, key: CacheKey, hits: &[SearchHit]) {
        self.cache.insert(key, std::sync::Arc::new(hits.to_vec()));
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
