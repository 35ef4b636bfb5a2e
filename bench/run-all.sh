#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md at one commit, with its raw output kept.
#
# Builds the benchmark targets of the committed tree (Release, in
# BUILD_DIR), then runs each section's script in turn and writes everything it
# prints to bench/results/<commit>/ (or --out): one sub-directory per section,
# plus machine.txt (CPU, cores, kernel, load before and after each section, tool
# versions) and commands.txt (the exact command line of every section). A table in
# docs/benchmarks.md may quote a figure only from such a directory, naming its
# commit.
#
# Usage: bench/run-all.sh [--quick] [--build DIR] [--out DIR] [--only "a b ..."]
#                         [--allow-dirty]
#   --quick        each script's quick mode: a smoke run (minutes, not an hour);
#                  its figures are not for the benchmarks page
#   --build        build directory (default build-bench); configured here if new
#   --out          results directory (default bench/results/<commit>, or
#                  bench/results/<commit>-quick with --quick)
#   --only         a subset of: sender unwrap groupd fanout oracle ratelimit threshold
#                  per_member
#   --allow-dirty  run on a tree with uncommitted changes (the directory name then
#                  ends in -dirty, and machine.txt says so: such figures describe no
#                  commit and are not quoted)
#
# Sections (docs/benchmarks.md):
#   sender    1. sender cost against list size       bench/sender_cost.sh
#   unwrap    2. unwrap rate against the primitive   bench/unwrap_rate.sh
#   groupd    3. group server throughput             bench/groupd_load.sh
#   fanout    4. exploder fan-out                    bench/fanout.sh
#   oracle    5. padding-oracle timing               bench/oracle_timing.sh
#   ratelimit 6. the bystander under a bulk flood    bench/ratelimit_bystander.py
#   threshold 7. threshold open                      bench/threshold.sh
#   per_member 8. per-member reading                 bench/per_member.sh
# Every section runs even if an earlier one failed; the script's exit status is
# non-zero if any failed, and status.txt lists each section's exit code.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
quick=0
build=""
out=""
only="sender unwrap groupd fanout oracle ratelimit threshold per_member"
allow_dirty=0
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --build) build="$2"; shift ;;
    --out) out="$2"; shift ;;
    --only) only="$2"; shift ;;
    --allow-dirty) allow_dirty=1 ;;
    -h | --help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-all: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for s in $only; do
  case "$s" in
    sender | unwrap | groupd | fanout | oracle | ratelimit | threshold | per_member) ;;
    *) echo "run-all: unknown section '$s'" >&2; exit 2 ;;
  esac
done

cd "$root" || exit 1
commit="$(git rev-parse HEAD)" || { echo "run-all: not a git checkout" >&2; exit 1; }
short="${commit:0:7}"
dirty=0
if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
  if ((!allow_dirty)); then
    echo "run-all: the tree has uncommitted changes; commit first (or --allow-dirty)" >&2
    exit 1
  fi
  dirty=1
fi
suffix=""
((quick)) && suffix="-quick"
((dirty)) && suffix="$suffix-dirty"
[[ -n "$out" ]] || out="bench/results/$short$suffix"
[[ -n "$build" ]] || build="build-bench"
mkdir -p "$out" || exit 1
out="$(cd "$out" && pwd)"

machine="$out/machine.txt"
commands="$out/commands.txt"
status_file="$out/status.txt"
: >"$commands"
: >"$status_file"
{
  echo "commit: $commit$( ((dirty)) && echo ' (with uncommitted changes: not quotable)')"
  echo "mode: $( ((quick)) && echo quick || echo full)"
  echo "started: $(date -u +%FT%TZ)"
  echo "kernel: $(uname -srm)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "cores: $(nproc)"
  echo "memory: $(grep MemTotal /proc/meminfo | awk '{print $2 " kB"}')"
  echo "compiler: $(c++ --version | head -1)"
  echo "openssl: $(openssl version)"
  echo "gpg: $(gpg --version 2>/dev/null | head -1)"
  echo "hyperfine: $(hyperfine --version 2>/dev/null)"
  echo "load before build: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$machine"

echo "run-all: building the benchmark targets in $build" >&2
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >"$out/build.txt" 2>&1 || {
    echo "run-all: configure failed (see $out/build.txt)" >&2
    exit 1
  }
fi
cmake --build "$build" -j"$(nproc)" --target bench blindlist-groupd blindlist-certd blindlist-listd >>"$out/build.txt" 2>&1 || {
  echo "run-all: build failed (see $out/build.txt)" >&2
  exit 1
}

failed=0
# run SECTION COMMAND...: runs one section with its output in OUT/SECTION/.
run() {
  local section="$1"
  shift
  local dir="$out/$section"
  mkdir -p "$dir"
  printf '%s:' "$section" >>"$commands"
  printf ' %q' "$@" >>"$commands"
  printf '\n' >>"$commands"
  echo "load before $section: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$machine"
  echo "run-all: $section ..." >&2
  local start rc
  start=$(date +%s)
  "$@" >"$dir/stdout.txt" 2>"$dir/stderr.txt"
  rc=$?
  echo "load after $section: $(cut -d' ' -f1-3 /proc/loadavg) ($(($(date +%s) - start)) s)" >>"$machine"
  echo "$section $rc" >>"$status_file"
  if ((rc != 0)); then
    echo "run-all: $section FAILED (exit $rc, see $dir/stderr.txt)" >&2
    failed=1
  fi
}

q=()
((quick)) && q=(--quick)
for s in $only; do
  case "$s" in
    sender) run sender bench/sender_cost.sh "$build/cli/blindlist" "${q[@]}" --out "$out/sender" ;;
    unwrap)
      if ((quick)); then
        run unwrap bench/unwrap_rate.sh "$build/bench/bench_unwrap" --quick --out "$out/unwrap"
      else
        run unwrap bench/unwrap_rate.sh "$build/bench/bench_unwrap" --out "$out/unwrap"
      fi
      ;;
    groupd) run groupd bench/groupd_load.sh "$build" "${q[@]}" --out "$out/groupd" ;;
    fanout) run fanout bench/fanout.sh "$build" "${q[@]}" --out "$out/fanout" ;;
    oracle)
      if ((quick)); then
        run oracle bench/oracle_timing.sh "$build/bench/bench_oracle_timing" --rounds 200 \
          --e2e "$build" --e2e-rounds 100 --out "$out/oracle"
      else
        run oracle bench/oracle_timing.sh "$build/bench/bench_oracle_timing" --e2e "$build" \
          --out "$out/oracle"
      fi
      ;;
    ratelimit)
      seconds=30
      ((quick)) && seconds=5
      run ratelimit python3 bench/ratelimit_bystander.py "$build/cli/blindlist" \
        "$build/daemons/groupd/blindlist-groupd" "$build/daemons/certd/blindlist-certd" \
        --seconds "$seconds"
      ;;
    threshold)
      posts=20
      ((quick)) && posts=3
      run threshold bench/threshold.sh "$build" --posts "$posts" --out "$out/threshold"
      ;;
    per_member) run per_member bench/per_member.sh "$build" --out "$out/per_member" "${q[@]}" ;;
  esac
done
echo "finished: $(date -u +%FT%TZ)" >>"$machine"
echo "run-all: results in $out" >&2
exit "$failed"
