/* common.c — strings, secrets, time and precondition helpers shared by every part of tokencert. */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void tc_precondition_failed(const char *expr, const char *func, const char *file, int line)
{
    fprintf(stderr, "tokencert: precondition failed: %s in %s (%s:%d)\n", expr, func, file, line);
#ifdef TC_STRICT
    abort();
#endif
}

void tc_memzero(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

void tc_secret_free(char *s)
{
    if (s == NULL)
        return;
    tc_memzero(s, strlen(s));
    free(s);
}

char *tc_hex(const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *out;
    size_t i;

    if (n > (SIZE_MAX - 1) / 2)
        return NULL;
    out = malloc(2 * n + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
    return out;
}

void tc_hex_upper(const unsigned char *p, size_t n, char sep, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        if (sep != 0 && i > 0)
            out[o++] = sep;
        out[o++] = digits[p[i] >> 4];
        out[o++] = digits[p[i] & 0xf];
    }
    out[o] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long tc_hex_decode(const char *hex, unsigned char *out, size_t cap)
{
    size_t len, i;

    tc_return_val_if_fail(hex != NULL && (out != NULL || cap == 0), -1);
    len = strlen(hex);
    if (len % 2 != 0 || len / 2 > cap || len / 2 > LONG_MAX)
        return -1;
    for (i = 0; i < len / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* Reject overlong forms, surrogates and values past Unicode. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Whether the valid UTF-8 sequence at p (l bytes) is a character a terminal or a reader must not
 * be given raw: a C1 control (U+0080-U+009F; U+009B is a CSI that starts escape sequences) or a
 * bidirectional embedding, override or isolate (U+202A-U+202E, U+2066-U+2069), which reorder
 * the text shown after them. */
static int utf8_hostile(const unsigned char *p, size_t l)
{
    if (l == 2)
        return p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
    if (l == 3 && p[0] == 0xe2 && p[1] == 0x80)
        return p[2] >= 0xaa && p[2] <= 0xae;
    if (l == 3 && p[0] == 0xe2 && p[1] == 0x81)
        return p[2] >= 0xa6 && p[2] <= 0xa9;
    return 0;
}

char *tc_printable(const unsigned char *p, size_t n, size_t cap)
{
    char *out, *o;
    size_t i = 0;

    if (n > cap)
        n = cap;
    out = malloc(4 * n + 1);
    if (out == NULL)
        return NULL;
    o = out;
    while (i < n) {
        size_t l = utf8_len(p + i, n - i);
        if (l == 1 && p[i] >= 0x20 && p[i] != 0x7f) {
            *o++ = (char)p[i++];
        } else if (l > 1 && !utf8_hostile(p + i, l)) {
            memcpy(o, p + i, l);
            o += l;
            i += l;
        } else {
            static const char digits[] = "0123456789abcdef";
            *o++ = '\\';
            *o++ = 'x';
            *o++ = digits[p[i] >> 4];
            *o++ = digits[p[i] & 0xf];
            i++;
        }
    }
    *o = '\0';
    /* Sized for the worst case (every byte escaped); give the rest back, as listings keep
     * thousands of these. */
    o = realloc(out, (size_t)(o - out) + 1);
    return o != NULL ? o : out;
}

char *tc_token_string(const unsigned char *p, size_t n)
{
    /* Some tokens pad with NUL instead of blanks: the string ends at the first NUL either way. */
    const unsigned char *nul = memchr(p, '\0', n);
    if (nul != NULL)
        n = (size_t)(nul - p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    return tc_printable(p, n, n);
}

char *tc_strdup(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

char *tc_strndup(const char *s, size_t n)
{
    return s == NULL ? NULL : strndup(s, n);
}

char *tc_vasprintf(const char *fmt, va_list ap)
{
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        return NULL;
    return out;
}

char *tc_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *out;

    va_start(ap, fmt);
    out = tc_vasprintf(fmt, ap);
    va_end(ap);
    return out;
}

void tc_time_iso(time_t t, char *out, size_t cap)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "invalid-time");
}

long tc_days_between(time_t now, time_t t)
{
    long long d = (long long)t - (long long)now;
    long long days = d / 86400;
    if (d < 0 && d % 86400 != 0)
        days--;
    return (long)days;
}

long long tc_parse_duration(const char *s)
{
    char *end = NULL;
    long long v, mult = 86400;
    int huge;

    /* Digits first: strtoll alone would take a leading space or sign. */
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    huge = errno == ERANGE;
    if ((errno != 0 && !huge) || end == s)
        return -1;
    if (*end != '\0') {
        switch (*end) {
        case 's':
            mult = 1;
            break;
        case 'm':
            mult = 60;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'd':
            mult = 86400;
            break;
        case 'w':
            mult = 7 * 86400;
            break;
        case 'y':
            /* Certificate lifetimes are spoken of in years; a year here is 365 days. */
            mult = 365 * 86400;
            break;
        default:
            return -1;
        }
        if (end[1] != '\0')
            return -1;
    }
    /* Every user adds the result to a time: cap it, so that no sum overflows. */
    if (huge || v > TC_DURATION_MAX / mult)
        return TC_DURATION_TOO_LONG;
    return v * mult;
}

int tc_ptrvec_push(tc_ptrvec *pv, void *p)
{
    if (pv->n == pv->cap) {
        size_t cap = pv->cap ? pv->cap * 2 : 16;
        void **v = realloc(pv->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        pv->v = v;
        pv->cap = cap;
    }
    pv->v[pv->n++] = p;
    return 0;
}

int tc_parse_iso(const char *s, time_t *out)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof tm);
    if (s == NULL)
        return -1;
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0') {
        memset(&tm, 0, sizeof tm);
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end == NULL || *end != '\0')
            return -1;
    }
    *out = timegm(&tm);
    return 0;
}

static int clock_state = -1; /* -1 unread, 0 off, 1 on, 2 malformed */
static long long clock_offset;
static char clock_message[256];

static void clock_read(void)
{
    const char *on = getenv("TOKENCERT_TEST_CLOCK"), *v = getenv("TOKENCERT_TEST_NOW");
    time_t t;
    long long d = -1;

    if (clock_state >= 0)
        return;
    clock_state = 0;
    if (on == NULL || strcmp(on, "enable") != 0 || v == NULL || *v == '\0')
        return;
    if (v[0] == '+' && (d = tc_parse_duration(v + 1)) >= 0) {
        clock_offset = d;
        clock_state = 1;
    } else if (v[0] == '+' && d == TC_DURATION_TOO_LONG) {
        snprintf(clock_message, sizeof clock_message,
                 "TOKENCERT_TEST_NOW: '%.80s' is longer than 1000 years", v);
        clock_state = 2;
    } else if (tc_parse_iso(v, &t) == 0) {
        clock_offset = (long long)t - (long long)time(NULL);
        clock_state = 1;
    } else {
        snprintf(clock_message, sizeof clock_message,
                 "TOKENCERT_TEST_NOW: '%.80s' is neither +DURATION nor a UTC time like "
                 "2027-01-31T00:00:00Z",
                 v);
        clock_state = 2;
    }
}

time_t tc_now(void)
{
    clock_read();
    return clock_state == 1 ? (time_t)((long long)time(NULL) + clock_offset) : time(NULL);
}

const char *tc_clock_error(void)
{
    clock_read();
    return clock_state == 2 ? clock_message : NULL;
}

int tc_clock_overridden(void)
{
    clock_read();
    return clock_state == 1;
}

void tc_clock_reread(void)
{
    clock_state = -1;
    clock_offset = 0;
}
