/* cmd_prune.c — placeholder, being written. */
#include "cli.h"
#include "help_prune.h"

int cmd_prune(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_print_help(help_prune);
    return EXIT_ERROR;
}
