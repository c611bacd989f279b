/* tc-ca-approve.c — approves a request of the embedded CA from a process that has already loaded
 * the user's token module and opened the user's token, through the public API only: the CA signs
 * in its own helper process, so this works whatever SoftHSM configuration this process loaded, and
 * leaves this process's environment alone.
 *
 * Usage: tc-ca-approve MODULE TOKEN_URI CA_DIR REQUEST_ID
 * Prints "approved; SOFTHSM2_CONF unchanged" (or "changed") and exits 0, else names what failed. */
#include "tokencert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int main(int argc, char **argv)
{
    tokencert_ctx *ctx = NULL;
    tokencert_token *tok = NULL;
    tokencert_err err;
    char *before = NULL;
    const char *what = "creating a context";
    int ret = 1;

    if (argc != 5) {
        fprintf(stderr, "usage: tc-ca-approve MODULE TOKEN_URI CA_DIR REQUEST_ID\n");
        return 2;
    }
    if (getenv("SOFTHSM2_CONF") != NULL && (before = strdup(getenv("SOFTHSM2_CONF"))) == NULL)
        return 1;
    err = tokencert_ctx_new(&ctx);
    if (err != TC_OK)
        goto out;
    what = "loading the user's module";
    err = tokencert_load_modules(ctx, argv[1]);
    if (err != TC_OK)
        goto out;
    what = "opening the user's token";
    err = tokencert_token_open(ctx, argv[2], NULL, 0, &tok);
    if (err != TC_OK)
        goto out;
    what = "approve";
    err = tokencert_ca_approve(ctx, argv[3], strtoll(argv[4], NULL, 10), NULL);
    if (err != TC_OK)
        goto out;
    printf("approved; SOFTHSM2_CONF %s\n",
           same(before, getenv("SOFTHSM2_CONF")) ? "unchanged" : "changed");
    ret = 0;
out:
    if (ret != 0)
        fprintf(stderr, "tc-ca-approve: %s failed: %s: %s\n", what, tokencert_strerror(err),
                ctx != NULL ? tokencert_ctx_error(ctx) : "");
    tokencert_token_close(tok);
    tokencert_ctx_free(ctx);
    free(before);
    return ret;
}
