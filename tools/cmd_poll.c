/* cmd_poll.c — placeholder, being written. */
#include "cli.h"
#include "help_poll.h"

int cmd_poll(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_print_help(help_poll);
    return EXIT_ERROR;
}
