/* main.c — the tokencert command: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "help_tokencert.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"tokens", cmd_tokens},   {"list", cmd_list},     {"check", cmd_check},
    {"keygen", cmd_keygen},   {"csr", cmd_csr},       {"import", cmd_import},
    {"export", cmd_export},   {"delete", cmd_delete}, {"ca", cmd_ca},
    {"enroll", cmd_enroll},   {"config", cmd_config}, {"status", cmd_status},
    {"renew", cmd_renew},     {"poll", cmd_poll},     {"prune", cmd_prune},
    {"history", cmd_history},
};

int main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        fputs(help_tokencert, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        cli_print_help(help_tokencert);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tokencert %s\n", tokencert_version());
        return EXIT_OK;
    }
    if (tc_clock_error() != NULL) {
        fprintf(stderr, "tokencert: %s\n", tc_clock_error());
        return EXIT_USAGE;
    }
    if (tc_clock_overridden()) {
        char now[32];
        tc_time_iso(tc_now(), now, sizeof now);
        fprintf(stderr, "tokencert: test clock in use: now is %s (TOKENCERT_TEST_NOW)\n", now);
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tokencert: unknown command '%s'\nTry 'tokencert --help'.\n", argv[1]);
    return EXIT_USAGE;
}
