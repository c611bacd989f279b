#!/usr/bin/env bash
# csr: requests signed on the token for RSA and EC keys verify with openssl; subject (10-digit
# CN, UTF-8, escapes, multi-valued RDN) and SANs read back exactly; the request's public key is
# the token's (pkcs11-tool's read-out); the challenge password comes from a secret source and is
# in the request; DER and -o FILE. Bad input: message, exit code, no output, token unchanged.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_tool openssl pkcs11-tool stat
tc_world_init

keygen() {
    tc_p11_login --keypairgen --key-type "$1" --id "$2" --label "$3" >>"$TC_WORLD/harness.log" 2>&1 ||
        tc_die "cannot generate $1 key '$3'"
}
keygen rsa:2048 01 k1
keygen EC:prime256v1 02 k2

TOK="pkcs11:token=$TOKEN_LABEL"
OUT=$TC_WORLD/out
mkdir -p "$OUT"
for id in 01 02; do
    tc_pubkey "id=$(tc_pct "$id")" "$OUT/$id.p11.pub" || tc_die "p11tool cannot read public key $id"
    openssl pkey -pubin -inform DER -in "$OUT/$id.p11.pub" -outform DER -out "$OUT/$id.ref.der" \
        2>>"$TC_WORLD/harness.log" || tc_die "openssl cannot read public key $id"
done
tc_objects_snapshot "$TC_WORLD/base"

unchanged() {
    tc_objects_snapshot "$TC_WORLD/now"
    tc_assert_files_eq "$TC_WORLD/base" "$TC_WORLD/now" "token unchanged: $1"
}

# check_csr FILE ID [FORM]: verifies, and compares the public key with the token's.
check_csr() {
    local f=$1 id=$2 form=${3:-PEM}
    tc_expect_exit 0 openssl req -inform "$form" -in "$f" -verify -noout
    tc_assert_contains "$TC_ERR$TC_OUT" "verify OK" "openssl verifies the request ($id, $form)"
    openssl req -inform "$form" -in "$f" -noout -pubkey 2>/dev/null |
        openssl pkey -pubin -outform DER -out "$OUT/csr.pub.der" 2>/dev/null ||
        tc_fail "public key readable from the request"
    tc_assert_files_eq "$OUT/$id.ref.der" "$OUT/csr.pub.der" "request public key = token's ($id)"
}

subject_of() {
    openssl req -inform "${2:-PEM}" -in "$1" -noout -subject -nameopt RFC2253,-esc_msb 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# Subjects and SANs, both key types

S1='CN=1234567890,O=Praxis Dr. Müller,C=DE'
S2='CN=Doe\, John+UID=jdoe,OU=A\+B,O=Org\"Q,DC=example,DC=org'
for id in 01 02; do
    tc_expect_exit 0 "$TOKENCERT" csr --module "$MODULE" --pin-source env:PIN "$TOK;id=%$id" \
        --subject "$S1"
    cp "$TC_OUT_FILE" "$OUT/s1.$id.pem"
    tc_assert_contains "$TC_OUT" "-----BEGIN CERTIFICATE REQUEST-----" "PEM on stdout ($id)"
    check_csr "$OUT/s1.$id.pem" "$id"
    tc_assert_eq "subject=$S1" "$(subject_of "$OUT/s1.$id.pem")" "10-digit CN, UTF-8 O, C ($id)"
    # DER order is C, O, CN: the most specific RDN last.
    tc_assert_eq "subject=C = DE, O = Praxis Dr. Müller, CN = 1234567890" \
        "$(openssl req -in "$OUT/s1.$id.pem" -noout -subject -nameopt oneline,-esc_msb,sep_comma_plus_space,space_eq)" \
        "RDNs in DER order ($id)"
done

tc_expect_exit 0 "$TOKENCERT" csr --module "$MODULE" --pin-source env:PIN "$TOK;object=k2" \
    --subject "$S2" --san dns:host.example.org --san ip:192.0.2.7 --san ip:2001:db8::7 \
    --san email:office@example.org --san uri:https://example.org/office -o "$OUT/s2.pem"
tc_assert_eq "" "$TC_OUT" "nothing on stdout with -o"
tc_assert_eq 644 "$(stat -c %a "$OUT/s2.pem")" "-o FILE has mode 0644"
check_csr "$OUT/s2.pem" 02
# The members of a multi-valued RDN form a SET, sorted in DER (CN before UID here); OpenSSL prints
# the whole name reversed, so UID comes first. Their order carries no meaning.
tc_assert_eq 'subject=UID=jdoe+CN=Doe\, John,OU=A\+B,O=Org\"Q,DC=example,DC=org' \
    "$(subject_of "$OUT/s2.pem")" "escapes and a multi-valued RDN"
text=$(openssl req -in "$OUT/s2.pem" -noout -text 2>&1) || true
tc_assert_contains "$text" "DNS:host.example.org, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:7, email:office@example.org, URI:https://example.org/office" \
    "every SAN in the request, in order"
tc_assert_not_contains "$text" "challengePassword" "no challenge password unless asked"

# ---------------------------------------------------------------------------------------------
# Challenge password, digest, DER

export CHAL='Chal-9xQ2 secret'
tc_expect_exit 0 "$TOKENCERT" csr --module "$MODULE" --pin-source env:PIN "$TOK;id=%01" \
    --subject 'CN=scep client' --challenge-source env:CHAL --digest sha384 --der \
    -o "$OUT/chal.der"
check_csr "$OUT/chal.der" 01 DER
text=$(openssl req -inform DER -in "$OUT/chal.der" -noout -text 2>&1) || true
tc_assert_contains "$text" "challengePassword        :$CHAL" "challenge password in the request"
tc_assert_contains "$text" "sha384WithRSAEncryption" "--digest sha384"
tc_assert_not_contains "$TC_OUT$TC_ERR" "$CHAL" "the challenge is not printed"
tc_expect_exit 2 "$TOKENCERT" csr --module "$MODULE" --pin-source env:PIN "$TOK;id=%01" \
    --subject 'CN=x' --challenge "$CHAL"
tc_assert_contains "$TC_ERR" "never taken from the command line" "--challenge VALUE refused"
tc_assert_not_contains "$TC_OUT$TC_ERR" "$CHAL" "a challenge given on argv is not echoed"
tc_expect_exit 2 "$TOKENCERT" csr --module "$MODULE" --pin-source env:PIN "$TOK;id=%01" \
    --subject 'CN=x' "--challenge=$CHAL"
tc_assert_not_contains "$TC_OUT$TC_ERR" "$CHAL" "--challenge=VALUE refused, not echoed"

tc_expect_exit 0 "$TOKENCERT" csr --module "$MODULE" --pin-source env:PIN "$TOK;id=%02" \
    --subject 'CN=ec' --digest sha512 -o "$OUT/ec512.pem"
check_csr "$OUT/ec512.pem" 02
tc_assert_contains "$(openssl req -in "$OUT/ec512.pem" -noout -text)" "ecdsa-with-SHA512" \
    "ECDSA with SHA-512"

unchanged "after the requests"

# ---------------------------------------------------------------------------------------------
# Bad input

# bad CODE MESSAGE ARGS...: the run fails with CODE and MESSAGE, and writes no output file.
bad() {
    local code=$1 msg=$2
    shift 2
    rm -f "$OUT/bad.pem"
    tc_expect_exit "$code" "$TOKENCERT" csr --module "$MODULE" "$@" -o "$OUT/bad.pem"
    tc_assert_contains "$TC_ERR" "$msg" "message: $msg"
    if [ -e "$OUT/bad.pem" ]; then
        tc_fail "no output written for: $msg"
    fi
}

bad 2 "subject: malformed RDN at position 5" --pin-source env:PIN "$TOK;id=%01" --subject 'CN=a,O'
bad 2 "subject: unknown attribute type 'XX'" --pin-source env:PIN "$TOK;id=%01" \
    --subject 'XX=1,CN=a'
bad 2 "subject: C must be a two-letter country code" --pin-source env:PIN "$TOK;id=%01" \
    --subject 'CN=a,C=Germany'
bad 2 "subject: empty" --pin-source env:PIN "$TOK;id=%01" --subject ''
bad 2 "SAN 'foo:bar': unknown kind" --pin-source env:PIN "$TOK;id=%01" --subject 'CN=a' \
    --san foo:bar
bad 2 "SAN 'ip:192.0.2.999': not an IPv4 or IPv6 address" --pin-source env:PIN "$TOK;id=%01" \
    --subject 'CN=a' --san ip:192.0.2.999
bad 2 "SAN 'dns:': empty value" --pin-source env:PIN "$TOK;id=%01" --subject 'CN=a' --san dns:
bad 2 "the key URI names no key" --pin-source env:PIN "$TOK" --subject 'CN=a'
bad 2 "--subject is required" --pin-source env:PIN "$TOK;id=%01"
bad 4 "no private key matches id=77" --pin-source env:PIN "$TOK;id=%77" --subject 'CN=a'
bad 11 "challenge password" --pin-source env:PIN "$TOK;id=%01" --subject 'CN=a' \
    --challenge-source "file:$TC_WORLD/no-such-file"
bad 11 "challenge password" --pin-source env:PIN "$TOK;id=%01" --subject 'CN=a' \
    --challenge-source env:TC_NO_SUCH_VARIABLE
# One wrong PIN only: tpm2-pkcs11's dictionary-attack protection counts every failure.
export WRONG_PIN=wrong-0000
bad 6 "CKR_PIN_INCORRECT" --pin-source env:WRONG_PIN "$TOK;id=%01" --subject 'CN=a'
tc_assert_not_contains "$TC_ERR" "$WRONG_PIN" "the wrong PIN is not printed"
unchanged "after the bad input"

tc_finish
