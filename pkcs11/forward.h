/* forward.h — the forwarding base of tokencert's PKCS#11 modules (a static library).
 *
 * A derived module wraps a real module: it sets the target (the real module's function list),
 * optionally hooks that run before and after every call, and builds its own function list from
 * the forwarding one, replacing only the entries it changes. Every entry of the forwarding list
 * runs the before hook, calls the target's function (CKR_FUNCTION_NOT_SUPPORTED when the target
 * leaves it NULL) unless the hook says to skip it, then runs the after hook. Until a target is set
 * every call returns CKR_CRYPTOKI_NOT_INITIALIZED without running the hooks, so a derived
 * C_Initialize sets the target first and then calls the forwarding C_Initialize.
 *
 * One wrapped module per process image of the derived module: a PKCS#11 module is process-wide
 * anyway, and each module that links this library has its own copy of the state. Nothing here
 * is exported; the derived module's version script keeps only its entry points. */
#ifndef TOKENCERT_PKCS11_FORWARD_H
#define TOKENCERT_PKCS11_FORWARD_H

#include <stdbool.h>

#include <p11-kit/pkcs11.h>

/* Every function of CK_FUNCTION_LIST but C_GetFunctionList, in the list's order. */
#define TC_FWD_FUNCTIONS(X)                                                                        \
    X(C_Initialize)                                                                                \
    X(C_Finalize)                                                                                  \
    X(C_GetInfo)                                                                                   \
    X(C_GetSlotList)                                                                               \
    X(C_GetSlotInfo)                                                                               \
    X(C_GetTokenInfo)                                                                              \
    X(C_GetMechanismList)                                                                          \
    X(C_GetMechanismInfo)                                                                          \
    X(C_InitToken)                                                                                 \
    X(C_InitPIN)                                                                                   \
    X(C_SetPIN)                                                                                    \
    X(C_OpenSession)                                                                               \
    X(C_CloseSession)                                                                              \
    X(C_CloseAllSessions)                                                                          \
    X(C_GetSessionInfo)                                                                            \
    X(C_GetOperationState)                                                                         \
    X(C_SetOperationState)                                                                         \
    X(C_Login)                                                                                     \
    X(C_Logout)                                                                                    \
    X(C_CreateObject)                                                                              \
    X(C_CopyObject)                                                                                \
    X(C_DestroyObject)                                                                             \
    X(C_GetObjectSize)                                                                             \
    X(C_GetAttributeValue)                                                                         \
    X(C_SetAttributeValue)                                                                         \
    X(C_FindObjectsInit)                                                                           \
    X(C_FindObjects)                                                                               \
    X(C_FindObjectsFinal)                                                                          \
    X(C_EncryptInit)                                                                               \
    X(C_Encrypt)                                                                                   \
    X(C_EncryptUpdate)                                                                             \
    X(C_EncryptFinal)                                                                              \
    X(C_DecryptInit)                                                                               \
    X(C_Decrypt)                                                                                   \
    X(C_DecryptUpdate)                                                                             \
    X(C_DecryptFinal)                                                                              \
    X(C_DigestInit)                                                                                \
    X(C_Digest)                                                                                    \
    X(C_DigestUpdate)                                                                              \
    X(C_DigestKey)                                                                                 \
    X(C_DigestFinal)                                                                               \
    X(C_SignInit)                                                                                  \
    X(C_Sign)                                                                                      \
    X(C_SignUpdate)                                                                                \
    X(C_SignFinal)                                                                                 \
    X(C_SignRecoverInit)                                                                           \
    X(C_SignRecover)                                                                               \
    X(C_VerifyInit)                                                                                \
    X(C_Verify)                                                                                    \
    X(C_VerifyUpdate)                                                                              \
    X(C_VerifyFinal)                                                                               \
    X(C_VerifyRecoverInit)                                                                         \
    X(C_VerifyRecover)                                                                             \
    X(C_DigestEncryptUpdate)                                                                       \
    X(C_DecryptDigestUpdate)                                                                       \
    X(C_SignEncryptUpdate)                                                                         \
    X(C_DecryptVerifyUpdate)                                                                       \
    X(C_GenerateKey)                                                                               \
    X(C_GenerateKeyPair)                                                                           \
    X(C_WrapKey)                                                                                   \
    X(C_UnwrapKey)                                                                                 \
    X(C_DeriveKey)                                                                                 \
    X(C_SeedRandom)                                                                                \
    X(C_GenerateRandom)                                                                            \
    X(C_GetFunctionStatus)                                                                         \
    X(C_CancelFunction)                                                                            \
    X(C_WaitForSlotEvent)

typedef enum {
#define X(name) TC_FWD_##name,
    TC_FWD_FUNCTIONS(X)
#undef X
        TC_FWD_COUNT
} tc_fwd_fn;

typedef struct {
    /* Before a call: return true to keep it from the target, *rv being what the caller gets
     * (the after hook still runs). NULL: every call goes through. */
    bool (*before)(void *data, tc_fwd_fn fn, CK_RV *rv);
    /* After a call, with its result; returns what the caller gets. NULL: the result as is. */
    CK_RV (*after)(void *data, tc_fwd_fn fn, CK_RV rv);
    void *data;
} tc_fwd_hooks;

/* Sets the hooks (copied; NULL for none). */
void tc_fwd_set_hooks(const tc_fwd_hooks *hooks);
/* Sets the wrapped module's function list; NULL returns to "not initialised". */
void tc_fwd_set_target(CK_FUNCTION_LIST *target);
CK_FUNCTION_LIST *tc_fwd_target(void);

/* Fills out with the forwarding functions (version 2.40, C_GetFunctionList NULL: the derived
 * module sets its own), for the derived module to copy and override entries of. */
void tc_fwd_function_list(CK_FUNCTION_LIST *out);

/* For an override that does more than call the forwarding function: the before hook (true: do
 * not call the target, return *rv after tc_fwd_after) and the after hook. tc_fwd_before is also
 * true, with CKR_CRYPTOKI_NOT_INITIALIZED, while no target is set. */
bool tc_fwd_before(tc_fwd_fn fn, CK_RV *rv);
CK_RV tc_fwd_after(tc_fwd_fn fn, CK_RV rv);

/* "C_Initialize" ...; NULL for a value out of range. */
const char *tc_fwd_name(tc_fwd_fn fn);
/* The function called name (exact, as in the spec); false when there is none. */
bool tc_fwd_lookup(const char *name, tc_fwd_fn *fn);

#endif /* TOKENCERT_PKCS11_FORWARD_H */
