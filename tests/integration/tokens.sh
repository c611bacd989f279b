#!/usr/bin/env bash
# tokens: what a token reports (cross-checked with pkcs11-tool -L), the URIs it prints, the user
# PIN state from the token's flags, NUL-padded token strings (as tpm2-pkcs11 pads its model), and
# a removed token — the last three through the fault-injecting module in front of the real one.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

tc_require_tokencert
tc_require_faultmod
tc_world_init
tc_fixture_keypair valid "$TC_FIX_ID_VALID" EC:prime256v1
tc_fixture_issue valid "$TC_FIX_ID_VALID" 0x10A1 $((-30 * TC_DAY)) $((365 * TC_DAY + 12 * TC_HOUR))

W=$TC_WORLD
TOKENS=("$TOKENCERT" tokens --module "$MODULE")
# The same commands through the fault module; the faults come from the environment of each run.
F_TOKENS=(env TC_FAULT_TARGET="$MODULE" "$TOKENCERT" tokens --module "$TC_FAULTMOD")
F_LIST=(env TC_FAULT_TARGET="$MODULE" "$TOKENCERT" list --module "$TC_FAULTMOD")


# Python expressions over a tokens document: the entries for our token, and one of its keys.
MINE="[t for t in j['tokens'] if t.get('label') == '$TOKEN_LABEL']"
mine() { printf "[t[%s] for t in %s]" "'$1'" "$MINE"; }

# --- what pkcs11-tool -L says about the token -------------------------------------------------
pkcs11-tool --module "$MODULE" -L >"$W/p11-L" 2>&1 || tc_die "pkcs11-tool -L failed"
p11_field() { # p11_field NAME: "token NAME : value" of our token's block in pkcs11-tool -L
    awk -v want="$TOKEN_LABEL" -v field="$1" '
        function val(l) { sub(/^[^:]*:[ \t]?/, "", l); sub(/[ \t]+$/, "", l); return l }
        /^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { slot = $3; gsub(/[():]/, "", slot); label = "" }
        /^[ \t]+token label[ \t]*:/ { label = val($0) }
        label == want && field == "slot" && !done_slot { print slot; done_slot = 1 }
        label == want && $0 ~ "^[ \t]+" field "[ \t]*:" { print val($0) }
    ' "$W/p11-L"
}
p11_serial=$(p11_field "serial num")
p11_manufacturer=$(p11_field "token manufacturer")
p11_model=$(p11_field "token model")
p11_slot=$(p11_field slot)
tc_assert_ne "" "$p11_serial" "pkcs11-tool -L shows the token's serial"

# --- tokens --json ----------------------------------------------------------------------------
tc_expect_exit 0 "${TOKENS[@]}" --json
cp "$TC_OUT_FILE" "$W/tokens.json"
tc_jexprs "$W/tokens.json" "len($MINE)" "$(mine present)" "$(mine serial)" "$(mine manufacturer)" \
    "$(mine model)" "$(mine slot_id)" "$(mine pin_state)" \
    "[sorted(f for f in t['flags'] if f in ['token-initialized', 'login-required',
        'user-pin-initialized', 'user-pin-locked', 'user-pin-final-try', 'user-pin-count-low'])
        for t in $MINE]" \
    "$(mine uri)[0]" "j['version']"
tc_assert_eq 1 "${R[0]-}" "tokens --json lists the token once"
tc_assert_eq "[true]" "${R[1]-}" "the token is present"
tc_assert_eq "[\"$p11_serial\"]" "${R[2]-}" "serial as pkcs11-tool -L shows it"
tc_assert_eq "[\"$p11_manufacturer\"]" "${R[3]-}" "manufacturer as pkcs11-tool -L shows it"
tc_assert_eq "[\"$p11_model\"]" "${R[4]-}" "model as pkcs11-tool -L shows it"
tc_assert_eq "[$((p11_slot))]" "${R[5]-}" "slot_id as pkcs11-tool -L shows it"
tc_assert_eq '["ok"]' "${R[6]-}" "pin_state ok"
tc_assert_eq '[["login-required","token-initialized","user-pin-initialized"]]' "${R[7]-}" \
    "flags: token-initialized, login-required, user-pin-initialized and no PIN trouble"
TOKEN_URI=${R[8]-}
tc_assert_contains "$TOKEN_URI" "token=$TOKEN_LABEL" "the token's URI names its label"
tc_assert_eq 1 "${R[9]-}" "tokens --json is version 1"

tc_expect_exit 0 "${TOKENS[@]}"
tc_assert_contains "$TC_OUT" "label:        $TOKEN_LABEL" "table: the label"
tc_assert_contains "$TC_OUT" "serial:       $p11_serial" "table: the serial"
tc_assert_contains "$TC_OUT" "user PIN:     ok" "table: the user PIN state"

# --- the printed URI selects exactly that token -----------------------------------------------
tc_expect_exit 0 "${TOKENS[@]}" "$TOKEN_URI" --json
cp "$TC_OUT_FILE" "$W/by-uri.json"
tc_jexprs "$W/by-uri.json" "[[t['present'], t.get('label'), t.get('serial')] for t in j['tokens']]"
tc_assert_eq "[[true,\"$TOKEN_LABEL\",\"$p11_serial\"]]" "${R[0]-}" \
    "the token's own URI, fed back to tokens, selects exactly that token"

tc_expect_exit 0 "${TOKENS[@]}" "pkcs11:token=$TOKEN_LABEL" --json
cp "$TC_OUT_FILE" "$W/by-label.json"
tc_jexprs "$W/by-label.json" "[[t['present'], t.get('label')] for t in j['tokens']]"
tc_assert_eq "[[true,\"$TOKEN_LABEL\"]]" "${R[0]-}" "pkcs11:token=LABEL selects exactly that token"

tc_expect_exit 5 "${TOKENS[@]}" "pkcs11:token=no-such-token"

# --- PIN state from the token's flags ---------------------------------------------------------
for case in CKF_USER_PIN_COUNT_LOW:count-low:user-pin-count-low \
    CKF_USER_PIN_FINAL_TRY:final-try:user-pin-final-try \
    CKF_USER_PIN_LOCKED:locked:user-pin-locked \
    CKF_USER_PIN_TO_BE_CHANGED:to-be-changed:user-pin-to-be-changed; do
    IFS=: read -r flag state name <<<"$case"
    tc_expect_exit 0 env TC_FAULT_TOKEN_FLAGS_SET="$flag" "${F_TOKENS[@]}" --json
    cp "$TC_OUT_FILE" "$W/flags-$state.json"
    tc_jexprs "$W/flags-$state.json" "$(mine pin_state)" "[('$name' in t['flags']) for t in $MINE]"
    tc_assert_eq "[\"$state\"]" "${R[0]-}" "$flag: pin_state $state"
    tc_assert_eq "[true]" "${R[1]-}" "$flag: flags include $name"
done
tc_expect_exit 0 env TC_FAULT_TOKEN_FLAGS_SET=CKF_USER_PIN_LOCKED "${F_TOKENS[@]}"
tc_assert_contains "$TC_OUT" "user PIN:     locked" "table: a locked user PIN is shown as locked"

# --- NUL-padded token strings -----------------------------------------------------------------
# Reference values come from the real module above; through the fault module the padding of
# label, manufacturer, model and serial is NUL instead of blank.
tc_expect_exit 0 env TC_FAULT_PAD_MODEL_NUL=1 "${F_TOKENS[@]}" --json
cp "$TC_OUT_FILE" "$W/nul.json"
tc_jexprs "$W/nul.json" "len($MINE)" \
    "[[t[k] for k in ['label', 'manufacturer', 'model', 'serial', 'uri']] for t in $MINE]" \
    "[k for t in j['tokens'] for k, v in t.items() if isinstance(v, str) and
        ('\\\\x00' in v or '\\x00' in v or '%00' in v)]"
tc_assert_eq 1 "${R[0]-}" "NUL padding: the token is listed once, found by its trimmed label"
tc_assert_eq "[[\"$TOKEN_LABEL\",\"$p11_manufacturer\",\"$p11_model\",\"$p11_serial\",\"$TOKEN_URI\"]]" \
    "${R[1]-}" "NUL padding: label, manufacturer, model, serial and URI as with blank padding"
tc_assert_eq "[]" "${R[2]-}" "NUL padding: no NUL, escaped NUL or %00 in any string"
tc_expect_exit 0 env TC_FAULT_PAD_MODEL_NUL=1 "${F_TOKENS[@]}"
tc_assert_not_contains "$TC_OUT" '\x00' "NUL padding: the table shows no \\x00"

tc_expect_exit 0 env TC_FAULT_PAD_MODEL_NUL=1 "${F_LIST[@]}" --json
cp "$TC_OUT_FILE" "$W/nul-list.json"
tc_jexprs "$W/nul-list.json" \
    "[[t['label'], t['model'], [x['sha256'] for c in t['credentials'] for x in c['certificates']]]
        for t in j['tokens'] if t['label'] == '$TOKEN_LABEL']"
tc_assert_eq "[[\"$TOKEN_LABEL\",\"$p11_model\",[\"$(tc_expected valid sha256)\"]]]" "${R[0]-}" \
    "NUL padding: list still shows the token, trimmed, and its certificate"
tc_expect_exit 0 env TC_FAULT_PAD_MODEL_NUL=1 "${F_LIST[@]}" "pkcs11:token=$TOKEN_LABEL" --json
cp "$TC_OUT_FILE" "$W/nul-list-label.json"
tc_jexprs "$W/nul-list-label.json" "[t['label'] for t in j['tokens']]"
tc_assert_eq "[\"$TOKEN_LABEL\"]" "${R[0]-}" "NUL padding: pkcs11:token=LABEL still selects the token"
tc_expect_exit 0 env TC_FAULT_PAD_MODEL_NUL=1 "${F_TOKENS[@]}" "$TOKEN_URI" --json
cp "$TC_OUT_FILE" "$W/nul-by-uri.json"
tc_jexprs "$W/nul-by-uri.json" "[t.get('label') for t in j['tokens']]"
tc_assert_eq "[\"$TOKEN_LABEL\"]" "${R[0]-}" "NUL padding: the token's printed URI still selects it"

# --- token removed ----------------------------------------------------------------------------
n_slots=$(tc_json "$W/tokens.json" 'len(j["tokens"])')
tc_expect_exit 0 env TC_FAULT_TOKEN_ABSENT=1 "${F_TOKENS[@]}" --json
cp "$TC_OUT_FILE" "$W/absent.json"
tc_jexprs "$W/absent.json" "len(j['tokens'])" "sorted(set(t['present'] for t in j['tokens']))" \
    "[t for t in j['tokens'] if 'label' in t or 'pin_state' in t]" \
    "[t['uri'] for t in j['tokens'] if t['slot_id'] == $((p11_slot))]"
tc_assert_eq "$n_slots" "${R[0]-}" "token absent: every slot is still shown"
tc_assert_eq "[false]" "${R[1]-}" "token absent: every slot shows present false"
tc_assert_eq "[]" "${R[2]-}" "token absent: no label or PIN state for an empty slot"
slot_uri=$(printf '%s' "${R[3]-}" | sed 's/^\["//;s/"\]$//')
tc_assert_eq "pkcs11:slot-id=$((p11_slot))" "$slot_uri" "token absent: the slot's URI names the slot"
tc_expect_exit 0 env TC_FAULT_TOKEN_ABSENT=1 "${F_TOKENS[@]}"
tc_assert_contains "$TC_OUT" "(no token present)" "token absent: the table says so"
tc_expect_exit 0 env TC_FAULT_TOKEN_ABSENT=1 "${F_TOKENS[@]}" "$slot_uri" --json
cp "$TC_OUT_FILE" "$W/absent-slot.json"
tc_jexprs "$W/absent-slot.json" "[[t['slot_id'], t['present']] for t in j['tokens']]"
tc_assert_eq "[[$((p11_slot)),false]]" "${R[0]-}" \
    "token absent: the empty slot's printed URI, fed back to tokens, selects that slot"

tc_expect_exit 5 env TC_FAULT_TOKEN_ABSENT=1 "${F_LIST[@]}" "pkcs11:token=$TOKEN_LABEL"
tc_assert_contains "$TC_ERR" "present" "token absent: list names the absence"
tc_assert_eq "" "$TC_OUT" "token absent: list prints nothing on stdout"
tc_expect_exit 5 env TC_FAULT_TOKEN_ABSENT=1 "${F_TOKENS[@]}" "pkcs11:token=$TOKEN_LABEL"

tc_finish
