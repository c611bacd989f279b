#!/usr/bin/env bash
# import of certificates: PEM, DER, PKCS#7 (DER and PEM) and a whole chain in one PEM, each
# attached to the token key it was issued for (generated on the token), CA certificates stored
# once as authorities, every attribute read back independently (pkcs11-tool and a ctypes reader).
# Bad input — a certificate for no key, for a key on another token, garbage, a fingerprint
# mismatch or a malformed one, expired and not yet valid certificates, a chain that does not
# verify, a missing file — each gives its message and exit code and leaves the token unchanged;
# the overrides (--allow-orphan, --allow-invalid-dates, --no-verify) then work. Importing twice
# changes nothing.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool openssl certtool pkcs11-tool python3 sha1sum cmp
tc_world_init
W=$TC_WORLD
D=$TC_DAY
URI="pkcs11:token=$TOKEN_LABEL"
TC=("$TOKENCERT" import "$URI" --module "$MODULE" --pin-source env:PIN)

# ---------------------------------------------------------------------------------------------
# Helpers

# issue OUT PUBKEY CA_CERT CA_KEY SERIAL NB_OFF NA_OFF CN [ca]: a certificate (PEM OUT.pem and
# DER OUT.der) for PUBKEY, signed by CA, valid from now+NB_OFF to now+NA_OFF seconds.
issue() {
    local out=$1 pub=$2 ca=$3 cakey=$4 serial=$5 nb=$6 na=$7 cn=$8 kind=${9-leaf}
    {
        printf 'cn = "%s"\norganization = "tokencert test"\nserial = %s\n' "$cn" "$serial"
        printf 'activation_date = "%s"\nexpiration_date = "%s"\n' \
            "$(tc__fix_date "TC_FIXTURE_NOW + $nb")" "$(tc__fix_date "TC_FIXTURE_NOW + $na")"
        if [ "$kind" = ca ]; then
            printf 'ca\ncert_signing_key\ncrl_signing_key\n'
        else
            printf 'signing_key\ntls_www_client\n'
        fi
    } >"$out.tmpl"
    tc__fix_log certtool --generate-certificate --load-pubkey "$pub" --load-ca-certificate "$ca" \
        --load-ca-privkey "$cakey" --template "$out.tmpl" --outfile "$out.pem"
    tc__fix_log openssl x509 -in "$out.pem" -outform DER -out "$out.der"
}

# objattrs: the ctypes view of every object on the token (p11objattrs.py) in $ATTRS.
objattrs() {
    ATTRS=$(TC_P11CERTS_PIN=$PIN python3 "$TC_LIB_DIR/p11objattrs.py" "$MODULE" "$TOKEN_LABEL") ||
        tc_die "p11objattrs.py failed"
}

unchanged() {
    tc_objects_snapshot "$W/snap.now"
    tc_assert_files_eq "$W/snap.base" "$W/snap.now" "token unchanged: $1"
}

sha256_of() {
    local v
    v=$(sha256sum "$1")
    printf '%s\n' "${v%% *}"
}

serial_of() {
    local v
    v=$(openssl x509 -in "$1" -noout -serial)
    printf '%s\n' "${v#serial=}"
}

# The CKA_ID derived from an EC P-256 public key (PEM): SHA-1 of the 65-byte point, as OpenSC
# computes it; the SubjectPublicKeyInfo ends with the point.
ec_derived_id() {
    local v
    v=$(openssl pkey -pubin -in "$1" -outform DER | tail -c 65 | sha1sum)
    printf '%s\n' "${v%% *}"
}

# ---------------------------------------------------------------------------------------------
# The world: a root CA, an intermediate, a foreign CA; keys generated on the token.

tc_fixture_ca
ROOT=$TC_CA_CERT
ROOT_KEY=$TC_CA_KEY
tc__fix_log openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/int.key"
tc__fix_log openssl pkey -in "$W/int.key" -pubout -out "$W/int.pub"
issue "$W/int" "$W/int.pub" "$ROOT" "$ROOT_KEY" 0x0CA2 $((-D)) $((3650 * D)) "Test Intermediate" ca
INT=$W/int.pem
tc__fix_log openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/foreign.key"
tc__fix_log openssl req -new -x509 -key "$W/foreign.key" -subj "/CN=Foreign CA" -days 30 \
    -out "$W/foreign.pem"

K=$TC_FIXTURE/keys
tc_fixture_keypair alice 01 rsa:2048
tc_fixture_keypair bob 02 EC:prime256v1
tc_fixture_keypair carol 03 EC:prime256v1
tc_fixture_keypair dave 04 EC:prime256v1
tc_fixture_keypair erin 05 EC:prime256v1
tc_fixture_keypair frank 06 EC:prime256v1
tc_fixture_keypair gina 07 EC:prime256v1
tc_fixture_keypair hank 08 EC:prime256v1

issue "$W/alice" "$K/01.pub.pem" "$ROOT" "$ROOT_KEY" 0x1001 $((-D)) $((365 * D)) alice
issue "$W/bob" "$K/02.pub.pem" "$ROOT" "$ROOT_KEY" 0x1002 $((-D)) $((365 * D)) bob
issue "$W/carol" "$K/03.pub.pem" "$ROOT" "$ROOT_KEY" 0x1003 $((-D)) $((365 * D)) carol
issue "$W/dave" "$K/04.pub.pem" "$W/int.pem" "$W/int.key" 0x1004 $((-D)) $((365 * D)) dave
issue "$W/erin" "$K/05.pub.pem" "$W/int.pem" "$W/int.key" 0x1005 $((-D)) $((365 * D)) erin
issue "$W/frank" "$K/06.pub.pem" "$ROOT" "$ROOT_KEY" 0x1006 $((-400 * D)) $((-10 * D)) frank
issue "$W/gina" "$K/07.pub.pem" "$ROOT" "$ROOT_KEY" 0x1007 $((10 * D)) $((400 * D)) gina
issue "$W/hank" "$K/08.pub.pem" "$W/foreign.pem" "$W/foreign.key" 0x1008 $((-D)) $((20 * D)) hank
# A certificate for a key that is nowhere on the token.
tc__fix_log openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/orphan.key"
tc__fix_log openssl pkey -in "$W/orphan.key" -pubout -out "$W/orphan.pub"
issue "$W/orphan" "$W/orphan.pub" "$ROOT" "$ROOT_KEY" 0x1009 $((-D)) $((365 * D)) orphan
# A key on a second token, and a certificate for it.
tc_world_new_token other
TC_P11_TOKEN=other tc__fix_log tc_p11_login --keypairgen --key-type EC:prime256v1 --id 0a \
    --label elsewhere
TC_P11_TOKEN=other tc_pubkey "id=%0a" "$W/elsewhere.der" || tc_die "p11tool cannot read elsewhere's public key"
tc__fix_log openssl pkey -pubin -inform DER -in "$W/elsewhere.der" -out "$W/elsewhere.pub"
issue "$W/elsewhere" "$W/elsewhere.pub" "$ROOT" "$ROOT_KEY" 0x100A $((-D)) $((365 * D)) elsewhere

# The containers CAs deliver.
tc__fix_log openssl crl2pkcs7 -nocrl -certfile "$W/carol.pem" -certfile "$ROOT" -outform DER \
    -out "$W/carol.p7b"
tc__fix_log openssl crl2pkcs7 -nocrl -certfile "$W/dave.pem" -certfile "$INT" -out "$W/dave.p7c"
cat "$W/erin.pem" "$INT" "$ROOT" >"$W/erin-chain.pem"
printf 'this is not a certificate\n' >"$W/garbage.txt"
head -c 300 "$W/bob.der" >"$W/truncated.der"

tc_objects_snapshot "$W/snap.base"

# ---------------------------------------------------------------------------------------------
# Bad input first, each against the untouched token.

tc_log "a certificate whose key is not on the token"
tc_expect_exit 4 "${TC[@]}" --ca-file "$ROOT" "$W/orphan.pem"
tc_assert_contains "$TC_ERR" "$W/orphan.pem: certificate 'CN=orphan,O=tokencert test' matches no key on token '$TOKEN_LABEL' (--allow-orphan stores it anyway)" "orphan refused, named"

tc_log "a certificate whose key lives on another token"
tc_expect_exit 4 "${TC[@]}" --ca-file "$ROOT" "$W/elsewhere.pem"
tc_assert_contains "$TC_ERR" "certificate 'CN=elsewhere,O=tokencert test' matches no key on token '$TOKEN_LABEL'" "key on another token: refused"
TC_P11_TOKEN=other tc_expect_exit 0 tc_p11 --list-objects --type cert
tc_assert_not_contains "$TC_OUT" "Certificate Object" "nothing written to the other token"

tc_log "not a certificate"
tc_expect_exit 9 "${TC[@]}" "$W/garbage.txt"
tc_assert_contains "$TC_ERR" "$W/garbage.txt: not a certificate, PKCS#7 or PKCS#12 file" "garbage named"
tc_expect_exit 9 "${TC[@]}" "$W/truncated.der"
tc_assert_contains "$TC_ERR" "$W/truncated.der: not a certificate, PKCS#7 or PKCS#12 file" "truncated DER named"
# A PEM block type holding escape sequences (a C0 ESC, a C1 CSI, a bidi override) is named
# escaped, never raw (issue 16, defect 5).
printf -- '-----BEGIN \033]0;owned\007\033[2J\302\23331m\342\200\256X-----\nAAAA\n-----END \033]0;owned\007\033[2J\302\23331m\342\200\256X-----\n' \
    >"$W/escblock.pem"
tc_expect_exit 9 "${TC[@]}" "$W/escblock.pem"
tc_assert_contains "$TC_ERR" "holds a '\\x1b]0;owned\\x07\\x1b[2J\\xc2\\x9b31m\\xe2\\x80\\xaeX' PEM block" "the PEM block type is named escaped"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f\x80-\xff]' "$TC_ERR_FILE"; then
    tc_fail "the PEM block type reaches the terminal raw"
else
    tc_pass "no control or non-ASCII byte in the message"
fi

tc_log "all or nothing: a good certificate with a bad file writes nothing"
tc_expect_exit 9 "${TC[@]}" --ca-file "$ROOT" "$W/alice.pem" "$W/garbage.txt"
tc_expect_exit 4 "${TC[@]}" --ca-file "$ROOT" "$W/alice.pem" "$ROOT" "$W/orphan.pem"

tc_log "fingerprints"
ALICE_SHA256=$(openssl x509 -in "$W/alice.pem" -noout -fingerprint -sha256)
ALICE_SHA256=${ALICE_SHA256#*=}
BOB_SHA256=$(openssl x509 -in "$W/bob.pem" -noout -fingerprint -sha256)
BOB_SHA256=${BOB_SHA256#*=}
tc_expect_exit 9 "${TC[@]}" --ca-file "$ROOT" --expect-fingerprint "sha256:$BOB_SHA256" "$W/alice.pem"
tc_assert_contains "$TC_ERR" "fingerprint mismatch: expected sha256:$BOB_SHA256, the file's certificate has sha256:$ALICE_SHA256" "mismatch names both fingerprints"
tc_expect_exit 2 "${TC[@]}" --ca-file "$ROOT" --expect-fingerprint "sha256:ABCD" "$W/alice.pem"
tc_assert_contains "$TC_ERR" "malformed expected fingerprint 'sha256:ABCD'" "short fingerprint: usage error"
tc_expect_exit 2 "${TC[@]}" --ca-file "$ROOT" --expect-fingerprint "md5:${ALICE_SHA256:0:47}" "$W/alice.pem"
tc_assert_contains "$TC_ERR" "malformed expected fingerprint" "unknown algorithm: usage error"

tc_log "validity dates"
tc_expect_exit 9 "${TC[@]}" --ca-file "$ROOT" "$W/frank.pem"
FRANK_NA=$(openssl x509 -in "$W/frank.pem" -noout -enddate -dateopt iso_8601)
FRANK_NA=${FRANK_NA#notAfter=}
tc_assert_contains "$TC_ERR" "certificate 'CN=frank,O=tokencert test' expired on ${FRANK_NA/ /T} (--allow-invalid-dates to import anyway)" "expired refused with its date"
tc_expect_exit 9 "${TC[@]}" --ca-file "$ROOT" "$W/gina.pem"
GINA_NB=$(openssl x509 -in "$W/gina.pem" -noout -startdate -dateopt iso_8601)
GINA_NB=${GINA_NB#notBefore=}
tc_assert_contains "$TC_ERR" "certificate 'CN=gina,O=tokencert test' is not valid before ${GINA_NB/ /T}" "not yet valid refused with its date"

tc_log "a malformed validity date, in a certificate the CA really signed"
# baddate.py IN.der OUT.der CAKEY KIND: IN with its notAfter replaced, the TBSCertificate signed
# again with CAKEY (SHA-256), so that only the date is wrong. KIND month13: the UTCTime's month
# becomes 13; letter: a GeneralizedTime of the right length with a letter among its digits.
cat >"$W/baddate.py" <<'EOF_PY'
import subprocess, sys


def tlv(buf, off):
    """(tag, start of content, end of element) of the DER element at off."""
    tag, n = buf[off], buf[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[off:off + k], "big")
        off += k
    return tag, off, off + n


def children(buf, start, end):
    out = []
    while start < end:
        _, _, e = tlv(buf, start)
        out.append(buf[start:e])
        start = e
    return out


def enc(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(b)]) + b
    return head + content


def main(src, dst, cakey, kind):
    der = open(src, "rb").read()
    _, cs, ce = tlv(der, 0)
    tbs, sigalg, _ = children(der, cs, ce)
    _, ts, te = tlv(tbs, 0)
    fields = children(tbs, ts, te)
    i = 4 if fields[0][0] == 0xA0 else 3  # validity: after [version,] serial, sigAlg, issuer
    _, vs, ve = tlv(fields[i], 0)
    not_before, not_after = children(fields[i], vs, ve)
    t, s, e = tlv(not_after, 0)
    value = bytearray(not_after[s:e])
    if kind == "month13":
        assert t == 0x17 and len(value) == 13, "notAfter is not a UTCTime"
        value[2:4] = b"13"
        not_after = enc(0x17, bytes(value))
    else:
        if t == 0x17:  # widen to GeneralizedTime: YY -> YYYY
            value = bytearray((b"19" if value[0] >= ord("5") else b"20") + bytes(value))
        value[6] = ord("X")  # the hour's first digit
        not_after = enc(0x18, bytes(value))
    fields[i] = enc(0x30, not_before + not_after)
    tbs = enc(0x30, b"".join(fields))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", cakey], input=tbs,
                         stdout=subprocess.PIPE, check=True).stdout
    open(dst, "wb").write(enc(0x30, tbs + sigalg + enc(0x03, b"\0" + sig)))


main(*sys.argv[1:])
EOF_PY
issue "$W/alice-date" "$K/01.pub.pem" "$ROOT" "$ROOT_KEY" 0x100B $((-D)) $((365 * D)) alice
tc_assert_match "$(openssl x509 -in "$W/alice-date.pem" -noout -text)" \
    'Signature Algorithm: ecdsa-with-SHA256' "the test CA signs with ECDSA and SHA-256"
for kind in month13 letter; do
    python3 "$W/baddate.py" "$W/alice-date.der" "$W/baddate-$kind.der" "$ROOT_KEY" "$kind" ||
        tc_die "baddate.py $kind failed"
    # Only the date is wrong: the signature verifies when dates are not looked at.
    tc_expect_exit 0 openssl verify -no_check_time -CAfile "$ROOT" "$W/baddate-$kind.der"
    tc_expect_exit 9 "${TC[@]}" --ca-file "$ROOT" "$W/baddate-$kind.der"
    tc_assert_contains "$TC_ERR" "$W/baddate-$kind.der: certificate 'CN=alice,O=tokencert test' has a malformed notAfter date" \
        "malformed notAfter ($kind): refused, the file, certificate and date named"
    # Neither override makes a date that does not convert acceptable.
    tc_expect_exit 9 "${TC[@]}" --ca-file "$ROOT" --allow-invalid-dates --no-verify \
        "$W/baddate-$kind.der"
    tc_assert_contains "$TC_ERR" "has a malformed notAfter date" \
        "malformed notAfter ($kind): refused with --allow-invalid-dates too"
    unchanged "a certificate with a malformed notAfter ($kind)"
done

tc_log "a chain that does not verify"
tc_expect_exit 9 "${TC[@]}" --ca-file "$ROOT" "$W/hank.pem"
tc_assert_contains "$TC_ERR" "certificate 'CN=hank,O=tokencert test' does not verify: unable to get local issuer certificate (--ca-file, or --no-verify to import anyway)" "unverifiable chain refused"
# Without --ca-file the system's anchors are used: the test CA is not among them.
tc_expect_exit 9 "${TC[@]}" "$W/alice.pem"
tc_assert_contains "$TC_ERR" "does not verify: unable to get local issuer certificate" "system anchors do not know the test CA"
# An intermediate without its root in the anchors.
tc_expect_exit 9 "${TC[@]}" --ca-file "$W/foreign.pem" "$W/dave.p7c"
tc_assert_contains "$TC_ERR" "certificate 'CN=dave,O=tokencert test' does not verify" "PKCS#7 chain checked"

tc_log "missing files"
tc_expect_exit 10 "${TC[@]}" --ca-file "$ROOT" "$W/alice.pem" "$W/no-such.pem"
tc_assert_contains "$TC_ERR" "cannot read '$W/no-such.pem': No such file or directory" "missing file named"
tc_expect_exit 10 "${TC[@]}" --ca-file "$W/no-such-ca.pem" "$W/alice.pem"
tc_assert_contains "$TC_ERR" "cannot read CA certificates from '$W/no-such-ca.pem'" "missing CA file named"
tc_expect_exit 2 "${TC[@]}"
tc_assert_contains "$TC_ERR" "a token URI and at least one file expected" "no file: usage"

tc_log "a write failing half-way: what this run wrote is destroyed again"
# erin's chain needs three new objects (leaf, intermediate, root); fail the second and the third.
for at in 2 3; do
    tc_expect_exit 1 env TC_FAULT_TARGET="$MODULE" TC_FAULT_FUNC=C_CreateObject TC_FAULT_AT=$at \
        TC_FAULT_RV=CKR_DEVICE_MEMORY "$TOKENCERT" import "$URI" --module "$TC_FAULTMOD" \
        --pin-source env:PIN --ca-file "$ROOT" "$W/erin-chain.pem"
    tc_assert_contains "$TC_ERR" "C_CreateObject (certificate) failed: CKR_DEVICE_MEMORY" "failure $at named"
    unchanged "C_CreateObject $at of 3 failed"
done

unchanged "after every refusal"

# ---------------------------------------------------------------------------------------------
# Good input.

tc_log "PEM (RSA), with the expected fingerprint given as a portal prints it"
FP=$(openssl x509 -in "$W/alice.pem" -noout -fingerprint -sha1)
FP=${FP#*=}
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" --expect-fingerprint "SHA1:${FP,,}" "$W/alice.pem"
tc_assert_contains "$TC_OUT" "stored certificate 'alice' (id 01): CN=alice,O=tokencert test" "alice stored under the key's id and label"
tc_expect_exit 0 tc_p11 --read-object --type cert --id 01 -o "$W/alice.back.der"
if cmp -s "$W/alice.der" "$W/alice.back.der"; then
    tc_pass "certificate read back under CKA_ID 01 is the file's"
else
    tc_fail "certificate read back under CKA_ID 01 differs from the file"
fi
objattrs
tc_assert_contains "$ATTRS" "cert 01 alice cat=1 subject=ok issuer=ok serial=$(serial_of "$W/alice.pem") sha256=$(sha256_of "$W/alice.der")" "CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER, category 1"

tc_log "DER, without a chain in the input"
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" "$W/bob.der"
tc_assert_contains "$TC_OUT" "stored certificate 'bob' (id 02)" "DER stored"

tc_log "PKCS#7 DER with the root: the root becomes an authority"
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" "$W/carol.p7b"
tc_assert_contains "$TC_OUT" "stored certificate 'carol' (id 03)" "PKCS#7 leaf stored"
tc_assert_contains "$TC_OUT" "stored CA certificate 'Test CA'" "PKCS#7 root stored as authority"

tc_log "PKCS#7 PEM with an intermediate"
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" "$W/dave.p7c"
tc_assert_contains "$TC_OUT" "stored certificate 'dave' (id 04)" "PKCS#7 PEM leaf stored"
tc_assert_contains "$TC_OUT" "stored CA certificate 'Test Intermediate'" "intermediate stored"

tc_log "a chain in one PEM: leaf, intermediate, root (the last two already there)"
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" --json "$W/erin-chain.pem"
cp "$TC_OUT_FILE" "$W/erin.json"
tc_jexprs "$W/erin.json" '[(i["kind"], i["existed"], i["label"], i["id"]) for i in j["items"]]' \
    'j["items"][0]["sha256"]' 'j["items"][0]["uri"]'
tc_assert_eq '[["certificate",false,"erin","05"],["authority",true,"Test Intermediate","'"$(ec_derived_id "$W/int.pub")"'"],["authority",true,"Test CA","'"$(openssl pkey -in "$ROOT_KEY" -pubout -outform DER | tail -c 65 | sha1sum | cut -d' ' -f1)"'"]]' \
    "${R[0]}" "JSON items: leaf stored, authorities already present, ids derived from their keys"
ERIN_SHA256=$(openssl x509 -in "$W/erin.pem" -noout -fingerprint -sha256)
tc_assert_eq "${ERIN_SHA256#*=}" "${R[1]}" "JSON sha256 is the certificate's"
tc_assert_contains "${R[2]}" "id=%05;object=erin;type=cert" "JSON uri names the object"

objattrs
ROOT_DER_SHA=$(openssl x509 -in "$ROOT" -outform DER | sha256sum | cut -d' ' -f1)
INT_DER_SHA=$(sha256_of "$W/int.der")
n_root=$(grep -c "sha256=$ROOT_DER_SHA" <<<"$ATTRS" || true)
n_int=$(grep -c "sha256=$INT_DER_SHA" <<<"$ATTRS" || true)
tc_assert_eq 1 "$n_root" "root stored once although three inputs held it"
tc_assert_eq 1 "$n_int" "intermediate stored once although two inputs held it"
tc_assert_match "$ATTRS" "cert [0-9a-f]{40} Test_CA cat=2 subject=ok issuer=ok serial=0CA1 " "root: authority, category 2"
tc_assert_match "$ATTRS" "cert [0-9a-f]{40} Test_Intermediate cat=2 subject=ok issuer=ok serial=0CA2 " "intermediate: authority, category 2"
tc_expect_exit 0 tc_p11 --list-objects --type cert
tc_assert_contains "$TC_OUT" "subject:    DN: O=tokencert test, CN=erin" "pkcs11-tool shows the subject"

tc_log "the overrides"
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" --allow-orphan "$W/orphan.pem"
ORPHAN_ID=$(ec_derived_id "$W/orphan.pub")
tc_assert_contains "$TC_OUT" "stored certificate 'orphan' (id $ORPHAN_ID)" "orphan stored with the derived id"
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" --allow-invalid-dates "$W/frank.pem" "$W/gina.pem"
tc_assert_contains "$TC_ERR" "warning: $W/frank.pem: certificate 'CN=frank,O=tokencert test' expired on ${FRANK_NA/ /T}; imported anyway" "expired imported with a warning"
tc_assert_contains "$TC_ERR" "warning: $W/gina.pem: certificate 'CN=gina,O=tokencert test' is not valid before" "not yet valid imported with a warning"
tc_assert_contains "$TC_OUT" "stored certificate 'frank' (id 06)" "frank stored"
tc_assert_contains "$TC_OUT" "stored certificate 'gina' (id 07)" "gina stored"
tc_expect_exit 0 "${TC[@]}" --no-verify --label "hank's cert" "$W/hank.pem"
tc_assert_contains "$TC_OUT" "stored certificate 'hank's cert' (id 08)" "--no-verify and --label"

tc_log "the listing sees full credentials (named by their key's label)"
tc_expect_exit 0 "$TOKENCERT" list "$URI" --module "$MODULE" --login --pin-source env:PIN --json
cp "$TC_OUT_FILE" "$W/list.json"
tc_jexprs "$W/list.json" \
    'sorted((c["name"], c["kind"], len(c["certificates"])) for t in j["tokens"] for c in t["credentials"] if c["kind"] != "authority")'
tc_assert_eq '[["alice","credential",1],["bob","credential",1],["carol","credential",1],["dave","credential",1],["erin","credential",1],["frank","credential",1],["gina","credential",1],["hank","credential",1],["orphan","certificate-only",1]]' \
    "${R[0]}" "every imported certificate pairs with its key"

tc_log "importing again changes nothing"
tc_objects_snapshot "$W/snap.full"
tc_expect_exit 0 "${TC[@]}" --ca-file "$ROOT" "$W/alice.pem" "$W/bob.der" "$W/carol.p7b" \
    "$W/dave.p7c" "$W/erin-chain.pem"
tc_assert_contains "$TC_OUT" "0 objects stored on token '$TOKEN_LABEL', 7 already present" "all already present"
tc_assert_contains "$TC_OUT" "already present: certificate 'alice' (id 01)" "alice already present"
tc_objects_snapshot "$W/snap.again"
tc_assert_files_eq "$W/snap.full" "$W/snap.again" "second import leaves the token as it was"

tc_finish
