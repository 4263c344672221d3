//! Correctness of the vector index against brute force: exact search with filters and removals,
//! and the recall of HNSW and of int8 quantization on clustered data.

use std::collections::HashSet;
use std::time::Instant;

use memory_core::index::vector::{HnswParams, Quantization, VectorIndex, VectorIndexConfig};
use memory_core::{EntryId, Error};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A standard normal draw (Box-Muller), so the data needs no distribution crate.
fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// `n` unit vectors around `centres` random centres, with per-coordinate noise `spread` relative
/// to a centre's coordinates; plus `queries` fresh points drawn the same way.
fn clustered(
    seed: u64,
    dim: usize,
    centres: usize,
    n: usize,
    queries: usize,
    spread: f32,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let cs: Vec<Vec<f32>> = (0..centres)
        .map(|_| normalize((0..dim).map(|_| gaussian(&mut rng)).collect()))
        .collect();
    let point = |rng: &mut StdRng| {
        let c = &cs[rng.random_range(0..centres)];
        let scale = spread / (dim as f32).sqrt();
        normalize(c.iter().map(|x| x + scale * gaussian(rng)).collect())
    };
    let data = (0..n).map(|_| point(&mut rng)).collect();
    let qs = (0..queries).map(|_| point(&mut rng)).collect();
    (data, qs)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Brute force: every (id, vector) accepted by `keep`, sorted by dot descending then id.
fn brute_force(
    items: &[(EntryId, Vec<f32>)],
    q: &[f32],
    k: usize,
    keep: impl Fn(EntryId) -> bool,
) -> Vec<(EntryId, f32)> {
    let mut all: Vec<(EntryId, f32)> = items
        .iter()
        .filter(|(id, _)| keep(*id))
        .map(|(id, v)| (*id, dot(q, v)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Checks `got` against the brute-force ranking, allowing float noise in the scores: the same
/// ids in the same order, except where two scores are within `eps` of each other.
fn assert_same_ranking(got: &[(EntryId, f32)], want: &[(EntryId, f32)], eps: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g.1 - w.1).abs() <= eps, "rank {i}: {g:?} vs {w:?}");
        if g.0 != w.0 {
            // Only acceptable when the two candidates are tied within float noise.
            let gw = want.iter().find(|x| x.0 == g.0).map(|x| x.1);
            assert!(
                gw.is_some_and(|s| (s - w.1).abs() <= eps),
                "rank {i}: {g:?} vs {w:?}"
            );
        }
    }
}

fn recall(got: &[(EntryId, f32)], want: &[(EntryId, f32)]) -> (usize, usize) {
    let truth: HashSet<EntryId> = want.iter().map(|h| h.0).collect();
    (
        got.iter().filter(|h| truth.contains(&h.0)).count(),
        truth.len(),
    )
}

/// In f32 and in half precision, against a brute force over the vectors as the index holds them.
#[test]
fn exact_search_matches_brute_force_with_filters_and_after_removals() {
    for quantization in [Quantization::None, Quantization::F16] {
        exact_search_matches_brute_force(quantization);
    }
}

fn exact_search_matches_brute_force(quantization: Quantization) {
    let (data, queries) = clustered(1, 48, 20, 3_000, 30, 0.8);
    let mut config = VectorIndexConfig::new(48);
    config.quantization = quantization;
    config.hnsw.min_len = usize::MAX; // this test is about the scan only
    let mut ix = VectorIndex::new(config).unwrap();
    let mut items: Vec<(EntryId, Vec<f32>)> = Vec::new();
    for (i, v) in data.iter().enumerate() {
        // Ids deliberately not in insertion order.
        let id = EntryId((i as u64 * 7919) % 100_003);
        ix.insert(id, v).unwrap();
        let held = ix.get(id).unwrap();
        if quantization == Quantization::None {
            assert_eq!(&held, v);
        } else {
            // Half a step: 2^-11 relative, or 2^-25 below 2^-14, where halves are subnormal.
            let near = |h: &f32, x: &f32| (h - x).abs() <= (x.abs() / 2048.0).max(2f32.powi(-25));
            assert!(held.iter().zip(v).all(|(h, x)| near(h, x)));
        }
        items.push((id, held));
    }
    let check = |ix: &VectorIndex, items: &[(EntryId, Vec<f32>)]| {
        for q in &queries {
            for k in [1, 10, 57] {
                let got = ix.search_exact(q, k, &|_| true).unwrap();
                assert_same_ranking(&got, &brute_force(items, q, k, |_| true), 1e-5);
                let odd = |id: EntryId| id.0 % 2 == 1;
                let got = ix.search_exact(q, k, &odd).unwrap();
                assert!(got.iter().all(|h| odd(h.0)));
                assert_same_ranking(&got, &brute_force(items, q, k, odd), 1e-5);
            }
        }
    };
    check(&ix, &items);
    // Remove a fifth (stays below the rebuild threshold), then two more fifths (crosses it).
    for round in 0..3 {
        let cut = items.len() / (5 - round);
        for (id, _) in items.drain(..cut) {
            assert!(ix.remove(id));
            assert!(!ix.contains(id));
        }
        assert_eq!(ix.len(), items.len());
        check(&ix, &items);
    }
}

#[test]
fn k_zero_is_empty_and_huge_k_returns_every_accepted_vector() {
    let (data, queries) = clustered(2, 16, 5, 300, 1, 0.5);
    let mut config = VectorIndexConfig::new(16);
    config.hnsw.min_len = 100;
    let mut ix = VectorIndex::new(config).unwrap();
    for (i, v) in data.iter().enumerate() {
        ix.insert(EntryId(i as u64), v).unwrap();
    }
    assert!(ix.has_graph());
    let q = &queries[0];
    assert!(ix.search_exact(q, 0, &|_| true).unwrap().is_empty());
    assert!(ix.search_approx(q, 0, &|_| true).unwrap().is_empty());
    assert_eq!(
        ix.search_exact(q, usize::MAX, &|_| true).unwrap().len(),
        300
    );
    assert_eq!(
        ix.search_approx(q, usize::MAX, &|_| true).unwrap().len(),
        300
    );
    let few = |id: EntryId| id.0 < 7;
    // A filter this selective leaves the graph short of k hits; the fallback finds all of them.
    assert_eq!(ix.search_approx(q, 10, &few).unwrap().len(), 7);
}

#[test]
fn nan_and_wrong_dimension_queries_are_typed_errors() {
    let mut ix = VectorIndex::new(VectorIndexConfig::new(4)).unwrap();
    ix.insert(EntryId(1), &[0.5; 4]).unwrap();
    let nan = [0.5, f32::NAN, 0.5, 0.5];
    assert!(matches!(
        ix.search_approx(&nan, 3, &|_| true),
        Err(Error::NonFiniteEmbedding { index: 1, .. })
    ));
    assert!(matches!(
        ix.insert(EntryId(2), &nan),
        Err(Error::NonFiniteEmbedding { .. })
    ));
    assert!(matches!(
        ix.search_exact(&[1.0; 3], 3, &|_| true),
        Err(Error::DimensionMismatch {
            expected: 4,
            actual: 3
        })
    ));
}

#[test]
fn approximate_search_is_deterministic_for_a_seed() {
    let (data, queries) = clustered(3, 32, 10, 2_000, 10, 0.6);
    let build = || {
        let mut config = VectorIndexConfig::new(32);
        config.hnsw.min_len = 500;
        let mut ix = VectorIndex::new(config).unwrap();
        for (i, v) in data.iter().enumerate() {
            ix.insert(EntryId(i as u64), v).unwrap();
        }
        ix
    };
    let (a, b) = (build(), build());
    for q in &queries {
        assert_eq!(
            a.search_approx(q, 10, &|_| true).unwrap(),
            b.search_approx(q, 10, &|_| true).unwrap()
        );
    }
}

/// Recall@10 of HNSW against exact search on 20,000 clustered 64-d vectors, unfiltered, filtered
/// and with tombstones; and recall of int8 and half-precision exact search against f32 exact
/// search. (Int8 HNSW
/// recall is measured by the release-mode timing test, to keep this one affordable in debug.)
#[test]
fn ann_and_int8_recall_at_10_on_clustered_data() {
    let dim = 64;
    let (data, queries) = clustered(42, dim, 100, 20_000, 200, 0.7);
    let start = Instant::now();
    let mut config = VectorIndexConfig::new(dim);
    config.hnsw = HnswParams {
        m: 16,
        ef_construction: 100,
        ef_search: 64,
        min_len: 1_000,
        ..HnswParams::default()
    };
    let mut f32_ix = VectorIndex::new(config).unwrap();
    config.quantization = Quantization::Int8;
    config.hnsw.min_len = usize::MAX;
    let mut i8_ix = VectorIndex::new(config).unwrap();
    config.quantization = Quantization::F16;
    let mut f16_ix = VectorIndex::new(config).unwrap();
    for (i, v) in data.iter().enumerate() {
        f32_ix.insert(EntryId(i as u64), v).unwrap();
        i8_ix.insert(EntryId(i as u64), v).unwrap();
        f16_ix.insert(EntryId(i as u64), v).unwrap();
    }
    assert!(f32_ix.has_graph());
    let built = start.elapsed();

    let add = |acc: &mut (usize, usize), r: (usize, usize)| {
        acc.0 += r.0;
        acc.1 += r.1;
    };
    let mut ann = (0, 0);
    let mut ann_ef10 = (0, 0);
    let mut ann_filtered = (0, 0);
    let mut int8 = (0, 0);
    let mut half = (0, 0);
    let even = |id: EntryId| id.0.is_multiple_of(2);
    let truths: Vec<_> = queries
        .iter()
        .map(|q| f32_ix.search_exact(q, 10, &|_| true).unwrap())
        .collect();
    for (q, truth) in queries.iter().zip(&truths) {
        add(
            &mut ann,
            recall(&f32_ix.search_approx(q, 10, &|_| true).unwrap(), truth),
        );
        add(
            &mut int8,
            recall(&i8_ix.search_exact(q, 10, &|_| true).unwrap(), truth),
        );
        let got = f16_ix.search_exact(q, 10, &|_| true).unwrap();
        for (h, t) in got.iter().zip(truth) {
            assert!(
                (h.1 - t.1).abs() < 1e-3,
                "half similarity {} vs f32 {}",
                h.1,
                t.1
            );
        }
        add(&mut half, recall(&got, truth));
        let truth_even = f32_ix.search_exact(q, 10, &even).unwrap();
        let got = f32_ix.search_approx(q, 10, &even).unwrap();
        assert!(got.iter().all(|h| even(h.0)));
        add(&mut ann_filtered, recall(&got, &truth_even));
    }
    // The smallest candidate list allowed for k = 10, to show the margin the default leaves.
    f32_ix.set_ef_search(10);
    for (q, truth) in queries.iter().zip(&truths) {
        add(
            &mut ann_ef10,
            recall(&f32_ix.search_approx(q, 10, &|_| true).unwrap(), truth),
        );
    }
    f32_ix.set_ef_search(64);

    // Tombstones: remove 20% (below the rebuild threshold, so the graph routes through them).
    for i in (0..20_000u64).step_by(5) {
        assert!(f32_ix.remove(EntryId(i)));
    }
    assert!(f32_ix.has_graph());
    let mut ann_removed = (0, 0);
    for q in &queries {
        let truth = f32_ix.search_exact(q, 10, &|_| true).unwrap();
        let got = f32_ix.search_approx(q, 10, &|_| true).unwrap();
        assert!(
            got.iter().all(|h| h.0 .0 % 5 != 0),
            "a removed vector came back"
        );
        add(&mut ann_removed, recall(&got, &truth));
    }

    let rate = |r: (usize, usize)| r.0 as f64 / r.1 as f64;
    println!(
        "20k x {dim}-d, 100 clusters, 200 queries, build {built:?}: recall@10 ANN f32 \
         (ef 64) {:.4}, (ef 10) {:.4}, filtered to 50% {:.4}, after 20% removed {:.4}; \
         int8 exact vs f32 exact {:.4}, half exact vs f32 exact {:.4}",
        rate(ann),
        rate(ann_ef10),
        rate(ann_filtered),
        rate(ann_removed),
        rate(int8),
        rate(half),
    );
    assert!(rate(ann) >= 0.95, "ANN recall {}", rate(ann));
    assert!(
        rate(ann_filtered) >= 0.95,
        "filtered recall {}",
        rate(ann_filtered)
    );
    assert!(
        rate(ann_removed) >= 0.95,
        "recall with tombstones {}",
        rate(ann_removed)
    );
    assert!(rate(int8) >= 0.90, "int8 recall {}", rate(int8));
    assert!(rate(half) >= 0.99, "half-precision recall {}", rate(half));
}

#[test]
fn footprint_of_1000_vectors_of_384_dims_fits_the_store_budget() {
    let (data, _) = clustered(5, 384, 10, 1_000, 0, 0.7);
    // Codes to link with add 388 bytes per vector to an f32 or half arena (none to int8).
    for (quantization, link_with_codes, budget) in [
        (Quantization::None, false, 1_800_000),
        (Quantization::None, true, 2_200_000),
        (Quantization::F16, false, 1_050_000),
        (Quantization::F16, true, 1_450_000),
        (Quantization::Int8, true, 650_000),
    ] {
        let mut config = VectorIndexConfig::new(384);
        config.quantization = quantization;
        config.link_with_codes = link_with_codes;
        config.hnsw.min_len = 500; // make sure the graph is part of the count
        let mut ix = VectorIndex::new(config).unwrap();
        for (i, v) in data.iter().enumerate() {
            ix.insert(EntryId(i as u64), v).unwrap();
        }
        assert!(ix.has_graph());
        let bytes = ix.heap_bytes();
        println!("{quantization:?}, codes {link_with_codes}: {bytes} heap bytes for 1,000 x 384-d");
        let codes = if link_with_codes && quantization != Quantization::Int8 {
            388
        } else {
            0
        };
        let held = 1_000 * (ix.bytes_per_vector() + codes);
        assert!(bytes >= held, "{bytes} < {held}");
        assert!(bytes <= budget, "{quantization:?}: {bytes} > {budget}");
    }
}

/// Release-mode timing, not run by default:
/// `cargo test --release -p memory-core --test retrieval_vector -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn time_build_and_search_of_100k_384d() {
    let dim = 384;
    let (data, queries) = clustered(7, dim, 1_000, 100_000, 500, 0.7);
    let mut truths: Vec<Vec<(EntryId, f32)>> = Vec::new();
    for quantization in [Quantization::None, Quantization::F16, Quantization::Int8] {
        let mut config = VectorIndexConfig::new(dim);
        config.quantization = quantization;
        let mut ix = VectorIndex::new(config).unwrap();
        let start = Instant::now();
        for (i, v) in data.iter().enumerate() {
            ix.insert(EntryId(i as u64), v).unwrap();
        }
        let build = start.elapsed();
        let mut lat_exact = Vec::new();
        let mut lat_ann = Vec::new();
        let (mut same_mode, mut vs_f32) = (0, 0);
        for (qi, q) in queries.iter().enumerate() {
            let t = Instant::now();
            let exact = ix.search_exact(q, 10, &|_| true).unwrap();
            lat_exact.push(t.elapsed());
            let t = Instant::now();
            let got = ix.search_approx(q, 10, &|_| true).unwrap();
            lat_ann.push(t.elapsed());
            same_mode += recall(&got, &exact).0;
            if quantization == Quantization::None {
                truths.push(exact);
            } else {
                vs_f32 += recall(&exact, &truths[qi]).0;
            }
        }
        lat_exact.sort();
        lat_ann.sort();
        let p = |v: &[std::time::Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize];
        let n = (10 * queries.len()) as f64;
        println!(
            "{quantization:?} 100k x {dim}: build {build:?}, heap {:.1} MB; exact p50 {:?} p99 {:?}; \
             ANN p50 {:?} p99 {:?}; ANN recall@10 vs same-mode exact {:.4}; \
             exact recall@10 vs f32 exact {:.4}",
            ix.heap_bytes() as f64 / 1e6,
            p(&lat_exact, 0.5),
            p(&lat_exact, 0.99),
            p(&lat_ann, 0.5),
            p(&lat_ann, 0.99),
            same_mode as f64 / n,
            if quantization == Quantization::None { 1.0 } else { vs_f32 as f64 / n },
        );
    }
}

#[test]
fn vectors_not_yet_linked_are_found_by_approximate_search() {
    let dim = 32;
    let (data, queries) = clustered(11, dim, 20, 3_000, 50, 0.7);
    let mut config = VectorIndexConfig::new(dim);
    config.hnsw.min_len = 500;
    let mut ix = VectorIndex::new(config).unwrap();
    for (i, v) in data.iter().enumerate() {
        ix.insert_unlinked(EntryId(i as u64), v).unwrap();
    }
    assert_eq!(ix.pending_links(), 3_000);
    // Link part of the index: the rest is the exactly scanned tail.
    assert_eq!(ix.link_pending(1_000), 1_000);
    assert_eq!(ix.pending_links(), 2_000);
    assert!(ix.has_graph());
    let mut hits = 0;
    for q in &queries {
        let exact = ix.search_exact(q, 10, &|_| true).unwrap();
        let approx = ix.search_approx(q, 10, &|_| true).unwrap();
        hits += recall(&approx, &exact).0;
    }
    let rate = hits as f64 / (10 * queries.len()) as f64;
    assert!(
        rate >= 0.95,
        "recall with a 2,000-vector unlinked tail: {rate}"
    );
    assert_eq!(ix.link_pending(usize::MAX), 2_000);
    assert_eq!(ix.pending_links(), 0);
}

#[test]
fn searches_beside_the_linker_return_each_vector_once_and_miss_none_unlinked() {
    let (data, _) = clustered(21, 48, 24, 4_000, 0, 0.6);
    let mut ix = VectorIndex::new(VectorIndexConfig::new(48)).unwrap();
    for (i, v) in data.iter().enumerate() {
        ix.insert_unlinked(EntryId(i as u64), v).unwrap();
    }
    let ix = &ix;
    let self_hits = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        // `link_next` takes `&self`: it links while the searches below read the same index.
        s.spawn(|| while ix.link_next() {});
        for t in 0..2 {
            let (data, self_hits) = (&data, &self_hits);
            s.spawn(move || {
                for i in (t..data.len()).step_by(9) {
                    let hits = ix.search_approx(&data[i], 10, &|_| true).unwrap();
                    let ids: HashSet<EntryId> = hits.iter().map(|h| h.0).collect();
                    assert_eq!(ids.len(), hits.len(), "a vector twice: {hits:?}");
                    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "{hits:?}");
                    if hits[0].0 == EntryId(i as u64) {
                        self_hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(ix.pending_links(), 0);
    // Unlinked vectors are scanned exactly and linked ones reached through the graph, so a
    // vector used as the query comes back first nearly always, however far the linker got.
    let searched = (0..data.len()).step_by(9).count() + (1..data.len()).step_by(9).count();
    let found = self_hits.load(std::sync::atomic::Ordering::Relaxed);
    assert!(found * 100 >= searched * 98, "{found} of {searched}");
}

/// The background linker's parallel path: 12,000 clustered vectors stored unlinked, then linked
/// in batches by 4 threads while another thread searches the same index. Every search meanwhile
/// finds the vectors not marked linked (some half linked by a batch in flight), each once, and the
/// finished graph's recall at the shortest candidate list is within 3 points of a serial build's.
#[test]
fn a_graph_linked_in_parallel_beside_searches_is_as_good_as_a_serial_one() {
    let dim = 48;
    let (data, queries) = clustered(7, dim, 60, 12_000, 100, 0.7);
    let mut config = VectorIndexConfig::new(dim);
    config.hnsw.min_len = 1_000;
    let build = |parallel: bool| {
        let mut ix = VectorIndex::new(config).unwrap();
        for (i, v) in data.iter().enumerate() {
            ix.insert_unlinked(EntryId(i as u64), v).unwrap();
        }
        assert_eq!(
            ix.link_parallel(4, 32),
            0,
            "an empty graph is started serially"
        );
        assert!(ix.link_next());
        let ix = std::sync::RwLock::new(ix);
        let done = std::sync::atomic::AtomicBool::new(false);
        let mut batches = 0;
        std::thread::scope(|s| {
            // A searcher beside the linker, querying vectors not marked linked yet (some of
            // them half linked by a batch in flight): each must come back first (its similarity
            // to itself is 1), once.
            s.spawn(|| {
                let mut i = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let ix = ix.read().unwrap();
                    let unlinked = ix.pending_links();
                    if unlinked == 0 {
                        continue;
                    }
                    let id = data.len() - 1 - (i * 7_919) % unlinked;
                    let got = ix.search_approx(&data[id], 10, &|_| true).unwrap();
                    assert_eq!(got[0].0, EntryId(id as u64), "with {unlinked} unlinked");
                    let ids: HashSet<EntryId> = got.iter().map(|h| h.0).collect();
                    assert_eq!(ids.len(), got.len(), "a vector came back twice");
                    i += 1;
                }
            });
            loop {
                let ix = ix.read().unwrap();
                let linked = if parallel {
                    ix.link_parallel(4, 32)
                } else {
                    usize::from(ix.link_next())
                };
                if linked == 0 {
                    break;
                }
                batches += 1;
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let ix = ix.into_inner().unwrap();
        assert_eq!(ix.pending_links(), 0);
        (ix, batches)
    };
    let (mut serial, _) = build(false);
    let (mut parallel, batches) = build(true);
    // The shortest candidate list for k = 10, where a worse graph shows at once.
    serial.set_ef_search(10);
    parallel.set_ef_search(10);
    assert_eq!(batches, (12_000 - 1usize).div_ceil(32), "32 per batch");
    let mut got = [(0, 0), (0, 0)];
    for q in &queries {
        let truth = serial.search_exact(q, 10, &|_| true).unwrap();
        for (acc, ix) in got.iter_mut().zip([&serial, &parallel]) {
            let r = recall(&ix.search_approx(q, 10, &|_| true).unwrap(), &truth);
            acc.0 += r.0;
            acc.1 += r.1;
        }
    }
    let rate = |r: (usize, usize)| r.0 as f64 / r.1 as f64;
    println!(
        "12k x {dim}-d, ef 10: recall@10 serial {:.4}, linked by 4 threads {:.4}",
        rate(got[0]),
        rate(got[1])
    );
    assert!(
        rate(got[1]) >= rate(got[0]) - 0.03,
        "parallel recall {} against serial {}",
        rate(got[1]),
        rate(got[0])
    );
}

/// A backlog linked with the short candidate list (`link_parallel_quick`) and then refined with
/// the full one, beside a searcher: vectors stay findable while their links are rewritten (a
/// vector searched for itself is missed no more often than in the quick graph before, and never
/// comes back twice), every quick link gets refined once, and the refined graph's recall at the shortest list is
/// within 2 points of a serial full build's.
#[test]
fn quickly_linked_vectors_are_refined_to_a_full_graphs_recall() {
    let dim = 48;
    let (data, queries) = clustered(11, dim, 60, 12_000, 100, 0.7);
    let mut config = VectorIndexConfig::new(dim);
    config.hnsw.min_len = 1_000;
    // A short full list, so that the quick one (half of it) builds a visibly worse graph.
    config.hnsw.ef_construction = 40;
    let fresh = || {
        let mut ix = VectorIndex::new(config).unwrap();
        for (i, v) in data.iter().enumerate() {
            ix.insert_unlinked(EntryId(i as u64), v).unwrap();
        }
        assert!(ix.link_next(), "the graph is started serially");
        ix
    };
    let mut serial = fresh();
    while serial.link_next() {}
    let mut quick = fresh();
    while quick.link_parallel_quick(2, 32) > 0 {}
    assert_eq!(quick.pending_links(), 0);
    assert_eq!(
        quick.unrefined(),
        data.len() - 1,
        "every quick link is kept for refining"
    );
    assert_eq!(serial.unrefined(), 0, "full links need no refining");
    let rate = |ix: &mut VectorIndex| {
        ix.set_ef_search(10);
        let mut acc = (0, 0);
        for q in &queries {
            let truth = ix.search_exact(q, 10, &|_| true).unwrap();
            let r = recall(&ix.search_approx(q, 10, &|_| true).unwrap(), &truth);
            acc = (acc.0 + r.0, acc.1 + r.1);
        }
        acc.0 as f64 / acc.1 as f64
    };
    let (full, before) = (rate(&mut serial), rate(&mut quick));
    quick.set_ef_search(64);
    // Whether a stored vector, used as the query, is found (it is its own nearest neighbour).
    let finds_itself = |ix: &VectorIndex, id: usize| {
        let got = ix.search_approx(&data[id], 10, &|_| true).unwrap();
        let ids: HashSet<EntryId> = got.iter().map(|h| h.0).collect();
        assert_eq!(ids.len(), got.len(), "a vector came back twice");
        ids.contains(&EntryId(id as u64))
    };
    // The quick graph itself misses a few percent of its own vectors at this list length
    // (clustered data), and refining only makes it better: searches during the rewrite may
    // miss no more often than searches of the quick graph before it.
    let missed_before = (0..data.len())
        .filter(|&id| !finds_itself(&quick, id))
        .count();
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut refined = 0;
    let (searches, missed): (usize, Vec<usize>) = std::thread::scope(|s| {
        // A searcher while link lists are rewritten.
        let searcher = s.spawn(|| {
            let (mut i, mut missed) = (0, Vec::new());
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let id = (i * 7_919) % data.len();
                if !finds_itself(&quick, id) {
                    missed.push(id);
                }
                i += 1;
            }
            (i, missed)
        });
        loop {
            let n = quick.refine(2, 32);
            if n == 0 {
                break;
            }
            refined += n;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        searcher.join().unwrap()
    });
    assert_eq!(refined, data.len() - 1, "each quick link refined once");
    assert_eq!(quick.unrefined(), 0);
    let (rate_before, rate_during) = (
        missed_before as f64 / data.len() as f64,
        missed.len() as f64 / searches.max(1) as f64,
    );
    assert!(
        rate_during <= rate_before + 0.01,
        "{} of {searches} searches during the rewrite missed their vector, against {missed_before} of {} before it",
        missed.len(),
        data.len()
    );
    let after = rate(&mut quick);
    println!(
        "12k x {dim}-d, ef 10: recall@10 full {full:.4}, quick {before:.4}, refined {after:.4}; \
         ef 64, a vector searched for itself missed: quick {rate_before:.4}, during the rewrite \
         {rate_during:.4}"
    );
    assert!(
        after >= full - 0.02,
        "refined {after} against a full build's {full}"
    );
}

/// An `ef` of any size ("search everything": `usize::MAX`) searches the whole graph, for a
/// query as for graph construction, where it sized its result heap by `ef + 1` (an overflow).
#[test]
fn an_ef_of_any_size_searches_the_whole_graph() {
    let dim = 8;
    let (data, queries) = clustered(12, dim, 5, 600, 10, 0.5);
    let mut config = VectorIndexConfig::new(dim);
    config.hnsw.min_len = 100;
    config.hnsw.ef_construction = usize::MAX / 2;
    let mut ix = VectorIndex::new(config).unwrap();
    for (i, v) in data.iter().enumerate() {
        ix.insert_unlinked(EntryId(i as u64), v).unwrap();
    }
    while ix.link_next() {}
    assert_eq!(ix.pending_links(), 0);
    ix.set_ef_search(usize::MAX);
    for q in &queries {
        let truth = ix.search_exact(q, 10, &|_| true).unwrap();
        let got = ix.search_approx(q, 10, &|_| true).unwrap();
        assert_eq!(recall(&got, &truth), (10, 10));
    }
}
