/* module.c — tokencert.so, the installable OpenSSL 3 provider: the entry point OpenSSL calls when
 * a configuration or `-provider tokencert` loads the module. It offers the built-in provider's key
 * managers, signatures and RSA decryption, plus a STORE loader for pkcs11: URIs (store.c), over a
 * tokencert context of its own.
 *
 * The PKCS#11 module: the provider parameter "pkcs11-module" (a path, from the provider's section
 * of openssl.cnf) or the environment variable TOKENCERT_PROVIDER_MODULE (which wins), else every
 * module registered with p11-kit. Modules are loaded when the first key is asked for, so that
 * `openssl list -providers` touches no token. The module's OpenSSL calls go to a child library
 * context of the application's, so that digests and plain public keys come from the providers
 * the application loaded (the default provider must be among them). */
#include "provider/local.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/provider.h>

#define PARAM_MODULE "pkcs11-module"
#define ENV_MODULE   "TOKENCERT_PROVIDER_MODULE"

static const OSSL_ALGORITHM store_algs[] = {
    {"pkcs11", PROV_PROPS, tc_provider_store, "keys on PKCS#11 tokens, by pkcs11: URI"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *module_query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (op) {
    case OSSL_OP_KEYMGMT:
        return tc_provider_keymgmt_algs;
    case OSSL_OP_SIGNATURE:
        return tc_provider_signature_algs;
    case OSSL_OP_ASYM_CIPHER:
        return tc_provider_asym_cipher_algs;
    case OSSL_OP_STORE:
        return store_algs;
    }
    return NULL;
}

static const OSSL_ITEM *module_reasons(void *provctx)
{
    (void)provctx;
    return tc_provider_reason_strings;
}

static const OSSL_PARAM *module_gettable(void *provctx)
{
    static const OSSL_PARAM gettable[] = {OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
                                          OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
                                          OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
                                          OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
                                          OSSL_PARAM_END};
    (void)provctx;
    return gettable;
}

static int module_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    (void)provctx;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "tokencert: keys on PKCS#11 tokens"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, TOKENCERT_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "tokencert " TOKENCERT_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

/* Closing the sessions logs out, and freeing the context finalises the PKCS#11 modules; the keys
 * handed out die with them. */
static void release_tokens(prov_ctx *pc)
{
    size_t i;

    for (i = 0; i < pc->n_tokens; i++)
        tokencert_token_close(pc->tokens[i]);
    free(pc->tokens);
    pc->tokens = NULL;
    pc->n_tokens = 0;
    tokencert_ctx_free(pc->tc);
    pc->tc = NULL;
}

/* OpenSSL unloads providers from its own exit handler, which runs after the handlers of PKCS#11
 * modules loaded later (SoftHSM's C++ statics): closing sessions then calls into a torn-down
 * module. So the tokens are released by a handler registered once the PKCS#11 modules are loaded,
 * which runs before theirs (glibc runs a handler of a dlopen()ed library at its dlclose() too). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static prov_ctx *live[8];

static void release_at_exit(void)
{
    size_t i;

    pthread_mutex_lock(&live_lock);
    for (i = 0; i < sizeof live / sizeof live[0]; i++) {
        if (live[i] != NULL)
            release_tokens(live[i]);
        live[i] = NULL;
    }
    pthread_mutex_unlock(&live_lock);
}

int tc_provider_modules_loaded(prov_ctx *pc)
{
    static int registered;
    size_t i;
    int ok = 0;

    pthread_mutex_lock(&live_lock);
    for (i = 0; i < sizeof live / sizeof live[0] && !ok; i++)
        if (live[i] == NULL || live[i] == pc) {
            live[i] = pc;
            ok = 1;
        }
    if (ok && !registered)
        ok = registered = atexit(release_at_exit) == 0;
    pthread_mutex_unlock(&live_lock);
    return ok;
}

static void module_teardown(void *provctx)
{
    prov_ctx *pc = provctx;
    size_t i;

    if (pc == NULL)
        return;
    pthread_mutex_lock(&live_lock);
    for (i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] == pc)
            live[i] = NULL;
    pthread_mutex_unlock(&live_lock);
    release_tokens(pc);
    OSSL_LIB_CTX_free(pc->libctx);
    free(pc->module_path);
    free(pc);
}

static const OSSL_DISPATCH module_fns[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))module_teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))module_query},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))module_reasons},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))module_gettable},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))module_get_params},
    {0, NULL}};

/* The explicit PKCS#11 module: the environment first, then openssl.cnf. */
static int module_path(prov_ctx *pc, const OSSL_DISPATCH *in)
{
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    const char *env = getenv(ENV_MODULE);
    char *conf = NULL;
    OSSL_PARAM params[2];

    if (env != NULL && env[0] != '\0') {
        pc->module_path = tc_strdup(env);
        return pc->module_path != NULL;
    }
    for (; in != NULL && in->function_id != 0; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS)
            get_params = OSSL_FUNC_core_get_params(in);
    if (get_params == NULL)
        return 1;
    params[0] = OSSL_PARAM_construct_utf8_ptr(PARAM_MODULE, &conf, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!get_params(pc->handle, params))
        return 0;
    if (conf != NULL && conf[0] != '\0') {
        pc->module_path = tc_strdup(conf);
        return pc->module_path != NULL;
    }
    return 1;
}

__attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                                                              const OSSL_DISPATCH *in,
                                                              const OSSL_DISPATCH **out,
                                                              void **provctx)
{
    prov_ctx *pc = calloc(1, sizeof *pc);

    if (pc == NULL)
        return 0;
    pc->handle = handle;
    pc->loadable = 1;
    tc_provider_core_fns(pc, in);
    pc->libctx = OSSL_LIB_CTX_new_child(handle, in);
    if (pc->libctx == NULL || tokencert_ctx_new(&pc->tc) != TC_OK || !module_path(pc, in)) {
        module_teardown(pc);
        return 0;
    }
    *out = module_fns;
    *provctx = pc;
    return 1;
}
