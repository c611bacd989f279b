/* cmd_import.c — tokencert import (placeholder until implemented). */
#include "cli.h"

int cmd_import(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tokencert import: not implemented yet\n");
    return EXIT_ERROR;
}
