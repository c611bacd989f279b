#!/usr/bin/env bash
# The main job on an embedded default, from a fresh Debian bookworm machine: installs what it
# needs, builds tokencert, creates a demo SoftHSM token in ./demo holding certificates of
# different ages (valid, expiring soon, expired, not yet valid, an old and a renewed one side by
# side, a key without a certificate, a CA certificate), then shows `tokens`, `list`,
# `list --timeline` and `check` on it. No hardware needed. Run again to start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash scripts/setup.sh
echo "== building"
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build/demo -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
tokencert=$top/build/demo/tools/tokencert

echo "== creating the demo token in $top/demo"
rm -rf "$top/demo"
mkdir -p "$top/demo"
# The test fixtures make the demo's credentials: keys generated on the token, certificates issued
# by a throwaway CA for the token's public keys.
# shellcheck source=../tests/lib/harness.sh
. "$top/tests/lib/harness.sh"
# shellcheck source=../tests/lib/fixtures.sh
. "$top/tests/lib/fixtures.sh"
TC_WORLD=$top/demo
TOKEN_LABEL=demo
PIN=1234
SO_PIN=12345678
export TC_WORLD TOKEN_LABEL PIN SO_PIN
tc__softhsm_setup
tc__softhsm_new_token "$TOKEN_LABEL"
tc_fixture_standard >/dev/null
printf '%s\n' "$PIN" >"$top/demo/pin"
chmod 600 "$top/demo/pin"

run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

export SOFTHSM2_CONF
run "$tokencert" tokens --module "$MODULE" "pkcs11:token=demo"
run "$tokencert" list --module "$MODULE" "pkcs11:token=demo"
run "$tokencert" list --module "$MODULE" --timeline "pkcs11:token=demo"
run "$tokencert" list --module "$MODULE" --login --pin-source "file:$top/demo/pin" \
    "pkcs11:token=demo;object=valid"
set +e
run "$tokencert" check --module "$MODULE" "pkcs11:token=demo"
echo "(exit code $?: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
set -e

cat <<MSG

The demo token stays in ./demo. To use it yourself:
  export SOFTHSM2_CONF=$SOFTHSM2_CONF
  $tokencert list --module $MODULE --json
MSG
