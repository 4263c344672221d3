//! Configuration of a store, with the defaults a new user gets.

use std::time::Duration;

use crate::entry::EntryLimits;
use crate::error::{Error, Result};
use crate::index::fusion::Fusion;
use crate::index::keyword::Bm25Params;
use crate::index::vector::{HnswParams, Quantization};
use crate::query::QueryLimits;

/// Default candidates per signal of a hybrid search (see [`SearchConfig::candidates`]).
pub const DEFAULT_CANDIDATES: usize = 50;

/// Weight of the vector signal when the caller passed the query vector
/// ([`SearchQuery::with_vector`](crate::SearchQuery::with_vector)): vectors from the caller's own
/// model are weighted as a sentence embedder's.
pub const CALLER_VECTOR_WEIGHT: f32 = 0.5;

/// The deepest metadata nesting a store may accept (serde_json reads up to 128 levels).
pub const MAX_METADATA_DEPTH: usize = 100;

/// How hard a committed long-term write is held.
///
/// Both modes use SQLite's write-ahead log. See `ltm.rs` for the pragmas each sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL`: a committed write survives a crash of the process (it is in the WAL,
    /// which the OS holds), but the last commits may be lost if the machine loses power.
    #[default]
    ProcessCrash,
    /// `synchronous=FULL`: every commit fsyncs the WAL; it survives power loss, at the cost of one
    /// fsync per commit.
    PowerLoss,
}

/// Weights of the four parts of an entry's importance score. They need not sum to 1; the score is
/// divided by their sum. Each must be finite and non-negative, and their sum (in f32) a normal
/// positive number: not zero, not so small that it is subnormal (below `f32::MIN_POSITIVE`,
/// about 1.2e-38), and not so large that it overflows to infinity (`f32::MAX` twice does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreWeights {
    /// Explicit importance given by the caller ("reward").
    pub importance: f32,
    /// How often the entry was retrieved.
    pub frequency: f32,
    /// How recently it was created or accessed (exponential decay).
    pub recency: f32,
    /// How unlike it is to what long-term memory already holds ("surprise").
    pub novelty: f32,
}

impl ScoreWeights {
    /// Checks the weights as [`MemoryConfig::validate`] does (see [`ScoreWeights`]).
    pub fn validate(&self) -> Result<()> {
        let parts = [self.importance, self.frequency, self.recency, self.novelty];
        if parts.iter().any(|x| !x.is_finite() || *x < 0.0)
            || !parts.iter().sum::<f32>().is_normal()
        {
            return Err(Error::InvalidConfig(format!(
                "score weights {self:?} must be finite and non-negative, with a sum that is neither zero, subnormal (below {:e}) nor infinite",
                f32::MIN_POSITIVE
            )));
        }
        Ok(())
    }
}

impl Default for ScoreWeights {
    /// AgentMemory's split: reward 0.4, retrieval frequency 0.3, recency 0.2, surprise 0.1.
    fn default() -> Self {
        ScoreWeights {
            importance: 0.4,
            frequency: 0.3,
            recency: 0.2,
            novelty: 0.1,
        }
    }
}

/// How entries are scored and consolidated from short-term into long-term memory.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsolidationConfig {
    pub weights: ScoreWeights,
    /// Recency halves every `recency_half_life` since the last access.
    pub recency_half_life: Duration,
    /// Access count at which the frequency part reaches 1 (it grows logarithmically up to it).
    pub frequency_saturation: u32,
    /// Entries scoring at or above this move to long-term memory.
    pub threshold: f32,
    /// An entry whose cosine similarity to something already in long-term memory is at or above
    /// this is a near-duplicate and is not stored again. In (0, 1]: at 0 or below, every entry
    /// pointing the same way as anything stored (or merely orthogonal to it) would be a
    /// "duplicate", and nothing new would be kept.
    pub duplicate_similarity: f32,
}

impl ConsolidationConfig {
    /// Checks that every value is in its range (as [`MemoryConfig::validate`] does).
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidConfig(msg));
        self.weights.validate()?;
        if self.recency_half_life.is_zero() {
            return bad("recency_half_life must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return bad(format!(
                "consolidation threshold {} is outside [0, 1]",
                self.threshold
            ));
        }
        if !(self.duplicate_similarity > 0.0 && self.duplicate_similarity <= 1.0) {
            return bad(format!(
                "duplicate_similarity {} is outside (0, 1]: at 0 or below everything is a duplicate",
                self.duplicate_similarity
            ));
        }
        Ok(())
    }
}

impl Default for ConsolidationConfig {
    fn default() -> Self {
        ConsolidationConfig {
            weights: ScoreWeights::default(),
            recency_half_life: Duration::from_secs(24 * 3600),
            frequency_saturation: 10,
            threshold: 0.5,
            duplicate_similarity: 0.95,
        }
    }
}

/// How retrieval works: ranking parameters, the vector index, and the query cache.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// BM25 parameters of keyword search (k1 = 1.2, b = 0.75) and its analyzer (English stems).
    pub bm25: Bm25Params,
    /// How hybrid search combines the keyword and vector signals (see [`Fusion`]).
    pub fusion: Fusion,
    /// Weight in [0, 1] of the vector signal in hybrid search (the keyword signal gets the rest);
    /// `None` takes the embedder's [`Embedder::vector_weight`](crate::Embedder::vector_weight),
    /// or [`CALLER_VECTOR_WEIGHT`] for a query whose caller passed its own vector.
    pub vector_weight: Option<f32>,
    /// Whether hybrid search moves the vector weight, per query, toward the signal whose best
    /// candidate stands out more from its ranking (see
    /// [`query_weight`](crate::index::fusion::query_weight)); `false` uses the weight as it is.
    pub weight_by_standout: bool,
    /// Candidates each signal contributes to a hybrid search, whatever `k` (at least `k`): deep
    /// enough that an entry ranked well by one signal only can still reach the top `k`.
    pub candidates: usize,
    /// The HNSW graph of approximate vector search.
    pub hnsw: HnswParams,
    /// How long-term vectors are held in RAM: f32, halves (2x smaller, similarities within
    /// about 1e-4), or int8 codes (4x smaller, some recall lost).
    pub quantization: Quantization,
    /// Whether the HNSW graph is built by comparing int8 codes kept beside an f32 or half
    /// arena (`dim + 4` more bytes per vector: 388 at 384 dimensions) instead of the arena's
    /// rows. Linking is bound by loading the rows of the nodes it visits, so it keeps up with
    /// a faster ingest (at 20,000 entries/s beside 100 queries/s on 2 cores, a median largest
    /// backlog of 5,500-11,400 unlinked vectors against 19,500-24,900 without the codes:
    /// docs/measurements.md); searches still score the arena's numbers. Index snapshots leave
    /// the codes out: after a reopen the linker makes them again in the background (from the
    /// halves, a chunk at a time) and links with the rows until then.
    /// Ignored with int8 quantization.
    pub link_with_codes: bool,
    /// Most vectors of one agent a long-term write may leave outside the HNSW graph. Past it,
    /// the write links (with every core, at the writer's priority) until the agent is back at
    /// the bound before it returns: sustained ingest then runs at the speed of linking, and an
    /// ANN query never scans more than this many vectors exactly. `None` (the default): writes
    /// never wait; the background linker (at low priority) catches up, and until it has, ANN
    /// queries scan the backlog exactly, slower the longer it grows. (The embedded store's
    /// graph; PostgreSQL's pgvector index is updated inside each commit.)
    pub max_unlinked: Option<usize>,
    /// How long a cached answer lives.
    pub cache_ttl: Duration,
    /// Most answers kept in the query cache (0 turns the cache off).
    pub cache_capacity: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            bm25: Bm25Params::default(),
            fusion: Fusion::MinMax,
            vector_weight: None,
            weight_by_standout: true,
            candidates: DEFAULT_CANDIDATES,
            hnsw: HnswParams::default(),
            quantization: Quantization::F16,
            link_with_codes: true,
            max_unlinked: None,
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 10_000,
        }
    }
}

/// Configuration of a [`Memory`](crate::Memory) store.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryConfig {
    /// Dimension of every embedding in the store.
    pub embedding_dim: usize,
    /// Entries kept in each session's short-term window.
    pub stm_capacity: usize,
    /// A session idle longer than this expires from short-term memory. At least one microsecond
    /// (the clock's resolution): with zero, every window would expire as soon as the clock moves.
    pub stm_ttl: Duration,
    /// Number of independently locked shards of short-term memory (rounded up to a power of two).
    pub stm_shards: usize,
    /// Largest entry text accepted, in bytes (default 64 KiB); larger is `Error::ContentTooLarge`.
    pub max_content_bytes: usize,
    /// Largest entry metadata accepted, as JSON text, in bytes (default 64 KiB); larger is
    /// `Error::MetadataTooLarge`.
    pub max_metadata_bytes: usize,
    /// Deepest nesting of entry metadata (and of a query's metadata filter value) accepted
    /// (default 32; at most 100, so that every stored value reads back); deeper is
    /// `Error::MetadataTooDeep`.
    pub max_metadata_depth: usize,
    /// Largest query text accepted, in bytes (default 64 KiB); larger is `Error::QueryTooLarge`.
    pub max_query_bytes: usize,
    /// How hard a committed long-term write is held.
    pub durability: Durability,
    /// Scoring and consolidation.
    pub consolidation: ConsolidationConfig,
    /// Retrieval.
    pub search: SearchConfig,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            embedding_dim: 384,
            stm_capacity: 20,
            stm_ttl: Duration::from_secs(24 * 3600),
            stm_shards: 64,
            max_content_bytes: 64 * 1024,
            max_metadata_bytes: 64 * 1024,
            max_metadata_depth: 32,
            max_query_bytes: 64 * 1024,
            durability: Durability::default(),
            consolidation: ConsolidationConfig::default(),
            search: SearchConfig::default(),
        }
    }
}

impl MemoryConfig {
    /// Checks that every value is in its range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidConfig(msg));
        if self.embedding_dim == 0 || self.embedding_dim > 65_536 {
            return bad(format!(
                "embedding_dim {} is not in 1..=65536",
                self.embedding_dim
            ));
        }
        if self.stm_capacity == 0 {
            return bad("stm_capacity must be at least 1".into());
        }
        if self.stm_ttl < Duration::from_micros(1) {
            return bad(format!(
                "stm_ttl {:?} must be at least 1 microsecond (the clock's resolution)",
                self.stm_ttl
            ));
        }
        if self.stm_shards == 0 || self.stm_shards > 1 << 16 {
            return bad(format!(
                "stm_shards {} is not in 1..=65536",
                self.stm_shards
            ));
        }
        if self.max_content_bytes == 0 {
            return bad("max_content_bytes must be at least 1".into());
        }
        if self.max_query_bytes == 0 {
            return bad("max_query_bytes must be at least 1".into());
        }
        // serde_json refuses to read JSON nested deeper than 128 levels: a deeper limit would let
        // in metadata that cannot be read back.
        if self.max_metadata_depth > MAX_METADATA_DEPTH {
            return bad(format!(
                "max_metadata_depth {} is over {MAX_METADATA_DEPTH}: deeper metadata could not be read back",
                self.max_metadata_depth
            ));
        }
        self.consolidation.validate()?;
        let s = &self.search;
        s.bm25.validate()?;
        if let Fusion::Rrf { k } = s.fusion {
            if !k.is_finite() || k < 0.0 {
                return bad(format!("RRF constant {k} must be finite and non-negative"));
            }
        }
        if let Some(w) = s.vector_weight {
            if !(0.0..=1.0).contains(&w) {
                return bad(format!("vector_weight {w} is outside [0, 1]"));
            }
        }
        if s.candidates == 0 {
            return bad("candidates must be at least 1".into());
        }
        if s.cache_ttl.is_zero() && s.cache_capacity > 0 {
            return bad(
                "cache_ttl must be positive (set cache_capacity to 0 to turn the cache off)".into(),
            );
        }
        self.vector_index_config().validate()
    }

    /// What a new entry is checked against.
    pub(crate) fn entry_limits(&self) -> EntryLimits {
        EntryLimits {
            dimension: self.embedding_dim,
            max_content_bytes: self.max_content_bytes,
            max_metadata_bytes: self.max_metadata_bytes,
            max_metadata_depth: self.max_metadata_depth,
        }
    }

    /// What a query is checked against.
    pub(crate) fn query_limits(&self) -> QueryLimits {
        QueryLimits {
            dimension: self.embedding_dim,
            max_query_bytes: self.max_query_bytes,
            max_metadata_depth: self.max_metadata_depth,
        }
    }

    /// The configuration of each agent's vector index.
    pub(crate) fn vector_index_config(&self) -> crate::index::vector::VectorIndexConfig {
        crate::index::vector::VectorIndexConfig {
            dim: self.embedding_dim,
            quantization: self.search.quantization,
            hnsw: self.search.hnsw,
            link_with_codes: self.search.link_with_codes,
            ..crate::index::vector::VectorIndexConfig::new(self.embedding_dim)
        }
    }
}
