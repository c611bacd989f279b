/* cmd_keygen.c — tokencert keygen (placeholder until implemented). */
#include "cli.h"

int cmd_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tokencert keygen: not implemented yet\n");
    return EXIT_ERROR;
}
