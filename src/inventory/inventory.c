/* inventory.c — the credential inventory: every certificate and key on the matching tokens,
 * grouped into credentials (a key plus the certificates that share its CKA_ID, or its public key),
 * keys without certificate, certificates without key, and authority certificates.
 *
 * Cost model: one C_GetAttributeValue per object, searches in large batches, a shallow
 * certificate decode, and extra reads only for the few keys that need pairing by public key. */
#include "x509/x509.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#define MAX_OBJECTS       1000000
#define LABEL_DISPLAY_CAP 1024

typedef struct {
    unsigned char *id;
    size_t id_len;
    unsigned char *label;
    size_t label_len;
} raw_ident;

typedef struct {
    tokencert_cert cert;
    raw_ident ident;
    unsigned char keyhash[32];
    int has_keyhash;
    int key_index; /* index into keys, -1 when unpaired */
} cert_rec;

typedef struct {
    tokencert_key key;
    raw_ident ident;
    tc_key_type type;
    tc_object_ref pub, priv;
    int has_pub, has_priv;
    unsigned char keyhash[32];
    int has_keyhash;
    size_t n_certs;
    int matched;
} key_rec;

const char *tokencert_cert_status_name(tokencert_cert_status s)
{
    switch (s) {
    case TOKENCERT_CERT_VALID:
        return "valid";
    case TOKENCERT_CERT_EXPIRING:
        return "expiring";
    case TOKENCERT_CERT_EXPIRED:
        return "expired";
    case TOKENCERT_CERT_NOT_YET_VALID:
        return "not-yet-valid";
    case TOKENCERT_CERT_UNREADABLE:
        return "unreadable";
    }
    return "unknown";
}

const char *tokencert_cred_kind_name(tokencert_cred_kind k)
{
    switch (k) {
    case TOKENCERT_CRED_FULL:
        return "credential";
    case TOKENCERT_CRED_KEY_ONLY:
        return "key-only";
    case TOKENCERT_CRED_CERT_ONLY:
        return "certificate-only";
    case TOKENCERT_CRED_AUTHORITY:
        return "authority";
    }
    return "unknown";
}

static void raw_ident_clear(raw_ident *r)
{
    free(r->id);
    free(r->label);
    memset(r, 0, sizeof *r);
}

/* Takes over the id and label values, trimmed to their length: the read buffers are sized for
 * the largest plausible value and a listing keeps one pair per object. */
static void raw_ident_take(raw_ident *r, tc_object *o)
{
    unsigned char **src[2] = {&o->id, &o->label};
    size_t src_len[2] = {o->id_len, o->label_len};
    unsigned char **dst[2] = {&r->id, &r->label};
    size_t *dst_len[2] = {&r->id_len, &r->label_len};
    size_t i;

    for (i = 0; i < 2; i++) {
        *dst[i] = NULL;
        *dst_len[i] = 0;
        if (*src[i] != NULL) {
            unsigned char *p = realloc(*src[i], src_len[i]);
            *dst[i] = p != NULL ? p : *src[i];
            *dst_len[i] = src_len[i];
        }
        *src[i] = NULL;
    }
}

static int id_equal(const raw_ident *a, const raw_ident *b)
{
    return a->id_len > 0 && a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

/* Formats the URI of one object on the token described by token_uri_info. */
static char *object_uri(P11KitUri *uri, tc_obj_class cls, const raw_ident *ident)
{
    return tc_uri_object_format(uri, cls, ident->id, ident->id_len, ident->label, ident->label_len);
}

static int object_matches(P11KitUri *filter, tc_obj_class cls, const raw_ident *ident)
{
    return tc_uri_object_matches(filter, cls, ident->id, ident->id_len, ident->label,
                                 ident->label_len);
}

static char *ident_label(const raw_ident *r)
{
    return tc_printable(r->label != NULL ? r->label : (const unsigned char *)"", r->label_len,
                        LABEL_DISPLAY_CAP);
}

static char *ident_id(const raw_ident *r)
{
    return tc_hex(r->id != NULL ? r->id : (const unsigned char *)"", r->id_len);
}

static void set_status(tokencert_cert *c, time_t now, long long expiring_seconds)
{
    if (c->error != NULL) {
        c->status = TOKENCERT_CERT_UNREADABLE;
        return;
    }
    c->days_left = tc_days_between(now, c->not_after);
    if (now < c->not_before)
        c->status = TOKENCERT_CERT_NOT_YET_VALID;
    else if (now >= c->not_after)
        c->status = TOKENCERT_CERT_EXPIRED;
    else if ((long long)c->not_after - (long long)now < expiring_seconds)
        c->status = TOKENCERT_CERT_EXPIRING;
    else
        c->status = TOKENCERT_CERT_VALID;
}

static key_rec *find_key_by_id(key_rec *keys, size_t n, const raw_ident *id)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (id_equal(&keys[i].ident, id))
            return &keys[i];
    return NULL;
}

static tokencert_err add_cert(P11KitUri *uri, time_t now, long long expiring_seconds, tc_object *o,
                              cert_rec *r)
{
    char *why = NULL;
    tokencert_err ret;

    raw_ident_take(&r->ident, o);
    r->key_index = -1;
    r->cert.label = ident_label(&r->ident);
    r->cert.id = ident_id(&r->ident);
    r->cert.uri = object_uri(uri, TC_CLASS_CERTIFICATE, &r->ident);
    if (r->cert.label == NULL || r->cert.id == NULL || r->cert.uri == NULL)
        return TC_ERR_NOMEM;
    if (o->value == NULL) {
        r->cert.error = tc_strdup("the certificate has no readable value");
    } else {
        ret = tc_cert_decode(o->value, o->value_len, &r->cert, r->keyhash, &why);
        if (ret == TC_ERR_NOMEM)
            return ret;
        if (why != NULL)
            r->cert.error = why;
        else
            r->has_keyhash = 1;
    }
    set_status(&r->cert, now, expiring_seconds);
    return TC_OK;
}

static tokencert_err add_key(tc_object *o, key_rec **keys, size_t *n_keys, size_t *cap)
{
    raw_ident ident;
    key_rec *k;
    int priv = o->cls == TC_CLASS_PRIVATE_KEY;

    raw_ident_take(&ident, o);
    k = find_key_by_id(*keys, *n_keys, &ident);
    if (k == NULL) {
        if (*n_keys == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            key_rec *nv = realloc(*keys, nc * sizeof *nv);
            if (nv == NULL) {
                raw_ident_clear(&ident);
                return TC_ERR_NOMEM;
            }
            *keys = nv;
            *cap = nc;
        }
        k = &(*keys)[(*n_keys)++];
        memset(k, 0, sizeof *k);
        k->ident = ident;
        k->key.sensitive = -1;
        k->key.extractable = -1;
        k->type = o->key_type;
    } else {
        /* The private key's label wins: it is the one applications ask for. */
        if (priv && ident.label_len > 0) {
            free(k->ident.label);
            k->ident.label = ident.label;
            k->ident.label_len = ident.label_len;
            ident.label = NULL;
        }
        raw_ident_clear(&ident);
    }
    if (priv) {
        k->priv = o->ref;
        k->has_priv = 1;
        k->key.sensitive = o->sensitive;
        k->key.extractable = o->extractable;
    } else {
        k->pub = o->ref;
        k->has_pub = 1;
    }
    return TC_OK;
}

/* What a scan of the token's objects collects. */
typedef struct {
    P11KitUri *uri;
    time_t now;
    long long expiring_seconds;
    cert_rec *certs;
    size_t n_certs, cap_certs;
    key_rec *keys;
    size_t n_keys, cap_keys;
} scan_state;

static tokencert_err visit_object(void *data, tc_object *o)
{
    scan_state *st = data;

    if (o->cls == TC_CLASS_CERTIFICATE) {
        if (st->n_certs == st->cap_certs) {
            size_t nc = st->cap_certs ? st->cap_certs * 2 : 64;
            cert_rec *nv = realloc(st->certs, nc * sizeof *nv);
            if (nv == NULL)
                return TC_ERR_NOMEM;
            st->certs = nv;
            st->cap_certs = nc;
        }
        /* Counted even if half-filled, so that the cleanup frees what it holds. */
        memset(&st->certs[st->n_certs], 0, sizeof st->certs[0]);
        st->n_certs++;
        return add_cert(st->uri, st->now, st->expiring_seconds, o, &st->certs[st->n_certs - 1]);
    }
    return add_key(o, &st->keys, &st->n_keys, &st->cap_keys);
}

/* One search over every object the session can see and one attribute read per object: each extra
 * search costs as much as reading every object again on tokens that check their store per object
 * (SoftHSM), so certificates and keys are not searched for separately. */
static tokencert_err read_objects(tokencert_ctx *ctx, tc_session *s, P11KitUri *uri, time_t now,
                                  long long expiring_seconds, cert_rec **certs_out,
                                  size_t *n_certs_out, key_rec **keys_out, size_t *n_keys_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    scan_state st;
    size_t i;

    memset(&st, 0, sizeof st);
    st.uri = uri;
    st.now = now;
    st.expiring_seconds = expiring_seconds;
    ret = tc_objects_scan(ctx, s, MAX_OBJECTS, visit_object, &st);
    if (ret != TC_OK)
        goto out;
    if (st.certs == NULL && (st.certs = calloc(1, sizeof *st.certs)) == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    *certs_out = st.certs;
    *n_certs_out = st.n_certs;
    *keys_out = st.keys;
    *n_keys_out = st.n_keys;
    st.certs = NULL;
    st.keys = NULL;
    ret = TC_OK;
out:
    if (st.certs != NULL) {
        for (i = 0; i < st.n_certs; i++) {
            tc_cert_clear(&st.certs[i].cert);
            raw_ident_clear(&st.certs[i].ident);
        }
        free(st.certs);
    }
    if (st.keys != NULL) {
        for (i = 0; i < st.n_keys; i++)
            raw_ident_clear(&st.keys[i].ident);
        free(st.keys);
    }
    return ret;
}

/* Reads the public key material of a key that has no certificate by its id: used to pair it with
 * a certificate by public key, and for its size. */
static tokencert_err read_key_material(tokencert_ctx *ctx, tc_session *s, key_rec *k)
{
    return tc_key_material_hash(ctx, s, k->has_pub ? k->pub : k->priv, k->type, k->has_pub,
                                k->keyhash, &k->has_keyhash, &k->key.key_bits);
}

static const char *key_type_name(tc_key_type t)
{
    switch (t) {
    case TC_KEY_TYPE_RSA:
        return "rsa";
    case TC_KEY_TYPE_EC:
        return "ec";
    case TC_KEY_TYPE_EDDSA:
        return "eddsa";
    case TC_KEY_TYPE_DSA:
        return "dsa";
    case TC_KEY_TYPE_UNKNOWN:
    case TC_KEY_TYPE_OTHER:
        break;
    }
    return "unknown";
}

static int cmp_cert_by_not_after(const void *a, const void *b)
{
    const tokencert_cert *x = a, *y = b;
    if (x->not_after != y->not_after)
        return x->not_after < y->not_after ? -1 : 1;
    return strcmp(x->serial ? x->serial : "", y->serial ? y->serial : "");
}

static int cmp_cred(const void *a, const void *b)
{
    const tokencert_credential *x = a, *y = b;
    int kx = x->kind == TOKENCERT_CRED_KEY_ONLY ? 0 : (int)x->kind;
    int ky = y->kind == TOKENCERT_CRED_KEY_ONLY ? 0 : (int)y->kind;
    int c;
    if (kx != ky)
        return kx - ky;
    c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->id, y->id);
}

static void cred_clear(tokencert_credential *c)
{
    size_t i;
    free(c->name);
    free(c->id);
    if (c->key != NULL) {
        free(c->key->label);
        free(c->key->id);
        free(c->key->uri);
        free(c->key->key_type);
        free(c->key);
    }
    for (i = 0; i < c->n_certs; i++)
        tc_cert_clear(&c->certs[i]);
    free(c->certs);
}

static void token_inventory_clear(tokencert_token_inventory *t)
{
    size_t i;
    tc_token_info_clear(&t->token);
    for (i = 0; i < t->n_notes; i++)
        free(t->notes[i]);
    free(t->notes);
    for (i = 0; i < t->n_creds; i++)
        cred_clear(&t->creds[i]);
    free(t->creds);
    memset(t, 0, sizeof *t);
}

void tokencert_inventory_free(tokencert_inventory *inv)
{
    size_t i;
    if (inv == NULL)
        return;
    for (i = 0; i < inv->n_tokens; i++)
        token_inventory_clear(&inv->tokens[i]);
    free(inv->tokens);
    free(inv);
}

static int add_note(tokencert_token_inventory *t, const char *msg)
{
    char **nv = realloc(t->notes, (t->n_notes + 1) * sizeof *nv);
    if (nv == NULL)
        return -1;
    t->notes = nv;
    nv[t->n_notes] = tc_strdup(msg);
    if (nv[t->n_notes] == NULL)
        return -1;
    t->n_notes++;
    return 0;
}

static tokencert_credential *new_cred(tokencert_token_inventory *t, size_t *cap)
{
    tokencert_credential *c;
    if (t->n_creds == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        tokencert_credential *nv = realloc(t->creds, nc * sizeof *nv);
        if (nv == NULL)
            return NULL;
        t->creds = nv;
        *cap = nc;
    }
    c = &t->creds[t->n_creds++];
    memset(c, 0, sizeof *c);
    return c;
}

/* Moves a certificate record into a credential (the record's strings change owner). The array is
 * sized once for the whole run of certificates, so large tokens keep no realloc slack. */
static int cred_add_cert(tokencert_credential *c, cert_rec *r, size_t run_len)
{
    if (c->certs == NULL) {
        c->certs = malloc((run_len ? run_len : 1) * sizeof *c->certs);
        if (c->certs == NULL)
            return -1;
    }
    c->certs[c->n_certs++] = r->cert;
    memset(&r->cert, 0, sizeof r->cert);
    return 0;
}

/* Orders certificates so each key's certificates, and unpaired certificates sharing a CKA_ID, are
 * adjacent: grouping is then one pass instead of a scan per key or per certificate. */
typedef struct {
    size_t idx;
    int key_index; /* -1 sorts last */
    int single;    /* unpaired CA or empty-id certificate: never grouped */
    const raw_ident *ident;
} cert_order;

static int cmp_ident(const raw_ident *a, const raw_ident *b)
{
    if (a->id_len != b->id_len)
        return a->id_len < b->id_len ? -1 : 1;
    return a->id_len == 0 ? 0 : memcmp(a->id, b->id, a->id_len);
}

static int cmp_cert_order(const void *pa, const void *pb)
{
    const cert_order *a = pa, *b = pb;
    unsigned ka = (unsigned)a->key_index, kb = (unsigned)b->key_index; /* -1 becomes largest */
    int c;

    if (ka != kb)
        return ka < kb ? -1 : 1;
    if (a->single != b->single)
        return a->single - b->single;
    if (!a->single && (c = cmp_ident(a->ident, b->ident)) != 0)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static tokencert_err key_credential(tokencert_token_inventory *t, size_t *cap, P11KitUri *uri,
                                    P11KitUri *filter, int filtering, key_rec *k, cert_rec *certs,
                                    const cert_order *run, size_t n_run)
{
    tokencert_credential *c;
    int any_match = !filtering ||
                    (k->has_priv && object_matches(filter, TC_CLASS_PRIVATE_KEY, &k->ident)) ||
                    (k->has_pub && object_matches(filter, TC_CLASS_PUBLIC_KEY, &k->ident));
    int all_ca = n_run > 0;
    size_t j;

    for (j = 0; j < n_run; j++) {
        cert_rec *r = &certs[run[j].idx];
        any_match = any_match || object_matches(filter, TC_CLASS_CERTIFICATE, &r->ident);
        all_ca = all_ca && r->cert.is_ca;
    }
    if (!any_match)
        return TC_OK;
    c = new_cred(t, cap);
    if (c == NULL)
        return TC_ERR_NOMEM;
    c->kind = n_run == 0 ? TOKENCERT_CRED_KEY_ONLY
                         : (all_ca ? TOKENCERT_CRED_AUTHORITY : TOKENCERT_CRED_FULL);
    c->key = calloc(1, sizeof *c->key);
    if (c->key == NULL)
        return TC_ERR_NOMEM;
    *c->key = k->key;
    c->key->label = ident_label(&k->ident);
    c->key->id = ident_id(&k->ident);
    c->key->uri =
        object_uri(uri, k->has_priv ? TC_CLASS_PRIVATE_KEY : TC_CLASS_PUBLIC_KEY, &k->ident);
    c->key->has_private = k->has_priv;
    c->key->has_public = k->has_pub;
    for (j = 0; j < n_run; j++)
        if (cred_add_cert(c, &certs[run[j].idx], n_run) != 0)
            return TC_ERR_NOMEM;
    /* Key type and size: the certificate knows them without another token call. */
    if (c->n_certs > 0 && c->certs[0].key_type != NULL && k->key.key_bits == 0) {
        c->key->key_type = tc_strdup(c->certs[0].key_type);
        c->key->key_bits = c->certs[0].key_bits;
    } else {
        c->key->key_type = tc_strdup(key_type_name(k->type));
    }
    c->name =
        tc_strdup(c->key->label[0] != '\0' || c->n_certs == 0 ? c->key->label : c->certs[0].label);
    c->id = tc_strdup(c->key->id);
    if (c->key->label == NULL || c->key->id == NULL || c->key->uri == NULL ||
        c->key->key_type == NULL || c->name == NULL || c->id == NULL)
        return TC_ERR_NOMEM;
    return TC_OK;
}

/* Certificates without a key: authorities one by one, end-entity ones grouped by CKA_ID. */
static tokencert_err unpaired_credential(tokencert_token_inventory *t, size_t *cap,
                                         P11KitUri *filter, int filtering, cert_rec *certs,
                                         const cert_order *run, size_t n_run)
{
    tokencert_credential *c = NULL;
    size_t j;

    for (j = 0; j < n_run; j++) {
        cert_rec *r = &certs[run[j].idx];
        if (filtering && !object_matches(filter, TC_CLASS_CERTIFICATE, &r->ident))
            continue;
        if (c == NULL) {
            c = new_cred(t, cap);
            if (c == NULL)
                return TC_ERR_NOMEM;
            c->kind = r->cert.is_ca ? TOKENCERT_CRED_AUTHORITY : TOKENCERT_CRED_CERT_ONLY;
            c->name = tc_strdup(r->cert.label);
            c->id = tc_strdup(r->cert.id);
            if (c->name == NULL || c->id == NULL)
                return TC_ERR_NOMEM;
        }
        if (cred_add_cert(c, r, n_run) != 0)
            return TC_ERR_NOMEM;
    }
    return TC_OK;
}

static tokencert_err build_credentials(tokencert_token_inventory *t, P11KitUri *uri,
                                       P11KitUri *filter, cert_rec *certs, size_t n_certs,
                                       key_rec *keys, size_t n_keys)
{
    tokencert_err ret = TC_ERR_NOMEM;
    size_t cap = 0, i, pos = 0, k;
    int filtering = tc_uri_names_object(filter);
    cert_order *order = calloc(n_certs ? n_certs : 1, sizeof *order);

    if (order == NULL)
        goto out;
    for (i = 0; i < n_certs; i++) {
        order[i].idx = i;
        order[i].key_index = certs[i].key_index;
        order[i].single =
            certs[i].key_index < 0 && (certs[i].cert.is_ca || certs[i].ident.id_len == 0);
        order[i].ident = &certs[i].ident;
    }
    if (n_certs > 1)
        qsort(order, n_certs, sizeof *order, cmp_cert_order);
    for (k = 0; k < n_keys; k++) {
        size_t run = pos;
        while (run < n_certs && order[run].key_index == (int)k)
            run++;
        ret = key_credential(t, &cap, uri, filter, filtering, &keys[k], certs, order + pos,
                             run - pos);
        if (ret != TC_OK)
            goto out;
        pos = run;
    }
    while (pos < n_certs) {
        size_t run = pos + 1;
        while (run < n_certs && !order[pos].single && !order[run].single &&
               cmp_ident(order[pos].ident, order[run].ident) == 0)
            run++;
        ret = unpaired_credential(t, &cap, filter, filtering, certs, order + pos, run - pos);
        if (ret != TC_OK)
            goto out;
        pos = run;
    }
    for (i = 0; i < t->n_creds; i++)
        if (t->creds[i].n_certs > 1)
            qsort(t->creds[i].certs, t->creds[i].n_certs, sizeof(tokencert_cert),
                  cmp_cert_by_not_after);
    if (t->n_creds > 1)
        qsort(t->creds, t->n_creds, sizeof *t->creds, cmp_cred);
    ret = TC_OK;
out:
    free(order);
    return ret;
}

static int cmp_key_ptr(const void *pa, const void *pb)
{
    const key_rec *a = *(key_rec *const *)pa, *b = *(key_rec *const *)pb;
    return cmp_ident(&a->ident, &b->ident);
}

static int cmp_ident_key(const void *pid, const void *pk)
{
    return cmp_ident(pid, &(*(key_rec *const *)pk)->ident);
}

/* Pairs certificates with keys: by CKA_ID first (a sorted index, so large tokens stay linear in
 * practice), then by public key for what is left. */
static tokencert_err pair(tokencert_ctx *ctx, tc_session *s, cert_rec *certs, size_t n_certs,
                          key_rec *keys, size_t n_keys)
{
    tokencert_err ret = TC_ERR_NOMEM;
    size_t i, j, unpaired_certs = 0;
    key_rec **index = calloc(n_keys ? n_keys : 1, sizeof *index);

    if (index == NULL)
        goto out;
    for (i = 0; i < n_keys; i++)
        index[i] = &keys[i];
    if (n_keys > 1)
        qsort(index, n_keys, sizeof *index, cmp_key_ptr);
    for (i = 0; i < n_certs; i++) {
        key_rec **hit = NULL;
        if (certs[i].ident.id_len > 0 && n_keys > 0)
            hit = bsearch(&certs[i].ident, index, n_keys, sizeof *index, cmp_ident_key);
        if (hit != NULL) {
            certs[i].key_index = (int)(*hit - keys);
            (*hit)->n_certs++;
        } else if (certs[i].has_keyhash) {
            unpaired_certs++;
        }
    }
    for (i = 0; i < n_keys; i++) {
        if (keys[i].n_certs > 0)
            continue;
        ret = read_key_material(ctx, s, &keys[i]);
        if (ret == TC_ERR_TOKEN_ABSENT || ret == TC_ERR_NOMEM)
            goto out;
        if (!keys[i].has_keyhash || unpaired_certs == 0)
            continue;
        for (j = 0; j < n_certs; j++)
            if (certs[j].key_index < 0 && certs[j].has_keyhash &&
                memcmp(certs[j].keyhash, keys[i].keyhash, 32) == 0) {
                certs[j].key_index = (int)i;
                keys[i].n_certs++;
            }
    }
    ret = TC_OK;
out:
    free(index);
    return ret;
}

static tokencert_err inventory_token(tokencert_ctx *ctx, tc_slot *slot, P11KitUri *filter,
                                     const tokencert_login_opts *opts, time_t now,
                                     long long expiring_seconds, tokencert_token_inventory *t)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_session s;
    int open = 0;
    P11KitUri *uri = NULL;
    cert_rec *certs = NULL;
    key_rec *keys = NULL;
    size_t n_certs = 0, n_keys = 0, i;
    const char *uri_pin = p11_kit_uri_get_pin_source(filter);
    int want_login = opts != NULL && (opts->login || opts->pin_source != NULL);

    ret = tc_token_info_fill(slot, &t->token);
    if (ret != TC_OK)
        goto out;
    uri = p11_kit_uri_new();
    if (uri == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (p11_kit_uri_parse(t->token.uri, P11_KIT_URI_FOR_TOKEN, uri) != P11_KIT_URI_OK) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot re-parse a token URI");
        goto out;
    }
    ret = tc_session_open(ctx, slot, 0, &s);
    if (ret != TC_OK)
        goto out;
    open = 1;
    if (want_login || uri_pin != NULL) {
        ret = tc_session_login(ctx, &s, opts, uri_pin);
        if (ret != TC_OK)
            goto out;
        t->logged_in = 1;
    }
    ret = read_objects(ctx, &s, uri, now, expiring_seconds, &certs, &n_certs, &keys, &n_keys);
    if (ret != TC_OK)
        goto out;
    ret = pair(ctx, &s, certs, n_certs, keys, n_keys);
    if (ret != TC_OK)
        goto out;
    ret = build_credentials(t, uri, filter, certs, n_certs, keys, n_keys);
    if (ret != TC_OK)
        goto out;
    if (!t->logged_in &&
        add_note(t, "not logged in: private keys are not visible, so keys are paired through "
                    "public-key objects and a certificate shown without a key may still have "
                    "one; use --login to see everything") != 0) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = TC_OK;
out:
    for (i = 0; i < n_certs; i++) {
        tc_cert_clear(&certs[i].cert);
        raw_ident_clear(&certs[i].ident);
    }
    free(certs);
    for (i = 0; i < n_keys; i++)
        raw_ident_clear(&keys[i].ident);
    free(keys);
    if (open)
        tc_session_close(&s);
    if (uri != NULL)
        p11_kit_uri_free(uri);
    return ret;
}

static time_t inventory_now(void)
{
    return tc_now();
}

tokencert_err tokencert_inventory_load(tokencert_ctx *ctx, const char *uri_str,
                                       const tokencert_login_opts *opts, long long expiring_seconds,
                                       tokencert_inventory **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    P11KitUri *filter = NULL;
    tc_slot *slots = NULL;
    size_t n_slots = 0, i, matched = 0;
    tokencert_inventory *inv = NULL;

    tc_return_val_if_fail(ctx != NULL && out != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    ret = tc_uri_parse(ctx, uri_str, &filter);
    if (ret != TC_OK)
        goto out;
    ret = tc_slots_match(ctx, filter, &slots, &n_slots);
    if (ret != TC_OK)
        goto out;
    inv = calloc(1, sizeof *inv);
    if (inv == NULL ||
        (n_slots > 0 && (inv->tokens = calloc(n_slots, sizeof *inv->tokens)) == NULL)) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    inv->now = inventory_now();
    inv->expiring_seconds = expiring_seconds;
    for (i = 0; i < n_slots; i++) {
        tokencert_token_inventory *t = &inv->tokens[inv->n_tokens];
        /* Empty slots and uninitialised tokens (SoftHSM always offers one) hold no credentials. */
        if (!slots[i].present || !tc_slot_token_initialized(&slots[i]))
            continue;
        ret = inventory_token(ctx, &slots[i], filter, opts, inv->now, expiring_seconds, t);
        inv->n_tokens++;
        if (ret != TC_OK)
            goto out;
        matched += t->n_creds;
    }
    if (inv->n_tokens == 0) {
        ret = tc_error(ctx, TC_ERR_TOKEN_ABSENT, "%s",
                       tc_uri_names_token(filter)
                           ? "no token matching the URI is present (is it inserted?)"
                           : "no initialised token is present in any slot (is it inserted?)");
        goto out;
    }
    if (matched == 0 && tc_uri_names_object(filter)) {
        ret = tc_error(ctx, TC_ERR_NOT_FOUND, "no object on %s matches the URI",
                       inv->n_tokens == 1 ? "the token" : "any matching token");
        goto out;
    }
    *out = inv;
    inv = NULL;
    ret = TC_OK;
out:
    tokencert_inventory_free(inv);
    free(slots);
    if (filter != NULL)
        p11_kit_uri_free(filter);
    return ret;
}
