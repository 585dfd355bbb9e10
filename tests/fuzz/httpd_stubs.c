/* httpd_stubs.c - stand-ins for the httpd functions the glue files call, for the fuzz targets
 * of the glue (see fuzz_httpd.h). Each does what httpd does as far as the caller can tell, without
 * a running server: logging formats its message and drops it, ap_server_root_relative merges
 * with a fixed ServerRoot, the provider lookup knows one socache provider.
 */
#define ACME_MODULE_RECORD /* acme_module is defined here, as mod_acme.c does */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_mutex.h>

#include "fuzz_httpd.h"

#define FUZZ_SERVER_ROOT "/etc/apache2"

module AP_MODULE_DECLARE_DATA acme_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, NULL, 0,
};

/* --- mod_acme.c --- */

static acme_runtime_t *runtime;

acme_runtime_t *acme_runtime(void)
{
    return runtime;
}

void fuzz_httpd_set_runtime(acme_runtime_t *rt)
{
    runtime = rt;
}

acme_conf_t *acme_conf_get(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &acme_module);
}

server_rec *fuzz_httpd_server(const char *hostname, apr_pool_t *p)
{
    server_rec *s = apr_pcalloc(p, sizeof(*s));
    void **config = apr_pcalloc(p, sizeof(void *));

    acme_module.module_index = 0;
    s->process = NULL;
    s->server_hostname = hostname ? apr_pstrdup(p, hostname) : NULL;
    s->names = apr_array_make(p, 1, sizeof(const char *));
    s->wild_names = apr_array_make(p, 1, sizeof(const char *));
    s->log.level = APLOG_TRACE8;
    s->log.module_levels = NULL;
    s->module_config = (ap_conf_vector_t *)config;
    config[0] = acme_conf_create(p, s);
    return s;
}

/* --- http_config.h, http_log.h --- */

const char *ap_check_cmd_context(cmd_parms *cmd, unsigned forbidden)
{
    (void)cmd;
    (void)forbidden;
    return NULL; /* every directive is read in the global context */
}

static fuzz_walk_fn *walker;

void fuzz_httpd_set_walker(fuzz_walk_fn *fn)
{
    walker = fn;
}

/* A section's body: each directive in turn, through the target's walker. */
const char *ap_walk_config(ap_directive_t *current, cmd_parms *parms,
                           ap_conf_vector_t *section_vector)
{
    (void)section_vector;
    for (; current; current = current->next) {
        const char *err;
        parms->directive = current;
        err = walker ? walker(current, parms) : NULL;
        if (err) {
            return err;
        }
    }
    return NULL;
}

/* The next word of *line like httpd's: blanks separate, "..." and '...' group (without the
 * backslash escapes inside quotes, which our directives never need). */
char *ap_getword_conf(apr_pool_t *p, const char **line)
{
    const char *s = *line, *start;
    char *word;
    char quote = 0;

    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
        s++;
    }
    if (*s == '"' || *s == '\'') {
        quote = *s++;
    }
    start = s;
    while (*s && (quote ? *s != quote : (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n'))) {
        s++;
    }
    word = apr_pstrmemdup(p, start, (apr_size_t)(s - start));
    if (*s) {
        s++;
    }
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
        s++;
    }
    *line = s;
    return word;
}

char *ap_server_root_relative(apr_pool_t *p, const char *fname)
{
    char *path = NULL;

    if (apr_filepath_merge(&path, FUZZ_SERVER_ROOT, fname, APR_FILEPATH_TRUENAME, p) !=
        APR_SUCCESS) {
        return NULL;
    }
    return path;
}

void ap_log_error_(const char *file, int line, int module_index, int level, apr_status_t status,
                   const server_rec *s, const char *fmt, ...)
{
    apr_pool_t *p;
    va_list ap;

    (void)file;
    (void)line;
    (void)module_index;
    (void)level;
    (void)status;
    (void)s;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        abort();
    }
    va_start(ap, fmt);
    (void)apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    apr_pool_destroy(p);
}

void ap_log_rerror_(const char *file, int line, int module_index, int level, apr_status_t status,
                    const request_rec *r, const char *fmt, ...)
{
    va_list ap;

    (void)file;
    (void)line;
    (void)module_index;
    (void)level;
    (void)status;
    va_start(ap, fmt);
    (void)apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
}

/* --- providers, hooks, mutexes --- */

void *ap_lookup_provider(const char *provider_group, const char *provider_name,
                         const char *provider_version)
{
    (void)provider_version;
    if (strcmp(provider_group, AP_SOCACHE_PROVIDER_GROUP) == 0 &&
        strcmp(provider_name, "shmcb") == 0) {
        return (void *)&fuzz_socache_provider;
    }
    return NULL;
}

static fuzz_quick_handler_fn *quick_handler;

void ap_hook_quick_handler(ap_HOOK_quick_handler_t *pf, const char *const *aszPre,
                           const char *const *aszSucc, int nOrder)
{
    (void)aszPre;
    (void)aszSucc;
    (void)nOrder;
    quick_handler = pf;
}

fuzz_quick_handler_fn *fuzz_httpd_quick_handler(void)
{
    return quick_handler;
}

apr_status_t ap_global_mutex_create(apr_global_mutex_t **mutex, const char **name, const char *type,
                                    const char *instance_id, server_rec *server, apr_pool_t *pool,
                                    apr_int32_t options)
{
    (void)mutex;
    (void)name;
    (void)type;
    (void)instance_id;
    (void)server;
    (void)pool;
    (void)options;
    return APR_ENOTIMPL; /* the fuzz provider is safe without one */
}

/* --- the response --- */

static char body[4096];
static apr_size_t body_len;
static const char *content_type;
static apr_off_t content_length = -1;

void fuzz_httpd_reset_output(void)
{
    body_len = 0;
    content_type = NULL;
    content_length = -1;
}

const char *fuzz_httpd_body(apr_size_t *plen)
{
    *plen = body_len;
    return body;
}

const char *fuzz_httpd_content_type(void)
{
    return content_type;
}

apr_off_t fuzz_httpd_content_length(void)
{
    return content_length;
}

int ap_rwrite(const void *buf, int nbyte, request_rec *r)
{
    (void)r;
    if (nbyte < 0 || body_len + (apr_size_t)nbyte > sizeof(body)) {
        abort(); /* more than any answer we make */
    }
    memcpy(body + body_len, buf, (apr_size_t)nbyte);
    body_len += (apr_size_t)nbyte;
    return nbyte;
}

void ap_set_content_type(request_rec *r, const char *ct)
{
    (void)r;
    content_type = ct;
}

void ap_set_content_length(request_rec *r, apr_off_t length)
{
    (void)r;
    content_length = length;
}

/* --- the socache provider --- */

struct ap_socache_instance_t {
    apr_pool_t *pool;
    apr_hash_t *entries; /* id -> entry_t */
};

typedef struct entry_t {
    apr_time_t expiry;
    unsigned char *data;
    unsigned int len;
} entry_t;

static const char *cache_create(ap_socache_instance_t **instance, const char *arg, apr_pool_t *tmp,
                                apr_pool_t *p)
{
    ap_socache_instance_t *c = apr_pcalloc(p, sizeof(*c));

    (void)arg;
    (void)tmp;
    c->pool = p;
    c->entries = apr_hash_make(p);
    *instance = c;
    return NULL;
}

static apr_status_t cache_init(ap_socache_instance_t *instance, const char *cname,
                               const struct ap_socache_hints *hints, server_rec *s,
                               apr_pool_t *pool)
{
    (void)instance;
    (void)cname;
    (void)hints;
    (void)s;
    (void)pool;
    return APR_SUCCESS;
}

static void cache_destroy(ap_socache_instance_t *instance, server_rec *s)
{
    (void)instance;
    (void)s;
}

static apr_status_t cache_store(ap_socache_instance_t *c, server_rec *s, const unsigned char *id,
                                unsigned int idlen, apr_time_t expiry, unsigned char *data,
                                unsigned int datalen, apr_pool_t *pool)
{
    entry_t *e = apr_pcalloc(c->pool, sizeof(*e));

    (void)s;
    (void)pool;
    e->expiry = expiry;
    e->data = apr_pmemdup(c->pool, data, datalen);
    e->len = datalen;
    apr_hash_set(c->entries, apr_pmemdup(c->pool, id, idlen), idlen, e);
    return APR_SUCCESS;
}

static apr_status_t cache_retrieve(ap_socache_instance_t *c, server_rec *s, const unsigned char *id,
                                   unsigned int idlen, unsigned char *data, unsigned int *datalen,
                                   apr_pool_t *pool)
{
    entry_t *e = apr_hash_get(c->entries, id, idlen);

    (void)s;
    (void)pool;
    if (!e || e->expiry < apr_time_now()) {
        return APR_NOTFOUND;
    }
    if (e->len > *datalen) {
        return APR_ENOSPC;
    }
    memcpy(data, e->data, e->len);
    *datalen = e->len;
    return APR_SUCCESS;
}

static apr_status_t cache_remove(ap_socache_instance_t *c, server_rec *s, const unsigned char *id,
                                 unsigned int idlen, apr_pool_t *pool)
{
    (void)s;
    (void)pool;
    if (!apr_hash_get(c->entries, id, idlen)) {
        return APR_NOTFOUND;
    }
    apr_hash_set(c->entries, id, idlen, NULL);
    return APR_SUCCESS;
}

const ap_socache_provider_t fuzz_socache_provider = {
    "shmcb",      0,    cache_create, cache_init, cache_destroy, cache_store, cache_retrieve,
    cache_remove, NULL, NULL,
};
