/* cmd_keygen.c — `tokencert keygen`: generates a key pair on one token and prints what it made
 * (label, type, CKA_ID, both URIs); `--type list` prints the types the token can make.
 *
 * Generation on a real card can take a minute, so on a terminal a thread shows the elapsed time
 * on stderr while the token works; nothing of the kind is printed when stderr is not a terminal. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "help_keygen.h"

typedef struct {
    pthread_t thread;
    atomic_int stop;
    const char *type;
    const char *token;
    int running;
} progress;

static void *progress_run(void *arg)
{
    progress *p = arg;
    struct timespec start, now, tick = {0, 100 * 1000 * 1000};
    long shown = -1, secs;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!atomic_load(&p->stop)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        secs = (long)(now.tv_sec - start.tv_sec);
        if (secs != shown) {
            fprintf(stderr, "\rgenerating %s key on token '%s'\xe2\x80\xa6 %ld s", p->type,
                    p->token, secs);
            fflush(stderr);
            shown = secs;
        }
        nanosleep(&tick, NULL);
    }
    /* Clear the line: what follows (the result, or an error) starts on a clean one. */
    fputs("\r\033[K", stderr);
    fflush(stderr);
    return NULL;
}

static void progress_start(progress *p, const char *type, const char *token)
{
    memset(p, 0, sizeof *p);
    atomic_init(&p->stop, 0);
    p->type = type;
    p->token = token;
    if (!isatty(STDERR_FILENO))
        return;
    p->running = pthread_create(&p->thread, NULL, progress_run, p) == 0;
}

static void progress_stop(progress *p)
{
    if (!p->running)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    p->running = 0;
}

static void print_result(const tokencert_keygen_result *r, const char *token, int json)
{
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "token", json_object_new_string(token));
        json_object_object_add(o, "label", json_object_new_string(r->label));
        json_object_object_add(o, "type", json_object_new_string(r->type));
        json_object_object_add(o, "id", json_object_new_string(r->id));
        json_object_object_add(o, "uri", json_object_new_string(r->uri));
        json_object_object_add(o, "public_uri", json_object_new_string(r->public_uri));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return;
    }
    printf("label:      %s\n", r->label);
    printf("type:       %s\n", r->type);
    printf("id:         %s\n", r->id);
    printf("uri:        %s\n", r->uri);
    printf("public uri: %s\n", r->public_uri);
}

static void print_types(char **types, size_t n, const char *token, int json)
{
    size_t i;

    if (json) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "token", json_object_new_string(token));
        for (i = 0; i < n; i++)
            json_object_array_add(arr, json_object_new_string(types[i]));
        json_object_object_add(o, "types", arr);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return;
    }
    for (i = 0; i < n; i++)
        puts(types[i]);
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"label", required_argument, NULL, 'l'},
                                         {"type", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_token *t = NULL;
    tokencert_login_opts lo;
    tokencert_keygen_result r;
    tokencert_err err;
    const char *label = NULL, *type = TOKENCERT_KEY_TYPE_DEFAULT, *uri;
    char **types = NULL;
    size_t n_types = 0;
    int opt, code = EXIT_ERROR, list = 0;
    progress p;

    memset(&c, 0, sizeof c);
    memset(&r, 0, sizeof r);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'l':
            label = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'j':
            c.json = 1;
            break;
        case 'h':
            cli_print_help(help_keygen);
            return EXIT_OK;
        default:
            return cli_usage_error("keygen", "invalid option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("keygen", "exactly one TOKEN-URI expected");
    uri = argv[optind];
    list = strcmp(type, "list") == 0;
    if (!list && (label == NULL || label[0] == '\0'))
        return cli_usage_error("keygen", "--label NAME is required");
    code = cli_new_ctx(&ctx);
    if (code != EXIT_OK)
        return code;
    /* A typo in the type is refused before the token is opened and a PIN asked for. */
    if (!list && (err = tokencert_key_type_check(ctx, type)) != TC_OK) {
        code = cli_fail(ctx, err, "keygen");
        goto out;
    }
    err = tokencert_load_modules(ctx, c.module);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "loading modules");
        goto out;
    }
    cli_login_opts(&c, &lo);
    /* Listing types reads the mechanism list only: no login, no write access. */
    err = tokencert_token_open(ctx, uri, &lo, list ? 0 : TOKENCERT_OPEN_RW | TOKENCERT_OPEN_LOGIN,
                               &t);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "keygen");
        goto out;
    }
    if (list) {
        err = tokencert_key_types(t, &types, &n_types);
        if (err != TC_OK) {
            code = cli_fail(ctx, err, "keygen");
            goto out;
        }
        print_types(types, n_types, tokencert_token_get_info(t)->label, c.json);
        cli_print_warnings(ctx);
        code = EXIT_OK;
        goto out;
    }
    progress_start(&p, type, tokencert_token_get_info(t)->label);
    err = tokencert_keygen(t, type, label, &r);
    progress_stop(&p);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "keygen");
        goto out;
    }
    cli_print_warnings(ctx);
    print_result(&r, tokencert_token_get_info(t)->label, c.json);
    code = EXIT_OK;
out:
    tokencert_keygen_result_clear(&r);
    tokencert_strv_free(types, n_types);
    tokencert_token_close(t);
    tokencert_ctx_free(ctx);
    return code;
}
