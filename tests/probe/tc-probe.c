/* tc-probe — drives a token key through the library's OpenSSL provider for the integration tests:
 * signatures (digest-and-sign and pre-hashed), a CSR, CMS SignedData, a TLS client handshake with
 * the token key, and RSA decryption. Every result is checked by the test with openssl's own tools.
 *
 * tc-probe --module PATH --token URI --pin-source SRC --key URI COMMAND [options]
 *   sign    --alg rsa-pkcs1|rsa-pss|ecdsa|eddsa [--md sha256|sha384|sha512] [--prehash]
 *           [--saltlen S] --in F --out SIG
 *           (--saltlen: rsa-pss only, passed as openssl's "-pkeyopt rsa_pss_saltlen:S" passes it;
 *           the default is the digest's length)
 *   csr     --subject CN=x[,O=y] --out F.pem [--alg rsa-pss]
 *   cms     --in F --cert CERT --out F.p7s
 *   tls     --connect 127.0.0.1:PORT --cert CERT --CAfile CA [--tls1_2]
 *   decrypt --pad pkcs1|oaep [--md sha1|sha256] --in F --out F
 * Exit: 0 ok, 1 failure, 2 usage, 4 key or token not found. */
#include "x509/x509.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

typedef struct {
    const char *module, *token, *pin_source, *key_uri;
    const char *alg, *md, *in, *out, *subject, *cert, *connect, *cafile, *pad, *saltlen;
    int prehash, tls12;
} opts;

static int fail(const char *what, tokencert_ctx *ctx)
{
    unsigned long e;
    char buf[256];
    const char *data = NULL;
    int flags = 0;

    fprintf(stderr, "tc-probe: %s", what);
    if (ctx != NULL && tokencert_ctx_error(ctx)[0] != '\0')
        fprintf(stderr, ": %s", tokencert_ctx_error(ctx));
    fputc('\n', stderr);
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, "tc-probe:   openssl: %s%s%s\n", buf,
                (flags & ERR_TXT_STRING) && data[0] != '\0' ? ": " : "",
                (flags & ERR_TXT_STRING) ? data : "");
    }
    return 1;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static int write_file(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(p, 1, n, f) == n;

    if (f != NULL && fclose(f) != 0)
        ok = 0;
    return ok;
}

/* Padding options of an RSA signature context. */
static int set_sig_opts(EVP_PKEY_CTX *pctx, const opts *o)
{
    if (o->alg != NULL && strcmp(o->alg, "rsa-pss") == 0)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               (o->saltlen != NULL
                    ? EVP_PKEY_CTX_ctrl_str(pctx, "rsa_pss_saltlen", o->saltlen) > 0
                    : EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
    if (o->alg != NULL && strcmp(o->alg, "rsa-pkcs1") == 0)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
    return 1;
}

static const char *md_name(const opts *o)
{
    if (o->alg != NULL && strcmp(o->alg, "eddsa") == 0)
        return NULL;
    return o->md != NULL ? o->md : "sha256";
}

static int cmd_sign(tokencert_ctx *ctx, EVP_PKEY *pkey, const opts *o)
{
    OSSL_LIB_CTX *lib = tc_libctx(ctx);
    unsigned char *in = NULL, *sig = NULL;
    size_t in_len = 0, sig_len = 0;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    int rc = 1;

    if (o->in == NULL || o->out == NULL || o->alg == NULL)
        return 2;
    if ((in = read_file(o->in, &in_len)) == NULL) {
        rc = fail("cannot read the input", NULL);
        goto out;
    }
    if (o->prehash) {
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned int hlen = 0;
        EVP_MD *md = EVP_MD_fetch(lib, md_name(o), NULL);
        if (md == NULL || !EVP_Digest(in, in_len, h, &hlen, md, NULL)) {
            EVP_MD_free(md);
            rc = fail("cannot hash the input", NULL);
            goto out;
        }
        pctx = EVP_PKEY_CTX_new_from_pkey(lib, pkey, NULL);
        if (pctx == NULL || EVP_PKEY_sign_init(pctx) <= 0 || !set_sig_opts(pctx, o) ||
            EVP_PKEY_CTX_set_signature_md(pctx, md) <= 0 ||
            EVP_PKEY_sign(pctx, NULL, &sig_len, h, hlen) <= 0 || (sig = malloc(sig_len)) == NULL ||
            EVP_PKEY_sign(pctx, sig, &sig_len, h, hlen) <= 0) {
            EVP_MD_free(md);
            rc = fail("signing (pre-hashed) failed", NULL);
            goto out;
        }
        EVP_MD_free(md);
    } else {
        mctx = EVP_MD_CTX_new();
        if (mctx == NULL ||
            EVP_DigestSignInit_ex(mctx, &pctx, md_name(o), lib, NULL, pkey, NULL) <= 0 ||
            !set_sig_opts(pctx, o) || EVP_DigestSign(mctx, NULL, &sig_len, in, in_len) <= 0 ||
            (sig = malloc(sig_len)) == NULL ||
            EVP_DigestSign(mctx, sig, &sig_len, in, in_len) <= 0) {
            pctx = NULL;
            rc = fail("signing failed", NULL);
            goto out;
        }
        pctx = NULL; /* owned by mctx */
    }
    if (!write_file(o->out, sig, sig_len)) {
        rc = fail("cannot write the signature", NULL);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    EVP_MD_CTX_free(mctx);
    free(in);
    free(sig);
    return rc;
}

static X509_NAME *parse_subject(const char *s)
{
    X509_NAME *n = X509_NAME_new();
    char *copy = tc_strdup(s), *tok, *save = NULL;

    if (n == NULL || copy == NULL)
        goto bad;
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            goto bad;
        *eq = '\0';
        if (!X509_NAME_add_entry_by_txt(n, tok, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0))
            goto bad;
    }
    free(copy);
    return n;
bad:
    free(copy);
    X509_NAME_free(n);
    return NULL;
}

static int cmd_csr(tokencert_ctx *ctx, EVP_PKEY *pkey, const opts *o)
{
    OSSL_LIB_CTX *lib = tc_libctx(ctx);
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    FILE *f = NULL;
    int rc = 1;

    if (o->subject == NULL || o->out == NULL)
        return 2;
    req = X509_REQ_new_ex(lib, NULL);
    name = parse_subject(o->subject);
    mctx = EVP_MD_CTX_new();
    if (req == NULL || name == NULL || mctx == NULL || !X509_REQ_set_version(req, 0) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, pkey)) {
        rc = fail("cannot build the request", NULL);
        goto out;
    }
    if (EVP_DigestSignInit_ex(mctx, &pctx, EVP_PKEY_is_a(pkey, "ED25519") ? NULL : "SHA256", lib,
                              NULL, pkey, NULL) <= 0 ||
        !set_sig_opts(pctx, o) || X509_REQ_sign_ctx(req, mctx) <= 0) {
        rc = fail("signing the request failed", NULL);
        goto out;
    }
    f = fopen(o->out, "w");
    if (f == NULL || !PEM_write_X509_REQ(f, req)) {
        rc = fail("cannot write the request", NULL);
        goto out;
    }
    rc = 0;
out:
    if (f != NULL && fclose(f) != 0)
        rc = 1;
    EVP_MD_CTX_free(mctx);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return rc;
}

static X509 *load_cert(OSSL_LIB_CTX *lib, const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = X509_new_ex(lib, NULL);

    if (f == NULL || x == NULL || PEM_read_X509(f, &x, NULL, NULL) == NULL) {
        X509_free(x);
        x = NULL;
    }
    if (f != NULL)
        fclose(f);
    return x;
}

static int cmd_cms(tokencert_ctx *ctx, EVP_PKEY *pkey, const opts *o)
{
    OSSL_LIB_CTX *lib = tc_libctx(ctx);
    X509 *cert = NULL;
    BIO *in = NULL, *out = NULL;
    CMS_ContentInfo *cms = NULL;
    int rc = 1;

    if (o->in == NULL || o->out == NULL || o->cert == NULL)
        return 2;
    cert = load_cert(lib, o->cert);
    in = BIO_new_file(o->in, "rb");
    if (cert == NULL || in == NULL) {
        rc = fail("cannot read the certificate or the input", NULL);
        goto out;
    }
    if (X509_check_private_key(cert, pkey) != 1) {
        rc = fail("the certificate does not match the token key", NULL);
        goto out;
    }
    cms = CMS_sign_ex(cert, pkey, NULL, in, CMS_BINARY, lib, NULL);
    if (cms == NULL) {
        rc = fail("CMS signing failed", NULL);
        goto out;
    }
    out = BIO_new_file(o->out, "wb");
    if (out == NULL || !i2d_CMS_bio(out, cms)) {
        rc = fail("cannot write the CMS output", NULL);
        goto out;
    }
    rc = 0;
out:
    if (out != NULL && BIO_free(out) != 1)
        rc = 1;
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    X509_free(cert);
    return rc;
}

static int connect_to(const char *hostport)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    struct sockaddr_in sa;
    int fd;

    if (colon == NULL || (size_t)(colon - hostport) >= sizeof host)
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int cmd_tls(tokencert_ctx *ctx, EVP_PKEY *pkey, const opts *o)
{
    OSSL_LIB_CTX *lib = tc_libctx(ctx);
    SSL_CTX *sctx = NULL;
    SSL *ssl = NULL;
    X509 *cert = NULL;
    char line[256];
    const char msg[] = "hello from the token key\n";
    int fd = -1, n, rc = 1;

    if (o->connect == NULL || o->cert == NULL || o->cafile == NULL)
        return 2;
    cert = load_cert(lib, o->cert);
    sctx = SSL_CTX_new_ex(lib, NULL, TLS_client_method());
    if (cert == NULL || sctx == NULL || SSL_CTX_use_certificate(sctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(sctx, pkey) != 1 || SSL_CTX_check_private_key(sctx) != 1 ||
        SSL_CTX_load_verify_locations(sctx, o->cafile, NULL) != 1 ||
        (o->tls12 && SSL_CTX_set_max_proto_version(sctx, TLS1_2_VERSION) != 1)) {
        rc = fail("cannot set up the TLS client with the token key", NULL);
        goto out;
    }
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER, NULL);
    fd = connect_to(o->connect);
    if (fd < 0) {
        rc = fail("cannot connect", NULL);
        goto out;
    }
    ssl = SSL_new(sctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set1_host(ssl, "localhost") != 1 ||
        SSL_connect(ssl) != 1) {
        rc = fail("TLS handshake failed", NULL);
        goto out;
    }
    printf("protocol %s, cipher %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    if (SSL_write(ssl, msg, (int)strlen(msg)) != (int)strlen(msg)) {
        rc = fail("cannot write over TLS", NULL);
        goto out;
    }
    n = SSL_read(ssl, line, sizeof line - 1);
    if (n <= 0) {
        rc = fail("no reply over TLS", NULL);
        goto out;
    }
    line[n] = '\0';
    printf("reply: %s", line);
    if (line[n - 1] != '\n')
        putchar('\n');
    SSL_shutdown(ssl);
    rc = 0;
out:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(sctx);
    X509_free(cert);
    return rc;
}

static int cmd_decrypt(tokencert_ctx *ctx, EVP_PKEY *pkey, const opts *o)
{
    OSSL_LIB_CTX *lib = tc_libctx(ctx);
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *in = NULL, *pt = NULL;
    size_t in_len = 0, pt_len = 0;
    int oaep, rc = 1;

    if (o->in == NULL || o->out == NULL || o->pad == NULL)
        return 2;
    oaep = strcmp(o->pad, "oaep") == 0;
    if ((in = read_file(o->in, &in_len)) == NULL) {
        rc = fail("cannot read the input", NULL);
        goto out;
    }
    pctx = EVP_PKEY_CTX_new_from_pkey(lib, pkey, NULL);
    if (pctx == NULL || EVP_PKEY_decrypt_init(pctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, oaep ? RSA_PKCS1_OAEP_PADDING : RSA_PKCS1_PADDING) <=
            0 ||
        (oaep && o->md != NULL &&
         (EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, o->md, NULL) <= 0 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, o->md, NULL) <= 0)) ||
        EVP_PKEY_decrypt(pctx, NULL, &pt_len, in, in_len) <= 0 || (pt = malloc(pt_len)) == NULL ||
        EVP_PKEY_decrypt(pctx, pt, &pt_len, in, in_len) <= 0) {
        rc = fail("decryption failed", NULL);
        goto out;
    }
    if (!write_file(o->out, pt, pt_len)) {
        rc = fail("cannot write the plaintext", NULL);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    free(in);
    free(pt);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: tc-probe --module PATH --token URI --pin-source SRC --key URI "
                    "sign|csr|cms|tls|decrypt [options]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"module", required_argument, NULL, 'M'},
                                             {"token", required_argument, NULL, 'T'},
                                             {"pin-source", required_argument, NULL, 'P'},
                                             {"key", required_argument, NULL, 'K'},
                                             {"alg", required_argument, NULL, 'a'},
                                             {"md", required_argument, NULL, 'm'},
                                             {"in", required_argument, NULL, 'i'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"subject", required_argument, NULL, 's'},
                                             {"cert", required_argument, NULL, 'c'},
                                             {"connect", required_argument, NULL, 'C'},
                                             {"CAfile", required_argument, NULL, 'A'},
                                             {"pad", required_argument, NULL, 'p'},
                                             {"prehash", no_argument, NULL, 'H'},
                                             {"tls1_2", no_argument, NULL, '2'},
                                             {"saltlen", required_argument, NULL, 'S'},
                                             {NULL, 0, NULL, 0}};
    opts o = {0};
    tokencert_ctx *ctx = NULL;
    tokencert_token *t = NULL;
    tokencert_login_opts lo = {0};
    P11KitUri *uri = NULL;
    tc_key *key = NULL;
    EVP_PKEY *pkey = NULL;
    const char *cmd = NULL;
    tokencert_err err;
    int opt, rc = 1;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'M':
            o.module = optarg;
            break;
        case 'T':
            o.token = optarg;
            break;
        case 'P':
            o.pin_source = optarg;
            break;
        case 'K':
            o.key_uri = optarg;
            break;
        case 'a':
            o.alg = optarg;
            break;
        case 'm':
            o.md = optarg;
            break;
        case 'i':
            o.in = optarg;
            break;
        case 'o':
            o.out = optarg;
            break;
        case 's':
            o.subject = optarg;
            break;
        case 'c':
            o.cert = optarg;
            break;
        case 'C':
            o.connect = optarg;
            break;
        case 'A':
            o.cafile = optarg;
            break;
        case 'p':
            o.pad = optarg;
            break;
        case 'H':
            o.prehash = 1;
            break;
        case 'S':
            o.saltlen = optarg;
            break;
        case '2':
            o.tls12 = 1;
            break;
        default:
            return usage();
        }
    }
    if (optind != argc - 1 || o.key_uri == NULL)
        return usage();
    cmd = argv[optind];
    lo.pin_source = o.pin_source;
    lo.login = 1;
    if (tokencert_ctx_new(&ctx) != TC_OK)
        return fail("cannot create a context", NULL);
    err = tokencert_load_modules(ctx, o.module);
    /* SoftHSM's C_Initialize leaves OpenSSL errors behind (it looks for a GOST engine). */
    ERR_clear_error();
    if (err == TC_OK)
        err = tokencert_token_open(ctx, o.token, &lo, TOKENCERT_OPEN_LOGIN, &t);
    if (err == TC_OK)
        err = tc_token_object_uri(t, o.key_uri, &uri, NULL);
    if (err == TC_OK)
        err = tc_key_open(ctx, &t->session, uri, &key);
    if (err == TC_OK)
        err = tc_key_pkey(ctx, key, &pkey);
    if (err != TC_OK) {
        rc = fail("cannot open the key", ctx);
        if (err == TC_ERR_NOT_FOUND || err == TC_ERR_TOKEN_ABSENT)
            rc = 4;
        goto out;
    }
    if (strcmp(cmd, "sign") == 0)
        rc = cmd_sign(ctx, pkey, &o);
    else if (strcmp(cmd, "csr") == 0)
        rc = cmd_csr(ctx, pkey, &o);
    else if (strcmp(cmd, "cms") == 0)
        rc = cmd_cms(ctx, pkey, &o);
    else if (strcmp(cmd, "tls") == 0)
        rc = cmd_tls(ctx, pkey, &o);
    else if (strcmp(cmd, "decrypt") == 0)
        rc = cmd_decrypt(ctx, pkey, &o);
    else
        rc = 2;
    if (rc == 2)
        usage();
out:
    EVP_PKEY_free(pkey);
    tc_key_free(key);
    if (uri != NULL)
        p11_kit_uri_free(uri);
    tokencert_token_close(t);
    tokencert_ctx_free(ctx);
    return rc;
}
