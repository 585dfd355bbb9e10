/* acme_notify.c - the bookkeeping of ACMENotifyCommand's events (acme_notify.h). */
#include <string.h>

#include <apr_strings.h>

#include "acme_notify.h"

#define NOTIFY_TIME_MAX 253402300799LL /* the year 9999: beyond, apr_time_t overflows */

static const char *path_of(const char *name, apr_pool_t *p)
{
    return apr_pstrcat(p, "jobs/", name, ".events", NULL);
}

/* A serial as acme_cert_serial_hex writes it: hex digits, bounded; else NULL. */
static const char *serial_member(const json_t *j, const char *key, apr_pool_t *p)
{
    const char *s = acme_json_str(j, key);

    if (!s || !*s || strlen(s) > ACME_NOTIFY_SERIAL_MAX ||
        strspn(s, "0123456789abcdefABCDEF") != strlen(s)) {
        return NULL;
    }
    return apr_pstrdup(p, s);
}

static apr_time_t time_member(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);

    return json_is_integer(v) && json_integer_value(v) > 0 &&
                   json_integer_value(v) <= NOTIFY_TIME_MAX
               ? apr_time_from_sec((apr_time_t)json_integer_value(v))
               : 0;
}

apr_status_t acme_notify_load(acme_notify_state_t **pst, acme_store_t *store, const char *name,
                              apr_pool_t *p)
{
    acme_notify_state_t *st = apr_pcalloc(p, sizeof(*st));
    json_t *j = NULL;
    apr_status_t rv;

    *pst = st;
    rv = acme_store_json_read(&j, store, path_of(name, p), p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return APR_SUCCESS;
    }
    st->exists = 1;
    if (rv != APR_SUCCESS) {
        return rv;
    }
    st->renewed = serial_member(j, "renewed", p);
    st->activated = serial_member(j, "activated", p);
    st->failed_at = time_member(j, "failed-at");
    st->expiring_at = time_member(j, "expiring-at");
    st->ari_serial = serial_member(j, "ari-serial", p);
    st->ari_start = time_member(j, "ari-start");
    st->ari_end = time_member(j, "ari-end");
    return APR_SUCCESS;
}

apr_status_t acme_notify_save(acme_store_t *store, const char *name, acme_notify_state_t *st,
                              apr_pool_t *p)
{
    json_t *j = acme_json_pool(p, json_object());
    apr_status_t rv;

    if (!j) {
        return APR_ENOMEM;
    }
#define SET_STR(k, v)                                                                              \
    if (v)                                                                                         \
    json_object_set_new(j, k, json_string(v))
#define SET_TIME(k, v)                                                                             \
    if (v)                                                                                         \
    json_object_set_new(j, k, json_integer(apr_time_sec(v)))
    SET_STR("renewed", st->renewed);
    SET_STR("activated", st->activated);
    SET_TIME("failed-at", st->failed_at);
    SET_TIME("expiring-at", st->expiring_at);
    SET_STR("ari-serial", st->ari_serial);
    SET_TIME("ari-start", st->ari_start);
    SET_TIME("ari-end", st->ari_end);
#undef SET_STR
#undef SET_TIME
    rv = acme_store_json_write(store, path_of(name, p), j, p);
    if (rv == APR_SUCCESS) {
        st->exists = 1;
    }
    return rv;
}

static int same(const char *a, const char *b)
{
    return a && b && strcasecmp(a, b) == 0;
}

/* 1 when the last time told (0: never) is a day or more before now, or implausibly after it. */
static int repeat_due(apr_time_t last, apr_time_t now)
{
    return !last || now - last >= ACME_NOTIFY_REPEAT || last - now > ACME_NOTIFY_REPEAT;
}

int acme_notify_renewed(acme_notify_state_t *st, const char *serial, apr_pool_t *p)
{
    if (!serial || same(st->renewed, serial)) {
        return 0;
    }
    st->renewed = apr_pstrdup(p, serial);
    st->failed_at = 0;
    st->expiring_at = 0;
    return 1;
}

int acme_notify_activated(acme_notify_state_t *st, const char *serial, apr_pool_t *p)
{
    int tell = st->exists;

    if (!serial || same(st->activated, serial)) {
        return 0;
    }
    st->activated = apr_pstrdup(p, serial);
    st->expiring_at = 0;
    if (!tell && !st->renewed) {
        st->renewed = st->activated; /* nor is it a new one */
    }
    return tell;
}

int acme_notify_served(acme_notify_state_t *st, const char *serial, int *prenewed, apr_pool_t *p)
{
    *prenewed = 0;
    if (!acme_notify_activated(st, serial, p)) {
        return 0;
    }
    *prenewed = acme_notify_renewed(st, serial, p);
    return 1;
}

int acme_notify_failed(acme_notify_state_t *st, apr_time_t now)
{
    if (!repeat_due(st->failed_at, now)) {
        return 0;
    }
    st->failed_at = now;
    return 1;
}

int acme_notify_expiring(acme_notify_state_t *st, apr_time_t now, apr_time_t not_after,
                         apr_interval_time_t warning, int pending)
{
    if (pending || !not_after || not_after - now >= warning || !repeat_due(st->expiring_at, now)) {
        return 0;
    }
    st->expiring_at = now;
    return 1;
}

int acme_notify_ari(acme_notify_state_t *st, const char *serial, apr_time_t start, apr_time_t end,
                    apr_pool_t *p)
{
    int tell;

    if (!serial || !start || !end) {
        return 0;
    }
    /* Kept in whole seconds: a window read back must compare equal to the one seen. */
    start = apr_time_from_sec(apr_time_sec(start));
    end = apr_time_from_sec(apr_time_sec(end));
    tell = same(st->ari_serial, serial) && (st->ari_start != start || st->ari_end != end);
    if (!same(st->ari_serial, serial)) {
        st->ari_serial = apr_pstrdup(p, serial);
    }
    st->ari_start = start;
    st->ari_end = end;
    return tell;
}
