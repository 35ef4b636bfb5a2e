#!/usr/bin/env bash
# Does groupd's unwrap take longer or shorter depending on the RSA padding? (docs/benchmarks.md,
# "Padding-oracle timing"). A benchmark, never a timed test: it reports figures, and a reader
# judges them.
#
# Runs bench_oracle_timing (interleaved rounds of crypto::UnwrapCekImplicit on classes a-e, the
# raw RSA private operation and the explicit UnwrapCek of local reads, for RSA-3072 and then
# RSA-2048) and writes its output, with the machine, the load and the commit measured, to
# OUT/oracle_timing.txt.
#
# Usage: bench/oracle_timing.sh [BENCH] [--rounds N] [--pool P] [--bits 3072,2048] [--out DIR]
#   BENCH     the bench_oracle_timing binary (default build/bench/bench_oracle_timing)
#   --rounds  interleaved rounds per key size (default 3000: ~8 calls of 1-5 ms each per round)
#   --out     where to write oracle_timing.txt (default bench/results/COMMIT)
set -euo pipefail

bench=build/bench/bench_oracle_timing
rounds=3000
pool=64
bits=3072,2048
out=""
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift ;;
    --pool) pool="$2"; shift ;;
    --bits) bits="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "oracle_timing: unknown option $1" >&2; exit 2 ;;
    *) bench="$1" ;;
  esac
  shift
done
[[ -x "$bench" ]] || { echo "oracle_timing: no $bench (cmake --build build --target bench_oracle_timing)" >&2; exit 2; }

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=""
git diff --quiet HEAD -- src/crypto 2>/dev/null || dirty=" (src/crypto modified)"
out=${out:-bench/results/$commit}
mkdir -p "$out"
file="$out/oracle_timing.txt"
{
  echo "# bench/oracle_timing.sh --rounds $rounds --pool $pool --bits $bits"
  echo "# commit $commit$dirty"
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bench" --rounds "$rounds" --pool "$pool" --bits "$bits"
  echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$file"
echo "oracle_timing: wrote $file" >&2
