/* mock-module.c — tc-mock.so: a PKCS#11 module for unit tests, with one slot, one token and its
 * objects in memory (see mock-module.h for what it does and the test-only API). Written for
 * tokencert in the manner of p11-kit's common/mock.c: enough of the standard, done exactly, for
 * the library to be tested without SoftHSM, and fast. Its one kind of cryptography, EC P-256 key
 * generation and ECDSA, is OpenSSL's, so that the engine can renew on it. */
#include "mock-module.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "forward.h" /* the one list of PKCS#11 functions: names and indexes for the counts */

#define EXPORT         __attribute__((visibility("default")))
#define SESSION_BASE   0x5e00 /* session handles are SESSION_BASE + index: never 0 */
#define MAX_SESSIONS   16
#define MAX_ATTR_VALUE (1024 * 1024)

typedef struct {
    CK_ATTRIBUTE_TYPE type;
    unsigned char *value; /* NULL when len is 0 */
    CK_ULONG len;
} mock_attr;

typedef struct {
    CK_OBJECT_HANDLE handle; /* 0: a free entry */
    mock_attr *attrs;
    CK_ULONG n_attrs;
} mock_object;

typedef struct {
    bool open;
    CK_FLAGS flags;
    bool finding;
    CK_OBJECT_HANDLE *found; /* the search's matches, taken at C_FindObjectsInit */
    CK_ULONG n_found, pos;
    bool signing; /* between C_SignInit and the C_Sign that ends it */
    CK_MECHANISM_TYPE sign_mech;
    CK_OBJECT_HANDLE sign_key;
} mock_session;

static bool initialized;
static bool logged_in;
static mock_object *objects;
static CK_ULONG n_objects;
static CK_OBJECT_HANDLE next_handle = 1;
static mock_session sessions[MAX_SESSIONS];
static CK_ULONG find_batch;
static unsigned long calls[TC_FWD_COUNT];
static unsigned long logins;

/* Space-padded copy into a fixed-width PKCS#11 string field. */
static void pad(CK_UTF8CHAR *dst, size_t width, const char *src)
{
    size_t len = strlen(src);

    memset(dst, ' ', width);
    memcpy(dst, src, len < width ? len : width);
}

static const mock_attr *find_attr(const mock_object *o, CK_ATTRIBUTE_TYPE type)
{
    CK_ULONG i;

    for (i = 0; i < o->n_attrs; i++)
        if (o->attrs[i].type == type)
            return &o->attrs[i];
    return NULL;
}

static bool attr_bool(const mock_object *o, CK_ATTRIBUTE_TYPE type, bool dflt)
{
    const mock_attr *a = find_attr(o, type);

    if (a == NULL || a->len != sizeof(CK_BBOOL))
        return dflt;
    return *(const CK_BBOOL *)a->value != CK_FALSE;
}

static CK_ULONG attr_ulong(const mock_object *o, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt)
{
    const mock_attr *a = find_attr(o, type);
    CK_ULONG v;

    if (a == NULL || a->len != sizeof v)
        return dflt;
    memcpy(&v, a->value, sizeof v);
    return v;
}

/* A private object is there only for a logged-in user, as on real tokens. */
static bool visible(const mock_object *o)
{
    return o->handle != 0 && (logged_in || !attr_bool(o, CKA_PRIVATE, false));
}

static mock_object *object_get(CK_OBJECT_HANDLE h)
{
    CK_ULONG i;

    for (i = 0; i < n_objects; i++)
        if (objects[i].handle == h && visible(&objects[i]))
            return &objects[i];
    return NULL;
}

/* The secret parts of a key that is sensitive or not extractable are never read out. */
static bool sensitive(const mock_object *o, CK_ATTRIBUTE_TYPE type)
{
    CK_ULONG cls = attr_ulong(o, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);

    if (cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY)
        return false;
    if (!attr_bool(o, CKA_SENSITIVE, false) && attr_bool(o, CKA_EXTRACTABLE, true))
        return false;
    switch (type) {
    case CKA_VALUE:
    case CKA_PRIVATE_EXPONENT:
    case CKA_PRIME_1:
    case CKA_PRIME_2:
    case CKA_EXPONENT_1:
    case CKA_EXPONENT_2:
    case CKA_COEFFICIENT:
        return true;
    default:
        return false;
    }
}

static void object_clear(mock_object *o)
{
    CK_ULONG i;

    for (i = 0; i < o->n_attrs; i++)
        free(o->attrs[i].value);
    free(o->attrs);
    memset(o, 0, sizeof *o);
}

static CK_OBJECT_HANDLE object_add(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    mock_object o = {0}, *grown;
    CK_ULONG i;

    o.attrs = calloc(n ? n : 1, sizeof *o.attrs);
    if (o.attrs == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        if (tmpl[i].ulValueLen > MAX_ATTR_VALUE || (tmpl[i].ulValueLen > 0 && !tmpl[i].pValue))
            goto fail;
        o.attrs[i].type = tmpl[i].type;
        o.attrs[i].len = tmpl[i].ulValueLen;
        if (tmpl[i].ulValueLen > 0) {
            o.attrs[i].value = malloc(tmpl[i].ulValueLen);
            if (o.attrs[i].value == NULL)
                goto fail;
            memcpy(o.attrs[i].value, tmpl[i].pValue, tmpl[i].ulValueLen);
        }
        o.n_attrs = i + 1;
    }
    grown = realloc(objects, (n_objects + 1) * sizeof *objects);
    if (grown == NULL)
        goto fail;
    objects = grown;
    o.handle = next_handle++;
    objects[n_objects++] = o;
    return o.handle;
fail:
    object_clear(&o);
    return 0;
}

static bool matches(const mock_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_ULONG i;

    for (i = 0; i < n; i++) {
        const mock_attr *a = find_attr(o, tmpl[i].type);
        if (a == NULL || a->len != tmpl[i].ulValueLen ||
            (a->len > 0 && memcmp(a->value, tmpl[i].pValue, a->len) != 0))
            return false;
    }
    return true;
}

static mock_session *session_get(CK_SESSION_HANDLE h)
{
    if (h < SESSION_BASE || h >= SESSION_BASE + MAX_SESSIONS || !sessions[h - SESSION_BASE].open)
        return NULL;
    return &sessions[h - SESSION_BASE];
}

static void session_close(mock_session *s)
{
    free(s->found);
    memset(s, 0, sizeof *s);
}

static bool any_session_open(void)
{
    size_t i;

    for (i = 0; i < MAX_SESSIONS; i++)
        if (sessions[i].open)
            return true;
    return false;
}

/* Every entry point counts itself first and refuses to work before C_Initialize. */
static CK_RV enter(tc_fwd_fn fn)
{
    calls[fn]++;
    return initialized ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* ---- the test-only API ---------------------------------------------------------------------- */

EXPORT void tc_mock_reset(void)
{
    CK_ULONG i;

    for (i = 0; i < MAX_SESSIONS; i++)
        session_close(&sessions[i]);
    for (i = 0; i < n_objects; i++)
        object_clear(&objects[i]);
    free(objects);
    objects = NULL;
    n_objects = 0;
    logged_in = false;
    find_batch = 0;
    memset(calls, 0, sizeof calls);
    logins = 0;
}

EXPORT CK_OBJECT_HANDLE tc_mock_add_object(const CK_ATTRIBUTE *attrs, CK_ULONG n)
{
    return object_add(attrs, n);
}

EXPORT void tc_mock_set_find_batch(CK_ULONG n)
{
    find_batch = n;
}

EXPORT unsigned long tc_mock_calls(const char *function)
{
    unsigned long total = 0;
    tc_fwd_fn fn;
    int i;

    if (function != NULL)
        return tc_fwd_lookup(function, &fn) ? calls[fn] : 0;
    for (i = 0; i < TC_FWD_COUNT; i++)
        total += calls[i];
    return total;
}

EXPORT unsigned long tc_mock_logins(void)
{
    return logins;
}

EXPORT unsigned long tc_mock_count_objects(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    unsigned long count = 0;
    CK_ULONG i;

    for (i = 0; i < n_objects; i++)
        if (objects[i].handle != 0 && matches(&objects[i], tmpl, n))
            count++;
    return count;
}

/* What a test leaves behind is freed when the module is unloaded, so leak checkers stay quiet. */
__attribute__((destructor)) static void mock_unload(void)
{
    tc_mock_reset();
}

/* ---- general, slot and token ---------------------------------------------------------------- */

static CK_RV mock_C_Initialize(CK_VOID_PTR init_args)
{
    (void)init_args;
    calls[TC_FWD_C_Initialize]++;
    if (initialized)
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    initialized = true;
    return CKR_OK;
}

static CK_RV mock_C_Finalize(CK_VOID_PTR reserved)
{
    CK_RV rv = enter(TC_FWD_C_Finalize);
    size_t i;

    if (rv != CKR_OK)
        return rv;
    if (reserved != NULL)
        return CKR_ARGUMENTS_BAD;
    for (i = 0; i < MAX_SESSIONS; i++)
        session_close(&sessions[i]);
    logged_in = false;
    initialized = false;
    return CKR_OK;
}

static CK_RV mock_C_GetInfo(CK_INFO_PTR info)
{
    CK_RV rv = enter(TC_FWD_C_GetInfo);

    if (rv != CKR_OK)
        return rv;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    memset(info, 0, sizeof *info);
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    pad(info->manufacturerID, sizeof info->manufacturerID, "tokencert");
    pad(info->libraryDescription, sizeof info->libraryDescription, "tokencert mock module");
    info->libraryVersion.major = 1;
    return CKR_OK;
}

static CK_RV mock_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv = enter(TC_FWD_C_GetSlotList);

    (void)token_present; /* the one slot always holds its token */
    if (rv != CKR_OK)
        return rv;
    if (count == NULL)
        return CKR_ARGUMENTS_BAD;
    if (list == NULL) {
        *count = 1;
        return CKR_OK;
    }
    if (*count < 1) {
        *count = 1;
        return CKR_BUFFER_TOO_SMALL;
    }
    list[0] = TC_MOCK_SLOT_ID;
    *count = 1;
    return CKR_OK;
}

static CK_RV mock_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv = enter(TC_FWD_C_GetSlotInfo);

    if (rv != CKR_OK)
        return rv;
    if (slot != TC_MOCK_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    memset(info, 0, sizeof *info);
    pad(info->slotDescription, sizeof info->slotDescription, "tokencert mock slot");
    pad(info->manufacturerID, sizeof info->manufacturerID, "tokencert");
    info->flags = CKF_TOKEN_PRESENT;
    return CKR_OK;
}

static CK_RV mock_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv = enter(TC_FWD_C_GetTokenInfo);

    if (rv != CKR_OK)
        return rv;
    if (slot != TC_MOCK_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    memset(info, 0, sizeof *info);
    pad(info->label, sizeof info->label, TC_MOCK_TOKEN_LABEL);
    pad(info->manufacturerID, sizeof info->manufacturerID, "tokencert");
    pad(info->model, sizeof info->model, "mock");
    pad(info->serialNumber, sizeof info->serialNumber, TC_MOCK_SERIAL);
    info->flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;
    info->ulMaxSessionCount = MAX_SESSIONS;
    info->ulMaxRwSessionCount = MAX_SESSIONS;
    info->ulSessionCount = CK_UNAVAILABLE_INFORMATION;
    info->ulRwSessionCount = CK_UNAVAILABLE_INFORMATION;
    info->ulMaxPinLen = 64;
    info->ulMinPinLen = 4;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    return CKR_OK;
}

/* What C_GenerateKeyPair and C_SignInit do. */
static const CK_MECHANISM_TYPE mechanisms[] = {CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, CKM_ECDSA_SHA256};
#define N_MECHANISMS (sizeof mechanisms / sizeof mechanisms[0])

static CK_RV mock_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                     CK_ULONG_PTR count)
{
    CK_RV rv = enter(TC_FWD_C_GetMechanismList);

    if (rv != CKR_OK)
        return rv;
    if (slot != TC_MOCK_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (count == NULL)
        return CKR_ARGUMENTS_BAD;
    if (list != NULL && *count < N_MECHANISMS) {
        *count = N_MECHANISMS;
        return CKR_BUFFER_TOO_SMALL;
    }
    if (list != NULL)
        memcpy(list, mechanisms, sizeof mechanisms);
    *count = N_MECHANISMS;
    return CKR_OK;
}

static CK_RV mock_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                     CK_MECHANISM_INFO_PTR info)
{
    CK_RV rv = enter(TC_FWD_C_GetMechanismInfo);

    if (rv != CKR_OK)
        return rv;
    if (slot != TC_MOCK_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    memset(info, 0, sizeof *info);
    info->ulMinKeySize = info->ulMaxKeySize = 256;
    if (type == CKM_EC_KEY_PAIR_GEN)
        info->flags = CKF_HW | CKF_GENERATE_KEY_PAIR | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    else if (type == CKM_ECDSA || type == CKM_ECDSA_SHA256)
        info->flags = CKF_HW | CKF_SIGN;
    else
        return CKR_MECHANISM_INVALID;
    return CKR_OK;
}

/* ---- sessions and login --------------------------------------------------------------------- */

static CK_RV mock_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                                CK_SESSION_HANDLE_PTR session)
{
    CK_RV rv = enter(TC_FWD_C_OpenSession);
    size_t i;

    (void)app;
    (void)notify;
    if (rv != CKR_OK)
        return rv;
    if (slot != TC_MOCK_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (session == NULL)
        return CKR_ARGUMENTS_BAD;
    if (!(flags & CKF_SERIAL_SESSION))
        return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    for (i = 0; i < MAX_SESSIONS; i++) {
        if (!sessions[i].open) {
            sessions[i].open = true;
            sessions[i].flags = flags;
            *session = SESSION_BASE + i;
            return CKR_OK;
        }
    }
    return CKR_SESSION_COUNT;
}

static CK_RV mock_C_CloseSession(CK_SESSION_HANDLE session)
{
    CK_RV rv = enter(TC_FWD_C_CloseSession);
    mock_session *s;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    session_close(s);
    /* The login belongs to the application's sessions: the last one closed ends it. */
    if (!any_session_open())
        logged_in = false;
    return CKR_OK;
}

static CK_RV mock_C_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv = enter(TC_FWD_C_CloseAllSessions);
    size_t i;

    if (rv != CKR_OK)
        return rv;
    if (slot != TC_MOCK_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    for (i = 0; i < MAX_SESSIONS; i++)
        session_close(&sessions[i]);
    logged_in = false;
    return CKR_OK;
}

static CK_RV mock_C_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    CK_RV rv = enter(TC_FWD_C_GetSessionInfo);
    mock_session *s;
    bool rw;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    rw = (s->flags & CKF_RW_SESSION) != 0;
    memset(info, 0, sizeof *info);
    info->slotID = TC_MOCK_SLOT_ID;
    info->flags = s->flags;
    if (logged_in)
        info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    else
        info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
    return CKR_OK;
}

static CK_RV mock_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                          CK_ULONG pin_len)
{
    CK_RV rv = enter(TC_FWD_C_Login);

    if (rv != CKR_OK)
        return rv;
    if (session_get(session) == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (user_type != CKU_USER)
        return CKR_USER_TYPE_INVALID;
    if (logged_in)
        return CKR_USER_ALREADY_LOGGED_IN;
    if (pin == NULL || pin_len != strlen(TC_MOCK_PIN) ||
        memcmp(pin, TC_MOCK_PIN, strlen(TC_MOCK_PIN)) != 0)
        return CKR_PIN_INCORRECT;
    logged_in = true;
    logins++;
    return CKR_OK;
}

static CK_RV mock_C_Logout(CK_SESSION_HANDLE session)
{
    CK_RV rv = enter(TC_FWD_C_Logout);

    if (rv != CKR_OK)
        return rv;
    if (session_get(session) == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (!logged_in)
        return CKR_USER_NOT_LOGGED_IN;
    logged_in = false;
    return CKR_OK;
}

/* ---- objects -------------------------------------------------------------------------------- */

static CK_RV mock_C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                                 CK_OBJECT_HANDLE_PTR object)
{
    CK_RV rv = enter(TC_FWD_C_CreateObject);
    mock_session *s;
    CK_ULONG i;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if ((tmpl == NULL && count > 0) || object == NULL)
        return CKR_ARGUMENTS_BAD;
    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    for (i = 0; i < count; i++)
        if (tmpl[i].type == CKA_PRIVATE && tmpl[i].ulValueLen == sizeof(CK_BBOOL) &&
            tmpl[i].pValue != NULL && *(CK_BBOOL *)tmpl[i].pValue && !logged_in)
            return CKR_USER_NOT_LOGGED_IN;
    *object = object_add(tmpl, count);
    return *object != 0 ? CKR_OK : CKR_HOST_MEMORY;
}

static CK_RV mock_C_DestroyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
    CK_RV rv = enter(TC_FWD_C_DestroyObject);
    mock_session *s;
    mock_object *o;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    o = object_get(object);
    if (o == NULL)
        return CKR_OBJECT_HANDLE_INVALID;
    object_clear(o); /* the entry stays, free: handles are never reused */
    return CKR_OK;
}

/* Per attribute, as PKCS#11 v2.40 section 5.7.5 says: a sensitive or unknown attribute, or a
 * buffer too small, sets that length to CK_UNAVAILABLE_INFORMATION and the call goes on with the
 * others; a NULL pValue asks for the length. The error returned is the first one met. */
static CK_RV mock_C_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                      CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    CK_RV rv = enter(TC_FWD_C_GetAttributeValue);
    const mock_object *o;
    CK_ULONG i;

    if (rv != CKR_OK)
        return rv;
    if (session_get(session) == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (tmpl == NULL && count > 0)
        return CKR_ARGUMENTS_BAD;
    o = object_get(object);
    if (o == NULL)
        return CKR_OBJECT_HANDLE_INVALID;
    for (i = 0; i < count; i++) {
        const mock_attr *a = find_attr(o, tmpl[i].type);
        CK_RV err = CKR_OK;

        if (sensitive(o, tmpl[i].type))
            err = CKR_ATTRIBUTE_SENSITIVE;
        else if (a == NULL)
            err = CKR_ATTRIBUTE_TYPE_INVALID;
        else if (tmpl[i].pValue == NULL)
            tmpl[i].ulValueLen = a->len;
        else if (tmpl[i].ulValueLen >= a->len) {
            if (a->len > 0)
                memcpy(tmpl[i].pValue, a->value, a->len);
            tmpl[i].ulValueLen = a->len;
        } else
            err = CKR_BUFFER_TOO_SMALL;
        if (err != CKR_OK) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            if (rv == CKR_OK)
                rv = err;
        }
    }
    return rv;
}

static CK_RV mock_C_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl,
                                    CK_ULONG count)
{
    CK_RV rv = enter(TC_FWD_C_FindObjectsInit);
    mock_session *s;
    CK_ULONG i;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (tmpl == NULL && count > 0)
        return CKR_ARGUMENTS_BAD;
    if (s->finding)
        return CKR_OPERATION_ACTIVE;
    s->found = calloc(n_objects ? n_objects : 1, sizeof *s->found);
    if (s->found == NULL)
        return CKR_HOST_MEMORY;
    s->n_found = s->pos = 0;
    for (i = 0; i < n_objects; i++)
        if (visible(&objects[i]) && matches(&objects[i], tmpl, count))
            s->found[s->n_found++] = objects[i].handle;
    s->finding = true;
    return CKR_OK;
}

static CK_RV mock_C_FindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR found, CK_ULONG max,
                                CK_ULONG_PTR count)
{
    CK_RV rv = enter(TC_FWD_C_FindObjects);
    mock_session *s;
    CK_ULONG n;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if ((found == NULL && max > 0) || count == NULL)
        return CKR_ARGUMENTS_BAD;
    if (!s->finding)
        return CKR_OPERATION_NOT_INITIALIZED;
    n = s->n_found - s->pos;
    if (n > max)
        n = max;
    if (find_batch > 0 && n > find_batch)
        n = find_batch;
    if (n > 0)
        memcpy(found, s->found + s->pos, n * sizeof *found);
    s->pos += n;
    *count = n;
    return CKR_OK;
}

static CK_RV mock_C_FindObjectsFinal(CK_SESSION_HANDLE session)
{
    CK_RV rv = enter(TC_FWD_C_FindObjectsFinal);
    mock_session *s;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (!s->finding)
        return CKR_OPERATION_NOT_INITIALIZED;
    free(s->found);
    s->found = NULL;
    s->n_found = s->pos = 0;
    s->finding = false;
    return CKR_OK;
}

/* ---- everything else: counted, and not supported -------------------------------------------- */

static CK_RV mock_C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                              CK_UTF8CHAR_PTR label)
{
    CK_RV rv = enter(TC_FWD_C_InitToken);

    (void)slot;
    (void)pin;
    (void)pin_len;
    (void)label;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_InitPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    CK_RV rv = enter(TC_FWD_C_InitPIN);

    (void)s;
    (void)pin;
    (void)pin_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_SetPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                           CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
    CK_RV rv = enter(TC_FWD_C_SetPIN);

    (void)s;
    (void)old_pin;
    (void)old_len;
    (void)new_pin;
    (void)new_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_GetOperationState(CK_SESSION_HANDLE s, CK_BYTE_PTR state,
                                      CK_ULONG_PTR state_len)
{
    CK_RV rv = enter(TC_FWD_C_GetOperationState);

    (void)s;
    (void)state;
    (void)state_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_SetOperationState(CK_SESSION_HANDLE s, CK_BYTE_PTR state, CK_ULONG state_len,
                                      CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
    CK_RV rv = enter(TC_FWD_C_SetOperationState);

    (void)s;
    (void)state;
    (void)state_len;
    (void)enc_key;
    (void)auth_key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_CopyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
                               CK_ULONG count, CK_OBJECT_HANDLE_PTR new_obj)
{
    CK_RV rv = enter(TC_FWD_C_CopyObject);

    (void)s;
    (void)obj;
    (void)tmpl;
    (void)count;
    (void)new_obj;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_GetObjectSize(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size)
{
    CK_RV rv = enter(TC_FWD_C_GetObjectSize);

    (void)s;
    (void)obj;
    (void)size;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

/* Replaces or adds each attribute of tmpl on a visible object (what key generation does to set the
 * CKA_ID derived from the public key). CKA_CLASS and CKA_KEY_TYPE cannot change. */
static CK_RV mock_C_SetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                      CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    CK_RV rv = enter(TC_FWD_C_SetAttributeValue);
    mock_session *s;
    mock_object *o;
    CK_ULONG i, j;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (tmpl == NULL && count > 0)
        return CKR_ARGUMENTS_BAD;
    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    o = object_get(object);
    if (o == NULL)
        return CKR_OBJECT_HANDLE_INVALID;
    for (i = 0; i < count; i++) {
        if (tmpl[i].type == CKA_CLASS || tmpl[i].type == CKA_KEY_TYPE)
            return CKR_ATTRIBUTE_READ_ONLY;
        if (tmpl[i].ulValueLen > MAX_ATTR_VALUE || (tmpl[i].ulValueLen > 0 && !tmpl[i].pValue))
            return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    for (i = 0; i < count; i++) {
        unsigned char *v = NULL;
        mock_attr *grown;

        if (tmpl[i].ulValueLen > 0) {
            v = malloc(tmpl[i].ulValueLen);
            if (v == NULL)
                return CKR_HOST_MEMORY;
            memcpy(v, tmpl[i].pValue, tmpl[i].ulValueLen);
        }
        for (j = 0; j < o->n_attrs && o->attrs[j].type != tmpl[i].type; j++)
            ;
        if (j == o->n_attrs) {
            grown = realloc(o->attrs, (o->n_attrs + 1) * sizeof *o->attrs);
            if (grown == NULL) {
                free(v);
                return CKR_HOST_MEMORY;
            }
            o->attrs = grown;
            o->attrs[o->n_attrs++].type = tmpl[i].type;
        } else {
            free(o->attrs[j].value);
        }
        o->attrs[j].value = v;
        o->attrs[j].len = tmpl[i].ulValueLen;
    }
    return CKR_OK;
}

static CK_RV mock_C_EncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv = enter(TC_FWD_C_EncryptInit);

    (void)s;
    (void)mech;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                            CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_Encrypt);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_EncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                  CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_EncryptUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_EncryptFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_EncryptFinal);

    (void)s;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv = enter(TC_FWD_C_DecryptInit);

    (void)s;
    (void)mech;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                            CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_Decrypt);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DecryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                  CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_DecryptUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DecryptFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_DecryptFinal);

    (void)s;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DigestInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech)
{
    CK_RV rv = enter(TC_FWD_C_DigestInit);

    (void)s;
    (void)mech;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_Digest(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_Digest);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DigestUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
{
    CK_RV rv = enter(TC_FWD_C_DigestUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DigestKey(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_RV rv = enter(TC_FWD_C_DigestKey);

    (void)s;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DigestFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_DigestFinal);

    (void)s;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

/* The EC P-256 key of a private-key object: the scalar kept in its CKA_VALUE (never read out:
 * the key is sensitive), made into an OpenSSL key only for the signature. */
static EVP_PKEY *ec_key_of(const mock_object *o)
{
    const mock_attr *d = find_attr(o, CKA_VALUE);
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *priv = NULL;

    if (d == NULL || d->len == 0 || d->len > 66)
        return NULL;
    priv = BN_bin2bn(d->value, (int)d->len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (priv == NULL || bld == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (params == NULL || pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0)
        pkey = NULL;
out:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    return pkey;
}

/* CKM_ECDSA (the caller hashes) and CKM_ECDSA_SHA256 with the EC keys C_GenerateKeyPair made (or a
 * test put on the token with its scalar in CKA_VALUE). */
static CK_RV mock_C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv = enter(TC_FWD_C_SignInit);
    mock_session *s;
    const mock_object *o;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (mech == NULL)
        return CKR_ARGUMENTS_BAD;
    if (s->signing)
        return CKR_OPERATION_ACTIVE;
    if (mech->mechanism != CKM_ECDSA && mech->mechanism != CKM_ECDSA_SHA256)
        return CKR_MECHANISM_INVALID;
    o = object_get(key);
    if (o == NULL)
        return CKR_KEY_HANDLE_INVALID;
    if (attr_ulong(o, CKA_CLASS, CK_UNAVAILABLE_INFORMATION) != CKO_PRIVATE_KEY ||
        attr_ulong(o, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION) != CKK_EC)
        return CKR_KEY_TYPE_INCONSISTENT;
    if (!attr_bool(o, CKA_SIGN, true))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    if (attr_bool(o, CKA_PRIVATE, false) && !logged_in)
        return CKR_USER_NOT_LOGGED_IN;
    s->signing = true;
    s->sign_mech = mech->mechanism;
    s->sign_key = key;
    return CKR_OK;
}

/* The signature as PKCS#11 gives it: r and s, 32 bytes each. A size query or a short buffer keeps
 * the operation going; anything else ends it. */
static CK_RV mock_C_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,
                         CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_RV rv = enter(TC_FWD_C_Sign);
    unsigned char digest[EVP_MAX_MD_SIZE], der[80];
    const unsigned char *p = der;
    unsigned int digest_len = 0;
    size_t der_len = sizeof der;
    const mock_object *o;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    ECDSA_SIG *es = NULL;
    mock_session *s;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (!s->signing)
        return CKR_OPERATION_NOT_INITIALIZED;
    if ((in == NULL && in_len > 0) || sig_len == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (sig == NULL) {
        *sig_len = 64;
        return CKR_OK;
    }
    if (*sig_len < 64) {
        *sig_len = 64;
        return CKR_BUFFER_TOO_SMALL;
    }
    rv = CKR_FUNCTION_FAILED;
    if (s->sign_mech == CKM_ECDSA_SHA256) {
        if (EVP_Digest(in, in_len, digest, &digest_len, EVP_sha256(), NULL) != 1)
            goto out;
        in = digest;
        in_len = digest_len;
    }
    o = object_get(s->sign_key);
    if (o == NULL) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    pkey = ec_key_of(o);
    pctx = pkey != NULL ? EVP_PKEY_CTX_new(pkey, NULL) : NULL;
    if (pctx == NULL || EVP_PKEY_sign_init(pctx) <= 0 ||
        EVP_PKEY_sign(pctx, der, &der_len, in, in_len) <= 0)
        goto out;
    es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
        goto out;
    *sig_len = 64;
    rv = CKR_OK;
out:
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(pkey);
    s->signing = false;
    return rv;
}

static CK_RV mock_C_SignUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
{
    CK_RV rv = enter(TC_FWD_C_SignUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_SignFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_RV rv = enter(TC_FWD_C_SignFinal);

    (void)s;
    (void)sig;
    (void)sig_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_SignRecoverInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                                    CK_OBJECT_HANDLE key)
{
    CK_RV rv = enter(TC_FWD_C_SignRecoverInit);

    (void)s;
    (void)mech;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_SignRecover(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_RV rv = enter(TC_FWD_C_SignRecover);

    (void)s;
    (void)in;
    (void)in_len;
    (void)sig;
    (void)sig_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_VerifyInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv = enter(TC_FWD_C_VerifyInit);

    (void)s;
    (void)mech;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_Verify(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,
                           CK_ULONG sig_len)
{
    CK_RV rv = enter(TC_FWD_C_Verify);

    (void)s;
    (void)in;
    (void)in_len;
    (void)sig;
    (void)sig_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_VerifyUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
{
    CK_RV rv = enter(TC_FWD_C_VerifyUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_VerifyFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    CK_RV rv = enter(TC_FWD_C_VerifyFinal);

    (void)s;
    (void)sig;
    (void)sig_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_VerifyRecoverInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                                      CK_OBJECT_HANDLE key)
{
    CK_RV rv = enter(TC_FWD_C_VerifyRecoverInit);

    (void)s;
    (void)mech;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_VerifyRecover(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sig_len,
                                  CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_VerifyRecover);

    (void)s;
    (void)sig;
    (void)sig_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DigestEncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                        CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_DigestEncryptUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DecryptDigestUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                        CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_DecryptDigestUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_SignEncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                      CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_SignEncryptUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DecryptVerifyUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,
                                        CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_DecryptVerifyUpdate);

    (void)s;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                                CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    CK_RV rv = enter(TC_FWD_C_GenerateKey);

    (void)s;
    (void)mech;
    (void)tmpl;
    (void)count;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};

/* A template with extra attributes after it, for the objects C_GenerateKeyPair makes. */
static CK_OBJECT_HANDLE object_add_with(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                                        const CK_ATTRIBUTE *extra, CK_ULONG n_extra)
{
    CK_ATTRIBUTE *all = calloc(n + n_extra, sizeof *all);
    CK_OBJECT_HANDLE h;

    if (all == NULL)
        return 0;
    if (n > 0)
        memcpy(all, tmpl, n * sizeof *all);
    memcpy(all + n, extra, n_extra * sizeof *all);
    h = object_add(all, n + n_extra);
    free(all);
    return h;
}

static bool template_has(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
    CK_ULONG i;

    for (i = 0; i < n; i++)
        if (tmpl[i].type == type)
            return true;
    return false;
}

/* CKM_EC_KEY_PAIR_GEN on P-256 only, made with OpenSSL: the public key gets CKA_EC_POINT, the
 * private key keeps its scalar in CKA_VALUE, which the sensitivity rule never lets out. */
static CK_RV mock_C_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                                    CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count,
                                    CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_count,
                                    CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
    static const CK_BBOOL yes = CK_TRUE;
    CK_RV rv = enter(TC_FWD_C_GenerateKeyPair);
    unsigned char scalar[32], point[2 + 65];
    size_t point_len = 0;
    BIGNUM *d = NULL;
    EVP_PKEY *pkey = NULL;
    mock_session *s;
    CK_ULONG i;
    bool p256 = false;

    if (rv != CKR_OK)
        return rv;
    s = session_get(session);
    if (s == NULL)
        return CKR_SESSION_HANDLE_INVALID;
    if (mech == NULL || pub == NULL || priv == NULL || (pub_tmpl == NULL && pub_count > 0) ||
        (priv_tmpl == NULL && priv_count > 0))
        return CKR_ARGUMENTS_BAD;
    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (!logged_in)
        return CKR_USER_NOT_LOGGED_IN;
    if (mech->mechanism != CKM_EC_KEY_PAIR_GEN)
        return CKR_MECHANISM_INVALID;
    for (i = 0; i < pub_count; i++)
        if (pub_tmpl[i].type == CKA_EC_PARAMS)
            p256 = pub_tmpl[i].ulValueLen == sizeof oid_p256 && pub_tmpl[i].pValue != NULL &&
                   memcmp(pub_tmpl[i].pValue, oid_p256, sizeof oid_p256) == 0;
    if (!p256)
        return template_has(pub_tmpl, pub_count, CKA_EC_PARAMS) ? CKR_CURVE_NOT_SUPPORTED
                                                                : CKR_TEMPLATE_INCOMPLETE;
    rv = CKR_FUNCTION_FAILED;
    pkey = EVP_EC_gen("P-256");
    if (pkey == NULL || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
        BN_bn2binpad(d, scalar, sizeof scalar) != (int)sizeof scalar ||
        EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point + 2,
                                        sizeof point - 2, &point_len) != 1 ||
        point_len != 65)
        goto out;
    /* CKA_EC_POINT: the DER OCTET STRING around the uncompressed point. */
    point[0] = 0x04;
    point[1] = (unsigned char)point_len;
    {
        CK_ATTRIBUTE pub_extra[] = {{CKA_EC_POINT, point, (CK_ULONG)point_len + 2},
                                    {CKA_LOCAL, (void *)&yes, sizeof yes}};
        CK_ATTRIBUTE priv_extra[] = {{CKA_EC_PARAMS, (void *)oid_p256, sizeof oid_p256},
                                     {CKA_VALUE, scalar, sizeof scalar},
                                     {CKA_LOCAL, (void *)&yes, sizeof yes},
                                     {CKA_ALWAYS_SENSITIVE, (void *)&yes, sizeof yes},
                                     {CKA_NEVER_EXTRACTABLE, (void *)&yes, sizeof yes}};
        *pub = object_add_with(pub_tmpl, pub_count, pub_extra, 2);
        *priv = *pub != 0 ? object_add_with(priv_tmpl, priv_count, priv_extra, 5) : 0;
    }
    if (*pub == 0 || *priv == 0) {
        if (*pub != 0)
            object_clear(object_get(*pub));
        *pub = *priv = 0;
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    rv = CKR_OK;
out:
    OPENSSL_cleanse(scalar, sizeof scalar);
    BN_clear_free(d);
    EVP_PKEY_free(pkey);
    return rv;
}

static CK_RV mock_C_WrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                            CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, CK_BYTE_PTR out,
                            CK_ULONG_PTR out_len)
{
    CK_RV rv = enter(TC_FWD_C_WrapKey);

    (void)s;
    (void)mech;
    (void)wrapping_key;
    (void)key;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_UnwrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
                              CK_OBJECT_HANDLE unwrapping_key, CK_BYTE_PTR in, CK_ULONG in_len,
                              CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    CK_RV rv = enter(TC_FWD_C_UnwrapKey);

    (void)s;
    (void)mech;
    (void)unwrapping_key;
    (void)in;
    (void)in_len;
    (void)tmpl;
    (void)count;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_DeriveKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base_key,
                              CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    CK_RV rv = enter(TC_FWD_C_DeriveKey);

    (void)s;
    (void)mech;
    (void)base_key;
    (void)tmpl;
    (void)count;
    (void)key;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_SeedRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR seed, CK_ULONG seed_len)
{
    CK_RV rv = enter(TC_FWD_C_SeedRandom);

    (void)s;
    (void)seed;
    (void)seed_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG out_len)
{
    CK_RV rv = enter(TC_FWD_C_GenerateRandom);

    (void)s;
    (void)out;
    (void)out_len;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_GetFunctionStatus(CK_SESSION_HANDLE s)
{
    CK_RV rv = enter(TC_FWD_C_GetFunctionStatus);

    (void)s;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_CancelFunction(CK_SESSION_HANDLE s)
{
    CK_RV rv = enter(TC_FWD_C_CancelFunction);

    (void)s;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV mock_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    CK_RV rv = enter(TC_FWD_C_WaitForSlotEvent);

    (void)flags;
    (void)slot;
    (void)reserved;
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_FUNCTION_LIST mock_list = {
    .version = {2, 40},
    .C_GetFunctionList = C_GetFunctionList,
    .C_Initialize = mock_C_Initialize,
    .C_Finalize = mock_C_Finalize,
    .C_GetInfo = mock_C_GetInfo,
    .C_GetSlotList = mock_C_GetSlotList,
    .C_GetSlotInfo = mock_C_GetSlotInfo,
    .C_GetTokenInfo = mock_C_GetTokenInfo,
    .C_GetMechanismList = mock_C_GetMechanismList,
    .C_GetMechanismInfo = mock_C_GetMechanismInfo,
    .C_InitToken = mock_C_InitToken,
    .C_InitPIN = mock_C_InitPIN,
    .C_SetPIN = mock_C_SetPIN,
    .C_OpenSession = mock_C_OpenSession,
    .C_CloseSession = mock_C_CloseSession,
    .C_CloseAllSessions = mock_C_CloseAllSessions,
    .C_GetSessionInfo = mock_C_GetSessionInfo,
    .C_GetOperationState = mock_C_GetOperationState,
    .C_SetOperationState = mock_C_SetOperationState,
    .C_Login = mock_C_Login,
    .C_Logout = mock_C_Logout,
    .C_CreateObject = mock_C_CreateObject,
    .C_CopyObject = mock_C_CopyObject,
    .C_DestroyObject = mock_C_DestroyObject,
    .C_GetObjectSize = mock_C_GetObjectSize,
    .C_GetAttributeValue = mock_C_GetAttributeValue,
    .C_SetAttributeValue = mock_C_SetAttributeValue,
    .C_FindObjectsInit = mock_C_FindObjectsInit,
    .C_FindObjects = mock_C_FindObjects,
    .C_FindObjectsFinal = mock_C_FindObjectsFinal,
    .C_EncryptInit = mock_C_EncryptInit,
    .C_Encrypt = mock_C_Encrypt,
    .C_EncryptUpdate = mock_C_EncryptUpdate,
    .C_EncryptFinal = mock_C_EncryptFinal,
    .C_DecryptInit = mock_C_DecryptInit,
    .C_Decrypt = mock_C_Decrypt,
    .C_DecryptUpdate = mock_C_DecryptUpdate,
    .C_DecryptFinal = mock_C_DecryptFinal,
    .C_DigestInit = mock_C_DigestInit,
    .C_Digest = mock_C_Digest,
    .C_DigestUpdate = mock_C_DigestUpdate,
    .C_DigestKey = mock_C_DigestKey,
    .C_DigestFinal = mock_C_DigestFinal,
    .C_SignInit = mock_C_SignInit,
    .C_Sign = mock_C_Sign,
    .C_SignUpdate = mock_C_SignUpdate,
    .C_SignFinal = mock_C_SignFinal,
    .C_SignRecoverInit = mock_C_SignRecoverInit,
    .C_SignRecover = mock_C_SignRecover,
    .C_VerifyInit = mock_C_VerifyInit,
    .C_Verify = mock_C_Verify,
    .C_VerifyUpdate = mock_C_VerifyUpdate,
    .C_VerifyFinal = mock_C_VerifyFinal,
    .C_VerifyRecoverInit = mock_C_VerifyRecoverInit,
    .C_VerifyRecover = mock_C_VerifyRecover,
    .C_DigestEncryptUpdate = mock_C_DigestEncryptUpdate,
    .C_DecryptDigestUpdate = mock_C_DecryptDigestUpdate,
    .C_SignEncryptUpdate = mock_C_SignEncryptUpdate,
    .C_DecryptVerifyUpdate = mock_C_DecryptVerifyUpdate,
    .C_GenerateKey = mock_C_GenerateKey,
    .C_GenerateKeyPair = mock_C_GenerateKeyPair,
    .C_WrapKey = mock_C_WrapKey,
    .C_UnwrapKey = mock_C_UnwrapKey,
    .C_DeriveKey = mock_C_DeriveKey,
    .C_SeedRandom = mock_C_SeedRandom,
    .C_GenerateRandom = mock_C_GenerateRandom,
    .C_GetFunctionStatus = mock_C_GetFunctionStatus,
    .C_CancelFunction = mock_C_CancelFunction,
    .C_WaitForSlotEvent = mock_C_WaitForSlotEvent,
};

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    *list = &mock_list;
    return CKR_OK;
}
