/* test_common.c — unit tests of the shared helpers: token strings, hex, durations, dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"

static void token_string_trims_blank_and_nul_padding(void **state)
{
    (void)state;
    const unsigned char blank[8] = {'a', 'b', ' ', ' ', ' ', ' ', ' ', ' '};
    const unsigned char nul[8] = {'t', 'p', 'm', 0, 0, 0, 0, 0};
    const unsigned char full[4] = {'w', 'x', 'y', 'z'};
    char *s;

    s = tc_token_string(blank, sizeof blank);
    assert_string_equal(s, "ab");
    free(s);
    s = tc_token_string(nul, sizeof nul);
    assert_string_equal(s, "tpm");
    free(s);
    s = tc_token_string(full, sizeof full); /* not NUL-terminated, full width */
    assert_string_equal(s, "wxyz");
    free(s);
}

static void printable_escapes_control_and_invalid_utf8(void **state)
{
    (void)state;
    const unsigned char in[] = {'o', 0x1b, '[', '3', '1', 'm', 0xff, 0xc3, 0xa9, '\\'};
    char *s = tc_printable(in, sizeof in, 100);
    assert_string_equal(s, "o\\x1b[31m\\xff\xc3\xa9\\");
    free(s);
    /* Overlong encoding of '/' and a lone surrogate are not valid UTF-8. */
    const unsigned char bad[] = {0xc0, 0xaf, 0xed, 0xa0, 0x80};
    s = tc_printable(bad, sizeof bad, 100);
    assert_string_equal(s, "\\xc0\\xaf\\xed\\xa0\\x80");
    free(s);
    s = tc_printable((const unsigned char *)"abcdef", 6, 3);
    assert_string_equal(s, "abc");
    free(s);
}

static void hex_encodings(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0xab, 0x10, 0xff};
    char upper[16];
    char *h = tc_hex(in, sizeof in);

    assert_string_equal(h, "00ab10ff");
    free(h);
    tc_hex_upper(in, sizeof in, ':', upper);
    assert_string_equal(upper, "00:AB:10:FF");
}

static void durations(void **state)
{
    (void)state;
    assert_int_equal(tc_parse_duration("30d"), 30 * 86400LL);
    assert_int_equal(tc_parse_duration("45"), 45 * 86400LL);
    assert_int_equal(tc_parse_duration("12h"), 12 * 3600LL);
    assert_int_equal(tc_parse_duration("2w"), 14 * 86400LL);
    assert_int_equal(tc_parse_duration("90s"), 90);
    assert_int_equal(tc_parse_duration("-1d"), -1);
    assert_int_equal(tc_parse_duration("d"), -1);
    assert_int_equal(tc_parse_duration("3dd"), -1);
    assert_int_equal(tc_parse_duration("3y"), 3 * 365 * 86400LL);
    assert_int_equal(tc_parse_duration("3q"), -1);
    assert_int_equal(tc_parse_duration(" 3d"), -1);
    assert_int_equal(tc_parse_duration("+3d"), -1);
    assert_int_equal(tc_parse_duration("0"), 0);
    assert_int_equal(tc_parse_duration(""), -1);
    assert_int_equal(tc_parse_duration("99999999999999999999d"), -1);
}

static void days_round_down(void **state)
{
    (void)state;
    assert_int_equal(tc_days_between(0, 86400), 1);
    assert_int_equal(tc_days_between(0, 86399), 0);
    assert_int_equal(tc_days_between(0, -1), -1);
    assert_int_equal(tc_days_between(0, -86400), -1);
    assert_int_equal(tc_days_between(0, -86401), -2);
}

static void iso_time(void **state)
{
    (void)state;
    char buf[32];
    tc_time_iso(1700000000, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_string_trims_blank_and_nul_padding),
        cmocka_unit_test(printable_escapes_control_and_invalid_utf8),
        cmocka_unit_test(hex_encodings),
        cmocka_unit_test(durations),
        cmocka_unit_test(days_round_down),
        cmocka_unit_test(iso_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
