/* token.c — slots, tokens, sessions and login: URI matching against module, slot and token
 * information, token URIs for display, and the PIN-lockout-safe login. */
#include "token/token.h"

#include <stdlib.h>
#include <string.h>

/* p11-kit says that a URI has an attribute it does not know, not which: find it for the message.
 * Only the attribute names are split out; the values are left to p11-kit's parser. */
static char *unknown_attribute(const char *s)
{
    static const char *const known[] = {"token",
                                        "manufacturer",
                                        "serial",
                                        "model",
                                        "library-manufacturer",
                                        "library-description",
                                        "library-version",
                                        "object",
                                        "type",
                                        "id",
                                        "slot-description",
                                        "slot-manufacturer",
                                        "slot-id",
                                        "pin-source",
                                        "pin-value",
                                        "module-name",
                                        "module-path"};
    const char *p = s + strlen("pkcs11:");

    while (*p != '\0') {
        size_t len = strcspn(p, "=;?&"), i;
        int found = len == 0;
        for (i = 0; i < sizeof known / sizeof known[0] && !found; i++)
            found = strlen(known[i]) == len && strncmp(known[i], p, len) == 0;
        if (!found)
            return tc_printable((const unsigned char *)p, len, 64);
        p += len;
        p += strcspn(p, ";?&");
        if (*p != '\0')
            p++;
    }
    return NULL;
}

tokencert_err tc_uri_parse(tokencert_ctx *ctx, const char *s, P11KitUri **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    P11KitUri *uri;
    int r;

    *out = NULL;
    uri = p11_kit_uri_new();
    if (uri == NULL)
        return TC_ERR_NOMEM;
    if (s == NULL || *s == '\0') {
        *out = uri;
        return TC_OK;
    }
    r = p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, uri);
    if (r != P11_KIT_URI_OK) {
        /* A URI carrying a pin-value is never echoed. */
        if (strstr(s, "pin-value") == NULL)
            ret = tc_error(ctx, TC_ERR_URI,
                           "malformed PKCS#11 URI '%.200s': %s (expected e.g. pkcs11:token=NAME)",
                           s, p11_kit_uri_message(r));
        else
            ret = tc_error(ctx, TC_ERR_URI, "malformed PKCS#11 URI: %s", p11_kit_uri_message(r));
        goto out;
    }
    if (p11_kit_uri_get_pin_value(uri) != NULL) {
        ret = tc_error(ctx, TC_ERR_URI,
                       "the URI carries a pin-value: a PIN on the command line is refused; use "
                       "pin-source or --pin-source");
        goto out;
    }
    if (p11_kit_uri_any_unrecognized(uri)) {
        /* A pin-value was refused above, so the URI can be shown. */
        char *name = unknown_attribute(s);
        ret = tc_error(ctx, TC_ERR_URI,
                       "unrecognised attribute '%s' in PKCS#11 URI '%.200s' (known: token, "
                       "manufacturer, serial, model, slot-id, library-*, object, id, type, "
                       "pin-source)",
                       name != NULL ? name : "?", s);
        free(name);
        goto out;
    }
    *out = uri;
    uri = NULL;
    ret = TC_OK;
out:
    if (uri != NULL)
        p11_kit_uri_free(uri);
    return ret;
}

static int all_blank(const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\0')
            return 0;
    return 1;
}

/* Token attributes proper: an empty slot cannot match them. */
static int names_token_attributes(P11KitUri *uri)
{
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(uri);
    return !all_blank(ti->label, sizeof ti->label) ||
           !all_blank(ti->manufacturerID, sizeof ti->manufacturerID) ||
           !all_blank(ti->model, sizeof ti->model) ||
           !all_blank(ti->serialNumber, sizeof ti->serialNumber);
}

int tc_uri_names_token(P11KitUri *uri)
{
    return names_token_attributes(uri) || p11_kit_uri_get_slot_id(uri) != (CK_SLOT_ID)-1;
}

int tc_uri_names_object(P11KitUri *uri)
{
    return p11_kit_uri_get_attribute(uri, CKA_LABEL) != NULL ||
           p11_kit_uri_get_attribute(uri, CKA_ID) != NULL ||
           p11_kit_uri_get_attribute(uri, CKA_CLASS) != NULL;
}

int tc_uri_object_class(P11KitUri *uri, tc_obj_class *cls)
{
    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(uri, CKA_CLASS);
    CK_OBJECT_CLASS c;

    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof c)
        return 0;
    memcpy(&c, a->pValue, sizeof c);
    *cls = tc_obj_class_from_ck(c);
    return 1;
}

static int slot_push(tc_slot **v, size_t *n, size_t *cap, const tc_slot *s)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        tc_slot *nv = realloc(*v, c * sizeof *nv);
        if (nv == NULL)
            return -1;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = *s;
    return 0;
}

void tc_token_info_normalise(CK_TOKEN_INFO *ti)
{
    unsigned char *fields[] = {ti->label, ti->manufacturerID, ti->model, ti->serialNumber};
    const size_t sizes[] = {sizeof ti->label, sizeof ti->manufacturerID, sizeof ti->model,
                            sizeof ti->serialNumber};
    size_t f, i;

    for (f = 0; f < 4; f++)
        for (i = 0; i < sizes[f]; i++)
            if (fields[f][i] == '\0')
                fields[f][i] = ' ';
}

#define SLOTS_FIRST_GUESS 16

tokencert_err tc_slots_match(tokencert_ctx *ctx, P11KitUri *uri, tc_slot **out, size_t *n_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_slot *v = NULL;
    size_t n = 0, cap = 0, mi;
    CK_SLOT_ID *ids = NULL;
    int names_token = names_token_attributes(uri);

    *out = NULL;
    *n_out = 0;
    for (mi = 0; mi < ctx->n_modules; mi++) {
        tc_module *m = &ctx->modules[mi];
        CK_ULONG count = 0, i;
        CK_RV rv;
        int tries;

        if (!p11_kit_uri_match_module_info(uri, &m->info))
            continue;
        /* A buffer large enough for most modules first: one call instead of a size query and a
         * fetch. A module with more slots says so (CKR_BUFFER_TOO_SMALL with the count). */
        count = SLOTS_FIRST_GUESS;
        free(ids);
        ids = calloc(count, sizeof *ids);
        if (ids == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        rv = tc_p11_get_slot_list(m, CK_FALSE, ids, &count);
        for (tries = 0; rv == CKR_BUFFER_TOO_SMALL && tries < 3; tries++) {
            CK_SLOT_ID *more = count > 0 ? realloc(ids, count * sizeof *ids) : NULL;
            if (more == NULL) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
            ids = more;
            rv = tc_p11_get_slot_list(m, CK_FALSE, ids, &count);
        }
        if (rv != CKR_OK) {
            tc_warning(ctx, "module '%s': C_GetSlotList failed: %s", m->name, tc_ckr_name(rv));
            continue;
        }
        for (i = 0; i < count; i++) {
            tc_slot s;
            memset(&s, 0, sizeof s);
            s.module = m;
            s.slot = ids[i];
            if (p11_kit_uri_get_slot_id(uri) != (CK_SLOT_ID)-1 &&
                p11_kit_uri_get_slot_id(uri) != s.slot)
                continue;
            rv = tc_p11_get_slot_info(m, s.slot, &s.slot_info);
            if (rv != CKR_OK) {
                tc_warning(ctx, "module '%s' slot %lu: C_GetSlotInfo failed: %s", m->name,
                           (unsigned long)s.slot, tc_ckr_name(rv));
                continue;
            }
            if (!p11_kit_uri_match_slot_info(uri, &s.slot_info))
                continue;
            if (s.slot_info.flags & CKF_TOKEN_PRESENT) {
                rv = tc_p11_get_token_info(m, s.slot, &s.token_info);
                if (rv == CKR_OK) {
                    s.present = 1;
                    tc_token_info_normalise(&s.token_info);
                } else if (tc_err_from_rv(rv) != TC_ERR_TOKEN_ABSENT)
                    tc_warning(ctx, "module '%s' slot %lu: C_GetTokenInfo failed: %s", m->name,
                               (unsigned long)s.slot, tc_ckr_name(rv));
            }
            if (s.present) {
                if (!p11_kit_uri_match_token_info(uri, &s.token_info))
                    continue;
            } else if (names_token) {
                continue;
            }
            if (slot_push(&v, &n, &cap, &s) != 0) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
        }
    }
    *out = v;
    *n_out = n;
    v = NULL;
    ret = TC_OK;
out:
    free(ids);
    free(v);
    return ret;
}

void tc_token_info_clear(tokencert_token_info *t)
{
    if (t == NULL)
        return;
    free(t->uri);
    free(t->module);
    free(t->slot_description);
    free(t->label);
    free(t->manufacturer);
    free(t->model);
    free(t->serial);
    memset(t, 0, sizeof *t);
}

static long long mem_value(CK_ULONG v)
{
    return v == CK_UNAVAILABLE_INFORMATION || v == CK_EFFECTIVELY_INFINITE ? -1 : (long long)v;
}

tokencert_err tc_token_info_fill(const tc_slot *s, tokencert_token_info *out)
{
    tokencert_err ret = TC_ERR_NOMEM;
    P11KitUri *uri = NULL;
    char *str = NULL;

    memset(out, 0, sizeof *out);
    out->module = tc_strdup(s->module->name);
    out->slot_id = s->slot;
    out->present = s->present;
    out->slot_description =
        tc_token_string(s->slot_info.slotDescription, sizeof s->slot_info.slotDescription);
    uri = p11_kit_uri_new();
    if (out->module == NULL || out->slot_description == NULL || uri == NULL)
        goto out;
    if (s->present) {
        const CK_TOKEN_INFO *ti = &s->token_info;
        out->label = tc_token_string(ti->label, sizeof ti->label);
        out->manufacturer = tc_token_string(ti->manufacturerID, sizeof ti->manufacturerID);
        out->model = tc_token_string(ti->model, sizeof ti->model);
        out->serial = tc_token_string(ti->serialNumber, sizeof ti->serialNumber);
        if (out->label == NULL || out->manufacturer == NULL || out->model == NULL ||
            out->serial == NULL)
            goto out;
        out->rng = (ti->flags & CKF_RNG) != 0;
        out->write_protected = (ti->flags & CKF_WRITE_PROTECTED) != 0;
        out->login_required = (ti->flags & CKF_LOGIN_REQUIRED) != 0;
        out->user_pin_initialized = (ti->flags & CKF_USER_PIN_INITIALIZED) != 0;
        out->protected_auth_path = (ti->flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
        out->token_initialized = (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
        out->user_pin_count_low = (ti->flags & CKF_USER_PIN_COUNT_LOW) != 0;
        out->user_pin_final_try = (ti->flags & CKF_USER_PIN_FINAL_TRY) != 0;
        out->user_pin_locked = (ti->flags & CKF_USER_PIN_LOCKED) != 0;
        out->user_pin_to_be_changed = (ti->flags & CKF_USER_PIN_TO_BE_CHANGED) != 0;
        out->so_pin_locked = (ti->flags & CKF_SO_PIN_LOCKED) != 0;
        out->free_public_memory = mem_value(ti->ulFreePublicMemory);
        out->total_public_memory = mem_value(ti->ulTotalPublicMemory);
        out->free_private_memory = mem_value(ti->ulFreePrivateMemory);
        out->total_private_memory = mem_value(ti->ulTotalPrivateMemory);
        out->hw_major = ti->hardwareVersion.major;
        out->hw_minor = ti->hardwareVersion.minor;
        out->fw_major = ti->firmwareVersion.major;
        out->fw_minor = ti->firmwareVersion.minor;
        *p11_kit_uri_get_token_info(uri) = *ti;
    } else {
        out->label = tc_strdup("");
        out->manufacturer = tc_strdup("");
        out->model = tc_strdup("");
        out->serial = tc_strdup("");
        out->free_public_memory = out->total_public_memory = -1;
        out->free_private_memory = out->total_private_memory = -1;
        if (out->label == NULL || out->manufacturer == NULL || out->model == NULL ||
            out->serial == NULL)
            goto out;
        p11_kit_uri_set_slot_id(uri, s->slot);
    }
    if (p11_kit_uri_format(uri, s->present ? P11_KIT_URI_FOR_TOKEN : P11_KIT_URI_FOR_SLOT, &str) !=
        P11_KIT_URI_OK)
        goto out;
    out->uri = str;
    str = NULL;
    ret = TC_OK;
out:
    free(str);
    if (uri != NULL)
        p11_kit_uri_free(uri);
    if (ret != TC_OK)
        tc_token_info_clear(out);
    return ret;
}

tokencert_err tokencert_tokens(tokencert_ctx *ctx, const char *uri_str, tokencert_token_info **out,
                               size_t *n_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    P11KitUri *uri = NULL;
    tc_slot *slots = NULL;
    size_t n = 0, i, filled = 0;
    tokencert_token_info *v = NULL;

    tc_return_val_if_fail(ctx != NULL && out != NULL && n_out != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *n_out = 0;
    ret = tc_uri_parse(ctx, uri_str, &uri);
    if (ret != TC_OK)
        goto out;
    ret = tc_slots_match(ctx, uri, &slots, &n);
    if (ret != TC_OK)
        goto out;
    if (n == 0 && tc_uri_names_token(uri)) {
        ret = tc_error(ctx, TC_ERR_TOKEN_ABSENT, "no token matching the URI is present");
        goto out;
    }
    v = calloc(n ? n : 1, sizeof *v);
    if (v == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        ret = tc_token_info_fill(&slots[i], &v[i]);
        if (ret != TC_OK)
            goto out;
        filled++;
    }
    *out = v;
    *n_out = n;
    v = NULL;
    ret = TC_OK;
out:
    if (v != NULL)
        tokencert_tokens_free(v, filled);
    free(slots);
    if (uri != NULL)
        p11_kit_uri_free(uri);
    return ret;
}

void tokencert_tokens_free(tokencert_token_info *tokens, size_t n)
{
    size_t i;
    if (tokens == NULL)
        return;
    for (i = 0; i < n; i++)
        tc_token_info_clear(&tokens[i]);
    free(tokens);
}

tokencert_err tc_session_error(tokencert_ctx *ctx, const tc_session *s, const char *call, CK_RV rv)
{
    tokencert_err err = tc_err_from_rv(rv);
    const CK_TOKEN_INFO *ti = &s->slot->token_info;
    char *label = tc_token_string(ti->label, sizeof ti->label);

    tc_error(ctx, err, "token '%s': %s failed: %s%s", label != NULL ? label : "?", call,
             tc_ckr_name(rv), err == TC_ERR_TOKEN_ABSENT ? " (was the token removed?)" : "");
    free(label);
    return err;
}

tokencert_err tc_session_open(tokencert_ctx *ctx, tc_slot *slot, int rw, tc_session *out)
{
    CK_RV rv;
    CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);

    memset(out, 0, sizeof *out);
    out->slot = slot;
    rv = tc_p11_open_session(slot->module, slot->slot, flags, &out->h);
    if (rv != CKR_OK) {
        tokencert_err err = tc_session_error(ctx, out, "C_OpenSession", rv);
        out->slot = NULL;
        return err;
    }
    return TC_OK;
}

void tc_session_close(tc_session *s)
{
    if (s == NULL || s->slot == NULL)
        return;
    if (s->forget_keys != NULL)
        s->forget_keys(s);
    tc_p11_close_session(s->slot->module, s->h);
    s->slot = NULL;
}

static tokencert_err login(tokencert_ctx *ctx, tc_session *s, const tokencert_login_opts *opts,
                           const char *uri_pin_source, tc_pin_fn get_pin, void *pin_data);

tokencert_err tc_session_login(tokencert_ctx *ctx, tc_session *s, const tokencert_login_opts *opts,
                               const char *uri_pin_source)
{
    return login(ctx, s, opts, uri_pin_source, NULL, NULL);
}

tokencert_err tc_session_login_with(tokencert_ctx *ctx, tc_session *s, int allow_final_try,
                                    tc_pin_fn get_pin, void *pin_data)
{
    tokencert_login_opts opts = {NULL, 1, allow_final_try, 0};

    tc_return_val_if_fail(get_pin != NULL, TC_ERR_INVALID_ARG);
    return login(ctx, s, &opts, NULL, get_pin, pin_data);
}

static tokencert_err login(tokencert_ctx *ctx, tc_session *s, const tokencert_login_opts *opts,
                           const char *uri_pin_source, tc_pin_fn get_pin, void *pin_data)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_TOKEN_INFO ti;
    char *pin = NULL, *label = NULL, *prompt = NULL;
    const char *source =
        opts != NULL && opts->pin_source != NULL ? opts->pin_source : uri_pin_source;
    CK_RV rv;

    /* Fresh flags: older ones may predate another process's failed attempt. Those read while
     * matching the slot, moments before this first login, are fresh enough. */
    if (s->slot->info_fresh) {
        ti = s->slot->token_info;
        s->slot->info_fresh = 0;
    } else {
        rv = tc_p11_get_token_info(s->slot->module, s->slot->slot, &ti);
        if (rv != CKR_OK) {
            ret = tc_error(ctx, tc_err_from_rv(rv), "cannot read token information: %s",
                           tc_ckr_name(rv));
            goto out;
        }
        tc_token_info_normalise(&ti);
    }
    label = tc_token_string(ti.label, sizeof ti.label);
    if (label == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (!(ti.flags & CKF_LOGIN_REQUIRED) && !(ti.flags & CKF_USER_PIN_INITIALIZED)) {
        ret = tc_error(ctx, TC_ERR_PKCS11, "token '%s' has no user PIN set", label);
        goto out;
    }
    if (ti.flags & CKF_USER_PIN_LOCKED) {
        ret = tc_error(ctx, TC_ERR_PIN_LOCKED,
                       "the user PIN of token '%s' is locked; unlock it with the SO PIN first",
                       label);
        goto out;
    }
    if ((ti.flags & CKF_USER_PIN_FINAL_TRY) && !(opts != NULL && opts->allow_final_try)) {
        ret = tc_error(ctx, TC_ERR_PIN_FINAL_TRY,
                       "token '%s' allows only one more PIN attempt before it locks; login refused "
                       "(use --allow-final-try if you are sure of the PIN)",
                       label);
        goto out;
    }
    if (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
        tc_notice(ctx, "enter the PIN for token '%s' on the reader's PIN pad", label);
        rv = tc_p11_login(s->slot->module, s->h, CKU_USER, NULL, 0);
    } else {
        if (get_pin != NULL) {
            ret = get_pin(pin_data, ctx, label, &pin);
        } else if (source != NULL) {
            ret = tc_pin_from_source(ctx, source, &pin);
        } else if (opts != NULL && opts->interactive) {
            prompt = tc_asprintf("PIN for token '%s': ", label);
            ret = prompt == NULL ? TC_ERR_NOMEM : tc_pin_prompt(ctx, prompt, &pin);
        } else {
            ret = tc_error(ctx, TC_ERR_PIN_SOURCE,
                           "token '%s' needs a PIN and none was given: use --pin-source "
                           "file:PATH|env:VAR|fd:N or run on a terminal",
                           label);
        }
        if (ret != TC_OK)
            goto out;
        if (ti.flags & CKF_USER_PIN_COUNT_LOW)
            tc_notice(ctx,
                      "warning: token '%s' reports failed PIN attempts since the last successful "
                      "login; this attempt is the only one tokencert makes",
                      label);
        rv = tc_p11_login(s->slot->module, s->h, CKU_USER, (unsigned char *)pin,
                          (CK_ULONG)strlen(pin));
        tc_secret_free(pin);
        pin = NULL;
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        tokencert_err err = tc_err_from_rv(rv);
        if (err == TC_ERR_PIN_INCORRECT)
            ret = tc_error(ctx, err,
                           "token '%s' rejected the PIN (%s); not retried, to protect the token "
                           "from locking",
                           label, tc_ckr_name(rv));
        else
            ret = tc_error(ctx, err, "login to token '%s' failed: %s", label, tc_ckr_name(rv));
        goto out;
    }
    s->logged_in = 1;
    ret = TC_OK;
out:
    tc_secret_free(pin);
    free(prompt);
    free(label);
    return ret;
}
