/* acme_selfsigned.c - self-signed certificates for fallbacks and challenge answers. */
#include <string.h>

#include <apr_strings.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "acme_ossl.h"
#include "acme_csr.h"
#include "acme_selfsigned.h"

#define ACME_ID_OID "1.3.6.1.5.5.7.1.31" /* id-pe-acmeIdentifier, RFC 8737 section 6.1 */

static apr_status_t obj_free(void *data)
{
    ASN1_OBJECT_free(data);
    return APR_SUCCESS;
}

static apr_status_t octets_free(void *data)
{
    ASN1_OCTET_STRING_free(data);
    return APR_SUCCESS;
}

static apr_status_t ext_free(void *data)
{
    X509_EXTENSION_free(data);
    return APR_SUCCESS;
}

/* The critical acmeIdentifier extension (RFC 8737 section 3): its extnValue holds the DER of
 * an OCTET STRING of the 32 digest bytes, that is 04 20 followed by the digest. */
static apr_status_t acme_id_extension(X509_EXTENSION **pext, const unsigned char *digest,
                                      apr_pool_t *p)
{
    unsigned char der[2 + ACME_SHA256_LEN];
    ASN1_OBJECT *obj;
    ASN1_OCTET_STRING *value;
    X509_EXTENSION *ext;

    der[0] = V_ASN1_OCTET_STRING;
    der[1] = ACME_SHA256_LEN;
    memcpy(der + 2, digest, ACME_SHA256_LEN);
    obj = OBJ_txt2obj(ACME_ID_OID, 1);
    if (!obj) {
        return ACME_ECRYPTO;
    }
    apr_pool_cleanup_register(p, obj, obj_free, apr_pool_cleanup_null);
    value = ASN1_OCTET_STRING_new();
    if (!value) {
        return ACME_ECRYPTO;
    }
    apr_pool_cleanup_register(p, value, octets_free, apr_pool_cleanup_null);
    if (!ASN1_OCTET_STRING_set(value, der, (int)sizeof(der))) {
        return ACME_ECRYPTO;
    }
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, value);
    if (!ext) {
        return ACME_ECRYPTO;
    }
    apr_pool_cleanup_register(p, ext, ext_free, apr_pool_cleanup_null);
    *pext = ext;
    return APR_SUCCESS;
}

/* A self-signed certificate for names; with acme_id (32 bytes), the tls-alpn-01 answer: no
 * subject (the SAN is then critical, RFC 5280 section 4.2.1.6) and the acmeIdentifier
 * extension; without, CN = the first name when it is a DNS name that fits. */
static apr_status_t build(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                          const apr_array_header_t *names, apr_time_t not_before,
                          apr_time_t not_after, const unsigned char *acme_id, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    X509 *x;
    X509_EXTENSION *san, *id_ext;
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
    if (!acme_id && first && acme_name_is_dns(first) && strlen(first) <= 64) {
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
    if (!X509_add_ext(x, san, -1)) {
        goto out;
    }
    if (acme_id) {
        rv = acme_id_extension(&id_ext, acme_id, ptmp);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        rv = ACME_ECRYPTO;
        if (!X509_add_ext(x, id_ext, -1)) {
            goto out;
        }
    }
    if (!X509_set_pubkey(x, acme_key_evp(key)) ||
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

apr_status_t acme_selfsigned_create(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                                    const apr_array_header_t *names, apr_time_t not_before,
                                    apr_time_t not_after, apr_pool_t *p)
{
    return build(ppem, plen, key, names, not_before, not_after, NULL, p);
}

apr_status_t acme_selfsigned_acme_id(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                                     const char *name, const unsigned char *digest,
                                     apr_time_t not_before, apr_time_t not_after, apr_pool_t *p)
{
    apr_array_header_t *names = apr_array_make(p, 1, sizeof(const char *));

    if (!name || !digest) {
        return APR_EINVAL;
    }
    APR_ARRAY_PUSH(names, const char *) = name;
    return build(ppem, plen, key, names, not_before, not_after, digest, p);
}
