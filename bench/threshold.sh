#!/usr/bin/env bash
# Threshold open (k = 2, 3 of n = 3, 5) against the single-node blind open, in the same run, and
# node CPU per request against `openssl speed ecdhp256` (docs/threshold.md, docs/benchmarks.md).
#
# Usage: bench/threshold.sh [BUILD_DIR] [--posts N] [--out DIR]
#   BUILD_DIR  the build tree with blindlist, the daemons and bench_threshold_ops (default build)
#   --posts    posts opened per configuration (default 20)
#   --out      where to keep the raw output (default bench/results/<commit>/threshold)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
posts=20
out=""
while (($#)); do
  case "$1" in
    --posts) posts="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -*) echo "threshold.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done
if [ -z "$out" ]; then
  out="$root/bench/results/$(git -C "$root" rev-parse --short HEAD)/threshold"
fi
mkdir -p "$out"
BLINDLIST_TEST_STORE=sqlite python3 "$root/bench/threshold_bench.py" \
  "$build/cli/blindlist" "$build/daemons/groupd/blindlist-groupd" \
  "$build/daemons/certd/blindlist-certd" "$build/daemons/listd/blindlist-listd" \
  --posts "$posts" | tee "$out/threshold.md"
# The node's and the member's crypto alone, in CPU time, against the same primitive.
"$build/bench/bench_threshold_ops" --benchmark_min_time=1 | tee "$out/threshold_ops.txt"
openssl speed -seconds 3 ecdhp256 2>/dev/null | tail -1 | tee -a "$out/threshold_ops.txt"
nproc > "$out/nproc.txt"
uptime > "$out/load.txt"
