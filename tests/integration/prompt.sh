#!/usr/bin/env bash
# The interactive PIN prompt on a terminal: the PIN is read from the terminal without echo, one
# login is made, an empty answer cancels without any login attempt, and colour appears only on a
# terminal (and never with NO_COLOR). The terminal is a pty made by script(1).
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool script
tc_world_init
tc_fixture_ca
tc_fixture_keypair valid 01 EC:prime256v1
tc_fixture_issue valid 01 0x1001 -86400 $((90 * 86400))
tc_objects_snapshot "$TC_WORLD/before"

log=$TC_WORLD/logins
export TC_FAULT_TARGET=$MODULE TC_FAULT_LOGIN_LOG=$log

# on_tty ANSWER CMD...: runs CMD on a fresh pty, typing ANSWER and Enter once it is waiting.
on_tty() {
    local answer=$1
    shift
    local cmd
    printf -v cmd '%q ' "$@"
    # The feeder may outlive a command that needs no answer: its write then fails, harmlessly.
    {
        trap '' PIPE
        sleep 1
        printf '%s\n' "$answer" 2>/dev/null || true
    } | script -qec "$cmd" /dev/null
}

: >"$log"
tc_expect_exit 0 on_tty "$PIN" "$TOKENCERT" list --module "$TC_FAULTMOD" --login \
    "pkcs11:token=$TOKEN_LABEL;object=valid"
tc_assert_contains "$TC_OUT" "PIN for token '$TOKEN_LABEL':" "the prompt names the token"
tc_assert_contains "$TC_OUT" "(logged in)" "the PIN typed at the prompt logs in"
tc_assert_contains "$TC_OUT" "private key sensitive, non-extractable" "private key visible"
tc_assert_not_contains "$TC_OUT" "$PIN" "the PIN is not echoed on the terminal"
tc_assert_eq 1 "$(wc -l <"$log")" "exactly one C_Login"
tc_assert_contains "$TC_OUT" $'\033[32mvalid' "status in colour on a terminal"

: >"$log"
tc_expect_exit 1 on_tty "" "$TOKENCERT" list --module "$TC_FAULTMOD" --login \
    "pkcs11:token=$TOKEN_LABEL"
tc_assert_contains "$TC_OUT" "no PIN entered" "an empty answer cancels"
tc_assert_eq 0 "$(wc -l <"$log")" "no C_Login after an empty answer"

tc_expect_exit 0 on_tty "" env NO_COLOR=1 "$TOKENCERT" list --module "$TC_FAULTMOD" \
    "pkcs11:token=$TOKEN_LABEL"
tc_assert_not_contains "$TC_OUT" $'\033[' "NO_COLOR: no escape sequences on a terminal"
tc_expect_exit 0 "$TOKENCERT" list --module "$TC_FAULTMOD" "pkcs11:token=$TOKEN_LABEL"
tc_assert_not_contains "$TC_OUT" $'\033[' "no escape sequences when not on a terminal"

tc_objects_snapshot "$TC_WORLD/after"
tc_assert_files_eq "$TC_WORLD/before" "$TC_WORLD/after" "the token is unchanged"
tc_finish
