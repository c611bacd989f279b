/* objects.c — objects selected by a pkcs11: URI on an open token: listed, exported (certificates
 * and public keys only: a private key never leaves the token) and destroyed. */
#include "keys/keys.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>

/* More than this many objects for one URI is not something a person selects on purpose. */
#define SELECT_MAX 100000
#define LABEL_MAX  4096
#define CERT_MAX   (1024 * 1024)

/* One selected object. */
typedef struct {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS cls;
    tokencert_object_desc desc;
} selected;

static const char *class_name(CK_OBJECT_CLASS c)
{
    switch (c) {
    case CKO_CERTIFICATE:
        return "certificate";
    case CKO_PUBLIC_KEY:
        return "public key";
    case CKO_PRIVATE_KEY:
        return "private key";
    case CKO_SECRET_KEY:
        return "secret key";
    case CKO_DATA:
        return "data";
    default:
        return "object";
    }
}

static void desc_clear(tokencert_object_desc *d)
{
    free(d->kind);
    free(d->label);
    free(d->id);
    free(d->uri);
    memset(d, 0, sizeof *d);
}

static void selected_free(selected *v, size_t n)
{
    size_t i;
    for (i = 0; v != NULL && i < n; i++)
        desc_clear(&v[i].desc);
    free(v);
}

/* Describes one object: class, label, id, and a URI on this token that selects it. */
static tokencert_err describe(tokencert_token *t, P11KitUri *token_uri, CK_OBJECT_HANDLE h,
                              selected *out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_attr a[3] = {{CKA_CLASS, NULL, 0, 0, sizeof(CK_OBJECT_CLASS)},
                    {CKA_LABEL, NULL, 0, 0, 0},
                    {CKA_ID, NULL, 0, 0, 0}};
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    CK_ATTRIBUTE u[3];
    CK_ULONG nu = 0;
    char *s = NULL;
    size_t i;

    memset(out, 0, sizeof *out);
    out->h = h;
    ret = tc_get_attributes(t->ctx, &t->session, h, a, 3, LABEL_MAX);
    if (ret != TC_OK)
        goto out;
    for (i = 1; i < 3; i++)
        if (!a[i].available) { /* a long label or id: ask for it alone */
            ret = tc_get_attribute(t->ctx, &t->session, h, &a[i], LABEL_MAX);
            if (ret != TC_OK)
                goto out;
        }
    if (a[0].available)
        memcpy(&cls, a[0].value, sizeof cls);
    out->cls = cls;
    out->desc.kind = tc_strdup(class_name(cls));
    out->desc.label = tc_printable(a[1].available ? a[1].value : (const unsigned char *)"",
                                   a[1].available ? a[1].len : 0, 256);
    out->desc.id = tc_hex(a[2].available ? a[2].value : (const unsigned char *)"",
                          a[2].available ? a[2].len : 0);
    if (out->desc.kind == NULL || out->desc.label == NULL || out->desc.id == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    p11_kit_uri_clear_attributes(token_uri);
    if (a[0].available) {
        u[nu].type = CKA_CLASS;
        u[nu].pValue = &cls;
        u[nu++].ulValueLen = sizeof cls;
    }
    if (a[1].available && a[1].len > 0) {
        u[nu].type = CKA_LABEL;
        u[nu].pValue = a[1].value;
        u[nu++].ulValueLen = a[1].len;
    }
    if (a[2].available && a[2].len > 0) {
        u[nu].type = CKA_ID;
        u[nu].pValue = a[2].value;
        u[nu++].ulValueLen = a[2].len;
    }
    if (p11_kit_uri_set_attributes(token_uri, u, nu) != P11_KIT_URI_OK ||
        p11_kit_uri_format(token_uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &s) != P11_KIT_URI_OK) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    out->desc.uri = s;
    s = NULL;
    ret = TC_OK;
out:
    free(s);
    tc_attrs_clear(a, 3);
    if (ret != TC_OK)
        desc_clear(&out->desc);
    return ret;
}

/* The objects that object_uri selects on t, described. *filter_cls is the class the URI asks for
 * (type=), or (CK_OBJECT_CLASS)-1. */
static tokencert_err select_objects(tokencert_token *t, const char *object_uri, selected **out,
                                    size_t *n_out, CK_OBJECT_CLASS *filter_cls)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tokencert_ctx *ctx = t->ctx;
    P11KitUri *uri = NULL, *token_uri = NULL;
    CK_ATTRIBUTE *tmpl, *cls_attr;
    CK_ULONG n_tmpl = 0;
    CK_OBJECT_HANDLE *h = NULL;
    size_t n_h = 0, i;
    selected *v = NULL;
    int names_object = 0;

    *out = NULL;
    *n_out = 0;
    if (filter_cls != NULL)
        *filter_cls = (CK_OBJECT_CLASS)-1;
    ret = tc_token_object_uri(t, object_uri, &uri, &names_object);
    if (ret != TC_OK)
        goto out;
    if (!names_object) {
        ret =
            tc_error(ctx, TC_ERR_INVALID_ARG, "the URI names no object: add object=, id= or type=");
        goto out;
    }
    cls_attr = p11_kit_uri_get_attribute(uri, CKA_CLASS);
    if (filter_cls != NULL && cls_attr != NULL && cls_attr->ulValueLen == sizeof(CK_OBJECT_CLASS))
        memcpy(filter_cls, cls_attr->pValue, sizeof *filter_cls);
    tmpl = p11_kit_uri_get_attributes(uri, &n_tmpl);
    ret = tc_find_objects(ctx, &t->session, tmpl, n_tmpl, SELECT_MAX, &h, &n_h);
    if (ret != TC_OK)
        goto out;
    if (n_h == 0) {
        ret = tc_error(
            ctx, TC_ERR_NOT_FOUND, "no object on token '%s' matches the URI%s", t->info.label,
            t->session.logged_in ? ""
                                 : " (private objects are visible only after login: try --login)");
        goto out;
    }
    token_uri = p11_kit_uri_new();
    if (token_uri == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (p11_kit_uri_parse(t->info.uri, P11_KIT_URI_FOR_TOKEN, token_uri) != P11_KIT_URI_OK) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot parse the token's own URI");
        goto out;
    }
    v = calloc(n_h, sizeof *v);
    if (v == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n_h; i++) {
        ret = describe(t, token_uri, h[i], &v[i]);
        if (ret != TC_OK) {
            selected_free(v, i);
            v = NULL;
            goto out;
        }
    }
    *out = v;
    *n_out = n_h;
    v = NULL;
    ret = TC_OK;
out:
    free(h);
    if (token_uri != NULL)
        p11_kit_uri_free(token_uri);
    if (uri != NULL)
        p11_kit_uri_free(uri);
    return ret;
}

tokencert_err tokencert_objects_find(tokencert_token *t, const char *object_uri,
                                     tokencert_object_desc **out, size_t *n)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    selected *v = NULL;
    tokencert_object_desc *d = NULL;
    size_t nv = 0, i;

    tc_return_val_if_fail(t != NULL && out != NULL && n != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *n = 0;
    ret = select_objects(t, object_uri, &v, &nv, NULL);
    if (ret != TC_OK)
        goto out;
    d = calloc(nv, sizeof *d);
    if (d == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < nv; i++) {
        d[i] = v[i].desc; /* ownership moves to d */
        memset(&v[i].desc, 0, sizeof v[i].desc);
    }
    *out = d;
    *n = nv;
    d = NULL;
    ret = TC_OK;
out:
    free(d);
    selected_free(v, nv);
    return ret;
}

void tokencert_objects_free(tokencert_object_desc *v, size_t n)
{
    size_t i;
    for (i = 0; v != NULL && i < n; i++)
        desc_clear(&v[i]);
    free(v);
}

/* "certificate 'k1' (id 01), public key 'k1' (id 01)" for messages. */
static char *list_of(const selected *v, size_t n, int (*pick)(const selected *))
{
    char *list = tc_strdup(""), *next;
    size_t i;
    int first = 1;

    for (i = 0; list != NULL && i < n; i++) {
        if (pick != NULL && !pick(&v[i]))
            continue;
        next = tc_asprintf("%s%s%s '%s' (id %s)", list, first ? "" : ", ", v[i].desc.kind,
                           v[i].desc.label, v[i].desc.id[0] ? v[i].desc.id : "none");
        free(list);
        list = next;
        first = 0;
    }
    return list;
}

static int exportable(const selected *s)
{
    return s->cls == CKO_CERTIFICATE || s->cls == CKO_PUBLIC_KEY;
}

static tokencert_err export_cert(tokencert_token *t, const selected *s, unsigned char **der,
                                 size_t *len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_attr a[2] = {{CKA_CERTIFICATE_TYPE, NULL, 0, 0, sizeof(CK_CERTIFICATE_TYPE)},
                    {CKA_VALUE, NULL, 4096, 0, 0}};
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    const unsigned char *p;
    X509 *x = NULL;

    *der = NULL;
    *len = 0;
    ret = tc_get_attributes(t->ctx, &t->session, s->h, a, 2, CERT_MAX);
    if (ret != TC_OK)
        goto out;
    if (a[0].available)
        memcpy(&ct, a[0].value, sizeof ct);
    if (ct != CKC_X_509) {
        ret = tc_error(t->ctx, TC_ERR_NOT_SUPPORTED,
                       "certificate '%s' is not an X.509 certificate (type 0x%lx)", s->desc.label,
                       (unsigned long)ct);
        goto out;
    }
    if (!a[1].available) {
        ret = tc_get_attribute(t->ctx, &t->session, s->h, &a[1], CERT_MAX);
        if (ret != TC_OK)
            goto out;
    }
    if (!a[1].available || a[1].len == 0) {
        ret = tc_error(t->ctx, TC_ERR_BAD_DATA, "certificate '%s' has no readable value",
                       s->desc.label);
        goto out;
    }
    /* The value goes out as the token holds it, but only when it is one whole certificate. */
    p = a[1].value;
    x = d2i_X509(NULL, &p, (long)a[1].len);
    if (x == NULL || p != a[1].value + a[1].len) {
        ret = tc_error(t->ctx, TC_ERR_BAD_DATA,
                       "certificate '%s' (id %s): its value is not a DER certificate",
                       s->desc.label, s->desc.id);
        goto out;
    }
    *der = a[1].value;
    *len = a[1].len;
    a[1].value = NULL;
    ret = TC_OK;
out:
    X509_free(x);
    tc_attrs_clear(a, 2);
    return ret;
}

static tokencert_err export_pubkey(tokencert_token *t, const selected *s, unsigned char **der,
                                   size_t *len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_attr a = {CKA_KEY_TYPE, NULL, 0, 0, sizeof(CK_KEY_TYPE)};
    CK_KEY_TYPE kt;
    EVP_PKEY *pkey = NULL;
    unsigned char *buf = NULL, *w;
    int n;

    *der = NULL;
    *len = 0;
    ret = tc_get_attributes(t->ctx, &t->session, s->h, &a, 1, 64);
    if (ret != TC_OK)
        goto out;
    if (!a.available) {
        ret = tc_error(t->ctx, TC_ERR_BAD_DATA, "public key '%s' has no key type", s->desc.label);
        goto out;
    }
    memcpy(&kt, a.value, sizeof kt);
    ret = tc_pubkey_read(t->ctx, &t->session, s->h, tc_key_type_from_ck(kt), &pkey);
    if (ret != TC_OK)
        goto out;
    n = i2d_PUBKEY(pkey, NULL);
    if (n <= 0) {
        ret = tc_error(t->ctx, TC_ERR_INTERNAL, "cannot encode public key '%s'", s->desc.label);
        goto out;
    }
    buf = malloc((size_t)n);
    if (buf == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    w = buf;
    if (i2d_PUBKEY(pkey, &w) != n) {
        ret = tc_error(t->ctx, TC_ERR_INTERNAL, "cannot encode public key '%s'", s->desc.label);
        goto out;
    }
    *der = buf;
    *len = (size_t)n;
    buf = NULL;
    ret = TC_OK;
out:
    free(buf);
    EVP_PKEY_free(pkey);
    tc_attrs_clear(&a, 1);
    return ret;
}

static tokencert_err pem_wrap(tokencert_ctx *ctx, const char *name, const unsigned char *der,
                              size_t len, unsigned char **out, size_t *out_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;

    *out = NULL;
    *out_len = 0;
    if (b == NULL || !PEM_write_bio(b, name, "", der, (long)len) ||
        (n = BIO_get_mem_data(b, &data)) <= 0) {
        BIO_free(b);
        return tc_error(ctx, TC_ERR_NOMEM, "cannot encode PEM");
    }
    *out = malloc((size_t)n);
    if (*out == NULL) {
        BIO_free(b);
        return TC_ERR_NOMEM;
    }
    memcpy(*out, data, (size_t)n);
    *out_len = (size_t)n;
    BIO_free(b);
    return TC_OK;
}

tokencert_err tokencert_export(tokencert_token *t, const char *object_uri, int pem,
                               unsigned char **out, size_t *len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    selected *v = NULL;
    size_t nv = 0, i, n_exp = 0, pick = 0;
    CK_OBJECT_CLASS want;
    unsigned char *der = NULL;
    size_t der_len = 0;
    char *list = NULL;

    tc_return_val_if_fail(t != NULL && out != NULL && len != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *len = 0;
    /* Refused before any search: asking is the mistake, whatever the token holds. */
    {
        P11KitUri *u = NULL;
        CK_ATTRIBUTE *c;
        int refuse = 0;
        ret = tc_uri_parse(t->ctx, object_uri, &u);
        if (ret != TC_OK)
            goto out;
        c = p11_kit_uri_get_attribute(u, CKA_CLASS);
        if (c != NULL && c->ulValueLen == sizeof want) {
            memcpy(&want, c->pValue, sizeof want);
            refuse = want == CKO_PRIVATE_KEY || want == CKO_SECRET_KEY;
        }
        p11_kit_uri_free(u);
        if (refuse) {
            ret = tc_error(t->ctx, TC_ERR_INVALID_ARG,
                           "the URI asks for a %s: private keys never leave the token (export "
                           "its public key with type=public or its certificate with type=cert)",
                           want == CKO_PRIVATE_KEY ? "private key" : "secret key");
            goto out;
        }
    }
    ret = select_objects(t, object_uri, &v, &nv, &want);
    if (ret != TC_OK)
        goto out;
    for (i = 0; i < nv; i++)
        if (exportable(&v[i]) && n_exp++ == 0)
            pick = i;
    if (n_exp == 0) {
        list = list_of(v, nv, NULL);
        ret = tc_error(t->ctx, TC_ERR_INVALID_ARG,
                       "the URI selects no certificate or public key, only: %s; private keys "
                       "never leave the token",
                       list != NULL ? list : "?");
        goto out;
    }
    if (n_exp > 1) {
        list = list_of(v, nv, exportable);
        ret = tc_error(t->ctx, TC_ERR_INVALID_ARG,
                       "the URI selects %zu objects that could be exported: %s; select one "
                       "(type=cert or type=public, object=, id=)",
                       n_exp, list != NULL ? list : "?");
        goto out;
    }
    if (v[pick].cls == CKO_CERTIFICATE)
        ret = export_cert(t, &v[pick], &der, &der_len);
    else
        ret = export_pubkey(t, &v[pick], &der, &der_len);
    if (ret != TC_OK)
        goto out;
    if (pem) {
        ret = pem_wrap(t->ctx, v[pick].cls == CKO_CERTIFICATE ? "CERTIFICATE" : "PUBLIC KEY", der,
                       der_len, out, len);
        if (ret != TC_OK)
            goto out;
    } else {
        *out = der;
        *len = der_len;
        der = NULL;
    }
    ret = TC_OK;
out:
    free(list);
    free(der);
    selected_free(v, nv);
    return ret;
}

tokencert_err tokencert_delete(tokencert_token *t, const char *object_uri, size_t *n_deleted)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    selected *v = NULL;
    size_t nv = 0, i, done = 0;
    CK_RV rv;

    tc_return_val_if_fail(t != NULL && n_deleted != NULL, TC_ERR_INVALID_ARG);
    *n_deleted = 0;
    ret = select_objects(t, object_uri, &v, &nv, NULL);
    if (ret != TC_OK)
        goto out;
    /* Keys the session remembers may be among those destroyed. */
    tc_session_forget_keys(&t->session);
    for (i = 0; i < nv; i++) {
        rv = tc_p11_destroy_object(t->slot.module, t->session.h, v[i].h);
        if (rv != CKR_OK) {
            tokencert_err e = tc_session_error(t->ctx, &t->session, "C_DestroyObject", rv);
            char *detail = tc_strdup(tokencert_ctx_error(t->ctx));
            ret = tc_error(t->ctx, e, "%s '%s' (id %s) not deleted (%zu of %zu deleted before): %s",
                           v[i].desc.kind, v[i].desc.label, v[i].desc.id, done, nv,
                           detail != NULL ? detail : "");
            free(detail);
            goto out;
        }
        done++;
    }
    ret = TC_OK;
out:
    *n_deleted = done;
    selected_free(v, nv);
    return ret;
}

/* The SHA-256 fingerprint ("AB:CD:...") of a certificate object's value; 0 when it cannot be
 * read. */
static int cert_fingerprint(tokencert_token *t, CK_OBJECT_HANDLE h, char out[96])
{
    CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
    unsigned char md[32];
    unsigned int md_len = 0;
    int ok = 0;

    if (tc_p11_get_attribute_value(t->slot.module, t->session.h, h, &a, 1) != CKR_OK ||
        a.ulValueLen == 0 || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return 0;
    a.pValue = malloc(a.ulValueLen);
    if (a.pValue != NULL &&
        tc_p11_get_attribute_value(t->slot.module, t->session.h, h, &a, 1) == CKR_OK &&
        EVP_Digest(a.pValue, a.ulValueLen, md, &md_len, EVP_sha256(), NULL) == 1) {
        tc_hex_upper(md, md_len, ':', out);
        ok = 1;
    }
    free(a.pValue);
    return ok;
}

tokencert_err tokencert_delete_cert(tokencert_token *t, const char *object_uri, const char *sha256,
                                    size_t *n_deleted)
{
    tokencert_err ret;
    selected *v = NULL;
    size_t nv = 0, i;
    char fp[96];
    CK_RV rv;

    tc_return_val_if_fail(t != NULL && sha256 != NULL && n_deleted != NULL, TC_ERR_INVALID_ARG);
    *n_deleted = 0;
    ret = select_objects(t, object_uri, &v, &nv, NULL);
    if (ret != TC_OK)
        goto out;
    for (i = 0; i < nv; i++) {
        if (v[i].cls != CKO_CERTIFICATE || !cert_fingerprint(t, v[i].h, fp) ||
            strcasecmp(fp, sha256) != 0)
            continue;
        rv = tc_p11_destroy_object(t->slot.module, t->session.h, v[i].h);
        if (rv != CKR_OK) {
            ret = tc_session_error(t->ctx, &t->session, "C_DestroyObject", rv);
            goto out;
        }
        (*n_deleted)++;
    }
    ret = TC_OK;
out:
    selected_free(v, nv);
    return ret;
}
