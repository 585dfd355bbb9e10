/* test_key.c - keys, JWK and thumbprint (RFC 7638), JWS (RFC 7515, RFC 8555 section 6.2). */
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

/* A DSA key (openssl genpkey, 1024 bits): a key type we must refuse. */
static const char DSA_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIIBWgIBADCCATMGByqGSM44BAEwggEmAoGBAOGy/wn9uproqBJTxMz6TSRHW9DO\n"
                              "2+tANyA3i8ZGADkJ0g6FmTjCDKzTabmlc7hpkgQVLNczJ93aJ9voT+Fy7/bddynk\n"
                              "TX6u7HI8VEDWGSZ8DgllP7jk+460ATLbLnl1tWyOIQfWdIqv1zEclavp2+Po0zHP\n"
                              "bZmbxNna+V0XMaBbAh0A60o1pMOhaFb6zuAEoHRAv5tu7puskmBCG5XCswKBgA96\n"
                              "fbkiq4i0Tn0hAWbj9cEG2skI9RljFte+N/Scb3g90+VJzJQOmQaY12geQBr+mfFO\n"
                              "ffrFs+x6+6xolOP5WAkxvIxzDpRlmIHGa354vgSWbG6/Q8qJb0jL7Bc9yHztE2zP\n"
                              "wLczvW7z3dZ3P/149Ks2cQJWk/8EbFfnvQA62xyXBB4CHCHF23qT8ftFamQiFmzl\n"
                              "5B9crb+HLIc2DfteSHY=\n"
                              "-----END PRIVATE KEY-----\n";

static const unsigned char *b64u_dec(apr_pool_t *p, const char *s, apr_size_t *plen)
{
    const unsigned char *out;
    assert_int_equal(acme_b64u_decode(&out, plen, s, strlen(s), p), APR_SUCCESS);
    return out;
}

static const char *b64u_str(apr_pool_t *p, const char *s)
{
    apr_size_t len;
    const unsigned char *d = b64u_dec(p, s, &len);
    return apr_pstrmemdup(p, (const char *)d, len);
}

static apr_status_t bn_free_cleanup(void *data)
{
    BN_free(data);
    return APR_SUCCESS;
}

static BIGNUM *b64u_bn(apr_pool_t *p, const char *s)
{
    apr_size_t len;
    const unsigned char *d = b64u_dec(p, s, &len);
    BIGNUM *bn = BN_bin2bn(d, (int)len, NULL);
    assert_non_null(bn);
    apr_pool_cleanup_register(p, bn, bn_free_cleanup, apr_pool_cleanup_null);
    return bn;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, int selection)
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

static acme_key_t *a2_key(apr_pool_t *p)
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

static acme_key_t *a3_key(apr_pool_t *p)
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
static int verify(EVP_PKEY *evp, const char *md, const void *input, apr_size_t inlen,
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

static void key_type_parse_table(void **state)
{
    static const struct {
        const char *name;
        apr_status_t rv;
        acme_key_type_e type;
    } rows[] = {
        {"ec256", APR_SUCCESS, ACME_KEY_EC256},
        {"EC384", APR_SUCCESS, ACME_KEY_EC384},
        {"Rsa2048", APR_SUCCESS, ACME_KEY_RSA2048},
        {"rsa3072", APR_SUCCESS, ACME_KEY_RSA3072},
        {"RSA4096", APR_SUCCESS, ACME_KEY_RSA4096},
        {"", APR_EINVAL, 0},
        {"ec", APR_EINVAL, 0},
        {"ec521", APR_EINVAL, 0},
        {"rsa1024", APR_EINVAL, 0},
        {"rsa", APR_EINVAL, 0},
        {"ec256 ", APR_EINVAL, 0},
        {"ed25519", APR_EINVAL, 0},
        {NULL, APR_EINVAL, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        acme_key_type_e type = (acme_key_type_e)99;
        assert_int_equal(acme_key_type_parse(&type, rows[i].name), rows[i].rv);
        if (rows[i].rv == APR_SUCCESS) {
            assert_int_equal(type, rows[i].type);
            assert_true(!strcasecmp(acme_key_type_name(type), rows[i].name));
        } else {
            assert_int_equal(type, 99);
        }
    }
}

static void key_generate_every_type(void **state)
{
    apr_pool_t *p = *state;
    static const struct {
        acme_key_type_e type;
        const char *alg;
        const char *kty;
        apr_size_t len; /* bytes of x and y, or of n */
    } rows[] = {
        {ACME_KEY_EC256, "ES256", "EC", 32},     {ACME_KEY_EC384, "ES384", "EC", 48},
        {ACME_KEY_RSA2048, "RS256", "RSA", 256}, {ACME_KEY_RSA3072, "RS256", "RSA", 384},
        {ACME_KEY_RSA4096, "RS256", "RSA", 512},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        acme_key_t *key, *back;
        const char *pem, *t1, *t2;
        apr_size_t len, dlen;
        json_t *jwk;

        assert_int_equal(acme_key_generate(&key, rows[i].type, p), APR_SUCCESS);
        assert_int_equal(acme_key_type(key), rows[i].type);
        assert_string_equal(acme_key_jws_alg(key), rows[i].alg);

        assert_int_equal(acme_key_to_pem(&pem, &len, key, p), APR_SUCCESS);
        assert_int_equal(strlen(pem), len);
        assert_true(!strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28));
        assert_int_equal(acme_key_from_pem(&back, pem, len, p), APR_SUCCESS);
        assert_int_equal(acme_key_type(back), rows[i].type);
        assert_int_equal(EVP_PKEY_eq(acme_key_evp(key), acme_key_evp(back)), 1);

        assert_int_equal(acme_key_thumbprint(&t1, key, p), APR_SUCCESS);
        assert_int_equal(acme_key_thumbprint(&t2, back, p), APR_SUCCESS);
        assert_string_equal(t1, t2);
        assert_int_equal(strlen(t1), 43); /* 32 bytes of SHA-256 */

        assert_int_equal(acme_key_jwk(&jwk, key, p), APR_SUCCESS);
        assert_string_equal(acme_json_str(jwk, "kty"), rows[i].kty);
        if (!strcmp(rows[i].kty, "EC")) {
            assert_int_equal(json_object_size(jwk), 4);
            assert_string_equal(acme_json_str(jwk, "crv"), rows[i].len == 32 ? "P-256" : "P-384");
            b64u_dec(p, acme_json_str(jwk, "x"), &dlen);
            assert_int_equal(dlen, rows[i].len);
            b64u_dec(p, acme_json_str(jwk, "y"), &dlen);
            assert_int_equal(dlen, rows[i].len);
        } else {
            const unsigned char *n = b64u_dec(p, acme_json_str(jwk, "n"), &dlen);
            assert_int_equal(json_object_size(jwk), 3);
            assert_int_equal(dlen, rows[i].len);
            assert_true(n[0] != 0);
            assert_string_equal(acme_json_str(jwk, "e"), "AQAB");
        }
    }
}

static void jwk_rfc7638_known_answer(void **state)
{
    apr_pool_t *p = *state;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    acme_key_t *key;
    const char *thumb;
    json_t *jwk;
    char *s;

    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, b64u_bn(p, R7638_N)), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, b64u_bn(p, "AQAB")), 1);
    assert_int_equal(acme_key_from_evp(&key, pkey_fromdata("RSA", bld, EVP_PKEY_PUBLIC_KEY), p),
                     APR_SUCCESS);
    assert_int_equal(acme_key_type(key), ACME_KEY_RSA2048);

    assert_int_equal(acme_key_jwk(&jwk, key, p), APR_SUCCESS);
    s = json_dumps(jwk, JSON_COMPACT);
    assert_string_equal(
        s, apr_pstrcat(p, "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"", R7638_N, "\"}", NULL));
    free(s);
    assert_int_equal(acme_key_thumbprint(&thumb, key, p), APR_SUCCESS);
    assert_string_equal(thumb, R7638_THUMB);
}

static void jwk_ec_rfc7515_key(void **state)
{
    apr_pool_t *p = *state;
    acme_key_t *key = a3_key(p);
    json_t *jwk;
    char *s;

    assert_int_equal(acme_key_type(key), ACME_KEY_EC256);
    assert_int_equal(acme_key_jwk(&jwk, key, p), APR_SUCCESS);
    s = json_dumps(jwk, JSON_COMPACT);
    assert_string_equal(s, apr_pstrcat(p, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", A3_X,
                                       "\",\"y\":\"", A3_Y, "\"}", NULL));
    free(s);
}

/* RFC 7518 section 6.2.1.2: a coordinate with leading zero bits still takes the full 32 bytes.
 * About one P-256 key in 256 has such an x; generate until one turns up. */
static void jwk_ec_coordinate_padding(void **state)
{
    apr_pool_t *p = *state;
    const unsigned char *x = NULL;
    apr_size_t xlen = 0;
    int i;

    for (i = 0; i < 8192; i++) {
        apr_pool_t *sub;
        acme_key_t *key;
        BIGNUM *bx = NULL;
        json_t *jwk;
        int short_x;

        apr_pool_create(&sub, p);
        assert_int_equal(acme_key_generate(&key, ACME_KEY_EC256, sub), APR_SUCCESS);
        assert_int_equal(EVP_PKEY_get_bn_param(acme_key_evp(key), OSSL_PKEY_PARAM_EC_PUB_X, &bx),
                         1);
        short_x = BN_num_bytes(bx) < 32;
        BN_free(bx);
        if (short_x) {
            assert_int_equal(acme_key_jwk(&jwk, key, p), APR_SUCCESS);
            x = b64u_dec(p, acme_json_str(jwk, "x"), &xlen);
            apr_pool_destroy(sub);
            break;
        }
        apr_pool_destroy(sub);
    }
    assert_non_null(x);
    assert_int_equal(xlen, 32);
    assert_int_equal(x[0], 0);
}

static void key_authorization_tokens(void **state)
{
    apr_pool_t *p = *state;
    static const struct {
        const char *token;
        apr_status_t rv;
    } rows[] = {
        {"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", APR_SUCCESS},
        {"a", APR_SUCCESS},
        {"AZaz09-_", APR_SUCCESS},
        {"", APR_EINVAL},
        {"a.b", APR_EINVAL},
        {"a b", APR_EINVAL},
        {"a+b", APR_EINVAL},
        {"a/b", APR_EINVAL},
        {"abc=", APR_EINVAL},
        {"../x", APR_EINVAL},
        {"a\n", APR_EINVAL},
        {NULL, APR_EINVAL},
    };
    acme_key_t *key = a3_key(p);
    const char *thumb, *ka;
    char *tok;
    size_t i;

    assert_int_equal(acme_key_thumbprint(&thumb, key, p), APR_SUCCESS);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        ka = NULL;
        assert_int_equal(acme_key_authorization(&ka, key, rows[i].token, p), rows[i].rv);
        if (rows[i].rv == APR_SUCCESS) {
            assert_string_equal(ka, apr_pstrcat(p, rows[i].token, ".", thumb, NULL));
        } else {
            assert_null(ka);
        }
    }
    tok = apr_palloc(p, 258);
    memset(tok, 'a', 257);
    tok[256] = '\0';
    assert_int_equal(acme_key_authorization(&ka, key, tok, p), APR_SUCCESS);
    tok[256] = 'a';
    tok[257] = '\0';
    assert_int_equal(acme_key_authorization(&ka, key, tok, p), APR_EINVAL);
}

static const char *pem_of(apr_pool_t *p, EVP_PKEY *evp, int public_only, int traditional)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    const char *s;

    if (public_only) {
        assert_int_equal(PEM_write_bio_PUBKEY(bio, evp), 1);
    } else if (traditional) {
        assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, evp, NULL, NULL, 0, NULL, NULL),
                         1);
    } else {
        assert_int_equal(PEM_write_bio_PrivateKey(bio, evp, NULL, NULL, 0, NULL, NULL), 1);
    }
    n = BIO_get_mem_data(bio, &data);
    s = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(bio);
    return s;
}

static const char *encrypted_pem_of(apr_pool_t *p, EVP_PKEY *evp)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    const char *s;

    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(bio, evp, EVP_aes_128_cbc(), "secret", 6, NULL, NULL), 1);
    n = BIO_get_mem_data(bio, &data);
    s = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(bio);
    return s;
}

static void key_from_pem_errors(void **state)
{
    apr_pool_t *p = *state;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    EVP_PKEY *rsa1k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    acme_key_t *good = a3_key(p);
    const char *pem;
    apr_size_t plen;
    size_t i;
    struct {
        const char *what;
        const char *pem;
        apr_size_t len; /* 0: strlen */
        apr_status_t rv;
    } rows[] = {
        {"garbage", "hello, this is no key\n", 0, ACME_EBADSTORE},
        {"empty", "", 0, ACME_EBADSTORE},
        {"truncated", NULL, 0, ACME_EBADSTORE},
        {"public key only", pem_of(p, acme_key_evp(good), 1, 0), 0, ACME_EBADSTORE},
        {"encrypted", encrypted_pem_of(p, acme_key_evp(good)), 0, ACME_EBADSTORE},
        {"dsa", DSA_PEM, 0, APR_ENOTIMPL},
        {"ed25519", pem_of(p, ed, 0, 0), 0, APR_ENOTIMPL},
        {"p-521", pem_of(p, p521, 0, 0), 0, APR_ENOTIMPL},
        {"rsa 1024", pem_of(p, rsa1k, 0, 0), 0, APR_ENOTIMPL},
        {"traditional ec", pem_of(p, acme_key_evp(good), 0, 1), 0, APR_SUCCESS},
        {"pkcs8 ec", pem_of(p, acme_key_evp(good), 0, 0), 0, APR_SUCCESS},
    };

    assert_int_equal(acme_key_to_pem(&pem, &plen, good, p), APR_SUCCESS);
    rows[2].pem = pem;
    rows[2].len = plen / 2;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        acme_key_t *key = NULL;
        apr_size_t len = rows[i].len ? rows[i].len : strlen(rows[i].pem);
        print_message("from_pem: %s\n", rows[i].what);
        assert_int_equal(acme_key_from_pem(&key, rows[i].pem, len, p), rows[i].rv);
        if (rows[i].rv == APR_SUCCESS) {
            assert_int_equal(EVP_PKEY_eq(acme_key_evp(key), acme_key_evp(good)), 1);
        } else {
            assert_null(key);
        }
    }
    assert_int_equal(ERR_peek_error(), 0);

    /* from_evp takes ownership even when it refuses the key: no leak, no double free. */
    {
        acme_key_t *key = NULL;
        assert_int_equal(acme_key_from_evp(&key, ed, p), APR_ENOTIMPL);
        assert_int_equal(acme_key_from_evp(&key, p521, p), APR_ENOTIMPL);
        assert_int_equal(acme_key_from_evp(&key, rsa1k, p), APR_ENOTIMPL);
        assert_int_equal(acme_key_from_evp(&key, NULL, p), APR_EINVAL);
        assert_null(key);
    }
}

static void jws_rfc7515_a1_hs256(void **state)
{
    apr_pool_t *p = *state;
    const unsigned char *k, *mac;
    apr_size_t klen, maclen;

    k = b64u_dec(p, A1_K, &klen);
    assert_int_equal(acme_jws_hs256(&mac, &maclen, k, klen, A1_INPUT, strlen(A1_INPUT), p),
                     APR_SUCCESS);
    assert_int_equal(maclen, 32);
    assert_string_equal(acme_b64u_encode(p, mac, maclen), A1_MAC);
    assert_int_equal(acme_jws_hs256(&mac, &maclen, k, 0, A1_INPUT, strlen(A1_INPUT), p),
                     APR_EINVAL);
}

static void jws_rfc7515_a2_rs256(void **state)
{
    apr_pool_t *p = *state;
    acme_key_t *key = a2_key(p);
    const unsigned char *sig;
    apr_size_t siglen;

    assert_int_equal(acme_key_type(key), ACME_KEY_RSA2048);
    assert_string_equal(acme_key_jws_alg(key), "RS256");
    assert_int_equal(acme_jws_signature(&sig, &siglen, key, A2_INPUT, strlen(A2_INPUT), p),
                     APR_SUCCESS);
    assert_int_equal(siglen, 256);
    /* PKCS#1 v1.5 is deterministic: the exact value of the RFC. */
    assert_string_equal(acme_b64u_encode(p, sig, siglen), A2_SIG);
}

static void jws_rfc7515_a3_es256(void **state)
{
    apr_pool_t *p = *state;
    acme_key_t *key = a3_key(p);
    const unsigned char *sig, *rfcsig;
    unsigned char bad[64];
    apr_size_t siglen, rfclen;

    assert_int_equal(acme_jws_signature(&sig, &siglen, key, A3_INPUT, strlen(A3_INPUT), p),
                     APR_SUCCESS);
    assert_int_equal(siglen, 64);
    assert_true(verify(acme_key_evp(key), "SHA256", A3_INPUT, strlen(A3_INPUT), sig, siglen));

    rfcsig = b64u_dec(p, A3_SIG, &rfclen);
    assert_int_equal(rfclen, 64);
    assert_true(verify(acme_key_evp(key), "SHA256", A3_INPUT, strlen(A3_INPUT), rfcsig, rfclen));
    /* The check above is not vacuous: one flipped bit fails. */
    memcpy(bad, rfcsig, 64);
    bad[40] ^= 1;
    assert_false(verify(acme_key_evp(key), "SHA256", A3_INPUT, strlen(A3_INPUT), bad, 64));
    assert_false(verify(acme_key_evp(key), "SHA256", A2_INPUT, strlen(A2_INPUT), rfcsig, 64));
}

/* Decodes and checks a flattened JWS made by acme_jws_sign; returns the protected header. */
static json_t *check_jws(apr_pool_t *p, const json_t *jws, const acme_key_t *key, const char *md,
                         apr_size_t siglen, const char *payload)
{
    const char *prot = acme_json_str(jws, "protected");
    const char *pay = acme_json_str(jws, "payload");
    const char *sig64 = acme_json_str(jws, "signature");
    const unsigned char *sig;
    apr_size_t len;
    const char *input;
    json_t *hdr;

    assert_int_equal(json_object_size(jws), 3);
    assert_non_null(prot);
    assert_non_null(pay);
    assert_non_null(sig64);
    assert_string_equal(b64u_str(p, pay), payload);
    sig = b64u_dec(p, sig64, &len);
    assert_int_equal(len, siglen);
    input = apr_pstrcat(p, prot, ".", pay, NULL);
    assert_true(verify(acme_key_evp(key), md, input, strlen(input), sig, len));
    hdr = acme_json_pool(p, json_loads(b64u_str(p, prot), 0, NULL));
    assert_non_null(hdr);
    assert_string_equal(acme_json_str(hdr, "alg"), acme_key_jws_alg(key));
    assert_string_equal(acme_json_str(hdr, "nonce"), "nonce-1");
    assert_string_equal(acme_json_str(hdr, "url"), "https://ca.test/acme/new-order");
    return hdr;
}

static void jws_sign_flattened(void **state)
{
    apr_pool_t *p = *state;
    static const char url[] = "https://ca.test/acme/new-order";
    static const char kid[] = "https://ca.test/acme/acct/1";
    static const struct {
        acme_key_type_e type;
        const char *md;
        apr_size_t siglen;
    } rows[] = {
        {ACME_KEY_EC256, "SHA256", 64},
        {ACME_KEY_EC384, "SHA384", 96},
        {ACME_KEY_RSA2048, "SHA256", 256},
    };
    json_t *payload = acme_json_pool(
        p, json_pack("{s:[{s:s,s:s}]}", "identifiers", "type", "dns", "value", "a.test"));
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        acme_key_t *key;
        json_t *jws, *hdr, *jwk;

        if (rows[i].type == ACME_KEY_RSA2048) {
            key = a2_key(p); /* spares a key generation */
        } else {
            assert_int_equal(acme_key_generate(&key, rows[i].type, p), APR_SUCCESS);
        }
        assert_int_equal(acme_key_jwk(&jwk, key, p), APR_SUCCESS);

        /* newAccount style: jwk, no kid */
        assert_int_equal(acme_jws_sign(&jws, key, NULL, "nonce-1", url, payload, p), APR_SUCCESS);
        hdr = check_jws(p, jws, key, rows[i].md, rows[i].siglen,
                        "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.test\"}]}");
        assert_int_equal(json_object_size(hdr), 4);
        assert_null(json_object_get(hdr, "kid"));
        assert_true(json_equal(json_object_get(hdr, "jwk"), jwk));

        /* POST-as-GET with the account URL: kid, no jwk, empty payload */
        assert_int_equal(acme_jws_sign(&jws, key, kid, "nonce-1", url, NULL, p), APR_SUCCESS);
        assert_string_equal(acme_json_str(jws, "payload"), "");
        hdr = check_jws(p, jws, key, rows[i].md, rows[i].siglen, "");
        assert_int_equal(json_object_size(hdr), 4);
        assert_string_equal(acme_json_str(hdr, "kid"), kid);
        assert_null(json_object_get(hdr, "jwk"));
    }
}

static void jws_sign_bad_args(void **state)
{
    apr_pool_t *p = *state;
    acme_key_t *key = a3_key(p);
    json_t *jws = NULL;

    assert_int_equal(acme_jws_sign(&jws, key, NULL, NULL, "https://ca.test/x", NULL, p),
                     APR_EINVAL);
    assert_int_equal(acme_jws_sign(&jws, key, NULL, "n", NULL, NULL, p), APR_EINVAL);
    assert_int_equal(acme_jws_sign(&jws, key, "k", "n\xff", "https://ca.test/x", NULL, p),
                     APR_EINVAL);
    assert_null(jws);
}

static void jws_eab_hs256(void **state)
{
    apr_pool_t *p = *state;
    static const char url[] = "https://ca.test/acme/new-account";
    acme_key_t *key = a3_key(p);
    const unsigned char *k, *mac;
    apr_size_t klen, maclen;
    json_t *jws = NULL, *hdr, *pay, *jwk;
    const char *input;
    static const char *bad[] = {"", "a+b", "abc=", "a", "with space"};
    size_t i;

    assert_int_equal(acme_jws_eab(&jws, key, "kid-1", A1_K, url, p), APR_SUCCESS);
    assert_int_equal(json_object_size(jws), 3);
    hdr = acme_json_pool(p, json_loads(b64u_str(p, acme_json_str(jws, "protected")), 0, NULL));
    assert_int_equal(json_object_size(hdr), 3);
    assert_string_equal(acme_json_str(hdr, "alg"), "HS256");
    assert_string_equal(acme_json_str(hdr, "kid"), "kid-1");
    assert_string_equal(acme_json_str(hdr, "url"), url);
    assert_null(json_object_get(hdr, "nonce"));
    pay = acme_json_pool(p, json_loads(b64u_str(p, acme_json_str(jws, "payload")), 0, NULL));
    assert_int_equal(acme_key_jwk(&jwk, key, p), APR_SUCCESS);
    assert_true(json_equal(pay, jwk));

    k = b64u_dec(p, A1_K, &klen);
    input =
        apr_pstrcat(p, acme_json_str(jws, "protected"), ".", acme_json_str(jws, "payload"), NULL);
    assert_int_equal(acme_jws_hs256(&mac, &maclen, k, klen, input, strlen(input), p), APR_SUCCESS);
    assert_string_equal(acme_json_str(jws, "signature"), acme_b64u_encode(p, mac, maclen));

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *none = NULL;
        assert_int_equal(acme_jws_eab(&none, key, "kid-1", bad[i], url, p), APR_EINVAL);
        assert_null(none);
    }
}

/* base64url of bytes by OpenSSL's own encoder, not ours (the known answer below must not lean on
 * the code it checks). */
static const char *ossl_b64u(apr_pool_t *p, const unsigned char *data, int len)
{
    char *out = apr_palloc(p, (apr_size_t)(4 * ((len + 2) / 3) + 1)), *c;
    int n = EVP_EncodeBlock((unsigned char *)out, data, len);

    while (n > 0 && out[n - 1] == '=') {
        n--;
    }
    out[n] = '\0';
    for (c = out; *c; c++) {
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    }
    return out;
}

/* RFC 8555 section 7.3.4 with fixed inputs: the RFC 7515 A.3 key as the account key, the MAC key
 * bytes 0x00..0x1f. The protected header and payload are spelled out here, the MAC is computed
 * with OpenSSL's HMAC and also given as a constant (computed with Python's hmac module). */
static void jws_eab_known_answer(void **state)
{
    apr_pool_t *p = *state;
    static const char url[] = "https://ca.test/acme/new-account";
    static const char hdr[] = "{\"alg\":\"HS256\",\"kid\":\"kid-1\",\"url\":\"https://ca.test/acme/"
                              "new-account\"}";
    static const char jwk[] = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":"
                              "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":"
                              "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
    static const char key_b64u[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    static const char mac_known[] = "Cat-kpMjg5KBtjuW0cZYQ24diFVrJ_wlL3qd9HTfP6Q";
    unsigned char key[32], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    const char *prot, *pay, *input;
    json_t *jws = NULL;
    int i;

    for (i = 0; i < 32; i++) {
        key[i] = (unsigned char)i;
    }
    assert_string_equal(ossl_b64u(p, key, 32), key_b64u);
    prot = ossl_b64u(p, (const unsigned char *)hdr, (int)strlen(hdr));
    pay = ossl_b64u(p, (const unsigned char *)jwk, (int)strlen(jwk));
    input = apr_pstrcat(p, prot, ".", pay, NULL);
    assert_non_null(
        HMAC(EVP_sha256(), key, 32, (const unsigned char *)input, strlen(input), mac, &maclen));
    assert_int_equal(maclen, 32);
    assert_string_equal(ossl_b64u(p, mac, (int)maclen), mac_known);

    assert_int_equal(acme_jws_eab(&jws, a3_key(p), "kid-1", key_b64u, url, p), APR_SUCCESS);
    assert_int_equal(json_object_size(jws), 3);
    assert_string_equal(acme_json_str(jws, "protected"), prot);
    assert_string_equal(acme_json_str(jws, "payload"), pay);
    assert_string_equal(acme_json_str(jws, "signature"), mac_known);
}

/* The MAC key as CAs hand it out: base64url, or base64 with padding; anything else refused. */
static void jws_eab_key_forms(void **state)
{
    apr_pool_t *p = *state;
    static const struct {
        const char *text;
        const char *b64u; /* NULL: refused */
    } rows[] = {
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},
        {"  -_8+/w==\r\n", "-_8-_w"},
        {"+/+/", "-_-_"},
        {"YQ==", "YQ"},
        {"YWI=", "YWI"},
        {"", NULL},
        {" \n", NULL},
        {"=", NULL},
        {"YQ===", NULL},
        {"YWI==", NULL},
        {"Y", NULL},
        {"ab cd", NULL},
        {"-----BEGIN KEY-----", NULL},
        {"a\"b", NULL},
        {"abc\0def", NULL},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *out = NULL;
        apr_size_t len = strlen(rows[i].text);
        if (strcmp(rows[i].text, "abc") == 0) {
            len = 7; /* the row with a NUL inside */
        }
        if (rows[i].b64u) {
            assert_int_equal(acme_jws_eab_key(&out, rows[i].text, len, p), APR_SUCCESS);
            assert_string_equal(out, rows[i].b64u);
        } else {
            assert_int_equal(acme_jws_eab_key(&out, rows[i].text, len, p), APR_EINVAL);
            assert_null(out);
        }
    }
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(key_type_parse_table),
    UNIT_TEST(key_generate_every_type),
    UNIT_TEST(jwk_rfc7638_known_answer),
    UNIT_TEST(jwk_ec_rfc7515_key),
    UNIT_TEST(jwk_ec_coordinate_padding),
    UNIT_TEST(key_authorization_tokens),
    UNIT_TEST(key_from_pem_errors),
    UNIT_TEST(jws_rfc7515_a1_hs256),
    UNIT_TEST(jws_rfc7515_a2_rs256),
    UNIT_TEST(jws_rfc7515_a3_es256),
    UNIT_TEST(jws_sign_flattened),
    UNIT_TEST(jws_sign_bad_args),
    UNIT_TEST(jws_eab_hs256),
    UNIT_TEST(jws_eab_known_answer),
    UNIT_TEST(jws_eab_key_forms),
};

UNIT_MAIN("key", tests)
