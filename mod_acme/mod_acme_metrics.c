/* mod_acme_metrics.c - the acme-metrics handler (Prometheus text format 0.0.4, or OpenMetrics
 * 1.0.0 when the client's Accept asks for application/openmetrics-text) and mod_status's
 * server-status section and ?auto lines. Both read what mod_acme_status.c published; the labels
 * come from the configuration each child holds, the figures from the slots.
 *
 * Request threads of any child run these.
 */
#include <string.h>

#include "mod_acme_status.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>

typedef struct out_t {
    request_rec *r;
    int om; /* OpenMetrics */
} out_t;

/* A label value escaped as both formats want it: backslash, double quote and line feed. */
static const char *label_escape(const char *s, apr_pool_t *p)
{
    apr_size_t n = 0, i;
    char *out, *o;

    for (i = 0; s[i]; i++) {
        n += (s[i] == '\\' || s[i] == '"' || s[i] == '\n') ? 2 : 1;
    }
    o = out = apr_palloc(p, n + 1);
    for (i = 0; s[i]; i++) {
        if (s[i] == '\\' || s[i] == '"') {
            *o++ = '\\';
            *o++ = s[i];
        } else if (s[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* # HELP and # TYPE of a family. OpenMetrics names a counter's family without "_total" and an
 * info family without "_info"; the text format names both by their sample. */
static void family(out_t *o, const char *name, const char *type, const char *help)
{
    const char *fam = name;
    apr_size_t len = strlen(name);

    if (o->om && strcmp(type, "counter") == 0 && len > 6 && !strcmp(name + len - 6, "_total")) {
        fam = apr_pstrndup(o->r->pool, name, len - 6);
    } else if (o->om && strcmp(type, "info") == 0 && len > 5 && !strcmp(name + len - 5, "_info")) {
        fam = apr_pstrndup(o->r->pool, name, len - 5);
    }
    if (!o->om && strcmp(type, "info") == 0) {
        type = "gauge";
    }
    ap_rprintf(o->r, "# HELP %s %s\n# TYPE %s %s\n", fam, help, fam, type);
}

static const char *cert_labels(const acme_domain_t *d, apr_pool_t *p)
{
    return apr_psprintf(p, "domain=\"%s\",key_type=\"%s\"",
                        label_escape(APR_ARRAY_IDX(d->names, 0, const char *), p),
                        acme_key_type_name(d->key_type));
}

typedef struct cert_row_t {
    const acme_domain_t *d;
    const char *labels;
    acme_status_view_t v;
    int ok;
} cert_row_t;

static cert_row_t *read_rows(acme_runtime_t *rt, int *pn, apr_pool_t *p)
{
    int i, n = acme_request_status_count();
    cert_row_t *rows = apr_pcalloc(p, sizeof(*rows) * (apr_size_t)(n ? n : 1));

    for (i = 0; i < n && i < rt->conf->domains->nelts; i++) {
        rows[i].d = APR_ARRAY_IDX(rt->conf->domains, i, const acme_domain_t *);
        rows[i].labels = cert_labels(rows[i].d, p);
        rows[i].ok = acme_request_status_read(i, &rows[i].v, NULL, p) == APR_SUCCESS;
    }
    *pn = i;
    return rows;
}

static void ca_count_line(void *baton, const char *ca, int status, apr_uint64_t count)
{
    out_t *o = baton;
    ap_rprintf(o->r, "acme_ca_requests_total{ca=\"%s\",status=\"%s\"} %" APR_UINT64_T_FMT "\n",
               label_escape(ca, o->r->pool), status ? apr_itoa(o->r->pool, status) : "error",
               count);
}

static void write_metrics(out_t *o, acme_runtime_t *rt)
{
    request_rec *r = o->r;
    acme_status_counters_t c;
    cert_row_t *rows;
    int i, k, n;

    rows = read_rows(rt, &n, r->pool);
    family(o, "acme_certificate_not_after_seconds", "gauge",
           "notAfter of the served certificate, in seconds since the epoch.");
    for (i = 0; i < n; i++) {
        if (rows[i].ok && rows[i].v.has_cert) {
            ap_rprintf(r, "acme_certificate_not_after_seconds{%s} %" APR_INT64_T_FMT "\n",
                       rows[i].labels, rows[i].v.not_after);
        }
    }
    family(o, "acme_certificate_not_before_seconds", "gauge",
           "notBefore of the served certificate, in seconds since the epoch.");
    for (i = 0; i < n; i++) {
        if (rows[i].ok && rows[i].v.has_cert) {
            ap_rprintf(r, "acme_certificate_not_before_seconds{%s} %" APR_INT64_T_FMT "\n",
                       rows[i].labels, rows[i].v.not_before);
        }
    }
    family(o, "acme_certificate_next_renewal_seconds", "gauge",
           "When the certificate is renewed next, in seconds since the epoch.");
    for (i = 0; i < n; i++) {
        if (rows[i].ok && rows[i].v.next_renewal) {
            ap_rprintf(r, "acme_certificate_next_renewal_seconds{%s} %" APR_INT64_T_FMT "\n",
                       rows[i].labels, rows[i].v.next_renewal);
        }
    }
    family(o, "acme_certificate_failures", "gauge", "Consecutive failed attempts.");
    for (i = 0; i < n; i++) {
        if (rows[i].ok) {
            ap_rprintf(r, "acme_certificate_failures{%s} %d\n", rows[i].labels, rows[i].v.failures);
        }
    }
    family(o, "acme_certificate_state", "gauge",
           "1 for the certificate's state (fallback, valid, renewing, staged, failed, expired).");
    for (i = 0; i < n; i++) {
        for (k = 0; rows[i].ok && acme_status_state_name(k); k++) {
            ap_rprintf(r, "acme_certificate_state{%s,state=\"%s\"} %d\n", rows[i].labels,
                       acme_status_state_name(k), rows[i].v.state == k);
        }
    }
    family(o, "acme_certificate_info", "info", "The served certificate: serial, issuer, profile.");
    for (i = 0; i < n; i++) {
        if (rows[i].ok && rows[i].v.has_cert) {
            ap_rprintf(
                r, "acme_certificate_info{%s,serial=\"%s\",issuer=\"%s\",profile=\"%s\"} 1\n",
                rows[i].labels, label_escape(rows[i].v.serial, r->pool),
                label_escape(rows[i].v.issuer, r->pool), label_escape(rows[i].v.profile, r->pool));
        }
    }
    acme_request_status_counters(&c);
    family(o, "acme_renewals_total", "counter", "New certificates obtained.");
    ap_rprintf(r, "acme_renewals_total %" APR_UINT64_T_FMT "\n", c.renewals);
    family(o, "acme_renewal_errors_total", "counter",
           "Attempts to obtain a certificate that failed.");
    ap_rprintf(r, "acme_renewal_errors_total %" APR_UINT64_T_FMT "\n", c.errors);
    family(o, "acme_ca_requests_total", "counter",
           "Requests sent to each CA, by HTTP status (error: no answer).");
    acme_request_status_ca_counts(ca_count_line, o, r->pool);
    if (o->om) {
        ap_rputs("# EOF\n", r);
    }
}

int acme_metrics_handler(request_rec *r)
{
    acme_runtime_t *rt;
    const char *accept;
    out_t o;

    if (!r->handler || strcmp(r->handler, "acme-metrics") != 0) {
        return DECLINED;
    }
    rt = acme_runtime();
    if (r->method_number != M_GET) {
        r->allowed = AP_METHOD_BIT << M_GET;
        return HTTP_METHOD_NOT_ALLOWED;
    }
    accept = apr_table_get(r->headers_in, "Accept");
    o.r = r;
    o.om = accept && ap_strcasestr(accept, "application/openmetrics-text") != NULL;
    ap_set_content_type(r, o.om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                : "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    if (!rt) {
        /* No ACMEDomain: the counters alone (none yet). */
        if (o.om) {
            ap_rputs("# EOF\n", r);
        }
        return OK;
    }
    write_metrics(&o, rt);
    return OK;
}

/* --- mod_status --- */

static int server_status_hook(request_rec *r, int flags)
{
    acme_runtime_t *rt = acme_runtime();
    int counts[6] = {0}, i, k, n;
    cert_row_t *rows;
    acme_status_counters_t c;

    if (!rt) {
        return OK;
    }
    rows = read_rows(rt, &n, r->pool);
    for (i = 0; i < n; i++) {
        if (rows[i].ok) {
            counts[rows[i].v.state]++;
        }
    }
    acme_request_status_counters(&c);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "ACMECertificatesTotal: %d\n", n);
        for (k = 0; acme_status_state_name(k); k++) {
            const char *s = acme_status_state_name(k);
            ap_rprintf(r, "ACMECertificates%c%s: %d\n", apr_toupper(s[0]), s + 1, counts[k]);
        }
        ap_rprintf(
            r, "ACMERenewals: %" APR_UINT64_T_FMT "\nACMERenewalErrors: %" APR_UINT64_T_FMT "\n",
            c.renewals, c.errors);
        for (i = 0; i < n; i++) {
            if (rows[i].ok) {
                ap_rprintf(r, "ACMECertificate: %s %s %s %s %d\n",
                           APR_ARRAY_IDX(rows[i].d->names, 0, const char *),
                           acme_key_type_name(rows[i].d->key_type),
                           acme_status_state_name(rows[i].v.state),
                           rows[i].v.has_cert
                               ? acme_status_time(apr_time_from_sec(rows[i].v.not_after), r->pool)
                               : "-",
                           rows[i].v.failures);
            }
        }
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_acme certificates</h2>\n", r);
    ap_rprintf(r,
               "<p>%d certificate(s); renewals %" APR_UINT64_T_FMT
               ", failed attempts %" APR_UINT64_T_FMT " since the server started</p>\n",
               n, c.renewals, c.errors);
    ap_rputs("<table border=\"1\"><tr><th>Domain</th><th>Key type</th><th>State</th>"
             "<th>Not after</th><th>Next renewal</th><th>Failures</th></tr>\n",
             r);
    for (i = 0; i < n; i++) {
        if (!rows[i].ok) {
            continue;
        }
        ap_rprintf(r,
                   "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td>"
                   "</tr>\n",
                   ap_escape_html(r->pool, APR_ARRAY_IDX(rows[i].d->names, 0, const char *)),
                   acme_key_type_name(rows[i].d->key_type), acme_status_state_name(rows[i].v.state),
                   rows[i].v.has_cert
                       ? acme_status_time(apr_time_from_sec(rows[i].v.not_after), r->pool)
                       : "-",
                   rows[i].v.next_renewal
                       ? acme_status_time(apr_time_from_sec(rows[i].v.next_renewal), r->pool)
                       : "-",
                   rows[i].v.failures);
    }
    ap_rputs("</table>\n", r);
    return OK;
}

void acme_metrics_register_hooks(void)
{
    APR_OPTIONAL_HOOK(ap, status_hook, server_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
