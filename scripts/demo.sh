#!/usr/bin/env bash
# The main job on an embedded default, from a fresh Debian bookworm machine: installs what it
# needs, builds tokencert, makes an empty demo SoftHSM token and an embedded CA with manual approval
# in ./demo, and runs the whole story: an office (subject CN = a ten-digit office number, as the
# federations issue them) enrolls → pending → approved → installed → renewal comes due → both
# valid side by side → switch-over → the old one expires → prune. The years pass through the
# test-only clock override. No hardware needed. Run again to start afresh.
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

export TOKENCERT_STATE_DIR=$top/demo/state
pin=(--module "$module" --pin-source "file:$top/demo/pin")

echo
echo "== 1. an office enrolls; the federation's CA (embedded here) needs an operator's approval"
run "$tokencert" ca init --ca-dir "$top/demo/ca" --subject "CN=Demo federation CA,O=Demo,C=DE" \
    --approval manual --cert-validity 3y
set +e
run "$tokencert" enroll "pkcs11:token=demo" "${pin[@]}" \
    --ca-dir "$top/demo/ca" --label office --subject "CN=1234567890,O=Demo practice,C=DE"
echo "(exit code $?: 8 = pending)"
set -e
run "$tokencert" status office

echo
echo "== 2. the operator approves; poll installs the certificate beside its key"
run "$tokencert" ca approve 1 --ca-dir "$top/demo/ca"
run "$tokencert" poll "${pin[@]}"
run "$tokencert" renew --all --due "${pin[@]}"

echo
echo "== 3. two and a half years later (the clock is moved with the test-only override)"
export TOKENCERT_TEST_CLOCK=enable TOKENCERT_TEST_NOW=+990d
set +e
run "$tokencert" renew --all --due "${pin[@]}"
echo "(exit code $?: 8 = pending; the old certificate keeps working meanwhile)"
set -e
run "$tokencert" ca approve 2 --ca-dir "$top/demo/ca"
run "$tokencert" poll "${pin[@]}"
run "$tokencert" status office
run "$tokencert" list --timeline "${pin[@]}" --login "pkcs11:token=demo"

echo
echo "== 4. after the old certificate expired (and a 30-day grace), prune removes it"
export TOKENCERT_TEST_NOW=+1130d
run "$tokencert" prune "${pin[@]}"
run "$tokencert" list "${pin[@]}" --login "pkcs11:token=demo"
set +e
run "$tokencert" check --module "$module" "pkcs11:token=demo"
echo "(exit code $?: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
set -e
run "$tokencert" history office
unset TOKENCERT_TEST_CLOCK TOKENCERT_TEST_NOW

cat <<MSG

The demo token and its CA stay in ./demo. To use them yourself:
  export SOFTHSM2_CONF=$SOFTHSM2_CONF
  $tokencert list --module $module --json
  export TOKENCERT_STATE_DIR=$TOKENCERT_STATE_DIR
  $tokencert status
  $tokencert ca list --ca-dir $top/demo/ca
MSG
