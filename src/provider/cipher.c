/* cipher.c — the provider's asymmetric cipher: RSA decryption (PKCS#1 v1.5 and OAEP) with a
 * token key. */
#include "provider/local.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

typedef struct {
    prov_ctx *pc;
    prov_key *key;
    int pad; /* RSA_PKCS1_PADDING or RSA_PKCS1_OAEP_PADDING */
    EVP_MD *oaep_md, *mgf1;
    unsigned char *label;
    size_t label_len;
} dec_ctx;

static void *dec_newctx(void *provctx)
{
    dec_ctx *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->pc = provctx;
        c->pad = RSA_PKCS1_PADDING;
    }
    return c;
}

static void dec_freectx(void *vc)
{
    dec_ctx *c = vc;
    if (c == NULL)
        return;
    EVP_MD_free(c->oaep_md);
    EVP_MD_free(c->mgf1);
    free(c->label);
    free(c);
}

static int dec_set_md(dec_ctx *c, EVP_MD **slot, const OSSL_PARAM *p)
{
    const char *name = NULL;
    EVP_MD *md;
    tc_hash h;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
        return 0;
    md = EVP_MD_fetch(c->pc->libctx, name, NULL);
    if (md == NULL || !tc_provider_md_hash(md, &h)) {
        tc_provider_raise(c->pc, R_BAD_PARAM, __func__,
                          "OAEP needs a SHA-1 or SHA-2 digest, not '%s'", name);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(*slot);
    *slot = md;
    return 1;
}

static int dec_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
    dec_ctx *c = vc;
    const OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        int pad = 0;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
                pad = RSA_PKCS1_PADDING;
            else if (s != NULL && strcmp(s, OSSL_PKEY_RSA_PAD_MODE_OAEP) == 0)
                pad = RSA_PKCS1_OAEP_PADDING;
        } else if (!OSSL_PARAM_get_int(p, &pad)) {
            return 0;
        }
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_OAEP_PADDING) {
            tc_provider_raise(c->pc, R_BAD_PARAM, __func__,
                              "only PKCS#1 v1.5 and OAEP padding decrypt with a token key");
            return 0;
        }
        c->pad = pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL && !dec_set_md(c, &c->oaep_md, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL && !dec_set_md(c, &c->mgf1, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL) {
        void *label = NULL;
        size_t len = 0;
        if (!OSSL_PARAM_get_octet_string(p, &label, 0, &len))
            return 0;
        free(c->label);
        c->label = malloc(len ? len : 1);
        if (c->label == NULL) {
            OPENSSL_free(label);
            return 0;
        }
        memcpy(c->label, label, len);
        c->label_len = len;
        OPENSSL_free(label);
    }
    return 1;
}

static const OSSL_PARAM dec_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0), OSSL_PARAM_END};

static const OSSL_PARAM *dec_settable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return dec_settable;
}

static int dec_get_ctx_params(void *vc, OSSL_PARAM params[])
{
    dec_ctx *c = vc;
    OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_set_utf8_string(p, c->pad == RSA_PKCS1_OAEP_PADDING
                                                   ? OSSL_PKEY_RSA_PAD_MODE_OAEP
                                                   : OSSL_PKEY_RSA_PAD_MODE_PKCSV15))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->pad)) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, c->oaep_md != NULL ? EVP_MD_get0_name(c->oaep_md) : "SHA1"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const EVP_MD *m = c->mgf1 != NULL ? c->mgf1 : c->oaep_md;
        if (!OSSL_PARAM_set_utf8_string(p, m != NULL ? EVP_MD_get0_name(m) : "SHA1"))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM dec_gettable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0), OSSL_PARAM_END};

static const OSSL_PARAM *dec_gettable_ctx_params(void *vc, void *provctx)
{
    (void)vc;
    (void)provctx;
    return dec_gettable;
}

static int dec_init(void *vc, void *provkey, const OSSL_PARAM params[])
{
    dec_ctx *c = vc;

    if (c == NULL || !tc_provider_is_token_key(provkey))
        return 0;
    c->key = provkey;
    return dec_set_ctx_params(c, params);
}

static int dec_decrypt(void *vc, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    dec_ctx *c = vc;
    unsigned char buf[SIG_MAX];
    size_t n = sizeof buf;
    tc_decrypt_alg alg = {TC_DECRYPT_RSA_PKCS1, TC_HASH_NONE, TC_HASH_NONE, NULL, 0};
    size_t max;
    int ok = 0;

    if (c == NULL || !tc_provider_is_token_key(c->key))
        return 0;
    max = (size_t)EVP_PKEY_get_size(c->key->pub);
    if (out == NULL) {
        *outlen = max;
        return 1;
    }
    if (c->pad == RSA_PKCS1_OAEP_PADDING) {
        EVP_MD *md = c->oaep_md;
        EVP_MD *sha1 = NULL;
        if (md == NULL)
            md = sha1 = EVP_MD_fetch(c->pc->libctx, "SHA1", NULL);
        if (!tc_provider_md_hash(md, &alg.hash) ||
            !tc_provider_md_hash(c->mgf1 != NULL ? c->mgf1 : md, &alg.mgf1)) {
            EVP_MD_free(sha1);
            return 0;
        }
        EVP_MD_free(sha1);
        alg.mech = TC_DECRYPT_RSA_OAEP;
        alg.label = c->label;
        alg.label_len = c->label_len;
    }
    if (tc_key_decrypt(c->pc->tc, c->key->key, &alg, in, inlen, buf, &n) != TC_OK) {
        tc_provider_token_failed(c->key, "decryption");
        goto out;
    }
    if (n > outsize) {
        tc_provider_raise(c->pc, R_BUFFER, __func__, "the output buffer is too small");
        goto out;
    }
    memcpy(out, buf, n);
    *outlen = n;
    ok = 1;
out:
    /* The plaintext may be a secret (a key transported to us). */
    tc_memzero(buf, sizeof buf);
    return ok;
}

const OSSL_DISPATCH tc_provider_asym_cipher[] = {
    {OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))dec_newctx},
    {OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))dec_freectx},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))dec_init},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))dec_decrypt},
    {OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))dec_get_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))dec_gettable_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))dec_set_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))dec_settable_ctx_params},
    {0, NULL}};
