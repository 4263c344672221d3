//! The shared state of one store: its configuration, clock and embedder, the two tiers behind
//! their storage boundaries, the query cache and the scorer. Read by every operation; changed
//! only through the write path (`write.rs`).

use std::sync::Arc;

use crate::cache::QueryCache;
use crate::clock::Clock;
use crate::config::MemoryConfig;
use crate::embed::Embedder;
use crate::entry;
use crate::error::Result;
use crate::scoring::ImportanceScorer;
use crate::stm::ram::RamShortTerm;
use crate::stm::ShortTermStore;
use crate::store::embedded::EmbeddedStore;
use crate::store::{LongTermStore, Storage};

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
}

impl State {
    /// Opens the tiers `storage` names. The configuration and the embedder are checked by the
    /// caller.
    pub fn open(
        storage: &Storage,
        config: MemoryConfig,
        clock: Arc<dyn Clock>,
        embedder: Arc<dyn Embedder>,
    ) -> Result<State> {
        let ltm: Box<dyn LongTermStore> = Box::new(EmbeddedStore::open(storage, &config)?);
        let stm: Box<dyn ShortTermStore> = Box::new(RamShortTerm::new(
            config.stm_shards,
            config.stm_capacity,
            config.stm_ttl,
        ));
        Ok(State {
            scorer: ImportanceScorer::new(config.consolidation.clone()),
            cache: QueryCache::new(config.search.cache_capacity, config.search.cache_ttl),
            config,
            clock,
            embedder,
            stm,
            ltm,
        })
    }

    /// The store's embedding of `text`, or `None` when it has no words to embed.
    pub fn embed(&self, text: &str) -> Option<Vec<f32>> {
        self.checked(self.embedder.embed(text))
    }

    /// [`embed`](Self::embed) of several texts at once (one batch for a model that computes
    /// batches faster than texts one by one).
    pub fn embed_batch(&self, texts: &[&str]) -> Vec<Option<Vec<f32>>> {
        if texts.is_empty() {
            return Vec::new();
        }
        let vectors = self.embedder.embed_batch(texts);
        if vectors.len() != texts.len() {
            // A custom embedder that broke the contract: embed one by one instead.
            return texts.iter().map(|t| self.embed(t)).collect();
        }
        vectors.into_iter().map(|v| self.checked(v)).collect()
    }

    /// A custom embedder's vector gets the same checks as a caller's; a text with nothing to
    /// embed (all zeros) gets no vector.
    fn checked(&self, mut v: Vec<f32>) -> Option<Vec<f32>> {
        entry::check_embedding(&v, self.config.embedding_dim).ok()?;
        entry::normalize(&mut v).ok()?;
        Some(v)
    }
}
