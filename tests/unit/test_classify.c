/* test_classify.c — unit tests of the one rule (classify.c): which certificate of a credential is
 * current, which are superseded, expired or not yet valid, and when renewal is due. These cases
 * build credentials in memory; the rule reads nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tokencert.h"

#define DAY  86400LL
#define NOW  ((time_t)1800000000) /* 2027-01-15 */
#define MAXC 4

typedef struct {
    tokencert_cert certs[MAXC];
    tokencert_credential cred;
} fixture;

/* Adds a certificate valid from NOW + from_days to NOW + to_days; fp is its SHA-256's first
 * byte, enough to tell ties apart. */
static tokencert_cert *add(fixture *f, double from_days, double to_days, unsigned fp)
{
    tokencert_cert *x = &f->certs[f->cred.n_certs++];

    memset(x, 0, sizeof *x);
    x->not_before = NOW + (time_t)(from_days * DAY);
    x->not_after = NOW + (time_t)(to_days * DAY);
    snprintf(x->sha256, sizeof x->sha256, "%02X:00", fp);
    x->status = TOKENCERT_CERT_VALID;
    f->cred.certs = f->certs;
    f->cred.kind = TOKENCERT_CRED_FULL;
    return x;
}

static void one_valid_is_current(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -10, 355, 1);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[0]);
    assert_ptr_equal(tokencert_credential_current(&f.cred, NOW), &f.certs[0]);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_CURRENT);
    assert_int_equal(s.n_superseded + s.n_expired + s.n_not_yet_valid + s.n_unreadable, 0);
    assert_false(s.expiring);
    assert_false(s.due);
    /* A 365-day certificate: max(30 d, 36.5 d) before its end. */
    assert_int_equal(s.due_at, f.certs[0].not_after - (time_t)(36.5 * DAY));
}

static void newest_current_old_superseded(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -80, 10, 1); /* old, 10 days left */
    add(&f, -1, 89, 2);  /* its renewal */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[1]);
    assert_int_equal(s.n_superseded, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_SUPERSEDED);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 1, NOW), TOKENCERT_ROLE_CURRENT);
    /* The old one's end does not make the credential expiring: its successor is current. */
    assert_false(s.expiring);
    assert_false(s.due);
}

static void expired_is_not_current(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -100, -10, 1);
    add(&f, -20, 70, 2);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[1]);
    assert_int_equal(s.n_expired, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_EXPIRED);
    /* not_after itself is no longer valid; not_before already is. */
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, f.certs[0].not_after),
                     TOKENCERT_ROLE_EXPIRED);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 1, f.certs[1].not_before),
                     TOKENCERT_ROLE_CURRENT);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 1, f.certs[1].not_before - 1),
                     TOKENCERT_ROLE_NOT_YET_VALID);
}

static void not_yet_valid_only(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, 5, 100, 1);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_null(tokencert_credential_current(&f.cred, NOW));
    assert_int_equal(s.n_not_yet_valid, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_NOT_YET_VALID);
    assert_int_equal(s.due_at, 0);
    assert_false(s.due); /* its certificate is on the way, renewing again gains nothing */
}

static void none_valid_is_due(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -400, -35, 1);
    add(&f, -100, -5, 2);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_int_equal(s.n_expired, 2);
    assert_false(s.expiring);
    assert_true(s.due);
}

static void unreadable_never_current(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;
    tokencert_cert *x;

    (void)state;
    x = add(&f, -10, 1000, 1);
    x->status = TOKENCERT_CERT_UNREADABLE;
    x->error = (char *)"not DER";
    add(&f, -10, 50, 2);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[1]);
    assert_int_equal(s.n_unreadable, 1);
    assert_int_equal(tokencert_cert_role_of(&f.cred, 0, NOW), TOKENCERT_ROLE_UNREADABLE);
}

static void empty_credential(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    f.cred.kind = TOKENCERT_CRED_KEY_ONLY;
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_null(s.current);
    assert_false(s.due);
    assert_false(s.expiring);
}

static void due_at_arithmetic(void **state)
{
    const time_t nb = NOW, three_years = NOW + (time_t)(1095 * DAY);
    tokencert_renewal_policy p = {-1, -1, -1};

    (void)state;
    /* Three years (1095 days) under the defaults: 0.1 of the lifetime, 109.5 days, beats 30. */
    assert_int_equal(tokencert_due_at(NULL, nb, three_years), three_years - (time_t)(109.5 * DAY));
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years - (time_t)(109.5 * DAY));
    /* 90 days: 9 days by the fraction, so the 30 days apply. */
    assert_int_equal(tokencert_due_at(NULL, nb, nb + 90 * DAY), nb + 60 * DAY);
    /* The approval time comes on top of the lead. */
    p.approval_time = 14 * DAY;
    assert_int_equal(tokencert_due_at(&p, nb, three_years),
                     three_years - (time_t)(109.5 * DAY) - 14 * DAY);
    /* Fraction 0 turns it off; renew_before 0 too. */
    p.renew_fraction = 0;
    p.renew_before = 10 * DAY;
    p.approval_time = 0;
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years - 10 * DAY);
    p.renew_before = 0;
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years);
    /* renew_before longer than the fraction's share wins. */
    p.renew_before = 200 * DAY;
    p.renew_fraction = 0.1;
    assert_int_equal(tokencert_due_at(&p, nb, three_years), three_years - 200 * DAY);
}

static void expiring_and_due_edges(void **state)
{
    fixture f = {0};
    tokencert_renewal_policy p = {10 * DAY, 0, 2 * DAY};
    tokencert_credential_state s;

    (void)state;
    add(&f, -100, 12, 1); /* exactly 10 + 2 days left */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, &p, &s), TC_OK);
    assert_int_equal(s.due_at, NOW);
    assert_true(s.due);       /* from due_at on */
    assert_false(s.expiring); /* not yet less than the lead left */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW + 1, &p, &s), TC_OK);
    assert_true(s.expiring);
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW - 1, &p, &s), TC_OK);
    assert_false(s.due);
}

static void successor_waiting_is_not_due(void **state)
{
    fixture f = {0};
    tokencert_credential_state s;

    (void)state;
    add(&f, -1000, 20, 1); /* current, past its due date */
    add(&f, 20, 1115, 2);  /* the portal's renewal, continuing from the end of the old */
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &f.certs[0]);
    assert_int_equal(s.n_not_yet_valid, 1);
    assert_true(s.expiring);
    assert_false(s.due);
    /* Without it the credential is due. */
    f.cred.n_certs = 1;
    assert_int_equal(tokencert_credential_classify(&f.cred, NOW, NULL, &s), TC_OK);
    assert_true(s.due);
}

static void ties_are_deterministic(void **state)
{
    fixture f = {0}, g = {0};

    (void)state;
    /* Same end: the later start wins, whatever the order. */
    add(&f, -30, 60, 1);
    add(&f, -10, 60, 2);
    assert_ptr_equal(tokencert_credential_current(&f.cred, NOW), &f.certs[1]);
    add(&g, -10, 60, 2);
    add(&g, -30, 60, 1);
    assert_ptr_equal(tokencert_credential_current(&g.cred, NOW), &g.certs[0]);
    /* Same dates: the greater fingerprint wins, whatever the order. */
    memset(&f, 0, sizeof f);
    memset(&g, 0, sizeof g);
    add(&f, -10, 60, 0xA0);
    add(&f, -10, 60, 0x3C);
    add(&g, -10, 60, 0x3C);
    add(&g, -10, 60, 0xA0);
    assert_ptr_equal(tokencert_credential_current(&f.cred, NOW), &f.certs[0]);
    assert_ptr_equal(tokencert_credential_current(&g.cred, NOW), &g.certs[1]);
    assert_int_equal(tokencert_cert_role_of(&g.cred, 0, NOW), TOKENCERT_ROLE_SUPERSEDED);
}

/* A renewal with a new key: two credentials under one name share one current certificate; an
 * authority of that name and a credential of another name take no part. */
static void named_spans_keys(void **state)
{
    fixture old = {0}, renewed = {0}, other = {0}, ca = {0};
    tokencert_credential creds[4];
    tokencert_token_inventory t;
    tokencert_credential_state s;

    (void)state;
    add(&old, -80, 10, 1);
    add(&renewed, -1, 89, 2);
    add(&other, -1, 500, 3);
    add(&ca, -1000, 3000, 4);
    old.cred.name = renewed.cred.name = ca.cred.name = (char *)"office";
    other.cred.name = (char *)"lab";
    ca.cred.kind = TOKENCERT_CRED_AUTHORITY;
    creds[0] = ca.cred;
    creds[1] = other.cred;
    creds[2] = old.cred;
    creds[3] = renewed.cred;
    memset(&t, 0, sizeof t);
    t.creds = creds;
    t.n_creds = 4;

    assert_ptr_equal(tokencert_named_current(&t, "office", NOW), &renewed.certs[0]);
    assert_int_equal(tokencert_cert_role_at(&old.certs[0], &renewed.certs[0], NOW),
                     TOKENCERT_ROLE_SUPERSEDED);
    assert_int_equal(tokencert_named_classify(&t, "office", NOW, NULL, &s), TC_OK);
    assert_ptr_equal(s.current, &renewed.certs[0]);
    assert_int_equal(s.n_superseded, 1);
    assert_false(s.due);
    /* Each key alone has its own current certificate: the old one, 10 days left, is due. */
    assert_ptr_equal(tokencert_credential_current(&old.cred, NOW), &old.certs[0]);
    assert_int_equal(tokencert_credential_classify(&old.cred, NOW, NULL, &s), TC_OK);
    assert_true(s.due);
    assert_ptr_equal(tokencert_named_current(&t, "lab", NOW), &other.certs[0]);
    assert_null(tokencert_named_current(&t, "nobody", NOW));
}

static void role_names(void **state)
{
    (void)state;
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_CURRENT), "current");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_SUPERSEDED), "superseded");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_NOT_YET_VALID), "not-yet-valid");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_EXPIRED), "expired");
    assert_string_equal(tokencert_cert_role_name(TOKENCERT_ROLE_UNREADABLE), "unreadable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_valid_is_current),
        cmocka_unit_test(newest_current_old_superseded),
        cmocka_unit_test(expired_is_not_current),
        cmocka_unit_test(not_yet_valid_only),
        cmocka_unit_test(none_valid_is_due),
        cmocka_unit_test(unreadable_never_current),
        cmocka_unit_test(empty_credential),
        cmocka_unit_test(due_at_arithmetic),
        cmocka_unit_test(expiring_and_due_edges),
        cmocka_unit_test(successor_waiting_is_not_due),
        cmocka_unit_test(ties_are_deterministic),
        cmocka_unit_test(named_spans_keys),
        cmocka_unit_test(role_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
