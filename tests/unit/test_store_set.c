/* test_store_set.c - certificate sets in the store: staging and loading, refusal of broken and
 * bad sets, promotion and its generations, promotion under a crash at every step, cleanup of
 * leftovers, and threads working on different names. The file layer is tested in test_store.c. */
#include <apr_thread_proc.h>

#include "acme_setcache.h"
#include "store_util.h"

/* The reason given names what is wrong, as the operator reads it in the log. */
static void assert_why(const char *why, const char *needle)
{
    assert_non_null(why);
    if (!strstr(why, needle)) {
        fail_msg("reason \"%s\" does not say \"%s\"", why, needle);
    }
}

/* The active set loads, its key matches its leaf, and it is one of the two given sets, whole.
 * Returns 0 for a, 1 for b. */
static int active_is(acme_store_t *store, const tset_t *a, const tset_t *b, apr_pool_t *p)
{
    acme_certset_t *set = NULL;
    const char *why = NULL, *chain, *key_pem;
    apr_size_t key_len;
    const tset_t *which;

    assert_int_equal(acme_store_load(&set, store, NAME, 0, &why, p), APR_SUCCESS);
    assert_true(acme_cert_matches_key(APR_ARRAY_IDX(set->chain, 0, const acme_cert_t *), set->key));
    chain = read_served(store, "domains/" NAME "/" ACME_STORE_CHAIN_FILE, p);
    assert_true(strcmp(chain, a->pem) == 0 || strcmp(chain, b->pem) == 0);
    which = strcmp(chain, a->pem) == 0 ? a : b;
    assert_int_equal(acme_key_to_pem(&key_pem, &key_len, which->key, p), APR_SUCCESS);
    assert_string_equal(read_served(store, "domains/" NAME "/" ACME_STORE_KEY_FILE, p), key_pem);
    return which == b;
}

static apr_status_t op_promote(acme_store_t *store, apr_pool_t *p)
{
    return acme_store_promote(store, NAME, NULL, apr_time_now(), NULL, p);
}

static apr_status_t op_promote_batch(acme_store_t *store, apr_pool_t *p)
{
    acme_store_batch_t *batch = acme_store_batch_make(p);
    apr_status_t rv = acme_store_promote_in(store, NAME, NULL, apr_time_now(), NULL, batch, p);

    return rv == APR_SUCCESS ? acme_store_promote_done(store, batch, p) : rv;
}

/* ---- staging ---- */

static void stage_checks_and_loads(void **state)
{
    fx_t *fx = *state;
    tset_t s = valid_set(fx->p), other = valid_set(fx->p);
    tset_t later = make_set(fx->p, "DNS:" NAME, 24 * HOUR, 48 * HOUR);
    acme_certset_t *set = NULL;
    const char *why = NULL;

    /* Nothing yet. */
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, &why, fx->p), APR_ENOENT);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, &why, fx->p), APR_ENOENT);
    assert_null(set);

    /* The key of another set, or no chain at all: refused, nothing staged. */
    assert_int_equal(
        acme_store_stage(fx->store, NAME, other.key, s.pem, strlen(s.pem), NULL, &why, fx->p),
        ACME_EBADSTORE);
    assert_why(why, "does not match the private key");
    why = NULL;
    assert_int_equal(acme_store_stage(fx->store, NAME, s.key, "junk", 4, NULL, &why, fx->p),
                     ACME_EBADSTORE);
    assert_why(why, "is not a PEM certificate chain");
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, &why, fx->p), APR_ENOENT);

    /* Staging does not look at the clock: that is promotion's business. */
    why = NULL;
    assert_int_equal(acme_store_stage(fx->store, NAME, later.key, later.pem, strlen(later.pem),
                                      NULL, &why, fx->p),
                     APR_SUCCESS);
    stage_ok(fx->store, &s, fx->p);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, &why, fx->p), APR_SUCCESS);
    assert_string_equal(set->name, NAME);
    assert_int_equal(set->generation, 0);
    assert_string_equal(set->dir, acme_store_path(fx->store, "staging/" NAME, fx->p));
    assert_string_equal(set->key_file,
                        acme_store_path(fx->store, "staging/" NAME "/privkey.pem", fx->p));
    assert_string_equal(set->chain_file,
                        acme_store_path(fx->store, "staging/" NAME "/fullchain.pem", fx->p));
    assert_int_equal(set->chain->nelts, 1);
    assert_string_equal(acme_json_str(set->meta, "source"), "test");
    assert_string_equal(read_text(fx->store, "staging/" NAME "/fullchain.pem", fx->p), s.pem);
    /* No temp folder is left beside the set. */
    assert_int_equal(count_entries(acme_store_path(fx->store, "staging", fx->p), ".tmp", fx->p), 0);
}

static void load_refuses_broken_sets(void **state)
{
    fx_t *fx = *state;
    tset_t s = valid_set(fx->p);
    const char *link = acme_store_path(fx->store, "domains/" NAME, fx->p);
    acme_certset_t *set = NULL;
    const char *why = NULL;

    stage_ok(fx->store, &s, fx->p);
    promote_ok(fx->store, fx->p);
    /* A link pointing out of the archive. */
    assert_int_equal(unlink(link), 0);
    assert_int_equal(symlink("/etc", link), 0);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, &why, fx->p), ACME_EBADSTORE);
    assert_why(why, "domains/" NAME);
    /* A plain file instead of a link. */
    assert_int_equal(unlink(link), 0);
    assert_int_equal(acme_store_write(fx->store, "domains/" NAME, "x", 1, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, &why, fx->p), ACME_EBADSTORE);
    assert_why(why, "domains/" NAME " is not a symlink");
    /* A staged set without its chain, then with a key that is no key. */
    assert_int_equal(acme_store_write(fx->store, "staging/" NAME "/privkey.pem", "junk", 4,
                                      APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, &why, fx->p), ACME_EBADSTORE);
    assert_why(why, "staging/" NAME "/fullchain.pem");
    assert_null(set);
    assert_int_equal(acme_store_write(fx->store, "staging/" NAME "/fullchain.pem", s.pem,
                                      strlen(s.pem), APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, &why, fx->p), ACME_EBADSTORE);
    assert_why(why, "privkey.pem holds no usable private key");
    assert_null(set);
}

/* ---- promotion ---- */

static void promote_refuses_bad_sets(void **state)
{
    fx_t *fx = *state;
    tset_t a = valid_set(fx->p), b = valid_set(fx->p);
    tset_t later = make_set(fx->p, "DNS:" NAME, 48 * HOUR, 72 * HOUR);
    tset_t expired = make_set(fx->p, "DNS:" NAME, -48 * HOUR, -24 * HOUR);
    const char *key_pem, *why = NULL;
    apr_size_t key_len;
    acme_certset_t *set = NULL;
    apr_time_t now = apr_time_now();

    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), APR_ENOENT);
    stage_ok(fx->store, &a, fx->p);
    promote_ok(fx->store, fx->p);
    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), APR_ENOENT);

    /* Names not covered. */
    stage_ok(fx->store, &b, fx->p);
    assert_int_equal(
        acme_store_promote(fx->store, NAME, names_of(fx->p, NAME, "other.test"), now, &why, fx->p),
        ACME_EBADSTORE);
    assert_why(why, "does not cover other.test");
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, NULL, fx->p), APR_SUCCESS);

    /* Not yet valid, and no longer valid. */
    assert_int_equal(acme_store_stage(fx->store, NAME, later.key, later.pem, strlen(later.pem),
                                      NULL, NULL, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), ACME_EBADSTORE);
    assert_why(why, "is not valid before");
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);
    assert_int_equal(acme_store_stage(fx->store, NAME, expired.key, expired.pem,
                                      strlen(expired.pem), NULL, NULL, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), ACME_EBADSTORE);
    assert_why(why, "expired on");
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);

    /* A staged key that is not the chain's (written behind stage's back). */
    assert_int_equal(acme_key_to_pem(&key_pem, &key_len, b.key, fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_write(fx->store, "staging/" NAME "/privkey.pem", key_pem, key_len,
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), ACME_EBADSTORE);
    assert_why(why, "does not match the private key");
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);
    assert_true(exists(acme_store_path(fx->store, "staging/" NAME "/privkey.pem", fx->p)));
    /* Nothing was archived by the refusals. */
    assert_false(exists(acme_store_path(fx->store, "archive/" NAME "/2", fx->p)));

    stage_ok(fx->store, &b, fx->p);
    promote_ok(fx->store, fx->p);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 1);
}

/* The clock skew tolerated (acme_cert.h): a notBefore a few minutes ahead is activated at once;
 * up to a day ahead the set waits in staging; further ahead it is refused. A certificate with
 * more names than asked for is accepted. */
static void promote_tolerates_skew_and_waits(void **state)
{
    fx_t *fx = *state;
    tset_t soon = make_set(fx->p, "DNS:" NAME ",DNS:extra." NAME, 120, 90 * 24 * HOUR);
    tset_t hours = make_set(fx->p, "DNS:" NAME, 2 * HOUR, 90 * 24 * HOUR);
    tset_t days = make_set(fx->p, "DNS:" NAME, 48 * HOUR, 90 * 24 * HOUR);
    apr_time_t now = apr_time_now(), when = 0;
    const char *why = NULL;

    assert_int_equal(
        acme_store_stage(fx->store, NAME, soon.key, soon.pem, strlen(soon.pem), NULL, NULL, fx->p),
        APR_SUCCESS);
    assert_int_equal(acme_store_check_staged_at(fx->store, NAME, names_of(fx->p, NAME, NULL), now,
                                                &when, &why, fx->p),
                     APR_SUCCESS);
    promote_ok(fx->store, fx->p);

    assert_int_equal(acme_store_stage(fx->store, NAME, hours.key, hours.pem, strlen(hours.pem),
                                      NULL, NULL, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_check_staged_at(fx->store, NAME, names_of(fx->p, NAME, NULL), now,
                                                &when, &why, fx->p),
                     APR_EAGAIN);
    assert_true(when > now + 2 * apr_time_from_sec(HOUR) - ACME_CERT_SKEW - apr_time_from_sec(5));
    assert_true(when < now + 2 * apr_time_from_sec(HOUR) - ACME_CERT_SKEW + apr_time_from_sec(5));
    why = NULL;
    assert_int_equal(
        acme_store_promote(fx->store, NAME, names_of(fx->p, NAME, NULL), now, &why, fx->p),
        APR_EAGAIN);
    assert_non_null(strstr(why, "clock is probably behind"));
    assert_true(exists(acme_store_path(fx->store, "staging/" NAME "/fullchain.pem", fx->p)));
    assert_int_equal(active_is(fx->store, &soon, &hours, fx->p), 0);
    /* Once the clock reaches it, it is activated. */
    assert_int_equal(
        acme_store_promote(fx->store, NAME, names_of(fx->p, NAME, NULL), when, &why, fx->p),
        APR_SUCCESS);
    assert_int_equal(active_is(fx->store, &hours, &soon, fx->p), 0);

    assert_int_equal(
        acme_store_stage(fx->store, NAME, days.key, days.pem, strlen(days.pem), NULL, NULL, fx->p),
        APR_SUCCESS);
    why = NULL;
    assert_int_equal(
        acme_store_promote(fx->store, NAME, names_of(fx->p, NAME, NULL), now, &why, fx->p),
        ACME_EBADSTORE);
    assert_non_null(strstr(why, "more than a day ahead"));
}

/* A refused set is moved aside (the newest ACME_STORE_REJECTED_KEEP kept per name) and the
 * refusal recorded where the driver reads it. */
static void reject_keeps_a_few_and_records_why(void **state)
{
    fx_t *fx = *state;
    tset_t a = valid_set(fx->p);
    const char *staging = acme_store_path(fx->store, "staging", fx->p), *aside = NULL;
    acme_refusal_t *ref = NULL;
    apr_time_t t0 = apr_time_from_sec(1800000000);
    int i;

    /* Another name's folder is no business of this name's. */
    assert_int_equal(
        apr_dir_make_recursive(apr_pstrcat(fx->p, staging, "/.rejected.b." NAME ".5", NULL),
                               APR_FPROT_OS_DEFAULT, fx->p),
        APR_SUCCESS);
    assert_int_equal(acme_store_refusal_read(&ref, fx->store, NAME, fx->p), APR_ENOENT);
    for (i = 0; i < 5; i++) {
        stage_ok(fx->store, &a, fx->p);
        assert_int_equal(acme_store_reject(fx->store, NAME, apr_psprintf(fx->p, "reason %d", i),
                                           t0 + apr_time_from_sec(i / 2), &aside, fx->p),
                         APR_SUCCESS);
        assert_false(exists(acme_store_path(fx->store, "staging/" NAME, fx->p)));
        assert_true(exists(acme_store_path(fx->store, aside, fx->p)));
    }
    assert_int_equal(count_entries(staging, ".rejected." NAME ".", fx->p),
                     ACME_STORE_REJECTED_KEEP);
    assert_true(exists(apr_pstrcat(fx->p, staging, "/.rejected." NAME ".1800000002", NULL)));
    assert_true(exists(apr_pstrcat(fx->p, staging, "/.rejected." NAME ".1800000001-1", NULL)));
    assert_true(exists(apr_pstrcat(fx->p, staging, "/.rejected." NAME ".1800000001", NULL)));
    assert_true(exists(apr_pstrcat(fx->p, staging, "/.rejected.b." NAME ".5", NULL)));
    assert_int_equal(acme_store_refusal_read(&ref, fx->store, NAME, fx->p), APR_SUCCESS);
    assert_string_equal(ref->why, "reason 4");
    assert_int_equal(ref->time, t0 + apr_time_from_sec(2));
    assert_string_equal(ref->kept, "staging/.rejected." NAME ".1800000002");
    assert_int_equal(acme_store_refusal_clear(fx->store, NAME, fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_refusal_read(&ref, fx->store, NAME, fx->p), APR_ENOENT);
}

static void promote_counts_generations(void **state)
{
    fx_t *fx = *state;
    tset_t sets[3];
    acme_certset_t *set = NULL;
    char target[256];
    ssize_t n;
    int i;

    /* Files the store does not know are left alone and do not confuse it. */
    assert_int_equal(
        acme_store_write(fx->store, "archive/" NAME "/notes.txt", "x", 1, APR_FPROT_UREAD, fx->p),
        APR_SUCCESS);
    assert_int_equal(
        acme_store_write(fx->store, "archive/" NAME "/7x", "x", 1, APR_FPROT_UREAD, fx->p),
        APR_SUCCESS);
    assert_int_equal(acme_store_write(fx->store, "domains/README", "x", 1, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_write(fx->store, "staging/junk", "x", 1, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_write(fx->store, "unknown", "x", 1, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);

    for (i = 0; i < 3; i++) {
        sets[i] = valid_set(fx->p);
        stage_ok(fx->store, &sets[i], fx->p);
        promote_ok(fx->store, fx->p);
        assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, NULL, fx->p), APR_SUCCESS);
        assert_int_equal(set->generation, i + 1);
        assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, NULL, fx->p), APR_ENOENT);
    }
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, NULL, fx->p), APR_SUCCESS);
    /* mod_ssl gets paths through the link, so a reload after the next swap sees the new set. */
    assert_string_equal(set->dir, acme_store_path(fx->store, "domains/" NAME, fx->p));
    assert_string_equal(set->key_file,
                        acme_store_path(fx->store, "domains/" NAME "/privkey.pem", fx->p));
    assert_string_equal(set->chain_file,
                        acme_store_path(fx->store, "domains/" NAME "/fullchain.pem", fx->p));
    assert_string_equal(acme_json_str(set->meta, "source"), "test");
    n = readlink(acme_store_path(fx->store, "domains/" NAME, fx->p), target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "../archive/" NAME "/3");
    for (i = 0; i < 3; i++) {
        const char *rel = apr_psprintf(fx->p, "archive/%s/%d/fullchain.pem", NAME, i + 1);
        assert_string_equal(read_text(fx->store, rel, fx->p), sets[i].pem);
    }
    assert_true(exists(acme_store_path(fx->store, "archive/" NAME "/notes.txt", fx->p)));
    assert_true(exists(acme_store_path(fx->store, "domains/README", fx->p)));
    assert_true(exists(acme_store_path(fx->store, "staging/junk", fx->p)));
}

static void crash_at_every_step(fx_t *fx, op_fn *op, const char *tag)
{
    static const char *const steps[] = {"archive-write", "open",    "write",          "fsync",
                                        "rename",        "dirsync", "archive-rename", "link",
                                        "link-rename",   "unstage"};
    size_t i;

    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        acme_store_t *store;
        tset_t a = valid_set(fx->p), b = valid_set(fx->p);
        acme_certset_t *staged = NULL;
        const char *root = apr_psprintf(fx->p, "%s/%s-%s", fx->dir, tag, steps[i]);
        int is_new;

        assert_int_equal(acme_store_open(&store, root, fx->p), APR_SUCCESS);
        stage_ok(store, &a, fx->p);
        promote_ok(store, fx->p);
        stage_ok(store, &b, fx->p);

        assert_true(crashed_at(store, steps[i], op, fx->p));
        /* The swap is the one rename of the link: before it the old set, after it the new. */
        is_new = active_is(store, &a, &b, fx->p);
        assert_int_equal(is_new, strcmp(steps[i], "unstage") == 0);
        /* Until the new set is active the staged one is kept for a retry. */
        assert_int_equal(acme_store_load(&staged, store, NAME, 1, NULL, fx->p), APR_SUCCESS);

        /* The retry succeeds and clears what the crash left. */
        promote_ok(store, fx->p);
        assert_int_equal(active_is(store, &a, &b, fx->p), 1);
        assert_int_equal(
            count_entries(acme_store_path(store, "archive/" NAME, fx->p), ".tmp", fx->p), 0);
        assert_int_equal(count_entries(acme_store_path(store, "domains", fx->p), ".lnk", fx->p), 0);
        assert_int_equal(acme_store_load(&staged, store, NAME, 1, NULL, fx->p), APR_ENOENT);
    }
}

static void promote_survives_crash_at_every_step(void **state)
{
    crash_at_every_step(*state, op_promote, "one");
}

/* In a batch the staged set goes only after domains/ is synced: the same outcome at every step. */
static void promote_batch_survives_crash_at_every_step(void **state)
{
    crash_at_every_step(*state, op_promote_batch, "batch");
}

/* The parent's pass promotes in a batch: each link swapped at once, the staged sets cleared
 * only by acme_store_promote_done, after domains/ is synced. */
static void promote_in_batch_unstages_when_done(void **state)
{
    fx_t *fx = *state;
    tset_t a = valid_set(fx->p), b = valid_set(fx->p);
    acme_store_batch_t *batch = acme_store_batch_make(fx->p);
    acme_certset_t *set = NULL;
    const char *why = NULL;

    stage_ok(fx->store, &a, fx->p);
    promote_ok(fx->store, fx->p);
    stage_ok(fx->store, &b, fx->p);
    assert_int_equal(
        acme_store_promote_in(fx->store, NAME, NULL, apr_time_now(), &why, batch, fx->p),
        APR_SUCCESS);
    /* Active now, still staged: a crash here promotes it again at the next start. */
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 1);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, NULL, fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_promote_done(fx->store, batch, fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, NULL, fx->p), APR_ENOENT);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, NULL, fx->p), APR_SUCCESS);
    assert_int_equal(set->generation, 2);
    /* Done twice, or with nothing promoted: nothing happens. */
    assert_int_equal(acme_store_promote_done(fx->store, batch, fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_promote_done(fx->store, NULL, fx->p), APR_SUCCESS);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 1);
}

static void promote_cleans_only_its_leftovers(void **state)
{
    fx_t *fx = *state;
    tset_t s = valid_set(fx->p);
    const char *domains = acme_store_path(fx->store, "domains", fx->p);

    assert_int_equal(acme_store_write(fx->store, "archive/" NAME "/.tmp-4-123/privkey.pem", "x", 1,
                                      APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    assert_int_equal(
        symlink("../archive/" NAME "/4", apr_pstrcat(fx->p, domains, "/." NAME ".lnk-123", NULL)),
        0);
    assert_int_equal(
        symlink("../archive/b.test/1", apr_pstrcat(fx->p, domains, "/.b.test.lnk-1", NULL)), 0);
    assert_int_equal(
        symlink("../archive/x/1", apr_pstrcat(fx->p, domains, "/." NAME ".lnk-1.x", NULL)), 0);
    stage_ok(fx->store, &s, fx->p);
    promote_ok(fx->store, fx->p);
    assert_false(exists(acme_store_path(fx->store, "archive/" NAME "/.tmp-4-123", fx->p)));
    assert_false(exists(apr_pstrcat(fx->p, domains, "/." NAME ".lnk-123", NULL)));
    /* Another name's leftovers, and what is not a leftover, stay. */
    assert_true(exists(apr_pstrcat(fx->p, domains, "/.b.test.lnk-1", NULL)));
    assert_true(exists(apr_pstrcat(fx->p, domains, "/." NAME ".lnk-1.x", NULL)));
}

/* staging/ belongs to the server's User. A link at any level of staging/<name>/<file> that leads
 * to a set for the names (another service's key and certificate) is refused: nothing is copied
 * into archive/, nothing becomes active, and the reason names the link. */
static void promote_refuses_planted_links(void **state)
{
    fx_t *fx = *state;
    static const char *const levels[] = {"staging", "staging/" NAME,
                                         "staging/" NAME "/" ACME_STORE_KEY_FILE,
                                         "staging/" NAME "/" ACME_STORE_CHAIN_FILE};
    const char *elsewhere = apr_pstrcat(fx->p, fx->dir, "/elsewhere", NULL);
    acme_store_t *other;
    tset_t s = valid_set(fx->p);
    size_t i;

    /* A complete, valid set for the names, outside this store. */
    assert_int_equal(acme_store_open(&other, elsewhere, fx->p), APR_SUCCESS);
    stage_ok(other, &s, fx->p);

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        const char *here = acme_store_path(fx->store, levels[i], fx->p);
        const char *staged = acme_store_path(fx->store, "staging/" NAME, fx->p);
        acme_certset_t *set = NULL;
        const char *why = NULL;
        int f;

        /* Real folders above the link, real files beside it. */
        rm_tree(acme_store_path(fx->store, "staging", fx->p));
        if (i >= 2) {
            assert_int_equal(apr_dir_make_recursive(staged, APR_FPROT_OS_DEFAULT, fx->p),
                             APR_SUCCESS);
            for (f = 0; f < 3; f++) {
                const char *file = f == 0   ? ACME_STORE_KEY_FILE
                                   : f == 1 ? ACME_STORE_CHAIN_FILE
                                            : ACME_STORE_META_FILE;
                put_file(apr_pstrcat(fx->p, staged, "/", file, NULL),
                         slurp(acme_store_path(other,
                                               apr_pstrcat(fx->p, "staging/" NAME "/", file, NULL),
                                               fx->p),
                               fx->p));
            }
            assert_int_equal(unlink(here), 0);
        } else if (i == 1) {
            assert_int_equal(mkdir(acme_store_path(fx->store, "staging", fx->p), 0700), 0);
        }
        assert_int_equal(symlink(acme_store_path(other, levels[i], fx->p), here), 0);

        assert_int_equal(acme_store_promote(fx->store, NAME, names_of(fx->p, NAME, NULL),
                                            apr_time_now(), &why, fx->p),
                         ACME_EBADSTORE);
        assert_non_null(why);
        if (i < 2) {
            assert_string_equal(
                why, apr_pstrcat(fx->p, levels[i],
                                 " is a symbolic link, which the store never follows", NULL));
        } else {
            assert_non_null(strstr(why, levels[i]));
        }
        assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, NULL, fx->p), ACME_EBADSTORE);
        assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, NULL, fx->p), APR_ENOENT);
        assert_null(set);
        assert_false(exists(acme_store_path(fx->store, "domains/" NAME, fx->p)));
        assert_false(exists(acme_store_path(fx->store, "archive/" NAME "/1", fx->p)));
        /* What the link leads to is untouched. */
        assert_int_equal(acme_store_load(&set, other, NAME, 1, NULL, fx->p), APR_SUCCESS);
    }
    /* Nor can a new set be staged through a link in place of staging/. */
    rm_tree(acme_store_path(fx->store, "staging", fx->p));
    assert_int_equal(symlink(acme_store_path(other, "staging", fx->p),
                             acme_store_path(fx->store, "staging", fx->p)),
                     0);
    assert_int_equal(
        acme_store_stage(fx->store, NAME, s.key, s.pem, strlen(s.pem), NULL, NULL, fx->p),
        ACME_EBADSTORE);
}

/* A tree the User planted in the staged set, deeper than removal descends at once: the set is
 * activated, the promotion says so, and staging/ is left clean. */
static void promote_over_a_deep_planted_tree(void **state)
{
    fx_t *fx = *state;
    tset_t a = valid_set(fx->p), b = valid_set(fx->p);
    const char *staging = acme_store_path(fx->store, "staging", fx->p);
    int fd;

    stage_ok(fx->store, &a, fx->p);
    promote_ok(fx->store, fx->p);
    stage_ok(fx->store, &b, fx->p);
    fd = open(acme_store_path(fx->store, "staging/" NAME, fx->p), O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    make_deep_tree(fd, 100);
    close(fd);

    promote_ok(fx->store, fx->p);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 1);
    assert_false(exists(acme_store_path(fx->store, "staging/" NAME, fx->p)));
    assert_int_equal(count_entries(staging, NAME, fx->p), 0);
}

/* ---- threads on different names ---- */

#define THREADS 4
#define ROUNDS  4

typedef struct worker_t {
    acme_store_t *store;
    const char *name;
    tset_t sets[ROUNDS];
    int failures;
} worker_t;

static void *APR_THREAD_FUNC worker_run(apr_thread_t *thread, void *data)
{
    worker_t *w = data;
    apr_pool_t *p;
    apr_array_header_t *names;
    int i;

    apr_pool_create_unmanaged(&p);
    names = names_of(p, w->name, NULL);
    for (i = 0; i < ROUNDS; i++) {
        const tset_t *s = &w->sets[i];
        if (acme_store_stage(w->store, w->name, s->key, s->pem, strlen(s->pem), NULL, NULL, p) !=
                APR_SUCCESS ||
            acme_store_promote(w->store, w->name, names, apr_time_now(), NULL, p) != APR_SUCCESS) {
            w->failures++;
        }
    }
    apr_pool_destroy(p);
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static void threads_on_different_names(void **state)
{
    fx_t *fx = *state;
    /* Names that contain one another, so that a leftover of one could pass for the other's. */
    static const char *const names[THREADS] = {NAME, "www." NAME, "a.test.lnk-1", "1." NAME};
    worker_t w[THREADS];
    apr_thread_t *t[THREADS];
    acme_certset_t *set;
    apr_status_t trv;
    int i, r;

    for (i = 0; i < THREADS; i++) {
        w[i].store = fx->store;
        w[i].name = names[i];
        w[i].failures = 0;
        for (r = 0; r < ROUNDS; r++) {
            w[i].sets[r] =
                make_set(fx->p, apr_pstrcat(fx->p, "DNS:", w[i].name, NULL), -HOUR, 24 * HOUR);
        }
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(apr_thread_create(&t[i], NULL, worker_run, &w[i], fx->p), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(apr_thread_join(&trv, t[i]), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].failures, 0);
        assert_int_equal(acme_store_load(&set, fx->store, w[i].name, 0, NULL, fx->p), APR_SUCCESS);
        assert_int_equal(set->generation, ROUNDS);
        assert_string_equal(
            read_served(fx->store,
                        apr_pstrcat(fx->p, "domains/", w[i].name, "/fullchain.pem", NULL), fx->p),
            w[i].sets[ROUNDS - 1].pem);
    }
}

/* The restart thread asks acme_store_check_staged whether a restart would activate a staged set:
 * its verdict is promotion's, for good and bad sets alike, and it changes nothing. */
static void check_staged_agrees_with_promote(void **state)
{
    fx_t *fx = *state;
    const struct {
        tset_t set;
        int other_name; /* the ACMEDomain is a.test and other.test, else a.test alone */
        apr_status_t want;
    } cases[] = {
        {valid_set(fx->p), 1, ACME_EBADSTORE},
        {make_set(fx->p, "DNS:" NAME, 48 * HOUR, 72 * HOUR), 0, ACME_EBADSTORE},
        {make_set(fx->p, "DNS:" NAME, 2 * HOUR, 48 * HOUR), 0, APR_EAGAIN}, /* waits */
        {make_set(fx->p, "DNS:" NAME, -48 * HOUR, -24 * HOUR), 0, ACME_EBADSTORE},
        {make_set(fx->p, "DNS:other.test", -HOUR, 24 * HOUR), 0, ACME_EBADSTORE},
        {valid_set(fx->p), 0, APR_SUCCESS}, /* last: it is promoted */
    };
    apr_array_header_t *both = names_of(fx->p, NAME, "other.test"),
                       *one = names_of(fx->p, NAME, NULL);
    apr_time_t now = apr_time_now();
    const char *why;
    size_t i;

    assert_int_equal(acme_store_check_staged(fx->store, NAME, NULL, now, NULL, fx->p), APR_ENOENT);
    assert_int_equal(acme_store_check_staged(fx->store, "../x", NULL, now, NULL, fx->p),
                     APR_EINVAL);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const apr_array_header_t *n = cases[i].other_name ? both : one;
        stage_ok(fx->store, &cases[i].set, fx->p);
        why = NULL;
        assert_int_equal(acme_store_check_staged(fx->store, NAME, n, now, &why, fx->p),
                         cases[i].want);
        assert_true(cases[i].want == APR_SUCCESS ? why == NULL : why != NULL);
        /* Nothing changed: the set is still staged, nothing was archived. */
        assert_true(exists(acme_store_path(fx->store, "staging/" NAME "/fullchain.pem", fx->p)));
        assert_false(exists(acme_store_path(fx->store, "archive/" NAME "/1", fx->p)));
        assert_int_equal(acme_store_promote(fx->store, NAME, n, now, NULL, fx->p), cases[i].want);
        if (cases[i].want == APR_SUCCESS) {
            assert_int_equal(acme_store_check_staged(fx->store, NAME, n, now, NULL, fx->p),
                             APR_ENOENT);
            assert_true(exists(acme_store_path(fx->store, "archive/" NAME "/1", fx->p)));
        }
    }
}

/* ---- the parent's cache of checked sets (acme_setcache.h) ---- */

static const char *key_pem_of(const acme_key_t *key, apr_pool_t *p)
{
    const char *pem;
    apr_size_t len;

    assert_int_equal(acme_key_to_pem(&pem, &len, key, p), APR_SUCCESS);
    return pem;
}

/* An unchanged active set is decoded once across passes; a key changed in place (same inode,
 * another key of the same size) or replaced is decoded and checked again and refused. */
static void cached_load_checks_changed_files_again(void **state)
{
    fx_t *fx = *state;
    tset_t s = valid_set(fx->p);
    acme_setcache_t *cache = acme_setcache_create(fx->p);
    const char *kpath = acme_store_path(fx->store, "archive/" NAME "/1/privkey.pem", fx->p);
    acme_certset_t *set = NULL;
    const char *why = NULL;
    int pass;

    stage_ok(fx->store, &s, fx->p);
    promote_ok(fx->store, fx->p);
    for (pass = 0; pass < 3; pass++) {
        acme_setcache_pass(cache);
        set = NULL;
        assert_int_equal(acme_store_load_active_cached(&set, fx->store, NAME, cache, &why, fx->p),
                         APR_SUCCESS);
        assert_true(
            acme_cert_matches_key(APR_ARRAY_IDX(set->chain, 0, const acme_cert_t *), set->key));
        assert_string_equal(key_pem_of(set->key, fx->p), key_pem_of(s.key, fx->p));
        assert_string_equal(acme_json_str(set->meta, "source"), "test");
        acme_setcache_pass_done(cache);
        assert_int_equal(acme_setcache_hits(cache), pass); /* decoded at the first pass only */
        assert_int_equal(acme_setcache_count(cache), 1);
    }

    /* Rewritten in place with another key: mtime and ctime move, the set is checked again. */
    put_file(kpath, key_pem_of(make_key(fx->p), fx->p));
    acme_setcache_pass(cache);
    why = NULL;
    assert_int_equal(acme_store_load_active_cached(&set, fx->store, NAME, cache, &why, fx->p),
                     ACME_EBADSTORE);
    assert_why(why, "does not match the private key");
    assert_int_equal(acme_setcache_hits(cache), 2);

    /* Put back (a new inode): checked again, good again, and then known. */
    assert_int_equal(unlink(kpath), 0);
    put_file(kpath, key_pem_of(s.key, fx->p));
    assert_int_equal(chmod(kpath, 0600), 0);
    acme_setcache_pass(cache);
    assert_int_equal(acme_store_load_active_cached(&set, fx->store, NAME, cache, &why, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_setcache_hits(cache), 2);
    acme_setcache_pass(cache);
    assert_int_equal(acme_store_load_active_cached(&set, fx->store, NAME, cache, &why, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_setcache_hits(cache), 3);

    /* A pass that no longer loads it (the domain was removed) drops it. */
    acme_setcache_pass(cache);
    acme_setcache_pass_done(cache);
    assert_int_equal(acme_setcache_count(cache), 0);
}

/* Entries hit only for the very same files: each field of the identity counts. */
static void setcache_hits_only_the_same_files(void **state)
{
    fx_t *fx = *state;
    acme_setcache_t *cache = acme_setcache_create(fx->p);
    const acme_store_file_id_t k = {1, 2, 3, 4, 5}, c = {1, 7, 8, 9, 10};
    acme_store_file_id_t other;
    acme_key_t *key = make_key(fx->p), *got = NULL;
    int field;

    /* Outside a pass (the restart thread's live activations): nothing kept, nothing found. */
    acme_setcache_put(cache, "/s/fallback/a", &k, &c, key);
    assert_false(acme_setcache_get(cache, "/s/fallback/a", &k, &c, NULL, fx->p));
    acme_setcache_pass(cache);
    assert_false(acme_setcache_get(cache, "/s/fallback/a", &k, &c, NULL, fx->p));
    acme_setcache_put(cache, "/s/fallback/a", &k, &c, key);
    assert_true(acme_setcache_get(cache, "/s/fallback/a", &k, &c, &got, fx->p));
    assert_non_null(got);
    assert_int_equal(EVP_PKEY_eq(acme_key_evp(got), acme_key_evp(key)), 1);
    assert_false(acme_setcache_get(cache, "/s/fallback/b", &k, &c, NULL, fx->p));
    for (field = 0; field < 10; field++) {
        acme_setcache_put(cache, "/s/fallback/a", &k, &c, NULL);
        other = field < 5 ? k : c;
        switch (field % 5) {
        case 0:
            other.dev++;
            break;
        case 1:
            other.ino++;
            break;
        case 2:
            other.size++;
            break;
        case 3:
            other.mtime_ns++;
            break;
        default:
            other.ctime_ns++;
            break;
        }
        assert_false(acme_setcache_get(cache, "/s/fallback/a", field < 5 ? &other : &k,
                                       field < 5 ? &c : &other, NULL, fx->p));
        /* A stale entry is forgotten: the same files again miss until put back. */
        assert_false(acme_setcache_get(cache, "/s/fallback/a", &k, &c, NULL, fx->p));
    }
    /* Kept across one pass when used, dropped when a pass does not use it. */
    acme_setcache_put(cache, "/s/fallback/a", &k, &c, NULL);
    acme_setcache_pass(cache);
    assert_true(acme_setcache_get(cache, "/s/fallback/a", &k, &c, NULL, fx->p));
    acme_setcache_pass(cache);
    acme_setcache_pass_done(cache);
    acme_setcache_pass(cache);
    assert_false(acme_setcache_get(cache, "/s/fallback/a", &k, &c, NULL, fx->p));
}

static const struct CMUnitTest tests[] = {
    STORE_TEST(stage_checks_and_loads),
    STORE_TEST(load_refuses_broken_sets),
    STORE_TEST(promote_refuses_bad_sets),
    STORE_TEST(promote_tolerates_skew_and_waits),
    STORE_TEST(reject_keeps_a_few_and_records_why),
    STORE_TEST(promote_counts_generations),
    STORE_TEST(promote_survives_crash_at_every_step),
    STORE_TEST(promote_batch_survives_crash_at_every_step),
    STORE_TEST(promote_in_batch_unstages_when_done),
    STORE_TEST(promote_cleans_only_its_leftovers),
    STORE_TEST(promote_refuses_planted_links),
    STORE_TEST(promote_over_a_deep_planted_tree),
    STORE_TEST(threads_on_different_names),
    STORE_TEST(check_staged_agrees_with_promote),
    STORE_TEST(cached_load_checks_changed_files_again),
    STORE_TEST(setcache_hits_only_the_same_files),
};

UNIT_MAIN("store_set", tests)
