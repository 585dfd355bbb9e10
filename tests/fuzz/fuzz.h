/* fuzz.h - what the libFuzzer targets of tests/fuzz/ share: one APR pool per input, a log that
 * formats every message (so a bad format argument shows), a clock that stands still, a CA
 * transport that answers from the input, a scratch store, and input splitting.
 *
 * Each target defines LLVMFuzzerTestOneInput. `make fuzz` links it with libFuzzer and the
 * sanitizers (clang); `make check` links it with replay.c and the normal compiler and feeds it the
 * files of tests/fuzz/corpus/<target>/. A target calls abort() (through FUZZ_ASSERT) when a
 * property of the code under test does not hold, so libFuzzer reports it like a crash.
 */
#ifndef ACME_FUZZ_H
#define ACME_FUZZ_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "acme_client.h"
#include "acme_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A fixed "now" for every target: 2025-06-01T00:00:00Z. */
#define FUZZ_NOW apr_time_from_sec(1748736000)

/* The process pool, made on first use; each input gets a subpool destroyed after it. */
static inline apr_pool_t *fuzz_root_pool(void)
{
    static apr_pool_t *root;

    if (!root) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&root, NULL) != APR_SUCCESS) {
            abort();
        }
    }
    return root;
}

static inline apr_pool_t *fuzz_pool(void)
{
    apr_pool_t *p;

    if (apr_pool_create(&p, fuzz_root_pool()) != APR_SUCCESS) {
        abort();
    }
    return p;
}

/* APR's allocator may take its memory with mmap, which LeakSanitizer does not scan: what lives
 * as long as the process in the root pool (a key made once) is also noted here, so that it is not
 * reported as leaked. */
static const void *fuzz_kept[16];

static inline void fuzz_keep(const void *ptr)
{
    static int n;

    FUZZ_ASSERT(n < 16);
    fuzz_kept[n++] = ptr;
}

/* Every message is formatted by acme_log (max level TRACE) and then dropped. */
static inline void fuzz_log_fn(void *baton, acme_log_level_e level, apr_status_t rv,
                               const char *msg)
{
    (void)baton;
    (void)level;
    (void)rv;
    FUZZ_ASSERT(msg != NULL);
}

static inline const acme_log_t *fuzz_log(void)
{
    static const acme_log_t log = {fuzz_log_fn, NULL, ACME_LOG_TRACE};
    return &log;
}

static inline apr_time_t fuzz_clock_now(void *baton)
{
    (void)baton;
    return FUZZ_NOW;
}

static inline void fuzz_clock_sleep(void *baton, apr_interval_time_t t)
{
    (void)baton;
    (void)t;
}

static inline const acme_clock_t *fuzz_clock(void)
{
    static const acme_clock_t clock = {fuzz_clock_now, fuzz_clock_sleep, NULL};
    return &clock;
}

/* --- input splitting --- */

typedef struct fuzz_input_t {
    const char *data;
    apr_size_t len, pos;
} fuzz_input_t;

static inline void fuzz_input_init(fuzz_input_t *in, const uint8_t *data, size_t size)
{
    in->data = (const char *)data;
    in->len = size;
    in->pos = 0;
}

/* The next byte, 0 when the input is used up. */
static inline unsigned fuzz_byte(fuzz_input_t *in)
{
    return in->pos < in->len ? (unsigned char)in->data[in->pos++] : 0;
}

/* The text up to the next sep (not included) as a NUL-terminated copy in p, with its length;
 * the rest of the input when sep does not occur. */
static inline char *fuzz_part(fuzz_input_t *in, const char *sep, apr_size_t *plen, apr_pool_t *p)
{
    apr_size_t slen = strlen(sep), n = in->len - in->pos, i;
    const char *s = in->data + in->pos;
    char *out;

    for (i = 0; i + slen <= n; i++) {
        if (memcmp(s + i, sep, slen) == 0) {
            break;
        }
    }
    if (i + slen > n) {
        i = n;
        in->pos = in->len;
    } else {
        in->pos += i + slen;
    }
    out = apr_pstrmemdup(p, s, i);
    if (plen) {
        *plen = i;
    }
    return out;
}

/* The rest of the input, NUL-terminated, in p. */
static inline char *fuzz_rest(fuzz_input_t *in, apr_size_t *plen, apr_pool_t *p)
{
    char *out = apr_pstrmemdup(p, in->data + in->pos, in->len - in->pos);

    if (plen) {
        *plen = in->len - in->pos;
    }
    in->pos = in->len;
    return out;
}

/* --- a CA that answers from the input --- */

#define FUZZ_CA     "https://ca.test"
#define FUZZ_DIRURL FUZZ_CA "/dir"
#define FUZZ_DIRECTORY                                                                             \
    "{\"newNonce\":\"" FUZZ_CA "/nonce\",\"newAccount\":\"" FUZZ_CA                                \
    "/acct\",\"newOrder\":\"" FUZZ_CA "/order\",\"renewalInfo\":\"" FUZZ_CA "/ari/\","             \
    "\"revokeCert\":\"" FUZZ_CA "/revoke\",\"keyChange\":\"" FUZZ_CA "/kc\","                      \
    "\"meta\":{\"termsOfService\":\"" FUZZ_CA "/tos\"}}"

#define FUZZ_CALL_REQUESTS_MAX (1 + 2 * (ACME_BADNONCE_RETRIES + 1))

typedef struct fuzz_ca_t {
    acme_http_t http;
    const char *directory; /* body of GET FUZZ_DIRURL */
    apr_size_t directory_len;
    int status;           /* the answer to every other request */
    apr_table_t *headers; /* its headers (copied into each answer) */
    const char *body;     /* its body, NUL-terminated */
    apr_size_t body_len;
    int nonces;   /* fresh Replay-Nonce values handed out */
    int raw;      /* HEAD gets the answer too, and no Replay-Nonce is added to it */
    int fail;     /* every request fails as if the CA were unreachable */
    int requests; /* since the target last reset it (one client call) */
} fuzz_ca_t;

static inline apr_status_t fuzz_ca_perform(acme_http_t *http, const acme_http_req_t *req,
                                           acme_http_resp_t **presp, apr_pool_t *p)
{
    fuzz_ca_t *ca = http->baton;
    acme_http_resp_t *resp;

    /* One call of the client sends at most: the directory, then per attempt (badNonce retries
     * included) newNonce and the request itself. Targets reset the count before each call. */
    FUZZ_ASSERT(++ca->requests <= FUZZ_CALL_REQUESTS_MAX);
    FUZZ_ASSERT(req->method && req->url);
    if (ca->fail) {
        apr_cpystrn(http->error, "fuzz: no CA", sizeof(http->error));
        return ACME_ETRANSPORT;
    }
    resp = apr_pcalloc(p, sizeof(*resp));
    resp->headers = apr_table_make(p, 8);
    if (strcmp(req->method, "HEAD") == 0 && !ca->raw) {
        resp->status = 200;
        resp->body = "";
    } else if (strcmp(req->method, "GET") == 0 && strcmp(req->url, FUZZ_DIRURL) == 0) {
        resp->status = 200;
        apr_table_set(resp->headers, "Content-Type", "application/json");
        resp->body = ca->directory ? ca->directory : FUZZ_DIRECTORY;
        resp->body_len = ca->directory ? ca->directory_len : strlen(FUZZ_DIRECTORY);
        *presp = resp;
        return APR_SUCCESS; /* plain GETs carry no nonce */
    } else {
        resp->status = ca->status;
        if (ca->headers) {
            resp->headers = apr_table_copy(p, ca->headers);
        }
        resp->body = ca->body ? ca->body : "";
        resp->body_len = ca->body ? ca->body_len : 0;
    }
    if (!ca->raw && !apr_table_get(resp->headers, "Replay-Nonce")) {
        apr_table_set(resp->headers, "Replay-Nonce",
                      apr_psprintf(p, "fuzzNonce%04d", ++ca->nonces));
    }
    *presp = resp;
    return APR_SUCCESS;
}

static inline fuzz_ca_t *fuzz_ca_make(apr_pool_t *p)
{
    fuzz_ca_t *ca = apr_pcalloc(p, sizeof(*ca));

    ca->http.perform = fuzz_ca_perform;
    ca->http.baton = ca;
    ca->http.log = fuzz_log();
    ca->status = 200;
    ca->headers = apr_table_make(p, 8);
    return ca;
}

static inline acme_client_t *fuzz_client(fuzz_ca_t *ca, apr_pool_t *p)
{
    acme_client_t *client = NULL;

    FUZZ_ASSERT(acme_client_create(&client, FUZZ_DIRURL, &ca->http, fuzz_log(), fuzz_clock(), p) ==
                APR_SUCCESS);
    return client;
}

/* --- a scratch store, one per process, below $TMPDIR (removed at exit) --- */

static const char *fuzz_store_dir;

static inline int fuzz_remove_one(const char *path, const struct stat *st, int flag,
                                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void fuzz_store_cleanup(void)
{
    if (fuzz_store_dir) {
        nftw(fuzz_store_dir, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static inline const char *fuzz_scratch_dir(void)
{
    static char dir[4096];

    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        apr_snprintf(dir, sizeof(dir), "%s/acme-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
        fuzz_store_dir = dir;
        atexit(fuzz_store_cleanup);
    }
    return dir;
}

#endif /* ACME_FUZZ_H */
