/* cli.h — what the subcommands of the tokencert CLI share: the common options, exit codes derived
 * from the library's errors in one place, and output helpers. Public library API only. */
#ifndef TOKENCERT_TOOLS_CLI_H
#define TOKENCERT_TOOLS_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "tokencert.h"

/* Documented exit codes (docs/man/tokencert.1.md). Never renumber. */
enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_MODULE = 3,
    EXIT_NOT_FOUND = 4,
    EXIT_TOKEN_ABSENT = 5,
    EXIT_PIN_INCORRECT = 6,
    EXIT_PIN_LOCKED = 7,
    EXIT_PENDING = 8,
    EXIT_BAD_INPUT = 9,
    EXIT_IO = 10,
    EXIT_PIN_SOURCE = 11,
    EXIT_REJECTED = 12
};

/* Options every subcommand takes. */
typedef struct {
    const char *module;
    const char *pin_source;
    int login;
    int allow_final_try;
    int json;
} cli_common;

/* getopt_long entries for the common options; ids above 1000 are reserved for them. */
#define CLI_COMMON_OPTIONS                                                                         \
    {"module", required_argument, NULL, 1001}, {"pin-source", required_argument, NULL, 1002},      \
        {"login", no_argument, NULL, 1003}, {"allow-final-try", no_argument, NULL, 1004},          \
        {"pin", required_argument, NULL, 1005}, {"pin-value", required_argument, NULL, 1005},      \
        {"password", required_argument, NULL, 1006},                                               \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* Handles a common option; returns 1 when handled, 0 when not one of them. --pin, --pin-value and
 * --password are listed so that getopt does not take them as abbreviations of --pin-source or
 * --password-source (and echo a secret back in an error): given, they end the process with a
 * usage error that does not repeat them. */
int cli_common_option(cli_common *c, int opt, const char *arg);

int cli_exit_code(tokencert_err err);
/* Prints "tokencert: <what>: <detail>" and returns the exit code for err. */
int cli_fail(tokencert_ctx *ctx, tokencert_err err, const char *what);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_print_warnings(tokencert_ctx *ctx);
void cli_print_help(const char *text);

/* Creates a context whose notices go to stderr; on failure prints and returns the exit code. */
int cli_new_ctx(tokencert_ctx **ctx);
/* Creates a context and loads the modules; on failure prints and returns the exit code (>0). */
int cli_open(const cli_common *c, tokencert_ctx **ctx);
void cli_login_opts(const cli_common *c, tokencert_login_opts *opts);

/* A UTC time given as "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS" or with a final Z; -1 when malformed. */
int cli_parse_utc(const char *s, time_t *out);

/* Output helpers. */
int cli_stdout_is_tty(void);
/* Writes data to path atomically (a temporary file in the same directory, then renamed) with the
 * given mode, or to stdout when path is NULL or "-". Prints the error and returns EXIT_IO on
 * failure, else EXIT_OK. */
/* PEM text ("-----BEGIN label-----", base64 in 64-column lines) of der; NULL when out of memory.
 * *out_len excludes the terminating NUL. */
char *cli_pem_encode(const char *label, const unsigned char *der, size_t len, size_t *out_len);
int cli_output_write(const char *cmd, const char *path, const unsigned char *data, size_t len,
                     unsigned mode);

int cmd_tokens(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_csr(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_enroll(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cmd_poll(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_history(int argc, char **argv);

#endif /* TOKENCERT_TOOLS_CLI_H */
