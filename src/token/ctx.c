/* ctx.c — the library context: error detail, warnings, error names, the private OpenSSL library
 * context (default and legacy providers), and module loading through
 * p11-kit (the registry, or one module by path). */
#include "token/token.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <p11-kit/p11-kit.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

const char *tokencert_version(void)
{
    return TOKENCERT_VERSION;
}

const char *tokencert_strerror(tokencert_err err)
{
    switch (err) {
    case TC_OK:
        return "success";
    case TC_ERR_INTERNAL:
        return "internal error";
    case TC_ERR_NOMEM:
        return "out of memory";
    case TC_ERR_INVALID_ARG:
        return "invalid argument";
    case TC_ERR_MODULE:
        return "PKCS#11 module failed";
    case TC_ERR_URI:
        return "malformed PKCS#11 URI";
    case TC_ERR_NOT_FOUND:
        return "nothing matched";
    case TC_ERR_TOKEN_ABSENT:
        return "token not present";
    case TC_ERR_PIN_INCORRECT:
        return "PIN incorrect";
    case TC_ERR_PIN_LOCKED:
        return "PIN locked";
    case TC_ERR_PIN_FINAL_TRY:
        return "PIN has one try left";
    case TC_ERR_PIN_SOURCE:
        return "PIN source unusable";
    case TC_ERR_PKCS11:
        return "PKCS#11 error";
    case TC_ERR_IO:
        return "I/O error";
    case TC_ERR_BAD_DATA:
        return "malformed data";
    case TC_ERR_CANCELLED:
        return "cancelled";
    case TC_ERR_NOT_SUPPORTED:
        return "not supported";
    case TC_ERR_PENDING:
        return "request pending";
    case TC_ERR_REJECTED:
        return "request rejected";
    case TC_ERR_VERIFY:
        return "verification failed";
    case TC_ERR_CA:
        return "the CA failed";
    }
    return "unknown error";
}

tokencert_err tc_error(tokencert_ctx *ctx, tokencert_err err, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    if (ctx == NULL)
        return err;
    va_start(ap, fmt);
    msg = tc_vasprintf(fmt, ap);
    va_end(ap);
    free(ctx->error);
    ctx->error = msg;
    return err;
}

void tc_warning(tokencert_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = tc_vasprintf(fmt, ap);
    va_end(ap);
    if (msg == NULL || tc_ptrvec_push(&ctx->warnings, msg) != 0)
        free(msg);
}

void tc_notice(tokencert_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    if (ctx->notice == NULL)
        return;
    va_start(ap, fmt);
    msg = tc_vasprintf(fmt, ap);
    va_end(ap);
    if (msg != NULL)
        ctx->notice(ctx->notice_data, msg);
    free(msg);
}

void tokencert_ctx_set_notice(tokencert_ctx *ctx, tokencert_notice_fn fn, void *data)
{
    tc_return_if_fail(ctx != NULL);
    ctx->notice = fn;
    ctx->notice_data = data;
}

tokencert_err tokencert_ctx_new(tokencert_ctx **out)
{
    tc_return_val_if_fail(out != NULL, TC_ERR_INVALID_ARG);
    *out = calloc(1, sizeof **out);
    return *out == NULL ? TC_ERR_NOMEM : TC_OK;
}

const char *tokencert_ctx_error(const tokencert_ctx *ctx)
{
    return ctx != NULL && ctx->error != NULL ? ctx->error : "";
}

size_t tokencert_ctx_warning_count(const tokencert_ctx *ctx)
{
    return ctx == NULL ? 0 : ctx->warnings.n;
}

const char *tokencert_ctx_warning(const tokencert_ctx *ctx, size_t i)
{
    return ctx == NULL || i >= ctx->warnings.n ? NULL : ctx->warnings.v[i];
}

static void unload_modules(tokencert_ctx *ctx)
{
    size_t i;

    for (i = 0; i < ctx->n_modules; i++) {
        p11_kit_module_finalize(ctx->modules[i].fl);
        free(ctx->modules[i].name);
        free(ctx->modules[i].path);
    }
    free(ctx->modules);
    ctx->modules = NULL;
    ctx->n_modules = 0;
    if (ctx->registry != NULL)
        p11_kit_modules_release(ctx->registry);
    ctx->registry = NULL;
    if (ctx->explicit_module != NULL)
        p11_kit_module_release(ctx->explicit_module);
    ctx->explicit_module = NULL;
    ctx->modules_loaded = 0;
}

static void libctx_free(tokencert_ctx *ctx)
{
    /* The layer above unloads its provider first: it lives in this context. */
    if (ctx->libctx_free != NULL)
        ctx->libctx_free(ctx);
    ctx->libctx_free = NULL;
    if (ctx->prov_legacy != NULL)
        OSSL_PROVIDER_unload(ctx->prov_legacy);
    if (ctx->prov_default != NULL)
        OSSL_PROVIDER_unload(ctx->prov_default);
    OSSL_LIB_CTX_free(ctx->libctx);
    ctx->prov_legacy = ctx->prov_default = NULL;
    ctx->libctx = NULL;
}

OSSL_LIB_CTX *tc_libctx_plain(tokencert_ctx *ctx)
{
    if (ctx->libctx != NULL)
        return ctx->libctx;
    ctx->libctx = OSSL_LIB_CTX_new();
    if (ctx->libctx == NULL) {
        tc_error(ctx, TC_ERR_NOMEM, "cannot create an OpenSSL library context");
        return NULL;
    }
    ctx->prov_default = OSSL_PROVIDER_load(ctx->libctx, "default");
    /* PKCS#12 files from portals still use RC2 and 3DES: the legacy provider decrypts them. */
    ctx->prov_legacy = OSSL_PROVIDER_load(ctx->libctx, "legacy");
    if (ctx->prov_default == NULL) {
        tc_error(ctx, TC_ERR_INTERNAL, "cannot load OpenSSL's default provider");
        libctx_free(ctx);
        return NULL;
    }
    /* Plain keys are always served by the default provider, also once the token-key provider is
     * loaded into this context (see provider/libctx.c). */
    if (!EVP_set_default_properties(ctx->libctx, "?provider=default")) {
        tc_error(ctx, TC_ERR_INTERNAL, "cannot set the OpenSSL library context's properties");
        libctx_free(ctx);
        return NULL;
    }
    return ctx->libctx;
}

void tokencert_ctx_free(tokencert_ctx *ctx)
{
    size_t i;

    if (ctx == NULL)
        return;
    libctx_free(ctx);
    unload_modules(ctx);
    for (i = 0; i < ctx->warnings.n; i++)
        free(ctx->warnings.v[i]);
    free(ctx->warnings.v);
    free(ctx->error);
    free(ctx);
}

/* Initialises one loaded module and appends it; the caller decides whether failure is fatal. */
static tokencert_err add_module(tokencert_ctx *ctx, CK_FUNCTION_LIST *fl, const char *label)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_module *mods, *m;
    CK_RV rv;

    rv = p11_kit_module_initialize(fl);
    if (rv != CKR_OK) {
        ret = tc_error(ctx, TC_ERR_MODULE, "PKCS#11 module '%s' failed to initialise: %s", label,
                       tc_ckr_name(rv));
        goto out;
    }
    mods = realloc(ctx->modules, (ctx->n_modules + 1) * sizeof *mods);
    if (mods == NULL) {
        p11_kit_module_finalize(fl);
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ctx->modules = mods;
    m = &mods[ctx->n_modules];
    memset(m, 0, sizeof *m);
    m->fl = fl;
    m->name = p11_kit_module_get_name(fl);
    if (m->name == NULL)
        m->name = tc_strdup(label);
    m->path = p11_kit_module_get_filename(fl);
    if (m->path == NULL)
        m->path = tc_strdup(label);
    if (fl->C_GetInfo == NULL || fl->C_GetInfo(&m->info) != CKR_OK)
        memset(&m->info, 0, sizeof m->info);
    ctx->n_modules++;
    ret = TC_OK;
out:
    return ret;
}

static tokencert_err load_explicit(tokencert_ctx *ctx, const char *path)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    struct stat st;
    CK_FUNCTION_LIST *fl;

    if (stat(path, &st) != 0) {
        ret = tc_error(ctx, TC_ERR_MODULE, "PKCS#11 module '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = tc_error(ctx, TC_ERR_MODULE, "PKCS#11 module '%s': not a regular file", path);
        goto out;
    }
    /* Unmanaged: we own initialisation; p11-kit's managed wrapper adds nothing for one caller. */
    fl = p11_kit_module_load(path, P11_KIT_MODULE_UNMANAGED);
    if (fl == NULL) {
        const char *why = p11_kit_message();
        ret = tc_error(ctx, TC_ERR_MODULE, "'%s' is not a usable PKCS#11 module: %s", path,
                       why != NULL && *why != '\0' ? why : "it could not be loaded");
        goto out;
    }
    ret = add_module(ctx, fl, path);
    if (ret != TC_OK) {
        p11_kit_module_release(fl);
        goto out;
    }
    ctx->explicit_module = fl;
    ret = TC_OK;
out:
    return ret;
}

static tokencert_err load_registry(tokencert_ctx *ctx)
{
    size_t i;

    /* p11-kit names each registered module that fails to load only when loud; it then goes on
     * with the others, which is what we want. */
    p11_kit_be_loud();
    ctx->registry = p11_kit_modules_load(NULL, 0);
    p11_kit_be_quiet();
    if (ctx->registry == NULL) {
        const char *why = p11_kit_message();
        return tc_error(ctx, TC_ERR_MODULE, "cannot load the p11-kit module registry: %s",
                        why != NULL ? why : "unknown reason");
    }
    for (i = 0; ctx->registry[i] != NULL; i++) {
        char *name = p11_kit_module_get_name(ctx->registry[i]);
        const char *label = name != NULL ? name : "(unnamed)";
        if (add_module(ctx, ctx->registry[i], label) != TC_OK)
            tc_warning(ctx, "%s; its tokens are not shown", tokencert_ctx_error(ctx));
        free(name);
    }
    if (ctx->n_modules == 0)
        return tc_error(ctx, TC_ERR_MODULE,
                        "no usable PKCS#11 module is registered with p11-kit (use --module PATH)");
    return TC_OK;
}

tokencert_err tokencert_load_modules(tokencert_ctx *ctx, const char *module_path)
{
    tc_return_val_if_fail(ctx != NULL, TC_ERR_INVALID_ARG);
    if (ctx->modules_loaded)
        unload_modules(ctx);
    tokencert_err ret = module_path != NULL ? load_explicit(ctx, module_path) : load_registry(ctx);
    if (ret == TC_OK)
        ctx->modules_loaded = 1;
    return ret;
}
