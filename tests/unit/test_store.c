/* test_store.c - the on-disk store: atomic writes under crashes and failures, bounded reads,
 * permissions whatever the umask, names, and staging and promotion of certificate sets. */
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_thread_proc.h>

#include "unit.h"

#include "acme_store.h"

#define NAME "a.test"
#define HOUR (3600L)

typedef struct fx_t {
    apr_pool_t *p;
    char dir[64]; /* the folder of this test, removed after it */
    acme_store_t *store;
    mode_t umask_before;
} fx_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int fx_setup(void **state)
{
    apr_pool_t *p;
    fx_t *fx;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    fx = apr_pcalloc(p, sizeof(*fx));
    fx->p = p;
    fx->umask_before = umask(022);
    strcpy(fx->dir, "/tmp/acme-store-test-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        return -1;
    }
    if (acme_store_open(&fx->store, apr_pstrcat(p, fx->dir, "/store", NULL), p) != APR_SUCCESS) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *fx = *state;

    umask(fx->umask_before);
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    apr_pool_destroy(fx->p);
    return 0;
}

#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

/* ---- helpers: keys, self-signed certificates, files ---- */

static acme_key_t *make_key(apr_pool_t *p)
{
    EVP_PKEY *evp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    acme_key_t *key = NULL;

    assert_non_null(evp);
    assert_int_equal(acme_key_from_evp(&key, evp, p), APR_SUCCESS);
    return key;
}

/* A self-signed leaf for key with the given subjectAltName list ("DNS:a.test,IP:127.0.0.1"),
 * valid from now + from_s to now + to_s seconds; its PEM text. */
static const char *make_cert(apr_pool_t *p, const acme_key_t *key, const char *sans, long from_s,
                             long to_s)
{
    static long serial = 1;
    EVP_PKEY *evp = acme_key_evp(key);
    X509 *x = X509_new();
    X509_NAME *subject;
    X509_EXTENSION *ext;
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem;
    const char *pem;

    assert_non_null(x);
    assert_non_null(bio);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
    assert_int_equal(X509_set_pubkey(x, evp), 1);
    subject = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"store test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, subject), 1);
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, evp, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    BIO_get_mem_ptr(bio, &mem);
    pem = apr_pstrmemdup(p, mem->data, mem->length);
    BIO_free(bio);
    X509_free(x);
    return pem;
}

typedef struct tset_t {
    acme_key_t *key;
    const char *pem;
} tset_t;

static tset_t make_set(apr_pool_t *p, const char *sans, long from_s, long to_s)
{
    tset_t s;

    s.key = make_key(p);
    s.pem = make_cert(p, s.key, sans, from_s, to_s);
    return s;
}

static tset_t valid_set(apr_pool_t *p)
{
    return make_set(p, "DNS:" NAME ",DNS:www." NAME, -HOUR, 90 * 24 * HOUR);
}

static apr_array_header_t *names_of(apr_pool_t *p, const char *a, const char *b)
{
    apr_array_header_t *names = apr_array_make(p, 2, sizeof(const char *));

    APR_ARRAY_PUSH(names, const char *) = a;
    if (b) {
        APR_ARRAY_PUSH(names, const char *) = b;
    }
    return names;
}

static void stage_ok(acme_store_t *store, const tset_t *s, apr_pool_t *p)
{
    const char *why = NULL;
    json_t *meta = acme_json_pool(p, json_pack("{s:s}", "source", "test"));

    assert_int_equal(acme_store_stage(store, NAME, s->key, s->pem, strlen(s->pem), meta, &why, p),
                     APR_SUCCESS);
    assert_null(why);
}

static void promote_ok(acme_store_t *store, apr_pool_t *p)
{
    const char *why = NULL;

    assert_int_equal(
        acme_store_promote(store, NAME, names_of(p, NAME, NULL), apr_time_now(), &why, p),
        APR_SUCCESS);
    assert_null(why);
}

static const char *read_text(acme_store_t *store, const char *relpath, apr_pool_t *p)
{
    char *data = NULL;
    apr_size_t len = 0;

    assert_int_equal(acme_store_read(&data, &len, store, relpath, 1024 * 1024, p), APR_SUCCESS);
    assert_int_equal(strlen(data), len);
    return data;
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Number of entries of dir whose name contains needle. */
static int count_entries(const char *dir, const char *needle, apr_pool_t *p)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    int n = 0;

    assert_int_equal(apr_dir_open(&d, dir, p), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        if (strstr(fi.name, needle)) {
            n++;
        }
    }
    apr_dir_close(d);
    return n;
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
    chain = read_text(store, "domains/" NAME "/" ACME_STORE_CHAIN_FILE, p);
    assert_true(strcmp(chain, a->pem) == 0 || strcmp(chain, b->pem) == 0);
    which = strcmp(chain, a->pem) == 0 ? a : b;
    assert_int_equal(acme_key_to_pem(&key_pem, &key_len, which->key, p), APR_SUCCESS);
    assert_string_equal(read_text(store, "domains/" NAME "/" ACME_STORE_KEY_FILE, p), key_pem);
    return which == b;
}

/* ---- crash seam ---- */

static void crash_at(void *baton, const char *step)
{
    if (strcmp(step, baton) == 0) {
        _exit(3);
    }
}

typedef apr_status_t op_fn(acme_store_t *store, apr_pool_t *p);

/* Runs op in a child process that dies at step; 1 when it died there. */
static int crashed_at(acme_store_t *store, const char *step, op_fn *op, apr_pool_t *p)
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        acme_store_set_step_hook(store, crash_at, (void *)step);
        op(store, p);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 3;
}

static const char *const old_text = "old content, complete";
static const char *new_text;

static apr_status_t op_write(acme_store_t *store, apr_pool_t *p)
{
    return acme_store_write(store, "jobs/" NAME ".json", new_text, strlen(new_text),
                            APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
}

static apr_status_t op_promote(acme_store_t *store, apr_pool_t *p)
{
    return acme_store_promote(store, NAME, NULL, apr_time_now(), NULL, p);
}

/* ---- atomic write, read ---- */

static void write_survives_crash_at_every_step(void **state)
{
    fx_t *fx = *state;
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
        assert_true(crashed_at(fx->store, steps[i], op_write, fx->p));
        now = read_text(fx->store, "jobs/" NAME ".json", fx->p);
        /* Before the rename the old file is all there is; from the rename on, the new one. */
        assert_string_equal(now, strcmp(steps[i], "dirsync") == 0 ? new_text : old_text);
    }
    /* The temp files of the crashed children are ignored by the next write. */
    assert_int_equal(op_write(fx->store, fx->p), APR_SUCCESS);
    assert_string_equal(read_text(fx->store, "jobs/" NAME ".json", fx->p), new_text);
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
    static const char *const bad[] = {"../x", "a/b", "", ".hidden", ".", "..", "/etc", "a.test/"};
    static const char *const good[] = {"a.test", "www.a.test", "127.0.0.1", "::1",
                                       "127.0.0.1_14000_dir"};
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
    assert_non_null(why);
    why = NULL;
    assert_int_equal(acme_store_stage(fx->store, NAME, s.key, "junk", 4, NULL, &why, fx->p),
                     ACME_EBADSTORE);
    assert_non_null(why);
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
    assert_non_null(why);
    /* A plain file instead of a link. */
    assert_int_equal(unlink(link), 0);
    assert_int_equal(acme_store_write(fx->store, "domains/" NAME, "x", 1, APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 0, &why, fx->p), ACME_EBADSTORE);
    assert_non_null(why);
    /* A staged key that is not the chain's, or a missing chain. */
    assert_int_equal(acme_store_write(fx->store, "staging/" NAME "/privkey.pem", "junk", 4,
                                      APR_FPROT_UREAD, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, &why, fx->p), ACME_EBADSTORE);
    assert_non_null(why);
    assert_null(set);
}

/* ---- promotion ---- */

static void promote_refuses_bad_sets(void **state)
{
    fx_t *fx = *state;
    tset_t a = valid_set(fx->p), b = valid_set(fx->p);
    tset_t later = make_set(fx->p, "DNS:" NAME, 24 * HOUR, 48 * HOUR);
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
    assert_non_null(why);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);
    assert_int_equal(acme_store_load(&set, fx->store, NAME, 1, NULL, fx->p), APR_SUCCESS);

    /* Not yet valid, and no longer valid. */
    assert_int_equal(acme_store_stage(fx->store, NAME, later.key, later.pem, strlen(later.pem),
                                      NULL, NULL, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), ACME_EBADSTORE);
    assert_non_null(why);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);
    assert_int_equal(acme_store_stage(fx->store, NAME, expired.key, expired.pem,
                                      strlen(expired.pem), NULL, NULL, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), ACME_EBADSTORE);
    assert_non_null(why);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);

    /* A staged key that is not the chain's (written behind stage's back). */
    assert_int_equal(acme_key_to_pem(&key_pem, &key_len, b.key, fx->p), APR_SUCCESS);
    assert_int_equal(acme_store_write(fx->store, "staging/" NAME "/privkey.pem", key_pem, key_len,
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, fx->p),
                     APR_SUCCESS);
    why = NULL;
    assert_int_equal(acme_store_promote(fx->store, NAME, NULL, now, &why, fx->p), ACME_EBADSTORE);
    assert_non_null(why);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 0);
    assert_true(exists(acme_store_path(fx->store, "staging/" NAME "/privkey.pem", fx->p)));
    /* Nothing was archived by the refusals. */
    assert_false(exists(acme_store_path(fx->store, "archive/" NAME "/2", fx->p)));

    stage_ok(fx->store, &b, fx->p);
    promote_ok(fx->store, fx->p);
    assert_int_equal(active_is(fx->store, &a, &b, fx->p), 1);
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

static void promote_survives_crash_at_every_step(void **state)
{
    fx_t *fx = *state;
    static const char *const steps[] = {"archive-write", "open",    "write",          "fsync",
                                        "rename",        "dirsync", "archive-rename", "link",
                                        "link-rename",   "unstage"};
    size_t i;

    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        acme_store_t *store;
        tset_t a = valid_set(fx->p), b = valid_set(fx->p);
        acme_certset_t *staged = NULL;
        const char *root = apr_psprintf(fx->p, "%s/%s", fx->dir, steps[i]);
        int is_new;

        assert_int_equal(acme_store_open(&store, root, fx->p), APR_SUCCESS);
        stage_ok(store, &a, fx->p);
        promote_ok(store, fx->p);
        stage_ok(store, &b, fx->p);

        assert_true(crashed_at(store, steps[i], op_promote, fx->p));
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
            read_text(fx->store, apr_pstrcat(fx->p, "domains/", w[i].name, "/fullchain.pem", NULL),
                      fx->p),
            w[i].sets[ROUNDS - 1].pem);
    }
}

static const struct CMUnitTest tests[] = {
    STORE_TEST(write_survives_crash_at_every_step),
    STORE_TEST(write_failure_keeps_old_file),
    STORE_TEST(read_is_bounded_and_terminated),
    STORE_TEST(remove_is_idempotent),
    STORE_TEST(json_roundtrip_and_bad_files),
    STORE_TEST(names_are_checked),
    STORE_TEST(ca_id_is_a_safe_name),
    STORE_TEST(modes_ignore_umask),
    STORE_TEST(open_makes_paths_absolute),
    STORE_TEST(stage_checks_and_loads),
    STORE_TEST(load_refuses_broken_sets),
    STORE_TEST(promote_refuses_bad_sets),
    STORE_TEST(promote_counts_generations),
    STORE_TEST(promote_survives_crash_at_every_step),
    STORE_TEST(promote_cleans_only_its_leftovers),
    STORE_TEST(threads_on_different_names),
};

UNIT_MAIN("store", tests)
