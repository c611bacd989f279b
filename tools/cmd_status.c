/* cmd_status.c — `tokencert status [NAME] [--json]`: per credential the active certificate and
 * days left, when renewal is due, the request in progress, the last error and the next action. */
#include <string.h>

#include "common.h"
#include "help_status.h"
#include "lifecycle.h"

static void print_text(const tokencert_status *s)
{
    const tokencert_engine_credential *c = s->cred;
    const char *foreign = s->other_serial, *home = s->home_serial;
    int present = s->token_present;
    time_t now = tc_now();
    char a[32], b[32];
    size_t i;

    printf("%s\n", c->name);
    printf("  token        %s (label %s)%s%s%s%s%s\n", c->token_uri, c->label,
           present ? "" : ", not present", foreign != NULL ? ", serial " : "",
           foreign != NULL ? foreign : "", foreign != NULL ? " present, not serial " : "",
           foreign != NULL ? home : "");
    printf("  CA           %s (%s%s)\n", c->ca, c->ca_protocol,
           c->ca_manual ? ", manual approval" : "");
    if (s->deferred_since != 0) {
        tc_time_iso(s->deferred_since, a, sizeof a);
        printf("  deferred     since %s: the credential's token was not present at the last run\n",
               a);
    }
    if (s->has_active) {
        tc_time_iso(s->active.not_after, a, sizeof a);
        tc_time_iso(s->renewal_due, b, sizeof b);
        printf("  active       serial %s, valid until %s (%ld days left)%s%s%s\n",
               s->active.serial ? s->active.serial : "?", a, s->active.days_left,
               s->active.on_token ? "" : ", on token serial ", s->active.on_token ? "" : home,
               s->active.on_token ? "" : " (not present)");
        printf("  renewal due  %s%s\n", b, s->due ? " (due now)" : "");
        if (s->active.cert_uri != NULL)
            printf("  certificate  %s\n", s->active.cert_uri);
        if (s->active.key_uri != NULL)
            printf("  key          %s\n", s->active.key_uri);
    } else {
        printf("  active       none\n");
    }
    for (i = 0; i < s->n_gens; i++) {
        const tokencert_status_generation *g = &s->gens[i];
        if (g->state != TOKENCERT_GEN_SUPERSEDED)
            continue;
        tc_time_iso(g->not_after, a, sizeof a);
        printf("  superseded   generation %lld, serial %s, until %s%s\n", g->number,
               g->serial ? g->serial : "?", a,
               !g->on_token          ? " (not on the token)"
               : g->not_after <= now ? " (expired)"
                                     : "");
    }
    if (s->has_request) {
        tc_time_iso(s->request.since, a, sizeof a);
        tc_time_iso(s->request.next_poll, b, sizeof b);
        printf("  request      %lld %s at CA '%s'%s%s, since %s%s%s\n", s->request.id,
               tokencert_request_state_name(s->request.state), c->ca,
               s->request.ca_request_id ? ", CA request " : "",
               s->request.ca_request_id ? s->request.ca_request_id : "", a,
               s->request.next_poll ? ", next poll " : "", s->request.next_poll ? b : "");
    }
    if (s->has_rejected) {
        tc_time_iso(s->rejected.on, a, sizeof a);
        printf("  rejected     request %lld on %s: %s\n", s->rejected.id, a,
               s->rejected.reason ? s->rejected.reason : "no reason given");
    }
    if (s->last_error != NULL)
        printf("  last error   %s\n", s->last_error);
    printf("  next         %s\n", s->next_action);
}

static void jset(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v != NULL ? json_object_new_string(v) : NULL);
}

static void jtime(json_object *o, const char *k, time_t t)
{
    char iso[32];
    if (t == 0) {
        json_object_object_add(o, k, NULL);
        return;
    }
    tc_time_iso(t, iso, sizeof iso);
    json_object_object_add(o, k, json_object_new_string(iso));
}

/* The document docs/json-schema.md describes. */
static json_object *status_json(const tokencert_status *s)
{
    const tokencert_engine_credential *c = s->cred;
    json_object *o = json_object_new_object(), *gens;
    size_t i;

    jset(o, "name", c->name);
    jset(o, "token", c->token_uri);
    jset(o, "label", c->label);
    json_object_object_add(o, "token_present",
                           json_object_new_boolean(s->token_present && s->other_serial == NULL));
    jset(o, "token_serial", s->home_serial);
    jset(o, "other_token_serial", s->other_serial);
    jtime(o, "deferred_since", s->deferred_since);
    jset(o, "ca", c->ca);
    jset(o, "ca_protocol", c->ca_protocol);
    if (s->has_active) {
        json_object *ac = json_object_new_object();
        jset(ac, "serial", s->active.serial);
        jset(ac, "sha256", s->active.sha256);
        jset(ac, "subject", s->active.subject);
        jtime(ac, "not_before", s->active.not_before);
        jtime(ac, "not_after", s->active.not_after);
        json_object_object_add(ac, "days_left", json_object_new_int64(s->active.days_left));
        json_object_object_add(
            ac, "generation",
            s->active.generation > 0 ? json_object_new_int64(s->active.generation) : NULL);
        json_object_object_add(ac, "on_token", json_object_new_boolean(s->active.on_token));
        jset(ac, "cert_uri", s->active.cert_uri);
        jset(ac, "key_uri", s->active.key_uri);
        json_object_object_add(o, "active", ac);
        jtime(o, "renewal_due", s->renewal_due);
    } else {
        json_object_object_add(o, "active", NULL);
        json_object_object_add(o, "renewal_due", NULL);
    }
    json_object_object_add(o, "due", json_object_new_boolean(s->due));
    gens = json_object_new_array();
    for (i = 0; i < s->n_gens; i++) {
        json_object *g = json_object_new_object();
        json_object_object_add(g, "generation", json_object_new_int64(s->gens[i].number));
        jset(g, "state", tokencert_generation_state_name(s->gens[i].state));
        jset(g, "serial", s->gens[i].serial);
        jset(g, "sha256", s->gens[i].sha256);
        jset(g, "key_id", s->gens[i].key_id);
        jtime(g, "not_after", s->gens[i].not_after);
        json_object_object_add(g, "on_token", json_object_new_boolean(s->gens[i].on_token));
        json_object_array_add(gens, g);
    }
    json_object_object_add(o, "generations", gens);
    if (s->has_request) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "id", json_object_new_int64(s->request.id));
        jset(p, "state", tokencert_request_state_name(s->request.state));
        jset(p, "ca_request_id", s->request.ca_request_id);
        jtime(p, "since", s->request.since);
        jtime(p, "next_poll", s->request.next_poll);
        json_object_object_add(p, "attempts", json_object_new_int(s->request.attempts));
        jset(p, "last_error", s->request.last_error);
        json_object_object_add(o, "request", p);
    } else {
        json_object_object_add(o, "request", NULL);
    }
    if (s->has_rejected) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "id", json_object_new_int64(s->rejected.id));
        jtime(p, "on", s->rejected.on);
        jset(p, "reason", s->rejected.reason);
        json_object_object_add(o, "rejected", p);
    } else {
        json_object_object_add(o, "rejected", NULL);
    }
    jset(o, "last_result", s->last_result);
    jset(o, "last_error", s->last_error);
    jset(o, "next_action", s->next_action);
    return o;
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, LC_OPTIONS, CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    int opt, code = EXIT_OK, h, json = 0, rc;
    size_t i, shown = 0;
    json_object *arr = NULL;

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    l.c = &c;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "status", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
            continue;
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help(help_status);
            return EXIT_OK;
        default:
            return cli_usage_error("status", "invalid option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("status", "at most one credential name");
    code = lc_open(&l, 0, 0);
    if (code != EXIT_OK)
        goto out;
    if (argc - optind == 1 && lc_find(&l, argv[optind], &i) != EXIT_OK) {
        code = EXIT_NOT_FOUND;
        goto out;
    }
    if (json)
        arr = json_object_new_array();
    for (i = 0; i < lc_count(&l); i++) {
        tokencert_status st;
        if (argc - optind == 1 && strcmp(lc_cred_at(&l, i)->name, argv[optind]) != 0)
            continue;
        if (!json && shown > 0)
            printf("\n");
        rc = cli_exit_code(tokencert_engine_status(l.e, i, &st));
        if (rc != EXIT_OK) {
            code = rc;
        } else {
            if (json)
                json_object_array_add(arr, status_json(&st));
            else
                print_text(&st);
            tokencert_status_clear(&st);
        }
        shown++;
    }
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    } else if (shown == 0) {
        printf("no credentials: none is configured and none was enrolled\n");
    }
out:
    lc_close(&l);
    return code;
}
