/* cmd_status.c — placeholder, being written. */
#include "cli.h"
#include "help_status.h"

int cmd_status(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_print_help(help_status);
    return EXIT_ERROR;
}
