#!/usr/bin/env bash
# The library's OpenSSL provider signs and decrypts with token keys: RSA PKCS#1 v1.5 and PSS,
# ECDSA and EdDSA signatures (through digest-and-sign and pre-hashed), a CSR, CMS SignedData, TLS
# client authentication (TLS 1.3 and 1.2) and RSA decryption (PKCS#1 v1.5 and OAEP), all driven
# by tc-probe and every result checked by openssl alone against the public key read from the
# token with pkcs11-tool. The keys stay sensitive and never extractable and the token's objects
# are unchanged by all of it; a key URI that matches nothing is a clear error.
#
# tpm2-pkcs11 cannot make Ed25519 keys: that key type is skipped there, with a note.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tool openssl pkcs11-tool python3
tc_require_faultmod
if [ -z "${TC_PROBE-}" ] || [ ! -x "$TC_PROBE" ]; then
    tc_die "TC_PROBE must name the tc-probe program (got '${TC_PROBE-}'); run through ctest"
fi
# SoftHSM leaks a little in C_SignInit of EC keys; tests/lsan.supp suppresses leaks by module
# name, which a sanitizer build can match only with whole allocation stacks.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}fast_unwind_on_malloc=0"
tc_world_init
W=$TC_WORLD
tc_fixture_ca
CA=$TC_CA_CERT
CAKEY=$TC_CA_KEY

# Key pairs generated on the token; the public keys as pkcs11-tool reads them back.
tc_fixture_keypair rsa 0a rsa:2048
tc_fixture_keypair ec 0b EC:prime256v1
declare -A PUB=([rsa]=$TC_FIXTURE/keys/0a.pub.pem [ec]=$TC_FIXTURE/keys/0b.pub.pem)
declare -A KEYURI=([rsa]="pkcs11:id=%0a" [ec]="pkcs11:object=ec")
KINDS=(rsa ec)
if [ "$TC_TOKEN_KIND" = softhsm ]; then
    tc__fix_log tc_p11_login --keypairgen --key-type EC:edwards25519 --id 0c --label ed
    tc__fix_log tc_p11 --read-object --type pubkey --id 0c --output-file "$W/ed.pub"
    # pkcs11-tool writes an EdDSA public key as PEM, the others as DER.
    if grep -q -- '-----BEGIN' "$W/ed.pub"; then
        tc__fix_log openssl pkey -pubin -in "$W/ed.pub" -out "$W/ed.pub.pem"
    else
        tc__fix_log openssl pkey -pubin -inform DER -in "$W/ed.pub" -out "$W/ed.pub.pem"
    fi
    PUB[ed]=$W/ed.pub.pem
    KEYURI[ed]="pkcs11:id=%0c;type=private"
    KINDS+=(ed)
else
    tc_log "tpm: no Ed25519 key (tpm2-pkcs11 cannot make one); EdDSA is covered on softhsm"
fi

tc_objects_snapshot "$W/snapshot.before"

# probe CODE ARGS...: tc-probe on the world's token, logged in with the PIN from the environment.
probe() {
    local code=$1
    shift
    tc_expect_exit "$code" "$TC_PROBE" --module "$MODULE" --token "pkcs11:token=$TOKEN_LABEL" \
        --pin-source env:PIN "$@"
}

# verified WHAT CMD...: openssl's verification CMD succeeds and says so.
verified() {
    local what=$1
    shift
    tc_expect_exit 0 "$@"
    tc_assert_match "$TC_OUT$TC_ERR" 'Verified OK|verify OK|Verification successful|Signature Verified Successfully' "$what"
}

head -c 3000 /dev/urandom >"$W/msg"

# ---------------------------------------------------------------------------------------------
# Signatures: each digest, digest-and-sign and pre-hashed.
for md in sha256 sha384 sha512; do
    for mode in "" --prehash; do
        tag="$md${mode:+ prehash}"
        probe 0 --key "${KEYURI[rsa]}" sign --alg rsa-pkcs1 --md $md $mode --in "$W/msg" \
            --out "$W/s.pkcs1"
        verified "RSA PKCS#1 v1.5 $tag" openssl dgst -$md -verify "${PUB[rsa]}" \
            -signature "$W/s.pkcs1" "$W/msg"
        probe 0 --key "${KEYURI[rsa]}" sign --alg rsa-pss --md $md $mode --in "$W/msg" \
            --out "$W/s.pss"
        verified "RSA-PSS $tag" openssl dgst -$md -verify "${PUB[rsa]}" \
            -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
            -signature "$W/s.pss" "$W/msg"
        probe 0 --key "${KEYURI[ec]}" sign --alg ecdsa --md $md $mode --in "$W/msg" \
            --out "$W/s.ecdsa"
        verified "ECDSA $tag" openssl dgst -$md -verify "${PUB[ec]}" -signature "$W/s.ecdsa" \
            "$W/msg"
    done
done
# The salt really is the hash length: a verifier that insists on another length refuses it.
tc_expect_exit 1 openssl dgst -sha256 -verify "${PUB[rsa]}" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:222 -signature "$W/s.pss" "$W/msg"
# The salt length as openssl's "-pkeyopt rsa_pss_saltlen:S" hands it over: a number of bytes or
# one of OpenSSL's names, each verified by a verifier that insists on that length (a 2048-bit key
# with SHA-256: max is 256 - 32 - 2 = 222 bytes, auto-digestmax the digest's 32).
SALTS=(32:32 digest:32 auto-digestmax:32)
if [ "$TC_TOKEN_KIND" = softhsm ]; then
    SALTS+=(0:0 20:20 max:222 auto:222)
else
    # A TPM signs PSS with a salt of the digest's length only: tpm2-pkcs11 refuses any other,
    # and the token's refusal is what the user sees.
    for salt in 0 20 max auto; do
        rm -f "$W/s.salt"
        probe 1 --key "${KEYURI[rsa]}" sign --alg rsa-pss --saltlen "$salt" --in "$W/msg" \
            --out "$W/s.salt"
        tc_assert_contains "$TC_ERR" "C_SignInit failed: CKR_MECHANISM_PARAM_INVALID" \
            "salt length $salt refused by tpm2-pkcs11, the token's CK_RV shown"
        tc_assert_eq no "$([ -e "$W/s.salt" ] && echo yes || echo no)" "salt $salt: no signature"
    done
fi
for salt in "${SALTS[@]}"; do
    probe 0 --key "${KEYURI[rsa]}" sign --alg rsa-pss --saltlen "${salt%%:*}" --in "$W/msg" \
        --out "$W/s.salt"
    verified "RSA-PSS, salt length ${salt%%:*}" openssl dgst -sha256 -verify "${PUB[rsa]}" \
        -sigopt rsa_padding_mode:pss -sigopt "rsa_pss_saltlen:${salt#*:}" \
        -signature "$W/s.salt" "$W/msg"
done
# Anything else is refused with the value named, never taken as a salt of 0 bytes.
for bad in abc 32abc -1 +32 " 32" "32 " 0x20 2147483648 99999999999999999999; do
    rm -f "$W/s.bad"
    probe 1 --key "${KEYURI[rsa]}" sign --alg rsa-pss --saltlen "$bad" --in "$W/msg" \
        --out "$W/s.bad"
    tc_assert_contains "$TC_ERR" "bad PSS salt length '$bad'" "salt length '$bad' refused, named"
    tc_assert_eq no "$([ -e "$W/s.bad" ] && echo yes || echo no)" "salt length '$bad': no signature"
done
tc_assert_eq 2 "$(openssl asn1parse -inform DER -in "$W/s.ecdsa" | grep -c 'prim: INTEGER')" \
    "ECDSA signature is DER: a SEQUENCE of two INTEGERs"
# Verification can fail: a changed message does not verify.
cp "$W/msg" "$W/msg.changed"
printf 'x' >>"$W/msg.changed"
tc_expect_exit 1 openssl dgst -sha512 -verify "${PUB[ec]}" -signature "$W/s.ecdsa" \
    "$W/msg.changed"
tc_assert_contains "$TC_OUT$TC_ERR" "Verification failure" "changed message fails to verify"
if [ -n "${PUB[ed]-}" ]; then
    probe 0 --key "${KEYURI[ed]}" sign --alg eddsa --in "$W/msg" --out "$W/s.ed"
    verified "EdDSA" openssl pkeyutl -verify -pubin -inkey "${PUB[ed]}" -rawin -in "$W/msg" \
        -sigfile "$W/s.ed"
fi

# ---------------------------------------------------------------------------------------------
# CSRs, signed with X509_REQ_sign_ctx; the certificates the test CA issues for them.
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
    >"$W/client.ext"
printf 'extendedKeyUsage=clientAuth,emailProtection\n' >>"$W/client.ext"
for k in "${KINDS[@]}"; do
    probe 0 --key "${KEYURI[$k]}" csr --subject "CN=tc $k,O=tokencert test" --out "$W/$k.csr"
    verified "CSR of the $k key" openssl req -in "$W/$k.csr" -verify -noout
    tc_assert_eq "subject=CN = tc $k, O = tokencert test" \
        "$(openssl req -in "$W/$k.csr" -noout -subject)" "CSR subject ($k)"
    openssl req -in "$W/$k.csr" -noout -pubkey >"$W/$k.csr.pub"
    tc_assert_files_eq "${PUB[$k]}" "$W/$k.csr.pub" "CSR carries the token's $k public key"
    tc_expect_exit 0 openssl x509 -req -in "$W/$k.csr" -CA "$CA" -CAkey "$CAKEY" \
        -set_serial "0x$(openssl rand -hex 8)" -days 30 -extfile "$W/client.ext" -out "$W/$k.crt"
done
probe 0 --key "${KEYURI[rsa]}" csr --alg rsa-pss --subject "CN=tc pss" --out "$W/pss.csr"
verified "RSA-PSS CSR" openssl req -in "$W/pss.csr" -verify -noout
PSS_TEXT=$(openssl req -in "$W/pss.csr" -noout -text)
tc_assert_match "$PSS_TEXT" 'Signature Algorithm: rsassaPss' "PSS CSR: RSASSA-PSS"
tc_assert_match "$PSS_TEXT" 'Hash Algorithm: sha256' "PSS CSR: SHA-256"
tc_assert_match "$PSS_TEXT" 'Salt Length: 0x20' "PSS CSR: salt of the hash length"

# ---------------------------------------------------------------------------------------------
# CMS SignedData with signed attributes.
for k in rsa ec; do
    probe 0 --key "${KEYURI[$k]}" cms --in "$W/msg" --cert "$W/$k.crt" --out "$W/$k.p7s"
    verified "CMS signed by the $k key" openssl cms -verify -inform DER -in "$W/$k.p7s" \
        -CAfile "$CA" -purpose any -out "$W/$k.p7s.content"
    tc_assert_files_eq "$W/msg" "$W/$k.p7s.content" "CMS content ($k)"
    tc_assert_match "$(openssl cms -cmsout -print -inform DER -in "$W/$k.p7s")" \
        'object: messageDigest' "CMS has signed attributes ($k)"
done
if [ -n "${PUB[ed]-}" ]; then
    # OpenSSL 3.0's CMS finds no default digest for provider-held Ed25519 keys (software keys
    # included), so CMS is not asked of EdDSA.
    tc_log "CMS with Ed25519 skipped: OpenSSL 3.0 CMS cannot sign with a provided Ed25519 key"
fi

# ---------------------------------------------------------------------------------------------
# TLS client authentication against openssl s_server on 127.0.0.1.
tc__fix_log openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/srv.key" -subj "/CN=localhost" -out "$W/srv.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$W/srv.ext"
tc__fix_log openssl x509 -req -in "$W/srv.csr" -CA "$CA" -CAkey "$CAKEY" -set_serial 0x5e01 \
    -days 30 -extfile "$W/srv.ext" -out "$W/srv.pem"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tls KEY WHAT [probe options] [-- s_server options]
tls() {
    local k=$1 what=$2 port pid out=$W/s_server.out
    shift 2
    local popts=() sopts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        popts+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    sopts=("$@")
    port=$(free_port)
    : >"$out"
    openssl s_server -accept "127.0.0.1:$port" -naccept 1 -rev -Verify 1 -CAfile "$CA" \
        -cert "$W/srv.pem" -key "$W/srv.key" "${sopts[@]}" >"$out" 2>&1 </dev/null &
    pid=$!
    tc_defer "kill $pid 2>/dev/null || true"
    for _ in $(seq 50); do
        grep -q '^ACCEPT' "$out" && break
        sleep 0.1
    done
    probe 0 --key "${KEYURI[$k]}" tls --connect "127.0.0.1:$port" --cert "$W/$k.crt" \
        --CAfile "$CA" "${popts[@]}"
    tc_assert_contains "$TC_OUT" "reply: yek nekot eht morf olleh" "$what: reply received"
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    S_OUT=$(cat "$out")
    tc_assert_contains "$S_OUT" "Peer certificate: CN = tc $k, O = tokencert test" \
        "$what: s_server saw the client's subject"
    tc_assert_contains "$S_OUT" "Verification: OK" "$what: s_server verified the client"
}

for k in "${KINDS[@]}"; do
    tls "$k" "TLS 1.3 $k"
    tc_assert_contains "$TC_OUT" "TLSv1.3" "TLS 1.3 $k: protocol"
    tls "$k" "TLS 1.2 $k" --tls1_2
    tc_assert_contains "$TC_OUT" "TLSv1.2" "TLS 1.2 $k: protocol"
done
# TLS 1.2 with a PKCS#1 v1.5 client signature, the one older servers ask for.
tls rsa "TLS 1.2 rsa PKCS#1" --tls1_2 -- -client_sigalgs RSA+SHA256
tc_assert_contains "$S_OUT" "Signature type: RSA" "TLS 1.2 client signature is PKCS#1 v1.5"
tc_assert_not_contains "$S_OUT" "Signature type: RSA-PSS" "TLS 1.2 client signature is not PSS"

# ---------------------------------------------------------------------------------------------
# RSA decryption.
head -c 48 /dev/urandom >"$W/pt"
tc_expect_exit 0 openssl pkeyutl -encrypt -pubin -inkey "${PUB[rsa]}" -in "$W/pt" -out "$W/ct.pkcs1"
probe 0 --key "${KEYURI[rsa]}" decrypt --pad pkcs1 --in "$W/ct.pkcs1" --out "$W/pt.pkcs1"
tc_assert_files_eq "$W/pt" "$W/pt.pkcs1" "PKCS#1 v1.5 decryption"
tc_expect_exit 0 openssl pkeyutl -encrypt -pubin -inkey "${PUB[rsa]}" -in "$W/pt" \
    -out "$W/ct.oaep1" -pkeyopt rsa_padding_mode:oaep
probe 0 --key "${KEYURI[rsa]}" decrypt --pad oaep --in "$W/ct.oaep1" --out "$W/pt.oaep1"
tc_assert_files_eq "$W/pt" "$W/pt.oaep1" "OAEP (SHA-1) decryption"
tc_expect_exit 0 openssl pkeyutl -encrypt -pubin -inkey "${PUB[rsa]}" -in "$W/pt" \
    -out "$W/ct.oaep256" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
    -pkeyopt rsa_mgf1_md:sha256
rm -f "$W/pt.oaep256"
if [ "$TC_TOKEN_KIND" = softhsm ]; then
    # SoftHSM 2.6 implements OAEP with SHA-1 only and refuses other parameters.
    probe 1 --key "${KEYURI[rsa]}" decrypt --pad oaep --md sha256 --in "$W/ct.oaep256" \
        --out "$W/pt.oaep256"
    tc_assert_contains "$TC_ERR" "C_DecryptInit failed: CKR_ARGUMENTS_BAD" \
        "OAEP SHA-256 refused by SoftHSM, the token's CK_RV shown"
    tc_assert_eq no "$([ -e "$W/pt.oaep256" ] && echo yes || echo no)" "no output on failure"
else
    probe 0 --key "${KEYURI[rsa]}" decrypt --pad oaep --md sha256 --in "$W/ct.oaep256" \
        --out "$W/pt.oaep256"
    tc_assert_files_eq "$W/pt" "$W/pt.oaep256" "OAEP (SHA-256) decryption"
fi
# A ciphertext that is not one: the token's refusal, no output, no crash.
head -c 256 /dev/urandom >"$W/ct.bad"
probe 1 --key "${KEYURI[rsa]}" decrypt --pad pkcs1 --in "$W/ct.bad" --out "$W/pt.bad"
tc_assert_contains "$TC_ERR" "C_Decrypt" "bad ciphertext: the failing call is named"

# ---------------------------------------------------------------------------------------------
# Keys that are not there, or not one.
probe 4 --key "pkcs11:id=%ee%ee" sign --alg ecdsa --in "$W/msg" --out "$W/none.sig"
tc_assert_contains "$TC_ERR" "no private key matches id=eeee" "no match: named"
probe 4 --key "pkcs11:object=no-such-key" sign --alg ecdsa --in "$W/msg" --out "$W/none.sig"
tc_assert_contains "$TC_ERR" "no private key matches object='no-such-key'" "no match by label"
probe 1 --key "pkcs11:" sign --alg ecdsa --in "$W/msg" --out "$W/none.sig"
tc_assert_match "$TC_ERR" "[0-9]+ private keys match .*label 'rsa', id 0a.*name one with id= or object=" \
    "several keys: listed"
probe 1 --key "pkcs11:id=%0a;type=cert" sign --alg rsa-pkcs1 --in "$W/msg" --out "$W/none.sig"
tc_assert_contains "$TC_ERR" "another object type than type=private" "type=cert refused"
probe 1 --key "pkcs11:token=other-token;id=%0a" sign --alg rsa-pkcs1 --in "$W/msg" \
    --out "$W/none.sig"
tc_assert_contains "$TC_ERR" "names another token" "key URI of another token refused"
tc_assert_eq no "$([ -e "$W/none.sig" ] && echo yes || echo no)" "no signature written"

# A certificate of another key: X509_check_private_key compares our key with a plain one.
probe 1 --key "${KEYURI[ec]}" cms --in "$W/msg" --cert "$W/srv.pem" --out "$W/mismatch.p7s"
tc_assert_contains "$TC_ERR" "the certificate does not match the token key" \
    "another EC key's certificate does not match"
probe 1 --key "${KEYURI[rsa]}" cms --in "$W/msg" --cert "$W/ec.crt" --out "$W/mismatch.p7s"
tc_assert_contains "$TC_ERR" "the certificate does not match the token key" \
    "an EC certificate does not match the RSA key"

# ---------------------------------------------------------------------------------------------
# Token failures, injected by the fault module: the call and its CK_RV are named, nothing is
# written, and no failure point anywhere in a CSR or a decryption crashes.
FM_ENV=(env TC_FAULT_TARGET="$MODULE")
fprobe() {
    local code=$1
    shift
    tc_expect_exit "$code" "${FM_ENV[@]}" "$@" "$TC_PROBE" --module "$TC_FAULTMOD" \
        --token "pkcs11:token=$TOKEN_LABEL" --pin-source env:PIN "${PARGS[@]}"
}
rm -f "$W/f.sig"
PARGS=(--key "${KEYURI[ec]}" sign --alg ecdsa --in "$W/msg" --out "$W/f.sig")
fprobe 1 TC_FAULT_FUNC=C_Sign TC_FAULT_AT=1 TC_FAULT_RV=CKR_DEVICE_ERROR
tc_assert_contains "$TC_ERR" "C_Sign failed: CKR_DEVICE_ERROR" "C_Sign failure named"
tc_assert_eq no "$([ -e "$W/f.sig" ] && echo yes || echo no)" "no signature after C_Sign failed"
PARGS=(--key "${KEYURI[rsa]}" sign --alg rsa-pss --in "$W/msg" --out "$W/f.sig")
fprobe 1 TC_FAULT_FUNC=C_SignInit TC_FAULT_AT=1 TC_FAULT_RV=CKR_DEVICE_REMOVED
tc_assert_contains "$TC_ERR" "C_SignInit failed: CKR_DEVICE_REMOVED (was the token removed?)" \
    "C_SignInit failure named"
for what in csr decrypt; do
    if [ $what = csr ]; then
        PARGS=(--key "${KEYURI[rsa]}" csr --subject "CN=fault" --out "$W/f.csr")
    else
        PARGS=(--key "${KEYURI[rsa]}" decrypt --pad pkcs1 --in "$W/ct.pkcs1" --out "$W/f.pt")
    fi
    fprobe 0 TC_FAULT_COUNT_FILE="$W/counts"
    total=$(awk '$1 == "total" { print $2 }' "$W/counts")
    crashes=0
    for n in $(seq 1 "$total"); do
        rc=0
        "${FM_ENV[@]}" TC_FAULT_AT="$n" TC_FAULT_RV=CKR_DEVICE_ERROR "$TC_PROBE" \
            --module "$TC_FAULTMOD" --token "pkcs11:token=$TOKEN_LABEL" --pin-source env:PIN \
            "${PARGS[@]}" >"$W/f.out" 2>&1 || rc=$?
        if [ "$rc" -ge 128 ]; then
            crashes=$((crashes + 1))
            tc_log "$what: fault at call $n: exit $rc"
            sed 's/^/#   /' "$W/f.out"
        fi
    done
    tc_assert_eq 0 "$crashes" "$what: a failure at any of $total PKCS#11 calls never crashes"
done

# ---------------------------------------------------------------------------------------------
# The keys are as generated, and the token is unchanged.
tc_p11_login --list-objects --type privkey >"$W/privkeys" 2>>"$W/harness.log"
for k in "${KINDS[@]}"; do
    block=$(awk -v l="$k" '/^Private Key Object/ { blk = $0; next }
        { blk = blk "\n" $0 } /label:/ && $2 == l { want = 1 }
        /Access:/ && want { print blk; want = 0 }' "$W/privkeys")
    tc_assert_match "$block" "Access:.*[^-]sensitive" "$k key still sensitive"
    tc_assert_contains "$block" "never extractable" "$k key still never extractable"
done
tc_objects_snapshot "$W/snapshot.after"
tc_assert_files_eq "$W/snapshot.before" "$W/snapshot.after" "token objects unchanged"

# ---------------------------------------------------------------------------------------------
# Without its public-key object a key still works when the private object shows its public half
# (RSA: CKA_MODULUS on both kinds); otherwise the error says where it looked.
tc__fix_log tc_p11_login --delete-object --type pubkey --id 0a
tc__fix_log tc_p11_login --delete-object --type pubkey --id 0b
probe 0 --key "${KEYURI[rsa]}" sign --alg rsa-pkcs1 --in "$W/msg" --out "$W/nopub.sig"
verified "RSA key without its public-key object" openssl dgst -sha256 -verify "${PUB[rsa]}" \
    -signature "$W/nopub.sig" "$W/msg"
if [ "$TC_TOKEN_KIND" = softhsm ]; then
    # SoftHSM keeps no CKA_EC_POINT on EC private keys.
    probe 1 --key "${KEYURI[ec]}" sign --alg ecdsa --in "$W/msg" --out "$W/nopub.ec.sig"
    tc_assert_contains "$TC_ERR" "the public half of private key 'ec' can be read neither from the key nor from a public-key object" \
        "EC key without its public-key object: clear error"
else
    probe 0 --key "${KEYURI[ec]}" sign --alg ecdsa --in "$W/msg" --out "$W/nopub.ec.sig"
    verified "EC key without its public-key object" openssl dgst -sha256 -verify "${PUB[ec]}" \
        -signature "$W/nopub.ec.sig" "$W/msg"
fi

tc_finish
