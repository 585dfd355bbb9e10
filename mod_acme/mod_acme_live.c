/* mod_acme_live.c - ACMEActivation live: a new certificate is served from the next TLS
 * handshake, without a restart (docs/live.md).
 *
 * The parent (root) makes one publication slot per certificate (acme_live.h) in shared memory
 * before the fork, at each start. When the driver's flag says a set is staged, the parent's
 * restart thread promotes it with the very code post_config runs (acme_parent_promote_domain),
 * and publishes the chain, the key, meta.json and what the status says of it into the slot,
 * with the next generation number. The certificate is then active in the store, so a later
 * restart serves the same set from the files.
 *
 * mod_ssl runs the optional hook init_server for the SSL_CTX of every TLS virtual host; on
 * those that serve an ACMEDomain's certificate from our files (never one with its own
 * SSLCertificateFile), a certificate callback (SSL_CTX_set_cert_cb) runs on each handshake after
 * SNI chose the vhost: one atomic load per key type says whether a newer set was published; the
 * first handshake that sees it loads it once for the child, and every handshake then puts it on
 * its SSL (SSL_use_cert_and_key, per key type: ECDSA and RSA are served side by side). A
 * handshake that selected acme-tls/1 (tls-alpn-01) is never touched.
 *
 * The renewal driver (a child) takes the new set from the slot too: its knowledge of the served
 * certificate (renewal time, ARI, the status document, the "activated" event) follows.
 *
 * acme_parent_* run in post_config or the restart thread, acme_driver_* in the watchdog thread,
 * the certificate callback and acme_request_* on any connection thread of a child.
 */
#include <string.h>

#include <apr_optional.h>
#include <apr_optional_hooks.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "acme_cert.h"
#include "acme_live.h"
#include "acme_status.h"
#include "acme_tlsalpn.h"
#include "mod_acme.h"
#include "mod_acme_drive.h"
#include "mod_acme_notify.h"
#include "mod_acme_status.h"
#include <mod_ssl.h> /* SSL_DECLARE, for the hook below; after httpd.h */

/* httpd's modules/ssl/mod_ssl_openssl.h declares it; Debian does not install that header. */
APR_DECLARE_EXTERNAL_HOOK(ssl, SSL, int, init_server,
                          (server_rec * s, apr_pool_t *p, int is_proxy, SSL_CTX *ctx))

#define PART_CHAIN 0
#define PART_KEY   1
#define PART_META  2
#define PART_INFO  3
#define UNITS_MAX  8 /* key types per ACMEDomain: ACMEKeyType takes at most five */

/* A set one child serves: loaded once, kept until the child exits (a handshake on another
 * thread may still hold the previous one; a renewal a day costs a few kilobytes). */
typedef struct live_set_t {
    apr_uint32_t gen;
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
    struct live_set_t *prev;
} live_set_t;

typedef struct child_unit_t {
    live_set_t *cur;     /* what this child serves, NULL: what mod_ssl loaded */
    apr_uint32_t failed; /* a generation that did not load here: not tried again */
} child_unit_t;

/* The certificate callback's argument: a vhost's certificates (one per key type). */
typedef struct live_vhost_t {
    const char *name; /* the ACMEDomain, for log lines */
    int n;
    int idx[UNITS_MAX]; /* slot of each key type */
    int fallback;       /* the vhost started on the fallback: it goes when a set arrives */
} live_vhost_t;

/* This generation's, set in post_config, inherited by the children. */
static acme_live_slot_t *g_slots; /* per certificate (rt->conf->domains), NULL: none live */
static int g_nslots;
/* The child's. */
static child_unit_t *g_child;
static apr_thread_mutex_t *g_child_mutex;
/* The driver's: the generation it took last, per certificate. */
static apr_uint32_t *g_driver_gen;

static int is_live(const acme_domain_t *d)
{
    return d->conf && d->conf->activation == ACME_ACTIVATION_LIVE;
}

static int unit_index(const acme_runtime_t *rt, const acme_domain_t *u)
{
    int i;

    for (i = 0; i < rt->conf->domains->nelts; i++) {
        if (APR_ARRAY_IDX(rt->conf->domains, i, const acme_domain_t *) == u) {
            return i;
        }
    }
    return -1;
}

/* --- configuration --- */

/* The parent's restart thread activates live sets: without it (ACMEAutoRestart off) nothing
 * would, so the combination is refused at configtest. */
static int live_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    acme_conf_t *conf = acme_conf_get(s);
    int i;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    for (i = 0; conf->domains && i < conf->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(conf->domains, i, const acme_domain_t *);
        if (is_live(d) && conf->auto_restart == 0) {
            acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                           "ACME03800: ACMEActivation live (%s, %s) needs the parent's activation "
                           "thread, which ACMEAutoRestart off turns off: remove ACMEAutoRestart "
                           "off or use ACMEActivation graceful",
                           d->name, d->defined_at ? d->defined_at : "ACMEDomain");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static int live_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    g_slots = NULL; /* the previous generation's went with its pconf */
    g_nslots = 0;
    return OK;
}

/* --- the parent --- */

apr_status_t acme_parent_live_create(acme_runtime_t *rt, apr_pool_t *pconf)
{
    apr_array_header_t *domains = rt->conf->domains;
    apr_shm_t *shm;
    int i, any = 0;
    apr_status_t rv;

    g_slots = NULL;
    g_nslots = 0;
    for (i = 0; i < domains->nelts; i++) {
        any |= is_live(APR_ARRAY_IDX(domains, i, const acme_domain_t *));
    }
    if (!any) {
        return APR_SUCCESS;
    }
    /* Anonymous, zeroed (generation 0: mod_ssl's files are current); pages a set never
     * fills are never touched. */
    rv = apr_shm_create(&shm, sizeof(acme_live_slot_t) * (apr_size_t)domains->nelts, NULL, pconf);
    if (rv != APR_SUCCESS) {
        acme_log_error(
            APLOG_MARK, APLOG_EMERG, rv, rt->s,
            "ACME03803: cannot make the shared memory for ACMEActivation live (%" APR_SIZE_T_FMT
            " bytes); the server does not start",
            sizeof(acme_live_slot_t) * (apr_size_t)domains->nelts);
        return rv;
    }
    g_slots = apr_shm_baseaddr_get(shm);
    g_nslots = domains->nelts;
    return APR_SUCCESS;
}

/* The chain (PEM, leaf first) of set. */
static apr_status_t chain_pem(const char **ppem, const acme_certset_t *set, apr_pool_t *p)
{
    const char *pem = "", *one;
    int k;
    apr_status_t rv = APR_SUCCESS;

    for (k = 0; k < set->chain->nelts && rv == APR_SUCCESS; k++) {
        rv = acme_cert_to_pem(&one, APR_ARRAY_IDX(set->chain, k, const acme_cert_t *), p);
        if (rv == APR_SUCCESS) {
            pem = apr_pstrcat(p, pem, one, NULL);
        }
    }
    if (rv == APR_SUCCESS) {
        *ppem = pem;
    }
    return rv;
}

/* Hands set (active in the store) to the children through slot i. */
static apr_status_t publish_set(acme_runtime_t *rt, int i, const acme_domain_t *d,
                                const acme_certset_t *set, apr_uint32_t *pgen, apr_pool_t *p)
{
    const char *parts[ACME_LIVE_PARTS], *why = NULL;
    apr_size_t lens[ACME_LIVE_PARTS];
    json_t *info = NULL;
    char *meta, *infotext = NULL;
    apr_size_t klen = 0;
    apr_status_t rv;

    memset(parts, 0, sizeof(parts));
    rv = chain_pem(&parts[PART_CHAIN], set, p);
    if (rv == APR_SUCCESS) {
        rv = acme_key_to_pem(&parts[PART_KEY], &klen, set->key, p);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    meta = json_dumps(set->meta, JSON_COMPACT);
    /* What the status shows of the served set, read here as root (the driver cannot read
     * archive/); without it the status keeps the previous one until the next restart. */
    if (acme_status_set_info(&info, rt->store, d->set_name, 0, &why, p) == APR_SUCCESS) {
        infotext = json_dumps(info, JSON_COMPACT);
    }
    parts[PART_META] = meta ? meta : "{}";
    parts[PART_INFO] = infotext ? infotext : "";
    lens[PART_CHAIN] = strlen(parts[PART_CHAIN]);
    lens[PART_KEY] = klen;
    lens[PART_META] = strlen(parts[PART_META]);
    lens[PART_INFO] = strlen(parts[PART_INFO]);
    rv = acme_live_publish(&g_slots[i], parts, lens, ACME_LIVE_PARTS, pgen);
    OPENSSL_cleanse((void *)parts[PART_KEY], klen);
    free(meta);
    free(infotext);
    return rv;
}

const char *acme_parent_live_activate(acme_runtime_t *rt, apr_time_t now, int *pn,
                                      apr_pool_t *pkeep, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = rt->conf->domains;
    const char *forced = "";
    int i;

    *pn = 0;
    for (i = 0; g_slots && i < domains->nelts && i < g_nslots; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        acme_certset_t *set = NULL;
        const char *why = NULL, *serial;
        apr_uint32_t gen = 0;
        apr_time_t t0 = apr_time_now();
        apr_status_t rv;

        if (!is_live(d) || d->promote_failed) {
            continue;
        }
        /* Nothing staged, or a set whose notBefore is still ahead: not now. A set that fails
         * the checks goes on to the promotion, which refuses it as at a start. */
        rv = acme_store_check_staged(rt->store, d->set_name, d->names, now, &why, ptemp);
        if (APR_STATUS_IS_ENOENT(rv) || APR_STATUS_IS_EAGAIN(rv)) {
            continue;
        }
        rv = acme_parent_promote_domain(rt, d, &set, NULL, pkeep, ptemp);
        if (rv != APR_SUCCESS || !set) {
            *pn += rv == ACME_EBADSTORE; /* refused and logged (ACME01021): dealt with */
            continue;
        }
        rv = publish_set(rt, i, d, set, &gen, ptemp);
        serial = d->serial ? d->serial : "?";
        if (rv != APR_SUCCESS) {
            acme_log_error(
                APLOG_MARK, APLOG_ERR, rv, rt->s,
                "ACME03802: %s: the new certificate (serial %s) is active in the store "
                "but cannot be handed to the children without a restart%s; "
                "restarting gracefully to serve it",
                d->name, serial,
                rv == ACME_ETOOLARGE
                    ? apr_psprintf(ptemp, " (chain and key over %d bytes)", ACME_LIVE_DATA_MAX)
                    : "");
            forced = apr_pstrcat(ptemp, forced, " ", d->name, NULL);
            continue;
        }
        (*pn)++;
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, rt->s,
                       "ACME03801: %s: new certificate (serial %s) served from the next TLS "
                       "handshake, without a restart (ACMEActivation live, generation %u, %d ms)",
                       d->name, serial, (unsigned)gen, (int)apr_time_as_msec(apr_time_now() - t0));
    }
    return forced;
}

/* --- the children: the certificate callback --- */

static void set_free(live_set_t *set)
{
    X509_free(set->cert);
    EVP_PKEY_free(set->key);
    sk_X509_pop_free(set->chain, X509_free);
    free(set);
}

/* Slot i's set for this child, or NULL (logged) when it does not load. */
static live_set_t *set_load(int i, const char *name)
{
    acme_runtime_t *rt = acme_runtime();
    const char *parts[ACME_LIVE_PARTS];
    apr_size_t lens[ACME_LIVE_PARTS];
    live_set_t *set = NULL;
    apr_uint32_t gen = 0;
    apr_pool_t *p;
    BIO *bio = NULL;
    X509 *x;
    apr_status_t rv;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return NULL;
    }
    rv = acme_live_read(&g_slots[i], &gen, parts, lens, p);
    if (rv == APR_SUCCESS && (set = calloc(1, sizeof(*set))) != NULL) {
        set->gen = gen;
        set->chain = sk_X509_new_null();
        bio = BIO_new_mem_buf(parts[PART_CHAIN], (int)lens[PART_CHAIN]);
        set->cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        while (bio && set->chain && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            if (!sk_X509_push(set->chain, x)) {
                X509_free(x);
                break;
            }
        }
        BIO_free(bio);
        bio = BIO_new_mem_buf(parts[PART_KEY], (int)lens[PART_KEY]);
        set->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        OPENSSL_cleanse((void *)parts[PART_KEY], lens[PART_KEY]);
        ERR_clear_error(); /* the end of the chain reads as an error */
        if (!set->cert || !set->key || !set->chain) {
            set_free(set);
            set = NULL;
            rv = APR_EINVAL;
        }
    }
    apr_pool_destroy(p);
    if (!set) {
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, rt->s,
                       "ACME03804: %s: the certificate activated live cannot be loaded in this "
                       "child (pid %d); it serves the previous one until it is replaced",
                       name, (int)getpid());
    } else {
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, rt->s,
                       "ACME03805: %s: this child (pid %d) serves the certificate of generation "
                       "%u from now on",
                       name, (int)getpid(), (unsigned)gen);
    }
    return set;
}

/* What this child serves for slot i: NULL while nothing was published (mod_ssl's files are
 * current). The common path is two atomic loads. */
static live_set_t *child_set(int i, const char *name)
{
    child_unit_t *u = &g_child[i];
    apr_uint32_t gen = acme_live_generation(&g_slots[i]);
    live_set_t *cur, *set;

    if (!gen) {
        return NULL;
    }
    cur = __atomic_load_n(&u->cur, __ATOMIC_ACQUIRE);
    if ((cur && cur->gen >= gen) || __atomic_load_n(&u->failed, __ATOMIC_RELAXED) == gen) {
        return cur;
    }
    apr_thread_mutex_lock(g_child_mutex);
    cur = u->cur;
    if ((!cur || cur->gen < gen) && u->failed != gen) {
        set = set_load(i, name);
        if (set) {
            set->prev = cur;
            __atomic_store_n(&u->cur, set, __ATOMIC_RELEASE);
            cur = set;
        } else {
            __atomic_store_n(&u->failed, gen, __ATOMIC_RELAXED);
        }
    }
    apr_thread_mutex_unlock(g_child_mutex);
    return cur;
}

/* Runs on every full handshake of a live vhost, after SNI chose it. */
static int live_cert_cb(SSL *ssl, void *arg)
{
    const live_vhost_t *v = arg;
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    conn_rec *c;
    int k, cleared = 0;

    if (!g_child || !g_slots) {
        return 1;
    }
    /* tls-alpn-01: mod_ssl serves the challenge certificate (mod_acme_tlsalpn.c). */
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    if (alen == sizeof(ACME_TLSALPN_PROTOCOL) - 1 &&
        memcmp(alpn, ACME_TLSALPN_PROTOCOL, alen) == 0) {
        return 1;
    }
    c = SSL_get_app_data(ssl);
    if (c && ap_get_module_config(c->conn_config, &acme_module)) {
        return 1;
    }
    for (k = 0; k < v->n; k++) {
        live_set_t *set = child_set(v->idx[k], v->name);
        if (!set) {
            continue;
        }
        /* The fallback goes: a client able to use it would otherwise still be given it. */
        if (v->fallback && !cleared) {
            SSL_certs_clear(ssl);
            cleared = 1;
        }
        if (SSL_use_cert_and_key(ssl, set->cert, set->key, set->chain, 1) != 1) {
            ERR_clear_error(); /* this key type keeps what mod_ssl loaded */
        }
    }
    return 1;
}

static int live_init_server(server_rec *s, apr_pool_t *p, int is_proxy, SSL_CTX *ctx)
{
    acme_runtime_t *rt = acme_runtime();
    acme_conf_t *c = acme_conf_get(s);
    acme_domain_t *d, *u;
    live_vhost_t *v;

    if (is_proxy || !rt || !g_slots || !c->vhost_served || !(d = acme_domain_for_server(s)) ||
        !is_live(d)) {
        return DECLINED;
    }
    v = apr_pcalloc(p, sizeof(*v));
    v->name = d->name;
    v->fallback = c->vhost_fallback == ACME_FALLBACK_LIVE;
    for (u = d; u && v->n < UNITS_MAX; u = u->next_type) {
        int i = unit_index(rt, u);
        if (i >= 0 && i < g_nslots) {
            v->idx[v->n++] = i;
        }
    }
    SSL_CTX_set_cert_cb(ctx, live_cert_cb, v);
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                   "ACME03806: %s: virtual host %s takes new certificates live", d->name,
                   s->server_hostname);
    return DECLINED;
}

static void live_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)s;
    g_child = NULL;
    if (!acme_runtime() || !g_slots) {
        return;
    }
    if (apr_thread_mutex_create(&g_child_mutex, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) {
        return; /* no callback work: mod_ssl's files are served */
    }
    g_child = apr_pcalloc(pchild, sizeof(child_unit_t) * (apr_size_t)g_nslots);
}

int acme_request_live_served(const acme_domain_t *d)
{
    acme_runtime_t *rt = acme_runtime();
    int i;

    for (; rt && g_slots && d; d = d->next_type) {
        i = unit_index(rt, d);
        if (i >= 0 && i < g_nslots && acme_live_generation(&g_slots[i])) {
            return 1;
        }
    }
    return 0;
}

/* --- the driver --- */

/* The set published in slot i, as the driver needs it to follow: chain, key and meta.json. */
static apr_status_t driver_set(acme_certset_t **pset, json_t **pinfo, const acme_domain_t *d,
                               const char *const parts[], const apr_size_t lens[], apr_pool_t *p)
{
    acme_certset_t *set = apr_pcalloc(p, sizeof(*set));
    json_error_t jerr;
    apr_status_t rv;

    set->name = d->set_name;
    set->chain_file = d->chain_file;
    set->key_file = d->key_file;
    rv = acme_cert_chain_parse(&set->chain, parts[PART_CHAIN], lens[PART_CHAIN], p);
    if (rv == APR_SUCCESS) {
        rv = acme_key_from_pem(&set->key, parts[PART_KEY], lens[PART_KEY], p);
    }
    if (rv == APR_SUCCESS) {
        set->meta = acme_json_pool(p, json_loadb(parts[PART_META], lens[PART_META], 0, &jerr));
        if (!json_is_object(set->meta)) {
            set->meta = acme_json_pool(p, json_object());
        }
        *pinfo = lens[PART_INFO]
                     ? acme_json_pool(p, json_loadb(parts[PART_INFO], lens[PART_INFO], 0, &jerr))
                     : NULL;
        *pset = set;
    }
    return rv;
}

/* The parent took the flag without serving a new generation for a live certificate whose set
 * was staged: it refused the set (moved aside, refused/<name>.json). The driver counts that as
 * a failed attempt, as after a start that refused one; with no graceful certificate waiting,
 * the next staged set may ask again. A set still staged (the parent could not promote it: its
 * ACME01021 says why) is asked for again a minute later, not at every tick. */
static void settle_refused(driver_t *drv, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    int i, waiting = 0, kept = 0;

    for (i = 0; i < domains->nelts && i < g_nslots; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, const acme_domain_t *);
        if (drv->staged[i] && !drv->workers[i] && is_live(d) &&
            acme_live_generation(&g_slots[i]) == g_driver_gen[i]) {
            acme_driver_activated(drv, i, ptemp);
            kept |= drv->staged[i];
        }
        waiting |= drv->staged[i] && !is_live(d);
    }
    drv->restart_asked = waiting;
    if (kept) {
        drv->restart_retry = apr_time_now() + apr_time_from_sec(60);
    }
}

void acme_driver_live_sync(driver_t *drv, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    int i, any = 0, graceful = 0;

    if (!g_slots) {
        return;
    }
    if (!g_driver_gen) {
        g_driver_gen = apr_pcalloc(drv->pool, sizeof(apr_uint32_t) * (apr_size_t)g_nslots);
    }
    for (i = 0; i < domains->nelts && i < g_nslots; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        const char *parts[ACME_LIVE_PARTS];
        apr_size_t lens[ACME_LIVE_PARTS];
        acme_certset_t *set;
        json_t *info = NULL;
        apr_uint32_t gen = acme_live_generation(&g_slots[i]);
        apr_status_t rv;

        /* A worker of this certificate (an ARI check) reads its fields: after it ends. */
        if (gen == g_driver_gen[i] || drv->workers[i]) {
            continue;
        }
        if (acme_live_read(&g_slots[i], &gen, parts, lens, ptemp) != APR_SUCCESS) {
            continue; /* the next tick */
        }
        /* In the driver's pool: the domain's fields point into it for the generation. */
        rv = driver_set(&set, &info, d, parts, lens, drv->pool);
        OPENSSL_cleanse((void *)parts[PART_KEY], lens[PART_KEY]);
        g_driver_gen[i] = gen;
        if (rv != APR_SUCCESS) {
            acme_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                           "ACME03807: %s: the renewal driver cannot read the certificate "
                           "activated live; it plans with the previous one until the next "
                           "restart",
                           d->name);
            continue;
        }
        acme_domain_take_set(drv->rt, d, set, drv->pool);
        acme_driver_activated(drv, i, ptemp);
        if (info) {
            acme_driver_status_served(drv, i, info);
        }
        acme_driver_status_publish(drv, i, ptemp);
        any = 1;
    }
    if (any) {
        /* The flag was taken: the next staged set asks again, unless a graceful certificate
         * still waits for the restart it asked for. */
        for (i = 0; i < domains->nelts; i++) {
            graceful |= drv->staged[i] && !is_live(APR_ARRAY_IDX(domains, i, acme_domain_t *));
        }
        drv->restart_asked = graceful;
        acme_driver_notify_locked(drv); /* "activated" (and "renewed" if not told yet) */
    } else if (drv->restart_asked && !acme_driver_flag_waiting(drv, ptemp)) {
        settle_refused(drv, ptemp);
    }
}

void acme_live_register_hooks(void)
{
    ap_hook_pre_config(live_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(live_check_config, NULL, NULL, APR_HOOK_MIDDLE + 1);
    ap_hook_child_init(live_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, init_server, live_init_server, NULL, NULL, APR_HOOK_MIDDLE);
}
