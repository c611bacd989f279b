/* lifecycle.c — the CLI's side of the lifecycle engine: options, configuration errors, the
 * engine's events as lines (stdout for progress, stderr for problems) and syslog messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "common.h"
#include "lifecycle.h"

/* A progress line is on the terminal (stderr), to be cleared before anything else is written. */
static int working_shown;

static void working_clear(void)
{
    if (!working_shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    working_shown = 0;
}

static void on_event(void *data, const tokencert_event *ev)
{
    size_t len;
    (void)data;
    if (ev->kind == TOKENCERT_EV_WORKING) {
        /* Only on a terminal: a log or a pipe gets the lines that say what was done. */
        if (isatty(STDERR_FILENO)) {
            working_clear();
            fprintf(stderr, "%s\xe2\x80\xa6", ev->message);
            fflush(stderr);
            working_shown = 1;
        }
        return;
    }
    if (ev->kind != TOKENCERT_EV_RECORDED)
        working_clear();
    switch (ev->kind) {
    case TOKENCERT_EV_PROGRESS:
        printf("%s\n", ev->message);
        break;
    case TOKENCERT_EV_PROBLEM:
        fprintf(stderr, "tokencert: %s\n", ev->message);
        break;
    case TOKENCERT_EV_OUTPUT:
        len = strlen(ev->message);
        fprintf(stderr, "%s%s", ev->message, len > 0 && ev->message[len - 1] == '\n' ? "" : "\n");
        break;
    case TOKENCERT_EV_WORKING:
        break;
    case TOKENCERT_EV_RECORDED:
        syslog(strcmp(ev->result, "ok") == 0 ? LOG_NOTICE : LOG_WARNING, "%s%s%s: %s (%s)%s%s",
               ev->credential != NULL ? "credential " : "",
               ev->credential != NULL ? ev->credential : "", ev->credential != NULL ? "" : "store",
               ev->event, ev->result, ev->message[0] != '\0' ? ": " : "", ev->message);
        break;
    }
}

int lc_open(lc *l, int create, int lock)
{
    tokencert_config_error *errs = NULL;
    tokencert_engine_opts o;
    tokencert_config *cfg = NULL;
    size_t n_errs = 0, i;
    tokencert_err err;
    int code;

    openlog("tokencert", LOG_PID, LOG_USER);
    code = cli_new_ctx(&l->ctx);
    if (code != EXIT_OK)
        return code;
    err = tokencert_config_load(l->ctx, l->config_path, &cfg, &errs, &n_errs);
    if (err == TC_ERR_BAD_DATA) {
        for (i = 0; i < n_errs; i++) {
            if (errs[i].file != NULL && errs[i].line > 0)
                fprintf(stderr, "%s:%d: %s\n", errs[i].file, errs[i].line, errs[i].message);
            else
                fprintf(stderr, "tokencert: configuration: %s\n", errs[i].message);
        }
        fprintf(stderr, "tokencert: the configuration has %zu error%s (tokencert config check)\n",
                n_errs, n_errs == 1 ? "" : "s");
        tokencert_config_errors_free(errs, n_errs);
        return EXIT_BAD_INPUT;
    }
    tokencert_config_errors_free(errs, n_errs);
    if (err != TC_OK)
        return cli_fail(l->ctx, err, "reading the configuration");
    memset(&o, 0, sizeof o);
    o.state_dir = l->state_dir;
    o.module = l->c->module;
    cli_login_opts(l->c, &o.login);
    o.dry_run = l->dry_run;
    o.key_policy = l->key_policy;
    o.wait_seconds = l->wait_seconds;
    o.quiet = l->quiet;
    o.on_event = on_event;
    err = tokencert_engine_open(
        cfg, &o, (create ? TOKENCERT_ENGINE_CREATE : 0) | (lock ? TOKENCERT_ENGINE_LOCK : 0),
        &l->e);
    if (err != TC_OK)
        return cli_exit_code(err);
    l->cfg = cfg;
    return EXIT_OK;
}

void lc_progress_end(void)
{
    working_clear();
}

int lc_flush(lc *l)
{
    working_clear();
    return cli_exit_code(tokencert_engine_flush(l->e));
}

void lc_close(lc *l)
{
    working_clear();
    tokencert_engine_close(l->e);
    tokencert_ctx_free(l->ctx);
    closelog();
    l->e = NULL;
    l->ctx = NULL;
    l->cfg = NULL;
}

int lc_find(lc *l, const char *name, size_t *i)
{
    if (tokencert_engine_find(l->e, name, i) == TC_OK)
        return EXIT_OK;
    fprintf(stderr,
            "tokencert: no credential '%s': it is neither in the configuration nor enrolled "
            "(tokencert status lists them)\n",
            name);
    return EXIT_NOT_FOUND;
}

size_t lc_count(const lc *l)
{
    return tokencert_engine_count(l->e);
}

const tokencert_engine_credential *lc_cred_at(const lc *l, size_t i)
{
    return tokencert_engine_credential_at(l->e, i);
}

int lc_option(lc *l, const char *cmd, int opt, const char *arg)
{
    char *end = NULL;
    long v;

    switch (opt) {
    case 1101:
        l->config_path = arg;
        return 1;
    case 1102:
        l->state_dir = arg;
        return 1;
    case 1103:
        errno = 0;
        v = strtol(arg, &end, 10);
        if (errno != 0 || end == arg || *end != '\0' || v < 0 || v > 86400) {
            cli_usage_error(cmd, "--wait: '%s' is not a number of seconds (0-86400)", arg);
            return -1;
        }
        l->wait_seconds = (int)v;
        return 1;
    default:
        return 0;
    }
}

int lc_summary(int worst, int code)
{
    if (code == EXIT_OK)
        return worst;
    if (worst == EXIT_OK)
        return code;
    if (code == EXIT_PENDING || code == EXIT_TOKEN_ABSENT) {
        if (worst == EXIT_TOKEN_ABSENT && code == EXIT_PENDING)
            return EXIT_PENDING;
        return worst;
    }
    if (worst == EXIT_PENDING || worst == EXIT_TOKEN_ABSENT)
        return code;
    return worst == code ? worst : EXIT_ERROR;
}
