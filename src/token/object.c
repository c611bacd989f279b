/* object.c — object search in batches and attribute reads in one call per object, with safe
 * fallbacks for tokens that refuse a combined read. */
#include "token/token.h"

#include <stdlib.h>
#include <string.h>

/* Large batches keep the call count per object near one on big tokens. */
#define FIND_BATCH 4096

tokencert_err tc_find_objects(tokencert_ctx *ctx, tc_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              size_t max_objects, CK_OBJECT_HANDLE **out, size_t *n_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_module *m = s->slot->module;
    CK_OBJECT_HANDLE *v = NULL;
    size_t total = 0, cap = 0;
    int active = 0;
    CK_RV rv;

    *out = NULL;
    *n_out = 0;
    rv = tc_p11_find_objects_init(m, s->h, tmpl, n);
    if (rv != CKR_OK) {
        ret = tc_session_error(ctx, s, "C_FindObjectsInit", rv);
        goto out;
    }
    active = 1;
    for (;;) {
        CK_ULONG got = 0;
        if (cap - total < FIND_BATCH) {
            size_t ncap = cap + FIND_BATCH * (cap < 4 * FIND_BATCH ? 1 : cap / FIND_BATCH);
            CK_OBJECT_HANDLE *nv = realloc(v, ncap * sizeof *nv);
            if (nv == NULL) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        rv = tc_p11_find_objects(m, s->h, v + total, FIND_BATCH, &got);
        if (rv != CKR_OK) {
            ret = tc_session_error(ctx, s, "C_FindObjects", rv);
            goto out;
        }
        if (got > FIND_BATCH) {
            ret = tc_error(ctx, TC_ERR_PKCS11, "C_FindObjects returned more objects than asked");
            goto out;
        }
        total += got;
        if (total > max_objects) {
            ret = tc_error(ctx, TC_ERR_BAD_DATA, "the token holds more than %zu matching objects",
                           max_objects);
            goto out;
        }
        /* Only an empty batch ends the search: PKCS#11 lets a token return fewer objects than
         * asked before the last ones (a batch per store, a cap of its own). */
        if (got == 0)
            break;
    }
    *out = v;
    *n_out = total;
    v = NULL;
    ret = TC_OK;
out:
    if (active)
        tc_p11_find_objects_final(m, s->h);
    free(v);
    return ret;
}

void tc_attrs_clear(tc_attr *attrs, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        free(attrs[i].value);
        attrs[i].value = NULL;
        attrs[i].len = 0;
        attrs[i].available = 0;
    }
}

static int is_attr_error(CK_RV rv)
{
    return rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
           rv == CKR_BUFFER_TOO_SMALL;
}

/* Reads one attribute on its own: size query, then value. */
static CK_RV get_one(tc_session *s, CK_OBJECT_HANDLE obj, tc_attr *a, size_t max_len)
{
    CK_ATTRIBUTE t = {a->type, NULL, 0};
    CK_RV rv = tc_p11_get_attribute_value(s->slot->module, s->h, obj, &t, 1);

    free(a->value);
    a->value = NULL;
    a->len = 0;
    a->available = 0;
    if (is_attr_error(rv) || t.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return CKR_OK;
    if (rv != CKR_OK)
        return rv;
    if (t.ulValueLen > max_len || (a->fixed != 0 && t.ulValueLen != a->fixed))
        return CKR_OK; /* not a value anyone legitimate would store: treated as unavailable */
    a->value = malloc(t.ulValueLen ? t.ulValueLen : 1);
    if (a->value == NULL)
        return CKR_HOST_MEMORY;
    t.pValue = a->value;
    rv = tc_p11_get_attribute_value(s->slot->module, s->h, obj, &t, 1);
    if (is_attr_error(rv) || t.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return CKR_OK;
    if (rv != CKR_OK)
        return rv;
    a->len = t.ulValueLen;
    a->available = 1;
    return CKR_OK;
}

tokencert_err tc_get_attribute(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE obj, tc_attr *a,
                               size_t max_len)
{
    CK_RV rv = get_one(s, obj, a, max_len);
    return rv == CKR_OK ? TC_OK : tc_session_error(ctx, s, "C_GetAttributeValue", rv);
}

tokencert_err tc_get_attributes(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE obj,
                                tc_attr *attrs, size_t n, size_t max_len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_ATTRIBUTE t[16];
    CK_ULONG offered[16];
    int stopped_early = 0;
    size_t i;
    CK_RV rv;

    tc_return_val_if_fail(n <= 16, TC_ERR_INVALID_ARG);
    for (i = 0; i < n; i++) {
        /* A fixed-size attribute gets a larger buffer than its size, so a token that never got
         * to it (its length still what we offered) can be told from one that answered. */
        offered[i] = attrs[i].fixed ? attrs[i].fixed + 8 : (attrs[i].len ? attrs[i].len : 256);
        attrs[i].value = malloc(offered[i]);
        attrs[i].available = 0;
        attrs[i].len = 0;
        if (attrs[i].value == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        t[i].type = attrs[i].type;
        t[i].pValue = attrs[i].value;
        t[i].ulValueLen = offered[i];
    }
    rv = tc_p11_get_attribute_value(s->slot->module, s->h, obj, t, n);
    if (rv != CKR_OK && !is_attr_error(rv)) {
        ret = tc_session_error(ctx, s, "C_GetAttributeValue", rv);
        goto out;
    }
    for (i = 0; i < n; i++) {
        CK_ULONG got = t[i].ulValueLen;
        if (attrs[i].fixed != 0 && got == offered[i])
            stopped_early = rv != CKR_OK;
        else if (got != CK_UNAVAILABLE_INFORMATION && got <= offered[i] &&
                 (attrs[i].fixed == 0 || got == attrs[i].fixed)) {
            attrs[i].len = got;
            attrs[i].available = 1;
        }
    }
    if (stopped_early) {
        /* This token does not process the whole template: read one attribute at a time. */
        for (i = 0; i < n; i++) {
            rv = get_one(s, obj, &attrs[i], max_len);
            if (rv != CKR_OK) {
                ret = tc_session_error(ctx, s, "C_GetAttributeValue", rv);
                goto out;
            }
        }
    }
    ret = TC_OK;
out:
    if (ret != TC_OK)
        tc_attrs_clear(attrs, n);
    return ret;
}

tc_obj_class tc_obj_class_from_ck(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_CERTIFICATE:
        return TC_CLASS_CERTIFICATE;
    case CKO_PUBLIC_KEY:
        return TC_CLASS_PUBLIC_KEY;
    case CKO_PRIVATE_KEY:
        return TC_CLASS_PRIVATE_KEY;
    default:
        return TC_CLASS_OTHER;
    }
}

CK_OBJECT_CLASS tc_obj_class_to_ck(tc_obj_class cls)
{
    switch (cls) {
    case TC_CLASS_CERTIFICATE:
        return CKO_CERTIFICATE;
    case TC_CLASS_PUBLIC_KEY:
        return CKO_PUBLIC_KEY;
    case TC_CLASS_PRIVATE_KEY:
        return CKO_PRIVATE_KEY;
    case TC_CLASS_OTHER:
        break;
    }
    return CKO_DATA;
}

tc_key_type tc_key_type_from_ck(CK_KEY_TYPE type)
{
    switch (type) {
    case CKK_RSA:
        return TC_KEY_TYPE_RSA;
    case CKK_EC:
        return TC_KEY_TYPE_EC;
    case CKK_EC_EDWARDS:
        return TC_KEY_TYPE_EDDSA;
    case CKK_DSA:
        return TC_KEY_TYPE_DSA;
    case CK_UNAVAILABLE_INFORMATION:
        return TC_KEY_TYPE_UNKNOWN;
    default:
        return TC_KEY_TYPE_OTHER;
    }
}

CK_KEY_TYPE tc_key_type_to_ck(tc_key_type type)
{
    switch (type) {
    case TC_KEY_TYPE_RSA:
        return CKK_RSA;
    case TC_KEY_TYPE_EC:
        return CKK_EC;
    case TC_KEY_TYPE_EDDSA:
        return CKK_EC_EDWARDS;
    case TC_KEY_TYPE_DSA:
        return CKK_DSA;
    case TC_KEY_TYPE_UNKNOWN:
    case TC_KEY_TYPE_OTHER:
        break;
    }
    return CK_UNAVAILABLE_INFORMATION;
}

char *tc_uri_object_format(P11KitUri *uri, tc_obj_class cls, const unsigned char *id, size_t id_len,
                           const unsigned char *label, size_t label_len)
{
    CK_OBJECT_CLASS ck = tc_obj_class_to_ck(cls);
    CK_ATTRIBUTE a_cls = {CKA_CLASS, &ck, sizeof ck};
    CK_ATTRIBUTE a_id = {CKA_ID, (void *)id, (CK_ULONG)id_len};
    CK_ATTRIBUTE a_label = {CKA_LABEL, (void *)label, (CK_ULONG)label_len};
    char *s = NULL;

    p11_kit_uri_clear_attributes(uri);
    p11_kit_uri_set_attribute(uri, &a_cls);
    if (id_len > 0)
        p11_kit_uri_set_attribute(uri, &a_id);
    if (label_len > 0)
        p11_kit_uri_set_attribute(uri, &a_label);
    if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &s) != P11_KIT_URI_OK)
        return NULL;
    return s;
}

int tc_uri_object_matches(P11KitUri *filter, tc_obj_class cls, const unsigned char *id,
                          size_t id_len, const unsigned char *label, size_t label_len)
{
    CK_OBJECT_CLASS ck = tc_obj_class_to_ck(cls);
    CK_ATTRIBUTE a[3] = {{CKA_CLASS, &ck, sizeof ck},
                         {CKA_ID, (void *)id, (CK_ULONG)id_len},
                         {CKA_LABEL, (void *)label, (CK_ULONG)label_len}};
    return p11_kit_uri_match_attributes(filter, a, 3);
}

int tc_slot_token_initialized(const tc_slot *slot)
{
    return (slot->token_info.flags & CKF_TOKEN_INITIALIZED) != 0;
}
