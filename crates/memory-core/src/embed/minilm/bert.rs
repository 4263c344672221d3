//! The BERT encoder's forward pass (inference only) over f32 weights read from safetensors, with
//! matrix products by `matrixmultiply`. Sequences of a batch are packed one after another instead
//! of padded: the linear layers run over all their tokens at once and attention runs per
//! sequence, which is what the padding mask of a padded batch computes, without the padding.

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

/// The fields of a Hugging Face BERT `config.json` the forward pass needs.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
}

impl BertConfig {
    /// Rejects configurations this forward pass would compute differently from the reference.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(kind) = self.model_type.as_deref().filter(|k| *k != "bert") {
            return Err(format!(
                "model_type {kind:?} is not supported (only \"bert\")"
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                self.hidden_act
            ));
        }
        if let Some(kind) = self
            .position_embedding_type
            .as_deref()
            .filter(|k| *k != "absolute")
        {
            return Err(format!(
                "position_embedding_type {kind:?} is not supported (only \"absolute\")"
            ));
        }
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(format!(
                "layer_norm_eps {} is not a positive number",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }
}

/// A tensor's values after checking its type and shape against what `config.json` implies: a
/// mismatch means the weights belong to another model (another dimension, another depth).
fn tensor(weights: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
    let view = weights
        .tensor(name)
        .map_err(|_| format!("tensor {name} is missing"))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!(
            "tensor {name} is {:?}; only F32 weights are supported",
            view.dtype()
        ));
    }
    if view.shape() != shape {
        return Err(format!(
            "tensor {name} has shape {:?}, but config.json implies {shape:?}",
            view.shape()
        ));
    }
    // Copied out rather than borrowed: the file's byte buffer need not be 4-byte aligned.
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // A damaged file would otherwise surface as NaN embeddings long after loading.
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "tensor {name} holds a non-finite value ({}) at index {index}",
            values[index]
        ));
    }
    Ok(values)
}

/// `y = x W^T + b`, with `W` as stored by PyTorch (`outputs x inputs`, row-major).
#[derive(Debug)]
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    fn load(
        w: &SafeTensors<'_>,
        prefix: &str,
        outputs: usize,
        inputs: usize,
    ) -> Result<Self, String> {
        Ok(Linear {
            weight: tensor(w, &format!("{prefix}.weight"), &[outputs, inputs])?,
            bias: tensor(w, &format!("{prefix}.bias"), &[outputs])?,
            inputs,
            outputs,
        })
    }

    /// One layer whose outputs are those of `parts` side by side (query, key and value in one
    /// product instead of three).
    fn stack(parts: [Linear; 3]) -> Linear {
        Linear {
            inputs: parts[0].inputs,
            outputs: parts.iter().map(|p| p.outputs).sum(),
            weight: parts
                .iter()
                .flat_map(|p| p.weight.iter().copied())
                .collect(),
            bias: parts.iter().flat_map(|p| p.bias.iter().copied()).collect(),
        }
    }

    /// `out[rows x outputs] = x[rows x inputs] W^T + b`.
    fn forward(&self, x: &[f32], out: &mut [f32]) {
        let rows = x.len() / self.inputs;
        assert_eq!(x.len(), rows * self.inputs, "input is not whole rows");
        assert_eq!(out.len(), rows * self.outputs, "output is not whole rows");
        for row in out.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        let w = Matrix::transposed(&self.weight, self.outputs, self.inputs);
        matmul(
            1.0,
            Matrix::rows(x, rows, self.inputs),
            w,
            1.0,
            out,
            self.outputs,
        );
    }
}

#[derive(Debug)]
struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(w: &SafeTensors<'_>, prefix: &str, width: usize, eps: f32) -> Result<Self, String> {
        Ok(LayerNorm {
            weight: tensor(w, &format!("{prefix}.weight"), &[width])?,
            bias: tensor(w, &format!("{prefix}.bias"), &[width])?,
            eps,
        })
    }

    /// Normalizes each row of `x` in place (biased variance, as PyTorch).
    fn apply(&self, x: &mut [f32]) {
        let width = self.weight.len();
        for row in x.chunks_exact_mut(width) {
            let mean = row.iter().sum::<f32>() / width as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

#[derive(Debug)]
struct EncoderLayer {
    qkv: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A BERT encoder with its weights in RAM (about 90 MB for all-MiniLM-L6-v2).
#[derive(Debug)]
pub(crate) struct BertModel {
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Row 0 of the token type embeddings: every token of a single sentence has type 0.
    token_type_embedding: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    vocab_size: usize,
    max_positions: usize,
}

impl BertModel {
    /// Reads every weight of `config`'s shape from `weights`; `config` must be validated.
    pub(crate) fn load(config: &BertConfig, weights: &SafeTensors<'_>) -> Result<Self, String> {
        let h = config.hidden_size;
        let eps = config.layer_norm_eps as f32;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let attention =
                |part: &str| Linear::load(weights, &format!("{p}.attention.{part}"), h, h);
            layers.push(EncoderLayer {
                qkv: Linear::stack([
                    attention("self.query")?,
                    attention("self.key")?,
                    attention("self.value")?,
                ]),
                attention_output: attention("output.dense")?,
                attention_norm: LayerNorm::load(
                    weights,
                    &format!("{p}.attention.output.LayerNorm"),
                    h,
                    eps,
                )?,
                intermediate: Linear::load(
                    weights,
                    &format!("{p}.intermediate.dense"),
                    config.intermediate_size,
                    h,
                )?,
                output: Linear::load(
                    weights,
                    &format!("{p}.output.dense"),
                    h,
                    config.intermediate_size,
                )?,
                output_norm: LayerNorm::load(weights, &format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        let token_types = tensor(
            weights,
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        Ok(BertModel {
            word_embeddings: tensor(
                weights,
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, h],
            )?,
            position_embeddings: tensor(
                weights,
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type_embedding: token_types[..h].to_vec(),
            embedding_norm: LayerNorm::load(weights, "embeddings.LayerNorm", h, eps)?,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: config.intermediate_size,
            vocab_size: config.vocab_size,
            max_positions: config.max_position_embeddings,
        })
    }

    pub(crate) fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub(crate) fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The mean over its tokens of each sequence's last hidden states, L2-normalized: the
    /// sentence-transformers pipeline Transformer -> Pooling(mean) -> Normalize. Every id must
    /// be below the vocabulary size and every sequence non-empty and at most `max_positions`
    /// long (the tokenizer guarantees both).
    pub(crate) fn embed_packed(&self, sequences: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let hidden = self.forward_packed(sequences);
        let h = self.hidden;
        let mut start = 0;
        sequences
            .iter()
            .map(|seq| {
                let mut pooled = vec![0.0f32; h];
                for row in hidden[start * h..(start + seq.len()) * h].chunks_exact(h) {
                    pooled.iter_mut().zip(row).for_each(|(p, x)| *p += x);
                }
                start += seq.len();
                // The division by the token count of the mean cancels in the normalization.
                let norm = pooled.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 0.0 {
                    pooled.iter_mut().for_each(|x| *x /= norm);
                }
                pooled
            })
            .collect()
    }

    /// Last hidden states of the packed sequences, `[total tokens x hidden]`.
    fn forward_packed(&self, sequences: &[Vec<u32>]) -> Vec<f32> {
        let h = self.hidden;
        let rows: usize = sequences.iter().map(Vec::len).sum();
        let longest = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut x = Vec::with_capacity(rows * h);
        for seq in sequences {
            for (position, &id) in seq.iter().enumerate() {
                let id = id as usize;
                let word = &self.word_embeddings[id * h..(id + 1) * h];
                let pos = &self.position_embeddings[position * h..(position + 1) * h];
                x.extend(
                    word.iter()
                        .zip(pos)
                        .zip(&self.token_type_embedding)
                        .map(|((w, p), t)| w + p + t),
                );
            }
        }
        self.embedding_norm.apply(&mut x);

        let mut qkv = vec![0.0f32; rows * 3 * h];
        let mut context = vec![0.0f32; rows * h];
        let mut scratch = vec![0.0f32; rows * h];
        let mut inner = vec![0.0f32; rows * self.intermediate];
        let mut scores = vec![0.0f32; longest * longest];
        for layer in &self.layers {
            layer.qkv.forward(&x, &mut qkv);
            let mut start = 0;
            for seq in sequences {
                let n = seq.len();
                self.attend(
                    &qkv[start * 3 * h..(start + n) * 3 * h],
                    &mut scores[..n * n],
                    &mut context[start * h..(start + n) * h],
                );
                start += n;
            }
            layer.attention_output.forward(&context, &mut scratch);
            scratch.iter_mut().zip(&x).for_each(|(s, x)| *s += x);
            layer.attention_norm.apply(&mut scratch);
            std::mem::swap(&mut x, &mut scratch);

            layer.intermediate.forward(&x, &mut inner);
            inner.iter_mut().for_each(|v| *v = gelu(*v));
            layer.output.forward(&inner, &mut scratch);
            scratch.iter_mut().zip(&x).for_each(|(s, x)| *s += x);
            layer.output_norm.apply(&mut scratch);
            std::mem::swap(&mut x, &mut scratch);
        }
        x
    }

    /// Multi-head self-attention of one sequence: `qkv` holds its `n` rows of
    /// `[query | key | value]`, `context` receives its `n` rows of heads side by side.
    fn attend(&self, qkv: &[f32], scores: &mut [f32], context: &mut [f32]) {
        let h = self.hidden;
        let n = context.len() / h;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        for head in 0..self.heads {
            let q = &qkv[head * d..];
            let k = &qkv[h + head * d..];
            let v = &qkv[2 * h + head * d..];
            // scores = Q K^T / sqrt(d): K's rows read as columns.
            let keys = Matrix {
                data: k,
                rows: d,
                cols: n,
                row_stride: 1,
                col_stride: 3 * h,
            };
            let queries = Matrix {
                data: q,
                rows: n,
                cols: d,
                row_stride: 3 * h,
                col_stride: 1,
            };
            matmul(scale, queries, keys, 0.0, scores, n);
            for row in scores.chunks_exact_mut(n) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for s in row.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|s| *s *= inv);
            }
            let probabilities = Matrix::rows(scores, n, n);
            let values = Matrix {
                data: v,
                rows: n,
                cols: d,
                row_stride: 3 * h,
                col_stride: 1,
            };
            matmul(1.0, probabilities, values, 0.0, &mut context[head * d..], h);
        }
    }
}

/// GELU with the exact error function, as BERT's `"gelu"` (not the tanh approximation).
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// A strided read-only view of a row-major buffer.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Matrix {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of the row-major `rows x cols` matrix in `data`.
    fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Matrix {
            data,
            rows: cols,
            cols: rows,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// One past the largest index the view reads (0 when empty).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `c = alpha a b + beta c`, where `c` is row-major with row stride `c_stride` and `a.cols`
/// equals `b.rows`. The bounds are checked here, so the unsafe call reads and writes only inside
/// the slices.
fn matmul(alpha: f32, a: Matrix<'_>, b: Matrix<'_>, beta: f32, c: &mut [f32], c_stride: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert!(
        a.extent() <= a.data.len() && b.extent() <= b.data.len(),
        "operand out of bounds"
    );
    let c_extent = Matrix {
        data: &[],
        rows: a.rows,
        cols: b.cols,
        row_stride: c_stride,
        col_stride: 1,
    }
    .extent();
    assert!(
        c_extent <= c.len() && b.cols <= c_stride,
        "result out of bounds"
    );
    if a.rows == 0 || b.cols == 0 {
        return;
    }
    // SAFETY: the asserts above keep every element sgemm reads inside `a.data` and `b.data` and
    // every element it writes inside `c`; rows of `c` do not overlap (b.cols <= c_stride). The
    // strides fit in isize because they index into slices.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            c_stride as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_multiplies_strided_views_like_the_naive_product() {
        // a: 2x3, b: 3x2 read through a transposed view of a 2x3 buffer.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [1.0, 0.0, -1.0, 2.0, 1.0, 0.5];
        let mut c = [10.0, 10.0, 0.0, 10.0, 10.0, 0.0];
        matmul(
            2.0,
            Matrix::rows(&a, 2, 3),
            Matrix::transposed(&bt, 2, 3),
            1.0,
            &mut c,
            3,
        );
        // a b = [[1-3, 2+2+1.5], [4-6, 8+5+3]] = [[-2, 5.5], [-2, 16]]
        assert_eq!(c, [6.0, 21.0, 0.0, 6.0, 42.0, 0.0]);
    }

    #[test]
    fn gelu_matches_the_erf_definition_at_known_points() {
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-1.0) + 0.158_655_3).abs() < 1e-6);
    }
}
