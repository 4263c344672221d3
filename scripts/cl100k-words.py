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
import re
import sys

MIN_LETTERS = 3  # one or two letters are always one token


def crate_version(path):
    """The version of the tiktoken-rs-X.Y.Z[-pre] directory that holds `assets/<file>`, as a key
    that orders versions by number (a text sort puts 0.9 after 0.10) and a release after its
    pre-releases; None for a directory not named so.

    >>> crate_version("/r/src/i/tiktoken-rs-0.10.0/assets/cl100k_base.tiktoken") > crate_version("/r/src/i/tiktoken-rs-0.9.1/assets/cl100k_base.tiktoken")
    True
    >>> crate_version("/r/tiktoken-rs-1.0.0/assets/f") > crate_version("/r/tiktoken-rs-1.0.0-rc.1/assets/f")
    True
    >>> crate_version("/r/tiktoken-rs-extra/assets/f") is None
    True
    """
    name = os.path.basename(os.path.dirname(os.path.dirname(path)))
    m = re.fullmatch(r"tiktoken-rs-(\d+)\.(\d+)\.(\d+)(?:-(.+))?", name)
    if m is None:
        return None
    return (int(m[1]), int(m[2]), int(m[3]), m[4] is None, m[4] or "")


def vocabulary_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = [p for p in glob.glob(os.path.join(home, "registry/src/*/tiktoken-rs-*/assets/cl100k_base.tiktoken"))
             if crate_version(p) is not None]
    if not found:
        sys.exit("cl100k_base.tiktoken not found in cargo's registry; run `cargo fetch` or pass its path")
    # The newest version by number: sorted text would take 0.9.x over 0.10.x.
    return max(found, key=crate_version)


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
