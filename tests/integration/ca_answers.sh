#!/usr/bin/env bash
# Nothing a CA returns is trusted: a certificate for another key, for another subject, or one
# that has already expired is refused, the request is marked failed, nothing is installed and
# the token keeps exactly the objects it had; a retry sends the request again for the same key,
# and a good certificate then installs. The CA is a "manual" one (the request and the
# certificate are files), its certificates made here with openssl.
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
P=$W/portal
URI="pkcs11:token=$TOKEN_LABEL"
SUBJECT="CN=1234567890,O=Practice,C=DE"
export TOKENCERT_TEST_CLOCK=enable
mkdir -p "$P" "$W/etc"

cat >"$W/etc/tokencert.conf" <<EOF
cas = ( { name = "portal"; protocol = "manual"; dir = "$P"; approval = "manual";
          ca_file = "$W/ca.pem"; } );
credentials = ( {
    name = "office"; token = "$URI"; module = "$MODULE"; ca = "portal";
    subject = "$SUBJECT"; key_type = "ec:p256"; pin_source = "env:PIN";
} );
EOF

# The portal's CA, made with openssl.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
    -out "$W/ca.pem" -subj "/CN=Portal CA" -days 3650 2>/dev/null
# issue CSR DAYS [SUBJECT]: the portal signs CSR into office-1.crt
issue() {
    local subj=()
    [ -n "${3-}" ] && subj=(-subj "$3")
    openssl x509 -req -in "$1" -CA "$W/ca.pem" -CAkey "$W/ca.key" -days "$2" "${subj[@]}" \
        -out "$P/office-1.crt" 2>/dev/null
}
objects() { # every object on the token, as "kind id label" lines, sorted
    pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>/dev/null |
        awk '/Object;/ {k=$1" "$2} /ID:/ {print k, $2}' | sort
}
is_file() { if [ -f "$1" ]; then echo yes; else echo no; fi; }
req_state() { store '[r["state"] + " " + (r["failed_at"] or "-") for r in j["requests"] if r["id"] == 1][0]'; }
n_certs() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" -O --type cert 2>/dev/null |
    grep -c "label: *office" || true; }

# The first request: a key on the token, the CSR in the portal's directory, pending.
tc_expect_exit 8 "$TOKENCERT" renew office
tc_assert_contains "$TC_OUT" "$P/office-1.csr" "the request file is named"
tc_expect_exit 0 openssl req -in "$P/office-1.csr" -noout -verify
tc_assert_eq "pending -" "$(req_state)" "request 1 pending"
before=$(objects)
tc_assert_eq 2 "$(wc -l <<<"$before")" "a key pair on the token, no certificate"

# refused WHAT PATTERN [OFFSET]: poll refuses what is in office-1.crt
refused() {
    local what=$1 pattern=$2
    TOKENCERT_TEST_NOW=${3-+0d} tc_expect_exit 9 "$TOKENCERT" poll
    tc_assert_match "$TC_ERR" "$pattern" "$what: the reason is given"
    tc_assert_eq "failed key-generated" "$(req_state)" "$what: the request is marked failed"
    tc_assert_match "$(store '[r["last_error"] for r in j["requests"] if r["id"] == 1][0]')" "$pattern" \
        "$what: the store records why"
    tc_assert_eq "$before" "$(objects)" "$what: the token's objects are unchanged"
    tc_assert_eq 0 "$(n_certs)" "$what: nothing installed"
    tc_assert_eq "yes no" "$(is_file "$P/office-1.crt.refused") $(is_file "$P/office-1.crt")" \
        "$what: the refused file is set aside, so that the retry waits for a new one"
    TOKENCERT_TEST_NOW=${3-+0d} tc_expect_exit 0 "$TOKENCERT" status office
    tc_assert_match "$TC_OUT" "$pattern" "$what: status shows the last error"
    # A retry: the same key, the request written again.
    TOKENCERT_TEST_NOW=${3-+0d} tc_expect_exit 8 "$TOKENCERT" renew office
    tc_assert_eq "pending -" "$(req_state)" "$what: the retry is pending again"
    tc_assert_eq "$before" "$(objects)" "$what: the retry made no new key"
}

# 1. A certificate for another key, with the right subject.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
    -out "$W/other.csr" -subj "/C=DE/O=Practice/CN=1234567890" 2>/dev/null
issue "$W/other.csr" 30
refused "another key" "for another key"

# 2. The request's key, another subject.
issue "$P/office-1.csr" 30 "/C=DE/O=Practice/CN=9999999999"
refused "another subject" "for another subject.*9999999999"

# 3. The request's key and subject, but expired by the time it arrives (a day's certificate
#    collected three days later).
issue "$P/office-1.csr" 1
refused "already expired" "already expired" +3d

# A good one installs.
issue "$P/office-1.csr" 30
TOKENCERT_TEST_NOW=+3d tc_expect_exit 0 "$TOKENCERT" poll --pin-source env:PIN
tc_assert_contains "$TC_OUT" "office: generation 1 installed and active" "a good certificate installs"
tc_assert_eq 1 "$(n_certs)" "one certificate on the token"
tc_assert_eq "active -" "$(req_state)" "request 1 active"
tc_assert_eq 3 "$(objects | wc -l)" "key pair and certificate, nothing else"

# enroll --ca NAME: a first enrollment at a configured CA goes through the same steps. Another
# label on the same token, at the portal: pending with the request file written; an unknown CA
# refused before the token is touched; poll installs generation 1 once the certificate is there.
before=$(objects)
tc_expect_exit 2 "$TOKENCERT" enroll "$URI" --module "$MODULE" --pin-source env:PIN \
    --label clinic --subject "CN=2345678901,O=Clinic,C=DE" --ca nowhere
tc_assert_contains "$TC_ERR" "unknown CA 'nowhere'" "enroll --ca: an unknown CA is named"
tc_assert_eq "$before" "$(objects)" "enroll --ca unknown: the token is unchanged"
tc_expect_exit 8 "$TOKENCERT" enroll "$URI" --module "$MODULE" --pin-source env:PIN \
    --label clinic --subject "CN=2345678901,O=Clinic,C=DE" --ca portal --type ec:p256
CREQ=$(store '[r["id"] for r in j["requests"] if r["credential"] == "clinic"][0]')
tc_assert_contains "$TC_OUT" "$P/clinic-$CREQ.csr" "enroll --ca portal: the request file is named"
tc_assert_contains "$TC_OUT" "pending approval at CA 'portal'" "enroll --ca portal: pending at the portal"
tc_assert_eq "CN=2345678901,O=Clinic,C=DE" \
    "$(openssl req -in "$P/clinic-$CREQ.csr" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" \
    "enroll --ca portal: the request file carries the subject"
tc_expect_exit 0 "$TOKENCERT" status clinic --json
tc_assert_eq "portal|manual|pending" \
    "$(tc_json "$TC_OUT_FILE" 'j[0]["ca"] + "|" + j[0]["ca_protocol"] + "|" + j[0]["request"]["state"]')" \
    "enroll --ca portal: status knows the credential, its CA and the pending request"
openssl x509 -req -in "$P/clinic-$CREQ.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -days 30 \
    -out "$P/clinic-$CREQ.crt" 2>/dev/null
TOKENCERT_TEST_NOW=+3d tc_expect_exit 0 "$TOKENCERT" poll --pin-source env:PIN
tc_assert_contains "$TC_OUT" "clinic: generation 1 installed and active" "enroll --ca portal: poll installs it"
TOKENCERT_TEST_NOW=+3d tc_expect_exit 0 "$TOKENCERT" status clinic --json
tc_assert_eq "1|True|portal" \
    "$(tc_json "$TC_OUT_FILE" 'str(j[0]["active"]["generation"]) + "|" + str(j[0]["active"]["on_token"]) + "|" + j[0]["ca"]')" \
    "enroll --ca portal: generation 1 active, on the token, from the portal"
tc_assert_eq 6 "$(objects | wc -l)" "two credentials: two key pairs and two certificates"

tc_finish
