#!/usr/bin/env bash
# Hooks of a configured credential: before and after renewal, on failure and on expiring, run
# with execve and their argument list verbatim (shell syntax in an argument is not interpreted),
# and environment variables describing the event: the credential, the old and new certificates'
# fingerprints and end dates, days left, the error. A before-renewal hook that fails stops the
# renewal. The fingerprints are checked against openssl's reading of the certificates. The expiring
# hook runs about once a day while a due credential is not renewed, the token absent too.
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
export TOKENCERT_TEST_CLOCK=enable
mkdir -p "$W/etc" "$W/hooks"

# The hook: appends its arguments and its TOKENCERT_* environment to a log, one line each.
cat >"$W/hook" <<'EOF'
#!/bin/sh
log=$1
shift
{
    echo "== $TOKENCERT_EVENT"
    for a in "$@"; do echo "arg: $a"; done
    env | grep '^TOKENCERT_' | sort
    echo "PATH=$PATH"
} >>"$log"
[ "$TOKENCERT_EVENT" != before-renewal ] || [ ! -e "${log%/*}/refuse" ] || exit 3
EOF
chmod 755 "$W/hook"

tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$W/ca" --cert-validity 90d
write_conf() { # write_conf CA-DIR
    cat >"$W/etc/tokencert.conf" <<EOF
cas = ( { name = "federation"; protocol = "local"; dir = "$1"; } );
credentials = ( {
    name = "office"; token = "$URI"; module = "$MODULE"; ca = "federation";
    subject = "CN=1234567890,O=Practice"; pin_source = "env:PIN";
    hooks = {
        before_renewal = [ "$W/hook", "$W/hooks/log", "before", "; touch $W/pwned" ];
        after_renewal = [ "$W/hook", "$W/hooks/log", "after", "\$(touch $W/pwned)" ];
        failure = [ "$W/hook", "$W/hooks/log", "failure", "|| touch $W/pwned" ];
        expiring = [ "$W/hook", "$W/hooks/log", "expiring" ];
    };
} );
EOF
}
write_conf "$W/ca"
hooklog() { cat "$W/hooks/log" 2>/dev/null || true; }
sha256_of_label() { # the SHA-256 fingerprint of the newest certificate labelled office, per openssl
    "$TOKENCERT" status office --json 2>/dev/null >"$W/s.json"
    tc_json "$W/s.json" 'j[0]["active"]["sha256"]'
}

# The first certificate: both renewal hooks run, in order, with their arguments verbatim.
tc_expect_exit 0 "$TOKENCERT" renew office
tc_assert_eq "before-renewal after-renewal" "$(hooklog | sed -n 's/^== //p' | tr '\n' ' ' | sed 's/ $//')" \
    "before and after renewal ran, in order"
tc_assert_contains "$(hooklog)" "arg: ; touch $W/pwned" "an argument with shell syntax arrives verbatim"
tc_assert_contains "$(hooklog)" "arg: \$(touch $W/pwned)" "... and another"
tc_assert_eq no "$(if [ -e "$W/pwned" ]; then echo yes; else echo no; fi)" "no shell interpreted them"
tc_assert_contains "$(hooklog)" "TOKENCERT_CREDENTIAL=office" "the hook knows the credential"
tc_assert_contains "$(hooklog)" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "a fixed, safe PATH"
tc_assert_not_contains "$(hooklog)" "$PIN" "no PIN in a hook's environment"
new=$(sha256_of_label)
"$TOKENCERT" export "$URI;object=office;type=cert" --module "$MODULE" -o "$W/c1.pem" >/dev/null 2>&1
tc_assert_eq "$(openssl x509 -in "$W/c1.pem" -noout -fingerprint -sha256 | sed 's/.*=//')" "$new" \
    "status names the installed certificate by its openssl fingerprint"
tc_assert_contains "$(hooklog)" "TOKENCERT_NEW_SHA256=$new" "after-renewal: the new certificate's fingerprint"

# A renewal: the old certificate described too.
: >"$W/hooks/log"
TOKENCERT_TEST_NOW=+70d tc_expect_exit 0 "$TOKENCERT" renew office
tc_assert_contains "$(hooklog)" "TOKENCERT_OLD_SHA256=$new" "renewal: the old certificate's fingerprint"
tc_assert_match "$(hooklog)" "TOKENCERT_DAYS_LEFT=(19|20)$" "renewal: days left of the old one"
tc_assert_match "$(hooklog)" "TOKENCERT_NEW_NOT_AFTER=20[0-9]{2}-" "renewal: the new end date"
# The new generation's URIs, in the hook and in status: they name the new key and certificate.
TOKENCERT_TEST_NOW=+70d "$TOKENCERT" status office --json 2>/dev/null >"$W/s2.json"
NEWID=$(tc_json "$W/s2.json" '[g["key_id"] for g in j[0]["generations"] if g["state"] == "active"][0]')
tc_assert_contains "$(hooklog)" "TOKENCERT_NEW_KEY_ID=$NEWID" "after-renewal: the new key's CKA_ID"
hook_cert_uri=$(hooklog | sed -n 's/^TOKENCERT_NEW_CERT_URI=//p')
hook_key_uri=$(hooklog | sed -n 's/^TOKENCERT_NEW_KEY_URI=//p')
tc_assert_eq "$hook_cert_uri" "$(tc_json "$W/s2.json" 'j[0]["active"]["cert_uri"]')" \
    "status --json names the certificate the hook was given"
tc_assert_eq "$hook_key_uri" "$(tc_json "$W/s2.json" 'j[0]["active"]["key_uri"]')" \
    "status --json names the key the hook was given"
tc_assert_match "$hook_key_uri" "type=private" "the key URI names the private key"
TOKENCERT_TEST_NOW=+70d tc_expect_exit 0 "$TOKENCERT" export "$hook_cert_uri" --module "$MODULE" \
    -o "$W/c2.pem"
tc_assert_eq "$(openssl x509 -in "$W/c2.pem" -noout -fingerprint -sha256 | sed 's/.*=//')" \
    "$(tc_json "$W/s2.json" 'j[0]["active"]["sha256"]')" \
    "the certificate URI selects the new certificate alone, although the old one shares the label"
TOKENCERT_TEST_NOW=+70d tc_expect_exit 0 "$TOKENCERT" list "$hook_key_uri" --module "$MODULE" \
    --login --pin-source env:PIN --json
tc_assert_eq "[\"$NEWID\"]" \
    "$(tc_json "$TC_OUT_FILE" '[c["id"] for t in j["tokens"] for c in t["credentials"]]')" \
    "the key URI selects the new key alone"
TOKENCERT_TEST_NOW=+70d tc_expect_exit 0 "$TOKENCERT" status office
tc_assert_contains "$TC_OUT" "key          $hook_key_uri" "status prints the key's URI"

# A before-renewal hook that fails: not renewed, nothing generated.
: >"$W/hooks/log"
touch "$W/hooks/refuse"
keys_before=$(store 'len(j["requests"])')
TOKENCERT_TEST_NOW=+71d tc_expect_exit 1 "$TOKENCERT" renew office
tc_assert_contains "$TC_ERR" "the before-renewal hook failed: not renewed" "a failing before hook stops it"
tc_assert_eq "$keys_before" "$(store 'len(j["requests"])')" \
    "a failing before hook: no request"
rm "$W/hooks/refuse"

# The CA fails, the certificate is past its due date: the failure and expiring hooks run with the
# error.
: >"$W/hooks/log"
write_conf "$W/no-such-ca"
TOKENCERT_TEST_NOW=+150d tc_expect_exit 1 "$TOKENCERT" renew --all --due
tc_assert_match "$(hooklog)" "^== failure" "the failure hook ran"
tc_assert_match "$(hooklog)" "^== expiring" "the expiring hook ran"
tc_assert_match "$(hooklog)" "TOKENCERT_ERROR=.*no-such-ca" "the hooks get the error"
tc_assert_contains "$(hooklog)" "arg: || touch $W/pwned" "failure hook: its arguments verbatim"
tc_assert_eq no "$(if [ -e "$W/pwned" ]; then echo yes; else echo no; fi)" "still no shell"
"$TOKENCERT" history office >"$W/h.txt" 2>/dev/null
tc_assert_match "$(cat "$W/h.txt")" "hook +ok +failure hook $W/hook ran" "the history records the hook"

# The expiring hook: about once a day, not at every timer run.
n_expiring() { hooklog | grep -c '^== expiring' || true; }
TOKENCERT_TEST_NOW=+150d tc_expect_exit 1 "$TOKENCERT" renew office
tc_assert_eq 2 "$(hooklog | grep -c '^== failure')" "a second failure the same day: its failure hook"
tc_assert_eq 1 "$(n_expiring)" "a second failure the same day: no second expiring hook"
TOKENCERT_TEST_NOW=+151d tc_expect_exit 1 "$TOKENCERT" renew --all --due
tc_assert_eq 2 "$(n_expiring)" "a day later: the expiring hook again"

# The token absent while the credential is due: deferred, and the expiring hook says so, with
# the certificate as recorded.
case "$TC_TOKEN_KIND" in
softhsm) mv "$TC_WORLD/softhsm/tokens" "$W/tokens.out" && mkdir "$TC_WORLD/softhsm/tokens" ;;
tpm) mv "$TPM2_PKCS11_STORE" "$W/tokens.out" && mkdir "$TPM2_PKCS11_STORE" ;;
esac
: >"$W/hooks/log"
TOKENCERT_TEST_NOW=+152d tc_expect_exit 5 "$TOKENCERT" renew --all --due
tc_assert_contains "$TC_ERR" "is not present: deferred until it is" "token absent: deferred"
tc_assert_match "$(hooklog)" "^== expiring" "token absent: the expiring hook ran"
tc_assert_contains "$(hooklog)" "TOKENCERT_ERROR=the token is not present" "token absent: the hook is told why"
tc_assert_match "$(hooklog)" "TOKENCERT_DAYS_LEFT=[78]$" "token absent: days left, as recorded"
tc_assert_match "$(hooklog)" "TOKENCERT_OLD_SHA256=[0-9A-F:]{95}$" "token absent: the certificate, as recorded"

tc_finish
