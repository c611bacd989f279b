/* tokencert-ca-sign.c — the embedded CA's signer, run by the library (spawn.c), never by users:
 *
 *   tokencert-ca-sign approve DIR ID
 *   tokencert-ca-sign init DIR SUBJECT KEY_TYPE auto|manual VALIDITY ISSUE_VALIDITY
 *                          TOKEN_URI|- MODULE|- PIN_SOURCE|-
 *
 * It is the one program that loads the CA's token module: the library starts it with the CA's
 * SOFTHSM2_CONF in its environment when the CA has a SoftHSM token of its own. Everything else it
 * reads from DIR (ca.db, ca.pem); a PIN comes from the PIN source recorded there, never from argv.
 * Exit status: 0, or the tokencert_err it failed with and one line on stderr saying why. */
#include "ca/ca.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "tokencert-ca-sign is run by libtokencert: approve DIR ID | init DIR ...\n");
    return TC_ERR_INVALID_ARG;
}

static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' ? 0 : -1;
}

static const char *opt(const char *s)
{
    return strcmp(s, "-") == 0 ? NULL : s;
}

int main(int argc, char **argv)
{
    tokencert_ctx *ctx = NULL;
    tokencert_err err;
    tokencert_ca_params p;
    long long id = 0;

    memset(&p, 0, sizeof p);
    if (argc < 3 || argv[2][0] != '/')
        return usage();
    if (strcmp(argv[1], "approve") == 0 && argc == 4) {
        if (parse_ll(argv[3], &id) != 0)
            return usage();
    } else if (strcmp(argv[1], "init") == 0 && argc == 11) {
        p.dir = argv[2];
        p.subject = argv[3];
        p.key_type = argv[4];
        p.manual_approval = strcmp(argv[5], "manual") == 0;
        if (parse_ll(argv[6], &p.validity) != 0 || parse_ll(argv[7], &p.issue_validity) != 0)
            return usage();
        p.token_uri = opt(argv[8]);
        p.module = opt(argv[9]);
        p.pin_source = opt(argv[10]);
    } else {
        return usage();
    }
    err = tokencert_ctx_new(&ctx);
    if (err != TC_OK) {
        fprintf(stderr, "%s\n", tokencert_strerror(err));
        return (int)err;
    }
    if (strcmp(argv[1], "approve") == 0)
        err = tc_ca_approve_signer(ctx, argv[2], id);
    else
        err = tc_ca_init_signer(ctx, argv[2], &p);
    if (err != TC_OK)
        fprintf(stderr, "%s\n",
                tokencert_ctx_error(ctx)[0] != '\0' ? tokencert_ctx_error(ctx)
                                                    : tokencert_strerror(err));
    tokencert_ctx_free(ctx);
    return (int)err;
}
