/* cmd_check.c — `tokencert check`: monitoring-plugin exit codes (0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN), a one-line summary, JSON, and the node_exporter textfile format.
 *
 * Each credential is judged by its current certificate, as the library's one rule picks it (the
 * valid one that lasts longest) among everything under its name on the token. A credential whose
 * old certificate is about to expire but whose successor is already installed — beside the same
 * key or, after a renewal with a new key, beside another — is OK. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "help_check.h"

enum { ST_OK = 0, ST_WARNING = 1, ST_CRITICAL = 2, ST_UNKNOWN = 3 };
static const char *const state_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

typedef struct {
    const tokencert_token_inventory *token;
    const tokencert_credential *cred;
    const tokencert_cert *best; /* the current certificate; NULL when none is valid now */
    int state;
    char reason[160];
} judged;

/* Severity order for the overall result: CRITICAL > WARNING > UNKNOWN > OK. */
static int rank(int state)
{
    static const int r[] = {0, 2, 3, 1};
    return r[state];
}

/* The rule (tokencert_credential_classify) picks the certificate to judge; the thresholds are
 * renewal policies of their own, so "less than --warn left" means what "expiring" means
 * everywhere else. */
static void judge(judged *j, time_t now, long long warn, long long crit)
{
    const tokencert_renewal_policy warn_p = {warn, 0, 0}, crit_p = {crit, 0, 0};
    tokencert_credential_state w, k;

    j->best = NULL;
    if (tokencert_credential_classify(j->cred, now, &warn_p, &w) != TC_OK ||
        tokencert_credential_classify(j->cred, now, &crit_p, &k) != TC_OK) {
        j->state = ST_UNKNOWN;
        snprintf(j->reason, sizeof j->reason, "cannot be judged");
        return;
    }
    /* A renewal with a new key leaves the predecessor as a credential of its own under the same
     * name: it is judged by the name's current certificate, so that the old certificate running
     * out beside a newer one raises no alarm. */
    if (j->cred->name != NULL && j->cred->name[0] != '\0') {
        tokencert_credential_state nw, nk;
        if (tokencert_named_classify(j->token, j->cred->name, now, &warn_p, &nw) == TC_OK &&
            tokencert_named_classify(j->token, j->cred->name, now, &crit_p, &nk) == TC_OK &&
            nw.current != NULL && nw.current != w.current &&
            (w.current == NULL || nw.current->not_after > w.current->not_after)) {
            w = nw;
            k = nk;
        }
    }
    if (w.current != NULL) {
        j->best = w.current;
        j->state = k.expiring ? ST_CRITICAL : w.expiring ? ST_WARNING : ST_OK;
        snprintf(j->reason, sizeof j->reason, "expires in %ld days", j->best->days_left);
    } else if (w.n_unreadable > 0 && w.n_unreadable == j->cred->n_certs) {
        j->state = ST_UNKNOWN;
        snprintf(j->reason, sizeof j->reason, "certificate unreadable");
    } else {
        j->state = ST_CRITICAL;
        snprintf(j->reason, sizeof j->reason, "%s",
                 w.n_not_yet_valid > 0 ? "no certificate valid yet" : "expired");
    }
}

/* Prometheus label values escape backslash, double quote and newline. */
static void prom_label(FILE *f, const char *name, const char *v, int comma)
{
    fprintf(f, "%s%s=\"", comma ? "," : "", name);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
    fputc('"', f);
}

static void prom_cert_labels(FILE *f, const judged *j, const tokencert_cert *x)
{
    fputc('{', f);
    prom_label(f, "token", j->token->token.label, 0);
    prom_label(f, "credential", j->cred->name, 1);
    prom_label(f, "label", x->label, 1);
    prom_label(f, "id", x->id, 1);
    prom_label(f, "serial", x->serial ? x->serial : "", 1);
    prom_label(f, "subject", x->subject ? x->subject : "", 1);
    fputc('}', f);
}

/* The lifecycle's figures from the state store, when there is one: requests waiting at a CA,
 * requests that failed and wait for a retry, and each credential's last run. */
static void write_lifecycle_metrics(FILE *f, tokencert_ctx *ctx)
{
    tokencert_records rec;
    tokencert_state_credential *cv;
    tokencert_state_request *rv;
    size_t n_c, n_r, i, j;

    if (tokencert_records_read(ctx, NULL, NULL,
                               TOKENCERT_RECORDS_CREDENTIALS | TOKENCERT_RECORDS_OPEN_REQUESTS,
                               &rec) != TC_OK)
        return;
    cv = rec.creds;
    n_c = rec.n_creds;
    rv = rec.requests;
    n_r = rec.n_requests;
    fputs("# HELP tokencert_requests_pending Requests waiting at the CA (an operator's approval).\n"
          "# TYPE tokencert_requests_pending gauge\n",
          f);
    for (i = 0; i < n_c; i++) {
        size_t pending = 0;
        for (j = 0; j < n_r; j++)
            pending +=
                strcmp(rv[j].credential, cv[i].name) == 0 && rv[j].state == TOKENCERT_RS_PENDING;
        fputs("tokencert_requests_pending{", f);
        prom_label(f, "credential", cv[i].name, 0);
        fprintf(f, "} %zu\n", pending);
    }
    fputs("# HELP tokencert_request_pending_since_seconds When a pending request was made (Unix "
          "time).\n# TYPE tokencert_request_pending_since_seconds gauge\n",
          f);
    for (j = 0; j < n_r; j++) {
        char id[32];
        if (rv[j].state != TOKENCERT_RS_PENDING)
            continue;
        snprintf(id, sizeof id, "%lld", rv[j].id);
        fputs("tokencert_request_pending_since_seconds{", f);
        prom_label(f, "credential", rv[j].credential, 0);
        prom_label(f, "request", id, 1);
        prom_label(f, "ca", rv[j].ca ? rv[j].ca : "", 1);
        fprintf(f, "} %lld\n", (long long)rv[j].created);
    }
    fputs("# HELP tokencert_requests_failed Requests that failed and wait for a retry.\n"
          "# TYPE tokencert_requests_failed gauge\n",
          f);
    for (i = 0; i < n_c; i++) {
        size_t failed = 0;
        for (j = 0; j < n_r; j++)
            failed +=
                strcmp(rv[j].credential, cv[i].name) == 0 && rv[j].state == TOKENCERT_RS_FAILED;
        fputs("tokencert_requests_failed{", f);
        prom_label(f, "credential", cv[i].name, 0);
        fprintf(f, "} %zu\n", failed);
    }
    fputs("# HELP tokencert_last_run_timestamp_seconds When renew or poll last handled the "
          "credential.\n# TYPE tokencert_last_run_timestamp_seconds gauge\n",
          f);
    for (i = 0; i < n_c; i++) {
        fputs("tokencert_last_run_timestamp_seconds{", f);
        prom_label(f, "credential", cv[i].name, 0);
        fprintf(f, "} %lld\n", (long long)cv[i].last_run);
    }
    fputs("# HELP tokencert_last_run_result The last run's result (the label); 1 failed or "
          "rejected, 0 otherwise.\n# TYPE tokencert_last_run_result gauge\n",
          f);
    for (i = 0; i < n_c; i++) {
        const char *r = cv[i].last_result ? cv[i].last_result : "none";
        fputs("tokencert_last_run_result{", f);
        prom_label(f, "credential", cv[i].name, 0);
        prom_label(f, "result", r, 1);
        fprintf(f, "} %d\n", strcmp(r, "failed") == 0 || strcmp(r, "rejected") == 0);
    }
    tokencert_records_clear(&rec);
}

/* Written to a temporary file in the same directory and renamed, so node_exporter never reads a
 * half-written file. */
static int write_metrics(tokencert_ctx *ctx, const char *path, const judged *js, size_t n,
                         int overall, int success, time_t now)
{
    size_t i, k, counts[5] = {0};
    char *tmp = tc_asprintf("%s.%ld.tmp", path, (long)getpid());
    FILE *f;
    int ret = -1;

    if (tmp == NULL)
        return -1;
    f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "tokencert: cannot write metrics to '%s': %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    fputs("# HELP tokencert_certificate_not_after_seconds End of validity (Unix time).\n"
          "# TYPE tokencert_certificate_not_after_seconds gauge\n",
          f);
    for (i = 0; i < n; i++)
        for (k = 0; k < js[i].cred->n_certs; k++) {
            const tokencert_cert *x = &js[i].cred->certs[k];
            if (x->status == TOKENCERT_CERT_UNREADABLE)
                continue;
            fputs("tokencert_certificate_not_after_seconds", f);
            prom_cert_labels(f, &js[i], x);
            fprintf(f, " %lld\n", (long long)x->not_after);
        }
    fputs("# HELP tokencert_certificate_days_left Whole days until the end of validity.\n"
          "# TYPE tokencert_certificate_days_left gauge\n",
          f);
    for (i = 0; i < n; i++)
        for (k = 0; k < js[i].cred->n_certs; k++) {
            const tokencert_cert *x = &js[i].cred->certs[k];
            counts[x->status]++;
            if (x->status == TOKENCERT_CERT_UNREADABLE)
                continue;
            fputs("tokencert_certificate_days_left", f);
            prom_cert_labels(f, &js[i], x);
            fprintf(f, " %ld\n", x->days_left);
        }
    fputs("# HELP tokencert_certificates Certificates by status.\n"
          "# TYPE tokencert_certificates gauge\n",
          f);
    for (k = 0; k < 5; k++)
        fprintf(f, "tokencert_certificates{status=\"%s\"} %zu\n",
                tokencert_cert_status_name((tokencert_cert_status)k), counts[k]);
    fputs("# HELP tokencert_credential_state 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
          "# TYPE tokencert_credential_state gauge\n",
          f);
    for (i = 0; i < n; i++) {
        fputs("tokencert_credential_state{", f);
        prom_label(f, "token", js[i].token->token.label, 0);
        prom_label(f, "credential", js[i].cred->name, 1);
        prom_label(f, "id", js[i].cred->id, 1);
        fprintf(f, "} %d\n", js[i].state);
    }
    write_lifecycle_metrics(f, ctx);
    fprintf(f,
            "# HELP tokencert_check_status Overall result: 0 OK, 1 WARNING, 2 CRITICAL, 3 "
            "UNKNOWN.\n# TYPE tokencert_check_status gauge\ntokencert_check_status %d\n"
            "# HELP tokencert_check_success 1 when the tokens could be read.\n"
            "# TYPE tokencert_check_success gauge\ntokencert_check_success %d\n"
            "# HELP tokencert_check_timestamp_seconds When this check ran.\n"
            "# TYPE tokencert_check_timestamp_seconds gauge\n"
            "tokencert_check_timestamp_seconds %lld\n",
            overall, success, (long long)now);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fprintf(stderr, "tokencert: cannot write metrics to '%s': %s\n", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        goto out;
    }
    fclose(f);
    if (chmod(tmp, 0644) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "tokencert: cannot move metrics into '%s': %s\n", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    ret = 0;
out:
    free(tmp);
    return ret;
}

static void print_json(const judged *js, size_t n, int overall, const char *summary,
                       const char *error, long long warn, long long crit, time_t now)
{
    json_object *root = json_object_new_object(), *arr = json_object_new_array();
    char t[32];
    size_t i;

    json_object_object_add(root, "version", json_object_new_int(1));
    tc_time_iso(now, t, sizeof t);
    json_object_object_add(root, "generated_at", json_object_new_string(t));
    json_object_object_add(root, "status", json_object_new_string(state_names[overall]));
    json_object_object_add(root, "exit_code", json_object_new_int(overall));
    json_object_object_add(root, "summary", json_object_new_string(summary));
    json_object_object_add(root, "error", error ? json_object_new_string(error) : NULL);
    json_object_object_add(root, "warn_seconds", json_object_new_int64(warn));
    json_object_object_add(root, "critical_seconds", json_object_new_int64(crit));
    for (i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        const tokencert_cert *b = js[i].best;
        json_object_object_add(o, "token", json_object_new_string(js[i].token->token.label));
        json_object_object_add(o, "credential", json_object_new_string(js[i].cred->name));
        json_object_object_add(o, "id", json_object_new_string(js[i].cred->id));
        json_object_object_add(o, "state", json_object_new_string(state_names[js[i].state]));
        json_object_object_add(o, "reason", json_object_new_string(js[i].reason));
        json_object_object_add(o, "certificates", json_object_new_int((int)js[i].cred->n_certs));
        if (b != NULL) {
            tc_time_iso(b->not_after, t, sizeof t);
            json_object_object_add(o, "not_after", json_object_new_string(t));
            json_object_object_add(o, "days_left", json_object_new_int64(b->days_left));
            json_object_object_add(o, "subject", json_object_new_string(b->subject));
            json_object_object_add(o, "sha256", json_object_new_string(b->sha256));
            json_object_object_add(o, "uri", json_object_new_string(b->uri));
        } else {
            json_object_object_add(o, "not_after", NULL);
            json_object_object_add(o, "days_left", NULL);
        }
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "credentials", arr);
    puts(json_object_to_json_string_ext(root,
                                        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static long long parse_threshold(const char *arg, const char *opt, int *bad)
{
    long long v = tc_parse_duration(arg);
    if (v == TC_DURATION_TOO_LONG) {
        cli_usage_error("check", "%s: '%s' is longer than 1000 years", opt, arg);
        *bad = 1;
    } else if (v < 0) {
        cli_usage_error("check", "%s: '%s' is not a duration like 30d, 12h or 2w", opt, arg);
        *bad = 1;
    }
    return v;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"warn", required_argument, NULL, 'w'},
                                         {"critical", required_argument, NULL, 'c'},
                                         {"metrics", required_argument, NULL, 'm'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_inventory *inv = NULL;
    tokencert_login_opts lo;
    tokencert_err err;
    long long warn = 30 * 86400LL, crit = 7 * 86400LL;
    const char *metrics = NULL;
    judged *js = NULL;
    size_t n = 0, i, j, counts[4] = {0};
    int opt, bad = 0, overall = ST_OK, success = 1, worst = -1;
    char summary[512], *error = NULL;
    time_t now = tc_now();

    memset(&c, 0, sizeof c);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'j':
            c.json = 1;
            break;
        case 'w':
            warn = parse_threshold(optarg, "--warn", &bad);
            break;
        case 'c':
            crit = parse_threshold(optarg, "--critical", &bad);
            break;
        case 'm':
            metrics = optarg;
            break;
        case 'h':
            cli_print_help(help_check);
            return ST_OK;
        default:
            cli_usage_error("check", "invalid option");
            return ST_UNKNOWN;
        }
    }
    if (bad)
        return ST_UNKNOWN;
    if (argc - optind > 1) {
        cli_usage_error("check", "at most one URI expected");
        return ST_UNKNOWN;
    }
    if (crit > warn) {
        cli_usage_error("check", "--critical must not be longer than --warn");
        return ST_UNKNOWN;
    }
    if (cli_new_ctx(&ctx) != EXIT_OK)
        return ST_UNKNOWN;
    err = tokencert_load_modules(ctx, c.module);
    if (err == TC_OK) {
        cli_login_opts(&c, &lo);
        err = tokencert_inventory_load(ctx, optind < argc ? argv[optind] : NULL, &lo, warn, &inv);
    }
    cli_print_warnings(ctx);
    if (err != TC_OK) {
        error = tc_asprintf("%s: %s", tokencert_strerror(err), tokencert_ctx_error(ctx));
        overall = ST_UNKNOWN;
        success = 0;
        snprintf(summary, sizeof summary, "tokencert UNKNOWN - %s", error ? error : "error");
    } else {
        now = inv->now;
        for (i = 0; i < inv->n_tokens; i++)
            n += inv->tokens[i].n_creds;
        js = calloc(n ? n : 1, sizeof *js);
        if (js == NULL) {
            tokencert_inventory_free(inv);
            tokencert_ctx_free(ctx);
            return ST_UNKNOWN;
        }
        n = 0;
        for (i = 0; i < inv->n_tokens; i++)
            for (j = 0; j < inv->tokens[i].n_creds; j++) {
                const tokencert_credential *cr = &inv->tokens[i].creds[j];
                /* Authorities and keys without certificates are not credentials one logs in
                 * with; they are listed by `list`, not alarmed on. */
                if (cr->kind == TOKENCERT_CRED_AUTHORITY || cr->kind == TOKENCERT_CRED_KEY_ONLY)
                    continue;
                js[n].token = &inv->tokens[i];
                js[n].cred = cr;
                judge(&js[n], now, warn, crit);
                counts[js[n].state]++;
                if (rank(js[n].state) > rank(overall))
                    overall = js[n].state;
                if (js[n].state != ST_OK &&
                    (worst < 0 || rank(js[n].state) > rank(js[worst].state) ||
                     (js[n].best && js[worst].best &&
                      js[n].best->not_after < js[worst].best->not_after)))
                    worst = (int)n;
                n++;
            }
        if (n == 0) {
            overall = ST_UNKNOWN;
            snprintf(summary, sizeof summary,
                     "tokencert UNKNOWN - no certificates found on the matching tokens");
        } else if (worst < 0) {
            snprintf(summary, sizeof summary,
                     "tokencert OK - %zu credential%s, all valid for at least %lld days", n,
                     n == 1 ? "" : "s", warn / 86400);
        } else {
            snprintf(summary, sizeof summary,
                     "tokencert %s - %zu critical, %zu warning, %zu unknown, %zu ok; '%s' on "
                     "token '%s' %s",
                     state_names[overall], counts[ST_CRITICAL], counts[ST_WARNING],
                     counts[ST_UNKNOWN], counts[ST_OK], js[worst].cred->name,
                     js[worst].token->token.label, js[worst].reason);
        }
    }
    if (c.json) {
        print_json(js, n, overall, summary, error, warn, crit, now);
    } else {
        puts(summary);
        for (i = 0; i < n; i++)
            if (js[i].state != ST_OK)
                printf("  %-8s %s '%s' (id %s): %s\n", state_names[js[i].state],
                       js[i].token->token.label, js[i].cred->name,
                       js[i].cred->id[0] ? js[i].cred->id : "none", js[i].reason);
    }
    if (metrics != NULL && write_metrics(ctx, metrics, js, n, overall, success, now) != 0 &&
        overall == ST_OK)
        overall = ST_UNKNOWN;
    free(error);
    free(js);
    tokencert_inventory_free(inv);
    tokencert_ctx_free(ctx);
    return overall;
}
