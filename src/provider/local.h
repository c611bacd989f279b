/* provider/local.h — what the files of the built-in provider share: its context, its key data,
 * its error reasons and dispatch tables. Only for src/provider/. */
#ifndef TOKENCERT_SRC_PROVIDER_LOCAL_H
#define TOKENCERT_SRC_PROVIDER_LOCAL_H

#include "provider/provider.h"

#include <openssl/core_dispatch.h>

#define PROV_NAME  "tokencert"
#define PROV_PROPS "provider=" PROV_NAME
/* The private parameter that carries a tc_key into the provider's import (tc_key_pkey). */
#define PARAM_TOKEN_KEY "tokencert-token-key"
/* RSA up to 16384 bits; EC signatures and EdDSA fit easily. */
#define SIG_MAX 2048

enum { R_TOKEN = 1, R_NOT_TOKEN_KEY, R_BAD_PARAM, R_BUFFER, R_UNSUPPORTED };

typedef struct {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx;
    tokencert_ctx *tc; /* set by tc_libctx() right after loading */
    OSSL_FUNC_core_new_error_fn *new_error;
    OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
    OSSL_FUNC_core_vset_error_fn *vset_error;
    /* Only in the loadable module tokencert.so (module.c, store.c): the module owns tc, its child
     * library context, and the tokens its store opened, kept open (one session, one login each)
     * until OpenSSL unloads it, because the keys it handed out run over those sessions. */
    int loadable;
    char *module_path; /* an explicit PKCS#11 module, else NULL: the p11-kit registry */
    int modules_loaded;
    int pin_rejected; /* a token rejected a PIN in this process: no further login is tried */
    tokencert_token **tokens;
    size_t n_tokens;
} prov_ctx;

/* What the store hands OpenSSL for a token key (OSSL_OBJECT_PARAM_REFERENCE), and OpenSSL hands
 * back to the key manager's load function of this same provider. */
#define PROV_KEY_REF_MAGIC 0x74636b72u /* "tckr" */
typedef struct {
    unsigned magic;
    prov_ctx *pc;
    tc_key *key; /* the session's reference keeps it alive while the token is open */
} prov_key_ref;

/* Key data of the three key managers. */
typedef struct {
    prov_ctx *pc;
    const char *alg; /* "RSA", "EC", "ED25519" */
    tc_key *key;     /* NULL for a public key imported for a comparison */
    EVP_PKEY *pub;   /* the public half, a default-provider key */
} prov_key;

/* ---- shared helpers (libctx.c) ---- */
/* Raises an OpenSSL error through the core. */
void tc_provider_raise(prov_ctx *pc, int reason, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A failed token operation, already recorded in the library's error detail by the keys layer:
 * raised as an OpenSSL error too. */
void tc_provider_token_failed(prov_key *k, const char *op);
/* True when k holds a token key (else an OpenSSL error is raised). */
int tc_provider_is_token_key(prov_key *k);
/* The digest as the keys layer names it (for the token's PSS and OAEP parameters). */
int tc_provider_md_hash(const EVP_MD *md, tc_hash *h);

/* ---- dispatch tables (keymgmt.c, signature.c, cipher.c) ---- */
extern const OSSL_DISPATCH tc_provider_rsa_keymgmt[];
extern const OSSL_DISPATCH tc_provider_ec_keymgmt[];
extern const OSSL_DISPATCH tc_provider_ed_keymgmt[];
extern const OSSL_DISPATCH tc_provider_signature[];
extern const OSSL_DISPATCH tc_provider_asym_cipher[];
extern const OSSL_DISPATCH tc_provider_store[];

/* ---- shared between the built-in provider and the module (libctx.c) ---- */
extern const OSSL_ALGORITHM tc_provider_keymgmt_algs[];
extern const OSSL_ALGORITHM tc_provider_signature_algs[];
extern const OSSL_ALGORITHM tc_provider_asym_cipher_algs[];
extern const OSSL_ITEM tc_provider_reason_strings[];
/* Called by the store once the PKCS#11 modules are loaded (module.c): the tokens are released at
 * exit before the modules' own exit handlers run. 0 when that cannot be arranged. */
int tc_provider_modules_loaded(prov_ctx *pc);
/* Takes the core's error functions from in. */
void tc_provider_core_fns(prov_ctx *pc, const OSSL_DISPATCH *in);

#endif /* TOKENCERT_SRC_PROVIDER_LOCAL_H */
