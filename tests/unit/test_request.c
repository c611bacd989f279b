/* test_request.c — RFC 4514 subjects become the X.509 names OpenSSL prints back the same way, in
 * DER order; SANs and challenge passwords land in the request; bad input is refused with a message
 * naming the part that is wrong. Requests are signed here with software keys and verified. */
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

static int setup(void **state)
{
    tokencert_ctx *ctx = NULL;
    assert_int_equal(tokencert_ctx_new(&ctx), TC_OK);
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    tokencert_ctx_free(*state);
    return 0;
}

/* The name printed as RFC 2253 (most specific first), UTF-8 unescaped, as
 * `openssl -nameopt RFC2253,-esc_msb` prints it. */
static char *rfc2253(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *s;
    long n;

    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    n = BIO_get_mem_data(b, &data);
    s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static void roundtrip(tokencert_ctx *ctx, const char *in, const char *expect)
{
    X509_NAME *name = NULL;
    char *s;

    assert_int_equal(tc_name_parse(ctx, in, &name), TC_OK);
    s = rfc2253(name);
    assert_string_equal(s, expect);
    free(s);
    X509_NAME_free(name);
}

static void refused(tokencert_ctx *ctx, const char *in, const char *msg)
{
    X509_NAME *name = (X509_NAME *)1;
    assert_int_equal(tc_name_parse(ctx, in, &name), TC_ERR_INVALID_ARG);
    assert_null(name);
    if (strstr(tokencert_ctx_error(ctx), msg) == NULL)
        fail_msg("'%s': expected '%s' in '%s'", in, msg, tokencert_ctx_error(ctx));
}

static void test_name_order(void **state)
{
    tokencert_ctx *ctx = *state;
    X509_NAME *name = NULL;
    const X509_NAME_ENTRY *e;

    assert_int_equal(tc_name_parse(ctx, "CN=1234567890,O=Praxis,C=DE", &name), TC_OK);
    assert_int_equal(X509_NAME_entry_count(name), 3);
    /* DER order: C first, CN last. */
    e = X509_NAME_get_entry(name, 0);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), NID_countryName);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(e)), V_ASN1_PRINTABLESTRING);
    e = X509_NAME_get_entry(name, 2);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), NID_commonName);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(e)), V_ASN1_UTF8STRING);
    X509_NAME_free(name);
    roundtrip(ctx, "CN=1234567890,O=Praxis,C=DE", "CN=1234567890,O=Praxis,C=DE");
}

static void test_name_syntax(void **state)
{
    tokencert_ctx *ctx = *state;
    X509_NAME *name = NULL;

    /* Escapes, multi-valued RDNs, hex values, case-insensitive types, UTF-8, dotted OIDs. */
    roundtrip(ctx, "CN=Doe\\, John,O=A\\+B", "CN=Doe\\, John,O=A\\+B");
    roundtrip(ctx, "cn=x,o=y,c=de", "CN=x,O=y,C=de");
    roundtrip(ctx, "CN=#0c0548656c6c6f", "CN=Hello");
    roundtrip(ctx,
              "CN=\xc3\x84rztekammer S\xc3\xbc"
              "d",
              "CN=\xc3\x84rztekammer S\xc3\xbc"
              "d");
    roundtrip(ctx, "2.5.4.3=by oid", "CN=by oid");
    /* RFC 2253 prints an OID without a name as the hex DER: a UTF8String here. */
    roundtrip(ctx, "1.3.6.1.4.1.99999.1=private", "1.3.6.1.4.1.99999.1=#0C0770726976617465");
    roundtrip(ctx, "UID=jdoe,DC=example,DC=org", "UID=jdoe,DC=example,DC=org");
    roundtrip(ctx, "emailAddress=a@b.example,serialNumber=42,GN=J,SN=D,title=Dr,ST=Bayern,L=M",
              "emailAddress=a@b.example,serialNumber=42,GN=J,SN=D,title=Dr,ST=Bayern,L=M");
    /* Multi-valued RDN: one SET with two entries. */
    assert_int_equal(tc_name_parse(ctx, "CN=a+UID=b,O=c", &name), TC_OK);
    assert_int_equal(X509_NAME_entry_count(name), 3);
    assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 1)),
                     X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 2)));
    assert_int_not_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 0)),
                         X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 1)));
    X509_NAME_free(name);
}

static void test_name_refused(void **state)
{
    tokencert_ctx *ctx = *state;

    refused(ctx, "", "subject: empty");
    refused(ctx, "   ", "subject: empty");
    refused(ctx, "XX=y", "unknown attribute type 'XX'");
    refused(ctx, "CN=a,O", "at position 5");
    refused(ctx, "CN=a,,O=b", "at position 5");
    refused(ctx, "CN=a,", "trailing ','");
    refused(ctx, "CN=a\"b", "at position 0");
    refused(ctx, "C=Germany", "C must be a two-letter country code");
    refused(ctx, "C=D1", "C must be a two-letter country code");
    refused(ctx, "CN=", "empty value for CN");
    refused(ctx, "CN=#0c", "not one DER-encoded value");
    refused(ctx, "CN=#020101", "not a directory string");
    refused(ctx, "CN=\xff\xfe", "value of CN not accepted");
    refused(ctx, "CN=0123456789012345678901234567890123456789012345678901234567890123456789",
            "value of CN not accepted");
}

static void test_san(void **state)
{
    tokencert_ctx *ctx = *state;
    const char *ok[] = {
        "dns:www.example.org",       "ip:192.0.2.1",     "ip:2001:db8::1", "email:a@example.org",
        "uri:https://example.org/x", "DNS:*.example.org"};
    GENERAL_NAMES *g = NULL;
    GENERAL_NAME *n;
    static const struct {
        const char *in, *msg;
    } bad[] = {{"dns:", "SAN 'dns:': empty value"},
               {"foo:bar", "SAN 'foo:bar': unknown kind"},
               {"www.example.org", "unknown kind"},
               {"ip:300.1.1.1", "SAN 'ip:300.1.1.1': not an IPv4 or IPv6 address"},
               {"ip:fe80::1%eth0", "not an IPv4 or IPv6"},
               {"dns:a b", "not a DNS name"},
               {"dns:a..b", "not a DNS name"},
               {"email:nobody", "not an e-mail address"},
               {"uri:no-scheme", "not a URI"}};
    size_t i;

    assert_int_equal(tc_san_parse(ctx, ok, 6, &g), TC_OK);
    assert_int_equal(sk_GENERAL_NAME_num(g), 6);
    n = sk_GENERAL_NAME_value(g, 1);
    assert_int_equal(n->type, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(n->d.iPAddress), 4);
    n = sk_GENERAL_NAME_value(g, 2);
    assert_int_equal(ASN1_STRING_length(n->d.iPAddress), 16);
    assert_int_equal(sk_GENERAL_NAME_value(g, 3)->type, GEN_EMAIL);
    assert_int_equal(sk_GENERAL_NAME_value(g, 4)->type, GEN_URI);
    GENERAL_NAMES_free(g);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *one[1] = {bad[i].in};
        g = (GENERAL_NAMES *)1;
        assert_int_equal(tc_san_parse(ctx, one, 1, &g), TC_ERR_INVALID_ARG);
        assert_null(g);
        if (strstr(tokencert_ctx_error(ctx), bad[i].msg) == NULL)
            fail_msg("'%s': expected '%s' in '%s'", bad[i].in, bad[i].msg,
                     tokencert_ctx_error(ctx));
    }
}

static void test_digest(void **state)
{
    tokencert_ctx *ctx = *state;
    const char *name;

    assert_int_equal(tc_digest_name(ctx, NULL, &name), TC_OK);
    assert_string_equal(name, "SHA256");
    assert_int_equal(tc_digest_name(ctx, "SHA-384", &name), TC_OK);
    assert_string_equal(name, "SHA384");
    assert_int_equal(tc_digest_name(ctx, "md5", &name), TC_ERR_INVALID_ARG);
    assert_non_null(strstr(tokencert_ctx_error(ctx), "digest 'md5' is not supported"));
}

/* A whole request with a software key: verifies, and carries what was asked for. */
static void full_request(tokencert_ctx *ctx, EVP_PKEY *key, const char *digest, int md_nid)
{
    const char *sans[] = {"dns:host.example", "ip:10.0.0.1", "email:x@example.org"};
    tokencert_csr_params p = {"CN=1234567890,O=Praxis Dr. M\xc3\xbcller,C=DE", sans, 3, "s3cret",
                              digest};
    X509_REQ *req = NULL;
    STACK_OF(X509_EXTENSION) * exts;
    GENERAL_NAMES *g;
    X509_ATTRIBUTE *a;
    ASN1_TYPE *t;
    char *s;
    int i, sig_nid = 0;

    assert_int_equal(tc_req_build(ctx, &p, key, &req), TC_OK);
    assert_int_equal(tc_req_sign(ctx, req, key, digest), TC_OK);
    assert_int_equal(X509_REQ_verify(req, key), 1);
    s = rfc2253(X509_REQ_get_subject_name(req));
    assert_string_equal(s, "CN=1234567890,O=Praxis Dr. M\xc3\xbcller,C=DE");
    free(s);
    exts = X509_REQ_get_extensions(req);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
    g = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_non_null(g);
    assert_int_equal(sk_GENERAL_NAME_num(g), 3);
    GENERAL_NAMES_free(g);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    assert_true(i >= 0);
    a = X509_REQ_get_attr(req, i);
    t = X509_ATTRIBUTE_get0_type(a, 0);
    assert_int_equal(t->type, V_ASN1_PRINTABLESTRING);
    assert_int_equal(t->value.asn1_string->length, 6);
    assert_memory_equal(t->value.asn1_string->data, "s3cret", 6);
    if (md_nid != NID_undef) {
        assert_true(OBJ_find_sigid_algs(X509_REQ_get_signature_nid(req), &i, NULL));
        sig_nid = i;
        assert_int_equal(sig_nid, md_nid);
    }
    tc_req_free(req);
}

static void test_request(void **state)
{
    tokencert_ctx *ctx = *state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    full_request(ctx, rsa, NULL, NID_sha256);
    full_request(ctx, rsa, "sha512", NID_sha512);
    full_request(ctx, ec, "sha384", NID_sha384);
    full_request(ctx, ed, NULL, NID_undef);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

static void test_request_refused(void **state)
{
    tokencert_ctx *ctx = *state;
    const char *sans[] = {"ip:1.2.3"};
    tokencert_csr_params p = {"CN=x", sans, 1, NULL, NULL};
    X509_REQ *req = (X509_REQ *)1;

    assert_int_equal(tc_req_build(ctx, &p, NULL, &req), TC_ERR_INVALID_ARG);
    assert_null(req);
    assert_non_null(strstr(tokencert_ctx_error(ctx), "SAN 'ip:1.2.3'"));
    p.n_san = 0;
    p.challenge = "";
    assert_int_equal(tc_req_build(ctx, &p, NULL, &req), TC_ERR_INVALID_ARG);
    assert_non_null(strstr(tokencert_ctx_error(ctx), "challenge password"));
    /* A non-printable challenge goes as UTF8String. */
    p.challenge = "s\xc3\xa9same";
    assert_int_equal(tc_req_build(ctx, &p, NULL, &req), TC_OK);
    {
        int i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
        ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(X509_REQ_get_attr(req, i), 0);
        assert_int_equal(t->type, V_ASN1_UTF8STRING);
    }
    tc_req_free(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_name_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_san, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
