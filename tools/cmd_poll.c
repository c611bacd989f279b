/* cmd_poll.c — `tokencert poll [NAME]`: asks the CA about every pending request and installs what
 * was issued. */
#include <string.h>

#include "help_poll.h"
#include "lifecycle.h"

int cmd_poll(int argc, char **argv)
{
    static const struct option opts[] = {LC_OPTIONS, CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    int opt, code, worst = EXIT_OK, h, n_pending = 0;
    size_t i;
    tokencert_outcome result;

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    l.c = &c;
    l.wait_seconds = 60;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "poll", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
            continue;
        if (opt == 'h') {
            cli_print_help(help_poll);
            return EXIT_OK;
        }
        return cli_usage_error("poll", "invalid option");
    }
    if (argc - optind > 1)
        return cli_usage_error("poll", "at most one credential name");
    code = lc_open(&l, 1, 1);
    if (code != EXIT_OK)
        goto out;
    for (i = 0; i < lc_count(&l); i++) {
        if (argc - optind == 1 && strcmp(lc_cred_at(&l, i)->name, argv[optind]) != 0)
            continue;
        code = cli_exit_code(tokencert_engine_poll(l.e, i, &result));
        if (result != TOKENCERT_OUTCOME_NOTHING_PENDING)
            n_pending++;
        worst = lc_summary(worst, code);
    }
    if (argc - optind == 1 && lc_find(&l, argv[optind], &i) != EXIT_OK) {
        code = EXIT_NOT_FOUND;
        goto out;
    }
    if (n_pending == 0)
        printf("nothing pending\n");
    code = worst;
out:
    lc_close(&l);
    return code;
}
