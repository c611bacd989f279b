#!/usr/bin/env bash
# The main job on an embedded default, from a fresh Debian bookworm machine: installs what it
# needs, builds tokencert, makes an empty demo SoftHSM token and an embedded CA in ./demo, enrolls
# an office (subject CN = a ten-digit office number, as the federations issue them) with one
# command — key generated on the token, request signed by the token, certificate issued and
# installed — then lists and checks the token. No hardware needed. Run again to start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash scripts/setup.sh
echo "== building"
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build/demo -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
tokencert=$top/build/demo/tools/tokencert
module=/usr/lib/softhsm/libsofthsm2.so

echo "== creating an empty demo token and the embedded CA in $top/demo"
rm -rf "$top/demo"
mkdir -p "$top/demo/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$top/demo" >"$top/demo/softhsm2.conf"
export SOFTHSM2_CONF=$top/demo/softhsm2.conf
softhsm2-util --init-token --free --label demo --so-pin 12345678 --pin 1234 >/dev/null
(umask 077 && printf '1234\n' >"$top/demo/pin")

run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

run "$tokencert" ca init --ca-dir "$top/demo/ca" --subject "CN=Demo federation CA,O=Demo,C=DE"
run "$tokencert" enroll "pkcs11:token=demo" --module "$module" --pin-source "file:$top/demo/pin" \
    --ca-dir "$top/demo/ca" --label office --subject "CN=1234567890,O=Demo practice,C=DE"
run "$tokencert" list --module "$module" --login --pin-source "file:$top/demo/pin" \
    "pkcs11:token=demo"
set +e
run "$tokencert" check --module "$module" "pkcs11:token=demo"
echo "(exit code $?: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
set -e

cat <<MSG

The demo token and its CA stay in ./demo. To use them yourself:
  export SOFTHSM2_CONF=$SOFTHSM2_CONF
  $tokencert list --module $module --json
  $tokencert ca list --ca-dir $top/demo/ca
MSG
