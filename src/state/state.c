/* state.c — the state store: one SQLite file holding requests and their progress, the
 * generations of each credential and an append-only history.
 *
 * The file is the lifecycle engine's memory across runs, so it is treated like a user's data: it
 * is opened only when it is recognisably ours (application_id, the meta table, a quick check, a
 * schema this version knows) and never written before that is established: the SQLite layer
 * (db.c) does that, and the WAL and busy timeout that keep readers (status) out of a writer's
 * (renew) way. Every write's result is checked and reported naming the file. */
#include "state/db.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_APPLICATION_ID  0x74634354 /* "tcCT" */
#define STATE_BUSY_TIMEOUT_MS 5000
#define STATE_LOCK_STEP_US    100000
#define STATE_MAX_TOKEN_LOCKS 16

struct tokencert_state {
    tokencert_ctx *ctx;
    tc_db *db;
    char *dir;
    char *path;
    int lock_fd;
    int token_fds[STATE_MAX_TOKEN_LOCKS];
    char *token_names[STATE_MAX_TOKEN_LOCKS]; /* the sanitised serials they lock */
    size_t n_token_fds;
};

/* ---- schema ------------------------------------------------------------------------------- */

/* migrations[i] takes a store from schema i to i + 1. Append; never edit a released step. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE credentials ("
    " name TEXT PRIMARY KEY, token_uri TEXT, token_serial TEXT, label TEXT, ca TEXT,"
    " ca_dir TEXT, module TEXT, created INTEGER NOT NULL DEFAULT 0,"
    " last_run INTEGER NOT NULL DEFAULT 0, last_result TEXT, last_error TEXT,"
    " deferred_since INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE requests ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, credential TEXT NOT NULL, state TEXT NOT NULL,"
    " failed_at TEXT, token_serial TEXT, key_id TEXT, key_reused INTEGER NOT NULL DEFAULT 0,"
    " key_type TEXT, subject TEXT, san TEXT, ca TEXT, ca_request_id TEXT, transaction_id TEXT,"
    " cert BLOB, not_before INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL, next_poll INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);"
    "CREATE INDEX requests_credential ON requests (credential, state);"
    "CREATE TABLE generations ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, credential TEXT NOT NULL, number INTEGER NOT NULL,"
    " state TEXT NOT NULL, token_serial TEXT, key_id TEXT, cert_sha256 TEXT, serial TEXT,"
    " subject TEXT, issuer TEXT, not_before INTEGER NOT NULL DEFAULT 0,"
    " not_after INTEGER NOT NULL DEFAULT 0, installed INTEGER NOT NULL DEFAULT 0,"
    " superseded INTEGER NOT NULL DEFAULT 0, pruned INTEGER NOT NULL DEFAULT 0,"
    " request INTEGER NOT NULL DEFAULT 0, UNIQUE (credential, number));"
    "CREATE TABLE history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, credential TEXT,"
    " event TEXT NOT NULL, result TEXT NOT NULL, detail TEXT);"
    "CREATE INDEX history_credential ON history (credential, id);"
    "CREATE TRIGGER history_no_update BEFORE UPDATE ON history"
    " BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;"
    "CREATE TRIGGER history_no_delete BEFORE DELETE ON history"
    " BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static const char *const request_state_names[] = {
    "created",   "key-generating", "key-generated", "submitting", "pending",   "issued",
    "installed", "active",         "rejected",      "failed",     "abandoned",
};
static const char *const generation_state_names[] = {"active", "superseded", "pruned"};

const char *tokencert_request_state_name(tokencert_request_state s)
{
    if ((int)s < 0 || (size_t)s >= sizeof request_state_names / sizeof request_state_names[0])
        return "unknown";
    return request_state_names[s];
}

int tokencert_request_state_open(tokencert_request_state s)
{
    return (s >= TOKENCERT_RS_CREATED && s <= TOKENCERT_RS_INSTALLED) || s == TOKENCERT_RS_FAILED;
}

const char *tokencert_generation_state_name(tokencert_generation_state s)
{
    if ((int)s < 0 || (size_t)s >= sizeof generation_state_names / sizeof generation_state_names[0])
        return "unknown";
    return generation_state_names[s];
}

static int name_index(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name != NULL && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

/* ---- errors and small helpers ------------------------------------------------------------- */

static tokencert_err exec_sql(tokencert_state *st, const char *sql, const char *what)
{
    return tc_db_exec(st->db, sql, what);
}

static tokencert_err prepare(tokencert_state *st, const char *sql, sqlite3_stmt **out)
{
    return tc_db_prepare(st->db, sql, out);
}

/* Steps a statement that returns no rows and finalizes it. */
static tokencert_err step_done(tokencert_state *st, sqlite3_stmt *s, const char *what)
{
    return tc_db_step_done(st->db, s, what);
}

/* Makes dir and its missing parents with mode 0700 (existing ones are left as they are). */
static tokencert_err make_dirs(tokencert_ctx *ctx, const char *dir)
{
    char *copy = tc_strdup(dir);
    struct stat sb;
    tokencert_err ret = TC_OK;

    if (copy == NULL)
        return TC_ERR_NOMEM;
    for (char *p = copy + 1; ret == TC_OK; p++) {
        int end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            ret = tc_error(ctx, TC_ERR_IO, "cannot create the state directory '%s': %s", dir,
                           strerror(errno));
        else if (stat(copy, &sb) != 0 || !S_ISDIR(sb.st_mode))
            ret = tc_error(ctx, TC_ERR_IO,
                           "cannot create the state directory '%s': '%s' is not a directory", dir,
                           copy);
        if (end)
            break;
        *p = '/';
    }
    free(copy);
    return ret;
}

/* ---- open and close ----------------------------------------------------------------------- */

/* The store names the modules renew loads, often as root: like the configuration, a state
 * directory or store that is a symbolic link, that belongs to someone other than the user and
 * root, or that group or others can write, is refused, naming the path. */
static tokencert_err refuse_untrusted(tokencert_ctx *ctx, const char *what, const char *path,
                                      const struct stat *sb)
{
    if (S_ISLNK(sb->st_mode))
        return tc_error(ctx, TC_ERR_BAD_DATA, "%s '%s' is a symbolic link: refused", what, path);
    if (sb->st_uid != 0 && sb->st_uid != geteuid())
        return tc_error(ctx, TC_ERR_BAD_DATA, "%s '%s' belongs to another user (uid %lu): refused",
                        what, path, (unsigned long)sb->st_uid);
    if ((sb->st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return tc_error(ctx, TC_ERR_BAD_DATA,
                        "%s '%s' is writable by group or others (mode %04o): refused", what, path,
                        (unsigned)(sb->st_mode & 07777));
    return TC_OK;
}

static tokencert_err check_dir(tokencert_ctx *ctx, const char *dir)
{
    struct stat sb;

    if (lstat(dir, &sb) != 0)
        return tc_error(ctx, TC_ERR_IO, "cannot read the state directory '%s': %s", dir,
                        strerror(errno));
    if (!S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode))
        return tc_error(ctx, TC_ERR_BAD_DATA, "the state directory '%s' is not a directory", dir);
    return refuse_untrusted(ctx, "the state directory", dir, &sb);
}

char *tokencert_state_default_dir(void)
{
    const char *env = getenv("TOKENCERT_STATE_DIR");
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");

    if (env != NULL && env[0] != '\0')
        return tc_strdup(env);
    if (geteuid() == 0)
        return tc_strdup("/var/lib/tokencert");
    if (xdg != NULL && xdg[0] == '/')
        return tc_asprintf("%s/tokencert", xdg);
    if (home == NULL || home[0] != '/') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL)
        return NULL;
    return tc_asprintf("%s/.local/state/tokencert", home);
}

/* The schema is recorded in the meta table too, for people reading the file with sqlite3. */
static tokencert_err record_schema(tc_db *db, int version)
{
    sqlite3_stmt *s = NULL;
    tokencert_err ret =
        tc_db_prepare(db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", &s);
    char v[16];

    if (ret != TC_OK)
        return ret;
    snprintf(v, sizeof v, "%d", version);
    tc_db_bind_text(db, s, 1, v);
    return tc_db_step_done(db, s, "cannot record the schema");
}

static const tc_db_kind state_kind = {
    .what = "state store",
    .application_id = STATE_APPLICATION_ID,
    .table = "meta",
    .migrations = migrations,
    .n_migrations = SCHEMA_VERSION,
    .busy_timeout_ms = STATE_BUSY_TIMEOUT_MS,
    .migrated = record_schema,
};

tokencert_err tokencert_state_open(tokencert_ctx *ctx, const char *dir, int create,
                                   tokencert_state **out)
{
    tokencert_state *st;
    tokencert_err ret;
    struct stat sb;

    tc_return_val_if_fail(ctx != NULL && dir != NULL && out != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return TC_ERR_NOMEM;
    st->ctx = ctx;
    st->lock_fd = -1;
    st->dir = tc_strdup(dir);
    st->path = tc_asprintf("%s/state.db", dir);
    if (st->dir == NULL || st->path == NULL) {
        ret = TC_ERR_NOMEM;
        goto fail;
    }
    /* A relative one is another store in every working directory. */
    if (dir[0] != '/') {
        ret = tc_error(ctx, TC_ERR_BAD_DATA,
                       "the state directory '%s' is not an absolute path: refused", dir);
        goto fail;
    }
    if (lstat(dir, &sb) == 0 && (ret = check_dir(ctx, dir)) != TC_OK)
        goto fail;
    if (lstat(st->path, &sb) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            ret = tc_error(ctx, TC_ERR_IO, "cannot read the state store %s: %s", st->path,
                           strerror(errno));
            goto fail;
        }
        if (!create) {
            ret = tc_error(ctx, TC_ERR_NOT_FOUND, "there is no state store in '%s' yet", dir);
            goto fail;
        }
        if ((ret = make_dirs(ctx, dir)) != TC_OK || (ret = check_dir(ctx, dir)) != TC_OK)
            goto fail;
        if (access(dir, W_OK | X_OK) != 0) {
            ret = tc_error(ctx, TC_ERR_IO, "cannot write in the state directory '%s': %s", dir,
                           strerror(errno));
            goto fail;
        }
    } else if (!S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "%s is not a regular file: not touched", st->path);
        goto fail;
    } else if ((ret = refuse_untrusted(ctx, "the state store", st->path, &sb)) != TC_OK) {
        goto fail;
    } else if (access(dir, W_OK | X_OK) != 0 || access(st->path, R_OK | W_OK) != 0) {
        /* SQLite needs to write the WAL and shm files beside the store. */
        ret = tc_error(ctx, TC_ERR_IO, "cannot write the state store %s: %s", st->path,
                       strerror(errno));
        goto fail;
    }

    ret = tc_db_open(ctx, st->path, &state_kind, 1, &st->db);
    if (ret != TC_OK)
        goto fail;
    *out = st;
    return TC_OK;
fail:
    tokencert_state_close(st);
    return ret;
}

void tokencert_state_close(tokencert_state *st)
{
    if (st == NULL)
        return;
    tc_db_close(st->db);
    tokencert_state_unlock(st);
    for (size_t i = 0; i < st->n_token_fds; i++) {
        close(st->token_fds[i]);
        free(st->token_names[i]);
    }
    free(st->dir);
    free(st->path);
    free(st);
}

const char *tokencert_state_path(const tokencert_state *st)
{
    return st != NULL ? st->path : NULL;
}

/* ---- locks -------------------------------------------------------------------------------- */

/* Takes an exclusive flock on path, waiting up to wait_seconds; writes our pid into it. what names
 * the thing locked for the message. */
static tokencert_err lock_file(tokencert_state *st, const char *path, const char *what,
                               int wait_seconds, int *fd_out)
{
    int fd;
    long waited_us = 0;
    char buf[32];

    *fd_out = -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return tc_error(st->ctx, TC_ERR_IO, "cannot open the lock %s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            tokencert_err e =
                tc_error(st->ctx, TC_ERR_IO, "cannot lock %s: %s", path, strerror(errno));
            close(fd);
            return e;
        }
        if (waited_us >= (long)wait_seconds * 1000000L) {
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            long pid = 0;
            close(fd);
            if (n > 0) {
                buf[n] = '\0';
                pid = strtol(buf, NULL, 10);
            }
            if (pid > 0)
                return tc_error(st->ctx, TC_ERR_IO,
                                "%s is in use by another tokencert run (pid %ld); try again later",
                                what, pid);
            return tc_error(st->ctx, TC_ERR_IO,
                            "%s is in use by another tokencert run; try again later", what);
        }
        usleep(STATE_LOCK_STEP_US);
        waited_us += STATE_LOCK_STEP_US;
    }
    snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, strlen(buf), 0) < 0) {
        /* The pid is only for the message of a run that waits. */
    }
    *fd_out = fd;
    return TC_OK;
}

tokencert_err tokencert_state_lock(tokencert_state *st, int wait_seconds)
{
    tokencert_err ret;
    char *path, *what;

    tc_return_val_if_fail(st != NULL && st->lock_fd < 0, TC_ERR_INVALID_ARG);
    path = tc_asprintf("%s/lock", st->dir);
    what = tc_asprintf("the state store %s", st->dir);
    ret = path != NULL && what != NULL ? lock_file(st, path, what, wait_seconds, &st->lock_fd)
                                       : TC_ERR_NOMEM;
    free(path);
    free(what);
    return ret;
}

void tokencert_state_unlock(tokencert_state *st)
{
    if (st == NULL || st->lock_fd < 0)
        return;
    /* The pid is left out once released so that a later message does not name a finished run. */
    if (ftruncate(st->lock_fd, 0) != 0) {
        /* nothing to do: the lock is released by close either way */
    }
    close(st->lock_fd);
    st->lock_fd = -1;
}

tokencert_err tokencert_state_lock_token(tokencert_state *st, const char *serial, int wait_seconds)
{
    tokencert_err ret;
    char *clean, *path = NULL, *what = NULL;
    int fd = -1;

    tc_return_val_if_fail(st != NULL && serial != NULL, TC_ERR_INVALID_ARG);
    clean = tc_strdup(serial[0] != '\0' ? serial : "unnamed");
    if (clean == NULL)
        return TC_ERR_NOMEM;
    for (char *p = clean; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            *p = '_';
    /* Held already by this store (several credentials on one token): nothing more to take. */
    for (size_t i = 0; i < st->n_token_fds; i++)
        if (strcmp(st->token_names[i], clean) == 0) {
            free(clean);
            return TC_OK;
        }
    if (st->n_token_fds >= STATE_MAX_TOKEN_LOCKS) {
        free(clean);
        return tc_error(st->ctx, TC_ERR_INTERNAL, "too many token locks held");
    }
    path = tc_asprintf("%s/token-%s.lock", st->dir, clean);
    what = tc_asprintf("the token %s", serial);
    ret =
        path != NULL && what != NULL ? lock_file(st, path, what, wait_seconds, &fd) : TC_ERR_NOMEM;
    if (ret == TC_OK) {
        st->token_fds[st->n_token_fds] = fd;
        st->token_names[st->n_token_fds++] = clean;
        clean = NULL;
    }
    free(clean);
    free(path);
    free(what);
    return ret;
}

/* ---- transactions ------------------------------------------------------------------------- */

tokencert_err tokencert_state_begin(tokencert_state *st)
{
    tc_return_val_if_fail(st != NULL, TC_ERR_INVALID_ARG);
    return exec_sql(st, "BEGIN IMMEDIATE", "cannot start a transaction");
}

tokencert_err tokencert_state_commit(tokencert_state *st)
{
    tc_return_val_if_fail(st != NULL, TC_ERR_INVALID_ARG);
    return exec_sql(st, "COMMIT", "cannot commit");
}

void tokencert_state_rollback(tokencert_state *st)
{
    if (st != NULL)
        tc_db_rollback(st->db);
}

/* ---- credentials -------------------------------------------------------------------------- */

#define CRED_COLS                                                                                  \
    "name, token_uri, token_serial, label, ca, ca_dir, module, created, last_run, last_result,"    \
    " last_error, deferred_since"

tokencert_err tokencert_state_credential_put(tokencert_state *st,
                                             const tokencert_state_credential *c)
{
    sqlite3_stmt *s;
    tokencert_err ret;

    tc_return_val_if_fail(st != NULL && c != NULL && c->name != NULL, TC_ERR_INVALID_ARG);
    if ((ret = prepare(st,
                       "INSERT OR REPLACE INTO credentials (" CRED_COLS
                       ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       &s)) != TC_OK)
        return ret;
    tc_db_bind_text(st->db, s, 1, c->name);
    tc_db_bind_text(st->db, s, 2, c->token_uri);
    tc_db_bind_text(st->db, s, 3, c->token_serial);
    tc_db_bind_text(st->db, s, 4, c->label);
    tc_db_bind_text(st->db, s, 5, c->ca);
    tc_db_bind_text(st->db, s, 6, c->ca_dir);
    tc_db_bind_text(st->db, s, 7, c->module);
    tc_db_bind_int64(st->db, s, 8, c->created);
    tc_db_bind_int64(st->db, s, 9, c->last_run);
    tc_db_bind_text(st->db, s, 10, c->last_result);
    tc_db_bind_text(st->db, s, 11, c->last_error);
    tc_db_bind_int64(st->db, s, 12, c->deferred_since);
    return step_done(st, s, "cannot record a credential");
}

tokencert_err tokencert_state_credential_forget(tokencert_state *st, const char *name)
{
    sqlite3_stmt *s;
    tokencert_err ret;
    int n = 0, row = 0;

    tc_return_val_if_fail(st != NULL && name != NULL, TC_ERR_INVALID_ARG);
    if ((ret = exec_sql(st, "SAVEPOINT forget", "cannot start a transaction")) != TC_OK)
        return ret;
    if ((ret = prepare(st, "SELECT count(*) FROM generations WHERE credential = ?", &s)) != TC_OK)
        goto fail;
    tc_db_bind_text(st->db, s, 1, name);
    ret = tc_db_step(st->db, s, "cannot read the generations", &row);
    if (ret == TC_OK && row)
        n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (ret != TC_OK)
        goto fail;
    if (n != 0) {
        ret = tc_error(st->ctx, TC_ERR_INVALID_ARG,
                       "the credential '%s' has certificates: it is not forgotten", name);
        goto fail;
    }
    if ((ret = prepare(st, "DELETE FROM requests WHERE credential = ?", &s)) != TC_OK)
        goto fail;
    tc_db_bind_text(st->db, s, 1, name);
    if ((ret = step_done(st, s, "cannot forget the requests")) != TC_OK)
        goto fail;
    if ((ret = prepare(st, "DELETE FROM credentials WHERE name = ?", &s)) != TC_OK)
        goto fail;
    tc_db_bind_text(st->db, s, 1, name);
    if ((ret = step_done(st, s, "cannot forget the credential")) != TC_OK)
        goto fail;
    return exec_sql(st, "RELEASE forget", "cannot commit");
fail:
    /* A savepoint that cannot be undone leaves the caller's transaction (if any) to roll back. */
    if (sqlite3_exec(st->db->h, "ROLLBACK TO forget; RELEASE forget", NULL, NULL, NULL) !=
        SQLITE_OK)
        tc_warning(st->ctx, "state store %s: cannot undo forgetting '%s': %s", st->path, name,
                   sqlite3_errmsg(st->db->h));
    return ret;
}

static tokencert_err credential_from_row(sqlite3_stmt *s, tokencert_state_credential *c)
{
    memset(c, 0, sizeof *c);
    c->name = tc_db_col_text(s, 0);
    c->token_uri = tc_db_col_text(s, 1);
    c->token_serial = tc_db_col_text(s, 2);
    c->label = tc_db_col_text(s, 3);
    c->ca = tc_db_col_text(s, 4);
    c->ca_dir = tc_db_col_text(s, 5);
    c->module = tc_db_col_text(s, 6);
    c->created = (time_t)sqlite3_column_int64(s, 7);
    c->last_run = (time_t)sqlite3_column_int64(s, 8);
    c->last_result = tc_db_col_text(s, 9);
    c->last_error = tc_db_col_text(s, 10);
    c->deferred_since = (time_t)sqlite3_column_int64(s, 11);
    return c->name != NULL ? TC_OK : TC_ERR_NOMEM;
}

tokencert_err tokencert_state_credential_get(tokencert_state *st, const char *name,
                                             tokencert_state_credential *out)
{
    sqlite3_stmt *s;
    tokencert_err ret;
    int row = 0;

    tc_return_val_if_fail(st != NULL && name != NULL && out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    if ((ret = prepare(st, "SELECT " CRED_COLS " FROM credentials WHERE name = ?", &s)) != TC_OK)
        return ret;
    tc_db_bind_text(st->db, s, 1, name);
    ret = tc_db_step(st->db, s, "cannot read a credential", &row);
    if (ret == TC_OK && row)
        ret = credential_from_row(s, out);
    else if (ret == TC_OK)
        ret = tc_error(st->ctx, TC_ERR_NOT_FOUND, "the state store knows no credential '%s'", name);
    sqlite3_finalize(s);
    if (ret != TC_OK)
        tokencert_state_credential_clear(out);
    return ret;
}

/* Collects the rows of a prepared SELECT into a growing array of elem_size elements. */
typedef tokencert_err (*row_fn)(sqlite3_stmt *s, void *elem);
typedef void (*clear_fn)(void *elem);

static tokencert_err collect(tokencert_state *st, sqlite3_stmt *s, size_t elem_size, row_fn row,
                             clear_fn clear, void **out, size_t *n)
{
    unsigned char *v = NULL;
    size_t count = 0, cap = 0;
    tokencert_err ret = TC_OK;
    int more = 0;

    while ((ret = tc_db_step(st->db, s, "cannot read the store", &more)) == TC_OK && more) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            unsigned char *nv = realloc(v, ncap * elem_size);
            if (nv == NULL) {
                ret = TC_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if ((ret = row(s, v + count * elem_size)) != TC_OK) {
            clear(v + count * elem_size);
            break;
        }
        count++;
    }
    sqlite3_finalize(s);
    if (ret != TC_OK) {
        for (size_t i = 0; i < count; i++)
            clear(v + i * elem_size);
        free(v);
        v = NULL;
        count = 0;
    }
    *out = v;
    *n = count;
    return ret;
}

static tokencert_err cred_row(sqlite3_stmt *s, void *e)
{
    return credential_from_row(s, e);
}

static void cred_clear(void *e)
{
    tokencert_state_credential_clear(e);
}

tokencert_err tokencert_state_credentials(tokencert_state *st, tokencert_state_credential **out,
                                          size_t *n)
{
    sqlite3_stmt *s;
    tokencert_err ret;
    void *v = NULL;

    tc_return_val_if_fail(st != NULL && out != NULL && n != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *n = 0;
    if ((ret = prepare(st, "SELECT " CRED_COLS " FROM credentials ORDER BY name", &s)) != TC_OK)
        return ret;
    ret = collect(st, s, sizeof **out, cred_row, cred_clear, &v, n);
    *out = v;
    return ret;
}

void tokencert_state_credential_clear(tokencert_state_credential *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->token_uri);
    free(c->token_serial);
    free(c->label);
    free(c->ca);
    free(c->ca_dir);
    free(c->module);
    free(c->last_result);
    free(c->last_error);
    memset(c, 0, sizeof *c);
}

void tokencert_state_credentials_free(tokencert_state_credential *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        tokencert_state_credential_clear(&v[i]);
    free(v);
}

/* ---- requests ----------------------------------------------------------------------------- */

#define REQ_COLS                                                                                   \
    "credential, state, failed_at, token_serial, key_id, key_reused, key_type, subject, san, ca,"  \
    " ca_request_id, transaction_id, cert, not_before, created, updated, next_poll, attempts,"     \
    " last_error"

static void bind_request(tokencert_state *st, sqlite3_stmt *s, const tokencert_state_request *r)
{
    tc_db_bind_text(st->db, s, 1, r->credential);
    tc_db_bind_text(st->db, s, 2, tokencert_request_state_name(r->state));
    tc_db_bind_text(st->db, s, 3,
                    r->state == TOKENCERT_RS_FAILED ? tokencert_request_state_name(r->failed_at)
                                                    : NULL);
    tc_db_bind_text(st->db, s, 4, r->token_serial);
    tc_db_bind_text(st->db, s, 5, r->key_id);
    tc_db_bind_int64(st->db, s, 6, r->key_reused != 0);
    tc_db_bind_text(st->db, s, 7, r->key_type);
    tc_db_bind_text(st->db, s, 8, r->subject);
    tc_db_bind_text(st->db, s, 9, r->san);
    tc_db_bind_text(st->db, s, 10, r->ca);
    tc_db_bind_text(st->db, s, 11, r->ca_request_id);
    tc_db_bind_text(st->db, s, 12, r->transaction_id);
    tc_db_bind_blob(st->db, s, 13, r->cert_len > 0 ? r->cert : NULL, r->cert_len);
    tc_db_bind_int64(st->db, s, 14, r->not_before);
    tc_db_bind_int64(st->db, s, 15, r->created);
    tc_db_bind_int64(st->db, s, 16, r->updated);
    tc_db_bind_int64(st->db, s, 17, r->next_poll);
    tc_db_bind_int64(st->db, s, 18, r->attempts);
    tc_db_bind_text(st->db, s, 19, r->last_error);
}

tokencert_err tokencert_state_request_add(tokencert_state *st, tokencert_state_request *r)
{
    sqlite3_stmt *s;
    tokencert_err ret;

    tc_return_val_if_fail(st != NULL && r != NULL && r->credential != NULL, TC_ERR_INVALID_ARG);
    r->created = r->updated = tc_now();
    if ((ret = prepare(st,
                       "INSERT INTO requests (" REQ_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                       " ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       &s)) != TC_OK)
        return ret;
    bind_request(st, s, r);
    if ((ret = step_done(st, s, "cannot record a request")) != TC_OK)
        return ret;
    r->id = (long long)sqlite3_last_insert_rowid(st->db->h);
    return TC_OK;
}

tokencert_err tokencert_state_request_update(tokencert_state *st, tokencert_state_request *r)
{
    sqlite3_stmt *s;
    tokencert_err ret;

    tc_return_val_if_fail(st != NULL && r != NULL && r->id > 0 && r->credential != NULL,
                          TC_ERR_INVALID_ARG);
    r->updated = tc_now();
    if ((ret = prepare(st,
                       "UPDATE requests SET (" REQ_COLS ") = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                       " ?, ?, ?, ?, ?, ?, ?) WHERE id = ?",
                       &s)) != TC_OK)
        return ret;
    bind_request(st, s, r);
    tc_db_bind_int64(st->db, s, 20, r->id);
    if ((ret = step_done(st, s, "cannot record a request")) != TC_OK)
        return ret;
    if (sqlite3_changes(st->db->h) != 1)
        return tc_error(st->ctx, TC_ERR_NOT_FOUND, "the state store has no request %lld", r->id);
    return TC_OK;
}

static tokencert_err request_row(sqlite3_stmt *s, void *e)
{
    tokencert_state_request *r = e;
    const void *cert;
    int state, failed_at, n = (int)(sizeof request_state_names / sizeof request_state_names[0]);

    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    r->credential = tc_db_col_text(s, 1);
    state = name_index(request_state_names, (size_t)n, (const char *)sqlite3_column_text(s, 2));
    failed_at = name_index(request_state_names, (size_t)n, (const char *)sqlite3_column_text(s, 3));
    r->state = state >= 0 ? (tokencert_request_state)state : TOKENCERT_RS_FAILED;
    r->failed_at = failed_at >= 0 ? (tokencert_request_state)failed_at : TOKENCERT_RS_CREATED;
    r->token_serial = tc_db_col_text(s, 4);
    r->key_id = tc_db_col_text(s, 5);
    r->key_reused = sqlite3_column_int(s, 6);
    r->key_type = tc_db_col_text(s, 7);
    r->subject = tc_db_col_text(s, 8);
    r->san = tc_db_col_text(s, 9);
    r->ca = tc_db_col_text(s, 10);
    r->ca_request_id = tc_db_col_text(s, 11);
    r->transaction_id = tc_db_col_text(s, 12);
    cert = sqlite3_column_blob(s, 13);
    r->cert_len = (size_t)sqlite3_column_bytes(s, 13);
    if (cert != NULL && r->cert_len > 0) {
        r->cert = malloc(r->cert_len);
        if (r->cert == NULL)
            return TC_ERR_NOMEM;
        memcpy(r->cert, cert, r->cert_len);
    } else {
        r->cert_len = 0;
    }
    r->not_before = (time_t)sqlite3_column_int64(s, 14);
    r->created = (time_t)sqlite3_column_int64(s, 15);
    r->updated = (time_t)sqlite3_column_int64(s, 16);
    r->next_poll = (time_t)sqlite3_column_int64(s, 17);
    r->attempts = sqlite3_column_int(s, 18);
    r->last_error = tc_db_col_text(s, 19);
    return r->credential != NULL ? TC_OK : TC_ERR_NOMEM;
}

static void request_clear(void *e)
{
    tokencert_state_request_clear(e);
}

tokencert_err tokencert_state_requests(tokencert_state *st, const char *credential, int open_only,
                                       tokencert_state_request **out, size_t *n)
{
    sqlite3_stmt *s;
    tokencert_err ret;
    void *v = NULL;
    tokencert_state_request *all;
    size_t count = 0, kept = 0;

    tc_return_val_if_fail(st != NULL && out != NULL && n != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *n = 0;
    if ((ret = prepare(st,
                       "SELECT id, " REQ_COLS " FROM requests WHERE ?1 IS NULL OR credential = ?1"
                       " ORDER BY id",
                       &s)) != TC_OK)
        return ret;
    tc_db_bind_text(st->db, s, 1, credential);
    if ((ret = collect(st, s, sizeof **out, request_row, request_clear, &v, &count)) != TC_OK)
        return ret;
    all = v;
    for (size_t i = 0; i < count; i++) {
        if (open_only && !tokencert_request_state_open(all[i].state)) {
            tokencert_state_request_clear(&all[i]);
            continue;
        }
        if (kept != i)
            all[kept] = all[i];
        kept++;
    }
    if (kept == 0) {
        free(all);
        all = NULL;
    }
    *out = all;
    *n = kept;
    return TC_OK;
}

void tokencert_state_request_clear(tokencert_state_request *r)
{
    if (r == NULL)
        return;
    free(r->credential);
    free(r->token_serial);
    free(r->key_id);
    free(r->key_type);
    free(r->subject);
    free(r->san);
    free(r->ca);
    free(r->ca_request_id);
    free(r->transaction_id);
    free(r->cert);
    free(r->last_error);
    memset(r, 0, sizeof *r);
}

void tokencert_state_requests_free(tokencert_state_request *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        tokencert_state_request_clear(&v[i]);
    free(v);
}

/* ---- generations -------------------------------------------------------------------------- */

#define GEN_COLS                                                                                   \
    "credential, number, state, token_serial, key_id, cert_sha256, serial, subject, issuer,"       \
    " not_before, not_after, installed, superseded, pruned, request"

static void bind_generation(tokencert_state *st, sqlite3_stmt *s,
                            const tokencert_state_generation *g)
{
    tc_db_bind_text(st->db, s, 1, g->credential);
    tc_db_bind_int64(st->db, s, 2, g->number);
    tc_db_bind_text(st->db, s, 3, tokencert_generation_state_name(g->state));
    tc_db_bind_text(st->db, s, 4, g->token_serial);
    tc_db_bind_text(st->db, s, 5, g->key_id);
    tc_db_bind_text(st->db, s, 6, g->cert_sha256);
    tc_db_bind_text(st->db, s, 7, g->serial);
    tc_db_bind_text(st->db, s, 8, g->subject);
    tc_db_bind_text(st->db, s, 9, g->issuer);
    tc_db_bind_int64(st->db, s, 10, g->not_before);
    tc_db_bind_int64(st->db, s, 11, g->not_after);
    tc_db_bind_int64(st->db, s, 12, g->installed);
    tc_db_bind_int64(st->db, s, 13, g->superseded);
    tc_db_bind_int64(st->db, s, 14, g->pruned);
    tc_db_bind_int64(st->db, s, 15, g->request);
}

tokencert_err tokencert_state_generation_add(tokencert_state *st, tokencert_state_generation *g)
{
    sqlite3_stmt *s;
    tokencert_err ret;
    int row = 0;

    tc_return_val_if_fail(st != NULL && g != NULL && g->credential != NULL, TC_ERR_INVALID_ARG);
    /* The number is computed inside the INSERT, so two writers cannot pick the same one. */
    if ((ret = prepare(st,
                       "INSERT INTO generations (" GEN_COLS ") VALUES (?1, (SELECT"
                       " coalesce(max(number), 0) + 1 FROM generations WHERE credential = ?1),"
                       " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                       &s)) != TC_OK)
        return ret;
    bind_generation(st, s, g);
    if ((ret = step_done(st, s, "cannot record a generation")) != TC_OK)
        return ret;
    g->id = (long long)sqlite3_last_insert_rowid(st->db->h);
    if ((ret = prepare(st, "SELECT number FROM generations WHERE id = ?", &s)) != TC_OK)
        return ret;
    tc_db_bind_int64(st->db, s, 1, g->id);
    ret = tc_db_step(st->db, s, "cannot read a generation back", &row);
    if (ret == TC_OK && row)
        g->number = sqlite3_column_int64(s, 0);
    else if (ret == TC_OK)
        ret = tc_error(st->ctx, TC_ERR_INTERNAL,
                       "state store %s: the generation just recorded "
                       "is not there",
                       st->path);
    sqlite3_finalize(s);
    return ret;
}

tokencert_err tokencert_state_generation_update(tokencert_state *st,
                                                const tokencert_state_generation *g)
{
    sqlite3_stmt *s;
    tokencert_err ret;

    tc_return_val_if_fail(st != NULL && g != NULL && g->id > 0 && g->credential != NULL,
                          TC_ERR_INVALID_ARG);
    if ((ret = prepare(st,
                       "UPDATE generations SET (" GEN_COLS ") = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                       " ?, ?, ?, ?) WHERE id = ?",
                       &s)) != TC_OK)
        return ret;
    bind_generation(st, s, g);
    tc_db_bind_int64(st->db, s, 16, g->id);
    if ((ret = step_done(st, s, "cannot record a generation")) != TC_OK)
        return ret;
    if (sqlite3_changes(st->db->h) != 1)
        return tc_error(st->ctx, TC_ERR_NOT_FOUND, "the state store has no generation %lld", g->id);
    return TC_OK;
}

static tokencert_err generation_row(sqlite3_stmt *s, void *e)
{
    tokencert_state_generation *g = e;
    int state = name_index(generation_state_names,
                           sizeof generation_state_names / sizeof generation_state_names[0],
                           (const char *)sqlite3_column_text(s, 3));

    memset(g, 0, sizeof *g);
    g->id = sqlite3_column_int64(s, 0);
    g->credential = tc_db_col_text(s, 1);
    g->number = sqlite3_column_int64(s, 2);
    g->state = state >= 0 ? (tokencert_generation_state)state : TOKENCERT_GEN_SUPERSEDED;
    g->token_serial = tc_db_col_text(s, 4);
    g->key_id = tc_db_col_text(s, 5);
    g->cert_sha256 = tc_db_col_text(s, 6);
    g->serial = tc_db_col_text(s, 7);
    g->subject = tc_db_col_text(s, 8);
    g->issuer = tc_db_col_text(s, 9);
    g->not_before = (time_t)sqlite3_column_int64(s, 10);
    g->not_after = (time_t)sqlite3_column_int64(s, 11);
    g->installed = (time_t)sqlite3_column_int64(s, 12);
    g->superseded = (time_t)sqlite3_column_int64(s, 13);
    g->pruned = (time_t)sqlite3_column_int64(s, 14);
    g->request = sqlite3_column_int64(s, 15);
    return g->credential != NULL ? TC_OK : TC_ERR_NOMEM;
}

static void generation_clear(void *e)
{
    tokencert_state_generation_clear(e);
}

tokencert_err tokencert_state_generations(tokencert_state *st, const char *credential,
                                          int include_pruned, tokencert_state_generation **out,
                                          size_t *n)
{
    sqlite3_stmt *s;
    tokencert_err ret;
    void *v = NULL;

    tc_return_val_if_fail(st != NULL && out != NULL && n != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *n = 0;
    if ((ret = prepare(st,
                       "SELECT id, " GEN_COLS " FROM generations WHERE (?1 IS NULL OR"
                       " credential = ?1) AND (?2 OR state <> 'pruned') ORDER BY credential,"
                       " number",
                       &s)) != TC_OK)
        return ret;
    tc_db_bind_text(st->db, s, 1, credential);
    tc_db_bind_int64(st->db, s, 2, include_pruned != 0);
    ret = collect(st, s, sizeof **out, generation_row, generation_clear, &v, n);
    *out = v;
    return ret;
}

void tokencert_state_generation_clear(tokencert_state_generation *g)
{
    if (g == NULL)
        return;
    free(g->credential);
    free(g->token_serial);
    free(g->key_id);
    free(g->cert_sha256);
    free(g->serial);
    free(g->subject);
    free(g->issuer);
    memset(g, 0, sizeof *g);
}

void tokencert_state_generations_free(tokencert_state_generation *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        tokencert_state_generation_clear(&v[i]);
    free(v);
}

/* ---- history ------------------------------------------------------------------------------ */

tokencert_err tokencert_state_log(tokencert_state *st, const char *credential, const char *event,
                                  const char *result, const char *detail)
{
    sqlite3_stmt *s;
    tokencert_err ret;

    tc_return_val_if_fail(st != NULL && event != NULL && result != NULL, TC_ERR_INVALID_ARG);
    if ((ret = prepare(st,
                       "INSERT INTO history (time, credential, event, result, detail)"
                       " VALUES (?, ?, ?, ?, ?)",
                       &s)) != TC_OK)
        return ret;
    tc_db_bind_int64(st->db, s, 1, tc_now());
    tc_db_bind_text(st->db, s, 2, credential);
    tc_db_bind_text(st->db, s, 3, event);
    tc_db_bind_text(st->db, s, 4, result);
    tc_db_bind_text(st->db, s, 5, detail);
    return step_done(st, s, "cannot append to the history");
}

static tokencert_err event_row(sqlite3_stmt *s, void *e)
{
    tokencert_state_event *ev = e;

    memset(ev, 0, sizeof *ev);
    ev->id = sqlite3_column_int64(s, 0);
    ev->time = (time_t)sqlite3_column_int64(s, 1);
    ev->credential = tc_db_col_text(s, 2);
    ev->event = tc_db_col_text(s, 3);
    ev->result = tc_db_col_text(s, 4);
    ev->detail = tc_db_col_text(s, 5);
    return ev->event != NULL && ev->result != NULL ? TC_OK : TC_ERR_NOMEM;
}

static void event_clear(void *e)
{
    tokencert_state_event *ev = e;
    free(ev->credential);
    free(ev->event);
    free(ev->result);
    free(ev->detail);
    memset(ev, 0, sizeof *ev);
}

tokencert_err tokencert_state_history(tokencert_state *st, const char *credential,
                                      tokencert_state_event **out, size_t *n)
{
    sqlite3_stmt *s;
    tokencert_err ret;
    void *v = NULL;

    tc_return_val_if_fail(st != NULL && out != NULL && n != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *n = 0;
    if ((ret = prepare(st,
                       "SELECT id, time, credential, event, result, detail FROM history"
                       " WHERE ?1 IS NULL OR credential = ?1 ORDER BY id",
                       &s)) != TC_OK)
        return ret;
    tc_db_bind_text(st->db, s, 1, credential);
    ret = collect(st, s, sizeof **out, event_row, event_clear, &v, n);
    *out = v;
    return ret;
}

void tokencert_state_history_free(tokencert_state_event *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        event_clear(&v[i]);
    free(v);
}

/* ---- reading for reports ----------------------------------------------------------------- */

void tokencert_records_clear(tokencert_records *r)
{
    if (r == NULL)
        return;
    tokencert_state_credentials_free(r->creds, r->n_creds);
    tokencert_state_requests_free(r->requests, r->n_requests);
    tokencert_state_generations_free(r->generations, r->n_generations);
    tokencert_state_history_free(r->events, r->n_events);
    memset(r, 0, sizeof *r);
}

tokencert_err tc_records_of(tokencert_state *st, const char *credential, unsigned what,
                            tokencert_records *out)
{
    tokencert_err err = TC_OK;

    memset(out, 0, sizeof *out);
    if ((what & TOKENCERT_RECORDS_CREDENTIALS) != 0) {
        if (credential == NULL) {
            err = tokencert_state_credentials(st, &out->creds, &out->n_creds);
        } else {
            tokencert_state_credential one;
            memset(&one, 0, sizeof one);
            err = tokencert_state_credential_get(st, credential, &one);
            if (err == TC_OK) {
                out->creds = malloc(sizeof *out->creds);
                if (out->creds == NULL) {
                    tokencert_state_credential_clear(&one);
                    err = TC_ERR_NOMEM;
                } else {
                    out->creds[0] = one;
                    out->n_creds = 1;
                }
            } else if (err == TC_ERR_NOT_FOUND) {
                err = TC_OK;
            }
        }
    }
    if (err == TC_OK &&
        (what & (TOKENCERT_RECORDS_REQUESTS | TOKENCERT_RECORDS_OPEN_REQUESTS)) != 0)
        err = tokencert_state_requests(st, credential, (what & TOKENCERT_RECORDS_REQUESTS) == 0,
                                       &out->requests, &out->n_requests);
    if (err == TC_OK && (what & TOKENCERT_RECORDS_GENERATIONS) != 0)
        err =
            tokencert_state_generations(st, credential, 1, &out->generations, &out->n_generations);
    if (err == TC_OK && (what & TOKENCERT_RECORDS_EVENTS) != 0)
        err = tokencert_state_history(st, credential, &out->events, &out->n_events);
    if (err != TC_OK)
        tokencert_records_clear(out);
    return err;
}

tokencert_err tokencert_records_read(tokencert_ctx *ctx, const char *dir, const char *credential,
                                     unsigned what, tokencert_records *out)
{
    tokencert_state *st = NULL;
    char *def = NULL;
    tokencert_err err;

    tc_return_val_if_fail(ctx != NULL && out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    if (dir == NULL && (dir = def = tokencert_state_default_dir()) == NULL)
        return tc_error(ctx, TC_ERR_NOT_FOUND, "no state directory (HOME is not set)");
    err = tokencert_state_open(ctx, dir, 0, &st);
    free(def);
    if (err != TC_OK)
        return err;
    err = tc_records_of(st, credential, what, out);
    tokencert_state_close(st);
    return err;
}
