/* cmd_renew.c — `tokencert renew [NAME | --all] [--due] [--rekey | --reuse-key] [--dry-run]`:
 * renews credentials through the lifecycle engine. A named credential is renewed now whatever its
 * dates; --due limits the run to what is due (what the timer runs). An unfinished request is
 * continued rather than a second one started. */
#include <string.h>

#include "help_renew.h"
#include "lifecycle.h"

int cmd_renew(int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                         {"due", no_argument, NULL, 'd'},
                                         {"rekey", no_argument, NULL, 'r'},
                                         {"reuse-key", no_argument, NULL, 'R'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         LC_OPTIONS,
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    int opt, all = 0, due = 0, code, worst = EXIT_OK, h;
    size_t i;
    tokencert_outcome result;

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    l.c = &c;
    l.wait_seconds = 60;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "renew", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
            continue;
        switch (opt) {
        case 'a':
            all = 1;
            break;
        case 'd':
            due = 1;
            break;
        case 'r':
            l.key_policy = TOKENCERT_KEYS_REKEY;
            break;
        case 'R':
            l.key_policy = TOKENCERT_KEYS_REUSE;
            break;
        case 'n':
            l.dry_run = 1;
            break;
        case 'h':
            cli_print_help(help_renew);
            return EXIT_OK;
        default:
            return cli_usage_error("renew", "invalid option");
        }
    }
    if (all == (argc - optind == 1) || argc - optind > 1)
        return cli_usage_error("renew", "name one credential, or give --all");
    code = lc_open(&l, !l.dry_run, !l.dry_run);
    if (code != EXIT_OK)
        goto out;
    if (all) {
        if (lc_count(&l) == 0)
            printf("no credentials: none is configured and none was enrolled\n");
        for (i = 0; i < lc_count(&l); i++) {
            /* Each independently: one failing does not stop the others. */
            code = cli_exit_code(
                tokencert_engine_renew(l.e, i, due ? 0 : TOKENCERT_RENEW_FORCE, &result));
            worst = lc_summary(worst, code);
        }
        code = worst;
    } else {
        code = lc_find(&l, argv[optind], &i);
        if (code == EXIT_OK)
            code = cli_exit_code(tokencert_engine_renew(
                l.e, i, due ? 0 : TOKENCERT_RENEW_FORCE | TOKENCERT_RENEW_NAMED, &result));
    }
    code = lc_summary(code, lc_flush(&l));
out:
    lc_close(&l);
    return code;
}
