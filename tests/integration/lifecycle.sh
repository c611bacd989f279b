#!/usr/bin/env bash
# The whole story on one token, with the embedded CA in manual-approval mode and the clock moved
# by the test-only override: enroll → pending (status shows it) → ca approve → poll installs →
# renewal comes due → a new key under the same label, pending again → approve → poll → both
# valid, the old one superseded and still signing → the old one expires → prune deletes exactly
# its objects. Every figure is read back independently (pkcs11-tool, openssl, history --json).
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool openssl sqlite3 python3 pkcs11-tool
if [ -z "${TC_PROBE-}" ] || [ ! -x "$TC_PROBE" ]; then
    tc_die "TC_PROBE must name the tc-probe program (got '${TC_PROBE-}'); run through ctest"
fi
tc_world_init
W=$TC_WORLD
# What the store holds, read through history --json (its file's schema is not a test interface):
# store PY-EXPR over j, the history document (docs/json-schema.md) [STATE_DIR]
store() {
    TOKENCERT_STATE_DIR=${2:-$TOKENCERT_STATE_DIR} "$TOKENCERT" history --json \
        >"$TC_WORLD/history.json" 2>"$TC_WORLD/history.err" ||
        tc_fail "history --json: $(cat "$TC_WORLD/history.err")"
    tc_json "$TC_WORLD/history.json" "$1"
}
CA=$W/ca
URI="pkcs11:token=$TOKEN_LABEL"
DB=$TOKENCERT_STATE_DIR/state.db
export TOKENCERT_TEST_CLOCK=enable

tc() { tc_expect_exit "$1" "$TOKENCERT" "${@:2}"; }
at() { # at OFFSET CODE ARGS...: a tokencert command with the clock moved by OFFSET
    local off=$1
    shift
    TOKENCERT_TEST_NOW=$off tc_expect_exit "$1" "$TOKENCERT" "${@:2}"
}
status_json() { TOKENCERT_TEST_NOW=$1 "$TOKENCERT" status office --json 2>/dev/null >"$W/status.json"; }
sj() { tc_json "$W/status.json" "$1"; }
n_certs() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" -O --type cert 2>/dev/null |
    grep -c "label: *office" || true; }
n_privkeys() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O \
    --type privkey 2>/dev/null | grep -c "label: *office" || true; }
pct() { python3 -c 'import sys; print("".join("%" + sys.argv[1][i:i+2] for i in range(0, len(sys.argv[1]), 2)))' "$1"; }
# signs ID WHAT: the key with CKA_ID ID signs, and the signature verifies against its certificate
signs() {
    local id=$1 what=$2 p
    p=$(pct "$id")
    "$TOKENCERT" export "$URI;id=$p;type=cert" --module "$MODULE" -o "$W/c-$id.pem" >/dev/null 2>&1 ||
        { tc_fail "$what: certificate of key $id exported"; return; }
    openssl x509 -in "$W/c-$id.pem" -pubkey -noout >"$W/p-$id.pem"
    echo "billing batch $RANDOM" >"$W/msg"
    tc_expect_exit 0 "$TC_PROBE" --module "$MODULE" --token "$URI" --pin-source env:PIN \
        --key "$URI;id=$p;type=private" sign --alg ecdsa --md sha256 --in "$W/msg" --out "$W/sig"
    tc_expect_exit 0 openssl dgst -sha256 -verify "$W/p-$id.pem" -signature "$W/sig" "$W/msg"
    tc_assert_contains "$TC_OUT" "Verified OK" "$what: key $id signs, openssl verifies it"
}
COMMON=(--module "$MODULE" --pin-source env:PIN)

# The CA: manual approval, certificates for 90 days.
tc 0 ca init --ca-dir "$CA" --approval manual --cert-validity 90d
tc_assert_contains "$TC_OUT" "manual approval" "the CA needs an operator"

# ---------------------------------------------------------------------------------------------
# Enroll: pending; status names the request

tc 8 enroll "$URI" "${COMMON[@]}" --ca-dir "$CA" --label office \
    --subject "CN=1234567890,O=Practice,C=DE" --type ec:p256
tc_assert_match "$TC_OUT" "request 1 is pending approval" "enroll: pending, names the request"
tc_assert_eq "0600" "$(stat -c %a "$DB" | sed 's/^/0/')" "the state store is mode 0600"
tc 0 status office
tc_assert_match "$TC_OUT" "request +[0-9]+ pending at CA 'local', CA request 1" "status: the pending request"
tc_assert_match "$TC_OUT" "next +waiting for CA 'local' to approve request 1" "status: the next action"
status_json +0d
tc_assert_eq "pending" "$(sj 'j[0]["request"]["state"]')" "status --json: pending"
tc_assert_eq "None" "$(sj 'str(j[0]["active"])')" "status --json: nothing active yet"
tc 8 poll "${COMMON[@]}"
tc_assert_match "$TC_OUT" "pending at CA 'local'" "poll before approval: still pending"
"$TOKENCERT" check "$URI" --module "$MODULE" --metrics "$W/m.prom" >/dev/null 2>&1 || true
tc_assert_match "$(cat "$W/m.prom")" '^tokencert_requests_pending\{credential="office"\} 1$' \
    "check --metrics: one pending request"
tc_assert_match "$(cat "$W/m.prom")" '^tokencert_request_pending_since_seconds\{credential="office",request="1",ca="local"\} [0-9]+$' \
    "check --metrics: since when"
tc_assert_match "$(cat "$W/m.prom")" '^tokencert_last_run_result\{credential="office",result="pending"\} 0$' \
    "check --metrics: the last run's result"
tc_assert_eq 0 "$(n_certs)" "no certificate before approval"

tc 0 ca approve 1 --ca-dir "$CA"
tc 0 poll "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: generation 1 installed and active" "poll installs the certificate"
tc_assert_eq 1 "$(n_certs)" "one certificate labelled office"
"$TOKENCERT" check "$URI" --module "$MODULE" --metrics "$W/m.prom" >/dev/null 2>&1 || true
tc_assert_match "$(cat "$W/m.prom")" '^tokencert_requests_pending\{credential="office"\} 0$' \
    "check --metrics: nothing pending once installed"
tc_assert_match "$(cat "$W/m.prom")" '^tokencert_last_run_result\{credential="office",result="renewed"\} 0$' \
    "check --metrics: the last run installed"
status_json +1h
G1=$(sj 'j[0]["generations"][0]["key_id"]')
tc_assert_eq "89" "$(sj 'j[0]["active"]["days_left"]')" "generation 1, an hour later: 89 whole days left"
signs "$G1" "generation 1"

# Not due: nothing happens.
tc 0 renew office --due "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: not due: renewal starts on" "renew --due: not due yet"

# ---------------------------------------------------------------------------------------------
# Day 65: due (30 days before the end); a new key under the same label, pending at the CA

# Due, but the token is not there (tc-faultmod makes every token look removed): deferred, said
# once; the next timer run stays quiet about it; nothing is recorded but the deferral.
ABSENT=(env TC_FAULT_TARGET="$MODULE" TC_FAULT_TOKEN_ABSENT=1 TOKENCERT_TEST_NOW=+65d)
n_req_before=$(store 'len(j["requests"])')
tc_expect_exit 5 "${ABSENT[@]}" "$TOKENCERT" renew --all --due --module "$TC_FAULTMOD" --pin-source env:PIN
tc_assert_match "$TC_ERR" "office: token .* is not present: deferred until it is" "absent token: deferred, said so"
tc_expect_exit 5 "${ABSENT[@]}" "$TOKENCERT" renew --all --due --module "$TC_FAULTMOD" --pin-source env:PIN
tc_assert_not_contains "$TC_ERR" "deferred" "absent token again: said only once"
tc_assert_eq "$n_req_before" "$(store 'len(j["requests"])')" "absent token: no request made"
at +65d 0 status office
tc_assert_match "$TC_OUT" "deferred" "status: the deferral shows"
at +65d 8 renew --all --due "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: request 2 is pending at CA 'local' \(CA request 2\)" \
    "day 65: renewal due, request pending"
tc_assert_eq 2 "$(n_privkeys)" "the new key sits beside the old one"
tc_assert_eq 1 "$(n_certs)" "the old certificate is untouched"
signs "$G1" "while pending, the old credential"
at +65d 0 status office
tc_assert_match "$TC_OUT" "active +serial [0-9A-F]+, valid until .* \(24 days left\)" \
    "status while pending: the old certificate is active"
tc_assert_match "$TC_OUT" "request +2 pending" "status while pending: the request"

# A second renew while pending continues the request instead of starting another.
at +65d 8 renew office "${COMMON[@]}"
tc_assert_eq 2 "$(n_privkeys)" "renew while pending: no third key"
tc_assert_eq 2 "$(store 'len(j["requests"])')" "renew while pending: no new request"

TOKENCERT_TEST_NOW=+65d tc 0 ca approve 2 --ca-dir "$CA"
at +66d 0 poll "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: generation 2 installed and active" "poll installs generation 2"
tc_assert_match "$TC_OUT" "office: generation 1 superseded; it keeps working until" \
    "the old one is superseded, kept"
tc_assert_eq 2 "$(n_certs)" "both certificates on the token, same label"
status_json +66d
G2=$(sj '[g["key_id"] for g in j[0]["generations"] if g["state"] == "active"][0]')
tc_assert_ne "$G1" "$G2" "generation 2 has a new key"
tc_assert_eq "superseded" "$(sj '[g["state"] for g in j[0]["generations"] if g["generation"] == 1][0]')" \
    "status --json: generation 1 superseded"
tc_assert_eq "CN=1234567890,O=Practice,C=DE" "$(sj 'j[0]["active"]["subject"]')" \
    "the subject came from the current certificate"
signs "$G1" "both valid: the old"
signs "$G2" "both valid: the new"
# list marks them too (from the store), in the table, the JSON and the timeline.
at +66d 0 list "$URI" --module "$MODULE"
tc_assert_match "$TC_OUT" "generation 1 of 'office': superseded" "list: generation 1 superseded"
tc_assert_match "$TC_OUT" "generation 2 of 'office': active" "list: generation 2 active"
TOKENCERT_TEST_NOW=+66d "$TOKENCERT" list "$URI" --module "$MODULE" --json >"$W/list.json" 2>/dev/null
tc_assert_eq "1 superseded,2 active" "$(tc_json "$W/list.json" '",".join(sorted("%d %s" % (c["generation"]["number"], c["generation"]["state"]) for t in j["tokens"] for cr in t["credentials"] for c in cr["certificates"] if c["generation"]))')" \
    "list --json: the generations and their states"
at +66d 0 list "$URI" --module "$MODULE" --timeline
tc_assert_match "$TC_OUT" "superseded" "list --timeline: the superseded one marked"

# Prune before the old one expired: nothing.
at +80d 0 prune "${COMMON[@]}"
tc_assert_contains "$TC_OUT" "nothing to prune" "prune before expiry: nothing"
tc_assert_eq 2 "$(n_certs)" "prune before expiry: both certificates stay"

# Day 90 + 31: the old one expired beyond the 30-day grace; prune removes exactly it.
at +121d 0 prune --dry-run "${COMMON[@]}"
tc_assert_match "$TC_OUT" "would delete generation 1" "prune --dry-run says what"
tc_assert_eq 2 "$(n_certs)" "prune --dry-run deletes nothing"
at +121d 0 prune "${COMMON[@]}"
tc_assert_match "$TC_OUT" "pruned generation 1 .*: 3 objects deleted" "prune: generation 1's three objects"
tc_assert_eq 1 "$(n_certs)" "one certificate left"
tc_assert_eq 1 "$(n_privkeys)" "one key left"
signs "$G2" "after prune, the new credential"
if pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>/dev/null |
    grep -qi "ID: *$G1"; then
    tc_fail "prune: nothing with generation 1's id is left"
else
    tc_pass "prune: nothing with generation 1's id is left"
fi

tc 0 history office
for ev in enrolled submitted pending installed "renewal started" "key generated" renewed pruned; do
    tc_assert_contains "$TC_OUT" "$ev" "history records '$ev'"
done
# The PIN (1234) as a whole number: the office number CN=1234567890 starts with the same digits.
if grep -Eq "(^|[^0-9])$PIN([^0-9]|\$)" <<<"$TC_OUT"; then tc_fail "history holds no PIN"; else tc_pass "history holds no PIN"; fi
tc_expect_exit 19 sqlite3 "$DB" "DELETE FROM history"
tc_assert_contains "$TC_ERR" "append-only" "history: deleting is refused"

# ---------------------------------------------------------------------------------------------
# Bad input: message, exit code, token and state unchanged

# The store's requests, generations and credential records, without the history (which grows).
snapshot_state() {
    store '[j["requests"], j["generations"]]'
    "$TOKENCERT" status --json 2>/dev/null >"$W/ss.json" || true
    tc_json "$W/ss.json" '[[c["name"], c["last_result"], c["last_error"], c["deferred_since"]] for c in j]'
}
tc_objects_snapshot "$W/base"
S0=$(snapshot_state)
unchanged() {
    tc_objects_snapshot "$W/now"
    tc_assert_files_eq "$W/base" "$W/now" "token unchanged: $1"
    tc_assert_eq "$S0" "$(snapshot_state)" "state unchanged: $1"
}

mkdir -p "$W/etc"
printf 'credentials = ( { name = "office"; token = "%s"; renew_before = 30d; } );\n' "$URI" >"$W/bad.conf"
tc 9 renew office --config "$W/bad.conf" "${COMMON[@]}"
tc_assert_match "$TC_ERR" "$W/bad.conf:1: " "malformed config: file and line"
unchanged "malformed config"

printf 'credentials = ( { name = "office"; token = "%s"; ca = "federation"; } );\n' "$URI" >"$W/ca.conf"
tc 9 renew office --config "$W/ca.conf" "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "unknown CA 'federation'" "unknown CA name: named"
unchanged "unknown CA"

printf '%s' "$PIN" >"$W/pin.world"
chmod 644 "$W/pin.world"
tc 11 renew office --module "$MODULE" --pin-source "file:$W/pin.world"
tc_assert_contains "$TC_ERR" "is readable by everyone" "world-readable PIN file: refused"
unchanged "world-readable PIN file"
tc 11 renew office --module "$MODULE" --pin-source "file:$W/no-such-pin"
tc_assert_contains "$TC_ERR" "$W/no-such-pin" "unreadable PIN file: named"
unchanged "unreadable PIN file"

: >"$W/not-a-dir"
tc 10 renew office "${COMMON[@]}" --state-dir "$W/not-a-dir/state"
tc_assert_contains "$TC_ERR" "$W/not-a-dir/state" "state directory that cannot be made: named"
unchanged "unusable state directory"

# A state directory this user cannot write (root may write anywhere, so the run is made as
# nobody): refused before the token is touched, the store unchanged.
mkdir -p "$W/ro-state"
cp "$DB" "$W/ro-state/state.db"
chmod 755 "$W/ro-state"
chmod 644 "$W/ro-state/state.db"
ro_sum=$(sha256sum <"$W/ro-state/state.db")
chmod o+x "$W"
tc_expect_exit 10 setpriv --reuid=65534 --regid=65534 --clear-groups env TOKENCERT_TEST_NOW=+122d \
    "$TOKENCERT" renew office --module "$MODULE" --state-dir "$W/ro-state"
chmod o-x "$W"
tc_assert_match "$TC_ERR" "cannot write the state store $W/ro-state/state.db" "read-only state directory: named"
tc_assert_eq "$ro_sum" "$(sha256sum <"$W/ro-state/state.db")" "read-only state directory: the store unchanged"
tc_assert_eq "" "$(find "$W/ro-state" -newer "$W/ro-state/state.db" ! -path "$W/ro-state")" \
    "read-only state directory: nothing written beside it"
unchanged "read-only state directory"

tc 4 renew nosuch "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "no credential 'nosuch'" "unknown credential: named"
tc 2 renew "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "name one credential, or give --all" "renew without a name: usage"

# A corrupt store is refused, never overwritten.
cp "$DB" "$W/state.keep"
mkdir -p "$W/corrupt"
head -c 8192 /dev/urandom >"$W/corrupt/state.db"
H=$(sha256sum <"$W/corrupt/state.db")
tc 9 status --state-dir "$W/corrupt"
tc_assert_contains "$TC_ERR" "$W/corrupt/state.db" "corrupt store: named"
tc_assert_eq "$H" "$(sha256sum <"$W/corrupt/state.db")" "corrupt store: not modified"
cp "$DB" "$W/newer.db"
sqlite3 "$W/newer.db" "PRAGMA user_version = 999"
mkdir -p "$W/newer" && mv "$W/newer.db" "$W/newer/state.db"
H=$(sha256sum <"$W/newer/state.db")
tc 9 status --state-dir "$W/newer"
tc_assert_contains "$TC_ERR" "newer tokencert" "newer store: refused, says why"
tc_assert_eq "$H" "$(sha256sum <"$W/newer/state.db")" "newer store: not modified"

# A run killed after the request was recorded as pending at a CA that approves by itself, before
# the CA signed: the next poll has the CA issue it, instead of "pending" for ever.
tc 0 ca init --ca-dir "$W/auto" --cert-validity 90d
TOKENCERT_TEST_CA_FAULT=kill-issue tc 137 enroll "$URI" "${COMMON[@]}" --ca-dir "$W/auto" \
    --label crashed --subject "CN=3456789012,O=Practice" --type ec:p256
tc_assert_eq "pending" "$(store '[r["state"] for r in j["requests"] if r["credential"] == "crashed"][-1]')" \
    "killed before the CA signed: the request is recorded pending"
tc 0 poll crashed "${COMMON[@]}"
tc_assert_contains "$TC_OUT" "crashed: generation 1 installed and active" \
    "poll: a CA that approves by itself issues what a killed run left pending"
tc_assert_eq "issued" "$(sqlite3 "$W/auto/ca.db" "SELECT state FROM requests ORDER BY id DESC LIMIT 1")" \
    "the CA recorded the request issued"

tc_finish
