/* acme_jws.c - JWS in the flattened JSON serialization (RFC 7515 section 7.2.2), as every ACME
 * POST carries it (RFC 8555 section 6.2), and the HS256 binding of an external account
 * (RFC 8555 section 7.3.4).
 *
 * OpenSSL objects are tied to a scratch pool by a cleanup as soon as they exist; the scratch
 * pool goes on the way out, so long-lived pools do not grow with each request signed.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "acme_jws.h"

#define HS256_LEN 32

static apr_status_t md_ctx_cleanup(void *data)
{
    EVP_MD_CTX_free(data);
    return APR_SUCCESS;
}

static apr_status_t ecdsa_sig_cleanup(void *data)
{
    ECDSA_SIG_free(data);
    return APR_SUCCESS;
}

/* Size of one coordinate of r||s (RFC 7518 section 3.4), 0 for RSA. */
static int ec_field_len(const acme_key_t *key)
{
    switch (acme_key_type(key)) {
    case ACME_KEY_EC256:
        return 32;
    case ACME_KEY_EC384:
        return 48;
    default:
        return 0;
    }
}

/* OpenSSL gives ECDSA signatures as DER SEQUENCE { r, s }; JWS wants both integers big-endian,
 * each padded to the field size and concatenated (RFC 7518 section 3.4). */
static apr_status_t der_to_rs(const unsigned char **prs, apr_size_t *prslen,
                              const unsigned char *der, apr_size_t derlen, int flen,
                              apr_pool_t *ptmp, apr_pool_t *p)
{
    const unsigned char *q = der;
    const BIGNUM *r, *s;
    ECDSA_SIG *sig;
    unsigned char *rs;
    apr_status_t rv = ACME_ECRYPTO;

    sig = d2i_ECDSA_SIG(NULL, &q, (long)derlen);
    if (!sig) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, sig, ecdsa_sig_cleanup, apr_pool_cleanup_null);
    ECDSA_SIG_get0(sig, &r, &s);
    rs = apr_palloc(p, 2 * (apr_size_t)flen);
    if (BN_bn2binpad(r, rs, flen) != flen || BN_bn2binpad(s, rs + flen, flen) != flen) {
        goto out;
    }
    *prs = rs;
    *prslen = 2 * (apr_size_t)flen;
    rv = APR_SUCCESS;
out:
    return rv;
}

apr_status_t acme_jws_signature(const unsigned char **psig, apr_size_t *psiglen,
                                const acme_key_t *key, const void *input, apr_size_t inlen,
                                apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    EVP_MD_CTX *ctx;
    unsigned char *der;
    size_t derlen = 0;
    int flen = ec_field_len(key);
    /* ES384 pairs P-384 with SHA-384 (RFC 7518 section 3.1); ES256 and RS256 use SHA-256. */
    const char *md = acme_key_type(key) == ACME_KEY_EC384 ? "SHA384" : "SHA256";
    apr_status_t rv;

    if (!input) {
        input = "";
        inlen = 0;
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = ACME_ECRYPTO;
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        goto out;
    }
    apr_pool_cleanup_register(ptmp, ctx, md_ctx_cleanup, apr_pool_cleanup_null);
    /* RSA keys sign with PKCS#1 v1.5 padding by default, which is what RS256 means. */
    if (EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, acme_key_evp(key), NULL) != 1) {
        goto out;
    }
    if (EVP_DigestSign(ctx, NULL, &derlen, input, inlen) != 1 || derlen == 0) {
        goto out;
    }
    der = apr_palloc(flen ? ptmp : p, derlen);
    if (EVP_DigestSign(ctx, der, &derlen, input, inlen) != 1) {
        goto out;
    }
    if (flen) {
        rv = der_to_rs(psig, psiglen, der, derlen, flen, ptmp, p);
        goto out;
    }
    *psig = der;
    *psiglen = derlen;
    rv = APR_SUCCESS;
out:
    ERR_clear_error();
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

/* {"protected","payload","signature"}: RFC 7515 section 7.2.2 without an unprotected header,
 * which RFC 8555 section 6.2 forbids. */
static apr_status_t flatten(json_t **pjws, const char *prot64, const char *pay64,
                            const unsigned char *sig, apr_size_t siglen, apr_pool_t *p)
{
    const char *sig64 = acme_b64u_encode(p, sig, siglen);
    json_t *jws;

    if (!sig64) {
        return APR_ENOMEM;
    }
    jws = json_pack("{s:s, s:s, s:s}", "protected", prot64, "payload", pay64, "signature", sig64);
    if (!jws) {
        return APR_ENOMEM;
    }
    *pjws = acme_json_pool(p, jws);
    return APR_SUCCESS;
}

apr_status_t acme_jws_sign_raw(json_t **pjws, const acme_key_t *key, const json_t *protected_hdr,
                               const void *payload, apr_size_t plen, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    char *hdr = NULL;
    const char *prot64, *pay64, *input;
    const unsigned char *sig;
    apr_size_t siglen;
    apr_status_t rv;

    if (!key || !json_is_object(protected_hdr) || (!payload && plen)) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    hdr = json_dumps(protected_hdr, JSON_COMPACT);
    if (!hdr) {
        rv = APR_ENOMEM;
        goto out;
    }
    prot64 = acme_b64u_encode(ptmp, hdr, strlen(hdr));
    pay64 = acme_b64u_encode(ptmp, payload, plen);
    if (!prot64 || !pay64) {
        rv = APR_ENOMEM;
        goto out;
    }
    /* RFC 7515 section 5.1: the signing input is ASCII(protected "." payload). */
    input = apr_pstrcat(ptmp, prot64, ".", pay64, NULL);
    rv = acme_jws_signature(&sig, &siglen, key, input, strlen(input), ptmp);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = flatten(pjws, prot64, pay64, sig, siglen, p);
out:
    free(hdr);
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

apr_status_t acme_jws_sign(json_t **pjws, const acme_key_t *key, const char *kid, const char *nonce,
                           const char *url, const json_t *payload, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    json_t *hdr, *jwk;
    char *body = NULL;
    apr_status_t rv;

    /* RFC 8555 section 6.5: every request carries a fresh nonce, and section 6.4 the url. */
    if (!key || !nonce || !url) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    hdr = acme_json_pool(ptmp, json_pack("{s:s, s:s, s:s}", "alg", acme_key_jws_alg(key), "nonce",
                                         nonce, "url", url));
    if (!hdr) {
        rv = APR_EINVAL;
        goto out;
    }
    /* RFC 8555 section 6.2: "jwk" only for newAccount and revocation by certificate key,
     * "kid" (the account URL) for everything else, never both. */
    if (kid) {
        if (json_object_set_new(hdr, "kid", json_string(kid)) != 0) {
            rv = APR_EINVAL;
            goto out;
        }
    } else {
        rv = acme_key_jwk(&jwk, key, ptmp);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        if (json_object_set(hdr, "jwk", jwk) != 0) {
            rv = APR_ENOMEM;
            goto out;
        }
    }
    /* RFC 8555 section 6.3: POST-as-GET has an empty payload, not "{}". */
    if (!payload) {
        rv = acme_jws_sign_raw(pjws, key, hdr, "", 0, p);
        goto out;
    }
    body = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!body) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = acme_jws_sign_raw(pjws, key, hdr, body, strlen(body), p);
out:
    free(body);
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

apr_status_t acme_jws_hs256(const unsigned char **pmac, apr_size_t *pmaclen,
                            const unsigned char *hmac_key, apr_size_t keylen, const void *input,
                            apr_size_t inlen, apr_pool_t *p)
{
    unsigned char *mac;
    size_t maclen = 0;
    apr_status_t rv = APR_EINVAL;

    if (!hmac_key || keylen == 0 || (!input && inlen)) {
        goto out;
    }
    if (!input) {
        input = "";
    }
    rv = ACME_ECRYPTO;
    mac = apr_palloc(p, HS256_LEN);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_key, keylen, input, inlen, mac,
                   HS256_LEN, &maclen) ||
        maclen != HS256_LEN) {
        ERR_clear_error();
        goto out;
    }
    *pmac = mac;
    *pmaclen = maclen;
    rv = APR_SUCCESS;
out:
    return rv;
}

apr_status_t acme_jws_eab(json_t **pjws, const acme_key_t *account_key, const char *eab_kid,
                          const char *hmac_b64u, const char *new_account_url, apr_pool_t *p)
{
    apr_pool_t *ptmp = NULL;
    const unsigned char *hkey = NULL, *mac;
    apr_size_t hkeylen = 0, maclen;
    json_t *hdr, *jwk;
    char *hdrs = NULL, *jwks = NULL;
    const char *prot64, *pay64, *input;
    apr_status_t rv;

    if (!account_key || !eab_kid || !hmac_b64u || !new_account_url) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* The CA hands out the MAC key base64url-encoded (RFC 8555 section 7.3.4). */
    rv = acme_b64u_decode(&hkey, &hkeylen, hmac_b64u, strlen(hmac_b64u), ptmp);
    if (rv != APR_SUCCESS || hkeylen == 0) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = acme_key_jwk(&jwk, account_key, ptmp);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* No nonce in the inner JWS: RFC 8555 section 7.3.4 forbids it. */
    hdr = acme_json_pool(
        ptmp, json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid, "url", new_account_url));
    if (!hdr) {
        rv = APR_EINVAL;
        goto out;
    }
    hdrs = json_dumps(hdr, JSON_COMPACT);
    jwks = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    if (!hdrs || !jwks) {
        rv = APR_ENOMEM;
        goto out;
    }
    prot64 = acme_b64u_encode(ptmp, hdrs, strlen(hdrs));
    pay64 = acme_b64u_encode(ptmp, jwks, strlen(jwks));
    if (!prot64 || !pay64) {
        rv = APR_ENOMEM;
        goto out;
    }
    input = apr_pstrcat(ptmp, prot64, ".", pay64, NULL);
    rv = acme_jws_hs256(&mac, &maclen, hkey, hkeylen, input, strlen(input), ptmp);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = flatten(pjws, prot64, pay64, mac, maclen, p);
out:
    if (hkey && hkeylen) {
        /* The MAC key is a credential for the CA account: do not leave it in pool memory. */
        OPENSSL_cleanse((void *)hkey, hkeylen);
    }
    free(hdrs);
    free(jwks);
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

apr_status_t acme_jws_eab_key(const char **pb64u, const char *text, apr_size_t len, apr_pool_t *p)
{
    const unsigned char *raw = NULL;
    apr_size_t rawlen = 0, i, pad = 0, keylen = 0;
    apr_pool_t *ptmp = NULL;
    char *key = NULL;
    apr_status_t rv = APR_EINVAL;

    while (len && strchr(" \t\r\n", text[0]) && text[0]) {
        text++;
        len--;
    }
    while (len && strchr(" \t\r\n", text[len - 1]) && text[len - 1]) {
        len--;
    }
    if (len == 0) {
        goto out;
    }
    key = apr_pstrmemdup(p, text, len);
    keylen = len;
    /* base64 (RFC 4648 section 4), as some CAs show it, is the same key in another alphabet. */
    for (i = 0; i < len; i++) {
        if (key[i] == '+') {
            key[i] = '-';
        } else if (key[i] == '/') {
            key[i] = '_';
        }
    }
    while (len && key[len - 1] == '=' && pad < 2) {
        key[--len] = '\0';
        pad++;
    }
    if (pad && (len + pad) % 4 != 0) {
        goto out; /* padding that does not end a whole quantum */
    }
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_b64u_decode(&raw, &rawlen, key, len, ptmp);
    if (rv != APR_SUCCESS || rawlen == 0) {
        rv = APR_EINVAL;
        goto out;
    }
    *pb64u = key;
out:
    if (rv != APR_SUCCESS && key) {
        OPENSSL_cleanse(key, keylen); /* whatever it was, it was meant to be secret */
    }
    if (raw && rawlen) {
        OPENSSL_cleanse((void *)raw, rawlen);
    }
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}
