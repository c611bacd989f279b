#!/usr/bin/env bash
# A cfssl CA over HTTPS (cfssl serve on 127.0.0.1, its TLS certificate verified with the CA's
# ca_file): enroll --ca installs a certificate that chains to cfssl's CA; a named renew installs
# generation 2. With HMAC authentication (/authsign) the right key issues and a wrong one is
# refused with cfssl's message (exit 12), the token unchanged. A server whose TLS certificate the
# ca_file does not vouch for, and a server that is down, are errors (exit 1): nothing installed,
# the request recorded failed.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_tool openssl python3 pkcs11-tool cfssl cfssljson
tc_world_init
W=$TC_WORLD
C=$W/cfssl
URI="pkcs11:token=$TOKEN_LABEL"
COMMON=(--module "$MODULE" --pin-source env:PIN)
mkdir -p "$C" "$W/config/tokencert"
KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
WRONG=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210

# The certificates on the token. A request that fails keeps its key pair until prune (as with
# every CA): what must not change is the certificates.
certs() { tc_objects_snapshot "$W/objects.txt" && grep -E '^cert' "$W/objects.txt"; }
n_label() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>/dev/null |
    grep -c "label: *$1$" || true; }
# The certificate labelled $1 on the token, PEM, into $2.
token_cert() {
    pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --read-object --type cert \
        --label "$1" -o "$W/cert.der" >/dev/null 2>&1 || return 1
    openssl x509 -inform DER -in "$W/cert.der" -out "$2"
}

# cfssl's CA, a server certificate for 127.0.0.1, and a second CA nobody trusts.
(cd "$C" && echo '{"CN":"cfssl test CA","key":{"algo":"ecdsa","size":256}}' |
    cfssl gencert -initca - 2>/dev/null | cfssljson -bare ca)
(cd "$C" && echo '{"CN":"other CA","key":{"algo":"ecdsa","size":256}}' |
    cfssl gencert -initca - 2>/dev/null | cfssljson -bare other)
cat >"$C/open.json" <<EOF
{"signing":{"default":{"usages":["digital signature","key encipherment","client auth"],"expiry":"720h"},
 "profiles":{"server":{"usages":["digital signature","key encipherment","server auth"],"expiry":"720h"}}}}
EOF
cat >"$C/hmac.json" <<EOF
{"signing":{"default":{"usages":["digital signature","key encipherment","client auth"],"expiry":"720h",
  "auth_key":"key1"}},
 "auth_keys":{"key1":{"type":"standard","key":"$KEY"}}}
EOF
(cd "$C" && echo '{"CN":"127.0.0.1","hosts":["127.0.0.1"],"key":{"algo":"ecdsa","size":256}}' |
    cfssl gencert -ca ca.pem -ca-key ca-key.pem -config open.json -profile server - 2>/dev/null |
    cfssljson -bare srv)
[ -s "$C/srv.pem" ] || tc_die "cfssl could not make the server certificate"

free_port() {
    local p
    for p in $(shuf -i 20000-60000 -n 50); do
        tc__port_in_use "$p" || {
            echo "$p"
            return 0
        }
    done
    return 1
}
# serve NAME CONFIG TLS_CERT TLS_KEY: starts cfssl serve; sets PORT.
serve() {
    local i
    PORT=$(free_port) || tc_die "no free port"
    cfssl serve -address 127.0.0.1 -port "$PORT" -ca "$C/ca.pem" -ca-key "$C/ca-key.pem" \
        -config "$C/$2" -tls-cert "$3" -tls-key "$4" >"$C/$1.log" 2>&1 &
    eval "PID_$1=$!"
    tc_defer "kill $! 2>/dev/null"
    for i in $(seq 1 100); do
        tc__port_in_use "$PORT" && return 0
        sleep 0.1
    done
    tc__show_log "$C/$1.log"
    tc_die "cfssl serve did not start"
}
# config: the CAs, one per server
write_config() {
    cat >"$W/config/tokencert/tokencert.conf" <<EOF
cas = (
  { name = "cf"; protocol = "cfssl"; url = "https://127.0.0.1:$OPEN_PORT"; ca_file = "$C/ca.pem"; },
  { name = "cfh"; protocol = "cfssl"; url = "https://127.0.0.1:$HMAC_PORT/"; ca_file = "$C/ca.pem";
    auth = "hmac"; secret_source = "env:CFSSL_KEY"; },
  { name = "untrusted"; protocol = "cfssl"; url = "https://127.0.0.1:$OPEN_PORT"; ca_file = "$C/other.pem"; },
  { name = "down"; protocol = "cfssl"; url = "https://127.0.0.1:$DOWN_PORT"; ca_file = "$C/ca.pem"; },
  { name = "cfp"; protocol = "cfssl"; url = "https://127.0.0.1:$OPEN_PORT"; ca_file = "$C/ca.pem";
    profile = "server"; }
);
EOF
}
serve open open.json "$C/srv.pem" "$C/srv-key.pem"
OPEN_PORT=$PORT
serve hmac hmac.json "$C/srv.pem" "$C/srv-key.pem"
HMAC_PORT=$PORT
DOWN_PORT=$(free_port)
write_config
tc_expect_exit 0 "$TOKENCERT" config check

# enroll at cfssl: issued at once, on the token, chaining to cfssl's CA.
tc_expect_exit 0 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --label x --subject "CN=cfssl client,O=Practice" \
    --type ec:p256 --ca cf
tc_assert_eq 3 "$(n_label x)" "enroll --ca cf: key pair and certificate on the token"
token_cert x "$W/x1.pem" || tc_fail "enroll --ca cf: the certificate cannot be read back"
tc_assert_contains "$(openssl verify -CAfile "$C/ca.pem" "$W/x1.pem" 2>&1)" "OK" \
    "the certificate chains to cfssl's CA"
tc_assert_contains "$(openssl x509 -in "$W/x1.pem" -noout -subject -nameopt RFC2253)" \
    "CN=cfssl client" "the certificate carries the subject"

# renew x: generation 2 from cfssl.
tc_expect_exit 0 "$TOKENCERT" renew x "${COMMON[@]}"
tc_expect_exit 0 "$TOKENCERT" status x --json
tc_assert_eq 2 "$(tc_json "$TC_OUT_FILE" 'j[0]["active"]["generation"]')" "renew x: generation 2 active"
tc_assert_eq "cf|cfssl" "$(tc_json "$TC_OUT_FILE" 'j[0]["ca"] + "|" + j[0]["ca_protocol"]')" \
    "status: the cfssl CA"

# profile: the request names cfssl's signing profile (here "server": its extended key usage shows
# that cfssl signed with it); a profile for another protocol is a configuration error.
tc_expect_exit 0 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --label p --subject "CN=profile client" \
    --type ec:p256 --ca cfp
token_cert p "$W/p.pem" || tc_fail "profile: the certificate cannot be read back"
tc_assert_contains "$(openssl x509 -in "$W/p.pem" -noout -ext extendedKeyUsage 2>&1)" \
    "TLS Web Server Authentication" "profile = \"server\": cfssl signed with that profile"
tc_assert_not_contains "$(openssl x509 -in "$W/x1.pem" -noout -ext extendedKeyUsage 2>&1)" \
    "TLS Web Server Authentication" "without a profile: cfssl's default profile"
printf 'cas = ( { name = "l2"; protocol = "manual"; dir = "%s"; profile = "server"; } );\n' "$W" \
    >"$W/bad-profile.conf"
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/bad-profile.conf"
tc_assert_contains "$TC_OUT$TC_ERR" 'profile is used only with protocol "cfssl"' \
    "a profile for another protocol: refused, says why"

# HMAC: the right key issues; a wrong one is refused with cfssl's message, the token unchanged.
CFSSL_KEY=$KEY tc_expect_exit 0 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --label h \
    --subject "CN=hmac client" --type ec:p256 --ca cfh
tc_assert_eq 3 "$(n_label h)" "enroll --ca cfh (HMAC): key pair and certificate"
token_cert h "$W/h.pem" || tc_fail "HMAC: the certificate cannot be read back"
tc_assert_contains "$(openssl verify -CAfile "$C/ca.pem" "$W/h.pem" 2>&1)" "OK" \
    "HMAC: the certificate chains to cfssl's CA"
before=$(certs)
CFSSL_KEY=$WRONG tc_expect_exit 12 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --label hw \
    --subject "CN=wrong key" --type ec:p256 --ca cfh
tc_assert_contains "$TC_ERR" "invalid token" "a wrong HMAC key: cfssl's message"
tc_assert_not_contains "$TC_ERR$TC_OUT" "$WRONG" "a wrong HMAC key: the key is not shown"
tc_assert_eq "$before" "$(certs)" "a wrong HMAC key: no certificate installed"

# A server whose certificate the ca_file does not vouch for: a TLS error, nothing installed.
tc_expect_exit 1 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --label u \
    --subject "CN=untrusted" --type ec:p256 --ca untrusted
tc_assert_contains "$TC_ERR" "TLS verification of https://127.0.0.1:$OPEN_PORT/api/v1/cfssl/sign failed" \
    "an untrusted server: the TLS verification failure"
tc_assert_eq "$before" "$(certs)" "an untrusted server: no certificate installed"

tc_expect_exit 0 "$TOKENCERT" status u --json
tc_assert_eq "failed" "$(tc_json "$TC_OUT_FILE" 'j[0]["request"]["state"]')" \
    "an untrusted server: the request recorded failed"

# The server down: an error, the request recorded failed.
tc_expect_exit 1 "$TOKENCERT" enroll "$URI" "${COMMON[@]}" --label d \
    --subject "CN=down" --type ec:p256 --ca down
tc_assert_contains "$TC_ERR" "cannot reach https://127.0.0.1:$DOWN_PORT/api/v1/cfssl/sign" \
    "the server down: named"
tc_expect_exit 0 "$TOKENCERT" status d --json
tc_assert_eq "failed" "$(tc_json "$TC_OUT_FILE" 'j[0]["request"]["state"]')" \
    "the server down: the request recorded failed"
tc_assert_eq "$before" "$(certs)" "the server down: no certificate installed"

tc_finish
