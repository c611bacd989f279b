/* signature.c — the provider's signatures with a token key: RSA PKCS#1 v1.5 and PSS, ECDSA and
 * EdDSA, the digest computed in software and the raw operation made on the token. */
#include "provider/local.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

/* OpenSSL 3.1's salt length "auto-digestmax", known here with 3.0's headers too: when signing,
 * the largest salt the key allows but at most the digest's length. */
#ifndef RSA_PSS_SALTLEN_AUTO_DIGEST_MAX
#define RSA_PSS_SALTLEN_AUTO_DIGEST_MAX -4
#endif
#ifndef OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO_DIGEST_MAX
#define OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO_DIGEST_MAX "auto-digestmax"
#endif

typedef struct {
    prov_ctx *pc;
    prov_key *key;
    EVP_MD *md; /* NULL: none set (raw input for plain sign) */
    EVP_MD_CTX *mdctx;
    int digest_mode; /* digest_sign_* in use */
    int pad;         /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen;     /* a length, or RSA_PSS_SALTLEN_DIGEST/_MAX/_AUTO/_AUTO_DIGEST_MAX */
    EVP_MD *mgf1;    /* NULL: the message digest */
} sig_ctx;

static void *sig_newctx(void *provctx, const char *propq)
{
    sig_ctx *c = calloc(1, sizeof *c);

    (void)propq;
    if (c != NULL) {
        c->pc = provctx;
        c->pad = RSA_PKCS1_PADDING;
        c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    }
    return c;
}

static void sig_freectx(void *vc)
{
    sig_ctx *c = vc;
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1);
    free(c);
}

static void *sig_dupctx(void *vc)
{
    sig_ctx *c = vc, *d;

    if (c == NULL || (d = calloc(1, sizeof *d)) == NULL)
        return NULL;
    *d = *c;
    d->mdctx = NULL;
    if ((d->md != NULL && !EVP_MD_up_ref(d->md)))
        d->md = NULL;
    if ((d->mgf1 != NULL && !EVP_MD_up_ref(d->mgf1)))
        d->mgf1 = NULL;
    if (c->mdctx != NULL) {
        d->mdctx = EVP_MD_CTX_new();
        if (d->mdctx == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx)) {
            sig_freectx(d);
            return NULL;
        }
    }
    return d;
}

static int is_rsa(const sig_ctx *c)
{
    return strcmp(c->key->alg, "RSA") == 0;
}
static int is_ed(const sig_ctx *c)
{
    return strcmp(c->key->alg, "ED25519") == 0;
}

static int set_md(sig_ctx *c, EVP_MD **slot, const char *name, const char *props)
{
    EVP_MD *md;

    if (is_ed(c)) {
        tc_provider_raise(c->pc, R_BAD_PARAM, __func__, "EdDSA takes no separate digest");
        return 0;
    }
    md = EVP_MD_fetch(c->pc->libctx, name, props);
    if (md == NULL) {
        tc_provider_raise(c->pc, R_BAD_PARAM, __func__, "unknown digest '%s'", name);
        return 0;
    }
    if (c->digest_mode && slot == &c->md && c->mdctx != NULL) {
        tc_provider_raise(c->pc, R_BAD_PARAM, __func__, "the digest cannot change while signing");
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(*slot);
    *slot = md;
    return 1;
}

/* A PSS salt length as OpenSSL's string parameter gives it: one of its names, or a whole decimal
 * number of bytes from 0 to INT_MAX (no sign, no blanks). 0 when s is neither: atoi would turn
 * a typing error into a salt of 0 bytes without a word. */
static int parse_saltlen(const char *s, int *out)
{
    char *end = NULL;
    long v;

    if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
        *out = RSA_PSS_SALTLEN_DIGEST;
        return 1;
    }
    if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0) {
        *out = RSA_PSS_SALTLEN_MAX;
        return 1;
    }
    if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0) {
        *out = RSA_PSS_SALTLEN_AUTO;
        return 1;
    }
    if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO_DIGEST_MAX) == 0) {
        *out = RSA_PSS_SALTLEN_AUTO_DIGEST_MAX;
        return 1;
    }
    if (s[0] < '0' || s[0] > '9')
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT_MAX)
        return 0;
    *out = (int)v;
    return 1;
}

static int sig_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
    sig_ctx *c = vc;
    const OSSL_PARAM *p;
    const char *props = NULL;

    if (c == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PROPERTIES);
    if (p != NULL && !OSSL_PARAM_get_utf8_string_ptr(p, &props))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL) {
        const char *name = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(c, &c->md, name, props))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        int pad = 0;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
                pad = RSA_PKCS1_PADDING;
            else if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
                pad = RSA_PKCS1_PSS_PADDING;
        } else if (!OSSL_PARAM_get_int(p, &pad)) {
            return 0;
        }
        if (!is_rsa(c) || (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING)) {
            tc_provider_raise(c->pc, R_BAD_PARAM, __func__,
                              "only PKCS#1 v1.5 and PSS padding sign with an RSA token key");
            return 0;
        }
        c->pad = pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL) {
        int len = 0;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            if (s == NULL)
                return 0;
            if (!parse_saltlen(s, &len)) {
                tc_provider_raise(c->pc, R_BAD_PARAM, __func__,
                                  "bad PSS salt length '%.64s': a number of bytes from 0 to %d, "
                                  "or digest, max, auto or auto-digestmax",
                                  s, INT_MAX);
                return 0;
            }
        } else if (!OSSL_PARAM_get_int(p, &len)) {
            return 0;
        }
        if (len < RSA_PSS_SALTLEN_AUTO_DIGEST_MAX) {
            tc_provider_raise(c->pc, R_BAD_PARAM, __func__, "bad PSS salt length %d", len);
            return 0;
        }
        c->saltlen = len;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const char *name = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(c, &c->mgf1, name, NULL))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM sig_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END};

static const OSSL_PARAM *sig_settable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return sig_settable;
}

static int sig_init(void *vc, void *provkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vc;

    if (c == NULL || !tc_provider_is_token_key(provkey))
        return 0;
    c->key = provkey;
    c->digest_mode = 0;
    c->pad = RSA_PKCS1_PADDING;
    c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1);
    c->mdctx = NULL;
    c->md = c->mgf1 = NULL;
    return sig_set_ctx_params(c, params);
}

static int sig_digest_init(void *vc, const char *mdname, void *provkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vc;

    if (!sig_init(vc, provkey, NULL))
        return 0;
    c->digest_mode = 1;
    if (mdname != NULL && mdname[0] != '\0' && !set_md(c, &c->md, mdname, NULL))
        return 0;
    if (!sig_set_ctx_params(c, params))
        return 0;
    if (is_ed(c))
        return 1;
    if (c->md == NULL && !set_md(c, &c->md, "SHA256", NULL))
        return 0;
    c->mdctx = EVP_MD_CTX_new();
    if (c->mdctx == NULL || !EVP_DigestInit_ex2(c->mdctx, c->md, NULL))
        return 0;
    return 1;
}

static int sig_digest_update(void *vc, const unsigned char *data, size_t len)
{
    sig_ctx *c = vc;

    if (c == NULL || c->mdctx == NULL) {
        tc_provider_raise(c != NULL ? c->pc : NULL, R_UNSUPPORTED, __func__,
                          "EdDSA signs a whole message at once");
        return 0;
    }
    return EVP_DigestUpdate(c->mdctx, data, len);
}

/* DigestInfo prefixes (RFC 8017, section 9.2, note 1). */
static const unsigned char di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                        0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const unsigned char di_sha224[] = {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x04, 0x05, 0x00, 0x04, 0x1c};
static const unsigned char di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x02, 0x05, 0x00, 0x04, 0x30};
static const unsigned char di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x03, 0x05, 0x00, 0x04, 0x40};

static int digest_info_prefix(const EVP_MD *md, const unsigned char **p, size_t *n)
{
    tc_hash h;

    if (!tc_provider_md_hash(md, &h))
        return 0;
    switch (h) {
    case TC_HASH_SHA1:
        *p = di_sha1, *n = sizeof di_sha1;
        break;
    case TC_HASH_SHA224:
        *p = di_sha224, *n = sizeof di_sha224;
        break;
    case TC_HASH_SHA256:
        *p = di_sha256, *n = sizeof di_sha256;
        break;
    case TC_HASH_SHA384:
        *p = di_sha384, *n = sizeof di_sha384;
        break;
    default:
        *p = di_sha512, *n = sizeof di_sha512;
        break;
    }
    return 1;
}

/* One signature on the token over the key's session. */
static int token_sign(prov_key *k, const tc_sign_alg *alg, const unsigned char *in, size_t inlen,
                      unsigned char *out, size_t *outlen)
{
    if (tc_key_sign(k->pc->tc, k->key, alg, in, inlen, out, outlen) != TC_OK) {
        tc_provider_token_failed(k, "signature");
        return 0;
    }
    return 1;
}

static size_t sig_max_size(const sig_ctx *c)
{
    int n = EVP_PKEY_get_size(c->key->pub);
    return n > 0 ? (size_t)n : 0;
}

/* The PSS salt length that OpenSSL's settings stand for with this key and digest. */
static int pss_saltlen(const sig_ctx *c, const EVP_MD *md)
{
    int hlen = EVP_MD_get_size(md);
    int emlen = (EVP_PKEY_get_bits(c->key->pub) - 1 + 7) / 8;

    if (c->saltlen == RSA_PSS_SALTLEN_DIGEST)
        return hlen;
    if (c->saltlen == RSA_PSS_SALTLEN_MAX || c->saltlen == RSA_PSS_SALTLEN_AUTO)
        return emlen - hlen - 2;
    if (c->saltlen == RSA_PSS_SALTLEN_AUTO_DIGEST_MAX)
        return emlen - hlen - 2 < hlen ? emlen - hlen - 2 : hlen;
    return c->saltlen;
}

/* The digest a pre-hashed input of tbslen bytes was made with, when none was set. */
static const EVP_MD *md_for(sig_ctx *c, size_t tbslen)
{
    const char *name = NULL;

    if (c->md != NULL)
        return c->md;
    switch (tbslen) {
    case 20:
        name = "SHA1";
        break;
    case 28:
        name = "SHA224";
        break;
    case 32:
        name = "SHA256";
        break;
    case 48:
        name = "SHA384";
        break;
    case 64:
        name = "SHA512";
        break;
    }
    if (name == NULL || !set_md(c, &c->md, name, NULL))
        return NULL;
    return c->md;
}

static int sign_rsa(sig_ctx *c, unsigned char *sig, size_t *siglen, const unsigned char *tbs,
                    size_t tbslen)
{
    unsigned char buf[EVP_MAX_MD_SIZE + 32];
    tc_sign_alg alg = {TC_SIGN_RSA_PKCS1, TC_HASH_NONE, TC_HASH_NONE, 0};
    const unsigned char *in = tbs;
    size_t inlen = tbslen;

    if (c->pad == RSA_PKCS1_PSS_PADDING) {
        const EVP_MD *md = md_for(c, tbslen);
        const EVP_MD *mgf = c->mgf1 != NULL ? c->mgf1 : md;
        int salt;
        if (md == NULL || (size_t)EVP_MD_get_size(md) != tbslen ||
            !tc_provider_md_hash(md, &alg.hash) || !tc_provider_md_hash(mgf, &alg.mgf1)) {
            tc_provider_raise(c->pc, R_BAD_PARAM, __func__,
                              "PSS needs a SHA-1 or SHA-2 digest matching the input length");
            return 0;
        }
        salt = pss_saltlen(c, md);
        if (salt < 0) {
            tc_provider_raise(c->pc, R_BAD_PARAM, __func__, "bad PSS salt length %d", salt);
            return 0;
        }
        alg.mech = TC_SIGN_RSA_PSS;
        alg.salt_len = (size_t)salt;
    } else if (c->md != NULL) {
        const unsigned char *prefix;
        size_t plen;
        if (!digest_info_prefix(c->md, &prefix, &plen) ||
            tbslen != (size_t)EVP_MD_get_size(c->md)) {
            tc_provider_raise(
                c->pc, R_BAD_PARAM, __func__,
                "PKCS#1 v1.5 needs a SHA-1 or SHA-2 digest matching the input length");
            return 0;
        }
        memcpy(buf, prefix, plen);
        memcpy(buf + plen, tbs, tbslen);
        in = buf;
        inlen = plen + tbslen;
    }
    /* Without a digest the input is signed as given (a DigestInfo made by the caller). */
    return token_sign(c->key, &alg, in, inlen, sig, siglen);
}

static int sign_ecdsa(sig_ctx *c, unsigned char *sig, size_t *siglen, size_t sigsize,
                      const unsigned char *tbs, size_t tbslen)
{
    unsigned char rs[2 * 66 + 2];
    size_t rslen = sizeof rs, half;
    size_t order_bytes = ((size_t)EVP_PKEY_get_bits(c->key->pub) + 7) / 8;
    tc_sign_alg alg = {TC_SIGN_ECDSA, TC_HASH_NONE, TC_HASH_NONE, 0};
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *p = sig;
    int len, ok = 0;

    /* ECDSA uses the leftmost bits of a hash longer than the order; some tokens refuse such
     * input instead of truncating it. */
    if (tbslen > order_bytes)
        tbslen = order_bytes;
    if (!token_sign(c->key, &alg, tbs, tbslen, rs, &rslen))
        return 0;
    half = rslen / 2;
    if (rslen == 0 || rslen % 2 != 0) {
        tc_provider_raise(c->pc, R_TOKEN, __func__,
                          "the token returned a malformed ECDSA signature");
        return 0;
    }
    es = ECDSA_SIG_new();
    r = BN_bin2bn(rs, (int)half, NULL);
    s = BN_bin2bn(rs + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s))
        goto out;
    r = s = NULL;
    len = i2d_ECDSA_SIG(es, NULL);
    if (len <= 0 || (size_t)len > sigsize) {
        tc_provider_raise(c->pc, R_BUFFER, __func__, "the signature buffer is too small");
        goto out;
    }
    len = i2d_ECDSA_SIG(es, &p);
    *siglen = (size_t)len;
    ok = 1;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ok;
}

static int sig_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vc;
    size_t max;

    if (c == NULL || !tc_provider_is_token_key(c->key))
        return 0;
    max = sig_max_size(c);
    if (sig == NULL) {
        *siglen = max;
        return 1;
    }
    if (strcmp(c->key->alg, "EC") == 0)
        return sign_ecdsa(c, sig, siglen, sigsize, tbs, tbslen);
    if (sigsize < max) {
        tc_provider_raise(c->pc, R_BUFFER, __func__, "the signature buffer is too small");
        return 0;
    }
    *siglen = sigsize > SIG_MAX ? SIG_MAX : sigsize;
    if (is_rsa(c))
        return sign_rsa(c, sig, siglen, tbs, tbslen);
    {
        tc_sign_alg alg = {TC_SIGN_EDDSA, TC_HASH_NONE, TC_HASH_NONE, 0};
        return token_sign(c->key, &alg, tbs, tbslen, sig, siglen);
    }
}

static int sig_digest_final(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sig_ctx *c = vc;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;

    if (c == NULL || c->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = sig_max_size(c);
        return 1;
    }
    if (c->mdctx == NULL || !EVP_DigestFinal_ex(c->mdctx, h, &hlen))
        return 0;
    return sig_sign(c, sig, siglen, sigsize, h, hlen);
}

static int sig_digest_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vc;

    if (c == NULL || c->key == NULL)
        return 0;
    if (is_ed(c))
        return sig_sign(c, sig, siglen, sigsize, tbs, tbslen);
    if (sig == NULL) {
        *siglen = sig_max_size(c);
        return 1;
    }
    return sig_digest_update(c, tbs, tbslen) && sig_digest_final(c, sig, siglen, sigsize);
}

/* The signature's AlgorithmIdentifier, as the default provider would write it for a verifier
 * set up the same way. */
static int sig_algid(sig_ctx *c, OSSL_PARAM *p)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char aid[256];
    OSSL_PARAM q[2];
    int ok = 0;
    const char *mdname = c->md != NULL ? EVP_MD_get0_name(c->md) : NULL;

    if (m == NULL || EVP_DigestVerifyInit_ex(m, &pctx, mdname, c->pc->libctx, "provider=default",
                                             c->key->pub, NULL) <= 0)
        goto out;
    if (is_rsa(c)) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, c->pad) <= 0)
            goto out;
        if (c->pad == RSA_PKCS1_PSS_PADDING && c->md != NULL &&
            (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_saltlen(c, c->md)) <= 0 ||
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, c->mgf1 != NULL ? c->mgf1 : c->md) <= 0))
            goto out;
    }
    q[0] = OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof aid);
    q[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_CTX_get_params(pctx, q) <= 0 || q[0].return_size == 0 ||
        q[0].return_size > sizeof aid)
        goto out;
    ok = OSSL_PARAM_set_octet_string(p, aid, q[0].return_size);
out:
    EVP_MD_CTX_free(m);
    return ok;
}

static int sig_get_ctx_params(void *vc, OSSL_PARAM params[])
{
    sig_ctx *c = vc;
    OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL && (c->key == NULL || !sig_algid(c, p)))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, c->md != NULL ? EVP_MD_get0_name(c->md) : ""))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_set_utf8_string(p, c->pad == RSA_PKCS1_PSS_PADDING
                                                   ? OSSL_PKEY_RSA_PAD_MODE_PSS
                                                   : OSSL_PKEY_RSA_PAD_MODE_PKCSV15))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->pad)) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            char num[16];
            const char *s = num;
            if (c->saltlen == RSA_PSS_SALTLEN_DIGEST)
                s = OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST;
            else if (c->saltlen == RSA_PSS_SALTLEN_MAX)
                s = OSSL_PKEY_RSA_PSS_SALT_LEN_MAX;
            else if (c->saltlen == RSA_PSS_SALTLEN_AUTO)
                s = OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO;
            else if (c->saltlen == RSA_PSS_SALTLEN_AUTO_DIGEST_MAX)
                s = OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO_DIGEST_MAX;
            else
                snprintf(num, sizeof num, "%d", c->saltlen);
            if (!OSSL_PARAM_set_utf8_string(p, s))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->saltlen)) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const EVP_MD *mgf = c->mgf1 != NULL ? c->mgf1 : c->md;
        if (!OSSL_PARAM_set_utf8_string(p, mgf != NULL ? EVP_MD_get0_name(mgf) : ""))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM sig_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END};

static const OSSL_PARAM *sig_gettable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return sig_gettable;
}

const OSSL_DISPATCH tc_provider_signature[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable_ctx_params},
    {0, NULL}};
