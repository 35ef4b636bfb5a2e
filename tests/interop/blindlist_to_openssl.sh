#!/usr/bin/env bash
# Interop, direction blindlist -> openssl: `blindlist encrypt` output decrypts with
# `openssl cms -decrypt` for GCM and CBC, RSA-OAEP and PKCS#1 v1.5, RSA and EC
# (P-256, P-384) recipients, a KEK group secret, and several recipients at once;
# the inner entity carries the real Subject (RFC 9788 header protection) while the
# outer message shows "[...]"; `blindlist decrypt` restores the message byte for byte.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

make_pki
make_messages
P=$WORK/pki
M=$WORK/msg
T=$WORK/t
mkdir -p "$T"

# header_section FILE: the header section of a message, unfolded, CR removed.
header_section() {
  tr -d '\r' <"$1" | sed '/^$/q' | sed -e ':a' -e '$!N' -e 's/\n[ \t]\+/ /' -e 'ta' -e 'P' -e 'D'
}
# body_of FILE: everything after the first empty line (LF or CRLF), bytes unchanged.
body_of() {
  sed '1,/^\r\{0,1\}$/d' "$1"
}

# osl_decrypt WHAT IN OUT ARGS...
osl_decrypt() {
  local what=$1 in=$2 out=$3
  shift 3
  openssl cms -decrypt -in "$in" -out "$out" "$@" 2>"$T/osl.err" ||
    fail "$what: openssl cms -decrypt cannot read blindlist's output: $(head -c 600 "$T/osl.err")"
}

# check_protected WHAT ORIGINAL SMIME INNER: header protection as the receiver sees it.
check_protected() {
  local what=$1 orig=$2 smime=$3 inner=$4
  local orig_subject
  orig_subject=$(header_section "$orig" | grep -i '^Subject:')
  header_section "$inner" >"$T/inner.hdr"
  header_section "$smime" >"$T/outer.hdr"
  grep -qxF "$orig_subject" "$T/inner.hdr" ||
    fail "$what: the decrypted inner entity does not carry the original '$orig_subject' (header protection lost it): $(cat "$T/inner.hdr")"
  grep -qi '^Content-Type:.*hp="\{0,1\}cipher' "$T/inner.hdr" ||
    fail "$what: the inner Content-Type has no hp=\"cipher\" (RFC 9788): $(grep -i '^Content-Type' "$T/inner.hdr")"
  grep -qx 'Subject: \[\.\.\.\]' "$T/outer.hdr" ||
    fail "$what: the outer (unencrypted) Subject is not \"[...]\": $(grep -i '^Subject' "$T/outer.hdr" || echo 'no Subject')"
  [[ $(grep -ci '^Subject:' "$T/outer.hdr") -eq 1 ]] || fail "$what: the outer header has more than one Subject"
  if grep -qiF "$(echo "$orig_subject" | cut -d' ' -f2-)" "$T/outer.hdr"; then
    fail "$what: the real subject leaks into the outer (unencrypted) header"
  fi
  grep -qi '^Content-Type: application/pkcs7-mime' "$T/outer.hdr" ||
    fail "$what: the outer message is not application/pkcs7-mime: $(grep -i '^Content-Type' "$T/outer.hdr")"
  grep -qi '^Keywords:\|^Comments:' "$T/outer.hdr" &&
    fail "$what: Keywords/Comments appear in the outer header (hcp_baseline removes them)"
  local f
  for f in From To Date Message-ID; do
    if grep -qi "^$f:" "$T/inner.hdr"; then
      grep -qi "^$f:" "$T/outer.hdr" || fail "$what: the routing header $f is missing from the outer message"
    fi
  done
  body_of "$orig" >"$T/orig.body"
  body_of "$inner" >"$T/inner.body"
  same_bytes "$what: body inside the envelope" "$T/orig.body" "$T/inner.body"
}

# check_inspect WHAT SMIME CTYPE CIPHER KINDS
check_inspect() {
  local what=$1 in=$2 ctype=$3 cipher=$4 kinds=$5
  run_ok "$what: blindlist inspect --json" "$BL" inspect --json -i "$in" -o "$T/i.json"
  local got
  got=$(json_get "$T/i.json" 'j["form"]+"|"+j["content_type"]+"|"+j["cipher"]+"|"+" ".join(r["kind"] for r in j["recipient_infos"])')
  [[ "$got" == "smime|$ctype|$cipher|$kinds" ]] ||
    fail "$what: blindlist inspect reports '$got', expected 'smime|$ctype|$cipher|$kinds'"
}

step "1. cipher x RSA padding, five certificates + a group secret, CRLF, LF and multipart messages"
# All four cipher/padding pairs for the CRLF message; the LF and multipart
# messages take the two pairs stock clients meet most (GCM+OAEP, CBC+PKCS#1).
for combo in crlf:aes-256-gcm:oaep crlf:aes-256-gcm:pkcs1 crlf:aes-256-cbc:oaep crlf:aes-256-cbc:pkcs1 \
  lf:aes-256-gcm:oaep lf:aes-256-cbc:pkcs1 multipart:aes-256-gcm:oaep multipart:aes-256-cbc:pkcs1; do
  IFS=: read -r msg cipher pad <<<"$combo"
  what="$msg.eml, $cipher, RSA $pad"
  out=$T/$msg-$cipher-$pad.smime
  run_ok "$what: blindlist encrypt" "$BL" encrypt --cipher "$cipher" --rsa-padding "$pad" \
    --to "$P/group-rsa.crt" --to "$P/member-rsa.crt" --to "$P/group-ec.crt" \
    --to "$P/member-p256.crt" --to "$P/member-p384.crt" \
    --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$M/$msg.eml" -o "$out"
  if [[ $cipher == aes-256-gcm ]]; then ctype=AuthEnvelopedData; else ctype=EnvelopedData; fi
  check_inspect "$what" "$out" "$ctype" "$cipher" "ktri ktri kari kari kari kekri"
  grep -qi "smime-type=$([[ $ctype == AuthEnvelopedData ]] && echo authEnveloped-data || echo enveloped-data)" "$out" ||
    fail "$what: the S/MIME Content-Type does not announce the right smime-type"
  # openssl's own view of the algorithms
  openssl cms -cmsout -print -in "$out" >"$T/print.txt" 2>"$T/osl.err" ||
    fail "$what: openssl cms -cmsout -print cannot parse blindlist's output: $(cat "$T/osl.err")"
  if [[ $pad == oaep ]]; then
    grep -q 'rsaesOaep' "$T/print.txt" || fail "$what: openssl sees no RSAES-OAEP key transport"
  else
    grep -q 'rsaEncryption' "$T/print.txt" || fail "$what: openssl sees no rsaEncryption (PKCS#1 v1.5) key transport"
  fi
  grep -q 'dhSinglePass-stdDH-sha256kdf' "$T/print.txt" || fail "$what: openssl sees no dhSinglePass-stdDH-sha256kdf key agreement"
  first=""
  for c in group-rsa member-rsa group-ec member-p256 member-p384; do
    osl_decrypt "$what, key of $c" "$out" "$T/inner.$c" -recip "$P/$c.crt" -inkey "$P/$c.key"
    if [[ -z $first ]]; then
      first=$T/inner.$c
      check_protected "$what" "$M/$msg.eml" "$out" "$first"
    else
      same_bytes "$what: inner entity decrypted with $c vs ${first##*.}" "$first" "$T/inner.$c"
    fi
  done
  osl_decrypt "$what, KEK secret" "$out" "$T/inner.kek" -secretkey "$SECRET32" -secretkeyid "$SECRET_ID"
  same_bytes "$what: inner entity via the KEK secret" "$first" "$T/inner.kek"
  run_ok "$what: blindlist decrypt" "$BL" decrypt --key "$P/member-p384.key" -i "$out" -o "$T/rt.eml"
  same_bytes "$what: blindlist decrypt of its own message (must restore the original byte for byte)" \
    "$M/$msg.eml" "$T/rt.eml"
done

step "2. single-recipient envelopes (EnvelopedData v0 KTRI, v2 KARI, KEK only) with openssl, also without -recip"
run_ok "encrypt" "$BL" encrypt --cipher aes-256-cbc --rsa-padding pkcs1 --to "$P/member-rsa.crt" -i "$M/crlf.eml" -o "$T/one-rsa.smime"
check_inspect "RSA only" "$T/one-rsa.smime" EnvelopedData aes-256-cbc ktri
osl_decrypt "RSA PKCS#1 only, no -recip" "$T/one-rsa.smime" "$T/one-rsa.inner" -inkey "$P/member-rsa.key"
check_protected "RSA PKCS#1 only" "$M/crlf.eml" "$T/one-rsa.smime" "$T/one-rsa.inner"
# env_version SMIME: the EnvelopedData version as openssl reads it
env_version() { openssl cms -cmsout -print -in "$1" | awk '/^    version:/ {print $2; exit}'; }
[[ $(env_version "$T/one-rsa.smime") == 0 ]] ||
  fail "EnvelopedData with one issuer+serial KTRI should be version 0 (RFC 5652 6.1), openssl reads $(env_version "$T/one-rsa.smime")"

run_ok "encrypt" "$BL" encrypt --to "$P/member-rsa.crt" -i "$M/lf.eml" -o "$T/one-oaep.smime"
check_inspect "RSA default" "$T/one-oaep.smime" AuthEnvelopedData aes-256-gcm ktri
osl_decrypt "RSA-OAEP only, no -recip" "$T/one-oaep.smime" "$T/one-oaep.inner" -inkey "$P/member-rsa.key"
check_protected "RSA-OAEP default" "$M/lf.eml" "$T/one-oaep.smime" "$T/one-oaep.inner"

for c in member-p384 group-ec; do
  for cipher in aes-256-gcm aes-256-cbc; do
    run_ok "encrypt" "$BL" encrypt --cipher $cipher --to "$P/$c.crt" -i "$M/multipart.eml" -o "$T/one-ec.smime"
    if [[ $cipher == aes-256-cbc && $(env_version "$T/one-ec.smime") != 2 ]]; then
      fail "EnvelopedData with a KeyAgreeRecipientInfo should be version 2 (RFC 5652 6.1), openssl reads $(env_version "$T/one-ec.smime")"
    fi
    osl_decrypt "EC $c only $cipher, no -recip" "$T/one-ec.smime" "$T/one-ec.inner" -inkey "$P/$c.key"
    check_protected "EC $c only $cipher" "$M/multipart.eml" "$T/one-ec.smime" "$T/one-ec.inner"
  done
done

for key in "$SECRET16" "$SECRET24" "$SECRET32"; do
  for cipher in aes-256-gcm aes-256-cbc; do
    run_ok "encrypt" "$BL" encrypt --cipher $cipher --secret-key "$key" --secret-key-id "$SECRET_ID" \
      -i "$M/crlf.eml" -o "$T/kek.smime"
    if [[ $cipher == aes-256-gcm ]]; then ctype=AuthEnvelopedData; else ctype=EnvelopedData; fi
    check_inspect "KEK only" "$T/kek.smime" $ctype $cipher kekri
    osl_decrypt "KEK only ($((${#key} * 4))-bit secret, $cipher)" "$T/kek.smime" "$T/kek.inner" \
      -secretkey "$key" -secretkeyid "$SECRET_ID"
    check_protected "KEK only ($((${#key} * 4))-bit secret, $cipher)" "$M/crlf.eml" "$T/kek.smime" "$T/kek.inner"
  done
done

step "3. openssl refuses blindlist's output with the wrong key (the test is not vacuous)"
if openssl cms -decrypt -in "$T/one-oaep.smime" -recip "$P/member-p256.crt" -inkey "$P/member-p256.key" \
  -out "$T/x" 2>/dev/null; then
  fail "openssl decrypted an RSA-only blindlist message with an unrelated EC key"
fi

echo "PASS blindlist_to_openssl"
