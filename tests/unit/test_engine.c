/* test_engine.c — unit tests of the lifecycle engine (src/renew/engine.c) through its public API
 * (tokencert_engine_*), against the mock token (tests/mock) and a CA the test plays itself.
 *
 * Each test builds its world in a temporary directory: a configuration file read with
 * tokencert_config_load, a state directory, the manual CA's directory, and a test CA (OpenSSL)
 * whose certificates it puts on the mock token beside keys it made, or signs the requests the
 * engine wrote. Every step runs in an engine of its own, as the CLI's runs do. Time moves with the
 * test clock (TOKENCERT_TEST_CLOCK, TOKENCERT_TEST_NOW). Where a CA has to say no, the scripted
 * backend below answers in place of the manual one (tc_ca_backend_set_test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "enroll/enroll.h"
#include "mock-module.h"
#include "tokencert.h"

#define DAY       86400LL
#define MAX_CREDS 20

typedef struct {
    char dir[64];
    char conf[128], state[128], ca_dir[128], ca_file[128];
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    long serial;
    char problems[4096];    /* the engine's PROBLEM lines of the last step, for failure messages */
    tokencert_engine *open; /* the engine a failed assertion left open, closed by the teardown */
    int run_pin; /* the run's PIN source (as enroll's --pin-source): for credentials enroll made */
} world;

static world W;

/* ---- the clock -------------------------------------------------------------------------- */

/* Real time plus offset seconds for everything the library asks from here on. */
static void clock_at(long long offset)
{
    char v[32];

    snprintf(v, sizeof v, "+%llds", offset);
    setenv("TOKENCERT_TEST_NOW", v, 1);
    tc_clock_reread();
}

/* ---- the world -------------------------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* A certificate for key, valid from nb to na, issued by the test CA (or by itself when the CA is
 * being made). */
static X509 *make_cert(EVP_PKEY *key, const X509_NAME *subject, time_t nb, time_t na, int ca)
{
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ++W.serial), 1);
    assert_int_equal(X509_set_subject_name(x, subject), 1);
    assert_int_equal(X509_set_issuer_name(x, ca ? subject : X509_get_subject_name(W.ca_cert)), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_set_ctx(&v3, ca ? x : W.ca_cert, x, NULL, NULL, 0);
    ext =
        X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    if (ca) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, ca ? key : W.ca_key, EVP_sha256()) > 0);
    return x;
}

static X509_NAME *cn_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();

    assert_non_null(n);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
    return n;
}

/* The configuration: the manual CA "m" trusting the test CA, and n credentials "c00".. on the
 * mock token, labelled as named, with the mock's PIN from the environment. */
static void write_config(size_t n)
{
    char *text, *next;
    size_t i;

    text = tc_asprintf("cas = ( { name = \"m\"; protocol = \"manual\"; dir = \"%s\";\n"
                       "          ca_file = \"%s\"; } );\n"
                       "credentials = (\n",
                       W.ca_dir, W.ca_file);
    for (i = 0; text != NULL && i < n; i++) {
        next =
            tc_asprintf("%s  { name = \"c%02zu\"; token = \"pkcs11:token=%s\"; ca = \"m\";\n"
                        "    key_type = \"ec:p256\"; pin_source = \"env:TC_TEST_MOCK_PIN\"; }%s\n",
                        text, i, "tokencert%20mock", i + 1 < n ? "," : "");
        free(text);
        text = next;
    }
    next = text != NULL ? tc_asprintf("%s);\n", text) : NULL;
    free(text);
    assert_non_null(next);
    write_text(W.conf, next);
    free(next);
}

static int world_setup(void **state)
{
    X509_NAME *name;
    FILE *f;
    time_t now;

    (void)state;
    memset(&W, 0, sizeof W);
    snprintf(W.dir, sizeof W.dir, "/tmp/tc-engine-XXXXXX");
    if (mkdtemp(W.dir) == NULL)
        return -1;
    snprintf(W.conf, sizeof W.conf, "%s/tokencert.conf", W.dir);
    snprintf(W.state, sizeof W.state, "%s/state", W.dir);
    snprintf(W.ca_dir, sizeof W.ca_dir, "%s/ca", W.dir);
    snprintf(W.ca_file, sizeof W.ca_file, "%s/ca.pem", W.dir);
    if (mkdir(W.ca_dir, 0700) != 0)
        return -1;
    tc_mock_reset();
    clock_at(0);
    now = tc_now();
    W.ca_key = EVP_EC_gen("P-256");
    name = cn_name("tokencert test CA");
    W.ca_cert = make_cert(W.ca_key, name, now - 1000 * DAY, now + 3000 * DAY, 1);
    X509_NAME_free(name);
    f = fopen(W.ca_file, "w");
    if (f == NULL || PEM_write_X509(f, W.ca_cert) != 1 || fclose(f) != 0)
        return -1;
    write_config(1);
    return 0;
}

/* nftw callback: removes what it is handed (depth first, symlinks not followed). */
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int world_teardown(void **state)
{
    (void)state;
    /* A failed assertion leaves its run open: closed here, so that the next test starts with the
     * module finalised as a run leaves it. */
    tokencert_engine_close(W.open);
    tc_ca_backend_set_test(NULL);
    tc_mock_reset();
    /* Without a shell (the directory is mkdtemp's, but a test has no business with one). */
    if (nftw(W.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", W.dir);
    EVP_PKEY_free(W.ca_key);
    X509_free(W.ca_cert);
    return 0;
}

/* ---- the mock token --------------------------------------------------------------------- */

/* The key pair of k on the mock token, as a token keeps it (private part sensitive, never
 * extractable, its scalar where the mock signs with it), under label with CKA_ID id. */
static void put_key(EVP_PKEY *k, const char *label, unsigned char id)
{
    static const CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY;
    static const CK_KEY_TYPE type = CKK_EC;
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
    unsigned char point[67], scalar[32];
    size_t point_len = 0;
    BIGNUM *d = NULL;

    assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                     point + 2, sizeof point - 2, &point_len),
                     1);
    point[0] = 0x04;
    point[1] = (unsigned char)point_len;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
    assert_int_equal(BN_bn2binpad(d, scalar, sizeof scalar), sizeof scalar);
    BN_clear_free(d);
    {
        CK_ATTRIBUTE a[] = {
            {CKA_CLASS, (void *)&priv, sizeof priv},
            {CKA_KEY_TYPE, (void *)&type, sizeof type},
            {CKA_TOKEN, (void *)&yes, sizeof yes},
            {CKA_PRIVATE, (void *)&yes, sizeof yes},
            {CKA_SENSITIVE, (void *)&yes, sizeof yes},
            {CKA_EXTRACTABLE, (void *)&no, sizeof no},
            {CKA_SIGN, (void *)&yes, sizeof yes},
            {CKA_ID, &id, 1},
            {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
            {CKA_EC_PARAMS, (void *)p256, sizeof p256},
            {CKA_VALUE, scalar, sizeof scalar},
        };
        CK_ATTRIBUTE b[] = {
            {CKA_CLASS, (void *)&pub, sizeof pub},
            {CKA_KEY_TYPE, (void *)&type, sizeof type},
            {CKA_TOKEN, (void *)&yes, sizeof yes},
            {CKA_ID, &id, 1},
            {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
            {CKA_EC_PARAMS, (void *)p256, sizeof p256},
            {CKA_EC_POINT, point, (CK_ULONG)point_len + 2},
        };
        assert_int_not_equal(tc_mock_add_object(a, sizeof a / sizeof a[0]), 0);
        assert_int_not_equal(tc_mock_add_object(b, sizeof b / sizeof b[0]), 0);
    }
}

static void put_cert(const X509 *x, const char *label, unsigned char id)
{
    static const CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    static const CK_CERTIFICATE_TYPE type = CKC_X_509;
    static const CK_BBOOL yes = CK_TRUE;
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);

    assert_true(len > 0);
    {
        CK_ATTRIBUTE a[] = {
            {CKA_CLASS, (void *)&cls, sizeof cls},
            {CKA_CERTIFICATE_TYPE, (void *)&type, sizeof type},
            {CKA_TOKEN, (void *)&yes, sizeof yes},
            {CKA_ID, &id, 1},
            {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
            {CKA_VALUE, der, (CK_ULONG)len},
        };
        assert_int_not_equal(tc_mock_add_object(a, sizeof a / sizeof a[0]), 0);
    }
    OPENSSL_free(der);
}

/* A credential on the mock: a new key (returned) and its certificate from the test CA, valid from
 * nb to na; its serial in *serial when asked. */
static EVP_PKEY *put_credential_at(const char *label, unsigned char id, time_t nb, time_t na,
                                   long *serial)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_NAME *n;
    X509 *x;
    char cn[64];

    assert_non_null(k);
    snprintf(cn, sizeof cn, "%s office", label);
    n = cn_name(cn);
    x = make_cert(k, n, nb, na, 0);
    if (serial != NULL)
        *serial = W.serial;
    put_key(k, label, id);
    put_cert(x, label, id);
    X509_NAME_free(n);
    X509_free(x);
    return k;
}

/* The same, valid from now + from_days to now + to_days. */
static EVP_PKEY *put_credential(const char *label, unsigned char id, double from_days,
                                double to_days, long *serial)
{
    time_t now = tc_now();

    return put_credential_at(label, id, now + (time_t)(from_days * DAY),
                             now + (time_t)(to_days * DAY), serial);
}

/* Entries in dir other than . and .. */
static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static unsigned long count_class(const char *label, CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)}};
    return tc_mock_count_objects(t, 2);
}

/* ---- the engine ------------------------------------------------------------------------- */

static void sink(void *data, const tokencert_event *ev)
{
    size_t used = strlen(W.problems);

    (void)data;
    if (getenv("TC_TEST_VERBOSE") != NULL)
        fprintf(stderr, "  [%d] %s\n", (int)ev->kind, ev->message);
    if (ev->kind == TOKENCERT_EV_PROBLEM && used + 2 < sizeof W.problems)
        snprintf(W.problems + used, sizeof W.problems - used, "%s\n", ev->message);
}

/* One run: the configuration read, the engine opened on the test's state directory with the mock
 * module. */
static tokencert_engine *engine_open(void)
{
    tokencert_config_error *errs = NULL;
    tokencert_config *cfg = NULL;
    tokencert_engine_opts opts;
    tokencert_engine *e = NULL;
    tokencert_ctx *ctx = NULL;
    size_t n_errs = 0;

    W.problems[0] = '\0';
    assert_int_equal(tokencert_ctx_new(&ctx), TC_OK);
    if (tokencert_config_load(ctx, W.conf, &cfg, &errs, &n_errs) != TC_OK)
        fail_msg("configuration: %s", n_errs > 0 ? errs[0].message : tokencert_ctx_error(ctx));
    tokencert_config_errors_free(errs, n_errs);
    tokencert_ctx_free(ctx);
    memset(&opts, 0, sizeof opts);
    opts.state_dir = W.state;
    opts.module = TC_MOCK_MODULE;
    opts.on_event = sink;
    if (W.run_pin)
        opts.login.pin_source = "env:TC_TEST_MOCK_PIN";
    assert_int_equal(
        tokencert_engine_open(cfg, &opts, TOKENCERT_ENGINE_CREATE | TOKENCERT_ENGINE_LOCK, &e),
        TC_OK);
    W.open = e;
    return e;
}

static void engine_close(tokencert_engine *e)
{
    W.open = NULL;
    tokencert_engine_close(e);
}

/* A renew (or poll, flags ~0u) of credential i in a run of its own; the outcome in *o. */
static tokencert_err step(size_t i, unsigned flags, tokencert_outcome *o)
{
    tokencert_engine *e = engine_open();
    tokencert_err err;

    *o = TOKENCERT_OUTCOME_FAILED;
    err = flags == ~0u ? tokencert_engine_poll(e, i, o) : tokencert_engine_renew(e, i, flags, o);
    engine_close(e);
    return err;
}

#define assert_step(i, flags, want_err, want_outcome)                                              \
    do {                                                                                           \
        tokencert_outcome o_;                                                                      \
        tokencert_err e_ = step((i), (flags), &o_);                                                \
        if (e_ != (want_err) || o_ != (want_outcome))                                              \
            fail_msg("got %s / %s, wanted %s / %s; the engine said:\n%s", tokencert_strerror(e_),  \
                     tokencert_outcome_name(o_), tokencert_strerror(want_err),                     \
                     tokencert_outcome_name(want_outcome), W.problems);                            \
    } while (0)

#define POLL ~0u

/* Credential i's status in a run of its own; the engine stays open for the strings (closed by
 * status_done). */
static tokencert_engine *status_of(size_t i, tokencert_status *s)
{
    tokencert_engine *e = engine_open();

    assert_int_equal(tokencert_engine_status(e, i, s), TC_OK);
    return e;
}

static void status_done(tokencert_engine *e, tokencert_status *s)
{
    tokencert_status_clear(s);
    engine_close(e);
}

/* The serial of certificate number n as the library writes it (uppercase hex, whole bytes). */
static void serial_hex(long n, char *out, size_t cap)
{
    int len = snprintf(out, cap, "%lX", (unsigned long)n);

    if (len % 2 != 0)
        snprintf(out, cap, "0%lX", (unsigned long)n);
}

/* ---- (1) due dates ---------------------------------------------------------------------- */

/* Not due: the renew of a timer does nothing and says when; once the test clock passes
 * tokencert_due_at the same renew starts a renewal. */
static void not_due_until_due_at(void **state)
{
    time_t now = tc_now(), nb = now - 10 * DAY, na = now + 355 * DAY, due;
    tokencert_status s;
    tokencert_engine *e;
    EVP_PKEY *k;

    (void)state;
    k = put_credential_at("c00", 1, nb, na, NULL);
    due = tokencert_due_at(NULL, nb, na); /* the configuration's defaults: 30 days, 0.1 */
    assert_int_equal(due, na - (time_t)(36.5 * DAY));
    assert_step(0, 0, TC_OK, TOKENCERT_OUTCOME_NOT_DUE);
    e = status_of(0, &s);
    assert_true(s.has_active);
    assert_int_equal(s.renewal_due, due);
    assert_false(s.due);
    assert_false(s.has_request);
    status_done(e, &s);
    /* Nothing was asked of the CA, nothing made on the token. */
    assert_int_equal(files_in(W.ca_dir), 0);
    assert_int_equal(count_class("c00", CKO_PRIVATE_KEY), 1);

    /* A minute before: still not due (the offset is taken from the real time now: the test has
     * been running for a while, longer under a sanitizer). */
    clock_at((long long)(due - time(NULL)) - 60);
    assert_step(0, 0, TC_OK, TOKENCERT_OUTCOME_NOT_DUE);
    /* Past it: due, and the renew starts (the manual CA holds the request). */
    clock_at((long long)(due - now) + 3600);
    e = status_of(0, &s);
    assert_true(s.due);
    assert_int_equal(s.renewal_due, due);
    status_done(e, &s);
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(count_class("c00", CKO_PRIVATE_KEY), 2);
    assert_int_equal(files_in(W.ca_dir), 1); /* the request */
    EVP_PKEY_free(k);
}

/* FORCE renews whatever the dates. */
static void force_renews_when_not_due(void **state)
{
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -10, 355, NULL);
    assert_step(0, 0, TC_OK, TOKENCERT_OUTCOME_NOT_DUE);
    assert_step(0, TOKENCERT_RENEW_FORCE, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    EVP_PKEY_free(k);
}

/* ---- (2) reconcile ---------------------------------------------------------------------- */

/* A certificate put on the token under the credential's label is adopted; a newer valid one
 * imported later (another key, as a portal's renewal) becomes active, the older superseded. */
static void reconcile_adopts_and_moves(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    EVP_PKEY *k0, *k1;
    long first, second;
    char hex[32];

    (void)state;
    k0 = put_credential("c00", 1, -100, 265, &first);
    assert_step(0, 0, TC_OK, TOKENCERT_OUTCOME_NOT_DUE);
    e = status_of(0, &s);
    assert_true(s.has_active);
    assert_int_equal(s.active.generation, 1);
    assert_true(s.active.on_token);
    serial_hex(first, hex, sizeof hex);
    assert_string_equal(s.active.serial, hex);
    assert_int_equal(s.n_gens, 1);
    assert_int_equal(s.gens[0].number, 1);
    assert_int_equal(s.gens[0].state, TOKENCERT_GEN_ACTIVE);
    assert_true(s.gens[0].on_token);
    assert_string_equal(s.gens[0].key_id, "01");
    status_done(e, &s);

    k1 = put_credential("c00", 2, -1, 364, &second);
    assert_step(0, 0, TC_OK, TOKENCERT_OUTCOME_NOT_DUE);
    e = status_of(0, &s);
    assert_true(s.has_active);
    serial_hex(second, hex, sizeof hex);
    assert_string_equal(s.active.serial, hex);
    assert_int_equal(s.active.generation, 2);
    assert_true(s.active.on_token);
    assert_int_equal(s.n_gens, 2);
    assert_int_equal(s.gens[0].state, TOKENCERT_GEN_SUPERSEDED);
    assert_int_equal(s.gens[1].state, TOKENCERT_GEN_ACTIVE);
    assert_string_equal(s.gens[1].key_id, "02");
    assert_true(s.gens[0].on_token && s.gens[1].on_token);
    assert_false(s.due);
    status_done(e, &s);
    /* Adopting read the token; it changed nothing there. */
    assert_int_equal(count_class("c00", CKO_CERTIFICATE), 2);
    assert_int_equal(tc_mock_logins(), 0);
    EVP_PKEY_free(k0);
    EVP_PKEY_free(k1);
}

/* A newer certificate that is not valid yet (issued to start when the current one ends) does not
 * become active before it starts: the active generation is the one the library's rule calls
 * current, as the PKCS#11 module shows applications. Once it starts, it does. */
static void reconcile_waits_for_not_yet_valid(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    EVP_PKEY *k0, *k1;
    long first, second;
    char hex[32];

    (void)state;
    k0 = put_credential("c00", 1, -100, 200, &first);
    k1 = put_credential("c00", 2, 10, 400, &second);
    assert_step(0, 0, TC_OK, TOKENCERT_OUTCOME_NOT_DUE);
    e = status_of(0, &s);
    assert_true(s.has_active);
    serial_hex(first, hex, sizeof hex);
    assert_string_equal(s.active.serial, hex);
    status_done(e, &s);

    clock_at(11 * DAY);
    assert_step(0, 0, TC_OK, TOKENCERT_OUTCOME_NOT_DUE);
    e = status_of(0, &s);
    assert_true(s.has_active);
    serial_hex(second, hex, sizeof hex);
    assert_string_equal(s.active.serial, hex);
    status_done(e, &s);
    EVP_PKEY_free(k0);
    EVP_PKEY_free(k1);
}

/* ---- (3) switch-over through the manual CA ----------------------------------------------- */

static char *ca_path_of(const char *name, long long request, const char *ext)
{
    return tc_asprintf("%s/%s-%lld.%s", W.ca_dir, name, request, ext);
}

static char *ca_path(long long request, const char *ext)
{
    return ca_path_of("c00", request, ext);
}

/* The test CA signs the request the engine wrote for credential name: its key and subject, valid
 * for a year. */
static void sign_request_of(const char *name, long long request, long *serial)
{
    char *csr_path = ca_path_of(name, request, "csr"), *crt_path = ca_path_of(name, request, "crt");
    time_t now = tc_now();
    X509_REQ *req = NULL;
    EVP_PKEY *pub;
    X509 *x;
    FILE *f;

    assert_non_null(csr_path);
    f = fopen(csr_path, "r");
    if (f == NULL)
        fail_msg("the engine wrote no request %s", csr_path);
    req = PEM_read_X509_REQ(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(req);
    pub = X509_REQ_get_pubkey(req);
    assert_non_null(pub);
    assert_int_equal(X509_REQ_verify(req, pub), 1); /* the token's key signed it */
    x = make_cert(pub, X509_REQ_get_subject_name(req), now - 3600, now + 365 * DAY, 0);
    *serial = W.serial;
    f = fopen(crt_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    assert_int_equal(fclose(f), 0);
    X509_free(x);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    free(csr_path);
    free(crt_path);
}

static void sign_request(long long request, long *serial)
{
    sign_request_of("c00", request, serial);
}

static void manual_renewal_switch_over_prune(void **state)
{
    time_t now = tc_now(), old_end = now + 20 * DAY;
    tokencert_status s;
    tokencert_engine *e;
    long long request;
    long old_serial, new_serial;
    size_t pruned = 0;
    char hex[32];
    EVP_PKEY *k;

    (void)state;
    /* 320 days, 20 left: due (32 days before its end). */
    k = put_credential("c00", 1, -300, 20, &old_serial);
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    e = status_of(0, &s);
    assert_true(s.has_request);
    assert_int_equal(s.request.state, TOKENCERT_RS_PENDING);
    request = s.request.id;
    assert_non_null(s.request.ca_request_id);
    assert_true(s.has_active);
    assert_int_equal(s.active.generation, 1); /* the old one, adopted, works on */
    status_done(e, &s);
    {
        char *csr = ca_path(request, "csr");
        assert_int_equal(access(csr, R_OK), 0);
        free(csr);
    }
    /* The new key is on the token beside the old one. */
    assert_int_equal(count_class("c00", CKO_PRIVATE_KEY), 2);
    assert_int_equal(count_class("c00", CKO_CERTIFICATE), 1);

    /* Not issued yet: still pending. */
    assert_step(0, POLL, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    sign_request(request, &new_serial);
    assert_step(0, POLL, TC_OK, TOKENCERT_OUTCOME_RENEWED);

    e = status_of(0, &s);
    assert_false(s.has_request);
    assert_true(s.has_active);
    assert_int_equal(s.active.generation, 2);
    serial_hex(new_serial, hex, sizeof hex);
    assert_string_equal(s.active.serial, hex);
    assert_true(s.active.on_token);
    assert_int_equal(s.n_gens, 2);
    assert_int_equal(s.gens[0].state, TOKENCERT_GEN_SUPERSEDED);
    assert_true(s.gens[0].on_token);
    assert_int_equal(s.gens[1].state, TOKENCERT_GEN_ACTIVE);
    assert_true(s.gens[1].on_token);
    assert_false(s.due);
    status_done(e, &s);
    assert_int_equal(count_class("c00", CKO_CERTIFICATE), 2);
    assert_int_equal(count_class("c00", CKO_PRIVATE_KEY), 2);
    assert_int_equal(count_class("c00", CKO_PUBLIC_KEY), 2);
    /* Nothing more to poll. */
    assert_step(0, POLL, TC_OK, TOKENCERT_OUTCOME_NOTHING_PENDING);

    /* Before the old one expires prune keeps it. */
    e = engine_open();
    assert_int_equal(tokencert_engine_prune(e, 0, 0, &pruned), TC_OK);
    assert_int_equal(pruned, 0);
    engine_close(e);
    assert_int_equal(count_class("c00", CKO_CERTIFICATE), 2);

    /* After: its certificate and its key go, the new generation stays. */
    clock_at((long long)(old_end - now) + 3600);
    e = engine_open();
    assert_int_equal(tokencert_engine_prune(e, 0, 0, &pruned), TC_OK);
    assert_int_equal(pruned, 1);
    engine_close(e);
    assert_int_equal(count_class("c00", CKO_CERTIFICATE), 1);
    assert_int_equal(count_class("c00", CKO_PRIVATE_KEY), 1);
    assert_int_equal(count_class("c00", CKO_PUBLIC_KEY), 1);
    e = status_of(0, &s);
    assert_int_equal(s.active.generation, 2);
    assert_string_equal(s.active.serial, hex);
    assert_int_equal(s.n_gens, 1); /* pruned generations are left out */
    status_done(e, &s);
    EVP_PKEY_free(k);
}

/* ---- (4) what the CA says: the scripted backend ----------------------------------------- */

/* Answers as the test scripts it, and counts the questions. */
static struct {
    tc_ca_outcome submit, poll;
    long long retry_after;
    const char *reason;
    int submits, polls;
    unsigned char *csr; /* the last request submitted (DER), which ISSUED answers sign */
    size_t csr_len;
} CA;

/* The test CA's certificate for the request submitted last: its key and subject, a year. */
static void scripted_issue(tc_ca_answer *ans)
{
    const unsigned char *p = CA.csr;
    X509_REQ *req;
    EVP_PKEY *pub;
    X509 *x;
    unsigned char *der = NULL;
    int len;

    assert_non_null(CA.csr);
    req = d2i_X509_REQ(NULL, &p, (long)CA.csr_len);
    assert_non_null(req);
    pub = X509_REQ_get_pubkey(req);
    assert_non_null(pub);
    x = make_cert(pub, X509_REQ_get_subject_name(req), tc_now() - 3600, tc_now() + 365 * DAY, 0);
    len = i2d_X509(x, &der);
    assert_true(len > 0);
    ans->cert = malloc((size_t)len);
    assert_non_null(ans->cert);
    memcpy(ans->cert, der, (size_t)len);
    ans->cert_len = (size_t)len;
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
}

static void scripted_answer(const tc_ca_call *call, tc_ca_outcome kind, tc_ca_answer *ans)
{
    ans->kind = kind;
    if (kind == TC_CA_PENDING) {
        ans->handle = call->handle != NULL ? tc_strdup(call->handle)
                                           : tc_asprintf("scripted-%lld", call->request);
        ans->retry_after = CA.retry_after;
    } else if (kind == TC_CA_REJECTED || kind == TC_CA_ERROR) {
        ans->reason = tc_strdup(CA.reason != NULL ? CA.reason : "scripted");
    } else if (kind == TC_CA_ISSUED) {
        scripted_issue(ans);
    }
}

static void scripted_submit(const tc_ca_call *call, const unsigned char *csr, size_t csr_len,
                            tc_ca_answer *ans)
{
    CA.submits++;
    free(CA.csr);
    CA.csr = malloc(csr_len);
    assert_non_null(CA.csr);
    memcpy(CA.csr, csr, csr_len);
    CA.csr_len = csr_len;
    scripted_answer(call, CA.submit, ans);
}

static void scripted_poll(const tc_ca_call *call, tc_ca_answer *ans)
{
    CA.polls++;
    scripted_answer(call, CA.poll, ans);
}

/* In place of the manual backend, which the configuration's CA "m" names. */
static const tc_ca_backend scripted = {"manual", scripted_submit, scripted_poll, NULL};

static int scripted_setup(void **state)
{
    int ret = world_setup(state);

    memset(&CA, 0, sizeof CA);
    tc_ca_backend_set_test(&scripted);
    return ret;
}

static int scripted_teardown(void **state)
{
    free(CA.csr);
    memset(&CA, 0, sizeof CA);
    return world_teardown(state);
}

/* Rejected: the outcome and the status say so; the timer does not ask the CA again, a forced
 * (named) renew does. */
static void rejected_not_asked_again_unattended(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    long long rejected_id;
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -300, 20, NULL); /* due */
    CA.submit = TC_CA_REJECTED;
    CA.reason = "subject not allowed";
    assert_step(0, 0, TC_ERR_REJECTED, TOKENCERT_OUTCOME_REJECTED);
    assert_int_equal(CA.submits, 1);
    e = status_of(0, &s);
    assert_false(s.has_request);
    assert_true(s.has_rejected);
    assert_true(s.rejected.id > 0);
    assert_non_null(s.rejected.reason);
    assert_string_equal(s.rejected.reason, "subject not allowed");
    assert_true(s.rejected.on > 0);
    assert_non_null(strstr(s.next_action, "rejected"));
    rejected_id = s.rejected.id;
    status_done(e, &s);

    /* The timer's renew: rejected again, without asking. */
    assert_step(0, 0, TC_ERR_REJECTED, TOKENCERT_OUTCOME_REJECTED);
    assert_int_equal(CA.submits, 1);
    assert_int_equal(CA.polls, 0);
    /* Nothing pending to poll either. */
    assert_step(0, POLL, TC_OK, TOKENCERT_OUTCOME_NOTHING_PENDING);
    assert_int_equal(CA.submits + CA.polls, 1);

    /* Named: asked anew. */
    CA.submit = TC_CA_PENDING;
    assert_step(0, TOKENCERT_RENEW_FORCE, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.submits, 2);
    e = status_of(0, &s);
    assert_true(s.has_request);
    assert_true(s.request.id > rejected_id);
    assert_false(s.has_rejected);
    status_done(e, &s);
    EVP_PKEY_free(k);
}

/* The key made for a request the CA rejected is removed by prune; the working credential stays. */
static void prune_removes_rejected_key(void **state)
{
    tokencert_engine *e;
    size_t pruned = 0;
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -300, 20, NULL);
    CA.submit = TC_CA_REJECTED;
    assert_step(0, 0, TC_ERR_REJECTED, TOKENCERT_OUTCOME_REJECTED);
    assert_int_equal(count_class("c00", CKO_PRIVATE_KEY), 2);
    assert_int_equal(count_class("c00", CKO_PUBLIC_KEY), 2);
    e = engine_open();
    assert_int_equal(tokencert_engine_prune(e, 0, 0, &pruned), TC_OK);
    engine_close(e);
    assert_int_equal(pruned, 0); /* no generation: the count is of generations */
    assert_int_equal(count_class("c00", CKO_PRIVATE_KEY), 1);
    assert_int_equal(count_class("c00", CKO_PUBLIC_KEY), 1);
    assert_int_equal(count_class("c00", CKO_CERTIFICATE), 1);
    /* The one left is the working credential's (CKA_ID 01). */
    {
        static const CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
        static const unsigned char id = 1;
        CK_ATTRIBUTE t[] = {{CKA_CLASS, (void *)&priv, sizeof priv}, {CKA_ID, (void *)&id, 1}};
        assert_int_equal(tc_mock_count_objects(t, 2), 1);
    }
    assert_step(0, 0, TC_ERR_REJECTED, TOKENCERT_OUTCOME_REJECTED); /* still said */
    assert_int_equal(CA.submits, 1);
    EVP_PKEY_free(k);
}

/* Retry-After: honoured, and a wild value capped at a week. */
static void retry_after_sets_next_poll(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    time_t before;
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -300, 20, NULL);
    CA.submit = TC_CA_PENDING;
    CA.retry_after = 7200;
    before = tc_now();
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    e = status_of(0, &s);
    assert_true(s.has_request);
    assert_int_equal(s.request.state, TOKENCERT_RS_PENDING);
    assert_true(s.request.next_poll >= before + 7200);
    assert_true(s.request.next_poll <= tc_now() + 7200);
    status_done(e, &s);

    CA.poll = TC_CA_PENDING;
    CA.retry_after = 1000000000LL;
    before = tc_now();
    assert_step(0, POLL, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.polls, 1);
    e = status_of(0, &s);
    assert_true(s.request.next_poll >= before + 7 * DAY);
    assert_true(s.request.next_poll <= tc_now() + 7 * DAY);
    status_done(e, &s);

    /* Not said: an hour. */
    CA.retry_after = 0;
    before = tc_now();
    assert_step(0, POLL, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    e = status_of(0, &s);
    assert_true(s.request.next_poll >= before + 3600);
    assert_true(s.request.next_poll <= tc_now() + 3600);
    status_done(e, &s);
    EVP_PKEY_free(k);
}

/* The CA failing: TC_ERR_CA, a failed request with its backoff, not retried before it. */
static void ca_error_fails_with_backoff(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    time_t before;
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -300, 20, NULL);
    CA.submit = TC_CA_ERROR;
    CA.reason = "connection refused";
    before = tc_now();
    assert_step(0, 0, TC_ERR_CA, TOKENCERT_OUTCOME_FAILED);
    assert_int_equal(CA.submits, 1);
    e = status_of(0, &s);
    assert_true(s.has_request);
    assert_int_equal(s.request.state, TOKENCERT_RS_FAILED);
    assert_int_equal(s.request.attempts, 1);
    assert_non_null(s.request.last_error);
    assert_string_equal(s.request.last_error, "connection refused");
    assert_true(s.request.next_poll >= before + 3600);
    assert_true(s.request.next_poll <= tc_now() + 3600);
    status_done(e, &s);

    /* Before the backoff ends the timer does not ask again. */
    assert_step(0, 0, TC_ERR_CA, TOKENCERT_OUTCOME_FAILED);
    assert_int_equal(CA.submits, 1);
    /* After it, it does: the second failure waits twice as long. */
    clock_at(2 * 3600);
    before = tc_now();
    assert_step(0, 0, TC_ERR_CA, TOKENCERT_OUTCOME_FAILED);
    assert_int_equal(CA.submits, 2);
    e = status_of(0, &s);
    assert_int_equal(s.request.attempts, 2);
    assert_true(s.request.next_poll >= before + 7200);
    assert_true(s.request.next_poll <= tc_now() + 7200);
    status_done(e, &s);
    /* And the CA coming back: pending. */
    CA.submit = TC_CA_PENDING;
    assert_step(0, TOKENCERT_RENEW_FORCE, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.submits, 3);
    EVP_PKEY_free(k);
}

/* A poll the CA answers "rejected": asked once, the token not logged in to (nothing to install),
 * the request recorded rejected. */
static void poll_rejected_asks_once_without_login(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    unsigned long logins;
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -300, 20, NULL);
    CA.submit = TC_CA_PENDING;
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.submits, 1);
    logins = tc_mock_logins();
    CA.poll = TC_CA_REJECTED;
    CA.reason = "no such employee";
    assert_step(0, POLL, TC_ERR_REJECTED, TOKENCERT_OUTCOME_REJECTED);
    assert_int_equal(CA.polls, 1);
    assert_int_equal(CA.submits, 1);
    assert_int_equal(tc_mock_logins(), logins);
    e = status_of(0, &s);
    assert_false(s.has_request);
    assert_true(s.has_rejected);
    assert_non_null(s.rejected.reason);
    assert_string_equal(s.rejected.reason, "no such employee");
    status_done(e, &s);
    /* Nothing pending any more: the next poll asks nothing. */
    assert_step(0, POLL, TC_OK, TOKENCERT_OUTCOME_NOTHING_PENDING);
    assert_int_equal(CA.polls + CA.submits, 2);
    assert_int_equal(tc_mock_logins(), logins);
    EVP_PKEY_free(k);
}

/* A poll the CA answers with an error: asked once, no login, the request failed with a backoff. */
static void poll_error_asks_once_without_login(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    unsigned long logins;
    time_t before;
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -300, 20, NULL);
    CA.submit = TC_CA_PENDING;
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    logins = tc_mock_logins();
    CA.poll = TC_CA_ERROR;
    CA.reason = "503 service unavailable";
    before = tc_now();
    assert_step(0, POLL, TC_ERR_CA, TOKENCERT_OUTCOME_FAILED);
    assert_int_equal(CA.polls, 1);
    assert_int_equal(CA.submits, 1);
    assert_int_equal(tc_mock_logins(), logins);
    e = status_of(0, &s);
    assert_true(s.has_request);
    assert_int_equal(s.request.state, TOKENCERT_RS_FAILED);
    assert_int_equal(s.request.attempts, 1);
    assert_non_null(s.request.last_error);
    assert_string_equal(s.request.last_error, "503 service unavailable");
    assert_true(s.request.next_poll >= before + 3600);
    assert_true(s.request.next_poll <= tc_now() + 3600);
    assert_false(s.has_rejected);
    status_done(e, &s);
    /* The timer waits for the backoff. */
    assert_step(0, 0, TC_ERR_CA, TOKENCERT_OUTCOME_FAILED);
    assert_int_equal(CA.polls + CA.submits, 2);
    assert_int_equal(tc_mock_logins(), logins);
    EVP_PKEY_free(k);
}

/* Retry-After: the timer's renew does not ask the CA before the time it said; poll and a named
 * renew ask at once; past it, the timer asks. */
static void retry_after_holds_the_timer(void **state)
{
    tokencert_status s;
    tokencert_engine *e;
    EVP_PKEY *k;

    (void)state;
    k = put_credential("c00", 1, -300, 20, NULL);
    CA.submit = TC_CA_PENDING;
    CA.poll = TC_CA_PENDING;
    CA.retry_after = 7200;
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.submits, 1);

    /* The timer, an hour later: not asked. */
    clock_at(3600);
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.polls, 0);
    assert_int_equal(CA.submits, 1);
    /* poll asks now (and the CA says 7200 s again, from now). */
    assert_step(0, POLL, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.polls, 1);
    e = status_of(0, &s);
    assert_true(s.has_request);
    assert_int_equal(s.request.state, TOKENCERT_RS_PENDING);
    assert_true(s.request.next_poll >= tc_now() + 7200 - 60);
    status_done(e, &s);
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.polls, 1);
    /* A named renew asks now. */
    assert_step(0, TOKENCERT_RENEW_FORCE, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.polls, 2);
    assert_int_equal(CA.submits, 1);
    /* A minute short of the 7200 s: the timer still waits. */
    clock_at(3600 + 7200 - 60);
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.polls, 2);
    /* Past them: the timer asks. */
    clock_at(3600 + 7200 + 60);
    assert_step(0, 0, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_int_equal(CA.polls, 3);
    assert_int_equal(CA.submits, 1);
    EVP_PKEY_free(k);
}

/* ---- (5) deferral ----------------------------------------------------------------------- */

static void absent_token_defers(void **state)
{
    tokencert_status s;
    tokencert_engine *e;

    (void)state;
    write_text(W.conf,
               "cas = ( { name = \"m\"; protocol = \"manual\"; dir = \"/nonexistent\"; } );\n"
               "credentials = ( { name = \"away\"; token = \"pkcs11:token=elsewhere\";\n"
               "    ca = \"m\"; pin_source = \"env:TC_TEST_MOCK_PIN\"; } );\n");
    assert_step(0, 0, TC_ERR_TOKEN_ABSENT, TOKENCERT_OUTCOME_DEFERRED);
    assert_step(0, TOKENCERT_RENEW_FORCE, TC_ERR_TOKEN_ABSENT, TOKENCERT_OUTCOME_DEFERRED);
    assert_int_equal(tc_mock_logins(), 0);
    e = status_of(0, &s);
    assert_false(s.token_present);
    assert_false(s.has_active);
    status_done(e, &s);
}

/* A configured credential whose token never was here: the deferral is recorded on the first
 * run, and said once (not at every timer run). */
static void absent_token_deferral_said_once(void **state)
{
    tokencert_status s;
    tokencert_engine *e;

    (void)state;
    write_text(W.conf,
               "cas = ( { name = \"m\"; protocol = \"manual\"; dir = \"/nonexistent\"; } );\n"
               "credentials = ( { name = \"away\"; token = \"pkcs11:token=elsewhere\";\n"
               "    ca = \"m\"; pin_source = \"env:TC_TEST_MOCK_PIN\"; } );\n");
    assert_step(0, 0, TC_ERR_TOKEN_ABSENT, TOKENCERT_OUTCOME_DEFERRED);
    if (strstr(W.problems, "not present") == NULL)
        fail_msg("the first deferral was not said; the engine said:\n%s", W.problems);
    e = status_of(0, &s);
    assert_false(s.token_present);
    assert_true(s.deferred_since != 0);
    status_done(e, &s);
    assert_step(0, 0, TC_ERR_TOKEN_ABSENT, TOKENCERT_OUTCOME_DEFERRED);
    if (strstr(W.problems, "not present") != NULL)
        fail_msg("the deferral was said again:\n%s", W.problems);
    assert_int_equal(tc_mock_logins(), 0);
}

/* ---- (6) one pass per token ------------------------------------------------------------- */

typedef struct {
    unsigned long find_init, find, logins, total;
} cost;

/* The timer's renew of n credentials, none due, in one run. */
static cost renew_all(size_t n)
{
    EVP_PKEY *keys[MAX_CREDS];
    tokencert_engine *e;
    tokencert_outcome o;
    unsigned long init0, find0, all0;
    char label[8];
    cost c;
    size_t i;

    tc_mock_reset();
    write_config(n);
    for (i = 0; i < n; i++) {
        snprintf(label, sizeof label, "c%02zu", i);
        keys[i] = put_credential(label, (unsigned char)(i + 1), -10, 355, NULL);
    }
    /* A first run adopts what is on the token (that writes the store, not the token). */
    e = engine_open();
    assert_int_equal(tokencert_engine_count(e), n);
    for (i = 0; i < n; i++)
        assert_int_equal(tokencert_engine_renew(e, i, 0, &o), TC_OK);
    engine_close(e);

    init0 = tc_mock_calls("C_FindObjectsInit");
    find0 = tc_mock_calls("C_FindObjects");
    all0 = tc_mock_calls(NULL);
    e = engine_open();
    for (i = 0; i < n; i++) {
        assert_int_equal(tokencert_engine_renew(e, i, 0, &o), TC_OK);
        assert_int_equal(o, TOKENCERT_OUTCOME_NOT_DUE);
    }
    engine_close(e);
    c.find_init = tc_mock_calls("C_FindObjectsInit") - init0;
    c.find = tc_mock_calls("C_FindObjects") - find0;
    c.total = tc_mock_calls(NULL) - all0;
    c.logins = tc_mock_logins();
    for (i = 0; i < n; i++)
        EVP_PKEY_free(keys[i]);
    return c;
}

static void one_pass_per_token(void **state)
{
    cost two, twenty;

    (void)state;
    two = renew_all(2);
    twenty = renew_all(20);
    if (getenv("TC_TEST_VERBOSE") != NULL)
        fprintf(stderr, "N=2: %lu inits, %lu finds, %lu calls; N=20: %lu, %lu, %lu\n",
                two.find_init, two.find, two.total, twenty.find_init, twenty.find, twenty.total);
    assert_int_equal(two.logins, 0);
    assert_int_equal(twenty.logins, 0);
    /* One search over the token, whatever N. */
    assert_int_equal(twenty.find_init, two.find_init);
    assert_int_equal(twenty.find, two.find);
    assert_true(two.find_init >= 1);
}

/* Several credentials due on one token: one login for the run, whatever their number. */
static void one_login_per_token(void **state)
{
    EVP_PKEY *keys[3];
    tokencert_engine *e;
    tokencert_outcome o;
    char label[8];
    size_t i;

    (void)state;
    write_config(3);
    for (i = 0; i < 3; i++) {
        snprintf(label, sizeof label, "c%02zu", i);
        keys[i] = put_credential(label, (unsigned char)(i + 1), -300, 20, NULL);
    }
    CA.submit = TC_CA_PENDING;
    e = engine_open();
    for (i = 0; i < 3; i++) {
        assert_int_equal(tokencert_engine_renew(e, i, 0, &o), TC_ERR_PENDING);
        assert_int_equal(o, TOKENCERT_OUTCOME_PENDING);
    }
    engine_close(e);
    assert_int_equal(CA.submits, 3);
    assert_int_equal(tc_mock_logins(), 1);
    assert_int_equal(tc_mock_calls("C_Login"), 1);
    for (i = 0; i < 3; i++)
        EVP_PKEY_free(keys[i]);
}

/* ---- (7) enroll ------------------------------------------------------------------------ */

/* An enrollment of label on the mock token at CA ca (an EC key), in a run of its own with the
 * run's PIN source, as enroll --pin-source gives it. */
/* The key type enroll_run asks for (the mock makes only EC P-256 keys). */
static const char *enroll_key_type = "ec:p256";

static tokencert_err enroll_run(const char *label, const char *subject, const char *ca,
                                tokencert_enrolled *res, tokencert_outcome *o)
{
    tokencert_enrollment p;
    tokencert_engine *e;
    tokencert_err err;

    memset(&p, 0, sizeof p);
    p.token_uri = "pkcs11:token=tokencert%20mock";
    p.label = label;
    p.subject = subject;
    p.key_type = enroll_key_type;
    p.ca = ca;
    W.run_pin = 1;
    e = engine_open();
    *o = TOKENCERT_OUTCOME_FAILED;
    err = tokencert_engine_enroll(e, &p, res, o);
    engine_close(e);
    return err;
}

#define assert_enroll(label, subject, ca, res, want_err, want_outcome)                             \
    do {                                                                                           \
        tokencert_outcome o_;                                                                      \
        tokencert_err e_ = enroll_run((label), (subject), (ca), (res), &o_);                       \
        if (e_ != (want_err) || o_ != (want_outcome))                                              \
            fail_msg("enroll: got %s / %s, wanted %s / %s; the engine said:\n%s",                  \
                     tokencert_strerror(e_), tokencert_outcome_name(o_),                           \
                     tokencert_strerror(want_err), tokencert_outcome_name(want_outcome),           \
                     W.problems);                                                                  \
    } while (0)

/* The index of the credential called name in a fresh run; TC_ERR_NOT_FOUND when it has none. */
static tokencert_err index_of(const char *name, size_t *i)
{
    tokencert_engine *e = engine_open();
    tokencert_err err = tokencert_engine_find(e, name, i);

    engine_close(e);
    return err;
}

/* Objects on the mock token, whatever they are. */
static unsigned long all_objects(void)
{
    return tc_mock_count_objects(NULL, 0);
}

/* At the manual CA: pending with the request set and the key made; once the CA issued (the
 * certificate written beside the request), poll installs generation 1. */
static void enroll_manual_pending_then_poll(void **state)
{
    tokencert_enrolled res;
    tokencert_status s;
    tokencert_engine *e;
    long long request;
    long serial;
    char hex[32];
    size_t i;

    (void)state;
    memset(&res, 0, sizeof res);
    assert_enroll("fresh", "CN=fresh office", "m", &res, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    assert_true(res.request > 0);
    assert_false(res.resumed);
    assert_non_null(res.key_id);
    request = res.request;
    tokencert_enrolled_clear(&res);
    assert_int_equal(count_class("fresh", CKO_PRIVATE_KEY), 1);
    assert_int_equal(count_class("fresh", CKO_PUBLIC_KEY), 1);
    assert_int_equal(count_class("fresh", CKO_CERTIFICATE), 0);
    assert_int_equal(tc_mock_logins(), 1);
    {
        char *csr = ca_path_of("fresh", request, "csr");
        assert_int_equal(access(csr, R_OK), 0);
        free(csr);
    }
    assert_int_equal(index_of("fresh", &i), TC_OK);
    e = status_of(i, &s);
    assert_true(s.has_request);
    assert_int_equal(s.request.id, request);
    assert_int_equal(s.request.state, TOKENCERT_RS_PENDING);
    assert_false(s.has_active);
    status_done(e, &s);

    /* Not issued yet. */
    assert_step(i, POLL, TC_ERR_PENDING, TOKENCERT_OUTCOME_PENDING);
    sign_request_of("fresh", request, &serial);
    assert_step(i, POLL, TC_OK, TOKENCERT_OUTCOME_RENEWED);
    e = status_of(i, &s);
    assert_false(s.has_request);
    assert_true(s.has_active);
    assert_int_equal(s.active.generation, 1);
    serial_hex(serial, hex, sizeof hex);
    assert_string_equal(s.active.serial, hex);
    assert_true(s.active.on_token);
    assert_int_equal(s.n_gens, 1);
    status_done(e, &s);
    assert_int_equal(count_class("fresh", CKO_CERTIFICATE), 1);
    assert_int_equal(count_class("fresh", CKO_PRIVATE_KEY), 1);
}

/* A CA that issues at once: TC_OK, generation 1, and one login for key, request and
 * installation. */
static void enroll_issued_one_login(void **state)
{
    tokencert_enrolled res;
    tokencert_status s;
    tokencert_engine *e;
    size_t i;

    (void)state;
    CA.submit = TC_CA_ISSUED;
    memset(&res, 0, sizeof res);
    assert_enroll("fresh", "CN=fresh office", "m", &res, TC_OK, TOKENCERT_OUTCOME_RENEWED);
    assert_true(res.request > 0);
    tokencert_enrolled_clear(&res);
    assert_int_equal(CA.submits, 1);
    assert_int_equal(tc_mock_logins(), 1);
    assert_int_equal(tc_mock_calls("C_Login"), 1);
    assert_int_equal(count_class("fresh", CKO_PRIVATE_KEY), 1);
    assert_int_equal(count_class("fresh", CKO_CERTIFICATE), 1);
    assert_int_equal(index_of("fresh", &i), TC_OK);
    e = status_of(i, &s);
    assert_true(s.has_active);
    assert_int_equal(s.active.generation, 1);
    assert_true(s.active.on_token);
    assert_false(s.has_request);
    status_done(e, &s);
}

/* A label objects on the token carry already: refused, the token and the store as they were. */
static void enroll_label_in_use_refused(void **state)
{
    tokencert_enrolled res;
    unsigned long before;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    size_t i;

    (void)state;
    assert_non_null(k);
    put_key(k, "taken", 9);
    before = all_objects();
    memset(&res, 0, sizeof res);
    assert_enroll("taken", "CN=taken office", "m", &res, TC_ERR_INVALID_ARG,
                  TOKENCERT_OUTCOME_FAILED);
    tokencert_enrolled_clear(&res);
    assert_int_equal(all_objects(), before);
    assert_int_equal(files_in(W.ca_dir), 0);
    assert_int_equal(index_of("taken", &i), TC_ERR_NOT_FOUND);
    EVP_PKEY_free(k);
}

/* A CA the configuration does not know: refused before the token is touched. */
static void enroll_unknown_ca_refused(void **state)
{
    tokencert_enrolled res;
    size_t i;

    (void)state;
    memset(&res, 0, sizeof res);
    assert_enroll("fresh", "CN=fresh office", "nosuch", &res, TC_ERR_INVALID_ARG,
                  TOKENCERT_OUTCOME_FAILED);
    tokencert_enrolled_clear(&res);
    assert_int_equal(tc_mock_logins(), 0);
    assert_int_equal(all_objects(), 0);
    assert_int_equal(index_of("fresh", &i), TC_ERR_NOT_FOUND);
}

/* Key generation fails (the mock makes no RSA keys): nothing is on the token, and the store keeps
 * no credential for a timer run to try to renew. */
static void enroll_keygen_failure_forgotten(void **state)
{
    tokencert_enrolled res;
    tokencert_outcome o;
    tokencert_err err;
    size_t i;

    (void)state;
    memset(&res, 0, sizeof res);
    enroll_key_type = "rsa:2048";
    err = enroll_run("fresh", "CN=fresh office", "m", &res, &o);
    enroll_key_type = "ec:p256";
    tokencert_enrolled_clear(&res);
    assert_int_not_equal(err, TC_OK);
    assert_int_equal(o, TOKENCERT_OUTCOME_FAILED);
    assert_int_equal(all_objects(), 0);
    assert_int_equal(index_of("fresh", &i), TC_ERR_NOT_FOUND);
}

/* A subject that is not one: refused without a PIN entry. */
static void enroll_bad_subject_no_login(void **state)
{
    tokencert_enrolled res;
    size_t i;

    (void)state;
    memset(&res, 0, sizeof res);
    assert_enroll("fresh", "CN=x,Bogus=1", "m", &res, TC_ERR_INVALID_ARG, TOKENCERT_OUTCOME_FAILED);
    tokencert_enrolled_clear(&res);
    assert_int_equal(tc_mock_logins(), 0);
    assert_int_equal(all_objects(), 0);
    assert_int_equal(files_in(W.ca_dir), 0);
    assert_int_equal(index_of("fresh", &i), TC_ERR_NOT_FOUND);
}

/* The CA failing: the key stays with a failed request; the same enroll again resumes it and, the
 * CA issuing now, ends with generation 1 on that key. */
static void enroll_ca_error_resumed(void **state)
{
    tokencert_enrolled res;
    tokencert_status s;
    tokencert_engine *e;
    size_t i;

    (void)state;
    CA.submit = TC_CA_ERROR;
    CA.reason = "connection refused";
    memset(&res, 0, sizeof res);
    assert_enroll("fresh", "CN=fresh office", "m", &res, TC_ERR_CA, TOKENCERT_OUTCOME_FAILED);
    assert_false(res.resumed);
    tokencert_enrolled_clear(&res);
    assert_int_equal(CA.submits, 1);
    assert_int_equal(count_class("fresh", CKO_PRIVATE_KEY), 1);
    assert_int_equal(count_class("fresh", CKO_CERTIFICATE), 0);
    assert_int_equal(index_of("fresh", &i), TC_OK);
    e = status_of(i, &s);
    assert_true(s.has_request);
    assert_int_equal(s.request.state, TOKENCERT_RS_FAILED);
    assert_non_null(s.request.last_error);
    assert_string_equal(s.request.last_error, "connection refused");
    assert_false(s.has_active);
    status_done(e, &s);

    CA.submit = TC_CA_ISSUED;
    memset(&res, 0, sizeof res);
    assert_enroll("fresh", "CN=fresh office", "m", &res, TC_OK, TOKENCERT_OUTCOME_RENEWED);
    assert_int_equal(res.resumed, 1);
    tokencert_enrolled_clear(&res);
    assert_int_equal(CA.submits, 2);
    assert_int_equal(count_class("fresh", CKO_PRIVATE_KEY), 1); /* the same key */
    assert_int_equal(count_class("fresh", CKO_CERTIFICATE), 1);
    e = status_of(i, &s);
    assert_true(s.has_active);
    assert_int_equal(s.active.generation, 1);
    assert_true(s.active.on_token);
    assert_false(s.has_request);
    status_done(e, &s);
}

int main(void)
{
#define T(f)  cmocka_unit_test_setup_teardown(f, world_setup, world_teardown)
#define TS(f) cmocka_unit_test_setup_teardown(f, scripted_setup, scripted_teardown)
    const struct CMUnitTest tests[] = {
        T(not_due_until_due_at),
        T(force_renews_when_not_due),
        T(reconcile_adopts_and_moves),
        T(reconcile_waits_for_not_yet_valid),
        T(manual_renewal_switch_over_prune),
        TS(rejected_not_asked_again_unattended),
        TS(prune_removes_rejected_key),
        TS(retry_after_sets_next_poll),
        TS(ca_error_fails_with_backoff),
        TS(poll_rejected_asks_once_without_login),
        TS(poll_error_asks_once_without_login),
        TS(retry_after_holds_the_timer),
        T(absent_token_defers),
        T(absent_token_deferral_said_once),
        T(one_pass_per_token),
        TS(one_login_per_token),
        T(enroll_manual_pending_then_poll),
        TS(enroll_issued_one_login),
        T(enroll_label_in_use_refused),
        T(enroll_unknown_ca_refused),
        T(enroll_keygen_failure_forgotten),
        T(enroll_bad_subject_no_login),
        TS(enroll_ca_error_resumed),
    };
#undef T
#undef TS

    setenv("TOKENCERT_TEST_CLOCK", "enable", 1);
    setenv("TC_TEST_MOCK_PIN", TC_MOCK_PIN, 1);
    unsetenv("TOKENCERT_STATE_DIR");
    unsetenv("TOKENCERT_TEST_CA_FAULT");
    return cmocka_run_group_tests_name("the lifecycle engine on the mock token", tests, NULL, NULL);
}
