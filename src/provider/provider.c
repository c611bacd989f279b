/* provider.c — the library's private OpenSSL library context, and the built-in OpenSSL 3
 * provider that makes a token key an EVP_PKEY.
 *
 * The provider ("tokencert") offers key management for RSA, EC and Ed25519, signatures (RSA
 * PKCS#1 v1.5 and PSS, ECDSA, EdDSA) and RSA decryption. Its keys hold a borrowed tc_key: the
 * private operations run on the token over the key's session; everything public (sizes, the
 * encoded public key, comparisons, the algorithm identifiers of signatures) is answered by a
 * plain public key of the default provider. Digests are computed in software, so every token that
 * offers the raw mechanisms (RSA PKCS#1 v1.5 and PSS, ECDSA and EdDSA without hashing) works.
 *
 * How OpenSSL 3.0 picks an implementation matters here: for an operation on a key it first
 * fetches the algorithm with the context's properties and tries to export the key to that
 * provider; only when the export fails does it use the key's own provider. So the library context
 * prefers the default provider (plain keys never land here), and our keys refuse an export that
 * asks for the private half (token keys are then always signed with here), while the public half
 * exports freely, which is what encoders need for the SubjectPublicKeyInfo. */
#include "provider/provider.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#define PROV_NAME  "tokencert"
#define PROV_PROPS "provider=" PROV_NAME
/* The private parameter that carries a tc_key into the provider's import (tc_key_pkey). */
#define PARAM_TOKEN_KEY "tokencert-token-key"
/* RSA up to 16384 bits; EC signatures and EdDSA fit easily. */
#define SIG_MAX 2048

enum { R_TOKEN = 1, R_NOT_TOKEN_KEY, R_BAD_PARAM, R_BUFFER, R_UNSUPPORTED };

typedef struct {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx;
    tokencert_ctx *tc; /* set by tc_libctx() right after loading */
    OSSL_FUNC_core_new_error_fn *new_error;
    OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
    OSSL_FUNC_core_vset_error_fn *vset_error;
} prov_ctx;

/* Key data of the three key managers. */
typedef struct {
    prov_ctx *pc;
    const char *alg; /* "RSA", "EC", "ED25519" */
    tc_key *key;     /* NULL for a public key imported for a comparison */
    EVP_PKEY *pub;   /* the public half, a default-provider key */
} prov_key;

static void raise_err(prov_ctx *pc, int reason, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void raise_err(prov_ctx *pc, int reason, const char *func, const char *fmt, ...)
{
    va_list ap;

    if (pc == NULL || pc->new_error == NULL || pc->set_error_debug == NULL ||
        pc->vset_error == NULL)
        return;
    pc->new_error(pc->handle);
    pc->set_error_debug(pc->handle, __FILE__, 0, func);
    va_start(ap, fmt);
    pc->vset_error(pc->handle, reason, fmt, ap);
    va_end(ap);
}

/* A failed token operation, already recorded in the library's error detail by the keys layer:
 * raised as an OpenSSL error too. */
static void token_failed(prov_key *k, const char *op)
{
    prov_ctx *pc = k->pc;

    if (pc->tc != NULL && tokencert_ctx_error(pc->tc) != NULL)
        raise_err(pc, R_TOKEN, op, "%s", tokencert_ctx_error(pc->tc));
    else
        raise_err(pc, R_TOKEN, op, "the token's %s failed", op);
}

static int is_token_key(prov_key *k)
{
    if (k == NULL || k->key == NULL || k->pub == NULL) {
        raise_err(k != NULL ? k->pc : NULL, R_NOT_TOKEN_KEY, __func__,
                  "the key is not a token key: it can only be compared with");
        return 0;
    }
    return 1;
}

/* ============================== key management ============================== */

static prov_key *key_new(void *provctx, const char *alg)
{
    prov_key *k = calloc(1, sizeof *k);
    if (k != NULL) {
        k->pc = provctx;
        k->alg = alg;
    }
    return k;
}

static void *rsa_km_new(void *provctx)
{
    return key_new(provctx, "RSA");
}
static void *ec_km_new(void *provctx)
{
    return key_new(provctx, "EC");
}
static void *ed_km_new(void *provctx)
{
    return key_new(provctx, "ED25519");
}

static void km_free(void *kd)
{
    prov_key *k = kd;
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pub);
    free(k);
}

static void *km_dup(const void *kd, int selection)
{
    const prov_key *k = kd;
    prov_key *d;

    (void)selection;
    if (k == NULL || (d = key_new(k->pc, k->alg)) == NULL)
        return NULL;
    d->key = k->key;
    if (k->pub != NULL && EVP_PKEY_up_ref(k->pub))
        d->pub = k->pub;
    return d;
}

static int km_has(const void *kd, int selection)
{
    const prov_key *k = kd;

    if (k == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && k->key == NULL)
        return 0;
    if ((selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) &&
        k->pub == NULL)
        return 0;
    return 1;
}

static int km_match(const void *a, const void *b, int selection)
{
    const prov_key *x = a, *y = b;

    if (x == NULL || y == NULL || x->pub == NULL || y->pub == NULL)
        return 0;
    /* The private half is the public half's partner: comparing public halves is the test. */
    if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
        return EVP_PKEY_eq(x->pub, y->pub) == 1;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) && strcmp(x->alg, "EC") == 0)
        return EVP_PKEY_parameters_eq(x->pub, y->pub) == 1;
    return 1;
}

static int key_type_fits(const prov_key *k, const tc_key *key)
{
    if (strcmp(k->alg, "RSA") == 0)
        return key->type == TC_KEY_TYPE_RSA;
    if (strcmp(k->alg, "EC") == 0)
        return key->type == TC_KEY_TYPE_EC;
    return key->type == TC_KEY_TYPE_EDDSA && EVP_PKEY_is_a(key->pub_pkey, "ED25519");
}

static int km_import(void *kd, int selection, const OSSL_PARAM params[])
{
    prov_key *k = kd;
    const OSSL_PARAM *p;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pub = NULL;
    int ok = 0;

    if (k == NULL || k->pub != NULL)
        return 0;
    p = OSSL_PARAM_locate_const(params, PARAM_TOKEN_KEY);
    if (p != NULL) {
        const void *ptr = NULL;
        size_t len = 0;
        tc_key *key;
        if (!OSSL_PARAM_get_octet_ptr(p, &ptr, &len) || ptr == NULL || len != sizeof(tc_key))
            return 0;
        key = (tc_key *)ptr;
        if (key->pub_pkey == NULL || !key_type_fits(k, key) || !EVP_PKEY_up_ref(key->pub_pkey))
            return 0;
        k->key = key;
        k->pub = key->pub_pkey;
        return 1;
    }
    /* Public halves only (another key compared with ours): no private key enters here. */
    if (!(selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) ||
        OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL ||
        OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D) != NULL)
        return 0;
    pctx = EVP_PKEY_CTX_new_from_name(k->pc->libctx, k->alg, "provider=default");
    if (pctx != NULL && EVP_PKEY_fromdata_init(pctx) > 0 &&
        EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) > 0) {
        k->pub = pub;
        ok = 1;
    }
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static int km_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    prov_key *k = kd;
    OSSL_PARAM *params = NULL;
    int ok;

    /* The private half stays on the token; refusing here is also what makes OpenSSL sign with
     * this provider rather than with a default-provider copy of the public key. */
    if (k == NULL || k->pub == NULL || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
        return 0;
    if (!EVP_PKEY_todata(k->pub,
                         (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? EVP_PKEY_PUBLIC_KEY
                                                                      : EVP_PKEY_KEY_PARAMETERS,
                         &params))
        return 0;
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static const OSSL_PARAM rsa_types[] = {OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
                                       OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
                                       OSSL_PARAM_END};
static const OSSL_PARAM ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0), OSSL_PARAM_END};
static const OSSL_PARAM ed_types[] = {OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                                      OSSL_PARAM_END};

static const OSSL_PARAM *rsa_km_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? rsa_types : NULL;
}
static const OSSL_PARAM *ec_km_types(int selection)
{
    return (selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS))
               ? ec_types
               : NULL;
}
static const OSSL_PARAM *ed_km_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? ed_types : NULL;
}

static int km_get_params(void *kd, OSSL_PARAM params[])
{
    prov_key *k = kd;

    /* Sizes, the default digest, the group, the encoded public key: the public half knows. */
    return k != NULL && k->pub != NULL && EVP_PKEY_get_params(k->pub, params);
}

#define COMMON_GETTABLE                                                                            \
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),                                                    \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),                                       \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),                                            \
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),                           \
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),                         \
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0)

static const OSSL_PARAM rsa_gettable[] = {
    COMMON_GETTABLE, OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0), OSSL_PARAM_END};
static const OSSL_PARAM ec_gettable[] = {
    COMMON_GETTABLE,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
    OSSL_PARAM_END};
static const OSSL_PARAM ed_gettable[] = {
    COMMON_GETTABLE, OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0), OSSL_PARAM_END};

static const OSSL_PARAM *rsa_km_gettable(void *provctx)
{
    (void)provctx;
    return rsa_gettable;
}
static const OSSL_PARAM *ec_km_gettable(void *provctx)
{
    (void)provctx;
    return ec_gettable;
}
static const OSSL_PARAM *ed_km_gettable(void *provctx)
{
    (void)provctx;
    return ed_gettable;
}

static const char *rsa_km_opname(int op)
{
    return op == OSSL_OP_SIGNATURE || op == OSSL_OP_ASYM_CIPHER ? "RSA" : NULL;
}
static const char *ec_km_opname(int op)
{
    return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}
static const char *ed_km_opname(int op)
{
    return op == OSSL_OP_SIGNATURE ? "ED25519" : NULL;
}

#define KEYMGMT_DISPATCH(pfx)                                                                      \
    static const OSSL_DISPATCH pfx##_keymgmt[] = {                                                 \
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))pfx##_km_new},                                     \
        {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},                                         \
        {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},                                           \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                                           \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                                       \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                                     \
        {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))pfx##_km_types},                          \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},                                     \
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))pfx##_km_types},                          \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},                             \
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))pfx##_km_gettable},                    \
        {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))pfx##_km_opname},                 \
        {0, NULL}}

KEYMGMT_DISPATCH(rsa);
KEYMGMT_DISPATCH(ec);
KEYMGMT_DISPATCH(ed);

/* ============================== signatures ============================== */

typedef struct {
    prov_ctx *pc;
    prov_key *key;
    EVP_MD *md; /* NULL: none set (raw input for plain sign) */
    EVP_MD_CTX *mdctx;
    int digest_mode; /* digest_sign_* in use */
    int pad;         /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen;     /* a length, or RSA_PSS_SALTLEN_DIGEST/_MAX/_AUTO */
    EVP_MD *mgf1;    /* NULL: the message digest */
} sig_ctx;

static void *sig_newctx(void *provctx, const char *propq)
{
    sig_ctx *c = calloc(1, sizeof *c);

    (void)propq;
    if (c != NULL) {
        c->pc = provctx;
        c->pad = RSA_PKCS1_PADDING;
        c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    }
    return c;
}

static void sig_freectx(void *vc)
{
    sig_ctx *c = vc;
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1);
    free(c);
}

static void *sig_dupctx(void *vc)
{
    sig_ctx *c = vc, *d;

    if (c == NULL || (d = calloc(1, sizeof *d)) == NULL)
        return NULL;
    *d = *c;
    d->mdctx = NULL;
    if ((d->md != NULL && !EVP_MD_up_ref(d->md)))
        d->md = NULL;
    if ((d->mgf1 != NULL && !EVP_MD_up_ref(d->mgf1)))
        d->mgf1 = NULL;
    if (c->mdctx != NULL) {
        d->mdctx = EVP_MD_CTX_new();
        if (d->mdctx == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx)) {
            sig_freectx(d);
            return NULL;
        }
    }
    return d;
}

static int is_rsa(const sig_ctx *c)
{
    return strcmp(c->key->alg, "RSA") == 0;
}
static int is_ed(const sig_ctx *c)
{
    return strcmp(c->key->alg, "ED25519") == 0;
}

static int set_md(sig_ctx *c, EVP_MD **slot, const char *name, const char *props)
{
    EVP_MD *md;

    if (is_ed(c)) {
        raise_err(c->pc, R_BAD_PARAM, __func__, "EdDSA takes no separate digest");
        return 0;
    }
    md = EVP_MD_fetch(c->pc->libctx, name, props);
    if (md == NULL) {
        raise_err(c->pc, R_BAD_PARAM, __func__, "unknown digest '%s'", name);
        return 0;
    }
    if (c->digest_mode && slot == &c->md && c->mdctx != NULL) {
        raise_err(c->pc, R_BAD_PARAM, __func__, "the digest cannot change while signing");
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(*slot);
    *slot = md;
    return 1;
}

static int sig_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
    sig_ctx *c = vc;
    const OSSL_PARAM *p;
    const char *props = NULL;

    if (c == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PROPERTIES);
    if (p != NULL && !OSSL_PARAM_get_utf8_string_ptr(p, &props))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL) {
        const char *name = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(c, &c->md, name, props))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        int pad = 0;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
                pad = RSA_PKCS1_PADDING;
            else if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
                pad = RSA_PKCS1_PSS_PADDING;
        } else if (!OSSL_PARAM_get_int(p, &pad)) {
            return 0;
        }
        if (!is_rsa(c) || (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING)) {
            raise_err(c->pc, R_BAD_PARAM, __func__,
                      "only PKCS#1 v1.5 and PSS padding sign with an RSA token key");
            return 0;
        }
        c->pad = pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL) {
        int len = 0;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            if (s == NULL)
                return 0;
            if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
                len = RSA_PSS_SALTLEN_DIGEST;
            else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
                len = RSA_PSS_SALTLEN_MAX;
            else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
                len = RSA_PSS_SALTLEN_AUTO;
            else
                len = atoi(s);
        } else if (!OSSL_PARAM_get_int(p, &len)) {
            return 0;
        }
        if (len < RSA_PSS_SALTLEN_MAX) {
            raise_err(c->pc, R_BAD_PARAM, __func__, "bad PSS salt length %d", len);
            return 0;
        }
        c->saltlen = len;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const char *name = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(c, &c->mgf1, name, NULL))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM sig_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END};

static const OSSL_PARAM *sig_settable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return sig_settable;
}

static int sig_init(void *vc, void *provkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vc;

    if (c == NULL || !is_token_key(provkey))
        return 0;
    c->key = provkey;
    c->digest_mode = 0;
    c->pad = RSA_PKCS1_PADDING;
    c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1);
    c->mdctx = NULL;
    c->md = c->mgf1 = NULL;
    return sig_set_ctx_params(c, params);
}

static int sig_digest_init(void *vc, const char *mdname, void *provkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vc;

    if (!sig_init(vc, provkey, NULL))
        return 0;
    c->digest_mode = 1;
    if (mdname != NULL && mdname[0] != '\0' && !set_md(c, &c->md, mdname, NULL))
        return 0;
    if (!sig_set_ctx_params(c, params))
        return 0;
    if (is_ed(c))
        return 1;
    if (c->md == NULL && !set_md(c, &c->md, "SHA256", NULL))
        return 0;
    c->mdctx = EVP_MD_CTX_new();
    if (c->mdctx == NULL || !EVP_DigestInit_ex2(c->mdctx, c->md, NULL))
        return 0;
    return 1;
}

static int sig_digest_update(void *vc, const unsigned char *data, size_t len)
{
    sig_ctx *c = vc;

    if (c == NULL || c->mdctx == NULL) {
        raise_err(c != NULL ? c->pc : NULL, R_UNSUPPORTED, __func__,
                  "EdDSA signs a whole message at once");
        return 0;
    }
    return EVP_DigestUpdate(c->mdctx, data, len);
}

/* The digest as the keys layer names it (for the token's PSS and OAEP parameters). */
static int md_hash(const EVP_MD *md, tc_hash *h)
{
    static const struct {
        const char *name;
        tc_hash h;
    } t[] = {{"SHA1", TC_HASH_SHA1},
             {"SHA224", TC_HASH_SHA224},
             {"SHA256", TC_HASH_SHA256},
             {"SHA384", TC_HASH_SHA384},
             {"SHA512", TC_HASH_SHA512}};
    size_t i;

    for (i = 0; md != NULL && i < sizeof t / sizeof t[0]; i++) {
        if (EVP_MD_is_a(md, t[i].name)) {
            *h = t[i].h;
            return 1;
        }
    }
    return 0;
}

/* DigestInfo prefixes (RFC 8017, section 9.2, note 1). */
static const unsigned char di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                        0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const unsigned char di_sha224[] = {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x04, 0x05, 0x00, 0x04, 0x1c};
static const unsigned char di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x02, 0x05, 0x00, 0x04, 0x30};
static const unsigned char di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x03, 0x05, 0x00, 0x04, 0x40};

static int digest_info_prefix(const EVP_MD *md, const unsigned char **p, size_t *n)
{
    tc_hash h;

    if (!md_hash(md, &h))
        return 0;
    switch (h) {
    case TC_HASH_SHA1:
        *p = di_sha1, *n = sizeof di_sha1;
        break;
    case TC_HASH_SHA224:
        *p = di_sha224, *n = sizeof di_sha224;
        break;
    case TC_HASH_SHA256:
        *p = di_sha256, *n = sizeof di_sha256;
        break;
    case TC_HASH_SHA384:
        *p = di_sha384, *n = sizeof di_sha384;
        break;
    default:
        *p = di_sha512, *n = sizeof di_sha512;
        break;
    }
    return 1;
}

/* One signature on the token over the key's session. */
static int token_sign(prov_key *k, const tc_sign_alg *alg, const unsigned char *in, size_t inlen,
                      unsigned char *out, size_t *outlen)
{
    if (tc_key_sign(k->pc->tc, k->key, alg, in, inlen, out, outlen) != TC_OK) {
        token_failed(k, "signature");
        return 0;
    }
    return 1;
}

static size_t sig_max_size(const sig_ctx *c)
{
    int n = EVP_PKEY_get_size(c->key->pub);
    return n > 0 ? (size_t)n : 0;
}

/* The PSS salt length that OpenSSL's settings stand for with this key and digest. */
static int pss_saltlen(const sig_ctx *c, const EVP_MD *md)
{
    int hlen = EVP_MD_get_size(md);
    int emlen = (EVP_PKEY_get_bits(c->key->pub) - 1 + 7) / 8;

    if (c->saltlen == RSA_PSS_SALTLEN_DIGEST)
        return hlen;
    if (c->saltlen == RSA_PSS_SALTLEN_MAX || c->saltlen == RSA_PSS_SALTLEN_AUTO)
        return emlen - hlen - 2;
    return c->saltlen;
}

/* The digest a pre-hashed input of tbslen bytes was made with, when none was set. */
static const EVP_MD *md_for(sig_ctx *c, size_t tbslen)
{
    const char *name = NULL;

    if (c->md != NULL)
        return c->md;
    switch (tbslen) {
    case 20:
        name = "SHA1";
        break;
    case 28:
        name = "SHA224";
        break;
    case 32:
        name = "SHA256";
        break;
    case 48:
        name = "SHA384";
        break;
    case 64:
        name = "SHA512";
        break;
    }
    if (name == NULL || !set_md(c, &c->md, name, NULL))
        return NULL;
    return c->md;
}

static int sign_rsa(sig_ctx *c, unsigned char *sig, size_t *siglen, const unsigned char *tbs,
                    size_t tbslen)
{
    unsigned char buf[EVP_MAX_MD_SIZE + 32];
    tc_sign_alg alg = {TC_SIGN_RSA_PKCS1, TC_HASH_NONE, TC_HASH_NONE, 0};
    const unsigned char *in = tbs;
    size_t inlen = tbslen;

    if (c->pad == RSA_PKCS1_PSS_PADDING) {
        const EVP_MD *md = md_for(c, tbslen);
        const EVP_MD *mgf = c->mgf1 != NULL ? c->mgf1 : md;
        int salt;
        if (md == NULL || (size_t)EVP_MD_get_size(md) != tbslen || !md_hash(md, &alg.hash) ||
            !md_hash(mgf, &alg.mgf1)) {
            raise_err(c->pc, R_BAD_PARAM, __func__,
                      "PSS needs a SHA-1 or SHA-2 digest matching the input length");
            return 0;
        }
        salt = pss_saltlen(c, md);
        if (salt < 0) {
            raise_err(c->pc, R_BAD_PARAM, __func__, "bad PSS salt length %d", salt);
            return 0;
        }
        alg.mech = TC_SIGN_RSA_PSS;
        alg.salt_len = (size_t)salt;
    } else if (c->md != NULL) {
        const unsigned char *prefix;
        size_t plen;
        if (!digest_info_prefix(c->md, &prefix, &plen) ||
            tbslen != (size_t)EVP_MD_get_size(c->md)) {
            raise_err(c->pc, R_BAD_PARAM, __func__,
                      "PKCS#1 v1.5 needs a SHA-1 or SHA-2 digest matching the input length");
            return 0;
        }
        memcpy(buf, prefix, plen);
        memcpy(buf + plen, tbs, tbslen);
        in = buf;
        inlen = plen + tbslen;
    }
    /* Without a digest the input is signed as given (a DigestInfo made by the caller). */
    return token_sign(c->key, &alg, in, inlen, sig, siglen);
}

static int sign_ecdsa(sig_ctx *c, unsigned char *sig, size_t *siglen, size_t sigsize,
                      const unsigned char *tbs, size_t tbslen)
{
    unsigned char rs[2 * 66 + 2];
    size_t rslen = sizeof rs, half;
    size_t order_bytes = ((size_t)EVP_PKEY_get_bits(c->key->pub) + 7) / 8;
    tc_sign_alg alg = {TC_SIGN_ECDSA, TC_HASH_NONE, TC_HASH_NONE, 0};
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *p = sig;
    int len, ok = 0;

    /* ECDSA uses the leftmost bits of a hash longer than the order; some tokens refuse such
     * input instead of truncating it. */
    if (tbslen > order_bytes)
        tbslen = order_bytes;
    if (!token_sign(c->key, &alg, tbs, tbslen, rs, &rslen))
        return 0;
    half = rslen / 2;
    if (rslen == 0 || rslen % 2 != 0) {
        raise_err(c->pc, R_TOKEN, __func__, "the token returned a malformed ECDSA signature");
        return 0;
    }
    es = ECDSA_SIG_new();
    r = BN_bin2bn(rs, (int)half, NULL);
    s = BN_bin2bn(rs + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s))
        goto out;
    r = s = NULL;
    len = i2d_ECDSA_SIG(es, NULL);
    if (len <= 0 || (size_t)len > sigsize) {
        raise_err(c->pc, R_BUFFER, __func__, "the signature buffer is too small");
        goto out;
    }
    len = i2d_ECDSA_SIG(es, &p);
    *siglen = (size_t)len;
    ok = 1;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ok;
}

static int sig_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vc;
    size_t max;

    if (c == NULL || !is_token_key(c->key))
        return 0;
    max = sig_max_size(c);
    if (sig == NULL) {
        *siglen = max;
        return 1;
    }
    if (strcmp(c->key->alg, "EC") == 0)
        return sign_ecdsa(c, sig, siglen, sigsize, tbs, tbslen);
    if (sigsize < max) {
        raise_err(c->pc, R_BUFFER, __func__, "the signature buffer is too small");
        return 0;
    }
    *siglen = sigsize > SIG_MAX ? SIG_MAX : sigsize;
    if (is_rsa(c))
        return sign_rsa(c, sig, siglen, tbs, tbslen);
    {
        tc_sign_alg alg = {TC_SIGN_EDDSA, TC_HASH_NONE, TC_HASH_NONE, 0};
        return token_sign(c->key, &alg, tbs, tbslen, sig, siglen);
    }
}

static int sig_digest_final(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sig_ctx *c = vc;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;

    if (c == NULL || c->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = sig_max_size(c);
        return 1;
    }
    if (c->mdctx == NULL || !EVP_DigestFinal_ex(c->mdctx, h, &hlen))
        return 0;
    return sig_sign(c, sig, siglen, sigsize, h, hlen);
}

static int sig_digest_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vc;

    if (c == NULL || c->key == NULL)
        return 0;
    if (is_ed(c))
        return sig_sign(c, sig, siglen, sigsize, tbs, tbslen);
    if (sig == NULL) {
        *siglen = sig_max_size(c);
        return 1;
    }
    return sig_digest_update(c, tbs, tbslen) && sig_digest_final(c, sig, siglen, sigsize);
}

/* The signature's AlgorithmIdentifier, as the default provider would write it for a verifier
 * set up the same way. */
static int sig_algid(sig_ctx *c, OSSL_PARAM *p)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char aid[256];
    OSSL_PARAM q[2];
    int ok = 0;
    const char *mdname = c->md != NULL ? EVP_MD_get0_name(c->md) : NULL;

    if (m == NULL || EVP_DigestVerifyInit_ex(m, &pctx, mdname, c->pc->libctx, "provider=default",
                                             c->key->pub, NULL) <= 0)
        goto out;
    if (is_rsa(c)) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, c->pad) <= 0)
            goto out;
        if (c->pad == RSA_PKCS1_PSS_PADDING && c->md != NULL &&
            (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_saltlen(c, c->md)) <= 0 ||
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, c->mgf1 != NULL ? c->mgf1 : c->md) <= 0))
            goto out;
    }
    q[0] = OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof aid);
    q[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_CTX_get_params(pctx, q) <= 0 || q[0].return_size == 0 ||
        q[0].return_size > sizeof aid)
        goto out;
    ok = OSSL_PARAM_set_octet_string(p, aid, q[0].return_size);
out:
    EVP_MD_CTX_free(m);
    return ok;
}

static int sig_get_ctx_params(void *vc, OSSL_PARAM params[])
{
    sig_ctx *c = vc;
    OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL && (c->key == NULL || !sig_algid(c, p)))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, c->md != NULL ? EVP_MD_get0_name(c->md) : ""))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_set_utf8_string(p, c->pad == RSA_PKCS1_PSS_PADDING
                                                   ? OSSL_PKEY_RSA_PAD_MODE_PSS
                                                   : OSSL_PKEY_RSA_PAD_MODE_PKCSV15))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->pad)) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            char num[16];
            const char *s = num;
            if (c->saltlen == RSA_PSS_SALTLEN_DIGEST)
                s = OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST;
            else if (c->saltlen == RSA_PSS_SALTLEN_MAX)
                s = OSSL_PKEY_RSA_PSS_SALT_LEN_MAX;
            else if (c->saltlen == RSA_PSS_SALTLEN_AUTO)
                s = OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO;
            else
                snprintf(num, sizeof num, "%d", c->saltlen);
            if (!OSSL_PARAM_set_utf8_string(p, s))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->saltlen)) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const EVP_MD *mgf = c->mgf1 != NULL ? c->mgf1 : c->md;
        if (!OSSL_PARAM_set_utf8_string(p, mgf != NULL ? EVP_MD_get0_name(mgf) : ""))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM sig_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END};

static const OSSL_PARAM *sig_gettable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return sig_gettable;
}

static const OSSL_DISPATCH signature_fns[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable_ctx_params},
    {0, NULL}};

/* ============================== RSA decryption ============================== */

typedef struct {
    prov_ctx *pc;
    prov_key *key;
    int pad; /* RSA_PKCS1_PADDING or RSA_PKCS1_OAEP_PADDING */
    EVP_MD *oaep_md, *mgf1;
    unsigned char *label;
    size_t label_len;
} dec_ctx;

static void *dec_newctx(void *provctx)
{
    dec_ctx *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->pc = provctx;
        c->pad = RSA_PKCS1_PADDING;
    }
    return c;
}

static void dec_freectx(void *vc)
{
    dec_ctx *c = vc;
    if (c == NULL)
        return;
    EVP_MD_free(c->oaep_md);
    EVP_MD_free(c->mgf1);
    free(c->label);
    free(c);
}

static int dec_set_md(dec_ctx *c, EVP_MD **slot, const OSSL_PARAM *p)
{
    const char *name = NULL;
    EVP_MD *md;
    tc_hash h;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
        return 0;
    md = EVP_MD_fetch(c->pc->libctx, name, NULL);
    if (md == NULL || !md_hash(md, &h)) {
        raise_err(c->pc, R_BAD_PARAM, __func__, "OAEP needs a SHA-1 or SHA-2 digest, not '%s'",
                  name);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(*slot);
    *slot = md;
    return 1;
}

static int dec_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
    dec_ctx *c = vc;
    const OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        int pad = 0;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
                pad = RSA_PKCS1_PADDING;
            else if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_OAEP) == 0)
                pad = RSA_PKCS1_OAEP_PADDING;
        } else if (!OSSL_PARAM_get_int(p, &pad)) {
            return 0;
        }
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_OAEP_PADDING) {
            raise_err(c->pc, R_BAD_PARAM, __func__,
                      "only PKCS#1 v1.5 and OAEP padding decrypt with a token key");
            return 0;
        }
        c->pad = pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL && !dec_set_md(c, &c->oaep_md, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL && !dec_set_md(c, &c->mgf1, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL) {
        void *label = NULL;
        size_t len = 0;
        if (!OSSL_PARAM_get_octet_string(p, &label, 0, &len))
            return 0;
        free(c->label);
        c->label = malloc(len ? len : 1);
        if (c->label == NULL) {
            OPENSSL_free(label);
            return 0;
        }
        memcpy(c->label, label, len);
        c->label_len = len;
        OPENSSL_free(label);
    }
    return 1;
}

static const OSSL_PARAM dec_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0), OSSL_PARAM_END};

static const OSSL_PARAM *dec_settable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return dec_settable;
}

static int dec_get_ctx_params(void *vc, OSSL_PARAM params[])
{
    dec_ctx *c = vc;
    OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_set_utf8_string(p, c->pad == RSA_PKCS1_OAEP_PADDING
                                                   ? OSSL_PKEY_RSA_PAD_MODE_OAEP
                                                   : OSSL_PKEY_RSA_PAD_MODE_PKCSV15))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->pad)) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, c->oaep_md != NULL ? EVP_MD_get0_name(c->oaep_md) : "SHA1"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const EVP_MD *m = c->mgf1 != NULL ? c->mgf1 : c->oaep_md;
        if (!OSSL_PARAM_set_utf8_string(p, m != NULL ? EVP_MD_get0_name(m) : "SHA1"))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM dec_gettable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0), OSSL_PARAM_END};

static const OSSL_PARAM *dec_gettable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return dec_gettable;
}

static int dec_init(void *vc, void *provkey, const OSSL_PARAM params[])
{
    dec_ctx *c = vc;

    if (c == NULL || !is_token_key(provkey))
        return 0;
    c->key = provkey;
    return dec_set_ctx_params(c, params);
}

static int dec_decrypt(void *vc, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    dec_ctx *c = vc;
    unsigned char buf[SIG_MAX];
    size_t n = sizeof buf;
    tc_decrypt_alg alg = {TC_DECRYPT_RSA_PKCS1, TC_HASH_NONE, TC_HASH_NONE, NULL, 0};
    size_t max;
    int ok = 0;

    if (c == NULL || !is_token_key(c->key))
        return 0;
    max = (size_t)EVP_PKEY_get_size(c->key->pub);
    if (out == NULL) {
        *outlen = max;
        return 1;
    }
    if (c->pad == RSA_PKCS1_OAEP_PADDING) {
        EVP_MD *md = c->oaep_md;
        EVP_MD *sha1 = NULL;
        if (md == NULL)
            md = sha1 = EVP_MD_fetch(c->pc->libctx, "SHA1", NULL);
        if (!md_hash(md, &alg.hash) || !md_hash(c->mgf1 != NULL ? c->mgf1 : md, &alg.mgf1)) {
            EVP_MD_free(sha1);
            return 0;
        }
        EVP_MD_free(sha1);
        alg.mech = TC_DECRYPT_RSA_OAEP;
        alg.label = c->label;
        alg.label_len = c->label_len;
    }
    if (tc_key_decrypt(c->pc->tc, c->key->key, &alg, in, inlen, buf, &n) != TC_OK) {
        token_failed(c->key, "decryption");
        goto out;
    }
    if (n > outsize) {
        raise_err(c->pc, R_BUFFER, __func__, "the output buffer is too small");
        goto out;
    }
    memcpy(out, buf, n);
    *outlen = n;
    ok = 1;
out:
    /* The plaintext may be a secret (a key transported to us). */
    tc_memzero(buf, sizeof buf);
    return ok;
}

static const OSSL_DISPATCH asym_cipher_fns[] = {
    {OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))dec_newctx},
    {OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))dec_freectx},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))dec_init},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))dec_decrypt},
    {OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))dec_get_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))dec_gettable_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))dec_set_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))dec_settable_ctx_params},
    {0, NULL}};

/* ============================== the provider ============================== */

/* The names are the default provider's, so that OpenSSL treats our keys as the same types. */
static const OSSL_ALGORITHM keymgmt_algs[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, rsa_keymgmt, "RSA key on a token"},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", PROV_PROPS, ec_keymgmt, "EC key on a token"},
    {"ED25519:1.3.101.112", PROV_PROPS, ed_keymgmt, "Ed25519 key on a token"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM signature_algs[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, signature_fns,
     "RSA signatures on a token"},
    {"ECDSA", PROV_PROPS, signature_fns, "ECDSA on a token"},
    {"ED25519:1.3.101.112", PROV_PROPS, signature_fns, "Ed25519 on a token"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM asym_cipher_algs[] = {{"RSA:rsaEncryption:1.2.840.113549.1.1.1",
                                                   PROV_PROPS, asym_cipher_fns,
                                                   "RSA decryption on a token"},
                                                  {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (op) {
    case OSSL_OP_KEYMGMT:
        return keymgmt_algs;
    case OSSL_OP_SIGNATURE:
        return signature_algs;
    case OSSL_OP_ASYM_CIPHER:
        return asym_cipher_algs;
    }
    return NULL;
}

static const OSSL_ITEM reason_strings[] = {
    {R_TOKEN, "token operation failed"},        {R_NOT_TOKEN_KEY, "not a token key"},
    {R_BAD_PARAM, "unsupported parameter"},     {R_BUFFER, "buffer too small"},
    {R_UNSUPPORTED, "operation not supported"}, {0, NULL}};

static const OSSL_ITEM *prov_reasons(void *provctx)
{
    (void)provctx;
    return reason_strings;
}

static void prov_teardown(void *provctx)
{
    free(provctx);
}

static const OSSL_DISPATCH prov_fns[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_reasons},
    {0, NULL}};

static int prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx)
{
    prov_ctx *pc = calloc(1, sizeof *pc);
    OSSL_FUNC_core_get_libctx_fn *get_libctx = NULL;

    if (pc == NULL)
        return 0;
    pc->handle = handle;
    for (; in != NULL && in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_LIBCTX:
            get_libctx = OSSL_FUNC_core_get_libctx(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            pc->new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            pc->set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            pc->vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        }
    }
    /* A built-in provider shares libcrypto with its core: the core's context is the library
     * context itself. */
    if (get_libctx == NULL) {
        free(pc);
        return 0;
    }
    pc->libctx = (OSSL_LIB_CTX *)get_libctx(handle);
    *out = prov_fns;
    *provctx = pc;
    return 1;
}

OSSL_LIB_CTX *tc_libctx(tokencert_ctx *ctx)
{
    prov_ctx *pc;

    if (ctx->libctx != NULL)
        return ctx->libctx;
    ctx->libctx = OSSL_LIB_CTX_new();
    if (ctx->libctx == NULL) {
        tc_error(ctx, TC_ERR_NOMEM, "cannot create an OpenSSL library context");
        return NULL;
    }
    ctx->libctx_free = tc_provider_ctx_free;
    ctx->prov_default = OSSL_PROVIDER_load(ctx->libctx, "default");
    /* PKCS#12 files from portals still use RC2 and 3DES: the legacy provider decrypts them. */
    ctx->prov_legacy = OSSL_PROVIDER_load(ctx->libctx, "legacy");
    if (ctx->prov_default == NULL) {
        tc_error(ctx, TC_ERR_INTERNAL, "cannot load OpenSSL's default provider");
        tc_provider_ctx_free(ctx);
        return NULL;
    }
    if (!OSSL_PROVIDER_add_builtin(ctx->libctx, PROV_NAME, prov_init) ||
        (ctx->prov_tokencert = OSSL_PROVIDER_load(ctx->libctx, PROV_NAME)) == NULL ||
        (pc = OSSL_PROVIDER_get0_provider_ctx(ctx->prov_tokencert)) == NULL ||
        /* Plain keys are always served by the default provider (see the top of this file). */
        !EVP_set_default_properties(ctx->libctx, "?provider=default")) {
        tc_error(ctx, TC_ERR_INTERNAL, "cannot load the library's token-key provider");
        tc_provider_ctx_free(ctx);
        return NULL;
    }
    pc->tc = ctx;
    return ctx->libctx;
}

void tc_provider_ctx_free(tokencert_ctx *ctx)
{
    if (ctx->prov_tokencert != NULL)
        OSSL_PROVIDER_unload(ctx->prov_tokencert);
    if (ctx->prov_legacy != NULL)
        OSSL_PROVIDER_unload(ctx->prov_legacy);
    if (ctx->prov_default != NULL)
        OSSL_PROVIDER_unload(ctx->prov_default);
    OSSL_LIB_CTX_free(ctx->libctx);
    ctx->prov_tokencert = ctx->prov_legacy = ctx->prov_default = NULL;
    ctx->libctx = NULL;
}

tokencert_err tc_key_pkey(tokencert_ctx *ctx, tc_key *key, EVP_PKEY **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    OSSL_LIB_CTX *lib;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM params[2];
    const char *alg;

    tc_return_val_if_fail(ctx != NULL && key != NULL && out != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    lib = tc_libctx(ctx);
    if (lib == NULL)
        return TC_ERR_INTERNAL;
    if (key->type == TC_KEY_TYPE_RSA)
        alg = "RSA";
    else if (key->type == TC_KEY_TYPE_EC)
        alg = "EC";
    else if (key->type == TC_KEY_TYPE_EDDSA && EVP_PKEY_is_a(key->pub_pkey, "ED25519"))
        alg = "ED25519";
    else
        return tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                        "key '%s': only RSA, EC and Ed25519 keys sign through OpenSSL", key->label);
    params[0] = OSSL_PARAM_construct_octet_ptr(PARAM_TOKEN_KEY, (void **)&key, sizeof *key);
    params[1] = OSSL_PARAM_construct_end();
    pctx = EVP_PKEY_CTX_new_from_name(lib, alg, PROV_PROPS);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, out, EVP_PKEY_KEYPAIR, params) <= 0) {
        *out = NULL;
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot make an OpenSSL key of token key '%s'",
                       key->label);
        goto out;
    }
    ret = TC_OK;
out:
    EVP_PKEY_CTX_free(pctx);
    return ret;
}
