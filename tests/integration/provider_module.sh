#!/usr/bin/env bash
# tokencert.so, the installable OpenSSL 3 provider, loaded by the openssl program itself from the
# build tree (OPENSSL_MODULES): keys made with `tokencert keygen` sign through pkcs11: URIs in
# `openssl pkeyutl`, `openssl req`, `openssl cms` and `openssl s_client` (TLS client
# authentication against s_server on 127.0.0.1), every result checked by openssl alone against
# the public key `tokencert export` reads from the token. The PKCS#11 module comes from the
# environment or from openssl.cnf; the PIN from the URI's pin-source or pin-value, or OpenSSL's
# passphrase callback (-passin). A wrong PIN is a clear error after exactly one C_Login (counted
# with OpenSC's pkcs11-spy), and the token's objects are unchanged by all of it.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_tool openssl python3
if [ -z "${TC_OSSL_MODULES-}" ] || [ ! -f "$TC_OSSL_MODULES/tokencert.so" ]; then
    tc_die "TC_OSSL_MODULES must name the build tree's directory of tokencert.so" \
        "(got '${TC_OSSL_MODULES-}'); run through ctest"
fi
SPY=${TC_PKCS11_SPY:-/usr/lib/x86_64-linux-gnu/pkcs11-spy.so}
tc__require_file "$SPY" "OpenSC's pkcs11-spy"
tc_world_init
W=$TC_WORLD
TOKEN=${TOKEN_LABEL// /%20}
printf '%s\n' "$PIN" >"$W/pin"
chmod 600 "$W/pin"

# Two keys made by tokencert, and their public halves as tokencert exports them.
for k in ec:p256 rsa:2048; do
    label=pm-${k%%:*}
    tc_expect_exit 0 "$TOKENCERT" keygen "pkcs11:token=$TOKEN" --label "$label" --type "$k" \
        --pin-source "file:$W/pin" --module "$MODULE"
    tc_expect_exit 0 "$TOKENCERT" export "pkcs11:token=$TOKEN;object=$label;type=public" \
        --module "$MODULE" -o "$W/$label.pub"
done
KEC="pkcs11:token=$TOKEN;object=pm-ec;type=private;pin-source=file:$W/pin"
KRSA="pkcs11:token=$TOKEN;object=pm-rsa;type=private;pin-value=$PIN"
tc_objects_snapshot "$W/snapshot.before"

export OPENSSL_MODULES=$TC_OSSL_MODULES TOKENCERT_PROVIDER_MODULE=$MODULE
P=(-provider default -provider tokencert)

# The module loads and says who it is.
tc_expect_exit 0 openssl list -providers -provider tokencert
tc_assert_contains "$TC_OUT" "tokencert: keys on PKCS#11 tokens" "openssl list names the provider"
tc_assert_contains "$TC_OUT" "status: active" "the provider is active"

# pkeyutl: a signature over a digest, verified against the exported public key.
head -c 3000 /dev/urandom >"$W/msg"
openssl dgst -sha256 -binary "$W/msg" >"$W/msg.sha256"
tc_expect_exit 0 openssl pkeyutl "${P[@]}" -sign -inkey "$KEC" -in "$W/msg.sha256" \
    -out "$W/sig.ec"
tc_expect_exit 0 openssl pkeyutl -verify -pubin -inkey "$W/pm-ec.pub" -in "$W/msg.sha256" \
    -sigfile "$W/sig.ec"
tc_assert_contains "$TC_OUT" "Signature Verified Successfully" "ECDSA signature (pin-source)"
tc_expect_exit 0 openssl pkeyutl "${P[@]}" -sign -inkey "$KRSA" -in "$W/msg.sha256" \
    -pkeyopt digest:sha256 -out "$W/sig.rsa"
tc_expect_exit 0 openssl pkeyutl -verify -pubin -inkey "$W/pm-rsa.pub" -in "$W/msg.sha256" \
    -pkeyopt digest:sha256 -sigfile "$W/sig.rsa"
tc_assert_contains "$TC_OUT" "Signature Verified Successfully" "RSA PKCS#1 signature (pin-value)"
tc_expect_exit 0 openssl pkeyutl "${P[@]}" -sign -inkey "$KRSA" -in "$W/msg.sha256" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -out "$W/sig.pss"
tc_expect_exit 0 openssl pkeyutl -verify -pubin -inkey "$W/pm-rsa.pub" -in "$W/msg.sha256" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -sigfile "$W/sig.pss"
tc_assert_contains "$TC_OUT" "Signature Verified Successfully" "RSA-PSS signature"

# Loaded before the default provider, as many write it, on a token whose module does not use
# OpenSSL itself (tpm2-pkcs11 does, and then needs the default provider first:
# docs/openssl-provider.md).
if [ "$TC_TOKEN_KIND" = softhsm ]; then
    tc_expect_exit 0 openssl pkeyutl -provider tokencert -provider default -sign -inkey "$KEC" \
        -in "$W/msg.sha256" -out "$W/sig.order"
    tc_expect_exit 0 openssl pkeyutl -verify -pubin -inkey "$W/pm-ec.pub" -in "$W/msg.sha256" \
        -sigfile "$W/sig.order"
    tc_assert_contains "$TC_OUT" "Signature Verified Successfully" "tokencert loaded first"
fi

# No PIN in the URI: OpenSSL's passphrase callback gives it (here from -passin).
tc_expect_exit 0 openssl pkeyutl "${P[@]}" -sign -inkey "pkcs11:token=$TOKEN;object=pm-ec;type=private" \
    -passin "file:$W/pin" -in "$W/msg.sha256" -out "$W/sig.passin"
tc_expect_exit 0 openssl pkeyutl -verify -pubin -inkey "$W/pm-ec.pub" -in "$W/msg.sha256" \
    -sigfile "$W/sig.passin"
tc_assert_contains "$TC_OUT" "Signature Verified Successfully" "PIN from the passphrase callback"

# req: a CSR signed on the token, whose public key is the token's.
tc_expect_exit 0 openssl req "${P[@]}" -new -key "$KEC" -subj "/O=tokencert test/CN=pm ec" \
    -out "$W/ec.csr"
tc_expect_exit 0 openssl req -in "$W/ec.csr" -verify -noout
tc_assert_contains "$TC_OUT$TC_ERR" "verify OK" "the CSR's self-signature verifies"
openssl req -in "$W/ec.csr" -pubkey -noout >"$W/ec.csr.pub"
tc_assert_files_eq "$W/pm-ec.pub" "$W/ec.csr.pub" "the CSR carries the token's public key"

# A certificate for the token key from the test CA (for CMS and TLS).
tc_fixture_ca
printf 'extendedKeyUsage=clientAuth,emailProtection\nkeyUsage=digitalSignature\n' >"$W/cli.ext"
tc__fix_log openssl x509 -req -in "$W/ec.csr" -CA "$TC_CA_CERT" -CAkey "$TC_CA_KEY" \
    -set_serial 0x7e01 -days 30 -extfile "$W/cli.ext" -out "$W/ec.crt"

# cms: SignedData signed on the token, verified against the CA.
tc_expect_exit 0 openssl cms "${P[@]}" -sign -nodetach -binary -in "$W/msg" -signer "$W/ec.crt" \
    -inkey "$KEC" -outform DER -out "$W/msg.p7s"
tc_expect_exit 0 openssl cms -verify -binary -inform DER -in "$W/msg.p7s" -CAfile "$TC_CA_CERT" \
    -purpose any -out "$W/msg.out"
tc_assert_contains "$TC_ERR" "Verification successful" "CMS signature verifies"
tc_assert_files_eq "$W/msg" "$W/msg.out" "CMS content intact"

# s_client: TLS client authentication with the token key against s_server on 127.0.0.1.
tc__fix_log openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/srv.key" -subj "/CN=localhost" -out "$W/srv.csr"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$W/srv.ext"
tc__fix_log openssl x509 -req -in "$W/srv.csr" -CA "$TC_CA_CERT" -CAkey "$TC_CA_KEY" \
    -set_serial 0x5e01 -days 30 -extfile "$W/srv.ext" -out "$W/srv.pem"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$port" -naccept 1 -www -Verify 1 -CAfile "$TC_CA_CERT" \
    -cert "$W/srv.pem" -key "$W/srv.key" >"$W/s_server.out" 2>&1 </dev/null &
pid=$!
tc_defer "kill $pid 2>/dev/null || true"
for _ in $(seq 50); do
    grep -q '^ACCEPT' "$W/s_server.out" && break
    sleep 0.1
done
printf 'GET / HTTP/1.0\r\n\r\n' >"$W/request"
tc_expect_exit 0 timeout 60 openssl s_client "${P[@]}" -connect "127.0.0.1:$port" -ign_eof \
    -cert "$W/ec.crt" -key "$KEC" -CAfile "$TC_CA_CERT" -verify_return_error <"$W/request"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
printf '%s\n' "$TC_OUT" | sed -n '/^Client certificate/,/^-----END CERTIFICATE-----/p' |
    sed -n '/^-----BEGIN CERTIFICATE-----/,$p' >"$W/seen.pem"
openssl x509 -in "$W/ec.crt" -outform PEM >"$W/ec.crt.pem"
tc_assert_files_eq "$W/ec.crt.pem" "$W/seen.pem" "TLS: the server saw the token's certificate"
tc_assert_contains "$(cat "$W/s_server.out")" "depth=0 O = tokencert test, CN = pm ec"$'\n'"verify return:1" \
    "TLS: the server verified the client certificate"

# openssl.cnf instead of the environment: the provider's section names the PKCS#11 module.
cat >"$W/openssl.cnf" <<EOF
openssl_conf = tc_init
[tc_init]
providers = tc_providers
[tc_providers]
default = tc_default
tokencert = tc_tokencert
[tc_default]
activate = 1
[tc_tokencert]
activate = 1
pkcs11-module = $MODULE
EOF
tc_expect_exit 0 env -u TOKENCERT_PROVIDER_MODULE OPENSSL_CONF="$W/openssl.cnf" \
    openssl pkeyutl -sign -inkey "$KEC" -in "$W/msg.sha256" -out "$W/sig.conf"
tc_expect_exit 0 openssl pkeyutl -verify -pubin -inkey "$W/pm-ec.pub" -in "$W/msg.sha256" \
    -sigfile "$W/sig.conf"
tc_assert_contains "$TC_OUT" "Signature Verified Successfully" "module named in openssl.cnf"

# A wrong PIN: a clear error, one C_Login, no retry; the right PIN still works afterwards.
bad=$((PIN + 1))
tc_expect_exit 1 env TOKENCERT_PROVIDER_MODULE="$SPY" PKCS11SPY="$MODULE" \
    PKCS11SPY_OUTPUT="$W/spy.log" openssl pkeyutl "${P[@]}" -sign \
    -inkey "pkcs11:token=$TOKEN;object=pm-ec;type=private;pin-value=$bad" \
    -in "$W/msg.sha256" -out "$W/sig.bad"
tc_assert_contains "$TC_ERR" "rejected the PIN (CKR_PIN_INCORRECT); not retried" \
    "wrong PIN: the error says so"
# (openssl itself echoes the URI it was given; the provider's own messages never show the PIN.)
tc_assert_not_contains "$(grep ":tokencert:" <<<"$TC_ERR" || true)" "$bad" \
    "wrong PIN: the provider does not echo the PIN"
tc_assert_eq 1 "$(grep -c 'C_Login' "$W/spy.log" || true)" "wrong PIN: exactly one C_Login"
tc_expect_exit 0 openssl pkeyutl "${P[@]}" -sign -inkey "$KEC" -in "$W/msg.sha256" \
    -out "$W/sig.after"

# A URI that selects no key is an error naming it.
tc_expect_exit 1 openssl pkeyutl "${P[@]}" -sign \
    -inkey "pkcs11:token=$TOKEN;object=no-such-key;type=private;pin-source=file:$W/pin" \
    -in "$W/msg.sha256" -out "$W/sig.none"
tc_assert_contains "$TC_ERR" "no-such-key" "a missing key is named"

tc_objects_snapshot "$W/snapshot.after"
tc_assert_files_eq "$W/snapshot.before" "$W/snapshot.after" "the token's objects are unchanged"
tc_finish
