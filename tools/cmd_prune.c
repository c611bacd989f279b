/* cmd_prune.c — `tokencert prune [NAME] [--dry-run]`: deletes the certificates and keys of
 * generations that are superseded and expired beyond the grace period; never the active one,
 * never a key a pending request or another generation still needs. */
#include <string.h>

#include "common.h"
#include "help_prune.h"
#include "lifecycle.h"

int cmd_prune(int argc, char **argv)
{
    static const struct option opts[] = {{"dry-run", no_argument, NULL, 'n'},
                                         {"grace", required_argument, NULL, 'g'},
                                         LC_OPTIONS,
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    int opt, code = EXIT_OK, h, failed = 0;
    long long grace = -1;
    size_t i, n, total = 0;

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    l.c = &c;
    l.wait_seconds = 60;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "prune", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
            continue;
        switch (opt) {
        case 'n':
            l.dry_run = 1;
            break;
        case 'g':
            grace = tc_parse_duration(optarg);
            if (grace < 0)
                return cli_usage_error("prune", "--grace: '%s' is not a duration like 30d", optarg);
            break;
        case 'h':
            cli_print_help(help_prune);
            return EXIT_OK;
        default:
            return cli_usage_error("prune", "invalid option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("prune", "at most one credential name");
    code = lc_open(&l, 0, !l.dry_run);
    if (code != EXIT_OK)
        goto out;
    if (!tokencert_engine_has_store(l.e)) {
        printf("nothing to prune: no state store yet\n");
        goto out;
    }
    if (grace < 0)
        grace = l.cfg->grace;
    if (argc - optind == 1 && lc_find(&l, argv[optind], &i) != EXIT_OK) {
        code = EXIT_NOT_FOUND;
        goto out;
    }
    for (i = 0; i < lc_count(&l); i++) {
        if (argc - optind == 1 && strcmp(lc_cred_at(&l, i)->name, argv[optind]) != 0)
            continue;
        n = 0;
        if (tokencert_engine_prune(l.e, i, grace, &n) != TC_OK)
            failed++;
        total += n;
    }
    if (total == 0)
        printf("nothing to prune\n");
    code = failed ? EXIT_ERROR : EXIT_OK;
out:
    lc_close(&l);
    return code;
}
