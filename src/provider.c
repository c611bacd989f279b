/* provider.c — the library's private OpenSSL library context, and the built-in OpenSSL 3
 * provider that makes a token key an EVP_PKEY. (The provider itself: placeholder until
 * implemented.) */
#include "internal.h"

#include <openssl/provider.h>

OSSL_LIB_CTX *tc_libctx(tokencert_ctx *ctx)
{
    if (ctx->libctx != NULL)
        return ctx->libctx;
    ctx->libctx = OSSL_LIB_CTX_new();
    if (ctx->libctx == NULL) {
        tc_error(ctx, TC_ERR_NOMEM, "cannot create an OpenSSL library context");
        return NULL;
    }
    ctx->prov_default = OSSL_PROVIDER_load(ctx->libctx, "default");
    /* PKCS#12 files from portals still use RC2 and 3DES: the legacy provider decrypts them. */
    ctx->prov_legacy = OSSL_PROVIDER_load(ctx->libctx, "legacy");
    if (ctx->prov_default == NULL) {
        tc_error(ctx, TC_ERR_INTERNAL, "cannot load OpenSSL's default provider");
        tc_provider_ctx_free(ctx);
        return NULL;
    }
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
