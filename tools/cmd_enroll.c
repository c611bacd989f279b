/* cmd_enroll.c — tokencert enroll (placeholder until implemented). */
#include "cli.h"

int cmd_enroll(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tokencert enroll: not implemented yet\n");
    return EXIT_ERROR;
}
