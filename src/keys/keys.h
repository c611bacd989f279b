/* keys/keys.h — keys on the token: the key an object URI or CKA_ID selects, public keys read from
 * key objects, CKA_ID derivation, key generation. Never installed. */
#ifndef TOKENCERT_SRC_KEYS_KEYS_H
#define TOKENCERT_SRC_KEYS_KEYS_H

#include "token/token.h"

/* ---- token keys (key.c) ---- */
/* A private key on the token, with its public half read once. Reference-counted: the session
 * keeps one reference until it closes, tc_key_free() drops the caller's. */
struct tc_key {
    int refs;
    tc_session *session; /* borrowed: must outlive the key */
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub; /* CK_INVALID_HANDLE when the token has no public-key object for it */
    CK_KEY_TYPE ck_type;  /* CKK_RSA, CKK_EC, CKK_EC_EDWARDS */
    unsigned char *id;
    size_t id_len;
    char *label;
    EVP_PKEY *pub_pkey; /* the public key, as a plain OpenSSL key in tc_libctx() */
    int bits;
};

/* The one private key that the object attributes of uri (id=, object=) select on s, with its
 * public half. TC_ERR_NOT_FOUND when none, TC_ERR_INVALID_ARG naming them when several. */
tokencert_err tc_key_open(tokencert_ctx *ctx, tc_session *s, P11KitUri *uri, tc_key **out);
/* The private key whose CKA_ID is id. */
tokencert_err tc_key_open_id(tokencert_ctx *ctx, tc_session *s, const unsigned char *id,
                             size_t id_len, tc_key **out);
void tc_key_free(tc_key *k);
/* Makes a key just generated known to its session without reading it back; takes over pub_pkey.
 * Returns the session's reference (not the caller's) or NULL when out of memory. */
tc_key *tc_key_remember(tc_session *s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
                        CK_KEY_TYPE type, const unsigned char *id, size_t id_len, const char *label,
                        EVP_PKEY *pub_pkey);
/* Drops the keys a session knows (when objects were deleted, and at close). */
void tc_session_forget_keys(tc_session *s);
/* The public key of a key object (private or public) from its attributes: CKA_MODULUS and
 * CKA_PUBLIC_EXPONENT, or CKA_EC_PARAMS and CKA_EC_POINT. */
tokencert_err tc_pubkey_read(tokencert_ctx *ctx, tc_session *s, CK_OBJECT_HANDLE obj,
                             CK_KEY_TYPE type, EVP_PKEY **out);
/* The CKA_ID derived from a public key, the rule OpenSC and NSS follow: SHA-1 of the RSA modulus
 * (unsigned big-endian, no leading zeros), of the EC point (uncompressed, the bare octets), or of
 * the EdDSA public key. */
tokencert_err tc_key_id_for(tokencert_ctx *ctx, EVP_PKEY *pub, unsigned char id[20]);

/* ---- key generation (keygen.c) ---- */
/* Generates a key pair of type ("rsa:2048", ...) on s, with CKA_ID derived from the public key and
 * label on both objects. Leaves nothing behind on failure. id_out (20 bytes) may be NULL. */
tokencert_err tc_keygen(tokencert_ctx *ctx, tc_session *s, const char *type, const char *label,
                        int shared_label, unsigned char id_out[20], size_t *id_len);

#endif /* TOKENCERT_SRC_KEYS_KEYS_H */
