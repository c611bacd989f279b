/* fuzz_cfssl.c — libFuzzer target for cfssl's answer parser (src/enroll/cfssl.c): any bytes,
 * under any HTTP status, give an outcome without a crash, a leak or a certificate that is not
 * one. Built with -DTOKENCERT_FUZZ=ON (clang); see tests/fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll/enroll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 400, 500};
    tc_ca_answer a;

    memset(&a, 0, sizeof a);
    /* The first byte picks the status, so that every branch is reached. */
    if (size == 0)
        return 0;
    tc_cfssl_parse_answer(statuses[data[0] % 3], data + 1, size - 1, &a);
    if ((a.kind == TC_CA_ISSUED) != (a.cert != NULL && a.cert_len > 0))
        abort();
    if (a.kind != TC_CA_ISSUED && a.reason == NULL)
        abort();
    tc_ca_answer_clear(&a);
    return 0;
}
