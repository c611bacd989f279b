/* cmd_history.c — `tokencert history [NAME] [--json]`: the append-only record of what happened,
 * when, and with what result. Never a secret. */
#include <string.h>

#include "common.h"
#include "help_history.h"
#include "lifecycle.h"

static void jstr(json_object *o, const char *k, const char *v)
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

static json_object *request_json(const tokencert_state_request *q)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(q->id));
    jstr(o, "credential", q->credential);
    jstr(o, "state", tokencert_request_state_name(q->state));
    jstr(o, "failed_at",
         q->state == TOKENCERT_RS_FAILED ? tokencert_request_state_name(q->failed_at) : NULL);
    jstr(o, "ca", q->ca);
    jstr(o, "ca_request_id", q->ca_request_id);
    jstr(o, "token_serial", q->token_serial);
    jstr(o, "key_id", q->key_id);
    json_object_object_add(o, "key_reused", json_object_new_boolean(q->key_reused));
    jstr(o, "key_type", q->key_type);
    jstr(o, "subject", q->subject);
    jstr(o, "san", q->san);
    json_object_object_add(o, "certificate", json_object_new_boolean(q->cert != NULL));
    jtime(o, "created", q->created);
    jtime(o, "updated", q->updated);
    jtime(o, "next_poll", q->next_poll);
    json_object_object_add(o, "attempts", json_object_new_int(q->attempts));
    jstr(o, "last_error", q->last_error);
    return o;
}

static json_object *generation_json(const tokencert_state_generation *g)
{
    json_object *o = json_object_new_object();
    jstr(o, "credential", g->credential);
    json_object_object_add(o, "generation", json_object_new_int64(g->number));
    jstr(o, "state", tokencert_generation_state_name(g->state));
    jstr(o, "token_serial", g->token_serial);
    jstr(o, "key_id", g->key_id);
    jstr(o, "sha256", g->cert_sha256);
    jstr(o, "serial", g->serial);
    jstr(o, "subject", g->subject);
    jstr(o, "issuer", g->issuer);
    jtime(o, "not_before", g->not_before);
    jtime(o, "not_after", g->not_after);
    jtime(o, "installed", g->installed);
    jtime(o, "superseded", g->superseded);
    jtime(o, "pruned", g->pruned);
    json_object_object_add(o, "request",
                           g->request != 0 ? json_object_new_int64(g->request) : NULL);
    return o;
}

/* The history document (docs/json-schema.md): the events, and every request and generation the
 * store holds for the credential (or all), pruned and abandoned ones included. */
static void history_json(const tokencert_records *r)
{
    json_object *doc = json_object_new_object(), *arr = json_object_new_array();
    const tokencert_state_event *ev = r->events;
    size_t i;

    json_object_object_add(doc, "version", json_object_new_int(1));
    for (i = 0; i < r->n_events; i++) {
        json_object *o = json_object_new_object();
        jtime(o, "time", ev[i].time);
        jstr(o, "credential", ev[i].credential);
        jstr(o, "event", ev[i].event);
        jstr(o, "result", ev[i].result);
        jstr(o, "detail", ev[i].detail);
        json_object_array_add(arr, o);
    }
    json_object_object_add(doc, "events", arr);
    arr = json_object_new_array();
    for (i = 0; i < r->n_requests; i++)
        json_object_array_add(arr, request_json(&r->requests[i]));
    json_object_object_add(doc, "requests", arr);
    arr = json_object_new_array();
    for (i = 0; i < r->n_generations; i++)
        json_object_array_add(arr, generation_json(&r->generations[i]));
    json_object_object_add(doc, "generations", arr);
    printf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(doc);
}

int cmd_history(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, LC_OPTIONS, CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    int opt, code = EXIT_OK, h, json = 0;
    size_t i;
    tokencert_records rec;
    const char *name;
    char when[32];

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    memset(&rec, 0, sizeof rec);
    l.c = &c;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "history", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
            continue;
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help(help_history);
            return EXIT_OK;
        default:
            return cli_usage_error("history", "invalid option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("history", "at most one credential name");
    name = argc - optind == 1 ? argv[optind] : NULL;
    code = lc_open(&l, 0, 0);
    if (code != EXIT_OK)
        goto out;
    if (name != NULL && lc_find(&l, name, &i) != EXIT_OK) {
        code = EXIT_NOT_FOUND;
        goto out;
    }
    code = cli_exit_code(tokencert_engine_records(
        l.e, name,
        TOKENCERT_RECORDS_EVENTS |
            (json ? TOKENCERT_RECORDS_REQUESTS | TOKENCERT_RECORDS_GENERATIONS : 0),
        &rec));
    if (code != EXIT_OK)
        goto out;
    if (json) {
        history_json(&rec);
    } else if (rec.n_events == 0) {
        printf("no history yet\n");
    } else {
        const tokencert_state_event *ev = rec.events;
        for (i = 0; i < rec.n_events; i++) {
            tc_time_iso(ev[i].time, when, sizeof when);
            printf("%s  %-12s %-16s %-8s %s\n", when, ev[i].credential ? ev[i].credential : "-",
                   ev[i].event, ev[i].result, ev[i].detail ? ev[i].detail : "");
        }
    }
out:
    tokencert_records_clear(&rec);
    lc_close(&l);
    return code;
}
