/* cli.c — shared CLI plumbing: common options, the error -> exit code map, context setup. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#include <openssl/pem.h>

int cli_common_option(cli_common *c, int opt, const char *arg)
{
    switch (opt) {
    case 1001:
        c->module = arg;
        return 1;
    case 1002:
        c->pin_source = arg;
        return 1;
    case 1003:
        c->login = 1;
        return 1;
    case 1004:
        c->allow_final_try = 1;
        return 1;
    case 1005:
        (void)arg;
        fprintf(stderr, "tokencert: a PIN is never taken from the command line (it would show in "
                        "the process list and the shell history): use --pin-source "
                        "file:PATH|env:VAR|fd:N, or enter it when asked\n");
        exit(EXIT_USAGE);
    case 1006:
        fprintf(stderr, "tokencert: a password is never taken from the command line: use "
                        "--password-source file:PATH|env:VAR|fd:N, or enter it when asked\n");
        exit(EXIT_USAGE);
    default:
        return 0;
    }
}

int cli_exit_code(tokencert_err err)
{
    switch (err) {
    case TC_OK:
        return EXIT_OK;
    case TC_ERR_INVALID_ARG:
    case TC_ERR_URI:
        return EXIT_USAGE;
    case TC_ERR_MODULE:
        return EXIT_MODULE;
    case TC_ERR_NOT_FOUND:
        return EXIT_NOT_FOUND;
    case TC_ERR_TOKEN_ABSENT:
        return EXIT_TOKEN_ABSENT;
    case TC_ERR_PIN_INCORRECT:
        return EXIT_PIN_INCORRECT;
    case TC_ERR_PIN_SOURCE:
        return EXIT_PIN_SOURCE;
    case TC_ERR_PIN_LOCKED:
    case TC_ERR_PIN_FINAL_TRY:
        return EXIT_PIN_LOCKED;
    case TC_ERR_BAD_DATA:
    case TC_ERR_VERIFY:
        return EXIT_BAD_INPUT;
    case TC_ERR_PENDING:
        return EXIT_PENDING;
    case TC_ERR_REJECTED:
        return EXIT_REJECTED;
    case TC_ERR_IO:
        return EXIT_IO;
    case TC_ERR_INTERNAL:
    case TC_ERR_NOMEM:
    case TC_ERR_PKCS11:
    case TC_ERR_NOT_SUPPORTED:
    case TC_ERR_CANCELLED:
    case TC_ERR_CA:
        return EXIT_ERROR;
    }
    return EXIT_ERROR;
}

int cli_fail(tokencert_ctx *ctx, tokencert_err err, const char *what)
{
    const char *detail = tokencert_ctx_error(ctx);
    cli_print_warnings(ctx);
    if (detail[0] != '\0')
        fprintf(stderr, "tokencert: %s: %s\n", what, detail);
    else
        fprintf(stderr, "tokencert: %s: %s\n", what, tokencert_strerror(err));
    return cli_exit_code(err);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tokencert %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'tokencert %s --help'.\n", cmd);
    return EXIT_USAGE;
}

void cli_print_warnings(tokencert_ctx *ctx)
{
    size_t i, n = tokencert_ctx_warning_count(ctx);
    for (i = 0; i < n; i++)
        fprintf(stderr, "tokencert: warning: %s\n", tokencert_ctx_warning(ctx, i));
}

void cli_print_help(const char *text)
{
    fputs(text, stdout);
}

static void print_notice(void *data, const char *message)
{
    (void)data;
    fprintf(stderr, "tokencert: %s\n", message);
}

int cli_new_ctx(tokencert_ctx **ctx)
{
    tokencert_err err = tokencert_ctx_new(ctx);
    if (err != TC_OK) {
        fprintf(stderr, "tokencert: %s\n", tokencert_strerror(err));
        return EXIT_ERROR;
    }
    tokencert_ctx_set_notice(*ctx, print_notice, NULL);
    return EXIT_OK;
}

int cli_open(const cli_common *c, tokencert_ctx **ctx)
{
    tokencert_err err;
    int code = cli_new_ctx(ctx);
    if (code != EXIT_OK)
        return code;
    err = tokencert_load_modules(*ctx, c->module);
    if (err != TC_OK) {
        code = cli_fail(*ctx, err, "loading modules");
        tokencert_ctx_free(*ctx);
        *ctx = NULL;
        return code;
    }
    return EXIT_OK;
}

void cli_login_opts(const cli_common *c, tokencert_login_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->pin_source = c->pin_source;
    opts->login = c->login;
    opts->allow_final_try = c->allow_final_try;
    opts->interactive = isatty(STDIN_FILENO);
}

int cli_stdout_is_tty(void)
{
    return isatty(STDOUT_FILENO);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cli_output_write(const char *cmd, const char *path, const unsigned char *data, size_t len,
                     unsigned mode)
{
    char *tmp = NULL;
    int fd = -1, code = EXIT_IO, created = 0, e;

    if (path == NULL || strcmp(path, "-") == 0) {
        if (write_all(STDOUT_FILENO, data, len) != 0) {
            fprintf(stderr, "tokencert %s: cannot write to standard output: %s\n", cmd,
                    strerror(errno));
            return EXIT_IO;
        }
        return EXIT_OK;
    }
    /* Readers of path see the old file or the whole new one, never a part. */
    tmp = tc_asprintf("%s.%ld.tmp", path, (long)getpid());
    if (tmp == NULL)
        return EXIT_ERROR;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    created = fd >= 0;
    if (fd < 0 || fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 ||
        fsync(fd) != 0) {
        e = errno;
        fprintf(stderr, "tokencert %s: cannot write '%s': %s\n", cmd, tmp, strerror(e));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "tokencert %s: cannot write '%s': %s\n", cmd, tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "tokencert %s: cannot write '%s': %s\n", cmd, path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    code = EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL && created)
        unlink(tmp);
    free(tmp);
    return code;
}

char *cli_pem_encode(const char *label, const unsigned char *der, size_t len, size_t *out_len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n;

    if (bio != NULL && len <= INT_MAX && PEM_write_bio(bio, label, "", der, (long)len) > 0 &&
        (n = BIO_get_mem_data(bio, &data)) > 0 && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *out_len = (size_t)n;
    }
    BIO_free(bio);
    return out;
}

/* "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS" or the same with a final Z; always UTC. */
int cli_parse_utc(const char *s, time_t *out)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    size_t len = strlen(s);

    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return -1;
    if ((size_t)n != len) {
        int m = 0;
        if (sscanf(s + n, "T%2d:%2d:%2d%n", &h, &mi, &sec, &m) != 3)
            return -1;
        n += m;
        if (s[n] == 'Z')
            n++;
        if ((size_t)n != len)
            return -1;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return *out > 0 ? 0 : -1;
}
