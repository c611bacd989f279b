/* filter.c — the objects tokencert-pkcs11.so hides (filter.h): one read of the token's keys and
 * certificates through the wrapped module, then the library's rule (tokencert_named_current,
 * tokencert_cert_role_at) on lightweight tokencert_cert records built from each certificate's
 * dates and SHA-256. */
#include "filter.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common.h"
#include "tokencert.h"

#define BATCH       64
#define MAX_OBJECTS 65536
#define MAX_ID      1024
#define MAX_LABEL   1024
#define MAX_VALUE   (1024 * 1024)
/* Most IDs, labels and certificates fit these, so one read per attribute set is enough. */
#define INLINE_ID    64
#define INLINE_LABEL 128
#define INLINE_VALUE 4096
#define NO_CRED      SIZE_MAX

typedef struct {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS cls;
    unsigned char *id;
    CK_ULONG id_len;
    char *label; /* NUL-terminated; NULL when the object has none */
    int judged;  /* a key or X.509 certificate the rule decides on */
    size_t cred; /* index into the credentials, NO_CRED for an unjudged object */
    size_t k;    /* certificates: index into its credential's certs */
    int shown;   /* certificates: the rule shows it */
} object;

typedef struct {
    object *o;
    size_t n;
    tokencert_credential *creds;
    int *cred_shown;                /* per credential: one of its certificates is shown */
    const tokencert_cert **current; /* per credential: its group's current certificate */
    size_t n_creds;
} view;

/* One C_GetAttributeValue; when the token answers with an attribute error or a value too long
 * for its buffer, each attribute is asked again on its own, because tokens differ on whether
 * they go on after the first one; those it still does not give are marked unavailable. */
static CK_RV get_attrs(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                       CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_ULONG want[8], i;
    CK_RV rv;

    for (i = 0; i < n && i < 8; i++)
        want[i] = t[i].ulValueLen;
    rv = f->C_GetAttributeValue(s, h, t, n);
    if (rv == CKR_OK || (rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE &&
                         rv != CKR_BUFFER_TOO_SMALL))
        return rv;
    for (i = 0; i < n && i < 8; i++) {
        t[i].ulValueLen = want[i];
        if (f->C_GetAttributeValue(s, h, &t[i], 1) != CKR_OK)
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
    }
    return CKR_OK;
}

/* Every object the session can see, in a batched search that is always finished. */
static CK_RV find_all(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE **out,
                      size_t *n_out)
{
    CK_OBJECT_HANDLE *all = NULL, *grown;
    size_t n = 0, cap = 0;
    CK_ULONG got;
    CK_RV rv, rv_final;

    *out = NULL;
    *n_out = 0;
    rv = f->C_FindObjectsInit(s, NULL, 0);
    if (rv != CKR_OK)
        return rv;
    for (;;) {
        if (n + BATCH > cap) {
            if (cap >= MAX_OBJECTS) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            cap = cap == 0 ? 4 * BATCH : 2 * cap;
            grown = realloc(all, cap * sizeof *all);
            if (grown == NULL) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            all = grown;
        }
        got = 0;
        rv = f->C_FindObjects(s, all + n, BATCH, &got);
        if (rv != CKR_OK || got == 0)
            break;
        n += got > BATCH ? BATCH : got;
    }
    rv_final = f->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv_final;
    if (rv != CKR_OK) {
        free(all);
        return rv;
    }
    *out = all;
    *n_out = n;
    return CKR_OK;
}

static void cert_parse(const unsigned char *der, size_t len, tokencert_cert *c)
{
    const unsigned char *p = der;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    struct tm nb, na;
    X509 *x;

    c->status = TOKENCERT_CERT_UNREADABLE;
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || p != der + len)
        goto out;
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &nb) != 1 ||
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &na) != 1)
        goto out;
    if (X509_digest(x, EVP_sha256(), md, &md_len) != 1 || md_len != 32)
        goto out;
    c->not_before = timegm(&nb);
    c->not_after = timegm(&na);
    tc_hex_upper(md, md_len, ':', c->sha256);
    c->status = TOKENCERT_CERT_VALID;
out:
    X509_free(x);
}

/* Reads attribute type of object h whose value did not fit the first, inline, read: its length,
 * then its value into *out (allocated with one spare byte, zeroed), *len its length. *out stays
 * NULL when the token does not give it or it is longer than cap. */
static CK_RV read_long(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                       CK_ATTRIBUTE_TYPE type, CK_ULONG cap, unsigned char **out, CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    unsigned char *p;
    CK_RV rv;

    *out = NULL;
    *len = 0;
    rv = f->C_GetAttributeValue(s, h, &a, 1);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > cap)
        return rv == CKR_HOST_MEMORY || rv == CKR_DEVICE_REMOVED ? rv : CKR_OK;
    p = calloc(1, a.ulValueLen + 1);
    if (p == NULL)
        return CKR_HOST_MEMORY;
    a.pValue = p;
    rv = f->C_GetAttributeValue(s, h, &a, 1);
    if (rv != CKR_OK) {
        free(p);
        return rv == CKR_HOST_MEMORY || rv == CKR_DEVICE_REMOVED ? rv : CKR_OK;
    }
    *out = p;
    *len = a.ulValueLen;
    return CKR_OK;
}

/* Copies an attribute read inline into a new buffer with a spare NUL; NULL when unavailable. */
static CK_RV take(const CK_ATTRIBUTE *a, unsigned char **out, CK_ULONG *len)
{
    *out = NULL;
    *len = 0;
    if (a->ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return CKR_OK;
    *out = calloc(1, a->ulValueLen + 1);
    if (*out == NULL)
        return CKR_HOST_MEMORY;
    memcpy(*out, a->pValue, a->ulValueLen);
    *len = a->ulValueLen;
    return CKR_OK;
}

/* Reads what the rule needs of object o->h: one C_GetAttributeValue for a key, two for a
 * certificate, as long as the values fit the inline buffers (longer ones cost two more calls
 * each). An object it cannot read stays unjudged (shown): the filter hides only what it has a
 * reason to hide. */
static CK_RV object_read(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, object *o, tokencert_cert *cert)
{
    CK_CERTIFICATE_TYPE ctype = (CK_CERTIFICATE_TYPE)-1;
    CK_ULONG category = 0, value_len = 0, label_len = 0;
    unsigned char id_buf[INLINE_ID], label_buf[INLINE_LABEL];
    unsigned char *value = NULL, *label = NULL;
    CK_ATTRIBUTE a1[3] = {
        {CKA_CLASS, &o->cls, sizeof o->cls},
        {CKA_ID, id_buf, sizeof id_buf},
        {CKA_LABEL, label_buf, sizeof label_buf},
    };
    CK_ATTRIBUTE a2[3] = {
        {CKA_CERTIFICATE_TYPE, &ctype, sizeof ctype},
        {CKA_CERTIFICATE_CATEGORY, &category, sizeof category},
        {CKA_VALUE, NULL, INLINE_VALUE},
    };
    CK_RV rv;

    rv = get_attrs(f, s, o->h, a1, 3);
    if (rv != CKR_OK)
        return rv == CKR_OBJECT_HANDLE_INVALID ? CKR_OK : rv; /* deleted meanwhile */
    if (a1[0].ulValueLen != sizeof o->cls ||
        (o->cls != CKO_CERTIFICATE && o->cls != CKO_PRIVATE_KEY && o->cls != CKO_PUBLIC_KEY))
        return CKR_OK;
    rv = a1[1].ulValueLen != CK_UNAVAILABLE_INFORMATION
             ? take(&a1[1], &o->id, &o->id_len)
             : read_long(f, s, o->h, CKA_ID, MAX_ID, &o->id, &o->id_len);
    if (rv == CKR_OK)
        rv = a1[2].ulValueLen != CK_UNAVAILABLE_INFORMATION
                 ? take(&a1[2], &label, &label_len)
                 : read_long(f, s, o->h, CKA_LABEL, MAX_LABEL, &label, &label_len);
    o->label = (char *)label;
    if (rv != CKR_OK || o->id == NULL)
        return rv;
    if (o->cls != CKO_CERTIFICATE) {
        o->judged = 1;
        return CKR_OK;
    }
    value = malloc(INLINE_VALUE);
    if (value == NULL)
        return CKR_HOST_MEMORY;
    a2[2].pValue = value;
    rv = get_attrs(f, s, o->h, a2, 3);
    if (rv != CKR_OK)
        goto out;
    /* Authorities stay visible whatever their dates: applications build chains from them. */
    if (a2[0].ulValueLen != sizeof ctype || ctype != CKC_X_509 ||
        (a2[1].ulValueLen == sizeof category && category == 2))
        goto out;
    value_len = a2[2].ulValueLen;
    if (value_len == CK_UNAVAILABLE_INFORMATION) {
        free(value);
        rv = read_long(f, s, o->h, CKA_VALUE, MAX_VALUE, &value, &value_len);
        if (rv != CKR_OK)
            goto out;
    }
    memset(cert, 0, sizeof *cert);
    cert->status = TOKENCERT_CERT_UNREADABLE;
    if (value != NULL && value_len > 0)
        cert_parse(value, value_len, cert);
    o->judged = 1;
out:
    free(value);
    return rv == CKR_OBJECT_HANDLE_INVALID ? CKR_OK : rv;
}

static size_t cred_find(const view *v, const object *o)
{
    size_t i;

    for (i = 0; i < v->n; i++) {
        const object *k = &v->o[i];
        if (k->judged && k->cls != CKO_CERTIFICATE && k->cred != NO_CRED &&
            k->id_len == o->id_len && memcmp(k->id, o->id, o->id_len) == 0)
            return k->cred;
    }
    return NO_CRED;
}

static void view_free(view *v)
{
    size_t i;

    for (i = 0; i < v->n; i++) {
        free(v->o[i].id);
        free(v->o[i].label);
    }
    for (i = 0; i < v->n_creds; i++)
        free(v->creds[i].certs);
    free(v->o);
    free(v->creds);
    free(v->cred_shown);
    free(v->current);
}

static int handle_cmp(const void *a, const void *b)
{
    CK_OBJECT_HANDLE x = *(const CK_OBJECT_HANDLE *)a, y = *(const CK_OBJECT_HANDLE *)b;

    return x < y ? -1 : x > y;
}

/* Groups the judged objects into credentials: one per CKA_ID that a key carries, named by its
 * private key's label (else its public key's, else its first certificate's). */
static CK_RV group(view *v, tokencert_cert *certs)
{
    size_t i, c;

    v->creds = calloc(v->n + 1, sizeof *v->creds);
    v->cred_shown = calloc(v->n + 1, sizeof *v->cred_shown);
    v->current = calloc(v->n + 1, sizeof *v->current);
    if (v->creds == NULL || v->cred_shown == NULL || v->current == NULL)
        return CKR_HOST_MEMORY;
    for (i = 0; i < v->n; i++) {
        object *o = &v->o[i];
        if (!o->judged || o->cls == CKO_CERTIFICATE)
            continue;
        c = cred_find(v, o);
        if (c == NO_CRED) {
            c = v->n_creds++;
            v->creds[c].kind = TOKENCERT_CRED_KEY_ONLY;
        }
        o->cred = c;
        if (o->label != NULL && o->label[0] != '\0' &&
            (v->creds[c].name == NULL || o->cls == CKO_PRIVATE_KEY))
            v->creds[c].name = o->label;
    }
    for (i = 0; i < v->n; i++) {
        object *o = &v->o[i];
        if (!o->judged || o->cls != CKO_CERTIFICATE)
            continue;
        c = cred_find(v, o);
        if (c == NO_CRED)
            continue; /* no key on the token: shown, like an authority */
        o->cred = c;
        o->k = v->creds[c].n_certs++;
        v->creds[c].kind = TOKENCERT_CRED_FULL;
        if (v->creds[c].name == NULL && o->label != NULL && o->label[0] != '\0')
            v->creds[c].name = o->label;
    }
    for (c = 0; c < v->n_creds; c++) {
        if (v->creds[c].n_certs == 0)
            continue;
        v->creds[c].certs = calloc(v->creds[c].n_certs, sizeof *v->creds[c].certs);
        if (v->creds[c].certs == NULL)
            return CKR_HOST_MEMORY;
    }
    for (i = 0; i < v->n; i++) {
        object *o = &v->o[i];
        if (o->cls == CKO_CERTIFICATE && o->cred != NO_CRED)
            v->creds[o->cred].certs[o->k] = certs[i];
    }
    return CKR_OK;
}

CK_RV tc_filter_hidden(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, tc_p11cfg_show show, time_t now,
                       tc_filter_set *hidden)
{
    CK_OBJECT_HANDLE *all = NULL;
    tokencert_cert *certs = NULL;
    tokencert_token_inventory inv;
    view v;
    tokencert_cert_role role;
    size_t i, n = 0, n_hidden = 0;
    CK_RV rv;

    memset(&v, 0, sizeof v);
    hidden->h = NULL;
    hidden->n = 0;
    rv = find_all(f, s, &all, &n);
    if (rv != CKR_OK)
        goto out;
    v.o = calloc(n + 1, sizeof *v.o);
    certs = calloc(n + 1, sizeof *certs);
    if (v.o == NULL || certs == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (i = 0; i < n; i++) {
        v.o[i].h = all[i];
        v.o[i].cred = NO_CRED;
        v.n = i + 1;
        rv = object_read(f, s, &v.o[i], &certs[i]);
        if (rv != CKR_OK)
            goto out;
    }
    rv = group(&v, certs);
    if (rv != CKR_OK)
        goto out;

    memset(&inv, 0, sizeof inv);
    inv.creds = v.creds;
    inv.n_creds = v.n_creds;
    for (i = 0; i < v.n_creds; i++) {
        const tokencert_credential *c = &v.creds[i];
        v.current[i] = c->name != NULL ? tokencert_named_current(&inv, c->name, now)
                                       : tokencert_credential_current(c, now);
    }
    /* A certificate is shown by its role; a key when a certificate of its credential is. */
    for (i = 0; i < v.n; i++) {
        object *o = &v.o[i];
        if (o->cls != CKO_CERTIFICATE || o->cred == NO_CRED)
            continue;
        role = tokencert_cert_role_at(&v.creds[o->cred].certs[o->k], v.current[o->cred], now);
        o->shown = role == TOKENCERT_ROLE_CURRENT ||
                   (show == TC_P11CFG_SHOW_VALID && role == TOKENCERT_ROLE_SUPERSEDED);
        v.cred_shown[o->cred] |= o->shown;
    }
    /* all[] is reused for the hidden handles: never more than were found. */
    for (i = 0; i < v.n; i++) {
        const object *o = &v.o[i];
        if (o->cred == NO_CRED)
            continue;
        if (o->cls == CKO_CERTIFICATE ? !o->shown : !v.cred_shown[o->cred])
            all[n_hidden++] = o->h;
    }
    qsort(all, n_hidden, sizeof *all, handle_cmp);
    hidden->h = all;
    hidden->n = n_hidden;
    all = NULL;
    rv = CKR_OK;
out:
    view_free(&v);
    free(certs);
    free(all);
    return rv;
}

int tc_filter_contains(const tc_filter_set *set, CK_OBJECT_HANDLE h)
{
    return set->n > 0 && bsearch(&h, set->h, set->n, sizeof *set->h, handle_cmp) != NULL;
}

void tc_filter_set_free(tc_filter_set *set)
{
    free(set->h);
    set->h = NULL;
    set->n = 0;
}
