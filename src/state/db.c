/* db.c — the one SQLite layer under the state store and the CA index.
 *
 * Both files are users' data: a file is opened only when it is recognisably ours (its
 * application_id when the kind has one, its marker table, a quick check, a schema this version
 * knows), and nothing is written before that is established. WAL keeps readers out of a writer's
 * way; the busy timeout covers the short write transactions of another process. */
#include "state/db.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

tokencert_err tc_db_error(tc_db *db, const char *what)
{
    int code = db->h != NULL ? sqlite3_errcode(db->h) : SQLITE_NOMEM;
    tokencert_err err =
        (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? TC_ERR_BAD_DATA : TC_ERR_IO;
    return tc_error(db->ctx, err, "%s %s: %s: %s", db->kind->what, db->path, what,
                    db->h != NULL ? sqlite3_errmsg(db->h) : "out of memory");
}

tokencert_err tc_db_exec(tc_db *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
        return tc_db_error(db, what);
    return TC_OK;
}

tokencert_err tc_db_prepare(tc_db *db, const char *sql, sqlite3_stmt **out)
{
    *out = NULL;
    db->bind_rc = SQLITE_OK;
    if (sqlite3_prepare_v2(db->h, sql, -1, out, NULL) != SQLITE_OK)
        return tc_db_error(db, "cannot prepare a statement");
    return TC_OK;
}

static void bind_result(tc_db *db, int rc)
{
    if (rc != SQLITE_OK && db->bind_rc == SQLITE_OK)
        db->bind_rc = rc;
}

void tc_db_bind_text(tc_db *db, sqlite3_stmt *s, int i, const char *v)
{
    bind_result(db, v != NULL ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT)
                              : sqlite3_bind_null(s, i));
}

void tc_db_bind_blob(tc_db *db, sqlite3_stmt *s, int i, const void *v, size_t n)
{
    if (v == NULL)
        bind_result(db, sqlite3_bind_null(s, i));
    else
        bind_result(db, sqlite3_bind_blob64(s, i, v, (sqlite3_uint64)n, SQLITE_TRANSIENT));
}

void tc_db_bind_int64(tc_db *db, sqlite3_stmt *s, int i, long long v)
{
    bind_result(db, sqlite3_bind_int64(s, i, (sqlite3_int64)v));
}

tokencert_err tc_db_step(tc_db *db, sqlite3_stmt *s, const char *what, int *row)
{
    int rc;

    *row = 0;
    if (db->bind_rc != SQLITE_OK)
        return tc_error(db->ctx, db->bind_rc == SQLITE_NOMEM ? TC_ERR_NOMEM : TC_ERR_INTERNAL,
                        "%s %s: %s: a value could not be bound: %s", db->kind->what, db->path, what,
                        sqlite3_errstr(db->bind_rc));
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *row = 1;
        return TC_OK;
    }
    if (rc == SQLITE_DONE)
        return TC_OK;
    return tc_db_error(db, what);
}

tokencert_err tc_db_step_done(tc_db *db, sqlite3_stmt *s, const char *what)
{
    int row = 0;
    tokencert_err ret = tc_db_step(db, s, what, &row);

    if (ret == TC_OK && row)
        ret = tc_error(db->ctx, TC_ERR_INTERNAL, "%s %s: %s: a statement returned rows",
                       db->kind->what, db->path, what);
    sqlite3_finalize(s);
    return ret;
}

tokencert_err tc_db_begin(tc_db *db)
{
    return tc_db_exec(db, "BEGIN IMMEDIATE", "cannot start a transaction");
}

tokencert_err tc_db_commit(tc_db *db)
{
    return tc_db_exec(db, "COMMIT", "cannot commit");
}

void tc_db_rollback(tc_db *db)
{
    if (db == NULL || db->h == NULL || sqlite3_get_autocommit(db->h))
        return;
    if (sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        tc_warning(db->ctx, "%s %s: cannot roll back: %s", db->kind->what, db->path,
                   sqlite3_errmsg(db->h));
}

char *tc_db_col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t != NULL ? tc_strdup((const char *)t) : NULL;
}

/* One integer from a PRAGMA or a query; -1 when it cannot be read. */
static int query_int(tc_db *db, const char *sql, int col, int *out)
{
    sqlite3_stmt *s = NULL;
    int ok =
        sqlite3_prepare_v2(db->h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW;
    if (ok)
        *out = sqlite3_column_int(s, col);
    sqlite3_finalize(s);
    return ok ? 0 : -1;
}

/* Refuses, without writing a byte, a file that is not of this kind or of a schema we know.
 * *version gets the schema (0: a new, empty file). */
static tokencert_err check_file(tc_db *db, int *version)
{
    const tc_db_kind *k = db->kind;
    sqlite3_stmt *s = NULL;
    int app_id = 0, user_version = 0, n_tables = 0, has_table = 0;
    char *sql = NULL;
    tokencert_err ret = TC_OK;

    /* Reading the header is the first read: a file that is not SQLite fails here. */
    if (query_int(db, "PRAGMA application_id", 0, &app_id) != 0) {
        ret = tc_error(db->ctx, TC_ERR_BAD_DATA, "%s is not a tokencert %s (%s): not touched",
                       db->path, k->what, sqlite3_errmsg(db->h));
        goto out;
    }
    sql = tc_asprintf("SELECT count(*), coalesce(sum(name = '%s'), 0) FROM sqlite_master "
                      "WHERE type = 'table'",
                      k->table);
    if (sql == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (query_int(db, "PRAGMA user_version", 0, &user_version) != 0 ||
        query_int(db, sql, 0, &n_tables) != 0 || query_int(db, sql, 1, &has_table) != 0) {
        ret = tc_error(db->ctx, TC_ERR_BAD_DATA, "%s is corrupt (%s): not touched", db->path,
                       sqlite3_errmsg(db->h));
        goto out;
    }
    if (app_id == 0 && user_version == 0 && n_tables == 0) {
        *version = 0; /* new */
        goto out;
    }
    if (app_id != k->application_id || !has_table) {
        ret = tc_error(db->ctx, TC_ERR_BAD_DATA,
                       "%s is not a tokencert %s (another program's database?): not touched",
                       db->path, k->what);
        goto out;
    }
    if (user_version > k->n_migrations) {
        ret = tc_error(db->ctx, TC_ERR_BAD_DATA,
                       "%s was written by a newer tokencert (schema %d; this version knows up to "
                       "%d): not touched",
                       db->path, user_version, k->n_migrations);
        goto out;
    }
    if (sqlite3_prepare_v2(db->h, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW || sqlite3_column_text(s, 0) == NULL ||
        strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
        const unsigned char *why = s != NULL ? sqlite3_column_text(s, 0) : NULL;
        const char *w = why != NULL ? (const char *)why : sqlite3_errmsg(db->h);
        /* quick_check's report starts "*** in database main ***" and runs over lines: the first
         * finding is enough to say why. */
        if (strncmp(w, "*** ", 4) == 0 && strchr(w, '\n') != NULL)
            w = strchr(w, '\n') + 1;
        ret = tc_error(db->ctx, TC_ERR_BAD_DATA, "%s is corrupt (%.*s): not touched", db->path,
                       (int)strcspn(w, "\n"), w);
        goto out;
    }
    *version = user_version;
out:
    sqlite3_finalize(s);
    free(sql);
    return ret;
}

static tokencert_err migrate(tc_db *db, int from)
{
    const tc_db_kind *k = db->kind;
    tokencert_err ret;
    char *sql = NULL;

    if (from >= k->n_migrations)
        return TC_OK;
    ret = tc_db_exec(db, "BEGIN IMMEDIATE", "cannot start the migration");
    if (ret != TC_OK)
        return ret;
    for (int v = from; v < k->n_migrations && ret == TC_OK; v++)
        ret = tc_db_exec(db, k->migrations[v], "cannot migrate the schema");
    if (ret == TC_OK) {
        sql = k->application_id != 0 ? tc_asprintf("PRAGMA application_id = %d; "
                                                   "PRAGMA user_version = %d;",
                                                   k->application_id, k->n_migrations)
                                     : tc_asprintf("PRAGMA user_version = %d;", k->n_migrations);
        ret = sql != NULL ? tc_db_exec(db, sql, "cannot record the schema") : TC_ERR_NOMEM;
    }
    if (ret == TC_OK && k->migrated != NULL)
        ret = k->migrated(db, k->n_migrations);
    if (ret == TC_OK)
        ret = tc_db_exec(db, "COMMIT", "cannot finish the migration");
    if (ret != TC_OK)
        tc_db_rollback(db);
    free(sql);
    return ret;
}

tokencert_err tc_db_open(tokencert_ctx *ctx, const char *path, const tc_db_kind *kind, int create,
                         tc_db **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_db *db = NULL;
    int version = 0;
    mode_t old_mask;

    tc_return_val_if_fail(ctx != NULL && path != NULL && kind != NULL && out != NULL,
                          TC_ERR_INVALID_ARG);
    *out = NULL;
    db = calloc(1, sizeof *db);
    if (db == NULL)
        return TC_ERR_NOMEM;
    db->ctx = ctx;
    db->kind = kind;
    db->path = tc_strdup(path);
    if (db->path == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    old_mask = umask(077); /* the file, its WAL and shm files: 0600 */
    if (sqlite3_open_v2(path, &db->h,
                        SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) |
                            SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK) {
        umask(old_mask);
        ret = tc_error(ctx, TC_ERR_IO, "cannot open the %s %s: %s", kind->what, path,
                       db->h != NULL ? sqlite3_errmsg(db->h) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db->h, kind->busy_timeout_ms);
    sqlite3_extended_result_codes(db->h, 0);
    ret = check_file(db, &version);
    if (ret == TC_OK)
        ret = tc_db_exec(db, "PRAGMA journal_mode = WAL", "cannot switch to WAL");
    if (ret == TC_OK)
        ret = tc_db_exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL",
                         "cannot set the options");
    if (ret == TC_OK)
        ret = migrate(db, version);
    umask(old_mask);
    if (ret != TC_OK)
        goto out;
    chmod(path, 0600);
    *out = db;
    db = NULL;
    ret = TC_OK;
out:
    tc_db_close(db);
    return ret;
}

void tc_db_close(tc_db *db)
{
    if (db == NULL)
        return;
    if (db->h != NULL)
        sqlite3_close(db->h);
    free(db->path);
    free(db);
}
