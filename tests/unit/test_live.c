/* test_live.c - the publication slot of ACMEActivation live: what a reader gets, bounds, and
 * that readers in other processes and threads never see half of a set while one writer
 * publishes as fast as it can. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_thread_proc.h>

#include "acme_live.h"
#include "unit.h"

static acme_live_slot_t *slot_make(void)
{
    void *m = mmap(NULL, sizeof(acme_live_slot_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    return m;
}

static void slot_free(acme_live_slot_t *slot)
{
    munmap(slot, sizeof(*slot));
}

static void round_trip(void **state)
{
    apr_pool_t *p = *state;
    acme_live_slot_t *slot = slot_make();
    const char *in[] = {"chain", "", "key\0with a NUL"};
    apr_size_t lens[] = {5, 0, 14};
    const char *out[ACME_LIVE_PARTS];
    apr_size_t olens[ACME_LIVE_PARTS];
    apr_uint32_t gen = 99, g;

    assert_int_equal(acme_live_generation(slot), 0);
    assert_int_equal(acme_live_read(slot, &gen, out, olens, p), APR_ENOENT);
    assert_int_equal(gen, 99); /* out-parameters only on success */
    assert_int_equal(acme_live_publish(slot, in, lens, 3, &g), APR_SUCCESS);
    assert_int_equal(g, 1);
    assert_int_equal(acme_live_generation(slot), 1);
    assert_int_equal(acme_live_read(slot, &gen, out, olens, p), APR_SUCCESS);
    assert_int_equal(gen, 1);
    assert_string_equal(out[0], "chain");
    assert_int_equal(olens[0], 5);
    assert_string_equal(out[1], "");
    assert_int_equal(olens[2], 14);
    assert_memory_equal(out[2], "key\0with a NUL", 15);
    assert_null(out[3]);
    assert_int_equal(olens[3], 0);
    /* The next one replaces it whole. */
    lens[0] = 1;
    assert_int_equal(acme_live_publish(slot, in, lens, 1, &g), APR_SUCCESS);
    assert_int_equal(g, 2);
    assert_int_equal(acme_live_read(slot, &gen, out, olens, p), APR_SUCCESS);
    assert_int_equal(gen, 2);
    assert_string_equal(out[0], "c");
    assert_null(out[1]);
    slot_free(slot);
}

static void bounds(void **state)
{
    apr_pool_t *p = *state;
    acme_live_slot_t *slot = slot_make();
    char *big = apr_palloc(p, ACME_LIVE_DATA_MAX + 1);
    const char *in[ACME_LIVE_PARTS + 1] = {big, big, big, big, big};
    apr_size_t lens[ACME_LIVE_PARTS + 1] = {0};
    const char *out[ACME_LIVE_PARTS];
    apr_size_t olens[ACME_LIVE_PARTS];
    apr_uint32_t g = 0, gen;
    static const struct {
        apr_size_t len0, len1;
        int n;
        apr_status_t rv;
    } rows[] = {
        {0, 0, 0, APR_EINVAL},
        {0, 0, ACME_LIVE_PARTS + 1, APR_EINVAL},
        {ACME_LIVE_DATA_MAX, 0, 1, ACME_ETOOLARGE}, /* no room for its NUL */
        {ACME_LIVE_DATA_MAX + 1, 0, 1, ACME_ETOOLARGE},
        {ACME_LIVE_DATA_MAX / 2, ACME_LIVE_DATA_MAX / 2, 2, ACME_ETOOLARGE},
        {ACME_LIVE_DATA_MAX - 1, 0, 1, APR_SUCCESS}, /* exactly full */
        {ACME_LIVE_DATA_MAX / 2 - 1, ACME_LIVE_DATA_MAX / 2 - 1, 2, APR_SUCCESS},
    };
    size_t i;

    memset(big, 'x', ACME_LIVE_DATA_MAX + 1);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        apr_uint32_t before = acme_live_generation(slot);
        lens[0] = rows[i].len0;
        lens[1] = rows[i].len1;
        assert_int_equal(acme_live_publish(slot, in, lens, rows[i].n, &g), rows[i].rv);
        assert_int_equal(acme_live_generation(slot), before + (rows[i].rv == APR_SUCCESS));
        if (rows[i].rv == APR_SUCCESS) {
            assert_int_equal(acme_live_read(slot, &gen, out, olens, p), APR_SUCCESS);
            assert_int_equal(olens[0], rows[i].len0);
            assert_int_equal(strlen(out[0]), rows[i].len0);
        }
    }
    /* A slot that holds what no writer leaves is refused, never read past its end. */
    slot->nparts = ACME_LIVE_PARTS + 3;
    assert_int_equal(acme_live_read(slot, &gen, out, olens, p), APR_EINVAL);
    slot->nparts = 2;
    slot->len[0] = ACME_LIVE_DATA_MAX;
    assert_int_equal(acme_live_read(slot, &gen, out, olens, p), APR_EINVAL);
    /* A writer inside for good (seq odd): the reader gives up, bounded, instead of waiting. */
    slot->len[0] = 1;
    slot->seq |= 1;
    assert_int_equal(acme_live_read(slot, &gen, out, olens, p), APR_EAGAIN);
    slot_free(slot);
}

/* Generation g's set: part 0 says g, part 1 is (g * 7919) % 20000 bytes of 'a' + g % 26, part
 * 2 the same length of the next letter. A mixed copy fails one of these checks. */
static void set_of(apr_uint32_t g, char *buf1, char *buf2, const char *parts[3], apr_size_t lens[3],
                   char *head)
{
    apr_size_t n = (g * 7919u) % 20000u;
    snprintf(head, 32, "gen=%u", g);
    memset(buf1, 'a' + (int)(g % 26), n);
    memset(buf2, 'a' + (int)((g + 1) % 26), n);
    parts[0] = head;
    lens[0] = strlen(head);
    parts[1] = buf1;
    parts[2] = buf2;
    lens[1] = lens[2] = n;
}

/* Reads until the writer's last generation: every copy must be one whole set. Returns the
 * number of reads that saw a generation newer than the previous one. */
static int read_until(const acme_live_slot_t *slot, apr_uint32_t last, apr_pool_t *p)
{
    apr_uint32_t gen = 0, seen = 0;
    int news = 0;
    apr_pool_t *it;

    apr_pool_create(&it, p);
    while (seen < last) {
        const char *out[ACME_LIVE_PARTS];
        apr_size_t olens[ACME_LIVE_PARTS], n, k;
        char head[32];
        apr_status_t rv;

        apr_pool_clear(it);
        rv = acme_live_read(slot, &gen, out, olens, it);
        if (rv == APR_ENOENT || rv == APR_EAGAIN) {
            continue;
        }
        if (rv != APR_SUCCESS || gen < seen) {
            return -1;
        }
        snprintf(head, sizeof(head), "gen=%u", gen);
        n = (gen * 7919u) % 20000u;
        if (strcmp(out[0], head) != 0 || olens[1] != n || olens[2] != n) {
            return -1;
        }
        for (k = 0; k < n; k++) {
            if (out[1][k] != 'a' + (int)(gen % 26) || out[2][k] != 'a' + (int)((gen + 1) % 26)) {
                return -1;
            }
        }
        news += gen > seen;
        seen = gen;
    }
    apr_pool_destroy(it);
    return news;
}

#define PUBLICATIONS 3000

static void publish_all(acme_live_slot_t *slot, apr_pool_t *p)
{
    char *b1 = apr_palloc(p, 20000), *b2 = apr_palloc(p, 20000), head[32];
    const char *parts[3];
    apr_size_t lens[3];
    apr_uint32_t g, got;

    for (g = 1; g <= PUBLICATIONS; g++) {
        set_of(g, b1, b2, parts, lens, head);
        assert_int_equal(acme_live_publish(slot, parts, lens, 3, &got), APR_SUCCESS);
        assert_int_equal(got, g);
    }
}

typedef struct reader_t {
    acme_live_slot_t *slot;
    int news;
} reader_t;

static void *APR_THREAD_FUNC reader_main(apr_thread_t *t, void *data)
{
    reader_t *r = data;
    apr_pool_t *p;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    r->news = read_until(r->slot, PUBLICATIONS, p);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void readers_in_threads_never_see_half_a_set(void **state)
{
    apr_pool_t *p = *state;
    acme_live_slot_t *slot = slot_make();
    apr_thread_t *threads[3];
    reader_t readers[3];
    apr_status_t trv;
    int i;

    for (i = 0; i < 3; i++) {
        readers[i].slot = slot;
        assert_int_equal(apr_thread_create(&threads[i], NULL, reader_main, &readers[i], p),
                         APR_SUCCESS);
    }
    publish_all(slot, p);
    for (i = 0; i < 3; i++) {
        apr_thread_join(&trv, threads[i]);
        assert_true(readers[i].news >= 1);
    }
    slot_free(slot);
}

static void readers_in_processes_never_see_half_a_set(void **state)
{
    apr_pool_t *p = *state;
    acme_live_slot_t *slot = slot_make();
    pid_t pids[2], victim;
    int i, st;

    for (i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            apr_pool_t *cp;
            apr_pool_create_unmanaged_ex(&cp, NULL, NULL);
            _exit(read_until(slot, PUBLICATIONS, cp) >= 1 ? 0 : 1);
        }
    }
    /* A reader killed in the middle of its copies changes nothing for the others. */
    victim = fork();
    assert_true(victim >= 0);
    if (victim == 0) {
        apr_pool_t *cp;
        apr_pool_create_unmanaged_ex(&cp, NULL, NULL);
        read_until(slot, (apr_uint32_t)-1, cp);
        _exit(0);
    }
    publish_all(slot, p);
    kill(victim, SIGKILL);
    waitpid(victim, &st, 0);
    for (i = 0; i < 2; i++) {
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(read_until(slot, PUBLICATIONS, p), 1);
    slot_free(slot);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(round_trip),
    UNIT_TEST(bounds),
    UNIT_TEST(readers_in_threads_never_see_half_a_set),
    UNIT_TEST(readers_in_processes_never_see_half_a_set),
};

UNIT_MAIN("live", tests)
