/* mod_acme.h - what the Apache glue files share: the configuration, the per-generation runtime,
 * and the entry points each glue file offers the others.
 *
 * Naming says who may call what (cf. mod_h2): acme_parent_* run in the parent (root) during
 * post_config or in the restart thread, acme_driver_* in the watchdog child (as the User),
 * acme_request_* on the request path of any child.
 */
#ifndef MOD_ACME_H
#define MOD_ACME_H

#include <apr_global_mutex.h>
#include <apr_hash.h>
#include <apr_thread_proc.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_socache.h>

#include "acme_issue.h"
#include "acme_job.h"
#include "acme_names.h"
#include "acme_store.h"

/* mod_acme.c declares the module, which also declares its log index. */
#ifndef ACME_MODULE_RECORD
APLOG_USE_MODULE(acme);
#endif
extern module AP_MODULE_DECLARE_DATA acme_module;

#define ACME_CHALLENGE_PREFIX    "/.well-known/acme-challenge/"
#define ACME_LETSENCRYPT         "https://acme-v02.api.letsencrypt.org/directory"
#define ACME_LETSENCRYPT_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"
#define ACME_RESTART_FLAG        "staging/restart.wanted"
#define ACME_RESTART_MIN_GAP     apr_time_from_sec(60)  /* at most one automatic restart a minute */
#define ACME_DNS_COMMAND_TIMEOUT apr_time_from_sec(60)  /* ACMEDNSTimeout's default */
#define ACME_DNS_PROPAGATION     apr_time_from_sec(120) /* ACMEDNSPropagationTimeout's default */
#define ACME_NOTIFY_TIMEOUT      apr_time_from_sec(30)  /* ACMENotifyTimeout's default */
#define ACME_EXPIRY_WARNING      apr_time_from_sec(7 * 86400) /* ACMEExpiryWarning's default */
/* A wildcard's store name: "*." becomes this, which no DNS name or IP can start with. */
#define ACME_WILDCARD_SET_PREFIX "_wildcard."

/* What the platform calls things, from configure (--with-default-store, --with-restart-command,
 * --with-configtest-command; the Debian package sets Debian's): ACME_DEFAULT_STORE, the store
 * when ACMEStoreDir is not given (relative to ServerRoot unless absolute), and the commands the
 * log tells the operator to run, ACME_RESTART_COMMAND and ACME_CONFIGTEST_COMMAND. */
#include "mod_acme_platform.h"

/* One ACMEDomain: one certificate for these names. */
typedef struct acme_domain_t acme_domain_t;

/* One certificate to keep: an ACMEDomain and one of the ACMEKeyType types. With several key
 * types, check_config adds one unit per further type, chained from the first (next_type). */
struct acme_domain_t {
    const char *name;     /* for log lines: the first name, "(type)" added for further types */
    const char *set_name; /* store name: the first name ("*." as "_wildcard."), "_<type>" added
                           * for further types */
    acme_key_type_e key_type;
    acme_domain_t *next_type;  /* the unit of the next key type, or NULL */
    int primary;               /* the first key type's unit, which the vhost names */
    apr_array_header_t *names; /* const char *, lowercase, as configured (then "auto"'s) */
    const char *defined_at;    /* "file:line", for messages */
    int auto_names;            /* "auto": the names of its vhosts join (mod_acme_autonames.c) */
    int n_configured;          /* names[0 .. n_configured - 1] are the configured ones */
    /* What a <ACMEDomain> section set, or NULL for the one-line form; and the configuration
     * this certificate is obtained with: the global values under the section's (check_config).
     * Read per-certificate settings (CA, CA file, contact, key types, renew window,
     * challenges, ...) from conf, never from the server's. */
    struct acme_conf_t *section;
    const struct acme_conf_t *conf;
    const char *config_id; /* fingerprint of what in conf decides how it is obtained */

    /* Filled by the parent in post_config and inherited by the children: */
    int has_active;       /* an active set exists and parses */
    const char *mismatch; /* why the active set no longer fits the configuration (names,
                           * key type, CA), or NULL: a new certificate is obtained */
    apr_time_t not_before, not_after;
    const char *serial;
    apr_uint32_t renew_seed;                 /* spreads renewal times, stable per certificate */
    const char *ari_cert_id;                 /* RFC 9773 certID of the active certificate */
    const char *active_ca;                   /* the CA that issued it (meta.json), or NULL */
    const char *chain_file, *key_file;       /* active set, for mod_ssl */
    const char *fb_chain_file, *fb_key_file; /* fallback, while there is no active set */
    int vhosts;                              /* TLS vhosts using it */
    int promote_failed;                      /* the staged set could not be activated */
    int covers_names;                        /* the active set has every configured name */
    acme_key_t *reuse_key; /* ACMEKeyReuse on: the active set's key (same type), or NULL */
};

/* Which names each challenge type can answer, found in check_config from the configuration as
 * mod_ssl and httpd's core will use it (mod_acme_tlsalpn.c; docs/apache.md, "Which challenge
 * types"). Read by the workers' responders; derived, never set by a directive. */
typedef struct acme_reach_t {
    int http01;                   /* a Listen whose connections reach a server without TLS */
    apr_hash_t *tlsalpn;          /* validator server name (acme_tlsalpn_sni) -> its TLS vhost */
    apr_array_header_t *notes;    /* const char *: names tls-alpn-01 cannot answer, said at start */
    apr_array_header_t *warnings; /* const char *: names nothing can answer, said at start */
} acme_reach_t;

/* Server configuration. Every directive is global (outside <VirtualHost>), so virtual hosts
 * share the main server's values through the merge. The per-certificate directives may also
 * stand in a <ACMEDomain> section: they fill the section's own acme_conf_t, merged over the
 * global one into each certificate's acme_domain_t.conf. */
typedef struct acme_conf_t {
    apr_array_header_t *domains; /* acme_domain_t * */
    acme_name_index_t *names;    /* main server: name -> its ACMEDomain (the first holding it):
                                  * the configured names while the directives are read, every
                                  * name (auto ones too) from check_config on */
    int names_complete;          /* ... from check_config on: acme_domain_for_host uses it */
    apr_array_header_t *ca_urls; /* const char *; first is used, later ones are fallbacks */
    const char *ca_file;
    const char *email;
    int agreement; /* -1 unset */
    const char *store_dir;
    acme_key_type_e key_types[5];     /* ACMEKeyType, in order; the first is the primary */
    int n_key_types;                  /* 0: ec256 */
    int auto_restart;                 /* -1 unset */
    acme_renew_window_t renew_window; /* zero: the default */
    int renew_window_set;
    apr_array_header_t *challenge_types; /* ACMEChallenges: const char *, in order; NULL =
                                          * the default (http-01, tls-alpn-01) */
    const char *eab_kid;                 /* ACMEExternalAccountBinding key ID, or NULL */
    const char *eab_file;                /* ... its key file (absolute) */
    const char *eab_key;             /* ... the MAC key as base64url, read by the parent (root) in
                                      * check_config and inherited by the children; never logged */
    const char *profile;             /* ACMEProfile, or NULL */
    int profile_mandatory;           /* ... no certificate without it */
    const char *cache_spec;          /* ACMEChallengeCache as given */
    apr_array_header_t *dns_command; /* ACMEDNSCommand: const char *, the program first */
    apr_interval_time_t dns_timeout; /* ACMEDNSTimeout; 0 = ACME_DNS_COMMAND_TIMEOUT */
    apr_interval_time_t dns_propagation; /* ACMEDNSPropagationTimeout; 0 = the default */
    const char *dns_resolver;            /* ACMEDNSResolver host[:port], or NULL */
    const ap_socache_provider_t *cache_provider;
    const char *cache_args;
    const char *preferred_chain; /* ACMEPreferredChain: the topmost issuer's CN, or NULL */
    apr_array_header_t *ca_all;  /* every CA URL some ACMEDomain uses, once; check_config */
    acme_reach_t *reach;         /* main server: set in check_config (mod_acme_tlsalpn.c) */
    acme_domain_t *vhost_domain; /* the ACMEDomain this server uses; set in check_config */
    int vhost_fallback;          /* mod_ssl took our fallback for this server: answers 503 */

    /* Events (mod_acme_notify.c) */
    apr_array_header_t *notify_command; /* ACMENotifyCommand: const char *, the program first */
    apr_interval_time_t notify_timeout; /* ACMENotifyTimeout; 0 = ACME_NOTIFY_TIMEOUT */
    apr_interval_time_t expiry_warning; /* ACMEExpiryWarning; 0 = ACME_EXPIRY_WARNING */

    /* HTTPS (mod_acme_https.c, mod_acme_redirect.c) */
    int require_https;         /* ACMERequireHttps: ACME_HTTPS_* */
    apr_int64_t hsts_max_age;  /* ACMEHstsMaxAge in seconds; -1 unset (ACME_HSTS_MAX_AGE) */
    int port_http, port_https; /* ACMEPortMap: the external ports; 0 unset */
    int vhost_tls;             /* mod_ssl asked for this server's certificate: it speaks TLS */

    /* mod_acme_proxy.c */
    const char *http_proxy;    /* ACMEHttpProxy URL (may hold credentials: never logged), NULL */
    const char *http_proxy_ca; /* ACMEHttpProxyCACertificateFile (absolute), or NULL */
    int key_reuse;             /* ACMEKeyReuse: 0 unset, 1 off, 2 on */

    /* mod_acme_cluster.c */
    const struct acme_cluster_conf_t *cluster; /* ACMECluster, or NULL */

    /* mod_acme_live.c */
    int activation;   /* ACMEActivation: 0 unset (graceful), ACME_ACTIVATION_* */
    int vhost_served; /* mod_ssl took our files (certificate or fallback) for this server */
} acme_conf_t;

/* ACMECluster (mod_acme_cluster.c, docs/cluster.md) */
typedef struct acme_cluster_conf_t {
    const char *engine; /* memcache:HOST:PORT or redis:HOST:PORT */
    const char *dir;    /* the shared folder (absolute) */
    const char *node;   /* node=NAME, else the host name */
    int lease;          /* lease=SECONDS */
    int lease_set;
} acme_cluster_conf_t;

#define ACME_ACTIVATION_GRACEFUL 1
#define ACME_ACTIVATION_LIVE     2
/* vhost_fallback's value when mod_acme, not mod_ssl, answers 503 until a certificate is served
 * (ACMEActivation live: the first certificate arrives without a restart). */
#define ACME_FALLBACK_LIVE 2

#define ACME_HTTPS_UNSET     0 /* ACMERequireHttps not given: off */
#define ACME_HTTPS_OFF       1
#define ACME_HTTPS_TEMPORARY 2
#define ACME_HTTPS_PERMANENT 3
#define ACME_HSTS_MAX_AGE    (365 * 86400LL) /* ACMEHstsMaxAge's default, in seconds */

/* What one server generation shares between hooks, built in post_config in pconf. Children
 * inherit it through fork. */
typedef struct acme_runtime_t {
    server_rec *s;
    acme_conf_t *conf;
    acme_store_t *store;
    const char *store_dir;
    ap_socache_instance_t *cache;
    apr_global_mutex_t *cache_mutex; /* NULL when the provider is MP-safe */
    acme_log_t log;                  /* to the main server's error log */
    void *driver;                    /* the renewal driver (mod_acme_drive.c) */
    int one_process;                 /* httpd -X: no graceful restart, nor a restart thread */
    /* How long this generation's configuration pass took, from mod_acme's pre_config to the last
     * post_config (every module's, mod_ssl loading each vhost's certificate included): about what
     * a graceful restart stops the driver for. 0 when not measured. */
    apr_interval_time_t pass_time;
} acme_runtime_t;

/* mod_acme.c */
acme_runtime_t *acme_runtime(void);
acme_conf_t *acme_conf_get(const server_rec *s);
void acme_log_init(acme_log_t *log, server_rec *s);

/* Every log line of the glue goes through these, the twins of ap_log_error/ap_log_rerror: our
 * status codes are not shown as unknown APR errors, and outside text is escaped by httpd's
 * error log (mod_acme_log.c says how). Like httpd's macros, nothing is formatted for a level
 * the server drops. tests/check-format keeps the glue on them. */
#define acme_log_error(...) acme_log_error__(__VA_ARGS__)
#define acme_log_error__(file, line, mi, level, status, s, ...)                                    \
    do {                                                                                           \
        const server_rec *sr__ = (s);                                                              \
        if (APLOG_MODULE_IS_LEVEL(sr__, mi, level)) {                                              \
            acme_log_error_(file, line, mi, level, status, sr__, __VA_ARGS__);                     \
        }                                                                                          \
    } while (0)
#define acme_log_rerror(...) acme_log_rerror__(__VA_ARGS__)
#define acme_log_rerror__(file, line, mi, level, status, r, ...)                                   \
    do {                                                                                           \
        const request_rec *rr__ = (r);                                                             \
        if (APLOG_R_MODULE_IS_LEVEL(rr__, mi, level)) {                                            \
            acme_log_rerror_(file, line, mi, level, status, rr__, __VA_ARGS__);                    \
        }                                                                                          \
    } while (0)
void acme_log_error_(const char *file, int line, int mi, int level, apr_status_t status,
                     const server_rec *s, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
void acme_log_rerror_(const char *file, int line, int mi, int level, apr_status_t status,
                      const request_rec *r, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* mod_acme_challenge_cmd.c: the challenge types a certificate is obtained with, in order of
 * preference: c's ACMEChallenges, else http-01 then tls-alpn-01. */
int acme_challenge_count(const acme_conf_t *c);
const char *acme_challenge_type(const acme_conf_t *c, int i);
/* 1 when type is one of c's challenge types. */
int acme_challenge_listed(const acme_conf_t *c, const char *type);
/* mod_acme_config.c */
extern const command_rec acme_cmds[];
void *acme_conf_create(apr_pool_t *p, server_rec *s);
void *acme_conf_merge(apr_pool_t *p, void *base, void *add);

/* mod_acme_conf_check.c */
/* Checks the configuration as a whole (check_config hook): every error names the directive. */
int acme_conf_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
/* The ACMEDomain whose names include host, or NULL. Request path: no allocation. */
const acme_domain_t *acme_domain_for_host(const acme_conf_t *conf, const char *host);
/* The ACMEDomain a virtual host uses (its ServerName or a ServerAlias is a name of it), found
 * once in check_config; NULL when none. */
acme_domain_t *acme_domain_for_server(const server_rec *s);

/* Where a directive's value goes (the <ACMEDomain> section being read, else the server), and
 * the check of a per-certificate directive (context, duplicates): for directives whose
 * handlers live beside their feature (mod_acme_notify.c). */
acme_conf_t *acme_cmd_conf(cmd_parms *cmd);
const char *acme_cmd_per_cert(cmd_parms *cmd, int already_set);
/* A directive's file argument: an existing regular file, relative to ServerRoot, into *ppath;
 * or "<directive> <arg>: no such file (expected <expected>)". */
const char *acme_cmd_file(cmd_parms *cmd, const char *arg, const char *expected,
                          const char **ppath);
/* ... and of a directive for the whole server (not in <ACMEDomain>). */
const char *acme_cmd_global(cmd_parms *cmd, int already_set);
/* mod_acme_cluster_cmd.c: ACMECluster */
const char *acme_cmd_cluster(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
/* A per-certificate duration directive ("90s", "5m", "7d", plain seconds) of at most max, kept
 * in *pt (0 while unset); examples go into the message. */
const char *acme_cmd_duration(cmd_parms *cmd, apr_interval_time_t *pt, const char *arg,
                              apr_interval_time_t max, const char *examples);
/* An absolute path to an executable program and its arguments (ACMEDNSCommand, ACMENotifyCommand).
 */
const char *acme_cmd_program(cmd_parms *cmd, apr_array_header_t **pargv, int argc,
                             char *const argv[], const char *example);

/* mod_acme_dns_cmd.c: the dns-01 directives. */
/* mod_acme_challenge_cmd.c: ACMEChallenges, ACMEChallengeCache */
const char *acme_cmd_challenges(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *acme_cmd_challenge_cache(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_dns_command(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *acme_cmd_dns_timeout(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_dns_propagation(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_dns_resolver(cmd_parms *cmd, void *dc, const char *arg);

/* mod_acme_notify.c: ACMENotifyCommand, ACMENotifyTimeout, ACMEExpiryWarning */
const char *acme_cmd_notify_command(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *acme_cmd_notify_timeout(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_expiry_warning(cmd_parms *cmd, void *dc, const char *arg);

/* mod_acme_https.c: ACMERequireHttps, ACMEHstsMaxAge, ACMEPortMap */
const char *acme_cmd_require_https(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_hsts_max_age(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_port_map(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
/* Why ACMEPortMap keeps the CA's requests of type (http-01, tls-alpn-01) from the server, or
 * NULL. check_config. */
const char *acme_port_map_blocks(const acme_conf_t *c, const char *type, apr_pool_t *p);

/* mod_acme_redirect.c: the redirect to https and the HSTS header */
void acme_redirect_register_hooks(void);
/* mod_acme_autonames.c: adds to each "ACMEDomain ... auto" the names of the vhosts that carry
 * one of its names (check_config, before acme_conf_check). */
int acme_conf_auto_names(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);

/* mod_acme_proxy.c: ACMEHttpProxy, ACMEHttpProxyCACertificateFile, ACMEKeyReuse */
const char *acme_cmd_http_proxy(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_http_proxy_ca(cmd_parms *cmd, void *dc, const char *arg);
const char *acme_cmd_key_reuse(cmd_parms *cmd, void *dc, int on);

/* mod_acme_certs.c */
apr_status_t acme_parent_prepare_certs(acme_runtime_t *rt, apr_pool_t *pconf, apr_pool_t *ptemp);
void acme_certs_register_hooks(void);
/* Promotes d's staged set and takes the active set into d, exactly as post_config does (also
 * its log lines and refusals); *pset: the active set afterwards, or NULL. Returns
 * acme_store_promote's status (APR_ENOENT: nothing was staged). Parent (root) only: post_config
 * and the restart thread (ACMEActivation live). d's fields are allocated in pkeep. With batch
 * (post_config), the staged set is cleared by acme_store_promote_done. */
apr_status_t acme_parent_promote_domain(acme_runtime_t *rt, acme_domain_t *d, acme_certset_t **pset,
                                        acme_store_batch_t *batch, apr_pool_t *pkeep,
                                        apr_pool_t *ptemp);
/* Fills d's fields of the active set from set (serial, times, CA, ARI certID, mismatch, ...);
 * the parent at start, and the driver after a live activation (from what the parent
 * published). */
void acme_domain_take_set(acme_runtime_t *rt, acme_domain_t *d, const acme_certset_t *set,
                          apr_pool_t *p);

/* mod_acme_live.c: ACMEActivation live (docs/live.md) */
/* post_config, before the fork: the shared memory the parent hands new sets through. */
apr_status_t acme_parent_live_create(acme_runtime_t *rt, apr_pool_t *pconf);
/* The restart thread, when the driver's flag is there: promotes and publishes the staged sets
 * of certificates with ACMEActivation live. *pn: how many were dealt with (activated, or refused
 * and moved aside as at a start). Returns the names
 * (" a.test b.test") whose set is active in the store but could not be handed over live: a
 * restart must serve them; "" when none. */
const char *acme_parent_live_activate(acme_runtime_t *rt, apr_time_t now, int *pn,
                                      apr_pool_t *pkeep, apr_pool_t *ptemp);
/* 1 when a unit of d (any key type) has a set published live. Request path: atomic loads. */
int acme_request_live_served(const acme_domain_t *d);
void acme_live_register_hooks(void);

/* mod_acme_challenge.c */
apr_status_t acme_parent_tokens_create(acme_runtime_t *rt, apr_pool_t *pconf);
void acme_parent_tokens_republish(acme_runtime_t *rt, apr_pool_t *ptemp);
void acme_child_tokens_init(acme_runtime_t *rt, apr_pool_t *pchild);
acme_tokens_t *acme_tokens_socache(acme_runtime_t *rt, apr_pool_t *p);
void acme_challenge_register_hooks(void);
/* The http-01 answers (quick_handler; DECLINED for every other request): called first by the
 * module's one quick handler (mod_acme_redirect.c). */
int acme_challenge_quick(request_rec *r, int lookup_only);

/* The glue's part of a token table entry kept in a job file, published again (after a restart
 * made a new shared segment, or a previous generation's driver published it): only answers
 * for d's names, not expired; a tls-alpn-01 certificate is made anew from the key
 * authorization. Returns how many were published. The parent runs this as root on a file the
 * User writes: everything read is checked first. */
int acme_tokens_publish_job(acme_runtime_t *rt, acme_tokens_t *t, const acme_domain_t *d,
                            const acme_job_t *job, apr_time_t now, apr_pool_t *p);
/* The tls-alpn-01 answer (certificate, then key, as PEM) for server name sni, into buf (at
 * most size - 1 bytes, NUL-terminated). Handshake path: no allocation beyond the provider's. */
apr_status_t acme_request_cert_lookup(acme_runtime_t *rt, const char *sni, char *buf,
                                      apr_size_t size, apr_pool_t *p);

/* mod_acme_tlsalpn.c */
/* Which names http-01 and tls-alpn-01 can answer (check_config, after acme_conf_check); refuses
 * an ACMEChallenges that names a type the configuration cannot answer. */
int acme_conf_check_reach(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
/* Says once at start which names tls-alpn-01 (or nothing) cannot answer, and why. */
void acme_parent_reach_log(acme_runtime_t *rt);
/* 1 when the configuration lets type answer for the identifier. */
int acme_reach_can_answer(const acme_conf_t *conf, const char *type, const acme_ident_t *id,
                          apr_pool_t *p);
/* The type an order answers id by, as the worker picks it: the first of dc's challenge types
 * that the configuration (conf) can answer id by; NULL when none can (a wildcard: dns-01). */
const char *acme_reach_answer_type(const acme_conf_t *conf, const acme_conf_t *dc,
                                   const acme_ident_t *id, apr_pool_t *p);
void acme_tlsalpn_register_hooks(void);

/* mod_acme_drive.c */
apr_status_t acme_parent_driver_setup(acme_runtime_t *rt, apr_pool_t *pconf);

void acme_child_driver_init(acme_runtime_t *rt, apr_pool_t *pchild);

/* mod_acme_restart.c */
apr_status_t acme_parent_restarter_start(acme_runtime_t *rt, apr_pool_t *pconf);

#endif /* MOD_ACME_H */
