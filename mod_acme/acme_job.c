/* acme_job.c - per-domain renewal state in the store, and the retry schedule. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "acme_job.h"
#include "acme_tokens.h"

acme_job_t *acme_job_make(const char *name, apr_pool_t *p)
{
    acme_job_t *job = apr_pcalloc(p, sizeof(*job));

    job->name = apr_pstrdup(p, name);
    job->challenges = apr_array_make(p, 2, sizeof(acme_job_chal_t));
    return job;
}

static const char *job_path(const char *name, apr_pool_t *p)
{
    return apr_pstrcat(p, "jobs/", name, ".json", NULL);
}

/* Copies a string member, bounded; NULL when absent or too long. */
static const char *str_member(const json_t *j, const char *key, apr_size_t max, apr_pool_t *p)
{
    const char *s = acme_json_str(j, key);
    return s && strlen(s) <= max ? apr_pstrdup(p, s) : NULL;
}

/* Seconds since the epoch, as written by acme_job_save; 0 when absent, not positive, or beyond
 * the year 9999 (such a value would overflow apr_time_t, and no time we write is that far). */
#define JOB_TIME_MAX 253402300799LL

static apr_time_t time_member(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);
    return json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= JOB_TIME_MAX
               ? apr_time_from_sec((apr_time_t)json_integer_value(v))
               : 0;
}

const char *acme_job_chal_type(const char *s)
{
    static const char *const types[] = {"http-01", "tls-alpn-01", "dns-01"};
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i]) == 0) {
            return types[i];
        }
    }
    return NULL;
}

/* The "ari" member: kept only whole: a certificate and a time to ask again, and a window that
 * is one (end after start) with a renewal time, or none of the three. Anything else is as if
 * nothing were kept (the CA is asked again). Whether the renewal time lies in the window as
 * cut for the certificate is the driver's to check (acme_driver_ari_load): a window wholly
 * after the certificate's last tenth is cut to a point before its start. */
static void job_load_ari(acme_job_t *job, const json_t *a, apr_pool_t *p)
{
    if (!json_is_object(a)) {
        return;
    }
    job->ari_cert = str_member(a, "cert", 1024, p);
    job->ari_check_at = time_member(a, "check-at");
    job->ari_start = time_member(a, "window-start");
    job->ari_end = time_member(a, "window-end");
    job->ari_renew_at = time_member(a, "renew-at");
    job->ari_explanation = str_member(a, "explanation", 511, p);
    if (!job->ari_renew_at && !job->ari_start && !job->ari_end) {
        job->ari_explanation = NULL; /* the CA had no window for it */
    } else if (!job->ari_renew_at || !job->ari_start || job->ari_end <= job->ari_start) {
        job->ari_cert = NULL; /* half a window */
    }
    if (!job->ari_cert || !job->ari_check_at) {
        job->ari_cert = NULL;
        job->ari_check_at = 0;
        job->ari_start = job->ari_end = job->ari_renew_at = 0;
        job->ari_explanation = NULL;
    }
}

apr_status_t acme_job_load(acme_job_t **pjob, acme_store_t *store, const char *name, apr_pool_t *p)
{
    acme_job_t *job = acme_job_make(name, p);
    const json_t *chals, *fails;
    json_t *j = NULL;
    apr_status_t rv;
    size_t i;

    *pjob = job;
    rv = acme_store_json_read(&j, store, job_path(name, p), p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return rv == ACME_ETOOLARGE ? ACME_EBADSTORE : rv;
    }
    job->ca_url = str_member(j, "ca", 2048, p);
    job->order_url = str_member(j, "order", 2048, p);
    job->last_error = str_member(j, "last-error", 1024, p);
    job->last_problem = str_member(j, "last-problem", 256, p);
    job->last_error_time = time_member(j, "last-error-time");
    job->next_run = time_member(j, "next-run");
    job->staged = time_member(j, "staged");
    job->refusal_seen = time_member(j, "refusal-seen");
    job->config = str_member(j, "config", 64, p);
    if (job->config && strspn(job->config, "0123456789abcdef") != strlen(job->config)) {
        job->config = NULL;
    }
    job_load_ari(job, json_object_get(j, "ari"), p);
    fails = json_object_get(j, "failures");
    job->failures = json_is_integer(fails) && json_integer_value(fails) > 0 &&
                            json_integer_value(fails) < 100000
                        ? (int)json_integer_value(fails)
                        : 0;
    chals = json_object_get(j, "challenges");
    for (i = 0; json_is_array(chals) && i < json_array_size(chals); i++) {
        const json_t *c = json_array_get(chals, i);
        acme_job_chal_t ch;
        const char *type = str_member(c, "type", 16, p);
        ch.type = type ? acme_job_chal_type(type) : "http-01";
        ch.token = str_member(c, "token", ACME_TOKEN_MAX, p);
        ch.host = str_member(c, "host", 253, p);
        ch.keyauth = str_member(c, "keyauth", 1024, p);
        ch.expires = time_member(c, "expires");
        /* Only well-formed entries come back: they are served to the world. */
        if (i < ACME_JOB_CHALLENGES_MAX && ch.type && ch.token && ch.host && ch.keyauth &&
            acme_token_ok(ch.token, strlen(ch.token)) &&
            strncmp(ch.keyauth, ch.token, strlen(ch.token)) == 0) {
            APR_ARRAY_PUSH(job->challenges, acme_job_chal_t) = ch;
        }
    }
    return APR_SUCCESS;
}

apr_status_t acme_job_save(acme_store_t *store, const acme_job_t *job, apr_pool_t *p)
{
    json_t *j = acme_json_pool(p, json_object());
    json_t *chals = json_array();
    int i;

    if (job->ca_url) {
        json_object_set_new(j, "ca", json_string(job->ca_url));
    }
    if (job->order_url) {
        json_object_set_new(j, "order", json_string(job->order_url));
    }
    json_object_set_new(j, "failures", json_integer(job->failures));
    if (job->next_run) {
        json_object_set_new(j, "next-run", json_integer(apr_time_sec(job->next_run)));
    }
    if (job->last_error) {
        json_object_set_new(j, "last-error", json_string(job->last_error));
        json_object_set_new(j, "last-error-time", json_integer(apr_time_sec(job->last_error_time)));
    }
    if (job->last_problem) {
        json_object_set_new(j, "last-problem", json_string(job->last_problem));
    }
    if (job->staged) {
        json_object_set_new(j, "staged", json_integer(apr_time_sec(job->staged)));
    }
    if (job->config) {
        json_object_set_new(j, "config", json_string(job->config));
    }
    if (job->refusal_seen) {
        json_object_set_new(j, "refusal-seen", json_integer(apr_time_sec(job->refusal_seen)));
    }
    if (job->ari_cert && job->ari_check_at) {
        json_t *a = json_pack("{s:s, s:I}", "cert", job->ari_cert, "check-at",
                              (json_int_t)apr_time_sec(job->ari_check_at));
        if (a && job->ari_renew_at) {
            json_object_set_new(a, "window-start", json_integer(apr_time_sec(job->ari_start)));
            json_object_set_new(a, "window-end", json_integer(apr_time_sec(job->ari_end)));
            json_object_set_new(a, "renew-at", json_integer(apr_time_sec(job->ari_renew_at)));
            if (job->ari_explanation) {
                json_object_set_new(a, "explanation", json_string(job->ari_explanation));
            }
        }
        if (a) {
            json_object_set_new(j, "ari", a);
        }
    }
    for (i = 0; i < job->challenges->nelts; i++) {
        const acme_job_chal_t *ch = &APR_ARRAY_IDX(job->challenges, i, acme_job_chal_t);
        json_array_append_new(chals, json_pack("{s:s, s:s, s:s, s:s, s:I}", "type",
                                               ch->type ? ch->type : "http-01", "token", ch->token,
                                               "host", ch->host, "keyauth", ch->keyauth, "expires",
                                               (json_int_t)apr_time_sec(ch->expires)));
    }
    json_object_set_new(j, "challenges", chals);
    return acme_store_json_write(store, job_path(job->name, p), j, p);
}

apr_status_t acme_renew_window_parse(acme_renew_window_t *w, const char *s)
{
    char *end = NULL;
    apr_int64_t n;

    if (!s || !apr_isdigit(*s)) {
        return APR_EINVAL;
    }
    n = apr_strtoi64(s, &end, 10);
    if (n <= 0 || n > 100000000 || !end) {
        return APR_EINVAL;
    }
    memset(w, 0, sizeof(*w));
    if (strcmp(end, "%") == 0) {
        if (n >= 100) {
            return APR_EINVAL;
        }
        w->percent = (int)n;
        return APR_SUCCESS;
    }
    if (*end && end[1]) {
        return APR_EINVAL;
    }
    switch (*end) {
    case 'd':
        n *= 86400;
        break;
    case 'h':
        n *= 3600;
        break;
    case 'm':
        n *= 60;
        break;
    case 's':
    case '\0':
        break;
    default:
        return APR_EINVAL;
    }
    w->left = apr_time_from_sec(n);
    return APR_SUCCESS;
}

apr_time_t acme_renew_at(const acme_renew_window_t *w, apr_time_t not_before, apr_time_t not_after,
                         apr_uint32_t seed)
{
    apr_interval_time_t life = not_after - not_before, window, spread;

    if (life <= 0) {
        return not_before;
    }
    if (w && w->percent) {
        window = life / 100 * w->percent;
    } else if (w && w->left) {
        window = w->left < life ? w->left : life / 2;
    } else {
        window = life <= apr_time_from_sec(10 * 86400) ? life / 2 : life / 3;
    }
    spread = window / 20 < apr_time_from_sec(3600) ? window / 20 : apr_time_from_sec(3600);
    if (spread > 0) {
        window += (apr_interval_time_t)(seed % (apr_uint32_t)(apr_time_sec(spread) + 1)) *
                  APR_USEC_PER_SEC;
    }
    return not_after - window;
}

apr_time_t acme_restart_due(apr_time_t staged, int renewal, apr_time_t limit)
{
    apr_interval_time_t wait;

    if (!renewal || limit <= staged) {
        return staged;
    }
    wait = (limit - staged) / 10;
    return staged + (wait < ACME_RESTART_BATCH ? wait : ACME_RESTART_BATCH);
}

apr_interval_time_t acme_restart_hold(apr_interval_time_t pass)
{
    apr_interval_time_t hold;

    if (pass <= 0) {
        return ACME_RESTART_HOLD_MIN;
    }
    hold = pass > ACME_RESTART_HOLD_MAX / ACME_RESTART_HOLD_SHARE ? ACME_RESTART_HOLD_MAX
                                                                  : pass * ACME_RESTART_HOLD_SHARE;
    return hold < ACME_RESTART_HOLD_MIN ? ACME_RESTART_HOLD_MIN : hold;
}

apr_interval_time_t acme_job_backoff(int failures, int transient)
{
    apr_interval_time_t t = ACME_BACKOFF_FIRST;

    if (!transient) {
        return ACME_BACKOFF_PERMANENT;
    }
    while (--failures > 0 && t < ACME_BACKOFF_MAX) {
        t *= 2;
    }
    return t > ACME_BACKOFF_MAX ? ACME_BACKOFF_MAX : t;
}

void acme_job_failed(acme_job_t *job, apr_status_t rv, const acme_problem_t *prob, apr_time_t now,
                     apr_uint32_t rnd, apr_pool_t *p)
{
    apr_interval_time_t wait;
    apr_int64_t spread;

    job->failures++;
    wait = acme_job_backoff(job->failures, acme_status_is_transient(rv));
    /* +/-20% so that many servers failing together do not come back together. */
    spread = wait / 5;
    if (spread > 0) {
        wait += (apr_int64_t)(rnd % (apr_uint32_t)(2 * spread / 1000 + 1)) * 1000 - spread;
    }
    if (prob && prob->retry_after > wait) {
        wait = prob->retry_after;
    }
    job->next_run = now + wait;
    job->last_error = prob ? acme_problem_describe(prob, p) : acme_strerror(rv, p);
    job->last_problem = prob && prob->type && prob->type[0] ? apr_pstrdup(p, prob->type) : NULL;
    job->last_error_time = now;
}

void acme_job_done(acme_job_t *job)
{
    job->staged = 0;
    job->failures = 0;
    job->next_run = 0;
    job->last_error = NULL;
    job->last_problem = NULL;
    job->last_error_time = 0;
    job->order_url = NULL;
    job->ca_url = NULL;
    apr_array_clear(job->challenges);
}

void acme_job_staged(acme_job_t *job, apr_time_t now)
{
    /* In whole seconds, as saved and as refusals are recorded. */
    job->staged = apr_time_from_sec(apr_time_sec(now) > 0 ? apr_time_sec(now) : 1);
    job->next_run = 0;
    job->order_url = NULL;
    job->ca_url = NULL;
    apr_array_clear(job->challenges);
}

int acme_job_refused(acme_job_t *job, apr_time_t refusal_time, const char *why, apr_time_t now,
                     apr_uint32_t rnd, apr_pool_t *p)
{
    if (!job->staged || refusal_time < job->staged || refusal_time <= job->refusal_seen) {
        return 0;
    }
    job->refusal_seen = refusal_time;
    job->staged = 0;
    acme_job_failed(job, ACME_EBADSTORE,
                    acme_problem_make(ACME_EBADSTORE, 0,
                                      apr_pstrcat(p, "refused at activation: ", why, NULL), p),
                    now, rnd, p);
    return 1;
}
