#!/usr/bin/env bash
# How often the gate is right, measured on this machine with the real engine: A/A comparisons
# (the same code on both sides: any "regressed" row is a false alarm) and planted slowdowns of
# one operation (caught when its benchmark is "regressed"; any other regressed row is unrelated),
# each with and without an injected noisy neighbour, in three modes:
#
#   sequential   one full run of BASE, then one of HEAD (the old PR job), `compare base head`
#   interleaved  ROUNDS short rounds in ABBA order, `compare base head --rounds ROUNDS`; with
#                INTERLEAVE=run a round runs all of BASE's benchmarks, then all of HEAD's; with
#                INTERLEAVE=group (default, as scripts/bench-pr.sh) each benchmark group (the
#                first two parts of the id, e.g. `latency/ltm`) runs on both sides back to back,
#                so the two halves of a pair are seconds apart instead of a whole run apart
#   instructions callgrind counts of benches/instructions.rs (valgrind + gungraun-runner)
#
# The slowdown is planted in memory-core by the `membench_planted` cfg (crates/memory-core/src/
# planted.rs), compiled only into this script's own build (RUSTFLAGS="--cfg membench_planted",
# a target directory of its own): both sides run the same executables, HEAD with
# MEMBENCH_PLANTED=<op>=<pct> (spin for pct% of the operation's own time) or, for instruction
# counts, MEMBENCH_PLANTED_WORK=<op>=<n> (a fixed loop calibrated here to pct% of the
# operation's counted instructions).
#
# Noise: none | cpu (a hog on one core, busy HOG_BUSY s then idle HOG_IDLE s, repeating) |
# disk (a writer doing synchronous 1 MiB writes, busy/idle like the hog, through the fsync
# benchmarks).
#
# Usage: crates/bench-gate/scripts/accuracy.sh
#   env: MODES="interleaved sequential instructions" NOISES="none cpu" PCTS="0 2 3 5 10 20"
#        REPS=10 OP=get ROUNDS=8 ROUND_ARGS="--warm-up-time 0.2 --measurement-time 0.3"
#        (the defaults of scripts/bench-pr.sh)
#        INTERLEAVE=group|run (how the interleaved mode pairs, above)
#        BENCHES="latency" (Criterion targets of the timing modes) FILTER="" (a Criterion
#        filter, e.g. "ltm/get" for a fast look) INSTR_FILTER (gungraun's, default the planted
#        operation's benchmark for OP=get) MEMBENCH_PROFILE=quick HOG_BUSY=15 HOG_IDLE=10
#        CONFIG=<bench-gate.toml> (default: the repository's) OUT=<dir to keep the reports>
#        CONFIGS="LABEL=<toml> LABEL=<toml> ..." judges every run under each configuration (the
#        same measurements, so two verdict rules are compared on identical data; one table row
#        per configuration)
# Prints one line per run, then the table: false regressions per A/A run, share of planted
# slowdowns caught, unrelated rows regressed.
set -euo pipefail
crate=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$crate/../.." && pwd)
command -v jq >/dev/null || { echo "accuracy.sh needs jq" >&2; exit 1; }

modes=${MODES:-interleaved sequential instructions}
noises=${NOISES:-none cpu}
pcts=${PCTS:-0 2 3 5 10 20}
reps=${REPS:-10}
op=${OP:-get}
rounds=${ROUNDS:-8}
interleave=${INTERLEAVE:-group}
[[ $interleave == run || $interleave == group ]] || { echo "INTERLEAVE must be run or group" >&2; exit 1; }
read -r -a round_args <<<"${ROUND_ARGS:---warm-up-time 0.2 --measurement-time 0.3}"
read -r -a benches <<<"${BENCHES:-latency}"
filter=${FILTER:-}
hog_busy=${HOG_BUSY:-15}
hog_idle=${HOG_IDLE:-10}
# Paths given relative to the caller's directory are made absolute now: the gate and the builds
# run after a `cd` (into $work or $root), where a relative path names another file or none.
absolute() { if [[ $1 == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$PWD/$1"; fi; }
config=$(absolute "${CONFIG:-$root/bench-gate.toml}")
[[ -f $config ]] || { echo "CONFIG=$config is not a file" >&2; exit 1; }
read -r -a configs <<<"${CONFIGS:-default=$config}"
for i in "${!configs[@]}"; do
  c=${configs[i]}
  [[ $c == *=* && -f ${c#*=} ]] || { echo "CONFIGS entry '$c' is not LABEL=<existing file>" >&2; exit 1; }
  configs[i]=${c%%=*}=$(absolute "${c#*=}")
done
export MEMBENCH_PROFILE=${MEMBENCH_PROFILE:-quick}
target=$(absolute "${CARGO_TARGET_DIR:-$root/target}")/accuracy-planted
work=$(mktemp -d "${TMPDIR:-/tmp}/accuracy.XXXXXX")
out=${OUT:-$work/reports}
mkdir -p "$out"

# Benchmarks the planted operation is measured by: caught when one of them regressed; a
# regression anywhere else is unrelated.
case $op in
  get)
    planted_re='^(latency/ltm/get/|latency/api/get_|tail/ltm_get/|instructions/ltm/get/)'
    instr_filter=${INSTR_FILTER-*::get::*}
    ;;
  search)
    planted_re='^(latency/search/|latency/keyword/memory_core|latency/cache/miss|latency/context/|tail/(keyword|ann|hybrid|cache_miss|hybrid_context)|scaling/|instructions/(search|context)/)'
    instr_filter=${INSTR_FILTER-}
    ;;
  *) echo "OP must be get or search" >&2; exit 1 ;;
esac

noise_pid=""
stop_noise() {
  if [[ -n $noise_pid ]]; then
    kill "$noise_pid" 2>/dev/null || true
    wait "$noise_pid" 2>/dev/null || true
    noise_pid=""
  fi
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  stop_noise
  rm -rf "$work/c" "$work/g" "$work/noise.bin"
  [[ -n ${OUT:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_noise() { # NAME
  case $1 in
    none) ;;
    cpu)
      # One core busy for HOG_BUSY s, then idle for HOG_IDLE s, until stopped.
      (
        trap 'exit 0' TERM
        while :; do
          end=$((SECONDS + hog_busy))
          while ((SECONDS < end)); do :; done
          sleep "$hog_idle"
        done
      ) &
      noise_pid=$!
      ;;
    disk)
      (
        trap 'exit 0' TERM
        while :; do
          end=$((SECONDS + hog_busy))
          while ((SECONDS < end)); do
            dd if=/dev/zero of="$work/noise.bin" bs=1M count=64 oflag=dsync status=none
          done
          rm -f "$work/noise.bin"
          sleep "$hog_idle"
        done
      ) &
      noise_pid=$!
      ;;
    *) echo "unknown noise '$1' (none, cpu, disk)" >&2; exit 1 ;;
  esac
}

echo "# accuracy $(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg) op=$op modes='$modes' noises='$noises' pcts='$pcts' reps=$reps rounds=$rounds interleave=$interleave round_args='${round_args[*]}' benches='${benches[*]}' filter='$filter' profile=$MEMBENCH_PROFILE"
echo "# building with --cfg membench_planted into $target"
# Only the bench targets this run uses: a release build of every bench is long on 2 cores.
build_targets=()
for b in "${benches[@]}"; do build_targets+=(--bench "$b"); done
[[ " $modes " == *" instructions "* ]] && build_targets+=(--bench instructions)
(cd "$root" && RUSTFLAGS="--cfg membench_planted" CARGO_TARGET_DIR="$target" \
  cargo bench -p memory-bench "${build_targets[@]}" --no-run --message-format=json 2>"$work/build.log") |
  jq -r 'select(.reason == "compiler-artifact" and .target.kind == ["bench"] and .executable != null) | "\(.target.name) \(.executable)"' \
    >"$work/benches" || { tail -20 "$work/build.log" >&2; exit 1; }
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p bench-gate)
gate=$target/release/bench-gate
exe() { sed -n "s/^$1 //p" "$work/benches"; }
for b in "${benches[@]}"; do
  [[ -n $(exe "$b") ]] || { echo "no bench target '$b'" >&2; exit 1; }
done

# criterion_one TARGET SIDE BASELINE PCT FILTER [ARGS...]: one bench target's benchmarks that
# FILTER selects (all when empty), HEAD with the slowdown.
criterion_one() {
  local b=$1 side=$2 name=$3 pct=$4 f=$5
  shift 5
  if [[ $side == head && $pct != 0 ]]; then
    (cd "$root" && MEMBENCH_PLANTED="$op=$pct" CRITERION_HOME="$work/c" "$(exe "$b")" --bench --save-baseline "$name" "$@" ${f:+"$f"}) >>"$work/log" 2>&1
  else
    (cd "$root" && CRITERION_HOME="$work/c" "$(exe "$b")" --bench --save-baseline "$name" "$@" ${f:+"$f"}) >>"$work/log" 2>&1
  fi || { tail -20 "$work/log" >&2; exit 1; }
}

# criterion_run SIDE BASELINE PCT [ARGS...]: the timed benches once, HEAD with the slowdown.
criterion_run() {
  local side=$1 name=$2 pct=$3 b
  shift 3
  for b in "${benches[@]}"; do
    criterion_one "$b" "$side" "$name" "$pct" "$filter" "$@"
  done
}

# group_filters TARGET: one Criterion filter per benchmark group of TARGET that FILTER selects
# (the exact ids of the group, anchored), one per line; fails when the listing fails (pipefail),
# with the executable's messages in $work/log.
group_filters() {
  (cd "$root" && "$(exe "$1")" --list ${filter:+"$filter"} 2>>"$work/log") | sed -n 's/: benchmark$//p' |
    awk -F/ '{ g = $1 "/" $2; gsub(/[][().*+?^$|{}\\]/, "\\\\&"); if (g in ids) ids[g] = ids[g] "|" $0; else ids[g] = $0 }
             END { for (g in ids) print "^(" ids[g] ")$" }' | sort
}

# base_first K N: whether round K's pair of group N runs the base first: one of each two rounds
# does, which one drawn per group (as scripts/bench-pr.sh does; why there).
declare -A first_draw
base_first() {
  local key="$2/$((($1 - 1) / 2))"
  [[ -n ${first_draw[$key]:-} ]] || first_draw[$key]=$((RANDOM % 2))
  (((($1 % 2) ^ first_draw[$key]) == 1))
}

# interleaved_round K PCT: round K, both sides; INTERLEAVE=run: one side's whole run, then the
# other's (ABBA by round); INTERLEAVE=group: group by group, both sides back to back, the side
# that goes first balanced over each two rounds and drawn per group (base_first).
interleaved_round() {
  local k=$1 pct=$2 b g i=0 first second groups
  if [[ $interleave == run ]]; then
    if ((k % 2 == 1)); then first=base; else first=head; fi
    [[ $first == base ]] && second=head || second=base
    criterion_run "$first" "$first-r$k" "$([[ $first == head ]] && echo "$pct" || echo 0)" "${round_args[@]}"
    criterion_run "$second" "$second-r$k" "$([[ $second == head ]] && echo "$pct" || echo 0)" "${round_args[@]}"
    return
  fi
  for b in "${benches[@]}"; do
    # Listed into a variable first: a failing command inside `< <(...)` goes unnoticed.
    groups=$(group_filters "$b") || {
      echo "listing the benchmarks of $b failed (--list${filter:+ $filter}):" >&2
      tail -20 "$work/log" >&2
      exit 1
    }
    while read -r g; do
      [[ -n $g ]] || continue
      if base_first "$k" "$i"; then first=base second=head; else first=head second=base; fi
      criterion_one "$b" "$first" "$first-r$k" "$([[ $first == head ]] && echo "$pct" || echo 0)" "$g" "${round_args[@]}"
      criterion_one "$b" "$second" "$second-r$k" "$([[ $second == head ]] && echo "$pct" || echo 0)" "$g" "${round_args[@]}"
      i=$((i + 1))
    done <<<"$groups"
  done
}

instructions_run() { # SIDE WORK
  local work_n=$2
  (cd "$root" && GUNGRAUN_HOME="$work/g" MEMBENCH_PLANTED_WORK="$op=$work_n" "$(exe instructions)" --bench "--save-baseline=$1" ${instr_filter:+"$instr_filter"}) >>"$work/log" 2>&1 ||
    { tail -20 "$work/log" >&2; exit 1; }
}

# Instructions per iteration of the planted loop and the operation's own count, so that WORK
# can be set to pct% of the operation.
calibrate() {
  [[ -n $(exe instructions) ]] || { echo "no instructions bench" >&2; exit 1; }
  rm -rf "$work/g"
  instructions_run base 0
  instructions_run head 100000
  local json
  json=$(cd "$work" && GUNGRAUN_HOME="$work/g" "$gate" compare base head --criterion-dir "$work/c" --config "$config" --format json 2>/dev/null || true)
  op_base=$(jq -r --arg re "$planted_re" '[.benchmarks[] | select(.id | test($re))][0].base' <<<"$json")
  op_head=$(jq -r --arg re "$planted_re" '[.benchmarks[] | select(.id | test($re))][0].new' <<<"$json")
  per_iter=$(jq -n "($op_head - $op_base) / 100000")
  if ! jq -e -n "$per_iter > 0" >/dev/null; then
    echo "calibration failed: 100000 iterations of the planted loop added $per_iter instructions per iteration to $op ($op_base -> $op_head): does MEMBENCH_PLANTED_WORK reach the benchmark under valgrind?" >&2
    exit 1
  fi
  echo "# calibration: $op counts $op_base instructions; the planted loop costs $per_iter per iteration"
}

gate_json() { # CONFIG ARGS... -> report JSON on stdout (the gate's exit code is in the JSON)
  local cfg=$1
  shift
  (cd "$work" && GUNGRAUN_HOME="$work/g" "$gate" compare "$@" --criterion-dir "$work/c" --config "$cfg" --format json 2>>"$work/log") || true
}

declare -A runs caught unrelated false_rows false_runs
summarise() { # KEY JSON PCT
  local key=$1 json=$2 pct=$3 regressed hit others
  if [[ -z $json ]] || ! jq -e . >/dev/null 2>&1 <<<"$json"; then
    echo "$key: gate error (see $work/log)"
    return
  fi
  regressed=$(jq -r '[.benchmarks[] | select(.verdict == "regressed" and .informational == null) | .id] | join(" ")' <<<"$json")
  # Caught only by a row that fails the gate: an informational row (tail p95/p99) that
  # regressed does not stop a pull request, so it does not count as a detection.
  hit=$(jq -r --arg re "$planted_re" '[.benchmarks[] | select((.id | test($re)) and .verdict == "regressed" and .informational == null)] | length' <<<"$json")
  others=$(jq -r --arg re "$planted_re" '[.benchmarks[] | select((.id | test($re) | not) and .verdict == "regressed" and .informational == null)] | length' <<<"$json")
  runs[$key]=$((${runs[$key]:-0} + 1))
  if [[ $pct == 0 ]]; then
    local n
    n=$(jq -r '[.benchmarks[] | select(.verdict == "regressed" and .informational == null)] | length' <<<"$json")
    false_rows[$key]=$((${false_rows[$key]:-0} + n))
    ((n == 0)) || false_runs[$key]=$((${false_runs[$key]:-0} + 1))
  else
    ((hit == 0)) || caught[$key]=$((${caught[$key]:-0} + 1))
    unrelated[$key]=$((${unrelated[$key]:-0} + others))
  fi
  local planted_rows
  planted_rows=$(jq -r --arg re "$planted_re" '[.benchmarks[] | select(.id | test($re)) | "\(.id)=\(.verdict)(\(.change.point_pct // 0 | .*10|round/10)%)"] | join(" ")' <<<"$json")
  echo "$key: exit=$(jq -r .exit_code <<<"$json") regressed=[${regressed}] planted-op=[${planted_rows}]"
}

for mode in $modes; do
  if [[ $mode == instructions ]]; then calibrate; fi
  for noise in $noises; do
    for pct in $pcts; do
      key="$mode/$noise/$pct"
      for ((rep = 1; rep <= reps; rep++)); do
        rm -rf "$work/c" "$work/g"
        first_draw=()
        start_noise "$noise"
        case $mode in
          sequential)
            criterion_run base base 0
            criterion_run head head "$pct"
            stop_noise
            gate_args=(base head)
            ;;
          interleaved)
            for ((k = 1; k <= rounds; k++)); do
              interleaved_round "$k" "$pct"
            done
            stop_noise
            gate_args=(base head --rounds "$rounds")
            ;;
          instructions)
            work_n=$(jq -n "($op_base * $pct / 100 / $per_iter) | round")
            instructions_run base 0
            instructions_run head "$work_n"
            stop_noise
            gate_args=(base head)
            ;;
          *) echo "unknown mode '$mode'" >&2; exit 1 ;;
        esac
        for c in "${configs[@]}"; do
          label=${c%%=*}
          json=$(gate_json "${c#*=}" "${gate_args[@]}")
          printf '%s\n' "$json" >"$out/${mode}-${noise}-${pct}-${rep}-${label}.json"
          summarise "$key/$label" "$json" "$pct"
        done
      done
    done
  done
done

echo
echo "# $(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg); reports in $out"
printf '| mode | noise | planted | config | runs | A/A: runs with a false regression | A/A: false rows per run | caught | unrelated rows regressed |\n'
printf '|---|---|---:|---|---:|---:|---:|---:|---:|\n'
for mode in $modes; do
  for noise in $noises; do
    for pct in $pcts; do
      for c in "${configs[@]}"; do
        label=${c%%=*}
        key="$mode/$noise/$pct/$label"
        n=${runs[$key]:-0}
        if [[ $pct == 0 ]]; then
          printf '| %s | %s | A/A | %s | %d | %d/%d | %s | - | - |\n' "$mode" "$noise" "$label" "$n" "${false_runs[$key]:-0}" "$n" \
            "$(jq -n "if $n > 0 then (${false_rows[$key]:-0} / $n * 100 | round / 100) else 0 end")"
        else
          printf '| %s | %s | +%s%% | %s | %d | - | - | %d/%d | %d |\n' "$mode" "$noise" "$pct" "$label" "$n" "${caught[$key]:-0}" "$n" "${unrelated[$key]:-0}"
        fi
      done
    done
  done
done
