//! Retrieval across tiers: the query and its filters, and how one query runs. Keyword (BM25) and
//! vector rankings of long-term and short-term memory are fused by reciprocal rank, optionally
//! re-weighted by recency and importance, deduplicated by id, and only the top k are fetched from
//! SQLite.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::entry::{self, EntryId, MemoryEntry, Role, Tier};
use crate::error::{Error, Result};
use crate::fusion::{self, FusedHit, FusionWeights};
use crate::index::{dot, DocFilter};
use crate::memory::Inner;
use crate::stages;
use crate::topk::sort_ranking;

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
///     .k(5)
///     .mode(SearchMode::Hybrid)
///     .tiers(Tiers::Both)
///     .role(Role::User)
///     .metadata("topic", "travel");
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

    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    pub fn mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn tiers(mut self, tiers: Tiers) -> Self {
        self.tiers = tiers;
        self
    }

    pub fn vector(mut self, v: Vec<f32>) -> Self {
        self.vector = Some(v);
        self
    }

    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    pub fn created_between(mut self, since: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata = Some((key.into(), value.into()));
        self
    }

    pub fn reweighting(mut self, w: FusionWeights) -> Self {
        self.reweighting = w;
        self
    }

    /// Bypasses the query cache.
    pub fn no_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }

    fn uses_keywords(&self) -> bool {
        matches!(self.mode, SearchMode::Keyword | SearchMode::Hybrid)
    }

    fn uses_vectors(&self) -> bool {
        !matches!(self.mode, SearchMode::Keyword)
    }

    fn doc_filter(&self) -> DocFilter {
        DocFilter {
            session: self.session.clone(),
            role: self.role,
            since: self.since,
            until: self.until,
        }
    }

    fn check(&self, dimension: usize) -> Result<()> {
        entry::validate_id("agent_id", &self.agent_id)?;
        self.reweighting
            .validate()
            .map_err(|e| Error::InvalidQuery(e.to_string()))?;
        if let Some(v) = &self.vector {
            entry::check_embedding(v, dimension)?;
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

/// One ranked list of candidates (id, raw score), best first.
type Ranking = Vec<(EntryId, f32)>;

/// Merges the long-term and short-term rankings of one signal into one, alternating by rank
/// (the tiers are peers: raw BM25 scores of two corpora are not comparable), long-term first at
/// equal rank, keeping each id's best position.
fn merge_tiers(ltm: Ranking, stm: &[(EntryId, f32)]) -> Ranking {
    if stm.is_empty() {
        return ltm;
    }
    if ltm.is_empty() {
        return stm.to_vec();
    }
    let mut seen = rustc_hash::FxHashSet::default();
    let mut out = Vec::with_capacity(ltm.len() + stm.len());
    let (mut a, mut b) = (ltm.into_iter(), stm.iter().copied());
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            return out;
        }
        for hit in [x, y].into_iter().flatten() {
            if seen.insert(hit.0) {
                out.push(hit);
            }
        }
    }
}

/// Short-term entries of the agent that pass the filter, copied out of their windows.
fn short_term_candidates(inner: &Inner, q: &SearchQuery, filter: &DocFilter) -> Vec<MemoryEntry> {
    let mut out = Vec::new();
    let now = inner.clock.now();
    inner.stm.for_each_of_agent(&q.agent_id, now, |e| {
        if filter.matches(&e.session_id, e.role, e.created_at) && metadata_matches(q, e) {
            out.push(e.clone());
        }
    });
    // One copy per id (an entry may sit in a window and in a hand-off list at once, briefly).
    out.sort_by_key(|e| e.id);
    out.dedup_by_key(|e| e.id);
    out
}

fn metadata_matches(q: &SearchQuery, e: &MemoryEntry) -> bool {
    match &q.metadata {
        None => true,
        Some((key, value)) => e.metadata.get(key) == Some(value),
    }
}

/// Runs a query (the cache is handled by the caller).
pub(crate) fn run(inner: &Inner, q: &SearchQuery) -> Result<Vec<SearchHit>> {
    let dim = inner.config.embedding_dim;
    q.check(dim)?;
    if q.k == 0 {
        return Ok(Vec::new());
    }
    let query_vector: Option<Vec<f32>> = if q.uses_vectors() {
        let _span = tracing::debug_span!(stages::EMBED).entered();
        match &q.vector {
            Some(v) => {
                let mut v = v.clone();
                entry::normalize(&mut v)?;
                Some(v)
            }
            None => inner.embed(&q.text),
        }
    } else {
        None
    };
    let filter = q.doc_filter();
    let search_ltm = q.tiers != Tiers::ShortTerm;
    let search_stm = q.tiers != Tiers::LongTerm;
    // With a metadata filter, candidates are checked after the fetch; ask for more of them.
    let mut want = if q.metadata.is_some() {
        q.k.saturating_mul(4).max(64)
    } else {
        q.k
    };

    let stm = if search_stm {
        let _span = tracing::debug_span!("stm").entered();
        short_term_candidates(inner, q, &filter)
    } else {
        Vec::new()
    };
    // Short-term candidates do not change between the passes of the loop below, so they are
    // ranked once, in full, and each pass takes its top `want`.
    let stm_keyword: Ranking = if q.uses_keywords() && !stm.is_empty() {
        let _span = tracing::debug_span!(stages::KEYWORD).entered();
        let docs: Vec<(EntryId, &str)> = stm.iter().map(|e| (e.id, e.content.as_str())).collect();
        crate::keyword::rank_documents(&q.text, &docs, inner.config.search.bm25, stm.len())?
    } else {
        Vec::new()
    };
    let stm_vector: Ranking = match query_vector.as_deref() {
        Some(qv) if !stm.is_empty() => {
            let _span = tracing::debug_span!(stages::VECTOR).entered();
            rank_short_term_vectors(inner, &stm, qv)
        }
        _ => Vec::new(),
    };
    let top = |r: &Ranking, want: usize| r.len().min(want);

    loop {
        let mut ltm_exhausted = true;
        let mut keyword = Ranking::new();
        if q.uses_keywords() {
            let _span = tracing::debug_span!(stages::KEYWORD).entered();
            let ltm = if search_ltm {
                let r = inner.indexes.keyword(&q.agent_id, &q.text, want, &filter);
                ltm_exhausted &= r.len() < want;
                r
            } else {
                Vec::new()
            };
            keyword = merge_tiers(ltm, &stm_keyword[..top(&stm_keyword, want)]);
        }
        let mut vector = Ranking::new();
        if let Some(qv) = query_vector.as_deref() {
            let _span = tracing::debug_span!(stages::VECTOR).entered();
            let ltm = if search_ltm {
                let exact = q.mode == SearchMode::ExactVector;
                // Keyword candidates get their exact similarity too (see `Indexes::vector`).
                let keyword_ids: Vec<EntryId> = keyword.iter().map(|h| h.0).collect();
                let r =
                    inner
                        .indexes
                        .vector(&q.agent_id, qv, want, exact, &filter, &keyword_ids)?;
                ltm_exhausted &= r.len() < want;
                r
            } else {
                Vec::new()
            };
            vector = merge_tiers(ltm, &stm_vector[..top(&stm_vector, want)]);
        }

        let fused = {
            let _span = tracing::debug_span!(stages::FUSE).entered();
            fusion::fuse_hybrid(&keyword, &vector, inner.config.search.rrf_k)?
        };
        let hits = {
            let _span = tracing::debug_span!(stages::FETCH).entered();
            fetch(inner, q, &stm, &fused)?
        };
        // Enough hits, or nothing more to ask the indexes for: done.
        if hits.len() >= q.k || q.metadata.is_none() || ltm_exhausted {
            let mut hits = rerank(q, hits)?;
            hits.truncate(q.k);
            record_access(inner, q, &hits);
            return Ok(hits);
        }
        want = want.saturating_mul(4);
    }
}

/// Cosine ranking of all short-term entries; entries without an embedding are embedded on the fly.
fn rank_short_term_vectors(inner: &Inner, stm: &[MemoryEntry], qv: &[f32]) -> Ranking {
    let mut r: Ranking = stm
        .iter()
        .filter_map(|e| {
            let sim = match &e.embedding {
                Some(v) => dot(v, qv),
                None => dot(&inner.embed(&e.content)?, qv),
            };
            Some((e.id, sim))
        })
        .collect();
    sort_ranking(&mut r);
    r
}

/// Turns fused candidates into hits with their entries: short-term ones from the copies taken,
/// long-term ones from SQLite. Candidates failing the metadata filter are left out.
fn fetch(
    inner: &Inner,
    q: &SearchQuery,
    stm: &[MemoryEntry],
    fused: &[FusedHit],
) -> Result<Vec<SearchHit>> {
    // Re-weighting can reorder, so it needs more than the top k of the fused ranking.
    let all = q.reweighting != RELEVANCE_ONLY || q.metadata.is_some();
    let top = &fused[..if all {
        fused.len()
    } else {
        fused.len().min(q.k)
    }];
    let stm_by_id: FxHashMap<EntryId, &MemoryEntry> = stm.iter().map(|e| (e.id, e)).collect();
    let ltm_ids: Vec<EntryId> = top
        .iter()
        .map(|h| h.id)
        .filter(|id| !stm_by_id.contains_key(id))
        .collect();
    let mut ltm: FxHashMap<EntryId, MemoryEntry> = inner
        .ltm
        .get_many(&q.agent_id, &ltm_ids)?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let now = inner.clock.now();
    let mut hits = Vec::with_capacity(top.len());
    for h in top {
        let entry = match ltm.remove(&h.id) {
            Some(e) => e,
            None => match stm_by_id.get(&h.id) {
                Some(e) => (*e).clone(),
                None => continue, // forgotten between the index read and the fetch
            },
        };
        if !metadata_matches(q, &entry) {
            continue;
        }
        let last = entry.last_accessed_at.max(entry.created_at);
        let components = ScoreComponents {
            keyword: h.keyword.map(|k| k.0),
            keyword_rank: h.keyword.map(|k| k.1),
            vector: h.vector.map(|v| v.0),
            vector_rank: h.vector.map(|v| v.1),
            fused: h.fused,
            recency: inner.scorer.recency(last, now),
            importance: entry.importance,
        };
        hits.push(SearchHit {
            entry: Arc::new(entry),
            score: h.fused,
            components,
        });
    }
    Ok(hits)
}

/// Applies the query's re-weighting (a no-op for relevance only) and orders the hits.
fn rerank(q: &SearchQuery, hits: Vec<SearchHit>) -> Result<Vec<SearchHit>> {
    if q.reweighting == RELEVANCE_ONLY {
        return Ok(hits); // already in fused order
    }
    let fused: Vec<FusedHit> = hits
        .iter()
        .map(|h| FusedHit {
            id: h.entry.id,
            keyword: h.components.keyword.zip(h.components.keyword_rank),
            vector: h.components.vector.zip(h.components.vector_rank),
            fused: h.components.fused,
        })
        .collect();
    let signals: FxHashMap<EntryId, (f32, f32)> = hits
        .iter()
        .map(|h| (h.entry.id, (h.components.recency, h.components.importance)))
        .collect();
    let order = fusion::rerank(&fused, &q.reweighting, |id| {
        signals.get(&id).copied().unwrap_or((0.0, 0.0))
    })?;
    let mut by_id: FxHashMap<EntryId, SearchHit> =
        hits.into_iter().map(|h| (h.entry.id, h)).collect();
    Ok(order
        .into_iter()
        .filter_map(|r| {
            let mut hit = by_id.remove(&r.id)?;
            hit.score = r.score;
            Some(hit)
        })
        .collect())
}

/// Records that the hits were retrieved, without making this reader wait on the writer.
fn record_access(inner: &Inner, q: &SearchQuery, hits: &[SearchHit]) {
    let mut stm_ids: Vec<(Arc<str>, EntryId)> = Vec::new();
    let mut ltm_ids = Vec::new();
    for h in hits {
        match h.entry.tier {
            Tier::ShortTerm => stm_ids.push((h.entry.session_id.clone(), h.entry.id)),
            Tier::LongTerm => ltm_ids.push(h.entry.id),
        }
    }
    if !stm_ids.is_empty() {
        inner
            .stm
            .record_access(&q.agent_id, &stm_ids, inner.clock.now());
    }
    inner.record_ltm_access(ltm_ids);
}
