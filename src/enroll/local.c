/* local.c — the embedded CA as a backend: submit files the request in the CA's directory (and,
 * with automatic approval, has the CA's helper sign it at once); poll reads its state back. */
#include "enroll/enroll.h"
#include "ca/ca.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void outcome(const tc_ca_call *call, long long id, tc_ca_answer *ans)
{
    tokencert_ca_request got;

    memset(&got, 0, sizeof got);
    if (tc_ca_fault("fetch")) {
        ans->kind = TC_CA_ERROR;
        ans->reason = tc_strdup("the local CA did not answer (test fault at fetch)");
        return;
    }
    if (tokencert_ca_get(call->ctx, call->dir, id, &got) != TC_OK) {
        ans->kind = TC_CA_ERROR;
        ans->reason =
            tc_asprintf("the local CA in %s: %s", call->dir, tokencert_ctx_error(call->ctx));
        return;
    }
    ans->handle = tc_asprintf("%lld", got.id);
    if (got.state == TOKENCERT_REQ_ISSUED) {
        ans->kind = TC_CA_ISSUED;
        ans->cert = got.cert;
        ans->cert_len = got.cert_len;
        got.cert = NULL;
    } else if (got.state == TOKENCERT_REQ_REJECTED) {
        ans->kind = TC_CA_REJECTED;
        ans->reason = tc_strdup(got.reason != NULL ? got.reason : "no reason given");
    } else {
        ans->kind = TC_CA_PENDING;
    }
    tokencert_ca_request_clear(&got);
}

static void issue(const tc_ca_call *call, long long id, tc_ca_answer *ans)
{
    int fault = tc_ca_fault("issue");

    /* Test-only: the process dies where a crash would leave the request recorded as pending at
     * a CA that approves by itself, before it signed. */
    if (tc_ca_fault("kill-issue"))
        raise(SIGKILL);

    /* The library signs in the CA's own helper process (tokencert-ca-sign), so this process's
     * SoftHSM configuration does not matter. */
    if (fault || tokencert_ca_approve(call->ctx, call->dir, id, NULL) != TC_OK) {
        ans->kind = TC_CA_ERROR;
        ans->handle = tc_asprintf("%lld", id);
        ans->reason = fault ? tc_asprintf("the local CA could not issue request %lld", id)
                            : tc_asprintf("the local CA could not issue request %lld: %s", id,
                                          tokencert_ctx_error(call->ctx));
        return;
    }
    outcome(call, id, ans);
}

static void local_submit(const tc_ca_call *call, const unsigned char *csr, size_t csr_len,
                         tc_ca_answer *ans)
{
    tokencert_ca_request req;
    int auto_approve = 0;
    char id[32];

    memset(&req, 0, sizeof req);
    if (tc_ca_fault("submit")) {
        ans->kind = TC_CA_ERROR;
        ans->reason = tc_strdup("the local CA did not answer (test fault at submit)");
        return;
    }
    if (tokencert_ca_submit(call->ctx, call->dir, csr, csr_len, call->not_before, &req,
                            &auto_approve) != TC_OK) {
        ans->kind = TC_CA_ERROR;
        ans->reason =
            tc_asprintf("the local CA in %s: %s", call->dir, tokencert_ctx_error(call->ctx));
        return;
    }
    /* The handle is recorded before the CA is asked to issue: not asked to issue what could not
     * be recorded (the next run submits anew). */
    snprintf(id, sizeof id, "%lld", req.id);
    if (call->record_handle != NULL && call->record_handle(call->data, id) != 0) {
        ans->kind = TC_CA_ERROR;
        ans->reason = tc_asprintf("recording CA request %lld failed", req.id);
        tokencert_ca_request_clear(&req);
        return;
    }
    if (auto_approve)
        issue(call, req.id, ans);
    else
        outcome(call, req.id, ans);
    tokencert_ca_request_clear(&req);
}

static void local_poll(const tc_ca_call *call, tc_ca_answer *ans)
{
    long long id = strtoll(call->handle != NULL ? call->handle : "0", NULL, 10);
    int automatic = 0;

    outcome(call, id, ans);
    /* Pending at a CA that approves by itself: the run that submitted it stopped before the CA
     * signed (killed, or the signer failed). The issuance is run again instead of waiting for an
     * operator who is not coming. */
    if (ans->kind == TC_CA_PENDING &&
        tc_ca_auto_approves(call->ctx, call->dir, &automatic) == TC_OK && automatic) {
        tc_ca_answer_clear(ans);
        issue(call, id, ans);
    }
}

const tc_ca_backend tc_ca_local = {"local", local_submit, local_poll, NULL};
