#!/usr/bin/env bash
# list --json, the table and the timeline, cross-checked field by field against what openssl
# (expected.tsv) and pkcs11-tool say about the same objects: certificate fields, status and days
# left, credential grouping, the URIs tokencert prints, what login reveals about private keys,
# pairing by public key when CKA_IDs differ, and that listing changes nothing on the token.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_world_init
tc_fixture_standard
tc_objects_snapshot "$TC_WORLD/before"

W=$TC_WORLD
LIST=("$TOKENCERT" list --module "$MODULE")


# flatten JSON_FILE: one tab-separated line per certificate (empty values as "-"):
#  0 token  1 credential  2 kind  3 credential id  4 label  5 id  6 serial  7 not_before
#  8 not_after  9 sha1  10 sha256  11 subject  12 issuer  13 key_type  14 key_bits  15 is_ca
#  16 status  17 days_left  18 index in credential  19 certificates in credential  20 uri
flatten() {
    python3 - "$1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
def s(v):
    v = v if isinstance(v, str) else json.dumps(v)
    return v.replace("\t", " ") or "-"
for t in j["tokens"]:
    for c in t["credentials"]:
        for i, x in enumerate(c["certificates"]):
            print("\t".join(s(v) for v in [
                t["label"], c["name"], c["kind"], c["id"], x["label"], x["id"], x["serial"],
                x["not_before"], x["not_after"], x["sha1"], x["sha256"], x["subject"],
                x["issuer"], x["key_type"], x["key_bits"], x["is_ca"], x["status"],
                x["days_left"], i, len(c["certificates"]), x["uri"]]))
EOF
}

# The status the contract gives a certificate with these dates, now, with the 30-day default.
expected_status() {
    local nb na now
    nb=$(date -u -d "$1" +%s)
    na=$(date -u -d "$2" +%s)
    now=$(date -u +%s)
    if [ "$now" -lt "$nb" ]; then
        echo not-yet-valid
    elif [ "$now" -ge "$na" ]; then
        echo expired
    elif [ $((na - now)) -lt $((30 * 86400)) ]; then
        echo expiring
    else
        echo valid
    fi
}

# Python expression: the credentials named NAME (a list, normally of one).
creds() {
    printf "[c for t in j['tokens'] for c in t['credentials'] if c['name'] == '%s']" "$1"
}

# --- list --json, not logged in: every certificate field against openssl ----------------------
tc_expect_exit 0 "${LIST[@]}" --json
cp "$TC_OUT_FILE" "$W/list.json"
flatten "$W/list.json" >"$W/list.tsv" || tc_fail "list --json is not the documented JSON"

n_expected=$(grep -vc '^#' "$W/expected.tsv")
tc_assert_eq 8 "$n_expected" "the standard fixture has 8 certificates"
tc_assert_eq "$n_expected" "$(wc -l <"$W/list.tsv")" "list --json shows every certificate once"

while IFS=$'\t' read -r label id serial nb na sha1 sha256 subject issuer key_type key_bits is_ca \
    n _file; do
    what="$label #$n"
    rows=$(awk -F'\t' -v l="$label" -v s="$serial" '$5 == l && $7 == s' "$W/list.tsv")
    if [ -z "$rows" ] || [ "$(printf '%s\n' "$rows" | wc -l)" -ne 1 ]; then
        tc_fail "$what: exactly one certificate labelled '$label' with serial $serial listed"
        continue
    fi
    tc_pass "$what: listed once with serial $serial"
    IFS=$'\t' read -r -a got <<<"$rows"
    tc_assert_eq "$id" "${got[5]}" "$what: id"
    tc_assert_eq "$subject" "${got[11]}" "$what: subject"
    tc_assert_eq "$issuer" "${got[12]}" "$what: issuer"
    tc_assert_eq "$nb" "${got[7]}" "$what: not_before"
    tc_assert_eq "$na" "${got[8]}" "$what: not_after"
    tc_assert_eq "$(tc_days_left "$na")" "${got[17]}" "$what: days_left"
    tc_assert_eq "$(expected_status "$nb" "$na")" "${got[16]}" "$what: status"
    tc_assert_eq "$sha1" "${got[9]}" "$what: sha1"
    tc_assert_eq "$sha256" "${got[10]}" "$what: sha256"
    tc_assert_eq "$key_type" "${got[13]}" "$what: key_type"
    tc_assert_eq "$key_bits" "${got[14]}" "$what: key_bits"
    tc_assert_eq "$is_ca" "${got[15]}" "$what: is_ca"
    tc_assert_eq "$label" "${got[1]}" "$what: listed in the credential named '$label'"
done < <(grep -v '^#' "$W/expected.tsv")

# --- credential grouping and keys -------------------------------------------------------------
exprs=(
    'j["tokens"][0]["logged_in"]'
    '" | ".join(j["tokens"][0]["notes"])'
    'sorted(c["name"] for t in j["tokens"] for c in t["credentials"])'
    "[(c['kind'], [x['serial'] for x in c['certificates']]) for c in $(creds renewed)]"
    "[(c['kind'], c['certificates'], c['key']['id']) for c in $(creds lonely-key)]"
    "[(c['kind'], c['key']) for c in $(creds orphan-cert)]"
    "[(c['kind'], c['key']) for c in $(creds 'Test CA')]"
)
mapfile -t keyrows < <(grep -v '^#' "$W/expected-keys.tsv")
for row in "${keyrows[@]}"; do
    IFS=$'\t' read -r label _ <<<"$row"
    exprs+=("[[c[k] for k in ['kind', 'id']] + [c['key'][k] for k in ['label', 'id', 'type',
        'bits', 'public_key_seen']] for c in $(creds "$label")]")
done
tc_jexprs "$W/list.json" "${exprs[@]}"
tc_assert_eq false "${R[0]-}" "not logged in without --login"
tc_assert_contains "${R[1]-}" "not logged in" "the listing notes that it did not log in"
tc_assert_eq '["Test CA","expired","expiring","future","lonely-key","orphan-cert","renewed","valid"]' \
    "${R[2]-}" "each label is exactly one credential"
tc_assert_eq "[[\"credential\",[\"$(tc_expected renewed serial 1)\",\"$(tc_expected renewed serial 2)\"]]]" \
    "${R[3]-}" "renewed: one credential with both certificates, the newest (latest not_after) last"
tc_assert_eq "[[\"key-only\",[],\"$TC_FIX_ID_LONELY\"]]" "${R[4]-}" \
    "lonely-key: key-only, its key and no certificate"
tc_assert_eq '[["certificate-only",null]]' "${R[5]-}" "orphan-cert: certificate-only, no key"
tc_assert_eq '[["authority",null]]' "${R[6]-}" "Test CA: authority, no key"
i=7
for row in "${keyrows[@]}"; do
    IFS=$'\t' read -r label id key_type key_bits <<<"$row"
    kind=credential
    if [ "$label" = lonely-key ]; then
        kind="key-only"
    fi
    tc_assert_eq "[[\"$kind\",\"$id\",\"$label\",\"$id\",\"$key_type\",$key_bits,true]]" \
        "${R[$i]-}" "$label: kind, id, and its key's label, id, type and bits as generated"
    i=$((i + 1))
done

# --- each certificate's URI selects exactly its credential ------------------------------------
k=0
while IFS=$'\t' read -r -a row; do
    k=$((k + 1))
    tc_expect_exit 0 "${LIST[@]}" "${row[20]}" --json
    cp "$TC_OUT_FILE" "$W/uri-$k.json"
    printf '%s\t%s\t%s\n' "$W/uri-$k.json" "${row[1]}" "${row[10]}" >>"$W/uri-checks"
done <"$W/list.tsv"
# Per URI: "<names of the credentials selected>|<is the certificate among them>".
python3 - "$W/uri-checks" >"$W/uri-results" <<'EOF' || true
import json, sys
for line in open(sys.argv[1]):
    f, name, sha = line.rstrip("\n").split("\t")
    try:
        j = json.load(open(f))
        cs = [c for t in j["tokens"] for c in t["credentials"]]
        print("%s\t%s|%s" % (name, ",".join(c["name"] for c in cs),
                             any(x["sha256"] == sha for c in cs for x in c["certificates"])))
    except Exception as ex:
        print("%s\terror: %s" % (name, ex))
EOF
while IFS=$'\t' read -r name result; do
    tc_assert_eq "$name|True" "$result" "the URI of a '$name' certificate selects exactly its credential"
done <"$W/uri-results"
tc_assert_eq "$n_expected" "$(wc -l <"$W/uri-results")" "every certificate's URI was checked"

# --- logged in: private keys, cross-checked with pkcs11-tool ----------------------------------
# pkcs11-tool's view of each private key: "label<TAB>sensitive<TAB>extractable" (true/false).
tc_p11_login --list-objects >"$W/p11-objects" 2>"$W/p11-objects.err" ||
    tc_die "pkcs11-tool --list-objects --login failed"
awk '
    /^[^ \t]/ { inpriv = ($0 ~ /^Private Key Object/); label = ""; next }
    inpriv && /^[ \t]+label:/ { label = $0; sub(/^[ \t]+label:[ \t]*/, "", label) }
    inpriv && /^[ \t]+Access:/ {
        acc = $0; sub(/^[ \t]+Access:[ \t]*/, "", acc)
        n = split(acc, parts, /, */); s = "false"; e = "false"
        for (i = 1; i <= n; i++) {
            if (parts[i] == "sensitive") s = "true"
            if (parts[i] == "extractable") e = "true"
        }
        print label "\t" s "\t" e
    }' "$W/p11-objects" | LC_ALL=C sort >"$W/p11-privkeys"
tc_assert_eq "$(grep -v '^#' "$W/expected-keys.tsv" | cut -f1 | LC_ALL=C sort)" \
    "$(cut -f1 "$W/p11-privkeys")" "pkcs11-tool sees one private key per generated key pair"
tc_assert_eq "true false" "$(awk -F'\t' '$1 == "valid" { print $2, $3 }' "$W/p11-privkeys")" \
    "pkcs11-tool: the 'valid' private key is sensitive and not extractable"

tc_expect_exit 0 "${LIST[@]}" --login --pin-source env:PIN --json
cp "$TC_OUT_FILE" "$W/login.json"
exprs=(
    'j["tokens"][0]["logged_in"]'
    '" | ".join(j["tokens"][0]["notes"])'
    'len([x for t in j["tokens"] for c in t["credentials"] for x in c["certificates"]])'
)
mapfile -t privrows <"$W/p11-privkeys"
for row in "${privrows[@]}"; do
    IFS=$'\t' read -r label _ <<<"$row"
    exprs+=("[[c['key'][k] for k in ['private_key_seen', 'sensitive', 'extractable']]
        for c in $(creds "$label")]")
done
tc_jexprs "$W/login.json" "${exprs[@]}"
tc_assert_eq true "${R[0]-}" "logged_in with --login --pin-source env:PIN"
tc_assert_not_contains "${R[1]-error}" "not logged in" "no 'not logged in' note once logged in"
tc_assert_eq "$n_expected" "${R[2]-}" "logged in, every certificate is still listed once"
i=3
for row in "${privrows[@]}"; do
    IFS=$'\t' read -r label sens extr <<<"$row"
    tc_assert_eq "[[true,$sens,$extr]]" "${R[$i]-}" \
        "$label: private key seen; sensitive and extractable as pkcs11-tool reports them"
    i=$((i + 1))
done

# --- the human table --------------------------------------------------------------------------
tc_expect_exit 0 "${LIST[@]}"
table=$TC_OUT
tc_assert_contains "$table" "Token '$TOKEN_LABEL'" "the table has the token header"
tc_assert_contains "$table" "note: not logged in" "table: the not-logged-in note"
while IFS=$'\t' read -r label _id serial _nb _na sha1 sha256 _rest; do
    tc_assert_contains "$table" "$sha1" "table: SHA-1 thumbprint of $label ($serial)"
    tc_assert_contains "$table" "$sha256" "table: SHA-256 fingerprint of $label ($serial)"
done < <(grep -v '^#' "$W/expected.tsv")

# --- the timeline -----------------------------------------------------------------------------
tc_expect_exit 0 "${LIST[@]}" --timeline
cp "$TC_OUT_FILE" "$W/timeline.txt"
# Bars: "  NAME(26) BAR STATUS DAYS d". The "| today DATE" line puts '|' above today's column;
# every bar must mark that column ('|' or '#', or one of its ends sits on it).
python3 - "$W/timeline.txt" >"$W/timeline.parsed" <<'EOF' || true
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
bar = re.compile(r"^  .{26} ([ =#|\[\]<>]+) (valid|expiring|expired|not-yet-valid) (-?\d+) d$")
today = [l for l in lines if re.search(r"\| today \d{4}-\d{2}-\d{2}$", l)]
bars = [(l, bar.match(l)) for l in lines if bar.match(l)]
col = today[0].index("|") if len(today) == 1 else -1
print("today_lines\t%d" % len(today))
print("today_date\t%s" % (today[0][-10:] if today else "-"))
print("bars\t%d" % len(bars))
print("unmarked\t%d" % sum(1 for l, m in bars if col < 0 or len(l) <= col or l[col] not in "|#[]<>"))
print("states\t%s" % " ".join(sorted("%s:%s" % (m.group(2), m.group(3)) for l, m in bars)))
# The certificates of one credential are stacked: the name only on the first bar.
names = [l[2:28].rstrip() for l, m in bars]
print("stacked\t%s" % " ".join(n or "+" for n in names))
EOF
tl() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$W/timeline.parsed"; }
tc_assert_eq 1 "$(tl today_lines)" "timeline: one 'today' marker line"
tc_assert_eq "$(date -u +%F)" "$(tl today_date)" "timeline: the today marker shows today's date"
tc_assert_eq "$n_expected" "$(tl bars)" "timeline: one bar line per certificate"
tc_assert_eq 0 "$(tl unmarked)" "timeline: every bar marks today's column"
states=()
while IFS=$'\t' read -r _l _i _s nb na _rest; do
    states+=("$(expected_status "$nb" "$na"):$(tc_days_left "$na")")
done < <(grep -v '^#' "$W/expected.tsv")
tc_assert_eq "$(printf '%s\n' "${states[@]}" | LC_ALL=C sort | paste -sd' ')" \
    "$(tl states | tr ' ' '\n' | LC_ALL=C sort | paste -sd' ')" \
    "timeline: each bar's status and days left"
tc_assert_contains " $(tl stacked) " " renewed + " \
    "timeline: renewed's two certificates stacked under one name"
tc_assert_eq 1 "$(tl stacked | tr ' ' '\n' | grep -c '^+$' || true)" \
    "timeline: only renewed has a second bar"

# --- listing changed nothing ------------------------------------------------------------------
tc_objects_snapshot "$W/after"
tc_assert_files_eq "$W/before" "$W/after" "list (with and without login) leaves the token unchanged"

# --- pairing by public key when the certificate's CKA_ID differs from the key's ---------------
# Key pair with id 0a; a certificate for its public key written with id 0b and another label.
# Same for RSA (1a / 1b), whose pairing goes through the modulus instead of the EC point.
tc_fixture_keypair crossid 0a EC:prime256v1
tc_fixture_issue crossid-cert 0b 0x10B1 $((-1 * TC_DAY)) $((200 * TC_DAY + 12 * TC_HOUR)) \
    "$TC_FIXTURE/keys/0a.pub.pem"
tc_fixture_keypair crossid-rsa 1a rsa:2048
tc_fixture_issue crossid-rsa-cert 1b 0x10B2 $((-1 * TC_DAY)) $((200 * TC_DAY + 12 * TC_HOUR)) \
    "$TC_FIXTURE/keys/1a.pub.pem"
for mode in login no-login; do
    args=()
    [ "$mode" = no-login ] || args=(--login --pin-source env:PIN)
    tc_expect_exit 0 "${LIST[@]}" "${args[@]}" --json
    cp "$TC_OUT_FILE" "$W/cross-$mode.json"
    exprs=()
    for pair in "crossid 0b" "crossid-rsa 1b"; do
        read -r key cid <<<"$pair"
        exprs+=("[[c['kind'], c['id']] + [[x['label'], x['id'], x['sha256']]
            for x in c['certificates']] for c in $(creds "$key")]"
            "len([c for t in j['tokens'] for c in t['credentials'] if c['kind'] != 'credential'
                for x in c['certificates'] if x['id'] == '$cid'])")
    done
    tc_jexprs "$W/cross-$mode.json" "${exprs[@]}"
    tc_assert_eq "[[\"credential\",\"0a\",[\"crossid-cert\",\"0b\",\"$(tc_expected crossid-cert sha256)\"]]]" \
        "${R[0]-}" "$mode: EC certificate with id 0b is listed in the credential of key 0a"
    tc_assert_eq 0 "${R[1]-}" "$mode: certificate 0b is not also listed as without a key"
    tc_assert_eq "[[\"credential\",\"1a\",[\"crossid-rsa-cert\",\"1b\",\"$(tc_expected crossid-rsa-cert sha256)\"]]]" \
        "${R[2]-}" "$mode: RSA certificate with id 1b is listed in the credential of key 1a"
    tc_assert_eq 0 "${R[3]-}" "$mode: certificate 1b is not also listed as without a key"
done

tc_finish
