#!/usr/bin/env bash
# Crash safety, proven by fault injection: `renew` and `enroll` run through tc-faultmod, which
# fails the Nth PKCS#11 call with a CK_RV or kills the process there, for every N the command
# makes; for renew, the embedded CA then fails at each of its steps. After each fault: the old credential still signs, a
# plain rerun (the timer's `renew --all --due`) converges to exactly one new active generation,
# and after `prune` no object is left that the state store does not account for.
#
# One world for all iterations: the clock (test-only override) moves one day per iteration and
# certificates live one day, so each iteration starts with a due credential. On the TPM every
# second call index is exercised (its key generation takes seconds); on SoftHSM every one (every
# second in the sanitizer build, TC_CRASH_STEP=2, whose runs are several times slower).
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_require_faultmod
tc_require_tool openssl python3 pkcs11-tool
if [ -z "${TC_PROBE-}" ] || [ ! -x "$TC_PROBE" ]; then
    tc_die "TC_PROBE must name the tc-probe program (got '${TC_PROBE-}'); run through ctest"
fi
tc_world_init
W=$TC_WORLD
# What the store holds, read through history --json (its file's schema is not a test interface):
# store PY-EXPR over j, the history document (docs/json-schema.md) [STATE_DIR]
store() {
    TOKENCERT_STATE_DIR=${2:-$TOKENCERT_STATE_DIR} "$TOKENCERT" history --json \
        >"$TC_WORLD/history.json" 2>"$TC_WORLD/history.err" ||
        tc_fail "history --json: $(cat "$TC_WORLD/history.err")"
    tc_json "$TC_WORLD/history.json" "$1"
}
CA=$W/ca
URI="pkcs11:token=$TOKEN_LABEL"
FM=$TC_FAULTMOD
export TC_FAULT_TARGET=$MODULE TOKENCERT_TEST_CLOCK=enable
mkdir -p "$W/etc"
cat >"$W/etc/tokencert.conf" <<'EOF'
# Certificates of one day: due 2.4 hours before they end; pruned as soon as they expired.
defaults = { renew_before = "1h"; renew_fraction = 0.1; grace = "0"; };
EOF

pct() { python3 -c 'import sys; print("".join("%" + sys.argv[1][i:i+2] for i in range(0, len(sys.argv[1]), 2)))' "$1"; }
hours() { echo "+$1h"; }
run_at() { # run_at HOURS ARGS...: tokencert with the clock moved, output to files
    TOKENCERT_TEST_NOW=$(hours "$1") "$TOKENCERT" "${@:2}" >"$W/out" 2>"$W/err"
}
active_key() { # the active generation's CKA_ID, per the store
    TOKENCERT_TEST_NOW=$(hours "$1") "$TOKENCERT" status office --json 2>/dev/null >"$W/s.json"
    tc_json "$W/s.json" '[g["key_id"] for g in j[0]["generations"] if g["state"] == "active"][0]'
}
n_generations() { store 'len([g for g in j["generations"] if g["credential"] == "office"])'; }
n_active() {
    TOKENCERT_TEST_NOW=$(hours "$1") "$TOKENCERT" status office --json 2>/dev/null >"$W/s.json"
    tc_json "$W/s.json" 'str(len([g for g in j[0]["generations"] if g["state"] == "active"]))'
}
signs() { # signs ID: the key signs, the signature verifies against its certificate's public key
    local p
    p=$(pct "$1")
    "$TOKENCERT" export "$URI;id=$p;type=cert" --module "$MODULE" -o "$W/c.pem" >/dev/null 2>&1 || return 1
    openssl x509 -in "$W/c.pem" -pubkey -noout >"$W/p.pem" || return 1
    echo "claim $RANDOM" >"$W/msg"
    "$TC_PROBE" --module "$MODULE" --token "$URI" --pin-source env:PIN \
        --key "$URI;id=$p;type=private" sign --alg ecdsa --md sha256 --in "$W/msg" \
        --out "$W/sig" >/dev/null 2>&1 || return 1
    openssl dgst -sha256 -verify "$W/p.pem" -signature "$W/sig" "$W/msg" >/dev/null 2>&1
}
# Objects labelled office on the token, as "kind id" lines, sorted.
token_objects() { # token_objects [LABEL]
    pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>/dev/null |
        TC_LABEL=${1:-office} python3 -c '
import os, sys
want = os.environ["TC_LABEL"]
kind = label = None
out = []
def flush():
    if kind and label == want:
        out.append("%s %s" % (kind, ident))
for line in sys.stdin:
    s = line.strip()
    if s.startswith(("Private Key Object", "Public Key Object", "Certificate Object")):
        flush()
        kind, label, ident = s.split()[0].lower(), None, ""
    elif s.startswith("label:"):
        label = s.split(":", 1)[1].strip()
    elif s.startswith("ID:"):
        ident = s.split(":", 1)[1].strip()
flush()
print("\n".join(sorted(out)))'
}
# What the store accounts for: three objects per generation not pruned.
expected_objects() { # expected_objects [STATE_DIR CREDENTIAL]
    store '"\n".join(g["key_id"] for g in j["generations"] if g["credential"] == "'"${2:-office}"'" and g["pruned"] is None)' "${1:-}" |
        while read -r id; do printf 'certificate %s\nprivate %s\npublic %s\n' "$id" "$id" "$id"; done | sort
}

tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$CA" --cert-validity 1d
tc_expect_exit 0 "$TOKENCERT" enroll "$URI" --module "$MODULE" --pin-source env:PIN --ca-dir "$CA" \
    --label office --subject "CN=1234567890,O=Practice" --type ec:p256

# How many PKCS#11 calls a renewal makes: the fault points.
H=24
TC_FAULT_COUNT_FILE=$W/counts run_at $H renew --all --due --module "$FM" --pin-source env:PIN || true
tc_assert_contains "$(cat "$W/out")" "office: generation 2 installed and active" "the counting run renews"
TOTAL=$(awk '$1 == "total" { print $2 }' "$W/counts")
tc_log "a renewal makes $TOTAL PKCS#11 calls"
[ "${TOTAL:-0}" -ge 20 ] || tc_die "implausible fault point count '$TOTAL'"
STEP=1
if [ "$TC_TOKEN_KIND" = tpm ]; then
    STEP=2
fi
# TC_CRASH_STEP: every Nth call index instead (the sanitizer build, whose runs are slower, takes
# every second; the plain build covers every one).
STEP=${TC_CRASH_STEP:-$STEP}

points=0
bad=0
# iterate MODE N: one iteration at the next day with the fault MODE at call N (or a CA fault).
iterate() {
    local mode=$1 n=$2 old new before after what
    H=$((H + 24))
    old=$(active_key "$H")
    before=$(n_generations)
    what="$mode at $n"
    case "$mode" in
    ca:*)
        TOKENCERT_TEST_CA_FAULT=${mode#ca:} run_at "$H" renew --all --due --module "$MODULE" \
            --pin-source env:PIN || true
        ;;
    *)
        TC_FAULT_AT=$n TC_FAULT_RV=$mode run_at "$H" renew --all --due --module "$FM" \
            --pin-source env:PIN || true
        ;;
    esac
    points=$((points + 1))
    if ! signs "$old"; then
        tc_fail "$what: the old credential still signs"
        bad=$((bad + 1))
    fi
    # The timer's next run, two hours later (past the first retry backoff).
    run_at $((H + 2)) renew --all --due --module "$MODULE" --pin-source env:PIN || true
    after=$(n_generations)
    new=$(active_key $((H + 2)))
    if [ "$after" -ne $((before + 1)) ] || [ "$(n_active $((H + 2)))" != 1 ] || [ "$new" = "$old" ]; then
        tc_fail "$what: a rerun converges to exactly one new active generation ($before → $after generations)"
        tc__show stdout "$(cat "$W/out")"
        tc__show stderr "$(cat "$W/err")"
        bad=$((bad + 1))
    fi
    run_at $((H + 3)) prune --module "$MODULE" --pin-source env:PIN || true
    if [ "$(token_objects)" != "$(expected_objects)" ]; then
        tc_fail "$what: after prune, the token holds exactly the generations the store knows"
        diff <(token_objects) <(expected_objects) >&2 || true
        bad=$((bad + 1))
    fi
}

# TC_CRASH_POINTS="MODE@N ..." (e.g. "KILL@37 ca:issue@0") runs only those, to reproduce one.
if [ -n "${TC_CRASH_POINTS-}" ]; then
    for p in $TC_CRASH_POINTS; do
        iterate "${p%@*}" "${p##*@}"
    done
else
    for n in $(seq 1 "$STEP" "$TOTAL"); do
        iterate CKR_DEVICE_REMOVED "$n"
    done
    for n in $(seq 1 "$STEP" "$TOTAL"); do
        iterate KILL "$n"
    done
    for step in submit issue fetch; do
        iterate "ca:$step" 0
    done
fi
tc_assert_eq 0 "$bad" "all $points fault points: old credential kept, rerun converged, no orphans"
tc_log "fault points exercised: $points ($TOTAL PKCS#11 calls × 2 modes, step $STEP, + 3 CA steps)"
echo "fault points exercised: $points"

# ---------------------------------------------------------------------------------------------
# Concurrency: 8 parallel `renew office` (a named renewal is forced) make exactly one new
# generation; the others wait for the lock and see it done.
H=$((H + 24))
before=$(n_generations)
pids=()
for i in 1 2 3 4 5 6 7 8; do
    TOKENCERT_TEST_NOW=$(hours "$H") "$TOKENCERT" renew office --module "$MODULE" \
        --pin-source env:PIN --wait 120 >"$W/par.$i.out" 2>"$W/par.$i.err" &
    pids+=($!)
done
rcs=""
for p in "${pids[@]}"; do
    rc=0
    wait "$p" || rc=$?
    rcs="$rcs$rc"
done
tc_assert_eq "00000000" "$rcs" "8 parallel renews: all exit 0"
tc_assert_eq $((before + 1)) "$(n_generations)" "8 parallel renews: exactly one new generation"
tc_assert_eq 7 "$(cat "$W"/par.*.out | grep -c 'renewed by another tokencert run just now')" \
    "8 parallel renews: seven say another run did it"
tc_assert_eq 1 "$(n_active "$H")" "8 parallel renews: one active generation"

# ---------------------------------------------------------------------------------------------
# Enrollment with the fault at every call index: each a new credential (eMODE-N) in a store of
# its own. After the fault, a plain rerun of the same enroll converges to exactly one active
# generation, and after prune the token holds exactly that generation's objects under the label.
ES=$W/enroll-state
enroll_run() { # enroll_run MODULE LABEL: the enrollment, output to files
    TOKENCERT_STATE_DIR=$ES "$TOKENCERT" enroll "$URI" --module "$1" --pin-source env:PIN \
        --ca-dir "$CA" --label "$2" --subject "CN=1234567890,O=Practice" --type ec:p256 \
        >"$W/out" 2>"$W/err"
}
n_active_e() { store 'len([g for g in j["generations"] if g["credential"] == "'"$1"'" and g["state"] == "active"])' "$ES"; }
TC_FAULT_COUNT_FILE=$W/ecounts enroll_run "$FM" ecount || tc_die "the counting enrollment failed: $(cat "$W/err")"
ETOTAL=$(awk '$1 == "total" { print $2 }' "$W/ecounts")
tc_log "an enrollment makes $ETOTAL PKCS#11 calls"
[ "${ETOTAL:-0}" -ge 10 ] || tc_die "implausible fault point count '$ETOTAL'"
epoints=0
ebad=0
eiterate() { # eiterate MODE N
    local mode=$1 n=$2 label="e$1-$2" rc=0
    TC_FAULT_AT=$n TC_FAULT_RV=$mode enroll_run "$FM" "$label" || true
    epoints=$((epoints + 1))
    enroll_run "$MODULE" "$label" || rc=$?
    # 0: finished now; 2: the faulted run had finished (the label is in use by its certificate)
    if { [ "$rc" != 0 ] && [ "$rc" != 2 ]; } || [ "$(n_active_e "$label")" != 1 ]; then
        tc_fail "enroll, $mode at $n: a rerun converges to exactly one active generation (exit $rc)"
        tc__show stdout "$(cat "$W/out")"
        tc__show stderr "$(cat "$W/err")"
        ebad=$((ebad + 1))
    fi
    TOKENCERT_STATE_DIR=$ES "$TOKENCERT" prune --module "$MODULE" --pin-source env:PIN >/dev/null 2>&1 || true
    if [ "$(token_objects "$label")" != "$(expected_objects "$ES" "$label")" ]; then
        tc_fail "enroll, $mode at $n: after prune, the token holds exactly the generation the store knows"
        diff <(token_objects "$label") <(expected_objects "$ES" "$label") >&2 || true
        ebad=$((ebad + 1))
    fi
}
if [ -n "${TC_CRASH_ENROLL_POINTS-}" ]; then
    for p in $TC_CRASH_ENROLL_POINTS; do
        eiterate "${p%@*}" "${p##*@}"
    done
else
    for n in $(seq 1 "$STEP" "$ETOTAL"); do
        eiterate CKR_DEVICE_REMOVED "$n"
    done
    for n in $(seq 1 "$STEP" "$ETOTAL"); do
        eiterate KILL "$n"
    done
fi
tc_assert_eq 0 "$ebad" "enroll, all $epoints fault points: a rerun converged, no orphans"
tc_log "enroll fault points exercised: $epoints ($ETOTAL PKCS#11 calls × 2 modes, step $STEP)"
echo "enroll fault points exercised: $epoints"

tc_finish
