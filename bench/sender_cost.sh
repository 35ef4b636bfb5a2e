#!/usr/bin/env bash
# Sender cost against list size (docs/benchmarks.md).
#
# A sender encrypting one 100 KB post to a list of N members:
#   blindlist  `blindlist encrypt --to group.crt`: one RecipientInfo for the
#              group key, whatever N is (the exploder fans out, not the sender)
#   gpg        `gpg --encrypt` with one --recipient per member (N key packets)
#   openssl    `openssl cms -encrypt -aes256` to N member certificates (N KTRIs)
# for N = 1, 10, 100, 300, timed with hyperfine; prints time and output size
# per N and the ratios gpg/blindlist and openssl/blindlist.
#
# Then the start-up and large-post comparison, in one hyperfine run (the sender's
# cost must be the encryption, not the start-up): `blindlist --version` against
# `openssl version` (target: within 1.5x), and `blindlist encrypt` / `decrypt`
# against `openssl cms -encrypt -aes-256-gcm` / `-decrypt` of the same 100 KB and
# 24 MB posts to the group certificate (target: no slower, by median wall time).
# Each is timed twice: with -o FILE (blindlist fsyncs the file and renames it
# into place; openssl cms just writes it) and to standard output (both discarded
# by hyperfine), so the cost of that durability is visible.
#
# Usage: bench/sender_cost.sh [BLINDLIST] [--quick] [--runs R] [--n "1 10 100 300"]
#                             [--x509-key rsa2048|p256] [--cache DIR] [--out DIR]
#   BLINDLIST   the blindlist binary (default build/cli/blindlist)
#   --quick     3 timed runs of gpg and openssl instead of 10 (blindlist: 3x as many)
#   --x509-key  member certificate key for openssl cms (default rsa2048, the
#               common S/MIME key; p256 is much faster to generate: one KARI
#               with its own ephemeral key per member)
#   --cache     where member keys and certificates are kept between runs
#               (default ${TMPDIR:-/tmp}/blindlist-sender-cost); generated once
#   --out       keep the hyperfine JSON and a Markdown table there
#               (default: a temporary directory, removed at exit)
#   --no-startup  skip the start-up and large-post comparison
set -euo pipefail

blindlist=build/cli/blindlist
runs=10
ns="1 10 100 300"
cache="${TMPDIR:-/tmp}/blindlist-sender-cost"
out=""
x509_key=rsa2048
startup=1
while (($#)); do
  case "$1" in
    --quick) runs=3 ;;
    --runs) runs="$2"; shift ;;
    --n) ns="$2"; shift ;;
    --cache) cache="$2"; shift ;;
    --x509-key) x509_key="$2"; shift ;;
    --out) out="$2"; shift ;;
    --no-startup) startup=0 ;;
    -h | --help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "sender_cost: unknown option $1" >&2; exit 2 ;;
    *) blindlist="$1" ;;
  esac
  shift
done

die() { echo "sender_cost: $*" >&2; exit 1; }
case "$x509_key" in
  rsa2048) newkey=(rsa:2048) ;;
  p256) newkey=(ec -pkeyopt ec_paramgen_curve:P-256) ;;
  *) die "--x509-key is rsa2048 or p256" ;;
esac
for tool in hyperfine gpg gpgconf openssl jq awk; do
  command -v "$tool" >/dev/null || die "needs $tool"
done
[[ -x "$blindlist" ]] || die "no blindlist binary at $blindlist (build it, or pass its path)"
blindlist="$(cd "$(dirname "$blindlist")" && pwd)/$(basename "$blindlist")"
max_n=0
for n in $ns; do ((n > max_n)) && max_n=$n; done
# hyperfine runs the commands without a shell (-N), splitting on spaces.
[[ "$cache" != *" "* ]] || die "the cache path must not contain spaces"

mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sender-cost.XXXXXX")"
[[ "$work" != *" "* ]] || die "TMPDIR must not contain spaces"
export GNUPGHOME="$cache/gnupg"
cleanup() {
  gpgconf --homedir "$GNUPGHOME" --kill gpg-agent >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "$out" ]]; then out="$work/results"; fi
mkdir -p "$out"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# The machine may be shared: the load goes with the figures (load.txt, and standard error).
note_load() { echo "$1: $(uptime)" | tee -a "$out/load.txt" >&2; }

# ---- the post: a 102400-byte RFC 5322 message, text/plain, word-like text
#      (so gpg's default compression sees realistic input) ----
post="$work/post.eml"
{
  printf 'From: Alice Sender <alice@example.org>\n'
  printf 'To: Project list <list@example.org>\n'
  printf 'Subject: Quarterly report draft for review\n'
  printf 'Date: Mon, 03 Mar 2025 10:00:00 +0000\n'
  printf 'Message-ID: <bench-100k@example.org>\n'
  printf 'MIME-Version: 1.0\n'
  printf 'Content-Type: text/plain; charset=us-ascii\n'
  printf 'Content-Transfer-Encoding: 7bit\n\n'
  awk 'BEGIN {
    srand(5322)
    n = split("the list server cannot read mail a sender encrypts post once with fresh " \
              "random message key wrapped to group public members get back from key " \
              "holder who alone decides membership report budget quarter review draft " \
              "figures meeting agenda action items follow up schedule release notes", w, " ")
    for (l = 0; l < 2000; l++) {
      line = ""
      while (length(line) < 66) line = line w[int(rand() * n) + 1] " "
      print line "."
    }
  }'
} >"$work/post.long"
head -c 102400 "$work/post.long" >"$post"
[[ $(wc -c <"$post") -eq 102400 ]] || die "could not build the 100 KB post"

# ---- the group certificate (RSA-3072, as groupd makes by default) ----
t0=$(now_ms)
if [[ ! -s "$cache/group.crt" ]]; then
  openssl req -x509 -newkey rsa:3072 -nodes -keyout "$cache/group.key" -out "$cache/group.crt" \
    -days 365 -subj /CN=list@example.org -addext subjectAltName=email:list@example.org \
    -addext keyUsage=critical,keyEncipherment -addext extendedKeyUsage=emailProtection \
    2>/dev/null
fi

# ---- N member OpenPGP keys (Ed25519 signing, Curve25519 encryption), one batch ----
mkdir -p "$GNUPGHOME"
chmod 700 "$GNUPGHOME"
have_gpg=$(gpg --batch --with-colons --list-keys 2>/dev/null | grep -c '^pub' || true)
if ((have_gpg < max_n)); then
  echo "generating $((max_n - have_gpg)) OpenPGP member keys ..." >&2
  for ((i = have_gpg + 1; i <= max_n; i++)); do
    printf 'Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n'
    printf 'Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n'
    printf 'Name-Email: m%d@example.org\nExpire-Date: 0\n%%no-protection\n%%commit\n' "$i"
  done >"$work/gpg-batch"
  gpg --batch --quiet --gen-key "$work/gpg-batch" 2>/dev/null
fi
# Fingerprints in member order m1, m2, ...: naming keys by fingerprint spares
# gpg a user-ID search, which only flatters gpg.
gpg --batch --with-colons --list-keys 2>/dev/null | awk -F: '
  $1 == "pub" { want = 1; next }
  $1 == "fpr" && want { fpr = $10; want = 0; next }
  $1 == "uid" && fpr != "" { match($10, /m[0-9]+@/); n = substr($10, RSTART + 1, RLENGTH - 2)
                             print n, fpr; fpr = "" }' | sort -n >"$work/fprs"
[[ $(wc -l <"$work/fprs") -ge $max_n ]] || die "missing OpenPGP member keys in $GNUPGHOME"

# ---- N member X.509 certificates, in parallel ----
x509="$cache/x509-$x509_key"
mkdir -p "$x509"
missing=()
for ((i = 1; i <= max_n; i++)); do
  [[ -s "$x509/m$i.crt" ]] || missing+=("$i")
done
if ((${#missing[@]})); then
  echo "generating ${#missing[@]} $x509_key member certificates ..." >&2
  printf '%s\n' "${missing[@]}" | xargs -P "$(nproc)" -I{} openssl req -x509 -newkey "${newkey[@]}" \
    -nodes -keyout "$x509/m{}.key" -out "$x509/m{}.crt" -days 365 \
    -subj "/CN=m{}@example.org" -addext "subjectAltName=email:m{}@example.org" 2>/dev/null
fi
setup_ms=$(($(now_ms) - t0))
echo "setup (keys and certificates, generated or cached): $((setup_ms / 1000)) s" >&2

# ---- measure ----
note_load "before the N runs"
# Per command: median, minimum and maximum wall time, mean CPU time (user +
# system), in ms, and output size. On a shared machine the CPU time and the
# minimum are the steadier figures.
printf '%s\n' "N bl_wall bl_min bl_max bl_cpu bl_bytes gpg_wall gpg_min gpg_max gpg_cpu gpg_bytes" \
  "ossl_wall ossl_min ossl_max ossl_cpu ossl_bytes" | paste -sd' ' >"$out/results.txt"
stat_ms() {
  jq -r --arg c "$2" '.results[] | select(.command == $c)
    | "\(.median * 1000) \(.min * 1000) \(.max * 1000) \((.user + .system) * 1000)"' "$1"
}
for n in $ns; do
  gpg_rcpts=$(head -n "$n" "$work/fprs" | awk '{ printf " --recipient %s", $2 }')
  certs=$(for ((i = 1; i <= n; i++)); do printf ' %s' "$x509/m$i.crt"; done)
  bl_out="$work/bl-$n.eml"
  gpg_out="$work/gpg-$n.asc"
  ossl_out="$work/ossl-$n.eml"
  echo "== N = $n" >&2
  # blindlist is cheap and the figure every ratio divides by: it gets 3x the runs.
  hyperfine -N --style basic --warmup 1 --runs "$((3 * runs))" \
    --export-json "$out/hyperfine-$n-blindlist.json" \
    -n blindlist "$blindlist encrypt --to $cache/group.crt -i $post -o $bl_out" >&2
  hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$out/hyperfine-$n.json" \
    -n gpg "gpg --batch --yes --quiet --trust-model always --armor --output $gpg_out --encrypt$gpg_rcpts $post" \
    -n openssl "openssl cms -encrypt -aes256 -in $post -out $ossl_out$certs" >&2
  echo "$n $(stat_ms "$out/hyperfine-$n-blindlist.json" blindlist) $(wc -c <"$bl_out")" \
    "$(stat_ms "$out/hyperfine-$n.json" gpg) $(wc -c <"$gpg_out")" \
    "$(stat_ms "$out/hyperfine-$n.json" openssl) $(wc -c <"$ossl_out")" >>"$out/results.txt"
done

note_load "after the N runs"

# ---- check that every output decrypts back to the post (for member 1 / the group key) ----
n=$max_n
"$blindlist" decrypt --key "$cache/group.key" -i "$work/bl-$n.eml" -o "$work/bl.dec"
gpg --batch --quiet --decrypt --output "$work/gpg.dec" "$work/gpg-$n.asc" 2>/dev/null
openssl cms -decrypt -recip "$x509/m1.crt" -inkey "$x509/m1.key" \
  -in "$work/ossl-$n.eml" -out "$work/ossl.dec"
# openssl cms writes the MIME entity with CRLF line ends.
tr -d '\r' <"$work/ossl.dec" >"$work/ossl.lf"
for f in bl.dec gpg.dec ossl.lf; do
  cmp -s "$post" "$work/$f" || die "$f does not match the post"
done
echo "all three outputs at N = $n decrypt back to the post" >&2

# ---- report ----
awk -v runs="$runs" '
  NR == 1 { next }
  { k = NR - 1; last = k
    n[k] = $1; bw[k] = $2; bm[k] = $3; bx[k] = $4; bc[k] = $5; bs[k] = $6
    gw[k] = $7; gm[k] = $8; gc[k] = $10; gs[k] = $11
    ow[k] = $12; om[k] = $13; oc[k] = $15; os[k] = $16 }
  END {
    printf "\nhyperfine -N, 1 warm-up, %d timed runs of gpg and openssl, %d of blindlist.\n", runs, 3 * runs
    printf "wall: median wall-clock ms; "
    printf "cpu: mean user+system ms; size: output bytes; ratios: other tool / blindlist.\n\n"
    printf "| N | blindlist wall | cpu | size | gpg wall | cpu | size | openssl wall | cpu | size |"
    printf " gpg/bl wall | gpg/bl cpu | openssl/bl wall | openssl/bl cpu |\n"
    printf "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    for (k = 1; k <= last; k++)
      printf "| %d | %.1f | %.1f | %d | %.1f | %.1f | %d | %.1f | %.1f | %d | %.1fx | %.1fx | %.1fx | %.1fx |\n",
        n[k], bw[k], bc[k], bs[k], gw[k], gc[k], gs[k], ow[k], oc[k], os[k],
        gw[k] / bw[k], gc[k] / bc[k], ow[k] / bw[k], oc[k] / bc[k]
    printf "\nfastest run (min wall ms): "
    for (k = 1; k <= last; k++)
      printf "%sN=%d blindlist %.1f gpg %.1f openssl %.1f", (k > 1 ? "; " : ""), n[k], bm[k], gm[k], om[k]
    printf "\n"
    same = 1; wmin = wmax = bw[1]; cmin = cmax = bc[1]
    for (k = 1; k <= last; k++) {
      if (bs[k] != bs[1]) same = 0
      if (bw[k] < wmin) wmin = bw[k]; if (bw[k] > wmax) wmax = bw[k]
      if (bc[k] < cmin) cmin = bc[k]; if (bc[k] > cmax) cmax = bc[k]
    }
    # blindlist is given the same command line for every N (the list size never
    # reaches the sender), so its work cannot grow with N; the output size shows
    # it, and any spread of its times across N is the machine, printed for scale.
    printf "\nblindlist across N: same command, output size %s; max/min of median wall %.2f,",
      same ? "the same" : "NOT the same", wmax / wmin
    printf " of mean cpu %.2f (noise: its runs at N = %d span %.1f to %.1f ms)\n",
      cmax / cmin, n[1], bm[1], bx[1]
    # Not a target: flat in N holds by construction (the command never sees N). Sizes only:
    # the bytes differ on every run (a fresh key and IV).
    printf "blindlist output size the same for every N: %s\n", same ? "yes" : "NO"
    at300 = (n[last] == 300)
    printf "target 2, N = %d, gpg/blindlist >= 100x: median wall %.1fx %s, cpu %.1fx %s,",
      n[last], gw[last] / bw[last], (at300 && gw[last] / bw[last] >= 100) ? "MET" : "MISSED",
      gc[last] / bc[last], (at300 && gc[last] / bc[last] >= 100) ? "MET" : "MISSED"
    printf " fastest run %.1fx %s\n",
      gm[last] / bm[last], (at300 && gm[last] / bm[last] >= 100) ? "MET" : "MISSED"
  }' "$out/results.txt" | tee "$out/table.md"

# ---- start-up and large posts: blindlist against openssl cms, one hyperfine run ----
if ((startup)); then
  echo "== start-up and large posts" >&2
  large="$work/post-24m.eml"
  { sed -n '1,8p' "$post"; printf '\n'; cat "$work/post.long"; } >"$large.tmp"
  while (($(wc -c <"$large.tmp") < 24 * 1024 * 1024)); do
    cat "$large.tmp" "$large.tmp" >"$large.2" && mv "$large.2" "$large.tmp"
  done
  head -c $((24 * 1024 * 1024)) "$large.tmp" >"$large"
  rm -f "$large.tmp"
  [[ $(wc -c <"$large") -eq $((24 * 1024 * 1024)) ]] || die "could not build the 24 MB post"
  key="$cache/group.key"
  crt="$cache/group.crt"
  for size in 100k 24m; do
    src="$post"; [[ $size == 24m ]] && src="$large"
    "$blindlist" encrypt --to "$crt" -i "$src" -o "$work/bl-$size.eml"
    openssl cms -encrypt -aes-256-gcm -in "$src" -out "$work/ossl-$size.eml" "$crt"
    # Each tool decrypts its own output and the other's; blindlist gives the post back from
    # both (openssl shows blindlist's protected inner entity, as any legacy reader would).
    "$blindlist" decrypt --key "$key" -i "$work/bl-$size.eml" -o "$work/d1"
    "$blindlist" decrypt --key "$key" -i "$work/ossl-$size.eml" | tr -d '\r' >"$work/d2"
    openssl cms -decrypt -inkey "$key" -in "$work/bl-$size.eml" -out "$work/d3"
    openssl cms -decrypt -inkey "$key" -in "$work/ossl-$size.eml" | tr -d '\r' >"$work/d4"
    for f in d1 d2 d4; do cmp -s "$src" "$work/$f" || die "$size: $f does not match the post"; done
  done
  srun=$((2 * runs))
  note_load "before the start-up run"
  cmds=(-n "blindlist --version" "$blindlist --version" -n "openssl version" "openssl version")
  for size in 100k 24m; do
    src="$post"; [[ $size == 24m ]] && src="$large"
    cmds+=(-n "blindlist encrypt $size -o" "$blindlist encrypt --to $crt -i $src -o $work/o1"
      -n "openssl cms -encrypt $size -out" "openssl cms -encrypt -aes-256-gcm -in $src -out $work/o2 $crt"
      -n "blindlist encrypt $size stdout" "$blindlist encrypt --to $crt -i $src"
      -n "openssl cms -encrypt $size stdout" "openssl cms -encrypt -aes-256-gcm -in $src $crt"
      -n "blindlist decrypt $size -o" "$blindlist decrypt --key $key -i $work/bl-$size.eml -o $work/o3"
      -n "openssl cms -decrypt $size -out" "openssl cms -decrypt -inkey $key -in $work/ossl-$size.eml -out $work/o4"
      -n "blindlist decrypt $size stdout" "$blindlist decrypt --key $key -i $work/bl-$size.eml"
      -n "openssl cms -decrypt $size stdout" "openssl cms -decrypt -inkey $key -in $work/ossl-$size.eml")
  done
  hyperfine -N --style basic --warmup 2 --runs "$srun" --export-json "$out/hyperfine-startup.json" \
    "${cmds[@]}" >&2
  note_load "after the start-up run"
  jq -r '.results[] | "\(.command)\t\(.median * 1000)\t\(.min * 1000)\t\((.user + .system) * 1000)"' \
    "$out/hyperfine-startup.json" >"$out/startup.tsv"
  awk -F'\t' -v runs="$srun" '
    { med[$1] = $2; mn[$1] = $3; cpu[$1] = $4 }
    function row(label, bl, os, limit,   r) {
      r = med[bl] / med[os]
      printf "| %s | %.1f | %.1f | %.1f | %.1f | %.2f | %s |\n", label, med[bl], cpu[bl], med[os],
        cpu[os], r, (r <= limit ? "MET" : "MISSED") " (<= " limit ")"
    }
    END {
      printf "\nstart-up and large posts: hyperfine -N, 2 warm-ups, %d runs, one run for all rows.\n", runs
      printf "wall: median wall-clock ms; cpu: mean user+system ms; ratio: blindlist / openssl wall.\n\n"
      printf "| comparison | blindlist wall | cpu | openssl wall | cpu | ratio | target |\n"
      printf "|---|--:|--:|--:|--:|--:|---|\n"
      row("--version / openssl version", "blindlist --version", "openssl version", 1.5)
      n = split("100k 24m", sizes, " ")
      for (i = 1; i <= n; i++) {
        z = sizes[i]
        row("encrypt " z " (-o FILE)", "blindlist encrypt " z " -o", "openssl cms -encrypt " z " -out", 1.0)
        row("encrypt " z " (stdout)", "blindlist encrypt " z " stdout", "openssl cms -encrypt " z " stdout", 1.0)
        row("decrypt " z " (-o FILE)", "blindlist decrypt " z " -o", "openssl cms -decrypt " z " -out", 1.0)
        row("decrypt " z " (stdout)", "blindlist decrypt " z " stdout", "openssl cms -decrypt " z " stdout", 1.0)
      }
    }' "$out/startup.tsv" | tee -a "$out/table.md"
fi
if [[ "$out" != "$work/results" ]]; then echo "raw results in $out" >&2; fi
