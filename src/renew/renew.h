/* renew.h — the lifecycle engine's own state (engine.c): one run over the credentials of a
 * configuration, what it has loaded, opened and read, shared by all its credentials. */
#ifndef TOKENCERT_RENEW_RENEW_H
#define TOKENCERT_RENEW_RENEW_H

#include <time.h>

#include "state/state.h"
#include "tokencert.h"

typedef tokencert_engine_credential lc_cred;

struct tokencert_engine {
    const char *state_dir;
    const char *module;
    tokencert_login_opts login;
    int dry_run;
    tokencert_key_policy key_policy;
    int wait_seconds;
    int quiet;    /* no per-credential "not due" lines */
    int named;    /* renew NAME: the credential may move onto another token with its label */
    int snapshot; /* the store is read once for the run (see st_requests) */
    tokencert_event_fn on_event;
    void *event_data;
    const char *current; /* the credential being worked on: the events' */
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
};

typedef struct tokencert_engine lc;

/* When the credential's certificate (valid not_before..not_after) comes due for renewal. */
time_t lc_due_at(const lc_cred *c, time_t not_before, time_t not_after);

#endif /* TOKENCERT_RENEW_RENEW_H */
