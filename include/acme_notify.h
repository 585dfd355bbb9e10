/* acme_notify.h - what ACMENotifyCommand has told already, per certificate, so that each event
 * is delivered once: `renewed` and `activated` once per serial, `failed` and `expiring` at most
 * once a day while the condition lasts, `ari-changed` when the CA's window for the same
 * certificate moves. Kept in <store>/jobs/<name>.events (the User's, beside the job file), so
 * that it survives restarts; read as hostile input (bounded, every member checked, anything
 * else ignored).
 *
 * The decisions are pure functions of the state and the time (tests/unit/test_notify.c). The
 * renewal driver's thread calls them (mod_acme_notify.c); nothing here is shared.
 */
#ifndef ACME_NOTIFY_H
#define ACME_NOTIFY_H

#include "acme_store.h"

#define ACME_NOTIFY_REPEAT     apr_time_from_sec(86400) /* failed, expiring: at most once a day */
#define ACME_NOTIFY_SERIAL_MAX 64                       /* hex digits of a serial kept */

typedef struct acme_notify_state_t {
    int exists;             /* the file was there (or has been saved): events were told before */
    const char *renewed;    /* serial last told as renewed, or NULL */
    const char *activated;  /* serial last told as activated, or NULL */
    apr_time_t failed_at;   /* when `failed` was told last in this run of failures, or 0 */
    apr_time_t expiring_at; /* when `expiring` was told last, or 0 */
    const char *ari_serial; /* the certificate the window below is of */
    apr_time_t ari_start, ari_end;
} acme_notify_state_t;

/* Loads jobs/<name>.events. A missing file gives an empty state (exists 0) and APR_SUCCESS; a
 * file that cannot be read or does not parse gives an empty state with exists 1 and an error
 * (the caller logs it and goes on: at worst an event is told once more). */
apr_status_t acme_notify_load(acme_notify_state_t **pst, acme_store_t *store, const char *name,
                              apr_pool_t *p);
apr_status_t acme_notify_save(acme_store_t *store, const char *name, acme_notify_state_t *st,
                              apr_pool_t *p);

/* Each returns 1 when the event is to be told now, and records that it was. */

/* A new set of serial was staged: once per serial. A success: `failed` and `expiring` start
 * anew. */
int acme_notify_renewed(acme_notify_state_t *st, const char *serial, apr_pool_t *p);

/* The set of serial is served: once per serial. Without a state file (a server that ran before
 * it had ACMENotifyCommand) the serial is only recorded: it was activated long ago. */
int acme_notify_activated(acme_notify_state_t *st, const char *serial, apr_pool_t *p);

/* The set of serial is served, as a renewal driver finds it at its start: acme_notify_activated,
 * and *prenewed 1 when renewed is to be told first (a set whose driver stopped for the restart
 * before it told it). A served serial that was activated before tells nothing (also when a
 * newer set was told as renewed and then refused at activation). */
int acme_notify_served(acme_notify_state_t *st, const char *serial, int *prenewed, apr_pool_t *p);

/* An attempt failed at now: the first failure, then at most once per ACME_NOTIFY_REPEAT. A
 * time in the state further ahead than that (a clock set back) does not silence it. */
int acme_notify_failed(acme_notify_state_t *st, apr_time_t now);

/* The served certificate ends at not_after, less than warning from now, and no new one is
 * waiting (pending): at most once per ACME_NOTIFY_REPEAT. */
int acme_notify_expiring(acme_notify_state_t *st, apr_time_t now, apr_time_t not_after,
                         apr_interval_time_t warning, int pending);

/* The CA's renewal window for the certificate serial is start..end: told when it differs from
 * the window seen before for the same serial; the first window of a serial is only recorded. */
int acme_notify_ari(acme_notify_state_t *st, const char *serial, apr_time_t start, apr_time_t end,
                    apr_pool_t *p);

#endif /* ACME_NOTIFY_H */
