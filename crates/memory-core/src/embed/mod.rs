//! Text embedders. [`HashingEmbedder`] needs no model: it hashes words and their character
//! trigrams into a fixed number of dimensions, so any store can do vector search out of the box. Its hash is
//! written out here (not taken from a crate) because embeddings are stored on disk and must not
//! change when a dependency is upgraded. [`MiniLmEmbedder`] (feature `minilm`) runs a real
//! sentence-embedding model, all-MiniLM-L6-v2, from a local model directory.

use std::fmt::Debug;

use crate::error::{Error, Result};
use crate::index::text::for_each_token;

#[cfg(feature = "minilm")]
pub(crate) mod minilm;

/// Turns text into a vector of a fixed dimension.
pub trait Embedder: Send + Sync + Debug {
    /// Length of every vector [`embed`](Embedder::embed) returns.
    fn dimension(&self) -> usize;

    /// The embedding of `text`. Implementations return unit-length vectors, or all zeros when the
    /// text carries nothing to embed; callers must check for the zero vector.
    fn embed(&self, text: &str) -> Vec<f32>;

    /// The embeddings of `texts`, in order: the same vectors as [`embed`](Embedder::embed) on
    /// each text. The default calls `embed` per text; a model that computes a batch faster
    /// than its texts one by one overrides it.
    fn embed_batch(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts.iter().map(|text| self.embed(text)).collect()
    }

    /// How far hybrid search trusts this embedder's similarities against BM25: the weight in
    /// [0, 1] of the vector signal (`SearchConfig::vector_weight` overrides it). A sentence
    /// embedder that knows meaning beyond shared words earns an equal say (the default); an
    /// embedder that only hashes words repeats what BM25 already knows, less precisely, and
    /// gets none (its vectors then only order what BM25 leaves equal).
    fn vector_weight(&self) -> f32 {
        DEFAULT_VECTOR_WEIGHT
    }

    /// What the vectors of this embedder are comparable with: two embedders with the same id
    /// put the same text at the same place. A store records the id of the embedder it was
    /// written with and refuses to open with another (`Error::StoreEmbedderMismatch`; unless
    /// told to recompute its vectors, `MemoryBuilder::reembed_on_embedder_change`): the old
    /// vectors would be compared with new queries in another space and rank as noise, silently.
    /// The default is the type's name and the dimension; an embedder whose vectors depend on
    /// more (model weights, a version of its algorithm) says so here. It is printable text of
    /// 1 to 1,024 bytes that does not begin with `reembedding:` (what a store records while it
    /// is re-embedded); an open refuses another with `Error::InvalidConfig`.
    fn id(&self) -> String {
        format!("{}/{}", std::any::type_name::<Self>(), self.dimension())
    }
}

/// `embedder`'s vectors of `texts`, checked as a caller's are (dimension `dim`, finite) and
/// scaled to unit length; `None` for a text with nothing to embed (all zeros) or a vector that
/// fails the checks. A custom embedder whose batch breaks the contract is asked text by text.
///
/// A batch of at least twice [`TEXTS_PER_THREAD`] is cut into parts embedded at once on up to
/// every core (scoped threads; the embedder is `Sync`); an embedder's panic is passed on.
pub(crate) fn checked_vectors(
    embedder: &dyn Embedder,
    dim: usize,
    texts: &[&str],
) -> Vec<Option<Vec<f32>>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = cores.min(texts.len() / TEXTS_PER_THREAD).max(1);
    if parts == 1 {
        return checked_vectors_here(embedder, dim, texts);
    }
    let part = texts.len().div_ceil(parts);
    std::thread::scope(|scope| {
        let mut chunks = texts.chunks(part);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|texts| scope.spawn(move || checked_vectors_here(embedder, dim, texts)))
            .collect();
        let mut vectors = checked_vectors_here(embedder, dim, first);
        for other in others {
            match other.join() {
                Ok(more) => vectors.extend(more),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        vectors
    })
}

/// Texts a thread of [`checked_vectors`] embeds at the least: a model's sentence takes
/// milliseconds, and the hashing embedder's 32 texts about 150 us (`latency/embed/hashing`),
/// against 20-40 us to start a thread. Measured on the 2-core machine: `insert_batch` of 1,000
/// texts with the hashing embedder 61-68K -> 69-87K entries/s (three alternated pairs,
/// `latency/ltm/insert_batch_embedding/1000`), MiniLM re-embedding and import 93 -> 189
/// entries/s (`examples/reembed.rs`).
const TEXTS_PER_THREAD: usize = 32;

/// [`checked_vectors`] on the calling thread.
fn checked_vectors_here(
    embedder: &dyn Embedder,
    dim: usize,
    texts: &[&str],
) -> Vec<Option<Vec<f32>>> {
    if texts.is_empty() {
        return Vec::new();
    }
    let vectors = embedder.embed_batch(texts);
    if vectors.len() != texts.len() {
        return texts
            .iter()
            .map(|t| checked(embedder.embed(t), dim))
            .collect();
    }
    vectors.into_iter().map(|v| checked(v, dim)).collect()
}

/// One vector of [`checked_vectors`].
pub(crate) fn checked(mut v: Vec<f32>, dim: usize) -> Option<Vec<f32>> {
    crate::entry::check_embedding(&v, dim).ok()?;
    crate::entry::normalize(&mut v).ok()?;
    Some(v)
}

/// [`Embedder::vector_weight`] of an embedder that does not say otherwise.
pub const DEFAULT_VECTOR_WEIGHT: f32 = 0.5;

/// [`Embedder::vector_weight`] of [`HashingEmbedder`]: none. Its vectors hash the words (and
/// letter trigrams) BM25 already scores, so hybrid search with it ranks as BM25 does, and the
/// vectors order only what BM25 leaves equal: candidates holding no query term, after every
/// match (`fusion::fuse`'s tie order). Any weight above 0 moved the metrics both ways: at 0.2
/// (the weight until 2026-12-07, min-max fusion over 50 candidates, moved per query by
/// `SearchConfig::weight_by_standout`) hybrid beat BM25 alone overall on the generated
/// conversations by a question or two of 330 (R@10 0.402 against 0.398) but fell below it in 11
/// cells of their categories (temporal R@5 0.750 against 0.767, open-domain R@10 0.050
/// against 0.100, ...) and on `cri-chitchat`'s MRR@10; 0.1 and 0.05 left 9 and 12 such cells.
/// At 0 every cell of those datasets equals BM25's (`cargo bench --bench quality`).
pub const HASHING_VECTOR_WEIGHT: f32 = 0.0;

/// The version of [`HashingEmbedder`]'s features and hash, in its [`Embedder::id`]: raise it
/// with any change that moves a text's vector.
const HASHING_VERSION: u32 = 1;

/// Distinguishes trigram features from word features in the hash space.
const TRIGRAM_SEED: u64 = 0x5bd1_e995_9e37_79b9;

/// Function words and fillers (sorted, for binary search): in nearly every message, so they would dominate a bag-of-words
/// cosine (BM25 discounts them by IDF; a hashed vector has no IDF) without saying what the
/// message is about.
const STOP_WORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could",
    "d", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his", "i", "if",
    "in", "is", "it", "its", "just", "know", "like", "ll", "m", "me", "my", "no", "not", "of",
    "oh", "on", "or", "our", "re", "really", "s", "she", "so", "t", "that", "the", "their", "then",
    "there", "they", "think", "this", "to", "too", "ve", "very", "was", "we", "well", "were",
    "what", "will", "with", "would", "yeah", "yes", "you", "your",
];

/// Deterministic feature hashing (Weinberger et al., 2009) of the content words of a text and
/// of their character trigrams, L2-normalized.
///
/// The words give texts that share words a positive cosine; the trigrams of each word (with
/// boundary marks, `<hiking>` gives `<hi`, `hik`, ..., `ng>`) give one to texts that share word
/// stems, forms and misspellings (`hike` / `hiking`, `marry` / `married`), which BM25's exact
/// tokens miss: that is what this embedder adds to keyword search in hybrid mode. A word's
/// trigrams together weigh as much as the word. Function words are left out. Each feature adds
/// +w or -w to one dimension, the sign taken from the hash too, so that collisions cancel in
/// expectation. A text with no content words (only punctuation, white space or function words)
/// embeds to all zeros.
///
/// ```
/// use memory_core::{Embedder, HashingEmbedder};
///
/// let e = HashingEmbedder::new(256).unwrap();
/// let v = e.embed("the cat sat on the mat");
/// assert_eq!(v.len(), 256);
/// let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
/// assert!((norm - 1.0).abs() < 1e-5);
/// assert!(e.embed("?!").iter().all(|&x| x == 0.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashingEmbedder {
    dim: usize,
}

impl HashingEmbedder {
    /// An embedder producing `dim`-dimensional vectors; `dim` must be in 1..=65536.
    pub fn new(dim: usize) -> Result<Self> {
        if dim == 0 || dim > 65_536 {
            return Err(Error::InvalidConfig(format!(
                "embedding dimension {dim} is not in 1..=65536"
            )));
        }
        Ok(HashingEmbedder { dim })
    }

    /// Adds the feature with hash `h` to `v` with weight `w`.
    fn add(&self, v: &mut [f32], h: u64, w: f32) {
        let h = splitmix64(h);
        // Multiply-shift maps the high bits uniformly onto 0..dim without a division; the lowest
        // bit (independent of the high ones after mixing) gives the sign.
        let index = ((h >> 32) * self.dim as u64) >> 32;
        let sign = if h & 1 == 0 { w } else { -w };
        if let Some(slot) = v.get_mut(index as usize) {
            *slot += sign;
        }
    }
}

impl Embedder for HashingEmbedder {
    fn dimension(&self) -> usize {
        self.dim
    }

    /// `hashing-v1/<dimension>`: the version changes with any change to the features or the
    /// hash (stored vectors would no longer match new ones).
    fn id(&self) -> String {
        format!("hashing-v{HASHING_VERSION}/{}", self.dim)
    }

    fn vector_weight(&self) -> f32 {
        HASHING_VECTOR_WEIGHT
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dim];
        let mut chars: Vec<char> = Vec::new();
        let mut gram = [0u8; 12];
        for_each_token(text, |word| {
            if STOP_WORDS.binary_search(&word).is_ok() {
                return;
            }
            self.add(&mut v, fnv1a64(word.as_bytes()), 1.0);
            chars.clear();
            chars.push('<');
            chars.extend(word.chars());
            chars.push('>');
            // A word of one or two letters has no trigram of its own beyond the word.
            if chars.len() < 5 {
                return;
            }
            let grams = chars.len() - 2;
            let w = 1.0 / (grams as f32).sqrt();
            for window in chars.windows(3) {
                let mut len = 0;
                for c in window {
                    len += c.encode_utf8(&mut gram[len..]).len();
                }
                // Trigram hashes live apart from word hashes: "<a>" is not the word "a".
                self.add(&mut v, fnv1a64(&gram[..len]) ^ TRIGRAM_SEED, w);
            }
        });
        let norm = crate::index::vector::kernel::dot(&v, &v).sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            v.iter_mut().for_each(|x| *x *= inv);
        }
        v
    }
}

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The SplitMix64 finalizer (Steele et al., 2014): a bijective mixer whose output bits all
/// depend on all input bits, which FNV alone does not give for short keys.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn forms_of_one_word_are_similar_and_function_words_are_ignored() {
        let e = HashingEmbedder::new(384).unwrap();
        let hiking = e.embed("hiking");
        let (hike, swim) = (e.embed("a hike"), e.embed("a swim"));
        assert!(dot(&hiking, &hike) > 0.15, "{}", dot(&hiking, &hike));
        assert!(dot(&hiking, &swim).abs() < 0.05);
        assert!(e.embed("and the of you").iter().all(|&x| x == 0.0));
        // Non-ASCII words get trigrams too, whole characters at a time.
        assert!(dot(&e.embed("Zürich"), &e.embed("zürcher")) > 0.15);
    }

    #[test]
    fn a_batch_embedded_in_parts_on_every_core_keeps_its_order_and_checks() {
        let e = HashingEmbedder::new(64).unwrap();
        // Past two threads' worth, with texts that have nothing to embed among them.
        let owned: Vec<String> = (0..5 * TEXTS_PER_THREAD + 7)
            .map(|i| {
                if i % 9 == 0 {
                    "!!".to_string()
                } else {
                    format!("turn {i} about topic {}", i % 13)
                }
            })
            .collect();
        let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
        let batch = checked_vectors(&e, 64, &texts);
        let one_by_one: Vec<_> = texts.iter().map(|t| checked(e.embed(t), 64)).collect();
        assert_eq!(batch, one_by_one);
        assert!(batch[0].is_none() && batch[1].is_some());
    }

    #[test]
    fn hashing_embedder_is_deterministic_and_unit_length() {
        let e = HashingEmbedder::new(384).unwrap();
        let a = e.embed("I moved to Lisbon in May");
        let b = HashingEmbedder::new(384)
            .unwrap()
            .embed("I moved to Lisbon in May");
        assert_eq!(a, b);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn hashing_embedder_output_is_pinned_across_releases() {
        // Stored embeddings depend on these exact values; a change here breaks existing stores.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // The word and its five trigrams (<he hel ell llo lo>), two of which collide in 8
        // dimensions.
        let v = HashingEmbedder::new(8).unwrap().embed("hello");
        let expected = [
            0.0,
            0.0,
            -0.353_553_38,
            0.0,
            0.353_553_38,
            0.0,
            -0.353_553_38,
            0.790_569_4,
        ];
        for (got, want) in v.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{v:?}");
        }
    }

    #[test]
    fn hashing_embedder_gives_zeros_for_text_without_tokens() {
        let e = HashingEmbedder::new(16).unwrap();
        assert_eq!(e.embed(""), vec![0.0; 16]);
        assert_eq!(e.embed(" -- !? "), vec![0.0; 16]);
    }

    #[test]
    fn hashing_embedder_ignores_case_and_rates_shared_words_as_similar() {
        let e = HashingEmbedder::new(512).unwrap();
        assert_eq!(e.embed("Lisbon Trip"), e.embed("lisbon trip"));
        let a = e.embed("my trip to lisbon in may");
        let b = e.embed("planning a trip to lisbon");
        let c = e.embed("quantum chromodynamics lecture notes");
        assert!(dot(&a, &b) > 0.3, "{}", dot(&a, &b));
        assert!(dot(&a, &b) > dot(&a, &c) + 0.2);
    }

    #[test]
    fn hashing_embedder_rejects_a_zero_dimension() {
        assert!(matches!(
            HashingEmbedder::new(0),
            Err(Error::InvalidConfig(_))
        ));
    }
}
