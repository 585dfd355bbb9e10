/* acme_dns.h - dns-01 (RFC 8555 section 8.4): the TXT record an answer needs, and the check that
 * it can be seen where the CA will look before the CA is told to validate.
 *
 * The check asks either one resolver named by the caller (ACMEDNSResolver: private setups,
 * tests) or, without one, every authoritative server of the record's zone, found through the
 * system's resolver (/etc/resolv.conf): SOA to find the zone, NS for its servers, A and AAAA for
 * their addresses. c-ares does the DNS work (queries, answers, parsing); nothing here reads or
 * writes DNS messages by hand.
 *
 * The calls block their thread (a worker of the renewal driver) for at most the timeouts given,
 * and end early when the cancel flag is raised. Any thread may call them; nothing is shared.
 */
#ifndef ACME_DNS_H
#define ACME_DNS_H

#include "acme_core.h"

#define ACME_DNS_QUERY_TIMEOUT apr_time_from_sec(3)  /* one query, all its tries included */
#define ACME_DNS_SERVERS_MAX   8                     /* authoritative servers asked per zone */
#define ACME_DNS_POLL_FIRST    apr_time_from_sec(1)  /* first wait when a value is not seen */
#define ACME_DNS_POLL_MAX      apr_time_from_sec(15) /* longest wait between two looks */

/* Once per process, before any other call (c-ares' global state). */
apr_status_t acme_dns_global_init(void);

/* "_acme-challenge.<name>", name being the identifier validated (a wildcard's base name). */
const char *acme_dns01_record(const char *name, apr_pool_t *p);

/* The TXT value of an answer: base64url(SHA-256(key authorization)). */
apr_status_t acme_dns01_value(const char **pvalue, const char *keyauth, apr_pool_t *p);

/* 1 when s is a resolver address as ACMEDNSResolver takes it: an IPv4 address, an IPv6
 * address, either with ":port" (IPv6 then in brackets: "[2001:db8::53]:5353"). */
int acme_dns_resolver_ok(const char *s);

/* One TXT value that must be visible. */
typedef struct acme_dns_txt_t {
    const char *record; /* _acme-challenge.<name> */
    const char *value;
    int seen; /* set by acme_dns_await */
} acme_dns_txt_t;

typedef struct acme_dns_opts_t {
    const char *resolver;           /* ACMEDNSResolver, or NULL: the zone's servers */
    const char *resolv_conf;        /* for finding the zone's servers; NULL: /etc/resolv.conf */
    apr_interval_time_t query_time; /* per query; 0: ACME_DNS_QUERY_TIMEOUT */
    volatile apr_uint32_t *cancel;  /* raised: stop at once with ACME_ECANCELLED */
    const acme_log_t *log;          /* may be NULL */
    const char *domain;             /* for log lines */
} acme_dns_opts_t;

/* Looks once whether value is in the TXT records of record, at the resolver or at every
 * authoritative server. APR_SUCCESS with *pseen 1 or 0 (then *pwhy says where it is missing and
 * what was found instead); an error when nobody could be asked (*pwhy says whom and why:
 * timeout, refused, SERVFAIL); ACME_ECANCELLED when cancelled. */
apr_status_t acme_dns_txt_check(int *pseen, const char **pwhy, const acme_dns_opts_t *opts,
                                const char *record, const char *value, apr_pool_t *p);

/* Looks at every value of txts (acme_dns_txt_t) until all are seen, first at once, then after
 * ACME_DNS_POLL_FIRST doubling up to ACME_DNS_POLL_MAX, through clock, until the time until.
 * APR_SUCCESS when all are seen; ACME_EDNS at until, with *pwhy naming the first value not
 * seen, where, and the last error when asking failed; ACME_ECANCELLED when cancelled. */
apr_status_t acme_dns_await(apr_array_header_t *txts, const acme_dns_opts_t *opts, apr_time_t until,
                            const acme_clock_t *clock, const char **pwhy, apr_pool_t *p);

#endif /* ACME_DNS_H */
