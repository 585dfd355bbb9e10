/* mod_acme.c - the module record and the order of things at start-up:
 *
 *   pre_config    register the token table's mutex type
 *   check_config  whole-configuration checks (also run by configtest), then which names each
 *                 challenge type can answer (mod_acme_tlsalpn.c)
 *   post_config   (before mod_ssl's) open the store, promote staged certificates, prepare the
 *                 files mod_ssl asks for through our certificate hooks, create the token table
 *                 and re-publish pending challenges, publish each certificate's status
 *                 (mod_acme_status.c), set up the renewal driver (a watchdog
 *                 singleton in a child) and the parent's restart thread
 *   child_init    attach to the token table
 *
 * Requests: the http-01 answers, then the redirect to https (mod_acme_redirect.c), both in a
 * quick_handler before translate_name.
 *
 * On TLS handshakes that offer acme-tls/1, mod_acme_tlsalpn.c gives mod_ssl the tls-alpn-01
 * answer (ap_hook_ssl_answer_challenge).
 */
#define ACME_MODULE_RECORD
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_main.h>
#include <http_protocol.h>
#include <mpm_common.h>
#include <util_mutex.h>

#include "mod_acme.h"
#include "mod_acme_status.h"

/* The runtime of the current generation: set in post_config, inherited by the children. */
static acme_runtime_t *g_runtime;
static apr_time_t g_pass_began; /* this configuration pass's pre_config, monotonic */

/* A clock that no step of the system's (NTP at boot) moves. */
static apr_time_t monotonic_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return apr_time_from_sec(ts.tv_sec) + ts.tv_nsec / 1000;
}

acme_runtime_t *acme_runtime(void)
{
    return g_runtime;
}

acme_conf_t *acme_conf_get(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &acme_module);
}

static void log_to_httpd(void *baton, acme_log_level_e level, apr_status_t rv, const char *msg)
{
    static const int levels[] = {APLOG_ERR,  APLOG_WARNING, APLOG_NOTICE,
                                 APLOG_INFO, APLOG_DEBUG,   APLOG_TRACE1};
    server_rec *s = baton;

    /* Our own codes mean nothing to APR's strerror; the message names the cause already. */
    if (rv > ACME_ERR_BASE && rv < ACME_ERR_END) {
        rv = APR_SUCCESS;
    }
    ap_log_error(APLOG_MARK, levels[level], rv, s, "%s", msg); /* the core's seam */
}

void acme_log_init(acme_log_t *log, server_rec *s)
{
    int lvl = ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX);

    log->fn = log_to_httpd;
    log->baton = s;
    /* Formatting is skipped for what the server would drop anyway. */
    log->max_level = lvl >= APLOG_TRACE1    ? ACME_LOG_TRACE
                     : lvl >= APLOG_DEBUG   ? ACME_LOG_DEBUG
                     : lvl >= APLOG_INFO    ? ACME_LOG_INFO
                     : lvl >= APLOG_NOTICE  ? ACME_LOG_NOTICE
                     : lvl >= APLOG_WARNING ? ACME_LOG_WARN
                                            : ACME_LOG_ERR;
}

static int acme_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    g_runtime = NULL;
    g_pass_began = monotonic_now();
    return ap_mutex_register(pconf, "acme-tokens", NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
               ? OK
               : HTTP_INTERNAL_SERVER_ERROR;
}

static int acme_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    acme_conf_t *conf = acme_conf_get(s);
    acme_runtime_t *rt;
    apr_status_t rv;
    /* The first pass runs in a process that goes away before the server starts. */
    int first_pass = ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG;

    (void)plog;
    if (!conf->domains->nelts) {
        return OK;
    }
    rt = apr_pcalloc(pconf, sizeof(*rt));
    rt->s = s;
    rt->conf = conf;
    rt->store_dir = conf->store_dir;
    /* What the MPMs look at: -X defines DEBUG; ONE_PROCESS is the other way to ask. */
    rt->one_process = ap_exists_config_define("DEBUG") || ap_exists_config_define("ONE_PROCESS");
    acme_log_init(&rt->log, s);

    rv = acme_store_open(&rt->store, rt->store_dir, pconf);
    if (rv == ACME_EBADSTORE) {
        const char *why = NULL;
        acme_store_check_owner(rt->store_dir, &why, ptemp);
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                       "ACME02101: the store %s (ACMEStoreDir) is refused: %s; the server does not "
                       "start with it",
                       rt->store_dir, why ? why : "a folder changed while it was checked");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                       "ACME01010: cannot open the store %s (ACMEStoreDir); the server cannot "
                       "start without it",
                       rt->store_dir);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* A flag left by an earlier run is moot: promotion happens now anyway. */
    acme_store_remove(rt->store, ACME_RESTART_FLAG, ptemp);
    rv = acme_parent_prepare_certs(rt, pconf, ptemp);
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = acme_parent_tokens_create(rt, pconf);
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    g_runtime = rt;
    if (first_pass) {
        return OK;
    }
    acme_parent_reach_log(rt);
    acme_parent_status_create(rt, pconf, ptemp);
    rv = acme_parent_live_create(rt, pconf); /* ACMEActivation live (mod_acme_live.c) */
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    acme_parent_tokens_republish(rt, ptemp);
    rv = acme_parent_driver_setup(rt, pconf);
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* In one-process mode httpd installs no restart handler: SIGUSR1 would end it. */
    if (conf->auto_restart != 0 && rt->one_process) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                       "ACME02200: one-process mode (-X, -DDEBUG or -DONE_PROCESS) cannot restart "
                       "gracefully, so new certificates are not activated automatically: stop the "
                       "server and start it again to activate them");
    } else if (conf->auto_restart != 0) {
        rv = acme_parent_restarter_start(rt, pconf);
        if (rv != APR_SUCCESS) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* Last of every module's post_config: the pass is done, the children not forked yet (they
 * inherit the figure). */
static int acme_post_config_last(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    (void)s;
    if (g_runtime && g_pass_began) {
        apr_time_t end = monotonic_now();
        g_runtime->pass_time = end > g_pass_began ? end - g_pass_began : 0;
    }
    return OK;
}

static void acme_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)s;
    if (g_runtime) {
        acme_child_tokens_init(g_runtime, pchild);
        acme_child_driver_init(g_runtime, pchild);
    }
}

static void acme_register_hooks(apr_pool_t *p)
{
    /* Ours must run before mod_ssl's post_config, which reads the certificate files. */
    static const char *const before_ssl[] = {"mod_ssl.c", NULL};
    /* Children attach to the token table before mod_watchdog starts the driver in its own
     * child_init. */
    static const char *const before_watchdog[] = {"mod_watchdog.c", NULL};

    (void)p;
    ap_hook_pre_config(acme_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(acme_conf_auto_names, NULL, NULL, APR_HOOK_MIDDLE - 1);
    ap_hook_check_config(acme_conf_check, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(acme_post_config, NULL, before_ssl, APR_HOOK_MIDDLE);
    ap_hook_post_config(acme_post_config_last, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(acme_child_init, NULL, before_watchdog, APR_HOOK_REALLY_FIRST);
    acme_certs_register_hooks();
    acme_challenge_register_hooks();
    acme_redirect_register_hooks();
    acme_tlsalpn_register_hooks();
    acme_status_register_hooks();
    acme_live_register_hooks();
}

AP_DECLARE_MODULE(acme) = {
    STANDARD20_MODULE_STUFF,
    NULL, /* per-directory config: none */
    NULL,
    acme_conf_create, /* per-server config */
    acme_conf_merge,
    acme_cmds,
    acme_register_hooks,
    AP_MODULE_FLAG_ALWAYS_MERGE, /* every vhost gets its own config: vhost_domain */
};
