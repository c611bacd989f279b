/* test_pkcs11_config.c — unit tests of tokencert-pkcs11.so's configuration parser
 * (pkcs11/config.c): the accepted format, and that every mistake is an error naming its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static bool parse(const char *text, tc_p11cfg *c, char *err, size_t cap)
{
    return tc_p11cfg_parse(text, strlen(text), c, err, cap);
}

static void accepts_the_documented_format(void **state)
{
    tc_p11cfg c;
    char err[256];

    (void)state;
    assert_true(parse("# comment\n; another\n\n  module =  /usr/lib/x.so  \r\nshow=valid\n", &c,
                      err, sizeof err));
    assert_string_equal(c.module, "/usr/lib/x.so");
    assert_int_equal(c.show, TC_P11CFG_SHOW_VALID);
    assert_true(parse("module = /a b/c.so", &c, err, sizeof err)); /* no final newline */
    assert_string_equal(c.module, "/a b/c.so");
    assert_int_equal(c.show, TC_P11CFG_SHOW_CURRENT);
    assert_true(parse("show = current\nmodule = m", &c, err, sizeof err));
    assert_int_equal(c.show, TC_P11CFG_SHOW_CURRENT);
}

static void expect_error(const char *text, const char *message)
{
    tc_p11cfg c;
    char err[256];

    memset(&c, 0x5a, sizeof c);
    assert_false(parse(text, &c, err, sizeof err));
    if (strstr(err, message) == NULL)
        fail_msg("'%s': got '%s', want '%s'", text, err, message);
}

static void rejects_mistakes(void **state)
{
    (void)state;
    expect_error("", "no 'module = PATH' line");
    expect_error("# only a comment\n", "no 'module = PATH' line");
    expect_error("module = a\nmodule = b\n", "line 2: a second 'module'");
    expect_error("module = a\nshwo = valid\n", "line 2: unknown key 'shwo'");
    expect_error("module = a\nshow = all\n", "line 2: show must be 'current' or 'valid'");
    expect_error("module\n", "line 1: expected 'key = value'");
    expect_error("= a\n", "line 1: a value without a key");
    expect_error("module =   \n", "line 1: 'module' has no value");
    expect_error("[section]\nmodule = a\n", "line 1: expected 'key = value'");
}

static void rejects_nul_and_overlong(void **state)
{
    static const char nul[] = "module = a\0b\n";
    size_t n = 5000;
    char *big = malloc(n + 16);
    tc_p11cfg c;
    char err[256];

    (void)state;
    assert_false(tc_p11cfg_parse(nul, sizeof nul - 1, &c, err, sizeof err));
    assert_non_null(strstr(err, "line 1: a NUL byte"));
    assert_non_null(big);
    memcpy(big, "module = ", 9);
    memset(big + 9, 'x', n);
    big[9 + n] = '\0';
    assert_false(parse(big, &c, err, sizeof err));
    assert_non_null(strstr(err, "too long"));
    free(big);
    /* A tiny error buffer truncates the message, never overflows. */
    assert_false(parse("bad\n", &c, err, 4));
    assert_int_equal(strlen(err), 3);
}

static void load_names_the_file(void **state)
{
    tc_p11cfg c;
    char err[512];

    (void)state;
    assert_false(tc_p11cfg_load("/nonexistent/tokencert-pkcs11.conf", &c, err, sizeof err));
    assert_non_null(strstr(err, "cannot open /nonexistent/tokencert-pkcs11.conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_the_documented_format),
        cmocka_unit_test(rejects_mistakes),
        cmocka_unit_test(rejects_nul_and_overlong),
        cmocka_unit_test(load_names_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
