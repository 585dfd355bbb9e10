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
 * stderr captured together (the first DNS_OUTPUT_MAX bytes) and logged with the domain; it is
 * killed at ACMEDNSTimeout or when the server stops.
 *
 * worker_* functions run in the worker thread only.
 */
#include <signal.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "acme_csr.h"
#include "acme_dns.h"
#include "mod_acme_drive.h"

#define DNS_OUTPUT_MAX 2048                   /* bytes of the command's output kept for the log */
#define DNS_READ_SLICE apr_time_from_msec(50) /* longest wait on the output pipe */

typedef struct dns01_t {
    worker_t *w;
    apr_array_header_t *pending; /* acme_dns_txt_t set up since the last ready */
} dns01_t;

/* The output as one line for the log: trailing blanks cut, "(none)" when empty. */
static const char *output_text(const char *out, apr_size_t len, apr_size_t dropped, apr_pool_t *p)
{
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' ')) {
        len--;
    }
    if (!len) {
        return "(none)";
    }
    return apr_psprintf(p, "%.*s%s", (int)len, out,
                        dropped ? apr_psprintf(p, " [%" APR_SIZE_T_FMT " more bytes]", dropped)
                                : "");
}

/* Runs the command for one record. APR_SUCCESS when it exited with 0; else *pwhy says how it
 * ended (exit code, signal, killed at the timeout) with its output. */
static apr_status_t worker_dns_command(worker_t *w, const char *action, const char *name,
                                       const char *value, const char **pwhy, apr_pool_t *p)
{
    acme_runtime_t *rt = w->drv->rt;
    const acme_conf_t *conf = w->d->conf; /* the certificate's own settings */
    const apr_array_header_t *cmd = conf->dns_command;
    const char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    apr_interval_time_t limit = conf->dns_timeout ? conf->dns_timeout : ACME_DNS_COMMAND_TIMEOUT;
    const char **argv;
    apr_procattr_t *attr;
    apr_file_t *rd = NULL, *wr = NULL, *devnull = NULL;
    apr_proc_t proc;
    apr_exit_why_e how = APR_PROC_EXIT;
    apr_time_t start = apr_time_now();
    apr_size_t len = 0, dropped = 0;
    char *out = apr_palloc(p, DNS_OUTPUT_MAX);
    const char *ended, *text;
    apr_status_t rv;
    int i, code = 0, exited = 0, eof = 0, killed = 0, stopping = 0;

    argv = apr_pcalloc(p, sizeof(*argv) * (apr_size_t)(cmd->nelts + 4));
    for (i = 0; i < cmd->nelts; i++) {
        argv[i] = APR_ARRAY_IDX(cmd, i, const char *);
    }
    argv[i++] = action;
    argv[i++] = name;
    argv[i++] = value;
    rv = apr_procattr_create(&attr, p);
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_cmdtype_set(attr, APR_PROGRAM); /* execve: no shell, no PATH search */
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_error_check_set(attr, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_pipe_create_ex(&rd, &wr, APR_WRITE_BLOCK, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_open(&devnull, "/dev/null", APR_FOPEN_READ, APR_OS_DEFAULT, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_in_set(attr, devnull, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_out_set(attr, wr, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_err_set(attr, wr, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_proc_create(&proc, argv[0], argv, env, attr, p);
    }
    if (wr) {
        apr_file_close(wr); /* the child has its copies: EOF comes when it (and its own) exit */
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
        rv = ACME_EDNS;
        goto out;
    }
    apr_file_pipe_timeout_set(rd, DNS_READ_SLICE);
    for (;;) {
        char buf[512];
        apr_size_t n = sizeof(buf);
        apr_status_t rrv = eof ? APR_EOF : apr_file_read(rd, buf, &n);
        if (eof) {
            n = 0;
            apr_sleep(DNS_READ_SLICE); /* only the exit is awaited now */
        }
        if (rrv == APR_SUCCESS && n) {
            apr_size_t keep = n < DNS_OUTPUT_MAX - len ? n : DNS_OUTPUT_MAX - len;
            memcpy(out + len, buf, keep);
            len += keep;
            dropped += n - keep;
            continue; /* more may be waiting */
        }
        eof |= APR_STATUS_IS_EOF(rrv);
        if (apr_proc_wait(&proc, &code, &how, APR_NOWAIT) == APR_CHILD_DONE) {
            exited = 1;
            break;
        }
        stopping = apr_atomic_read32(&w->drv->stopping) != 0;
        if (apr_time_now() - start >= limit || stopping) {
            apr_proc_kill(&proc, SIGKILL);
            apr_proc_wait(&proc, &code, &how, APR_WAIT);
            killed = 1;
            break;
        }
    }
    /* What the command wrote just before it ended is still in the pipe; a process it left
     * behind may hold the pipe open, so nothing more is awaited. */
    apr_file_pipe_timeout_set(rd, 0);
    while (exited && !eof && len < DNS_OUTPUT_MAX) {
        apr_size_t n = DNS_OUTPUT_MAX - len;
        if (apr_file_read(rd, out + len, &n) != APR_SUCCESS || !n) {
            break;
        }
        len += n;
    }
    text = output_text(out, len, dropped, p);
    if (killed) {
        ended = stopping ? "was stopped because the server stops"
                         : apr_psprintf(p, "was killed after %d s (ACMEDNSTimeout)",
                                        (int)apr_time_sec(limit));
        rv = stopping ? ACME_ECANCELLED : ACME_EDNS;
    } else if (how == APR_PROC_EXIT && code == 0) {
        ended = "succeeded";
        rv = APR_SUCCESS;
    } else if (how == APR_PROC_EXIT) {
        ended = apr_psprintf(p, "exited with %d", code);
        rv = ACME_EDNS;
    } else {
        ended = apr_psprintf(p, "ended by signal %d", code);
        rv = ACME_EDNS;
    }
    *pwhy =
        apr_psprintf(p, "ACMEDNSCommand %s %s %s %s %s in %d ms; its output: %s", argv[0], action,
                     name, value, ended, (int)apr_time_as_msec(apr_time_now() - start), text);
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
out:
    if (devnull) {
        apr_file_close(devnull);
    }
    if (rd) {
        apr_file_close(rd);
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
