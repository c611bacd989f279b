/* spawn.c — running the CA signer (tokencert-ca-sign) from the library.
 *
 * SoftHSM reads SOFTHSM2_CONF once per process, and the caller may have loaded SoftHSM for its own
 * token already; the CA's own token needs another configuration. So whatever touches the CA's
 * token runs in a process of its own, given its configuration in the environment it is started
 * with: the library never changes its own process's environment. The child is started with
 * fork+execve (no shell, no PATH search), a fresh environment and its own stderr pipe, so that
 * its error message becomes the caller's error detail. */
#include "ca/ca.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TOKENCERT_LIBEXECDIR_DEFAULT
#define TOKENCERT_LIBEXECDIR_DEFAULT "/usr/libexec/tokencert"
#endif
/* The installed libexec directory relative to the installed library's directory. */
#ifndef TOKENCERT_LIBEXECDIR_FROM_LIBDIR
#define TOKENCERT_LIBEXECDIR_FROM_LIBDIR "../libexec/tokencert"
#endif
/* Generous: an RSA-4096 CA key made on a TPM takes a while; a wedged module must not hang the
 * caller for ever. */
#define SIGNER_TIMEOUT_MS (300 * 1000)
#define SIGNER_ERR_MAX    2048
#define SIGNER_ENV_MAX    32

/* Passed through from the caller's environment: the home and configuration directories modules
 * read (p11-kit's registry), the TPM stack's connection, debugging and the test-only clock. */
static const char *const env_pass[] = {
    "HOME",
    "TMPDIR",
    "LANG",
    "XDG_CONFIG_HOME",
    "DBUS_SESSION_BUS_ADDRESS",
    "TPM2_PKCS11_TCTI",
    "TPM2_PKCS11_STORE",
    "TPM2_PKCS11_LOG_LEVEL",
    "TPM2TOOLS_TCTI",
    "TSS2_LOG",
    "TOKENCERT_DEBUG",
    "TOKENCERT_TEST_CLOCK",
    "TOKENCERT_TEST_NOW",
    "ASAN_OPTIONS",
    "UBSAN_OPTIONS",
    "LSAN_OPTIONS",
};

static void env_free(char **envp)
{
    for (size_t i = 0; envp[i] != NULL; i++)
        free(envp[i]);
}

/* Adds NAME=value (from the caller when value is NULL; nothing when unset there either). */
static tokencert_err env_add(char **envp, size_t *n, const char *name, const char *value)
{
    if (value == NULL)
        value = getenv(name);
    if (value == NULL)
        return TC_OK;
    for (size_t i = 0; i < *n; i++)
        if (strncmp(envp[i], name, strlen(name)) == 0 && envp[i][strlen(name)] == '=')
            return TC_OK;
    if (*n + 1 >= SIGNER_ENV_MAX)
        return TC_ERR_INTERNAL;
    envp[*n] = tc_asprintf("%s=%s", name, value);
    if (envp[*n] == NULL)
        return TC_ERR_NOMEM;
    (*n)++;
    envp[*n] = NULL;
    return TC_OK;
}

static tokencert_err build_env(const char *softhsm_conf, const char *pin_env, char **envp)
{
    tokencert_err ret = TC_OK;
    size_t n = 0, i;

    envp[0] = NULL;
    /* Modules that run helpers of their own find them in the usual places only. */
    ret = env_add(envp, &n, "PATH", "/usr/local/bin:/usr/bin:/bin");
    for (i = 0; ret == TC_OK && i < sizeof env_pass / sizeof env_pass[0]; i++)
        ret = env_add(envp, &n, env_pass[i], NULL);
    /* The CA's own token, else the caller's SoftHSM configuration for a token the user named. */
    if (ret == TC_OK)
        ret = env_add(envp, &n, "SOFTHSM2_CONF", softhsm_conf);
    if (ret == TC_OK && pin_env != NULL)
        ret = env_add(envp, &n, pin_env, NULL);
    return ret;
}

/* DIR/SIGNER, where DIR is given relative to the directory this library was loaded from, when
 * that file is executable; else NULL. */
static char *beside_library(const char *dir)
{
    char *lib = NULL, *slash, *path = NULL;
    Dl_info info;

    if (dladdr((void *)beside_library, &info) != 0 && info.dli_fname != NULL &&
        info.dli_fname[0] == '/' && (lib = tc_strdup(info.dli_fname)) != NULL &&
        (slash = strrchr(lib, '/')) != NULL) {
        *slash = '\0';
        path = tc_asprintf("%s/%s/%s", lib, dir, TC_CA_SIGNER);
        if (path != NULL && access(path, X_OK) != 0) {
            free(path);
            path = NULL;
        }
    }
    free(lib);
    return path;
}

/* The signer's path: $TOKENCERT_LIBEXECDIR when set (tests); else the libexec directory of the
 * installed tree this library was loaded from, found through the library's own file name, so that
 * a tree installed with `cmake --install --prefix DIR`, or moved, runs its own signer; else the
 * libexec directory compiled in; else, when that has no signer, the one beside this library in a
 * build tree (BUILD/src/libtokencert.so and BUILD/libexec/tokencert-ca-sign), so that a CLI run
 * from the build tree (scripts/demo.sh, the benchmarks) works without an environment variable.
 * secure_getenv: a set-id caller never takes the signer from its environment. */
static char *signer_path(void)
{
    const char *dir = secure_getenv("TOKENCERT_LIBEXECDIR");
    char *path, *found;

    if (dir != NULL && dir[0] != '\0')
        return tc_asprintf("%s/%s", dir, TC_CA_SIGNER);
    if ((found = beside_library(TOKENCERT_LIBEXECDIR_FROM_LIBDIR)) != NULL)
        return found;
    path = tc_asprintf("%s/%s", TOKENCERT_LIBEXECDIR_DEFAULT, TC_CA_SIGNER);
    if (path == NULL || access(path, X_OK) == 0)
        return path;
    if ((found = beside_library("../libexec")) != NULL) {
        free(path);
        path = found;
    }
    return path;
}

/* In the child, between fork and execve: async-signal-safe calls only. max_fd was read before
 * the fork (sysconf is not among them). */
static void child_exec(const char *path, char *const *argv, char *const *envp, int err_fd,
                       int status_fd, int max_fd)
{
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC), e;
    sigset_t none;

    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
        dup2(err_fd, STDERR_FILENO) < 0) {
        e = errno;
        (void)!write(status_fd, &e, sizeof e);
        _exit(127);
    }
    /* Descriptors the caller left inheritable (the state store's lock files, sockets) stay with
     * it: all close at execve, the status pipe only then, so that it can still report a failure. */
#ifdef CLOSE_RANGE_CLOEXEC
    if (close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
#endif
        for (int fd = STDERR_FILENO + 1; fd < max_fd; fd++)
            if (fd != status_fd)
                close(fd);
    /* A signal mask or an ignored SIGPIPE is the caller's business, not the signer's. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execve(path, argv, envp);
    e = errno;
    (void)!write(status_fd, &e, sizeof e);
    _exit(127);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_child(pid_t pid, int *status)
{
    for (;;) {
        if (waitpid(pid, status, 0) == pid)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Reads the child's stderr (kept up to cap bytes) until the child has exited (*status set, 0
 * returned), time runs out (-1; the child still runs) or it cannot be waited for (-2, errno set:
 * ECHILD when the caller ignores SIGCHLD, and then the pid must not be signalled any more). Exit is
 * noticed by the end of the pipe or, when something the signer started keeps the pipe open, by
 * waitpid between reads. */
static int collect(pid_t pid, int fd, char *buf, size_t cap, size_t *len, int *status)
{
    long long deadline = now_ms() + SIGNER_TIMEOUT_MS;
    char sink[512];
    int eof = 0;

    *len = 0;
    while (!eof) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long long left = deadline - now_ms();
        int r;
        ssize_t got;

        if (left <= 0)
            return -1;
        r = poll(&pfd, 1, (int)(left > 500 ? 500 : left));
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0) {
            pid_t w = waitpid(pid, status, WNOHANG);
            if (w == pid)
                return 0;
            if (w < 0 && errno != EINTR)
                return -2;
            continue;
        }
        if (*len < cap)
            got = read(fd, buf + *len, cap - *len);
        else
            got = read(fd, sink, sizeof sink);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            eof = 1;
        else if (*len < cap)
            *len += (size_t)got;
    }
    /* The pipe is closed: the signer is exiting. */
    return wait_child(pid, status) == 0 ? 0 : -2;
}

tokencert_err tc_ca_signer_run(tokencert_ctx *ctx, const char *const *args,
                               const char *softhsm_conf, const char *pin_env)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *path = NULL, *envp[SIGNER_ENV_MAX], *argv[16], *msg = NULL;
    char err_buf[SIGNER_ERR_MAX];
    int err_pipe[2] = {-1, -1}, status_pipe[2] = {-1, -1}, status = 0, exec_errno = 0, waited;
    size_t n_args = 0, err_len = 0;
    pid_t pid = -1;
    ssize_t got;
    long open_max = sysconf(_SC_OPEN_MAX);
    int max_fd = open_max > 0 && open_max < 65536 ? (int)open_max : 65536;

    envp[0] = NULL;
    tc_return_val_if_fail(ctx != NULL && args != NULL && args[0] != NULL, TC_ERR_INVALID_ARG);
    path = signer_path();
    if (path == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    argv[n_args++] = path;
    for (; args[n_args - 1] != NULL; n_args++) {
        if (n_args + 1 >= sizeof argv / sizeof argv[0]) {
            ret = tc_error(ctx, TC_ERR_INTERNAL, "too many arguments for the CA signer");
            goto out;
        }
        argv[n_args] = (char *)args[n_args - 1];
    }
    argv[n_args] = NULL;
    ret = build_env(softhsm_conf, pin_env, envp);
    if (ret != TC_OK) {
        ret = tc_error(ctx, ret, "cannot build the CA signer's environment");
        goto out;
    }
    if (pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(status_pipe, O_CLOEXEC) != 0) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "the CA signer %s could not be run: pipe: %s", path,
                       strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "the CA signer %s could not be run: fork: %s", path,
                       strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(path, argv, envp, err_pipe[1], status_pipe[1], max_fd);
    close(err_pipe[1]);
    err_pipe[1] = -1;
    close(status_pipe[1]);
    status_pipe[1] = -1;

    /* The status pipe closes at a successful execve; an errno on it means execve failed. */
    do
        got = read(status_pipe[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof exec_errno) {
        wait_child(pid, &status);
        pid = -1;
        ret = tc_error(ctx, TC_ERR_INTERNAL,
                       "the CA signer %s could not be run: %s (installed with tokencert; "
                       "TOKENCERT_LIBEXECDIR names another folder)",
                       path, strerror(exec_errno));
        goto out;
    }
    waited = collect(pid, err_pipe[0], err_buf, sizeof err_buf - 1, &err_len, &status);
    if (waited == -2) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot wait for the CA signer %s: %s", path,
                       strerror(errno));
        pid = -1;
        goto out;
    }
    if (waited != 0) {
        /* pid stays set: the cleanup below kills and reaps it. */
        ret = tc_error(ctx, TC_ERR_INTERNAL,
                       "the CA signer %s did not finish within %d seconds; it was stopped", path,
                       SIGNER_TIMEOUT_MS / 1000);
        goto out;
    }
    pid = -1;
    /* Its first line is the message; trailing newlines and anything unprintable are cleaned. */
    err_buf[err_len] = '\0';
    msg = tc_printable((const unsigned char *)err_buf, strcspn(err_buf, "\n"), SIGNER_ERR_MAX);
    if (WIFSIGNALED(status)) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "the CA signer %s was killed by signal %d%s%s", path,
                       WTERMSIG(status), msg != NULL && msg[0] ? ": " : "", msg ? msg : "");
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        /* The signer exits with the tokencert_err it failed with (tokencert-ca-sign.c). */
        if (code > TC_OK && code <= TC_ERR_VERIFY && msg != NULL && msg[0] != '\0')
            ret = tc_error(ctx, (tokencert_err)code, "%s", msg);
        else
            ret = tc_error(ctx, TC_ERR_INTERNAL, "the CA signer %s failed (exit status %d)%s%s",
                           path, code, msg != NULL && msg[0] ? ": " : "", msg ? msg : "");
        goto out;
    }
    ret = TC_OK;
out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        wait_child(pid, &status);
    }
    for (int i = 0; i < 2; i++) {
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
        if (status_pipe[i] >= 0)
            close(status_pipe[i]);
    }
    env_free(envp);
    free(msg);
    free(path);
    return ret;
}
