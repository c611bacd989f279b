/* keys/keys.h — keys on the token: the key an object URI or CKA_ID selects, public keys read from
 * key objects, CKA_ID derivation, key generation. Never installed. */
#ifndef TOKENCERT_SRC_KEYS_KEYS_H
#define TOKENCERT_SRC_KEYS_KEYS_H

#include "token/token.h"

#include <openssl/x509.h>

/* ---- token keys (key.c) ---- */
/* A private key on the token, with its public half read once. Reference-counted: the session
 * keeps one reference until it closes, tc_key_free() drops the caller's. */
struct tc_key {
    int refs;
    tc_session *session; /* borrowed: must outlive the key */
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub; /* CK_INVALID_HANDLE when the token has no public-key object for it */
    tc_key_type type;     /* RSA, EC or EdDSA */
    unsigned char *id;
    size_t id_len;
    char *label;
    EVP_PKEY *pub_pkey; /* the public key, as a plain OpenSSL key in tc_libctx_plain() */
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
                        tc_key_type type, const unsigned char *id, size_t id_len, const char *label,
                        EVP_PKEY *pub_pkey);
/* Drops the keys a session knows (when objects were deleted, and at close). */
void tc_session_forget_keys(tc_session *s);
/* The public key of a key object (private or public) from its attributes: CKA_MODULUS and
 * CKA_PUBLIC_EXPONENT, or CKA_EC_PARAMS and CKA_EC_POINT. */
tokencert_err tc_pubkey_read(tokencert_ctx *ctx, tc_session *s, tc_object_ref obj, tc_key_type type,
                             EVP_PKEY **out);
/* The CKA_ID derived from a public key, the rule OpenSC and NSS follow: SHA-1 of the RSA modulus
 * (unsigned big-endian, no leading zeros), of the EC point (uncompressed, the bare octets), or of
 * the EdDSA public key. */
tokencert_err tc_key_id_for(tokencert_ctx *ctx, EVP_PKEY *pub, unsigned char id[20]);

/* ---- key generation (keygen.c) ---- */
/* Generates a key pair of type ("rsa:2048", ...) on s, with CKA_ID derived from the public key and
 * label on both objects. Leaves nothing behind on failure. id_out (20 bytes) may be NULL. */
tokencert_err tc_keygen(tokencert_ctx *ctx, tc_session *s, const char *type, const char *label,
                        int shared_label, unsigned char id_out[20], size_t *id_len);

/* The private-key attribute policy, the one place it is written: token object, private,
 * sensitive, never extractable, for signing (and decryption for RSA keys) only. Appends to tmpl
 * (at least TC_KEY_POLICY_N free entries) and returns the number of attributes added. Used for
 * generated keys and for keys imported from PKCS#12 alike. deny_other_usages also writes the
 * usages not granted as false: for C_CreateObject, where tokens default them inconsistently; not
 * for C_GenerateKeyPair, where tpm2-pkcs11 refuses a template that contradicts its own defaults. */
size_t tc_key_private_policy(CK_ATTRIBUTE *tmpl, CK_KEY_TYPE type, int deny_other_usages);

/* ---- private operations on a token key (sign.c) ---- */
typedef enum {
    TC_HASH_NONE = 0,
    TC_HASH_SHA1,
    TC_HASH_SHA224,
    TC_HASH_SHA256,
    TC_HASH_SHA384,
    TC_HASH_SHA512,
} tc_hash;

typedef enum {
    TC_SIGN_RSA_PKCS1, /* RSA PKCS#1 v1.5 over the input as given (a DigestInfo) */
    TC_SIGN_RSA_PSS,   /* RSA-PSS over a digest made with hash; mgf1 and salt_len */
    TC_SIGN_ECDSA,     /* raw ECDSA over a digest; the signature is r || s */
    TC_SIGN_EDDSA,     /* EdDSA over the message itself */
} tc_sign_mech;

typedef struct {
    tc_sign_mech mech;
    tc_hash hash; /* PSS */
    tc_hash mgf1; /* PSS */
    size_t salt_len;
} tc_sign_alg;

typedef enum {
    TC_DECRYPT_RSA_PKCS1,
    TC_DECRYPT_RSA_OAEP, /* hash, mgf1 and label */
} tc_decrypt_mech;

typedef struct {
    tc_decrypt_mech mech;
    tc_hash hash;
    tc_hash mgf1;
    const unsigned char *label;
    size_t label_len;
} tc_decrypt_alg;

/* Signs in with the token key over its session: *sig_len is sig's size on input, the signature's
 * length on output. A failure is recorded in ctx (which may be NULL) naming the token, the call
 * and the token's answer. */
tokencert_err tc_key_sign(tokencert_ctx *ctx, tc_key *k, const tc_sign_alg *alg,
                          const unsigned char *in, size_t in_len, unsigned char *sig,
                          size_t *sig_len);
/* Decrypts in with the token key; *out_len is out's size on input. Recorded like tc_key_sign. */
tokencert_err tc_key_decrypt(tokencert_ctx *ctx, tc_key *k, const tc_decrypt_alg *alg,
                             const unsigned char *in, size_t in_len, unsigned char *out,
                             size_t *out_len);

/* ---- the objects of a session, for listings (scan.c) ---- */
/* One certificate or key object as a listing sees it. The visitor may take over (and then owns)
 * id, label and value by setting the pointer to NULL. */
typedef struct {
    tc_obj_class cls;
    tc_object_ref ref;
    unsigned char *id; /* NULL when empty or absent */
    size_t id_len;
    unsigned char *label;
    size_t label_len;
    unsigned char *value; /* certificates: the DER, NULL when unreadable */
    size_t value_len;
    tc_key_type key_type; /* keys */
    int sensitive;        /* private keys: -1 unknown */
    int extractable;
} tc_object;

/* Called for each X.509 certificate, public key and private key; a result other than TC_OK
 * stops the scan and is returned. */
typedef tokencert_err (*tc_object_visit_fn)(void *data, tc_object *o);

/* Visits every object the session can see with one search and one attribute read per object
 * (plus a read of a value too large for the first read): the floor for a listing. Objects whose
 * read fails are skipped with a warning, except when the token is gone or memory runs out. */
tokencert_err tc_objects_scan(tokencert_ctx *ctx, tc_session *s, size_t max_objects,
                              tc_object_visit_fn visit, void *data);

/* What pairs a key without a certificate by CKA_ID with one by public key: SHA-256 of its RSA
 * modulus (no leading zeros) or of its EC point (the bare octets), and its size in bits (0 when
 * unknown). The point is read only when read_point (a private EC key may not reveal it).
 * *has_hash is 0 when the material could not be read. */
tokencert_err tc_key_material_hash(tokencert_ctx *ctx, tc_session *s, tc_object_ref obj,
                                   tc_key_type type, int read_point, unsigned char hash[32],
                                   int *has_hash, int *bits);

/* ---- keys on the token, every one (keylist.c) ---- */
/* A key on the token: its private and public objects (TC_OBJECT_NONE when absent) that share a
 * CKA_ID and type. */
#define TC_OBJECT_NONE ((tc_object_ref)0)
typedef struct {
    unsigned char *id;
    size_t id_len;
    char *label; /* printable, never NULL */
    tc_key_type type;
    tc_object_ref priv, pub;
} tc_key_entry;

/* Every key on the token: one search per class and one read per key object. */
tokencert_err tc_keys_list(tokencert_ctx *ctx, tc_session *s, size_t max_keys, tc_key_entry **out,
                           size_t *n_out);
void tc_key_entries_free(tc_key_entry *v, size_t n);

/* ---- writing objects (store.c) ---- */
/* Stores cert as a certificate object (id, label, subject, issuer, serial number and value; the
 * authority category when authority). An identical certificate already on the token is not
 * written again (*existed set). created (may be NULL) receives the new object, TC_OBJECT_NONE
 * when none was written. */
tokencert_err tc_cert_store(tokencert_ctx *ctx, tc_session *s, X509 *cert, const unsigned char *id,
                            size_t id_len, const char *label, int authority, int *existed,
                            tc_object_ref *created);
/* Writes a private key from outside (a PKCS#12 file) and its public key, with the private-key
 * policy, id (20 bytes) and label on both. what names the source in messages. priv and pub
 * receive the objects made; on failure nothing written is left behind. RSA, EC and Ed25519. */
tokencert_err tc_key_write(tokencert_ctx *ctx, tc_session *s, EVP_PKEY *pkey,
                           const unsigned char id[20], const char *label, const char *what,
                           tc_object_ref *priv, tc_object_ref *pub);
/* Destroys an object this library wrote (rolling back a write); errors are ignored. */
void tc_object_destroy(tc_session *s, tc_object_ref obj);

#endif /* TOKENCERT_SRC_KEYS_KEYS_H */
