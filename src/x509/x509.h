/* x509/x509.h — certificates, names and requests (certificates are written to the token by the
 * keys layer, tc_cert_store). Never installed. */
#ifndef TOKENCERT_SRC_X509_X509_H
#define TOKENCERT_SRC_X509_X509_H

#include "provider/provider.h"
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- certificates (x509.c) ---- */
/* Decodes what a listing needs from a DER certificate without a full X509 parse: fingerprints
 * always (so even an unreadable certificate can be identified), the rest when it parses.
 * keyhash receives SHA-256 of the public key material (RSA modulus, or EC/EdDSA point), the
 * value the inventory pairs keys and certificates by when their ids differ. On malformed
 * data returns TC_ERR_BAD_DATA with *why saying what was wrong. */
tokencert_err tc_cert_decode(const unsigned char *der, size_t len, tokencert_cert *out,
                             unsigned char keyhash[32], char **why);
void tc_cert_clear(tokencert_cert *c);
/* A name as RFC 4514 text (most specific RDN first), UTF-8 kept readable, control characters
 * escaped; NULL when out of memory. */
char *tc_name_string(const X509_NAME *name);

/* ---- requests (request.c) ---- */
/* An X509_NAME from an RFC 4514 string (most specific RDN first; parsed by OpenLDAP), in DER order.
 * Malformed or empty: TC_ERR_INVALID_ARG naming the part that is wrong. */
tokencert_err tc_name_parse(tokencert_ctx *ctx, const char *rfc4514, X509_NAME **out);
/* subjectAltName entries from "dns:NAME", "ip:ADDR", "email:ADDR", "uri:URI", each validated. */
tokencert_err tc_san_parse(tokencert_ctx *ctx, const char *const *san, size_t n,
                           GENERAL_NAMES **out);
/* The OpenSSL name of an accepted digest ("sha256" default, "sha384", "sha512"). */
tokencert_err tc_digest_name(tokencert_ctx *ctx, const char *digest, const char **name);
/* An unsigned request from p: subject, SAN extension request, challenge password, and pub when
 * not NULL. Free with tc_req_free(), which wipes the challenge password. */
tokencert_err tc_req_build(tokencert_ctx *ctx, const tokencert_csr_params *p, EVP_PKEY *pub,
                           X509_REQ **out);
/* Signs req with pkey (a key in tc_libctx(), token-backed or not) and digest (NULL: sha256;
 * ignored for EdDSA). */
tokencert_err tc_req_sign(tokencert_ctx *ctx, X509_REQ *req, EVP_PKEY *pkey, const char *digest);
void tc_req_free(X509_REQ *req);

#endif /* TOKENCERT_SRC_X509_X509_H */
