/* classify.c — the one rule for a credential's certificates: valid, current, superseded, expiring,
 * due. Pure functions of the inventory's certificates and `now`: no token, no state store, no
 * allocation, so the PKCS#11 filter module, the engine, `check` and `list` all judge alike.
 *
 * The rule applies to a group of certificates: those of one tokencert_credential, or those of
 * every credential on a token that carries one name (a renewal with a new key adds a second
 * credential under the first one's name, and the two share one current certificate). */
#include <string.h>

#include "common.h"
#include "tokencert.h"

#define DEFAULT_RENEW_BEFORE   (30 * 86400LL)
#define DEFAULT_RENEW_FRACTION 0.1

/* The credentials creds[0..n) that belong to the group: all of them when name is NULL, else
 * those called name, authorities left out (a CA certificate is never a credential's). */
typedef struct {
    const tokencert_credential *creds;
    size_t n;
    const char *name;
} group;

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

static int in_group(const group *g, const tokencert_credential *c)
{
    return g->name == NULL || (c->kind != TOKENCERT_CRED_AUTHORITY && c->name != NULL &&
                               strcmp(c->name, g->name) == 0);
}

static const tokencert_cert *group_current(const group *g, time_t now)
{
    const tokencert_cert *best = NULL;
    size_t i, k;

    for (i = 0; i < g->n; i++) {
        const tokencert_credential *c = &g->creds[i];
        if (!in_group(g, c))
            continue;
        for (k = 0; k < c->n_certs; k++)
            if (valid_at(&c->certs[k], now) && (best == NULL || lasts_longer(&c->certs[k], best)))
                best = &c->certs[k];
    }
    return best;
}

tokencert_cert_role tokencert_cert_role_at(const tokencert_cert *x, const tokencert_cert *current,
                                           time_t now)
{
    tc_return_val_if_fail(x != NULL, TOKENCERT_ROLE_UNREADABLE);
    if (unreadable(x))
        return TOKENCERT_ROLE_UNREADABLE;
    if (now < x->not_before)
        return TOKENCERT_ROLE_NOT_YET_VALID;
    if (now >= x->not_after)
        return TOKENCERT_ROLE_EXPIRED;
    return x == current ? TOKENCERT_ROLE_CURRENT : TOKENCERT_ROLE_SUPERSEDED;
}

const tokencert_cert *tokencert_credential_current(const tokencert_credential *c, time_t now)
{
    group g = {c, 1, NULL};

    tc_return_val_if_fail(c != NULL, NULL);
    return group_current(&g, now);
}

const tokencert_cert *tokencert_named_current(const tokencert_token_inventory *t, const char *name,
                                              time_t now)
{
    group g;

    tc_return_val_if_fail(t != NULL && name != NULL, NULL);
    g.creds = t->creds;
    g.n = t->n_creds;
    g.name = name;
    return group_current(&g, now);
}

tokencert_cert_role tokencert_cert_role_of(const tokencert_credential *c, size_t i, time_t now)
{
    tc_return_val_if_fail(c != NULL && i < c->n_certs, TOKENCERT_ROLE_UNREADABLE);
    return tokencert_cert_role_at(&c->certs[i], tokencert_credential_current(c, now), now);
}

static void group_classify(const group *g, time_t now, const tokencert_renewal_policy *p,
                           tokencert_credential_state *out)
{
    const tokencert_cert *cur = group_current(g, now);
    int successor = 0;
    size_t i, k;

    out->current = cur;
    for (i = 0; i < g->n; i++) {
        const tokencert_credential *c = &g->creds[i];
        if (!in_group(g, c))
            continue;
        for (k = 0; k < c->n_certs; k++) {
            const tokencert_cert *x = &c->certs[k];
            switch (tokencert_cert_role_at(x, cur, now)) {
            case TOKENCERT_ROLE_CURRENT:
                break;
            case TOKENCERT_ROLE_SUPERSEDED:
                out->n_superseded++;
                break;
            case TOKENCERT_ROLE_NOT_YET_VALID:
                out->n_not_yet_valid++;
                /* Renewing again would be wasted: the next certificate is already here. */
                if (cur != NULL && x->not_after > cur->not_after)
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
}

tokencert_err tokencert_credential_classify(const tokencert_credential *c, time_t now,
                                            const tokencert_renewal_policy *p,
                                            tokencert_credential_state *out)
{
    group g = {c, 1, NULL};

    tc_return_val_if_fail(out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    tc_return_val_if_fail(c != NULL, TC_ERR_INVALID_ARG);
    group_classify(&g, now, p, out);
    return TC_OK;
}

tokencert_err tokencert_named_classify(const tokencert_token_inventory *t, const char *name,
                                       time_t now, const tokencert_renewal_policy *p,
                                       tokencert_credential_state *out)
{
    group g;

    tc_return_val_if_fail(out != NULL, TC_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    tc_return_val_if_fail(t != NULL && name != NULL, TC_ERR_INVALID_ARG);
    g.creds = t->creds;
    g.n = t->n_creds;
    g.name = name;
    group_classify(&g, now, p, out);
    return TC_OK;
}
