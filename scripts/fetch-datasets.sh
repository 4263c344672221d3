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
# again: the wheels are downloaded once (pip checks their hashes), the JSON files are rebuilt
# (deterministically). Then:
#
#   MEMBENCH_LOCOMO=target/datasets/cri.json,target/datasets/cri-chitchat.json \
#       cargo bench --bench quality
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${MEMBENCH_DATASETS:-$root/target/datasets}
wheels=$out/wheels
cri_wheel=$wheels/cri_benchmark-0.1.2-py3-none-any.whl
chitchat_wheel=$wheels/chitchat_dataset-0.9.0-py3-none-any.whl

die() { echo "fetch-datasets: error: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed"
python3 -m pip --version >/dev/null 2>&1 || die "pip is not available (python3 -m pip)"
mkdir -p "$wheels" || die "cannot create $wheels"

if [[ -f $cri_wheel && -f $chitchat_wheel ]]; then
    echo "fetch-datasets: wheels already in $wheels"
else
    echo "fetch-datasets: downloading cri-benchmark 0.1.2 and chitchat-dataset 0.9.0 into $wheels"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" \
        cri-benchmark==0.1.2 chitchat-dataset==0.9.0 ||
        die "pip download failed (is the Python package registry reachable?)"
    [[ -f $cri_wheel ]] || die "pip did not produce $cri_wheel"
    [[ -f $chitchat_wheel ]] || die "pip did not produce $chitchat_wheel"
fi

python3 "$root/scripts/convert-cri.py" "$cri_wheel" -o "$out/cri.json"
python3 "$root/scripts/convert-chitchat.py" "$chitchat_wheel" -o "$out/chitchat.json"
python3 "$root/scripts/convert-chitchat.py" "$chitchat_wheel" --distract "$out/cri.json" \
    -o "$out/cri-chitchat.json"

echo "fetch-datasets: done. Run:"
echo "  MEMBENCH_LOCOMO=$out/cri.json,$out/cri-chitchat.json cargo bench --bench quality"
