#!/usr/bin/env bash
# Benchmarks BASE_REF (in a temporary git worktree) and the current checkout (HEAD plus any
# uncommitted changes) one after the other on this machine with the quick profile, then gates
# the result with `bench-gate compare base head`. Works locally and in CI.
# HEAD is saved as baseline `head`, not `new`: Criterion 0.8's `--save-baseline new` copies its
# scratch `new/` directory onto itself and truncates the files.
#
# Usage: scripts/bench-pr.sh BASE_REF [--format text|markdown|json]
# Env:   MEMBENCH_PROFILE (default quick), CARGO_TARGET_DIR (default target/ of this checkout;
#        both sides build there, so dependencies are compiled once), CRITERION_HOME (default
#        $CARGO_TARGET_DIR/criterion), BENCH_ARGS (extra arguments for the Criterion harness,
#        split on spaces), BENCH_GATE_CONFIG (config file), BENCH_CMD (default
#        "cargo bench --workspace --", split on spaces; `--save-baseline NAME` and BENCH_ARGS
#        are appended), BENCH_GATE (a bench-gate binary to use instead of building this one).
# Exit:  bench-gate's code: 0 no regression, 2 regression; 1 for any error (bad arguments, a
#        failed build or benchmark run, a gate error).
set -euo pipefail

usage() {
  echo "usage: $0 BASE_REF [--format text|markdown|json]" >&2
  exit 1
}

(($# >= 1)) || usage
base_ref=$1
shift
format=text
while (($# > 0)); do
  case $1 in
    --format)
      (($# >= 2)) || usage
      format=$2
      shift 2
      ;;
    --format=*)
      format=${1#--format=}
      shift
      ;;
    *)
      echo "$0: unexpected argument: $1" >&2
      usage
      ;;
  esac
done
# Checked now rather than by bench-gate after an hour of benchmarking.
case $format in
  text | markdown | json) ;;
  *)
    echo "$0: unknown format '$format' (text, markdown or json)" >&2
    exit 1
    ;;
esac

# Paths given relative to the caller's directory must survive the `cd` below.
absolute() { if [[ $1 == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$PWD/$1"; fi; }
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then CARGO_TARGET_DIR=$(absolute "$CARGO_TARGET_DIR"); fi
if [[ -n ${CRITERION_HOME:-} ]]; then CRITERION_HOME=$(absolute "$CRITERION_HOME"); fi
config=${BENCH_GATE_CONFIG:+$(absolute "$BENCH_GATE_CONFIG")}
gate=${BENCH_GATE:-}
if [[ $gate == */* ]]; then gate=$(absolute "$gate"); fi

repo=$(git rev-parse --show-toplevel) || {
  echo "$0: not inside a git checkout" >&2
  exit 1
}
cd "$repo"
base_sha=$(git rev-parse --verify --quiet "$base_ref^{commit}") || {
  echo "$0: '$base_ref' is not a commit (fetch it first?)" >&2
  exit 1
}
export MEMBENCH_PROFILE=${MEMBENCH_PROFILE:-quick}
# One target directory for both sides: the base worktree's crates live at another path, so their
# artifacts get other hashes and nothing is rebuilt twice, while dependencies are shared.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
# One Criterion directory for both sides, so both baselines sit side by side (and the HTML
# report in it shows the comparison).
export CRITERION_HOME=${CRITERION_HOME:-$CARGO_TARGET_DIR/criterion}
read -r -a extra <<<"${BENCH_ARGS:-}"
read -r -a bench_cmd <<<"${BENCH_CMD:-cargo bench --workspace --}"

# The gate of this checkout judges both sides; build it first so a broken build fails fast.
if [[ -z $gate ]]; then
  cargo build --quiet --release -p bench-gate >&2 || {
    echo "$0: building bench-gate failed" >&2
    exit 1
  }
  gate=$CARGO_TARGET_DIR/release/bench-gate
fi

mkdir -p "$CRITERION_HOME"
# Results of an earlier invocation would let a benchmark deleted in HEAD pass as present.
find "$CRITERION_HOME" -depth -type d \( -name base -o -name head \) \
  -exec test -f '{}/benchmark.json' ';' -exec rm -rf '{}' ';'

worktree=$(mktemp -d "${TMPDIR:-/tmp}/bench-base.XXXXXX")
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  # Removes exactly this worktree; if it was never registered, the empty directory goes.
  git -C "$repo" worktree remove --force "$worktree" >/dev/null 2>&1 || {
    rm -rf "$worktree"
    git -C "$repo" worktree prune >/dev/null 2>&1 || true
  }
}
trap cleanup EXIT
# An interrupted run (Ctrl-C, a cancelled CI job) still removes the worktree.
trap 'exit 130' INT
trap 'exit 143' TERM
git worktree add --quiet --detach "$worktree" "$base_sha" >&2

bench() { # DIR BASELINE
  echo "== benchmarking $2 in $1 (MEMBENCH_PROFILE=$MEMBENCH_PROFILE)" >&2
  (cd "$1" && "${bench_cmd[@]}" --save-baseline "$2" ${extra[@]+"${extra[@]}"}) >&2 || {
    echo "$0: benchmarking $2 failed" >&2
    exit 1
  }
}

bench "$worktree" base
bench "$repo" head

gate_args=(compare base head --criterion-dir "$CRITERION_HOME" --format "$format")
if [[ -n $config ]]; then gate_args+=(--config "$config"); fi
set +e
"$gate" "${gate_args[@]}"
code=$?
set -e
case $code in
  0 | 2) exit "$code" ;;
  *)
    echo "$0: bench-gate failed (exit $code)" >&2
    exit 1
    ;;
esac
