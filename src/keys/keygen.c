/* keygen.c — key pairs generated on the token: the key types tokencert makes, the attribute policy
 * of generated keys (sensitive, never extractable), the CKA_ID derived from the public key, and
 * the cleanup that leaves no half key pair behind when anything fails on the way. */
#include "keys/keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

/* Cap on the mechanism list; real tokens report a few dozen to a few hundred. */
#define MECH_LIST_MAX 4096
/* Cap on keys searched for one label. */
#define LABEL_MATCH_MAX 1024
#define ID_LEN          20

/* DER of the named-curve OIDs as CKA_EC_PARAMS (ECParameters namedCurve); for Ed25519 the
 * id-Ed25519 OID (RFC 8410), which PKCS#11 3.0 allows beside the curve-name PrintableString. */
static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

typedef struct {
    const char *name;
    CK_KEY_TYPE ck_type;
    CK_MECHANISM_TYPE mech;
    CK_ULONG bits; /* RSA modulus size, or the curve's field size */
    const unsigned char *params;
    size_t params_len;
} key_type_def;

static const key_type_def key_types[] = {
    {"rsa:2048", CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, NULL, 0},
    {"rsa:3072", CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, 3072, NULL, 0},
    {"rsa:4096", CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, 4096, NULL, 0},
    {"ec:p256", CKK_EC, CKM_EC_KEY_PAIR_GEN, 256, oid_p256, sizeof oid_p256},
    {"ec:p384", CKK_EC, CKM_EC_KEY_PAIR_GEN, 384, oid_p384, sizeof oid_p384},
    {"ed25519", CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, oid_ed25519, sizeof oid_ed25519},
};
#define N_KEY_TYPES (sizeof key_types / sizeof key_types[0])

static const char valid_types[] = "rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ed25519";

static const key_type_def *key_type_find(const char *name)
{
    size_t i;
    for (i = 0; i < N_KEY_TYPES; i++)
        if (strcmp(key_types[i].name, name) == 0)
            return &key_types[i];
    return NULL;
}

tokencert_err tokencert_key_type_check(tokencert_ctx *ctx, const char *type)
{
    tc_return_val_if_fail(ctx != NULL, TC_ERR_INVALID_ARG);
    if (type == NULL || key_type_find(type) != NULL)
        return TC_OK;
    return tc_error(ctx, TC_ERR_INVALID_ARG, "unknown key type '%.64s'; valid types: %s", type,
                    valid_types);
}

static char *token_label(const tc_slot *slot)
{
    return tc_token_string(slot->token_info.label, sizeof slot->token_info.label);
}

/* Which of key_types the slot's mechanism list and mechanism info allow, as flags in ok[].
 * Only RSA sizes are checked against the mechanism info's range: tokens disagree on whether
 * ulMinKeySize/ulMaxKeySize of EC mechanisms count bits or bytes, and a failed generate is the
 * final word anyway. */
static tokencert_err capable(tokencert_ctx *ctx, const tc_slot *slot, int ok[N_KEY_TYPES])
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_MECHANISM_TYPE *list = NULL;
    CK_ULONG n = 0, i;
    size_t k;
    CK_RV rv;

    memset(ok, 0, N_KEY_TYPES * sizeof ok[0]);
    rv = tc_p11_get_mechanism_list(slot->module, slot->slot, NULL, &n);
    if (rv == CKR_OK && n > MECH_LIST_MAX) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "the token reports %lu mechanisms (more than %d)",
                       (unsigned long)n, MECH_LIST_MAX);
        goto out;
    }
    if (rv == CKR_OK && n > 0) {
        list = calloc(n, sizeof *list);
        if (list == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        rv = tc_p11_get_mechanism_list(slot->module, slot->slot, list, &n);
    }
    if (rv != CKR_OK) {
        char *label = token_label(slot);
        ret = tc_error(ctx, tc_err_from_rv(rv), "token '%s': C_GetMechanismList failed: %s",
                       label != NULL ? label : "?", tc_ckr_name(rv));
        free(label);
        goto out;
    }
    for (k = 0; k < N_KEY_TYPES; k++) {
        const key_type_def *d = &key_types[k];
        CK_MECHANISM_INFO info;
        for (i = 0; i < n && list[i] != d->mech; i++)
            ;
        if (i == n)
            continue;
        ok[k] = 1;
        if (d->ck_type != CKK_RSA)
            continue;
        memset(&info, 0, sizeof info);
        rv = tc_p11_get_mechanism_info(slot->module, slot->slot, d->mech, &info);
        /* A range of 0..0 says nothing; only a real range excludes a size. */
        if (rv == CKR_OK && info.ulMaxKeySize > 0 &&
            (d->bits < info.ulMinKeySize || d->bits > info.ulMaxKeySize))
            ok[k] = 0;
        if (rv == CKR_OK && !(info.flags & CKF_GENERATE_KEY_PAIR) && info.flags != 0)
            ok[k] = 0;
    }
    ret = TC_OK;
out:
    free(list);
    return ret;
}

/* "rsa:2048 ec:p256 ..." for the types ok[] allows, leaving out exclude (a type the token has just
 * failed to make whatever its mechanism list says). */
static char *types_string(const int ok[N_KEY_TYPES], const key_type_def *exclude)
{
    char *s = tc_strdup(""), *next;
    size_t k;

    for (k = 0; s != NULL && k < N_KEY_TYPES; k++) {
        if (!ok[k] || &key_types[k] == exclude)
            continue;
        next = tc_asprintf("%s%s%s", s, s[0] ? " " : "", key_types[k].name);
        free(s);
        s = next;
    }
    if (s != NULL && s[0] == '\0') {
        free(s);
        s = tc_strdup("(none)");
    }
    return s;
}

/* The NOT_SUPPORTED error for type d, naming what the token can make instead. why may be NULL. */
static tokencert_err not_supported(tokencert_ctx *ctx, const tc_slot *slot, const key_type_def *d,
                                   const char *why)
{
    int ok[N_KEY_TYPES];
    char *label = token_label(slot), *can = NULL;
    tokencert_err ret;

    /* The caller's error detail (if any) is in why; a failing mechanism query only shortens the
     * message. */
    if (capable(ctx, slot, ok) == TC_OK)
        can = types_string(ok, d);
    ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                   "token '%s' cannot generate %s keys%s%s%s; it can make: %s",
                   label != NULL ? label : "?", d->name, why != NULL ? " (" : "",
                   why != NULL ? why : "", why != NULL ? ")" : "", can != NULL ? can : "(unknown)");
    free(label);
    free(can);
    return ret;
}

/* CK_RVs of C_GenerateKeyPair that mean "this token cannot make this kind of key". */
static int rv_means_unsupported(CK_RV rv)
{
    switch (rv) {
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_DOMAIN_PARAMS_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_FUNCTION_NOT_SUPPORTED:
        return 1;
    default:
        return 0;
    }
}

/* CK_RVs of C_SetAttributeValue that mean "this token does not let CKA_ID change". */
static int rv_means_id_fixed(CK_RV rv)
{
    switch (rv) {
    case CKR_ATTRIBUTE_READ_ONLY:
    case CKR_ACTION_PROHIBITED:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_TEMPLATE_INCONSISTENT:
        return 1;
    default:
        return 0;
    }
}

/* The error for a failed write to the token, with the cases users can act on spelled out. */
static tokencert_err write_error(tokencert_ctx *ctx, const tc_session *s, const char *call,
                                 CK_RV rv)
{
    char *label = token_label(s->slot);
    const char *l = label != NULL ? label : "?";
    tokencert_err ret;

    switch (rv) {
    case CKR_DEVICE_MEMORY:
        ret = tc_error(ctx, TC_ERR_PKCS11,
                       "token '%s' is full: no room for another key pair (%s: %s); delete "
                       "objects that are no longer needed",
                       l, call, tc_ckr_name(rv));
        break;
    case CKR_TOKEN_WRITE_PROTECTED:
        ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                       "token '%s' is write-protected: no key can be generated on it (%s: %s)", l,
                       call, tc_ckr_name(rv));
        break;
    case CKR_SESSION_READ_ONLY:
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "token '%s' was opened read-only; key generation needs a read-write session",
                       l);
        break;
    case CKR_USER_NOT_LOGGED_IN:
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "token '%s': key generation needs a login (%s: %s)",
                       l, call, tc_ckr_name(rv));
        break;
    default:
        ret = tc_session_error(ctx, s, call, rv);
        break;
    }
    free(label);
    return ret;
}

/* Refuses a label that an object on the token already carries: labels name credentials, and a
 * certificate labelled the same would be taken for this key's. One search for the label; only
 * objects found (rare) are read. */
static tokencert_err label_free(tokencert_ctx *ctx, tc_session *s, const char *label)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    CK_ATTRIBUTE tmpl = {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0, i;
    tc_attr a[2] = {{CKA_CLASS, NULL, 0, 0, sizeof(CK_OBJECT_CLASS)}, {CKA_ID, NULL, 0, 0, 0}};
    char *hex = NULL;
    CK_OBJECT_CLASS cls = CKO_DATA;

    ret = tc_find_objects(ctx, s, &tmpl, 1, LABEL_MATCH_MAX, &objs, &n);
    if (ret != TC_OK)
        goto out;
    for (i = 0; i < n; i++) {
        tc_attrs_clear(a, 2);
        ret = tc_get_attributes(ctx, s, objs[i], a, 2, 256);
        if (ret != TC_OK)
            goto out;
        if (!a[0].available)
            continue;
        memcpy(&cls, a[0].value, sizeof cls);
        hex = a[1].available && a[1].len > 0 ? tc_hex(a[1].value, a[1].len) : tc_strdup("none");
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "a %s labelled '%s' already exists (id %s): choose another label, or "
                       "delete the old objects first",
                       cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY ? "key"
                       : cls == CKO_CERTIFICATE                        ? "certificate"
                                                                       : "object",
                       label, hex != NULL ? hex : "?");
        goto out;
    }
    ret = TC_OK;
out:
    free(hex);
    tc_attrs_clear(a, 2);
    free(objs);
    return ret;
}

/* Destroys what a failed generation left: the handles it got, and anything else carrying the
 * temporary CKA_ID (a token that created objects and still reported failure). Best effort: the
 * error being returned is the one that matters; a failed cleanup is added as a warning. */
static void discard(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
                    const unsigned char *tmp_id)
{
    tc_module *m = s->slot->module;
    CK_ATTRIBUTE tmpl = {CKA_ID, (void *)tmp_id, ID_LEN};
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0, i;
    char *saved = tc_strdup(tokencert_ctx_error(ctx));
    int failed = 0;

    if (priv != CK_INVALID_HANDLE && tc_p11_destroy_object(m, s->h, priv) != CKR_OK)
        failed = 1;
    if (pub != CK_INVALID_HANDLE && tc_p11_destroy_object(m, s->h, pub) != CKR_OK)
        failed = 1;
    if (tc_find_objects(ctx, s, &tmpl, 1, LABEL_MATCH_MAX, &objs, &n) == TC_OK) {
        for (i = 0; i < n; i++)
            if (tc_p11_destroy_object(m, s->h, objs[i]) != CKR_OK)
                failed = 1;
    }
    free(objs);
    if (failed) {
        char *hex = tc_hex(tmp_id, ID_LEN);
        tc_warning(ctx,
                   "the partly generated key pair could not be removed from the token: delete the "
                   "objects with id %s by hand",
                   hex != NULL ? hex : "?");
        free(hex);
    }
    /* The search above may have replaced the error detail. */
    if (saved != NULL)
        tc_error(ctx, TC_ERR_INTERNAL, "%s", saved);
    free(saved);
}

/* Checks that the token honoured the attribute policy: a key that could leave the token is not
 * kept. */
static tokencert_err check_policy(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE priv)
{
    tc_attr a[2] = {{CKA_SENSITIVE, NULL, 0, 0, sizeof(CK_BBOOL)},
                    {CKA_EXTRACTABLE, NULL, 0, 0, sizeof(CK_BBOOL)}};
    tokencert_err ret = TC_ERR_INTERNAL;

    ret = tc_get_attributes(ctx, s, priv, a, 2, 16);
    if (ret != TC_OK)
        goto out;
    if ((a[0].available && a[0].len == 1 && !a[0].value[0]) ||
        (a[1].available && a[1].len == 1 && a[1].value[0])) {
        ret = tc_error(ctx, TC_ERR_NOT_SUPPORTED,
                       "the token made the private key %s although asked not to; it was removed",
                       a[1].available && a[1].len == 1 && a[1].value[0] ? "extractable"
                                                                        : "not sensitive");
        goto out;
    }
    ret = TC_OK;
out:
    tc_attrs_clear(a, 2);
    return ret;
}

tokencert_err tc_keygen(tokencert_ctx *ctx, tc_session *s, const char *type, const char *label,
                        int shared_label, unsigned char id_out[20], size_t *id_len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    const key_type_def *d;
    tc_module *m;
    int ok[N_KEY_TYPES];
    unsigned char tmp_id[ID_LEN], id[ID_LEN];
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS c_pub = CKO_PUBLIC_KEY, c_priv = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt;
    CK_ULONG bits;
    static CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    CK_MECHANISM mech = {0, NULL, 0};
    CK_ATTRIBUTE pub[12], priv[12];
    CK_ULONG np = 0, nk = 0;
    CK_ATTRIBUTE set_id = {CKA_ID, id, ID_LEN};
    EVP_PKEY *pkey = NULL;
    char *tlabel = NULL;
    CK_RV rv;
    int generated = 0;

    tc_return_val_if_fail(ctx != NULL && s != NULL && s->slot != NULL, TC_ERR_INVALID_ARG);
    if (id_len != NULL)
        *id_len = 0;
    if (type == NULL)
        type = TOKENCERT_KEY_TYPE_DEFAULT;
    d = key_type_find(type);
    if (d == NULL) {
        ret = tokencert_key_type_check(ctx, type);
        goto out;
    }
    if (label == NULL || label[0] == '\0') {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "a key needs a label (it names the credential)");
        goto out;
    }
    m = s->slot->module;
    tlabel = token_label(s->slot);
    if (tlabel == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (!s->logged_in) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "token '%s': key generation needs a login (open the token with a login)",
                       tlabel);
        goto out;
    }
    /* Write protection was checked when the token was opened for writing; a token that turns
     * read-only since answers CKR_TOKEN_WRITE_PROTECTED below. */
    ret = shared_label ? TC_OK : label_free(ctx, s, label);
    if (ret != TC_OK)
        goto out;
    /* Capability is not asked up front: the generation is the final word anyway (some tokens
     * list mechanisms they cannot use), and the mechanism queries are only needed to explain a
     * refusal. */

    /* A random temporary CKA_ID keeps the two objects paired, and findable for cleanup, until the
     * real one (which needs the public key) is set. */
    if (RAND_bytes(tmp_id, sizeof tmp_id) != 1) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "no random bytes for a temporary key id");
        goto out;
    }
    kt = d->ck_type;
    bits = d->bits;
    mech.mechanism = d->mech;
    pub[np++] = (CK_ATTRIBUTE){CKA_CLASS, &c_pub, sizeof c_pub};
    pub[np++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof kt};
    pub[np++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
    pub[np++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof no};
    pub[np++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof yes};
    pub[np++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    pub[np++] = (CK_ATTRIBUTE){CKA_ID, tmp_id, sizeof tmp_id};
    priv[nk++] = (CK_ATTRIBUTE){CKA_CLASS, &c_priv, sizeof c_priv};
    priv[nk++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof kt};
    nk += tc_key_private_policy(priv + nk, kt, 0);
    priv[nk++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    priv[nk++] = (CK_ATTRIBUTE){CKA_ID, tmp_id, sizeof tmp_id};
    if (kt == CKK_RSA) {
        pub[np++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &yes, sizeof yes};
        pub[np++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
        pub[np++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, exponent, sizeof exponent};
    } else {
        pub[np++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)d->params, (CK_ULONG)d->params_len};
    }

    rv = tc_p11_generate_key_pair(m, s->h, &mech, pub, np, priv, nk, &hpub, &hpriv);
    if (rv != CKR_OK) {
        hpub = hpriv = CK_INVALID_HANDLE;
        /* The token's mechanism information saying so makes the refusal plain; otherwise the
         * token promised the type and the CK_RV is the explanation. */
        if (rv_means_unsupported(rv))
            ret = not_supported(
                ctx, s->slot, d,
                capable(ctx, s->slot, ok) == TC_OK && !ok[d - key_types] ? NULL : tc_ckr_name(rv));
        else
            ret = write_error(ctx, s, "C_GenerateKeyPair", rv);
        goto out;
    }
    generated = 1;
    if (hpub == CK_INVALID_HANDLE || hpriv == CK_INVALID_HANDLE) {
        ret = tc_error(ctx, TC_ERR_PKCS11,
                       "token '%s': C_GenerateKeyPair succeeded without returning both objects",
                       tlabel);
        goto out;
    }
    ret = check_policy(ctx, s, hpriv);
    if (ret != TC_OK)
        goto out;
    ret = tc_pubkey_read(ctx, s, hpub, tc_key_type_from_ck(kt), &pkey);
    if (ret != TC_OK)
        goto out;
    ret = tc_key_id_for(ctx, pkey, id);
    if (ret != TC_OK)
        goto out;

    rv = tc_p11_set_attribute_value(m, s->h, hpriv, &set_id, 1);
    if (rv == CKR_OK) {
        rv = tc_p11_set_attribute_value(m, s->h, hpub, &set_id, 1);
        if (rv != CKR_OK && rv_means_id_fixed(rv)) {
            /* The pair must keep one id: put the private key's back. */
            CK_ATTRIBUTE back = {CKA_ID, tmp_id, sizeof tmp_id};
            CK_RV rv2 = tc_p11_set_attribute_value(m, s->h, hpriv, &back, 1);
            if (rv2 != CKR_OK)
                rv = rv2;
        }
    }
    if (rv != CKR_OK && rv_means_id_fixed(rv)) {
        char *hex = tc_hex(tmp_id, sizeof tmp_id);
        tc_warning(ctx,
                   "token '%s' does not let CKA_ID change (%s): the key keeps the random id %s "
                   "instead of the one derived from its public key",
                   tlabel, tc_ckr_name(rv), hex != NULL ? hex : "?");
        free(hex);
        memcpy(id, tmp_id, sizeof id);
    } else if (rv != CKR_OK) {
        ret = write_error(ctx, s, "C_SetAttributeValue(CKA_ID)", rv);
        goto out;
    }
    if (id_out != NULL)
        memcpy(id_out, id, sizeof id);
    if (id_len != NULL)
        *id_len = sizeof id;
    /* Signing the request next needs no search: the session knows the key. Not remembering it
     * (out of memory) only costs that search. */
    tc_key_remember(s, hpriv, hpub, tc_key_type_from_ck(kt), id, sizeof id, label, pkey);
    pkey = NULL;
    ret = TC_OK;
out:
    if (ret != TC_OK && generated)
        discard(ctx, s, hpub, hpriv, tmp_id);
    EVP_PKEY_free(pkey);
    free(tlabel);
    return ret;
}

/* ---- public API ------------------------------------------------------------------------- */

tokencert_err tokencert_keygen(tokencert_token *t, const char *type, const char *label,
                               tokencert_keygen_result *out)
{
    return tokencert_keygen_ex(t, type, label, 0, out);
}

tokencert_err tokencert_keygen_ex(tokencert_token *t, const char *type, const char *label,
                                  unsigned flags, tokencert_keygen_result *out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tokencert_keygen_result r;
    unsigned char id[ID_LEN];
    size_t id_len = 0;

    tc_return_val_if_fail(t != NULL && out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    memset(&r, 0, sizeof r);
    if (type == NULL)
        type = TOKENCERT_KEY_TYPE_DEFAULT;
    ret = tc_keygen(t->ctx, &t->session, type, label, (flags & TOKENCERT_KEYGEN_SHARED_LABEL) != 0,
                    id, &id_len);
    if (ret != TC_OK)
        goto out;
    r.type = tc_strdup(type);
    r.label = tc_strdup(label);
    r.id = tc_hex(id, id_len);
    r.uri = tc_token_object_uri_format(t, TC_CLASS_PRIVATE_KEY, id, id_len, label);
    r.public_uri = tc_token_object_uri_format(t, TC_CLASS_PUBLIC_KEY, id, id_len, label);
    if (r.type == NULL || r.label == NULL || r.id == NULL || r.uri == NULL ||
        r.public_uri == NULL) {
        /* The key pair is on the token and complete; only the description failed. */
        ret = TC_ERR_NOMEM;
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof r);
    ret = TC_OK;
out:
    tokencert_keygen_result_clear(&r);
    return ret;
}

void tokencert_keygen_result_clear(tokencert_keygen_result *r)
{
    if (r == NULL)
        return;
    free(r->type);
    free(r->label);
    free(r->id);
    free(r->uri);
    free(r->public_uri);
    memset(r, 0, sizeof *r);
}

tokencert_err tokencert_key_types(tokencert_token *t, char ***types, size_t *n)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    int ok[N_KEY_TYPES];
    char **v = NULL;
    size_t k, count = 0;

    tc_return_val_if_fail(t != NULL && types != NULL && n != NULL, TC_ERR_INVALID_ARG);
    *types = NULL;
    *n = 0;
    ret = capable(t->ctx, &t->slot, ok);
    if (ret != TC_OK)
        goto out;
    v = calloc(N_KEY_TYPES, sizeof *v);
    if (v == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (k = 0; k < N_KEY_TYPES; k++) {
        if (!ok[k])
            continue;
        v[count] = tc_strdup(key_types[k].name);
        if (v[count++] == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
    }
    *types = v;
    *n = count;
    v = NULL;
    ret = TC_OK;
out:
    tokencert_strv_free(v, count);
    return ret;
}

void tokencert_strv_free(char **v, size_t n)
{
    size_t i;
    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
