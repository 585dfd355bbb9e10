/* test_names.c - the name index (acme_names.h): what a walk of the ACMEDomains in configuration
 * order with strcasecmp found, in constant time, also with many thousands of names. */
#include "acme_names.h"
#include "unit.h"

static void first_added_wins_any_case(void **state)
{
    apr_pool_t *p = *state;
    acme_name_index_t *ix = acme_name_index_make(p);
    int a = 1, b = 2;

    assert_ptr_equal(acme_name_index_add(ix, "www.example.org", &a), &a);
    /* A second certificate naming it gets the first one back (the configuration check's
     * "already in ACMEDomain ..."). */
    assert_ptr_equal(acme_name_index_add(ix, "WWW.Example.ORG", &b), &a);
    assert_ptr_equal(acme_name_index_get(ix, "www.example.org"), &a);
    assert_ptr_equal(acme_name_index_get(ix, "WWW.EXAMPLE.ORG"), &a);
    assert_ptr_equal(acme_name_index_get(ix, "Www.Example.Org"), &a);
    assert_int_equal(acme_name_index_count(ix), 1);
}

static void not_held(void **state)
{
    apr_pool_t *p = *state;
    acme_name_index_t *ix = acme_name_index_make(p);
    char longname[ACME_NAME_INDEX_MAX + 2];
    int a = 1;

    assert_non_null(acme_name_index_add(ix, "example.org", &a));
    assert_null(acme_name_index_get(ix, "example.org."));
    assert_null(acme_name_index_get(ix, "www.example.org"));
    assert_null(acme_name_index_get(ix, "example.or"));
    assert_null(acme_name_index_get(ix, ""));
    assert_null(acme_name_index_get(ix, NULL));
    /* Only ASCII letters fold: a byte above 127 is itself. */
    assert_null(acme_name_index_get(ix, "\xc5xample.org"));
    assert_null(acme_name_index_add(ix, NULL, &a));
    assert_null(acme_name_index_add(ix, "", &a));
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_null(acme_name_index_add(ix, longname, &a));
    assert_null(acme_name_index_get(ix, longname));
    longname[ACME_NAME_INDEX_MAX] = '\0'; /* the longest held */
    assert_ptr_equal(acme_name_index_add(ix, longname, &a), &a);
    assert_ptr_equal(acme_name_index_get(ix, longname), &a);
    assert_int_equal(acme_name_index_count(ix), 2);
}

/* The keys are the index's own copies: the caller's buffer may change after. */
static void keys_copied(void **state)
{
    apr_pool_t *p = *state;
    acme_name_index_t *ix = acme_name_index_make(p);
    char name[] = "a.example.org";
    int a = 1;

    acme_name_index_add(ix, name, &a);
    name[0] = 'b';
    assert_ptr_equal(acme_name_index_get(ix, "a.example.org"), &a);
    assert_null(acme_name_index_get(ix, "b.example.org"));
}

/* 20,000 names (10,000 certificates of two): each found with its own value. */
static void many(void **state)
{
    apr_pool_t *p = *state;
    acme_name_index_t *ix = acme_name_index_make(p);
    int *vals = apr_pcalloc(p, sizeof(int) * 10000);
    int i;

    for (i = 0; i < 10000; i++) {
        assert_ptr_equal(acme_name_index_add(ix, apr_psprintf(p, "d%d.example.org", i), &vals[i]),
                         &vals[i]);
        assert_ptr_equal(
            acme_name_index_add(ix, apr_psprintf(p, "www.d%d.example.org", i), &vals[i]), &vals[i]);
    }
    assert_int_equal(acme_name_index_count(ix), 20000);
    for (i = 0; i < 10000; i++) {
        assert_ptr_equal(acme_name_index_get(ix, apr_psprintf(p, "D%d.Example.org", i)), &vals[i]);
        assert_ptr_equal(acme_name_index_get(ix, apr_psprintf(p, "www.d%d.example.org", i)),
                         &vals[i]);
    }
    assert_null(acme_name_index_get(ix, "d10000.example.org"));
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(first_added_wins_any_case),
    UNIT_TEST(not_held),
    UNIT_TEST(keys_copied),
    UNIT_TEST(many),
};

UNIT_MAIN("names", tests)
