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
    /* C1 controls (U+009B CSI, U+0085) and bidi overrides and isolates are escaped byte by byte;
     * U+00A0, U+2029 and U+206A around them are kept (issue 16, defect 6). */
    s = tc_printable(
        (const unsigned char *)"a\xc2\x9b"
                               "31m\xc2\x85\xc2\xa0"
                               "\xe2\x80\xae"
                               "\xe2\x80\xaa\xe2\x80\xa9\xe2\x81\xa6\xe2\x81\xa9\xe2\x81\xaa",
        28, 100);
    assert_string_equal(s,
                        "a\\xc2\\x9b31m\\xc2\\x85\xc2\xa0\\xe2\\x80\\xae\\xe2\\x80\\xaa\xe2\x80\xa9"
                        "\\xe2\\x81\\xa6\\xe2\\x81\\xa9\xe2\x81\xaa");
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

static void hex_decoding(void **state)
{
    (void)state;
    unsigned char out[8];

    memset(out, 0xee, sizeof out);
    assert_int_equal(tc_hex_decode("00ab10ff", out, sizeof out), 4);
    assert_memory_equal(out, "\x00\xab\x10\xff", 4);
    assert_int_equal(out[4], 0xee); /* nothing written past the decoded bytes */
    /* Upper, lower and mixed case decode alike. */
    assert_int_equal(tc_hex_decode("ABCDEF", out, sizeof out), 3);
    assert_memory_equal(out, "\xab\xcd\xef", 3);
    assert_int_equal(tc_hex_decode("aBcDeF", out, sizeof out), 3);
    assert_memory_equal(out, "\xab\xcd\xef", 3);
    assert_int_equal(tc_hex_decode("", out, sizeof out), 0);
    /* Odd lengths. */
    assert_int_equal(tc_hex_decode("a", out, sizeof out), -1);
    assert_int_equal(tc_hex_decode("abc", out, sizeof out), -1);
    /* Characters that are not hex digits, in either half of a byte. */
    assert_int_equal(tc_hex_decode("0g", out, sizeof out), -1);
    assert_int_equal(tc_hex_decode("g0", out, sizeof out), -1);
    assert_int_equal(tc_hex_decode("0x12", out, sizeof out), -1);
    assert_int_equal(tc_hex_decode("12 34", out, sizeof out), -1);
    assert_int_equal(tc_hex_decode("12:34", out, sizeof out), -1);
    assert_int_equal(tc_hex_decode("1-", out, sizeof out), -1);
    /* No more than cap bytes. */
    assert_int_equal(tc_hex_decode("0102", out, 1), -1);
    assert_int_equal(tc_hex_decode("01", out, 1), 1);
    assert_int_equal(out[0], 0x01);
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
    /* Capped at 1000 years, so that a time plus a duration never overflows (issue 16). */
    assert_int_equal(tc_parse_duration("1000y"), TC_DURATION_MAX);
    assert_int_equal(tc_parse_duration("1001y"), TC_DURATION_TOO_LONG);
    assert_int_equal(tc_parse_duration("9223372036854775807s"), TC_DURATION_TOO_LONG);
    assert_int_equal(tc_parse_duration("99999999999999999999s"), TC_DURATION_TOO_LONG);
    assert_int_equal(tc_parse_duration("99999999999999999999x"), -1);
    assert_int_equal(tc_parse_duration("300000000y"), TC_DURATION_TOO_LONG);
    assert_int_equal(tc_parse_duration(" 3d"), -1);
    assert_int_equal(tc_parse_duration("+3d"), -1);
    assert_int_equal(tc_parse_duration("0"), 0);
    assert_int_equal(tc_parse_duration(""), -1);
    assert_int_equal(tc_parse_duration("99999999999999999999d"), TC_DURATION_TOO_LONG);
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
        cmocka_unit_test(hex_decoding),
        cmocka_unit_test(durations),
        cmocka_unit_test(days_round_down),
        cmocka_unit_test(iso_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
