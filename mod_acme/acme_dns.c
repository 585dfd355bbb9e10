/* acme_dns.c - the dns-01 TXT value and the check that it is visible, with c-ares.
 *
 * Each look makes its own c-ares channel (no state shared between threads) and drives it with
 * poll() in slices of at most 100 ms, so that a stopping server is never kept waiting for a DNS
 * timeout. poll(), not select(): a busy httpd child can hold file descriptors above FD_SETSIZE.
 */
#include <poll.h>
#include <string.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>

#include <apr_strings.h>
#include <ares.h>
#include <openssl/evp.h>

#include "acme_dns.h"

#define SLICE_MS 100 /* longest poll() before the cancel flag is looked at again */

apr_status_t acme_dns_global_init(void)
{
    return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? APR_SUCCESS : APR_EGENERAL;
}

const char *acme_dns01_record(const char *name, apr_pool_t *p)
{
    return apr_pstrcat(p, "_acme-challenge.", name, NULL);
}

apr_status_t acme_dns01_value(const char **pvalue, const char *keyauth, apr_pool_t *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!EVP_Digest(keyauth, strlen(keyauth), md, &mdlen, EVP_sha256(), NULL)) {
        return ACME_ECRYPTO;
    }
    *pvalue = acme_b64u_encode(p, md, mdlen);
    return APR_SUCCESS;
}

/* Splits "host[:port]" / "[v6]:port" / "v6"; 1 when well formed. */
static int resolver_split(const char *s, char *host, apr_size_t hlen, int *pport)
{
    unsigned char addr[16];
    const char *colon, *end;
    apr_size_t n;

    *pport = 53;
    if (!s || !*s || strlen(s) >= hlen + 8) {
        return 0;
    }
    if (inet_pton(AF_INET6, s, addr) == 1 || inet_pton(AF_INET, s, addr) == 1) {
        apr_cpystrn(host, s, hlen);
        return 1;
    }
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (!end || end[1] != ':') {
            return 0;
        }
        n = (apr_size_t)(end - s - 1);
        colon = end + 1;
        s++;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            return 0;
        }
        n = (apr_size_t)(colon - s);
    }
    if (n == 0 || n >= hlen || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5) {
        return 0;
    }
    memcpy(host, s, n);
    host[n] = '\0';
    *pport = atoi(colon + 1);
    if (*pport < 1 || *pport > 65535) {
        return 0;
    }
    return s[-1] == '[' ? inet_pton(AF_INET6, host, addr) == 1
                        : inet_pton(AF_INET, host, addr) == 1;
}

int acme_dns_resolver_ok(const char *s)
{
    char host[64];
    int port;

    return resolver_split(s, host, sizeof(host), &port);
}

/* The resolver in the form c-ares takes: "1.2.3.4:53" or "[2001:db8::1]:53". */
static const char *server_csv(const char *resolver, apr_pool_t *p)
{
    char host[64];
    int port;

    if (!resolver_split(resolver, host, sizeof(host), &port)) {
        return NULL;
    }
    return strchr(host, ':') ? apr_psprintf(p, "[%s]:%d", host, port)
                             : apr_psprintf(p, "%s:%d", host, port);
}

/* --- one channel, one query at a time --- */

typedef struct query_t {
    int done;
    int status;
    unsigned char *abuf;
    int alen;
    apr_pool_t *p;
} query_t;

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    query_t *q = arg;

    (void)timeouts;
    q->done = 1;
    q->status = status;
    if (status == ARES_SUCCESS && abuf && alen > 0) {
        q->abuf = apr_pmemdup(q->p, abuf, (apr_size_t)alen);
        q->alen = alen;
    }
}

static apr_status_t channel_cleanup(void *data)
{
    ares_destroy(*(ares_channel *)data);
    return APR_SUCCESS;
}

/* A channel for servers (c-ares CSV form), or for the system's resolvers when NULL. Asking an
 * authoritative server, recursion is not desired: its own data is what counts. */
static apr_status_t channel_make(ares_channel **pch, const char *servers, int norecurse,
                                 const acme_dns_opts_t *opts, apr_pool_t *p)
{
    struct ares_options o;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    apr_interval_time_t t = opts->query_time > 0 ? opts->query_time : ACME_DNS_QUERY_TIMEOUT;
    ares_channel *ch = apr_pcalloc(p, sizeof(*ch));

    memset(&o, 0, sizeof(o));
    /* NOCHECKRESP: a REFUSED or SERVFAIL answer comes back as such, to be named in the log,
     * instead of being taken for an unreachable server. */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP |
              (norecurse ? ARES_FLAG_NORECURSE : 0);
    o.tries = 2;
    o.timeout = (int)(apr_time_as_msec(t) / o.tries);
    if (o.timeout < 50) {
        o.timeout = 50;
    }
    if (!servers && opts->resolv_conf) {
        o.resolvconf_path = (char *)opts->resolv_conf;
        mask |= ARES_OPT_RESOLVCONF;
    }
    if (ares_init_options(ch, &o, mask) != ARES_SUCCESS) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, ch, channel_cleanup, apr_pool_cleanup_null);
    if (servers && ares_set_servers_ports_csv(*ch, servers) != ARES_SUCCESS) {
        return APR_EINVAL;
    }
    *pch = ch;
    return APR_SUCCESS;
}

static int cancelled(const acme_dns_opts_t *opts)
{
    return opts->cancel && *opts->cancel;
}

/* Sends one query and waits for its answer (the channel's timeouts bound the wait). */
static apr_status_t query_run(query_t *q, ares_channel *ch, const char *name, int type,
                              const acme_dns_opts_t *opts, apr_pool_t *p)
{
    memset(q, 0, sizeof(*q));
    q->p = p;
    ares_query(*ch, name, ns_c_in, type, on_answer, q);
    while (!q->done) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        struct timeval max = {0, SLICE_MS * 1000}, tv, *tvp;
        int bits, i, n = 0, ready;

        if (cancelled(opts)) {
            ares_cancel(*ch); /* calls on_answer with ARES_ECANCELLED */
            return ACME_ECANCELLED;
        }
        bits = ares_getsock(*ch, socks, ARES_GETSOCK_MAXNUM);
        for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            if (ARES_GETSOCK_READABLE(bits, i) || ARES_GETSOCK_WRITABLE(bits, i)) {
                pfd[n].fd = socks[i];
                pfd[n].events = (short)((ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) |
                                        (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0));
                pfd[n].revents = 0;
                n++;
            }
        }
        tvp = ares_timeout(*ch, &max, &tv);
        ready = poll(pfd, (nfds_t)n, (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000));
        if (ready <= 0) {
            ares_process_fd(*ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
            continue;
        }
        for (i = 0; i < n; i++) {
            ares_process_fd(
                *ch, (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD,
                (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
        }
    }
    return APR_SUCCESS;
}

/* The answer's status as a sentence; NULL for "no such record", which is an answer too. */
static const char *ask_failed(int status)
{
    switch (status) {
    case ARES_SUCCESS:
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
        return NULL;
    case ARES_ETIMEOUT:
        return "no answer (timeout)";
    case ARES_ECONNREFUSED:
        return "connection refused (nothing listens there)";
    case ARES_ESERVFAIL:
        return "it answered SERVFAIL";
    case ARES_EREFUSED:
        return "it refused the query";
    default:
        return ares_strerror(status);
    }
}

/* Looks for value in the TXT records of one answer; *pfound lists what is there instead. A
 * TXT record may come in several strings: they are joined (RFC 7208 section 3.3 style). */
static int txt_has(const query_t *q, const char *value, const char **pfound, apr_pool_t *p)
{
    struct ares_txt_ext *txt = NULL, *t;
    const char *cur = NULL, *found = NULL;
    int hit = 0, n = 0;

    if (q->status != ARES_SUCCESS ||
        ares_parse_txt_reply_ext(q->abuf, q->alen, &txt) != ARES_SUCCESS) {
        *pfound = "no TXT record";
        return 0;
    }
    for (t = txt; t; t = t->next) {
        const char *s = apr_pstrmemdup(p, (const char *)t->txt, t->length);
        if (t->record_start || !cur) {
            if (cur) {
                hit |= strcmp(cur, value) == 0;
                found = found ? apr_pstrcat(p, found, ", ", cur, NULL) : cur;
                n++;
            }
            cur = s;
        } else {
            cur = apr_pstrcat(p, cur, s, NULL);
        }
    }
    if (cur) {
        hit |= strcmp(cur, value) == 0;
        found = found ? apr_pstrcat(p, found, ", ", cur, NULL) : cur;
        n++;
    }
    ares_free_data(txt);
    /* Values are cut to a few in messages: a busy record must not flood the log. */
    *pfound = n ? apr_psprintf(p, "%d other value(s): %.200s", n, found) : "no TXT record";
    return hit;
}

/* Asks one server set (resolver or one authoritative server) for record's TXT. */
static apr_status_t ask(int *pseen, const char **pwhy, const char *servers, const char *label,
                        int norecurse, const acme_dns_opts_t *opts, const char *record,
                        const char *value, apr_pool_t *p)
{
    ares_channel *ch;
    query_t q;
    const char *failed, *found = NULL;
    apr_status_t rv;

    rv = channel_make(&ch, servers, norecurse, opts, p);
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(p, "cannot ask %s: %s", label, acme_strerror(rv, p));
        return rv;
    }
    rv = query_run(&q, ch, record, ns_t_txt, opts, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    failed = ask_failed(q.status);
    if (failed) {
        *pwhy = apr_psprintf(p, "%s could not be asked for %s: %s", label, record, failed);
        return q.status == ARES_ETIMEOUT ? APR_TIMEUP : APR_ECONNREFUSED;
    }
    *pseen = txt_has(&q, value, &found, p);
    if (!*pseen) {
        *pwhy = apr_psprintf(p, "%s has %s for %s", label, found, record);
    }
    return APR_SUCCESS;
}

/* --- the zone's authoritative servers --- */

/* The servers of the zone holding record, as "address" labels and c-ares CSV entries. The zone
 * is the nearest name, from record up, that has an SOA record of its own. */
static apr_status_t zone_servers(apr_array_header_t **pservers, const char **pzone,
                                 const char **pwhy, const acme_dns_opts_t *opts, const char *record,
                                 apr_pool_t *p)
{
    ares_channel *ch;
    query_t q;
    struct hostent *ns = NULL;
    apr_array_header_t *servers = apr_array_make(p, 4, sizeof(const char *));
    const char *zone = record, *failed;
    apr_status_t rv;
    int i, k;

    rv = channel_make(&ch, NULL, 0, opts, p);
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(p, "the system's resolver cannot be used: %s", acme_strerror(rv, p));
        return rv;
    }
    for (;;) {
        struct ares_soa_reply *soa = NULL;
        rv = query_run(&q, ch, zone, ns_t_soa, opts, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        failed = ask_failed(q.status);
        if (failed) {
            *pwhy = apr_psprintf(
                p, "the system's resolver could not be asked for the SOA of %s: %s", zone, failed);
            return q.status == ARES_ETIMEOUT ? APR_TIMEUP : APR_ECONNREFUSED;
        }
        if (q.status == ARES_SUCCESS &&
            ares_parse_soa_reply(q.abuf, q.alen, &soa) == ARES_SUCCESS) {
            ares_free_data(soa);
            break;
        }
        zone = strchr(zone, '.');
        if (!zone || !strchr(zone + 1, '.')) {
            *pwhy = apr_psprintf(p, "no zone found for %s (no SOA record on the way up)", record);
            return APR_NOTFOUND;
        }
        zone++;
    }
    rv = query_run(&q, ch, zone, ns_t_ns, opts, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (q.status != ARES_SUCCESS || ares_parse_ns_reply(q.abuf, q.alen, &ns) != ARES_SUCCESS) {
        *pwhy =
            apr_psprintf(p, "the zone %s has no NS records the system's resolver can tell", zone);
        return APR_NOTFOUND;
    }
    for (i = 0; ns->h_aliases[i] && servers->nelts < ACME_DNS_SERVERS_MAX; i++) {
        const char *host = apr_pstrdup(p, ns->h_aliases[i]);
        int types[2] = {ns_t_a, ns_t_aaaa};
        for (k = 0; k < 2 && servers->nelts < ACME_DNS_SERVERS_MAX; k++) {
            struct ares_addrttl a4[ACME_DNS_SERVERS_MAX];
            struct ares_addr6ttl a6[ACME_DNS_SERVERS_MAX];
            char buf[INET6_ADDRSTRLEN];
            int n = ACME_DNS_SERVERS_MAX, j;
            rv = query_run(&q, ch, host, types[k], opts, p);
            if (rv != APR_SUCCESS) {
                ares_free_hostent(ns);
                return rv;
            }
            if (q.status != ARES_SUCCESS ||
                (k == 0 ? ares_parse_a_reply(q.abuf, q.alen, NULL, a4, &n)
                        : ares_parse_aaaa_reply(q.abuf, q.alen, NULL, a6, &n)) != ARES_SUCCESS) {
                continue;
            }
            for (j = 0; j < n && servers->nelts < ACME_DNS_SERVERS_MAX; j++) {
                if (k == 0) {
                    inet_ntop(AF_INET, &a4[j].ipaddr, buf, sizeof(buf));
                    APR_ARRAY_PUSH(servers, const char *) = apr_psprintf(p, "%s:53", buf);
                } else {
                    inet_ntop(AF_INET6, &a6[j].ip6addr, buf, sizeof(buf));
                    APR_ARRAY_PUSH(servers, const char *) = apr_psprintf(p, "[%s]:53", buf);
                }
            }
        }
    }
    ares_free_hostent(ns);
    if (!servers->nelts) {
        *pwhy = apr_psprintf(p, "no address found for the name servers of %s", zone);
        return APR_NOTFOUND;
    }
    *pservers = servers;
    *pzone = apr_pstrdup(p, zone);
    return APR_SUCCESS;
}

apr_status_t acme_dns_txt_check(int *pseen, const char **pwhy, const acme_dns_opts_t *opts,
                                const char *record, const char *value, apr_pool_t *p)
{
    apr_array_header_t *servers;
    const char *zone, *csv;
    apr_status_t rv;
    int i;

    *pseen = 0;
    *pwhy = NULL;
    if (opts->resolver) {
        csv = server_csv(opts->resolver, p);
        if (!csv) {
            *pwhy = apr_psprintf(p, "ACMEDNSResolver %s is not an address[:port]", opts->resolver);
            return APR_EINVAL;
        }
        return ask(pseen, pwhy, csv, apr_psprintf(p, "the resolver %s", opts->resolver), 0, opts,
                   record, value, p);
    }
    rv = zone_servers(&servers, &zone, pwhy, opts, record, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* The CA may ask any of them: the value must be at each. */
    for (i = 0; i < servers->nelts; i++) {
        const char *server = APR_ARRAY_IDX(servers, i, const char *);
        rv = ask(pseen, pwhy, server, apr_psprintf(p, "the name server %s of %s", server, zone), 1,
                 opts, record, value, p);
        if (rv != APR_SUCCESS || !*pseen) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t acme_dns_await(apr_array_header_t *txts, const acme_dns_opts_t *opts, apr_time_t until,
                            const acme_clock_t *clock, const char **pwhy, apr_pool_t *p)
{
    apr_interval_time_t wait = ACME_DNS_POLL_FIRST;
    const char *why = NULL;
    apr_status_t rv;
    int i, missing, looks = 0;

    for (;;) {
        apr_pool_t *scratch;
        apr_time_t now;

        /* Each look in a pool of its own: polling for minutes must not grow the caller's. */
        rv = apr_pool_create(&scratch, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        missing = 0;
        looks++;
        for (i = 0; i < txts->nelts; i++) {
            acme_dns_txt_t *t = &APR_ARRAY_IDX(txts, i, acme_dns_txt_t);
            const char *w = NULL;
            if (t->seen) {
                continue;
            }
            rv = acme_dns_txt_check(&t->seen, &w, opts, t->record, t->value, scratch);
            if (rv == ACME_ECANCELLED) {
                apr_pool_destroy(scratch);
                return rv;
            }
            if (!t->seen && !missing++) {
                why = apr_psprintf(p, "TXT %s = %s: %s", t->record, t->value, w ? w : "not seen");
            }
        }
        apr_pool_destroy(scratch);
        if (!missing) {
            if (opts->log) {
                acme_log(opts->log, ACME_LOG_INFO, APR_SUCCESS,
                         "ACME00130: %s: %d TXT record(s) visible %s after %d look(s)",
                         opts->domain ? opts->domain : "-", txts->nelts,
                         opts->resolver ? apr_psprintf(p, "at %s", opts->resolver)
                                        : "at every authoritative server",
                         looks);
            }
            return APR_SUCCESS;
        }
        now = clock->now(clock->baton);
        if (now >= until) {
            *pwhy = apr_psprintf(p,
                                 "%d of %d TXT record(s) not visible after %d look(s), the "
                                 "last: %s",
                                 missing, txts->nelts, looks, why);
            return ACME_EDNS;
        }
        if (opts->log) {
            acme_log(opts->log, ACME_LOG_DEBUG, APR_SUCCESS,
                     "ACME00131: %s: %s; looking again in %" APR_TIME_T_FMT " ms",
                     opts->domain ? opts->domain : "-", why, apr_time_as_msec(wait));
        }
        /* The last look is at the limit itself. */
        clock->sleep(clock->baton, now + wait > until ? until - now : wait);
        if (cancelled(opts)) {
            return ACME_ECANCELLED;
        }
        wait = wait * 2 > ACME_DNS_POLL_MAX ? ACME_DNS_POLL_MAX : wait * 2;
    }
}
