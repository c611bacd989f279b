/* test_x509.c — the shallow certificate decode agrees with OpenSSL's full parse, and refuses
 * garbage, truncated and trailing-data values and malformed dates without crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "x509/x509.h"

typedef struct {
    unsigned char *der;
    int len;
    X509 *x;
    EVP_PKEY *key;
} fixture;

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}

/* A certificate like the ones CAs issue to an office: UTF-8 subject, client EKU, long serial. */
static fixture *make_cert(const char *keyspec, int ca)
{
    fixture *f = calloc(1, sizeof *f);
    X509_NAME *name;
    BIGNUM *bn = NULL;

    if (strcmp(keyspec, "rsa") == 0)
        f->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(keyspec, "ed25519") == 0)
        f->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else
        f->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", keyspec);
    assert_non_null(f->key);
    f->x = X509_new();
    X509_set_version(f->x, 2);
    BN_hex2bn(&bn, "00F1E2D3C4B5A69788796A5B4C3D2E1F00112233");
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(f->x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(f->x), -86400L * 10);
    X509_gmtime_adj(X509_getm_notAfter(f->x), 86400L * 365);
    name = X509_get_subject_name(f->x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Ärztekammer, Süd",
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"1234567890", -1,
                               -1, 0);
    X509_set_issuer_name(f->x, name);
    X509_set_pubkey(f->x, f->key);
    if (ca) {
        add_ext(f->x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(f->x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(f->x, NID_basic_constraints, "CA:FALSE");
        add_ext(f->x, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(f->x, NID_ext_key_usage, "clientAuth,1.2.3.4.5");
    }
    assert_true(X509_sign(f->x, f->key, strcmp(keyspec, "ed25519") == 0 ? NULL : EVP_sha256()) > 0);
    f->len = i2d_X509(f->x, &f->der);
    assert_true(f->len > 0);
    return f;
}

static void fixture_free(fixture *f)
{
    OPENSSL_free(f->der);
    X509_free(f->x);
    EVP_PKEY_free(f->key);
    free(f);
}

static void expect_same_as_openssl(fixture *f)
{
    tokencert_cert c;
    unsigned char keyhash[32], md[32];
    char *why = NULL, want[200];
    unsigned int mdlen;
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;

    memset(&c, 0, sizeof c);
    assert_int_equal(tc_cert_decode(f->der, (size_t)f->len, &c, keyhash, &why), TC_OK);
    assert_null(why);

    X509_NAME_print_ex(b, X509_get_subject_name(f->x), 0,
                       (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT);
    n = BIO_get_mem_data(b, &data);
    assert_int_equal((long)strlen(c.subject), n);
    assert_memory_equal(c.subject, data, (size_t)n);
    assert_string_equal(c.subject, "CN=1234567890,O=\xc3\x84rztekammer\\, S\xc3\xbc"
                                   "d");
    BIO_free(b);

    b = BIO_new(BIO_s_mem());
    i2a_ASN1_INTEGER(b, X509_get_serialNumber(f->x));
    n = BIO_get_mem_data(b, &data);
    assert_memory_equal(c.serial, data, (size_t)n);
    assert_string_equal(c.serial, "F1E2D3C4B5A69788796A5B4C3D2E1F00112233");
    BIO_free(b);

    X509_digest(f->x, EVP_sha1(), md, &mdlen);
    tc_hex_upper(md, mdlen, ':', want);
    assert_string_equal(c.sha1, want);
    X509_digest(f->x, EVP_sha256(), md, &mdlen);
    tc_hex_upper(md, mdlen, ':', want);
    assert_string_equal(c.sha256, want);

    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(f->x), c.not_before), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(f->x), c.not_after), 0);
    assert_int_equal(c.key_bits,
                     EVP_PKEY_get_bits(f->key) == 253 ? 256 : EVP_PKEY_get_bits(f->key));
    assert_true(c.self_signed);
    tc_cert_clear(&c);
}

static void rsa_matches_openssl(void **state)
{
    (void)state;
    fixture *f = make_cert("rsa", 0);
    tokencert_cert c;
    unsigned char kh[32];
    char *why = NULL;

    expect_same_as_openssl(f);
    memset(&c, 0, sizeof c);
    assert_int_equal(tc_cert_decode(f->der, (size_t)f->len, &c, kh, &why), TC_OK);
    assert_string_equal(c.key_type, "rsa");
    assert_int_equal(c.key_bits, 2048);
    assert_int_equal(c.n_key_usage, 2);
    assert_string_equal(c.key_usage[0], "digitalSignature");
    assert_string_equal(c.key_usage[1], "keyEncipherment");
    assert_int_equal(c.n_ext_key_usage, 2);
    assert_string_equal(c.ext_key_usage[0], "clientAuth");
    assert_string_equal(c.ext_key_usage[1], "1.2.3.4.5");
    assert_false(c.is_ca);
    tc_cert_clear(&c);
    fixture_free(f);
}

static void ec_and_eddsa_and_ca(void **state)
{
    (void)state;
    const char *specs[] = {"P-256", "P-384", "ed25519"};
    const int bits[] = {256, 384, 256};
    for (size_t i = 0; i < 3; i++) {
        fixture *f = make_cert(specs[i], i == 1);
        tokencert_cert c;
        unsigned char kh[32];
        char *why = NULL;
        memset(&c, 0, sizeof c);
        assert_int_equal(tc_cert_decode(f->der, (size_t)f->len, &c, kh, &why), TC_OK);
        assert_string_equal(c.key_type, i == 2 ? "ed25519" : "ec");
        assert_int_equal(c.key_bits, bits[i]);
        assert_int_equal(c.is_ca, i == 1);
        tc_cert_clear(&c);
        fixture_free(f);
    }
}

static void garbage_truncated_and_trailing_are_refused(void **state)
{
    (void)state;
    fixture *f = make_cert("P-256", 0);
    unsigned char kh[32], *longer;
    tokencert_cert c;
    char *why = NULL;
    int cut;

    /* Every truncation is refused with a reason, and nothing crashes or leaks. */
    for (cut = 0; cut < f->len; cut++) {
        memset(&c, 0, sizeof c);
        assert_int_equal(tc_cert_decode(f->der, (size_t)cut, &c, kh, &why), TC_ERR_BAD_DATA);
        assert_non_null(why);
        free(why);
        why = NULL;
        tc_cert_clear(&c);
    }
    longer = malloc((size_t)f->len + 3);
    memcpy(longer, f->der, (size_t)f->len);
    memcpy(longer + f->len, "xyz", 3);
    memset(&c, 0, sizeof c);
    assert_int_equal(tc_cert_decode(longer, (size_t)f->len + 3, &c, kh, &why), TC_ERR_BAD_DATA);
    assert_string_equal(why, "trailing bytes after the certificate");
    free(why);
    tc_cert_clear(&c);
    free(longer);

    memset(&c, 0, sizeof c);
    assert_int_equal(tc_cert_decode((const unsigned char *)"hello, world", 12, &c, kh, &why),
                     TC_ERR_BAD_DATA);
    assert_string_equal(why, "the value is not a DER X.509 certificate");
    /* Even an unreadable value gets fingerprints, so the user can identify it. */
    assert_int_equal(strlen(c.sha256), 95);
    free(why);
    tc_cert_clear(&c);
    fixture_free(f);
}

/* The i-th UTCTime (0x17, 13 bytes) of a DER certificate: notBefore is the first, notAfter the
 * second. */
static unsigned char *utctime(unsigned char *der, int len, int nth)
{
    int i;
    for (i = 0; i + 15 <= len; i++)
        if (der[i] == 0x17 && der[i + 1] == 0x0d && der[i + 14] == 'Z' && nth-- == 0)
            return der + i + 2;
    return NULL;
}

static void malformed_dates_are_refused(void **state)
{
    (void)state;
    static const char *const expect[2] = {"the certificate's notBefore date is malformed",
                                          "the certificate's notAfter date is malformed"};
    unsigned char kh[32];
    tokencert_cert c;
    char *why = NULL;
    int nth;

    /* A month 13 is no date: the certificate is unreadable, not dated in garbage. */
    for (nth = 0; nth < 2; nth++) {
        fixture *f = make_cert("P-256", 0);
        unsigned char *t = utctime(f->der, f->len, nth);
        assert_non_null(t);
        memcpy(t + 2, "13", 2);
        memset(&c, 0, sizeof c);
        assert_int_equal(tc_cert_decode(f->der, (size_t)f->len, &c, kh, &why), TC_ERR_BAD_DATA);
        assert_string_equal(why, expect[nth]);
        free(why);
        why = NULL;
        tc_cert_clear(&c);
        fixture_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rsa_matches_openssl),
        cmocka_unit_test(ec_and_eddsa_and_ca),
        cmocka_unit_test(garbage_truncated_and_trailing_are_refused),
        cmocka_unit_test(malformed_dates_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
