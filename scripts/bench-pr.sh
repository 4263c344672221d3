#!/usr/bin/env bash
# Benchmarks BASE_REF (in a temporary git worktree) and the current checkout (HEAD plus any
# uncommitted changes) one after the other on this machine with the quick profile, then gates
# the result with `bench-gate compare base head`. Works locally and in CI.
# HEAD is saved as baseline `head`, not `new`: Criterion 0.8's `--save-baseline new` copies its
# scratch `new/` directory onto itself and truncates the files.
#
# Usage: scripts/bench-pr.sh BASE_REF [--format text|markdown|json]
# Env:   CRITERION_HOME (default: target/criterion of this checkout), MEMBENCH_PROFILE (quick),
#        BENCH_ARGS (extra arguments for the Criterion harness), BENCH_GATE_CONFIG (config file),
#        BENCH_CMD (default "cargo bench --workspace --"; the harness arguments are appended).
# Exit:  bench-gate's code: 0 no regression, 2 regression, 1 error (also for failed builds).
set -euo pipefail

if (($# < 1)); then
  echo "usage: $0 BASE_REF [--format text|markdown|json]" >&2
  exit 1
fi
base_ref=$1
shift
format=text
if (($# >= 2)) && [[ $1 == --format ]]; then format=$2; shift 2; fi
if (($# > 0)); then echo "$0: unexpected argument: $1" >&2; exit 1; fi

repo=$(git rev-parse --show-toplevel)
cd "$repo"
base_sha=$(git rev-parse --verify --quiet "$base_ref^{commit}") || {
  echo "$0: '$base_ref' is not a commit (fetch it first?)" >&2
  exit 1
}
export MEMBENCH_PROFILE=${MEMBENCH_PROFILE:-quick}
# One Criterion directory for both sides, so both baselines sit side by side (and the HTML
# report in it shows the comparison).
export CRITERION_HOME=${CRITERION_HOME:-$repo/target/criterion}
mkdir -p "$CRITERION_HOME"
# Results of an earlier invocation would let a benchmark deleted in HEAD pass as present.
find "$CRITERION_HOME" -depth -type d \( -name base -o -name head \) \
  -exec test -f '{}/benchmark.json' ';' -exec rm -rf '{}' ';'
read -r -a extra <<<"${BENCH_ARGS:-}"
read -r -a bench_cmd <<<"${BENCH_CMD:-cargo bench --workspace --}"

worktree=$(mktemp -d "${TMPDIR:-/tmp}/bench-base.XXXXXX")
cleanup() {
  # Deleting the directory and pruning drops exactly this worktree's (now stale) registration.
  rm -rf "$worktree"
  git worktree prune >/dev/null 2>&1 || true
}
trap cleanup EXIT
git worktree add --detach "$worktree" "$base_sha" >&2

bench() { # DIR BASELINE
  echo "== benchmarking $2 in $1 (MEMBENCH_PROFILE=$MEMBENCH_PROFILE)" >&2
  # Each side keeps its own target dir (no rebuild ping-pong); Criterion output goes to the
  # shared CRITERION_HOME.
  (cd "$1" && CARGO_TARGET_DIR="$1/target" "${bench_cmd[@]}" --save-baseline "$2" \
    "${extra[@]}") >&2 || { echo "$0: benchmarking failed for $2" >&2; exit 1; }
}

bench "$worktree" base
bench "$repo" head

# The gate from this checkout judges both sides.
gate_args=(compare base head --criterion-dir "$CRITERION_HOME" --format "$format")
if [[ -n ${BENCH_GATE_CONFIG:-} ]]; then gate_args+=(--config "$BENCH_GATE_CONFIG"); fi
set +e
cargo run --quiet --release -p bench-gate -- "${gate_args[@]}"
code=$?
set -e
exit "$code"
