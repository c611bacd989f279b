/* http.c — POST through libcurl for the network CA backends. Verifies the server (peer and host
 * name) always; the only choice left to the configuration is which anchors to trust. */
#include "enroll/http.h"
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common.h"

#define CONNECT_TIMEOUT 15L /* seconds */
#define TOTAL_TIMEOUT   60L

typedef struct {
    unsigned char *p;
    size_t len;
    int too_big;
} sink;

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
    sink *s = user;
    size_t n = size * nmemb;
    unsigned char *p;

    if (n > TC_HTTP_MAX_RESPONSE - s->len) {
        s->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    p = realloc(s->p, s->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + s->len, data, n);
    s->len += n;
    p[s->len] = '\0';
    s->p = p;
    return n;
}

void tc_http_response_clear(tc_http_response *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

int tc_http_post(const char *url, const char *ca_file, const char *content_type,
                 const unsigned char *body, size_t len, tc_http_response *out, char **why)
{
    CURL *c = NULL;
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE];
    char *ct = NULL;
    sink s = {NULL, 0, 0};
    CURLcode rc;
    int ret = -1;

    memset(out, 0, sizeof *out);
    *why = NULL;
    errbuf[0] = '\0';
    c = curl_easy_init();
    ct = tc_asprintf("Content-Type: %s", content_type);
    if (c == NULL || ct == NULL || (headers = curl_slist_append(NULL, ct)) == NULL) {
        *why = tc_strdup("out of memory");
        goto out;
    }
    /* Setting options on a valid handle fails only for want of memory or support; the ones that
     * matter for safety are checked. */
    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http") != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        (ca_file != NULL && curl_easy_setopt(c, CURLOPT_CAINFO, ca_file) != CURLE_OK)) {
        *why = tc_asprintf("cannot set up the connection to %s", url);
        goto out;
    }
    (void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    (void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT, TOTAL_TIMEOUT);
    (void)curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    (void)curl_easy_setopt(c, CURLOPT_POST, 1L);
    (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    (void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    (void)curl_easy_setopt(c, CURLOPT_USERAGENT, "tokencert");

    rc = curl_easy_perform(c);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
        *why = tc_asprintf("TLS verification of %s failed: %s%s", url,
                           errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc),
                           ca_file != NULL ? " (trust anchors: ca_file)" : "");
        goto out;
    }
    if (rc == CURLE_WRITE_ERROR && s.too_big) {
        *why = tc_asprintf("%s answered more than %d bytes", url, TC_HTTP_MAX_RESPONSE);
        goto out;
    }
    if (rc != CURLE_OK) {
        *why = tc_asprintf("cannot reach %s: %s", url,
                           errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
        goto out;
    }
    (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (s.p == NULL && (s.p = calloc(1, 1)) == NULL) {
        *why = tc_strdup("out of memory");
        goto out;
    }
    out->body = s.p;
    out->len = s.len;
    s.p = NULL;
    ret = 0;
out:
    free(s.p);
    free(ct);
    curl_slist_free_all(headers);
    if (c != NULL)
        curl_easy_cleanup(c);
    if (ret != 0 && *why == NULL)
        *why = tc_strdup("out of memory");
    return ret;
}
