/* mod_acme_cluster.c - cluster mode (ACMECluster, docs/cluster.md): several nodes, one order per
 * certificate, the set shared through a folder.
 *
 * The directive is read in mod_acme_cluster_cmd.c. All of this runs in the renewal driver's
 * watchdog thread, in a child, as the User: before a worker orders, the driver takes the
 * certificate's lease in the engine (an atomic add with an expiry) with a fencing token (an
 * increment of the certificate's counter); while the worker runs the driver renews the lease;
 * once the worker staged a set the driver publishes it to the shared folder (unless the folder
 * holds a set with a newer token) and lets the lease go. Every node looks at the shared folder
 * once a second and stages a set there that is valid for its names and newer than its own in its
 * own store: from there the parent (root) checks and activates it as any staged set (graceful
 * restart, or live). The shared folder is the User's: what it holds is checked as staging is.
 */
#include <string.h>

#include <apr_md5.h>
#include <apr_strings.h>
#include <http_core.h>

#include "acme_cluster.h"
#include "mod_acme_drive.h"

#define ENGINE_TIMEOUT apr_time_from_sec(1) /* each network wait on the engine */
#define RETRY          apr_time_from_sec(1) /* the next lease attempt after a refusal */
#define LOOK_EVERY     apr_time_from_sec(1) /* the shared folder, the engine's epoch */
#define WAIT_LOG_EVERY apr_time_from_sec(10)
#define EPOCH_KEY      "mod_acme:epoch"

typedef struct {
    int held;                  /* this node holds the certificate's lease */
    apr_uint64_t token;        /* ... with this fencing token */
    char value[96];            /* ... and this value in the engine */
    apr_time_t renewed;        /* when it was last taken or renewed */
    apr_time_t renew_retry;    /* no renewal before (after a failed one) */
    apr_time_t next_try;       /* no lease attempt before */
    apr_time_t wait_logged;    /* the last "waiting" line */
    apr_time_t shared_mtime;   /* meta.json of the shared set when last looked at */
    apr_ino_t shared_inode;    /* ... and its inode */
    apr_time_t shared_look;    /* next look at the shared folder */
    apr_uint64_t shared_token; /* the token the shared set recorded when last looked at */
} cl_dom_t;

typedef struct {
    const acme_cluster_conf_t *conf;
    acme_cluster_engine_t *engine;
    acme_store_t *shared; /* NULL until it could be opened */
    apr_time_t shared_retry;
    cl_dom_t *dom;
    char epoch[40];
    apr_time_t epoch_look;
    apr_time_t quiet_until; /* after the engine lost its keys: no new lease before */
} cluster_t;

/* memcached takes keys of at most 250 bytes: long names are hashed. */
static const char *domain_key(const acme_domain_t *d, const char *what, apr_pool_t *p)
{
    unsigned char md[APR_MD5_DIGESTSIZE];
    char hex[2 * APR_MD5_DIGESTSIZE + 1];
    int k;

    if (strlen(d->set_name) <= 200) {
        return apr_pstrcat(p, "mod_acme:", what, ":", d->set_name, NULL);
    }
    apr_md5(md, d->set_name, strlen(d->set_name));
    for (k = 0; k < APR_MD5_DIGESTSIZE; k++) {
        apr_snprintf(hex + 2 * k, 3, "%02x", md[k]);
    }
    return apr_pstrcat(p, "mod_acme:", what, ":#", hex, NULL);
}

static const char *shared_rel(const acme_domain_t *d, const char *file, apr_pool_t *p)
{
    return apr_pstrcat(p, "staging/", d->set_name, file ? "/" : NULL, file, NULL);
}

/* The fencing token the shared set of d recorded (meta.json "cluster": {"token": N}), 0: none. */
static apr_uint64_t shared_token(cluster_t *cl, const acme_domain_t *d, apr_pool_t *p)
{
    json_t *meta, *t;

    if (!cl->shared ||
        acme_store_json_read(&meta, cl->shared, shared_rel(d, ACME_STORE_META_FILE, p), p) !=
            APR_SUCCESS) {
        return 0;
    }
    t = json_object_get(json_object_get(meta, "cluster"), "token");
    return json_is_integer(t) && json_integer_value(t) > 0 ? (apr_uint64_t)json_integer_value(t)
                                                           : 0;
}

/* The shared folder, opened as a store of the User's (acme_store_open: its folders must be the
 * User's and closed to others); tried again a minute after a failure. */
static int shared_open(driver_t *drv, cluster_t *cl, apr_time_t now)
{
    apr_status_t rv;

    if (cl->shared || now < cl->shared_retry) {
        return cl->shared != NULL;
    }
    rv = acme_store_open(&cl->shared, cl->conf->dir, drv->pool);
    if (rv != APR_SUCCESS) {
        cl->shared = NULL;
        cl->shared_retry = now + apr_time_from_sec(60);
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                       "ACME04010: ACMECluster: the shared folder %s cannot be used (it must "
                       "exist or be creatable, belong to the User and be closed to others); no "
                       "set is published nor imported, no order is placed; trying again in a "
                       "minute",
                       cl->conf->dir);
    }
    return cl->shared != NULL;
}

/* Stages the shared set of domain i in this node's store when it is valid for the domain's
 * names and newer than the node's own: the parent activates it as any staged set. 1 when it
 * did (or such a set is staged already). */
static int import_shared(driver_t *drv, cluster_t *cl, int i, apr_time_t now, apr_pool_t *ptemp)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    cl_dom_t *cd = &cl->dom[i];
    acme_certset_t *set;
    const acme_cert_t *leaf;
    const char *why = NULL;
    char *pem;
    apr_size_t len;
    apr_finfo_t fi;
    apr_time_t when;
    apr_status_t rv, crv;

    if (drv->staged[i]) {
        return 1;
    }
    if (!shared_open(drv, cl, now) ||
        apr_stat(&fi,
                 acme_store_path(cl->shared, shared_rel(d, ACME_STORE_META_FILE, ptemp), ptemp),
                 APR_FINFO_MTIME | APR_FINFO_INODE, ptemp) != APR_SUCCESS ||
        (fi.mtime == cd->shared_mtime && fi.inode == cd->shared_inode)) {
        return 0;
    }
    /* A publication is a new folder moved in: a new inode even where the folder's file system
     * keeps mtimes to the second (NFS). */
    cd->shared_mtime = fi.mtime;
    cd->shared_inode = fi.inode;
    cd->shared_token = shared_token(cl, d, ptemp);
    /* The checks promotion makes (names, key, chain, times), and the set loaded without
     * following links. */
    crv = acme_store_check_staged_at(cl->shared, d->set_name, d->names, now, &when, &why, ptemp);
    rv = APR_STATUS_IS_EAGAIN(crv) ? APR_SUCCESS : crv;
    if (rv == APR_SUCCESS) {
        rv = acme_store_load(&set, cl->shared, d->set_name, 1, &why, ptemp);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_store_read(&pem, &len, cl->shared, shared_rel(d, ACME_STORE_CHAIN_FILE, ptemp),
                             ACME_STORE_JSON_MAX, ptemp);
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, drv->rt->s,
                       "ACME04011: %s: the set in the shared folder %s/%s is not taken: %s; this "
                       "node keeps its own and looks again when it changes",
                       d->name, cl->conf->dir, shared_rel(d, NULL, ptemp),
                       why ? why : "unreadable");
        return 0;
    }
    leaf = APR_ARRAY_IDX(set->chain, 0, const acme_cert_t *);
    /* Ours is as new: published by this node, or an older one. Also when ours no longer fits
     * the configuration (a changed key type): the same set again would not fit either, and
     * this node orders one that does. */
    if (d->has_active && acme_cert_not_after(leaf) <= d->not_after) {
        return 0;
    }
    rv = acme_store_stage(drv->rt->store, d->set_name, set->key, pem, len, set->meta, &why, ptemp);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                       "ACME04012: %s: the shared set cannot be staged in this node's store: %s; "
                       "trying again when it changes",
                       d->name, why ? why : "write failed");
        return 0;
    }
    drv->staged[i] = 1;
    drv->staged_at[i] = APR_STATUS_IS_EAGAIN(crv) ? when : 0;
    drv->restart_more = 1;
    acme_driver_restart_due(drv, i, 1); /* a renewal shares a restart here too */
    acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, drv->rt->s,
                   "ACME04013: %s: imported the certificate another node published (serial %s, "
                   "token %" APR_UINT64_T_FMT "); it is activated as a staged set",
                   d->name, acme_cert_serial_hex(leaf, ptemp), cd->shared_token);
    return 1;
}

/* Renews the leases of the orders running here, every third of the lease; takes a lease back
 * that the engine lost (restarted) and gives up one that another node holds now. */
static void renew_leases(driver_t *drv, cluster_t *cl, apr_time_t now, int force, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    int i;

    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        cl_dom_t *cd = &cl->dom[i];
        const char *key;
        apr_status_t rv;

        if (!cd->held || (!force && (now - cd->renewed < apr_time_from_sec(cl->conf->lease) / 3 ||
                                     now < cd->renew_retry))) {
            continue;
        }
        cd->renew_retry = now + RETRY; /* after a failure: once a second, not at every tick */
        key = domain_key(d, "lease", ptemp);
        rv = acme_cluster_renew(cl->engine, key, cd->value, cl->conf->lease);
        if (APR_STATUS_IS_NOTFOUND(rv)) {
            rv = acme_cluster_add(cl->engine, key, cd->value, cl->conf->lease);
            if (rv == APR_SUCCESS) {
                acme_log_error(APLOG_MARK, APLOG_WARNING, 0, drv->rt->s,
                               "ACME04004: %s: the order lease was gone from the engine "
                               "(restarted?); this node took it back (token %" APR_UINT64_T_FMT
                               ") and its order goes on",
                               d->name, cd->token);
            }
        }
        if (rv == APR_SUCCESS) {
            cd->renewed = now;
            continue;
        }
        if (APR_STATUS_IS_EEXIST(rv) || now - cd->renewed >= apr_time_from_sec(cl->conf->lease)) {
            cd->held = 0;
            acme_log_error(APLOG_MARK, APLOG_ERR, APR_STATUS_IS_EEXIST(rv) ? 0 : rv, drv->rt->s,
                           "ACME04005: %s: this node lost the order lease (%s); its order goes "
                           "on but its certificate is published only if no newer one is "
                           "(token %" APR_UINT64_T_FMT ")",
                           d->name,
                           APR_STATUS_IS_EEXIST(rv) ? "another node holds it"
                                                    : "not renewed within the lease",
                           cd->token);
        } else if (now - cd->wait_logged >= WAIT_LOG_EVERY) {
            cd->wait_logged = now;
            acme_log_error(APLOG_MARK, APLOG_WARNING, rv, drv->rt->s,
                           "ACME04006: %s: the order lease cannot be renewed in %s; trying "
                           "again each second (it runs out %d s after the last renewal)",
                           d->name, cl->conf->engine, cl->conf->lease);
        }
    }
}

/* The challenge answers of the orders running here, published again: with ACMEChallengeCache
 * in the same engine they went with its keys. Read from the job files (written atomically by
 * the workers). */
static void republish_answers(driver_t *drv, cluster_t *cl, apr_time_t now, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    acme_tokens_t *tokens = acme_tokens_socache(drv->rt, ptemp);
    int i, n;

    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        acme_job_t *job;

        if (!cl->dom[i].held || !drv->workers[i] ||
            acme_job_load(&job, drv->rt->store, d->set_name, ptemp) != APR_SUCCESS) {
            continue;
        }
        n = acme_tokens_publish_job(drv->rt, tokens, d, job, now, ptemp);
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                       "ACME04014: %s: %d challenge answer(s) of the running order published "
                       "again after the engine lost its keys",
                       d->name, n);
    }
}

/* Notices an engine that lost its keys (a restart): its epoch key is gone or another. Orders
 * running here take their leases back at once; no node takes a new lease for one lease
 * period, so that a node whose order runs comes first. */
static apr_status_t epoch_check(driver_t *drv, cluster_t *cl, apr_time_t now, int force,
                                apr_pool_t *ptemp)
{
    unsigned char rnd[8];
    char fresh[40], *seen = NULL;
    apr_status_t rv;

    if (!force && now < cl->epoch_look) {
        return APR_SUCCESS;
    }
    cl->epoch_look = now + LOOK_EVERY;
    rv = acme_cluster_get(cl->engine, EPOCH_KEY, &seen, ptemp);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        apr_generate_random_bytes(rnd, sizeof(rnd));
        apr_snprintf(fresh, sizeof(fresh), "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        rv = acme_cluster_add(cl->engine, EPOCH_KEY, fresh, 0);
        if (rv == APR_SUCCESS || APR_STATUS_IS_EEXIST(rv)) {
            rv = acme_cluster_get(cl->engine, EPOCH_KEY, &seen, ptemp);
        }
    }
    if (rv == APR_SUCCESS && strlen(seen) >= sizeof(cl->epoch)) {
        rv = ACME_EPROTO;
    }
    if (rv != APR_SUCCESS) {
        return rv; /* the lease calls say what is wrong with the engine */
    }
    if (cl->epoch[0] && strcmp(cl->epoch, seen) != 0) {
        cl->quiet_until = now + apr_time_from_sec(cl->conf->lease);
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, drv->rt->s,
                       "ACME04007: the cluster engine %s lost its keys (restarted?): orders "
                       "running on this node take their leases back now, and no new order "
                       "starts here for %d s",
                       cl->conf->engine, cl->conf->lease);
        renew_leases(drv, cl, now, 1, ptemp);
    }
    apr_cpystrn(cl->epoch, seen, sizeof(cl->epoch));
    /* Each second of the quiet period: a client of the challenge cache may refuse the engine
     * for a few seconds after it failed (apr_memcache, apr_redis), and storing again is
     * harmless. */
    if (now < cl->quiet_until) {
        republish_answers(drv, cl, now, ptemp);
    }
    return APR_SUCCESS;
}

static void wait_log(driver_t *drv, cl_dom_t *cd, const acme_domain_t *d, apr_time_t now,
                     apr_status_t rv, const char *what)
{
    if (now - cd->wait_logged < WAIT_LOG_EVERY) {
        return;
    }
    cd->wait_logged = now;
    acme_log_error(APLOG_MARK, rv ? APLOG_ERR : APLOG_INFO, rv, drv->rt->s,
                   "ACME04003: %s: no order from this node: %s; looking again every second",
                   d->name, what);
}

int acme_driver_cluster_may_order(driver_t *drv, int i, apr_time_t now, apr_pool_t *ptemp)
{
    cluster_t *cl = drv->cluster;
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    cl_dom_t *cd;
    apr_uint64_t token, held_token;
    char node[ACME_CLUSTER_NODE_MAX + 1], *holder;
    const char *unusable;
    apr_status_t rv;

    if (!cl) {
        return 1;
    }
    cd = &cl->dom[i];
    if (cd->held) {
        return 1;
    }
    cd->shared_look = now + LOOK_EVERY;
    if (import_shared(drv, cl, i, now, ptemp) || now < cd->next_try) {
        return 0;
    }
    cd->next_try = now + RETRY;
    unusable = apr_psprintf(ptemp,
                            "the cluster engine %s cannot be used for the order lease (down or "
                            "answering nonsense); never ordering without it",
                            cl->conf->engine);
    if (!cl->shared) {
        wait_log(drv, cd, d, now, APR_EGENERAL, "the shared folder cannot be used (ACME04010)");
        return 0;
    }
    /* A lease is never taken in an engine that lost its keys before this node noticed: the
     * node whose order runs there takes its lease back first. */
    rv = epoch_check(drv, cl, now, 1, ptemp);
    if (rv != APR_SUCCESS) {
        wait_log(drv, cd, d, now, rv, unusable);
        return 0;
    }
    if (now < cl->quiet_until) {
        wait_log(drv, cd, d, now, 0,
                 "the engine lost its keys lately: a node whose order runs may take its lease "
                 "back first");
        return 0;
    }
    rv = acme_cluster_incr(cl->engine, domain_key(d, "fence", ptemp), cd->shared_token, &token);
    if (rv == APR_SUCCESS) {
        apr_snprintf(cd->value, sizeof(cd->value), "%s",
                     acme_cluster_lease_value(token, cl->conf->node, ptemp));
        rv =
            acme_cluster_add(cl->engine, domain_key(d, "lease", ptemp), cd->value, cl->conf->lease);
    }
    if (rv == APR_SUCCESS) {
        cd->held = 1;
        cd->token = token;
        cd->renewed = now;
        cd->wait_logged = 0;
        acme_log_error(
            APLOG_MARK, APLOG_INFO, 0, drv->rt->s,
            "ACME04001: %s: this node (%s) holds the order lease (token %" APR_UINT64_T_FMT
            ", %d s, renewed while the order runs): ordering",
            d->name, cl->conf->node, token, cl->conf->lease);
        return 1;
    }
    if (APR_STATUS_IS_EEXIST(rv)) {
        if (acme_cluster_get(cl->engine, domain_key(d, "lease", ptemp), &holder, ptemp) ==
                APR_SUCCESS &&
            acme_cluster_lease_parse(holder, strlen(holder), &held_token, node) == APR_SUCCESS) {
            wait_log(drv, cd, d, now, 0,
                     apr_psprintf(ptemp,
                                  "node %s holds the order lease (token %" APR_UINT64_T_FMT
                                  "); its certificate is imported once it publishes it",
                                  node, held_token));
        } else {
            wait_log(drv, cd, d, now, 0, "another node holds the order lease");
        }
        return 0;
    }
    wait_log(drv, cd, d, now, rv, unusable);
    return 0;
}

void acme_driver_cluster_tick(driver_t *drv, apr_time_t now, apr_pool_t *ptemp)
{
    cluster_t *cl = drv->cluster;
    apr_array_header_t *domains = drv->rt->conf->domains;
    int i;

    if (!cl) {
        return;
    }
    epoch_check(drv, cl, now, 0, ptemp);
    renew_leases(drv, cl, now, 0, ptemp);
    /* Sets another node obtained: the domains this node is not working on. */
    for (i = 0; i < domains->nelts; i++) {
        if (!drv->workers[i] && !drv->staged[i] && now >= cl->dom[i].shared_look) {
            cl->dom[i].shared_look = now + LOOK_EVERY;
            import_shared(drv, cl, i, now, ptemp);
        }
    }
}

/* Publishes the set worker w staged to the shared folder, unless it holds a newer one. */
static void publish(driver_t *drv, cluster_t *cl, int i, apr_pool_t *p)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    cl_dom_t *cd = &cl->dom[i];
    acme_certset_t *set;
    apr_uint64_t newest;
    apr_time_t when;
    json_t *meta;
    const char *why = NULL;
    char *pem;
    apr_size_t len;
    apr_status_t rv;

    if (!shared_open(drv, cl, apr_time_now())) {
        return;
    }
    newest = shared_token(cl, d, p);
    /* Only a set that is usable counts: a planted one with a huge token must not keep every
     * later set out. */
    if (newest > cd->token) {
        rv = acme_store_check_staged_at(cl->shared, d->set_name, d->names, apr_time_now(), &when,
                                        &why, p);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
            newest = 0;
        }
        why = NULL;
    }
    if (newest > cd->token) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, drv->rt->s,
                       "ACME04008: %s: the shared folder holds a set of a newer order (token "
                       "%" APR_UINT64_T_FMT " > %" APR_UINT64_T_FMT "): this node's set is not "
                       "published over it",
                       d->name, newest, cd->token);
        return;
    }
    rv = acme_store_load(&set, drv->rt->store, d->set_name, 1, &why, p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_read(&pem, &len, drv->rt->store, shared_rel(d, ACME_STORE_CHAIN_FILE, p),
                             ACME_STORE_JSON_MAX, p);
    }
    if (rv == APR_SUCCESS) {
        meta = json_deep_copy(set->meta);
        json_object_set_new(
            meta, "cluster",
            json_pack("{s:I, s:s}", "token", (json_int_t)cd->token, "node", cl->conf->node));
        rv = acme_store_stage(cl->shared, d->set_name, set->key, pem, len, acme_json_pool(p, meta),
                              &why, p);
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                       "ACME04009: %s: the new certificate cannot be published to the shared "
                       "folder %s: %s; this node activates it, the others keep theirs until "
                       "their own renewal",
                       d->name, cl->conf->dir, why ? why : "write failed");
        return;
    }
    acme_log_error(APLOG_MARK, APLOG_INFO, 0, drv->rt->s,
                   "ACME04002: %s: the new certificate is published to %s (token "
                   "%" APR_UINT64_T_FMT "): the other nodes import it",
                   d->name, cl->conf->dir, cd->token);
}

void acme_driver_cluster_reaped(driver_t *drv, int i, const worker_t *w)
{
    cluster_t *cl = drv->cluster;
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    cl_dom_t *cd;

    if (!cl || w->ari_only || !cl->dom[i].token) {
        return;
    }
    cd = &cl->dom[i];
    if (w->staged) {
        publish(drv, cl, i, w->pool);
    }
    if (cd->held && w->failed && !w->staged) {
        /* The backoff after a failure is this node's: the lease, left to run out, keeps the
         * other nodes from trying the same CA at once. */
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, drv->rt->s,
                       "ACME04017: %s: the attempt failed; the order lease is left to run out "
                       "(at most %d s), so that no other node tries again before",
                       d->name, cl->conf->lease);
    } else if (cd->held) {
        /* Published first, released after: a node that takes the lease next finds the set. */
        acme_cluster_del(cl->engine, domain_key(d, "lease", w->pool), cd->value);
    }
    cd->held = 0;
    cd->token = 0;
    cd->shared_mtime = 0; /* looked at again: this node's own set is not imported */
    cd->shared_inode = 0;
}

apr_status_t acme_driver_cluster_start(driver_t *drv)
{
    const acme_cluster_conf_t *conf = drv->rt->conf->cluster;
    cluster_t *cl;
    apr_status_t rv;

    if (!conf) {
        return APR_SUCCESS;
    }
    cl = apr_pcalloc(drv->pool, sizeof(*cl));
    cl->conf = conf;
    cl->dom = apr_pcalloc(drv->pool, sizeof(cl_dom_t) * (apr_size_t)drv->rt->conf->domains->nelts);
    rv = acme_cluster_engine_create(&cl->engine, conf->engine, ENGINE_TIMEOUT, drv->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    drv->cluster = cl;
    return APR_SUCCESS;
}
