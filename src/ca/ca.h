/* ca/ca.h — the embedded CA's halves: what runs inside the signer process (tokencert-ca-sign),
 * and how the library runs that process. Never installed. */
#ifndef TOKENCERT_SRC_CA_CA_H
#define TOKENCERT_SRC_CA_CA_H

#include "token/token.h"

/* The signer's file name, under the libexec directory (TOKENCERT_LIBEXECDIR overrides it). */
#define TC_CA_SIGNER "tokencert-ca-sign"

/* ---- inside the signer (ca.c) ---- */
/* The parts of tokencert_ca_init() and tokencert_ca_approve() that touch the CA's token. They load
 * the token's module in this process: with a token of the CA's own, SOFTHSM2_CONF must already
 * name dir/softhsm2.conf in this process's environment (set at execve) and SoftHSM must not be
 * loaded yet. dir is absolute, made and checked by the caller for init. */
tokencert_err tc_ca_init_signer(tokencert_ctx *ctx, const char *dir, const tokencert_ca_params *p);
tokencert_err tc_ca_approve_signer(tokencert_ctx *ctx, const char *dir, long long id);

/* Whether the CA in dir approves requests by itself (its configuration says "auto"). */
tokencert_err tc_ca_auto_approves(tokencert_ctx *ctx, const char *dir, int *yes);

/* ---- the library's side (spawn.c) ---- */
/* Runs the signer with args (args[0] is the verb; NULL-terminated), without a shell, in a fresh
 * environment: a few variables passed through (see spawn.c), SOFTHSM2_CONF set to softhsm_conf
 * when it is not NULL (else the caller's passed through), and the variable pin_env when the CA's
 * PIN source names one. Waits for it, with a timeout. A failure comes back as the signer's
 * tokencert_err with its message as the detail, or names the signer and what went wrong. */
tokencert_err tc_ca_signer_run(tokencert_ctx *ctx, const char *const *args,
                               const char *softhsm_conf, const char *pin_env);

#endif /* TOKENCERT_SRC_CA_CA_H */
