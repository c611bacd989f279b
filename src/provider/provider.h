/* provider/provider.h — the provider layer: the built-in OpenSSL provider that makes a token key an
 * EVP_PKEY, loaded into the library's private OSSL_LIB_CTX. What the files of the provider share
 * among themselves is in provider/local.h. Never installed. */
#ifndef TOKENCERT_SRC_PROVIDER_PROVIDER_H
#define TOKENCERT_SRC_PROVIDER_PROVIDER_H

#include "keys/keys.h"

/* ---- the built-in OpenSSL provider (libctx.c) ---- */
/* The library's private OSSL_LIB_CTX (tc_libctx_plain(): default and legacy providers) with the
 * tokencert provider loaded too; created on first use, freed with ctx. NULL (with the error
 * recorded) when it cannot be set up. */
OSSL_LIB_CTX *tc_libctx(tokencert_ctx *ctx);
/* Unloads the tokencert provider; called by tokencert_ctx_free() before the context goes. */
void tc_provider_ctx_free(tokencert_ctx *ctx);

/* ---- token keys as OpenSSL keys (keymgmt.c) ---- */
/* An EVP_PKEY in tc_libctx() whose private operations (sign, decrypt) run on the token through
 * key, over key's session and login. key must outlive the EVP_PKEY. */
tokencert_err tc_key_pkey(tokencert_ctx *ctx, tc_key *key, EVP_PKEY **out);

#endif /* TOKENCERT_SRC_PROVIDER_PROVIDER_H */
