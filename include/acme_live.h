/* acme_live.h - a publication slot in shared memory: one writer hands a few byte strings (a
 * certificate chain, its key, what the status says of them) to many readers in other
 * processes, with a generation number (ACMEActivation live, docs/live.md).
 *
 * The slot lives in memory the parent made before the fork. The writer is one thread of the
 * parent; readers are the children's handshake threads and the renewal driver. A reader's hot
 * path is one atomic load (acme_live_generation); it copies the strings only when the
 * generation moved, under a sequence count: a copy taken while the writer was inside is taken
 * again, so a reader never sees half of a set. Nothing here waits on a lock.
 *
 * acme_live_publish: the one writer. acme_live_generation and acme_live_read: any thread of any
 * process that maps the slot.
 */
#ifndef ACME_LIVE_H
#define ACME_LIVE_H

#include <apr_pools.h>

#include "acme_core.h"

/* A chain of a few certificates and one key (RSA 4096 at most), with their status: far below
 * this. A set that does not fit is not published (the caller restarts instead). */
#define ACME_LIVE_DATA_MAX (48 * 1024)
#define ACME_LIVE_PARTS    4

typedef struct acme_live_slot_t {
    volatile apr_uint32_t gen; /* the last generation completely written; 0: none */
    volatile apr_uint32_t seq; /* odd while the writer is inside */
    apr_uint32_t data_gen;     /* the generation of what data holds */
    apr_uint32_t nparts;       /* parts in data */
    apr_uint32_t len[ACME_LIVE_PARTS];
    char data[ACME_LIVE_DATA_MAX]; /* the parts one after the other, each NUL-terminated */
} acme_live_slot_t;

/* The generation last published, 0 when none: one atomic load with acquire order. */
apr_uint32_t acme_live_generation(const acme_live_slot_t *slot);

/* Writes n parts (at most ACME_LIVE_PARTS) as the next generation and returns it in *pgen.
 * ACME_ETOOLARGE when they do not fit (nothing changes), APR_EINVAL for a bad n. Only one thread
 * may publish into a slot. */
apr_status_t acme_live_publish(acme_live_slot_t *slot, const char *const parts[],
                               const apr_size_t lens[], int n, apr_uint32_t *pgen);

/* Copies the parts of the last generation into p (each NUL-terminated) and its number into
 * *pgen; parts[k] is NULL for a part the writer did not give. APR_ENOENT when nothing was
 * published; APR_EAGAIN when the writer was inside for every one of a bounded number of tries;
 * APR_EINVAL when the slot does not hold what a writer leaves (lengths out of bounds). */
apr_status_t acme_live_read(const acme_live_slot_t *slot, apr_uint32_t *pgen,
                            const char *parts[ACME_LIVE_PARTS], apr_size_t lens[ACME_LIVE_PARTS],
                            apr_pool_t *p);

#endif /* ACME_LIVE_H */
