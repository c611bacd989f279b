/* cmd_export.c — `tokencert export`: one certificate or public key from the token, PEM or DER.
 * Private keys are refused: they never leave the token. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "help_export.h"

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"der", no_argument, NULL, 'D'},
                                         {"output", required_argument, NULL, 'o'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_token *t = NULL;
    tokencert_login_opts lo;
    tokencert_err err;
    const char *output = NULL, *uri;
    unsigned char *data = NULL;
    size_t len = 0;
    int opt, der = 0, code;

    memset(&c, 0, sizeof c);
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'D':
            der = 1;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            cli_print_help(help_export);
            return EXIT_OK;
        default:
            return cli_usage_error("export", "invalid option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("export",
                               "exactly one OBJECT-URI expected (e.g. 'pkcs11:token=T;id=%%01;"
                               "type=cert')");
    uri = argv[optind];
    if (der && output == NULL && cli_stdout_is_tty())
        return cli_usage_error("export", "refusing to write DER to a terminal: use -o FILE");

    code = cli_open(&c, &ctx);
    if (code != EXIT_OK)
        return code;
    cli_login_opts(&c, &lo);
    /* Certificates and public keys are public objects: log in only when asked to (tokens that
     * hide them until login). */
    err = tokencert_token_open(ctx, uri, &lo,
                               c.login || c.pin_source != NULL ? TOKENCERT_OPEN_LOGIN : 0, &t);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "opening the token");
        goto out;
    }
    err = tokencert_export(t, uri, !der, &data, &len);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "export");
        goto out;
    }
    code = cli_output_write("export", output, data, len, 0644);
    if (code == EXIT_OK)
        cli_print_warnings(ctx);
out:
    free(data);
    tokencert_token_close(t);
    tokencert_ctx_free(ctx);
    return code;
}
