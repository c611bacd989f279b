#!/usr/bin/env bash
# tokens, list (table, JSON, timeline, logged in), check and the filter module (tokencert-pkcs11.so
# searched from two threads) under valgrind on the standard fixture:
# no invalid reads or writes, no use of uninitialised values, no definite leaks. Registered only in
# the build without sanitizers (valgrind and ASan do not mix).
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/fixtures.sh"

tc_require_tokencert
tc_require_tool valgrind
tc_world_init
tc_fixture_standard

vg() {
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite "$@"
}
tok="pkcs11:token=$TOKEN_LABEL"
tc_expect_exit 0 vg "$TOKENCERT" tokens --module "$MODULE" --json
tc_expect_exit 0 vg "$TOKENCERT" list --module "$MODULE" "$tok"
tc_expect_exit 0 vg "$TOKENCERT" list --module "$MODULE" --json "$tok"
tc_expect_exit 0 vg "$TOKENCERT" list --module "$MODULE" --timeline "$tok"
tc_expect_exit 0 vg "$TOKENCERT" list --module "$MODULE" --login --pin-source env:PIN "$tok"
tc_assert_contains "$TC_OUT" "(logged in)" "the logged-in listing ran under valgrind"
tc_expect_exit 2 vg "$TOKENCERT" check --module "$MODULE" --metrics "$TC_WORLD/m.prom" "$tok"
tc_expect_exit 4 vg "$TOKENCERT" list --module "$MODULE" "$tok;object=nothing-here"
tc_expect_exit 2 vg "$TOKENCERT" list --module "$MODULE" "pkcs11:bogus=1"
# The filter module (tokencert-pkcs11.so) in an application: searches from two threads at once.
if [ -z "${TC_PKCS11_MODULE-}" ] || [ -z "${TC_P11_THREADS-}" ]; then
    tc_die "TC_PKCS11_MODULE and TC_P11_THREADS must be set; run through ctest"
fi
printf 'module = %s\n' "$MODULE" >"$TC_WORLD/pkcs11.conf"
for locking in os callbacks; do
    TOKENCERT_PKCS11_CONFIG=$TC_WORLD/pkcs11.conf tc_expect_exit 0 vg "$TC_P11_THREADS" \
        "$TC_PKCS11_MODULE" "$TOKEN_LABEL" "$PIN" 11 "$locking" 2 3
done
tc_finish
