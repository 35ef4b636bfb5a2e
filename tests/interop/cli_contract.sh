#!/usr/bin/env bash
# The command-line contract around the crypto: --help works for the command and
# every subcommand; usage mistakes fail with one line on stderr and nothing on
# stdout; `decrypt -o FILE` never creates (or clobbers) FILE when it fails, and
# leaves no temporary file behind; -o writes the same bytes as stdout.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

make_pki
make_messages
P=$WORK/pki
M=$WORK/msg
T=$WORK/t
mkdir -p "$T"
E=$T/err

step "1. --help and --version"
# help_ok ARGS... WORDS...: exit 0, usage on stdout naming the options, nothing on stderr.
help_ok() {
  local sub=$1
  shift
  local rc=0
  # shellcheck disable=SC2086
  "$BL" $sub --help >"$T/help.out" 2>"$T/help.err" || rc=$?
  [[ $rc -eq 0 ]] || fail "'blindlist $sub --help' exits $rc instead of 0: $(head -c 300 "$T/help.err")"
  [[ ! -s "$T/help.err" ]] || fail "'blindlist $sub --help' writes to stderr: $(head -c 300 "$T/help.err")"
  grep -qi 'usage' "$T/help.out" || fail "'blindlist $sub --help' prints no usage line"
  local w
  for w in "$@"; do
    grep -qF -- "$w" "$T/help.out" || fail "'blindlist $sub --help' does not mention $w"
  done
  # -h is the same
  # shellcheck disable=SC2086
  "$BL" $sub -h >"$T/h.out" 2>/dev/null || fail "'blindlist $sub -h' fails"
  cmp -s "$T/help.out" "$T/h.out" || fail "'blindlist $sub -h' differs from --help"
}
help_ok "" encrypt decrypt rewrap inspect
help_ok encrypt --to --secret-key --secret-key-id --cipher --rsa-padding aes-256-gcm aes-256-cbc oaep pkcs1 -i -o
help_ok decrypt --key --cert --secret-key --secret-key-id -i -o
help_ok rewrap --key --cert --for --secret-key --secret-key-id --replace --rsa-padding
help_ok inspect --json -i -o
rc=0
"$BL" --version >"$T/v.out" 2>"$T/v.err" || rc=$?
[[ $rc -eq 0 && -s "$T/v.out" ]] || fail "'blindlist --version' fails (exit $rc) or prints nothing"

step "2. -o FILE on failure: no FILE, no temporary left behind, an existing FILE untouched"
"$BL" encrypt --to "$P/group-rsa.crt" -i "$M/crlf.eml" -o "$T/msg.smime" || fail "encrypt failed (test setup)"
mkdir "$T/outdir"
expect_fail "decrypt -o with the wrong key" 'wrong key|recipient' "$E" -- \
  "$BL" decrypt --key "$P/member-rsa.key" -i "$T/msg.smime" -o "$T/outdir/plain.eml"
[[ ! -e "$T/outdir/plain.eml" ]] || fail "decrypt -o FILE created FILE although decryption failed"
[[ -z "$(ls -A "$T/outdir")" ]] || fail "decrypt -o left files behind after failing: $(ls -A "$T/outdir")"
smime_to_der "$T/msg.smime" "$T/msg.der"
flip_byte "$T/msg.der" "$T/tampered.der" -1 0x01
expect_fail "decrypt -o of a tampered message" 'authenticat|tamper' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/tampered.der" -o "$T/outdir/plain.eml"
[[ ! -e "$T/outdir/plain.eml" ]] || fail "decrypt -o FILE created FILE although the GCM tag was wrong"
[[ -z "$(ls -A "$T/outdir")" ]] || fail "decrypt -o left files behind after a tag failure: $(ls -A "$T/outdir")"
echo "previous contents" >"$T/outdir/existing.eml"
cp "$T/outdir/existing.eml" "$T/existing.orig"
expect_fail "decrypt -o over an existing file, tampered input" 'authenticat|tamper' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/tampered.der" -o "$T/outdir/existing.eml"
cmp -s "$T/existing.orig" "$T/outdir/existing.eml" || fail "a failed decrypt -o changed the existing output file"
[[ $(ls -A "$T/outdir") == existing.eml ]] || fail "decrypt -o left files behind: $(ls -A "$T/outdir")"
expect_fail "decrypt -o of a non-S/MIME input" 'not S/MIME' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$M/crlf.eml" -o "$T/outdir/plain2.eml"
[[ ! -e "$T/outdir/plain2.eml" ]] || fail "decrypt -o FILE created FILE for a non-S/MIME input"
expect_fail "decrypt -o into a missing directory" 'cannot|No such' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/msg.smime" -o "$T/nodir/plain.eml"
for sub in "encrypt --to $P/member-rsa.key" "rewrap --key $P/group-ec.key --cert $P/group-ec.crt --for $P/member-rsa.crt" "inspect"; do
  # shellcheck disable=SC2086
  "$BL" $sub -i "$M/lf.eml" -o "$T/outdir/other.out" >/dev/null 2>&1 && fail "'blindlist ${sub%% *}' accepted bad input (test setup)"
  [[ ! -e "$T/outdir/other.out" ]] || fail "'blindlist ${sub%% *} -o FILE' created FILE although it failed"
done

step "3. -o writes exactly what stdout gets; -i - reads standard input"
"$BL" decrypt --key "$P/group-rsa.key" -i "$T/msg.smime" -o "$T/outdir/ok.eml" || fail "decrypt -o failed"
"$BL" decrypt --key "$P/group-rsa.key" -i - <"$T/msg.smime" >"$T/ok.stdout" || fail "decrypt -i - failed"
same_bytes "decrypt -o FILE vs standard output" "$T/ok.stdout" "$T/outdir/ok.eml"
same_bytes "decrypt restores the original" "$M/crlf.eml" "$T/ok.stdout"
perms=$(stat -c %a "$T/outdir/ok.eml")
[[ $perms == 600 ]] || step "note: decrypt -o created the plaintext with mode $perms"

step "4. usage mistakes: non-zero exit, one line on stderr, nothing on stdout"
expect_fail "decrypt without a key or secret" 'key|secret' "$E" -- "$BL" decrypt -i "$T/msg.smime"
expect_fail "decrypt with both a key and a secret" 'exactly one|key|secret' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" --secret-key "$SECRET32" --secret-key-id "$SECRET_ID" -i "$T/msg.smime"
expect_fail "encrypt without recipients" 'to|secret|recipient' "$E" -- "$BL" encrypt -i "$M/crlf.eml"
expect_fail "rewrap without --for or --secret-key" 'for|secret' "$E" -- \
  "$BL" rewrap --key "$P/group-rsa.key" --cert "$P/group-rsa.crt" -i "$T/msg.smime"
expect_fail "decrypt of a missing input file" 'cannot open|No such|not exist' "$E" -- \
  "$BL" decrypt --key "$P/group-rsa.key" -i "$T/does-not-exist.smime"
# Argument-parser errors are errors too: same contract. Every case runs (in a subshell)
# so one run lists all the cases that break it.
broken=()
parser_case() {
  local what=$1
  if ! (expect_fail "$@"); then
    broken+=("$what")
  fi
}
parser_case "decrypt --key of a missing file" 'not exist|No such|key' "$E" -- \
  "$BL" decrypt --key "$T/missing.key" -i "$T/msg.smime"
parser_case "encrypt --to of a missing file" 'not exist|No such|to' "$E" -- \
  "$BL" encrypt --to "$T/missing.crt" -i "$M/crlf.eml"
parser_case "encrypt --cipher with an unknown cipher" 'cipher|des' "$E" -- \
  "$BL" encrypt --to "$P/group-rsa.crt" --cipher des-cbc -i "$M/crlf.eml"
parser_case "encrypt --rsa-padding with an unknown padding" 'padding|pss' "$E" -- \
  "$BL" encrypt --to "$P/group-rsa.crt" --rsa-padding pss -i "$M/crlf.eml"
parser_case "an unknown option" 'bogus|not expected|unknown' "$E" -- "$BL" decrypt --bogus -i "$T/msg.smime"
parser_case "--secret-key without --secret-key-id" 'secret-key-id|needs|requires' "$E" -- \
  "$BL" decrypt --secret-key "$SECRET32" -i "$T/msg.smime"
parser_case "rewrap without --key and --cert" 'key|cert|required' "$E" -- \
  "$BL" rewrap --for "$P/member-rsa.crt" -i "$T/msg.smime"
parser_case "no subcommand" 'subcommand' "$E" -- "$BL"
parser_case "an unknown subcommand" 'frobnicate|unknown' "$E" -- "$BL" frobnicate
if [[ ${#broken[@]} -gt 0 ]]; then
  fail "${#broken[@]} command-line mistakes break the error contract (one line on stderr): $(printf '[%s] ' "${broken[@]}")"
fi

echo "PASS cli_contract"
