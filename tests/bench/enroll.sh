#!/usr/bin/env bash
# Enrollment benchmark: PKCS#11 calls, logins and PIN entries for getting a key and a certificate
# onto a token — `tokencert enroll` against today's tool chains doing the same work — on an empty
# token and on tokens already holding many certificates. See README.md here.
#
# Exit status: 0 when everything ran (missed targets are reported, not failed), 1 when something
# failed to run, 2 on usage errors.
set -uo pipefail
export LC_ALL=C

usage() {
    cat <<'EOF'
usage: tests/bench/enroll.sh [options] TOKENCERT_BINARY FILL_BINARY

  TOKENCERT_BINARY  the tokencert CLI
  FILL_BINARY       tc-bench-fill (built from tests/bench/fill.c)

options:
  --counts "N ..."  certificates already on the token, one fresh token each (default "0 1000")
  --tmpdir DIR      where the tokens go (default: /dev/shm when writable, else $TMPDIR or /tmp)
  --keep            keep the work directory (tokens, spy logs, outputs)
  --module PATH     SoftHSM module (default /usr/lib/softhsm/libsofthsm2.so)
  --spy PATH        OpenSC pkcs11-spy (default /usr/lib/x86_64-linux-gnu/pkcs11-spy.so)
  --engine PATH     libp11's OpenSSL engine (default /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so)
EOF
}

counts="0 1000"
tmpbase=""
keep=0
module=/usr/lib/softhsm/libsofthsm2.so
spy=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
engine=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
label=bench
subject_cn=1234567890

need_arg() {
    if [ "$2" -lt 2 ]; then
        echo "enroll.sh: $1 needs an argument" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case $1 in
    --counts) need_arg "$1" $#; counts=$2; shift 2 ;;
    --tmpdir) need_arg "$1" $#; tmpbase=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --module) need_arg "$1" $#; module=$2; shift 2 ;;
    --spy) need_arg "$1" $#; spy=$2; shift 2 ;;
    --engine) need_arg "$1" $#; engine=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "enroll.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
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
    '' | *[!0-9]* | 0?*) echo "enroll.sh: bad count '$n'" >&2; exit 2 ;;
    esac
done

missing=()
for prog in softhsm2-util pkcs11-tool p11tool certtool openssl; do
    command -v "$prog" >/dev/null 2>&1 || missing+=("$prog")
done
for f in "$module" "$spy" "$engine" "$fill" "$tc"; do
    [ -e "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
    printf 'enroll.sh: cannot run, missing: %s\n' "${missing[@]}" >&2
    exit 1
fi

if [ -z "$tmpbase" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmpbase=/dev/shm; else tmpbase=${TMPDIR:-/tmp}; fi
fi
work=$(mktemp -d "$tmpbase/tc-bench-enroll.XXXXXX") || exit 1
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    if [ "$keep" -eq 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
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

# A software CA signs the anchors' requests (its work is not PKCS#11 work on the user's token).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/swca.key" \
    -out "$work/swca.pem" -subj /CN=bench-ca -days 30 >/dev/null 2>&1 || {
    echo "enroll.sh: cannot make the software CA" >&2
    exit 1
}
# tokencert's embedded CA, on its own SoftHSM token (not counted: not the user's token).
if ! "$tc" ca init --ca-dir "$work/ca" >"$work/ca-init.txt" 2>&1; then
    cat "$work/ca-init.txt" >&2
    echo "enroll.sh: tokencert ca init failed" >&2
    exit 1
fi

cat >"$work/engine.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine
MODULE_PATH = $spy
init = 0
EOF
printf 'cn = %s\n' "$subject_cn" >"$work/certtool.tmpl"

echo "tokencert enrollment benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  SoftHSM $(softhsm2-util --version), $(openssl version | cut -d' ' -f1-2)," \
    "$(pkcs11-tool --version 2>&1 | head -n1 | sed 's/^/pkcs11-tool /' || true)," \
    "$(p11tool --version 2>/dev/null | head -n1)"
echo "  calls counted by OpenSC's pkcs11-spy on the user's token only; PIN 1234 test token"
echo

# Runs one step of a chain with the spy's log at $step_log; STEP_OK 1 on success.
step() {
    local name=$1
    shift
    step_log=$d/$name.spy
    if PKCS11SPY=$module PKCS11SPY_OUTPUT=$step_log "$@" >"$d/$name.out" 2>"$d/$name.err"; then
        STEP_OK=1
    else
        STEP_OK=0
        fail "$chain at $n: step '$name' failed:"
        tail -n 3 "$d/$name.err" | sed 's/^/    /' >&2
    fi
    [ -f "$step_log" ] || : >"$step_log"
}

tally() {
    local calls logins
    calls=$(cat "$d"/*.spy | grep -cE '^[0-9]+: C_')
    logins=$(cat "$d"/*.spy | grep -cE '^[0-9]+: C_Login$')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$chain" "$1" "$calls" "$logins" "$2" >>"$results"
    printf '  %-34s %2s commands  %5s calls  %s logins  %s PIN entries\n' "$chain" "$1" "$calls" \
        "$logins" "$2"
}

# Restores the filled token before each chain, so every chain starts from the same objects.
fresh_token() {
    rm -rf "$tok/tokens"
    cp -a "$tok/filled" "$tok/tokens"
}

for n in $counts; do
    echo "== $n certificates already on the token =="
    tok=$work/n$n
    mkdir -p "$tok/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$tok" >"$tok/softhsm2.conf"
    export SOFTHSM2_CONF=$tok/softhsm2.conf
    if ! softhsm2-util --init-token --free --label "$label" --so-pin 12345678 --pin 1234 \
        >"$tok/init.txt" 2>&1; then
        fail "softhsm2-util --init-token for $n"
        continue
    fi
    (umask 077 && printf '1234\n' >"$tok/pin")
    if [ "$n" -gt 0 ] && ! "$fill" "$module" "$label" "$tok/pin" "$n" 10 >"$tok/fill.txt" 2>&1; then
        cat "$tok/fill.txt" >&2
        fail "filling the token with $n certificates"
        continue
    fi
    cp -a "$tok/tokens" "$tok/filled"

    # tokencert: one command, one PIN entry (read from a file here).
    chain="tokencert enroll"
    d=$tok/tc
    mkdir -p "$d"
    fresh_token
    # A state store of its own per token: the enrollment is recorded there, never in the machine's.
    TOKENCERT_STATE_DIR=$d/state step enroll "$tc" enroll "pkcs11:token=$label" --module "$spy" \
        --pin-source "file:$tok/pin" --label tc --subject "CN=$subject_cn" --ca-dir "$work/ca"
    [ "$STEP_OK" -eq 1 ] && tally 1 1

    # OpenSC + libp11: keygen, request through the engine, certificate written back.
    chain="pkcs11-tool + openssl req (libp11)"
    d=$tok/opensc
    mkdir -p "$d"
    fresh_token
    step keygen pkcs11-tool --module "$spy" --token-label "$label" --login --pin 1234 \
        --keypairgen --key-type rsa:2048 --id ee01 --label opensc
    [ "$STEP_OK" -eq 1 ] && step req env OPENSSL_CONF="$work/engine.cnf" openssl req -new \
        -engine pkcs11 -keyform engine \
        -key "pkcs11:token=$label;id=%ee%01;type=private;pin-value=1234" \
        -subj "/CN=$subject_cn" -out "$d/req.pem"
    [ "$STEP_OK" -eq 1 ] && openssl x509 -req -in "$d/req.pem" -CA "$work/swca.pem" \
        -CAkey "$work/swca.key" -days 30 -outform DER -out "$d/cert.der" >/dev/null 2>&1
    [ "$STEP_OK" -eq 1 ] && step write pkcs11-tool --module "$spy" --token-label "$label" \
        --login --pin 1234 --write-object "$d/cert.der" --type cert --id ee01 --label opensc
    [ "$STEP_OK" -eq 1 ] && tally 3 3

    # GnuTLS: p11tool keygen, certtool request, p11tool write.
    chain="p11tool + certtool"
    d=$tok/gnutls
    mkdir -p "$d"
    fresh_token
    export GNUTLS_PIN=1234
    step keygen p11tool --provider "$spy" --login --generate-privkey rsa --bits 2048 \
        --label gnutls --id ee02 "pkcs11:token=$label"
    [ "$STEP_OK" -eq 1 ] && step req certtool --provider "$spy" --generate-request \
        --load-privkey "pkcs11:token=$label;object=gnutls;type=private" \
        --load-pubkey "pkcs11:token=$label;object=gnutls;type=public" \
        --template "$work/certtool.tmpl" --outfile "$d/req.pem"
    [ "$STEP_OK" -eq 1 ] && openssl x509 -req -in "$d/req.pem" -CA "$work/swca.pem" \
        -CAkey "$work/swca.key" -days 30 -out "$d/cert.pem" >/dev/null 2>&1
    [ "$STEP_OK" -eq 1 ] && step write p11tool --provider "$spy" --login --write \
        --load-certificate "$d/cert.pem" --label gnutls --id ee02 "pkcs11:token=$label"
    [ "$STEP_OK" -eq 1 ] && tally 3 3
    unset GNUTLS_PIN
    echo
done

echo "chain                               certs  commands  calls  logins  PIN entries  targets"
tc_calls_first=""
while IFS=$'\t' read -r n chain cmds calls logins pins; do
    note=""
    if [ "$chain" = "tokencert enroll" ]; then
        [ "$calls" -le 30 ] && note="calls ok" || note="calls MISSED (> 30)"
        [ "$logins" -eq 1 ] && note="$note, 1 login ok" || note="$note, logins MISSED"
        if [ -z "$tc_calls_first" ]; then
            tc_calls_first=$calls
        elif [ "$calls" -ne "$tc_calls_first" ]; then
            note="$note, count differs from the first token (MISSED)"
        else
            note="$note, same count"
        fi
    fi
    printf '%-35s %6s  %8s  %5s  %6s  %11s  %s\n' "$chain" "$n" "$cmds" "$calls" "$logins" \
        "$pins" "$note"
done <"$results"
exit $failed
