/* filter.h — which of a token's objects tokencert-pkcs11.so hides from applications.
 *
 * The view is computed from the token's objects alone, read through the wrapped module's own
 * function list on the application's session, and judged by the library's one rule
 * (src/inventory/classify.c): a credential is a key (private or public) and the certificates
 * sharing its CKA_ID, credentials are grouped by name (the key's label), and of each group only
 * the current certificate (or, with TC_P11CFG_SHOW_VALID, every valid one) and the keys of the
 * certificates shown stay visible. Certificates without a key on the token, and authority
 * certificates (CKA_CERTIFICATE_CATEGORY 2), are never hidden; other kinds of object neither. */
#ifndef TOKENCERT_PKCS11_FILTER_H
#define TOKENCERT_PKCS11_FILTER_H

#include <stddef.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include "config.h"

/* A sorted set of object handles. */
typedef struct {
    CK_OBJECT_HANDLE *h;
    size_t n;
} tc_filter_set;

/* Reads the objects the session can see and sets *hidden to those the filter hides at now.
 * Runs a search on the session: the caller makes sure none of its own is active. */
CK_RV tc_filter_hidden(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, tc_p11cfg_show show, time_t now,
                       tc_filter_set *hidden);
int tc_filter_contains(const tc_filter_set *set, CK_OBJECT_HANDLE h);
void tc_filter_set_free(tc_filter_set *set);

#endif /* TOKENCERT_PKCS11_FILTER_H */
