/* mod_acme_restart.c - the parent's restart thread: activates staged certificates with a
 * graceful restart, without a person.
 *
 * mod_watchdog has no parent instances on Unix and a child running as the User cannot signal
 * the root parent, so the driver (in a child) leaves a flag file in the store and this small
 * thread of the parent waits for it and signals its own process. On Linux it sleeps on inotify
 * until the flag is written into staging/ (and looks anyway every WAIT_MAX); elsewhere, or when
 * inotify cannot be had, it looks every POLL_INTERVAL. It is created in post_config
 * of the generation that serves (never in the short first pass, never in one-process mode,
 * where httpd has no restart handler), blocks every signal, has its own unmanaged pool, never
 * waits on the main thread, and is joined by a pre-cleanup of pconf at the next restart.
 * Restarts are at most one per ACME_RESTART_MIN_GAP, counted across generations in the process
 * pool.
 *
 * The flag lives in staging/, which the User owns: anything running as the User (a CGI, PHP)
 * can write it. So the flag is only a hint: it is looked at without following links, and the
 * server restarts only when a staged set passes the checks the restart's promotion makes.
 *
 * acme_restarter_* run in that thread; acme_parent_restarter_start in post_config. The other
 * side, the driver's (acme_driver_*, the watchdog thread of a child): when a staged set wants
 * its restart, and the flag written when one is due.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <poll.h>
#include <sys/inotify.h>
#endif

#include <apr_atomic.h>
#include <apr_getopt.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <http_core.h>
#include <http_main.h>
#include <mpm_common.h>

#include "mod_acme.h"
#include "mod_acme_drive.h"

#define POLL_INTERVAL apr_time_from_msec(50)
/* Woken by inotify: the longest sleep (a flag whose event was lost, a restart put off by the
 * guards below, which are all seconds long). */
#define WAIT_MAX         apr_time_from_sec(1)
#define LAST_RESTART_KEY "mod_acme-last-restart"
/* After a flag was ignored, the next look waits: a program that plants flags in a loop gets a
 * log line every IGNORED_PAUSE, not every poll. */
#define IGNORED_PAUSE apr_time_from_sec(10)
/* httpd -t takes well under a second; one that hangs (a configuration on a dead network mount)
 * is killed, so that the thread never holds up the next restart or the stop. */
#define TEST_TIMEOUT apr_time_from_sec(30)
#define TEST_POLL    apr_time_from_msec(10)
/* The MPM collects dead children with waitpid(-1), and may take the test's status first. */
#define TEST_UNKNOWN_MAX 3

typedef enum { TEST_PASSED, TEST_FAILED, TEST_UNKNOWN } test_result_e;

/* Names a log line lists at most: httpd cuts an error log line at 8 KB, and a restart for
 * thousands of certificates would name them all. */
#define LOG_NAMES_MAX 20

/* " a b c ..." (each name after one space) for a log line: the first LOG_NAMES_MAX names, then
 * how many more there are. */
static const char *names_brief(const char *names, apr_pool_t *p)
{
    const char *s, *cut = NULL;
    int n = 0;

    for (s = names; *s; s++) {
        if (*s == ' ' && ++n == LOG_NAMES_MAX + 1) {
            cut = s;
        }
    }
    if (!cut) {
        return names;
    }
    return apr_psprintf(p, "%s and %d more", apr_pstrmemdup(p, names, (apr_size_t)(cut - names)),
                        n - LOG_NAMES_MAX);
}

typedef struct restarter_t {
    acme_runtime_t *rt; /* in pconf, which outlives the thread (joined in its pre-cleanup) */
    server_rec *s;
    apr_pool_t *pool; /* unmanaged: the thread's, freed after the join */
    apr_thread_t *thread;
    int staging_fd;                /* staging/, opened without following a link */
    int notify_fd;                 /* inotify watching staging/, or -1: then polled */
    int wake[2];                   /* a byte in wake[1] ends the wait: the thread stops */
    const char *flag;              /* the flag's absolute path, for messages */
    const char *flag_rel;          /* its name inside staging/ */
    apr_time_t *last_restart;      /* in the process pool: survives generations */
    const char *const *configtest; /* argv of `httpd -t`, see configtest_argv */
    apr_time_t next_try;           /* after a failed configtest */
    apr_time_t next_look;          /* after an ignored flag */
    int unknown;                   /* configtests in a row whose status was lost */
    const char *forced;            /* active live sets a restart must serve (mod_acme_live.c) */
    volatile apr_uint32_t stop;
} restarter_t;

/* The absolute path of the running httpd: a name looked up in PATH may find another httpd, or
 * none. A binary replaced on disk since the start (a package upgrade) reads "<path> (deleted)":
 * the file now at <path> is what `apachectl graceful` would test. */
static apr_status_t server_binary(const char **pbin, const process_rec *proc, apr_pool_t *p)
{
    static const char deleted[] = " (deleted)";
    char buf[PATH_MAX];
    ssize_t n;
    apr_status_t rv = APR_SUCCESS;

    n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        if ((size_t)n > sizeof(deleted) - 1 &&
            strcmp(buf + n - (sizeof(deleted) - 1), deleted) == 0) {
            buf[n - (sizeof(deleted) - 1)] = '\0';
        }
        *pbin = apr_pstrdup(p, buf);
    } else if (proc->argc > 0 && proc->argv[0][0] == '/') {
        *pbin = proc->argv[0];
    } else {
        rv = APR_ENOENT;
    }
    return rv;
}

/* `httpd -t` for this server, as `apachectl graceful` would run it: the server's own binary
 * and the options of its own command line that decide what configuration is read (-d, -f,
 * -D, -C, -c, -T), in their order. -k, -X, -E, -e and the like are left out. The configuration
 * file is not taken from the parsed tree: with -C or an Include its first directive comes from
 * elsewhere. */
static apr_status_t configtest_argv(const char *const **pargv, const char **pwhy,
                                    const process_rec *proc, apr_pool_t *p)
{
    apr_array_header_t *argv = apr_array_make(p, proc->argc + 2, sizeof(const char *));
    apr_getopt_t *opt;
    const char *bin, *arg;
    char c;
    apr_status_t rv;

    rv = server_binary(&bin, proc, p);
    if (rv != APR_SUCCESS) {
        *pwhy = "the server's binary cannot be found (no /proc/self/exe and no absolute argv[0])";
        goto out;
    }
    APR_ARRAY_PUSH(argv, const char *) = bin;
    APR_ARRAY_PUSH(argv, const char *) = "-t";
    rv = apr_getopt_init(&opt, p, proc->argc, proc->argv);
    if (rv != APR_SUCCESS) {
        *pwhy = "the server's command line cannot be read";
        goto out;
    }
    opt->errfn = NULL;
    /* What the Unix MPMs accept: httpd's own options and -k. */
    while ((rv = apr_getopt(opt, "k:" AP_SERVER_BASEARGS, &c, &arg)) == APR_SUCCESS) {
        if (c == 'T') {
            APR_ARRAY_PUSH(argv, const char *) = "-T";
        } else if (strchr("dfDCc", c) && arg) {
            APR_ARRAY_PUSH(argv, const char *) = apr_psprintf(p, "-%c", c);
            APR_ARRAY_PUSH(argv, const char *) = arg;
        }
    }
    if (rv != APR_EOF) {
        *pwhy = "the server's command line has options this module does not know";
        goto out;
    }
    rv = APR_SUCCESS;
    APR_ARRAY_PUSH(argv, const char *) = NULL;
    *pargv = (const char *const *)argv->elts;
out:
    return rv;
}

/* Runs the configtest; its messages go to the error log (our stderr). Waits without blocking,
 * so that a stop or restart of the server never waits for it, and bounded. */
static test_result_e configtest_run(restarter_t *r, apr_pool_t *p)
{
    apr_procattr_t *attr;
    apr_proc_t proc;
    apr_exit_why_e why;
    apr_time_t deadline;
    test_result_e res = TEST_FAILED;
    int code;
    apr_status_t rv;

    rv = apr_procattr_create(&attr, p);
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_cmdtype_set(attr, APR_PROGRAM_ENV); /* ${VAR} in the configuration */
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_error_check_set(attr, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_proc_create(&proc, r->configtest[0], r->configtest, NULL, attr, p);
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, r->s, "ACME02203: cannot run %s -t",
                       r->configtest[0]);
        goto out;
    }
    deadline = apr_time_now() + TEST_TIMEOUT;
    for (;;) {
        rv = apr_proc_wait(&proc, &code, &why, APR_NOWAIT);
        if (rv == APR_CHILD_DONE) {
            if (why != APR_PROC_EXIT) {
                acme_log_error(APLOG_MARK, APLOG_ERR, 0, r->s,
                               "ACME02204: %s -t ended with signal %d", r->configtest[0], code);
            }
            res = why == APR_PROC_EXIT && code == 0 ? TEST_PASSED : TEST_FAILED;
            goto out;
        }
        if (rv != APR_CHILD_NOTDONE) {
            /* Gone without a status for us (ECHILD): the MPM's waitpid(-1) collected it. */
            res = TEST_UNKNOWN;
            goto out;
        }
        if (apr_atomic_read32(&r->stop) || apr_time_now() > deadline) {
            break;
        }
        apr_sleep(TEST_POLL);
    }
    kill(proc.pid, SIGKILL);
    apr_proc_wait(&proc, &code, &why, APR_WAIT); /* collects it unless the MPM did */
    if (apr_atomic_read32(&r->stop)) {
        res = TEST_UNKNOWN; /* the caller leaves */
        goto out;
    }
    acme_log_error(APLOG_MARK, APLOG_ERR, 0, r->s,
                   "ACME02205: %s -t did not finish within %d seconds and was killed",
                   r->configtest[0], (int)apr_time_sec(TEST_TIMEOUT));
out:
    return res;
}

/* 1 when the flag is there as a regular file. It is looked at from staging/'s descriptor and
 * never followed: the User could make it a link to a path whose lookup hangs (a dead network
 * mount) and hold up this thread and the next restart's join. Anything but a regular file is
 * removed. */
static int flag_present(restarter_t *r, apr_time_t now)
{
    struct stat st;
    const char *what;
    int removed;

    if (fstatat(r->staging_fd, r->flag_rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return 0;
    }
    if (S_ISREG(st.st_mode)) {
        return 1;
    }
    what = S_ISLNK(st.st_mode)   ? "a symbolic link"
           : S_ISDIR(st.st_mode) ? "a folder"
                                 : "a special file";
    removed = unlinkat(r->staging_fd, r->flag_rel, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) == 0;
    acme_log_error(APLOG_MARK, APLOG_WARNING, removed ? 0 : APR_FROM_OS_ERROR(errno), r->s,
                   "ACME02211: %s is %s, which the renewal driver never writes: %s, not followed; "
                   "no restart. A program running as the server's User put it there",
                   r->flag, what, removed ? "removed" : "it cannot be removed");
    r->next_look = now + IGNORED_PAUSE;
    return 0;
}

/* The strings of a, sep between them, in one pass. */
static const char *join(const apr_array_header_t *a, const char *sep, apr_pool_t *p)
{
    apr_size_t len = 0, seplen = strlen(sep), n;
    char *out, *q;
    int i;

    for (i = 0; i < a->nelts; i++) {
        len += strlen(APR_ARRAY_IDX(a, i, const char *)) + (i ? seplen : 0);
    }
    out = q = apr_palloc(p, len + 1);
    for (i = 0; i < a->nelts; i++) {
        if (i) {
            memcpy(q, sep, seplen);
            q += seplen;
        }
        n = strlen(APR_ARRAY_IDX(a, i, const char *));
        memcpy(q, APR_ARRAY_IDX(a, i, const char *), n);
        q += n;
    }
    *q = '\0';
    return out;
}

/* The units whose staged set passes the checks the restart's promotion makes (" a.test
 * b.test"), or "" with *pwhy saying why each staged set fails. A unit whose staged set could not
 * be activated at the last start is left out, as the driver does: a restart would not help. */
static const char *staged_sets_passing(restarter_t *r, apr_time_t now, const char **pwhy,
                                       apr_pool_t *p)
{
    apr_array_header_t *domains = r->rt->conf->domains;
    /* Joined once at the end: appended one by one, N names cost O(N^2) time and memory. */
    apr_array_header_t *names = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *whys = apr_array_make(p, 1, sizeof(const char *));
    int i;

    for (i = 0; i < domains->nelts; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        const char *why = NULL;
        apr_status_t rv;

        if (d->promote_failed) {
            continue;
        }
        rv = acme_store_check_staged(r->rt->store, d->set_name, d->names, now, &why, p);
        if (rv == APR_SUCCESS) {
            APR_ARRAY_PUSH(names, const char *) = d->name;
        } else if (!APR_STATUS_IS_ENOENT(rv)) {
            why = why ? why : apr_psprintf(p, "staging/%s: %s", d->set_name, acme_strerror(rv, p));
            APR_ARRAY_PUSH(whys, const char *) = why;
        }
    }
    *pwhy = whys->nelts ? join(whys, "; ", p) : "nothing is staged";
    return names->nelts ? apr_pstrcat(p, " ", join(names, " ", p), NULL) : "";
}

/* Sleeps up to t, less when the flag is written or the thread is to stop. Returns 1 when
 * inotify told that the flag was written (or that events were lost), else 0. */
static int restarter_wait(restarter_t *r, apr_interval_time_t t)
{
#ifdef __linux__
    union {
        struct inotify_event ev;
        char bytes[4096];
    } buf;
    struct pollfd fds[2];
    ssize_t n;
    int hit = 0;

    if (r->notify_fd >= 0) {
        fds[0].fd = r->notify_fd;
        fds[1].fd = r->wake[0];
        fds[0].events = fds[1].events = POLLIN;
        fds[0].revents = fds[1].revents = 0;
        if (poll(fds, 2, (int)apr_time_as_msec(t)) <= 0 || !(fds[0].revents & POLLIN)) {
            return 0;
        }
        /* Events for every name in staging/ (the driver writes sets there too): only the
         * flag's, or a lost queue, is worth a look. */
        while ((n = read(r->notify_fd, buf.bytes, sizeof(buf.bytes))) > 0) {
            ssize_t off = 0;
            while (off + (ssize_t)sizeof(struct inotify_event) <= n) {
                const struct inotify_event *ev = (const void *)(buf.bytes + off);
                off += (ssize_t)sizeof(struct inotify_event) + (ssize_t)ev->len;
                if (off > n) {
                    break; /* not a whole event: the name is not looked at */
                }
                if ((ev->mask & IN_Q_OVERFLOW) ||
                    (ev->len && strnlen(ev->name, ev->len) < ev->len &&
                     strcmp(ev->name, r->flag_rel) == 0)) {
                    hit = 1;
                }
            }
        }
        return hit;
    }
#endif
    apr_sleep(t < POLL_INTERVAL ? t : POLL_INTERVAL);
    return 0;
}

static void *APR_THREAD_FUNC acme_restarter_main(apr_thread_t *thread, void *data)
{
    restarter_t *r = data;
    apr_interval_time_t wait = POLL_INTERVAL; /* the first look: once the MPM runs */
    apr_pool_t *iter;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (apr_pool_create(&iter, r->pool) != APR_SUCCESS) {
        apr_thread_exit(thread, APR_ENOMEM);
        return NULL;
    }
    while (!apr_atomic_read32(&r->stop)) {
        const char *names, *why, *forced;
        int live, woken;
        apr_time_t now;
        test_result_e test;

        woken = restarter_wait(r, wait);
        wait = WAIT_MAX;
        apr_pool_clear(iter);
        /* httpd handles SIGUSR1 only once the MPM runs; before that it would end the server. */
        if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_RUN_MPM) {
            wait = POLL_INTERVAL;
            continue;
        }
        now = apr_time_now();
        if (now < r->next_look || !flag_present(r, now)) {
            continue;
        }
        if (woken) {
            acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, r->s,
                           "ACME02214: %s was written (inotify woke the restart thread)", r->flag);
        }
        /* ACMEActivation live: promoted and handed to the children here, without a restart;
         * the flag goes when nothing else waits for one (mod_acme_live.c). */
        live = 0;
        forced = acme_parent_live_activate(r->rt, now, &live, r->pool, iter);
        if (*forced) {
            r->forced = apr_pstrcat(r->pool, r->forced, forced, NULL);
        }
        if (live && !*r->forced && !*staged_sets_passing(r, now, &why, iter)) {
            unlinkat(r->staging_fd, r->flag_rel, 0);
            continue;
        }
        /* A clock stepped back counts as time passed: never wait on a time in the future. */
        if (*r->last_restart && now > *r->last_restart &&
            now - *r->last_restart < ACME_RESTART_MIN_GAP) {
            continue;
        }
        if (now < r->next_try) {
            continue;
        }
        names = apr_pstrcat(iter, r->forced, staged_sets_passing(r, now, &why, iter), NULL);
        if (!*names) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, 0, r->s,
                           "ACME02212: %s asks for a restart, but no staged certificate would be "
                           "activated by it (%s); the file is removed, no restart. The renewal "
                           "driver writes it only after staging a valid set: another program "
                           "running as the server's User may have written it",
                           r->flag, why);
            unlinkat(r->staging_fd, r->flag_rel, 0);
            r->next_look = now + IGNORED_PAUSE;
            continue;
        }
        names = names_brief(names, iter); /* from here on for the log only */
        /* A graceful restart re-reads the configuration: one that was left half-edited on disk
         * would stop the server. So the configuration is tested first, as apachectl graceful
         * does. */
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, r->s,
                       "ACME02207: new certificates are ready for%s; testing the configuration",
                       names);
        test = configtest_run(r, iter);
        if (apr_atomic_read32(&r->stop)) {
            break;
        }
        if (test == TEST_UNKNOWN && ++r->unknown < TEST_UNKNOWN_MAX) {
            acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, r->s,
                           "ACME02206: the status of %s -t was collected elsewhere; testing again",
                           r->configtest[0]);
            continue;
        }
        r->unknown = 0;
        if (test != TEST_PASSED) {
            r->next_try = now + ACME_RESTART_MIN_GAP;
            acme_log_error(APLOG_MARK, APLOG_ERR, 0, r->s,
                           "ACME01072: new certificates are ready for%s, but %s; not restarting. "
                           "They are activated by the next restart once it is fixed; trying again "
                           "in a minute",
                           names,
                           test == TEST_UNKNOWN
                               ? "the result of '" ACME_CONFIGTEST_COMMAND
                                 "' was lost (the MPM collected the process first, three times)"
                               : "the configuration on disk does not pass '" ACME_CONFIGTEST_COMMAND
                                 "' (see above)");
            continue;
        }
        /* The flag goes first: a restart re-checks it, a second signal during one is lost. */
        if (unlinkat(r->staging_fd, r->flag_rel, 0) != 0) {
            continue;
        }
        *r->last_restart = apr_time_now();
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, r->s,
                       "ACME01070: new certificates are ready for%s; restarting gracefully to "
                       "activate them",
                       names);
        kill(getpid(), AP_SIG_GRACEFUL);
        break;
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static void restarter_close(restarter_t *r)
{
    int *fds[] = {&r->staging_fd, &r->notify_fd, &r->wake[0], &r->wake[1]};
    apr_size_t k;

    for (k = 0; k < sizeof(fds) / sizeof(fds[0]); k++) {
        if (*fds[k] >= 0) {
            close(*fds[k]);
            *fds[k] = -1;
        }
    }
}

/* Lets the thread sleep until the flag is written (Linux); without inotify it polls. The watch
 * is on staging/ as opened (its descriptor's /proc path): a link planted since is not followed,
 * and the folder is never watched by name. */
static void restarter_notify(restarter_t *r, apr_pool_t *p)
{
#ifdef __linux__
    const char *dir = apr_psprintf(p, "/proc/self/fd/%d", r->staging_fd);

    r->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->notify_fd < 0 ||
        inotify_add_watch(r->notify_fd, dir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0 ||
        pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        acme_log_error(APLOG_MARK, APLOG_DEBUG, APR_FROM_OS_ERROR(errno), r->s,
                       "ACME02215: cannot watch %s with inotify; looking for the restart flag "
                       "every %d ms instead",
                       dir, (int)apr_time_as_msec(POLL_INTERVAL));
        if (r->notify_fd >= 0) {
            close(r->notify_fd);
            r->notify_fd = -1;
        }
    }
#endif
}

static apr_status_t restarter_join(void *data)
{
    restarter_t *r = data;
    apr_status_t trv;

    apr_atomic_set32(&r->stop, 1);
    if (r->wake[1] >= 0 && write(r->wake[1], "", 1) < 0) {
        /* the thread then ends within WAIT_MAX */
    }
    apr_thread_join(&trv, r->thread);
    restarter_close(r);
    apr_pool_destroy(r->pool);
    return APR_SUCCESS;
}

apr_status_t acme_parent_restarter_start(acme_runtime_t *rt, apr_pool_t *pconf)
{
    apr_pool_t *pproc = rt->s->process->pool;
    apr_threadattr_t *attr;
    restarter_t *r;
    void *last = NULL;
    const char *slash = strrchr(ACME_RESTART_FLAG, '/'), *why = NULL;
    apr_pool_t *p;
    apr_status_t rv;

    rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    r = apr_pcalloc(p, sizeof(*r));
    r->rt = rt;
    r->s = rt->s;
    r->pool = p;
    r->staging_fd = r->notify_fd = r->wake[0] = r->wake[1] = -1;
    r->forced = "";
    r->flag = acme_store_path(rt->store, ACME_RESTART_FLAG, p);
    r->flag_rel = slash + 1;
    apr_pool_userdata_get(&last, LAST_RESTART_KEY, pproc);
    if (!last) {
        last = apr_pcalloc(pproc, sizeof(apr_time_t));
        apr_pool_userdata_set(last, LAST_RESTART_KEY, apr_pool_cleanup_null, pproc);
    }
    r->last_restart = last;
    rv = configtest_argv(&r->configtest, &why, rt->s->process, p);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                       "ACME02201: no automatic restart: %s, so the configuration cannot be "
                       "tested before a restart; run '" ACME_RESTART_COMMAND "' to activate new "
                       "certificates",
                       why);
        apr_pool_destroy(p);
        return APR_SUCCESS;
    }
    /* The store's top folder is root's; staging/ is the User's, itself never a link (post_config
     * checked), and the descriptor keeps every later look inside it. */
    r->staging_fd =
        open(acme_store_path(
                 rt->store,
                 apr_pstrmemdup(p, ACME_RESTART_FLAG, (apr_size_t)(slash - ACME_RESTART_FLAG)), p),
             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (r->staging_fd < 0) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    if (rv == APR_SUCCESS) {
        restarter_notify(r, p);
    }
    if (rv == APR_SUCCESS) {
        /* What the configtest runs, for the operator who wonders. */
        const char *cmd = "";
        int i;
        for (i = 0; r->configtest[i]; i++) {
            const char *a = r->configtest[i];
            cmd = apr_pstrcat(p, cmd, i ? " " : "", strchr(a, ' ') ? "'" : "", a,
                              strchr(a, ' ') ? "'" : "", NULL);
        }
        acme_log_error(
            APLOG_MARK, APLOG_DEBUG, 0, rt->s,
            "ACME02202: before an automatic restart the configuration is tested with: %s", cmd);
        rv = apr_threadattr_create(&attr, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&r->thread, attr, acme_restarter_main, r, p);
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, rv, rt->s,
                       "ACME01071: cannot start the restart thread; set ACMEAutoRestart off to run "
                       "without it");
        restarter_close(r);
        apr_pool_destroy(p);
        return rv;
    }
    apr_pool_pre_cleanup_register(pconf, r, restarter_join);
    return APR_SUCCESS;
}

/* --- the driver's side: asking for the restart --- */

int acme_driver_flag_waiting(driver_t *drv, apr_pool_t *ptemp)
{
    apr_finfo_t fi;

    return apr_stat(&fi, acme_store_path(drv->rt->store, ACME_RESTART_FLAG, ptemp),
                    APR_FINFO_TYPE | APR_FINFO_LINK, ptemp) == APR_SUCCESS;
}

void acme_driver_restart_due(driver_t *drv, int i, int scheduled)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    apr_time_t now = apr_time_now(), limit = d->not_after;
    int renewal = scheduled && d->has_active && !d->mismatch &&
                  d->conf->activation != ACME_ACTIVATION_LIVE && drv->rt->conf->auto_restart != 0;
    char at[APR_CTIME_LEN];

    if (drv->ari_end[i] && drv->ari_end[i] < limit) {
        limit = drv->ari_end[i];
    }
    drv->restart_due[i] = acme_restart_due(now, renewal, limit);
    if (drv->restart_due[i] > now + apr_time_from_sec(1)) {
        apr_ctime(at, drv->restart_due[i]);
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, drv->rt->s,
                       "ACME01067: %s: the renewed certificate is staged; the certificate served "
                       "now stays until a graceful restart activates it with other renewals, at "
                       "the latest at %s (%" APR_TIME_T_FMT " s from now; '" ACME_RESTART_COMMAND
                       "' activates it at once)",
                       d->name, at, apr_time_sec(drv->restart_due[i] - now));
    }
}

/* Asks the parent for one graceful restart once new sets are staged and one of them wants it
 * (restart_due: at once, or a renewal that waited for others), when no challenge is being
 * validated, waiting a little for the workers that just started so one restart activates them
 * all (but no longer than drv->restart_hold past the time due: a steady stream of orders would
 * otherwise put it off for ever; a server whose restart takes long holds longer, so that a long
 * first issuance is not stalled by a restart every minute). */
void acme_driver_ask_restart(driver_t *drv, apr_time_t now, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains, *staged;
    apr_time_t due = 0;
    const char *names;
    int i, any = 0, validating = 0, young = 0, live = 0, replaces = 0;
    apr_interval_time_t hold;
    apr_status_t rv;

    /* Sets staged since the flag was written: while it waits, the parent's restart activates
     * them too (every set staged by then), so it is written again only once the parent took
     * it or dropped it. Rewritten (with every staged name) for each new set, it cost O(N) per
     * set while the parent tested the configuration of a large server. Looked at every tick
     * until then: the parent may drop the flag without a restart (ACME02212, live sets only)
     * after listing the staged sets, and a set staged meanwhile must ask again. */
    if (drv->restart_more && (!drv->restart_asked || !acme_driver_flag_waiting(drv, ptemp))) {
        drv->restart_more = 0;
        drv->restart_asked = 0;
    }
    /* In one-process mode (httpd -X) nobody would act on the flag: the worker's ACME01054 says
     * to stop and start the server instead. */
    if (drv->restart_asked || drv->rt->conf->auto_restart == 0 || drv->rt->one_process ||
        now < drv->restart_retry) {
        return;
    }
    /* Joined once at the end: appended one by one, N staged names cost O(N^2) at every tick. */
    staged = apr_array_make(ptemp, 8, sizeof(const char *));
    for (i = 0; i < domains->nelts; i++) {
        worker_t *w = drv->workers[i];
        /* A renewal information check stages nothing: not worth waiting for. */
        if (w && !w->ari_only) {
            validating |= apr_atomic_read32(&w->challenges) != 0;
            young |= now - w->started < COALESCE_YOUNG;
        }
        /* A set whose notBefore is still ahead waits for its time (acme_cert_activation_check):
         * asked earlier, the parent would only keep it staged. */
        if (drv->staged[i] && now >= drv->staged_at[i] &&
            !APR_ARRAY_IDX(domains, i, acme_domain_t *)->promote_failed) {
            if (!any || drv->restart_due[i] < due) {
                due = drv->restart_due[i];
            }
            any = 1;
            replaces |= APR_ARRAY_IDX(domains, i, acme_domain_t *)->has_active;
            /* ACMEActivation live costs no restart: nothing to wait for to share one. */
            live |= APR_ARRAY_IDX(domains, i, acme_domain_t *)->conf->activation ==
                    ACME_ACTIVATION_LIVE;
            APR_ARRAY_PUSH(staged, const char *) = APR_ARRAY_IDX(domains, i, acme_domain_t *)->name;
        }
    }
    if (!any) {
        return;
    }
    /* The longer hold only while every set is a first certificate (the fallback is served
     * meanwhile): one that replaces a served certificate, which may be near its end, waits a
     * minute past its due time at most. */
    hold = replaces ? ACME_RESTART_HOLD_MIN : drv->restart_hold;
    if (!live && (now < due || validating || (young && now < due + hold))) {
        return;
    }
    names = apr_pstrcat(ptemp, " ", apr_array_pstrcat(ptemp, staged, ' '), NULL);
    rv = acme_store_write(drv->rt->store, ACME_RESTART_FLAG, names, strlen(names),
                          APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD,
                          ptemp);
    names = names_brief(names, ptemp); /* the flag names them all, a log line a few */
    if (rv == APR_SUCCESS) {
        drv->restart_asked = 1;
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, drv->rt->s,
                       "ACME01059: new certificates staged for%s; asking for %s", names,
                       live ? "their activation" : "a graceful restart");
    } else {
        drv->restart_retry = now + apr_time_from_sec(60);
        acme_log_error(APLOG_MARK, APLOG_ERR, 0, drv->rt->s,
                       "ACME01064: new certificates staged for%s, but %s cannot be written; "
                       "trying again in a minute (or run '" ACME_RESTART_COMMAND "')",
                       names, acme_store_path(drv->rt->store, ACME_RESTART_FLAG, ptemp));
    }
}
