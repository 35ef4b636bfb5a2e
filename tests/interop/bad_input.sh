#!/usr/bin/env bash
# Bad input from the outside world: every case must exit non-zero, print one line
# on stderr that names the problem, and print NOTHING on stdout (no plaintext, not
# even a partial one). Inputs come from openssl (and blindlist itself), then are
# broken: not S/MIME, broken base64, truncated DER, a key that is not a recipient,
# a tampered GCM tag or ciphertext, tampered CBC ciphertext, unsupported
# algorithms, and CMS types that are not envelopes (signed-data and friends).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

make_pki
make_messages
P=$WORK/pki
M=$WORK/msg
T=$WORK/t
mkdir -p "$T"
E=$T/err # expect_fail output prefix

# Good messages to break.
"$BL" encrypt --to "$P/group-rsa.crt" -i "$M/crlf.eml" -o "$T/gcm.smime" || fail "blindlist encrypt failed (test setup)"
smime_to_der "$T/gcm.smime" "$T/gcm.der"
"$BL" encrypt --cipher aes-256-cbc --rsa-padding pkcs1 --to "$P/group-rsa.crt" -i "$M/crlf.eml" -o "$T/cbc.smime" ||
  fail "blindlist encrypt failed (test setup)"
smime_to_der "$T/cbc.smime" "$T/cbc.der"
openssl cms -encrypt -binary -aes-256-gcm -outform DER -in "$M/entity.txt" -out "$T/osl-gcm.der" "$P/group-rsa.crt"
openssl cms -encrypt -binary -aes256 -outform DER -in "$M/entity.txt" -out "$T/osl-cbc.der" "$P/group-rsa.crt"
openssl cms -encrypt -binary -aes-256-gcm -in "$M/entity.txt" -out "$T/ec.smime" "$P/member-p256.crt"
for f in gcm.smime gcm.der cbc.der osl-gcm.der osl-cbc.der; do
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/$f" -o "$T/sanity.out" 2>"$T/sanity.err" ||
    fail "the unbroken $f does not decrypt (test setup): $(cat "$T/sanity.err")"
done

step "1. not S/MIME"
for sub in "decrypt --key $P/group-rsa.key" "inspect" "rewrap --key $P/group-rsa.key --cert $P/group-rsa.crt --for $P/member-rsa.crt"; do
  # shellcheck disable=SC2086
  expect_fail "plain text mail to '${sub%% *}'" 'not S/MIME|pkcs7|text/plain' "$E" -- "$BL" $sub -i "$M/crlf.eml"
done
expect_fail "empty input" 'empty' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i /dev/null
head -c 2000 /dev/urandom >"$T/random.bin"
printf '\x30\x82' | cat - "$T/random.bin" >"$T/random-der.bin"
expect_fail "random bytes" 'base64|not S/MIME|malformed|CMS|DER' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/random.bin"
expect_fail "random bytes that start like DER" 'malformed|CMS|DER|length' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/random-der.bin"
sed 's#application/pkcs7-mime; smime-type=authEnveloped-data;#application/octet-stream;#' "$T/gcm.smime" >"$T/octet.smime"
grep -q 'application/octet-stream' "$T/octet.smime" || fail "test setup: could not rewrite the Content-Type"
expect_fail "S/MIME relabelled application/octet-stream" 'not S/MIME|octet-stream' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/octet.smime"
sed 's#smime-type=authEnveloped-data#smime-type=signed-data#' "$T/gcm.smime" >"$T/wrongtype.smime"
expect_fail "smime-type=signed-data on an envelope" 'signed|smime-type|not' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/wrongtype.smime"

step "2. broken base64"
# an invalid character in the middle of the body
awk 'BEGIN{b=0} b==1 && !done && NR>20 {sub(/^./, "!"); done=1} /^\r?$/ {b=1} {print}' "$T/gcm.smime" >"$T/bad64.smime"
cmp -s "$T/gcm.smime" "$T/bad64.smime" && fail "test setup: could not break the base64"
expect_fail "invalid base64 character" 'base64' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/bad64.smime"
# base64 cut in the middle of a quantum (length not a multiple of 4)
python3 - "$T/gcm.smime" "$T/cut64.smime" <<'EOF'
import sys
d = open(sys.argv[1], 'rb').read().rstrip(b'\r\n')
open(sys.argv[2], 'wb').write(d[:-3] + b'\r\n')
EOF
expect_fail "base64 cut mid-quantum" 'base64|length|malformed|truncat' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/cut64.smime"
# data after the '=' padding
python3 - "$T/gcm.smime" "$T/pad64.smime" <<'EOF'
import sys, re
d = open(sys.argv[1], 'rb').read().rstrip(b'\r\n')
open(sys.argv[2], 'wb').write(d + b'==\r\nQUJD\r\n')
EOF
expect_fail "base64 continuing after padding" 'base64|padding|malformed|trailing' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/pad64.smime"
# bare base64 (-outform PEM without armor) with a bad character
openssl cms -encrypt -binary -aes-256-gcm -outform PEM -in "$M/entity.txt" -out "$T/pem.p7m" "$P/group-rsa.crt"
sed '3s/^./*/' "$T/pem.p7m" >"$T/badpem.p7m"
expect_fail "PEM form with a bad base64 character" 'base64' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/badpem.p7m"
grep -v 'END' "$T/pem.p7m" >"$T/noend.p7m"
expect_fail "PEM form without its END line" 'base64|PEM|END|armor' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/noend.p7m"

step "3. truncated DER"
size=$(stat -c %s "$T/gcm.der")
for n in 1 2 10 100 $((size / 2)) $((size - 17)) $((size - 1)); do
  head -c "$n" "$T/gcm.der" >"$T/trunc.der"
  expect_fail "DER truncated to $n of $size bytes" 'malformed|truncat|length|end|short|DER|CMS|base64' "$E" -- \
    "$BL" decrypt --key "$P/group-rsa.key" -i "$T/trunc.der"
done
osize=$(stat -c %s "$T/osl-cbc.der")
head -c $((osize - 5)) "$T/osl-cbc.der" >"$T/trunc.der"
expect_fail "openssl DER truncated by 5 bytes" 'malformed|truncat|length|end|short' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/trunc.der"
openssl cms -encrypt -binary -stream -aes-256-gcm -outform DER -in "$M/entity.txt" -out "$T/ber.der" "$P/group-rsa.crt"
bsize=$(stat -c %s "$T/ber.der")
head -c $((bsize - 4)) "$T/ber.der" >"$T/trunc.der"
expect_fail "indefinite-length BER missing its end-of-contents" 'malformed|truncat|length|end|short|EOC' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/trunc.der"
{ cat "$T/gcm.der"; printf 'trailing'; } >"$T/trail.der"
expect_fail "DER with trailing garbage" 'trailing|malformed' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/trail.der"

step "4. a key that is not a recipient"
for f in gcm.smime cbc.der osl-cbc.der; do
  expect_fail "$f with the member's RSA key" 'wrong key|unwrap|no RecipientInfo|not a recipient' "$E" -- \
    "$BL" decrypt --key "$P/member-rsa.key" -i "$T/$f"
  expect_fail "$f with the member's RSA key and --cert" 'no RecipientInfo|recipient' "$E" -- \
    "$BL" decrypt --key "$P/member-rsa.key" --cert "$P/member-rsa.crt" -i "$T/$f"
  expect_fail "$f with an EC key (RSA-only message)" 'recipient|kind of key|wrong key' "$E" -- \
    "$BL" decrypt --key "$P/group-ec.key" -i "$T/$f"
done
expect_fail "EC message with another P-256 key" 'wrong key|unwrap|recipient' "$E" -- \
  "$BL" decrypt --key "$P/group-ec.key" -i "$T/ec.smime"
expect_fail "EC P-256 message with a P-384 key" 'wrong key|unwrap|recipient|curve' "$E" -- \
  "$BL" decrypt --key "$P/member-p384.key" -i "$T/ec.smime"
expect_fail "EC message with an RSA key" 'recipient|kind of key|wrong key' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/ec.smime"
"$BL" encrypt --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$M/crlf.eml" -o "$T/kek.smime"
WRONG32=ff${SECRET32:2}
expect_fail "KEK message with a wrong secret under the right id" 'wrong|unwrap|integrity' "$E" -- \
  "$BL" decrypt --secret-key "$WRONG32" --secret-key-id "$SECRET_ID" -i "$T/kek.smime"
expect_fail "KEK message with an unknown secret id" 'no KEKRecipientInfo|recipient|key id' "$E" -- \
  "$BL" decrypt --secret-key "$SECRET32" --secret-key-id 0badc0de -i "$T/kek.smime"
expect_fail "KEK message with a 128-bit secret where AES-256 wrap is used" 'bits|wrap|wrong' "$E" -- \
  "$BL" decrypt --secret-key "$SECRET16" --secret-key-id "$SECRET_ID" -i "$T/kek.smime"
expect_fail "KEK message with a private key" 'recipient|kind of key|wrong' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/kek.smime"
expect_fail "RSA message with a secret" 'no KEKRecipientInfo|recipient' "$E" -- \
  "$BL" decrypt --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$T/gcm.smime"
expect_fail "rewrap by a group that is not a recipient" 'no RecipientInfo|recipient' "$E" -- \
  "$BL" rewrap --key "$P/group-ec.key" --cert "$P/group-ec.crt" --for "$P/member-rsa.crt" -i "$T/gcm.smime"
expect_fail "decrypt with a certificate that is not the key's" 'does not belong|match' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" --cert "$P/member-rsa.crt" -i "$T/gcm.smime"

step "5. tampered GCM tag and ciphertext (AuthEnvelopedData)"
# blindlist's DER ends with the 16-byte mac; openssl's (non-streamed) too.
for f in gcm.der osl-gcm.der; do
  for off in -1 -8 -16; do
    flip_byte "$T/$f" "$T/tampered.der" "$off" 0x01
    expect_fail "$f with the GCM tag byte $off flipped" 'authenticat|tamper' "$E" -- \
      "$BL" decrypt --key "$P/group-rsa.key" -i "$T/tampered.der"
  done
  # the last ciphertext byte sits just before the mac's OCTET STRING header (2 bytes) and the mac
  flip_byte "$T/$f" "$T/tampered.der" -19 0x40
  expect_fail "$f with a ciphertext byte flipped" 'authenticat|tamper' "$E" -- \
    "$BL" decrypt --key "$P/group-rsa.key" -i "$T/tampered.der"
done
# In the S/MIME form too: re-encode the tampered DER in base64 under the original header.
flip_byte "$T/gcm.der" "$T/tampered.der" -2 0x80
{ sed '/^\r\{0,1\}$/q' "$T/gcm.smime"; base64 -w 76 "$T/tampered.der" | sed 's/$/\r/'; } >"$T/tampered.smime"
expect_fail "S/MIME with a tampered GCM tag" 'authenticat|tamper' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/tampered.smime"

step "6. tampered CBC ciphertext (EnvelopedData)"
# Flipping the top bit of the last byte of the next-to-last block makes the last
# padding byte > 16: the padding check must fail, every time.
for f in cbc.der osl-cbc.der; do
  flip_byte "$T/$f" "$T/tampered.der" -17 0x80
  expect_fail "$f with its CBC padding broken" 'padding|tamper' "$E" -- \
    "$BL" decrypt --key "$P/group-rsa.key" -i "$T/tampered.der"
  flip_byte "$T/$f" "$T/tampered.der" -1 0x80
  # the last block decrypts to noise: the padding is wrong except with probability ~1/256
  rc=0
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/tampered.der" >"$T/cbc.out" 2>"$T/cbc.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    [[ ! -s "$T/cbc.out" ]] || fail "$f with its last ciphertext byte flipped: blindlist failed but printed plaintext"
  fi
done

step "7. unsupported algorithms"
for c in des3 camellia256 aria256; do
  if openssl cms -encrypt -binary "-$c" -in "$M/entity.txt" -out "$T/$c.smime" "$P/group-rsa.crt" 2>/dev/null; then
    expect_fail "content cipher $c" 'unsupported|cipher' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/$c.smime"
    "$BL" inspect --json -i "$T/$c.smime" -o "$T/u.json" || fail "blindlist inspect should describe a $c message, not refuse it"
    json_get "$T/u.json" 'j["cipher"]' | grep -qi unsupported || fail "blindlist inspect does not flag the $c cipher as unsupported"
  else
    step "openssl here cannot encrypt with -$c; skipped"
  fi
done
# Key types outside RSA, P-256 and P-384 (P-521 here): refused when encrypting, decrypting, rewrapping.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -keyout "$T/p521.key" -out "$T/p521.crt" \
  -subj "/CN=p521@example.org" -days 2 -addext "subjectAltName=email:p521@example.org" 2>/dev/null ||
  fail "openssl cannot make a P-521 certificate (test setup)"
expect_fail "encrypt to a P-521 certificate" 'unsupported|P-521|key type' "$E" -- \
  "$BL" encrypt --to "$P/group-rsa.crt" --to "$T/p521.crt" -i "$M/crlf.eml"
openssl cms -encrypt -binary -aes-256-gcm -in "$M/entity.txt" -out "$T/p521.smime" "$T/p521.crt"
expect_fail "decrypt an openssl message with a P-521 key" 'unsupported|P-521|key type' "$E" -- \
  "$BL" decrypt --key "$T/p521.key" -i "$T/p521.smime"
expect_fail "rewrap as a P-521 group" 'unsupported|P-521|key type' "$E" -- \
  "$BL" rewrap --key "$T/p521.key" --cert "$T/p521.crt" --for "$P/member-rsa.crt" -i "$T/p521.smime"
openssl cms -encrypt -binary -aes256 -pwri_password 'correct horse' -in "$M/entity.txt" -out "$T/pwri.smime"
expect_fail "password recipient (PWRI) with a key" 'recipient|unsupported|password|kind of key' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/pwri.smime"
"$BL" inspect --json -i "$T/pwri.smime" -o "$T/u.json" || fail "blindlist inspect should describe a PWRI message"
[[ $(json_get "$T/u.json" 'j["recipient_infos"][0]["kind"]') == pwri ]] || fail "blindlist inspect does not call a PasswordRecipientInfo pwri"
openssl cms -EncryptedData_encrypt -aes128 -secretkey "$SECRET16" -in "$M/entity.txt" -out "$T/encdata.smime"
expect_fail "CMS EncryptedData (no recipients)" 'encryptedData|not envelopedData|not S/MIME|unsupported' "$E" -- \
  "$BL" decrypt --secret-key "$SECRET16" --secret-key-id "$SECRET_ID" -i "$T/encdata.smime"

step "8. signed-data and other CMS types"
openssl cms -sign -in "$M/entity.txt" -signer "$P/member-rsa.crt" -inkey "$P/member-rsa.key" -out "$T/signed.smime"
expect_fail "multipart/signed (detached signature)" 'signed|not S/MIME' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/signed.smime"
openssl cms -sign -nodetach -in "$M/entity.txt" -signer "$P/member-rsa.crt" -inkey "$P/member-rsa.key" -out "$T/opaque.smime"
expect_fail "opaque signed-data (application/pkcs7-mime; smime-type=signed-data)" 'signed' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/opaque.smime"
openssl cms -sign -nodetach -in "$M/entity.txt" -signer "$P/member-rsa.crt" -inkey "$P/member-rsa.key" -outform DER -out "$T/signed.der"
expect_fail "signed-data DER" 'signed' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/signed.der"
expect_fail "signed-data DER to inspect" 'signed' "$E" -- "$BL" inspect -i "$T/signed.der"
expect_fail "signed-data DER to rewrap" 'signed' "$E" -- \
  "$BL" rewrap --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" --for "$P/member-rsa.crt" -i "$T/signed.der"
openssl cms -data_create -in "$M/entity.txt" -outform DER -out "$T/data.der"
expect_fail "CMS data" 'data|not envelopedData' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/data.der"
openssl cms -digest_create -in "$M/entity.txt" -outform DER -out "$T/digest.der"
expect_fail "CMS digested-data" 'digest|not envelopedData' "$E" -- "$BL" decrypt --key "$P/group-rsa.key" -i "$T/digest.der"

step "9. bad input to encrypt"
expect_fail "encrypt to a key file instead of a certificate" 'certificate' "$E" -- \
  "$BL" encrypt --to "$P/group-rsa.key" -i "$M/crlf.eml"
printf 'just some text, no header\n' >"$T/nohdr.txt"
expect_fail "encrypt a text without a header section" 'header|message|field' "$E" -- \
  "$BL" encrypt --to "$P/group-rsa.crt" -i "$T/nohdr.txt"
expect_fail "encrypt an empty message" 'empty' "$E" -- "$BL" encrypt --to "$P/group-rsa.crt" -i /dev/null
expect_fail "encrypt with a secret that is not hex" 'hex' "$E" -- \
  "$BL" encrypt --secret-key xyz --secret-key-id "$SECRET_ID" -i "$M/crlf.eml"
expect_fail "encrypt with a 20-byte secret" '16, 24 or 32|bytes' "$E" -- \
  "$BL" encrypt --secret-key "${SECRET32:0:40}" --secret-key-id "$SECRET_ID" -i "$M/crlf.eml"

echo "PASS bad_input"
