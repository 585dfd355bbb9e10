/* acme_selfsigned.c - self-signed certificates for fallbacks and challenge answers. */
#include <string.h>

#include <apr_strings.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "acme_ossl.h"
#include "acme_csr.h"
#include "acme_selfsigned.h"

apr_status_t acme_selfsigned_create(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                                    const apr_array_header_t *names, apr_time_t not_before,
                                    apr_time_t not_after, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    X509 *x;
    X509_EXTENSION *san;
    BIGNUM *serial;
    BIO *bio;
    const char *first;
    int has_cn = 0;
    apr_status_t rv;

    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    x = X509_new();
    if (!x) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, x, acme_ossl_x509_free, apr_pool_cleanup_null);
    serial = BN_new();
    if (!serial) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, serial, acme_ossl_bn_free, apr_pool_cleanup_null);
    /* A random positive 64-bit serial: clients cache certificates by issuer and serial. */
    if (!BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)apr_time_sec(not_before)) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)apr_time_sec(not_after))) {
        goto out;
    }
    first = names && names->nelts ? APR_ARRAY_IDX(names, 0, const char *) : NULL;
    if (first && acme_name_is_dns(first) && strlen(first) <= 64) {
        if (!X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)first, -1, -1, 0)) {
            goto out;
        }
        has_cn = 1;
    }
    if (!X509_set_issuer_name(x, X509_get_subject_name(x))) {
        goto out;
    }
    rv = acme_san_extension(&san, names, has_cn ? 0 : 1, ptmp);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    if (!X509_add_ext(x, san, -1) || !X509_set_pubkey(x, acme_key_evp(key)) ||
        X509_sign(x, acme_key_evp(key), EVP_sha256()) <= 0) {
        goto out;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, bio, acme_ossl_bio_free, apr_pool_cleanup_null);
    if (!PEM_write_bio_X509(bio, x)) {
        goto out;
    }
    if (acme_ossl_bio_text(ppem, plen, bio, p) != APR_SUCCESS) {
        goto out;
    }
    rv = APR_SUCCESS;
out:
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}
