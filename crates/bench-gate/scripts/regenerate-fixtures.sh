#!/usr/bin/env bash
# Regenerates crates/bench-gate/tests/fixtures/criterion from real Criterion runs of
# examples/fixture_bench.rs, one run per baseline, each with a known injected change.
# Usage: crates/bench-gate/scripts/regenerate-fixtures.sh   (from anywhere in the repo)
set -euo pipefail
crate=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$crate/../.." && pwd)
out=$crate/tests/fixtures/criterion
target=${CARGO_TARGET_DIR:-$root/target}

cargo build --release -p bench-gate --example fixture_bench --manifest-path "$root/Cargo.toml"
bin=$target/release/examples/fixture_bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$tmp.log"' EXIT

run() { # NAME [VAR=VALUE ...]
  local name=$1
  shift
  echo "fixture baseline '$name' $*" >&2
  env "$@" CRITERION_HOME="$tmp" "$bin" --bench --save-baseline "$name" >"$tmp.log" 2>&1 \
    || { cat "$tmp.log" >&2; exit 1; }
}

run base
run same
run slow25 FIXTURE_SLOW=latency/fixture/spin_small=1.25
run fast30 FIXTURE_SLOW=latency/fixture/spin_large=0.70
run tput_drop FIXTURE_SLOW=throughput/fixture/batch/64=1.25
run fat FIXTURE_SLOW=footprint/fixture/strings/1000=1.5

# Only the named baselines are fixtures: Criterion's scratch `new`, `change` and the HTML report
# would only bloat the repository.
rm -rf "$tmp/report"
find "$tmp" -depth -type d \( -name new -o -name change \) -exec rm -rf {} +
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$tmp" "$out"
echo "fixtures written to $out" >&2
