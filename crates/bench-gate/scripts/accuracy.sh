#!/usr/bin/env bash
# Measures the gate's accuracy on this machine with real Criterion runs of the fixture bench:
# one reference run, RUNS same-code runs (any "regressed" is a false regression), and SLOW_RUNS
# runs with SLOW_ID slowed by SLOWDOWN (caught when that benchmark is "regressed"). Every run is
# compared with the reference under each config in CONFIGS ("default" = the built-in defaults).
# Usage: crates/bench-gate/scripts/accuracy.sh [extra criterion args, e.g. --sample-size 50]
#   env: RUNS=10 SLOW_RUNS=10 SLOWDOWN=1.10 SLOW_ID=latency/fixture/spin_small
#        FIXTURE_CLOCK=wall|cpu  CONFIGS="default path/to/other.toml"
set -euo pipefail
crate=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$crate/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-10}
slow_runs=${SLOW_RUNS:-10}
slowdown=${SLOWDOWN:-1.10}
slow_id=${SLOW_ID:-latency/fixture/spin_small}
configs=${CONFIGS:-default}
export FIXTURE_CLOCK=${FIXTURE_CLOCK:-wall}
command -v jq >/dev/null || { echo "accuracy.sh needs jq" >&2; exit 1; }

cargo build --release -p bench-gate --example fixture_bench --bin bench-gate \
  --manifest-path "$root/Cargo.toml" >&2
bench=$target/release/examples/fixture_bench
gate=$target/release/bench-gate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
crit_args=("$@")

run() { # NAME [VAR=VALUE ...]
  local name=$1
  shift
  env "$@" CRITERION_HOME="$work/c" "$bench" --bench --save-baseline "$name" "${crit_args[@]}" \
    >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
}

rows() { # CONFIG BASE NEW -> "id verdict change [lower, upper]" per benchmark
  local args=(compare "$2" "$3" --criterion-dir "$work/c" --format json)
  [[ $1 == default ]] || args+=(--config "$1")
  # Run from the scratch dir so the built-in defaults are not replaced by a repo bench-gate.toml.
  (cd "$work" && "$gate" "${args[@]}") | jq -r '(.benchmarks[] | "\(.id) \(.verdict) \(.change.point_pct // 0 | .*10|round/10)% [\(.change.lower_pct // 0 | .*10|round/10), \(.change.upper_pct // 0 | .*10|round/10)]"), (.warnings[] | "warning: \(.)")' || true
}

echo "# accuracy $(date -u +%FT%TZ) clock=$FIXTURE_CLOCK load=$(cut -d' ' -f1-3 /proc/loadavg) criterion args: ${crit_args[*]:-(fixture defaults)}"
run ref
for i in $(seq 1 "$runs"); do run "same$i"; done
for i in $(seq 1 "$slow_runs"); do run "slow$i" FIXTURE_SLOW="$slow_id=$slowdown"; done
echo "# runs done $(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg)"

for config in $configs; do
  echo "## config: $config"
  false_runs=0
  false_rows=0
  for i in $(seq 1 "$runs"); do
    out=$(rows "$config" ref "same$i")
    n=$(grep -v '^warning' <<<"$out" | grep -c ' regressed ' || true)
    if ((n > 0)); then false_runs=$((false_runs + 1)); false_rows=$((false_rows + n)); fi
    echo "same$i: $(tr '\n' ';' <<<"$out")"
  done
  caught=0
  for i in $(seq 1 "$slow_runs"); do
    out=$(rows "$config" ref "slow$i")
    line="$(grep "^$slow_id " <<<"$out" || true) $(grep -c '^warning' <<<"$out" || true) warning(s)"
    others=$(grep -v "^$slow_id " <<<"$out" | grep -v '^warning' | grep -c ' regressed ' || true)
    if grep -q ' regressed ' <<<"$line"; then caught=$((caught + 1)); fi
    echo "slow$i: $line (other benchmarks regressed: $others)"
  done
  echo "RESULT [$config] same-code runs with a false regression: $false_runs/$runs (false regressed rows: $false_rows)"
  echo "RESULT [$config] ${slowdown}x slowdown of $slow_id caught as regressed: $caught/$slow_runs"
done
