/* test_import.c - what `acmectl import` reads and writes: certbot's renewal configuration, JWK
 * private keys and regr.json, mod_md's md.json, md_store.json pass phrase, account.json and
 * encrypted keys (tables with bad inputs); a source folder read without leaving it (links in,
 * links out, loops, hard links, FIFOs, sizes); and acme_store_activate (checked like a staged set,
 * atomic at every step, the set before kept in archive/). */
#include <openssl/core_names.h>

#include "store_util.h"

#include "acme_import.h"

/* ---- certbot ---- */

static const char CERTBOT_CONF[] = "# renew_before_expiry = 30 days\n"
                                   "version = 2.1.0\n"
                                   "archive_dir = /etc/letsencrypt/archive/c.test\n"
                                   "cert = /etc/letsencrypt/live/c.test/cert.pem\n"
                                   "\n"
                                   "# Options used in the renewal process\n"
                                   "[renewalparams]\n"
                                   "account = c2da3437508c0978e35343bb16372da1\n"
                                   "server = https://127.0.0.1:14000/dir\n"
                                   "authenticator = standalone\n"
                                   "key_type = ecdsa\n";

static void certbot_conf_table(void **state)
{
    static const struct {
        const char *text, *why; /* why: a part of the reason, NULL when it parses */
    } rows[] = {
        {CERTBOT_CONF, NULL},
        {"[renewalparams]\r\naccount=abc\r\nserver = https://acme.example/dir\r\n", NULL},
        {"account = abc\nserver = https://a.example/dir\n", "names no server"},
        {"[renewalparams]\naccount = abc\nserver = http://a.example/dir\n", "not an https URL"},
        {"[renewalparams]\naccount = ../../etc\nserver = https://a.example/dir\n",
         "not an account folder name"},
        {"[renewalparams]\nserver = https://a.example/dir\n", "names no account"},
        {"[renewalparams\naccount = abc\n", "without ]"},
        {"[renewalparams]\njust words\n", "no 'key = value'"},
        {"", "names no server"},
    };
    apr_pool_t *p = ((fx_t *)*state)->p;
    acme_certbot_conf_t *conf;
    const char *why;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        conf = NULL;
        why = NULL;
        if (!rows[i].why) {
            assert_int_equal(
                acme_certbot_conf_parse(&conf, rows[i].text, strlen(rows[i].text), &why, p),
                APR_SUCCESS);
            assert_non_null(conf->server);
            assert_non_null(conf->account);
        } else {
            assert_int_equal(
                acme_certbot_conf_parse(&conf, rows[i].text, strlen(rows[i].text), &why, p),
                ACME_EBADSTORE);
            assert_null(conf);
            assert_non_null(why);
            assert_non_null(strstr(why, rows[i].why));
        }
    }
    assert_int_equal(
        acme_certbot_conf_parse(&conf, CERTBOT_CONF, sizeof(CERTBOT_CONF) - 1, &why, p),
        APR_SUCCESS);
    assert_string_equal(conf->server, "https://127.0.0.1:14000/dir");
    assert_string_equal(conf->account, "c2da3437508c0978e35343bb16372da1");
    assert_string_equal(conf->key_type, "ecdsa");
    assert_string_equal(conf->authenticator, "standalone");
    /* A NUL inside is no text file. */
    assert_int_equal(acme_certbot_conf_parse(&conf, "a\0b", 3, &why, p), ACME_EBADSTORE);
}

static void certbot_account_dir_table(void **state)
{
    static const struct {
        const char *url, *dir;
    } rows[] = {
        {"https://127.0.0.1:14000/dir", "accounts/127.0.0.1:14000/dir"},
        {"https://acme-v02.api.letsencrypt.org/directory",
         "accounts/acme-v02.api.letsencrypt.org/directory"},
        {"http://a.example/dir", NULL},
        {"https://a.example/../../etc", NULL},
        {"https://a.example//dir", NULL},
        {"https://a.example/dir?x=1", NULL},
    };
    apr_pool_t *p = ((fx_t *)*state)->p;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *dir = acme_certbot_account_dir(rows[i].url, p);
        if (rows[i].dir) {
            assert_non_null(dir);
            assert_string_equal(dir, rows[i].dir);
        } else {
            assert_null(dir);
        }
    }
}

/* The private JWK of key, as certbot writes it (josepy): every member base64url. */
static const char *jwk_of(const acme_key_t *key, apr_pool_t *p)
{
    static const char *const rsa[][2] = {
        {"n", OSSL_PKEY_PARAM_RSA_N},          {"e", OSSL_PKEY_PARAM_RSA_E},
        {"d", OSSL_PKEY_PARAM_RSA_D},          {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
        {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
        {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
    };
    EVP_PKEY *evp = acme_key_evp(key);
    json_t *pub = NULL, *jwk;
    const char *text;
    char *dumped;
    size_t i;

    assert_int_equal(acme_key_jwk(&pub, key, p), APR_SUCCESS);
    jwk = acme_json_pool(p, json_deep_copy(pub));
    if (EVP_PKEY_is_a(evp, "RSA")) {
        for (i = 0; i < sizeof(rsa) / sizeof(rsa[0]); i++) {
            BIGNUM *bn = NULL;
            unsigned char buf[1024];
            int n;
            assert_int_equal(EVP_PKEY_get_bn_param(evp, rsa[i][1], &bn), 1);
            n = BN_bn2bin(bn, buf);
            json_object_set_new(jwk, rsa[i][0],
                                json_string(acme_b64u_encode(p, buf, (apr_size_t)n)));
            BN_free(bn);
        }
    } else {
        BIGNUM *bn = NULL;
        unsigned char buf[64];
        int n = EVP_PKEY_get_bits(evp) / 8;
        assert_int_equal(EVP_PKEY_get_bn_param(evp, OSSL_PKEY_PARAM_PRIV_KEY, &bn), 1);
        assert_int_equal(BN_bn2binpad(bn, buf, n), n);
        json_object_set_new(jwk, "d", json_string(acme_b64u_encode(p, buf, (apr_size_t)n)));
        BN_free(bn);
    }
    dumped = json_dumps(jwk, JSON_COMPACT);
    text = apr_pstrdup(p, dumped);
    free(dumped);
    return text;
}

static void jwk_private_keys_round_trip(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    static const acme_key_type_e types[] = {ACME_KEY_EC256, ACME_KEY_EC384, ACME_KEY_RSA2048};
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        acme_key_t *key = NULL, *back = NULL;
        const char *jwk, *t1 = NULL, *t2 = NULL, *why = NULL;
        assert_int_equal(acme_key_generate(&key, types[i], p), APR_SUCCESS);
        jwk = jwk_of(key, p);
        assert_int_equal(acme_import_jwk_key(&back, jwk, strlen(jwk), &why, p), APR_SUCCESS);
        assert_int_equal(acme_key_type(back), types[i]);
        assert_int_equal(acme_key_thumbprint(&t1, key, p), APR_SUCCESS);
        assert_int_equal(acme_key_thumbprint(&t2, back, p), APR_SUCCESS);
        assert_string_equal(t1, t2);
    }
}

/* RFC 7517 appendix A.2, the EC P-256 private key. */
#define RFC7517_EC                                                                                 \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","     \
    "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\",\"d\":\"%s\",\"use\":\"enc\","          \
    "\"kid\":\"1\"}"

static void jwk_private_key_table(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    static const struct {
        const char *d; /* for RFC7517_EC, or NULL: text is the whole JWK */
        const char *text;
        apr_status_t rv;
    } rows[] = {
        {"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE", NULL, APR_SUCCESS},
        /* d of another key: the halves do not belong together */
        {"970MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE", NULL, ACME_EBADSTORE},
        {"not*base64url", NULL, ACME_EBADSTORE},
        {NULL, "{\"kty\":\"oct\",\"k\":\"AAEC\"}", APR_ENOTIMPL},
        {NULL, "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\",\"d\":\"AA\"}",
         APR_ENOTIMPL},
        {NULL, "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", ACME_EBADSTORE},
        {NULL, "{\"n\":\"AQAB\"}", ACME_EBADSTORE},
        {NULL, "[1,2]", ACME_EBADSTORE},
        {NULL, "{\"kty\":", ACME_EBADSTORE},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *text = rows[i].d ? apr_psprintf(p, RFC7517_EC, rows[i].d) : rows[i].text;
        const char *why = NULL;
        acme_key_t *key = NULL;
        apr_status_t rv = acme_import_jwk_key(&key, text, strlen(text), &why, p);
        assert_int_equal(rv, rows[i].rv);
        if (rv == APR_SUCCESS) {
            assert_int_equal(acme_key_type(key), ACME_KEY_EC256);
        } else {
            assert_null(key);
            assert_non_null(why);
            assert_null(strstr(why, "870MB6")); /* never key material in a reason */
        }
    }
}

static void certbot_regr_table(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    const char *url = NULL, *why = NULL;
    const char *good = "{\"body\": {}, \"uri\": \"https://127.0.0.1:14000/my-account/1\"}";

    assert_int_equal(acme_certbot_regr_url(&url, good, strlen(good), &why, p), APR_SUCCESS);
    assert_string_equal(url, "https://127.0.0.1:14000/my-account/1");
    url = NULL;
    assert_int_equal(acme_certbot_regr_url(&url, "{\"body\":{}}", 11, &why, p), ACME_EBADSTORE);
    assert_int_equal(acme_certbot_regr_url(&url, "{\"uri\":\"http://x/1\"}", 20, &why, p),
                     ACME_EBADSTORE);
    assert_int_equal(acme_certbot_regr_url(&url, "nope", 4, &why, p), ACME_EBADSTORE);
    assert_null(url);
}

/* ---- mod_md ---- */

static const char MD_JSON[] =
    "{\"name\": \"m.test\", \"domains\": [\"m.test\", \"www.m.test\"],"
    " \"contacts\": [\"mailto:admin@m.test\"], \"transitive\": 1,"
    " \"ca\": {\"account\": \"ACME-127.0.0.1-0000\", \"proto\": \"ACME\","
    " \"url\": \"https://127.0.0.1:14000/dir\", \"urls\": [\"https://127.0.0.1:14000/dir\"],"
    " \"agreement\": \"accepted\", \"challenges\": [\"http-01\"]},"
    " \"privkey\": [{\"type\": \"EC\", \"curve\": \"secp256r1\"}, {\"type\": \"RSA\", \"bits\": "
    "2048}], \"state\": 2, \"renew-window\": \"33%\"}";

static void md_json_table(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    acme_md_t *md = NULL;
    const char *why = NULL, *text;

    assert_int_equal(acme_md_parse(&md, MD_JSON, sizeof(MD_JSON) - 1, &why, p), APR_SUCCESS);
    assert_string_equal(md->name, "m.test");
    assert_int_equal(md->domains->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(md->domains, 1, const char *), "www.m.test");
    assert_string_equal(md->ca_url, "https://127.0.0.1:14000/dir");
    assert_string_equal(md->account, "ACME-127.0.0.1-0000");
    assert_int_equal(md->key_types->nelts, 2);
    assert_int_equal(APR_ARRAY_IDX(md->key_types, 0, acme_key_type_e), ACME_KEY_EC256);
    assert_int_equal(APR_ARRAY_IDX(md->key_types, 1, acme_key_type_e), ACME_KEY_RSA2048);
    assert_string_equal(APR_ARRAY_IDX(md->contacts, 0, const char *), "mailto:admin@m.test");

    /* An older md.json: "url" alone, one key spec as an object. */
    text = "{\"name\":\"o.test\",\"domains\":[\"o.test\"],\"ca\":{\"url\":\"https://ca/dir\","
           "\"account\":\"ACME-ca-0001\"},\"privkey\":{\"type\":\"RSA\",\"bits\":4096}}";
    assert_int_equal(acme_md_parse(&md, text, strlen(text), &why, p), APR_SUCCESS);
    assert_string_equal(md->ca_url, "https://ca/dir");
    assert_int_equal(APR_ARRAY_IDX(md->key_types, 0, acme_key_type_e), ACME_KEY_RSA4096);
    /* No key spec: mod_md's default, RSA 2048; an account name with a slash is none. */
    text = "{\"name\":\"d.test\",\"domains\":[\"d.test\"],\"ca\":{\"account\":\"../x\"}}";
    assert_int_equal(acme_md_parse(&md, text, strlen(text), &why, p), APR_SUCCESS);
    assert_int_equal(md->key_types->nelts, 1);
    assert_int_equal(APR_ARRAY_IDX(md->key_types, 0, acme_key_type_e), ACME_KEY_RSA2048);
    assert_null(md->account);
    assert_null(md->ca_url);
    /* A curve we have no type for is counted, not guessed. */
    text = "{\"name\":\"e.test\",\"domains\":[\"e.test\"],\"privkey\":[{\"type\":\"EC\","
           "\"curve\":\"secp521r1\"},{\"type\":\"EC\",\"curve\":\"P-384\"}]}";
    assert_int_equal(acme_md_parse(&md, text, strlen(text), &why, p), APR_SUCCESS);
    assert_int_equal(md->key_types->nelts, 1);
    assert_int_equal(md->key_types_unknown, 1);
    assert_int_equal(APR_ARRAY_IDX(md->key_types, 0, acme_key_type_e), ACME_KEY_EC384);
    /* Refused: no domains, a domain that is no string, not an object, not JSON. */
    md = NULL;
    text = "{\"name\":\"x.test\"}";
    assert_int_equal(acme_md_parse(&md, text, strlen(text), &why, p), ACME_EBADSTORE);
    text = "{\"name\":\"x.test\",\"domains\":[\"x.test\",7]}";
    assert_int_equal(acme_md_parse(&md, text, strlen(text), &why, p), ACME_EBADSTORE);
    assert_int_equal(acme_md_parse(&md, "[]", 2, &why, p), ACME_EBADSTORE);
    assert_int_equal(acme_md_parse(&md, "{\"name\"", 7, &why, p), ACME_EBADSTORE);
    assert_null(md);
}

static void md_store_and_account_table(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    const char *store = "{\"store\": {\"version\": 3.0}, \"key\": "
                        "\"Y8J84Rr7jDHWVWPYGCzBKg2IK45cW5n8B7CKOmIbXoZEPkL-2Ot59MpOrk2pobYy\"}";
    const char *acct = "{\"status\": \"valid\", \"url\": \"https://ca/my-account/4\","
                       " \"ca-url\": \"https://ca/dir\", \"contact\": [\"mailto:a@b.test\"]}";
    const unsigned char *pass = NULL;
    acme_md_account_t *a = NULL;
    const char *why = NULL;
    apr_size_t len = 0;

    assert_int_equal(acme_md_store_pass(&pass, &len, store, strlen(store), &why, p), APR_SUCCESS);
    assert_int_equal(len, 48);
    assert_int_equal(acme_md_store_pass(&pass, &len, "{\"store\":{}}", 12, &why, p),
                     ACME_EBADSTORE);
    assert_int_equal(acme_md_store_pass(&pass, &len, "{\"key\":\"a+b/\"}", 14, &why, p),
                     ACME_EBADSTORE);

    assert_int_equal(acme_md_account_parse(&a, acct, strlen(acct), &why, p), APR_SUCCESS);
    assert_string_equal(a->url, "https://ca/my-account/4");
    assert_string_equal(a->ca_url, "https://ca/dir");
    assert_string_equal(a->status, "valid");
    assert_int_equal(a->contacts->nelts, 1);
    a = NULL;
    assert_int_equal(acme_md_account_parse(&a, "{\"url\":\"ftp://x\"}", 17, &why, p),
                     ACME_EBADSTORE);
    assert_null(a);
}

/* A key written as mod_md writes account keys: PKCS#8, AES-256-CBC, the raw pass phrase. */
static const char *encrypted_pem(const acme_key_t *key, const unsigned char *pass, int len,
                                 apr_pool_t *p)
{
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem;
    const char *pem;

    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, acme_key_evp(key), EVP_aes_256_cbc(),
                                                   (const char *)pass, len, NULL, NULL),
                     1);
    BIO_get_mem_ptr(bio, &mem);
    pem = apr_pstrmemdup(p, mem->data, mem->length);
    BIO_free(bio);
    return pem;
}

static void pem_key_pass_phrase(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    unsigned char pass[48], wrong[48];
    acme_key_t *key = make_key(p), *back = NULL;
    const char *pem, *why = NULL, *t1 = NULL, *t2 = NULL;

    memset(pass, 0, sizeof(pass)); /* a NUL inside: the pass phrase is bytes, not text */
    pass[5] = 0x42;
    memcpy(wrong, pass, sizeof(wrong));
    wrong[47] = 1;
    pem = encrypted_pem(key, pass, sizeof(pass), p);
    assert_non_null(strstr(pem, "ENCRYPTED"));
    assert_int_equal(acme_import_pem_key(&back, pem, strlen(pem), pass, sizeof(pass), &why, p),
                     APR_SUCCESS);
    assert_int_equal(acme_key_thumbprint(&t1, key, p), APR_SUCCESS);
    assert_int_equal(acme_key_thumbprint(&t2, back, p), APR_SUCCESS);
    assert_string_equal(t1, t2);
    back = NULL;
    assert_int_equal(acme_import_pem_key(&back, pem, strlen(pem), wrong, sizeof(wrong), &why, p),
                     ACME_EBADSTORE);
    assert_non_null(strstr(why, "does not open"));
    assert_int_equal(acme_import_pem_key(&back, pem, strlen(pem), NULL, 0, &why, p),
                     ACME_EBADSTORE);
    assert_non_null(strstr(why, "no pass phrase"));
    assert_int_equal(acme_import_pem_key(&back, "garbage", 7, NULL, 0, &why, p), ACME_EBADSTORE);
    assert_null(back);
}

/* ---- the source folder ---- */

static void src_links_stay_inside(void **state)
{
    fx_t *fx = *state;
    apr_pool_t *p = fx->p;
    const char *top = apr_pstrcat(p, fx->dir, "/le", NULL), *why;
    acme_import_src_t *src = NULL;
    apr_array_header_t *names = NULL;
    char *data;
    apr_size_t len;
    static const struct {
        const char *path, *why; /* why NULL: reads "key" */
    } rows[] = {
        {"archive/a.test/privkey1.pem", NULL},
        {"live/a.test/privkey.pem", NULL},   /* ../../archive/a.test/privkey1.pem */
        {"live/abs/privkey.pem", NULL},      /* absolute, inside */
        {"live/dirlink/privkey1.pem", NULL}, /* a link to a folder inside */
        {"live/a.test/../a.test/privkey.pem", NULL},
        {"live/out/privkey.pem", "leads out of"}, /* ../../../secret */
        {"live/absout/privkey.pem", "leads out of"},
        {"live/loop/privkey.pem", "symbolic links"},
        {"live/hard/privkey.pem", "hard link"},
        {"live/fifo/privkey.pem", "not a plain file"},
        {"../secret", "climbs out"},
        {"live/a.test", "not a plain file"},
    };
    size_t i;

    assert_int_equal(mkdir(top, 0700), 0);
    put_file(apr_pstrcat(p, fx->dir, "/secret", NULL), "secret");
    assert_int_equal(system(apr_psprintf(
                         p,
                         "cd %s && mkdir -p archive/a.test live/a.test live/abs live/out "
                         "live/absout live/loop live/hard live/fifo && printf key > "
                         "archive/a.test/privkey1.pem && ln -s ../../archive/a.test/privkey1.pem "
                         "live/a.test/privkey.pem && ln -s %s/archive/a.test/privkey1.pem "
                         "live/abs/privkey.pem && ln -s ../archive/a.test live/dirlink && ln -s "
                         "../../../secret live/out/privkey.pem && ln -s %s/secret "
                         "live/absout/privkey.pem && ln -s privkey.pem live/loop/privkey.pem && "
                         "printf key > live/hard/k && ln live/hard/k live/hard/privkey.pem && "
                         "mkfifo live/fifo/privkey.pem",
                         top, top, fx->dir)),
                     0);
    assert_int_equal(acme_import_src_open(&src, top, p), APR_SUCCESS);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        apr_status_t rv;
        why = NULL;
        data = NULL;
        rv = acme_import_read(&data, &len, src, rows[i].path, 100, &why, p);
        if (!rows[i].why) {
            assert_int_equal(rv, APR_SUCCESS);
            assert_string_equal(data, "key");
        } else {
            assert_int_equal(rv, ACME_EBADSTORE);
            assert_null(data);
            assert_non_null(why);
            assert_non_null(strstr(why, rows[i].why));
        }
    }
    /* Bounded, and missing is missing. */
    assert_int_equal(acme_import_read(&data, &len, src, "live/a.test/privkey.pem", 2, &why, p),
                     ACME_ETOOLARGE);
    assert_true(APR_STATUS_IS_ENOENT(acme_import_read(&data, &len, src, "nothing", 2, &why, p)));
    /* Opened by a link to it, absolute links through that path stay inside too. */
    assert_int_equal(system(apr_psprintf(p,
                                         "cd %s && ln -s le le-link && mkdir le/live/vialink && ln "
                                         "-s %s/le-link/archive/a.test/privkey1.pem "
                                         "le/live/vialink/privkey.pem",
                                         fx->dir, fx->dir)),
                     0);
    assert_int_equal(acme_import_src_open(&src, apr_pstrcat(p, fx->dir, "/le-link", NULL), p),
                     APR_SUCCESS);
    assert_int_equal(acme_import_read(&data, &len, src, "live/vialink/privkey.pem", 100, &why, p),
                     APR_SUCCESS);
    assert_int_equal(acme_import_read(&data, &len, src, "live/abs/privkey.pem", 100, &why, p),
                     APR_SUCCESS);
    assert_int_equal(acme_import_read(&data, &len, src, "live/absout/privkey.pem", 100, &why, p),
                     ACME_EBADSTORE);
    /* Listing goes the same way. */
    assert_int_equal(acme_import_list(&names, src, "live/dirlink", &why, p), APR_SUCCESS);
    assert_int_equal(names->nelts, 1);
    assert_int_equal(acme_import_list(&names, src, "live/out/privkey.pem/..", &why, p),
                     ACME_EBADSTORE);
}

/* ---- acme_store_activate ---- */

static apr_status_t activate(acme_store_t *store, const tset_t *s, apr_pool_t *p)
{
    const char *why = NULL;
    json_t *meta = acme_json_pool(p, json_pack("{s:s}", "imported-from", "test"));

    return acme_store_activate(store, NAME, s->key, s->pem, strlen(s->pem), meta,
                               names_of(p, NAME, "www." NAME), apr_time_now(), &why, p);
}

static tset_t crash_set;

static apr_status_t activate_crash_set(acme_store_t *store, apr_pool_t *p)
{
    return activate(store, &crash_set, p);
}

static void store_activate(void **state)
{
    fx_t *fx = *state;
    apr_pool_t *p = fx->p;
    tset_t a = valid_set(p), b = valid_set(p), other = valid_set(p);
    tset_t expired = make_set(p, "DNS:" NAME ",DNS:www." NAME, -90 * 24 * HOUR, -HOUR);
    tset_t narrow = make_set(p, "DNS:" NAME, -HOUR, 90 * 24 * HOUR);
    const char *link = apr_pstrcat(p, fx->dir, "/store/domains/" NAME, NULL), *why = NULL;
    const char *steps[] = {"archive-write", "archive-rename", "link", "link-rename"};
    char target[256];
    ssize_t n;
    size_t i;

    assert_int_equal(activate(fx->store, &a, p), APR_SUCCESS);
    n = readlink(link, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "../archive/" NAME "/1");
    assert_string_equal(read_served(fx->store, "domains/" NAME "/fullchain.pem", p), a.pem);
    assert_non_null(strstr(read_served(fx->store, "domains/" NAME "/meta.json", p), "imported"));

    /* Refused like a staged set: another key, expired, names missing; nothing changes. */
    assert_int_equal(acme_store_activate(fx->store, NAME, other.key, a.pem, strlen(a.pem), NULL,
                                         names_of(p, NAME, NULL), apr_time_now(), &why, p),
                     ACME_EBADSTORE);
    assert_non_null(strstr(why, "does not match"));
    assert_int_equal(activate(fx->store, &expired, p), ACME_EBADSTORE);
    assert_int_equal(activate(fx->store, &narrow, p), ACME_EBADSTORE);
    assert_int_equal(
        acme_store_activate(fx->store, NAME, a.key, "junk", 4, NULL, NULL, apr_time_now(), &why, p),
        ACME_EBADSTORE);
    assert_false(exists(apr_pstrcat(p, fx->dir, "/store/archive/" NAME "/2", NULL)));
    assert_string_equal(read_served(fx->store, "domains/" NAME "/fullchain.pem", p), a.pem);

    /* A crash at every step leaves the old set or the new one active, whole. */
    crash_set = b;
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const char *served;
        assert_true(crashed_at(fx->store, steps[i], activate_crash_set, p));
        served = read_served(fx->store, "domains/" NAME "/fullchain.pem", p);
        assert_true(strcmp(served, a.pem) == 0 || strcmp(served, b.pem) == 0);
    }
    assert_int_equal(activate(fx->store, &b, p), APR_SUCCESS);
    assert_string_equal(read_served(fx->store, "domains/" NAME "/fullchain.pem", p), b.pem);
    /* The set before stays in archive/. */
    assert_string_equal(read_text(fx->store, "archive/" NAME "/1/fullchain.pem", p), a.pem);
}

static const struct CMUnitTest tests[] = {
    STORE_TEST(certbot_conf_table),          STORE_TEST(certbot_account_dir_table),
    STORE_TEST(jwk_private_keys_round_trip), STORE_TEST(jwk_private_key_table),
    STORE_TEST(certbot_regr_table),          STORE_TEST(md_json_table),
    STORE_TEST(md_store_and_account_table),  STORE_TEST(pem_key_pass_phrase),
    STORE_TEST(src_links_stay_inside),       STORE_TEST(store_activate),
};

UNIT_MAIN("import", tests)
