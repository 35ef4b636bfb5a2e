#!/usr/bin/env bash
# Interop of `blindlist rewrap` (reading paths E and S/B): the group key holder adds
# (or with --replace substitutes) a RecipientInfo for a member's certificate or the
# group secret. The result must decrypt with `openssl cms -decrypt` using only the
# member's key (RSA, P-256, P-384 members; RSA and EC group keys) or the secret,
# must leave the encrypted content byte-identical, and with --replace the group key
# must no longer open the message.
#
# Usage: rewrap.sh BLINDLIST [rsa|ec|all]   (rsa: RSA group key; ec: EC group key,
# streamed BER, several recipients, chained rewraps). Split so ctest runs both halves in parallel.
set -euo pipefail
PART=${2:-all}
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[[ $PART == rsa || $PART == ec || $PART == all ]] || fail "unknown part '$PART' (rsa, ec or all)"

make_pki
make_messages
P=$WORK/pki
M=$WORK/msg
T=$WORK/t
mkdir -p "$T"

# to_der IN OUT: the CMS bytes of IN, whatever its form (S/MIME or raw DER).
to_der() {
  if head -c 1 "$1" | od -An -tx1 | grep -q '30'; then cp "$1" "$2"; else smime_to_der "$1" "$2"; fi
}

# describe IN: "KINDS|ENCRYPTED_CONTENT_SIZE" from blindlist inspect --json. One python3 per
# file: each file here is written once, so the answer is cached (in files, as callers use $(...)).
mkdir -p "$T/desc"
describe() {
  local cache
  cache=$T/desc/$(tr '/' '_' <<<"$1")
  if [[ ! -s $cache ]]; then
    "$BL" inspect --json -i "$1" >"$cache.json" 2>"$T/desc.err" ||
      fail "blindlist inspect cannot read $1: $(cat "$T/desc.err")"
    json_get "$cache.json" '" ".join(r["kind"] for r in j["recipient_infos"])+"|"+str(j["encrypted_content_size"])' >"$cache"
  fi
  cp "$cache.json" "$T/k.json"
  cat "$cache"
}
# kinds_of IN: "ktri kari ..." in RecipientInfo order.
kinds_of() {
  local d
  d=$(describe "$1")
  echo "${d%|*}"
}

# content_unchanged WHAT BEFORE AFTER: same encrypted_content_size, and the same
# EncryptedContentInfo (and everything after it: GCM mac, attributes) byte for byte.
content_unchanged() {
  local what=$1 before=$2 after=$3 d0 d1
  d0=$(describe "$before")
  d1=$(describe "$after")
  [[ ${d0#*|} == "${d1#*|}" ]] ||
    fail "$what: encrypted_content_size changed from ${d0#*|} to ${d1#*|} (rewrap must not touch the ciphertext)"
  to_der "$before" "$T/before.der"
  to_der "$after" "$T/after.der"
  same_eci "$what" "$T/before.der" "$T/after.der"
  # DER on both sides: everything after the RecipientInfos (ECI, GCM mac, attributes) is unchanged too.
  openssl asn1parse -inform DER -in "$T/before.der" | grep -q 'l=inf' && return
  cms_tail "$T/before.der" "$T/before.tail"
  cms_tail "$T/after.der" "$T/after.tail"
  cmp -s "$T/before.tail" "$T/after.tail" ||
    fail "$what: the bytes after the RecipientInfos (EncryptedContentInfo, mac, attributes) changed"
}

# osl_decrypt_as WHAT IN EXPECTED CERT: openssl decrypts IN with CERT's key and gets EXPECTED.
osl_decrypt_as() {
  local what=$1 in=$2 expected=$3 cert=$4 inform=()
  head -c 1 "$in" | od -An -tx1 | grep -q '30' && inform=(-inform DER)
  openssl cms -decrypt "${inform[@]}" -in "$in" -recip "$P/$cert.crt" -inkey "$P/$cert.key" -out "$T/osl.out" \
    2>"$T/osl.err" || fail "$what: openssl cms -decrypt with the $cert key cannot open the rewrapped message: $(head -c 600 "$T/osl.err")"
  same_bytes "$what: openssl decryption with the $cert key" "$expected" "$T/osl.out"
}
osl_decrypt_secret() {
  local what=$1 in=$2 expected=$3 inform=()
  head -c 1 "$in" | od -An -tx1 | grep -q '30' && inform=(-inform DER)
  openssl cms -decrypt "${inform[@]}" -in "$in" -secretkey "$SECRET32" -secretkeyid "$SECRET_ID" -out "$T/osl.out" \
    2>"$T/osl.err" || fail "$what: openssl cms -decrypt -secretkey cannot open the rewrapped message: $(head -c 600 "$T/osl.err")"
  same_bytes "$what: openssl decryption with the group secret" "$expected" "$T/osl.out"
}
osl_cannot_decrypt() {
  local what=$1 in=$2 cert=$3 inform=()
  head -c 1 "$in" | od -An -tx1 | grep -q '30' && inform=(-inform DER)
  if openssl cms -decrypt "${inform[@]}" -in "$in" -recip "$P/$cert.crt" -inkey "$P/$cert.key" -out "$T/x" 2>/dev/null; then
    fail "$what: after rewrap --replace the $cert key still decrypts the message with openssl"
  fi
}

kind_for() { case $1 in *rsa*) echo ktri ;; *) echo kari ;; esac }

# rewrap_suite NAME SRC GROUP EXPECTED_INNER ORIGINAL_MESSAGE|"" TARGET...
# For each TARGET (member-rsa, member-p256, member-p384) rewrap adds a RecipientInfo, then
# --replace substitutes the group's; then the same with the group secret (KEKRecipientInfo).
# SRC is addressed (at least) to GROUP; EXPECTED_INNER is what openssl decrypts it to.
rewrap_suite() {
  local name=$1 src=$2 group=$3 inner=$4 original=$5
  shift 5
  local kinds0 out target k tag
  kinds0=$(kinds_of "$src")
  tag=$(tr -c 'A-Za-z0-9\n' '_' <<<"$name")
  for target in "$@"; do
    k=$(kind_for "$target")
    # add
    out=$T/$tag-add-$target
    run_ok "$name: rewrap --for $target" "$BL" rewrap --key "$P/$group.key" --cert "$P/$group.crt" \
      --for "$P/$target.crt" -i "$src" -o "$out"
    [[ $(kinds_of "$out") == "$kinds0 $k" ]] ||
      fail "$name: after rewrap --for $target inspect shows RecipientInfos '$(kinds_of "$out")', expected '$kinds0 $k'"
    content_unchanged "$name: rewrap --for $target" "$src" "$out"
    osl_decrypt_as "$name: rewrap --for $target" "$out" "$inner" "$target"
    osl_decrypt_as "$name: rewrap --for $target, group key still a recipient" "$out" "$inner" "$group"
    if [[ -n $original ]]; then
      run_ok "$name: member decrypt" "$BL" decrypt --key "$P/$target.key" --cert "$P/$target.crt" -i "$out" -o "$T/bl.out"
      same_bytes "$name: blindlist decrypt by $target after rewrap restores the original message" "$original" "$T/bl.out"
    fi
    # replace
    out=$T/$tag-replace-$target
    run_ok "$name: rewrap --replace --for $target" "$BL" rewrap --replace --key "$P/$group.key" \
      --cert "$P/$group.crt" --for "$P/$target.crt" -i "$src" -o "$out"
    local n0 n1
    n0=$(wc -w <<<"$kinds0")
    n1=$(kinds_of "$out" | wc -w)
    [[ $n0 -eq $n1 ]] || fail "$name: rewrap --replace changed the number of RecipientInfos from $n0 to $n1"
    kinds_of "$out" | grep -qw "$k" || fail "$name: rewrap --replace --for $target left no $k RecipientInfo"
    content_unchanged "$name: rewrap --replace --for $target" "$src" "$out"
    osl_decrypt_as "$name: rewrap --replace --for $target" "$out" "$inner" "$target"
    osl_cannot_decrypt "$name: rewrap --replace --for $target" "$out" "$group"
    expect_fail "$name: blindlist decrypt with the replaced group key" 'recipient|wrong key|unwrap' "$T/e" -- \
      "$BL" decrypt --key "$P/$group.key" --cert "$P/$group.crt" -i "$out"
  done
  # group secret (KEKRecipientInfo), added and replacing
  out=$T/$tag-add-kek
  run_ok "$name: rewrap --secret-key" "$BL" rewrap --key "$P/$group.key" --cert "$P/$group.crt" \
    --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$src" -o "$out"
  [[ $(kinds_of "$out") == "$kinds0 kekri" ]] ||
    fail "$name: after rewrap --secret-key inspect shows '$(kinds_of "$out")', expected '$kinds0 kekri'"
  grep -q "kek-id:$SECRET_ID\|$SECRET_ID" "$T/k.json" || fail "$name: inspect does not show the KEK identifier $SECRET_ID"
  content_unchanged "$name: rewrap --secret-key" "$src" "$out"
  osl_decrypt_secret "$name: rewrap --secret-key" "$out" "$inner"
  out=$T/$tag-replace-kek
  run_ok "$name: rewrap --replace --secret-key" "$BL" rewrap --replace --key "$P/$group.key" --cert "$P/$group.crt" \
    --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$src" -o "$out"
  kinds_of "$out" | grep -qw kekri || fail "$name: rewrap --replace --secret-key left no kekri"
  content_unchanged "$name: rewrap --replace --secret-key" "$src" "$out"
  osl_decrypt_secret "$name: rewrap --replace --secret-key" "$out" "$inner"
  osl_cannot_decrypt "$name: rewrap --replace --secret-key" "$out" "$group"
  if [[ -n $original ]]; then
    run_ok "$name: KEK decrypt" "$BL" decrypt --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$out" -o "$T/bl.out"
    same_bytes "$name: blindlist decrypt with the secret after rewrap restores the original message" "$original" "$T/bl.out"
  fi
}

# inner_of SRC GROUP OUT: the inner entity as openssl decrypts it with the group key.
inner_of() {
  local inform=()
  head -c 1 "$1" | od -An -tx1 | grep -q '30' && inform=(-inform DER)
  openssl cms -decrypt "${inform[@]}" -in "$1" -recip "$P/$2.crt" -inkey "$P/$2.key" -out "$3" ||
    fail "openssl cannot decrypt the source message $1 with $2 (test setup)"
}

if [[ $PART != ec ]]; then
  step "1. RSA group key: blindlist messages (GCM+OAEP, CBC+PKCS#1) and a stock openssl message"
  run_ok "encrypt" "$BL" encrypt --to "$P/group-rsa.crt" -i "$M/crlf.eml" -o "$T/g-rsa-gcm.smime"
  inner_of "$T/g-rsa-gcm.smime" group-rsa "$T/g-rsa-gcm.inner"
  rewrap_suite "RSA group, blindlist GCM/OAEP" "$T/g-rsa-gcm.smime" group-rsa "$T/g-rsa-gcm.inner" "$M/crlf.eml" \
    member-rsa member-p256 member-p384

  run_ok "encrypt" "$BL" encrypt --cipher aes-256-cbc --rsa-padding pkcs1 --to "$P/group-rsa.crt" \
    -i "$M/lf.eml" -o "$T/g-rsa-cbc.smime"
  inner_of "$T/g-rsa-cbc.smime" group-rsa "$T/g-rsa-cbc.inner"
  rewrap_suite "RSA group, blindlist CBC/PKCS#1" "$T/g-rsa-cbc.smime" group-rsa "$T/g-rsa-cbc.inner" "$M/lf.eml" \
    member-rsa member-p384

  openssl cms -encrypt -binary -aes256 -outform DER -in "$M/entity.txt" -out "$T/g-rsa-osl.der" "$P/group-rsa.crt"
  rewrap_suite "RSA group, openssl -aes256 DER" "$T/g-rsa-osl.der" group-rsa "$M/entity.txt" "" member-p256
  run_ok "rewrap DER" "$BL" rewrap --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" --for "$P/member-rsa.crt" \
    -i "$T/g-rsa-osl.der" -o "$T/form.out"
  run_ok "inspect" "$BL" inspect --json -i "$T/form.out" -o "$T/form.json"
  [[ $(json_get "$T/form.json" 'j["form"]') == der ]] || fail "rewrap of a DER message did not write DER"

  step "2. chained rewraps (member with --rsa-padding pkcs1, then the secret); the S/MIME wrapper survives"
  run_ok "rewrap 1" "$BL" rewrap --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" --for "$P/member-rsa.crt" \
    --rsa-padding pkcs1 -i "$T/g-rsa-gcm.smime" -o "$T/chain1.smime"
  run_ok "rewrap 2" "$BL" rewrap --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" \
    --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$T/chain1.smime" -o "$T/chain2.smime"
  [[ $(kinds_of "$T/chain2.smime") == "ktri ktri kekri" ]] || fail "chained rewraps gave '$(kinds_of "$T/chain2.smime")'"
  json_get "$T/k.json" 'j["recipient_infos"][1]["key_algorithm"]' | grep -qi 'PKCS' ||
    fail "rewrap --rsa-padding pkcs1 did not produce a PKCS#1 v1.5 RecipientInfo: $(json_get "$T/k.json" 'j["recipient_infos"][1]["key_algorithm"]')"
  content_unchanged "chained rewraps" "$T/g-rsa-gcm.smime" "$T/chain2.smime"
  osl_decrypt_as "chained rewraps" "$T/chain2.smime" "$T/g-rsa-gcm.inner" member-rsa
  osl_decrypt_secret "chained rewraps" "$T/chain2.smime" "$T/g-rsa-gcm.inner"
  sed '/^\r\{0,1\}$/q' "$T/g-rsa-gcm.smime" | grep -v -i '^Content-\|^MIME-Version\|^ ' >"$T/h0"
  sed '/^\r\{0,1\}$/q' "$T/chain2.smime" | grep -v -i '^Content-\|^MIME-Version\|^ ' >"$T/h1"
  cmp -s "$T/h0" "$T/h1" || fail "rewrap changed the outer header fields: $(diff "$T/h0" "$T/h1" | head -5)"
  grep -q '^Subject: \[\.\.\.\]' "$T/h1" || fail "after rewrap the outer Subject is not [...]"
fi

if [[ $PART != rsa ]]; then
  step "3. EC group key: blindlist GCM message and a stock openssl message (SHA-1 KDF)"
  run_ok "encrypt" "$BL" encrypt --to "$P/group-ec.crt" -i "$M/multipart.eml" -o "$T/g-ec-gcm.smime"
  inner_of "$T/g-ec-gcm.smime" group-ec "$T/g-ec-gcm.inner"
  rewrap_suite "EC group, blindlist GCM" "$T/g-ec-gcm.smime" group-ec "$T/g-ec-gcm.inner" "$M/multipart.eml" \
    member-rsa member-p256 member-p384

  openssl cms -encrypt -binary -aes-128-gcm -in "$M/entity.txt" -out "$T/g-ec-osl.smime" "$P/group-ec.crt"
  rewrap_suite "EC group, openssl -aes-128-gcm S/MIME" "$T/g-ec-osl.smime" group-ec "$M/entity.txt" "" member-rsa

  step "4. streamed BER input (openssl -stream), subjectKeyIdentifier rids, several recipients"
  openssl cms -encrypt -binary -stream -aes-256-gcm -outform DER -in "$M/entity.txt" -out "$T/ber.der" "$P/group-ec.crt"
  run_ok "rewrap BER" "$BL" rewrap --key "$P/group-ec.key" --cert "$P/group-ec.crt" --for "$P/member-rsa.crt" \
    -i "$T/ber.der" -o "$T/ber.out"
  content_unchanged "rewrap of streamed BER" "$T/ber.der" "$T/ber.out"
  osl_decrypt_as "rewrap of streamed BER" "$T/ber.out" "$M/entity.txt" member-rsa

  # A stock client naming the group by subjectKeyIdentifier (-keyid), RSA and EC.
  for g in group-rsa group-ec; do
    openssl cms -encrypt -binary -keyid -aes256 -in "$M/entity.txt" -out "$T/keyid-$g.smime" "$P/$g.crt"
    run_ok "rewrap of a -keyid message ($g)" "$BL" rewrap --key "$P/$g.key" --cert "$P/$g.crt" \
      --for "$P/member-p384.crt" -i "$T/keyid-$g.smime" -o "$T/keyid-$g-add.smime"
    content_unchanged "rewrap of a -keyid message ($g)" "$T/keyid-$g.smime" "$T/keyid-$g-add.smime"
    osl_decrypt_as "rewrap of a -keyid message ($g)" "$T/keyid-$g-add.smime" "$M/entity.txt" member-p384
    run_ok "rewrap --replace of a -keyid message ($g)" "$BL" rewrap --replace --key "$P/$g.key" --cert "$P/$g.crt" \
      --for "$P/member-rsa.crt" -i "$T/keyid-$g.smime" -o "$T/keyid-$g-rep.smime"
    osl_decrypt_as "rewrap --replace of a -keyid message ($g)" "$T/keyid-$g-rep.smime" "$M/entity.txt" member-rsa
    osl_cannot_decrypt "rewrap --replace of a -keyid message ($g)" "$T/keyid-$g-rep.smime" "$g"
  done

  # To a member, the group and the secret: --replace swaps only the group's RecipientInfo.
  run_ok "encrypt" "$BL" encrypt --to "$P/member-p256.crt" --to "$P/group-rsa.crt" \
    --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$M/crlf.eml" -o "$T/multi.smime"
  inner_of "$T/multi.smime" member-p256 "$T/multi.inner"
  run_ok "rewrap" "$BL" rewrap --replace --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" \
    --for "$P/member-p384.crt" -i "$T/multi.smime" -o "$T/multi.out"
  [[ $(kinds_of "$T/multi.out") == "kari kari kekri" ]] ||
    fail "rewrap --replace of the group's RI among three gave '$(kinds_of "$T/multi.out")', expected 'kari kari kekri'"
  run_ok "inspect" "$BL" inspect --json -i "$T/multi.smime" -o "$T/m0.json"
  run_ok "inspect" "$BL" inspect --json -i "$T/multi.out" -o "$T/m1.json"
  [[ $(json_get "$T/m0.json" 'j["recipient_infos"][0]["recipient_id"]') == $(json_get "$T/m1.json" 'j["recipient_infos"][0]["recipient_id"]') ]] ||
    fail "rewrap --replace changed a RecipientInfo that was not the group's"
  content_unchanged "rewrap --replace among three" "$T/multi.smime" "$T/multi.out"
  osl_decrypt_as "the other member after --replace" "$T/multi.out" "$T/multi.inner" member-p256
  osl_decrypt_as "the new member after --replace" "$T/multi.out" "$T/multi.inner" member-p384
  osl_decrypt_secret "the secret after --replace" "$T/multi.out" "$T/multi.inner"
  osl_cannot_decrypt "rewrap --replace among three" "$T/multi.out" group-rsa
fi

echo "PASS rewrap ($PART)"
