/* test_state.c — the state store: where it lives by default, what open creates and what it refuses
 * to touch (other programs' databases, corrupt files, newer schemas: refused with the bytes left as
 * they were), that requests, generations, credentials and history come back as they were written,
 * that history cannot be rewritten, that transactions roll back, and that the store and token
 * locks keep a second run (a forked process here) out and name its pid. Every test works in its
 * own directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state/state.h"
#include "tokencert.h"

#include "state/db.h"

/* A schema version no tokencert will reach. */
#define FUTURE_SCHEMA 9999

typedef struct {
    tokencert_ctx *ctx;
    char dir[64]; /* the test's own temporary directory */
    char *store;  /* DIR/store: where the tests open their state store */
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tc-state-XXXXXX");
    if (mkdtemp(fx->dir) == NULL || tokencert_ctx_new(&fx->ctx) != TC_OK) {
        free(fx);
        return -1;
    }
    fx->store = malloc(strlen(fx->dir) + sizeof "/store");
    if (fx->store == NULL) {
        tokencert_ctx_free(fx->ctx);
        rmdir(fx->dir);
        free(fx);
        return -1;
    }
    sprintf(fx->store, "%s/store", fx->dir);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *fx = *state;

    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    tokencert_ctx_free(fx->ctx);
    free(fx->store);
    free(fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);

    assert_non_null(s);
    snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long size;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void assert_mode(const char *path, mode_t mode)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    if ((sb.st_mode & 07777) != mode)
        fail_msg("%s: mode %04o, expected %04o", path, (unsigned)(sb.st_mode & 07777),
                 (unsigned)mode);
}

static void assert_error_has(const tokencert_ctx *ctx, const char *part)
{
    const char *msg = tokencert_ctx_error(ctx);

    if (msg == NULL || strstr(msg, part) == NULL)
        fail_msg("expected '%s' in the error '%s'", part, msg != NULL ? msg : "(null)");
}

/* The message names pid as a whole number (not as part of a longer one). */
static void assert_error_names_pid(const tokencert_ctx *ctx, pid_t pid)
{
    const char *msg = tokencert_ctx_error(ctx), *p;
    char num[32];
    size_t len;

    snprintf(num, sizeof num, "%ld", (long)pid);
    len = strlen(num);
    for (p = msg; p != NULL && (p = strstr(p, num)) != NULL; p++) {
        int before = p > msg && p[-1] >= '0' && p[-1] <= '9';
        int after = p[len] >= '0' && p[len] <= '9';
        if (!before && !after)
            return;
    }
    fail_msg("expected the pid %s in the error '%s'", num, msg != NULL ? msg : "(null)");
}

static char *tc_test_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *tc_test_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    assert_true(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    return s;
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

static tokencert_state *open_store(fixture *fx, int create)
{
    tokencert_state *st = NULL;
    tokencert_err err = tokencert_state_open(fx->ctx, fx->store, create, &st);

    if (err != TC_OK)
        fail_msg("state_open(%s): %s: %s", fx->store, tokencert_strerror(err),
                 tokencert_ctx_error(fx->ctx));
    assert_non_null(st);
    return st;
}

/* Runs sql on DIR/state.db through a connection of its own; returns the SQLite result. */
static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return rc;
}

/* Opening the store at fx->store, with and without create, is refused as bad data, and the
 * file's bytes are those it had before. */
static void assert_refused_untouched(fixture *fx, const char *msg_part)
{
    char *path = join(fx->store, "state.db");
    unsigned char *before, *after;
    size_t n_before, n_after;

    before = read_all(path, &n_before);
    for (int create = 1; create >= 0; create--) {
        tokencert_state *st = (tokencert_state *)1;
        tokencert_err err = tokencert_state_open(fx->ctx, fx->store, create, &st);
        if (err != TC_ERR_BAD_DATA)
            fail_msg("open (create %d): %s (%s), expected TC_ERR_BAD_DATA", create,
                     tokencert_strerror(err), tokencert_ctx_error(fx->ctx));
        assert_null(st);
        if (msg_part != NULL)
            assert_error_has(fx->ctx, msg_part);
        after = read_all(path, &n_after);
        assert_int_equal(n_after, n_before);
        assert_memory_equal(after, before, n_before);
        free(after);
    }
    free(before);
    free(path);
}

/* A store with a little of everything in it, closed again. */
static void make_populated_store(fixture *fx)
{
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_credential c = {.name = "praxis", .token_uri = "pkcs11:serial=1"};
    tokencert_state_request r = {.credential = "praxis", .subject = "CN=praxis"};
    tokencert_state_generation g = {.credential = "praxis", .serial = "01"};

    assert_int_equal(tokencert_state_credential_put(st, &c), TC_OK);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(tokencert_state_request_add(st, &r), TC_OK);
        assert_int_equal(tokencert_state_generation_add(st, &g), TC_OK);
        assert_int_equal(tokencert_state_log(st, "praxis", "enrolled", "ok", "a detail"), TC_OK);
    }
    tokencert_state_close(st);
}

/* ---- a process holding a lock ------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int release_fd; /* write a byte: the child unlocks and exits */
} holder;

/* Forks a child that opens the store in dir and takes its lock (serial NULL) or the lock of
 * that token, tells the parent, and holds it until released. The child gives up after 30 s
 * without a word from the parent, so that a failed test leaves no process behind. */
static holder start_holder(const char *dir, const char *serial)
{
    int up[2], down[2];
    holder h;
    char c = 0;

    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    h.pid = fork();
    assert_true(h.pid >= 0);
    if (h.pid == 0) {
        tokencert_ctx *ctx = NULL;
        tokencert_state *st = NULL;
        struct pollfd pfd = {.fd = down[0], .events = POLLIN};
        int ok;

        close(up[0]);
        close(down[1]);
        ok = tokencert_ctx_new(&ctx) == TC_OK && tokencert_state_open(ctx, dir, 0, &st) == TC_OK;
        if (ok)
            ok = (serial == NULL ? tokencert_state_lock(st, 0)
                                 : tokencert_state_lock_token(st, serial, 0)) == TC_OK;
        c = ok ? 'L' : 'E';
        if (write(up[1], &c, 1) != 1)
            _exit(3);
        if (poll(&pfd, 1, 30000) == 1 && read(down[0], &c, 1) == 1)
            usleep(300000); /* the parent is waiting for the lock by now */
        if (serial == NULL)
            tokencert_state_unlock(st);
        tokencert_state_close(st);
        tokencert_ctx_free(ctx);
        _exit(ok ? 0 : 2);
    }
    close(up[1]);
    close(down[0]);
    assert_int_equal(read(up[0], &c, 1), 1);
    close(up[0]);
    if (c != 'L')
        fail_msg("the child could not take the lock");
    h.release_fd = down[1];
    return h;
}

static void release_holder(holder *h)
{
    char c = 'R';

    assert_int_equal(write(h->release_fd, &c, 1), 1);
    close(h->release_fd);
    h->release_fd = -1;
}

static void reap_holder(holder *h)
{
    int status = 0;

    if (h->release_fd >= 0)
        release_holder(h);
    assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static double seconds_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- names -------------------------------------------------------------------------------- */

static void test_state_names(void **state)
{
    static const char *const rs[] = {
        "created",   "key-generating", "key-generated", "submitting", "pending",   "issued",
        "installed", "active",         "rejected",      "failed",     "abandoned",
    };
    static const char *const gs[] = {"active", "superseded", "pruned"};

    (void)state;
    for (int i = TOKENCERT_RS_CREATED; i <= TOKENCERT_RS_ABANDONED; i++)
        assert_string_equal(tokencert_request_state_name((tokencert_request_state)i), rs[i]);
    for (int i = TOKENCERT_GEN_ACTIVE; i <= TOKENCERT_GEN_PRUNED; i++)
        assert_string_equal(tokencert_generation_state_name((tokencert_generation_state)i), gs[i]);
    for (int i = TOKENCERT_RS_CREATED; i <= TOKENCERT_RS_INSTALLED; i++)
        assert_true(tokencert_request_state_open((tokencert_request_state)i));
    assert_true(tokencert_request_state_open(TOKENCERT_RS_FAILED));
    assert_false(tokencert_request_state_open(TOKENCERT_RS_ACTIVE));
    assert_false(tokencert_request_state_open(TOKENCERT_RS_REJECTED));
    assert_false(tokencert_request_state_open(TOKENCERT_RS_ABANDONED));
}

/* ---- the default directory ---------------------------------------------------------------- */

static char *saved_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *value)
{
    if (value != NULL)
        setenv(name, value, 1);
    else
        unsetenv(name);
    free(value);
}

static void assert_default_dir(const char *want)
{
    char *dir = tokencert_state_default_dir();

    assert_non_null(dir);
    assert_string_equal(dir, want);
    free(dir);
}

/* The directories of an ordinary user: $XDG_STATE_HOME, else ~/.local/state. Only collects them,
 * so that no assertion fails while the effective uid is changed. */
static void user_dirs(char **with_xdg, char **with_home)
{
    setenv("XDG_STATE_HOME", "/tmp/tc-xdg-state", 1);
    setenv("HOME", "/tmp/tc-home", 1);
    *with_xdg = tokencert_state_default_dir();
    unsetenv("XDG_STATE_HOME");
    *with_home = tokencert_state_default_dir();
}

static void test_default_dir(void **state)
{
    char *env = saved_env("TOKENCERT_STATE_DIR");
    char *xdg = saved_env("XDG_STATE_HOME");
    char *home = saved_env("HOME");
    char *with_xdg = NULL, *with_home = NULL;
    uid_t euid = geteuid();
    int user_checked = 0;

    (void)state;
    /* The variable wins over everything, for root too. */
    setenv("TOKENCERT_STATE_DIR", "/tmp/tc-explicit-state", 1);
    setenv("XDG_STATE_HOME", "/tmp/tc-xdg-state", 1);
    assert_default_dir("/tmp/tc-explicit-state");
    unsetenv("TOKENCERT_STATE_DIR");

    if (euid == 0) {
        /* root: the system directory, whatever XDG_STATE_HOME says. */
        assert_default_dir("/var/lib/tokencert");
        /* As an ordinary user for a moment; the store code only looks at the effective uid. */
        if (seteuid(65534) == 0) {
            user_dirs(&with_xdg, &with_home);
            assert_int_equal(seteuid(0), 0);
            user_checked = 1;
        }
    } else {
        user_dirs(&with_xdg, &with_home);
        user_checked = 1;
    }
    if (user_checked) {
        assert_non_null(with_xdg);
        assert_string_equal(with_xdg, "/tmp/tc-xdg-state/tokencert");
        assert_non_null(with_home);
        assert_string_equal(with_home, "/tmp/tc-home/.local/state/tokencert");
    }
    free(with_xdg);
    free(with_home);
    restore_env("TOKENCERT_STATE_DIR", env);
    restore_env("XDG_STATE_HOME", xdg);
    restore_env("HOME", home);
    if (!user_checked)
        print_message("note: the non-root default directories were not checked\n");
}

/* ---- open --------------------------------------------------------------------------------- */

static void test_open_creates(void **state)
{
    fixture *fx = *state;
    char *parent = join(fx->dir, "a"), *dir = join(fx->dir, "a/b/state");
    char *db, *wal, *shm;
    tokencert_state *st = NULL;
    mode_t old_mask = umask(0); /* the modes must not depend on the caller's umask */
    tokencert_err err = tokencert_state_open(fx->ctx, dir, 1, &st);

    umask(old_mask);
    if (err != TC_OK)
        fail_msg("state_open: %s: %s", tokencert_strerror(err), tokencert_ctx_error(fx->ctx));
    db = join(dir, "state.db");
    wal = join(dir, "state.db-wal");
    shm = join(dir, "state.db-shm");
    assert_mode(dir, 0700);
    assert_mode(parent, 0700);
    assert_mode(db, 0600);
    /* SQLite's files beside it hold the same data. */
    if (exists(wal))
        assert_mode(wal, 0600);
    if (exists(shm))
        assert_mode(shm, 0600);
    assert_string_equal(tokencert_state_path(st), db);
    tokencert_state_close(st);
    assert_mode(db, 0600);
    free(parent);
    free(dir);
    free(db);
    free(wal);
    free(shm);
}

static void test_open_path(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    const char *path = tokencert_state_path(st);
    size_t n;

    assert_non_null(path);
    n = strlen(path);
    assert_true(n > strlen("/state.db"));
    assert_string_equal(path + n - strlen("/state.db"), "/state.db");
    tokencert_state_close(st);
}

static void test_open_missing(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = (tokencert_state *)1;
    char *db;

    /* Without create: nothing there is "not found", and nothing is made. */
    assert_int_equal(tokencert_state_open(fx->ctx, fx->store, 0, &st), TC_ERR_NOT_FOUND);
    assert_null(st);
    assert_false(exists(fx->store));

    /* Also when the directory exists but holds no store. */
    assert_int_equal(mkdir(fx->store, 0700), 0);
    db = join(fx->store, "state.db");
    st = (tokencert_state *)1;
    assert_int_equal(tokencert_state_open(fx->ctx, fx->store, 0, &st), TC_ERR_NOT_FOUND);
    assert_null(st);
    assert_false(exists(db));
    free(db);
}

/* Opening dir (with and without create) is refused as bad data, the message holding part. */
static void assert_open_refused(fixture *fx, const char *dir, const char *part)
{
    for (int create = 1; create >= 0; create--) {
        tokencert_state *st = (tokencert_state *)1;
        tokencert_err err = tokencert_state_open(fx->ctx, dir, create, &st);
        if (err != TC_ERR_BAD_DATA)
            fail_msg("open %s (create %d): %s (%s), expected TC_ERR_BAD_DATA", dir, create,
                     tokencert_strerror(err), tokencert_ctx_error(fx->ctx));
        assert_null(st);
        assert_error_has(fx->ctx, part);
    }
}

/* The store names the modules renew loads (issue 16, defect 2): a state directory or store that
 * is relative, a symbolic link, group- or world-writable or another user's is refused, named. */
static void test_open_untrusted(void **state)
{
    fixture *fx = *state;
    char *db = join(fx->store, "state.db"), *link = join(fx->dir, "link");
    char *dblink = join(fx->dir, "db-elsewhere"), *msg;
    char cwd[4096];

    tokencert_state_close(open_store(fx, 1));

    /* Relative: refused, and nothing made in the working directory. */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(fx->dir), 0);
    assert_open_refused(fx, "rel/store", "the state directory 'rel/store' is not an absolute path");
    assert_false(exists("rel"));
    assert_int_equal(chdir(cwd), 0);

    /* A directory others (or the group) can write. */
    for (mode_t m = 0702; m <= 0720; m += 0016) {
        assert_int_equal(chmod(fx->store, m), 0);
        msg =
            tc_test_asprintf("the state directory '%s' is writable by group or others (mode %04o)",
                             fx->store, (unsigned)m);
        assert_open_refused(fx, fx->store, msg);
        free(msg);
    }
    assert_int_equal(chmod(fx->store, 0700), 0);

    /* A symbolic link to a good store. */
    assert_int_equal(symlink(fx->store, link), 0);
    msg = tc_test_asprintf("the state directory '%s' is a symbolic link", link);
    assert_open_refused(fx, link, msg);
    free(msg);

    /* The store itself writable by others, or a link. */
    assert_int_equal(chmod(db, 0606), 0);
    msg = tc_test_asprintf("the state store '%s' is writable by group or others (mode 0606)", db);
    assert_open_refused(fx, fx->store, msg);
    free(msg);
    assert_int_equal(chmod(db, 0600), 0);
    assert_int_equal(rename(db, dblink), 0);
    assert_int_equal(symlink(dblink, db), 0);
    msg = tc_test_asprintf("the state store '%s' is a symbolic link", db);
    assert_open_refused(fx, fx->store, msg);
    free(msg);
    assert_int_equal(unlink(db), 0);
    assert_int_equal(rename(dblink, db), 0);

    /* Another user's: only root can make one. */
    if (geteuid() == 0) {
        assert_int_equal(chown(db, 65534, 65534), 0);
        msg = tc_test_asprintf("the state store '%s' belongs to another user (uid 65534)", db);
        assert_open_refused(fx, fx->store, msg);
        free(msg);
        assert_int_equal(chown(db, 0, 0), 0);
        assert_int_equal(chown(fx->store, 65534, 65534), 0);
        msg = tc_test_asprintf("the state directory '%s' belongs to another user (uid 65534)",
                               fx->store);
        assert_open_refused(fx, fx->store, msg);
        free(msg);
        assert_int_equal(chown(fx->store, 0, 0), 0);
    } else {
        print_message("note: not root, another user's store was not checked\n");
    }
    /* Back as it was: opened again. */
    tokencert_state_close(open_store(fx, 0));
    free(db);
    free(link);
    free(dblink);
}

static void test_open_dir_not_creatable(void **state)
{
    fixture *fx = *state;
    char *file = join(fx->dir, "plain-file");
    char *dir = join(file, "state");
    tokencert_state *st = (tokencert_state *)1;

    write_all(file, "x\n", 2);
    assert_int_equal(tokencert_state_open(fx->ctx, dir, 1, &st), TC_ERR_IO);
    assert_null(st);
    assert_error_has(fx->ctx, dir);
    free(file);
    free(dir);
}

static void test_refuse_not_sqlite(void **state)
{
    fixture *fx = *state;
    char *db = join(fx->store, "state.db");
    char text[4096];
    size_t len = 0;

    assert_int_equal(mkdir(fx->store, 0700), 0);
    while (len + 64 < sizeof text)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "line %zu: these are somebody's notes, not a database\n", len);
    write_all(db, text, len);
    assert_refused_untouched(fx, NULL);
    free(db);
}

static void test_refuse_foreign_sqlite(void **state)
{
    fixture *fx = *state;
    char *db = join(fx->store, "state.db");

    assert_int_equal(mkdir(fx->store, 0700), 0);
    /* Another program's database: its own table, application_id 0, user_version 0. */
    assert_int_equal(raw_exec(db, "CREATE TABLE contacts (name TEXT, phone TEXT);"
                                  "INSERT INTO contacts VALUES ('Ada', '+49 30 1234567');"),
                     SQLITE_OK);
    assert_refused_untouched(fx, NULL);
    /* One with a meta table that still is not ours. */
    assert_int_equal(raw_exec(db, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                                  "PRAGMA user_version = 1;"),
                     SQLITE_OK);
    assert_refused_untouched(fx, NULL);
    free(db);
}

static void test_refuse_truncated(void **state)
{
    fixture *fx = *state;
    char *db = join(fx->store, "state.db");
    unsigned char *data;
    size_t len;

    make_populated_store(fx);
    data = read_all(db, &len);
    assert_true(len > 3 * 4096);
    /* The header and the schema page survive; the tables' pages are gone. */
    write_all(db, data, 4096 + 100);
    assert_refused_untouched(fx, NULL);
    free(data);
    free(db);
}

static void test_refuse_corrupt(void **state)
{
    fixture *fx = *state;
    char *db = join(fx->store, "state.db");
    unsigned char *data;
    size_t len;

    make_populated_store(fx);
    data = read_all(db, &len);
    assert_true(len > 3 * 4096);
    /* The size is right and the first page (header, schema) intact; the rest is garbage. */
    srand(4711);
    for (size_t i = 4096; i < len; i++)
        data[i] = (unsigned char)(rand() & 0xff);
    write_all(db, data, len);
    assert_refused_untouched(fx, NULL);
    free(data);
    free(db);
}

static void test_refuse_newer_schema(void **state)
{
    fixture *fx = *state;
    char *db = join(fx->store, "state.db");
    char sql[64];

    make_populated_store(fx);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", FUTURE_SCHEMA);
    assert_int_equal(raw_exec(db, sql), SQLITE_OK);
    assert_refused_untouched(fx, "newer tokencert");
    free(db);
}

static void test_reopen_keeps_data(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_credential c = {.name = "praxis", .label = "praxis-key"}, got;
    tokencert_state_request r = {.credential = "praxis", .ca_request_id = "ca-1"}, *rv = NULL;
    tokencert_state_generation g = {.credential = "praxis", .serial = "0A"}, *gv = NULL;
    tokencert_state_event *ev = NULL;
    size_t n = 0;

    assert_int_equal(tokencert_state_credential_put(st, &c), TC_OK);
    assert_int_equal(tokencert_state_request_add(st, &r), TC_OK);
    assert_int_equal(tokencert_state_generation_add(st, &g), TC_OK);
    assert_int_equal(tokencert_state_log(st, "praxis", "enrolled", "ok", NULL), TC_OK);
    tokencert_state_close(st);

    for (int create = 0; create <= 1; create++) {
        st = open_store(fx, create);
        assert_int_equal(tokencert_state_credential_get(st, "praxis", &got), TC_OK);
        assert_string_equal(got.label, "praxis-key");
        tokencert_state_credential_clear(&got);
        assert_int_equal(tokencert_state_requests(st, NULL, 0, &rv, &n), TC_OK);
        assert_int_equal(n, 1);
        assert_int_equal(rv[0].id, r.id);
        assert_string_equal(rv[0].ca_request_id, "ca-1");
        tokencert_state_requests_free(rv, n);
        assert_int_equal(tokencert_state_generations(st, NULL, 1, &gv, &n), TC_OK);
        assert_int_equal(n, 1);
        assert_string_equal(gv[0].serial, "0A");
        tokencert_state_generations_free(gv, n);
        assert_int_equal(tokencert_state_history(st, NULL, &ev, &n), TC_OK);
        assert_int_equal(n, 1);
        assert_string_equal(ev[0].event, "enrolled");
        tokencert_state_history_free(ev, n);
        tokencert_state_close(st);
    }
}

/* ---- requests ----------------------------------------------------------------------------- */

static const unsigned char cert_a[] = {0x30, 0x82, 0x01, 0x0a, 0x00, 0x00, 0xff, 0x02, 0x01, 0x00};
static const unsigned char cert_b[] = {0x30, 0x03, 0x02, 0x01, 0x07, 0x00, 0x00};

static void assert_request_equal(const tokencert_state_request *got,
                                 const tokencert_state_request *want)
{
    assert_int_equal(got->id, want->id);
    assert_string_equal(got->credential, want->credential);
    assert_int_equal(got->state, want->state);
    if (want->state == TOKENCERT_RS_FAILED)
        assert_int_equal(got->failed_at, want->failed_at);
    assert_str_or_null(got->token_serial, want->token_serial);
    assert_str_or_null(got->key_id, want->key_id);
    assert_int_equal(got->key_reused != 0, want->key_reused != 0);
    assert_str_or_null(got->key_type, want->key_type);
    assert_str_or_null(got->subject, want->subject);
    assert_str_or_null(got->san, want->san);
    assert_str_or_null(got->ca, want->ca);
    assert_str_or_null(got->ca_request_id, want->ca_request_id);
    assert_str_or_null(got->transaction_id, want->transaction_id);
    assert_int_equal(got->cert_len, want->cert_len);
    if (want->cert_len > 0) {
        assert_non_null(got->cert);
        assert_memory_equal(got->cert, want->cert, want->cert_len);
    }
    assert_int_equal(got->not_before, want->not_before);
    assert_int_equal(got->created, want->created);
    assert_int_equal(got->updated, want->updated);
    assert_int_equal(got->next_poll, want->next_poll);
    assert_int_equal(got->attempts, want->attempts);
    assert_str_or_null(got->last_error, want->last_error);
}

static void test_request_roundtrip(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_request r = {
        .credential = "praxis",
        .state = TOKENCERT_RS_FAILED,
        .failed_at = TOKENCERT_RS_SUBMITTING,
        .token_serial = "0123456789abcdef",
        .key_id = "a1b2c3d4",
        .key_reused = 1,
        .key_type = "ec:p256",
        .subject = "CN=1234567890,O=Praxis Dr. M\xc3\xbcller,C=DE",
        .san = "dns:praxis.example,ip:10.0.0.1",
        .ca = "local",
        .ca_request_id = "req-17",
        .transaction_id = "tx-0f1e2d",
        .cert = (unsigned char *)cert_a,
        .cert_len = sizeof cert_a,
        .not_before = 1700000000,
        .next_poll = 1800000000,
        .attempts = 3,
        .last_error = "the CA at https://ca.example/ did not answer",
    };
    tokencert_state_request other = {.credential = "lab", .state = TOKENCERT_RS_PENDING};
    tokencert_state_request *v = NULL, other_before;
    time_t before = time(NULL), after;
    size_t n = 0;

    assert_int_equal(tokencert_state_request_add(st, &r), TC_OK);
    after = time(NULL);
    assert_true(r.id > 0);
    assert_true(r.created >= before && r.created <= after);
    assert_int_equal(r.updated, r.created);
    assert_int_equal(tokencert_state_request_add(st, &other), TC_OK);
    assert_true(other.id > r.id);
    other_before = other;

    assert_int_equal(tokencert_state_requests(st, "praxis", 0, &v, &n), TC_OK);
    assert_int_equal(n, 1);
    assert_request_equal(&v[0], &r);
    tokencert_state_requests_free(v, n);

    /* Update writes every field, NULLs included, of that request only. */
    r.state = TOKENCERT_RS_ISSUED;
    r.token_serial = "fedcba9876543210";
    r.key_id = "e5f6";
    r.key_reused = 0;
    r.key_type = "rsa:3072";
    r.subject = "CN=0987654321,O=Praxis,C=DE";
    r.san = NULL;
    r.ca = "est-ca";
    r.ca_request_id = "req-18";
    r.transaction_id = NULL;
    r.cert = (unsigned char *)cert_b;
    r.cert_len = sizeof cert_b;
    r.not_before = 0;
    r.next_poll = 0;
    r.attempts = 0;
    r.last_error = NULL;
    before = time(NULL);
    assert_int_equal(tokencert_state_request_update(st, &r), TC_OK);
    after = time(NULL);
    assert_true(r.updated >= before && r.updated <= after);
    assert_true(r.updated >= r.created);

    assert_int_equal(tokencert_state_requests(st, NULL, 0, &v, &n), TC_OK);
    assert_int_equal(n, 2);
    assert_request_equal(&v[0], &r);
    assert_request_equal(&v[1], &other_before);
    tokencert_state_requests_free(v, n);

    /* A cert dropped again. */
    r.cert = NULL;
    r.cert_len = 0;
    r.state = TOKENCERT_RS_FAILED;
    r.failed_at = TOKENCERT_RS_INSTALLED;
    assert_int_equal(tokencert_state_request_update(st, &r), TC_OK);
    assert_int_equal(tokencert_state_requests(st, "praxis", 0, &v, &n), TC_OK);
    assert_int_equal(n, 1);
    assert_request_equal(&v[0], &r);
    assert_null(v[0].cert);
    tokencert_state_requests_free(v, n);

    /* An id the store does not have is not silently "updated". */
    other.id = r.id + 1000;
    assert_int_not_equal(tokencert_state_request_update(st, &other), TC_OK);
    tokencert_state_close(st);
}

static void test_request_filters(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_request *v = NULL;
    long long ids[2][TOKENCERT_RS_ABANDONED + 1];
    size_t n = 0, k;
    long long last;

    for (int s = TOKENCERT_RS_CREATED; s <= TOKENCERT_RS_ABANDONED; s++) {
        for (int c = 0; c < 2; c++) {
            tokencert_state_request r = {
                .credential = c == 0 ? "alpha" : "beta",
                .state = (tokencert_request_state)s,
                .failed_at = TOKENCERT_RS_KEY_GENERATED,
            };
            assert_int_equal(tokencert_state_request_add(st, &r), TC_OK);
            ids[c][s] = r.id;
        }
    }

    assert_int_equal(tokencert_state_requests(st, NULL, 0, &v, &n), TC_OK);
    assert_int_equal(n, 2 * (TOKENCERT_RS_ABANDONED + 1));
    for (k = 1; k < n; k++)
        assert_true(v[k].id > v[k - 1].id);
    tokencert_state_requests_free(v, n);

    /* One credential, every state, in order. */
    assert_int_equal(tokencert_state_requests(st, "alpha", 0, &v, &n), TC_OK);
    assert_int_equal(n, TOKENCERT_RS_ABANDONED + 1);
    for (k = 0; k < n; k++) {
        assert_string_equal(v[k].credential, "alpha");
        assert_int_equal(v[k].state, (int)k);
        assert_int_equal(v[k].id, ids[0][k]);
    }
    tokencert_state_requests_free(v, n);

    /* Only the open ones: created .. installed and failed. */
    assert_int_equal(tokencert_state_requests(st, "beta", 1, &v, &n), TC_OK);
    assert_int_equal(n, 8);
    last = 0;
    for (k = 0; k < n; k++) {
        assert_string_equal(v[k].credential, "beta");
        assert_true(tokencert_request_state_open(v[k].state));
        assert_int_equal(v[k].id, ids[1][v[k].state]);
        assert_true(v[k].id > last);
        last = v[k].id;
    }
    assert_int_equal(v[7].state, TOKENCERT_RS_FAILED);
    assert_int_equal(v[7].failed_at, TOKENCERT_RS_KEY_GENERATED);
    tokencert_state_requests_free(v, n);

    assert_int_equal(tokencert_state_requests(st, NULL, 1, &v, &n), TC_OK);
    assert_int_equal(n, 16);
    for (k = 0; k < n; k++)
        assert_true(tokencert_request_state_open(v[k].state));
    tokencert_state_requests_free(v, n);

    assert_int_equal(tokencert_state_requests(st, "gamma", 0, &v, &n), TC_OK);
    assert_int_equal(n, 0);
    tokencert_state_requests_free(v, n);
    tokencert_state_close(st);
}

/* ---- generations -------------------------------------------------------------------------- */

static void assert_generation_equal(const tokencert_state_generation *got,
                                    const tokencert_state_generation *want)
{
    assert_int_equal(got->id, want->id);
    assert_string_equal(got->credential, want->credential);
    assert_int_equal(got->number, want->number);
    assert_int_equal(got->state, want->state);
    assert_str_or_null(got->token_serial, want->token_serial);
    assert_str_or_null(got->key_id, want->key_id);
    assert_str_or_null(got->cert_sha256, want->cert_sha256);
    assert_str_or_null(got->serial, want->serial);
    assert_str_or_null(got->subject, want->subject);
    assert_str_or_null(got->issuer, want->issuer);
    assert_int_equal(got->not_before, want->not_before);
    assert_int_equal(got->not_after, want->not_after);
    assert_int_equal(got->installed, want->installed);
    assert_int_equal(got->superseded, want->superseded);
    assert_int_equal(got->pruned, want->pruned);
    assert_int_equal(got->request, want->request);
}

static void test_generations(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_generation b1 = {
        .credential = "beta",
        .number = 42, /* ignored: the store numbers them */
        .state = TOKENCERT_GEN_ACTIVE,
        .token_serial = "0123456789abcdef",
        .key_id = "01ab",
        .cert_sha256 = "AB:CD:EF:01",
        .serial = "3F2A",
        .subject = "CN=beta",
        .issuer = "CN=tokencert local CA",
        .not_before = 1700000000,
        .not_after = 1731536000,
        .installed = 1700000100,
        .request = 7,
    };
    tokencert_state_generation a1 = {.credential = "alpha", .key_id = "a1", .number = 9};
    tokencert_state_generation a2 = {.credential = "alpha", .key_id = "a2"};
    tokencert_state_generation a3 = {.credential = "alpha", .key_id = "a3"};
    tokencert_state_generation *v = NULL;
    size_t n = 0;

    assert_int_equal(tokencert_state_generation_add(st, &b1), TC_OK);
    assert_true(b1.id > 0);
    assert_int_equal(b1.number, 1);
    assert_int_equal(tokencert_state_generation_add(st, &a1), TC_OK);
    assert_int_equal(a1.number, 1);
    assert_int_equal(tokencert_state_generation_add(st, &a2), TC_OK);
    assert_int_equal(a2.number, 2);
    assert_int_equal(tokencert_state_generation_add(st, &a3), TC_OK);
    assert_int_equal(a3.number, 3);
    assert_true(a1.id != b1.id && a2.id != a1.id && a3.id != a2.id);

    /* By credential, then number: not in the order they were added. */
    assert_int_equal(tokencert_state_generations(st, NULL, 0, &v, &n), TC_OK);
    assert_int_equal(n, 4);
    assert_generation_equal(&v[0], &a1);
    assert_generation_equal(&v[1], &a2);
    assert_generation_equal(&v[2], &a3);
    assert_generation_equal(&v[3], &b1);
    tokencert_state_generations_free(v, n);

    assert_int_equal(tokencert_state_generations(st, "beta", 0, &v, &n), TC_OK);
    assert_int_equal(n, 1);
    assert_generation_equal(&v[0], &b1);
    tokencert_state_generations_free(v, n);

    /* Update: the first alpha superseded then pruned, beta's fields rewritten. */
    a1.state = TOKENCERT_GEN_PRUNED;
    a1.superseded = 1710000000;
    a1.pruned = 1740000000;
    a1.cert_sha256 = "11:22";
    assert_int_equal(tokencert_state_generation_update(st, &a1), TC_OK);
    a2.state = TOKENCERT_GEN_SUPERSEDED;
    a2.superseded = 1720000000;
    assert_int_equal(tokencert_state_generation_update(st, &a2), TC_OK);
    b1.issuer = NULL;
    b1.serial = "4000";
    b1.not_after = 1763072000;
    assert_int_equal(tokencert_state_generation_update(st, &b1), TC_OK);

    assert_int_equal(tokencert_state_generations(st, "alpha", 0, &v, &n), TC_OK);
    assert_int_equal(n, 2);
    assert_generation_equal(&v[0], &a2);
    assert_generation_equal(&v[1], &a3);
    tokencert_state_generations_free(v, n);

    assert_int_equal(tokencert_state_generations(st, NULL, 1, &v, &n), TC_OK);
    assert_int_equal(n, 4);
    assert_generation_equal(&v[0], &a1);
    assert_generation_equal(&v[1], &a2);
    assert_generation_equal(&v[2], &a3);
    assert_generation_equal(&v[3], &b1);
    tokencert_state_generations_free(v, n);

    /* Numbers go on from the highest, pruned ones included. */
    {
        tokencert_state_generation a4 = {.credential = "alpha"};
        tokencert_state_generation b2 = {.credential = "beta"};
        assert_int_equal(tokencert_state_generation_add(st, &a4), TC_OK);
        assert_int_equal(a4.number, 4);
        assert_int_equal(tokencert_state_generation_add(st, &b2), TC_OK);
        assert_int_equal(b2.number, 2);
    }

    assert_int_equal(tokencert_state_generations(st, "gamma", 1, &v, &n), TC_OK);
    assert_int_equal(n, 0);
    tokencert_state_generations_free(v, n);
    tokencert_state_close(st);
}

/* ---- credentials -------------------------------------------------------------------------- */

static void assert_credential_equal(const tokencert_state_credential *got,
                                    const tokencert_state_credential *want)
{
    assert_string_equal(got->name, want->name);
    assert_str_or_null(got->token_uri, want->token_uri);
    assert_str_or_null(got->token_serial, want->token_serial);
    assert_str_or_null(got->label, want->label);
    assert_str_or_null(got->ca, want->ca);
    assert_str_or_null(got->ca_dir, want->ca_dir);
    assert_str_or_null(got->module, want->module);
    assert_int_equal(got->created, want->created);
    assert_int_equal(got->last_run, want->last_run);
    assert_str_or_null(got->last_result, want->last_result);
    assert_str_or_null(got->last_error, want->last_error);
    assert_int_equal(got->deferred_since, want->deferred_since);
}

static void test_credentials(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_credential full = {
        .name = "praxis",
        .token_uri = "pkcs11:model=PKCS%2315%20emulated;serial=0123456789abcdef",
        .token_serial = "0123456789abcdef",
        .label = "praxis-tls",
        .ca = "local",
        .ca_dir = "/srv/tokencert/ca",
        .module = "/usr/lib/softhsm/libsofthsm2.so",
        .created = 1700000000,
        .last_run = 1700086400,
        .last_result = "pending",
        .last_error = "waiting for approval",
        .deferred_since = 1700090000,
    };
    tokencert_state_credential bare = {.name = "lab"};
    tokencert_state_credential got, *v = NULL;
    size_t n = 0;
    int seen_full = 0, seen_bare = 0;

    assert_int_equal(tokencert_state_credential_put(st, &full), TC_OK);
    assert_int_equal(tokencert_state_credential_put(st, &bare), TC_OK);

    assert_int_equal(tokencert_state_credential_get(st, "praxis", &got), TC_OK);
    assert_credential_equal(&got, &full);
    tokencert_state_credential_clear(&got);
    assert_int_equal(tokencert_state_credential_get(st, "lab", &got), TC_OK);
    assert_credential_equal(&got, &bare);
    tokencert_state_credential_clear(&got);

    /* Put again: replaced, not duplicated; fields set to NULL come back NULL. */
    full.last_result = "renewed";
    full.last_error = NULL;
    full.last_run = 1702678400;
    full.deferred_since = 0;
    full.ca_dir = NULL;
    assert_int_equal(tokencert_state_credential_put(st, &full), TC_OK);
    assert_int_equal(tokencert_state_credential_get(st, "praxis", &got), TC_OK);
    assert_credential_equal(&got, &full);
    tokencert_state_credential_clear(&got);

    assert_int_equal(tokencert_state_credentials(st, &v, &n), TC_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, "praxis") == 0) {
            assert_credential_equal(&v[i], &full);
            seen_full++;
        } else {
            assert_credential_equal(&v[i], &bare);
            seen_bare++;
        }
    }
    assert_int_equal(seen_full, 1);
    assert_int_equal(seen_bare, 1);
    tokencert_state_credentials_free(v, n);

    memset(&got, 0, sizeof got);
    assert_int_equal(tokencert_state_credential_get(st, "unknown", &got), TC_ERR_NOT_FOUND);
    assert_null(got.name);
    tokencert_state_credential_clear(&got);
    tokencert_state_close(st);
}

/* ---- history ------------------------------------------------------------------------------ */

static void assert_event(const tokencert_state_event *e, const char *cred, const char *event,
                         const char *result, const char *detail, time_t lo, time_t hi)
{
    assert_true(e->id > 0);
    assert_str_or_null(e->credential, cred);
    assert_string_equal(e->event, event);
    assert_string_equal(e->result, result);
    assert_str_or_null(e->detail, detail);
    assert_true(e->time >= lo && e->time <= hi);
}

static void assert_full_history(tokencert_state *st, time_t lo, time_t hi)
{
    tokencert_state_event *v = NULL;
    size_t n = 0;

    assert_int_equal(tokencert_state_history(st, NULL, &v, &n), TC_OK);
    assert_int_equal(n, 4);
    assert_event(&v[0], "praxis", "enrolled", "ok", "generation 1", lo, hi);
    assert_event(&v[1], "lab", "submitted", "ok", NULL, lo, hi);
    assert_event(&v[2], NULL, "migrated", "ok", "schema 1", lo, hi);
    assert_event(&v[3], "praxis", "renewal", "failed", "the token was absent", lo, hi);
    for (size_t i = 1; i < n; i++)
        assert_true(v[i].id > v[i - 1].id);
    tokencert_state_history_free(v, n);
}

/* A credential whose enrollment failed with the token untouched is forgotten with its requests;
 * its history stays. One with a generation is not. */
static void test_forget(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_credential fresh = {.name = "fresh", .label = "fresh"};
    tokencert_state_credential kept = {.name = "kept", .label = "kept"};
    tokencert_state_request r1 = {.credential = "fresh", .state = TOKENCERT_RS_ABANDONED};
    tokencert_state_request r2 = {.credential = "kept", .state = TOKENCERT_RS_ACTIVE};
    tokencert_state_generation g = {.credential = "kept", .state = TOKENCERT_GEN_ACTIVE};
    tokencert_state_credential got;
    tokencert_state_request *v = NULL;
    tokencert_state_event *ev = NULL;
    size_t n = 0;

    assert_int_equal(tokencert_state_credential_put(st, &fresh), TC_OK);
    assert_int_equal(tokencert_state_credential_put(st, &kept), TC_OK);
    assert_int_equal(tokencert_state_request_add(st, &r1), TC_OK);
    assert_int_equal(tokencert_state_request_add(st, &r2), TC_OK);
    assert_int_equal(tokencert_state_generation_add(st, &g), TC_OK);
    assert_int_equal(tokencert_state_log(st, "fresh", "enroll failed", "failed", "label in use"),
                     TC_OK);

    assert_int_equal(tokencert_state_credential_forget(st, "fresh"), TC_OK);
    assert_int_equal(tokencert_state_credential_get(st, "fresh", &got), TC_ERR_NOT_FOUND);
    assert_int_equal(tokencert_state_requests(st, "fresh", 0, &v, &n), TC_OK);
    assert_int_equal(n, 0);
    tokencert_state_requests_free(v, n);
    assert_int_equal(tokencert_state_history(st, "fresh", &ev, &n), TC_OK);
    assert_int_equal(n, 1);
    tokencert_state_history_free(ev, n);

    assert_int_equal(tokencert_state_credential_forget(st, "kept"), TC_ERR_INVALID_ARG);
    assert_int_equal(tokencert_state_credential_get(st, "kept", &got), TC_OK);
    tokencert_state_credential_clear(&got);
    assert_int_equal(tokencert_state_requests(st, "kept", 0, &v, &n), TC_OK);
    assert_int_equal(n, 1);
    tokencert_state_requests_free(v, n);

    /* Still usable afterwards: the savepoint was released in both cases. */
    assert_int_equal(tokencert_state_begin(st), TC_OK);
    assert_int_equal(tokencert_state_commit(st), TC_OK);
    tokencert_state_close(st);
}

static void test_history(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    char *db = join(fx->store, "state.db");
    tokencert_state_event *v = NULL;
    time_t lo = time(NULL), hi;
    size_t n = 0;

    assert_int_equal(tokencert_state_log(st, "praxis", "enrolled", "ok", "generation 1"), TC_OK);
    assert_int_equal(tokencert_state_log(st, "lab", "submitted", "ok", NULL), TC_OK);
    assert_int_equal(tokencert_state_log(st, NULL, "migrated", "ok", "schema 1"), TC_OK);
    assert_int_equal(tokencert_state_log(st, "praxis", "renewal", "failed", "the token was absent"),
                     TC_OK);
    hi = time(NULL);
    assert_full_history(st, lo, hi);

    assert_int_equal(tokencert_state_history(st, "praxis", &v, &n), TC_OK);
    assert_int_equal(n, 2);
    assert_event(&v[0], "praxis", "enrolled", "ok", "generation 1", lo, hi);
    assert_event(&v[1], "praxis", "renewal", "failed", "the token was absent", lo, hi);
    tokencert_state_history_free(v, n);

    assert_int_equal(tokencert_state_history(st, "nobody", &v, &n), TC_OK);
    assert_int_equal(n, 0);
    tokencert_state_history_free(v, n);

    /* Append-only, also for a program that writes SQL to the file directly. */
    assert_int_not_equal(raw_exec(db, "UPDATE history SET result = 'ok' WHERE result = 'failed'"),
                         SQLITE_OK);
    assert_int_not_equal(raw_exec(db, "UPDATE history SET detail = NULL"), SQLITE_OK);
    assert_int_not_equal(raw_exec(db, "DELETE FROM history WHERE credential = 'lab'"), SQLITE_OK);
    assert_int_not_equal(raw_exec(db, "DELETE FROM history"), SQLITE_OK);
    assert_full_history(st, lo, hi);
    tokencert_state_close(st);

    /* And after a reopen. */
    st = open_store(fx, 0);
    assert_full_history(st, lo, hi);
    assert_int_not_equal(raw_exec(db, "DELETE FROM history"), SQLITE_OK);
    assert_full_history(st, lo, hi);
    tokencert_state_close(st);
    free(db);
}

/* ---- transactions ------------------------------------------------------------------------- */

static void test_transactions(void **state)
{
    fixture *fx = *state;
    tokencert_state *st = open_store(fx, 1);
    tokencert_state_credential c = {.name = "praxis", .last_result = "renewed"}, got;
    tokencert_state_request r = {.credential = "praxis"}, *rv = NULL;
    tokencert_state_generation g = {.credential = "praxis"}, *gv = NULL;
    tokencert_state_event *ev = NULL;
    size_t n = 0;

    assert_int_equal(tokencert_state_begin(st), TC_OK);
    assert_int_equal(tokencert_state_credential_put(st, &c), TC_OK);
    assert_int_equal(tokencert_state_request_add(st, &r), TC_OK);
    assert_int_equal(tokencert_state_generation_add(st, &g), TC_OK);
    assert_int_equal(tokencert_state_log(st, "praxis", "renewed", "ok", NULL), TC_OK);
    tokencert_state_rollback(st);

    assert_int_equal(tokencert_state_credential_get(st, "praxis", &got), TC_ERR_NOT_FOUND);
    tokencert_state_credential_clear(&got);
    assert_int_equal(tokencert_state_requests(st, NULL, 0, &rv, &n), TC_OK);
    assert_int_equal(n, 0);
    tokencert_state_requests_free(rv, n);
    assert_int_equal(tokencert_state_generations(st, NULL, 1, &gv, &n), TC_OK);
    assert_int_equal(n, 0);
    tokencert_state_generations_free(gv, n);
    assert_int_equal(tokencert_state_history(st, NULL, &ev, &n), TC_OK);
    assert_int_equal(n, 0);
    tokencert_state_history_free(ev, n);

    assert_int_equal(tokencert_state_begin(st), TC_OK);
    assert_int_equal(tokencert_state_credential_put(st, &c), TC_OK);
    assert_int_equal(tokencert_state_request_add(st, &r), TC_OK);
    assert_int_equal(tokencert_state_generation_add(st, &g), TC_OK);
    assert_int_equal(tokencert_state_log(st, "praxis", "renewed", "ok", NULL), TC_OK);
    assert_int_equal(tokencert_state_commit(st), TC_OK);
    /* The first generation again: the rolled-back one left no number behind. */
    assert_int_equal(g.number, 1);
    tokencert_state_close(st);

    /* Committed means on disk: another connection sees it. */
    st = open_store(fx, 0);
    assert_int_equal(tokencert_state_credential_get(st, "praxis", &got), TC_OK);
    assert_string_equal(got.last_result, "renewed");
    tokencert_state_credential_clear(&got);
    assert_int_equal(tokencert_state_requests(st, NULL, 0, &rv, &n), TC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rv[0].id, r.id);
    tokencert_state_requests_free(rv, n);
    assert_int_equal(tokencert_state_generations(st, NULL, 1, &gv, &n), TC_OK);
    assert_int_equal(n, 1);
    tokencert_state_generations_free(gv, n);
    assert_int_equal(tokencert_state_history(st, NULL, &ev, &n), TC_OK);
    assert_int_equal(n, 1);
    tokencert_state_history_free(ev, n);
    tokencert_state_close(st);
}

/* ---- locks -------------------------------------------------------------------------------- */

static void test_lock_in_process(void **state)
{
    fixture *fx = *state;
    tokencert_state *st1 = open_store(fx, 1), *st2 = open_store(fx, 0);
    char *lock = join(fx->store, "lock");

    assert_int_equal(tokencert_state_lock(st1, 0), TC_OK);
    assert_true(exists(lock));
    /* A second opening of the store is another run as far as the lock goes. */
    assert_int_equal(tokencert_state_lock(st2, 0), TC_ERR_IO);
    assert_error_has(fx->ctx, "in use by another tokencert run");
    assert_error_names_pid(fx->ctx, getpid());
    tokencert_state_unlock(st1);
    assert_int_equal(tokencert_state_lock(st2, 0), TC_OK);
    assert_int_equal(tokencert_state_lock(st1, 0), TC_ERR_IO);
    tokencert_state_unlock(st2);

    /* Close releases it too. */
    assert_int_equal(tokencert_state_lock(st1, 0), TC_OK);
    tokencert_state_close(st1);
    assert_int_equal(tokencert_state_lock(st2, 0), TC_OK);
    tokencert_state_close(st2);
    free(lock);
}

static void test_lock_other_process(void **state)
{
    fixture *fx = *state;
    tokencert_state *st;
    holder h;
    double t0, waited;

    /* No connection is carried across fork: the parent opens the store after. */
    st = open_store(fx, 1);
    tokencert_state_close(st);
    h = start_holder(fx->store, NULL);
    st = open_store(fx, 0);

    assert_int_equal(tokencert_state_lock(st, 0), TC_ERR_IO);
    assert_error_has(fx->ctx, "in use by another tokencert run");
    assert_error_names_pid(fx->ctx, h.pid);

    /* Waiting waits, and then gives up. */
    t0 = seconds_now();
    assert_int_equal(tokencert_state_lock(st, 1), TC_ERR_IO);
    waited = seconds_now() - t0;
    if (waited < 0.9 || waited > 5.0)
        fail_msg("lock with wait 1 gave up after %.2f s", waited);
    assert_error_names_pid(fx->ctx, h.pid);

    /* The child lets go about 0.3 s after this; a wait of a few seconds gets the lock. */
    release_holder(&h);
    t0 = seconds_now();
    if (tokencert_state_lock(st, 10) != TC_OK)
        fail_msg("lock after the holder let go: %s", tokencert_ctx_error(fx->ctx));
    waited = seconds_now() - t0;
    assert_true(waited < 5.0);
    reap_holder(&h);
    tokencert_state_unlock(st);
    assert_int_equal(tokencert_state_lock(st, 0), TC_OK);
    tokencert_state_close(st);
}

static void test_lock_token(void **state)
{
    fixture *fx = *state;
    tokencert_state *st1 = open_store(fx, 1), *st2 = open_store(fx, 0);
    char *lock1 = join(fx->store, "token-SER-0001.lock");

    /* One run holds several tokens. */
    assert_int_equal(tokencert_state_lock_token(st1, "SER-0001", 0), TC_OK);
    assert_int_equal(tokencert_state_lock_token(st1, "SER-0002", 0), TC_OK);
    assert_true(exists(lock1));

    /* Another run is kept off those, not off other tokens nor the store lock. */
    assert_int_equal(tokencert_state_lock_token(st2, "SER-0001", 0), TC_ERR_IO);
    assert_error_has(fx->ctx, "in use by another tokencert run");
    assert_int_equal(tokencert_state_lock_token(st2, "SER-0002", 0), TC_ERR_IO);
    assert_int_equal(tokencert_state_lock_token(st2, "SER-0003", 0), TC_OK);
    assert_int_equal(tokencert_state_lock(st2, 0), TC_OK);
    tokencert_state_unlock(st2);

    /* Released by close. */
    tokencert_state_close(st1);
    assert_int_equal(tokencert_state_lock_token(st2, "SER-0001", 0), TC_OK);
    assert_int_equal(tokencert_state_lock_token(st2, "SER-0002", 0), TC_OK);
    tokencert_state_close(st2);
    free(lock1);
}

static void test_lock_token_other_process(void **state)
{
    fixture *fx = *state;
    tokencert_state *st;
    holder h;

    st = open_store(fx, 1);
    tokencert_state_close(st);
    h = start_holder(fx->store, "0123456789abcdef");
    st = open_store(fx, 0);

    assert_int_equal(tokencert_state_lock_token(st, "0123456789abcdef", 0), TC_ERR_IO);
    assert_error_has(fx->ctx, "in use by another tokencert run");
    assert_error_names_pid(fx->ctx, h.pid);
    /* Other tokens and the store itself are free. */
    assert_int_equal(tokencert_state_lock_token(st, "fedcba9876543210", 0), TC_OK);
    assert_int_equal(tokencert_state_lock(st, 0), TC_OK);

    reap_holder(&h);
    assert_int_equal(tokencert_state_lock_token(st, "0123456789abcdef", 0), TC_OK);
    tokencert_state_close(st);
}

/* ---- the SQLite layer (db.c) and the CA index through it ---------------------------------- */

static const char *const db_steps[] = {
    "CREATE TABLE marker (k TEXT PRIMARY KEY);",
    "CREATE TABLE t (v TEXT UNIQUE NOT NULL);",
};
static const tc_db_kind db_kind_v1 = {.what = "test file",
                                      .table = "marker",
                                      .migrations = db_steps,
                                      .n_migrations = 1,
                                      .busy_timeout_ms = 100};
static const tc_db_kind db_kind_v2 = {.what = "test file",
                                      .table = "marker",
                                      .migrations = db_steps,
                                      .n_migrations = 2,
                                      .busy_timeout_ms = 100};

static int raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int v = -1;

    /* Read-write: a WAL file is read through its shm file, which a reader may have to make. */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* A new file gets every step; an older one the steps it lacks, its data kept; a newer one and
 * another kind's file are refused naming the file. */
static void test_db_migrations(void **state)
{
    fixture *fx = *state;
    char *path = join(fx->dir, "t.db");
    tc_db *db = NULL;

    assert_int_equal(tc_db_open(fx->ctx, path, &db_kind_v1, 1, &db), TC_OK);
    assert_int_equal(tc_db_exec(db, "INSERT INTO marker VALUES ('kept')", "test"), TC_OK);
    tc_db_close(db);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 1);
    assert_int_equal(
        raw_int(path, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);

    assert_int_equal(tc_db_open(fx->ctx, path, &db_kind_v2, 0, &db), TC_OK);
    tc_db_close(db);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 2);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM marker WHERE k = 'kept'"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM t"), 0);

    /* This version knows one step; the file has two. */
    assert_int_equal(tc_db_open(fx->ctx, path, &db_kind_v1, 0, &db), TC_ERR_BAD_DATA);
    assert_null(db);
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), path));
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "newer tokencert"));
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 2);
    free(path);

    path = join(fx->dir, "other.db");
    assert_int_equal(raw_exec(path, "CREATE TABLE theirs (x); PRAGMA user_version = 1;"),
                     SQLITE_OK);
    assert_int_equal(tc_db_open(fx->ctx, path, &db_kind_v2, 0, &db), TC_ERR_BAD_DATA);
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "is not a tokencert test file"));
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 't'"), 0);
    free(path);
}

/* A bind that fails is reported by the step, which then writes nothing; a write SQLite refuses is
 * an error naming the file and what was being done. */
static void test_db_checked_writes(void **state)
{
    fixture *fx = *state;
    char *path = join(fx->dir, "t.db");
    tc_db *db = NULL;
    sqlite3_stmt *s = NULL;

    assert_int_equal(tc_db_open(fx->ctx, path, &db_kind_v2, 1, &db), TC_OK);
    assert_int_equal(tc_db_prepare(db, "INSERT INTO t (v) VALUES (?)", &s), TC_OK);
    tc_db_bind_text(db, s, 1, "a");
    tc_db_bind_text(db, s, 2, "no such parameter");
    assert_int_not_equal(tc_db_step_done(db, s, "adding a row"), TC_OK);
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "a value could not be bound"));
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), path));

    assert_int_equal(tc_db_prepare(db, "INSERT INTO t (v) VALUES (?)", &s), TC_OK);
    tc_db_bind_text(db, s, 1, "a");
    assert_int_equal(tc_db_step_done(db, s, "adding a row"), TC_OK);
    assert_int_equal(tc_db_begin(db), TC_OK);
    assert_int_equal(tc_db_prepare(db, "INSERT INTO t (v) VALUES (?)", &s), TC_OK);
    tc_db_bind_text(db, s, 1, "a");
    assert_int_equal(tc_db_step_done(db, s, "adding the row again"), TC_ERR_IO);
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "test file"));
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), path));
    assert_non_null(strstr(tokencert_ctx_error(fx->ctx), "adding the row again"));
    tc_db_rollback(db);
    tc_db_close(db);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM t"), 1);
    free(path);
}

/* A CA index as the CA wrote it before the SQLite layer (rollback journal, user_version 1, no
 * application_id) opens and reads through it, and keeps its schema version. */
static void test_ca_index_old_format(void **state)
{
    fixture *fx = *state;
    char *path = join(fx->dir, "ca.db");
    tokencert_ca_request *v = NULL, one;
    size_t n = 0;

    assert_int_equal(
        raw_exec(path,
                 "CREATE TABLE config (id INTEGER PRIMARY KEY CHECK (id = 1), subject TEXT NOT "
                 "NULL, key_type TEXT NOT NULL, approval TEXT NOT NULL CHECK (approval IN "
                 "('auto', 'manual')), validity INTEGER NOT NULL, issue_validity INTEGER NOT "
                 "NULL, own_token INTEGER NOT NULL, module TEXT, token_uri TEXT NOT NULL, "
                 "pin_source TEXT, key_id TEXT NOT NULL);"
                 "CREATE TABLE requests (id INTEGER PRIMARY KEY, subject TEXT NOT NULL, csr BLOB "
                 "NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'issued', "
                 "'rejected')), submitted INTEGER NOT NULL, decided INTEGER NOT NULL DEFAULT 0, "
                 "requested_not_before INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL "
                 "DEFAULT 0, not_after INTEGER NOT NULL DEFAULT 0, serial TEXT UNIQUE, reason "
                 "TEXT, cert BLOB);"
                 "PRAGMA user_version = 1;"
                 "INSERT INTO config VALUES (1, 'CN=old CA', 'ec:p256', 'manual', 100, 10, 1, "
                 "'/usr/lib/softhsm/libsofthsm2.so', 'pkcs11:token=tokencert-ca', 'file:/x', "
                 "'0a0b');"
                 "INSERT INTO requests (subject, csr, state, submitted, reason) VALUES "
                 "('CN=old', x'3000', 'rejected', 1700000000, 'old reason');"),
        SQLITE_OK);
    assert_int_equal(tokencert_ca_list(fx->ctx, fx->dir, &v, &n), TC_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].subject, "CN=old");
    assert_int_equal(v[0].state, TOKENCERT_REQ_REJECTED);
    assert_string_equal(v[0].reason, "old reason");
    tokencert_ca_requests_free(v, n);
    assert_int_equal(tokencert_ca_get(fx->ctx, fx->dir, 1, &one), TC_OK);
    assert_int_equal(one.submitted, 1700000000);
    tokencert_ca_request_clear(&one);
    assert_int_equal(tokencert_ca_get(fx->ctx, fx->dir, 2, &one), TC_ERR_NOT_FOUND);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(path, "PRAGMA application_id"), 0);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_default_dir),
        cmocka_unit_test_setup_teardown(test_open_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_dir_not_creatable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_untrusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_not_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_foreign_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_checked_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_index_old_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_token_other_process, setup, teardown),
    };

    /* Real time: the test clock must not move the timestamps checked here. */
    unsetenv("TOKENCERT_TEST_CLOCK");
    unsetenv("TOKENCERT_TEST_NOW");
    unsetenv("TOKENCERT_STATE_DIR");
    /* A holder that died must fail a test, not kill the run. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
