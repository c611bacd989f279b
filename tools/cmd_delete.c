/* cmd_delete.c — tokencert delete (placeholder until implemented). */
#include "cli.h"

int cmd_delete(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tokencert delete: not implemented yet\n");
    return EXIT_ERROR;
}
