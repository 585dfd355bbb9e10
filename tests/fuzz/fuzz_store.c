/* fuzz_store.c - every file the store reads back, written as the fuzzer likes and read by the
 * real calls in a scratch store: a job file (jobs/<name>.json), a set of certificate files
 * (privkey.pem, fullchain.pem, meta.json: loaded staged, promoted, loaded active), an account
 * (account.key, account.json), a kept certificate key, the target of the domains/<name>
 * link, a renewal request (jobs/<name>.renew, acmectl's, read by the driver) and
 * ACMENotifyCommand's record of what was told (jobs/<name>.events). What comes back must be
 * sane, and a job written back must read the same.
 *
 * Input: one byte choosing the file kind, one byte of options, then the file contents; the files
 * of a set or an account are separated by a line "%%".
 */
#include <apr_file_io.h>

#include "fuzz.h"

#include "acme_issue.h"
#include "acme_job.h"
#include "acme_notify.h"
#include "acme_store_ctl.h"
#include "acme_tokens.h"

#define NAME "a.example.org"
#define SEP  "\n%%\n"

enum { K_JOB, K_SET, K_ACCOUNT, K_KEY, K_LINK, K_REQUEST, K_EVENTS, K_COUNT };

static acme_store_t *scratch_store(void)
{
    static acme_store_t *store;

    if (!store) {
        FUZZ_ASSERT(acme_store_open(&store, fuzz_scratch_dir(), fuzz_root_pool()) == APR_SUCCESS);
    }
    return store;
}

/* A plain write: the atomic write of the store is not what is tested here. */
static void put_file(acme_store_t *store, const char *relpath, const char *data, apr_size_t len,
                     apr_pool_t *p)
{
    const char *path = acme_store_path(store, relpath, p);
    char *dir = apr_pstrdup(p, path);
    apr_file_t *f;
    apr_size_t n = len;

    *strrchr(dir, '/') = '\0';
    FUZZ_ASSERT(apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p) == APR_SUCCESS);
    FUZZ_ASSERT(apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                              APR_FPROT_UREAD | APR_FPROT_UWRITE, p) == APR_SUCCESS);
    FUZZ_ASSERT(len == 0 || apr_file_write_full(f, data, len, &n) == APR_SUCCESS);
    apr_file_close(f);
}

static void check_job(const acme_job_t *job)
{
    int i;

    FUZZ_ASSERT(job && job->challenges);
    FUZZ_ASSERT(job->failures >= 0 && job->failures < 100000);
    FUZZ_ASSERT(job->next_run >= 0 && job->last_error_time >= 0);
    FUZZ_ASSERT(job->challenges->nelts <= ACME_JOB_CHALLENGES_MAX);
    /* Renewal information: for a certificate with a time to ask again, and a renewal time only
     * with a window that is one (whether it lies in the window as cut is the driver's check). */
    FUZZ_ASSERT(!job->ari_cert == !job->ari_check_at);
    FUZZ_ASSERT(!job->ari_cert || strlen(job->ari_cert) <= 1024);
    FUZZ_ASSERT(!job->ari_renew_at ||
                (job->ari_cert && job->ari_start && job->ari_start < job->ari_end));
    FUZZ_ASSERT(job->ari_renew_at || (!job->ari_start && !job->ari_end && !job->ari_explanation));
    for (i = 0; i < job->challenges->nelts; i++) {
        const acme_job_chal_t *ch = &APR_ARRAY_IDX(job->challenges, i, acme_job_chal_t);
        /* These are served to the world from the token table. */
        FUZZ_ASSERT(acme_token_ok(ch->token, strlen(ch->token)));
        FUZZ_ASSERT(ch->host && strlen(ch->host) <= 253);
        FUZZ_ASSERT(strncmp(ch->keyauth, ch->token, strlen(ch->token)) == 0);
    }
}

static void fuzz_job(acme_store_t *store, unsigned opt, const char *data, apr_size_t len,
                     apr_pool_t *p)
{
    acme_job_t *job, *again;
    acme_problem_t *prob;
    apr_status_t rv;
    int i;

    put_file(store, "jobs/" NAME ".json", data, len, p);
    rv = acme_job_load(&job, store, NAME, p);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == ACME_EBADSTORE);
    check_job(job);
    if (rv != APR_SUCCESS) {
        return;
    }
    /* Written back, it reads the same. */
    FUZZ_ASSERT(acme_job_save(store, job, p) == APR_SUCCESS);
    FUZZ_ASSERT(acme_job_load(&again, store, NAME, p) == APR_SUCCESS);
    check_job(again);
    FUZZ_ASSERT(again->failures == job->failures);
    FUZZ_ASSERT(apr_time_sec(again->next_run) == apr_time_sec(job->next_run));
    FUZZ_ASSERT(again->challenges->nelts == job->challenges->nelts);
    FUZZ_ASSERT(
        (!again->order_url && !job->order_url) ||
        (again->order_url && job->order_url && strcmp(again->order_url, job->order_url) == 0));
    FUZZ_ASSERT(!again->last_error == !job->last_error);
    FUZZ_ASSERT(!again->ari_cert == !job->ari_cert &&
                (!job->ari_cert || strcmp(again->ari_cert, job->ari_cert) == 0));
    FUZZ_ASSERT(again->ari_renew_at == job->ari_renew_at && again->ari_end == job->ari_end &&
                again->ari_check_at == job->ari_check_at);
    for (i = 0; i < job->challenges->nelts; i++) {
        FUZZ_ASSERT(strcmp(APR_ARRAY_IDX(again->challenges, i, acme_job_chal_t).keyauth,
                           APR_ARRAY_IDX(job->challenges, i, acme_job_chal_t).keyauth) == 0);
    }
    /* What the driver does next: a failure (the backoff grows from the failures read), or a
     * success. */
    prob = acme_problem_make(ACME_ESERVER, 500, "fuzz", p);
    prob->retry_after = (opt & 1) ? apr_time_from_sec(120) : -1;
    acme_job_failed(again, (opt & 2) ? ACME_EREJECTED : ACME_ESERVER, prob, FUZZ_NOW, opt, p);
    FUZZ_ASSERT(again->next_run > FUZZ_NOW);
    FUZZ_ASSERT(again->next_run <= FUZZ_NOW + ACME_BACKOFF_PERMANENT / 5 * 6); /* +20% */
    FUZZ_ASSERT(acme_job_save(store, again, p) == APR_SUCCESS);
    acme_job_done(again);
    FUZZ_ASSERT(acme_job_save(store, again, p) == APR_SUCCESS);
}

static void check_serial(const char *s)
{
    FUZZ_ASSERT(!s || (*s && strlen(s) <= ACME_NOTIFY_SERIAL_MAX &&
                       strspn(s, "0123456789abcdefABCDEF") == strlen(s)));
}

static void check_events(const acme_notify_state_t *st)
{
    check_serial(st->renewed);
    check_serial(st->activated);
    check_serial(st->ari_serial);
    FUZZ_ASSERT(st->failed_at >= 0 && st->expiring_at >= 0 && st->ari_start >= 0 &&
                st->ari_end >= 0);
}

static void fuzz_events(acme_store_t *store, unsigned opt, const char *data, apr_size_t len,
                        apr_pool_t *p)
{
    acme_notify_state_t *st, *again;
    apr_status_t rv;
    int renewed;

    put_file(store, "jobs/" NAME ".events", data, len, p);
    rv = acme_notify_load(&st, store, NAME, p);
    FUZZ_ASSERT(st && st->exists);
    check_events(st);
    if (rv != APR_SUCCESS) {
        FUZZ_ASSERT(!st->renewed && !st->activated && !st->failed_at);
        return;
    }
    /* Written back, it reads the same. */
    FUZZ_ASSERT(acme_notify_save(store, NAME, st, p) == APR_SUCCESS);
    FUZZ_ASSERT(acme_notify_load(&again, store, NAME, p) == APR_SUCCESS);
    check_events(again);
    FUZZ_ASSERT(!again->renewed == !st->renewed && again->failed_at == st->failed_at);
    FUZZ_ASSERT(again->ari_start == st->ari_start && again->expiring_at == st->expiring_at);
    /* Whatever it says, the decisions hold: an event told is not told again at once. */
    if (acme_notify_failed(again, FUZZ_NOW)) {
        FUZZ_ASSERT(!acme_notify_failed(again, FUZZ_NOW + apr_time_from_sec(60)));
    }
    acme_notify_served(again, (opt & 1) ? "0A" : "0B", &renewed, p);
    FUZZ_ASSERT(!acme_notify_served(again, (opt & 1) ? "0a" : "0b", &renewed, p) && !renewed);
    /* "renewed" is told once per serial. (After "served" it may still be told once: a file
     * that names the serial as activated but not as renewed, which only an older or edited
     * file holds; the worker calls renewed only for a serial it just obtained. Found by this
     * target at 2 million runs with the stronger property.) */
    acme_notify_renewed(again, (opt & 1) ? "0A" : "0B", p);
    FUZZ_ASSERT(!acme_notify_renewed(again, (opt & 1) ? "0a" : "0b", p));
    if (acme_notify_expiring(again, FUZZ_NOW, FUZZ_NOW + 60, apr_time_from_sec(3600), 0)) {
        FUZZ_ASSERT(
            !acme_notify_expiring(again, FUZZ_NOW, FUZZ_NOW + 60, apr_time_from_sec(3600), 0));
    }
}

static void fuzz_set(acme_store_t *store, unsigned opt, fuzz_input_t *in, apr_pool_t *p)
{
    acme_certset_t *set, *active;
    apr_array_header_t *names;
    const char *why = NULL, *parts[3];
    apr_size_t lens[3];
    apr_status_t rv;
    int i;

    for (i = 0; i < 3; i++) {
        parts[i] = fuzz_part(in, SEP, &lens[i], p);
    }
    put_file(store, "staging/" NAME "/privkey.pem", parts[0], lens[0], p);
    put_file(store, "staging/" NAME "/fullchain.pem", parts[1], lens[1], p);
    if (lens[2]) { /* meta.json is optional */
        put_file(store, "staging/" NAME "/meta.json", parts[2], lens[2], p);
    }
    rv = acme_store_load(&set, store, NAME, 1, &why, p);
    if (rv != APR_SUCCESS) {
        FUZZ_ASSERT(rv == ACME_EBADSTORE && why);
        goto out;
    }
    FUZZ_ASSERT(set->key && set->chain && set->chain->nelts >= 1 && json_is_object(set->meta));
    FUZZ_ASSERT(set->generation == 0 && set->key_file && set->chain_file);
    (void)acme_json_str(set->meta, "ca"); /* what the parent compares with the configuration */

    /* Promoted (when the option bit says so: it reads and checks everything again) at a time
     * the leaf is valid, for its own names: it becomes the active set, and the active set
     * loads. */
    if (!(opt & 1)) {
        goto out;
    }
    FUZZ_ASSERT(acme_cert_names(&names, APR_ARRAY_IDX(set->chain, 0, const acme_cert_t *), p) ==
                APR_SUCCESS);
    why = NULL;
    rv = acme_store_promote(store, NAME, names,
                            acme_cert_not_before(APR_ARRAY_IDX(set->chain, 0, acme_cert_t *)) + 1,
                            &why, p);
    if (rv != APR_SUCCESS) {
        FUZZ_ASSERT(rv == ACME_EBADSTORE && why);
        goto out;
    }
    why = NULL;
    rv = acme_store_load(&active, store, NAME, 0, &why, p);
    FUZZ_ASSERT(rv == APR_SUCCESS);
    FUZZ_ASSERT(active->generation >= 1 && active->chain->nelts == set->chain->nelts);
out:
    FUZZ_ASSERT(acme_store_remove(store, "staging/" NAME, p) == APR_SUCCESS);
    FUZZ_ASSERT(acme_store_remove(store, "domains/" NAME, p) == APR_SUCCESS);
    FUZZ_ASSERT(acme_store_remove(store, "archive/" NAME, p) == APR_SUCCESS);
}

static void fuzz_account(acme_store_t *store, unsigned opt, fuzz_input_t *in, apr_pool_t *p)
{
    fuzz_ca_t *ca = fuzz_ca_make(p);
    acme_client_t *client;
    acme_account_req_t req;
    acme_problem_t *prob = NULL;
    const char *key, *info, *dir;
    apr_size_t klen, ilen;
    apr_status_t rv;

    ca->fail = 1; /* no CA: only what the store holds can make the account usable */
    client = fuzz_client(ca, p);
    dir = apr_pstrcat(p, "accounts/", acme_store_ca_id(FUZZ_DIRURL, p), NULL);
    key = fuzz_part(in, SEP, &klen, p);
    info = fuzz_part(in, SEP, &ilen, p);
    put_file(store, apr_pstrcat(p, dir, "/account.key", NULL), key, klen, p);
    put_file(store, apr_pstrcat(p, dir, "/account.json", NULL), info, ilen, p);
    memset(&req, 0, sizeof(req));
    req.terms_agreed = opt & 1;
    rv = acme_account_setup(client, store, &req, ACME_KEY_EC256, &prob, p);
    if (rv == APR_SUCCESS) {
        json_t *j = acme_json_pool(p, json_loadb(info, ilen, 0, NULL));
        /* Usable only with the URL stored for this very key. */
        FUZZ_ASSERT(acme_client_kid(client) && acme_client_key(client));
        FUZZ_ASSERT(acme_json_str(j, "url") &&
                    strcmp(acme_json_str(j, "url"), acme_client_kid(client)) == 0);
        FUZZ_ASSERT(ca->requests == 0);
    } else if (prob) {
        FUZZ_ASSERT(acme_problem_describe(prob, p) != NULL);
    }
    FUZZ_ASSERT(acme_store_remove(store, dir, p) == APR_SUCCESS);
}

static void fuzz_key(unsigned opt, const char *pem, apr_size_t len, apr_pool_t *p)
{
    acme_key_t *key, *again;
    const char *out, *thumb;
    apr_size_t olen;
    json_t *jwk;

    if (acme_key_from_pem(&key, pem, len, p) != APR_SUCCESS) {
        return;
    }
    FUZZ_ASSERT(acme_key_to_pem(&out, &olen, key, p) == APR_SUCCESS);
    if (opt & 1) { /* what we write reads back (decoding is the costly part) */
        FUZZ_ASSERT(acme_key_from_pem(&again, out, olen, p) == APR_SUCCESS);
        FUZZ_ASSERT(acme_key_type(again) == acme_key_type(key));
    }
    FUZZ_ASSERT(acme_key_jwk(&jwk, key, p) == APR_SUCCESS);
    FUZZ_ASSERT(acme_key_thumbprint(&thumb, key, p) == APR_SUCCESS && strlen(thumb) == 43);
    FUZZ_ASSERT(acme_key_jws_alg(key) != NULL);
}

/* domains/<name>: the link to the active set, whose target names the generation. */
static void fuzz_link(acme_store_t *store, const char *target, apr_pool_t *p)
{
    acme_certset_t *set;
    const char *why = NULL;
    apr_status_t rv;

    if (!*target || symlink(target, acme_store_path(store, "domains/" NAME, p)) != 0) {
        return;
    }
    rv = acme_store_load(&set, store, NAME, 0, &why, p);
    FUZZ_ASSERT(rv != APR_SUCCESS || set->generation >= 1);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == ACME_EBADSTORE || APR_STATUS_IS_ENOENT(rv) ||
                rv == APR_EINVAL);
    FUZZ_ASSERT(acme_store_remove(store, "domains/" NAME, p) == APR_SUCCESS);
}

/* A request the driver reads: taken whole or refused, never half; its reason one of acmectl's. */
static void fuzz_request(acme_store_t *store, const char *data, apr_size_t len, apr_pool_t *p)
{
    acme_renew_request_t *req = NULL;
    apr_status_t rv;

    put_file(store, "jobs/" NAME ".renew", data, len, p);
    rv = acme_renew_request_read(&req, store, NAME, p);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == ACME_EBADSTORE);
    FUZZ_ASSERT(acme_renew_requested(store, NAME, p) == (rv == APR_SUCCESS));
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(req->time >= 0 && acme_renew_reason_ok(req->reason));
    }
    FUZZ_ASSERT(acme_renew_request_clear(store, NAME, p) == APR_SUCCESS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    acme_store_t *store = scratch_store();
    fuzz_input_t in;
    unsigned kind, opt;
    const char *text;
    apr_size_t len;

    fuzz_input_init(&in, data, size);
    kind = fuzz_byte(&in) % K_COUNT;
    opt = fuzz_byte(&in);
    switch (kind) {
    case K_JOB:
        text = fuzz_rest(&in, &len, p);
        fuzz_job(store, opt, text, len, p);
        break;
    case K_SET:
        fuzz_set(store, opt, &in, p);
        break;
    case K_ACCOUNT:
        fuzz_account(store, opt, &in, p);
        break;
    case K_KEY:
        text = fuzz_rest(&in, &len, p);
        fuzz_key(opt, text, len, p);
        break;
    case K_LINK:
        fuzz_link(store, fuzz_rest(&in, NULL, p), p);
        break;
    case K_REQUEST:
        text = fuzz_rest(&in, &len, p);
        fuzz_request(store, text, len, p);
        break;
    case K_EVENTS:
        text = fuzz_rest(&in, &len, p);
        fuzz_events(store, opt, text, len, p);
        break;
    }
    apr_pool_destroy(p);
    return 0;
}
