#!/usr/bin/env bash
# tokencert keygen: every key type the token can make, checked independently with pkcs11-tool and
# openssl (both objects, one label, one CKA_ID equal to SHA-1 of the modulus or point, a sensitive
# never-extractable private key with the right usages, a private key invisible without login);
# `list` shows each as a key-only credential; the types a token cannot make are refused with the
# list of those it can; and every refusal or failure (unknown type, duplicate label, token full,
# write-protected token, failure half-way, wrong PIN, missing label) gives its message and exit
# code and leaves the token exactly as it was.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool openssl python3 pkcs11-tool p11tool script
tc_world_init
FM=$TC_FAULTMOD
export TC_FAULT_TARGET=$MODULE
TURI="pkcs11:token=$TOKEN_LABEL"
export WRONG_PIN=98765

if [ "$TC_TOKEN_KIND" = tpm ]; then
    CAN="rsa:2048 rsa:3072 ec:p256 ec:p384"
    CANNOT="rsa:4096 ed25519"
else
    CAN="rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ed25519"
    CANNOT=""
fi

# keygen ARGS...: tokencert keygen on the world's token, PIN from the environment.
keygen() {
    "$TOKENCERT" keygen "$TURI" --module "$MODULE" --pin-source env:PIN "$@"
}

# keygen_fm ARGS...: the same through the fault module (set TC_FAULT_* in the environment).
keygen_fm() {
    "$TOKENCERT" keygen "$TURI" --module "$FM" --pin-source env:PIN "$@"
}

# hex_sha1: SHA-1 of the bytes whose hex is on stdin (colons and blanks ignored), lowercase hex.
hex_sha1() {
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(
        "".join(c for c in sys.stdin.read() if c in "0123456789abcdefABCDEF")))' |
        openssl sha1 -r | cut -d' ' -f1
}

# pub_material FILE: the modulus (RSA) or the public point/key (EC, Ed25519) of a public key
# (DER or PEM), in hex, as openssl prints it.
pub_material() {
    if openssl rsa -pubin -in "$1" -noout -modulus >"$TC_WORLD/mod" 2>/dev/null; then
        sed 's/^Modulus=//' "$TC_WORLD/mod"
    else
        openssl pkey -pubin -in "$1" -noout -text |
            awk '/^pub:/ { f = 1; next } f && /^ +[0-9a-f:]+$/ { printf "%s", $0; next } f { exit }'
    fi
}

# export_pub ID FILE: the public key with CKA_ID ID, exported by GnuTLS's p11tool (tc_pubkey),
# independent of tokencert.
export_pub() {
    tc_pubkey "id=$(tc_pct "$1")" "$2"
}

# expected_bits TYPE: what `openssl pkey -text` says of the key's size.
expected_bits() {
    case $1 in
    rsa:*) echo "${1#rsa:} bit" ;;
    ec:p256) echo "256 bit" ;;
    ec:p384) echo "384 bit" ;;
    ed25519) echo "ED25519 Public-Key" ;;
    esac
}

# only_object KIND LABEL: pkcs11-tool's listing (logged in) of the objects of KIND (privkey,
# pubkey) labelled exactly LABEL, into $OBJ; fails the test unless there is exactly one.
# (pkcs11-tool --list-objects ignores --label, so the listing is filtered here.)
only_object() {
    tc_p11_login --list-objects --type "$1" >"$TC_WORLD/objs" 2>/dev/null || true
    awk -v want="$2" '
        function flush() { if (block != "" && label == want) { printf "%s", block; n++ } }
        /^[^ \t]/ { flush(); block = ""; label = "" }
        { block = block $0 "\n" }
        /^ +label: / { sub(/^ +label: +/, ""); label = $0 }
        END { flush() }' "$TC_WORLD/objs" >"$TC_WORLD/obj"
    OBJ=$(cat "$TC_WORLD/obj")
    tc_assert_eq 1 "$(grep -c "^[A-Za-z].*Key Object" "$TC_WORLD/obj" || true)" \
        "$2: exactly one $1 object"
}

# unchanged WHAT: the token's objects equal the snapshot in $TC_WORLD/base.
unchanged() {
    tc_objects_snapshot "$TC_WORLD/now"
    tc_assert_files_eq "$TC_WORLD/base" "$TC_WORLD/now" "token unchanged: $1"
}

# ---------------------------------------------------------------------------------------------
# What the token can make

tc_expect_exit 0 "$TOKENCERT" keygen "$TURI" --module "$MODULE" --type list
tc_assert_eq "$CAN" "$(tr '\n' ' ' <"$TC_OUT_FILE" | sed 's/ $//')" "--type list names the types"
tc_expect_exit 0 "$TOKENCERT" keygen "$TURI" --module "$MODULE" --type list --json
tc_assert_eq "$CAN" "$(tc_json "$TC_OUT_FILE" '" ".join(j["types"])')" "--type list --json"

# ---------------------------------------------------------------------------------------------
# Every type the token can make

declare -A IDS URIS
for ty in $CAN; do
    label="key $ty"
    tc_expect_exit 0 keygen --label "$label" --type "$ty" --json
    tc_assert_eq "" "$TC_ERR" "$ty: nothing on stderr (no terminal, no progress)"
    cp "$TC_OUT_FILE" "$TC_WORLD/kg.json"
    tc_jexprs "$TC_WORLD/kg.json" 'j["label"]' 'j["type"]' 'j["id"]' 'j["uri"]' 'j["public_uri"]' \
        'j["token"]'
    tc_assert_eq "$label" "${R[0]}" "$ty: label reported"
    tc_assert_eq "$ty" "${R[1]}" "$ty: type reported"
    id=${R[2]}
    IDS[$ty]=$id
    URIS[$ty]=${R[3]}
    tc_assert_match "$id" '^[0-9a-f]{40}$' "$ty: a 20-byte id in lowercase hex"
    tc_assert_match "${R[3]}" "^pkcs11:.*token=$TOKEN_LABEL;.*type=private$" "$ty: private key URI"
    tc_assert_match "${R[4]}" "^pkcs11:.*token=$TOKEN_LABEL;.*type=public$" "$ty: public key URI"
    tc_assert_contains "${R[3]}" "object=key%20${ty/:/%3A}" "$ty: the URI names the label"
    tc_assert_eq "$TOKEN_LABEL" "${R[5]}" "$ty: token reported"

    # Both objects, independently: one each, same label, same id.
    only_object privkey "$label"
    priv=$OBJ
    tc_assert_match "$priv" "ID: +$id\$" "$ty: private key has the reported id"
    access=$(sed -n 's/^ *Access: *//p' <<<"$priv")
    usage=$(sed -n 's/^ *Usage: *//p' <<<"$priv")
    tc_assert_match "$access" '(^|, )sensitive(,|$)' "$ty: private key sensitive"
    tc_assert_match "$access" '(^|, )never extractable(,|$)' "$ty: private key never extractable"
    tc_assert_eq "" "$(tr ',' '\n' <<<"$access" | sed 's/^ *//' | grep -x extractable || true)" \
        "$ty: private key not extractable"
    tc_assert_match "$usage" '(^|, )sign(,|$)' "$ty: private key can sign"
    if [[ $ty == rsa:* ]]; then
        tc_assert_match "$usage" '(^|, )decrypt(,|$)' "$ty: RSA private key can decrypt"
    fi
    only_object pubkey "$label"
    tc_assert_match "$OBJ" "ID: +$id\$" "$ty: public key has the same id"
    tc_assert_match "$OBJ" "Usage: .*verify" "$ty: public key can verify"
    # CKA_PRIVATE: the private key is invisible without login, the public key is not.
    tc_p11 --list-objects --type privkey --label "$label" >"$TC_WORLD/nologin" 2>/dev/null || true
    tc_assert_not_contains "$(cat "$TC_WORLD/nologin")" "$id" "$ty: private key hidden before login"
    tc_p11 --list-objects --type pubkey --label "$label" >"$TC_WORLD/nologin" 2>/dev/null || true
    tc_assert_contains "$(cat "$TC_WORLD/nologin")" "$id" "$ty: public key visible without login"

    # CKA_ID = SHA-1 of the modulus / point, from the public key exported by p11tool.
    if export_pub "$id" "$TC_WORLD/pub.key"; then
        tc_assert_eq "$id" "$(pub_material "$TC_WORLD/pub.key" | hex_sha1)" \
            "$ty: CKA_ID is SHA-1 of the public key material"
        tc_assert_contains "$(openssl pkey -pubin -in "$TC_WORLD/pub.key" -noout -text 2>&1)" \
            "$(expected_bits "$ty")" "$ty: key size as asked"
    else
        tc_fail "$ty: p11tool could not export the public key"
    fi
done

# `list` sees each as a key-only credential with the same id and URI.
tc_expect_exit 0 "$TOKENCERT" list "$TURI" --module "$MODULE" --login --pin-source env:PIN --json
cp "$TC_OUT_FILE" "$TC_WORLD/list.json"
for ty in $CAN; do
    tc_jexprs "$TC_WORLD/list.json" \
        "[(c['kind'], c['id'], c['key']['uri'], c['key']['sensitive'], c['key']['extractable'])
          for t in j['tokens'] for c in t['credentials'] if c['name'] == 'key $ty']"
    tc_assert_eq "[[\"key-only\",\"${IDS[$ty]}\",\"${URIS[$ty]}\",true,false]]" "${R[0]}" \
        "$ty: list shows one key-only credential with the id and URI keygen printed"
done

# The default type is rsa:2048; the plain output names label, type, id and both URIs.
tc_expect_exit 0 keygen --label plain
tc_assert_match "$TC_OUT" '^label: +plain$' "plain output: label"
tc_assert_match "$TC_OUT" '^type: +rsa:2048$' "plain output: the default type is rsa:2048"
tc_assert_match "$TC_OUT" '^id: +[0-9a-f]{40}$' "plain output: id"
tc_assert_match "$TC_OUT" '^uri: +pkcs11:.*type=private$' "plain output: private key URI"
tc_assert_match "$TC_OUT" '^public uri: +pkcs11:.*type=public$' "plain output: public key URI"

# On a terminal, progress on stderr while the token works, cleared at the end.
printf -v cmd '%q ' "$TOKENCERT" keygen "$TURI" --module "$MODULE" --pin-source env:PIN \
    --label on-a-tty --type ec:p256
tc_expect_exit 0 script -qec "$cmd" /dev/null
tc_assert_contains "$TC_OUT" "generating ec:p256 key on token '$TOKEN_LABEL'"$'\xe2\x80\xa6'" 0 s" \
    "on a terminal: progress shown"
tc_assert_contains "$TC_OUT" $'\r\033[K' "on a terminal: progress line cleared"

tc_objects_snapshot "$TC_WORLD/base"

# ---------------------------------------------------------------------------------------------
# Refusals: message, exit code, token unchanged

tc_expect_exit 2 keygen --label x --type rsa:1024
tc_assert_contains "$TC_ERR" \
    "unknown key type 'rsa:1024'; valid types: rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ed25519" \
    "unknown type: the valid ones are listed"
tc_expect_exit 2 "$TOKENCERT" keygen "$TURI" --module "$MODULE" --pin-source env:PIN
tc_assert_contains "$TC_ERR" "--label NAME is required" "missing --label"
tc_expect_exit 2 "$TOKENCERT" keygen --module "$MODULE" --label x
tc_assert_contains "$TC_ERR" "exactly one TOKEN-URI expected" "missing TOKEN-URI"
unchanged "unknown type, missing label or URI"

tc_expect_exit 2 keygen --label "key ec:p256" --type ec:p384
tc_assert_contains "$TC_ERR" "a key labelled 'key ec:p256' already exists (id ${IDS[ec:p256]})" \
    "duplicate label refused, naming the id"
unchanged "duplicate label"

for ty in $CANNOT; do
    tc_expect_exit 1 keygen --label "no $ty" --type "$ty"
    tc_assert_contains "$TC_ERR" \
        "token '$TOKEN_LABEL' cannot generate $ty keys; it can make: $CAN" \
        "$ty: unsupported, naming what the token can make"
done
# A token whose mechanism list promises a type it then cannot make: the failed generation is
# the final word, and the message leaves that type out.
TC_FAULT_FUNC=C_GenerateKeyPair TC_FAULT_AT=1 TC_FAULT_RV=CKR_MECHANISM_INVALID \
    tc_expect_exit 1 keygen_fm --label "no ec" --type ec:p256
tc_assert_contains "$TC_ERR" \
    "token '$TOKEN_LABEL' cannot generate ec:p256 keys (CKR_MECHANISM_INVALID); it can make: ${CAN/ ec:p256/}" \
    "generation refused by the token: unsupported, the others listed"
unchanged "unsupported types"

TC_FAULT_FUNC=C_GenerateKeyPair TC_FAULT_AT=1 TC_FAULT_RV=CKR_DEVICE_MEMORY \
    tc_expect_exit 1 keygen_fm --label full --type ec:p256
tc_assert_contains "$TC_ERR" "token '$TOKEN_LABEL' is full: no room for another key pair" \
    "token full"
unchanged "token full"

TC_FAULT_TOKEN_FLAGS_SET=CKF_WRITE_PROTECTED tc_expect_exit 1 keygen_fm --label ro --type ec:p256
tc_assert_contains "$TC_ERR" "token '$TOKEN_LABEL' is write-protected: no key can be generated" \
    "write-protected token refused before trying"
TC_FAULT_FUNC=C_GenerateKeyPair TC_FAULT_AT=1 TC_FAULT_RV=CKR_TOKEN_WRITE_PROTECTED \
    tc_expect_exit 1 keygen_fm --label ro --type ec:p256
tc_assert_contains "$TC_ERR" "token '$TOKEN_LABEL' is write-protected" \
    "CKR_TOKEN_WRITE_PROTECTED from the token"
unchanged "write-protected"

# Failures after the token made the pair: both objects are destroyed.
TC_FAULT_FUNC=C_SetAttributeValue TC_FAULT_AT=1 TC_FAULT_RV=CKR_DEVICE_ERROR \
    tc_expect_exit 1 keygen_fm --label half --type ec:p256
tc_assert_contains "$TC_ERR" "C_SetAttributeValue(CKA_ID) failed: CKR_DEVICE_ERROR" \
    "failure setting the private key's id named"
TC_FAULT_FUNC=C_SetAttributeValue TC_FAULT_AT=2 TC_FAULT_RV=CKR_DEVICE_ERROR \
    tc_expect_exit 1 keygen_fm --label half --type rsa:2048
tc_assert_contains "$TC_ERR" "C_SetAttributeValue(CKA_ID) failed: CKR_DEVICE_ERROR" \
    "failure setting the public key's id named"
TC_FAULT_FUNC=C_SetAttributeValue TC_FAULT_AT=1 TC_FAULT_RV=CKR_DEVICE_REMOVED \
    tc_expect_exit 5 keygen_fm --label half --type ec:p256
tc_assert_contains "$TC_ERR" "was the token removed?" "token removed half-way"
# The second C_GetAttributeValue after generation reads the public key (the first checks the
# private key's policy).
TC_FAULT_FUNC=C_GetAttributeValue TC_FAULT_AT=2 TC_FAULT_RV=CKR_DEVICE_ERROR \
    tc_expect_exit 1 keygen_fm --label half --type ec:p256
tc_assert_contains "$TC_ERR" "CKR_DEVICE_ERROR" "public key unreadable"
tc_assert_not_contains "$TC_ERR" "could not be removed" "no cleanup warning: the pair was removed"
unchanged "failures half-way leave no half key pair"

tc_expect_exit 6 "$TOKENCERT" keygen "$TURI" --module "$MODULE" --pin-source env:WRONG_PIN \
    --label wrong-pin --type ec:p256
tc_assert_contains "$TC_ERR" "rejected the PIN" "wrong PIN"
unchanged "wrong PIN"

# ---------------------------------------------------------------------------------------------
# A token that does not let CKA_ID change: the pair keeps its random id, with a warning.

TC_FAULT_FUNC=C_SetAttributeValue TC_FAULT_AT=1 TC_FAULT_RV=CKR_ATTRIBUTE_READ_ONLY \
    tc_expect_exit 0 keygen_fm --label fixed-id --type ec:p256 --json
tc_assert_contains "$TC_ERR" "warning: token '$TOKEN_LABEL' does not let CKA_ID change" \
    "fixed id: warned"
fixed=$(tc_json "$TC_OUT_FILE" 'j["id"]')
tc_assert_contains "$TC_ERR" "keeps the random id $fixed" "fixed id: the warning names the id"
only_object privkey fixed-id
tc_assert_match "$OBJ" "ID: +$fixed\$" "fixed id: private key keeps the random id"
only_object pubkey fixed-id
tc_assert_match "$OBJ" "ID: +$fixed\$" "fixed id: public key keeps the same id"

tc_finish
