#!/usr/bin/env bash
# Group server throughput (docs/benchmarks.md, "Group server throughput").
#
# Starts a real blindlist-groupd on loopback (SQLite store in a temporary
# directory, a throwaway PKI made with the openssl CLI, an admin token, an
# RSA-3072 group and a P-256 group, one member per group with a bearer token
# and a registered RSA-3072 certificate for rewrap) and drives it with
# bench_groupd_load. For each group x operation (unwrap, rewrap, blind):
#   peak   closed loop, 2 x nproc keep-alive TLS 1.3 connections, back to back
#   half   open loop at half the measured peak, 8 x nproc connections (enough
#          that a slow answer on one does not hold up the requests due on the
#          others): latency percentiles
#   bulk   (--bulk N, default 50) the same two runs with POST .../bulk requests
#          of N items each: per-item throughput, and the latency of a whole
#          N-item request at half its peak
# then one run of all six at once, each at a sixth of its half peak, while
# groupd's VmRSS is sampled every second (memory flatness).
#
# The raw primitive rate comes from `openssl speed` in the same run, before
# and (full run) after the load, on the same cores: rsa3072 (sign/s: the
# private-key operation; verify/s: the public one) and ecdhp256 (op/s). What
# each request costs in primitives:
#   RSA-3072 unwrap, blind   one RSA private op
#   RSA-3072 rewrap          one RSA private op + one RSA-3072 public op (the
#                            member's certificate is RSA-3072)
#   P-256 unwrap, blind      one ECDH
#   P-256 rewrap             one ECDH + one RSA-3072 public op
# openssl speed divides by CPU time, so it is a per-core rate whatever else
# the machine runs. groupd is compared with it twice: per groupd CPU-second
# (requests / groupd's utime+stime over the run, from /proc/PID/stat: the share
# of groupd's CPU that goes into the primitive) and per wall-clock second
# against nproc x the raw rate (what the cores could do with nothing else on
# them). The load client runs on the same cores and competes with groupd for
# them; its CPU time and that of everything else on the machine are reported.
#
# Targets (issue 3, section 8): throughput >= 70% of the raw primitive rate;
# p99 <= 5 ms at half of peak throughput; groupd's memory flat within 10% over
# a one-minute run.
#
# Usage: bench/groupd_load.sh [BUILD_DIR] [--quick] [--connections N]
#                             [--open-connections N] [--groupd-threads N] [--nice N]
#                             [--store-dir DIR] [--bulk N] [--out DIR] [--keep]
#   BUILD_DIR      where blindlist, blindlist-groupd and bench_groupd_load
#                  were built (default build; `cmake --build BUILD --target bench`)
#   --quick        3 s peak, 4 s half-peak, 15 s memory runs, openssl speed
#                  for 1 s and only before (about 2 minutes instead of about 6)
#   --connections  connections of the closed-loop runs (default 2 x nproc)
#   --open-connections  connections of the open-loop runs (default 8 x nproc)
#   --groupd-threads  groupd's [server] threads (default: as deploy/groupd.toml, 2);
#                  requests do not hold a thread while their audit record is
#                  committed, so one per core is enough
#   --nice         run groupd and the load client under `nice -n N` (negative
#                  N needs root), so that other load on a shared machine takes
#                  less of the cores from them; openssl speed runs under it too
#   --store-dir    put groupd's SQLite file in DIR instead of the temporary
#                  directory (e.g. /dev/shm: syncs cost nothing there, which
#                  shows what the per-request audit commit costs elsewhere)
#   --bulk         items per bulk request in the bulk runs (default 50; 0: no bulk runs)
#   --out          keep the JSON results, groupd's log and a Markdown table there
#   --keep         keep the temporary directory (PKI, store, configuration)
set -euo pipefail

build=build
quick=0
keep=0
out=""
connections=$((2 * $(nproc)))
open_connections=$((8 * $(nproc)))
groupd_threads=$(awk -F= '$1 ~ /^threads *$/ { gsub(/ /, "", $2); print $2 }' \
  "$(dirname "$0")/../deploy/groupd.toml")
niceness=0
store_dir=""
bulk=50
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --connections) connections="$2"; shift ;;
    --open-connections) open_connections="$2"; shift ;;
    --groupd-threads) groupd_threads="$2"; shift ;;
    --nice) niceness="$2"; shift ;;
    --store-dir) store_dir="$2"; shift ;;
    --bulk) bulk="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h | --help) sed -n '2,62p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "groupd_load: unknown option $1" >&2; exit 2 ;;
    *) build="$1" ;;
  esac
  shift
done
if ((quick)); then
  peak_s=3 half_s=4 mem_s=15 speed_s=1
else
  peak_s=10 half_s=15 mem_s=60 speed_s=5
fi

die() { echo "groupd_load: $*" >&2; exit 1; }
for tool in openssl jq awk curl; do command -v "$tool" >/dev/null || die "needs $tool"; done
blindlist="$build/cli/blindlist"
groupd="$build/daemons/groupd/blindlist-groupd"
load="$build/bench/bench_groupd_load"
for b in "$blindlist" "$groupd" "$load"; do
  [[ -x "$b" ]] || die "no $b (cmake --build $build --target bench)"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/groupd-load.XXXXXX")"
if [[ -n "$store_dir" ]]; then
  store_dir="$(mktemp -d "$store_dir/groupd-load-store.XXXXXX")"
else
  store_dir="$work"
fi
groupd_pid=""
cleanup() {
  if [[ -n "$groupd_pid" ]] && kill -0 "$groupd_pid" 2>/dev/null; then
    kill -TERM "$groupd_pid" 2>/dev/null || true
    wait "$groupd_pid" 2>/dev/null || true
  fi
  if [[ -n "$out" && -f "$work/groupd.log" ]]; then cp "$work/groupd.log" "$out/"; fi
  if ((keep)); then
    echo "kept $work $store_dir" >&2
  else
    rm -rf "$work"
    [[ "$store_dir" == "$work" ]] || rm -rf "$store_dir"
  fi
}
trap cleanup EXIT
if [[ -z "$out" ]]; then out="$work/results"; fi
mkdir -p "$out"
ncpu=$(nproc)
log() { echo "== $*" >&2; }

# ---- a throwaway PKI ----
pki="$work/pki"
mkdir -p "$pki"
ossl() { openssl "$@" 2>>"$work/openssl.log" >/dev/null; }
make_ca() {  # NAME CN
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key"
  ossl req -x509 -new -key "$pki/$1.key" -out "$pki/$1.crt" -days 30 -subj "/O=blindlist bench/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -addext subjectKeyIdentifier=hash
}
issue() {  # NAME CA KEYALG(pkeyopt args) CN EXTENSIONS...
  local name=$1 ca=$2 alg=$3 cn=$4
  shift 4
  if [[ $alg == rsa3072 ]]; then
    ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$pki/$name.key"
  else
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name.key"
  fi
  ossl req -new -key "$pki/$name.key" -subj "/CN=$cn" -out "$pki/$name.csr"
  printf '%s\n' basicConstraints=critical,CA:FALSE subjectKeyIdentifier=hash \
    authorityKeyIdentifier=keyid "$@" >"$pki/$name.ext"
  ossl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
    -set_serial "0x$(openssl rand -hex 9)" -days 30 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
}
log "setup: PKI, groupd, groups and members"
make_ca tls-ca "bench TLS CA"
make_ca deploy-ca "bench deployment CA"
issue groupd tls-ca ec 127.0.0.1 keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth \
  subjectAltName=IP:127.0.0.1,DNS:localhost
# The member's S/MIME certificate: rewrap wraps the CEK to it (one RSA-3072 public op).
issue member deploy-ca rsa3072 member@bench.example keyUsage=critical,digitalSignature,keyEncipherment \
  extendedKeyUsage=emailProtection,clientAuth subjectAltName=email:member@bench.example
openssl rand -hex 32 >"$work/master.key"
chmod 600 "$work/master.key"

# ---- groupd: as the integration harness starts it, with rate limits out of the way ----
cat >"$work/groupd.toml" <<EOF
[server]
listen = "127.0.0.1:0"
certificate = "$pki/groupd.crt"
private_key = "$pki/groupd.key"
threads = $groupd_threads

[store]
url = "sqlite:$store_dir/groupd.db"

[keys]
master_key_file = "$work/master.key"
ca_certificate = "$pki/deploy-ca.crt"
ca_private_key = "$pki/deploy-ca.key"
group_certificate_days = 30

[limits]
# The benchmark is one caller per group at thousands of requests/s.
rate_per_second = 1000000
rate_burst = 1000000
max_connections_per_peer = 1024

[log]
level = "info"
EOF
admin_token=$("$groupd" --config "$work/groupd.toml" admin-token bench)
nice -n "$niceness" "$groupd" --config "$work/groupd.toml" --port-file "$work/groupd.port" \
  2>"$work/groupd.log" &
groupd_pid=$!
for ((i = 0; i < 1200; i++)); do
  [[ -s "$work/groupd.port" ]] && break
  kill -0 "$groupd_pid" 2>/dev/null || die "groupd exited: $(tail -5 "$work/groupd.log")"
  sleep 0.1
done
[[ -s "$work/groupd.port" ]] || die "groupd did not write its port"
url="https://127.0.0.1:$(cat "$work/groupd.port")"
curl -sf --cacert "$pki/tls-ca.crt" "$url/healthz" >/dev/null || die "groupd /healthz failed"
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$groupd_pid/status"; }
rss_start=$(rss_kb)

admin() { "$blindlist" admin --server "$url" --ca "$pki/tls-ca.crt" --token "$admin_token" --json "$@"; }
declare -A group_name=([rsa3072]=rsa@bench.example [p256]=ec@bench.example)
declare -A token
for kind in rsa3072 p256; do
  g=${group_name[$kind]}
  admin group create "$g" --key-type "$kind" | jq -r .certificate >"$work/group-$kind.crt"
  token[$kind]=$(admin member add "$g" member@bench.example --cert "$pki/member.crt" --token |
    jq -r .token)
  [[ ${token[$kind]} == blt_* ]] || die "no member token for $g"
  # With --keep, enough to start groupd again and load it by hand (profiling).
  echo "${token[$kind]}" >"$work/token-$kind"
done

# ---- measurements ----
cpu_busy() {  # "busy total" jiffies of all CPUs, from /proc/stat
  awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
metrics() { curl -sf --cacert "$pki/tls-ca.crt" "$url/metrics"; }
# handler_stats OP BEFORE AFTER: groupd's own time in the handler for OP between
# two /metrics scrapes: "count mean_ms share_le_5ms p99_bucket_ms".
handler_stats() {
  awk -v op="$1" '
    FNR == 1 { f++ }
    index($0, "groupd_request_duration_seconds") && index($0, "operation=\"" op "\"") {
      v = $NF + 0
      if (match($0, /le="[^"]*"/)) { le = substr($0, RSTART + 4, RLENGTH - 5); b[f, le] = v; les[le] = 1 }
      else if ($1 ~ /_sum/) s[f] = v
      else if ($1 ~ /_count/) c[f] = v
    }
    END {
      n = c[2] - c[1]; if (n <= 0) { print "0 0 0 0"; exit }
      p99 = "+Inf"; best = 1e9
      for (le in les) {
        if (le == "+Inf") continue
        if (b[2, le] - b[1, le] >= 0.99 * n && le + 0 < best) { best = le + 0; p99 = le }
      }
      le5 = (b[2, "0.005"] - b[1, "0.005"]) / n
      printf "%d %.3f %.4f %s\n", n, 1000 * (s[2] - s[1]) / n, le5, (p99 == "+Inf" ? "inf" : 1000 * p99)
    }' "$2" "$3"
}
# run_load NAME OP KIND CONNECTIONS RATE SECONDS [BULK]: one bench_groupd_load run;
# adds groupd's handler figures and the machine's CPU use to its JSON line.
run_load() {
  local name=$1 op=$2 kind=$3 conns=$4 rate=$5 secs=$6 items=${7:-0} extra=() hop=$2
  [[ $op == rewrap ]] && extra=(--member-key "$pki/member.key")
  if ((items > 0)); then extra+=(--bulk "$items"); hop=bulk; fi
  metrics >"$work/m1"
  read -r busy1 total1 < <(cpu_busy)
  nice -n "$niceness" "$load" --url "$url" --ca "$pki/tls-ca.crt" --token "${token[$kind]}" \
    --group "${group_name[$kind]}" \
    --group-cert "$work/group-$kind.crt" --operation "$op" --connections "$conns" --rate "$rate" \
    --duration "$secs" --server-pid "$groupd_pid" "${extra[@]}" >"$work/run.json"
  read -r busy2 total2 < <(cpu_busy)
  metrics >"$work/m2"
  read -r hn hmean hle5 hp99 < <(handler_stats "$hop" "$work/m1" "$work/m2")
  jq -c --arg kind "$kind" --argjson busy "$(awk -v a="$busy1" -v b="$busy2" -v c="$total1" \
    -v d="$total2" 'BEGIN { printf "%.4f", (d > c) ? (b - a) / (d - c) : 0 }')" \
    --argjson hn "$hn" --argjson hmean "$hmean" --argjson hle5 "$hle5" --arg hp99 "$hp99" \
    '. + {kind: $kind, machine_busy: $busy,
          handler: {count: $hn, mean_ms: $hmean, share_le_5ms: $hle5, p99_bucket_ms: $hp99}}' \
    "$work/run.json" | tee "$out/$name.json" >&2
}
speed() {  # WHEN [SECONDS]: openssl speed for rsa3072 and ecdhp256, one line "rsa_sign rsa_verify ecdh"
  local secs=${2:-$speed_s}
  nice -n "$niceness" openssl speed -seconds "$secs" rsa3072 2>/dev/null >"$out/speed-rsa-$1.txt"
  nice -n "$niceness" openssl speed -seconds "$secs" ecdhp256 2>/dev/null >"$out/speed-ecdh-$1.txt"
  # "rsa 3072 bits 0.002258s 0.000053s    442.8  18715.1": sign/s, verify/s are fields 6 and 7.
  # " 256 bits ecdh (nistp256)   0.0001s  13967.2": op/s is the last field.
  echo "$(awk '$1 == "rsa" && $2 == "3072" { print $6, $7 }' "$out/speed-rsa-$1.txt")" \
    "$(awk '/ecdh \(nistp256\)/ { print $NF }' "$out/speed-ecdh-$1.txt")" >"$out/speed-$1.txt"
  [[ $(wc -w <"$out/speed-$1.txt") -eq 3 ]] || die "could not read openssl speed's output"
}
# NAME: openssl speed just before and just after the peak run NAME (1 s each), averaged
# into "$out/raw-NAME.txt": on a shared machine the raw rate moves within minutes, and
# each row's "% of raw" compares its peak with the primitive measured seconds apart.
row_speed() {
  speed "pre-$1" 1
}
row_speed_done() {
  speed "post-$1" 1
  paste -d' ' "$out/speed-pre-$1.txt" "$out/speed-post-$1.txt" |
    awk '{ printf "%.1f %.1f %.1f\n", ($1 + $4) / 2, ($2 + $5) / 2, ($3 + $6) / 2 }' >"$out/raw-$1.txt"
}

# What one synchronous write costs on the store's file system: groupd's SQLite
# (WAL, synchronous=FULL) syncs the WAL at every commit, and every request's
# audit record is committed (in a batch with those of concurrent requests). Prints the mean milliseconds per 4 KiB O_DSYNC write.
sync_write_ms() {
  local n=200 t0 t1
  t0=$(date +%s%N)
  dd if=/dev/zero of="$store_dir/sync-test" bs=4096 count=$n oflag=dsync status=none
  t1=$(date +%s%N)
  rm -f "$store_dir/sync-test"
  awk -v d=$((t1 - t0)) -v n=$n 'BEGIN { printf "%.2f", d / n / 1e6 }'
}

machine="$ncpu CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "openssl speed ($speed_s s each)"
speed before
sync_before=$(sync_write_ms)
for kind in rsa3072 p256; do
  for op in unwrap rewrap blind; do
    log "$kind $op: closed loop, $connections connections, $peak_s s"
    row_speed "peak-$kind-$op"
    run_load "peak-$kind-$op" "$op" "$kind" "$connections" 0 "$peak_s"
    row_speed_done "peak-$kind-$op"
    half=$(jq -r '.throughput_rps / 2' "$out/peak-$kind-$op.json")
    log "$kind $op: open loop at $half requests/s, $open_connections connections, $half_s s"
    run_load "half-$kind-$op" "$op" "$kind" "$open_connections" "$half" "$half_s"
  done
  # The floor: GET the group certificate takes the same TLS, HTTP, store reads
  # and audit commit as an operation, without the private-key operation.
  log "$kind floor (GET certificate): closed loop, $connections connections, $peak_s s"
  run_load "floor-$kind" certificate "$kind" "$connections" 0 "$peak_s"
done

if ((bulk > 0)); then
  for kind in rsa3072 p256; do
    for op in unwrap rewrap blind; do
      log "$kind $op bulk x $bulk: closed loop, $connections connections, $peak_s s"
      row_speed "bulk-peak-$kind-$op"
      run_load "bulk-peak-$kind-$op" "$op" "$kind" "$connections" 0 "$peak_s" "$bulk"
      row_speed_done "bulk-peak-$kind-$op"
      half=$(jq -r '.throughput_rps / 2' "$out/bulk-peak-$kind-$op.json")
      log "$kind $op bulk x $bulk: open loop at $half requests/s, $open_connections connections, $half_s s"
      run_load "bulk-half-$kind-$op" "$op" "$kind" "$open_connections" "$half" "$half_s" "$bulk"
    done
  done
fi

log "memory: all six at once, each at a sixth of its half peak, $mem_s s, VmRSS every second"
rss_before_mix=$(rss_kb)
pids=()
for kind in rsa3072 p256; do
  for op in unwrap rewrap blind; do
    rate=$(jq -r '.throughput_rps / 12' "$out/peak-$kind-$op.json")
    nice -n "$niceness" "$load" --url "$url" --ca "$pki/tls-ca.crt" --token "${token[$kind]}" \
      --group "${group_name[$kind]}" --group-cert "$work/group-$kind.crt" --operation "$op" \
      --connections 2 --rate "$rate" --duration "$mem_s" --no-check >"$out/mix-$kind-$op.json" &
    pids+=($!)
  done
done
: >"$out/rss.txt"
# The clients prepare their bodies first; sample from when the last one is timing.
sleep 2
for ((t = 1; t <= mem_s; t++)); do
  echo "$t $(rss_kb)" >>"$out/rss.txt"
  sleep 1
done
for p in "${pids[@]}"; do wait "$p" || die "a memory-run client failed"; done
rss_end=$(rss_kb)

if ((!quick)); then
  log "openssl speed again"
  speed after
else
  cp "$out/speed-before.txt" "$out/speed-after.txt"
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
sync_after=$(sync_write_ms)

# ---- the table ----
{
  echo "machine: $machine; $(openssl version); $started"
  echo "load average before $load_before, after $load_after"
  echo "groupd and the load client at nice $niceness; groupd: threads = $groupd_threads, SQLite (WAL, synchronous=FULL) on $(df -T "$store_dir" | awk 'NR == 2 { print $2 }'),"
  echo "a 4 KiB O_DSYNC write there takes $sync_before ms before the load, $sync_after ms after it"
  echo "runs: peak = closed loop ${peak_s} s, half = open loop ${half_s} s at half the peak;" \
    "keep-alive TLS 1.3 connections: $connections closed loop, $open_connections open loop;" \
    "memory run ${mem_s} s"
  echo
  for f in "$out"/peak-*.json "$out"/half-*.json; do jq -c --arg f "$(basename "$f" .json)" '{f: $f} + .' "$f"; done |
    awk -v ncpu="$ncpu" -v before="$(cat "$out/speed-before.txt")" -v after="$(cat "$out/speed-after.txt")" \
      -v rows="$(for f in "$out"/raw-peak-*.txt; do [[ -e $f ]] && echo "$(basename "$f" .txt | cut -d- -f3-4 | tr - ' ')=$(tr ' ' , <"$f")"; done | paste -sd';')" '
    function num(key,   r) {  # the number after "key": in the current line
      if (!match($0, "\"" key "\":[-0-9.e+]+")) return 0
      r = substr($0, RSTART, RLENGTH); sub(/.*:/, "", r); return r + 0
    }
    function sub_num(obj, key,   s) {  # key inside the JSON object "obj":{...}
      if (!match($0, "\"" obj "\":\\{[^}]*\\}")) return 0
      s = substr($0, RSTART, RLENGTH)
      if (!match(s, "\"" key "\":\"?[-0-9.e+inf]+")) return 0
      s = substr(s, RSTART, RLENGTH); sub(/.*:"?/, "", s)
      return (s ~ /^[-0-9.e+]+$/) ? s + 0 : s
    }
    BEGIN {
      split(before, b, " "); split(after, a, " ")
      sign = (b[1] + a[1]) / 2; verify = (b[2] + a[2]) / 2; ecdh = (b[3] + a[3]) / 2
      # Raw primitive rate per CPU-second of one core, per operation (see the header).
      raw["rsa3072 unwrap"] = sign; raw["rsa3072 blind"] = sign
      raw["rsa3072 rewrap"] = 1 / (1 / sign + 1 / verify)
      raw["p256 unwrap"] = ecdh; raw["p256 blind"] = ecdh
      raw["p256 rewrap"] = 1 / (1 / ecdh + 1 / verify)
      # The rates measured around each peak run, where there are any, replace the global ones.
      nrows = split(rows, rr, ";")
      for (i = 1; i <= nrows; i++) {
        split(rr[i], kv, "="); split(kv[2], v, ",")
        if (split(kv[1], kk, " ") != 2) continue
        prim = (kk[1] == "p256") ? v[3] : v[1]
        raw[kv[1]] = (kk[2] == "rewrap") ? 1 / (1 / prim + 1 / v[2]) : prim
        local_raw = 1
      }
      printf "openssl speed (per CPU-second of one core), before / after the load: rsa3072 sign/s %.1f / %.1f,", b[1], a[1]
      printf " verify/s %.1f / %.1f; ecdhp256 op/s %.1f / %.1f\n", b[2], a[2], b[3], a[3]
      if (local_raw) printf "raw ops per CPU-s below: openssl speed for 1 s just before and just after each peak run, averaged\n"
      printf "\n"
    }
    {
      split($0, parts, "\""); name = parts[4]; split(name, n, "-"); key = n[2] " " n[3]
      keys[key] = 1
      if (n[1] == "peak") {
        tp[key] = num("throughput_rps"); scpu[key] = num("server_cpu_s"); ccpu[key] = num("client_cpu_s")
        rpc[key] = num("server_requests_per_cpu_s"); busy[key] = num("machine_busy")
        dur[key] = num("duration_s"); perr[key] = num("total"); recon[key] = num("reconnects")
        hmean[key] = sub_num("handler", "mean_ms")
      } else {
        hrate[key] = num("throughput_rps"); p50[key] = sub_num("latency_ms", "p50")
        p99[key] = sub_num("latency_ms", "p99"); sp99[key] = sub_num("service_latency_ms", "p99")
        hp99[key] = sub_num("handler", "p99_bucket_ms"); h5[key] = sub_num("handler", "share_le_5ms")
        herr[key] = num("total"); hmean_half[key] = sub_num("handler", "mean_ms")
      }
    }
    END {
      printf "| operation | group | peak req/s | req per groupd CPU-s | raw ops per CPU-s | %% of raw (CPU) |"
      printf " %% of %d x raw (wall) | client CPU share | machine busy |", ncpu
      printf " p50 @ half | p99 @ half | p99 from send | handler mean / p99 @ half | errors |\n"
      printf "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
      split("rsa3072 unwrap,rsa3072 rewrap,rsa3072 blind,p256 unwrap,p256 rewrap,p256 blind", order, ",")
      for (i = 1; i <= 6; i++) {
        k = order[i]; if (!(k in keys)) continue
        split(k, kk, " ")
        pc = 100 * rpc[k] / raw[k]; pw = 100 * tp[k] / (ncpu * raw[k])
        share = (scpu[k] + ccpu[k] > 0) ? 100 * ccpu[k] / (scpu[k] + ccpu[k]) : 0
        printf "| %s | %s | %.0f | %.0f | %.0f | %.0f%% %s | %.0f%% %s | %.0f%% | %.0f%% | %.2f ms | %.2f ms %s |",
          kk[2], (kk[1] == "p256" ? "P-256" : "RSA-3072"), tp[k], rpc[k], raw[k],
          pc, (pc >= 70 ? "MET" : "MISSED"), pw, (pw >= 70 ? "MET" : "MISSED"), share, 100 * busy[k],
          p50[k], p99[k], (p99[k] <= 5 ? "MET" : "MISSED")
        printf " %.2f ms | %.2f ms / <= %s ms | %d + %d |\n", sp99[k], hmean_half[k], hp99[k], perr[k], herr[k]
      }
      printf "\npeak req/s: closed loop, wall clock. req per groupd CPU-s: requests / groupd utime+stime.\n"
      printf "client CPU share: the load client'"'"'s CPU / (client + groupd), peak run. machine busy: all CPUs,\n"
      printf "peak run (/proc/stat). p50/p99 @ half: open loop at half the peak, from when each request was\n"
      printf "due; from send: from when it was sent. handler: groupd'"'"'s own time in the request handler\n"
      printf "(/metrics; p99 as a histogram bucket bound). errors: peak + half runs (non-200, bad body, I/O,\n"
      printf "unsent).\n"
    }'
  echo
  read -r sb vb eb < "$out/speed-before.txt"
  read -r sa va ea < "$out/speed-after.txt"
  for kind in rsa3072 p256; do
    f="$out/floor-$kind.json"
    [[ -e "$f" ]] || continue
    if [[ -e "$out/raw-peak-$kind-unwrap.txt" ]]; then
      read -r sb vb eb < "$out/raw-peak-$kind-unwrap.txt"
      sa=$sb ea=$eb
    fi
    awk -v kind="$kind" -v sb="$sb" -v sa="$sa" -v eb="$eb" -v ea="$ea" \
      -v fpc="$(jq -r .server_requests_per_cpu_s "$f")" -v ftp="$(jq -r .throughput_rps "$f")" 'BEGIN {
        raw = (kind == "p256") ? (eb + ea) / 2 : (sb + sa) / 2
        printf "floor, %s group: GET certificate %.0f req/s, %.0f req per groupd CPU-s (%.0f us each);", \
          (kind == "p256" ? "P-256" : "RSA-3072"), ftp, fpc, 1e6 / fpc
        printf " so one %s per request can reach at most %.0f%% of the raw rate per CPU-s\n", \
          (kind == "p256" ? "ECDH" : "RSA private op"), 100 * fpc / (fpc + raw)
      }'
  done
  if ((bulk > 0)); then
    echo
    echo "Bulk: POST .../bulk with $bulk items per request (items/s; p50/p99 are of a whole request)."
    echo
    echo "| operation | group | peak items/s | items per groupd CPU-s | raw ops per CPU-s | % of raw (CPU) | % of $ncpu x raw (wall) | p50 @ half | p99 @ half | errors |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    for kind in rsa3072 p256; do
      for op in unwrap rewrap blind; do
        pk="$out/bulk-peak-$kind-$op.json" hf="$out/bulk-half-$kind-$op.json"
        [[ -e "$pk" && -e "$hf" ]] || continue
        if [[ -e "$out/raw-bulk-peak-$kind-$op.txt" ]]; then
          read -r sb vb eb < "$out/raw-bulk-peak-$kind-$op.txt"
          sa=$sb va=$vb ea=$eb
        fi
        awk -v kind="$kind" -v op="$op" -v ncpu="$ncpu" -v sb="$sb" -v vb="$vb" -v eb="$eb" \
          -v sa="$sa" -v va="$va" -v ea="$ea" \
          -v ips="$(jq -r .items_per_s "$pk")" -v ipc="$(jq -r '.server_items_per_cpu_s // 0' "$pk")" \
          -v p50="$(jq -r .latency_ms.p50 "$hf")" -v p99="$(jq -r .latency_ms.p99 "$hf")" \
          -v err="$(jq -r '.errors.total' "$pk") + $(jq -r '.errors.total' "$hf")" 'BEGIN {
            sign = (sb + sa) / 2; verify = (vb + va) / 2; ecdh = (eb + ea) / 2
            prim = (kind == "p256") ? ecdh : sign
            raw = (op == "rewrap") ? 1 / (1 / prim + 1 / verify) : prim
            pc = 100 * ipc / raw; pw = 100 * ips / (ncpu * raw)
            printf "| %s | %s | %.0f | %.0f | %.0f | %.0f%% %s | %.0f%% %s | %.2f ms | %.2f ms | %s |\n",
              op, (kind == "p256" ? "P-256" : "RSA-3072"), ips, ipc, raw,
              pc, (pc >= 70 ? "MET" : "MISSED"), pw, (pw >= 70 ? "MET" : "MISSED"), p50, p99, err
          }'
      done
    done
  fi
  echo
  awk -v start="$rss_start" -v before="$rss_before_mix" -v end="$rss_end" '
    { t[NR] = $1; r[NR] = $2; if (NR == 1 || $2 > max) max = $2; if (NR == 1 || $2 < min) min = $2 }
    END {
      first = r[1]; last = r[NR]
      dev = (max - first > first - min ? max - first : first - min) / first * 100
      printf "groupd VmRSS over the %d s memory run: first %.1f MB, last %.1f MB, min %.1f MB, max %.1f MB;", NR, first / 1024, last / 1024, min / 1024, max / 1024
      printf " drift (last - first) %+.1f%%, largest deviation from first %.1f%%: %s\n", (last - first) / first * 100, dev, (dev <= 10 ? "MET" : "MISSED")
      printf "(VmRSS at start %.1f MB, before the memory run %.1f MB, after it %.1f MB)\n", start / 1024, before / 1024, end / 1024
    }' "$out/rss.txt"
  jq -rs '"memory run clients: " + (map("\(.group) \(.operation) \(.throughput_rps) req/s, p99 \(.latency_ms.p99) ms, errors \(.errors.total)") | join("; "))' \
    "$out"/mix-*.json
} | tee "$out/table.md"
if [[ "$out" != "$work/results" ]]; then echo "raw results in $out" >&2; fi
