/* mod_acme_notify.c - ACMENotifyCommand: `program [args] EVENT NAME` with the certificate in
 * the environment, on renewed, activated, failed, expiring and ari-changed (docs/notify.md).
 *
 * The program runs in the watchdog child, as the server's User, never as root: the parent
 * never calls anything here. It is started from the driver's tick (acme_command.c: no shell,
 * its process group killed at ACMENotifyTimeout) and reaped from later ticks, so neither the
 * driver nor a worker ever waits for it. At most NOTIFY_RUNNING_MAX run at once and
 * NOTIFY_QUEUE_MAX more wait; an event beyond those is dropped and logged. Each event is told
 * once: what was told is recorded (acme_notify.c, jobs/<name>.events) when the event is
 * queued, and a command that fails is logged, never run again for the same event.
 *
 * The directives' handlers are here too; they run while the configuration is read.
 */
#include <string.h>

#include <apr_strings.h>

#include "acme_command.h"
#include "acme_notify.h"
#include "mod_acme_notify.h"

#define NOTIFY_EXPIRY_CHECK apr_time_from_sec(60)

typedef struct notify_event_t {
    apr_pool_t *pool;
    const char *domain; /* for log lines */
    const char *event;
    const char **argv, **env;
    apr_interval_time_t timeout;
    acme_command_t *cmd;
} notify_event_t;

typedef struct notifier_t {
    apr_pool_t *pool;
    acme_notify_state_t **state; /* per domain, loaded when the lock is taken; NULL: none */
    apr_pool_t **state_pool;     /* per domain */
    notify_event_t *queue[NOTIFY_QUEUE_MAX];
    int queued;
    notify_event_t *running[NOTIFY_RUNNING_MAX];
    apr_time_t expiry_check;
} notifier_t;

/* --- directives --- */

const char *acme_cmd_notify_command(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->notify_command != NULL);

    (void)dc;
    if (err) {
        return err;
    }
    return acme_cmd_program(cmd, &c->notify_command, argc, argv, "/usr/local/bin/notify");
}

const char *acme_cmd_notify_timeout(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    /* A day at most: the command may run that long beside the server, never longer. */
    return acme_cmd_duration(cmd, &acme_cmd_conf(cmd)->notify_timeout, arg,
                             apr_time_from_sec(86400), "30s, 5m");
}

const char *acme_cmd_expiry_warning(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    return acme_cmd_duration(cmd, &acme_cmd_conf(cmd)->expiry_warning, arg,
                             apr_time_from_sec(400 * 86400), "7d, 48h");
}

/* --- events --- */

static notifier_t *notifier(driver_t *drv)
{
    return drv->notify;
}

static const char *rfc3339(apr_time_t t, apr_pool_t *p)
{
    apr_time_exp_t tm;

    if (!t || apr_time_exp_gmt(&tm, t) != APR_SUCCESS) {
        return "";
    }
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const acme_domain_t *domain_at(driver_t *drv, int i)
{
    return APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
}

/* The state of domain i, loaded on first use after the lock was taken. */
static acme_notify_state_t *state_of(driver_t *drv, int i)
{
    notifier_t *n = notifier(drv);
    const acme_domain_t *d = domain_at(drv, i);
    apr_status_t rv;

    if (!n->state[i]) {
        if (apr_pool_create(&n->state_pool[i], n->pool) != APR_SUCCESS) {
            return NULL;
        }
        rv = acme_notify_load(&n->state[i], drv->rt->store, d->set_name, n->state_pool[i]);
        if (rv != APR_SUCCESS) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, rv, drv->rt->s,
                           "ACME03407: %s: %s/jobs/%s.events cannot be read; starting afresh "
                           "(an event may be told once more)",
                           d->name, drv->rt->store_dir, d->set_name);
        }
    }
    return n->state[i];
}

static void state_save(driver_t *drv, int i)
{
    const acme_domain_t *d = domain_at(drv, i);
    notifier_t *n = notifier(drv);
    apr_pool_t *p;
    apr_status_t rv;

    if (apr_pool_create(&p, n->pool) != APR_SUCCESS) {
        return;
    }
    rv = acme_notify_save(drv->rt->store, d->set_name, n->state[i], p);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, drv->rt->s,
                       "ACME03408: %s: %s/jobs/%s.events cannot be written; events may be told "
                       "again after a restart",
                       d->name, drv->rt->store_dir, d->set_name);
    }
    apr_pool_destroy(p);
}

/* What the event says about the certificate, beside the names. */
typedef struct notify_info_t {
    const char *serial;
    apr_time_t not_after;
    const char *error;
    apr_time_t ari_start, ari_end;
} notify_info_t;

/* Queues event for domain i; dropped (and logged) when the queue is full. */
static void notify_queue(driver_t *drv, int i, const char *event, const notify_info_t *info)
{
    notifier_t *n = notifier(drv);
    const acme_domain_t *d = domain_at(drv, i);
    const apr_array_header_t *cmd = d->conf->notify_command;
    const char *name = APR_ARRAY_IDX(d->names, 0, const char *), *names = "";
    apr_array_header_t *env;
    notify_event_t *ev;
    apr_pool_t *p;
    int k;

    if (n->queued >= NOTIFY_QUEUE_MAX) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, drv->rt->s,
                       "ACME03405: %s: the event %s is dropped: %d notify commands run and %d "
                       "more wait already; ACMENotifyCommand is not run for it",
                       d->name, event, NOTIFY_RUNNING_MAX, NOTIFY_QUEUE_MAX);
        return;
    }
    if (apr_pool_create(&p, n->pool) != APR_SUCCESS) {
        return;
    }
    ev = apr_pcalloc(p, sizeof(*ev));
    ev->pool = p;
    ev->domain = d->name;
    ev->event = event;
    ev->timeout = d->conf->notify_timeout ? d->conf->notify_timeout : ACME_NOTIFY_TIMEOUT;
    ev->argv = apr_pcalloc(p, sizeof(char *) * (apr_size_t)(cmd->nelts + 3));
    for (k = 0; k < cmd->nelts; k++) {
        ev->argv[k] = APR_ARRAY_IDX(cmd, k, const char *);
    }
    ev->argv[k++] = event;
    ev->argv[k] = name;
    for (k = 0; k < d->names->nelts; k++) {
        names = apr_pstrcat(p, names, k ? " " : "", APR_ARRAY_IDX(d->names, k, const char *), NULL);
    }
    env = apr_array_make(p, 12, sizeof(const char *));
#define ENV(fmt, ...) APR_ARRAY_PUSH(env, const char *) = apr_psprintf(p, fmt, __VA_ARGS__)
    ENV("PATH=%s", "/usr/local/bin:/usr/bin:/bin");
    ENV("ACME_EVENT=%s", event);
    ENV("ACME_DOMAIN=%s", name);
    ENV("ACME_NAMES=%s", names);
    ENV("ACME_KEY_TYPE=%s", acme_key_type_name(d->key_type));
    ENV("ACME_SERIAL=%s", info->serial ? info->serial : "");
    ENV("ACME_NOT_AFTER=%s", rfc3339(info->not_after, p));
    ENV("ACME_NOT_AFTER_EPOCH=%s",
        info->not_after ? apr_psprintf(p, "%" APR_TIME_T_FMT, apr_time_sec(info->not_after)) : "");
    ENV("ACME_ERROR=%s", info->error ? info->error : "");
    ENV("ACME_ARI_START=%s", rfc3339(info->ari_start, p));
    ENV("ACME_ARI_END=%s", rfc3339(info->ari_end, p));
#undef ENV
    APR_ARRAY_PUSH(env, const char *) = NULL;
    ev->env = (const char **)env->elts;
    n->queue[n->queued++] = ev;
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                   "ACME03409: %s: event %s queued for ACMENotifyCommand", d->name, event);
}

apr_status_t acme_driver_notify_start(driver_t *drv)
{
    int nd = drv->rt->conf->domains->nelts;
    notifier_t *n;
    apr_pool_t *p;
    apr_status_t rv;

    rv = apr_pool_create(&p, drv->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    n = apr_pcalloc(p, sizeof(*n));
    n->pool = p;
    n->state = apr_pcalloc(p, sizeof(*n->state) * (apr_size_t)(nd ? nd : 1));
    n->state_pool = apr_pcalloc(p, sizeof(*n->state_pool) * (apr_size_t)(nd ? nd : 1));
    drv->notify = n;
    return APR_SUCCESS;
}

static int has_command(driver_t *drv, int i)
{
    return drv->notify && domain_at(drv, i)->conf->notify_command != NULL;
}

static void check_expiring(driver_t *drv, apr_time_t now)
{
    notifier_t *n = notifier(drv);
    int i;

    n->expiry_check = now + NOTIFY_EXPIRY_CHECK;
    for (i = 0; i < drv->rt->conf->domains->nelts; i++) {
        const acme_domain_t *d = domain_at(drv, i);
        apr_interval_time_t warn =
            d->conf->expiry_warning ? d->conf->expiry_warning : ACME_EXPIRY_WARNING;
        acme_notify_state_t *st;
        notify_info_t info;
        if (!has_command(drv, i) || !d->has_active || !(st = state_of(drv, i))) {
            continue;
        }
        if (acme_notify_expiring(st, now, d->not_after, warn, drv->staged[i])) {
            memset(&info, 0, sizeof(info));
            info.serial = d->serial;
            info.not_after = d->not_after;
            state_save(drv, i);
            notify_queue(drv, i, "expiring", &info);
        }
    }
}

void acme_driver_notify_locked(driver_t *drv)
{
    int i;

    for (i = 0; drv->notify && i < drv->rt->conf->domains->nelts; i++) {
        const acme_domain_t *d = domain_at(drv, i);
        acme_notify_state_t *st;
        notify_info_t info;
        int renewed, told;
        if (!has_command(drv, i) || !d->has_active || !d->serial || !(st = state_of(drv, i))) {
            continue;
        }
        memset(&info, 0, sizeof(info));
        info.serial = d->serial;
        info.not_after = d->not_after;
        told = st->exists;
        if (!acme_notify_served(st, d->serial, &renewed, notifier(drv)->state_pool[i])) {
            if (!told) {
                state_save(drv, i); /* the served serial, recorded without telling */
            }
            continue;
        }
        state_save(drv, i);
        if (renewed) {
            notify_queue(drv, i, "renewed", &info);
        }
        notify_queue(drv, i, "activated", &info);
    }
    if (drv->notify) {
        notifier(drv)->expiry_check = 0;
    }
}

void acme_driver_notify_reaped(driver_t *drv, int i, const worker_t *w)
{
    const acme_domain_t *d = domain_at(drv, i);
    notifier_t *n = notifier(drv);
    acme_notify_state_t *st;
    notify_info_t info;

    if (!has_command(drv, i) || !(st = state_of(drv, i))) {
        return;
    }
    memset(&info, 0, sizeof(info));
    if (w->ari_only) {
        info.serial = d->serial;
        info.not_after = d->not_after;
        info.ari_start = w->ari_start;
        info.ari_end = w->ari_end;
        if (w->ari_start &&
            acme_notify_ari(st, d->serial, w->ari_start, w->ari_end, n->state_pool[i])) {
            state_save(drv, i);
            notify_queue(drv, i, "ari-changed", &info);
        } else if (w->ari_start) {
            state_save(drv, i); /* the first window of this certificate */
        }
        return;
    }
    if (w->staged) {
        acme_certset_t *set;
        const char *why;
        apr_pool_t *p;
        if (apr_pool_create(&p, n->pool) != APR_SUCCESS) {
            return;
        }
        if (acme_store_load(&set, drv->rt->store, d->set_name, 1, &why, p) == APR_SUCCESS &&
            set->chain->nelts) {
            const acme_cert_t *leaf = APR_ARRAY_IDX(set->chain, 0, const acme_cert_t *);
            info.serial = acme_cert_serial_hex(leaf, n->state_pool[i]);
            info.not_after = acme_cert_not_after(leaf);
        }
        if (info.serial && acme_notify_renewed(st, info.serial, n->state_pool[i])) {
            state_save(drv, i);
            notify_queue(drv, i, "renewed", &info);
        }
        apr_pool_destroy(p);
        return;
    }
    if (w->failed) {
        acme_driver_notify_refused(drv, i, w->job ? w->job->last_error : NULL);
    }
}

void acme_driver_notify_refused(driver_t *drv, int i, const char *why)
{
    const acme_domain_t *d = domain_at(drv, i);
    acme_notify_state_t *st;
    notify_info_t info;

    if (!has_command(drv, i) || !(st = state_of(drv, i))) {
        return;
    }
    if (acme_notify_failed(st, apr_time_now())) {
        memset(&info, 0, sizeof(info));
        info.serial = d->has_active ? d->serial : NULL;
        info.not_after = d->has_active ? d->not_after : 0;
        info.error = why ? why : "unknown";
        state_save(drv, i);
        notify_queue(drv, i, "failed", &info);
    } else {
        char at[APR_RFC822_DATE_LEN];
        apr_rfc822_date(at, st->failed_at + ACME_NOTIFY_REPEAT);
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                       "ACME03410: %s: failed again; ACMENotifyCommand is told of failures once "
                       "a day, next not before %s",
                       d->name, at);
    }
}

/* Starts ev; 0 when it could not be (logged, and it is done with). */
static int notify_run(driver_t *drv, notify_event_t *ev)
{
    apr_status_t rv;

    rv = acme_command_start(&ev->cmd, ev->argv, ev->env, ev->timeout, NOTIFY_OUTPUT_MAX, ev->pool);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, drv->rt->s,
                       "ACME03404: %s: ACMENotifyCommand %s %s could not be started; the event "
                       "is not told again",
                       ev->domain, ev->argv[0], ev->event);
        apr_pool_destroy(ev->pool);
        return 0;
    }
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                   "ACME03400: %s: ACMENotifyCommand %s %s started", ev->domain, ev->argv[0],
                   ev->event);
    return 1;
}

/* Logs how ev ended and frees it. */
static void notify_done(driver_t *drv, notify_event_t *ev, const acme_command_result_t *res)
{
    const char *ended = res->timed_out
                            ? apr_psprintf(ev->pool, "was killed after %d s (ACMENotifyTimeout)",
                                           (int)apr_time_sec(ev->timeout))
                            : acme_command_ended(res, ev->pool);

    if (res->started && res->exited && res->code == 0) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, drv->rt->s,
                       "ACME03401: %s: ACMENotifyCommand %s %s exited with 0 in %d ms; its "
                       "output: %s",
                       ev->domain, ev->argv[0], ev->event, (int)apr_time_as_msec(res->took),
                       res->output);
    } else {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, drv->rt->s,
                       "ACME03402: %s: ACMENotifyCommand %s %s %s in %d ms; its output: %s; the "
                       "event is not told again",
                       ev->domain, ev->argv[0], ev->event, ended, (int)apr_time_as_msec(res->took),
                       res->output);
    }
    apr_pool_destroy(ev->pool);
}

void acme_driver_notify_tick(driver_t *drv, apr_time_t now)
{
    notifier_t *n = notifier(drv);
    const acme_command_result_t *res;
    int k;

    if (!n) {
        return;
    }
    if (now >= n->expiry_check) {
        check_expiring(drv, now);
    }
    for (k = 0; k < NOTIFY_RUNNING_MAX; k++) {
        notify_event_t *ev = n->running[k];
        if (ev && acme_command_poll(ev->cmd, 0, &res)) {
            notify_done(drv, ev, res);
            n->running[k] = NULL;
        }
        while (!n->running[k] && n->queued) {
            ev = n->queue[0];
            memmove(n->queue, n->queue + 1, sizeof(n->queue[0]) * (apr_size_t)(n->queued - 1));
            n->queued--;
            if (notify_run(drv, ev)) {
                n->running[k] = ev;
            }
        }
    }
}

void acme_driver_notify_stop(driver_t *drv)
{
    notifier_t *n = notifier(drv);
    const acme_command_result_t *res;
    int k, left = 0;

    if (!n) {
        return;
    }
    /* Told once means told: what waits is started now, bounded by the queue's size. */
    for (k = 0; k < n->queued; k++) {
        if (notify_run(drv, n->queue[k])) {
            acme_command_detach(n->queue[k]->cmd);
            left++;
        }
    }
    n->queued = 0;
    for (k = 0; k < NOTIFY_RUNNING_MAX; k++) {
        notify_event_t *ev = n->running[k];
        if (!ev) {
            continue;
        }
        if (acme_command_poll(ev->cmd, 0, &res)) {
            notify_done(drv, ev, res);
        } else {
            acme_command_detach(ev->cmd);
            left++;
        }
        n->running[k] = NULL;
    }
    if (left) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, drv->rt->s,
                       "ACME03406: the renewal driver stops with %d notify command(s) running; "
                       "they are left to finish (killed at ACMENotifyTimeout), their output is "
                       "not logged",
                       left);
    }
}
