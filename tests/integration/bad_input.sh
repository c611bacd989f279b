#!/usr/bin/env bash
# Bad input: modules that are missing or are not PKCS#11 modules, malformed URIs, a URI carrying a
# PIN, URIs that match nothing, an absent token and one removed mid-run, certificate objects whose
# value is not a certificate, and bad command lines. Each gives the documented exit code and a
# message naming what was wrong, never shows a PIN, and leaves the token's objects unchanged.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_faultmod
if [ -z "${TC_SOURCE_DIR-}" ] || [ ! -d "$TC_SOURCE_DIR/docs/man" ]; then
    tc_die "TC_SOURCE_DIR must name the source tree (got '${TC_SOURCE_DIR-}'); run through ctest"
fi
tc_require_tool python3 openssl sha256sum
LIBZ=""
for f in /usr/lib/*/libz.so.1 /lib/*/libz.so.1 /usr/lib/libz.so.1; do
    if [ -f "$f" ]; then
        LIBZ=$f
        break
    fi
done
[ -n "$LIBZ" ] || tc_die "no libz.so.1 found: a real shared library without C_GetFunctionList"

tc_world_init
tc_fixture_standard
FM=$TC_FAULTMOD

# ---------------------------------------------------------------------------------------------
# Helpers


# unchanged WHAT: the token's objects are exactly those of the baseline snapshot. Called after each
# group of bad inputs: a change made by any run of the group persists, so it shows here.
unchanged() {
    tc_objects_snapshot "$TC_WORLD/snapshot.now"
    tc_assert_files_eq "$TC_WORLD/snapshot.base" "$TC_WORLD/snapshot.now" "token unchanged: $1"
}

# Creates a certificate object (CKO_CERTIFICATE, CKC_X_509, on the token, public) whose CKA_VALUE
# is taken verbatim from a file, through C_CreateObject: pkcs11-tool --write-object parses the
# value and refuses anything that is not a certificate. No project code is involved.
cat >"$TC_WORLD/mkcertobj.py" <<'EOF'
import ctypes, sys

CK_ULONG = ctypes.c_ulong


class CK_ATTRIBUTE(ctypes.Structure):
    _fields_ = [("type", CK_ULONG), ("pValue", ctypes.c_void_p), ("ulValueLen", CK_ULONG)]


def main(module, token_label, pin, *objects):
    lib = ctypes.CDLL(module)
    for fn in ("C_Initialize", "C_Finalize", "C_GetSlotList", "C_GetTokenInfo", "C_OpenSession",
               "C_CloseSession", "C_Login", "C_Logout", "C_CreateObject"):
        getattr(lib, fn).restype = CK_ULONG

    def check(rv, what):
        if rv != 0:
            sys.exit("mkcertobj: %s failed: CKR 0x%x" % (what, rv))

    check(lib.C_Initialize(None), "C_Initialize")
    n = CK_ULONG(0)
    check(lib.C_GetSlotList(ctypes.c_ubyte(1), None, ctypes.byref(n)), "C_GetSlotList")
    slots = (CK_ULONG * max(n.value, 1))()
    check(lib.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(n)), "C_GetSlotList")
    slot = None
    for i in range(n.value):
        info = ctypes.create_string_buffer(1024)
        if lib.C_GetTokenInfo(CK_ULONG(slots[i]), info) == 0 and \
                info.raw[:32].rstrip(b" \0").decode("utf-8", "replace") == token_label:
            slot = slots[i]
    if slot is None:
        sys.exit("mkcertobj: no token labelled %r" % token_label)
    sess = CK_ULONG(0)
    # CKF_SERIAL_SESSION | CKF_RW_SESSION
    check(lib.C_OpenSession(CK_ULONG(slot), CK_ULONG(0x6), None, None, ctypes.byref(sess)),
          "C_OpenSession")
    p = pin.encode()
    check(lib.C_Login(sess, CK_ULONG(1), p, CK_ULONG(len(p))), "C_Login")
    keep = []

    def attr(t, data):
        buf = ctypes.create_string_buffer(data, len(data))
        keep.append(buf)
        return CK_ATTRIBUTE(t, ctypes.cast(buf, ctypes.c_void_p), len(data))

    def ulong(v):
        return v.to_bytes(ctypes.sizeof(CK_ULONG), sys.byteorder)

    for label, id_hex, value_file in zip(objects[0::3], objects[1::3], objects[2::3]):
        with open(value_file, "rb") as f:
            value = f.read()
        tmpl = [attr(0x0, ulong(1)),                 # CKA_CLASS = CKO_CERTIFICATE
                attr(0x80, ulong(0)),                # CKA_CERTIFICATE_TYPE = CKC_X_509
                attr(0x1, b"\x01"),                  # CKA_TOKEN
                attr(0x2, b"\x00"),                  # CKA_PRIVATE
                attr(0x3, label.encode()),           # CKA_LABEL
                attr(0x102, bytes.fromhex(id_hex)),  # CKA_ID
                attr(0x101, bytes.fromhex("3000")),  # CKA_SUBJECT: an empty Name
                attr(0x11, value)]                   # CKA_VALUE
        arr = (CK_ATTRIBUTE * len(tmpl))(*tmpl)
        obj = CK_ULONG(0)
        check(lib.C_CreateObject(sess, arr, CK_ULONG(len(tmpl)), ctypes.byref(obj)),
              "C_CreateObject(%s)" % label)
    lib.C_Logout(sess)
    lib.C_CloseSession(sess)
    lib.C_Finalize(None)


# mkcertobj.py MODULE TOKEN_LABEL PIN [LABEL ID_HEX VALUE_FILE]...
main(*sys.argv[1:])
EOF

# Two certificate objects that are not certificates: a short string, and a real certificate cut
# after 100 bytes. Ids 0b and 0c belong to no key.
GARBAGE_ID=0b
TRUNC_ID=0c
printf 'hello' >"$TC_WORLD/garbage.bin"
head -c 100 "$(tc_expected valid file | sed 's/\.pem$/.der/')" >"$TC_WORLD/truncated.bin"
[ "$(stat -c %s "$TC_WORLD/truncated.bin")" -eq 100 ] || tc_die "could not cut a certificate"
if ! python3 "$TC_WORLD/mkcertobj.py" "$MODULE" "$TOKEN_LABEL" "$PIN" \
    garbage "$GARBAGE_ID" "$TC_WORLD/garbage.bin" truncated "$TRUNC_ID" "$TC_WORLD/truncated.bin" \
    >>"$TC_WORLD/harness.log" 2>&1; then
    tail -n 20 "$TC_WORLD/harness.log" >&2
    tc_die "could not write the unreadable certificate objects"
fi

# Fingerprints of the raw values, in the form tokencert prints (uppercase, colon-separated).
colon_fp() {
    "$1" <"$2" | cut -d' ' -f1 | tr a-f A-F | sed 's/../&:/g; s/:$//'
}
GARBAGE_SHA256=$(colon_fp sha256sum "$TC_WORLD/garbage.bin")
TRUNC_SHA256=$(colon_fp sha256sum "$TC_WORLD/truncated.bin")

tc_objects_snapshot "$TC_WORLD/snapshot.base"
tc_assert_contains "$(cat "$TC_WORLD/snapshot.base")" "certvalue	garbage	$GARBAGE_ID	" \
    "the garbage object is on the token"
tc_assert_contains "$(cat "$TC_WORLD/snapshot.base")" "certvalue	truncated	$TRUNC_ID	" \
    "the truncated object is on the token"

# ---------------------------------------------------------------------------------------------
# --module: missing, not a shared library, a shared library that is not a PKCS#11 module

missing=$TC_WORLD/no-such-dir/libnothing.so
tc_expect_exit 3 "$TOKENCERT" list --module "$missing"
tc_assert_contains "$TC_ERR" "$missing" "missing module: the message names the path"
tc_assert_match "$TC_ERR" "no such file" "missing module: the message says it does not exist"

tc_expect_exit 3 "$TOKENCERT" tokens --module "$missing"
tc_assert_contains "$TC_ERR" "$missing" "tokens, missing module: the message names the path"

# check speaks the monitoring convention: UNKNOWN (3), the reason in the summary on stdout.
tc_expect_exit 3 "$TOKENCERT" check --module "$missing"
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN" "check, missing module: UNKNOWN summary"
tc_assert_contains "$TC_OUT" "$missing" "check, missing module: the summary names the path"

tc_expect_exit 3 "$TOKENCERT" list --module /etc/passwd
tc_assert_contains "$TC_ERR" "/etc/passwd" "/etc/passwd as module: the message names it"
tc_assert_match "$TC_ERR" "not a (usable )?PKCS#11 module" \
    "/etc/passwd as module: the message says it is not a PKCS#11 module"

tc_expect_exit 3 "$TOKENCERT" list --module "$LIBZ"
tc_assert_contains "$TC_ERR" "$LIBZ" "libz as module: the message names it"
tc_assert_match "$TC_ERR" "not a (usable )?PKCS#11 module" \
    "libz as module: the message says it is not a PKCS#11 module"
tc_assert_match "$TC_ERR" "C_GetFunctionList" "libz as module: the message says what is missing"

tc_expect_exit 3 "$TOKENCERT" list --module "$TC_WORLD"
tc_assert_contains "$TC_ERR" "$TC_WORLD" "a directory as module: the message names it"
tc_assert_match "$TC_ERR" "not a regular file" "a directory as module: the message says why"
# A real PKCS#11 module whose C_Initialize fails (the fault module without its target).
tc_expect_exit 3 env -u TC_FAULT_TARGET "$TOKENCERT" list --module "$FM"
tc_assert_contains "$TC_ERR" "$FM" "module failing C_Initialize: the message names it"
tc_assert_match "$TC_ERR" "initiali[sz]e.*CKR_GENERAL_ERROR" \
    "module failing C_Initialize: the message says so, with the CK_RV"
unchanged "the bad --module runs above (missing, /etc/passwd, libz, a directory, failing init)"

# ---------------------------------------------------------------------------------------------
# Malformed URIs: exit 2, "malformed"/"unrecognised", and what was wrong

tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" 'http:x'
tc_assert_match "$TC_ERR" "malformed" "http:x: the message says malformed"
tc_assert_contains "$TC_ERR" "http:x" "http:x: the message names the URI"
tc_assert_match "$TC_ERR" "scheme|pkcs11:" "http:x: the message says the scheme is wrong"

tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" 'pkcs11:token=%zz'
tc_assert_match "$TC_ERR" "malformed" "token=%zz: the message says malformed"
tc_assert_contains "$TC_ERR" "%zz" "token=%zz: the message shows the bad encoding"

tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" 'pkcs11:bogus=1'
tc_assert_match "$TC_ERR" "unrecogni[sz]ed" "bogus=1: the message says unrecognised"
tc_assert_contains "$TC_ERR" "bogus" "bogus=1: the message names the unrecognised attribute"

tc_expect_exit 2 "$TOKENCERT" tokens --module "$MODULE" 'pkcs11:token=%zz'
tc_assert_match "$TC_ERR" "malformed" "tokens token=%zz: the message says malformed"

tc_expect_exit 3 "$TOKENCERT" check --module "$MODULE" 'http:x'
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*malformed" "check http:x: UNKNOWN, malformed"
unchanged "the malformed-URI runs above"

# ---------------------------------------------------------------------------------------------
# A PIN inside the URI is refused, and its value is never shown

# no_secret SECRET WHAT: SECRET is in neither stdout nor stderr of the last run.
no_secret() {
    tc_assert_not_contains "$TC_OUT" "$1" "$2: the PIN value is not on stdout"
    tc_assert_not_contains "$TC_ERR" "$1" "$2: the PIN value is not on stderr"
}

tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" 'pkcs11:token=x;pin-value=1234'
tc_assert_match "$TC_ERR" "pin-value" "pin-value: the message names pin-value"
tc_assert_match "$TC_ERR" "refused" "pin-value: the message says it is refused"
no_secret 1234 "pin-value=1234"

secret=Zq7pinvalueXw93
for uri in "pkcs11:token=$TOKEN_LABEL;pin-value=$secret" \
    "pkcs11:token=$TOKEN_LABEL?pin-value=$secret" \
    "pkcs11:token=%zz;pin-value=$secret"; do
    tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" "$uri"
    tc_assert_match "$TC_ERR" "pin-value|malformed" "$uri: refused with a reason"
    no_secret "$secret" "$uri"
done
tc_expect_exit 2 "$TOKENCERT" tokens --module "$MODULE" "pkcs11:token=x;pin-value=$secret"
no_secret "$secret" "tokens pin-value"
tc_expect_exit 3 "$TOKENCERT" check --module "$MODULE" "pkcs11:token=x;pin-value=$secret"
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*pin-value" "check pin-value: UNKNOWN, names pin-value"
no_secret "$secret" "check pin-value"
unchanged "the URIs carrying pin-value above"

# ---------------------------------------------------------------------------------------------
# URIs that match nothing

tc_expect_exit 4 "$TOKENCERT" list --module "$MODULE" 'pkcs11:object=nope'
tc_assert_match "$TC_ERR" "no object.*match" "object=nope: the message says no object matches"

tc_expect_exit 4 "$TOKENCERT" list --module "$MODULE" "pkcs11:token=$TOKEN_LABEL;id=%7F%7E"
tc_assert_match "$TC_ERR" "no object.*match" "id=%7F%7E: the message says no object matches"

tc_expect_exit 5 "$TOKENCERT" list --module "$MODULE" 'pkcs11:token=nope'
tc_assert_match "$TC_ERR" "no token.*present|not present" "token=nope: the message says no such token"

tc_expect_exit 5 "$TOKENCERT" tokens --module "$MODULE" 'pkcs11:token=nope'
tc_assert_match "$TC_ERR" "no token.*present|not present" "tokens token=nope: no such token"

tc_expect_exit 3 "$TOKENCERT" check --module "$MODULE" 'pkcs11:object=nope'
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*(no object|nothing matched)" \
    "check object=nope: UNKNOWN, nothing matched"
unchanged "the URIs matching nothing above"

# ---------------------------------------------------------------------------------------------
# The token is absent (the fault module hides it)

export TC_FAULT_TARGET=$MODULE
tc_expect_exit 5 env TC_FAULT_TOKEN_ABSENT=1 "$TOKENCERT" list --module "$FM" \
    "pkcs11:token=$TOKEN_LABEL"
tc_assert_match "$TC_ERR" "(no token.*|not )present" "absent token: the message says it is not present"

tc_expect_exit 5 env TC_FAULT_TOKEN_ABSENT=1 "$TOKENCERT" tokens --module "$FM" \
    "pkcs11:token=$TOKEN_LABEL"
tc_assert_match "$TC_ERR" "(no token.*|not )present" \
    "tokens, absent token: the message says it is not present"

tc_expect_exit 3 env TC_FAULT_TOKEN_ABSENT=1 "$TOKENCERT" check --module "$FM" \
    "pkcs11:token=$TOKEN_LABEL"
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*not present" \
    "check, absent token: UNKNOWN, says it is not present"
unchanged "the runs with the token absent above"

# ---------------------------------------------------------------------------------------------
# The token is removed mid-run: CKR_DEVICE_REMOVED at every C_FindObjectsInit and every
# C_GetAttributeValue a listing makes (counted first through the fault module).

# fault_points FUNC ARGS...: how many calls of FUNC `tokencert ARGS...` makes.
fault_points() {
    local f=$1 counts=$TC_WORLD/counts
    shift
    rm -f "$counts"
    TC_FAULT_FUNC=$f TC_FAULT_COUNT_FILE=$counts "$TOKENCERT" "$@" >/dev/null 2>&1 ||
        tc_die "counting $f: tokencert $* failed"
    awk '$1 == "total" { print $2 }' "$counts"
}

for func in C_FindObjectsInit C_GetAttributeValue; do
    total=$(fault_points "$func" list --module "$FM")
    tc_assert_ne 0 "${total:-0}" "list makes at least one $func call (got ${total:-none})"
    for ((at = 1; at <= ${total:-0}; at++)); do
        tc_expect_exit 5 env TC_FAULT_FUNC="$func" TC_FAULT_AT="$at" \
            TC_FAULT_RV=CKR_DEVICE_REMOVED "$TOKENCERT" list --module "$FM"
        tc_assert_match "$TC_ERR" "removed|not present" \
            "$func #$at of $total removed: the message says the token was removed"
    done
done

# check turns a removal into UNKNOWN with the reason.
tc_expect_exit 3 env TC_FAULT_FUNC=C_GetAttributeValue TC_FAULT_AT=1 \
    TC_FAULT_RV=CKR_DEVICE_REMOVED "$TOKENCERT" check --module "$FM"
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN.*(removed|not present)" \
    "check, token removed: UNKNOWN, says the token was removed"
unchanged "the runs with the token removed mid-run above"
unset TC_FAULT_TARGET

# ---------------------------------------------------------------------------------------------
# Certificate objects whose value is not a certificate: listed as unreadable, the rest intact

tc_expect_exit 0 "$TOKENCERT" list --module "$MODULE"
tc_assert_match "$TC_OUT" "unreadable +label 'garbage' id $GARBAGE_ID: [^ ]" \
    "list: garbage shown as unreadable with label, id and a reason"
tc_assert_match "$TC_OUT" "unreadable +label 'truncated' id $TRUNC_ID: [^ ]" \
    "list: truncated shown as unreadable with label, id and a reason"
tc_assert_contains "$TC_OUT" "$GARBAGE_SHA256" "list: garbage identified by its SHA-256"
tc_assert_contains "$TC_OUT" "$TRUNC_SHA256" "list: truncated identified by its SHA-256"
# Every real certificate is still listed, fully decoded.
while IFS=$'\t' read -r label _ serial _ _ _ sha256 _; do
    case "$label" in '#'*) continue ;; esac
    tc_assert_contains "$TC_OUT" "$sha256" "list: '$label' (serial $serial) still listed"
done <"$TC_WORLD/expected.tsv"

tc_expect_exit 0 "$TOKENCERT" list --module "$MODULE" --json
cp "$TC_OUT_FILE" "$TC_WORLD/list.json"
unreadable='[c for t in j["tokens"] for cr in t["credentials"] for c in cr["certificates"]
             if c["status"] == "unreadable"]'
want=$(printf '[["garbage","%s","%s"],["truncated","%s","%s"]]' \
    "$GARBAGE_ID" "$GARBAGE_SHA256" "$TRUNC_ID" "$TRUNC_SHA256")
tc_assert_eq "$want" \
    "$(tc_json "$TC_WORLD/list.json" "sorted([c['label'], c['id'], c['sha256']]
                                             for c in $unreadable)")" \
    "list --json: exactly garbage and truncated are unreadable, with their ids and SHA-256"
tc_assert_eq true \
    "$(tc_json "$TC_WORLD/list.json" "all(isinstance(c['error'], str) and c['error'] != '' and
        c['subject'] is None and c['not_after'] is None and c['days_left'] is None
        for c in $unreadable)")" \
    "list --json: unreadable certificates have an error and null decoded fields"
tc_assert_eq "$(grep -vc '^#' "$TC_WORLD/expected.tsv")" \
    "$(tc_json "$TC_WORLD/list.json" "len([c for t in j['tokens'] for cr in t['credentials']
        for c in cr['certificates'] if c['status'] != 'unreadable' and c['error'] is None])")" \
    "list --json: every real certificate is decoded, without error"

tc_expect_exit 3 "$TOKENCERT" check --module "$MODULE" 'pkcs11:object=garbage'
tc_assert_match "$TC_OUT" "^tokencert UNKNOWN" "check object=garbage: UNKNOWN"
tc_assert_match "$TC_OUT" "UNKNOWN +$TOKEN_LABEL 'garbage'.*unreadable" \
    "check object=garbage: the credential is UNKNOWN because unreadable"

tc_expect_exit 3 "$TOKENCERT" check --module "$MODULE" --json 'pkcs11:object=truncated'
cp "$TC_OUT_FILE" "$TC_WORLD/check.json"
tc_assert_eq '["UNKNOWN",3,[["truncated","UNKNOWN"]]]' \
    "$(tc_json "$TC_WORLD/check.json" '[j["status"], j["exit_code"],
        [[c["credential"], c["state"]] for c in j["credentials"]]]')" \
    "check --json object=truncated: UNKNOWN, exit_code 3, the credential UNKNOWN"

# The whole token: the expired credential makes it CRITICAL; the unreadable ones are UNKNOWN lines.
tc_expect_exit 2 "$TOKENCERT" check --module "$MODULE"
tc_assert_match "$TC_OUT" "UNKNOWN +$TOKEN_LABEL 'garbage'" "check: garbage reported UNKNOWN"
tc_assert_match "$TC_OUT" "UNKNOWN +$TOKEN_LABEL 'truncated'" "check: truncated reported UNKNOWN"
unchanged "list and check with unreadable certificates"

# ---------------------------------------------------------------------------------------------
# Command lines

for cmd in tokens list; do
    tc_expect_exit 2 "$TOKENCERT" "$cmd" --module "$MODULE" --no-such-option
    tc_assert_contains "$TC_ERR" "Try 'tokencert $cmd --help'" "$cmd: unknown option points to help"
    tc_assert_contains "$TC_ERR" "no-such-option" "$cmd: the message names the option"
done
tc_expect_exit 3 "$TOKENCERT" check --module "$MODULE" --no-such-option
tc_assert_contains "$TC_ERR" "Try 'tokencert check --help'" "check: unknown option points to help"

tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" 'pkcs11:' 'pkcs11:'
tc_assert_match "$TC_ERR" "one URI" "list with two URIs: the message says one URI"
tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" --json --timeline
tc_assert_match "$TC_ERR" "--json.*--timeline" "list --json --timeline: the message names both"
tc_expect_exit 2 "$TOKENCERT" list --module "$MODULE" --expiring 30x
tc_assert_contains "$TC_ERR" "30x" "list --expiring 30x: the message names the value"
tc_expect_exit 3 "$TOKENCERT" check --module "$MODULE" --warn 7d --critical 30d
tc_assert_match "$TC_ERR" "--critical.*--warn" "check --critical > --warn: the message says so"

tc_expect_exit 2 "$TOKENCERT" frobnicate
tc_assert_contains "$TC_ERR" "unknown command 'frobnicate'" "unknown command named"
tc_assert_contains "$TC_ERR" "Try 'tokencert --help'" "unknown command points to help"
tc_expect_exit 2 "$TOKENCERT"
unchanged "bad command lines"

# --help of every command is its man page: the NAME line and the first SYNOPSIS line, as the
# Markdown source has them (whitespace folded: the help text is wrapped to 100 columns).
fold_ws() {
    tr -s ' \t\n' '   ' <<<"$1"
}
for page in tokencert tokencert-tokens tokencert-list tokencert-check; do
    md=$TC_SOURCE_DIR/docs/man/$page.1.md
    name_line=$(awk '/^# NAME/ { f = 1; next } f && NF { print; exit }' "$md")
    synopsis=$(awk '/^# SYNOPSIS/ { f = 1; next } f && NF { sub(/^ +/, ""); print; exit }' "$md")
    if [ -z "$name_line" ] || [ -z "$synopsis" ]; then
        tc_die "cannot read NAME/SYNOPSIS from $md"
    fi
    if [ "$page" = tokencert ]; then
        args=(--help)
    else
        args=("${page#tokencert-}" --help)
    fi
    tc_expect_exit 0 "$TOKENCERT" "${args[@]}"
    tc_assert_contains "$(fold_ws "$TC_OUT")" "$(fold_ws "$name_line")" "${args[*]}: NAME"
    tc_assert_contains "$(fold_ws "$TC_OUT")" "$(fold_ws "$synopsis")" "${args[*]}: SYNOPSIS"
    tc_assert_match "$TC_OUT" "^EXIT STATUS" "${args[*]}: EXIT STATUS section"
done
tc_expect_exit 0 "$TOKENCERT" list -h
tc_assert_contains "$TC_OUT" "tokencert-list - list the credentials" "list -h: the man page"

version=$(sed -n 's/^project(tokencert VERSION \([0-9.]*\).*/\1/p' "$TC_SOURCE_DIR/CMakeLists.txt")
[ -n "$version" ] || tc_die "cannot read the project version from CMakeLists.txt"
tc_expect_exit 0 "$TOKENCERT" --version
tc_assert_eq "tokencert $version" "$TC_OUT" "--version prints the project version"

# A PIN typed on the command line is refused without being repeated: --pin is not taken as an
# abbreviation of --pin-source, and a source that is no source is not echoed either.
for cmd in list keygen import enroll csr delete; do
    tc_expect_exit 2 "$TOKENCERT" $cmd --module "$MODULE" --pin 97531 "pkcs11:token=$TOKEN_LABEL"
    tc_assert_contains "$TC_ERR" "a PIN is never taken from the command line" "$cmd --pin refused"
    tc_assert_not_contains "$TC_OUT$TC_ERR" "97531" "$cmd --pin: the PIN is not repeated"
done
tc_expect_exit 2 "$TOKENCERT" import --module "$MODULE" --password 97531 \
    "pkcs11:token=$TOKEN_LABEL" "$TC_WORLD/none.p12"
tc_assert_contains "$TC_ERR" "a password is never taken from the command line" "import --password refused"
tc_assert_not_contains "$TC_OUT$TC_ERR" "97531" "import --password: the password is not repeated"
tc_expect_exit 11 "$TOKENCERT" list --module "$MODULE" --pin-source 97531 --login \
    "pkcs11:token=$TOKEN_LABEL"
tc_assert_contains "$TC_ERR" "unknown pin source" "a PIN given as pin source: refused"
tc_assert_not_contains "$TC_OUT$TC_ERR" "97531" "a PIN given as pin source is not repeated"

tc_finish
