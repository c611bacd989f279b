/* sign.c — the private operations of a token key (signature, decryption) as one C_*Init plus one
 * call over the key's session, with the mechanism chosen from a neutral description so that the
 * provider above never names PKCS#11 mechanisms. */
#include "keys/keys.h"

#include <string.h>

static int hash_mech(tc_hash h, CK_MECHANISM_TYPE *mech, CK_RSA_PKCS_MGF_TYPE *mgf)
{
    static const struct {
        tc_hash h;
        CK_MECHANISM_TYPE mech;
        CK_RSA_PKCS_MGF_TYPE mgf;
    } t[] = {{TC_HASH_SHA1, CKM_SHA_1, CKG_MGF1_SHA1},
             {TC_HASH_SHA224, CKM_SHA224, CKG_MGF1_SHA224},
             {TC_HASH_SHA256, CKM_SHA256, CKG_MGF1_SHA256},
             {TC_HASH_SHA384, CKM_SHA384, CKG_MGF1_SHA384},
             {TC_HASH_SHA512, CKM_SHA512, CKG_MGF1_SHA512}};
    size_t i;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].h == h) {
            if (mech != NULL)
                *mech = t[i].mech;
            if (mgf != NULL)
                *mgf = t[i].mgf;
            return 1;
        }
    }
    return 0;
}

static tokencert_err session_usable(tokencert_ctx *ctx, const tc_key *k)
{
    if (k == NULL || k->session == NULL || k->session->slot == NULL)
        return tc_error(ctx, TC_ERR_INVALID_ARG, "the token key's session is closed");
    return TC_OK;
}

tokencert_err tc_key_sign(tokencert_ctx *ctx, tc_key *k, const tc_sign_alg *alg,
                          const unsigned char *in, size_t in_len, unsigned char *sig,
                          size_t *sig_len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_ULONG n = (CK_ULONG)*sig_len;
    tc_session *s;
    CK_RV rv;

    ret = session_usable(ctx, k);
    if (ret != TC_OK)
        goto out;
    s = k->session;
    switch (alg->mech) {
    case TC_SIGN_RSA_PKCS1:
        break;
    case TC_SIGN_RSA_PSS:
        if (!hash_mech(alg->hash, &pss.hashAlg, NULL) || !hash_mech(alg->mgf1, NULL, &pss.mgf)) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG, "PSS needs a SHA-1 or SHA-2 digest");
            goto out;
        }
        pss.sLen = (CK_ULONG)alg->salt_len;
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof pss;
        break;
    case TC_SIGN_ECDSA:
        mech.mechanism = CKM_ECDSA;
        break;
    case TC_SIGN_EDDSA:
        mech.mechanism = CKM_EDDSA;
        break;
    }
    rv = tc_p11_sign_init(s->slot->module, s->h, &mech, k->priv);
    if (rv != CKR_OK) {
        ret = tc_session_error(ctx, s, "C_SignInit", rv);
        goto out;
    }
    rv = tc_p11_sign(s->slot->module, s->h, (CK_BYTE *)in, (CK_ULONG)in_len, sig, &n);
    if (rv != CKR_OK) {
        ret = tc_session_error(ctx, s, "C_Sign", rv);
        goto out;
    }
    if (n > *sig_len) {
        ret = tc_error(ctx, TC_ERR_PKCS11, "the token returned a longer signature than asked");
        goto out;
    }
    *sig_len = n;
    ret = TC_OK;
out:
    return ret;
}

tokencert_err tc_key_decrypt(tokencert_ctx *ctx, tc_key *k, const tc_decrypt_alg *alg,
                             const unsigned char *in, size_t in_len, unsigned char *out,
                             size_t *out_len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_ULONG n = (CK_ULONG)*out_len;
    tc_session *s;
    CK_RV rv;

    ret = session_usable(ctx, k);
    if (ret != TC_OK)
        goto out;
    s = k->session;
    if (alg->mech == TC_DECRYPT_RSA_OAEP) {
        if (!hash_mech(alg->hash, &oaep.hashAlg, NULL) || !hash_mech(alg->mgf1, NULL, &oaep.mgf)) {
            ret = tc_error(ctx, TC_ERR_INVALID_ARG, "OAEP needs a SHA-1 or SHA-2 digest");
            goto out;
        }
        oaep.source = CKZ_DATA_SPECIFIED;
        oaep.pSourceData = alg->label_len ? (void *)alg->label : NULL;
        oaep.ulSourceDataLen = (CK_ULONG)alg->label_len;
        mech.mechanism = CKM_RSA_PKCS_OAEP;
        mech.pParameter = &oaep;
        mech.ulParameterLen = sizeof oaep;
    }
    rv = tc_p11_decrypt_init(s->slot->module, s->h, &mech, k->priv);
    if (rv != CKR_OK) {
        ret = tc_session_error(ctx, s, "C_DecryptInit", rv);
        goto out;
    }
    rv = tc_p11_decrypt(s->slot->module, s->h, (CK_BYTE *)in, (CK_ULONG)in_len, out, &n);
    if (rv != CKR_OK) {
        ret = tc_session_error(ctx, s, "C_Decrypt", rv);
        goto out;
    }
    if (n > *out_len) {
        ret = tc_error(ctx, TC_ERR_PKCS11, "the output buffer is too small");
        goto out;
    }
    *out_len = n;
    ret = TC_OK;
out:
    return ret;
}
