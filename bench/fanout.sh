#!/usr/bin/env bash
# Exploder fan-out (docs/benchmarks.md, "Exploder fan-out").
#
# Makes a throwaway group certificate (RSA-3072, self-signed, SAN email:LIST)
# with the openssl CLI and two posts S/MIME-encrypted to it with `openssl cms
# -encrypt -binary -aes-256-gcm`: about 100 KB and about 25 MB. For each N it
# creates a list with N members in a fresh SQLite store with the `blindlist`
# command, then runs bench_fanout. It starts one blindlist-listd per case,
# delivering to an in-process SMTP sink, and in each round sends it the post and,
# right after, has a raw SmtpClient push the same bytes to the same sink in the
# same batches (bench/fanout_bench.cc says exactly what is timed). A warm-up
# round (not reported) goes first in the 100 KB cases.
#
# Cases (targets from the issue):
#   100 KB post, N = 10, 500, 10,000   listd within 2x of the raw client at
#                                      N = 500 and 10,000 (5, 5, 3 rounds)
#   25 MB post, N = 10,000             listd's peak memory (VmHWM) < 64 MB (1 round)
#   intake: the 100 KB cases run once per intake (--intake): over SMTP, and by pipe mode as
#   Postfix's pipe(8) hands it over (LF lines on stdin); each reports the time to the first
#   RCPT at the sink and to the last message it received (target: pipe-in to first RCPT
#   <= 50 ms). The 25 MB case goes in over SMTP.
#
# Usage: bench/fanout.sh BUILD_DIR [--quick] [--n "10 500 10000"] [--no-large]
#                        [--batch B] [--verp MODE] [--spool-dir DIR] [--out DIR] [--keep]
#                        [--intake "smtp pipe"]
#   BUILD_DIR   where blindlist, blindlist-listd and bench_fanout were built
#               (cmake --build BUILD --target blindlist blindlist-listd bench_fanout)
#   --quick     2, 2 and 1 rounds instead of 5, 5 and 3 (the 25 MB case is 1 round anyway)
#   --n         the list sizes of the 100 KB case
#   --no-large  skip the 25 MB case
#   --batch     recipients per SMTP transaction, listd's and the raw client's (default 100)
#   --verp      listd's [delivery] verp: off (default: today's batches), per-recipient (one
#               transaction per member), xverp or auto (these need a smarthost offering XVERP)
#   --spool-dir put listd's spool in DIR (e.g. /dev/shm: fsync costs nothing there, which
#               shows what the spool's syncs cost)
#   --out       keep the JSON results and a Markdown table there
#   --keep      keep the temporary directory (certificate, posts, stores, listd logs)
#   --intake    the intakes of the 100 KB cases, among smtp and pipe (default: both)
set -euo pipefail

build=""
quick=0
keep=0
large=1
out=""
sizes="10 500 10000"
batch=100
verp=off
spool_dir=""
intakes="smtp pipe"
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --no-large) large=0 ;;
    --n) sizes="$2"; shift ;;
    --batch) batch="$2"; shift ;;
    --verp) verp="$2"; shift ;;
    --spool-dir) spool_dir="$2"; shift ;;
    --out) out="$2"; shift ;;
    --intake) intakes="$2"; shift ;;
    -h | --help) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fanout: unknown option $1" >&2; exit 2 ;;
    *) build="$1" ;;
  esac
  shift
done
die() { echo "fanout: $*" >&2; exit 1; }
[[ -n "$build" ]] || die "usage: bench/fanout.sh BUILD_DIR [--quick] (see --help)"
for tool in openssl jq awk; do command -v "$tool" >/dev/null || die "needs $tool"; done
blindlist="$build/cli/blindlist"
listd="$build/daemons/listd/blindlist-listd"
bench="$build/bench/bench_fanout"
for b in "$blindlist" "$listd" "$bench"; do
  [[ -x "$b" ]] || die "no $b (cmake --build $build --target blindlist blindlist-listd bench_fanout)"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/fanout.XXXXXX")"
cleanup() {
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
if [[ -z "$out" ]]; then out="$work/results"; fi
spool_root="$work"
if [[ -n "$spool_dir" ]]; then
  spool_root="$(mktemp -d "$spool_dir/fanout-spool.XXXXXX")"
  trap 'cleanup; rm -rf "$spool_root"' EXIT
fi
mkdir -p "$out"
log() { echo "== $*" >&2; }
rounds_for() {  # N -> rounds
  if ((quick)); then (($1 >= 10000)) && echo 1 || echo 2; else (($1 >= 10000)) && echo 3 || echo 5; fi
}

list="bench-list@example.org"
log "setup: group certificate and posts"
openssl req -x509 -newkey rsa:3072 -nodes -keyout "$work/group.key" -out "$work/group.crt" \
  -days 30 -subj /CN=list -addext "subjectAltName=email:$list" \
  -addext keyUsage=critical,keyEncipherment -addext extendedKeyUsage=emailProtection \
  2>"$work/openssl.log"
# make_post NAME BODY_BYTES: a text/plain body of random base64 lines, encrypted to the group
# certificate; CRLF line endings, as it travels over SMTP.
make_post() {
  local name=$1 bytes=$2
  {
    printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\n'
    openssl rand -base64 $((bytes * 3 / 4 + 64)) | head -c "$bytes" | sed 's/$/\r/'
  } >"$work/$name.body"
  openssl cms -encrypt -binary -aes-256-gcm -in "$work/$name.body" -to "$list" \
    -from sender@example.org -subject bench "$work/group.crt" 2>>"$work/openssl.log" |
    sed 's/\r$//; s/$/\r/' >"$work/$name.eml"
  stat -c %s "$work/$name.eml"
}
small_bytes=$(make_post small 72000)
log "post: $small_bytes bytes"
if ((large)); then
  large_bytes=$(make_post large 18500000)
  log "large post: $large_bytes bytes"
fi

# make_list N: a store holding the list with N members; prints the store URL.
make_list() {
  local n=$1 dir="$work/n$1"
  # One store per N, shared by the intakes (delivery to the sink changes nothing in it).
  if [[ -f "$dir/lists.db" ]]; then echo "sqlite:$dir/lists.db"; return; fi
  mkdir -p "$dir"
  awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "member%05d@members.example\n", i }' \
    >"$dir/members.txt"
  local store="sqlite:$dir/lists.db"
  "$blindlist" list --store "$store" create "$list" --group "$list" \
    --certificate "$work/group.crt" --posting open >"$dir/setup.log" 2>&1 ||
    die "list create failed: $(tail -3 "$dir/setup.log")"
  "$blindlist" list --store "$store" member import "$list" --file "$dir/members.txt" \
    >>"$dir/setup.log" 2>&1 || die "member import failed: $(tail -3 "$dir/setup.log")"
  echo "$store"
}

run_case() {  # NAME N POST ROUNDS WARMUP [INTAKE]
  local name=$1 n=$2 post=$3 rounds=$4 warmup=$5 intake=${6:-smtp}
  local store rounds_dir="$spool_root/$name-$n"
  store=$(make_list "$n")
  log "$name: N=$n, $warmup warm-up + $rounds rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bench" --listd "$listd" --store "$store" --list "$list" --post "$post" \
    --members "$work/n$n/members.txt" --work "$rounds_dir" --runs "$rounds" --warmup "$warmup" \
    --batch "$batch" --verp "$verp" --intake "$intake" >"$out/fanout-$name-$n.json"
  jq -c --arg name "$name" '. + {case: $name}' "$out/fanout-$name-$n.json" >>"$out/fanout.jsonl"
  cp "$rounds_dir/listd/listd.log" "$out/listd-$name-$n.log"
  rm -rf "$rounds_dir"
}

: >"$out/fanout.jsonl"
started=$(date -u +%H:%M)
for n in $sizes; do
  for intake in $intakes; do
    case "$intake" in
      smtp) run_case post100k "$n" "$work/small.eml" "$(rounds_for "$n")" 1 ;;
      pipe) run_case post100k-pipe "$n" "$work/small.eml" "$(rounds_for "$n")" 1 pipe ;;
      *) die "unknown intake $intake (smtp or pipe)" ;;
    esac
  done
done
if ((large)); then
  rm -rf "$work/n10000"
  # No warm-up: it would cost as much as the round, and one-time costs are small beside it.
  run_case post25m 10000 "$work/large.eml" 1 0
fi
finished=$(date -u +%H:%M)

{
  echo "Fan-out, $(date -u +%F) $started–$finished UTC, batch $batch, $(nproc) CPUs."
  echo
  echo "| post | N | rounds | listd ms | raw ms | listd/raw | per-round ratios | to last DATA: listd ms | raw ms | listd/raw | listd 250 ms | listd first RCPT ms | listd CPU ms | raw client CPU ms | RCPTs | DATA bytes | listd VmHWM MB (max) | load before → after |"
  echo "|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
  jq -r '
    def r1: (. * 10 | round) / 10;
    def r2: (. * 100 | round) / 100;
    "| \(.bytes.post_bytes) B\(if .intake == "pipe" then " (pipe)" else "" end) | \(.members) | \(.runs) | \(.median.listd_ms | r1) | \(.median.raw_ms | r1)"
    + " | \(.median.ratio_of_medians | r2)x | \([.rounds[].ratio | r2 | tostring] | join(" "))"
    + " | \(.median.listd_data_ms | r1) | \(.median.raw_data_ms | r1) | \(.median.data_ratio_of_medians | r2)x"
    + " | \(.median.listd_accepted_ms | r1) | \(.median.listd_first_rcpt_ms | r1)"
    + " | \(.median.listd_cpu_ms | r1) | \(.median.raw_client_cpu_ms | r1)"
    + " | \(.bytes.rcpts) | \(.bytes.data_bytes) | \(.max_listd_vm_hwm_kb / 1024 | r1)"
    + " | \(.load_before | split(" ")[0]) → \(.load_after | split(" ")[0]) |"
  ' "$out/fanout.jsonl"
  echo
  echo "Times are medians over the rounds, from t0 (the post's first byte) to the last RCPT the sink"
  echo "accepted, or to the last message it received whole; listd/raw is the ratio of the medians."
  echo
  echo "Intake (medians): t0 is the post's first byte over SMTP, or the start of the pipe-mode process."
  echo
  echo "| intake | post | N | rounds | listd 250 (pipe: exit 0) ms | first RCPT ms | first RCPT per round ms | last RCPT ms | last DATA ms |"
  echo "|---|---|--:|--:|--:|--:|---|--:|--:|"
  jq -r '
    def r1: (. * 10 | round) / 10;
    "| \(.intake // "smtp") | \(.bytes.post_bytes) B | \(.members) | \(.runs)"
    + " | \(.median.listd_accepted_ms | r1) | \(.median.listd_first_rcpt_ms | r1)"
    + " | \([.rounds[].listd_first_rcpt_ms | r1 | tostring] | join(" "))"
    + " | \(.median.listd_ms | r1) | \(.median.listd_data_ms | r1) |"
  ' "$out/fanout.jsonl"
} | tee "$out/fanout.md"
