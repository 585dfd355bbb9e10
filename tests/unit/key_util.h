/* key_util.h - what the tests of keys (test_key.c) and of JWS (test_jws.c) share: the RFC 7515
 * appendix A and RFC 7638 test vectors, and keys and signatures made from them. */
#ifndef KEY_UTIL_H
#define KEY_UTIL_H

#include "unit.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "acme_jws.h"
#include "acme_key.h"

/* RFC 7515 appendix A: the payload all examples share, and the signing inputs. */
#define RFC7515_PAYLOAD                                                                            \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl" \
    "fQ"
static const char A1_INPUT[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." RFC7515_PAYLOAD;
static const char A2_INPUT[] = "eyJhbGciOiJSUzI1NiJ9." RFC7515_PAYLOAD;
static const char A3_INPUT[] = "eyJhbGciOiJFUzI1NiJ9." RFC7515_PAYLOAD;

/* RFC 7515 A.1: HMAC key and MAC. */
static const char A1_K[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
static const char A1_MAC[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/* RFC 7515 A.2: RSA private key and the RS256 signature. */
static const char *const A2_RSA[][2] = {
    {OSSL_PKEY_PARAM_RSA_N,
     "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-"
     "4qPCJrcS2mJPMEzP1Pt0Bm4d4"
     "QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
     "bSf63kpaSHSXndS5z5rexMdb"
     "BYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
     "DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
    {OSSL_PKEY_PARAM_RSA_E, "AQAB"},
    {OSSL_PKEY_PARAM_RSA_D,
     "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-"
     "7YwVol2NXOoA"
     "Je46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_"
     "V51gfpR"
     "LI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_"
     "jTj3ccPDVZF"
     "D9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ"},
    {OSSL_PKEY_PARAM_RSA_FACTOR1,
     "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_"
     "Py5PJd"
     "TJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc"},
    {OSSL_PKEY_PARAM_RSA_FACTOR2,
     "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-"
     "7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_"
     "YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc"},
    {OSSL_PKEY_PARAM_RSA_EXPONENT1,
     "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-"
     "FOKnu1R6H"
     "sJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0"},
    {OSSL_PKEY_PARAM_RSA_EXPONENT2,
     "h_96-mK1R_"
     "7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-"
     "NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU"},
    {OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
     "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_"
     "QJQ3ydy5cY7YIB"
     "i87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"},
};
static const char A2_SIG[] =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5ju"
    "jGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07"
    "Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipU"
    "TI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/* RFC 7515 A.3: P-256 key and an ES256 signature (ECDSA is randomized: it only verifies). */
static const char A3_X[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
static const char A3_Y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
static const char A3_D[] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
static const char A3_SIG[] = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQ"
                             "xfKTUJqPP3-Kg6NU1Q";

/* RFC 7638 section 3.1: RSA public key and its thumbprint. */
static const char R7638_N[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368Q"
    "QMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2"
    "NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char R7638_THUMB[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static inline const unsigned char *b64u_dec(apr_pool_t *p, const char *s, apr_size_t *plen)
{
    const unsigned char *out;
    assert_int_equal(acme_b64u_decode(&out, plen, s, strlen(s), p), APR_SUCCESS);
    return out;
}

static inline const char *b64u_str(apr_pool_t *p, const char *s)
{
    apr_size_t len;
    const unsigned char *d = b64u_dec(p, s, &len);
    return apr_pstrmemdup(p, (const char *)d, len);
}

static inline apr_status_t bn_free_cleanup(void *data)
{
    BN_free(data);
    return APR_SUCCESS;
}

static inline BIGNUM *b64u_bn(apr_pool_t *p, const char *s)
{
    apr_size_t len;
    const unsigned char *d = b64u_dec(p, s, &len);
    BIGNUM *bn = BN_bin2bn(d, (int)len, NULL);
    assert_non_null(bn);
    apr_pool_cleanup_register(p, bn, bn_free_cleanup, apr_pool_cleanup_null);
    return bn;
}

static inline EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, int selection)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *evp = NULL;

    assert_non_null(params);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &evp, selection, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return evp;
}

static inline acme_key_t *a2_key(apr_pool_t *p)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    acme_key_t *key;
    size_t i;

    for (i = 0; i < sizeof(A2_RSA) / sizeof(A2_RSA[0]); i++) {
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, A2_RSA[i][0], b64u_bn(p, A2_RSA[i][1])), 1);
    }
    assert_int_equal(acme_key_from_evp(&key, pkey_fromdata("RSA", bld, EVP_PKEY_KEYPAIR), p),
                     APR_SUCCESS);
    return key;
}

static inline acme_key_t *a3_key(apr_pool_t *p)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    unsigned char pub[65];
    apr_size_t xlen, ylen;
    const unsigned char *x = b64u_dec(p, A3_X, &xlen), *y = b64u_dec(p, A3_Y, &ylen);
    acme_key_t *key;

    assert_int_equal(xlen, 32);
    assert_int_equal(ylen, 32);
    pub[0] = 0x04; /* uncompressed point, SEC 1 section 2.3.3 */
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
                     1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, b64u_bn(p, A3_D)), 1);
    assert_int_equal(acme_key_from_evp(&key, pkey_fromdata("EC", bld, EVP_PKEY_KEYPAIR), p),
                     APR_SUCCESS);
    return key;
}

/* 1 when sig (r||s for EC, as JWS carries it) verifies over input with evp. */
static inline int verify(EVP_PKEY *evp, const char *md, const void *input, apr_size_t inlen,
                         const unsigned char *sig, apr_size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    int derlen = (int)siglen, ok;

    if (EVP_PKEY_is_a(evp, "EC")) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)siglen / 2, NULL);
        BIGNUM *s = BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL);
        assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
        derlen = i2d_ECDSA_SIG(es, &der);
        assert_true(derlen > 0);
        ECDSA_SIG_free(es);
    }
    assert_int_equal(EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, evp, NULL), 1);
    ok = EVP_DigestVerify(ctx, der ? der : sig, (size_t)derlen, input, inlen) == 1;
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

#endif /* KEY_UTIL_H */
