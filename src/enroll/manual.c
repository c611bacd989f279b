/* manual.c — the CA reached by hand: submit writes the request as PEM into the CA's directory
 * (NAME-REQ.csr) for the user to hand over; poll takes the certificate from NAME-REQ.crt beside
 * it once the user put it there. */
#include "enroll/enroll.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common.h"

static char *manual_path(const tc_ca_call *call, const char *ext)
{
    return tc_asprintf("%s/%s-%lld.%s", call->dir, call->credential, call->request, ext);
}

/* Reads a certificate from a file: PEM or DER. */
static int read_cert_file(const char *path, unsigned char **der, size_t *len, char **why)
{
    BIO *b = BIO_new_file(path, "rb");
    X509 *x = NULL;
    int n;

    if (b == NULL) {
        *why = tc_asprintf("cannot read %s", path);
        return -1;
    }
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (x == NULL) {
        (void)BIO_reset(b);
        x = d2i_X509_bio(b, NULL);
    }
    BIO_free(b);
    if (x == NULL) {
        *why = tc_asprintf("%s holds no certificate (PEM or DER)", path);
        return -1;
    }
    *der = NULL;
    n = i2d_X509(x, der);
    X509_free(x);
    if (n <= 0) {
        *why = tc_asprintf("%s: the certificate cannot be encoded", path);
        return -1;
    }
    *len = (size_t)n;
    return 0;
}

static void manual_submit(const tc_ca_call *call, const unsigned char *csr, size_t csr_len,
                          tc_ca_answer *ans)
{
    char *path = manual_path(call, "csr");
    FILE *f = path != NULL ? fopen(path, "w") : NULL;
    BIO *b = f != NULL ? BIO_new_fp(f, BIO_NOCLOSE) : NULL;
    int ok = b != NULL && PEM_write_bio(b, "CERTIFICATE REQUEST", "", csr, (long)csr_len) > 0 &&
             BIO_flush(b) == 1;

    BIO_free(b);
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    if (!ok) {
        ans->kind = TC_CA_ERROR;
        ans->reason =
            tc_asprintf("cannot write the request to %s: %s", path ? path : "?", strerror(errno));
    } else {
        ans->kind = TC_CA_PENDING;
        ans->handle = tc_asprintf("%s-%lld", call->credential, call->request);
        ans->notice = tc_asprintf("%s: the request is in %s: give it to the CA and put the "
                                  "certificate in %s-%lld.crt beside it, then run tokencert poll",
                                  call->credential, path, call->credential, call->request);
    }
    free(path);
}

static void manual_poll(const tc_ca_call *call, tc_ca_answer *ans)
{
    char *path = manual_path(call, "crt");
    if (path != NULL && access(path, F_OK) == 0) {
        if (read_cert_file(path, &ans->cert, &ans->cert_len, &ans->reason) == 0)
            ans->kind = TC_CA_ISSUED;
        else
            ans->kind = TC_CA_ERROR;
    } else {
        ans->kind = TC_CA_PENDING;
    }
    free(path);
}

/* Set aside, so that the retry waits for a new file instead of reading the refused one again. */
static char *manual_refused(const tc_ca_call *call)
{
    char *crt = manual_path(call, "crt"), *aside = manual_path(call, "crt.refused"), *msg = NULL;
    if (crt != NULL && aside != NULL && rename(crt, aside) == 0)
        msg = tc_asprintf("%s: the refused certificate is now %s", call->credential, aside);
    free(crt);
    free(aside);
    return msg;
}

const tc_ca_backend tc_ca_manual = {"manual", manual_submit, manual_poll, manual_refused};
