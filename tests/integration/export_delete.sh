#!/usr/bin/env bash
# export and delete: a certificate exported byte for byte as the token holds it (compared with
# pkcs11-tool's read-out), public keys exported as SubjectPublicKeyInfo equal to openssl's view of
# pkcs11-tool's export, private keys refused, ambiguous URIs refused with the candidates listed;
# delete removes exactly the selected objects (snapshot diff), asks on a terminal, and changes
# nothing without a terminal and without --yes. Every refusal: message, exit code, token unchanged.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_tool openssl pkcs11-tool script setsid cmp stat
tc_world_init
tc_fixture_standard
# A private key whose public key object is gone: the URI then selects only a private key.
tc_fixture_keypair alone 0a EC:prime256v1
tc_p11_login --delete-object --type pubkey --id 0a >>"$TC_WORLD/harness.log" 2>&1 ||
    tc_die "cannot delete the public key of 'alone'"

TOK="pkcs11:token=$TOKEN_LABEL"
OUT=$TC_WORLD/out
mkdir -p "$OUT"
tc_objects_snapshot "$TC_WORLD/base"

unchanged() {
    tc_objects_snapshot "$TC_WORLD/now"
    tc_assert_files_eq "$TC_WORLD/base" "$TC_WORLD/now" "token unchanged: $1"
}

# ---------------------------------------------------------------------------------------------
# Export: certificates

tc_p11 --read-object --type cert --id 01 --output-file "$OUT/valid.p11.der" \
    >>"$TC_WORLD/harness.log" 2>&1 || tc_die "pkcs11-tool cannot read the certificate 'valid'"

tc_expect_exit 0 "$TOKENCERT" export --module "$MODULE" "$TOK;id=%01;type=cert"
cp "$TC_OUT_FILE" "$OUT/valid.pem"
tc_assert_contains "$TC_OUT" "-----BEGIN CERTIFICATE-----" "PEM certificate by default"
openssl x509 -in "$OUT/valid.pem" -outform DER -out "$OUT/valid.der" 2>/dev/null ||
    tc_fail "openssl reads the exported PEM"
tc_assert_files_eq "$OUT/valid.p11.der" "$OUT/valid.der" "exported certificate = pkcs11-tool's"
tc_assert_files_eq "$(tc_expected valid file | sed 's/\.pem$/.der/')" "$OUT/valid.der" \
    "exported certificate = the one written by the fixture"

tc_expect_exit 0 "$TOKENCERT" export --module "$MODULE" --der -o "$OUT/valid.o.der" \
    "$TOK;object=valid;type=cert"
tc_assert_eq "" "$TC_OUT" "nothing on stdout with -o"
tc_assert_files_eq "$OUT/valid.p11.der" "$OUT/valid.o.der" "--der -o FILE: the same bytes"
tc_assert_eq 644 "$(stat -c %a "$OUT/valid.o.der")" "output file mode 0644"
tc_assert_eq "" "$(find "$OUT" -name '*.tmp')" "no temporary file left"

# ---------------------------------------------------------------------------------------------
# Export: public keys (RSA and EC)

for id in 01 02; do
    tc_pubkey "id=$(tc_pct "$id")" "$OUT/$id.p11.pub" || tc_die "p11tool cannot read public key $id"
    openssl pkey -pubin -inform DER -in "$OUT/$id.p11.pub" -outform DER -out "$OUT/$id.ref.der" \
        2>>"$TC_WORLD/harness.log" || tc_die "openssl cannot read p11tool's public key $id"
    tc_expect_exit 0 "$TOKENCERT" export --module "$MODULE" "$TOK;id=%$id;type=public"
    tc_assert_contains "$TC_OUT" "-----BEGIN PUBLIC KEY-----" "public key $id as PEM PUBLIC KEY"
    openssl pkey -pubin -in "$TC_OUT_FILE" -outform DER -out "$OUT/$id.tc.der" 2>/dev/null ||
        tc_fail "openssl reads the exported public key $id"
    tc_assert_files_eq "$OUT/$id.ref.der" "$OUT/$id.tc.der" "public key $id = pkcs11-tool's"
    tc_expect_exit 0 "$TOKENCERT" export --module "$MODULE" --der -o "$OUT/$id.der" \
        "$TOK;id=%$id;type=public"
    tc_assert_files_eq "$OUT/$id.ref.der" "$OUT/$id.der" "public key $id as DER"
done

# Logged in, the private key with the same id is among the matches and ignored.
tc_expect_exit 0 "$TOKENCERT" export --module "$MODULE" --pin-source env:PIN --der \
    -o "$OUT/02.login.der" "$TOK;object=expiring;type=public"
tc_assert_files_eq "$OUT/02.ref.der" "$OUT/02.login.der" "logged in: the same public key"

# ---------------------------------------------------------------------------------------------
# Export: refusals

tc_expect_exit 2 "$TOKENCERT" export --module "$MODULE" --pin-source env:PIN \
    "$TOK;id=%01;type=private"
tc_assert_contains "$TC_ERR" "private keys never leave the token" "type=private refused"
tc_assert_eq "" "$TC_OUT" "nothing written for type=private"

tc_expect_exit 2 "$TOKENCERT" export --module "$MODULE" --pin-source env:PIN "$TOK;id=%0a"
tc_assert_contains "$TC_ERR" "only: private key 'alone' (id 0a)" "only a private key: named"
tc_assert_contains "$TC_ERR" "private keys never leave the token" "only a private key: refused"

tc_expect_exit 4 "$TOKENCERT" export --module "$MODULE" "$TOK;id=%0a"
tc_assert_contains "$TC_ERR" "try --login" "not logged in: the private key is not seen"

tc_expect_exit 2 "$TOKENCERT" export --module "$MODULE" "$TOK;id=%01"
tc_assert_contains "$TC_ERR" "certificate 'valid' (id 01)" "ambiguous: the certificate listed"
tc_assert_contains "$TC_ERR" "public key 'valid' (id 01)" "ambiguous: the public key listed"
tc_assert_contains "$TC_ERR" "type=cert" "ambiguous: says how to choose"

tc_expect_exit 2 "$TOKENCERT" export --module "$MODULE" "$TOK;object=renewed;type=cert"
tc_assert_contains "$TC_ERR" "selects 2 objects" "two certificates of one credential refused"

tc_expect_exit 2 "$TOKENCERT" export --module "$MODULE" "$TOK"
tc_assert_contains "$TC_ERR" "the URI names no object: add object=, id= or type=" \
    "export: URI without object attributes refused"

tc_expect_exit 4 "$TOKENCERT" export --module "$MODULE" "$TOK;id=%99;type=cert"
tc_assert_contains "$TC_ERR" "no object on token '$TOKEN_LABEL' matches the URI" "no match: exit 4"

tc_expect_exit 2 "$TOKENCERT" export --module "$MODULE" "$TOK;id=%01" "$TOK;id=%02"
tc_assert_contains "$TC_ERR" "exactly one OBJECT-URI" "two URIs: usage error"

unchanged "after every export"

# ---------------------------------------------------------------------------------------------
# Delete: refusals change nothing

tc_expect_exit 2 setsid "$TOKENCERT" delete --module "$MODULE" --pin-source env:PIN \
    "$TOK;id=%03" </dev/null
tc_assert_contains "$TC_ERR" "not on a terminal: nothing deleted" "no terminal, no --yes: refused"
tc_assert_contains "$TC_ERR" "private key  expired" "the objects are listed first"
unchanged "delete without a terminal and without --yes"

tc_expect_exit 2 "$TOKENCERT" delete --module "$MODULE" --pin-source env:PIN --yes "$TOK"
tc_assert_contains "$TC_ERR" "the URI names no object: add object=, id= or type=" \
    "delete: URI without object attributes refused"
tc_expect_exit 4 "$TOKENCERT" delete --module "$MODULE" --pin-source env:PIN --yes "$TOK;id=%99"
tc_assert_contains "$TC_ERR" "no object on token" "delete: no match, exit 4"
unchanged "delete refusals"

# On a terminal: anything but yes keeps the objects.
on_tty() {
    local answer=$1
    shift
    local cmd
    printf -v cmd '%q ' "$@"
    {
        trap '' PIPE
        sleep 1
        printf '%s\n' "$answer" 2>/dev/null || true
    } | script -qec "$cmd" /dev/null
}
tc_expect_exit 1 on_tty n "$TOKENCERT" delete --module "$MODULE" --pin-source env:PIN "$TOK;id=%03"
tc_assert_contains "$TC_OUT" "Delete 3 objects? [y/N]" "the terminal is asked"
tc_assert_contains "$TC_OUT" "nothing deleted" "answer n: nothing deleted"
unchanged "delete answered n"

# ---------------------------------------------------------------------------------------------
# Delete: exactly the selected objects

tc_expect_exit 0 on_tty y "$TOKENCERT" delete --module "$MODULE" --pin-source env:PIN "$TOK;id=%03"
tc_assert_contains "$TC_OUT" "Deleted 3 objects" "answer y: deleted"
awk -F'\t' '$3 != "03"' "$TC_WORLD/base" >"$TC_WORLD/expect1"
tc_objects_snapshot "$TC_WORLD/now"
tc_assert_files_eq "$TC_WORLD/expect1" "$TC_WORLD/now" "only the objects with id 03 are gone"

tc_expect_exit 0 "$TOKENCERT" delete --module "$MODULE" --pin-source env:PIN --yes \
    "$TOK;object=renewed;type=cert"
tc_assert_contains "$TC_OUT" "Deleted 2 objects" "--yes: two certificates deleted"
tc_assert_contains "$TC_OUT" "certificate  renewed" "what was deleted is printed"
awk -F'\t' '!(($1 == "cert" || $1 == "certvalue") && $2 == "renewed")' "$TC_WORLD/expect1" \
    >"$TC_WORLD/expect2"
tc_objects_snapshot "$TC_WORLD/now"
tc_assert_files_eq "$TC_WORLD/expect2" "$TC_WORLD/now" "the keys of 'renewed' are still there"

tc_expect_exit 0 "$TOKENCERT" delete --module "$MODULE" --pin-source env:PIN --yes \
    "$TOK;id=%0a;type=private"
tc_assert_contains "$TC_OUT" "Deleted 1 object:" "a lone private key deleted"
awk -F'\t' '$3 != "0a"' "$TC_WORLD/expect2" >"$TC_WORLD/expect3"
tc_objects_snapshot "$TC_WORLD/now"
tc_assert_files_eq "$TC_WORLD/expect3" "$TC_WORLD/now" "nothing else deleted"

tc_expect_exit 6 env WRONG=0000 "$TOKENCERT" delete --module "$MODULE" --pin-source env:WRONG --yes \
    "$TOK;id=%01"
tc_objects_snapshot "$TC_WORLD/now"
tc_assert_files_eq "$TC_WORLD/expect3" "$TC_WORLD/now" "wrong PIN: nothing deleted"

tc_finish
