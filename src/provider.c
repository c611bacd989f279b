/* provider.c — the built-in OpenSSL 3 provider that makes a token key an EVP_PKEY.
 * (Placeholder until implemented.) */
#include "internal.h"

void tc_provider_ctx_free(tokencert_ctx *ctx)
{
    (void)ctx;
}
