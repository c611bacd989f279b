/* config.c — the key = value configuration of tokencert-pkcs11.so (config.h).
 *
 * The format, one setting a line:
 *     # comment (also ';')
 *     module = /usr/lib/softhsm/libsofthsm2.so
 *     show = current            # or: valid
 * Blanks around keys and values are ignored; a value may not be empty; an unknown key, a second
 * `module` or a line without '=' is an error, so that a typo never silently changes what an
 * application sees. The state store's configuration (src/state/config.c) is not used: it comes
 * with the library's SQLite layer, which has no place inside an application's process. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The counted string s[0..*len) without blanks at either end. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && is_blank(s[0])) {
        s++;
        (*len)--;
    }
    while (*len > 0 && is_blank(s[*len - 1]))
        (*len)--;
    return s;
}

static bool key_is(const char *key, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(key, name, len) == 0;
}

/* One line, without its newline. */
static bool parse_line(const char *line, size_t len, unsigned lineno, tc_p11cfg *out,
                       bool *have_module, char *err, size_t errcap)
{
    const char *eq, *key, *value;
    size_t klen, vlen;

    line = trim(line, &len);
    if (len == 0 || line[0] == '#' || line[0] == ';')
        return true;
    if (memchr(line, '\0', len) != NULL) {
        snprintf(err, errcap, "line %u: a NUL byte", lineno);
        return false;
    }
    eq = memchr(line, '=', len);
    if (eq == NULL) {
        snprintf(err, errcap, "line %u: expected 'key = value'", lineno);
        return false;
    }
    klen = (size_t)(eq - line);
    key = trim(line, &klen);
    vlen = len - (size_t)(eq - line) - 1;
    value = trim(eq + 1, &vlen);
    if (klen == 0) {
        snprintf(err, errcap, "line %u: a value without a key", lineno);
        return false;
    }
    if (vlen == 0) {
        snprintf(err, errcap, "line %u: '%.*s' has no value", lineno, (int)(klen > 64 ? 64 : klen),
                 key);
        return false;
    }
    if (key_is(key, klen, "module")) {
        if (*have_module) {
            snprintf(err, errcap,
                     "line %u: a second 'module' (this version wraps exactly one module)", lineno);
            return false;
        }
        if (vlen >= sizeof out->module) {
            snprintf(err, errcap, "line %u: the module path is too long", lineno);
            return false;
        }
        memcpy(out->module, value, vlen);
        out->module[vlen] = '\0';
        *have_module = true;
    } else if (key_is(key, klen, "show")) {
        if (vlen == 7 && memcmp(value, "current", 7) == 0) {
            out->show = TC_P11CFG_SHOW_CURRENT;
        } else if (vlen == 5 && memcmp(value, "valid", 5) == 0) {
            out->show = TC_P11CFG_SHOW_VALID;
        } else {
            snprintf(err, errcap, "line %u: show must be 'current' or 'valid', not '%.*s'", lineno,
                     (int)(vlen > 64 ? 64 : vlen), value);
            return false;
        }
    } else {
        snprintf(err, errcap, "line %u: unknown key '%.*s'", lineno, (int)(klen > 64 ? 64 : klen),
                 key);
        return false;
    }
    return true;
}

bool tc_p11cfg_parse(const char *text, size_t len, tc_p11cfg *out, char *err, size_t errcap)
{
    tc_p11cfg c;
    bool have_module = false;
    unsigned lineno = 0;
    size_t pos = 0, n;
    const char *nl;

    memset(&c, 0, sizeof c);
    if (errcap > 0)
        err[0] = '\0';
    while (pos < len) {
        nl = memchr(text + pos, '\n', len - pos);
        n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (!parse_line(text + pos, n, lineno, &c, &have_module, err, errcap))
            return false;
        pos += n + (nl != NULL ? 1 : 0);
    }
    if (!have_module) {
        snprintf(err, errcap, "no 'module = PATH' line");
        return false;
    }
    *out = c;
    return true;
}

bool tc_p11cfg_load(const char *path, tc_p11cfg *out, char *err, size_t errcap)
{
    char line_err[256];
    char *buf;
    size_t n;
    FILE *f;
    bool ok;

    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errcap, "cannot open %.256s: %s", path, strerror(errno));
        return false;
    }
    buf = malloc(TC_P11CFG_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errcap, "out of memory");
        return false;
    }
    n = fread(buf, 1, TC_P11CFG_FILE_MAX + 1, f);
    ok = !ferror(f);
    fclose(f);
    if (ok && n <= TC_P11CFG_FILE_MAX)
        ok = tc_p11cfg_parse(buf, n, out, line_err, sizeof line_err);
    else
        line_err[0] = '\0';
    free(buf);
    if (!ok && line_err[0] != '\0') {
        snprintf(err, errcap, "%.256s: %s", path, line_err);
        return false;
    }
    if (!ok) {
        snprintf(err, errcap, "cannot read %.256s", path);
        return false;
    }
    if (n > TC_P11CFG_FILE_MAX) {
        snprintf(err, errcap, "%.256s is larger than %d bytes", path, TC_P11CFG_FILE_MAX);
        return false;
    }
    return true;
}
