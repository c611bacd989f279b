/* libctx.c — the built-in OpenSSL 3 provider ("tokencert") that makes a token key an EVP_PKEY:
 * its entry point, the algorithms it offers, its error reporting, and its loading into the
 * library's private OSSL_LIB_CTX (which the token layer creates with OpenSSL's default and legacy
 * providers).
 *
 * The provider offers key management for RSA, EC and Ed25519 (keymgmt.c), signatures (RSA
 * PKCS#1 v1.5 and PSS, ECDSA, EdDSA; signature.c) and RSA decryption (cipher.c). Its keys hold a
 * borrowed tc_key: the private operations run on the token over the key's session; everything
 * public (sizes, the encoded public key, comparisons, the algorithm identifiers of signatures) is
 * answered by a plain public key of the default provider. Digests are computed in software, so
 * every token that offers the raw mechanisms (RSA PKCS#1 v1.5 and PSS, ECDSA and EdDSA without
 * hashing) works.
 *
 * How OpenSSL 3.0 picks an implementation matters here: for an operation on a key it first
 * fetches the algorithm with the context's properties and tries to export the key to that
 * provider; only when the export fails does it use the key's own provider. So the library context
 * prefers the default provider (plain keys never land here), and our keys refuse an export that
 * asks for the private half (token keys are then always signed with here), while the public half
 * exports freely, which is what encoders need for the SubjectPublicKeyInfo. */
#include "provider/local.h"

#include <stdarg.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/provider.h>

void tc_provider_raise(prov_ctx *pc, int reason, const char *func, const char *fmt, ...)
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

void tc_provider_token_failed(prov_key *k, const char *op)
{
    prov_ctx *pc = k->pc;

    if (pc->tc != NULL && tokencert_ctx_error(pc->tc) != NULL)
        tc_provider_raise(pc, R_TOKEN, op, "%s", tokencert_ctx_error(pc->tc));
    else
        tc_provider_raise(pc, R_TOKEN, op, "the token's %s failed", op);
}

int tc_provider_is_token_key(prov_key *k)
{
    if (k == NULL || k->key == NULL || k->pub == NULL) {
        tc_provider_raise(k != NULL ? k->pc : NULL, R_NOT_TOKEN_KEY, __func__,
                          "the key is not a token key: it can only be compared with");
        return 0;
    }
    return 1;
}

int tc_provider_md_hash(const EVP_MD *md, tc_hash *h)
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

/* The names are the default provider's, so that OpenSSL treats our keys as the same types. */
const OSSL_ALGORITHM tc_provider_keymgmt_algs[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, tc_provider_rsa_keymgmt,
     "RSA key on a token"},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", PROV_PROPS, tc_provider_ec_keymgmt,
     "EC key on a token"},
    {"ED25519:1.3.101.112", PROV_PROPS, tc_provider_ed_keymgmt, "Ed25519 key on a token"},
    {NULL, NULL, NULL, NULL}};

const OSSL_ALGORITHM tc_provider_signature_algs[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, tc_provider_signature,
     "RSA signatures on a token"},
    {"ECDSA", PROV_PROPS, tc_provider_signature, "ECDSA on a token"},
    {"ED25519:1.3.101.112", PROV_PROPS, tc_provider_signature, "Ed25519 on a token"},
    {NULL, NULL, NULL, NULL}};

const OSSL_ALGORITHM tc_provider_asym_cipher_algs[] = {{"RSA:rsaEncryption:1.2.840.113549.1.1.1",
                                                        PROV_PROPS, tc_provider_asym_cipher,
                                                        "RSA decryption on a token"},
                                                       {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (op) {
    case OSSL_OP_KEYMGMT:
        return tc_provider_keymgmt_algs;
    case OSSL_OP_SIGNATURE:
        return tc_provider_signature_algs;
    case OSSL_OP_ASYM_CIPHER:
        return tc_provider_asym_cipher_algs;
    }
    return NULL;
}

const OSSL_ITEM tc_provider_reason_strings[] = {
    {R_TOKEN, "token operation failed"},        {R_NOT_TOKEN_KEY, "not a token key"},
    {R_BAD_PARAM, "unsupported parameter"},     {R_BUFFER, "buffer too small"},
    {R_UNSUPPORTED, "operation not supported"}, {0, NULL}};

static const OSSL_ITEM *prov_reasons(void *provctx)
{
    (void)provctx;
    return tc_provider_reason_strings;
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
    tc_provider_core_fns(pc, in);
    for (; in != NULL && in->function_id != 0; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_LIBCTX)
            get_libctx = OSSL_FUNC_core_get_libctx(in);
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

void tc_provider_core_fns(prov_ctx *pc, const OSSL_DISPATCH *in)
{
    for (; in != NULL && in->function_id != 0; in++) {
        switch (in->function_id) {
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
}

void tc_provider_ctx_free(tokencert_ctx *ctx)
{
    if (ctx->prov_tokencert != NULL)
        OSSL_PROVIDER_unload(ctx->prov_tokencert);
    ctx->prov_tokencert = NULL;
}

OSSL_LIB_CTX *tc_libctx(tokencert_ctx *ctx)
{
    OSSL_LIB_CTX *lib = tc_libctx_plain(ctx);
    prov_ctx *pc;

    if (lib == NULL || ctx->prov_tokencert != NULL)
        return lib;
    /* Unloaded before the token layer frees the context it lives in. */
    ctx->libctx_free = tc_provider_ctx_free;
    if (!OSSL_PROVIDER_add_builtin(lib, PROV_NAME, prov_init) ||
        (ctx->prov_tokencert = OSSL_PROVIDER_load(lib, PROV_NAME)) == NULL ||
        (pc = OSSL_PROVIDER_get0_provider_ctx(ctx->prov_tokencert)) == NULL) {
        tc_error(ctx, TC_ERR_INTERNAL, "cannot load the library's token-key provider");
        tc_provider_ctx_free(ctx);
        return NULL;
    }
    pc->tc = ctx;
    return lib;
}
