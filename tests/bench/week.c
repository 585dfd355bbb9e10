/* week.c - a simulated week of continuous renewals: N certificates of a given lifetime
 * (default 1,000 of 160 hours, Let's Encrypt's shortlived), one-second steps, printed as
 * restarts per hour and how long each certificate was served.
 *
 *   make tests/bench/week && tests/bench/week [--n 1000] [--hours 160] [--days 7]
 *       [--restart-s 8.4] [--order-s 3]
 *
 * What is real: when each certificate is due (acme_renew_at, the driver's rule, with a random
 * serial as its spread seed) and when a staged renewal wants its restart (acme_restart_due).
 * What is modelled, as the driver and the parent do it (docs/apache.md, "Activation"): at most
 * 8 orders at once (DRIVER_WORKERS_MAX), each taking --order-s seconds of which the first two
 * thirds answer challenges; the flag is written when a staged set is due, no challenge is
 * answered, and no order younger than a minute runs (that wait ends a minute after the time
 * due); the parent restarts at most once a minute, and a restart takes --restart-s seconds (8.4
 * s is a graceful restart with 1,000 TLS vhosts measured by tests/bench/scale.py), after which
 * every set staged before it is served. Two policies side by side: "batched" (this module) and
 * "at once" (every staged set due at once: what the driver did before renewals were batched).
 *
 * Two starts: "together" (every certificate first issued at the start, as a new server's) and
 * "steady" (the certificates' ages spread evenly over the time one is served before its
 * renewal, as on a server whose names came over time); in both the week's first certificates count
 * as already served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "acme_job.h"

#define WORKERS      8
#define YOUNG        60 /* s: COALESCE_YOUNG */
#define PARENT_EVERY 60 /* s: the parent restarts at most once a minute */
#define MAX_CERTS    100000

typedef struct cert_t {
    apr_time_t not_before, not_after; /* served */
    apr_uint32_t seed;
    apr_time_t order_start; /* running order, or 0 */
    apr_time_t staged;      /* staged at, or 0 */
    apr_time_t due;         /* ... wants its restart then */
    apr_time_t renew_at;    /* of the served certificate */
} cert_t;

typedef struct result_t {
    long restarts, renewals, past_expiry;
    long per_hour_max;
    double wait_max_s, wait_sum_s; /* staged -> served, renewals */
    double left_min_h;             /* the served certificate's time left when replaced */
} result_t;

static apr_uint32_t rnd32(void)
{
    return ((apr_uint32_t)rand() << 16) ^ (apr_uint32_t)rand();
}

static void simulate(result_t *res, int n, long life_s, int days, double restart_s, int order_s,
                     int steady, int batched)
{
    const apr_time_t sec = APR_USEC_PER_SEC, t0 = apr_time_from_sec(1800000000);
    const long end = (long)days * 86400;
    cert_t *c = calloc((size_t)n, sizeof(*c));
    long *hour = calloc((size_t)(days * 24 + 1), sizeof(long));
    long t, restart_done = -1, restart_began = 0, last_restart = -1000000;
    int i, running = 0, asked = 0;

    memset(res, 0, sizeof(*res));
    res->left_min_h = 1e18;
    srand(12345);
    for (i = 0; i < n; i++) {
        /* Steady: ages spread evenly over the time a certificate is served before it is
         * renewed (its renewal time), as on a server that has run for a while. */
        apr_time_t period;
        long age;
        c[i].seed = rnd32();
        period = acme_renew_at(NULL, t0, t0 + life_s * sec, c[i].seed) - t0;
        age = steady ? (long)((double)apr_time_sec(period) * i / n) : 0;
        c[i].not_before = t0 - age * sec;
        c[i].not_after = c[i].not_before + life_s * sec;
        c[i].renew_at = acme_renew_at(NULL, c[i].not_before, c[i].not_after, c[i].seed);
    }
    for (t = 0; t < end; t++) {
        apr_time_t now = t0 + t * sec, due = 0;
        int any = 0, validating = 0, young = 0;
        /* The parent's restart ends: every set staged before it is served. */
        if (restart_done >= 0 && t >= restart_done) {
            for (i = 0; i < n; i++) {
                if (c[i].staged && c[i].staged <= t0 + restart_began * sec) {
                    double wait = (double)(now - c[i].staged) / sec;
                    double left = (double)(c[i].not_after - now) / sec / 3600;
                    res->renewals++;
                    res->wait_sum_s += wait;
                    res->wait_max_s = wait > res->wait_max_s ? wait : res->wait_max_s;
                    res->left_min_h = left < res->left_min_h ? left : res->left_min_h;
                    c[i].not_before = c[i].staged;
                    c[i].not_after = c[i].staged + life_s * sec;
                    c[i].seed = rnd32();
                    c[i].renew_at = acme_renew_at(NULL, c[i].not_before, c[i].not_after, c[i].seed);
                    c[i].staged = 0;
                }
            }
            restart_done = -1;
            asked = 0;
        }
        for (i = 0; i < n; i++) {
            if (now >= c[i].not_after) {
                res->past_expiry++; /* a second served expired */
            }
            /* The driver: orders end (staged), orders start. */
            if (c[i].order_start && now >= c[i].order_start + order_s * sec) {
                c[i].order_start = 0;
                c[i].staged = now;
                c[i].due = acme_restart_due(now, batched, c[i].not_after);
                running--;
                asked = 0;
            }
            if (!c[i].order_start && !c[i].staged && now >= c[i].renew_at && running < WORKERS) {
                c[i].order_start = now;
                running++;
            }
            if (c[i].order_start) {
                validating |= now < c[i].order_start + (order_s * 2 / 3) * sec;
                young |= now - c[i].order_start < YOUNG * sec;
            }
            if (c[i].staged) {
                due = !any || c[i].due < due ? c[i].due : due;
                any = 1;
            }
        }
        /* acme_driver_ask_restart, then the parent's thread. */
        if (any && !asked && restart_done < 0 && now >= due && !validating &&
            !(young && now < due + YOUNG * sec)) {
            asked = 1;
        }
        if (asked && restart_done < 0 && t - last_restart >= PARENT_EVERY) {
            last_restart = restart_began = t;
            restart_done = t + (long)(restart_s + 0.999);
            res->restarts++;
            hour[t / 3600]++;
        }
    }
    for (t = 0; t < days * 24; t++) {
        res->per_hour_max = hour[t] > res->per_hour_max ? hour[t] : res->per_hour_max;
    }
    free(c);
    free(hour);
}

int main(int argc, char **argv)
{
    int n = 1000, days = 7, order_s = 3, steady, batched, i;
    double hours = 160, restart_s = 8.4;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--n") == 0) {
            n = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--hours") == 0) {
            hours = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--days") == 0) {
            days = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--restart-s") == 0) {
            restart_s = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--order-s") == 0) {
            order_s = atoi(argv[i + 1]);
        } else {
            break;
        }
    }
    if (i < argc || n < 1 || n > MAX_CERTS || days < 1 || hours <= 0 || order_s < 1 ||
        restart_s < 0) {
        fprintf(stderr,
                "usage: %s [--n 1000] [--hours 160] [--days 7] [--restart-s 8.4] "
                "[--order-s 3]\n",
                argv[0]);
        return 2;
    }
    apr_initialize();
    printf("week: %d certificates of %.0f h, %d days, orders of %d s (8 at once), restarts "
           "of %.1f s\n",
           n, hours, days, order_s, restart_s);
    printf("%-9s %-9s %9s %9s %10s %9s %14s %14s %14s %12s\n", "start", "policy", "restarts",
           "per hour", "max/hour", "renewals", "wait mean (s)", "wait max (s)", "left min (h)",
           "expired (s)");
    for (steady = 0; steady <= 1; steady++) {
        for (batched = 1; batched >= 0; batched--) {
            result_t r;
            simulate(&r, n, (long)(hours * 3600), days, restart_s, order_s, steady, batched);
            printf("%-9s %-9s %9ld %9.2f %10ld %9ld %14.1f %14.1f %14.1f %12ld\n",
                   steady ? "steady" : "together", batched ? "batched" : "at once", r.restarts,
                   (double)r.restarts / (days * 24), r.per_hour_max, r.renewals,
                   r.renewals ? r.wait_sum_s / (double)r.renewals : 0.0, r.wait_max_s,
                   r.renewals ? r.left_min_h : 0.0, r.past_expiry);
        }
    }
    apr_terminate();
    return 0;
}
