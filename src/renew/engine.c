/* engine.c — the lifecycle engine: configured and enrolled credentials, what is due, and the
 * steps of a renewal — key, request, CA, verification, installation, switch-over — each recorded
 * in the state store before and after it touches the token or the CA, so that a run killed at
 * any point is continued (or cleaned up) by the next one. The token's objects are the truth about
 * what exists; every run reconciles the store with them. It prints nothing: what it does goes to
 * the caller's sink as events (say, complain, tokencert_engine_log). */
#include "renew/renew.h"
#include "keys/keys.h"
#include "enroll/enroll.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common.h"

static void cache_free(struct lc_cache *k);
static tokencert_err records_flush(lc *l);

/* ---- small helpers ---------------------------------------------------------------------- */

static void emit(lc *l, tokencert_event_kind kind, const char *cred, const char *event,
                 const char *result, const char *message)
{
    tokencert_event ev;
    if (l->on_event == NULL)
        return;
    ev.kind = kind;
    ev.credential = cred;
    ev.event = event;
    ev.result = result;
    ev.message = message != NULL ? message : "";
    l->on_event(l->event_data, &ev);
}

/* A line for the user, for the credential being worked on: what was done (PROGRESS), what failed
 * or waits (PROBLEM), or a step that may take seconds beginning (WORKING: for a progress line the
 * caller shows on a terminal). */
static void tell(lc *l, tokencert_event_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tell(lc *l, tokencert_event_kind kind, const char *fmt, ...)
{
    va_list ap;
    char *m;
    va_start(ap, fmt);
    m = tc_vasprintf(fmt, ap);
    va_end(ap);
    emit(l, kind, l->current, NULL, NULL, m);
    free(m);
}

#define say(l, ...)      tell(l, TOKENCERT_EV_PROGRESS, __VA_ARGS__)
#define complain(l, ...) tell(l, TOKENCERT_EV_PROBLEM, __VA_ARGS__)
#define working(l, ...)  tell(l, TOKENCERT_EV_WORKING, __VA_ARGS__)

/* The warnings ctx collected, each a PROBLEM line. */
static void warnings(lc *l, tokencert_ctx *ctx)
{
    size_t i, n = tokencert_ctx_warning_count(ctx);
    for (i = 0; i < n; i++)
        complain(l, "warning: %s", tokencert_ctx_warning(ctx, i));
}

/* The warnings ctx collected, then "what: detail"; returns err. */
static tokencert_err fail(lc *l, tokencert_ctx *ctx, tokencert_err err, const char *what)
{
    warnings(l, ctx);
    complain(l, "%s: %s", what, tokencert_ctx_error(ctx));
    return err;
}

static void ctx_notice(void *data, const char *message)
{
    lc *l = data;
    complain(l, "%s", message);
}

static tokencert_err new_ctx(lc *l, tokencert_ctx **out)
{
    tokencert_err err = tokencert_ctx_new(out);
    if (err != TC_OK) {
        complain(l, "%s", tokencert_strerror(err));
        return err;
    }
    tokencert_ctx_set_notice(*out, ctx_notice, l);
    return TC_OK;
}

void tokencert_engine_log(lc *l, const char *cred, const char *event, const char *result,
                          const char *fmt, ...)
{
    va_list ap;
    char *detail;

    va_start(ap, fmt);
    detail = tc_vasprintf(fmt, ap);
    va_end(ap);
    if (l->st != NULL && !l->dry_run &&
        tokencert_state_log(l->st, cred, event, result, detail) != TC_OK)
        complain(l, "recording '%s' in the history failed: %s", event, tokencert_ctx_error(l->ctx));
    emit(l, TOKENCERT_EV_RECORDED, cred, event, result, detail);
    free(detail);
}

static char *xstrdup(const char *s)
{
    return s != NULL ? tc_strdup(s) : NULL;
}

static void cred_clear(lc_cred *c)
{
    size_t i;
    free(c->name);
    free(c->token_uri);
    free(c->module);
    free(c->label);
    free(c->ca);
    free(c->ca_protocol);
    free(c->ca_dir);
    free(c->ca_issuer);
    free(c->subject);
    for (i = 0; i < c->n_san; i++)
        free(c->san[i]);
    free(c->san);
    free(c->key_type);
    free(c->pin_source);
    memset(c, 0, sizeof *c);
}

static tokencert_err cred_set_ca(lc *l, lc_cred *c, const char *name, const char *state_dir_hint)
{
    const tokencert_config_ca *ca = l->cfg != NULL ? tokencert_config_find_ca(l->cfg, name) : NULL;

    c->ca = xstrdup(name);
    if (ca == NULL) {
        if (strcmp(name, "local") != 0) {
            complain(l, "credential '%s': unknown CA '%s'", c->name, name);
            return TC_ERR_BAD_DATA;
        }
        c->ca_protocol = tc_strdup("local");
        c->ca_dir = state_dir_hint != NULL ? tc_strdup(state_dir_hint) : tokencert_ca_default_dir();
        return TC_OK;
    }
    c->ca_protocol = xstrdup(ca->protocol);
    c->ca_dir = ca->dir != NULL                      ? tc_strdup(ca->dir)
                : strcmp(ca->protocol, "local") == 0 ? tokencert_ca_default_dir()
                                                     : NULL;
    c->ca_issuer = xstrdup(ca->issuer);
    c->ca_manual = ca->manual_approval;
    c->approval_time = ca->approval_time;
    return TC_OK;
}

static tokencert_err creds_load(lc *l)
{
    tokencert_state_credential *sc = NULL;
    size_t n_sc = 0, i, j, n_cfg = l->cfg != NULL ? l->cfg->n_creds : 0;
    tokencert_err code;

    if (l->st != NULL && tokencert_state_credentials(l->st, &sc, &n_sc) != TC_OK)
        return fail(l, l->ctx, TC_ERR_IO, "reading the state store");
    l->creds = calloc(n_cfg + n_sc + 1, sizeof *l->creds);
    if (l->creds == NULL)
        return TC_ERR_NOMEM;
    for (i = 0; i < n_cfg; i++) {
        const tokencert_config_credential *k = &l->cfg->creds[i];
        lc_cred *c = &l->creds[l->n_creds++];
        const char *enrolled_dir = NULL;
        for (j = 0; j < n_sc; j++)
            if (strcmp(sc[j].name, k->name) == 0)
                enrolled_dir = sc[j].ca_dir;
        c->configured = 1;
        c->name = xstrdup(k->name);
        c->token_uri = xstrdup(k->token);
        c->module = xstrdup(k->module);
        c->label = xstrdup(k->label != NULL ? k->label : k->name);
        c->subject = xstrdup(k->subject);
        c->san_set = k->san_set;
        if (k->n_san > 0) {
            c->san = calloc(k->n_san, sizeof *c->san);
            for (j = 0; c->san != NULL && j < k->n_san; j++)
                c->san[c->n_san++] = xstrdup(k->san[j]);
        }
        c->key_type = xstrdup(k->key_type);
        c->renew_before = k->renew_before >= 0 ? k->renew_before : l->cfg->renew_before;
        c->renew_fraction = k->renew_fraction >= 0 ? k->renew_fraction : l->cfg->renew_fraction;
        c->reuse_key = k->reuse_key;
        c->pin_source = xstrdup(k->pin_source);
        c->hook_before = k->hook_before_renewal;
        c->hook_after = k->hook_after_renewal;
        c->hook_expiring = k->hook_expiring;
        c->hook_failure = k->hook_failure;
        code = cred_set_ca(l, c, k->ca != NULL ? k->ca : "local", enrolled_dir);
        if (code != TC_OK)
            goto out;
    }
    for (i = 0; i < n_sc; i++) {
        lc_cred *c;
        int dup = 0;
        for (j = 0; j < n_cfg; j++)
            dup |= strcmp(l->cfg->creds[j].name, sc[i].name) == 0;
        if (dup)
            continue;
        c = &l->creds[l->n_creds++];
        c->name = xstrdup(sc[i].name);
        c->token_uri = xstrdup(sc[i].token_uri);
        c->module = xstrdup(sc[i].module);
        c->label = xstrdup(sc[i].label != NULL ? sc[i].label : sc[i].name);
        c->renew_before = l->cfg != NULL ? l->cfg->renew_before : 30 * 86400LL;
        c->renew_fraction = l->cfg != NULL ? l->cfg->renew_fraction : 0.1;
        code = cred_set_ca(l, c, sc[i].ca != NULL ? sc[i].ca : "local", sc[i].ca_dir);
        if (code != TC_OK)
            goto out;
    }
    code = TC_OK;
out:
    tokencert_state_credentials_free(sc, n_sc);
    return code;
}

static tokencert_err engine_open(lc *l, int create, int lock);

tokencert_err tokencert_engine_open(tokencert_config *cfg, const tokencert_engine_opts *opts,
                                    unsigned flags, tokencert_engine **out)
{
    tokencert_err err;
    int create = (flags & TOKENCERT_ENGINE_CREATE) != 0,
        lock = (flags & TOKENCERT_ENGINE_LOCK) != 0;
    lc *l;

    *out = NULL;
    l = calloc(1, sizeof *l);
    if (l == NULL || cfg == NULL || opts == NULL) {
        free(l);
        tokencert_config_free(cfg);
        return l == NULL ? TC_ERR_NOMEM : TC_ERR_INVALID_ARG;
    }
    l->cfg = cfg;
    l->state_dir = opts->state_dir;
    l->module = opts->module;
    l->login = opts->login;
    l->dry_run = opts->dry_run;
    l->key_policy = opts->key_policy;
    l->wait_seconds = opts->wait_seconds;
    l->quiet = opts->quiet;
    l->on_event = opts->on_event;
    l->event_data = opts->event_data;
    l->snapshot = 1;
    l->gen_mark = -1;
    l->started = tc_now();
    err = engine_open(l, create, lock);
    if (err != TC_OK) {
        tokencert_engine_close(l);
        return err;
    }
    *out = l;
    return TC_OK;
}

static tokencert_err engine_open(lc *l, int create, int lock)
{
    const char *env_dir;
    char *dir;
    tokencert_err err;
    size_t i;

    err = new_ctx(l, &l->ctx);
    if (err != TC_OK)
        return err;
    /* The run's state directory, then TOKENCERT_STATE_DIR, then the configuration, then the
     * default. */
    env_dir = getenv("TOKENCERT_STATE_DIR");
    if (l->state_dir != NULL)
        dir = tc_strdup(l->state_dir);
    else if ((env_dir == NULL || env_dir[0] == '\0') && l->cfg->state_dir != NULL)
        dir = tc_strdup(l->cfg->state_dir);
    else
        dir = tokencert_state_default_dir();
    if (dir == NULL) {
        complain(l, "no state directory: set HOME, XDG_STATE_HOME or --state-dir");
        return TC_ERR_INVALID_ARG;
    }
    err = tokencert_state_open(l->ctx, dir, create, &l->st);
    free(dir);
    if (err == TC_ERR_NOT_FOUND && !create)
        l->st = NULL;
    else if (err != TC_OK)
        return fail(l, l->ctx, err, "the state store");
    if (l->st != NULL) {
        tokencert_state_generation *g = NULL;
        size_t n = 0;
        if (tokencert_state_generations(l->st, NULL, 1, &g, &n) == TC_OK) {
            l->gen_mark = 0;
            for (i = 0; i < n; i++)
                if (g[i].id > l->gen_mark)
                    l->gen_mark = g[i].id;
        }
        tokencert_state_generations_free(g, n);
    }
    if (lock && l->st != NULL) {
        err = tokencert_state_lock(l->st, l->wait_seconds);
        if (err != TC_OK) {
            complain(l, "%s", tokencert_ctx_error(l->ctx));
            return TC_ERR_IO;
        }
        l->locked = 1;
    }
    return creds_load(l);
}

tokencert_err tokencert_engine_flush(tokencert_engine *l)
{
    return l != NULL ? records_flush(l) : TC_OK;
}

void tokencert_engine_close(tokencert_engine *l)
{
    size_t i;
    if (l == NULL)
        return;
    records_flush(l); /* what tokencert_engine_flush() was not called for; its failure is said */
    cache_free(l->cache);
    for (i = 0; i < l->n_creds; i++)
        cred_clear(&l->creds[i]);
    free(l->creds);
    tokencert_state_close(l->st);
    tokencert_config_free(l->cfg);
    tokencert_ctx_free(l->ctx);
    free(l);
}

size_t tokencert_engine_count(const tokencert_engine *l)
{
    return l != NULL ? l->n_creds : 0;
}

const tokencert_engine_credential *tokencert_engine_credential_at(const tokencert_engine *l,
                                                                  size_t i)
{
    return l != NULL && i < l->n_creds ? &l->creds[i] : NULL;
}

tokencert_err tokencert_engine_find(const tokencert_engine *l, const char *name, size_t *index)
{
    size_t i;
    for (i = 0; l != NULL && name != NULL && i < l->n_creds; i++)
        if (strcmp(l->creds[i].name, name) == 0) {
            *index = i;
            return TC_OK;
        }
    return TC_ERR_NOT_FOUND;
}

tokencert_err tokencert_engine_records(tokencert_engine *l, const char *credential, unsigned what,
                                       tokencert_records *out)
{
    tokencert_err err;
    if (l == NULL || out == NULL)
        return TC_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (l->st == NULL)
        return TC_OK;
    err = tc_records_of(l->st, credential, what, out);
    if (err != TC_OK)
        complain(l, "reading the state store: %s", tokencert_ctx_error(l->ctx));
    return err;
}

int tokencert_engine_has_store(const tokencert_engine *l)
{
    return l != NULL && l->st != NULL;
}

time_t lc_due_at(const lc_cred *c, time_t not_before, time_t not_after)
{
    /* The library's one rule; the credential's settings are its policy. */
    const tokencert_renewal_policy p = {
        c->renew_before, c->renew_fraction > 0 ? c->renew_fraction : 0, c->approval_time};
    return tokencert_due_at(&p, not_before, not_after);
}

/* ---- what a run shares across its credentials ------------------------------------------ */

/* A run touches each token once, however many credentials live on it: each module is loaded
 * once, each token read once (all its objects, without logging in; each credential then picks its
 * label out of that in memory) and opened read-write and logged in to at most once, only when a
 * credential needs its key. A failure is remembered as well, so that the credentials after the
 * first are told the same without asking the token (or its PIN source) again: a PIN the token
 * rejected is never tried twice, and a one-shot PIN source (fd:N) is read once. */
typedef struct {
    char *module; /* NULL: the registry */
    tokencert_ctx *ctx;
    tokencert_err err; /* of loading */
    char *error;       /* its detail, said again to the credentials after the first */
} lc_module;

/* Where a label occurs in a reading: the credential creds[cred] of tokens[token]. */
typedef struct {
    const char *label;
    size_t token, cred;
} lc_label_at;

typedef struct {
    tokencert_ctx *ctx; /* the module's */
    char *token_uri;    /* as the credential names it */
    tokencert_inventory *inv;
    lc_label_at *index; /* every label in inv, sorted: each credential finds its own in O(log N) */
    size_t n_index;
    tokencert_err err;
    char *error;
    char **written; /* labels whose objects this run changed since inv was read */
    size_t n_written;
} lc_scan;

typedef struct {
    tokencert_ctx *ctx;
    char *token_uri; /* as the credential that opened it names it */
    char *serial;    /* NULL when opening failed */
    tokencert_token *t;
    tokencert_err err;  /* of opening */
    tokencert_err code; /* TC_OK, else what opening (or locking) it gave */
    char *error;
    char *
        *anchors; /* directories of the local CAs whose certificate this run put (or found) on it */
    size_t n_anchors;
} lc_opened;

/* A result written at the end of the run (see cred_record()). */
typedef struct {
    const lc_cred *c;
    char *serial;
    time_t when;
} lc_record;

/* The store as it was when a read-only run (status) first asked: one query per table for the run
 * instead of several per credential. */
typedef struct {
    int loaded;
    int failed;     /* given up: everything is read from the store */
    char **written; /* credentials this run wrote: read from the store again, not from here */
    size_t n_written;
    tokencert_state_generation *gens; /* pruned left out */
    size_t n_gens;
    tokencert_state_request *rqs;
    size_t n_rqs;
    tokencert_state_credential *creds;
    size_t n_creds;
} lc_snapshot;

struct lc_cache {
    lc_snapshot snap;
    lc_record *records;
    size_t n_records;
    lc_module **mods;
    size_t n_mods;
    lc_scan **scans;
    size_t n_scans;
    lc_opened **toks;
    size_t n_toks;
};

static int same_str(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Appends p to the array *v of *n pointers; 0, or -1 when out of memory (p not taken). */
static int ptr_push(void *vp, size_t *n, void *p)
{
    void ***v = vp;
    void **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (nv == NULL)
        return -1;
    nv[(*n)++] = p;
    *v = nv;
    return 0;
}

static void cache_free(struct lc_cache *k)
{
    size_t i, j;
    if (k == NULL)
        return;
    /* Tokens and inventories first: they belong to the modules' contexts. */
    for (i = 0; i < k->n_toks; i++) {
        tokencert_token_close(k->toks[i]->t);
        free(k->toks[i]->token_uri);
        free(k->toks[i]->serial);
        free(k->toks[i]->error);
        for (j = 0; j < k->toks[i]->n_anchors; j++)
            free(k->toks[i]->anchors[j]);
        free(k->toks[i]->anchors);
        free(k->toks[i]);
    }
    for (i = 0; i < k->n_scans; i++) {
        free(k->scans[i]->index);
        tokencert_inventory_free(k->scans[i]->inv);
        free(k->scans[i]->token_uri);
        free(k->scans[i]->error);
        for (j = 0; j < k->scans[i]->n_written; j++)
            free(k->scans[i]->written[j]);
        free(k->scans[i]->written);
        free(k->scans[i]);
    }
    for (i = 0; i < k->n_mods; i++) {
        tokencert_ctx_free(k->mods[i]->ctx);
        free(k->mods[i]->module);
        free(k->mods[i]->error);
        free(k->mods[i]);
    }
    for (i = 0; i < k->snap.n_written; i++)
        free(k->snap.written[i]);
    free(k->snap.written);
    tokencert_state_generations_free(k->snap.gens, k->snap.n_gens);
    tokencert_state_requests_free(k->snap.rqs, k->snap.n_rqs);
    tokencert_state_credentials_free(k->snap.creds, k->snap.n_creds);
    for (i = 0; i < k->n_records; i++)
        free(k->records[i].serial);
    free(k->records);
    free(k->toks);
    free(k->scans);
    free(k->mods);
    free(k);
}

/* Says what failed, as fail() does, with a detail kept from the first time. */
static tokencert_err fail_again(lc *l, tokencert_ctx *ctx, tokencert_err err, const char *what,
                                const char *detail)
{
    warnings(l, ctx);
    complain(l, "%s: %s", what,
             detail != NULL && detail[0] != '\0' ? detail : tokencert_strerror(err));
    return err;
}

/* The context of module (NULL: the registry), loaded once per run. */
static tokencert_err cache_module(lc *l, const char *module, tokencert_ctx **out)
{
    lc_module *m = NULL;
    size_t i;
    tokencert_err code;

    *out = NULL;
    if (l->cache == NULL && (l->cache = calloc(1, sizeof *l->cache)) == NULL)
        return fail(l, l->ctx, TC_ERR_NOMEM, "loading modules");
    for (i = 0; i < l->cache->n_mods && m == NULL; i++)
        if (same_str(l->cache->mods[i]->module, module))
            m = l->cache->mods[i];
    if (m == NULL) {
        m = calloc(1, sizeof *m);
        if (m == NULL || (module != NULL && (m->module = tc_strdup(module)) == NULL) ||
            ptr_push(&l->cache->mods, &l->cache->n_mods, m) != 0) {
            if (m != NULL)
                free(m->module);
            free(m);
            return fail(l, l->ctx, TC_ERR_NOMEM, "loading modules");
        }
        code = new_ctx(l, &m->ctx);
        if (code != TC_OK) {
            m->err = TC_ERR_NOMEM;
            return code;
        }
        m->err = tokencert_load_modules(m->ctx, module);
        if (m->err != TC_OK)
            m->error = xstrdup(tokencert_ctx_error(m->ctx));
    }
    if (m->ctx == NULL)
        return TC_ERR_NOMEM;
    if (m->err != TC_OK)
        return fail_again(l, m->ctx, m->err, "loading modules", m->error);
    *out = m->ctx;
    return TC_OK;
}

static int scan_written(const lc_scan *s, const char *label)
{
    size_t i;
    for (i = 0; i < s->n_written; i++)
        if (strcmp(s->written[i], label) == 0)
            return 1;
    return 0;
}

static int cmp_label_at(const void *pa, const void *pb)
{
    const lc_label_at *a = pa, *b = pb;
    int c = strcmp(a->label, b->label);
    if (c != 0)
        return c;
    if (a->token != b->token)
        return a->token < b->token ? -1 : 1;
    return a->cred < b->cred ? -1 : a->cred > b->cred;
}

/* Indexes the reading by label: the key's label and every certificate's, per credential. */
static tokencert_err scan_index(lc_scan *s)
{
    size_t i, j, k, n = 0;
    const tokencert_inventory *inv = s->inv;

    for (i = 0; i < inv->n_tokens; i++)
        for (j = 0; j < inv->tokens[i].n_creds; j++)
            n += 1 + inv->tokens[i].creds[j].n_certs;
    s->index = calloc(n > 0 ? n : 1, sizeof *s->index);
    if (s->index == NULL)
        return TC_ERR_NOMEM;
    for (i = 0; i < inv->n_tokens; i++)
        for (j = 0; j < inv->tokens[i].n_creds; j++) {
            const tokencert_credential *c = &inv->tokens[i].creds[j];
            if (c->key != NULL && c->key->label != NULL)
                s->index[s->n_index++] = (lc_label_at){c->key->label, i, j};
            for (k = 0; k < c->n_certs; k++)
                if (c->certs[k].label != NULL)
                    s->index[s->n_index++] = (lc_label_at){c->certs[k].label, i, j};
        }
    if (s->n_index > 1)
        qsort(s->index, s->n_index, sizeof *s->index, cmp_label_at);
    return TC_OK;
}

/* Everything on the tokens token_uri selects, read once per run; read again only for a label
 * whose objects this run has changed since. */
static lc_scan *cache_scan(lc *l, tokencert_ctx *ctx, const char *token_uri, const char *label)
{
    lc_scan *s = NULL;
    size_t i;

    for (i = 0; i < l->cache->n_scans && s == NULL; i++)
        if (l->cache->scans[i]->ctx == ctx && strcmp(l->cache->scans[i]->token_uri, token_uri) == 0)
            s = l->cache->scans[i];
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL || (s->token_uri = tc_strdup(token_uri)) == NULL ||
            ptr_push(&l->cache->scans, &l->cache->n_scans, s) != 0) {
            if (s != NULL)
                free(s->token_uri);
            free(s);
            return NULL;
        }
        s->ctx = ctx;
    } else if (!scan_written(s, label)) {
        return s;
    }
    tokencert_inventory_free(s->inv);
    s->inv = NULL;
    free(s->index);
    s->index = NULL;
    s->n_index = 0;
    free(s->error);
    s->error = NULL;
    while (s->n_written > 0)
        free(s->written[--s->n_written]);
    s->err = tokencert_inventory_load(ctx, token_uri, NULL, 0, &s->inv);
    if (s->err == TC_OK)
        s->err = scan_index(s);
    if (s->err != TC_OK)
        s->error = xstrdup(tokencert_ctx_error(ctx));
    return s;
}

/* Notes that this run is about to change label's objects on the tokens of ctx: a later reading
 * of that label reads the token again. */
static void cache_written(lc *l, tokencert_ctx *ctx, const char *label)
{
    size_t i;
    char *dup;
    for (i = 0; l->cache != NULL && i < l->cache->n_scans; i++) {
        lc_scan *s = l->cache->scans[i];
        if (s->ctx != ctx || s->inv == NULL || scan_written(s, label))
            continue;
        dup = tc_strdup(label);
        if (dup == NULL || ptr_push(&s->written, &s->n_written, dup) != 0) {
            /* Out of memory: the whole reading is dropped instead, and made again. */
            free(dup);
            tokencert_inventory_free(s->inv);
            s->inv = NULL;
            s->err = TC_ERR_NOMEM;
            free(s->error);
            s->error = NULL;
        }
    }
}

/* Whether a credential (as the inventory groups objects) has an object labelled label. */
static int cert_labelled(const tokencert_cert *ct, const char *label)
{
    return ct->label != NULL && strcmp(ct->label, label) == 0;
}

static void view_free(tokencert_inventory *v)
{
    size_t i, j;
    if (v == NULL)
        return;
    for (i = 0; i < v->n_tokens; i++) {
        for (j = 0; j < v->tokens[i].n_creds; j++)
            free(v->tokens[i].creds[j].certs);
        free(v->tokens[i].creds);
    }
    free(v->tokens);
    free(v);
}

/* What tokencert_inventory_load() gives for the URI with object=label, taken out of the reading
 * of the whole token: the credentials having an object labelled label (for a key, all its
 * certificates; without a key, only the certificates labelled so), found through the reading's
 * label index. The view borrows every string from the reading; free it with view_free(). NULL with
 * TC_ERR_NOT_FOUND when nothing is labelled so. */
static tokencert_err inventory_view(const lc_scan *scan, const char *label,
                                    tokencert_inventory **out)
{
    tokencert_err ret = TC_ERR_NOMEM;
    const tokencert_inventory *all = scan->inv;
    tokencert_inventory *v = calloc(1, sizeof *v);
    size_t lo = 0, hi = scan->n_index, i, k, matched = 0;

    *out = NULL;
    if (v == NULL)
        goto out;
    *v = *all;
    v->tokens = NULL;
    v->n_tokens = 0;
    if (all->n_tokens > 0 && (v->tokens = calloc(all->n_tokens, sizeof *v->tokens)) == NULL)
        goto out;
    for (i = 0; i < all->n_tokens; i++) {
        v->tokens[i] = all->tokens[i];
        v->tokens[i].creds = NULL;
        v->tokens[i].n_creds = 0;
    }
    v->n_tokens = all->n_tokens;
    /* The first entry of the label (the index is sorted by label, token, credential). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(scan->index[mid].label, label) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (i = lo; i < scan->n_index && strcmp(scan->index[i].label, label) == 0; i++) {
        const lc_label_at *at = &scan->index[i];
        const tokencert_credential *ca = &all->tokens[at->token].creds[at->cred];
        tokencert_token_inventory *tv = &v->tokens[at->token];
        tokencert_credential *cv, *grown;
        if (i > lo && at->token == at[-1].token && at->cred == at[-1].cred)
            continue; /* the key and a certificate, or two certificates, with the label */
        grown = realloc(tv->creds, (tv->n_creds + 1) * sizeof *tv->creds);
        if (grown == NULL)
            goto out;
        tv->creds = grown;
        cv = &tv->creds[tv->n_creds++];
        *cv = *ca;
        cv->certs = NULL;
        cv->n_certs = 0;
        if (ca->n_certs > 0 && (cv->certs = calloc(ca->n_certs, sizeof *cv->certs)) == NULL)
            goto out;
        for (k = 0; k < ca->n_certs; k++)
            if (ca->key != NULL || cert_labelled(&ca->certs[k], label))
                cv->certs[cv->n_certs++] = ca->certs[k];
        matched++;
    }
    if (matched == 0) {
        ret = TC_ERR_NOT_FOUND;
        goto out;
    }
    *out = v;
    v = NULL;
    ret = TC_OK;
out:
    view_free(v);
    return ret;
}

/* ---- reading the store ------------------------------------------------------------------ */

static char *dup_or_null(const char *v, int *failed)
{
    char *d;
    if (v == NULL)
        return NULL;
    d = tc_strdup(v);
    if (d == NULL)
        *failed = 1;
    return d;
}

static int snapshot(lc *l)
{
    lc_snapshot *sn = &l->cache->snap;
    if (sn->loaded)
        return 0;
    if (tokencert_state_generations(l->st, NULL, 0, &sn->gens, &sn->n_gens) != TC_OK ||
        tokencert_state_requests(l->st, NULL, 0, &sn->rqs, &sn->n_rqs) != TC_OK ||
        tokencert_state_credentials(l->st, &sn->creds, &sn->n_creds) != TC_OK) {
        sn->failed = 1; /* each credential then reads (and reports) for itself */
        return -1;
    }
    sn->loaded = 1;
    return 0;
}

static int snapshot_written(const lc *l, const char *name)
{
    size_t i;
    for (i = 0; i < l->cache->snap.n_written; i++)
        if (strcmp(l->cache->snap.written[i], name) == 0)
            return 1;
    return 0;
}

/* Whether name's rows may be read from the snapshot: a run that reads it (status, renew, poll:
 * the only writer while it holds the store's lock, or a reader) and has not written them since. */
static int use_snapshot(lc *l, const char *name)
{
    return l->snapshot && l->cache != NULL && !l->cache->snap.failed &&
           !snapshot_written(l, name) && snapshot(l) == 0;
}

/* Every write of the engine goes through these: the credential's rows are read from the store
 * from then on. When that cannot be noted (out of memory), the snapshot is given up. */
static void note_written(lc *l, const char *name)
{
    char *dup;
    if (l->cache == NULL || name == NULL || snapshot_written(l, name))
        return;
    dup = tc_strdup(name);
    if (dup == NULL || ptr_push(&l->cache->snap.written, &l->cache->snap.n_written, dup) != 0) {
        free(dup);
        l->cache->snap.failed = 1;
    }
}

static tokencert_err st_generation_add(lc *l, tokencert_state_generation *g)
{
    note_written(l, g->credential);
    return tokencert_state_generation_add(l->st, g);
}

static tokencert_err st_generation_update(lc *l, const tokencert_state_generation *g)
{
    note_written(l, g->credential);
    return tokencert_state_generation_update(l->st, g);
}

static tokencert_err st_request_add(lc *l, tokencert_state_request *q)
{
    note_written(l, q->credential);
    return tokencert_state_request_add(l->st, q);
}

static tokencert_err st_request_update(lc *l, tokencert_state_request *q)
{
    note_written(l, q->credential);
    return tokencert_state_request_update(l->st, q);
}

static tokencert_err st_credential_put(lc *l, const tokencert_state_credential *c)
{
    note_written(l, c->name);
    return tokencert_state_credential_put(l->st, c);
}

/* tokencert_state_generations(), from the snapshot when it may be used. */
static tokencert_err st_generations(lc *l, const char *name, tokencert_state_generation **out,
                                    size_t *n)
{
    const lc_snapshot *sn;
    size_t i, k = 0;
    int failed = 0;

    if (!use_snapshot(l, name))
        return tokencert_state_generations(l->st, name, 0, out, n);
    sn = &l->cache->snap;
    *out = NULL;
    *n = 0;
    for (i = 0; i < sn->n_gens; i++)
        k += strcmp(sn->gens[i].credential, name) == 0;
    if (k == 0)
        return TC_OK;
    if ((*out = calloc(k, sizeof **out)) == NULL)
        return TC_ERR_NOMEM;
    for (i = 0; i < sn->n_gens; i++) {
        const tokencert_state_generation *g = &sn->gens[i];
        tokencert_state_generation *d;
        if (strcmp(g->credential, name) != 0)
            continue;
        d = &(*out)[(*n)++];
        *d = *g;
        d->credential = dup_or_null(g->credential, &failed);
        d->token_serial = dup_or_null(g->token_serial, &failed);
        d->key_id = dup_or_null(g->key_id, &failed);
        d->cert_sha256 = dup_or_null(g->cert_sha256, &failed);
        d->serial = dup_or_null(g->serial, &failed);
        d->subject = dup_or_null(g->subject, &failed);
        d->issuer = dup_or_null(g->issuer, &failed);
    }
    if (failed) {
        tokencert_state_generations_free(*out, *n);
        *out = NULL;
        *n = 0;
        return TC_ERR_NOMEM;
    }
    return TC_OK;
}

/* tokencert_state_requests(), from the snapshot when it may be used. */
static tokencert_err st_requests(lc *l, const char *name, int open_only,
                                 tokencert_state_request **out, size_t *n)
{
    const lc_snapshot *sn;
    size_t i, k = 0;
    int failed = 0;

    if (!use_snapshot(l, name))
        return tokencert_state_requests(l->st, name, open_only, out, n);
    sn = &l->cache->snap;
    *out = NULL;
    *n = 0;
    for (i = 0; i < sn->n_rqs; i++)
        k += strcmp(sn->rqs[i].credential, name) == 0 &&
             (!open_only || tokencert_request_state_open(sn->rqs[i].state));
    if (k == 0)
        return TC_OK;
    if ((*out = calloc(k, sizeof **out)) == NULL)
        return TC_ERR_NOMEM;
    for (i = 0; i < sn->n_rqs; i++) {
        const tokencert_state_request *q = &sn->rqs[i];
        tokencert_state_request *d;
        if (strcmp(q->credential, name) != 0 ||
            (open_only && !tokencert_request_state_open(q->state)))
            continue;
        d = &(*out)[(*n)++];
        *d = *q;
        d->credential = dup_or_null(q->credential, &failed);
        d->token_serial = dup_or_null(q->token_serial, &failed);
        d->key_id = dup_or_null(q->key_id, &failed);
        d->key_type = dup_or_null(q->key_type, &failed);
        d->subject = dup_or_null(q->subject, &failed);
        d->san = dup_or_null(q->san, &failed);
        d->ca = dup_or_null(q->ca, &failed);
        d->ca_request_id = dup_or_null(q->ca_request_id, &failed);
        d->transaction_id = dup_or_null(q->transaction_id, &failed);
        d->last_error = dup_or_null(q->last_error, &failed);
        d->cert = NULL;
        if (q->cert != NULL) {
            d->cert = malloc(q->cert_len > 0 ? q->cert_len : 1);
            if (d->cert == NULL)
                failed = 1;
            else
                memcpy(d->cert, q->cert, q->cert_len);
        }
    }
    if (failed) {
        tokencert_state_requests_free(*out, *n);
        *out = NULL;
        *n = 0;
        return TC_ERR_NOMEM;
    }
    return TC_OK;
}

/* tokencert_state_credential_get(), from the snapshot when it may be used. */
static tokencert_err st_credential_get(lc *l, const char *name, tokencert_state_credential *out)
{
    const lc_snapshot *sn;
    size_t i;
    int failed = 0;

    if (!use_snapshot(l, name))
        return tokencert_state_credential_get(l->st, name, out);
    sn = &l->cache->snap;
    for (i = 0; i < sn->n_creds; i++) {
        const tokencert_state_credential *c = &sn->creds[i];
        if (strcmp(c->name, name) != 0)
            continue;
        *out = *c;
        out->name = dup_or_null(c->name, &failed);
        out->token_uri = dup_or_null(c->token_uri, &failed);
        out->token_serial = dup_or_null(c->token_serial, &failed);
        out->label = dup_or_null(c->label, &failed);
        out->ca = dup_or_null(c->ca, &failed);
        out->ca_dir = dup_or_null(c->ca_dir, &failed);
        out->module = dup_or_null(c->module, &failed);
        out->last_result = dup_or_null(c->last_result, &failed);
        out->last_error = dup_or_null(c->last_error, &failed);
        if (failed) {
            tokencert_state_credential_clear(out);
            memset(out, 0, sizeof *out);
            return TC_ERR_NOMEM;
        }
        return TC_OK;
    }
    return TC_ERR_NOT_FOUND;
}

/* ---- one run on one credential ---------------------------------------------------------- */

typedef struct {
    lc *l;
    lc_cred *c;
    tokencert_ctx *ctx; /* the run's, for the credential's module */
    tokencert_token *t; /* the run's, opened and logged in to */
    lc_opened *opened;  /* what the run knows of t */
    char *token_uri;    /* the opened token's own URI */
    char *serial;
    tokencert_inventory *inv; /* the credential's label, out of the run's reading of the token */
    tokencert_state_generation *gens;
    size_t n_gens;
    tokencert_state_generation *active;
    const tokencert_cert *active_cert; /* on the token, NULL when missing */
    const tokencert_credential *active_tc;
    int first; /* a first enrollment: the label must be free; enroll says the outcome itself */
    const char *new_key_id;       /* after-renewal: the new generation's key, for the hook */
    tokencert_enrolled *enrolled; /* first: what it made */
} run;

static void run_clear(run *r)
{
    tokencert_state_generations_free(r->gens, r->n_gens);
    view_free(r->inv);
    free(r->token_uri);
    free(r->serial);
    memset(r, 0, sizeof *r);
}

static tokencert_err run_ctx(run *r)
{
    const char *module = r->l->module != NULL ? r->l->module : r->c->module;
    if (r->ctx != NULL)
        return TC_OK;
    return cache_module(r->l, module, &r->ctx);
}

static tokencert_err gens_reload(run *r)
{
    size_t i;
    tokencert_state_generations_free(r->gens, r->n_gens);
    r->gens = NULL;
    r->n_gens = 0;
    r->active = NULL;
    if (st_generations(r->l, r->c->name, &r->gens, &r->n_gens) != TC_OK)
        return fail(r->l, r->l->ctx, TC_ERR_IO, "reading the state store");
    for (i = 0; i < r->n_gens; i++)
        if (r->gens[i].state == TOKENCERT_GEN_ACTIVE)
            r->active = &r->gens[i];
    return TC_OK;
}

static const tokencert_cert *find_cert(run *r, const char *sha256,
                                       const tokencert_credential **owner)
{
    size_t i, j, k;
    if (r->inv == NULL || sha256 == NULL)
        return NULL;
    for (i = 0; i < r->inv->n_tokens; i++)
        for (j = 0; j < r->inv->tokens[i].n_creds; j++) {
            const tokencert_credential *tc = &r->inv->tokens[i].creds[j];
            for (k = 0; k < tc->n_certs; k++)
                if (strcmp(tc->certs[k].sha256, sha256) == 0) {
                    if (owner != NULL)
                        *owner = tc;
                    return &tc->certs[k];
                }
        }
    return NULL;
}

static int gen_known(run *r, const char *sha256)
{
    size_t i;
    for (i = 0; i < r->n_gens; i++)
        if (r->gens[i].cert_sha256 != NULL && strcmp(r->gens[i].cert_sha256, sha256) == 0)
            return 1;
    return 0;
}

/* Whether the token with that serial is among those the credential's URI matches now. */
static int token_present(const run *r, const char *serial)
{
    size_t i;
    for (i = 0; r->inv != NULL && i < r->inv->n_tokens; i++)
        if (r->inv->tokens[i].token.serial != NULL &&
            strcmp(r->inv->tokens[i].token.serial, serial) == 0)
            return 1;
    return 0;
}

/* The token a credential lives on: the one its open request's key is on (or is to be made on),
 * else the one its still-valid active certificate is on. Another token that answers to the same
 * URI — a colleague's card of the same model, a replacement — is not it. NULL: any will do. */
static const char *home_token(const run *r, const tokencert_state_request *rq)
{
    if (rq != NULL && rq->token_serial != NULL && rq->token_serial[0] != '\0')
        return rq->token_serial;
    if (r->active != NULL && r->active->token_serial != NULL &&
        r->active->token_serial[0] != '\0' && r->active->not_after > tc_now())
        return r->active->token_serial;
    return NULL;
}

/* The serial of the token present when it is not the credential's own (see home_token); NULL
 * when it is, or when no token is present. */
static const char *foreign_token(const run *r, const tokencert_state_request *rq)
{
    const char *home = home_token(r, rq);
    if (home == NULL || r->inv == NULL || r->inv->n_tokens == 0 || token_present(r, home))
        return NULL;
    return r->inv->tokens[0].token.serial != NULL ? r->inv->tokens[0].token.serial : "?";
}

/* Reads the credential's objects on its token (no login) and reconciles: a certificate under the
 * credential's label that the store does not know (enrolled before tokencert kept state, or
 * imported with another tool) is adopted as a generation; the newest valid one is active. */
static tokencert_err reconcile_with(run *r, const tokencert_state_request *open_rq, size_t n_open)
{
    lc *l = r->l;
    char *uri = tokencert_object_uri(r->c->token_uri, r->c->label, NULL, NULL);
    tokencert_err err;
    size_t i, j, k;
    time_t now = tc_now();
    tokencert_err code;
    char home[128];
    const char *h;
    lc_scan *scan;

    if (uri == NULL) {
        complain(l, "credential '%s': token URI '%s' is not a pkcs11: URI", r->c->name,
                 r->c->token_uri);
        return TC_ERR_BAD_DATA;
    }
    free(uri);
    scan = cache_scan(l, r->ctx, r->c->token_uri, r->c->label);
    if (scan == NULL)
        return fail(r->l, r->ctx, TC_ERR_NOMEM, "reading the token");
    if (scan->err != TC_OK)
        return fail_again(r->l, r->ctx, scan->err, "reading the token", scan->error);
    view_free(r->inv);
    r->inv = NULL;
    err = inventory_view(scan, r->c->label, &r->inv);
    if (err == TC_ERR_NOT_FOUND) {
        r->inv = NULL;
    } else if (err != TC_OK) {
        return fail(r->l, r->ctx, err, "reading the token");
    }
    code = gens_reload(r);
    if (code != TC_OK)
        return code;
    /* The credential's own token (copied: the generations are reloaded below). */
    h = home_token(r, n_open > 0 ? &open_rq[n_open - 1] : NULL);
    snprintf(home, sizeof home, "%s", h != NULL ? h : "");
    for (i = 0; r->inv != NULL && i < r->inv->n_tokens; i++) {
        const tokencert_token_inventory *ti = &r->inv->tokens[i];
        if (r->serial == NULL)
            r->serial = xstrdup(ti->token.serial);
        /* Certificates on another token under the same label are someone else's to manage. */
        if (home[0] != '\0' && (ti->token.serial == NULL || strcmp(ti->token.serial, home) != 0))
            continue;
        for (j = 0; j < ti->n_creds; j++) {
            const tokencert_credential *tc = &ti->creds[j];
            if (tc->kind != TOKENCERT_CRED_FULL && tc->kind != TOKENCERT_CRED_CERT_ONLY)
                continue;
            for (k = 0; k < tc->n_certs; k++) {
                const tokencert_cert *ct = &tc->certs[k];
                tokencert_state_generation g;
                size_t q;
                int mine = 0;
                /* A certificate of an unfinished request is that request's to record. */
                for (q = 0; q < n_open; q++)
                    mine |= open_rq[q].key_id != NULL && strcmp(open_rq[q].key_id, tc->id) == 0 &&
                            !open_rq[q].key_reused;
                if (mine || ct->is_ca || ct->status == TOKENCERT_CERT_UNREADABLE ||
                    strcmp(ct->label, r->c->label) != 0 || gen_known(r, ct->sha256) ||
                    ct->not_after <= now || l->dry_run)
                    continue;
                memset(&g, 0, sizeof g);
                g.credential = r->c->name;
                g.state = TOKENCERT_GEN_SUPERSEDED;
                g.token_serial = ti->token.serial;
                g.key_id = tc->id;
                g.cert_sha256 = (char *)ct->sha256;
                g.serial = ct->serial;
                g.subject = ct->subject;
                g.issuer = ct->issuer;
                g.not_before = ct->not_before;
                g.not_after = ct->not_after;
                g.installed = now;
                if (st_generation_add(l, &g) != TC_OK)
                    return fail(l, l->ctx, TC_ERR_IO, "recording a generation");
                tokencert_engine_log(l, r->c->name, "adopted", "ok",
                                     "certificate %s (serial %s) found on the token", ct->sha256,
                                     ct->serial);
                code = gens_reload(r);
                if (code != TC_OK)
                    return code;
            }
        }
    }
    /* The active generation is the one whose certificate the library's rule calls current on
     * the credential's token (tokencert_named_current: the valid one that lasts longest), as
     * list, check and the PKCS#11 module call it: the active generation's certificate deleted
     * by hand, or a newer one imported with another tool (a renewal done through a portal),
     * moves it; a certificate not valid yet does not. */
    if (!l->dry_run) {
        tokencert_state_generation *best = NULL;
        const tokencert_cert *cur = NULL;
        for (i = 0; r->inv != NULL && i < r->inv->n_tokens && cur == NULL; i++) {
            const tokencert_token_inventory *ti = &r->inv->tokens[i];
            if (home[0] != '\0' &&
                (ti->token.serial == NULL || strcmp(ti->token.serial, home) != 0))
                continue;
            cur = tokencert_named_current(ti, r->c->label, now);
        }
        for (i = 0; cur != NULL && i < r->n_gens; i++)
            if (r->gens[i].cert_sha256 != NULL && strcmp(r->gens[i].cert_sha256, cur->sha256) == 0)
                best = &r->gens[i];
        /* Only among what is on the tokens present: an active certificate on a token that is
         * not here stays active (it is not gone, only elsewhere). */
        if (best != NULL && best != r->active && foreign_token(r, NULL) == NULL) {
            /* Both or neither: never two active generations, nor none. */
            int ok = tokencert_state_begin(l->st) == TC_OK;
            if (ok && r->active != NULL) {
                r->active->state = TOKENCERT_GEN_SUPERSEDED;
                r->active->superseded = now;
                ok = st_generation_update(l, r->active) == TC_OK;
            }
            best->state = TOKENCERT_GEN_ACTIVE;
            ok = ok && st_generation_update(l, best) == TC_OK &&
                 tokencert_state_commit(l->st) == TC_OK;
            if (!ok) {
                code = fail(l, l->ctx, TC_ERR_IO, "recording a generation");
                tokencert_state_rollback(l->st);
                return code;
            }
            code = gens_reload(r);
            if (code != TC_OK)
                return code;
        }
    }
    r->active_cert = r->active != NULL ? find_cert(r, r->active->cert_sha256, &r->active_tc) : NULL;
    return TC_OK;
}

static tokencert_err reconcile(run *r)
{
    tokencert_state_request *open_rq = NULL;
    size_t n_open = 0;
    tokencert_err code;

    if (st_requests(r->l, r->c->name, 1, &open_rq, &n_open) != TC_OK)
        return fail(r->l, r->l->ctx, TC_ERR_IO, "reading the state store");
    code = reconcile_with(r, open_rq, n_open);
    tokencert_state_requests_free(open_rq, n_open);
    return code;
}

/* Opens the credential's token read-write and logs in, once per run: the credentials after the
 * first on the same token share the session, the login and the token lock (and a failure). */
static tokencert_err open_token(run *r)
{
    tokencert_login_opts lo;
    tokencert_err err;
    const tokencert_token_info *ti;
    lc *l = r->l;
    lc_opened *o = NULL;
    const char *serial = NULL;
    size_t i;
    tokencert_err code = run_ctx(r);

    if (code != TC_OK)
        return code;
    /* The same token named by another URI is the same token: the reading says which it is. */
    if (r->inv != NULL && r->inv->n_tokens == 1)
        serial = r->inv->tokens[0].token.serial;
    for (i = 0; i < l->cache->n_toks && o == NULL; i++) {
        lc_opened *k = l->cache->toks[i];
        if (k->ctx == r->ctx && (strcmp(k->token_uri, r->c->token_uri) == 0 ||
                                 (serial != NULL && same_str(k->serial, serial))))
            o = k;
    }
    if (o == NULL) {
        o = calloc(1, sizeof *o);
        if (o == NULL || (o->token_uri = tc_strdup(r->c->token_uri)) == NULL ||
            ptr_push(&l->cache->toks, &l->cache->n_toks, o) != 0) {
            if (o != NULL)
                free(o->token_uri);
            free(o);
            return fail(r->l, r->ctx, TC_ERR_NOMEM, "opening the token");
        }
        o->ctx = r->ctx;
        lo = l->login;
        if (lo.pin_source == NULL)
            lo.pin_source = r->c->pin_source;
        err = tokencert_token_open(r->ctx, r->c->token_uri, &lo,
                                   TOKENCERT_OPEN_RW | TOKENCERT_OPEN_LOGIN, &o->t);
        if (err != TC_OK) {
            o->err = err;
            o->error = xstrdup(tokencert_ctx_error(r->ctx));
            o->code = fail_again(r->l, r->ctx, err, "opening the token", o->error);
            return o->code;
        }
        ti = tokencert_token_get_info(o->t);
        o->serial = xstrdup(ti->serial);
        err = tokencert_state_lock_token(l->st, ti->serial, l->wait_seconds);
        if (err != TC_OK) {
            o->error = tc_strdup(tokencert_ctx_error(l->ctx));
            o->code = TC_ERR_IO;
            complain(l, "%s", o->error != NULL ? o->error : "locking the token failed");
            return o->code;
        }
    } else if (o->code != TC_OK) {
        if (o->t == NULL)
            return fail_again(r->l, r->ctx, o->err, "opening the token", o->error);
        complain(l, "%s", o->error != NULL ? o->error : "locking the token failed");
        return o->code;
    }
    ti = tokencert_token_get_info(o->t);
    r->t = o->t;
    r->opened = o;
    free(r->token_uri);
    r->token_uri = xstrdup(ti->uri);
    free(r->serial);
    r->serial = xstrdup(ti->serial);
    /* What this credential does next changes its objects on the token. */
    cache_written(l, r->ctx, r->c->label);
    return TC_OK;
}

/* The token is absent, or the one present is not the credential's own (foreign: its serial;
 * home: the credential's): the credential is deferred, said once (not at every timer run). */
static tokencert_err defer_on(run *r, tokencert_outcome *result, const char *foreign,
                              const char *home)
{
    tokencert_state_credential sc;
    lc *l = r->l;

    *result = TOKENCERT_OUTCOME_DEFERRED;
    memset(&sc, 0, sizeof sc);
    if (l->st != NULL && tokencert_state_credential_get(l->st, r->c->name, &sc) == TC_OK &&
        sc.deferred_since != 0) {
        tokencert_state_credential_clear(&sc);
        return TC_ERR_TOKEN_ABSENT;
    }
    if (foreign != NULL)
        complain(l,
                 "%s: the token present (serial %s) is not the one the credential is "
                 "on (serial %s): deferred until that one is inserted; 'tokencert renew %s' "
                 "moves the credential onto this token",
                 r->c->name, foreign, home, r->c->name);
    else
        complain(l, "%s: token %s is not present: deferred until it is", r->c->name,
                 r->c->token_uri);
    if (l->st != NULL && !l->dry_run) {
        tokencert_state_credential put = sc;
        if (sc.name == NULL) {
            /* Not recorded yet (a configured credential whose token was never here): recorded
             * now, so that the deferral is said once, not at every timer run. */
            memset(&put, 0, sizeof put);
            put.name = r->c->name;
            put.token_uri = r->c->token_uri;
            put.label = r->c->label;
            put.ca = r->c->ca;
            put.module = r->c->module;
            put.created = tc_now();
            put.last_run = put.created;
            put.last_result = (char *)"deferred";
        }
        put.deferred_since = tc_now();
        if (st_credential_put(l, &put) != TC_OK) {
            tokencert_state_credential_clear(&sc);
            return fail(l, l->ctx, TC_ERR_IO, "recording the deferral");
        }
        if (foreign != NULL)
            tokencert_engine_log(l, r->c->name, "deferred", "other token",
                                 "token serial %s present; the credential is on serial %s", foreign,
                                 home);
        else
            tokencert_engine_log(l, r->c->name, "deferred", "absent", "token %s is not present",
                                 r->c->token_uri);
    }
    tokencert_state_credential_clear(&sc);
    return TC_ERR_TOKEN_ABSENT;
}

static tokencert_err defer(run *r, tokencert_outcome *result)
{
    return defer_on(r, result, NULL, NULL);
}

/* Records the credential in the store (first run, or after a deferral). */
static tokencert_err record_put(lc *l, const lc_cred *c, const char *serial, time_t when,
                                const char *last_result, const char *last_error)
{
    tokencert_state_credential sc, old;
    int had;

    memset(&old, 0, sizeof old);
    had = tokencert_state_credential_get(l->st, c->name, &old) == TC_OK;
    sc = old;
    sc.name = c->name;
    if (!had) {
        sc.token_uri = c->token_uri;
        sc.label = c->label;
        sc.ca = c->ca;
        sc.module = c->module;
        sc.created = when;
    }
    if (serial != NULL)
        sc.token_serial = (char *)serial;
    sc.last_run = when;
    sc.last_result = (char *)last_result;
    sc.last_error = (char *)last_error;
    sc.deferred_since = 0;
    if (st_credential_put(l, &sc) != TC_OK) {
        tokencert_state_credential_clear(&old);
        return fail(l, l->ctx, TC_ERR_IO, "recording the credential");
    }
    tokencert_state_credential_clear(&old);
    return TC_OK;
}

/* Records the credential in the store (first run, or after a deferral). "Not due" — what most
 * credentials are at most runs — is kept until the end of the run and written for all of them in
 * one transaction (records_flush()): one write per credential would make the timer's run cost
 * more than the listing it amounts to. Losing it to a crash loses only the time of that run. */
static tokencert_err cred_record(run *r, const char *last_result, const char *last_error)
{
    lc *l = r->l;
    lc_record *rec;

    if (l->st == NULL || l->dry_run)
        return TC_OK;
    if (l->cache != NULL && last_error == NULL && strcmp(last_result, "not due") == 0) {
        rec = realloc(l->cache->records, (l->cache->n_records + 1) * sizeof *rec);
        if (rec != NULL) {
            l->cache->records = rec;
            rec = &rec[l->cache->n_records++];
            rec->c = r->c;
            rec->serial = xstrdup(r->serial);
            rec->when = tc_now();
            return TC_OK;
        }
    }
    return record_put(l, r->c, r->serial, tc_now(), last_result, last_error);
}

/* Writes the records cred_record() kept: the exit code of the first failure, else TC_OK. */
static tokencert_err records_flush(lc *l)
{
    size_t i;
    tokencert_err code = TC_OK, c;

    if (l->cache == NULL || l->cache->n_records == 0 || l->st == NULL)
        return TC_OK;
    if (tokencert_state_begin(l->st) != TC_OK)
        code = fail(l, l->ctx, TC_ERR_IO, "recording the credentials");
    for (i = 0; code == TC_OK && i < l->cache->n_records; i++) {
        c = record_put(l, l->cache->records[i].c, l->cache->records[i].serial,
                       l->cache->records[i].when, "not due", NULL);
        if (c != TC_OK)
            code = c;
    }
    if (code == TC_OK && tokencert_state_commit(l->st) != TC_OK)
        code = fail(l, l->ctx, TC_ERR_IO, "recording the credentials");
    if (code != TC_OK)
        tokencert_state_rollback(l->st);
    for (i = 0; i < l->cache->n_records; i++)
        free(l->cache->records[i].serial);
    l->cache->n_records = 0;
    return code;
}

/* ---- hooks ------------------------------------------------------------------------------ */

static int run_hook(run *r, const char *event, char *const *argv, const char *new_sha256,
                    const char *new_not_after, const char *error)
{
    char *env[16];
    size_t n = 0, i;
    char *out = NULL, *err = NULL, na[32];
    int status = 0, rc;

    if (argv == NULL || argv[0] == NULL)
        return 0;
    env[n++] = tc_asprintf("TOKENCERT_EVENT=%s", event);
    env[n++] = tc_asprintf("TOKENCERT_CREDENTIAL=%s", r->c->name);
    env[n++] = tc_asprintf("TOKENCERT_LABEL=%s", r->c->label);
    env[n++] = tc_asprintf("TOKENCERT_TOKEN=%s", r->token_uri ? r->token_uri : r->c->token_uri);
    if (r->active_cert != NULL) {
        tc_time_iso(r->active_cert->not_after, na, sizeof na);
        env[n++] = tc_asprintf("TOKENCERT_OLD_SHA256=%s", r->active_cert->sha256);
        env[n++] = tc_asprintf("TOKENCERT_OLD_NOT_AFTER=%s", na);
        env[n++] = tc_asprintf("TOKENCERT_DAYS_LEFT=%ld",
                               tc_days_between(tc_now(), r->active_cert->not_after));
    } else if (r->active != NULL && r->active->cert_sha256 != NULL) {
        /* Not on the token present (absent, or another one): as recorded. */
        tc_time_iso(r->active->not_after, na, sizeof na);
        env[n++] = tc_asprintf("TOKENCERT_OLD_SHA256=%s", r->active->cert_sha256);
        env[n++] = tc_asprintf("TOKENCERT_OLD_NOT_AFTER=%s", na);
        env[n++] =
            tc_asprintf("TOKENCERT_DAYS_LEFT=%ld", tc_days_between(tc_now(), r->active->not_after));
    }
    if (new_sha256 != NULL)
        env[n++] = tc_asprintf("TOKENCERT_NEW_SHA256=%s", new_sha256);
    if (r->new_key_id != NULL && r->token_uri != NULL) {
        /* What applications are to use from now on: pkcs11: URIs with the key's CKA_ID. */
        char *k = tokencert_object_uri(r->token_uri, r->c->label, r->new_key_id, "private");
        char *ct = tokencert_object_uri(r->token_uri, r->c->label, r->new_key_id, "cert");
        env[n++] = tc_asprintf("TOKENCERT_NEW_KEY_ID=%s", r->new_key_id);
        env[n++] = tc_asprintf("TOKENCERT_NEW_KEY_URI=%s", k != NULL ? k : "");
        env[n++] = tc_asprintf("TOKENCERT_NEW_CERT_URI=%s", ct != NULL ? ct : "");
        free(k);
        free(ct);
    }
    if (new_not_after != NULL)
        env[n++] = tc_asprintf("TOKENCERT_NEW_NOT_AFTER=%s", new_not_after);
    if (error != NULL)
        env[n++] = tc_asprintf("TOKENCERT_ERROR=%s", error);
    env[n] = NULL;
    rc = tc_hook_run((const char *const *)argv, (const char *const *)env, 60, &status, &out, &err);
    if (rc != 0) {
        complain(r->l, "%s: %s hook: %s", r->c->name, event, err != NULL ? err : "failed");
        if (out != NULL && out[0] != '\0')
            emit(r->l, TOKENCERT_EV_OUTPUT, r->c->name, NULL, NULL, out);
        tokencert_engine_log(r->l, r->c->name, "hook", "failed", "%s hook: %s", event,
                             err ? err : "failed");
    } else {
        tokencert_engine_log(r->l, r->c->name, "hook", "ok", "%s hook %s ran", event, argv[0]);
    }
    for (i = 0; i < n; i++)
        free(env[i]);
    free(out);
    free(err);
    return rc;
}

/* The expiring hook runs when the credential is due and a run did not renew it (a request pending
 * or failed, the token absent), about once a day rather than at every timer run. */
#define EXPIRING_EVERY (20 * 3600)

static void expiring_hook(run *r, const char *error)
{
    const lc_cred *c = r->c;
    tokencert_state_event *ev = NULL;
    size_t n = 0, i;
    time_t now = tc_now(), nb, na;
    int recent = 0;

    if (c->hook_expiring == NULL || c->hook_expiring[0] == NULL || r->l->dry_run ||
        r->l->st == NULL)
        return;
    if (r->gens == NULL && gens_reload(r) != TC_OK) /* the token absent: not read yet */
        return;
    if (r->active_cert != NULL) {
        nb = r->active_cert->not_before;
        na = r->active_cert->not_after;
    } else if (r->active != NULL) {
        nb = r->active->not_before; /* its token absent: as recorded */
        na = r->active->not_after;
    } else {
        return;
    }
    if (now < lc_due_at(c, nb, na))
        return;
    if (tokencert_state_history(r->l->st, c->name, &ev, &n) == TC_OK)
        for (i = n; i > 0 && !recent && ev[i - 1].time > now - EXPIRING_EVERY; i--)
            recent = strcmp(ev[i - 1].event, "hook") == 0 && ev[i - 1].detail != NULL &&
                     strncmp(ev[i - 1].detail, "expiring hook", 13) == 0;
    tokencert_state_history_free(ev, n);
    if (!recent)
        run_hook(r, "expiring", c->hook_expiring, NULL, NULL, error);
}

/* ---- the CA, through its backend (src/enroll) -------------------------------------------- */

typedef tc_ca_answer ca_result;
#define CA_ISSUED       TC_CA_ISSUED
#define CA_PENDING      TC_CA_PENDING
#define CA_REJECTED     TC_CA_REJECTED
#define CA_ERROR        TC_CA_ERROR
#define ca_result_clear tc_ca_answer_clear

/* When to ask the CA again about a pending request: when it said (Retry-After; a week at most, so
 * that a wild value does not silence the timer), else in an hour. */
static time_t next_poll_after(const ca_result *res)
{
    long long wait = res->retry_after > 0 ? res->retry_after : 3600;
    if (wait > 7 * 86400)
        wait = 7 * 86400;
    return tc_now() + (time_t)wait;
}

/* The CA's handle, recorded before the CA is asked for more (local: before it issues). */
typedef struct {
    run *r;
    tokencert_state_request *rq;
} handle_note;

static int record_handle(void *data, const char *handle)
{
    handle_note *h = data;
    free(h->rq->ca_request_id);
    h->rq->ca_request_id = tc_strdup(handle);
    h->rq->state = TOKENCERT_RS_PENDING;
    if (h->rq->ca_request_id == NULL || st_request_update(h->r->l, h->rq) != TC_OK) {
        complain(h->r->l, "recording CA request %s: %s", handle, tokencert_ctx_error(h->r->l->ctx));
        return -1;
    }
    return 0;
}

/* What a backend is handed for rq: the credential, its CA, and the still-valid current
 * credential for a renewal (its key URI in *key_uri, to be freed). */
static void ca_call_of(run *r, tokencert_state_request *rq, tc_ca_call *call, tc_ca_auth *auth,
                       char **key_uri, handle_note *note)
{
    memset(call, 0, sizeof *call);
    call->ctx = r->ctx;
    call->credential = r->c->name;
    call->ca = r->c->ca;
    call->config = r->l->cfg != NULL ? tokencert_config_find_ca(r->l->cfg, r->c->ca) : NULL;
    call->dir = r->c->ca_dir;
    call->request = rq->id;
    call->handle = rq->ca_request_id;
    call->not_before = rq->not_before;
    *key_uri = NULL;
    if (r->t != NULL && r->active_cert != NULL && r->active != NULL &&
        r->active_cert->not_after > tc_now()) {
        *key_uri = tokencert_object_uri(r->token_uri, r->c->label, r->active->key_id, "private");
        auth->t = r->t;
        auth->cert_uri = r->active_cert->uri;
        auth->key_uri = *key_uri;
        if (*key_uri != NULL)
            call->auth = auth;
    }
    note->r = r;
    note->rq = rq;
    call->record_handle = record_handle;
    call->data = note;
}

static void no_backend(run *r, ca_result *res)
{
    res->kind = CA_ERROR;
    res->reason = tc_asprintf("CA '%s': protocol %s is not implemented in this version", r->c->ca,
                              r->c->ca_protocol);
}

static void ca_submit(run *r, tokencert_state_request *rq, const unsigned char *csr, size_t csr_len,
                      ca_result *res)
{
    const tc_ca_backend *b = tc_ca_backend_find(r->c->ca_protocol);
    tc_ca_call call;
    tc_ca_auth auth;
    handle_note note;
    char *key_uri = NULL;

    memset(res, 0, sizeof *res);
    ca_call_of(r, rq, &call, &auth, &key_uri, &note);
    working(r->l, "%s: sending request %lld to CA '%s'", r->c->name, rq->id, r->c->ca);
    if (b == NULL)
        no_backend(r, res);
    else
        b->submit(&call, csr, csr_len, res);
    if (res->notice != NULL)
        say(r->l, "%s", res->notice);
    free(key_uri);
}

static void ca_poll(run *r, tokencert_state_request *rq, ca_result *res)
{
    const tc_ca_backend *b = tc_ca_backend_find(r->c->ca_protocol);
    tc_ca_call call;
    tc_ca_auth auth;
    handle_note note;
    char *key_uri = NULL;

    memset(res, 0, sizeof *res);
    ca_call_of(r, rq, &call, &auth, &key_uri, &note);
    working(r->l, "%s: asking CA '%s' about request %lld", r->c->name, r->c->ca, rq->id);
    if (b == NULL)
        no_backend(r, res);
    else
        b->poll(&call, res);
    if (res->notice != NULL)
        say(r->l, "%s", res->notice);
    free(key_uri);
}

/* The backend sets aside what the engine refused (manual: the file). */
static void ca_refused(run *r, tokencert_state_request *rq)
{
    const tc_ca_backend *b = tc_ca_backend_find(r->c->ca_protocol);
    tc_ca_call call;
    tc_ca_auth auth;
    handle_note note;
    char *key_uri = NULL, *msg;

    if (b == NULL || b->refused == NULL)
        return;
    ca_call_of(r, rq, &call, &auth, &key_uri, &note);
    msg = b->refused(&call);
    if (msg != NULL)
        complain(r->l, "%s", msg);
    free(msg);
    free(key_uri);
}

/* The CA certificate(s) installed beside the credential and used to verify its chain. */
static char *ca_anchor_file(const lc_cred *c, const tokencert_config *cfg)
{
    const tokencert_config_ca *ca = cfg != NULL ? tokencert_config_find_ca(cfg, c->ca) : NULL;
    if (ca != NULL && ca->ca_file != NULL)
        return tc_strdup(ca->ca_file);
    if (c->ca_dir != NULL && strcmp(c->ca_protocol, "local") == 0)
        return tc_asprintf("%s/ca.pem", c->ca_dir);
    return NULL;
}

/* ---- the steps -------------------------------------------------------------------------- */

static void name_string(const X509_NAME *name, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n;
    out[0] = '\0';
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, name, 0,
                           (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT) >=
        0) {
        n = BIO_read(b, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

/* Nothing from a CA is trusted: the certificate must carry this request's key and subject, be
 * valid now (or from the requested start) and come from the expected issuer. */
static char *check_issued(run *r, const tokencert_state_request *rq, const unsigned char *der,
                          size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    char *key_uri = NULL, *why = NULL, subj[1024], iss[1024];
    unsigned char *pub = NULL, *cpub = NULL;
    size_t pub_len = 0;
    int cpub_len;
    time_t now = tc_now();

    if (x == NULL)
        return tc_strdup("the CA returned something that is not a certificate");
    /* The request's key has the CKA_ID tokencert derived from its public key when it made it:
     * a certificate whose key derives the same is for that key, without asking the token. Any
     * other (a reused key another tool made) is compared with the key read from the token. */
    {
        unsigned char id[20];
        char *hex = NULL;
        int same = rq->key_id != NULL && tc_key_id_for(r->ctx, X509_get0_pubkey(x), id) == TC_OK &&
                   (hex = tc_hex(id, sizeof id)) != NULL && strcasecmp(hex, rq->key_id) == 0;
        free(hex);
        if (same)
            goto key_ok;
    }
    key_uri = tokencert_object_uri(r->token_uri, r->c->label, rq->key_id, "public");
    if (tokencert_export(r->t, key_uri, 0, &pub, &pub_len) != TC_OK) {
        why = tc_asprintf("the request's public key %s cannot be read: %s", rq->key_id,
                          tokencert_ctx_error(r->ctx));
        goto out;
    }
    cpub_len = i2d_PUBKEY(X509_get0_pubkey(x), &cpub);
    if (cpub_len <= 0 || (size_t)cpub_len != pub_len || memcmp(pub, cpub, pub_len) != 0) {
        why = tc_asprintf("the CA returned a certificate for another key (not the request's key "
                          "%s)",
                          rq->key_id);
        goto out;
    }
key_ok:
    name_string(X509_get_subject_name(x), subj, sizeof subj);
    if (rq->subject != NULL && strcasecmp(subj, rq->subject) != 0) {
        why = tc_asprintf("the CA returned a certificate for another subject ('%s', requested "
                          "'%s')",
                          subj, rq->subject);
        goto out;
    }
    if (X509_cmp_time(X509_get0_notAfter(x), &now) <= 0) {
        why = tc_strdup("the CA returned a certificate that has already expired");
        goto out;
    }
    if (rq->not_before == 0 && X509_cmp_time(X509_get0_notBefore(x), &now) > 0) {
        time_t later = now + 300; /* clock skew between CA and here */
        if (X509_cmp_time(X509_get0_notBefore(x), &later) > 0) {
            why = tc_strdup("the CA returned a certificate that is not valid yet");
            goto out;
        }
    }
    name_string(X509_get_issuer_name(x), iss, sizeof iss);
    if (r->c->ca_issuer != NULL && strcasecmp(iss, r->c->ca_issuer) != 0) {
        why = tc_asprintf("the certificate's issuer '%s' is not the configured CA's '%s'", iss,
                          r->c->ca_issuer);
        goto out;
    }
out:
    OPENSSL_free(cpub);
    free(pub);
    free(key_uri);
    X509_free(x);
    return why;
}

static void request_fail(run *r, tokencert_state_request *rq, tokencert_request_state at,
                         const char *why)
{
    long long backoff;
    rq->failed_at = at;
    rq->state = TOKENCERT_RS_FAILED;
    rq->attempts++;
    backoff = 3600LL << (rq->attempts < 5 ? rq->attempts - 1 : 4);
    if (backoff > 86400)
        backoff = 86400;
    rq->next_poll = tc_now() + backoff;
    free(rq->last_error);
    rq->last_error = xstrdup(why);
    if (st_request_update(r->l, rq) != TC_OK)
        complain(r->l, "%s: recording the failure of request %lld: %s", r->c->name, rq->id,
                 tokencert_ctx_error(r->l->ctx));
    tokencert_engine_log(r->l, r->c->name, "failed", "failed", "request %lld: %s", rq->id, why);
    complain(r->l, "%s: request %lld failed: %s", r->c->name, rq->id, why);
}

static tokencert_err set_state(run *r, tokencert_state_request *rq, tokencert_request_state s)
{
    rq->state = s;
    if (st_request_update(r->l, rq) != TC_OK)
        return fail(r->l, r->l->ctx, TC_ERR_IO, "recording the request");
    return TC_OK;
}

/* Keys under the credential's label that no generation and no request knows, and that carry no
 * certificate: what a key generation killed half-way left. Deleted. */
static tokencert_err cleanup_unknown_keys(run *r)
{
    tokencert_object_desc *objs = NULL;
    tokencert_state_request *rqs = NULL;
    size_t n = 0, n_rqs = 0, i, j, del;
    char *uri = tokencert_object_uri(r->token_uri, r->c->label, NULL, NULL);
    tokencert_err code = TC_OK;

    if (uri == NULL)
        return TC_ERR_NOMEM;
    if (tokencert_objects_find(r->t, uri, &objs, &n) != TC_OK)
        n = 0;
    /* Unknown is decided against every request the store knows: when it cannot be read, nothing
     * is deleted. */
    if (n > 0 && tokencert_state_requests(r->l->st, r->c->name, 0, &rqs, &n_rqs) != TC_OK) {
        tokencert_objects_free(objs, n);
        free(uri);
        return fail(r->l, r->l->ctx, TC_ERR_IO, "reading the state store");
    }
    for (i = 0; i < n; i++) {
        int known = 0, has_cert = 0;
        if (strcmp(objs[i].kind, "private key") != 0 && strcmp(objs[i].kind, "public key") != 0)
            continue;
        for (j = 0; j < r->n_gens; j++)
            known |= r->gens[j].key_id != NULL && strcmp(r->gens[j].key_id, objs[i].id) == 0;
        for (j = 0; j < n_rqs; j++)
            known |= rqs[j].key_id != NULL && strcmp(rqs[j].key_id, objs[i].id) == 0 &&
                     rqs[j].state != TOKENCERT_RS_ABANDONED;
        for (j = 0; j < n; j++)
            has_cert |=
                strcmp(objs[j].kind, "certificate") == 0 && strcmp(objs[j].id, objs[i].id) == 0;
        if (known || has_cert)
            continue;
        if (tokencert_delete(r->t, objs[i].uri, &del) != TC_OK) {
            code = fail(r->l, r->ctx, TC_ERR_PKCS11, "removing a half-made key");
            break;
        }
        tokencert_engine_log(r->l, r->c->name, "cleaned up", "ok",
                             "%s %s left by an interrupted key generation", objs[i].kind,
                             objs[i].id);
    }
    tokencert_objects_free(objs, n);
    tokencert_state_requests_free(rqs, n_rqs);
    free(uri);
    return code;
}

static char *key_type_of(const tokencert_credential *tc)
{
    if (tc == NULL || tc->key == NULL || tc->key->key_type == NULL)
        return NULL;
    if (strcmp(tc->key->key_type, "rsa") == 0)
        return tc_asprintf("rsa:%d", tc->key->key_bits > 0 ? tc->key->key_bits : 2048);
    if (strcmp(tc->key->key_type, "ec") == 0)
        return tc_strdup(tc->key->key_bits == 384 ? "ec:p384" : "ec:p256");
    if (strcmp(tc->key->key_type, "ed25519") == 0)
        return tc_strdup("ed25519");
    return NULL;
}

/* SANs of the current certificate as "dns:..." strings, comma separated. */
/* The SANs of a certificate as "kind:value,..." (dns, ip, email, uri); "" when none. */
static char *sans_of_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x;
    GENERAL_NAMES *gens;
    char *out = tc_strdup(""), *next;
    size_t i;

    if (out == NULL || der == NULL)
        return out;
    x = d2i_X509(NULL, &p, (long)len);
    gens = x != NULL ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
    for (i = 0; gens != NULL && i < (size_t)sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, (int)i);
        char *v = NULL, ip[INET6_ADDRSTRLEN];
        const char *kind = NULL;
        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
            const ASN1_IA5STRING *ia5 = g->d.ia5;
            kind = g->type == GEN_DNS ? "dns" : g->type == GEN_EMAIL ? "email" : "uri";
            v = tc_strndup((const char *)ASN1_STRING_get0_data(ia5),
                           (size_t)ASN1_STRING_length(ia5));
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *o = g->d.ip;
            int n = ASN1_STRING_length(o);
            kind = "ip";
            if ((n == 4 || n == 16) && inet_ntop(n == 4 ? AF_INET : AF_INET6,
                                                 ASN1_STRING_get0_data(o), ip, sizeof ip) != NULL)
                v = tc_strdup(ip);
        }
        if (v == NULL)
            continue;
        next = tc_asprintf("%s%s%s:%s", out, *out ? "," : "", kind, v);
        free(v);
        free(out);
        out = next;
        if (out == NULL)
            break;
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return out;
}

/* The newest request whose certificate was installed, among v[0..n); NULL when none. */
static const tokencert_state_request *newest_completed(const tokencert_state_request *v, size_t n)
{
    for (; n > 0; n--)
        if (v[n - 1].state == TOKENCERT_RS_ACTIVE || v[n - 1].state == TOKENCERT_RS_INSTALLED)
            return &v[n - 1];
    return NULL;
}

/* The SANs of the current certificate: read from the token, or, when it is not there (deleted
 * by hand, or on another token), from the certificate the last completed request installed. */
static char *current_sans(run *r)
{
    unsigned char *der = NULL, md[32];
    unsigned int md_len = 0;
    size_t len = 0, n = 0;
    tokencert_state_request *rqs = NULL;
    const tokencert_state_request *q = NULL;
    char *out = NULL, sha[96];

    if (tokencert_state_requests(r->l->st, r->c->name, 0, &rqs, &n) == TC_OK)
        q = newest_completed(rqs, n);
    if (r->active_cert != NULL) {
        /* The store's copy when it is the certificate on the token: the token is not read. */
        if (q != NULL && q->cert != NULL &&
            EVP_Digest(q->cert, q->cert_len, md, &md_len, EVP_sha256(), NULL) == 1 &&
            md_len == sizeof md) {
            tc_hex_upper(md, md_len, ':', sha);
            if (strcmp(sha, r->active_cert->sha256) == 0) {
                out = sans_of_der(q->cert, q->cert_len);
                goto out;
            }
        }
        if (tokencert_export(r->t, r->active_cert->uri, 0, &der, &len) == TC_OK)
            out = sans_of_der(der, len);
        free(der);
        goto out;
    }
    if (q != NULL)
        /* The certificate, else what was requested (enroll keeps no copy). */
        out = q->cert != NULL ? sans_of_der(q->cert, q->cert_len)
                              : tc_strdup(q->san != NULL ? q->san : "");
out:
    tokencert_state_requests_free(rqs, n);
    return out != NULL ? out : tc_strdup("");
}

/* The subject of the newest request that named one; NULL when none did. */
static char *last_requested_subject(run *r)
{
    tokencert_state_request *rqs = NULL;
    size_t n = 0, i;
    char *out = NULL;

    if (tokencert_state_requests(r->l->st, r->c->name, 0, &rqs, &n) == TC_OK)
        for (i = n; out == NULL && i > 0; i--)
            if (rqs[i - 1].subject != NULL && rqs[i - 1].subject[0] != '\0')
                out = tc_strdup(rqs[i - 1].subject);
    tokencert_state_requests_free(rqs, n);
    return out;
}

/* The key type of the current key: read from the token, else the type the last completed
 * request made; the default when nothing tells. */
static char *current_key_type(run *r)
{
    tokencert_state_request *rqs = NULL;
    const tokencert_state_request *q;
    size_t n = 0;
    char *out = key_type_of(r->active_tc);

    if (out == NULL && tokencert_state_requests(r->l->st, r->c->name, 0, &rqs, &n) == TC_OK &&
        (q = newest_completed(rqs, n)) != NULL && q->key_type != NULL)
        out = tc_strdup(q->key_type);
    tokencert_state_requests_free(rqs, n);
    return out != NULL ? out : tc_strdup(TOKENCERT_KEY_TYPE_DEFAULT);
}

/* Installs the issued certificate (and the CA's) and switches over in one transaction. */
static int anchor_on_token(const run *r)
{
    size_t i;
    for (i = 0; r->opened != NULL && r->c->ca_dir != NULL && i < r->opened->n_anchors; i++)
        if (strcmp(r->opened->anchors[i], r->c->ca_dir) == 0)
            return 1;
    return 0;
}

static void anchor_put(run *r)
{
    char *dir;
    if (r->opened == NULL || r->c->ca_dir == NULL || anchor_on_token(r))
        return;
    dir = tc_strdup(r->c->ca_dir);
    /* Out of memory: the next credential only asks the token again. */
    if (dir != NULL && ptr_push(&r->opened->anchors, &r->opened->n_anchors, dir) != 0)
        free(dir);
}

static tokencert_err install(run *r, tokencert_state_request *rq, tokencert_outcome *result)
{
    lc *l = r->l;
    tokencert_import_input in[2];
    tokencert_import_opts io;
    tokencert_import_item *items = NULL;
    size_t n_items = 0, n_in = 1, i;
    unsigned char *ca_der = NULL;
    size_t ca_len = 0;
    char *anchor = ca_anchor_file(r->c, l->cfg), *why;
    tokencert_state_generation g;
    const unsigned char *p = rq->cert;
    X509 *x;
    char sha[96], serial[128], subj[1024], iss[1024], na[32];
    unsigned char md[32];
    unsigned int md_len = 0;
    BIGNUM *bn;
    char *hex;
    tokencert_err err;
    tokencert_err code = TC_ERR_INTERNAL;

    memset(in, 0, sizeof in);
    memset(&io, 0, sizeof io);
    /* Also when the request says installed: the token is the truth, and importing the same
     * certificate again changes nothing, so a run that stopped after the import (or a certificate
     * deleted by hand since) ends with the certificate on the token before the switch-over. */
    {
        int again = rq->state == TOKENCERT_RS_INSTALLED;
        why = check_issued(r, rq, rq->cert, rq->cert_len);
        if (why != NULL) {
            /* The certificate is refused; a retry sends a new request for the same key. */
            free(rq->cert);
            rq->cert = NULL;
            rq->cert_len = 0;
            ca_refused(r, rq);
            request_fail(r, rq, TOKENCERT_RS_KEY_GENERATED, why);
            free(why);
            free(anchor);
            *result = TOKENCERT_OUTCOME_FAILED;
            return TC_ERR_BAD_DATA;
        }
        in[0].data = rq->cert;
        in[0].len = rq->cert_len;
        in[0].name = "the issued certificate";
        /* The local CA's certificate goes onto the token beside the first certificate it issued
         * there; once this run has put it there (or found it), the others need not ask. */
        if (strcmp(r->c->ca_protocol, "local") == 0 && !anchor_on_token(r) &&
            tokencert_ca_cert(r->ctx, r->c->ca_dir, &ca_der, &ca_len) == TC_OK) {
            in[1].data = ca_der;
            in[1].len = ca_len;
            in[1].name = anchor;
            n_in = 2;
        }
        io.ca_file = anchor;
        err = tokencert_import(r->t, in, n_in, &io, &items, &n_items);
        if (err != TC_OK) {
            char *msg = tc_asprintf("installing the certificate: %s", tokencert_ctx_error(r->ctx));
            request_fail(r, rq, TOKENCERT_RS_ISSUED, msg ? msg : "installing failed");
            free(msg);
            free(anchor);
            free(ca_der);
            *result = TOKENCERT_OUTCOME_FAILED;
            return err;
        }
        tokencert_import_items_free(items, n_items);
        if (n_in == 2)
            anchor_put(r);
        if (!again) {
            code = set_state(r, rq, TOKENCERT_RS_INSTALLED);
            if (code != TC_OK)
                goto out;
            tokencert_engine_log(l, r->c->name, "installed", "ok",
                                 "request %lld: certificate on the token", rq->id);
        }
    }
    /* Switch-over: the new generation active, the old one superseded, the request done. */
    x = d2i_X509(NULL, &p, (long)rq->cert_len);
    if (x == NULL)
        goto out;
    X509_digest(x, EVP_sha256(), md, &md_len);
    tc_hex_upper(md, md_len, ':', sha);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    snprintf(serial, sizeof serial, "%s", hex != NULL ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
    name_string(X509_get_subject_name(x), subj, sizeof subj);
    name_string(X509_get_issuer_name(x), iss, sizeof iss);
    memset(&g, 0, sizeof g);
    g.credential = r->c->name;
    g.state = TOKENCERT_GEN_ACTIVE;
    g.token_serial = r->serial;
    g.key_id = rq->key_id;
    g.cert_sha256 = sha;
    g.serial = serial;
    g.subject = subj;
    g.issuer = iss;
    {
        struct tm tb, ta;
        int ok = ASN1_TIME_to_tm(X509_get0_notBefore(x), &tb) == 1 &&
                 ASN1_TIME_to_tm(X509_get0_notAfter(x), &ta) == 1;
        X509_free(x);
        if (!ok) {
            /* check_issued() accepted it, so this is not expected; said, not guessed. */
            complain(l,
                     "%s: the certificate of request %lld has a validity date that cannot be "
                     "read",
                     r->c->name, rq->id);
            code = TC_ERR_BAD_DATA;
            goto out;
        }
        g.not_before = timegm(&tb);
        g.not_after = timegm(&ta);
    }
    g.installed = tc_now();
    g.request = rq->id;
    if (tokencert_state_begin(l->st) != TC_OK)
        goto db_fail;
    for (i = 0; i < r->n_gens; i++) {
        if (r->gens[i].state != TOKENCERT_GEN_ACTIVE)
            continue;
        r->gens[i].state = TOKENCERT_GEN_SUPERSEDED;
        r->gens[i].superseded = g.installed;
        if (st_generation_update(l, &r->gens[i]) != TC_OK)
            goto db_fail;
    }
    if (st_generation_add(l, &g) != TC_OK)
        goto db_fail;
    rq->state = TOKENCERT_RS_ACTIVE;
    if (st_request_update(l, rq) != TC_OK)
        goto db_fail;
    if (tokencert_state_commit(l->st) != TC_OK)
        goto db_fail;
    tc_time_iso(g.not_after, na, sizeof na);
    tokencert_engine_log(l, r->c->name, "renewed", "ok",
                         "generation %lld active (serial %s, until %s)%s", g.number, serial, na,
                         r->active != NULL ? "; the previous one superseded" : "");
    if (r->enrolled != NULL) {
        r->enrolled->serial = tc_strdup(serial);
        r->enrolled->subject = tc_strdup(subj);
        r->enrolled->not_after = g.not_after;
    } else {
        say(l, "%s: generation %lld installed and active: serial %s, valid until %s (%ld days)",
            r->c->name, g.number, serial, na, tc_days_between(tc_now(), g.not_after));
    }
    if (r->active != NULL && r->active_cert != NULL) {
        char old[32];
        tc_time_iso(r->active_cert->not_after, old, sizeof old);
        say(l,
            "%s: generation %lld superseded; it keeps working until %s and is pruned after "
            "that",
            r->c->name, r->active->number, old);
    }
    r->new_key_id = rq->key_id;
    run_hook(r, "after-renewal", r->c->hook_after, sha, na, NULL);
    r->new_key_id = NULL;
    *result = TOKENCERT_OUTCOME_RENEWED;
    code = TC_OK;
    goto out;
db_fail:
    tokencert_state_rollback(l->st);
    code = fail(l, l->ctx, TC_ERR_IO, "recording the switch-over");
out:
    free(anchor);
    free(ca_der);
    return code;
}

/* The CA rejected rq, or could not be asked (at: the step it was asked in): recorded, said, and
 * res cleared. No token is needed for it. */
static tokencert_err ca_said_no(run *r, tokencert_state_request *rq, ca_result *res,
                                tokencert_request_state at, tokencert_outcome *result)
{
    lc *l = r->l;
    tokencert_err code;

    if (res->kind == CA_REJECTED) {
        free(rq->last_error);
        rq->last_error = res->reason;
        res->reason = NULL;
        code = set_state(r, rq, TOKENCERT_RS_REJECTED);
        tokencert_engine_log(l, r->c->name, "rejected", "rejected", "request %lld: %s", rq->id,
                             rq->last_error);
        complain(l, "%s: CA '%s' rejected request %lld: %s", r->c->name, r->c->ca, rq->id,
                 rq->last_error);
        ca_result_clear(res);
        *result = TOKENCERT_OUTCOME_REJECTED;
        return code != TC_OK ? code : TC_ERR_REJECTED;
    }
    request_fail(r, rq, at, res->reason ? res->reason : "the CA failed");
    ca_result_clear(res);
    *result = TOKENCERT_OUTCOME_FAILED;
    return TC_ERR_CA;
}

/* Drives rq from its state to the end, or to the first wait (pending) or failure. */
static tokencert_err drive(run *r, tokencert_state_request *rq, tokencert_outcome *result)
{
    lc *l = r->l;
    tokencert_keygen_result kr;
    tokencert_csr_params cp;
    ca_result res;
    unsigned char *csr = NULL;
    size_t csr_len = 0;
    char *key_uri, **sans = NULL;
    size_t n_sans = 0;
    tokencert_err err;
    tokencert_err code;

    for (;;) {
        tokencert_request_state s = rq->state == TOKENCERT_RS_FAILED ? rq->failed_at : rq->state;
        switch (s) {
        case TOKENCERT_RS_KEY_GENERATING:
        case TOKENCERT_RS_CREATED:
            if (s == TOKENCERT_RS_KEY_GENERATING) {
                /* Interrupted during key generation: what it left is removed, then again. */
                code = cleanup_unknown_keys(r);
                if (code != TC_OK)
                    return code;
            }
            if (rq->key_reused) {
                code = set_state(r, rq, TOKENCERT_RS_KEY_GENERATED);
                if (code != TC_OK)
                    return code;
                continue;
            }
            code = set_state(r, rq, TOKENCERT_RS_KEY_GENERATING);
            if (code != TC_OK)
                return code;
            memset(&kr, 0, sizeof kr);
            working(l, "%s: generating a %s key on the token", r->c->name,
                    rq->key_type ? rq->key_type : TOKENCERT_KEY_TYPE_DEFAULT);
            /* A first enrollment checked the label in this session already (label_free). */
            err = tokencert_keygen_ex(r->t, rq->key_type, r->c->label,
                                      TOKENCERT_KEYGEN_SHARED_LABEL, &kr);
            if (err != TC_OK) {
                code = fail(r->l, r->ctx, err, "generating the key");
                request_fail(r, rq, TOKENCERT_RS_CREATED, tokencert_ctx_error(r->ctx));
                *result = TOKENCERT_OUTCOME_FAILED;
                return code;
            }
            free(rq->key_id);
            rq->key_id = kr.id;
            kr.id = NULL;
            tokencert_keygen_result_clear(&kr);
            code = set_state(r, rq, TOKENCERT_RS_KEY_GENERATED);
            if (code != TC_OK)
                return code;
            tokencert_engine_log(l, r->c->name, "key generated", "ok", "request %lld: %s key %s",
                                 rq->id, rq->key_type ? rq->key_type : TOKENCERT_KEY_TYPE_DEFAULT,
                                 rq->key_id);
            continue;
        case TOKENCERT_RS_KEY_GENERATED:
        case TOKENCERT_RS_SUBMITTING:
            code = set_state(r, rq, TOKENCERT_RS_SUBMITTING);
            if (code != TC_OK)
                return code;
            memset(&cp, 0, sizeof cp);
            cp.subject = rq->subject;
            if (rq->san != NULL && *rq->san) {
                char *dup = tc_strdup(rq->san), *tok, *save = NULL;
                sans = calloc(64, sizeof *sans);
                for (tok = strtok_r(dup, ",", &save); sans && tok && n_sans < 64;
                     tok = strtok_r(NULL, ",", &save))
                    sans[n_sans++] = tc_strdup(tok);
                free(dup);
            }
            cp.san = (const char *const *)sans;
            cp.n_san = n_sans;
            key_uri = tokencert_object_uri(r->token_uri, r->c->label, rq->key_id, "private");
            err = tokencert_csr(r->t, key_uri, &cp, &csr, &csr_len);
            free(key_uri);
            while (n_sans > 0)
                free(sans[--n_sans]);
            free(sans);
            sans = NULL;
            if (err != TC_OK) {
                code = fail(r->l, r->ctx, err, "signing the request");
                request_fail(r, rq, TOKENCERT_RS_KEY_GENERATED, tokencert_ctx_error(r->ctx));
                *result = TOKENCERT_OUTCOME_FAILED;
                return code;
            }
            ca_submit(r, rq, csr, csr_len, &res);
            free(csr);
            csr = NULL;
            tokencert_engine_log(l, r->c->name, "submitted", res.kind == CA_ERROR ? "failed" : "ok",
                                 "request %lld to CA '%s'%s%s", rq->id, r->c->ca,
                                 res.handle ? ", CA request " : "", res.handle ? res.handle : "");
            break;
        case TOKENCERT_RS_PENDING:
            ca_poll(r, rq, &res);
            break;
        case TOKENCERT_RS_ISSUED:
        case TOKENCERT_RS_INSTALLED:
            rq->state = s; /* a failed install is resumed where it failed */
            return install(r, rq, result);
        default:
            *result = TOKENCERT_OUTCOME_FAILED;
            return TC_ERR_INTERNAL;
        }
        /* An answer from the CA. */
        if (res.handle != NULL) {
            free(rq->ca_request_id);
            rq->ca_request_id = res.handle;
            res.handle = NULL;
        }
        switch (res.kind) {
        case CA_ISSUED:
            free(rq->cert);
            rq->cert = res.cert;
            rq->cert_len = res.cert_len;
            res.cert = NULL;
            code = set_state(r, rq, TOKENCERT_RS_ISSUED);
            ca_result_clear(&res);
            if (code != TC_OK)
                return code;
            tokencert_engine_log(l, r->c->name, "issued", "ok", "request %lld", rq->id);
            continue;
        case CA_PENDING:
            rq->next_poll = next_poll_after(&res);
            code = set_state(r, rq, TOKENCERT_RS_PENDING);
            ca_result_clear(&res);
            if (code != TC_OK)
                return code;
            if (!r->first)
                say(l,
                    "%s: request %lld is pending at CA '%s' (CA request %s); tokencert poll "
                    "installs the certificate once it is issued",
                    r->c->name, rq->id, r->c->ca, rq->ca_request_id ? rq->ca_request_id : "-");
            *result = TOKENCERT_OUTCOME_PENDING;
            return TC_ERR_PENDING;
        case CA_REJECTED:
        case CA_ERROR:
            return ca_said_no(
                r, rq, &res,
                s == TOKENCERT_RS_PENDING ? TOKENCERT_RS_PENDING : TOKENCERT_RS_SUBMITTING, result);
        }
    }
}

static int newest_open(lc *l, const char *name, tokencert_state_request *out)
{
    tokencert_state_request *v = NULL;
    size_t n = 0, i;
    if (st_requests(l, name, 1, &v, &n) != TC_OK)
        return -1;
    if (n == 0) {
        tokencert_state_requests_free(v, n);
        return 0;
    }
    *out = v[n - 1];
    memset(&v[n - 1], 0, sizeof v[n - 1]);
    for (i = 0; i + 1 < n; i++) {
        /* Older open requests were overtaken by a newer one. */
        v[i].state = TOKENCERT_RS_ABANDONED;
        if (st_request_update(l, &v[i]) != TC_OK) {
            tokencert_state_request_clear(out);
            memset(out, 0, sizeof *out);
            tokencert_state_requests_free(v, n);
            return -1;
        }
    }
    tokencert_state_requests_free(v, n);
    return 1;
}

/* Whether the credential's newest request was rejected by its CA (then in out, to be cleared). */
static int newest_rejected(lc *l, const char *name, tokencert_state_request *out)
{
    tokencert_state_request *v = NULL;
    size_t n = 0;
    int rejected = 0;

    if (tokencert_state_requests(l->st, name, 0, &v, &n) == TC_OK && n > 0 &&
        v[n - 1].state == TOKENCERT_RS_REJECTED) {
        *out = v[n - 1];
        memset(&v[n - 1], 0, sizeof v[n - 1]);
        rejected = 1;
    }
    tokencert_state_requests_free(v, n);
    return rejected;
}

static tokencert_err renew_one(lc *l, lc_cred *c, int force, int poll_only,
                               tokencert_outcome *result)
{
    run r;
    tokencert_state_request rq;
    tokencert_err err;
    tokencert_err code;
    int have, moving = 0;
    time_t now = tc_now();
    char when[32];
    const char *foreign;

    memset(&r, 0, sizeof r);
    memset(&rq, 0, sizeof rq);
    r.l = l;
    r.c = c;
    *result = TOKENCERT_OUTCOME_FAILED;
    code = run_ctx(&r);
    if (code != TC_OK)
        goto out;
    code = reconcile(&r);
    if (code == TC_ERR_TOKEN_ABSENT) {
        code = defer(&r, result);
        goto out;
    }
    if (code != TC_OK)
        goto out;
    have = newest_open(l, c->name, &rq);
    if (have < 0) {
        code = fail(l, l->ctx, TC_ERR_IO, "reading the state store");
        goto out;
    }
    /* Another token answers to the credential's URI (same label): nothing is done to it
     * unattended, nor by renew --all. Named, the credential moves onto it: a request whose key
     * is on the other token is given up, and the new generation is made here. */
    foreign = foreign_token(&r, have ? &rq : NULL);
    if (foreign != NULL) {
        char home[128]; /* copied: rq is cleared below */
        int move = force && l->named && !poll_only;
        snprintf(home, sizeof home, "%s", home_token(&r, have ? &rq : NULL));
        if (l->dry_run) {
            if (move)
                say(l,
                    "%s: would move onto the token present (serial %s) and renew there; what "
                    "is on token serial %s would stay there",
                    c->name, foreign, home);
            else
                say(l,
                    "%s: would defer: the token present (serial %s) is not the one the "
                    "credential is on (serial %s)",
                    c->name, foreign, home);
            *result = move ? TOKENCERT_OUTCOME_WOULD_RENEW : TOKENCERT_OUTCOME_WOULD_DEFER;
            code = TC_OK;
            goto out;
        }
        if (!move) {
            code = defer_on(&r, result, foreign, home);
            goto out;
        }
        say(l,
            "%s: moving onto the token present (serial %s); what is on token serial %s stays "
            "there",
            c->name, foreign, home);
        if (have) {
            rq.state = TOKENCERT_RS_ABANDONED;
            free(rq.last_error);
            rq.last_error = tc_asprintf("given up: its key is on token serial %s", home);
            if (st_request_update(l, &rq) != TC_OK) {
                code = fail(l, l->ctx, TC_ERR_IO, "recording the request");
                goto out;
            }
            tokencert_engine_log(
                l, c->name, "abandoned", "other token",
                "request %lld: its key is on token serial %s; renewing on serial %s", rq.id, home,
                foreign);
            tokencert_state_request_clear(&rq);
            memset(&rq, 0, sizeof rq);
            have = 0;
        }
        moving = 1;
    }
    if (!have) {
        if (poll_only) {
            *result = TOKENCERT_OUTCOME_NOTHING_PENDING;
            code = TC_OK;
            goto out;
        }
        if (!force && !moving && r.active != NULL && r.active_cert != NULL) {
            time_t due = lc_due_at(c, r.active_cert->not_before, r.active_cert->not_after);
            if (now < due) {
                tc_time_iso(due, when, sizeof when);
                if (!l->quiet)
                    say(l, "%s: not due: renewal starts on %s (%ld days left)", c->name, when,
                        r.active_cert->days_left);
                *result = TOKENCERT_OUTCOME_NOT_DUE;
                code = cred_record(&r, "not due", NULL);
                goto out;
            }
        }
        /* The CA said no to the last request: not asked again unattended (a timer would submit
         * twice a day to an operator who said no); a named renew asks anew. */
        if (!force && newest_rejected(l, c->name, &rq)) {
            tc_time_iso(rq.updated, when, sizeof when);
            complain(l,
                     "%s: CA '%s' rejected request %lld on %s (%s); it is not asked "
                     "again unattended: 'tokencert renew %s' requests anew",
                     c->name, c->ca, rq.id, when, rq.last_error ? rq.last_error : "no reason given",
                     c->name);
            *result = TOKENCERT_OUTCOME_REJECTED;
            cred_record(&r, "rejected", rq.last_error);
            tokencert_state_request_clear(&rq);
            memset(&rq, 0, sizeof rq);
            code = TC_ERR_REJECTED;
            goto out;
        }
        if (force && l->gen_mark >= 0) {
            size_t i;
            for (i = 0; i < r.n_gens; i++)
                if (r.gens[i].id > l->gen_mark) {
                    say(l,
                        "%s: renewed by another tokencert run just now (generation %lld); not "
                        "renewed again",
                        c->name, r.gens[i].number);
                    *result = TOKENCERT_OUTCOME_RENEWED;
                    code = TC_OK;
                    goto out;
                }
        }
        if (l->dry_run) {
            say(l, "%s: would renew now with a %s, at CA '%s'", c->name,
                c->reuse_key ? "the current key" : "new key", c->ca);
            *result = TOKENCERT_OUTCOME_WOULD_RENEW;
            code = TC_OK;
            goto out;
        }
    } else {
        if (l->dry_run) {
            say(l, "%s: would continue request %lld (%s)", c->name, rq.id,
                tokencert_request_state_name(rq.state));
            *result = TOKENCERT_OUTCOME_WOULD_CONTINUE;
            code = TC_OK;
            goto out;
        }
        if (rq.state == TOKENCERT_RS_FAILED && !force && rq.next_poll > now) {
            tc_time_iso(rq.next_poll, when, sizeof when);
            complain(l, "%s: request %lld failed (%s); next try after %s", c->name, rq.id,
                     rq.last_error ? rq.last_error : "?", when);
            *result = TOKENCERT_OUTCOME_FAILED;
            code = TC_ERR_CA;
            goto out;
        }
        if (poll_only && rq.state != TOKENCERT_RS_PENDING && rq.state != TOKENCERT_RS_ISSUED &&
            rq.state != TOKENCERT_RS_INSTALLED &&
            !(rq.state == TOKENCERT_RS_FAILED && rq.failed_at == TOKENCERT_RS_PENDING)) {
            *result = TOKENCERT_OUTCOME_NOTHING_PENDING;
            code = TC_OK;
            goto out;
        }
    }
    /* A pending request: the CA is asked first; the token (and its PIN) only when there is
     * something to install. */
    if (have && rq.state == TOKENCERT_RS_PENDING && !force && !poll_only && rq.next_poll > now) {
        /* An unattended run asks the CA no sooner than it said (Retry-After), or than an hour
         * after the last answer; poll and a named renew ask now. */
        tc_time_iso(rq.next_poll, when, sizeof when);
        say(l,
            "%s: request %lld is pending at CA '%s' (CA request %s); the CA is asked again after "
            "%s",
            c->name, rq.id, c->ca, rq.ca_request_id ? rq.ca_request_id : "-", when);
        *result = TOKENCERT_OUTCOME_PENDING;
        code = TC_ERR_PENDING;
        cred_record(&r, "pending", NULL);
        goto out;
    }
    if (have && (rq.state == TOKENCERT_RS_PENDING ||
                 (rq.state == TOKENCERT_RS_FAILED && rq.failed_at == TOKENCERT_RS_PENDING))) {
        ca_result res;
        ca_poll(&r, &rq, &res);
        if (res.kind == CA_REJECTED || res.kind == CA_ERROR) {
            /* Recorded without the token (nor its PIN): nothing is installed. */
            code = ca_said_no(&r, &rq, &res, TOKENCERT_RS_PENDING, result);
            cred_record(&r, tokencert_outcome_name(*result), rq.last_error);
            if (code != TC_ERR_REJECTED)
                run_hook(&r, "failure", c->hook_failure, NULL, NULL, rq.last_error);
            goto out;
        }
        if (res.kind == CA_PENDING) {
            rq.state = TOKENCERT_RS_PENDING;
            rq.next_poll = next_poll_after(&res);
            if (st_request_update(l, &rq) != TC_OK) {
                ca_result_clear(&res);
                code = fail(l, l->ctx, TC_ERR_IO, "recording the request");
                goto out;
            }
            say(l,
                "%s: request %lld is pending at CA '%s' (CA request %s); tokencert poll "
                "installs the certificate once it is issued",
                c->name, rq.id, c->ca, rq.ca_request_id ? rq.ca_request_id : "-");
            ca_result_clear(&res);
            *result = TOKENCERT_OUTCOME_PENDING;
            code = TC_ERR_PENDING;
            cred_record(&r, "pending", NULL);
            goto out;
        }
        if (res.kind == CA_ISSUED) {
            free(rq.cert);
            rq.cert = res.cert;
            rq.cert_len = res.cert_len;
            res.cert = NULL;
            rq.state = TOKENCERT_RS_ISSUED;
            if (st_request_update(l, &rq) != TC_OK) {
                ca_result_clear(&res);
                code = fail(l, l->ctx, TC_ERR_IO, "recording the issued certificate");
                goto out;
            }
            tokencert_engine_log(l, c->name, "issued", "ok", "request %lld", rq.id);
        }
        ca_result_clear(&res);
    }
    code = open_token(&r);
    if (code != TC_OK) {
        if (code == TC_ERR_TOKEN_ABSENT)
            code = defer(&r, result);
        goto out;
    }
    if (!have) {
        char *subject = xstrdup(c->subject), *san = NULL;
        if (subject == NULL && r.active_cert != NULL)
            subject = xstrdup(r.active_cert->subject);
        /* The certificate gone from the token (deleted by hand): the store remembers it. */
        for (size_t i = r.n_gens; subject == NULL && i > 0; i--)
            if (r.gens[i - 1].subject != NULL && r.gens[i - 1].subject[0] != '\0')
                subject = xstrdup(r.gens[i - 1].subject);
        /* No certificate ever (the first request rejected): what was requested. */
        if (subject == NULL)
            subject = last_requested_subject(&r);
        if (c->san_set) {
            size_t i;
            san = tc_strdup("");
            for (i = 0; san != NULL && i < c->n_san; i++) {
                char *n2 = tc_asprintf("%s%s%s", san, i ? "," : "", c->san[i]);
                free(san);
                san = n2;
            }
        } else {
            san = current_sans(&r);
        }
        if (subject == NULL) {
            complain(l,
                     "%s: no subject: there is no current certificate to take it "
                     "from; configure subject",
                     c->name);
            free(san);
            code = TC_ERR_BAD_DATA;
            goto out;
        }
        if (run_hook(&r, "before-renewal", c->hook_before, NULL, NULL, NULL) != 0) {
            complain(l, "%s: the before-renewal hook failed: not renewed", c->name);
            free(subject);
            free(san);
            code = TC_ERR_CANCELLED;
            goto out;
        }
        rq.credential = tc_strdup(c->name);
        rq.state = TOKENCERT_RS_CREATED;
        rq.token_serial = xstrdup(r.serial);
        rq.key_reused = l->key_policy == 2 || (l->key_policy == 0 && c->reuse_key);
        if (rq.key_reused && moving) {
            complain(l,
                     "%s: the current key is on another token (serial %s): it "
                     "cannot be reused here; --rekey makes a new one",
                     c->name, r.active->token_serial);
            free(subject);
            free(san);
            code = TC_ERR_BAD_DATA;
            goto out;
        }
        if (rq.key_reused && r.active == NULL) {
            complain(l, "%s: no current key to reuse", c->name);
            free(subject);
            free(san);
            code = TC_ERR_BAD_DATA;
            goto out;
        }
        rq.key_id = rq.key_reused ? xstrdup(r.active->key_id) : NULL;
        rq.key_type = c->key_type != NULL ? tc_strdup(c->key_type) : current_key_type(&r);
        rq.subject = subject;
        rq.san = san;
        rq.ca = tc_strdup(c->ca);
        code = cred_record(&r, "renewing", NULL);
        if (code != TC_OK)
            goto out;
        if (st_request_add(l, &rq) != TC_OK) {
            code = fail(l, l->ctx, TC_ERR_IO, "recording the request");
            goto out;
        }
        tokencert_engine_log(l, c->name, "renewal started", "ok", "request %lld: %s, subject %s",
                             rq.id, rq.key_reused ? "the current key" : "a new key", rq.subject);
    } else if (rq.state != TOKENCERT_RS_PENDING) {
        say(l, "%s: continuing request %lld (%s)", c->name, rq.id,
            tokencert_request_state_name(rq.state == TOKENCERT_RS_FAILED ? rq.failed_at
                                                                         : rq.state));
    }
    code = drive(&r, &rq, result);
    /* Its failure is said; it decides the exit only when the renewal itself went well. */
    if (cred_record(&r, tokencert_outcome_name(*result), rq.last_error) != TC_OK && code == TC_OK)
        code = TC_ERR_IO;
    if (code != TC_OK && code != TC_ERR_PENDING)
        run_hook(&r, "failure", c->hook_failure, NULL, NULL, rq.last_error);
out:
    /* Not renewed in this run (pending, failed, waiting for a retry, the token absent). */
    if (code != TC_OK)
        expiring_hook(&r, code == TC_ERR_TOKEN_ABSENT ? "the token is not present" : rq.last_error);
    (void)err;
    tokencert_state_request_clear(&rq);
    run_clear(&r);
    return code;
}

const char *tokencert_outcome_name(tokencert_outcome o)
{
    switch (o) {
    case TOKENCERT_OUTCOME_FAILED:
        return "failed";
    case TOKENCERT_OUTCOME_RENEWED:
        return "renewed";
    case TOKENCERT_OUTCOME_PENDING:
        return "pending";
    case TOKENCERT_OUTCOME_NOT_DUE:
        return "not due";
    case TOKENCERT_OUTCOME_DEFERRED:
        return "deferred";
    case TOKENCERT_OUTCOME_REJECTED:
        return "rejected";
    case TOKENCERT_OUTCOME_NOTHING_PENDING:
        return "nothing pending";
    case TOKENCERT_OUTCOME_WOULD_RENEW:
        return "would renew";
    case TOKENCERT_OUTCOME_WOULD_CONTINUE:
        return "would continue";
    case TOKENCERT_OUTCOME_WOULD_DEFER:
        return "would defer";
    }
    return "?";
}

tokencert_err tokencert_engine_renew(tokencert_engine *l, size_t i, unsigned flags,
                                     tokencert_outcome *outcome)
{
    tokencert_err err;
    tokencert_outcome o = TOKENCERT_OUTCOME_FAILED;
    if (l == NULL || i >= l->n_creds)
        return TC_ERR_INVALID_ARG;
    l->named = (flags & TOKENCERT_RENEW_NAMED) != 0;
    l->current = l->creds[i].name;
    err = renew_one(l, &l->creds[i], (flags & TOKENCERT_RENEW_FORCE) != 0, 0, &o);
    l->current = NULL;
    l->named = 0;
    if (outcome != NULL)
        *outcome = o;
    return err;
}

tokencert_err tokencert_engine_poll(tokencert_engine *l, size_t i, tokencert_outcome *outcome)
{
    tokencert_err err;
    tokencert_outcome o = TOKENCERT_OUTCOME_FAILED;
    if (l == NULL || i >= l->n_creds)
        return TC_ERR_INVALID_ARG;
    l->current = l->creds[i].name;
    err = renew_one(l, &l->creds[i], 0, 1, &o);
    l->current = NULL;
    if (outcome != NULL)
        *outcome = o;
    return err;
}

/* ---- prune ------------------------------------------------------------------------------ */

/* Whether objects recorded on the token with that serial are on the token opened. */
static int on_this_token(const run *r, const char *serial)
{
    return serial == NULL || serial[0] == '\0' || r->serial == NULL ||
           strcmp(serial, r->serial) == 0;
}

static tokencert_err prune_one(lc *l, lc_cred *c, long long grace, size_t *n_pruned)
{
    run r;
    tokencert_state_request *rqs = NULL;
    size_t n_rqs = 0, i, j, del;
    time_t now = tc_now();
    tokencert_err err;
    tokencert_err code;

    *n_pruned = 0;
    memset(&r, 0, sizeof r);
    r.l = l;
    r.c = c;
    /* Decided from the store: the token is opened (its module loaded) only for something to
     * delete. */
    code = gens_reload(&r);
    if (code != TC_OK)
        goto out;
    /* A key an open request still uses is kept: without the requests, nothing is pruned. */
    if (tokencert_state_requests(l->st, c->name, 0, &rqs, &n_rqs) != TC_OK) {
        code = fail(l, l->ctx, TC_ERR_IO, "reading the state store");
        goto out;
    }
    for (i = 0; i < r.n_gens; i++) {
        tokencert_state_generation *g = &r.gens[i];
        int key_needed = 0;
        char *uri;
        if (g->state != TOKENCERT_GEN_SUPERSEDED || g->not_after + grace > now)
            continue;
        for (j = 0; j < r.n_gens; j++)
            key_needed |= j != i && r.gens[j].state != TOKENCERT_GEN_PRUNED &&
                          r.gens[j].key_id != NULL && g->key_id != NULL &&
                          strcmp(r.gens[j].key_id, g->key_id) == 0;
        for (j = 0; j < n_rqs; j++)
            key_needed |= tokencert_request_state_open(rqs[j].state) && rqs[j].key_id != NULL &&
                          g->key_id != NULL && strcmp(rqs[j].key_id, g->key_id) == 0;
        if (l->dry_run) {
            char ended[32];
            tc_time_iso(g->not_after, ended, sizeof ended);
            say(l, "%s: would delete generation %lld (expired on %s)%s", c->name, g->number, ended,
                key_needed ? ", keeping its key (still in use)" : " and its key");
            (*n_pruned)++;
            continue;
        }
        if (r.t == NULL) {
            code = open_token(&r);
            if (code != TC_OK)
                goto out;
        }
        if (!on_this_token(&r, g->token_serial)) {
            say(l,
                "%s: generation %lld is on token serial %s, which is not present: kept until "
                "it is",
                c->name, g->number, g->token_serial);
            continue;
        }
        /* A key still in use keeps its objects; only this generation's certificate goes (the
         * other certificates of that key share its label and CKA_ID). */
        uri = tokencert_object_uri(r.token_uri, c->label, g->key_id, key_needed ? "cert" : NULL);
        err = uri == NULL ? TC_ERR_NOMEM
              : key_needed && g->cert_sha256 != NULL
                  ? tokencert_delete_cert(r.t, uri, g->cert_sha256, &del)
                  : tokencert_delete(r.t, uri, &del);
        if (err == TC_ERR_NOT_FOUND) {
            del = 0; /* deleted by hand already: nothing left to delete */
        } else if (err != TC_OK) {
            free(uri);
            code = fail(l, r.ctx, TC_ERR_PKCS11, "deleting a superseded generation");
            goto out;
        }
        free(uri);
        g->state = TOKENCERT_GEN_PRUNED;
        g->pruned = now;
        if (st_generation_update(l, g) != TC_OK) {
            code = fail(l, l->ctx, TC_ERR_IO, "recording the prune");
            goto out;
        }
        tokencert_engine_log(l, c->name, "pruned", "ok",
                             "generation %lld (serial %s): %zu objects deleted", g->number,
                             g->serial ? g->serial : "?", del);
        say(l, "%s: pruned generation %lld (serial %s, expired): %zu objects deleted", c->name,
            g->number, g->serial ? g->serial : "?", del);
        (*n_pruned)++;
    }
    /* Keys of requests that ended without a certificate. */
    for (j = 0; j < n_rqs; j++) {
        tokencert_state_request *q = &rqs[j];
        int used = 0;
        char *uri;
        if ((q->state != TOKENCERT_RS_ABANDONED && q->state != TOKENCERT_RS_REJECTED) ||
            q->key_id == NULL || q->key_reused)
            continue;
        for (i = 0; i < r.n_gens; i++)
            used |= r.gens[i].key_id != NULL && strcmp(r.gens[i].key_id, q->key_id) == 0;
        if (used)
            continue;
        if (l->dry_run) {
            say(l, "%s: would delete the key of request %lld (%s)", c->name, q->id,
                tokencert_request_state_name(q->state));
            continue;
        }
        if (r.t == NULL) {
            code = open_token(&r);
            if (code != TC_OK)
                goto out;
        }
        if (!on_this_token(&r, q->token_serial))
            continue; /* its key is on a token not present: deleted once that one is */
        uri = tokencert_object_uri(r.token_uri, c->label, q->key_id, NULL);
        if (uri != NULL && tokencert_delete(r.t, uri, &del) == TC_OK && del > 0) {
            tokencert_engine_log(l, c->name, "pruned", "ok", "key %s of request %lld", q->key_id,
                                 q->id);
            say(l, "%s: deleted the key of request %lld (%s)", c->name, q->id,
                tokencert_request_state_name(q->state));
        }
        free(q->key_id);
        q->key_id = NULL;
        free(uri);
        if (st_request_update(l, q) != TC_OK) {
            code = fail(l, l->ctx, TC_ERR_IO, "recording the prune");
            goto out;
        }
    }
    code = TC_OK;
out:
    tokencert_state_requests_free(rqs, n_rqs);
    run_clear(&r);
    return code;
}

tokencert_err tokencert_engine_prune(tokencert_engine *l, size_t i, long long grace,
                                     size_t *n_pruned)
{
    tokencert_err err;
    size_t n = 0;
    if (l == NULL || i >= l->n_creds)
        return TC_ERR_INVALID_ARG;
    l->current = l->creds[i].name;
    err = prune_one(l, &l->creds[i], grace, &n);
    l->current = NULL;
    if (n_pruned != NULL)
        *n_pruned = n;
    return err;
}

/* ---- status ----------------------------------------------------------------------------- */

/* What a status keeps alive for the strings it points to. */
typedef struct {
    run r;
    tokencert_state_request rq, *all;
    size_t n_all;
    tokencert_state_credential sc;
    char *key_uri;
} status_priv;

void tokencert_status_clear(tokencert_status *s)
{
    status_priv *p;
    if (s == NULL)
        return;
    p = s->priv;
    if (p != NULL) {
        tokencert_state_requests_free(p->all, p->n_all);
        tokencert_state_credential_clear(&p->sc);
        tokencert_state_request_clear(&p->rq);
        run_clear(&p->r);
        free(p->key_uri);
        free(p);
    }
    free(s->gens);
    memset(s, 0, sizeof *s);
}

static tokencert_err status_one(lc *l, lc_cred *c, tokencert_status *s)
{
    status_priv *p = calloc(1, sizeof *p);
    run *r;
    int have = 0, present;
    const char *foreign, *home;
    const tokencert_state_request *rej;
    tokencert_err code;
    time_t now = tc_now(), due = 0;
    char a[32];
    size_t i;

    memset(s, 0, sizeof *s);
    if (p == NULL)
        return TC_ERR_NOMEM;
    s->priv = p;
    s->cred = c;
    r = &p->r;
    r->l = l;
    r->c = c;
    code = l->st != NULL ? run_ctx(r) : TC_OK;
    if (code != TC_OK)
        return code;
    {
        int saved = l->dry_run;
        l->dry_run = 1; /* status never writes */
        code = l->st != NULL ? reconcile(r) : TC_OK;
        l->dry_run = saved;
    }
    present = code != TC_ERR_TOKEN_ABSENT;
    if (code != TC_OK && code != TC_ERR_TOKEN_ABSENT)
        return code;
    if (l->st != NULL) {
        have = newest_open(l, c->name, &p->rq) > 0;
        st_credential_get(l, c->name, &p->sc);
        st_requests(l, c->name, 0, &p->all, &p->n_all);
    }
    foreign = present ? foreign_token(r, have ? &p->rq : NULL) : NULL;
    home = home_token(r, have ? &p->rq : NULL);
    s->token_present = present;
    s->home_serial = home;
    s->other_serial = foreign;
    s->deferred_since = p->sc.deferred_since;
    /* The active certificate: as read on the token, or as recorded when it is on its own token
     * and that is not the one present. */
    if (r->active_cert != NULL) {
        s->has_active = 1;
        s->active.serial = r->active_cert->serial;
        s->active.sha256 = r->active_cert->sha256;
        s->active.subject = r->active_cert->subject;
        s->active.not_before = r->active_cert->not_before;
        s->active.not_after = r->active_cert->not_after;
        s->active.days_left = r->active_cert->days_left;
        s->active.on_token = 1;
        s->active.cert_uri = r->active_cert->uri;
        /* The key beside it: the token's URI (the one holding the credential), its label and
         * CKA_ID. */
        for (i = 0; r->inv != NULL && i < r->inv->n_tokens && p->key_uri == NULL; i++) {
            size_t j;
            for (j = 0; j < r->inv->tokens[i].n_creds; j++)
                if (r->active_tc == &r->inv->tokens[i].creds[j])
                    /* The private key may show only after login: named all the same. */
                    p->key_uri = tokencert_object_uri(r->inv->tokens[i].token.uri, c->label,
                                                      r->active_cert->id, "private");
        }
        s->active.key_uri = p->key_uri;
    } else if (r->active != NULL && foreign != NULL) {
        s->has_active = 1;
        s->active.serial = r->active->serial;
        s->active.sha256 = r->active->cert_sha256;
        s->active.subject = r->active->subject;
        s->active.not_before = r->active->not_before;
        s->active.not_after = r->active->not_after;
        s->active.days_left = tc_days_between(now, r->active->not_after);
    }
    if (s->has_active && s->active.sha256 == NULL)
        s->has_active = 0;
    if (s->has_active) {
        s->active.generation = r->active != NULL ? r->active->number : 0;
        due = lc_due_at(c, s->active.not_before, s->active.not_after);
        s->renewal_due = due;
        s->due = now >= due;
    } else {
        s->due = 1;
    }
    if (r->n_gens > 0 && (s->gens = calloc(r->n_gens, sizeof *s->gens)) == NULL)
        return TC_ERR_NOMEM;
    for (i = 0; i < r->n_gens; i++) {
        tokencert_status_generation *g = &s->gens[s->n_gens++];
        g->number = r->gens[i].number;
        g->state = r->gens[i].state;
        g->serial = r->gens[i].serial;
        g->sha256 = r->gens[i].cert_sha256;
        g->key_id = r->gens[i].key_id;
        g->not_after = r->gens[i].not_after;
        g->on_token = find_cert(r, r->gens[i].cert_sha256, NULL) != NULL;
    }
    if (have) {
        s->has_request = 1;
        s->request.id = p->rq.id;
        s->request.state = p->rq.state;
        s->request.ca_request_id = p->rq.ca_request_id;
        s->request.since = p->rq.created;
        s->request.next_poll = p->rq.next_poll;
        s->request.attempts = p->rq.attempts;
        s->request.last_error = p->rq.last_error;
    }
    /* The CA said no to the newest request: renewal waits for the user. */
    rej = !have && p->n_all > 0 && p->all[p->n_all - 1].state == TOKENCERT_RS_REJECTED
              ? &p->all[p->n_all - 1]
              : NULL;
    if (rej != NULL) {
        s->has_rejected = 1;
        s->rejected.id = rej->id;
        s->rejected.on = rej->updated;
        s->rejected.reason = rej->last_error;
    }
    s->last_result = p->sc.last_result;
    s->last_error = have && p->rq.last_error != NULL ? p->rq.last_error : p->sc.last_error;
    /* The next action, in plain words. */
    if (!present)
        snprintf(s->next_action, sizeof s->next_action, "insert token %s; renewal waits for it",
                 c->token_uri);
    else if (foreign != NULL)
        snprintf(s->next_action, sizeof s->next_action,
                 "insert the token with serial %s, the one the credential is on (the one present "
                 "is serial %s); or move the credential onto this one: tokencert renew %s",
                 home, foreign, c->name);
    else if (have && p->rq.state == TOKENCERT_RS_PENDING)
        snprintf(s->next_action, sizeof s->next_action,
                 "waiting for CA '%s' to approve request %s; tokencert poll installs it", c->ca,
                 p->rq.ca_request_id ? p->rq.ca_request_id : "?");
    else if (have && p->rq.state == TOKENCERT_RS_FAILED) {
        tc_time_iso(p->rq.next_poll, a, sizeof a);
        snprintf(s->next_action, sizeof s->next_action,
                 "retry of request %lld after %s (tokencert renew %s)", p->rq.id, a, c->name);
    } else if (have)
        snprintf(s->next_action, sizeof s->next_action, "continue request %lld: tokencert renew %s",
                 p->rq.id, c->name);
    else if (rej != NULL && (!s->has_active || now >= due))
        snprintf(s->next_action, sizeof s->next_action,
                 "CA '%s' rejected request %lld (%s): see to it, then tokencert renew %s requests "
                 "anew",
                 c->ca, rej->id, rej->last_error ? rej->last_error : "no reason given", c->name);
    else if (r->active_cert == NULL)
        snprintf(s->next_action, sizeof s->next_action, "no valid certificate: tokencert renew %s",
                 c->name);
    else if (now >= due)
        snprintf(s->next_action, sizeof s->next_action,
                 "renewal is due: tokencert renew %s (or the timer)", c->name);
    else {
        tc_time_iso(due, a, sizeof a);
        snprintf(s->next_action, sizeof s->next_action, "nothing until %s, when renewal starts", a);
    }
    return TC_OK;
}

tokencert_err tokencert_engine_status(tokencert_engine *l, size_t i, tokencert_status *out)
{
    tokencert_err err;
    if (l == NULL || out == NULL || i >= l->n_creds)
        return TC_ERR_INVALID_ARG;
    l->current = l->creds[i].name;
    err = status_one(l, &l->creds[i], out);
    l->current = NULL;
    if (err != TC_OK)
        tokencert_status_clear(out);
    return err;
}

/* ---- a first enrollment ------------------------------------------------------------------ */

void tokencert_enrolled_clear(tokencert_enrolled *e)
{
    if (e == NULL)
        return;
    free(e->token_label);
    free(e->key_id);
    free(e->key_type);
    free(e->subject);
    free(e->serial);
    free(e->ca_request_id);
    free(e->ca);
    free(e->ca_protocol);
    free(e->ca_dir);
    memset(e, 0, sizeof *e);
}

static char *join_sans(const char *const *san, size_t n)
{
    char *out = tc_strdup(""), *next;
    size_t i;
    for (i = 0; out != NULL && i < n; i++) {
        next = tc_asprintf("%s%s%s", out, i ? "," : "", san[i]);
        free(out);
        out = next;
    }
    return out;
}

/* The credential an enrollment of p->label makes: the configured one of that name, else a new
 * entry (creds_load() left room for one). */
static tokencert_err enroll_cred(lc *l, const tokencert_enrollment *p, lc_cred **out)
{
    size_t i;
    lc_cred *c = NULL;
    tokencert_err err;

    int added = 0;

    /* An unknown CA is refused before anything changes. */
    if (p->ca != NULL && strcmp(p->ca, "local") != 0 &&
        (l->cfg == NULL || tokencert_config_find_ca(l->cfg, p->ca) == NULL)) {
        complain(l, "credential '%s': unknown CA '%s' (tokencert config lists the CAs)", p->label,
                 p->ca);
        return TC_ERR_INVALID_ARG;
    }
    for (i = 0; i < l->n_creds && c == NULL; i++)
        if (strcmp(l->creds[i].name, p->label) == 0)
            c = &l->creds[i];
    if (c == NULL) {
        /* A new entry (pointers to the credentials stay valid until the next enrollment). */
        lc_cred *grown = realloc(l->creds, (l->n_creds + 1) * sizeof *l->creds);
        if (grown == NULL)
            return TC_ERR_NOMEM;
        l->creds = grown;
        c = &l->creds[l->n_creds++];
        added = 1;
        memset(c, 0, sizeof *c);
        c->name = tc_strdup(p->label);
        c->label = tc_strdup(p->label);
        c->renew_before = l->cfg != NULL ? l->cfg->renew_before : 30 * 86400LL;
        c->renew_fraction = l->cfg != NULL ? l->cfg->renew_fraction : 0.1;
    }
    /* What the command names wins over what was recorded or configured. */
    free(c->token_uri);
    c->token_uri = tc_strdup(p->token_uri);
    if (l->module != NULL) {
        free(c->module);
        c->module = tc_strdup(l->module);
    }
    if (p->ca != NULL || c->ca == NULL) {
        free(c->ca);
        free(c->ca_protocol);
        free(c->ca_dir);
        free(c->ca_issuer);
        c->ca = c->ca_protocol = c->ca_dir = c->ca_issuer = NULL;
        c->ca_manual = 0;
        c->approval_time = 0;
        err = cred_set_ca(l, c, p->ca != NULL ? p->ca : "local", p->ca_dir);
        if (err != TC_OK)
            goto fail;
    } else if (p->ca_dir != NULL && strcmp(c->ca_protocol, "local") == 0) {
        free(c->ca_dir);
        c->ca_dir = tc_strdup(p->ca_dir);
    }
    err = TC_ERR_NOMEM;
    if (c->name == NULL || c->label == NULL || c->token_uri == NULL || c->ca == NULL ||
        c->ca_protocol == NULL)
        goto fail;
    if ((strcmp(c->ca_protocol, "local") == 0 || strcmp(c->ca_protocol, "manual") == 0) &&
        c->ca_dir == NULL) {
        complain(l, "no CA directory: give --ca-dir DIR");
        err = TC_ERR_INVALID_ARG;
        goto fail;
    }
    *out = c;
    return TC_OK;
fail:
    if (added) {
        /* Refused: the engine's credentials are as they were. */
        cred_clear(c);
        l->n_creds--;
    }
    return err == TC_ERR_BAD_DATA ? TC_ERR_INVALID_ARG : err;
}

/* Refuses a label that objects on the token carry already (made by another tool, or an earlier
 * credential): the enrollment would mix its objects with theirs. */
static tokencert_err label_free(run *r)
{
    tokencert_state_request rq;
    tokencert_object_desc *objs = NULL;
    size_t n = 0;
    char *uri = tokencert_object_uri(r->token_uri, r->c->label, NULL, NULL);
    tokencert_err err;

    if (uri == NULL)
        return TC_ERR_NOMEM;
    err = tokencert_objects_find(r->t, uri, &objs, &n);
    free(uri);
    if (err == TC_ERR_NOT_FOUND || (err == TC_OK && n == 0)) {
        tokencert_objects_free(objs, n);
        return TC_OK;
    }
    if (err != TC_OK)
        return fail(r->l, r->ctx, err, "reading the token");
    memset(&rq, 0, sizeof rq);
    if (newest_rejected(r->l, r->c->name, &rq) && rq.key_id != NULL && objs[0].id != NULL &&
        strcmp(rq.key_id, objs[0].id) == 0)
        /* Its own key, left by a request the CA rejected: enrolling again is renewing. */
        complain(r->l,
                 "a key labelled '%s' already exists (id %s): the key of request %lld, which CA "
                 "'%s' rejected (%s); 'tokencert renew %s' requests anew, 'tokencert prune' "
                 "removes the key",
                 r->c->label, rq.key_id, rq.id, r->c->ca,
                 rq.last_error != NULL ? rq.last_error : "no reason given", r->c->name);
    else
        complain(r->l, "a %s labelled '%s' already exists (id %s): choose another label",
                 strstr(objs[0].kind, "key") != NULL ? "key" : objs[0].kind, r->c->label,
                 objs[0].id != NULL ? objs[0].id : "-");
    tokencert_state_request_clear(&rq);
    tokencert_objects_free(objs, n);
    return TC_ERR_INVALID_ARG;
}

/* The embedded CA, created in its directory when there is none (automatic approval). */
static tokencert_err local_ca_ready(run *r)
{
    char *db = tc_asprintf("%s/ca.db", r->c->ca_dir);
    tokencert_ca_params cap;
    tokencert_err err;
    struct stat sb;
    int exists = db != NULL && stat(db, &sb) == 0;

    free(db);
    if (exists)
        return TC_OK;
    memset(&cap, 0, sizeof cap);
    cap.dir = r->c->ca_dir; /* every other setting the library's default, as `ca init --ca-dir` */
    err = tokencert_ca_init(r->ctx, &cap);
    if (err != TC_OK) {
        fail(r->l, r->ctx, err, "creating the local CA");
        complain(r->l, "creating the local CA in %s failed; the token is unchanged", r->c->ca_dir);
        return err;
    }
    complain(r->l,
             "there was no CA in %s: created one with automatic approval (its certificate is "
             "%s/ca.pem)",
             r->c->ca_dir, r->c->ca_dir);
    return TC_OK;
}

/* The store learns of the credential and its request (state created) in one transaction,
 * before the key is made. */
static tokencert_err enroll_record(run *r, const tokencert_enrollment *p,
                                   tokencert_state_request *rq)
{
    lc *l = r->l;
    tokencert_state_credential sc;
    time_t now = tc_now();

    memset(&sc, 0, sizeof sc);
    sc.name = r->c->name;
    sc.token_uri = r->c->token_uri;
    sc.token_serial = r->serial;
    sc.label = r->c->label;
    sc.ca = r->c->ca;
    sc.ca_dir = r->c->ca_dir;
    sc.module = r->c->module;
    sc.created = now;
    sc.last_run = now;
    sc.last_result = (char *)"enrolling";
    memset(rq, 0, sizeof *rq);
    rq->credential = tc_strdup(r->c->name);
    rq->state = TOKENCERT_RS_CREATED;
    rq->token_serial = xstrdup(r->serial);
    rq->key_type = tc_strdup(p->key_type != NULL ? p->key_type : TOKENCERT_KEY_TYPE_DEFAULT);
    rq->subject = tc_strdup(p->subject);
    rq->san = join_sans(p->san, p->n_san);
    rq->ca = tc_strdup(r->c->ca);
    rq->not_before = p->not_before;
    if (rq->credential == NULL || rq->key_type == NULL || rq->subject == NULL || rq->san == NULL ||
        rq->ca == NULL)
        return TC_ERR_NOMEM;
    if (tokencert_state_begin(l->st) != TC_OK || st_credential_put(l, &sc) != TC_OK ||
        st_request_add(l, rq) != TC_OK || tokencert_state_commit(l->st) != TC_OK) {
        tokencert_state_rollback(l->st);
        complain(l, "recording the enrollment in %s failed: %s", tokencert_state_path(l->st),
                 tokencert_ctx_error(l->ctx));
        return TC_ERR_IO;
    }
    tokencert_engine_log(l, r->c->name, "enrolled", "ok",
                         "request %lld: a %s key on %s, subject %s, at CA '%s'", rq->id,
                         rq->key_type, r->token_uri, rq->subject, r->c->ca);
    return TC_OK;
}

/* An earlier enrollment of the label left an unfinished request: it is continued (the engine
 * cleans up what the interruption left). 1 when there was one (*err its result), 0 when not. */
static int enroll_resume(lc *l, lc_cred *c, tokencert_err *err, tokencert_outcome *outcome)
{
    tokencert_state_request rq;
    int have;

    memset(&rq, 0, sizeof rq);
    have = newest_open(l, c->name, &rq);
    if (have <= 0) {
        if (have < 0)
            *err = fail(l, l->ctx, TC_ERR_IO, "reading the state store");
        return have < 0;
    }
    complain(l, "an earlier enrollment of '%s' did not finish (request %lld, %s); continuing it",
             c->name, rq.id, tokencert_request_state_name(rq.state));
    tokencert_state_request_clear(&rq);
    *err = renew_one(l, c, 1, 0, outcome);
    return 1;
}

static tokencert_err enroll_one(lc *l, const tokencert_enrollment *p, tokencert_enrolled *res,
                                tokencert_outcome *outcome)
{
    tokencert_csr_params cp;
    tokencert_state_generation *g = NULL;
    tokencert_state_request rq;
    tokencert_err err;
    size_t n_g = 0;
    lc_cred *c = NULL;
    int forgotten = 0;
    run r;

    memset(&cp, 0, sizeof cp);
    memset(&rq, 0, sizeof rq);
    memset(&r, 0, sizeof r);
    /* Everything that can be checked without the token is checked before it is touched: a typo
     * costs no PIN entry. */
    cp.subject = p->subject;
    cp.san = p->san;
    cp.n_san = p->n_san;
    err = tokencert_csr_check(l->ctx, &cp);
    if (err != TC_OK)
        return fail(l, l->ctx, err, "the request");
    err = tokencert_key_type_check(l->ctx, p->key_type);
    if (err != TC_OK)
        return fail(l, l->ctx, err, "the key type");
    if (l->st == NULL) {
        complain(l, "enroll needs a state store");
        return TC_ERR_INVALID_ARG;
    }
    err = enroll_cred(l, p, &c);
    if (err == TC_ERR_NOMEM)
        complain(l, "%s", tokencert_strerror(err));
    if (err != TC_OK)
        return err;
    l->current = c->name;
    if (enroll_resume(l, c, &err, outcome)) {
        res->resumed = 1;
        return err;
    }
    /* A credential of that name with a certificate: refused before the token is touched. */
    if (tokencert_state_generations(l->st, c->name, 0, &g, &n_g) == TC_OK && n_g > 0) {
        complain(l,
                 "a certificate labelled '%s' already exists (id %s, generation %lld of the "
                 "credential '%s'): choose another label, or renew it with tokencert renew %s",
                 c->label, g[n_g - 1].key_id ? g[n_g - 1].key_id : "?", g[n_g - 1].number, c->name,
                 c->name);
        tokencert_state_generations_free(g, n_g);
        return TC_ERR_INVALID_ARG;
    }
    tokencert_state_generations_free(g, n_g);
    r.l = l;
    r.c = c;
    r.first = 1;
    r.enrolled = res;
    /* One session, one login for the key, the request's signature and the installation. */
    err = open_token(&r);
    if (err != TC_OK)
        goto out;
    err = label_free(&r);
    if (err == TC_OK && strcmp(c->ca_protocol, "local") == 0)
        err = local_ca_ready(&r);
    if (err != TC_OK) {
        /* Refused with the token as it was found; the history keeps the attempt. */
        tokencert_engine_log(l, c->name, "enroll failed", "failed", "%s",
                             err == TC_ERR_INVALID_ARG ? "the label is in use on the token"
                                                       : "creating the local CA failed");
        goto out;
    }
    err = enroll_record(&r, p, &rq);
    if (err != TC_OK)
        goto out;
    err = drive(&r, &rq, outcome);
    forgotten = rq.key_id == NULL && err != TC_OK && err != TC_ERR_PENDING;
    if (forgotten) {
        /* No key was made (key generation failed and leaves nothing behind): the token is as
         * it was found, so the store forgets the credential; the history keeps the attempt. */
        tokencert_engine_log(l, c->name, "enroll failed", "failed", "%s",
                             rq.last_error != NULL ? rq.last_error : "?");
        if (tokencert_state_credential_forget(l->st, c->name) != TC_OK)
            complain(l, "forgetting the enrollment failed: %s", tokencert_ctx_error(l->ctx));
    } else if (err == TC_ERR_PENDING) {
        tokencert_engine_log(l, c->name, "pending", "ok", "request %lld waits for approval", rq.id);
    } else if (err != TC_OK && *outcome != TOKENCERT_OUTCOME_REJECTED) {
        complain(l,
                 "the key '%s' stays on the token; tokencert enroll (the same command) or "
                 "tokencert renew %s continues with it",
                 c->label, c->name);
    }
    /* Not for a forgotten enrollment: a row would bring back a credential that never was, for a
     * timer run to try to renew. */
    if (!forgotten)
        record_put(l, c, r.serial, tc_now(), tokencert_outcome_name(*outcome), rq.last_error);
    res->request = rq.id;
    res->key_id = xstrdup(rq.key_id);
    res->key_type = xstrdup(rq.key_type);
    if (res->subject == NULL)
        res->subject = xstrdup(rq.subject);
    res->ca_request_id = xstrdup(rq.ca_request_id);
    res->token_label = r.t != NULL ? xstrdup(tokencert_token_get_info(r.t)->label) : NULL;
out:
    res->ca = xstrdup(c->ca);
    res->ca_protocol = xstrdup(c->ca_protocol);
    res->ca_dir = xstrdup(c->ca_dir);
    tokencert_state_request_clear(&rq);
    run_clear(&r);
    return err;
}

tokencert_err tokencert_engine_enroll(tokencert_engine *l, const tokencert_enrollment *p,
                                      tokencert_enrolled *out, tokencert_outcome *outcome)
{
    tokencert_err err;
    tokencert_outcome o = TOKENCERT_OUTCOME_FAILED;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (l == NULL || p == NULL || out == NULL || p->token_uri == NULL || p->label == NULL ||
        p->label[0] == '\0' || p->subject == NULL)
        return TC_ERR_INVALID_ARG;
    err = enroll_one(l, p, out, &o);
    l->current = NULL;
    if (outcome != NULL)
        *outcome = o;
    return err;
}
