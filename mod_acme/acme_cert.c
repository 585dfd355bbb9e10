/* acme_cert.c - certificate chains as the CA sends them (RFC 8555 section 7.4.2,
 * application/pem-certificate-chain) and the checks made before a chain is stored or used.
 *
 * Parsing is strict (RFC 8555 section 9.1 refers to RFC 7468 section 5.1, strict encoding): a
 * chain is CERTIFICATE blocks separated by whitespace and nothing else. A parsed certificate
 * keeps its names and validity, decoded once, so the accessors below need no allocation and any
 * thread may use a certificate after parsing.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <apr_strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_ossl.h"
#include "acme_cert.h"

struct acme_cert_t {
    X509 *x509;
    apr_array_header_t *names; /* const char *, see acme_cert_names */
    apr_time_t not_before;
    apr_time_t not_after;
};

static const char PEM_BEGIN[] = "-----BEGIN CERTIFICATE-----";
static const char PEM_END[] = "-----END CERTIFICATE-----";
#define PEM_BEGIN_LEN (sizeof(PEM_BEGIN) - 1)
#define PEM_END_LEN   (sizeof(PEM_END) - 1)

static apr_status_t openssl_mem_cleanup(void *data)
{
    OPENSSL_free(data);
    return APR_SUCCESS;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Offset of needle in s[from, len), or len when absent. The text need not be NUL-terminated. */
static apr_size_t find(const char *s, apr_size_t from, apr_size_t len, const char *needle,
                       apr_size_t nlen)
{
    apr_size_t i;

    for (i = from; i + nlen <= len; i++) {
        if (!memcmp(s + i, needle, nlen)) {
            return i;
        }
    }
    return len;
}

static apr_status_t asn1_time_to_apr(apr_time_t *pt, const ASN1_TIME *at)
{
    struct tm tm;
    apr_time_exp_t exp;
    apr_time_t t;
    apr_status_t rv = ACME_EBADSTORE;

    if (!at || !ASN1_TIME_to_tm(at, &tm)) {
        goto out;
    }
    memset(&exp, 0, sizeof(exp));
    exp.tm_sec = tm.tm_sec;
    exp.tm_min = tm.tm_min;
    exp.tm_hour = tm.tm_hour;
    exp.tm_mday = tm.tm_mday;
    exp.tm_mon = tm.tm_mon;
    exp.tm_year = tm.tm_year;
    if (apr_time_exp_gmt_get(&t, &exp) != APR_SUCCESS) {
        goto out;
    }
    *pt = t;
    rv = APR_SUCCESS;
out:
    return rv;
}

/* The subjectAltName entries we act on, decoded once: dNSName lowercased, iPAddress as the text
 * inet_ntop gives. Other entry types are not ACME identifiers and are skipped; so is a dNSName
 * with a NUL in it, which could only serve to fool a string comparison. */
static char *ascii_lower(char *s)
{
    char *c;

    for (c = s; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    return s;
}

static apr_status_t decode_names(apr_array_header_t **pnames, X509 *x, apr_pool_t *p)
{
    apr_array_header_t *names = apr_array_make(p, 4, sizeof(const char *));
    GENERAL_NAMES *gens;
    int crit = 0, i;
    apr_status_t rv = APR_SUCCESS;

    gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (!gens) {
        /* -1: no SAN at all (a CA certificate); anything else is a malformed or a repeated
         * extension, which RFC 5280 section 4.2 forbids. */
        if (crit != -1) {
            rv = ACME_EBADSTORE;
            goto out;
        }
        *pnames = names;
        goto out;
    }
    apr_pool_cleanup_register(p, gens, acme_ossl_gens_free, apr_pool_cleanup_null);
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        const unsigned char *d;
        char buf[INET6_ADDRSTRLEN];
        int len;

        if (gn->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(gn->d.dNSName);
            len = ASN1_STRING_length(gn->d.dNSName);
            if (len <= 0 || memchr(d, 0, (apr_size_t)len)) {
                continue;
            }
            APR_ARRAY_PUSH(names, const char *) =
                ascii_lower(apr_pstrmemdup(p, (const char *)d, (apr_size_t)len));
        } else if (gn->type == GEN_IPADD) {
            d = ASN1_STRING_get0_data(gn->d.iPAddress);
            len = ASN1_STRING_length(gn->d.iPAddress);
            if ((len != 4 && len != 16) ||
                !inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf, sizeof(buf))) {
                continue;
            }
            APR_ARRAY_PUSH(names, const char *) = apr_pstrdup(p, buf);
        }
    }
    /* Decoded once and kept as strings: the stack is not needed beyond this point. */
    apr_pool_cleanup_run(p, gens, acme_ossl_gens_free);
    *pnames = names;
out:
    return rv;
}

/* One "-----BEGIN CERTIFICATE-----" ... "-----END CERTIFICATE-----" block: no headers, the
 * DER inside is one certificate with nothing after it. */
static apr_status_t parse_block(acme_cert_t **pcert, const char *pem, apr_size_t len,
                                apr_pool_t *pc, apr_pool_t *ptmp)
{
    BIO *bio;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    const unsigned char *q;
    long dlen = 0;
    X509 *x;
    acme_cert_t *cert;
    apr_status_t rv = ACME_EBADSTORE;

    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rv = ACME_ECRYPTO;
        goto out;
    }
    apr_pool_cleanup_register(ptmp, bio, acme_ossl_bio_free, apr_pool_cleanup_null);
    if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, name, openssl_mem_cleanup, apr_pool_cleanup_null);
    apr_pool_cleanup_register(ptmp, header, openssl_mem_cleanup, apr_pool_cleanup_null);
    apr_pool_cleanup_register(ptmp, data, openssl_mem_cleanup, apr_pool_cleanup_null);
    if (strcmp(name, "CERTIFICATE") != 0 || header[0] != '\0' || dlen <= 0) {
        goto out;
    }
    q = data;
    x = d2i_X509(NULL, &q, dlen);
    if (!x) {
        goto out;
    }
    apr_pool_cleanup_register(pc, x, acme_ossl_x509_free, apr_pool_cleanup_null);
    if (q != data + dlen) {
        goto out;
    }
    cert = apr_pcalloc(pc, sizeof(*cert));
    cert->x509 = x;
    rv = decode_names(&cert->names, x, pc);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = asn1_time_to_apr(&cert->not_before, X509_get0_notBefore(x));
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = asn1_time_to_apr(&cert->not_after, X509_get0_notAfter(x));
    if (rv != APR_SUCCESS) {
        goto out;
    }
    *pcert = cert;
out:
    return rv;
}

apr_status_t acme_cert_chain_parse(apr_array_header_t **pchain, const char *pem, apr_size_t len,
                                   apr_pool_t *p)
{
    apr_pool_t *pc = NULL, *ptmp = NULL;
    apr_array_header_t *chain;
    apr_size_t pos = 0, end;
    acme_cert_t *cert;
    apr_status_t rv;

    if (len > ACME_CERT_PEM_MAX) {
        rv = ACME_ETOOLARGE;
        goto out;
    }
    if (!pem || len == 0) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    /* The certificates live in a pool of their own below p, so that a chain refused halfway
     * leaves nothing behind. */
    rv = apr_pool_create(&pc, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    chain = apr_array_make(p, 3, sizeof(acme_cert_t *));
    for (;;) {
        while (pos < len && is_space(pem[pos])) {
            pos++;
        }
        if (pos == len) {
            break;
        }
        rv = ACME_EBADSTORE;
        if (len - pos < PEM_BEGIN_LEN || memcmp(pem + pos, PEM_BEGIN, PEM_BEGIN_LEN) != 0) {
            goto out;
        }
        end = find(pem, pos + PEM_BEGIN_LEN, len, PEM_END, PEM_END_LEN);
        if (end == len) {
            goto out;
        }
        end += PEM_END_LEN;
        if (chain->nelts >= ACME_CERT_CHAIN_MAX) {
            rv = ACME_ETOOLARGE;
            goto out;
        }
        rv = parse_block(&cert, pem + pos, end - pos, pc, ptmp);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        APR_ARRAY_PUSH(chain, acme_cert_t *) = cert;
        pos = end;
    }
    if (chain->nelts == 0) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    *pchain = chain;
    rv = APR_SUCCESS;
out:
    ERR_clear_error();
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    if (rv != APR_SUCCESS && pc) {
        apr_pool_destroy(pc);
    }
    return rv;
}

apr_status_t acme_cert_to_pem(const char **ppem, const acme_cert_t *cert, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    BIO *bio;
    apr_status_t rv;

    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    bio = BIO_new(BIO_s_mem());
    if (!bio) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, bio, acme_ossl_bio_free, apr_pool_cleanup_null);
    if (!PEM_write_bio_X509(bio, cert->x509)) {
        goto out;
    }
    if (acme_ossl_bio_text(ppem, NULL, bio, p) != APR_SUCCESS) {
        goto out;
    }
    rv = APR_SUCCESS;
out:
    ERR_clear_error();
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

X509 *acme_cert_x509(const acme_cert_t *cert)
{
    return cert->x509;
}

apr_status_t acme_cert_names(apr_array_header_t **pnames, const acme_cert_t *cert, apr_pool_t *p)
{
    *pnames = apr_array_copy(p, cert->names);
    return APR_SUCCESS;
}

apr_time_t acme_cert_not_before(const acme_cert_t *cert)
{
    return cert->not_before;
}

apr_time_t acme_cert_not_after(const acme_cert_t *cert)
{
    return cert->not_after;
}

const char *acme_cert_serial_hex(const acme_cert_t *cert, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    BIGNUM *bn;
    char *hex, *s;
    const char *result = NULL;

    if (apr_pool_create(&ptmp, p) != APR_SUCCESS) {
        goto out;
    }
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert->x509), NULL);
    if (!bn) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, bn, acme_ossl_bn_free, apr_pool_cleanup_null);
    hex = BN_bn2hex(bn);
    if (!hex) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, hex, openssl_mem_cleanup, apr_pool_cleanup_null);
    /* BN_bn2hex writes whole bytes ("0A"); a zero serial stays "0". */
    s = hex[0] == '-' ? hex + 1 : hex;
    while (s[0] == '0' && s[1] != '\0') {
        s++;
    }
    result = ascii_lower(apr_pstrcat(p, hex[0] == '-' ? "-" : "", s, NULL));
out:
    ERR_clear_error();
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return result;
}

int acme_cert_matches_key(const acme_cert_t *cert, const acme_key_t *key)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert->x509);
    int ok = pub && key && EVP_PKEY_eq(pub, acme_key_evp(key)) == 1;

    ERR_clear_error();
    return ok;
}

int acme_cert_issued_by(const acme_cert_t *cert, const acme_cert_t *issuer)
{
    EVP_PKEY *pub = X509_get0_pubkey(issuer->x509);
    int ok =
        pub &&
        X509_NAME_cmp(X509_get_issuer_name(cert->x509), X509_get_subject_name(issuer->x509)) == 0 &&
        X509_verify(cert->x509, pub) == 1;

    ERR_clear_error();
    return ok;
}

int acme_cert_same(const acme_cert_t *a, const acme_cert_t *b)
{
    return a && b && X509_cmp(a->x509, b->x509) == 0;
}

const char *acme_cert_chain_top_issuer(const apr_array_header_t *chain, apr_pool_t *p)
{
    const X509_NAME *issuer;
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    const char *cn = NULL;
    int idx, n;

    if (!chain || chain->nelts < 1) {
        goto out;
    }
    issuer = X509_get_issuer_name(APR_ARRAY_IDX(chain, chain->nelts - 1, acme_cert_t *)->x509);
    idx = X509_NAME_get_index_by_NID(issuer, NID_commonName, -1);
    e = idx >= 0 ? X509_NAME_get_entry(issuer, idx) : NULL;
    n = e ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e)) : -1;
    /* A name with a NUL inside would compare equal to its first part: not a name. */
    if (n < 0 || memchr(utf8, '\0', (size_t)n)) {
        goto out;
    }
    cn = apr_pstrmemdup(p, (const char *)utf8, (apr_size_t)n);
out:
    OPENSSL_free(utf8);
    ERR_clear_error();
    return cn;
}

int acme_cert_chain_pick(const apr_array_header_t *chains, const char *issuer_cn, apr_pool_t *p)
{
    int i;

    for (i = 0; issuer_cn && *issuer_cn && chains && i < chains->nelts; i++) {
        const apr_array_header_t *chain = APR_ARRAY_IDX(chains, i, const apr_array_header_t *);
        const char *top = chain ? acme_cert_chain_top_issuer(chain, p) : NULL;
        if (top && strcmp(top, issuer_cn) == 0) {
            return i;
        }
    }
    return -1;
}

/* An IP name in the canonical text of inet_ntop, so "2001:DB8:0::1" meets "2001:db8::1". */
static const char *ip_canonical(const char *name, char *buf, apr_size_t blen)
{
    unsigned char addr[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, name, addr) == 1) {
        return inet_ntop(AF_INET, addr, buf, (socklen_t)blen);
    }
    if (inet_pton(AF_INET6, name, addr) == 1) {
        return inet_ntop(AF_INET6, addr, buf, (socklen_t)blen);
    }
    return NULL;
}

static int cert_has_name(const acme_cert_t *cert, const char *name)
{
    char buf[INET6_ADDRSTRLEN];
    const char *ip = ip_canonical(name, buf, sizeof(buf));
    int i;

    for (i = 0; i < cert->names->nelts; i++) {
        const char *san = APR_ARRAY_IDX(cert->names, i, const char *);
        /* Plain comparison: a wildcard SAN stands for itself only, since the names we ask
         * for are exactly the names on the order. */
        if (ip ? !strcmp(san, ip) : !strcasecmp(san, name)) {
            return 1;
        }
    }
    return 0;
}

apr_status_t acme_cert_covers(const acme_cert_t *cert, const apr_array_header_t *names,
                              const char **pmissing)
{
    const char *name;
    apr_status_t rv = APR_SUCCESS;
    int i;

    for (i = 0; i < names->nelts; i++) {
        name = APR_ARRAY_IDX(names, i, const char *);
        if (!name || !cert_has_name(cert, name)) {
            if (pmissing) {
                *pmissing = name ? name : "(null)";
            }
            rv = ACME_EBADSTORE;
            goto out;
        }
    }
out:
    return rv;
}

static const char *time_text(apr_time_t t, apr_pool_t *p)
{
    apr_time_exp_t exp;
    char buf[64];
    apr_size_t n = 0;

    if (apr_time_exp_gmt(&exp, t) != APR_SUCCESS ||
        apr_strftime(buf, &n, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &exp) != APR_SUCCESS) {
        return "(unknown time)";
    }
    return apr_pstrmemdup(p, buf, n);
}

apr_status_t acme_cert_chain_check(const apr_array_header_t *chain, const acme_key_t *key,
                                   const apr_array_header_t *names, apr_time_t now,
                                   const char **pwhy, apr_pool_t *p)
{
    const acme_cert_t *leaf;
    const char *why = NULL, *missing = NULL;
    int i;

    if (!chain || chain->nelts < 1) {
        why = "the chain holds no certificate";
        goto out;
    }
    leaf = APR_ARRAY_IDX(chain, 0, const acme_cert_t *);
    if (key && !acme_cert_matches_key(leaf, key)) {
        why = "the leaf certificate does not match the private key";
        goto out;
    }
    /* Leaf first, each certificate followed by its issuer (RFC 8555 section 9.1). */
    for (i = 0; i + 1 < chain->nelts; i++) {
        if (!acme_cert_issued_by(APR_ARRAY_IDX(chain, i, const acme_cert_t *),
                                 APR_ARRAY_IDX(chain, i + 1, const acme_cert_t *))) {
            why = apr_psprintf(p, "certificate %d is not issued by certificate %d", i + 1, i + 2);
            goto out;
        }
    }
    if (names && acme_cert_covers(leaf, names, &missing) != APR_SUCCESS) {
        why = apr_psprintf(p, "the certificate does not cover %s", missing);
        goto out;
    }
    /* now == 0: the caller checks the chain's consistency only, not whether it is current. */
    if (now != 0 && now + ACME_CERT_SKEW < leaf->not_before) {
        why = apr_psprintf(p, "the certificate is not valid before %s",
                           time_text(leaf->not_before, p));
        goto out;
    }
    if (now != 0 && now > leaf->not_after) {
        why = apr_psprintf(p, "the certificate expired on %s", time_text(leaf->not_after, p));
        goto out;
    }
out:
    if (why) {
        if (pwhy) {
            *pwhy = why;
        }
        return ACME_EBADSTORE;
    }
    return APR_SUCCESS;
}

apr_status_t acme_cert_activation_check(const apr_array_header_t *chain, const acme_key_t *key,
                                        const apr_array_header_t *names, apr_time_t now,
                                        apr_time_t *pwhen, const char **pwhy, apr_pool_t *p)
{
    const acme_cert_t *leaf;
    apr_interval_time_t ahead;
    apr_status_t rv;

    rv = acme_cert_chain_check(chain, key, names, 0, pwhy, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    leaf = APR_ARRAY_IDX(chain, 0, const acme_cert_t *);
    ahead = leaf->not_before - now;
    if (ahead > ACME_CERT_SKEW && ahead <= ACME_CERT_EARLY_MAX) {
        if (pwhen) {
            *pwhen = leaf->not_before - ACME_CERT_SKEW;
        }
        if (pwhy) {
            *pwhy = apr_psprintf(p,
                                 "the certificate is valid from %s only, %d minutes ahead of this "
                                 "server's clock (more than the %d tolerated); its clock is "
                                 "probably behind (check NTP)",
                                 time_text(leaf->not_before, p), (int)(apr_time_sec(ahead) / 60),
                                 (int)(apr_time_sec(ACME_CERT_SKEW) / 60));
        }
        return APR_EAGAIN;
    }
    if (ahead > ACME_CERT_EARLY_MAX) {
        if (pwhy) {
            *pwhy = apr_psprintf(p,
                                 "the certificate is not valid before %s, more than a day ahead "
                                 "of this server's clock: check the clock (NTP) and the CA",
                                 time_text(leaf->not_before, p));
        }
        return ACME_EBADSTORE;
    }
    return acme_cert_chain_check(chain, NULL, NULL, now, pwhy, p);
}
