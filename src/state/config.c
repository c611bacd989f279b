/* config.c — the configuration file, tokencert.conf(5): libconfig syntax, read from one file given
 * by the caller or from the system file and then the user's, the user's entries replacing system
 * entries of the same name. Every problem is collected with its file and line, so that one run of
 * `tokencert config check` shows them all. The file names hooks that run as its reader (often
 * root): a file others can write is refused, and secrets are never taken from it, only where to
 * read them. */
#include "x509/x509.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSTEM_CONFIG    "/etc/tokencert/tokencert.conf"
#define USER_CONFIG      "tokencert/tokencert.conf"
#define DEFAULT_RENEW    (30LL * 86400)
#define DEFAULT_FRACTION 0.1
#define DEFAULT_GRACE    (30LL * 86400)
#define NAME_LEN_MAX     128
#define HOOK_ARGS_MAX    256
#define SUGGEST_LEN_MAX  64
#define PROTOCOLS        "local, manual, scep, est, cmp, cfssl, adcs"
#define CA_RESERVED_NAME "local"
#define SOURCE_FORMS     "file:PATH (absolute), env:VAR or fd:N"
#define ADVICE_CRED      "use pin_source = \"file:...\""
#define ADVICE_CA        "use secret_source = \"file:...\""
#define ADVICE_ELSEWHERE                                                                           \
    "use pin_source = \"file:...\" in a credential, or secret_source = \"file:...\" in a CA"
#define DURATION_EXPLAINED                                                                         \
    "a duration string like \"30d\" (s, m, h, d, w, y; a bare number is days)"

/* A credential while the files are read: the CA it names is resolved once all files are in. */
typedef struct {
    tokencert_config_credential c;
    int ca_line;
} cred_entry;

typedef struct {
    int renew_before_set, renew_fraction_set, grace_set;
    long long renew_before;
    double renew_fraction;
    long long grace;
    char *state_dir;
} defaults;

/* What one file declares, or (after merging) all of them. */
typedef struct {
    defaults d;
    tc_ptrvec cas;   /* tokencert_config_ca * */
    tc_ptrvec creds; /* cred_entry * */
    tc_ptrvec files; /* char * */
} layer;

typedef struct {
    tokencert_ctx *ctx;
    tc_ptrvec errors; /* tokencert_config_error * */
    tc_ptrvec order;  /* char *: every file in the order first met, to sort the errors by */
    int nomem;
    const char *file; /* the file being read: libconfig names only included files */
    const char *dir;  /* its directory, where libconfig looks for relative @include names */
} loader;

static const char *const top_keys[] = {"defaults", "cas", "credentials", NULL};
static const char *const defaults_keys[] = {"renew_before", "renew_fraction", "grace", "state_dir",
                                            NULL};
static const char *const ca_keys[] = {
    "name",   "protocol", "url",      "dir",           "auth",    "user", "secret_source",
    "issuer", "ca_file",  "approval", "approval_time", "profile", NULL};
static const char *const cred_keys[] = {
    "name",     "token",        "module",         "label", "ca",         "subject", "san",
    "key_type", "renew_before", "renew_fraction", "key",   "pin_source", "hooks",   NULL};
static const char *const hook_keys[] = {"before_renewal", "after_renewal", "expiring", "failure",
                                        NULL};
/* Names that can only mean a secret written into the file. */
static const char *const secret_keys[] = {
    "pin",       "password", "secret", "passphrase", "challenge",          "pin_value",
    "pin-value", "user_pin", "so_pin", "passwd",     "challenge_password", NULL};

/* ---- errors ------------------------------------------------------------------------------ */

static void verror(loader *ld, const char *file, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void verror(loader *ld, const char *file, int line, const char *fmt, va_list ap)
{
    tokencert_config_error *e = calloc(1, sizeof *e);

    if (e == NULL)
        goto nomem;
    e->line = line;
    e->message = tc_vasprintf(fmt, ap);
    e->file = file != NULL ? tc_strdup(file) : NULL;
    if (e->message == NULL || (file != NULL && e->file == NULL) ||
        tc_ptrvec_push(&ld->errors, e) != 0)
        goto nomem;
    return;
nomem:
    if (e != NULL) {
        free(e->message);
        free(e->file);
        free(e);
    }
    ld->nomem = 1;
}

static void file_error(loader *ld, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void file_error(loader *ld, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(ld, file, line, fmt, ap);
    va_end(ap);
}

/* The path of a file libconfig names as the @include line wrote it: a relative name is in the
 * directory of the file being read (libconfig's include directory), not in ours. Allocated;
 * NULL only without memory (noted). */
static char *source_path(loader *ld, const char *f)
{
    char *p;

    if (f == NULL)
        p = tc_strdup(ld->file); /* the file read itself, named as the caller named it */
    else if (f[0] != '/' && ld->dir != NULL)
        p = tc_asprintf("%s%s%s", ld->dir, strcmp(ld->dir, "/") == 0 ? "" : "/", f);
    else
        p = tc_strdup(f);
    if (p == NULL)
        ld->nomem = 1;
    return p;
}

static char *setting_path(loader *ld, const config_setting_t *s)
{
    return source_path(ld, config_setting_source_file(s));
}

static void setting_error(loader *ld, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void setting_error(loader *ld, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    char *file = setting_path(ld, s);

    if (file == NULL)
        return;
    va_start(ap, fmt);
    verror(ld, file, (int)config_setting_source_line(s), fmt, ap);
    va_end(ap);
    free(file);
}

/* The library's detail of a failed check, without a leading "subject: " where the setting has
 * another name (issuer). */
static const char *ctx_detail(loader *ld, const char *drop_prefix)
{
    const char *d = tokencert_ctx_error(ld->ctx);
    size_t n = drop_prefix != NULL ? strlen(drop_prefix) : 0;
    if (n > 0 && strncmp(d, drop_prefix, n) == 0)
        d += n;
    return d;
}

static char *xstrdup(loader *ld, const char *s)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = tc_strdup(s);
    if (d == NULL)
        ld->nomem = 1;
    return d;
}

/* ---- names and suggestions --------------------------------------------------------------- */

static int in_list(const char *s, const char *const *list)
{
    size_t i;
    for (i = 0; list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Levenshtein distance, for "did you mean"; names longer than SUGGEST_LEN_MAX are never close. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t prev[SUGGEST_LEN_MAX + 1], cur[SUGGEST_LEN_MAX + 1];

    if (la > SUGGEST_LEN_MAX || lb > SUGGEST_LEN_MAX)
        return SIZE_MAX;
    for (j = 0; j <= lb; j++)
        prev[j] = j;
    for (i = 1; i <= la; i++) {
        cur[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t sub = prev[j - 1] +
                         (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            cur[j] = del < ins ? del : ins;
            if (sub < cur[j])
                cur[j] = sub;
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

static const char *suggest(const char *s, const char *const *list)
{
    const char *best = NULL;
    size_t i, d, best_d = 3;
    for (i = 0; list[i] != NULL; i++) {
        d = edit_distance(s, list[i]);
        if (d < best_d) {
            best_d = d;
            best = list[i];
        }
    }
    return best;
}

/* An unknown name that speaks of a password, a passphrase or a secret, or ends in "pin"
 * ("user_pin", "token-pin"): what it would hold is a secret. */
static int looks_secret(const char *lower)
{
    size_t n = strlen(lower);

    if (n > 7 && strcmp(lower + n - 7, "_source") == 0)
        return 0; /* where a secret is read from, in the wrong place */
    if (strstr(lower, "password") != NULL || strstr(lower, "passwd") != NULL ||
        strstr(lower, "passphrase") != NULL || strstr(lower, "secret") != NULL)
        return 1;
    return n >= 4 && strcmp(lower + n - 3, "pin") == 0 &&
           (lower[n - 4] == '_' || lower[n - 4] == '-');
}

/* Reports settings of group that are not in keys (with a suggestion when one is close), and
 * settings that would hold a secret. what: "credential 'x'", NULL for the top level; advice: where
 * the secret is to be read from instead. The names in secret_keys are always refused as secrets;
 * other secret-like names only when no known key is close (a misspelt pin_source is a typo). */
static void check_members(loader *ld, const config_setting_t *group, const char *const *keys,
                          const char *what, const char *advice)
{
    int i, n = config_setting_length(group);

    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
        const char *name = m != NULL ? config_setting_name(m) : NULL;
        const char *close;
        size_t k;
        char lower[SUGGEST_LEN_MAX + 1];

        if (name == NULL || in_list(name, keys))
            continue;
        for (k = 0; name[k] != '\0' && k < SUGGEST_LEN_MAX; k++)
            lower[k] = (char)tolower((unsigned char)name[k]);
        lower[k] = '\0';
        close = suggest(name, keys);
        if (name[k] == '\0' &&
            (in_list(lower, secret_keys) || (close == NULL && looks_secret(lower)))) {
            /* The value is never repeated. */
            setting_error(ld, m, "%s%s'%s': secrets are not stored in the configuration: %s",
                          what != NULL ? what : "", what != NULL ? ": " : "", name, advice);
            continue;
        }
        if (keys == cred_keys && strcmp(lower, "reuse_key") == 0) {
            setting_error(ld, m,
                          "unknown setting '%s' in %s (the key policy is key = \"reuse\" or "
                          "key = \"rekey\")",
                          name, what);
            continue;
        }
        setting_error(ld, m, "unknown setting '%s' %s%s%s%s%s", name,
                      what != NULL ? "in " : "at the top level", what != NULL ? what : "",
                      close != NULL ? " (did you mean '" : "", close != NULL ? close : "",
                      close != NULL ? "'?)" : "");
    }
}

static int has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* ---- typed values ------------------------------------------------------------------------ */

/* The string value of key in group: NULL when absent (*where NULL) or not a string (reported). */
static const char *get_str(loader *ld, const config_setting_t *group, const char *key,
                           const char *what, config_setting_t **where)
{
    config_setting_t *s = config_setting_get_member(group, key);

    if (where != NULL)
        *where = s;
    if (s == NULL)
        return NULL;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        setting_error(ld, s, "%s: %s must be a string (in double quotes)", what, key);
        return NULL;
    }
    return config_setting_get_string(s);
}

/* A string that must not be empty; NULL when absent, wrong or empty (reported). */
static const char *get_nonempty(loader *ld, const config_setting_t *group, const char *key,
                                const char *what, config_setting_t **where)
{
    config_setting_t *s = NULL;
    const char *v = get_str(ld, group, key, what, &s);

    if (where != NULL)
        *where = s;
    if (v != NULL && v[strspn(v, " \t")] == '\0') {
        setting_error(ld, s, "%s: %s must not be empty", what, key);
        return NULL;
    }
    if (v != NULL && has_control(v)) {
        setting_error(ld, s, "%s: %s must not contain control characters", what, key);
        return NULL;
    }
    return v;
}

/* 1 and *out when set and well-formed, 0 when absent, -1 when wrong (reported). */
static int get_duration(loader *ld, const config_setting_t *group, const char *key,
                        const char *what, int zero_ok, long long *out)
{
    config_setting_t *s = config_setting_get_member(group, key);
    const char *v;
    long long d;

    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        setting_error(ld, s, "%s: %s must be a duration string like \"30d\"", what, key);
        return -1;
    }
    v = config_setting_get_string(s);
    d = tc_parse_duration(v);
    if (d == TC_DURATION_TOO_LONG) {
        setting_error(ld, s, "%s: %s must not be longer than 1000 years, not \"%.40s\"", what, key,
                      v);
        return -1;
    }
    if (d < 0) {
        setting_error(ld, s, "%s: %s must be %s, not \"%.40s\"", what, key, DURATION_EXPLAINED, v);
        return -1;
    }
    if (d == 0 && !zero_ok) {
        setting_error(ld, s, "%s: %s must be longer than 0", what, key);
        return -1;
    }
    *out = d;
    return 1;
}

static int get_fraction(loader *ld, const config_setting_t *group, const char *key,
                        const char *what, double *out)
{
    config_setting_t *s = config_setting_get_member(group, key);
    double v;

    if (s == NULL)
        return 0;
    v = config_setting_type(s) == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) : -1.0;
    if (!(v > 0.0 && v < 1.0)) {
        setting_error(ld, s,
                      "%s: %s must be a number between 0 and 1 (exclusive) with a decimal point, "
                      "like 0.1",
                      what, key);
        return -1;
    }
    *out = v;
    return 1;
}

static int path_ok(loader *ld, const config_setting_t *group, const char *key, const char *what,
                   char **out)
{
    config_setting_t *s = NULL;
    const char *v = get_nonempty(ld, group, key, what, &s);

    if (v == NULL)
        return s == NULL ? 0 : -1;
    if (v[0] != '/') {
        setting_error(ld, s, "%s: %s must be an absolute path, not \"%s\"", what, key, v);
        return -1;
    }
    *out = xstrdup(ld, v);
    return 1;
}

/* "file:/PATH", "env:VAR" or "fd:N": where a secret is read from, never the secret. */
static int source_syntax_ok(const char *s)
{
    size_t i;

    if (strncmp(s, "file:", 5) == 0)
        return s[5] == '/' && s[6] != '\0';
    if (strncmp(s, "env:", 4) == 0) {
        s += 4;
        if (!(isalpha((unsigned char)*s) || *s == '_'))
            return 0;
        for (; *s != '\0'; s++)
            if (!(isalnum((unsigned char)*s) || *s == '_'))
                return 0;
        return 1;
    }
    if (strncmp(s, "fd:", 3) == 0) {
        s += 3;
        for (i = 0; s[i] != '\0'; i++)
            if (!isdigit((unsigned char)s[i]))
                return 0;
        return i > 0 && i <= 9;
    }
    return 0;
}

static int get_source(loader *ld, const config_setting_t *group, const char *key, const char *what,
                      char **out)
{
    config_setting_t *s = NULL;
    const char *v = get_nonempty(ld, group, key, what, &s);

    if (v == NULL)
        return s == NULL ? 0 : -1;
    if (!source_syntax_ok(v)) {
        /* It may be the secret itself, written in the wrong place: never repeated. */
        setting_error(ld, s, "%s: %s must be " SOURCE_FORMS, what, key);
        return -1;
    }
    *out = xstrdup(ld, v);
    return 1;
}

/* An array or list of strings, as a NULL-terminated vector. 1 set, 0 absent, -1 wrong. */
static int get_strv(loader *ld, const config_setting_t *group, const char *key, const char *what,
                    const char *example, char ***out, size_t *n_out)
{
    config_setting_t *s = config_setting_get_member(group, key);
    char **v = NULL;
    int i, n, bad = 0;

    *out = NULL;
    *n_out = 0;
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) {
        setting_error(ld, s, "%s: %s must be a list of strings like %s", what, key, example);
        return -1;
    }
    n = config_setting_length(s);
    if (n > HOOK_ARGS_MAX) {
        setting_error(ld, s, "%s: %s: more than %d entries", what, key, HOOK_ARGS_MAX);
        return -1;
    }
    v = calloc((size_t)n + 1, sizeof *v);
    if (v == NULL) {
        ld->nomem = 1;
        return -1;
    }
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (e == NULL || config_setting_type(e) != CONFIG_TYPE_STRING) {
            setting_error(ld, e != NULL ? e : s, "%s: %s must be a list of strings like %s", what,
                          key, example);
            bad = 1;
            break;
        }
        v[i] = xstrdup(ld, config_setting_get_string(e));
        if (v[i] == NULL) {
            bad = 1;
            break;
        }
    }
    if (bad) {
        for (i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return -1;
    }
    *out = v;
    *n_out = (size_t)n;
    return 1;
}

static void strv_free(char **v)
{
    size_t i;
    if (v == NULL)
        return;
    for (i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* An RFC 4514 name, checked by the parser requests use and given back in the form certificates
 * are printed in (so that later comparisons with issued certificates are exact). */
static char *get_dn(loader *ld, config_setting_t *s, const char *v, const char *what,
                    const char *key)
{
    X509_NAME *name = NULL;
    char *out = NULL;

    if (tc_name_parse(ld->ctx, v, &name) != TC_OK) {
        setting_error(ld, s, "%s: %s: %s", what, key, ctx_detail(ld, "subject: "));
        return NULL;
    }
    out = tc_name_string(name);
    if (out == NULL)
        ld->nomem = 1;
    X509_NAME_free(name);
    return out;
}

/* ---- entries ----------------------------------------------------------------------------- */

static void ca_clear(tokencert_config_ca *ca)
{
    free(ca->name);
    free(ca->protocol);
    free(ca->url);
    free(ca->dir);
    free(ca->auth);
    free(ca->user);
    free(ca->secret_source);
    free(ca->issuer);
    free(ca->profile);
    free(ca->ca_file);
    free(ca->file);
    memset(ca, 0, sizeof *ca);
}

static void cred_clear(tokencert_config_credential *c)
{
    size_t i;
    free(c->name);
    free(c->token);
    free(c->module);
    free(c->label);
    free(c->ca);
    free(c->subject);
    for (i = 0; i < c->n_san; i++)
        free(c->san[i]);
    free(c->san);
    free(c->key_type);
    free(c->pin_source);
    strv_free(c->hook_before_renewal);
    strv_free(c->hook_after_renewal);
    strv_free(c->hook_expiring);
    strv_free(c->hook_failure);
    free(c->file);
    memset(c, 0, sizeof *c);
}

/* The entry's name, checked; its label for messages goes to what. NULL when it has none. */
static const char *entry_name(loader *ld, config_setting_t *g, const char *kind, size_t index,
                              char **what)
{
    config_setting_t *s = NULL;
    char *generic = tc_asprintf("%s #%zu", kind, index + 1);
    const char *name = get_nonempty(ld, g, "name", generic != NULL ? generic : kind, &s);

    *what = NULL;
    if (name != NULL && strlen(name) > NAME_LEN_MAX) {
        setting_error(ld, s, "%s: name is longer than %d characters", generic, NAME_LEN_MAX);
        name = NULL;
    } else if (name == NULL && s == NULL) {
        setting_error(ld, g, "%s: name is required", generic != NULL ? generic : kind);
    }
    if (name != NULL) {
        *what = tc_asprintf("%s '%s'", kind, name);
        free(generic);
    } else {
        *what = generic;
    }
    if (*what == NULL)
        ld->nomem = 1;
    return name;
}

static int is_protocol(const char *p)
{
    static const char *const protocols[] = {"local", "manual", "scep", "est",
                                            "cmp",   "cfssl",  "adcs", NULL};
    return in_list(p, protocols);
}

static int is_network_protocol(const char *p)
{
    return strcmp(p, "local") != 0 && strcmp(p, "manual") != 0;
}

static void parse_ca(loader *ld, config_setting_t *g, size_t index, layer *L)
{
    tokencert_config_ca *ca = NULL;
    config_setting_t *s = NULL;
    const char *name, *v;
    char *what = NULL;
    static const char *const auth_keys[] = {"auth", "user", "secret_source", NULL};
    size_t i;
    int auth_ok, offline;

    name = entry_name(ld, g, "CA", index, &what);
    if (what == NULL)
        goto out;
    check_members(ld, g, ca_keys, what, ADVICE_CA);
    ca = calloc(1, sizeof *ca);
    if (ca == NULL) {
        ld->nomem = 1;
        goto out;
    }
    ca->line = (int)config_setting_source_line(g);
    ca->file = setting_path(ld, g);
    ca->name = xstrdup(ld, name);

    v = get_nonempty(ld, g, "protocol", what, &s);
    if (v != NULL && !is_protocol(v))
        setting_error(ld, s, "%s: unknown protocol '%s' (" PROTOCOLS ")", what, v);
    else if (v != NULL)
        ca->protocol = xstrdup(ld, v);
    else if (s == NULL)
        setting_error(ld, g, "%s: protocol is required (" PROTOCOLS ")", what);
    if (name != NULL && strcmp(name, CA_RESERVED_NAME) == 0 && ca->protocol != NULL &&
        strcmp(ca->protocol, "local") != 0)
        setting_error(
            ld, s, "%s: the name 'local' is the embedded CA's: it takes protocol \"local\"", what);
    /* Without a protocol that is known, what url, dir and auth must be cannot be told: they are
     * checked only as far as every protocol agrees, so that one mistake is one error. */
    offline = ca->protocol != NULL && !is_network_protocol(ca->protocol);

    v = get_nonempty(ld, g, "url", what, &s);
    if (offline) {
        if (s != NULL)
            setting_error(ld, s, "%s: url is not used with protocol \"%s\"", what, ca->protocol);
    } else if (v != NULL) {
        int scep = ca->protocol != NULL && strcmp(ca->protocol, "scep") == 0;
        int http = strncasecmp(v, "http://", 7) == 0 && v[7] != '\0';
        if (strncasecmp(v, "https://", 8) == 0 && v[8] != '\0')
            ca->url = xstrdup(ld, v);
        else if (http && (scep || ca->protocol == NULL))
            ca->url = xstrdup(ld, v); /* SCEP is specified over plain HTTP */
        else if (scep || ca->protocol == NULL)
            setting_error(ld, s, "%s: url must be https:// or http://", what);
        else
            setting_error(ld, s, "%s: url must be https://", what);
    } else if (s == NULL && ca->protocol != NULL) {
        setting_error(ld, g, "%s: url is required for protocol \"%s\"", what, ca->protocol);
    }

    /* local: the embedded CA's directory; manual: where requests are written and certificates
     * are expected (NAME-ID.csr, NAME-ID.crt). */
    if (config_setting_get_member(g, "dir") != NULL && ca->protocol != NULL && !offline)
        setting_error(ld, config_setting_get_member(g, "dir"),
                      "%s: dir is only used with protocols \"local\" and \"manual\"", what);
    else
        path_ok(ld, g, "dir", what, &ca->dir);
    if (ca->protocol != NULL && strcmp(ca->protocol, "manual") == 0 && ca->dir == NULL &&
        config_setting_get_member(g, "dir") == NULL)
        setting_error(ld, g,
                      "%s: protocol \"manual\" needs dir, the directory where requests are "
                      "written and certificates put",
                      what);

    v = get_nonempty(ld, g, "approval", what, &s);
    if (v != NULL && strcmp(v, "manual") == 0)
        ca->manual_approval = 1;
    else if (v != NULL && strcmp(v, "auto") != 0)
        setting_error(ld, s, "%s: approval must be \"auto\" or \"manual\", not \"%s\"", what, v);
    get_duration(ld, g, "approval_time", what, 1, &ca->approval_time);

    /* Authentication: one error for one mistake. The embedded CA and a manual one are not
     * spoken to over a network, so none of the three keys means anything there; an auth that is
     * wrong says nothing about whether user belongs; a user or secret_source that is present
     * but wrong was reported where it is, not again as missing. */
    if (offline) {
        for (i = 0; auth_keys[i] != NULL; i++) {
            s = config_setting_get_member(g, auth_keys[i]);
            if (i == 0 && s != NULL && config_setting_type(s) == CONFIG_TYPE_STRING &&
                strcmp(config_setting_get_string(s), "none") == 0)
                continue; /* says what is so */
            if (s != NULL)
                setting_error(ld, s, "%s: %s is not used with protocol \"%s\"", what, auth_keys[i],
                              ca->protocol);
        }
    } else {
        int cfssl = ca->protocol != NULL && strcmp(ca->protocol, "cfssl") == 0;
        v = get_nonempty(ld, g, "auth", what, &s);
        auth_ok = s == NULL || v != NULL;
        if (v != NULL && strcmp(v, "basic") != 0 && strcmp(v, "certificate") != 0 &&
            strcmp(v, "hmac") != 0 && strcmp(v, "none") != 0) {
            setting_error(
                ld, s,
                "%s: auth must be \"none\", \"basic\", \"certificate\" or \"hmac\", not \"%s\"",
                what, v);
            auth_ok = 0;
        } else if (v != NULL && ca->protocol != NULL && cfssl != (strcmp(v, "hmac") == 0) &&
                   strcmp(v, "none") != 0) {
            /* cfssl authenticates requests with a shared HMAC key and nothing else; the HMAC
             * token is cfssl's own. */
            setting_error(ld, s,
                          cfssl ? "%s: protocol \"cfssl\" takes auth = \"none\" or \"hmac\", "
                                  "not \"%s\""
                                : "%s: auth = \"%s\" is only used with protocol \"cfssl\"",
                          what, v);
            auth_ok = 0;
        } else if (v != NULL && strcmp(v, "none") != 0) {
            ca->auth = xstrdup(ld, v);
        }
        v = get_nonempty(ld, g, "user", what, &s);
        if (v != NULL && auth_ok && (ca->auth == NULL || strcmp(ca->auth, "basic") != 0))
            setting_error(ld, s, "%s: user is only used with auth = \"basic\"", what);
        else if (v != NULL)
            ca->user = xstrdup(ld, v);
        get_source(ld, g, "secret_source", what, &ca->secret_source);
        if (ca->auth != NULL && strcmp(ca->auth, "basic") == 0 &&
            (config_setting_get_member(g, "user") == NULL ||
             config_setting_get_member(g, "secret_source") == NULL))
            setting_error(ld, config_setting_get_member(g, "auth"),
                          "%s: auth = \"basic\" needs user and secret_source", what);
        if (ca->auth != NULL && strcmp(ca->auth, "hmac") == 0 &&
            config_setting_get_member(g, "secret_source") == NULL)
            setting_error(ld, config_setting_get_member(g, "auth"),
                          "%s: auth = \"hmac\" needs secret_source, where the hex key is read",
                          what);
    }

    v = get_nonempty(ld, g, "issuer", what, &s);
    if (v != NULL)
        ca->issuer = get_dn(ld, s, v, what, "issuer");
    path_ok(ld, g, "ca_file", what, &ca->ca_file);
    v = get_nonempty(ld, g, "profile", what, &s);
    if (v != NULL && ca->protocol != NULL && strcmp(ca->protocol, "cfssl") != 0)
        setting_error(ld, s, "%s: profile is used only with protocol \"cfssl\"", what);
    else if (v != NULL)
        ca->profile = xstrdup(ld, v);

    if (ca->name == NULL)
        goto out; /* reported; nothing can refer to it */
    for (i = 0; i < L->cas.n; i++) {
        const tokencert_config_ca *o = L->cas.v[i];
        if (strcmp(o->name, ca->name) == 0) {
            setting_error(ld, g, "CA '%s' is declared twice (first at %s:%d)", ca->name,
                          o->file != NULL ? o->file : "?", o->line);
            goto out;
        }
    }
    if (tc_ptrvec_push(&L->cas, ca) != 0) {
        ld->nomem = 1;
        goto out;
    }
    ca = NULL;
out:
    if (ca != NULL) {
        ca_clear(ca);
        free(ca);
    }
    free(what);
}

static void parse_hooks(loader *ld, config_setting_t *g, const char *what,
                        tokencert_config_credential *c)
{
    static const char example[] = "[ \"/usr/bin/systemctl\", \"reload\", \"openvpn\" ]";
    char ***slot[] = {&c->hook_before_renewal, &c->hook_after_renewal, &c->hook_expiring,
                      &c->hook_failure};
    char *hwhat = tc_asprintf("the hooks of %s", what);
    size_t i, n;

    if (hwhat == NULL) {
        ld->nomem = 1;
        return;
    }
    if (!config_setting_is_group(g)) {
        setting_error(ld, g, "%s: hooks must be a group like hooks = { after_renewal = %s; }", what,
                      example);
        goto out;
    }
    check_members(ld, g, hook_keys, hwhat, ADVICE_CRED);
    for (i = 0; hook_keys[i] != NULL; i++) {
        char **argv = NULL;
        config_setting_t *s = config_setting_get_member(g, hook_keys[i]);
        if (get_strv(ld, g, hook_keys[i], what, example, &argv, &n) <= 0)
            continue;
        if (n == 0 || argv[0][0] != '/') {
            setting_error(ld, s,
                          "%s: hook %s: the program (its first element) must be an absolute path",
                          what, hook_keys[i]);
            strv_free(argv);
            continue;
        }
        *slot[i] = argv;
    }
out:
    free(hwhat);
}

static void parse_cred(loader *ld, config_setting_t *g, size_t index, layer *L)
{
    cred_entry *ce = NULL;
    tokencert_config_credential *c;
    config_setting_t *s = NULL;
    const char *name, *v;
    char *what = NULL;
    P11KitUri *uri = NULL;
    size_t i;
    int r;

    name = entry_name(ld, g, "credential", index, &what);
    if (what == NULL)
        goto out;
    check_members(ld, g, cred_keys, what, ADVICE_CRED);
    ce = calloc(1, sizeof *ce);
    if (ce == NULL) {
        ld->nomem = 1;
        goto out;
    }
    c = &ce->c;
    c->line = (int)config_setting_source_line(g);
    c->file = setting_path(ld, g);
    c->name = xstrdup(ld, name);
    c->renew_before = -1;
    c->renew_fraction = -1;

    v = get_nonempty(ld, g, "token", what, &s);
    if (v != NULL) {
        if (tc_uri_parse(ld->ctx, v, &uri) != TC_OK)
            setting_error(ld, s, "%s: token: %s", what, ctx_detail(ld, NULL));
        else if (!tc_uri_names_token(uri))
            setting_error(ld, s,
                          "%s: token \"%s\" names no token (give e.g. \"pkcs11:token=NAME\" or "
                          "\"pkcs11:serial=...\")",
                          what, v);
        else if (tc_uri_names_object(uri))
            setting_error(
                ld, s, "%s: token must name the token only; the objects are chosen by label", what);
        else
            c->token = xstrdup(ld, v);
    } else if (s == NULL) {
        setting_error(ld, g, "%s: token is required (a pkcs11: URI like \"pkcs11:token=NAME\")",
                      what);
    }
    v = get_nonempty(ld, g, "module", what, NULL);
    c->module = xstrdup(ld, v);
    v = get_nonempty(ld, g, "label", what, &s);
    c->label = xstrdup(ld, v != NULL ? v : name);
    v = get_nonempty(ld, g, "ca", what, &s);
    if (v != NULL) {
        c->ca = xstrdup(ld, v);
        ce->ca_line = (int)config_setting_source_line(s);
    }

    v = get_nonempty(ld, g, "subject", what, &s);
    if (v != NULL && strcmp(v, "current") != 0)
        c->subject = get_dn(ld, s, v, what, "subject");
    r = get_strv(ld, g, "san", what, "[ \"dns:host.example.org\" ]", &c->san, &c->n_san);
    if (r > 0) {
        config_setting_t *sl = config_setting_get_member(g, "san");
        c->san_set = 1;
        for (i = 0; i < c->n_san; i++) {
            const config_setting_t *e = config_setting_get_elem(sl, (unsigned)i);
            const char *one[1];
            GENERAL_NAMES *gn = NULL;
            if (e == NULL || config_setting_source_line(e) == 0)
                e = sl;
            if (strcmp(c->san[i], "current") == 0) {
                setting_error(ld, e,
                              "%s: san: \"current\" is not a name: leave san out to keep the "
                              "current certificate's",
                              what);
                continue;
            }
            one[0] = c->san[i];
            if (tc_san_parse(ld->ctx, one, 1, &gn) != TC_OK)
                setting_error(ld, e, "%s: %s", what, ctx_detail(ld, NULL));
            GENERAL_NAMES_free(gn);
        }
    }

    v = get_nonempty(ld, g, "key_type", what, &s);
    if (v != NULL && tokencert_key_type_check(ld->ctx, v) != TC_OK)
        setting_error(ld, s, "%s: key_type: %s", what, ctx_detail(ld, NULL));
    else
        c->key_type = xstrdup(ld, v);
    get_duration(ld, g, "renew_before", what, 0, &c->renew_before);
    get_fraction(ld, g, "renew_fraction", what, &c->renew_fraction);
    v = get_nonempty(ld, g, "key", what, &s);
    if (v != NULL && strcmp(v, "reuse") == 0)
        c->reuse_key = 1;
    else if (v != NULL && strcmp(v, "rekey") != 0)
        setting_error(ld, s, "%s: key must be \"rekey\" (a new key at each renewal) or \"reuse\"",
                      what);
    get_source(ld, g, "pin_source", what, &c->pin_source);
    s = config_setting_get_member(g, "hooks");
    if (s != NULL)
        parse_hooks(ld, s, what, c);

    if (c->name == NULL)
        goto out;
    for (i = 0; i < L->creds.n; i++) {
        const cred_entry *o = L->creds.v[i];
        if (strcmp(o->c.name, c->name) == 0) {
            setting_error(ld, g, "credential '%s' is declared twice (first at %s:%d)", c->name,
                          o->c.file != NULL ? o->c.file : "?", o->c.line);
            goto out;
        }
    }
    if (tc_ptrvec_push(&L->creds, ce) != 0) {
        ld->nomem = 1;
        goto out;
    }
    ce = NULL;
out:
    if (ce != NULL) {
        cred_clear(&ce->c);
        free(ce);
    }
    if (uri != NULL)
        p11_kit_uri_free(uri);
    free(what);
}

static void parse_defaults(loader *ld, config_setting_t *g, layer *L)
{
    static const char what[] = "defaults";
    defaults *d = &L->d;
    char *dir = NULL;

    if (!config_setting_is_group(g)) {
        setting_error(ld, g, "defaults must be a group: defaults = { renew_before = \"30d\"; };");
        return;
    }
    check_members(ld, g, defaults_keys, what, ADVICE_ELSEWHERE);
    d->renew_before_set = get_duration(ld, g, "renew_before", what, 0, &d->renew_before) > 0;
    d->renew_fraction_set = get_fraction(ld, g, "renew_fraction", what, &d->renew_fraction) > 0;
    d->grace_set = get_duration(ld, g, "grace", what, 1, &d->grace) > 0;
    if (path_ok(ld, g, "state_dir", what, &dir) > 0) {
        free(d->state_dir);
        d->state_dir = dir;
    }
}

static void parse_list(loader *ld, config_setting_t *s, const char *key, layer *L)
{
    int i, n;
    int cas = strcmp(key, "cas") == 0;

    if (config_setting_type(s) != CONFIG_TYPE_LIST &&
        !(config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)) {
        setting_error(ld, s, "%s must be a list of groups: %s = ( { name = \"...\"; ... } );", key,
                      key);
        return;
    }
    n = config_setting_length(s);
    for (i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
        if (g == NULL)
            continue;
        if (!config_setting_is_group(g)) {
            setting_error(ld, g, "%s: entry #%d must be a group { name = \"...\"; ... }", key,
                          i + 1);
            continue;
        }
        if (cas)
            parse_ca(ld, g, (size_t)i, L);
        else
            parse_cred(ld, g, (size_t)i, L);
    }
}

/* ---- files ------------------------------------------------------------------------------- */

/* Remembers that path was met (read, or named by an error), so that errors can be sorted in the
 * order the files were read. */
static void note_file(loader *ld, const char *path)
{
    size_t i;
    char *p;

    for (i = 0; i < ld->order.n; i++)
        if (strcmp(ld->order.v[i], path) == 0)
            return;
    p = xstrdup(ld, path);
    if (p != NULL && tc_ptrvec_push(&ld->order, p) != 0) {
        free(p);
        ld->nomem = 1;
    }
}

/* The file names programs run as its reader, often root: one that others can write, or that
 * belongs to someone other than the reader or root, is refused. 1 when refused (reported). */
static int refuse_untrusted(loader *ld, const char *path, const struct stat *st)
{
    if ((st->st_mode & S_IWOTH) != 0) {
        file_error(ld, path, 0, "%s is writable by others: refused", path);
        return 1;
    }
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        file_error(ld, path, 0, "%s belongs to another user (uid %lu): refused", path,
                   (unsigned long)st->st_uid);
        return 1;
    }
    return 0;
}

static int push_file(loader *ld, layer *L, const char *path)
{
    char *p = xstrdup(ld, path);
    if (p == NULL || tc_ptrvec_push(&L->files, p) != 0) {
        free(p);
        ld->nomem = 1;
        return -1;
    }
    return 0;
}

/* Included files (@include) are read by libconfig itself: each is held to the same rule as the
 * file that includes it, and listed among the files read. */
static void check_included(loader *ld, const config_setting_t *s, layer *L)
{
    const char *raw = config_setting_source_file(s);
    char *f = raw != NULL ? source_path(ld, raw) : NULL;
    int i, n;
    size_t k;

    if (f != NULL && strcmp(f, ld->file) != 0) {
        int seen = 0;
        for (k = 0; k < L->files.n; k++)
            seen |= strcmp(L->files.v[k], f) == 0;
        if (!seen) {
            struct stat st;
            note_file(ld, f);
            if (stat(f, &st) != 0)
                file_error(ld, f, 0, "cannot check included file %s: %s", f, strerror(errno));
            else
                refuse_untrusted(ld, f, &st);
            push_file(ld, L, f);
        }
    }
    free(f);
    if (config_setting_is_aggregate(s)) {
        n = config_setting_length(s);
        for (i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (e != NULL)
                check_included(ld, e, L);
        }
    }
}

/* Opens path for reading without waiting: opening a FIFO blocks until someone writes to it. */
static FILE *open_nonblocking(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), e;
    FILE *f;

    if (fd < 0)
        return NULL;
    f = fdopen(fd, "r");
    if (f == NULL) {
        e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

#define INCLUDE_DEPTH_MAX 10

/* libconfig opens @include files itself, and would wait for ever on a FIFO: the @include lines
 * of f (read to its end and rewound) and of the files they name are looked at first, and one
 * that names something other than a regular file is reported. 1 when one was. */
static int include_not_regular(loader *ld, FILE *f, int depth)
{
    char *line = NULL, *name = NULL;
    size_t cap = 0;
    int bad = 0;

    while (!bad && getline(&line, &cap, f) >= 0) {
        char *p = line, *o;
        char *target;
        struct stat st;

        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "@include", 8) != 0)
            continue;
        p += 8;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p++ != '"')
            continue;
        free(name);
        name = malloc(strlen(p) + 1);
        if (name == NULL) {
            ld->nomem = 1;
            break;
        }
        for (o = name; *p != '\0' && *p != '"'; p++) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            *o++ = *p;
        }
        *o = '\0';
        target = source_path(ld, name);
        if (target == NULL)
            break;
        if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
            note_file(ld, target);
            file_error(ld, target, 0, "%s is not a regular file: refused", target);
            bad = 1;
        } else if (stat(target, &st) == 0 && depth < INCLUDE_DEPTH_MAX) {
            FILE *inc = open_nonblocking(target);
            if (inc != NULL) {
                bad = include_not_regular(ld, inc, depth + 1);
                fclose(inc);
            }
        }
        free(target);
    }
    free(line);
    free(name);
    rewind(f);
    return bad;
}

/* Reads one file into L. required: the caller named it, so it must exist. Returns TC_ERR_IO only
 * for a required file that cannot be opened (*absent set for an optional one that is not there);
 * everything else is collected in ld. */
static tokencert_err read_file(loader *ld, const char *path, int required, layer *L, int *absent,
                               struct stat *st_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    config_t cfg;
    config_setting_t *root, *s;
    FILE *f = NULL;
    struct stat st;
    char *dir = NULL, *slash, cwd[PATH_MAX];
    int i, n, e, inited = 0;

    *absent = 0;
    note_file(ld, path);
    f = open_nonblocking(path);
    if (f == NULL) {
        e = errno;
        if (!required && (e == ENOENT || e == ENOTDIR)) {
            *absent = 1;
            ret = TC_OK;
        } else if (!required && e == EACCES) {
            /* A system file kept from other users is not theirs to use. */
            tc_warning(ld->ctx, "cannot read configuration %s: %s (skipped)", path, strerror(e));
            *absent = 1;
            ret = TC_OK;
        } else if (!required) {
            file_error(ld, path, 0, "cannot read configuration %s: %s", path, strerror(e));
            ret = TC_OK;
        } else {
            ret =
                tc_error(ld->ctx, TC_ERR_IO, "cannot read configuration %s: %s", path, strerror(e));
        }
        goto out;
    }
    /* Checked on the open file, so that what is checked is what is read. */
    if (fstat(fileno(f), &st) != 0) {
        file_error(ld, path, 0, "cannot read configuration %s: %s", path, strerror(errno));
        ret = TC_OK;
        goto out;
    }
    if (st_out != NULL)
        *st_out = st;
    if (!S_ISREG(st.st_mode) && required) {
        ret =
            tc_error(ld->ctx, TC_ERR_IO, "cannot read configuration %s: not a regular file", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        file_error(ld, path, 0, "%s is not a regular file", path);
        ret = TC_OK;
        goto out;
    }
    if (refuse_untrusted(ld, path, &st)) {
        ret = TC_OK;
        goto out;
    }
    config_init(&cfg);
    inited = 1;
    /* Relative @include names are looked up in the file's directory, made absolute: libconfig
     * 1.5 reports them as written, later versions with that directory in front, and either way
     * the path checked (and named in errors) is the file libconfig opened. */
    if (path[0] != '/' && getcwd(cwd, sizeof cwd) != NULL)
        dir = tc_asprintf("%s/%s", cwd, path);
    else
        dir = tc_strdup(path);
    if (dir == NULL) {
        ld->nomem = 1;
        ret = TC_OK;
        goto out;
    }
    slash = strrchr(dir, '/');
    if (slash != NULL) {
        slash[slash == dir ? 1 : 0] = '\0';
        config_set_include_dir(&cfg, dir);
        ld->dir = dir;
    }
    ld->file = path;
    if (push_file(ld, L, path) != 0) {
        ret = TC_OK;
        goto out;
    }
    if (include_not_regular(ld, f, 0)) {
        ret = TC_OK;
        goto out;
    }
    if (config_read(&cfg, f) != CONFIG_TRUE) {
        char *ef = source_path(ld, config_error_file(&cfg));
        if (ef != NULL) {
            note_file(ld, ef);
            file_error(ld, ef, config_error_line(&cfg), "%s",
                       config_error_text(&cfg) != NULL ? config_error_text(&cfg) : "syntax error");
        }
        free(ef);
        ret = TC_OK;
        goto out;
    }
    root = config_root_setting(&cfg);
    check_included(ld, root, L);
    n = config_setting_length(root);
    for (i = 0; i < n; i++) {
        const char *name;
        s = config_setting_get_elem(root, (unsigned)i);
        name = s != NULL ? config_setting_name(s) : NULL;
        if (name == NULL)
            continue;
        if (strcmp(name, "defaults") == 0)
            parse_defaults(ld, s, L);
        else if (strcmp(name, "cas") == 0 || strcmp(name, "credentials") == 0)
            parse_list(ld, s, name, L);
    }
    check_members(ld, root, top_keys, NULL, ADVICE_ELSEWHERE);
    ret = TC_OK;
out:
    if (inited)
        config_destroy(&cfg);
    if (f != NULL)
        fclose(f);
    free(dir);
    ld->file = NULL;
    ld->dir = NULL;
    return ret;
}

static void layer_clear(layer *L)
{
    size_t i;
    for (i = 0; i < L->cas.n; i++) {
        ca_clear(L->cas.v[i]);
        free(L->cas.v[i]);
    }
    free(L->cas.v);
    for (i = 0; i < L->creds.n; i++) {
        cred_entry *ce = L->creds.v[i];
        cred_clear(&ce->c);
        free(ce);
    }
    free(L->creds.v);
    for (i = 0; i < L->files.n; i++)
        free(L->files.v[i]);
    free(L->files.v);
    free(L->d.state_dir);
    memset(L, 0, sizeof *L);
}

/* Moves what src declares into dst: entries of the same name are replaced, defaults key by key. */
static void layer_merge(loader *ld, layer *dst, layer *src)
{
    size_t i, j;

    if (src->d.renew_before_set) {
        dst->d.renew_before_set = 1;
        dst->d.renew_before = src->d.renew_before;
    }
    if (src->d.renew_fraction_set) {
        dst->d.renew_fraction_set = 1;
        dst->d.renew_fraction = src->d.renew_fraction;
    }
    if (src->d.grace_set) {
        dst->d.grace_set = 1;
        dst->d.grace = src->d.grace;
    }
    if (src->d.state_dir != NULL) {
        free(dst->d.state_dir);
        dst->d.state_dir = src->d.state_dir;
        src->d.state_dir = NULL;
    }
    for (i = 0; i < src->cas.n; i++) {
        tokencert_config_ca *ca = src->cas.v[i];
        for (j = 0; j < dst->cas.n; j++)
            if (strcmp(((tokencert_config_ca *)dst->cas.v[j])->name, ca->name) == 0)
                break;
        if (j < dst->cas.n) {
            ca_clear(dst->cas.v[j]);
            free(dst->cas.v[j]);
            dst->cas.v[j] = ca;
        } else if (tc_ptrvec_push(&dst->cas, ca) != 0) {
            ld->nomem = 1;
            ca_clear(ca);
            free(ca);
        }
        src->cas.v[i] = NULL;
    }
    src->cas.n = 0;
    for (i = 0; i < src->creds.n; i++) {
        cred_entry *ce = src->creds.v[i];
        for (j = 0; j < dst->creds.n; j++)
            if (strcmp(((cred_entry *)dst->creds.v[j])->c.name, ce->c.name) == 0)
                break;
        if (j < dst->creds.n) {
            cred_clear(&((cred_entry *)dst->creds.v[j])->c);
            free(dst->creds.v[j]);
            dst->creds.v[j] = ce;
        } else if (tc_ptrvec_push(&dst->creds, ce) != 0) {
            ld->nomem = 1;
            cred_clear(&ce->c);
            free(ce);
        }
        src->creds.v[i] = NULL;
    }
    src->creds.n = 0;
    for (i = 0; i < src->files.n; i++) {
        if (tc_ptrvec_push(&dst->files, src->files.v[i]) != 0) {
            ld->nomem = 1;
            free(src->files.v[i]);
        }
        src->files.v[i] = NULL;
    }
    src->files.n = 0;
}

static const tokencert_config_ca *layer_find_ca(const layer *L, const char *name)
{
    size_t i;
    for (i = 0; i < L->cas.n; i++)
        if (strcmp(((const tokencert_config_ca *)L->cas.v[i])->name, name) == 0)
            return L->cas.v[i];
    return NULL;
}

/* Checks what only the whole configuration can tell: the CA each credential names, and two
 * credentials sharing one token and label. */
static void cross_check(loader *ld, layer *L)
{
    size_t i, j, len;
    char *known = NULL, *p;

    len = strlen(CA_RESERVED_NAME) + 1;
    for (i = 0; i < L->cas.n; i++)
        len += strlen(((tokencert_config_ca *)L->cas.v[i])->name) + 2;
    known = malloc(len);
    if (known == NULL) {
        ld->nomem = 1;
        return;
    }
    p = known;
    p += sprintf(p, "%s", CA_RESERVED_NAME);
    for (i = 0; i < L->cas.n; i++) {
        const char *n = ((tokencert_config_ca *)L->cas.v[i])->name;
        if (strcmp(n, CA_RESERVED_NAME) != 0)
            p += sprintf(p, ", %s", n);
    }
    for (i = 0; i < L->creds.n; i++) {
        cred_entry *ce = L->creds.v[i];
        tokencert_config_credential *c = &ce->c;
        const char *ref = c->ca != NULL ? c->ca : CA_RESERVED_NAME;
        if (strcmp(ref, CA_RESERVED_NAME) == 0) {
            /* The embedded CA: named only when the configuration says more about it. */
            char *name =
                layer_find_ca(L, CA_RESERVED_NAME) != NULL ? xstrdup(ld, CA_RESERVED_NAME) : NULL;
            free(c->ca);
            c->ca = name;
        } else if (layer_find_ca(L, ref) == NULL) {
            file_error(ld, c->file, ce->ca_line > 0 ? ce->ca_line : c->line,
                       "credential '%s': unknown CA '%s' (known: %s)", c->name, ref, known);
        }
        if (c->token == NULL || c->label == NULL)
            continue;
        for (j = 0; j < i; j++) {
            const tokencert_config_credential *o = &((cred_entry *)L->creds.v[j])->c;
            if (o->token != NULL && o->label != NULL && strcmp(o->token, c->token) == 0 &&
                strcmp(o->label, c->label) == 0) {
                file_error(ld, c->file, c->line,
                           "credential '%s': token and label '%s' are those of credential '%s' "
                           "(%s:%d): each credential needs a label of its own",
                           c->name, c->label, o->name, o->file, o->line);
                break;
            }
        }
    }
    free(known);
}

/* Errors in the order the files were read (an included file right after the one including
 * it), then of the lines, whatever found them: the cross-checks run last but report in place. */
typedef struct {
    tokencert_config_error *e;
    size_t file_rank, seq;
} sort_item;

static int sort_cmp(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    if (x->file_rank != y->file_rank)
        return x->file_rank < y->file_rank ? -1 : 1;
    if (x->e->line != y->e->line)
        return x->e->line < y->e->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void sort_errors(loader *ld)
{
    sort_item *items;
    size_t i, j, n = ld->errors.n;

    if (n < 2)
        return;
    items = calloc(n, sizeof *items);
    if (items == NULL)
        return; /* unsorted is still right */
    for (i = 0; i < n; i++) {
        tokencert_config_error *e = ld->errors.v[i];
        items[i].e = e;
        items[i].seq = i;
        /* Not in a file: first. A file never noted (cannot happen): after those that were. */
        items[i].file_rank = 0;
        if (e->file == NULL)
            continue;
        items[i].file_rank = ld->order.n + 1;
        for (j = 0; j < ld->order.n; j++) {
            if (strcmp(e->file, ld->order.v[j]) == 0) {
                items[i].file_rank = j + 1;
                break;
            }
        }
    }
    qsort(items, n, sizeof *items, sort_cmp);
    for (i = 0; i < n; i++)
        ld->errors.v[i] = items[i].e;
    free(items);
}

/* The user's file: $XDG_CONFIG_HOME (when absolute), else ~/.config. NULL without a home. */
static char *user_config_path(void)
{
    const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (x != NULL && x[0] == '/')
        return tc_asprintf("%s/" USER_CONFIG, x);
    if (home != NULL && home[0] == '/')
        return tc_asprintf("%s/.config/" USER_CONFIG, home);
    return NULL;
}

static tokencert_err build(loader *ld, layer *L, tokencert_config **out)
{
    tokencert_config *cfg = calloc(1, sizeof *cfg);
    size_t i;

    if (cfg == NULL)
        return TC_ERR_NOMEM;
    cfg->renew_before = L->d.renew_before_set ? L->d.renew_before : DEFAULT_RENEW;
    cfg->renew_fraction = L->d.renew_fraction_set ? L->d.renew_fraction : DEFAULT_FRACTION;
    cfg->grace = L->d.grace_set ? L->d.grace : DEFAULT_GRACE;
    cfg->state_dir = L->d.state_dir;
    L->d.state_dir = NULL;
    cfg->files = calloc(L->files.n + 1, sizeof *cfg->files);
    cfg->cas = calloc(L->cas.n + 1, sizeof *cfg->cas);
    cfg->creds = calloc(L->creds.n + 1, sizeof *cfg->creds);
    if (cfg->files == NULL || cfg->cas == NULL || cfg->creds == NULL) {
        tokencert_config_free(cfg);
        return TC_ERR_NOMEM;
    }
    for (i = 0; i < L->files.n; i++)
        cfg->files[i] = L->files.v[i];
    cfg->n_files = L->files.n;
    L->files.n = 0;
    for (i = 0; i < L->cas.n; i++) {
        cfg->cas[i] = *(tokencert_config_ca *)L->cas.v[i];
        free(L->cas.v[i]);
    }
    cfg->n_cas = L->cas.n;
    L->cas.n = 0;
    for (i = 0; i < L->creds.n; i++) {
        cfg->creds[i] = ((cred_entry *)L->creds.v[i])->c;
        free(L->creds.v[i]);
    }
    cfg->n_creds = L->creds.n;
    L->creds.n = 0;
    (void)ld;
    *out = cfg;
    return TC_OK;
}

tokencert_err tokencert_config_load(tokencert_ctx *ctx, const char *path, tokencert_config **out,
                                    tokencert_config_error **errors, size_t *n_errors)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    loader ld;
    layer all, one;
    const char *sys;
    char *user = NULL;
    struct stat sys_st, user_st;
    int absent = 0, sys_read = 0;
    size_t i;

    memset(&sys_st, 0, sizeof sys_st);
    tc_return_val_if_fail(ctx != NULL && out != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    if (errors != NULL)
        *errors = NULL;
    if (n_errors != NULL)
        *n_errors = 0;
    memset(&ld, 0, sizeof ld);
    memset(&all, 0, sizeof all);
    memset(&one, 0, sizeof one);
    ld.ctx = ctx;

    if (path != NULL) {
        ret = read_file(&ld, path, 1, &one, &absent, NULL);
        if (ret != TC_OK)
            goto out;
        layer_merge(&ld, &all, &one);
    } else {
        /* For tests: the system file is elsewhere (documented in tokencert.conf(5)). */
        sys = getenv("TOKENCERT_CONFIG_SYSTEM");
        if (sys == NULL || sys[0] == '\0')
            sys = SYSTEM_CONFIG;
        ret = read_file(&ld, sys, 0, &one, &absent, &sys_st);
        if (ret != TC_OK)
            goto out;
        sys_read = !absent;
        layer_merge(&ld, &all, &one);
        layer_clear(&one);
        user = user_config_path();
        /* One file that is both (root's XDG_CONFIG_HOME=/etc) is read once. */
        if (user != NULL && !(sys_read && stat(user, &user_st) == 0 &&
                              user_st.st_dev == sys_st.st_dev && user_st.st_ino == sys_st.st_ino)) {
            ret = read_file(&ld, user, 0, &one, &absent, NULL);
            if (ret != TC_OK)
                goto out;
            layer_merge(&ld, &all, &one);
        }
    }
    if (!ld.nomem)
        cross_check(&ld, &all);
    sort_errors(&ld);
    if (ld.nomem) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (ld.errors.n > 0) {
        const tokencert_config_error *e = ld.errors.v[0];
        if (e->file != NULL && e->line > 0)
            tc_error(ctx, TC_ERR_BAD_DATA, "%s:%d: %s", e->file, e->line, e->message);
        else if (e->file != NULL && strstr(e->message, e->file) == NULL)
            tc_error(ctx, TC_ERR_BAD_DATA, "%s: %s", e->file, e->message);
        else
            tc_error(ctx, TC_ERR_BAD_DATA, "%s", e->message);
        if (errors != NULL && n_errors != NULL) {
            *errors = calloc(ld.errors.n, sizeof **errors);
            if (*errors == NULL) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
            for (i = 0; i < ld.errors.n; i++) {
                tokencert_config_error *src = ld.errors.v[i];
                (*errors)[i] = *src;
                free(src);
                ld.errors.v[i] = NULL;
            }
            *n_errors = ld.errors.n;
            ld.errors.n = 0;
        }
        ret = TC_ERR_BAD_DATA;
        goto out;
    }
    ret = build(&ld, &all, out);
out:
    for (i = 0; i < ld.errors.n; i++) {
        tokencert_config_error *e = ld.errors.v[i];
        free(e->file);
        free(e->message);
        free(e);
    }
    free(ld.errors.v);
    for (i = 0; i < ld.order.n; i++)
        free(ld.order.v[i]);
    free(ld.order.v);
    layer_clear(&one);
    layer_clear(&all);
    free(user);
    return ret;
}

void tokencert_config_free(tokencert_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->n_files; i++)
        free(cfg->files[i]);
    free(cfg->files);
    for (i = 0; i < cfg->n_cas; i++)
        ca_clear(&cfg->cas[i]);
    free(cfg->cas);
    for (i = 0; i < cfg->n_creds; i++)
        cred_clear(&cfg->creds[i]);
    free(cfg->creds);
    free(cfg->state_dir);
    free(cfg);
}

void tokencert_config_errors_free(tokencert_config_error *errors, size_t n)
{
    size_t i;

    if (errors == NULL)
        return;
    for (i = 0; i < n; i++) {
        free(errors[i].file);
        free(errors[i].message);
    }
    free(errors);
}

const tokencert_config_ca *tokencert_config_find_ca(const tokencert_config *cfg, const char *name)
{
    size_t i;

    if (cfg == NULL || name == NULL)
        return NULL;
    for (i = 0; i < cfg->n_cas; i++)
        if (strcmp(cfg->cas[i].name, name) == 0)
            return &cfg->cas[i];
    return NULL;
}

const tokencert_config_credential *tokencert_config_find_credential(const tokencert_config *cfg,
                                                                    const char *name)
{
    size_t i;

    if (cfg == NULL || name == NULL)
        return NULL;
    for (i = 0; i < cfg->n_creds; i++)
        if (strcmp(cfg->creds[i].name, name) == 0)
            return &cfg->creds[i];
    return NULL;
}
