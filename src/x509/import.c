/* import.c — certificates, chains and PKCS#12 files written onto the token: every input parsed and
 * every check made (fingerprint, key match, chain, dates) before the first object is written, and
 * whatever one call wrote destroyed again when a later write fails. The objects themselves are
 * written by the keys layer (tc_cert_store, tc_key_write). */
#include "x509/x509.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#define MAX_TOKEN_KEYS 100000
#define KEY_ATTR_MAX   4096
#define LABEL_MAX      1024
/* The most password iterations a PKCS#12 file may ask for: about 3 s of key derivation here.
 * Real files use 1 to a few hundred thousand (OpenSSL 2048, Windows 2000 to 600000). */
#define TC_P12_ITER_MAX 10000000

/* A certificate met in the inputs (each one once, however often it occurs). */
typedef struct {
    X509 *x;
    const char *src; /* the input's name, for messages */
    int authority;
    char *subject;
    int p12_key;   /* index into keys when this is a PKCS#12's certificate for its key, else -1 */
    int token_key; /* index into tkeys of the key it belongs to, else -1 */
    int in_key;    /* index into keys of the imported key it belongs to, else -1 */
    unsigned char *id; /* its CKA_ID, as long as the key's (any length a token allows) */
    size_t id_len;
    char *label;
    int existed;
} in_cert;

/* A private key from a PKCS#12 file. */
typedef struct {
    EVP_PKEY *pkey;
    const char *src;
    char *friendly; /* friendlyName of its certificate, if any */
    unsigned char id[20];
    int existing; /* index into tkeys when the token already holds it, else -1 */
    char *label;
    int cert; /* index into certs of its certificate, else -1 */
} in_key;

/* A key on the token: the private and public objects that share a CKA_ID. */
typedef struct {
    unsigned char *id;
    size_t id_len;
    char *label;
    tc_key_type type;
    tc_object_ref priv, pub;
    EVP_PKEY *pubkey;
    int pub_tried;
} tok_key;

typedef struct {
    tokencert_ctx *ctx;
    tokencert_token *t;
    const tokencert_import_opts *opts;
    in_cert *certs;
    size_t n_certs, cap_certs;
    in_key *keys;
    size_t n_keys, cap_keys;
    tok_key *tkeys;
    size_t n_tkeys;
    int tkeys_loaded;       /* every key on the token is in tkeys, not only those found by id */
    tokencert_err load_err; /* reading the token's keys failed */
    tc_object_ref *created;
    size_t n_created, cap_created;
} import_state;

/* ---- small helpers ------------------------------------------------------------------------ */

/* The subject's (last) CN as UTF-8, or NULL. */
static char *common_name(X509 *x)
{
    const X509_NAME *n = X509_get_subject_name(x);
    int i = -1, last = -1;
    unsigned char *utf8 = NULL;
    char *out = NULL;
    int len;

    while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
        last = i;
    if (last < 0)
        return NULL;
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last)));
    if (len >= 0)
        out = tc_printable(utf8, (size_t)len, LABEL_MAX);
    OPENSSL_free(utf8);
    return out;
}

static char *openssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256];

    if (e == 0)
        return tc_strdup("no detail from OpenSSL");
    ERR_error_string_n(e, buf, sizeof buf);
    return tc_strdup(buf);
}

/* "AB:CD:..." fingerprint of x with md into out (3 * 64 bytes). */
static int fingerprint(X509 *x, const EVP_MD *md, unsigned char *raw, unsigned int *raw_len,
                       char *out)
{
    if (!X509_digest(x, md, raw, raw_len))
        return 0;
    tc_hex_upper(raw, *raw_len, ':', out);
    return 1;
}

/* A certificate date as a time_t; 0 when it does not convert (malformed, or out of range). */
static int asn1_time_get(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    *out = timegm(&tm);
    /* timegm answers -1 on overflow too; the one real second it stands for is no certificate's. */
    return *out != (time_t)-1;
}

/* Compares two public keys by their SubjectPublicKeyInfo, then through OpenSSL. */
static int pubkey_equal(EVP_PKEY *a, EVP_PKEY *b)
{
    unsigned char *da = NULL, *db = NULL;
    int la, lb, eq = 0;

    if (a == NULL || b == NULL)
        return 0;
    la = i2d_PUBKEY(a, &da);
    lb = i2d_PUBKEY(b, &db);
    if (la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0)
        eq = 1;
    OPENSSL_free(da);
    OPENSSL_free(db);
    if (!eq)
        eq = EVP_PKEY_eq(a, b) == 1;
    ERR_clear_error();
    return eq;
}

/* ---- reading the inputs --------------------------------------------------------------------- */

static tokencert_err add_cert(import_state *st, X509 *x, const char *src, int p12_key, int *index)
{
    size_t i;
    in_cert *c;

    for (i = 0; i < st->n_certs; i++) {
        if (X509_cmp(st->certs[i].x, x) == 0) {
            if (p12_key >= 0)
                st->certs[i].p12_key = p12_key;
            X509_free(x);
            if (index != NULL)
                *index = (int)i;
            return TC_OK;
        }
    }
    if (st->n_certs == st->cap_certs) {
        size_t ncap = st->cap_certs ? st->cap_certs * 2 : 8;
        in_cert *nv = realloc(st->certs, ncap * sizeof *nv);
        if (nv == NULL) {
            X509_free(x);
            return TC_ERR_NOMEM;
        }
        st->certs = nv;
        st->cap_certs = ncap;
    }
    c = &st->certs[st->n_certs];
    memset(c, 0, sizeof *c);
    c->x = x;
    c->src = src;
    /* basicConstraints cA, or a v1 self-signed root: an authority, stored without a key. */
    c->authority = X509_check_ca(x) != 0;
    c->p12_key = p12_key;
    c->token_key = -1;
    c->in_key = -1;
    c->subject = tc_name_string(X509_get_subject_name(x));
    if (c->subject == NULL)
        return TC_ERR_NOMEM; /* x is owned by the array now */
    if (index != NULL)
        *index = (int)st->n_certs;
    st->n_certs++;
    return TC_OK;
}

static tokencert_err add_p7_certs(import_state *st, PKCS7 *p7, const char *src)
{
    STACK_OF(X509) *sk = NULL;
    tokencert_err ret;
    int i;

    if (PKCS7_type_is_signed(p7) && p7->d.sign != NULL)
        sk = p7->d.sign->cert;
    else if (PKCS7_type_is_signedAndEnveloped(p7) && p7->d.signed_and_enveloped != NULL)
        sk = p7->d.signed_and_enveloped->cert;
    if (sk == NULL || sk_X509_num(sk) == 0)
        return tc_error(st->ctx, TC_ERR_BAD_DATA, "%s: the PKCS#7 file holds no certificates", src);
    for (i = 0; i < sk_X509_num(sk); i++) {
        X509 *x = X509_dup(sk_X509_value(sk, i));
        if (x == NULL)
            return TC_ERR_NOMEM;
        ret = add_cert(st, x, src, -1, NULL);
        if (ret != TC_OK)
            return ret;
    }
    return TC_OK;
}

static tokencert_err parse_pem(import_state *st, const tokencert_import_input *in)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    BIO *bio = BIO_new_mem_buf(in->data, (int)in->len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    int blocks = 0;

    if (bio == NULL)
        return TC_ERR_NOMEM;
    ERR_clear_error();
    for (;;) {
        const unsigned char *p;
        if (!PEM_read_bio(bio, &name, &header, &data, &len)) {
            unsigned long e = ERR_peek_last_error();
            if (blocks > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break;
            }
            ret = tc_error(st->ctx, TC_ERR_BAD_DATA,
                           "%s: not a certificate, PKCS#7 or PKCS#12 file (a PEM block is "
                           "damaged)",
                           in->name);
            goto out;
        }
        p = data;
        if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0 ||
            strcmp(name, "TRUSTED CERTIFICATE") == 0) {
            X509 *x = strcmp(name, "TRUSTED CERTIFICATE") == 0 ? d2i_X509_AUX(NULL, &p, len)
                                                               : d2i_X509(NULL, &p, len);
            if (x == NULL || p != data + len) {
                X509_free(x);
                ret = tc_error(st->ctx, TC_ERR_BAD_DATA,
                               "%s: PEM block %d is not a valid certificate", in->name, blocks + 1);
                goto out;
            }
            ret = add_cert(st, x, in->name, -1, NULL);
            if (ret != TC_OK)
                goto out;
        } else if (strcmp(name, "PKCS7") == 0 || strcmp(name, "CERTIFICATE CHAIN") == 0) {
            PKCS7 *p7 = d2i_PKCS7(NULL, &p, len);
            if (p7 == NULL || p != data + len) {
                PKCS7_free(p7);
                ret = tc_error(st->ctx, TC_ERR_BAD_DATA, "%s: PEM block %d is not valid PKCS#7",
                               in->name, blocks + 1);
                goto out;
            }
            ret = add_p7_certs(st, p7, in->name);
            PKCS7_free(p7);
            if (ret != TC_OK)
                goto out;
        } else {
            /* The type is the file's: escaped, as it may hold escape sequences. */
            char *shown = tc_printable((const unsigned char *)name, strlen(name), 40);
            if (shown == NULL) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
            ret = tc_error(st->ctx, TC_ERR_BAD_DATA,
                           "%s: holds a '%s' PEM block: only certificates and PKCS#7 are read "
                           "from PEM (private keys come in PKCS#12 files)",
                           in->name, shown);
            free(shown);
            goto out;
        }
        blocks++;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    ret = TC_OK;
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return ret;
}

int tokencert_data_is_pkcs12(const unsigned char *data, size_t len)
{
    const unsigned char *p = data;
    PKCS12 *p12;
    int is;

    if (data == NULL || len == 0 || len > LONG_MAX)
        return 0;
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    is = p12 != NULL && p == data + len;
    PKCS12_free(p12);
    ERR_clear_error();
    return is;
}

/* The iteration count a password-based algorithm asks for (PKCS#12 PBE, or PBES2 with PBKDF2);
 * 0 when the algorithm is another or has none to read (OpenSSL judges those). */
static int64_t pbe_iterations(const X509_ALGOR *alg)
{
    int64_t iter = 0;

    if (alg == NULL || alg->parameter == NULL)
        return 0;
    if (OBJ_obj2nid(alg->algorithm) == NID_pbes2) {
        PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
        if (p2 != NULL && p2->keyfunc != NULL &&
            OBJ_obj2nid(p2->keyfunc->algorithm) == NID_id_pbkdf2) {
            PBKDF2PARAM *kdf =
                ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), p2->keyfunc->parameter);
            if (kdf != NULL && kdf->iter != NULL && !ASN1_INTEGER_get_int64(&iter, kdf->iter))
                iter = INT64_MAX;
            PBKDF2PARAM_free(kdf);
        }
        PBE2PARAM_free(p2);
    } else {
        PBEPARAM *pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        if (pbe != NULL && pbe->iter != NULL && !ASN1_INTEGER_get_int64(&iter, pbe->iter))
            iter = INT64_MAX;
        PBEPARAM_free(pbe);
    }
    ERR_clear_error();
    return iter;
}

static tokencert_err too_many_iterations(import_state *st, const tokencert_import_input *in,
                                         const char *what, int64_t iter)
{
    if (iter <= TC_P12_ITER_MAX)
        return TC_OK;
    return tc_error(st->ctx, TC_ERR_BAD_DATA,
                    "%s: the PKCS#12 %s asks for %lld password iterations; at most %d are "
                    "accepted",
                    in->name, what, (long long)iter, TC_P12_ITER_MAX);
}

static tokencert_err check_bags(import_state *st, const tokencert_import_input *in,
                                const STACK_OF(PKCS12_SAFEBAG) * bags, int depth)
{
    tokencert_err ret = TC_OK;
    int i;

    for (i = 0; ret == TC_OK && i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        if (PKCS12_SAFEBAG_get_nid(bag) == NID_pkcs8ShroudedKeyBag) {
            const X509_ALGOR *alg = NULL;
            const X509_SIG *sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
            if (sig != NULL)
                X509_SIG_get0(sig, &alg, NULL);
            ret = too_many_iterations(st, in, "private key", pbe_iterations(alg));
        } else if (PKCS12_SAFEBAG_get_nid(bag) == NID_safeContentsBag && depth < 8) {
            ret = check_bags(st, in, PKCS12_SAFEBAG_get0_safes(bag), depth + 1);
        }
    }
    return ret;
}

/* Every iteration count in the file is checked against TC_P12_ITER_MAX before the key derivation
 * that would use it: a count of 10^8 kept import busy for half a minute before "wrong password".
 * The MAC's and the encrypted parts' are read as they are; the private keys' are inside the
 * encrypted parts, so with decrypt they are decrypted first (under counts already checked). */
static tokencert_err check_pkcs12_iterations(import_state *st, const tokencert_import_input *in,
                                             const PKCS12 *p12, const char *pass, int decrypt)
{
    tokencert_err ret = TC_OK;
    STACK_OF(PKCS7) *safes = NULL;
    int i;

    if (!decrypt && PKCS12_mac_present(p12)) {
        const ASN1_INTEGER *iter = NULL;
        int64_t n = 1;
        PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
        if (iter != NULL && !ASN1_INTEGER_get_int64(&n, iter))
            n = INT64_MAX;
        ret = too_many_iterations(st, in, "MAC", n);
        if (ret != TC_OK)
            return ret;
    }
    safes = PKCS12_unpack_authsafes(p12);
    for (i = 0; ret == TC_OK && i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
        if (PKCS7_type_is_encrypted(p7)) {
            const X509_ALGOR *alg = p7->d.encrypted != NULL && p7->d.encrypted->enc_data != NULL
                                        ? p7->d.encrypted->enc_data->algorithm
                                        : NULL;
            ret = too_many_iterations(st, in, "encrypted contents", pbe_iterations(alg));
            if (ret == TC_OK && decrypt)
                bags = PKCS12_unpack_p7encdata(p7, pass, pass != NULL ? -1 : 0);
        } else if (PKCS7_type_is_data(p7)) {
            bags = PKCS12_unpack_p7data(p7);
        }
        if (ret == TC_OK && bags != NULL)
            ret = check_bags(st, in, bags, 0);
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    ERR_clear_error(); /* what cannot be read here is PKCS12_parse's to report */
    return ret;
}

static tokencert_err parse_pkcs12(import_state *st, const tokencert_import_input *in)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    OSSL_LIB_CTX *lib = tc_libctx(st->ctx);
    const char *pass = st->opts->password != NULL ? st->opts->password : "";
    const unsigned char *p = in->data;
    PKCS12 *p12 = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    char *why = NULL;
    int cert_index = -1, key_index = -1;

    if (lib == NULL)
        return TC_ERR_INTERNAL;
    /* A PKCS12 made in the library's context decrypts with its providers: the legacy one reads
     * the RC2-40 and 3DES files portals still hand out (the way openssl pkcs12 does it). */
    p12 = PKCS12_init_ex(NID_pkcs7_data, lib, NULL);
    if (p12 == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (d2i_PKCS12(&p12, &p, (long)in->len) == NULL) {
        p12 = NULL; /* freed by the failed d2i */
        ret = tc_error(st->ctx, TC_ERR_BAD_DATA,
                       "%s: not a certificate, PKCS#7 or PKCS#12 file (damaged PKCS#12)", in->name);
        goto out;
    }
    ret = check_pkcs12_iterations(st, in, p12, pass, 0);
    if (ret != TC_OK)
        goto out;
    if (PKCS12_mac_present(p12)) {
        if (PKCS12_verify_mac(p12, pass, -1))
            ;
        else if (pass[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0))
            pass = NULL;
        else {
            ret = tc_error(st->ctx, TC_ERR_BAD_DATA,
                           "%s: wrong password (MAC verification failed; or the file is damaged)",
                           in->name);
            goto out;
        }
    }
    ret = check_pkcs12_iterations(st, in, p12, pass, 1);
    if (ret != TC_OK)
        goto out;
    if (!PKCS12_parse(p12, pass, &pkey, &cert, &ca)) {
        why = openssl_reason();
        ret = tc_error(st->ctx, TC_ERR_BAD_DATA, "%s: cannot read the PKCS#12 contents: %s",
                       in->name, why != NULL ? why : "?");
        goto out;
    }
    if (pkey == NULL && cert == NULL && sk_X509_num(ca) <= 0) {
        ret = tc_error(st->ctx, TC_ERR_BAD_DATA, "%s: the PKCS#12 file holds nothing to import",
                       in->name);
        goto out;
    }
    if (pkey != NULL) {
        in_key *k;
        if (st->n_keys == st->cap_keys) {
            size_t ncap = st->cap_keys ? st->cap_keys * 2 : 4;
            in_key *nv = realloc(st->keys, ncap * sizeof *nv);
            if (nv == NULL) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
            st->keys = nv;
            st->cap_keys = ncap;
        }
        key_index = (int)st->n_keys;
        k = &st->keys[st->n_keys++];
        memset(k, 0, sizeof *k);
        k->pkey = pkey;
        pkey = NULL;
        k->src = in->name;
        k->existing = -1;
        k->cert = -1;
        /* Points as PKCS#11 and the CKA_ID rule want them. */
        if (EVP_PKEY_is_a(k->pkey, "EC"))
            EVP_PKEY_set_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED);
        if (cert != NULL) {
            int alen = 0;
            const unsigned char *alias = X509_alias_get0(cert, &alen);
            if (alias != NULL && alen > 0) {
                k->friendly = tc_printable(alias, (size_t)alen, LABEL_MAX);
                if (k->friendly == NULL) {
                    ret = TC_ERR_NOMEM;
                    goto out;
                }
            }
            if (!pubkey_equal(X509_get0_pubkey(cert), k->pkey)) {
                ret = tc_error(st->ctx, TC_ERR_BAD_DATA,
                               "%s: the PKCS#12 certificate does not belong to its private key",
                               in->name);
                goto out;
            }
        }
        ret = tc_key_id_for(st->ctx, k->pkey, k->id);
        if (ret != TC_OK)
            goto out;
    }
    if (cert != NULL) {
        ret = add_cert(st, cert, in->name, key_index, &cert_index);
        cert = NULL;
        if (ret != TC_OK)
            goto out;
        if (key_index >= 0)
            st->keys[key_index].cert = cert_index;
    }
    while (ca != NULL && sk_X509_num(ca) > 0) {
        X509 *x = sk_X509_shift(ca);
        ret = add_cert(st, x, in->name, -1, NULL);
        if (ret != TC_OK)
            goto out;
    }
    ret = TC_OK;
out:
    ERR_clear_error();
    free(why);
    EVP_PKEY_free(pkey);
    X509_free(cert);
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    return ret;
}

static tokencert_err parse_input(import_state *st, const tokencert_import_input *in)
{
    const unsigned char *p = in->data;
    X509 *x;
    PKCS7 *p7;
    tokencert_err ret;

    if (in->data == NULL || in->len == 0)
        return tc_error(st->ctx, TC_ERR_BAD_DATA, "%s: the file is empty", in->name);
    if (in->len > LONG_MAX || in->len > INT_MAX)
        return tc_error(st->ctx, TC_ERR_BAD_DATA, "%s: the file is too large", in->name);
    if (memmem(in->data, in->len, "-----BEGIN ", 11) != NULL)
        return parse_pem(st, in);
    if (tokencert_data_is_pkcs12(in->data, in->len))
        return parse_pkcs12(st, in);
    x = d2i_X509(NULL, &p, (long)in->len);
    if (x != NULL && p == in->data + in->len)
        return add_cert(st, x, in->name, -1, NULL);
    X509_free(x);
    p = in->data;
    p7 = d2i_PKCS7(NULL, &p, (long)in->len);
    if (p7 != NULL && p == in->data + in->len) {
        ret = add_p7_certs(st, p7, in->name);
        PKCS7_free(p7);
        return ret;
    }
    PKCS7_free(p7);
    ERR_clear_error();
    return tc_error(st->ctx, TC_ERR_BAD_DATA, "%s: not a certificate, PKCS#7 or PKCS#12 file",
                    in->name);
}

/* ---- the token's keys ----------------------------------------------------------------------- */

static void tkeys_clear(import_state *st)
{
    size_t i;

    for (i = 0; i < st->n_tkeys; i++) {
        free(st->tkeys[i].id);
        free(st->tkeys[i].label);
        EVP_PKEY_free(st->tkeys[i].pubkey);
    }
    free(st->tkeys);
    st->tkeys = NULL;
    st->n_tkeys = 0;
}

/* Every key on the token: only needed when a certificate's key is not where the CKA_ID rule puts
 * it (keys made by other tools), as it costs a read per key object. */
static tokencert_err load_token_keys(import_state *st)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_key_entry *v = NULL;
    size_t n = 0, i;

    tkeys_clear(st);
    st->tkeys_loaded = 1;
    ret = tc_keys_list(st->ctx, &st->t->session, MAX_TOKEN_KEYS, &v, &n);
    if (ret != TC_OK)
        goto out;
    st->tkeys = calloc(n ? n : 1, sizeof *st->tkeys);
    if (st->tkeys == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        tok_key *tk = &st->tkeys[i];
        tk->id = v[i].id;
        tk->id_len = v[i].id_len;
        tk->label = v[i].label;
        tk->type = v[i].type;
        tk->priv = v[i].priv;
        tk->pub = v[i].pub;
        v[i].id = NULL;
        v[i].label = NULL;
    }
    st->n_tkeys = n;
    ret = TC_OK;
out:
    tc_key_entries_free(v, n);
    return ret;
}

/* The public key of a token key, read once: from its public object, else from the private one
 * (SoftHSM's EC private keys carry no point). NULL when unreadable. */
static EVP_PKEY *token_key_pub(import_state *st, tok_key *tk)
{
    if (!tk->pub_tried) {
        tk->pub_tried = 1;
        if (tk->pub != TC_OBJECT_NONE &&
            tc_pubkey_read(st->ctx, &st->t->session, tk->pub, tk->type, &tk->pubkey) != TC_OK)
            tk->pubkey = NULL;
        if (tk->pubkey == NULL && tk->priv != TC_OBJECT_NONE &&
            tc_pubkey_read(st->ctx, &st->t->session, tk->priv, tk->type, &tk->pubkey) != TC_OK)
            tk->pubkey = NULL;
    }
    return tk->pubkey;
}

/* The private key with the CKA_ID the rule derives from pub, as one search (none when the session
 * already knows it, e.g. a key it just generated). -1 when there is none or it is another key. */
static int token_key_by_id(import_state *st, EVP_PKEY *pub, const unsigned char id[20])
{
    tc_key *k = NULL;
    tok_key *tk, *nv;
    int found = -1;

    if (tc_key_open_id(st->ctx, &st->t->session, id, 20, &k) != TC_OK) {
        ERR_clear_error();
        return -1;
    }
    if (!pubkey_equal(k->pub_pkey, pub))
        goto out;
    nv = realloc(st->tkeys, (st->n_tkeys + 1) * sizeof *nv);
    if (nv == NULL)
        goto out;
    st->tkeys = nv;
    tk = &st->tkeys[st->n_tkeys];
    memset(tk, 0, sizeof *tk);
    tk->id = malloc(k->id_len);
    tk->label = tc_strdup(k->label);
    if (tk->id == NULL || tk->label == NULL || EVP_PKEY_up_ref(k->pub_pkey) != 1) {
        free(tk->id);
        free(tk->label);
        goto out;
    }
    memcpy(tk->id, k->id, k->id_len);
    tk->id_len = k->id_len;
    tk->type = k->type;
    tk->priv = k->priv;
    tk->pub = k->pub;
    tk->pubkey = k->pub_pkey;
    tk->pub_tried = 1;
    found = (int)st->n_tkeys++;
out:
    tc_key_free(k);
    return found;
}

/* The token key whose public key is pub: the one with the derived CKA_ID first (looked up
 * directly), then any (every key read, once). -1 when none; the error (if any) is recorded. */
static int find_token_key(import_state *st, EVP_PKEY *pub, const unsigned char id[20])
{
    size_t i;
    int pass, hit;

    if (!st->tkeys_loaded) {
        for (i = 0; i < st->n_tkeys; i++)
            if (pubkey_equal(st->tkeys[i].pubkey, pub))
                return (int)i;
        hit = token_key_by_id(st, pub, id);
        if (hit >= 0)
            return hit;
        st->load_err = load_token_keys(st);
        if (st->load_err != TC_OK)
            return -1;
    }
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < st->n_tkeys; i++) {
            tok_key *tk = &st->tkeys[i];
            int id_hit = tk->id_len == 20 && memcmp(tk->id, id, 20) == 0;
            if (id_hit != (pass == 0))
                continue;
            if (pubkey_equal(token_key_pub(st, tk), pub))
                return (int)i;
        }
    }
    return -1;
}

/* ---- checks --------------------------------------------------------------------------------- */

static tokencert_err parse_fingerprint(tokencert_ctx *ctx, const char *s, const EVP_MD **md,
                                       unsigned char *want, size_t *want_len)
{
    const char *p;
    size_t need, n = 0;

    if (strncasecmp(s, "sha256:", 7) == 0) {
        *md = EVP_sha256();
        need = 32;
        p = s + 7;
    } else if (strncasecmp(s, "sha1:", 5) == 0) {
        *md = EVP_sha1();
        need = 20;
        p = s + 5;
    } else {
        goto bad;
    }
    while (*p != '\0') {
        int hi, lo;
        if (*p == ':') {
            p++;
            continue;
        }
        hi = OPENSSL_hexchar2int((unsigned char)p[0]);
        lo = p[1] != '\0' ? OPENSSL_hexchar2int((unsigned char)p[1]) : -1;
        if (hi < 0 || lo < 0 || n >= need)
            goto bad;
        want[n++] = (unsigned char)(hi << 4 | lo);
        p += 2;
    }
    if (n != need)
        goto bad;
    *want_len = n;
    return TC_OK;
bad:
    return tc_error(ctx, TC_ERR_INVALID_ARG,
                    "malformed expected fingerprint '%.120s': give sha256: and 32 bytes of hex, or "
                    "sha1: and 20 (colons optional)",
                    s);
}

static tokencert_err check_fingerprint(import_state *st)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    const EVP_MD *md = NULL;
    unsigned char want[32], have[EVP_MAX_MD_SIZE];
    unsigned int have_len = 0;
    size_t want_len = 0, i, n_leaves = 0;
    char want_s[3 * 32], have_s[3 * EVP_MAX_MD_SIZE];
    in_cert *target = NULL;
    const char *alg;

    ret = parse_fingerprint(st->ctx, st->opts->expect_fingerprint, &md, want, &want_len);
    if (ret != TC_OK)
        return ret;
    alg = want_len == 32 ? "sha256" : "sha1";
    /* The certificate that came with a PKCS#12 key; else the one end-entity certificate. */
    for (i = 0; i < st->n_certs; i++) {
        if (st->certs[i].p12_key >= 0 && target == NULL)
            target = &st->certs[i];
        if (!st->certs[i].authority)
            n_leaves++;
    }
    for (i = 0; target == NULL && n_leaves == 1 && i < st->n_certs; i++)
        if (!st->certs[i].authority)
            target = &st->certs[i];
    if (target == NULL && n_leaves == 0 && st->n_certs == 1)
        target = &st->certs[0];
    if (target == NULL)
        return tc_error(st->ctx, TC_ERR_INVALID_ARG,
                        "an expected fingerprint needs one end-entity certificate, and the inputs "
                        "hold %zu",
                        n_leaves);
    if (!fingerprint(target->x, md, have, &have_len, have_s))
        return tc_error(st->ctx, TC_ERR_INTERNAL, "cannot compute a fingerprint");
    tc_hex_upper(want, want_len, ':', want_s);
    if (have_len != want_len || memcmp(have, want, want_len) != 0)
        return tc_error(st->ctx, TC_ERR_VERIFY,
                        "%s: fingerprint mismatch: expected %s:%s, the file's certificate has "
                        "%s:%s",
                        target->src, alg, want_s, alg, have_s);
    return TC_OK;
}

/* The certificate's CKA_ID becomes a copy of ID, whatever its length: a key made by another tool
 * may carry a long one, and the certificate must carry the same. */
static tokencert_err cert_set_id(in_cert *c, const unsigned char *id, size_t id_len)
{
    unsigned char *p = malloc(id_len > 0 ? id_len : 1);

    if (p == NULL)
        return TC_ERR_NOMEM;
    if (id_len > 0)
        memcpy(p, id, id_len);
    free(c->id);
    c->id = p;
    c->id_len = id_len;
    return TC_OK;
}

static tokencert_err match_keys(import_state *st)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    const tokencert_import_opts *o = st->opts;
    size_t i, k;

    for (k = 0; k < st->n_keys; k++) {
        in_key *ik = &st->keys[k];
        char *cn = ik->cert >= 0 ? common_name(st->certs[ik->cert].x) : NULL;
        ik->existing = find_token_key(st, ik->pkey, ik->id);
        if (st->load_err != TC_OK) {
            free(cn);
            return st->load_err;
        }
        if (ik->existing >= 0 && st->tkeys[ik->existing].label[0] != '\0')
            ik->label = tc_strdup(st->tkeys[ik->existing].label);
        else
            ik->label = tc_strdup(o->label != NULL       ? o->label
                                  : ik->friendly != NULL ? ik->friendly
                                  : cn != NULL           ? cn
                                                         : "imported key");
        free(cn);
        if (ik->label == NULL)
            return TC_ERR_NOMEM;
    }
    for (i = 0; i < st->n_certs; i++) {
        in_cert *c = &st->certs[i];
        EVP_PKEY *pub = X509_get0_pubkey(c->x);
        unsigned char derived[20];
        const char *key_label = NULL;
        char *cn;

        if (c->authority)
            continue;
        if (pub == NULL)
            return tc_error(st->ctx, TC_ERR_BAD_DATA,
                            "%s: certificate '%s' has a public key OpenSSL cannot read", c->src,
                            c->subject);
        ret = tc_key_id_for(st->ctx, pub, derived);
        if (ret != TC_OK)
            return ret;
        for (k = 0; k < st->n_keys && c->in_key < 0; k++)
            if (pubkey_equal(st->keys[k].pkey, pub))
                c->in_key = (int)k;
        if (c->in_key >= 0) {
            in_key *ik = &st->keys[c->in_key];
            if (ik->existing >= 0)
                ret = cert_set_id(c, st->tkeys[ik->existing].id, st->tkeys[ik->existing].id_len);
            else
                ret = cert_set_id(c, ik->id, sizeof ik->id);
            if (ret != TC_OK)
                return ret;
            key_label = ik->label;
        } else {
            c->token_key = find_token_key(st, pub, derived);
            if (st->load_err != TC_OK)
                return st->load_err;
            if (c->token_key >= 0) {
                tok_key *tk = &st->tkeys[c->token_key];
                ret = cert_set_id(c, tk->id, tk->id_len);
                if (ret != TC_OK)
                    return ret;
                key_label = tk->label;
            } else if (o->allow_orphan) {
                ret = cert_set_id(c, derived, sizeof derived);
                if (ret != TC_OK)
                    return ret;
            } else {
                return tc_error(st->ctx, TC_ERR_NOT_FOUND,
                                "%s: certificate '%s' matches no key on token '%s' "
                                "(--allow-orphan stores it anyway)",
                                c->src, c->subject, st->t->info.label);
            }
        }
        cn = common_name(c->x);
        c->label = tc_strdup(o->label != NULL                            ? o->label
                             : key_label != NULL && key_label[0] != '\0' ? key_label
                             : cn != NULL                                ? cn
                                                                         : c->subject);
        free(cn);
        if (c->label == NULL)
            return TC_ERR_NOMEM;
    }
    for (i = 0; i < st->n_certs; i++) {
        in_cert *c = &st->certs[i];
        unsigned char aid[20];
        if (!c->authority)
            continue;
        c->label = common_name(c->x);
        if (c->label == NULL)
            c->label = tc_strdup(c->subject);
        if (c->label == NULL)
            return TC_ERR_NOMEM;
        /* Authorities get the id OpenSC and NSS would give them: their key's. */
        if (X509_get0_pubkey(c->x) != NULL &&
            tc_key_id_for(st->ctx, X509_get0_pubkey(c->x), aid) == TC_OK &&
            cert_set_id(c, aid, sizeof aid) != TC_OK)
            return TC_ERR_NOMEM;
    }
    return TC_OK;
}

static tokencert_err check_chains(import_state *st)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    OSSL_LIB_CTX *lib = tc_libctx(st->ctx);
    X509_STORE *store = NULL;
    X509_STORE_CTX *vctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    char *why = NULL;
    size_t i;

    if (lib == NULL)
        return TC_ERR_INTERNAL;
    store = X509_STORE_new();
    untrusted = sk_X509_new_null();
    vctx = X509_STORE_CTX_new_ex(lib, NULL);
    if (store == NULL || untrusted == NULL || vctx == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (st->opts->ca_file != NULL) {
        if (!X509_STORE_load_file_ex(store, st->opts->ca_file, lib, NULL)) {
            why = openssl_reason();
            ret = tc_error(st->ctx, TC_ERR_IO, "cannot read CA certificates from '%s': %s",
                           st->opts->ca_file, why != NULL ? why : "?");
            goto out;
        }
    } else if (!X509_STORE_set_default_paths_ex(store, lib, NULL)) {
        why = openssl_reason();
        ret = tc_error(st->ctx, TC_ERR_IO, "cannot load the system's CA certificates: %s",
                       why != NULL ? why : "?");
        goto out;
    }
    for (i = 0; i < st->n_certs; i++)
        if (st->certs[i].authority && !sk_X509_push(untrusted, st->certs[i].x)) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
    for (i = 0; i < st->n_certs; i++) {
        in_cert *c = &st->certs[i];
        int ok;
        if (c->authority)
            continue;
        if (!X509_STORE_CTX_init(vctx, store, c->x, untrusted)) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        /* Dates are judged separately, with their own message and override. */
        X509_STORE_CTX_set_flags(vctx, X509_V_FLAG_NO_CHECK_TIME);
        ok = X509_verify_cert(vctx);
        if (ok != 1) {
            int err = X509_STORE_CTX_get_error(vctx);
            ret = tc_error(st->ctx, TC_ERR_VERIFY,
                           "%s: certificate '%s' does not verify: %s (--ca-file, or --no-verify "
                           "to import anyway)",
                           c->src, c->subject, X509_verify_cert_error_string(err));
            goto out;
        }
        X509_STORE_CTX_cleanup(vctx);
    }
    ret = TC_OK;
out:
    ERR_clear_error();
    free(why);
    X509_STORE_CTX_free(vctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    return ret;
}

static tokencert_err check_dates(import_state *st)
{
    size_t i;

    for (i = 0; i < st->n_certs; i++) {
        in_cert *c = &st->certs[i];
        time_t now = tc_now(), nb, na;
        char date[32], *msg;
        const char *bad = NULL;
        /* A date that does not convert is refused whatever --allow-invalid-dates says: checking
         * it against now would compare garbage. The message names the field that is wrong. */
        if (!asn1_time_get(X509_get0_notBefore(c->x), &nb))
            bad = "notBefore";
        else if (!asn1_time_get(X509_get0_notAfter(c->x), &na))
            bad = "notAfter";
        if (bad != NULL)
            return tc_error(st->ctx, TC_ERR_BAD_DATA,
                            "%s: certificate '%s' has a malformed %s date", c->src, c->subject,
                            bad);
        if (na <= now) {
            tc_time_iso(na, date, sizeof date);
            msg = tc_asprintf("%s: certificate '%s' expired on %s", c->src, c->subject, date);
        } else if (nb > now) {
            tc_time_iso(nb, date, sizeof date);
            msg = tc_asprintf("%s: certificate '%s' is not valid before %s", c->src, c->subject,
                              date);
        } else {
            continue;
        }
        if (msg == NULL)
            return TC_ERR_NOMEM;
        if (!st->opts->allow_invalid_dates) {
            tc_error(st->ctx, TC_ERR_VERIFY, "%s (--allow-invalid-dates to import anyway)", msg);
            free(msg);
            return TC_ERR_VERIFY;
        }
        tc_warning(st->ctx, "%s; imported anyway", msg);
        free(msg);
    }
    return TC_OK;
}

/* ---- writing -------------------------------------------------------------------------------- */

static tokencert_err remember(import_state *st, tc_object_ref h)
{
    if (st->n_created == st->cap_created) {
        size_t ncap = st->cap_created ? st->cap_created * 2 : 8;
        tc_object_ref *nv = realloc(st->created, ncap * sizeof *nv);
        if (nv == NULL)
            return TC_ERR_NOMEM;
        st->created = nv;
        st->cap_created = ncap;
    }
    st->created[st->n_created++] = h;
    return TC_OK;
}

/* Writes a PKCS#12 key and its public key; both are remembered for a roll-back. */
static tokencert_err write_key(import_state *st, in_key *ik)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_session *s = &st->t->session;
    tc_object_ref priv = TC_OBJECT_NONE, pub = TC_OBJECT_NONE;

    ret = tc_key_write(st->ctx, s, ik->pkey, ik->id, ik->label, ik->src, &priv, &pub);
    if (ret != TC_OK)
        goto out;
    ret = remember(st, priv);
    if (ret != TC_OK)
        goto out;
    priv = TC_OBJECT_NONE;
    ret = remember(st, pub);
    if (ret != TC_OK)
        goto out;
    pub = TC_OBJECT_NONE;
    ret = TC_OK;
out:
    tc_object_destroy(s, pub);
    tc_object_destroy(s, priv);
    return ret;
}

static void roll_back(import_state *st)
{
    tc_session *s = &st->t->session;
    size_t i;

    for (i = st->n_created; i > 0; i--)
        tc_object_destroy(s, st->created[i - 1]);
    st->n_created = 0;
}

/* ---- results -------------------------------------------------------------------------------- */

static tokencert_err add_item(import_state *st, tokencert_import_item **items, size_t *n,
                              tokencert_import_kind kind, int existed, const char *label,
                              const unsigned char *id, size_t id_len, X509 *x)
{
    tokencert_import_item *nv = realloc(*items, (*n + 1) * sizeof *nv), *it;
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int raw_len = 0;
    char fp[3 * EVP_MAX_MD_SIZE];

    if (nv == NULL)
        return TC_ERR_NOMEM;
    *items = nv;
    it = &nv[(*n)++];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->existed = existed;
    it->label = tc_strdup(label);
    it->id = tc_hex(id, id_len);
    it->uri = tc_token_object_uri_format(
        st->t, kind == TOKENCERT_IMPORTED_KEY ? TC_CLASS_PRIVATE_KEY : TC_CLASS_CERTIFICATE, id,
        id_len, label);
    if (x != NULL) {
        it->subject = tc_name_string(X509_get_subject_name(x));
        if (fingerprint(x, EVP_sha256(), raw, &raw_len, fp))
            it->sha256 = tc_strdup(fp);
    }
    if (it->label == NULL || it->id == NULL || it->uri == NULL ||
        (x != NULL && (it->subject == NULL || it->sha256 == NULL)))
        return TC_ERR_NOMEM;
    return TC_OK;
}

void tokencert_import_items_free(tokencert_import_item *items, size_t n)
{
    size_t i;

    for (i = 0; items != NULL && i < n; i++) {
        free(items[i].label);
        free(items[i].id);
        free(items[i].uri);
        free(items[i].subject);
        free(items[i].sha256);
    }
    free(items);
}

/* ---- tokencert_import ----------------------------------------------------------------------- */

static void state_free(import_state *st)
{
    size_t i;

    for (i = 0; i < st->n_certs; i++) {
        X509_free(st->certs[i].x);
        free(st->certs[i].subject);
        free(st->certs[i].label);
        free(st->certs[i].id);
    }
    free(st->certs);
    for (i = 0; i < st->n_keys; i++) {
        EVP_PKEY_free(st->keys[i].pkey);
        free(st->keys[i].friendly);
        free(st->keys[i].label);
    }
    free(st->keys);
    tkeys_clear(st);
    free(st->created);
}

tokencert_err tokencert_import(tokencert_token *t, const tokencert_import_input *in, size_t n_in,
                               const tokencert_import_opts *opts, tokencert_import_item **items,
                               size_t *n_items)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    import_state st;
    tokencert_import_opts none;
    tokencert_import_item *out = NULL;
    size_t n_out = 0, i;
    int pass;

    tc_return_val_if_fail(t != NULL && (in != NULL || n_in == 0) && items != NULL &&
                              n_items != NULL,
                          TC_ERR_INVALID_ARG);
    *items = NULL;
    *n_items = 0;
    memset(&st, 0, sizeof st);
    memset(&none, 0, sizeof none);
    st.ctx = t->ctx;
    st.t = t;
    st.opts = opts != NULL ? opts : &none;
    if (n_in == 0) {
        ret = tc_error(t->ctx, TC_ERR_INVALID_ARG, "nothing to import");
        goto out;
    }
    if (st.opts->expect_fingerprint != NULL) {
        const EVP_MD *md;
        unsigned char buf[32];
        size_t len;
        /* A malformed fingerprint is a usage error, reported before any file is read. */
        ret = parse_fingerprint(t->ctx, st.opts->expect_fingerprint, &md, buf, &len);
        if (ret != TC_OK)
            goto out;
    }
    /* 1. Read everything. */
    for (i = 0; i < n_in; i++) {
        ret = parse_input(&st, &in[i]);
        if (ret != TC_OK)
            goto out;
    }
    /* 2. Check everything, nothing written yet. */
    if (st.opts->expect_fingerprint != NULL) {
        ret = check_fingerprint(&st);
        if (ret != TC_OK)
            goto out;
    }
    /* Token keys are looked up as certificates need them (match_keys). */
    ret = match_keys(&st);
    if (ret != TC_OK)
        goto out;
    if (!st.opts->no_verify) {
        ret = check_chains(&st);
        if (ret != TC_OK)
            goto out;
    }
    ret = check_dates(&st);
    if (ret != TC_OK)
        goto out;
    /* 3. Write: keys first (the write a token is most likely to refuse), then end-entity
     * certificates, then authorities. */
    for (i = 0; i < st.n_keys; i++) {
        in_key *ik = &st.keys[i];
        if (ik->existing < 0) {
            ret = write_key(&st, ik);
            if (ret != TC_OK)
                goto out;
        }
        ret = add_item(&st, &out, &n_out, TOKENCERT_IMPORTED_KEY, ik->existing >= 0, ik->label,
                       ik->existing >= 0 ? st.tkeys[ik->existing].id : ik->id,
                       ik->existing >= 0 ? st.tkeys[ik->existing].id_len : 20, NULL);
        if (ret != TC_OK)
            goto out;
    }
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < st.n_certs; i++) {
            in_cert *c = &st.certs[i];
            tc_object_ref h = TC_OBJECT_NONE;
            if (c->authority != (pass == 1))
                continue;
            ret = tc_cert_store(t->ctx, &t->session, c->x, c->id, c->id_len, c->label, c->authority,
                                &c->existed, &h);
            if (ret != TC_OK)
                goto out;
            if (h != TC_OBJECT_NONE) {
                ret = remember(&st, h);
                if (ret != TC_OK) {
                    tc_object_destroy(&t->session, h);
                    goto out;
                }
            }
            ret = add_item(&st, &out, &n_out,
                           c->authority ? TOKENCERT_IMPORTED_AUTHORITY : TOKENCERT_IMPORTED_CERT,
                           c->existed, c->label, c->id, c->id_len, c->x);
            if (ret != TC_OK)
                goto out;
        }
    }
    *items = out;
    *n_items = n_out;
    out = NULL;
    n_out = 0;
    ret = TC_OK;
out:
    if (ret != TC_OK)
        roll_back(&st);
    tokencert_import_items_free(out, n_out);
    state_free(&st);
    return ret;
}
