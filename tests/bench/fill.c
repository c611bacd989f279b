/* Benchmark token filler: creates many distinct X.509 certificate objects (and, for every n-th
 * one, an EC P-256 key pair generated on the token) so the listing benchmark has a realistic,
 * reproducible token to read.
 *
 * Usage: fill MODULE TOKEN-LABEL PIN-FILE COUNT KEYS_EVERY
 *
 * Certificates are issued in-process by one throw-away issuer key. Subjects, serials and
 * validity vary deterministically with the index (relative to the current time): about 10%
 * are expired, 10% expire within 30 days, the rest are valid. Certificates without a token
 * key reuse a handful of in-process subject keys; every KEYS_EVERY-th certificate is issued
 * for a key pair generated on the token first, with the same CKA_ID. KEYS_EVERY 0 means no
 * keys. With TC_BENCH_FILL_VALID in the environment every certificate is valid for 31 to 330 more
 * days (the lifecycle benchmark, tests/bench/lifecycle.sh). */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_PIN        256
#define MAX_COUNT      1000000UL
#define N_SUBJECT_KEYS 6
#define DAY            (24L * 60 * 60)
#define ID_LEN         8
#define MAX_EC_POINT   256

/* DER OID of prime256v1, the CKA_EC_PARAMS value for P-256. */
static const unsigned char p256_params[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                            0xce, 0x3d, 0x03, 0x01, 0x07};

static const char *const orgs[] = {"Bench Org", "Example Corp", "Acme Labs", "Test Office",
                                   "Sample GmbH"};

struct fill {
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE session;
    EVP_PKEY *issuer_key;
    X509 *issuer;
    EVP_PKEY *subject_keys[N_SUBJECT_KEYS];
    time_t now;
    int all_valid; /* TC_BENCH_FILL_VALID set: every certificate valid, none within 30 days */
    unsigned long certs;
    unsigned long keys;
};

/* The codes this program can plausibly meet, so errors read CKR_PIN_INCORRECT, not 0xa0. */
static const struct {
    CK_RV rv;
    const char *name;
} rv_names[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
};

static const char *rv_name(CK_RV rv)
{
    size_t i;

    for (i = 0; i < sizeof rv_names / sizeof rv_names[0]; i++) {
        if (rv_names[i].rv == rv)
            return rv_names[i].name;
    }
    return "CKR_(other)";
}

static void p11_error(const char *what, CK_RV rv)
{
    fprintf(stderr, "fill: %s: %s (0x%lx)\n", what, rv_name(rv), (unsigned long)rv);
}

static void ossl_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "no OpenSSL error queued";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    fprintf(stderr, "fill: %s: %s\n", what, buf);
    ERR_clear_error();
}

/* splitmix64: a cheap, well-mixed deterministic generator, so the same COUNT always yields the
 * same token content (relative to "now"). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long v;

    *out = 0;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Reads the first line of PATH into pin (NUL-terminated, without the line ending). */
static int read_pin(const char *path, char *pin, size_t pin_size, size_t *pin_len)
{
    int ret = -1;
    FILE *fp = NULL;
    size_t n;

    *pin_len = 0;
    fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "fill: cannot open PIN file %s: %s\n", path, strerror(errno));
        goto out;
    }
    setvbuf(fp, NULL, _IONBF, 0); /* no stdio buffer holding a copy of the PIN */
    n = fread(pin, 1, pin_size - 1, fp);
    if (ferror(fp)) {
        fprintf(stderr, "fill: cannot read PIN file %s\n", path);
        goto out;
    }
    pin[n] = '\0';
    n = strcspn(pin, "\r\n");
    if (n == pin_size - 1 || n == 0) {
        fprintf(stderr, "fill: PIN file %s: PIN empty or longer than %d bytes\n", path,
                MAX_PIN - 2);
        goto out;
    }
    OPENSSL_cleanse(pin + n, pin_size - n);
    *pin_len = n;
    ret = 0;
out:
    if (fp != NULL)
        fclose(fp);
    return ret;
}

static int label_matches(const CK_UTF8CHAR *label, size_t size, const char *want)
{
    size_t len = size;

    /* Token labels are blank-padded, sometimes NUL-padded. */
    while (len > 0 && (label[len - 1] == ' ' || label[len - 1] == '\0'))
        len--;
    return len == strlen(want) && memcmp(label, want, len) == 0;
}

static int open_session(CK_FUNCTION_LIST_PTR f, const char *token_label, const char *pin_file,
                        CK_SESSION_HANDLE *session)
{
    int ret = -1;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot = 0;
    int found = 0;
    char pin[MAX_PIN];
    size_t pin_len = 0;
    CK_RV rv;

    *session = CK_INVALID_HANDLE;
    rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK) {
        p11_error("C_GetSlotList", rv);
        goto out;
    }
    if (n == 0 || n > 4096) {
        fprintf(stderr, "fill: module reports %lu slots with a token\n", (unsigned long)n);
        goto out;
    }
    slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        goto out;
    rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK) {
        p11_error("C_GetSlotList", rv);
        goto out;
    }
    for (i = 0; i < n && !found; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (label_matches(ti.label, sizeof ti.label, token_label)) {
            slot = slots[i];
            found = 1;
        }
    }
    if (!found) {
        fprintf(stderr, "fill: no token labelled \"%.32s\"\n", token_label);
        goto out;
    }
    if (ti.flags & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)) {
        fprintf(stderr, "fill: user PIN is locked or on its final try; not logging in\n");
        goto out;
    }
    rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, session);
    if (rv != CKR_OK) {
        p11_error("C_OpenSession", rv);
        goto out;
    }
    if (read_pin(pin_file, pin, sizeof pin, &pin_len) != 0)
        goto out;
    rv = f->C_Login(*session, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin_len);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        p11_error("C_Login", rv);
        goto out;
    }
    ret = 0;
out:
    OPENSSL_cleanse(pin, sizeof pin);
    free(slots);
    return ret;
}

static EVP_PKEY *ec_keygen(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");

    if (key == NULL)
        ossl_error("EVP_EC_gen");
    return key;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        ossl_error("X509V3_EXT_conf_nid");
        return -1;
    }
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int set_serial(X509 *x, uint64_t seed)
{
    int ret = -1;
    unsigned char raw[16];
    BIGNUM *bn = NULL;
    uint64_t a = mix(seed), b = mix(seed ^ 0x5555aaaa5555aaaaULL);
    int i;

    for (i = 0; i < 8; i++) {
        raw[i] = (unsigned char)(a >> (8 * i));
        raw[8 + i] = (unsigned char)(b >> (8 * i));
    }
    /* Vary the length a little too (9 to 16 bytes), positive, no leading zero byte. */
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x01);
    bn = BN_bin2bn(raw, 9 + (int)(a % 8), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
        ossl_error("serial number");
        goto out;
    }
    ret = 0;
out:
    BN_free(bn);
    return ret;
}

static X509_NAME *make_name(const char *cn, const char *org, const char *ou)
{
    X509_NAME *name = X509_NAME_new();

    if (name == NULL)
        return NULL;
    if (!X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"DE", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1,
                                    0) ||
        (ou != NULL && !X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
                                                   (const unsigned char *)ou, -1, -1, 0)) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0)) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

static int make_issuer(struct fill *fl)
{
    int ret = -1;
    X509_NAME *name = NULL;
    X509 *x = NULL;

    fl->issuer_key = ec_keygen();
    if (fl->issuer_key == NULL)
        goto out;
    x = X509_new();
    name = make_name("tokencert bench issuing CA", "tokencert bench", NULL);
    if (x == NULL || name == NULL || !X509_set_version(x, 2) || set_serial(x, UINT64_MAX) != 0 ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        X509_time_adj_ex(X509_getm_notBefore(x), -3650, 0, &fl->now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, &fl->now) == NULL ||
        !X509_set_pubkey(x, fl->issuer_key)) {
        ossl_error("issuer certificate");
        goto out;
    }
    if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") != 0)
        goto out;
    if (X509_sign(x, fl->issuer_key, EVP_sha256()) == 0) {
        ossl_error("X509_sign (issuer)");
        goto out;
    }
    fl->issuer = x;
    x = NULL;
    ret = 0;
out:
    X509_NAME_free(name);
    X509_free(x);
    return ret;
}

/* Chooses notBefore/notAfter for certificate idx: ~10% expired, ~10% expiring within 30
 * days, the rest valid for months to two years; with all_valid, all of them like the rest (the
 * lifecycle benchmark's credentials, none of which may be due). */
static void validity(const struct fill *fl, unsigned long idx, time_t *not_before,
                     time_t *not_after)
{
    uint64_t r = mix(idx * 2654435761ULL + 17);
    unsigned bucket = (unsigned)(r % 100);
    long jitter = (long)((r >> 8) % DAY);

    if (fl->all_valid) {
        /* 31 to 330 days left: shorter than what a renewal brings (a year), so that a renewed
         * certificate, not the filled one, is the credential's newest. */
        *not_after = fl->now + (long)(31 + (r >> 20) % 300) * DAY + jitter;
        *not_before = *not_after - 365 * DAY;
        return;
    }
    if (bucket < 10) {
        *not_after = fl->now - (long)(1 + (r >> 20) % 730) * DAY - jitter;
        *not_before = *not_after - 365 * DAY;
    } else if (bucket < 20) {
        *not_after = fl->now + (long)((r >> 20) % 30) * DAY + jitter + 3600;
        *not_before = *not_after - 365 * DAY;
    } else {
        *not_after = fl->now + (long)(31 + (r >> 20) % 700) * DAY + jitter;
        *not_before = fl->now - (long)((r >> 40) % 365) * DAY - jitter;
    }
}

static X509 *issue(struct fill *fl, unsigned long idx, EVP_PKEY *subject_key)
{
    X509 *ret = NULL;
    X509 *x = NULL;
    X509_NAME *name = NULL;
    char cn[64], ou[32], san[80];
    time_t nb, na;
    uint64_t r = mix(idx ^ 0x0123456789abcdefULL);

    snprintf(cn, sizeof cn, "bench user %06lu", idx);
    snprintf(ou, sizeof ou, "Unit %u", (unsigned)(r % 37));
    snprintf(san, sizeof san, "email:user%06lu@bench.example", idx);
    validity(fl, idx, &nb, &na);

    x = X509_new();
    name = make_name(cn, orgs[(r >> 8) % (sizeof orgs / sizeof orgs[0])],
                     (r >> 16) % 3 == 0 ? NULL : ou);
    if (x == NULL || name == NULL || !X509_set_version(x, 2) || set_serial(x, idx + 1) != 0 ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, X509_get_subject_name(fl->issuer)) ||
        ASN1_TIME_set(X509_getm_notBefore(x), nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL || !X509_set_pubkey(x, subject_key)) {
        ossl_error("certificate fields");
        goto out;
    }
    if (add_ext(x, fl->issuer, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, fl->issuer, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(x, fl->issuer, NID_ext_key_usage, "clientAuth,emailProtection") != 0 ||
        add_ext(x, fl->issuer, NID_subject_alt_name, san) != 0 ||
        add_ext(x, fl->issuer, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, fl->issuer, NID_authority_key_identifier, "keyid") != 0)
        goto out;
    if (X509_sign(x, fl->issuer_key, EVP_sha256()) == 0) {
        ossl_error("X509_sign");
        goto out;
    }
    ret = x;
    x = NULL;
out:
    X509_NAME_free(name);
    X509_free(x);
    return ret;
}

static void make_id(unsigned long idx, unsigned char id[ID_LEN])
{
    uint64_t v = 0x7463000000000000ULL | (uint64_t)idx; /* "tc" + index */
    int i;

    for (i = 0; i < ID_LEN; i++)
        id[i] = (unsigned char)(v >> (8 * (ID_LEN - 1 - i)));
}

/* Generates an EC P-256 key pair on the token and returns its public key as an EVP_PKEY. */
static EVP_PKEY *token_keygen(struct fill *fl, const unsigned char *id, const char *label)
{
    EVP_PKEY *ret = NULL;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG label_len = strlen(label);
    CK_ATTRIBUTE pub_tmpl[] = {
        {CKA_CLASS, &pub_class, sizeof pub_class},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &no, sizeof no},
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_ENCRYPT, &no, sizeof no},
        {CKA_WRAP, &no, sizeof no},
        {CKA_DERIVE, &no, sizeof no},
        {CKA_EC_PARAMS, (void *)p256_params, sizeof p256_params},
        {CKA_ID, (void *)id, ID_LEN},
        {CKA_LABEL, (void *)label, label_len},
    };
    CK_ATTRIBUTE priv_tmpl[] = {
        {CKA_CLASS, &priv_class, sizeof priv_class},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},
        {CKA_DECRYPT, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},
        {CKA_DERIVE, &no, sizeof no},
        {CKA_ID, (void *)id, ID_LEN},
        {CKA_LABEL, (void *)label, label_len},
    };
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    unsigned char point[MAX_EC_POINT];
    CK_ATTRIBUTE get = {CKA_EC_POINT, point, sizeof point};
    const unsigned char *raw = point;
    size_t raw_len;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM params[3];
    CK_RV rv;

    rv =
        fl->f->C_GenerateKeyPair(fl->session, &mech, pub_tmpl, sizeof pub_tmpl / sizeof pub_tmpl[0],
                                 priv_tmpl, sizeof priv_tmpl / sizeof priv_tmpl[0], &pub, &priv);
    if (rv != CKR_OK) {
        p11_error("C_GenerateKeyPair", rv);
        goto out;
    }
    rv = fl->f->C_GetAttributeValue(fl->session, pub, &get, 1);
    if (rv != CKR_OK) {
        p11_error("C_GetAttributeValue(CKA_EC_POINT)", rv);
        goto out;
    }
    raw_len = get.ulValueLen;
    /* PKCS#11 says DER OCTET STRING around the uncompressed point; some tokens send it raw. */
    if (raw_len == 67 && point[0] == 0x04 && point[1] == 0x41) {
        raw += 2;
        raw_len -= 2;
    }
    if (raw_len != 65 || raw[0] != 0x04) {
        fprintf(stderr, "fill: unexpected CKA_EC_POINT (%zu bytes)\n", (size_t)get.ulValueLen);
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)raw, raw_len);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &ret, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        ossl_error("EVP_PKEY_fromdata");
        goto out;
    }
    fl->keys++;
out:
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

static int store_cert(struct fill *fl, X509 *x, const unsigned char *id, const char *label)
{
    int ret = -1;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char *der = NULL, *subj = NULL, *iss = NULL, *serial = NULL;
    int der_len, subj_len, iss_len, serial_len;
    CK_OBJECT_HANDLE obj;
    CK_RV rv;

    der_len = i2d_X509(x, &der);
    subj_len = i2d_X509_NAME(X509_get_subject_name(x), &subj);
    iss_len = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
    serial_len = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &serial);
    if (der_len <= 0 || subj_len <= 0 || iss_len <= 0 || serial_len <= 0) {
        ossl_error("DER encoding");
        goto out;
    }
    {
        CK_ATTRIBUTE tmpl[] = {
            {CKA_CLASS, &cls, sizeof cls},        {CKA_CERTIFICATE_TYPE, &ct, sizeof ct},
            {CKA_TOKEN, &yes, sizeof yes},        {CKA_PRIVATE, &no, sizeof no},
            {CKA_MODIFIABLE, &yes, sizeof yes},   {CKA_LABEL, (void *)label, strlen(label)},
            {CKA_ID, (void *)id, ID_LEN},         {CKA_SUBJECT, subj, (CK_ULONG)subj_len},
            {CKA_ISSUER, iss, (CK_ULONG)iss_len}, {CKA_SERIAL_NUMBER, serial, (CK_ULONG)serial_len},
            {CKA_VALUE, der, (CK_ULONG)der_len},
        };

        rv = fl->f->C_CreateObject(fl->session, tmpl, sizeof tmpl / sizeof tmpl[0], &obj);
        if (rv != CKR_OK) {
            p11_error("C_CreateObject(certificate)", rv);
            goto out;
        }
    }
    fl->certs++;
    ret = 0;
out:
    OPENSSL_free(der);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    OPENSSL_free(serial);
    return ret;
}

static int fill_one(struct fill *fl, unsigned long idx, int with_key)
{
    int ret = -1;
    unsigned char id[ID_LEN];
    char label[48];
    EVP_PKEY *token_key = NULL;
    EVP_PKEY *subject_key;
    X509 *x = NULL;

    make_id(idx, id);
    snprintf(label, sizeof label, "bench %06lu", idx);
    if (with_key) {
        token_key = token_keygen(fl, id, label);
        if (token_key == NULL)
            goto out;
        subject_key = token_key;
    } else {
        subject_key = fl->subject_keys[idx % N_SUBJECT_KEYS];
    }
    x = issue(fl, idx, subject_key);
    if (x == NULL || store_cert(fl, x, id, label) != 0)
        goto out;
    ret = 0;
out:
    X509_free(x);
    EVP_PKEY_free(token_key);
    return ret;
}

static double elapsed(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    int ret = 1;
    void *module = NULL;
    CK_C_GetFunctionList get_list;
    struct fill fl;
    unsigned long count = 0, keys_every = 0, i;
    int initialized = 0;
    struct timespec t0;
    CK_RV rv;
    int k;

    memset(&fl, 0, sizeof fl);
    fl.session = CK_INVALID_HANDLE;
    if (argc != 6 || parse_ulong(argv[4], MAX_COUNT, &count) != 0 ||
        parse_ulong(argv[5], MAX_COUNT, &keys_every) != 0) {
        fprintf(stderr,
                "usage: %s MODULE TOKEN-LABEL PIN-FILE COUNT KEYS_EVERY\n"
                "  creates COUNT certificates; every KEYS_EVERY-th (0: none) gets an "
                "EC P-256 key pair generated on the token\n",
                argc > 0 ? argv[0] : "fill");
        ret = 2;
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fl.now = time(NULL);
    fl.all_valid = getenv("TC_BENCH_FILL_VALID") != NULL;

    module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        fprintf(stderr, "fill: dlopen %s: %s\n", argv[1], dlerror());
        goto out;
    }
    get_list = (CK_C_GetFunctionList)dlsym(module, "C_GetFunctionList");
    if (get_list == NULL) {
        fprintf(stderr, "fill: %s has no C_GetFunctionList\n", argv[1]);
        goto out;
    }
    rv = get_list(&fl.f);
    if (rv != CKR_OK || fl.f == NULL) {
        p11_error("C_GetFunctionList", rv);
        goto out;
    }
    rv = fl.f->C_Initialize(NULL);
    if (rv != CKR_OK) {
        p11_error("C_Initialize", rv);
        goto out;
    }
    initialized = 1;
    if (open_session(fl.f, argv[2], argv[3], &fl.session) != 0)
        goto out;

    if (make_issuer(&fl) != 0)
        goto out;
    for (k = 0; k < N_SUBJECT_KEYS; k++) {
        fl.subject_keys[k] = ec_keygen();
        if (fl.subject_keys[k] == NULL)
            goto out;
    }
    for (i = 0; i < count; i++) {
        /* Index 0 gets a key when keys are wanted, so small fills have at least one. */
        int with_key = keys_every != 0 && i % keys_every == 0;

        if (fill_one(&fl, i, with_key) != 0) {
            fprintf(stderr, "fill: failed at certificate %lu\n", i);
            goto out;
        }
    }
    ret = 0;
out:
    if (fl.f != NULL && fl.session != CK_INVALID_HANDLE) {
        fl.f->C_Logout(fl.session);
        fl.f->C_CloseSession(fl.session);
    }
    if (initialized)
        fl.f->C_Finalize(NULL);
    if (module != NULL)
        dlclose(module);
    for (k = 0; k < N_SUBJECT_KEYS; k++)
        EVP_PKEY_free(fl.subject_keys[k]);
    X509_free(fl.issuer);
    EVP_PKEY_free(fl.issuer_key);
    if (ret == 0)
        printf("fill: %lu certificates, %lu key pairs in %.2f s\n", fl.certs, fl.keys,
               elapsed(&t0));
    return ret;
}
