/* test_store.c - the file layer of the on-disk store: atomic writes under crashes and failures,
 * bounded reads, removal, JSON files, names and CA ids, permissions whatever the umask, and
 * absolute paths. Certificate sets are tested in test_store_set.c. */
#include <signal.h>
#include <sys/resource.h>

#include <sys/stat.h>
#include <unistd.h>

#include "store_util.h"

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static const char *const old_text = "old content, complete";
static const char *new_text;

static apr_status_t op_write(acme_store_t *store, apr_pool_t *p)
{
    return acme_store_write(store, "jobs/" NAME ".json", new_text, strlen(new_text),
                            APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
}

static apr_status_t op_write_volatile(acme_store_t *store, apr_pool_t *p)
{
    return acme_store_write_volatile(store, "jobs/" NAME ".json", new_text, strlen(new_text),
                                     APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
}

/* ---- atomic write, read ---- */

/* Both writes, with and without fsync: a process that dies at any step leaves the old file or
 * the new one whole, never a mix (a crash of the system is another matter: see acme_store.h). */
static void write_survives_crash_at_every_step(void **state)
{
    fx_t *fx = *state;
    op_fn *const ops[] = {op_write, op_write_volatile};
    size_t o;

    for (o = 0; o < 2; o++) {
        static const char *const steps[] = {"open", "write", "fsync", "rename", "dirsync"};
        char *big = apr_palloc(fx->p, 256 * 1024 + 1);
        size_t i;

        /* Large enough that a partial write would show. */
        memset(big, 'n', 256 * 1024);
        big[256 * 1024] = '\0';
        new_text = big;
        for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            const char *now;
            assert_int_equal(acme_store_write(fx->store, "jobs/" NAME ".json", old_text,
                                              strlen(old_text), APR_FPROT_UREAD | APR_FPROT_UWRITE,
                                              fx->p),
                             APR_SUCCESS);
            assert_true(crashed_at(fx->store, steps[i], ops[o], fx->p));
            now = read_text(fx->store, "jobs/" NAME ".json", fx->p);
            /* Before the rename the old file is all there is; from the rename on, the new one. */
            assert_string_equal(now, strcmp(steps[i], "dirsync") == 0 ? new_text : old_text);
        }
        /* The temp files of the crashed children are ignored by the next write. */
        assert_int_equal(ops[o](fx->store, fx->p), APR_SUCCESS);
        assert_string_equal(read_text(fx->store, "jobs/" NAME ".json", fx->p), new_text);
        assert_int_equal(mode_of(acme_store_path(fx->store, "jobs/" NAME ".json", fx->p)), 0600);
    }
}

static void write_failure_keeps_old_file(void **state)
{
    fx_t *fx = *state;
    const char *jobs = acme_store_path(fx->store, "jobs", fx->p);
    char *big = apr_palloc(fx->p, 64 * 1024);
    int status = 0;
    pid_t pid;

    memset(big, 'x', 64 * 1024);
    assert_int_equal(acme_store_write(fx->store, "jobs/" NAME ".json", old_text, strlen(old_text),
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    /* The disk "fills up" in a child: the file size limit makes write() fail with EFBIG. */
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {4096, 4096};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &rl);
        _exit(acme_store_write(fx->store, "jobs/" NAME ".json", big, 64 * 1024,
                               APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p) == APR_SUCCESS
                  ? 1
                  : 0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(read_text(fx->store, "jobs/" NAME ".json", fx->p), old_text);
    assert_int_equal(count_entries(jobs, ".tmp.", fx->p), 0);

    /* A folder where the file should go: the rename fails, nothing is left behind. */
    assert_int_equal(
        apr_dir_make(apr_pstrcat(fx->p, jobs, "/dir.json", NULL), APR_FPROT_OS_DEFAULT, fx->p),
        APR_SUCCESS);
    assert_int_not_equal(acme_store_write(fx->store, "jobs/dir.json", "x", 1,
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                         APR_SUCCESS);
    assert_int_equal(count_entries(jobs, ".tmp.", fx->p), 0);
    /* A file where a folder should be. */
    assert_int_not_equal(acme_store_write(fx->store, "jobs/" NAME ".json/x", "x", 1,
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                         APR_SUCCESS);
    assert_string_equal(read_text(fx->store, "jobs/" NAME ".json", fx->p), old_text);
}

static void read_is_bounded_and_terminated(void **state)
{
    fx_t *fx = *state;
    char *data = NULL;
    apr_size_t len = 0;

    assert_int_equal(acme_store_write(fx->store, "jobs/bin", "a\0b\nc", 5,
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/bin", 5, fx->p), APR_SUCCESS);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "a\0b\nc", 5);
    assert_int_equal(data[5], '\0');
    data = NULL;
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/bin", 4, fx->p), ACME_ETOOLARGE);
    assert_null(data);
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/none", 5, fx->p), APR_ENOENT);
    assert_null(data);
    assert_int_equal(acme_store_write(fx->store, "jobs/empty", NULL, 0,
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/empty", 5, fx->p), APR_SUCCESS);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
}

static void remove_is_idempotent(void **state)
{
    fx_t *fx = *state;
    char *data = NULL;
    apr_size_t len;

    assert_int_equal(acme_store_remove(fx->store, "jobs/none.json", fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_write(fx->store, "jobs/x.json", "{}", 2, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_remove(fx->store, "jobs/x.json", fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/x.json", 10, fx->p), APR_ENOENT);
    assert_int_equal(acme_store_write(fx->store, "jobs/d/e/f", "1", 1, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_remove(fx->store, "jobs/d", fx->p), APR_SUCCESS);
    assert_false(exists(acme_store_path(fx->store, "jobs/d", fx->p)));
}

/* ---- JSON ---- */

static void json_roundtrip_and_bad_files(void **state)
{
    fx_t *fx = *state;
    json_t *in = acme_json_pool(fx->p, json_pack("{s:s, s:i}", "order", "https://x/1", "n", 3));
    json_t *out = NULL;
    char *big;
    static const char *const bad[] = {"{\"order\": \"https://x/", "[1, 2]", "", "\"s\"", "{} {"};
    size_t i;

    assert_int_equal(acme_store_json_write(fx->store, "jobs/" NAME ".json", in, fx->p),
                     APR_SUCCESS);
    assert_int_equal(mode_of(acme_store_path(fx->store, "jobs/" NAME ".json", fx->p)), 0600);
    assert_int_equal(acme_store_json_read(&out, fx->store, "jobs/" NAME ".json", fx->p),
                     APR_SUCCESS);
    assert_true(json_equal(in, out));
    assert_int_equal(acme_store_json_write(fx->store, "jobs/arr.json",
                                           acme_json_pool(fx->p, json_array()), fx->p),
                     APR_EINVAL);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out = NULL;
        assert_int_equal(acme_store_write(fx->store, "jobs/bad.json", bad[i], strlen(bad[i]),
                                          APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                         APR_SUCCESS);
        assert_int_equal(acme_store_json_read(&out, fx->store, "jobs/bad.json", fx->p),
                         ACME_EBADSTORE);
        assert_null(out);
    }
    big = apr_palloc(fx->p, ACME_STORE_JSON_MAX + 1);
    memset(big, ' ', ACME_STORE_JSON_MAX + 1);
    big[0] = '{';
    big[ACME_STORE_JSON_MAX] = '}';
    assert_int_equal(acme_store_write(fx->store, "jobs/big.json", big, ACME_STORE_JSON_MAX + 1,
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    assert_int_equal(acme_store_json_read(&out, fx->store, "jobs/big.json", fx->p), ACME_ETOOLARGE);
    assert_int_equal(acme_store_json_read(&out, fx->store, "jobs/none.json", fx->p), APR_ENOENT);
    assert_null(out);
}

/* ---- names ---- */

static void names_are_checked(void **state)
{
    fx_t *fx = *state;
    /* A wildcard has a store name of its own: '*' is a glob in an operator's shell. */
    static const char *const bad[] = {"../x", "a/b",  "",        ".hidden",  ".",
                                      "..",   "/etc", "a.test/", "*.a.test", "a*"};
    static const char *const good[] = {"a.test", "www.a.test",          "127.0.0.1",
                                       "::1",    "127.0.0.1_14000_dir", "_wildcard.a.test"};
    static const char *const bad_paths[] = {"../x",    "/etc/passwd", "jobs/../../x", "",
                                            "jobs//x", "jobs/./x",    "jobs/.."};
    tset_t s = valid_set(fx->p);
    acme_certset_t *set = NULL;
    char *data;
    apr_size_t len;
    size_t i;

    assert_false(acme_store_name_ok(NULL));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(acme_store_name_ok(bad[i]));
        assert_int_equal(
            acme_store_stage(fx->store, bad[i], s.key, s.pem, strlen(s.pem), NULL, NULL, fx->p),
            APR_EINVAL);
        assert_int_equal(acme_store_load(&set, fx->store, bad[i], 0, NULL, fx->p), APR_EINVAL);
        assert_int_equal(acme_store_load(&set, fx->store, bad[i], 1, NULL, fx->p), APR_EINVAL);
        assert_int_equal(acme_store_promote(fx->store, bad[i], NULL, 0, NULL, fx->p), APR_EINVAL);
    }
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(acme_store_name_ok(good[i]));
    }
    for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
        assert_int_equal(acme_store_write(fx->store, bad_paths[i], "x", 1, APR_FPROT_UREAD, fx->p),
                         APR_EINVAL);
        assert_int_equal(acme_store_read(&data, &len, fx->store, bad_paths[i], 10, fx->p),
                         APR_EINVAL);
        assert_int_equal(acme_store_remove(fx->store, bad_paths[i], fx->p), APR_EINVAL);
    }
    assert_false(exists(apr_pstrcat(fx->p, fx->dir, "/x", NULL)));
}

static void ca_id_is_a_safe_name(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    const char *a, *b;
    char *longer = apr_palloc(p, 600);

    assert_string_equal(acme_store_ca_id("https://127.0.0.1:14000/dir", p), "127.0.0.1_14000_dir");
    assert_string_equal(acme_store_ca_id("https://acme-v02.api.letsencrypt.org/directory", p),
                        "acme-v02.api.letsencrypt.org_directory");
    assert_string_equal(acme_store_ca_id("https://user:pw@CA.Example:443/Dir/x?q=1#f", p),
                        "ca.example_443_Dir_x");
    assert_string_equal(acme_store_ca_id("https://[::1]:14000/dir", p), "___1__14000_dir");
    assert_true(acme_store_name_ok(acme_store_ca_id("https://127.0.0.1:14000/dir", p)));
    assert_true(acme_store_name_ok(acme_store_ca_id("https://[::1]:14000/a/../b", p)));
    assert_true(acme_store_name_ok(acme_store_ca_id(".", p)));
    assert_true(acme_store_name_ok(acme_store_ca_id("", p)));

    memset(longer, 'a', 599);
    longer[599] = '\0';
    memcpy(longer, "https://ca.test/", 16);
    a = acme_store_ca_id(longer, p);
    longer[598] = 'b';
    b = acme_store_ca_id(longer, p);
    assert_true(strlen(a) <= 200);
    assert_true(acme_store_name_ok(a));
    assert_string_not_equal(a, b);
}

/* ---- permissions ---- */

static void modes_ignore_umask(void **state)
{
    fx_t *fx = *state;
    static const mode_t masks[] = {0, 077, 0777};
    static const char *const dirs[] = {
        "",      "/accounts",         "/domains",       "/archive",           "/staging",
        "/jobs", "/accounts/ca/deep", "/archive/" NAME, "/archive/" NAME "/1"};
    size_t m, i;

    for (m = 0; m < sizeof(masks) / sizeof(masks[0]); m++) {
        acme_store_t *store;
        const char *root = apr_psprintf(fx->p, "%s/mask%o", fx->dir, (unsigned)masks[m]);
        tset_t s = valid_set(fx->p);

        umask(masks[m]);
        assert_int_equal(acme_store_open(&store, apr_pstrcat(fx->p, root, "/store", NULL), fx->p),
                         APR_SUCCESS);
        assert_int_equal(acme_store_json_write(store, "accounts/ca/deep/account.json",
                                               acme_json_pool(fx->p, json_object()), fx->p),
                         APR_SUCCESS);
        assert_int_equal(
            acme_store_write(store, "accounts/ca/pub", "x", 1,
                             APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD,
                             fx->p),
            APR_SUCCESS);
        stage_ok(store, &s, fx->p);
        assert_int_equal(mode_of(acme_store_path(store, "staging/" NAME, fx->p)), 0700);
        assert_int_equal(mode_of(acme_store_path(store, "staging/" NAME "/privkey.pem", fx->p)),
                         0600);
        promote_ok(store, fx->p);
        for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
            assert_int_equal(mode_of(apr_pstrcat(fx->p, root, "/store", dirs[i], NULL)), 0700);
        }
        assert_int_equal(mode_of(acme_store_path(store, "accounts/ca/deep/account.json", fx->p)),
                         0600);
        assert_int_equal(mode_of(acme_store_path(store, "accounts/ca/pub", fx->p)), 0644);
        assert_int_equal(mode_of(acme_store_path(store, "archive/" NAME "/1/privkey.pem", fx->p)),
                         0600);
        assert_int_equal(mode_of(acme_store_path(store, "archive/" NAME "/1/fullchain.pem", fx->p)),
                         0644);
        assert_int_equal(mode_of(acme_store_path(store, "archive/" NAME "/1/meta.json", fx->p)),
                         0600);
        umask(022);
    }
}

static void open_makes_paths_absolute(void **state)
{
    fx_t *fx = *state;
    acme_store_t *store;
    char cwd[1024];

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(fx->dir), 0);
    assert_int_equal(acme_store_open(&store, "rel/store/", fx->p), APR_SUCCESS);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(acme_store_dir(store), apr_pstrcat(fx->p, fx->dir, "/rel/store", NULL));
    assert_string_equal(acme_store_path(store, "jobs/x", fx->p),
                        apr_pstrcat(fx->p, fx->dir, "/rel/store/jobs/x", NULL));
}

/* What the server's User may plant in its folders never steers root elsewhere: reads refuse
 * symlinks, FIFOs and hard links; removal removes a link, not what it points to. */
static void planted_links_are_refused(void **state)
{
    fx_t *fx = *state;
    const char *outside = apr_pstrcat(fx->p, fx->dir, "/outside", NULL);
    const char *secret = apr_pstrcat(fx->p, outside, "/secret.pem", NULL);
    char *data = NULL;
    apr_size_t len;

    assert_int_equal(mkdir(outside, 0700), 0);
    assert_int_equal(acme_store_write(fx->store, "jobs/real.json", "{}", 2, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    {
        FILE *f = fopen(secret, "w");
        assert_non_null(f);
        fputs("secret", f);
        fclose(f);
    }
    assert_int_equal(symlink(secret, acme_store_path(fx->store, "jobs/link.json", fx->p)), 0);
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/link.json", 100, fx->p),
                     ACME_EBADSTORE);
    assert_int_equal(link(secret, acme_store_path(fx->store, "jobs/hard.json", fx->p)), 0);
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/hard.json", 100, fx->p),
                     ACME_EBADSTORE);
    assert_int_equal(mkfifo(acme_store_path(fx->store, "jobs/fifo.json", fx->p), 0600), 0);
    assert_int_equal(acme_store_read(&data, &len, fx->store, "jobs/fifo.json", 100, fx->p),
                     ACME_EBADSTORE);
    assert_null(data);
    /* A folder swapped for a link to elsewhere: the link goes, the target stays. */
    assert_int_equal(symlink(outside, acme_store_path(fx->store, "staging/a.test", fx->p)), 0);
    assert_int_equal(acme_store_remove(fx->store, "staging/a.test", fx->p), APR_SUCCESS);
    assert_true(exists(secret));
    assert_false(exists(acme_store_path(fx->store, "staging/a.test", fx->p)));
}

/* The parent (root) reads, writes and removes in the User's folders. A link planted at any level
 * of such a path (the folder itself, a subfolder, the file) is refused: what it points to is
 * neither read, nor changed, nor removed. */
static void links_at_every_level_are_refused(void **state)
{
    fx_t *fx = *state;
    static const char *const paths[] = {"jobs/" NAME ".json", "accounts/ca/account.key",
                                        "accounts/ca/account.json", "staging/restart.wanted"};
    const char *outside = apr_pstrcat(fx->p, fx->dir, "/outside", NULL);
    size_t i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const char *path = paths[i], *slash, *end;
        const char *top = apr_pstrmemdup(fx->p, path, strcspn(path, "/"));
        const char *secret = apr_pstrcat(fx->p, outside, "/", path, NULL);

        /* Outside the store, the same tree: what a link would lead root to. */
        rm_tree(outside);
        for (slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
            const char *d = apr_pstrcat(
                fx->p, outside, "/", apr_pstrmemdup(fx->p, path, (apr_size_t)(slash - path)), NULL);
            assert_int_equal(apr_dir_make_recursive(d, APR_FPROT_OS_DEFAULT, fx->p), APR_SUCCESS);
        }
        put_file(secret, "{\"secret\": 1}");

        /* The link at each level in turn: the folders above it are real. */
        for (end = strchr(path, '/');; end = strchr(end + 1, '/')) {
            const char *level = end ? apr_pstrmemdup(fx->p, path, (apr_size_t)(end - path)) : path;
            const char *here = acme_store_path(fx->store, level, fx->p);
            char *data = NULL;
            json_t *json = NULL;
            apr_size_t len;

            rm_tree(acme_store_path(fx->store, top, fx->p));
            assert_int_equal(
                apr_dir_make_recursive(apr_pstrmemdup(fx->p, here, strrchr(here, '/') - here),
                                       APR_FPROT_OS_DEFAULT, fx->p),
                APR_SUCCESS);
            assert_int_equal(symlink(apr_pstrcat(fx->p, outside, "/", level, NULL), here), 0);

            assert_int_equal(acme_store_read(&data, &len, fx->store, path, 1024, fx->p),
                             ACME_EBADSTORE);
            assert_null(data);
            assert_int_equal(acme_store_json_read(&json, fx->store, path, fx->p), ACME_EBADSTORE);
            assert_null(json);
            /* A write through a link in a folder is refused; over a link as the file itself, it
             * replaces the link. The file outside stays as it was either way. */
            if (end) {
                assert_int_not_equal(acme_store_write(fx->store, path, "{}", 2,
                                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                                     APR_SUCCESS);
            }
            assert_string_equal(slurp(secret, fx->p), "{\"secret\": 1}");
            acme_store_remove(fx->store, path, fx->p);
            assert_true(exists(secret));
            if (!end) {
                break;
            }
        }
        rm_tree(acme_store_path(fx->store, top, fx->p));
        assert_int_equal(mkdir(acme_store_path(fx->store, top, fx->p), 0700), 0);
    }
}

/* Setting a staged set aside renames the entry the User left, link or folder, never what a
 * link names, and refuses a link among the folders of either path. */
static void rename_moves_the_entry(void **state)
{
    fx_t *fx = *state;
    const char *outside = apr_pstrcat(fx->p, fx->dir, "/outside", NULL);
    const char *aside = acme_store_path(fx->store, "staging/.rejected." NAME ".1", fx->p);

    assert_int_equal(mkdir(outside, 0700), 0);
    put_file(apr_pstrcat(fx->p, outside, "/privkey.pem", NULL), "key");
    assert_int_equal(symlink(outside, acme_store_path(fx->store, "staging/" NAME, fx->p)), 0);
    assert_int_equal(
        acme_store_rename(fx->store, "staging/" NAME, "staging/.rejected." NAME ".1", fx->p),
        APR_SUCCESS);
    assert_false(exists(acme_store_path(fx->store, "staging/" NAME, fx->p)));
    assert_int_equal(count_entries(outside, "privkey.pem", fx->p), 1);
    {
        struct stat st;
        assert_int_equal(lstat(aside, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
    }
    assert_int_equal(acme_store_rename(fx->store, "staging/none", "staging/x", fx->p), APR_ENOENT);
    /* Through a link in place of a folder: refused, nothing moves. */
    rm_tree(acme_store_path(fx->store, "jobs", fx->p));
    assert_int_equal(symlink(outside, acme_store_path(fx->store, "jobs", fx->p)), 0);
    assert_int_equal(acme_store_rename(fx->store, "jobs/privkey.pem", "staging/stolen.pem", fx->p),
                     ACME_EBADSTORE);
    assert_int_equal(acme_store_rename(fx->store, "staging/.rejected." NAME ".1", "jobs/x", fx->p),
                     ACME_EBADSTORE);
    assert_int_equal(count_entries(outside, "privkey.pem", fx->p), 1);
    assert_true(exists(aside));
    assert_int_equal(acme_store_rename(fx->store, "../x", "staging/x", fx->p), APR_EINVAL);
}

/* A tree the User planted deeper than removal descends at once is removed all the same. */
static void remove_goes_any_depth(void **state)
{
    fx_t *fx = *state;
    const char *jobs = acme_store_path(fx->store, "jobs", fx->p);
    const char *outside = apr_pstrcat(fx->p, fx->dir, "/outside", NULL);
    int fd;

    assert_int_equal(mkdir(apr_pstrcat(fx->p, jobs, "/deep", NULL), 0700), 0);
    fd = open(apr_pstrcat(fx->p, jobs, "/deep", NULL), O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    make_deep_tree(fd, 300);
    /* Wide too, with a link to outside at the top: the link goes, not what it names. */
    assert_int_equal(mkdirat(fd, "wide", 0700), 0);
    close(fd);
    fd = open(apr_pstrcat(fx->p, jobs, "/deep/wide", NULL), O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    make_deep_tree(fd, 40);
    close(fd);
    assert_int_equal(mkdir(outside, 0700), 0);
    put_file(apr_pstrcat(fx->p, outside, "/keep", NULL), "keep");
    assert_int_equal(symlink(outside, apr_pstrcat(fx->p, jobs, "/deep/link", NULL)), 0);

    assert_int_equal(acme_store_remove(fx->store, "jobs/deep", fx->p), APR_SUCCESS);
    assert_false(exists(apr_pstrcat(fx->p, jobs, "/deep", NULL)));
    assert_int_equal(count_entries(jobs, "", fx->p), 2); /* "." and ".." */
    assert_string_equal(slurp(apr_pstrcat(fx->p, outside, "/keep", NULL), fx->p), "keep");
}

/* ---- ownership of the folders only the opener may change ---- */

static const char *why_of(const char *dir, apr_pool_t *p)
{
    const char *why = NULL;

    assert_int_equal(acme_store_check_owner(dir, &why, p), ACME_EBADSTORE);
    assert_non_null(why);
    return why;
}

/* A link, a file or a folder others may write where the store keeps what only its owner may
 * change: the store is refused before anything is made in it, and the reason names the folder
 * and the command that fixes it. */
static void open_refuses_links_and_loose_modes(void **state)
{
    fx_t *fx = *state;
    const char *top = apr_pstrcat(fx->p, fx->dir, "/s", NULL);
    const char *outside = apr_pstrcat(fx->p, fx->dir, "/etc", NULL);
    const char *archive = apr_pstrcat(fx->p, top, "/archive", NULL);
    acme_store_t *store = NULL;
    const char *why;

    assert_int_equal(mkdir(top, 0700), 0);
    assert_int_equal(mkdir(outside, 0700), 0);
    assert_int_equal(symlink(outside, archive), 0);
    assert_int_equal(acme_store_open(&store, top, fx->p), ACME_EBADSTORE);
    assert_null(store);
    why = why_of(top, fx->p);
    assert_non_null(strstr(why, apr_pstrcat(fx->p, archive, " is a symbolic link", NULL)));
    assert_non_null(strstr(why, apr_pstrcat(fx->p, "mv ", archive, " ", archive, ".moved", NULL)));
    /* Nothing was made through the link, nor beside it. */
    assert_int_equal(count_entries(outside, "", fx->p), 2);
    assert_false(exists(apr_pstrcat(fx->p, top, "/domains", NULL)));
    assert_int_equal(unlink(archive), 0);

    /* domains/ writable by others, the top by its group; a file as fallback/. */
    assert_int_equal(mkdir(apr_pstrcat(fx->p, top, "/domains", NULL), 0700), 0);
    assert_int_equal(chmod(apr_pstrcat(fx->p, top, "/domains", NULL), 0777), 0);
    assert_int_equal(chmod(top, 0770), 0);
    put_file(apr_pstrcat(fx->p, top, "/fallback", NULL), "x");
    assert_int_equal(acme_store_open(&store, top, fx->p), ACME_EBADSTORE);
    why = why_of(top, fx->p);
    assert_non_null(
        strstr(why, apr_pstrcat(fx->p, top,
                                "/domains can be written by group or others (mode 0777)", NULL)));
    assert_non_null(strstr(why, apr_pstrcat(fx->p, "chmod go-w ", top, "/domains", NULL)));
    assert_non_null(strstr(why, apr_pstrcat(fx->p, "chmod go-w ", top, " ", NULL)));
    assert_non_null(strstr(why, apr_pstrcat(fx->p, top, "/fallback is not a folder", NULL)));
    /* The User's folders may belong to anyone, but must be folders. */
    assert_int_equal(symlink(outside, apr_pstrcat(fx->p, top, "/staging", NULL)), 0);
    why = why_of(top, fx->p);
    assert_non_null(strstr(why, apr_pstrcat(fx->p, top, "/staging is a symbolic link", NULL)));

    /* Fixed as the message says: the store opens. */
    assert_int_equal(chmod(apr_pstrcat(fx->p, top, "/domains", NULL), 0700), 0);
    assert_int_equal(chmod(top, 0700), 0);
    assert_int_equal(unlink(apr_pstrcat(fx->p, top, "/fallback", NULL)), 0);
    assert_int_equal(unlink(apr_pstrcat(fx->p, top, "/staging", NULL)), 0);
    assert_int_equal(acme_store_check_owner(top, NULL, fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_open(&store, top, fx->p), APR_SUCCESS);
    /* A store that is not there yet is fine: the opener makes it. */
    assert_int_equal(acme_store_check_owner(apr_pstrcat(fx->p, fx->dir, "/new", NULL), NULL, fx->p),
                     APR_SUCCESS);
}

/* A store made by another user (an unprivileged run, say) is refused by root: the reason names
 * each folder, its owner and the chown that fixes it (the top alone, the others whole). */
static void open_refuses_folders_of_another_user(void **state)
{
    fx_t *fx = *state;
    const char *top = apr_pstrcat(fx->p, fx->dir, "/s", NULL);
    acme_store_t *store = NULL;
    const char *why;

    if (geteuid() != 0) {
        print_message("open_refuses_folders_of_another_user needs root (chown): skipped\n");
        skip();
    }
    assert_int_equal(acme_store_open(&store, top, fx->p), APR_SUCCESS);
    assert_int_equal(chown(apr_pstrcat(fx->p, top, "/archive", NULL), 65534, 65534), 0);
    store = NULL;
    assert_int_equal(acme_store_open(&store, top, fx->p), ACME_EBADSTORE);
    assert_null(store);
    why = why_of(top, fx->p);
    assert_non_null(strstr(why, apr_pstrcat(fx->p, top, "/archive belongs to ", NULL)));
    assert_non_null(strstr(why, "uid 65534)"));
    assert_non_null(strstr(why, apr_pstrcat(fx->p, "chown -R root:root ", top, "/archive", NULL)));
    assert_null(strstr(why, apr_pstrcat(fx->p, top, " belongs", NULL)));

    assert_int_equal(chown(top, 65534, 65534), 0);
    why = why_of(top, fx->p);
    assert_non_null(strstr(why, apr_pstrcat(fx->p, top, " belongs to ", NULL)));
    assert_non_null(strstr(why, apr_pstrcat(fx->p, "chown root:root ", top, " && ", NULL)));
    /* The User's folders may be anyone's: the parent hands them over at each start. */
    assert_int_equal(chown(apr_pstrcat(fx->p, top, "/jobs", NULL), 65534, 65534), 0);
    assert_null(strstr(why_of(top, fx->p), "/jobs"));

    assert_int_equal(chown(top, 0, 0), 0);
    assert_int_equal(chown(apr_pstrcat(fx->p, top, "/archive", NULL), 0, 0), 0);
    assert_int_equal(acme_store_open(&store, top, fx->p), APR_SUCCESS);
}

static const struct CMUnitTest tests[] = {
    STORE_TEST(write_survives_crash_at_every_step),
    STORE_TEST(write_failure_keeps_old_file),
    STORE_TEST(read_is_bounded_and_terminated),
    STORE_TEST(remove_is_idempotent),
    STORE_TEST(planted_links_are_refused),
    STORE_TEST(links_at_every_level_are_refused),
    STORE_TEST(remove_goes_any_depth),
    STORE_TEST(rename_moves_the_entry),
    STORE_TEST(open_refuses_links_and_loose_modes),
    STORE_TEST(open_refuses_folders_of_another_user),
    STORE_TEST(json_roundtrip_and_bad_files),
    STORE_TEST(names_are_checked),
    STORE_TEST(ca_id_is_a_safe_name),
    STORE_TEST(modes_ignore_umask),
    STORE_TEST(open_makes_paths_absolute),
};

UNIT_MAIN("store", tests)
