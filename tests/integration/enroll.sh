#!/usr/bin/env bash
# tokencert enroll: one command from an empty token to a working credential — the key generated on
# the token (sensitive, not extractable), the certificate under the key's CKA_ID beside it, the CA
# certificate as an authority, verifiable for client authentication — with exactly one C_Login on
# the user's token and one PIN read. The CA is created by enroll itself, on its own SoftHSM token:
# with a SoftHSM user token that is two SoftHSM configurations in one run, which is what the CA's
# child process is for. Bad input (a malformed subject, a wrong PIN, a label in use) changes
# neither the token nor the CA.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool openssl sqlite3 python3
tc_world_init
# What the store holds, read through history --json (its file's schema is not a test interface):
# store PY-EXPR over j, the history document (docs/json-schema.md) [STATE_DIR]
store() {
    TOKENCERT_STATE_DIR=${2:-$TOKENCERT_STATE_DIR} "$TOKENCERT" history --json \
        >"$TC_WORLD/history.json" 2>"$TC_WORLD/history.err" ||
        tc_fail "history --json: $(cat "$TC_WORLD/history.err")"
    tc_json "$TC_WORLD/history.json" "$1"
}
FM=$TC_FAULTMOD
CA=$TC_WORLD/ca
USER_URI="pkcs11:token=$TOKEN_LABEL"
LOGIN_LOG=$TC_WORLD/login.log
# The user's token is reached through the fault module, whose log counts the C_Login calls.
export TC_FAULT_TARGET=$MODULE TC_FAULT_LOGIN_LOG=$LOGIN_LOG

unchanged() {
    tc_objects_snapshot "$TC_WORLD/snapshot.now"
    tc_assert_files_eq "$TC_WORLD/snapshot.base" "$TC_WORLD/snapshot.now" "token unchanged: $1"
}

n_requests() {
    if [ -e "$CA/ca.db" ]; then
        sqlite3 "$CA/ca.db" "SELECT count(*) FROM requests"
    else
        echo "no CA"
    fi
}

tc_objects_snapshot "$TC_WORLD/snapshot.base"

# ---------------------------------------------------------------------------------------------
# Bad input before anything exists: no CA is created, the token is not touched

: >"$LOGIN_LOG"
tc_expect_exit 2 "$TOKENCERT" enroll "$USER_URI" --module "$FM" --pin-source env:PIN \
    --ca-dir "$CA" --label office --subject "CN=1234567890,Bogus=1"
tc_assert_match "$TC_ERR" "unknown attribute type 'Bogus'" "malformed subject: names the part"
tc_assert_eq 0 "$(grep -c '^C_Login' "$LOGIN_LOG" || true)" "malformed subject: no login"
tc_assert_eq "no CA" "$(n_requests)" "malformed subject: no CA created"
tc_expect_exit 2 "$TOKENCERT" enroll "$USER_URI" --module "$FM" --pin-source env:PIN \
    --ca-dir "$CA" --label office --subject "O=Practice,CN="
tc_assert_match "$TC_ERR" "empty value for CN" "empty value in the subject: refused"
tc_expect_exit 2 "$TOKENCERT" enroll "$USER_URI" --module "$FM" --pin-source env:PIN \
    --ca-dir "$CA" --subject "CN=1234567890"
tc_assert_match "$TC_ERR" "--label" "no label: usage error"
unchanged "malformed subjects"

# A wrong PIN: one attempt, refused, nothing on the token, no CA and no request.
printf 'wrong-pin-4711' >"$TC_WORLD/pin.wrong"
chmod 600 "$TC_WORLD/pin.wrong"
: >"$LOGIN_LOG"
tc_expect_exit 6 "$TOKENCERT" enroll "$USER_URI" --module "$FM" --pin-source "file:$TC_WORLD/pin.wrong" \
    --ca-dir "$CA" --label office --subject "CN=1234567890"
tc_assert_match "$TC_ERR" "rejected the PIN" "wrong PIN: says so"
tc_assert_eq 1 "$(grep -c '^C_Login' "$LOGIN_LOG" || true)" "wrong PIN: tried once"
tc_assert_eq "no CA" "$(n_requests)" "wrong PIN: no CA, no request"
unchanged "wrong PIN"

# ---------------------------------------------------------------------------------------------
# One command, empty token to working credential; the CA is created on the way

: >"$LOGIN_LOG"
# The PIN comes through a descriptor that holds it once: a second read would find nothing.
tc_expect_exit 0 "$TOKENCERT" enroll "$USER_URI" --module "$FM" --pin-source fd:3 \
    --ca-dir "$CA" --label office --subject "CN=1234567890,O=Demo practice,C=DE" --type ec:p256 \
    3<<<"$PIN"
tc_assert_contains "$TC_ERR" "there was no CA in $CA: created one with automatic approval" \
    "the CA is created and enroll says so"
tc_assert_match "$TC_OUT" "enrolled 'office' on token '$TOKEN_LABEL'" "says what was enrolled"
tc_assert_match "$TC_OUT" "subject +CN=1234567890,O=Demo practice,C=DE" "prints the subject"
tc_assert_match "$TC_OUT" "serial +[0-9A-F]{32}" "prints the serial"
tc_assert_match "$TC_OUT" "not after +[0-9]{4}-[0-9]{2}-[0-9]{2}T" "prints the end of validity"
tc_assert_eq "C_Login userType=1 pinLen=${#PIN} rv=0x00000000" "$(cat "$LOGIN_LOG")" \
    "exactly one C_Login on the user's token, accepted"
if [ -e "$CA/ca.db" ] && [ -e "$CA/softhsm2.conf" ]; then
    tc_pass "the CA sits in its directory with its own token"
else
    tc_fail "no CA in $CA"
fi

# Read back independently: the key, and the certificate under its CKA_ID.
tc_p11_login --list-objects --type privkey >"$TC_WORLD/keys.txt" 2>&1
tc_assert_eq 1 "$(grep -c '^Private Key Object' "$TC_WORLD/keys.txt")" "one private key on the token"
KEY_ID=$(awk '/^ *ID:/ { print $2; exit }' "$TC_WORLD/keys.txt")
tc_assert_match "$KEY_ID" "^[0-9a-f]{40}$" "the key's CKA_ID is 20 bytes (SHA-1 of the point)"
access=$(grep 'Access:' "$TC_WORLD/keys.txt")
tc_assert_match "$access" "(^|[ ,])sensitive" "the key is sensitive (CKA_SENSITIVE)"
if [[ "$access" =~ (^|[:,][[:space:]]*)extractable ]]; then
    tc_fail "the key is extractable ($access)"
else
    tc_pass "the key is not extractable (CKA_EXTRACTABLE false)"
fi
tc_p11 --read-object --type cert --id "$KEY_ID" -o "$TC_WORLD/office.der" >/dev/null 2>&1 ||
    tc_fail "no certificate under the key's CKA_ID"
openssl x509 -inform DER -in "$TC_WORLD/office.der" -out "$TC_WORLD/office.pem"
tc_assert_eq "subject=CN=1234567890,O=Demo practice,C=DE" \
    "$(openssl x509 -in "$TC_WORLD/office.pem" -noout -subject -nameopt RFC2253)" \
    "the certificate under the key's CKA_ID has the subject asked for"
tc_assert_match "$(openssl verify -CAfile "$CA/ca.pem" -purpose sslclient "$TC_WORLD/office.pem" 2>&1)" \
    ": OK$" "the certificate verifies against ca.pem for client authentication"
tc_pubkey "id=$(tc_pct "$KEY_ID")" "$TC_WORLD/office-pub.der" || tc_fail "p11tool reads office's public key"
openssl pkey -pubin -inform DER -in "$TC_WORLD/office-pub.der" -outform DER -out "$TC_WORLD/tok.der"
openssl x509 -in "$TC_WORLD/office.pem" -noout -pubkey | openssl pkey -pubin -outform DER -out "$TC_WORLD/crt.der"
tc_assert_files_eq "$TC_WORLD/tok.der" "$TC_WORLD/crt.der" "the certificate carries the token's key"

tc_expect_exit 0 "$TOKENCERT" list --module "$MODULE" --login --pin-source env:PIN --json
cp "$TC_OUT_FILE" "$TC_WORLD/list.json"
tc_jexprs "$TC_WORLD/list.json" \
    '[(c["name"], c["kind"], c["id"]) for t in j["tokens"] for c in t["credentials"] if c["kind"] == "credential"]' \
    '[x["subject"] for t in j["tokens"] for c in t["credentials"] if c["name"] == "office" for x in c["certificates"]]' \
    '[(c["key"]["sensitive"], c["key"]["extractable"]) for t in j["tokens"] for c in t["credentials"] if c["name"] == "office"]' \
    '[x["subject"] for t in j["tokens"] for c in t["credentials"] if c["kind"] == "authority" for x in c["certificates"]]' \
    '[x["status"] for t in j["tokens"] for c in t["credentials"] if c["name"] == "office" for x in c["certificates"]]'
tc_assert_eq "[[\"office\",\"credential\",\"$KEY_ID\"]]" "${R[0]}" "list: one full credential 'office'"
tc_assert_eq '["CN=1234567890,O=Demo practice,C=DE"]' "${R[1]}" "list: its certificate, the 10-digit CN"
tc_assert_eq '[[true,false]]' "${R[2]}" "list: sensitive, not extractable"
tc_assert_eq '["CN=tokencert local CA"]' "${R[3]}" "list: the CA certificate as an authority"
tc_assert_eq '["valid"]' "${R[4]}" "list: the certificate is valid"
tc_assert_eq 1 "$(n_requests)" "the CA recorded one request"
tc_assert_eq issued "$(sqlite3 "$CA/ca.db" "SELECT state FROM requests WHERE id = 1")" "it is issued"

tc_objects_snapshot "$TC_WORLD/snapshot.base"

# ---------------------------------------------------------------------------------------------
# The label is in use now: refused before any change; the CA exists and is reused

: >"$LOGIN_LOG"
tc_expect_exit 2 "$TOKENCERT" enroll "$USER_URI" --module "$FM" --pin-source env:PIN \
    --ca-dir "$CA" --label office --subject "CN=1234567890" --type ec:p256
tc_assert_match "$TC_ERR" "a (key|certificate) labelled 'office' already exists .*choose another label" "label in use: refused, says so"
tc_assert_eq 1 "$(n_requests)" "label in use: no request recorded"
unchanged "label in use"

# A key labelled so by another tool, unknown to the state store: the enrollment is refused, the
# token is unchanged, and the store forgets it (no credential left for a timer run to renew).
tc_p11_login --keypairgen --key-type EC:prime256v1 --label foreign --id 0f0f0f0f >/dev/null 2>&1 ||
    tc_die "pkcs11-tool could not make the foreign key"
tc_objects_snapshot "$TC_WORLD/snapshot.base"
tc_expect_exit 2 "$TOKENCERT" enroll "$USER_URI" --module "$MODULE" --pin-source env:PIN \
    --ca-dir "$CA" --label foreign --subject "CN=1234567890" --type ec:p256
tc_assert_match "$TC_ERR" "a key labelled 'foreign' already exists" "foreign label: refused, says so"
unchanged "foreign label"
"$TOKENCERT" status --json >"$TC_WORLD/s.json" 2>/dev/null || true
tc_assert_eq "0|0" "$(tc_json "$TC_WORLD/s.json" 'str(len([c for c in j if c["name"] == "foreign"]))')|$(store 'len([r for r in j["requests"] if r["credential"] == "foreign"])')" \
    "foreign label: no credential, no request left in the state store"
tc_assert_match "$(store '"\n".join(e["event"] + " " + e["result"] for e in j["events"] if e["credential"] == "foreign")')" \
    "enroll failed failed" "foreign label: the attempt is in the history"
tc_expect_exit 0 "$TOKENCERT" renew --all --due --module "$MODULE" --pin-source env:PIN
tc_assert_not_contains "$TC_OUT$TC_ERR" "foreign" "foreign label: the timer's run knows nothing of it"

# A second credential on the same token with the existing CA (RSA this time).
: >"$LOGIN_LOG"
tc_expect_exit 0 "$TOKENCERT" enroll "$USER_URI" --module "$FM" --pin-source env:PIN \
    --ca-dir "$CA" --label office2 --subject "CN=2345678901" --type rsa:2048
tc_assert_not_contains "$TC_ERR" "created one" "an existing CA is reused"
tc_assert_eq 1 "$(grep -c '^C_Login' "$LOGIN_LOG")" "second enrollment: one C_Login"
tc_p11_login --list-objects --type privkey >"$TC_WORLD/keys.txt" 2>&1
ID2=$(grep -B0 -A2 'label: *office2$' "$TC_WORLD/keys.txt" | awk '/ID:/ { print $2 }')
tc_p11 --read-object --type cert --id "$ID2" -o "$TC_WORLD/office2.der" >/dev/null 2>&1 ||
    tc_fail "no certificate under office2's CKA_ID"
openssl x509 -inform DER -in "$TC_WORLD/office2.der" -out "$TC_WORLD/office2.pem"
tc_assert_match "$(openssl verify -CAfile "$CA/ca.pem" -purpose sslclient "$TC_WORLD/office2.pem" 2>&1)" \
    ": OK$" "second credential (RSA) verifies"
tc_assert_match "$(openssl x509 -in "$TC_WORLD/office2.pem" -noout -ext keyUsage)" \
    "Digital Signature, Key Encipherment" "RSA: keyEncipherment as well"

# Progress: on a terminal, a line says what takes seconds (the key, the CA) and is cleared before
# the result; without one (the runs above: a pipe, a log), nothing of it.
tc_assert_not_contains "$TC_ERR" "generating a" "no progress line when stderr is not a terminal"
command -v script >/dev/null || tc_die "script (bsdutils) is needed for the terminal test"
script -qec "$(printf '%q ' "$TOKENCERT" enroll "$USER_URI" --module "$MODULE" --pin-source env:PIN \
    --ca-dir "$CA" --label office3 --subject "CN=3456789012" --type ec:p256)" /dev/null \
    >"$TC_WORLD/tty.out" 2>&1 </dev/null || tc_fail "enroll on a terminal: exit $?"
tc_assert_contains "$(cat "$TC_WORLD/tty.out")" "office3: generating a ec:p256 key on the token" \
    "on a terminal: the key generation is shown while it runs"
tc_assert_contains "$(cat "$TC_WORLD/tty.out")" "office3: sending request" \
    "on a terminal: so is the request to the CA"
tc_assert_contains "$(cat "$TC_WORLD/tty.out")" $'\r\033[Kenrolled \'office3\'' \
    "on a terminal: the progress line is cleared before the result"

tc_finish
