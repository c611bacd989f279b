/* hook.c — runs user-configured hook programs: execve (never a shell) in a child with a fresh
 * environment, stdin from /dev/null, stdout+stderr captured (bounded), and a kill-on-timeout. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOOK_OUTPUT_MAX    4096
#define HOOK_KILL_GRACE_MS 2000
/* How often the parent checks whether the child exited while its output pipe is still open
 * (a background grandchild may hold the pipe long after the hook itself is gone). */
#define HOOK_REAP_SLICE_MS 50

static const char hook_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
static const char *const hook_copied[] = {"HOME", "LANG", "TZ"};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The "NAME=VALUE" entry setting name (given with its length) in a NULL-terminated list. */
static const char *env_find(const char *const *env, const char *name, size_t len)
{
    size_t i;

    for (i = 0; env != NULL && env[i] != NULL; i++) {
        if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
            return env[i];
    }
    return NULL;
}

/* The child's environment: the fixed PATH, HOME/LANG/TZ when set, then the caller's entries.
 * A caller entry of the same name replaces a fixed one, so no name appears twice. The strings
 * are borrowed (from the caller, getenv and static storage); only the array is allocated. */
static char **build_env(const char *const *env, char **error, const char *prog)
{
    size_t n = 0, o = 0, i;
    char **envp;
    const char *v;

    for (i = 0; env != NULL && env[i] != NULL; i++) {
        if (env[i][0] == '=' || strchr(env[i], '=') == NULL) {
            /* The entry is not printed: it may carry a secret. */
            *error = tc_asprintf("hook %s: environment entry %zu is not NAME=VALUE", prog, i);
            return NULL;
        }
        n++;
    }
    envp = calloc(n + 1 + sizeof hook_copied / sizeof hook_copied[0] + 1, sizeof *envp);
    if (envp == NULL) {
        *error = tc_asprintf("hook %s: out of memory", prog);
        return NULL;
    }
    if (env_find(env, "PATH", 4) == NULL)
        envp[o++] = (char *)hook_path;
    for (i = 0; i < sizeof hook_copied / sizeof hook_copied[0]; i++) {
        size_t len = strlen(hook_copied[i]);
        if (env_find(env, hook_copied[i], len) != NULL)
            continue;
        v = env_find((const char *const *)environ, hook_copied[i], len);
        if (v != NULL)
            envp[o++] = (char *)v;
    }
    for (i = 0; i < n; i++)
        envp[o++] = (char *)env[i];
    envp[o] = NULL;
    return envp;
}

/* Returns fd, or a duplicate of it above 2 when it is one of the standard descriptors, so the
 * dup2() calls onto 0, 1 and 2 cannot clobber it. Async-signal-safe. */
static int above_stdio(int fd)
{
    int r;

    if (fd > 2)
        return fd;
    r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    return r < 0 ? fd : r;
}

/* Runs in the child between fork and execve: async-signal-safe calls only, never returns. */
static void child_exec(const char *const *argv, char **envp, int nullfd, int outfd, int errfd,
                       long maxfd)
{
    struct sigaction dfl;
    sigset_t none;
    int sig, e;
    long fd;

    /* A hook starts with default signal handling whatever the caller ignores or handles
     * (SIGCHLD ignored would break a shell script's own wait, SIGPIPE ignored its pipelines). */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Its own process group, so a timeout also reaches the hook's children. */
    setpgid(0, 0);

    errfd = above_stdio(errfd);
    nullfd = above_stdio(nullfd);
    outfd = above_stdio(outfd);
    if (dup2(nullfd, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
        goto fail;
    /* Descriptors the rest of the process opened without O_CLOEXEC (libraries, PKCS#11
     * modules) must not reach the hook. CLOEXEC rather than close keeps errfd until execve. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (fd = 3; fd < maxfd; fd++)
            fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    }
    execve(argv[0], (char *const *)argv, envp);
fail:
    e = errno;
    while (write(errfd, &e, sizeof e) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Reads what is available on fd into out (keeping at most HOOK_OUTPUT_MAX bytes in total and
 * dropping the rest). Returns 1 at end of file or error, 0 when more may come. */
static int read_some(int fd, char *out, size_t *len)
{
    char scratch[4096];
    ssize_t r;

    if (*len < HOOK_OUTPUT_MAX)
        r = read(fd, out + *len, HOOK_OUTPUT_MAX - *len);
    else
        r = read(fd, scratch, sizeof scratch);
    if (r < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (r == 0)
        return 1;
    if (*len < HOOK_OUTPUT_MAX)
        *len += (size_t)r;
    return 0;
}

int tc_hook_run(const char *const *argv, const char *const *env, int timeout_seconds,
                int *exit_status, char **output, char **error)
{
    int ret = -1;
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, nullfd = -1;
    int status = 0, exec_errno = 0, eof = 0, timed_out = 0, killed = 0;
    int restore_sigchld = 0;
    struct sigaction old_chld, dfl_chld;
    sigset_t all, old_mask;
    siginfo_t si;
    char **envp = NULL, *buf = NULL, *err = NULL;
    size_t len = 0;
    long long deadline;
    long maxfd;
    pid_t pid, w;
    ssize_t r;

    if (exit_status != NULL)
        *exit_status = -1;
    if (output != NULL)
        *output = NULL;
    if (error != NULL)
        *error = NULL;
    tc_return_val_if_fail(argv != NULL && argv[0] != NULL, -1);
    tc_return_val_if_fail(timeout_seconds > 0, -1);

    if (argv[0][0] != '/') {
        err = tc_asprintf("hook %s: not an absolute path", argv[0]);
        goto out;
    }
    /* Everything that allocates happens before fork: the child may only make async-signal-safe
     * calls. */
    envp = build_env(env, &err, argv[0]);
    if (envp == NULL)
        goto out;
    buf = malloc(HOOK_OUTPUT_MAX + 1);
    if (buf == NULL) {
        err = tc_asprintf("hook %s: out of memory", argv[0]);
        goto out;
    }
    maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 1048576)
        maxfd = 1048576;
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        err = tc_asprintf("hook %s: cannot set up: %s", argv[0], strerror(errno));
        goto out;
    }
    /* With SIGCHLD ignored the kernel reaps the child itself and waitpid() could never report
     * its status, so the default disposition is in force while the hook runs. */
    if (sigaction(SIGCHLD, NULL, &old_chld) == 0 &&
        (old_chld.sa_handler == SIG_IGN || (old_chld.sa_flags & SA_NOCLDWAIT) != 0)) {
        memset(&dfl_chld, 0, sizeof dfl_chld);
        dfl_chld.sa_handler = SIG_DFL;
        sigemptyset(&dfl_chld.sa_mask);
        restore_sigchld = sigaction(SIGCHLD, &dfl_chld, NULL) == 0;
    }

    /* No caller signal handler may run in the child before it has reset them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_mask);
    pid = fork();
    if (pid == 0)
        child_exec(argv, envp, nullfd, outp[1], errp[1], maxfd);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (pid < 0) {
        err = tc_asprintf("hook %s: cannot fork: %s", argv[0], strerror(errno));
        goto out;
    }
    /* Also from here, so the group exists before any kill(-pid); fails harmlessly after exec. */
    setpgid(pid, pid);
    close(outp[1]);
    outp[1] = -1;
    close(errp[1]);
    errp[1] = -1;

    /* execve closes errp (CLOEXEC): end of file means it ran, an int is its errno. */
    do
        r = read(errp[0], &exec_errno, sizeof exec_errno);
    while (r < 0 && errno == EINTR);
    if (r == (ssize_t)sizeof exec_errno) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        err = tc_asprintf("hook %s: cannot execute: %s", argv[0], strerror(exec_errno));
        goto out;
    }

    fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
    deadline = now_ms() + (long long)timeout_seconds * 1000;
    for (;;) {
        long long now, wait_ms;
        struct pollfd pfd;

        /* WNOWAIT leaves the hook a zombie, and a zombie leader keeps its process group ID
         * from being reused, so the group can still be signalled safely below. */
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR) {
            /* ECHILD: a SIGCHLD handler elsewhere in the process reaped it first. */
            err = tc_asprintf("hook %s: lost track of the process: %s", argv[0], strerror(errno));
            goto out;
        }
        if (si.si_pid == pid) {
            /* After a timeout the hook may have died of the SIGTERM while children that ignore
             * it live on (and may hold the pipe): they get no grace period of their own. */
            if (timed_out)
                kill(-pid, SIGKILL);
            do
                w = waitpid(pid, &status, 0);
            while (w < 0 && errno == EINTR);
            if (w != pid) {
                err =
                    tc_asprintf("hook %s: lost track of the process: %s", argv[0], strerror(errno));
                goto out;
            }
            /* Whatever is still buffered belongs to the hook; a grandchild that keeps the pipe
             * open is not waited for. */
            for (int n = 0; !eof && n < 64; n++) {
                pfd.fd = outp[0];
                pfd.events = POLLIN;
                if (poll(&pfd, 1, 0) <= 0 || read_some(outp[0], buf, &len))
                    break;
            }
            break;
        }
        now = now_ms();
        if (now >= deadline) {
            if (!timed_out) {
                timed_out = 1;
                kill(-pid, SIGTERM);
                kill(pid, SIGTERM);
                deadline = now + HOOK_KILL_GRACE_MS;
            } else if (!killed) {
                killed = 1;
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                /* Cannot outlive SIGKILL for long; wait for it without a deadline. */
                deadline = LLONG_MAX;
            }
            continue;
        }
        wait_ms = deadline - now;
        if (wait_ms > HOOK_REAP_SLICE_MS)
            wait_ms = HOOK_REAP_SLICE_MS;
        if (eof) {
            /* Output closed but the process lives on: only its exit or the deadline matter. */
            struct timespec ts = {0, (long)(wait_ms < 10 ? wait_ms : 10) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        pfd.fd = outp[0];
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)wait_ms) > 0 && read_some(outp[0], buf, &len))
            eof = 1;
    }

    if (exit_status != NULL && WIFEXITED(status))
        *exit_status = WEXITSTATUS(status);
    if (timed_out)
        err = tc_asprintf("hook %s timed out after %d s", argv[0], timeout_seconds);
    else if (WIFSIGNALED(status))
        err = tc_asprintf("hook %s killed by signal %d", argv[0], WTERMSIG(status));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        err = tc_asprintf("hook %s exited with status %d", argv[0], WEXITSTATUS(status));
    else
        ret = 0;
    buf[len] = '\0';
    if (output != NULL) {
        *output = buf;
        buf = NULL;
    }

out:
    if (restore_sigchld)
        sigaction(SIGCHLD, &old_chld, NULL);
    if (nullfd >= 0)
        close(nullfd);
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    free(envp);
    free(buf);
    if (error != NULL)
        *error = err;
    else
        free(err);
    return ret;
}
