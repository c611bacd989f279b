/* cmd_history.c — placeholder, being written. */
#include "cli.h"
#include "help_history.h"

int cmd_history(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_print_help(help_history);
    return EXIT_ERROR;
}
