/* backend.c — the table of CA backends and what they share. */
#include "enroll/enroll.h"
#include <stdlib.h>
#include <string.h>

static const tc_ca_backend *const backends[] = {&tc_ca_local, &tc_ca_manual, &tc_ca_cfssl};
static const tc_ca_backend *test_backend;

void tc_ca_backend_set_test(const tc_ca_backend *b)
{
    test_backend = b;
}

const tc_ca_backend *tc_ca_backend_find(const char *protocol)
{
    size_t i;
    if (test_backend != NULL && protocol != NULL && strcmp(test_backend->protocol, protocol) == 0)
        return test_backend;
    for (i = 0; protocol != NULL && i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(backends[i]->protocol, protocol) == 0)
            return backends[i];
    return NULL;
}

void tc_ca_answer_clear(tc_ca_answer *a)
{
    size_t i;
    free(a->cert);
    for (i = 0; i < a->n_chain; i++)
        free(a->chain[i]);
    free(a->chain);
    free(a->chain_len);
    free(a->handle);
    free(a->reason);
    free(a->notice);
    memset(a, 0, sizeof *a);
}

int tc_ca_fault(const char *step)
{
    const char *on = getenv("TOKENCERT_TEST_CLOCK"), *f = getenv("TOKENCERT_TEST_CA_FAULT");
    return on != NULL && strcmp(on, "enable") == 0 && f != NULL && strcmp(f, step) == 0;
}
