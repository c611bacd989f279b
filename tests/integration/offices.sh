#!/usr/bin/env bash
# Several credentials from one configuration: three offices (subjects), two CAs, two tokens, and
# a fourth office whose CA is broken. `renew --all` handles each on its own: the broken one fails
# and says why, the others are issued by their own CA on their own token, and the exit code
# summarises (1: something failed). A second run retries nothing before the backoff, and renews
# nothing that is not due.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_tool openssl sqlite3 python3 pkcs11-tool
tc_world_init
W=$TC_WORLD
SECOND=tokencert-second
tc_world_new_token "$SECOND"
T1="pkcs11:token=$TOKEN_LABEL"
T2="pkcs11:token=$SECOND"
DB=$TOKENCERT_STATE_DIR/state.db
mkdir -p "$W/etc"

tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$W/ca-north" --subject "CN=North Federation CA"
tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$W/ca-south" --subject "CN=South Federation CA"

cat >"$W/etc/tokencert.conf" <<EOF
cas = (
    { name = "north"; protocol = "local"; dir = "$W/ca-north"; },
    { name = "south"; protocol = "local"; dir = "$W/ca-south"; },
    { name = "gone"; protocol = "local"; dir = "$W/no-such-ca"; }
);
credentials = (
    { name = "office-a"; token = "$T1"; module = "$MODULE"; ca = "north";
      subject = "CN=1111111111,O=Practice A"; pin_source = "env:PIN"; },
    { name = "office-b"; token = "$T1"; module = "$MODULE"; ca = "south";
      subject = "CN=2222222222,O=Practice B"; pin_source = "env:PIN"; },
    { name = "office-c"; token = "$T2"; module = "$MODULE"; ca = "north";
      subject = "CN=3333333333,O=Practice C"; pin_source = "env:PIN"; },
    { name = "office-d"; token = "$T1"; module = "$MODULE"; ca = "gone";
      subject = "CN=4444444444,O=Practice D"; pin_source = "env:PIN"; }
);
EOF

# cert_field TOKEN LABEL FIELD: subject or issuer of the certificate labelled LABEL, read back
# with pkcs11-tool and openssl
cert_field() {
    pkcs11-tool --module "$MODULE" --token-label "$1" --read-object --type cert --label "$2" \
        -o "$W/$2.der" >/dev/null 2>&1 || { echo "none"; return; }
    openssl x509 -inform DER -in "$W/$2.der" -noout "-$3" -nameopt RFC2253 | sed "s/^$3=//"
}
n_objects() { # n_objects TOKEN LABEL
    pkcs11-tool --module "$MODULE" --token-label "$1" --login --pin "$PIN" -O 2>/dev/null |
        grep -c "label: *$2\$" || true
}

tc_expect_exit 1 "$TOKENCERT" renew --all
for o in a b c; do
    tc_assert_match "$TC_OUT" "office-$o: generation 1 installed and active" "office-$o: issued"
done
tc_assert_match "$TC_ERR" "office-d: .*no-such-ca" "office-d: the broken CA is named"
tc_assert_eq "CN=1111111111,O=Practice A" "$(cert_field "$TOKEN_LABEL" office-a subject)" "office-a: its subject"
tc_assert_eq "CN=North Federation CA" "$(cert_field "$TOKEN_LABEL" office-a issuer)" "office-a: from its CA"
tc_assert_eq "CN=2222222222,O=Practice B" "$(cert_field "$TOKEN_LABEL" office-b subject)" "office-b: its subject"
tc_assert_eq "CN=South Federation CA" "$(cert_field "$TOKEN_LABEL" office-b issuer)" "office-b: from its own CA"
tc_assert_eq "CN=3333333333,O=Practice C" "$(cert_field "$SECOND" office-c subject)" "office-c: on the second token"
tc_assert_eq "CN=North Federation CA" "$(cert_field "$SECOND" office-c issuer)" "office-c: from its CA"
tc_assert_eq 0 "$(n_objects "$TOKEN_LABEL" office-c)" "office-c: nothing on the first token"
tc_assert_eq 2 "$(n_objects "$TOKEN_LABEL" office-d)" "office-d: its new key pair waits for the retry, no certificate"
tc_assert_eq "failed" "$(sqlite3 "$DB" "SELECT state FROM requests WHERE credential = 'office-d'")" \
    "office-d: its request is marked failed"

"$TOKENCERT" status --json >"$W/s.json" 2>/dev/null || true
tc_assert_eq "office-a office-b office-c office-d" \
    "$(tc_json "$W/s.json" '" ".join(sorted(c["name"] for c in j))')" "status lists the four"
tc_assert_match "$(tc_json "$W/s.json" '[c["last_error"] for c in j if c["name"] == "office-d"][0]')" \
    "no-such-ca" "status: office-d's last error"

# The timer's run: nothing due, the failed one waits for its backoff; still a failure to report.
tc_expect_exit 1 "$TOKENCERT" renew --all --due
tc_assert_match "$TC_OUT" "office-a: not due" "second run: office-a not due"
tc_assert_match "$TC_ERR" "office-d: request [0-9]+ failed .*next try after" "second run: office-d waits"
tc_assert_eq 3 "$(sqlite3 "$DB" "SELECT count(*) FROM generations")" "second run: no new generation"

# office-a renewed with its current key (--reuse-key): a second certificate under the same
# CKA_ID; once the first has expired beyond the grace period, prune deletes that certificate and
# keeps the key the second one still uses.
export TOKENCERT_TEST_CLOCK=enable
key_a=$(sqlite3 "$DB" "SELECT key_id FROM generations WHERE credential = 'office-a' AND number = 1")
TOKENCERT_TEST_NOW=+300d tc_expect_exit 0 "$TOKENCERT" renew office-a --reuse-key
tc_assert_match "$TC_OUT" "office-a: generation 2 installed and active" "reuse-key: generation 2"
tc_assert_eq "$key_a" "$(sqlite3 "$DB" "SELECT key_id FROM generations WHERE credential = 'office-a' AND number = 2")" \
    "reuse-key: the same key"
tc_assert_eq 4 "$(n_objects "$TOKEN_LABEL" office-a)" "reuse-key: one key pair, two certificates"
TOKENCERT_TEST_NOW=+400d tc_expect_exit 0 "$TOKENCERT" prune --module "$MODULE" --pin-source env:PIN
tc_assert_match "$TC_OUT" "office-a: pruned generation 1" "prune: generation 1 of office-a"
tc_assert_eq 3 "$(n_objects "$TOKEN_LABEL" office-a)" "prune: its certificate gone, the shared key kept"
TOKENCERT_TEST_NOW=+400d "$TOKENCERT" status office-a --json >"$W/s.json" 2>/dev/null || true
tc_assert_eq "$key_a" "$(tc_json "$W/s.json" '[g["key_id"] for g in j[0]["generations"] if g["state"] == "active"][0]')" \
    "the active generation still has the key"

tc_finish
