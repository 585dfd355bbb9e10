/* mod_acme_restart.c - the parent's restart thread: activates staged certificates with a
 * graceful restart, without a person.
 *
 * mod_watchdog has no parent instances on Unix and a child running as the User cannot signal
 * the root parent, so the driver (in a child) leaves a flag file in the store and this small
 * thread of the parent polls for it and signals its own process. It is created in post_config
 * of the generation that serves (never in the short first pass), blocks every signal, has its
 * own unmanaged pool, never waits on the main thread, and is joined by a pre-cleanup of pconf at
 * the next restart. Restarts are at most one per ACME_RESTART_MIN_GAP, counted across
 * generations in the process pool.
 *
 * acme_restarter_* run in that thread; acme_parent_restarter_start in post_config.
 */
#include <signal.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <http_core.h>
#include <mpm_common.h>

#include "mod_acme.h"

#define POLL_INTERVAL apr_time_from_msec(50)
#define LAST_RESTART_KEY "mod_acme-last-restart"

typedef struct restarter_t {
    server_rec *s;
    apr_pool_t *pool; /* unmanaged: the thread's, freed after the join */
    apr_thread_t *thread;
    const char *flag;
    apr_time_t *last_restart; /* in the process pool: survives generations */
    volatile apr_uint32_t stop;
} restarter_t;

static void *APR_THREAD_FUNC acme_restarter_main(apr_thread_t *thread, void *data)
{
    restarter_t *r = data;
    apr_finfo_t fi;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!apr_atomic_read32(&r->stop)) {
        apr_sleep(POLL_INTERVAL);
        if (apr_stat(&fi, r->flag, APR_FINFO_MTIME, r->pool) != APR_SUCCESS) {
            continue;
        }
        if (*r->last_restart && apr_time_now() - *r->last_restart < ACME_RESTART_MIN_GAP) {
            continue;
        }
        /* The flag goes first: a restart re-checks it, a second signal during one is lost. */
        if (unlink(r->flag) != 0) {
            continue;
        }
        *r->last_restart = apr_time_now();
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, r->s,
                     "ACME01070: new certificates are ready; restarting gracefully to activate "
                     "them");
        kill(getpid(), AP_SIG_GRACEFUL);
        break;
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static apr_status_t restarter_join(void *data)
{
    restarter_t *r = data;
    apr_status_t trv;

    apr_atomic_set32(&r->stop, 1);
    apr_thread_join(&trv, r->thread);
    apr_pool_destroy(r->pool);
    return APR_SUCCESS;
}

apr_status_t acme_parent_restarter_start(acme_runtime_t *rt, apr_pool_t *pconf)
{
    apr_pool_t *pproc = rt->s->process->pool;
    apr_threadattr_t *attr;
    restarter_t *r;
    void *last = NULL;
    apr_pool_t *p;
    apr_status_t rv;

    rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    r = apr_pcalloc(p, sizeof(*r));
    r->s = rt->s;
    r->pool = p;
    r->flag = acme_store_path(rt->store, ACME_RESTART_FLAG, p);
    apr_pool_userdata_get(&last, LAST_RESTART_KEY, pproc);
    if (!last) {
        last = apr_pcalloc(pproc, sizeof(apr_time_t));
        apr_pool_userdata_set(last, LAST_RESTART_KEY, apr_pool_cleanup_null, pproc);
    }
    r->last_restart = last;
    rv = apr_threadattr_create(&attr, p);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&r->thread, attr, acme_restarter_main, r, p);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, rt->s,
                     "ACME01071: cannot start the restart thread; set ACMEAutoRestart off to run "
                     "without it");
        apr_pool_destroy(p);
        return rv;
    }
    apr_pool_pre_cleanup_register(pconf, r, restarter_join);
    return APR_SUCCESS;
}
