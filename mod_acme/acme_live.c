/* acme_live.c - the publication slot of acme_live.h: a sequence count around one copy.
 *
 * Writer: seq becomes odd, a release fence, the data, then seq even again (release), then gen
 * (release). Reader: seq (acquire), the copy, an acquire fence, seq again: the same even value
 * before and after means no write overlapped the copy. The generation is published after the
 * data, so a reader that saw generation N and then copies gets N or a later one, never an
 * earlier one; data_gen says which. The writer is a single thread of the parent (root) and no
 * reader ever writes, so a reader that dies mid-copy leaves nothing behind.
 */
#include <sched.h>
#include <string.h>

#include <apr_strings.h>

#include "acme_live.h"

#define READ_TRIES 1000

apr_uint32_t acme_live_generation(const acme_live_slot_t *slot)
{
    return __atomic_load_n(&slot->gen, __ATOMIC_ACQUIRE);
}

apr_status_t acme_live_publish(acme_live_slot_t *slot, const char *const parts[],
                               const apr_size_t lens[], int n, apr_uint32_t *pgen)
{
    apr_size_t total = 0, off = 0;
    apr_uint32_t seq, gen;
    int k;

    if (n < 1 || n > ACME_LIVE_PARTS) {
        return APR_EINVAL;
    }
    for (k = 0; k < n; k++) {
        if (lens[k] > ACME_LIVE_DATA_MAX) {
            return ACME_ETOOLARGE;
        }
        total += lens[k] + 1;
    }
    if (total > ACME_LIVE_DATA_MAX) {
        return ACME_ETOOLARGE;
    }
    gen = __atomic_load_n(&slot->gen, __ATOMIC_RELAXED) + 1;
    gen += gen == 0; /* 0 means "none", also after 2^32 publications */
    seq = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
    seq += seq & 1;
    __atomic_store_n(&slot->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (k = 0; k < n; k++) {
        if (lens[k]) {
            memcpy(slot->data + off, parts[k], lens[k]);
        }
        slot->data[off + lens[k]] = '\0';
        slot->len[k] = (apr_uint32_t)lens[k];
        off += lens[k] + 1;
    }
    for (; k < ACME_LIVE_PARTS; k++) {
        slot->len[k] = 0;
    }
    slot->nparts = (apr_uint32_t)n;
    slot->data_gen = gen;
    __atomic_store_n(&slot->seq, seq + 2, __ATOMIC_RELEASE);
    __atomic_store_n(&slot->gen, gen, __ATOMIC_RELEASE);
    *pgen = gen;
    return APR_SUCCESS;
}

apr_status_t acme_live_read(const acme_live_slot_t *slot, apr_uint32_t *pgen,
                            const char *parts[ACME_LIVE_PARTS], apr_size_t lens[ACME_LIVE_PARTS],
                            apr_pool_t *p)
{
    char *copy = NULL;
    apr_uint32_t len[ACME_LIVE_PARTS], nparts = 0, gen = 0, s1, s2;
    apr_size_t total = 0, off = 0;
    int tries, k, ok = 0;
    apr_status_t rv = APR_SUCCESS;

    if (!acme_live_generation(slot)) {
        return APR_ENOENT;
    }
    for (tries = 0; tries < READ_TRIES && !ok; tries++) {
        if (tries) {
            sched_yield();
        }
        s1 = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            continue;
        }
        nparts = slot->nparts;
        gen = slot->data_gen;
        memcpy(len, slot->len, sizeof(len));
        total = 0;
        for (k = 0; k < ACME_LIVE_PARTS && (apr_uint32_t)k < nparts; k++) {
            total += (apr_size_t)len[k] + 1;
        }
        if (nparts < 1 || nparts > ACME_LIVE_PARTS || total > ACME_LIVE_DATA_MAX) {
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            s2 = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
            if (s1 == s2) {
                rv = APR_EINVAL; /* stable, yet not what a writer leaves */
                goto out;
            }
            continue;
        }
        if (!copy) {
            copy = apr_palloc(p, ACME_LIVE_DATA_MAX);
        }
        memcpy(copy, slot->data, total);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
        ok = s1 == s2;
    }
    if (!ok) {
        rv = APR_EAGAIN;
        goto out;
    }
    for (k = 0; k < ACME_LIVE_PARTS; k++) {
        if ((apr_uint32_t)k < nparts) {
            copy[off + len[k]] = '\0'; /* the copy is ours: terminated whatever the slot held */
            parts[k] = copy + off;
            lens[k] = len[k];
            off += (apr_size_t)len[k] + 1;
        } else {
            parts[k] = NULL;
            lens[k] = 0;
        }
    }
    *pgen = gen;
out:
    return rv;
}
