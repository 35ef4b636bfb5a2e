#!/usr/bin/env bash
# Does groupd's unwrap take longer or shorter depending on the RSA padding? (docs/benchmarks.md,
# "Padding-oracle timing"). A benchmark, never a timed test: it reports figures, and a reader
# judges them.
#
# Runs bench_oracle_timing (interleaved rounds of crypto::UnwrapCekImplicit on classes a-e, the
# raw RSA private operation and the explicit UnwrapCek of local reads, for RSA-3072 and then
# RSA-2048) and writes its output, with the machine, the load and the commit measured, to
# OUT/oracle_timing.txt. With --e2e BUILD, then the same classes end to end over HTTPS against a
# real groupd started from BUILD (bench/oracle_timing_e2e.py), appended to the same file.
#
# Usage: bench/oracle_timing.sh [BENCH] [--rounds N] [--pool P] [--bits 3072,2048] [--out DIR]
#                               [--e2e BUILD] [--e2e-rounds N]
#   BENCH     the bench_oracle_timing binary (default build/bench/bench_oracle_timing)
#   --rounds  interleaved rounds per key size (default 3000: ~9 calls of 0.2-5 ms each per round)
#   --out     where to write oracle_timing.txt (default bench/results/COMMIT)
#   --e2e     a build directory with blindlist, blindlist-groupd and blindlist-certd
#   --e2e-rounds  interleaved rounds per endpoint end to end (default 2000)
set -euo pipefail

bench=build/bench/bench_oracle_timing
rounds=3000
pool=64
bits=3072,2048
out=""
e2e=""
e2e_rounds=2000
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift ;;
    --pool) pool="$2"; shift ;;
    --bits) bits="$2"; shift ;;
    --out) out="$2"; shift ;;
    --e2e) e2e="$2"; shift ;;
    --e2e-rounds) e2e_rounds="$2"; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "oracle_timing: unknown option $1" >&2; exit 2 ;;
    *) bench="$1" ;;
  esac
  shift
done
[[ -x "$bench" ]] || { echo "oracle_timing: no $bench (cmake --build build --target bench_oracle_timing)" >&2; exit 2; }

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=""
git diff --quiet HEAD -- src/crypto daemons/groupd 2>/dev/null || dirty=" (measured code modified)"
out=${out:-bench/results/$commit}
mkdir -p "$out"
file="$out/oracle_timing.txt"
{
  echo "# bench/oracle_timing.sh --rounds $rounds --pool $pool --bits $bits${e2e:+ --e2e $e2e --e2e-rounds $e2e_rounds}"
  echo "# commit $commit$dirty"
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bench" --rounds "$rounds" --pool "$pool" --bits "$bits"
  if [[ -n "$e2e" ]]; then
    echo
    echo "# load before end to end: $(cut -d' ' -f1-3 /proc/loadavg)"
    PYTHONDONTWRITEBYTECODE=1 python3 "$(dirname "$0")/oracle_timing_e2e.py" "$e2e/cli/blindlist" \
      "$e2e/daemons/groupd/blindlist-groupd" "$e2e/daemons/certd/blindlist-certd" \
      --rounds "$e2e_rounds"
  fi
  echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$file"
echo "oracle_timing: wrote $file" >&2
