/* fuzz_pem.c - PEM certificate chains as the CA sends them (and as the store keeps them), and
 * every check made on a parsed chain: names, validity, serial, issuer linkage, key match, names
 * covered, the ARI certID and the renewal time.
 *
 * Input: the PEM text itself.
 */
#include <arpa/inet.h>
#include <ctype.h>

#include "fuzz.h"

#include "acme_ari.h"
#include "acme_cert.h"
#include "acme_csr.h"
#include "acme_job.h"

static const acme_key_t *other_key(void)
{
    static acme_key_t *key;

    if (!key) {
        FUZZ_ASSERT(acme_key_generate(&key, ACME_KEY_EC256, fuzz_root_pool()) == APR_SUCCESS);
        fuzz_keep(acme_key_evp(key));
    }
    return key;
}

/* 1 when s is an IP literal in the text inet_ntop gives (as iPAddress names are decoded). */
static int ip_is_canonical(const char *s)
{
    unsigned char addr[16];
    char buf[INET6_ADDRSTRLEN];
    int af = strchr(s, ':') ? AF_INET6 : AF_INET;

    return inet_pton(af, s, addr) == 1 && inet_ntop(af, addr, buf, sizeof(buf)) &&
           strcmp(buf, s) == 0;
}

static int is_b64u(const char *s)
{
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') {
            return 0;
        }
    }
    return 1;
}

static void check_cert(const acme_cert_t *cert, int leaf, apr_pool_t *p)
{
    apr_array_header_t *names, *again, *copy;
    const char *pem, *serial, *missing = NULL, *id, *dot;
    int i;

    FUZZ_ASSERT(acme_cert_names(&names, cert, p) == APR_SUCCESS);
    for (i = 0; i < names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        const char *c;
        FUZZ_ASSERT(n && *n);
        for (c = n; *c; c++) {
            FUZZ_ASSERT(!(*c >= 'A' && *c <= 'Z')); /* dNSName values come back lowercased */
        }
    }
    serial = acme_cert_serial_hex(cert, p);
    FUZZ_ASSERT(serial && *serial);
    (void)acme_cert_not_before(cert);
    (void)acme_cert_not_after(cert);

    /* What we write back parses to the same certificate (checked on the leaf only: decoding
     * is the costly part). */
    FUZZ_ASSERT(acme_cert_to_pem(&pem, cert, p) == APR_SUCCESS);
    if (!leaf) {
        goto names;
    }
    FUZZ_ASSERT(acme_cert_chain_parse(&copy, pem, strlen(pem), p) == APR_SUCCESS);
    FUZZ_ASSERT(copy->nelts == 1);
    FUZZ_ASSERT(acme_cert_names(&again, APR_ARRAY_IDX(copy, 0, const acme_cert_t *), p) ==
                APR_SUCCESS);
    FUZZ_ASSERT(again->nelts == names->nelts);
    FUZZ_ASSERT(
        strcmp(acme_cert_serial_hex(APR_ARRAY_IDX(copy, 0, const acme_cert_t *), p), serial) == 0);

names:
    /* Every name we could have asked for is covered, in any letter case; a name not on the
     * certificate is not. (A dNSName that reads as an IP in another spelling than the canonical
     * one is no such name: we would ask for the canonical IP.) */
    for (i = 0; i < names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        apr_array_header_t *one = apr_array_make(p, 1, sizeof(const char *));
        if (!acme_name_is_dns(n) && !(acme_name_is_ip(n) && ip_is_canonical(n))) {
            continue;
        }
        APR_ARRAY_PUSH(one, const char *) = n;
        FUZZ_ASSERT(acme_cert_covers(cert, one, &missing) == APR_SUCCESS);
        if (acme_name_is_dns(n)) {
            char *up = apr_pstrdup(p, n), *c;
            for (c = up; *c; c++) {
                *c = (char)toupper((unsigned char)*c);
            }
            APR_ARRAY_IDX(one, 0, const char *) = up;
            FUZZ_ASSERT(acme_cert_covers(cert, one, &missing) == APR_SUCCESS);
        }
    }
    {
        apr_array_header_t *absent = apr_array_make(p, 1, sizeof(const char *));
        int on_cert = 0;
        for (i = 0; i < names->nelts; i++) {
            on_cert |= !strcmp(APR_ARRAY_IDX(names, i, const char *), "absent.fuzz.invalid");
        }
        APR_ARRAY_PUSH(absent, const char *) = "absent.fuzz.invalid";
        FUZZ_ASSERT(on_cert || acme_cert_covers(cert, absent, &missing) == ACME_EBADSTORE);
        FUZZ_ASSERT(on_cert || strcmp(missing, "absent.fuzz.invalid") == 0);
    }
    FUZZ_ASSERT(!acme_cert_matches_key(cert, other_key()));

    /* RFC 9773 certID: two base64url parts. */
    if (acme_ari_cert_id(&id, cert, p) == APR_SUCCESS) {
        dot = strchr(id, '.');
        FUZZ_ASSERT(dot && dot != id && dot[1] && !strchr(dot + 1, '.'));
        FUZZ_ASSERT(is_b64u(apr_pstrmemdup(p, id, (apr_size_t)(dot - id))) && is_b64u(dot + 1));
    }
}

static void check_renewal(const acme_cert_t *leaf)
{
    static const acme_renew_window_t windows[] = {
        {0, 0}, {33, 0}, {1, 0}, {99, 0}, {0, 30LL * 86400 * APR_USEC_PER_SEC}, {0, 1}};
    apr_time_t nb = acme_cert_not_before(leaf), na = acme_cert_not_after(leaf);
    size_t i;

    for (i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
        apr_time_t at = acme_renew_at(&windows[i], nb, na, 0xdeadbeef);
        if (na > nb) {
            /* Inside the lifetime, but for the spread (at most an hour) that a window of
             * nearly the whole lifetime may push before its start: renewal at once. */
            FUZZ_ASSERT(at >= nb - apr_time_from_sec(3600) && at <= na);
        } else {
            FUZZ_ASSERT(at == nb);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    apr_array_header_t *chain = NULL, *names;
    const char *why = NULL;
    apr_status_t rv;
    int i;

    rv = acme_cert_chain_parse(&chain, (const char *)data, size, p);
    if (rv != APR_SUCCESS) {
        FUZZ_ASSERT(rv == ACME_EBADSTORE || rv == ACME_ETOOLARGE);
        goto out;
    }
    FUZZ_ASSERT(chain->nelts >= 1 && chain->nelts <= ACME_CERT_CHAIN_MAX);
    for (i = 0; i < chain->nelts; i++) {
        check_cert(APR_ARRAY_IDX(chain, i, const acme_cert_t *), i == 0, p);
    }
    check_renewal(APR_ARRAY_IDX(chain, 0, const acme_cert_t *));

    /* The check made before a chain is promoted (issuer linkage, the names, now), and with a key
     * that is not the leaf's (refused before any signature is verified). */
    FUZZ_ASSERT(acme_cert_names(&names, APR_ARRAY_IDX(chain, 0, const acme_cert_t *), p) ==
                APR_SUCCESS);
    rv = acme_cert_chain_check(chain, NULL, names, FUZZ_NOW, &why, p);
    FUZZ_ASSERT(rv == APR_SUCCESS || (rv == ACME_EBADSTORE && why));
    why = NULL;
    rv = acme_cert_chain_check(chain, other_key(), NULL, 0, &why, p);
    FUZZ_ASSERT(rv == ACME_EBADSTORE && why);
out:
    apr_pool_destroy(p);
    return 0;
}
