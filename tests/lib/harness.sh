# shellcheck shell=bash
# tests/lib/harness.sh — sourced by every integration test.
#
# Builds a private world for one test (temp dir + a fresh PKCS#11 token: SoftHSM, or swtpm +
# tpm2-abrmd + tpm2-pkcs11), tears it down on exit, and provides assertions, a pass/fail
# summary and canonical token snapshots. Works under `set -euo pipefail`.
# A missing tool or a world that cannot be built is a hard failure (exit 1), never a skip.
# See tests/lib/README.md.

if [ -n "${TC_HARNESS_LOADED-}" ]; then
    return 0
fi
TC_HARNESS_LOADED=1

TC_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

TC_PASSED=0
TC_FAILED=0
TC_FINISHED=0
TC_WORLD=""
TC_DEFERRED=()   # cleanup commands (strings run with eval), run last-in first-out
TC_PIDS=()       # "name:pid" of every daemon the world started, killed in reverse order
TC__ERR_AT=""    # the last command that failed (what `set -e` stopped on), for the summary

# ---------------------------------------------------------------------------------------------
# Messages, counters, assertions

tc_log() {
    printf '# %s\n' "$*"
}

tc_pass() {
    TC_PASSED=$((TC_PASSED + 1))
    printf 'ok - %s\n' "${1-}"
}

tc_fail() {
    TC_FAILED=$((TC_FAILED + 1))
    printf 'FAIL - %s\n' "${1-}"
}

# Prints at most 40 lines of a value, indented, so a failure shows what was seen. (sed reads
# everything: an early-closing `head` would SIGPIPE the writer and trip pipefail.)
tc__show() {
    local name=$1 value=$2
    printf '#   %s:\n' "$name"
    printf '%s\n' "$value" | sed -n '1,40s/^/#     | /p'
}

# tc_die MSG: counts a failure and stops the test (the world is still torn down).
tc_die() {
    tc_fail "$*"
    printf 'harness: fatal: %s\n' "$*" >&2
    exit 1
}

tc_assert_eq() {
    local expected=$1 actual=$2 msg=${3-"values equal"}
    if [ "$expected" == "$actual" ]; then
        tc_pass "$msg"
    else
        tc_fail "$msg"
        tc__show expected "$expected"
        tc__show actual "$actual"
    fi
    return 0
}

tc_assert_ne() {
    local unexpected=$1 actual=$2 msg=${3-"values differ"}
    if [ "$unexpected" != "$actual" ]; then
        tc_pass "$msg"
    else
        tc_fail "$msg"
        tc__show "both were" "$actual"
    fi
    return 0
}

tc_assert_contains() {
    local haystack=$1 needle=$2 msg=${3-"output contains '$2'"}
    if [[ "$haystack" == *"$needle"* ]]; then
        tc_pass "$msg"
    else
        tc_fail "$msg"
        tc__show "missing" "$needle"
        tc__show "in" "$haystack"
    fi
    return 0
}

tc_assert_not_contains() {
    local haystack=$1 needle=$2 msg=${3-"output does not contain '$2'"}
    if [[ "$haystack" != *"$needle"* ]]; then
        tc_pass "$msg"
    else
        tc_fail "$msg"
        tc__show "unexpected" "$needle"
        tc__show "in" "$haystack"
    fi
    return 0
}

# tc_assert_files_eq EXPECTED_FILE ACTUAL_FILE MSG: byte-identical files (diff shown on failure).
tc_assert_files_eq() {
    local expected=$1 actual=$2 msg=${3-"files identical"}
    if cmp -s -- "$expected" "$actual"; then
        tc_pass "$msg"
    else
        tc_fail "$msg"
        diff -u -- "$expected" "$actual" 2>&1 | sed -n '1,40s/^/#     | /p' || true
    fi
    return 0
}

# tc_expect_exit CODE CMD [ARGS...]
# Runs CMD with stdout to $TC_OUT_FILE and stderr to $TC_ERR_FILE, sets TC_OUT / TC_ERR to their
# contents (trailing newlines stripped) and TC_RC to the exit status, and asserts TC_RC == CODE.
# The files are overwritten by the next call (and exist only inside a world).
tc_expect_exit() {
    local want=$1 scratch=""
    shift
    if [ -n "$TC_WORLD" ]; then
        TC_OUT_FILE=$TC_WORLD/last.stdout
        TC_ERR_FILE=$TC_WORLD/last.stderr
    else
        # No world: capture into a scratch dir that does not outlive this call.
        scratch=$(mktemp -d "${TMPDIR:-/tmp}/tc-expect.XXXXXX")
        TC_OUT_FILE=$scratch/stdout
        TC_ERR_FILE=$scratch/stderr
    fi
    TC_RC=0
    "$@" >"$TC_OUT_FILE" 2>"$TC_ERR_FILE" || TC_RC=$?
    TC_OUT=$(cat -- "$TC_OUT_FILE")
    TC_ERR=$(cat -- "$TC_ERR_FILE")
    if [ -n "$scratch" ]; then
        rm -rf -- "$scratch"
        TC_OUT_FILE=""
        TC_ERR_FILE=""
    fi
    local shown="$*"
    if [ "${#shown}" -gt 160 ]; then
        shown="${shown:0:157}..."
    fi
    if [ "$TC_RC" -eq "$want" ]; then
        tc_pass "exit $want: $shown"
    else
        tc_fail "exit $want: $shown (got $TC_RC)"
        tc__show stdout "$TC_OUT"
        tc__show stderr "$TC_ERR"
    fi
    return 0
}

# tc_finish: prints exactly "N passed, N failed" and exits 1 if anything failed (or if the test
# asserted nothing at all, which is always a broken test), 0 otherwise.
tc_finish() {
    TC_FINISHED=1
    printf '%d passed, %d failed\n' "$TC_PASSED" "$TC_FAILED"
    if [ "$TC_FAILED" -ne 0 ]; then
        exit 1
    fi
    if [ "$TC_PASSED" -eq 0 ]; then
        printf 'harness: the test made no assertion\n' >&2
        exit 1
    fi
    exit 0
}

# ---------------------------------------------------------------------------------------------
# Small helpers for tests

# tc_json FILE EXPR: evaluates a Python expression with `j` bound to FILE's parsed JSON and
# prints the result (strings raw, everything else as compact JSON). Exit 1 on bad JSON/EXPR.
tc_json() {
    python3 -c '
import json, sys
with open(sys.argv[1]) as f:
    j = json.load(f)
r = eval(sys.argv[2], {"j": j, "len": len, "sorted": sorted, "any": any, "all": all})
print(r if isinstance(r, str) else json.dumps(r, sort_keys=True, separators=(",", ":")))
' "$1" "$2"
}

# tc_days_left ISO8601: whole days from now until the instant, rounded down (negative if past).
tc_days_left() {
    local t now
    t=$(date -u -d "$1" +%s)
    now=$(date -u +%s)
    echo $(((t - now - ((t - now) % 86400 + 86400) % 86400) / 86400))
}

# tc_require_tool NAME...: hard failure (not a skip) when a tool is missing.
tc_require_tool() {
    local t
    for t in "$@"; do
        if ! command -v "$t" >/dev/null 2>&1; then
            tc_die "required tool '$t' not found in PATH (scripts/setup.sh installs everything)"
        fi
    done
}

# tc_require_tokencert: the CLI under test, from env TOKENCERT (set by CTest); hard failure if
# it is missing.
tc_require_tokencert() {
    if [ -z "${TOKENCERT-}" ] || [ ! -x "$TOKENCERT" ]; then
        tc_die "TOKENCERT must name the tokencert binary (got '${TOKENCERT-}'); run through ctest"
    fi
}

tc__require_file() {
    local f=$1 what=$2
    if [ ! -e "$f" ]; then
        tc_die "$what not found at $f (scripts/setup.sh installs everything)"
    fi
}

# First existing path among the arguments (globs allowed), or nothing.
tc__first_existing() {
    local p
    for p in "$@"; do
        if [ -e "$p" ]; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 0
}

# tc_p11 ARGS...: pkcs11-tool on this world's token (TC_P11_TOKEN=LABEL selects another token).
tc_p11() {
    pkcs11-tool --module "$MODULE" --token-label "${TC_P11_TOKEN:-$TOKEN_LABEL}" "$@"
}

# tc_pct HEX: the hex string as a pkcs11: URI's percent-encoded value ("0a" -> "%0a").
tc_pct() {
    sed 's/../%&/g' <<<"$1"
}

# tc_pubkey SELECTOR FILE: the public key the pkcs11: URI attributes SELECTOR ("id=%0a",
# "object=alice") select on this world's token (TC_P11_TOKEN=LABEL selects another; MODULE another
# module), as DER, read by GnuTLS's p11tool: independent of tokencert. Not OpenSC 0.23's
# `pkcs11-tool --read-object --type pubkey`, which reads freed memory for EC keys (fixed upstream
# in 0.24): it failed now and then, and every time with MALLOC_PERTURB_ set.
tc_pubkey() {
    rm -f "$2"
    p11tool --provider "$MODULE" --export \
        "pkcs11:token=${TC_P11_TOKEN:-$TOKEN_LABEL};$1;type=public" --outder --outfile "$2" \
        >>"$TC_WORLD/harness.log" 2>&1 && [ -s "$2" ]
}

# tc_p11_login ARGS...: same, logged in as the user.
tc_p11_login() {
    tc_p11 --login --pin "$PIN" "$@"
}

# tc_defer CMD: run CMD (a string, eval'd) when the world is torn down, before daemons are
# stopped. Use this instead of your own EXIT trap, which would replace the harness's.
tc_defer() {
    TC_DEFERRED+=("$1")
}

# ---------------------------------------------------------------------------------------------
# World: temp dir, token, teardown

tc__kill_pid() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    # Reaps our own children (abrmd); harmless for daemons that are not our children.
    wait "$pid" 2>/dev/null || true
}

tc__cleanup() {
    local rc=$? i entry
    set +e
    for ((i = ${#TC_DEFERRED[@]} - 1; i >= 0; i--)); do
        eval "${TC_DEFERRED[$i]}" >/dev/null 2>&1
    done
    for ((i = ${#TC_PIDS[@]} - 1; i >= 0; i--)); do
        entry=${TC_PIDS[$i]}
        tc__kill_pid "${entry#*:}"
    done
    if [ -n "$TC_WORLD" ] && [ -d "$TC_WORLD" ]; then
        if [ -n "${TC_KEEP_WORLD-}" ]; then
            printf 'harness: world kept in %s\n' "$TC_WORLD" >&2
        else
            rm -rf -- "$TC_WORLD"
        fi
    fi
    if [ "$TC_FINISHED" -eq 0 ]; then
        printf 'harness: test ended (status %d) before tc_finish; %d passed, %d failed\n' \
            "$rc" "$TC_PASSED" "$TC_FAILED" >&2
        if [ "$rc" -ne 0 ] && [ -n "$TC__ERR_AT" ]; then
            printf 'harness: last failed command: %s\n' "$TC__ERR_AT" >&2
        fi
        if [ "$rc" -eq 0 ]; then
            rc=1
        fi
    fi
    exit "$rc"
}

# If the test is killed without running its EXIT trap (SIGKILL on a CTest timeout), a watchdog
# in its own session stops the world's daemons and removes the world once the test is gone.
tc__start_watchdog() {
    local pids=() entry
    for entry in "${TC_PIDS[@]}"; do
        pids+=("${entry#*:}")
    done
    # shellcheck disable=SC2016 # expanded by the watchdog's own shell
    setsid bash -c '
        test_pid=$1 world=$2 keep=$3
        shift 3
        while kill -0 "$test_pid" 2>/dev/null; do sleep 1; done
        kill "$@" 2>/dev/null
        sleep 1
        kill -9 "$@" 2>/dev/null
        [ -n "$keep" ] || rm -rf -- "$world"' tc-watchdog "$$" "$TC_WORLD" \
        "${TC_KEEP_WORLD-}" "${pids[@]}" </dev/null >/dev/null 2>&1 &
    TC_PIDS+=("watchdog:$!")
}

# Shows the tail of a log file on stderr (for setup failures).
tc__show_log() {
    if [ -s "$1" ]; then
        printf 'harness: --- %s ---\n' "$1" >&2
        tail -n 20 "$1" >&2
    fi
}

# tc__port_in_use PORT: true when any TCP socket (v4 or v6, any state) uses PORT locally.
tc__port_in_use() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'FNR > 1 && substr($2, length($2) - 4) == p { found = 1 }
                     END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

tc__softhsm_setup() {
    tc_require_tool softhsm2-util
    MODULE=${TC_SOFTHSM_MODULE:-$(tc__first_existing /usr/lib/softhsm/libsofthsm2.so \
        /usr/lib/*/softhsm/libsofthsm2.so)}
    tc__require_file "${MODULE:-/usr/lib/softhsm/libsofthsm2.so}" "SoftHSM module"
    mkdir -p "$TC_WORLD/softhsm/tokens" || tc_die "cannot create $TC_WORLD/softhsm/tokens"
    printf '%s\n' "directories.tokendir = $TC_WORLD/softhsm/tokens" "objectstore.backend = file" \
        "log.level = ERROR" >"$TC_WORLD/softhsm/softhsm2.conf"
    SOFTHSM2_CONF=$TC_WORLD/softhsm/softhsm2.conf
    export SOFTHSM2_CONF MODULE
}

tc__softhsm_new_token() {
    local label=$1
    if ! softhsm2-util --init-token --free --label "$label" --so-pin "$SO_PIN" --pin "$PIN" \
        >>"$TC_WORLD/harness.log" 2>&1; then
        tc__show_log "$TC_WORLD/harness.log"
        tc_die "softhsm2-util could not init token '$label'"
    fi
}

tc__tpm_setup() {
    tc_require_tool swtpm dbus-daemon tpm2-abrmd tpm2_getrandom
    MODULE=${TC_TPM2_MODULE:-$(tc__first_existing \
        /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so /usr/lib/*/pkcs11/libtpm2_pkcs11.so)}
    tc__require_file "${MODULE:-/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so}" \
        "tpm2-pkcs11 module"
    # tpm2-abrmd does not depend on its client TCTI; without it everything fails obscurely.
    tc__require_file "$(tc__first_existing /usr/lib/*/libtss2-tcti-tabrmd.so.0 \
        /usr/lib/libtss2-tcti-tabrmd.so.0)" "libtss2-tcti-tabrmd0 (tabrmd TCTI)"
    tc__require_file /usr/share/dbus-1/session.conf "dbus session configuration"

    local d=$TC_WORLD/tpm port="" ctrl pid i
    mkdir -p "$d/state" "$d/store" || tc_die "cannot create $d"
    if [ "${#d}" -gt 90 ]; then
        tc_die "world path too long for a unix socket: $d (set TMPDIR shorter)"
    fi

    # Ports are picked at random below the ephemeral range; the bind by swtpm itself is the
    # arbiter when two tests race for the same pair. tcti-swtpm uses port+1 for control.
    for _ in $(seq 1 30); do
        port=$((20000 + (RANDOM % 6000) * 2))
        ctrl=$((port + 1))
        if tc__port_in_use "$port" || tc__port_in_use "$ctrl"; then
            port=""
            continue
        fi
        rm -f "$d/swtpm.pid"
        if swtpm socket --tpm2 --tpmstate "dir=$d/state" \
            --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
            --ctrl "type=tcp,port=$ctrl,bindaddr=127.0.0.1" \
            --flags not-need-init,startup-clear --daemon \
            --pid "file=$d/swtpm.pid" --log "file=$d/swtpm.log" \
            </dev/null >>"$d/swtpm.log" 2>&1; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        tc__show_log "$d/swtpm.log"
        tc_die "could not start swtpm on a free port pair after 30 attempts"
    fi
    for i in $(seq 1 50); do
        [ -s "$d/swtpm.pid" ] && break
        sleep 0.1
    done
    pid=$(cat "$d/swtpm.pid" 2>/dev/null || true)
    [ -n "$pid" ] || tc_die "swtpm started but wrote no pid file"
    TC_PIDS+=("swtpm:$pid")
    TC_TPM_PORT=$port

    if ! dbus-daemon --session --address="unix:path=$d/bus" --fork --nopidfile \
        --print-pid=3 3>"$d/dbus.pid" </dev/null >"$d/dbus.log" 2>&1; then
        tc__show_log "$d/dbus.log"
        tc_die "could not start a private dbus-daemon"
    fi
    pid=$(tr -dc '0-9' <"$d/dbus.pid")
    [ -n "$pid" ] || tc_die "dbus-daemon printed no pid"
    TC_PIDS+=("dbus:$pid")
    DBUS_SESSION_BUS_ADDRESS=unix:path=$d/bus
    export DBUS_SESSION_BUS_ADDRESS

    tpm2-abrmd --session --allow-root --flush-all --tcti="swtpm:host=127.0.0.1,port=$port" \
        </dev/null >"$d/abrmd.log" 2>&1 &
    pid=$!
    TC_PIDS+=("abrmd:$pid")
    for i in $(seq 1 150); do
        if TPM2TOOLS_TCTI=tabrmd:bus_type=session tpm2_getrandom 1 >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tc__show_log "$d/abrmd.log"
            tc_die "tpm2-abrmd exited during start-up"
        fi
        if [ "$i" -eq 150 ]; then
            tc__show_log "$d/abrmd.log"
            tc__show_log "$d/swtpm.log"
            tc_die "tpm2-abrmd not answering after 15 s"
        fi
        sleep 0.1
    done
    tc__start_watchdog

    TPM2_PKCS11_TCTI=tabrmd:bus_type=session
    TPM2TOOLS_TCTI=tabrmd:bus_type=session
    TPM2_PKCS11_STORE=$d/store
    TPM2_PKCS11_LOG_LEVEL=0
    TSS2_LOG=all+NONE
    export MODULE TPM2_PKCS11_TCTI TPM2TOOLS_TCTI TPM2_PKCS11_STORE TPM2_PKCS11_LOG_LEVEL TSS2_LOG
    export TC_TPM_PORT
}

tc__tpm_new_token() {
    local label=$1 slots slot
    slots=$(pkcs11-tool --module "$MODULE" --list-slots 2>>"$TC_WORLD/harness.log") ||
        { tc__show_log "$TC_WORLD/harness.log"; tc_die "pkcs11-tool --list-slots failed"; }
    # tpm2-pkcs11 always offers exactly one uninitialised slot after its initialised tokens.
    slot=$(printf '%s\n' "$slots" | awk '
        /^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { s = $3; gsub(/[():]/, "", s) }
        /token state: *uninitialized/ { if (s != "" && found == "") found = s }
        END { if (found != "") print found }')
    if [ -z "$slot" ]; then
        tc_die "tpm2-pkcs11 offers no uninitialised slot for token '$label'"
    fi
    if ! {
        pkcs11-tool --module "$MODULE" --slot "$slot" --init-token --label "$label" \
            --so-pin "$SO_PIN" &&
            pkcs11-tool --module "$MODULE" --token-label "$label" --login --login-type so \
                --so-pin "$SO_PIN" --init-pin --pin "$PIN"
    } >>"$TC_WORLD/harness.log" 2>&1; then
        tc__show_log "$TC_WORLD/harness.log"
        tc_die "could not init tpm2-pkcs11 token '$label'"
    fi
}

# tc_world_new_token LABEL: another token in the same world, same PIN and SO PIN.
tc_world_new_token() {
    local label=$1
    [ -n "$TC_WORLD" ] || tc_die "tc_world_new_token before tc_world_init"
    case "$TC_TOKEN_KIND" in
    softhsm) tc__softhsm_new_token "$label" ;;
    tpm) tc__tpm_new_token "$label" ;;
    esac
}

# tc_world_init: private world + a fresh token of kind $TC_TOKEN_KIND (softhsm | tpm).
# Exports TC_WORLD TC_TOKEN_KIND MODULE TOKEN_LABEL PIN SO_PIN (+ SOFTHSM2_CONF, or the
# TPM2_PKCS11_* / TSS2_LOG / DBUS_SESSION_BUS_ADDRESS set). TC_TOKEN_LABEL overrides the label.
tc_world_init() {
    if [ -n "$TC_WORLD" ]; then
        tc_die "tc_world_init called twice"
    fi
    TC_TOKEN_KIND=${TC_TOKEN_KIND:-softhsm}
    case "$TC_TOKEN_KIND" in
    softhsm | tpm) ;;
    *) tc_die "TC_TOKEN_KIND must be softhsm or tpm, not '$TC_TOKEN_KIND'" ;;
    esac
    trap tc__cleanup EXIT
    trap 'TC__ERR_AT="${BASH_SOURCE[0]-?}:$LINENO: $BASH_COMMAND"' ERR
    trap 'exit 130' INT
    trap 'exit 143' TERM
    TC_WORLD=$(mktemp -d "${TMPDIR:-/tmp}/tc-world.XXXXXX") || tc_die "mktemp failed"
    : >"$TC_WORLD/harness.log"
    tc_require_tool pkcs11-tool openssl python3

    TOKEN_LABEL=${TC_TOKEN_LABEL:-tokencert-test}
    PIN=1234
    SO_PIN=12345678
    export TC_WORLD TC_TOKEN_KIND TOKEN_LABEL PIN SO_PIN
    # tokencert's state and configuration live in the world too, never in the machine's.
    TOKENCERT_STATE_DIR=$TC_WORLD/state
    TOKENCERT_CONFIG_SYSTEM=$TC_WORLD/etc/tokencert.conf
    XDG_CONFIG_HOME=$TC_WORLD/config
    export TOKENCERT_STATE_DIR TOKENCERT_CONFIG_SYSTEM XDG_CONFIG_HOME
    [ -x "${TOKENCERT%/*}/../libexec/tokencert-ca-sign" ] && export TOKENCERT_LIBEXECDIR="${TOKENCERT%/*}/../libexec" # the build tree's CA signer (tokencert-ca(1))

    case "$TC_TOKEN_KIND" in
    softhsm)
        tc__softhsm_setup
        tc__softhsm_new_token "$TOKEN_LABEL"
        ;;
    tpm)
        tc__tpm_setup
        tc__tpm_new_token "$TOKEN_LABEL"
        ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Token snapshots

# tc_objects_snapshot FILE [TOKEN_LABEL]
# Writes a canonical, sorted listing of the token's objects, logged in: one line per object as
# pkcs11-tool --list-objects describes it (kind, label, id, then its other printed attributes),
# plus one "certvalue" line per certificate with the SHA-256 of its CKA_VALUE and its
# CKA_CERTIFICATE_CATEGORY. Two snapshots are equal iff the token did not visibly change.
tc_objects_snapshot() {
    local file=$1 label=${2:-$TOKEN_LABEL}
    local tmp=$TC_WORLD/.snapshot.$$
    mkdir -p "$tmp"
    if ! pkcs11-tool --module "$MODULE" --token-label "$label" --login --pin "$PIN" \
        --list-objects >"$tmp/objects" 2>"$tmp/objects.err"; then
        tc__show_log "$tmp/objects.err"
        tc_die "snapshot: pkcs11-tool --list-objects failed on token '$label'"
    fi
    # pkcs11-tool reads only the first object matching an id/label, so certificate values come
    # from p11certs.py, which walks every certificate object itself.
    if ! TC_P11CERTS_PIN=$PIN python3 "$TC_LIB_DIR/p11certs.py" "$MODULE" "$label" \
        >"$tmp/certs" 2>"$tmp/certs.err"; then
        tc__show_log "$tmp/certs.err"
        tc_die "snapshot: p11certs.py failed on token '$label'"
    fi
    awk '
        function flush() {
            if (kind != "") {
                printf "%s\t%s\t%s\t%s\t%s\n", kind, label, id, detail, rest
            }
            kind = ""; label = ""; id = "-"; detail = ""; rest = ""
        }
        BEGIN { kind = ""; id = "-" }
        /^[^ \t]/ {
            flush()
            header = $0
            sub(/[ \t]+$/, "", header)
            if (header ~ /^Private Key Object/)      kind = "privkey"
            else if (header ~ /^Public Key Object/)  kind = "pubkey"
            else if (header ~ /^Certificate Object/) kind = "cert"
            else if (header ~ /^Secret Key Object/)  kind = "secretkey"
            else if (header ~ /^Data object/)        kind = "data"
            else                                     kind = "other"
            detail = header
            sub(/^[^;]*;[ \t]*/, "", detail)
            gsub(/[ \t]+/, " ", detail)
            if (kind == "data") detail = ""   # pkcs11-tool prints the object handle here
            next
        }
        /^[ \t]+[A-Za-z_ ]+:/ {
            line = $0
            sub(/^[ \t]+/, "", line)
            key = line; sub(/:.*/, "", key)
            val = line; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "label") label = val
            else if (key == "ID") id = val
            else rest = rest (rest == "" ? "" : "; ") key "=" val
            next
        }
        END { flush() }
    ' "$tmp/objects" >"$tmp/lines" || tc_die "snapshot: cannot parse pkcs11-tool output"
    local from_tool from_values
    from_tool=$(awk -F'\t' '$1 == "cert" { print $3 }' "$tmp/lines" | LC_ALL=C sort)
    from_values=$(awk -F'\t' '{ print $1 }' "$tmp/certs" | LC_ALL=C sort)
    if [ "$from_tool" != "$from_values" ]; then
        tc_die "snapshot: pkcs11-tool and p11certs.py disagree on the certificates of '$label'"
    fi
    awk -F'\t' '{ printf "certvalue\t%s\t%s\tsha256=%s\tcategory=%s\n", $4, $1, $2, $3 }' \
        "$tmp/certs" >>"$tmp/lines"
    LC_ALL=C sort "$tmp/lines" >"$file" || tc_die "snapshot: cannot write $file"
    rm -rf -- "$tmp"
}

# A Python start costs ~0.4 s here, so JSON questions are asked in batches.
# tc_jexprs FILE EXPR...: each EXPR evaluated like tc_json does (j = the parsed FILE), one result per
# line in the array R. A bad document or expression gives "error: ..." results, never a pass.
tc_jexprs() {
    local file=$1
    shift
    R=()
    mapfile -t R < <(python3 - "$file" "$@" <<'EOF' 2>&1 || true
import json, sys
try:
    j = json.load(open(sys.argv[1], encoding="utf-8"))
except Exception as ex:
    j = None
    bad = "error: %s is not JSON: %s" % (sys.argv[1], ex)
for e in sys.argv[2:]:
    try:
        if j is None:
            raise ValueError(bad)
        r = eval(e, {"j": j})
    except Exception as ex:
        r = "error: %s: %s" % (type(ex).__name__, ex)
    print(r if isinstance(r, str) else json.dumps(r, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False))
EOF
    )
}

# tc_require_faultmod: the fault-injecting module (tests/faultmod) that ctest passes in.
tc_require_faultmod() {
    if [ -z "${TC_FAULTMOD-}" ] || [ ! -f "$TC_FAULTMOD" ]; then
        tc_die "TC_FAULTMOD must name tc-faultmod.so (got '${TC_FAULTMOD-}'); run through ctest"
    fi
}

# tc_assert_match TEXT ERE MSG: TEXT matches the extended regex ERE, ignoring case.
tc_assert_match() {
    if grep -Eqi -- "$2" <<<"$1"; then
        tc_pass "$3"
    else
        tc_fail "$3"
        printf '#   no match for /%s/ in:\n' "$2"
        sed -n '1,40s/^/#     | /p' <<<"$1"
    fi
}
