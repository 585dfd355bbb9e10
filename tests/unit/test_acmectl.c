/* test_acmectl.c - acmectl's pieces that need no CA and no server: revocation reasons, set names,
 * the commands' option parsing, renewal request files (the driver's input: bounded, no links),
 * the driver lock as acmectl sees it, and what `acmectl check` finds in a store and the commands
 * it gives. Linked with tools/acmectl_*.c except main(). */
#include <grp.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "store_util.h"

#include "acme_store_ctl.h"
#include "acmectl.h"

static void reasons_by_name_and_number(void **state)
{
    static const struct {
        const char *text;
        int code;
    } rows[] = {
        {"unspecified", 0},
        {"keyCompromise", 1},
        {"KEYCOMPROMISE", 1},
        {"superseded", 4},
        {"cessationOfOperation", 5},
        {"affiliationChanged", 3},
        {"privilegeWithdrawn", 9},
        {"aACompromise", 10},
        {"0", 0},
        {"4", 4},
        {"10", 10},
        {"7", -1}, /* unused in RFC 5280 */
        {"11", -1},
        {"-1", -1},
        {"1x", -1},
        {"", -1},
        {"key compromise", -1},
        {"100", -1},
        {" 1", -1},
        {"sleepy", -1},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (acmectl_revoke_reason(rows[i].text) != rows[i].code) {
            fail_msg("reason '%s': %d, expected %d", rows[i].text,
                     acmectl_revoke_reason(rows[i].text), rows[i].code);
        }
    }
    assert_int_equal(acmectl_revoke_reason(NULL), -1);
    assert_string_equal(acmectl_revoke_reason_name(1), "keyCompromise");
    assert_null(acmectl_revoke_reason_name(7));
}

static void set_names(void **state)
{
    fx_t *fx = *state;

    assert_string_equal(acmectl_set_name("a.test", fx->p), "a.test");
    assert_string_equal(acmectl_set_name("*.a.test", fx->p), "_wildcard.a.test");
    assert_string_equal(acmectl_set_name("a.test_rsa2048", fx->p), "a.test_rsa2048");
    assert_null(acmectl_set_name("../etc", fx->p));
    assert_null(acmectl_set_name("a/b", fx->p));
    assert_null(acmectl_set_name("*", fx->p));
    assert_null(acmectl_set_name("", fx->p));
    assert_null(acmectl_set_name(NULL, fx->p));
}

/* A context on the fixture's store, its output in files the test reads. */
typedef struct ctl_t {
    acmectl_t ctx;
    char out[128], err[128];
} ctl_t;

static ctl_t *ctl_make(fx_t *fx)
{
    ctl_t *c = apr_pcalloc(fx->p, sizeof(*c));

    snprintf(c->out, sizeof(c->out), "%s/out", fx->dir);
    snprintf(c->err, sizeof(c->err), "%s/err", fx->dir);
    c->ctx.pool = fx->p;
    c->ctx.store = fx->store;
    c->ctx.store_dir = acme_store_dir(fx->store);
    c->ctx.out = fopen(c->out, "w+");
    c->ctx.err = fopen(c->err, "w+");
    assert_non_null(c->ctx.out);
    assert_non_null(c->ctx.err);
    return c;
}

static const char *ctl_text(FILE *f, apr_pool_t *p)
{
    char buf[8192];
    size_t n;

    fflush(f);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    return apr_pstrdup(p, buf);
}

static void ctl_done(ctl_t *c)
{
    fclose(c->ctx.out);
    fclose(c->ctx.err);
}

static int run(ctl_t *c, int (*cmd)(acmectl_t *, int, char **), int argc, const char **argv)
{
    optind = 0; /* as main() does before each command */
    return cmd(&c->ctx, argc, (char **)argv);
}

static void commands_parse_their_options(void **state)
{
    fx_t *fx = *state;
    ctl_t *c = ctl_make(fx);
    const char *bad_reason[] = {"revoke", "--reason", "sleepy", "a.test"};
    const char *no_name[] = {"revoke"};
    const char *two_names[] = {"renew", "a.test", "b.test"};
    const char *bad_name[] = {"renew", "../x"};
    const char *unknown[] = {"renew", "a.test"};
    const char *help[] = {"status", "--help"};
    const char *bad_opt[] = {"check", "--frobnicate"};
    const char *acct_sub[] = {"account", "explode"};
    const char *acct_none[] = {"account"};
    const char *deact[] = {"account", "deactivate"};
    const char *keytype[] = {"account", "rollover", "--key-type", "dsa"};

    assert_int_equal(run(c, acmectl_revoke, 4, bad_reason), ACMECTL_EXIT_USAGE);
    assert_non_null(strstr(ctl_text(c->ctx.err, fx->p), "--reason sleepy: not a revocation"));
    assert_int_equal(run(c, acmectl_revoke, 1, no_name), ACMECTL_EXIT_USAGE);
    assert_int_equal(run(c, acmectl_renew, 3, two_names), ACMECTL_EXIT_USAGE);
    assert_int_equal(run(c, acmectl_renew, 2, bad_name), ACMECTL_EXIT_USAGE);
    assert_int_equal(run(c, acmectl_renew, 2, unknown), ACMECTL_EXIT_PROBLEM);
    assert_non_null(strstr(ctl_text(c->ctx.err, fx->p), "has no certificate a.test"));
    assert_false(exists(apr_pstrcat(fx->p, fx->dir, "/store/jobs/a.test.renew", NULL)));
    assert_int_equal(run(c, acmectl_status, 2, help), ACMECTL_EXIT_OK);
    assert_non_null(strstr(ctl_text(c->ctx.out, fx->p), "usage: acmectl [--store DIR] status"));
    assert_int_equal(run(c, acmectl_check, 2, bad_opt), ACMECTL_EXIT_USAGE);
    assert_int_equal(run(c, acmectl_account, 2, acct_sub), ACMECTL_EXIT_USAGE);
    assert_int_equal(run(c, acmectl_account, 1, acct_none), ACMECTL_EXIT_USAGE);
    assert_int_equal(run(c, acmectl_account, 2, deact), ACMECTL_EXIT_USAGE);
    assert_non_null(strstr(ctl_text(c->ctx.err, fx->p), "add --yes"));
    assert_int_equal(run(c, acmectl_account, 4, keytype), ACMECTL_EXIT_USAGE);
    ctl_done(c);
}

static void renew_requests_roundtrip(void **state)
{
    fx_t *fx = *state;
    acme_renew_request_t *req = NULL;
    const char *path = apr_pstrcat(fx->p, fx->dir, "/store/jobs/a.test.renew", NULL);
    apr_time_t now = apr_time_from_sec(1800000000);
    struct stat st;

    assert_int_equal(acme_renew_request_read(&req, fx->store, NAME, fx->p), APR_ENOENT);
    assert_false(acme_renew_requested(fx->store, NAME, fx->p));
    assert_int_equal(acme_renew_request_write(fx->store, NAME, "operator", now, fx->p),
                     APR_SUCCESS);
    assert_int_equal(lstat(path, &st), 0);
    /* The User's file, like its folder, and readable by it. */
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_true(acme_renew_requested(fx->store, NAME, fx->p));
    assert_int_equal(acme_renew_request_read(&req, fx->store, NAME, fx->p), APR_SUCCESS);
    assert_true(req->time == now);
    assert_string_equal(req->reason, "operator");
    assert_int_equal(acme_renew_request_write(fx->store, NAME, "revoked", now, fx->p), APR_SUCCESS);
    assert_int_equal(acme_renew_request_read(&req, fx->store, NAME, fx->p), APR_SUCCESS);
    assert_string_equal(req->reason, "revoked");
    assert_int_equal(acme_renew_request_clear(fx->store, NAME, fx->p), APR_SUCCESS);
    assert_false(exists(path));
    assert_int_equal(acme_renew_request_clear(fx->store, NAME, fx->p), APR_SUCCESS);

    assert_int_equal(acme_renew_request_write(fx->store, NAME, "because", now, fx->p), APR_EINVAL);
    assert_int_equal(acme_renew_request_write(fx->store, "../x", "operator", now, fx->p),
                     APR_EINVAL);
    assert_null(acme_renew_request_path("*.a.test", fx->p));
}

/* Sets jobs/'s modification time to t (as if its last change were then). */
static void jobs_mtime(fx_t *fx, apr_time_t t)
{
    struct timespec ts[2];

    ts[0].tv_sec = ts[1].tv_sec = (time_t)apr_time_sec(t);
    ts[0].tv_nsec = ts[1].tv_nsec = (long)(t % APR_USEC_PER_SEC) * 1000;
    assert_int_equal(utimensat(AT_FDCWD, apr_pstrcat(fx->p, fx->dir, "/store/jobs", NULL), ts, 0),
                     0);
}

/* The driver's one look per tick: no request file, no read per certificate; a request written
 * (or removed) moves jobs/'s modification time and is seen at the next look. */
static void renew_watch_sees_requests(void **state)
{
    fx_t *fx = *state;
    acme_renew_watch_t w = {0};
    apr_time_t now = apr_time_now(), old = now - apr_time_from_sec(30);
    const char *stray = apr_pstrcat(fx->p, fx->dir, "/store/jobs/b.test.renew", NULL);
    FILE *f;

    /* Without jobs/: it cannot tell, so each name is read. */
    assert_int_equal(rmdir(apr_pstrcat(fx->p, fx->dir, "/store/jobs", NULL)), 0);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now, fx->p), 1);
    assert_int_equal(mkdir(apr_pstrcat(fx->p, fx->dir, "/store/jobs", NULL), 0700), 0);
    assert_int_equal(acme_store_write(fx->store, "jobs/a.test.json", "{}", 2, 0600, fx->p),
                     APR_SUCCESS);
    jobs_mtime(fx, old);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now, fx->p), 0);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now + 100000, fx->p), 0);

    /* acmectl renew writes a request: the folder changed, it is listed again. */
    assert_int_equal(acme_renew_request_write(fx->store, NAME, "operator", now, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, apr_time_now(), fx->p), 1);
    /* Still there (e.g. it could not be removed): still read at every tick. */
    jobs_mtime(fx, old);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now, fx->p), 1);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now + 100000, fx->p), 1);
    assert_int_equal(acme_renew_request_clear(fx->store, NAME, fx->p), APR_SUCCESS);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, apr_time_now(), fx->p), 0);

    /* A file that appears within the clock tick of the last listing leaves the time as it was:
     * a time that recent is listed again at every look. */
    now = apr_time_now();
    jobs_mtime(fx, now - apr_time_from_sec(1));
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now, fx->p), 0);
    f = fopen(stray, "w");
    assert_non_null(f);
    fclose(f);
    jobs_mtime(fx, now - apr_time_from_sec(1));
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now, fx->p), 1);
    assert_int_equal(unlink(stray), 0);

    /* An old time that did not move is trusted, but not for longer than a minute. */
    jobs_mtime(fx, old);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now, fx->p), 0);
    f = fopen(stray, "w");
    assert_non_null(f);
    fclose(f);
    jobs_mtime(fx, old);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now + apr_time_from_sec(1), fx->p),
                     0);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now + ACME_RENEW_WATCH_MAX, fx->p),
                     1);
    /* A clock set back: listed again. */
    assert_int_equal(unlink(stray), 0);
    jobs_mtime(fx, old);
    assert_int_equal(acme_renew_requests_maybe(&w, fx->store, now - apr_time_from_sec(5), fx->p),
                     0);
}

static void renew_requests_are_hostile_input(void **state)
{
    fx_t *fx = *state;
    acme_renew_request_t *req = NULL;
    const char *path = apr_pstrcat(fx->p, fx->dir, "/store/jobs/a.test.renew", NULL);
    const char *target = apr_pstrcat(fx->p, fx->dir, "/target", NULL);
    static const char *const bad[] = {
        "not json",
        "[1]",
        "{}",
        "{\"requested\": \"soon\", \"reason\": \"operator\"}",
        "{\"requested\": -5, \"reason\": \"operator\"}",
        "{\"requested\": 99999999999999, \"reason\": \"operator\"}",
        "{\"requested\": 1800000000, \"reason\": \"because\"}",
        "{\"requested\": 1800000000}",
    };
    const char *good = "{\"requested\": 1800000000, \"reason\": \"operator\"}";
    char *big;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put_file(path, bad[i]);
        if (acme_renew_request_read(&req, fx->store, NAME, fx->p) != ACME_EBADSTORE) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_false(acme_renew_requested(fx->store, NAME, fx->p));
    }
    /* Over the bound. */
    big = apr_palloc(fx->p, ACME_RENEW_REQUEST_MAX + 100);
    memset(big, ' ', ACME_RENEW_REQUEST_MAX + 99);
    memcpy(big, good, strlen(good));
    big[ACME_RENEW_REQUEST_MAX + 99] = '\0';
    put_file(path, big);
    assert_int_equal(acme_renew_request_read(&req, fx->store, NAME, fx->p), ACME_EBADSTORE);
    /* A link to a good request elsewhere is not followed; clearing removes the link only. */
    unlink(path);
    put_file(target, "{\"requested\": 1800000000, \"reason\": \"operator\"}");
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(acme_renew_request_read(&req, fx->store, NAME, fx->p), ACME_EBADSTORE);
    assert_int_equal(acme_renew_request_clear(fx->store, NAME, fx->p), APR_SUCCESS);
    assert_true(exists(target));
    assert_false(exists(path));
    /* A FIFO must not block the reader. */
    assert_int_equal(mkfifo(path, 0644), 0);
    assert_int_equal(acme_renew_request_read(&req, fx->store, NAME, fx->p), ACME_EBADSTORE);
}

static void write_owned_gives_the_folders_owner(void **state)
{
    fx_t *fx = *state;
    const char *dir = apr_pstrcat(fx->p, fx->dir, "/store/accounts/ca", NULL);
    struct stat st;

    if (geteuid() != 0) {
        skip();
    }
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chown(dir, 65534, 65534), 0);
    assert_int_equal(acme_store_write_owned(fx->store, "accounts/ca/account.key", "k", 1,
                                            APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    assert_int_equal(lstat(apr_pstrcat(fx->p, dir, "/account.key", NULL), &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_gid, 65534);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* Over a link planted as the file: the link is replaced, its target untouched. */
    put_file(apr_pstrcat(fx->p, fx->dir, "/target", NULL), "precious");
    unlink(apr_pstrcat(fx->p, dir, "/account.key", NULL));
    assert_int_equal(symlink(apr_pstrcat(fx->p, fx->dir, "/target", NULL),
                             apr_pstrcat(fx->p, dir, "/account.key", NULL)),
                     0);
    assert_int_equal(acme_store_write_owned(fx->store, "accounts/ca/account.key", "k", 1,
                                            APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    assert_string_equal(slurp(apr_pstrcat(fx->p, fx->dir, "/target", NULL), fx->p), "precious");
    /* A link in place of the folder is refused. */
    assert_int_equal(symlink(fx->dir, apr_pstrcat(fx->p, fx->dir, "/store/accounts/evil", NULL)),
                     0);
    assert_int_equal(acme_store_write_owned(fx->store, "accounts/evil/x", "k", 1,
                                            APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     ACME_EBADSTORE);
    assert_false(exists(apr_pstrcat(fx->p, fx->dir, "/x", NULL)));
}

/* The driver takes jobs/driver.lock with apr_file_lock; acmectl sees who holds it. */
static void driver_lock_is_seen(void **state)
{
    fx_t *fx = *state;
    const char *path = apr_pstrcat(fx->p, fx->dir, "/store/jobs/driver.lock", NULL);
    int to_child[2], from_child[2], fd = -1;
    pid_t pid = 0, child;
    char c;

    assert_int_equal(acme_store_driver_holder(&pid, fx->store, fx->p), APR_ENOENT);
    assert_false(exists(path)); /* only looked at: not made */
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(from_child), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        apr_pool_t *p;
        apr_file_t *f;

        apr_pool_create(&p, NULL);
        if (apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                          APR_FPROT_UREAD | APR_FPROT_UWRITE, p) != APR_SUCCESS ||
            apr_file_lock(f, APR_FLOCK_EXCLUSIVE | APR_FLOCK_NONBLOCK) != APR_SUCCESS) {
            _exit(1);
        }
        (void)!write(from_child[1], "l", 1);
        (void)!read(to_child[0], &c, 1);
        _exit(0);
    }
    assert_int_equal(read(from_child[0], &c, 1), 1);
    assert_int_equal(acme_store_driver_holder(&pid, fx->store, fx->p), APR_SUCCESS);
    assert_int_equal(pid, child);
    assert_int_equal(acme_store_driver_lock(&fd, &pid, fx->store, fx->p), APR_EAGAIN);
    assert_int_equal(write(to_child[1], "x", 1), 1);
    assert_int_equal(waitpid(child, NULL, 0), child);
    assert_int_equal(acme_store_driver_holder(&pid, fx->store, fx->p), APR_ENOENT);
    assert_int_equal(acme_store_driver_lock(&fd, &pid, fx->store, fx->p), APR_SUCCESS);
    close(fd);
    /* A link as the lock file is not followed. */
    unlink(path);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    assert_int_equal(acme_store_driver_holder(&pid, fx->store, fx->p), ACME_EBADSTORE);
    assert_int_equal(acme_store_driver_lock(&fd, &pid, fx->store, fx->p), ACME_EBADSTORE);
}

static int found(const apr_array_header_t *f, const char *path, const char *problem,
                 const char *fix)
{
    int i;

    for (i = 0; i < f->nelts; i++) {
        const acmectl_finding_t *x = &APR_ARRAY_IDX(f, i, acmectl_finding_t);
        if (!strcmp(x->path, path) && strstr(x->problem, problem) && !strcmp(x->fix, fix)) {
            return 1;
        }
    }
    return 0;
}

static void check_findings_and_fixes(void **state)
{
    fx_t *fx = *state;
    const char *top = apr_pstrcat(fx->p, fx->dir, "/store", NULL);
    const uid_t user = 65534;
    apr_array_header_t *f;
    int i;

    if (geteuid() != 0) {
        skip();
    }
    assert_int_equal(chmod(top, 0711), 0);
    for (i = 0; i < 3; i++) {
        static const char *const ud[] = {"accounts", "staging", "jobs"};
        assert_int_equal(chown(apr_pstrcat(fx->p, top, "/", ud[i], NULL), user, user), 0);
    }
    f = acmectl_check_store(top, 0, user, user, "nobody", fx->p);
    for (i = 0; i < f->nelts; i++) {
        fail_msg("unexpected: %s: %s", APR_ARRAY_IDX(f, i, acmectl_finding_t).path,
                 APR_ARRAY_IDX(f, i, acmectl_finding_t).problem);
    }

    /* Root's jobs/, a root file among the User's, a link for archive/, a group-writable
     * domains/, a readable key in fallback/, a top the User cannot pass. */
    assert_int_equal(chown(apr_pstrcat(fx->p, top, "/jobs", NULL), 0, 0), 0);
    put_file(apr_pstrcat(fx->p, top, "/accounts/stray", NULL), "x");
    assert_int_equal(rmdir(apr_pstrcat(fx->p, top, "/archive", NULL)), 0);
    assert_int_equal(symlink("/etc", apr_pstrcat(fx->p, top, "/archive", NULL)), 0);
    assert_int_equal(chmod(apr_pstrcat(fx->p, top, "/domains", NULL), 0770), 0);
    assert_int_equal(mkdir(apr_pstrcat(fx->p, top, "/fallback", NULL), 0700), 0);
    assert_int_equal(mkdir(apr_pstrcat(fx->p, top, "/fallback/a.test", NULL), 0700), 0);
    put_file(apr_pstrcat(fx->p, top, "/fallback/a.test/privkey.pem", NULL), "k");
    assert_int_equal(chmod(apr_pstrcat(fx->p, top, "/fallback/a.test/privkey.pem", NULL), 0644), 0);
    assert_int_equal(chmod(top, 0700), 0);

    f = acmectl_check_store(top, 0, user, user, "nobody", fx->p);
    assert_true(found(f, apr_pstrcat(fx->p, top, "/jobs", NULL), "belongs to root",
                      apr_psprintf(fx->p, "chown nobody:%s %s/jobs",
                                   getgrgid(user) ? getgrgid(user)->gr_name : "65534", top)));
    assert_true(found(f, apr_pstrcat(fx->p, top, "/accounts/stray", NULL), "belongs to root",
                      apr_psprintf(fx->p, "chown nobody:%s %s/accounts/stray",
                                   getgrgid(user) ? getgrgid(user)->gr_name : "65534", top)));
    assert_true(found(f, apr_pstrcat(fx->p, top, "/archive", NULL), "is a symbolic link",
                      apr_psprintf(fx->p, "mv %s/archive %s/archive.moved", top, top)));
    assert_true(found(f, apr_pstrcat(fx->p, top, "/domains", NULL),
                      "can be written by group or others (mode 0770)",
                      apr_psprintf(fx->p, "chmod go-w %s/domains", top)));
    assert_true(found(f, apr_pstrcat(fx->p, top, "/fallback/a.test/privkey.pem", NULL),
                      "a private key",
                      apr_psprintf(fx->p,
                                   "chown root:root %s/fallback/a.test/privkey.pem && "
                                   "chmod 0600 %s/fallback/a.test/privkey.pem",
                                   top, top)));
    assert_true(
        found(f, top, "cannot reach its folders", apr_psprintf(fx->p, "chmod 0711 %s", top)));
    assert_int_equal(f->nelts, 6);
    /* Nothing was changed by looking. */
    {
        struct stat st;
        assert_int_equal(lstat(apr_pstrcat(fx->p, top, "/archive", NULL), &st), 0);
        assert_true(S_ISLNK(st.st_mode));
    }

    /* A name the User chose stays one shell word in the command an operator runs. */
    put_file(apr_pstrcat(fx->p, top, "/accounts/x; touch it's", NULL), "x");
    f = acmectl_check_store(top, 0, user, user, "nobody", fx->p);
    assert_true(found(f, apr_pstrcat(fx->p, top, "/accounts/x; touch it's", NULL),
                      "belongs to root",
                      apr_psprintf(fx->p, "chown nobody:%s '%s/accounts/x; touch it'\\''s'",
                                   getgrgid(user) ? getgrgid(user)->gr_name : "65534", top)));

    /* A folder above the store that others may write (not sticky). */
    assert_int_equal(chmod(fx->dir, 0777), 0);
    f = acmectl_check_store(top, 0, user, user, "nobody", fx->p);
    assert_true(found(f, fx->dir, "can be written by group or others",
                      apr_psprintf(fx->p, "chmod go-w %s", fx->dir)));
    assert_int_equal(chmod(fx->dir, 0700), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(reasons_by_name_and_number),
    STORE_TEST(set_names),
    STORE_TEST(commands_parse_their_options),
    STORE_TEST(renew_requests_roundtrip),
    STORE_TEST(renew_requests_are_hostile_input),
    STORE_TEST(renew_watch_sees_requests),
    STORE_TEST(write_owned_gives_the_folders_owner),
    STORE_TEST(driver_lock_is_seen),
    STORE_TEST(check_findings_and_fixes),
};

UNIT_MAIN("acmectl", tests)
