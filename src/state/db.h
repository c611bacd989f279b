/* state/db.h — the one SQLite layer: the state store (state.db) and the embedded CA's index
 * (ca.db) are both opened, checked, migrated and written through it. Never installed. */
#ifndef TOKENCERT_SRC_STATE_DB_H
#define TOKENCERT_SRC_STATE_DB_H

#include "token/token.h"

#include <sqlite3.h>

/* What kind of file a database is, and how it grows. */
typedef struct tc_db tc_db;
typedef struct {
    const char *what;   /* names the kind in messages: "state store", "CA index" */
    int application_id; /* PRAGMA application_id it carries; 0: none set or checked */
    const char *table;  /* a table every file of this kind has (recognising it as ours) */
    /* migrations[i] takes a file from schema i to i + 1. Append; never edit a released step. */
    const char *const *migrations;
    int n_migrations;
    int busy_timeout_ms;
    /* Called inside the migration's transaction after the steps (e.g. to record the schema in a
     * table); may be NULL. */
    tokencert_err (*migrated)(tc_db *db, int version);
} tc_db_kind;

struct tc_db {
    tokencert_ctx *ctx; /* borrowed */
    sqlite3 *h;
    char *path;
    const tc_db_kind *kind;
    int bind_rc; /* the first failed bind since the last prepare (SQLITE_OK: none) */
};

/* Opens path (created when create is set and it does not exist), refusing without writing a byte
 * a file that is not of this kind or has a newer schema, or is corrupt (TC_ERR_BAD_DATA naming
 * the file). Then WAL, full sync, foreign keys, and the migrations it lacks in one transaction.
 * Files are made with mode 0600. The caller checks beforehand whether the file should exist. */
tokencert_err tc_db_open(tokencert_ctx *ctx, const char *path, const tc_db_kind *kind, int create,
                         tc_db **out);
void tc_db_close(tc_db *db);

/* Records an error naming the kind, the file, what was being done and SQLite's message; corrupt
 * files are TC_ERR_BAD_DATA, everything else TC_ERR_IO. */
tokencert_err tc_db_error(tc_db *db, const char *what);
tokencert_err tc_db_exec(tc_db *db, const char *sql, const char *what);
/* Prepares sql; resets the sticky bind error. */
tokencert_err tc_db_prepare(tc_db *db, const char *sql, sqlite3_stmt **out);
/* Binds that cannot be forgotten: the first failure is kept and reported by the next step. Text
 * and blobs are copied (NULL text binds NULL). */
void tc_db_bind_text(tc_db *db, sqlite3_stmt *s, int i, const char *v);
void tc_db_bind_blob(tc_db *db, sqlite3_stmt *s, int i, const void *v, size_t n);
void tc_db_bind_int64(tc_db *db, sqlite3_stmt *s, int i, long long v);
/* Steps once: *row 1 for a row, 0 when done; anything else (a failed bind included) an error. */
tokencert_err tc_db_step(tc_db *db, sqlite3_stmt *s, const char *what, int *row);
/* Steps a statement that returns no rows, and finalizes it whatever happened. */
tokencert_err tc_db_step_done(tc_db *db, sqlite3_stmt *s, const char *what);

/* BEGIN IMMEDIATE (the write lock at once, so that a check and its update are not split), COMMIT,
 * and ROLLBACK when a transaction is open (a failure to roll back is a warning: SQLite rolls back
 * an open transaction when the connection closes). */
tokencert_err tc_db_begin(tc_db *db);
tokencert_err tc_db_commit(tc_db *db);
void tc_db_rollback(tc_db *db);

/* A column's text, copied; NULL for NULL (or out of memory). */
char *tc_db_col_text(sqlite3_stmt *s, int i);

#endif /* TOKENCERT_SRC_STATE_DB_H */
