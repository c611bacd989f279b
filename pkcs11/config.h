/* config.h — the configuration of tokencert-pkcs11.so: a small key = value file (see
 * docs/pkcs11-module.md). The parser works on a buffer and touches nothing else, so that a fuzz
 * target or a unit test can drive it directly. */
#ifndef TOKENCERT_PKCS11_CONFIG_H
#define TOKENCERT_PKCS11_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define TC_P11CFG_PATH_MAX 4096
#define TC_P11CFG_FILE_MAX (64 * 1024)

typedef enum {
    TC_P11CFG_SHOW_CURRENT = 0, /* each credential's current certificate and its keys */
    TC_P11CFG_SHOW_VALID = 1    /* every valid certificate and its keys */
} tc_p11cfg_show;

typedef struct {
    char module[TC_P11CFG_PATH_MAX]; /* the wrapped module's file; "" when not given */
    tc_p11cfg_show show;
} tc_p11cfg;

/* Parses text[0..len) into out. On an error returns false and writes one line (no newline) naming
 * the line number and what was wrong into err (errcap bytes). */
bool tc_p11cfg_parse(const char *text, size_t len, tc_p11cfg *out, char *err, size_t errcap);

/* Reads and parses the file at path (at most TC_P11CFG_FILE_MAX bytes). */
bool tc_p11cfg_load(const char *path, tc_p11cfg *out, char *err, size_t errcap);

#endif /* TOKENCERT_PKCS11_CONFIG_H */
