/* test_key.c - keys, JWK and thumbprint (RFC 7638), key authorizations, keys from PEM (JWS:
 * test_jws.c). */
#include "key_util.h"

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

static const struct CMUnitTest tests[] = {
    UNIT_TEST(key_type_parse_table),      UNIT_TEST(key_generate_every_type),
    UNIT_TEST(jwk_rfc7638_known_answer),  UNIT_TEST(jwk_ec_rfc7515_key),
    UNIT_TEST(jwk_ec_coordinate_padding), UNIT_TEST(key_authorization_tokens),
    UNIT_TEST(key_from_pem_errors),
};

UNIT_MAIN("key", tests)
