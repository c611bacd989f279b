/* request.c — PKCS#10 certificate requests for token keys: the subject from an RFC 4514 string
 * (parsed by OpenLDAP's DN parser, not by hand), subjectAltNames, an optional challenge password,
 * and the signature made on the token through the library's OpenSSL provider. */
#include "x509/x509.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldap.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* Attribute types a subject may use, by the names RFC 4514, RFC 4519 and X.520 give them (matched
 * case-insensitively, as RFC 4514 requires). Anything else must be a dotted OID. */
static const struct {
    const char *name;
    int nid;
} attr_types[] = {
    {"CN", NID_commonName},
    {"commonName", NID_commonName},
    {"C", NID_countryName},
    {"countryName", NID_countryName},
    {"L", NID_localityName},
    {"localityName", NID_localityName},
    {"ST", NID_stateOrProvinceName},
    {"stateOrProvinceName", NID_stateOrProvinceName},
    {"STREET", NID_streetAddress},
    {"streetAddress", NID_streetAddress},
    {"O", NID_organizationName},
    {"organizationName", NID_organizationName},
    {"OU", NID_organizationalUnitName},
    {"organizationalUnitName", NID_organizationalUnitName},
    {"DC", NID_domainComponent},
    {"domainComponent", NID_domainComponent},
    {"UID", NID_userId},
    {"userId", NID_userId},
    {"serialNumber", NID_serialNumber},
    {"emailAddress", NID_pkcs9_emailAddress},
    {"E", NID_pkcs9_emailAddress}, /* as Windows writes it */
    {"title", NID_title},
    {"GN", NID_givenName},
    {"givenName", NID_givenName},
    {"SN", NID_surname},
    {"surname", NID_surname},
    {"initials", NID_initials},
    {"pseudonym", NID_pseudonym},
    {"generationQualifier", NID_generationQualifier},
    {"dnQualifier", NID_dnQualifier},
    {"name", NID_name},
    {"postalCode", NID_postalCode},
    {"postalAddress", NID_postalAddress},
    {"businessCategory", NID_businessCategory},
    {"description", NID_description},
    {"organizationIdentifier", NID_organizationIdentifier},
    {"jurisdictionC", NID_jurisdictionCountryName},
    {"jurisdictionST", NID_jurisdictionStateOrProvinceName},
    {"jurisdictionL", NID_jurisdictionLocalityName},
};

#define SUBJECT_MAX 4096
#define SAN_MAX     1024

static int is_numericoid(const char *s, size_t n)
{
    size_t i;
    int dots = 0, digits = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (digits == 0)
                return 0;
            dots++;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            digits++;
        } else {
            return 0;
        }
    }
    return dots > 0 && digits > 0;
}

/* The attribute type of one AVA as an OpenSSL object. */
static tokencert_err attr_type(tokencert_ctx *ctx, const struct berval *bv, ASN1_OBJECT **out)
{
    size_t i;
    char *oid;

    *out = NULL;
    for (i = 0; i < sizeof attr_types / sizeof attr_types[0]; i++)
        if (strlen(attr_types[i].name) == bv->bv_len &&
            strncasecmp(attr_types[i].name, bv->bv_val, bv->bv_len) == 0) {
            *out = OBJ_nid2obj(attr_types[i].nid);
            return *out != NULL ? TC_OK : TC_ERR_INTERNAL;
        }
    if (!is_numericoid(bv->bv_val, bv->bv_len))
        return tc_error(ctx, TC_ERR_INVALID_ARG, "subject: unknown attribute type '%.*s'",
                        (int)(bv->bv_len > 64 ? 64 : bv->bv_len), bv->bv_val);
    oid = tc_strndup(bv->bv_val, bv->bv_len);
    if (oid == NULL)
        return TC_ERR_NOMEM;
    *out = OBJ_txt2obj(oid, 1);
    free(oid);
    if (*out == NULL) {
        ERR_clear_error();
        return tc_error(ctx, TC_ERR_INVALID_ARG, "subject: invalid OID '%.*s'",
                        (int)(bv->bv_len > 64 ? 64 : bv->bv_len), bv->bv_val);
    }
    return TC_OK;
}

/* The short name of an attribute for messages. */
static const char *attr_name(const ASN1_OBJECT *obj, char *buf, size_t cap)
{
    int nid = OBJ_obj2nid(obj);
    if (nid != NID_undef && OBJ_nid2sn(nid) != NULL)
        return OBJ_nid2sn(nid);
    OBJ_obj2txt(buf, (int)cap, obj, 1);
    return buf;
}

/* The last OpenSSL reason, for a message; clears the queue. */
static const char *ossl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    snprintf(buf, cap, "%s", r != NULL ? r : "rejected by OpenSSL");
    ERR_clear_error();
    return buf;
}

/* Adds one AVA to name; set -1 joins the RDN of the entry added before (multi-valued RDNs). */
static tokencert_err add_ava(tokencert_ctx *ctx, X509_NAME *name, const LDAPAVA *ava, int set)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    ASN1_OBJECT *obj = NULL;
    ASN1_TYPE *typed = NULL;
    const unsigned char *p;
    char nbuf[80], why[160];
    const char *an;
    int nid;

    ret = attr_type(ctx, &ava->la_attr, &obj);
    if (ret != TC_OK)
        goto out;
    an = attr_name(obj, nbuf, sizeof nbuf);
    nid = OBJ_obj2nid(obj);
    if (ava->la_flags & LDAP_AVA_BINARY) {
        /* "#hex": the BER encoding of the value itself (RFC 4514 section 2.4). */
        p = (const unsigned char *)ava->la_value.bv_val;
        typed = d2i_ASN1_TYPE(NULL, &p, (long)ava->la_value.bv_len);
        if (typed == NULL ||
            p != (const unsigned char *)ava->la_value.bv_val + ava->la_value.bv_len) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                           "subject: the #hex value of %s is not one DER-encoded value", an);
            goto out;
        }
        switch (typed->type) {
        case V_ASN1_UTF8STRING:
        case V_ASN1_PRINTABLESTRING:
        case V_ASN1_IA5STRING:
        case V_ASN1_T61STRING:
        case V_ASN1_BMPSTRING:
        case V_ASN1_UNIVERSALSTRING:
        case V_ASN1_NUMERICSTRING:
            break;
        default:
            ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                           "subject: the #hex value of %s is not a directory string", an);
            goto out;
        }
        if (ASN1_STRING_length(typed->value.asn1_string) == 0) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG, "subject: empty value for %s", an);
            goto out;
        }
        if (!X509_NAME_add_entry_by_OBJ(name, obj, typed->type,
                                        ASN1_STRING_get0_data(typed->value.asn1_string),
                                        ASN1_STRING_length(typed->value.asn1_string), -1, set)) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG, "subject: value of %s not accepted: %s", an,
                           ossl_reason(why, sizeof why));
            goto out;
        }
    } else {
        if (ava->la_value.bv_len == 0) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG, "subject: empty value for %s", an);
            goto out;
        }
        if (nid == NID_countryName &&
            (ava->la_value.bv_len != 2 || !isalpha((unsigned char)ava->la_value.bv_val[0]) ||
             !isalpha((unsigned char)ava->la_value.bv_val[1]))) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                           "subject: C must be a two-letter country code (ISO 3166), not '%.*s'",
                           (int)(ava->la_value.bv_len > 64 ? 64 : ava->la_value.bv_len),
                           ava->la_value.bv_val);
            goto out;
        }
        /* OpenSSL picks the string type per attribute (PrintableString for C and serialNumber,
         * IA5String for DC and emailAddress, else UTF8String), checks UTF-8 and the RFC 5280
         * upper bounds. */
        if (!X509_NAME_add_entry_by_OBJ(name, obj, MBSTRING_UTF8,
                                        (const unsigned char *)ava->la_value.bv_val,
                                        (int)ava->la_value.bv_len, -1, set)) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG, "subject: value of %s not accepted: %s", an,
                           ossl_reason(why, sizeof why));
            goto out;
        }
    }
    ret = TC_OK;
out:
    ASN1_TYPE_free(typed);
    ASN1_OBJECT_free(obj);
    return ret;
}

/* Where the LDAP parser stops: parses RDN by RDN to name the position of the bad part. */
static tokencert_err name_syntax_error(tokencert_ctx *ctx, const char *s)
{
    const char *p = s;
    LDAPRDN rdn;
    char *next;
    int rc;

    for (;;) {
        rdn = NULL;
        next = NULL;
        rc = ldap_str2rdn(p, &rdn, &next, LDAP_DN_FORMAT_LDAPV3);
        if (rdn != NULL)
            ldap_rdnfree(rdn);
        if (rc != LDAP_SUCCESS || next == NULL)
            break;
        p = next;
        if (*p == '\0')
            break;
        if (*p != ',')
            break;
        p++;
        if (*p == '\0')
            return tc_error(ctx, TC_ERR_INVALID_ARG, "subject: trailing ',' at position %zu",
                            (size_t)(p - s - 1));
    }
    return tc_error(ctx, TC_ERR_INVALID_ARG,
                    "subject: malformed RDN at position %zu ('%.20s'): expected TYPE=VALUE, with "
                    "',' '+' '\"' '\\' '<' '>' ';' escaped by '\\'",
                    (size_t)(p - s), p);
}

tokencert_err tc_name_parse(tokencert_ctx *ctx, const char *s, X509_NAME **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    LDAPDN dn = NULL;
    X509_NAME *name = NULL;
    size_t n_rdn = 0, i, j;
    int rc;

    *out = NULL;
    if (s == NULL || s[strspn(s, " ")] == '\0') {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "subject: empty (give e.g. \"CN=name,O=org\")");
        goto out;
    }
    if (strlen(s) > SUBJECT_MAX) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "subject: longer than %d characters", SUBJECT_MAX);
        goto out;
    }
    rc = ldap_str2dn(s, &dn, LDAP_DN_FORMAT_LDAPV3);
    if (rc != LDAP_SUCCESS) {
        ret = name_syntax_error(ctx, s);
        goto out;
    }
    while (dn != NULL && dn[n_rdn] != NULL)
        n_rdn++;
    if (n_rdn == 0) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "subject: empty");
        goto out;
    }
    name = X509_NAME_new();
    if (name == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    /* RFC 4514 writes the most specific RDN first; the DER sequence starts at the root. */
    for (i = n_rdn; i-- > 0;) {
        for (j = 0; dn[i][j] != NULL; j++) {
            ret = add_ava(ctx, name, dn[i][j], j == 0 ? 0 : -1);
            if (ret != TC_OK)
                goto out;
        }
    }
    *out = name;
    name = NULL;
    ret = TC_OK;
out:
    X509_NAME_free(name);
    if (dn != NULL)
        ldap_dnfree(dn);
    return ret;
}

/* IA5String characters that make sense in a name: printable ASCII, no spaces. */
static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int dns_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    const char *p = s;

    if (len == 0 || len > 253)
        return 0;
    if (strncmp(p, "*.", 2) == 0) /* a wildcard as the whole left-most label */
        p += 2;
    for (; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

static int email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    return printable_ascii(s) && at != NULL && at != s && at[1] != '\0' &&
           strchr(at + 1, '@') == NULL && dns_name_ok(at + 1);
}

static int uri_ok(const char *s)
{
    const char *p = s;
    if (!isalpha((unsigned char)*p))
        return 0;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    return *p == ':' && p[1] != '\0' && printable_ascii(s);
}

static GENERAL_NAME *ia5_name(int type, const char *v)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *str = ASN1_IA5STRING_new();

    if (gn == NULL || str == NULL || !ASN1_STRING_set(str, v, (int)strlen(v))) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(str);
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, type, str);
    return gn;
}

static tokencert_err san_one(tokencert_ctx *ctx, const char *s, GENERAL_NAME **out)
{
    static const struct {
        const char *prefix;
        int type;
        const char *what;
    } kinds[] = {{"dns:", GEN_DNS, "a DNS name"},
                 {"ip:", GEN_IPADD, "an IPv4 or IPv6 address"},
                 {"email:", GEN_EMAIL, "an e-mail address"},
                 {"uri:", GEN_URI, "a URI with a scheme"}};
    const char *v = NULL;
    size_t i, k = 0;
    unsigned char ip[16];
    int ip_len = 0, ok;

    *out = NULL;
    if (strlen(s) > SAN_MAX)
        return tc_error(ctx, TC_ERR_INVALID_ARG, "SAN '%.40s...': longer than %d characters", s,
                        SAN_MAX);
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strncasecmp(s, kinds[i].prefix, strlen(kinds[i].prefix)) == 0) {
            v = s + strlen(kinds[i].prefix);
            k = i;
            break;
        }
    if (v == NULL)
        return tc_error(
            ctx, TC_ERR_INVALID_ARG,
            "SAN '%s': unknown kind: use dns:NAME, ip:ADDRESS, email:ADDRESS or uri:URI", s);
    if (*v == '\0')
        return tc_error(ctx, TC_ERR_INVALID_ARG, "SAN '%s': empty value", s);
    switch (kinds[k].type) {
    case GEN_DNS:
        ok = dns_name_ok(v);
        break;
    case GEN_EMAIL:
        ok = email_ok(v);
        break;
    case GEN_URI:
        ok = uri_ok(v);
        break;
    default:
        if (inet_pton(AF_INET, v, ip) == 1) {
            ip_len = 4;
            ok = 1;
        } else if (inet_pton(AF_INET6, v, ip) == 1) {
            ip_len = 16;
            ok = 1;
        } else {
            ok = 0;
        }
        break;
    }
    if (!ok)
        return tc_error(ctx, TC_ERR_INVALID_ARG, "SAN '%s': not %s", s, kinds[k].what);
    if (kinds[k].type == GEN_IPADD) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        if (gn == NULL || os == NULL || !ASN1_OCTET_STRING_set(os, ip, ip_len)) {
            GENERAL_NAME_free(gn);
            ASN1_OCTET_STRING_free(os);
            return TC_ERR_NOMEM;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
        *out = gn;
    } else {
        *out = ia5_name(kinds[k].type, v);
        if (*out == NULL)
            return TC_ERR_NOMEM;
    }
    return TC_OK;
}

tokencert_err tc_san_parse(tokencert_ctx *ctx, const char *const *san, size_t n,
                           GENERAL_NAMES **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    GENERAL_NAMES *names = NULL;
    GENERAL_NAME *gn = NULL;
    size_t i;

    *out = NULL;
    names = sk_GENERAL_NAME_new_null();
    if (names == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        ret = san_one(ctx, san[i] != NULL ? san[i] : "", &gn);
        if (ret != TC_OK)
            goto out;
        if (!sk_GENERAL_NAME_push(names, gn)) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        gn = NULL;
    }
    *out = names;
    names = NULL;
    ret = TC_OK;
out:
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(names);
    return ret;
}

static tokencert_err add_challenge(tokencert_ctx *ctx, X509_REQ *req, const char *challenge)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    ASN1_STRING *str = NULL;
    size_t len = strlen(challenge);

    if (len == 0 || len > 255) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "challenge password: must be 1 to 255 characters long");
        goto out;
    }
    /* PrintableString when it fits (what SCEP servers written against RFC 2985 expect), else
     * UTF8String. */
    if (ASN1_mbstring_copy(&str, (const unsigned char *)challenge, (int)len, MBSTRING_UTF8,
                           B_ASN1_PRINTABLESTRING | B_ASN1_UTF8STRING) <= 0) {
        ERR_clear_error();
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "challenge password: not valid UTF-8");
        goto out;
    }
    if (!X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, ASN1_STRING_type(str),
                                   ASN1_STRING_get0_data(str), ASN1_STRING_length(str))) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = TC_OK;
out:
    if (str != NULL)
        OPENSSL_cleanse(str->data, (size_t)str->length);
    ASN1_STRING_free(str);
    return ret;
}

void tc_req_free(X509_REQ *req)
{
    int i;

    if (req == NULL)
        return;
    /* The challenge password is a secret: wipe the copy the request holds. */
    i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    if (i >= 0) {
        X509_ATTRIBUTE *a = X509_REQ_get_attr(req, i);
        int k, n = X509_ATTRIBUTE_count(a);
        for (k = 0; k < n; k++) {
            ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, k);
            if (t != NULL && t->type != V_ASN1_BOOLEAN && t->type != V_ASN1_NULL &&
                t->type != V_ASN1_OBJECT && t->value.asn1_string != NULL &&
                t->value.asn1_string->data != NULL)
                OPENSSL_cleanse(t->value.asn1_string->data, (size_t)t->value.asn1_string->length);
        }
    }
    X509_REQ_free(req);
}

tokencert_err tc_req_build(tokencert_ctx *ctx, const tokencert_csr_params *p, EVP_PKEY *pub,
                           X509_REQ **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    GENERAL_NAMES *sans = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext = NULL;
    OSSL_LIB_CTX *lib;

    *out = NULL;
    lib = tc_libctx(ctx);
    if (lib == NULL)
        goto out;
    ret = tc_name_parse(ctx, p->subject, &name);
    if (ret != TC_OK)
        goto out;
    if (p->n_san > 0) {
        ret = tc_san_parse(ctx, p->san, p->n_san, &sans);
        if (ret != TC_OK)
            goto out;
    }
    ret = TC_ERR_NOMEM;
    req = X509_REQ_new_ex(lib, NULL);
    if (req == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, name))
        goto out;
    if (sans != NULL) {
        exts = sk_X509_EXTENSION_new_null();
        ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, sans);
        if (exts == NULL || ext == NULL || !sk_X509_EXTENSION_push(exts, ext))
            goto out;
        ext = NULL;
        if (!X509_REQ_add_extensions(req, exts))
            goto out;
    }
    if (p->challenge != NULL) {
        ret = add_challenge(ctx, req, p->challenge);
        if (ret != TC_OK)
            goto out;
    }
    if (pub != NULL && !X509_REQ_set_pubkey(req, pub)) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot set the request's public key");
        goto out;
    }
    *out = req;
    req = NULL;
    ret = TC_OK;
out:
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(name);
    tc_req_free(req);
    return ret;
}

tokencert_err tc_digest_name(tokencert_ctx *ctx, const char *digest, const char **name)
{
    static const char *const ok[][2] = {
        {"sha256", "SHA256"}, {"sha384", "SHA384"}, {"sha512", "SHA512"}};
    size_t i;

    *name = NULL;
    if (digest == NULL) {
        *name = "SHA256";
        return TC_OK;
    }
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcasecmp(digest, ok[i][0]) == 0 ||
            (strncasecmp(digest, "sha-", 4) == 0 && strcasecmp(digest + 4, ok[i][0] + 3) == 0)) {
            *name = ok[i][1];
            return TC_OK;
        }
    return tc_error(ctx, TC_ERR_INVALID_ARG,
                    "digest '%s' is not supported: use sha256, sha384 or "
                    "sha512",
                    digest);
}

tokencert_err tc_req_sign(tokencert_ctx *ctx, X509_REQ *req, EVP_PKEY *pkey, const char *digest)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    EVP_MD_CTX *md = NULL;
    const char *mdname = NULL;
    char why[160];

    ret = tc_digest_name(ctx, digest, &mdname);
    if (ret != TC_OK)
        goto out;
    /* EdDSA signs the message itself: no separate digest. */
    if (EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448"))
        mdname = NULL;
    md = EVP_MD_CTX_new();
    if (md == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestSignInit_ex(md, NULL, mdname, tc_libctx(ctx), NULL, pkey, NULL) <= 0) {
        ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED, "cannot sign the request with this key: %s",
                       ossl_reason(why, sizeof why));
        goto out;
    }
    if (X509_REQ_sign_ctx(req, md) <= 0) {
        /* The provider records the token's failure (CK_RV) in the context's detail. */
        const char *detail = tokencert_ctx_error(ctx);
        if (detail[0] == '\0')
            ret = tc_error(ctx, TC_ERR_PKCS11, "the token did not sign the request: %s",
                           ossl_reason(why, sizeof why));
        else
            ret = tc_error(ctx, TC_ERR_PKCS11, "the token did not sign the request: %s", detail);
        goto out;
    }
    ret = TC_OK;
out:
    EVP_MD_CTX_free(md);
    return ret;
}

tokencert_err tokencert_csr_check(tokencert_ctx *ctx, const tokencert_csr_params *p)
{
    tokencert_err ret;
    const char *mdname;
    X509_REQ *req = NULL;

    tc_return_val_if_fail(ctx != NULL && p != NULL, TC_ERR_INVALID_ARG);
    ret = tc_digest_name(ctx, p->digest, &mdname);
    if (ret == TC_OK)
        ret = tc_req_build(ctx, p, NULL, &req);
    tc_req_free(req);
    return ret;
}

tokencert_err tokencert_csr(tokencert_token *t, const char *key_uri, const tokencert_csr_params *p,
                            unsigned char **der, size_t *der_len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tokencert_ctx *ctx;
    X509_REQ *req = NULL;
    P11KitUri *uri = NULL;
    tc_key *key = NULL;
    EVP_PKEY *pkey = NULL;
    unsigned char *buf = NULL, *w;
    const char *mdname;
    int names_object = 0, len;

    tc_return_val_if_fail(t != NULL && p != NULL && der != NULL && der_len != NULL,
                          TC_ERR_INVALID_ARG);
    ctx = t->ctx;
    *der = NULL;
    *der_len = 0;
    /* Everything the caller wrote is checked before the token is asked for anything. */
    ret = tc_digest_name(ctx, p->digest, &mdname);
    if (ret != TC_OK)
        goto out;
    ret = tc_req_build(ctx, p, NULL, &req);
    if (ret != TC_OK)
        goto out;
    ret = tc_token_object_uri(t, key_uri, &uri, &names_object);
    if (ret != TC_OK)
        goto out;
    if (!names_object) {
        ret = tc_error(
            ctx, TC_ERR_INVALID_ARG,
            "the key URI names no key: add id= or object= (e.g. 'pkcs11:token=%s;id=%%01')",
            t->info.label);
        goto out;
    }
    ret = tc_key_open(ctx, &t->session, uri, &key);
    if (ret != TC_OK)
        goto out;
    if (!X509_REQ_set_pubkey(req, key->pub_pkey)) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot set the request's public key");
        goto out;
    }
    ret = tc_key_pkey(ctx, key, &pkey);
    if (ret != TC_OK)
        goto out;
    ret = tc_req_sign(ctx, req, pkey, p->digest);
    if (ret != TC_OK)
        goto out;
    /* A token that signed with another key than the one whose public half it showed must not
     * give a request a CA would issue for the wrong key. */
    if (X509_REQ_verify_ex(req, key->pub_pkey, tc_libctx(ctx), NULL) <= 0) {
        ERR_clear_error();
        ret = tc_error(ctx, TC_ERR_VERIFY,
                       "the token's signature on the request does not verify with the key's "
                       "public key");
        goto out;
    }
    len = i2d_X509_REQ(req, NULL);
    if (len <= 0) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot encode the request");
        goto out;
    }
    buf = malloc((size_t)len);
    if (buf == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    w = buf;
    if (i2d_X509_REQ(req, &w) != len) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot encode the request");
        goto out;
    }
    *der = buf;
    *der_len = (size_t)len;
    buf = NULL;
    ret = TC_OK;
out:
    free(buf);
    EVP_PKEY_free(pkey);
    tc_key_free(key);
    if (uri != NULL)
        p11_kit_uri_free(uri);
    tc_req_free(req);
    return ret;
}
