#!/usr/bin/env bash
# Per-member reading against the direct path (docs/benchmarks.md, "Per-member reading"):
# a 100 KB post, N = 500 and 10,000 members with P-256 and with RSA-2048 certificates, intake
# to last delivery for both paths in the same run, and groupd's CPU per member against
# `openssl speed` for the primitive. bench/per_member.py says exactly what is timed.
#
# Usage: bench/per_member.sh BUILD_DIR [--out DIR] [per_member.py options, e.g. --quick]
#   BUILD_DIR  where blindlist, blindlist-groupd, blindlist-certd and blindlist-listd were built
#   --out      where to keep the raw output (default bench/results/<commit>/per_member)
# Also runs bench_per_member_wrap (the wrap alone, in one process) if it was built.
# Raw output: bench/results/<commit>/per_member/ (per_member.json, per_member.log,
# per_member_wrap.txt).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  -h | --help | "")
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    echo "Options after BUILD_DIR go to bench/per_member.py (python3 bench/per_member.py --help)."
    [ -n "${1:-}" ]
    exit
    ;;
esac
build=$1
shift
out="$here/results/$(git -C "$here" rev-parse --short HEAD)/per_member"
if [ "${1:-}" = "--out" ]; then
  out=${2:?--out needs a directory}
  shift 2
fi
mkdir -p "$out"
{
  uptime
  nproc
  python3 "$here/per_member.py" "$build" --out "$out" "$@"
  uptime
} 2>&1 | tee "$out/per_member.log"
wrap="$build/bench/bench_per_member_wrap"
if [ -x "$wrap" ]; then
  { uptime; "$wrap" --benchmark_repetitions=3; uptime; } 2>&1 | tee "$out/per_member_wrap.txt"
fi
