#!/usr/bin/env bash
# PIN handling: every PIN source (env, file, fd, the URI's pin-source), a wrong PIN tried exactly
# once and never retried, unsafe or missing PIN sources refused before any login, the token's PIN
# flags honoured (final try, locked, count low, PIN pad), and no PIN ever printed, traced or
# logged. Every run goes through the fault module, whose login log counts the C_Login calls.
#
# tpm2-pkcs11 tokens sit behind the TPM's dictionary-attack protection (3 failures lock every
# DA-protected object for 1000 s, and a good PIN does not reset the counter), and the module
# reports no PIN flags: this test makes exactly two real wrong-PIN attempts. Other rejections are
# injected by the fault module before the call reaches the token.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool setsid
tc_world_init
FM=$TC_FAULTMOD

# One credential, so a login is visible: the private key is seen only when logged in.
tc_fixture_keypair valid "$TC_FIX_ID_VALID" EC:prime256v1
tc_fixture_issue valid "$TC_FIX_ID_VALID" 0x10A1 $((-TC_DAY)) $((365 * TC_DAY + 12 * TC_HOUR))

# A PIN that cannot occur by chance in a listing (1234 could sit in a serial number), so that
# "the PIN is not in the output" means something.
NEW_PIN=tcpin-6Qz9wXk3
if ! tc_p11_login --change-pin --new-pin "$NEW_PIN" >>"$TC_WORLD/harness.log" 2>&1; then
    tail -n 20 "$TC_WORLD/harness.log" >&2
    tc_die "could not change the user PIN"
fi
PIN=$NEW_PIN
export PIN
WRONG_PIN=wrongpin-R4t8Vd

printf '%s' "$WRONG_PIN" >"$TC_WORLD/pin.wrong"
printf '%s' "$PIN" >"$TC_WORLD/pin.plain"
printf '%s\n' "$PIN" >"$TC_WORLD/pin.newline"
: >"$TC_WORLD/pin.empty"
printf '%s' "$PIN" >"$TC_WORLD/pin.world"
chmod 600 "$TC_WORLD"/pin.*
chmod 644 "$TC_WORLD/pin.world"
unset TC_PIN_NOT_SET

LOGIN_LOG=$TC_WORLD/login.log
export TC_FAULT_TARGET=$MODULE TC_FAULT_LOGIN_LOG=$LOGIN_LOG
tc_objects_snapshot "$TC_WORLD/snapshot.base"

# ---------------------------------------------------------------------------------------------
# Helpers


# run CODE CMD...: tc_expect_exit with an empty login log. Afterwards LOGINS is how many C_Login
# calls reached the fault module and LOGIN_LINES what it logged; asserts that neither PIN is in
# the run's stdout or stderr, nor in the login log.
run() {
    local code=$1 p where=""
    shift
    : >"$LOGIN_LOG"
    tc_expect_exit "$code" "$@"
    LOGIN_LINES=$(cat "$LOGIN_LOG")
    LOGINS=$(grep -c '^C_Login ' "$LOGIN_LOG" || true)
    for p in "$PIN" "$WRONG_PIN"; do
        if [[ "$TC_OUT" == *"$p"* ]]; then where+=" stdout"; fi
        if [[ "$TC_ERR" == *"$p"* ]]; then where+=" stderr"; fi
        if [[ "$LOGIN_LINES" == *"$p"* ]]; then where+=" login-log"; fi
    done
    if [ -z "$where" ]; then
        tc_pass "no PIN on stdout, on stderr or in the login log"
    else
        tc_fail "a PIN was shown on:$where"
    fi
}

# logins N [LINE] WHAT: the last run made N C_Login calls (and, given LINE, logged exactly it).
logins() {
    tc_assert_eq "$1" "$LOGINS" "$3: $1 C_Login call(s)"
    if [ -n "$2" ]; then
        tc_assert_eq "$2" "$LOGIN_LINES" "$3: C_Login as logged"
    fi
}

# logged_in WHAT: the last run was `list --json` and it logged in: the token says so and the
# private key (invisible without login) was seen.
logged_in() {
    cp "$TC_OUT_FILE" "$TC_WORLD/list.json"
    tc_assert_eq '[[true],[true]]' "$(tc_json "$TC_WORLD/list.json" '[
        [t["logged_in"] for t in j["tokens"]],
        [cr["key"]["private_key_seen"] for t in j["tokens"] for cr in t["credentials"]
         if cr["name"] == "valid"]]')" "$1: logged_in is true and the private key is seen"
}

# unchanged WHAT: the token's objects are exactly those of the baseline snapshot. Called after
# each group of runs: a change made by any run of the group persists, so it shows here.
unchanged() {
    tc_objects_snapshot "$TC_WORLD/snapshot.now"
    tc_assert_files_eq "$TC_WORLD/snapshot.base" "$TC_WORLD/snapshot.now" "token unchanged: $1"
}

ok_login="C_Login userType=1 pinLen=${#PIN} rv=0x00000000"
wrong_login="C_Login userType=1 pinLen=${#WRONG_PIN} rv=0x000000a0"

# ---------------------------------------------------------------------------------------------
# Without a PIN source nothing logs in; with one, exactly one login

run 0 "$TOKENCERT" list --module "$FM" --json
logins 0 "" "no PIN source"
cp "$TC_OUT_FILE" "$TC_WORLD/list.json"
tc_assert_eq '[[false],[false]]' "$(tc_json "$TC_WORLD/list.json" '[
    [t["logged_in"] for t in j["tokens"]],
    [cr["key"]["private_key_seen"] for t in j["tokens"] for cr in t["credentials"]]]')" \
    "no PIN source: logged_in is false and the private key is not seen"

# Traced: the PIN is not in the trace either.
run 0 env TOKENCERT_DEBUG=pkcs11 "$TOKENCERT" list --module "$FM" --pin-source env:PIN --json
logins 1 "$ok_login" "env:PIN"
logged_in "env:PIN"
tc_assert_match "$TC_ERR" "pkcs11: C_Login .*CKR_OK" "env:PIN, traced: the trace shows C_Login"

run 0 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.plain" --json
logins 1 "$ok_login" "file:PATH (mode 600)"
logged_in "file:PATH"

run 0 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.newline" --json
logins 1 "$ok_login" "PIN file with a trailing newline (not part of the PIN)"
logged_in "PIN file with a trailing newline"

run 0 "$TOKENCERT" list --module "$FM" --pin-source fd:3 --json 3<"$TC_WORLD/pin.newline"
logins 1 "$ok_login" "fd:3"
logged_in "fd:3"

run 0 "$TOKENCERT" list --module "$FM" --json \
    "pkcs11:token=$TOKEN_LABEL;pin-source=file:$TC_WORLD/pin.newline"
logins 1 "$ok_login" "pin-source in the URI"
logged_in "pin-source in the URI"

run 0 "$TOKENCERT" check --module "$FM" --pin-source env:PIN
logins 1 "$ok_login" "check --pin-source env:PIN"
unchanged "logins with every PIN source"

# ---------------------------------------------------------------------------------------------
# A wrong PIN: tried once, never retried, and the token still takes the right one afterwards
# (the two real wrong attempts of this test)

run 6 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.wrong"
logins 1 "$wrong_login" "wrong PIN"
tc_assert_match "$TC_ERR" "token '$TOKEN_LABEL' rejected the PIN" "wrong PIN: the token rejected it"
tc_assert_match "$TC_ERR" "not retried" "wrong PIN: the message says it was not retried"

run 6 env TOKENCERT_DEBUG=pkcs11 "$TOKENCERT" list --module "$FM" \
    --pin-source "file:$TC_WORLD/pin.wrong"
logins 1 "$wrong_login" "wrong PIN, traced"
tc_assert_eq 1 "$(grep -c 'pkcs11: C_Login ' "$TC_ERR_FILE" || true)" \
    "wrong PIN, traced: the trace shows one C_Login"
tc_assert_match "$TC_ERR" "pkcs11: C_Login .*CKR_PIN_INCORRECT" \
    "wrong PIN, traced: the trace shows the rejection"
unchanged "wrong PIN"

tc_expect_exit 0 "$TOKENCERT" tokens --module "$MODULE" --json "pkcs11:token=$TOKEN_LABEL"
cp "$TC_OUT_FILE" "$TC_WORLD/tokens.json"
tc_assert_match "$(tc_json "$TC_WORLD/tokens.json" '[t["pin_state"] for t in j["tokens"]]')" \
    '^\["(ok|count-low)"\]$' "after two wrong PINs the PIN is neither locked nor at its final try"
run 0 "$TOKENCERT" list --module "$FM" --pin-source env:PIN --json
logins 1 "$ok_login" "right PIN after two wrong ones"
logged_in "right PIN after two wrong ones (no lockout)"
tc_expect_exit 0 "$TOKENCERT" tokens --module "$MODULE" --json "pkcs11:token=$TOKEN_LABEL"
cp "$TC_OUT_FILE" "$TC_WORLD/tokens.json"
tc_assert_eq '["ok"]' "$(tc_json "$TC_WORLD/tokens.json" '[t["pin_state"] for t in j["tokens"]]')" \
    "after the right PIN the PIN state is ok"

# Rejections injected by the fault module (they never reach the token).
run 3 env TC_FAULT_FUNC=C_Login TC_FAULT_AT=1 TC_FAULT_RV=CKR_PIN_INCORRECT \
    "$TOKENCERT" check --module "$FM" --pin-source env:PIN
logins 1 "C_Login userType=1 pinLen=${#PIN} rv=0x000000a0" "check, PIN rejected"
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*rejected the PIN" \
    "check, PIN rejected: UNKNOWN, says so"

run 7 env TC_FAULT_FUNC=C_Login TC_FAULT_AT=1 TC_FAULT_RV=CKR_PIN_LOCKED \
    "$TOKENCERT" list --module "$FM" --pin-source env:PIN
logins 1 "C_Login userType=1 pinLen=${#PIN} rv=0x000000a4" "C_Login says the PIN is locked"
tc_assert_match "$TC_ERR" "locked" "C_Login says the PIN is locked: the message says locked"
unchanged "rejected logins"

# ---------------------------------------------------------------------------------------------
# Unusable PIN sources: refused before any login

run 11 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.world"
logins 0 "" "world-readable PIN file"
tc_assert_contains "$TC_ERR" "$TC_WORLD/pin.world" "world-readable PIN file: named"
tc_assert_match "$TC_ERR" "readable by everyone" "world-readable PIN file: the message says why"

run 11 "$TOKENCERT" list --module "$FM" \
    "pkcs11:token=$TOKEN_LABEL;pin-source=file:$TC_WORLD/pin.world"
logins 0 "" "world-readable PIN file in the URI"
tc_assert_match "$TC_ERR" "readable by everyone" "world-readable PIN file in the URI: refused"

run 11 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.missing"
logins 0 "" "missing PIN file"
tc_assert_contains "$TC_ERR" "$TC_WORLD/pin.missing" "missing PIN file: named"
tc_assert_match "$TC_ERR" "no such file" "missing PIN file: the message says why"

# A FIFO waited for a writer for ever; a NUL byte cut the PIN there silently; a PIN file others
# can write was accepted (issue 16, defect 12). Each is refused before any login.
mkfifo "$TC_WORLD/pin.fifo"
chmod 600 "$TC_WORLD/pin.fifo"
run 11 timeout 20 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.fifo"
logins 0 "" "FIFO as PIN file"
tc_assert_contains "$TC_ERR" "PIN file '$TC_WORLD/pin.fifo' is not a regular file" "FIFO as PIN file: refused at once, named"
printf '%s\0tail' "$PIN" >"$TC_WORLD/pin.nul"
chmod 600 "$TC_WORLD/pin.nul"
run 11 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.nul"
logins 0 "" "PIN file with a NUL byte"
tc_assert_contains "$TC_ERR" "the PIN file '$TC_WORLD/pin.nul' contains a NUL byte" "PIN file with a NUL byte: refused, says why"
for mode in 0602 0620; do
    cp "$TC_WORLD/pin.plain" "$TC_WORLD/pin.w$mode"
    chmod "$mode" "$TC_WORLD/pin.w$mode"
    run 11 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.w$mode"
    logins 0 "" "PIN file of mode $mode"
    tc_assert_contains "$TC_ERR" "PIN file '$TC_WORLD/pin.w$mode' can be written by others (mode $mode)" "PIN file of mode $mode: refused, says why"
done

run 11 "$TOKENCERT" list --module "$FM" --pin-source "file:$TC_WORLD/pin.empty"
logins 0 "" "empty PIN file"
tc_assert_match "$TC_ERR" "empty" "empty PIN file: the message says it is empty"

run 11 "$TOKENCERT" list --module "$FM" --pin-source env:TC_PIN_NOT_SET
logins 0 "" "env: unset variable"
tc_assert_contains "$TC_ERR" "TC_PIN_NOT_SET" "env: unset variable: named"

run 11 "$TOKENCERT" list --module "$FM" --pin-source fd:9
logins 0 "" "fd: not open"
tc_assert_contains "$TC_ERR" "fd:9" "fd: not open: named"

# --login with no PIN source and no terminal: stdin is not a tty, and no controlling terminal
# either (setsid), so this cannot end up waiting at a prompt.
run 11 setsid -w "$TOKENCERT" list --module "$FM" --login </dev/null
logins 0 "" "--login without terminal"
tc_assert_match "$TC_ERR" "--pin-source" "--login without terminal: the message points to --pin-source"

run 3 setsid -w "$TOKENCERT" check --module "$FM" --login </dev/null
logins 0 "" "check --login without terminal"
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*--pin-source" \
    "check --login without terminal: UNKNOWN, points to --pin-source"
unchanged "unusable PIN sources"

# ---------------------------------------------------------------------------------------------
# The token's PIN flags

run 7 env TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_FINAL_TRY \
    "$TOKENCERT" list --module "$FM" --pin-source env:PIN
logins 0 "" "final try"
tc_assert_match "$TC_ERR" "one more PIN attempt|final try" "final try: the message says so"
tc_assert_contains "$TC_ERR" "--allow-final-try" "final try: the message mentions --allow-final-try"

run 3 env TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_FINAL_TRY \
    "$TOKENCERT" check --module "$FM" --pin-source env:PIN
logins 0 "" "check, final try"
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*--allow-final-try" "check, final try: UNKNOWN, says why"

run 0 env TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_FINAL_TRY \
    "$TOKENCERT" list --module "$FM" --json
logins 0 "" "final try, no PIN source (listing needs no login)"

run 0 env TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_FINAL_TRY \
    "$TOKENCERT" list --module "$FM" --pin-source env:PIN --allow-final-try --json
logins 1 "$ok_login" "final try with --allow-final-try"
logged_in "final try with --allow-final-try"

run 7 env TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_LOCKED \
    "$TOKENCERT" list --module "$FM" --pin-source env:PIN --allow-final-try
logins 0 "" "locked (even with --allow-final-try)"
tc_assert_match "$TC_ERR" "locked" "locked: the message says so"

run 0 env TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_COUNT_LOW \
    "$TOKENCERT" list --module "$FM" --pin-source env:PIN --json
logins 1 "$ok_login" "count low"
logged_in "count low"
tc_assert_match "$TC_ERR" "warning.*'$TOKEN_LABEL'.*failed PIN attempts" \
    "count low: a warning on stderr"

# A PIN pad: C_Login with a NULL PIN, the user told to use the pad. Neither module has one:
# SoftHSM answers CKR_ARGUMENTS_BAD, tpm2-pkcs11 CKR_HOST_MEMORY; both are errors (exit 1).
case "$TC_TOKEN_KIND" in
softhsm) pad_rv=CKR_ARGUMENTS_BAD pad_hex=0x00000007 ;;
tpm) pad_rv=CKR_HOST_MEMORY pad_hex=0x00000002 ;;
esac
run 1 env TC_FAULT_TOKEN_FLAGS_SET=CKF_PROTECTED_AUTHENTICATION_PATH \
    "$TOKENCERT" list --module "$FM" --login </dev/null
logins 1 "C_Login userType=1 pinLen=0 rv=$pad_hex" "PIN pad"
tc_assert_match "$TC_ERR" "PIN pad" "PIN pad: the user is told to use it"
tc_assert_match "$TC_ERR" "login to token '$TOKEN_LABEL' failed: $pad_rv" \
    "PIN pad: the module's answer is reported"
unchanged "PIN flags"

tc_finish
