/* test_core.c - status texts, log seam, base64url helpers. */
#include "unit.h"

static void b64u_roundtrip(void **state)
{
    apr_pool_t *p = *state;
    static const struct {
        const char *raw;
        const char *b64u;
    } rows[] = {
        {"", ""},        {"f", "Zg"},         {"fo", "Zm8"},
        {"foo", "Zm9v"}, {"\xfb\xff", "-_8"}, /* url alphabet, no padding */
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const unsigned char *out;
        apr_size_t len;
        assert_string_equal(acme_b64u_encode(p, rows[i].raw, strlen(rows[i].raw)), rows[i].b64u);
        assert_int_equal(acme_b64u_decode(&out, &len, rows[i].b64u, strlen(rows[i].b64u), p),
                         APR_SUCCESS);
        assert_int_equal(len, strlen(rows[i].raw));
        assert_memory_equal(out, rows[i].raw, len);
    }
}

static void b64u_rejects_bad_input(void **state)
{
    apr_pool_t *p = *state;
    static const char *bad[] = {"Zg==", "Z", "Zm+v", "Zm/v", "Zm9v\n", "Zm 9v", "Zm9v!"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const unsigned char *out = NULL;
        apr_size_t len = 0;
        assert_int_equal(acme_b64u_decode(&out, &len, bad[i], strlen(bad[i]), p), APR_EINVAL);
        assert_null(out);
    }
}

static void strerror_names_our_codes(void **state)
{
    apr_pool_t *p = *state;
    apr_status_t rv;

    for (rv = ACME_ERR_BASE + 1; rv < ACME_ERR_END; rv++) {
        const char *s = acme_strerror(rv, p);
        assert_non_null(s);
        assert_true(strlen(s) > 5);
    }
    assert_non_null(strstr(acme_strerror(APR_ENOENT, p), "No such file"));
}

static void log_respects_level(void **state)
{
    unit_log_t *ul = unit_log_make(*state);

    ul->log.max_level = ACME_LOG_INFO;
    acme_log(&ul->log, ACME_LOG_DEBUG, APR_SUCCESS, "hidden %d", 1);
    acme_log(&ul->log, ACME_LOG_ERR, APR_EGENERAL, "shown %s", "a.test");
    assert_int_equal(ul->lines->nelts, 1);
    assert_true(unit_log_has(ul, "ERR shown a.test"));
    acme_log(NULL, ACME_LOG_ERR, APR_SUCCESS, "no log, no crash");
}

static void json_str_checks_types(void **state)
{
    json_t *o = acme_json_pool(*state, json_pack("{s:s, s:i}", "a", "x", "b", 3));

    assert_string_equal(acme_json_str(o, "a"), "x");
    assert_null(acme_json_str(o, "b"));
    assert_null(acme_json_str(o, "c"));
    assert_null(acme_json_str(json_object_get(o, "b"), "a"));
}

/* Outside text in a tool's log line: no line breaks, no terminal escapes, UTF-8 kept. */
static void log_escapes_outside_text(void **state)
{
    apr_pool_t *p = *state;
    char small[12];

    assert_string_equal(acme_log_safe("a\nb\rc\x1b[31md\x7f", 0, p),
                        "a\\x0ab\\x0dc\\x1b[31md\\x7f");
    assert_string_equal(acme_log_safe("back\\slash", 0, p), "back\\x5cslash");
    /* C1 controls as UTF-8 (U+009B, CSI) are escaped, other UTF-8 passes */
    assert_string_equal(acme_log_safe("\xc2\x9b"
                                      "2J caf\xc3\xa9 \xc4\x81",
                                      0, p),
                        "\\xc2\\x9b2J caf\xc3\xa9 \xc4\x81");
    assert_string_equal(acme_log_safe("abcdef", 3, p), "abc");
    assert_string_equal(acme_log_safe(NULL, 0, p), "");
    /* cut at a whole escape, never half of one */
    assert_string_equal(acme_log_escape(small, sizeof(small), "abcdefgh\n"), "abcdefgh");
    assert_string_equal(acme_log_escape(small, sizeof(small), "abcdefg\n"), "abcdefg\\x0a");
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(b64u_roundtrip),           UNIT_TEST(b64u_rejects_bad_input),
    UNIT_TEST(strerror_names_our_codes), UNIT_TEST(log_respects_level),
    UNIT_TEST(log_escapes_outside_text), UNIT_TEST(json_str_checks_types),
};

UNIT_MAIN("core", tests)
