#!/usr/bin/env bash
# check: monitoring exit codes that follow the certificates' dates (0 OK, 1 WARNING, 2 CRITICAL,
# 3 UNKNOWN), thresholds, a renewed credential judged by its successor, the summary line, --json,
# and the node_exporter textfile written with --metrics (values cross-checked with openssl's dates).
# Last, the same renewal made by the lifecycle: list --timeline marks an expired predecessor
# "superseded" until prune.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_world_init
tc_fixture_standard

W=$TC_WORLD
CHECK=("$TOKENCERT" check --module "$MODULE")


first_line() { printf '%s\n' "$1" | sed -n 1p; }

# check_case CODE WORD ARGS...: check ARGS exits CODE and its summary starts "tokencert WORD".
check_case() {
    local code=$1 word=$2
    shift 2
    local want="tokencert $word - " line
    tc_expect_exit "$code" "${CHECK[@]}" "$@"
    line=$(first_line "$TC_OUT")
    tc_assert_eq "$want" "${line:0:${#want}}" "summary line of 'check $*' starts '$want'"
}

# --- exit codes follow the dates --------------------------------------------------------------
# expired (-30 d) and future (not valid for 30 more days) are CRITICAL; expiring (10.5 d) WARNING.
check_case 2 CRITICAL
default_out=$TC_OUT
tc_assert_contains "$default_out" "CRITICAL $TOKEN_LABEL 'expired'" "the expired credential is listed as CRITICAL"
tc_assert_contains "$default_out" "CRITICAL $TOKEN_LABEL 'future'" \
    "the not-yet-valid credential is listed as CRITICAL"
tc_assert_contains "$default_out" "WARNING  $TOKEN_LABEL 'expiring'" \
    "the expiring credential is listed as WARNING"
tc_assert_not_contains "$default_out" "'renewed'" "renewed (successor installed) is not listed"
tc_assert_not_contains "$default_out" "'valid'" "valid is not listed"

check_case 0 OK "pkcs11:object=valid"
check_case 1 WARNING "pkcs11:object=expiring"
check_case 0 OK "pkcs11:object=expiring" --warn 5d --critical 1d
check_case 1 WARNING "pkcs11:object=expiring" --warn 11d --critical 10d
check_case 2 CRITICAL "pkcs11:object=expiring" --warn 12d --critical 11d
# Thresholds are durations, not whole days: 'expiring' has 252 h left.
check_case 1 WARNING "pkcs11:object=expiring" --warn 253h --critical 1h
check_case 0 OK "pkcs11:object=expiring" --warn 251h --critical 1h
check_case 2 CRITICAL "pkcs11:object=expiring" --warn 2w --critical 253h
check_case 0 OK "pkcs11:object=renewed"
check_case 2 CRITICAL "pkcs11:object=expired"
check_case 2 CRITICAL "pkcs11:object=future"
check_case 0 OK "pkcs11:object=orphan-cert"
# With a 6-day critical threshold the old renewed certificate (5.5 days) would be CRITICAL alone.
check_case 0 OK "pkcs11:object=renewed" --warn 7d --critical 6d

# --- usage errors and failures are UNKNOWN ----------------------------------------------------
tc_expect_exit 3 "${CHECK[@]}" --warn 5d --critical 10d
tc_assert_contains "$TC_ERR" "--critical" "--critical longer than --warn is refused, naming it"
tc_expect_exit 3 "${CHECK[@]}" --warn soon
tc_assert_contains "$TC_ERR" "--warn" "a malformed --warn is refused, naming it"
tc_expect_exit 3 "${CHECK[@]}" --warn 5x
tc_expect_exit 3 "${CHECK[@]}" --critical ""
tc_expect_exit 3 "${CHECK[@]}" --no-such-option
# Nothing to judge (a key without certificate, an authority) or nothing matched: UNKNOWN.
check_case 3 UNKNOWN "pkcs11:object=lonely-key"
check_case 3 UNKNOWN "pkcs11:type=cert;object=Test%20CA"
check_case 3 UNKNOWN "pkcs11:object=no-such-object"
check_case 3 UNKNOWN "pkcs11:token=no-such-token"
check_case 3 UNKNOWN --module "$W/no-such-module.so"
tc_assert_contains "$TC_OUT" "UNKNOWN" "a missing module: UNKNOWN on stdout"
tc_assert_contains "$TC_OUT" "no-such-module.so" "a missing module: the summary names it"

# --- --json -----------------------------------------------------------------------------------
# json_case CODE STATUS FILE ARGS...: check --json ARGS exits CODE; FILE keeps the output.
json_case() {
    local code=$1 file=$2
    shift 2
    tc_expect_exit "$code" "${CHECK[@]}" --json "$@"
    cp "$TC_OUT_FILE" "$file"
}
states="sorted([c['credential'], c['state']] for c in j['credentials'])"
json_case 2 "$W/c-default.json"
tc_jexprs "$W/c-default.json" "[j['status'], j['exit_code']]" "j['summary'][:19]" "j['error']" "$states" \
    "[j['warn_seconds'], j['critical_seconds']]"
tc_assert_eq '["CRITICAL",2]' "${R[0]-}" "--json: status and exit_code match the exit code (2)"
tc_assert_eq "tokencert CRITICAL " "${R[1]-}" "--json: the summary"
tc_assert_eq "null" "${R[2]-}" "--json: no error when the tokens were read"
# Keys without a certificate and authorities are not judged.
tc_assert_eq '[["expired","CRITICAL"],["expiring","WARNING"],["future","CRITICAL"],["orphan-cert","OK"],["renewed","OK"],["valid","OK"]]' \
    "${R[3]-}" "--json: each judged credential's state (no key-only, no authority)"
tc_assert_eq "[$((30 * 86400)),$((7 * 86400))]" "${R[4]-}" "--json: default thresholds 30d/7d"

json_case 1 "$W/c-expiring.json" "pkcs11:object=expiring"
tc_jexprs "$W/c-expiring.json" "[j['status'], j['exit_code']]" \
    "[[c['state'], c['not_after'], c['days_left'], c['sha256']] for c in j['credentials']]"
tc_assert_eq '["WARNING",1]' "${R[0]-}" "--json: status and exit_code match the exit code (1)"
tc_assert_eq "$(printf '[["WARNING","%s",%s,"%s"]]' "$(tc_expected expiring not_after)" \
    "$(tc_days_left "$(tc_expected expiring not_after)")" "$(tc_expected expiring sha256)")" \
    "${R[1]-}" "--json: expiring's state, not_after, days_left and certificate"

json_case 0 "$W/c-renewed.json" "pkcs11:object=renewed"
tc_jexprs "$W/c-renewed.json" "[j['status'], j['exit_code']]" \
    "[[c['state'], c['certificates'], c['not_after'], c['days_left'], c['sha256']]
        for c in j['credentials']]"
tc_assert_eq '["OK",0]' "${R[0]-}" "--json: status and exit_code match the exit code (0)"
tc_assert_eq "$(printf '[["OK",2,"%s",%s,"%s"]]' "$(tc_expected renewed not_after 2)" \
    "$(tc_days_left "$(tc_expected renewed not_after 2)")" "$(tc_expected renewed sha256 2)")" \
    "${R[1]-}" "--json: renewed is judged by its successor (the certificate lasting longest)"

json_case 3 "$W/c-nomodule.json" --module "$W/no-such-module.so"
tc_jexprs "$W/c-nomodule.json" "[j['status'], j['exit_code']]" "j['error'] is not None"
tc_assert_eq '["UNKNOWN",3]' "${R[0]-}" "--json: a missing module is UNKNOWN, exit_code 3"
tc_assert_eq true "${R[1]-}" "--json: a missing module sets error"

# --- --metrics --------------------------------------------------------------------------------
M=$W/metrics
mkdir -p "$M"
printf 'stale content from an earlier run\n' >"$M/tc.prom"
tc_expect_exit 2 "${CHECK[@]}" --metrics "$M/tc.prom"
rc=$TC_RC
tc_assert_eq "tc.prom" "$(ls -A "$M")" "--metrics: only the metrics file is left (no temporary file)"
prom=$(cat "$M/tc.prom")
tc_assert_not_contains "$prom" "stale content" "--metrics: the old file was replaced"
valid_na=$(date -u -d "$(tc_expected valid not_after)" +%s)
tc_assert_eq "$valid_na" \
    "$(awk '/^tokencert_certificate_not_after_seconds\{/ && /credential="valid"/ { print $NF }' "$M/tc.prom")" \
    "--metrics: not_after of 'valid' is openssl's date as epoch seconds"
tc_assert_eq "$(tc_days_left "$(tc_expected valid not_after)")" \
    "$(awk '/^tokencert_certificate_days_left\{/ && /credential="valid"/ { print $NF }' "$M/tc.prom")" \
    "--metrics: days left of 'valid'"
tc_assert_eq "$(date -u -d "$(tc_expected renewed not_after 1)" +%s) $(date -u -d "$(tc_expected renewed not_after 2)" +%s)" \
    "$(awk '/^tokencert_certificate_not_after_seconds\{/ && /credential="renewed"/ { print $NF }' "$M/tc.prom" | sort -n | paste -sd' ')" \
    "--metrics: not_after of both renewed certificates"
tc_assert_eq "$rc" "$(awk '$1 == "tokencert_check_status" { print $2 }' "$M/tc.prom")" \
    "--metrics: tokencert_check_status equals the exit code"
tc_assert_eq 1 "$(awk '$1 == "tokencert_check_success" { print $2 }' "$M/tc.prom")" \
    "--metrics: tokencert_check_success 1"
now=$(date -u +%s)
n_expired=0
n_future=0
while IFS=$'\t' read -r label _id _serial nb na _rest; do
    [ "$label" != "Test CA" ] || continue # authorities are not judged
    if [ "$(date -u -d "$na" +%s)" -le "$now" ]; then
        n_expired=$((n_expired + 1))
    elif [ "$(date -u -d "$nb" +%s)" -gt "$now" ]; then
        n_future=$((n_future + 1))
    fi
done < <(grep -v '^#' "$W/expected.tsv")
tc_assert_eq 1 "$n_expired" "the fixture has one expired certificate"
tc_assert_eq "$n_expired" \
    "$(awk '$1 == "tokencert_certificates{status=\"expired\"}" { print $2 }' "$M/tc.prom")" \
    "--metrics: tokencert_certificates{status=\"expired\"}"
tc_assert_eq "$n_future" \
    "$(awk '$1 == "tokencert_certificates{status=\"not-yet-valid\"}" { print $2 }' "$M/tc.prom")" \
    "--metrics: tokencert_certificates{status=\"not-yet-valid\"}"
tc_assert_eq 2 "$(awk '/^tokencert_credential_state\{/ && /credential="expired"/ { print $NF }' "$M/tc.prom")" \
    "--metrics: the expired credential's state is 2"
tc_assert_eq 0 "$(awk '/^tokencert_credential_state\{/ && /credential="renewed"/ { print $NF }' "$M/tc.prom")" \
    "--metrics: the renewed credential's state is 0"
ts=$(awk '$1 == "tokencert_check_timestamp_seconds" { print $2 }' "$M/tc.prom")
tc_assert_eq ok "$([[ "$ts" =~ ^[0-9]+$ ]] && [ $((now - ts)) -ge 0 ] && [ $((now - ts)) -lt 120 ] &&
    echo ok || echo "bad: '$ts'")" "--metrics: tokencert_check_timestamp_seconds is now"

tc_expect_exit 0 "${CHECK[@]}" "pkcs11:object=valid" --metrics "$M/tc.prom"
tc_assert_eq 0 "$(awk '$1 == "tokencert_check_status" { print $2 }' "$M/tc.prom")" \
    "--metrics: tokencert_check_status 0 after an OK check"

tc_expect_exit 3 "${CHECK[@]}" --module "$W/no-such-module.so" --metrics "$M/tc.prom"
tc_assert_eq "tc.prom" "$(ls -A "$M")" "--metrics on error: no temporary file left"
tc_assert_eq 0 "$(awk '$1 == "tokencert_check_success" { print $2 }' "$M/tc.prom")" \
    "--metrics on error (missing module): tokencert_check_success 0"
tc_assert_eq 3 "$(awk '$1 == "tokencert_check_status" { print $2 }' "$M/tc.prom")" \
    "--metrics on error: tokencert_check_status 3"
tc_assert_eq "" "$(grep '^tokencert_certificate_not_after_seconds' "$M/tc.prom" || true)" \
    "--metrics on error: no certificate is reported"

# --- a renewal with a new key: the predecessor is judged by its name's current certificate ----
# Two keys under one label (a renewal with a new key, the lifecycle's default): the old one's
# certificate runs out in 5.5 days, the new one's lasts two years. Neither is an alarm.
d=$TC_DAY
tc_fixture_keypair rekeyed c1d1 EC:prime256v1
tc_fixture_issue rekeyed c1d1 0x10B1 $((-360 * d)) $((5 * d + 12 * TC_HOUR))
tc_fixture_keypair rekeyed c1d2 EC:prime256v1
tc_fixture_issue rekeyed c1d2 0x10B2 $((-1 * d)) $((730 * d + 12 * TC_HOUR))
check_case 0 OK "pkcs11:object=rekeyed"
check_case 0 OK "pkcs11:object=rekeyed" --warn 7d --critical 6d
json_case 0 "$W/c-rekeyed.json" "pkcs11:object=rekeyed"
tc_jexprs "$W/c-rekeyed.json" "sorted([c['id'], c['state'], c['sha256']] for c in j['credentials'])"
tc_assert_eq "$(printf '[["c1d1","OK","%s"],["c1d2","OK","%s"]]' "$(tc_expected rekeyed sha256 2)" \
    "$(tc_expected rekeyed sha256 2)")" "${R[0]-}" \
    "rekeyed: both keys of the name are OK, judged by the new certificate"
# The new key's certificate deleted: the old one alone is judged again, and warns.
tc__fix_log tc_p11_login --delete-object --type cert --id c1d2
check_case 2 CRITICAL "pkcs11:object=rekeyed" --warn 7d --critical 6d

# --- the same shape made by the lifecycle, on list's timeline ---------------------------------
# The embedded CA (automatic approval, certificates for 90 days) and the test clock: generation 1
# enrolled today, generation 2 with a new key under the same label on day 65, generation 1
# superseded. Each bar of list --timeline carries its generation's mark. On day 100 generation 1
# has expired (prune would delete it only after day 120): the rule gives an expired certificate
# no role, so its mark is the state the store recorded, and must still say "superseded".
export TOKENCERT_TEST_CLOCK=enable
LC=(--module "$MODULE" --pin-source env:PIN)
tc_expect_exit 0 "$TOKENCERT" ca init --ca-dir "$W/ca" --cert-validity 90d
tc_expect_exit 0 "$TOKENCERT" enroll "pkcs11:token=$TOKEN_LABEL" "${LC[@]}" --ca-dir "$W/ca" \
    --label office --subject "CN=1234567890,O=Practice" --type ec:p256
TOKENCERT_TEST_NOW=+65d tc_expect_exit 0 "$TOKENCERT" renew office --due "${LC[@]}"
tc_assert_contains "$TC_OUT" "office: generation 2 installed and active" "day 65: generation 2"
tc_assert_contains "$TC_OUT" "office: generation 1 superseded" "day 65: generation 1 superseded"

# timeline_bars OFFSET: list --timeline of office on that day; BARS gets "STATUS MARK" of each bar,
# sorted (a bar line ends "STATUS DAYS d", then two blanks and the mark when there is one).
timeline_bars() {
    TOKENCERT_TEST_NOW=$1 tc_expect_exit 0 "$TOKENCERT" list "pkcs11:object=office" \
        --module "$MODULE" --timeline
    BARS=$(sed -n 's/^  .* \([a-z-]*\) -\{0,1\}[0-9][0-9]* d\(  \([a-z]*\)\)\{0,1\}$/\1 \3/p' \
        "$TC_OUT_FILE" | sort | paste -sd,)
    if [ "$BARS" != "$2" ]; then
        tc_log "list --timeline on day ${1#+}:"
        sed 's/^/#   /' "$TC_OUT_FILE"
    fi
    tc_assert_eq "$2" "$BARS" "$3"
}
timeline_bars +66d "expiring superseded,valid active" \
    "timeline, day 66: generation 1 (24 days left) superseded, generation 2 active"
timeline_bars +100d "expired superseded,valid active" \
    "timeline, day 100: the expired generation 1 keeps its superseded mark"
# The timer's daily run reconciles the store with the token; it changes nothing about that.
TOKENCERT_TEST_NOW=+100d tc_expect_exit 0 "$TOKENCERT" renew --all --due "${LC[@]}"
timeline_bars +100d "expired superseded,valid active" \
    "timeline, day 100, after the timer's run: generation 1 still marked superseded"
timeline_bars +110d "expired superseded,valid active" \
    "timeline, day 110: generation 1 still marked superseded until prune"

tc_finish
