/* keys/destroy.h — removing a key pair again (a key made by a step that then failed). Kept apart
 * from keys.h so that this small addition does not touch the keys layer's main header. */
#ifndef TOKENCERT_SRC_KEYS_DESTROY_H
#define TOKENCERT_SRC_KEYS_DESTROY_H

#include "keys/keys.h"

/* Destroys k's private key object and its public key object when there is one. The session
 * forgets its keys, k included: the caller still drops its own reference with tc_key_free(). */
tokencert_err tc_key_destroy(tokencert_ctx *ctx, tc_key *k);

#endif /* TOKENCERT_SRC_KEYS_DESTROY_H */
