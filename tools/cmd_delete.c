/* cmd_delete.c — `tokencert delete`: destroys the objects a URI selects, after showing them and
 * asking on the terminal (or with --yes). Never deletes without one or the other. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "help_delete.h"

static void print_objects(FILE *f, const char *prefix, const tokencert_object_desc *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        fprintf(f, "%s%-12s %-24s id %s\n", prefix, v[i].kind,
                v[i].label[0] ? v[i].label : "(no label)", v[i].id[0] ? v[i].id : "(none)");
}

/* Asks on the controlling terminal: 1 yes, 0 no, -1 no terminal. */
static int confirm(size_t n)
{
    char answer[16];
    char prompt[64];
    ssize_t r;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    snprintf(prompt, sizeof prompt, "Delete %zu object%s? [y/N] ", n, n == 1 ? "" : "s");
    if (write(fd, prompt, strlen(prompt)) < 0) {
        close(fd);
        return -1;
    }
    do
        r = read(fd, answer, sizeof answer - 1);
    while (r < 0 && errno == EINTR);
    close(fd);
    if (r <= 0)
        return 0;
    answer[r] = '\0';
    answer[strcspn(answer, "\r\n")] = '\0';
    return strcmp(answer, "y") == 0 || strcmp(answer, "Y") == 0 || strcmp(answer, "yes") == 0;
}

int cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"yes", no_argument, NULL, 'y'}, CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_token *t = NULL;
    tokencert_login_opts lo;
    tokencert_err err;
    tokencert_object_desc *v = NULL;
    size_t n = 0, deleted = 0;
    const char *uri;
    int opt, yes = 0, code, answer;

    memset(&c, 0, sizeof c);
    while ((opt = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'y':
            yes = 1;
            break;
        case 'h':
            cli_print_help(help_delete);
            return EXIT_OK;
        default:
            return cli_usage_error("delete", "invalid option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("delete", "exactly one OBJECT-URI expected (e.g. "
                                         "'pkcs11:token=T;id=%%01')");
    uri = argv[optind];

    code = cli_open(&c, &ctx);
    if (code != EXIT_OK)
        return code;
    cli_login_opts(&c, &lo);
    lo.login = 1;
    /* Logged in, so private keys are among what the URI selects, and shown before deletion. */
    err = tokencert_token_open(ctx, uri, &lo, TOKENCERT_OPEN_RW | TOKENCERT_OPEN_LOGIN, &t);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "opening the token");
        goto out;
    }
    err = tokencert_objects_find(t, uri, &v, &n);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "delete");
        goto out;
    }
    fprintf(stderr, "On token '%s', the URI selects:\n", tokencert_token_get_info(t)->label);
    print_objects(stderr, "  ", v, n);
    if (!yes) {
        answer = confirm(n);
        if (answer < 0) {
            fprintf(stderr, "tokencert delete: not on a terminal: nothing deleted; give --yes to "
                            "delete without asking\n");
            code = EXIT_USAGE;
            goto out;
        }
        if (answer == 0) {
            fprintf(stderr, "tokencert delete: nothing deleted\n");
            code = EXIT_ERROR;
            goto out;
        }
    }
    err = tokencert_delete(t, uri, &deleted);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "delete");
        goto out;
    }
    printf("Deleted %zu object%s:\n", deleted, deleted == 1 ? "" : "s");
    print_objects(stdout, "  ", v, n);
    cli_print_warnings(ctx);
    code = EXIT_OK;
out:
    tokencert_objects_free(v, n);
    tokencert_token_close(t);
    tokencert_ctx_free(ctx);
    return code;
}
