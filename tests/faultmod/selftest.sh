#!/usr/bin/env bash
# Self-test of tc-faultmod: drives it with OpenSC's pkcs11-tool in front of a fresh SoftHSM token
# and checks that each environment variable does what README.md says.
#
# Usage: selftest.sh PATH/TO/tc-faultmod.so
# Environment: SOFTHSM_MODULE (default /usr/lib/softhsm/libsofthsm2.so),
#              PKCS11_SPY (default /usr/lib/x86_64-linux-gnu/pkcs11-spy.so; its check is skipped
#              when missing).
set -u -o pipefail

if [ $# -ne 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 PATH/TO/tc-faultmod.so" >&2
    exit 2
fi
FM=$(realpath "$1")
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PKCS11_SPY=${PKCS11_SPY:-/usr/lib/x86_64-linux-gnu/pkcs11-spy.so}

# A fault variable inherited from the caller would change every result below.
for v in $(compgen -e TC_FAULT_); do
    unset "$v"
done

# A sanitizer build of the module needs its runtime loaded first into pkcs11-tool, which is not
# built with it: gcc's module names libasan, clang's only leaves the __asan_ symbols undefined.
# The leaks LeakSanitizer would then report are pkcs11-tool's and pkcs11-spy's, not the module's.
TOOL_ENV=()
asan_rt=$(ldd "$FM" | awk '$1 ~ /^libasan/ { print $3 }')
if [ -z "$asan_rt" ] && nm -D --undefined-only "$FM" | grep -q ' __asan_'; then
    asan_rt=$(clang -print-file-name="libclang_rt.asan-$(uname -m).so")
fi
if [ -n "$asan_rt" ]; then
    TOOL_ENV=(LD_PRELOAD="$asan_rt" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP # so that the EXIT trap runs on these too
OUT=$T/out

mkdir -p "$T/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" \
    >"$T/softhsm2.conf"
export SOFTHSM2_CONF=$T/softhsm2.conf
if ! softhsm2-util --init-token --free --label t1 --so-pin 12345678 --pin 1234 >"$OUT" 2>&1; then
    cat "$OUT" >&2
    echo "selftest: cannot create the SoftHSM token" >&2
    exit 1
fi
export TC_FAULT_TARGET=$SOFTHSM_MODULE

passed=0
failed=0

# run [VAR=VALUE...] -- PKCS11-TOOL-ARGS...: runs pkcs11-tool on the module with the given fault
# variables, output in $OUT, and returns its exit status. The braces keep bash's "Killed" report
# in $OUT too.
run() {
    local vars=()
    while [ "$1" != "--" ]; do
        vars+=("$1")
        shift
    done
    shift
    { env "${TOOL_ENV[@]}" "${vars[@]}" pkcs11-tool --module "$FM" "$@"; } >"$OUT" 2>&1
}

fail() {
    echo "    $*"
    echo "    --- output:"
    sed 's/^/    /' "$OUT"
    return 1
}

check() {
    local name=$1
    shift
    if "$@"; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

t_forwarding() {
    run -- -L || fail "pkcs11-tool -L failed" || return 1
    grep -Eq '^ +token label +: t1$' "$OUT" || fail "token t1 not listed"
}

t_token_absent() {
    run TC_FAULT_TOKEN_ABSENT=1 -- -L || fail "pkcs11-tool -L failed" || return 1
    ! grep -q 'token label' "$OUT" || fail "a token is still listed" || return 1
    grep -q '(empty)' "$OUT" || fail "slot not shown as empty" || return 1
    ! run TC_FAULT_TOKEN_ABSENT=1 -- --login --pin 1234 -O || fail "-O succeeded without a token"
}

# Counts the calls of a login and object listing, then checks the count is exact: a fault one
# past the total hits nothing, a fault at the last call hits C_Finalize.
t_count_file() {
    local total sum
    run TC_FAULT_COUNT_FILE="$T/count" -- --login --pin 1234 -O || fail "-O failed" || return 1
    [ -s "$T/count" ] || fail "no count file" || return 1
    total=$(sed -n '1s/^total \([0-9][0-9]*\)$/\1/p' "$T/count")
    [ -n "$total" ] && [ "$total" -gt 0 ] || fail "bad first line: $(head -1 "$T/count")" ||
        return 1
    sum=$(awk 'NR > 1 { s += $2 } END { print s }' "$T/count")
    [ "$sum" -eq "$total" ] || fail "per-function counts add up to $sum, total is $total" ||
        return 1
    grep -qx 'C_Login 1' "$T/count" || fail "C_Login not counted once" || return 1
    grep -qx 'C_Finalize 1' "$T/count" || fail "C_Finalize not counted once" || return 1
    run TC_FAULT_AT=$((total + 1)) TC_FAULT_RV=CKR_DEVICE_REMOVED -- --login --pin 1234 -O ||
        fail "a fault after the last call broke the run" || return 1
    run TC_FAULT_AT="$total" TC_FAULT_RV=CKR_DEVICE_REMOVED TC_FAULT_COUNT_FILE="$T/count2" \
        -- --login --pin 1234 -O
    grep -qx "total $total" "$T/count2" || fail "the faulted run counted differently"
}

t_fault_at() {
    ! run TC_FAULT_AT=1 TC_FAULT_RV=CKR_DEVICE_REMOVED -- -L || fail "-L succeeded" || return 1
    grep -q 'CKR_DEVICE_REMOVED' "$OUT" || fail "CKR_DEVICE_REMOVED not reported" || return 1
    # A number works as well as a name, and TC_FAULT_FUNC picks the call.
    ! run TC_FAULT_FUNC=C_Login TC_FAULT_AT=1 TC_FAULT_RV=0x32 -- --login --pin 1234 -O ||
        fail "-O succeeded" || return 1
    grep -q 'C_Login failed: rv = CKR_DEVICE_REMOVED' "$OUT" || fail "C_Login did not fail"
}

t_fault_kill() {
    local rc
    run TC_FAULT_AT=2 TC_FAULT_RV=KILL -- -L
    rc=$?
    [ "$rc" -eq 137 ] || fail "exit status $rc, expected 137 (SIGKILL)"
}

t_login_log() {
    run TC_FAULT_LOGIN_LOG="$T/login" -- --login --pin 1234 -O || fail "-O failed" || return 1
    [ -f "$T/login" ] || fail "no login log" || return 1
    [ "$(wc -l <"$T/login")" -eq 1 ] || fail "expected one line: $(cat "$T/login")" || return 1
    grep -qx 'C_Login userType=1 pinLen=4 rv=0x00000000' "$T/login" ||
        fail "unexpected line: $(cat "$T/login")" || return 1
    ! grep -q 1234 "$T/login" || fail "the PIN is in the log"
}

t_token_flags() {
    run TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_FINAL_TRY,CKF_USER_PIN_LOCKED -- -L ||
        fail "-L failed" || return 1
    grep 'token flags' "$OUT" | grep -q 'final user PIN try' || fail "no final-try flag" ||
        return 1
    grep 'token flags' "$OUT" | grep -q 'user PIN locked' || fail "no locked flag"
}

# pkcs11-tool trims padding before printing; the spy prints the raw field, right-aligned when it
# stops at a NUL.
t_pad_nul() {
    if [ ! -f "$PKCS11_SPY" ]; then
        echo "    skipped: no $PKCS11_SPY"
        return 0
    fi
    { env "${TOOL_ENV[@]}" PKCS11SPY="$FM" PKCS11SPY_OUTPUT="$T/spy" TC_FAULT_PAD_MODEL_NUL=1 \
        pkcs11-tool --module "$PKCS11_SPY" -L; } >"$OUT" 2>&1 || fail "-L via spy failed" ||
        return 1
    grep -q "model: *' *SoftHSM v2'$" "$T/spy" ||
        fail "model still blank-padded: $(grep model: "$T/spy")"
}

t_bad_config() {
    ! run TC_FAULT_AT=1 TC_FAULT_RV=CKR_NO_SUCH_THING -- -L || fail "-L succeeded" || return 1
    grep -q '^tc-faultmod: bad value in TC_FAULT_RV' "$OUT" || fail "no reason given" || return 1
    ! run TC_FAULT_TARGET="$T/missing.so" -- -L || fail "-L succeeded" || return 1
    grep -q '^tc-faultmod: cannot load TC_FAULT_TARGET' "$OUT" || fail "no reason given"
}

check "forwarding lists the token" t_forwarding
check "TC_FAULT_TOKEN_ABSENT hides the token" t_token_absent
check "TC_FAULT_COUNT_FILE counts every call" t_count_file
check "TC_FAULT_AT injects CKR_DEVICE_REMOVED" t_fault_at
check "TC_FAULT_RV=KILL kills the process" t_fault_kill
check "TC_FAULT_LOGIN_LOG records one login" t_login_log
check "TC_FAULT_TOKEN_FLAGS_SET adds flags" t_token_flags
check "TC_FAULT_PAD_MODEL_NUL pads with NUL" t_pad_nul
check "bad configuration fails C_Initialize" t_bad_config

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
