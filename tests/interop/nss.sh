#!/usr/bin/env bash
# Interop with NSS (the engine of Thunderbird) through `cmsutil`: NSS writes
# EnvelopedData with AES-CBC and RSA PKCS#1 v1.5 key transport, and reads only that.
#  a) NSS encrypts to the RSA group certificate (and to a member's) -> blindlist decrypt;
#     rewrap --replace --rsa-padding pkcs1 of an NSS message -> NSS member decrypts (path E).
#  b) blindlist encrypt --cipher aes-256-cbc --rsa-padding pkcs1 -> cmsutil -D with the
#     member's (or group's) key; the result is the header-protected inner entity.
# Exits 77 (skipped) when the NSS tools are not installed, or fails if BLINDLIST_REQUIRE_PEERS=1.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

for tool in cmsutil certutil pk12util; do
  if ! command -v "$tool" >/dev/null; then
    # BLINDLIST_REQUIRE_PEERS=1 (scripts/test, CI): a missing peer is a failure, not a skip.
    [ "${BLINDLIST_REQUIRE_PEERS:-0}" = 1 ] && fail "$tool not found (install libnss3-tools)"
    echo "SKIP: $tool not found (install libnss3-tools)"
    exit 77
  fi
done

make_pki
make_messages
P=$WORK/pki
M=$WORK/msg
T=$WORK/t
mkdir -p "$T"

# new_db DIR: an NSS database without password that trusts the test CA for S/MIME.
new_db() {
  mkdir -p "$1"
  certutil -N --empty-password -d "sql:$1" >"$T/nss.log" 2>&1 || fail "certutil -N failed (test setup): $(cat "$T/nss.log")"
  certutil -A -n "test-ca" -t "C,C,C" -d "sql:$1" -i "$P/ca.crt" >"$T/nss.log" 2>&1 ||
    fail "certutil -A of the CA failed (test setup): $(cat "$T/nss.log")"
}
# import_p12 DIR NAME: the key and certificate NAME, through PKCS#12 (as a member would export it).
import_p12() {
  openssl pkcs12 -export -inkey "$P/$2.key" -in "$P/$2.crt" -certfile "$P/ca.crt" -name "$2" \
    -passout pass: -out "$T/$2.p12" 2>"$T/nss.log" || fail "openssl pkcs12 -export of $2 failed (test setup): $(cat "$T/nss.log")"
  pk12util -i "$T/$2.p12" -d "sql:$1" -W '' >"$T/nss.log" 2>&1 ||
    fail "pk12util could not import the PKCS#12 of $2 (test setup): $(cat "$T/nss.log")"
}

# The list side: group RSA key (PKCS#12) and the member's certificate only.
GDB=$WORK/nss-group
new_db "$GDB"
import_p12 "$GDB" group-rsa
certutil -A -n member-rsa -t ",," -d "sql:$GDB" -i "$P/member-rsa.crt" >"$T/nss.log" 2>&1 ||
  fail "certutil -A of the member certificate failed (test setup): $(cat "$T/nss.log")"
# The member side: the member's key (PKCS#12) only.
MDB=$WORK/nss-member
new_db "$MDB"
import_p12 "$MDB" member-rsa
certutil -L -d "sql:$GDB" | grep -q group-rsa || fail "the group key is not in the NSS database (test setup)"

# nss_encrypt DB RECIPIENTS IN OUT
nss_encrypt() {
  cmsutil -E -r "$2" -d "sql:$1" -i "$3" -o "$4" >"$T/cmsutil.log" 2>&1 ||
    fail "cmsutil -E -r $2 failed (test setup): $(cat "$T/cmsutil.log")"
}
# nss_decrypt WHAT DB IN OUT: NSS must decrypt IN (raw DER).
nss_decrypt() {
  cmsutil -D -d "sql:$2" -i "$3" -o "$4" >"$T/cmsutil.log" 2>&1 ||
    fail "$1: NSS (cmsutil -D) cannot decrypt blindlist's output: $(cat "$T/cmsutil.log")"
}

step "a) NSS encrypts to the RSA group certificate; blindlist decrypts the raw DER"
nss_encrypt "$GDB" list-rsa@example.org "$M/entity.txt" "$T/nss-group.der"
run_ok "inspect NSS output" "$BL" inspect --json -i "$T/nss-group.der" -o "$T/i.json"
got=$(json_get "$T/i.json" 'j["form"]+"|"+j["content_type"]+"|"+j["cipher"][:7]+"|"+" ".join(r["kind"]+":"+r["key_algorithm"] for r in j["recipient_infos"])')
[[ $got == "der|EnvelopedData|aes-"*"-cbc|ktri:RSA PKCS#1 v1.5" ]] ||
  [[ $got == "der|EnvelopedData|aes-"*"|ktri:RSA PKCS#1 v1.5" ]] ||
  fail "blindlist inspect describes NSS's message as '$got' (expected DER EnvelopedData, AES-CBC, one RSA PKCS#1 v1.5 ktri)"
run_ok "NSS -> blindlist decrypt (group key)" "$BL" decrypt --key "$P/group-rsa.key" -i "$T/nss-group.der" -o "$T/out"
same_bytes "NSS message to the group, decrypted by blindlist with group.key" "$M/entity.txt" "$T/out"
"$BL" decrypt --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" <"$T/nss-group.der" >"$T/out" 2>"$T/err" ||
  fail "NSS message to the group, from standard input with --cert: blindlist decrypt failed: $(cat "$T/err")"
same_bytes "NSS message to the group, from standard input" "$M/entity.txt" "$T/out"

# A whole RFC 5322 message as NSS content (no outer headers in raw DER: it comes back as is).
nss_encrypt "$GDB" list-rsa@example.org "$M/crlf.eml" "$T/nss-msg.der"
run_ok "NSS whole message -> blindlist" "$BL" decrypt --key "$P/group-rsa.key" -i "$T/nss-msg.der" -o "$T/out"
same_bytes "NSS-encrypted RFC 5322 message" "$M/crlf.eml" "$T/out"

# Two recipients: the group and a member whose certificate alone is in the database.
nss_encrypt "$GDB" list-rsa@example.org,alice@example.org "$M/entity.txt" "$T/nss-two.der"
run_ok "inspect" "$BL" inspect --json -i "$T/nss-two.der" -o "$T/i.json"
[[ $(json_get "$T/i.json" 'len(j["recipient_infos"])') -eq 2 ]] || fail "blindlist inspect does not count 2 recipients in NSS's two-recipient message"
for c in group-rsa member-rsa; do
  run_ok "NSS two recipients -> blindlist ($c)" "$BL" decrypt --key "$P/$c.key" -i "$T/nss-two.der" -o "$T/out"
  same_bytes "NSS message to group and member, decrypted with $c" "$M/entity.txt" "$T/out"
done

step "a') path E for an NSS member: rewrap --replace --rsa-padding pkcs1 of NSS's message, NSS member decrypts"
run_ok "rewrap NSS message" "$BL" rewrap --replace --rsa-padding pkcs1 --key "$P/group-rsa.key" \
  --cert "$P/group-rsa.crt" --for "$P/member-rsa.crt" -i "$T/nss-group.der" -o "$T/nss-rewrapped.der"
[[ $(head -c 1 "$T/nss-rewrapped.der" | od -An -tx1 | tr -d ' ') == 30 ]] || fail "rewrap of NSS's raw DER did not write raw DER"
same_eci "rewrap of NSS's (BER) message" "$T/nss-group.der" "$T/nss-rewrapped.der"
nss_decrypt "rewrapped NSS message, member database" "$MDB" "$T/nss-rewrapped.der" "$T/out"
same_bytes "NSS member decrypting the rewrapped NSS message" "$M/entity.txt" "$T/out"
if cmsutil -D -d "sql:$MDB" -i "$T/nss-group.der" -o "$T/x" >/dev/null 2>&1; then
  fail "the NSS member database decrypts a message for the group only (test is vacuous)"
fi

step "b) blindlist encrypt --cipher aes-256-cbc --rsa-padding pkcs1 -> cmsutil -D"
for msg in crlf lf multipart; do
  run_ok "blindlist encrypt for NSS" "$BL" encrypt --cipher aes-256-cbc --rsa-padding pkcs1 \
    --to "$P/member-rsa.crt" -i "$M/$msg.eml" -o "$T/bl-$msg.smime"
  openssl cms -decrypt -in "$T/bl-$msg.smime" -inkey "$P/member-rsa.key" -out "$T/inner-$msg" ||
    fail "openssl cannot decrypt the message for NSS (test setup)"
  # The S/MIME body in DER, two ways: base64 -d of the body, and openssl cms -cmsout.
  smime_to_der "$T/bl-$msg.smime" "$T/bl-$msg.der"
  openssl cms -cmsout -in "$T/bl-$msg.smime" -outform DER -out "$T/bl-$msg.osl.der" ||
    fail "openssl cms -cmsout cannot convert blindlist's S/MIME to DER"
  for der in "$T/bl-$msg.der" "$T/bl-$msg.osl.der"; do
    nss_decrypt "blindlist $msg.eml to member-rsa ($(basename "$der"))" "$MDB" "$der" "$T/nss-out"
    same_bytes "NSS decryption of blindlist's $msg.eml vs the protected inner entity" "$T/inner-$msg" "$T/nss-out"
  done
  orig_subject=$(tr -d '\r' <"$M/$msg.eml" | sed '/^$/q' | grep -i '^Subject:' | head -1)
  tr -d '\r' <"$T/nss-out" | grep -qxF "$orig_subject" ||
    fail "NSS's decryption of $msg.eml lacks the original '$orig_subject' (header protection)"
  grep -qi 'hp="\{0,1\}cipher' "$T/nss-out" || fail "NSS's decryption of $msg.eml has no hp=\"cipher\" Content-Type parameter"
done

# To the group certificate too (a list member holding the group's PKCS#12: path C with Thunderbird).
# Only RSA recipients: NSS 3.87 rejects (SEC_ERROR_BAD_DER) any envelope that also holds a
# KeyAgreeRecipientInfo or KEKRecipientInfo, even one made by openssl, so those are not tested here.
run_ok "blindlist encrypt to group for NSS" "$BL" encrypt --cipher aes-256-cbc --rsa-padding pkcs1 \
  --to "$P/group-rsa.crt" -i "$M/crlf.eml" -o "$T/bl-group.smime"
smime_to_der "$T/bl-group.smime" "$T/bl-group.der"
openssl cms -decrypt -in "$T/bl-group.smime" -inkey "$P/group-rsa.key" -out "$T/inner-group"
nss_decrypt "blindlist to the RSA group, group database" "$GDB" "$T/bl-group.der" "$T/nss-out"
same_bytes "NSS decryption (group key) of blindlist's message" "$T/inner-group" "$T/nss-out"

if cmsutil -D -d "sql:$MDB" -i "$T/bl-group.der" -o "$T/x" >/dev/null 2>&1; then
  fail "the NSS member database decrypts blindlist's message for the group only (test is vacuous)"
fi
# A blindlist rewrap (pkcs1, added next to the group's) of that message, read by the NSS member.
run_ok "rewrap for NSS" "$BL" rewrap --rsa-padding pkcs1 --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" \
  --for "$P/member-rsa.crt" -i "$T/bl-group.smime" -o "$T/bl-group-rw.smime"
smime_to_der "$T/bl-group-rw.smime" "$T/bl-group-rw.der"
nss_decrypt "blindlist rewrap --rsa-padding pkcs1, member database" "$MDB" "$T/bl-group-rw.der" "$T/nss-out"
same_bytes "NSS member decryption of a rewrapped blindlist message" "$T/inner-group" "$T/nss-out"

echo "PASS nss"
