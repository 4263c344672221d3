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
struct CacheKey {
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

    fn key(&self, q: &SearchQuery) -> CacheKey {
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

    /// Answers `q` from the cache, or runs `compute` and keeps its answer.
    pub fn get_or_compute<E>(
        &self,
        q: &SearchQuery,
        compute: impl FnOnce() -> Result<Vec<SearchHit>, E>,
    ) -> Result<Vec<SearchHit>, E> {
        let key = self.key(q);
        if let Some(hits) = self.cache.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hits.as_ref().clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let hits = compute()?;
        // A write that raced with `compute` bumped the generation: the key is already stale and
        // the answer is simply never found again.
        self.cache.insert(key, std::sync::Arc::new(hits.clone()));
        Ok(hits)
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
