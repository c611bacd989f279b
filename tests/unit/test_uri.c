/* test_uri.c — unit tests of tokencert_object_uri(): the URIs the lifecycle hands to key and
 * object operations, percent-encoded as RFC 7512 says, and refusals of malformed parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tokencert.h"

static void check(const char *token, const char *label, const char *id, const char *cls,
                  const char *want)
{
    char *got = tokencert_object_uri(token, label, id, cls);
    if (want == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void label_id_and_class(void **state)
{
    (void)state;
    check("pkcs11:token=office", "office", NULL, NULL, "pkcs11:token=office;object=office");
    check("pkcs11:token=office", "office", "0a1B", "private",
          "pkcs11:token=office;id=%0A%1B;object=office;type=private");
    check("pkcs11:token=office", "office", NULL, "cert",
          "pkcs11:token=office;object=office;type=cert");
    check("pkcs11:token=office", NULL, "ff", "public", "pkcs11:token=office;id=%FF;type=public");
    check(NULL, "office", NULL, NULL, "pkcs11:object=office");
}

static void values_are_percent_encoded(void **state)
{
    (void)state;
    check("pkcs11:token=Dr%20M%C3%BCller", "praxis 1/2;a", NULL, NULL,
          "pkcs11:token=Dr%20M%C3%BCller;object=praxis%201%2F2%3Ba");
}

static void malformed_parts_give_null(void **state)
{
    (void)state;
    check("pkcs11:token=office", "office", "abc", NULL, NULL);     /* odd length */
    check("pkcs11:token=office", "office", "zz", NULL, NULL);      /* not hex */
    check("pkcs11:token=office", "office", NULL, "secret", NULL);  /* no such class */
    check("https://example.invalid/", "office", NULL, NULL, NULL); /* not a pkcs11: URI */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(label_id_and_class),
        cmocka_unit_test(values_are_percent_encoded),
        cmocka_unit_test(malformed_parts_give_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
