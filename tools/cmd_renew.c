/* cmd_renew.c — placeholder, being written. */
#include "cli.h"
#include "help_renew.h"

int cmd_renew(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_print_help(help_renew);
    return EXIT_ERROR;
}
