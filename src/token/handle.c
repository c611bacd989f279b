/* handle.c — an open token: the one token a URI selects, one session and at most one login shared
 * by everything a command does on it (key generation, signing, writing objects), and secrets read
 * from the same sources as PINs. */
#include "token/token.h"

#include <stdlib.h>
#include <string.h>

tokencert_err tokencert_secret_read(tokencert_ctx *ctx, const char *source, int interactive,
                                    const char *prompt, const char *what, char **out)
{
    tokencert_err ret;

    tc_return_val_if_fail(ctx != NULL && out != NULL && what != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    if (source != NULL)
        ret = tc_pin_from_source(ctx, source, out);
    else if (interactive)
        ret = tc_pin_prompt(ctx, prompt != NULL ? prompt : "Password: ", out);
    else
        ret = tc_error(ctx, TC_ERR_PIN_SOURCE,
                       "a %s is needed and none was given: give a source (file:PATH, env:VAR, "
                       "fd:N) or run on a terminal",
                       what);
    if (ret != TC_OK && ret != TC_ERR_NOMEM && ret != TC_ERR_CANCELLED) {
        /* Name the secret: the reader's messages speak of PINs. */
        char *detail = tc_strdup(tokencert_ctx_error(ctx));
        if (detail != NULL)
            tc_error(ctx, ret, "%s: %s", what, detail);
        free(detail);
    }
    return ret;
}

void tokencert_secret_free(char *secret)
{
    tc_secret_free(secret);
}

static char *candidates(const tc_slot *slots, size_t n)
{
    char *list = tc_strdup(""), *next;
    size_t i;

    for (i = 0; list != NULL && i < n; i++) {
        char *label = tc_token_string(slots[i].token_info.label, sizeof slots[i].token_info.label);
        next = tc_asprintf("%s%s'%s'", list, i ? ", " : "", label != NULL ? label : "?");
        free(label);
        free(list);
        list = next;
    }
    return list;
}

tokencert_err tokencert_token_open(tokencert_ctx *ctx, const char *uri,
                                   const tokencert_login_opts *opts, unsigned flags,
                                   tokencert_token **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    P11KitUri *parsed = NULL;
    tc_slot *slots = NULL;
    size_t n_slots = 0, i, n_usable = 0, pick = 0;
    tokencert_token *t = NULL;
    const char *uri_pin = NULL;

    tc_return_val_if_fail(ctx != NULL && out != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    ret = tc_uri_parse(ctx, uri, &parsed);
    if (ret != TC_OK)
        goto out;
    ret = tc_slots_match(ctx, parsed, &slots, &n_slots);
    if (ret != TC_OK)
        goto out;
    for (i = 0; i < n_slots; i++) {
        if (!slots[i].present || !(slots[i].token_info.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if (n_usable++ == 0)
            pick = i;
    }
    if (n_usable == 0) {
        ret = tc_error(ctx, TC_ERR_TOKEN_ABSENT, "%s",
                       tc_uri_names_token(parsed)
                           ? "no token matching the URI is present (is it inserted?)"
                           : "no initialised token is present in any slot (is it inserted?)");
        goto out;
    }
    if (n_usable > 1) {
        tc_slot *usable = calloc(n_usable, sizeof *usable);
        size_t k = 0;
        char *names;
        if (usable == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        for (i = 0; i < n_slots; i++)
            if (slots[i].present && (slots[i].token_info.flags & CKF_TOKEN_INITIALIZED))
                usable[k++] = slots[i];
        names = candidates(usable, n_usable);
        free(usable);
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "the URI matches %zu tokens (%s): name one with token=LABEL or serial=",
                       n_usable, names != NULL ? names : "?");
        free(names);
        goto out;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    t->ctx = ctx;
    t->slot = slots[pick];
    ret = tc_token_info_fill(&t->slot, &t->info);
    if (ret != TC_OK)
        goto out;
    /* Refused before the PIN is asked for: a PIN spent on a token that cannot be written helps
     * nobody. */
    if ((flags & TOKENCERT_OPEN_RW) && (t->slot.token_info.flags & CKF_WRITE_PROTECTED)) {
        ret = tc_error(
            ctx, TC_ERR_NOT_SUPPORTED,
            "token '%s' is write-protected: no key can be generated and no object written or "
            "deleted",
            t->info.label);
        goto out;
    }
    ret = tc_session_open(ctx, &t->slot, (flags & TOKENCERT_OPEN_RW) != 0, &t->session);
    if (ret != TC_OK)
        goto out;
    uri_pin = p11_kit_uri_get_pin_source(parsed);
    /* The token information was read while matching, an instant ago: the login need not ask
     * for the PIN flags again. */
    t->slot.info_fresh = 1;
    if (flags & TOKENCERT_OPEN_LOGIN) {
        ret = tc_session_login(ctx, &t->session, opts, uri_pin);
        if (ret != TC_OK)
            goto out;
    }
    t->uri = parsed;
    parsed = NULL;
    *out = t;
    t = NULL;
    ret = TC_OK;
out:
    tokencert_token_close(t);
    free(slots);
    if (parsed != NULL)
        p11_kit_uri_free(parsed);
    return ret;
}

void tokencert_token_close(tokencert_token *t)
{
    if (t == NULL)
        return;
    /* Closing the last session logs the user out (PKCS#11 2.40, section 5.6). */
    tc_session_close(&t->session);
    tc_token_info_clear(&t->info);
    if (t->uri != NULL)
        p11_kit_uri_free(t->uri);
    free(t);
}

const tokencert_token_info *tokencert_token_get_info(const tokencert_token *t)
{
    return t == NULL ? NULL : &t->info;
}

tokencert_err tc_token_object_uri(tokencert_token *t, const char *uri, P11KitUri **out,
                                  int *names_object)
{
    tokencert_err ret;
    P11KitUri *parsed = NULL;
    CK_TOKEN_INFO ti;

    *out = NULL;
    if (names_object != NULL)
        *names_object = 0;
    ret = tc_uri_parse(t->ctx, uri, &parsed);
    if (ret != TC_OK)
        return ret;
    ti = t->slot.token_info;
    if (tc_uri_names_token(parsed) && !p11_kit_uri_match_token_info(parsed, &ti)) {
        p11_kit_uri_free(parsed);
        return tc_error(t->ctx, TC_ERR_INVALID_ARG,
                        "the object URI names another token than '%s' (%s)", t->info.label,
                        t->info.uri);
    }
    if (names_object != NULL)
        *names_object = tc_uri_names_object(parsed);
    *out = parsed;
    return TC_OK;
}

char *tc_token_object_uri_format(const tokencert_token *t, tc_obj_class obj_class,
                                 const unsigned char *id, size_t id_len, const char *label)
{
    P11KitUri *uri = p11_kit_uri_new();
    CK_OBJECT_CLASS cls = tc_obj_class_to_ck(obj_class);
    CK_ATTRIBUTE a_cls = {CKA_CLASS, &cls, sizeof cls};
    CK_ATTRIBUTE a_id = {CKA_ID, (void *)id, (CK_ULONG)id_len};
    CK_ATTRIBUTE a_label = {CKA_LABEL, (void *)label, label != NULL ? (CK_ULONG)strlen(label) : 0};
    char *s = NULL;

    if (uri == NULL)
        return NULL;
    *p11_kit_uri_get_token_info(uri) = t->slot.token_info;
    if (p11_kit_uri_set_attribute(uri, &a_cls) != P11_KIT_URI_OK ||
        (id_len > 0 && p11_kit_uri_set_attribute(uri, &a_id) != P11_KIT_URI_OK) ||
        (a_label.ulValueLen > 0 && p11_kit_uri_set_attribute(uri, &a_label) != P11_KIT_URI_OK) ||
        p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &s) != P11_KIT_URI_OK)
        s = NULL;
    p11_kit_uri_free(uri);
    return s;
}
