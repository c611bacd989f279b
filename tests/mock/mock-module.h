/* mock-module.h — the test-only API of tc-mock.so, a PKCS#11 module for unit tests.
 *
 * tc-mock.so is a PKCS#11 v2.40 module with one slot holding one token whose objects live in
 * memory, in the manner of p11-kit's mock module. A unit test links it (for this API) and loads
 * the same file as a module through the code under test (tokencert_load_modules(ctx,
 * TC_MOCK_MODULE)); the dynamic loader maps it once, so objects put here are what the module
 * shows. Objects outlive C_Finalize, as on a real token; tc_mock_reset() empties the token.
 *
 * What it does: C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, sessions (read-only or
 * read-write), C_Login/C_Logout as the user with TC_MOCK_PIN, objects with any attributes
 * (CKA_PRIVATE ones seen only after login; the secret parts of sensitive or non-extractable keys
 * refused with CKR_ATTRIBUTE_SENSITIVE), C_FindObjects in batches, C_GetAttributeValue with the
 * spec's size queries and per-attribute errors, C_CreateObject, C_DestroyObject and
 * C_SetAttributeValue. Cryptography, through OpenSSL: C_GenerateKeyPair with CKM_EC_KEY_PAIR_GEN
 * on P-256 only (the public key gets CKA_EC_POINT; the private key keeps its scalar in CKA_VALUE,
 * never read out when the key is sensitive or not extractable, as the library makes them), and
 * C_SignInit/C_Sign with CKM_ECDSA (the caller hashes) or CKM_ECDSA_SHA256, returning r || s; an
 * EC key a test puts on the token signs too when its CKA_VALUE holds its real scalar. The
 * mechanism list names those three. Everything else returns CKR_FUNCTION_NOT_SUPPORTED. Every
 * call is counted. Not thread-safe: one test thread at a time. */
#ifndef TOKENCERT_TESTS_MOCK_MOCK_MODULE_H
#define TOKENCERT_TESTS_MOCK_MOCK_MODULE_H

#include <p11-kit/pkcs11.h>

#define TC_MOCK_PIN         "1234"
#define TC_MOCK_SLOT_ID     7
#define TC_MOCK_TOKEN_LABEL "tokencert mock"
#define TC_MOCK_SERIAL      "MOCK0001"

/* Removes every object and session, logs out, zeroes the call counts, lifts the batch limit. */
void tc_mock_reset(void);
/* Puts an object with copies of attrs on the token; its handle, or 0 when out of memory. */
CK_OBJECT_HANDLE tc_mock_add_object(const CK_ATTRIBUTE *attrs, CK_ULONG n);
/* C_FindObjects returns at most n handles per call (0: as many as the caller asks for). */
void tc_mock_set_find_batch(CK_ULONG n);
/* Calls of the function named so ("C_FindObjects") since the last reset; NULL: all calls. */
unsigned long tc_mock_calls(const char *function);
/* Successful C_Login calls since the last reset. */
unsigned long tc_mock_logins(void);
/* Objects on the token whose attributes match tmpl, private ones included; not counted as a call,
 * and usable whether or not the module is initialised. */
unsigned long tc_mock_count_objects(const CK_ATTRIBUTE *tmpl, CK_ULONG n);

#endif /* TOKENCERT_TESTS_MOCK_MOCK_MODULE_H */
