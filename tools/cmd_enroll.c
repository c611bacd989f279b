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
#include "lifecycle.h"

#include <openssl/evp.h>
#include "common.h"
#include "help_enroll.h"

#define MAX_SANS 64

/* Removes the key pair made by this run when a later step fails before anything was recorded, so
 * that the token is left as it was found. */
static int remove_key(tokencert_token *t, const tokencert_keygen_result *kr)
{
    size_t n = 0;
    int ok = 1;
    if (kr->uri != NULL && tokencert_delete(t, kr->uri, &n) != TC_OK)
        ok = 0;
    if (kr->public_uri != NULL && tokencert_delete(t, kr->public_uri, &n) != TC_OK)
        ok = 0;
    return ok;
}

/* Write-ahead: the state store learns of the credential and its request before the key is made
 * (state key-generating), so that a run killed during key generation leaves a record that the
 * next run (enroll again, or renew) continues from, removing the half-made key. renew, status
 * and poll take the credential from there (no configuration needed). */
static int record_request(lc *l, tokencert_state_request *rq, const char *label, const char *uri,
                          const char *dir, const char *module, const char *type,
                          const char *subject, const char *const *sans, size_t n_sans)
{
    tokencert_state_credential sc;
    size_t i;
    char *san = tc_strdup(""), *next;

    memset(&sc, 0, sizeof sc);
    sc.name = (char *)label;
    sc.token_uri = (char *)uri;
    sc.label = (char *)label;
    sc.ca = (char *)"local";
    sc.ca_dir = (char *)dir;
    sc.module = (char *)module;
    sc.created = tc_now();
    sc.last_run = sc.created;
    sc.last_result = (char *)"enrolling";
    for (i = 0; san != NULL && i < n_sans; i++) {
        next = tc_asprintf("%s%s%s", san, i ? "," : "", sans[i]);
        free(san);
        san = next;
    }
    memset(rq, 0, sizeof *rq);
    rq->credential = tc_strdup(label);
    rq->state = TOKENCERT_RS_KEY_GENERATING;
    rq->key_type = tc_strdup(type != NULL ? type : TOKENCERT_KEY_TYPE_DEFAULT);
    rq->subject = tc_strdup(subject);
    rq->san = san;
    rq->ca = tc_strdup("local");
    if (tokencert_state_begin(l->st) != TC_OK ||
        tokencert_state_credential_put(l->st, &sc) != TC_OK ||
        tokencert_state_request_add(l->st, rq) != TC_OK || tokencert_state_commit(l->st) != TC_OK) {
        tokencert_state_rollback(l->st);
        fprintf(stderr, "tokencert: recording the enrollment in %s failed: %s\n",
                tokencert_state_path(l->st), tokencert_ctx_error(l->ctx));
        return -1;
    }
    return 0;
}

static void record_state(lc *l, tokencert_state_request *rq, tokencert_request_state s,
                         const char *why)
{
    rq->state = s;
    if (why != NULL) {
        free(rq->last_error);
        rq->last_error = tc_strdup(why);
    }
    if (rq->id != 0 && tokencert_state_request_update(l->st, rq) != TC_OK)
        fprintf(stderr, "tokencert: recording request %lld failed: %s\n", rq->id,
                tokencert_ctx_error(l->ctx));
}

/* The enrollment failed and left the token as it found it: the store forgets the credential and
 * its request too, so that no timer run tries to renew what never was; the history keeps the
 * attempt. */
static void forget_request(lc *l, tokencert_state_request *rq, const char *why)
{
    tokencert_engine_log(l->e, rq->credential, "enroll failed", "failed", "%s",
                         why != NULL ? why : "?");
    if (tokencert_state_credential_forget(l->st, rq->credential) != TC_OK)
        record_state(l, rq, TOKENCERT_RS_ABANDONED, why);
}

/* A step after key generation failed: the key is removed so that the token is left as it was
 * found, and the enrollment forgotten. When the key cannot be removed (the token went away), the
 * request stays open (failed after key generation): the next run uses that key. */
static void drop_request(lc *l, tokencert_state_request *rq, tokencert_token *t,
                         const tokencert_keygen_result *kr, const char *why_in)
{
    /* A copy: why is often the context's error detail, which removing the key replaces (and a
     * dangling detail used to end up in the store as the request's last error). */
    char *why = why_in != NULL ? tc_strdup(why_in) : NULL;

    if (remove_key(t, kr)) {
        forget_request(l, rq, why);
        free(why);
        return;
    }
    rq->failed_at = TOKENCERT_RS_KEY_GENERATED;
    rq->attempts++;
    record_state(l, rq, TOKENCERT_RS_FAILED, why);
    fprintf(stderr,
            "tokencert: the key '%s' stays on the token; tokencert enroll (the same command) or "
            "tokencert renew %s continues with it\n",
            rq->credential, rq->credential);
    free(why);
}

/* The first generation: active at once. */
static void record_installed(lc *l, tokencert_state_request *rq, const tokencert_ca_request *got,
                             const tokencert_keygen_result *kr, const tokencert_token_info *ti)
{
    tokencert_state_generation g;
    tokencert_state_credential sc;
    unsigned char md[32];
    unsigned int md_len = 0;
    char sha[96];

    EVP_Digest(got->cert, got->cert_len, md, &md_len, EVP_sha256(), NULL);
    tc_hex_upper(md, md_len, ':', sha);
    memset(&g, 0, sizeof g);
    g.credential = rq->credential;
    g.state = TOKENCERT_GEN_ACTIVE;
    g.token_serial = ti->serial;
    g.key_id = kr->id;
    g.cert_sha256 = sha;
    g.serial = got->serial;
    g.subject = got->subject;
    g.not_before = got->not_before;
    g.not_after = got->not_after;
    g.installed = tc_now();
    g.request = rq->id;
    rq->state = TOKENCERT_RS_ACTIVE;
    if (tokencert_state_begin(l->st) != TC_OK ||
        tokencert_state_generation_add(l->st, &g) != TC_OK ||
        tokencert_state_request_update(l->st, rq) != TC_OK ||
        tokencert_state_commit(l->st) != TC_OK) {
        tokencert_state_rollback(l->st);
        fprintf(stderr, "tokencert: recording the enrollment failed: %s\n",
                tokencert_ctx_error(l->ctx));
        return;
    }
    memset(&sc, 0, sizeof sc);
    if (tokencert_state_credential_get(l->st, rq->credential, &sc) == TC_OK) {
        free(sc.token_serial);
        sc.token_serial = tc_strdup(ti->serial);
        free(sc.last_result);
        sc.last_result = tc_strdup("enrolled");
        if (tokencert_state_credential_put(l->st, &sc) != TC_OK)
            fprintf(stderr, "tokencert: recording the credential failed: %s\n",
                    tokencert_ctx_error(l->ctx));
        tokencert_state_credential_clear(&sc);
    }
    tokencert_engine_log(l->e, rq->credential, "installed", "ok", "generation 1 active (serial %s)",
                         got->serial ? got->serial : "?");
}

/* An enrollment of label that an earlier run left unfinished (killed, token pulled, CA gone) is
 * continued by the lifecycle engine, which cleans up what the interruption left. */
static int resume(lc *l, const char *label, int *resumed)
{
    tokencert_state_request *v = NULL;
    size_t n = 0, i;
    tokencert_outcome result;
    int code = EXIT_OK;

    *resumed = 0;
    if (tokencert_state_requests(l->st, label, 1, &v, &n) != TC_OK || n == 0) {
        tokencert_state_generation *g = NULL;
        size_t n_g = 0;
        tokencert_state_requests_free(v, n);
        /* A credential of that name with a certificate: refused before the token is touched. */
        if (tokencert_state_generations(l->st, label, 0, &g, &n_g) == TC_OK && n_g > 0) {
            fprintf(stderr,
                    "tokencert: a certificate labelled '%s' already exists (id %s, generation "
                    "%lld of the credential '%s'): choose another label, or renew it with "
                    "tokencert renew %s\n",
                    label, g[n_g - 1].key_id ? g[n_g - 1].key_id : "?", g[n_g - 1].number, label,
                    label);
            *resumed = 1;
            code = EXIT_USAGE;
        }
        tokencert_state_generations_free(g, n_g);
        return code;
    }
    if (tokencert_engine_find(l->e, label, &i) == TC_OK) {
        fprintf(stderr,
                "tokencert: an earlier enrollment of '%s' did not finish (request %lld, %s); "
                "continuing it\n",
                label, v[n - 1].id, tokencert_request_state_name(v[n - 1].state));
        code = cli_exit_code(tokencert_engine_renew(l->e, i, TOKENCERT_RENEW_FORCE, &result));
        *resumed = 1;
    }
    tokencert_state_requests_free(v, n);
    return code;
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
    printf("  not after  %s (%ld days)\n", na, tc_days_between(tc_now(), r->not_after));
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
    tokencert_state_request srq;
    lc lstate;
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
    int opt, code = EXIT_ERROR, auto_approve = 0, resumed = 0;

    memset(&c, 0, sizeof c);
    memset(&kr, 0, sizeof kr);
    memset(&srq, 0, sizeof srq);
    memset(&lstate, 0, sizeof lstate);
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

    /* The state store before the token: a store that cannot be written refuses the run while
     * the token is still untouched. */
    lstate.c = &c;
    lstate.wait_seconds = 60;
    code = lc_open(&lstate, 1, 1);
    if (code != EXIT_OK)
        goto out;
    code = resume(&lstate, label, &resumed);
    if (resumed)
        goto out;
    code = EXIT_ERROR;
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
    if (record_request(&lstate, &srq, label, uri, dir, c.module, type, subject, sans, n_sans) != 0)
        goto out;
    err = tokencert_keygen(t, type, label, &kr);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "generating the key");
        /* keygen leaves no half key pair behind when it fails. */
        forget_request(&lstate, &srq, tokencert_ctx_error(ctx));
        goto out;
    }
    free(srq.key_id);
    srq.key_id = tc_strdup(kr.id);
    free(srq.key_type);
    srq.key_type = tc_strdup(kr.type);
    record_state(&lstate, &srq, TOKENCERT_RS_KEY_GENERATED, NULL);
    tokencert_engine_log(lstate.e, label, "enrolled", "ok", "key %s (%s) generated on %s", kr.id,
                         kr.type, uri);
    if (access(db_path, F_OK) != 0) {
        tokencert_ca_params cap;
        memset(&cap, 0, sizeof cap);
        cap.dir = dir; /* every other setting the library's default, as `ca init --ca-dir` */
        err = tokencert_ca_init(ctx, &cap);
        code = err == TC_OK ? EXIT_OK : cli_fail(ctx, err, "creating the local CA");
        if (code != EXIT_OK) {
            fprintf(stderr,
                    "tokencert: creating the local CA in %s failed; the token is unchanged\n", dir);
            drop_request(&lstate, &srq, t, &kr, "creating the local CA failed");
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
        drop_request(&lstate, &srq, t, &kr, tokencert_ctx_error(ctx));
        goto out;
    }

    free(srq.ca_request_id);
    srq.ca_request_id = tc_asprintf("%lld", req.id);
    srq.next_poll = tc_now() + 3600;
    record_state(&lstate, &srq, TOKENCERT_RS_PENDING, NULL);
    tokencert_engine_log(lstate.e, label, "submitted", "ok", "request %lld at the local CA in %s",
                         req.id, dir);
    if (auto_approve) {
        snprintf(id_str, sizeof id_str, "%lld", req.id);
        /* Signed in the CA's own helper process: this one has the user's token open. */
        err = tokencert_ca_approve(ctx, dir, req.id, NULL);
        code = err == TC_OK ? EXIT_OK : cli_fail(ctx, err, "issuing the certificate");
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
        tokencert_engine_log(lstate.e, label, "pending", "ok", "request %lld waits for approval",
                             got.id);
        goto out;
    }
    if (got.state == TOKENCERT_REQ_REJECTED) {
        fprintf(stderr, "tokencert: the local CA rejected request %lld: %s\n", got.id,
                got.reason != NULL ? got.reason : "no reason given");
        code = EXIT_REJECTED;
        record_state(&lstate, &srq, TOKENCERT_RS_REJECTED, got.reason);
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
    record_installed(&lstate, &srq, &got, &kr, tokencert_token_get_info(t));
    print_installed(tokencert_token_get_info(t), &kr, &got, dir);
    code = EXIT_OK;
out:
    if (code == EXIT_OK)
        cli_print_warnings(ctx);
    tokencert_import_items_free(items, n_items);
    tokencert_ca_request_clear(&req);
    tokencert_ca_request_clear(&got);
    tokencert_state_request_clear(&srq);
    lc_close(&lstate);
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
