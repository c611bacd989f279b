/* lifecycle.h — what the commands status, renew, poll, prune, history and enroll share around the
 * library's lifecycle engine (tokencert_engine_*): their options, the configuration's errors
 * printed, the engine's events turned into lines and syslog messages, and the exit code of a run
 * over several credentials. Public library API only. */
#ifndef TOKENCERT_TOOLS_LIFECYCLE_H
#define TOKENCERT_TOOLS_LIFECYCLE_H

#include <time.h>

#include <json-c/json.h>

#include "cli.h"

typedef struct {
    cli_common *c;
    const char *config_path; /* --config */
    const char *state_dir;   /* --state-dir */
    int dry_run;
    tokencert_key_policy key_policy; /* --rekey, --reuse-key */
    int wait_seconds;
    int quiet; /* no per-credential "not due" lines */
    tokencert_engine *e;
    tokencert_config *cfg; /* borrowed from the engine once open */
    tokencert_ctx *ctx;    /* for the configuration's errors, until the engine is open */
} lc;

/* getopt_long entries the lifecycle commands share (ids 1101..1103), and their handler: returns 1
 * when opt was one of them, -1 when its argument is bad (after printing), else 0. */
#define LC_OPTIONS                                                                                 \
    {"config", required_argument, NULL, 1101}, {"state-dir", required_argument, NULL, 1102},       \
    {                                                                                              \
        "wait", required_argument, NULL, 1103                                                      \
    }
int lc_option(lc *l, const char *cmd, int opt, const char *arg);

/* Loads the configuration (printing its errors) and opens the engine on it (the store created
 * when create is set; then also locked for writing when lock is set). Returns an exit code. */
int lc_open(lc *l, int create, int lock);
void lc_close(lc *l);
/* Ends a progress line the engine's events put on the terminal, before the command prints. */
void lc_progress_end(void);
/* Writes what the run kept to write at its end; returns an exit code. */
int lc_flush(lc *l);
/* The index of the credential called name in *i: EXIT_OK, else EXIT_NOT_FOUND after saying so. */
int lc_find(lc *l, const char *name, size_t *i);
size_t lc_count(const lc *l);
const tokencert_engine_credential *lc_cred_at(const lc *l, size_t i);

/* The exit code of a run over several credentials: a failure wins, then pending, then an absent
 * token; one credential keeps its own code. */
int lc_summary(int worst, int code);

#endif /* TOKENCERT_TOOLS_LIFECYCLE_H */
