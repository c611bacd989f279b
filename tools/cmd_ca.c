/* cmd_ca.c — `tokencert ca init|approve|reject|list|cert`: the embedded CA. The library runs what
 * touches the CA's token (init, approve) in its signer process, tokencert-ca-sign. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "help_ca.h"

static int parse_id(const char *s, long long *id)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        return cli_usage_error("ca", "'%s' is not a request number", s);
    *id = v;
    return EXIT_OK;
}

static void print_iso(FILE *f, time_t t)
{
    char buf[32];
    if (t == 0) {
        fputs("-", f);
        return;
    }
    tc_time_iso(t, buf, sizeof buf);
    fputs(buf, f);
}

static json_object *json_time(time_t t)
{
    char buf[32];
    if (t == 0)
        return NULL;
    tc_time_iso(t, buf, sizeof buf);
    return json_object_new_string(buf);
}

static json_object *json_str(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

static int list_requests(tokencert_ctx *ctx, const char *dir, int json)
{
    tokencert_ca_request *v = NULL;
    size_t n = 0, i;
    tokencert_err err = tokencert_ca_list(ctx, dir, &v, &n);

    if (err != TC_OK)
        return cli_fail(ctx, err, "listing the CA's requests");
    if (json) {
        json_object *root = json_object_new_object(), *arr = json_object_new_array();
        json_object_object_add(root, "version", json_object_new_int(1));
        json_object_object_add(root, "ca_dir", json_object_new_string(dir));
        for (i = 0; i < n; i++) {
            json_object *o = json_object_new_object();
            const tokencert_ca_request *r = &v[i];
            json_object_object_add(o, "id", json_object_new_int64(r->id));
            json_object_object_add(o, "subject", json_object_new_string(r->subject));
            json_object_object_add(o, "state",
                                   json_object_new_string(tokencert_req_state_name(r->state)));
            json_object_object_add(o, "submitted", json_time(r->submitted));
            json_object_object_add(o, "decided", json_time(r->decided));
            json_object_object_add(o, "not_before", json_time(r->not_before));
            json_object_object_add(o, "not_after", json_time(r->not_after));
            json_object_object_add(o, "serial", json_str(r->serial));
            json_object_object_add(o, "reason", json_str(r->reason));
            json_object_array_add(arr, o);
        }
        json_object_object_add(root, "requests", arr);
        puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
    } else if (n == 0) {
        printf("no requests at the CA in %s\n", dir);
    } else {
        printf("%-5s %-9s %-20s %-20s %-20s %-32s %s\n", "ID", "STATE", "SUBMITTED", "DECIDED",
               "NOT AFTER", "SERIAL", "SUBJECT");
        for (i = 0; i < n; i++) {
            const tokencert_ca_request *r = &v[i];
            printf("%-5lld %-9s ", r->id, tokencert_req_state_name(r->state));
            print_iso(stdout, r->submitted);
            fputs(" ", stdout);
            print_iso(stdout, r->decided);
            fputs(r->decided ? " " : "                    ", stdout);
            print_iso(stdout, r->not_after);
            fputs(r->not_after ? " " : "                    ", stdout);
            printf("%-32s %s", r->serial != NULL ? r->serial : "-", r->subject);
            if (r->reason != NULL)
                printf(" (rejected: %s)", r->reason);
            putchar('\n');
        }
    }
    tokencert_ca_requests_free(v, n);
    return EXIT_OK;
}

/* The certificate as PEM on f. */
static int write_pem(FILE *f, const unsigned char *der, size_t len)
{
    size_t n = 0;
    char *pem = cli_pem_encode("CERTIFICATE", der, len, &n);
    int ok = pem != NULL && fwrite(pem, 1, n, f) == n && !ferror(f);

    free(pem);
    return ok ? 0 : -1;
}

static int ca_cert(tokencert_ctx *ctx, const char *dir, const char *out_path)
{
    unsigned char *der = NULL;
    size_t len = 0;
    FILE *f = stdout;
    int code = EXIT_OK;
    tokencert_err err = tokencert_ca_cert(ctx, dir, &der, &len);

    if (err != TC_OK)
        return cli_fail(ctx, err, "the CA certificate");
    if (out_path != NULL && strcmp(out_path, "-") != 0) {
        f = fopen(out_path, "w");
        if (f == NULL) {
            fprintf(stderr, "tokencert: cannot write '%s': %s\n", out_path, strerror(errno));
            free(der);
            return EXIT_IO;
        }
    }
    if (write_pem(f, der, len) != 0 || (f != stdout && fclose(f) != 0)) {
        fprintf(stderr, "tokencert: cannot write '%s': %s\n", out_path ? out_path : "stdout",
                strerror(errno));
        code = EXIT_IO;
    }
    free(der);
    return code;
}

static void print_issued(const tokencert_ca_request *r)
{
    printf("request %lld issued\n  subject    %s\n  serial     %s\n  not before ", r->id,
           r->subject, r->serial != NULL ? r->serial : "-");
    print_iso(stdout, r->not_before);
    fputs("\n  not after  ", stdout);
    print_iso(stdout, r->not_after);
    putchar('\n');
}

static int submit_request(tokencert_ctx *ctx, const char *dir, const char *path, time_t not_before,
                          const char *out_path)
{
    enum { MAX = 64 * 1024 };
    unsigned char *buf = malloc(MAX + 1);
    FILE *f;
    size_t len;
    tokencert_ca_request r, issued;
    tokencert_err err;
    int auto_approve = 0, code = EXIT_ERROR;

    memset(&r, 0, sizeof r);
    memset(&issued, 0, sizeof issued);
    if (buf == NULL)
        return EXIT_ERROR;
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "tokencert: cannot read '%s': %s\n", path, strerror(errno));
        free(buf);
        return EXIT_IO;
    }
    len = fread(buf, 1, MAX + 1, f);
    if (ferror(f) || len > MAX) {
        fprintf(stderr, "tokencert: '%s': %s\n", path,
                len > MAX ? "larger than 64 KiB: not a request" : strerror(errno));
        code = len > MAX ? EXIT_BAD_INPUT : EXIT_IO;
        goto out;
    }
    err = tokencert_ca_submit(ctx, dir, buf, len, not_before, &r, &auto_approve);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, path);
        goto out;
    }
    if (!auto_approve) {
        printf("request %lld is pending approval (tokencert ca approve %lld)\n", r.id, r.id);
        code = EXIT_PENDING;
        goto out;
    }
    /* This process has touched no token: it may sign on the CA's own SoftHSM token itself. */
    err = tokencert_ca_approve(ctx, dir, r.id, &issued);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "issuing the certificate");
        goto out;
    }
    if (out_path == NULL) {
        code = write_pem(stdout, issued.cert, issued.cert_len) == 0 ? EXIT_OK : EXIT_IO;
    } else {
        FILE *o = fopen(out_path, "w");
        if (o == NULL || write_pem(o, issued.cert, issued.cert_len) != 0 || fclose(o) != 0) {
            fprintf(stderr, "tokencert: cannot write '%s': %s\n", out_path, strerror(errno));
            code = EXIT_IO;
            goto out;
        }
        print_issued(&issued);
        code = EXIT_OK;
    }
out:
    if (f != stdin)
        fclose(f);
    tokencert_ca_request_clear(&r);
    tokencert_ca_request_clear(&issued);
    free(buf);
    return code;
}

static long long parse_dur(const char *arg, const char *opt, int *bad)
{
    long long v = tc_parse_duration(arg);
    if (v == TC_DURATION_TOO_LONG) {
        cli_usage_error("ca", "%s: '%s' is longer than 1000 years", opt, arg);
        *bad = 1;
    } else if (v <= 0) {
        cli_usage_error("ca", "%s: '%s' is not a duration like 365d, 52w or 10y", opt, arg);
        *bad = 1;
    }
    return v;
}

int cmd_ca(int argc, char **argv)
{
    static const struct option opts[] = {{"ca-dir", required_argument, NULL, 'd'},
                                         {"subject", required_argument, NULL, 's'},
                                         {"type", required_argument, NULL, 't'},
                                         {"validity", required_argument, NULL, 'v'},
                                         {"cert-validity", required_argument, NULL, 'V'},
                                         {"approval", required_argument, NULL, 'a'},
                                         {"token", required_argument, NULL, 'T'},
                                         {"reason", required_argument, NULL, 'r'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"not-before", required_argument, NULL, 'n'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ca_params p;
    tokencert_ctx *ctx = NULL;
    tokencert_ca_request r;
    tokencert_err err;
    const char *sub, *reason = NULL, *out_path = NULL;
    char *dir = NULL;
    long long id = 0;
    time_t not_before = 0;
    int opt, bad = 0, code = EXIT_OK, nargs;

    memset(&c, 0, sizeof c);
    memset(&p, 0, sizeof p);
    memset(&r, 0, sizeof r);
    if (argc < 2) {
        return cli_usage_error(
            "ca", "a subcommand is needed: init, submit, approve, reject, list or cert");
    }
    sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        cli_print_help(help_ca);
        return EXIT_OK;
    }
    if (strcmp(sub, "init") != 0 && strcmp(sub, "approve") != 0 && strcmp(sub, "reject") != 0 &&
        strcmp(sub, "list") != 0 && strcmp(sub, "cert") != 0 && strcmp(sub, "submit") != 0)
        return cli_usage_error(
            "ca", "unknown subcommand '%s' (init, submit, approve, reject, list, cert)", sub);
    argc--;
    argv++;
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'd':
            p.dir = optarg;
            break;
        case 's':
            p.subject = optarg;
            break;
        case 't':
            p.key_type = optarg;
            break;
        case 'v':
            p.validity = parse_dur(optarg, "--validity", &bad);
            break;
        case 'V':
            p.issue_validity = parse_dur(optarg, "--cert-validity", &bad);
            break;
        case 'a':
            if (strcmp(optarg, "manual") == 0)
                p.manual_approval = 1;
            else if (strcmp(optarg, "auto") != 0)
                return cli_usage_error("ca", "--approval is auto or manual, not '%s'", optarg);
            break;
        case 'T':
            p.token_uri = optarg;
            break;
        case 'r':
            reason = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'j':
            c.json = 1;
            break;
        case 'n':
            if (cli_parse_utc(optarg, &not_before) != 0)
                return cli_usage_error("ca",
                                       "--not-before: '%s' is not a UTC date like "
                                       "2027-01-31T00:00:00Z",
                                       optarg);
            break;
        case 'h':
            cli_print_help(help_ca);
            return EXIT_OK;
        default:
            return cli_usage_error("ca", "invalid option");
        }
    }
    if (bad)
        return EXIT_USAGE;
    nargs = argc - optind;
    if (strcmp(sub, "approve") == 0 || strcmp(sub, "reject") == 0) {
        if (nargs != 1)
            return cli_usage_error("ca", "%s takes one request number", sub);
        code = parse_id(argv[optind], &id);
        if (code != EXIT_OK)
            return code;
        if (strcmp(sub, "reject") == 0 && (reason == NULL || reason[0] == '\0'))
            return cli_usage_error("ca", "reject needs --reason TEXT");
    } else if (strcmp(sub, "submit") == 0) {
        if (nargs != 1)
            return cli_usage_error("ca", "submit takes one request file (PEM or DER, - for stdin)");
    } else if (nargs != 0) {
        return cli_usage_error("ca", "%s takes no arguments", sub);
    }
    if (strcmp(sub, "init") == 0) {
        p.module = c.module;
        p.pin_source = c.pin_source;
        if (p.token_uri == NULL && (c.module != NULL || c.pin_source != NULL))
            return cli_usage_error("ca", "--module and --pin-source go with --token URI");
        if (p.token_uri != NULL && c.pin_source == NULL)
            return cli_usage_error("ca", "--token needs --pin-source (the CA reads the token's "
                                         "PIN from it whenever it signs)");
    }
    if (cli_new_ctx(&ctx) != EXIT_OK)
        return EXIT_ERROR;
    dir = p.dir != NULL ? strdup(p.dir) : tokencert_ca_default_dir();
    if (dir == NULL) {
        fprintf(stderr, "tokencert: no CA directory: give --ca-dir DIR\n");
        code = EXIT_USAGE;
        goto out;
    }
    p.dir = dir;
    if (strcmp(sub, "init") == 0) {
        err = tokencert_ca_init(ctx, &p);
        if (err != TC_OK) {
            code = cli_fail(ctx, err, "creating the CA");
            goto out;
        }
        printf("created the CA in %s (%s approval); its certificate is %s/ca.pem\n", dir,
               p.manual_approval ? "manual" : "automatic", dir);
    } else if (strcmp(sub, "approve") == 0) {
        err = tokencert_ca_approve(ctx, dir, id, &r);
        if (err != TC_OK) {
            code = cli_fail(ctx, err, "approving the request");
            goto out;
        }
        print_issued(&r);
    } else if (strcmp(sub, "reject") == 0) {
        err = tokencert_ca_reject(ctx, dir, id, reason);
        if (err != TC_OK) {
            code = cli_fail(ctx, err, "rejecting the request");
            goto out;
        }
        printf("request %lld rejected\n", id);
    } else if (strcmp(sub, "submit") == 0) {
        code = submit_request(ctx, dir, argv[optind], not_before, out_path);
    } else if (strcmp(sub, "list") == 0) {
        code = list_requests(ctx, dir, c.json);
    } else {
        code = ca_cert(ctx, dir, out_path);
    }
out:
    if (code == EXIT_OK)
        cli_print_warnings(ctx);
    tokencert_ca_request_clear(&r);
    free(dir);
    tokencert_ctx_free(ctx);
    return code;
}
