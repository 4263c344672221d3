#!/usr/bin/env python3
"""Checks files of a directory against recorded sha256 digests.

Usage: check-sha256.py DIR NAME SHA256 [NAME SHA256 ...]

Prints nothing when every NAME in DIR has its SHA256; else prints one line naming the first
file that is missing or different. Exits 0 either way (2 on bad usage), so that a caller can
tell "verified" (empty output) from "fetch again" (a reason) with set -e in force. Used by
fetch-datasets.sh and fetch-minilm.sh.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> with open(os.path.join(d, "a"), "wb") as f: _ = f.write(b"x")
>>> problem(d, [("a", hashlib.sha256(b"x").hexdigest())]) is None
True
>>> problem(d, [("a", "0" * 64)]).endswith("expected " + "0" * 64)
True
>>> problem(d, [("b", "0" * 64)]).endswith("b is missing")
True
"""
import hashlib
import sys
from pathlib import Path


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def problem(directory, expected):
    """The first file of `expected` ((name, sha256) pairs) missing or different in `directory`."""
    for name, want in expected:
        p = Path(directory) / name
        if not p.is_file():
            return f"{p} is missing"
        got = digest(p)
        if got != want:
            return f"{p} has sha256 {got}, expected {want}"
    return None


def main(argv):
    if len(argv) < 4 or len(argv) % 2 != 0:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    found = problem(argv[1], list(zip(argv[2::2], argv[3::2])))
    if found:
        print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
