/* token/init.h — making a new token on a module's free slot (the embedded CA's own SoftHSM token).
 * Kept apart from token.h so that this small addition does not touch the token layer's main
 * header. Never installed. */
#ifndef TOKENCERT_SRC_TOKEN_INIT_H
#define TOKENCERT_SRC_TOKEN_INIT_H

#include "token/token.h"

/* Initialises the first present, uninitialised token of the loaded modules with label and so_pin
 * (C_InitToken), then logs in as the SO and sets its user PIN (C_InitPIN). The token is found
 * again by its label afterwards, because some modules (SoftHSM) move a token to another slot when
 * it is initialised: label must be unique among the loaded tokens. Both PINs are only read. */
tokencert_err tc_token_create(tokencert_ctx *ctx, const char *label, const char *so_pin,
                              const char *user_pin);

#endif /* TOKENCERT_SRC_TOKEN_INIT_H */
