/* token/token.h — the token layer: the library context, modules, slots, sessions, login, PIN
 * sources, batched object reads, open tokens and one wrapper per PKCS#11 call. Never installed. */
#ifndef TOKENCERT_SRC_TOKEN_TOKEN_H
#define TOKENCERT_SRC_TOKEN_TOKEN_H

#include "common.h"
#include "tokencert.h"
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <openssl/evp.h>

typedef struct {
    CK_FUNCTION_LIST *fl;
    char *name; /* p11-kit module name, or the path given */
    char *path;
    CK_INFO info;
} tc_module;

struct tokencert_ctx {
    tc_module *modules;
    size_t n_modules;
    CK_FUNCTION_LIST **registry; /* from p11_kit_modules_load(), released at free */
    CK_FUNCTION_LIST *explicit_module;
    int modules_loaded;
    char *error;
    tc_ptrvec warnings;
    tokencert_notice_fn notice;
    void *notice_data;
    /* The private OpenSSL library context: made here with the default and legacy providers (the
     * keys layer needs it for plain public keys), the provider layer adds the tokencert provider
     * to it. */
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov_default, *prov_legacy, *prov_tokencert;
    /* Set by the provider layer when it loads its provider, called by tokencert_ctx_free() before
     * libctx goes: the token layer frees what a layer above it made without depending on it. */
    void (*libctx_free)(tokencert_ctx *ctx);
};

/* ---- a neutral vocabulary for the layers above keys/ (object.c) ----
 * The layers above the keys layer name objects and key types with these, never with PKCS#11's
 * own constants, so that only token/ and keys/ speak PKCS#11. */
typedef enum {
    TC_CLASS_OTHER = 0,
    TC_CLASS_CERTIFICATE,
    TC_CLASS_PUBLIC_KEY,
    TC_CLASS_PRIVATE_KEY,
} tc_obj_class;

typedef enum {
    TC_KEY_TYPE_UNKNOWN = 0, /* the object did not say */
    TC_KEY_TYPE_RSA,
    TC_KEY_TYPE_EC,
    TC_KEY_TYPE_EDDSA,
    TC_KEY_TYPE_DSA,
    TC_KEY_TYPE_OTHER,
} tc_key_type;

/* An object on a session's token, as the layers above keys/ hold it (a PKCS#11 object handle). */
typedef unsigned long tc_object_ref;

/* Records the detail of the error being returned and returns err, for "return tc_error(...)". */
tokencert_err tc_error(tokencert_ctx *ctx, tokencert_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tc_warning(tokencert_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Tells the user something now, through the caller's notice callback. */
void tc_notice(tokencert_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The library's private OSSL_LIB_CTX with OpenSSL's default and legacy providers, created on first
 * use and freed with ctx; plain keys are served by the default provider. NULL (with the error
 * recorded) when it cannot be set up. The provider layer's tc_libctx() is the same context with
 * the token-key provider loaded too. */
OSSL_LIB_CTX *tc_libctx_plain(tokencert_ctx *ctx);

/* ---- PKCS#11 boundary (p11.c) ---- */
const char *tc_ckr_name(CK_RV rv);
/* The library error a CK_RV maps to: the one place this mapping lives. */
tokencert_err tc_err_from_rv(CK_RV rv);

CK_RV tc_p11_get_slot_list(tc_module *m, CK_BBOOL present, CK_SLOT_ID *slots, CK_ULONG *n);
CK_RV tc_p11_get_slot_info(tc_module *m, CK_SLOT_ID slot, CK_SLOT_INFO *info);
CK_RV tc_p11_get_token_info(tc_module *m, CK_SLOT_ID slot, CK_TOKEN_INFO *info);
CK_RV tc_p11_open_session(tc_module *m, CK_SLOT_ID slot, CK_FLAGS flags,
                          CK_SESSION_HANDLE *session);
CK_RV tc_p11_close_session(tc_module *m, CK_SESSION_HANDLE session);
CK_RV tc_p11_login(tc_module *m, CK_SESSION_HANDLE session, CK_USER_TYPE type, unsigned char *pin,
                   CK_ULONG pin_len);
CK_RV tc_p11_logout(tc_module *m, CK_SESSION_HANDLE session);
CK_RV tc_p11_find_objects_init(tc_module *m, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl,
                               CK_ULONG n);
CK_RV tc_p11_find_objects(tc_module *m, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *objs,
                          CK_ULONG max, CK_ULONG *count);
CK_RV tc_p11_find_objects_final(tc_module *m, CK_SESSION_HANDLE session);
CK_RV tc_p11_get_attribute_value(tc_module *m, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj,
                                 CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* ---- modules and tokens (token.c) ---- */
typedef struct {
    tc_module *module;
    CK_SLOT_ID slot;
    CK_SLOT_INFO slot_info;
    CK_TOKEN_INFO token_info;
    int present;
    /* token_info was read an instant ago (set by tokencert_token_open right after matching): the
     * first login may take its PIN flags as fresh instead of asking the token again. */
    int info_fresh;
} tc_slot;

/* Some tokens (tpm2-pkcs11) pad CK_TOKEN_INFO strings with NUL bytes instead of blanks; p11-kit's
 * URI matching and formatting expect blanks. Called on every CK_TOKEN_INFO read. */
void tc_token_info_normalise(CK_TOKEN_INFO *ti);
/* Every slot of every loaded module that matches uri (module, slot and token attributes).
 * Absent tokens are included only when the URI names no token attribute. */
tokencert_err tc_slots_match(tokencert_ctx *ctx, P11KitUri *uri, tc_slot **out, size_t *n_out);
/* Fills a public token description (URI included) from a slot. */
tokencert_err tc_token_info_fill(const tc_slot *s, tokencert_token_info *out);
void tc_token_info_clear(tokencert_token_info *t);
/* Parses a pkcs11: URI; NULL or "" gives an empty URI that matches everything. */
tokencert_err tc_uri_parse(tokencert_ctx *ctx, const char *s, P11KitUri **out);
/* True when the URI has any token (or slot) attribute set. */
int tc_uri_names_token(P11KitUri *uri);
/* True when the URI has object attributes (object, id, type). */
int tc_uri_names_object(P11KitUri *uri);
/* The class the URI's type= names: 1 and *cls set, or 0 when it names none. */
int tc_uri_object_class(P11KitUri *uri, tc_obj_class *cls);

/* A session on one token, optionally logged in. */
typedef struct tc_key tc_key;

typedef struct tc_session_s {
    tc_slot *slot;
    CK_SESSION_HANDLE h;
    int logged_in;
    /* Keys made or opened on this session (key.c), so that a command that generates a key, has it
     * sign and installs its certificate does not search the token for it again. */
    tc_key **keys;
    size_t n_keys;
    /* Set by the keys layer when it remembers a key; called at close, so that the token layer
     * releases them without depending on the layer above it. */
    void (*forget_keys)(struct tc_session_s *s);
} tc_session;

tokencert_err tc_session_open(tokencert_ctx *ctx, tc_slot *slot, int rw, tc_session *out);
void tc_session_close(tc_session *s);
/* Records a failed call on a session's token: names the token, the call and the CK_RV, and hints
 * at removal when that is what the CK_RV means. Returns the mapped error. */
tokencert_err tc_session_error(tokencert_ctx *ctx, const tc_session *s, const char *call, CK_RV rv);
/* Logs in as the user once; pin_source_uri is the URI's pin-source, may be NULL. */
tokencert_err tc_session_login(tokencert_ctx *ctx, tc_session *s, const tokencert_login_opts *opts,
                               const char *uri_pin_source);

/* Where a login's PIN comes from when the caller holds it (the OpenSSL provider module: a URI's
 * pin-value, or OpenSSL's passphrase callback). Called once, only after the lockout checks passed
 * and never for a PIN pad; *pin_out is wiped and freed with tc_secret_free(). An error it returns
 * is recorded in ctx by the function itself. */
typedef tokencert_err (*tc_pin_fn)(void *data, tokencert_ctx *ctx, const char *token_label,
                                   char **pin_out);
/* tc_session_login() with the PIN from get_pin: the same single attempt, the same refusals. */
tokencert_err tc_session_login_with(tokencert_ctx *ctx, tc_session *s, int allow_final_try,
                                    tc_pin_fn get_pin, void *pin_data);

/* ---- objects (object.c) ---- */
/* Finds objects matching tmpl, in batches, always finalising; capped at max_objects. */
tokencert_err tc_find_objects(tokencert_ctx *ctx, tc_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              size_t max_objects, CK_OBJECT_HANDLE **out, size_t *n_out);

/* One attribute read from an object: value NULL with len 0 when absent, unavailable or empty.
 * On input, len is the buffer to offer for a variable-length value and fixed the exact size of a
 * fixed-size one (sizeof(CK_ULONG), sizeof(CK_BBOOL)), 0 for variable-length values. */
typedef struct {
    CK_ATTRIBUTE_TYPE type;
    unsigned char *value;
    CK_ULONG len;
    int available;
    CK_ULONG fixed;
} tc_attr;

/* Reads attrs[] in one C_GetAttributeValue. Attributes the object does not have, or will not
 * reveal, come back unavailable in that same call, as PKCS#11 requires of tokens. Tokens that stop
 * at the first such attribute are detected (a fixed-size attribute left untouched) and then read
 * one attribute at a time. A variable-length value that did not fit comes back unavailable: the
 * caller re-reads the ones it needs with tc_get_attribute(). Values are capped at max_len. */
tokencert_err tc_get_attributes(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE obj,
                                tc_attr *attrs, size_t n, size_t max_len);
/* Reads one attribute on its own, sized by a length query first. */
tokencert_err tc_get_attribute(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE obj, tc_attr *a,
                               size_t max_len);
void tc_attrs_clear(tc_attr *attrs, size_t n);

/* Conversions between the neutral vocabulary and PKCS#11's. */
tc_obj_class tc_obj_class_from_ck(CK_OBJECT_CLASS cls);
CK_OBJECT_CLASS tc_obj_class_to_ck(tc_obj_class cls);
tc_key_type tc_key_type_from_ck(CK_KEY_TYPE type);
CK_KEY_TYPE tc_key_type_to_ck(tc_key_type type);
/* The object URI of one object: uri's token attributes plus its class, id and label (id and label
 * omitted when empty); NULL when out of memory. uri's object attributes are replaced. */
char *tc_uri_object_format(P11KitUri *uri, tc_obj_class cls, const unsigned char *id, size_t id_len,
                           const unsigned char *label, size_t label_len);
/* True when filter's object attributes (type, id, object) match the object described. */
int tc_uri_object_matches(P11KitUri *filter, tc_obj_class cls, const unsigned char *id,
                          size_t id_len, const unsigned char *label, size_t label_len);
/* True when the slot holds a token that has been initialised. */
int tc_slot_token_initialized(const tc_slot *slot);

/* ---- PIN sources (pin.c) ---- */
/* Reads a PIN from "file:PATH", "env:VAR", "fd:N" (or a bare path, as RFC 7512 pin-source allows
 * "file:" URIs). The returned string is wiped and freed with tc_secret_free(). */
tokencert_err tc_pin_from_source(tokencert_ctx *ctx, const char *source, char **pin_out);
/* Prompts on the controlling terminal without echo. */
tokencert_err tc_pin_prompt(tokencert_ctx *ctx, const char *prompt, char **pin_out);

/* ---- an open token (handle.c) ---- */
struct tokencert_token {
    tokencert_ctx *ctx;
    tc_slot slot;
    tc_session session; /* session.slot points at slot above */
    tokencert_token_info info;
    P11KitUri *uri; /* the URI the token was opened with */
};

/* Parses an object URI given for an open token: its token attributes, if any, must match the
 * open token (else TC_ERR_INVALID_ARG naming the mismatch). *names_object tells whether it selects
 * objects at all (object=, id=, type=). */
tokencert_err tc_token_object_uri(tokencert_token *t, const char *uri, P11KitUri **out,
                                  int *names_object);
/* The pkcs11: URI of an object on the open token: its token attributes plus type, id and object
 * (label; omitted when NULL or empty, like an empty id). NULL when out of memory. */
char *tc_token_object_uri_format(const tokencert_token *t, tc_obj_class cls,
                                 const unsigned char *id, size_t id_len, const char *label);
/* Writes one PKCS#11 attribute template as a new object (C_CreateObject). */
CK_RV tc_p11_create_object(tc_module *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_HANDLE *obj);
CK_RV tc_p11_destroy_object(tc_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj);
CK_RV tc_p11_set_attribute_value(tc_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                 CK_ATTRIBUTE *tmpl, CK_ULONG n);
CK_RV tc_p11_generate_key_pair(tc_module *m, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
                               CK_ATTRIBUTE *pub, CK_ULONG n_pub, CK_ATTRIBUTE *priv,
                               CK_ULONG n_priv, CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv);
CK_RV tc_p11_get_mechanism_list(tc_module *m, CK_SLOT_ID slot, CK_MECHANISM_TYPE *list,
                                CK_ULONG *n);
CK_RV tc_p11_get_mechanism_info(tc_module *m, CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                CK_MECHANISM_INFO *info);
CK_RV tc_p11_sign_init(tc_module *m, CK_SESSION_HANDLE s, CK_MECHANISM *mech, CK_OBJECT_HANDLE k);
CK_RV tc_p11_sign(tc_module *m, CK_SESSION_HANDLE s, CK_BYTE *data, CK_ULONG len, CK_BYTE *sig,
                  CK_ULONG *sig_len);
CK_RV tc_p11_decrypt_init(tc_module *m, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
                          CK_OBJECT_HANDLE k);
CK_RV tc_p11_decrypt(tc_module *m, CK_SESSION_HANDLE s, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                     CK_ULONG *out_len);

/* ---- token initialisation, for the embedded CA's own token (p11.c) ---- */
/* label is the 32-byte blank-padded CK_TOKEN_INFO label. */
CK_RV tc_p11_init_token(tc_module *m, CK_SLOT_ID slot, unsigned char *so_pin, CK_ULONG so_pin_len,
                        const unsigned char label[32]);
CK_RV tc_p11_init_pin(tc_module *m, CK_SESSION_HANDLE s, unsigned char *pin, CK_ULONG pin_len);

#endif /* TOKENCERT_SRC_TOKEN_TOKEN_H */
