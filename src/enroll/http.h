/* http.h — the one HTTP client the network CA protocols share (libcurl): TLS verified by
 * default, the CA's ca_file as the trust anchor, bounded in time and in what it reads. */
#ifndef TOKENCERT_ENROLL_HTTP_H
#define TOKENCERT_ENROLL_HTTP_H

#include <stddef.h>

/* Caps an answer: CA answers are a certificate or two, never megabytes. */
#define TC_HTTP_MAX_RESPONSE (1024 * 1024)

typedef struct {
    long status;         /* the HTTP status */
    unsigned char *body; /* NUL-terminated for convenience; len excludes the NUL */
    size_t len;
} tc_http_response;

void tc_http_response_clear(tc_http_response *r);

/* POSTs body to url (https://, or http:// where the protocol allows it: the configuration
 * decides). ca_file: trust anchors (PEM) for the server's certificate; NULL: the system's. No
 * redirects are followed. Returns 0 when an answer came, whatever its status; -1 when none
 * did, with *why saying what went wrong (never the body sent, which may hold a secret). */
int tc_http_post(const char *url, const char *ca_file, const char *content_type,
                 const unsigned char *body, size_t len, tc_http_response *out, char **why);

#endif /* TOKENCERT_ENROLL_HTTP_H */
