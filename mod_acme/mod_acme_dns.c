/* mod_acme_dns.c - the dns-01 responder of a renewal worker (RFC 8555 section 8.4).
 *
 * setup runs ACMEDNSCommand as `program [args] setup NAME VALUE`, teardown as
 * `program [args] teardown NAME VALUE`: NAME is the name validated (a wildcard's base name; the
 * record is _acme-challenge.NAME), VALUE the TXT value. That is mod_md's MDChallengeDns01
 * contract (version 2, which also gives teardown the value), so its scripts work unchanged.
 * ready waits until every value set up for the order can be seen (acme_dns_await) at
 * ACMEDNSResolver or at the zone's authoritative servers, within ACMEDNSPropagationTimeout and
 * the order's deadline. Each record set up is kept in the job file (type dns-01) until it is
 * torn down, so that the next attempt removes what an interrupted one left.
 *
 * The command runs in the watchdog child, as the server's User, without a shell (execve with
 * PATH=/usr/local/bin:/usr/bin:/bin as its whole environment), stdin /dev/null, its stdout and
 * stderr captured together (the first DNS_OUTPUT_MAX bytes) and logged with the domain; its
 * process group is killed at ACMEDNSTimeout or when the server stops (acme_command.c, which
 * ACMENotifyCommand shares).
 *
 * worker_* functions run in the worker thread only.
 */
#include <string.h>

#include <apr_strings.h>

#include "acme_command.h"
#include "acme_csr.h"
#include "acme_dns.h"
#include "mod_acme_drive.h"

#define DNS_OUTPUT_MAX 2048                   /* bytes of the command's output kept for the log */
#define DNS_READ_SLICE apr_time_from_msec(50) /* longest wait on the output pipe */

typedef struct dns01_t {
    worker_t *w;
    apr_array_header_t *pending; /* acme_dns_txt_t set up since the last ready */
} dns01_t;

/* Runs the command for one record (acme_command.c: no shell, its process group killed at
 * ACMEDNSTimeout or when the server stops). APR_SUCCESS when it exited with 0; else *pwhy says
 * how it ended (exit code, signal, killed at the timeout) with its output. */
static apr_status_t worker_dns_command(worker_t *w, const char *action, const char *name,
                                       const char *value, const char **pwhy, apr_pool_t *p)
{
    acme_runtime_t *rt = w->drv->rt;
    const acme_conf_t *conf = w->d->conf; /* the certificate's own settings */
    const apr_array_header_t *cmd = conf->dns_command;
    const char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    apr_interval_time_t limit = conf->dns_timeout ? conf->dns_timeout : ACME_DNS_COMMAND_TIMEOUT;
    const acme_command_result_t *res = NULL;
    acme_command_t *run;
    const char **argv;
    const char *ended;
    apr_status_t rv;
    int i, stopping = 0;

    argv = apr_pcalloc(p, sizeof(*argv) * (apr_size_t)(cmd->nelts + 4));
    for (i = 0; i < cmd->nelts; i++) {
        argv[i] = APR_ARRAY_IDX(cmd, i, const char *);
    }
    argv[i++] = action;
    argv[i++] = name;
    argv[i++] = value;
    rv = acme_command_start(&run, argv, env, limit, DNS_OUTPUT_MAX, p);
    while (rv == APR_SUCCESS && !acme_command_poll(run, DNS_READ_SLICE, &res)) {
        if (!stopping && apr_atomic_read32(&w->drv->stopping)) {
            stopping = 1;
            acme_command_stop(run);
        }
    }
    if (rv == APR_SUCCESS && !res->started) {
        rv = res->err;
    }
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(p, "ACMEDNSCommand %s could not be started: %s", argv[0],
                             acme_strerror(rv, p));
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s, "ACME02714: %s: %s; %s", w->d->name,
                       *pwhy,
                       strcmp(action, "setup") == 0
                           ? "the attempt fails and is retried after its backoff, the current "
                             "certificate stays in use"
                           : "the record may stay in the zone: remove it there");
        return ACME_EDNS;
    }
    if (res->stopped) {
        ended = "was stopped because the server stops";
        rv = ACME_ECANCELLED;
    } else if (res->timed_out) {
        ended = apr_psprintf(p, "was killed after %d s (ACMEDNSTimeout)", (int)apr_time_sec(limit));
        rv = ACME_EDNS;
    } else if (res->exited && res->code == 0) {
        ended = "succeeded";
    } else {
        ended = acme_command_ended(res, p);
        rv = ACME_EDNS;
    }
    *pwhy = apr_psprintf(p, "ACMEDNSCommand %s %s %s %s %s in %d ms; its output: %s", argv[0],
                         action, name, value, ended, (int)apr_time_as_msec(res->took), res->output);
    if (rv == APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s, "ACME02710: %s: %s", w->d->name, *pwhy);
    } else if (rv != ACME_ECANCELLED) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, rt->s, "ACME02711: %s: %s; %s", w->d->name,
                       *pwhy,
                       strcmp(action, "setup") == 0
                           ? "the attempt fails and is retried after its backoff, the current "
                             "certificate stays in use"
                           : "the record may stay in the zone: remove it there");
    }
    return rv;
}

/* Drops the job file's record of token. */
static void worker_dns_forget(worker_t *w, const char *token)
{
    apr_array_header_t *chals = w->job->challenges;
    int i;

    for (i = 0; i < chals->nelts; i++) {
        acme_job_chal_t *ch = &APR_ARRAY_IDX(chals, i, acme_job_chal_t);
        if (strcmp(ch->type, "dns-01") == 0 && strcmp(ch->token, token) == 0) {
            memmove(ch, ch + 1, (size_t)(chals->nelts - i - 1) * sizeof(*ch));
            chals->nelts--;
            apr_atomic_dec32(&w->challenges);
            break;
        }
    }
    acme_job_save(w->drv->rt->store, w->job, w->pool);
}

static int dns01_can_answer(acme_responder_t *r, const acme_ident_t *id, int wildcard)
{
    (void)r;
    (void)wildcard;
    return strcmp(id->type, "dns") == 0; /* RFC 8738 section 7: not for IP addresses */
}

static apr_status_t dns01_setup(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                                const char *token, const char *keyauth, apr_time_t expires,
                                acme_problem_t **pprob, apr_pool_t *p)
{
    dns01_t *dns = r->baton;
    worker_t *w = dns->w;
    acme_job_chal_t *ch;
    acme_dns_txt_t *txt;
    const char *value, *why = NULL;
    apr_status_t rv;

    (void)wildcard;
    rv = acme_dns01_value(&value, keyauth, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* Recorded first: a child killed while the command runs leaves a record the next attempt
     * tears down, rather than one nobody knows about. */
    ch = apr_array_push(w->job->challenges);
    ch->type = "dns-01";
    ch->token = apr_pstrdup(w->pool, token);
    ch->host = apr_pstrdup(w->pool, id->value);
    ch->keyauth = apr_pstrdup(w->pool, keyauth);
    ch->expires = expires;
    apr_atomic_inc32(&w->challenges);
    acme_job_save(w->drv->rt->store, w->job, w->pool);
    rv = worker_dns_command(w, "setup", id->value, value, &why, p);
    if (rv != APR_SUCCESS) {
        /* It stays in the job file: a command that failed or was killed half-way may have set
         * the record all the same, and the next attempt tears it down. */
        *pprob = acme_problem_make(rv, 0, why, p);
        return rv;
    }
    txt = apr_array_push(dns->pending);
    txt->record = acme_dns01_record(apr_pstrdup(w->pool, id->value), w->pool);
    txt->value = apr_pstrdup(w->pool, value);
    txt->seen = 0;
    return APR_SUCCESS;
}

static apr_status_t dns01_ready(acme_responder_t *r, apr_time_t deadline, acme_problem_t **pprob,
                                apr_pool_t *p)
{
    dns01_t *dns = r->baton;
    worker_t *w = dns->w;
    const acme_conf_t *conf = w->d->conf; /* the certificate's own settings */
    acme_dns_opts_t opts;
    apr_time_t start = apr_time_now();
    apr_time_t until =
        start + (conf->dns_propagation ? conf->dns_propagation : ACME_DNS_PROPAGATION);
    const char *why = NULL;
    apr_status_t rv;

    memset(&opts, 0, sizeof(opts));
    opts.resolver = conf->dns_resolver;
    opts.cancel = &w->drv->stopping;
    opts.log = &w->drv->rt->log;
    opts.domain = w->d->name;
    rv = acme_dns_await(dns->pending, &opts, until < deadline ? until : deadline, &w->drv->clock,
                        &why, p);
    dns->pending->nelts = 0;
    if (rv == ACME_ECANCELLED) {
        return rv;
    }
    if (rv != APR_SUCCESS) {
        why = apr_psprintf(p,
                           "%s (waited %d s: ACMEDNSPropagationTimeout, or the order's deadline); "
                           "the CA was not asked to validate",
                           why, (int)apr_time_sec(apr_time_now() - start));
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, w->drv->rt->s,
                       "ACME02712: %s: the dns-01 TXT records are not visible %s: %s; the "
                       "records are removed and the attempt is retried after its backoff, the "
                       "current certificate stays in use",
                       w->d->name,
                       conf->dns_resolver
                           ? apr_psprintf(p, "at ACMEDNSResolver %s", conf->dns_resolver)
                           : "at the zone's authoritative servers",
                       why);
        *pprob = acme_problem_make(ACME_EDNS, 0, why, p);
    }
    return rv;
}

static void dns01_teardown(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                           const char *token, const char *keyauth, apr_pool_t *p)
{
    dns01_t *dns = r->baton;
    const char *value, *why;

    (void)wildcard;
    if (acme_dns01_value(&value, keyauth, p) == APR_SUCCESS) {
        worker_dns_command(dns->w, "teardown", id->value, value, &why, p);
    }
    worker_dns_forget(dns->w, token);
}

void acme_worker_dns01(acme_responder_t *r, worker_t *w)
{
    dns01_t *dns = apr_pcalloc(w->pool, sizeof(*dns));

    dns->w = w;
    dns->pending = apr_array_make(w->pool, 4, sizeof(acme_dns_txt_t));
    memset(r, 0, sizeof(*r));
    r->type = "dns-01";
    r->can_answer = dns01_can_answer;
    r->setup = dns01_setup;
    r->ready = dns01_ready;
    r->teardown = dns01_teardown;
    r->baton = dns;
}

void acme_worker_dns01_leftovers(worker_t *w)
{
    apr_array_header_t *chals = w->job->challenges;
    int i;

    for (i = 0; i < chals->nelts; i++) {
        const acme_job_chal_t *ch = &APR_ARRAY_IDX(chals, i, acme_job_chal_t);
        apr_pool_t *p;
        const char *value, *why, *token;
        if (strcmp(ch->type, "dns-01") != 0) {
            continue;
        }
        token = ch->token;
        /* The job file is the User's: only a host name goes to the command. */
        if (w->d->conf->dns_command && acme_name_is_dns(ch->host) &&
            apr_pool_create(&p, w->pool) == APR_SUCCESS) {
            acme_log_error(APLOG_MARK, APLOG_INFO, 0, w->drv->rt->s,
                           "ACME02713: %s: an earlier attempt left the dns-01 record for %s; "
                           "removing it",
                           w->d->name, ch->host);
            if (acme_dns01_value(&value, ch->keyauth, p) == APR_SUCCESS) {
                worker_dns_command(w, "teardown", ch->host, value, &why, p);
            }
            apr_pool_destroy(p);
        }
        /* Counted when it was set up by an earlier worker, not by this one. */
        apr_atomic_inc32(&w->challenges);
        worker_dns_forget(w, token);
        i--;
    }
}
