/* scan.c — the objects of a session as a listing reads them: one search over everything the
 * session can see and one attribute read per object, handed to the caller as neutral records;
 * and the public key material that pairs a key with a certificate when their ids differ. */
#include "keys/keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/sha.h>

#define MAX_ATTR_LEN (1024 * 1024)

/* The attributes read from every object, in one call per object. The fixed-size ones go last: a
 * token that stops at the first attribute an object lacks leaves them untouched (see
 * tc_get_attributes). */
enum { A_ID, A_LABEL, A_VALUE, A_CLASS, A_CERT_TYPE, A_KEY_TYPE, A_SENSITIVE, A_EXTRACTABLE, A_N };

static void object_template(tc_attr a[A_N])
{
    memset(a, 0, A_N * sizeof *a);
    a[A_ID] = (tc_attr){CKA_ID, NULL, 128, 0, 0};
    a[A_LABEL] = (tc_attr){CKA_LABEL, NULL, 128, 0, 0};
    a[A_VALUE] = (tc_attr){CKA_VALUE, NULL, 8192, 0, 0};
    a[A_CLASS] = (tc_attr){CKA_CLASS, NULL, 0, 0, sizeof(CK_ULONG)};
    a[A_CERT_TYPE] = (tc_attr){CKA_CERTIFICATE_TYPE, NULL, 0, 0, sizeof(CK_ULONG)};
    a[A_KEY_TYPE] = (tc_attr){CKA_KEY_TYPE, NULL, 0, 0, sizeof(CK_ULONG)};
    a[A_SENSITIVE] = (tc_attr){CKA_SENSITIVE, NULL, 0, 0, sizeof(CK_BBOOL)};
    a[A_EXTRACTABLE] = (tc_attr){CKA_EXTRACTABLE, NULL, 0, 0, sizeof(CK_BBOOL)};
}

static CK_ULONG attr_ulong(const tc_attr *a, CK_ULONG dflt)
{
    CK_ULONG v;
    if (!a->available || a->len != sizeof v)
        return dflt;
    memcpy(&v, a->value, sizeof v);
    return v;
}

static int attr_bool(const tc_attr *a)
{
    if (!a->available || a->len != sizeof(CK_BBOOL))
        return -1;
    return *(CK_BBOOL *)a->value ? 1 : 0;
}

/* Certificates, keys and labels can hold values larger than the first read offered room for;
 * those come back unavailable, and only those are read again on their own. */
static tokencert_err reread_missing(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE obj,
                                    tc_attr a[A_N], int want_value)
{
    tokencert_err ret = TC_OK;
    if (!a[A_ID].available)
        ret = tc_get_attribute(ctx, s, obj, &a[A_ID], MAX_ATTR_LEN);
    if (ret == TC_OK && !a[A_LABEL].available)
        ret = tc_get_attribute(ctx, s, obj, &a[A_LABEL], MAX_ATTR_LEN);
    if (ret == TC_OK && want_value && !a[A_VALUE].available)
        ret = tc_get_attribute(ctx, s, obj, &a[A_VALUE], MAX_ATTR_LEN);
    return ret;
}

/* Hands a value over to the record; an empty or unavailable one becomes NULL. */
static void take(tc_attr *a, unsigned char **v, size_t *len)
{
    *v = NULL;
    *len = 0;
    if (a->available && a->len > 0) {
        *v = a->value;
        *len = a->len;
        a->value = NULL;
    }
}

tokencert_err tc_objects_scan(tokencert_ctx *ctx, tc_session *s, size_t max_objects,
                              tc_object_visit_fn visit, void *data)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0, i;
    tc_attr a[A_N];
    tc_object o;

    memset(&o, 0, sizeof o);
    ret = tc_find_objects(ctx, s, NULL, 0, max_objects, &objs, &n);
    if (ret != TC_OK)
        goto out;
    for (i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls;
        int cert;

        object_template(a);
        ret = tc_get_attributes(ctx, s, objs[i], a, A_N, MAX_ATTR_LEN);
        if (ret == TC_ERR_TOKEN_ABSENT || ret == TC_ERR_NOMEM)
            goto out;
        if (ret != TC_OK) {
            tc_warning(ctx, "skipping an object: %s", tokencert_ctx_error(ctx));
            ret = TC_OK;
            continue;
        }
        cls = attr_ulong(&a[A_CLASS], CK_UNAVAILABLE_INFORMATION);
        cert = cls == CKO_CERTIFICATE && attr_ulong(&a[A_CERT_TYPE], CKC_X_509) == CKC_X_509;
        if (!cert && cls != CKO_PUBLIC_KEY && cls != CKO_PRIVATE_KEY) {
            tc_attrs_clear(a, A_N);
            continue;
        }
        ret = reread_missing(ctx, s, objs[i], a, cert);
        if (ret == TC_OK) {
            memset(&o, 0, sizeof o);
            o.cls = tc_obj_class_from_ck(cls);
            o.ref = objs[i];
            take(&a[A_ID], &o.id, &o.id_len);
            take(&a[A_LABEL], &o.label, &o.label_len);
            if (cert)
                take(&a[A_VALUE], &o.value, &o.value_len);
            o.key_type =
                tc_key_type_from_ck(attr_ulong(&a[A_KEY_TYPE], CK_UNAVAILABLE_INFORMATION));
            o.sensitive = attr_bool(&a[A_SENSITIVE]);
            o.extractable = attr_bool(&a[A_EXTRACTABLE]);
            ret = visit(data, &o);
            free(o.id);
            free(o.label);
            free(o.value);
            memset(&o, 0, sizeof o);
        }
        tc_attrs_clear(a, A_N);
        if (ret != TC_OK)
            goto out;
    }
    ret = TC_OK;
out:
    free(objs);
    return ret;
}

static int ec_params_bits(const unsigned char *p, size_t len)
{
    ASN1_OBJECT *o = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    int bits = 0;
    if (o == NULL)
        return 0;
    switch (OBJ_obj2nid(o)) {
    case NID_X9_62_prime256v1:
    case NID_secp256k1:
        bits = 256;
        break;
    case NID_secp384r1:
        bits = 384;
        break;
    case NID_secp521r1:
        bits = 521;
        break;
    case NID_ED25519:
        bits = 256;
        break;
    case NID_ED448:
        bits = 456;
        break;
    default:
        bits = 0;
    }
    ASN1_OBJECT_free(o);
    return bits;
}

tokencert_err tc_key_material_hash(tokencert_ctx *ctx, tc_session *s, tc_object_ref obj,
                                   tc_key_type type, int read_point, unsigned char hash[32],
                                   int *has_hash, int *bits)
{
    tokencert_err ret;
    unsigned char *p;
    size_t len;

    *has_hash = 0;
    if (type == TC_KEY_TYPE_RSA) {
        tc_attr a[1] = {{CKA_MODULUS, NULL, 0, 0, 0}};
        ret = tc_get_attribute(ctx, s, obj, &a[0], MAX_ATTR_LEN);
        if (ret != TC_OK || !a[0].available) {
            tc_attrs_clear(a, 1);
            return ret;
        }
        p = a[0].value;
        len = a[0].len;
        while (len > 0 && *p == 0) {
            p++;
            len--;
        }
        SHA256(p, len, hash);
        *has_hash = 1;
        *bits = (int)len * 8;
        if (len > 0)
            for (unsigned v = 0x80; v != 0 && !(*p & v); v >>= 1)
                (*bits)--;
        tc_attrs_clear(a, 1);
        return TC_OK;
    }
    if (type == TC_KEY_TYPE_EC || type == TC_KEY_TYPE_EDDSA) {
        tc_attr a[2] = {{CKA_EC_PARAMS, NULL, 0, 0, 0}, {CKA_EC_POINT, NULL, 0, 0, 0}};
        ret = tc_get_attribute(ctx, s, obj, &a[0], MAX_ATTR_LEN);
        if (ret == TC_OK && read_point)
            ret = tc_get_attribute(ctx, s, obj, &a[1], MAX_ATTR_LEN);
        if (ret != TC_OK) {
            tc_attrs_clear(a, 2);
            return ret;
        }
        if (a[0].available)
            *bits = ec_params_bits(a[0].value, a[0].len);
        if (type == TC_KEY_TYPE_EDDSA && *bits == 0)
            *bits = 256;
        if (a[1].available) {
            /* CKA_EC_POINT is normally a DER OCTET STRING; some tokens store the raw point. */
            const unsigned char *q = a[1].value;
            ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)a[1].len);
            if (os != NULL && q == (unsigned char *)a[1].value + a[1].len)
                SHA256(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), hash);
            else
                SHA256(a[1].value, a[1].len, hash);
            ASN1_OCTET_STRING_free(os);
            *has_hash = 1;
        }
        tc_attrs_clear(a, 2);
    }
    return TC_OK;
}
