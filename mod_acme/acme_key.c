/* acme_key.c - account and certificate keys, their public JWK and RFC 7638 thumbprint.
 *
 * Only the OpenSSL 3 EVP and OSSL_PARAM interfaces are used. Every OpenSSL object is tied to a
 * pool by a cleanup as soon as it exists, so no error path can leak it. Values needed only while
 * a function runs live in a scratch pool destroyed on the way out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apr_strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "acme_ossl.h"
#include "acme_key.h"

struct acme_key_t {
    EVP_PKEY *evp;
    acme_key_type_e type;
};

/* RFC 8555 section 8.1 tokens carry at least 128 bits of entropy; CAs send 43 characters.
 * A bound keeps a hostile CA from making us build arbitrarily long strings. */
#define TOKEN_MAX 256

static const struct {
    const char *name;
    acme_key_type_e type;
    const char *alg;   /* JWS "alg" (RFC 7518 section 3.1) */
    const char *curve; /* OpenSSL group name for EC, NULL for RSA */
    int nid;           /* the curve's NID, NID_undef for RSA */
    int bits;
} key_types[] = {
    {"ec256", ACME_KEY_EC256, "ES256", "P-256", NID_X9_62_prime256v1, 256},
    {"ec384", ACME_KEY_EC384, "ES384", "P-384", NID_secp384r1, 384},
    {"rsa2048", ACME_KEY_RSA2048, "RS256", NULL, NID_undef, 2048},
    {"rsa3072", ACME_KEY_RSA3072, "RS256", NULL, NID_undef, 3072},
    {"rsa4096", ACME_KEY_RSA4096, "RS256", NULL, NID_undef, 4096},
};
#define KEY_TYPES_N (sizeof(key_types) / sizeof(key_types[0]))

static int type_index(acme_key_type_e type)
{
    apr_size_t i;

    for (i = 0; i < KEY_TYPES_N; i++) {
        if (key_types[i].type == type) {
            return (int)i;
        }
    }
    return -1;
}

static apr_status_t evp_cleanup(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

apr_status_t acme_key_type_parse(acme_key_type_e *ptype, const char *name)
{
    apr_size_t i;

    if (!name) {
        return APR_EINVAL;
    }
    for (i = 0; i < KEY_TYPES_N; i++) {
        if (!strcasecmp(name, key_types[i].name)) {
            *ptype = key_types[i].type;
            return APR_SUCCESS;
        }
    }
    return APR_EINVAL;
}

const char *acme_key_type_name(acme_key_type_e type)
{
    int i = type_index(type);
    return i < 0 ? "unknown" : key_types[i].name;
}

static acme_key_t *key_wrap(EVP_PKEY *evp, acme_key_type_e type, apr_pool_t *p)
{
    acme_key_t *key = apr_pcalloc(p, sizeof(*key));
    key->evp = evp;
    key->type = type;
    return key;
}

apr_status_t acme_key_generate(acme_key_t **pkey, acme_key_type_e type, apr_pool_t *p)
{
    EVP_PKEY *evp;
    apr_status_t rv = ACME_ECRYPTO;
    int i = type_index(type);

    if (i < 0) {
        return APR_EINVAL;
    }
    if (key_types[i].curve) {
        evp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", key_types[i].curve);
    } else {
        evp = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)key_types[i].bits);
    }
    if (!evp) {
        ERR_clear_error();
        goto out;
    }
    apr_pool_cleanup_register(p, evp, evp_cleanup, apr_pool_cleanup_null);
    *pkey = key_wrap(evp, type, p);
    rv = APR_SUCCESS;
out:
    return rv;
}

/* Which of our types evp is: APR_ENOTIMPL for any other algorithm, curve or modulus size, since
 * RFC 8555 CAs only have to support ES256 and RS256 (section 6.2) and we offer no more. */
static apr_status_t classify(acme_key_type_e *ptype, const EVP_PKEY *evp)
{
    char group[64];
    apr_size_t glen = 0;
    apr_size_t i;
    int bits;

    if (EVP_PKEY_is_a(evp, "EC")) {
        if (!EVP_PKEY_get_utf8_string_param(evp, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            &glen)) {
            ERR_clear_error();
            return APR_ENOTIMPL;
        }
        bits = EVP_PKEY_get_bits(evp);
        for (i = 0; i < KEY_TYPES_N; i++) {
            /* OpenSSL names P-256 "prime256v1" and P-384 "secp384r1": compare NIDs. */
            if (key_types[i].curve && bits == key_types[i].bits &&
                OBJ_txt2nid(group) == key_types[i].nid) {
                *ptype = key_types[i].type;
                return APR_SUCCESS;
            }
        }
        return APR_ENOTIMPL;
    }
    /* RSA-PSS keys ("RSASSA-PSS") are not "RSA" and cannot make RS256 signatures. */
    if (EVP_PKEY_is_a(evp, "RSA")) {
        bits = EVP_PKEY_get_bits(evp);
        for (i = 0; i < KEY_TYPES_N; i++) {
            if (!key_types[i].curve && bits == key_types[i].bits) {
                *ptype = key_types[i].type;
                return APR_SUCCESS;
            }
        }
    }
    return APR_ENOTIMPL;
}

apr_status_t acme_key_from_evp(acme_key_t **pkey, EVP_PKEY *evp, apr_pool_t *p)
{
    acme_key_type_e type;
    apr_status_t rv;

    if (!evp) {
        return APR_EINVAL;
    }
    /* Ownership passes to p whatever the outcome, so callers never free evp themselves. */
    apr_pool_cleanup_register(p, evp, evp_cleanup, apr_pool_cleanup_null);
    rv = classify(&type, evp);
    if (rv != APR_SUCCESS) {
        apr_pool_cleanup_run(p, evp, evp_cleanup);
        goto out;
    }
    *pkey = key_wrap(evp, type, p);
out:
    return rv;
}

/* Never ask for a passphrase: an encrypted key is not a key we can use, and a prompt on the
 * server's terminal would hang the process. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

apr_status_t acme_key_from_pem(acme_key_t **pkey, const char *pem, apr_size_t len, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    EVP_PKEY *evp;
    BIO *bio;
    acme_key_type_e type;
    apr_status_t rv;

    if (!pem || len == 0 || len > INT32_MAX) {
        return ACME_EBADSTORE;
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, bio, acme_ossl_bio_free, apr_pool_cleanup_null);
    /* Reads PKCS#8 as well as the traditional "RSA PRIVATE KEY"/"EC PRIVATE KEY" forms. */
    evp = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!evp) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    apr_pool_cleanup_register(p, evp, evp_cleanup, apr_pool_cleanup_null);
    rv = classify(&type, evp);
    if (rv != APR_SUCCESS) {
        apr_pool_cleanup_run(p, evp, evp_cleanup);
        goto out;
    }
    *pkey = key_wrap(evp, type, p);
out:
    ERR_clear_error();
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

apr_status_t acme_key_to_pem(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                             apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    BIO *bio;
    apr_status_t rv;

    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    /* A secure-memory BIO is wiped when freed, so no copy of the private key stays behind in
     * OpenSSL's heap. */
    bio = BIO_new(BIO_s_secmem());
    if (!bio) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, bio, acme_ossl_bio_free, apr_pool_cleanup_null);
    if (!PEM_write_bio_PKCS8PrivateKey(bio, key->evp, NULL, NULL, 0, NULL, NULL)) {
        goto out;
    }
    if (acme_ossl_bio_text(ppem, plen, bio, p) != APR_SUCCESS) {
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

acme_key_t *acme_key_ref(const acme_key_t *key, apr_pool_t *p)
{
    /* The EVP_PKEY is read-only once made: a second owner only counts a reference. */
    EVP_PKEY_up_ref(key->evp);
    apr_pool_cleanup_register(p, key->evp, evp_cleanup, apr_pool_cleanup_null);
    return key_wrap(key->evp, key->type, p);
}

acme_key_type_e acme_key_type(const acme_key_t *key)
{
    return key->type;
}

EVP_PKEY *acme_key_evp(const acme_key_t *key)
{
    return key->evp;
}

const char *acme_key_jws_alg(const acme_key_t *key)
{
    int i = type_index(key->type);
    return i < 0 ? NULL : key_types[i].alg;
}

/* base64url of a public key parameter. With padlen > 0 the value is left-padded to that many
 * bytes (EC coordinates, RFC 7518 section 6.2.1.2); with padlen 0 it has no leading zero bytes
 * (RSA n and e, RFC 7518 section 6.3.1). */
static apr_status_t bn_param_b64u(const char **pb64u, const EVP_PKEY *evp, const char *param,
                                  int padlen, apr_pool_t *ptmp, apr_pool_t *p)
{
    BIGNUM *bn = NULL;
    unsigned char *buf;
    int len;
    apr_status_t rv = ACME_ECRYPTO;

    if (!EVP_PKEY_get_bn_param(evp, param, &bn) || !bn) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, bn, acme_ossl_bn_free, apr_pool_cleanup_null);
    if (padlen > 0) {
        if (BN_num_bytes(bn) > padlen) {
            goto out;
        }
        buf = apr_palloc(ptmp, (apr_size_t)padlen);
        len = BN_bn2binpad(bn, buf, padlen);
    } else {
        buf = apr_palloc(ptmp, (apr_size_t)BN_num_bytes(bn) + 1);
        len = BN_bn2bin(bn, buf);
    }
    if (len <= 0) {
        goto out;
    }
    *pb64u = acme_b64u_encode(p, buf, (apr_size_t)len);
    rv = APR_SUCCESS;
out:
    return rv;
}

apr_status_t acme_key_jwk(json_t **pjwk, const acme_key_t *key, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    const char *a, *b;
    json_t *jwk;
    apr_status_t rv;

    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* Members in lexicographic order, exactly those RFC 7638 section 3.2 requires. */
    if (key->type == ACME_KEY_EC256 || key->type == ACME_KEY_EC384) {
        int flen = key->type == ACME_KEY_EC256 ? 32 : 48;
        rv = bn_param_b64u(&a, key->evp, OSSL_PKEY_PARAM_EC_PUB_X, flen, ptmp, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        rv = bn_param_b64u(&b, key->evp, OSSL_PKEY_PARAM_EC_PUB_Y, flen, ptmp, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        jwk =
            json_pack("{s:s, s:s, s:s, s:s}", "crv",
                      key->type == ACME_KEY_EC256 ? "P-256" : "P-384", "kty", "EC", "x", a, "y", b);
    } else {
        rv = bn_param_b64u(&a, key->evp, OSSL_PKEY_PARAM_RSA_E, 0, ptmp, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        rv = bn_param_b64u(&b, key->evp, OSSL_PKEY_PARAM_RSA_N, 0, ptmp, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        jwk = json_pack("{s:s, s:s, s:s}", "e", a, "kty", "RSA", "n", b);
    }
    if (!jwk) {
        rv = APR_ENOMEM;
        goto out;
    }
    *pjwk = acme_json_pool(p, jwk);
out:
    ERR_clear_error();
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

apr_status_t acme_key_thumbprint(const char **pb64u, const acme_key_t *key, apr_pool_t *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    json_t *jwk;
    char *s = NULL;
    apr_status_t rv;

    rv = acme_key_jwk(&jwk, key, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* RFC 7638 section 3.3: no whitespace, members sorted by their code points. */
    s = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) {
        rv = APR_ENOMEM;
        goto out;
    }
    if (!EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL)) {
        ERR_clear_error();
        rv = ACME_ECRYPTO;
        goto out;
    }
    *pb64u = acme_b64u_encode(p, md, mdlen);
out:
    free(s);
    return rv;
}

static int is_b64u_token(const char *s)
{
    apr_size_t i;

    for (i = 0; s[i]; i++) {
        if (i >= TOKEN_MAX) {
            return 0;
        }
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return 0;
        }
    }
    return i > 0;
}

apr_status_t acme_key_authorization(const char **pkeyauth, const acme_key_t *account_key,
                                    const char *token, apr_pool_t *p)
{
    const char *thumb;
    apr_status_t rv;

    /* The token ends up in a file name and an HTTP response (RFC 8555 section 8.3), so only
     * the base64url alphabet is acceptable. */
    if (!token || !is_b64u_token(token)) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = acme_key_thumbprint(&thumb, account_key, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    *pkeyauth = apr_pstrcat(p, token, ".", thumb, NULL);
out:
    return rv;
}
