/* acme_ari.c - ACME Renewal Information (RFC 9773). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/x509v3.h>

#include "acme_ari.h"

apr_status_t acme_ari_cert_id(const char **pid, const acme_cert_t *cert, apr_pool_t *p)
{
    X509 *x = acme_cert_x509(cert);
    const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id(x);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    unsigned char *der = NULL, *q;
    const unsigned char *content;
    long clen;
    int len, tag, xclass;
    apr_status_t rv = ACME_EBADSTORE;

    if (!kid || ASN1_STRING_length(kid) <= 0 || !serial) {
        return rv;
    }
    /* The serial as it is encoded in the certificate: DER INTEGER content, sign octet kept. */
    len = i2d_ASN1_INTEGER(serial, NULL);
    if (len <= 0) {
        return rv;
    }
    der = OPENSSL_malloc((size_t)len);
    if (!der) {
        return APR_ENOMEM;
    }
    q = der;
    i2d_ASN1_INTEGER(serial, &q);
    content = der;
    if (ASN1_get_object(&content, &clen, &tag, &xclass, len) & 0x80 || tag != V_ASN1_INTEGER ||
        clen <= 0) {
        goto out;
    }
    *pid = apr_pstrcat(
        p, acme_b64u_encode(p, ASN1_STRING_get0_data(kid), (apr_size_t)ASN1_STRING_length(kid)),
        ".", acme_b64u_encode(p, content, (apr_size_t)clen), NULL);
    rv = APR_SUCCESS;
out:
    OPENSSL_free(der);
    return rv;
}

apr_status_t acme_rfc3339_parse(apr_time_t *pt, const char *s)
{
    apr_time_exp_t tm;
    apr_time_t t;
    int y, mo, d, h, mi, sec, n = 0, off = 0;
    long usec = 0;
    const char *r;

    if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n != 19) {
        return APR_EINVAL;
    }
    r = s + n;
    if (*r == '.') {
        long scale = 100000;
        r++;
        if (!apr_isdigit(*r)) {
            return APR_EINVAL;
        }
        while (apr_isdigit(*r)) {
            usec += (*r - '0') * scale;
            scale /= 10;
            r++;
        }
    }
    if (*r == 'Z' || *r == 'z') {
        r++;
    } else if ((*r == '+' || *r == '-') && apr_isdigit(r[1]) && apr_isdigit(r[2]) && r[3] == ':' &&
               apr_isdigit(r[4]) && apr_isdigit(r[5])) {
        off = ((r[1] - '0') * 10 + (r[2] - '0')) * 3600 + ((r[4] - '0') * 10 + (r[5] - '0')) * 60;
        if (*r == '-') {
            off = -off;
        }
        r += 6;
    } else {
        return APR_EINVAL;
    }
    if (*r || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return APR_EINVAL;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec > 59 ? 59 : sec;
    if (apr_time_exp_gmt_get(&t, &tm) != APR_SUCCESS) {
        return APR_EINVAL;
    }
    *pt = t + usec - apr_time_from_sec(off);
    return APR_SUCCESS;
}

apr_status_t acme_ari_parse(acme_ari_t **pari, const char *body, apr_size_t len,
                            apr_interval_time_t retry_after, apr_time_t now, apr_pool_t *p)
{
    json_t *j = acme_json_pool(p, json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL));
    const json_t *win = json_is_object(j) ? json_object_get(j, "suggestedWindow") : NULL;
    const char *url = acme_json_str(j, "explanationURL");
    acme_ari_t *ari = apr_pcalloc(p, sizeof(*ari));
    apr_interval_time_t wait = retry_after >= 0 ? retry_after : ACME_ARI_RECHECK_DEFAULT;

    if (acme_rfc3339_parse(&ari->start, acme_json_str(win, "start")) != APR_SUCCESS ||
        acme_rfc3339_parse(&ari->end, acme_json_str(win, "end")) != APR_SUCCESS ||
        ari->end <= ari->start) {
        return ACME_EPROTO;
    }
    ari->explanation = url && strlen(url) < 1024 ? apr_pstrdup(p, url) : NULL;
    /* Section 4.3: ask again per Retry-After, within sane bounds either way. */
    if (wait < ACME_ARI_RECHECK_MIN) {
        wait = ACME_ARI_RECHECK_MIN;
    }
    if (wait > ACME_ARI_RECHECK_MAX) {
        wait = ACME_ARI_RECHECK_MAX;
    }
    ari->recheck = now + wait;
    *pari = ari;
    return APR_SUCCESS;
}

/* The renewalInfo URL of the client's CA: APR_NOTFOUND when there is none that can be used. */
static apr_status_t ari_base(const char **pbase, acme_problem_t **pprob, acme_client_t *client)
{
    const char *base = NULL;
    apr_status_t rv;

    rv = acme_client_resource(&base, pprob, client, "renewalInfo");
    if (rv == APR_SUCCESS && strncasecmp(base, "https://", 8) != 0 &&
        strncasecmp(base, "http://", 7) != 0) {
        rv = APR_NOTFOUND; /* "" or anything else we could not send a request to */
    }
    if (rv == APR_SUCCESS) {
        *pbase = base;
    }
    return rv;
}

int acme_ari_offered(acme_client_t *client)
{
    const char *base;
    return ari_base(&base, NULL, client) == APR_SUCCESS;
}

apr_status_t acme_ari_fetch(acme_ari_t **pari, acme_problem_t **pprob, acme_client_t *client,
                            const char *cert_id, apr_pool_t *p)
{
    const acme_clock_t *clock = acme_client_clock(client);
    const char *base;
    acme_problem_t *prob = NULL;
    acme_resp_t *resp;
    apr_status_t rv;

    rv = ari_base(&base, pprob, client);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = acme_client_get(
        &resp, &prob, client,
        apr_pstrcat(p, base, base[strlen(base) - 1] == '/' ? "" : "/", cert_id, NULL), p);
    if (rv != APR_SUCCESS) {
        if (pprob) {
            *pprob = prob;
        }
        /* Section 4.2: the CA knows nothing about this certificate. Not a fault of the CA's
         * directory, and no reason to stop asking about the others. */
        return prob && prob->http_status == 404 ? APR_ENOENT : rv;
    }
    rv = acme_ari_parse(pari, resp->http->body, resp->http->body_len, resp->retry_after,
                        clock->now(clock->baton), p);
    if (rv != APR_SUCCESS && pprob) {
        *pprob = acme_problem_make(rv, 0,
                                   apr_psprintf(p,
                                                "renewalInfo for %s has no usable "
                                                "suggestedWindow",
                                                cert_id),
                                   p);
    }
    return rv;
}

int acme_ari_clamp(acme_ari_t *ari, apr_time_t not_before, apr_time_t not_after)
{
    apr_time_t limit = not_after - (not_after - not_before) / 10;

    if (not_after <= not_before || ari->end <= limit) {
        return 0;
    }
    ari->end = limit;
    if (ari->start >= ari->end) {
        ari->start = ari->end - 1;
    }
    return 1;
}

apr_time_t acme_ari_pick(const acme_ari_t *ari, apr_uint64_t rnd)
{
    return ari->start + (apr_time_t)(rnd % (apr_uint64_t)(ari->end - ari->start));
}

int acme_ari_replaces_refused(const acme_problem_t *prob)
{
    return prob && (strcmp(prob->name, "alreadyReplaced") == 0 || prob->rv == ACME_EUNAUTHORIZED ||
                    prob->rv == ACME_EMALFORMED);
}
