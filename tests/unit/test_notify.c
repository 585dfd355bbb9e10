/* test_notify.c - ACMENotifyCommand's bookkeeping (once per serial, at most once a day, the
 * state file read as hostile input) and the command runner it shares with ACMEDNSCommand. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "acme_command.h"
#include "acme_notify.h"
#include "unit.h"

#define DAY apr_time_from_sec(86400)
#define T0  apr_time_from_sec(1800000000)

static acme_store_t *temp_store(apr_pool_t *p)
{
    char *dir = apr_psprintf(p, "/tmp/acme-test-notify-%ld-XXXXXX", (long)getpid());
    acme_store_t *store;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(acme_store_open(&store, dir, p), APR_SUCCESS);
    return store;
}

static void remove_store(acme_store_t *store)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", acme_store_dir(store));
    assert_int_equal(system(cmd), 0);
}

static acme_notify_state_t *fresh(apr_pool_t *p, int exists)
{
    acme_notify_state_t *st = apr_pcalloc(p, sizeof(*st));
    st->exists = exists;
    return st;
}

static void renewed_and_activated_once_per_serial(void **state)
{
    apr_pool_t *p = *state;
    acme_notify_state_t *st = fresh(p, 0);

    /* First issuance: renewed, then (after the restart) activated, each once. */
    assert_int_equal(acme_notify_renewed(st, "0A1B", p), 1);
    assert_int_equal(acme_notify_renewed(st, "0A1B", p), 0);
    assert_int_equal(acme_notify_renewed(st, "0a1b", p), 0); /* hex in either case */
    st->exists = 1;                                          /* saved with the event */
    assert_int_equal(acme_notify_activated(st, "0A1B", p), 1);
    assert_int_equal(acme_notify_activated(st, "0A1B", p), 0);
    /* Every later restart serves the same serial: nothing. A renewal: both again. */
    assert_int_equal(acme_notify_renewed(st, "0C", p), 1);
    assert_int_equal(acme_notify_activated(st, "0C", p), 1);
    assert_int_equal(acme_notify_activated(st, NULL, p), 0);
    assert_int_equal(acme_notify_renewed(st, NULL, p), 0);
}

static void served_at_a_start(void **state)
{
    apr_pool_t *p = *state;
    acme_notify_state_t *st = fresh(p, 1);
    int renewed = -1;

    /* The usual: renewed told before the restart, activated after it. */
    assert_int_equal(acme_notify_renewed(st, "01", p), 1);
    assert_int_equal(acme_notify_served(st, "01", &renewed, p), 1);
    assert_int_equal(renewed, 0);
    assert_int_equal(acme_notify_served(st, "01", &renewed, p), 0);
    /* The driver that staged 02 stopped for the restart before it told renewed: both now. */
    assert_int_equal(acme_notify_served(st, "02", &renewed, p), 1);
    assert_int_equal(renewed, 1);
    /* 03 told as renewed, then refused at activation: 02 is still served, nothing to tell. */
    assert_int_equal(acme_notify_renewed(st, "03", p), 1);
    assert_int_equal(acme_notify_served(st, "02", &renewed, p), 0);
    assert_int_equal(renewed, 0);
}

static void activated_without_state_is_only_recorded(void **state)
{
    apr_pool_t *p = *state;
    acme_notify_state_t *st = fresh(p, 0);

    /* A server that ran before ACMENotifyCommand: its certificate was activated long ago. */
    assert_int_equal(acme_notify_activated(st, "77", p), 0);
    assert_string_equal(st->activated, "77");
    assert_string_equal(st->renewed, "77");
    assert_int_equal(acme_notify_renewed(st, "77", p), 0);
}

static void failed_first_then_daily(void **state)
{
    apr_pool_t *p = *state;
    acme_notify_state_t *st = fresh(p, 1);
    static const struct {
        apr_interval_time_t at;
        int told;
    } rows[] = {
        {0, 1},                     /* the first failure */
        {apr_time_from_sec(60), 0}, /* the retries after it */
        {apr_time_from_sec(180), 0},
        {DAY - apr_time_from_sec(1), 0},
        {DAY, 1}, /* a day after the last told */
        {DAY + apr_time_from_sec(3600), 0},
        {2 * DAY + apr_time_from_sec(3600), 1},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(acme_notify_failed(st, T0 + rows[i].at), rows[i].told);
    }
    /* A success starts the count anew: the next failure is told at once. */
    assert_int_equal(acme_notify_renewed(st, "01", p), 1);
    assert_int_equal(acme_notify_failed(st, T0 + 2 * DAY + apr_time_from_sec(7200)), 1);
    /* A time far ahead (a clock set back since) does not silence it for long. */
    st->failed_at = T0 + 30 * DAY;
    assert_int_equal(acme_notify_failed(st, T0), 1);
}

static void expiring_daily_unless_pending(void **state)
{
    apr_pool_t *p = *state;
    acme_notify_state_t *st = fresh(p, 1);
    apr_time_t not_after = T0 + 5 * DAY;

    assert_int_equal(acme_notify_expiring(st, T0, not_after, 3 * DAY, 0), 0); /* 5 days left */
    assert_int_equal(acme_notify_expiring(st, T0, not_after, 7 * DAY, 1), 0); /* one is staged */
    assert_int_equal(acme_notify_expiring(st, T0, not_after, 7 * DAY, 0), 1);
    assert_int_equal(acme_notify_expiring(st, T0 + apr_time_from_sec(60), not_after, 7 * DAY, 0),
                     0);
    assert_int_equal(acme_notify_expiring(st, T0 + DAY, not_after, 7 * DAY, 0), 1);
    /* Expired: still told, daily. */
    assert_int_equal(acme_notify_expiring(st, T0 + 6 * DAY, not_after, 7 * DAY, 0), 1);
    assert_int_equal(acme_notify_expiring(st, T0 + 6 * DAY, 0, 7 * DAY, 0), 0);
    /* A new certificate activated: the warning starts anew. */
    assert_int_equal(acme_notify_activated(st, "0F", p), 1);
    assert_int_equal(acme_notify_expiring(st, T0 + 6 * DAY, T0 + 6 * DAY + DAY, 7 * DAY, 0), 1);
}

static void ari_window_changes(void **state)
{
    apr_pool_t *p = *state;
    acme_notify_state_t *st = fresh(p, 1);
    apr_time_t s = T0 + 10 * DAY + 123456, e = T0 + 12 * DAY;

    assert_int_equal(acme_notify_ari(st, "AA", s, e, p), 0); /* the first window: recorded */
    assert_int_equal(acme_notify_ari(st, "AA", s, e, p), 0);
    assert_int_equal(acme_notify_ari(st, "AA", s + 654321, e, p), 0); /* same second */
    assert_int_equal(acme_notify_ari(st, "AA", T0, T0 + DAY, p), 1);  /* moved: revocation */
    assert_int_equal(acme_notify_ari(st, "AA", T0, T0 + DAY, p), 0);
    assert_int_equal(acme_notify_ari(st, "BB", s, e, p), 0); /* a new certificate's first */
    assert_int_equal(acme_notify_ari(st, "BB", 0, e, p), 0);
}

static void state_survives_and_hostile_files(void **state)
{
    apr_pool_t *p = *state;
    acme_store_t *store = temp_store(p);
    acme_notify_state_t *st, *back;
    static const char *const bad[] = {
        "not json",
        "[1,2]",
        "{\"renewed\":\"0A; rm -rf /\",\"activated\":12,\"failed-at\":-5,"
        "\"expiring-at\":99999999999999,\"ari-serial\":"
        "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
    };
    size_t i;

    assert_int_equal(acme_notify_load(&st, store, "a.test", p), APR_SUCCESS);
    assert_int_equal(st->exists, 0);
    assert_int_equal(acme_notify_renewed(st, "0A1B", p), 1);
    assert_int_equal(acme_notify_failed(st, T0), 1);
    assert_int_equal(acme_notify_ari(st, "0A1B", T0 + DAY, T0 + 2 * DAY, p), 0);
    assert_int_equal(acme_notify_save(store, "a.test", st, p), APR_SUCCESS);
    assert_int_equal(acme_notify_load(&back, store, "a.test", p), APR_SUCCESS);
    assert_int_equal(back->exists, 1);
    assert_string_equal(back->renewed, "0A1B");
    assert_null(back->activated);
    assert_true(back->failed_at == T0);
    assert_int_equal(acme_notify_failed(back, T0 + apr_time_from_sec(60)), 0); /* after restart */
    assert_int_equal(acme_notify_activated(back, "0A1B", p), 1);
    assert_int_equal(acme_notify_ari(back, "0A1B", T0 + DAY, T0 + 2 * DAY, p), 0);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(acme_store_write(store, "jobs/b.test.events", bad[i], strlen(bad[i]),
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, p),
                         APR_SUCCESS);
        acme_notify_load(&back, store, "b.test", p);
        assert_int_equal(back->exists, 1); /* told before: activated is told, not recorded */
        assert_null(back->renewed);
        assert_null(back->activated);
        assert_null(back->ari_serial);
        assert_true(back->failed_at == 0 && back->expiring_at == 0);
    }
    /* A link planted in place of the file is not followed. */
    unlink(acme_store_path(store, "jobs/c.test.events", p));
    assert_int_equal(symlink("/etc/passwd", acme_store_path(store, "jobs/c.test.events", p)), 0);
    assert_int_not_equal(acme_notify_load(&back, store, "c.test", p), APR_SUCCESS);
    assert_null(back->renewed);
    remove_store(store);
}

/* --- the runner --- */

static const acme_command_result_t *run(const char *script, apr_interval_time_t timeout,
                                        apr_interval_time_t *took, apr_pool_t *p)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    const char *env[] = {"PATH=/usr/bin:/bin", "X=from-env", NULL};
    const acme_command_result_t *res = NULL;
    acme_command_t *cmd;
    apr_time_t start = apr_time_now();

    assert_int_equal(acme_command_start(&cmd, argv, env, timeout, 64, p), APR_SUCCESS);
    while (!acme_command_poll(cmd, apr_time_from_msec(20), &res)) {
    }
    *took = apr_time_now() - start;
    return res;
}

static void runner_exit_output_timeout(void **state)
{
    apr_pool_t *p = *state;
    apr_interval_time_t took;
    const acme_command_result_t *res;
    const char *argv[] = {"/nonexistent/notify", NULL};
    const char *env[] = {NULL};
    acme_command_t *cmd;

    res = run("echo out $X; echo err >&2; exit 3", apr_time_from_sec(5), &took, p);
    assert_true(res->started && res->exited && res->code == 3);
    assert_string_equal(res->output, "out from-env\nerr");
    assert_string_equal(acme_command_ended(res, p), "exited with 3");

    /* Output beyond the bound is counted, not kept. */
    res = run("i=0; while [ $i -lt 100 ]; do echo 0123456789; i=$((i+1)); done",
              apr_time_from_sec(5), &took, p);
    assert_true(res->exited && res->code == 0);
    assert_non_null(strstr(res->output, "[1036 more bytes]"));

    /* A command that hangs, with a child of its own: the whole group is killed at the timeout,
     * and the end is seen then, not when the grandchild would have ended. */
    res = run("sleep 30 & sleep 30", apr_time_from_sec(1), &took, p);
    assert_true(res->timed_out);
    assert_true(took < apr_time_from_sec(3));
    assert_string_equal(acme_command_ended(res, p), "was killed at its timeout");

    /* Not there: said so, not a crash. */
    assert_int_equal(acme_command_start(&cmd, argv, env, apr_time_from_sec(5), 64, p), APR_SUCCESS);
    while (!acme_command_poll(cmd, apr_time_from_msec(20), &res)) {
    }
    assert_int_equal(res->started, 0);
    assert_true(APR_STATUS_IS_ENOENT(res->err));

    /* Stopped on request. */
    {
        const char *hang[] = {"/bin/sh", "-c", "sleep 30", NULL};
        apr_time_t start = apr_time_now();
        assert_int_equal(acme_command_start(&cmd, hang, env, apr_time_from_sec(30), 64, p),
                         APR_SUCCESS);
        assert_int_equal(acme_command_poll(cmd, apr_time_from_msec(100), &res), 0);
        acme_command_stop(cmd);
        while (!acme_command_poll(cmd, apr_time_from_msec(20), &res)) {
        }
        assert_true(res->stopped);
        assert_true(apr_time_now() - start < apr_time_from_sec(3));
    }
    assert_int_equal(
        acme_command_start(&cmd, (const char *[]){"sh", NULL}, env, apr_time_from_sec(1), 64, p),
        APR_EINVAL);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(renewed_and_activated_once_per_serial),
    UNIT_TEST(served_at_a_start),
    UNIT_TEST(activated_without_state_is_only_recorded),
    UNIT_TEST(failed_first_then_daily),
    UNIT_TEST(expiring_daily_unless_pending),
    UNIT_TEST(ari_window_changes),
    UNIT_TEST(state_survives_and_hostile_files),
    UNIT_TEST(runner_exit_output_timeout),
};

UNIT_MAIN("notify", tests)
