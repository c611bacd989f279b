/* key.c — private keys on the token as the library uses them: found by URI or CKA_ID, with their
 * public half read once; the CKA_ID rule. (Placeholder until implemented.) */
#include "internal.h"

tokencert_err tc_key_open(tokencert_ctx *ctx, tc_session *s, P11KitUri *uri, tc_key **out)
{
    (void)s;
    (void)uri;
    *out = NULL;
    return tc_error(ctx, TC_ERR_NOT_SUPPORTED, "token keys are not implemented yet");
}
