/* test_config.c — the configuration file: defaults without any file, the user's entries replacing
 * the system's, every problem reported with its file and line and sorted by file (in the order
 * read) then line, the cross-checks (unknown CA) run whatever else is wrong, one error for one
 * mistake in a CA's protocol and authentication, secrets refused without being repeated, files
 * others can write (or that belong to another user) refused, included files found and checked
 * where libconfig reads them, and a --config file that cannot be read told apart (TC_ERR_IO).
 * Every test works in its own directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokencert.h"

typedef struct {
    tokencert_ctx *ctx;
    char dir[64];          /* the test's own directory */
    char sys[128];         /* DIR/etc/tokencert.conf: the system file */
    char user[128];        /* DIR/xdg/tokencert/tokencert.conf: the user's */
    tokencert_config *cfg; /* freed by teardown */
    tokencert_config_error *errs;
    size_t n_errs;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char p[160];

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tc-config-XXXXXX");
    if (mkdtemp(fx->dir) == NULL || tokencert_ctx_new(&fx->ctx) != TC_OK) {
        free(fx);
        return -1;
    }
    snprintf(p, sizeof p, "%s/etc", fx->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/xdg", fx->dir);
    mkdir(p, 0755);
    setenv("XDG_CONFIG_HOME", p, 1);
    snprintf(p, sizeof p, "%s/xdg/tokencert", fx->dir);
    mkdir(p, 0755);
    snprintf(fx->sys, sizeof fx->sys, "%s/etc/tokencert.conf", fx->dir);
    snprintf(fx->user, sizeof fx->user, "%s/xdg/tokencert/tokencert.conf", fx->dir);
    setenv("TOKENCERT_CONFIG_SYSTEM", fx->sys, 1);
    *state = fx;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *fx = *state;

    tokencert_config_free(fx->cfg);
    tokencert_config_errors_free(fx->errs, fx->n_errs);
    tokencert_ctx_free(fx->ctx);
    nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* DIR/name, in a static buffer (one at a time). */
static const char *in_dir(const fixture *fx, const char *name)
{
    static char p[192];
    snprintf(p, sizeof p, "%s/%s", fx->dir, name);
    return p;
}

static tokencert_err load(fixture *fx, const char *path)
{
    tokencert_config_free(fx->cfg);
    tokencert_config_errors_free(fx->errs, fx->n_errs);
    fx->cfg = NULL;
    fx->errs = NULL;
    fx->n_errs = 0;
    return tokencert_config_load(fx->ctx, path, &fx->cfg, &fx->errs, &fx->n_errs);
}

/* Error i is in file at line and its message contains needle. */
static void assert_error(const fixture *fx, size_t i, const char *file, int line,
                         const char *needle)
{
    assert_true(i < fx->n_errs);
    if (file != NULL) {
        assert_non_null(fx->errs[i].file);
        assert_string_equal(fx->errs[i].file, file);
    }
    assert_int_equal(fx->errs[i].line, line);
    if (strstr(fx->errs[i].message, needle) == NULL)
        fail_msg("error %zu: \"%s\" does not contain \"%s\"", i, fx->errs[i].message, needle);
}

static size_t count_containing(const fixture *fx, const char *needle)
{
    size_t i, n = 0;
    for (i = 0; i < fx->n_errs; i++)
        n += strstr(fx->errs[i].message, needle) != NULL;
    return n;
}

/* ---- no file, defaults, durations ------------------------------------------------------ */

static void no_file_is_the_defaults(void **state)
{
    fixture *fx = *state;

    assert_int_equal(load(fx, NULL), TC_OK);
    assert_non_null(fx->cfg);
    assert_int_equal(fx->cfg->n_files, 0);
    assert_int_equal(fx->cfg->n_cas, 0);
    assert_int_equal(fx->cfg->n_creds, 0);
    assert_int_equal(fx->cfg->renew_before, 30LL * 86400);
    assert_true(fx->cfg->renew_fraction > 0.0999 && fx->cfg->renew_fraction < 0.1001);
    assert_int_equal(fx->cfg->grace, 30LL * 86400);
    assert_null(fx->cfg->state_dir);
}

static void durations_and_per_credential_values(void **state)
{
    fixture *fx = *state;
    const tokencert_config_credential *c;
    const tokencert_config_ca *ca;

    write_file(fx->sys,
               "defaults = { renew_before = \"12h\"; grace = \"0\"; renew_fraction = 0.25; };\n"
               "cas = ( { name = \"m\"; protocol = \"manual\"; dir = \"/srv/m\";\n"
               "          approval_time = \"90m\"; } );\n"
               "credentials = ( { name = \"a\"; token = \"pkcs11:token=t\"; ca = \"m\";\n"
               "                  renew_before = \"2w\"; key = \"reuse\";\n"
               "                  hooks = { after_renewal = [ \"/bin/true\", \"x y\" ]; }; },\n"
               "                { name = \"b\"; token = \"pkcs11:token=t\"; } );\n",
               0644);
    assert_int_equal(load(fx, NULL), TC_OK);
    assert_int_equal(fx->cfg->renew_before, 12LL * 3600);
    assert_int_equal(fx->cfg->grace, 0);
    assert_true(fx->cfg->renew_fraction > 0.2499 && fx->cfg->renew_fraction < 0.2501);
    ca = tokencert_config_find_ca(fx->cfg, "m");
    assert_non_null(ca);
    assert_int_equal(ca->approval_time, 90LL * 60);
    c = tokencert_config_find_credential(fx->cfg, "a");
    assert_non_null(c);
    assert_int_equal(c->renew_before, 14LL * 86400);
    assert_true(c->renew_fraction < 0); /* the default applies */
    assert_int_equal(c->reuse_key, 1);
    assert_string_equal(c->label, "a");
    assert_string_equal(c->ca, "m");
    assert_non_null(c->hook_after_renewal);
    assert_string_equal(c->hook_after_renewal[0], "/bin/true");
    assert_string_equal(c->hook_after_renewal[1], "x y"); /* an argument, never split */
    assert_null(c->hook_after_renewal[2]);
    c = tokencert_config_find_credential(fx->cfg, "b");
    assert_non_null(c);
    assert_null(c->ca); /* the embedded CA */
    assert_int_equal(c->renew_before, -1);
    assert_int_equal(c->reuse_key, 0);
}

static void zero_renew_before_refused(void **state)
{
    fixture *fx = *state;

    write_file(in_dir(fx, "z.conf"),
               "credentials = ( { name = \"a\"; token = \"pkcs11:token=t\";\n"
               "  renew_before = \"0\"; } );\n",
               0644);
    assert_int_equal(load(fx, in_dir(fx, "z.conf")), TC_ERR_BAD_DATA);
    assert_null(fx->cfg);
    assert_int_equal(fx->n_errs, 1);
    assert_error(fx, 0, in_dir(fx, "z.conf"), 2, "renew_before must be longer than 0");
}

/* ---- system and user files ------------------------------------------------------------- */

static void user_replaces_system_by_name(void **state)
{
    fixture *fx = *state;
    const tokencert_config_credential *c;

    write_file(fx->sys,
               "defaults = { renew_before = \"40d\"; grace = \"10d\"; };\n"
               "credentials = (\n"
               "  { name = \"office\"; token = \"pkcs11:token=system\"; },\n"
               "  { name = \"lab\"; token = \"pkcs11:token=lab\"; }\n"
               ");\n",
               0644);
    write_file(fx->user,
               "defaults = { grace = \"5d\"; };\n"
               "credentials = ( { name = \"office\"; token = \"pkcs11:token=mine\"; } );\n",
               0644);
    assert_int_equal(load(fx, NULL), TC_OK);
    assert_int_equal(fx->cfg->n_files, 2);
    assert_string_equal(fx->cfg->files[0], fx->sys);
    assert_string_equal(fx->cfg->files[1], fx->user);
    assert_int_equal(fx->cfg->n_creds, 2);
    c = tokencert_config_find_credential(fx->cfg, "office");
    assert_non_null(c);
    assert_string_equal(c->token, "pkcs11:token=mine");
    assert_string_equal(c->file, fx->user);
    c = tokencert_config_find_credential(fx->cfg, "lab");
    assert_non_null(c);
    assert_string_equal(c->file, fx->sys);
    /* Defaults key by key: the system's renew_before, the user's grace. */
    assert_int_equal(fx->cfg->renew_before, 40LL * 86400);
    assert_int_equal(fx->cfg->grace, 5LL * 86400);
}

/* Only a user file: it is read (the system file's stat, absent, matches nothing). */
static void user_file_alone(void **state)
{
    fixture *fx = *state;

    write_file(fx->user, "credentials = ( { name = \"o\"; token = \"pkcs11:token=t\"; } );\n",
               0644);
    assert_int_equal(load(fx, NULL), TC_OK);
    assert_int_equal(fx->cfg->n_files, 1);
    assert_string_equal(fx->cfg->files[0], fx->user);
    assert_int_equal(fx->cfg->n_creds, 1);
}

/* One file that is both (root with XDG_CONFIG_HOME=/etc) is read once: no "declared twice". */
static void same_file_read_once(void **state)
{
    fixture *fx = *state;

    write_file(fx->user, "credentials = ( { name = \"o\"; token = \"pkcs11:token=t\"; } );\n",
               0644);
    setenv("TOKENCERT_CONFIG_SYSTEM", fx->user, 1);
    assert_int_equal(load(fx, NULL), TC_OK);
    assert_int_equal(fx->cfg->n_files, 1);
    assert_int_equal(fx->cfg->n_creds, 1);
}

/* ---- errors: all of them, in order ----------------------------------------------------- */

/* The unknown CAs are found by the cross-check after both files are read, after the user's
 * file's own errors, yet reported in their place: the system file first (the order read), then
 * by line. */
static void errors_sorted_by_file_then_line(void **state)
{
    fixture *fx = *state;

    write_file(fx->sys,
               "# system\n"
               "credentials = (\n"
               "  { name = \"a\"; token = \"pkcs11:token=t\"; ca = \"nowhere\"; },\n"
               "  { name = \"b\"; token = \"pkcs11:token=t\";\n"
               "    ca = \"elsewhere\"; }\n"
               ");\n",
               0644);
    write_file(fx->user,
               "credentials = ( { name = \"c\"; token = \"pkcs11:token=t\";\n"
               "  renew_before = \"soon\"; key = \"x\"; } );\n",
               0644);
    assert_int_equal(load(fx, NULL), TC_ERR_BAD_DATA);
    assert_null(fx->cfg);
    assert_int_equal(fx->n_errs, 4);
    assert_error(fx, 0, fx->sys, 3, "credential 'a': unknown CA 'nowhere'");
    assert_error(fx, 1, fx->sys, 5, "credential 'b': unknown CA 'elsewhere'");
    assert_error(fx, 2, fx->user, 2, "credential 'c': renew_before must be a duration");
    assert_error(fx, 3, fx->user, 2, "credential 'c': key must be");
    /* The context's error names the first, with file and line. */
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "tokencert.conf:3: credential 'a'"));
}

/* Three mistakes in one file, one of them a secret: three errors, and the value not repeated. */
static void three_errors_all_reported(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "bad.conf");
    size_t i;

    write_file(f,
               "# line 1\n"
               "credentials = (\n"
               "  { name = \"office\"; token = \"pkcs11:token=x\"; ca = \"kv-nowhere\";\n"
               "    subject = \"CN=1234567890\";\n"
               "    renew_before = \"soon\";\n"
               "    pin = \"4711-secret\"; }\n"
               ");\n",
               0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 3);
    assert_error(fx, 0, f, 3, "unknown CA 'kv-nowhere' (known: local)");
    assert_error(fx, 1, f, 5, "renew_before");
    assert_error(fx, 2, f, 6, "'pin': secrets are not stored in the configuration");
    assert_error(fx, 2, f, 6, "pin_source");
    for (i = 0; i < fx->n_errs; i++)
        assert_null(strstr(fx->errs[i].message, "4711"));
}

static void syntax_error_has_file_and_line(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "syntax.conf");

    write_file(f, "cas = (\n  { name = \"x\"; protocol = ; }\n);\n", 0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 1);
    assert_error(fx, 0, f, 2, "syntax error");
}

/* A CA whose own settings are wrong still exists for the cross-check: a credential naming it is
 * not also told the CA is unknown; one naming nothing declared is. */
static void cross_check_runs_despite_other_errors(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "x.conf");

    write_file(f,
               "cas = ( { name = \"est1\"; protocol = \"est\"; url = \"ftp://x\"; } );\n"
               "credentials = (\n"
               "  { name = \"a\"; token = \"pkcs11:token=t\"; ca = \"est1\"; },\n"
               "  { name = \"b\"; token = \"pkcs11:token=t\"; ca = \"est2\"; }\n"
               ");\n",
               0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 2);
    assert_error(fx, 0, f, 1, "url must be https://");
    assert_error(fx, 1, f, 4, "credential 'b': unknown CA 'est2' (known: local, est1)");
}

static void local_is_always_known(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "l.conf");

    write_file(f,
               "credentials = ( { name = \"a\"; token = \"pkcs11:token=t\"; ca = \"local\"; } );\n",
               0644);
    assert_int_equal(load(fx, f), TC_OK);
    assert_int_equal(fx->cfg->n_cas, 0);
    assert_null(fx->cfg->creds[0].ca);
}

static void duplicate_names_point_at_the_first(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "d.conf");
    char want[256];

    write_file(f,
               "credentials = (\n"
               "  { name = \"x\"; token = \"pkcs11:token=a\"; },\n"
               "  { name = \"x\"; token = \"pkcs11:token=b\"; }\n"
               ");\n",
               0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 1);
    snprintf(want, sizeof want, "declared twice (first at %s:2)", f);
    assert_error(fx, 0, f, 3, want);
}

/* ---- one error for one mistake --------------------------------------------------------- */

static void auth_one_error_per_mistake(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "auth.conf");

    write_file(f,
               "cas = (\n"
               /* 2: an auth that is wrong: user is not judged against it */
               "  { name = \"a\"; protocol = \"est\"; url = \"https://x\"; auth = \"basicx\";\n"
               "    user = \"u\"; secret_source = \"env:P\"; },\n"
               /* 4: basic without a secret source: one error */
               "  { name = \"b\"; protocol = \"est\"; url = \"https://x\"; auth = \"basic\";\n"
               "    user = \"u\"; },\n"
               /* 6: basic with a malformed source: reported there, not again as missing */
               "  { name = \"c\"; protocol = \"est\"; url = \"https://x\"; auth = \"basic\";\n"
               "    user = \"u\"; secret_source = \"hunter2\"; },\n"
               /* 8: the embedded CA is not spoken to: auth and user mean nothing there */
               "  { name = \"d\"; protocol = \"local\"; auth = \"basic\"; user = \"u\"; },\n"
               /* 9: an unknown protocol: an https url is not judged against it */
               "  { name = \"e\"; protocol = \"bogus\"; url = \"https://x\"; },\n"
               /* 10: auth = "none" says what is so, even for a manual CA */
               "  { name = \"f\"; protocol = \"manual\"; dir = \"/srv/f\"; auth = \"none\"; }\n"
               ");\n",
               0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 6);
    assert_error(fx, 0, f, 2, "CA 'a': auth must be");
    assert_error(fx, 1, f, 4, "CA 'b': auth = \"basic\" needs user and secret_source");
    assert_error(fx, 2, f, 7, "CA 'c': secret_source must be file:PATH");
    assert_error(fx, 3, f, 8, "CA 'd': auth is not used with protocol \"local\"");
    assert_error(fx, 4, f, 8, "CA 'd': user is not used with protocol \"local\"");
    assert_error(fx, 5, f, 9, "CA 'e': unknown protocol 'bogus'");
    assert_int_equal(count_containing(fx, "hunter2"), 0);
}

/* cfssl speaks HMAC and nothing else; HMAC is cfssl's; an HMAC key has to come from somewhere. */
static void cfssl_auth(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "cfssl.conf");
    const tokencert_config_ca *ca;

    write_file(f,
               "cas = (\n"
               /* 2: fine: HMAC with the key's source */
               "  { name = \"ok\"; protocol = \"cfssl\"; url = \"https://x\"; auth = \"hmac\";\n"
               "    secret_source = \"file:/etc/tokencert/cfssl.key\"; },\n"
               /* 4: fine: no authentication */
               "  { name = \"open\"; protocol = \"cfssl\"; url = \"https://x\"; },\n"
               /* 5: HMAC without a source */
               "  { name = \"a\"; protocol = \"cfssl\"; url = \"https://x\"; auth = \"hmac\"; },\n"
               /* 6: cfssl with basic */
               "  { name = \"b\"; protocol = \"cfssl\"; url = \"https://x\"; auth = \"basic\";\n"
               "    user = \"u\"; secret_source = \"env:P\"; },\n"
               /* 8: HMAC with another protocol */
               "  { name = \"c\"; protocol = \"est\"; url = \"https://x\"; auth = \"hmac\";\n"
               "    secret_source = \"env:P\"; },\n"
               /* 10: cfssl over plain http */
               "  { name = \"d\"; protocol = \"cfssl\"; url = \"http://x\"; }\n"
               ");\n",
               0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 4);
    assert_error(fx, 0, f, 5, "CA 'a': auth = \"hmac\" needs secret_source");
    assert_error(fx, 1, f, 6, "CA 'b': protocol \"cfssl\" takes auth = \"none\" or \"hmac\"");
    assert_error(fx, 2, f, 8, "CA 'c': auth = \"hmac\" is only used with protocol \"cfssl\"");
    assert_error(fx, 3, f, 10, "CA 'd': url must be https://");

    write_file(f,
               "cas = ( { name = \"ok\"; protocol = \"cfssl\"; url = \"https://x\";\n"
               "          auth = \"hmac\"; secret_source = \"env:CFSSL_KEY\"; } );\n",
               0644);
    assert_int_equal(load(fx, f), TC_OK);
    ca = tokencert_config_find_ca(fx->cfg, "ok");
    assert_non_null(ca);
    assert_string_equal(ca->protocol, "cfssl");
    assert_string_equal(ca->auth, "hmac");
    assert_string_equal(ca->secret_source, "env:CFSSL_KEY");
}

/* ---- secrets --------------------------------------------------------------------------- */

static void secrets_refused_never_repeated(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "s.conf");
    size_t i;

    write_file(f,
               "password = \"s3cr3t-1\";\n"
               "cas = ( { name = \"e\"; protocol = \"est\"; url = \"https://x\";\n"
               "          client_secret = \"s3cr3t-2\"; } );\n"
               "credentials = ( { name = \"a\"; token = \"pkcs11:token=t\";\n"
               "  token_pin = \"s3cr3t-3\"; PIN = 1234;\n"
               "  pin_source = \"s3cr3t-4\"; } );\n",
               0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 5);
    assert_error(fx, 0, f, 1, "'password': secrets are not stored");
    assert_error(fx, 1, f, 3, "'client_secret': secrets are not stored");
    assert_error(fx, 1, f, 3, "secret_source");
    assert_error(fx, 2, f, 5, "'token_pin': secrets are not stored");
    assert_error(fx, 3, f, 5, "'PIN': secrets are not stored");
    assert_error(fx, 4, f, 6, "pin_source must be file:PATH");
    for (i = 0; i < fx->n_errs; i++)
        assert_null(strstr(fx->errs[i].message, "s3cr3t"));
}

/* A misspelt key gets its likely name, secret-sounding or not; reuse_key gets the key policy. */
static void typos_get_suggestions(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "t.conf");

    write_file(f,
               "credentials = ( { name = \"a\"; token = \"pkcs11:token=t\";\n"
               "  renew_befor = \"30d\";\n"
               "  pin_sorce = \"env:P\";\n"
               "  reuse_key = true; } );\n",
               0644);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 3);
    assert_error(fx, 0, f, 2, "did you mean 'renew_before'");
    assert_error(fx, 1, f, 3, "did you mean 'pin_source'");
    assert_error(fx, 2, f, 4, "key = \"reuse\"");
}

/* ---- who may write the file ------------------------------------------------------------ */

static void world_writable_refused(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "open.conf");
    char want[256];

    write_file(f, "credentials = ();\n", 0666);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 1);
    snprintf(want, sizeof want, "%s is writable by others: refused", f);
    assert_error(fx, 0, f, 0, want);

    /* The system file too: a file is not trusted for having been found rather than named. */
    write_file(fx->sys, "credentials = ();\n", 0646);
    assert_int_equal(load(fx, NULL), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 1);
    assert_error(fx, 0, fx->sys, 0, "writable by others");
}

static void other_owner_refused(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "theirs.conf");

    if (geteuid() != 0)
        skip(); /* only root can give a file away */
    write_file(f, "credentials = ();\n", 0644);
    assert_int_equal(chown(f, 65534, 65534), 0);
    assert_int_equal(load(fx, f), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 1);
    assert_error(fx, 0, f, 0, "belongs to another user (uid 65534): refused");
    /* root's own files, and anyone's file owned by root, are fine */
    assert_int_equal(chown(f, 0, 0), 0);
    assert_int_equal(load(fx, f), TC_OK);
}

/* libconfig finds a relative @include in the including file's directory, whatever the current
 * directory: the checks (and the messages) look there too. */
static void include_checked_where_it_is_read(void **state)
{
    fixture *fx = *state;
    char main_conf[192], inc[192], cwd[512];

    snprintf(main_conf, sizeof main_conf, "%s/main.conf", fx->dir);
    snprintf(inc, sizeof inc, "%s/cas.conf", fx->dir);
    write_file(main_conf,
               "@include \"cas.conf\"\n"
               "credentials = ( { name = \"a\"; token = \"pkcs11:token=t\"; ca = \"inc\"; } );\n",
               0644);
    write_file(inc, "cas = ( { name = \"inc\"; protocol = \"local\"; } );\n", 0644);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);

    assert_int_equal(load(fx, main_conf), TC_OK);
    assert_int_equal(fx->cfg->n_files, 2);
    assert_string_equal(fx->cfg->files[0], main_conf);
    assert_string_equal(fx->cfg->files[1], inc);
    assert_string_equal(fx->cfg->cas[0].file, inc);

    write_file(inc, "cas = ( { name = \"inc\"; protocol = \"local\"; pin = \"1\"; } );\n", 0666);
    assert_int_equal(load(fx, main_conf), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 2);
    assert_error(fx, 0, inc, 0, "writable by others: refused");
    assert_error(fx, 1, inc, 1, "'pin': secrets are not stored");

    write_file(inc, "cas = ( { name = \"inc\"; protocol = ; } );\n", 0644);
    assert_int_equal(load(fx, main_conf), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 1);
    assert_error(fx, 0, inc, 1, "syntax error");

    /* The file named relative to the current directory: itself named as given, what it includes
     * found beside it; its own errors first (it was read first), then the included file's. */
    write_file(main_conf,
               "@include \"cas.conf\"\n"
               "credentials = ( { name = \"a\"; token = \"pkcs11:token=t\"; ca = \"inc\";\n"
               "  key = \"x\"; } );\n",
               0644);
    write_file(inc, "cas = ( { name = \"inc\"; protocol = \"local\"; url = \"https://x\"; } );\n",
               0644);
    assert_int_equal(chdir(fx->dir), 0);
    assert_int_equal(load(fx, "main.conf"), TC_ERR_BAD_DATA);
    assert_int_equal(fx->n_errs, 2);
    assert_error(fx, 0, "main.conf", 3, "key must be");
    assert_error(fx, 1, inc, 1, "url is not used with protocol \"local\"");
    assert_int_equal(chdir(cwd), 0);
}

/* ---- --config ---------------------------------------------------------------------------- */

static void named_file_must_be_readable(void **state)
{
    fixture *fx = *state;

    assert_int_equal(load(fx, in_dir(fx, "none.conf")), TC_ERR_IO);
    assert_null(fx->cfg);
    assert_int_equal(fx->n_errs, 0);
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "none.conf"));
    assert_int_equal(load(fx, fx->dir), TC_ERR_IO); /* a directory */
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "not a regular file"));
}

/* --config replaces both files. */
static void named_file_alone(void **state)
{
    fixture *fx = *state;
    const char *f = in_dir(fx, "only.conf");

    write_file(fx->sys, "credentials = ( { name = \"s\"; token = \"pkcs11:token=t\"; } );\n", 0644);
    write_file(f, "credentials = ( { name = \"o\"; token = \"pkcs11:token=t\"; } );\n", 0644);
    assert_int_equal(load(fx, f), TC_OK);
    assert_int_equal(fx->cfg->n_files, 1);
    assert_int_equal(fx->cfg->n_creds, 1);
    assert_null(tokencert_config_find_credential(fx->cfg, "s"));
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test_setup_teardown(no_file_is_the_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(durations_and_per_credential_values, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_renew_before_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(user_replaces_system_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(user_file_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(same_file_read_once, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_sorted_by_file_then_line, setup, teardown),
        cmocka_unit_test_setup_teardown(three_errors_all_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(syntax_error_has_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(cross_check_runs_despite_other_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(local_is_always_known, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_names_point_at_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(auth_one_error_per_mistake, setup, teardown),
        cmocka_unit_test_setup_teardown(cfssl_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets_refused_never_repeated, setup, teardown),
        cmocka_unit_test_setup_teardown(typos_get_suggestions, setup, teardown),
        cmocka_unit_test_setup_teardown(world_writable_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(other_owner_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(include_checked_where_it_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(named_file_must_be_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(named_file_alone, setup, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
