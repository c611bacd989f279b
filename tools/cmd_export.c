/* cmd_export.c — tokencert export (placeholder until implemented). */
#include "cli.h"

int cmd_export(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tokencert export: not implemented yet\n");
    return EXIT_ERROR;
}
