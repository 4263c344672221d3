//! Retrieval across tiers: the query, its filters, and the hits it returns.

use serde::{Deserialize, Serialize};

use crate::entry::MemoryEntry;

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
    pub entry: MemoryEntry,
    /// The score hits are ranked by (higher is better).
    pub score: f32,
    pub components: ScoreComponents,
}
