/* cfssl.c — CloudFlare's cfssl as a CA: the request goes to /api/v1/cfssl/sign, or, when the CA
 * takes HMAC authentication, wrapped in a token to /api/v1/cfssl/authsign. cfssl signs at once:
 * an answer is a certificate, a refusal with cfssl's message, or an error; never pending. */
#include "enroll/enroll.h"
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common.h"
#include "enroll/http.h"
#include "token/token.h"

#define HMAC_KEY_MAX 128 /* bytes of a decoded HMAC key */
#define MESSAGE_CAP  512 /* bytes of cfssl's messages shown */
#define JSON_DEPTH   16

static void set_error(tc_ca_answer *ans, tc_ca_outcome kind, char *reason)
{
    ans->kind = kind;
    free(ans->reason);
    ans->reason = reason != NULL ? reason : tc_strdup("out of memory");
}

/* cfssl's errors: "message (code N)" for each, joined with "; ", cleaned and bounded. */
static char *error_messages(json_object *root)
{
    json_object *errs = NULL, *e, *m, *code;
    char *all = NULL, *one, *next;
    size_t i, n;

    if (!json_object_object_get_ex(root, "errors", &errs) ||
        !json_object_is_type(errs, json_type_array))
        return NULL;
    n = json_object_array_length(errs);
    for (i = 0; i < n && i < 4; i++) {
        e = json_object_array_get_idx(errs, i);
        if (!json_object_is_type(e, json_type_object) ||
            !json_object_object_get_ex(e, "message", &m) ||
            !json_object_is_type(m, json_type_string))
            continue;
        one = tc_printable((const unsigned char *)json_object_get_string(m),
                           (size_t)json_object_get_string_len(m), MESSAGE_CAP);
        if (one == NULL)
            break;
        if (json_object_object_get_ex(e, "code", &code) && json_object_is_type(code, json_type_int))
            next =
                tc_asprintf("%s%s%s (code %lld)", all != NULL ? all : "", all != NULL ? "; " : "",
                            one, (long long)json_object_get_int64(code));
        else
            next = tc_asprintf("%s%s%s", all != NULL ? all : "", all != NULL ? "; " : "", one);
        free(one);
        free(all);
        all = next;
        if (all == NULL)
            break;
    }
    return all;
}

/* The PEM certificate of a successful answer, as DER. */
static int pem_to_der(const char *pem, size_t len, tc_ca_answer *ans)
{
    BIO *b = NULL;
    X509 *x = NULL;
    int n, ret = -1;

    if (len > TC_HTTP_MAX_RESPONSE || (b = BIO_new_mem_buf(pem, (int)len)) == NULL)
        goto out;
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (x == NULL)
        goto out;
    ans->cert = NULL;
    n = i2d_X509(x, &ans->cert);
    if (n <= 0) {
        ans->cert = NULL;
        goto out;
    }
    ans->cert_len = (size_t)n;
    ret = 0;
out:
    X509_free(x);
    BIO_free(b);
    return ret;
}

void tc_cfssl_parse_answer(long status, const unsigned char *body, size_t len, tc_ca_answer *ans)
{
    json_tokener *tok = NULL;
    json_object *root = NULL, *v = NULL, *result = NULL, *cert = NULL;
    char *msgs = NULL;
    int success = 0;
    size_t i;

    tc_ca_answer_clear(ans);
    if (len > TC_HTTP_MAX_RESPONSE || len > (size_t)INT32_MAX) {
        set_error(ans, TC_CA_ERROR, tc_strdup("the cfssl CA's answer is too large"));
        goto out;
    }
    tok = json_tokener_new_ex(JSON_DEPTH);
    if (tok == NULL) {
        set_error(ans, TC_CA_ERROR, NULL);
        goto out;
    }
    root = json_tokener_parse_ex(tok, (const char *)body, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(root, json_type_object)) {
        set_error(
            ans, TC_CA_ERROR,
            status >= 200 && status < 300
                ? tc_strdup("the cfssl CA answered something that is not a JSON object")
                : tc_asprintf("the cfssl CA answered HTTP %ld without a JSON answer", status));
        goto out;
    }
    for (i = json_tokener_get_parse_end(tok); i < len; i++)
        if (strchr(" \t\r\n", body[i]) == NULL || body[i] == '\0') {
            set_error(ans, TC_CA_ERROR,
                      tc_strdup("the cfssl CA's answer goes on after its JSON object"));
            goto out;
        }
    if (json_object_object_get_ex(root, "success", &v) && json_object_is_type(v, json_type_boolean))
        success = json_object_get_boolean(v);
    else
        v = NULL;
    msgs = error_messages(root);

    if (status >= 500 || (status >= 300 && status < 400) || status < 200) {
        set_error(ans, TC_CA_ERROR,
                  tc_asprintf("the cfssl CA failed (HTTP %ld): %s", status,
                              msgs != NULL ? msgs : "no message"));
        goto out;
    }
    if (status < 400 && v == NULL) {
        set_error(ans, TC_CA_ERROR,
                  tc_strdup("the cfssl CA's answer has no success true or false"));
        goto out;
    }
    if (status >= 400 || !success) {
        /* The CA looked at the request and said no: bad CSR, policy, authentication. */
        set_error(ans, TC_CA_REJECTED,
                  tc_asprintf("the cfssl CA refused the request (HTTP %ld): %s", status,
                              msgs != NULL ? msgs : "no message"));
        goto out;
    }
    if (!json_object_object_get_ex(root, "result", &result) ||
        !json_object_is_type(result, json_type_object) ||
        !json_object_object_get_ex(result, "certificate", &cert) ||
        !json_object_is_type(cert, json_type_string)) {
        set_error(ans, TC_CA_ERROR, tc_strdup("the cfssl CA's answer has no result.certificate"));
        goto out;
    }
    if (pem_to_der(json_object_get_string(cert), (size_t)json_object_get_string_len(cert), ans) !=
        0) {
        set_error(ans, TC_CA_ERROR,
                  tc_strdup("the cfssl CA's result.certificate is not a PEM certificate"));
        goto out;
    }
    ans->kind = TC_CA_ISSUED;
out:
    free(msgs);
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
}

/* base64 without line breaks. */
static char *b64(const unsigned char *p, size_t n)
{
    char *out;
    if (n > (size_t)INT32_MAX / 2)
        return NULL;
    out = malloc(4 * ((n + 2) / 3) + 1);
    if (out != NULL)
        (void)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* {"token": base64(HMAC-SHA256(key, request)), "request": base64(request)}; the key read from
 * the CA's secret_source as hex, wiped after use. */
static char *authsign_body(const tc_ca_call *call, const char *request, char **why)
{
    unsigned char key[HMAC_KEY_MAX], mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char *hex = NULL, *tok64 = NULL, *req64 = NULL, *body = NULL;
    json_object *o = NULL;
    long klen;

    *why = NULL;
    if (call->config->secret_source == NULL) {
        *why = tc_strdup("auth = \"hmac\" needs secret_source");
        goto out;
    }
    if (tc_pin_from_source(call->ctx, call->config->secret_source, &hex) != TC_OK) {
        *why = tc_asprintf("cannot read the HMAC key: %s", tokencert_ctx_error(call->ctx));
        goto out;
    }
    klen = tc_hex_decode(hex, key, sizeof key);
    if (klen <= 0) {
        *why = tc_strdup("the HMAC key from secret_source is not hex digits (at most 128 bytes)");
        goto out;
    }
    if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)request, strlen(request), mac,
             &mac_len) == NULL) {
        *why = tc_strdup("HMAC-SHA256 failed");
        goto out;
    }
    tok64 = b64(mac, mac_len);
    req64 = b64((const unsigned char *)request, strlen(request));
    o = json_object_new_object();
    if (tok64 == NULL || req64 == NULL || o == NULL ||
        json_object_object_add(o, "token", json_object_new_string(tok64)) != 0 ||
        json_object_object_add(o, "request", json_object_new_string(req64)) != 0)
        goto out;
    body = tc_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
    tc_memzero(key, sizeof key);
    tc_memzero(mac, sizeof mac);
    tc_secret_free(hex);
    free(tok64);
    free(req64);
    json_object_put(o);
    if (body == NULL && *why == NULL)
        *why = tc_strdup("out of memory");
    return body;
}

static char *csr_pem(const unsigned char *csr, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out = NULL;
    long n;

    if (b != NULL && PEM_write_bio(b, "CERTIFICATE REQUEST", "", csr, (long)len) > 0 &&
        (n = BIO_get_mem_data(b, &p)) > 0)
        out = tc_strndup(p, (size_t)n);
    BIO_free(b);
    return out;
}

static void cfssl_submit(const tc_ca_call *call, const unsigned char *csr, size_t csr_len,
                         tc_ca_answer *ans)
{
    const tokencert_config_ca *cfg = call->config;
    int hmac = cfg != NULL && cfg->auth != NULL && strcmp(cfg->auth, "hmac") == 0;
    char *pem = NULL, *request = NULL, *body = NULL, *url = NULL, *why = NULL;
    json_object *o = NULL;
    tc_http_response r;
    size_t ulen;

    memset(&r, 0, sizeof r);
    if (cfg == NULL || cfg->url == NULL) {
        set_error(ans, TC_CA_ERROR, tc_strdup("the cfssl CA has no url"));
        goto out;
    }
    pem = csr_pem(csr, csr_len);
    o = json_object_new_object();
    if (pem == NULL || o == NULL ||
        json_object_object_add(o, "certificate_request", json_object_new_string(pem)) != 0 ||
        (cfg->profile != NULL &&
         json_object_object_add(o, "profile", json_object_new_string(cfg->profile)) != 0) ||
        (request = tc_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN))) == NULL) {
        set_error(ans, TC_CA_ERROR, NULL);
        goto out;
    }
    if (hmac) {
        body = authsign_body(call, request, &why);
        if (body == NULL) {
            set_error(ans, TC_CA_ERROR, tc_asprintf("cfssl CA '%s': %s", call->ca, why));
            goto out;
        }
    } else {
        body = request;
        request = NULL;
    }
    ulen = strlen(cfg->url);
    while (ulen > 0 && cfg->url[ulen - 1] == '/')
        ulen--;
    url = tc_asprintf("%.*s/api/v1/cfssl/%s", (int)ulen, cfg->url, hmac ? "authsign" : "sign");
    if (url == NULL) {
        set_error(ans, TC_CA_ERROR, NULL);
        goto out;
    }
    if (tc_ca_fault("submit")) {
        set_error(ans, TC_CA_ERROR, tc_strdup("the cfssl CA did not answer (test fault)"));
        goto out;
    }
    if (tc_http_post(url, cfg->ca_file, "application/json", (const unsigned char *)body,
                     strlen(body), &r, &why) != 0) {
        set_error(ans, TC_CA_ERROR, tc_asprintf("cfssl CA '%s': %s", call->ca, why));
        goto out;
    }
    tc_cfssl_parse_answer(r.status, r.body, r.len, ans);
out:
    free(why);
    free(pem);
    free(request);
    free(body);
    free(url);
    json_object_put(o);
    tc_http_response_clear(&r);
}

/* Never pending, so never asked again; a poll can only mean a request recorded before. */
static void cfssl_poll(const tc_ca_call *call, tc_ca_answer *ans)
{
    (void)call;
    set_error(ans, TC_CA_ERROR,
              tc_strdup("cfssl signs at once and keeps no pending requests: submit again"));
}

const tc_ca_backend tc_ca_cfssl = {"cfssl", cfssl_submit, cfssl_poll, NULL};
