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
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <http_core.h>
#include <http_main.h>
#include <mpm_common.h>

#include "mod_acme.h"

#define POLL_INTERVAL    apr_time_from_msec(50)
#define LAST_RESTART_KEY "mod_acme-last-restart"

typedef struct restarter_t {
    server_rec *s;
    apr_pool_t *pool; /* unmanaged: the thread's, freed after the join */
    apr_thread_t *thread;
    const char *flag;
    apr_time_t *last_restart;      /* in the process pool: survives generations */
    const char *const *configtest; /* argv of `httpd -t` with this server's -d, -f and -D */
    apr_time_t next_try;           /* after a failed configtest */
    volatile apr_uint32_t stop;
} restarter_t;

/* A graceful restart re-reads the configuration: one that was left half-edited on disk would
 * stop the server. So the configuration is tested first, as apachectl graceful does; its
 * messages go to the error log (our stderr). */
static int configtest_passes(restarter_t *r)
{
    apr_procattr_t *attr;
    apr_proc_t proc;
    apr_exit_why_e why;
    int code = -1;

    if (apr_procattr_create(&attr, r->pool) != APR_SUCCESS ||
        apr_procattr_cmdtype_set(attr, strchr(r->configtest[0], '/')
                                           ? APR_PROGRAM_ENV
                                           : APR_PROGRAM_PATH) != APR_SUCCESS ||
        apr_proc_create(&proc, r->configtest[0], r->configtest, NULL, attr, r->pool) !=
            APR_SUCCESS) {
        return 1; /* cannot test: do as apachectl graceful would without -t */
    }
    apr_proc_wait(&proc, &code, &why, APR_WAIT);
    return why == APR_PROC_EXIT && code == 0;
}

static const char *const *configtest_argv(server_rec *s, apr_pool_t *p)
{
    apr_array_header_t *argv = apr_array_make(p, 8, sizeof(const char *));
    int i;

    APR_ARRAY_PUSH(argv, const char *) = apr_pstrdup(p, ap_server_argv0);
    APR_ARRAY_PUSH(argv, const char *) = "-t";
    APR_ARRAY_PUSH(argv, const char *) = "-d";
    APR_ARRAY_PUSH(argv, const char *) = apr_pstrdup(p, ap_server_root);
    if (ap_conftree && ap_conftree->filename) {
        APR_ARRAY_PUSH(argv, const char *) = "-f";
        APR_ARRAY_PUSH(argv, const char *) = apr_pstrdup(p, ap_conftree->filename);
    }
    for (i = 0; ap_server_config_defines && i < ap_server_config_defines->nelts; i++) {
        APR_ARRAY_PUSH(argv, const char *) = "-D";
        APR_ARRAY_PUSH(argv, const char *) =
            apr_pstrdup(p, APR_ARRAY_IDX(ap_server_config_defines, i, const char *));
    }
    APR_ARRAY_PUSH(argv, const char *) = NULL;
    (void)s;
    return (const char *const *)argv->elts;
}

static void *APR_THREAD_FUNC acme_restarter_main(apr_thread_t *thread, void *data)
{
    restarter_t *r = data;
    apr_finfo_t fi;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!apr_atomic_read32(&r->stop)) {
        apr_time_t now;
        apr_sleep(POLL_INTERVAL);
        /* httpd handles SIGUSR1 only once the MPM runs; before that it would end the server. */
        if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_RUN_MPM ||
            apr_stat(&fi, r->flag, APR_FINFO_MTIME, r->pool) != APR_SUCCESS) {
            continue;
        }
        now = apr_time_now();
        /* A clock stepped back counts as time passed: never wait on a time in the future. */
        if (*r->last_restart && now > *r->last_restart &&
            now - *r->last_restart < ACME_RESTART_MIN_GAP) {
            continue;
        }
        if (now < r->next_try) {
            continue;
        }
        if (!configtest_passes(r)) {
            r->next_try = now + ACME_RESTART_MIN_GAP;
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, r->s,
                         "ACME01072: new certificates are ready, but the configuration on disk "
                         "does not pass 'apachectl configtest' (see above); not restarting. "
                         "They are activated by the next restart once it is fixed; trying again "
                         "in a minute");
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
    r->configtest = configtest_argv(rt->s, p);
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
