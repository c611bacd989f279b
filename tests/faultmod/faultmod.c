/*
 * tc-faultmod: a PKCS#11 v2.40 module for the test suite that sits in front of a real module
 * (TC_FAULT_TARGET) and forwards every call to it, except where the environment asks it to lie:
 * fail the Nth call, kill the process there, hide the token, add warning flags to the token
 * info, NUL-pad token strings. It also counts calls (so a test can learn how many fault points
 * a command has) and logs C_Login attempts without the PIN. See README.md beside this file.
 *
 * It is built on the forwarding base (pkcs11/forward.h): a before hook does the counting and the
 * faults, and only the calls it edits are overridden here.
 *
 * Configuration is read from the environment at C_Initialize. Call counters live for the whole
 * process, across C_Finalize/C_Initialize cycles, so that "the Nth call" and the count file mean
 * the same thing whatever the caller does with the module.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* kill() */
#endif

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"

#define LOG_PREFIX "tc-faultmod: "

/*
 * What a removed token (TC_FAULT_TOKEN_ABSENT) does to a call: these still reach the real module
 * (some are then edited by hand below); every other call needs a token and returns
 * CKR_TOKEN_NOT_PRESENT.
 */
static bool passes_without_token(tc_fwd_fn fn)
{
    switch (fn) {
    case TC_FWD_C_Initialize:
    case TC_FWD_C_Finalize:
    case TC_FWD_C_GetInfo:
    case TC_FWD_C_GetSlotList:
    case TC_FWD_C_GetSlotInfo:
    case TC_FWD_C_WaitForSlotEvent:
        return true;
    default:
        return false;
    }
}

struct named_value {
    const char *name;
    unsigned long value;
};

/* The formatter would spread this over four lines. */
/* clang-format off */
#define NAMED(name) {#name, name}
/* clang-format on */

static const struct named_value rv_names[] = {
    NAMED(CKR_OK),
    NAMED(CKR_CANCEL),
    NAMED(CKR_HOST_MEMORY),
    NAMED(CKR_SLOT_ID_INVALID),
    NAMED(CKR_GENERAL_ERROR),
    NAMED(CKR_FUNCTION_FAILED),
    NAMED(CKR_ARGUMENTS_BAD),
    NAMED(CKR_NO_EVENT),
    NAMED(CKR_NEED_TO_CREATE_THREADS),
    NAMED(CKR_CANT_LOCK),
    NAMED(CKR_ATTRIBUTE_READ_ONLY),
    NAMED(CKR_ATTRIBUTE_SENSITIVE),
    NAMED(CKR_ATTRIBUTE_TYPE_INVALID),
    NAMED(CKR_ATTRIBUTE_VALUE_INVALID),
    NAMED(CKR_ACTION_PROHIBITED),
    NAMED(CKR_DATA_INVALID),
    NAMED(CKR_DATA_LEN_RANGE),
    NAMED(CKR_DEVICE_ERROR),
    NAMED(CKR_DEVICE_MEMORY),
    NAMED(CKR_DEVICE_REMOVED),
    NAMED(CKR_ENCRYPTED_DATA_INVALID),
    NAMED(CKR_ENCRYPTED_DATA_LEN_RANGE),
    NAMED(CKR_FUNCTION_CANCELED),
    NAMED(CKR_FUNCTION_NOT_PARALLEL),
    NAMED(CKR_FUNCTION_NOT_SUPPORTED),
    NAMED(CKR_KEY_HANDLE_INVALID),
    NAMED(CKR_KEY_SIZE_RANGE),
    NAMED(CKR_KEY_TYPE_INCONSISTENT),
    NAMED(CKR_KEY_NOT_NEEDED),
    NAMED(CKR_KEY_CHANGED),
    NAMED(CKR_KEY_NEEDED),
    NAMED(CKR_KEY_INDIGESTIBLE),
    NAMED(CKR_KEY_FUNCTION_NOT_PERMITTED),
    NAMED(CKR_KEY_NOT_WRAPPABLE),
    NAMED(CKR_KEY_UNEXTRACTABLE),
    NAMED(CKR_MECHANISM_INVALID),
    NAMED(CKR_MECHANISM_PARAM_INVALID),
    NAMED(CKR_OBJECT_HANDLE_INVALID),
    NAMED(CKR_OPERATION_ACTIVE),
    NAMED(CKR_OPERATION_NOT_INITIALIZED),
    NAMED(CKR_PIN_INCORRECT),
    NAMED(CKR_PIN_INVALID),
    NAMED(CKR_PIN_LEN_RANGE),
    NAMED(CKR_PIN_EXPIRED),
    NAMED(CKR_PIN_LOCKED),
    NAMED(CKR_SESSION_CLOSED),
    NAMED(CKR_SESSION_COUNT),
    NAMED(CKR_SESSION_HANDLE_INVALID),
    NAMED(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    NAMED(CKR_SESSION_READ_ONLY),
    NAMED(CKR_SESSION_EXISTS),
    NAMED(CKR_SESSION_READ_ONLY_EXISTS),
    NAMED(CKR_SESSION_READ_WRITE_SO_EXISTS),
    NAMED(CKR_SIGNATURE_INVALID),
    NAMED(CKR_SIGNATURE_LEN_RANGE),
    NAMED(CKR_TEMPLATE_INCOMPLETE),
    NAMED(CKR_TEMPLATE_INCONSISTENT),
    NAMED(CKR_TOKEN_NOT_PRESENT),
    NAMED(CKR_TOKEN_NOT_RECOGNIZED),
    NAMED(CKR_TOKEN_WRITE_PROTECTED),
    NAMED(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    NAMED(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    NAMED(CKR_USER_ALREADY_LOGGED_IN),
    NAMED(CKR_USER_NOT_LOGGED_IN),
    NAMED(CKR_USER_PIN_NOT_INITIALIZED),
    NAMED(CKR_USER_TYPE_INVALID),
    NAMED(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    NAMED(CKR_USER_TOO_MANY_TYPES),
    NAMED(CKR_WRAPPED_KEY_INVALID),
    NAMED(CKR_WRAPPED_KEY_LEN_RANGE),
    NAMED(CKR_WRAPPING_KEY_HANDLE_INVALID),
    NAMED(CKR_WRAPPING_KEY_SIZE_RANGE),
    NAMED(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    NAMED(CKR_RANDOM_SEED_NOT_SUPPORTED),
    NAMED(CKR_RANDOM_NO_RNG),
    NAMED(CKR_DOMAIN_PARAMS_INVALID),
    NAMED(CKR_CURVE_NOT_SUPPORTED),
    NAMED(CKR_BUFFER_TOO_SMALL),
    NAMED(CKR_SAVED_STATE_INVALID),
    NAMED(CKR_INFORMATION_SENSITIVE),
    NAMED(CKR_STATE_UNSAVEABLE),
    NAMED(CKR_CRYPTOKI_NOT_INITIALIZED),
    NAMED(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    NAMED(CKR_MUTEX_BAD),
    NAMED(CKR_MUTEX_NOT_LOCKED),
    NAMED(CKR_NEW_PIN_MODE),
    NAMED(CKR_NEXT_OTP),
    NAMED(CKR_EXCEEDED_MAX_ITERATIONS),
    NAMED(CKR_FIPS_SELF_TEST_FAILED),
    NAMED(CKR_LIBRARY_LOAD_FAILED),
    NAMED(CKR_PIN_TOO_WEAK),
    NAMED(CKR_PUBLIC_KEY_INVALID),
    NAMED(CKR_FUNCTION_REJECTED),
};

static const struct named_value token_flag_names[] = {
    NAMED(CKF_RNG),
    NAMED(CKF_WRITE_PROTECTED),
    NAMED(CKF_LOGIN_REQUIRED),
    NAMED(CKF_USER_PIN_INITIALIZED),
    NAMED(CKF_RESTORE_KEY_NOT_NEEDED),
    NAMED(CKF_CLOCK_ON_TOKEN),
    NAMED(CKF_PROTECTED_AUTHENTICATION_PATH),
    NAMED(CKF_DUAL_CRYPTO_OPERATIONS),
    NAMED(CKF_TOKEN_INITIALIZED),
    NAMED(CKF_SECONDARY_AUTHENTICATION),
    NAMED(CKF_USER_PIN_COUNT_LOW),
    NAMED(CKF_USER_PIN_FINAL_TRY),
    NAMED(CKF_USER_PIN_LOCKED),
    NAMED(CKF_USER_PIN_TO_BE_CHANGED),
    NAMED(CKF_SO_PIN_COUNT_LOW),
    NAMED(CKF_SO_PIN_FINAL_TRY),
    NAMED(CKF_SO_PIN_LOCKED),
    NAMED(CKF_SO_PIN_TO_BE_CHANGED),
};

/*
 * Paths are copied into the configuration rather than allocated: the module can be dlclose()d
 * without C_Finalize, and memory it allocated would then show up as leaked under valgrind.
 */
#define PATH_LEN 4096

struct config {
    unsigned long fault_at; /* 1-based; 0 when no fault is asked for */
    CK_RV fault_rv;
    bool fault_kill;
    bool fault_func_only; /* count only calls of fault_func */
    tc_fwd_fn fault_func;
    char count_file[PATH_LEN]; /* "" when unset */
    char login_log[PATH_LEN];
    bool token_absent;
    CK_FLAGS token_flags_set;
    bool pad_nul;
};

static struct config cfg;
static CK_FUNCTION_LIST fm_list;            /* the forwarding list, with the overrides below */
static atomic_ulong counted;                /* calls that TC_FAULT_AT counts */
static atomic_ulong fn_calls[TC_FWD_COUNT]; /* every call, per function */

/* Looks up the first len bytes of s; the names are exact, case included, as in the spec. */
static bool lookup(const struct named_value *table, size_t n, const char *s, size_t len,
                   unsigned long *value)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strlen(table[i].name) == len && memcmp(table[i].name, s, len) == 0) {
            *value = table[i].value;
            return true;
        }
    }
    return false;
}

static bool parse_ulong(const char *s, unsigned long *value)
{
    char *end;

    /* strtoul() would silently turn "-1" into ULONG_MAX. */
    if (s[0] == '\0' || s[0] == '-' || s[0] == '+')
        return false;
    errno = 0;
    *value = strtoul(s, &end, 0);
    return errno == 0 && *end == '\0';
}

static bool parse_rv(const char *s, struct config *c)
{
    if (strcmp(s, "KILL") == 0) {
        c->fault_kill = true;
        return true;
    }
    if (lookup(rv_names, sizeof rv_names / sizeof rv_names[0], s, strlen(s), &c->fault_rv))
        return true;
    return parse_ulong(s, &c->fault_rv);
}

static bool parse_func(const char *s, tc_fwd_fn *id)
{
    return tc_fwd_lookup(s, id);
}

/* A comma-separated list of CKF_ names; blanks around the names are allowed. */
static bool parse_token_flags(const char *s, CK_FLAGS *flags)
{
    unsigned long flag;
    size_t len;

    *flags = 0;
    while (*s != '\0') {
        s += strspn(s, " \t,");
        len = strcspn(s, " \t,");
        if (len == 0)
            continue;
        if (!lookup(token_flag_names, sizeof token_flag_names / sizeof token_flag_names[0], s, len,
                    &flag)) {
            fprintf(stderr, LOG_PREFIX "unknown flag in TC_FAULT_TOKEN_FLAGS_SET: %.*s\n",
                    (int)(len > 64 ? 64 : len), s);
            return false;
        }
        *flags |= flag;
        s += len;
    }
    return true;
}

static bool parse_bool(const char *s, bool *value)
{
    if (strcmp(s, "1") == 0 || strcmp(s, "0") == 0) {
        *value = s[0] == '1';
        return true;
    }
    return false;
}

/* getenv() that treats an empty variable as unset, so `VAR= cmd` switches a fault off. */
static const char *env(const char *name)
{
    const char *s = getenv(name);

    return s != NULL && s[0] != '\0' ? s : NULL;
}

static bool copy_path(char *dst, const char *src)
{
    size_t len = strlen(src);

    if (len >= PATH_LEN)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

/* Reads the whole configuration; on a bad value prints one line naming it and returns false. */
static bool config_load(struct config *out)
{
    struct config c = {0};
    const char *bad = NULL;
    const char *s;

    if ((s = env("TC_FAULT_AT")) != NULL && (!parse_ulong(s, &c.fault_at) || c.fault_at == 0))
        bad = "TC_FAULT_AT";
    else if ((s = env("TC_FAULT_RV")) != NULL && !parse_rv(s, &c))
        bad = "TC_FAULT_RV";
    else if ((s = env("TC_FAULT_FUNC")) != NULL && !parse_func(s, &c.fault_func))
        bad = "TC_FAULT_FUNC";
    else if ((s = env("TC_FAULT_TOKEN_ABSENT")) != NULL && !parse_bool(s, &c.token_absent))
        bad = "TC_FAULT_TOKEN_ABSENT";
    else if ((s = env("TC_FAULT_PAD_MODEL_NUL")) != NULL && !parse_bool(s, &c.pad_nul))
        bad = "TC_FAULT_PAD_MODEL_NUL";
    else if ((s = env("TC_FAULT_COUNT_FILE")) != NULL && !copy_path(c.count_file, s))
        bad = "TC_FAULT_COUNT_FILE";
    else if ((s = env("TC_FAULT_LOGIN_LOG")) != NULL && !copy_path(c.login_log, s))
        bad = "TC_FAULT_LOGIN_LOG";
    if (bad != NULL) {
        fprintf(stderr, LOG_PREFIX "bad value in %s: %.64s\n", bad, s);
        return false;
    }
    /* Half a fault specification is a mistake in the test, not a request for no fault. */
    if ((env("TC_FAULT_AT") != NULL) != (env("TC_FAULT_RV") != NULL)) {
        fprintf(stderr, LOG_PREFIX "TC_FAULT_AT and TC_FAULT_RV must be set together\n");
        return false;
    }
    c.fault_func_only = env("TC_FAULT_FUNC") != NULL;
    if ((s = env("TC_FAULT_TOKEN_FLAGS_SET")) != NULL && !parse_token_flags(s, &c.token_flags_set))
        return false;
    *out = c;
    return true;
}

/*
 * Loaded once and never unloaded: an application may call C_Initialize again after C_Finalize,
 * and unloading buys nothing in a test process.
 */
static bool target_load(void)
{
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR list = NULL;
    const char *path;
    void *handle;
    CK_RV rv;

    if (tc_fwd_target() != NULL)
        return true;
    path = env("TC_FAULT_TARGET");
    if (path == NULL) {
        fprintf(stderr, LOG_PREFIX "TC_FAULT_TARGET is not set\n");
        return false;
    }
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, LOG_PREFIX "cannot load TC_FAULT_TARGET: %s\n", dlerror());
        return false;
    }
    get_list = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    if (get_list == NULL) {
        fprintf(stderr, LOG_PREFIX "%.256s has no C_GetFunctionList\n", path);
        dlclose(handle);
        return false;
    }
    rv = get_list(&list);
    if (rv != CKR_OK || list == NULL) {
        fprintf(stderr, LOG_PREFIX "C_GetFunctionList of %.256s failed: rv=0x%08lx\n", path, rv);
        dlclose(handle);
        return false;
    }
    tc_fwd_set_target(list);
    return true;
}

static void write_counts(void)
{
    FILE *f;
    int i;

    if (cfg.count_file[0] == '\0')
        return;
    f = fopen(cfg.count_file, "w");
    if (f == NULL) {
        fprintf(stderr, LOG_PREFIX "cannot write %.256s: %s\n", cfg.count_file, strerror(errno));
        return;
    }
    fprintf(f, "total %lu\n", atomic_load(&counted));
    for (i = 0; i < TC_FWD_COUNT; i++)
        fprintf(f, "%s %lu\n", tc_fwd_name((tc_fwd_fn)i), atomic_load(&fn_calls[i]));
    if (fclose(f) != 0)
        fprintf(stderr, LOG_PREFIX "cannot write %.256s: %s\n", cfg.count_file, strerror(errno));
}

/* Records the attempt, never the PIN, so a test can prove a PIN was tried exactly once. */
static void log_login(CK_USER_TYPE user_type, CK_ULONG pin_len, CK_RV rv)
{
    FILE *f;

    if (cfg.login_log[0] == '\0')
        return;
    f = fopen(cfg.login_log, "a");
    if (f == NULL) {
        fprintf(stderr, LOG_PREFIX "cannot write %.256s: %s\n", cfg.login_log, strerror(errno));
        return;
    }
    fprintf(f, "C_Login userType=%lu pinLen=%lu rv=0x%08lx\n", user_type, pin_len, rv);
    if (fclose(f) != 0)
        fprintf(stderr, LOG_PREFIX "cannot write %.256s: %s\n", cfg.login_log, strerror(errno));
}

/*
 * The forwarding base's before hook, run first in every call once the real module is loaded
 * (calls before the first C_Initialize are neither counted nor forwarded: the configuration is
 * not read yet, so counting them would shift TC_FAULT_AT by calls that TC_FAULT_FUNC should have
 * skipped). Returns true when the call must not reach the real module, with what to return in
 * *rv: an injected fault, or a removed token.
 */
static bool intercept(void *data, tc_fwd_fn id, CK_RV *rv)
{
    unsigned long n;

    (void)data;
    atomic_fetch_add(&fn_calls[id], 1);
    if (!cfg.fault_func_only || cfg.fault_func == id) {
        /* fetch_add hands each call its own number, so exactly one thread hits fault_at. */
        n = atomic_fetch_add(&counted, 1) + 1;
        if (n == cfg.fault_at) {
            if (cfg.fault_kill)
                kill(getpid(), SIGKILL); /* does not return */
            *rv = cfg.fault_rv;
            return true;
        }
    }
    if (cfg.token_absent && !passes_without_token(id)) {
        *rv = CKR_TOKEN_NOT_PRESENT;
        return true;
    }
    return false;
}

/* Some tokens pad with NUL rather than blanks (tpm2-pkcs11 does); callers must cope with both. */
static void pad_with_nul(unsigned char *s, size_t len)
{
    while (len > 0 && s[len - 1] == ' ')
        s[--len] = '\0';
}

/*
 * The overrides below are named fm_C_*: p11-kit's header declares every C_* as an extern
 * function, and only C_GetFunctionList may be exported. fwd is the forwarding list they build on.
 */
static CK_FUNCTION_LIST fwd;

static CK_RV fm_C_Initialize(CK_VOID_PTR init_args)
{
    static bool atexit_done;

    if (!config_load(&cfg) || !target_load())
        return CKR_GENERAL_ERROR;
    /*
     * For callers that exit without C_Finalize. An atexit() handler of a shared object also runs
     * when the object is dlclose()d, so it never outlives this code.
     */
    if (cfg.count_file[0] != '\0' && !atexit_done)
        atexit_done = atexit(write_counts) == 0;
    return fwd.C_Initialize(init_args);
}

static CK_RV fm_C_Finalize(CK_VOID_PTR reserved)
{
    CK_RV rv = fwd.C_Finalize(reserved);

    write_counts();
    return rv;
}

static CK_RV fm_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;

    if (tc_fwd_before(TC_FWD_C_GetSlotList, &rv))
        return rv;
    /* A removed token leaves its slot behind: only the tokenPresent=TRUE view changes. */
    if (cfg.token_absent && token_present) {
        if (count == NULL)
            return CKR_ARGUMENTS_BAD;
        *count = 0;
        return CKR_OK;
    }
    return tc_fwd_target()->C_GetSlotList(token_present, list, count);
}

static CK_RV fm_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv = fwd.C_GetSlotInfo(slot, info);

    if (rv == CKR_OK && cfg.token_absent)
        info->flags &= ~CKF_TOKEN_PRESENT;
    return rv;
}

static CK_RV fm_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv = fwd.C_GetTokenInfo(slot, info);

    if (rv != CKR_OK)
        return rv;
    info->flags |= cfg.token_flags_set;
    if (cfg.pad_nul) {
        pad_with_nul(info->label, sizeof info->label);
        pad_with_nul(info->manufacturerID, sizeof info->manufacturerID);
        pad_with_nul(info->model, sizeof info->model);
        pad_with_nul(info->serialNumber, sizeof info->serialNumber);
    }
    return CKR_OK;
}

static CK_RV fm_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                        CK_ULONG pin_len)
{
    CK_RV rv = fwd.C_Login(session, user_type, pin, pin_len);

    /* Logged whatever the outcome: an injected failure is still an attempt the caller made. */
    log_login(user_type, pin_len, rv);
    return rv;
}

/* Everything else is the forwarding base's, untouched. */
static void list_build(void)
{
    static const tc_fwd_hooks hooks = {intercept, NULL, NULL};

    tc_fwd_set_hooks(&hooks);
    tc_fwd_function_list(&fwd);
    fm_list = fwd;
    fm_list.C_GetFunctionList = C_GetFunctionList;
    fm_list.C_Initialize = fm_C_Initialize;
    fm_list.C_Finalize = fm_C_Finalize;
    fm_list.C_GetSlotList = fm_C_GetSlotList;
    fm_list.C_GetSlotInfo = fm_C_GetSlotInfo;
    fm_list.C_GetTokenInfo = fm_C_GetTokenInfo;
    fm_list.C_Login = fm_C_Login;
}

/* The one exported symbol; the build hides everything else by default. */
__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    static pthread_once_t built = PTHREAD_ONCE_INIT;

    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    if (pthread_once(&built, list_build) != 0)
        return CKR_GENERAL_ERROR;
    *list = &fm_list;
    return CKR_OK;
}
