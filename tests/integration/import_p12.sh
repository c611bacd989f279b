#!/usr/bin/env bash
# import of PKCS#12 files: current encryption (AES), the legacy RC2-40 that portals still hand out,
# and 3DES; RSA and EC keys. On SoftHSM the key lands non-extractable and sensitive, signs data
# that openssl verifies against the certificate, and a second import changes nothing. A wrong
# password, a damaged file, a fingerprint mismatch and an unreadable password source are refused
# with their message and exit code, the token unchanged, and the password never shown.
# tpm2-pkcs11 takes no private key from outside: there every PKCS#12 with a key is refused with
# the documented message, and nothing is written.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool openssl pkcs11-tool python3 sha256sum
tc_world_init
W=$TC_WORLD
URI="pkcs11:token=$TOKEN_LABEL"
TC=("$TOKENCERT" import "$URI" --module "$MODULE" --pin-source env:PIN)
# A password that cannot occur in any output by chance.
P12PW='p12-Xq7#Lm2v'
export P12PW
PW=(--password-source env:P12PW)

unchanged() {
    tc_objects_snapshot "$W/snap.now"
    tc_assert_files_eq "$W/snap.base" "$W/snap.now" "token unchanged: $1"
}

objattrs() {
    ATTRS=$(TC_P11CERTS_PIN=$PIN python3 "$TC_LIB_DIR/p11objattrs.py" "$MODULE" "$TOKEN_LABEL") ||
        tc_die "p11objattrs.py failed"
}

no_password_shown() {
    if [[ "$TC_OUT$TC_ERR" == *"$P12PW"* ]]; then
        tc_fail "the password appears in the output ($1)"
    else
        tc_pass "the password is not in the output ($1)"
    fi
}

# derived_id PUBKEY_PEM: SHA-1 of the RSA modulus or of the EC point, computed by openssl.
derived_id() {
    local text hex v
    text=$(openssl pkey -pubin -in "$1" -noout -text)
    if [[ "$text" == *Modulus:* ]]; then
        hex=$(openssl rsa -pubin -in "$1" -noout -modulus 2>/dev/null)
        hex=${hex#Modulus=}
        v=$(printf '%s' "$hex" | python3 -c 'import sys,hashlib; print(hashlib.sha1(bytes.fromhex(sys.stdin.read().strip()).lstrip(b"\0")).hexdigest())')
    else
        v=$(openssl pkey -pubin -in "$1" -outform DER | tail -c 65 | sha1sum)
        v=${v%% *}
    fi
    printf '%s\n' "$v"
}

# ---------------------------------------------------------------------------------------------
# The files: keys made in software, as a portal would, certificates from the test CA.

tc_fixture_ca
ROOT=$TC_CA_CERT
ROOT_KEY=$TC_CA_KEY

# mkcert NAME ALG: NAME.key, NAME.pub, NAME.pem ("CN=NAME,O=tokencert test", from the test CA).
mkcert() {
    local name=$1
    shift
    tc__fix_log openssl genpkey "$@" -out "$W/$name.key"
    tc__fix_log openssl pkey -in "$W/$name.key" -pubout -out "$W/$name.pub"
    tc__fix_log openssl req -new -key "$W/$name.key" -subj "/O=tokencert test/CN=$name" \
        -out "$W/$name.csr"
    tc__fix_log openssl x509 -req -in "$W/$name.csr" -CA "$ROOT" -CAkey "$ROOT_KEY" \
        -set_serial "0x$(openssl rand -hex 8)" -days 365 -out "$W/$name.pem"
}
mkcert rsa-aes -algorithm RSA -pkeyopt rsa_keygen_bits:2048
mkcert ec-legacy -algorithm EC -pkeyopt ec_paramgen_curve:P-256
mkcert rsa-3des -algorithm RSA -pkeyopt rsa_keygen_bits:2048
mkcert ed -algorithm ED25519

tc__fix_log openssl pkcs12 -export -inkey "$W/rsa-aes.key" -in "$W/rsa-aes.pem" -certfile "$ROOT" \
    -name "Office 1234" -passout env:P12PW -out "$W/rsa-aes.p12"
tc__fix_log openssl pkcs12 -export -legacy -provider default -provider legacy \
    -inkey "$W/ec-legacy.key" -in "$W/ec-legacy.pem" -certfile "$ROOT" -name "legacy portal" \
    -passout env:P12PW -out "$W/ec-legacy.p12"
tc__fix_log openssl pkcs12 -export -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES \
    -inkey "$W/rsa-3des.key" -in "$W/rsa-3des.pem" -passout env:P12PW -out "$W/rsa-3des.p12"
tc__fix_log openssl pkcs12 -export -inkey "$W/ed.key" -in "$W/ed.pem" -passout env:P12PW \
    -out "$W/ed.p12"

# The files really use the encryption they are meant to test.
info=$(openssl pkcs12 -in "$W/ec-legacy.p12" -info -noout -passin env:P12PW -legacy 2>&1 || true)
tc_assert_contains "$info" "pbeWithSHA1And40BitRC2-CBC" "the legacy file is RC2-40"
if openssl pkcs12 -in "$W/ec-legacy.p12" -noout -passin env:P12PW >/dev/null 2>&1; then
    tc_fail "openssl reads the legacy file without its legacy provider: the test proves nothing"
else
    tc_pass "the legacy file needs OpenSSL's legacy provider"
fi
info=$(openssl pkcs12 -in "$W/rsa-3des.p12" -info -noout -passin env:P12PW 2>&1 || true)
tc_assert_contains "$info" "pbeWithSHA1And3-KeyTripleDES-CBC" "the 3DES file is 3DES"
info=$(openssl pkcs12 -in "$W/rsa-aes.p12" -info -noout -passin env:P12PW 2>&1 || true)
tc_assert_contains "$info" "AES-256-CBC" "the default file is AES"

# Damaged copies: cut short, and one bit flipped in the encrypted contents.
head -c 700 "$W/rsa-aes.p12" >"$W/truncated.p12"
python3 - "$W/rsa-aes.p12" "$W/flipped.p12" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x10
open(sys.argv[2], "wb").write(bytes(b))
EOF

tc_objects_snapshot "$W/snap.base"

# ---------------------------------------------------------------------------------------------
# Refusals, against the untouched token.

tc_log "wrong password"
P12PW_WRONG='wrong-Zr4!pw' tc_expect_exit 9 "${TC[@]}" --password-source env:P12PW_WRONG \
    --ca-file "$ROOT" "$W/rsa-aes.p12"
tc_assert_contains "$TC_ERR" "$W/rsa-aes.p12: wrong password (MAC verification failed" "wrong password named"
if [[ "$TC_ERR" == *"wrong-Zr4!pw"* ]]; then
    tc_fail "the wrong password is shown"
else
    tc_pass "the wrong password is not shown"
fi

tc_log "damaged files"
tc_expect_exit 9 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" "$W/truncated.p12"
tc_assert_contains "$TC_ERR" "$W/truncated.p12: not a certificate, PKCS#7 or PKCS#12 file" "truncated PKCS#12 refused"
no_password_shown truncated
tc_expect_exit 9 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" "$W/flipped.p12"
tc_assert_match "$TC_ERR" "flipped.p12: (wrong password \(MAC verification failed|not a certificate|cannot read the PKCS#12)" "bit-flipped PKCS#12 refused"

tc_log "fingerprint mismatch"
OTHER_SHA1=$(openssl x509 -in "$ROOT" -noout -fingerprint -sha1)
OTHER_SHA1=${OTHER_SHA1#*=}
GOOD_SHA1=$(openssl x509 -in "$W/rsa-aes.pem" -noout -fingerprint -sha1)
GOOD_SHA1=${GOOD_SHA1#*=}
tc_expect_exit 9 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" --expect-fingerprint "sha1:$OTHER_SHA1" \
    "$W/rsa-aes.p12"
tc_assert_contains "$TC_ERR" "fingerprint mismatch: expected sha1:$OTHER_SHA1, the file's certificate has sha1:$GOOD_SHA1" "PKCS#12 fingerprint mismatch"
no_password_shown mismatch

tc_log "the password source cannot be read"
tc_expect_exit 11 "${TC[@]}" --password-source env:NO_SUCH_VARIABLE_SET "$W/rsa-aes.p12"
tc_assert_contains "$TC_ERR" "PKCS#12 password" "the missing password is named"

tc_log "iteration counts over 10,000,000 are refused before any key derivation (issue 16, defect 7)"
# One file per place a count sits: the MAC, a private key's encryption, the encrypted contents.
# Made with the right password: only the count can be the reason.
tc__fix_log openssl pkcs12 -export -inkey "$W/ec-legacy.key" -in "$W/ec-legacy.pem" \
    -iter 10000001 -keypbe NONE -certpbe NONE -passout env:P12PW -out "$W/iter-mac.p12"
tc__fix_log openssl pkcs12 -export -inkey "$W/ec-legacy.key" -in "$W/ec-legacy.pem" \
    -iter 10000001 -nomaciter -certpbe NONE -passout env:P12PW -out "$W/iter-key.p12"
tc__fix_log openssl pkcs12 -export -inkey "$W/ec-legacy.key" -in "$W/ec-legacy.pem" \
    -iter 10000001 -nomaciter -keypbe NONE -passout env:P12PW -out "$W/iter-safe.p12"
for what in "mac MAC" "key private key" "safe encrypted contents"; do
    f=iter-${what%% *}
    tc_expect_exit 9 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" "$W/$f.p12"
    tc_assert_contains "$TC_ERR" "$W/$f.p12: the PKCS#12 ${what#* } asks for 10000001 password iterations; at most 10000000 are accepted" "$f: refused, the count named"
    no_password_shown "$f"
done

unchanged "after every refusal"

# ---------------------------------------------------------------------------------------------
# Imports.

if [ "$TC_TOKEN_KIND" = tpm ]; then
    tc_log "tpm2-pkcs11 takes no private key from outside"
    for f in rsa-aes ec-legacy rsa-3des ed; do
        tc_expect_exit 1 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" "$W/$f.p12"
        tc_assert_contains "$TC_ERR" "$W/$f.p12: token '$TOKEN_LABEL' does not accept private keys from outside (C_CreateObject: CKR_ATTRIBUTE_VALUE_INVALID): generate the key on the token" "$f: refusal explained"
        no_password_shown "$f on the TPM"
    done
    unchanged "the TPM's refusals write nothing, not even the certificates"
    tc_finish
    exit 0
fi

# sign_check NAME ID MECH: the token key signs data; openssl verifies it with the certificate.
sign_check() {
    local name=$1 id=$2 mech=$3
    printf 'data signed on the token by %s\n' "$name" >"$W/$name.data"
    openssl x509 -in "$W/$name.pem" -pubkey -noout >"$W/$name.certpub"
    if [ "$mech" = ECDSA ]; then
        # SoftHSM has only raw ECDSA: the hash is made here.
        openssl dgst -sha256 -binary "$W/$name.data" >"$W/$name.hash"
        tc_expect_exit 0 tc_p11_login --sign --id "$id" --mechanism ECDSA \
            --signature-format openssl -i "$W/$name.hash" -o "$W/$name.sig"
    else
        tc_expect_exit 0 tc_p11_login --sign --id "$id" --mechanism "$mech" \
            -i "$W/$name.data" -o "$W/$name.sig"
    fi
    tc_expect_exit 0 openssl dgst -sha256 -verify "$W/$name.certpub" -signature "$W/$name.sig" \
        "$W/$name.data"
    tc_assert_contains "$TC_OUT" "Verified OK" "$name: the imported key's signature verifies with the certificate"
}

tc_log "a write failing half-way: the key written first is destroyed again"
# private key, public key, certificate, CA certificate: fail each after the first.
for at in 2 3 4; do
    tc_expect_exit 1 env TC_FAULT_TARGET="$MODULE" TC_FAULT_FUNC=C_CreateObject TC_FAULT_AT=$at \
        TC_FAULT_RV=CKR_DEVICE_MEMORY "$TOKENCERT" import "$URI" --module "$TC_FAULTMOD" \
        --pin-source env:PIN "${PW[@]}" --ca-file "$ROOT" "$W/rsa-aes.p12"
    tc_assert_contains "$TC_ERR" "failed: CKR_DEVICE_MEMORY" "failure $at named"
    unchanged "C_CreateObject $at of 4 failed"
done

tc_log "AES PKCS#12, RSA, with the friendlyName as label and the portal's SHA-1 thumbprint"
RSA_ID=$(derived_id "$W/rsa-aes.pub")
tc_expect_exit 0 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" --expect-fingerprint "sha1:$GOOD_SHA1" \
    "$W/rsa-aes.p12"
tc_assert_contains "$TC_OUT" "stored private key 'Office 1234' (id $RSA_ID)" "key stored with the derived id and the friendlyName"
tc_assert_contains "$TC_OUT" "stored certificate 'Office 1234' (id $RSA_ID): CN=rsa-aes,O=tokencert test" "certificate beside its key"
tc_assert_contains "$TC_OUT" "stored CA certificate 'Test CA'" "the CA from the file stored"
no_password_shown aes
objattrs
tc_assert_contains "$ATTRS" "privkey $RSA_ID Office_1234 sensitive=1 extractable=0 private=1 sign=1" "RSA key: sensitive, not extractable"
tc_assert_contains "$ATTRS" "pubkey $RSA_ID Office_1234" "public key object beside it"
tc_expect_exit 0 tc_p11_login --list-objects --type privkey --id "$RSA_ID"
tc_assert_contains "$TC_OUT" "Access:     sensitive" "pkcs11-tool: sensitive"
tc_assert_not_contains "$TC_OUT" "extractable" "pkcs11-tool: not extractable"
sign_check rsa-aes "$RSA_ID" SHA256-RSA-PKCS

tc_log "legacy RC2-40 PKCS#12, EC, with --label"
EC_ID=$(derived_id "$W/ec-legacy.pub")
tc_expect_exit 0 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" --label "from portal" "$W/ec-legacy.p12"
tc_assert_contains "$TC_OUT" "stored private key 'from portal' (id $EC_ID)" "legacy EC key stored"
tc_assert_contains "$TC_OUT" "already present: CA certificate 'Test CA'" "the CA is not stored twice"
objattrs
tc_assert_contains "$ATTRS" "privkey $EC_ID from_portal sensitive=1 extractable=0 private=1 sign=1" "EC key: sensitive, not extractable"
sign_check ec-legacy "$EC_ID" ECDSA

tc_log "3DES PKCS#12 without a chain"
RSA3_ID=$(derived_id "$W/rsa-3des.pub")
tc_expect_exit 0 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" "$W/rsa-3des.p12"
tc_assert_contains "$TC_OUT" "stored private key 'rsa-3des' (id $RSA3_ID)" "3DES key stored, labelled with the CN"
sign_check rsa-3des "$RSA3_ID" SHA256-RSA-PKCS

tc_log "Ed25519 PKCS#12"
ED_ID=$(openssl pkey -pubin -in "$W/ed.pub" -outform DER | tail -c 32 | sha1sum | cut -d' ' -f1)
tc_expect_exit 0 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" "$W/ed.p12"
tc_assert_contains "$TC_OUT" "stored private key 'ed' (id $ED_ID)" "Ed25519 key stored with the id of its raw public key"
objattrs
tc_assert_contains "$ATTRS" "privkey $ED_ID ed sensitive=1 extractable=0 private=1 sign=1" "Ed25519 key: sensitive, not extractable"
printf 'data signed on the token by ed\n' >"$W/ed.data"
tc_expect_exit 0 tc_p11_login --sign --id "$ED_ID" --mechanism EDDSA -i "$W/ed.data" -o "$W/ed.sig"
openssl x509 -in "$W/ed.pem" -pubkey -noout >"$W/ed.certpub"
tc_expect_exit 0 openssl pkeyutl -verify -pubin -inkey "$W/ed.certpub" -rawin -in "$W/ed.data" \
    -sigfile "$W/ed.sig"
tc_assert_contains "$TC_OUT" "Signature Verified Successfully" "ed: the imported key's signature verifies with the certificate"

tc_log "the listing sees the credentials"
tc_expect_exit 0 "$TOKENCERT" list "$URI" --module "$MODULE" --login --pin-source env:PIN --json
cp "$TC_OUT_FILE" "$W/list.json"
tc_jexprs "$W/list.json" \
    'sorted((c["name"], c["kind"], c["key"]["sensitive"], c["key"]["extractable"]) for t in j["tokens"] for c in t["credentials"] if c["kind"] != "authority")'
tc_assert_eq '[["Office 1234","credential",true,false],["ed","credential",true,false],["from portal","credential",true,false],["rsa-3des","credential",true,false]]' \
    "${R[0]}" "four full credentials, keys sensitive and not extractable"

tc_log "importing again changes nothing"
tc_objects_snapshot "$W/snap.full"
tc_expect_exit 0 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" "$W/rsa-aes.p12" "$W/ec-legacy.p12"
tc_assert_contains "$TC_OUT" "already present: private key 'Office 1234'" "key not written twice"
tc_assert_contains "$TC_OUT" "0 objects stored on token '$TOKEN_LABEL', 5 already present" "nothing stored"
tc_objects_snapshot "$W/snap.again"
tc_assert_files_eq "$W/snap.full" "$W/snap.again" "second import leaves the token as it was"


tc_log "a key already on the token under a CKA_ID of 100 bytes (issue 16, defect 1)"
# Written by another tool; its PKCS#12 imported with seven more certificates. The certificate
# must get the key's whole 100-byte id (it was copied into a 64-byte field before).
mkcert longid -algorithm EC -pkeyopt ec_paramgen_curve:P-256
LONG_ID=$(openssl rand -hex 100)
tc_expect_exit 0 tc_p11_login --write-object "$W/longid.key" --type privkey --id "$LONG_ID" \
    --label longid
tc_expect_exit 0 tc_p11_login --write-object "$W/longid.pub" --type pubkey --id "$LONG_ID" \
    --label longid
: >"$W/others.pem"
for n in 1 2 3 4 5 6 7; do
    mkcert "other$n" -algorithm EC -pkeyopt ec_paramgen_curve:P-256
    cat "$W/other$n.pem" >>"$W/others.pem"
done
tc__fix_log openssl pkcs12 -export -inkey "$W/longid.key" -in "$W/longid.pem" -passout env:P12PW \
    -out "$W/longid.p12"
tc_expect_exit 0 "${TC[@]}" "${PW[@]}" --ca-file "$ROOT" --allow-orphan "$W/longid.p12" \
    "$W/others.pem"
tc_assert_contains "$TC_OUT" "already present: private key 'longid' (id $LONG_ID)" "the long-id key is found on the token"
tc_assert_contains "$TC_OUT" "stored certificate 'longid' (id $LONG_ID): CN=longid,O=tokencert test" "the certificate gets the key's whole id"
objattrs
tc_assert_match "$ATTRS" "^cert $LONG_ID longid " "the token holds the certificate under the key's 100-byte id"

tc_finish
