/* cmd_config.c — `tokencert config check`: reads the configuration as every other command does
 * and reports every problem with its file and line, or what the configuration amounts to: the
 * files read, the defaults, each CA and each credential with the values that apply to it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "help_config.h"

/* "30d", "12h", "90m", "45s" or "0": the largest unit that divides the duration. */
static void duration_str(long long s, char *out, size_t cap)
{
    if (s == 0)
        snprintf(out, cap, "0");
    else if (s % 86400 == 0)
        snprintf(out, cap, "%lldd", s / 86400);
    else if (s % 3600 == 0)
        snprintf(out, cap, "%lldh", s / 3600);
    else if (s % 60 == 0)
        snprintf(out, cap, "%lldm", s / 60);
    else
        snprintf(out, cap, "%llds", s);
}

static void print_hook(const char *event, char *const *argv)
{
    size_t i;
    if (argv == NULL)
        return;
    printf("    hook %-15s", event);
    for (i = 0; argv[i] != NULL; i++)
        printf(" %s", argv[i]);
    putchar('\n');
}

static void print_config(const tokencert_config *cfg)
{
    char a[32], b[32];
    size_t i, j;
    char *state_dir =
        cfg->state_dir != NULL ? tc_strdup(cfg->state_dir) : tokencert_state_default_dir();

    if (cfg->n_files == 0)
        printf("no configuration file: what `tokencert enroll` recorded is renewed with the "
               "embedded CA\n");
    for (i = 0; i < cfg->n_files; i++)
        printf("read %s\n", cfg->files[i]);
    duration_str(cfg->renew_before, a, sizeof a);
    duration_str(cfg->grace, b, sizeof b);
    printf("defaults: renew_before %s, renew_fraction %g, grace %s, state in %s\n", a,
           cfg->renew_fraction, b, state_dir != NULL ? state_dir : "?");
    free(state_dir);
    printf("CA 'local': the embedded CA%s\n",
           tokencert_config_find_ca(cfg, "local") != NULL ? " (configured below)" : "");
    for (i = 0; i < cfg->n_cas; i++) {
        const tokencert_config_ca *ca = &cfg->cas[i];
        printf("CA '%s' (%s:%d): protocol %s", ca->name, ca->file, ca->line, ca->protocol);
        if (ca->url != NULL)
            printf(", %s", ca->url);
        if (ca->dir != NULL)
            printf(", dir %s", ca->dir);
        if (strcmp(ca->protocol, "manual") == 0)
            printf(" (requests and certificates exchanged as files there)");
        else
            printf(", %s approval", ca->manual_approval ? "manual" : "automatic");
        if (ca->approval_time > 0) {
            duration_str(ca->approval_time, a, sizeof a);
            printf(" (typically %s: renewals start that much earlier)", a);
        }
        if (ca->auth != NULL)
            printf(", auth %s%s%s", ca->auth, ca->user != NULL ? " as " : "",
                   ca->user != NULL ? ca->user : "");
        if (ca->secret_source != NULL)
            printf(", secret from %s", ca->secret_source);
        if (ca->issuer != NULL)
            printf(", issuer must be '%s'", ca->issuer);
        if (ca->ca_file != NULL)
            printf(", trust anchors %s", ca->ca_file);
        putchar('\n');
    }
    for (i = 0; i < cfg->n_creds; i++) {
        const tokencert_config_credential *c = &cfg->creds[i];
        duration_str(c->renew_before >= 0 ? c->renew_before : cfg->renew_before, a, sizeof a);
        printf("credential '%s' (%s:%d)\n", c->name, c->file, c->line);
        printf("    token %s%s%s, label %s\n", c->token, c->module != NULL ? " via " : "",
               c->module != NULL ? c->module : "", c->label);
        printf("    CA %s, key type %s (%s)\n", c->ca != NULL ? c->ca : "local",
               c->key_type != NULL ? c->key_type : "as the current key",
               c->reuse_key ? "reused at renewal" : "a new one at each renewal");
        printf("    subject %s\n",
               c->subject != NULL ? c->subject : "from the current certificate");
        if (c->san_set) {
            printf("    san");
            for (j = 0; j < c->n_san; j++)
                printf(" %s", c->san[j]);
            putchar('\n');
        }
        printf("    renew when less than the larger of %s and %g of the lifetime remains\n", a,
               c->renew_fraction >= 0 ? c->renew_fraction : cfg->renew_fraction);
        printf("    PIN %s\n", c->pin_source != NULL ? c->pin_source
                                                     : "from --pin-source or a prompt (none set "
                                                       "for unattended runs)");
        print_hook("before_renewal", c->hook_before_renewal);
        print_hook("after_renewal", c->hook_after_renewal);
        print_hook("expiring", c->hook_expiring);
        print_hook("failure", c->hook_failure);
    }
    printf("OK: %zu CA%s and %zu credential%s configured\n", cfg->n_cas, cfg->n_cas == 1 ? "" : "s",
           cfg->n_creds, cfg->n_creds == 1 ? "" : "s");
}

int cmd_config(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    tokencert_ctx *ctx = NULL;
    tokencert_config *cfg = NULL;
    tokencert_config_error *errs = NULL;
    size_t n_errs = 0, i;
    tokencert_err err;
    int opt, code;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            cli_print_help(help_config);
            return EXIT_OK;
        default:
            return cli_usage_error("config", "invalid option");
        }
    }
    if (argc - optind != 1 || strcmp(argv[optind], "check") != 0)
        return cli_usage_error("config", "expected: tokencert config check [--config FILE]");
    code = cli_new_ctx(&ctx);
    if (code != EXIT_OK)
        return code;
    err = tokencert_config_load(ctx, path, &cfg, &errs, &n_errs);
    if (err == TC_ERR_BAD_DATA && n_errs > 0) {
        for (i = 0; i < n_errs; i++) {
            if (errs[i].file != NULL && errs[i].line > 0)
                fprintf(stderr, "%s:%d: %s\n", errs[i].file, errs[i].line, errs[i].message);
            else if (errs[i].file != NULL && strstr(errs[i].message, errs[i].file) == NULL)
                fprintf(stderr, "%s: %s\n", errs[i].file, errs[i].message);
            else
                fprintf(stderr, "tokencert: %s\n", errs[i].message);
        }
        fprintf(stderr, "tokencert: %zu error%s in the configuration; nothing was changed\n",
                n_errs, n_errs == 1 ? "" : "s");
        code = EXIT_BAD_INPUT;
    } else if (err != TC_OK) {
        code = cli_fail(ctx, err, "reading the configuration");
    } else {
        cli_print_warnings(ctx);
        print_config(cfg);
        code = EXIT_OK;
    }
    tokencert_config_errors_free(errs, n_errs);
    tokencert_config_free(cfg);
    tokencert_ctx_free(ctx);
    return code;
}
