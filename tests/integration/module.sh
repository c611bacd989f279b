#!/usr/bin/env bash
# tokencert-pkcs11.so, the filter module, seen by independent applications: pkcs11-tool and
# GnuTLS's p11tool list exactly each credential's current certificate and its keys (and the CA
# and the certificate without a key), `show = valid` adds the superseded ones, the test clock
# moves what is current, pkcs11-tool --test runs through it, gnutls-cli authenticates to
# openssl s_server with the current certificate of a label that holds two, and a bad
# configuration makes C_Initialize fail with a message on stderr only.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tool p11tool gnutls-cli certtool certutil modutil unshare
if [ -z "${TC_PKCS11_MODULE-}" ] || [ ! -f "$TC_PKCS11_MODULE" ]; then
    tc_die "TC_PKCS11_MODULE must name tokencert-pkcs11.so (got '${TC_PKCS11_MODULE-}'); run through ctest"
fi
TM=$TC_PKCS11_MODULE
if [ -z "${TC_P11_THREADS-}" ] || [ ! -x "$TC_P11_THREADS" ]; then
    tc_die "TC_P11_THREADS must name tc-p11-threads (got '${TC_P11_THREADS-}'); run through ctest"
fi
tc_require_tool nm readelf

# What the module brings into an application: one exported entry point, and no SQLite, p11-kit
# or libtokencert behind it.
tc_assert_eq "C_GetFunctionList" "$(nm -D --defined-only "$TM" | awk '$2 ~ /^[TtDdBbVvWw]$/ { print $3 }')" \
    "the module exports C_GetFunctionList only"
NEEDED=$(readelf -d "$TM" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in libsqlite3 libp11-kit libtokencert libldap libconfig; do
    tc_assert_not_contains "$NEEDED" "$lib" "the module does not link $lib"
done

tc_world_init
W=$TC_WORLD
tc_fixture_standard
# (a') a renewal with a new key: two keys, two certificates, one label, overlapping validity.
tc_fixture_keypair rekeyed 0a EC:prime256v1
tc_fixture_issue rekeyed 0a 0x10AA $((-300 * TC_DAY)) $((20 * TC_DAY))
tc_fixture_keypair rekeyed 0b EC:prime256v1
tc_fixture_issue rekeyed 0b 0x10AB $((-1 * TC_DAY)) $((700 * TC_DAY))

printf '# the module under test wraps the world'"'"'s module\nmodule = %s\n' "$MODULE" >"$W/pkcs11.conf"
export TOKENCERT_PKCS11_CONFIG=$W/pkcs11.conf

# objects MODULE [nologin]: one line per object as pkcs11-tool lists it, logged in unless told:
# "cert|LABEL|ID|SERIAL" or "private|LABEL|ID" / "public|LABEL|ID", sorted.
objects() {
    local login=(--login --pin "$PIN")
    [ "${2-}" = nologin ] && login=()
    pkcs11-tool --module "$1" --token-label "$TOKEN_LABEL" --list-objects "${login[@]}" \
        2>"$W/objects.err" | awk '
        function flush() { if (kind != "") print kind "|" label "|" id (kind == "cert" ? "|" serial : "") }
        /^[A-Za-z].* Object;/ {
            flush(); kind = ""; label = ""; id = ""; serial = ""
            if ($0 ~ /^Certificate Object/) kind = "cert"
            else if ($0 ~ /^Private Key Object/) kind = "private"
            else if ($0 ~ /^Public Key Object/) kind = "public"
            else kind = "other"
        }
        /^  label:/ { sub(/^  label: */, ""); label = $0 }
        /^  ID:/ { id = $2 }
        /^  serial:/ { serial = $2 }
        END { flush() }' | LC_ALL=C sort
}

R=$TC_FIX_ID_RENEWED
# What applications must see by default: current certificates, their keys, the CA, the
# certificate whose key is not on the token.
cat >"$W/current.txt" <<EOF
cert|valid|01|10A1
private|valid|01
public|valid|01
cert|expiring|02|10A2
private|expiring|02
public|expiring|02
cert|renewed|$R|4E2B7D1C9A0F35E8C6B1D2A3F4E5D6C7
private|renewed|$R
public|renewed|$R
cert|rekeyed|0b|10AB
private|rekeyed|0b
public|rekeyed|0b
cert|orphan-cert|07|10A7
cert|Test CA|ca|0CA1
EOF
# Superseded: valid, but a longer-lasting certificate of the same name is on the token.
cat >"$W/superseded.txt" <<EOF
cert|renewed|$R|10A5
cert|rekeyed|0a|10AA
private|rekeyed|0a
public|rekeyed|0a
EOF
# Never shown: expired, not yet valid, a key waiting for its certificate.
cat >"$W/invalid.txt" <<EOF
cert|expired|03|10A3
private|expired|03
public|expired|03
cert|future|04|10A4
private|future|04
public|future|04
private|lonely-key|06
public|lonely-key|06
EOF
sorted() { cat "$@" | LC_ALL=C sort; }

# ---------------------------------------------------------------------------------------------
# pkcs11-tool: the direct listing has everything, the module's exactly the current objects.
objects "$MODULE" >"$W/direct.txt"
sorted "$W/current.txt" "$W/superseded.txt" "$W/invalid.txt" >"$W/all.txt"
tc_assert_files_eq "$W/all.txt" "$W/direct.txt" "the wrapped module lists every object"
objects "$TM" >"$W/through.txt"
sorted "$W/current.txt" >"$W/want.txt"
tc_assert_files_eq "$W/want.txt" "$W/through.txt" "pkcs11-tool through the module: current only"
tc_assert_eq "" "$(cat "$W/objects.err")" "pkcs11-tool through the module: nothing on stderr"

# Before login the private keys are out of sight; the public keys still tie each certificate to
# its credential, so the same certificates are shown.
objects "$TM" nologin >"$W/through-nologin.txt"
grep -v '^private|' "$W/want.txt" >"$W/want-nologin.txt"
tc_assert_files_eq "$W/want-nologin.txt" "$W/through-nologin.txt" "before login: the same, without private keys"

# show = valid: the superseded generations come back, never the expired or future ones.
printf 'module = %s\nshow = valid\n' "$MODULE" >"$W/valid.conf"
TOKENCERT_PKCS11_CONFIG=$W/valid.conf objects "$TM" >"$W/through-valid.txt"
sorted "$W/current.txt" "$W/superseded.txt" >"$W/want-valid.txt"
tc_assert_files_eq "$W/want-valid.txt" "$W/through-valid.txt" "show = valid: every valid one"

# The test clock, 31 days on: 'future' has begun, 'expiring' and both old generations ended.
TOKENCERT_TEST_CLOCK=enable TOKENCERT_TEST_NOW=+31d objects "$TM" >"$W/through-later.txt"
grep -v -e '|expiring|' "$W/current.txt" | cat - <(grep -e '|future|' "$W/invalid.txt") |
    LC_ALL=C sort >"$W/want-later.txt"
tc_assert_files_eq "$W/want-later.txt" "$W/through-later.txt" "31 days later: the rule moved"

# Eight threads searching at once, each on its own session, every search finding the current
# objects: with CKF_OS_LOCKING_OK, and with the application's own mutex callbacks.
for locking in os callbacks; do
    tc_expect_exit 0 "$TC_P11_THREADS" "$TM" "$TOKEN_LABEL" "$PIN" "$(wc -l <"$W/want.txt")" \
        "$locking" 8 10
    tc_assert_contains "$TC_OUT" "searches=80 " "threads ($locking locking): 80 searches, all right"
done

# ---------------------------------------------------------------------------------------------
# GnuTLS's p11tool: the same set, as type|label|id from each object's URL.
p11objects() {
    GNUTLS_PIN=$PIN p11tool --provider "$1" --list-all --login "pkcs11:token=$TOKEN_LABEL" \
        2>"$W/p11tool.err" | url_objects
}
# url_objects: p11tool's listing on stdin, one type|label|id line per object URL, sorted.
url_objects() {
    python3 -c '
import sys, urllib.parse
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("URL: pkcs11:"):
        continue
    attrs = dict(a.split("=", 1) for a in line[len("URL: pkcs11:"):].split(";") if "=" in a)
    u = lambda k: urllib.parse.unquote(attrs.get(k, ""))
    print("%s|%s|%s" % (u("type"), u("object"), urllib.parse.unquote_to_bytes(attrs.get("id", "")).hex()))
' | LC_ALL=C sort
}
p11objects "$TM" >"$W/p11tool-through.txt"
cut -d'|' -f1-3 "$W/want.txt" | LC_ALL=C sort >"$W/p11tool-want.txt"
tc_assert_files_eq "$W/p11tool-want.txt" "$W/p11tool-through.txt" "p11tool through the module: current only"
p11objects "$MODULE" >"$W/p11tool-direct.txt"
cut -d'|' -f1-3 "$W/all.txt" | LC_ALL=C sort >"$W/p11tool-all.txt"
tc_assert_files_eq "$W/p11tool-all.txt" "$W/p11tool-direct.txt" "p11tool on the wrapped module: everything"

# Through p11-kit's registry, with the .module file the build installs: loaded by no program as
# shipped, by p11tool once named in enable-in. A private mount namespace puts a registry of only
# that file in place of the system's (as root p11-kit reads no user configuration).
REG=$W/p11-kit-modules
mkdir -p "$REG" "$W/empty"
SHIPPED=$(dirname "$TM")/tokencert-pkcs11.module
[ -f "$SHIPPED" ] || tc_die "no $SHIPPED beside the module"
tc_assert_contains "$(grep -v '^#' "$SHIPPED")" $'module: tokencert-pkcs11.so\nenable-in:' \
    "the shipped .module file is enabled in no program"
sed "s|^module:.*|module: $TM|" "$SHIPPED" >"$REG/tokencert-pkcs11.module"
registry_p11tool() {
    local etc=""
    [ -d /etc/pkcs11/modules ] && etc="mount --bind '$W/empty' /etc/pkcs11/modules &&"
    # p11tool fails when no module offers the token: the listing, not its status, is checked.
    GNUTLS_PIN=$PIN unshare -m sh -c "mount --bind '$REG' /usr/share/p11-kit/modules && $etc
        exec p11tool --list-all --login 'pkcs11:token=$TOKEN_LABEL'" \
        >"$W/registry.out" 2>"$W/registry.err" || true
    url_objects <"$W/registry.out"
}
registry_p11tool >"$W/registry-shipped.txt"
tc_assert_eq "" "$(cat "$W/registry-shipped.txt")" "p11-kit registry, as shipped: the module is not loaded"
sed -i 's|^enable-in:.*|enable-in: p11tool|' "$REG/tokencert-pkcs11.module"
registry_p11tool >"$W/registry-enabled.txt"
tc_assert_files_eq "$W/p11tool-want.txt" "$W/registry-enabled.txt" \
    "p11-kit registry, enable-in: p11tool: the current objects only"

# ---------------------------------------------------------------------------------------------
# NSS (what Firefox and Chromium use): the module added with modutil; one certificate per name,
# the current one.
nss_db() {
    mkdir -p "$W/$1"
    tc__fix_log certutil -N -d "sql:$W/$1" --empty-password
    tc__fix_log modutil -dbdir "sql:$W/$1" -add "$1" -libfile "$2" -force
}
nss_db nss-through "$TM"
nss_db nss-direct "$MODULE"
printf '%s\n' "$PIN" >"$W/pin.txt"
# nss_names DB: the token's certificate nicknames (certutil pads them to 60 columns), sorted.
nss_names() {
    certutil -L -d "sql:$W/$1" -h all -f "$W/pin.txt" </dev/null 2>"$W/certutil.err" |
        awk -v t="$TOKEN_LABEL:" '{ n = substr($0, 1, 60); sub(/ +$/, "", n) }
            index(n, t) == 1 { print substr(n, length(t) + 1) }' | LC_ALL=C sort
}
nss_names nss-through >"$W/nss-through.txt"
cut -d'|' -f1-2 "$W/want.txt" | sed -n 's/^cert|//p' | LC_ALL=C sort >"$W/nss-want.txt"
tc_assert_files_eq "$W/nss-want.txt" "$W/nss-through.txt" "NSS through the module: one certificate per name"
nss_names nss-direct >"$W/nss-direct.txt"
cut -d'|' -f1-2 "$W/all.txt" | sed -n 's/^cert|//p' | LC_ALL=C sort >"$W/nss-all.txt"
tc_assert_files_eq "$W/nss-all.txt" "$W/nss-direct.txt" "NSS on the wrapped module: every certificate"
for pair in rekeyed:10AB renewed:4E2B7D1C9A0F35E8C6B1D2A3F4E5D6C7; do
    name=${pair%%:*}
    certutil -L -d "sql:$W/nss-through" -h "$TOKEN_LABEL" -n "$TOKEN_LABEL:$name" -f "$W/pin.txt" \
        -a </dev/null >"$W/nss-$name.pem" 2>"$W/certutil.err" || true
    tc_assert_eq 1 "$(grep -c -e '-----BEGIN CERTIFICATE-----' "$W/nss-$name.pem" || true)" \
        "NSS finds one certificate called '$name'"
    tc_assert_eq "serial=${pair#*:}" "$(openssl x509 -in "$W/nss-$name.pem" -noout -serial 2>&1)" \
        "NSS's '$name' is the current certificate"
done

# ---------------------------------------------------------------------------------------------
# TLS client authentication with gnutls-cli through the module: the name alone picks the
# current certificate and its key, and the server sees that certificate.
CA=$TC_CA_CERT
tc__fix_log openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/srv.key" -subj "/CN=localhost" -out "$W/srv.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$W/srv.ext"
tc__fix_log openssl x509 -req -in "$W/srv.csr" -CA "$CA" -CAkey "$TC_CA_KEY" -set_serial 0x5e01 \
    -days 30 -extfile "$W/srv.ext" -out "$W/srv.pem"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tls NAME SERIAL: gnutls-cli authenticates with pkcs11:object=NAME through the module; the
# server (-www) reports the client certificate it saw, whose serial must be SERIAL.
tls() {
    local name=$1 want=$2 port pid out=$W/s_server.$1.out token
    token=${TOKEN_LABEL// /%20}
    port=$(free_port)
    openssl s_server -accept "127.0.0.1:$port" -naccept 1 -www -Verify 1 -CAfile "$CA" \
        -cert "$W/srv.pem" -key "$W/srv.key" >"$out" 2>&1 </dev/null &
    pid=$!
    tc_defer "kill $pid 2>/dev/null || true"
    for _ in $(seq 50); do
        grep -q '^ACCEPT' "$out" && break
        sleep 0.1
    done
    printf 'GET / HTTP/1.0\r\n\r\n' >"$W/request"
    tc_expect_exit 0 timeout 60 gnutls-cli --provider "$TM" --x509cafile "$CA" \
        --x509certfile "pkcs11:token=$token;object=$name;type=cert" \
        --x509keyfile "pkcs11:token=$token;object=$name;type=private?pin-value=$PIN" \
        --port "$port" 127.0.0.1 <"$W/request"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # The page s_server -www sends back: "Client certificate", its text, then its PEM.
    printf '%s\n' "$TC_OUT" | sed -n '/^Client certificate/,/^-----END CERTIFICATE-----/p' |
        sed -n '/^-----BEGIN CERTIFICATE-----/,$p' >"$W/seen.$name.pem"
    local seen
    seen=$(openssl x509 -in "$W/seen.$name.pem" -noout -serial 2>/dev/null || true)
    tc_assert_eq "serial=$want" "$seen" "TLS as '$name': the server saw the current certificate"
    # -Verify 1 ends the handshake on a failed verification; the callback's lines show it passed.
    tc_assert_contains "$(cat "$out")" "depth=0 O = tokencert test, CN = $name"$'\n'"verify return:1" \
        "TLS as '$name': the server verified it"
}
tls rekeyed 10AB
tls renewed 4E2B7D1C9A0F35E8C6B1D2A3F4E5D6C7

# ---------------------------------------------------------------------------------------------
# pkcs11-tool --test through the module, on a token of EC credentials (pkcs11-tool 0.23 stops at
# an RSA-OAEP label SoftHSM does not take, with or without the module): only the current
# credential's key is tested.
tc_world_new_token tc-ec
TC_P11_TOKEN=tc-ec tc_fixture_keypair ec-renewed 21 EC:prime256v1
TC_P11_TOKEN=tc-ec tc_fixture_issue ec-renewed 21 0x2101 $((-300 * TC_DAY)) $((5 * TC_DAY))
TC_P11_TOKEN=tc-ec tc_fixture_issue ec-renewed 21 0x2102 $((-1 * TC_DAY)) $((700 * TC_DAY))
TC_P11_TOKEN=tc-ec tc_fixture_keypair ec-pending 22 EC:prime256v1
tc_expect_exit 0 pkcs11-tool --module "$TM" --token-label tc-ec --test --login --pin "$PIN"
tc_assert_contains "$TC_OUT" "No errors" "pkcs11-tool --test through the module: no errors"
tc_assert_contains "$TC_OUT" "(ec-renewed)" "pkcs11-tool --test: the current credential's key"
tc_assert_not_contains "$TC_OUT" "(ec-pending)" "pkcs11-tool --test: not the pending key"

# ---------------------------------------------------------------------------------------------
# Bad configurations: C_Initialize fails, the reason goes to stderr, stdout stays clean.
bad_config() {
    local what=$1 message=$2
    TOKENCERT_PKCS11_CONFIG=$W/bad.conf tc_expect_exit 1 pkcs11-tool --module "$TM" --list-slots
    tc_assert_contains "$TC_ERR" "tokencert-pkcs11: " "$what: the module says why on stderr"
    tc_assert_contains "$TC_ERR" "$message" "$what: names the problem"
    tc_assert_contains "$TC_ERR" "CKR_GENERAL_ERROR" "$what: C_Initialize fails"
    tc_assert_not_contains "$TC_OUT" "tokencert-pkcs11" "$what: nothing on stdout"
}
printf 'module = %s/no-such-module.so\n' "$W" >"$W/bad.conf"
bad_config "missing module" "cannot load module $W/no-such-module.so"
printf 'module = %s\n' "$TM" >"$W/bad.conf"
bad_config "itself" "is tokencert-pkcs11 itself"
printf 'module = %s\nshwo = valid\n' "$MODULE" >"$W/bad.conf"
bad_config "unknown key" "line 2: unknown key 'shwo'"
printf '# nothing\n' >"$W/bad.conf"
bad_config "no module" "no 'module = PATH' line"
rm -f "$W/bad.conf"
bad_config "no file" "cannot open $W/bad.conf"

tc_finish
