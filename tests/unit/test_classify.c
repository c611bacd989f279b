/* test_classify.c — unit tests of the one rule (classify.c): which certificate of a credential is
 * current, which are superseded, expired or not yet valid, and when renewal is due.
 *
 * The first group builds credentials in memory, edges and arithmetic included. The second makes
 * certificates with OpenSSL, stores them on the mock token (tests/mock), reads them back with
 * tokencert_inventory_load and classifies what came back: the way the filter module and the
 * engine will use the rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mock-module.h"
#include "tokencert.h"

#define DAY  86400LL
#define NOW  ((time_t)1800000000) /* 2027-01-15 */
#define MAXC 4

typedef struct {
    tokencert_cert certs[MAXC];
    tokencert_credential cred;
} fixture;

/* Adds a certificate valid from NOW + from_days to NOW + to_days; fp is its SHA-256's first
 * byte, enough to tell ties apart. */
static tokencert_cert *add(fixture *f, double from_days, double to_days, unsigned fp)
{
    tokencert_cert *x = &f->certs[f->cred.n_certs++];

    memset(x, 0, sizeof *x);
    x->not_before = NOW + (time_t)(from_days * DAY);
    x->not_after = NOW + (time_t)(to_days * DAY);
    snprintf(x->sha256, sizeof x->sha256, "%02X:00", fp);
    x->status = TOKENCERT_CERT_VALID;
    f->cred.certs = f->certs;
    f->cred.kind = TOKENCERT_CRED_FULL;
    return x;
}

static void one_valid_is_current(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -10, 355, 1);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[0]);
    assert_ptr_equal(tokencert_credential_current(&f.cred, NOW), &f.certs[0]);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_CURRENT);
    assert_int_equal(s.n_superseded + s.n_expired + s.n_not_yet_valid + s.n_unreadable, 0);
    assert_false(s.expiring);
    assert_false(s.due);
    /* A 365-day certificate: max(30 d, 36.5 d) before its end. */
    assert_int_equal(s.due_at, f.certs[0].not_after - (time_t)(36.5 * DAY));
}

static void newest_current_old_superseded(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -80, 10, 1); /* old, 10 days left */
    add(&f, -1, 89, 2);  /* its renewal */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[1]);
    assert_int_equal(s.n_superseded, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_SUPERSEDED);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 1, NOW), TOKENCERT_ROLE_CURRENT);
    /* The old one's end does not make the credential expiring: its successor is current. */
    assert_false(s.expiring);
    assert_false(s.due);
}

static void expired_is_not_current(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -100, -10, 1);
    add(&f, -20, 70, 2);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[1]);
    assert_int_equal(s.n_expired, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_EXPIRED);
    /* not_after itself is no longer valid; not_before already is. */
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, f.certs[0].not_after),
                     TOKENCERT_ROLE_EXPIRED);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 1, f.certs[1].not_before),
                     TOKENCERT_ROLE_CURRENT);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 1, f.certs[1].not_before - 1),
                     TOKENCERT_ROLE_NOT_YET_VALID);
}

static void not_yet_valid_only(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, 5, 100, 1);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_null(tokencert_credential_current(&f.cred, NOW));
    assert_int_equal(s.n_not_yet_valid, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_NOT_YET_VALID);
    assert_int_equal(s.due_at, 0);
    assert_false(s.due); /* its certificate is on the way, renewing again gains nothing */
}

static void none_valid_is_due(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -400, -35, 1);
    add(&f, -100, -5, 2);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_int_equal(s.n_expired, 2);
    assert_false(s.expiring);
    assert_true(s.due);
}

static void unreadable_never_current(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;
    tokencert_cert *x;

    (void)state;
    x = add(&f, -10, 1000, 1);
    x->status = TOKENCERT_CERT_UNREADABLE;
    x->error = (char *)"not DER";
    add(&f, -10, 50, 2);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[1]);
    assert_int_equal(s.n_unreadable, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_UNREADABLE);
}

static void empty_credential(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    f.cred.kind = TOKENCERT_CRED_KEY_ONLY;
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_false(s.due);
    assert_false(s.expiring);
}

static void due_at_arithmetic(void **state)
{
    const time_t nb = NOW, three_years = NOW + (time_t)(1095 * DAY);
    tokencert_renewal_policy p = {-1, -1, -1};

    (void)state;
    /* Three years (1095 days) under the defaults: 0.1 of the lifetime, 109.5 days, beats 30. */
    assert_int_equal(tokencert_due_at(NULL, nb, three_years), three_years - (time_t)(109.5 * DAY));
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years - (time_t)(109.5 * DAY));
    /* 90 days: 9 days by the fraction, so the 30 days apply. */
    assert_int_equal(tokencert_due_at(NULL, nb, nb + 90 * DAY), nb + 60 * DAY);
    /* The approval time comes on top of the lead. */
    p.approval_time = 14 * DAY;
    assert_int_equal(tokencert_due_at(&p, nb, three_years),
                     three_years - (time_t)(109.5 * DAY) - 14 * DAY);
    /* Fraction 0 turns it off; renew_before 0 too. */
    p.renew_fraction = 0;
    p.renew_before = 10 * DAY;
    p.approval_time = 0;
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years - 10 * DAY);
    p.renew_before = 0;
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years);
    /* renew_before longer than the fraction's share wins. */
    p.renew_before = 200 * DAY;
    p.renew_fraction = 0.1;
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years - 200 * DAY);
}

static void expiring_and_due_edges(void **state)
{
    fixture f = {0};
    tokencert_renewal_policy p = {10 * DAY, 0, 2 * DAY};
    tokencert_credential_state s;

    (void)state;
    add(&f, -100, 12, 1); /* exactly 10 + 2 days left */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, &p, &s), TC_OK);
    assert_int_equal(s.due_at, NOW);
    assert_true(s.due);       /* from due_at on */
    assert_false(s.expiring); /* not yet less than the lead left */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW + 1, &p, &s), TC_OK);
    assert_true(s.expiring);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW - 1, &p, &s), TC_OK);
    assert_false(s.due);
}

static void successor_waiting_is_not_due(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -1000, 20, 1); /* current, past its due date */
    add(&f, 20, 1115, 2);  /* the portal's renewal, continuing from the end of the old */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[0]);
    assert_int_equal(s.n_not_yet_valid, 1);
    assert_true(s.expiring);
    assert_false(s.due);
    /* Without it the credential is due. */
    f.cred.n_certs = 1;
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_true(s.due);
}

static void ties_are_deterministic(void **state)
{
    fixture f = {0}, g = {0};

    (void)state;
    /* Same end: the later start wins, whatever the order. */
    add(&f, -30, 60, 1);
    add(&f, -10, 60, 2);
    assert_ptr_equal(tokencert_credential_current(&f.cred, NOW), &f.certs[1]);
    add(&g, -10, 60, 2);
    add(&g, -30, 60, 1);
    assert_ptr_equal(tokencert_credential_current(&g.cred, NOW), &g.certs[0]);
    /* Same dates: the greater fingerprint wins, whatever the order. */
    memset(&f, 0, sizeof f);
    memset(&g, 0, sizeof g);
    add(&f, -10, 60, 0xA0);
    add(&f, -10, 60, 0x3C);
    add(&g, -10, 60, 0x3C);
    add(&g, -10, 60, 0xA0);
    assert_ptr_equal(tokencert_credential_current(&f.cred, NOW), &f.certs[0]);
    assert_ptr_equal(tokencert_credential_current(&g.cred, NOW), &g.certs[1]);
    assert_int_equal(tokencert_cert_role_of(&g.cred, 0, NOW), TOKENCERT_ROLE_SUPERSEDED);
}

/* A renewal with a new key: two credentials under one name share one current certificate; an
 * authority of that name and a credential of another name take no part. */
static void named_spans_keys(void **state)
{
    fixture old = {0}, renewed = {0}, other = {0}, ca = {0};
    tokencert_credential creds[4];
    tokencert_token_inventory t;
    tokencert_credential_state s;

    (void)state;
    add(&old, -80, 10, 1);
    add(&renewed, -1, 89, 2);
    add(&other, -1, 500, 3);
    add(&ca, -1000, 3000, 4);
    old.cred.name = renewed.cred.name = ca.cred.name = (char *)"office";
    other.cred.name = (char *)"lab";
    ca.cred.kind = TOKENCERT_CRED_AUTHORITY;
    creds[0] = ca.cred;
    creds[1] = other.cred;
    creds[2] = old.cred;
    creds[3] = renewed.cred;
    memset(&t, 0, sizeof t);
    t.creds = creds;
    t.n_creds = 4;

    assert_ptr_equal(tokencert_named_current(&t, "office", NOW), &renewed.certs[0]);
    assert_int_equal(tokencert_cert_role_at(&old.certs[0], &renewed.certs[0], NOW),
                     TOKENCERT_ROLE_SUPERSEDED);
    assert_int_equal(tokencert_named_classify(&t, "office", NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &renewed.certs[0]);
    assert_int_equal(s.n_superseded, 1);
    assert_false(s.due);
    /* Each key alone has its own current certificate: the old one, 10 days left, is due. */
    assert_ptr_equal(tokencert_credential_current(&old.cred, NOW), &old.certs[0]);
    assert_int_equal(tokencert_credential_classify(&old.cred, NOW, NULL, &s), TC_OK);
    assert_true(s.due);
    assert_ptr_equal(tokencert_named_current(&t, "lab", NOW), &other.certs[0]);
    assert_null(tokencert_named_current(&t, "nobody", NOW));
}

static void role_names(void **state)
{
    (void)state;
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_CURRENT), "current");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_SUPERSEDED), "superseded");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_NOT_YET_VALID), "not-yet-valid");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_EXPIRED), "expired");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_UNREADABLE), "unreadable");
}

/* ---- through the mock token ---------------------------------------------------------------- */

typedef struct {
    EVP_PKEY *key[2]; /* two keys: a renewal may come with a new one */
    tokencert_ctx *ctx;
    tokencert_inventory *inv;
    long serial;
} world;

static world W;

static int world_setup(void **state)
{
    (void)state;
    W.key[0] = EVP_EC_gen("P-256");
    W.key[1] = EVP_EC_gen("P-256");
    return W.key[0] != NULL && W.key[1] != NULL ? 0 : -1;
}

static int world_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(W.key[0]);
    EVP_PKEY_free(W.key[1]);
    return 0;
}

static int token_setup(void **state)
{
    (void)state;
    tc_mock_reset();
    W.inv = NULL;
    if (tokencert_ctx_new(&W.ctx) != TC_OK)
        return -1;
    return tokencert_load_modules(W.ctx, TC_MOCK_MODULE) == TC_OK ? 0 : -1;
}

static int token_teardown(void **state)
{
    (void)state;
    tokencert_inventory_free(W.inv);
    tokencert_ctx_free(W.ctx);
    tc_mock_reset();
    return 0;
}

/* Stores a certificate for key k (CKA_ID k + 1, label "office") valid from t0 + from_days to
 * t0 + to_days, signed by itself; returns its not_after. */
static time_t put_cert(int k, time_t t0, double from_days, double to_days)
{
    static const CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    static const CK_CERTIFICATE_TYPE type = CKC_X_509;
    static const CK_BBOOL yes = CK_TRUE;
    static const char label[] = "office";
    unsigned char id = (unsigned char)(k + 1), *der = NULL;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    time_t nb = t0 + (time_t)(from_days * DAY), na = t0 + (time_t)(to_days * DAY);
    int len;

    assert_non_null(x);
    assert_non_null(name);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ++W.serial), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"1234567890", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
    assert_int_equal(X509_set_pubkey(x, W.key[k]), 1);
    assert_true(X509_sign(x, W.key[k], EVP_sha256()) > 0);
    len = i2d_X509(x, &der);
    assert_true(len > 0);
    {
        CK_ATTRIBUTE a[] = {
            {CKA_CLASS, (void *)&cls, sizeof cls},
            {CKA_CERTIFICATE_TYPE, (void *)&type, sizeof type},
            {CKA_TOKEN, (void *)&yes, sizeof yes},
            {CKA_ID, &id, 1},
            {CKA_LABEL, (void *)label, sizeof label - 1},
            {CKA_VALUE, der, (CK_ULONG)len},
        };
        assert_int_not_equal(tc_mock_add_object(a, sizeof a / sizeof a[0]), 0);
    }
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_free(x);
    return na;
}

/* The key pair of key k as a token keeps it: a private key seen only after login, sensitive,
 * never extractable, and its public key beside it. */
static void put_key(int k)
{
    static const CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY;
    static const CK_KEY_TYPE type = CKK_EC;
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    static const char label[] = "office";
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
    unsigned char id = (unsigned char)(k + 1), point[67], secret[32] = {1};
    size_t point_len = 0;

    /* CKA_EC_POINT is the DER OCTET STRING around the uncompressed point. */
    assert_int_equal(EVP_PKEY_get_octet_string_param(W.key[k], "encoded-pub-key", point + 2,
                                                     sizeof point - 2, &point_len),
                     1);
    point[0] = 0x04;
    point[1] = (unsigned char)point_len;
    {
        CK_ATTRIBUTE a[] = {
            {CKA_CLASS, (void *)&priv, sizeof priv},
            {CKA_KEY_TYPE, (void *)&type, sizeof type},
            {CKA_TOKEN, (void *)&yes, sizeof yes},
            {CKA_PRIVATE, (void *)&yes, sizeof yes},
            {CKA_SENSITIVE, (void *)&yes, sizeof yes},
            {CKA_EXTRACTABLE, (void *)&no, sizeof no},
            {CKA_ID, &id, 1},
            {CKA_LABEL, (void *)label, sizeof label - 1},
            {CKA_EC_PARAMS, (void *)p256, sizeof p256},
            {CKA_VALUE, secret, sizeof secret},
        };
        CK_ATTRIBUTE b[] = {
            {CKA_CLASS, (void *)&pub, sizeof pub},
            {CKA_KEY_TYPE, (void *)&type, sizeof type},
            {CKA_TOKEN, (void *)&yes, sizeof yes},
            {CKA_ID, &id, 1},
            {CKA_LABEL, (void *)label, sizeof label - 1},
            {CKA_EC_PARAMS, (void *)p256, sizeof p256},
            {CKA_EC_POINT, point, point_len + 2},
        };
        assert_int_not_equal(tc_mock_add_object(a, sizeof a / sizeof a[0]), 0);
        assert_int_not_equal(tc_mock_add_object(b, sizeof b / sizeof b[0]), 0);
    }
}

/* Reads the token back; the one token and the credential of key k. */
static const tokencert_credential *load(const tokencert_login_opts *opts, int k)
{
    const tokencert_token_inventory *t;
    char id[3];
    size_t i;

    tokencert_inventory_free(W.inv);
    W.inv = NULL;
    assert_int_equal(tokencert_inventory_load(W.ctx, NULL, opts, 30 * DAY, &W.inv), TC_OK);
    assert_int_equal(W.inv->n_tokens, 1);
    t = &W.inv->tokens[0];
    snprintf(id, sizeof id, "%02x", k + 1);
    for (i = 0; i < t->n_creds; i++)
        if (strcmp(t->creds[i].id, id) == 0)
            return &t->creds[i];
    fail_msg("no credential with id %s", id);
    return NULL;
}

static void token_one_valid(void **state)
{
    time_t t0 = time(NULL);
    const tokencert_credential *c;
    tokencert_credential_state s;

    (void)state;
    put_key(0);
    put_cert(0, t0, -10, 355);
    c = load(NULL, 0);
    assert_int_equal(c->n_certs, 1);
    assert_int_equal(tokencert_credential_classify(c, W.inv->now, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &c->certs[0]);
    assert_int_equal(tokencert_cert_role_of(c, 0, W.inv->now), TOKENCERT_ROLE_CURRENT);
    assert_false(s.due);
    assert_false(s.expiring);
}

static void token_old_and_new(void **state)
{
    time_t t0 = time(NULL), na_new;
    const tokencert_credential *c;
    tokencert_credential_state s;

    (void)state;
    put_key(0);
    na_new = put_cert(0, t0, -1, 364);
    put_cert(0, t0, -355, 10);
    c = load(NULL, 0);
    assert_int_equal(c->n_certs, 2);
    assert_int_equal(tokencert_credential_classify(c, W.inv->now, NULL, &s), TC_OK);
    assert_non_null(s.current);
    assert_int_equal(s.current->not_after, na_new);
    assert_int_equal(s.n_superseded, 1);
    /* The inventory orders by not_after: the old one first. */
    assert_int_equal(tokencert_cert_role_of(c, 0, W.inv->now), TOKENCERT_ROLE_SUPERSEDED);
    assert_int_equal(tokencert_cert_role_of(c, 1, W.inv->now), TOKENCERT_ROLE_CURRENT);
    assert_false(s.due);
}

static void token_old_expired(void **state)
{
    time_t t0 = time(NULL);
    const tokencert_credential *c;
    tokencert_credential_state s;

    (void)state;
    put_key(0);
    put_cert(0, t0, -400, -35);
    put_cert(0, t0, -40, 325);
    c = load(NULL, 0);
    assert_int_equal(tokencert_credential_classify(c, W.inv->now, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &c->certs[1]);
    assert_int_equal(s.n_expired, 1);
    assert_int_equal(tokencert_cert_role_of(c, 0, W.inv->now), TOKENCERT_ROLE_EXPIRED);
    assert_int_equal(c->certs[0].status, TOKENCERT_CERT_EXPIRED); /* the inventory agrees */
}

static void token_not_yet_valid(void **state)
{
    time_t t0 = time(NULL);
    const tokencert_credential *c;
    tokencert_credential_state s;

    (void)state;
    put_key(0);
    put_cert(0, t0, 3, 368);
    c = load(NULL, 0);
    assert_int_equal(tokencert_credential_classify(c, W.inv->now, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_int_equal(tokencert_cert_role_of(c, 0, W.inv->now), TOKENCERT_ROLE_NOT_YET_VALID);
    assert_false(s.due);
}

static void token_none_valid(void **state)
{
    time_t t0 = time(NULL);
    const tokencert_credential *c;
    tokencert_credential_state s;

    (void)state;
    put_key(0);
    put_cert(0, t0, -800, -435);
    put_cert(0, t0, -400, -35);
    c = load(NULL, 0);
    assert_int_equal(tokencert_credential_classify(c, W.inv->now, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_null(tokencert_credential_current(c, W.inv->now));
    assert_int_equal(s.n_expired, 2);
    assert_true(s.due);
}

/* A three-year certificate: due 0.1 x 1095 days = 109.5 days (more than 30) before its end, and
 * the approval time earlier still. */
static void token_due_three_years(void **state)
{
    time_t t0 = time(NULL), na;
    const tokencert_credential *c;
    tokencert_renewal_policy approval = {-1, -1, 14 * DAY};
    tokencert_credential_state s;

    (void)state;
    put_key(0);
    na = put_cert(0, t0, -900, 195);
    c = load(NULL, 0);
    assert_int_equal(tokencert_credential_classify(c, W.inv->now, NULL, &s), TC_OK);
    assert_int_equal(s.due_at, na - (time_t)(109.5 * DAY));
    assert_false(s.due); /* 195 days left */
    assert_int_equal(tokencert_credential_classify(c, na - 110 * DAY, NULL, &s), TC_OK);
    assert_false(s.due);
    assert_int_equal(tokencert_credential_classify(c, na - 109 * DAY, NULL, &s), TC_OK);
    assert_true(s.due);
    assert_true(s.expiring);
    assert_int_equal(tokencert_credential_classify(c, W.inv->now, &approval, &s), TC_OK);
    assert_int_equal(s.due_at, na - (time_t)(123.5 * DAY));
}

/* Two certificates with the same dates: the same one is current whatever order the token
 * returns them in. */
static void token_tie(void **state)
{
    time_t t0 = time(NULL);
    const tokencert_credential *c;
    const tokencert_cert *cur;
    char first[96];

    (void)state;
    put_key(0);
    put_cert(0, t0, -10, 355);
    put_cert(0, t0, -10, 355);
    c = load(NULL, 0);
    assert_int_equal(c->n_certs, 2);
    cur = tokencert_credential_current(c, W.inv->now);
    assert_non_null(cur);
    assert_true(strcmp(cur->sha256, c->certs[cur == &c->certs[0] ? 1 : 0].sha256) > 0);
    snprintf(first, sizeof first, "%s", cur->sha256);
    /* Swapped in the array: the same certificate. */
    {
        tokencert_cert swapped[2];
        tokencert_credential c2 = *c;
        swapped[0] = c->certs[1];
        swapped[1] = c->certs[0];
        c2.certs = swapped;
        assert_string_equal(tokencert_credential_current(&c2, W.inv->now)->sha256, first);
    }
}

/* A renewal with a new key: two credentials under the name "office", one current certificate. */
static void token_renewed_with_new_key(void **state)
{
    time_t t0 = time(NULL), na_new;
    const tokencert_credential *old;
    tokencert_credential_state s;

    (void)state;
    put_key(0);
    put_cert(0, t0, -355, 10);
    put_key(1);
    na_new = put_cert(1, t0, -1, 364);
    old = load(NULL, 0);
    assert_string_equal(old->name, "office");
    assert_int_equal(tokencert_named_classify(&W.inv->tokens[0], "office", W.inv->now, NULL, &s),
                     TC_OK);
    assert_non_null(s.current);
    assert_int_equal(s.current->not_after, na_new);
    assert_int_equal(s.n_superseded, 1);
    assert_false(s.due);
    assert_int_equal(tokencert_cert_role_at(&old->certs[0], s.current, W.inv->now),
                     TOKENCERT_ROLE_SUPERSEDED);
}

/* Logged in, the private keys show and their secret values are refused attribute by attribute
 * (the inventory asks for CKA_VALUE of every object in one read). The rule's answer does not
 * change. */
static void token_logged_in(void **state)
{
    time_t t0 = time(NULL);
    tokencert_login_opts lo = {"env:TC_TEST_MOCK_PIN", 1, 0, 0};
    const tokencert_credential *c;

    (void)state;
    setenv("TC_TEST_MOCK_PIN", TC_MOCK_PIN, 1);
    put_key(0);
    put_cert(0, t0, -355, 10);
    put_cert(0, t0, -1, 364);
    c = load(&lo, 0);
    assert_int_equal(tc_mock_logins(), 1);
    assert_true(W.inv->tokens[0].logged_in);
    assert_non_null(c->key);
    assert_true(c->key->has_private);
    assert_int_equal(c->key->sensitive, 1);
    assert_int_equal(c->key->extractable, 0);
    assert_int_equal(c->n_certs, 2);
    /* One search over the token, closed. */
    assert_int_equal(tc_mock_calls("C_FindObjectsInit"), 1);
    assert_int_equal(tc_mock_calls("C_FindObjectsFinal"), 1);
    assert_ptr_equal(tokencert_credential_current(c, W.inv->now), &c->certs[1]);
    unsetenv("TC_TEST_MOCK_PIN");
}

/* The mock's C_FindObjects with a batch limit: fewer handles than asked for do not mean the end;
 * an empty answer does (PKCS#11 v2.40, 5.7.8). */
static void mock_find_in_batches(void **state)
{
    static const CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE obj[] = {{CKA_CLASS, (void *)&cls, sizeof cls}};
    CK_FUNCTION_LIST *f = NULL;
    CK_SESSION_HANDLE sh;
    CK_OBJECT_HANDLE found[10];
    CK_ULONG got, total = 0;
    int i;

    (void)state;
    for (i = 0; i < 5; i++)
        assert_int_not_equal(tc_mock_add_object(obj, 1), 0);
    tc_mock_set_find_batch(2);
    assert_int_equal(C_GetFunctionList(&f), CKR_OK);
    assert_int_equal(f->C_OpenSession(TC_MOCK_SLOT_ID, CKF_SERIAL_SESSION, NULL, NULL, &sh),
                     CKR_OK);
    assert_int_equal(f->C_FindObjectsInit(sh, obj, 1), CKR_OK);
    do {
        assert_int_equal(f->C_FindObjects(sh, found + total, 10 - total, &got), CKR_OK);
        assert_true(got <= 2);
        total += got;
    } while (got > 0);
    assert_int_equal(total, 5);
    assert_int_equal(tc_mock_calls("C_FindObjects"), 4);
    assert_int_equal(f->C_FindObjectsFinal(sh), CKR_OK);
    assert_int_equal(f->C_FindObjects(sh, found, 10, &got), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_CloseSession(sh), CKR_OK);
}

/* The mock's C_GetAttributeValue: size queries, short buffers, unknown and sensitive attributes,
 * each answered on its own while the others are filled. */
static void mock_attribute_semantics(void **state)
{
    static const CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    static const CK_BBOOL yes = CK_TRUE;
    CK_FUNCTION_LIST *f = NULL;
    CK_SESSION_HANDLE sh;
    CK_OBJECT_HANDLE h;
    unsigned char secret[4] = {1, 2, 3, 4}, buf[16], small[2];
    CK_ATTRIBUTE obj[] = {{CKA_CLASS, (void *)&cls, sizeof cls},
                          {CKA_SENSITIVE, (void *)&yes, sizeof yes},
                          {CKA_LABEL, (void *)"abcdef", 6},
                          {CKA_VALUE, secret, sizeof secret}};
    CK_ATTRIBUTE q[3];

    (void)state;
    h = tc_mock_add_object(obj, 4);
    assert_int_equal(C_GetFunctionList(&f), CKR_OK);
    assert_int_equal(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED); /* by the ctx */
    assert_int_equal(f->C_OpenSession(TC_MOCK_SLOT_ID, CKF_SERIAL_SESSION, NULL, NULL, &sh),
                     CKR_OK);
    q[0] = (CK_ATTRIBUTE){CKA_LABEL, NULL, 0};
    q[1] = (CK_ATTRIBUTE){CKA_VALUE, NULL, 0};
    q[2] = (CK_ATTRIBUTE){CKA_MODULUS, NULL, 0};
    assert_int_equal(f->C_GetAttributeValue(sh, h, q, 3), CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(q[0].ulValueLen, 6);
    assert_int_equal(q[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(q[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    q[0] = (CK_ATTRIBUTE){CKA_LABEL, small, sizeof small};
    q[1] = (CK_ATTRIBUTE){CKA_CLASS, buf, sizeof buf};
    assert_int_equal(f->C_GetAttributeValue(sh, h, q, 2), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(q[1].ulValueLen, sizeof cls);
    q[0] = (CK_ATTRIBUTE){CKA_LABEL, buf, sizeof buf};
    assert_int_equal(f->C_GetAttributeValue(sh, h, q, 1), CKR_OK);
    assert_int_equal(q[0].ulValueLen, 6);
    assert_memory_equal(buf, "abcdef", 6);
    assert_int_equal(f->C_Login(sh, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4), CKR_PIN_INCORRECT);
    assert_int_equal(f->C_Sign(sh, buf, 1, buf, NULL), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(tc_mock_calls("C_GetAttributeValue"), 3);
    assert_int_equal(f->C_CloseSession(sh), CKR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_valid_is_current),
        cmocka_unit_test(newest_current_old_superseded),
        cmocka_unit_test(expired_is_not_current),
        cmocka_unit_test(not_yet_valid_only),
        cmocka_unit_test(none_valid_is_due),
        cmocka_unit_test(unreadable_never_current),
        cmocka_unit_test(empty_credential),
        cmocka_unit_test(due_at_arithmetic),
        cmocka_unit_test(expiring_and_due_edges),
        cmocka_unit_test(successor_waiting_is_not_due),
        cmocka_unit_test(ties_are_deterministic),
        cmocka_unit_test(named_spans_keys),
        cmocka_unit_test(role_names),
    };
#define TOKEN_TEST(f) cmocka_unit_test_setup_teardown(f, token_setup, token_teardown)
    const struct CMUnitTest token_tests[] = {
        TOKEN_TEST(token_one_valid),
        TOKEN_TEST(token_old_and_new),
        TOKEN_TEST(token_old_expired),
        TOKEN_TEST(token_not_yet_valid),
        TOKEN_TEST(token_none_valid),
        TOKEN_TEST(token_due_three_years),
        TOKEN_TEST(token_tie),
        TOKEN_TEST(token_renewed_with_new_key),
        TOKEN_TEST(token_logged_in),
        TOKEN_TEST(mock_find_in_batches),
        TOKEN_TEST(mock_attribute_semantics),
    };
#undef TOKEN_TEST
    int failed = cmocka_run_group_tests_name("in memory", tests, NULL, NULL);

    return failed + cmocka_run_group_tests_name("through the mock token", token_tests, world_setup,
                                                world_teardown);
}
