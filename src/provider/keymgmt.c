/* keymgmt.c — the provider's key managers (RSA, EC, Ed25519): a token key as OpenSSL key data,
 * its public half answered by a plain default-provider key; and tc_key_pkey(), which makes the
 * EVP_PKEY of a token key. */
#include "provider/local.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

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
    /* Public halves only (another key compared with ours): no private key enters here. In the
     * loadable module, not even those: there the application's fetches may land here for any key
     * (nothing makes its context prefer the default provider), and a foreign key this provider
     * accepted would be verified or encrypted with here, which it cannot do. Refused, OpenSSL uses
     * the key's own provider, and compares keys by exporting ours (the public half) instead. */
    if (k->pc->loadable)
        return 0;
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

/* A key the module's store found (store.c): the reference is a prov_key_ref, which only this
 * provider's store makes, and which OpenSSL hands only to this provider's key managers. */
static void *km_load(const void *reference, size_t reference_sz, const char *alg)
{
    const prov_key_ref *r = reference;
    prov_key *k;

    if (r == NULL || reference_sz != sizeof *r || r->magic != PROV_KEY_REF_MAGIC ||
        r->key == NULL || r->key->pub_pkey == NULL || (k = key_new(r->pc, alg)) == NULL)
        return NULL;
    if (!key_type_fits(k, r->key) || !EVP_PKEY_up_ref(r->key->pub_pkey)) {
        free(k);
        return NULL;
    }
    k->key = r->key;
    k->pub = r->key->pub_pkey;
    return k;
}

static void *rsa_km_load(const void *reference, size_t reference_sz)
{
    return km_load(reference, reference_sz, "RSA");
}
static void *ec_km_load(const void *reference, size_t reference_sz)
{
    return km_load(reference, reference_sz, "EC");
}
static void *ed_km_load(const void *reference, size_t reference_sz)
{
    return km_load(reference, reference_sz, "ED25519");
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
    const OSSL_DISPATCH tc_provider_##pfx##_keymgmt[] = {                                          \
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))pfx##_km_new},                                     \
        {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},                                         \
        {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},                                           \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                                           \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                                       \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                                     \
        {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))pfx##_km_load},                                   \
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
