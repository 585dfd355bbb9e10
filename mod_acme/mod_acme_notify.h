/* mod_acme_notify.h - ACMENotifyCommand: the renewal driver tells an operator's program about
 * events of its certificates (docs/notify.md). The driver (mod_acme_drive.c) calls these at
 * each event point; the commands are started and reaped from the driver's tick, never waited
 * for, and never run by the parent (root).
 *
 * acme_driver_notify_* run in the watchdog thread, or in the thread that stops the driver,
 * always under the driver's mutex (drv->mutex): nothing else touches the notifier.
 */
#ifndef MOD_ACME_NOTIFY_H
#define MOD_ACME_NOTIFY_H

#include "mod_acme_drive.h"

#define NOTIFY_RUNNING_MAX 4  /* commands running at once */
#define NOTIFY_QUEUE_MAX   16 /* events waiting beyond those; a newer one is dropped, logged */
#define NOTIFY_OUTPUT_MAX  2048

/* Sets the notifier up (driver_start); APR_SUCCESS also when no certificate has a command. */
apr_status_t acme_driver_notify_start(driver_t *drv);

/* The driver holds the store's lock now: the certificates served in this generation are told
 * as activated (once per serial), and expiring checked. */
void acme_driver_notify_locked(driver_t *drv);

/* Worker w of domain i ended (reap): renewed (it staged a set), failed (it recorded a failed
 * attempt), ari-changed (the CA's renewal window for the served certificate moved). */
void acme_driver_notify_reaped(driver_t *drv, int i, const worker_t *w);

/* The parent refused the set the driver staged for domain i: a failed attempt (why). */
void acme_driver_notify_refused(driver_t *drv, int i, const char *why);

/* Each tick: reaps commands that ended (their output to the error log), starts queued ones,
 * and looks for certificates that expire within ACMEExpiryWarning (once a minute). */
void acme_driver_notify_tick(driver_t *drv, apr_time_t now);

/* The driver stops: queued events are started all the same, and every command still running
 * is left to end by itself (its supervisor kills it at its timeout); their output is no
 * longer logged. */
void acme_driver_notify_stop(driver_t *drv);

#endif /* MOD_ACME_NOTIFY_H */
