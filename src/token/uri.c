/* uri.c — pkcs11: URIs for callers outside the library: the objects of one label (and id, and
 * class) on a token, built with p11-kit's URI API so that every value is percent-encoded as
 * RFC 7512 says. */
#include "token/token.h"

#include <string.h>

char *tokencert_object_uri(const char *token_uri, const char *label, const char *id_hex,
                           const char *cls)
{
    P11KitUri *uri = p11_kit_uri_new();
    CK_ATTRIBUTE a;
    CK_OBJECT_CLASS oc;
    unsigned char id[64];
    long n;
    char *out = NULL;

    if (uri == NULL)
        return NULL;
    if (p11_kit_uri_parse(token_uri != NULL ? token_uri : "pkcs11:", P11_KIT_URI_FOR_ANY, uri) !=
        P11_KIT_URI_OK)
        goto out;
    if (label != NULL) {
        a.type = CKA_LABEL;
        a.pValue = (void *)label;
        a.ulValueLen = strlen(label);
        p11_kit_uri_set_attribute(uri, &a);
    }
    if (id_hex != NULL) {
        n = tc_hex_decode(id_hex, id, sizeof id);
        if (n < 0)
            goto out;
        a.type = CKA_ID;
        a.pValue = id;
        a.ulValueLen = (CK_ULONG)n;
        p11_kit_uri_set_attribute(uri, &a);
    }
    if (cls != NULL) {
        if (strcmp(cls, "cert") == 0)
            oc = CKO_CERTIFICATE;
        else if (strcmp(cls, "private") == 0)
            oc = CKO_PRIVATE_KEY;
        else if (strcmp(cls, "public") == 0)
            oc = CKO_PUBLIC_KEY;
        else
            goto out;
        a.type = CKA_CLASS;
        a.pValue = &oc;
        a.ulValueLen = sizeof oc;
        p11_kit_uri_set_attribute(uri, &a);
    }
    if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_ANY, &out) != P11_KIT_URI_OK)
        out = NULL;
out:
    p11_kit_uri_free(uri);
    return out;
}
