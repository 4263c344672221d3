#!/usr/bin/env bash
# Benchmarks BASE_REF (in a temporary git worktree) against the current checkout (HEAD plus any
# uncommitted changes) on this machine, then gates the result with bench-gate. Works locally and
# in CI.
#
# Both sides are built once (`cargo bench --no-run`); their bench executables then run
# alternately in ROUNDS interleaved rounds, each saved as its own Criterion baseline (base-r1,
# head-r1, base-r2, ...), so that whatever the machine does for a while hits both sides of a
# round alike and cancels in the per-round ratios `bench-gate compare base head --rounds N`
# pairs. Within a round, BENCH_INTERLEAVE=group (the default) runs each benchmark group (the
# first two parts of an id, e.g. `latency/ltm`, listed with Criterion's `--list`) on both sides
# back to back, so the two halves of a pair are seconds apart; the side that goes first is
# balanced over each two rounds and drawn at random per group (`base_first` below).
# BENCH_INTERLEAVE=suite runs one side's whole suite, then the other's (ABBA by round), minutes
# apart. Benchmarks that need one run (ONCE targets: byte counts, quality figures) run once per
# side, saved as `base` and `head`.
# Instruction counts (the gungraun bench `instructions`, under valgrind) run BENCH_INSTRUCTION_COUNTS
# times per side (ABBA: base, head, head, base, ...), saved as `base`, `base_repeat2`, ...: the
# gate reads a side's counts as samples and decides a change only beyond their spread, since a
# count is not always the same on a busy machine (one run counted 5% fewer instructions for one
# call than eight later ones). Without valgrind or gungraun-runner the channel is skipped and the
# report says so.
# HEAD is saved as `head`, not `new`: Criterion 0.8's `--save-baseline new` copies its scratch
# `new/` directory onto itself and truncates the files.
#
# With --html FILE it also writes the comparison as one HTML page (`bench-gate report`: the same
# verdict, drawn, with the per-round changes of flagged benchmarks).
#
# Usage: scripts/bench-pr.sh BASE_REF [--format text|markdown|json] [--html FILE]
# Env:   MEMBENCH_PROFILE (default quick)
#        BENCH_ROUNDS (default 8): interleaved rounds per side
#        BENCH_INTERLEAVE (default group): group or suite, how a round pairs the sides (above)
#        BENCH_ROUND_ARGS (default "--warm-up-time 0.2 --measurement-time 0.3"): Criterion
#          arguments of each round (split on spaces)
#        BENCH_ONCE (default "footprint quality"): bench targets run once per side, not per round
#        BENCH_INSTRUCTION_COUNTS (default 2): how many times each side's instructions are
#          counted (about a minute each on a quiet machine)
#        BENCH_INSTRUCTIONS (default auto): auto = count instructions when valgrind and
#          gungraun-runner are there, skipped with a warning in the report otherwise; off; required
#          (missing tools are an error)
#        BENCH_ARGS: extra arguments for every Criterion bench (split on spaces)
#        CARGO_TARGET_DIR (default target/ of this checkout: HEAD builds there, the base in
#          its subdirectory bench-pr-base/, kept so that the next run rebuilds only what
#          changed; HEAD builds first and its third-party units seed the base's directory, so an
#          empty one compiles only the workspace's crates),
#          CRITERION_HOME (default $CARGO_TARGET_DIR/criterion),
#          GUNGRAUN_HOME (default $CARGO_TARGET_DIR/gungraun), BENCH_GATE_CONFIG (config file),
#          BENCH_GATE (a bench-gate binary to use instead of building this one),
#          BENCH_BUILD_CMD (default "cargo bench --workspace --no-run --message-format=json",
#          split on spaces; run in each side's directory, its JSON lines name the executables)
# Exit:  bench-gate's code: 0 no regression, 2 regression; 1 for any error (bad arguments, a
#        failed build, a round that crashed, a gate error, missing tools with
#        BENCH_INSTRUCTIONS=required).
set -euo pipefail

usage() {
  echo "usage: $0 BASE_REF [--format text|markdown|json] [--html FILE]" >&2
  exit 1
}

(($# >= 1)) || usage
base_ref=$1
shift
format=text
html=""
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
    --html)
      (($# >= 2)) && [[ -n $2 ]] || usage
      html=$2
      shift 2
      ;;
    --html=*)
      html=${1#--html=}
      [[ -n $html ]] || usage
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
rounds=${BENCH_ROUNDS:-8}
if ! [[ $rounds =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: BENCH_ROUNDS='$rounds' is not a number of rounds (1 or more)" >&2
  exit 1
fi
counts=${BENCH_INSTRUCTION_COUNTS:-2}
if ! [[ $counts =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: BENCH_INSTRUCTION_COUNTS='$counts' is not a number of counts (1 or more)" >&2
  exit 1
fi
interleave=${BENCH_INTERLEAVE:-group}
case $interleave in
  group | suite) ;;
  *)
    echo "$0: BENCH_INTERLEAVE='$interleave' (group or suite)" >&2
    exit 1
    ;;
esac
instructions=${BENCH_INSTRUCTIONS:-auto}
case $instructions in
  auto | off | required) ;;
  *)
    echo "$0: BENCH_INSTRUCTIONS='$instructions' (auto, off or required)" >&2
    exit 1
    ;;
esac

# Paths given relative to the caller's directory must survive the `cd` below.
absolute() { if [[ $1 == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$PWD/$1"; fi; }
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then CARGO_TARGET_DIR=$(absolute "$CARGO_TARGET_DIR"); fi
if [[ -n ${CRITERION_HOME:-} ]]; then CRITERION_HOME=$(absolute "$CRITERION_HOME"); fi
if [[ -n ${GUNGRAUN_HOME:-} ]]; then GUNGRAUN_HOME=$(absolute "$GUNGRAUN_HOME"); fi
config=${BENCH_GATE_CONFIG:+$(absolute "$BENCH_GATE_CONFIG")}
if [[ -n $html ]]; then
  html=$(absolute "$html")
  # Made now, so that a directory that cannot be made fails before an hour of benchmarking; CI
  # passes --html target/bench-report.html on a fresh checkout, where target/ does not exist yet.
  mkdir -p "$(dirname "$html")" || {
    echo "$0: --html $html: cannot create the directory $(dirname "$html")" >&2
    exit 1
  }
fi
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
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
# The base builds into a target directory of its own. In a shared one both sides' artifacts get
# the same names (Cargo hashes a workspace member by its path inside the workspace, not by where
# the checkout lies), so the second build either overwrites the first side's executables or,
# its sources being older than them, takes them as up to date: both sides would then run the
# same code and every comparison would be A/A.
base_target=$CARGO_TARGET_DIR/bench-pr-base
# One Criterion directory for both sides, so all rounds sit side by side (and the HTML report in
# it shows the last comparison).
export CRITERION_HOME=${CRITERION_HOME:-$CARGO_TARGET_DIR/criterion}
export GUNGRAUN_HOME=${GUNGRAUN_HOME:-$CARGO_TARGET_DIR/gungraun}
read -r -a extra <<<"${BENCH_ARGS:-}"
# BENCH_ARGS split into Criterion options and the filter (its one positional argument), so that
# group rounds can narrow the filter to a group: the options that take a value are Criterion
# 0.8's.
extra_opts=()
extra_filter=""
for ((i = 0; i < ${#extra[@]}; i++)); do
  a=${extra[i]}
  case $a in
    -c | --color | -s | --save-baseline | -b | --baseline | --baseline-lenient | --format | \
      --load-baseline | --profile-time | --sample-size | --warm-up-time | --measurement-time | \
      --nresamples | --noise-threshold | --confidence-level | --significance-level | \
      --plotting-backend | --output-format)
      extra_opts+=("$a" "${extra[i + 1]:-}")
      i=$((i + 1))
      ;;
    -*) extra_opts+=("$a") ;;
    *)
      [[ -z $extra_filter ]] || {
        echo "$0: BENCH_ARGS holds two filters ('$extra_filter', '$a'); Criterion takes one" >&2
        exit 1
      }
      extra_filter=$a
      ;;
  esac
done

read -r -a round_args <<<"${BENCH_ROUND_ARGS:---warm-up-time 0.2 --measurement-time 0.3}"
read -r -a once <<<"${BENCH_ONCE:-footprint quality}"
read -r -a build_cmd <<<"${BENCH_BUILD_CMD:-cargo bench --workspace --no-run --message-format=json}"
started=$SECONDS
elapsed() { printf '%dm%02ds' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

# The gate of this checkout judges both sides; build it first so a broken build fails fast.
if [[ -z $gate ]]; then
  cargo build --quiet --release -p bench-gate >&2 || {
    echo "$0: building bench-gate failed" >&2
    exit 1
  }
  gate=$CARGO_TARGET_DIR/release/bench-gate
fi

mkdir -p "$CRITERION_HOME" "$GUNGRAUN_HOME"
# Results of an earlier invocation would let a benchmark deleted in HEAD pass as present.
find "$CRITERION_HOME" -depth -type d \( -name base -o -name head -o -name 'base-r[0-9]*' \
  -o -name 'head-r[0-9]*' \) -exec test -f '{}/benchmark.json' ';' -exec rm -rf '{}' ';'
find "$GUNGRAUN_HOME" -type f \( -name '*.base@base*' -o -name '*.base@head*' \) -delete

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-pr.XXXXXX")
worktree=$work/base
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  # Removes exactly this worktree; if it was never registered, the directory goes.
  git -C "$repo" worktree remove --force "$worktree" >/dev/null 2>&1 || {
    rm -rf "$worktree"
    git -C "$repo" worktree prune >/dev/null 2>&1 || true
  }
  rm -rf "$work"
}
trap cleanup EXIT
# An interrupted run (Ctrl-C, a cancelled CI job) still removes the worktree.
trap 'exit 130' INT
trap 'exit 143' TERM
git worktree add --quiet --detach "$worktree" "$base_sha" >&2

# build DIR SIDE TARGET_DIR: builds SIDE's bench executables once; writes "target executable"
# lines.
build() {
  echo "== building $2 in $1 ($(elapsed))" >&2
  (cd "$1" && CARGO_TARGET_DIR=$3 "${build_cmd[@]}") >"$work/$2.build.json" || {
    echo "$0: building the benchmarks of $2 failed" >&2
    exit 1
  }
  # Cargo's JSON messages: one compiler-artifact line per target, with "executable" for benches.
  grep '"reason":"compiler-artifact"' "$work/$2.build.json" | grep '"kind":\["bench"\]' |
    sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p' \
      >"$work/$2.benches" || true
  if [[ ! -s $work/$2.benches ]]; then
    echo "$0: building $2 produced no bench executables" >&2
    exit 1
  fi
}

# seed_base: copies HEAD's compiled third-party units into the base's target directory where
# it lacks them, so that a first (or emptied) base build compiles only the workspace's crates
# (on 2 cores about 3.5 of a fresh base build's 6 minutes are dependencies). A unit is found by
# the hash Cargo puts in its file names (deps/libserde-<hash>.rlib, build/serde-<hash>/,
# .fingerprint/serde-<hash>/), taken from HEAD's build messages of packages that are not
# path packages: a workspace crate is never copied, since a copied one could pass as up to
# date and the base would then run HEAD's code. Whatever the base needs differently (another
# version, features, profile or toolchain) has another hash and is built as usual.
seed_base() {
  local from=$CARGO_TARGET_DIR/release to=$base_target/release sub entry name hash copied=0
  local -A third_party=()
  [[ -d $from ]] || return 0
  for hash in $(grep -v '"package_id":"path+' "$work/head.build.json" |
    grep -o '/\(deps\|build\)/[^/"]*-[0-9a-f]\{16\}' | grep -o '[0-9a-f]\{16\}$' | sort -u); do
    third_party[$hash]=1
  done
  for sub in deps build .fingerprint; do
    [[ -d $from/$sub ]] || continue
    mkdir -p "$to/$sub"
    for entry in "$from/$sub"/*; do
      name=${entry##*/}
      hash=${name%%.*}
      hash=${hash##*-}
      [[ -n ${third_party[$hash]:-} && ! -e $to/$sub/$name ]] || continue
      cp -a "$entry" "$to/$sub/"
      copied=$((copied + 1))
    done
  done
  echo "== seeded the base's target directory with $copied entries of HEAD's dependency build" >&2
}

# HEAD first: its target directory is the one most likely kept, and it seeds the base's.
build "$repo" head "$CARGO_TARGET_DIR"
seed_base
build "$worktree" base "$base_target"
# Never an A/A run in disguise: each side runs executables of its own build.
shared=$(cut -d' ' -f2- "$work/base.benches" | sort | comm -12 - <(cut -d' ' -f2- "$work/head.benches" | sort))
if [[ -n $shared ]]; then
  echo "$0: base and head builds name the same executable ($(head -n1 <<<"$shared")): both sides would run the same code; give each side its own target directory" >&2
  exit 1
fi

is_once() { local t; for t in ${once[@]+"${once[@]}"}; do [[ $t == "$1" ]] && return 0; done; return 1; }

# run_benches SIDE DIR BASELINE WHICH [ARGS...]: runs SIDE's Criterion executables of WHICH
# (round: every target but ONCE and instructions; once: the ONCE targets) saving BASELINE.
run_benches() {
  local side=$1 dir=$2 baseline=$3 which=$4 target exe
  shift 4
  while read -r target exe; do
    [[ $target == instructions ]] && continue
    if is_once "$target"; then [[ $which == once ]] || continue; else [[ $which == round ]] || continue; fi
    echo "== $baseline: $target ($side, $(elapsed))" >&2
    (cd "$dir" && "$exe" --bench --save-baseline "$baseline" "$@" ${extra[@]+"${extra[@]}"}) >&2 || {
      echo "$0: benchmarking $side failed: $target exited with an error in $baseline (a crashed round cannot be paired; see the log above)" >&2
      exit 1
    }
  done <"$work/$side.benches"
}

# exe_of SIDE TARGET: SIDE's executable of bench TARGET (empty when that side has none). The
# path is everything after the first space of the line: it may hold spaces itself.
exe_of() { awk -v t="$2" '$1 == t { print substr($0, length($1) + 2); exit }' "$work/$1.benches"; }

# group_filters TARGET: one Criterion filter per benchmark group of TARGET on either side (the
# group's ids, exact and anchored), one per line. An id only one side has is in its group too:
# the other side's run of that filter runs the rest of the group.
group_filters() {
  local side exe
  for side in base head; do
    exe=$(exe_of "$side" "$1")
    [[ -n $exe ]] || continue
    if [[ $side == base ]]; then dir=$worktree; else dir=$repo; fi
    (cd "$dir" && "$exe" --list ${extra_filter:+"$extra_filter"}) 2>/dev/null || {
      echo "$0: listing the benchmarks of $1 ($side) failed" >&2
      return 1
    }
  done | sed -n 's/: benchmark$//p' | sort -u |
    awk -F/ '{ g = $1 "/" $2; gsub(/[][().*+?^$|{}\\]/, "\\\\&"); if (g in ids) ids[g] = ids[g] "|" $0; else ids[g] = $0 }
             END { for (g in ids) print "^(" ids[g] ")$" }' | sort
}

# run_group SIDE TARGET BASELINE FILTER: SIDE's run of one group of TARGET saving BASELINE.
run_group() {
  local side=$1 target=$2 baseline=$3 filter=$4 exe dir
  exe=$(exe_of "$side" "$target")
  [[ -n $exe ]] || return 0
  if [[ $side == base ]]; then dir=$worktree; else dir=$repo; fi
  (cd "$dir" && "$exe" --bench --save-baseline "$baseline" ${round_args[@]+"${round_args[@]}"} \
    ${extra_opts[@]+"${extra_opts[@]}"} "$filter") >&2 || {
    echo "$0: benchmarking $side failed: $target exited with an error in $baseline (group $filter; a crashed round cannot be paired; see the log above)" >&2
    exit 1
  }
}

# base_first K N: whether round K's pair of group N runs the base first. Rounds go in pairs (1
# and 2, 3 and 4, ...): in each pair, one round runs the base first and the other the head, so
# first-mover effects and slow drift cancel as in ABBA; which of the two is drawn at random per
# group and pair. A fixed alternation lines up with a periodic disturbance whose period is
# near a round's length (measured: an A/A run under a CPU hog busy 15 s / idle 10 s flagged
# `latency/stm/append` at +7.2%, its four rounds +5.8 to +8.3%); a draw does not.
declare -A first_draw
base_first() {
  local key="$2/$((($1 - 1) / 2))"
  [[ -n ${first_draw[$key]:-} ]] || first_draw[$key]=$((RANDOM % 2))
  (((($1 % 2) ^ first_draw[$key]) == 1))
}

if [[ $interleave == group ]]; then
  # The round targets of both sides, in the order they were built.
  round_targets=$(cut -d' ' -f1 "$work/base.benches" "$work/head.benches" | awk '!seen[$0]++' |
    while read -r t; do [[ $t == instructions ]] || is_once "$t" || echo "$t"; done)
  declare -A groups
  for target in $round_targets; do
    groups[$target]=$(group_filters "$target") || exit 1
  done
fi
for ((k = 1; k <= rounds; k++)); do
  if [[ $interleave == suite ]]; then
    if ((k % 2 == 1)); then order=(base head); else order=(head base); fi
    for side in "${order[@]}"; do
      if [[ $side == base ]]; then dir=$worktree; else dir=$repo; fi
      run_benches "$side" "$dir" "$side-r$k" round ${round_args[@]+"${round_args[@]}"}
    done
    continue
  fi
  n=0
  for target in $round_targets; do
    echo "== round $k: $target, group by group ($(elapsed))" >&2
    while read -r filter; do
      [[ -n $filter ]] || continue
      if base_first "$k" "$n"; then order=(base head); else order=(head base); fi
      for side in "${order[@]}"; do run_group "$side" "$target" "$side-r$k" "$filter"; done
      n=$((n + 1))
    done <<<"${groups[$target]}"
  done
done
run_benches base "$worktree" base once
run_benches head "$repo" head once

# The instruction channel: deterministic by intent, counted BENCH_INSTRUCTION_COUNTS times per
# side all the same (see the top of this file).
warnings=()
instructions_exe() { sed -n 's/^instructions //p' "$work/$1.benches"; }
missing=""
if [[ $instructions != off ]]; then
  if ! command -v valgrind >/dev/null; then
    missing="valgrind not found (apt-get install valgrind)"
  elif ! "${GUNGRAUN_RUNNER:-gungraun-runner}" --version >/dev/null 2>&1; then
    missing="gungraun-runner not found (cargo install --locked gungraun-runner --version 0.20.0)"
  elif [[ -z $(instructions_exe base) || -z $(instructions_exe head) ]]; then
    missing="the base commit has no instructions bench"
  fi
fi
if [[ $instructions == off ]]; then
  warnings+=("instruction counts skipped: BENCH_INSTRUCTIONS=off")
elif [[ -n $missing ]]; then
  if [[ $instructions == required ]]; then
    echo "$0: BENCH_INSTRUCTIONS=required but $missing" >&2
    exit 1
  fi
  echo "$0: warning: instruction counts skipped: $missing" >&2
  warnings+=("instruction counts skipped: $missing; this verdict rests on timings alone")
else
  for ((k = 1; k <= counts; k++)); do
    if ((k % 2 == 1)); then order=(base head); else order=(head base); fi
    for side in "${order[@]}"; do
      if [[ $side == base ]]; then dir=$worktree; else dir=$repo; fi
      # The gate's name of count k (bench-gate's callgrind::repeat_name).
      if ((k == 1)); then name=$side; else name=${side}_repeat$k; fi
      echo "== $side: instructions, count $k of $counts (valgrind, $(elapsed))" >&2
      (cd "$dir" && "$(instructions_exe "$side")" --bench "--save-baseline=$name") >&2 || {
        echo "$0: counting instructions of $side failed (see the log above)" >&2
        exit 1
      }
    done
  done
fi
echo "== benchmarks done ($(elapsed))" >&2

gate_args=(compare base head --rounds "$rounds" --criterion-dir "$CRITERION_HOME" --format "$format")
if [[ -n $config ]]; then gate_args+=(--config "$config"); fi
for w in ${warnings[@]+"${warnings[@]}"}; do gate_args+=(--warn "$w"); done
set +e
"$gate" "${gate_args[@]}"
code=$?
set -e
echo "== gate done ($(elapsed))" >&2
if [[ -n $html ]] && ((code == 0 || code == 2)); then
  # The same inputs as the gate, so the page shows the verdict just printed.
  page_args=(report base head --rounds "$rounds" --criterion-dir "$CRITERION_HOME" --html "$html")
  if [[ -n $config ]]; then page_args+=(--config "$config"); fi
  for w in ${warnings[@]+"${warnings[@]}"}; do page_args+=(--warn "$w"); done
  set +e
  "$gate" "${page_args[@]}" >&2
  page_code=$?
  set -e
  if ((page_code != code)); then
    echo "$0: writing the comparison page failed (bench-gate report exited $page_code, compare $code)" >&2
    exit 1
  fi
fi
case $code in
  0 | 2) exit "$code" ;;
  *)
    echo "$0: bench-gate failed (exit $code)" >&2
    exit 1
    ;;
esac
