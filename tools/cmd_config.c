/* cmd_config.c — placeholder, being written. */
#include "cli.h"
#include "help_config.h"

int cmd_config(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_print_help(help_config);
    return EXIT_ERROR;
}
