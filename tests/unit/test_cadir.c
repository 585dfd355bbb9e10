/* test_cadir.c - a CA's directory kept in the store between server generations: read back for
 * the same URL within its age, refused when too old, from the future, for another URL with the
 * same folder name, or not what we wrote. */
#include "acme_cadir.h"
#include "store_util.h"

#define CA   "https://127.0.0.1:14000/dir"
#define DIRJ "{\"newNonce\":\"https://127.0.0.1:14000/nonce-plz\"}"
#define T0   apr_time_from_sec(1700000000)

static void read_back_within_its_age(void **state)
{
    fx_t *fx = *state;
    const char *json = NULL;
    apr_interval_time_t age = -1;

    assert_int_equal(acme_cadir_load(&json, &age, fx->store, CA, T0, fx->p), APR_ENOENT);
    assert_int_equal(acme_cadir_save(fx->store, CA, DIRJ, T0, fx->p), APR_SUCCESS);
    assert_int_equal(acme_cadir_load(&json, &age, fx->store, CA, T0 + apr_time_from_sec(5), fx->p),
                     APR_SUCCESS);
    assert_string_equal(json, DIRJ);
    assert_int_equal(age, apr_time_from_sec(5));
    /* A day later it is fetched again. */
    json = NULL;
    assert_int_equal(acme_cadir_load(&json, &age, fx->store, CA,
                                     T0 + ACME_CADIR_MAX_AGE + apr_time_from_sec(1), fx->p),
                     APR_ENOENT);
    assert_null(json);
    /* Written in the future (a clock set back): not trusted. */
    assert_int_equal(
        acme_cadir_load(&json, &age, fx->store, CA, T0 - apr_time_from_sec(3600), fx->p),
        APR_ENOENT);
    /* Same folder name (the scheme is not in it), another URL: not its directory. */
    assert_string_equal(acme_store_ca_id("http://127.0.0.1:14000/dir", fx->p),
                        acme_store_ca_id(CA, fx->p));
    assert_int_equal(
        acme_cadir_load(&json, &age, fx->store, "http://127.0.0.1:14000/dir", T0, fx->p),
        APR_ENOENT);
    /* Forgotten: gone; forgetting again is fine. */
    assert_int_equal(acme_cadir_forget(fx->store, CA, fx->p), APR_SUCCESS);
    assert_int_equal(acme_cadir_load(&json, &age, fx->store, CA, T0, fx->p), APR_ENOENT);
    assert_int_equal(acme_cadir_forget(fx->store, CA, fx->p), APR_SUCCESS);
}

static void refuses_what_we_did_not_write(void **state)
{
    static const char *const bodies[] = {
        "not json",
        "[]",
        "{\"url\":\"" CA "\",\"fetched\":1700000000}",
        "{\"url\":\"" CA "\",\"fetched\":\"1700000000\",\"directory\":{}}",
        "{\"url\":\"" CA "\",\"fetched\":-5,\"directory\":{}}",
        "{\"url\":\"" CA "\",\"fetched\":99999999999999,\"directory\":{}}",
        "{\"url\":7,\"fetched\":1700000000,\"directory\":{}}",
        "{\"url\":\"" CA "\",\"fetched\":1700000000,\"directory\":[]}",
        "{\"url\":\"" CA "\",\"url\":\"" CA "\",\"fetched\":1700000000,\"directory\":{}}",
    };
    fx_t *fx = *state;
    const char *path = apr_pstrcat(fx->p, "jobs/", acme_store_ca_id(CA, fx->p), ".directory", NULL);
    const char *json = NULL;
    apr_interval_time_t age;
    char *big;
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        assert_int_equal(acme_store_write(fx->store, path, bodies[i], strlen(bodies[i]),
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                         APR_SUCCESS);
        assert_int_equal(acme_cadir_load(&json, &age, fx->store, CA, T0, fx->p), ACME_EBADSTORE);
        assert_null(json);
    }
    /* Larger than the bound: not read. */
    big = apr_palloc(fx->p, ACME_CADIR_SIZE_MAX + 2);
    memset(big, ' ', ACME_CADIR_SIZE_MAX + 1);
    big[ACME_CADIR_SIZE_MAX + 1] = '\0';
    assert_int_equal(acme_store_write(fx->store, path, big, strlen(big),
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_cadir_load(&json, &age, fx->store, CA, T0, fx->p), ACME_EBADSTORE);
    /* Nothing is kept that could not be read back, nor what is no directory. */
    big[0] = '{';
    big[1] = '}';
    assert_int_equal(acme_cadir_save(fx->store, CA, big, T0, fx->p), APR_EINVAL);
    assert_int_equal(acme_cadir_save(fx->store, CA, "[1]", T0, fx->p), APR_EINVAL);
}

static const struct CMUnitTest tests[] = {
    STORE_TEST(read_back_within_its_age),
    STORE_TEST(refuses_what_we_did_not_write),
};

UNIT_MAIN("cadir", tests)
