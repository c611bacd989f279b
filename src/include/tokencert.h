/* tokencert.h — the public API of libtokencert.
 *
 * libtokencert manages client certificates whose private keys live on PKCS#11 tokens. This is its
 * only installed header; everything else is internal. Structures returned by the library are
 * read-only for the caller and are released with the matching *_free function.
 *
 * Error handling: every fallible function returns a tokencert_err. The numbers are stable and never
 * renumbered; tokencert_strerror() names them, and tokencert_ctx_error() gives the detail of the
 * last failure on a context (which module, which token, the CK_RV name, the OpenSSL reason).
 */
#ifndef TOKENCERT_H
#define TOKENCERT_H

#include <stddef.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOKENCERT_API __attribute__((visibility("default")))

/* Stable error numbers. Never renumber; append only. */
typedef enum {
    TC_OK = 0,
    TC_ERR_INTERNAL = 1,       /* a bug or an unexpected library failure */
    TC_ERR_NOMEM = 2,          /* out of memory */
    TC_ERR_INVALID_ARG = 3,    /* a caller passed something malformed */
    TC_ERR_MODULE = 4,         /* a PKCS#11 module failed to load or initialise */
    TC_ERR_URI = 5,            /* a malformed pkcs11: URI */
    TC_ERR_NOT_FOUND = 6,      /* a URI or name matched nothing */
    TC_ERR_TOKEN_ABSENT = 7,   /* the token is not present or was removed */
    TC_ERR_PIN_INCORRECT = 8,  /* the token rejected the PIN (never retried) */
    TC_ERR_PIN_LOCKED = 9,     /* the PIN is locked */
    TC_ERR_PIN_FINAL_TRY = 10, /* one try left: login refused without an explicit override */
    TC_ERR_PIN_SOURCE = 11,    /* the PIN could not be read from its source */
    TC_ERR_PKCS11 = 12,        /* any other PKCS#11 failure (the detail names the CK_RV) */
    TC_ERR_IO = 13,            /* reading or writing a file failed */
    TC_ERR_BAD_DATA = 14,      /* malformed data from a token, a file or a server */
    TC_ERR_CANCELLED = 15,     /* the user cancelled (e.g. an empty PIN prompt) */
    TC_ERR_NOT_SUPPORTED = 16, /* the token or module cannot do this */
    TC_ERR_PENDING = 17,       /* the CA holds the request for approval: ask again later */
    TC_ERR_REJECTED = 18,      /* the CA rejected the request (the detail gives its reason) */
    TC_ERR_VERIFY = 19,        /* a certificate, chain or fingerprint did not verify */
    TC_ERR_CA = 20             /* the CA failed or could not be reached (the detail says how) */
} tokencert_err;

TOKENCERT_API const char *tokencert_strerror(tokencert_err err);
TOKENCERT_API const char *tokencert_version(void);

/* ---- context ------------------------------------------------------------------------------ */

typedef struct tokencert_ctx tokencert_ctx;

TOKENCERT_API tokencert_err tokencert_ctx_new(tokencert_ctx **out);
TOKENCERT_API void tokencert_ctx_free(tokencert_ctx *ctx);
/* Detail of the last error on ctx ("" when none). Never contains a PIN or password. */
TOKENCERT_API const char *tokencert_ctx_error(const tokencert_ctx *ctx);
/* Non-fatal problems met so far, e.g. a registered module that failed to initialise. */
TOKENCERT_API size_t tokencert_ctx_warning_count(const tokencert_ctx *ctx);
TOKENCERT_API const char *tokencert_ctx_warning(const tokencert_ctx *ctx, size_t i);

/* Messages the user must see while an operation runs (e.g. "enter the PIN on the PIN pad" before
 * the call blocks, "failed PIN attempts were recorded"). Without a callback they are dropped;
 * they never contain a PIN. */
typedef void (*tokencert_notice_fn)(void *data, const char *message);
TOKENCERT_API void tokencert_ctx_set_notice(tokencert_ctx *ctx, tokencert_notice_fn fn, void *data);

/* Loads one module from module_path, or every module registered with p11-kit when module_path is
 * NULL. With the registry, a module that fails is recorded as a warning and the others are used;
 * an explicit module that fails is an error (TC_ERR_MODULE) naming it. */
TOKENCERT_API tokencert_err tokencert_load_modules(tokencert_ctx *ctx, const char *module_path);

/* ---- tokens ------------------------------------------------------------------------------- */

typedef struct {
    char *uri;    /* pkcs11: URI selecting this token (or slot when no token is present) */
    char *module; /* module name or file */
    unsigned long slot_id;
    char *slot_description;
    int present; /* a token is in the slot */
    char *label; /* trimmed, control characters and invalid UTF-8 escaped */
    char *manufacturer;
    char *model;
    char *serial;
    /* The token's state as it reports it, each 1 or 0 (what PKCS#11 reports as token flags). */
    int rng;                    /* has a random number generator */
    int write_protected;        /* refuses writes */
    int login_required;         /* needs a user login for private objects and operations */
    int user_pin_initialized;   /* the user PIN has been set */
    int protected_auth_path;    /* the PIN is entered on the reader's PIN pad, not given */
    int token_initialized;      /* the token has been initialised (else it holds nothing) */
    int user_pin_count_low;     /* a wrong user PIN was entered since the last good one */
    int user_pin_final_try;     /* one more wrong user PIN locks it */
    int user_pin_locked;        /* the user PIN is locked */
    int user_pin_to_be_changed; /* the user PIN must be changed before use */
    int so_pin_locked;          /* the security officer PIN is locked */
    /* Memory in bytes as the token reports it; -1 when unavailable or not reported. */
    long long free_public_memory, total_public_memory;
    long long free_private_memory, total_private_memory;
    unsigned int hw_major, hw_minor, fw_major, fw_minor;
} tokencert_token_info;

/* Slots and tokens matching uri (NULL or "pkcs11:" for all), absent tokens included. */
TOKENCERT_API tokencert_err tokencert_tokens(tokencert_ctx *ctx, const char *uri,
                                             tokencert_token_info **out, size_t *n_out);
TOKENCERT_API void tokencert_tokens_free(tokencert_token_info *tokens, size_t n);

/* ---- login -------------------------------------------------------------------------------- */

typedef struct {
    /* "file:PATH", "env:VAR" or "fd:N"; NULL to use the URI's pin-source, else a prompt. */
    const char *pin_source;
    int login;           /* log in even without a pin source (prompting on a TTY) */
    int allow_final_try; /* log in even when the token reports one try left */
    int interactive;     /* a prompt on the controlling terminal is allowed */
} tokencert_login_opts;

/* ---- inventory ---------------------------------------------------------------------------- */

typedef enum {
    TOKENCERT_CERT_VALID = 0,
    TOKENCERT_CERT_EXPIRING = 1,
    TOKENCERT_CERT_EXPIRED = 2,
    TOKENCERT_CERT_NOT_YET_VALID = 3,
    TOKENCERT_CERT_UNREADABLE = 4
} tokencert_cert_status;

TOKENCERT_API const char *tokencert_cert_status_name(tokencert_cert_status s);

typedef struct {
    char *label;
    char *id;      /* CKA_ID, lowercase hex ("" when empty) */
    char *uri;     /* pkcs11: URI of this certificate object */
    char *subject; /* RFC 4514 */
    char *issuer;
    char *serial; /* uppercase hex, as openssl prints it */
    time_t not_before, not_after;
    long days_left; /* whole days until not_after, negative when expired */
    tokencert_cert_status status;
    char *error;   /* why it is unreadable, else NULL */
    char sha1[60]; /* "AB:CD:..." */
    char sha256[96];
    char *key_type; /* "rsa", "ec", "ed25519", "ed448", "dsa" or the algorithm OID */
    int key_bits;
    char **key_usage;
    size_t n_key_usage;
    char **ext_key_usage;
    size_t n_ext_key_usage;
    int is_ca;
    int self_signed;
} tokencert_cert;

typedef struct {
    char *label;
    char *id;
    char *uri;
    char *key_type;
    int key_bits;    /* 0 when unknown */
    int has_private; /* a private-key object was seen (needs login on most tokens) */
    int has_public;  /* a public-key object was seen */
    int sensitive;   /* CKA_SENSITIVE of the private key; -1 unknown */
    int extractable; /* CKA_EXTRACTABLE of the private key; -1 unknown */
} tokencert_key;

typedef enum {
    TOKENCERT_CRED_FULL = 0,      /* a key and its certificate(s) */
    TOKENCERT_CRED_KEY_ONLY = 1,  /* a key without certificate */
    TOKENCERT_CRED_CERT_ONLY = 2, /* an end-entity certificate without key */
    TOKENCERT_CRED_AUTHORITY = 3  /* a CA certificate */
} tokencert_cred_kind;

TOKENCERT_API const char *tokencert_cred_kind_name(tokencert_cred_kind k);

typedef struct {
    char *name; /* the key's label, else the certificate's */
    char *id;
    tokencert_cred_kind kind;
    tokencert_key *key; /* NULL for certificate-only and authority entries */
    tokencert_cert *certs;
    size_t n_certs; /* ordered by not_after, newest last */
} tokencert_credential;

typedef struct {
    tokencert_token_info token;
    int logged_in;
    char **notes; /* what this listing could not see, and why */
    size_t n_notes;
    tokencert_credential *creds;
    size_t n_creds;
} tokencert_token_inventory;

typedef struct {
    time_t now;
    long long expiring_seconds;
    tokencert_token_inventory *tokens;
    size_t n_tokens;
} tokencert_inventory;

/* Reads every credential on the tokens matching uri. Token attributes in the URI select tokens;
 * object attributes (object, id, type) select credentials having a matching object. Logs in only
 * when opts asks for it (opts may be NULL). A certificate is "expiring" when less than
 * expiring_seconds of its validity remain. TC_ERR_TOKEN_ABSENT when the URI names a token that is
 * not present, TC_ERR_NOT_FOUND when its object attributes match nothing. */
TOKENCERT_API tokencert_err tokencert_inventory_load(tokencert_ctx *ctx, const char *uri,
                                                     const tokencert_login_opts *opts,
                                                     long long expiring_seconds,
                                                     tokencert_inventory **out);
TOKENCERT_API void tokencert_inventory_free(tokencert_inventory *inv);

/* ---- the rule: current, superseded, expiring, due (classify.c) --------------------------- */
/* Which certificate of a credential applications should use, and when it must be renewed, from
 * the token's objects alone: the PKCS#11 module that shows applications only current credentials
 * runs without the state store. The store adds generation numbers and intent, never another rule.
 *
 * A certificate is valid when not_before <= now < not_after. Of the valid ones the current one
 * lasts longest (latest not_after; then latest not_before; then the greatest SHA-256, so that
 * every caller picks the same one); the other valid ones are superseded and keep working until
 * they expire. The rule reads only the dates, the SHA-256 and whether each certificate is
 * unreadable, so it judges any `now`, whatever the inventory was loaded with.
 *
 * It applies to the certificates of one tokencert_credential (one key), or to those of every
 * credential on a token that carries one name (the *_named_* functions): a renewal with a new key
 * adds a second credential under the name of the first, and the two share one current
 * certificate. */

/* When to renew. A field below zero takes its default; a NULL policy is all defaults. */
typedef struct {
    long long renew_before;  /* seconds before the end of validity; default 30 days */
    double renew_fraction;   /* of the lifetime, 0..1; default 0.1 (0: not used) */
    long long approval_time; /* seconds a CA's approval takes, added to the lead; default 0 */
} tokencert_renewal_policy;

typedef enum {
    TOKENCERT_ROLE_CURRENT = 0,       /* the one to use now */
    TOKENCERT_ROLE_SUPERSEDED = 1,    /* valid, but a valid one lasts longer */
    TOKENCERT_ROLE_NOT_YET_VALID = 2, /* now < not_before */
    TOKENCERT_ROLE_EXPIRED = 3,       /* now >= not_after */
    TOKENCERT_ROLE_UNREADABLE = 4     /* not a certificate the library could decode */
} tokencert_cert_role;

/* "current", "superseded", "not-yet-valid", "expired", "unreadable". */
TOKENCERT_API const char *tokencert_cert_role_name(tokencert_cert_role r);

/* When renewal of a certificate valid from not_before to not_after starts:
 *   not_after - max(renew_before, renew_fraction * lifetime) - approval_time
 * (a three-year certificate under the defaults: 109.5 days before its end). p NULL: defaults. */
TOKENCERT_API time_t tokencert_due_at(const tokencert_renewal_policy *p, time_t not_before,
                                      time_t not_after);

/* The current certificate at now of credential c, or of everything called name on token t; NULL
 * when none is valid. The pointer is into the inventory. */
TOKENCERT_API const tokencert_cert *tokencert_credential_current(const tokencert_credential *c,
                                                                 time_t now);
TOKENCERT_API const tokencert_cert *tokencert_named_current(const tokencert_token_inventory *t,
                                                            const char *name, time_t now);

/* The role of certificate x at now, current being its group's current certificate (as the
 * functions above return it; NULL when none). */
TOKENCERT_API tokencert_cert_role tokencert_cert_role_at(const tokencert_cert *x,
                                                         const tokencert_cert *current, time_t now);
/* The role of c->certs[i] at now among the certificates of c (i < c->n_certs). */
TOKENCERT_API tokencert_cert_role tokencert_cert_role_of(const tokencert_credential *c, size_t i,
                                                         time_t now);

typedef struct {
    /* The current certificate, into the inventory; NULL when no certificate is valid. */
    const tokencert_cert *current;
    size_t n_superseded; /* certificates in each of the other roles */
    size_t n_not_yet_valid;
    size_t n_expired;
    size_t n_unreadable;
    time_t due_at; /* tokencert_due_at() of the current certificate; 0 without one */
    /* Less than the policy's lead (max(renew_before, renew_fraction * lifetime) + approval_time)
     * of the current certificate's validity remains. 0 without a current certificate. */
    int expiring;
    /* Renewal should start: now >= due_at and no successor is on the token yet (a certificate
     * not yet valid that ends after the current one, as a portal issues when the new validity
     * continues from the end of the old); or, without a current certificate, there are expired
     * certificates and none that is yet to begin. */
    int due;
} tokencert_credential_state;

/* Classifies credential c, or everything called name on token t, at now under policy p (NULL:
 * defaults). TC_ERR_INVALID_ARG for a NULL argument other than p. */
TOKENCERT_API tokencert_err tokencert_credential_classify(const tokencert_credential *c, time_t now,
                                                          const tokencert_renewal_policy *p,
                                                          tokencert_credential_state *out);
TOKENCERT_API tokencert_err tokencert_named_classify(const tokencert_token_inventory *t,
                                                     const char *name, time_t now,
                                                     const tokencert_renewal_policy *p,
                                                     tokencert_credential_state *out);

/* ---- secrets ------------------------------------------------------------------------------ */

/* Reads a secret (a password, a challenge) from "file:PATH", "env:VAR" or "fd:N", or, with source
 * NULL and interactive set, from a no-echo prompt on the terminal. what names the secret in
 * errors ("PKCS#12 password"). Free the result with tokencert_secret_free(), which wipes it. */
TOKENCERT_API tokencert_err tokencert_secret_read(tokencert_ctx *ctx, const char *source,
                                                  int interactive, const char *prompt,
                                                  const char *what, char **out);
TOKENCERT_API void tokencert_secret_free(char *secret);

/* ---- an open token ------------------------------------------------------------------------ */

/* One token, opened with one session and at most one login for everything done on it. */
typedef struct tokencert_token tokencert_token;

enum {
    TOKENCERT_OPEN_RW = 1,   /* a read-write session (writing objects) */
    TOKENCERT_OPEN_LOGIN = 2 /* log in as the user (private keys, signing) */
};

/* Opens the one token that uri selects (token attributes only; object attributes are ignored
 * here). TC_ERR_TOKEN_ABSENT when none is present, TC_ERR_INVALID_ARG naming the candidates when
 * several match. With TOKENCERT_OPEN_LOGIN logs in once, as opts says. */
TOKENCERT_API tokencert_err tokencert_token_open(tokencert_ctx *ctx, const char *uri,
                                                 const tokencert_login_opts *opts, unsigned flags,
                                                 tokencert_token **out);
TOKENCERT_API void tokencert_token_close(tokencert_token *t);
TOKENCERT_API const tokencert_token_info *tokencert_token_get_info(const tokencert_token *t);

/* The pkcs11: URI selecting the objects labelled label (NULL: any) with the CKA_ID id_hex (hex;
 * NULL: any) and of class cls ("cert", "private", "public"; NULL: any) on the token token_uri
 * selects (NULL: any token), every value percent-encoded as RFC 7512 says. NULL when token_uri,
 * id_hex or cls is malformed, or out of memory. Free with free(). */
TOKENCERT_API char *tokencert_object_uri(const char *token_uri, const char *label,
                                         const char *id_hex, const char *cls);

/* ---- key generation (keygen.c) ------------------------------------------------------------ */
/* Key types, as "rsa:2048", "rsa:3072", "rsa:4096", "ec:p256", "ec:p384", "ed25519". */
#define TOKENCERT_KEY_TYPE_DEFAULT "rsa:2048"

typedef struct {
    char *type;       /* the type generated, e.g. "rsa:2048" */
    char *label;      /* CKA_LABEL of both objects */
    char *id;         /* CKA_ID, lowercase hex */
    char *uri;        /* pkcs11: URI of the private key */
    char *public_uri; /* pkcs11: URI of the public key */
} tokencert_keygen_result;

/* Generates a key pair on the open token (opened read-write and logged in): the private key with
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true and CKA_EXTRACTABLE false, CKA_SIGN (and CKA_DECRYPT
 * for RSA); the public key beside it with the same label and CKA_ID. type NULL means
 * TOKENCERT_KEY_TYPE_DEFAULT. TC_ERR_NOT_SUPPORTED when the token cannot make that type (the
 * detail lists the types it can make). Nothing is left on the token when it fails. */
TOKENCERT_API tokencert_err tokencert_keygen(tokencert_token *t, const char *type,
                                             const char *label, tokencert_keygen_result *out);
/* Flags of tokencert_keygen_ex(). */
enum {
    /* The label may already be carried by objects on the token: a renewal's new key takes the
     * label of the credential's earlier generations, which keep theirs (distinct CKA_IDs). */
    TOKENCERT_KEYGEN_SHARED_LABEL = 1
};
TOKENCERT_API tokencert_err tokencert_keygen_ex(tokencert_token *t, const char *type,
                                                const char *label, unsigned flags,
                                                tokencert_keygen_result *out);
TOKENCERT_API void tokencert_keygen_result_clear(tokencert_keygen_result *r);
/* The key types this token can generate, by its mechanism list and mechanism info. */
TOKENCERT_API tokencert_err tokencert_key_types(tokencert_token *t, char ***types, size_t *n);
TOKENCERT_API void tokencert_strv_free(char **v, size_t n);
/* TC_OK when type (NULL: the default) is a key type tokencert knows, whatever the token; else
 * TC_ERR_INVALID_ARG with the valid types in the detail. Lets a caller refuse a typo before it
 * asks for a PIN. */
TOKENCERT_API tokencert_err tokencert_key_type_check(tokencert_ctx *ctx, const char *type);

/* ---- requests (request.c) ----------------------------------------------------------------- */
typedef struct {
    const char *subject;    /* RFC 4514, e.g. "CN=1234567890,O=Practice,C=DE" */
    const char *const *san; /* "dns:NAME", "ip:ADDR", "email:ADDR", "uri:URI" */
    size_t n_san;
    const char *challenge; /* challenge password (a secret, wiped by the caller); NULL none */
    const char *digest;    /* "sha256" (NULL), "sha384", "sha512" */
} tokencert_csr_params;

/* A PKCS#10 request for the private key that key_uri (id=, object=) selects on the open token,
 * signed by the token. DER in *der (free with free()). Bad subject or SAN: TC_ERR_INVALID_ARG
 * naming the part that is wrong. */
/* Checks subject, SANs and digest of p without a token, so that a command can refuse them before
 * asking for a PIN. The same errors as tokencert_csr() gives. */
TOKENCERT_API tokencert_err tokencert_csr_check(tokencert_ctx *ctx, const tokencert_csr_params *p);
TOKENCERT_API tokencert_err tokencert_csr(tokencert_token *t, const char *key_uri,
                                          const tokencert_csr_params *p, unsigned char **der,
                                          size_t *der_len);

/* ---- import, export, delete (import.c, objects.c) ----------------------------------------- */
typedef struct {
    const char *label;              /* label for certificates (default: the key's label) */
    int allow_orphan;               /* store a certificate that matches no key on the token */
    int no_verify;                  /* store even when the chain does not verify */
    int allow_invalid_dates;        /* store an expired or not yet valid certificate */
    const char *ca_file;            /* trust anchors for chain verification (default: system) */
    const char *password;           /* PKCS#12 password (a secret, wiped by the caller) */
    const char *expect_fingerprint; /* "sha256:AB:CD:..." or "sha1:...": refuse anything else */
} tokencert_import_opts;

typedef struct {
    const unsigned char *data; /* PEM, DER, PKCS#7 or PKCS#12 */
    size_t len;
    const char *name; /* shown in messages, e.g. the file name */
} tokencert_import_input;

typedef enum {
    TOKENCERT_IMPORTED_CERT = 0,      /* an end-entity certificate, attached to its key */
    TOKENCERT_IMPORTED_AUTHORITY = 1, /* a CA certificate */
    TOKENCERT_IMPORTED_KEY = 2        /* a private key (from PKCS#12) and its public key */
} tokencert_import_kind;

typedef struct {
    tokencert_import_kind kind;
    int existed; /* already on the token: nothing written */
    char *label;
    char *id;
    char *uri;
    char *subject;
    char *sha256;
} tokencert_import_item;

/* Checks every input first (parse, fingerprint, key match, chain, dates), then writes: when any
 * check fails nothing is written. The token must be open read-write (and logged in to match
 * private keys or write one). */
TOKENCERT_API tokencert_err tokencert_import(tokencert_token *t, const tokencert_import_input *in,
                                             size_t n_in, const tokencert_import_opts *opts,
                                             tokencert_import_item **items, size_t *n_items);
TOKENCERT_API void tokencert_import_items_free(tokencert_import_item *items, size_t n);
/* 1 when data looks like PKCS#12 (the caller then reads a password), else 0. */
TOKENCERT_API int tokencert_data_is_pkcs12(const unsigned char *data, size_t len);
typedef struct {
    char *kind; /* "certificate", "public key", "private key", "data", ... */
    char *label;
    char *id;
    char *uri;
} tokencert_object_desc;

/* The objects an object URI selects on the open token (the URI must name objects). */
TOKENCERT_API tokencert_err tokencert_objects_find(tokencert_token *t, const char *object_uri,
                                                   tokencert_object_desc **out, size_t *n);
TOKENCERT_API void tokencert_objects_free(tokencert_object_desc *v, size_t n);
/* Exports the one certificate or public key object_uri selects; PEM when pem, else DER. Private
 * keys are refused: they never leave the token. */
TOKENCERT_API tokencert_err tokencert_export(tokencert_token *t, const char *object_uri, int pem,
                                             unsigned char **out, size_t *len);
/* Destroys every object object_uri selects; *n_deleted tells how many. */
TOKENCERT_API tokencert_err tokencert_delete(tokencert_token *t, const char *object_uri,
                                             size_t *n_deleted);
/* Deletes, among the objects object_uri selects, the certificates whose SHA-256 fingerprint
 * ("AB:CD:...", as tokencert_cert.sha256) is sha256: one certificate of several that share a key's
 * label and CKA_ID. *n_deleted 0 when none matches. */
TOKENCERT_API tokencert_err tokencert_delete_cert(tokencert_token *t, const char *object_uri,
                                                  const char *sha256, size_t *n_deleted);

/* ---- embedded CA (ca.c) ------------------------------------------------------------------- */
typedef struct {
    const char *dir;          /* the CA's directory; NULL: $XDG_DATA_HOME/tokencert/ca */
    const char *subject;      /* RFC 4514; NULL: "CN=tokencert local CA" */
    const char *key_type;     /* NULL: "ec:p256" */
    long long validity;       /* seconds of the CA certificate; 0: 10 years */
    long long issue_validity; /* seconds of issued certificates; 0: 1 year */
    int manual_approval;      /* requests wait for tokencert_ca_approve() */
    const char *token_uri;    /* a token for the CA key; NULL: a SoftHSM token of the CA's own */
    const char *module;       /* module for token_uri; NULL: the p11-kit registry */
    const char *pin_source;   /* how the CA reads the PIN of token_uri */
} tokencert_ca_params;

typedef enum {
    TOKENCERT_REQ_PENDING = 0,
    TOKENCERT_REQ_ISSUED = 1,
    TOKENCERT_REQ_REJECTED = 2
} tokencert_req_state;

TOKENCERT_API const char *tokencert_req_state_name(tokencert_req_state s);

typedef struct {
    long long id;
    char *subject;
    tokencert_req_state state;
    time_t submitted, decided;    /* decided 0 while pending */
    time_t not_before, not_after; /* of the issued certificate; else the requested start */
    char *serial;                 /* uppercase hex once issued */
    char *reason;                 /* why it was rejected */
    unsigned char *cert;          /* DER of the issued certificate, else NULL */
    size_t cert_len;
} tokencert_ca_request;

/* Creates a CA: its key on its token, its self-signed certificate, its index. The token work runs
 * in the helper tokencert-ca-sign, as for tokencert_ca_approve() (which see). */
TOKENCERT_API tokencert_err tokencert_ca_init(tokencert_ctx *ctx, const tokencert_ca_params *p);
/* The directory a NULL dir means. Free with free(). */
TOKENCERT_API char *tokencert_ca_default_dir(void);
/* Records a request (DER PKCS#10, its signature checked). not_before 0 means "when issued"; else
 * the issued certificate starts then. *auto_approve tells whether the CA issues without an
 * operator; the request stays pending until tokencert_ca_approve(). */
TOKENCERT_API tokencert_err tokencert_ca_submit(tokencert_ctx *ctx, const char *dir,
                                                const unsigned char *csr, size_t csr_len,
                                                time_t not_before, tokencert_ca_request *out,
                                                int *auto_approve);
/* Issues the certificate for a pending request, signing on the CA's token. The signing runs in a
 * helper process, tokencert-ca-sign (fork+execve, no shell, a fresh environment carrying the CA's
 * SOFTHSM2_CONF when it has a SoftHSM token of its own), because SoftHSM reads its configuration
 * once per process: so this may be called from any process, also one that has loaded SoftHSM for
 * another token, and it never changes the caller's environment. The helper is found in the
 * libexec directory compiled in (${libexecdir}/tokencert/) or in $TOKENCERT_LIBEXECDIR (build
 * trees). A request that is not pending is TC_ERR_INVALID_ARG; the helper's failure comes back as
 * its error code with its message as the detail, or TC_ERR_INTERNAL naming the helper when it could
 * not be run, was killed or did not finish within 5 minutes. Blocks until then; it waits for its
 * own child only (waitpid on that pid), so a SIGCHLD handler that reaps every child breaks it. */
TOKENCERT_API tokencert_err tokencert_ca_approve(tokencert_ctx *ctx, const char *dir, long long id,
                                                 tokencert_ca_request *out);
TOKENCERT_API tokencert_err tokencert_ca_reject(tokencert_ctx *ctx, const char *dir, long long id,
                                                const char *reason);
TOKENCERT_API tokencert_err tokencert_ca_get(tokencert_ctx *ctx, const char *dir, long long id,
                                             tokencert_ca_request *out);
TOKENCERT_API tokencert_err tokencert_ca_list(tokencert_ctx *ctx, const char *dir,
                                              tokencert_ca_request **out, size_t *n);
/* The CA certificate, DER. */
TOKENCERT_API tokencert_err tokencert_ca_cert(tokencert_ctx *ctx, const char *dir,
                                              unsigned char **der, size_t *len);
TOKENCERT_API void tokencert_ca_request_clear(tokencert_ca_request *r);
TOKENCERT_API void tokencert_ca_requests_free(tokencert_ca_request *v, size_t n);

/* ---- configuration (config.c) ------------------------------------------------------------- */
/* A human-edited file in libconfig syntax (see tokencert.conf(5)), read from --config FILE, or
 * else from the system file (/etc/tokencert/tokencert.conf) and then the user's
 * ($XDG_CONFIG_HOME/tokencert/tokencert.conf, default ~/.config), the user's entries replacing
 * system entries of the same name. Secrets are never in the file, only where to read them. */
typedef struct {
    char *name;
    char *protocol;          /* "local", "manual", "scep", "est", "cmp", "cfssl", "adcs" */
    char *url;               /* NULL for local and manual */
    char *dir;               /* local: the CA's directory; NULL: tokencert_ca_default_dir() */
    char *auth;              /* "none" (NULL), "basic", "certificate" (the current credential) */
    char *user;              /* for basic authentication */
    char *secret_source;     /* "file:PATH", "env:VAR" or "fd:N" for the CA's password */
    char *issuer;            /* expected issuer, RFC 4514; NULL: not checked */
    char *ca_file;           /* trust anchors for the CA's certificates and TLS; NULL: system */
    int manual_approval;     /* an operator approves requests */
    long long approval_time; /* seconds an approval typically takes (lead time); 0 none */
    char *profile;           /* cfssl: the signing profile; NULL: the CA's default */
    char *file;              /* where it was declared */
    int line;
} tokencert_config_ca;

typedef struct {
    char *name;
    char *token;   /* pkcs11: URI of the token */
    char *module;  /* module path; NULL: the p11-kit registry */
    char *label;   /* CKA_LABEL of its objects; the name when not configured */
    char *ca;      /* name of a configured CA; NULL: the embedded CA ("local") */
    char *subject; /* RFC 4514; NULL: from the current certificate */
    char **san;    /* "dns:NAME", ...; meaningful only when san_set */
    size_t n_san;
    int san_set;            /* 0: SANs from the current certificate */
    char *key_type;         /* NULL: the type of the current key, else the default */
    long long renew_before; /* seconds; -1: the default */
    double renew_fraction;  /* 0..1 of the lifetime; -1: the default */
    int reuse_key;          /* renew with the current key instead of a new one */
    char *pin_source;       /* "file:PATH", "env:VAR" or "fd:N" for unattended runs; NULL none */
    /* Hooks: argument vectors (NULL-terminated, argv[0] an absolute path), or NULL. */
    char **hook_before_renewal, **hook_after_renewal, **hook_expiring, **hook_failure;
    char *file;
    int line;
} tokencert_config_credential;

typedef struct {
    char **files; /* the files read, in order */
    size_t n_files;
    long long renew_before; /* default for credentials, seconds (30 days) */
    double renew_fraction;  /* default for credentials (0.1) */
    long long grace;        /* prune: seconds after expiry before deletion (30 days) */
    char *state_dir;        /* NULL: tokencert_state_default_dir() */
    tokencert_config_ca *cas;
    size_t n_cas;
    tokencert_config_credential *creds;
    size_t n_creds;
} tokencert_config;

typedef struct {
    char *file; /* NULL when the problem is not in a file */
    int line;   /* 0 when unknown */
    char *message;
} tokencert_config_error;

/* Reads path (must exist: TC_ERR_IO naming it) or, with path NULL, the system and user files
 * (absent files are fine: an empty configuration). Every problem found is reported in *errors
 * with file and line, and then the result is TC_ERR_BAD_DATA and *out NULL; the context's error
 * names the first. */
TOKENCERT_API tokencert_err tokencert_config_load(tokencert_ctx *ctx, const char *path,
                                                  tokencert_config **out,
                                                  tokencert_config_error **errors,
                                                  size_t *n_errors);
TOKENCERT_API void tokencert_config_free(tokencert_config *cfg);
TOKENCERT_API void tokencert_config_errors_free(tokencert_config_error *errors, size_t n);
TOKENCERT_API const tokencert_config_ca *tokencert_config_find_ca(const tokencert_config *cfg,
                                                                  const char *name);
TOKENCERT_API const tokencert_config_credential *
tokencert_config_find_credential(const tokencert_config *cfg, const char *name);

/* ---- state store (state.c) ---------------------------------------------------------------- */
/* SQLite: requests and their progress, the generations of each credential, an append-only
 * history. WAL, a busy timeout, a schema version; the file is 0600 in a 0700 directory. */

typedef enum {
    TOKENCERT_RS_CREATED = 0,        /* recorded; nothing done yet */
    TOKENCERT_RS_KEY_GENERATING = 1, /* key generation started (a crash leaves an unknown key) */
    TOKENCERT_RS_KEY_GENERATED = 2,  /* the key is on the token (key_id) */
    TOKENCERT_RS_SUBMITTING = 3,     /* the request is being sent to the CA */
    TOKENCERT_RS_PENDING = 4,        /* the CA holds it (ca_request_id) */
    TOKENCERT_RS_ISSUED = 5,         /* the certificate came back (cert) */
    TOKENCERT_RS_INSTALLED = 6,      /* the certificate is on the token beside its key */
    TOKENCERT_RS_ACTIVE = 7,         /* done: its generation is the active one */
    TOKENCERT_RS_REJECTED = 8,       /* the CA said no (last_error) */
    TOKENCERT_RS_FAILED = 9,         /* a step failed; retried at next_poll with backoff */
    TOKENCERT_RS_ABANDONED = 10      /* given up or cleaned up; its key removed */
} tokencert_request_state;

TOKENCERT_API const char *tokencert_request_state_name(tokencert_request_state s);
/* 1 for states that still need work (created .. installed, failed). */
TOKENCERT_API int tokencert_request_state_open(tokencert_request_state s);

typedef struct {
    long long id;
    char *credential;
    tokencert_request_state state;
    tokencert_request_state failed_at; /* the state the failure happened in (state FAILED) */
    char *token_serial;                /* the token the key is on */
    char *key_id;                      /* CKA_ID hex once generated or chosen; NULL before */
    int key_reused;                    /* the key of the previous generation */
    char *key_type;
    char *subject;        /* requested subject, RFC 4514 */
    char *san;            /* requested SANs, comma separated; NULL none */
    char *ca;             /* CA name */
    char *ca_request_id;  /* the CA's handle */
    char *transaction_id; /* protocol transaction id (SCEP, CMP); NULL */
    unsigned char *cert;  /* DER once issued */
    size_t cert_len;
    time_t not_before; /* requested validity start; 0: when issued */
    time_t created, updated, next_poll;
    int attempts;
    char *last_error;
} tokencert_state_request;

typedef enum {
    TOKENCERT_GEN_ACTIVE = 0,     /* the credential applications should use */
    TOKENCERT_GEN_SUPERSEDED = 1, /* a newer one is installed and verified; kept until expiry */
    TOKENCERT_GEN_PRUNED = 2      /* its objects were deleted */
} tokencert_generation_state;

TOKENCERT_API const char *tokencert_generation_state_name(tokencert_generation_state s);

typedef struct {
    long long id;
    char *credential;
    long long number; /* 1, 2, ... per credential */
    tokencert_generation_state state;
    char *token_serial;
    char *key_id;      /* CKA_ID hex */
    char *cert_sha256; /* "AB:CD:..." as tokencert_cert.sha256 */
    char *serial;
    char *subject;
    char *issuer;
    time_t not_before, not_after;
    time_t installed, superseded, pruned; /* 0 when not (yet) */
    long long request; /* the request that made it; 0 when adopted from the token */
} tokencert_state_generation;

typedef struct {
    char *name;
    char *token_uri;    /* as configured or enrolled */
    char *token_serial; /* of the token it was last seen on */
    char *label;
    char *ca;     /* CA name ("local": the embedded CA) */
    char *ca_dir; /* the embedded CA's directory when not the default */
    char *module;
    time_t created;
    time_t last_run;
    char *last_result; /* "renewed", "pending", "failed", "deferred", "not due", ... */
    char *last_error;
    time_t deferred_since; /* the token was absent since then; 0 present */
} tokencert_state_credential;

typedef struct {
    long long id;
    time_t time;
    char *credential; /* NULL for store-wide events */
    char *event;      /* "enrolled", "submitted", "pending", "issued", "installed", ... */
    char *result;     /* "ok", "failed", ... */
    char *detail;     /* never a secret */
} tokencert_state_event;

/* The default directory: /var/lib/tokencert for root, else $XDG_STATE_HOME/tokencert (default
 * ~/.local/state/tokencert). Free with free(). */
TOKENCERT_API char *tokencert_state_default_dir(void);
/* What the state store recorded, read only: for reports (history, metrics, the timeline). The
 * engine is the only writer. */
typedef struct {
    tokencert_state_credential *creds;
    size_t n_creds;
    tokencert_state_request *requests; /* in order of id */
    size_t n_requests;
    tokencert_state_generation *generations; /* in order of number, pruned ones included */
    size_t n_generations;
    tokencert_state_event *events; /* oldest first */
    size_t n_events;
} tokencert_records;

#define TOKENCERT_RECORDS_CREDENTIALS   1u
#define TOKENCERT_RECORDS_REQUESTS      2u
#define TOKENCERT_RECORDS_OPEN_REQUESTS 4u /* only requests that still need work */
#define TOKENCERT_RECORDS_GENERATIONS   8u
#define TOKENCERT_RECORDS_EVENTS        16u

/* Reads what the store in dir (NULL: tokencert_state_default_dir()) recorded about credential
 * (NULL: all), the parts what asks for. TC_ERR_NOT_FOUND when there is no store (nothing was
 * recorded yet); the store is never created or written. */
TOKENCERT_API tokencert_err tokencert_records_read(tokencert_ctx *ctx, const char *dir,
                                                   const char *credential, unsigned what,
                                                   tokencert_records *out);
TOKENCERT_API void tokencert_records_clear(tokencert_records *r);

/* ---- the lifecycle engine ------------------------------------------------------------------ */

/* The engine renews the credentials of a configuration (and those enroll recorded): what is due,
 * key, request, CA, verification, installation, switch-over, pruning, each step recorded in the
 * state store before and after it touches the token or the CA, so that a run killed at any point
 * is continued by the next one. A run touches each token once: each module loaded once, each
 * token read once and logged in to at most once, whatever the number of credentials on it.
 *
 * The engine prints nothing and exits nothing: what it does and what goes wrong comes as events
 * to the caller's sink, results as tokencert_err and an outcome. */
typedef struct tokencert_engine tokencert_engine;

typedef enum {
    TOKENCERT_EV_PROGRESS = 0, /* what was done, or would be: a line for the user */
    TOKENCERT_EV_PROBLEM = 1,  /* what failed or waits: a line for the user */
    TOKENCERT_EV_OUTPUT = 2,   /* what a hook printed, as it printed it */
    TOKENCERT_EV_RECORDED = 3, /* an event written to the history (or that would be) */
    TOKENCERT_EV_WORKING = 4   /* a step that may take seconds begins (key generation, the CA):
                                * for a progress line on a terminal; the next event ends it */
} tokencert_event_kind;

typedef struct {
    tokencert_event_kind kind;
    const char *credential; /* NULL: the run as a whole */
    const char *event;      /* RECORDED: "renewed", "pending", "pruned", ...; else NULL */
    const char *result;     /* RECORDED: "ok", "failed", "rejected", ...; else NULL */
    /* PROGRESS and PROBLEM: the line, without a newline (PROGRESS lines name the credential
     * first); RECORDED: the detail (may be empty); OUTPUT: the text. Never a secret. */
    const char *message;
} tokencert_event;

typedef void (*tokencert_event_fn)(void *data, const tokencert_event *ev);

typedef enum {
    TOKENCERT_KEYS_CONFIGURED = 0, /* as each credential's reuse_key says */
    TOKENCERT_KEYS_REKEY = 1,      /* a new key for every renewal of this run */
    TOKENCERT_KEYS_REUSE = 2       /* the current key again */
} tokencert_key_policy;

typedef struct {
    const char *state_dir; /* NULL: $TOKENCERT_STATE_DIR, the configuration's, the default */
    const char *module;    /* NULL: each credential's own module, else the p11-kit registry */
    /* pin_source NULL: each credential's own (the configuration's pin-source) */
    tokencert_login_opts login;
    int dry_run; /* nothing is written, nothing is touched: what would be done is said */
    tokencert_key_policy key_policy;
    int wait_seconds;            /* for the store's and a token's lock */
    int quiet;                   /* no line for a credential that is not due */
    tokencert_event_fn on_event; /* NULL: events are dropped */
    void *event_data;
} tokencert_engine_opts;

/* A credential as the engine handles it: from the configuration, else from what enroll recorded,
 * with every default applied. */
typedef struct {
    char *name;
    char *token_uri;
    char *module; /* NULL: the registry (or the run's module) */
    char *label;
    char *ca; /* CA name; "local" is the embedded CA */
    char *ca_protocol;
    char *ca_dir;    /* local and manual CAs: their directory */
    char *ca_issuer; /* expected issuer, NULL: the CA's own certificate decides */
    int ca_manual;
    long long approval_time;
    char *subject; /* NULL: from the current certificate */
    char **san;
    size_t n_san;
    int san_set;
    char *key_type; /* NULL: as the current key */
    long long renew_before;
    double renew_fraction;
    int reuse_key;
    char *pin_source;
    char *const *hook_before, *const *hook_after, *const *hook_expiring, *const *hook_failure;
    int configured; /* declared in the configuration */
} tokencert_engine_credential;

#define TOKENCERT_ENGINE_CREATE 1u /* create the state store when there is none */
#define TOKENCERT_ENGINE_LOCK   2u /* lock the store for writing (with CREATE) */

/* Opens the engine on cfg (from tokencert_config_load(); taken over, freed by close, also on
 * failure): the state store opened (created and locked as flags say; without CREATE a missing
 * store is no error: nothing was recorded yet) and the credentials loaded. What is wrong is said
 * through the sink as well. TC_ERR_BAD_DATA: a credential names an unknown CA;
 * TC_ERR_INVALID_ARG: no state directory; TC_ERR_IO: the store cannot be opened or locked. */
TOKENCERT_API tokencert_err tokencert_engine_open(tokencert_config *cfg,
                                                  const tokencert_engine_opts *opts, unsigned flags,
                                                  tokencert_engine **out);
/* Writes what the run kept to write at its end (the "not due" results), then closes. */
TOKENCERT_API void tokencert_engine_close(tokencert_engine *e);
/* Writes what the run kept to write at its end; TC_ERR_IO when that failed (said as well). */
TOKENCERT_API tokencert_err tokencert_engine_flush(tokencert_engine *e);

TOKENCERT_API size_t tokencert_engine_count(const tokencert_engine *e);
TOKENCERT_API const tokencert_engine_credential *
tokencert_engine_credential_at(const tokencert_engine *e, size_t i);
/* The index of the credential called name; TC_ERR_NOT_FOUND when there is none (not said). */
TOKENCERT_API tokencert_err tokencert_engine_find(const tokencert_engine *e, const char *name,
                                                  size_t *index);

/* What a renew or poll did to a credential; its name is what the history records. */
typedef enum {
    TOKENCERT_OUTCOME_FAILED = 0,
    TOKENCERT_OUTCOME_RENEWED,
    TOKENCERT_OUTCOME_PENDING,
    TOKENCERT_OUTCOME_NOT_DUE,
    TOKENCERT_OUTCOME_DEFERRED, /* its token is absent, or another token is present */
    TOKENCERT_OUTCOME_REJECTED,
    TOKENCERT_OUTCOME_NOTHING_PENDING,
    TOKENCERT_OUTCOME_WOULD_RENEW, /* dry run */
    TOKENCERT_OUTCOME_WOULD_CONTINUE,
    TOKENCERT_OUTCOME_WOULD_DEFER
} tokencert_outcome;
TOKENCERT_API const char *tokencert_outcome_name(tokencert_outcome o);

#define TOKENCERT_RENEW_FORCE 1u /* now, whatever the dates (a named renew) */
#define TOKENCERT_RENEW_NAMED 2u /* named by the user: may move onto another token */

/* Renews credential i: continues an unfinished request, else starts one when forced or due.
 * TC_OK for renewed, not due and the dry run's answers; TC_ERR_PENDING (the CA holds it),
 * TC_ERR_REJECTED, TC_ERR_TOKEN_ABSENT (deferred), TC_ERR_CA, or the error of the step that
 * failed. *outcome says which. */
TOKENCERT_API tokencert_err tokencert_engine_renew(tokencert_engine *e, size_t i, unsigned flags,
                                                   tokencert_outcome *outcome);
/* Asks the CA about credential i's pending request and installs what was issued. */
TOKENCERT_API tokencert_err tokencert_engine_poll(tokencert_engine *e, size_t i,
                                                  tokencert_outcome *outcome);
/* Deletes the objects of credential i's superseded generations expired more than grace seconds
 * ago, and the keys of requests that ended without a certificate. The token is opened only when
 * there is something to delete. */
TOKENCERT_API tokencert_err tokencert_engine_prune(tokencert_engine *e, size_t i, long long grace,
                                                   size_t *n_pruned);

typedef struct {
    long long number;
    tokencert_generation_state state;
    const char *serial, *sha256, *key_id;
    time_t not_after;
    int on_token;
} tokencert_status_generation;

/* Where credential i stands; read only (never writes, never logs in). Strings belong to it. */
typedef struct {
    const tokencert_engine_credential *cred;
    int token_present;        /* a token answering to the credential's URI is present */
    const char *home_serial;  /* the credential's own token; NULL: any will do */
    const char *other_serial; /* the token present when it is not the credential's own */
    time_t deferred_since;    /* 0: not deferred */
    int has_active;
    struct {
        const char *serial, *sha256, *subject;
        time_t not_before, not_after;
        long days_left;
        long long generation; /* 0: not recorded */
        int on_token;
        /* On the token present: pkcs11: URIs of the current certificate and its private key
         * (by label and CKA_ID, what applications are to use); else NULL. */
        const char *cert_uri, *key_uri;
    } active;
    time_t renewal_due; /* with has_active */
    int due;
    tokencert_status_generation *gens;
    size_t n_gens;
    int has_request; /* an unfinished request */
    struct {
        long long id;
        tokencert_request_state state;
        const char *ca_request_id;
        time_t since, next_poll;
        int attempts;
        const char *last_error;
    } request;
    int has_rejected; /* the CA rejected the newest request */
    struct {
        long long id;
        time_t on;
        const char *reason;
    } rejected;
    const char *last_result, *last_error;
    char next_action[512]; /* in plain words */
    void *priv;
} tokencert_status;

TOKENCERT_API tokencert_err tokencert_engine_status(tokencert_engine *e, size_t i,
                                                    tokencert_status *out);
TOKENCERT_API void tokencert_status_clear(tokencert_status *s);

/* A first enrollment: generation 1 of a new credential, through the same steps as a renewal. */
typedef struct {
    const char *token_uri; /* the token to make the key on */
    const char *label;     /* the credential's name and its objects' label (CKA_LABEL) */
    const char *subject;   /* the request's subject DN */
    const char *const *san;
    size_t n_san;
    const char *key_type; /* NULL: TOKENCERT_KEY_TYPE_DEFAULT */
    const char *ca;       /* a configured CA's name; NULL or "local": the embedded CA */
    const char *ca_dir;   /* the embedded CA's directory; NULL: its default (created if missing) */
    time_t not_before;    /* requested start of validity; 0: now */
} tokencert_enrollment;

/* What an enrollment made. Strings belong to it (tokencert_enrolled_clear). */
typedef struct {
    int resumed;       /* an earlier, unfinished enrollment of the label was continued */
    char *token_label; /* the token's */
    char *key_id, *key_type;
    char *subject, *serial;
    time_t not_after;
    long long request;   /* the store's request */
    char *ca_request_id; /* the CA's name for it */
    char *ca, *ca_protocol, *ca_dir;
} tokencert_enrolled;

/* Enrolls: checks the subject, SANs, key type and CA before the token is touched; refuses a label
 * already in use (on the token, or by a credential the store knows) with TC_ERR_INVALID_ARG;
 * continues an unfinished enrollment of the label instead of starting another; creates the
 * embedded CA in ca_dir when there is none (after the key, before the request). One login. The
 * store learns of the credential before the key is made, so a run killed at any point is
 * continued by the next enroll (or renew); a failure that leaves the token as it was found
 * leaves no credential behind (the history keeps the attempt). TC_OK with outcome RENEWED;
 * TC_ERR_PENDING when the CA holds the request (tokencert_engine_poll installs it later). */
TOKENCERT_API tokencert_err tokencert_engine_enroll(tokencert_engine *e,
                                                    const tokencert_enrollment *p,
                                                    tokencert_enrolled *out,
                                                    tokencert_outcome *outcome);
TOKENCERT_API void tokencert_enrolled_clear(tokencert_enrolled *r);

/* Records an event in the history (and says it to the sink as RECORDED). */
TOKENCERT_API void tokencert_engine_log(tokencert_engine *e, const char *credential,
                                        const char *event, const char *result, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* What the engine's store recorded (see tokencert_records_read): empty when there is no store
 * yet. TC_ERR_IO when it cannot be read (said as well). */
TOKENCERT_API tokencert_err tokencert_engine_records(tokencert_engine *e, const char *credential,
                                                     unsigned what, tokencert_records *out);
/* Whether the engine has a state store (one is created only by runs that write). */
TOKENCERT_API int tokencert_engine_has_store(const tokencert_engine *e);

#ifdef __cplusplus
}
#endif

#endif /* TOKENCERT_H */
