/* lifecycle.h — the lifecycle engine the commands status, renew, poll, prune, history and enroll
 * share: configured and enrolled credentials, what is due, request → install → switch-over →
 * prune, recorded in the state store before and after every step. Public library API only. */
#ifndef TOKENCERT_TOOLS_LIFECYCLE_H
#define TOKENCERT_TOOLS_LIFECYCLE_H

#include <time.h>

#include <json-c/json.h>

#include "cli.h"

/* A credential as the engine handles it: from the configuration, else from what enroll recorded
 * in the state store, with every default applied. */
typedef struct {
    char *name;
    char *token_uri;
    char *module; /* NULL: the registry (or --module) */
    char *label;
    char *ca; /* CA name; "local" is the embedded CA */
    char *ca_protocol;
    char *ca_dir;    /* local and manual CAs: their directory */
    char *ca_issuer; /* expected issuer, NULL: the CA's own certificate decides */
    int ca_manual;
    long long approval_time;
    char *subject; /* NULL: from the current certificate */
    char **san;
    size_t n_san;
    int san_set;
    char *key_type; /* NULL: as the current key */
    long long renew_before;
    double renew_fraction;
    int reuse_key;
    char *pin_source;
    char *const *hook_before, *const *hook_after, *const *hook_expiring, *const *hook_failure;
    int configured; /* declared in the configuration */
} lc_cred;

typedef struct {
    cli_common *c;
    const char *config_path; /* --config */
    const char *state_dir;   /* --state-dir */
    int dry_run;
    int key_policy; /* 0 as configured, 1 --rekey, 2 --reuse-key */
    int wait_seconds;
    int quiet;    /* no per-credential "not due" lines */
    int named;    /* renew NAME: the credential may move onto another token with its label */
    int snapshot; /* status, renew, poll: the store is read once for the run (see st_requests) */
    time_t started;
    tokencert_ctx *ctx; /* for configuration and state errors */
    tokencert_config *cfg;
    tokencert_state *st;
    lc_cred *creds;
    size_t n_creds;
    int locked;
    long long gen_mark; /* highest generation id before the lock was taken; -1 unknown */
    /* What this run has loaded, opened and read, shared by all its credentials: each module
     * loaded once, each token read once and opened (and logged in to) at most once. */
    struct lc_cache *cache;
} lc;

/* getopt_long entries the lifecycle commands share (ids 1101..1103), and their handler: returns 1
 * when opt was one of them, -1 when its argument is bad (after printing), else 0. */
#define LC_OPTIONS                                                                                 \
    {"config", required_argument, NULL, 1101}, {"state-dir", required_argument, NULL, 1102},       \
    {                                                                                              \
        "wait", required_argument, NULL, 1103                                                      \
    }
int lc_option(lc *l, const char *cmd, int opt, const char *arg);

/* Loads the configuration and opens the state store (created when create is set; then also
 * locked for writing when lock is set). Prints what is wrong and returns an exit code. */
int lc_open(lc *l, int create, int lock);
void lc_close(lc *l);
/* Writes what the run kept to write at its end (the "not due" results); returns an exit code.
 * lc_close() does it too, when it was not called. */
int lc_flush(lc *l);
/* The credential called name, or NULL (after printing that it is unknown). */
lc_cred *lc_find(lc *l, const char *name);

/* When the credential's certificate (valid not_before..not_after) comes due for renewal. */
time_t lc_due_at(const lc_cred *c, time_t not_before, time_t not_after);

/* Renews c: resumes an unfinished request, else starts one when force or it is due. Returns an
 * exit code; *result (static string) says what happened: "renewed", "pending", "not due",
 * "deferred", "failed", "rejected". */
int lc_renew(lc *l, lc_cred *c, int force, const char **result);
/* Asks the CA about c's pending requests and installs what was issued. */
int lc_poll(lc *l, lc_cred *c, const char **result);
/* Deletes the objects of c's superseded generations expired beyond the grace period, and the keys
 * of abandoned requests. */
int lc_prune(lc *l, lc_cred *c, long long grace, int *n_pruned);

/* Describes c: active certificate, when renewal is due, the request in progress, the next action;
 * as text on stdout, or appended to out (a JSON array) when out is not NULL. */
int lc_status(lc *l, lc_cred *c, json_object *out);

/* An event: appended to the history, sent to syslog. */
void lc_event(lc *l, const char *cred, const char *event, const char *result, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif /* TOKENCERT_TOOLS_LIFECYCLE_H */
