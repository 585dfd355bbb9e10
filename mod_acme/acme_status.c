/* acme_status.c - one certificate's status document from the store (docs/status.md). */
#include <string.h>

#include "config.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include "acme_ari.h"
#include "acme_status.h"

static const char *const state_names[] = {ACME_STATUS_FALLBACK, ACME_STATUS_VALID,
                                          ACME_STATUS_RENEWING, ACME_STATUS_STAGED,
                                          ACME_STATUS_FAILED,   ACME_STATUS_EXPIRED};
static const char *const reason_names[] = {ACME_REASON_WINDOW, ACME_REASON_ARI,
                                           ACME_REASON_CONFIG_CHANGE, ACME_REASON_REQUESTED};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int code_of(const char *const *names, int n, const char *s)
{
    int i;

    for (i = 0; s && i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

int acme_status_state_code(const char *state)
{
    return code_of(state_names, COUNT(state_names), state);
}

const char *acme_status_state_name(int code)
{
    return code >= 0 && code < COUNT(state_names) ? state_names[code] : NULL;
}

int acme_status_reason_code(const char *reason)
{
    return code_of(reason_names, COUNT(reason_names), reason);
}

const char *acme_status_reason_name(int code)
{
    return code >= 0 && code < COUNT(reason_names) ? reason_names[code] : NULL;
}

const char *acme_status_version(void)
{
    return "mod_acme/" PACKAGE_VERSION;
}

void acme_status_in_init(acme_status_in_t *in)
{
    memset(in, 0, sizeof(*in));
}

const char *acme_status_time(apr_time_t t, apr_pool_t *p)
{
    apr_time_exp_t tm;

    if (apr_time_exp_gmt(&tm, t) != APR_SUCCESS) {
        return "1970-01-01T00:00:00Z";
    }
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A time as the document writes it: RFC 3339 text, or null for 0. */
static json_t *time_json(apr_time_t t, apr_pool_t *p)
{
    return t ? json_string(acme_status_time(t, p)) : json_null();
}

/* A string copied from a file the User may write: printable, bounded; null when absent. */
static json_t *text_json(const char *s)
{
    char buf[ACME_STATUS_TEXT_MAX + 1];
    apr_size_t i, n = 0;
    json_t *j;

    if (!s) {
        return json_null();
    }
    for (i = 0; s[i] && n < ACME_STATUS_TEXT_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[n] = '\0';
    /* json_string refuses what is not UTF-8: such text is shown with its bytes replaced. */
    j = json_string(buf);
    if (j) {
        return j;
    }
    {
        for (i = 0; i < n; i++) {
            if ((unsigned char)buf[i] >= 0x80) {
                buf[i] = '?';
            }
        }
    }
    return json_string(buf);
}

/* The issuer's name as RFC 2253 text (UTF-8, bounded). */
static const char *issuer_text(X509 *x, apr_pool_t *p)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char buf[ACME_STATUS_TEXT_MAX + 1];
    int n;

    if (!bio) {
        return NULL;
    }
    X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    n = BIO_read(bio, buf, ACME_STATUS_TEXT_MAX);
    BIO_free(bio);
    buf[n > 0 ? n : 0] = '\0';
    return apr_pstrdup(p, buf);
}

static const char *fingerprint(X509 *x, apr_pool_t *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;
    char *hex;

    if (!X509_digest(x, EVP_sha256(), md, &len)) {
        return NULL;
    }
    hex = apr_palloc(p, (apr_size_t)len * 3 + 1);
    for (i = 0; i < len; i++) {
        apr_snprintf(hex + i * 3, 4, "%02X%s", md[i], i + 1 < len ? ":" : "");
    }
    return hex;
}

apr_status_t acme_status_set_info(json_t **pinfo, acme_store_t *store, const char *set_name,
                                  int staged, const char **pwhy, apr_pool_t *p)
{
    acme_certset_t *set = NULL;
    apr_array_header_t *names = NULL;
    const acme_cert_t *leaf;
    json_t *info, *jnames;
    const char *s;
    apr_status_t rv;
    int i;

    rv = acme_store_load(&set, store, set_name, staged, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    leaf = APR_ARRAY_IDX(set->chain, 0, const acme_cert_t *);
    info = acme_json_pool(p, json_object());
    jnames = json_array();
    if (acme_cert_names(&names, leaf, p) == APR_SUCCESS) {
        for (i = 0; i < names->nelts; i++) {
            json_array_append_new(jnames, text_json(APR_ARRAY_IDX(names, i, const char *)));
        }
    }
    json_object_set_new(info, "names", jnames);
    json_object_set_new(info, "serial", json_string(acme_cert_serial_hex(leaf, p)));
    json_object_set_new(info, "issuer", text_json(issuer_text(acme_cert_x509(leaf), p)));
    json_object_set_new(info, "not-before", time_json(acme_cert_not_before(leaf), p));
    json_object_set_new(info, "not-after", time_json(acme_cert_not_after(leaf), p));
    json_object_set_new(info, "key-type", json_string(acme_key_type_name(acme_key_type(set->key))));
    s = acme_json_str(set->meta, "profile");
    json_object_set_new(info, "profile", text_json(s));
    s = acme_json_str(set->meta, "ca");
    json_object_set_new(info, "ca", text_json(s));
    json_object_set_new(info, "sha256-fingerprint",
                        text_json(fingerprint(acme_cert_x509(leaf), p)));
    if (json_is_integer(json_object_get(set->meta, "obtained"))) {
        json_int_t t = json_integer_value(json_object_get(set->meta, "obtained"));
        json_object_set_new(info, "obtained",
                            t > 0 && t < 253402300799LL ? time_json(apr_time_from_sec(t), p)
                                                        : json_null());
    }
    if (!staged) {
        json_object_set_new(info, "generation", json_integer(set->generation));
    }
    *pinfo = info;
out:
    return rv;
}

/* A time member of a set object written by acme_status_set_info, back as apr_time_t; 0. */
static apr_time_t info_time(const json_t *info, const char *key)
{
    apr_time_t t = 0;
    const char *s = acme_json_str(info, key);

    return s && acme_rfc3339_parse(&t, s) == APR_SUCCESS ? t : 0;
}

/* The account URL of the CA's account, from accounts/<id>/account.json (the User writes it:
 * bounded, text only). */
static json_t *account_url(acme_store_t *store, const acme_status_in_t *in, const char *ca,
                           apr_pool_t *p)
{
    const char *id = in->account_id ? in->account_id : ca ? acme_store_ca_id(ca, p) : NULL;
    json_t *acct = NULL;

    if (!id || !acme_store_name_ok(id) ||
        acme_store_json_read(&acct, store, apr_pstrcat(p, "accounts/", id, "/account.json", NULL),
                             p) != APR_SUCCESS) {
        return json_null();
    }
    return text_json(acme_json_str(acct, "url"));
}

/* The seed the parent gives acme_renew_at: the hash of the serial's text. */
static apr_uint32_t serial_seed(const char *serial)
{
    apr_ssize_t klen = APR_HASH_KEY_STRING;
    return serial ? apr_hashfunc_default(serial, &klen) : 0;
}

apr_status_t acme_status_cert(json_t **pjson, acme_store_t *store, const char *set_name,
                              const acme_status_in_t *in_arg, apr_pool_t *p)
{
    acme_status_in_t none;
    const acme_status_in_t *in = in_arg;
    json_t *doc, *active = NULL, *staged = NULL, *errors, *jnames, *last = NULL, *order = NULL;
    json_t *ari = NULL;
    acme_job_t *job = NULL;
    const char *why = NULL, *state, *reason = NULL, *ca, *key_type;
    apr_time_t now, not_before = 0, not_after = 0, next = 0;
    apr_status_t rv;
    int i;

    if (!acme_store_name_ok(set_name)) {
        return APR_EINVAL;
    }
    if (!in) {
        acme_status_in_init(&none);
        in = &none;
    }
    now = in->now ? in->now : apr_time_now();
    doc = acme_json_pool(p, json_object());
    errors = json_array();

    if (in->active) {
        active = json_deep_copy(in->active);
    } else {
        rv = acme_status_set_info(&active, store, set_name, 0, &why, p);
        if (rv == APR_SUCCESS) {
            json_incref(active);
        } else {
            active = NULL;
            if (!APR_STATUS_IS_ENOENT(rv)) {
                json_array_append_new(
                    errors,
                    text_json(apr_psprintf(p, "active set: %s", why ? why : acme_strerror(rv, p))));
            }
        }
    }
    why = NULL;
    rv = acme_status_set_info(&staged, store, set_name, 1, &why, p);
    if (rv == APR_SUCCESS) {
        json_incref(staged);
    } else {
        staged = NULL;
        if (!APR_STATUS_IS_ENOENT(rv)) {
            json_array_append_new(
                errors,
                text_json(apr_psprintf(p, "staged set: %s", why ? why : acme_strerror(rv, p))));
        }
    }
    rv = acme_job_load(&job, store, set_name, p);
    if (rv != APR_SUCCESS) {
        json_array_append_new(
            errors, text_json(apr_psprintf(p, "jobs/%s.json: %s", set_name, acme_strerror(rv, p))));
    }

    /* What the names and the key type are: the configuration's, else what the sets say. */
    jnames = json_array();
    if (in->names) {
        for (i = 0; i < in->names->nelts; i++) {
            json_array_append_new(jnames, text_json(APR_ARRAY_IDX(in->names, i, const char *)));
        }
    } else if (active && json_is_array(json_object_get(active, "names"))) {
        json_array_extend(jnames, json_object_get(active, "names"));
    }
    key_type = in->key_type ? in->key_type
               : active     ? acme_json_str(active, "key-type")
               : staged     ? acme_json_str(staged, "key-type")
                            : NULL;
    ca = in->ca_url                              ? in->ca_url
         : active && acme_json_str(active, "ca") ? acme_json_str(active, "ca")
         : job && job->ca_url                    ? job->ca_url
                                                 : NULL;

    if (active) {
        not_before = info_time(active, "not-before");
        not_after = info_time(active, "not-after");
    }

    /* The next renewal and why: the operator's request first, then a certificate to get (none,
     * or one that no longer fits), then the CA's renewal information, then the window. */
    if (in->requested) {
        reason = ACME_REASON_REQUESTED;
        next = now;
    } else if (!active || in->mismatch) {
        reason = ACME_REASON_CONFIG_CHANGE;
        next = now;
    } else if (in->ari_renew_at) {
        reason = ACME_REASON_ARI;
        next = in->ari_renew_at;
    } else if (not_after) {
        reason = ACME_REASON_WINDOW;
        next = acme_renew_at(in->window, not_before, not_after,
                             in->renew_seed_set ? in->renew_seed
                                                : serial_seed(acme_json_str(active, "serial")));
    }
    /* A backoff after failures puts the next attempt later. */
    if (next && job && job->failures && job->next_run > next) {
        next = job->next_run;
    }
    if (staged) {
        next = 0; /* nothing is ordered while a set waits for activation */
    }

    if (active && not_after && now >= not_after) {
        state = ACME_STATUS_EXPIRED;
    } else if (staged) {
        state = ACME_STATUS_STAGED;
    } else if (job && job->failures > 0) {
        state = ACME_STATUS_FAILED;
    } else if (!active) {
        state = ACME_STATUS_FALLBACK;
    } else if (in->in_progress || (job && job->order_url) || (next && now >= next)) {
        state = ACME_STATUS_RENEWING;
    } else {
        state = ACME_STATUS_VALID;
    }

    if (job && (job->last_error || job->last_problem)) {
        last = json_object();
        json_object_set_new(last, "time", time_json(job->last_error_time, p));
        json_object_set_new(last, "result", json_string("failed"));
        json_object_set_new(last, "problem-type", text_json(job->last_problem));
        json_object_set_new(last, "detail", text_json(job->last_error));
    } else if (active && acme_json_str(active, "obtained")) {
        last = json_object();
        json_object_set_new(last, "time", text_json(acme_json_str(active, "obtained")));
        json_object_set_new(last, "result", json_string("success"));
        json_object_set_new(last, "problem-type", json_null());
        json_object_set_new(last, "detail", json_null());
    }
    if (job && job->order_url) {
        order = json_object();
        json_object_set_new(order, "url", text_json(job->order_url));
        json_object_set_new(order, "ca", text_json(job->ca_url));
        json_object_set_new(order, "challenges", json_integer(job->challenges->nelts));
    }
    if (in->ari_start || in->ari_renew_at || in->ari_next_check) {
        ari = json_object();
        json_object_set_new(ari, "window-start", time_json(in->ari_start, p));
        json_object_set_new(ari, "window-end", time_json(in->ari_end, p));
        json_object_set_new(ari, "explanation-url", text_json(in->ari_explanation));
        json_object_set_new(ari, "renew-at", time_json(in->ari_renew_at, p));
        json_object_set_new(ari, "next-check", time_json(in->ari_next_check, p));
    }

    json_object_set_new(doc, "domain", text_json(in->domain ? in->domain : set_name));
    json_object_set_new(doc, "store-name", json_string(set_name));
    json_object_set_new(doc, "key-type", text_json(key_type));
    json_object_set_new(doc, "names", jnames);
    json_object_set_new(doc, "state", json_string(state));
    json_object_set_new(doc, "certificate", active ? active : json_null());
    json_object_set_new(doc, "staged", staged ? staged : json_null());
    json_object_set_new(doc, "mismatch", text_json(in->mismatch));
    json_object_set_new(doc, "renewal",
                        json_pack("{s:o, s:o}", "next", time_json(next, p), "reason",
                                  reason && next ? json_string(reason) : json_null()));
    json_object_set_new(doc, "ari", ari ? ari : json_null());
    json_object_set_new(doc, "last-attempt", last ? last : json_null());
    json_object_set_new(doc, "failures", json_integer(job ? job->failures : 0));
    json_object_set_new(doc, "next-retry", time_json(job && job->failures ? job->next_run : 0, p));
    json_object_set_new(doc, "order", order ? order : json_null());
    json_object_set_new(doc, "ca", text_json(ca));
    json_object_set_new(doc, "account", account_url(store, in, ca, p));
    if (json_array_size(errors)) {
        json_object_set_new(doc, "store-errors", errors);
    } else {
        json_decref(errors);
    }
    *pjson = doc;
    return APR_SUCCESS;
}

apr_status_t acme_status_doc(json_t **pjson, const char *version, const char *store_dir,
                             const apr_array_header_t *cas, const apr_array_header_t *certs,
                             apr_pool_t *p)
{
    json_t *doc = acme_json_pool(p, json_object()), *jcas = json_array(), *jcerts = json_array();
    int i;

    for (i = 0; cas && i < cas->nelts; i++) {
        json_array_append_new(jcas, text_json(APR_ARRAY_IDX(cas, i, const char *)));
    }
    for (i = 0; certs && i < certs->nelts; i++) {
        json_array_append(jcerts, APR_ARRAY_IDX(certs, i, json_t *));
    }
    json_object_set_new(doc, "module", text_json(version));
    json_object_set_new(doc, "store", text_json(store_dir));
    json_object_set_new(doc, "cas", jcas);
    json_object_set_new(doc, "certificates", jcerts);
    *pjson = doc;
    return APR_SUCCESS;
}
