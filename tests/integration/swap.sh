#!/usr/bin/env bash
# Another token under the same label — a colleague's card of the same model, a replacement — is
# not the credential's: with it inserted instead of the credential's own, timer runs (renew --due,
# poll) defer and say so once, and nothing on that token or in the state store changes (its own
# certificates under the label are not adopted); status names both serials. With the right token
# back, all is as before. A named renew moves the credential onto the token present (subject and
# SANs, an IPv6 address among them, kept); the move sticks (the old token is then the other one);
# prune keeps what is on a token not present and deletes it once that token is back.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_tool openssl python3 pkcs11-tool
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
URI="pkcs11:token=$TOKEN_LABEL"
COMMON=(--module "$MODULE" --pin-source env:PIN)
export TOKENCERT_TEST_CLOCK=enable
case "$TC_TOKEN_KIND" in
softhsm) TOKDIR=$TC_WORLD/softhsm/tokens ;;
tpm) TOKDIR=$TPM2_PKCS11_STORE ;;
esac
# Pulling one token out and inserting the other: each token's files move out of the module's
# directory and back.
insert() { # insert A|B
    mv "$TOKDIR" "$W/tokens.$(cat "$W/inserted")"
    mv "$W/tokens.$1" "$TOKDIR"
    echo "$1" >"$W/inserted"
}
status_json() { TOKENCERT_TEST_NOW=${1:-+0d} "$TOKENCERT" status office --json 2>/dev/null >"$W/s.json" || true; }
sj() { tc_json "$W/s.json" "$1"; }
db_rows() { store '[[r["id"], r["state"], r["key_id"]] for r in j["requests"]] + [[g["generation"], g["state"], g["token_serial"], g["sha256"]] for g in j["generations"]]'; }
n_office() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>/dev/null | grep -c "label: *office$" || true; }

tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$W/ca" --cert-validity 90d
tc_expect_exit 0 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --ca-dir "$W/ca" --label office \
    --subject "CN=1234567890,O=Practice" --type ec:p256 --san dns:office.example --san ip:2001:db8::1
status_json
SA=$(sj 'j[0]["token_serial"]')
tc_assert_match "$SA" "^[0-9A-Za-z]+$" "status: the credential's token serial"

# Token A pulled, token B (same label) inserted; a colleague enrolled on it with their own tokencert.
echo A >"$W/inserted"
mv "$TOKDIR" "$W/tokens.A"
mkdir -p "$TOKDIR"
tc_world_new_token "$TOKEN_LABEL"
echo B >"$W/inserted"
TOKENCERT_STATE_DIR=$W/colleague tc_expect_exit 0 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" \
    --ca-dir "$W/ca" --label office --subject "CN=0987654321,O=Colleague" --type ec:p256
SB=$(pkcs11-tool --module "$MODULE" -L 2>/dev/null |
    awk -v l="$TOKEN_LABEL" '$1 == "token" && $2 == "label" { f = ($NF == l) } f && /serial num/ { print $NF; exit }')
if [ "$TC_TOKEN_KIND" = tpm ]; then
    # tpm2-pkcs11 gives every token the serial 0000000000000000, so its tokens cannot be told
    # apart (nor can one be pulled out: the TPM is the machine's). Should that change, this test
    # runs in full here too.
    if [ "$SA" = "$SB" ]; then
        tc_assert_eq 0000000000000000 "$SB" "tpm2-pkcs11: every token has serial 0000000000000000"
        tc_finish
    fi
fi
tc_assert_ne "$SA" "$SB" "the two tokens have different serials"
tc_objects_snapshot "$W/B.before"
db_rows >"$W/db.before"

tc_expect_exit 5 "$TOKENCERT" renew --all --due "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "office: the token present (serial $SB) is not the one the credential is on (serial $SA): deferred until that one is inserted; 'tokencert renew office' moves the credential onto this token" \
    "renew --due: deferred, both serials named, the way out said"
tc_expect_exit 5 "$TOKENCERT" renew --all --due "${COMMON[@]}"
tc_assert_not_contains "$TC_ERR" "is not the one" "the second timer run: not said again"
tc_expect_exit 5 "$TOKENCERT" poll "${COMMON[@]}"
tc_expect_exit 5 "$TOKENCERT" renew --all "${COMMON[@]}"
tc_assert_not_contains "$TC_OUT" "moving onto" "renew --all: the credential does not move (only when named)"
tc_expect_exit 0 "$TOKENCERT" renew --all --due --dry-run "${COMMON[@]}"
tc_assert_contains "$TC_OUT" "office: would defer: the token present (serial $SB)" "dry run of the timer's run: would defer"
tc_expect_exit 0 "$TOKENCERT" renew office --dry-run "${COMMON[@]}"
tc_assert_contains "$TC_OUT" "office: would move onto the token present (serial $SB) and renew there" \
    "dry run of a named renew: would move"
tc_objects_snapshot "$W/B.after"
tc_assert_files_eq "$W/B.before" "$W/B.after" "the other token: unchanged"
db_rows >"$W/db.after"
tc_assert_files_eq "$W/db.before" "$W/db.after" "the state store: no request, no generation (the colleague's certificate not adopted)"
status_json
tc_assert_eq "false" "$(sj 'j[0]["token_present"]')" "status --json: the credential's token is not present"
tc_assert_eq "$SA $SB" "$(sj 'j[0]["token_serial"] + " " + j[0]["other_token_serial"]')" \
    "status --json: its serial and the other's"
tc_assert_contains "$(sj 'j[0]["next_action"]')" "insert the token with serial $SA" "status: the next action"
"$TOKENCERT" status office >"$W/status.txt" 2>&1 || true
tc_assert_contains "$(cat "$W/status.txt")" "serial $SB present, not serial $SA" "status: both serials"
"$TOKENCERT" history office >"$W/h.txt" 2>/dev/null
tc_assert_match "$(cat "$W/h.txt")" "deferred +other token +token serial $SB present; the credential is on serial $SA" \
    "history: the deferral recorded"

# Token A back: as before.
insert A
tc_expect_exit 0 "$TOKENCERT" renew --all --due "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: not due" "token A back: not due"
status_json
tc_assert_eq "true" "$(sj 'j[0]["token_present"]')" "token A back: present"
tc_assert_eq 1 "$(sj 'j[0]["active"]["generation"]')" "token A back: generation 1 active"

# Token B again; the user moves the credential onto it.
insert B
tc_expect_exit 0 "$TOKENCERT" renew office "${COMMON[@]}"
tc_assert_contains "$TC_OUT" "office: moving onto the token present (serial $SB); what is on token serial $SA stays there" \
    "named renew: moves, says so"
tc_assert_match "$TC_OUT" "office: generation 2 installed and active" "named renew: generation 2 on token B"
status_json
tc_assert_eq "$SB" "$(sj 'j[0]["token_serial"]')" "the credential is on token B now"
tc_assert_eq "CN=1234567890,O=Practice" "$(sj 'j[0]["active"]["subject"]')" "the subject kept (from the store)"
K2=$(sj '[g["key_id"] for g in j[0]["generations"] if g["state"] == "active"][0]')
pct=$(python3 -c 'import sys; print("".join("%" + sys.argv[1][i:i+2] for i in range(0, len(sys.argv[1]), 2)))' "$K2")
tc_expect_exit 0 "$TOKENCERT" export "$URI;object=office;id=$pct;type=cert" --module "$MODULE" -o "$W/new.pem"
tc_assert_contains "$(openssl x509 -in "$W/new.pem" -noout -ext subjectAltName)" \
    "DNS:office.example, IP Address:2001:DB8:0:0:0:0:0:1" "the SANs kept (from the last certificate), the IPv6 address too"
tc_assert_contains "$(openssl x509 -in "$W/new.pem" -noout -text)" "ASN1 OID: prime256v1" \
    "the key type kept (EC P-256, from the store)"
tc_assert_eq "superseded" "$(sj '[g["state"] for g in j[0]["generations"] if g["generation"] == 1][0]')" \
    "generation 1 (on token A): superseded"
tc_assert_eq "CN=0987654321,O=Colleague" \
    "$(TOKENCERT_STATE_DIR=$W/colleague "$TOKENCERT" status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["active"]["subject"])')" \
    "the colleague's credential on token B: still theirs, still active"

# Token A again: now it is the other one, and the move sticks.
insert A
tc_expect_exit 5 "$TOKENCERT" renew --all --due "${COMMON[@]}"
tc_assert_contains "$TC_ERR" "the token present (serial $SA) is not the one the credential is on (serial $SB)" \
    "token A after the move: the other one"
status_json
tc_assert_eq 2 "$(sj 'j[0]["active"]["generation"]')" "token A after the move: generation 2 stays active"
tc_assert_eq false "$(sj 'j[0]["active"]["on_token"]')" "status: the active certificate is on the other token"

# Prune after generation 1 expired beyond the grace period, with token B: it is kept; with
# token A: it is deleted.
insert B
TOKENCERT_TEST_NOW=+125d tc_expect_exit 0 "$TOKENCERT" prune "${COMMON[@]}"
tc_assert_contains "$TC_OUT" "office: generation 1 is on token serial $SA, which is not present: kept until it is" \
    "prune with token B: generation 1 kept"
tc_assert_eq superseded "$(store '[g["state"] for g in j["generations"] if g["generation"] == 1][0]')" \
    "prune with token B: generation 1 still recorded"
tc_assert_eq 6 "$(n_office)" "prune with token B: our generation and the colleague's, untouched"
insert A
tc_assert_eq 3 "$(n_office)" "token A: generation 1's key pair and certificate"
TOKENCERT_TEST_NOW=+125d tc_expect_exit 0 "$TOKENCERT" prune "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: pruned generation 1 .*objects deleted" "prune with token A: deleted"
tc_assert_eq 0 "$(n_office)" "token A: nothing left under the label"
tc_assert_eq pruned "$(store '[g["state"] for g in j["generations"] if g["generation"] == 1][0]')" \
    "generation 1: pruned"

tc_finish
