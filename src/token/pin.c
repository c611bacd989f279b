/* pin.c — PIN sources: file:PATH, env:VAR, fd:N, and a no-echo prompt on the terminal. Every buffer
 * that held a PIN is wiped before it is freed; no PIN ever reaches an error message. */
#include "token/token.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PIN_MAX 256

/* Reads at most PIN_MAX bytes up to the first newline or EOF into a wiped-on-free string. An empty
 * PIN is an unusable source, except at the prompt, where it means the user cancelled. A NUL byte
 * is refused: the PIN would be cut there and a wrong one cost a try. is_file: what is a path. */
static tokencert_err read_pin_fd(tokencert_ctx *ctx, int fd, const char *what, int prompt,
                                 int is_file, char **pin_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char buf[PIN_MAX + 2];
    size_t len = 0;

    while (len < sizeof buf - 1) {
        ssize_t r = read(fd, buf + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ret = tc_error(ctx, TC_ERR_PIN_SOURCE, "cannot read the PIN from %s: %s", what,
                           strerror(errno));
            goto out;
        }
        if (r == 0 || buf[len] == '\n')
            break;
        if (buf[len] == '\0') {
            ret = is_file ? tc_error(ctx, TC_ERR_PIN_SOURCE,
                                     "the PIN file '%s' contains a NUL byte; refusing it", what)
                          : tc_error(ctx, TC_ERR_PIN_SOURCE,
                                     "the PIN from %s contains a NUL byte; refusing it", what);
            goto out;
        }
        len++;
    }
    if (len > PIN_MAX) {
        ret = tc_error(ctx, TC_ERR_PIN_SOURCE, "the PIN from %s is longer than %d bytes", what,
                       PIN_MAX);
        goto out;
    }
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len == 0) {
        ret = prompt ? tc_error(ctx, TC_ERR_CANCELLED, "no PIN entered")
                     : tc_error(ctx, TC_ERR_PIN_SOURCE, "the PIN from %s is empty", what);
        goto out;
    }
    buf[len] = '\0';
    *pin_out = tc_strndup(buf, len);
    ret = *pin_out == NULL ? TC_ERR_NOMEM : TC_OK;
out:
    tc_memzero(buf, sizeof buf);
    return ret;
}

static tokencert_err pin_from_file(tokencert_ctx *ctx, const char *path, char **pin_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    struct stat st;
    int fd;

    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return tc_error(ctx, TC_ERR_PIN_SOURCE, "cannot open PIN file '%s': %s", path,
                        strerror(errno));
    if (fstat(fd, &st) != 0) {
        ret = tc_error(ctx, TC_ERR_PIN_SOURCE, "cannot stat PIN file '%s': %s", path,
                       strerror(errno));
        goto out;
    }
    /* A FIFO, a device or a socket could block for ever or hand out anything: a PIN is kept in a
     * file (fd:N is there for pipes). */
    if (!S_ISREG(st.st_mode)) {
        ret = tc_error(ctx, TC_ERR_PIN_SOURCE,
                       "PIN file '%s' is not a regular file; refusing it (use fd:N for a pipe)",
                       path);
        goto out;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        ret = tc_error(ctx, TC_ERR_PIN_SOURCE,
                       "PIN file '%s' can be written by others (mode %04o); refusing it: chmod 600",
                       path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_mode & S_IROTH) {
        ret = tc_error(ctx, TC_ERR_PIN_SOURCE,
                       "PIN file '%s' is readable by everyone (mode %04o); refusing it: chmod 600",
                       path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    ret = read_pin_fd(ctx, fd, path, 0, 1, pin_out);
out:
    close(fd);
    return ret;
}

tokencert_err tc_pin_from_source(tokencert_ctx *ctx, const char *source, char **pin_out)
{
    *pin_out = NULL;
    if (strncmp(source, "file:", 5) == 0) {
        const char *path = source + 5;
        /* RFC 7512 pin-source values are URIs: accept file:///abs/path as well as file:PATH. */
        if (strncmp(path, "//", 2) == 0)
            path += 2;
        return pin_from_file(ctx, path, pin_out);
    }
    if (strncmp(source, "env:", 4) == 0) {
        const char *v = getenv(source + 4);
        if (source[4] == '\0')
            return tc_error(ctx, TC_ERR_PIN_SOURCE, "pin source 'env:' names no variable");
        if (v == NULL || *v == '\0')
            return tc_error(ctx, TC_ERR_PIN_SOURCE,
                            "PIN environment variable '%s' is not set or empty", source + 4);
        if (strlen(v) > PIN_MAX)
            return tc_error(ctx, TC_ERR_PIN_SOURCE, "the PIN in '%s' is longer than %d bytes",
                            source + 4, PIN_MAX);
        *pin_out = tc_strdup(v);
        return *pin_out == NULL ? TC_ERR_NOMEM : TC_OK;
    }
    if (strncmp(source, "fd:", 3) == 0) {
        char *end = NULL;
        long fd;
        errno = 0;
        fd = strtol(source + 3, &end, 10);
        if (errno != 0 || end == source + 3 || *end != '\0' || fd < 0 || fd > INT_MAX)
            return tc_error(ctx, TC_ERR_PIN_SOURCE, "pin source '%s': not a file descriptor",
                            source);
        return read_pin_fd(ctx, (int)fd, source, 0, 0, pin_out);
    }
    if (source[0] == '/')
        return pin_from_file(ctx, source, pin_out);
    /* Not echoed: a PIN typed where its source belongs would end up in the message. */
    return tc_error(ctx, TC_ERR_PIN_SOURCE,
                    "unknown pin source (not shown, in case it is a PIN): use file:PATH, env:VAR "
                    "or fd:N");
}

tokencert_err tc_pin_prompt(tokencert_ctx *ctx, const char *prompt, char **pin_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    struct termios old, noecho;
    int fd, restore = 0;

    *pin_out = NULL;
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return tc_error(ctx, TC_ERR_PIN_SOURCE,
                        "a PIN is needed but there is no terminal to ask on: use --pin-source");
    if (tcgetattr(fd, &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        noecho.c_lflag |= ICANON;
        if (tcsetattr(fd, TCSAFLUSH, &noecho) == 0)
            restore = 1;
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        ret = tc_error(ctx, TC_ERR_PIN_SOURCE, "cannot write to the terminal: %s", strerror(errno));
        goto out;
    }
    ret = read_pin_fd(ctx, fd, "the terminal", 1, 0, pin_out);
out:
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* Nothing to do: the newline is cosmetic. */
    }
    close(fd);
    return ret;
}
