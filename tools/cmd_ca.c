/* cmd_ca.c — tokencert ca (placeholder until implemented). */
#include "cli.h"

int cmd_ca(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tokencert ca: not implemented yet\n");
    return EXIT_ERROR;
}
