//! The query model: what a search asks for ([`SearchQuery`], [`SearchMode`], [`Tiers`], the
//! filters) and what it returns ([`SearchHit`], [`ScoreComponents`]). Plain data: this module
//! imports nothing above the entry model; `search.rs` runs queries, the indexes answer parts.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::entry::{self, MemoryEntry, Role};
use crate::error::{Error, Result};

/// Why a hit ranked where it did: each part that went into its score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreComponents {
    /// BM25 score, when the hit matched the query's keywords.
    pub keyword: Option<f32>,
    /// 1-based rank in the keyword ranking.
    pub keyword_rank: Option<u32>,
    /// Cosine similarity to the query vector, when vector search ran.
    pub vector: Option<f32>,
    /// 1-based rank in the vector ranking.
    pub vector_rank: Option<u32>,
    /// Reciprocal-rank-fusion score of the ranks above.
    pub fused: f32,
    /// Recency in [0, 1] (exponential decay since the last access).
    pub recency: f32,
    /// The entry's explicit importance in [0, 1].
    pub importance: f32,
}

/// One retrieved memory with its final score and the parts of that score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The entry, shared (with the query cache, among others): cloning a hit copies no text.
    pub entry: Arc<MemoryEntry>,
    /// The score hits are ranked by (higher is better).
    pub score: f32,
    pub components: ScoreComponents,
}

/// Which rankings a query uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SearchMode {
    /// BM25 over the words of the query.
    Keyword,
    /// Approximate nearest neighbours (HNSW) of the query vector.
    Vector,
    /// Exact nearest neighbours: a flat scan over every vector.
    ExactVector,
    /// Keyword and approximate vector rankings fused by reciprocal rank.
    #[default]
    Hybrid,
}

/// Which tiers a query searches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tiers {
    ShortTerm,
    LongTerm,
    #[default]
    Both,
}

/// The limits a query is checked against (from [`MemoryConfig`](crate::MemoryConfig)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueryLimits {
    pub dimension: usize,
    pub max_query_bytes: usize,
    pub max_metadata_depth: usize,
}

/// Relevance alone: the fused ranking is kept as it is. Set recency and importance weights to
/// re-rank as in Generative Agents (see [`FusionWeights`]).
pub const RELEVANCE_ONLY: FusionWeights = FusionWeights {
    relevance: 1.0,
    recency: 0.0,
    importance: 0.0,
};

/// What to search for, where, and how many.
///
/// ```
/// use memory_core::{Role, SearchMode, SearchQuery, Tiers};
///
/// let q = SearchQuery::new("agent-1", "where did I move?")
///     .with_k(5)
///     .with_mode(SearchMode::Hybrid)
///     .with_tiers(Tiers::Both)
///     .with_role(Role::User)
///     .with_metadata("topic", "travel");
/// assert_eq!(q.k, 5);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchQuery {
    pub agent_id: String,
    /// Query text (keywords, and the source of the query vector when none is given).
    pub text: String,
    /// A precomputed query embedding, of the store's dimension.
    pub vector: Option<Vec<f32>>,
    /// How many hits at most.
    pub k: usize,
    pub mode: SearchMode,
    pub tiers: Tiers,
    pub session: Option<String>,
    pub role: Option<Role>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Metadata key = value (the value compared as JSON).
    pub metadata: Option<(String, serde_json::Value)>,
    /// Re-weighting of fused relevance by recency and importance; relevance only by default.
    pub reweighting: FusionWeights,
    /// Whether the query cache may answer (and keep) this query.
    pub use_cache: bool,
}

impl SearchQuery {
    /// A hybrid query over both tiers for the 10 best hits, answered from the cache when it can be.
    pub fn new(agent_id: impl Into<String>, text: impl Into<String>) -> Self {
        SearchQuery {
            agent_id: agent_id.into(),
            text: text.into(),
            vector: None,
            k: 10,
            mode: SearchMode::default(),
            tiers: Tiers::default(),
            session: None,
            role: None,
            since: None,
            until: None,
            metadata: None,
            reweighting: RELEVANCE_ONLY,
            use_cache: true,
        }
    }

    pub fn with_k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    pub fn with_mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn with_tiers(mut self, tiers: Tiers) -> Self {
        self.tiers = tiers;
        self
    }

    pub fn with_vector(mut self, v: Vec<f32>) -> Self {
        self.vector = Some(v);
        self
    }

    pub fn with_session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    pub fn with_role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    pub fn with_created_between(
        mut self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    pub fn with_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata = Some((key.into(), value.into()));
        self
    }

    pub fn with_reweighting(mut self, w: FusionWeights) -> Self {
        self.reweighting = w;
        self
    }

    /// Bypasses the query cache: the query is answered by a search, and its answer not kept.
    pub fn without_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }

    pub(crate) fn uses_keywords(&self) -> bool {
        matches!(self.mode, SearchMode::Keyword | SearchMode::Hybrid)
    }

    pub(crate) fn uses_vectors(&self) -> bool {
        !matches!(self.mode, SearchMode::Keyword)
    }

    pub(crate) fn doc_filter(&self) -> DocFilter {
        DocFilter {
            session: self.session.clone(),
            role: self.role,
            since: self.since,
            until: self.until,
        }
    }

    pub(crate) fn check(&self, limits: &QueryLimits) -> Result<()> {
        entry::validate_id("agent_id", &self.agent_id)?;
        if self.text.len() > limits.max_query_bytes {
            return Err(Error::QueryTooLarge {
                len: self.text.len(),
                limit: limits.max_query_bytes,
            });
        }
        if let Some((_, value)) = &self.metadata {
            if entry::json_depth(value, limits.max_metadata_depth) > limits.max_metadata_depth {
                return Err(Error::MetadataTooDeep {
                    limit: limits.max_metadata_depth,
                });
            }
        }
        self.reweighting
            .validate()
            .map_err(|e| Error::InvalidQuery(e.to_string()))?;
        if let Some(v) = &self.vector {
            entry::check_embedding(v, limits.dimension)?;
        }
        if self.text.trim().is_empty() && self.vector.is_none() {
            return Err(Error::InvalidQuery(
                "empty query: give text or a vector".into(),
            ));
        }
        if self.mode == SearchMode::Keyword && self.text.trim().is_empty() {
            return Err(Error::InvalidQuery(
                "keyword search needs query text".into(),
            ));
        }
        Ok(())
    }
}

/// Weights of the final score `relevance * w_rel + recency * w_rec + importance * w_imp`. Each
/// must be finite and non-negative, and their sum (in f32) a normal positive number: not zero,
/// not subnormal (below `f32::MIN_POSITIVE`), not infinite (`f32::MAX` twice overflows), so that
/// every score is a finite number that ranks.
///
/// The search re-ranks the best [`SearchConfig::candidates`](crate::SearchConfig) of the
/// relevance ranking (or `k`, if more) by it, in every mode: a hit is the top k by this score
/// among them, whatever `k`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusionWeights {
    pub relevance: f32,
    pub recency: f32,
    pub importance: f32,
}

impl Default for FusionWeights {
    /// Equal weights, as in Generative Agents.
    fn default() -> Self {
        FusionWeights {
            relevance: 1.0,
            recency: 1.0,
            importance: 1.0,
        }
    }
}

impl FusionWeights {
    /// Checks the weights are finite and non-negative, and their sum a normal positive number
    /// (see [`FusionWeights`]).
    pub fn validate(&self) -> Result<()> {
        let w = [self.relevance, self.recency, self.importance];
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) || !w.iter().sum::<f32>().is_normal() {
            return Err(Error::InvalidConfig(format!(
                "fusion weights {self:?} must be finite and non-negative, with a sum that is neither zero, subnormal (below {:e}) nor infinite",
                f32::MIN_POSITIVE
            )));
        }
        Ok(())
    }
}

/// The filters that can be checked in RAM, before anything is read from SQLite.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DocFilter {
    pub session: Option<String>,
    pub role: Option<Role>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl DocFilter {
    pub fn is_empty(&self) -> bool {
        *self == DocFilter::default()
    }

    pub fn matches(&self, session: &str, role: Role, created_at: Timestamp) -> bool {
        self.session.as_deref().is_none_or(|s| s == session)
            && self.role.is_none_or(|r| r == role)
            && self.since.is_none_or(|t| created_at >= t)
            && self.until.is_none_or(|t| created_at < t)
    }
}
