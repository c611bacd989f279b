/* cmd_history.c — `tokencert history [NAME] [--json]`: the append-only record of what happened,
 * when, and with what result. Never a secret. */
#include <string.h>

#include "common.h"
#include "help_history.h"
#include "lifecycle.h"

int cmd_history(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, LC_OPTIONS, CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    int opt, code = EXIT_OK, h, json = 0;
    size_t i, n = 0;
    tokencert_state_event *ev = NULL;
    const char *name;
    char when[32];

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    l.c = &c;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "history", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
            continue;
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help(help_history);
            return EXIT_OK;
        default:
            return cli_usage_error("history", "invalid option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("history", "at most one credential name");
    name = argc - optind == 1 ? argv[optind] : NULL;
    code = lc_open(&l, 0, 0);
    if (code != EXIT_OK)
        goto out;
    if (name != NULL && lc_find(&l, name) == NULL) {
        code = EXIT_NOT_FOUND;
        goto out;
    }
    if (l.st != NULL && tokencert_state_history(l.st, name, &ev, &n) != TC_OK) {
        code = cli_fail(l.ctx, TC_ERR_IO, "reading the history");
        goto out;
    }
    if (json) {
        json_object *arr = json_object_new_array();
        for (i = 0; i < n; i++) {
            json_object *o = json_object_new_object();
            tc_time_iso(ev[i].time, when, sizeof when);
            json_object_object_add(o, "time", json_object_new_string(when));
            json_object_object_add(o, "credential",
                                   ev[i].credential ? json_object_new_string(ev[i].credential)
                                                    : NULL);
            json_object_object_add(o, "event", json_object_new_string(ev[i].event));
            json_object_object_add(o, "result", json_object_new_string(ev[i].result));
            json_object_object_add(o, "detail",
                                   ev[i].detail ? json_object_new_string(ev[i].detail) : NULL);
            json_object_array_add(arr, o);
        }
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    } else if (n == 0) {
        printf("no history yet\n");
    } else {
        for (i = 0; i < n; i++) {
            tc_time_iso(ev[i].time, when, sizeof when);
            printf("%s  %-12s %-16s %-8s %s\n", when, ev[i].credential ? ev[i].credential : "-",
                   ev[i].event, ev[i].result, ev[i].detail ? ev[i].detail : "");
        }
    }
out:
    tokencert_state_history_free(ev, n);
    lc_close(&l);
    return code;
}
