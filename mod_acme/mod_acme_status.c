/* mod_acme_status.c - the status published in shared memory, and the acme-status handler.
 *
 * Two anonymous shared segments, both made by the parent before the fork:
 *   - the slots, one per certificate, made anew in pconf at each start (post_config) and filled
 *     from the store there; the renewal driver (the User, in one child) updates them as it
 *     works. A graceful restart makes new ones, filled again from the store: right after it,
 *     every new child reads what the store says.
 *   - the counters, made once in the process pool (found again at each start through the pool's
 *     user data) so that acme_renewals_total and friends survive graceful restarts.
 * A slot has one writer at a time (the parent before the fork, then the driver thread of its
 * generation); readers copy it under a sequence count and try again when it moved meanwhile,
 * so they never wait on a lock nor block the writer. The parent never reads either segment
 * after the fork: what the User writes there cannot reach root.
 *
 * acme_parent_* run in post_config, acme_driver_* in the watchdog thread, the handler in any
 * request thread.
 */
#include <sched.h>
#include <string.h>

#include <apr_shm.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "mod_acme_drive.h"
#include "acme_ari.h"
#include "mod_acme_status.h"

#define SLOT_JSON_MAX    (32 * 1024) /* one certificate's document; more is cut to a stub */
#define READ_TRIES       1000
#define CA_COUNTERS_MAX  64 /* (CA, status) pairs; more are not counted */
#define CA_URL_MAX       256
#define COUNTERS_KEY     "mod_acme-status-counters"
#define REFRESH_INTERVAL apr_time_from_sec(60)

typedef struct slot_t {
    volatile apr_uint32_t seq; /* odd while the writer is in the slot */
    apr_uint32_t json_len;
    acme_status_view_t view;
    char json[SLOT_JSON_MAX];
} slot_t;

typedef struct ca_counter_t {
    volatile apr_uint32_t used; /* 0 free, 1 being claimed, 2 ready */
    int status;
    char ca[CA_URL_MAX];
    volatile apr_uint64_t count;
} ca_counter_t;

typedef struct counters_t {
    volatile apr_uint64_t renewals;
    volatile apr_uint64_t errors;
    ca_counter_t ca[CA_COUNTERS_MAX];
} counters_t;

/* This generation's, set in post_config, inherited by the children. */
static slot_t *g_slots;
static int g_nslots;
static counters_t *g_counters;
static const char *g_head;        /* the document's start, made by the parent */
static json_t **g_active;         /* per certificate: the served set, as the parent read it */
static int *g_requested;          /* per certificate: the driver's; an operator asked */
static apr_time_t g_next_refresh; /* the driver's */
static apr_time_t *g_transition;  /* per certificate: when its state moves on by itself */
/* The driver's, per certificate: what its last publication knew, and work that ended since. */
static int *g_shown_busy;
static apr_time_t *g_shown_ari;
static int *g_dirty;

/* --- the slots --- */

static void slot_write(slot_t *slot, const acme_status_view_t *view, const char *json,
                       apr_size_t len)
{
    apr_uint32_t seq = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);

    /* Odd: a writer died in the slot (a driver child killed mid-copy); this write ends it. */
    seq += seq & 1;
    __atomic_store_n(&slot->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    slot->view = *view;
    memcpy(slot->json, json, len);
    slot->json_len = (apr_uint32_t)len;
    __atomic_store_n(&slot->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Copies src, cut to size - 1 bytes at a whole UTF-8 character: label values must be UTF-8. */
static void cstr_copy(char *dst, apr_size_t size, const char *src)
{
    apr_size_t n;

    apr_cpystrn(dst, src ? src : "", size);
    n = strlen(dst);
    if (src && n < strlen(src)) {
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--; /* src[n], the first byte left out, continues a character: cut before it */
        }
        dst[n] = '\0';
    }
}

/* The figures from a document acme_status_cert made. */
static void view_from_doc(acme_status_view_t *v, const json_t *doc)
{
    const json_t *cert = json_object_get(doc, "certificate");
    const json_t *renewal = json_object_get(doc, "renewal");
    const json_t *f = json_object_get(doc, "failures");
    apr_time_t t;

    memset(v, 0, sizeof(*v));
    v->state = acme_status_state_code(acme_json_str(doc, "state"));
    v->reason = acme_status_reason_code(acme_json_str(renewal, "reason"));
    v->failures =
        json_is_integer(f) && json_integer_value(f) < 1000000 ? (int)json_integer_value(f) : 0;
    v->has_cert = json_is_object(cert);
    if (acme_json_str(cert, "not-before") &&
        acme_rfc3339_parse(&t, acme_json_str(cert, "not-before")) == APR_SUCCESS) {
        v->not_before = apr_time_sec(t);
    }
    if (acme_json_str(cert, "not-after") &&
        acme_rfc3339_parse(&t, acme_json_str(cert, "not-after")) == APR_SUCCESS) {
        v->not_after = apr_time_sec(t);
    }
    if (acme_json_str(renewal, "next") &&
        acme_rfc3339_parse(&t, acme_json_str(renewal, "next")) == APR_SUCCESS) {
        v->next_renewal = apr_time_sec(t);
    }
    if (acme_json_str(doc, "next-retry") &&
        acme_rfc3339_parse(&t, acme_json_str(doc, "next-retry")) == APR_SUCCESS) {
        v->next_retry = apr_time_sec(t);
    }
    cstr_copy(v->serial, sizeof(v->serial), acme_json_str(cert, "serial"));
    cstr_copy(v->issuer, sizeof(v->issuer), acme_json_str(cert, "issuer"));
    cstr_copy(v->profile, sizeof(v->profile), acme_json_str(cert, "profile"));
}

/* Remembers the earliest time ahead at which certificate i's state changes with the clock alone
 * (notAfter: expired; the renewal time: renewing; the next retry), for the driver to publish
 * again then rather than up to a minute later. */
static void note_transition(int i, const acme_status_view_t *v)
{
    apr_int64_t at[3] = {v->not_after, v->next_renewal, v->next_retry};
    apr_time_t now = apr_time_now();
    int k;

    for (k = 0; k < 3; k++) {
        apr_time_t t = apr_time_from_sec(at[k]);
        if (at[k] > 0 && t > now && (!g_transition[i] || t < g_transition[i])) {
            g_transition[i] = t;
        }
    }
}

/* What the configuration says of certificate d, for acme_status_cert. */
static void status_in(acme_status_in_t *in, const acme_domain_t *d)
{
    acme_status_in_init(in);
    in->domain = d->name;
    in->key_type = acme_key_type_name(d->key_type);
    in->names = d->names;
    in->window = &d->conf->renew_window;
    in->renew_seed = d->renew_seed;
    in->renew_seed_set = d->has_active;
    in->ca_url = d->active_ca ? d->active_ca
                 : d->conf->ca_urls && d->conf->ca_urls->nelts
                     ? APR_ARRAY_IDX(d->conf->ca_urls, 0, const char *)
                     : ACME_LETSENCRYPT;
    in->mismatch = d->has_active ? d->mismatch : NULL;
}

/* Builds and publishes certificate i's document; in says what the caller knows. */
static void publish(acme_runtime_t *rt, int i, const acme_status_in_t *in, apr_pool_t *p)
{
    const acme_domain_t *d = APR_ARRAY_IDX(rt->conf->domains, i, const acme_domain_t *);
    acme_status_view_t view;
    json_t *doc = NULL;
    char *text = NULL;
    apr_size_t len;

    if (!g_slots || i >= g_nslots ||
        acme_status_cert(&doc, rt->store, d->set_name, in, p) != APR_SUCCESS) {
        return;
    }
    view_from_doc(&view, doc);
    g_transition[i] = 0;
    note_transition(i, &view);
    text = json_dumps(doc, JSON_COMPACT);
    if (!text) {
        return;
    }
    len = strlen(text);
    if (len > SLOT_JSON_MAX) {
        /* Only a configuration of hundreds of names gets here: the figures stay right. */
        free(text);
        text = json_dumps(acme_json_pool(p, json_pack("{s:s, s:s, s:s}", "domain", d->name, "state",
                                                      acme_json_str(doc, "state"), "error",
                                                      "status too large to publish")),
                          JSON_COMPACT);
        if (!text) {
            return;
        }
        len = strlen(text);
    }
    slot_write(&g_slots[i], &view, text, len);
    free(text);
}

apr_status_t acme_request_status_read(int i, acme_status_view_t *view, const char **pjson,
                                      apr_pool_t *p)
{
    char *buf = pjson ? apr_palloc(p, SLOT_JSON_MAX + 1) : NULL;
    const slot_t *slot;
    apr_uint32_t s1, s2, len = 0;
    int tries;

    if (!g_slots || i < 0 || i >= g_nslots) {
        return APR_NOTFOUND;
    }
    slot = &g_slots[i];
    for (tries = 0; tries < READ_TRIES; tries++) {
        s1 = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            sched_yield();
            continue;
        }
        *view = slot->view;
        len = slot->json_len;
        if (len > SLOT_JSON_MAX) {
            len = 0;
        }
        if (buf) {
            memcpy(buf, slot->json, len);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
        if (s1 == s2) {
            break;
        }
    }
    if (tries == READ_TRIES) {
        return APR_EAGAIN;
    }
    /* Whoever wrote the slot, the strings end inside their arrays. */
    view->serial[sizeof(view->serial) - 1] = '\0';
    view->issuer[sizeof(view->issuer) - 1] = '\0';
    view->profile[sizeof(view->profile) - 1] = '\0';
    if (!acme_status_state_name(view->state)) {
        view->state = acme_status_state_code(ACME_STATUS_FALLBACK);
    }
    if (!acme_status_reason_name(view->reason)) {
        view->reason = -1;
    }
    if (buf) {
        buf[len] = '\0';
        *pjson = len ? buf : "null";
    }
    return APR_SUCCESS;
}

int acme_request_status_count(void)
{
    return g_slots ? g_nslots : 0;
}

const char *acme_request_status_head(void)
{
    return g_head;
}

/* --- the counters --- */

void acme_request_status_counters(acme_status_counters_t *c)
{
    memset(c, 0, sizeof(*c));
    if (g_counters) {
        c->renewals = __atomic_load_n(&g_counters->renewals, __ATOMIC_RELAXED);
        c->errors = __atomic_load_n(&g_counters->errors, __ATOMIC_RELAXED);
    }
}

void acme_request_status_ca_counts(acme_status_ca_fn *fn, void *baton, apr_pool_t *p)
{
    apr_hash_t *seen = apr_hash_make(p);
    apr_array_header_t *order = apr_array_make(p, 8, sizeof(const char *));
    int k;

    if (!g_counters) {
        return;
    }
    for (k = 0; k < CA_COUNTERS_MAX; k++) {
        const ca_counter_t *e = &g_counters->ca[k];
        char ca[CA_URL_MAX];
        const char *key;
        apr_uint64_t *sum;
        if (__atomic_load_n(&e->used, __ATOMIC_ACQUIRE) != 2) {
            continue;
        }
        memcpy(ca, e->ca, sizeof(ca));
        ca[sizeof(ca) - 1] = '\0';
        key = apr_psprintf(p, "%d %s", e->status, ca);
        sum = apr_hash_get(seen, key, APR_HASH_KEY_STRING);
        if (!sum) {
            sum = apr_pcalloc(p, sizeof(*sum));
            apr_hash_set(seen, key, APR_HASH_KEY_STRING, sum);
            APR_ARRAY_PUSH(order, const char *) = key;
        }
        *sum += __atomic_load_n(&e->count, __ATOMIC_RELAXED);
    }
    for (k = 0; k < order->nelts; k++) {
        const char *key = APR_ARRAY_IDX(order, k, const char *);
        const char *sp = strchr(key, ' ');
        fn(baton, sp + 1, atoi(key), *(apr_uint64_t *)apr_hash_get(seen, key, APR_HASH_KEY_STRING));
    }
}

static void count_ca(const char *ca, int status)
{
    int k, round;

    if (!g_counters || !ca) {
        return;
    }
    for (round = 0; round < 2; round++) {
        for (k = 0; k < CA_COUNTERS_MAX; k++) {
            ca_counter_t *e = &g_counters->ca[k];
            apr_uint32_t used = __atomic_load_n(&e->used, __ATOMIC_ACQUIRE);
            apr_uint32_t zero = 0;
            if (used == 2 && e->status == status && strncmp(e->ca, ca, CA_URL_MAX - 1) == 0) {
                __atomic_add_fetch(&e->count, 1, __ATOMIC_RELAXED);
                return;
            }
            /* A free entry is claimed on the second round only: the first looks for ours. */
            if (round == 1 && used == 0 &&
                __atomic_compare_exchange_n(&e->used, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                e->status = status;
                apr_cpystrn(e->ca, ca, CA_URL_MAX);
                e->count = 1;
                __atomic_store_n(&e->used, 2, __ATOMIC_RELEASE);
                return;
            }
        }
    }
}

typedef struct counting_t {
    acme_http_t *inner;
    const char *ca;
} counting_t;

static apr_status_t counting_perform(acme_http_t *http, const acme_http_req_t *req,
                                     acme_http_resp_t **presp, apr_pool_t *p)
{
    counting_t *c = http->baton;
    apr_status_t rv = c->inner->perform(c->inner, req, presp, p);

    if (rv == ACME_ECANCELLED) {
        return rv; /* the server stops: no request of the CA's to count */
    }
    count_ca(c->ca, rv == APR_SUCCESS && *presp ? (*presp)->status : 0);
    memcpy(http->error, c->inner->error, sizeof(http->error));
    return rv;
}

acme_http_t *acme_driver_status_http(acme_http_t *http, const char *ca, apr_pool_t *p)
{
    acme_http_t *w = apr_pcalloc(p, sizeof(*w));
    counting_t *c = apr_pcalloc(p, sizeof(*c));

    c->inner = http;
    c->ca = apr_pstrdup(p, ca);
    w->perform = counting_perform;
    w->baton = c;
    w->log = http->log;
    return w;
}

/* --- the driver's side --- */

void acme_driver_status_publish(struct driver_t *drv, int i, apr_pool_t *ptemp)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, const acme_domain_t *);
    acme_status_in_t in;

    if (!g_slots || i >= g_nslots) {
        return;
    }
    g_shown_busy[i] = drv->workers && drv->workers[i] && !drv->workers[i]->ari_only;
    g_shown_ari[i] = drv->ari_renew_at ? drv->ari_renew_at[i] : 0;
    g_dirty[i] = 0;
    status_in(&in, d);
    in.active = g_active[i];
    in.requested = g_requested[i];
    in.in_progress = drv->workers && drv->workers[i] && !drv->workers[i]->ari_only;
    /* Only from a CA that gave renewal information: one that offers none is asked again
     * now and then, which says nothing about this certificate. */
    if (drv->ari_renew_at && drv->ari_renew_at[i]) {
        in.ari_renew_at = drv->ari_renew_at[i];
        in.ari_next_check = drv->ari_check_at[i];
        in.ari_start = drv->ari_start[i];
        in.ari_end = drv->ari_end[i];
        in.ari_explanation = drv->ari_explanation[i][0] ? drv->ari_explanation[i] : NULL;
    }
    publish(drv->rt, i, &in, ptemp);
}

void acme_driver_status_served(struct driver_t *drv, int i, json_t *info)
{
    if (g_active && i < g_nslots) {
        g_active[i] = acme_json_pool(drv->pool, json_deep_copy(info));
        g_dirty[i] = 1;
    }
}

void acme_driver_status_refresh(struct driver_t *drv, int force, apr_pool_t *ptemp)
{
    apr_time_t now = apr_time_now();
    int i, all = force || now >= g_next_refresh;

    if (all) {
        g_next_refresh = now + REFRESH_INTERVAL;
    }
    for (i = 0; i < g_nslots; i++) {
        int busy = drv->workers && drv->workers[i] && !drv->workers[i]->ari_only;
        apr_time_t ari = drv->ari_renew_at ? drv->ari_renew_at[i] : 0;
        apr_pool_t *p;
        if (!all && !g_dirty[i] && busy == g_shown_busy[i] && ari == g_shown_ari[i] &&
            (!g_transition[i] || now < g_transition[i])) {
            continue;
        }
        if (apr_pool_create(&p, ptemp) != APR_SUCCESS) {
            return;
        }
        acme_driver_status_publish(drv, i, p);
        apr_pool_destroy(p);
    }
}

void acme_driver_status_requested(struct driver_t *drv, int i, int requested, apr_pool_t *ptemp)
{
    if (g_requested && i < g_nslots) {
        g_requested[i] = requested;
        if (ptemp) { /* NULL while the driver stops: nobody reads this generation's slots */
            acme_driver_status_publish(drv, i, ptemp);
        }
    }
}

void acme_driver_status_reaped(struct driver_t *drv, int i, const struct worker_t *w)
{
    (void)drv;
    if (g_counters && !w->ari_only && w->staged) {
        __atomic_add_fetch(&g_counters->renewals, 1, __ATOMIC_RELAXED);
    } else if (g_counters && !w->ari_only && w->next_run) {
        /* A failed attempt sets when to try again; one abandoned because the server stops
         * does not. */
        __atomic_add_fetch(&g_counters->errors, 1, __ATOMIC_RELAXED);
    }
    if (g_dirty && i < g_nslots) {
        g_dirty[i] = 1;
    }
}

/* --- the parent's side --- */

static apr_status_t counters_get(server_rec *s)
{
    apr_pool_t *pproc = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    apr_pool_userdata_get((void **)&shm, COUNTERS_KEY, pproc);
    if (!shm) {
        rv = apr_shm_create(&shm, sizeof(counters_t), NULL, pproc);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        memset(apr_shm_baseaddr_get(shm), 0, sizeof(counters_t));
        apr_pool_userdata_set(shm, COUNTERS_KEY, apr_pool_cleanup_null, pproc);
    }
    g_counters = apr_shm_baseaddr_get(shm);
    return APR_SUCCESS;
}

static const char *make_head(acme_runtime_t *rt, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    json_t *doc = NULL;
    char *text;
    const char *head;
    apr_size_t len;

    acme_status_doc(&doc, acme_status_version(), rt->store_dir, rt->conf->ca_all, NULL, ptemp);
    text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        return "{\"certificates\":[";
    }
    /* ..."certificates":[]} without its last two characters: the slots follow. */
    len = strlen(text);
    head = len > 2 ? apr_pstrndup(pconf, text, len - 2) : "{\"certificates\":[";
    free(text);
    return head;
}

apr_status_t acme_parent_status_create(acme_runtime_t *rt, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = rt->conf->domains;
    apr_shm_t *shm;
    apr_status_t rv;
    int i;

    g_slots = NULL;
    g_nslots = 0;
    rv = counters_get(rt->s);
    if (rv == APR_SUCCESS) {
        rv = apr_shm_create(&shm, sizeof(slot_t) * (apr_size_t)domains->nelts, NULL, pconf);
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, rt->s,
                       "ACME03100: cannot make the shared memory for the status of %d "
                       "certificate(s); acme-status and acme-metrics answer 503 until the next "
                       "start",
                       domains->nelts);
        return APR_SUCCESS; /* serving certificates does not depend on it */
    }
    g_head = make_head(rt, pconf, ptemp);
    g_active = apr_pcalloc(pconf, sizeof(json_t *) * (apr_size_t)domains->nelts);
    g_requested = apr_pcalloc(pconf, sizeof(int) * (apr_size_t)domains->nelts);
    g_shown_busy = apr_pcalloc(pconf, sizeof(int) * (apr_size_t)domains->nelts);
    g_shown_ari = apr_pcalloc(pconf, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    g_dirty = apr_pcalloc(pconf, sizeof(int) * (apr_size_t)domains->nelts);
    g_transition = apr_pcalloc(pconf, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    /* Anonymous shared memory comes zeroed; pages past what a document fills are never
     * touched, so a large slot costs little. */
    g_slots = apr_shm_baseaddr_get(shm);
    g_nslots = domains->nelts;
    g_next_refresh = 0;
    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, const acme_domain_t *);
        acme_status_in_t in;
        json_t *active = NULL;
        const char *why = NULL;
        apr_pool_t *p;

        if (apr_pool_create(&p, ptemp) != APR_SUCCESS) {
            break;
        }
        /* Read here, as root, for the driver, which cannot read archive/. */
        rv = acme_status_set_info(&active, rt->store, d->set_name, 0, &why, p);
        if (rv == APR_SUCCESS) {
            g_active[i] = acme_json_pool(pconf, json_deep_copy(active));
        } else if (!APR_STATUS_IS_ENOENT(rv)) {
            acme_log_error(APLOG_MARK, APLOG_DEBUG, rv, rt->s,
                           "ACME03101: %s: the served certificate is not in the status: %s",
                           d->name, why ? why : "it does not load");
        }
        status_in(&in, d);
        in.active = g_active[i];
        publish(rt, i, &in, p);
        apr_pool_destroy(p);
    }
    return APR_SUCCESS;
}

/* --- the acme-status handler --- */

static int json_answer(request_rec *r, int status, const char *body)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!r->header_only) {
        ap_rputs(body, r);
        ap_rputs("\n", r);
    }
    return OK;
}

/* The certificate a request names: its store name ("a.test_rsa2048"), or the ACMEDomain's
 * first name for the first key type. -1 when none. */
static int find_cert(const acme_conf_t *conf, const char *name)
{
    int i;

    for (i = 0; i < conf->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(conf->domains, i, const acme_domain_t *);
        if (strcmp(d->set_name, name) == 0 ||
            (d->primary && strcasecmp(APR_ARRAY_IDX(d->names, 0, const char *), name) == 0)) {
            return i;
        }
    }
    return -1;
}

static int status_handler(request_rec *r)
{
    acme_runtime_t *rt;
    acme_status_view_t view;
    const char *name = NULL, *json;
    int i, n;

    /* Every request's handler phase passes here: one look for both of ours. */
    if (!r->handler || strncmp(r->handler, "acme-", 5) != 0) {
        return DECLINED;
    }
    if (strcmp(r->handler + 5, "metrics") == 0) {
        return acme_metrics_handler(r);
    }
    if (strcmp(r->handler + 5, "status") != 0) {
        return DECLINED;
    }
    rt = acme_runtime();
    if (r->method_number != M_GET) {
        r->allowed = AP_METHOD_BIT << M_GET;
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (r->path_info && r->path_info[0] == '/' && r->path_info[1]) {
        name = r->path_info + 1;
    }
    if (!rt || !g_head) {
        return json_answer(r, rt ? HTTP_SERVICE_UNAVAILABLE : HTTP_NOT_FOUND,
                           rt ? "{\"error\":\"the status is not available\"}"
                              : "{\"error\":\"no ACMEDomain is configured\"}");
    }
    if (name) {
        i = strchr(name, '/') ? -1 : find_cert(rt->conf, name);
        if (i < 0) {
            json_t *err = acme_json_pool(
                r->pool, json_pack("{s:s, s:s}", "error", "not found", "name", name));
            char *text = err ? json_dumps(err, JSON_COMPACT) : NULL;
            const char *body = text ? apr_pstrdup(r->pool, text) : "{\"error\":\"not found\"}";
            free(text);
            return json_answer(r, HTTP_NOT_FOUND, body);
        }
        if (acme_request_status_read(i, &view, &json, r->pool) != APR_SUCCESS) {
            return json_answer(r, HTTP_SERVICE_UNAVAILABLE, "{\"error\":\"busy, try again\"}");
        }
        return json_answer(r, HTTP_OK, json);
    }
    r->status = HTTP_OK;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    ap_rputs(g_head, r);
    n = acme_request_status_count();
    for (i = 0; i < n; i++) {
        if (acme_request_status_read(i, &view, &json, r->pool) != APR_SUCCESS) {
            json = "null";
        }
        if (i) {
            ap_rputs(",", r);
        }
        ap_rputs(json, r);
    }
    ap_rputs("]}\n", r);
    return OK;
}

static int status_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    g_slots = NULL;
    g_nslots = 0;
    g_head = NULL;
    return OK;
}

void acme_status_register_hooks(void)
{
    ap_hook_pre_config(status_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    acme_metrics_register_hooks();
}
