/* enroll.h — the CA backend interface: how the engine sends a request to a CA and asks about it.
 * One backend per protocol (local: the embedded CA; manual: files exchanged by hand; next the
 * network protocols). A backend knows nothing of the state store or the token: the engine hands
 * it what it needs in a tc_ca_call and records what it answers. */
#ifndef TOKENCERT_ENROLL_ENROLL_H
#define TOKENCERT_ENROLL_ENROLL_H

#include <stddef.h>
#include <time.h>

#include "tokencert.h"

typedef enum {
    TC_CA_ISSUED,   /* cert holds the certificate (DER) */
    TC_CA_PENDING,  /* the CA holds it: handle to ask again, retry_after when the CA said */
    TC_CA_REJECTED, /* reason holds the CA's reason */
    TC_CA_ERROR     /* the CA could not be asked, or answered nonsense: reason says what */
} tc_ca_outcome;

typedef struct {
    tc_ca_outcome kind;
    unsigned char *cert; /* ISSUED: the certificate, DER */
    size_t cert_len;
    unsigned char **chain; /* ISSUED: CA certificates that came with it (DER), may be none */
    size_t *chain_len;
    size_t n_chain;
    char *handle;          /* the CA's name for the request, when it gave one */
    char *reason;          /* REJECTED and ERROR */
    long long retry_after; /* PENDING: seconds the CA asked to wait; 0: not said */
    char *notice;          /* a line for the user (what to do next), or NULL */
} tc_ca_answer;

void tc_ca_answer_clear(tc_ca_answer *a);

/* The still-valid current credential, for protocols that authenticate a renewal with it (SCEP,
 * EST, CMP): its certificate and its key on the open, logged-in token, which signs through
 * tokencert's OpenSSL provider. */
typedef struct {
    tokencert_token *t;
    const char *cert_uri;
    const char *key_uri;
} tc_ca_auth;

typedef struct {
    tokencert_ctx *ctx;
    const char *credential;            /* the credential's name */
    const char *ca;                    /* the CA's name in the configuration */
    const tokencert_config_ca *config; /* NULL for the implicit local CA */
    const char *dir;                   /* local and manual: the CA's directory */
    long long request;                 /* the engine's request id */
    const char *handle;                /* poll: what the CA answered to submit */
    time_t not_before;                 /* requested start; 0: now */
    const tc_ca_auth *auth;            /* NULL: a first enrollment, or no valid credential */
    /* submit: called with the CA's handle as soon as it is known, before the CA is asked for
     * more; nonzero when it could not be recorded (the backend then stops with an error). */
    int (*record_handle)(void *data, const char *handle);
    void *data;
} tc_ca_call;

typedef struct {
    const char *protocol;
    void (*submit)(const tc_ca_call *call, const unsigned char *csr, size_t csr_len,
                   tc_ca_answer *ans);
    void (*poll)(const tc_ca_call *call, tc_ca_answer *ans);
    /* The engine refused what the CA issued (another key, subject or issuer): the backend sets
     * it aside so that the retry does not take it again; a line for the user, or NULL. */
    char *(*refused)(const tc_ca_call *call);
} tc_ca_backend;

/* The backend of protocol, or NULL when this version has none. */
const tc_ca_backend *tc_ca_backend_find(const char *protocol);

/* Test-only, for unit tests of the engine (tests/unit/test_engine.c): b answers for its protocol in
 * place of the built-in backend of that name, until called again with NULL. Nothing else calls
 * it. */
void tc_ca_backend_set_test(const tc_ca_backend *b);

/* Test-only: TOKENCERT_TEST_CA_FAULT=submit|issue|fetch makes a CA fail at that step, honoured
 * only with TOKENCERT_TEST_CLOCK=enable (the switch every test-only knob needs). */
int tc_ca_fault(const char *step);

extern const tc_ca_backend tc_ca_local;
extern const tc_ca_backend tc_ca_manual;
extern const tc_ca_backend tc_ca_cfssl;

/* cfssl.c: reads cfssl's answer to a sign request (HTTP status and body, any bytes) into ans:
 * ISSUED with the certificate, REJECTED with cfssl's messages when it refused (4xx,
 * success false), ERROR for anything else. Separate for the unit test and fuzzing. */
void tc_cfssl_parse_answer(long status, const unsigned char *body, size_t len, tc_ca_answer *ans);

#endif /* TOKENCERT_ENROLL_ENROLL_H */
