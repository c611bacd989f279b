#!/usr/bin/env bash
# The embedded CA: `ca init` (the certificate read back with openssl, the key on the CA's own
# SoftHSM token and not extractable, a second init refused), requests waiting for manual approval
# (enroll exits 8 and names the request, list --json shows it pending), approve and reject, a
# request that is not pending or does not exist, a corrupt request, and the issued certificates
# verified and inspected with openssl. The user's token is the world's kind; the CA is always on
# its own SoftHSM token.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_tool openssl sqlite3 xxd sha256sum
tc_world_init

SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
CA=$TC_WORLD/ca
CA_SUBJECT="CN=Test practice CA,O=tokencert test,C=DE"
USER_URI="pkcs11:token=$TOKEN_LABEL"

# ca_p11 ARGS...: pkcs11-tool on the CA's own token, logged in with the CA's PIN.
ca_p11() {
    SOFTHSM2_CONF=$CA/softhsm2.conf pkcs11-tool --module "$SOFTHSM" --token-label tokencert-ca \
        --login --pin "$(cat "$CA/pin")" "$@"
}

# issued_cert ID FILE: the certificate of request ID as the CA's index holds it, PEM.
issued_cert() {
    sqlite3 "$CA/ca.db" "SELECT hex(cert) FROM requests WHERE id = $1" | xxd -r -p >"$2.der"
    openssl x509 -inform DER -in "$2.der" -out "$2"
}

# list_json: `ca list --json` into $TC_WORLD/list.json.
list_json() {
    tc_expect_exit 0 "$TOKENCERT" ca list --ca-dir "$CA" --json
    cp "$TC_OUT_FILE" "$TC_WORLD/list.json"
}

# ext FILE NAME: one extension as openssl prints it, on one line ("X509v3 Key Usage: critical
# Digital Signature").
ext() {
    openssl x509 -in "$1" -noout -ext "$2" | tr -s '\n ' '  ' | sed 's/ $//'
}

unchanged() {
    tc_objects_snapshot "$TC_WORLD/snapshot.now"
    tc_assert_files_eq "$TC_WORLD/snapshot.base" "$TC_WORLD/snapshot.now" "token unchanged: $1"
}

# ---------------------------------------------------------------------------------------------
# init

tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$CA" --subject "$CA_SUBJECT" --approval manual \
    --cert-validity 30d --validity 5y
tc_assert_contains "$TC_OUT" "manual approval" "init: says the approval mode"
for f in ca.db ca.pem softhsm2.conf tokens pin so-pin; do
    if [ -e "$CA/$f" ]; then tc_pass "init: $f exists"; else tc_fail "init: $f missing"; fi
done
tc_assert_eq 700 "$(stat -c %a "$CA")" "init: the CA directory is private"
tc_assert_eq "600 600" "$(stat -c %a "$CA/pin") $(stat -c %a "$CA/so-pin")" "init: PIN files are 0600"

openssl x509 -in "$CA/ca.pem" -noout -text >"$TC_WORLD/ca.txt"
CA_TEXT=$(cat "$TC_WORLD/ca.txt")
tc_assert_eq "subject=$CA_SUBJECT" "$(openssl x509 -in "$CA/ca.pem" -noout -subject -nameopt RFC2253)" \
    "init: the CA subject as given"
tc_assert_eq "issuer=$CA_SUBJECT" "$(openssl x509 -in "$CA/ca.pem" -noout -issuer -nameopt RFC2253)" \
    "init: self-signed"
tc_assert_eq "X509v3 Basic Constraints: critical CA:TRUE" "$(ext "$CA/ca.pem" basicConstraints)" \
    "init: CA:TRUE, critical"
tc_assert_eq "X509v3 Key Usage: critical Certificate Sign, CRL Sign" "$(ext "$CA/ca.pem" keyUsage)" \
    "init: keyCertSign and cRLSign, critical"
tc_assert_match "$CA_TEXT" "Subject Key Identifier" "init: SKI"
tc_assert_match "$CA_TEXT" "Authority Key Identifier" "init: AKI"
tc_assert_match "$CA_TEXT" "ecdsa-with-SHA256" "init: signed with ECDSA-SHA256 (default ec:p256)"
tc_assert_match "$(openssl verify -CAfile "$CA/ca.pem" "$CA/ca.pem" 2>&1)" ": OK$" \
    "init: the self-signature verifies"
nb=$(date -d "$(openssl x509 -in "$CA/ca.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$CA/ca.pem" -noout -enddate | cut -d= -f2)" +%s)
tc_assert_eq $((5 * 365 * 86400)) $((na - nb)) "init: validity as given (5y = 5 x 365 days)"

# The key sits on the CA's own token, not extractable, and it is the certificate's key.
ca_p11 --list-objects --type privkey >"$TC_WORLD/ca-keys.txt" 2>&1
tc_assert_eq 1 "$(grep -c '^Private Key Object' "$TC_WORLD/ca-keys.txt")" "init: one private key on the CA token"
tc_assert_match "$(cat "$TC_WORLD/ca-keys.txt")" "label: +ca$" "init: the CA key is labelled ca"
access=$(grep 'Access:' "$TC_WORLD/ca-keys.txt")
tc_assert_match "$access" "sensitive" "init: the CA key is sensitive"
tc_assert_match "$access" "never extractable" "init: the CA key was never extractable"
if [[ "$access" =~ (^|[:,][[:space:]]*)extractable ]]; then
    tc_fail "init: the CA key is extractable ($access)"
else
    tc_pass "init: the CA key is not extractable"
fi
SOFTHSM2_CONF=$CA/softhsm2.conf MODULE=$SOFTHSM TC_P11_TOKEN=tokencert-ca \
    tc_pubkey "object=ca" "$TC_WORLD/ca-pub.der" || tc_fail "p11tool reads the CA token's public key"
openssl pkey -pubin -inform DER -in "$TC_WORLD/ca-pub.der" -outform DER -out "$TC_WORLD/ca-pub.n.der"
openssl x509 -in "$CA/ca.pem" -noout -pubkey | openssl pkey -pubin -outform DER -out "$TC_WORLD/ca-cert-pub.der"
tc_assert_files_eq "$TC_WORLD/ca-pub.n.der" "$TC_WORLD/ca-cert-pub.der" \
    "init: the certificate's public key is the CA token's key"
tc_assert_eq 1 "$(ls "$CA/tokens" | wc -l)" "init: one token in the CA directory"

tc_expect_exit 0 "$TOKENCERT" ca cert --ca-dir "$CA"
tc_assert_eq "$(openssl x509 -in "$CA/ca.pem" -outform DER | sha256sum)" \
    "$(printf '%s\n' "$TC_OUT" | openssl x509 -outform DER | sha256sum)" "ca cert prints the CA certificate"

# A second init into the same directory is refused and changes nothing.
sha_before=$(sha256sum "$CA/ca.pem" "$CA/ca.db" "$CA/pin")
tc_expect_exit 2 "$TOKENCERT" ca init --ca-dir "$CA"
tc_assert_match "$TC_ERR" "a CA already exists in '$CA'" "second init: refused, says why"
tc_assert_eq "$sha_before" "$(sha256sum "$CA/ca.pem" "$CA/ca.db" "$CA/pin")" "second init: nothing changed"

# Bad parameters: nothing is left behind.
tc_expect_exit 2 "$TOKENCERT" ca init --ca-dir "$TC_WORLD/ca-bad" --subject "CN=x,C=Germany"
tc_assert_match "$TC_ERR" "C must be a two-letter country code .*'Germany'" "init, bad subject: names the part"
tc_assert_eq no "$(test -e "$TC_WORLD/ca-bad/ca.db" && echo yes || echo no)" "init, bad subject: no CA"
tc_expect_exit 2 "$TOKENCERT" ca init --ca-dir "$TC_WORLD/ca-bad" --approval sometimes
tc_assert_match "$TC_ERR" "--approval is auto or manual" "init, bad approval: refused"
tc_expect_exit 2 "$TOKENCERT" ca init --ca-dir "$TC_WORLD/ca-bad" --validity 10x
tc_assert_match "$TC_ERR" "--validity" "init, bad validity: refused"
# Durations that overflow a time (undefined behaviour before, issue 16 defect 8): a usage error
# (exit 2) naming the value, and no CA.
BIG=9223372036854775807s
for opt in --validity --cert-validity; do
    tc_expect_exit 2 "$TOKENCERT" ca init --ca-dir "$TC_WORLD/ca-bad" "$opt" "$BIG"
    tc_assert_contains "$TC_ERR" "$opt: '$BIG' is longer than 1000 years" "init, $opt $BIG: refused, value named"
done
tc_expect_exit 2 "$TOKENCERT" ca init --ca-dir "$TC_WORLD/ca-bad" --validity 300000000y
tc_assert_contains "$TC_ERR" "--validity: '300000000y' is longer than 1000 years" "init, --validity 300000000y: a clear error"
tc_assert_not_contains "$TC_ERR" "internal error" "init, --validity 300000000y: no ASN.1 internal error"
tc_assert_eq no "$(test -e "$TC_WORLD/ca-bad/ca.db" && echo yes || echo no)" "init, huge validity: no CA"
tc_expect_exit 2 env TOKENCERT_TEST_CLOCK=enable TOKENCERT_TEST_NOW=+$BIG \
    "$TOKENCERT" ca list --ca-dir "$TC_WORLD/ca-bad"
tc_assert_contains "$TC_ERR" "TOKENCERT_TEST_NOW: '+$BIG' is longer than 1000 years" "TOKENCERT_TEST_NOW=+$BIG: refused, value named"
tc_expect_exit 4 "$TOKENCERT" ca list --ca-dir "$TC_WORLD/nothing-here"
tc_assert_match "$TC_ERR" "no CA in '$TC_WORLD/nothing-here'" "list without a CA: exit 4, says so"

tc_objects_snapshot "$TC_WORLD/snapshot.base"

# ---------------------------------------------------------------------------------------------
# Manual approval: enroll waits

tc_expect_exit 8 "$TOKENCERT" enroll "$USER_URI" --module "$MODULE" --pin-source env:PIN \
    --ca-dir "$CA" --label alice --subject "CN=1234567890,O=Practice,C=DE" --type ec:p256
tc_assert_contains "$TC_OUT" "request 1 is pending approval at the local CA (tokencert ca approve 1)" \
    "manual: enroll names the pending request"
tc_assert_contains "$TC_OUT" "the key 'alice' stays on the token" "manual: says the key stays"
tc_p11_login --list-objects >"$TC_WORLD/objs.txt" 2>&1
tc_assert_eq 1 "$(grep -A1 '^Private Key Object' "$TC_WORLD/objs.txt" | grep -c 'label: *alice$')" \
    "manual: the key is on the token"
tc_assert_eq 0 "$(grep -c '^Certificate Object' "$TC_WORLD/objs.txt" || true)" \
    "manual: no certificate yet"
list_json
tc_jexprs "$TC_WORLD/list.json" 'j["version"]' 'len(j["requests"])' 'j["requests"][0]["id"]' \
    'j["requests"][0]["state"]' 'j["requests"][0]["subject"]' 'j["requests"][0]["decided"]' \
    'j["requests"][0]["serial"]' 'j["requests"][0]["not_after"]'
tc_assert_eq "1 1 1 pending" "${R[0]} ${R[1]} ${R[2]} ${R[3]}" "list --json: one pending request"
tc_assert_eq "CN=1234567890,O=Practice,C=DE" "${R[4]}" "list --json: the subject in RFC 4514"
tc_assert_eq "null null null" "${R[5]} ${R[6]} ${R[7]}" "list --json: no decision, serial or end yet"

# approve: issued
tc_expect_exit 0 "$TOKENCERT" ca approve 1 --ca-dir "$CA"
tc_assert_contains "$TC_OUT" "request 1 issued" "approve: says so"
list_json
tc_jexprs "$TC_WORLD/list.json" 'j["requests"][0]["state"]' 'j["requests"][0]["serial"]' \
    'j["requests"][0]["decided"] is not None'
tc_assert_eq issued "${R[0]}" "approve: list shows it issued"
tc_assert_eq true "${R[2]}" "approve: decided is set"
issued_cert 1 "$TC_WORLD/alice.pem"
tc_assert_eq "serial=${R[1]}" "$(openssl x509 -in "$TC_WORLD/alice.pem" -noout -serial)" \
    "approve: the listed serial is the certificate's"
tc_assert_match "${R[1]}" "^[0-9A-F]{32}$" "approve: a 128-bit serial"

openssl x509 -in "$TC_WORLD/alice.pem" -noout -text >"$TC_WORLD/alice.txt"
T=$(cat "$TC_WORLD/alice.txt")
tc_assert_match "$(openssl verify -CAfile "$CA/ca.pem" -purpose sslclient "$TC_WORLD/alice.pem" 2>&1)" \
    ": OK$" "approve: verifies against ca.pem for client authentication"
tc_assert_eq "subject=CN=1234567890,O=Practice,C=DE" \
    "$(openssl x509 -in "$TC_WORLD/alice.pem" -noout -subject -nameopt RFC2253)" "approve: subject from the request"
tc_assert_eq "issuer=$CA_SUBJECT" "$(openssl x509 -in "$TC_WORLD/alice.pem" -noout -issuer -nameopt RFC2253)" \
    "approve: issuer is the CA"
tc_assert_eq "X509v3 Basic Constraints: critical CA:FALSE" "$(ext "$TC_WORLD/alice.pem" basicConstraints)" \
    "approve: CA:FALSE, critical"
tc_assert_eq "X509v3 Key Usage: critical Digital Signature" "$(ext "$TC_WORLD/alice.pem" keyUsage)" \
    "approve: keyUsage digitalSignature only (EC), critical"
tc_assert_eq "X509v3 Extended Key Usage: TLS Web Client Authentication" \
    "$(ext "$TC_WORLD/alice.pem" extendedKeyUsage)" "approve: clientAuth only"
ca_ski=$(grep -A1 'Subject Key Identifier' "$TC_WORLD/ca.txt" | tail -1 | tr -d ' ')
tc_assert_eq "$ca_ski" "$(grep -A1 'Authority Key Identifier' "$TC_WORLD/alice.txt" | tail -1 | tr -d ' ' | sed 's/^keyid://')" \
    "approve: AKI is the CA's SKI"
tc_assert_match "$T" "Subject Key Identifier" "approve: SKI"
nb=$(date -d "$(openssl x509 -in "$TC_WORLD/alice.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$TC_WORLD/alice.pem" -noout -enddate | cut -d= -f2)" +%s)
tc_assert_eq $((30 * 86400 + 300)) $((na - nb)) "approve: 30 days from issue, starting 5 minutes early"
now=$(date +%s)
if [ "$nb" -le $((now - 290)) ] && [ "$nb" -ge $((now - 400)) ]; then
    tc_pass "approve: starts about 5 minutes before now"
else
    tc_fail "approve: starts at $nb, now is $now"
fi
tc_pubkey "object=alice" "$TC_WORLD/alice-tok.der" || tc_fail "p11tool reads alice's public key"
openssl pkey -pubin -inform DER -in "$TC_WORLD/alice-tok.der" -outform DER -out "$TC_WORLD/alice-tok.n.der"
openssl x509 -in "$TC_WORLD/alice.pem" -noout -pubkey | openssl pkey -pubin -outform DER -out "$TC_WORLD/alice-cert.der"
tc_assert_files_eq "$TC_WORLD/alice-tok.n.der" "$TC_WORLD/alice-cert.der" \
    "approve: the certificate carries the token key"

# approve again, reject an issued request, unknown ids
tc_expect_exit 2 "$TOKENCERT" ca approve 1 --ca-dir "$CA"
tc_assert_contains "$TC_ERR" "request 1 is already issued" "approve twice: exit 2, says so"
tc_expect_exit 2 "$TOKENCERT" ca reject 1 --ca-dir "$CA" --reason "too late"
tc_assert_contains "$TC_ERR" "request 1 is already issued" "reject an issued request: exit 2"
tc_expect_exit 4 "$TOKENCERT" ca approve 99 --ca-dir "$CA"
tc_assert_contains "$TC_ERR" "no request 99" "approve an unknown id: exit 4"
tc_expect_exit 4 "$TOKENCERT" ca reject 99 --ca-dir "$CA" --reason x
tc_assert_contains "$TC_ERR" "no request 99" "reject an unknown id: exit 4"
tc_expect_exit 2 "$TOKENCERT" ca approve one --ca-dir "$CA"
tc_assert_contains "$TC_ERR" "'one' is not a request number" "approve a non-number: exit 2"
tc_expect_exit 2 "$TOKENCERT" ca reject 1 --ca-dir "$CA"
tc_assert_contains "$TC_ERR" "--reason" "reject without a reason: exit 2"

# reject
tc_expect_exit 8 "$TOKENCERT" enroll "$USER_URI" --module "$MODULE" --pin-source env:PIN \
    --ca-dir "$CA" --label bob --subject "CN=2345678901" --type ec:p256
tc_assert_contains "$TC_OUT" "request 2 is pending" "second request pending"
tc_expect_exit 0 "$TOKENCERT" ca reject 2 --ca-dir "$CA" --reason "office number unknown"
list_json
tc_jexprs "$TC_WORLD/list.json" '[r["state"] for r in j["requests"]]' 'j["requests"][1]["reason"]' \
    'j["requests"][1]["serial"]'
tc_assert_eq '["issued","rejected"]' "${R[0]}" "reject: list shows it rejected"
tc_assert_eq "office number unknown" "${R[1]}" "reject: the reason is kept"
tc_assert_eq null "${R[2]}" "reject: no serial"
tc_expect_exit 2 "$TOKENCERT" ca approve 2 --ca-dir "$CA"
tc_assert_contains "$TC_ERR" "request 2 is already rejected" "approve a rejected request: exit 2"
tc_expect_exit 0 "$TOKENCERT" ca list --ca-dir "$CA"
tc_assert_match "$TC_OUT" "2 +rejected .*office number unknown" "list: the rejection in the table"

# ---------------------------------------------------------------------------------------------
# Requests made elsewhere: submit, a requested start, SANs copied, corrupt requests refused

openssl req -new -newkey rsa:2048 -nodes -keyout "$TC_WORLD/sw.key" -subj "/CN=software client" \
    -addext "subjectAltName=DNS:client.example,email:ops@example.org" \
    -addext "keyUsage=keyCertSign" -out "$TC_WORLD/sw.csr" 2>/dev/null
tc_expect_exit 8 "$TOKENCERT" ca submit "$TC_WORLD/sw.csr" --ca-dir "$CA" --not-before 2031-01-01T00:00:00Z
tc_assert_contains "$TC_OUT" "request 3 is pending approval" "submit: pending under manual approval"
tc_expect_exit 0 "$TOKENCERT" ca approve 3 --ca-dir "$CA"
issued_cert 3 "$TC_WORLD/sw.pem"
openssl x509 -in "$TC_WORLD/sw.pem" -noout -text >"$TC_WORLD/sw.txt"
T=$(cat "$TC_WORLD/sw.txt")
tc_assert_eq "notBefore=Jan  1 00:00:00 2031 GMT" "$(openssl x509 -in "$TC_WORLD/sw.pem" -noout -startdate)" \
    "submit --not-before: the certificate starts exactly then"
tc_assert_eq "notAfter=Jan 31 00:00:00 2031 GMT" "$(openssl x509 -in "$TC_WORLD/sw.pem" -noout -enddate)" \
    "submit --not-before: and lasts the issue validity"
tc_assert_match "$T" "DNS:client.example, email:ops@example.org" "the request's SANs are copied"
tc_assert_eq "X509v3 Key Usage: critical Digital Signature, Key Encipherment" \
    "$(ext "$TC_WORLD/sw.pem" keyUsage)" \
    "RSA: digitalSignature and keyEncipherment; the requested keyCertSign is not taken"
tc_assert_not_contains "$T" "Certificate Sign" "no requested keyCertSign"

n_before=$(sqlite3 "$CA/ca.db" "SELECT count(*) FROM requests")
openssl req -in "$TC_WORLD/sw.csr" -outform DER -out "$TC_WORLD/sw.csr.der"
python3 - "$TC_WORLD/sw.csr.der" "$TC_WORLD/corrupt.der" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[-5] ^= 0x5A  # inside the signature
open(sys.argv[2], "wb").write(d)
EOF
tc_expect_exit 9 "$TOKENCERT" ca submit "$TC_WORLD/corrupt.der" --ca-dir "$CA"
tc_assert_match "$TC_ERR" "signature does not verify" "a request with a broken signature: exit 9, says why"
printf 'not a request at all\n' >"$TC_WORLD/garbage.der"
tc_expect_exit 9 "$TOKENCERT" ca submit "$TC_WORLD/garbage.der" --ca-dir "$CA"
tc_assert_match "$TC_ERR" "not a PKCS#10 request \(DER or PEM\)" "garbage: exit 9, says why"
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' \
    >"$TC_WORLD/broken.pem"
tc_expect_exit 9 "$TOKENCERT" ca submit "$TC_WORLD/broken.pem" --ca-dir "$CA"
tc_assert_match "$TC_ERR" "not a PEM CERTIFICATE REQUEST block" "broken PEM: exit 9, says why"
head -c 200 "$TC_WORLD/sw.csr.der" >"$TC_WORLD/short.der"
tc_expect_exit 9 "$TOKENCERT" ca submit "$TC_WORLD/short.der" --ca-dir "$CA"
tc_assert_eq "$n_before" "$(sqlite3 "$CA/ca.db" "SELECT count(*) FROM requests")" \
    "corrupt requests: nothing recorded"

# An automatic CA issues at submit.
tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$TC_WORLD/ca-auto"
tc_assert_contains "$TC_OUT" "automatic approval" "init: automatic approval by default"
tc_expect_exit 0 "$TOKENCERT" ca submit "$TC_WORLD/sw.csr" --ca-dir "$TC_WORLD/ca-auto" -o "$TC_WORLD/sw-auto.pem"
tc_assert_match "$(openssl verify -CAfile "$TC_WORLD/ca-auto/ca.pem" -purpose sslclient "$TC_WORLD/sw-auto.pem" 2>&1)" \
    ": OK$" "automatic: issued at submit, verifies"

# The user's token holds exactly the two keys the enrollments made, nothing more.
tc_p11_login --list-objects >"$TC_WORLD/objs.txt" 2>&1
tc_assert_eq 2 "$(grep -c '^Private Key Object' "$TC_WORLD/objs.txt")" "the token holds alice's and bob's keys"

# ---------------------------------------------------------------------------------------------
# A CA whose key lives on a token the user names (here the world's own token: SoftHSM, or the
# TPM), its PIN read from a file the CA's configuration points at.

PINFILE=$TC_WORLD/user-pin
(umask 077 && printf '%s\n' "$PIN" >"$PINFILE")
CA2=$TC_WORLD/ca-named
tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$CA2" --token "$USER_URI" --module "$MODULE" \
    --pin-source "file:$PINFILE" --subject "CN=Named token CA" --type ec:p256
tc_assert_not_contains "$(ls "$CA2")" "softhsm2.conf" "named token: no token of the CA's own"
tc_p11_login --list-objects --type privkey >"$TC_WORLD/objs2.txt" 2>&1
tc_assert_eq 3 "$(grep -c '^Private Key Object' "$TC_WORLD/objs2.txt")" \
    "named token: the CA key joins the two enrolled keys on the user's token"
tc_assert_match "$(cat "$TC_WORLD/objs2.txt")" "label: +ca$" "named token: the CA key is labelled ca"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TC_WORLD/sw2.key" \
    -subj "/CN=named-token client" -out "$TC_WORLD/sw2.csr" 2>/dev/null
tc_expect_exit 0 "$TOKENCERT" ca submit "$TC_WORLD/sw2.csr" --ca-dir "$CA2" -o "$TC_WORLD/sw2.pem"
tc_assert_match "$(openssl verify -CAfile "$CA2/ca.pem" -purpose sslclient "$TC_WORLD/sw2.pem" 2>&1)" \
    ": OK$" "named token: the CA signs on the user's token, the certificate verifies"
tc_assert_match "$(openssl x509 -in "$CA2/ca.pem" -noout -subject -nameopt RFC2253)" \
    "subject=CN=Named token CA" "named token: the CA certificate names the CA"

# ---------------------------------------------------------------------------------------------
# The CA signs in its helper, tokencert-ca-sign: a missing helper is an error naming it, and the
# library's approve works in a process that has loaded the user's token module already (SoftHSM
# with the user's configuration in the softhsm world), leaving that process's environment alone.

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TC_WORLD/sw3.key" \
    -subj "/CN=signer client" -out "$TC_WORLD/sw3.csr" 2>/dev/null
tc_expect_exit 8 "$TOKENCERT" ca submit "$TC_WORLD/sw3.csr" --ca-dir "$CA"
req3=$(sed -n 's/^request \([0-9]*\) is pending.*/\1/p' <<<"$TC_OUT")
tc_assert_match "$req3" "^[0-9]+$" "signer: a pending request to approve"
TOKENCERT_LIBEXECDIR=$TC_WORLD/no-libexec tc_expect_exit 1 "$TOKENCERT" ca approve "$req3" --ca-dir "$CA"
tc_assert_contains "$TC_ERR" "the CA signer $TC_WORLD/no-libexec/tokencert-ca-sign could not be run: No such file or directory" \
    "signer missing: the error names the helper and why"
tc_assert_match "$("$TOKENCERT" ca list --ca-dir "$CA" | awk -v id="$req3" '$1 == id {print $2}')" "^pending$" \
    "signer missing: the request stays pending"
out=$("$TC_CA_APPROVE" "$MODULE" "$USER_URI" "$CA" "$req3" 2>&1)
tc_assert_eq "approved; SOFTHSM2_CONF unchanged" "$out" \
    "signer: tokencert_ca_approve() in a process with the user's module loaded"
tc_assert_match "$("$TOKENCERT" ca list --ca-dir "$CA" | awk -v id="$req3" '$1 == id {print $2}')" "^issued$" \
    "signer: the request is issued"

tc_finish
