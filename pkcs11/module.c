/* module.c — tokencert-pkcs11.so: a PKCS#11 module that wraps one real module and forwards every
 * call to it, except that object searches leave out what the filter hides (filter.h): expired,
 * not-yet-valid and superseded certificates, and keys without a certificate shown. Which module
 * it wraps and what it shows come from its configuration (config.h, docs/pkcs11-module.md).
 *
 * Searches: C_FindObjectsInit reads the token's keys and certificates on the application's
 * session, runs the application's search on the wrapped module to the end, and keeps the visible
 * results; C_FindObjects hands them out and C_FindObjectsFinal drops them. The table of those
 * results is the only state shared between threads, under one lock: the application's own mutex
 * callbacks when it gave them without CKF_OS_LOCKING_OK, else a pthread mutex. The module starts
 * no thread, runs no program and opens no file but its configuration. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "filter.h"
#include "forward.h"

#define LOG_PREFIX "tokencert-pkcs11: "
/* The most objects one search returns: a bound on what a broken module can make us hold. */
#define MAX_FOUND (1024 * 1024)

#ifndef TC_PKCS11_CONFIG_DEFAULT
#define TC_PKCS11_CONFIG_DEFAULT "/etc/tokencert/pkcs11.conf"
#endif

typedef struct {
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE *found;
    size_t n, pos;
} search;

static CK_FUNCTION_LIST fwd;     /* the forwarding base's list */
static CK_FUNCTION_LIST tc_list; /* what applications get */
static tc_p11cfg cfg;
static void *target_handle;
static char target_path[TC_P11CFG_PATH_MAX];

static pthread_mutex_t os_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_C_INITIALIZE_ARGS app_locking; /* the application's callbacks, when it gave them */
static void *app_mutex;
static search *searches;
static size_t n_searches;
/* Between a successful C_Initialize and C_Finalize: the calls answered here (C_FindObjects,
 * C_FindObjectsFinal) must say CKR_CRYPTOKI_NOT_INITIALIZED outside it, as the module would. */
static atomic_bool initialized;

static void lock(void)
{
    if (app_mutex != NULL)
        app_locking.LockMutex(app_mutex);
    else
        pthread_mutex_lock(&os_lock);
}

static void unlock(void)
{
    if (app_mutex != NULL)
        app_locking.UnlockMutex(app_mutex);
    else
        pthread_mutex_unlock(&os_lock);
}

/* The search of session s; NULL when none. Caller holds the lock. */
static search *search_find_unlocked(CK_SESSION_HANDLE s)
{
    size_t i;

    for (i = 0; i < n_searches; i++)
        if (searches[i].session == s)
            return &searches[i];
    return NULL;
}

static void search_drop_unlocked(search *x)
{
    free(x->found);
    *x = searches[--n_searches];
}

static void searches_clear_unlocked(void)
{
    while (n_searches > 0)
        search_drop_unlocked(&searches[0]);
    free(searches);
    searches = NULL;
}

/* Hands found (n handles) over to a new search of session s. */
static CK_RV search_add(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *found, size_t n)
{
    search *grown;
    CK_RV rv = CKR_HOST_MEMORY;

    lock();
    if (search_find_unlocked(s) != NULL) {
        /* Another thread started a search on the session meanwhile. */
        rv = CKR_OPERATION_ACTIVE;
    } else if ((grown = realloc(searches, (n_searches + 1) * sizeof *searches)) != NULL) {
        searches = grown;
        searches[n_searches].session = s;
        searches[n_searches].found = found;
        searches[n_searches].n = n;
        searches[n_searches].pos = 0;
        n_searches++;
        rv = CKR_OK;
    }
    unlock();
    return rv;
}

static const char *config_path(void)
{
    const char *p = secure_getenv("TOKENCERT_PKCS11_CONFIG");

    return p != NULL && p[0] != '\0' ? p : TC_PKCS11_CONFIG_DEFAULT;
}

/* Loads the configured module once per process; a later C_Initialize must name the same one. */
static bool target_load(void)
{
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR list = NULL;
    void *handle;
    CK_RV rv;

    if (target_handle != NULL) {
        if (strcmp(target_path, cfg.module) == 0)
            return true;
        fprintf(stderr,
                LOG_PREFIX "the configured module changed from %.256s to %.256s: restart "
                           "the application\n",
                target_path, cfg.module);
        return false;
    }
    handle = dlopen(cfg.module, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, LOG_PREFIX "cannot load module %.256s (from %.256s): %s\n", cfg.module,
                config_path(), dlerror());
        return false;
    }
    get_list = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    /* Wrapping itself would recurse for ever. */
    if (get_list == C_GetFunctionList) {
        fprintf(stderr, LOG_PREFIX "%.256s is tokencert-pkcs11 itself: name the real module\n",
                cfg.module);
        dlclose(handle);
        return false;
    }
    if (get_list == NULL) {
        fprintf(stderr, LOG_PREFIX "%.256s is not a PKCS#11 module (no C_GetFunctionList)\n",
                cfg.module);
        dlclose(handle);
        return false;
    }
    rv = get_list(&list);
    if (rv != CKR_OK || list == NULL) {
        fprintf(stderr, LOG_PREFIX "C_GetFunctionList of %.256s failed: rv=0x%08lx\n", cfg.module,
                rv);
        dlclose(handle);
        return false;
    }
    /* The filter calls these itself; the forwarding base guards every other one. */
    if (list->C_FindObjectsInit == NULL || list->C_FindObjects == NULL ||
        list->C_FindObjectsFinal == NULL || list->C_GetAttributeValue == NULL ||
        list->C_GetSessionInfo == NULL) {
        fprintf(stderr, LOG_PREFIX "%.256s lacks the object search functions\n", cfg.module);
        dlclose(handle);
        return false;
    }
    target_handle = handle;
    memcpy(target_path, cfg.module, sizeof target_path);
    tc_fwd_set_target(list);
    return true;
}

static CK_RV tc_C_Initialize(CK_VOID_PTR init_args)
{
    const CK_C_INITIALIZE_ARGS *args = init_args;
    char err[512];
    CK_RV rv;

    /* Before reading the configuration again: a running module keeps its view. */
    if (atomic_load(&initialized))
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    if (!tc_p11cfg_load(config_path(), &cfg, err, sizeof err)) {
        fprintf(stderr, LOG_PREFIX "%s\n", err);
        return CKR_GENERAL_ERROR;
    }
    if (!target_load())
        return CKR_GENERAL_ERROR;
    /* Without CKF_OS_LOCKING_OK the application's own mutexes are the ones to use. */
    if (args != NULL && args->CreateMutex != NULL && args->DestroyMutex != NULL &&
        args->LockMutex != NULL && args->UnlockMutex != NULL &&
        !(args->flags & CKF_OS_LOCKING_OK) && app_mutex == NULL) {
        app_locking = *args;
        rv = app_locking.CreateMutex(&app_mutex);
        if (rv != CKR_OK) {
            app_mutex = NULL;
            return rv;
        }
    }
    rv = fwd.C_Initialize(init_args);
    if (rv == CKR_OK)
        atomic_store(&initialized, true);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED && app_mutex != NULL) {
        app_locking.DestroyMutex(app_mutex);
        app_mutex = NULL;
    }
    return rv;
}

static CK_RV tc_C_Finalize(CK_VOID_PTR reserved)
{
    CK_RV rv = fwd.C_Finalize(reserved);

    if (rv != CKR_OK)
        return rv;
    atomic_store(&initialized, false);
    lock();
    searches_clear_unlocked();
    unlock();
    if (app_mutex != NULL) {
        app_locking.DestroyMutex(app_mutex);
        app_mutex = NULL;
    }
    return rv;
}

static CK_RV tc_C_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    CK_FUNCTION_LIST *f = tc_fwd_target();
    CK_OBJECT_HANDLE *found = NULL, *grown;
    tc_filter_set hidden = {NULL, 0};
    CK_OBJECT_HANDLE batch[64];
    size_t n = 0, cap = 0, i;
    CK_ULONG got;
    CK_RV rv, rv_final;
    bool active;

    if (f == NULL || !atomic_load(&initialized))
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (count > 0 && tmpl == NULL)
        return CKR_ARGUMENTS_BAD;
    lock();
    active = search_find_unlocked(s) != NULL;
    unlock();
    if (active)
        return CKR_OPERATION_ACTIVE;
    /* Read afresh for each search: login state, other processes and time all change the view. */
    rv = tc_filter_hidden(f, s, cfg.show, tc_now(), &hidden);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_FindObjectsInit(s, tmpl, count);
    if (rv != CKR_OK)
        goto out;
    for (;;) {
        got = 0;
        rv = f->C_FindObjects(s, batch, 64, &got);
        if (rv != CKR_OK || got == 0)
            break;
        if (got > 64)
            got = 64;
        if (n + got > cap) {
            if (cap >= MAX_FOUND) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            cap = cap == 0 ? 256 : 2 * cap;
            grown = realloc(found, cap * sizeof *found);
            if (grown == NULL) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            found = grown;
        }
        for (i = 0; i < got; i++)
            if (!tc_filter_contains(&hidden, batch[i]))
                found[n++] = batch[i];
    }
    rv_final = f->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv_final;
    if (rv != CKR_OK)
        goto out;
    rv = search_add(s, found, n);
    if (rv == CKR_OK)
        found = NULL;
out:
    tc_filter_set_free(&hidden);
    free(found);
    return rv;
}

static CK_RV tc_C_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max,
                              CK_ULONG_PTR count)
{
    search *x;
    size_t n;
    CK_RV rv = CKR_OK;

    if (!atomic_load(&initialized))
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (count == NULL || (objs == NULL && max > 0))
        return CKR_ARGUMENTS_BAD;
    lock();
    x = search_find_unlocked(s);
    if (x == NULL) {
        rv = CKR_OPERATION_NOT_INITIALIZED;
    } else {
        n = x->n - x->pos < max ? x->n - x->pos : max;
        if (n > 0)
            memcpy(objs, x->found + x->pos, n * sizeof *objs);
        x->pos += n;
        *count = n;
    }
    unlock();
    return rv;
}

static CK_RV tc_C_FindObjectsFinal(CK_SESSION_HANDLE s)
{
    search *x;
    CK_RV rv = CKR_OK;

    if (!atomic_load(&initialized))
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    lock();
    x = search_find_unlocked(s);
    if (x == NULL)
        rv = CKR_OPERATION_NOT_INITIALIZED;
    else
        search_drop_unlocked(x);
    unlock();
    return rv;
}

static CK_RV tc_C_CloseSession(CK_SESSION_HANDLE s)
{
    CK_RV rv = fwd.C_CloseSession(s);
    search *x;

    if (rv == CKR_OK) {
        lock();
        x = search_find_unlocked(s);
        if (x != NULL)
            search_drop_unlocked(x);
        unlock();
    }
    return rv;
}

/* The slot of each search is not kept: a search whose session the wrapped module no longer knows
 * is dropped. */
static CK_RV tc_C_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_FUNCTION_LIST *f = tc_fwd_target();
    CK_RV rv = fwd.C_CloseAllSessions(slot);
    CK_SESSION_INFO info;
    size_t i;

    if (rv != CKR_OK)
        return rv;
    lock();
    for (i = n_searches; i > 0; i--)
        if (f->C_GetSessionInfo(searches[i - 1].session, &info) != CKR_OK)
            search_drop_unlocked(&searches[i - 1]);
    unlock();
    return rv;
}

static void list_build(void)
{
    tc_fwd_set_hooks(NULL);
    tc_fwd_function_list(&fwd);
    tc_list = fwd;
    tc_list.C_GetFunctionList = C_GetFunctionList;
    tc_list.C_Initialize = tc_C_Initialize;
    tc_list.C_Finalize = tc_C_Finalize;
    tc_list.C_FindObjectsInit = tc_C_FindObjectsInit;
    tc_list.C_FindObjects = tc_C_FindObjects;
    tc_list.C_FindObjectsFinal = tc_C_FindObjectsFinal;
    tc_list.C_CloseSession = tc_C_CloseSession;
    tc_list.C_CloseAllSessions = tc_C_CloseAllSessions;
}

/* The one exported symbol (tokencert-pkcs11.map). */
__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    static pthread_once_t built = PTHREAD_ONCE_INIT;

    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    if (pthread_once(&built, list_build) != 0)
        return CKR_GENERAL_ERROR;
    *list = &tc_list;
    return CKR_OK;
}
