//! How one query runs, across tiers (the query model is `query.rs`). Keyword (BM25) and vector
//! rankings of long-term memory (from the store) and of short-term windows are fused by
//! reciprocal rank, optionally re-weighted by recency and importance, deduplicated by id, and only
//! the top k are fetched from the store. Read-only: the caller records the retrievals.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::config::CALLER_VECTOR_WEIGHT;
use crate::entry::{EntryId, MemoryEntry};
use crate::error::Result;
use crate::index::fusion::{self, FusedHit, Fusion, MissingScores, Similarities};
use crate::index::topk::sort_ranking;
use crate::index::vector::kernel::dot;
use crate::query::{
    DocFilter, ScoreComponents, SearchHit, SearchMode, SearchQuery, Tiers, RELEVANCE_ONLY,
};
use crate::stages;
use crate::state::State;
use crate::store::Ranking;

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
fn short_term_candidates(
    state: &State,
    q: &SearchQuery,
    filter: &DocFilter,
) -> Result<Vec<MemoryEntry>> {
    let mut out = Vec::new();
    let now = state.clock.now();
    state.stm.for_each_of_agent(&q.agent_id, now, &mut |e| {
        if filter.matches(&e.session_id, e.role, e.created_at) && metadata_matches(q, e) {
            out.push(e.clone());
        }
    })?;
    // One copy per id (an entry may sit in a window and in a hand-off list at once, briefly).
    out.sort_by_key(|e| e.id);
    out.dedup_by_key(|e| e.id);
    Ok(out)
}

fn metadata_matches(q: &SearchQuery, e: &MemoryEntry) -> bool {
    match &q.metadata {
        None => true,
        Some((key, value)) => e.metadata.get(key) == Some(value),
    }
}

/// Runs a query the caller checked (`SearchQuery::check`; the cache is handled by the caller
/// too).
pub(crate) fn run(state: &State, q: &SearchQuery) -> Result<Vec<SearchHit>> {
    if q.k == 0 {
        return Ok(Vec::new());
    }
    let query_vector: Option<Vec<f32>> = if q.uses_vectors() {
        let _span = tracing::debug_span!(stages::EMBED).entered();
        match &q.vector {
            Some(v) => {
                let mut v = v.clone();
                crate::entry::normalize(&mut v)?;
                Some(v)
            }
            None => state.embed(&q.text),
        }
    } else {
        None
    };
    let filter = q.doc_filter();
    let search_ltm = q.tiers != Tiers::ShortTerm;
    let search_stm = q.tiers != Tiers::LongTerm;
    // Hybrid search takes `candidates` of each signal whatever `k`, so that an entry ranked well
    // by one signal only can still reach the top k; so does a re-weighted search in every mode,
    // so that an entry just below the relevance top k that recency or importance lifts can take
    // its place (the top k by the final score among that many). With a metadata filter,
    // candidates are checked after the fetch; ask for more of them.
    let depth = if q.mode == SearchMode::Hybrid || q.reweighting != RELEVANCE_ONLY {
        q.k.max(state.config.search.candidates)
    } else {
        q.k
    };
    let mut want = if q.metadata.is_some() {
        depth.saturating_mul(4).max(64)
    } else {
        depth
    };
    let weight = vector_weight(state, q);
    // Whether fusion reads the signals' scores (min-max) rather than their ranks.
    let min_max = query_vector.is_some()
        && state.config.search.fusion == Fusion::MinMax
        && q.mode == SearchMode::Hybrid;

    let stm = if search_stm {
        let _span = tracing::debug_span!(stages::STM).entered();
        short_term_candidates(state, q, &filter)?
    } else {
        Vec::new()
    };
    // Short-term candidates do not change between the passes of the loop below, so they are
    // ranked once, in full, and each pass takes its top `want`.
    let stm_keyword: Ranking = if q.uses_keywords() && !stm.is_empty() {
        let _span = tracing::debug_span!(stages::KEYWORD).entered();
        let docs: Vec<(EntryId, &str)> = stm.iter().map(|e| (e.id, e.content.as_str())).collect();
        crate::index::keyword::rank_documents(&q.text, &docs, state.config.search.bm25, stm.len())?
    } else {
        Vec::new()
    };
    let stm_vector: Ranking = match query_vector.as_deref() {
        Some(qv) if !stm.is_empty() => {
            let _span = tracing::debug_span!(stages::VECTOR).entered();
            rank_short_term_vectors(state, &stm, qv)
        }
        _ => Vec::new(),
    };
    let top = |r: &Ranking, want: usize| r.len().min(want);

    loop {
        let ltm = if search_ltm {
            long_term_candidates(state, q, query_vector.as_deref(), want, &filter)?
        } else {
            LongTerm::default()
        };
        let ltm_exhausted = ltm.exhausted(want);
        // What bounds the BM25 of a long-term entry the keyword ranking left out: none when
        // the ranking holds every entry with a query term (fewer than asked), else its lowest
        // score.
        let ltm_keyword_floor = (ltm.keyword.len() >= want)
            .then(|| ltm.keyword.last().map(|h| h.1))
            .flatten();
        let keyword = if q.uses_keywords() {
            merge_tiers(ltm.keyword, &stm_keyword[..top(&stm_keyword, want)])
        } else {
            Ranking::new()
        };
        let vector = if query_vector.is_some() {
            merge_tiers(ltm.vector, &stm_vector[..top(&stm_vector, want)])
        } else {
            Ranking::new()
        };
        // Score fusion needs each signal's score of the candidates the other ranking found and
        // its own left out; with no weight on the vectors (the hashing embedder's), the keyword
        // candidates' cosines would change nothing (they keep the keyword ranking's order).
        let mut missing = match query_vector.as_deref() {
            Some(qv) if min_max && weight > 0.0 => MissingScores {
                similarities: missing_similarities(
                    state,
                    q,
                    qv,
                    &keyword,
                    &vector,
                    &stm_vector,
                    ltm.keyword_similarities.as_deref(),
                )?,
                bm25: Similarities::default(),
            },
            _ => MissingScores::default(),
        };
        let weight = if q.mode == SearchMode::Hybrid && state.config.search.weight_by_standout {
            fusion::query_weight(weight, &keyword, &vector)
        } else {
            weight
        };
        let fuse = |missing: &MissingScores| {
            let _span = tracing::debug_span!(stages::FUSE).entered();
            fusion::fuse(
                &keyword,
                &vector,
                missing,
                state.config.search.fusion,
                weight,
            )
        };
        let mut fused = fuse(&missing)?;
        if min_max && !keyword.is_empty() && !vector.is_empty() {
            let floor = ltm_keyword_floor.filter(|_| q.metadata.is_none());
            missing.bm25 = missing_bm25(state, q, weight, &fused, &keyword, &stm_keyword, floor)?;
            if !missing.bm25.is_empty() {
                fused = fuse(&missing)?;
            }
        }
        let (hits, rowless) = {
            let _span = tracing::debug_span!(stages::FETCH).entered();
            fetch(state, q, &stm, &fused)?
        };
        // Enough hits, or nothing more to ask the indexes for: done. Fewer than k come of a
        // metadata filter, or of candidates without a row (see `fetch`): more candidates then.
        if hits.len() >= q.k || (q.metadata.is_none() && rowless == 0) || ltm_exhausted {
            let mut hits = rerank(q, hits)?;
            hits.truncate(q.k);
            return Ok(hits);
        }
        want = want.saturating_mul(4);
    }
}

/// One pass's long-term candidates: the rankings of the signals the query uses (empty for one
/// it does not, `used` says which), and the keyword candidates' similarities when the store
/// brought them.
#[derive(Default)]
struct LongTerm {
    keyword: Ranking,
    vector: Ranking,
    used: (bool, bool),
    keyword_similarities: Option<Ranking>,
}

impl LongTerm {
    /// Whether every signal used returned fewer than `want`: asking for more finds nothing new.
    fn exhausted(&self, want: usize) -> bool {
        (!self.used.0 || self.keyword.len() < want) && (!self.used.1 || self.vector.len() < want)
    }
}

/// The best `want` long-term candidates of each signal the query uses; a hybrid query asks the
/// store for both at once (a shared store answers them concurrently).
fn long_term_candidates(
    state: &State,
    q: &SearchQuery,
    query_vector: Option<&[f32]>,
    want: usize,
    filter: &DocFilter,
) -> Result<LongTerm> {
    let used = (q.uses_keywords(), query_vector.is_some());
    if let (SearchMode::Hybrid, Some(qv), (true, true)) = (q.mode, query_vector, used) {
        let c = state
            .ltm
            .hybrid_candidates(&q.agent_id, &q.text, qv, want, filter)?;
        return Ok(LongTerm {
            keyword: c.keyword,
            vector: c.vector,
            used,
            keyword_similarities: c.keyword_similarities,
        });
    }
    let keyword = if used.0 {
        let _span = tracing::debug_span!(stages::KEYWORD).entered();
        state.ltm.keyword(&q.agent_id, &q.text, want, filter)?
    } else {
        Ranking::new()
    };
    let vector = match query_vector {
        Some(qv) => {
            let _span = tracing::debug_span!(stages::VECTOR).entered();
            let exact = q.mode == SearchMode::ExactVector;
            state.ltm.vector(&q.agent_id, qv, want, exact, filter)?
        }
        None => Ranking::new(),
    };
    Ok(LongTerm {
        keyword,
        vector,
        used,
        keyword_similarities: None,
    })
}

/// The vector signal's weight in this query's fusion: all of it for a vector search, none for a
/// keyword search, and for a hybrid one the configured weight, else the embedder's (or, when the
/// caller brought the query vector, a sentence embedder's).
fn vector_weight(state: &State, q: &SearchQuery) -> f32 {
    match q.mode {
        SearchMode::Keyword => 0.0,
        SearchMode::Vector | SearchMode::ExactVector => 1.0,
        SearchMode::Hybrid => match (state.config.search.vector_weight, &q.vector) {
            (Some(w), _) => w,
            (None, Some(_)) => CALLER_VECTOR_WEIGHT,
            (None, None) => state.embedder.vector_weight().clamp(0.0, 1.0),
        },
    }
}

/// The exact similarity to `qv` of keyword candidates missing from the vector ranking:
/// short-term ones from `stm_vector` (every short-term entry, already scored), long-term ones
/// from `known` (what the store brought with its keyword ranking) when given, else from the
/// store.
fn missing_similarities(
    state: &State,
    q: &SearchQuery,
    qv: &[f32],
    keyword: &[(EntryId, f32)],
    vector: &[(EntryId, f32)],
    stm_vector: &[(EntryId, f32)],
    known: Option<&[(EntryId, f32)]>,
) -> Result<Similarities> {
    let ranked: rustc_hash::FxHashSet<EntryId> = vector.iter().map(|h| h.0).collect();
    let short_term: Similarities = stm_vector.iter().copied().collect();
    let mut out = Similarities::default();
    let mut long_term = Vec::new();
    for &(id, _) in keyword.iter().filter(|h| !ranked.contains(&h.0)) {
        match short_term.get(&id) {
            Some(&sim) => {
                out.insert(id, sim);
            }
            None => long_term.push(id),
        }
    }
    match known {
        // Every keyword candidate with a vector is in `known`; the others have no similarity.
        Some(known) => {
            let wanted: rustc_hash::FxHashSet<EntryId> = long_term.into_iter().collect();
            out.extend(known.iter().filter(|h| wanted.contains(&h.0)).copied());
        }
        None if !long_term.is_empty() => {
            out.extend(state.ltm.similarities(&q.agent_id, qv, &long_term)?);
        }
        None => {}
    }
    Ok(out)
}

/// The BM25 score of vector candidates missing from the keyword ranking, given `fused`, the
/// min-max fusion with those scores taken as 0: short-term ones from `stm_keyword` (every
/// short-term entry holding a query term, already scored), long-term ones from the store. An
/// entry holding no query term gets none (it scores 0).
///
/// With `floor`, the lowest score of a full long-term keyword ranking (no metadata filter), a
/// left-out long-term entry's BM25 is at most `floor`, so its fused score can rise by at most
/// `(1 - w) * floor / max BM25`. When only the top k counts (relevance only), an entry that
/// even so stays below the k-th fused score cannot reach the top k and is not scored: the top
/// k is exactly what scoring every candidate gives, at a fraction of the lookups.
fn missing_bm25(
    state: &State,
    q: &SearchQuery,
    w: f32,
    fused: &[FusedHit],
    keyword: &[(EntryId, f32)],
    stm_keyword: &[(EntryId, f32)],
    floor: Option<f32>,
) -> Result<Similarities> {
    if keyword.is_empty() {
        // No entry holds a query term (or the query has none): there is nothing to score.
        return Ok(Similarities::default());
    }
    let max_bm25 = keyword.iter().map(|h| h.1).fold(0.0f32, f32::max);
    let threshold = match (floor, fused.get(q.k.saturating_sub(1))) {
        (Some(floor), Some(kth)) if q.reweighting == RELEVANCE_ONLY && max_bm25 > 0.0 => {
            // The most a left-out entry's fused score can gain, with a margin for rounding.
            let gain = (1.0 - w) * floor / max_bm25 * (1.0 + 1e-4) + 1e-6;
            Some((kth.fused, gain))
        }
        _ => None,
    };
    let short_term: Similarities = stm_keyword.iter().copied().collect();
    let mut out = Similarities::default();
    let mut long_term = Vec::new();
    for h in fused
        .iter()
        .filter(|h| h.keyword.is_none() && h.vector.is_some())
    {
        match short_term.get(&h.id) {
            Some(&score) => {
                out.insert(h.id, score);
            }
            None => match threshold {
                Some((kth, gain)) if h.fused + gain < kth => {}
                _ => long_term.push(h.id),
            },
        }
    }
    if !long_term.is_empty() && q.tiers != Tiers::ShortTerm {
        let _span = tracing::debug_span!(stages::KEYWORD).entered();
        out.extend(state.ltm.keyword_scores(&q.agent_id, &q.text, &long_term)?);
    }
    Ok(out)
}

/// Cosine ranking of all short-term entries; entries without an embedding are embedded on the fly.
fn rank_short_term_vectors(state: &State, stm: &[MemoryEntry], qv: &[f32]) -> Ranking {
    let mut r: Ranking = stm
        .iter()
        .filter_map(|e| Some((e.id, dot(&state.vector_of(e)?, qv))))
        .collect();
    sort_ranking(&mut r);
    r
}

/// Hits of the fused candidates, and how many long-term candidates had no row: forgotten
/// between the index read and the fetch, or of a large batch whose text the index holds while
/// its commit runs (see `EmbeddedStore::insert_and_index`). Without re-weighting or a metadata
/// filter only the top k are fetched, and as many more as had no row, down the ranking.
fn fetch(
    state: &State,
    q: &SearchQuery,
    stm: &[MemoryEntry],
    fused: &[FusedHit],
) -> Result<(Vec<SearchHit>, usize)> {
    // Re-weighting can reorder, so it needs more than the top k of the fused ranking.
    let all = q.reweighting != RELEVANCE_ONLY || q.metadata.is_some();
    let stm_by_id: FxHashMap<EntryId, &MemoryEntry> = stm.iter().map(|e| (e.id, e)).collect();
    let mut next = if all {
        fused.len()
    } else {
        q.k.min(fused.len())
    };
    let mut hits = Vec::with_capacity(next);
    let mut rowless = 0;
    let mut from = 0;
    while next > 0 {
        let part = &fused[from..from + next];
        rowless += fetch_part(state, q, &stm_by_id, part, &mut hits)?;
        from += next;
        next = if all {
            0
        } else {
            q.k.saturating_sub(hits.len()).min(fused.len() - from)
        };
    }
    Ok((hits, rowless))
}

/// Appends the hits of `top` (in its order) to `hits`; returns how many long-term candidates had
/// no row. Candidates failing the metadata filter are left out.
fn fetch_part(
    state: &State,
    q: &SearchQuery,
    stm_by_id: &FxHashMap<EntryId, &MemoryEntry>,
    top: &[FusedHit],
    hits: &mut Vec<SearchHit>,
) -> Result<usize> {
    let ltm_ids: Vec<EntryId> = top
        .iter()
        .map(|h| h.id)
        .filter(|id| !stm_by_id.contains_key(id))
        .collect();
    let mut ltm: FxHashMap<EntryId, MemoryEntry> = state
        .ltm
        .get_many(&q.agent_id, &ltm_ids)?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let now = state.clock.now();
    let mut rowless = 0;
    for h in top {
        let entry = match ltm.remove(&h.id) {
            Some(e) => e,
            None => match stm_by_id.get(&h.id) {
                Some(e) => (*e).clone(),
                None => {
                    rowless += 1;
                    continue;
                }
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
            recency: state.scorer.recency(last, now),
            importance: entry.importance(),
        };
        hits.push(SearchHit {
            entry: Arc::new(entry),
            score: h.fused,
            components,
        });
    }
    Ok(rowless)
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
