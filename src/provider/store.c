/* store.c — the loadable module's STORE loader for pkcs11: URIs (OSSL_OP_STORE, scheme "pkcs11"):
 * `openssl ... -key 'pkcs11:token=...;object=...;type=private'` opens the token through the token
 * layer (one session and one login per token, kept until the module is unloaded), finds the one
 * private key the URI selects and hands OpenSSL a reference to it, which this provider's key
 * managers turn into a key whose private operations run on the token. Nothing of the private key
 * is read: the key never leaves the token.
 *
 * The PIN comes from the URI's pin-value, else its pin-source (file:, env:, fd:), else OpenSSL's
 * passphrase callback (a prompt, or -passin). The token layer's lockout rules hold: a locked
 * token or one on its final try is refused before a PIN is asked for, a rejected PIN is never
 * tried again, and after a rejection no further login is made in this process. */
#include "provider/local.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/store.h>

/* The longest PIN taken from OpenSSL's passphrase callback. */
#define PIN_MAX 256

typedef struct {
    prov_ctx *pc;
    char *uri;       /* as given, without a pin-value */
    char *pin;       /* the URI's pin-value, NULL when none */
    P11KitUri *pars; /* parsed */
    int expect;      /* OSSL_STORE_INFO_* asked for, 0 for any */
    int done;
} store_ctx;

typedef struct {
    const char *pin_value;
    const char *pin_source;
    OSSL_PASSPHRASE_CALLBACK *pw_cb;
    void *pw_cbarg;
} pin_data;

/* The URI without its pin-value, which is kept apart (*pin, wiped at close): the token layer
 * refuses a URI that carries a PIN, and error messages may then show the URI. */
static int split_pin_value(prov_ctx *pc, const char *uri, char **rest, char **pin)
{
    P11KitUri *u = p11_kit_uri_new();
    int r, ok = 0;

    *rest = NULL;
    *pin = NULL;
    if (u == NULL)
        return 0;
    r = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u);
    if (r != P11_KIT_URI_OK) {
        /* Never echoed: it may carry a PIN. */
        tc_provider_raise(pc, R_BAD_PARAM, __func__, "malformed pkcs11: URI: %s",
                          p11_kit_uri_message(r));
        goto out;
    }
    if (p11_kit_uri_get_pin_value(u) != NULL) {
        *pin = tc_strdup(p11_kit_uri_get_pin_value(u));
        if (*pin == NULL)
            goto out;
        p11_kit_uri_set_pin_value(u, NULL);
    }
    if (p11_kit_uri_format(u, P11_KIT_URI_FOR_ANY, rest) != P11_KIT_URI_OK) {
        *rest = NULL;
        goto out;
    }
    ok = 1;
out:
    if (!ok) {
        tc_secret_free(*pin);
        *pin = NULL;
    }
    p11_kit_uri_free(u);
    return ok;
}

static void *store_open(void *provctx, const char *uri)
{
    prov_ctx *pc = provctx;
    store_ctx *sc = calloc(1, sizeof *sc);

    /* No tokens once the process is exiting (module.c). */
    if (sc == NULL || pc->tc == NULL) {
        free(sc);
        return NULL;
    }
    sc->pc = pc;
    if (!split_pin_value(pc, uri, &sc->uri, &sc->pin))
        goto fail;
    if (tc_uri_parse(pc->tc, sc->uri, &sc->pars) != TC_OK) {
        tc_provider_raise(pc, R_BAD_PARAM, __func__, "%s", tokencert_ctx_error(pc->tc));
        goto fail;
    }
    return sc;
fail:
    tc_secret_free(sc->pin);
    free(sc->uri);
    free(sc);
    return NULL;
}

static const OSSL_PARAM *store_settable(void *provctx)
{
    static const OSSL_PARAM settable[] = {OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
                                          OSSL_PARAM_END};
    (void)provctx;
    return settable;
}

static int store_set_params(void *vsc, const OSSL_PARAM params[])
{
    store_ctx *sc = vsc;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);

    return p == NULL || OSSL_PARAM_get_int(p, &sc->expect);
}

/* The PIN for the token layer's login (tc_pin_fn): called once, after the lockout checks. */
static tokencert_err get_pin(void *data, tokencert_ctx *ctx, const char *label, char **pin_out)
{
    pin_data *d = data;
    char buf[PIN_MAX + 1];
    size_t len = 0;
    char *info;
    tokencert_err ret;

    *pin_out = NULL;
    if (d->pin_value != NULL) {
        *pin_out = tc_strdup(d->pin_value);
        return *pin_out == NULL ? TC_ERR_NOMEM : TC_OK;
    }
    if (d->pin_source != NULL)
        return tc_pin_from_source(ctx, d->pin_source, pin_out);
    if (d->pw_cb == NULL)
        return tc_error(ctx, TC_ERR_PIN_SOURCE,
                        "token '%s' needs a PIN: give pin-source or pin-value in the pkcs11: URI",
                        label);
    info = tc_asprintf("PIN for token '%s'", label);
    if (info == NULL)
        return TC_ERR_NOMEM;
    {
        OSSL_PARAM params[] = {OSSL_PARAM_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, info, 0),
                               OSSL_PARAM_END};
        params[0].data_size = strlen(info);
        if (!d->pw_cb(buf, PIN_MAX, &len, params, d->pw_cbarg) || len > PIN_MAX)
            ret = tc_error(ctx, TC_ERR_CANCELLED, "no PIN was given for token '%s'", label);
        else if (len == 0)
            ret = tc_error(ctx, TC_ERR_CANCELLED, "an empty PIN was given for token '%s'", label);
        else {
            buf[len] = '\0';
            *pin_out = tc_strdup(buf);
            ret = *pin_out == NULL ? TC_ERR_NOMEM : TC_OK;
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    free(info);
    return ret;
}

/* The open token the URI selects: one the module opened before, or a new one, logged in. */
static tokencert_err token_for(store_ctx *sc, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg,
                               tokencert_token **out)
{
    prov_ctx *pc = sc->pc;
    tokencert_err ret = TC_ERR_INTERNAL;
    tokencert_token *t = NULL, **grown;
    pin_data pd = {sc->pin, p11_kit_uri_get_pin_source(sc->pars), pw_cb, pw_cbarg};
    size_t i;

    *out = NULL;
    if (!pc->modules_loaded) {
        if (pc->tc == NULL) {
            ret = TC_ERR_INTERNAL;
            goto out;
        }
        ret = tokencert_load_modules(pc->tc, pc->module_path);
        if (ret != TC_OK)
            goto out;
        pc->modules_loaded = 1;
        if (!tc_provider_modules_loaded(pc)) {
            ret = tc_error(pc->tc, TC_ERR_INTERNAL, "cannot register the module's exit handler");
            goto out;
        }
    }
    /* A URI that names a token reuses it: one session and one login per token. */
    for (i = 0; tc_uri_names_token(sc->pars) && i < pc->n_tokens; i++) {
        if (p11_kit_uri_match_token_info(sc->pars, &pc->tokens[i]->slot.token_info)) {
            *out = pc->tokens[i];
            return TC_OK;
        }
    }
    ret = tokencert_token_open(pc->tc, sc->uri, NULL, 0, &t);
    if (ret != TC_OK)
        goto out;
    if (t->info.login_required) {
        if (pc->pin_rejected) {
            ret = tc_error(pc->tc, TC_ERR_PIN_INCORRECT,
                           "a token rejected a PIN earlier in this process: no further login is "
                           "tried, to protect it from locking");
            goto out;
        }
        ret = tc_session_login_with(pc->tc, &t->session, 0, get_pin, &pd);
        if (ret == TC_ERR_PIN_INCORRECT)
            pc->pin_rejected = 1;
        if (ret != TC_OK)
            goto out;
    }
    grown = realloc(pc->tokens, (pc->n_tokens + 1) * sizeof *grown);
    if (grown == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    pc->tokens = grown;
    pc->tokens[pc->n_tokens++] = t;
    *out = t;
    t = NULL;
    ret = TC_OK;
out:
    tokencert_token_close(t);
    return ret;
}

static const char *key_data_type(const tc_key *key)
{
    if (key->type == TC_KEY_TYPE_RSA)
        return "RSA";
    if (key->type == TC_KEY_TYPE_EC)
        return "EC";
    if (key->type == TC_KEY_TYPE_EDDSA && EVP_PKEY_is_a(key->pub_pkey, "ED25519"))
        return "ED25519";
    return NULL;
}

static int store_load(void *vsc, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    store_ctx *sc = vsc;
    prov_ctx *pc = sc->pc;
    tokencert_token *t = NULL;
    tc_key *key = NULL;
    tc_obj_class cls;
    prov_key_ref ref;
    int object_type = OSSL_OBJECT_PKEY, ok = 0;
    const char *data_type;
    OSSL_PARAM params[4];

    if (sc->done)
        return 0;
    sc->done = 1;
    /* Only private keys are offered; asked for something else, the store is simply empty. */
    if ((sc->expect != 0 && sc->expect != OSSL_STORE_INFO_PKEY) ||
        (tc_uri_object_class(sc->pars, &cls) && cls != TC_CLASS_PRIVATE_KEY))
        return 1;
    if (token_for(sc, pw_cb, pw_cbarg, &t) != TC_OK ||
        tc_key_open(pc->tc, &t->session, sc->pars, &key) != TC_OK) {
        tc_provider_raise(pc, R_TOKEN, __func__, "%s", tokencert_ctx_error(pc->tc));
        return 0;
    }
    data_type = key_data_type(key);
    if (data_type == NULL) {
        tc_provider_raise(pc, R_UNSUPPORTED, __func__,
                          "key '%s': only RSA, EC and Ed25519 keys are offered", key->label);
        goto out;
    }
    ref.magic = PROV_KEY_REF_MAGIC;
    ref.pc = pc;
    ref.key = key;
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, (char *)data_type, 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof ref);
    params[3] = OSSL_PARAM_construct_end();
    ok = object_cb(params, object_cbarg);
out:
    /* The session keeps its own reference for as long as the token stays open. */
    tc_key_free(key);
    return ok;
}

static int store_eof(void *vsc)
{
    store_ctx *sc = vsc;
    return sc->done;
}

static int store_close(void *vsc)
{
    store_ctx *sc = vsc;

    if (sc == NULL)
        return 1;
    if (sc->pars != NULL)
        p11_kit_uri_free(sc->pars);
    tc_secret_free(sc->pin);
    free(sc->uri);
    free(sc);
    return 1;
}

const OSSL_DISPATCH tc_provider_store[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close},
    {0, NULL}};
