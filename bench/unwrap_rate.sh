#!/usr/bin/env bash
# Unwrap rate against the raw primitive (docs/benchmarks.md).
#
# Runs bench_unwrap (CEK unwraps per second through the library) and, in the
# same run, `openssl speed -seconds 3 rsa3072` (private ops/s) and
# `openssl speed -seconds 3 ecdhp256` (op/s), then prints each blindlist rate
# as a percentage of the raw primitive rate. Target: >= 90%.
#
# The machine may be shared, so both sides are measured in CPU time (openssl
# speed's default; Google Benchmark's default) and the script does R rounds
# (default 5), each alternating `openssl speed rsa3072`, the RSA benchmarks,
# `openssl speed ecdhp256`, the P-256 benchmarks, and keeps each rate's best
# round: interference only ever slows a run down.
#
# Usage: bench/unwrap_rate.sh [BENCH_UNWRAP] [--quick] [--rounds R] [--seconds S] [--out DIR]
#   BENCH_UNWRAP  the bench_unwrap binary (default build/bench/bench_unwrap)
#   --quick       one round of 1 s per measurement instead of 5 rounds of 3 s
#   --out         keep the raw outputs and a Markdown table there
set -euo pipefail

bench=build/bench/bench_unwrap
rounds=5
seconds=3
out=""
while (($#)); do
  case "$1" in
    --quick) rounds=1; seconds=1 ;;
    --rounds) rounds="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;  # whole seconds: openssl speed takes no fraction
    --out) out="$2"; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unwrap_rate: unknown option $1" >&2; exit 2 ;;
    *) bench="$1" ;;
  esac
  shift
done

die() { echo "unwrap_rate: $*" >&2; exit 1; }
for tool in openssl jq awk; do command -v "$tool" >/dev/null || die "needs $tool"; done
[[ -x "$bench" ]] || die "no bench_unwrap at $bench (cmake --build BUILD --target bench)"

work="$(mktemp -d "${TMPDIR:-/tmp}/unwrap-rate.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [[ -z "$out" ]]; then out="$work/results"; fi
mkdir -p "$out" "$work/keys"

for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds" >&2
  openssl speed -seconds "$seconds" rsa3072 2>/dev/null >"$out/speed-rsa-$r.txt"
  "$bench" --key-dir="$work/keys" --benchmark_min_time="$seconds" --benchmark_filter=Rsa \
    --benchmark_out="$out/bench-rsa-$r.json" --benchmark_out_format=json >&2
  openssl speed -seconds "$seconds" ecdhp256 2>/dev/null >"$out/speed-ecdh-$r.txt"
  "$bench" --key-dir="$work/keys" --benchmark_min_time="$seconds" --benchmark_filter=P256 \
    --benchmark_out="$out/bench-p256-$r.json" --benchmark_out_format=json >&2
  # "rsa 3072 bits 0.002258s 0.000053s    442.8  18715.1": sign/s is field 6.
  awk '$1 == "rsa" && $2 == "3072" { print "raw_rsa3072_private", $6 }' "$out/speed-rsa-$r.txt"
  # " 256 bits ecdh (nistp256)   0.0001s  13967.2": op/s is the last field.
  awk '/ecdh \(nistp256\)/ { print "raw_ecdh_p256", $NF }' "$out/speed-ecdh-$r.txt"
  jq -r '.benchmarks[] | "\(.name) \(.items_per_second)"' "$out/bench-rsa-$r.json" \
    "$out/bench-p256-$r.json"
done >"$out/rates.txt"

grep -q raw_rsa3072_private "$out/rates.txt" || die "could not read openssl speed rsa3072"
grep -q raw_ecdh_p256 "$out/rates.txt" || die "could not read openssl speed ecdhp256"

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "$(openssl version); $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  awk -v rounds="$rounds" -v secs="$seconds" '
    { v = $2 + 0; if (!($1 in best) || v > best[$1]) best[$1] = v
      all[$1] = ($1 in all) ? all[$1] " " sprintf("%.0f", v) : sprintf("%.0f", v) }
    END {
      printf "best of %d rounds of %s s each, CPU time; every round in the last column.\n\n", rounds, secs
      printf "| variant | library call | ops/s | raw ops/s | %% of raw | >= 90%% | rounds (ops/s) |\n"
      printf "|---|---|--:|--:|--:|---|---|\n"
      raw("raw RSA-3072 private op", "openssl speed rsa3072 (sign/s)", "raw_rsa3072_private")
      row("RSA-3072 OAEP (KTRI)", "UnwrapCek", "BM_UnwrapRsa3072Oaep", "raw_rsa3072_private", 1)
      row("RSA-3072 PKCS#1 v1.5 (KTRI)", "UnwrapCek", "BM_UnwrapRsa3072Pkcs1", "raw_rsa3072_private", 1)
      row("blind RSA-3072, key holder", "ApplyBlind", "BM_ApplyBlindRsa3072", "raw_rsa3072_private", 1)
      raw("raw ECDH P-256", "openssl speed ecdhp256 (op/s)", "raw_ecdh_p256")
      row("EC P-256 (KARI)", "UnwrapCek", "BM_UnwrapP256Kari", "raw_ecdh_p256", 1)
      row("blind P-256, key holder", "ApplyBlind", "BM_ApplyBlindP256", "raw_ecdh_p256", 1)
      printf "\nthe member side of the blind unwrap, for information (no target):\n\n"
      printf "| variant | library call | ops/s | us/op | rounds (ops/s) |\n|---|---|--:|--:|---|\n"
      info("blind RSA-3072, member", "BlindRequest::Create", "BM_BlindCreateRsa3072")
      info("blind RSA-3072, member", "BlindRequest::Finish", "BM_BlindFinishRsa3072")
      info("blind P-256, member", "BlindRequest::Create", "BM_BlindCreateP256")
      info("blind P-256, member", "BlindRequest::Finish", "BM_BlindFinishP256")
    }
    function raw(label, call, name) {
      printf "| **%s** | %s | | **%.1f** | | | %s |\n", label, call, best[name], all[name]
    }
    function row(label, call, name, raw, judged,   pct) {
      pct = 100 * best[name] / best[raw]
      printf "| %s | %s | %.1f | %.1f | %.1f%% | %s | %s |\n", label, call, best[name], best[raw],
        pct, pct >= 90 ? "MET" : "MISSED", all[name]
    }
    function info(label, call, name) {
      printf "| %s | %s | %.1f | %.1f | %s |\n", label, call, best[name], 1e6 / best[name], all[name]
    }' "$out/rates.txt"
} | tee "$out/table.md"
if [[ "$out" != "$work/results" ]]; then echo "raw results in $out" >&2; fi
