/* test_hook.c — unit tests of the hook runner: no shell, fresh environment, bounded output,
 * timeouts, stdin and inherited descriptors, and SIGCHLD set up by the caller. Hooks never go
 * through a shell; some tests use /bin/sh -c as the hook program to observe the child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define FIXED_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct {
    int ret, status;
    char *output, *error;
    double seconds;
} run_result;

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static run_result run(const char *const *argv, const char *const *env, int timeout)
{
    run_result r;
    double start = now_seconds();

    r.status = 12345;
    r.output = r.error = (char *)"poison";
    r.ret = tc_hook_run(argv, env, timeout, &r.status, &r.output, &r.error);
    r.seconds = now_seconds() - start;
    return r;
}

/* Also checks that the runner reaped what it started: no child of ours is left, zombie or not. */
static void done(run_result *r)
{
    free(r->output);
    free(r->error);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void exit_status_output_and_env_reported(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "echo $TC_X; exit 3", NULL};
    const char *env[] = {"TC_X=1", NULL};
    run_result r = run(argv, env, 10);

    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, 3);
    assert_string_equal(r.output, "1\n");
    assert_string_equal(r.error, "hook /bin/sh exited with status 3");
    done(&r);
}

static void success_clears_error(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/true", NULL};
    run_result r = run(argv, NULL, 10);

    assert_int_equal(r.ret, 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.output, "");
    assert_null(r.error);
    done(&r);
}

static void stdout_and_stderr_captured_together(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; echo out2", NULL};
    run_result r = run(argv, NULL, 10);

    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, "out\nerr\nout2\n");
    done(&r);
}

/* Spaces, quotes, $(...), globs and ; reach the program verbatim: nothing interprets them. */
static void arguments_arrive_verbatim(void **state)
{
    (void)state;
    const char *argv[] = {"/usr/bin/printf", "%s\\n",     "a b", "$(id)",
                          "'q\" `id`",       "*; exit 7", "",    NULL};
    run_result r = run(argv, NULL, 10);

    assert_int_equal(r.ret, 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.output, "a b\n$(id)\n'q\" `id`\n*; exit 7\n\n");
    done(&r);
}

/* Had anything handed the arguments to a shell, these would delete the directory or create the
 * marker next to the sentinel; both are checked, as well as the text that arrived. */
static void shell_metacharacters_not_interpreted(void **state)
{
    (void)state;
    char dir[] = "/tmp/tc-hook-meta-XXXXXX";
    char *sentinel, *marker, *a[6], *want;
    struct stat st;
    run_result r;

    assert_non_null(mkdtemp(dir));
    sentinel = tc_asprintf("%s/sentinel", dir);
    marker = tc_asprintf("%s/marker", dir);
    int fd = open(sentinel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    a[0] = tc_asprintf("x; rm -rf %s", dir);
    a[1] = tc_asprintf("&& rm -rf %s ||", dir);
    a[2] = tc_asprintf("| /bin/rm -rf %s", dir);
    a[3] = tc_asprintf("$(touch %s)", marker);
    a[4] = tc_asprintf("`touch %s`\nrm -rf %s", marker, dir);
    a[5] = tc_asprintf("> %s", marker);
    const char *argv[] = {"/usr/bin/printf", "[%s]\n", a[0], a[1], a[2], a[3], a[4], a[5], NULL};
    want = tc_asprintf("[%s]\n[%s]\n[%s]\n[%s]\n[%s]\n[%s]\n", a[0], a[1], a[2], a[3], a[4], a[5]);
    r = run(argv, NULL, 10);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, want);
    assert_int_equal(stat(sentinel, &st), 0);
    assert_int_equal(stat(marker, &st), -1);
    assert_int_equal(unlink(sentinel), 0);
    assert_int_equal(rmdir(dir), 0);
    for (int i = 0; i < 6; i++)
        free(a[i]);
    free(want);
    free(sentinel);
    free(marker);
    done(&r);
}

static void environment_is_fresh(void **state)
{
    (void)state;
    const char *argv[] = {"/usr/bin/env", NULL};
    const char *env[] = {"TC_A=1", "TC_B=x y=z", NULL};
    run_result r;

    /* Nothing of the caller's environment but HOME, LANG and TZ: not a PIN source's variable. */
    assert_int_equal(setenv("TC_PARENT_ONLY", "leak", 1), 0);
    assert_int_equal(setenv("TOKENCERT_PIN", "123456", 1), 0);
    assert_int_equal(setenv("PATH", "/parent/bin:/usr/bin", 1), 0);
    assert_int_equal(setenv("HOME", "/home/hooktest", 1), 0);
    assert_int_equal(setenv("LANG", "C.UTF-8", 1), 0);
    assert_int_equal(setenv("TZ", "Europe/Berlin", 1), 0);
    r = run(argv, env, 10);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, FIXED_PATH "\nHOME=/home/hooktest\nLANG=C.UTF-8\n"
                                             "TZ=Europe/Berlin\nTC_A=1\nTC_B=x y=z\n");
    done(&r);

    /* Unset ones are left out, not passed empty. */
    unsetenv("LANG");
    unsetenv("TZ");
    r = run(argv, NULL, 10);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, FIXED_PATH "\nHOME=/home/hooktest\n");
    done(&r);
    unsetenv("TC_PARENT_ONLY");
    unsetenv("TOKENCERT_PIN");
}

static void caller_entry_replaces_fixed_one(void **state)
{
    (void)state;
    const char *argv[] = {"/usr/bin/env", NULL};
    const char *env[] = {"PATH=/opt/hook/bin", "HOME=/var/lib/tokencert", NULL};
    run_result r;

    assert_int_equal(setenv("HOME", "/root", 1), 0);
    unsetenv("LANG");
    unsetenv("TZ");
    r = run(argv, env, 10);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, "PATH=/opt/hook/bin\nHOME=/var/lib/tokencert\n");
    done(&r);
}

static void malformed_env_entry_refused(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/true", NULL};
    const char *env[] = {"TC_A=1", "SECRET_WITHOUT_EQUALS", NULL};
    run_result r = run(argv, env, 10);

    assert_int_equal(r.ret, -1);
    assert_null(r.output);
    assert_int_equal(r.status, -1);
    assert_string_equal(r.error, "hook /bin/true: environment entry 1 is not NAME=VALUE");
    done(&r);
}

static void relative_path_refused(void **state)
{
    (void)state;
    const char *argv[] = {"bin/true", NULL};
    const char *bare[] = {"true", NULL};
    run_result r = run(argv, NULL, 10);

    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, -1);
    assert_null(r.output);
    assert_string_equal(r.error, "hook bin/true: not an absolute path");
    done(&r);
    r = run(bare, NULL, 10);
    assert_int_equal(r.ret, -1);
    assert_string_equal(r.error, "hook true: not an absolute path");
    done(&r);
}

static void exec_failure_reported(void **state)
{
    (void)state;
    const char *missing[] = {"/nonexistent/tokencert-hook", NULL};
    char path[] = "/tmp/tc-hook-noexec-XXXXXX";
    const char *noexec[] = {path, NULL};
    char *want;
    run_result r = run(missing, NULL, 10);

    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, -1);
    assert_string_equal(
        r.error, "hook /nonexistent/tokencert-hook: cannot execute: No such file or directory");
    done(&r);

    /* Mode 0600: not executable, even for root. */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    r = run(noexec, NULL, 10);
    unlink(path);
    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, -1);
    want = tc_asprintf("hook %s: cannot execute: Permission denied", path);
    assert_string_equal(r.error, want);
    free(want);
    done(&r);
}

static void killed_by_signal_reported(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "echo before; kill -9 $$", NULL};
    run_result r = run(argv, NULL, 10);

    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, -1);
    assert_string_equal(r.output, "before\n");
    assert_string_equal(r.error, "hook /bin/sh killed by signal 9");
    done(&r);
}

static void timeout_terminates(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    run_result r = run(argv, NULL, 1);

    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, -1);
    assert_string_equal(r.error, "hook /bin/sleep timed out after 1 s");
    assert_true(r.seconds >= 0.9);
    assert_true(r.seconds < 3.0);
    done(&r);
}

/* A hook that ignores SIGTERM (and so does its child, which inherits that) gets SIGKILL 2 s later;
 * the whole process group is killed, so the grandchild holding the pipe does not keep us. */
static void timeout_escalates_to_sigkill(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo started; /bin/sleep 20", NULL};
    run_result r = run(argv, NULL, 1);

    assert_int_equal(r.ret, -1);
    assert_string_equal(r.output, "started\n");
    assert_string_equal(r.error, "hook /bin/sh timed out after 1 s");
    assert_true(r.seconds >= 2.9);
    assert_true(r.seconds < 5.0);
    done(&r);
}

/* 1 while pid is a live (not zombie) process. */
static int process_alive(long pid)
{
    char path[64], buf[256], *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* The timeout reaches the hook's children too, not only the process we started. */
static void timeout_kills_process_group(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "/bin/sleep 20 & echo $!; wait", NULL};
    run_result r = run(argv, NULL, 1);
    long pid;
    int i;

    assert_int_equal(r.ret, -1);
    assert_string_equal(r.error, "hook /bin/sh timed out after 1 s");
    pid = strtol(r.output, NULL, 10);
    assert_true(pid > 1);
    for (i = 0; i < 100 && process_alive(pid); i++)
        usleep(10000);
    assert_false(process_alive(pid));
    done(&r);
}

/* The hook dies of the SIGTERM but its child ignores it and holds the output pipe: the rest of the
 * group still gets SIGKILL rather than outliving the timeout. */
static void timeout_kills_grandchild_that_ignores_sigterm(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "(trap '' TERM; exec /bin/sleep 20) & echo $!; wait",
                          NULL};
    run_result r = run(argv, NULL, 1);
    long pid;
    int i;

    assert_int_equal(r.ret, -1);
    assert_string_equal(r.error, "hook /bin/sh timed out after 1 s");
    pid = strtol(r.output, NULL, 10);
    assert_true(pid > 1);
    for (i = 0; i < 100 && process_alive(pid); i++)
        usleep(10000);
    assert_false(process_alive(pid));
    assert_true(r.seconds < 3.0);
    done(&r);
}

/* A hook that leaves a background process holding its output open is done when it exits. */
static void background_grandchild_not_waited_for(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "/bin/sleep 5 & echo bye", NULL};
    run_result r = run(argv, NULL, 10);

    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, "bye\n");
    assert_true(r.seconds < 2.0);
    done(&r);
}

static void large_output_truncated_without_deadlock(void **state)
{
    (void)state;
    const char *argv[] = {"/usr/bin/seq", "1", "40000", NULL}; /* ~230 KB, past any pipe buffer */
    char want[4096 + 16];
    size_t n = 0;
    run_result r = run(argv, NULL, 20);

    for (int i = 1; n < 4096; i++)
        n += (size_t)snprintf(want + n, sizeof want - n, "%d\n", i);
    assert_int_equal(r.ret, 0);
    assert_int_equal(r.status, 0);
    assert_null(r.error);
    assert_int_equal(strlen(r.output), 4096);
    assert_memory_equal(r.output, want, 4096);
    done(&r);
}

static void stdin_is_dev_null(void **state)
{
    (void)state;
    const char *cat[] = {"/bin/cat", NULL};
    const char *link[] = {"/bin/readlink", "/proc/self/fd/0", NULL};
    run_result r = run(cat, NULL, 5);

    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, "");
    assert_true(r.seconds < 2.0);
    done(&r);
    r = run(link, NULL, 5);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, "/dev/null\n");
    done(&r);
}

/* Only 0, 1 and 2 reach the hook: ls lists those and the directory it opened itself (3). */
static void only_stdio_descriptors_inherited(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/ls", "/proc/self/fd", NULL};
    int fd = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
    run_result r;

    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, 37), 37);
    r = run(argv, NULL, 10);
    close(37);
    close(fd);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, "0\n1\n2\n3\n");
    done(&r);
}

static void signal_dispositions_reset(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status", NULL};
    sigset_t block, old;
    run_result r;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    r = run(argv, NULL, 10);
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.output, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    done(&r);
}

static void sigchld_ignored_by_caller(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "exit 5", NULL};
    struct sigaction sa;
    run_result r;

    signal(SIGCHLD, SIG_IGN);
    r = run(argv, NULL, 10);
    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, 5);
    assert_string_equal(r.error, "hook /bin/sh exited with status 5");
    done(&r);
    /* The caller's disposition is back afterwards. */
    sigaction(SIGCHLD, NULL, &sa);
    assert_true(sa.sa_handler == SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
}

static volatile sig_atomic_t chld_seen;
static void on_chld(int sig)
{
    (void)sig;
    chld_seen = 1;
}

static void sigchld_handled_by_caller(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/sh", "-c", "/bin/sleep 0.2; exit 4", NULL};
    struct sigaction sa;
    run_result r;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL); /* no SA_RESTART: the runner must cope with EINTR */
    chld_seen = 0;
    r = run(argv, NULL, 10);
    signal(SIGCHLD, SIG_DFL);
    assert_int_equal(r.ret, -1);
    assert_int_equal(r.status, 4);
    assert_int_equal(chld_seen, 1);
    done(&r);
}

static void out_params_optional(void **state)
{
    (void)state;
    const char *ok[] = {"/bin/true", NULL};
    const char *bad[] = {"/bin/false", NULL};
    const char *rel[] = {"false", NULL};

    assert_int_equal(tc_hook_run(ok, NULL, 5, NULL, NULL, NULL), 0);
    assert_int_equal(tc_hook_run(bad, NULL, 5, NULL, NULL, NULL), -1);
    assert_int_equal(tc_hook_run(rel, NULL, 5, NULL, NULL, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_status_output_and_env_reported),
        cmocka_unit_test(success_clears_error),
        cmocka_unit_test(stdout_and_stderr_captured_together),
        cmocka_unit_test(arguments_arrive_verbatim),
        cmocka_unit_test(shell_metacharacters_not_interpreted),
        cmocka_unit_test(environment_is_fresh),
        cmocka_unit_test(caller_entry_replaces_fixed_one),
        cmocka_unit_test(malformed_env_entry_refused),
        cmocka_unit_test(relative_path_refused),
        cmocka_unit_test(exec_failure_reported),
        cmocka_unit_test(killed_by_signal_reported),
        cmocka_unit_test(timeout_terminates),
        cmocka_unit_test(timeout_escalates_to_sigkill),
        cmocka_unit_test(timeout_kills_process_group),
        cmocka_unit_test(timeout_kills_grandchild_that_ignores_sigterm),
        cmocka_unit_test(background_grandchild_not_waited_for),
        cmocka_unit_test(large_output_truncated_without_deadlock),
        cmocka_unit_test(stdin_is_dev_null),
        cmocka_unit_test(only_stdio_descriptors_inherited),
        cmocka_unit_test(signal_dispositions_reset),
        cmocka_unit_test(sigchld_ignored_by_caller),
        cmocka_unit_test(sigchld_handled_by_caller),
        cmocka_unit_test(out_params_optional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
