/* mod_acme_certs.c - certificates for mod_ssl: promotion of staged sets, the fallback while a
 * domain has none, the store's ownership, and the hooks through which mod_ssl asks for files.
 *
 * acme_parent_* run in the parent as root in post_config, before mod_ssl's post_config. The hooks
 * are called by mod_ssl from that same post_config, for each TLS virtual host.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_ssl.h>
#include <unixd.h>

#include "acme_ari.h"
#include "acme_selfsigned.h"
#include "acme_setcache.h"
#include "mod_acme.h"

#define FALLBACK_LIFETIME    apr_time_from_sec(30 * 86400)
#define FALLBACK_RETRY_AFTER "30" /* seconds, on the 503 answers while the fallback is served */

#define SETCACHE_KEY "acme_setcache"

/* The cache of what this process checked in the store, kept in the process pool across the
 * configuration passes of every graceful restart (acme_setcache.h). */
static acme_setcache_t *setcache_get(server_rec *s)
{
    apr_pool_t *pproc = s->process->pool;
    void *cache = NULL;

    apr_pool_userdata_get(&cache, SETCACHE_KEY, pproc);
    if (!cache) {
        cache = acme_setcache_create(pproc);
        apr_pool_userdata_set(cache, SETCACHE_KEY, apr_pool_cleanup_null, pproc);
    }
    return cache;
}

/* The child (the User) writes accounts, staged sets and job state; active keys, the archive and
 * fallbacks stay root's. The store's top folder lets the User through to its own folders.
 * Only those three folders are handed over, never what is in them: root must not walk a tree
 * the User can change under it (a swapped symlink would hand root's files to the User). */
static apr_status_t share_with_user(acme_runtime_t *rt, apr_pool_t *ptemp)
{
    static const char *const user_dirs[] = {"accounts", "staging", "jobs"};
    struct stat st;
    size_t i;

    if (geteuid() != 0) {
        return APR_SUCCESS; /* not root: the server's user owns everything already */
    }
    if (chmod(rt->store_dir, 0711) != 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    for (i = 0; i < sizeof(user_dirs) / sizeof(user_dirs[0]); i++) {
        const char *dir = acme_store_path(rt->store, user_dirs[i], ptemp);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            return APR_FROM_OS_ERROR(errno);
        }
        if (lstat(dir, &st) != 0) {
            return APR_FROM_OS_ERROR(errno);
        }
        if (!S_ISDIR(st.st_mode)) {
            acme_log_error(APLOG_MARK, APLOG_EMERG, 0, rt->s,
                           "ACME01012: %s is not a folder; move it away", dir);
            return APR_EGENERAL;
        }
        if ((st.st_uid != ap_unixd_config.user_id || st.st_gid != ap_unixd_config.group_id) &&
            lchown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
            return APR_FROM_OS_ERROR(errno);
        }
    }
    return APR_SUCCESS;
}

/* 1 when the fallback in dir (its files kpath, cpath) can be served again: a certificate that
 * covers the names and has a week left, and the key that goes with it. Otherwise *pwhy says why
 * files that exist are not kept (NULL when there are none). The files are written without fsync
 * (prepare_fallback), so after a crash of the system they may be empty or torn: every such file
 * fails one of these checks. The key is decoded only when these very files were not found good
 * before in this process (acme_setcache.h). */
static int fallback_reusable(acme_runtime_t *rt, acme_domain_t *d, acme_setcache_t *cache,
                             const char *kpath, const char *cpath, const char **pwhy,
                             apr_pool_t *ptemp)
{
    const char *adir =
        acme_store_path(rt->store, apr_pstrcat(ptemp, "fallback/", d->set_name, NULL), ptemp);
    acme_store_file_id_t kid, cid;
    apr_array_header_t *chain;
    const acme_cert_t *leaf;
    acme_key_t *key;
    const char *missing = NULL;
    char *text;
    apr_size_t len;
    apr_status_t rv;

    *pwhy = NULL;
    rv = acme_store_read_id(&text, &len, &cid, rt->store, cpath, ACME_CERT_PEM_MAX, ptemp);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return 0;
    }
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(ptemp, "fullchain.pem cannot be read (%s)", acme_strerror(rv, ptemp));
        return 0;
    }
    if (acme_cert_chain_parse(&chain, text, len, ptemp) != APR_SUCCESS) {
        *pwhy = len ? "fullchain.pem is not a PEM certificate (torn by a crash?)"
                    : "fullchain.pem is empty (cut short by a crash?)";
        return 0;
    }
    leaf = APR_ARRAY_IDX(chain, 0, const acme_cert_t *);
    if (acme_cert_covers(leaf, d->names, &missing) != APR_SUCCESS) {
        *pwhy = apr_psprintf(ptemp, "it does not cover %s", missing ? missing : "every name");
        return 0;
    }
    if (acme_cert_not_after(leaf) <= apr_time_now() + apr_time_from_sec(7 * 86400)) {
        *pwhy = "it expires within a week";
        return 0;
    }
    rv = acme_store_read_id(&text, &len, &kid, rt->store, kpath, ACME_STORE_KEY_MAX, ptemp);
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(ptemp, "privkey.pem cannot be read (%s)", acme_strerror(rv, ptemp));
        return 0;
    }
    if (acme_setcache_get(cache, adir, &kid, &cid, NULL, ptemp)) {
        return 1;
    }
    if (acme_key_from_pem(&key, text, len, ptemp) != APR_SUCCESS) {
        *pwhy = len ? "privkey.pem holds no usable key (torn by a crash?)"
                    : "privkey.pem is empty (cut short by a crash?)";
        return 0;
    }
    if (!acme_cert_matches_key(leaf, key)) {
        *pwhy = "privkey.pem is not the certificate's key";
        return 0;
    }
    acme_setcache_put(cache, adir, &kid, &cid, NULL);
    return 1;
}

/* A self-signed certificate for the domain's names, kept in fallback/<name>/ and reused while
 * fallback_reusable says so. EC P-256: it is made in milliseconds. Written without fsync: with
 * 10,000 domains the fsyncs took about 60 s of a first start, and a fallback lost or torn by a
 * crash is only made again at the next start. */
static apr_status_t prepare_fallback(acme_runtime_t *rt, acme_domain_t *d, acme_setcache_t *cache,
                                     apr_pool_t *pconf, apr_pool_t *ptemp)
{
    const char *dir = apr_pstrcat(ptemp, "fallback/", d->set_name, NULL);
    const char *kpath = apr_pstrcat(ptemp, dir, "/privkey.pem", NULL);
    const char *cpath = apr_pstrcat(ptemp, dir, "/fullchain.pem", NULL);
    acme_store_file_id_t kid, cid;
    apr_time_t now = apr_time_now();
    acme_key_t *key;
    const char *pem, *kpem, *why;
    char *text;
    apr_size_t len, klen, len2;
    apr_status_t rv;

    if (fallback_reusable(rt, d, cache, kpath, cpath, &why, ptemp)) {
        goto done;
    }
    if (why) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, rt->s,
                       "ACME01035: %s: the temporary certificate in %s is not kept: %s; a new one "
                       "is made",
                       d->name, acme_store_path(rt->store, dir, ptemp), why);
    }
    rv = acme_key_generate(&key, ACME_KEY_EC256, ptemp);
    if (rv == APR_SUCCESS) {
        rv = acme_selfsigned_create(&pem, &len, key, d->names, now - apr_time_from_sec(3600),
                                    now + FALLBACK_LIFETIME, ptemp);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_key_to_pem(&kpem, &klen, key, ptemp);
    }
    /* Key first: a certificate never stands next to a key that is not its own for long (and
     * when a crash leaves them apart, fallback_reusable sees it). */
    if (rv == APR_SUCCESS) {
        rv = acme_store_write_volatile(rt->store, kpath, kpem, klen,
                                       APR_FPROT_UREAD | APR_FPROT_UWRITE, ptemp);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_store_write_volatile(
            rt->store, cpath, pem, len,
            APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD, ptemp);
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, rv, rt->s,
                       "ACME01030: %s: cannot write the temporary certificate in %s; the server "
                       "cannot start its TLS virtual host without one",
                       d->name, acme_store_path(rt->store, dir, ptemp));
        return rv;
    }
    /* The files as they are now hold what was just made: the next pass (the second of a first
     * start, or a graceful restart) need not decode them. */
    if (acme_store_read_id(&text, &len2, &cid, rt->store, cpath, ACME_CERT_PEM_MAX, ptemp) ==
            APR_SUCCESS &&
        len2 == len && memcmp(text, pem, len) == 0 &&
        acme_store_read_id(&text, &len2, &kid, rt->store, kpath, ACME_STORE_KEY_MAX, ptemp) ==
            APR_SUCCESS &&
        len2 == klen && memcmp(text, kpem, klen) == 0) {
        acme_setcache_put(cache, acme_store_path(rt->store, dir, ptemp), &kid, &cid, NULL);
    }
done:
    d->fb_chain_file = acme_store_path(rt->store, cpath, pconf);
    d->fb_key_file = acme_store_path(rt->store, kpath, pconf);
    return APR_SUCCESS;
}

/* 1 when meta.json says the set was requested for exactly names (as a set). */
static int requested_names_equal(const json_t *meta, const apr_array_header_t *names)
{
    const json_t *req = json_object_get(meta, "names");
    size_t k;
    int i, found;

    if (!json_is_array(req) || json_array_size(req) != (size_t)names->nelts) {
        return 0;
    }
    for (i = 0; i < names->nelts; i++) {
        found = 0;
        for (k = 0; k < json_array_size(req) && !found; k++) {
            const json_t *v = json_array_get(req, k);
            found = json_is_string(v) &&
                    strcasecmp(json_string_value(v), APR_ARRAY_IDX(names, i, const char *)) == 0;
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

/* Why the active set no longer fits the configuration, or NULL: other names (added or
 * removed), another key type, another ACMEProfile, or a CA that is no longer configured. */
static const char *set_mismatch(acme_runtime_t *rt, const acme_domain_t *d,
                                const acme_certset_t *set, const acme_cert_t *leaf, apr_pool_t *p)
{
    apr_array_header_t *sans;
    const char *missing = NULL, *ca = acme_json_str(set->meta, "ca"), *was, *want;
    int i, j;

    if (acme_cert_covers(leaf, d->names, &missing) != APR_SUCCESS) {
        return apr_psprintf(p, "does not cover %s", missing);
    }
    /* Names beyond the configured ones matter only when they were asked for, that is when the
     * ACMEDomain lost them; a CA that adds names of its own would otherwise be asked again and
     * again. The names asked for are in meta.json; without them, the certificate's own. */
    if (!requested_names_equal(set->meta, d->names) &&
        acme_cert_names(&sans, leaf, p) == APR_SUCCESS) {
        for (i = 0; i < sans->nelts; i++) {
            const char *n = APR_ARRAY_IDX(sans, i, const char *);
            for (j = 0; j < d->names->nelts; j++) {
                if (strcasecmp(n, APR_ARRAY_IDX(d->names, j, const char *)) == 0) {
                    break;
                }
            }
            if (j == d->names->nelts) {
                return apr_psprintf(p, "also names %s, which the ACMEDomain no longer has", n);
            }
        }
    }
    if (acme_key_type(set->key) != d->key_type) {
        return apr_psprintf(p, "has a %s key, ACMEKeyType asks for %s",
                            acme_key_type_name(acme_key_type(set->key)),
                            acme_key_type_name(d->key_type));
    }
    /* meta.json keeps the ACMEProfile the set was ordered for (also when the CA did not offer
     * it, so that this never asks again and again for what the CA cannot give). */
    was = acme_json_str(set->meta, "profile-configured");
    want = d->conf->profile;
    if ((was || want) && (!was || !want || strcmp(was, want) != 0)) {
        return apr_psprintf(p, "was ordered %s%s, and ACMEProfile %s%s",
                            was ? "for the profile " : "without ACMEProfile", was ? was : "",
                            want ? "asks for " : "is no longer set", want ? want : "");
    }
    if (ca) {
        const apr_array_header_t *cas = d->conf->ca_urls;
        int found = cas ? 0 : strcmp(ca, ACME_LETSENCRYPT) == 0;
        for (i = 0; cas && i < cas->nelts; i++) {
            found |= strcmp(APR_ARRAY_IDX(cas, i, const char *), ca) == 0;
        }
        if (!found) {
            return apr_psprintf(p,
                                "comes from %s, which is no longer an "
                                "ACMECertificateAuthority",
                                ca);
        }
    }
    /* A chain that ends elsewhere than ACMEPreferredChain says was obtained before that
     * preference (or for another one): the new certificate brings the chain asked for. A set
     * obtained for this very preference is kept whatever its chain: the CA offered none ending
     * there, and ordering again would not change that. */
    if (d->conf->preferred_chain) {
        const char *pref = d->conf->preferred_chain;
        const char *top = acme_cert_chain_top_issuer(set->chain, p);
        const char *asked = acme_json_str(set->meta, "preferred-chain");
        if ((!top || strcmp(top, pref) != 0) && (!asked || strcmp(asked, pref) != 0)) {
            return apr_psprintf(
                p,
                "has a chain that ends at %s, not at \"%s\" as "
                "ACMEPreferredChain asks",
                top ? apr_pstrcat(p, "\"", top, "\"", NULL) : "an issuer without a name", pref);
        }
    }
    return NULL;
}

void acme_domain_take_set(acme_runtime_t *rt, acme_domain_t *d, const acme_certset_t *set,
                          apr_pool_t *pconf)
{
    const acme_cert_t *leaf = APR_ARRAY_IDX(set->chain, 0, acme_cert_t *);

    d->has_active = 1;
    d->mismatch = set_mismatch(rt, d, set, leaf, pconf);
    d->covers_names = acme_cert_covers(leaf, d->names, NULL) == APR_SUCCESS;
    d->not_before = acme_cert_not_before(leaf);
    d->not_after = acme_cert_not_after(leaf);
    d->serial = acme_cert_serial_hex(leaf, pconf);
    {
        apr_ssize_t klen = APR_HASH_KEY_STRING;
        d->renew_seed = apr_hashfunc_default(d->serial, &klen);
    }
    d->chain_file = set->chain_file;
    d->active_ca =
        acme_json_str(set->meta, "ca") ? apr_pstrdup(pconf, acme_json_str(set->meta, "ca")) : NULL;
    if (acme_ari_cert_id(&d->ari_cert_id, leaf, pconf) != APR_SUCCESS) {
        d->ari_cert_id = NULL; /* no AKI: no ARI for this one */
    }
    d->key_file = set->key_file;
    /* ACMEKeyReuse: the renewal keeps this key when it is of the configured type. */
    d->reuse_key =
        d->conf->key_reuse == 2 && acme_key_type(set->key) == d->key_type ? set->key : NULL;
    if (d->mismatch) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, rt->s,
                       "ACME01022: %s: the current certificate %s; it is served until a new "
                       "one that fits the configuration is ready",
                       d->name, d->mismatch);
    }
}

apr_status_t acme_parent_promote_domain(acme_runtime_t *rt, acme_domain_t *d, acme_certset_t **pset,
                                        acme_store_batch_t *batch, apr_pool_t *pconf,
                                        apr_pool_t *ptemp)
{
    acme_certset_t *set;
    const char *why = NULL;
    apr_status_t rv, prv;

    *pset = NULL;
    rv =
        acme_store_promote_in(rt->store, d->set_name, d->names, apr_time_now(), &why, batch, ptemp);
    if (rv == APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, rt->s,
                       "ACME01020: %s: new certificate activated", d->name);
        acme_store_refusal_clear(rt->store, d->set_name, ptemp);
    } else if (APR_STATUS_IS_EAGAIN(rv)) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, rt->s,
                       "ACME02307: %s: the new certificate is not activated yet: %s; it stays "
                       "staged and a restart activates it when it is due",
                       d->name, why);
    } else if (rv == ACME_EBADSTORE) {
        /* A set that fails validation is moved aside for the operator to look at (the last
         * few are kept); the renewal driver counts it as a failed attempt and retries after
         * its backoff. The active set stays. */
        const char *staged = apr_pstrcat(ptemp, "staging/", d->set_name, NULL);
        const char *aside = NULL, *rwhy = why ? why : acme_strerror(rv, ptemp);
        int moved = acme_store_reject(rt->store, d->set_name, rwhy, apr_time_now(), &aside,
                                      ptemp) == APR_SUCCESS;
        if (!moved) {
            d->promote_failed = 1;
        }
        acme_log_error(
            APLOG_MARK, APLOG_ERR, 0, rt->s,
            "ACME01021: %s: the new certificate in %s was not activated: %s; %s", d->name,
            acme_store_path(rt->store, staged, ptemp), rwhy,
            moved ? apr_psprintf(ptemp,
                                 "it was moved to %s; the current certificate stays in use (or "
                                 "the fallback) and a new one is ordered after the backoff of a "
                                 "failed attempt",
                                 acme_store_path(rt->store, aside, ptemp))
                  : "it could not be moved aside; the current certificate stays in "
                    "use");
    } else if (!APR_STATUS_IS_ENOENT(rv)) {
        d->promote_failed = 1;
        acme_log_error(
            APLOG_MARK, APLOG_ERR, rv, rt->s,
            "ACME01021: %s: the new certificate in %s could not be activated: %s; the "
            "current one stays in use until the store is fixed",
            d->name,
            acme_store_path(rt->store, apr_pstrcat(ptemp, "staging/", d->set_name, NULL), ptemp),
            why ? why : acme_strerror(rv, ptemp));
    }

    prv = rv;
    rv = acme_store_load_active_cached(&set, rt->store, d->set_name, setcache_get(rt->s), &why,
                                       pconf);
    if (rv == APR_SUCCESS) {
        acme_domain_take_set(rt, d, set, pconf);
        *pset = set;
    } else if (!APR_STATUS_IS_ENOENT(rv)) {
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, rt->s,
                       "ACME01023: %s: the active certificate in the store cannot be used: %s; "
                       "serving a temporary one until a new one is obtained",
                       d->name, why ? why : acme_strerror(rv, ptemp));
    }
    return prv;
}

apr_status_t acme_parent_prepare_certs(acme_runtime_t *rt, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    acme_store_batch_t *batch;
    apr_array_header_t *promoted;
    apr_status_t rv;
    int i;

    acme_setcache_t *cache = setcache_get(rt->s);

    acme_setcache_pass(cache);
    rv = share_with_user(rt, ptemp);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, rv, rt->s,
                       "ACME01011: cannot give the server's User its folders in the store %s",
                       rt->store_dir);
        return rv;
    }
    /* One sync of domains/ and of staging/ for all the sets promoted in this pass. */
    batch = acme_store_batch_make(ptemp);
    promoted = apr_array_make(ptemp, 16, sizeof(acme_domain_t *));
    for (i = 0; i < rt->conf->domains->nelts; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(rt->conf->domains, i, acme_domain_t *);
        acme_certset_t *set;
        if (acme_parent_promote_domain(rt, d, &set, batch, pconf, ptemp) == APR_SUCCESS) {
            APR_ARRAY_PUSH(promoted, acme_domain_t *) = d;
        }
    }
    rv = acme_store_promote_done(rt->store, batch, ptemp);
    /* Served now from links that may not survive a crash, and still staged: the store needs the
     * operator before any of them is ordered again (or restarted for). */
    for (i = 0; rv != APR_SUCCESS && i < promoted->nelts; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(promoted, i, acme_domain_t *);
        d->promote_failed = 1;
        acme_log_error(
            APLOG_MARK, APLOG_ERR, rv, rt->s,
            "ACME01021: %s: the new certificate is served, but %s cannot be synced, so "
            "its activation may not survive a crash; it stays in %s and nothing more "
            "is done for it until the store is fixed and the server restarted",
            d->name, acme_store_path(rt->store, "domains", ptemp),
            acme_store_path(rt->store, apr_pstrcat(ptemp, "staging/", d->set_name, NULL), ptemp));
    }
    /* A fallback only for an ACMEDomain that has no certificate of any of its key types. */
    for (i = 0; i < rt->conf->domains->nelts; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(rt->conf->domains, i, acme_domain_t *), *u;
        int any = 0;
        for (u = d; d->primary && u; u = u->next_type) {
            any |= u->has_active;
        }
        if (d->primary && !any) {
            rv = prepare_fallback(rt, d, cache, pconf, ptemp);
            if (rv != APR_SUCCESS) {
                return rv;
            }
        }
    }
    acme_setcache_pass_done(cache);
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, rt->s,
                   "ACME01034: %u checked certificate sets and fallbacks kept for the next "
                   "configuration pass; %" APR_UINT64_T_FMT " found unchanged since this process "
                   "started, whose keys were not decoded again",
                   acme_setcache_count(cache), acme_setcache_hits(cache));
    return APR_SUCCESS;
}

/* mod_ssl asks for the files of a TLS virtual host. One that names its own
 * SSLCertificateFile keeps it. */
static int acme_ssl_add_cert_files(server_rec *s, apr_pool_t *p, apr_array_header_t *cert_files,
                                   apr_array_header_t *key_files)
{
    acme_runtime_t *rt = acme_runtime();
    acme_domain_t *d, *u;
    int added = 0;

    (void)p;
    if (!rt || !(d = acme_domain_for_server(s))) {
        return DECLINED;
    }
    acme_conf_get(s)->vhost_tls = 1;
    if (cert_files->nelts) {
        /* Often a global SSLCertificateFile, which mod_ssl gives every vhost: say so. */
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                       "ACME01031: %s: virtual host %s has an SSLCertificateFile (its own or a "
                       "global one) and keeps it; remove it there to serve the ACMEDomain's "
                       "certificate",
                       d->name, s->server_hostname);
        return DECLINED;
    }
    /* One pair per key type: mod_ssl picks the one the client can use. */
    for (u = d; u; u = u->next_type) {
        if (!u->has_active) {
            continue;
        }
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "ACME01032: %s: virtual host %s serves %s",
                       u->name, s->server_hostname, u->chain_file);
        APR_ARRAY_PUSH(cert_files, const char *) = u->chain_file;
        APR_ARRAY_PUSH(key_files, const char *) = u->key_file;
        added = 1;
    }
    /* ACMEActivation live: the first certificate comes without a restart, so the fallback is
     * given here rather than as mod_ssl's fallback, which mod_ssl answers with 503 for the whole
     * generation; mod_acme answers 503 until a certificate is served (mod_acme_live.c). */
    if (!added && d->conf->activation == ACME_ACTIVATION_LIVE && d->fb_chain_file) {
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                       "ACME01033: %s: virtual host %s serves a temporary certificate for now",
                       d->name, s->server_hostname);
        acme_conf_get(s)->vhost_fallback = ACME_FALLBACK_LIVE;
        APR_ARRAY_PUSH(cert_files, const char *) = d->fb_chain_file;
        APR_ARRAY_PUSH(key_files, const char *) = d->fb_key_file;
        added = 1;
    }
    acme_conf_get(s)->vhost_served = added;
    return added ? OK : DECLINED;
}

static int acme_ssl_add_fallback_cert_files(server_rec *s, apr_pool_t *p,
                                            apr_array_header_t *cert_files,
                                            apr_array_header_t *key_files)
{
    acme_runtime_t *rt = acme_runtime();
    acme_domain_t *d;

    (void)p;
    if (!rt || !(d = acme_domain_for_server(s)) || !d->fb_chain_file) {
        return DECLINED;
    }
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                   "ACME01033: %s: virtual host %s serves a temporary certificate for now", d->name,
                   s->server_hostname);
    acme_conf_get(s)->vhost_fallback = 1;
    acme_conf_get(s)->vhost_tls = 1;
    acme_conf_get(s)->vhost_served = 1;
    APR_ARRAY_PUSH(cert_files, const char *) = d->fb_chain_file;
    APR_ARRAY_PUSH(key_files, const char *) = d->fb_key_file;
    return OK;
}

/* mod_ssl answers every request on a fallback certificate with 503; tell clients when to come
 * back. Runs before mod_ssl's post_read_request, on TLS connections of vhosts that have no
 * certificate yet: one pointer test for all others. */
static int acme_fallback_retry_after(request_rec *r)
{
    /* Every request passes here: the vhost's flag first. */
    if (!acme_conf_get(r->server)->vhost_fallback || !acme_runtime()) {
        return DECLINED;
    }
    if (ap_ssl_conn_is_ssl(r->connection)) {
        const acme_conf_t *c = acme_conf_get(r->server);
        if (c->vhost_fallback == ACME_FALLBACK_LIVE && acme_request_live_served(c->vhost_domain)) {
            return DECLINED; /* its first certificate arrived live */
        }
        apr_table_setn(r->err_headers_out, "Retry-After", FALLBACK_RETRY_AFTER);
        if (c->vhost_fallback == ACME_FALLBACK_LIVE) {
            return HTTP_SERVICE_UNAVAILABLE; /* as mod_ssl does on its fallback */
        }
    }
    return DECLINED;
}

void acme_certs_register_hooks(void)
{
    ap_hook_ssl_add_cert_files(acme_ssl_add_cert_files, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_ssl_add_fallback_cert_files(acme_ssl_add_fallback_cert_files, NULL, NULL,
                                        APR_HOOK_MIDDLE);
    ap_hook_post_read_request(acme_fallback_retry_after, NULL, NULL, APR_HOOK_REALLY_FIRST);
}
