#!/usr/bin/env bash
# Modules from the p11-kit registry: a registered module that fails to load (not an ELF file, a
# library without C_GetFunctionList) or to initialise is named on stderr, and the tokens of the
# other modules are still listed. p11-kit ignores user configuration as root, so the test runs
# tokencert in a private mount namespace whose system module directory is the test's own.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_tool unshare mount
tc_world_init
tc_fixture_ca
tc_fixture_keypair valid 01 EC:prime256v1
tc_fixture_issue valid 01 0x1001 -86400 $((90 * 86400))

mods=$TC_WORLD/modules
mkdir -p "$mods"
printf 'module: %s\n' "$MODULE" >"$mods/world.module"
printf 'module: /etc/passwd\n' >"$mods/not-elf.module"
libz=$(python3 -c 'import ctypes.util,sys; print(ctypes.util.find_library("z") or "")')
libz_path=$(ldconfig -p | awk -v n="$libz" '$1 == n { print $NF; exit }')
[ -n "$libz_path" ] || tc_die "libz not found for the not-a-PKCS#11-module case"
printf 'module: %s\n' "$libz_path" >"$mods/not-pkcs11.module"
# The fault module without a target fails C_Initialize: loads, but cannot initialise.
printf 'module: %s\n' "$TC_FAULTMOD" >"$mods/no-init.module"

in_registry() {
    unshare -m sh -c 'mount --bind "$0" /usr/share/p11-kit/modules && exec "$@"' "$mods" "$@"
}

tc_expect_exit 0 in_registry env -u TC_FAULT_TARGET "$TOKENCERT" list --json
tc_assert_contains "$TC_ERR" "/etc/passwd" "a registered module that is not a library is named"
tc_assert_contains "$TC_ERR" "$libz_path" "a registered library that is not PKCS#11 is named"
tc_assert_contains "$TC_ERR" "no-init" "a module that fails C_Initialize is named"
tc_assert_contains "$TC_ERR" "failed to initialise" "...and why"
cp "$TC_OUT_FILE" "$TC_WORLD/list.json"
tc_assert_eq "$(tc_expected valid sha256)" \
    "$(tc_json "$TC_WORLD/list.json" \
        '[c["sha256"] for t in j["tokens"] if t["label"] == "'"$TOKEN_LABEL"'"
          for cr in t["credentials"] for c in cr["certificates"]][0]')" \
    "the working module's certificate is listed from the registry"

tc_expect_exit 0 in_registry env -u TC_FAULT_TARGET "$TOKENCERT" tokens "pkcs11:token=$TOKEN_LABEL"
tc_assert_contains "$TC_OUT" "label:        $TOKEN_LABEL" "tokens finds the token through the registry"

# With only broken modules registered, nothing is usable: an error, exit 3.
rm "$mods/world.module"
tc_expect_exit 3 in_registry env -u TC_FAULT_TARGET "$TOKENCERT" list
tc_assert_contains "$TC_ERR" "no usable PKCS#11 module" "no usable module is an error"
tc_finish
