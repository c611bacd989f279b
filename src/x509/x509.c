/* x509.c — a shallow certificate decode for listings.
 *
 * A full d2i_X509 in OpenSSL 3 decodes the public key through the provider machinery (about
 * 120 us a certificate); a listing needs only names, dates, serial, extensions and the key's type
 * and size. The templates below decode TBSCertificate with OpenSSL's own ASN.1 types but keep the
 * SubjectPublicKeyInfo as an algorithm plus a bit string, so nothing goes through a provider. */
#include "x509/x509.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

typedef struct {
    ASN1_TIME *not_before;
    ASN1_TIME *not_after;
} TC_VALIDITY;

typedef struct {
    X509_ALGOR *alg;
    ASN1_BIT_STRING *key;
} TC_SPKI;

typedef struct {
    ASN1_INTEGER *version;
    ASN1_INTEGER *serial;
    X509_ALGOR *sig_alg;
    X509_NAME *issuer;
    TC_VALIDITY *validity;
    X509_NAME *subject;
    TC_SPKI *spki;
    ASN1_BIT_STRING *issuer_uid;
    ASN1_BIT_STRING *subject_uid;
    STACK_OF(X509_EXTENSION) * exts;
} TC_TBS;

typedef struct {
    TC_TBS *tbs;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *sig;
} TC_CERT;

typedef struct {
    ASN1_INTEGER *n;
    ASN1_INTEGER *e;
} TC_RSAPUB;

/* clang-format off */
DECLARE_ASN1_FUNCTIONS(TC_VALIDITY)
DECLARE_ASN1_FUNCTIONS(TC_SPKI)
DECLARE_ASN1_FUNCTIONS(TC_TBS)
DECLARE_ASN1_FUNCTIONS(TC_CERT)
DECLARE_ASN1_FUNCTIONS(TC_RSAPUB)

ASN1_SEQUENCE(TC_VALIDITY) = {
    ASN1_SIMPLE(TC_VALIDITY, not_before, ASN1_TIME),
    ASN1_SIMPLE(TC_VALIDITY, not_after, ASN1_TIME),
} ASN1_SEQUENCE_END(TC_VALIDITY)

ASN1_SEQUENCE(TC_SPKI) = {
    ASN1_SIMPLE(TC_SPKI, alg, X509_ALGOR),
    ASN1_SIMPLE(TC_SPKI, key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(TC_SPKI)

ASN1_SEQUENCE(TC_TBS) = {
    ASN1_EXP_OPT(TC_TBS, version, ASN1_INTEGER, 0),
    ASN1_SIMPLE(TC_TBS, serial, ASN1_INTEGER),
    ASN1_SIMPLE(TC_TBS, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(TC_TBS, issuer, X509_NAME),
    ASN1_SIMPLE(TC_TBS, validity, TC_VALIDITY),
    ASN1_SIMPLE(TC_TBS, subject, X509_NAME),
    ASN1_SIMPLE(TC_TBS, spki, TC_SPKI),
    ASN1_IMP_OPT(TC_TBS, issuer_uid, ASN1_BIT_STRING, 1),
    ASN1_IMP_OPT(TC_TBS, subject_uid, ASN1_BIT_STRING, 2),
    ASN1_EXP_SEQUENCE_OF_OPT(TC_TBS, exts, X509_EXTENSION, 3),
} ASN1_SEQUENCE_END(TC_TBS)

ASN1_SEQUENCE(TC_CERT) = {
    ASN1_SIMPLE(TC_CERT, tbs, TC_TBS),
    ASN1_SIMPLE(TC_CERT, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(TC_CERT, sig, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(TC_CERT)

ASN1_SEQUENCE(TC_RSAPUB) = {
    ASN1_SIMPLE(TC_RSAPUB, n, ASN1_INTEGER),
    ASN1_SIMPLE(TC_RSAPUB, e, ASN1_INTEGER),
} ASN1_SEQUENCE_END(TC_RSAPUB)

IMPLEMENT_ASN1_FUNCTIONS(TC_VALIDITY)
IMPLEMENT_ASN1_FUNCTIONS(TC_SPKI)
IMPLEMENT_ASN1_FUNCTIONS(TC_TBS)
IMPLEMENT_ASN1_FUNCTIONS(TC_CERT)
IMPLEMENT_ASN1_FUNCTIONS(TC_RSAPUB)
    /* clang-format on */

    void tc_cert_clear(tokencert_cert * c)
{
    size_t i;

    if (c == NULL)
        return;
    free(c->label);
    free(c->id);
    free(c->uri);
    free(c->subject);
    free(c->issuer);
    free(c->serial);
    free(c->error);
    free(c->key_type);
    for (i = 0; i < c->n_key_usage; i++)
        free(c->key_usage[i]);
    free(c->key_usage);
    for (i = 0; i < c->n_ext_key_usage; i++)
        free(c->ext_key_usage[i]);
    free(c->ext_key_usage);
    memset(c, 0, sizeof *c);
}

char *tc_name_string(const X509_NAME *name)
{
    /* RFC 4514 order and escaping, but UTF-8 kept readable rather than \XX-escaped. */
    const unsigned long flags =
        (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long len;

    if (b == NULL)
        return NULL;
    if (X509_NAME_print_ex(b, name, 0, flags) >= 0) {
        len = BIO_get_mem_data(b, &data);
        if (len >= 0)
            out = tc_printable((const unsigned char *)data, (size_t)len, 4096);
    }
    BIO_free(b);
    return out;
}

/* The serial number in hex; NULL when out of memory. Callers refuse serials over
 * SERIAL_MAX_BYTES before (RFC 5280 allows 20 octets; longer ones are shown as unreadable). */
#define SERIAL_MAX_BYTES 64
static char *serial_string(const ASN1_INTEGER *serial)
{
    const unsigned char *p = ASN1_STRING_get0_data(serial);
    int len = ASN1_STRING_length(serial);
    int neg = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
    char *out;

    if (len <= 0)
        return tc_strdup("00");
    out = malloc((size_t)len * 2 + 2);
    if (out == NULL)
        return NULL;
    if (neg)
        out[0] = '-';
    tc_hex_upper(p, (size_t)len, 0, out + neg);
    return out;
}

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    *out = timegm(&tm);
    /* timegm answers -1 on overflow too; the one real second it stands for is no certificate's. */
    return *out == (time_t)-1 ? -1 : 0;
}

static int push_str(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (nv == NULL)
        return -1;
    *v = nv;
    nv[*n] = tc_strdup(s);
    if (nv[*n] == NULL)
        return -1;
    (*n)++;
    return 0;
}

static int decode_key_usage(const ASN1_OCTET_STRING *data, tokencert_cert *out)
{
    static const char *const names[] = {"digitalSignature", "nonRepudiation", "keyEncipherment",
                                        "dataEncipherment", "keyAgreement",   "keyCertSign",
                                        "cRLSign",          "encipherOnly",   "decipherOnly"};
    const unsigned char *p = ASN1_STRING_get0_data(data);
    ASN1_BIT_STRING *bits = d2i_ASN1_BIT_STRING(NULL, &p, ASN1_STRING_length(data));
    int ret = 0;
    size_t i;

    if (bits == NULL)
        return -1;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (ASN1_BIT_STRING_get_bit(bits, (int)i) &&
            push_str(&out->key_usage, &out->n_key_usage, names[i]) != 0)
            ret = -1;
    ASN1_BIT_STRING_free(bits);
    return ret;
}

static int decode_eku(const ASN1_OCTET_STRING *data, tokencert_cert *out)
{
    const unsigned char *p = ASN1_STRING_get0_data(data);
    EXTENDED_KEY_USAGE *eku = d2i_EXTENDED_KEY_USAGE(NULL, &p, ASN1_STRING_length(data));
    int i, ret = 0;

    if (eku == NULL)
        return -1;
    for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
        const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
        char buf[128];
        int nid = OBJ_obj2nid(o);
        if (nid != NID_undef)
            snprintf(buf, sizeof buf, "%s", OBJ_nid2sn(nid));
        else
            OBJ_obj2txt(buf, sizeof buf, o, 1);
        if (push_str(&out->ext_key_usage, &out->n_ext_key_usage, buf) != 0)
            ret = -1;
    }
    EXTENDED_KEY_USAGE_free(eku);
    return ret;
}

static int decode_basic_constraints(const ASN1_OCTET_STRING *data, tokencert_cert *out)
{
    const unsigned char *p = ASN1_STRING_get0_data(data);
    BASIC_CONSTRAINTS *bc = d2i_BASIC_CONSTRAINTS(NULL, &p, ASN1_STRING_length(data));
    if (bc == NULL)
        return -1;
    out->is_ca = bc->ca != 0;
    BASIC_CONSTRAINTS_free(bc);
    return 0;
}

static int bits_of_unsigned(const unsigned char *p, int len)
{
    int bits;
    while (len > 0 && *p == 0) {
        p++;
        len--;
    }
    if (len == 0)
        return 0;
    bits = (len - 1) * 8;
    for (unsigned v = *p; v != 0; v >>= 1)
        bits++;
    return bits;
}

/* Key type and size from SubjectPublicKeyInfo; keyhash = SHA-256 of the key material the token
 * also holds (RSA modulus without leading zeros, or the EC/EdDSA point) for pairing. */
static int decode_spki(const TC_SPKI *spki, tokencert_cert *out, unsigned char keyhash[32])
{
    const ASN1_OBJECT *alg_oid = NULL;
    const void *param = NULL;
    int ptype = 0, nid;
    const unsigned char *kp = ASN1_STRING_get0_data(spki->key);
    int klen = ASN1_STRING_length(spki->key);
    char buf[80];

    X509_ALGOR_get0(&alg_oid, &ptype, &param, spki->alg);
    nid = OBJ_obj2nid(alg_oid);
    if (nid == NID_rsaEncryption || nid == NID_rsassaPss) {
        const unsigned char *p = kp;
        TC_RSAPUB *rsa = d2i_TC_RSAPUB(NULL, &p, klen);
        out->key_type = tc_strdup(nid == NID_rsassaPss ? "rsa-pss" : "rsa");
        if (rsa != NULL) {
            const unsigned char *n = ASN1_STRING_get0_data(rsa->n);
            int nlen = ASN1_STRING_length(rsa->n);
            out->key_bits = bits_of_unsigned(n, nlen);
            while (nlen > 0 && *n == 0) {
                n++;
                nlen--;
            }
            SHA256(n, (size_t)nlen, keyhash);
            TC_RSAPUB_free(rsa);
        }
    } else if (nid == NID_X9_62_id_ecPublicKey) {
        out->key_type = tc_strdup("ec");
        if (ptype == V_ASN1_OBJECT) {
            switch (OBJ_obj2nid(param)) {
            case NID_X9_62_prime256v1:
            case NID_secp256k1:
            case NID_brainpoolP256r1:
                out->key_bits = 256;
                break;
            case NID_secp384r1:
            case NID_brainpoolP384r1:
                out->key_bits = 384;
                break;
            case NID_secp521r1:
                out->key_bits = 521;
                break;
            case NID_brainpoolP512r1:
                out->key_bits = 512;
                break;
            default:
                out->key_bits = 0;
            }
        }
        SHA256(kp, (size_t)klen, keyhash);
    } else if (nid == NID_ED25519 || nid == NID_ED448) {
        out->key_type = tc_strdup(nid == NID_ED25519 ? "ed25519" : "ed448");
        out->key_bits = nid == NID_ED25519 ? 256 : 456;
        SHA256(kp, (size_t)klen, keyhash);
    } else {
        OBJ_obj2txt(buf, sizeof buf, alg_oid, nid == NID_undef);
        out->key_type = tc_strdup(buf);
        SHA256(kp, (size_t)klen, keyhash);
    }
    return out->key_type == NULL ? -1 : 0;
}

tokencert_err tc_cert_decode(const unsigned char *der, size_t len, tokencert_cert *out,
                             unsigned char keyhash[32], char **why)
{
    tokencert_err ret = TC_ERR_BAD_DATA;
    const unsigned char *p = der;
    TC_CERT *cert = NULL;
    TC_TBS *tbs;
    int i;

    *why = NULL;
    memset(keyhash, 0, 32);
    if (len == 0 || len > 1024 * 1024) {
        *why = tc_strdup(len == 0 ? "the certificate value is empty" : "the value is too large");
        goto out;
    }
    {
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA1(der, len, md);
        tc_hex_upper(md, SHA_DIGEST_LENGTH, ':', out->sha1);
        SHA256(der, len, md);
        tc_hex_upper(md, SHA256_DIGEST_LENGTH, ':', out->sha256);
    }
    cert = d2i_TC_CERT(NULL, &p, (long)len);
    if (cert == NULL || p != der + len) {
        *why = tc_strdup(cert == NULL ? "the value is not a DER X.509 certificate"
                                      : "trailing bytes after the certificate");
        goto out;
    }
    tbs = cert->tbs;
    if (ASN1_STRING_length(tbs->serial) > SERIAL_MAX_BYTES) {
        /* Only this certificate is unreadable: a NULL serial was taken as out of memory, which
         * failed every command for the whole token. */
        *why = tc_strdup("the serial number is longer than 64 bytes");
        goto out;
    }
    out->subject = tc_name_string(tbs->subject);
    out->issuer = tc_name_string(tbs->issuer);
    out->serial = serial_string(tbs->serial);
    if (out->subject == NULL || out->issuer == NULL || out->serial == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (asn1_time_to_time_t(tbs->validity->not_before, &out->not_before) != 0) {
        *why = tc_strdup("the certificate's notBefore date is malformed");
        goto out;
    }
    if (asn1_time_to_time_t(tbs->validity->not_after, &out->not_after) != 0) {
        *why = tc_strdup("the certificate's notAfter date is malformed");
        goto out;
    }
    out->self_signed = X509_NAME_cmp(tbs->subject, tbs->issuer) == 0;
    if (decode_spki(tbs->spki, out, keyhash) != 0) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < sk_X509_EXTENSION_num(tbs->exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(tbs->exts, i);
        const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(ext);
        int r = 0;
        switch (OBJ_obj2nid(X509_EXTENSION_get_object(ext))) {
        case NID_key_usage:
            r = decode_key_usage(data, out);
            break;
        case NID_ext_key_usage:
            r = decode_eku(data, out);
            break;
        case NID_basic_constraints:
            r = decode_basic_constraints(data, out);
            break;
        default:
            break;
        }
        if (r != 0) {
            *why = tc_strdup("a certificate extension is malformed");
            goto out;
        }
    }
    ret = TC_OK;
out:
    if (ret == TC_ERR_BAD_DATA && *why == NULL)
        ret = TC_ERR_NOMEM; /* the reason could not be kept */
    TC_CERT_free(cert);
    return ret;
}
