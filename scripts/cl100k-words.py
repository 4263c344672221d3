#!/usr/bin/env python3
"""Writes crates/memory-core/src/cl100k_words.txt: the ASCII words of 3+ letters that OpenAI's
cl100k_base vocabulary holds as one token, read by the heuristic token counter
(`HeuristicCounter`) so that a common word costs 1 token instead of a rate per letter.

Each line is `word<TAB>forms`: forms 1 = one token after a space (" word", how a word inside
a sentence is split off), 2 = one token on its own ("word", at the start of a text or after a
symbol), 3 = both. Words with neither form are not listed.

The vocabulary is the file tiktoken-rs ships (`assets/cl100k_base.tiktoken`, MIT, from OpenAI's
tiktoken): `scripts/cl100k-words.py [PATH]`; without PATH it is looked up in cargo's registry
(`cargo fetch` puts it there when the `cl100k` feature's dependency is resolved).
"""
import base64
import glob
import os
import sys

MIN_LETTERS = 3  # one or two letters are always one token


def vocabulary_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = sorted(glob.glob(os.path.join(home, "registry/src/*/tiktoken-rs-*/assets/cl100k_base.tiktoken")))
    if not found:
        sys.exit("cl100k_base.tiktoken not found in cargo's registry; run `cargo fetch` or pass its path")
    return found[-1]


def main():
    path = vocabulary_path()
    forms = {}
    with open(path, "rb") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue
            token = base64.b64decode(parts[0])
            spaced = token.startswith(b" ")
            word = token[1:] if spaced else token
            if len(word) < MIN_LETTERS or not (word.isascii() and word.isalpha()):
                continue
            word = word.decode("ascii")
            forms[word] = forms.get(word, 0) | (1 if spaced else 2)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "crates/memory-core/src/cl100k_words.txt")
    with open(out, "w") as f:
        for word in sorted(forms):
            f.write(f"{word}\t{forms[word]}\n")
    print(f"{len(forms)} words from {path} -> {out}")


if __name__ == "__main__":
    main()
