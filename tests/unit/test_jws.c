/* test_jws.c - JWS (RFC 7515, RFC 8555 section 6.2): the RFC's examples, the flattened form
 * ACME sends, bad arguments, and the external account binding (RFC 8555 section 7.3.4). */
#include "key_util.h"

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
    UNIT_TEST(jws_rfc7515_a1_hs256), UNIT_TEST(jws_rfc7515_a2_rs256),
    UNIT_TEST(jws_rfc7515_a3_es256), UNIT_TEST(jws_sign_flattened),
    UNIT_TEST(jws_sign_bad_args),    UNIT_TEST(jws_eab_hs256),
    UNIT_TEST(jws_eab_known_answer), UNIT_TEST(jws_eab_key_forms),
};

UNIT_MAIN("jws", tests)
