/* test_job.c - per-domain job state: retry schedule, persistence, bad files. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "acme_job.h"
#include "unit.h"

#define TOKEN "tokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static acme_store_t *temp_store(apr_pool_t *p)
{
    char *dir = apr_psprintf(p, "/tmp/acme-test-job-%ld-XXXXXX", (long)getpid());
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

static void backoff_schedule(void **state)
{
    static const struct {
        int failures;
        int transient;
        apr_interval_time_t wait;
    } rows[] = {
        {1, 1, apr_time_from_sec(60)},    {2, 1, apr_time_from_sec(120)},
        {3, 1, apr_time_from_sec(240)},   {8, 1, apr_time_from_sec(7680)},
        {9, 1, apr_time_from_sec(14400)}, {50, 1, apr_time_from_sec(14400)},
        {1, 0, apr_time_from_sec(43200)}, {7, 0, apr_time_from_sec(43200)},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(acme_job_backoff(rows[i].failures, rows[i].transient), rows[i].wait);
    }
}

static void failure_schedules_with_jitter_and_retry_after(void **state)
{
    apr_pool_t *p = *state;
    apr_time_t now = apr_time_from_sec(1800000000);
    acme_problem_t prob;
    acme_job_t *job;
    apr_uint32_t rnd;

    /* Jitter keeps the wait within +/-20% whatever the random value. */
    for (rnd = 0; rnd < 4000000000u; rnd += 123456789u) {
        job = acme_job_make("a.test", p);
        acme_job_failed(job, ACME_ETRANSPORT, NULL, now, rnd, p);
        assert_int_equal(job->failures, 1);
        assert_true(job->next_run >= now + apr_time_from_sec(48));
        assert_true(job->next_run <= now + apr_time_from_sec(72));
        assert_non_null(strstr(job->last_error, "could not be reached"));
    }
    /* A Retry-After longer than the backoff wins. */
    memset(&prob, 0, sizeof(prob));
    prob.type = "urn:ietf:params:acme:error:rateLimited";
    prob.name = "rateLimited";
    prob.detail = "too many";
    prob.rv = ACME_ERATELIMITED;
    prob.retry_after = apr_time_from_sec(3 * 3600);
    prob.subproblems = apr_array_make(p, 0, sizeof(acme_problem_t *));
    job = acme_job_make("a.test", p);
    acme_job_failed(job, ACME_ERATELIMITED, &prob, now, 7, p);
    assert_int_equal(job->next_run, now + apr_time_from_sec(3 * 3600));
    assert_non_null(strstr(job->last_error, "rateLimited"));
    /* What retrying cannot fix waits long. */
    job = acme_job_make("a.test", p);
    acme_job_failed(job, ACME_EREJECTED, NULL, now, 0, p);
    assert_true(job->next_run >= now + apr_time_from_sec(12 * 3600) * 8 / 10);
    acme_job_done(job);
    assert_int_equal(job->failures, 0);
    assert_int_equal(job->next_run, 0);
    assert_null(job->last_error);
}

static void save_and_load(void **state)
{
    apr_pool_t *p = *state;
    acme_store_t *store = temp_store(p);
    acme_job_t *job = acme_job_make("a.test", p), *back;
    acme_job_chal_t *ch;

    job->ca_url = "https://ca.test/dir";
    job->order_url = "https://ca.test/order/1";
    job->failures = 3;
    job->next_run = apr_time_from_sec(1800000123);
    job->last_error = "rateLimited (HTTP 429): slow down";
    job->last_error_time = apr_time_from_sec(1800000000);
    ch = apr_array_push(job->challenges);
    ch->token = TOKEN;
    ch->host = "a.test";
    ch->keyauth = TOKEN ".thumb";
    ch->expires = apr_time_from_sec(1800000300);
    ch = apr_array_push(job->challenges);
    ch->type = "dns-01";
    ch->token = TOKEN "2";
    ch->host = "b.test";
    ch->keyauth = TOKEN "2.thumb";
    ch->expires = apr_time_from_sec(1800000300);
    job->config = "0123456789abcdef0123456789abcdef01234567";
    assert_int_equal(acme_job_save(store, job, p), APR_SUCCESS);

    assert_int_equal(acme_job_load(&back, store, "a.test", p), APR_SUCCESS);
    assert_string_equal(back->config, job->config);
    assert_string_equal(back->order_url, job->order_url);
    assert_string_equal(back->ca_url, job->ca_url);
    assert_int_equal(back->failures, 3);
    assert_int_equal(back->next_run, job->next_run);
    assert_string_equal(back->last_error, job->last_error);
    assert_int_equal(back->challenges->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(back->challenges, 0, acme_job_chal_t).keyauth,
                        TOKEN ".thumb");
    /* The type is kept; an entry without one (older files) is http-01. */
    assert_string_equal(APR_ARRAY_IDX(back->challenges, 0, acme_job_chal_t).type, "http-01");
    assert_string_equal(APR_ARRAY_IDX(back->challenges, 1, acme_job_chal_t).type, "dns-01");

    /* No file: an empty job. */
    assert_int_equal(acme_job_load(&back, store, "b.test", p), APR_SUCCESS);
    assert_null(back->order_url);
    assert_int_equal(back->challenges->nelts, 0);
    remove_store(store);
}

static void bad_files_give_an_empty_job(void **state)
{
    static const char *const bad[] = {
        "{\"order\":",
        "[]",
        "",
        "\"x\"",
    };
    apr_pool_t *p = *state;
    acme_store_t *store = temp_store(p);
    acme_job_t *job;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(acme_store_write(store, "jobs/a.test.json", bad[i], strlen(bad[i]),
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, p),
                         APR_SUCCESS);
        assert_int_equal(acme_job_load(&job, store, "a.test", p), ACME_EBADSTORE);
        assert_non_null(job);
        assert_null(job->order_url);
    }
    /* Wrong types and hostile challenge entries are dropped, the rest is kept. */
    {
        const char *text =
            "{\"order\":42,\"failures\":-3,\"next-run\":\"soon\",\"challenges\":["
            "{\"token\":\"../../etc/passwd\",\"host\":\"a.test\",\"keyauth\":\"../../etc/"
            "passwd.x\"},"
            "{\"token\":\"" TOKEN "\",\"host\":\"a.test\",\"keyauth\":\"other.x\"},"
            "{\"token\":\"" TOKEN "\",\"host\":\"a.test\",\"keyauth\":\"" TOKEN ".ok\"},"
            "{\"type\":\"smtp-01\",\"token\":\"" TOKEN "\",\"host\":\"a.test\","
            "\"keyauth\":\"" TOKEN ".ok\"},"
            "{\"token\":\"" TOKEN "\"}, 17],\"config\":\"../x\"}";
        assert_int_equal(acme_store_write(store, "jobs/a.test.json", text, strlen(text),
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, p),
                         APR_SUCCESS);
        assert_int_equal(acme_job_load(&job, store, "a.test", p), APR_SUCCESS);
        assert_null(job->order_url);
        assert_int_equal(job->failures, 0);
        assert_int_equal(job->next_run, 0);
        assert_null(job->config); /* only a fingerprint in hex counts */
        assert_int_equal(job->challenges->nelts, 1);
        assert_string_equal(APR_ARRAY_IDX(job->challenges, 0, acme_job_chal_t).keyauth,
                            TOKEN ".ok");
    }
    /* Times no apr_time_t can hold (found by fuzz_store) count as absent: the next attempt is
     * not pushed to some random time, and expired challenge answers are not served. */
    {
        const char *text = "{\"failures\":2,\"next-run\":9223372036854775807,"
                           "\"last-error\":\"x\",\"last-error-time\":9223372036855,"
                           "\"challenges\":[{\"token\":\"" TOKEN "\",\"host\":\"a.test\","
                           "\"keyauth\":\"" TOKEN ".ok\",\"expires\":9223372036854775}]}";
        assert_int_equal(acme_store_write(store, "jobs/a.test.json", text, strlen(text),
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, p),
                         APR_SUCCESS);
        assert_int_equal(acme_job_load(&job, store, "a.test", p), APR_SUCCESS);
        assert_int_equal(job->failures, 2);
        assert_int_equal(job->next_run, 0);
        assert_int_equal(job->last_error_time, 0);
        assert_int_equal(job->challenges->nelts, 1);
        assert_int_equal(APR_ARRAY_IDX(job->challenges, 0, acme_job_chal_t).expires, 0);
    }
    remove_store(store);
}

/* The CA's renewal information kept for the certificate served: saved and read back whole;
 * half a window (none, no renewal time, a renewal time alone) or a part missing is not kept
 * at all (the CA is asked again), and only the time to ask again is kept when the CA had no
 * window. A renewal time outside the window is kept here: whether it lies in the window as
 * cut for the certificate is the driver's check (acme_driver_ari_load). */
static void ari_kept(void **state)
{
    static const struct {
        const char *ari;
        int cert;
        apr_int64_t renew_at;
        int explanation;
    } rows[] = {
        {"{\"cert\":\"A.B\",\"check-at\":1800000600,\"window-start\":1800100000,"
         "\"window-end\":1800200000,\"renew-at\":1800150000,\"explanation\":\"https://x\"}",
         1, 1800150000, 1},
        {"{\"cert\":\"A.B\",\"check-at\":1800000600,\"explanation\":\"https://x\"}", 1, 0, 0},
        {"{\"cert\":\"A.B\",\"check-at\":1800000600,\"window-start\":1800100000,"
         "\"window-end\":1800200000,\"renew-at\":1800250000}",
         1, 1800250000, 0},
        /* an empty window, a window without a time, a time without a window */
        {"{\"cert\":\"A.B\",\"check-at\":1800000600,\"window-start\":1800200000,"
         "\"window-end\":1800200000,\"renew-at\":1800200000}",
         0, 0, 0},
        {"{\"cert\":\"A.B\",\"check-at\":1800000600,\"window-start\":1800100000,"
         "\"window-end\":1800200000}",
         0, 0, 0},
        {"{\"cert\":\"A.B\",\"check-at\":1800000600,\"renew-at\":1800150000}", 0, 0, 0},
        /* no time to ask again, no certificate, wrong types */
        {"{\"cert\":\"A.B\",\"window-start\":1800100000,\"window-end\":1800200000,"
         "\"renew-at\":1800150000}",
         0, 0, 0},
        {"{\"check-at\":1800000600}", 0, 0, 0},
        {"{\"cert\":7,\"check-at\":\"soon\"}", 0, 0, 0},
        {"[1,2]", 0, 0, 0},
    };
    apr_pool_t *p = *state;
    acme_store_t *store = temp_store(p);
    acme_job_t *job = acme_job_make("a.test", p), *back;
    size_t i;

    job->ari_cert = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
    job->ari_check_at = apr_time_from_sec(1800000600);
    job->ari_start = apr_time_from_sec(1800100000);
    job->ari_end = apr_time_from_sec(1800200000);
    job->ari_renew_at = apr_time_from_sec(1800150000);
    job->ari_explanation = "https://ca.test/why";
    assert_int_equal(acme_job_save(store, job, p), APR_SUCCESS);
    assert_int_equal(acme_job_load(&back, store, "a.test", p), APR_SUCCESS);
    assert_string_equal(back->ari_cert, job->ari_cert);
    assert_int_equal(back->ari_check_at, job->ari_check_at);
    assert_int_equal(back->ari_start, job->ari_start);
    assert_int_equal(back->ari_end, job->ari_end);
    assert_int_equal(back->ari_renew_at, job->ari_renew_at);
    assert_string_equal(back->ari_explanation, job->ari_explanation);
    /* The CA had none for it: only when to ask again. */
    job->ari_start = job->ari_end = job->ari_renew_at = 0;
    assert_int_equal(acme_job_save(store, job, p), APR_SUCCESS);
    assert_int_equal(acme_job_load(&back, store, "a.test", p), APR_SUCCESS);
    assert_string_equal(back->ari_cert, job->ari_cert);
    assert_int_equal(back->ari_renew_at, 0);
    assert_null(back->ari_explanation);

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *text = apr_pstrcat(p, "{\"failures\":1,\"ari\":", rows[i].ari, "}", NULL);
        assert_int_equal(acme_store_write(store, "jobs/a.test.json", text, strlen(text),
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, p),
                         APR_SUCCESS);
        assert_int_equal(acme_job_load(&back, store, "a.test", p), APR_SUCCESS);
        assert_int_equal(back->failures, 1); /* the rest of the job stays */
        if (rows[i].cert) {
            assert_string_equal(back->ari_cert, "A.B");
            assert_int_equal(back->ari_check_at, apr_time_from_sec(1800000600));
        } else {
            assert_null(back->ari_cert);
            assert_int_equal(back->ari_check_at, 0);
        }
        assert_int_equal(back->ari_renew_at, apr_time_from_sec(rows[i].renew_at));
        assert_int_equal(back->ari_start, rows[i].renew_at ? apr_time_from_sec(1800100000) : 0);
        if (rows[i].explanation) {
            assert_string_equal(back->ari_explanation, "https://x");
        } else {
            assert_null(back->ari_explanation);
        }
    }
    remove_store(store);
}

static void restart_due(void **state)
{
    apr_time_t t0 = apr_time_from_sec(1800000000);
    (void)state;

    /* A certificate the server does not serve (first, changed, asked for): at once. */
    assert_int_equal(acme_restart_due(t0, 0, t0 + apr_time_from_sec(90 * 86400)), t0);
    /* A renewal of a 90-day certificate with 30 days left: an hour for others to join. */
    assert_int_equal(acme_restart_due(t0, 1, t0 + apr_time_from_sec(30 * 86400)),
                     t0 + ACME_RESTART_BATCH);
    /* 160-hour certificates renewed with 53 hours left: an hour too. */
    assert_int_equal(acme_restart_due(t0, 1, t0 + apr_time_from_sec(53 * 3600)),
                     t0 + ACME_RESTART_BATCH);
    /* Short certificates: a tenth of what is left (15 s left: 1.5 s). */
    assert_int_equal(acme_restart_due(t0, 1, t0 + apr_time_from_sec(15)),
                     t0 + apr_time_from_msec(1500));
    /* Nothing left (or a limit in the past): at once. */
    assert_int_equal(acme_restart_due(t0, 1, t0), t0);
    assert_int_equal(acme_restart_due(t0, 1, t0 - apr_time_from_sec(5)), t0);
}

static void restart_hold(void **state)
{
    (void)state;

    /* Unknown, or a server that configures in seconds: a minute. */
    assert_int_equal(acme_restart_hold(0), ACME_RESTART_HOLD_MIN);
    assert_int_equal(acme_restart_hold(-5), ACME_RESTART_HOLD_MIN);
    assert_int_equal(acme_restart_hold(apr_time_from_msec(300)), ACME_RESTART_HOLD_MIN);
    assert_int_equal(acme_restart_hold(apr_time_from_sec(15)), ACME_RESTART_HOLD_MIN);
    /* Thousands of TLS vhosts, 38 s a pass: four times that, so restarts take a fifth. */
    assert_int_equal(acme_restart_hold(apr_time_from_sec(38)), apr_time_from_sec(152));
    /* Never more than the bound, also for absurd values. */
    assert_int_equal(acme_restart_hold(apr_time_from_sec(225)), ACME_RESTART_HOLD_MAX);
    assert_int_equal(acme_restart_hold(apr_time_from_sec(3600)), ACME_RESTART_HOLD_MAX);
    assert_int_equal(acme_restart_hold(APR_INT64_MAX), ACME_RESTART_HOLD_MAX);
}

static void renewal_time(void **state)
{
    apr_time_t t0 = apr_time_from_sec(1800000000);
    acme_renew_window_t w;
    (void)state;

    /* seed 0: no spread. 90 days: renew with 30 days left. */
    assert_int_equal(acme_renew_at(NULL, t0, t0 + apr_time_from_sec(90 * 86400), 0),
                     t0 + apr_time_from_sec(60 * 86400));
    /* 6 days (short-lived): renew at half time. */
    assert_int_equal(acme_renew_at(NULL, t0, t0 + apr_time_from_sec(6 * 86400), 0),
                     t0 + apr_time_from_sec(3 * 86400));
    /* 10 days is short-lived, 10 days and a second is not. */
    assert_int_equal(acme_renew_at(NULL, t0, t0 + apr_time_from_sec(10 * 86400), 0),
                     t0 + apr_time_from_sec(5 * 86400));
    assert_true(acme_renew_at(NULL, t0, t0 + apr_time_from_sec(10 * 86400 + 3), 0) >
                t0 + apr_time_from_sec(6 * 86400));
    /* The spread moves renewal earlier by at most an hour (or 1/20 of the window). */
    assert_true(acme_renew_at(NULL, t0, t0 + apr_time_from_sec(90 * 86400), 1234567) <
                t0 + apr_time_from_sec(60 * 86400));
    assert_true(acme_renew_at(NULL, t0, t0 + apr_time_from_sec(90 * 86400), 1234567) >=
                t0 + apr_time_from_sec(60 * 86400 - 3600));
    assert_true(acme_renew_at(NULL, t0, t0 + apr_time_from_sec(60), 0xffffffffu) >=
                t0 + apr_time_from_sec(30 - 2));
    /* ACMERenewWindow */
    assert_int_equal(acme_renew_window_parse(&w, "50%"), APR_SUCCESS);
    assert_int_equal(acme_renew_at(&w, t0, t0 + apr_time_from_sec(100), 0),
                     t0 + apr_time_from_sec(50));
    assert_int_equal(acme_renew_window_parse(&w, "21d"), APR_SUCCESS);
    assert_int_equal(acme_renew_at(&w, t0, t0 + apr_time_from_sec(90 * 86400), 0),
                     t0 + apr_time_from_sec(69 * 86400));
    /* A window longer than the lifetime would renew forever: half the lifetime instead. */
    assert_int_equal(acme_renew_at(&w, t0, t0 + apr_time_from_sec(6 * 86400), 0),
                     t0 + apr_time_from_sec(3 * 86400));
    assert_int_equal(acme_renew_window_parse(&w, "90m"), APR_SUCCESS);
    assert_int_equal(w.left, apr_time_from_sec(5400));
    assert_int_equal(acme_renew_window_parse(&w, "600"), APR_SUCCESS);
    assert_int_equal(w.left, apr_time_from_sec(600));
    {
        static const char *const bad[] = {"",  "0%", "100%", "-5%", "5x", "12hh",
                                          "%", "d",  "0",    "3 d", "1e3"};
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            assert_int_equal(acme_renew_window_parse(&w, bad[i]), APR_EINVAL);
        }
    }
    /* A broken validity renews at once. */
    assert_int_equal(acme_renew_at(NULL, t0, t0 - 1, 0), t0);
}

/* A set refused at activation is a failed attempt: consecutive refusals back off further, as
 * the failures are cleared only once a set is active; each refusal counts once. */
static void refusals_back_off(void **state)
{
    apr_pool_t *p = *state;
    acme_store_t *store = temp_store(p);
    apr_time_t now = apr_time_from_sec(1800000000), r1 = now - apr_time_from_sec(10);
    acme_job_t *job = acme_job_make("a.test", p), *back;

    /* A refused set that is not ours (staged by someone else) is no attempt of ours. */
    assert_int_equal(acme_job_refused(job, r1, "a planted set", now, 0, p), 0);
    assert_int_equal(job->failures, 0);
    job->order_url = "https://ca.test/order/1";
    acme_job_staged(job, r1 - apr_time_from_sec(5));
    assert_null(job->order_url);
    assert_int_equal(job->failures, 0);
    assert_int_equal(acme_job_refused(job, r1, "the certificate does not cover b.test", now, 0, p),
                     1);
    assert_int_equal(job->failures, 1);
    assert_false(job->staged);
    assert_true(job->next_run >= now + apr_time_from_sec(48));
    assert_non_null(strstr(job->last_error, "refused at activation: the certificate does not"));
    /* The same refusal seen again (a later restart) is not counted twice. */
    assert_int_equal(acme_job_refused(job, r1, "again", now, 0, p), 0);
    assert_int_equal(job->failures, 1);
    /* The next set is staged and refused as well: the wait doubles. */
    acme_job_staged(job, now - apr_time_from_sec(1));
    assert_int_equal(job->failures, 1);
    assert_int_equal(acme_job_save(store, job, p), APR_SUCCESS);
    assert_int_equal(acme_job_load(&back, store, "a.test", p), APR_SUCCESS);
    assert_int_equal(back->staged, now - apr_time_from_sec(1));
    assert_int_equal(back->refusal_seen, r1);
    assert_int_equal(back->failures, 1);
    assert_int_equal(acme_job_refused(back, now, "again", now, 0, p), 1);
    assert_int_equal(back->failures, 2);
    assert_true(back->next_run >= now + apr_time_from_sec(96));
    /* Activated at last: all clear. */
    acme_job_staged(back, now);
    acme_job_done(back);
    assert_int_equal(back->failures, 0);
    assert_false(back->staged);
    remove_store(store);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(renewal_time),
    UNIT_TEST(restart_due),
    UNIT_TEST(restart_hold),
    UNIT_TEST(backoff_schedule),
    UNIT_TEST(failure_schedules_with_jitter_and_retry_after),
    UNIT_TEST(save_and_load),
    UNIT_TEST(bad_files_give_an_empty_job),
    UNIT_TEST(refusals_back_off),
    UNIT_TEST(ari_kept),
};

UNIT_MAIN("job", tests)
