/* test_cert.c - CSRs (RFC 8555 section 7.4, RFC 8738) and certificate chains: parsing, names,
 * validity, key match, issuer linkage and the whole-chain check. The certificates are made here
 * with OpenSSL: a root, an intermediate and a leaf. */
#include "unit.h"

#include <arpa/inet.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_cert.h"
#include "acme_csr.h"
#include "acme_selfsigned.h"
#include "pki_util.h"

#define LEAF_NB ((time_t)1796119200) /* 2026-12-01 10:00:00 UTC */
#define LEAF_NA ((time_t)1803895200) /* 2027-03-01 10:00:00 UTC */
#define CA_NB   ((time_t)1577836800) /* 2020-01-01 00:00:00 UTC */
#define CA_NA   ((time_t)2208988800) /* 2040-01-01 00:00:00 UTC */

static apr_status_t req_free_cleanup(void *data)
{
    X509_REQ_free(data);
    return APR_SUCCESS;
}

typedef struct {
    acme_key_t *root_key, *inter_key, *leaf_key, *other_key;
    X509 *root, *inter, *leaf, *other_root;
    const char *leaf_pem, *inter_pem, *root_pem, *other_root_pem;
    const char *pem; /* leaf, intermediate, root */
} pki_t;

static pki_t *pki_make(apr_pool_t *p)
{
    pki_t *k = apr_pcalloc(p, sizeof(*k));

    assert_int_equal(acme_key_generate(&k->root_key, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&k->inter_key, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&k->leaf_key, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&k->other_key, ACME_KEY_EC256, p), APR_SUCCESS);
    k->root = mk_cert(p, k->root_key, "Test Root", NULL, NULL, NULL, "01", CA_NB, CA_NA);
    k->inter = mk_cert(p, k->inter_key, "Test Intermediate", k->root, k->root_key, NULL, "02",
                       CA_NB, CA_NA);
    k->leaf = mk_cert(p, k->leaf_key, "a.test", k->inter, k->inter_key,
                      "DNS:A.Test,DNS:*.b.test,IP:192.0.2.1,IP:2001:db8::1,email:x@a.test",
                      "00F1E2D3C4B5A69788", LEAF_NB, LEAF_NA);
    /* Same name as the root, another key: only the signature tells them apart. */
    k->other_root = mk_cert(p, k->other_key, "Test Root", NULL, NULL, NULL, "0A1B", CA_NB, CA_NA);
    k->leaf_pem = pem_x509(p, k->leaf);
    k->inter_pem = pem_x509(p, k->inter);
    k->root_pem = pem_x509(p, k->root);
    k->other_root_pem = pem_x509(p, k->other_root);
    k->pem = apr_pstrcat(p, k->leaf_pem, k->inter_pem, k->root_pem, NULL);
    return k;
}

static apr_array_header_t *parse_ok(apr_pool_t *p, const char *pem, int n)
{
    apr_array_header_t *chain = NULL;

    assert_int_equal(acme_cert_chain_parse(&chain, pem, strlen(pem), p), APR_SUCCESS);
    assert_non_null(chain);
    assert_int_equal(chain->nelts, n);
    return chain;
}

static apr_array_header_t *strs(apr_pool_t *p, const char *const *v)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    for (; *v; v++) {
        APR_ARRAY_PUSH(a, const char *) = *v;
    }
    return a;
}

#define CERT(chain, i) APR_ARRAY_IDX(chain, i, acme_cert_t *)

static void chain_parse_good(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    apr_array_header_t *chain = parse_ok(p, k->pem, 3);
    const char *pem, *crlf;
    char *c;

    assert_int_equal(X509_cmp(acme_cert_x509(CERT(chain, 0)), k->leaf), 0);
    assert_int_equal(X509_cmp(acme_cert_x509(CERT(chain, 2)), k->root), 0);
    assert_int_equal(acme_cert_to_pem(&pem, CERT(chain, 1), p), APR_SUCCESS);
    assert_string_equal(pem, k->inter_pem);

    /* whitespace around and between blocks, CRLF line ends, no final newline */
    parse_ok(p, apr_pstrcat(p, "\n  \t\r\n", k->leaf_pem, "\n\n", k->inter_pem, NULL), 2);
    crlf = apr_pstrcat(p, k->leaf_pem, k->inter_pem, NULL);
    crlf = apr_pstrdup(p, crlf);
    c = apr_pstrdup(p, "");
    while (*crlf) {
        c = *crlf == '\n' ? apr_pstrcat(p, c, "\r\n", NULL)
                          : apr_pstrcat(p, c, apr_pstrndup(p, crlf, 1), NULL);
        crlf++;
    }
    parse_ok(p, c, 2);
    parse_ok(p, apr_pstrndup(p, k->leaf_pem, strlen(k->leaf_pem) - 1), 1);
}

static const char *pem_block(apr_pool_t *p, const char *name, const char *header,
                             const unsigned char *data, long len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out;
    long n;
    const char *s;

    assert_true(PEM_write_bio(bio, name, header, data, len) > 0);
    n = BIO_get_mem_data(bio, &out);
    s = apr_pstrmemdup(p, out, (apr_size_t)n);
    BIO_free(bio);
    return s;
}

static void chain_parse_bad(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    unsigned char *der = NULL, *padded;
    int derlen = i2d_X509(k->leaf, &der);
    const char *keypem, *trailing, *notcert, *headered;
    apr_size_t klen;
    size_t i;

    assert_true(derlen > 0);
    padded = apr_palloc(p, (apr_size_t)derlen + 2);
    memcpy(padded, der, (apr_size_t)derlen);
    padded[derlen] = padded[derlen + 1] = 0;
    OPENSSL_free(der);
    trailing = pem_block(p, "CERTIFICATE", "", padded, derlen + 2);
    notcert = pem_block(p, "CERTIFICATE", "", (const unsigned char *)"hello", 5);
    headered = pem_block(p, "CERTIFICATE", "Comment: hi\n", padded, derlen);
    assert_int_equal(acme_key_to_pem(&keypem, &klen, k->leaf_key, p), APR_SUCCESS);

    {
        const struct {
            const char *what;
            const char *pem;
            apr_status_t rv;
        } rows[] = {
            {"empty", "", ACME_EBADSTORE},
            {"whitespace only", " \n\r\n\t", ACME_EBADSTORE},
            {"garbage", "this is not a certificate\n", ACME_EBADSTORE},
            {"garbage before", apr_pstrcat(p, "hello\n", k->pem, NULL), ACME_EBADSTORE},
            {"garbage between", apr_pstrcat(p, k->leaf_pem, "Subject: CN=x\n", k->inter_pem, NULL),
             ACME_EBADSTORE},
            {"garbage after", apr_pstrcat(p, k->pem, "x", NULL), ACME_EBADSTORE},
            {"private key in chain", apr_pstrcat(p, k->leaf_pem, keypem, k->inter_pem, NULL),
             ACME_EBADSTORE},
            {"private key only", keypem, ACME_EBADSTORE},
            {"truncated", apr_pstrndup(p, k->pem, strlen(k->pem) - 40), ACME_EBADSTORE},
            {"truncated in base64",
             apr_pstrcat(p, apr_pstrndup(p, k->leaf_pem, 100), "\n", k->inter_pem, NULL),
             ACME_EBADSTORE},
            {"begin only", "-----BEGIN CERTIFICATE-----\n", ACME_EBADSTORE},
            {"empty block", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
             ACME_EBADSTORE},
            {"end only", "-----END CERTIFICATE-----\n", ACME_EBADSTORE},
            {"trailing bytes after DER", trailing, ACME_EBADSTORE},
            {"not DER", notcert, ACME_EBADSTORE},
            {"PEM header", headered, ACME_EBADSTORE},
            {"trusted certificate",
             "-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n",
             ACME_EBADSTORE},
        };

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            apr_array_header_t *chain = NULL;
            print_message("chain_parse: %s\n", rows[i].what);
            assert_int_equal(acme_cert_chain_parse(&chain, rows[i].pem, strlen(rows[i].pem), p),
                             rows[i].rv);
            assert_null(chain);
        }
    }
    {
        /* a NUL inside the text */
        apr_array_header_t *chain = NULL;
        char *withnul = apr_pstrcat(p, k->leaf_pem, "\n", k->inter_pem, NULL);
        withnul[strlen(k->leaf_pem)] = '\0';
        assert_int_equal(acme_cert_chain_parse(&chain, withnul,
                                               strlen(k->leaf_pem) + 1 + strlen(k->inter_pem), p),
                         ACME_EBADSTORE);
        assert_null(chain);
    }
    assert_int_equal(ERR_peek_error(), 0);
}

static void chain_parse_bounds(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    apr_array_header_t *chain = NULL;
    const char *ten = "", *eleven;
    char *big;
    int i;

    for (i = 0; i < ACME_CERT_CHAIN_MAX; i++) {
        ten = apr_pstrcat(p, ten, k->leaf_pem, NULL);
    }
    parse_ok(p, ten, ACME_CERT_CHAIN_MAX);
    eleven = apr_pstrcat(p, ten, k->inter_pem, NULL);
    assert_int_equal(acme_cert_chain_parse(&chain, eleven, strlen(eleven), p), ACME_ETOOLARGE);
    assert_null(chain);

    /* over the byte bound, even when the excess is whitespace */
    big = apr_palloc(p, ACME_CERT_PEM_MAX + 2);
    memset(big, '\n', ACME_CERT_PEM_MAX + 1);
    memcpy(big, k->leaf_pem, strlen(k->leaf_pem));
    big[ACME_CERT_PEM_MAX + 1] = '\0';
    assert_int_equal(acme_cert_chain_parse(&chain, big, ACME_CERT_PEM_MAX + 1, p), ACME_ETOOLARGE);
    assert_null(chain);
    assert_int_equal(acme_cert_chain_parse(&chain, big, ACME_CERT_PEM_MAX, p), APR_SUCCESS);
    assert_int_equal(chain->nelts, 1);
}

static void cert_names_validity_serial(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    apr_array_header_t *chain = parse_ok(p, k->pem, 3), *names;
    static const char *const want[] = {"a.test", "*.b.test", "192.0.2.1", "2001:db8::1"};
    size_t i;

    assert_int_equal(acme_cert_names(&names, CERT(chain, 0), p), APR_SUCCESS);
    assert_int_equal(names->nelts, 4); /* the rfc822Name is no identifier */
    for (i = 0; i < 4; i++) {
        assert_string_equal(APR_ARRAY_IDX(names, (int)i, const char *), want[i]);
    }
    assert_int_equal(acme_cert_names(&names, CERT(chain, 2), p), APR_SUCCESS);
    assert_int_equal(names->nelts, 0);

    assert_true(acme_cert_not_before(CERT(chain, 0)) == apr_time_from_sec(LEAF_NB));
    assert_true(acme_cert_not_after(CERT(chain, 0)) == apr_time_from_sec(LEAF_NA));
    assert_true(acme_cert_not_after(CERT(chain, 1)) == apr_time_from_sec(CA_NA));

    assert_string_equal(acme_cert_serial_hex(CERT(chain, 0), p), "f1e2d3c4b5a69788");
    assert_string_equal(acme_cert_serial_hex(CERT(chain, 1), p), "2");
    chain = parse_ok(p, k->other_root_pem, 1);
    assert_string_equal(acme_cert_serial_hex(CERT(chain, 0), p), "a1b");
}

static void cert_key_and_issuer(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    apr_array_header_t *chain = parse_ok(p, k->pem, 3);
    apr_array_header_t *other = parse_ok(p, k->other_root_pem, 1);
    acme_cert_t *leaf = CERT(chain, 0), *inter = CERT(chain, 1), *root = CERT(chain, 2);

    assert_true(acme_cert_matches_key(leaf, k->leaf_key));
    assert_false(acme_cert_matches_key(leaf, k->inter_key));
    assert_true(acme_cert_matches_key(inter, k->inter_key));

    assert_true(acme_cert_issued_by(leaf, inter));
    assert_true(acme_cert_issued_by(inter, root));
    assert_true(acme_cert_issued_by(root, root));
    assert_false(acme_cert_issued_by(leaf, root));  /* wrong name */
    assert_false(acme_cert_issued_by(inter, leaf)); /* wrong way round */
    /* right name, wrong key */
    assert_false(acme_cert_issued_by(inter, CERT(other, 0)));
    assert_int_equal(ERR_peek_error(), 0);
}

static void cert_covers(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    acme_cert_t *leaf = CERT(parse_ok(p, k->leaf_pem, 1), 0);
    static const struct {
        const char *names[4];
        const char *missing;
    } rows[] = {
        {{"a.test", NULL}, NULL},
        {{"A.TEST", "*.B.test", NULL}, NULL},
        {{"192.0.2.1", "2001:DB8:0::1", NULL}, NULL},
        {{"a.test", "b.test", NULL}, "b.test"}, /* the wildcard is not the base name */
        {{"x.b.test", NULL}, "x.b.test"},       /* a wildcard SAN stands for itself only */
        {{"*.a.test", NULL}, "*.a.test"},
        {{"192.0.2.2", NULL}, "192.0.2.2"},
        {{"2001:db8::2", "a.test", NULL}, "2001:db8::2"},
        {{"x@a.test", NULL}, "x@a.test"},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *missing = NULL;
        apr_status_t rv = acme_cert_covers(leaf, strs(p, rows[i].names), &missing);
        if (rows[i].missing) {
            assert_int_equal(rv, ACME_EBADSTORE);
            assert_string_equal(missing, rows[i].missing);
        } else {
            assert_int_equal(rv, APR_SUCCESS);
            assert_null(missing);
        }
    }
}

static void cert_chain_check(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    apr_array_header_t *good = parse_ok(p, k->pem, 3);
    apr_array_header_t *swapped =
        parse_ok(p, apr_pstrcat(p, k->leaf_pem, k->root_pem, k->inter_pem, NULL), 3);
    apr_array_header_t *foreign =
        parse_ok(p, apr_pstrcat(p, k->leaf_pem, k->inter_pem, k->other_root_pem, NULL), 3);
    apr_array_header_t *empty = apr_array_make(p, 1, sizeof(acme_cert_t *));
    static const char *const an[] = {"a.test", "*.b.test", "192.0.2.1", NULL};
    static const char *const bn[] = {"a.test", "b.test", NULL};
    apr_array_header_t *names_ok = strs(p, an), *names_bad = strs(p, bn);
    apr_time_t inside = apr_time_from_sec(LEAF_NB + 86400);
    const struct {
        const char *what;
        const apr_array_header_t *chain;
        const acme_key_t *key;
        const apr_array_header_t *names;
        apr_time_t now;
        const char *why; /* NULL: success */
    } rows[] = {
        {"all good", good, k->leaf_key, names_ok, inside, NULL},
        {"no key, names or time", good, NULL, NULL, 0, NULL},
        {"leaf alone", parse_ok(p, k->leaf_pem, 1), k->leaf_key, names_ok, inside, NULL},
        {"first second of validity", good, k->leaf_key, names_ok, apr_time_from_sec(LEAF_NB), NULL},
        {"last second of validity", good, k->leaf_key, names_ok, apr_time_from_sec(LEAF_NA), NULL},
        {"wrong key", good, k->inter_key, names_ok, inside,
         "the leaf certificate does not match the private key"},
        {"wrong order", swapped, k->leaf_key, NULL, 0,
         "certificate 1 is not issued by certificate 2"},
        {"foreign root", foreign, k->leaf_key, NULL, 0,
         "certificate 2 is not issued by certificate 3"},
        {"missing name", good, k->leaf_key, names_bad, inside,
         "the certificate does not cover b.test"},
        {"not yet valid, within the skew tolerated", good, k->leaf_key, names_ok,
         apr_time_from_sec(LEAF_NB) - ACME_CERT_SKEW, NULL},
        {"not yet valid", good, k->leaf_key, names_ok,
         apr_time_from_sec(LEAF_NB - 1) - ACME_CERT_SKEW,
         "the certificate is not valid before 2026-12-01 10:00:00 UTC"},
        {"expired", good, k->leaf_key, names_ok, apr_time_from_sec(LEAF_NA + 1),
         "the certificate expired on 2027-03-01 10:00:00 UTC"},
        {"empty chain", empty, NULL, NULL, 0, "the chain holds no certificate"},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *why = NULL;
        apr_status_t rv;
        print_message("chain_check: %s\n", rows[i].what);
        rv = acme_cert_chain_check(rows[i].chain, rows[i].key, rows[i].names, rows[i].now, &why, p);
        if (rows[i].why) {
            assert_int_equal(rv, ACME_EBADSTORE);
            assert_string_equal(why, rows[i].why);
        } else {
            assert_int_equal(rv, APR_SUCCESS);
            assert_null(why);
        }
    }
}

/* The topmost issuer: the issuer CN of the chain's last certificate, whatever that is. */
static void chain_top_issuer(void **state)
{
    apr_pool_t *p = *state;
    pki_t *k = pki_make(p);
    cross_t *c = cross_make(p, "Root A", "Wurzel \xc3\x84 X2");
    acme_key_t *key;
    X509 *orgonly, *under_org;
    apr_array_header_t *empty = apr_array_make(p, 1, sizeof(acme_cert_t *));
    const char *top;

    assert_string_equal(acme_cert_chain_top_issuer(parse_ok(p, k->pem, 3), p), "Test Root");
    assert_string_equal(acme_cert_chain_top_issuer(parse_ok(p, c->via_a, 2), p), "Root A");
    /* UTF-8 names stay UTF-8. */
    assert_string_equal(acme_cert_chain_top_issuer(parse_ok(p, c->via_b, 2), p),
                        "Wurzel \xc3\x84 X2");
    /* A leaf alone: its own issuer. */
    assert_string_equal(acme_cert_chain_top_issuer(parse_ok(p, k->leaf_pem, 1), p),
                        "Test Intermediate");
    /* A chain that ends with a self-signed root: the root's own name. */
    top = acme_cert_chain_top_issuer(parse_ok(p, apr_pstrcat(p, c->via_b, c->root_b_pem, NULL), 3),
                                     p);
    assert_string_equal(top, "Wurzel \xc3\x84 X2");
    /* An issuer named without a CN, and an empty chain: no name. */
    assert_int_equal(acme_key_generate(&key, ACME_KEY_EC256, p), APR_SUCCESS);
    orgonly = mk_cert(p, key, "O=Only An Organization", NULL, NULL, NULL, "05", CA_NB, CA_NA);
    under_org = mk_cert(p, k->leaf_key, "x.test", orgonly, key, "DNS:x.test", "06", CA_NB, CA_NA);
    assert_null(acme_cert_chain_top_issuer(parse_ok(p, pem_x509(p, under_org), 1), p));
    assert_null(acme_cert_chain_top_issuer(empty, p));
    assert_null(acme_cert_chain_top_issuer(NULL, p));
}

/* Which chain ACMEPreferredChain keeps: the first whose topmost issuer is the name, exactly. */
static void chain_pick_table(void **state)
{
    apr_pool_t *p = *state;
    cross_t *c = cross_make(p, "Root A", "Root B");
    apr_array_header_t *a = parse_ok(p, c->via_a, 2), *b = parse_ok(p, c->via_b, 2);
    apr_array_header_t *a_root = parse_ok(p, apr_pstrcat(p, c->via_a, c->root_a_pem, NULL), 3);
    const struct {
        const char *what;
        const char *pref;
        apr_array_header_t *chains[3];
        int n;
        int want;
    } rows[] = {
        {"the default matches", "Root A", {a, b}, 2, 0},
        {"an alternate matches", "Root B", {a, b}, 2, 1},
        {"the default is kept by the caller when none matches", "Root C", {a, b}, 2, -1},
        {"the first of two matching", "Root B", {a, b, b}, 3, 1},
        {"a root at the end is its own issuer", "Root A", {b, a_root}, 2, 1},
        {"letter case counts", "root b", {a, b}, 2, -1},
        {"a prefix is not the name", "Root", {a, b}, 2, -1},
        {"a longer name is not the name", "Root B X", {a, b}, 2, -1},
        {"trailing space counts", "Root B ", {a, b}, 2, -1},
        {"an empty preference picks nothing", "", {a, b}, 2, -1},
        {"no preference picks nothing", NULL, {a, b}, 2, -1},
        {"a chain left out (NULL) is skipped", "Root B", {a, NULL, b}, 3, 2},
        {"nothing offered", "Root A", {NULL}, 0, -1},
    };
    size_t i;
    int j;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        apr_array_header_t *chains = apr_array_make(p, 3, sizeof(apr_array_header_t *));
        print_message("chain_pick: %s\n", rows[i].what);
        for (j = 0; j < rows[i].n; j++) {
            APR_ARRAY_PUSH(chains, apr_array_header_t *) = rows[i].chains[j];
        }
        assert_int_equal(acme_cert_chain_pick(chains, rows[i].pref, p), rows[i].want);
    }
    assert_int_equal(acme_cert_chain_pick(NULL, "Root A", p), -1);
    /* The same certificate, whatever chain it came in. */
    assert_true(acme_cert_same(CERT(a, 0), CERT(b, 0)));
    assert_false(acme_cert_same(CERT(a, 1), CERT(b, 1)));
    assert_false(acme_cert_same(CERT(a, 0), NULL));
}

static void name_syntax_table(void **state)
{
    static const struct {
        const char *s;
        int dns, ip;
    } rows[] = {
        {"a.test", 1, 0},
        {"A-1.b-2.Test", 1, 0},
        {"*.a.test", 1, 0},
        {"xn--bcher-kva.test", 1, 0},
        {"192.0.2.1", 0, 1},
        {"::1", 0, 1},
        {"2001:db8::1", 0, 1},
        {"::ffff:192.0.2.1", 0, 1},
        {"test", 0, 0},
        {"*.test", 0, 0},
        {"", 0, 0},
        {"a..b", 0, 0},
        {".a.test", 0, 0},
        {"a.test.", 0, 0},
        {"-a.test", 0, 0},
        {"a-.test", 0, 0},
        {"a b.test", 0, 0},
        {"a_b.test", 0, 0},
        {"*.a.*.test", 0, 0},
        {"a.*.test", 0, 0},
        {"**.a.test", 0, 0},
        {"*a.test", 0, 0},
        {"*", 0, 0},
        {"1.2.3", 0, 0},
        {"192.0.2.256", 0, 0},
        {"192.0.2.01", 0, 0},
        {"2001:db8::1%eth0", 0, 0},
        {"[2001:db8::1]", 0, 0},
        {"a.test\n", 0, 0},
        {"\xc3\xa4.test", 0, 0},
    };
    char label[80], name[300];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("name: \"%s\"\n", rows[i].s);
        assert_int_equal(acme_name_is_dns(rows[i].s), rows[i].dns);
        assert_int_equal(acme_name_is_ip(rows[i].s), rows[i].ip);
    }
    assert_false(acme_name_is_dns(NULL));
    assert_false(acme_name_is_ip(NULL));

    memset(label, 'a', 63);
    strcpy(label + 63, ".test");
    assert_true(acme_name_is_dns(label)); /* a label of 63 */
    memset(label, 'a', 64);
    strcpy(label + 64, ".test");
    assert_false(acme_name_is_dns(label)); /* a label of 64 */

    /* 253 characters in all is the most: 4 labels of 61 and "test" with their dots */
    for (i = 0; i < 4; i++) {
        memset(name + i * 62, 'a', 61);
        name[i * 62 + 61] = '.';
    }
    strcpy(name + 248, "test0");
    assert_int_equal(strlen(name), 253);
    assert_true(acme_name_is_dns(name));
    strcpy(name + 248, "test01");
    assert_false(acme_name_is_dns(name));
}

typedef struct {
    int type; /* GEN_DNS or GEN_IPADD */
    const char *value;
} san_t;

static X509_REQ *csr_parse(apr_pool_t *p, const unsigned char *der, apr_size_t len)
{
    const unsigned char *q = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)len);

    assert_non_null(req);
    apr_pool_cleanup_register(p, req, req_free_cleanup, apr_pool_cleanup_null);
    assert_true(q == der + len);
    return req;
}

/* The SANs of req as text, "DNS:..." or "IP:...", in order; *pcrit the extension's criticality. */
static apr_array_header_t *csr_sans(apr_pool_t *p, X509_REQ *req, int *pcrit)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    apr_array_header_t *out = apr_array_make(p, 4, sizeof(const char *));
    GENERAL_NAMES *gens;
    int i;

    assert_non_null(exts);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
    *pcrit = X509_EXTENSION_get_critical(sk_X509_EXTENSION_value(exts, 0));
    gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        const unsigned char *d;
        char buf[INET6_ADDRSTRLEN];
        int len;
        if (gn->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(gn->d.dNSName);
            len = ASN1_STRING_length(gn->d.dNSName);
            APR_ARRAY_PUSH(out, const char *) =
                apr_pstrcat(p, "DNS:", apr_pstrmemdup(p, (const char *)d, len), NULL);
        } else {
            assert_int_equal(gn->type, GEN_IPADD);
            d = ASN1_STRING_get0_data(gn->d.iPAddress);
            len = ASN1_STRING_length(gn->d.iPAddress);
            assert_true(len == 4 || len == 16);
            assert_non_null(inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf, sizeof(buf)));
            APR_ARRAY_PUSH(out, const char *) = apr_pstrcat(p, "IP:", buf, NULL);
        }
    }
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return out;
}

#define LONG_NAME "a-very-long-host-name-that-does-not-fit-into-a-common-name.a.test"

static void csr_create_table(void **state)
{
    apr_pool_t *p = *state;
    static const struct {
        acme_key_type_e type;
        const char *names[5];
        const char *sans[5];
        const char *cn; /* NULL: empty subject */
    } rows[] = {
        {ACME_KEY_EC256, {"a.test", NULL}, {"DNS:a.test", NULL}, "a.test"},
        {ACME_KEY_EC384,
         {"a.test", "*.b.test", "192.0.2.1", "2001:DB8:0::1", NULL},
         {"DNS:a.test", "DNS:*.b.test", "IP:192.0.2.1", "IP:2001:db8::1", NULL},
         "a.test"},
        {ACME_KEY_RSA2048,
         {"192.0.2.1", "a.test", NULL},
         {"IP:192.0.2.1", "DNS:a.test", NULL},
         NULL},
        {ACME_KEY_EC256, {LONG_NAME, "a.test", NULL}, {"DNS:" LONG_NAME, "DNS:a.test", NULL}, NULL},
        {ACME_KEY_EC256,
         {"*.a.test", "a.test", NULL},
         {"DNS:*.a.test", "DNS:a.test", NULL},
         "*.a.test"},
    };
    size_t i;
    int j;

    assert_int_equal(strlen(LONG_NAME), 65);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        acme_key_t *key;
        const unsigned char *der;
        apr_size_t len;
        apr_array_header_t *sans;
        X509_REQ *req;
        X509_NAME *subj;
        char cn[256];
        int crit;

        assert_int_equal(acme_key_generate(&key, rows[i].type, p), APR_SUCCESS);
        assert_int_equal(acme_csr_create(&der, &len, key, strs(p, rows[i].names), p), APR_SUCCESS);
        req = csr_parse(p, der, len);
        assert_int_equal(X509_REQ_verify(req, acme_key_evp(key)), 1);
        assert_int_equal(X509_REQ_get_signature_nid(req), rows[i].type == ACME_KEY_RSA2048
                                                              ? NID_sha256WithRSAEncryption
                                                              : NID_ecdsa_with_SHA256);
        assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), acme_key_evp(key)), 1);
        sans = csr_sans(p, req, &crit);
        for (j = 0; rows[i].sans[j]; j++) {
            assert_true(j < sans->nelts);
            assert_string_equal(APR_ARRAY_IDX(sans, j, const char *), rows[i].sans[j]);
        }
        assert_int_equal(sans->nelts, j);
        subj = X509_REQ_get_subject_name(req);
        if (rows[i].cn) {
            assert_int_equal(X509_NAME_entry_count(subj), 1);
            assert_true(X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn)) > 0);
            assert_string_equal(cn, rows[i].cn);
            assert_int_equal(crit, 0);
        } else {
            assert_int_equal(X509_NAME_entry_count(subj), 0);
            assert_int_equal(crit, 1); /* RFC 5280 section 4.2.1.6 */
        }
    }
}

static void csr_rejects_bad_names(void **state)
{
    apr_pool_t *p = *state;
    static const char *const rows[][4] = {
        {NULL},
        {"a.test", "A.TEST", NULL},
        {"a.test", "b.test", "a.test", NULL},
        {"a..b", NULL},
        {"-a.test", NULL},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", NULL},
        {"a.test", "name with space.test", NULL},
        {"*.a.*.test", NULL},
        {"", NULL},
        {"a.test.", NULL},
        {"192.0.2.300", NULL},
    };
    acme_key_t *key;
    size_t i;

    assert_int_equal(strlen(rows[5][0]), 69); /* a label of 64 */
    assert_int_equal(acme_key_generate(&key, ACME_KEY_EC256, p), APR_SUCCESS);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const unsigned char *der = NULL;
        apr_size_t len = 0;
        assert_int_equal(acme_csr_create(&der, &len, key, strs(p, rows[i]), p), APR_EINVAL);
        assert_null(der);
        assert_int_equal(len, 0);
    }
}

static void selfsigned_fallback(void **state)
{
    apr_pool_t *p = *state;
    apr_array_header_t *names = apr_array_make(p, 3, sizeof(const char *)), *chain, *sans;
    apr_time_t now = apr_time_from_sec(apr_time_sec(apr_time_now()));
    const char *pem, *why = NULL;
    apr_size_t len;
    acme_key_t *key, *other;
    acme_cert_t *c;

    APR_ARRAY_PUSH(names, const char *) = "a.test";
    APR_ARRAY_PUSH(names, const char *) = "www.a.test";
    APR_ARRAY_PUSH(names, const char *) = "192.0.2.7";
    assert_int_equal(acme_key_generate(&key, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_key_generate(&other, ACME_KEY_EC256, p), APR_SUCCESS);
    assert_int_equal(acme_selfsigned_create(&pem, &len, key, names, now - apr_time_from_sec(60),
                                            now + apr_time_from_sec(86400), p),
                     APR_SUCCESS);
    assert_int_equal(acme_cert_chain_parse(&chain, pem, len, p), APR_SUCCESS);
    assert_int_equal(chain->nelts, 1);
    c = APR_ARRAY_IDX(chain, 0, acme_cert_t *);
    assert_int_equal(acme_cert_names(&sans, c, p), APR_SUCCESS);
    assert_string_equal(apr_array_pstrcat(p, sans, ' '), "a.test www.a.test 192.0.2.7");
    assert_true(acme_cert_matches_key(c, key));
    assert_false(acme_cert_matches_key(c, other));
    assert_true(acme_cert_issued_by(c, c));
    assert_int_equal(acme_cert_not_after(c), now + apr_time_from_sec(86400));
    assert_int_equal(acme_cert_chain_check(chain, key, names, now, &why, p), APR_SUCCESS);
    /* Bad names are refused as for a CSR. */
    APR_ARRAY_PUSH(names, const char *) = "bad name";
    assert_int_equal(acme_selfsigned_create(&pem, &len, key, names, now, now + 1, p), APR_EINVAL);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(chain_parse_good),    UNIT_TEST(chain_parse_bad),
    UNIT_TEST(chain_parse_bounds),  UNIT_TEST(cert_names_validity_serial),
    UNIT_TEST(cert_key_and_issuer), UNIT_TEST(cert_covers),
    UNIT_TEST(cert_chain_check),    UNIT_TEST(chain_top_issuer),
    UNIT_TEST(chain_pick_table),    UNIT_TEST(name_syntax_table),
    UNIT_TEST(csr_create_table),    UNIT_TEST(csr_rejects_bad_names),
    UNIT_TEST(selfsigned_fallback),
};

UNIT_MAIN("cert", tests)
