/* cmd_status.c — `tokencert status [NAME] [--json]`: per credential the active certificate and
 * days left, when renewal is due, the request in progress, the last error and the next action. */
#include <string.h>

#include "help_status.h"
#include "lifecycle.h"

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, LC_OPTIONS, CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    int opt, code = EXIT_OK, h, json = 0, rc;
    size_t i, shown = 0;
    json_object *arr = NULL;

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    l.c = &c;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "status", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
            continue;
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help(help_status);
            return EXIT_OK;
        default:
            return cli_usage_error("status", "invalid option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("status", "at most one credential name");
    l.snapshot = 1;
    code = lc_open(&l, 0, 0);
    if (code != EXIT_OK)
        goto out;
    if (argc - optind == 1 && lc_find(&l, argv[optind]) == NULL) {
        code = EXIT_NOT_FOUND;
        goto out;
    }
    if (json)
        arr = json_object_new_array();
    for (i = 0; i < l.n_creds; i++) {
        if (argc - optind == 1 && strcmp(l.creds[i].name, argv[optind]) != 0)
            continue;
        if (!json && shown > 0)
            printf("\n");
        rc = lc_status(&l, &l.creds[i], arr);
        if (rc != EXIT_OK)
            code = rc;
        shown++;
    }
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    } else if (shown == 0) {
        printf("no credentials: none is configured and none was enrolled\n");
    }
out:
    lc_close(&l);
    return code;
}
