/* cmd_import.c — `tokencert import TOKEN-URI FILE...`: certificates, chains (PEM, DER, PKCS#7) and
 * PKCS#12 files onto a token. The library checks everything before it writes anything; this file
 * reads the files and the PKCS#12 password and prints what was stored. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "help_import.h"

/* Certificates and PKCS#12 files are small; anything larger is not one. */
#define MAX_FILE (16 * 1024 * 1024)

static const char *kind_name(tokencert_import_kind k)
{
    switch (k) {
    case TOKENCERT_IMPORTED_CERT:
        return "certificate";
    case TOKENCERT_IMPORTED_AUTHORITY:
        return "authority";
    case TOKENCERT_IMPORTED_KEY:
        return "key";
    }
    return "?";
}

/* Reads a whole file; prints the reason and returns EXIT_IO on failure. */
static int read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    int ret = EXIT_IO;

    *data = NULL;
    *len = 0;
    if (f == NULL) {
        fprintf(stderr, "tokencert: import: cannot read '%s': %s\n", path, strerror(errno));
        return EXIT_IO;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            unsigned char *nb;
            if (cap >= MAX_FILE) {
                fprintf(stderr,
                        "tokencert: import: '%s' is larger than %d MiB: not a certificate "
                        "or PKCS#12 file\n",
                        path, MAX_FILE / (1024 * 1024));
                ret = EXIT_BAD_INPUT;
                goto out;
            }
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                fprintf(stderr, "tokencert: import: out of memory\n");
                ret = EXIT_ERROR;
                goto out;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                fprintf(stderr, "tokencert: import: cannot read '%s': %s\n", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    *data = buf;
    *len = n;
    buf = NULL;
    ret = EXIT_OK;
out:
    free(buf);
    fclose(f);
    return ret;
}

static void print_json(const tokencert_token_info *ti, const tokencert_import_item *items, size_t n,
                       tokencert_ctx *ctx)
{
    json_object *root = json_object_new_object(), *arr = json_object_new_array(),
                *tok = json_object_new_object(), *warn = json_object_new_array();
    size_t i;

    json_object_object_add(root, "version", json_object_new_int(1));
    json_object_object_add(tok, "label", json_object_new_string(ti->label));
    json_object_object_add(tok, "uri", json_object_new_string(ti->uri));
    json_object_object_add(root, "token", tok);
    for (i = 0; i < n; i++) {
        const tokencert_import_item *it = &items[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string(kind_name(it->kind)));
        json_object_object_add(o, "existed", json_object_new_boolean(it->existed));
        json_object_object_add(o, "label", json_object_new_string(it->label));
        json_object_object_add(o, "id", json_object_new_string(it->id));
        json_object_object_add(o, "uri", json_object_new_string(it->uri));
        json_object_object_add(o, "subject",
                               it->subject ? json_object_new_string(it->subject) : NULL);
        json_object_object_add(o, "sha256", it->sha256 ? json_object_new_string(it->sha256) : NULL);
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "items", arr);
    for (i = 0; i < tokencert_ctx_warning_count(ctx); i++)
        json_object_array_add(warn, json_object_new_string(tokencert_ctx_warning(ctx, i)));
    json_object_object_add(root, "warnings", warn);
    puts(json_object_to_json_string_ext(root,
                                        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static void print_text(const tokencert_token_info *ti, const tokencert_import_item *items, size_t n)
{
    static const char *const what[] = {"certificate", "CA certificate", "private key"};
    size_t i, stored = 0;

    for (i = 0; i < n; i++) {
        const tokencert_import_item *it = &items[i];
        printf("%s %s '%s' (id %s)%s%s\n", it->existed ? "already present:" : "stored",
               what[it->kind], it->label, it->id[0] ? it->id : "none", it->subject ? ": " : "",
               it->subject ? it->subject : "");
        stored += !it->existed;
    }
    printf("%zu object%s stored on token '%s', %zu already present\n", stored,
           stored == 1 ? "" : "s", ti->label, n - stored);
}

int cmd_import(int argc, char **argv)
{
    enum {
        OPT_LABEL = 1,
        OPT_ORPHAN,
        OPT_CA_FILE,
        OPT_NO_VERIFY,
        OPT_DATES,
        OPT_PASSWORD,
        OPT_FINGERPRINT,
        OPT_JSON
    };
    static const struct option opts[] = {
        {"label", required_argument, NULL, OPT_LABEL},
        {"allow-orphan", no_argument, NULL, OPT_ORPHAN},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
        {"allow-invalid-dates", no_argument, NULL, OPT_DATES},
        {"password-source", required_argument, NULL, OPT_PASSWORD},
        {"expect-fingerprint", required_argument, NULL, OPT_FINGERPRINT},
        {"json", no_argument, NULL, OPT_JSON},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_import_opts io;
    tokencert_import_input *inputs = NULL;
    tokencert_import_item *items = NULL;
    tokencert_ctx *ctx = NULL;
    tokencert_token *tok = NULL;
    tokencert_login_opts lo;
    tokencert_err err;
    const char *password_source = NULL, *uri;
    const char *first_p12 = NULL;
    char *password = NULL, *prompt = NULL;
    size_t n_in = 0, n_items = 0, i;
    int opt, ret = EXIT_ERROR;

    memset(&c, 0, sizeof c);
    memset(&io, 0, sizeof io);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case OPT_LABEL:
            io.label = optarg;
            break;
        case OPT_ORPHAN:
            io.allow_orphan = 1;
            break;
        case OPT_CA_FILE:
            io.ca_file = optarg;
            break;
        case OPT_NO_VERIFY:
            io.no_verify = 1;
            break;
        case OPT_DATES:
            io.allow_invalid_dates = 1;
            break;
        case OPT_PASSWORD:
            password_source = optarg;
            break;
        case OPT_FINGERPRINT:
            io.expect_fingerprint = optarg;
            break;
        case OPT_JSON:
            c.json = 1;
            break;
        case 'h':
            cli_print_help(help_import);
            return EXIT_OK;
        default:
            return cli_usage_error("import", "invalid option");
        }
    }
    if (argc - optind < 2)
        return cli_usage_error("import", "a token URI and at least one file expected");
    uri = argv[optind];
    n_in = (size_t)(argc - optind - 1);
    inputs = calloc(n_in, sizeof *inputs);
    if (inputs == NULL) {
        fprintf(stderr, "tokencert: import: out of memory\n");
        return EXIT_ERROR;
    }
    for (i = 0; i < n_in; i++) {
        unsigned char *data;
        size_t len;
        inputs[i].name = argv[optind + 1 + (int)i];
        ret = read_file(inputs[i].name, &data, &len);
        if (ret != EXIT_OK)
            goto out;
        inputs[i].data = data;
        inputs[i].len = len;
        if (first_p12 == NULL && tokencert_data_is_pkcs12(data, len))
            first_p12 = inputs[i].name;
    }
    ret = cli_open(&c, &ctx);
    if (ret != EXIT_OK)
        goto out;
    if (first_p12 != NULL) {
        prompt = tc_asprintf("Password for %s: ", first_p12);
        if (prompt == NULL) {
            ret = EXIT_ERROR;
            goto out;
        }
        err = tokencert_secret_read(ctx, password_source, isatty(STDIN_FILENO), prompt,
                                    "PKCS#12 password", &password);
        if (err != TC_OK) {
            ret = cli_fail(ctx, err, "import");
            goto out;
        }
        io.password = password;
    }
    cli_login_opts(&c, &lo);
    lo.login = 1;
    err = tokencert_token_open(ctx, uri, &lo, TOKENCERT_OPEN_RW | TOKENCERT_OPEN_LOGIN, &tok);
    if (err != TC_OK) {
        ret = cli_fail(ctx, err, "import");
        goto out;
    }
    err = tokencert_import(tok, inputs, n_in, &io, &items, &n_items);
    if (err != TC_OK) {
        ret = cli_fail(ctx, err, "import");
        goto out;
    }
    if (c.json) {
        print_json(tokencert_token_get_info(tok), items, n_items, ctx);
        cli_print_warnings(ctx);
    } else {
        cli_print_warnings(ctx);
        print_text(tokencert_token_get_info(tok), items, n_items);
    }
    ret = EXIT_OK;
out:
    tokencert_import_items_free(items, n_items);
    tokencert_token_close(tok);
    tokencert_secret_free(password);
    free(prompt);
    for (i = 0; inputs != NULL && i < n_in; i++) {
        /* A PKCS#12 file holds a private key: wipe it too. */
        if (inputs[i].data != NULL)
            tc_memzero((void *)inputs[i].data, inputs[i].len);
        free((void *)inputs[i].data);
    }
    free(inputs);
    tokencert_ctx_free(ctx);
    return ret;
}
