/* init.c — making a new token: C_InitToken on a free slot, then the user PIN set by the SO. */
#include "token/init.h"

#include <stdlib.h>
#include <string.h>

/* The slots whose token label is label; set on the URI directly, so that no label needs escaping.
 */
static tokencert_err slots_by_label(tokencert_ctx *ctx, const char *label, tc_slot **out, size_t *n)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    P11KitUri *uri = NULL;

    *out = NULL;
    *n = 0;
    uri = p11_kit_uri_new();
    if (uri == NULL)
        return TC_ERR_NOMEM;
    {
        CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(uri);
        size_t len = strlen(label);
        if (len > sizeof ti->label) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG, "the token label '%s' is longer than %zu bytes",
                           label, sizeof ti->label);
            goto out;
        }
        memset(ti->label, ' ', sizeof ti->label);
        memcpy(ti->label, label, len);
    }
    ret = tc_slots_match(ctx, uri, out, n);
out:
    p11_kit_uri_free(uri);
    return ret;
}

tokencert_err tc_token_create(tokencert_ctx *ctx, const char *label, const char *so_pin,
                              const char *user_pin)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    P11KitUri *any = NULL;
    tc_slot *slots = NULL, *pick = NULL;
    size_t n = 0, i, len;
    unsigned char padded[32];
    tc_session s;
    CK_RV rv;

    memset(&s, 0, sizeof s);
    tc_return_val_if_fail(ctx != NULL && label != NULL && so_pin != NULL && user_pin != NULL,
                          TC_ERR_INVALID_ARG);
    len = strlen(label);
    if (len == 0 || len > sizeof padded) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "a token label has 1 to %zu bytes", sizeof padded);
        goto out;
    }
    ret = tc_uri_parse(ctx, "pkcs11:", &any);
    if (ret == TC_OK)
        ret = tc_slots_match(ctx, any, &slots, &n);
    if (ret != TC_OK)
        goto out;
    for (i = 0; i < n && pick == NULL; i++)
        if (slots[i].present && !(slots[i].token_info.flags & CKF_TOKEN_INITIALIZED))
            pick = &slots[i];
    if (pick == NULL) {
        ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED, "no module offers a free slot for a new token");
        goto out;
    }
    memset(padded, ' ', sizeof padded);
    memcpy(padded, label, len);
    rv = tc_p11_init_token(pick->module, pick->slot, (unsigned char *)so_pin,
                           (CK_ULONG)strlen(so_pin), padded);
    if (rv != CKR_OK) {
        ret = tc_error(ctx, tc_err_from_rv(rv), "cannot initialise the token '%s': C_InitToken: %s",
                       label, tc_ckr_name(rv));
        goto out;
    }
    free(slots);
    slots = NULL;
    ret = slots_by_label(ctx, label, &slots, &n);
    if (ret == TC_OK && (n != 1 || !slots[0].present))
        ret = tc_error(ctx, TC_ERR_INTERNAL,
                       "the token '%s' is not found (or not once) after C_InitToken", label);
    if (ret == TC_OK)
        ret = tc_session_open(ctx, &slots[0], 1, &s);
    if (ret != TC_OK)
        goto out;
    rv = tc_p11_login(slots[0].module, s.h, CKU_SO, (unsigned char *)so_pin,
                      (CK_ULONG)strlen(so_pin));
    if (rv == CKR_OK) {
        rv = tc_p11_init_pin(slots[0].module, s.h, (unsigned char *)user_pin,
                             (CK_ULONG)strlen(user_pin));
        tc_p11_logout(slots[0].module, s.h);
    }
    if (rv != CKR_OK) {
        ret = tc_error(ctx, tc_err_from_rv(rv), "cannot set the user PIN of the token '%s': %s",
                       label, tc_ckr_name(rv));
        goto out;
    }
    ret = TC_OK;
out:
    tc_session_close(&s);
    free(slots);
    if (any != NULL)
        p11_kit_uri_free(any);
    return ret;
}
