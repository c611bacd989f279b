/* cmd_list.c — `tokencert list`: every credential on every token, as a table grouped by token
 * and credential, as JSON (docs/json-schema.md), or as a validity timeline. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "common.h"
#include "help_list.h"

#define TIMELINE_WIDTH 56

typedef struct {
    int colour;
} style;

static const char *status_colour(const style *st, tokencert_cert_status s)
{
    if (!st->colour)
        return "";
    switch (s) {
    case TOKENCERT_CERT_VALID:
        return "\033[32m";
    case TOKENCERT_CERT_EXPIRING:
        return "\033[33m";
    case TOKENCERT_CERT_EXPIRED:
    case TOKENCERT_CERT_UNREADABLE:
        return "\033[31m";
    case TOKENCERT_CERT_NOT_YET_VALID:
        return "\033[36m";
    }
    return "";
}

static const char *reset(const style *st)
{
    return st->colour ? "\033[0m" : "";
}

static void print_key(const tokencert_key *k)
{
    printf("    key      %s", k->key_type);
    if (k->key_bits > 0)
        printf(" %d", k->key_bits);
    if (k->has_private) {
        printf(", private key %s, %s", k->sensitive == 1 ? "sensitive" : "NOT sensitive",
               k->extractable == 0 ? "non-extractable" : "EXTRACTABLE");
    } else {
        printf(", public key only seen");
    }
    printf("\n    key uri  %s\n", k->uri);
}

/* The lifecycle's view of the certificates, from the state store when there is one: which
 * generation of which credential each is, and whether it is active or superseded. */
static tokencert_records list_rec;
static tokencert_state_generation *list_gens;
static size_t list_n_gens;

static const tokencert_state_generation *generation_of(const tokencert_cert *c)
{
    size_t i;
    for (i = 0; i < list_n_gens; i++)
        if (list_gens[i].cert_sha256 != NULL && strcmp(list_gens[i].cert_sha256, c->sha256) == 0)
            return &list_gens[i];
    return NULL;
}

/* Reads the generations from the state store; no store (or one that cannot be read) leaves the
 * listing as the token alone says, with a warning for a store that is there but unreadable. */
static void load_generations(tokencert_ctx *ctx)
{
    tokencert_err err =
        tokencert_records_read(ctx, NULL, NULL, TOKENCERT_RECORDS_GENERATIONS, &list_rec);

    if (err != TC_OK && err != TC_ERR_NOT_FOUND)
        fprintf(stderr, "tokencert: warning: generations not shown: %s\n",
                tokencert_ctx_error(ctx));
    list_gens = list_rec.generations;
    list_n_gens = list_rec.n_generations;
}

static void print_cert(const style *st, const tokencert_cert *c)
{
    const tokencert_state_generation *g = generation_of(c);
    char nb[32], na[32];
    size_t i;

    if (c->status == TOKENCERT_CERT_UNREADABLE) {
        printf("    %sunreadable%s  label '%s' id %s: %s\n", status_colour(st, c->status),
               reset(st), c->label, c->id[0] ? c->id : "(none)", c->error);
        printf("             SHA-256 %s\n", c->sha256);
        return;
    }
    tc_time_iso(c->not_before, nb, sizeof nb);
    tc_time_iso(c->not_after, na, sizeof na);
    printf("    %s%-13s%s %5ld days  %s .. %s  %s\n", status_colour(st, c->status),
           tokencert_cert_status_name(c->status), reset(st), c->days_left, nb, na, c->subject);
    if (g != NULL)
        printf("             generation %lld of '%s': %s\n", g->number, g->credential,
               tokencert_generation_state_name(g->state));
    printf("             issuer %s  serial %s  key %s", c->issuer, c->serial,
           c->key_type ? c->key_type : "?");
    if (c->key_bits > 0)
        printf(" %d", c->key_bits);
    printf("%s\n", c->is_ca ? "  CA" : "");
    if (c->n_key_usage > 0 || c->n_ext_key_usage > 0) {
        printf("             usage");
        for (i = 0; i < c->n_key_usage; i++)
            printf(" %s", c->key_usage[i]);
        for (i = 0; i < c->n_ext_key_usage; i++)
            printf(" %s", c->ext_key_usage[i]);
        putchar('\n');
    }
    printf("             label '%s'  id %s\n", c->label, c->id[0] ? c->id : "(none)");
    printf("             SHA-1   %s\n", c->sha1);
    printf("             SHA-256 %s\n", c->sha256);
    printf("             uri %s\n", c->uri);
}

static void print_token_header(const tokencert_token_inventory *t)
{
    size_t i;
    printf("Token '%s'  %s %s, serial %s%s\n", t->token.label, t->token.manufacturer,
           t->token.model, t->token.serial, t->logged_in ? "  (logged in)" : "");
    printf("  %s\n", t->token.uri);
    for (i = 0; i < t->n_notes; i++)
        printf("  note: %s\n", t->notes[i]);
}

static void print_table(const style *st, const tokencert_inventory *inv)
{
    size_t i, j, k;

    for (i = 0; i < inv->n_tokens; i++) {
        const tokencert_token_inventory *t = &inv->tokens[i];
        if (i > 0)
            putchar('\n');
        print_token_header(t);
        if (t->n_creds == 0)
            printf("\n  (no credentials)\n");
        for (j = 0; j < t->n_creds; j++) {
            const tokencert_credential *c = &t->creds[j];
            printf("\n  %s '%s'  id %s\n", tokencert_cred_kind_name(c->kind), c->name,
                   c->id[0] ? c->id : "(none)");
            if (c->key != NULL)
                print_key(c->key);
            for (k = 0; k < c->n_certs; k++)
                print_cert(st, &c->certs[k]);
        }
    }
}

static int timeline_col(time_t t, time_t start, time_t end)
{
    double f;
    if (end <= start)
        return 0;
    f = (double)(t - start) / (double)(end - start);
    if (f < 0)
        f = 0;
    if (f > 1)
        f = 1;
    return (int)(f * (TIMELINE_WIDTH - 1) + 0.5);
}

/* The window spans the end-entity certificates; an authority's long validity would squash every
 * other bar, so CA bars are clipped to the window and marked '<' or '>' where they run past it. */
static void timeline_window(const tokencert_inventory *inv, int authorities, time_t *start,
                            time_t *end)
{
    size_t i, j, k;

    *start = *end = inv->now;
    for (i = 0; i < inv->n_tokens; i++)
        for (j = 0; j < inv->tokens[i].n_creds; j++) {
            const tokencert_credential *c = &inv->tokens[i].creds[j];
            if ((c->kind == TOKENCERT_CRED_AUTHORITY) != authorities)
                continue;
            for (k = 0; k < c->n_certs; k++) {
                if (c->certs[k].status == TOKENCERT_CERT_UNREADABLE)
                    continue;
                if (c->certs[k].not_before < *start)
                    *start = c->certs[k].not_before;
                if (c->certs[k].not_after > *end)
                    *end = c->certs[k].not_after;
            }
        }
}

/* The mark after a bar: the certificate's role by the library's rule among everything of its
 * credential's name on the token (a renewal with a new key is a second credential under that
 * name), for the certificates the lifecycle manages (the state store knows their generation). A
 * certificate that is not valid now has no role by the rule: it keeps the generation's state as
 * the store recorded it (an expired predecessor stays "superseded" until prune removes it). */
static const char *bar_mark(const tokencert_token_inventory *t, const tokencert_credential *c,
                            size_t k, time_t now)
{
    const tokencert_state_generation *g = generation_of(&c->certs[k]);

    if (g == NULL)
        return "";
    switch (tokencert_cert_role_at(&c->certs[k], tokencert_named_current(t, c->name, now), now)) {
    case TOKENCERT_ROLE_CURRENT:
        return "  active";
    case TOKENCERT_ROLE_SUPERSEDED:
        return "  superseded";
    default:
        return g->state == TOKENCERT_GEN_SUPERSEDED ? "  superseded" : "  active";
    }
}

/* S cut or padded with blanks to WIDTH characters, never inside a UTF-8 sequence (labels are
 * valid UTF-8 here: tc_printable escaped everything else). */
static void print_cell(const char *s, size_t width)
{
    size_t bytes = 0, chars = 0;

    while (s[bytes] != '\0' && chars < width) {
        bytes++;
        while (((unsigned char)s[bytes] & 0xc0) == 0x80)
            bytes++;
        chars++;
    }
    printf("%.*s%*s", (int)bytes, s, (int)(width - chars), "");
}

static void print_bar(const style *st, const char *label, const tokencert_cert *x, const char *mark,
                      time_t start, time_t end, int now_col)
{
    char bar[TIMELINE_WIDTH + 1];
    int from = timeline_col(x->not_before, start, end), to = timeline_col(x->not_after, start, end);
    int col;

    memset(bar, ' ', TIMELINE_WIDTH);
    bar[TIMELINE_WIDTH] = '\0';
    for (col = from; col <= to; col++)
        bar[col] = '=';
    bar[from] = x->not_before < start ? '<' : '[';
    bar[to] = x->not_after > end ? '>' : ']';
    if (bar[now_col] == ' ')
        bar[now_col] = '|';
    else if (bar[now_col] == '=')
        bar[now_col] = '#';
    printf("  ");
    print_cell(label, 26);
    printf(" %s %s%s%s %ld d%s\n", bar, status_colour(st, x->status),
           tokencert_cert_status_name(x->status), reset(st), x->days_left, mark);
}

static void print_timeline(const style *st, const tokencert_inventory *inv)
{
    time_t start, end;
    size_t i, j, k;
    char a[32], b[32], today[32];
    int now_col;

    timeline_window(inv, 0, &start, &end);
    if (start == end)
        timeline_window(inv, 1, &start, &end);
    tc_time_iso(start, a, sizeof a);
    tc_time_iso(end, b, sizeof b);
    tc_time_iso(inv->now, today, sizeof today);
    a[10] = b[10] = today[10] = '\0';
    now_col = timeline_col(inv->now, start, end);
    printf("%-28s %-*s%s\n", "", TIMELINE_WIDTH - 10, a, b);
    printf("%-28s %*s| today %s\n", "", now_col, "", today);
    for (i = 0; i < inv->n_tokens; i++) {
        const tokencert_token_inventory *t = &inv->tokens[i];
        printf("Token '%s'\n", t->token.label);
        for (j = 0; j < t->n_creds; j++) {
            const tokencert_credential *c = &t->creds[j];
            int first = 1;
            for (k = 0; k < c->n_certs; k++) {
                if (c->certs[k].status == TOKENCERT_CERT_UNREADABLE)
                    continue;
                print_bar(st, first ? c->name : "", &c->certs[k], bar_mark(t, c, k, inv->now),
                          start, end, now_col);
                first = 0;
            }
        }
    }
    printf("\n[===] validity of each certificate, '|' or '#' today, '<' '>' beyond the window; the "
           "certificates of one credential are stacked, so overlaps and gaps line up.\n");
}

static json_object *str_array(char **v, size_t n)
{
    json_object *a = json_object_new_array();
    size_t i;
    for (i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

static json_object *cert_json(const tokencert_cert *c)
{
    json_object *o = json_object_new_object();
    char t[32];
    int ok = c->status != TOKENCERT_CERT_UNREADABLE;

    json_object_object_add(o, "label", json_object_new_string(c->label));
    json_object_object_add(o, "id", json_object_new_string(c->id));
    json_object_object_add(o, "uri", json_object_new_string(c->uri));
    json_object_object_add(o, "status",
                           json_object_new_string(tokencert_cert_status_name(c->status)));
    json_object_object_add(o, "error", c->error ? json_object_new_string(c->error) : NULL);
    {
        const tokencert_state_generation *g = generation_of(c);
        json_object *go = NULL;
        if (g != NULL) {
            go = json_object_new_object();
            json_object_object_add(go, "credential", json_object_new_string(g->credential));
            json_object_object_add(go, "number", json_object_new_int64(g->number));
            json_object_object_add(
                go, "state", json_object_new_string(tokencert_generation_state_name(g->state)));
        }
        json_object_object_add(o, "generation", go);
    }
    json_object_object_add(o, "subject", ok ? json_object_new_string(c->subject) : NULL);
    json_object_object_add(o, "issuer", ok ? json_object_new_string(c->issuer) : NULL);
    json_object_object_add(o, "serial", ok ? json_object_new_string(c->serial) : NULL);
    tc_time_iso(c->not_before, t, sizeof t);
    json_object_object_add(o, "not_before", ok ? json_object_new_string(t) : NULL);
    tc_time_iso(c->not_after, t, sizeof t);
    json_object_object_add(o, "not_after", ok ? json_object_new_string(t) : NULL);
    json_object_object_add(o, "days_left", ok ? json_object_new_int64(c->days_left) : NULL);
    json_object_object_add(o, "sha1", json_object_new_string(c->sha1));
    json_object_object_add(o, "sha256", json_object_new_string(c->sha256));
    json_object_object_add(o, "key_type",
                           ok && c->key_type ? json_object_new_string(c->key_type) : NULL);
    json_object_object_add(o, "key_bits", ok ? json_object_new_int(c->key_bits) : NULL);
    json_object_object_add(o, "key_usage", str_array(c->key_usage, c->n_key_usage));
    json_object_object_add(o, "extended_key_usage",
                           str_array(c->ext_key_usage, c->n_ext_key_usage));
    json_object_object_add(o, "is_ca", json_object_new_boolean(c->is_ca));
    json_object_object_add(o, "self_signed", json_object_new_boolean(c->self_signed));
    return o;
}

static json_object *tristate(int v)
{
    return v < 0 ? NULL : json_object_new_boolean(v);
}

static json_object *key_json(const tokencert_key *k)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "label", json_object_new_string(k->label));
    json_object_object_add(o, "id", json_object_new_string(k->id));
    json_object_object_add(o, "uri", json_object_new_string(k->uri));
    json_object_object_add(o, "type", json_object_new_string(k->key_type));
    json_object_object_add(o, "bits", k->key_bits > 0 ? json_object_new_int(k->key_bits) : NULL);
    json_object_object_add(o, "private_key_seen", json_object_new_boolean(k->has_private));
    json_object_object_add(o, "public_key_seen", json_object_new_boolean(k->has_public));
    json_object_object_add(o, "sensitive", tristate(k->sensitive));
    json_object_object_add(o, "extractable", tristate(k->extractable));
    return o;
}

#define JSON_FLAGS                                                                                 \
    (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Prints text with every line after the first indented, to nest a serialised object. */
static void put_indented(const char *text, size_t len, const char *indent)
{
    size_t i;
    for (i = 0; i < len; i++) {
        putchar(text[i]);
        if (text[i] == '\n')
            fputs(indent, stdout);
    }
}

static json_object *credential_json(const tokencert_credential *c)
{
    json_object *co = json_object_new_object(), *certs = json_object_new_array();
    size_t k;

    json_object_object_add(co, "name", json_object_new_string(c->name));
    json_object_object_add(co, "kind", json_object_new_string(tokencert_cred_kind_name(c->kind)));
    json_object_object_add(co, "id", json_object_new_string(c->id));
    json_object_object_add(co, "key", c->key ? key_json(c->key) : NULL);
    for (k = 0; k < c->n_certs; k++)
        json_object_array_add(certs, cert_json(&c->certs[k]));
    json_object_object_add(co, "certificates", certs);
    return co;
}

/* Streamed one credential at a time: a tree of the whole inventory would cost several times the
 * inventory's own memory on a token with thousands of certificates. */
static void print_json(const tokencert_inventory *inv)
{
    char t[32];
    size_t i, j;

    tc_time_iso(inv->now, t, sizeof t);
    printf("{\n  \"version\": 1,\n  \"generated_at\": \"%s\",\n  \"expiring_days\": %lld,\n"
           "  \"expiring_seconds\": %lld,\n  \"tokens\": [",
           t, inv->expiring_seconds / 86400, inv->expiring_seconds);
    for (i = 0; i < inv->n_tokens; i++) {
        const tokencert_token_inventory *ti = &inv->tokens[i];
        json_object *to = json_object_new_object();
        const char *str;
        size_t len;

        json_object_object_add(to, "uri", json_object_new_string(ti->token.uri));
        json_object_object_add(to, "label", json_object_new_string(ti->token.label));
        json_object_object_add(to, "manufacturer", json_object_new_string(ti->token.manufacturer));
        json_object_object_add(to, "model", json_object_new_string(ti->token.model));
        json_object_object_add(to, "serial", json_object_new_string(ti->token.serial));
        json_object_object_add(to, "module", json_object_new_string(ti->token.module));
        json_object_object_add(to, "logged_in", json_object_new_boolean(ti->logged_in));
        json_object_object_add(to, "notes", str_array(ti->notes, ti->n_notes));
        str = json_object_to_json_string_ext(to, JSON_FLAGS);
        len = strlen(str);
        /* The token's own keys, then its credentials, before the object's closing brace. */
        fputs(i > 0 ? ",\n    " : "\n    ", stdout);
        put_indented(str, len >= 2 ? len - 2 : len, "    ");
        fputs(",\n      \"credentials\": [", stdout);
        json_object_put(to);
        for (j = 0; j < ti->n_creds; j++) {
            json_object *co = credential_json(&ti->creds[j]);
            str = json_object_to_json_string_ext(co, JSON_FLAGS);
            fputs(j > 0 ? ",\n        " : "\n        ", stdout);
            put_indented(str, strlen(str), "        ");
            json_object_put(co);
        }
        fputs(ti->n_creds > 0 ? "\n      ]\n    }" : "]\n    }", stdout);
    }
    fputs(inv->n_tokens > 0 ? "\n  ]\n}\n" : "]\n}\n", stdout);
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Whether the n bytes at v, percent-decoded as RFC 7512 allows, spell want. */
static int attr_value_is(const char *v, size_t n, const char *want)
{
    size_t i = 0, k = 0, len = strlen(want);

    while (i < n) {
        int ch = (unsigned char)v[i], hi, lo;
        if (ch == '%') {
            if (i + 2 >= n)
                return 0;
            hi = hex_digit(v[i + 1]);
            lo = hex_digit(v[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            ch = hi * 16 + lo;
            i += 3;
        } else {
            i++;
        }
        if (k >= len || ch != (unsigned char)want[k])
            return 0;
        k++;
    }
    return k == len;
}

/* Whether uri selects private-key objects (type=private) without logging in (no pin-source or
 * pin-value attribute, which would log in like --pin-source): such a search matches nothing on a
 * token that shows private keys only after login, whatever it holds. */
static int uri_needs_login(const char *uri)
{
    const char *p;
    size_t len;
    int is_private = 0, logs_in = 0;

    if (uri == NULL || strncasecmp(uri, "pkcs11:", 7) != 0)
        return 0;
    for (p = uri + 7; *p != '\0'; p += len + (p[len] != '\0')) {
        len = strcspn(p, ";?&");
        if (len > 5 && strncmp(p, "type=", 5) == 0)
            is_private = attr_value_is(p + 5, len - 5, "private");
        else if (strncmp(p, "pin-source=", 11) == 0 || strncmp(p, "pin-value=", 10) == 0)
            logs_in = 1;
    }
    return is_private && !logs_in;
}

int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"timeline", no_argument, NULL, 't'},
                                         {"expiring", required_argument, NULL, 'e'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    tokencert_ctx *ctx = NULL;
    tokencert_inventory *inv = NULL;
    tokencert_login_opts lo;
    tokencert_err err;
    style st;
    long long expiring = 30 * 86400LL;
    int opt, code, timeline = 0;

    memset(&c, 0, sizeof c);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        switch (opt) {
        case 'j':
            c.json = 1;
            break;
        case 't':
            timeline = 1;
            break;
        case 'e':
            expiring = tc_parse_duration(optarg);
            if (expiring == TC_DURATION_TOO_LONG)
                return cli_usage_error("list", "--expiring: '%s' is longer than 1000 years",
                                       optarg);
            if (expiring < 0)
                return cli_usage_error("list", "--expiring: '%s' is not a duration like 30d",
                                       optarg);
            break;
        case 'h':
            cli_print_help(help_list);
            return EXIT_OK;
        default:
            return cli_usage_error("list", "invalid option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("list", "at most one URI expected");
    if (c.json && timeline)
        return cli_usage_error("list", "--json and --timeline exclude each other");
    code = cli_open(&c, &ctx);
    if (code != EXIT_OK)
        return code;
    cli_login_opts(&c, &lo);
    err = tokencert_inventory_load(ctx, optind < argc ? argv[optind] : NULL, &lo, expiring, &inv);
    if (err != TC_OK) {
        code = cli_fail(ctx, err, "list");
        if (err == TC_ERR_NOT_FOUND && !c.login && c.pin_source == NULL &&
            uri_needs_login(optind < argc ? argv[optind] : NULL))
            fputs("tokencert: list: private keys are visible only after logging in to the token: "
                  "add --login (the PIN is asked for on a terminal) or --pin-source SOURCE "
                  "(file:PATH, env:VAR or fd:N)\n",
                  stderr);
        goto out;
    }
    cli_print_warnings(ctx);
    load_generations(ctx);
    st.colour = cli_stdout_is_tty() && getenv("NO_COLOR") == NULL;
    if (c.json)
        print_json(inv);
    else if (inv->n_tokens == 0)
        printf("No initialised token found.\n");
    else if (timeline)
        print_timeline(&st, inv);
    else
        print_table(&st, inv);
    code = EXIT_OK;
out:
    tokencert_records_clear(&list_rec);
    list_gens = NULL;
    list_n_gens = 0;
    tokencert_inventory_free(inv);
    tokencert_ctx_free(ctx);
    return code;
}
