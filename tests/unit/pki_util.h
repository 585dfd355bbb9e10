/* pki_util.h - certificates made with OpenSSL for unit tests: roots, intermediates and leaves,
 * each signed by the key the test names. Header-only, like fake_ca.h. */
#ifndef ACME_PKI_UTIL_H
#define ACME_PKI_UTIL_H

#include "unit.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_key.h"

static inline apr_status_t x509_free_cleanup(void *data)
{
    X509_free(data);
    return APR_SUCCESS;
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL). A CA gets
 * basicConstraints, a leaf the subjectAltName san ("DNS:a.test,IP:192.0.2.1"). Its subject is
 * CN=cn (UTF-8), or O=... without a CN when cn starts with "O=". */
static inline X509 *mk_cert(apr_pool_t *p, const acme_key_t *key, const char *cn, X509 *issuer,
                            const acme_key_t *issuer_key, const char *san, const char *serial_hex,
                            time_t nb, time_t na)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    BIGNUM *serial = NULL;

    assert_non_null(x);
    apr_pool_cleanup_register(p, x, x509_free_cleanup, apr_pool_cleanup_null);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_true(BN_hex2bn(&serial, serial_hex) > 0);
    assert_non_null(BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)));
    BN_free(serial);
    assert_int_equal(X509_NAME_add_entry_by_txt(
                         X509_get_subject_name(x), strncmp(cn, "O=", 2) ? "CN" : "O", MBSTRING_UTF8,
                         (const unsigned char *)(strncmp(cn, "O=", 2) ? cn : cn + 2), -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
    assert_int_equal(X509_set_pubkey(x, acme_key_evp(key)), 1);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (san) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
    } else {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    }
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, acme_key_evp(issuer ? issuer_key : key), EVP_sha256()) > 0);
    return x;
}

static inline const char *pem_x509(apr_pool_t *p, X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    const char *s;

    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    n = BIO_get_mem_data(bio, &data);
    s = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(bio);
    return s;
}

/* One leaf for a.test whose issuing intermediate (one key, one name) is cross-signed by two
 * roots, as Let's Encrypt and pebble (PEBBLE_ALTERNATE_ROOTS) offer it: two chains for the same
 * certificate, leaf plus intermediate, whose topmost issuers are the two roots. */
typedef struct cross_t {
    acme_key_t *leaf_key;
    X509 *leaf;
    const char *leaf_pem;
    const char *via_a, *via_b; /* leaf + intermediate signed by root A, by root B */
    const char *root_a_pem, *root_b_pem;
} cross_t;

static inline cross_t *cross_make(apr_pool_t *p, const char *root_a, const char *root_b)
{
    cross_t *c = apr_pcalloc(p, sizeof(*c));
    acme_key_t *ka, *kb, *ki;
    X509 *ra, *rb, *ia, *ib;
    const time_t nb = 1577836800, na = 2208988800; /* 2020 .. 2040 */

    assert_int_equal(acme_key_generate(&ka, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&kb, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&ki, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&c->leaf_key, ACME_KEY_EC256, p), APR_SUCCESS);
    ra = mk_cert(p, ka, root_a, NULL, NULL, NULL, "A1", nb, na);
    rb = mk_cert(p, kb, root_b, NULL, NULL, NULL, "B1", nb, na);
    ia = mk_cert(p, ki, "Cross Intermediate", ra, ka, NULL, "A2", nb, na);
    ib = mk_cert(p, ki, "Cross Intermediate", rb, kb, NULL, "B2", nb, na);
    c->leaf = mk_cert(p, c->leaf_key, "a.test", ia, ki, "DNS:a.test", "0C", nb, na);
    c->leaf_pem = pem_x509(p, c->leaf);
    c->via_a = apr_pstrcat(p, c->leaf_pem, pem_x509(p, ia), NULL);
    c->via_b = apr_pstrcat(p, c->leaf_pem, pem_x509(p, ib), NULL);
    c->root_a_pem = pem_x509(p, ra);
    c->root_b_pem = pem_x509(p, rb);
    return c;
}

#endif /* ACME_PKI_UTIL_H */
