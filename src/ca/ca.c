/* ca.c — the embedded CA: a directory holding its index (ca.db, SQLite), its certificate (ca.pem)
 * and, unless the CA key sits on a token the user named, a SoftHSM token of its own (softhsm2.conf,
 * tokens/, pin, so-pin). Requests are recorded pending, then issued or rejected; issuing signs on
 * the CA's token through the library's OpenSSL provider.
 *
 * SoftHSM reads its configuration (SOFTHSM2_CONF) once per process, at C_Initialize, and the
 * user's own token may be SoftHSM too. So everything that touches the CA's token (init, approve)
 * runs in the signer, tokencert-ca-sign, a process of its own that the library starts with the
 * CA's SOFTHSM2_CONF in its environment (spawn.c); the *_signer functions here are its half. The
 * library's half only reads and writes the index and the directory. */
#include "ca/ca.h"
#include "keys/destroy.h"
#include "state/db.h"
#include "token/init.h"
#include "x509/x509.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CA_SOFTHSM_MODULE         "/usr/lib/softhsm/libsofthsm2.so"
#define CA_TOKEN_LABEL            "tokencert-ca"
#define CA_KEY_LABEL              "ca"
#define CA_DEFAULT_SUBJECT        "CN=tokencert local CA"
#define CA_DEFAULT_KEY_TYPE       "ec:p256"
#define CA_DEFAULT_VALIDITY       (10LL * 365 * 86400)
#define CA_DEFAULT_ISSUE_VALIDITY (365LL * 86400)
/* Certificates issued "now" start this much earlier, so that a relying party whose clock is a few
 * minutes behind the CA's does not see a certificate that is not valid yet. */
#define CA_CLOCK_SKEW      300
#define CA_CSR_MAX         (64 * 1024)
#define CA_PEM_MAX         (256 * 1024)
#define CA_BUSY_TIMEOUT_MS 10000

/* The CA's configuration, one row of the config table. */
typedef struct {
    char *subject;
    char *key_type;
    int manual;
    long long validity, issue_validity;
    int own_token;
    char *module; /* NULL: the p11-kit registry */
    char *token_uri;
    char *pin_source;
    char *key_id; /* lowercase hex CKA_ID of the CA key */
} ca_config;

/* migrations[i] takes an index from schema i to i + 1 (db.c). Append; never edit a released
 * step. */
static const char *const ca_migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE config (\n"
    "  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  subject TEXT NOT NULL,\n"
    "  key_type TEXT NOT NULL,\n"
    "  approval TEXT NOT NULL CHECK (approval IN ('auto', 'manual')),\n"
    "  validity INTEGER NOT NULL,\n"
    "  issue_validity INTEGER NOT NULL,\n"
    "  own_token INTEGER NOT NULL,\n"
    "  module TEXT,\n"
    "  token_uri TEXT NOT NULL,\n"
    "  pin_source TEXT,\n"
    "  key_id TEXT NOT NULL);\n"
    "CREATE TABLE requests (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  subject TEXT NOT NULL,\n"
    "  csr BLOB NOT NULL,\n"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'issued', 'rejected')),\n"
    "  submitted INTEGER NOT NULL,\n"
    "  decided INTEGER NOT NULL DEFAULT 0,\n"
    "  requested_not_before INTEGER NOT NULL DEFAULT 0,\n"
    "  not_before INTEGER NOT NULL DEFAULT 0,\n"
    "  not_after INTEGER NOT NULL DEFAULT 0,\n"
    "  serial TEXT UNIQUE,\n"
    "  reason TEXT,\n"
    "  cert BLOB);\n",
};

/* No application_id: the first indexes were written without one, and must still open. */
static const tc_db_kind ca_kind = {
    .what = "CA index",
    .table = "config",
    .migrations = ca_migrations,
    .n_migrations = (int)(sizeof ca_migrations / sizeof ca_migrations[0]),
    .busy_timeout_ms = CA_BUSY_TIMEOUT_MS,
};

static const char *const state_names[] = {"pending", "issued", "rejected"};

const char *tokencert_req_state_name(tokencert_req_state s)
{
    if ((unsigned)s < sizeof state_names / sizeof state_names[0])
        return state_names[s];
    return "unknown";
}

static int state_from_name(const char *s, tokencert_req_state *out)
{
    size_t i;
    for (i = 0; s != NULL && i < sizeof state_names / sizeof state_names[0]; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (tokencert_req_state)i;
            return 0;
        }
    return -1;
}

/* The OpenSSL reason of the last failure, for error details; the queue is cleared. */
static const char *ossl_reason(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        return "no OpenSSL detail";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

char *tokencert_ca_default_dir(void)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");

    /* The XDG base directory spec: a relative XDG_DATA_HOME is invalid and ignored. */
    if (xdg != NULL && xdg[0] == '/')
        return tc_asprintf("%s/tokencert/ca", xdg);
    if (home == NULL || home[0] != '/') {
        struct passwd *pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL)
        return NULL;
    return tc_asprintf("%s/.local/share/tokencert/ca", home);
}

static char *resolve_dir(const char *dir)
{
    return dir != NULL ? tc_strdup(dir) : tokencert_ca_default_dir();
}

/* ---- files -------------------------------------------------------------------------------- */

static tokencert_err mkdir_p(tokencert_ctx *ctx, const char *path, int *created)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *copy = tc_strdup(path), *p;
    struct stat st;

    *created = 0;
    if (copy == NULL)
        return TC_ERR_NOMEM;
    for (p = copy + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
            ret =
                tc_error(ctx, TC_ERR_IO, "cannot create directory '%s': %s", copy, strerror(errno));
            goto out;
        }
        *p = '/';
    }
    if (mkdir(copy, 0700) == 0) {
        *created = 1;
    } else if (errno != EEXIST) {
        ret = tc_error(ctx, TC_ERR_IO, "cannot create directory '%s': %s", copy, strerror(errno));
        goto out;
    }
    if (stat(copy, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ret = tc_error(ctx, TC_ERR_IO, "'%s' is not a directory", copy);
        goto out;
    }
    ret = TC_OK;
out:
    free(copy);
    return ret;
}

static tokencert_err write_file(tokencert_ctx *ctx, const char *path, const void *data, size_t len,
                                mode_t mode)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    const unsigned char *p = data;

    if (fd < 0)
        return tc_error(ctx, TC_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            ret = tc_error(ctx, TC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        ret = tc_error(ctx, TC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    ret = TC_OK;
out:
    close(fd);
    return ret;
}

static tokencert_err read_file(tokencert_ctx *ctx, const char *path, size_t max,
                               unsigned char **data, size_t *len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char *buf = NULL;
    size_t n = 0;

    *data = NULL;
    *len = 0;
    if (fd < 0)
        return tc_error(ctx, errno == ENOENT ? TC_ERR_NOT_FOUND : TC_ERR_IO, "cannot open '%s': %s",
                        path, strerror(errno));
    buf = malloc(max + 1);
    if (buf == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ret = tc_error(ctx, TC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            ret = tc_error(ctx, TC_ERR_BAD_DATA, "'%s' is larger than %zu bytes", path, max);
            goto out;
        }
    }
    *data = buf;
    *len = n;
    buf = NULL;
    ret = TC_OK;
out:
    free(buf);
    close(fd);
    return ret;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A new random secret: 32 lowercase hex digits (128 bits). */
static tokencert_err random_secret(tokencert_ctx *ctx, char **out)
{
    unsigned char r[16];

    *out = NULL;
    if (RAND_bytes(r, sizeof r) != 1)
        return tc_error(ctx, TC_ERR_INTERNAL, "no random bytes: %s", ossl_reason());
    *out = tc_hex(r, sizeof r);
    tc_memzero(r, sizeof r);
    return *out == NULL ? TC_ERR_NOMEM : TC_OK;
}

/* ---- the index (ca.db) -------------------------------------------------------------------- */

static tokencert_err db_open(tokencert_ctx *ctx, const char *dir, int create, tc_db **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *path = tc_asprintf("%s/ca.db", dir);

    *out = NULL;
    if (path == NULL)
        return TC_ERR_NOMEM;
    if (!create && access(path, F_OK) != 0) {
        ret = tc_error(ctx, TC_ERR_NOT_FOUND,
                       "there is no CA in '%s' (create one with: tokencert ca init --ca-dir %s)",
                       dir, dir);
        goto out;
    }
    ret = tc_db_open(ctx, path, &ca_kind, create, out);
out:
    free(path);
    return ret;
}

static void config_clear(ca_config *c)
{
    free(c->subject);
    free(c->key_type);
    free(c->module);
    free(c->token_uri);
    free(c->pin_source);
    free(c->key_id);
    memset(c, 0, sizeof *c);
}

static tokencert_err config_load(tokencert_ctx *ctx, tc_db *db, ca_config *c)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    const char *approval;
    int row = 0;

    memset(c, 0, sizeof *c);
    ret = tc_db_prepare(db,
                        "SELECT subject, key_type, approval, validity, issue_validity, "
                        "own_token, module, token_uri, pin_source, key_id FROM config "
                        "WHERE id = 1",
                        &st);
    if (ret != TC_OK)
        goto out;
    ret = tc_db_step(db, st, "reading the configuration", &row);
    if (ret != TC_OK)
        goto out;
    if (!row) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "CA index %s: the configuration is missing", db->path);
        goto out;
    }
    approval = (const char *)sqlite3_column_text(st, 2);
    c->subject = tc_db_col_text(st, 0);
    c->key_type = tc_db_col_text(st, 1);
    c->manual = approval != NULL && strcmp(approval, "manual") == 0;
    c->validity = sqlite3_column_int64(st, 3);
    c->issue_validity = sqlite3_column_int64(st, 4);
    c->own_token = sqlite3_column_int(st, 5) != 0;
    c->module = tc_db_col_text(st, 6);
    c->token_uri = tc_db_col_text(st, 7);
    c->pin_source = tc_db_col_text(st, 8);
    c->key_id = tc_db_col_text(st, 9);
    if (c->subject == NULL || c->key_type == NULL || c->token_uri == NULL || c->key_id == NULL) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "CA index: the configuration is incomplete");
        goto out;
    }
    ret = TC_OK;
out:
    sqlite3_finalize(st);
    if (ret != TC_OK)
        config_clear(c);
    return ret;
}

void tokencert_ca_request_clear(tokencert_ca_request *r)
{
    if (r == NULL)
        return;
    free(r->subject);
    free(r->serial);
    free(r->reason);
    free(r->cert);
    memset(r, 0, sizeof *r);
}

void tokencert_ca_requests_free(tokencert_ca_request *v, size_t n)
{
    size_t i;
    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        tokencert_ca_request_clear(&v[i]);
    free(v);
}

#define REQUEST_COLUMNS                                                                            \
    "id, subject, state, submitted, decided, requested_not_before, not_before, not_after, "        \
    "serial, reason, cert"

static tokencert_err request_from_row(tokencert_ctx *ctx, sqlite3_stmt *st, tokencert_ca_request *r)
{
    const void *cert = sqlite3_column_blob(st, 10);
    int cert_len = sqlite3_column_bytes(st, 10);

    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->subject = tc_db_col_text(st, 1);
    if (r->subject == NULL ||
        state_from_name((const char *)sqlite3_column_text(st, 2), &r->state) != 0) {
        tokencert_ca_request_clear(r);
        return tc_error(ctx, TC_ERR_BAD_DATA, "CA index: request %lld is damaged", r->id);
    }
    r->submitted = (time_t)sqlite3_column_int64(st, 3);
    r->decided = (time_t)sqlite3_column_int64(st, 4);
    if (r->state == TOKENCERT_REQ_ISSUED) {
        r->not_before = (time_t)sqlite3_column_int64(st, 6);
        r->not_after = (time_t)sqlite3_column_int64(st, 7);
    } else {
        r->not_before = (time_t)sqlite3_column_int64(st, 5);
    }
    r->serial = tc_db_col_text(st, 8);
    r->reason = tc_db_col_text(st, 9);
    if (cert != NULL && cert_len > 0) {
        r->cert = malloc((size_t)cert_len);
        if (r->cert == NULL) {
            tokencert_ca_request_clear(r);
            return TC_ERR_NOMEM;
        }
        memcpy(r->cert, cert, (size_t)cert_len);
        r->cert_len = (size_t)cert_len;
    }
    return TC_OK;
}

static tokencert_err request_load(tokencert_ctx *ctx, tc_db *db, long long id,
                                  tokencert_ca_request *r)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    int row = 0;

    ret = tc_db_prepare(db, "SELECT " REQUEST_COLUMNS " FROM requests WHERE id = ?", &st);
    if (ret != TC_OK)
        goto out;
    tc_db_bind_int64(db, st, 1, id);
    ret = tc_db_step(db, st, "reading a request", &row);
    if (ret != TC_OK)
        goto out;
    if (!row) {
        ret = tc_error(ctx, TC_ERR_NOT_FOUND, "the CA has no request %lld", id);
        goto out;
    }
    ret = request_from_row(ctx, st, r);
out:
    sqlite3_finalize(st);
    return ret;
}

/* The stored CSR of a request, DER. */
static tokencert_err request_csr(tokencert_ctx *ctx, tc_db *db, long long id, unsigned char **der,
                                 size_t *len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    const void *b;
    int n, row = 0;

    *der = NULL;
    *len = 0;
    ret = tc_db_prepare(db, "SELECT csr FROM requests WHERE id = ?", &st);
    if (ret != TC_OK)
        goto out;
    tc_db_bind_int64(db, st, 1, id);
    ret = tc_db_step(db, st, "reading a request", &row);
    if (ret == TC_OK && !row)
        ret = tc_error(ctx, TC_ERR_NOT_FOUND, "the CA has no request %lld", id);
    if (ret != TC_OK)
        goto out;
    b = sqlite3_column_blob(st, 0);
    n = sqlite3_column_bytes(st, 0);
    if (b == NULL || n <= 0 || n > CA_CSR_MAX) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "CA index: the request of %lld is damaged", id);
        goto out;
    }
    *der = malloc((size_t)n);
    if (*der == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    memcpy(*der, b, (size_t)n);
    *len = (size_t)n;
    ret = TC_OK;
out:
    sqlite3_finalize(st);
    return ret;
}

/* ---- the CA's token ----------------------------------------------------------------------- */

/* A CA token opened in a library context of its own (in the signer). */
typedef struct {
    tokencert_ctx *cactx;
    tokencert_token *t;
    tc_key *key;
    EVP_PKEY *pkey;
} ca_token;

static void ca_token_close(ca_token *ct)
{
    EVP_PKEY_free(ct->pkey);
    tc_key_free(ct->key);
    tokencert_token_close(ct->t);
    tokencert_ctx_free(ct->cactx);
    memset(ct, 0, sizeof *ct);
}

/* Copies the CA context's error detail into the caller's context. */
static tokencert_err ca_token_error(tokencert_ctx *ctx, ca_token *ct, tokencert_err err,
                                    const char *what)
{
    return tc_error(ctx, err, "%s: %s", what,
                    ct->cactx != NULL && tokencert_ctx_error(ct->cactx)[0] != '\0'
                        ? tokencert_ctx_error(ct->cactx)
                        : tokencert_strerror(err));
}

/* Checks that this process is the signer set up for the CA's own token: SOFTHSM2_CONF names its
 * configuration (given at execve by spawn.c) and SoftHSM is not loaded yet, so that it reads that
 * configuration and not another. */
static tokencert_err own_softhsm_check(tokencert_ctx *ctx, const char *dir)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *conf = tc_asprintf("%s/softhsm2.conf", dir);
    const char *env = getenv("SOFTHSM2_CONF");
    void *h;

    if (conf == NULL)
        return TC_ERR_NOMEM;
    if (env == NULL || strcmp(env, conf) != 0) {
        ret = tc_error(ctx, TC_ERR_INTERNAL,
                       "the CA signer runs without SOFTHSM2_CONF=%s (it has '%s'); it is started "
                       "by libtokencert, not by hand",
                       conf, env != NULL ? env : "");
        goto out;
    }
    h = dlopen(CA_SOFTHSM_MODULE, RTLD_NOW | RTLD_NOLOAD);
    if (h != NULL) {
        dlclose(h);
        ret = tc_error(ctx, TC_ERR_INTERNAL,
                       "SoftHSM is already loaded in the CA signer with another configuration");
        goto out;
    }
    ret = TC_OK;
out:
    free(conf);
    return ret;
}

static tokencert_err ca_ctx_new(tokencert_ctx *ctx, ca_token *ct, const char *module)
{
    tokencert_err ret = tokencert_ctx_new(&ct->cactx);
    if (ret != TC_OK)
        return ret;
    tokencert_ctx_set_notice(ct->cactx, ctx->notice, ctx->notice_data);
    ret = tokencert_load_modules(ct->cactx, module);
    if (ret != TC_OK)
        return ca_token_error(ctx, ct, ret, "the CA's token module");
    return TC_OK;
}

/* Opens the CA's token, logged in, as cfg says; with the key when key_id is set. */
static tokencert_err ca_token_open(tokencert_ctx *ctx, const char *dir, const ca_config *cfg,
                                   unsigned flags, ca_token *ct)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tokencert_login_opts lo;
    unsigned char *id = NULL;
    size_t id_len = 0, cap;
    long n;

    if (cfg->own_token) {
        ret = own_softhsm_check(ctx, dir);
        if (ret != TC_OK)
            goto out;
    }
    ret = ca_ctx_new(ctx, ct, cfg->module);
    if (ret != TC_OK)
        goto out;
    memset(&lo, 0, sizeof lo);
    lo.pin_source = cfg->pin_source;
    ret =
        tokencert_token_open(ct->cactx, cfg->token_uri, &lo, flags | TOKENCERT_OPEN_LOGIN, &ct->t);
    if (ret != TC_OK) {
        ret = ca_token_error(ctx, ct, ret, "the CA's token");
        goto out;
    }
    if (cfg->key_id == NULL) {
        ret = TC_OK;
        goto out;
    }
    cap = strlen(cfg->key_id) / 2;
    id = malloc(cap ? cap : 1);
    if (id == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    n = tc_hex_decode(cfg->key_id, id, cap);
    if (n < 0) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "CA index: the CA key id is damaged");
        goto out;
    }
    id_len = (size_t)n;
    ret = tc_key_open_id(ct->cactx, &ct->t->session, id, id_len, &ct->key);
    if (ret == TC_OK)
        ret = tc_key_pkey(ct->cactx, ct->key, &ct->pkey);
    if (ret != TC_OK) {
        ret = ca_token_error(ctx, ct, ret, "the CA key");
        goto out;
    }
    ret = TC_OK;
out:
    free(id);
    return ret;
}

/* ---- certificates ------------------------------------------------------------------------- */

static int add_ext(X509 *cert, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok = ex != NULL && X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok;
}

/* A positive 128-bit serial: 16 random bytes, the top bit clear (positive) and the next one set,
 * so that it always encodes in exactly 16 bytes. */
static int set_random_serial(X509 *cert)
{
    unsigned char r[16];
    BIGNUM *bn = NULL;
    int ok = 0;

    if (RAND_bytes(r, sizeof r) != 1)
        return 0;
    r[0] = (unsigned char)((r[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(r, sizeof r, NULL);
    if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL)
        ok = 1;
    BN_free(bn);
    return ok;
}

/* Signs cert on the token (the provider's EVP_PKEY), SHA-256 except for EdDSA. */
static tokencert_err sign_cert(tokencert_ctx *ctx, ca_token *ct, X509 *cert)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    const char *md =
        EVP_PKEY_is_a(ct->pkey, "ED25519") || EVP_PKEY_is_a(ct->pkey, "ED448") ? NULL : "SHA256";
    OSSL_LIB_CTX *libctx = tc_libctx(ct->cactx);

    if (mctx == NULL || libctx == NULL) {
        ret = libctx == NULL ? ca_token_error(ctx, ct, TC_ERR_INTERNAL, "OpenSSL") : TC_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestSignInit_ex(mctx, NULL, md, libctx, NULL, ct->pkey, NULL) != 1 ||
        X509_sign_ctx(cert, mctx) <= 0) {
        const char *why = ossl_reason();
        const char *detail = tokencert_ctx_error(ct->cactx);
        ret = tc_error(ctx, TC_ERR_PKCS11, "signing on the CA's token failed: %s%s%s", why,
                       detail[0] ? ": " : "", detail);
        goto out;
    }
    ret = TC_OK;
out:
    EVP_MD_CTX_free(mctx);
    return ret;
}

static tokencert_err cert_der(tokencert_ctx *ctx, X509 *cert, unsigned char **der, size_t *len)
{
    int n = i2d_X509(cert, NULL);
    unsigned char *p;

    *der = NULL;
    *len = 0;
    if (n <= 0)
        return tc_error(ctx, TC_ERR_INTERNAL, "cannot encode the certificate: %s", ossl_reason());
    *der = malloc((size_t)n);
    if (*der == NULL)
        return TC_ERR_NOMEM;
    p = *der;
    i2d_X509(cert, &p);
    *len = (size_t)n;
    return TC_OK;
}

static tokencert_err make_ca_cert(tokencert_ctx *ctx, ca_token *ct, X509_NAME *name,
                                  long long validity, X509 **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    X509 *cert = X509_new_ex(tc_libctx(ct->cactx), NULL);
    X509V3_CTX v3;
    time_t now = tc_now();

    *out = NULL;
    if (cert == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (!X509_set_version(cert, X509_VERSION_3) || !set_random_serial(cert) ||
        !X509_set_issuer_name(cert, name) || !X509_set_subject_name(cert, name) ||
        ASN1_TIME_set(X509_getm_notBefore(cert), now) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(now + validity)) == NULL ||
        !X509_set_pubkey(cert, ct->key->pub_pkey)) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot build the CA certificate: %s", ossl_reason());
        goto out;
    }
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    if (!add_ext(cert, &v3, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(cert, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(cert, &v3, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, &v3, NID_authority_key_identifier, "keyid:always")) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot add the CA certificate's extensions: %s",
                       ossl_reason());
        goto out;
    }
    ret = sign_cert(ctx, ct, cert);
    if (ret != TC_OK)
        goto out;
    if (X509_verify(cert, ct->key->pub_pkey) != 1) {
        ret = tc_error(ctx, TC_ERR_VERIFY,
                       "the token's signature on the CA certificate does not verify: %s",
                       ossl_reason());
        goto out;
    }
    *out = cert;
    cert = NULL;
    ret = TC_OK;
out:
    X509_free(cert);
    return ret;
}

static tokencert_err load_ca_cert(tokencert_ctx *ctx, const char *dir, X509 **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *path = tc_asprintf("%s/ca.pem", dir);
    unsigned char *pem = NULL;
    size_t len = 0;
    BIO *b = NULL;

    *out = NULL;
    if (path == NULL)
        return TC_ERR_NOMEM;
    ret = read_file(ctx, path, CA_PEM_MAX, &pem, &len);
    if (ret != TC_OK)
        goto out;
    b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    *out = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (*out == NULL) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "'%s' holds no certificate: %s", path, ossl_reason());
        goto out;
    }
    ret = TC_OK;
out:
    BIO_free(b);
    free(pem);
    free(path);
    return ret;
}

/* The environment variable an env:VAR PIN source reads, which the signer must be given. */
static const char *pin_env_name(const char *pin_source)
{
    if (pin_source != NULL && strncmp(pin_source, "env:", 4) == 0 && pin_source[4] != '\0')
        return pin_source + 4;
    return NULL;
}

/* ---- init --------------------------------------------------------------------------------- */

/* What init created, removed again when it fails. */
typedef struct {
    int dir, conf, tokens, pin, so_pin, pem, db;
} created_files;

static void remove_created(const char *dir, const created_files *c)
{
    static const char *const names[] = {"softhsm2.conf", "pin", "so-pin", "ca.pem", "ca.db"};
    const int flags[] = {c->conf, c->pin, c->so_pin, c->pem, c->db};
    size_t i;
    char *p;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!flags[i])
            continue;
        p = tc_asprintf("%s/%s", dir, names[i]);
        if (p != NULL)
            unlink(p);
        free(p);
    }
    if (c->db) {
        static const char *const side[] = {"ca.db-journal", "ca.db-wal", "ca.db-shm"};
        for (i = 0; i < sizeof side / sizeof side[0]; i++) {
            p = tc_asprintf("%s/%s", dir, side[i]);
            if (p != NULL)
                unlink(p);
            free(p);
        }
    }
    if (c->tokens) {
        p = tc_asprintf("%s/tokens", dir);
        if (p != NULL)
            nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(p);
    }
    if (c->dir)
        rmdir(dir);
}

/* Creates the CA's own SoftHSM token in dir: configuration, token directory, random PINs, the
 * token itself (label tokencert-ca) with its user PIN set. Fills cfg's token fields. */
static tokencert_err own_token_create(tokencert_ctx *ctx, const char *dir, ca_config *cfg,
                                      created_files *cf, ca_token *ct)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *conf = NULL, *conf_text = NULL, *tokens = NULL, *pin_path = NULL, *so_path = NULL;
    char *pin = NULL, *so_pin = NULL;

    conf = tc_asprintf("%s/softhsm2.conf", dir);
    tokens = tc_asprintf("%s/tokens", dir);
    pin_path = tc_asprintf("%s/pin", dir);
    so_path = tc_asprintf("%s/so-pin", dir);
    conf_text = tc_asprintf("# The embedded CA's own SoftHSM token (tokencert ca).\n"
                            "directories.tokendir = %s\nobjectstore.backend = file\n"
                            "log.level = ERROR\n",
                            tokens != NULL ? tokens : "");
    if (conf == NULL || tokens == NULL || pin_path == NULL || so_path == NULL ||
        conf_text == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (mkdir(tokens, 0700) != 0) {
        ret = tc_error(ctx, TC_ERR_IO, "cannot create '%s': %s", tokens, strerror(errno));
        goto out;
    }
    cf->tokens = 1;
    ret = write_file(ctx, conf, conf_text, strlen(conf_text), 0600);
    if (ret != TC_OK)
        goto out;
    cf->conf = 1;
    ret = random_secret(ctx, &pin);
    if (ret == TC_OK)
        ret = random_secret(ctx, &so_pin);
    if (ret != TC_OK)
        goto out;
    ret = write_file(ctx, pin_path, pin, strlen(pin), 0600);
    if (ret != TC_OK)
        goto out;
    cf->pin = 1;
    ret = write_file(ctx, so_path, so_pin, strlen(so_pin), 0600);
    if (ret != TC_OK)
        goto out;
    cf->so_pin = 1;

    ret = own_softhsm_check(ctx, dir);
    if (ret == TC_OK)
        ret = ca_ctx_new(ctx, ct, CA_SOFTHSM_MODULE);
    if (ret != TC_OK)
        goto out;
    ret = tc_token_create(ct->cactx, CA_TOKEN_LABEL, so_pin, pin);
    if (ret != TC_OK) {
        ret = ca_token_error(ctx, ct, ret, "creating the CA's token");
        goto out;
    }
    cfg->own_token = 1;
    cfg->module = tc_strdup(CA_SOFTHSM_MODULE);
    cfg->token_uri = tc_strdup("pkcs11:token=" CA_TOKEN_LABEL);
    cfg->pin_source = tc_asprintf("file:%s", pin_path);
    if (cfg->module == NULL || cfg->token_uri == NULL || cfg->pin_source == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = TC_OK;
out:
    tc_secret_free(pin);
    tc_secret_free(so_pin);
    free(conf);
    free(conf_text);
    free(tokens);
    free(pin_path);
    free(so_path);
    return ret;
}

static tokencert_err write_index(tokencert_ctx *ctx, const char *dir, const ca_config *cfg,
                                 created_files *cf)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    tc_db *db = NULL;
    sqlite3_stmt *st = NULL;

    ret = db_open(ctx, dir, 1, &db);
    if (ret != TC_OK)
        goto out;
    cf->db = 1;
    ret = tc_db_begin(db);
    if (ret != TC_OK)
        goto out;
    ret = tc_db_prepare(db,
                        "INSERT INTO config (id, subject, key_type, approval, validity, "
                        "issue_validity, own_token, module, token_uri, pin_source, key_id) "
                        "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        &st);
    if (ret != TC_OK)
        goto out;
    tc_db_bind_text(db, st, 1, cfg->subject);
    tc_db_bind_text(db, st, 2, cfg->key_type);
    tc_db_bind_text(db, st, 3, cfg->manual ? "manual" : "auto");
    tc_db_bind_int64(db, st, 4, cfg->validity);
    tc_db_bind_int64(db, st, 5, cfg->issue_validity);
    tc_db_bind_int64(db, st, 6, cfg->own_token);
    tc_db_bind_text(db, st, 7, cfg->module);
    tc_db_bind_text(db, st, 8, cfg->token_uri);
    tc_db_bind_text(db, st, 9, cfg->pin_source);
    tc_db_bind_text(db, st, 10, cfg->key_id);
    ret = tc_db_step_done(db, st, "writing the configuration");
    st = NULL;
    if (ret == TC_OK)
        ret = tc_db_commit(db);
out:
    sqlite3_finalize(st);
    if (db != NULL) {
        if (ret != TC_OK)
            tc_db_rollback(db);
        tc_db_close(db);
    }
    return ret;
}

/* Refuses a directory that holds a CA, or the remains of one. */
static tokencert_err check_dir_free(tokencert_ctx *ctx, const char *dir)
{
    static const char *const names[] = {"ca.db",  "ca.pem", "softhsm2.conf",
                                        "tokens", "pin",    "so-pin"};
    size_t i;
    char *p;
    int exists;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        p = tc_asprintf("%s/%s", dir, names[i]);
        if (p == NULL)
            return TC_ERR_NOMEM;
        exists = access(p, F_OK) == 0;
        free(p);
        if (exists && i == 0)
            return tc_error(ctx, TC_ERR_INVALID_ARG,
                            "a CA already exists in '%s'; to start afresh, remove that directory "
                            "(its key and every record go with it)",
                            dir);
        if (exists)
            return tc_error(ctx, TC_ERR_INVALID_ARG,
                            "'%s' holds '%s' but no CA index (ca.db): the remains of another CA "
                            "or of an interrupted 'ca init'; remove them first",
                            dir, names[i]);
    }
    return TC_OK;
}

tokencert_err tokencert_ca_init(tokencert_ctx *ctx, const tokencert_ca_params *p)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *dir = NULL, *abs = NULL, *conf = NULL;
    const char *subject, *key_type;
    X509_NAME *name = NULL;
    char validity[32], issue_validity[32];
    int dir_made = 0;

    tc_return_val_if_fail(ctx != NULL && p != NULL, TC_ERR_INVALID_ARG);
    if (p->validity < 0 || p->issue_validity < 0) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "a validity must not be negative");
        goto out;
    }
    if (p->token_uri == NULL && (p->module != NULL || p->pin_source != NULL)) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "a module or PIN source for the CA key needs a token URI as well");
        goto out;
    }
    if (p->token_uri != NULL && p->pin_source == NULL) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "the CA key on token '%s' needs a PIN source (file:PATH, env:VAR) that the "
                       "CA reads whenever it signs",
                       p->token_uri);
        goto out;
    }
    subject = p->subject != NULL ? p->subject : CA_DEFAULT_SUBJECT;
    key_type = p->key_type != NULL ? p->key_type : CA_DEFAULT_KEY_TYPE;
    snprintf(validity, sizeof validity, "%lld",
             p->validity > 0 ? p->validity : CA_DEFAULT_VALIDITY);
    snprintf(issue_validity, sizeof issue_validity, "%lld",
             p->issue_validity > 0 ? p->issue_validity : CA_DEFAULT_ISSUE_VALIDITY);
    dir = resolve_dir(p->dir);
    if (dir == NULL) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "no CA directory given and no home directory to put one in");
        goto out;
    }
    /* A bad subject is refused before anything is made. */
    ret = tc_name_parse(ctx, subject, &name);
    if (ret != TC_OK)
        goto out;
    ret = mkdir_p(ctx, dir, &dir_made);
    if (ret != TC_OK)
        goto out;
    ret = check_dir_free(ctx, dir);
    if (ret != TC_OK) {
        dir_made = 0;
        goto out;
    }
    if (chmod(dir, 0700) != 0) {
        ret = tc_error(ctx, TC_ERR_IO, "cannot make '%s' private (mode 0700): %s", dir,
                       strerror(errno));
        goto out;
    }
    /* The token configuration names paths: they must not depend on the working directory. */
    abs = realpath(dir, NULL);
    if (abs == NULL) {
        ret = tc_error(ctx, TC_ERR_IO, "'%s': %s", dir, strerror(errno));
        goto out;
    }
    if (p->token_uri == NULL && (conf = tc_asprintf("%s/softhsm2.conf", abs)) == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    {
        const char *const args[] = {"init",
                                    abs,
                                    subject,
                                    key_type,
                                    p->manual_approval ? "manual" : "auto",
                                    validity,
                                    issue_validity,
                                    p->token_uri != NULL ? p->token_uri : "-",
                                    p->module != NULL ? p->module : "-",
                                    p->pin_source != NULL ? p->pin_source : "-",
                                    NULL};
        ret = tc_ca_signer_run(ctx, args, conf, pin_env_name(p->pin_source));
    }
out:
    /* The signer removed what it made; the directory is ours. */
    if (ret != TC_OK && dir_made && dir != NULL)
        rmdir(dir);
    X509_NAME_free(name);
    free(conf);
    free(abs);
    free(dir);
    return ret;
}

tokencert_err tc_ca_init_signer(tokencert_ctx *ctx, const char *abs, const tokencert_ca_params *p)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *pem_path = NULL;
    X509_NAME *name = NULL;
    ca_config cfg;
    created_files cf;
    ca_token ct;
    X509 *cert = NULL;
    BIO *b = NULL;
    unsigned char id[20];
    size_t id_len = 0;
    int key_made = 0;
    char *data = NULL;
    long len;

    memset(&cfg, 0, sizeof cfg);
    memset(&cf, 0, sizeof cf);
    memset(&ct, 0, sizeof ct);
    tc_return_val_if_fail(ctx != NULL && abs != NULL && p != NULL, TC_ERR_INVALID_ARG);
    cfg.subject = tc_strdup(p->subject != NULL ? p->subject : CA_DEFAULT_SUBJECT);
    cfg.key_type = tc_strdup(p->key_type != NULL ? p->key_type : CA_DEFAULT_KEY_TYPE);
    cfg.manual = p->manual_approval != 0;
    cfg.validity = p->validity > 0 ? p->validity : CA_DEFAULT_VALIDITY;
    cfg.issue_validity = p->issue_validity > 0 ? p->issue_validity : CA_DEFAULT_ISSUE_VALIDITY;
    if (cfg.subject == NULL || cfg.key_type == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = tc_name_parse(ctx, cfg.subject, &name);
    if (ret != TC_OK)
        goto out;
    /* The caller made the directory and found it free; a second look costs nothing. */
    ret = check_dir_free(ctx, abs);
    if (ret != TC_OK)
        goto out;

    if (p->token_uri == NULL) {
        ret = own_token_create(ctx, abs, &cfg, &cf, &ct);
        if (ret != TC_OK)
            goto out;
    } else {
        cfg.module = p->module != NULL ? tc_strdup(p->module) : NULL;
        cfg.token_uri = tc_strdup(p->token_uri);
        cfg.pin_source = tc_strdup(p->pin_source);
        if ((p->module != NULL && cfg.module == NULL) || cfg.token_uri == NULL ||
            cfg.pin_source == NULL) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        ret = ca_ctx_new(ctx, &ct, cfg.module);
        if (ret != TC_OK)
            goto out;
    }
    {
        tokencert_login_opts lo;
        memset(&lo, 0, sizeof lo);
        lo.pin_source = cfg.pin_source;
        ret = tokencert_token_open(ct.cactx, cfg.token_uri, &lo,
                                   TOKENCERT_OPEN_RW | TOKENCERT_OPEN_LOGIN, &ct.t);
        if (ret != TC_OK) {
            ret = ca_token_error(ctx, &ct, ret, "the CA's token");
            goto out;
        }
    }
    ret = tc_keygen(ct.cactx, &ct.t->session, cfg.key_type, CA_KEY_LABEL, 0, id, &id_len);
    if (ret != TC_OK) {
        ret = ca_token_error(ctx, &ct, ret, "generating the CA key");
        goto out;
    }
    key_made = 1;
    cfg.key_id = tc_hex(id, id_len);
    if (cfg.key_id == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = tc_key_open_id(ct.cactx, &ct.t->session, id, id_len, &ct.key);
    if (ret == TC_OK)
        ret = tc_key_pkey(ct.cactx, ct.key, &ct.pkey);
    if (ret != TC_OK) {
        ret = ca_token_error(ctx, &ct, ret, "the CA key");
        goto out;
    }
    ret = make_ca_cert(ctx, &ct, name, cfg.validity, &cert);
    if (ret != TC_OK)
        goto out;

    b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_X509(b, cert) || (len = BIO_get_mem_data(b, &data)) <= 0) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    pem_path = tc_asprintf("%s/ca.pem", abs);
    if (pem_path == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = write_file(ctx, pem_path, data, (size_t)len, 0644);
    if (ret != TC_OK)
        goto out;
    cf.pem = 1;
    /* The index last: its presence means the CA is complete. */
    ret = write_index(ctx, abs, &cfg, &cf);
    if (ret != TC_OK)
        goto out;
    ret = TC_OK;
out:
    /* A key made on a token the user named is removed again; the own token goes entirely. */
    if (ret != TC_OK && key_made && !cfg.own_token && ct.key != NULL &&
        tc_key_destroy(ct.cactx, ct.key) != TC_OK)
        tc_warning(ctx, "the CA key made on '%s' could not be removed again: %s", cfg.token_uri,
                   tokencert_ctx_error(ct.cactx));
    ca_token_close(&ct);
    if (ret != TC_OK)
        remove_created(abs, &cf);
    BIO_free(b);
    X509_free(cert);
    X509_NAME_free(name);
    config_clear(&cfg);
    free(pem_path);
    return ret;
}

/* ---- requests ----------------------------------------------------------------------------- */

tokencert_err tokencert_ca_submit(tokencert_ctx *ctx, const char *dir_in, const unsigned char *csr,
                                  size_t csr_len, time_t not_before, tokencert_ca_request *out,
                                  int *auto_approve)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *dir = NULL, *subject = NULL;
    tc_db *db = NULL;
    sqlite3_stmt *st = NULL;
    X509_REQ *req = NULL;
    EVP_PKEY *pub;
    const unsigned char *p = csr;
    unsigned char *pem_der = NULL;
    ca_config cfg;
    long long id;

    memset(&cfg, 0, sizeof cfg);
    tc_return_val_if_fail(ctx != NULL && csr != NULL && out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    if (auto_approve != NULL)
        *auto_approve = 0;
    if (not_before < 0) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "the requested start of validity is negative");
        goto out;
    }
    if (csr_len == 0 || csr_len > CA_CSR_MAX) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "the request is %s (%zu bytes)",
                       csr_len == 0 ? "empty" : "too large", csr_len);
        goto out;
    }
    req = X509_REQ_new_ex(tc_libctx(ctx), NULL);
    if (req == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (csr_len > 11 && memcmp(csr, "-----BEGIN ", 11) == 0) {
        /* PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST"): kept as DER in the index. */
        BIO *bio = BIO_new_mem_buf(csr, (int)csr_len);
        int n;
        if (bio == NULL || PEM_read_bio_X509_REQ(bio, &req, NULL, NULL) == NULL) {
            BIO_free(bio);
            ret = tc_error(ctx, TC_ERR_BAD_DATA,
                           "the request is not a PEM CERTIFICATE REQUEST block: %s", ossl_reason());
            goto out;
        }
        BIO_free(bio);
        n = i2d_X509_REQ(req, &pem_der);
        if (n <= 0) {
            ret = TC_ERR_NOMEM;
            goto out;
        }
        csr = pem_der;
        csr_len = (size_t)n;
    } else if (d2i_X509_REQ(&req, &p, (long)csr_len) == NULL || p != csr + csr_len) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA,
                       "the request is not a PKCS#10 request (DER or PEM)%s: %s",
                       req != NULL && p != csr + csr_len ? " (trailing data)" : "", ossl_reason());
        goto out;
    }
    pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA,
                       "the request's signature does not verify with its own public key: %s",
                       ossl_reason());
        goto out;
    }
    if (X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "the request has an empty subject");
        goto out;
    }
    subject = tc_name_string(X509_REQ_get_subject_name(req));
    dir = resolve_dir(dir_in);
    if (subject == NULL || dir == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = db_open(ctx, dir, 0, &db);
    if (ret == TC_OK)
        ret = config_load(ctx, db, &cfg);
    if (ret != TC_OK)
        goto out;
    ret = tc_db_prepare(db,
                        "INSERT INTO requests (subject, csr, state, submitted, "
                        "requested_not_before) VALUES (?, ?, 'pending', ?, ?)",
                        &st);
    if (ret != TC_OK)
        goto out;
    tc_db_bind_text(db, st, 1, subject);
    tc_db_bind_blob(db, st, 2, csr, csr_len);
    tc_db_bind_int64(db, st, 3, tc_now());
    tc_db_bind_int64(db, st, 4, not_before);
    ret = tc_db_step_done(db, st, "recording the request");
    st = NULL;
    if (ret != TC_OK)
        goto out;
    id = sqlite3_last_insert_rowid(db->h);
    ret = request_load(ctx, db, id, out);
    if (ret != TC_OK)
        goto out;
    if (auto_approve != NULL)
        *auto_approve = !cfg.manual;
    ret = TC_OK;
out:
    sqlite3_finalize(st);
    if (db != NULL)
        tc_db_close(db);
    config_clear(&cfg);
    X509_REQ_free(req);
    OPENSSL_free(pem_der);
    free(subject);
    free(dir);
    return ret;
}

/* Loads request id inside an open write transaction and checks that it is still pending. */
static tokencert_err pending_request(tokencert_ctx *ctx, tc_db *db, long long id,
                                     tokencert_ca_request *r)
{
    tokencert_err ret = request_load(ctx, db, id, r);
    if (ret != TC_OK)
        return ret;
    if (r->state != TOKENCERT_REQ_PENDING)
        return tc_error(ctx, TC_ERR_INVALID_ARG, "request %lld is already %s", id,
                        tokencert_req_state_name(r->state));
    return TC_OK;
}

static int asn1_end(const X509 *cert, time_t *out)
{
    struct tm tm;
    if (!ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm))
        return -1;
    *out = timegm(&tm);
    return 0;
}

static tokencert_err make_leaf(tokencert_ctx *ctx, ca_token *ct, X509 *ca_cert, X509_REQ *req,
                               time_t nb, time_t na, X509 **out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    X509 *cert = X509_new_ex(tc_libctx(ct->cactx), NULL);
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509V3_CTX v3;
    int i;

    *out = NULL;
    if (cert == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (!X509_set_version(cert, X509_VERSION_3) || !set_random_serial(cert) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) ||
        !X509_set_subject_name(cert, X509_REQ_get_subject_name(req)) ||
        ASN1_TIME_set(X509_getm_notBefore(cert), nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), na) == NULL || !X509_set_pubkey(cert, pub)) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot build the certificate: %s", ossl_reason());
        goto out;
    }
    X509V3_set_ctx(&v3, ca_cert, cert, NULL, NULL, 0);
    if (!add_ext(cert, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, &v3, NID_key_usage,
                 EVP_PKEY_is_a(pub, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                           : "critical,digitalSignature") ||
        !add_ext(cert, &v3, NID_ext_key_usage, "clientAuth") ||
        !add_ext(cert, &v3, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, &v3, NID_authority_key_identifier, "keyid:always")) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot add the certificate's extensions: %s",
                       ossl_reason());
        goto out;
    }
    /* The subject alternative names the requester asked for; nothing else of its requested
     * extensions is taken: the CA decides the key usages. */
    exts = X509_REQ_get_extensions(req);
    for (i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ex = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ex)) == NID_subject_alt_name &&
            !X509_add_ext(cert, ex, -1)) {
            ret = tc_error(ctx, TC_ERR_INTERNAL, "cannot copy the subject alternative names: %s",
                           ossl_reason());
            goto out;
        }
    }
    ret = sign_cert(ctx, ct, cert);
    if (ret != TC_OK)
        goto out;
    /* The token signed with the key the CA certificate names, not some other key. */
    if (X509_verify(cert, X509_get0_pubkey(ca_cert)) != 1) {
        ret = tc_error(ctx, TC_ERR_VERIFY,
                       "the signature made on the CA's token does not verify with the CA "
                       "certificate's key: %s",
                       ossl_reason());
        goto out;
    }
    *out = cert;
    cert = NULL;
    ret = TC_OK;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_free(cert);
    return ret;
}

tokencert_err tc_ca_approve_signer(tokencert_ctx *ctx, const char *dir, long long id)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *why = NULL;
    tc_db *db = NULL;
    sqlite3_stmt *st = NULL;
    ca_config cfg;
    ca_token ct;
    tokencert_ca_request r;
    tokencert_cert info;
    unsigned char *csr = NULL, *der = NULL, keyhash[32];
    const unsigned char *p;
    size_t csr_len = 0, der_len = 0;
    X509 *ca_cert = NULL, *cert = NULL;
    X509_REQ *req = NULL;
    time_t now = tc_now(), nb, na, ca_end;
    int in_tx = 0;

    memset(&cfg, 0, sizeof cfg);
    memset(&ct, 0, sizeof ct);
    memset(&r, 0, sizeof r);
    memset(&info, 0, sizeof info);
    tc_return_val_if_fail(ctx != NULL && dir != NULL, TC_ERR_INVALID_ARG);
    ret = db_open(ctx, dir, 0, &db);
    if (ret == TC_OK)
        ret = config_load(ctx, db, &cfg);
    if (ret != TC_OK)
        goto out;
    /* The write lock is held from the check to the update, so that two approvals of one request
     * cannot both issue. */
    ret = tc_db_begin(db);
    if (ret != TC_OK)
        goto out;
    in_tx = 1;
    ret = pending_request(ctx, db, id, &r);
    if (ret == TC_OK)
        ret = request_csr(ctx, db, id, &csr, &csr_len);
    if (ret == TC_OK)
        ret = load_ca_cert(ctx, dir, &ca_cert);
    if (ret != TC_OK)
        goto out;
    p = csr;
    req = X509_REQ_new_ex(tc_libctx(ctx), NULL);
    if (req == NULL || d2i_X509_REQ(&req, &p, (long)csr_len) == NULL ||
        X509_REQ_get0_pubkey(req) == NULL || X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1) {
        ret = tc_error(ctx, TC_ERR_BAD_DATA, "CA index: the stored request %lld is damaged", id);
        goto out;
    }
    nb = r.not_before != 0 ? r.not_before : now - CA_CLOCK_SKEW;
    na = (r.not_before != 0 ? r.not_before : now) + (time_t)cfg.issue_validity;
    if (asn1_end(ca_cert, &ca_end) == 0 && na > ca_end)
        na = ca_end;
    if (na <= nb) {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG,
                       "request %lld asks to start after the CA certificate ends", id);
        goto out;
    }
    ret = ca_token_open(ctx, dir, &cfg, 0, &ct);
    if (ret != TC_OK)
        goto out;
    ret = make_leaf(ctx, &ct, ca_cert, req, nb, na, &cert);
    if (ret == TC_OK)
        ret = cert_der(ctx, cert, &der, &der_len);
    if (ret != TC_OK)
        goto out;
    ret = tc_cert_decode(der, der_len, &info, keyhash, &why);
    if (ret != TC_OK) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "the issued certificate does not decode: %s",
                       why != NULL ? why : "?");
        goto out;
    }
    ret = tc_db_prepare(db,
                        "UPDATE requests SET state = 'issued', decided = ?, not_before = ?, "
                        "not_after = ?, serial = ?, cert = ? WHERE id = ? AND state = 'pending'",
                        &st);
    if (ret != TC_OK)
        goto out;
    tc_db_bind_int64(db, st, 1, tc_now());
    tc_db_bind_int64(db, st, 2, info.not_before);
    tc_db_bind_int64(db, st, 3, info.not_after);
    tc_db_bind_text(db, st, 4, info.serial);
    tc_db_bind_blob(db, st, 5, der, der_len);
    tc_db_bind_int64(db, st, 6, id);
    ret = tc_db_step_done(db, st, "recording the certificate");
    st = NULL;
    if (ret != TC_OK)
        goto out;
    /* Under the write lock the request was pending a moment ago: nothing else can have moved it. */
    if (sqlite3_changes(db->h) != 1) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "CA index %s: request %lld was not issued", db->path,
                       id);
        goto out;
    }
    ret = tc_db_commit(db);
    if (ret != TC_OK)
        goto out;
    in_tx = 0;
out:
    sqlite3_finalize(st);
    if (db != NULL) {
        if (in_tx)
            tc_db_rollback(db);
        tc_db_close(db);
    }
    ca_token_close(&ct);
    tc_cert_clear(&info);
    free(why);
    tokencert_ca_request_clear(&r);
    config_clear(&cfg);
    X509_free(cert);
    X509_free(ca_cert);
    X509_REQ_free(req);
    free(csr);
    free(der);
    return ret;
}

tokencert_err tokencert_ca_approve(tokencert_ctx *ctx, const char *dir_in, long long id,
                                   tokencert_ca_request *out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *dir = NULL, *abs = NULL, *conf = NULL, id_str[32];
    tc_db *db = NULL;
    ca_config cfg;
    tokencert_ca_request r;

    memset(&cfg, 0, sizeof cfg);
    memset(&r, 0, sizeof r);
    tc_return_val_if_fail(ctx != NULL, TC_ERR_INVALID_ARG);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    dir = resolve_dir(dir_in);
    if (dir == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    /* What the signer needs in its environment is in the configuration; a request that is not
     * pending is refused here, without starting it (it checks again under its write lock). */
    ret = db_open(ctx, dir, 0, &db);
    if (ret == TC_OK)
        ret = config_load(ctx, db, &cfg);
    if (ret == TC_OK)
        ret = pending_request(ctx, db, id, &r);
    if (ret != TC_OK)
        goto out;
    tc_db_close(db);
    db = NULL;
    abs = realpath(dir, NULL);
    if (abs == NULL) {
        ret = tc_error(ctx, TC_ERR_IO, "'%s': %s", dir, strerror(errno));
        goto out;
    }
    if (cfg.own_token && (conf = tc_asprintf("%s/softhsm2.conf", abs)) == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    snprintf(id_str, sizeof id_str, "%lld", id);
    {
        const char *const args[] = {"approve", abs, id_str, NULL};
        ret = tc_ca_signer_run(ctx, args, conf, pin_env_name(cfg.pin_source));
    }
    if (ret != TC_OK)
        goto out;
    if (out != NULL) {
        ret = db_open(ctx, dir, 0, &db);
        if (ret == TC_OK)
            ret = request_load(ctx, db, id, out);
    }
out:
    if (db != NULL)
        tc_db_close(db);
    tokencert_ca_request_clear(&r);
    config_clear(&cfg);
    free(conf);
    free(abs);
    free(dir);
    return ret;
}

tokencert_err tokencert_ca_reject(tokencert_ctx *ctx, const char *dir_in, long long id,
                                  const char *reason)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *dir = NULL;
    tc_db *db = NULL;
    sqlite3_stmt *st = NULL;
    tokencert_ca_request r;
    int in_tx = 0;

    memset(&r, 0, sizeof r);
    tc_return_val_if_fail(ctx != NULL, TC_ERR_INVALID_ARG);
    if (reason == NULL || reason[0] == '\0') {
        ret = tc_error(ctx, TC_ERR_INVALID_ARG, "a rejection needs a reason");
        goto out;
    }
    dir = resolve_dir(dir_in);
    if (dir == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    ret = db_open(ctx, dir, 0, &db);
    if (ret == TC_OK)
        ret = tc_db_begin(db);
    if (ret != TC_OK)
        goto out;
    in_tx = 1;
    ret = pending_request(ctx, db, id, &r);
    if (ret != TC_OK)
        goto out;
    ret = tc_db_prepare(db,
                        "UPDATE requests SET state = 'rejected', decided = ?, reason = ? "
                        "WHERE id = ? AND state = 'pending'",
                        &st);
    if (ret != TC_OK)
        goto out;
    tc_db_bind_int64(db, st, 1, tc_now());
    tc_db_bind_text(db, st, 2, reason);
    tc_db_bind_int64(db, st, 3, id);
    ret = tc_db_step_done(db, st, "recording the rejection");
    st = NULL;
    if (ret != TC_OK)
        goto out;
    /* Under the write lock the request was pending a moment ago: nothing else can have moved it. */
    if (sqlite3_changes(db->h) != 1) {
        ret = tc_error(ctx, TC_ERR_INTERNAL, "CA index %s: request %lld was not rejected", db->path,
                       id);
        goto out;
    }
    ret = tc_db_commit(db);
    if (ret == TC_OK)
        in_tx = 0;
out:
    sqlite3_finalize(st);
    if (db != NULL) {
        if (in_tx)
            tc_db_rollback(db);
        tc_db_close(db);
    }
    tokencert_ca_request_clear(&r);
    free(dir);
    return ret;
}

tokencert_err tokencert_ca_get(tokencert_ctx *ctx, const char *dir_in, long long id,
                               tokencert_ca_request *out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *dir = NULL;
    tc_db *db = NULL;

    tc_return_val_if_fail(ctx != NULL && out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    dir = resolve_dir(dir_in);
    if (dir == NULL)
        return TC_ERR_NOMEM;
    ret = db_open(ctx, dir, 0, &db);
    if (ret == TC_OK)
        ret = request_load(ctx, db, id, out);
    if (db != NULL)
        tc_db_close(db);
    free(dir);
    return ret;
}

tokencert_err tokencert_ca_list(tokencert_ctx *ctx, const char *dir_in, tokencert_ca_request **out,
                                size_t *n_out)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *dir = NULL;
    tc_db *db = NULL;
    sqlite3_stmt *st = NULL;
    tokencert_ca_request *v = NULL, *nv;
    size_t n = 0, cap = 0;
    int row = 0;

    tc_return_val_if_fail(ctx != NULL && out != NULL && n_out != NULL, TC_ERR_INVALID_ARG);
    *out = NULL;
    *n_out = 0;
    dir = resolve_dir(dir_in);
    if (dir == NULL)
        return TC_ERR_NOMEM;
    ret = db_open(ctx, dir, 0, &db);
    if (ret != TC_OK)
        goto out;
    ret = tc_db_prepare(db, "SELECT " REQUEST_COLUMNS " FROM requests ORDER BY id", &st);
    if (ret != TC_OK)
        goto out;
    while ((ret = tc_db_step(db, st, "listing the requests", &row)) == TC_OK && row) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            nv = realloc(v, cap * sizeof *v);
            if (nv == NULL) {
                ret = TC_ERR_NOMEM;
                goto out;
            }
            v = nv;
        }
        ret = request_from_row(ctx, st, &v[n]);
        if (ret != TC_OK)
            goto out;
        n++;
    }
    if (ret != TC_OK)
        goto out;
    *out = v;
    *n_out = n;
    v = NULL;
    ret = TC_OK;
out:
    tokencert_ca_requests_free(v, n);
    sqlite3_finalize(st);
    if (db != NULL)
        tc_db_close(db);
    free(dir);
    return ret;
}

tokencert_err tokencert_ca_cert(tokencert_ctx *ctx, const char *dir_in, unsigned char **der,
                                size_t *len)
{
    tokencert_err ret = TC_ERR_INTERNAL;
    char *dir = NULL, *db_path = NULL;
    X509 *cert = NULL;

    tc_return_val_if_fail(ctx != NULL && der != NULL && len != NULL, TC_ERR_INVALID_ARG);
    *der = NULL;
    *len = 0;
    dir = resolve_dir(dir_in);
    db_path = dir != NULL ? tc_asprintf("%s/ca.db", dir) : NULL;
    if (db_path == NULL) {
        ret = TC_ERR_NOMEM;
        goto out;
    }
    if (access(db_path, F_OK) != 0) {
        ret = tc_error(ctx, TC_ERR_NOT_FOUND,
                       "there is no CA in '%s' (create one with: tokencert ca init --ca-dir %s)",
                       dir, dir);
        goto out;
    }
    ret = load_ca_cert(ctx, dir, &cert);
    if (ret == TC_OK)
        ret = cert_der(ctx, cert, der, len);
out:
    X509_free(cert);
    free(db_path);
    free(dir);
    return ret;
}

tokencert_err tc_ca_auto_approves(tokencert_ctx *ctx, const char *dir, int *yes)
{
    tc_db *db = NULL;
    ca_config cfg;
    tokencert_err ret;

    *yes = 0;
    memset(&cfg, 0, sizeof cfg);
    ret = db_open(ctx, dir, 0, &db);
    if (ret != TC_OK)
        return ret;
    ret = config_load(ctx, db, &cfg);
    if (ret == TC_OK)
        *yes = !cfg.manual;
    config_clear(&cfg);
    tc_db_close(db);
    return ret;
}
