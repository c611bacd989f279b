/* cmd_enroll.c — `tokencert enroll`: from an empty token to a working client certificate in one
 * command, with one login: key generated on the token, request signed by the token, submitted to
 * the CA (the embedded one, created on the way when there is none, or any configured CA), issued,
 * and the certificate (and the CA's) installed beside the key. The library's engine does it, as
 * generation 1 of the credential (tokencert_engine_enroll): renew, poll and status take it from
 * there. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "help_enroll.h"
#include "lifecycle.h"

#define MAX_SANS 64

static void print_enrolled(const tokencert_enrolled *e, const char *label)
{
    char na[32];

    tc_time_iso(e->not_after, na, sizeof na);
    printf("enrolled '%s' on token '%s'\n", label, e->token_label ? e->token_label : "?");
    printf("  key        %s, id %s\n", e->key_type ? e->key_type : "?",
           e->key_id ? e->key_id : "?");
    printf("  subject    %s\n", e->subject ? e->subject : "?");
    printf("  serial     %s\n", e->serial != NULL ? e->serial : "-");
    printf("  not after  %s (%ld days)\n", na, tc_days_between(tc_now(), e->not_after));
    if (strcmp(e->ca_protocol, "local") == 0)
        printf("  request    %s at the local CA in %s\n", e->ca_request_id ? e->ca_request_id : "-",
               e->ca_dir);
    else
        printf("  request    %s at CA '%s'\n", e->ca_request_id ? e->ca_request_id : "-", e->ca);
}

static void print_pending(const tokencert_enrolled *e, const char *label)
{
    const char *id = e->ca_request_id ? e->ca_request_id : "-";
    if (strcmp(e->ca_protocol, "local") == 0)
        printf("request %s is pending approval at the local CA (tokencert ca approve %s); the "
               "key '%s' stays on the token for the certificate to come\n",
               id, id, label);
    else
        printf("request %s is pending approval at CA '%s'; the key '%s' stays on the token for "
               "the certificate to come (tokencert poll installs it)\n",
               id, e->ca, label);
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
                                         LC_OPTIONS,
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_common c;
    lc l;
    tokencert_enrollment en;
    tokencert_enrolled res;
    tokencert_outcome outcome;
    tokencert_err err;
    const char *label = NULL, *subject = NULL, *type = NULL, *sans[MAX_SANS];
    const char *ca = NULL, *dir = NULL;
    size_t n_sans = 0;
    time_t not_before = 0;
    int opt, code, h;

    memset(&c, 0, sizeof c);
    memset(&l, 0, sizeof l);
    memset(&en, 0, sizeof en);
    memset(&res, 0, sizeof res);
    l.c = &c;
    l.wait_seconds = 60;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg))
            continue;
        h = lc_option(&l, "enroll", opt, optarg);
        if (h < 0)
            return EXIT_USAGE;
        if (h > 0)
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
            dir = optarg;
            break;
        case 'n':
            if (cli_parse_utc(optarg, &not_before) != 0)
                return cli_usage_error("enroll",
                                       "--not-before: '%s' is not a UTC date like "
                                       "2027-01-31T00:00:00Z",
                                       optarg);
            break;
        case 'h':
            cli_print_help(help_enroll);
            return EXIT_OK;
        default:
            return cli_usage_error("enroll", "invalid option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("enroll", "one TOKEN-URI expected");
    if (label == NULL || label[0] == '\0' || subject == NULL)
        return cli_usage_error("enroll", "--label NAME and --subject DN are required");
    /* The state store before the token: a store that cannot be written refuses the run while
     * the token is still untouched. */
    code = lc_open(&l, 1, 1);
    if (code != EXIT_OK)
        goto out;
    en.token_uri = argv[optind];
    en.label = label;
    en.subject = subject;
    en.san = sans;
    en.n_san = n_sans;
    en.key_type = type;
    en.ca = ca;
    en.ca_dir = dir;
    en.not_before = not_before;
    err = tokencert_engine_enroll(l.e, &en, &res, &outcome);
    lc_progress_end();
    if (!res.resumed && err == TC_OK)
        print_enrolled(&res, label);
    else if (!res.resumed && err == TC_ERR_PENDING)
        print_pending(&res, label);
    code = cli_exit_code(err);
out:
    tokencert_enrolled_clear(&res);
    lc_close(&l);
    return code;
}
