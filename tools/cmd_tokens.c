/* cmd_tokens.c — `tokencert tokens`: slots and tokens with their state and URIs. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "help_tokens.h"

/* The flags in the order the listing names them (docs/json-schema.md). */
static const struct {
    size_t offset;
    const char *name;
} token_flags[] = {
    {offsetof(tokencert_token_info, rng), "rng"},
    {offsetof(tokencert_token_info, write_protected), "write-protected"},
    {offsetof(tokencert_token_info, login_required), "login-required"},
    {offsetof(tokencert_token_info, user_pin_initialized), "user-pin-initialized"},
    {offsetof(tokencert_token_info, protected_auth_path), "protected-authentication-path"},
    {offsetof(tokencert_token_info, token_initialized), "token-initialized"},
    {offsetof(tokencert_token_info, user_pin_count_low), "user-pin-count-low"},
    {offsetof(tokencert_token_info, user_pin_final_try), "user-pin-final-try"},
    {offsetof(tokencert_token_info, user_pin_locked), "user-pin-locked"},
    {offsetof(tokencert_token_info, user_pin_to_be_changed), "user-pin-to-be-changed"},
    {offsetof(tokencert_token_info, so_pin_locked), "so-pin-locked"},
};

static int flag_set(const tokencert_token_info *t, size_t f)
{
    return *(const int *)((const char *)t + token_flags[f].offset) != 0;
}

static const char *pin_state(const tokencert_token_info *t)
{
    if (!t->user_pin_initialized)
        return "not-initialized";
    if (t->user_pin_locked)
        return "locked";
    if (t->user_pin_final_try)
        return "final-try";
    if (t->user_pin_count_low)
        return "count-low";
    if (t->user_pin_to_be_changed)
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
        if (!t[i].token_initialized)
            printf("  (token not initialised)\n");
        printf("  label:        %s\n", t[i].label);
        printf("  manufacturer: %s\n", t[i].manufacturer);
        printf("  model:        %s\n", t[i].model);
        printf("  serial:       %s\n", t[i].serial);
        printf("  flags:       ");
        for (f = 0; f < sizeof token_flags / sizeof token_flags[0]; f++)
            if (flag_set(&t[i], f))
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
                if (flag_set(&t[i], f))
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
