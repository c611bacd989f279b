#!/usr/bin/env bash
# The token's objects are the truth: each run reconciles the state store with them. A certificate
# imported with another tool (pkcs11-tool) under the credential's label is adopted, and being the
# one that lasts longest it becomes the active one (a renewal done through a portal); deleted by
# hand, the previous generation is active again; with every certificate deleted, the next timer
# run renews; prune copes with objects already gone and leaves exactly the active generation.
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
p11() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" "$@"; }
status_json() { TOKENCERT_TEST_NOW=${1:-+0d} "$TOKENCERT" status office --json 2>/dev/null >"$W/s.json" || true; }
active_key() { tc_json "$W/s.json" 'str(j[0]["active"] and [g["key_id"] for g in j[0]["generations"] if g["state"] == "active"][0])'; }
n_office() { p11 -O 2>/dev/null | grep -c "label: *office$" || true; }

tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$W/ca" --cert-validity 90d
tc_expect_exit 0 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --ca-dir "$W/ca" --label office \
    --subject "CN=1234567890,O=Practice" --type ec:p256
K1=$(store '[g["key_id"] for g in j["generations"] if g["generation"] == 1][0]')

# Another tool: a key pair made by pkcs11-tool, its request signed by the token, a certificate
# for 180 days from a portal's CA (openssl here), written back by pkcs11-tool.
K2=c0ffee0102030405060708090a0b0c0d0e0f1011
tc_expect_exit 0 p11 --keypairgen --key-type EC:prime256v1 --label office --id "$K2"
pct=$(python3 -c 'import sys; print("".join("%" + sys.argv[1][i:i+2] for i in range(0, 40, 2)))' "$K2")
tc_expect_exit 0 "$TOKENCERT" csr "$URI;id=$pct;type=private" "${COMMON[@]}" \
    --subject "CN=1234567890,O=Practice" -o "$W/k2.csr"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/portal.key" \
    -out "$W/portal.pem" -subj "/CN=Portal CA" -days 3650 2>/dev/null
openssl x509 -req -in "$W/k2.csr" -CA "$W/portal.pem" -CAkey "$W/portal.key" -days 180 \
    -outform DER -out "$W/k2.der" 2>/dev/null
tc_expect_exit 0 p11 --write-object "$W/k2.der" --type cert --label office --id "$K2"

# The timer's next run reconciles (nothing is due).
tc_expect_exit 0 "$TOKENCERT" renew --all --due "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: not due" "the run after the import: not due"
status_json
tc_assert_eq "$K2" "$(active_key)" "the imported certificate, lasting longest, is active"
tc_assert_eq "superseded" "$(tc_json "$W/s.json" '[g["state"] for g in j[0]["generations"] if g["key_id"] == "'"$K1"'"][0]')" \
    "the enrolled one is superseded"
"$TOKENCERT" history office >"$W/h.txt" 2>/dev/null
tc_assert_match "$(cat "$W/h.txt")" "adopted +ok +certificate .* found on the token" "the history records the adoption"

# Deleted by hand: the enrolled generation is active again.
for t in cert privkey pubkey; do tc_expect_exit 0 p11 --delete-object --type "$t" --id "$K2"; done
tc_expect_exit 0 "$TOKENCERT" renew --all --due "${COMMON[@]}"
status_json
tc_assert_eq "$K1" "$(active_key)" "the imported one deleted: the enrolled one is active again"

# Every certificate deleted: nothing active; the timer's run renews.
tc_expect_exit 0 p11 --delete-object --type cert --id "$K1"
status_json
tc_assert_eq "None" "$(active_key)" "no certificate left: nothing active"
tc_expect_exit 0 "$TOKENCERT" renew --all --due "${COMMON[@]}"
tc_assert_match "$TC_OUT" "office: generation [0-9]+ installed and active" "the timer's run renews"
status_json
K3=$(active_key)
tc_assert_ne "$K1" "$K3" "a new key"
tc_assert_eq "CN=1234567890,O=Practice" "$(tc_json "$W/s.json" 'j[0]["active"]["subject"]')" \
    "the subject remembered from the store"

# Prune once the old ones have expired beyond the grace period: the objects already gone are no
# error; exactly the active generation's key pair and certificate remain under the label.
TOKENCERT_TEST_NOW=+220d tc_expect_exit 0 "$TOKENCERT" prune "${COMMON[@]}"
tc_assert_eq 0 "$(store 'len([g for g in j["generations"] if g["state"] == "superseded"])')" \
    "prune: no superseded generation left"
status_json +10d
tc_assert_eq "$K3" "$(active_key)" "prune: the active one stays"
tc_assert_eq 3 "$(n_office)" "prune: exactly the active generation's objects remain"

tc_finish
