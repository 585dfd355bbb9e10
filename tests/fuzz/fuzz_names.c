/* fuzz_names.c - identifiers and the small value parsers: which names we accept (DNS names,
 * wildcards, IDN A-labels; IPv4 and IPv6 literals), their canonical forms, the store folder made
 * from a name or a CA URL, and a certificate made for a name covering it again in every
 * spelling; RFC 3339 times (ARI windows), base64url, challenge tokens and key authorizations;
 * cluster mode's engine replies (RESP, every byte, NULs included) and lease values.
 *
 * Input: one byte choosing the parser, then its text (up to the first NUL, as C strings reach
 * these functions).
 */
#include <arpa/inet.h>
#include <ctype.h>

#include "fuzz.h"

#include "acme_ari.h"
#include "acme_cert.h"
#include "acme_cluster.h"
#include "acme_csr.h"
#include "acme_order.h"
#include "acme_selfsigned.h"
#include "acme_tokens.h"

enum { K_NAME, K_NAME_CERT, K_CA_URL, K_RFC3339, K_B64U, K_TOKEN, K_RESP, K_LEASE, K_COUNT };

static const acme_key_t *cert_key(void)
{
    static acme_key_t *key;

    if (!key) {
        FUZZ_ASSERT(acme_key_generate(&key, ACME_KEY_EC256, fuzz_root_pool()) == APR_SUCCESS);
        fuzz_keep(acme_key_evp(key));
    }
    return key;
}

static apr_array_header_t *one_name(const char *name, apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(a, const char *) = name;
    return a;
}

/* The IP text as certificates and the configuration show it (inet_ntop), or NULL. */
static const char *ip_text(const char *s, apr_pool_t *p)
{
    unsigned char addr[16];
    char buf[INET6_ADDRSTRLEN];

    if (inet_pton(AF_INET, s, addr) == 1 && inet_ntop(AF_INET, addr, buf, sizeof(buf))) {
        return apr_pstrdup(p, buf);
    }
    if (inet_pton(AF_INET6, s, addr) == 1 && inet_ntop(AF_INET6, addr, buf, sizeof(buf))) {
        return apr_pstrdup(p, buf);
    }
    return NULL;
}

static const char *case_flip(const char *s, apr_pool_t *p)
{
    char *out = apr_pstrdup(p, s), *c;

    for (c = out; *c; c++) {
        *c = (char)(islower((unsigned char)*c) ? toupper((unsigned char)*c)
                                               : tolower((unsigned char)*c));
    }
    return out;
}

static void check_name(const char *s, apr_pool_t *p)
{
    int dns = acme_name_is_dns(s), ip = acme_name_is_ip(s), ok = acme_store_name_ok(s);
    apr_array_header_t *ids;
    const char *c;

    FUZZ_ASSERT(!(dns && ip));
    if (dns) {
        FUZZ_ASSERT(strlen(s) <= 253 && strchr(s, '.'));
        for (c = s; *c; c++) {
            FUZZ_ASSERT(isalnum((unsigned char)*c) || *c == '-' || *c == '.' ||
                        (*c == '*' && c == s && c[1] == '.'));
        }
        FUZZ_ASSERT(acme_name_is_dns(case_flip(s, p)));
    }
    if (ip) {
        const char *canon = ip_text(s, p);
        FUZZ_ASSERT(canon && acme_name_is_ip(canon));
        FUZZ_ASSERT(strcmp(ip_text(canon, p), canon) == 0);
    }
    /* Whatever we accept as a name is a safe folder name in the store; a wildcard under the
     * name the configuration gives its set ("*." as "_wildcard.", mod_acme.h), never with its
     * '*', which would be a glob in an operator's shell. */
    if ((dns && s[0] != '*') || ip) {
        FUZZ_ASSERT(ok);
    }
    if (dns && s[0] == '*') {
        /* ... which mod_acme_config.c refuses when it grows too long. */
        FUZZ_ASSERT(!ok && (strlen(s) + 8 > 255 ||
                            acme_store_name_ok(apr_pstrcat(p, "_wildcard.", s + 2, NULL))));
    }
    if (ok) {
        FUZZ_ASSERT(*s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && s[0] != '.');
        for (c = s; *c; c++) {
            FUZZ_ASSERT(isalnum((unsigned char)*c) || strchr("._-:", *c));
        }
    }
    /* Anything outside ASCII (an IDN U-label) is refused: only A-labels (xn--) go to a CA. */
    for (c = s; *c; c++) {
        if ((unsigned char)*c >= 0x80) {
            FUZZ_ASSERT(!dns && !ip && !ok);
        }
    }
    ids = acme_idents_for(one_name(s, p), p);
    FUZZ_ASSERT(strcmp(APR_ARRAY_IDX(ids, 0, acme_ident_t).type, ip ? "ip" : "dns") == 0);
}

/* A certificate made for the name covers it in every spelling we accept: other letter case,
 * the canonical IP text. */
static void check_name_cert(const char *s, apr_pool_t *p)
{
    apr_array_header_t *chain, *names;
    X509_EXTENSION *ext;
    const char *pem, *missing = NULL, *want;
    apr_size_t len;
    const acme_cert_t *cert;
    int dns = acme_name_is_dns(s), ip = acme_name_is_ip(s);

    if (!dns && !ip) {
        FUZZ_ASSERT(acme_san_extension(&ext, one_name(s, p), 0, p) == APR_EINVAL);
        return;
    }
    FUZZ_ASSERT(acme_san_extension(&ext, one_name(s, p), 0, p) == APR_SUCCESS);
    FUZZ_ASSERT(acme_selfsigned_create(&pem, &len, cert_key(), one_name(s, p), FUZZ_NOW,
                                       FUZZ_NOW + apr_time_from_sec(86400), p) == APR_SUCCESS);
    FUZZ_ASSERT(acme_cert_chain_parse(&chain, pem, len, p) == APR_SUCCESS);
    cert = APR_ARRAY_IDX(chain, 0, const acme_cert_t *);
    FUZZ_ASSERT(acme_cert_names(&names, cert, p) == APR_SUCCESS && names->nelts == 1);
    if (ip) {
        want = ip_text(s, p);
    } else {
        char *lower = apr_pstrdup(p, s), *c;
        for (c = lower; *c; c++) {
            *c = (char)tolower((unsigned char)*c);
        }
        want = lower;
    }
    FUZZ_ASSERT(strcmp(APR_ARRAY_IDX(names, 0, const char *), want) == 0);
    FUZZ_ASSERT(acme_cert_covers(cert, one_name(s, p), &missing) == APR_SUCCESS);
    FUZZ_ASSERT(acme_cert_covers(cert, one_name(want, p), &missing) == APR_SUCCESS);
    FUZZ_ASSERT(acme_cert_covers(cert, one_name(case_flip(s, p), p), &missing) == APR_SUCCESS);
    FUZZ_ASSERT(acme_cert_chain_check(chain, cert_key(), one_name(s, p), FUZZ_NOW + 1, &missing,
                                      p) == APR_SUCCESS);
}

static void check_ca_url(const char *url, apr_pool_t *p)
{
    const char *id = acme_store_ca_id(url, p);

    FUZZ_ASSERT(id && strlen(id) <= 200);
    FUZZ_ASSERT(acme_store_name_ok(id));
    FUZZ_ASSERT(strcmp(acme_store_ca_id(url, p), id) == 0);
}

static void check_rfc3339(const char *s, apr_pool_t *p)
{
    apr_time_t t, again;
    apr_time_exp_t exp;
    const char *text;

    if (acme_rfc3339_parse(&t, s) != APR_SUCCESS) {
        return;
    }
    /* Written back in UTC with microseconds, it reads as the same instant. */
    if (apr_time_exp_gmt(&exp, t) != APR_SUCCESS || exp.tm_year < 70 || exp.tm_year > 8099) {
        return;
    }
    text =
        apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", exp.tm_year + 1900, exp.tm_mon + 1,
                     exp.tm_mday, exp.tm_hour, exp.tm_min, exp.tm_sec, exp.tm_usec);
    FUZZ_ASSERT(acme_rfc3339_parse(&again, text) == APR_SUCCESS);
    FUZZ_ASSERT(again == t);
}

static void check_b64u(const char *s, apr_pool_t *p)
{
    const unsigned char *raw, *raw2;
    apr_size_t len, len2;
    const char *enc;

    if (acme_b64u_decode(&raw, &len, s, strlen(s), p) != APR_SUCCESS) {
        return;
    }
    enc = acme_b64u_encode(p, raw, len);
    FUZZ_ASSERT(acme_b64u_decode(&raw2, &len2, enc, strlen(enc), p) == APR_SUCCESS);
    FUZZ_ASSERT(len2 == len && memcmp(raw, raw2, len) == 0);
}

static void check_token(const char *s, apr_pool_t *p)
{
    const char *keyauth;
    apr_status_t rv;

    rv = acme_key_authorization(&keyauth, cert_key(), s, p);
    if (acme_token_ok(s, strlen(s))) {
        FUZZ_ASSERT(rv == APR_SUCCESS);
        FUZZ_ASSERT(strncmp(keyauth, s, strlen(s)) == 0 && keyauth[strlen(s)] == '.');
    }
}

/* A RESP reply (binary): a parsed reply lies inside the input, its strings too, and whatever is
 * cut short is incomplete, never a reply. */
static void check_resp(const char *s, apr_size_t len)
{
    acme_redis_reply_t r;
    apr_size_t used = 0;
    apr_status_t rv = acme_resp_parse(&r, s, len, &used);

    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(used <= len && used >= 3);
        if (r.type == ACME_RESP_BULK || r.type == ACME_RESP_STATUS || r.type == ACME_RESP_ERROR) {
            FUZZ_ASSERT(r.str >= s && r.str + r.len <= s + used && r.len <= ACME_RESP_MAX);
        }
        /* Replies are prefix-free: the same bytes one short are never a reply. */
        FUZZ_ASSERT(acme_resp_parse(&r, s, used - 1, &used) != APR_SUCCESS);
    } else {
        FUZZ_ASSERT(rv == APR_INCOMPLETE || rv == ACME_EPROTO);
    }
}

/* A lease value (binary): accepted ones come back the same from acme_cluster_lease_value. */
static void check_lease(const char *s, apr_size_t len, apr_pool_t *p)
{
    char node[ACME_CLUSTER_NODE_MAX + 1];
    apr_uint64_t token;

    if (acme_cluster_lease_parse(s, len, &token, node) == APR_SUCCESS) {
        const char *again = acme_cluster_lease_value(token, node, p);
        FUZZ_ASSERT(strlen(again) == len && memcmp(again, s, len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input_t in;
    unsigned kind;
    const char *s;
    apr_size_t len;

    fuzz_input_init(&in, data, size);
    kind = fuzz_byte(&in) % K_COUNT;
    s = fuzz_rest(&in, &len, p); /* a C string (cut at the first NUL) but for RESP and leases */
    switch (kind) {
    case K_NAME:
        check_name(s, p);
        break;
    case K_NAME_CERT:
        check_name(s, p);
        check_name_cert(s, p);
        break;
    case K_CA_URL:
        check_ca_url(s, p);
        break;
    case K_RFC3339:
        check_rfc3339(s, p);
        break;
    case K_B64U:
        check_b64u(s, p);
        break;
    case K_TOKEN:
        check_token(s, p);
        break;
    case K_RESP:
        check_resp(s, len);
        break;
    case K_LEASE:
        check_lease(s, len, p);
        break;
    }
    apr_pool_destroy(p);
    return 0;
}
