/* forward.c — the forwarding base (see forward.h): one function per CK_FUNCTION_LIST entry that
 * runs the hooks around the target's function. Written out one by one rather than by a macro, so
 * that each reads, steps through and shows in a backtrace as ordinary code. */
#include "forward.h"

#include <stddef.h>
#include <string.h>

static CK_FUNCTION_LIST *target;
static tc_fwd_hooks hooks;

static const char *const names[TC_FWD_COUNT] = {
#define X(name) [TC_FWD_##name] = #name,
    TC_FWD_FUNCTIONS(X)
#undef X
};

void tc_fwd_set_hooks(const tc_fwd_hooks *h)
{
    if (h != NULL)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof hooks);
}

void tc_fwd_set_target(CK_FUNCTION_LIST *t)
{
    target = t;
}

CK_FUNCTION_LIST *tc_fwd_target(void)
{
    return target;
}

const char *tc_fwd_name(tc_fwd_fn fn)
{
    return (int)fn >= 0 && fn < TC_FWD_COUNT ? names[fn] : NULL;
}

bool tc_fwd_lookup(const char *name, tc_fwd_fn *fn)
{
    int i;

    for (i = 0; i < TC_FWD_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *fn = (tc_fwd_fn)i;
            return true;
        }
    }
    return false;
}

bool tc_fwd_before(tc_fwd_fn fn, CK_RV *rv)
{
    /* Nothing to forward to: not counted as a call, the hooks never see it. */
    if (target == NULL) {
        *rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        return true;
    }
    return hooks.before != NULL && hooks.before(hooks.data, fn, rv);
}

CK_RV tc_fwd_after(tc_fwd_fn fn, CK_RV rv)
{
    /* No target: tc_fwd_before refused the call and no hook ran, so none runs after it. */
    if (target == NULL || hooks.after == NULL)
        return rv;
    return hooks.after(hooks.data, fn, rv);
}

/* Some modules leave functions they do not implement NULL, which the spec does not allow: those
 * are reported as unsupported rather than crash the application. */

static CK_RV fwd_C_Initialize(CK_VOID_PTR init_args)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Initialize, &rv))
        rv = target->C_Initialize != NULL ? target->C_Initialize(init_args)
                                          : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Initialize, rv);
}

static CK_RV fwd_C_Finalize(CK_VOID_PTR reserved)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Finalize, &rv))
        rv = target->C_Finalize != NULL ? target->C_Finalize(reserved) : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Finalize, rv);
}

static CK_RV fwd_C_GetInfo(CK_INFO_PTR info)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetInfo, &rv))
        rv = target->C_GetInfo != NULL ? target->C_GetInfo(info) : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetInfo, rv);
}

static CK_RV fwd_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetSlotList, &rv))
        rv = target->C_GetSlotList != NULL ? target->C_GetSlotList(token_present, list, count)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetSlotList, rv);
}

static CK_RV fwd_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetSlotInfo, &rv))
        rv = target->C_GetSlotInfo != NULL ? target->C_GetSlotInfo(slot, info)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetSlotInfo, rv);
}

static CK_RV fwd_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetTokenInfo, &rv))
        rv = target->C_GetTokenInfo != NULL ? target->C_GetTokenInfo(slot, info)
                                            : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetTokenInfo, rv);
}

static CK_RV fwd_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetMechanismList, &rv))
        rv = target->C_GetMechanismList != NULL ? target->C_GetMechanismList(slot, list, count)
                                                : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetMechanismList, rv);
}

static CK_RV fwd_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                    CK_MECHANISM_INFO_PTR info)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetMechanismInfo, &rv))
        rv = target->C_GetMechanismInfo != NULL ? target->C_GetMechanismInfo(slot, type, info)
                                                : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetMechanismInfo, rv);
}

static CK_RV fwd_C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                             CK_UTF8CHAR_PTR label)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_InitToken, &rv))
        rv = target->C_InitToken != NULL ? target->C_InitToken(slot, pin, pin_len, label)
                                         : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_InitToken, rv);
}

static CK_RV fwd_C_InitPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_InitPIN, &rv))
        rv = target->C_InitPIN != NULL ? target->C_InitPIN(s, pin, pin_len)
                                       : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_InitPIN, rv);
}

static CK_RV fwd_C_SetPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                          CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SetPIN, &rv))
        rv = target->C_SetPIN != NULL ? target->C_SetPIN(s, old_pin, old_len, new_pin, new_len)
                                      : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SetPIN, rv);
}

static CK_RV fwd_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                               CK_SESSION_HANDLE_PTR s)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_OpenSession, &rv))
        rv = target->C_OpenSession != NULL ? target->C_OpenSession(slot, flags, app, notify, s)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_OpenSession, rv);
}

static CK_RV fwd_C_CloseSession(CK_SESSION_HANDLE s)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_CloseSession, &rv))
        rv =
            target->C_CloseSession != NULL ? target->C_CloseSession(s) : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_CloseSession, rv);
}

static CK_RV fwd_C_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_CloseAllSessions, &rv))
        rv = target->C_CloseAllSessions != NULL ? target->C_CloseAllSessions(slot)
                                                : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_CloseAllSessions, rv);
}

static CK_RV fwd_C_GetSessionInfo(CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetSessionInfo, &rv))
        rv = target->C_GetSessionInfo != NULL ? target->C_GetSessionInfo(s, info)
                                              : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetSessionInfo, rv);
}

static CK_RV fwd_C_GetOperationState(CK_SESSION_HANDLE s, CK_BYTE_PTR state, CK_ULONG_PTR state_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetOperationState, &rv))
        rv = target->C_GetOperationState != NULL ? target->C_GetOperationState(s, state, state_len)
                                                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetOperationState, rv);
}

static CK_RV fwd_C_SetOperationState(CK_SESSION_HANDLE s, CK_BYTE_PTR state, CK_ULONG state_len,
                                     CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SetOperationState, &rv))
        rv = target->C_SetOperationState != NULL
                 ? target->C_SetOperationState(s, state, state_len, enc_key, auth_key)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SetOperationState, rv);
}

static CK_RV fwd_C_Login(CK_SESSION_HANDLE s, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                         CK_ULONG pin_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Login, &rv))
        rv = target->C_Login != NULL ? target->C_Login(s, user_type, pin, pin_len)
                                     : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Login, rv);
}

static CK_RV fwd_C_Logout(CK_SESSION_HANDLE s)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Logout, &rv))
        rv = target->C_Logout != NULL ? target->C_Logout(s) : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Logout, rv);
}

static CK_RV fwd_C_CreateObject(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                                CK_OBJECT_HANDLE_PTR obj)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_CreateObject, &rv))
        rv = target->C_CreateObject != NULL ? target->C_CreateObject(s, tmpl, count, obj)
                                            : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_CreateObject, rv);
}

static CK_RV fwd_C_CopyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
                              CK_ULONG count, CK_OBJECT_HANDLE_PTR new_obj)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_CopyObject, &rv))
        rv = target->C_CopyObject != NULL ? target->C_CopyObject(s, obj, tmpl, count, new_obj)
                                          : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_CopyObject, rv);
}

static CK_RV fwd_C_DestroyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DestroyObject, &rv))
        rv = target->C_DestroyObject != NULL ? target->C_DestroyObject(s, obj)
                                             : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DestroyObject, rv);
}

static CK_RV fwd_C_GetObjectSize(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetObjectSize, &rv))
        rv = target->C_GetObjectSize != NULL ? target->C_GetObjectSize(s, obj, size)
                                             : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetObjectSize, rv);
}

static CK_RV fwd_C_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                     CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetAttributeValue, &rv))
        rv = target->C_GetAttributeValue != NULL ? target->C_GetAttributeValue(s, obj, tmpl, count)
                                                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetAttributeValue, rv);
}

static CK_RV fwd_C_SetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                     CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SetAttributeValue, &rv))
        rv = target->C_SetAttributeValue != NULL ? target->C_SetAttributeValue(s, obj, tmpl, count)
                                                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SetAttributeValue, rv);
}

static CK_RV fwd_C_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_FindObjectsInit, &rv))
        rv = target->C_FindObjectsInit != NULL ? target->C_FindObjectsInit(s, tmpl, count)
                                               : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_FindObjectsInit, rv);
}

static CK_RV fwd_C_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max,
                               CK_ULONG_PTR count)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_FindObjects, &rv))
        rv = target->C_FindObjects != NULL ? target->C_FindObjects(s, objs, max, count)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_FindObjects, rv);
}

static CK_RV fwd_C_FindObjectsFinal(CK_SESSION_HANDLE s)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_FindObjectsFinal, &rv))
        rv = target->C_FindObjectsFinal != NULL ? target->C_FindObjectsFinal(s)
                                                : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_FindObjectsFinal, rv);
}

static CK_RV fwd_C_EncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_EncryptInit, &rv))
        rv = target->C_EncryptInit != NULL ? target->C_EncryptInit(s, mech, key)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_EncryptInit, rv);
}

static CK_RV fwd_C_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Encrypt, &rv))
        rv = target->C_Encrypt != NULL ? target->C_Encrypt(s, in, in_len, out, out_len)
                                       : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Encrypt, rv);
}

static CK_RV fwd_C_EncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                 CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_EncryptUpdate, &rv))
        rv = target->C_EncryptUpdate != NULL ? target->C_EncryptUpdate(s, in, in_len, out, out_len)
                                             : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_EncryptUpdate, rv);
}

static CK_RV fwd_C_EncryptFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_EncryptFinal, &rv))
        rv = target->C_EncryptFinal != NULL ? target->C_EncryptFinal(s, out, out_len)
                                            : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_EncryptFinal, rv);
}

static CK_RV fwd_C_DecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DecryptInit, &rv))
        rv = target->C_DecryptInit != NULL ? target->C_DecryptInit(s, mech, key)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DecryptInit, rv);
}

static CK_RV fwd_C_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Decrypt, &rv))
        rv = target->C_Decrypt != NULL ? target->C_Decrypt(s, in, in_len, out, out_len)
                                       : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Decrypt, rv);
}

static CK_RV fwd_C_DecryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                 CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DecryptUpdate, &rv))
        rv = target->C_DecryptUpdate != NULL ? target->C_DecryptUpdate(s, in, in_len, out, out_len)
                                             : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DecryptUpdate, rv);
}

static CK_RV fwd_C_DecryptFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DecryptFinal, &rv))
        rv = target->C_DecryptFinal != NULL ? target->C_DecryptFinal(s, out, out_len)
                                            : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DecryptFinal, rv);
}

static CK_RV fwd_C_DigestInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DigestInit, &rv))
        rv = target->C_DigestInit != NULL ? target->C_DigestInit(s, mech)
                                          : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DigestInit, rv);
}

static CK_RV fwd_C_Digest(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                          CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Digest, &rv))
        rv = target->C_Digest != NULL ? target->C_Digest(s, in, in_len, out, out_len)
                                      : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Digest, rv);
}

static CK_RV fwd_C_DigestUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DigestUpdate, &rv))
        rv = target->C_DigestUpdate != NULL ? target->C_DigestUpdate(s, in, in_len)
                                            : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DigestUpdate, rv);
}

static CK_RV fwd_C_DigestKey(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DigestKey, &rv))
        rv = target->C_DigestKey != NULL ? target->C_DigestKey(s, key) : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DigestKey, rv);
}

static CK_RV fwd_C_DigestFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DigestFinal, &rv))
        rv = target->C_DigestFinal != NULL ? target->C_DigestFinal(s, out, out_len)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DigestFinal, rv);
}

static CK_RV fwd_C_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SignInit, &rv))
        rv = target->C_SignInit != NULL ? target->C_SignInit(s, mech, key)
                                        : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SignInit, rv);
}

static CK_RV fwd_C_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,
                        CK_ULONG_PTR sig_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Sign, &rv))
        rv = target->C_Sign != NULL ? target->C_Sign(s, in, in_len, sig, sig_len)
                                    : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Sign, rv);
}

static CK_RV fwd_C_SignUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SignUpdate, &rv))
        rv = target->C_SignUpdate != NULL ? target->C_SignUpdate(s, in, in_len)
                                          : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SignUpdate, rv);
}

static CK_RV fwd_C_SignFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SignFinal, &rv))
        rv = target->C_SignFinal != NULL ? target->C_SignFinal(s, sig, sig_len)
                                         : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SignFinal, rv);
}

static CK_RV fwd_C_SignRecoverInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SignRecoverInit, &rv))
        rv = target->C_SignRecoverInit != NULL ? target->C_SignRecoverInit(s, mech, key)
                                               : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SignRecoverInit, rv);
}

static CK_RV fwd_C_SignRecover(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                               CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SignRecover, &rv))
        rv = target->C_SignRecover != NULL ? target->C_SignRecover(s, in, in_len, sig, sig_len)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SignRecover, rv);
}

static CK_RV fwd_C_VerifyInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_VerifyInit, &rv))
        rv = target->C_VerifyInit != NULL ? target->C_VerifyInit(s, mech, key)
                                          : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_VerifyInit, rv);
}

static CK_RV fwd_C_Verify(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,
                          CK_ULONG sig_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_Verify, &rv))
        rv = target->C_Verify != NULL ? target->C_Verify(s, in, in_len, sig, sig_len)
                                      : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_Verify, rv);
}

static CK_RV fwd_C_VerifyUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_VerifyUpdate, &rv))
        rv = target->C_VerifyUpdate != NULL ? target->C_VerifyUpdate(s, in, in_len)
                                            : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_VerifyUpdate, rv);
}

static CK_RV fwd_C_VerifyFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_VerifyFinal, &rv))
        rv = target->C_VerifyFinal != NULL ? target->C_VerifyFinal(s, sig, sig_len)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_VerifyFinal, rv);
}

static CK_RV fwd_C_VerifyRecoverInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                                     CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_VerifyRecoverInit, &rv))
        rv = target->C_VerifyRecoverInit != NULL ? target->C_VerifyRecoverInit(s, mech, key)
                                                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_VerifyRecoverInit, rv);
}

static CK_RV fwd_C_VerifyRecover(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sig_len,
                                 CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_VerifyRecover, &rv))
        rv = target->C_VerifyRecover != NULL
                 ? target->C_VerifyRecover(s, sig, sig_len, out, out_len)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_VerifyRecover, rv);
}

static CK_RV fwd_C_DigestEncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                       CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DigestEncryptUpdate, &rv))
        rv = target->C_DigestEncryptUpdate != NULL
                 ? target->C_DigestEncryptUpdate(s, in, in_len, out, out_len)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DigestEncryptUpdate, rv);
}

static CK_RV fwd_C_DecryptDigestUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                       CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DecryptDigestUpdate, &rv))
        rv = target->C_DecryptDigestUpdate != NULL
                 ? target->C_DecryptDigestUpdate(s, in, in_len, out, out_len)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DecryptDigestUpdate, rv);
}

static CK_RV fwd_C_SignEncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                     CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SignEncryptUpdate, &rv))
        rv = target->C_SignEncryptUpdate != NULL
                 ? target->C_SignEncryptUpdate(s, in, in_len, out, out_len)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SignEncryptUpdate, rv);
}

static CK_RV fwd_C_DecryptVerifyUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                       CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DecryptVerifyUpdate, &rv))
        rv = target->C_DecryptVerifyUpdate != NULL
                 ? target->C_DecryptVerifyUpdate(s, in, in_len, out, out_len)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DecryptVerifyUpdate, rv);
}

static CK_RV fwd_C_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                               CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GenerateKey, &rv))
        rv = target->C_GenerateKey != NULL ? target->C_GenerateKey(s, mech, tmpl, count, key)
                                           : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GenerateKey, rv);
}

static CK_RV fwd_C_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                                   CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count,
                                   CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_count,
                                   CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GenerateKeyPair, &rv))
        rv = target->C_GenerateKeyPair != NULL
                 ? target->C_GenerateKeyPair(s, mech, pub_tmpl, pub_count, priv_tmpl, priv_count,
                                             pub, priv)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GenerateKeyPair, rv);
}

static CK_RV fwd_C_WrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                           CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_WrapKey, &rv))
        rv = target->C_WrapKey != NULL ? target->C_WrapKey(s, mech, wrapping_key, key, out, out_len)
                                       : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_WrapKey, rv);
}

static CK_RV fwd_C_UnwrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                             CK_OBJECT_HANDLE unwrapping_key, CK_BYTE_PTR in, CK_ULONG in_len,
                             CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_UnwrapKey, &rv))
        rv = target->C_UnwrapKey != NULL
                 ? target->C_UnwrapKey(s, mech, unwrapping_key, in, in_len, tmpl, count, key)
                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_UnwrapKey, rv);
}

static CK_RV fwd_C_DeriveKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base_key,
                             CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_DeriveKey, &rv))
        rv = target->C_DeriveKey != NULL ? target->C_DeriveKey(s, mech, base_key, tmpl, count, key)
                                         : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_DeriveKey, rv);
}

static CK_RV fwd_C_SeedRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR seed, CK_ULONG seed_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_SeedRandom, &rv))
        rv = target->C_SeedRandom != NULL ? target->C_SeedRandom(s, seed, seed_len)
                                          : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_SeedRandom, rv);
}

static CK_RV fwd_C_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG out_len)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GenerateRandom, &rv))
        rv = target->C_GenerateRandom != NULL ? target->C_GenerateRandom(s, out, out_len)
                                              : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GenerateRandom, rv);
}

static CK_RV fwd_C_GetFunctionStatus(CK_SESSION_HANDLE s)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_GetFunctionStatus, &rv))
        rv = target->C_GetFunctionStatus != NULL ? target->C_GetFunctionStatus(s)
                                                 : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_GetFunctionStatus, rv);
}

static CK_RV fwd_C_CancelFunction(CK_SESSION_HANDLE s)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_CancelFunction, &rv))
        rv = target->C_CancelFunction != NULL ? target->C_CancelFunction(s)
                                              : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_CancelFunction, rv);
}

static CK_RV fwd_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    CK_RV rv;

    if (!tc_fwd_before(TC_FWD_C_WaitForSlotEvent, &rv))
        rv = target->C_WaitForSlotEvent != NULL ? target->C_WaitForSlotEvent(flags, slot, reserved)
                                                : CKR_FUNCTION_NOT_SUPPORTED;
    return tc_fwd_after(TC_FWD_C_WaitForSlotEvent, rv);
}

void tc_fwd_function_list(CK_FUNCTION_LIST *out)
{
    memset(out, 0, sizeof *out);
    out->version.major = 2;
    out->version.minor = 40;
    out->C_Initialize = fwd_C_Initialize;
    out->C_Finalize = fwd_C_Finalize;
    out->C_GetInfo = fwd_C_GetInfo;
    out->C_GetSlotList = fwd_C_GetSlotList;
    out->C_GetSlotInfo = fwd_C_GetSlotInfo;
    out->C_GetTokenInfo = fwd_C_GetTokenInfo;
    out->C_GetMechanismList = fwd_C_GetMechanismList;
    out->C_GetMechanismInfo = fwd_C_GetMechanismInfo;
    out->C_InitToken = fwd_C_InitToken;
    out->C_InitPIN = fwd_C_InitPIN;
    out->C_SetPIN = fwd_C_SetPIN;
    out->C_OpenSession = fwd_C_OpenSession;
    out->C_CloseSession = fwd_C_CloseSession;
    out->C_CloseAllSessions = fwd_C_CloseAllSessions;
    out->C_GetSessionInfo = fwd_C_GetSessionInfo;
    out->C_GetOperationState = fwd_C_GetOperationState;
    out->C_SetOperationState = fwd_C_SetOperationState;
    out->C_Login = fwd_C_Login;
    out->C_Logout = fwd_C_Logout;
    out->C_CreateObject = fwd_C_CreateObject;
    out->C_CopyObject = fwd_C_CopyObject;
    out->C_DestroyObject = fwd_C_DestroyObject;
    out->C_GetObjectSize = fwd_C_GetObjectSize;
    out->C_GetAttributeValue = fwd_C_GetAttributeValue;
    out->C_SetAttributeValue = fwd_C_SetAttributeValue;
    out->C_FindObjectsInit = fwd_C_FindObjectsInit;
    out->C_FindObjects = fwd_C_FindObjects;
    out->C_FindObjectsFinal = fwd_C_FindObjectsFinal;
    out->C_EncryptInit = fwd_C_EncryptInit;
    out->C_Encrypt = fwd_C_Encrypt;
    out->C_EncryptUpdate = fwd_C_EncryptUpdate;
    out->C_EncryptFinal = fwd_C_EncryptFinal;
    out->C_DecryptInit = fwd_C_DecryptInit;
    out->C_Decrypt = fwd_C_Decrypt;
    out->C_DecryptUpdate = fwd_C_DecryptUpdate;
    out->C_DecryptFinal = fwd_C_DecryptFinal;
    out->C_DigestInit = fwd_C_DigestInit;
    out->C_Digest = fwd_C_Digest;
    out->C_DigestUpdate = fwd_C_DigestUpdate;
    out->C_DigestKey = fwd_C_DigestKey;
    out->C_DigestFinal = fwd_C_DigestFinal;
    out->C_SignInit = fwd_C_SignInit;
    out->C_Sign = fwd_C_Sign;
    out->C_SignUpdate = fwd_C_SignUpdate;
    out->C_SignFinal = fwd_C_SignFinal;
    out->C_SignRecoverInit = fwd_C_SignRecoverInit;
    out->C_SignRecover = fwd_C_SignRecover;
    out->C_VerifyInit = fwd_C_VerifyInit;
    out->C_Verify = fwd_C_Verify;
    out->C_VerifyUpdate = fwd_C_VerifyUpdate;
    out->C_VerifyFinal = fwd_C_VerifyFinal;
    out->C_VerifyRecoverInit = fwd_C_VerifyRecoverInit;
    out->C_VerifyRecover = fwd_C_VerifyRecover;
    out->C_DigestEncryptUpdate = fwd_C_DigestEncryptUpdate;
    out->C_DecryptDigestUpdate = fwd_C_DecryptDigestUpdate;
    out->C_SignEncryptUpdate = fwd_C_SignEncryptUpdate;
    out->C_DecryptVerifyUpdate = fwd_C_DecryptVerifyUpdate;
    out->C_GenerateKey = fwd_C_GenerateKey;
    out->C_GenerateKeyPair = fwd_C_GenerateKeyPair;
    out->C_WrapKey = fwd_C_WrapKey;
    out->C_UnwrapKey = fwd_C_UnwrapKey;
    out->C_DeriveKey = fwd_C_DeriveKey;
    out->C_SeedRandom = fwd_C_SeedRandom;
    out->C_GenerateRandom = fwd_C_GenerateRandom;
    out->C_GetFunctionStatus = fwd_C_GetFunctionStatus;
    out->C_CancelFunction = fwd_C_CancelFunction;
    out->C_WaitForSlotEvent = fwd_C_WaitForSlotEvent;
}
