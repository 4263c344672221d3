//! Combining rankings: reciprocal rank fusion of the keyword and vector rankings, then the
//! Generative-Agents re-weighting of relevance with recency and importance (Park et al., 2023).
//! RRF needs no score calibration between BM25 and cosine, which live on unrelated scales.

use rustc_hash::FxHashMap;

use crate::entry::EntryId;
use crate::error::{Error, Result};
use crate::index::topk::sort_ranking;
use crate::query::{FusionWeights, ScoreComponents};

/// The customary RRF constant (Cormack et al., 2009): it damps the weight of the very top ranks.
pub const DEFAULT_RRF_K: f32 = 60.0;

fn check_rrf_k(k: f32) -> Result<()> {
    if !k.is_finite() || k < 0.0 {
        return Err(Error::InvalidQuery(format!(
            "RRF constant {k} must be finite and >= 0"
        )));
    }
    Ok(())
}

/// Reciprocal rank fusion: each id scores the sum over rankings of `1 / (k + rank)`, rank
/// 1-based. Sorted by score descending, ties by id ascending. An id repeated within one ranking
/// counts at its first (best) rank only. Fails if `k` is negative or not finite.
///
/// ```
/// use memory_core::EntryId;
/// use memory_core::index::fusion::rrf;
///
/// let a = [EntryId(1), EntryId(2)];
/// let b = [EntryId(2), EntryId(3)];
/// let fused = rrf(&[&a, &b], 60.0).unwrap();
/// assert_eq!(fused[0].0, EntryId(2)); // 1/62 + 1/61 beats 1/61 alone
/// ```
pub fn rrf(rankings: &[&[EntryId]], k: f32) -> Result<Vec<(EntryId, f32)>> {
    check_rrf_k(k)?;
    let mut scores: FxHashMap<EntryId, f32> = FxHashMap::default();
    for ranking in rankings {
        let mut seen: FxHashMap<EntryId, ()> = FxHashMap::default();
        for (i, &id) in ranking.iter().enumerate() {
            if seen.insert(id, ()).is_none() {
                *scores.entry(id).or_insert(0.0) += 1.0 / (k + (i + 1) as f32);
            }
        }
    }
    let mut out: Vec<(EntryId, f32)> = scores.into_iter().collect();
    sort_ranking(&mut out);
    Ok(out)
}

/// One id after fusing the keyword and vector rankings, with what each contributed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FusedHit {
    pub id: EntryId,
    /// BM25 score and 1-based rank, when the keyword ranking held the id.
    pub keyword: Option<(f32, u32)>,
    /// Cosine similarity and 1-based rank, when the vector ranking held the id.
    pub vector: Option<(f32, u32)>,
    /// RRF score over the two rankings.
    pub fused: f32,
}

/// How hybrid search combines its keyword and vector signals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fusion {
    /// Weighted reciprocal rank fusion: `(1 - w) / (k + keyword rank) + w / (k + vector rank)`.
    /// Needs no score calibration; a hit ranked by one signal only gets that signal's term.
    Rrf { k: f32 },
    /// A convex combination of normalized scores: `(1 - w) * bm25 / max bm25 + w * (cos -
    /// min cos) / (max cos - min cos)`, over the candidates of both signals. Every candidate gets
    /// both parts, whichever signal found it: its exact cosine (see
    /// `LongTermStore::similarities`) and its BM25 score (see `LongTermStore::keyword_scores`; 0
    /// for an entry holding no query term). A vector candidate below the keyword top k is thus
    /// judged by the words it does share with the query, not as if it shared none.
    MinMax,
}

/// Candidates' scores by entry, for the fusions that use scores rather than ranks.
pub type Similarities = rustc_hash::FxHashMap<EntryId, f32>;

/// The scores of candidates that one ranking left out: the exact cosine of keyword candidates
/// missing from the vector ranking, and the BM25 score of vector candidates missing from the
/// keyword ranking (used by [`Fusion::MinMax`]).
#[derive(Clone, Debug, Default)]
pub struct MissingScores {
    pub similarities: Similarities,
    pub bm25: Similarities,
}

/// How far the best candidate of one signal stands out from the rest of its ranking: the
/// z-score `(best - mean) / sd` of the ranking's scores. A query whose words are rare in the
/// store, or whose meaning one entry matches closely, gives that signal a clear leader; a query
/// the signal cannot tell apart from its neighbours gives a flat ranking. (A query-performance
/// predictor in the family of Shtok et al.'s NQC, which reads the spread of the top scores.)
/// `None` for fewer than three candidates or a ranking whose scores are all equal.
pub fn standout(ranking: &[(EntryId, f32)]) -> Option<f32> {
    if ranking.len() < MIN_STANDOUT_CANDIDATES {
        return None;
    }
    let n = ranking.len() as f64;
    let scores = ranking.iter().map(|&(_, s)| f64::from(s));
    let mean = scores.clone().sum::<f64>() / n;
    let best = scores.clone().fold(f64::NEG_INFINITY, f64::max);
    let var = scores.map(|s| (s - mean) * (s - mean)).sum::<f64>() / (n - 1.0);
    let z = (best - mean) / var.sqrt();
    (var > 0.0 && z.is_finite()).then_some(z as f32)
}

/// Candidates a ranking needs before [`standout`] reads it.
const MIN_STANDOUT_CANDIDATES: usize = 3;

/// The vector weight of one hybrid query: the configured weight `w`, moved toward the signal
/// whose best candidate stands out more ([`standout`]): `w * zv / (w * zv + (1 - w) * zk)`. Equal
/// standouts keep `w`; a flat vector ranking beside a clear keyword leader (a query naming a rare
/// word the embedder cannot place) leans on BM25, and the other way round for a paraphrase that
/// shares no rare word with its answer. Falls back to `w` when either signal has no standout, and
/// keeps 0 and 1 as they are.
///
/// Measured with `examples/fusion_sweep.rs` (min-max fusion, 50 candidates, the generated
/// conversations): it raised R@5 at every weight from 0.3 to 0.8 with MiniLM (0.517 -> 0.547 at
/// 0.7) and, with the hashing embedder at 0.2 (its weight until 2026-12-07, now 0), kept every
/// overall metric at or above BM25 alone.
pub fn query_weight(w: f32, keyword: &[(EntryId, f32)], vector: &[(EntryId, f32)]) -> f32 {
    let (Some(zk), Some(zv)) = (standout(keyword), standout(vector)) else {
        return w;
    };
    let (wv, wk) = (w * zv, (1.0 - w) * zk);
    if wv + wk > 0.0 {
        (wv / (wv + wk)).clamp(0.0, 1.0)
    } else {
        w
    }
}

/// Fuses a keyword ranking and a vector ranking (each best first, as the indexes return them)
/// with `fusion` and the vector signal's weight `w` in [0, 1], keeping each hit's per-ranking
/// score and rank. `missing` holds the scores of candidates that one ranking left out (used by
/// [`Fusion::MinMax`]). Sorted by fused score descending; ties by keyword rank (a hit without
/// one after those with one), then by cosine descending (a hit without one last), then by id.
pub fn fuse(
    keyword: &[(EntryId, f32)],
    vector: &[(EntryId, f32)],
    missing: &MissingScores,
    fusion: Fusion,
    w: f32,
) -> Result<Vec<FusedHit>> {
    if !(0.0..=1.0).contains(&w) {
        return Err(Error::InvalidQuery(format!(
            "vector weight {w} is outside [0, 1]"
        )));
    }
    let mut hits: FxHashMap<EntryId, FusedHit> = FxHashMap::default();
    let blank = |id| FusedHit {
        id,
        keyword: None,
        vector: None,
        fused: 0.0,
    };
    for (i, &(id, score)) in keyword.iter().enumerate() {
        let h = hits.entry(id).or_insert_with(|| blank(id));
        h.keyword.get_or_insert((score, (i + 1) as u32));
    }
    for (i, &(id, score)) in vector.iter().enumerate() {
        let h = hits.entry(id).or_insert_with(|| blank(id));
        h.vector.get_or_insert((score, (i + 1) as u32));
    }
    // A hit's cosine: from the vector ranking, else as looked up for the keyword candidates
    // it left out.
    let cos = |h: &FusedHit| {
        h.vector
            .map(|v| v.0)
            .or_else(|| missing.similarities.get(&h.id).copied())
    };
    match fusion {
        Fusion::Rrf { k } => {
            check_rrf_k(k)?;
            for h in hits.values_mut() {
                let term =
                    |r: Option<(f32, u32)>| r.map_or(0.0, |(_, rank)| 1.0 / (k + rank as f32));
                h.fused = (1.0 - w) * term(h.keyword) + w * term(h.vector);
            }
        }
        Fusion::MinMax => {
            let bm25 = |h: &FusedHit| {
                h.keyword
                    .map(|k| k.0)
                    .or_else(|| missing.bm25.get(&h.id).copied())
            };
            let max_bm25 = hits.values().filter_map(bm25).fold(0.0f32, f32::max);
            let (lo, hi) = hits
                .values()
                .filter_map(cos)
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), c| {
                    (lo.min(c), hi.max(c))
                });
            let span = hi - lo;
            let updates: Vec<(EntryId, f32)> = hits
                .values()
                .map(|h| {
                    let kw = match (bm25(h), max_bm25 > 0.0) {
                        (Some(s), true) => s / max_bm25,
                        _ => 0.0,
                    };
                    let v = match cos(h) {
                        Some(c) if span > 0.0 => (c - lo) / span,
                        Some(_) => 1.0,
                        None => 0.0,
                    };
                    (h.id, (1.0 - w) * kw + w * v)
                })
                .collect();
            for (id, fused) in updates {
                if let Some(h) = hits.get_mut(&id) {
                    h.fused = fused;
                }
            }
        }
    }
    // Equal fused scores keep the keyword ranking's order, then the vector signal's, then id.
    // With a vector weight of 0 (an embedder that only hashes words, `HASHING_VECTOR_WEIGHT`)
    // the fused ranking is thus the keyword ranking itself, followed by the candidates holding
    // no query term (or too little of it to be in that ranking) in the order of their cosine.
    let mut out: Vec<(FusedHit, u32, f32)> = hits
        .into_values()
        .map(|h| {
            let keyword_rank = h.keyword.map_or(u32::MAX, |k| k.1);
            (h, keyword_rank, cos(&h).unwrap_or(f32::NEG_INFINITY))
        })
        .collect();
    out.sort_unstable_by(|(a, ka, sa), (b, kb, sb)| {
        b.fused
            .total_cmp(&a.fused)
            .then_with(|| ka.cmp(kb))
            .then_with(|| sb.total_cmp(sa))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(out.into_iter().map(|(h, _, _)| h).collect())
}

/// Fuses a keyword ranking and a vector ranking with plain (equally weighted) RRF; see [`fuse`].
pub fn fuse_hybrid(
    keyword: &[(EntryId, f32)],
    vector: &[(EntryId, f32)],
    k: f32,
) -> Result<Vec<FusedHit>> {
    // Each signal at weight 1/2 gives half the plain RRF score: the order is the same.
    let mut out = fuse(
        keyword,
        vector,
        &MissingScores::default(),
        Fusion::Rrf { k },
        0.5,
    )?;
    out.iter_mut().for_each(|h| h.fused *= 2.0);
    Ok(out)
}

/// A fused hit re-weighted with recency and importance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reranked {
    pub id: EntryId,
    /// The final score.
    pub score: f32,
    /// Fused score divided by the largest fused score among the hits, in [0, 1].
    pub relevance: f32,
    /// Every part of the score, ready for a [`crate::SearchHit`].
    pub components: ScoreComponents,
}

/// Re-weights fused hits: relevance (fused score over the largest one) plus recency and importance
/// that `signals` gives per id as `(recency, importance)`, each clamped to [0, 1] with NaN as 0.
/// Sorted by final score descending; equal scores keep their order in `hits`.
pub fn rerank(
    hits: &[FusedHit],
    weights: &FusionWeights,
    mut signals: impl FnMut(EntryId) -> (f32, f32),
) -> Result<Vec<Reranked>> {
    weights.validate()?;
    let max = hits.iter().map(|h| h.fused).fold(0.0f32, f32::max);
    let unit = |x: f32| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let mut out: Vec<Reranked> = hits
        .iter()
        .map(|h| {
            let (recency, importance) = signals(h.id);
            let (recency, importance) = (unit(recency), unit(importance));
            let relevance = if max > 0.0 { h.fused / max } else { 0.0 };
            Reranked {
                id: h.id,
                // In f64, then rounded once: the checked weights' sum is a finite f32, and so
                // is a score, which is at most that sum.
                score: (f64::from(weights.relevance) * f64::from(relevance)
                    + f64::from(weights.recency) * f64::from(recency)
                    + f64::from(weights.importance) * f64::from(importance))
                    as f32,
                relevance,
                components: ScoreComponents {
                    keyword: h.keyword.map(|k| k.0),
                    keyword_rank: h.keyword.map(|k| k.1),
                    vector: h.vector.map(|v| v.0),
                    vector_rank: h.vector.map(|v| v.1),
                    fused: h.fused,
                    recency,
                    importance,
                },
            }
        })
        .collect();
    // Stable: equal scores keep the order of `hits` (a fused ranking's own tie-breaks).
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<EntryId> {
        v.iter().map(|&i| EntryId(i)).collect()
    }

    fn scored(scores: &[f32]) -> Vec<(EntryId, f32)> {
        scores
            .iter()
            .enumerate()
            .map(|(i, &s)| (EntryId(i as u64 + 1), s))
            .collect()
    }

    #[test]
    fn standout_is_the_z_score_of_the_best_candidate() {
        // Scores 4, 1, 1: mean 2, sample sd sqrt(3), z = 2 / sqrt(3).
        let z = standout(&scored(&[4.0, 1.0, 1.0])).unwrap();
        assert!((z - 2.0 / 3f32.sqrt()).abs() < 1e-6, "{z}");
        // Order does not matter: the best is the highest score wherever it is.
        assert_eq!(standout(&scored(&[1.0, 4.0, 1.0])), Some(z));
        assert_eq!(standout(&scored(&[2.0, 2.0, 2.0])), None, "flat");
        assert_eq!(standout(&scored(&[5.0, 1.0])), None, "too few");
        assert_eq!(standout(&[]), None);
    }

    #[test]
    fn the_query_weight_leans_toward_the_signal_with_a_clear_leader() {
        let leader = scored(&[9.0, 1.0, 1.0, 1.0, 1.0]);
        let spread = scored(&[5.0, 4.5, 4.0, 3.5, 3.0]);
        // Equal standouts keep the configured weight.
        assert!((query_weight(0.3, &leader, &leader) - 0.3).abs() < 1e-6);
        // A flatter vector ranking beside a clear keyword leader leans on BM25, and back.
        assert!(query_weight(0.5, &leader, &spread) < 0.5);
        assert!(query_weight(0.5, &spread, &leader) > 0.5);
        let (zl, zs) = (standout(&leader).unwrap(), standout(&spread).unwrap());
        let want = 0.5 * zs / (0.5 * zs + 0.5 * zl);
        assert!((query_weight(0.5, &leader, &spread) - want).abs() < 1e-6);
        // Pure signals stay pure; no standout falls back to the weight.
        assert_eq!(query_weight(0.0, &spread, &leader), 0.0);
        assert_eq!(query_weight(1.0, &leader, &spread), 1.0);
        assert_eq!(query_weight(0.4, &leader, &scored(&[1.0])), 0.4);
        assert_eq!(query_weight(0.4, &[], &leader), 0.4);
    }

    #[test]
    fn rrf_order_matches_hand_computed_scores() {
        // k = 60. A = [1, 2, 3], B = [3, 1, 4]:
        // 1: 1/61 + 1/62 = 0.0325225    3: 1/63 + 1/61 = 0.0322664
        // 2: 1/62 = 0.0161290           4: 1/63 = 0.0158730
        let a = ids(&[1, 2, 3]);
        let b = ids(&[3, 1, 4]);
        let fused = rrf(&[&a, &b], 60.0).unwrap();
        let order: Vec<u64> = fused.iter().map(|h| h.0 .0).collect();
        assert_eq!(order, [1, 3, 2, 4]);
        let want = [0.0325225, 0.0322664, 0.0161290, 0.0158730];
        for (h, w) in fused.iter().zip(want) {
            assert!((h.1 - w).abs() < 1e-6, "{fused:?}");
        }
    }

    #[test]
    fn rrf_breaks_ties_by_id_and_counts_a_repeated_id_once() {
        // 7 and 2 both sit at rank 1 of one list: equal scores, smaller id first.
        let a = ids(&[7, 7]);
        let b = ids(&[2]);
        let fused = rrf(&[&a, &b], 60.0).unwrap();
        assert_eq!(
            fused,
            vec![(EntryId(2), 1.0 / 61.0), (EntryId(7), 1.0 / 61.0)]
        );
        assert!(rrf(&[], 60.0).unwrap().is_empty());
        assert!(rrf(&[&a], -1.0).is_err());
        assert!(rrf(&[&a], f32::NAN).is_err());
    }

    #[test]
    fn hybrid_fusion_keeps_each_rankings_score_and_rank() {
        let kw = [(EntryId(1), 3.5), (EntryId(2), 1.0)];
        let vec = [(EntryId(2), 0.9), (EntryId(3), 0.8)];
        let fused = fuse_hybrid(&kw, &vec, 60.0).unwrap();
        assert_eq!(fused[0].id, EntryId(2));
        assert_eq!(fused[0].keyword, Some((1.0, 2)));
        assert_eq!(fused[0].vector, Some((0.9, 1)));
        assert!((fused[0].fused - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-7);
        // 1 is keyword rank 1 (1/61), 3 is vector rank 2 (1/62): 1 ranks above 3.
        assert_eq!(fused[1].id, EntryId(1));
        assert_eq!(fused[1].vector, None);
        assert_eq!(fused[2].id, EntryId(3));
    }

    #[test]
    fn a_vector_weight_of_0_keeps_the_keyword_ranking_and_orders_the_rest_by_cosine() {
        // Entries 4 and 5 tie on BM25, and the keyword ranking put 5 first; 3 and 6 hold no
        // query term (vector candidates only), 2 holds one but was left out of the keyword
        // ranking (its BM25 looked up, below the ranking's last).
        let kw = [(EntryId(1), 4.0), (EntryId(5), 2.0), (EntryId(4), 2.0)];
        let vec = [
            (EntryId(6), 0.9),
            (EntryId(4), 0.8),
            (EntryId(3), 0.7),
            (EntryId(2), 0.6),
        ];
        let mut missing = MissingScores::default();
        missing
            .similarities
            .extend([(EntryId(1), 0.1), (EntryId(5), 0.2)]);
        missing.bm25.extend([(EntryId(2), 1.0)]);
        for fusion in [Fusion::MinMax, Fusion::Rrf { k: 60.0 }] {
            let fused = fuse(&kw, &vec, &missing, fusion, 0.0).unwrap();
            let order: Vec<u64> = fused.iter().map(|h| h.id.0).collect();
            // Min-max: 2 scores its BM25 and follows the ranking; 6 and 3 score 0, by cosine.
            // RRF: 2 has no keyword rank, so it falls in with 6 and 3 by cosine.
            let want: &[u64] = match fusion {
                Fusion::MinMax => &[1, 5, 4, 2, 6, 3],
                Fusion::Rrf { .. } => &[1, 5, 4, 6, 3, 2],
            };
            assert_eq!(order, want, "{fusion:?}");
        }
    }

    #[test]
    fn equal_fused_scores_keep_the_keyword_rankings_order_first() {
        // Neither ranking holds 1 and 2 both; each signal ranks one of them second.
        let kw = [(EntryId(9), 1.0), (EntryId(2), 0.5)];
        let vec = [(EntryId(8), 0.9), (EntryId(1), 0.7)];
        let fused = fuse(
            &kw,
            &vec,
            &MissingScores::default(),
            Fusion::Rrf { k: 60.0 },
            0.5,
        );
        let order: Vec<u64> = fused.unwrap().iter().map(|h| h.id.0).collect();
        // 9 and 8 tie (rank 1 of one signal each): 9 has a keyword rank. So do 2 and 1.
        assert_eq!(order, [9, 8, 2, 1]);
    }

    #[test]
    fn rerank_keeps_the_fused_order_of_equal_scores() {
        let hit = |id: u64| FusedHit {
            id: EntryId(id),
            keyword: None,
            vector: None,
            fused: 1.0,
        };
        let fused = [hit(3), hit(1), hit(2)];
        let r = rerank(&fused, &FusionWeights::default(), |_| (0.5, 0.5)).unwrap();
        let order: Vec<u64> = r.iter().map(|h| h.id.0).collect();
        assert_eq!(order, [3, 1, 2]);
    }

    #[test]
    fn rerank_weights_relevance_recency_and_importance() {
        let kw = [(EntryId(1), 2.0), (EntryId(2), 1.0)];
        let fused = fuse_hybrid(&kw, &[], 60.0).unwrap();
        // relevance: 1 -> 1.0, 2 -> (1/62)/(1/61) = 61/62 = 0.983871.
        // signals: 1 -> (0.0, 0.0), 2 -> (1.0, 0.5)
        // default weights: 1 -> 1.0; 2 -> 0.983871 + 1.0 + 0.5 = 2.483871
        let signals = |id: EntryId| {
            if id == EntryId(1) {
                (0.0, 0.0)
            } else {
                (1.0, 0.5)
            }
        };
        let r = rerank(&fused, &FusionWeights::default(), signals).unwrap();
        assert_eq!(r[0].id, EntryId(2));
        assert!((r[0].score - 2.483871).abs() < 1e-5);
        assert!((r[0].relevance - 0.983871).abs() < 1e-5);
        assert_eq!(r[0].components.keyword_rank, Some(2));
        assert_eq!(r[0].components.recency, 1.0);
        assert_eq!(r[1].score, 1.0);
        // Relevance alone restores the fused order.
        let w = FusionWeights {
            relevance: 1.0,
            recency: 0.0,
            importance: 0.0,
        };
        let r = rerank(&fused, &w, signals).unwrap();
        assert_eq!(r[0].id, EntryId(1));
    }

    #[test]
    fn rerank_clamps_signals_and_rejects_bad_weights() {
        let fused = fuse_hybrid(&[(EntryId(1), 1.0)], &[], 60.0).unwrap();
        let r = rerank(&fused, &FusionWeights::default(), |_| (f32::NAN, 7.0)).unwrap();
        assert_eq!(r[0].components.recency, 0.0);
        assert_eq!(r[0].components.importance, 1.0);
        let bad = FusionWeights {
            relevance: -1.0,
            ..FusionWeights::default()
        };
        assert!(matches!(
            rerank(&fused, &bad, |_| (0.0, 0.0)),
            Err(Error::InvalidConfig(_))
        ));
        let zero = FusionWeights {
            relevance: 0.0,
            recency: 0.0,
            importance: 0.0,
        };
        assert!(rerank(&fused, &zero, |_| (0.0, 0.0)).is_err());
    }

    #[test]
    fn rerank_refuses_weights_whose_sum_overflows_or_is_subnormal() {
        let fused = fuse_hybrid(&[(EntryId(2), 1.0), (EntryId(1), 0.5)], &[], 60.0).unwrap();
        let huge = FusionWeights {
            relevance: f32::MAX,
            recency: f32::MAX,
            importance: f32::MAX,
        };
        let tiny = FusionWeights {
            relevance: 1e-45,
            recency: 0.0,
            importance: 0.0,
        };
        for bad in [huge, tiny] {
            assert!(
                matches!(
                    rerank(&fused, &bad, |_| (1.0, 1.0)),
                    Err(Error::InvalidConfig(_))
                ),
                "{bad:?}"
            );
        }
        // Large weights whose sum is finite rank by the scores, which stay finite.
        let large = FusionWeights {
            relevance: 1e38,
            recency: 1e38,
            importance: 1e38,
        };
        let r = rerank(&fused, &large, |_| (1.0, 1.0)).unwrap();
        assert_eq!(r[0].id, EntryId(2));
        assert!(r.iter().all(|h| h.score.is_finite()), "{:?}", r[0].score);
        assert!(r[0].score > r[1].score);
    }
}
