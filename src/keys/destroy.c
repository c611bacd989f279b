/* destroy.c — removing a key pair from its token. */
#include "keys/destroy.h"

tokencert_err tc_key_destroy(tokencert_ctx *ctx, tc_key *k)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_session *s;
    CK_RV rv;

    tc_return_val_if_fail(ctx != NULL && k != NULL && k->session != NULL, TC_ERR_INVALID_ARG);
    s = k->session;
    rv = tc_p11_destroy_object(s->slot->module, s->h, k->priv);
    if (rv != CKR_OK) {
        ret = tc_session_error(ctx, s, "C_DestroyObject", rv);
        goto out;
    }
    /* The private half is gone: a public object left behind is only clutter, but say so. */
    if (k->pub != CK_INVALID_HANDLE) {
        rv = tc_p11_destroy_object(s->slot->module, s->h, k->pub);
        if (rv != CKR_OK)
            tc_warning(ctx, "the public key object of a removed key stays on the token: %s",
                       tc_ckr_name(rv));
    }
    ret = TC_OK;
out:
    tc_session_forget_keys(s);
    return ret;
}
