/* test_cfssl.c — cfssl's answers read into the backend's outcome: a certificate is issued (as
 * DER, the same certificate), a refusal carries cfssl's messages, cleaned; server failures,
 * redirects and answers that are not what cfssl sends are errors, never a certificate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "enroll/enroll.h"

/* A self-signed certificate, made here: its PEM with newlines escaped for JSON, and its DER. */
static X509 *make_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();

    assert_non_null(k);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    X509_NAME_free(n);
    EVP_PKEY_free(k);
    return x;
}

static char *json_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out, *o;
    long n, i;

    PEM_write_bio_X509(b, x);
    n = BIO_get_mem_data(b, &data);
    out = malloc((size_t)n * 2 + 1);
    for (i = 0, o = out; i < n; i++) {
        if (data[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = data[i];
        }
    }
    *o = '\0';
    BIO_free(b);
    return out;
}

static void parse(long status, const char *body, tc_ca_answer *a)
{
    memset(a, 0, sizeof *a);
    tc_cfssl_parse_answer(status, (const unsigned char *)body, strlen(body), a);
}

static void issued(void **state)
{
    X509 *x = make_cert();
    char *pem = json_pem(x), body[4096];
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    tc_ca_answer a;

    (void)state;
    snprintf(body, sizeof body,
             "{\"success\":true,\"result\":{\"certificate\":\"%s\"},\"errors\":[],\"messages\":[]}",
             pem);
    parse(200, body, &a);
    assert_int_equal(a.kind, TC_CA_ISSUED);
    assert_int_equal(a.cert_len, (size_t)n);
    assert_memory_equal(a.cert, der, (size_t)n);
    assert_null(a.reason);
    tc_ca_answer_clear(&a);

    /* success true but a 5xx status: not a certificate */
    parse(500, body, &a);
    assert_int_equal(a.kind, TC_CA_ERROR);
    tc_ca_answer_clear(&a);
    OPENSSL_free(der);
    free(pem);
    X509_free(x);
}

static void refused(void **state)
{
    tc_ca_answer a;
    (void)state;

    parse(400,
          "{\"success\":false,\"result\":null,\"errors\":[{\"code\":400,"
          "\"message\":\"invalid token\"}],\"messages\":[]}",
          &a);
    assert_int_equal(a.kind, TC_CA_REJECTED);
    assert_non_null(strstr(a.reason, "invalid token (code 400)"));
    assert_non_null(strstr(a.reason, "HTTP 400"));
    tc_ca_answer_clear(&a);

    /* two messages; control bytes and an escape sequence are cleaned, not printed raw */
    parse(403,
          "{\"success\":false,\"errors\":[{\"code\":1,\"message\":\"policy\"},"
          "{\"message\":\"bad\\u001b[31m\\nname\"}]}",
          &a);
    assert_int_equal(a.kind, TC_CA_REJECTED);
    assert_non_null(strstr(a.reason, "policy (code 1); bad"));
    assert_null(strchr(a.reason, '\033'));
    assert_null(strchr(a.reason, '\n'));
    tc_ca_answer_clear(&a);

    /* 200 but success false: cfssl said no */
    parse(200, "{\"success\":false,\"errors\":[]}", &a);
    assert_int_equal(a.kind, TC_CA_REJECTED);
    assert_non_null(strstr(a.reason, "no message"));
    tc_ca_answer_clear(&a);
}

static void errors(void **state)
{
    static const struct {
        long status;
        const char *body;
        const char *says;
    } cases[] = {
        {500, "{\"success\":false,\"errors\":[{\"code\":500,\"message\":\"db down\"}]}",
         "HTTP 500): db down"},
        {502, "<html>bad gateway</html>", "HTTP 502 without a JSON answer"},
        {302, "{\"success\":true}", "HTTP 302"},
        {404, "404 page not found", "HTTP 404 without a JSON answer"},
        {200, "", "not a JSON object"},
        {200, "[1,2]", "not a JSON object"},
        {200, "\"x\"", "not a JSON object"},
        {200, "{\"success\":true", "not a JSON object"},
        {200, "{\"success\":true}", "no result.certificate"},
        {200, "{\"success\":true,\"result\":null}", "no result.certificate"},
        {200, "{\"success\":true,\"result\":{\"certificate\":42}}", "no result.certificate"},
        {200, "{\"success\":true,\"result\":{\"certificate\":\"hello\"}}", "not a PEM"},
        {200,
         "{\"success\":true,\"result\":{\"certificate\":\"-----BEGIN CERTIFICATE-----\\nAAAA\\n"
         "-----END CERTIFICATE-----\\n\"}}",
         "not a PEM"},
        {200, "{\"success\":\"true\",\"result\":{\"certificate\":\"x\"}}", "no success true"},
        {200, "{\"result\":{}}", "no success true"},
        {200, "{\"success\":false} {\"success\":true}", "goes on after"},
        {400, "{\"success\":false}x", "goes on after"},
        {200,
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         "not a JSON object"},
    };
    tc_ca_answer a;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parse(cases[i].status, cases[i].body, &a);
        assert_true(a.kind == TC_CA_ERROR || a.kind == TC_CA_REJECTED);
        assert_null(a.cert);
        assert_non_null(a.reason);
        if (strstr(a.reason, cases[i].says) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, a.reason, cases[i].says);
        tc_ca_answer_clear(&a);
    }
}

/* Bytes that are not text: a NUL inside, and every prefix of a good answer. */
static void hostile_bytes(void **state)
{
    static const unsigned char nul[] = "{\"success\":true,\0\"result\":{}}";
    const char *good = "{\"success\":false,\"errors\":[{\"code\":400,\"message\":\"m\"}]}";
    tc_ca_answer a;
    size_t i;
    (void)state;

    memset(&a, 0, sizeof a);
    tc_cfssl_parse_answer(200, nul, sizeof nul - 1, &a);
    assert_int_equal(a.kind, TC_CA_ERROR);
    tc_ca_answer_clear(&a);
    for (i = 0; i < strlen(good); i++) {
        tc_cfssl_parse_answer(400, (const unsigned char *)good, i, &a);
        assert_int_equal(a.kind, TC_CA_ERROR);
        assert_null(a.cert);
        tc_ca_answer_clear(&a);
    }
    tc_cfssl_parse_answer(400, (const unsigned char *)good, strlen(good), &a);
    assert_int_equal(a.kind, TC_CA_REJECTED);
    tc_ca_answer_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issued),
        cmocka_unit_test(refused),
        cmocka_unit_test(errors),
        cmocka_unit_test(hostile_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
