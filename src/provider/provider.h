/* provider/provider.h — the private OpenSSL library context and the built-in provider that makes a
 * token key an EVP_PKEY. Never installed. */
#ifndef TOKENCERT_SRC_PROVIDER_PROVIDER_H
#define TOKENCERT_SRC_PROVIDER_PROVIDER_H

#include "keys/keys.h"

/* ---- the built-in OpenSSL provider (provider.c) ---- */
/* The library's private OSSL_LIB_CTX with the default, legacy and tokencert providers; created on
 * first use, freed with ctx. NULL (with the error recorded) when it cannot be set up. */
OSSL_LIB_CTX *tc_libctx(tokencert_ctx *ctx);
void tc_provider_ctx_free(tokencert_ctx *ctx);
/* An EVP_PKEY in tc_libctx() whose private operations (sign, decrypt) run on the token through
 * key, over key's session and login. key must outlive the EVP_PKEY. */
tokencert_err tc_key_pkey(tokencert_ctx *ctx, tc_key *key, EVP_PKEY **out);

#endif /* TOKENCERT_SRC_PROVIDER_PROVIDER_H */
