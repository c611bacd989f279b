/* cmd_enroll.c — `tokencert enroll`: from an empty token to a working client certificate in one
 * command, with one login: key generated on the token, request signed by the token, submitted to
 * the embedded CA, issued, and the certificate (and the CA's) installed beside the key.
 *
 * The CA's own token is SoftHSM, which reads its configuration once per process; the user's token
 * may be SoftHSM too. So the CA's signing steps (`ca init`, `ca approve`) run in child processes
 * of their own: fork and exec of this very binary, never a shell. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "help_enroll.h"

extern char **environ;

#define MAX_SANS 64

/* Runs "tokencert ARGS..." as a child (/proc/self/exe), its standard output discarded (the
 * parent reports), its errors shown. Returns its exit code. */
static int run_self(const char *const *args)
{
    pid_t pid;
    int status = 0, devnull;

    fflush(stdout);
    fflush(stderr);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) {
        fprintf(stderr, "tokencert: cannot open /dev/null: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tokencert: cannot start a child process: %s\n", strerror(errno));
        close(devnull);
        return EXIT_ERROR;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        if (dup2(devnull, STDOUT_FILENO) < 0)
            _exit(127);
        execve("/proc/self/exe", (char *const *)args, environ);
        _exit(127);
    }
    close(devnull);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "tokencert: waiting for the child process: %s\n", strerror(errno));
            return EXIT_ERROR;
        }
    }
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) == 127)
            fprintf(stderr, "tokencert: cannot run /proc/self/exe for the CA step\n");
        return WEXITSTATUS(status);
    }
    fprintf(stderr, "tokencert: the CA step was killed by signal %d\n",
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return EXIT_ERROR;
}

/* Percent-encodes a value for a pkcs11: URI attribute (RFC 7512: unreserved characters kept). */
/* Removes the key pair made by this run when a later step fails before anything was recorded, so
 * that the token is left as it was found. */
static void remove_key(tokencert_token *t, const tokencert_keygen_result *kr)
{
    size_t n = 0;
    if (kr->uri != NULL)
        tokencert_delete(t, kr->uri, &n);
    if (kr->public_uri != NULL)
        tokencert_delete(t, kr->public_uri, &n);
}

static void print_installed(const tokencert_token_info *ti, const tokencert_keygen_result *kr,
                            const tokencert_ca_request *r, const char *dir)
{
    char na[32];

    tc_time_iso(r->not_after, na, sizeof na);
    printf("enrolled '%s' on token '%s'\n", kr->label, ti->label);
    printf("  key        %s, id %s\n", kr->type, kr->id);
    printf("  subject    %s\n", r->subject);
    printf("  serial     %s\n", r->serial != NULL ? r->serial : "-");
    printf("  not after  %s (%ld days)\n", na, tc_days_between(time(NULL), r->not_after));
    printf("  request    %lld at the local CA in %s\n", r->id, dir);
}

int cmd_enroll(int argc, char **argv)
{
    static const struct option opts[] = {{"label", required_argument, NULL, 'l'},
                                         {"subject", required_argument, NULL, 's'},
                                         {"type", required_argument, NULL, 't'},
                                         {"san", required_argument, NULL, 'S'},
                                         {"ca", required_argument, NULL, 'c'},
                                         {"ca-dir", required_argument, NULL, 'd'},
                                         {"not-before", required_argument, NULL, 'n'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_token *t = NULL;
    tokencert_login_opts lo;
    tokencert_keygen_result kr;
    tokencert_csr_params cp;
    tokencert_ca_request req, got;
    tokencert_import_item *items = NULL;
    tokencert_import_input in[2];
    tokencert_import_opts io;
    tokencert_err err;
    const char *label = NULL, *subject = NULL, *type = NULL, *sans[MAX_SANS];
    const char *uri, *ca = "local";
    char *dir = NULL, *db_path = NULL, *pem_path = NULL;
    char id_str[32];
    unsigned char *csr = NULL, *ca_der = NULL;
    size_t n_sans = 0, csr_len = 0, ca_der_len = 0, n_items = 0;
    time_t not_before = 0;
    int opt, code = EXIT_ERROR, auto_approve = 0;

    memset(&c, 0, sizeof c);
    memset(&kr, 0, sizeof kr);
    memset(&cp, 0, sizeof cp);
    memset(&req, 0, sizeof req);
    memset(&got, 0, sizeof got);
    memset(&io, 0, sizeof io);
    memset(in, 0, sizeof in);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'l':
            label = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'S':
            if (n_sans == MAX_SANS)
                return cli_usage_error("enroll", "at most %d --san options", MAX_SANS);
            sans[n_sans++] = optarg;
            break;
        case 'c':
            ca = optarg;
            break;
        case 'd':
            dir = strdup(optarg);
            if (dir == NULL)
                return EXIT_ERROR;
            break;
        case 'n':
            if (cli_parse_utc(optarg, &not_before) != 0) {
                free(dir);
                return cli_usage_error("enroll",
                                       "--not-before: '%s' is not a UTC date like "
                                       "2027-01-31T00:00:00Z",
                                       optarg);
            }
            break;
        case 'h':
            free(dir);
            cli_print_help(help_enroll);
            return EXIT_OK;
        default:
            free(dir);
            return cli_usage_error("enroll", "invalid option");
        }
    }
    if (argc - optind != 1) {
        free(dir);
        return cli_usage_error("enroll", "one TOKEN-URI expected");
    }
    uri = argv[optind];
    if (label == NULL || label[0] == '\0' || subject == NULL) {
        free(dir);
        return cli_usage_error("enroll", "--label NAME and --subject DN are required");
    }
    if (strcmp(ca, "local") != 0) {
        free(dir);
        return cli_usage_error("enroll", "--ca: only 'local' (the embedded CA) is known, not '%s'",
                               ca);
    }
    if (cli_new_ctx(&ctx) != EXIT_OK) {
        free(dir);
        return EXIT_ERROR;
    }
    /* Everything that can be checked without the token is checked before it is touched. */
    /* Subject and SANs refused before the token is opened: a typo costs no PIN entry. */
    cp.subject = subject;
    cp.san = sans;
    cp.n_san = n_sans;
    err = tokencert_csr_check(ctx, &cp);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "the request");
        goto out;
    }
    if (dir == NULL)
        dir = tokencert_ca_default_dir();
    if (dir == NULL) {
        fprintf(stderr, "tokencert: no CA directory: give --ca-dir DIR\n");
        code = EXIT_USAGE;
        goto out;
    }
    db_path = tc_asprintf("%s/ca.db", dir);
    pem_path = tc_asprintf("%s/ca.pem", dir);
    if (db_path == NULL || pem_path == NULL)
        goto out;

    err = tokencert_load_modules(ctx, c.module);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "loading modules");
        goto out;
    }
    /* One session, one login for keygen, the request's signature and the installation. */
    cli_login_opts(&c, &lo);
    err = tokencert_token_open(ctx, uri, &lo, TOKENCERT_OPEN_RW | TOKENCERT_OPEN_LOGIN, &t);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "opening the token");
        goto out;
    }
    /* The key first: a label already used refuses the run before a CA is created. */
    err = tokencert_keygen(t, type, label, &kr);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "generating the key");
        goto out;
    }
    if (access(db_path, F_OK) != 0) {
        const char *const args[] = {"tokencert", "ca", "init", "--ca-dir", dir, NULL};
        code = run_self(args);
        if (code != EXIT_OK) {
            fprintf(stderr,
                    "tokencert: creating the local CA in %s failed; the token is unchanged\n", dir);
            remove_key(t, &kr);
            goto out;
        }
        fprintf(stderr,
                "tokencert: there was no CA in %s: created one with automatic approval (its "
                "certificate is %s)\n",
                dir, pem_path);
        code = EXIT_ERROR;
    }

    cp.subject = subject;
    cp.san = sans;
    cp.n_san = n_sans;
    err = tokencert_csr(t, kr.uri, &cp, &csr, &csr_len);
    if (err == TC_OK)
        err = tokencert_ca_submit(ctx, dir, csr, csr_len, not_before, &req, &auto_approve);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "requesting the certificate");
        remove_key(t, &kr);
        goto out;
    }

    if (auto_approve) {
        const char *const args[] = {"tokencert", "ca", "approve", id_str, "--ca-dir", dir, NULL};
        snprintf(id_str, sizeof id_str, "%lld", req.id);
        code = run_self(args);
        if (code != EXIT_OK) {
            fprintf(stderr,
                    "tokencert: the local CA could not issue request %lld; it stays pending "
                    "(tokencert ca approve %lld --ca-dir %s), and the key '%s' stays on the token "
                    "for it\n",
                    req.id, req.id, dir, label);
            goto out;
        }
        code = EXIT_ERROR;
    }
    err = tokencert_ca_get(ctx, dir, req.id, &got);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "reading the request back");
        goto out;
    }
    if (got.state == TOKENCERT_REQ_PENDING) {
        printf("request %lld is pending approval at the local CA (tokencert ca approve %lld); the "
               "key '%s' stays on the token for the certificate to come\n",
               got.id, got.id, label);
        code = EXIT_PENDING;
        goto out;
    }
    if (got.state == TOKENCERT_REQ_REJECTED) {
        fprintf(stderr, "tokencert: the local CA rejected request %lld: %s\n", got.id,
                got.reason != NULL ? got.reason : "no reason given");
        code = EXIT_REJECTED;
        goto out;
    }
    err = tokencert_ca_cert(ctx, dir, &ca_der, &ca_der_len);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "the CA certificate");
        goto out;
    }
    in[0].data = got.cert;
    in[0].len = got.cert_len;
    in[0].name = "the issued certificate";
    in[1].data = ca_der;
    in[1].len = ca_der_len;
    in[1].name = pem_path;
    io.ca_file = pem_path;
    err = tokencert_import(t, in, 2, &io, &items, &n_items);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "installing the certificate");
        fprintf(stderr,
                "tokencert: request %lld is issued at the CA (tokencert ca list --ca-dir %s); the "
                "key '%s' stays on the token\n",
                got.id, dir, label);
        goto out;
    }
    print_installed(tokencert_token_get_info(t), &kr, &got, dir);
    code = EXIT_OK;
out:
    if (code == EXIT_OK)
        cli_print_warnings(ctx);
    tokencert_import_items_free(items, n_items);
    tokencert_ca_request_clear(&req);
    tokencert_ca_request_clear(&got);
    tokencert_keygen_result_clear(&kr);
    tokencert_token_close(t);
    tokencert_ctx_free(ctx);
    free(csr);
    free(ca_der);
    free(db_path);
    free(pem_path);
    free(dir);
    return code;
}
