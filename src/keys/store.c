/* store.c — objects this library writes to a token: certificates, private keys from outside
 * (PKCS#12), and the private-key attribute policy that generated and imported keys share. */
#include "keys/keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

static CK_BBOOL yes_v = CK_TRUE, no_v = CK_FALSE;

size_t tc_key_private_policy(CK_ATTRIBUTE *tmpl, CK_KEY_TYPE type, int deny_other_usages)
{
    size_t n = 0;

    tmpl[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes_v, sizeof yes_v};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes_v, sizeof yes_v};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes_v, sizeof yes_v};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no_v, sizeof no_v};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_SIGN, &yes_v, sizeof yes_v};
    if (type == CKK_RSA)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_DECRYPT, &yes_v, sizeof yes_v};
    else if (deny_other_usages)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no_v, sizeof no_v};
    if (deny_other_usages)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no_v, sizeof no_v};
    return n;
}

void tc_object_destroy(tc_session *s, tc_object_ref obj)
{
    if (s != NULL && s->slot != NULL && obj != TC_OBJECT_NONE)
        tc_p11_destroy_object(s->slot->module, s->h, obj);
}

/* ---- certificates --------------------------------------------------------------------------- */

tokencert_err tc_cert_store(tokencert_ctx *ctx, tc_session *s, X509 *cert, const unsigned char *id,
                            size_t id_len, const char *label, int authority, int *existed,
                            tc_object_ref *created)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    unsigned char *der = NULL, *subj = NULL, *iss = NULL, *serial = NULL;
    int der_len, subj_len, iss_len, serial_len;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ctype = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG category = authority ? 2 : 1;
    CK_OBJECT_HANDLE *found = NULL, obj = CK_INVALID_HANDLE;
    size_t n_found = 0;
    CK_RV rv;

    tc_return_val_if_fail(ctx != NULL && s != NULL && cert != NULL && existed != NULL,
                          TC_ERR_INVALID_ARG);
    if (label == NULL)
        label = "";
    *existed = 0;
    if (created != NULL)
        *created = CK_INVALID_HANDLE;
    der_len = i2d_X509(cert, &der);
    subj_len = i2d_X509_NAME(X509_get_subject_name(cert), &subj);
    iss_len = i2d_X509_NAME(X509_get_issuer_name(cert), &iss);
    serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &serial);
    if (der_len <= 0 || subj_len <= 0 || iss_len <= 0 || serial_len <= 0) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "cannot encode the certificate");
        goto out;
    }
    {
        CK_ATTRIBUTE q[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_VALUE, der, (CK_ULONG)der_len}};
        ret = tc_find_objects(ctx, s, q, 2, 1000, &found, &n_found);
        if (ret != TC_OK)
            goto out;
    }
    if (n_found > 0) {
        *existed = 1;
        ret = TC_OK;
        goto out;
    }
    {
        /* CKA_CERTIFICATE_CATEGORY last: dropped when the token does not know it. */
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                               {CKA_CERTIFICATE_TYPE, &ctype, sizeof ctype},
                               {CKA_TOKEN, &yes, sizeof yes},
                               {CKA_PRIVATE, &no, sizeof no},
                               {CKA_ID, (void *)id, (CK_ULONG)id_len},
                               {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
                               {CKA_SUBJECT, subj, (CK_ULONG)subj_len},
                               {CKA_ISSUER, iss, (CK_ULONG)iss_len},
                               {CKA_SERIAL_NUMBER, serial, (CK_ULONG)serial_len},
                               {CKA_VALUE, der, (CK_ULONG)der_len},
                               {CKA_CERTIFICATE_CATEGORY, &category, sizeof category}};
        CK_ULONG n = sizeof tmpl / sizeof tmpl[0];
        rv = tc_p11_create_object(s->slot->module, s->h, tmpl, n, &obj);
        if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
            rv = tc_p11_create_object(s->slot->module, s->h, tmpl, n - 1, &obj);
        if (rv != CKR_OK) {
            ret = tc_session_error(ctx, s, "C_CreateObject (certificate)", rv);
            goto out;
        }
    }
    if (created != NULL)
        *created = obj;
    ret = TC_OK;
out:
    free(found);
    OPENSSL_free(der);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    OPENSSL_free(serial);
    return ret;
}

/* ---- private keys from outside ------------------------------------------------------------- */

/* Buffers that hold key material, wiped and freed together. */
typedef struct {
    unsigned char *p[12];
    size_t len[12];
    size_t n;
} secret_bufs;

static void secret_bufs_free(secret_bufs *b)
{
    size_t i;
    for (i = 0; i < b->n; i++) {
        if (b->p[i] != NULL)
            tc_memzero(b->p[i], b->len[i]);
        free(b->p[i]);
    }
    b->n = 0;
}

/* Big-endian bytes of a BIGNUM parameter into a wiped-on-free buffer; pad 0 for minimal. */
static int bn_param(EVP_PKEY *pkey, const char *name, size_t pad, secret_bufs *b, CK_ATTRIBUTE *a,
                    CK_ATTRIBUTE_TYPE type)
{
    BIGNUM *bn = NULL;
    size_t len;
    unsigned char *buf;

    if (b->n >= 12 || !EVP_PKEY_get_bn_param(pkey, name, &bn))
        return 0;
    len = pad ? pad : (size_t)BN_num_bytes(bn);
    buf = malloc(len ? len : 1);
    if (buf == NULL || BN_bn2binpad(bn, buf, (int)len) < 0) {
        free(buf);
        BN_clear_free(bn);
        return 0;
    }
    BN_clear_free(bn);
    b->p[b->n] = buf;
    b->len[b->n++] = len;
    a->type = type;
    a->pValue = buf;
    a->ulValueLen = (CK_ULONG)len;
    return 1;
}

static int plain_buf(secret_bufs *b, unsigned char *buf, size_t len, CK_ATTRIBUTE *a,
                     CK_ATTRIBUTE_TYPE type)
{
    if (b->n >= 12) {
        free(buf);
        return 0;
    }
    b->p[b->n] = buf;
    b->len[b->n++] = len;
    a->type = type;
    a->pValue = buf;
    a->ulValueLen = (CK_ULONG)len;
    return 1;
}

/* DER of the named-curve OID (or the Ed25519 OID) for CKA_EC_PARAMS. */
static unsigned char *curve_oid_der(EVP_PKEY *pkey, size_t *len)
{
    char group[80];
    int nid = NID_undef, n;
    ASN1_OBJECT *obj;
    unsigned char *der = NULL, *out = NULL;

    if (EVP_PKEY_is_a(pkey, "ED25519"))
        nid = NID_ED25519;
    else if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            NULL)) {
        nid = OBJ_txt2nid(group);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(group);
    }
    if (nid == NID_undef || (obj = OBJ_nid2obj(nid)) == NULL)
        return NULL;
    n = i2d_ASN1_OBJECT(obj, &der);
    if (n > 0) {
        out = malloc((size_t)n);
        if (out != NULL) {
            memcpy(out, der, (size_t)n);
            *len = (size_t)n;
        }
    }
    OPENSSL_free(der);
    return out;
}

/* The EC or EdDSA public point as CKA_EC_POINT wants it: a DER OCTET STRING. */
static unsigned char *ec_point_der(EVP_PKEY *pkey, size_t *len)
{
    unsigned char pt[256], *der = NULL, *out = NULL;
    size_t pt_len = 0;
    ASN1_OCTET_STRING *os = NULL;
    int n;

    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        pt_len = sizeof pt;
        if (!EVP_PKEY_get_raw_public_key(pkey, pt, &pt_len))
            return NULL;
    } else if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
                                                sizeof pt, &pt_len)) {
        return NULL;
    }
    os = ASN1_OCTET_STRING_new();
    if (os != NULL && ASN1_OCTET_STRING_set(os, pt, (int)pt_len) &&
        (n = i2d_ASN1_OCTET_STRING(os, &der)) > 0) {
        out = malloc((size_t)n);
        if (out != NULL) {
            memcpy(out, der, (size_t)n);
            *len = (size_t)n;
        }
    }
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(os);
    return out;
}

static int is_refusal(CK_RV rv)
{
    return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
           rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_TEMPLATE_INCOMPLETE ||
           rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_KEY_TYPE_INCONSISTENT ||
           rv == CKR_DOMAIN_PARAMS_INVALID || rv == CKR_CURVE_NOT_SUPPORTED;
}

tokencert_err tc_key_write(tokencert_ctx *ctx, tc_session *s, EVP_PKEY *pkey,
                           const unsigned char id[20], const char *label, const char *what,
                           tc_object_ref *priv, tc_object_ref *pub)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    secret_bufs priv_b = {0}, pub_b = {0};
    CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE type;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pv[24], pb[16];
    CK_ULONG npv = 0, npb = 0;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, hpub = CK_INVALID_HANDLE;
    int rsa = EVP_PKEY_is_a(pkey, "RSA");
    char *tlabel = NULL;
    CK_RV rv;

    *priv = *pub = TC_OBJECT_NONE;

    if (rsa)
        type = CKK_RSA;
    else if (EVP_PKEY_is_a(pkey, "EC"))
        type = CKK_EC;
    else if (EVP_PKEY_is_a(pkey, "ED25519"))
        type = CKK_EC_EDWARDS;
    else
        return tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                        "%s: the PKCS#12 key is of type %s: RSA, EC and Ed25519 keys can be "
                        "imported",
                        what, EVP_PKEY_get0_type_name(pkey));

#define ADD(arr, n, t, v, l)                                                                       \
    do {                                                                                           \
        (arr)[(n)].type = (t);                                                                     \
        (arr)[(n)].pValue = (void *)(v);                                                           \
        (arr)[(n)].ulValueLen = (CK_ULONG)(l);                                                     \
        (n)++;                                                                                     \
    } while (0)
    ADD(pv, npv, CKA_CLASS, &priv_cls, sizeof priv_cls);
    ADD(pv, npv, CKA_KEY_TYPE, &type, sizeof type);
    npv += tc_key_private_policy(pv + npv, type, 1);
    ADD(pv, npv, CKA_ID, id, 20);
    ADD(pv, npv, CKA_LABEL, label, strlen(label));
    ADD(pb, npb, CKA_CLASS, &pub_cls, sizeof pub_cls);
    ADD(pb, npb, CKA_KEY_TYPE, &type, sizeof type);
    ADD(pb, npb, CKA_TOKEN, &yes, sizeof yes);
    ADD(pb, npb, CKA_PRIVATE, &no, sizeof no);
    ADD(pb, npb, CKA_VERIFY, &yes, sizeof yes);
    ADD(pb, npb, CKA_ENCRYPT, rsa ? &yes : &no, sizeof yes);
    ADD(pb, npb, CKA_WRAP, &no, sizeof no);
    ADD(pb, npb, CKA_ID, id, 20);
    ADD(pb, npb, CKA_LABEL, label, strlen(label));
    if (rsa) {
        static const struct {
            const char *param;
            CK_ATTRIBUTE_TYPE attr;
        } parts[] = {{OSSL_PKEY_PARAM_RSA_N, CKA_MODULUS},
                     {OSSL_PKEY_PARAM_RSA_E, CKA_PUBLIC_EXPONENT},
                     {OSSL_PKEY_PARAM_RSA_D, CKA_PRIVATE_EXPONENT},
                     {OSSL_PKEY_PARAM_RSA_FACTOR1, CKA_PRIME_1},
                     {OSSL_PKEY_PARAM_RSA_FACTOR2, CKA_PRIME_2},
                     {OSSL_PKEY_PARAM_RSA_EXPONENT1, CKA_EXPONENT_1},
                     {OSSL_PKEY_PARAM_RSA_EXPONENT2, CKA_EXPONENT_2},
                     {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, CKA_COEFFICIENT}};
        BIGNUM *f3 = NULL;
        size_t i;
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR3, &f3)) {
            BN_clear_free(f3);
            ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                           "%s: multi-prime RSA keys cannot be written to a token", what);
            goto out;
        }
        for (i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            if (!bn_param(pkey, parts[i].param, 0, &priv_b, &pv[npv], parts[i].attr)) {
                ret = tc_error(ctx, TC_ERR_BAD_DATA,
                               "%s: the PKCS#12 RSA key lacks a component the token needs "
                               "(%s)",
                               what, parts[i].param);
                goto out;
            }
            npv++;
            if (i < 2) {
                pb[npb] = pv[npv - 1];
                npb++;
            }
        }
    } else {
        size_t plen = 0, ptlen = 0, plen2 = 0;
        unsigned char *params = curve_oid_der(pkey, &plen);
        unsigned char *params2 = params != NULL ? malloc(plen) : NULL;
        unsigned char *point = ec_point_der(pkey, &ptlen);

        if (params2 != NULL) {
            memcpy(params2, params, plen);
            plen2 = plen;
        }
        if (params == NULL || params2 == NULL || point == NULL) {
            free(params);
            free(params2);
            free(point);
            ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                           "%s: the PKCS#12 key's curve has no name a token knows", what);
            goto out;
        }
        if (!plain_buf(&priv_b, params, plen, &pv[npv++], CKA_EC_PARAMS) ||
            !plain_buf(&pub_b, params2, plen2, &pb[npb++], CKA_EC_PARAMS) ||
            !plain_buf(&pub_b, point, ptlen, &pb[npb++], CKA_EC_POINT)) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        if (type == CKK_EC_EDWARDS) {
            size_t len = 64;
            unsigned char *raw = malloc(len);
            if (raw == NULL || !EVP_PKEY_get_raw_private_key(pkey, raw, &len)) {
                free(raw);
                ret = tc_error(ctx, TC_ERR_BAD_DATA, "%s: cannot read the Ed25519 key", what);
                goto out;
            }
            if (!plain_buf(&priv_b, raw, len, &pv[npv++], CKA_VALUE)) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
        } else if (!bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY,
                             (size_t)(EVP_PKEY_get_bits(pkey) + 7) / 8, &priv_b, &pv[npv],
                             CKA_VALUE)) {
            ret = tc_error(ctx, TC_ERR_BAD_DATA, "%s: cannot read the EC private key", what);
            goto out;
        } else {
            npv++;
        }
    }
#undef ADD
    rv = tc_p11_create_object(s->slot->module, s->h, pv, npv, &h);
    if (rv != CKR_OK) {
        h = CK_INVALID_HANDLE;
        tlabel = tc_token_string(s->slot->token_info.label, sizeof s->slot->token_info.label);
        if (is_refusal(rv))
            ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                           "%s: token '%s' does not accept private keys from outside "
                           "(C_CreateObject: %s): generate the key on the token (tokencert "
                           "keygen) and import only the certificate",
                           what, tlabel != NULL ? tlabel : "?", tc_ckr_name(rv));
        else
            ret = tc_session_error(ctx, s, "C_CreateObject (private key)", rv);
        goto out;
    }
    rv = tc_p11_create_object(s->slot->module, s->h, pb, npb, &hpub);
    if (rv != CKR_OK) {
        ret = tc_session_error(ctx, s, "C_CreateObject (public key)", rv);
        goto out;
    }
    *priv = h;
    *pub = hpub;
    h = CK_INVALID_HANDLE;
    ret = TC_OK;
out:
    /* Nothing half-written is left behind: a private key without its public key is removed. */
    if (h != CK_INVALID_HANDLE)
        tc_p11_destroy_object(s->slot->module, s->h, h);
    free(tlabel);
    /* The public key's RSA parts point into priv_b: wiped and freed once, here. */
    secret_bufs_free(&priv_b);
    secret_bufs_free(&pub_b);
    return ret;
}
