#!/usr/bin/env bash
# Several credentials from one configuration: three offices (subjects), two CAs, two tokens, and
# a fourth office whose CA is broken. `renew --all` handles each on its own: the broken one fails
# and says why, the others are issued by their own CA on their own token, and the exit code
# summarises (1: something failed). A second run retries nothing before the backoff, and renews
# nothing that is not due.
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
SECOND=tokencert-second
tc_world_new_token "$SECOND"
T1="pkcs11:token=$TOKEN_LABEL"
T2="pkcs11:token=$SECOND"
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
tc_assert_eq "failed" "$(store '[r["state"] for r in j["requests"] if r["credential"] == "office-d"][0]')" \
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
tc_assert_eq 3 "$(store 'len(j["generations"])')" "second run: no new generation"

# office-a renewed with its current key (--reuse-key): a second certificate under the same
# CKA_ID; once the first has expired beyond the grace period, prune deletes that certificate and
# keeps the key the second one still uses.
export TOKENCERT_TEST_CLOCK=enable
key_a=$(store '[g["key_id"] for g in j["generations"] if g["credential"] == "office-a" and g["generation"] == 1][0]')
TOKENCERT_TEST_NOW=+300d tc_expect_exit 0 "$TOKENCERT" renew office-a --reuse-key
tc_assert_match "$TC_OUT" "office-a: generation 2 installed and active" "reuse-key: generation 2"
tc_assert_eq "$key_a" "$(TOKENCERT_TEST_NOW=+300d store '[g["key_id"] for g in j["generations"] if g["credential"] == "office-a" and g["generation"] == 2][0]')" \
    "reuse-key: the same key"
tc_assert_eq 4 "$(n_objects "$TOKEN_LABEL" office-a)" "reuse-key: one key pair, two certificates"
TOKENCERT_TEST_NOW=+400d tc_expect_exit 0 "$TOKENCERT" prune --module "$MODULE" --pin-source env:PIN
tc_assert_match "$TC_OUT" "office-a: pruned generation 1" "prune: generation 1 of office-a"
tc_assert_eq 3 "$(n_objects "$TOKEN_LABEL" office-a)" "prune: its certificate gone, the shared key kept"
TOKENCERT_TEST_NOW=+400d "$TOKENCERT" status office-a --json >"$W/s.json" 2>/dev/null || true
tc_assert_eq "$key_a" "$(tc_json "$W/s.json" '[g["key_id"] for g in j[0]["generations"] if g["state"] == "active"][0]')" \
    "the active generation still has the key"

# Several due credentials on one token, the PIN from a one-shot source (fd:3, read once): the run
# logs in once for all of them and renews every one (it used to renew the first and fail the rest
# with "the PIN from fd:3 is empty"). Counted with OpenSC's pkcs11-spy around the token's module.
SPY=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
if [ -e "$SPY" ]; then
    THIRD=tokencert-third
    tc_world_new_token "$THIRD"
    cat >"$W/etc/pinfd.conf" <<EOF
cas = ( { name = "north"; protocol = "local"; dir = "$W/ca-north"; } );
credentials = (
    { name = "desk-e"; token = "pkcs11:token=$THIRD"; module = "$SPY"; ca = "north";
      subject = "CN=5555555555,O=Practice E"; },
    { name = "desk-f"; token = "pkcs11:token=$THIRD"; module = "$SPY"; ca = "north";
      subject = "CN=6666666666,O=Practice F"; },
    { name = "desk-g"; token = "pkcs11:token=$THIRD"; module = "$SPY"; ca = "north";
      subject = "CN=7777777777,O=Practice G"; }
);
EOF
    (umask 077 && printf '%s\n' "$PIN" >"$W/pinfile")
    # Under the spy, allocations made inside the token's module lose their callers (the spy and
    # OpenSC's libraries have no frame pointers), so lsan.supp's module suppressions cannot match
    # them, and the spy leaks on its own: the sanitizer build's leak check is left to the other
    # tests, which load the module directly.
    SPY_ASAN=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    # pinfd_run NAME [TEST_NOW]: renew --all --due under the spy, the PIN from fd:3
    pinfd_run() {
        rm -f "$W/$1.spy"
        ASAN_OPTIONS=$SPY_ASAN TOKENCERT_TEST_NOW=${2:-} PKCS11SPY=$MODULE PKCS11SPY_OUTPUT=$W/$1.spy \
            tc_expect_exit 0 "$TOKENCERT" renew --all --due --config "$W/etc/pinfd.conf" \
            --state-dir "$W/state-pinfd" --pin-source fd:3 3<"$W/pinfile"
        tc_assert_eq 1 "$(grep -cE '^[0-9]+: C_Login$' "$W/$1.spy" || true)" \
            "$1: one login for three credentials"
        tc_assert_eq 1 "$(grep -cE '^[0-9]+: C_Initialize$' "$W/$1.spy" || true)" \
            "$1: the module loaded once"
    }
    # verify_on_token NAME SUBJECT GENERATION [TEST_NOW]: the certificate status reports active is
    # on the token under NAME (read back with p11certs.py, not tokencert), has the subject and
    # verifies against the north CA.
    verify_on_token() {
        local sha f at found=""
        ASAN_OPTIONS=$SPY_ASAN TOKENCERT_TEST_NOW=${4:-} PKCS11SPY=$MODULE PKCS11SPY_OUTPUT=$W/status.spy \
            "$TOKENCERT" status "$1" --json --config "$W/etc/pinfd.conf" \
            --state-dir "$W/state-pinfd" >"$W/$1.json" 2>/dev/null || true
        tc_assert_eq "$3" "$(tc_json "$W/$1.json" 'j[0]["active"]["generation"]')" \
            "$1: generation $3 active"
        sha=$(tc_json "$W/$1.json" 'j[0]["active"]["sha256"].replace(":", "").lower()')
        rm -rf "$W/x-$1" && mkdir -p "$W/x-$1"
        python3 "$(dirname "$0")/../lib/p11certs.py" --export "$W/x-$1" "$MODULE" "$THIRD" \
            >"$W/x-$1.txt" || tc_fail "$1: reading the certificates back"
        tc_assert_eq "$3" "$(grep -cP "\t$1\$" "$W/x-$1.txt" || true)" "$1: $3 certificate(s) under its label"
        for f in "$W/x-$1"/*.der; do
            [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$sha" ] && found=$f
        done
        tc_assert_ne "" "$found" "$1: the active certificate is on the token"
        [ -n "$found" ] || return 0
        tc_assert_eq "$2" "$(openssl x509 -inform DER -in "$found" -noout -subject -nameopt RFC2253 |
            sed 's/^subject=//')" "$1: its subject"
        openssl x509 -inform DER -in "$found" -out "$W/$1.pem"
        # At the test clock's time: the renewed certificate starts in the clock's future.
        at=${4:-0}
        at=$(($(date +%s) + ${at//[^0-9]/} * 86400 + 60))
        tc_assert_match "$(openssl verify -attime "$at" -CAfile "$W/ca-north/ca.pem" "$W/$1.pem" 2>&1)" \
            ": OK" \
            "$1: verifies against its CA"
    }
    pinfd_run enroll-all
    for o in e f g; do
        tc_assert_match "$TC_OUT" "desk-$o: generation 1 installed and active" "fd:3: desk-$o issued"
    done
    verify_on_token desk-e "CN=5555555555,O=Practice E" 1
    verify_on_token desk-f "CN=6666666666,O=Practice F" 1
    verify_on_token desk-g "CN=7777777777,O=Practice G" 1
    # Most of a year on, all three are due again: renewed in one run, with one login.
    pinfd_run renew-all +340d
    for o in e f g; do
        tc_assert_match "$TC_OUT" "desk-$o: generation 2 installed and active" "fd:3: desk-$o renewed"
    done
    verify_on_token desk-e "CN=5555555555,O=Practice E" 2 +340d
    verify_on_token desk-f "CN=6666666666,O=Practice F" 2 +340d
    verify_on_token desk-g "CN=7777777777,O=Practice G" 2 +340d
fi

tc_finish
