/* p11.c — the PKCS#11 boundary: one thin wrapper per function (presence check and tracing when
 * TOKENCERT_DEBUG contains "pkcs11"), CK_RV names, and the single CK_RV -> tokencert_err map. */
#include "token/token.h"

#include <stdlib.h>
#include <string.h>

static int trace_on = -1;

static int tracing(void)
{
    if (trace_on < 0) {
        const char *d = getenv("TOKENCERT_DEBUG");
        trace_on = d != NULL && strstr(d, "pkcs11") != NULL;
    }
    return trace_on;
}

static CK_RV trace(const char *fn, const tc_module *m, CK_RV rv)
{
    if (tracing())
        fprintf(stderr, "tokencert: pkcs11: %s [%s] -> %s\n", fn, m->name, tc_ckr_name(rv));
    return rv;
}

#define NAME(x)                                                                                    \
    {                                                                                              \
        x, #x                                                                                      \
    }
static const struct {
    CK_RV rv;
    const char *name;
} ckr_names[] = {
    NAME(CKR_OK),
    NAME(CKR_CANCEL),
    NAME(CKR_HOST_MEMORY),
    NAME(CKR_SLOT_ID_INVALID),
    NAME(CKR_GENERAL_ERROR),
    NAME(CKR_FUNCTION_FAILED),
    NAME(CKR_ARGUMENTS_BAD),
    NAME(CKR_NO_EVENT),
    NAME(CKR_NEED_TO_CREATE_THREADS),
    NAME(CKR_CANT_LOCK),
    NAME(CKR_ATTRIBUTE_READ_ONLY),
    NAME(CKR_ATTRIBUTE_SENSITIVE),
    NAME(CKR_ATTRIBUTE_TYPE_INVALID),
    NAME(CKR_ATTRIBUTE_VALUE_INVALID),
    NAME(CKR_ACTION_PROHIBITED),
    NAME(CKR_DATA_INVALID),
    NAME(CKR_DATA_LEN_RANGE),
    NAME(CKR_DEVICE_ERROR),
    NAME(CKR_DEVICE_MEMORY),
    NAME(CKR_DEVICE_REMOVED),
    NAME(CKR_ENCRYPTED_DATA_INVALID),
    NAME(CKR_ENCRYPTED_DATA_LEN_RANGE),
    NAME(CKR_FUNCTION_CANCELED),
    NAME(CKR_FUNCTION_NOT_PARALLEL),
    NAME(CKR_FUNCTION_NOT_SUPPORTED),
    NAME(CKR_KEY_HANDLE_INVALID),
    NAME(CKR_KEY_SIZE_RANGE),
    NAME(CKR_KEY_TYPE_INCONSISTENT),
    NAME(CKR_KEY_FUNCTION_NOT_PERMITTED),
    NAME(CKR_MECHANISM_INVALID),
    NAME(CKR_MECHANISM_PARAM_INVALID),
    NAME(CKR_OBJECT_HANDLE_INVALID),
    NAME(CKR_OPERATION_ACTIVE),
    NAME(CKR_OPERATION_NOT_INITIALIZED),
    NAME(CKR_PIN_INCORRECT),
    NAME(CKR_PIN_INVALID),
    NAME(CKR_PIN_LEN_RANGE),
    NAME(CKR_PIN_EXPIRED),
    NAME(CKR_PIN_LOCKED),
    NAME(CKR_SESSION_CLOSED),
    NAME(CKR_SESSION_COUNT),
    NAME(CKR_SESSION_HANDLE_INVALID),
    NAME(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    NAME(CKR_SESSION_READ_ONLY),
    NAME(CKR_SESSION_EXISTS),
    NAME(CKR_SESSION_READ_ONLY_EXISTS),
    NAME(CKR_SESSION_READ_WRITE_SO_EXISTS),
    NAME(CKR_SIGNATURE_INVALID),
    NAME(CKR_SIGNATURE_LEN_RANGE),
    NAME(CKR_TEMPLATE_INCOMPLETE),
    NAME(CKR_TEMPLATE_INCONSISTENT),
    NAME(CKR_TOKEN_NOT_PRESENT),
    NAME(CKR_TOKEN_NOT_RECOGNIZED),
    NAME(CKR_TOKEN_WRITE_PROTECTED),
    NAME(CKR_USER_ALREADY_LOGGED_IN),
    NAME(CKR_USER_NOT_LOGGED_IN),
    NAME(CKR_USER_PIN_NOT_INITIALIZED),
    NAME(CKR_USER_TYPE_INVALID),
    NAME(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    NAME(CKR_USER_TOO_MANY_TYPES),
    NAME(CKR_DOMAIN_PARAMS_INVALID),
    NAME(CKR_CURVE_NOT_SUPPORTED),
    NAME(CKR_BUFFER_TOO_SMALL),
    NAME(CKR_CRYPTOKI_NOT_INITIALIZED),
    NAME(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    NAME(CKR_MUTEX_BAD),
    NAME(CKR_MUTEX_NOT_LOCKED),
};
#undef NAME

const char *tc_ckr_name(CK_RV rv)
{
    static __thread char buf[32];
    size_t i;

    for (i = 0; i < sizeof ckr_names / sizeof ckr_names[0]; i++)
        if (ckr_names[i].rv == rv)
            return ckr_names[i].name;
    snprintf(buf, sizeof buf, "CKR_0x%08lx", (unsigned long)rv);
    return buf;
}

tokencert_err tc_err_from_rv(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return TC_OK;
    case CKR_HOST_MEMORY:
        return TC_ERR_NOMEM;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_RECOGNIZED:
        return TC_ERR_TOKEN_ABSENT;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
        return TC_ERR_PIN_INCORRECT;
    case CKR_PIN_LOCKED:
        return TC_ERR_PIN_LOCKED;
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_MECHANISM_INVALID:
        return TC_ERR_NOT_SUPPORTED;
    case CKR_CANCEL:
    case CKR_FUNCTION_CANCELED:
        return TC_ERR_CANCELLED;
    default:
        return TC_ERR_PKCS11;
    }
}

/* A module may leave a function pointer NULL; treat that as "not supported", never a crash. */
#define CALL(m, fn, ...)                                                                           \
    ((m)->fl->fn == NULL ? trace(#fn, (m), CKR_FUNCTION_NOT_SUPPORTED)                             \
                         : trace(#fn, (m), (m)->fl->fn(__VA_ARGS__)))

CK_RV tc_p11_get_slot_list(tc_module *m, CK_BBOOL present, CK_SLOT_ID *slots, CK_ULONG *n)
{
    return CALL(m, C_GetSlotList, present, slots, n);
}

CK_RV tc_p11_get_slot_info(tc_module *m, CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    return CALL(m, C_GetSlotInfo, slot, info);
}

CK_RV tc_p11_get_token_info(tc_module *m, CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    return CALL(m, C_GetTokenInfo, slot, info);
}

CK_RV tc_p11_open_session(tc_module *m, CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *session)
{
    return CALL(m, C_OpenSession, slot, flags, NULL, NULL, session);
}

CK_RV tc_p11_close_session(tc_module *m, CK_SESSION_HANDLE session)
{
    return CALL(m, C_CloseSession, session);
}

CK_RV tc_p11_login(tc_module *m, CK_SESSION_HANDLE session, CK_USER_TYPE type, unsigned char *pin,
                   CK_ULONG pin_len)
{
    return CALL(m, C_Login, session, type, pin, pin_len);
}

CK_RV tc_p11_logout(tc_module *m, CK_SESSION_HANDLE session)
{
    return CALL(m, C_Logout, session);
}

CK_RV tc_p11_find_objects_init(tc_module *m, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl,
                               CK_ULONG n)
{
    return CALL(m, C_FindObjectsInit, session, tmpl, n);
}

CK_RV tc_p11_find_objects(tc_module *m, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *objs,
                          CK_ULONG max, CK_ULONG *count)
{
    return CALL(m, C_FindObjects, session, objs, max, count);
}

CK_RV tc_p11_find_objects_final(tc_module *m, CK_SESSION_HANDLE session)
{
    return CALL(m, C_FindObjectsFinal, session);
}

CK_RV tc_p11_get_attribute_value(tc_module *m, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj,
                                 CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    return CALL(m, C_GetAttributeValue, session, obj, tmpl, n);
}

CK_RV tc_p11_create_object(tc_module *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_HANDLE *obj)
{
    return CALL(m, C_CreateObject, s, tmpl, n, obj);
}

CK_RV tc_p11_destroy_object(tc_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj)
{
    return CALL(m, C_DestroyObject, s, obj);
}

CK_RV tc_p11_set_attribute_value(tc_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                 CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    return CALL(m, C_SetAttributeValue, s, obj, tmpl, n);
}

CK_RV tc_p11_generate_key_pair(tc_module *m, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
                               CK_ATTRIBUTE *pub, CK_ULONG n_pub, CK_ATTRIBUTE *priv,
                               CK_ULONG n_priv, CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv)
{
    return CALL(m, C_GenerateKeyPair, s, mech, pub, n_pub, priv, n_priv, hpub, hpriv);
}

CK_RV tc_p11_get_mechanism_list(tc_module *m, CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *n)
{
    return CALL(m, C_GetMechanismList, slot, list, n);
}

CK_RV tc_p11_get_mechanism_info(tc_module *m, CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                CK_MECHANISM_INFO *info)
{
    return CALL(m, C_GetMechanismInfo, slot, type, info);
}

CK_RV tc_p11_sign_init(tc_module *m, CK_SESSION_HANDLE s, CK_MECHANISM *mech, CK_OBJECT_HANDLE k)
{
    return CALL(m, C_SignInit, s, mech, k);
}

CK_RV tc_p11_sign(tc_module *m, CK_SESSION_HANDLE s, CK_BYTE *data, CK_ULONG len, CK_BYTE *sig,
                  CK_ULONG *sig_len)
{
    return CALL(m, C_Sign, s, data, len, sig, sig_len);
}

CK_RV tc_p11_decrypt_init(tc_module *m, CK_SESSION_HANDLE s, CK_MECHANISM *mech, CK_OBJECT_HANDLE k)
{
    return CALL(m, C_DecryptInit, s, mech, k);
}

CK_RV tc_p11_decrypt(tc_module *m, CK_SESSION_HANDLE s, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                     CK_ULONG *out_len)
{
    return CALL(m, C_Decrypt, s, in, in_len, out, out_len);
}

CK_RV tc_p11_init_token(tc_module *m, CK_SLOT_ID slot, unsigned char *so_pin, CK_ULONG so_pin_len,
                        const unsigned char label[32])
{
    return CALL(m, C_InitToken, slot, so_pin, so_pin_len, (CK_UTF8CHAR_PTR)label);
}

CK_RV tc_p11_init_pin(tc_module *m, CK_SESSION_HANDLE s, unsigned char *pin, CK_ULONG pin_len)
{
    return CALL(m, C_InitPIN, s, pin, pin_len);
}
