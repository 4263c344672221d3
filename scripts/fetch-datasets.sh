#!/usr/bin/env bash
# Fetches two permissively licensed conversation datasets from the Python package registry and
# converts them to LoCoMo JSON for the quality benchmark (benches/quality.rs):
#
#   cri-benchmark 0.1.2 (MIT)     -> cri.json           (1 conversation, 2,862 turns, 40 questions)
#   chitchat-dataset 0.9.0 (MIT)  -> chitchat.json      (7,168 real chats, no questions)
#                                 -> cri-chitchat.json  (cri with a chit-chat session after each
#                                                        of its sessions, as distractors)
#
# Everything goes to target/datasets/ (or $MEMBENCH_DATASETS); nothing is committed. Safe to run
# again: the wheels are downloaded once, and on every run, kept ones included, each is checked
# against the sha256 recorded below (a changed upload or a damaged file is refused; a kept file
# that differs is downloaded again); the JSON files are rebuilt (deterministically). Then:
#
#   MEMBENCH_LOCOMO=target/datasets/cri.json,target/datasets/cri-chitchat.json \
#       cargo bench --bench quality
set -euo pipefail

# The pinned wheels and their sha256 (of the files the registry serves for these versions).
CRI_WHEEL=cri_benchmark-0.1.2-py3-none-any.whl
CRI_WHEEL_SHA256=0fbbe852a4bfe0032649bc7142a41bb54ae451e827174b9d142be45db87d88c2
CHITCHAT_WHEEL=chitchat_dataset-0.9.0-py3-none-any.whl
CHITCHAT_WHEEL_SHA256=7bf89f36645e2d5ec87d53370c8e851b5a688479c7beb7079cb4c87fc5acea3e

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${MEMBENCH_DATASETS:-$root/target/datasets}
wheels=$out/wheels
cri_wheel=$wheels/$CRI_WHEEL
chitchat_wheel=$wheels/$CHITCHAT_WHEEL

die() { echo "fetch-datasets: error: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed"
mkdir -p "$wheels" || die "cannot create $wheels"

# Prints nothing when both wheels in directory "$1" have their recorded sha256; else names the
# first missing or different one.
check_wheels() {
    python3 -B "$root/scripts/check-sha256.py" "$1" \
        "$CRI_WHEEL" "$CRI_WHEEL_SHA256" "$CHITCHAT_WHEEL" "$CHITCHAT_WHEEL_SHA256"
}

problem=$(check_wheels "$wheels")
if [[ -z $problem ]]; then
    echo "fetch-datasets: wheels already in $wheels (sha256 verified)"
else
    [[ $problem == *" is missing" ]] || echo "fetch-datasets: $problem; downloading it again"
    python3 -m pip --version >/dev/null 2>&1 || die "pip is not available (python3 -m pip)"
    # Downloaded beside the kept wheels and moved into place only once verified.
    work=$(mktemp -d "$wheels/.download.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    echo "fetch-datasets: downloading cri-benchmark 0.1.2 and chitchat-dataset 0.9.0 into $wheels"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
        cri-benchmark==0.1.2 chitchat-dataset==0.9.0 ||
        die "pip download failed (is the Python package registry reachable?)"
    problem=$(check_wheels "$work")
    [[ -z $problem ]] || die "the downloaded wheels do not have the recorded hashes: $problem"
    mv -f "$work/$CRI_WHEEL" "$cri_wheel"
    mv -f "$work/$CHITCHAT_WHEEL" "$chitchat_wheel"
fi

python3 "$root/scripts/convert-cri.py" "$cri_wheel" -o "$out/cri.json"
python3 "$root/scripts/convert-chitchat.py" "$chitchat_wheel" -o "$out/chitchat.json"
python3 "$root/scripts/convert-chitchat.py" "$chitchat_wheel" --distract "$out/cri.json" \
    -o "$out/cri-chitchat.json"

echo "fetch-datasets: done. Run:"
echo "  MEMBENCH_LOCOMO=$out/cri.json,$out/cri-chitchat.json cargo bench --bench quality"
