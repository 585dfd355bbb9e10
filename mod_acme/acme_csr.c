/* acme_csr.c - the PKCS#10 request sent to finalize an order (RFC 8555 section 7.4), and the
 * syntax checks for the identifiers we may put in it.
 *
 * OpenSSL objects hang off a scratch pool by a cleanup from the moment they exist; objects
 * handed to a container (a name into the SAN list, the SAN extension into the extension list)
 * are pushed right away so that the container's cleanup frees them.
 */
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <apr_strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_ossl.h"
#include "acme_csr.h"

/* RFC 5280 appendix A.1: ub-common-name INTEGER ::= 64 */
#define CN_MAX 64
/* RFC 1035 section 2.3.4: labels of 63 octets, names of 255 octets on the wire, which is 253
 * characters in text without the trailing dot. */
#define LABEL_MAX    63
#define DNS_NAME_MAX 253

static apr_status_t req_cleanup(void *data)
{
    X509_REQ_free(data);
    return APR_SUCCESS;
}

/* Frees the stack only: its extension has a cleanup of its own (acme_san_extension). */
static apr_status_t exts_cleanup(void *data)
{
    sk_X509_EXTENSION_free(data);
    return APR_SUCCESS;
}

int acme_name_is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (!s || !*s) {
        return 0;
    }
    /* inet_pton takes only the plain dotted quad and RFC 4291 text forms: no "1.2.3",
     * no octal or hex parts, no "%zone" suffix, which RFC 8738 section 3 leaves out too. */
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

int acme_name_is_dns(const char *s)
{
    apr_size_t len, i, start, labels = 0;
    int numeric = 1;

    if (!s) {
        return 0;
    }
    len = strlen(s);
    if (len == 0 || len > DNS_NAME_MAX) {
        return 0;
    }
    /* A wildcard is a whole leftmost label (RFC 8555 section 7.1.3), nowhere else. */
    start = (s[0] == '*' && s[1] == '.') ? 2 : 0;
    for (i = start; i <= len; i++) {
        apr_size_t llen;
        if (i < len && s[i] != '.') {
            if (!is_ldh(s[i])) {
                return 0;
            }
            continue;
        }
        /* a label ends at s[i - 1] */
        llen = i - start;
        if (llen == 0 || llen > LABEL_MAX || s[start] == '-' || s[i - 1] == '-') {
            return 0;
        }
        numeric = strspn(s + start, "0123456789") >= llen;
        labels++;
        start = i + 1;
    }
    /* RFC 3696 section 2: a top-level domain is never all-numeric, which also keeps IPv4
     * literals (and near misses like "1.2.3.999") out of the DNS names. */
    return labels >= 2 && !numeric;
}

static int name_is_dup(const apr_array_header_t *names, int upto, const char *name)
{
    int j;

    for (j = 0; j < upto; j++) {
        if (!strcasecmp(APR_ARRAY_IDX(names, j, const char *), name)) {
            return 1;
        }
    }
    return 0;
}

/* Appends one subjectAltName entry: dNSName for a DNS name, iPAddress (4 or 16 octets,
 * RFC 5280 section 4.2.1.6) for an IP literal as RFC 8738 section 3 asks. */
static apr_status_t add_san(GENERAL_NAMES *gens, const char *name)
{
    GENERAL_NAME *gn;
    ASN1_IA5STRING *ia5;
    ASN1_OCTET_STRING *ip;
    apr_status_t rv = ACME_ECRYPTO;

    gn = GENERAL_NAME_new();
    if (!gn) {
        goto out;
    }
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        goto out;
    }
    if (acme_name_is_ip(name)) {
        ip = a2i_IPADDRESS(name);
        if (!ip) {
            rv = APR_EINVAL;
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        rv = APR_SUCCESS;
        goto out;
    }
    ia5 = ASN1_IA5STRING_new();
    if (!ia5) {
        goto out;
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    if (!ASN1_STRING_set(ia5, name, (int)strlen(name))) {
        goto out;
    }
    rv = APR_SUCCESS;
out:
    return rv;
}

static apr_status_t ext_cleanup(void *data)
{
    X509_EXTENSION_free(data);
    return APR_SUCCESS;
}

apr_status_t acme_san_extension(X509_EXTENSION **pext, const apr_array_header_t *names,
                                int critical, apr_pool_t *p)
{
    GENERAL_NAMES *gens;
    X509_EXTENSION *ext;
    apr_status_t rv = APR_EINVAL;
    int i;

    if (!names || names->nelts < 1) {
        goto out;
    }
    for (i = 0; i < names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(names, i, const char *);
        if (!name || (!acme_name_is_ip(name) && !acme_name_is_dns(name)) ||
            name_is_dup(names, i, name)) {
            goto out;
        }
    }
    rv = ACME_ECRYPTO;
    gens = sk_GENERAL_NAME_new_null();
    if (!gens) {
        goto out;
    }
    apr_pool_cleanup_register(p, gens, acme_ossl_gens_free, apr_pool_cleanup_null);
    for (i = 0; i < names->nelts; i++) {
        rv = add_san(gens, APR_ARRAY_IDX(names, i, const char *));
        if (rv != APR_SUCCESS) {
            goto out;
        }
    }
    rv = ACME_ECRYPTO;
    ext = X509V3_EXT_i2d(NID_subject_alt_name, critical, gens);
    if (!ext) {
        goto out;
    }
    apr_pool_cleanup_register(p, ext, ext_cleanup, apr_pool_cleanup_null);
    *pext = ext;
    rv = APR_SUCCESS;
out:
    return rv;
}

apr_status_t acme_csr_create(const unsigned char **pder, apr_size_t *plen, const acme_key_t *key,
                             const apr_array_header_t *names, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    X509_REQ *req;
    STACK_OF(X509_EXTENSION) * exts;
    X509_EXTENSION *ext;
    const char *first;
    unsigned char *der, *q;
    int i, len, has_cn = 0;
    apr_status_t rv = APR_EINVAL;

    if (!key || !names || names->nelts < 1) {
        goto out;
    }
    for (i = 0; i < names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(names, i, const char *);
        if (!name || (!acme_name_is_ip(name) && !acme_name_is_dns(name)) ||
            name_is_dup(names, i, name)) {
            goto out;
        }
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    req = X509_REQ_new();
    if (!req) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, req, req_cleanup, apr_pool_cleanup_null);
    /* PKCS#10 version 1 is encoded as 0 (RFC 2986 section 4.1). */
    if (!X509_REQ_set_version(req, 0)) {
        goto out;
    }
    /* CAs take the names from the SANs (RFC 8555 section 7.4); the CN is a courtesy for old
     * software and must fit ub-common-name. An IP never goes into the CN. */
    first = APR_ARRAY_IDX(names, 0, const char *);
    if (acme_name_is_dns(first) && strlen(first) <= CN_MAX) {
        if (!X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                        (const unsigned char *)first, -1, -1, 0)) {
            goto out;
        }
        has_cn = 1;
    }

    /* RFC 5280 section 4.2.1.6: with an empty subject the SAN extension is critical. */
    rv = acme_san_extension(&ext, names, has_cn ? 0 : 1, ptmp);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    exts = sk_X509_EXTENSION_new_null();
    if (!exts) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, exts, exts_cleanup, apr_pool_cleanup_null);
    /* The stack does not own ext: ext stays with ptmp's cleanup. */
    if (!sk_X509_EXTENSION_push(exts, ext)) {
        goto out;
    }
    if (!X509_REQ_add_extensions(req, exts)) {
        goto out;
    }

    if (!X509_REQ_set_pubkey(req, acme_key_evp(key))) {
        goto out;
    }
    if (X509_REQ_sign(req, acme_key_evp(key), EVP_sha256()) <= 0) {
        goto out;
    }
    len = i2d_X509_REQ(req, NULL);
    if (len <= 0) {
        goto out;
    }
    der = apr_palloc(p, (apr_size_t)len);
    q = der;
    if (i2d_X509_REQ(req, &q) != len) {
        goto out;
    }
    *pder = der;
    *plen = (apr_size_t)len;
    rv = APR_SUCCESS;
out:
    ERR_clear_error();
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}
