#!/usr/bin/env bash
# list with pkcs11: URI filters (token, object, id, type), two tokens in one module, --expiring,
# and labels a token may hold but a terminal or a JSON parser must not be fed raw: 300 bytes long,
# control characters, invalid UTF-8.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_world_init
tc_fixture_standard

W=$TC_WORLD
LIST=("$TOKENCERT" list --module "$MODULE")
SECOND=second-token


# Python expression: [token label, credential name] of everything listed.
NAMES="[[t['label'], c['name']] for t in j['tokens'] for c in t['credentials']]"

# A second token with one certificate (the orphan certificate again, under another label).
tc_world_new_token "$SECOND"
TC_P11_TOKEN=$SECOND tc_p11_login --write-object "$W/expected/orphan-cert.1.der" --type cert \
    --id 21 --label on-second >>"$W/harness.log" 2>&1 ||
    tc_die "cannot write a certificate to the second token"

# Labels to be shown escaped: 300 bytes (no truncation expected below the 1024-byte display cap),
# and control characters, DEL, invalid UTF-8 and valid UTF-8 (kept as is).
LONG=$(printf 'x%03d' $(seq 1 75))
CTL=$'ctl\x01\t\n\x1b[31mred\x7f\xff\xfe-caf\xc3\xa9'
CTL_SHOWN='ctl\x01\x09\x0a\x1b[31mred\x7f\xff\xfe-café'
CTL_URI='pkcs11:type=cert;id=%0F;object=ctl%01%09%0A%1B%5B31mred%7F%FF%FE-caf%C3%A9'
tc_assert_eq 300 "${#LONG}" "the long label is 300 bytes"
tc_p11_login --write-object "$W/expected/orphan-cert.1.der" --type cert --id 0e \
    --label "$LONG" >>"$W/harness.log" 2>&1 || tc_die "cannot write the long-label certificate"
tc_p11_login --write-object "$W/expected/orphan-cert.1.der" --type cert --id 0f \
    --label "$CTL" >>"$W/harness.log" 2>&1 || tc_die "cannot write the control-label certificate"

# --- tokens -----------------------------------------------------------------------------------
tc_expect_exit 0 "${LIST[@]}" --json
cp "$TC_OUT_FILE" "$W/all.json"
tc_jexprs "$W/all.json" \
    "sorted(t['label'] for t in j['tokens'])" \
    "[c['name'] for t in j['tokens'] if t['label'] == '$SECOND' for c in t['credentials']]" \
    "len([c for t in j['tokens'] if t['label'] == '$TOKEN_LABEL' for c in t['credentials']])"
tc_assert_eq "$(printf '["%s","%s"]' "$SECOND" "$TOKEN_LABEL")" "${R[0]-}" \
    "both tokens are listed, each once"
tc_assert_eq '["on-second"]' "${R[1]-}" "the second token shows only its own credential"
tc_assert_eq 10 "${R[2]-}" "the first token shows its 10 credentials and not the second's"

tc_expect_exit 0 "${LIST[@]}" "pkcs11:token=$SECOND" --json
cp "$TC_OUT_FILE" "$W/second.json"
tc_jexprs "$W/second.json" "$NAMES"
tc_assert_eq "[[\"$SECOND\",\"on-second\"]]" "${R[0]-}" "pkcs11:token=$SECOND selects that token"

tc_expect_exit 0 "${LIST[@]}" "pkcs11:token=$TOKEN_LABEL" --json
cp "$TC_OUT_FILE" "$W/first.json"
tc_jexprs "$W/first.json" "sorted(set(t['label'] for t in j['tokens']))" \
    "sorted(c['name'] for t in j['tokens'] for c in t['credentials'] if c['name'] in
        ['valid', 'renewed', 'Test CA', 'on-second'])"
tc_assert_eq "[\"$TOKEN_LABEL\"]" "${R[0]-}" "pkcs11:token=$TOKEN_LABEL selects that token only"
tc_assert_eq '["Test CA","renewed","valid"]' "${R[1]-}" \
    "pkcs11:token=$TOKEN_LABEL lists its credentials and not the second token's"

tc_expect_exit 5 "${LIST[@]}" "pkcs11:token=no-such-token"
tc_assert_contains "$TC_ERR" "present" "an unknown token label: the error says no such token is present"

# --- object filters ---------------------------------------------------------------------------
tc_expect_exit 0 "${LIST[@]}" "pkcs11:object=valid" --json
cp "$TC_OUT_FILE" "$W/obj.json"
tc_jexprs "$W/obj.json" "$NAMES" \
    "[x['serial'] for t in j['tokens'] for c in t['credentials'] for x in c['certificates']]"
tc_assert_eq "[[\"$TOKEN_LABEL\",\"valid\"]]" "${R[0]-}" "pkcs11:object=valid: only 'valid'"
tc_assert_eq "[\"$(tc_expected valid serial)\"]" "${R[1]-}" "pkcs11:object=valid: its certificate"

tc_expect_exit 0 "${LIST[@]}" "pkcs11:id=%01" --json
cp "$TC_OUT_FILE" "$W/id.json"
tc_jexprs "$W/id.json" "$NAMES"
tc_assert_eq "[[\"$TOKEN_LABEL\",\"valid\"]]" "${R[0]-}" "pkcs11:id=%01: only 'valid'"

tc_expect_exit 0 "${LIST[@]}" "pkcs11:id=%5E%B1%D4%A5%E0%C9%C1%E9%6F%0C%3B%3F%7B%1C%1C%0D%2F%6E%4A%11" \
    --json
cp "$TC_OUT_FILE" "$W/id20.json"
tc_jexprs "$W/id20.json" "$NAMES" \
    "len([x for t in j['tokens'] for c in t['credentials'] for x in c['certificates']])"
tc_assert_eq "[[\"$TOKEN_LABEL\",\"renewed\"]]" "${R[0]-}" "a 20-byte id selects 'renewed'"
tc_assert_eq 2 "${R[1]-}" "a 20-byte id: both of renewed's certificates"

tc_expect_exit 0 "${LIST[@]}" "pkcs11:type=cert;object=Test%20CA" --json
cp "$TC_OUT_FILE" "$W/ca.json"
tc_jexprs "$W/ca.json" "$NAMES" "[c['kind'] for t in j['tokens'] for c in t['credentials']]" \
    "[x['sha256'] for t in j['tokens'] for c in t['credentials'] for x in c['certificates']]"
tc_assert_eq "[[\"$TOKEN_LABEL\",\"Test CA\"]]" "${R[0]-}" \
    "pkcs11:type=cert;object=Test%20CA: only the CA"
tc_assert_eq '["authority"]' "${R[1]-}" "pkcs11:type=cert;object=Test%20CA: an authority"
tc_assert_eq "[\"$(tc_expected 'Test CA' sha256)\"]" "${R[2]-}" \
    "pkcs11:type=cert;object=Test%20CA: the CA certificate"

tc_expect_exit 0 "${LIST[@]}" "pkcs11:type=private;object=valid" --login --pin-source env:PIN \
    --json
cp "$TC_OUT_FILE" "$W/priv.json"
tc_jexprs "$W/priv.json" "$NAMES" \
    "[c['key']['private_key_seen'] for t in j['tokens'] for c in t['credentials']]"
tc_assert_eq "[[\"$TOKEN_LABEL\",\"valid\"]]" "${R[0]-}" \
    "pkcs11:type=private;object=valid, logged in: only 'valid'"
tc_assert_eq "[true]" "${R[1]-}" "pkcs11:type=private;object=valid: its private key seen"

tc_expect_exit 4 "${LIST[@]}" "pkcs11:object=no-such-object"
tc_assert_contains "$TC_ERR" "no object" "an object filter matching nothing says so"
HINT="private keys are visible only after logging in"
tc_assert_not_contains "$TC_ERR" "$HINT" "no login hint when the URI names no private key"

# Private keys without logging in: nothing matches (exit 4, as tokencert-list(1) says), and the
# message says why and how to log in. The key is there (listed above after login).
for uri in "pkcs11:type=private;object=valid" "pkcs11:object=valid;type=private"; do
    tc_expect_exit 4 "${LIST[@]}" "$uri"
    tc_assert_contains "$TC_ERR" "$HINT" "$uri without --login: private keys need a login"
    tc_assert_contains "$TC_ERR" "--login" "$uri without --login: the hint names --login"
    tc_assert_contains "$TC_ERR" "--pin-source" "$uri without --login: the hint names --pin-source"
done
tc_expect_exit 4 "${LIST[@]}" "pkcs11:type=private;object=no-such-key" --login --pin-source env:PIN
tc_assert_not_contains "$TC_ERR" "$HINT" "logged in: no login hint when nothing matches"

# --- --expiring -------------------------------------------------------------------------------
status_of="[[c['name'], x['serial'], x['status']] for t in j['tokens'] for c in t['credentials']
    if c['name'] in ['valid', 'orphan-cert', 'Test CA', 'expired', 'future']
    for x in c['certificates']]"
tc_jexprs "$W/all.json" "j['expiring_days']" "sorted($status_of)"
tc_assert_eq 30 "${R[0]-}" "expiring_days defaults to 30"
tc_assert_eq "$(printf '[["Test CA","%s","valid"],["expired","%s","expired"],["future","%s","not-yet-valid"],["orphan-cert","%s","valid"],["valid","%s","valid"]]' \
    "$(tc_expected 'Test CA' serial)" "$(tc_expected expired serial)" "$(tc_expected future serial)" \
    "$(tc_expected orphan-cert serial)" "$(tc_expected valid serial)")" "${R[1]-}" \
    "default --expiring: 'valid' (365 days) and orphan-cert (180 days) are valid"
tc_expect_exit 0 "${LIST[@]}" --expiring 400d --json
cp "$TC_OUT_FILE" "$W/exp400.json"
tc_jexprs "$W/exp400.json" "j['expiring_days']" "sorted($status_of)"
tc_assert_eq 400 "${R[0]-}" "--expiring 400d: expiring_days 400"
tc_assert_eq "$(printf '[["Test CA","%s","valid"],["expired","%s","expired"],["future","%s","not-yet-valid"],["orphan-cert","%s","expiring"],["valid","%s","expiring"]]' \
    "$(tc_expected 'Test CA' serial)" "$(tc_expected expired serial)" "$(tc_expected future serial)" \
    "$(tc_expected orphan-cert serial)" "$(tc_expected valid serial)")" "${R[1]-}" \
    "--expiring 400d: 'valid' and orphan-cert expiring; expired, not-yet-valid and the CA unchanged"
# The threshold is a duration, not a number of whole days: 'expiring' has 10 d 12 h (252 h) left,
# less than 253 h and more than 251 h.
expiring_status="[x['status'] for t in j['tokens'] for c in t['credentials']
    if c['name'] == 'expiring' for x in c['certificates']]"
tc_expect_exit 0 "${LIST[@]}" --expiring 253h --json
cp "$TC_OUT_FILE" "$W/exp253h.json"
tc_jexprs "$W/exp253h.json" "$expiring_status"
tc_assert_eq '["expiring"]' "${R[0]-}" "--expiring 253h: a certificate with 252 h left is expiring"
tc_expect_exit 0 "${LIST[@]}" --expiring 251h --json
cp "$TC_OUT_FILE" "$W/exp251h.json"
tc_jexprs "$W/exp251h.json" "$expiring_status"
tc_assert_eq '["valid"]' "${R[0]-}" "--expiring 251h: a certificate with 252 h left is valid"
tc_expect_exit 2 "${LIST[@]}" --expiring 400x
tc_assert_contains "$TC_ERR" "--expiring" "a malformed --expiring is a usage error naming it"

# --- labels that must be escaped --------------------------------------------------------------
tc_expect_exit 0 "${LIST[@]}"
cp "$TC_OUT_FILE" "$W/table.txt"
tc_assert_contains "$TC_OUT" "certificate-only '$CTL_SHOWN'  id 0f" \
    "table: control bytes and invalid UTF-8 shown as \\xNN, valid UTF-8 kept"
tc_assert_contains "$TC_OUT" "label '$CTL_SHOWN'" "table: the certificate's label escaped"
tc_assert_contains "$TC_OUT" "certificate-only '$LONG'  id 0e" "table: the 300-byte label in full"
tc_assert_contains "$TC_OUT" "certificate-only 'on-second'" "table: the second token's credential"

tc_expect_exit 0 "${LIST[@]}" --json
cp "$TC_OUT_FILE" "$W/weird.json"
# Raw bytes a terminal would interpret: anything below 0x20 but newline, DEL, invalid UTF-8.
python3 - "$W/table.txt" "$W/weird.json" >"$W/raw-bytes" <<'EOF' || true
import sys
for f in sys.argv[1:]:
    b = open(f, "rb").read()
    bad = sorted(set("%02x" % c for c in b if (c < 0x20 and c != 0x0a) or c == 0x7f))
    try:
        b.decode("utf-8")
        utf8 = "utf-8"
    except UnicodeDecodeError as ex:
        utf8 = "invalid utf-8 at %d" % ex.start
    print("%s %s" % (",".join(bad) or "clean", utf8))
EOF
tc_assert_eq "clean utf-8" "$(sed -n 1p "$W/raw-bytes")" \
    "table: no raw control bytes, valid UTF-8"
tc_assert_eq "clean utf-8" "$(sed -n 2p "$W/raw-bytes")" "JSON: no raw control bytes, valid UTF-8"
# JSON strings hold the escaped text: a backslash, 'x', two hex digits.
tc_jexprs "$W/weird.json" \
    "[[c['kind'], c['id'], [x['label'] for x in c['certificates']]] for t in j['tokens']
        for c in t['credentials'] if c['name'] == r'''$CTL_SHOWN''']" \
    "[[c['kind'], c['id'], [x['label'] for x in c['certificates']]] for t in j['tokens']
        for c in t['credentials'] if c['name'] == '$LONG']"
tc_assert_eq "$(printf '[["certificate-only","0f",["%s"]]]' "${CTL_SHOWN//\\/\\\\}")" "${R[0]-}" \
    "JSON: the control-character label, escaped as \\xNN, as name and certificate label"
tc_assert_eq "$(printf '[["certificate-only","0e",["%s"]]]' "$LONG")" "${R[1]-}" \
    "JSON: the 300-byte label in full"

tc_expect_exit 0 "${LIST[@]}" "$CTL_URI" --json
cp "$TC_OUT_FILE" "$W/ctl-uri.json"
tc_jexprs "$W/ctl-uri.json" "$NAMES"
tc_assert_eq "$(printf '[["%s","%s"]]' "$TOKEN_LABEL" "${CTL_SHOWN//\\/\\\\}")" "${R[0]-}" \
    "an object= URI with percent-encoded control bytes selects that certificate"


# --- one certificate with a 70-byte serial costs only itself (issue 16, defect 4) --------------
tc__fix_log openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/bigserial.key" -subj "/CN=bigserial" -days 30 \
    -set_serial "0x7f$(openssl rand -hex 69)" -outform DER -out "$W/bigserial.der"
tc_p11_login --write-object "$W/bigserial.der" --type cert --id 5e --label bigserial \
    >>"$W/harness.log" 2>&1 || tc_die "cannot write the long-serial certificate"
tc_expect_exit 0 "${LIST[@]}" "pkcs11:token=$TOKEN_LABEL"
tc_assert_match "$TC_OUT" "unreadable +label 'bigserial' id 5e: the serial number is longer than 64 bytes" \
    "list: the long-serial certificate is shown as unreadable, with the reason"
tc_expect_exit 0 "${LIST[@]}" "pkcs11:token=$TOKEN_LABEL" --json
cp "$TC_OUT_FILE" "$W/bigserial.json"
tc_jexprs "$W/bigserial.json" \
    "len([c for t in j['tokens'] for c in t['credentials'] if c['name'] != 'bigserial'])" \
    "[x['status'] for t in j['tokens'] for c in t['credentials'] for x in c['certificates']
        if x['label'] == 'bigserial']"
tc_assert_eq 10 "${R[0]-}" "list --json: every other credential of the token is still listed"
tc_assert_eq '["unreadable"]' "${R[1]-}" "list --json: only the long-serial certificate is unreadable"


# --- list --timeline cuts a label by characters, not bytes (issue 16, defect 9) ----------------
# "x" and 30 two-byte characters: 26 bytes would end inside the 13th.
ACCENT="x$(printf 'é%.0s' $(seq 1 30))"
ACCENT26="x$(printf 'é%.0s' $(seq 1 25))"
tc_p11_login --write-object "$W/expected/orphan-cert.1.der" --type cert --id 5f \
    --label "$ACCENT" >>"$W/harness.log" 2>&1 || tc_die "cannot write the accented certificate"
tc_expect_exit 0 "${LIST[@]}" "pkcs11:token=$TOKEN_LABEL" --timeline
if python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$TC_OUT_FILE"; then
    tc_pass "timeline: valid UTF-8"
else
    tc_fail "timeline: a UTF-8 character cut in half"
fi
tc_assert_contains "$TC_OUT" "  $ACCENT26 " "timeline: the label cut to 26 characters"
tc_assert_not_contains "$TC_OUT" "${ACCENT26}é" "timeline: not one character more"


# --- C1 controls and bidi overrides are escaped like C0 controls (issue 16, defect 6) -----------
# U+009B (CSI), U+202E (right-to-left override), U+2066 and U+2069 (isolates), U+0085.
HOSTILE=$'c1\xc2\x9b31m-rlo\xe2\x80\xaefdp.exe-iso\xe2\x81\xa6x\xe2\x81\xa9-nel\xc2\x85'
HOSTILE_SHOWN='c1\xc2\x9b31m-rlo\xe2\x80\xaefdp.exe-iso\xe2\x81\xa6x\xe2\x81\xa9-nel\xc2\x85'
tc_p11_login --write-object "$W/expected/orphan-cert.1.der" --type cert --id 60 \
    --label "$HOSTILE" >>"$W/harness.log" 2>&1 || tc_die "cannot write the hostile-label certificate"
# raw_hostile FILE: the characters that must not appear raw, found in FILE.
raw_hostile() {
    python3 -c 'import sys, re
b = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
print(",".join(sorted(set("%04x" % ord(c) for c in b if 0x80 <= ord(c) <= 0x9f or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069))) or "clean")' "$1"
}
for how in text --json --timeline; do
    args=()
    [ "$how" = text ] || args=("$how")
    tc_expect_exit 0 "${LIST[@]}" "pkcs11:token=$TOKEN_LABEL" "${args[@]}"
    tc_assert_eq clean "$(raw_hostile "$TC_OUT_FILE")" "list $how: no raw C1 control or bidi override"
    case $how in
    text) tc_assert_contains "$TC_OUT" "$HOSTILE_SHOWN" "list: the label escaped as \\xNN" ;;
    --json)
        cp "$TC_OUT_FILE" "$W/hostile.json"
        tc_jexprs "$W/hostile.json" "[c['name'] for t in j['tokens'] for c in t['credentials'] if c['id'] == '60']"
        tc_assert_eq "[\"${HOSTILE_SHOWN//\\/\\\\}\"]" "${R[0]-}" "list --json: the label escaped as \\xNN"
        ;;
    esac
done
tc_expect_exit 2 "$TOKENCERT" check "pkcs11:token=$TOKEN_LABEL" --module "$MODULE" --json
tc_assert_eq clean "$(raw_hostile "$TC_OUT_FILE")" "check --json: no raw C1 control or bidi override"
tc_assert_contains "$TC_OUT" 'c1\\xc2\\x9b31m-rlo\\xe2\\x80\\xaefdp.exe' "check --json: the label is there, escaped"

tc_finish
