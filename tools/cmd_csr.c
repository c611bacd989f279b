/* cmd_csr.c — `tokencert csr`: a PKCS#10 request for a key on the token, signed by the token.
 * The challenge password comes from a secret source, never from the command line. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "help_csr.h"

#define SAN_ARGS_MAX 256

int cmd_csr(int argc, char **argv)
{
    static const struct option opts[] = {{"subject", required_argument, NULL, 's'},
                                         {"san", required_argument, NULL, 'a'},
                                         {"challenge-source", required_argument, NULL, 'c'},
                                         /* Listed to be refused: otherwise getopt_long would
                                          * take it as an abbreviation of --challenge-source and
                                          * the secret as the name of a source. */
                                         {"challenge", required_argument, NULL, 'C'},
                                         {"digest", required_argument, NULL, 'd'},
                                         {"der", no_argument, NULL, 'D'},
                                         {"output", required_argument, NULL, 'o'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_token *t = NULL;
    tokencert_login_opts lo;
    tokencert_csr_params p;
    tokencert_err err;
    const char *sans[SAN_ARGS_MAX];
    const char *challenge_source = NULL, *output = NULL, *key_uri;
    char *challenge = NULL;
    unsigned char *der = NULL, *pem = NULL;
    size_t der_len = 0, pem_len = 0;
    int opt, der_out = 0, code = EXIT_ERROR;

    memset(&c, 0, sizeof c);
    memset(&p, 0, sizeof p);
    p.san = sans;
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 's':
            p.subject = optarg;
            break;
        case 'a':
            if (p.n_san == SAN_ARGS_MAX)
                return cli_usage_error("csr", "at most %d --san options", SAN_ARGS_MAX);
            sans[p.n_san++] = optarg;
            break;
        case 'c':
            challenge_source = optarg;
            break;
        case 'C':
            return cli_usage_error("csr", "a challenge password is never taken from the command "
                                          "line: use --challenge-source file:PATH|env:VAR|fd:N");
        case 'd':
            p.digest = optarg;
            break;
        case 'D':
            der_out = 1;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            cli_print_help(help_csr);
            return EXIT_OK;
        default:
            return cli_usage_error("csr", "invalid option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("csr",
                               "exactly one KEY-URI expected (e.g. 'pkcs11:token=T;id=%%01')");
    key_uri = argv[optind];
    if (p.subject == NULL)
        return cli_usage_error("csr", "--subject is required (e.g. --subject 'CN=name,O=org')");
    if (der_out && output == NULL && cli_stdout_is_tty())
        return cli_usage_error("csr", "refusing to write DER to a terminal: use -o FILE");

    code = cli_open(&c, &ctx);
    if (code != EXIT_OK)
        return code;
    /* Checked before the token is opened: a bad subject or SAN costs no PIN entry. */
    err = tokencert_csr_check(ctx, &p);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "the request");
        goto out;
    }
    /* Read before the token is opened: a bad source costs no login. */
    if (challenge_source != NULL) {
        err =
            tokencert_secret_read(ctx, challenge_source, 0, NULL, "challenge password", &challenge);
        if (err != TC_OK) {
            code = cli_fail(ctx, err, "reading the challenge password");
            goto out;
        }
        p.challenge = challenge;
    }
    cli_login_opts(&c, &lo);
    lo.login = 1;
    err = tokencert_token_open(ctx, key_uri, &lo, TOKENCERT_OPEN_LOGIN, &t);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "opening the token");
        goto out;
    }
    err = tokencert_csr(t, key_uri, &p, &der, &der_len);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "making the request");
        goto out;
    }
    if (!der_out && (pem = (unsigned char *)cli_pem_encode("CERTIFICATE REQUEST", der, der_len,
                                                           &pem_len)) == NULL) {
        fprintf(stderr, "tokencert csr: cannot encode PEM\n");
        code = EXIT_ERROR;
        goto out;
    }
    code = der_out ? cli_output_write("csr", output, der, der_len, 0644)
                   : cli_output_write("csr", output, pem, pem_len, 0644);
    if (code == EXIT_OK)
        cli_print_warnings(ctx);
out:
    /* The request carries the challenge password. */
    if (der != NULL)
        tc_memzero(der, der_len);
    if (pem != NULL)
        tc_memzero(pem, pem_len);
    free(der);
    free(pem);
    tokencert_secret_free(challenge);
    tokencert_token_close(t);
    tokencert_ctx_free(ctx);
    return code;
}
