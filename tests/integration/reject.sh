#!/usr/bin/env bash
# The CA says no. A renewal pending at a manual-approval CA is rejected by the operator: poll
# says so with the reason (exit 12), the old certificate keeps working, status names the
# rejection and what to do. Timer runs do not submit again (an operator who said no is not asked
# twice a day): exit 12, the CA sees no new request. prune removes the rejected request's key.
# A named renew asks anew. An enrollment whose very first request was rejected is held the same
# way, and a named renew asks again with the subject that was requested.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_tool openssl sqlite3 python3 pkcs11-tool
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
COMMON=(--module "$MODULE" --pin-source env:PIN)
export TOKENCERT_TEST_CLOCK=enable
at() { # at OFFSET CODE ARGS...
    local off=$1
    shift
    TOKENCERT_TEST_NOW=$off tc_expect_exit "$1" "$TOKENCERT" "${@:2}"
}
status_json() { TOKENCERT_TEST_NOW=$1 "$TOKENCERT" status "$2" --json 2>/dev/null >"$W/s.json" || true; }
sj() { tc_json "$W/s.json" "$1"; }
ca_requests() { sqlite3 "$CA/ca.db" "SELECT count(*) FROM requests"; }
n_label() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>/dev/null |
    grep -c "label: *$1$" || true; }

tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$CA" --approval manual --cert-validity 90d
tc_expect_exit 8 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --ca-dir "$CA" --label office \
    --subject "CN=1234567890,O=Practice" --type ec:p256
tc_expect_exit 0 "$TOKENCERT" ca approve 1 --ca-dir "$CA"
tc_expect_exit 0 "$TOKENCERT" poll "${COMMON[@]}"
tc_assert_eq 3 "$(n_label office)" "enrolled: key pair and certificate"

# Due at +60d: the renewal is pending; the operator rejects it.
at +70d 8 renew --all --due "${COMMON[@]}"
tc_expect_exit 0 "$TOKENCERT" ca reject 2 --ca-dir "$CA" --reason "office number not on file"
at +70d 12 poll "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "office: CA 'local' rejected request 2: office number not on file" \
    "poll: the rejection and its reason"
status_json +70d office
tc_assert_eq 1 "$(sj 'j[0]["active"]["generation"]')" "after the rejection: generation 1 still active"
tc_assert_eq "office number not on file" "$(sj 'j[0]["rejected"]["reason"]')" "status --json: the rejection"
tc_assert_contains "$(sj 'j[0]["next_action"]')" "CA 'local' rejected request 2 (office number not on file): see to it, then tokencert renew office requests anew" \
    "status: what to do"
TOKENCERT_TEST_NOW=+70d "$TOKENCERT" status office >"$W/status.txt" 2>&1 || true
tc_assert_match "$(cat "$W/status.txt")" "rejected +request 2 on 20[0-9-]+T[0-9:]+Z: office number not on file" \
    "status: the rejection, with its date"

# Timer runs: not submitted again.
before=$(ca_requests)
rows=$(store 'len(j["requests"])')
at +71d 12 renew --all --due "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "office: CA 'local' rejected request 2 on " "the timer's run: names the rejection"
tc_assert_contains "$TC_ERR" "it is not asked again unattended: 'tokencert renew office' requests anew" \
    "the timer's run: not asked again, the way out said"
at +72d 12 renew --all --due "${COMMON[@]}"
tc_assert_eq "$before" "$(ca_requests)" "two timer runs: the CA saw no new request"
tc_assert_eq "$rows" "$(store 'len(j["requests"])')" "two timer runs: no new request recorded"

# prune: the rejected request's key goes; generation 1 stays.
tc_assert_eq 5 "$(n_label office)" "before prune: the rejected request's key pair is there too"
at +72d 0 prune "${COMMON[@]}"
tc_assert_contains "$TC_OUT" "office: deleted the key of request 2 (rejected)" "prune: the rejected request's key"
tc_assert_eq 3 "$(n_label office)" "after prune: generation 1's key pair and certificate"

# A named renew asks anew.
at +73d 8 renew office "${COMMON[@]}"
tc_assert_eq $((before + 1)) "$(ca_requests)" "named renew: a new request at the CA"
at +73d 0 ca approve 3 --ca-dir "$CA"
at +73d 0 poll "${COMMON[@]}"
status_json +73d office
tc_assert_eq 2 "$(sj 'j[0]["active"]["generation"]')" "approved at last: generation 2 active"
tc_assert_eq None "$(sj 'str(j[0]["rejected"])')" "approved at last: no rejection shown"

# A first enrollment rejected: held; a named renew asks again for the subject requested.
at +73d 8 enroll "$URI" "${COMMON[@]}" --ca-dir "$CA" --label lab --subject "CN=2345678901,O=Lab" \
    --type ec:p256
lab=$(sqlite3 "$CA/ca.db" "SELECT max(id) FROM requests")
tc_expect_exit 0 "$TOKENCERT" ca reject "$lab" --ca-dir "$CA" --reason "unknown lab"
at +73d 12 poll "${COMMON[@]}"
at +74d 12 renew --all --due "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "lab: CA 'local' rejected request" "first request rejected: held"
tc_assert_eq "$lab" "$(sqlite3 "$CA/ca.db" "SELECT max(id) FROM requests")" "first request rejected: not asked again"
at +74d 8 renew lab "${COMMON[@]}"
tc_assert_eq "CN=2345678901,O=Lab" \
    "$(store '[r["subject"] for r in j["requests"] if r["credential"] == "lab"][-1]')" \
    "named renew of a never-issued credential: the subject requested before"

tc_finish
