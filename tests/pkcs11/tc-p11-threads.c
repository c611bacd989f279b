/* tc-p11-threads: searches a token from several threads at once through a PKCS#11 module, each
 * thread on its own session (opened beforehand), and checks that every search returns the same
 * number of objects. With "os" the module is initialised with CKF_OS_LOCKING_OK; with "callbacks"
 * it gets mutex callbacks of this program's own (and no CKF_OS_LOCKING_OK), which count their use.
 *
 * Usage: tc-p11-threads MODULE TOKEN_LABEL PIN EXPECTED os|callbacks THREADS ROUNDS
 * Prints "searches=N mutex_locks=N" and exits 0 when every search found EXPECTED objects. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define MAX_THREADS 32

static CK_FUNCTION_LIST *f;
static CK_SLOT_ID slot;
static unsigned long expected, rounds;
static atomic_ulong searches, bad, locks;
static CK_SESSION_HANDLE sessions[MAX_THREADS];

static CK_RV create_mutex(CK_VOID_PTR_PTR m)
{
    pthread_mutex_t *p = malloc(sizeof *p);

    if (p == NULL || pthread_mutex_init(p, NULL) != 0) {
        free(p);
        return CKR_HOST_MEMORY;
    }
    *m = p;
    return CKR_OK;
}

static CK_RV destroy_mutex(CK_VOID_PTR m)
{
    pthread_mutex_destroy(m);
    free(m);
    return CKR_OK;
}

static CK_RV lock_mutex(CK_VOID_PTR m)
{
    atomic_fetch_add(&locks, 1);
    return pthread_mutex_lock(m) == 0 ? CKR_OK : CKR_MUTEX_BAD;
}

static CK_RV unlock_mutex(CK_VOID_PTR m)
{
    return pthread_mutex_unlock(m) == 0 ? CKR_OK : CKR_MUTEX_NOT_LOCKED;
}

static void *worker(void *arg)
{
    CK_SESSION_HANDLE s = sessions[(uintptr_t)arg];
    CK_OBJECT_HANDLE h[8];
    CK_ULONG got, total;
    unsigned long i;
    CK_RV rv;

    for (i = 0; i < rounds; i++) {
        total = 0;
        rv = f->C_FindObjectsInit(s, NULL, 0);
        /* Small batches, so that the threads interleave inside the searches. */
        while (rv == CKR_OK && (rv = f->C_FindObjects(s, h, 8, &got)) == CKR_OK && got > 0)
            total += got;
        if (rv == CKR_OK)
            rv = f->C_FindObjectsFinal(s);
        atomic_fetch_add(&searches, 1);
        if (rv != CKR_OK || total != expected) {
            fprintf(stderr, "search on session %lu: rv 0x%lx, %lu objects (want %lu)\n", s, rv,
                    total, expected);
            atomic_fetch_add(&bad, 1);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    CK_C_INITIALIZE_ARGS init;
    CK_C_GetFunctionList get;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE login;
    pthread_t t[MAX_THREADS];
    unsigned long n_threads, k;
    size_t label_len;
    void *lib;
    CK_RV rv;

    if (argc != 8) {
        fprintf(stderr, "usage: %s MODULE TOKEN_LABEL PIN EXPECTED os|callbacks THREADS ROUNDS\n",
                argv[0]);
        return 2;
    }
    expected = strtoul(argv[4], NULL, 10);
    n_threads = strtoul(argv[6], NULL, 10);
    rounds = strtoul(argv[7], NULL, 10);
    label_len = strlen(argv[2]);
    if (n_threads == 0 || n_threads > MAX_THREADS || label_len > 32)
        return 2;
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    get = lib != NULL ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
    if (get == NULL || get(&f) != CKR_OK) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    memset(&init, 0, sizeof init);
    if (strcmp(argv[5], "os") == 0) {
        init.flags = CKF_OS_LOCKING_OK;
    } else {
        init.CreateMutex = create_mutex;
        init.DestroyMutex = destroy_mutex;
        init.LockMutex = lock_mutex;
        init.UnlockMutex = unlock_mutex;
    }
    rv = f->C_Initialize(&init);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_Initialize: 0x%lx\n", rv);
        return 1;
    }
    rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    for (i = 0; rv == CKR_OK && i < n; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            memcmp(ti.label, argv[2], label_len) == 0 &&
            (label_len == 32 || ti.label[label_len] == ' ' || ti.label[label_len] == '\0'))
            break;
    }
    if (rv != CKR_OK || i == n) {
        fprintf(stderr, "no token %s\n", argv[2]);
        return 1;
    }
    slot = slots[i];
    /* One login for the whole token: every session then sees the private keys. */
    rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &login);
    if (rv == CKR_OK)
        rv = f->C_Login(login, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]));
    if (rv != CKR_OK) {
        fprintf(stderr, "login: 0x%lx\n", rv);
        return 1;
    }
    /* The sessions are opened before the threads start: tpm2-pkcs11 1.9.0 hands the same handle
     * to two threads that open sessions at the same moment. */
    for (k = 0; k < n_threads; k++) {
        rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &sessions[k]);
        if (rv != CKR_OK) {
            fprintf(stderr, "C_OpenSession: 0x%lx\n", rv);
            return 1;
        }
    }
    for (k = 0; k < n_threads; k++)
        for (i = 0; i < k; i++)
            if (sessions[i] == sessions[k]) {
                fprintf(stderr, "the module opened session %lu twice\n", sessions[k]);
                return 1;
            }
    for (k = 0; k < n_threads; k++)
        if (pthread_create(&t[k], NULL, worker, (void *)(uintptr_t)k) != 0)
            return 1;
    for (k = 0; k < n_threads; k++)
        pthread_join(t[k], NULL);
    for (k = 0; k < n_threads; k++)
        f->C_CloseSession(sessions[k]);
    f->C_CloseSession(login);
    f->C_Finalize(NULL);
    printf("searches=%lu mutex_locks=%lu\n", atomic_load(&searches), atomic_load(&locks));
    return atomic_load(&bad) == 0 && atomic_load(&searches) == n_threads * rounds ? 0 : 1;
}
