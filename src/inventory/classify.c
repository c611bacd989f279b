/* classify.c — the one rule for a credential's certificates: valid, current, superseded, expiring,
 * due. Pure functions of the inventory's certificates and `now`: no token, no state store, no
 * allocation, so the PKCS#11 filter module, the engine, `check` and `list` all judge alike. */
#include <string.h>

#include "common.h"
#include "tokencert.h"

#define DEFAULT_RENEW_BEFORE   (30 * 86400LL)
#define DEFAULT_RENEW_FRACTION 0.1

const char *tokencert_cert_role_name(tokencert_cert_role r)
{
    switch (r) {
    case TOKENCERT_ROLE_CURRENT:
        return "current";
    case TOKENCERT_ROLE_SUPERSEDED:
        return "superseded";
    case TOKENCERT_ROLE_NOT_YET_VALID:
        return "not-yet-valid";
    case TOKENCERT_ROLE_EXPIRED:
        return "expired";
    case TOKENCERT_ROLE_UNREADABLE:
        return "unreadable";
    }
    return "unknown";
}

/* The lead time before not_after at which renewal starts, approval time not included. */
static long long policy_lead(const tokencert_renewal_policy *p, time_t not_before, time_t not_after)
{
    long long before = p != NULL && p->renew_before >= 0 ? p->renew_before : DEFAULT_RENEW_BEFORE;
    double fraction =
        p != NULL && p->renew_fraction >= 0 ? p->renew_fraction : DEFAULT_RENEW_FRACTION;
    long long by_fraction = (long long)(difftime(not_after, not_before) * fraction);

    return before > by_fraction ? before : by_fraction;
}

static long long policy_approval(const tokencert_renewal_policy *p)
{
    return p != NULL && p->approval_time >= 0 ? p->approval_time : 0;
}

time_t tokencert_due_at(const tokencert_renewal_policy *p, time_t not_before, time_t not_after)
{
    return (time_t)((long long)not_after - policy_lead(p, not_before, not_after) -
                    policy_approval(p));
}

static int unreadable(const tokencert_cert *x)
{
    return x->error != NULL || x->status == TOKENCERT_CERT_UNREADABLE;
}

static int valid_at(const tokencert_cert *x, time_t now)
{
    return !unreadable(x) && x->not_before <= now && now < x->not_after;
}

/* 1 when a should be preferred to b as the current certificate. The fingerprint settles full
 * ties so that the answer does not depend on the order the token returned its objects in. */
static int lasts_longer(const tokencert_cert *a, const tokencert_cert *b)
{
    if (a->not_after != b->not_after)
        return a->not_after > b->not_after;
    if (a->not_before != b->not_before)
        return a->not_before > b->not_before;
    return strcmp(a->sha256, b->sha256) > 0;
}

static long current_index(const tokencert_credential *c, time_t now)
{
    long best = -1;
    size_t i;

    for (i = 0; i < c->n_certs; i++)
        if (valid_at(&c->certs[i], now) &&
            (best < 0 || lasts_longer(&c->certs[i], &c->certs[best])))
            best = (long)i;
    return best;
}

const tokencert_cert *tokencert_credential_current(const tokencert_credential *c, time_t now)
{
    long i;

    tc_return_val_if_fail(c != NULL, NULL);
    i = current_index(c, now);
    return i >= 0 ? &c->certs[i] : NULL;
}

/* The role of certs[i] given the index of the current certificate. */
static tokencert_cert_role role_given(const tokencert_credential *c, size_t i, long current,
                                      time_t now)
{
    const tokencert_cert *x = &c->certs[i];

    if (unreadable(x))
        return TOKENCERT_ROLE_UNREADABLE;
    if (now < x->not_before)
        return TOKENCERT_ROLE_NOT_YET_VALID;
    if (now >= x->not_after)
        return TOKENCERT_ROLE_EXPIRED;
    return (long)i == current ? TOKENCERT_ROLE_CURRENT : TOKENCERT_ROLE_SUPERSEDED;
}

tokencert_cert_role tokencert_cert_role_of(const tokencert_credential *c, size_t i, time_t now)
{
    tc_return_val_if_fail(c != NULL && i < c->n_certs, TOKENCERT_ROLE_UNREADABLE);
    return role_given(c, i, current_index(c, now), now);
}

tokencert_err tokencert_credential_classify(const tokencert_credential *c, time_t now,
                                            const tokencert_renewal_policy *p,
                                            tokencert_credential_state *out)
{
    const tokencert_cert *cur = NULL;
    int successor = 0;
    size_t i;

    tc_return_val_if_fail(out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    out->current = -1;
    tc_return_val_if_fail(c != NULL, TC_ERR_INVALID_ARG);

    out->current = current_index(c, now);
    if (out->current >= 0)
        cur = &c->certs[out->current];
    for (i = 0; i < c->n_certs; i++) {
        switch (role_given(c, i, out->current, now)) {
        case TOKENCERT_ROLE_CURRENT:
            break;
        case TOKENCERT_ROLE_SUPERSEDED:
            out->n_superseded++;
            break;
        case TOKENCERT_ROLE_NOT_YET_VALID:
            out->n_not_yet_valid++;
            /* Renewing again would be wasted: the next certificate is already here. */
            if (cur != NULL && c->certs[i].not_after > cur->not_after)
                successor = 1;
            break;
        case TOKENCERT_ROLE_EXPIRED:
            out->n_expired++;
            break;
        case TOKENCERT_ROLE_UNREADABLE:
            out->n_unreadable++;
            break;
        }
    }
    if (cur != NULL) {
        out->due_at = tokencert_due_at(p, cur->not_before, cur->not_after);
        /* Strictly less than the lead remains: the edge tokencert_inventory_load's
         * expiring_seconds and `check --warn` have always had. */
        out->expiring = now > out->due_at;
        out->due = now >= out->due_at && !successor;
    } else {
        out->due = out->n_expired > 0 && out->n_not_yet_valid == 0;
    }
    return TC_OK;
}
