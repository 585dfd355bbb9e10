/* test_ari.c - ACME Renewal Information (RFC 9773): certID, window, pick, fetch, and the
 * resend without "replaces". Debian's pebble 2.4 has no ARI, so this runs on the fake CA. */
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme_ari.h"
#include "acme_issue.h"
#include "fake_ca.h"

#define JSON "Content-Type: application/json\n"
#define DIR_ARI                                                                                    \
    "{\"newNonce\":\"" CA "/nonce\",\"newAccount\":\"" CA "/acct\",\"newOrder\":\"" CA             \
    "/order\",\"renewalInfo\":\"" CA "/ari\"}"

/* A certificate with the AKI keyIdentifier and serial of RFC 9773's example. */
static acme_cert_t *example_cert(apr_pool_t *p)
{
    static const unsigned char kid[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                        0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    acme_key_t *key;
    X509 *x = X509_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    BIGNUM *bn = BN_new();
    apr_array_header_t *chain;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    long len;

    assert_int_equal(acme_key_generate(&key, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_true(BN_hex2bn(&bn, "87654321"));
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, kid, sizeof(kid));
    assert_true(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0));
    X509_set_version(x, 2);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"ari.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, acme_key_evp(key));
    assert_true(X509_sign(x, acme_key_evp(key), EVP_sha256()) > 0);
    PEM_write_bio_X509(bio, x);
    len = BIO_get_mem_data(bio, &pem);
    assert_int_equal(acme_cert_chain_parse(&chain, pem, (apr_size_t)len, p), APR_SUCCESS);
    BIO_free(bio);
    BN_free(bn);
    AUTHORITY_KEYID_free(akid);
    X509_free(x);
    return APR_ARRAY_IDX(chain, 0, acme_cert_t *);
}

static void cert_id_as_the_rfc_says(void **state)
{
    const char *id = NULL;

    /* The serial 0x87654321 has its high bit set: DER keeps a leading zero octet. */
    assert_int_equal(acme_ari_cert_id(&id, example_cert(*state), *state), APR_SUCCESS);
    assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

static void rfc3339_table(void **state)
{
    static const struct {
        const char *s;
        apr_int64_t sec; /* -1: invalid */
    } rows[] = {
        {"2025-01-02T04:00:00Z", 1735790400},
        {"2025-01-02t04:00:00z", 1735790400},
        {"2025-01-02T04:00:00.5Z", 1735790400},
        {"2025-01-02T06:00:00+02:00", 1735790400},
        {"2025-01-02T03:30:00-00:30", 1735790400},
        {"2025-01-02 04:00:00Z", -1},
        {"2025-01-02T04:00:00", -1},
        {"2025-13-02T04:00:00Z", -1},
        {"2025-01-02T04:00:00Zjunk", -1},
        {"yesterday", -1},
        {"", -1},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        apr_time_t t = 0;
        apr_status_t rv = acme_rfc3339_parse(&t, rows[i].s);
        if (rows[i].sec < 0) {
            assert_int_equal(rv, APR_EINVAL);
        } else {
            assert_int_equal(rv, APR_SUCCESS);
            assert_int_equal(apr_time_sec(t), rows[i].sec);
        }
    }
}

static void window_retry_after_and_pick(void **state)
{
    apr_pool_t *p = *state;
    const char *body = "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
                       "\"end\":\"2025-01-03T04:00:00Z\"},"
                       "\"explanationURL\":\"https://ca.test/why\"}";
    apr_time_t now = apr_time_from_sec(1735700000);
    acme_ari_t *ari;
    apr_uint64_t r;

    assert_int_equal(acme_ari_parse(&ari, body, strlen(body), apr_time_from_sec(21600), now, p),
                     APR_SUCCESS);
    assert_int_equal(apr_time_sec(ari->start), 1735790400);
    assert_int_equal(apr_time_sec(ari->end), 1735876800);
    assert_string_equal(ari->explanation, "https://ca.test/why");
    assert_int_equal(ari->recheck, now + apr_time_from_sec(21600));
    /* Retry-After clamped to [1 minute, 1 day]; absent: 6 hours. */
    acme_ari_parse(&ari, body, strlen(body), apr_time_from_sec(5), now, p);
    assert_int_equal(ari->recheck, now + apr_time_from_sec(60));
    acme_ari_parse(&ari, body, strlen(body), apr_time_from_sec(7 * 86400), now, p);
    assert_int_equal(ari->recheck, now + apr_time_from_sec(86400));
    acme_ari_parse(&ari, body, strlen(body), -1, now, p);
    assert_int_equal(ari->recheck, now + ACME_ARI_RECHECK_DEFAULT);
    /* The pick stays inside the window, from its start to just before its end. */
    for (r = 0; r < 100000000000ULL; r += 7777777777ULL) {
        apr_time_t t = acme_ari_pick(ari, r);
        assert_true(t >= ari->start && t < ari->end);
    }
    assert_int_equal(acme_ari_pick(ari, 0), ari->start);
    /* Windows that cannot be used. */
    {
        static const char *const bad[] = {
            "{}",
            ("{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\","
             "\"end\":\"2025-01-02T04:00:00Z\"}}"),
            "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\"}}",
            "{\"suggestedWindow\":\"soon\"}",
            "[]",
            "garbage",
        };
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            assert_int_equal(acme_ari_parse(&ari, bad[i], strlen(bad[i]), -1, now, p), ACME_EPROTO);
        }
    }
}

static void fetch_only_when_offered(void **state)
{
    static const fake_answer_t with[] = {
        {"GET", CA "/dir", 200, JSON, DIR_ARI, 0},
        {"GET", CA "/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", 200, JSON "Retry-After: 3600\n",
         "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
         "\"end\":\"2025-01-03T04:00:00Z\"}}",
         0},
    };
    static const fake_answer_t without[] = {
        {"GET", CA "/dir", 200, JSON, FAKE_DIRECTORY, 0},
    };
    apr_pool_t *p = *state;
    fake_ca_t *ca = FAKE_CA(p, with);
    acme_client_t *client;
    acme_problem_t *prob = NULL;
    acme_ari_t *ari = NULL;

    assert_int_equal(acme_client_create(&client, CA "/dir", &ca->http, NULL, NULL, p), APR_SUCCESS);
    assert_int_equal(acme_ari_fetch(&ari, &prob, client, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", p),
                     APR_SUCCESS);
    assert_int_equal(apr_time_sec(ari->end), 1735876800);
    assert_true(ari->recheck - apr_time_now() > apr_time_from_sec(3500));

    ca = FAKE_CA(p, without);
    assert_int_equal(acme_client_create(&client, CA "/dir", &ca->http, NULL, NULL, p), APR_SUCCESS);
    ari = NULL;
    assert_int_equal(acme_ari_fetch(&ari, &prob, client, "x.y", p), APR_NOTFOUND);
    assert_null(ari);
    assert_int_equal(ca->requests->nelts, 1); /* the directory only */
}

/* An empty renewalInfo is no renewalInfo: nothing is asked, nothing is read around it. */
static void empty_renewal_info_is_absent(void **state)
{
    static const fake_answer_t script[] = {
        {"GET", CA "/dir", 200, JSON,
         "{\"newNonce\":\"" CA "/nonce\",\"newAccount\":\"" CA "/acct\",\"newOrder\":\"" CA
         "/order\",\"renewalInfo\":\"\"}",
         0},
    };
    apr_pool_t *p = *state;
    fake_ca_t *ca = FAKE_CA(p, script);
    acme_client_t *client;
    acme_problem_t *prob = NULL;
    acme_ari_t *ari = NULL;

    assert_int_equal(acme_client_create(&client, CA "/dir", &ca->http, NULL, NULL, p), APR_SUCCESS);
    assert_int_equal(acme_ari_fetch(&ari, &prob, client, "x.y", p), APR_NOTFOUND);
    assert_false(acme_ari_offered(client));
    assert_null(ari);
    assert_int_equal(ca->requests->nelts, 1); /* the directory only */
}

/* 404 for one certificate: the CA has no renewal information for it (RFC 9773 section 4.2).
 * Told apart from a CA without ARI and from a protocol error; the next certificate is asked. */
static void renewal_info_404_is_not_a_protocol_error(void **state)
{
    static const fake_answer_t script[] = {
        {"GET", CA "/dir", 200, JSON, DIR_ARI, 0},
        {"GET", CA "/ari/x.y", 404, "Content-Type: application/problem+json\n",
         "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"Certificate not "
         "found\"}",
         0},
        {"GET", CA "/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", 200, JSON,
         "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
         "\"end\":\"2025-01-03T04:00:00Z\"}}",
         0},
    };
    apr_pool_t *p = *state;
    fake_ca_t *ca = FAKE_CA(p, script);
    acme_client_t *client;
    acme_problem_t *prob = NULL;
    acme_ari_t *ari = NULL;

    assert_int_equal(acme_client_create(&client, CA "/dir", &ca->http, NULL, NULL, p), APR_SUCCESS);
    assert_true(acme_ari_offered(client));
    assert_int_equal(acme_ari_fetch(&ari, &prob, client, "x.y", p), APR_ENOENT);
    assert_non_null(prob);
    assert_int_equal(prob->http_status, 404);
    assert_int_equal(acme_ari_fetch(&ari, &prob, client, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", p),
                     APR_SUCCESS);
    assert_int_equal(ca->requests->nelts, 3);
}

/* A window that ends after the certificate's last tenth is cut there: renewal can never be
 * scheduled for after notAfter. */
static void window_clamped_before_expiry(void **state)
{
    apr_pool_t *p = *state;
    /* notBefore 2025-01-01T00:00Z, notAfter 10 days later: the last tenth starts one day
     * before notAfter, 2025-01-10T00:00Z. */
    apr_time_t nb = apr_time_from_sec(1735689600), na = nb + apr_time_from_sec(10 * 86400);
    apr_time_t limit = na - apr_time_from_sec(86400);
    const char *late = "{\"suggestedWindow\":{\"start\":\"2025-01-09T00:00:00Z\","
                       "\"end\":\"2025-01-12T00:00:00Z\"}}";
    const char *after = "{\"suggestedWindow\":{\"start\":\"2025-01-11T00:00:00Z\","
                        "\"end\":\"2025-01-12T00:00:00Z\"}}";
    const char *inside = "{\"suggestedWindow\":{\"start\":\"2025-01-05T00:00:00Z\","
                         "\"end\":\"2025-01-06T00:00:00Z\"}}";
    acme_ari_t *ari;
    apr_uint64_t r;

    assert_int_equal(acme_ari_parse(&ari, late, strlen(late), -1, nb, p), APR_SUCCESS);
    assert_int_equal(acme_ari_clamp(ari, nb, na), 1);
    assert_int_equal(ari->start, nb + apr_time_from_sec(8 * 86400));
    assert_int_equal(ari->end, limit);
    for (r = 0; r < 100000000000ULL; r += 7777777777ULL) {
        assert_true(acme_ari_pick(ari, r) < limit);
    }
    /* Wholly after the limit: renew at the limit. */
    assert_int_equal(acme_ari_parse(&ari, after, strlen(after), -1, nb, p), APR_SUCCESS);
    assert_int_equal(acme_ari_clamp(ari, nb, na), 1);
    assert_true(acme_ari_pick(ari, 12345) < limit);
    assert_true(acme_ari_pick(ari, 12345) >= limit - 1);
    /* A window inside the lifetime stays as the CA said. */
    assert_int_equal(acme_ari_parse(&ari, inside, strlen(inside), -1, nb, p), APR_SUCCESS);
    assert_int_equal(acme_ari_clamp(ari, nb, na), 0);
    assert_int_equal(ari->end, nb + apr_time_from_sec(5 * 86400));
}

/* A CA that refuses "replaces" gets the order once more without it. */
static void order_resent_without_replaces(void **state)
{
    static const fake_answer_t script[] = {
        {"GET", CA "/dir", 200, JSON, DIR_ARI, 0},
        {"HEAD", CA "/nonce", 200, "", "", 0},
        {"POST", CA "/order", 409, "Content-Type: application/problem+json\n",
         "{\"type\":\"urn:ietf:params:acme:error:alreadyReplaced\",\"detail\":\"already\"}", 0},
        {"POST", CA "/order", 403, "Content-Type: application/problem+json\n",
         "{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"detail\":\"stop\"}", 0},
    };
    apr_pool_t *p = *state;
    fake_ca_t *ca = FAKE_CA(p, script);
    acme_client_t *client;
    acme_key_t *key;
    acme_issue_req_t req;
    acme_issue_result_t *res;
    acme_problem_t *prob = NULL;
    apr_array_header_t *names = apr_array_make(p, 1, sizeof(const char *));

    APR_ARRAY_PUSH(names, const char *) = "a.test";
    assert_int_equal(acme_client_create(&client, CA "/dir", &ca->http, NULL, NULL, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&key, ACME_KEY_EC256, p), APR_SUCCESS);
    acme_client_set_account(client, key, CA "/acct/1");
    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names;
    req.replaces = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
    /* The second answer ends the attempt: what matters is what was sent. */
    assert_int_equal(acme_issue(&res, &prob, client, &req, p), ACME_ERATELIMITED);
    assert_int_equal(ca->requests->nelts, 4);
    assert_non_null(
        strstr(fake_req(ca, 2)->payload, "\"replaces\":\"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE\""));
    assert_null(strstr(fake_req(ca, 3)->payload, "replaces"));
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(cert_id_as_the_rfc_says),
    UNIT_TEST(rfc3339_table),
    UNIT_TEST(window_retry_after_and_pick),
    FAKE_CA_TEST(fetch_only_when_offered),
    FAKE_CA_TEST(order_resent_without_replaces),
    FAKE_CA_TEST(empty_renewal_info_is_absent),
    FAKE_CA_TEST(renewal_info_404_is_not_a_protocol_error),
    UNIT_TEST(window_clamped_before_expiry),
};

UNIT_MAIN("ari", tests)
