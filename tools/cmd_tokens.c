/* cmd_tokens.c — `tokencert tokens`: slots and tokens with their state and URIs. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "help_tokens.h"

#include <p11-kit/pkcs11.h>

static const struct {
    unsigned long flag;
    const char *name;
} token_flags[] = {
    {CKF_RNG, "rng"},
    {CKF_WRITE_PROTECTED, "write-protected"},
    {CKF_LOGIN_REQUIRED, "login-required"},
    {CKF_USER_PIN_INITIALIZED, "user-pin-initialized"},
    {CKF_PROTECTED_AUTHENTICATION_PATH, "protected-authentication-path"},
    {CKF_TOKEN_INITIALIZED, "token-initialized"},
    {CKF_USER_PIN_COUNT_LOW, "user-pin-count-low"},
    {CKF_USER_PIN_FINAL_TRY, "user-pin-final-try"},
    {CKF_USER_PIN_LOCKED, "user-pin-locked"},
    {CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed"},
    {CKF_SO_PIN_LOCKED, "so-pin-locked"},
};

static const char *pin_state(const tokencert_token_info *t)
{
    if (!(t->flags & CKF_USER_PIN_INITIALIZED))
        return "not-initialized";
    if (t->flags & CKF_USER_PIN_LOCKED)
        return "locked";
    if (t->flags & CKF_USER_PIN_FINAL_TRY)
        return "final-try";
    if (t->flags & CKF_USER_PIN_COUNT_LOW)
        return "count-low";
    if (t->flags & CKF_USER_PIN_TO_BE_CHANGED)
        return "to-be-changed";
    return "ok";
}

static void print_memory(const char *what, long long free_b, long long total_b)
{
    if (free_b < 0 && total_b < 0)
        printf("  %-13s not reported\n", what);
    else if (total_b < 0)
        printf("  %-13s %lld bytes free\n", what, free_b);
    else
        printf("  %-13s %lld of %lld bytes free\n", what, free_b < 0 ? 0 : free_b, total_b);
}

static void print_human(const tokencert_token_info *t, size_t n)
{
    size_t i, f;

    for (i = 0; i < n; i++) {
        if (i > 0)
            putchar('\n');
        printf("Slot %lu: %s  [module %s]\n", t[i].slot_id, t[i].slot_description, t[i].module);
        if (!t[i].present) {
            printf("  (no token present)\n  uri:          %s\n", t[i].uri);
            continue;
        }
        if (!(t[i].flags & CKF_TOKEN_INITIALIZED))
            printf("  (token not initialised)\n");
        printf("  label:        %s\n", t[i].label);
        printf("  manufacturer: %s\n", t[i].manufacturer);
        printf("  model:        %s\n", t[i].model);
        printf("  serial:       %s\n", t[i].serial);
        printf("  flags:       ");
        for (f = 0; f < sizeof token_flags / sizeof token_flags[0]; f++)
            if (t[i].flags & token_flags[f].flag)
                printf(" %s", token_flags[f].name);
        printf("\n  user PIN:     %s\n", pin_state(&t[i]));
        print_memory("public mem:", t[i].free_public_memory, t[i].total_public_memory);
        print_memory("private mem:", t[i].free_private_memory, t[i].total_private_memory);
        printf("  versions:     hardware %u.%u, firmware %u.%u\n", t[i].hw_major, t[i].hw_minor,
               t[i].fw_major, t[i].fw_minor);
        printf("  uri:          %s\n", t[i].uri);
    }
}

static json_object *mem_json(long long v)
{
    return v < 0 ? NULL : json_object_new_int64(v);
}

static void print_json(const tokencert_token_info *t, size_t n)
{
    json_object *root = json_object_new_object(), *arr = json_object_new_array();
    size_t i, f;

    json_object_object_add(root, "version", json_object_new_int(1));
    for (i = 0; i < n; i++) {
        json_object *o = json_object_new_object(), *flags = json_object_new_array();
        json_object_object_add(o, "uri", json_object_new_string(t[i].uri));
        json_object_object_add(o, "module", json_object_new_string(t[i].module));
        json_object_object_add(o, "slot_id", json_object_new_int64((int64_t)t[i].slot_id));
        json_object_object_add(o, "slot_description",
                               json_object_new_string(t[i].slot_description));
        json_object_object_add(o, "present", json_object_new_boolean(t[i].present));
        if (t[i].present) {
            json_object_object_add(o, "label", json_object_new_string(t[i].label));
            json_object_object_add(o, "manufacturer", json_object_new_string(t[i].manufacturer));
            json_object_object_add(o, "model", json_object_new_string(t[i].model));
            json_object_object_add(o, "serial", json_object_new_string(t[i].serial));
            for (f = 0; f < sizeof token_flags / sizeof token_flags[0]; f++)
                if (t[i].flags & token_flags[f].flag)
                    json_object_array_add(flags, json_object_new_string(token_flags[f].name));
            json_object_object_add(o, "pin_state", json_object_new_string(pin_state(&t[i])));
            json_object_object_add(o, "free_public_memory", mem_json(t[i].free_public_memory));
            json_object_object_add(o, "total_public_memory", mem_json(t[i].total_public_memory));
            json_object_object_add(o, "free_private_memory", mem_json(t[i].free_private_memory));
            json_object_object_add(o, "total_private_memory", mem_json(t[i].total_private_memory));
        }
        json_object_object_add(o, "flags", flags);
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "tokens", arr);
    puts(json_object_to_json_string_ext(root,
                                        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

int cmd_tokens(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_token_info *tokens = NULL;
    size_t n = 0;
    tokencert_err err;
    int opt, code;

    memset(&c, 0, sizeof c);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'j':
            c.json = 1;
            break;
        case 'h':
            cli_print_help(help_tokens);
            return EXIT_OK;
        default:
            return cli_usage_error("tokens", "invalid option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("tokens", "at most one URI expected");
    code = cli_open(&c, &ctx);
    if (code != EXIT_OK)
        return code;
    err = tokencert_tokens(ctx, optind < argc ? argv[optind] : NULL, &tokens, &n);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "tokens");
        goto out;
    }
    cli_print_warnings(ctx);
    if (c.json)
        print_json(tokens, n);
    else if (n == 0)
        printf("No slots found.\n");
    else
        print_human(tokens, n);
    code = EXIT_OK;
out:
    tokencert_tokens_free(tokens, n);
    tokencert_ctx_free(ctx);
    return code;
}
