/* common.h — helpers shared by the library, the PKCS#11 module and the CLI (internal static lib).
 * Nothing here speaks PKCS#11 or OpenSSL; it is strings, secrets, time and precondition checks. */
#ifndef TOKENCERT_COMMON_COMMON_H
#define TOKENCERT_COMMON_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* Precondition check: logs and returns val; aborts in the strict build that CI uses. */
void tc_precondition_failed(const char *expr, const char *func, const char *file, int line);
#define tc_return_val_if_fail(expr, val)                                                           \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tc_precondition_failed(#expr, __func__, __FILE__, __LINE__);                           \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)

#define tc_return_if_fail(expr)                                                                    \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tc_precondition_failed(#expr, __func__, __FILE__, __LINE__);                           \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Wipes memory holding a secret; never optimised away. */
void tc_memzero(void *p, size_t n);
/* Wipes a NUL-terminated secret string and frees it. NULL is fine. */
void tc_secret_free(char *s);

/* Lowercase hex of n bytes into a new string. */
char *tc_hex(const unsigned char *p, size_t n);
/* Uppercase hex with sep between bytes (sep 0: none) into out (needs 3n bytes). */
void tc_hex_upper(const unsigned char *p, size_t n, char sep, char *out);
/* Hex digits (either case, no separators) to bytes in out (room for cap bytes). Returns the number
 * of bytes; -1 on an odd length, a character that is not a hex digit, or more than cap bytes. */
long tc_hex_decode(const char *hex, unsigned char *out, size_t cap);

/* Copies a fixed-width token string (blank- or NUL-padded, not terminated), trims it and makes it
 * printable: control bytes, invalid UTF-8, C1 controls (U+0080-U+009F) and bidirectional
 * embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) become \xNN, byte by byte.
 * Returns a new string. */
char *tc_token_string(const unsigned char *p, size_t n);
/* The same for a counted string of arbitrary length (labels); at most cap input bytes used. */
char *tc_printable(const unsigned char *p, size_t n, size_t cap);

/* strdup/asprintf that return NULL on failure. */
char *tc_strdup(const char *s);
char *tc_strndup(const char *s, size_t n);
char *tc_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *tc_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). */
void tc_time_iso(time_t t, char *out, size_t cap);
/* Whole days from now to t, rounded towards minus infinity. */
long tc_days_between(time_t now, time_t t);
/* The longest duration tc_parse_duration accepts: 1000 years of 365 days. Any time plus or minus
 * it stays far inside time_t and inside X.509's GeneralizedTime (year 9999). */
#define TC_DURATION_MAX      (1000LL * 365 * 86400)
#define TC_DURATION_TOO_LONG (-2)
/* Parses a duration like "30d", "12h", "2w", "10y" (365 days each) or "45" (days) into seconds;
 * -1 when malformed, TC_DURATION_TOO_LONG when longer than TC_DURATION_MAX. */
long long tc_parse_duration(const char *s);

/* The current time. Tests may move it: with TOKENCERT_TEST_CLOCK=enable in the environment,
 * TOKENCERT_TEST_NOW="+DURATION" (e.g. "+25d") or an ISO 8601 UTC time shifts it; without that
 * switch TOKENCERT_TEST_NOW is ignored. For tests only (documented in tokencert(1)). */
time_t tc_now(void);
/* With the override enabled: NULL when it is well-formed (also when absent), else a message
 * naming the bad value. Without the switch: NULL. */
const char *tc_clock_error(void);
/* 1 when the test clock is in effect. */
int tc_clock_overridden(void);
/* Test-only: the environment is read once; this makes the next call read TOKENCERT_TEST_NOW
 * again, so that a unit test can move the clock between steps. Nothing else calls it. */
void tc_clock_reread(void);
/* Parses "YYYY-MM-DDTHH:MM:SSZ" (or "YYYY-MM-DD", midnight UTC); 0 on success. */
int tc_parse_iso(const char *s, time_t *out);

/* A growable array of pointers. */
typedef struct {
    void **v;
    size_t n, cap;
} tc_ptrvec;
int tc_ptrvec_push(tc_ptrvec *pv, void *p);

/* Hooks (hook.c). Runs a hook: argv[0] must be an absolute path; it is executed with execve (never
 * a shell) in a child with stdin from /dev/null and its stdout and stderr captured together (at
 * most 4 KiB kept, the rest read and dropped). The environment is fresh: PATH=/usr/local/sbin:
 * /usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, HOME, LANG and TZ copied when set, plus env
 * (NULL-terminated "NAME=VALUE" strings; an entry replaces a fixed one of the same name). Only fds
 * 0, 1 and 2 are open in the hook, signals are at their defaults, and it runs in its own process
 * group. After timeout_seconds (> 0) the group gets SIGTERM, 2 s later SIGKILL; once the hook
 * itself has exited, whatever it left running in its group is killed.
 * Returns 0 when it ran and exited 0. Otherwise -1 and *error (malloc'd) says what, e.g.
 * "hook /x: not an absolute path", "hook /x: cannot execute: No such file or directory",
 * "hook /x exited with status 3", "hook /x killed by signal 9", "hook /x timed out after 30 s".
 * *output (malloc'd, NUL-terminated, NULL when the hook never ran) gets the captured output;
 * *exit_status the exit code (-1 when it did not exit normally). All out-params may be NULL.
 * Works when the caller ignores or handles SIGCHLD (waits for its own pid only; an ignored SIGCHLD
 * is set to default while the hook runs, so concurrent threads may see that briefly). */
int tc_hook_run(const char *const *argv, const char *const *env, int timeout_seconds,
                int *exit_status, char **output, char **error);

#endif /* TOKENCERT_COMMON_COMMON_H */
