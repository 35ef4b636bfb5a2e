# Shared helpers for the interop tests. Sourced by each test script after
# `set -euo pipefail`; the script's first argument is the blindlist binary.
#
# Provides:
#   BL          the blindlist binary (absolute path)
#   WORK        a private temp directory, removed on exit
#   fail MSG    print "FAIL: MSG" and exit 1
#   step MSG    print a progress line (shown by ctest --output-on-failure)
#   make_pki    a throwaway CA and the group/member certificates in $WORK/pki
#   make_messages  sample RFC 5322 messages and MIME entities in $WORK/msg
#   expect_fail WORD OUT_PREFIX -- CMD...   the error contract (see below)
#   smime_to_der IN OUT       the CMS bytes of an S/MIME file, exactly as encoded
#   cms_tail DER OUT          everything after the RecipientInfos SET (definite DER)
#   json_get FILE PYEXPR      evaluate a python expression on `j` = parsed JSON
#   flip_byte IN OUT OFFSET MASK   copy IN, XOR the byte at OFFSET (negative: from end)

if [[ $# -lt 1 || ! -x "$1" ]]; then
  echo "usage: $0 /path/to/blindlist" >&2
  exit 2
fi
BL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
export LC_ALL=C

WORK=$(mktemp -d "${TMPDIR:-/tmp}/blindlist-interop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SCRIPT_NAME=$(basename "$0" .sh)

fail() {
  echo "FAIL [$SCRIPT_NAME]: $*" >&2
  exit 1
}

step() {
  echo "--- $*"
}

command -v openssl >/dev/null || fail "openssl is not installed; the interop tests need the openssl CLI"
command -v python3 >/dev/null || fail "python3 is not installed; the interop tests need it to read JSON"

# A group secret (AES-256 key wrap) and its identifier ("group-v1"), and shorter ones.
SECRET32=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
SECRET24=${SECRET32:0:48}
SECRET16=${SECRET32:0:32}
SECRET_ID=67726f75702d7631
export BL SECRET32 SECRET24 SECRET16 SECRET_ID  # used by the sourcing scripts

# ---- certificates ----
# make_cert NAME EMAIL KEYUSAGE GENPKEY-ARGS...
make_cert() {
  local name=$1 email=$2 ku=$3
  shift 3
  local d=$WORK/pki
  openssl genpkey "$@" -out "$d/$name.key" 2>"$d/$name.log" ||
    fail "openssl could not generate the key for $name: $(cat "$d/$name.log")"
  openssl req -new -key "$d/$name.key" -subj "/O=blindlist interop/CN=$email" -out "$d/$name.csr" \
    2>"$d/$name.log" || fail "openssl could not make the CSR for $name: $(cat "$d/$name.log")"
  cat >"$d/$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,$ku
extendedKeyUsage=emailProtection
subjectAltName=email:$email
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
  # Serial numbers with the high bit set exercise the INTEGER sign byte in IssuerAndSerialNumber.
  local serial
  serial=$(printf '%02x%s' $((0x80 | RANDOM % 128)) "$(openssl rand -hex 9)")
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial "0x$serial" \
    -days 30 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>"$d/$name.log" ||
    fail "openssl could not issue the certificate for $name: $(cat "$d/$name.log")"
}

# $WORK/pki/{ca,group-rsa,group-ec,member-rsa,member-p256,member-p384}.{key,crt}
make_pki() {
  local d=$WORK/pki
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
    -out "$d/ca.crt" -days 30 -subj "/O=blindlist interop/CN=Throwaway Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>"$d/ca.log" || fail "openssl could not make the test CA: $(cat "$d/ca.log")"
  make_cert group-rsa list-rsa@example.org keyEncipherment -algorithm RSA -pkeyopt rsa_keygen_bits:3072
  make_cert group-ec list-ec@example.org keyAgreement -algorithm EC -pkeyopt ec_paramgen_curve:P-256
  make_cert member-rsa alice@example.org keyEncipherment -algorithm RSA -pkeyopt rsa_keygen_bits:2048
  make_cert member-p256 bob@example.org keyAgreement -algorithm EC -pkeyopt ec_paramgen_curve:P-256
  make_cert member-p384 carol@example.org keyAgreement -algorithm EC -pkeyopt ec_paramgen_curve:P-384
  local c
  for c in group-rsa group-ec member-rsa member-p256 member-p384; do
    openssl x509 -in "$d/$c.crt" -noout -ext subjectKeyIdentifier | grep -q ':' ||
      fail "the test certificate $c has no subjectKeyIdentifier"
    # (no -purpose smimeencrypt: openssl demands keyEncipherment there, which EC keys do not have)
    openssl verify -CAfile "$d/ca.crt" "$d/$c.crt" >/dev/null 2>&1 ||
      fail "the test certificate $c does not verify against the test CA"
  done
}

# ---- messages ----
make_messages() {
  local d=$WORK/msg
  mkdir -p "$d"
  # A MIME entity as a stock client hands it to `openssl cms -encrypt` (CRLF, 8-bit UTF-8).
  printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello from openssl cms.\r\nCaf\xc3\xa9 at noon, room 4.\r\nThe quick brown fox jumps over the lazy dog 0123456789.\r\n' \
    >"$d/entity.txt"
  # A complete RFC 5322 message, CRLF.
  printf 'From: Alice <alice@example.org>\r\nTo: list-rsa@example.org\r\nSubject: Secret plans for Q3\r\nDate: Tue, 01 Jul 2025 10:00:00 +0000\r\nMessage-ID: <interop-crlf@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nThe body says hello.\r\nCaf\xc3\xa9 at noon.\r\n' \
    >"$d/crlf.eml"
  # LF line endings, a folded encoded-word Subject, no MIME header fields at all.
  printf 'From: bob@example.org\nTo: list-ec@example.org\nSubject: =?UTF-8?Q?Caf=C3=A9?= plans and a long subject that is\n folded over two lines\nDate: Wed, 02 Jul 2025 11:30:00 +0200\nMessage-ID: <interop-lf@example.org>\nX-Custom: keep me\n\nplain body without MIME headers\n\n-- \nsig\n' \
    >"$d/lf.eml"
  # multipart/mixed with a folded Content-Type, Keywords and Comments (hcp_baseline drops them outside).
  printf 'From: carol@example.org\r\nTo: list-rsa@example.org\r\nSubject: Quarterly numbers\r\nKeywords: secret, q3\r\nComments: internal only\r\nDate: Thu, 03 Jul 2025 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary="==b1=="\r\n\r\npreamble\r\n--==b1==\r\nContent-Type: text/plain\r\n\r\npart one\r\n--==b1==\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--==b1==--\r\n' \
    >"$d/multipart.eml"
}

# ---- the error contract ----
# expect_fail WHAT WORD_REGEX OUTBASE -- CMD...
# The command must exit non-zero, print nothing on stdout, and exactly one line on
# stderr that matches WORD_REGEX (case-insensitive ERE).
expect_fail() {
  local what=$1 word=$2 base=$3
  shift 4
  local rc=0
  "$@" >"$base.stdout" 2>"$base.stderr" || rc=$?
  [[ $rc -ne 0 ]] || fail "$what: blindlist exited 0 (success) but should have refused the input"
  [[ ! -s "$base.stdout" ]] ||
    fail "$what: blindlist failed but still wrote $(wc -c <"$base.stdout") bytes to stdout (possible plaintext leak): $(head -c 200 "$base.stdout" | tr -c '[:print:]' '.')"
  local lines
  lines=$(wc -l <"$base.stderr")
  [[ $lines -eq 1 ]] ||
    fail "$what: expected exactly one line on stderr, got $lines: $(head -c 500 "$base.stderr")"
  grep -qiE "$word" "$base.stderr" ||
    fail "$what: the error message does not say what went wrong (expected /$word/): $(cat "$base.stderr")"
  step "$what: refused as expected (exit $rc): $(cat "$base.stderr")"
}

# run_ok WHAT CMD...: runs CMD, fails with its stderr when it exits non-zero.
run_ok() {
  local what=$1
  shift
  local err=$WORK/run_ok.stderr rc=0
  "$@" 2>"$err" || rc=$?
  [[ $rc -eq 0 ]] || fail "$what: command failed (exit $rc): $* :: $(head -c 800 "$err")"
}

# same_bytes WHAT EXPECTED ACTUAL
same_bytes() {
  local what=$1 expected=$2 actual=$3
  if ! cmp -s "$expected" "$actual"; then
    echo "--- expected ($expected), then actual ($actual), first difference:" >&2
    cmp "$expected" "$actual" >&2 || true
    diff <(cat -A "$expected") <(cat -A "$actual") | head -20 >&2 || true
    fail "$what: the decrypted bytes differ from what was encrypted"
  fi
}

# smime_to_der IN OUT: the CMS bytes exactly as carried (header stripped, base64 decoded).
smime_to_der() {
  sed '1,/^\r\{0,1\}$/d' "$1" | tr -d '\r\n' | base64 -d >"$2" 2>/dev/null ||
    fail "cannot base64-decode the S/MIME body of $1"
}

# cms_tail DER OUT: from the EncryptedContentInfo to the end of a definite-length
# (Auth)EnvelopedData: EncryptedContentInfo, authAttrs, mac, unprotected attributes.
# Located with `openssl asn1parse`: the first SEQUENCE at depth 3 (after version and the SET).
cms_tail() {
  local der=$1 out=$2 line off
  line=$(openssl asn1parse -inform DER -in "$der" | awk '/d=3 / && /cons: *SEQUENCE/ {print; exit}')
  [[ -n "$line" ]] || fail "openssl asn1parse finds no EncryptedContentInfo in $der"
  off=$(echo "$line" | sed 's/^ *\([0-9]*\):.*/\1/')
  tail -c +$((off + 1)) "$der" >"$out"
}

# eci_only DER OUT: just the EncryptedContentInfo TLV, via openssl asn1parse -out.
eci_only() {
  local der=$1 out=$2 line off hl l
  line=$(openssl asn1parse -inform DER -in "$der" | awk '/d=3 / && /cons: *SEQUENCE/ {print; exit}')
  [[ -n "$line" ]] || fail "openssl asn1parse finds no EncryptedContentInfo in $der"
  off=$(echo "$line" | sed 's/^ *\([0-9]*\):.*/\1/')
  hl=$(echo "$line" | sed 's/.*hl= *\([0-9]*\).*/\1/')
  l=$(echo "$line" | sed 's/.* l= *\([0-9a-z]*\).*/\1/')
  [[ "$l" =~ ^[0-9]+$ ]] || fail "EncryptedContentInfo in $der has indefinite length; use a DER input"
  openssl asn1parse -inform DER -in "$der" -offset "$off" -length $((hl + l)) -noout -out "$out" \
    >/dev/null || fail "openssl asn1parse cannot extract the EncryptedContentInfo of $der"
}

# same_eci WHAT BEFORE_DER AFTER_DER: the EncryptedContentInfo is byte-identical. For an
# indefinite-length (BER) input, both are first re-encoded in DER by openssl cms -cmsout.
same_eci() {
  local what=$1 before=$2 after=$3
  if openssl asn1parse -inform DER -in "$before" | grep -q 'l=inf' ||
    openssl asn1parse -inform DER -in "$after" | grep -q 'l=inf'; then
    openssl cms -cmsout -inform DER -in "$before" -outform DER -out "$before.re" ||
      fail "$what: openssl cannot re-encode $before"
    openssl cms -cmsout -inform DER -in "$after" -outform DER -out "$after.re" ||
      fail "$what: openssl cannot read blindlist's output $after"
    before=$before.re
    after=$after.re
  fi
  eci_only "$before" "$before.eci"
  eci_only "$after" "$after.eci"
  cmp -s "$before.eci" "$after.eci" ||
    fail "$what: the EncryptedContentInfo (openssl asn1parse) differs: the ciphertext was touched"
}

json_get() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" ||
    fail "cannot read JSON from $1 (blindlist inspect --json printed: $(head -c 300 "$1"))"
}

flip_byte() {
  python3 - "$1" "$2" "$3" "$4" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
data[int(sys.argv[3])] ^= int(sys.argv[4], 0)
open(sys.argv[2], 'wb').write(data)
EOF
}
