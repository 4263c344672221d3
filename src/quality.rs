//! Search quality beside speed: exact top-k by brute force over the corpus vectors, an int8
//! scalar-quantized copy of them, and recall@k of an approximate answer against the exact one.
//! The quality table is printed and written as JSON next to Criterion's output.

use std::fmt::Write as _;
use std::path::Path;

/// Indexes of the `k` rows of `vectors` (row-major, `dim` wide) with the highest dot product with
/// `query`, best first; ties go to the lower index.
pub fn exact_top_k(vectors: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<usize> {
    let scores = vectors
        .chunks_exact(dim)
        .map(|row| row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>());
    top_k(scores, k)
}

fn top_k(scores: impl Iterator<Item = f32>, k: usize) -> Vec<usize> {
    let mut all: Vec<(usize, f32)> = scores.enumerate().collect();
    let k = k.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    all.select_nth_unstable_by(k - 1, by_score);
    all.truncate(k);
    all.sort_by(by_score);
    all.into_iter().map(|(i, _)| i).collect()
}

/// Vectors quantized to int8 with one symmetric scale per vector (max |x| maps to 127), the
/// common scalar quantization that cuts a 384-d embedding from 1,536 to 388 bytes.
#[derive(Clone, Debug)]
pub struct Int8Vectors {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

fn quantize(row: &[f32]) -> (Vec<i8>, f32) {
    let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let codes = row
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

impl Int8Vectors {
    /// Quantizes every row of `vectors`.
    pub fn new(vectors: &[f32], dim: usize) -> Int8Vectors {
        let rows = vectors.len() / dim.max(1);
        let mut codes = Vec::with_capacity(rows * dim);
        let mut scales = Vec::with_capacity(rows);
        for row in vectors.chunks_exact(dim.max(1)) {
            let (c, s) = quantize(row);
            codes.extend(c);
            scales.push(s);
        }
        Int8Vectors { dim, codes, scales }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Bytes of the quantized codes and scales.
    pub fn bytes(&self) -> usize {
        self.codes.len() + self.scales.len() * 4
    }

    /// Top `k` rows by the quantized dot product (integer accumulation, then both scales).
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<usize> {
        let (q, qs) = quantize(query);
        let scores = self
            .codes
            .chunks_exact(self.dim.max(1))
            .zip(&self.scales)
            .map(|(row, s)| {
                let dot: i32 = row.iter().zip(&q).map(|(a, b)| *a as i32 * *b as i32).sum();
                dot as f32 * s * qs
            });
        top_k(scores, k)
    }
}

/// Share of `truth` found in `got` (recall@k with k = truth.len()); 1.0 for an empty truth.
pub fn recall<T: PartialEq>(truth: &[T], got: &[T]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let found = truth.iter().filter(|t| got.contains(t)).count();
    found as f64 / truth.len() as f64
}

/// One line of the quality table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct QualityRow {
    /// Entries in the store.
    pub size: usize,
    /// Queries averaged.
    pub queries: usize,
    /// Mean recall@10 of memory-core's ANN search against its exact search.
    pub ann_recall_at_10: Option<f64>,
    /// Mean recall@10 of memory-core with int8 vectors (`Quantization::Int8`), exact scan, against
    /// exact f32 brute force.
    pub core_int8_exact_recall_at_10: Option<f64>,
    /// The same for memory-core's ANN search over int8 vectors.
    pub core_int8_ann_recall_at_10: Option<f64>,
    /// Mean recall@10 of this crate's reference int8 quantizer (brute force) against exact f32
    /// brute force: a cross-check of memory-core's int8 figures.
    pub int8_recall_at_10: f64,
    /// Mean recall@10 of memory-core's exact search against this crate's brute force: a check
    /// that the exact baseline is really exact (should be 1.0).
    pub exact_agreement_at_10: Option<f64>,
}

/// The table as text.
pub fn format_quality(rows: &[QualityRow]) -> String {
    let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.3}"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>10} {:>15} {:>13} {:>13} {:>10}",
        "recall@10", "queries", "ANN", "int8 exact", "int8 ANN", "int8 (ref)", "exact ok"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>10} {:>15} {:>13} {:>13.3} {:>10}",
            r.size,
            r.queries,
            opt(r.ann_recall_at_10),
            opt(r.core_int8_exact_recall_at_10),
            opt(r.core_int8_ann_recall_at_10),
            r.int8_recall_at_10,
            opt(r.exact_agreement_at_10)
        );
    }
    out
}

/// Writes the table as JSON to `path`, creating its directory.
pub fn write_quality_json(rows: &[QualityRow], path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc = serde_json::json!({
        "description": "recall@10 versus exact search, per long-term store size",
        "rows": rows,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Workload, WorkloadConfig};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn exact_top_k_ranks_by_dot_product() {
        let v = [1.0, 0.0, 0.0, 1.0, 0.7, 0.7];
        assert_eq!(exact_top_k(&v, 2, &[1.0, 0.0], 3), vec![0, 2, 1]);
        assert_eq!(exact_top_k(&v, 2, &[0.0, 1.0], 1), vec![1]);
        assert_eq!(exact_top_k(&v, 2, &[0.0, 1.0], 10).len(), 3);
        assert!(exact_top_k(&v, 2, &[0.0, 1.0], 0).is_empty());
    }

    #[test]
    fn recall_counts_the_truth_found() {
        assert_eq!(recall(&[1, 2, 3, 4], &[4, 9, 1, 8]), 0.5);
        assert_eq!(recall::<u8>(&[], &[1]), 1.0);
        assert_eq!(recall(&[1], &[]), 0.0);
    }

    #[test]
    fn int8_search_keeps_high_but_imperfect_recall_on_clustered_vectors() {
        let w = Workload::new(WorkloadConfig {
            topics: 16,
            ..WorkloadConfig::default()
        });
        let msgs = w.messages(3_000, 1, 0);
        let flat: Vec<f32> = msgs.iter().flat_map(|m| m.embedding.clone()).collect();
        let q8 = Int8Vectors::new(&flat, 384);
        assert_eq!(q8.len(), 3_000);
        assert_eq!(q8.bytes(), 3_000 * 388);
        let mut total = 0.0;
        let queries = w.queries(30, 0);
        for q in &queries {
            let truth = exact_top_k(&flat, 384, &q.vector, 10);
            total += recall(&truth, &q8.top_k(&q.vector, 10));
        }
        let mean = total / queries.len() as f64;
        assert!(mean > 0.8, "int8 recall {mean}");
    }

    #[test]
    fn quantization_round_trips_within_half_a_step() {
        let mut rng = StdRng::seed_from_u64(5);
        let row: Vec<f32> = (0..64)
            .map(|_| crate::workload::gaussian(&mut rng))
            .collect();
        let (codes, scale) = quantize(&row);
        for (c, x) in codes.iter().zip(&row) {
            assert!((*c as f32 * scale - x).abs() <= scale * 0.5 + 1e-6);
        }
    }

    #[test]
    fn quality_table_shows_missing_ann_as_na() {
        let rows = [QualityRow {
            size: 1_000,
            queries: 10,
            ann_recall_at_10: None,
            core_int8_exact_recall_at_10: Some(0.99),
            core_int8_ann_recall_at_10: None,
            int8_recall_at_10: 0.97,
            exact_agreement_at_10: Some(1.0),
        }];
        let t = format_quality(&rows);
        assert!(t.contains("n/a") && t.contains("0.970") && t.contains("1.000"));
    }
}
