/* acmectl_import.c - acmectl import certbot|md [DIR [NAME...]]: certificates and keys of certbot
 * (/etc/letsencrypt) or mod_md (its MDStoreDir) become the active sets of mod_acme's store, and
 * the accounts they were obtained with are taken over, so that the server serves them at its
 * next start and renews them with the same account when they are due, without a new order.
 *
 * The folders are read by acmectl_import_src.c (no link out of DIR, bounded). Each set is checked
 * as the parent checks a staged set and activated with acme_store_activate (a new archive
 * generation and one rename of domains/<name>: atomic, root's folders root's, the set active
 * before stays in archive/). Accounts go to accounts/<ca-id>/ as the module keeps them, owned by
 * the server's User, who reads them. Output: one line per certificate and account, tagged
 * ACME033xx, never key material.
 */
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include "config.h"

#include "acme_store_ctl.h"
#include "acmectl_import.h"

typedef struct import_t {
    acmectl_t *ctx;
    const char *kind; /* "certbot" or "md" */
    acme_import_src_t *src;
    int dry_run, force;
    uid_t uid; /* the server's User, who owns accounts/ */
    gid_t gid;
    apr_array_header_t *only; /* names asked for, or NULL for all */
    int imported, skipped;
} import_t;

/* Prints one line of the report on ctx->out with every byte outside printable text escaped:
 * folder names, md.json and the certificates are outside text, and must not reach the terminal
 * as control sequences. */
static void say(const acmectl_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const acmectl_t *ctx, const char *fmt, ...)
{
    apr_pool_t *p = NULL;
    va_list ap;
    char *text, *line, *next;

    if (apr_pool_create(&p, ctx->pool) != APR_SUCCESS) {
        return;
    }
    va_start(ap, fmt);
    text = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    /* Line by line: the escaping would turn the line ends into text too. */
    for (line = text; line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        } else if (!*line) {
            break; /* the text ended with its line end */
        }
        fprintf(ctx->out, "%s\n", acme_log_safe(line, 0, p));
    }
    apr_pool_destroy(p);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: acmectl [--store DIR] import certbot|md [--dry-run] [--force] [--user NAME]\n"
            "                                  [DIR [NAME...]]\n\n"
            "Makes the certificates and keys of certbot (DIR: its configuration folder, default\n"
            "/etc/letsencrypt) or of mod_md (DIR: its MDStoreDir, default %s/md) the active\n"
            "certificates of mod_acme's store, and takes over the ACME accounts they were\n"
            "obtained with, so that nothing is ordered again before renewal is due.\n\n"
            "  NAME...      only these certificates (their first name), default all\n"
            "  --dry-run    say what would be imported, change nothing\n"
            "  --force      replace a certificate the store has already (it stays in archive/)\n"
            "  --user NAME  the server's User, who gets the accounts (default: the owner of\n"
            "               accounts/ or jobs/ when it is not root, else www-data)\n\n"
            "Each certificate is checked as the server checks a new one (the key matches, the\n"
            "chain is whole and valid now). The server uses them after its next (graceful)\n"
            "restart, with ACMEDomain and the CA configured as the output says.\n",
            ACME_SERVER_ROOT);
}

static const char *when_text(apr_time_t t, apr_pool_t *p)
{
    apr_time_exp_t tm;

    apr_time_exp_gmt(&tm, t);
    return apr_psprintf(p, "%04d-%02d-%02d %02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min);
}

static const char *names_text(const apr_array_header_t *names, apr_pool_t *p)
{
    return apr_array_pstrcat(p, names, ' ');
}

/* The server's User: --user, else the owner of accounts/ or jobs/ when not root, else
 * www-data; root when none of them exists (a server without User). */
static int find_user(import_t *im, const char *name)
{
    static const char *const dirs[] = {"accounts", "jobs", NULL};
    struct passwd *pw;
    struct stat st;
    int i;

    if (!name) {
        for (i = 0; dirs[i]; i++) {
            if (lstat(acme_store_path(im->ctx->store, dirs[i], im->ctx->pool), &st) == 0 &&
                S_ISDIR(st.st_mode) && st.st_uid != 0) {
                im->uid = st.st_uid;
                im->gid = st.st_gid;
                return 1;
            }
        }
        name = "www-data";
    }
    pw = getpwnam(name);
    if (!pw) {
        return 0;
    }
    im->uid = pw->pw_uid;
    im->gid = pw->pw_gid;
    return 1;
}

/* accounts/<dir>, made when missing and given to the server's User: the renewal driver (the
 * User) reads the account there. Only the top is followed as given (it is root's); neither
 * accounts/ nor the new folder is followed when it is a link. */
static apr_status_t account_folder(import_t *im, const char *dir)
{
    const char *accounts = acme_store_path(im->ctx->store, "accounts", im->ctx->pool);
    int afd = -1, fd = -1;
    apr_status_t rv = APR_SUCCESS;

    afd = open(accounts, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (afd < 0 || (mkdirat(afd, dir, 0700) != 0 && errno != EEXIST)) {
        rv = APR_FROM_OS_ERROR(errno);
        goto out;
    }
    fd = openat(afd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (geteuid() == 0 && fchown(fd, im->uid, im->gid) != 0)) {
        rv = APR_FROM_OS_ERROR(errno);
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    if (afd >= 0) {
        close(afd);
    }
    return rv;
}

/* Takes over the account a; done once per CA (the hash remembers). */
static void import_account(import_t *im, apr_hash_t *done, acmectl_imp_acct_t *a, const char *ca)
{
    apr_pool_t *p = im->ctx->pool;
    const char *ca_id = acme_store_ca_id(ca, p);
    const char *dir = apr_pstrcat(p, "accounts/", ca_id, NULL), *thumb = NULL, *pem;
    const char *src = apr_pstrcat(p, acme_import_src_dir(im->src), "/", a->source, NULL);
    json_t *info, *contacts;
    char *text;
    apr_size_t len;
    apr_status_t rv;
    int i;

    if (apr_hash_get(done, ca, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(done, ca, APR_HASH_KEY_STRING, a);
    if (a->why) {
        say(im->ctx,
            "ACME03310: account at %s: not taken over: %s; the server registers a new "
            "account when it renews\n",
            ca, a->why);
        return;
    }
    rv = acme_key_thumbprint(&thumb, a->key, p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_read(&text, &len, im->ctx->store, apr_pstrcat(p, dir, "/account.key", NULL),
                             ACME_STORE_KEY_MAX, p);
        if (rv == APR_SUCCESS) {
            acme_key_t *own = NULL;
            const char *own_thumb = NULL;
            int same = acme_key_from_pem(&own, text, len, p) == APR_SUCCESS &&
                       acme_key_thumbprint(&own_thumb, own, p) == APR_SUCCESS &&
                       strcmp(own_thumb, thumb) == 0;
            say(im->ctx,
                same ? "ACME03311: account %s at %s: the store has it already (%s)\n"
                     : "ACME03312: account %s at %s: not taken over: the store has an "
                       "account of its own at that CA (%s), which the server keeps using\n",
                a->url, ca, acme_store_path(im->ctx->store, dir, p));
            return;
        }
        if (!APR_STATUS_IS_ENOENT(rv)) {
            say(im->ctx, "ACME03310: account at %s: not taken over: %s/account.key: %s\n", ca,
                acme_store_path(im->ctx->store, dir, p), acme_strerror(rv, p));
            return;
        }
    }
    if (im->dry_run) {
        say(im->ctx, "ACME03313: account %s at %s: would be taken over from %s into %s\n", a->url,
            ca, src, acme_store_path(im->ctx->store, dir, p));
        return;
    }
    /* As acme_account_setup keeps it: the key, then its URL with the key's thumbprint. */
    info = acme_json_pool(p, json_pack("{s:s, s:s, s:s, s:s}", "url", a->url, "ca", ca, "key",
                                       thumb, "imported-from", src));
    contacts = json_array();
    for (i = 0; a->contacts && i < a->contacts->nelts; i++) {
        json_array_append_new(contacts, json_string(APR_ARRAY_IDX(a->contacts, i, const char *)));
    }
    json_object_set_new(info, "contact", contacts);
    text = json_dumps(info, JSON_COMPACT);
    rv = text ? account_folder(im, ca_id) : APR_ENOMEM;
    if (rv == APR_SUCCESS) {
        rv = acme_key_to_pem(&pem, &len, a->key, p);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_store_write_owned(im->ctx->store, apr_pstrcat(p, dir, "/account.key", NULL), pem,
                                    len, APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_store_write_owned(im->ctx->store, apr_pstrcat(p, dir, "/account.json", NULL),
                                    text, strlen(text), APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    }
    free(text);
    if (rv != APR_SUCCESS) {
        say(im->ctx, "ACME03310: account at %s: not taken over: cannot write %s: %s\n", ca,
            acme_store_path(im->ctx->store, dir, p), acme_strerror(rv, p));
        im->skipped++;
        return;
    }
    say(im->ctx, "ACME03314: account %s at %s: taken over from %s into %s\n", a->url, ca, src,
        acme_store_path(im->ctx->store, dir, p));
}

/* Whether the operator's NAME is c: its first name, its set, or its folder in the source
 * (certbot's lineage, mod_md's domain). */
static int is_named(const acmectl_imp_cert_t *c, const char *n)
{
    const char *folder = strrchr(c->source, '/');

    return strcasecmp(n, c->first) == 0 || (c->set_name && strcasecmp(n, c->set_name) == 0) ||
           (folder && strcmp(n, folder + 1) == 0);
}

static int wanted(const import_t *im, const acmectl_imp_cert_t *c)
{
    int i;

    for (i = 0; im->only && i < im->only->nelts; i++) {
        if (is_named(c, APR_ARRAY_IDX(im->only, i, const char *))) {
            return 1;
        }
    }
    return im->only == NULL;
}

static json_t *set_meta(const import_t *im, const acmectl_imp_cert_t *c, apr_pool_t *p)
{
    json_t *names = json_array(), *meta;
    int i;

    for (i = 0; i < c->names->nelts; i++) {
        json_array_append_new(names, json_string(APR_ARRAY_IDX(c->names, i, const char *)));
    }
    meta = acme_json_pool(p, json_pack("{s:o, s:s, s:I, s:s}", "names", names, "key-type",
                                       acme_key_type_name(acme_key_type(c->key)), "obtained",
                                       (json_int_t)apr_time_sec(acme_cert_not_before(
                                           APR_ARRAY_IDX(c->chain, 0, acme_cert_t *))),
                                       "imported-from",
                                       apr_pstrcat(p, im->kind, ":", acme_import_src_dir(im->src),
                                                   "/", c->source, NULL)));
    /* The CA it came from: the server renews there (and replaces it when that CA is no longer
     * configured). */
    if (meta && c->ca_url) {
        json_object_set_new(meta, "ca", json_string(c->ca_url));
    }
    return meta;
}

/* One certificate: 1 when it is active in the store afterwards (imported now or before). */
static int import_cert(import_t *im, const acmectl_imp_cert_t *c, apr_pool_t *p)
{
    const char *from = apr_pstrcat(p, acme_import_src_dir(im->src), "/", c->source, NULL);
    const char *why = NULL, *serial;
    const acme_cert_t *leaf;
    acme_certset_t *active = NULL;
    apr_time_t when = 0;
    apr_status_t rv;

    if (c->why) {
        say(im->ctx, "ACME03302: %s (%s): skipped: %s\n", c->first, c->source, c->why);
        return 0;
    }
    if (!c->set_name) {
        say(im->ctx, "ACME03302: %s (%s): skipped: mod_acme's store takes no such name\n",
            acme_log_safe(c->first, 255, p), c->source);
        return 0;
    }
    leaf = APR_ARRAY_IDX(c->chain, 0, acme_cert_t *);
    serial = acme_cert_serial_hex(leaf, p);
    /* The checks the parent makes before it activates a staged set. */
    rv = acme_cert_activation_check(c->chain, c->key, c->names, apr_time_now(), &when, &why, p);
    if (rv != APR_SUCCESS) {
        say(im->ctx, "ACME03302: %s (%s): skipped: %s\n", c->first, c->source,
            why ? why : acme_strerror(rv, p));
        return 0;
    }
    rv = acme_store_load(&active, im->ctx->store, c->set_name, 0, &why, p);
    if (rv == APR_SUCCESS && acme_cert_same(APR_ARRAY_IDX(active->chain, 0, acme_cert_t *), leaf)) {
        say(im->ctx, "ACME03303: %s: already active in the store (serial %s)\n", c->set_name,
            serial);
        return 1;
    }
    if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv) && !im->force) {
        say(im->ctx,
            "ACME03302: %s (%s): skipped: the store's active set cannot be read (%s); "
            "--force replaces it\n",
            c->set_name, c->source, why ? why : acme_strerror(rv, p));
        return 0;
    }
    if (rv == APR_SUCCESS && !im->force) {
        say(im->ctx,
            "ACME03302: %s (%s): skipped: the store has a certificate for it already "
            "(serial %s); --force replaces it (it stays in archive/)\n",
            c->set_name, c->source,
            acme_cert_serial_hex(APR_ARRAY_IDX(active->chain, 0, acme_cert_t *), p));
        return 0;
    }
    if (im->dry_run) {
        say(im->ctx, "ACME03304: %s: would be imported from %s (%s, serial %s, valid until %s)\n",
            c->set_name, from, acme_key_type_name(acme_key_type(c->key)), serial,
            when_text(acme_cert_not_after(leaf), p));
        return 1;
    }
    rv = acme_store_activate(im->ctx->store, c->set_name, c->key, c->chain_pem, c->chain_len,
                             set_meta(im, c, p), c->names, apr_time_now(), &why, p);
    if (rv != APR_SUCCESS) {
        say(im->ctx, "ACME03302: %s (%s): skipped: %s\n", c->set_name, c->source,
            why ? why : acme_strerror(rv, p));
        return 0;
    }
    /* A refusal recorded for an earlier staged set no longer counts: a set is active. */
    acme_store_refusal_clear(im->ctx->store, c->set_name, p);
    fprintf(
        im->ctx->out, "ACME03301: %s: imported from %s into %s (%s, serial %s, valid until %s)%s\n",
        c->set_name, from,
        acme_store_path(im->ctx->store, apr_pstrcat(p, "domains/", c->set_name, NULL), p),
        acme_key_type_name(acme_key_type(c->key)), serial, when_text(acme_cert_not_after(leaf), p),
        active ? "; the set active before stays in archive/" : "");
    return 1;
}

/* What to configure for the certificates taken: an ACMEDomain per first name with its key
 * types in order, and the CAs. */
static void print_config(import_t *im, apr_array_header_t *taken, apr_pool_t *p)
{
    apr_hash_t *cas = apr_hash_make(p), *firsts = apr_hash_make(p);
    int i, j;

    if (taken->nelts == 0) {
        return;
    }
    say(im->ctx, "\nConfiguration that serves %s (mod_acme's directives):\n",
        im->dry_run ? "them" : "what was imported");
    for (i = 0; i < taken->nelts; i++) {
        const acmectl_imp_cert_t *c = APR_ARRAY_IDX(taken, i, acmectl_imp_cert_t *);
        if (c->ca_url && !apr_hash_get(cas, c->ca_url, APR_HASH_KEY_STRING)) {
            apr_hash_set(cas, c->ca_url, APR_HASH_KEY_STRING, c);
            say(im->ctx, "    ACMECertificateAuthority %s\n", c->ca_url);
        }
    }
    for (i = 0; i < taken->nelts; i++) {
        const acmectl_imp_cert_t *c = APR_ARRAY_IDX(taken, i, acmectl_imp_cert_t *);
        const char *types = "";
        int n = 0;
        if (apr_hash_get(firsts, c->first, APR_HASH_KEY_STRING)) {
            continue;
        }
        /* The key types of one first name, in the order the sets were named. */
        for (j = i; j < taken->nelts; j++) {
            const acmectl_imp_cert_t *d = APR_ARRAY_IDX(taken, j, acmectl_imp_cert_t *);
            if (strcasecmp(d->first, c->first) == 0) {
                types = apr_pstrcat(p, types, n++ ? " " : "",
                                    acme_key_type_name(acme_key_type(d->key)), NULL);
            }
        }
        apr_hash_set(firsts, c->first, APR_HASH_KEY_STRING, c);
        if (strcmp(types, acme_key_type_name(ACME_KEY_EC256)) == 0) {
            say(im->ctx, "    ACMEDomain %s\n", names_text(c->names, p));
        } else {
            say(im->ctx, "    <ACMEDomain %s>\n        ACMEKeyType %s\n    </ACMEDomain>\n",
                names_text(c->names, p), types);
        }
    }
    say(im->ctx,
        "%s`%s` makes a running server use them; until they are due for renewal nothing "
        "is ordered.\n",
        im->dry_run ? "After the import, " : "", ACME_RESTART_COMMAND);
}

int acmectl_import(acmectl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"force", no_argument, NULL, 'f'},
        {"user", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    apr_array_header_t *certs = NULL, *taken;
    apr_hash_t *accounts_done = apr_hash_make(ctx->pool);
    import_t im;
    const char *dir, *user = NULL, *why = NULL;
    apr_status_t rv;
    int opt, i;

    memset(&im, 0, sizeof(im));
    im.ctx = ctx;
    /* Options anywhere after "import" (GNU getopt moves the operands behind them). */
    while ((opt = getopt_long(argc, argv, "nfu:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            im.dry_run = 1;
            break;
        case 'f':
            im.force = 1;
            break;
        case 'u':
            user = optarg;
            break;
        case 'h':
            usage(ctx->out);
            return ACMECTL_EXIT_OK;
        default:
            usage(ctx->err);
            return ACMECTL_EXIT_USAGE;
        }
    }
    if (optind >= argc ||
        (strcmp(argv[optind], "certbot") != 0 && strcmp(argv[optind], "md") != 0)) {
        acmectl_err(ctx, "import: say what to import from: certbot or md");
        usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    im.kind = argv[optind++];
    dir = optind < argc                     ? argv[optind++]
          : strcmp(im.kind, "certbot") == 0 ? "/etc/letsencrypt"
                                            : apr_pstrcat(ctx->pool, ACME_SERVER_ROOT, "/md", NULL);
    if (optind < argc) {
        im.only = apr_array_make(ctx->pool, argc - optind, sizeof(const char *));
        while (optind < argc) {
            APR_ARRAY_PUSH(im.only, const char *) = argv[optind++];
        }
    }
    if (!find_user(&im, user)) {
        acmectl_err(ctx, "import: no user '%s' (--user names the server's User)",
                    acme_log_safe(user ? user : "www-data", 64, ctx->pool));
        return ACMECTL_EXIT_USAGE;
    }
    rv = acme_import_src_open(&im.src, dir, ctx->pool);
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx, "import: cannot open %s: %s", acme_log_safe(dir, 1024, ctx->pool),
                    acme_strerror(rv, ctx->pool));
        return ACMECTL_EXIT_FAIL;
    }
    rv = strcmp(im.kind, "certbot") == 0 ? acmectl_scan_certbot(&certs, im.src, &why, ctx->pool)
                                         : acmectl_scan_md(&certs, im.src, &why, ctx->pool);
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx, "import %s: %s: %s", im.kind, acme_log_safe(dir, 1024, ctx->pool),
                    why ? why : acme_strerror(rv, ctx->pool));
        return ACMECTL_EXIT_FAIL;
    }
    taken = apr_array_make(ctx->pool, certs->nelts, sizeof(acmectl_imp_cert_t *));
    for (i = 0; i < certs->nelts; i++) {
        acmectl_imp_cert_t *c = APR_ARRAY_IDX(certs, i, acmectl_imp_cert_t *);
        if (!wanted(&im, c)) {
            continue;
        }
        if (import_cert(&im, c, ctx->pool)) {
            im.imported++;
            APR_ARRAY_PUSH(taken, acmectl_imp_cert_t *) = c;
            /* The account of the same CA: renewals need no new one. */
            if (c->account && c->ca_url) {
                import_account(&im, accounts_done, c->account, c->ca_url);
            }
        } else {
            im.skipped++;
        }
    }
    for (i = 0; im.only && i < im.only->nelts; i++) {
        const char *n = APR_ARRAY_IDX(im.only, i, const char *);
        int j, found = 0;
        for (j = 0; j < certs->nelts && !found; j++) {
            const acmectl_imp_cert_t *c = APR_ARRAY_IDX(certs, j, acmectl_imp_cert_t *);
            found = is_named(c, n);
        }
        if (!found) {
            say(ctx, "ACME03302: %s: skipped: %s has no certificate of that name\n",
                acme_log_safe(n, 255, ctx->pool), acme_log_safe(dir, 1024, ctx->pool));
            im.skipped++;
        }
    }
    say(ctx, "ACME03305: %s %s: %d %s, %d skipped\n", im.kind, acme_log_safe(dir, 1024, ctx->pool),
        im.imported, im.dry_run ? "to import" : "imported", im.skipped);
    print_config(&im, taken, ctx->pool);
    return im.skipped ? ACMECTL_EXIT_PROBLEM : ACMECTL_EXIT_OK;
}
