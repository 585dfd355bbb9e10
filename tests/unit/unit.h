/* unit.h - what the cmocka unit tests share: a pool per test, a log that records lines, and a
 * clock whose time only moves when a test (or a sleep) moves it. */
#ifndef ACME_UNIT_H
#define ACME_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "acme_core.h"

typedef struct unit_log_t {
    acme_log_t log;
    apr_array_header_t *lines; /* const char *: "LEVEL message" */
} unit_log_t;

static inline void unit_log_fn(void *baton, acme_log_level_e level, apr_status_t rv,
                               const char *msg)
{
    unit_log_t *ul = baton;
    static const char *names[] = {"ERR", "WARN", "NOTICE", "INFO", "DEBUG", "TRACE"};
    APR_ARRAY_PUSH(ul->lines, const char *) =
        apr_psprintf(ul->lines->pool, "%s %s", names[level], msg);
    (void)rv;
}

static inline unit_log_t *unit_log_make(apr_pool_t *p)
{
    unit_log_t *ul = apr_pcalloc(p, sizeof(*ul));
    ul->log.fn = unit_log_fn;
    ul->log.baton = ul;
    ul->log.max_level = ACME_LOG_TRACE;
    ul->lines = apr_array_make(p, 8, sizeof(const char *));
    return ul;
}

/* 1 when some recorded line contains needle. */
static inline int unit_log_has(const unit_log_t *ul, const char *needle)
{
    int i;
    for (i = 0; i < ul->lines->nelts; i++) {
        if (strstr(APR_ARRAY_IDX(ul->lines, i, const char *), needle)) {
            return 1;
        }
    }
    return 0;
}

typedef struct unit_clock_t {
    acme_clock_t clock;
    apr_time_t now;
    apr_interval_time_t slept; /* total of all sleeps */
    int sleeps;
} unit_clock_t;

static inline apr_time_t unit_clock_now(void *baton)
{
    return ((unit_clock_t *)baton)->now;
}

static inline void unit_clock_sleep(void *baton, apr_interval_time_t t)
{
    unit_clock_t *uc = baton;
    uc->now += t;
    uc->slept += t;
    uc->sleeps++;
}

static inline unit_clock_t *unit_clock_make(apr_pool_t *p, apr_time_t start)
{
    unit_clock_t *uc = apr_pcalloc(p, sizeof(*uc));
    uc->clock.now = unit_clock_now;
    uc->clock.sleep = unit_clock_sleep;
    uc->clock.baton = uc;
    uc->now = start;
    return uc;
}

/* cmocka group setup/teardown giving each test a fresh pool in *state. */
static inline int unit_pool_setup(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static inline int unit_pool_teardown(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

#define UNIT_TEST(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)

/* main() body shared by every unit test program. */
#define UNIT_MAIN(name, tests)                                                                     \
    int main(void)                                                                                 \
    {                                                                                              \
        int failed;                                                                                \
        apr_initialize();                                                                          \
        failed = cmocka_run_group_tests_name(name, tests, NULL, NULL);                             \
        apr_terminate();                                                                           \
        return failed ? 1 : 0;                                                                     \
    }

#endif /* ACME_UNIT_H */
