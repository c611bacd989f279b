/* key.c — private keys on the token as the library uses them: the one key an object URI or a
 * CKA_ID selects, with its type, id, label and public half read once. */
#include "keys/keys.h"

#include <stdlib.h>
#include <string.h>

/* More private keys than this under one selection is not a token anyone works with. */
#define KEY_MATCH_MAX  10000
#define KEY_LIST_SHOWN 8
#define KEY_ATTR_MAX   1024

/* " (label 'x', id 01)" for a key object, for messages naming several keys. */
static char *key_describe(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE obj)
{
    tc_attr a[2] = {{CKA_LABEL, NULL, 0, 0, 0}, {CKA_ID, NULL, 0, 0, 0}};
    char *label = NULL, *id = NULL, *d;

    if (tc_get_attributes(ctx, s, obj, a, 2, KEY_ATTR_MAX) == TC_OK) {
        if (a[0].available)
            label = tc_printable(a[0].value, a[0].len, 64);
        if (a[1].available)
            id = tc_hex(a[1].value, a[1].len > 32 ? 32 : a[1].len);
    }
    d = tc_asprintf("label '%s', id %s", label != NULL ? label : "", id != NULL ? id : "-");
    free(label);
    free(id);
    tc_attrs_clear(a, 2);
    return d;
}

/* "what" names the selection in messages ("the URI ...", "id 01"). */
static tokencert_err key_find(tokencert_ctx *ctx, tc_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              const char *what, CK_OBJECT_HANDLE *out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n_objs = 0, i;
    char *list = NULL;

    *out = CK_INVALID_HANDLE;
    ret = tc_find_objects(ctx, s, tmpl, n, KEY_MATCH_MAX, &objs, &n_objs);
    if (ret != TC_OK)
        goto out;
    if (n_objs == 0) {
        ret = tc_error(ctx, TC_ERR_NOT_FOUND, "no private key matches %s%s", what,
                       s->logged_in ? "" : " (not logged in: private keys are hidden)");
        goto out;
    }
    if (n_objs > 1) {
        list = tc_strdup("");
        for (i = 0; list != NULL && i < n_objs && i < KEY_LIST_SHOWN; i++) {
            char *d = key_describe(ctx, s, objs[i]);
            char *next = tc_asprintf("%s%s(%s)", list, i ? ", " : "", d != NULL ? d : "?");
            free(d);
            free(list);
            list = next;
        }
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "%zu private keys match %s: %s%s; name one with id= or object=", n_objs,
                       what, list != NULL ? list : "?", n_objs > KEY_LIST_SHOWN ? ", ..." : "");
        goto out;
    }
    *out = objs[0];
    ret = TC_OK;
out:
    free(list);
    free(objs);
    return ret;
}

/* The public-key object with the private key's CKA_ID, or CK_INVALID_HANDLE when there is none or
 * several (then nothing can tell which is the right one). */
static CK_OBJECT_HANDLE pub_object(tokencert_ctx *ctx, tc_session *s, const tc_key *k)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, k->id, k->id_len}};
    CK_OBJECT_HANDLE *objs = NULL, h = CK_INVALID_HANDLE;
    size_t n = 0;

    if (k->id_len == 0)
        return CK_INVALID_HANDLE;
    if (tc_find_objects(ctx, s, t, 2, KEY_MATCH_MAX, &objs, &n) == TC_OK && n == 1)
        h = objs[0];
    free(objs);
    return h;
}

/* ---- the session's keys ---- */

static tc_key *cache_lookup(tc_session *s, const unsigned char *id, size_t id_len,
                            const CK_ATTRIBUTE *label)
{
    size_t i;

    if (id_len == 0)
        return NULL;
    for (i = 0; i < s->n_keys; i++) {
        tc_key *k = s->keys[i];
        if (k->id_len != id_len || memcmp(k->id, id, id_len) != 0)
            continue;
        if (label != NULL && (strlen(k->label) != label->ulValueLen ||
                              memcmp(k->label, label->pValue, label->ulValueLen) != 0))
            continue;
        return k;
    }
    return NULL;
}

/* The session takes a reference to k; on failure k is simply not remembered. */
static void cache_add(tc_session *s, tc_key *k)
{
    tc_key **v;

    if (k->id_len == 0)
        return;
    v = realloc(s->keys, (s->n_keys + 1) * sizeof *v);
    if (v == NULL)
        return;
    s->keys = v;
    s->keys[s->n_keys++] = k;
    s->forget_keys = tc_session_forget_keys;
    k->refs++;
}

void tc_session_forget_keys(tc_session *s)
{
    size_t i;

    for (i = 0; i < s->n_keys; i++)
        tc_key_free(s->keys[i]);
    free(s->keys);
    s->keys = NULL;
    s->n_keys = 0;
}

tc_key *tc_key_remember(tc_session *s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
                        tc_key_type type, const unsigned char *id, size_t id_len, const char *label,
                        EVP_PKEY *pub_pkey)
{
    tc_key *k = calloc(1, sizeof *k);
    size_t n = s->n_keys;

    if (k == NULL || id_len == 0 || (k->id = malloc(id_len)) == NULL ||
        (k->label = tc_strdup(label)) == NULL) {
        if (k != NULL)
            k->refs = 1;
        tc_key_free(k);
        EVP_PKEY_free(pub_pkey);
        return NULL;
    }
    k->refs = 0;
    k->session = s;
    k->priv = priv;
    k->pub = pub;
    k->type = type;
    memcpy(k->id, id, id_len);
    k->id_len = id_len;
    k->pub_pkey = pub_pkey;
    k->bits = EVP_PKEY_get_bits(pub_pkey);
    cache_add(s, k);
    if (s->n_keys == n) {
        k->refs = 1;
        tc_key_free(k);
        return NULL;
    }
    return k;
}

static tokencert_err key_load(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE priv,
                              tc_key **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_attr a[3] = {{CKA_KEY_TYPE, NULL, 0, 0, sizeof(CK_KEY_TYPE)},
                    {CKA_ID, NULL, 0, 0, 0},
                    {CKA_LABEL, NULL, 0, 0, 0}};
    tc_key *k = NULL;
    CK_KEY_TYPE type;

    *out = NULL;
    ret = tc_get_attributes(ctx, s, priv, a, 3, KEY_ATTR_MAX);
    if (ret != TC_OK)
        goto out;
    if (!a[0].available) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "the private key does not tell its key type");
        goto out;
    }
    memcpy(&type, a[0].value, sizeof type);
    if (type != CKK_RSA && type != CKK_EC && type != CKK_EC_EDWARDS) {
        ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                       "the private key's type (CKK 0x%lx) is not RSA, EC or EdDSA",
                       (unsigned long)type);
        goto out;
    }
    k = calloc(1, sizeof *k);
    if (k == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    k->refs = 1;
    k->session = s;
    k->priv = priv;
    k->pub = CK_INVALID_HANDLE;
    k->type = tc_key_type_from_ck(type);
    if (a[1].available && a[1].len > 0) {
        k->id = a[1].value;
        k->id_len = a[1].len;
        a[1].value = NULL;
    }
    k->label = a[2].available ? tc_printable(a[2].value, a[2].len, 256) : tc_strdup("");
    if (k->label == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    k->pub = pub_object(ctx, s, k);
    /* SoftHSM's EC private keys carry no CKA_EC_POINT: the public-key object then has it. A key
     * whose private object reveals its public half needs no public object at all. */
    ret = tc_pubkey_read(ctx, s, priv, k->type, &k->pub_pkey);
    if (ret != TC_OK && ret != TC_ERR_NOMEM && k->pub != CK_INVALID_HANDLE)
        ret = tc_pubkey_read(ctx, s, k->pub, k->type, &k->pub_pkey);
    if (ret != TC_OK) {
        if (ret != TC_ERR_NOMEM)
            ret = tc_error(ctx, TC_ERR_BAD_DATA,
                           "the public half of private key '%s' can be read neither from the key "
                           "nor from a public-key object with its CKA_ID",
                           k->label);
        goto out;
    }
    k->bits = EVP_PKEY_get_bits(k->pub_pkey);
    cache_add(s, k);
    *out = k;
    k = NULL;
    ret = TC_OK;
out:
    tc_key_free(k);
    tc_attrs_clear(a, 3);
    return ret;
}

tokencert_err tc_key_open(tokencert_ctx *ctx, tc_session *s, P11KitUri *uri, tc_key **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[3];
    CK_ULONG n = 0;
    CK_ATTRIBUTE *id, *label, *uri_cls;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    char *what = NULL, *label_s = NULL, *id_s = NULL;

    tc_return_val_if_fail(ctx != NULL && s != NULL && uri != NULL && out != NULL,
                          TC_ERR_INVALID_ARG);
    *out = NULL;
    uri_cls = p11_kit_uri_get_attribute(uri, CKA_CLASS);
    if (uri_cls != NULL &&
        (uri_cls->ulValueLen != sizeof cls || memcmp(uri_cls->pValue, &cls, sizeof cls) != 0)) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "the key URI names another object type than type=private");
        goto out;
    }
    t[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
    id = p11_kit_uri_get_attribute(uri, CKA_ID);
    label = p11_kit_uri_get_attribute(uri, CKA_LABEL);
    if (id != NULL) {
        t[n++] = *id;
        id_s = tc_hex(id->pValue, id->ulValueLen > 32 ? 32 : id->ulValueLen);
    }
    if (label != NULL) {
        t[n++] = *label;
        label_s = tc_printable(label->pValue, label->ulValueLen, 64);
    }
    if (id != NULL && (*out = cache_lookup(s, id->pValue, id->ulValueLen, label)) != NULL) {
        (*out)->refs++;
        ret = TC_OK;
        goto out;
    }
    if (id == NULL && label == NULL)
        what = tc_strdup("the URI (it names no id= or object=)");
    else
        what = tc_asprintf("%s%s%s%s%s%s", id != NULL ? "id=" : "", id_s != NULL ? id_s : "",
                           id != NULL && label != NULL ? ", " : "", label != NULL ? "object='" : "",
                           label_s != NULL ? label_s : "", label != NULL ? "'" : "");
    if (what == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = key_find(ctx, s, t, n, what, &priv);
    if (ret != TC_OK)
        goto out;
    ret = key_load(ctx, s, priv, out);
out:
    free(what);
    free(id_s);
    free(label_s);
    return ret;
}

tokencert_err tc_key_open_id(tokencert_ctx *ctx, tc_session *s, const unsigned char *id,
                             size_t id_len, tc_key **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, (void *)id, id_len}};
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    char *hex = NULL, *what = NULL;

    tc_return_val_if_fail(ctx != NULL && s != NULL && out != NULL, TC_ERR_INVALID_ARG);
    tc_return_val_if_fail(id != NULL || id_len == 0, TC_ERR_INVALID_ARG);
    *out = NULL;
    if ((*out = cache_lookup(s, id, id_len, NULL)) != NULL) {
        (*out)->refs++;
        return TC_OK;
    }
    hex = tc_hex(id, id_len > 32 ? 32 : id_len);
    what = tc_asprintf("id %s", hex != NULL ? hex : "?");
    if (what == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = key_find(ctx, s, t, 2, what, &priv);
    if (ret != TC_OK)
        goto out;
    ret = key_load(ctx, s, priv, out);
out:
    free(hex);
    free(what);
    return ret;
}

void tc_key_free(tc_key *k)
{
    if (k == NULL || --k->refs > 0)
        return;
    EVP_PKEY_free(k->pub_pkey);
    free(k->id);
    free(k->label);
    free(k);
}
