//! all-MiniLM-L6-v2 sentence embeddings in pure Rust (feature `minilm`): the model's own
//! WordPiece tokenizer, a 6-layer BERT forward pass, mean pooling and L2 normalization, as
//! sentence-transformers computes them. Loads a local model directory; never downloads.
//!
//! Why a hand-written forward pass over `matrixmultiply`, and not candle, `gemm` or the
//! `tokenizers` crate: measured on this project's 2-core machine on 2026-12-01 while other
//! builds ran (load average 5-10), so compare within the table only. Build: clean
//! `cargo build --release` of a scratch crate holding just that stack. Speed: process CPU time
//! per call on one thread, one sentence of ~26 word pieces per call and batches of 32 such
//! sentences, runs interleaved (two rounds each).
//!
//! | stack | build, wall / CPU | 1 sentence | batch of 32, per sentence |
//! |---|---|---|---|
//! | candle-core/nn/transformers 0.11.1 + tokenizers 0.23.2 | 1,752 s / 588 s | 17.7 ms | 10.6 ms (padded) |
//! | safetensors 0.8 + matrixmultiply 0.3 + WordPiece here (this module) | 58 s / 26 s | 16.4 ms | 8.2 ms (packed) |
//! | the same with `gemm` 0.19 (AVX-512 kernels) for matrixmultiply | 124 s / 62 s | 15.4 ms | 7.4 ms |
//! | the same with tokenizers 0.23.2 (+ fancy-regex) for the WordPiece here | ~780 s / ~290 s | - | - |
//!
//! Candle builds for half an hour here (candle-transformers compiles every model it ships)
//! and is not faster; with its default two rayon threads it took more CPU and more wall time
//! on the shared cores. `gemm` wins ~8% of CPU time for twice the build. The `tokenizers`
//! crate does not build without a regex engine and then dominates the build, so the tokenizer
//! is written here (`wordpiece.rs`) and checked against the reference ids (the fixture; and,
//! once, 9,085 strings covering every code point up to U+2FFFF: no difference). tract-onnx was
//! not tried: it needs an ONNX export, and the model ships as safetensors. In memory-core's own
//! release build the feature's crates take ~46 s of the ~656 s summed crate time (cargo
//! `--timings`, same load). `examples/embed_speed.rs` measures this module.

mod bert;
mod wordpiece;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use self::bert::{BertConfig, BertModel};
use self::wordpiece::WordPiece;
use super::Embedder;
use crate::error::{Error, Result};

/// all-MiniLM-L6-v2's `max_seq_length` (its `sentence_bert_config.json`), used when a model
/// directory has no such file; `tokenizer.json` says 128, but sentence-transformers passes its
/// own limit.
const DEFAULT_MAX_SEQ_LENGTH: usize = 256;

/// Tokens per forward pass of [`MiniLmEmbedder::embed_batch`]: a batch is cut into passes of at
/// most this many tokens so activations stay near 30 MB however many texts come in. Larger
/// passes would gain nothing: matrixmultiply's throughput is flat past a few hundred rows
/// (measured here: 52 GFLOP/s at 256 rows, 55 at 1,024, 18 at 17).
const TOKENS_PER_PASS: usize = 2048;

/// A sentence embedder running all-MiniLM-L6-v2 (or another BERT sentence-transformers model
/// with mean pooling) on the CPU, from a local directory in the Hugging Face layout:
/// `config.json`, `tokenizer.json`, `model.safetensors`, and optionally
/// `sentence_bert_config.json` (maximum sequence length) and `1_Pooling/config.json` (checked to
/// be mean pooling).
///
/// Vectors match sentence-transformers' `encode` (cosine >= 0.999 in the tests, in practice
/// 1 - 1e-7): texts are cut at 256 word pieces, every text embeds to a unit vector, the empty
/// one included (the model still sees `[CLS] [SEP]`). Weights take about 90 MB of RAM. A short
/// sentence costs 15-25 ms of one core on a shared 2-core machine, a sentence in a batch about
/// half that ([`embed_batch`](Embedder::embed_batch) shares each weight matrix across the
/// batch). Calls run on the calling thread; the embedder is `Sync`, so threads can share one
/// (the store cuts a batch of 64 texts or more into parts embedded on every core).
///
/// ```no_run
/// use memory_core::{Embedder, MiniLmEmbedder};
///
/// let minilm = MiniLmEmbedder::load("target/models/all-MiniLM-L6-v2")?;
/// let v = minilm.embed("I moved to Lisbon in May");
/// assert_eq!(v.len(), 384);
/// let batch = minilm.embed_batch(&["my sister lives in Porto", "where does Ana live?"]);
/// assert_eq!(batch.len(), 2);
/// # Ok::<(), memory_core::Error>(())
/// ```
pub struct MiniLmEmbedder {
    model: BertModel,
    tokenizer: WordPiece,
    max_seq_length: usize,
    dir: PathBuf,
    /// [`Embedder::id`].
    id: String,
}

impl fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("dir", &self.dir)
            .field("dimension", &self.model.hidden_size())
            .field("max_seq_length", &self.max_seq_length)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl MiniLmEmbedder {
    /// Loads the model in `dir`. Errors ([`Error::Model`], naming the file): the directory or a
    /// required file is missing, a file is not valid JSON or safetensors, the weights do not have
    /// the shapes `config.json` implies (another dimension or depth), or the model needs
    /// something this implementation does not do (another tokenizer, activation or pooling).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(model_error(
                dir,
                "no such directory (fetch the model with scripts/fetch-minilm.sh, or point to a \
                 copy with config.json, tokenizer.json and model.safetensors)",
            ));
        }
        let config_path = dir.join("config.json");
        let config: BertConfig = parse_json(&config_path, &read_text(&config_path)?)?;
        config
            .validate()
            .map_err(|detail| model_error(&config_path, detail))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_text = read_text(&tokenizer_path)?;
        let tokenizer = WordPiece::from_json(&tokenizer_text)
            .map_err(|detail| model_error(&tokenizer_path, detail))?;
        if tokenizer.max_id() as usize >= config.vocab_size {
            return Err(model_error(
                &tokenizer_path,
                format!(
                    "token id {} is outside the model's vocabulary of {} (config.json)",
                    tokenizer.max_id(),
                    config.vocab_size
                ),
            ));
        }

        let max_seq_length = read_max_seq_length(dir)?;
        if max_seq_length < 2 || max_seq_length > config.max_position_embeddings {
            return Err(model_error(
                &dir.join("sentence_bert_config.json"),
                format!(
                    "max_seq_length {max_seq_length} is not in 2..={} (max_position_embeddings)",
                    config.max_position_embeddings
                ),
            ));
        }
        check_pooling(dir)?;

        let weights_path = dir.join("model.safetensors");
        let bytes = std::fs::read(&weights_path).map_err(|e| read_error(&weights_path, e))?;
        let weights = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            model_error(&weights_path, format!("not a valid safetensors file: {e}"))
        })?;
        let model = BertModel::load(&config, &weights)
            .map_err(|detail| model_error(&weights_path, detail))?;
        debug_assert!(model.vocab_size() > tokenizer.max_id() as usize);
        debug_assert!(model.max_positions() >= max_seq_length);
        // What the vectors depend on: the weights, the vocabulary and the truncation.
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes);
        hasher.update(tokenizer_text.as_bytes());
        hasher.update(&(max_seq_length as u64).to_le_bytes());
        let id = format!("bert-mean/{}/{:08x}", config.hidden_size, hasher.finalize());
        Ok(MiniLmEmbedder {
            model,
            tokenizer,
            max_seq_length,
            dir: dir.to_path_buf(),
            id,
        })
    }

    /// The word-piece ids the model sees for `text`, `[CLS]` and `[SEP]` included, after
    /// truncation to [`max_seq_length`](Self::max_seq_length).
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, self.max_seq_length)
    }

    /// The most word pieces (with `[CLS]` and `[SEP]`) a text is cut to: 256 for
    /// all-MiniLM-L6-v2.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }
}

/// [`Embedder::vector_weight`] of [`MiniLmEmbedder`].
pub const MINILM_VECTOR_WEIGHT: f32 = 0.7;

impl Embedder for MiniLmEmbedder {
    fn dimension(&self) -> usize {
        self.model.hidden_size()
    }

    /// `bert-mean/<dimension>/<checksum>`: a CRC-32 of the weights, the vocabulary and
    /// `max_seq_length`, so that another model is another embedder wherever its directory is,
    /// and a copy of this one is this one. The checksum is computed at load: about 7 ms over
    /// all-MiniLM-L6-v2's 91 MB of weights, in a load of 210-250 ms (measured on this project's
    /// 2-core machine).
    fn id(&self) -> String {
        self.id.clone()
    }

    /// Chosen with `examples/fusion_sweep.rs`: on both datasets measured (the generated
    /// conversations and CRI's persona conversation) MiniLM's ranking alone beats BM25's, and
    /// min-max fusion with 0.7 on the vectors beat 0.5 and 0.6 on every metric. (0.8 does better
    /// still on the generated set, whose questions paraphrase their evidence by design; on
    /// conversations whose questions reuse their evidence's words BM25 is the stronger signal,
    /// so the weight stays below what this one set favours, and the per-query standout weighting
    /// moves it toward BM25 where a query's keyword leader is clear.)
    fn vector_weight(&self) -> f32 {
        MINILM_VECTOR_WEIGHT
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut vectors = self.model.embed_packed(&[self.token_ids(text)]);
        vectors.pop().unwrap_or_else(|| vec![0.0; self.dimension()])
    }

    /// Texts are packed into passes of up to 2,048 tokens, in order, without padding: sorting
    /// by length buys nothing when no pass pads.
    fn embed_batch(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let mut vectors = Vec::with_capacity(texts.len());
        let mut pass: Vec<Vec<u32>> = Vec::new();
        let mut pass_tokens = 0;
        for text in texts {
            let ids = self.token_ids(text);
            if !pass.is_empty() && pass_tokens + ids.len() > TOKENS_PER_PASS {
                vectors.extend(self.model.embed_packed(&pass));
                pass.clear();
                pass_tokens = 0;
            }
            pass_tokens += ids.len();
            pass.push(ids);
        }
        if !pass.is_empty() {
            vectors.extend(self.model.embed_packed(&pass));
        }
        vectors
    }
}

fn model_error(path: &Path, detail: impl Into<String>) -> Error {
    Error::Model {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        model_error(path, "file is missing")
    } else {
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
    String::from_utf8(bytes).map_err(|e| model_error(path, format!("not UTF-8 text: {e}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| model_error(path, format!("invalid: {e}")))
}

/// `max_seq_length` from `sentence_bert_config.json`, or the default when the file is absent.
fn read_max_seq_length(dir: &Path) -> Result<usize> {
    let path = dir.join("sentence_bert_config.json");
    if !path.exists() {
        return Ok(DEFAULT_MAX_SEQ_LENGTH);
    }
    let config: SentenceBertConfig = parse_json(&path, &read_text(&path)?)?;
    Ok(config.max_seq_length)
}

/// Mean pooling is the only pooling implemented; a model directory that says otherwise is
/// refused rather than embedded differently from its reference.
fn check_pooling(dir: &Path) -> Result<()> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.exists() {
        return Ok(());
    }
    let pooling: PoolingConfig = parse_json(&path, &read_text(&path)?)?;
    let others = pooling.pooling_mode_cls_token
        || pooling.pooling_mode_max_tokens
        || pooling.pooling_mode_mean_sqrt_len_tokens;
    if !pooling.pooling_mode_mean_tokens || others {
        return Err(model_error(
            &path,
            "only mean pooling (pooling_mode_mean_tokens alone) is supported",
        ));
    }
    Ok(())
}
