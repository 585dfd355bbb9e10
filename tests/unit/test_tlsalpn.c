/* test_tlsalpn.c - tls-alpn-01 (RFC 8737, RFC 8738 section 6): the validator's server name for
 * DNS names, IPv4 and IPv6, the answer certificate parsed back with OpenSSL (its only SAN, the
 * critical acmeIdentifier extension with the DER OCTET STRING of SHA-256(key authorization), a
 * fresh P-256 key that matches), and the responder over a token table, whose entries cannot
 * meet http-01 tokens. */
#include "unit.h"

#include <arpa/inet.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_tlsalpn.h"
#include "acme_tokens.h"

#define TOKEN   "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define KEYAUTH TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

typedef struct answer_t {
    X509 *cert;
    EVP_PKEY *key;
} answer_t;

static apr_status_t answer_free(void *data)
{
    answer_t *a = data;
    X509_free(a->cert);
    EVP_PKEY_free(a->key);
    return APR_SUCCESS;
}

/* The PEM text as a TLS server reads it: the certificate, then the key from the rest. */
static answer_t *parse_answer(const char *pem, apr_pool_t *p)
{
    answer_t *a = apr_pcalloc(p, sizeof(*a));
    const char *end = strstr(pem, "-----END CERTIFICATE-----");
    BIO *bio;

    assert_non_null(end);
    assert_true(strlen(pem) < ACME_TLSALPN_PEM_MAX);
    apr_pool_cleanup_register(p, a, answer_free, apr_pool_cleanup_null);
    bio = BIO_new_mem_buf(pem, (int)(end - pem) + 26);
    assert_non_null(bio);
    a->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(a->cert);
    assert_non_null(strstr(end, "-----BEGIN PRIVATE KEY-----"));
    bio = BIO_new_mem_buf(end, -1);
    assert_non_null(bio);
    a->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(a->key);
    return a;
}

/* What a validator checks (RFC 8737 section 3), each point on its own. */
static void check_answer(const answer_t *a, const char *keyauth, int san_type,
                         const unsigned char *san, int san_len)
{
    unsigned char digest[32], want[34];
    unsigned int dlen = 0;
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    GENERAL_NAMES *gens;
    const GENERAL_NAME *gn;
    const ASN1_OCTET_STRING *data;
    const unsigned char *q;
    ASN1_OCTET_STRING *inner;
    X509_EXTENSION *ext;
    int idx, crit = -1;

    /* Self-signed with a fresh EC P-256 key that the PEM carries too. */
    assert_int_equal(EVP_PKEY_get_base_id(a->key), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_bits(a->key), 256);
    assert_int_equal(X509_check_private_key(a->cert, a->key), 1);
    assert_int_equal(X509_verify(a->cert, a->key), 1);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(a->cert)), 0);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(a->cert)) < 0);
    assert_true(X509_cmp_current_time(X509_get0_notAfter(a->cert)) > 0);

    /* One subjectAltName, the identifier; critical, as the subject is empty. */
    gens = X509_get_ext_d2i(a->cert, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gens);
    assert_int_equal(crit, 1);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    gn = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(gn->type, san_type);
    if (san_type == GEN_DNS) {
        assert_int_equal(ASN1_STRING_length(gn->d.dNSName), san_len);
        assert_memory_equal(ASN1_STRING_get0_data(gn->d.dNSName), san, (size_t)san_len);
    } else {
        assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), san_len);
        assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress), san, (size_t)san_len);
    }
    GENERAL_NAMES_free(gens);

    /* id-pe-acmeIdentifier, critical, once, holding the DER OCTET STRING of the digest. */
    assert_non_null(oid);
    idx = X509_get_ext_by_OBJ(a->cert, oid, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_get_ext_by_OBJ(a->cert, oid, idx), -1);
    ASN1_OBJECT_free(oid);
    ext = X509_get_ext(a->cert, idx);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    assert_int_equal(EVP_Digest(keyauth, strlen(keyauth), digest, &dlen, EVP_sha256(), NULL), 1);
    assert_int_equal(dlen, 32);
    want[0] = 0x04; /* OCTET STRING */
    want[1] = 0x20; /* of 32 bytes */
    memcpy(want + 2, digest, 32);
    data = X509_EXTENSION_get_data(ext);
    assert_int_equal(ASN1_STRING_length(data), 34);
    assert_memory_equal(ASN1_STRING_get0_data(data), want, 34);
    /* ... which an ASN.1 decoder reads back as the digest alone. */
    q = ASN1_STRING_get0_data(data);
    inner = d2i_ASN1_OCTET_STRING(NULL, &q, ASN1_STRING_length(data));
    assert_non_null(inner);
    assert_int_equal(ASN1_STRING_length(inner), 32);
    assert_memory_equal(ASN1_STRING_get0_data(inner), digest, 32);
    ASN1_OCTET_STRING_free(inner);
}

static void answer_dns_name(void **state)
{
    apr_pool_t *p = *state;
    acme_ident_t id = {"dns", "www.example.org"};
    const char *pem, *pem2;
    answer_t *a, *b;

    assert_int_equal(acme_tlsalpn_answer(&pem, &id, KEYAUTH, apr_time_now(), p), APR_SUCCESS);
    a = parse_answer(pem, p);
    check_answer(a, KEYAUTH, GEN_DNS, (const unsigned char *)"www.example.org", 15);
    /* A fresh key for every answer. */
    assert_int_equal(acme_tlsalpn_answer(&pem2, &id, KEYAUTH, apr_time_now(), p), APR_SUCCESS);
    b = parse_answer(pem2, p);
    assert_int_not_equal(EVP_PKEY_eq(a->key, b->key), 1);
    /* Another key authorization, another digest: the check above fails for the first. */
    assert_int_equal(acme_tlsalpn_answer(&pem2, &id, TOKEN ".other", apr_time_now(), p),
                     APR_SUCCESS);
    check_answer(parse_answer(pem2, p), TOKEN ".other", GEN_DNS,
                 (const unsigned char *)"www.example.org", 15);
}

static void answer_ipv4(void **state)
{
    apr_pool_t *p = *state;
    acme_ident_t id = {"ip", "192.0.2.7"};
    unsigned char addr[4];
    const char *pem;

    assert_int_equal(inet_pton(AF_INET, "192.0.2.7", addr), 1);
    assert_int_equal(acme_tlsalpn_answer(&pem, &id, KEYAUTH, apr_time_now(), p), APR_SUCCESS);
    check_answer(parse_answer(pem, p), KEYAUTH, GEN_IPADD, addr, 4);
}

static void answer_ipv6(void **state)
{
    apr_pool_t *p = *state;
    acme_ident_t id = {"ip", "2001:db8::1"};
    unsigned char addr[16];
    const char *pem;

    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", addr), 1);
    assert_int_equal(acme_tlsalpn_answer(&pem, &id, KEYAUTH, apr_time_now(), p), APR_SUCCESS);
    check_answer(parse_answer(pem, p), KEYAUTH, GEN_IPADD, addr, 16);
}

static void answer_refuses_bad_identifiers(void **state)
{
    apr_pool_t *p = *state;
    static const acme_ident_t rows[] = {
        {"dns", "*.example.org"},
        {"dns", "bad name.test"},
        {"ip", "192.0.2.300"},
        {"ip", "example.org"},
        {"dns", ""},
        {"dns", NULL},
    };
    const char *pem = NULL;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(acme_tlsalpn_answer(&pem, &rows[i], KEYAUTH, apr_time_now(), p),
                         APR_EINVAL);
        assert_null(pem);
    }
    assert_int_equal(acme_tlsalpn_answer(&pem, &rows[0], NULL, apr_time_now(), p), APR_EINVAL);
}

static void sni_names(void **state)
{
    apr_pool_t *p = *state;
    static const struct {
        const char *type, *value, *sni;
    } rows[] = {
        {"dns", "example.org", "example.org"},
        {"dns", "WWW.Example.ORG", "www.example.org"},
        {"ip", "192.0.2.7", "7.2.0.192.in-addr.arpa"},
        {"ip", "127.0.0.1", "1.0.0.127.in-addr.arpa"},
        {"ip", "2001:db8::1",
         "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"},
        {"ip", "::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"},
        /* No type: told apart by the value, as job files keep only the name. */
        {NULL, "192.0.2.7", "7.2.0.192.in-addr.arpa"},
        {NULL, "a.example.org", "a.example.org"},
        {"dns", "*.example.org", NULL},
        {"dns", "192.0.2.300", NULL},
        {"dns", "no_underscore.test", NULL},
        {"ip", "192.0.2.7.in-addr.arpa", NULL},
        {"ip", "fe80::1%eth0", NULL},
        {"dns", "", NULL},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        acme_ident_t id = {rows[i].type, rows[i].value};
        const char *got = acme_tlsalpn_sni(&id, p);
        if (rows[i].sni) {
            assert_non_null(got);
            assert_string_equal(got, rows[i].sni);
        } else {
            assert_null(got);
        }
    }
    assert_null(acme_tlsalpn_sni(NULL, p));
}

static void responder_publishes_apart_from_tokens(void **state)
{
    apr_pool_t *p = *state;
    acme_tokens_t *t;
    acme_responder_t r;
    acme_ident_t ip = {"ip", "192.0.2.7"}, dns = {"dns", "example.org"};
    const char *pem, *host, *keyauth;
    apr_time_t expires = apr_time_now() + apr_time_from_sec(60);

    assert_int_equal(acme_tokens_hash_create(&t, p), APR_SUCCESS);
    acme_responder_tlsalpn01(&r, t);
    assert_string_equal(r.type, "tls-alpn-01");
    assert_true(r.can_answer(&r, &dns, 0));
    assert_true(r.can_answer(&r, &ip, 0));
    assert_false(r.can_answer(&r, &dns, 1)); /* a wildcard authorization */

    /* An http-01 answer with the same token stays as it is. */
    assert_int_equal(t->put(t, TOKEN, "example.org", KEYAUTH, expires), APR_SUCCESS);
    assert_int_equal(r.setup(&r, &dns, 0, TOKEN, KEYAUTH, expires, NULL, p), APR_SUCCESS);
    assert_int_equal(r.setup(&r, &ip, 0, TOKEN, KEYAUTH, expires, NULL, p), APR_SUCCESS);
    assert_int_equal(t->get(t, TOKEN, &host, &keyauth, p), APR_SUCCESS);
    assert_string_equal(keyauth, KEYAUTH);
    /* The answers are found under the names a validator sends, and nowhere else. */
    assert_int_equal(t->get_cert(t, "example.org", &pem, p), APR_SUCCESS);
    check_answer(parse_answer(pem, p), KEYAUTH, GEN_DNS, (const unsigned char *)"example.org", 11);
    assert_int_equal(t->get_cert(t, "7.2.0.192.in-addr.arpa", &pem, p), APR_SUCCESS);
    assert_int_equal(t->get_cert(t, "192.0.2.7", &pem, p), APR_NOTFOUND);
    assert_int_equal(t->get_cert(t, TOKEN, &pem, p), APR_NOTFOUND);
    assert_int_equal(t->get(t, "example.org", &host, &keyauth, p), APR_NOTFOUND);

    /* Teardown takes each answer away, the http-01 one stays. */
    r.teardown(&r, &dns, 0, TOKEN, KEYAUTH, p);
    assert_int_equal(t->get_cert(t, "example.org", &pem, p), APR_NOTFOUND);
    assert_int_equal(t->get_cert(t, "7.2.0.192.in-addr.arpa", &pem, p), APR_SUCCESS);
    r.teardown(&r, &ip, 0, TOKEN, KEYAUTH, p);
    assert_int_equal(t->get_cert(t, "7.2.0.192.in-addr.arpa", &pem, p), APR_NOTFOUND);
    assert_int_equal(t->get(t, TOKEN, &host, &keyauth, p), APR_SUCCESS);

    /* An expired answer is not given out. */
    assert_int_equal(r.setup(&r, &dns, 0, TOKEN, KEYAUTH, apr_time_now() - 1, NULL, p),
                     APR_SUCCESS);
    assert_int_equal(t->get_cert(t, "example.org", &pem, p), APR_NOTFOUND);
    /* A wildcard or a bad name is refused before anything is made. */
    assert_int_equal(r.setup(&r, &dns, 1, TOKEN, KEYAUTH, expires, NULL, p), APR_EINVAL);
}

static void keyauth_form(void **state)
{
    static const struct {
        const char *keyauth;
        int ok;
    } rows[] = {
        {KEYAUTH, 1},
        {TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqT", 0},   /* 42 */
        {TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTIx", 0}, /* 44 */
        {TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mq=I", 0},  /* padding */
        {TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mq\nI", 0},
        {TOKEN "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTIx", 0}, /* no dot */
        {"otherTOKENxxxxxxxxxxxxx.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI", 0},
        {"", 0},
        {NULL, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(acme_keyauth_ok(rows[i].keyauth, TOKEN), rows[i].ok);
    }
    assert_int_equal(acme_keyauth_ok(KEYAUTH, "short"), 0);
    assert_int_equal(acme_keyauth_ok(KEYAUTH, NULL), 0);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(answer_dns_name), UNIT_TEST(answer_ipv4),
    UNIT_TEST(answer_ipv6),     UNIT_TEST(answer_refuses_bad_identifiers),
    UNIT_TEST(sni_names),       UNIT_TEST(responder_publishes_apart_from_tokens),
    UNIT_TEST(keyauth_form),
};

UNIT_MAIN("tlsalpn", tests)
