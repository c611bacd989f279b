/* state.h — the state store's rows (state.c), for the engine and the CA index: SQLite with WAL,
 * a busy timeout and a schema version; the file 0600 in a 0700 directory. The public header
 * gives readers tokencert_records_read(); everything that writes is here. */
#ifndef TOKENCERT_STATE_STATE_H
#define TOKENCERT_STATE_STATE_H

#include "tokencert.h"

typedef struct tokencert_state tokencert_state;

/* Opens (creating dir and file when create is set) DIR/state.db. A file that is not a tokencert
 * store, is corrupt, or has a newer schema is refused (TC_ERR_BAD_DATA) and never written; a
 * directory that cannot be written is TC_ERR_IO naming it. Older schemas are migrated. */
tokencert_err tokencert_state_open(tokencert_ctx *ctx, const char *dir, int create,
                                   tokencert_state **out);
void tokencert_state_close(tokencert_state *st);
const char *tokencert_state_path(const tokencert_state *st);
/* Exclusive lock on the store (DIR/lock, flock), held until unlock or close. Waits up to
 * wait_seconds; then TC_ERR_IO naming the holder's pid when known. Reentrant: no. */
tokencert_err tokencert_state_lock(tokencert_state *st, int wait_seconds);
void tokencert_state_unlock(tokencert_state *st);
/* Exclusive lock for one token (DIR/token-SERIAL.lock), released by close; taking it again
 * through the same store (several credentials on one token) succeeds at once. */
tokencert_err tokencert_state_lock_token(tokencert_state *st, const char *serial, int wait_seconds);
/* Transactions around several writes (each write is its own transaction otherwise). */
tokencert_err tokencert_state_begin(tokencert_state *st);
tokencert_err tokencert_state_commit(tokencert_state *st);
void tokencert_state_rollback(tokencert_state *st);

/* Credentials: put inserts or replaces by name. */
tokencert_err tokencert_state_credential_put(tokencert_state *st,
                                             const tokencert_state_credential *c);
/* TC_ERR_NOT_FOUND when unknown. */
tokencert_err tokencert_state_credential_get(tokencert_state *st, const char *name,
                                             tokencert_state_credential *out);
tokencert_err tokencert_state_credentials(tokencert_state *st, tokencert_state_credential **out,
                                          size_t *n);
/* Removes a credential that never had a generation, with its requests (the history stays): an
 * enrollment that failed and left the token as it found it leaves no credential behind.
 * TC_ERR_INVALID_ARG when it has generations (nothing is removed). */
tokencert_err tokencert_state_credential_forget(tokencert_state *st, const char *name);
void tokencert_state_credential_clear(tokencert_state_credential *c);
void tokencert_state_credentials_free(tokencert_state_credential *v, size_t n);

/* Requests: add sets r->id, r->created and r->updated; update writes every field by id (and sets
 * updated). list: credential NULL for all; open_only for those tokencert_request_state_open()
 * says need work. Ordered by id. */
tokencert_err tokencert_state_request_add(tokencert_state *st, tokencert_state_request *r);
tokencert_err tokencert_state_request_update(tokencert_state *st, tokencert_state_request *r);
tokencert_err tokencert_state_requests(tokencert_state *st, const char *credential, int open_only,
                                       tokencert_state_request **out, size_t *n);
void tokencert_state_request_clear(tokencert_state_request *r);
void tokencert_state_requests_free(tokencert_state_request *v, size_t n);

/* Generations: add sets g->id and g->number (one more than the credential's highest). list:
 * ordered by number; include_pruned 0 leaves pruned ones out. */
tokencert_err tokencert_state_generation_add(tokencert_state *st, tokencert_state_generation *g);
tokencert_err tokencert_state_generation_update(tokencert_state *st,
                                                const tokencert_state_generation *g);
tokencert_err tokencert_state_generations(tokencert_state *st, const char *credential,
                                          int include_pruned, tokencert_state_generation **out,
                                          size_t *n);
void tokencert_state_generation_clear(tokencert_state_generation *g);
void tokencert_state_generations_free(tokencert_state_generation *v, size_t n);

/* History: append-only. detail may be NULL. Listed oldest first; credential NULL for all. */
tokencert_err tokencert_state_log(tokencert_state *st, const char *credential, const char *event,
                                  const char *result, const char *detail);
tokencert_err tokencert_state_history(tokencert_state *st, const char *credential,
                                      tokencert_state_event **out, size_t *n);
void tokencert_state_history_free(tokencert_state_event *v, size_t n);

/* tokencert_records_read() on an open store. */
tokencert_err tc_records_of(tokencert_state *st, const char *credential, unsigned what,
                            tokencert_records *out);

#endif /* TOKENCERT_STATE_STATE_H */
