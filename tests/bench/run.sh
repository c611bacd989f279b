#!/usr/bin/env bash
# Listing benchmark: fills fresh SoftHSM tokens and measures `tokencert list` against the floor
# (../shared/bench/p11floor.c) and two independent tools, in the same run. See README.md here.
#
# Exit status: 0 when everything that was due to run ran (targets missed are reported, not
# failed: this is a benchmark, not a test); 1 when something failed to run; 2 on usage errors.
set -uo pipefail
export LC_ALL=C

usage() {
    cat <<'EOF'
usage: tests/bench/run.sh [options] TOKENCERT_BINARY FILL_BINARY

  TOKENCERT_BINARY  the tokencert CLI; when the path does not exist tokencert is skipped and
                    only the anchors run
  FILL_BINARY       tc-bench-fill (built from tests/bench/fill.c)

options:
  --counts "N ..."  certificate counts to measure, one fresh token each (default "1000 10000")
  --min-runs N      hyperfine minimum runs per command (default 5; warmup is always 1)
  --tmpdir DIR      where the tokens go (default: /dev/shm when writable, else $TMPDIR or /tmp)
  --keep            keep the work directory (tokens, outputs, spy logs, hyperfine exports)
  --module PATH     SoftHSM module (default /usr/lib/softhsm/libsofthsm2.so)
  --spy PATH        OpenSC pkcs11-spy (default /usr/lib/x86_64-linux-gnu/pkcs11-spy.so)
  --floor-src PATH  p11floor.c (default: $P11FLOOR_SRC, else ../shared/bench/p11floor.c
                    beside the repository)
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
counts="1000 10000"
min_runs=5
tmpbase=""
keep=0
module=/usr/lib/softhsm/libsofthsm2.so
spy=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
floor_src=${P11FLOOR_SRC:-$script_dir/../../../shared/bench/p11floor.c}
label=bench
keys_every=10      # a tenth of the certificates get a key pair on the token
p11tool_max=1000   # p11tool --list-all-certs is quadratic: 22 s at 1,000, hours at 10,000

need_arg() {
    if [ "$2" -lt 2 ]; then
        echo "run.sh: $1 needs an argument" >&2
        usage >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case $1 in
    --counts) need_arg "$1" $#; counts=$2; shift 2 ;;
    --counts=*) counts=${1#*=}; shift ;;
    --min-runs) need_arg "$1" $#; min_runs=$2; shift 2 ;;
    --min-runs=*) min_runs=${1#*=}; shift ;;
    --tmpdir) need_arg "$1" $#; tmpbase=$2; shift 2 ;;
    --tmpdir=*) tmpbase=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --module) need_arg "$1" $#; module=$2; shift 2 ;;
    --module=*) module=${1#*=}; shift ;;
    --spy) need_arg "$1" $#; spy=$2; shift 2 ;;
    --spy=*) spy=${1#*=}; shift ;;
    --floor-src) need_arg "$1" $#; floor_src=$2; shift 2 ;;
    --floor-src=*) floor_src=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -ne 2 ]; then
    usage >&2
    exit 2
fi
tc=$1
fill=$2

for n in $counts; do
    case $n in
    '' | *[!0-9]* | 0*) echo "run.sh: bad count '$n'" >&2; exit 2 ;;
    esac
done
case $min_runs in
'' | *[!0-9]* | 0*) echo "run.sh: bad --min-runs '$min_runs'" >&2; exit 2 ;;
esac

# --- prerequisites: missing ones mean the benchmark cannot run at all --------------------------
missing=()
for prog in hyperfine softhsm2-util pkcs11-tool p11tool cc pkg-config awk; do
    command -v "$prog" >/dev/null 2>&1 || missing+=("$prog")
done
[ -x /usr/bin/time ] || missing+=("/usr/bin/time (Debian package 'time')")
[ -f "$module" ] || missing+=("module $module")
[ -f "$spy" ] || missing+=("pkcs11-spy $spy")
[ -f "$floor_src" ] || missing+=("floor source $floor_src")
[ -x "$fill" ] || missing+=("fill binary $fill")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'run.sh: cannot run, missing: %s\n' "${missing[@]}" >&2
    exit 1
fi

run_tc=1
if [ ! -e "$tc" ]; then
    run_tc=0
elif [ ! -x "$tc" ]; then
    echo "run.sh: $tc exists but is not executable" >&2
    exit 1
fi

# SoftHSM's file backend rewrites an object file once per attribute while creating it; on ext4
# that costs ~6 ms per certificate (a minute for 10,000), on tmpfs ~1 ms. Reads are served from
# memory either way (page cache), so tmpfs changes the fill time, not what is measured.
if [ -z "$tmpbase" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        tmpbase=/dev/shm
    else
        tmpbase=${TMPDIR:-/tmp}
    fi
fi
work=$(mktemp -d "$tmpbase/tc-bench.XXXXXX") || exit 1
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    if [ "$keep" -eq 1 ]; then
        echo "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=0
results=$work/results.tsv
: >"$results"

fail() {
    echo "  FAILED: $*" >&2
    failed=1
}

# --- the floor is compiled here, never checked into this tree ---------------------------------
floor=$work/p11floor
# shellcheck disable=SC2046  # pkg-config prints several words on purpose
if ! cc -O2 -std=c11 $(pkg-config --cflags p11-kit-1) -o "$floor" "$floor_src" -ldl -lcrypto \
    2>"$work/floor-build.txt"; then
    cat "$work/floor-build.txt" >&2
    echo "run.sh: cannot compile $floor_src" >&2
    exit 1
fi

echo "tokencert listing benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  host: $(nproc) CPU, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "  SoftHSM $(softhsm2-util --version), $(openssl version 2>/dev/null | cut -d' ' -f1-2)," \
    "$(hyperfine --version), $(p11tool --version 2>/dev/null | head -n1)"
echo "  tokens in $work ($(stat -f -c %T "$work"))"
echo "  hyperfine: warmup 1, at least $min_runs runs; peak RSS: one run under /usr/bin/time -v"
if [ "$run_tc" -eq 0 ]; then
    echo "  tokencert: SKIPPED — $tc does not exist (anchors only)"
else
    echo "  tokencert: $tc"
fi
echo

# Sets CMD to the argv of TOOL talking to MODULE.
build_cmd() {
    case $1 in
    tc-list) CMD=("$tc" list --module "$2" "pkcs11:token=$label") ;;
    tc-json) CMD=("$tc" list --json --module "$2" "pkcs11:token=$label") ;;
    pkcs11-tool) CMD=(pkcs11-tool --module "$2" --token-label "$label" --list-objects --type cert) ;;
    p11tool) CMD=(p11tool --provider "$2" --list-all-certs "pkcs11:token=$label") ;;
    floor) CMD=("$floor" "$2" "$label") ;;
    esac
}

display_name() {
    case $1 in
    tc-list) echo "tokencert list" ;;
    tc-json) echo "tokencert list --json" ;;
    floor) echo "floor (p11floor)" ;;
    *) echo "$1" ;;
    esac
}

# How many certificates TOOL's output (in FILE) shows; empty when the format is not known.
listed() {
    case $1 in
    floor) sed -n 's/^certs=\([0-9]*\).*/\1/p' "$2" ;;
    pkcs11-tool) grep -c '^Certificate Object' "$2" ;;
    p11tool) grep -c '^[[:space:]]*URL: pkcs11:' "$2" ;;
    *) echo "" ;;
    esac
}

# Appends one row: count tool status mean_ms sd_ms rss_kib calls note min_ms
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

measure() {
    local tool=$1 n=$2 d rss n_listed cmdline mean sd min calls
    d=$work/n$n/$tool
    mkdir -p "$d"
    build_cmd "$tool" "$module"

    # 1. One plain run under /usr/bin/time -v: proves the command works, gives peak RSS.
    if ! /usr/bin/time -v -o "$d/time.txt" "${CMD[@]}" >"$d/out.txt" 2>"$d/err.txt"; then
        fail "$(display_name "$tool") at $n: exit status non-zero; stderr:"
        head -n 5 "$d/err.txt" | sed 's/^/    /' >&2
        record "$n" "$tool" failed - - - - "did not run" -
        return
    fi
    rss=$(awk -F': *' '/Maximum resident set size/ {print $2}' "$d/time.txt")
    n_listed=$(listed "$tool" "$d/out.txt")
    if [ -n "$n_listed" ] && [ "$n_listed" != "$n" ]; then
        fail "$(display_name "$tool") at $n listed $n_listed certificates"
        record "$n" "$tool" failed - - "$rss" - "listed $n_listed of $n" -
        return
    fi

    # 2. Wall time. -N: no intermediate shell; the command is named so the CSV stays parseable.
    cmdline=$(printf '%q ' "${CMD[@]}")
    if ! hyperfine -N --warmup 1 --min-runs "$min_runs" --style basic -n "$tool" \
        --export-csv "$d/hyperfine.csv" "$cmdline" >"$d/hyperfine.txt" 2>&1; then
        fail "hyperfine on $(display_name "$tool") at $n"
        tail -n 5 "$d/hyperfine.txt" | sed 's/^/    /' >&2
        record "$n" "$tool" failed - - "$rss" - "hyperfine failed" -
        return
    fi
    mean=$(awk -F, 'NR == 2 {printf "%.1f", $2 * 1000}' "$d/hyperfine.csv")
    sd=$(awk -F, 'NR == 2 {printf "%.1f", $3 * 1000}' "$d/hyperfine.csv")
    min=$(awk -F, 'NR == 2 {printf "%.1f", $7 * 1000}' "$d/hyperfine.csv")

    # 3. PKCS#11 calls, through OpenSC's spy; each call starts with a "N: C_Name" line.
    build_cmd "$tool" "$spy"
    if ! PKCS11SPY=$module PKCS11SPY_OUTPUT=$d/spy.log "${CMD[@]}" >/dev/null 2>"$d/spy-err.txt"
    then
        fail "$(display_name "$tool") at $n under pkcs11-spy"
        calls=-
    else
        calls=$(grep -cE '^[0-9]+: C_' "$d/spy.log")
    fi
    [ "$keep" -eq 1 ] || rm -f "$d/spy.log"

    record "$n" "$tool" ok "$mean" "$sd" "$rss" "$calls" "" "$min"
    printf '  %-22s %9s ms ± %-7s  RSS %7.1f MiB  %s PKCS#11 calls\n' "$(display_name "$tool")" \
        "$mean" "$sd" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$calls"
}

for n in $counts; do
    echo "== $n certificates =="
    tok=$work/n$n
    mkdir -p "$tok/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$tok" >"$tok/softhsm2.conf"
    export SOFTHSM2_CONF=$tok/softhsm2.conf
    if ! softhsm2-util --init-token --free --label "$label" --so-pin 12345678 --pin 1234 \
        >"$tok/init.txt" 2>&1; then
        cat "$tok/init.txt" >&2
        fail "softhsm2-util --init-token for $n"
        continue
    fi
    (umask 077 && printf '1234\n' >"$tok/pin")
    start=$(date +%s.%N)
    if ! "$fill" "$module" "$label" "$tok/pin" "$n" "$keys_every" >"$tok/fill.txt" 2>&1; then
        cat "$tok/fill.txt" >&2
        fail "filling the token with $n certificates"
        continue
    fi
    end=$(date +%s.%N)
    echo "  filled: $(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.1f", e - s}') s" \
        "($(sed 's/^fill: //' "$tok/fill.txt"))"

    measure floor "$n"
    if [ "$run_tc" -eq 1 ]; then
        measure tc-list "$n"
        measure tc-json "$n"
    else
        record "$n" tc-list skipped - - - - "binary absent" -
        record "$n" tc-json skipped - - - - "binary absent" -
    fi
    measure pkcs11-tool "$n"
    if [ "$n" -le "$p11tool_max" ]; then
        measure p11tool "$n"
    else
        echo "  p11tool                skipped: quadratic in the certificate count"
        record "$n" p11tool skipped - - - - "quadratic; only up to $p11tool_max" -
    fi
    echo
done

# --- the table --------------------------------------------------------------------------------
# Targets (README.md) apply to tokencert rows: calls/cert <= 1.1, time <= 1.5x floor, and at
# 10,000 certificates or more peak RSS <= floor + 16 MiB.
awk -F'\t' '
function name(t) {
    if (t == "tc-list") return "tokencert list"
    if (t == "tc-json") return "tokencert list --json"
    if (t == "floor") return "floor (p11floor)"
    return t
}
{ rows[NR] = $0 }
$2 == "floor" && $3 == "ok" { fmean[$1] = $4; frss[$1] = $6 }
END {
    hdr = sprintf("%-22s %6s  %21s  %9s  %9s  %10s  %7s  %9s  %s", "tool", "count",
                  "mean ms ± sd", "min ms", "RSS MiB", "calls/cert", "x floor", "RSS-floor",
                  "targets / notes")
    print hdr
    line = ""
    for (i = 0; i < length(hdr) + 10; i++) line = line "-"
    print line
    for (i = 1; i <= NR; i++) {
        split(rows[i], f, "\t")
        n = f[1]; t = f[2]; st = f[3]
        if (st != "ok") {
            # 22, not 21: the header and data rows carry a two-byte "±" (awk counts bytes).
            printf "%-22s %6s  %22s  %9s  %9s  %10s  %7s  %9s  %s\n", name(t), n, st, "-", "-",
                   "-", "-", "-", f[8]
            continue
        }
        rss = f[6] / 1024
        cpc = (f[7] == "-") ? "-" : sprintf("%.3f", f[7] / n)
        ratio = (n in fmean && fmean[n] > 0) ? sprintf("%.2f", f[4] / fmean[n]) : "-"
        dmem = "-"
        if (n in frss) {
            d = (f[6] - frss[n]) / 1024
            dmem = sprintf("%+.1f", (d > -0.05 && d < 0.05) ? 0 : d)
        }
        note = f[8]
        if (t ~ /^tc-/) {
            note = ""
            if (cpc != "-") note = note (cpc + 0 <= 1.1 ? "calls ok" : "calls MISSED")
            if (ratio != "-") note = note (ratio + 0 <= 1.5 ? ", time ok" : ", time MISSED")
            if (n >= 10000 && dmem != "-")
                note = note (dmem + 0 <= 16 ? ", RSS ok" : ", RSS MISSED")
        }
        if (t == "floor") { ratio = "1.00"; dmem = "0" }
        if (f[4] > 0 && f[5] / f[4] > 0.10)
            note = note (note == "" ? "" : ", ") "noisy: sd > 10%"
        printf "%-22s %6s  %21s  %9s  %9.1f  %10s  %7s  %9s  %s\n", name(t), n,
               sprintf("%s ± %s", f[4], f[5]), f[9], rss, cpc, ratio, dmem, note
    }
}' "$results"

if [ "$failed" -ne 0 ]; then
    echo
    echo "run.sh: some steps FAILED to run (see above)" >&2
fi
exit "$failed"
