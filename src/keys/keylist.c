/* keylist.c — every key on a token, its private and public objects paired by CKA_ID and type:
 * for finding the token key of a certificate whose CKA_ID does not follow the rule (keys made by
 * other tools). */
#include "keys/keys.h"

#include <stdlib.h>
#include <string.h>

#define KEY_ATTR_MAX 4096
#define LABEL_MAX    1024

void tc_key_entries_free(tc_key_entry *v, size_t n)
{
    size_t i;

    for (i = 0; v != NULL && i < n; i++) {
        free(v[i].id);
        free(v[i].label);
    }
    free(v);
}

tokencert_err tc_keys_list(tokencert_ctx *ctx, tc_session *s, size_t max_keys, tc_key_entry **out,
                           size_t *n_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    static const CK_OBJECT_CLASS classes[2] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    CK_OBJECT_HANDLE *objs = NULL;
    tc_key_entry *keys = NULL;
    size_t n = 0, i, k, c, cap = 0, n_keys = 0;

    *out = NULL;
    *n_out = 0;
    for (c = 0; c < 2; c++) {
        CK_OBJECT_CLASS cls = classes[c];
        CK_ATTRIBUTE q = {CKA_CLASS, &cls, sizeof cls};
        free(objs);
        objs = NULL;
        ret = tc_find_objects(ctx, s, &q, 1, max_keys, &objs, &n);
        if (ret != TC_OK)
            goto out;
        for (i = 0; i < n; i++) {
            tc_attr a[3] = {{CKA_KEY_TYPE, NULL, 0, 0, sizeof(CK_ULONG)},
                            {CKA_ID, NULL, 0, 0, 0},
                            {CKA_LABEL, NULL, 0, 0, 0}};
            CK_KEY_TYPE ck_type;
            tc_key_type type;
            tc_key_entry *tk = NULL;

            ret = tc_get_attributes(ctx, s, objs[i], a, 3, KEY_ATTR_MAX);
            if (ret != TC_OK)
                goto out;
            if (!a[0].available) {
                tc_attrs_clear(a, 3);
                continue;
            }
            memcpy(&ck_type, a[0].value, sizeof ck_type);
            type = tc_key_type_from_ck(ck_type);
            /* A public key joins the private key with the same CKA_ID and type. */
            for (k = 0; cls == CKO_PUBLIC_KEY && k < n_keys; k++) {
                tc_key_entry *o = &keys[k];
                if (o->pub == TC_OBJECT_NONE && o->type == type && a[1].len > 0 &&
                    o->id_len == a[1].len && memcmp(o->id, a[1].value, a[1].len) == 0) {
                    tk = o;
                    break;
                }
            }
            if (tk == NULL) {
                if (n_keys == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    tc_key_entry *nv = realloc(keys, ncap * sizeof *nv);
                    if (nv == NULL) {
                        tc_attrs_clear(a, 3);
                        ret = TC_ERR_NOMEM;
                        goto out;
                    }
                    keys = nv;
                    cap = ncap;
                }
                tk = &keys[n_keys++];
                memset(tk, 0, sizeof *tk);
                tk->type = type;
                tk->priv = tk->pub = TC_OBJECT_NONE;
                tk->id = a[1].value;
                tk->id_len = a[1].len;
                a[1].value = NULL;
                tk->label = tc_printable(a[2].value, a[2].len, LABEL_MAX);
                if (tk->label == NULL) {
                    tc_attrs_clear(a, 3);
                    ret = TC_ERR_NOMEM;
                    goto out;
                }
            }
            if (cls == CKO_PRIVATE_KEY)
                tk->priv = objs[i];
            else
                tk->pub = objs[i];
            tc_attrs_clear(a, 3);
        }
    }
    *out = keys;
    *n_out = n_keys;
    keys = NULL;
    n_keys = 0;
    ret = TC_OK;
out:
    tc_key_entries_free(keys, n_keys);
    free(objs);
    return ret;
}
