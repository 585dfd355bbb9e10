/* mod_acme_worker.c - a worker of the renewal driver: one thread that obtains one certificate
 * (account, order, challenges answered by the types the configuration can answer, published in
 * the token table and kept in the job file, finalize with a key kept first, staging) or asks
 * the CA for renewal information (RFC 9773). It has its own pool, transport and ACME client;
 * what it learns goes back to the driver at the join.
 *
 * worker_* functions run in the worker thread only.
 */
#include <signal.h>
#include <string.h>

#include <apr_sha1.h>
#include <apr_strings.h>
#include <http_core.h>

#include "acme_ari.h"
#include "acme_tlsalpn.h"
#include "mod_acme_drive.h"

static const char *key_path(const acme_domain_t *d, apr_pool_t *p)
{
    return apr_pstrcat(p, "jobs/", d->set_name, ".key", NULL);
}

/* --- the responders as the issuance sees them: the core's, over the token table in socache,
 * limited to what the configuration can answer, and each answer kept in the job file --- */

typedef struct worker_responder_t {
    acme_responder_t core; /* the core's responder of the type */
    worker_t *w;
} worker_responder_t;

static int worker_can_answer(acme_responder_t *r, const acme_ident_t *id, int wildcard)
{
    worker_responder_t *wr = r->baton;

    return (!wr->core.can_answer || wr->core.can_answer(&wr->core, id, wildcard)) &&
           acme_reach_can_answer(wr->w->drv->rt->conf, r->type, id, wr->w->pool);
}

static apr_status_t worker_setup(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                                 const char *token, const char *keyauth, apr_time_t expires,
                                 acme_problem_t **pprob, apr_pool_t *p)
{
    worker_responder_t *wr = r->baton;
    worker_t *w = wr->w;
    acme_job_chal_t *ch;
    apr_status_t rv;

    rv = wr->core.setup(&wr->core, id, wildcard, token, keyauth, expires, pprob, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ch = apr_array_push(w->job->challenges);
    ch->type = acme_job_chal_type(r->type);
    ch->token = apr_pstrdup(w->pool, token);
    ch->host = apr_pstrdup(w->pool, id->value);
    ch->keyauth = apr_pstrdup(w->pool, keyauth);
    ch->expires = expires;
    apr_atomic_inc32(&w->challenges);
    /* Persisted so that the parent publishes it again after a restart wiped shared memory. */
    return acme_job_save(w->drv->rt->store, w->job, w->pool);
}

static apr_status_t worker_ready(acme_responder_t *r, apr_time_t deadline, acme_problem_t **pprob,
                                 apr_pool_t *p)
{
    worker_responder_t *wr = r->baton;

    return wr->core.ready(&wr->core, deadline, pprob, p);
}

static void worker_teardown(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                            const char *token, const char *keyauth, apr_pool_t *p)
{
    worker_responder_t *wr = r->baton;
    worker_t *w = wr->w;
    apr_array_header_t *chals = w->job->challenges;
    int i;

    for (i = 0; i < chals->nelts; i++) {
        const acme_job_chal_t *ch = &APR_ARRAY_IDX(chals, i, acme_job_chal_t);
        if (strcmp(ch->token, token) == 0 && strcmp(ch->type, r->type) == 0) {
            memmove(&APR_ARRAY_IDX(chals, i, acme_job_chal_t),
                    &APR_ARRAY_IDX(chals, i + 1, acme_job_chal_t),
                    (size_t)(chals->nelts - i - 1) * sizeof(acme_job_chal_t));
            chals->nelts--;
            apr_atomic_dec32(&w->challenges);
            break;
        }
    }
    acme_job_save(w->drv->rt->store, w->job, w->pool);
    if (wr->core.teardown) {
        wr->core.teardown(&wr->core, id, wildcard, token, keyauth, p);
    }
}

static void worker_on_order(void *baton, const char *url)
{
    worker_t *w = baton;

    if (!w->job->order_url || strcmp(w->job->order_url, url) != 0) {
        w->job->order_url = apr_pstrdup(w->pool, url);
        w->job->ca_url = w->ca_url;
        acme_job_save(w->drv->rt->store, w->job, w->pool);
    }
}

static apr_status_t worker_on_key(void *baton, const acme_key_t *key)
{
    worker_t *w = baton;
    const char *pem;
    apr_size_t len;
    apr_status_t rv;

    rv = acme_key_to_pem(&pem, &len, key, w->pool);
    if (rv == APR_SUCCESS) {
        rv = acme_store_write(w->drv->rt->store, key_path(w->d, w->pool), pem, len,
                              APR_FPROT_UREAD | APR_FPROT_UWRITE, w->pool);
    }
    w->finalizing = rv == APR_SUCCESS;
    return rv;
}

/* The key of a finalized order of an earlier attempt, if one was kept. */
static acme_key_t *worker_kept_key(worker_t *w)
{
    acme_key_t *key = NULL;
    char *pem;
    apr_size_t len;

    if (acme_store_read(&pem, &len, w->drv->rt->store, key_path(w->d, w->pool), ACME_STORE_KEY_MAX,
                        w->pool) != APR_SUCCESS ||
        acme_key_from_pem(&key, pem, len, w->pool) != APR_SUCCESS) {
        return NULL;
    }
    return key;
}

static json_t *set_meta(worker_t *w, apr_pool_t *p)
{
    json_t *names = json_array();
    int i;
    json_t *meta;
    const char *configured = w->d->conf->profile;

    for (i = 0; i < w->d->names->nelts; i++) {
        json_array_append_new(names, json_string(APR_ARRAY_IDX(w->d->names, i, const char *)));
    }
    meta = json_pack("{s:o, s:s, s:s, s:I}", "names", names, "ca", w->ca_url, "key-type",
                     acme_key_type_name(w->d->key_type), "obtained",
                     (json_int_t)apr_time_sec(apr_time_now()));

    /* What the chain was chosen for: a set obtained for this very preference is not ordered
     * again when the CA offered no chain ending at it (mod_acme_certs.c, set_mismatch). */
    if (meta && w->d->conf->preferred_chain) {
        json_object_set_new(meta, "preferred-chain", json_string(w->d->conf->preferred_chain));
    }
    /* The ACMEProfile the set was ordered for, also when the CA did not offer it: a changed
     * ACMEProfile asks for a new certificate (mod_acme_certs.c), an unchanged one never does. */
    if (meta && configured) {
        json_object_set_new(meta, "profile-configured", json_string(configured));
    }
    if (meta && w->profile) {
        json_object_set_new(meta, "profile", json_string(w->profile));
    }
    return acme_json_pool(p, meta);
}

/* A short stable folder suffix for an account: hex of the first bytes of SHA-1(what). */
static const char *account_variant(const char *what, apr_pool_t *p)
{
    unsigned char md[APR_SHA1_DIGESTSIZE];
    apr_sha1_ctx_t ctx;
    char *hex = apr_palloc(p, 17);
    int i;

    apr_sha1_init(&ctx);
    apr_sha1_update(&ctx, what, (unsigned int)strlen(what));
    apr_sha1_final(md, &ctx);
    for (i = 0; i < 8; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return hex;
}

/* The responders for the certificate's ACMEChallenges, in its order (default: http-01, then
 * tls-alpn-01). */
static const apr_array_header_t *worker_responders(worker_t *w, acme_tokens_t *tokens)
{
    apr_array_header_t *out = apr_array_make(w->pool, 3, sizeof(acme_responder_t *));
    int i, n = acme_challenge_count(w->d->conf);

    for (i = 0; i < n; i++) {
        const char *type = acme_challenge_type(w->d->conf, i);
        worker_responder_t *wr = apr_pcalloc(w->pool, sizeof(*wr));
        acme_responder_t *r = apr_pcalloc(w->pool, sizeof(*r));
        if (strcmp(type, "http-01") == 0) {
            acme_responder_http01(&wr->core, tokens);
        } else if (strcmp(type, "tls-alpn-01") == 0) {
            acme_responder_tlsalpn01(&wr->core, tokens);
        } else if (strcmp(type, "dns-01") == 0) {
            /* Keeps its own records in the job file (mod_acme_dns.c). */
            acme_worker_dns01(r, w);
            APR_ARRAY_PUSH(out, acme_responder_t *) = r;
            continue;
        } else {
            continue; /* check_config accepts only the types built here */
        }
        wr->w = w;
        r->type = wr->core.type;
        r->can_answer = worker_can_answer;
        r->setup = worker_setup;
        r->ready = wr->core.ready ? worker_ready : NULL;
        r->teardown = worker_teardown;
        r->baton = wr;
        APR_ARRAY_PUSH(out, acme_responder_t *) = r;
    }
    return out;
}

/* One try against one CA, with a client made for it. */
static apr_status_t worker_issue(worker_t *w, acme_client_t *client, acme_problem_t **pprob)
{
    acme_runtime_t *rt = w->drv->rt;
    acme_conf_t *conf = rt->conf;
    acme_account_req_t areq;
    acme_issue_req_t ireq;
    acme_issue_result_t *res;
    acme_tokens_t *tokens = acme_tokens_socache(rt, w->pool);
    apr_array_header_t *contacts;
    apr_array_header_t *chain;
    const char *why = NULL;
    apr_status_t rv;
    int again;

    memset(&areq, 0, sizeof(areq));
    contacts = apr_array_make(w->pool, 1, sizeof(const char *));
    if (w->d->conf->email) {
        APR_ARRAY_PUSH(contacts, const char *) =
            apr_pstrcat(w->pool, "mailto:", w->d->conf->email, NULL);
    }
    areq.contacts = contacts;
    areq.terms_agreed = conf->agreement == 1;
    /* Read by the parent from a file only root may read (check_config); never logged. */
    areq.eab_kid = w->d->conf->eab_key ? w->d->conf->eab_kid : NULL;
    areq.eab_hmac = w->d->conf->eab_key;
    /* A contact address or an external account binding of the certificate's own (<ACMEDomain>
     * section) is an account of its own at each CA, kept apart from the server's: a binding
     * ties an account to one account of the operator at the CA. */
    if (w->d->section && (w->d->section->email || w->d->section->eab_kid)) {
        const char *e = w->d->section->email, *k = w->d->section->eab_kid;
        areq.variant =
            account_variant(k ? apr_pstrcat(w->pool, e ? e : "", "\neab:", k, NULL) : e, w->pool);
    }
    /* ACMECluster: the account is shared too (docs/cluster.md). A folder that cannot be opened
     * is said by the driver (ACME04010), which then orders nothing. */
    if (conf->cluster &&
        acme_store_open(&areq.shared, conf->cluster->dir, w->pool) != APR_SUCCESS) {
        areq.shared = NULL;
    }

    memset(&ireq, 0, sizeof(ireq));
    ireq.domain = w->d->name;
    ireq.names = w->d->names;
    ireq.key_type = w->d->key_type;
    ireq.tokens = tokens;
    ireq.responders = worker_responders(w, tokens);
    ireq.max_wait = ORDER_WAIT;
    ireq.on_order = worker_on_order;
    ireq.on_key = worker_on_key;
    ireq.baton = w;
    ireq.preferred_chain = w->d->conf->preferred_chain;
    if (w->job->order_url && w->job->ca_url && strcmp(w->job->ca_url, w->ca_url) == 0) {
        ireq.order_url = w->job->order_url;
        ireq.key = worker_kept_key(w);
    }
    /* ACMEKeyReuse on: the key of the current certificate, kept by the parent (never the
     * fallback's; none for a first certificate or after a change of key type). */
    if (!ireq.key && w->d->conf->key_reuse == 2 && w->d->reuse_key) {
        ireq.reuse_key = w->d->reuse_key;
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                       "ACME03710: %s: the new certificate keeps the private key of the current "
                       "one (ACMEKeyReuse on)",
                       w->d->name);
    }

    /* Asked for only when the CA's directory lists it; checked before the account, so that a
     * mandatory profile the CA lacks costs no registration. */
    w->profile = NULL;
    if (w->d->conf->profile) {
        const char *offered = NULL;
        rv = acme_profile_pick(&w->profile, &offered, pprob, client, w->d->conf->profile,
                               w->d->conf->profile_mandatory, w->pool);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (!w->profile && !*w->profile_noted) {
            *w->profile_noted = 1;
            acme_log_error(APLOG_MARK, APLOG_WARNING, 0, rt->s,
                           "ACME02802: %s: the CA %s does not offer the profile %s (it offers: "
                           "%s); ordering without it (the CA's default); add 'mandatory' to "
                           "ACMEProfile to get no certificate instead",
                           w->d->name, w->ca_url, w->d->conf->profile, offered);
        }
        ireq.profile = w->profile;
    }
    for (again = 1; again >= 0; again--) {
        apr_thread_mutex_lock(w->drv->account_mutex);
        rv = acme_account_setup(client, rt->store, &areq, ACME_KEY_EC256, pprob, w->pool);
        apr_thread_mutex_unlock(w->drv->account_mutex);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        /* A renewal names the certificate it replaces (RFC 9773), when the CA does ARI. */
        if (w->d->has_active && w->d->ari_cert_id && acme_ari_offered(client)) {
            ireq.replaces = w->d->ari_cert_id;
        }
        rv = acme_issue(&res, pprob, client, &ireq, w->pool);
        /* The CA forgot the account (a reset test CA, a deleted account): register again. */
        if (rv == ACME_ENOACCOUNT && again) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                           "ACME01051: %s: the CA %s no longer knows our account; registering "
                           "again",
                           w->d->name, w->ca_url);
            apr_thread_mutex_lock(w->drv->account_mutex);
            acme_account_forget(client, rt->store, &areq, w->pool);
            apr_thread_mutex_unlock(w->drv->account_mutex);
            continue;
        }
        break;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (ireq.preferred_chain && res->chain_preferred) {
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                       "ACME02900: %s: keeping the chain that ends at \"%s\" as "
                       "ACMEPreferredChain asks (the CA's %s; chains offered: %s)",
                       w->d->name, ireq.preferred_chain,
                       res->chain_index
                           ? apr_psprintf(w->pool, "alternate chain %d", res->chain_index)
                           : "default chain",
                       res->chain_issuers);
    } else if (ireq.preferred_chain) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, rt->s,
                       "ACME02901: %s: none of the chains %s offers ends at \"%s\" "
                       "(ACMEPreferredChain); chains offered: %s; keeping the default chain",
                       w->d->name, w->ca_url, ireq.preferred_chain,
                       res->chain_issuers ? res->chain_issuers : "none that can be read");
    }
    /* What the parent will check, checked first: a certificate it would refuse is a failed
     * attempt now, without a restart; the next attempt orders anew. */
    rv = acme_cert_chain_parse(&chain, res->chain_pem, res->chain_len, w->pool);
    if (rv == APR_SUCCESS) {
        rv = acme_cert_activation_check(chain, res->key, w->d->names, apr_time_now(), &w->staged_at,
                                        &why, w->pool);
    } else {
        why = "the chain does not parse";
    }
    if (APR_STATUS_IS_EAGAIN(rv)) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, rt->s,
                       "ACME02308: %s: %s; it is staged and activated when it is due", w->d->name,
                       why);
    } else if (rv != APR_SUCCESS) {
        w->job->order_url = NULL;
        *pprob = acme_problem_make(
            ACME_EBADSTORE, 0,
            apr_psprintf(w->pool, "the CA's certificate cannot be used: %s", why), w->pool);
        return ACME_EBADSTORE;
    }
    rv = acme_store_stage(rt->store, w->d->set_name, res->key, res->chain_pem, res->chain_len,
                          set_meta(w, w->pool), &why, w->pool);
    if (rv != APR_SUCCESS) {
        *pprob = acme_problem_make(rv, 0,
                                   apr_psprintf(w->pool,
                                                "the new certificate cannot be "
                                                "stored: %s",
                                                why ? why : acme_strerror(rv, w->pool)),
                                   w->pool);
        return rv;
    }
    return APR_SUCCESS;
}

/* One try against one CA. */
static apr_status_t worker_try(worker_t *w, acme_problem_t **pprob)
{
    acme_client_t *client;
    apr_status_t rv;

    rv = acme_driver_client(&client, w->drv, w->d, w->ca_url, w->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = worker_issue(w, client, pprob);
    acme_driver_client_done(w->drv, client, w->ca_url, rv, w->pool);
    return rv;
}

static const char *when_text(apr_time_t t, apr_pool_t *p)
{
    char buf[APR_RFC822_DATE_LEN];
    apr_rfc822_date(buf, t);
    return apr_pstrdup(p, buf);
}

static apr_status_t worker_obtain(worker_t *w)
{
    acme_runtime_t *rt = w->drv->rt;
    const apr_array_header_t *cas = w->d->conf->ca_urls;
    const char *fallback_ca[] = {ACME_LETSENCRYPT};
    acme_problem_t *prob = NULL;
    apr_uint32_t rnd = 0;
    apr_status_t rv;
    int n, start = 0, k;

    rv = acme_job_load(&w->job, rt->store, w->d->set_name, w->pool);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                       "ACME01052: %s: the job file in %s/jobs cannot be read; starting afresh",
                       w->d->name, rt->store_dir);
    }
    acme_worker_dns01_leftovers(w);
    n = cas ? cas->nelts : 1;
    /* An order in flight continues at its own CA. */
    for (k = 0; cas && w->job->ca_url && k < n; k++) {
        if (strcmp(APR_ARRAY_IDX(cas, k, const char *), w->job->ca_url) == 0) {
            start = k;
        }
    }
    for (k = 0; k < n; k++) {
        w->ca_url = cas ? APR_ARRAY_IDX(cas, (start + k) % n, const char *) : fallback_ca[0];
        prob = NULL;
        w->finalizing = 0;
        rv = worker_try(w, &prob);
        if (rv == APR_SUCCESS || rv == ACME_ECANCELLED || !acme_status_is_transient(rv) ||
            k + 1 == n) {
            break;
        }
        /* This CA was asked to finalize (or may have been: the answer can be lost) and may
         * still issue: another CA would make a second certificate for the names. The order is
         * resumed here at the next attempt, with the key kept. (An order that ended invalid
         * gives none: the next CA may issue.) */
        if (w->finalizing && w->job->order_url && rv != ACME_EINVALID) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                           "ACME02902: %s: %s failed after the order %s was finalized (%s); "
                           "not trying the next ACMECertificateAuthority, which would make a "
                           "second certificate: the order is resumed at %s at the next attempt",
                           w->d->name, w->ca_url, w->job->order_url,
                           prob ? acme_problem_describe(prob, w->pool) : acme_strerror(rv, w->pool),
                           w->ca_url);
            break;
        }
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                       "ACME01053: %s: %s failed (%s); trying the next ACMECertificateAuthority",
                       w->d->name, w->ca_url,
                       prob ? acme_problem_describe(prob, w->pool) : acme_strerror(rv, w->pool));
    }
    if (rv == APR_SUCCESS) {
        /* The failures count on until the parent has activated the set (a refused one is a
         * failed attempt too: driver_settle_staged). */
        acme_job_staged(w->job, apr_time_now());
        acme_job_save(rt->store, w->job, w->pool);
        acme_store_remove(rt->store, key_path(w->d, w->pool), w->pool);
        w->staged = 1;
        w->next_run = 0;
        acme_log_error(
            APLOG_MARK, APLOG_NOTICE, 0, rt->s,
            "ACME01054: %s: new certificate obtained from %s%s%s; %s", w->d->name, w->ca_url,
            w->profile ? " under the profile " : "", w->profile ? w->profile : "",
            rt->one_process ? "one-process mode: stop the server and start it again to "
                              "activate it"
            : w->d->conf->activation == ACME_ACTIVATION_LIVE
                ? "it is served from the next TLS handshake (ACMEActivation live)"
            : rt->conf->auto_restart != 0 ? "a graceful restart activates it shortly"
                                          : "ACMEAutoRestart is off: run '" ACME_RESTART_COMMAND
                                            "' to activate it");
        return APR_SUCCESS;
    }
    if (rv == ACME_ECANCELLED) {
        /* The server stops: nothing counts as failed; the order resumes at the next start. */
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                       "ACME02300: %s: the server is stopping: the work with %s was abandoned; "
                       "it resumes at the next start",
                       w->d->name, w->ca_url);
        return rv;
    }
    apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
    acme_job_failed(w->job, rv, prob, apr_time_now(), rnd, w->pool);
    w->job->config = w->d->config_id;
    acme_job_save(rt->store, w->job, w->pool);
    w->next_run = w->job->next_run;
    w->failed = 1;
    acme_log_error(APLOG_MARK, APLOG_ERR, rv, rt->s,
                   "ACME01055: %s: no certificate from %s: %s; %s; next attempt %s (attempt %d)",
                   w->d->name, w->ca_url, w->job->last_error, acme_problem_advice(rv),
                   when_text(w->next_run, w->pool), w->job->failures);
    return rv;
}

void *APR_THREAD_FUNC acme_worker_main(apr_thread_t *thread, void *data)
{
    worker_t *w = data;
    sigset_t all;

    /* Signals are the server's business: they go to the main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (w->ari_only) {
        acme_worker_ari(w);
    } else {
        worker_obtain(w);
    }
    apr_atomic_set32(&w->done, 1);
    /* Its result (a staged set: a restart) is acted on now, not at the next tick. Before the
     * count below: a stopping child waits for that count only, then may exit and free the
     * driver. w stays valid: the driver frees it only after joining this thread. */
    acme_driver_wake(w->drv);
    /* Stopping, the last worker to finish lets the next generation's driver work. */
    if (apr_atomic_dec32(&w->drv->active) == 0 && apr_atomic_read32(&w->drv->release_when_idle) &&
        w->drv->lock) {
        apr_file_unlock(w->drv->lock);
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}
