/* store_util.h - what the store tests (test_store.c, test_store_set.c) share: a fresh store in a
 * temp folder per test, keys and self-signed certificates, staging and promoting a set, small
 * file checks, and running an operation in a child that "crashes" at a given step. */
#ifndef ACME_STORE_UTIL_H
#define ACME_STORE_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <apr_file_info.h>
#include <apr_file_io.h>

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

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int fx_setup(void **state)
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

static inline int fx_teardown(void **state)
{
    fx_t *fx = *state;

    umask(fx->umask_before);
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    apr_pool_destroy(fx->p);
    return 0;
}

#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

/* ---- helpers: keys, self-signed certificates, files ---- */

static inline acme_key_t *make_key(apr_pool_t *p)
{
    EVP_PKEY *evp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    acme_key_t *key = NULL;

    assert_non_null(evp);
    assert_int_equal(acme_key_from_evp(&key, evp, p), APR_SUCCESS);
    return key;
}

/* A self-signed leaf for key with the given subjectAltName list ("DNS:a.test,IP:127.0.0.1"),
 * valid from now + from_s to now + to_s seconds; its PEM text. */
static inline const char *make_cert(apr_pool_t *p, const acme_key_t *key, const char *sans,
                                    long from_s, long to_s)
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

static inline tset_t make_set(apr_pool_t *p, const char *sans, long from_s, long to_s)
{
    tset_t s;

    s.key = make_key(p);
    s.pem = make_cert(p, s.key, sans, from_s, to_s);
    return s;
}

static inline tset_t valid_set(apr_pool_t *p)
{
    return make_set(p, "DNS:" NAME ",DNS:www." NAME, -HOUR, 90 * 24 * HOUR);
}

static inline apr_array_header_t *names_of(apr_pool_t *p, const char *a, const char *b)
{
    apr_array_header_t *names = apr_array_make(p, 2, sizeof(const char *));

    APR_ARRAY_PUSH(names, const char *) = a;
    if (b) {
        APR_ARRAY_PUSH(names, const char *) = b;
    }
    return names;
}

static inline void stage_ok(acme_store_t *store, const tset_t *s, apr_pool_t *p)
{
    const char *why = NULL;
    json_t *meta = acme_json_pool(p, json_pack("{s:s}", "source", "test"));

    assert_int_equal(acme_store_stage(store, NAME, s->key, s->pem, strlen(s->pem), meta, &why, p),
                     APR_SUCCESS);
    assert_null(why);
}

static inline void promote_ok(acme_store_t *store, apr_pool_t *p)
{
    const char *why = NULL;

    assert_int_equal(
        acme_store_promote(store, NAME, names_of(p, NAME, NULL), apr_time_now(), &why, p),
        APR_SUCCESS);
    assert_null(why);
}

static inline const char *read_text(acme_store_t *store, const char *relpath, apr_pool_t *p)
{
    char *data = NULL;
    apr_size_t len = 0;

    assert_int_equal(acme_store_read(&data, &len, store, relpath, 1024 * 1024, p), APR_SUCCESS);
    assert_int_equal(strlen(data), len);
    return data;
}

/* A file as mod_ssl reads it: by its absolute path, following the domains/<name> link that the
 * store itself never reads through. */
static inline const char *read_served(acme_store_t *store, const char *relpath, apr_pool_t *p)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    char *data;
    apr_size_t len = 0;

    assert_int_equal(apr_file_open(&f, acme_store_path(store, relpath, p), APR_FOPEN_READ, 0, p),
                     APR_SUCCESS);
    assert_int_equal(apr_file_info_get(&fi, APR_FINFO_SIZE, f), APR_SUCCESS);
    data = apr_palloc(p, (apr_size_t)fi.size + 1);
    assert_int_equal(apr_file_read_full(f, data, (apr_size_t)fi.size, &len), APR_SUCCESS);
    data[len] = '\0';
    apr_file_close(f);
    return data;
}

static inline int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A plain file written behind the store's back (another service's file, or the User's). */
static inline void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* A file's text read by its path, following links. */
static inline const char *slurp(const char *path, apr_pool_t *p)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return apr_pstrdup(p, buf);
}

/* rm -rf path, with no code of the store. */
static inline void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A chain of depth folders named "d" below the open folder dirfd, a file at the bottom. */
static inline void make_deep_tree(int dirfd, int depth)
{
    int fd = dup(dirfd), next, i;

    assert_true(fd >= 0);
    for (i = 0; i < depth; i++) {
        assert_int_equal(mkdirat(fd, "d", 0700), 0);
        next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
    }
    next = openat(fd, "bottom", O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(next >= 0);
    close(next);
    close(fd);
}

/* Number of entries of dir whose name contains needle. */
static inline int count_entries(const char *dir, const char *needle, apr_pool_t *p)
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

/* ---- crash seam ---- */

static inline void crash_at(void *baton, const char *step)
{
    if (strcmp(step, baton) == 0) {
        _exit(3);
    }
}

typedef apr_status_t op_fn(acme_store_t *store, apr_pool_t *p);

/* Runs op in a child process that dies at step; 1 when it died there. */
static inline int crashed_at(acme_store_t *store, const char *step, op_fn *op, apr_pool_t *p)
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

#endif /* ACME_STORE_UTIL_H */
