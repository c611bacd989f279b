# shellcheck shell=bash
# tests/lib/fixtures.sh — fills the current world's token with test credentials.
#
# Keys are generated ON the token (pkcs11-tool --keypairgen); certificates are issued for the
# token's public key by a throwaway test CA and written back with the key's CKA_ID. What each
# certificate should look like is computed independently with openssl and written to
# $TC_WORLD/expected.tsv (+ $TC_WORLD/expected/<label>.<n>.pem|der, expected-keys.tsv).
#
# Issuing: the CA is made with openssl (`openssl ca -selfsign`, back-dated). Leaf certificates
# are issued with GnuTLS certtool --load-pubkey, because OpenSSL 3.0 cannot put arbitrary
# validity dates on a certificate for a key it cannot sign with: `x509 -req -force_pubkey` has
# no start date, `ca -startdate` insists on a CSR/self-signed cert signed by the key itself, and
# `x509 -CA -preserve_dates -force_pubkey` rejects its own input. certtool takes the public key
# and exact UTC activation/expiration dates, so no faketime is needed.
#
# Requires harness.sh sourced and tc_world_init done.

TC_DAY=86400
TC_HOUR=3600

# The standard set (label, id, key type). Ids are lowercase hex, as expected.tsv holds them.
TC_FIX_ID_VALID=01
TC_FIX_ID_EXPIRING=02
TC_FIX_ID_EXPIRED=03
TC_FIX_ID_FUTURE=04
TC_FIX_ID_RENEWED=5eb1d4a5e0c9c1e96f0c3b3f7b1c1c0d2f6e4a11   # 20 bytes, like a SHA-1 key id
TC_FIX_ID_LONELY=06
TC_FIX_ID_ORPHAN=07
TC_FIX_ID_CA=ca

tc__fix_log() {
    "$@" >>"$TC_WORLD/fixture/fixture.log" 2>&1 || {
        tc__show_log "$TC_WORLD/fixture/fixture.log"
        tc_die "fixture: command failed: $*"
    }
}

# certtool's date format (UTC) for the epoch-seconds arithmetic expression $1; no fork.
tc__fix_date() {
    local out
    TZ=UTC printf -v out '%(%Y-%m-%d %H:%M:%S)T' "$(($1))"
    printf '%s\n' "$out"
}

# How many certificates each label has got so far (for the <label>.<n> files).
declare -gA TC__FIX_COUNT=()
# Key type ("rsa"/"ec") of each key generated on the token, by id.
declare -gA TC__FIX_KEYTYPE=()

tc__fix_init() {
    if [ -z "${TC_WORLD-}" ] || [ -z "${MODULE-}" ]; then
        tc_die "fixtures: tc_world_init first"
    fi
    if [ -d "$TC_WORLD/fixture" ]; then
        return 0
    fi
    tc_require_tool openssl certtool p11tool pkcs11-tool
    mkdir -p "$TC_WORLD/fixture/ca/newcerts" "$TC_WORLD/fixture/keys" \
        "$TC_WORLD/fixture/certs" "$TC_WORLD/expected" || tc_die "fixture: cannot create dirs"
    : >"$TC_WORLD/fixture/fixture.log"
    # All dates are relative to one instant, so a whole fixture is consistent.
    printf -v TC_FIXTURE_NOW '%(%s)T' -1
    TC_FIXTURE=$TC_WORLD/fixture
    export TC_FIXTURE_NOW TC_FIXTURE
    local cols=(label id serial not_before not_after sha1 sha256 subject issuer key_type key_bits
        is_ca n file)
    (IFS=$'\t' && printf '#%s\n' "${cols[*]}") >"$TC_WORLD/expected.tsv"
    printf '#label\tid\tkey_type\tkey_bits\n' >"$TC_WORLD/expected-keys.tsv"
}

# tc_fixture_ca: creates the test CA (EC P-256, "CN=Test CA,O=tokencert test", serial 0CA1,
# valid from 3 years ago for 10 years) unless it exists. Exports TC_CA_CERT, TC_CA_KEY.
tc_fixture_ca() {
    tc__fix_init
    local d=$TC_FIXTURE/ca
    TC_CA_CERT=$d/ca.pem
    TC_CA_KEY=$d/ca.key
    export TC_CA_CERT TC_CA_KEY
    if [ -s "$TC_CA_CERT" ]; then
        return 0
    fi
    cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = tc_ca
[ tc_ca ]
database = $d/index.txt
new_certs_dir = $d/newcerts
serial = $d/serial
default_md = sha256
policy = tc_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
[ tc_policy ]
organizationName = supplied
commonName = supplied
[ tc_ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ req ]
distinguished_name = req_dn
[ req_dn ]
EOF
    : >"$d/index.txt"
    echo 0CA1 >"$d/serial"
    local nb na
    nb=$(date -u -d "@$((TC_FIXTURE_NOW - 3 * 365 * TC_DAY))" +%Y%m%d%H%M%SZ)
    na=$(date -u -d "@$((TC_FIXTURE_NOW + 10 * 365 * TC_DAY))" +%Y%m%d%H%M%SZ)
    tc__fix_log openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TC_CA_KEY"
    tc__fix_log openssl req -new -config "$d/ca.cnf" -key "$TC_CA_KEY" \
        -subj "/O=tokencert test/CN=Test CA" -out "$d/ca.csr"
    tc__fix_log openssl ca -batch -config "$d/ca.cnf" -selfsign -keyfile "$TC_CA_KEY" \
        -in "$d/ca.csr" -preserveDN -startdate "$nb" -enddate "$na" -extensions tc_ca_ext \
        -notext -out "$TC_CA_CERT"
}

# tc_fixture_keypair LABEL ID KEYTYPE: generates a key pair on the token (KEYTYPE as pkcs11-tool
# takes it: rsa:2048, EC:prime256v1), reads the public key back to
# $TC_FIXTURE/keys/<ID>.pub.pem and records it in expected-keys.tsv.
tc_fixture_keypair() {
    local label=$1 id=$2 keytype=$3
    tc__fix_init
    local pub=$TC_FIXTURE/keys/$id.pub
    # Read back with p11tool (tc_pubkey): pkcs11-tool 0.23's public key read is unsound for EC
    # keys, which is what once looked like a key the TPM could not give back.
    tc__fix_log tc_p11_login --keypairgen --key-type "$keytype" --id "$id" --label "$label"
    tc_pubkey "id=$(tc_pct "$id")" "$pub.der" ||
        tc_die "fixture: the public key of '$label' cannot be read back (p11tool)"
    # One openssl run: the PEM (kept for issuing) followed by the text (for expected-keys.tsv).
    local text type=other bits=""
    text=$(openssl pkey -pubin -inform DER -in "$pub.der" -text) ||
        tc_die "fixture: openssl cannot read the public key of '$label' read back from the token"
    printf '%s\n' "${text%%-----END PUBLIC KEY-----*}-----END PUBLIC KEY-----" >"$pub.pem"
    case "$text" in
    *Modulus:*) type=rsa ;;
    *"ASN1 OID:"*) type=ec ;;
    esac
    if [[ "$text" =~ Public-Key:\ \(([0-9]+)\ bit\) ]]; then
        bits=${BASH_REMATCH[1]}
    fi
    TC__FIX_KEYTYPE[$id]=$type
    printf '%s\t%s\t%s\t%s\n' "$label" "$id" "$type" "$bits" >>"$TC_WORLD/expected-keys.tsv"
}

# tc__fix_expect LABEL ID BASE N: appends the openssl view of BASE.der to expected.tsv.
# Two openssl runs per certificate: the fixture's cost is mostly process start-up.
tc__fix_expect() {
    local label=$1 id=$2 base=$3 n=$4
    local out line sha256 serial="" nb="" na="" sha1="" subject="" issuer=""
    local type=other bits="" is_ca=false
    out=$(openssl x509 -inform DER -in "$base.der" -noout -dateopt iso_8601 -serial \
        -startdate -enddate -fingerprint -sha1 -nameopt RFC2253 -subject -issuer -text) ||
        tc_die "fixture: openssl cannot read $base.der"
    while IFS= read -r line; do
        case "$line" in
        serial=*) serial=${line#serial=} ;;
        notBefore=*) nb=${line#notBefore=} ;;
        notAfter=*) na=${line#notAfter=} ;;
        *" Fingerprint="*) sha1=${line#*=} ;;
        subject=*) subject=${line#subject=} ;;
        issuer=*) issuer=${line#issuer=} ;;
        *"Public Key Algorithm: rsaEncryption"*) type=rsa ;;
        *"Public Key Algorithm: id-ecPublicKey"*) type=ec ;;
        *"CA:TRUE"*) is_ca=true ;;
        *"Public-Key: ("*" bit)"*)
            if [ -z "$bits" ]; then
                bits=${line#*Public-Key: (}
                bits=${bits%% bit)*}
            fi
            ;;
        esac
    done <<<"$out"
    sha256=$(openssl x509 -inform DER -in "$base.der" -noout -fingerprint -sha256) ||
        tc_die "fixture: openssl cannot read $base.der"
    sha256=${sha256#*=}
    if [ -z "$serial" ] || [ -z "$nb" ] || [ -z "$na" ] || [ -z "$sha1" ] || [ -z "$subject" ] ||
        [ -z "$sha256" ]; then
        tc_die "fixture: could not read back $base.der with openssl"
    fi
    # -dateopt iso_8601 prints "2026-11-22 04:00:00Z"; the contract's form has a T.
    nb=${nb/ /T}
    na=${na/ /T}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$id" "$serial" \
        "$nb" "$na" "$sha1" "$sha256" "$subject" "$issuer" "$type" "$bits" "$is_ca" "$n" \
        "$base.pem" >>"$TC_WORLD/expected.tsv"
}

# tc__fix_pem DER PEM / tc__fix_der PEM DER: certificate encodings without an openssl start-up.
tc__fix_pem() {
    {
        echo "-----BEGIN CERTIFICATE-----"
        base64 -w 64 "$1"
        echo "-----END CERTIFICATE-----"
    } >"$2" || tc_die "fixture: cannot write $2"
}

tc__fix_der() {
    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{/-----/!p}' "$1" |
        base64 -d >"$2" || tc_die "fixture: cannot convert $1 to DER"
}

# Next <n> for LABEL's expected files.
tc__fix_next() {
    TC__FIX_COUNT[$1]=$((${TC__FIX_COUNT[$1]-0} + 1))
}

# tc_fixture_issue LABEL ID SERIAL NB_OFFSET NA_OFFSET [PUBKEY_PEM]
# Issues a client certificate "CN=LABEL,O=tokencert test" from the test CA, valid from
# now+NB_OFFSET to now+NA_OFFSET (seconds, relative to $TC_FIXTURE_NOW; negative = past), for
# the token key with ID (or for PUBKEY_PEM), writes it to the token as a certificate object with
# CKA_ID=ID and CKA_LABEL=LABEL, and appends its expected row. SERIAL is hex with 0x, and must
# have its top bit clear (certtool writes the bytes as given, so 0x8… would be negative).
tc_fixture_issue() {
    local label=$1 id=$2 serial=$3 nb_off=$4 na_off=$5 pub=${6-}
    if ! [[ "$serial" =~ ^0x[0-7][0-9A-Fa-f]([0-9A-Fa-f]{2})*$ ]]; then
        tc_die "fixture: serial '$serial' must be 0x + whole bytes of hex, top bit clear"
    fi
    tc_fixture_ca
    if [ -z "$pub" ]; then
        pub=$TC_FIXTURE/keys/$id.pub.pem
    fi
    [ -s "$pub" ] || tc_die "fixture: no public key $pub for '$label'"
    local keytype=${TC__FIX_KEYTYPE[$id]-}
    if [ -n "${6-}" ] || [ -z "$keytype" ]; then
        keytype=ec
        if [[ "$(openssl pkey -pubin -in "$pub" -noout -text)" == *Modulus:* ]]; then
            keytype=rsa
        fi
    fi
    local usage=""
    if [ "$keytype" = rsa ]; then
        usage="encryption_key"
    fi
    tc__fix_next "$label"
    local n=${TC__FIX_COUNT[$label]}
    local base=$TC_WORLD/expected/$label.$n
    local tmpl=$TC_FIXTURE/certs/$label.$n.tmpl
    printf 'cn = "%s"\norganization = "tokencert test"\nserial = %s\n' "$label" "$serial" >"$tmpl"
    printf 'activation_date = "%s"\nexpiration_date = "%s"\n' \
        "$(tc__fix_date "TC_FIXTURE_NOW + $nb_off")" \
        "$(tc__fix_date "TC_FIXTURE_NOW + $na_off")" >>"$tmpl"
    printf 'signing_key\n%s\ntls_www_client\n' "$usage" >>"$tmpl"
    # DER is what goes on the token; the PEM copy is for tests.
    tc__fix_log certtool --generate-certificate --load-pubkey "$pub" \
        --load-ca-certificate "$TC_CA_CERT" --load-ca-privkey "$TC_CA_KEY" \
        --template "$tmpl" --outder --outfile "$base.der"
    tc__fix_pem "$base.der" "$base.pem"
    tc__fix_log tc_p11_login --write-object "$base.der" --type cert --id "$id" --label "$label"
    tc__fix_expect "$label" "$id" "$base" "$n"
}

# tc_fixture_ca_object: writes the test CA certificate to the token as an authority certificate
# (CKA_CERTIFICATE_CATEGORY = 2, via p11tool --mark-ca), label "Test CA", id "ca".
tc_fixture_ca_object() {
    tc_fixture_ca
    local uri_label
    uri_label=${TOKEN_LABEL//%/%25}
    uri_label=${uri_label// /%20}
    uri_label=${uri_label//;/%3B}
    uri_label=${uri_label//\//%2F}
    GNUTLS_PIN=$PIN tc__fix_log p11tool --provider "$MODULE" --login --write --mark-ca \
        --label "Test CA" --id "$TC_FIX_ID_CA" --load-certificate "$TC_CA_CERT" \
        "pkcs11:token=$uri_label"
    tc__fix_next "Test CA"
    local n=${TC__FIX_COUNT["Test CA"]}
    local base="$TC_WORLD/expected/Test CA.$n"
    printf '%s\n' "$(<"$TC_CA_CERT")" >"$base.pem"
    tc__fix_der "$base.pem" "$base.der"
    tc__fix_expect "Test CA" "$TC_FIX_ID_CA" "$base" "$n"
}

# tc_fixture_standard: the realistic set every listing test starts from (see README.md).
# Days left are whole days + 12 h, so floor(days_left) is stable for half a day.
tc_fixture_standard() {
    local d=$TC_DAY h=$TC_HOUR
    tc_fixture_ca

    tc_fixture_keypair valid "$TC_FIX_ID_VALID" rsa:2048
    tc_fixture_issue valid "$TC_FIX_ID_VALID" 0x10A1 $((-30 * d)) $((365 * d + 12 * h))

    tc_fixture_keypair expiring "$TC_FIX_ID_EXPIRING" EC:prime256v1
    tc_fixture_issue expiring "$TC_FIX_ID_EXPIRING" 0x10A2 $((-355 * d)) $((10 * d + 12 * h))

    tc_fixture_keypair expired "$TC_FIX_ID_EXPIRED" EC:prime256v1
    tc_fixture_issue expired "$TC_FIX_ID_EXPIRED" 0x10A3 $((-395 * d)) $((-30 * d + 12 * h))

    tc_fixture_keypair future "$TC_FIX_ID_FUTURE" EC:prime256v1
    tc_fixture_issue future "$TC_FIX_ID_FUTURE" 0x10A4 $((30 * d)) $((395 * d + 12 * h))

    # One key, two certificates side by side: the old one about to expire, the new one overlapping.
    tc_fixture_keypair renewed "$TC_FIX_ID_RENEWED" EC:prime256v1
    tc_fixture_issue renewed "$TC_FIX_ID_RENEWED" 0x10A5 $((-360 * d)) $((5 * d + 12 * h))
    tc_fixture_issue renewed "$TC_FIX_ID_RENEWED" 0x4E2B7D1C9A0F35E8C6B1D2A3F4E5D6C7 \
        $((-1 * d)) $((730 * d + 12 * h))

    tc_fixture_keypair lonely-key "$TC_FIX_ID_LONELY" EC:prime256v1

    # A certificate whose key is nowhere on the token.
    local orphan=$TC_FIXTURE/keys/orphan
    tc__fix_log openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$orphan.key"
    tc__fix_log openssl pkey -in "$orphan.key" -pubout -out "$orphan.pub.pem"
    tc_fixture_issue orphan-cert "$TC_FIX_ID_ORPHAN" 0x10A7 $((-10 * d)) $((180 * d + 12 * h)) \
        "$orphan.pub.pem"

    tc_fixture_ca_object
}

# tc_expected LABEL COLUMN [N]: one value from expected.tsv (N-th certificate with that label,
# default 1), e.g. `tc_expected renewed serial 2`. Columns: see the header of expected.tsv.
# Meant for $( ... ): on a bad label/column it complains on stderr and returns 1 (prints nothing).
tc_expected() {
    local label=$1 column=$2 n=${3-1} v
    if ! v=$(awk -F'\t' -v l="$label" -v c="$column" -v n="$n" '
        NR == 1 { sub(/^#/, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == l && $13 == n && (c in col) { print $(col[c]); found = 1 }
        END { exit !found }' "$TC_WORLD/expected.tsv"); then
        printf 'harness: tc_expected: no %s for certificate %s #%s\n' "$column" "$label" "$n" >&2
        return 1
    fi
    printf '%s\n' "$v"
}
