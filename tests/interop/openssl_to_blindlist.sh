#!/usr/bin/env bash
# Interop, direction openssl -> blindlist: messages made by `openssl cms -encrypt`
# (a stock S/MIME engine) decrypt with `blindlist decrypt`, for every content
# cipher, key transport/agreement variant, recipient identifier, KEK secret size
# and output form that openssl can produce and blindlist supports.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

make_pki
make_messages
P=$WORK/pki
M=$WORK/msg
T=$WORK/t
mkdir -p "$T"
ENTITY=$M/entity.txt

# osl_encrypt OUT ARGS...: openssl cms -encrypt -binary of the test entity.
osl_encrypt() {
  local out=$1
  shift
  openssl cms -encrypt -binary -in "$ENTITY" -out "$out" "$@" 2>"$T/osl.err" ||
    fail "openssl cms -encrypt $* failed (test setup): $(cat "$T/osl.err")"
}

# bl_decrypt_check WHAT IN KEYARGS...: blindlist decrypt must give back the entity.
bl_decrypt_check() {
  local what=$1 in=$2
  shift 2
  run_ok "$what: blindlist decrypt" "$BL" decrypt "$@" -i "$in" -o "$T/out"
  same_bytes "$what" "$ENTITY" "$T/out"
}

# inspect_expect WHAT IN CONTENT_TYPE CIPHER KINDS(space separated, in order)
inspect_expect() {
  local what=$1 in=$2 ctype=$3 cipher=$4 kinds=$5
  run_ok "$what: blindlist inspect --json" "$BL" inspect --json -i "$in" -o "$T/inspect.json"
  local got
  got=$(json_get "$T/inspect.json" 'j["content_type"]+"|"+j["cipher"]+"|"+" ".join(r["kind"] for r in j["recipient_infos"])')
  [[ "$got" == "$ctype|$cipher|$kinds" ]] ||
    fail "$what: blindlist inspect reports '$got', expected '$ctype|$cipher|$kinds'"
}

step "1. every content cipher openssl offers, to an RSA (PKCS#1 v1.5) and an EC (SHA-1 KDF) recipient"
for spec in aes128:aes-128-cbc:EnvelopedData aes192:aes-192-cbc:EnvelopedData \
  aes256:aes-256-cbc:EnvelopedData aes-128-gcm:aes-128-gcm:AuthEnvelopedData \
  aes-192-gcm:aes-192-gcm:AuthEnvelopedData aes-256-gcm:aes-256-gcm:AuthEnvelopedData; do
  IFS=: read -r flag cipher ctype <<<"$spec"
  osl_encrypt "$T/rsa-$flag.smime" "-$flag" "$P/group-rsa.crt"
  inspect_expect "openssl -$flag to RSA" "$T/rsa-$flag.smime" "$ctype" "$cipher" ktri
  bl_decrypt_check "openssl -$flag to the RSA group cert" "$T/rsa-$flag.smime" --key "$P/group-rsa.key"
  osl_encrypt "$T/ec-$flag.smime" "-$flag" "$P/group-ec.crt"
  inspect_expect "openssl -$flag to EC" "$T/ec-$flag.smime" "$ctype" "$cipher" kari
  bl_decrypt_check "openssl -$flag to the EC group cert" "$T/ec-$flag.smime" --key "$P/group-ec.key"
done

step "2. RSA key transport: PKCS#1 v1.5, OAEP (SHA-1 default), OAEP SHA-256, OAEP SHA-256 with MGF1-SHA-384 and a label"
for cert in group-rsa member-rsa; do
  for cipher in -aes-256-gcm -aes256; do
    osl_encrypt "$T/p1.smime" "$cipher" -recip "$P/$cert.crt" -keyopt rsa_padding_mode:pkcs1
    bl_decrypt_check "RSA PKCS#1 v1.5 ($cert, $cipher)" "$T/p1.smime" --key "$P/$cert.key"
    osl_encrypt "$T/oaep1.smime" "$cipher" -recip "$P/$cert.crt" -keyopt rsa_padding_mode:oaep
    inspect_expect "OAEP SHA-1" "$T/oaep1.smime" "$([[ $cipher == -aes256 ]] && echo EnvelopedData || echo AuthEnvelopedData)" \
      "$([[ $cipher == -aes256 ]] && echo aes-256-cbc || echo aes-256-gcm)" ktri
    bl_decrypt_check "RSA-OAEP SHA-1 ($cert, $cipher)" "$T/oaep1.smime" --key "$P/$cert.key" --cert "$P/$cert.crt"
    osl_encrypt "$T/oaep256.smime" "$cipher" -recip "$P/$cert.crt" -keyopt rsa_padding_mode:oaep \
      -keyopt rsa_oaep_md:sha256
    bl_decrypt_check "RSA-OAEP SHA-256 ($cert, $cipher)" "$T/oaep256.smime" --key "$P/$cert.key"
    run_ok "inspect" "$BL" inspect -i "$T/oaep256.smime" -o "$T/inspect.txt"
    grep -qi 'OAEP.*SHA.\{0,1\}256' "$T/inspect.txt" ||
      fail "blindlist inspect does not name RSA-OAEP SHA-256 for an OAEP-SHA-256 message: $(cat "$T/inspect.txt")"
  done
done
osl_encrypt "$T/oaepl.smime" -aes-256-gcm -recip "$P/member-rsa.crt" -keyopt rsa_padding_mode:oaep \
  -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha384 -keyopt rsa_oaep_label:00112233445566
bl_decrypt_check "RSA-OAEP SHA-256, MGF1-SHA-384, with a label" "$T/oaepl.smime" --key "$P/member-rsa.key"
for md in sha384 sha512; do
  osl_encrypt "$T/oaep-$md.smime" -aes-256-gcm -recip "$P/group-rsa.crt" -keyopt rsa_padding_mode:oaep -keyopt "rsa_oaep_md:$md"
  bl_decrypt_check "RSA-OAEP $md" "$T/oaep-$md.smime" --key "$P/group-rsa.key"
done

step "3. EC key agreement: P-256 and P-384, KDF SHA-1 (openssl default), SHA-224/256/384/512, cofactor DH"
for cert in group-ec member-p256 member-p384; do
  for cipher in -aes-256-gcm -aes128; do
    osl_encrypt "$T/ec1.smime" "$cipher" -recip "$P/$cert.crt"
    bl_decrypt_check "ECDH KDF SHA-1 ($cert, $cipher)" "$T/ec1.smime" --key "$P/$cert.key"
    run_ok "inspect" "$BL" inspect -i "$T/ec1.smime" -o "$T/inspect.txt"
    grep -qi 'SHA.\{0,1\}1' "$T/inspect.txt" ||
      fail "blindlist inspect does not name the SHA-1 KDF of openssl's default ECDH: $(cat "$T/inspect.txt")"
    for md in sha224 sha256 sha384 sha512; do
      osl_encrypt "$T/ec2.smime" "$cipher" -recip "$P/$cert.crt" -keyopt "ecdh_kdf_md:$md"
      bl_decrypt_check "ECDH KDF $md ($cert, $cipher)" "$T/ec2.smime" --key "$P/$cert.key" --cert "$P/$cert.crt"
    done
    osl_encrypt "$T/ec3.smime" "$cipher" -recip "$P/$cert.crt" -keyopt ecdh_cofactor_mode:1
    bl_decrypt_check "ECDH cofactor mode ($cert, $cipher)" "$T/ec3.smime" --key "$P/$cert.key"
  done
done

step "4. several recipients in one message, by issuer+serial and by subjectKeyIdentifier (-keyid)"
ALL_CERTS=("$P/group-rsa.crt" "$P/group-ec.crt" "$P/member-rsa.crt" "$P/member-p256.crt" "$P/member-p384.crt")
for keyid in "" -keyid; do
  for cipher in -aes-256-gcm -aes256; do
    osl_encrypt "$T/multi.smime" "$cipher" $keyid "${ALL_CERTS[@]}"
    run_ok "inspect" "$BL" inspect --json -i "$T/multi.smime" -o "$T/multi.json"
    # One python3 run checks count, kinds and (with -keyid) that every certificate's SKI is named.
    skis=""
    if [[ -n "$keyid" ]]; then
      for c in group-rsa group-ec member-rsa member-p256 member-p384; do
        skis+=" $(openssl x509 -in "$P/$c.crt" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr 'A-F' 'a-f')"
      done
    fi
    # shellcheck disable=SC2086  # $skis: one argument per identifier
    problem=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
ris = j["recipient_infos"]
kinds = sorted(r["kind"] for r in ris)
ids = " ".join(r["recipient_id"] for r in ris).lower()
if len(ris) != 5:
    print("blindlist inspect counts %d RecipientInfos in a message openssl made for 5 recipients" % len(ris))
elif kinds != ["kari", "kari", "kari", "ktri", "ktri"]:
    print("blindlist inspect reports kinds %s for 2 RSA + 3 EC recipients" % kinds)
elif sys.argv[2:] and "issuer-serial" in ids:
    print("blindlist inspect shows issuer-serial ids for a -keyid message: " + ids)
else:
    for ski in sys.argv[2:]:
        if ski not in ids:
            print("blindlist inspect does not show the subjectKeyIdentifier %s in a -keyid message: %s" % (ski, ids))
            break
' "$T/multi.json" $skis) || fail "cannot read blindlist inspect --json output: $(head -c 300 "$T/multi.json")"
    [[ -z $problem ]] || fail "$problem"
    for c in group-rsa group-ec member-rsa member-p256 member-p384; do
      bl_decrypt_check "five recipients $keyid $cipher, key of $c with --cert" "$T/multi.smime" \
        --key "$P/$c.key" --cert "$P/$c.crt"
      bl_decrypt_check "five recipients $keyid $cipher, key of $c alone" "$T/multi.smime" --key "$P/$c.key"
    done
  done
done

step "5. KEKRecipientInfo (-secretkey/-secretkeyid), AES-128/192/256 key wrap, GCM and CBC"
for key in "$SECRET16" "$SECRET24" "$SECRET32"; do
  for cipher in -aes-256-gcm -aes128; do
    osl_encrypt "$T/kek.smime" "$cipher" -secretkey "$key" -secretkeyid "$SECRET_ID"
    inspect_expect "KEK $((${#key} * 4))-bit $cipher" "$T/kek.smime" \
      "$([[ $cipher == -aes128 ]] && echo EnvelopedData || echo AuthEnvelopedData)" \
      "$([[ $cipher == -aes128 ]] && echo aes-128-cbc || echo aes-256-gcm)" kekri
    bl_decrypt_check "KEK secret of $((${#key} * 4)) bits, $cipher" "$T/kek.smime" \
      --secret-key "$key" --secret-key-id "$SECRET_ID"
  done
done
osl_encrypt "$T/kekmix.smime" -aes-256-gcm -secretkey "$SECRET32" -secretkeyid "$SECRET_ID" \
  "$P/member-rsa.crt" "$P/member-p256.crt"
bl_decrypt_check "KEK next to certificate recipients, with the secret" "$T/kekmix.smime" \
  --secret-key "$SECRET32" --secret-key-id "$SECRET_ID"
bl_decrypt_check "KEK next to certificate recipients, with the P-256 key" "$T/kekmix.smime" --key "$P/member-p256.key"

step "6. output forms: S/MIME, -outform DER, -outform PEM, streamed BER (-stream), CRLF S/MIME"
for cert in group-rsa group-ec; do
  for form in SMIME DER PEM; do
    for cipher in -aes-256-gcm -aes256; do
      osl_encrypt "$T/form.$form" "$cipher" -outform "$form" "$P/$cert.crt"
      bl_decrypt_check "-outform $form $cipher to $cert" "$T/form.$form" --key "$P/$cert.key"
      # stdin too: the form is recognised from the bytes, not from a file name
      "$BL" decrypt --key "$P/$cert.key" <"$T/form.$form" >"$T/out.stdin" 2>"$T/err" ||
        fail "-outform $form from standard input: blindlist decrypt failed: $(cat "$T/err")"
      same_bytes "-outform $form from standard input" "$ENTITY" "$T/out.stdin"
    done
    osl_encrypt "$T/stream.$form" -aes-256-gcm -stream -outform "$form" "$P/$cert.crt"
    bl_decrypt_check "streamed (indefinite-length BER) -outform $form to $cert" "$T/stream.$form" --key "$P/$cert.key"
  done
done
run_ok "inspect" "$BL" inspect --json -i "$T/form.DER" -o "$T/f.json"
[[ $(json_get "$T/f.json" 'j["form"]') == der ]] || fail "blindlist inspect does not report form der for -outform DER"
run_ok "inspect" "$BL" inspect --json -i "$T/form.SMIME" -o "$T/f.json"
[[ $(json_get "$T/f.json" 'j["form"]') == smime ]] || fail "blindlist inspect does not report form smime for S/MIME"
osl_encrypt "$T/crlf.smime" -aes256 -crlfeol "$P/group-rsa.crt"
bl_decrypt_check "S/MIME with CRLF line ends (-crlfeol)" "$T/crlf.smime" --key "$P/group-rsa.key"

step "7. a 300 KB entity, streamed in BER segments"
{
  printf 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n'
  head -c 225000 /dev/urandom | base64 | sed 's/$/\r/'
} >"$T/big.txt"
openssl cms -encrypt -binary -stream -aes-256-gcm -outform DER -in "$T/big.txt" -out "$T/big.der" \
  "$P/member-p384.crt" || fail "openssl cms -encrypt of a large entity failed (test setup)"
run_ok "large streamed message: blindlist decrypt" "$BL" decrypt --key "$P/member-p384.key" -i "$T/big.der" -o "$T/big.out"
same_bytes "large streamed message" "$T/big.txt" "$T/big.out"

step "8. openssl's text mode (no -binary, LF input made CRLF) matches openssl's own decryption"
printf 'Content-Type: text/plain\n\nunix line ends\nsecond line\n' >"$T/lf-entity.txt"
openssl cms -encrypt -aes256 -in "$T/lf-entity.txt" -out "$T/text.smime" "$P/group-rsa.crt"
openssl cms -decrypt -inkey "$P/group-rsa.key" -in "$T/text.smime" -out "$T/text.expected"
run_ok "text mode: blindlist decrypt" "$BL" decrypt --key "$P/group-rsa.key" -i "$T/text.smime" -o "$T/text.out"
same_bytes "openssl text-mode message" "$T/text.expected" "$T/text.out"

step "9. outer header fields (-to/-from/-subject) come back in front of the decrypted entity"
osl_encrypt "$T/hdr.smime" -aes-256-gcm -to list-rsa@example.org -from alice@example.org \
  -subject "Lunch on Friday" "$P/group-rsa.crt"
{
  printf 'To: list-rsa@example.org\nFrom: alice@example.org\nSubject: Lunch on Friday\n'
  cat "$ENTITY"
} >"$T/hdr.expected"
run_ok "outer headers: blindlist decrypt" "$BL" decrypt --key "$P/group-rsa.key" -i "$T/hdr.smime" -o "$T/hdr.out"
same_bytes "message with outer To/From/Subject (outer non-MIME headers, then the entity)" "$T/hdr.expected" "$T/hdr.out"
grep -qi '^Content-Type: application/pkcs7-mime' "$T/hdr.out" &&
  fail "decrypting a message with outer headers left the outer application/pkcs7-mime Content-Type in the output"

step "10. legacy labels: application/x-pkcs7-mime, and no smime-type parameter"
osl_encrypt "$T/legacy.smime" -aes256 "$P/group-rsa.crt"
sed 's#application/pkcs7-mime#application/x-pkcs7-mime#' "$T/legacy.smime" >"$T/x-pkcs7.smime"
grep -q 'application/x-pkcs7-mime' "$T/x-pkcs7.smime" || fail "test setup: could not relabel the Content-Type"
bl_decrypt_check "application/x-pkcs7-mime (older clients)" "$T/x-pkcs7.smime" --key "$P/group-rsa.key"
sed 's#; smime-type=enveloped-data##' "$T/legacy.smime" >"$T/no-smime-type.smime"
grep -q 'smime-type' "$T/no-smime-type.smime" && fail "test setup: could not remove smime-type"
bl_decrypt_check "application/pkcs7-mime without smime-type" "$T/no-smime-type.smime" --key "$P/group-rsa.key"

step "11. an RFC 9788 entity (hp=\"cipher\") encrypted by openssl, as another header-protecting client sends it"
# The protected inner entity as blindlist builds it, re-encrypted by openssl under an outer
# header with Subject [...]: blindlist decrypt must restore the original message.
run_ok "blindlist encrypt" "$BL" encrypt --to "$P/group-rsa.crt" -i "$M/crlf.eml" -o "$T/hp.smime"
openssl cms -decrypt -inkey "$P/group-rsa.key" -in "$T/hp.smime" -out "$T/hp.inner" ||
  fail "openssl cannot decrypt blindlist's message (test setup)"
openssl cms -encrypt -binary -aes-256-gcm -to list-rsa@example.org -from "Alice <alice@example.org>" \
  -subject "[...]" -in "$T/hp.inner" -out "$T/hp-osl.smime" "$P/group-ec.crt" ||
  fail "openssl cms -encrypt failed (test setup)"
run_ok "decrypt an openssl-encrypted RFC 9788 entity" "$BL" decrypt --key "$P/group-ec.key" -i "$T/hp-osl.smime" -o "$T/hp.out"
same_bytes "RFC 9788 entity from another client (the original message must come back)" "$M/crlf.eml" "$T/hp.out"

echo "PASS openssl_to_blindlist"
