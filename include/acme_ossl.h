/* acme_ossl.h - pool cleanups for the OpenSSL objects the core creates, so that each object is
 * freed with the pool it was made for (registered on the line after it is created). Private
 * to the core's crypto files. */
#ifndef ACME_OSSL_H
#define ACME_OSSL_H

#include <apr_pools.h>
#include <apr_strings.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline apr_status_t acme_ossl_bio_free(void *data)
{
    BIO_free(data);
    return APR_SUCCESS;
}

static inline apr_status_t acme_ossl_bn_free(void *data)
{
    BN_free(data);
    return APR_SUCCESS;
}

static inline apr_status_t acme_ossl_x509_free(void *data)
{
    X509_free(data);
    return APR_SUCCESS;
}

static inline apr_status_t acme_ossl_gens_free(void *data)
{
    GENERAL_NAMES_free(data);
    return APR_SUCCESS;
}

/* The bytes written to a memory BIO, copied into p (NUL-terminated). APR_EGENERAL when empty. */
static inline apr_status_t acme_ossl_bio_text(const char **ptext, apr_size_t *plen, BIO *bio,
                                              apr_pool_t *p)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);

    if (n <= 0 || !data) {
        return APR_EGENERAL;
    }
    *ptext = apr_pstrmemdup(p, data, (apr_size_t)n);
    if (plen) {
        *plen = (apr_size_t)n;
    }
    return APR_SUCCESS;
}

#endif /* ACME_OSSL_H */
