#!/usr/bin/env bash
# tokens, list (table, JSON, timeline, logged in) and check under valgrind on the standard fixture:
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
tc_finish
