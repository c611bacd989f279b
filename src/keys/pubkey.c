/* pubkey.c — public keys read from a token key object's attributes, and the CKA_ID derived from a
 * public key (the rule OpenSC and NSS use, so that their tools pair our objects too). */
#include "keys/keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#define PUBKEY_ATTR_MAX 4096

/* CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40); some tokens give the bare
 * point. Returns the bare point inside v. */
static int ec_point_bare(const unsigned char *v, size_t len, const unsigned char **pt, size_t *n)
{
    const unsigned char *p = v;
    ASN1_OCTET_STRING *os;

    if (len > 0 && v[0] == 0x04 && len >= 2) {
        os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
        if (os != NULL && p == v + len) {
            size_t off = (size_t)(p - v) - (size_t)ASN1_STRING_length(os);
            *pt = v + off;
            *n = (size_t)ASN1_STRING_length(os);
            ASN1_OCTET_STRING_free(os);
            return 1;
        }
        ASN1_OCTET_STRING_free(os);
        /* Not DER: a bare uncompressed point (0x04 || X || Y). */
        *pt = v;
        *n = len;
        return 1;
    }
    return 0;
}

/* The curve name for DER ECParameters (a named-curve OID), or NULL. */
static const char *ec_group_name(const unsigned char *der, size_t len, int *nid_out)
{
    const unsigned char *p = der;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    int nid = NID_undef;

    if (oid != NULL && p == der + len)
        nid = OBJ_obj2nid(oid);
    ASN1_OBJECT_free(oid);
    *nid_out = nid;
    return nid == NID_undef ? NULL : OBJ_nid2sn(nid);
}

static tokencert_err pkey_from_params(tokencert_ctx *ctx, const char *alg, OSSL_PARAM *params,
                                      EVP_PKEY **out)
{
    OSSL_LIB_CTX *lib = tc_libctx_plain(ctx);
    EVP_PKEY_CTX *pc = NULL;
    tokencert_err ret = TC_ERR_BAD_DATA;

    if (lib == NULL)
        return TC_ERR_INTERNAL;
    pc = EVP_PKEY_CTX_new_from_name(lib, alg, "provider=default");
    if (pc == NULL || EVP_PKEY_fromdata_init(pc) <= 0 ||
        EVP_PKEY_fromdata(pc, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        *out = NULL;
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "the token's %s public key is malformed", alg);
    } else {
        ret = TC_OK;
    }
    EVP_PKEY_CTX_free(pc);
    return ret;
}

tokencert_err tc_pubkey_read(tokencert_ctx *ctx, tc_session *s, tc_object_ref obj,
                             tc_key_type key_type, EVP_PKEY **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_attr a[2] = {{0}};
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    const unsigned char *pt = NULL;
    size_t pt_len = 0;
    size_t i;
    CK_KEY_TYPE type = tc_key_type_to_ck(key_type);

    *out = NULL;
    if (type == CKK_RSA) {
        a[0].type = CKA_MODULUS;
        a[1].type = CKA_PUBLIC_EXPONENT;
    } else if (type == CKK_EC || type == CKK_EC_EDWARDS) {
        a[0].type = CKA_EC_PARAMS;
        a[1].type = CKA_EC_POINT;
    } else if (type == CK_UNAVAILABLE_INFORMATION) {
        /* A type the neutral vocabulary has no name for: its number was not kept. */
        return tc_error(ctx, TC_ERR_NOT_SUPPORTED, "unsupported key type (not RSA, EC or EdDSA)");
    } else {
        return tc_error(ctx, TC_ERR_NOT_SUPPORTED, "unsupported key type 0x%lx",
                        (unsigned long)type);
    }
    ret = tc_get_attributes(ctx, s, obj, a, 2, PUBKEY_ATTR_MAX);
    if (ret != TC_OK)
        goto out;
    for (i = 0; i < 2; i++) {
        if (!a[i].available) {
            /* Did not fit the first offer, or the token stopped early: ask for it alone. */
            ret = tc_get_attribute(ctx, s, obj, &a[i], PUBKEY_ATTR_MAX);
            if (ret != TC_OK)
                goto out;
            if (!a[i].available) {
                ret = tc_error(ctx, TC_ERR_BAD_DATA,
                               "the token does not reveal the public key of this key object");
                goto out;
            }
        }
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (type == CKK_RSA) {
        n = BN_bin2bn(a[0].value, (int)a[0].len, NULL);
        e = BN_bin2bn(a[1].value, (int)a[1].len, NULL);
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
            (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        ret = pkey_from_params(ctx, "RSA", params, out);
    } else {
        int nid = NID_undef;
        const char *group = ec_group_name(a[0].value, a[0].len, &nid);
        const char *alg = "EC";

        if (!ec_point_bare(a[1].value, a[1].len, &pt, &pt_len)) {
            ret = tc_error(ctx, TC_ERR_BAD_DATA, "the token's EC point is malformed");
            goto out;
        }
        if (type == CKK_EC_EDWARDS) {
            /* CKA_EC_PARAMS of an EdDSA key is an OID or a PrintableString curve name. */
            if (nid == NID_ED448 || (a[0].len > 2 && a[0].value[0] == 0x13 &&
                                     memmem(a[0].value, a[0].len, "448", 3) != NULL))
                alg = "ED448";
            else
                alg = "ED25519";
            if (!OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len)) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
        } else {
            if (group == NULL) {
                ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                               "the key's curve is not a named curve OpenSSL knows");
                goto out;
            }
            if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
                !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len)) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
        }
        params = OSSL_PARAM_BLD_to_param(bld);
        if (params == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        ret = pkey_from_params(ctx, alg, params, out);
    }
out:
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    tc_attrs_clear(a, 2);
    return ret;
}

tokencert_err tc_key_id_for(tokencert_ctx *ctx, EVP_PKEY *pub, unsigned char id[20])
{
    unsigned char buf[1024];
    size_t len = 0;
    BIGNUM *n = NULL;

    if (EVP_PKEY_is_a(pub, "RSA")) {
        int bytes;
        if (!EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
            (bytes = BN_num_bytes(n)) > (int)sizeof buf) {
            BN_free(n);
            return tc_error(ctx, TC_ERR_BAD_DATA, "cannot read the RSA modulus");
        }
        len = (size_t)BN_bn2bin(n, buf);
        BN_free(n);
    } else if (!EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
                                                sizeof buf, &len) &&
               /* OpenSSL 3.0 gives EdDSA keys only as the raw public key. */
               !EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof buf,
                                                &len)) {
        return tc_error(ctx, TC_ERR_BAD_DATA, "cannot read the public key");
    }
    SHA1(buf, len, id);
    return TC_OK;
}
