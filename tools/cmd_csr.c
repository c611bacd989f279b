/* cmd_csr.c — tokencert csr (placeholder until implemented). */
#include "cli.h"

int cmd_csr(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tokencert csr: not implemented yet\n");
    return EXIT_ERROR;
}
