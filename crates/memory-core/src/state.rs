//! The shared state of one store: its configuration, clock and embedder, the two tiers behind
//! their storage boundaries, the query cache and the scorer. Read by every operation; changed
//! only through the write path (`write.rs`).

use std::sync::Arc;

use crate::cache::QueryCache;
use crate::clock::Clock;
use crate::config::MemoryConfig;
use crate::embed::{checked, checked_vectors, Embedder};
use crate::entry::{EntryId, MemoryEntry};
use crate::error::Result;
use crate::query::Tiers;
use crate::scoring::ImportanceScorer;
use crate::stm::ram::RamShortTerm;
use crate::stm::{ShortTermStorage, ShortTermStore};
use crate::store::embedded::EmbeddedStore;
use crate::store::embedder::{EmbedderCheck, OnEmbedderChange};
use crate::store::{LongTermStore, Storage};
use rustc_hash::FxHashMap;

/// Everything one store holds, shared by the clones of its [`Memory`](crate::Memory) handle.
#[derive(Debug)]
pub(crate) struct State {
    pub config: MemoryConfig,
    pub clock: Arc<dyn Clock>,
    pub embedder: Arc<dyn Embedder>,
    pub stm: Box<dyn ShortTermStore>,
    pub ltm: Box<dyn LongTermStore>,
    pub cache: QueryCache,
    pub scorer: ImportanceScorer,
    /// Vectors made for short-term entries appended without one (see [`State::vector_of`]).
    lazy_vectors: LazyVectors,
}

/// Bytes of vectors [`State::vector_of`] keeps: about 21,000 vectors of 384 dimensions.
const LAZY_VECTOR_BYTES: u64 = 32 << 20;

/// The vectors [`State::vector_of`] made, by entry id (ids are never reused and an entry's text
/// never changes), weighed by their bytes.
type LazyVectors = quick_cache::sync::Cache<EntryId, Arc<[f32]>, VectorBytes>;

#[derive(Clone, Debug)]
struct VectorBytes;

impl quick_cache::Weighter<EntryId, Arc<[f32]>> for VectorBytes {
    fn weight(&self, _: &EntryId, v: &Arc<[f32]>) -> u64 {
        (v.len() * std::mem::size_of::<f32>()) as u64 + 64
    }
}

impl State {
    /// Opens the tiers `storage` and `short_term` name. The configuration and the embedder are
    /// checked by the caller; the long-term store checks that its vectors are the embedder's
    /// and, where they are not, does what `on_embedder_change` says.
    pub fn open(
        storage: &Storage,
        short_term: &ShortTermStorage,
        config: MemoryConfig,
        clock: Arc<dyn Clock>,
        embedder: Arc<dyn Embedder>,
        on_embedder_change: OnEmbedderChange,
    ) -> Result<State> {
        let check = EmbedderCheck {
            embedder: embedder.clone(),
            dim: config.embedding_dim,
            id: embedder.id(),
            on_change: on_embedder_change,
        };
        let ltm: Box<dyn LongTermStore> = match storage {
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => Box::new(crate::store::postgres::PostgresStore::open(
                pg, &config, &check,
            )?),
            _ => Box::new(EmbeddedStore::open(storage, &config, &check)?),
        };
        let stm: Box<dyn ShortTermStore> = match short_term {
            ShortTermStorage::Ram => Box::new(RamShortTerm::new(
                config.stm_shards,
                config.stm_capacity,
                config.stm_ttl,
            )),
            #[cfg(feature = "redis")]
            ShortTermStorage::Redis(redis) => Box::new(crate::stm::redis::RedisShortTerm::open(
                redis,
                config.stm_capacity,
                config.stm_ttl,
            )?),
        };
        let vector_bytes = (config.embedding_dim * std::mem::size_of::<f32>() + 64) as u64;
        Ok(State {
            lazy_vectors: LazyVectors::with_weighter(
                usize::try_from(LAZY_VECTOR_BYTES / vector_bytes)
                    .unwrap_or(1)
                    .max(1),
                LAZY_VECTOR_BYTES,
                VectorBytes,
            ),
            scorer: ImportanceScorer::new(config.consolidation.clone())?,
            cache: QueryCache::new(config.search.cache_capacity, config.search.cache_ttl),
            config,
            clock,
            embedder,
            stm,
            ltm,
        })
    }

    /// What other handles may have changed since: the generations of the shared tiers a query
    /// over `tiers` reads (`None` for a tier only this handle writes). Read before the answer is
    /// computed, so that a cached answer is never served after another instance's write (see
    /// `cache.rs`).
    pub fn shared_generation(&self, agent: &str, tiers: Tiers) -> Result<[Option<u64>; 2]> {
        let ltm = if tiers != Tiers::ShortTerm {
            self.ltm.generation(agent)?
        } else {
            None
        };
        let stm = if tiers != Tiers::LongTerm {
            self.stm.generation(agent)?
        } else {
            None
        };
        Ok([ltm, stm])
    }

    /// The store's embedding of `text`, or `None` when it has no words to embed.
    pub fn embed(&self, text: &str) -> Option<Vec<f32>> {
        checked(self.embedder.embed(text), self.config.embedding_dim)
    }

    /// [`embed`](Self::embed) of several texts at once (one batch for a model that computes
    /// batches faster than texts one by one).
    pub fn embed_batch(&self, texts: &[&str]) -> Vec<Option<Vec<f32>>> {
        checked_vectors(self.embedder.as_ref(), self.config.embedding_dim, texts)
    }

    /// The vector of `entry`: its own, or, for a short-term entry appended without one (appends
    /// do not embed, to stay cheap), the store's embedding of its text, made once and kept
    /// (up to [`LAZY_VECTOR_BYTES`], the least used going first) for the next search and
    /// consolidation, which would otherwise embed every such entry again each time: with a
    /// model embedder, milliseconds per entry per search.
    pub fn vector_of(&self, entry: &MemoryEntry) -> Option<Arc<[f32]>> {
        if let Some(v) = &entry.embedding {
            return Some(v.clone());
        }
        if let Some(v) = self.lazy_vectors.get(&entry.id) {
            return Some(v);
        }
        let v: Arc<[f32]> = self.embed(&entry.content)?.into();
        self.lazy_vectors.insert(entry.id, v.clone());
        Some(v)
    }

    /// Makes, in one batch, the vectors [`State::vector_of`] would make one by one for
    /// `entries` (a chunk of a consolidation's candidates), keeps them as it does, and returns
    /// them (a chunk may hold more than are kept).
    pub fn prepare_vectors<'a>(
        &self,
        entries: impl Iterator<Item = &'a MemoryEntry>,
    ) -> FxHashMap<EntryId, Arc<[f32]>> {
        let missing: Vec<&MemoryEntry> = entries
            .filter(|e| e.embedding.is_none() && self.lazy_vectors.get(&e.id).is_none())
            .collect();
        if missing.is_empty() {
            return FxHashMap::default();
        }
        let texts: Vec<&str> = missing.iter().map(|e| e.content.as_str()).collect();
        let mut made = FxHashMap::default();
        for (e, v) in missing.iter().zip(self.embed_batch(&texts)) {
            if let Some(v) = v {
                let v: Arc<[f32]> = v.into();
                self.lazy_vectors.insert(e.id, v.clone());
                made.insert(e.id, v);
            }
        }
        made
    }
}
