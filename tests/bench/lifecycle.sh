#!/usr/bin/env bash
# Lifecycle benchmark: what `status`, `poll`, `renew --all --due` and `prune` cost on one token
# holding N credentials, beside `list` on the same token in the same run — PKCS#11 calls (exact,
# counted by OpenSC's pkcs11-spy), logins and wall time. A run must touch each token once: with
# nothing to do it costs what a listing costs, whatever N. See README.md here and
# docs/performance.md.
#
# Exit status: 0 when everything ran (missed targets are reported, not failed), 1 when something
# failed to run, 2 on usage errors.
set -uo pipefail
export LC_ALL=C

usage() {
    cat <<'EOF'
usage: tests/bench/lifecycle.sh [options] TOKENCERT_BINARY FILL_BINARY

  TOKENCERT_BINARY  the tokencert CLI
  FILL_BINARY       tc-bench-fill (built from tests/bench/fill.c)

options:
  --counts "N ..."  credentials on the token, one fresh token each (default "10 100 1000")
  --min-runs N      hyperfine runs per timed command (default 5)
  --tmpdir DIR      where the tokens go (default: /dev/shm when writable, else $TMPDIR or /tmp)
  --keep            keep the work directory (tokens, spy logs, outputs)
  --no-renewals     skip the two "all due" runs (the longest part: N renewals each)
  --module PATH     SoftHSM module (default /usr/lib/softhsm/libsofthsm2.so)
  --spy PATH        OpenSC pkcs11-spy (default /usr/lib/x86_64-linux-gnu/pkcs11-spy.so)
EOF
}

counts="10 100 1000"
min_runs=5
tmpbase=""
keep=0
renewals=1
module=/usr/lib/softhsm/libsofthsm2.so
spy=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
label=bench

need_arg() {
    if [ "$2" -lt 2 ]; then
        echo "lifecycle.sh: $1 needs an argument" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case $1 in
    --counts) need_arg "$1" $#; counts=$2; shift 2 ;;
    --min-runs) need_arg "$1" $#; min_runs=$2; shift 2 ;;
    --tmpdir) need_arg "$1" $#; tmpbase=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-renewals) renewals=0; shift ;;
    --module) need_arg "$1" $#; module=$2; shift 2 ;;
    --spy) need_arg "$1" $#; spy=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "lifecycle.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -ne 2 ]; then
    usage >&2
    exit 2
fi
tc=$(realpath "$1")
fill=$(realpath "$2")
for n in $counts $min_runs; do
    case $n in
    '' | *[!0-9]* | 0*) echo "lifecycle.sh: bad number '$n'" >&2; exit 2 ;;
    esac
done

missing=()
for prog in softhsm2-util hyperfine python3; do
    command -v "$prog" >/dev/null 2>&1 || missing+=("$prog")
done
for f in "$module" "$spy" "$fill" "$tc"; do
    [ -e "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
    printf 'lifecycle.sh: cannot run, missing: %s\n' "${missing[@]}" >&2
    exit 1
fi

if [ -z "$tmpbase" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmpbase=/dev/shm; else tmpbase=${TMPDIR:-/tmp}; fi
fi
work=$(mktemp -d "$tmpbase/tc-bench-lifecycle.XXXXXX") || exit 1
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    if [ "$keep" -eq 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=0
fail() {
    echo "  FAILED: $*" >&2
    failed=1
}

# The embedded CA issues the renewals (its own SoftHSM token, not counted: not the user's).
if ! "$tc" ca init --ca-dir "$work/ca" >"$work/ca-init.txt" 2>&1; then
    cat "$work/ca-init.txt" >&2
    echo "lifecycle.sh: tokencert ca init failed" >&2
    exit 1
fi

# conf FILE MODULE RENEW_BEFORE: N credentials "c<i>" on the bench token, label "bench <i>"
# (what tc-bench-fill writes), all at the local CA.
conf() {
    local i
    {
        printf 'cas = ( { name = "local"; protocol = "local"; dir = "%s"; } );\n' "$work/ca"
        printf 'defaults = { renew_before = "%s"; renew_fraction = 0.001; };\n' "$3"
        printf 'credentials = (\n'
        for ((i = 0; i < n; i++)); do
            printf '  { name = "c%06d"; token = "pkcs11:token=%s"; module = "%s"; label = "bench %06d";\n' \
                "$i" "$label" "$2" "$i"
            printf '    ca = "local"; pin_source = "file:%s"; }%s\n' "$tok/pin" \
                "$([ "$i" -lt $((n - 1)) ] && echo ,)"
        done
        printf ');\n'
    } >"$1"
}

# spied NAME CMD...: runs CMD once with the token's module behind the spy; sets CALLS, LOGINS, MS.
spied() {
    local name=$1 t0 t1
    shift
    rm -f "$d/$name.spy"
    t0=$(date +%s%N)
    if ! PKCS11SPY=$module PKCS11SPY_OUTPUT=$d/$name.spy "$@" >"$d/$name.out" 2>"$d/$name.err"; then
        fail "$name at $n exited non-zero:"
        tail -n 3 "$d/$name.err" | sed 's/^/    /' >&2
    fi
    t1=$(date +%s%N)
    MS=$(((t1 - t0) / 1000000))
    [ -f "$d/$name.spy" ] || : >"$d/$name.spy"
    CALLS=$(grep -cE '^[0-9]+: C_' "$d/$name.spy")
    LOGINS=$(grep -cE '^[0-9]+: C_Login$' "$d/$name.spy")
}

# timed NAME CMD...: mean wall time in ms over hyperfine runs (without the spy): sets MEAN.
timed() {
    local name=$1
    shift
    if ! hyperfine -N --warmup 1 --min-runs "$min_runs" --export-json "$d/$name.hf.json" \
        -- "$(printf '%q ' "$@")" >"$d/$name.hf.txt" 2>&1; then
        fail "$name at $n (hyperfine):"
        tail -n 3 "$d/$name.hf.txt" | sed 's/^/    /' >&2
        MEAN=0
        return
    fi
    MEAN=$(python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["results"][0]["mean"] * 1000))' \
        "$d/$name.hf.json")
}

echo "tokencert lifecycle benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  SoftHSM $(softhsm2-util --version), one token, N credentials (an EC P-256 key and a"
echo "  certificate each); calls counted by OpenSC's pkcs11-spy on that token only"
echo
printf '%-30s %6s %9s %8s %7s %9s %9s  %s\n' command N calls calls/N logins "mean ms" "x list" \
    "targets"

for n in $counts; do
    tok=$work/n$n
    d=$tok/out
    mkdir -p "$tok/tokens" "$d"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$tok" >"$tok/softhsm2.conf"
    export SOFTHSM2_CONF=$tok/softhsm2.conf
    if ! softhsm2-util --init-token --free --label "$label" --so-pin 12345678 --pin 1234 \
        >"$tok/init.txt" 2>&1; then
        fail "softhsm2-util --init-token for $n"
        continue
    fi
    (umask 077 && printf '1234\n' >"$tok/pin")
    if ! TC_BENCH_FILL_VALID=1 "$fill" "$module" "$label" "$tok/pin" "$n" 1 >"$tok/fill.txt" 2>&1; then
        cat "$tok/fill.txt" >&2
        fail "filling the token with $n credentials"
        continue
    fi
    conf "$tok/spy.conf" "$spy" 1d
    conf "$tok/real.conf" "$module" 1d
    export TOKENCERT_STATE_DIR=$tok/state
    # The first run records the credentials and adopts their certificates (not measured).
    if ! "$tc" renew --all --due --config "$tok/real.conf" >"$d/first.out" 2>&1; then
        tail -n 3 "$d/first.out" >&2
        fail "the first renew --all --due at $n"
        continue
    fi
    row() { # row NAME LIST_CALLS LIST_MS: prints the row of the last spied + timed command
        local ratio per target=""
        per=$(python3 -c "print('%.2f' % ($CALLS / $n))")
        ratio=$(python3 -c "print('%.2f' % ($MEAN / $3))" 2>/dev/null || echo -)
        if [ -n "$2" ]; then
            [ "$CALLS" -le "$2" ] && target="calls ok" || target="calls MISSED"
            python3 -c "import sys; sys.exit(0 if $MEAN <= 1.2 * $3 else 1)" &&
                target="$target, time ok" || target="$target, time MISSED"
        fi
        printf '%-30s %6s %9s %8s %7s %9s %9s  %s\n' "$1" "$n" "$CALLS" "$per" "$LOGINS" "$MEAN" \
            "$ratio" "$target"
    }
    spied list "$tc" list --module "$spy" "pkcs11:token=$label"
    timed list "$tc" list --module "$module" "pkcs11:token=$label"
    list_calls=$CALLS
    list_ms=$MEAN
    row "list" "" "$list_ms"
    for cmd in status poll "renew --all --due" prune; do
        name=${cmd// /_}
        name=${name//-/}
        # shellcheck disable=SC2086  # cmd is split into its words on purpose
        spied "$name" "$tc" $cmd --config "$tok/spy.conf"
        # shellcheck disable=SC2086
        timed "$name" "$tc" $cmd --config "$tok/real.conf"
        row "$cmd (nothing to do)" "$list_calls" "$list_ms"
    done
    # Everything due: renewed in one run (one login, one reading of the token). First the
    # adopted certificates (their SANs read from the token), then again (the store has them).
    [ "$renewals" -eq 1 ] || continue
    conf "$tok/spy.conf" "$spy" 100y
    for pass in "all due" "all due again"; do
        name=renew_${pass// /_}
        # What one reading of the token costs now (the token holds more than at the start).
        spied "scan_${pass// /_}" "$tc" list --module "$spy" "pkcs11:token=$label"
        scan_calls=$CALLS
        spied "$name" "$tc" renew --all --due --config "$tok/spy.conf"
        renewed=$(grep -c 'installed and active' "$d/$name.out")
        per=$(python3 -c "print('%.1f' % (($CALLS - $scan_calls) / $n))")
        [ "$renewed" -eq "$n" ] || fail "renew --all --due ($pass) at $n renewed $renewed of $n"
        if [ "$LOGINS" -le 1 ] && python3 -c "import sys; sys.exit(0 if $per <= 20 else 1)"; then
            target="ok"
        else
            target="MISSED"
        fi
        printf '%-30s %6s %9s %8s %7s %9s %9s  %s\n' "renew --all --due ($pass)" "$n" "$CALLS" \
            "$(python3 -c "print('%.2f' % ($CALLS / $n))")" "$LOGINS" "$MS" "-" \
            "$per calls/credential beyond one scan: $target (one run, under the spy)"
    done
done

exit "$failed"
