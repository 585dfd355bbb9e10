/* fuzz_config.c - directive values, through the real directive handlers of mod_acme_config.c
 * (the command table), the merge into a virtual host, and check_config; then what the rest of the
 * module relies on: every refusal names its directive, every accepted name is a lowercase DNS
 * name or the canonical text of an IP, a name belongs to one ACMEDomain and is found again for
 * a request in any letter case, every certificate unit has a store name the store accepts;
 * the names "ACMEDomain ... auto" gathers from the vhost obey the same.
 *
 * Input: configuration lines, "Directive value value ..." (values may be quoted); a line
 * "<ACMEDomain names...>" opens a section whose lines run to "</ACMEDomain>" (or the end).
 */
#include <arpa/inet.h>
#include <ctype.h>

#include "fuzz.h"
#include "fuzz_httpd.h"

#include "acme_csr.h"

#define LINES_MAX 32
#define ARGS_MAX  128

/* Splits a line into words like httpd's ap_getword_conf: blanks separate, "..." and '...'
 * group. */
static int split_words(char *line, char **argv, apr_pool_t *p)
{
    int argc = 0;
    char *s = line;

    while (*s && argc < ARGS_MAX) {
        char *start, quote = 0;
        while (*s == ' ' || *s == '\t' || *s == '\r') {
            s++;
        }
        if (!*s) {
            break;
        }
        if (*s == '"' || *s == '\'') {
            quote = *s++;
        }
        start = s;
        while (*s && (quote ? *s != quote : (*s != ' ' && *s != '\t' && *s != '\r'))) {
            s++;
        }
        argv[argc++] = apr_pstrmemdup(p, start, (apr_size_t)(s - start));
        if (*s) {
            s++;
        }
    }
    return argc;
}

static const command_rec *find_command(const char *name)
{
    const command_rec *cmd;

    for (cmd = acme_cmds; cmd->name; cmd++) {
        if (strcasecmp(cmd->name, name) == 0) {
            return cmd;
        }
    }
    return NULL;
}

/* Runs one directive the way httpd's invoke_cmd does for our argument kinds; NULL when httpd
 * would have refused the argument count before calling us. base carries the server, pools and
 * the directive (a section's children in dir->first_child). */
static const char *run_directive(const cmd_parms *base, const command_rec *cmd, int argc,
                                 char **argv, const char *raw)
{
    cmd_parms parms = *base;

    parms.cmd = cmd;
    switch (cmd->args_how) {
    case TAKE_ARGV:
        return cmd->AP_TAKE_ARGV(&parms, NULL, argc, argv);
    case TAKE1:
        return argc == 1 ? cmd->AP_TAKE1(&parms, NULL, argv[0]) : NULL;
    case TAKE2:
        return argc == 2 ? cmd->AP_TAKE2(&parms, NULL, argv[0], argv[1]) : NULL;
    case TAKE12:
        return argc == 1 || argc == 2
                   ? cmd->AP_TAKE2(&parms, NULL, argv[0], argc == 2 ? argv[1] : NULL)
                   : NULL;
    case FLAG:
        if (argc != 1 || (strcasecmp(argv[0], "on") != 0 && strcasecmp(argv[0], "off") != 0)) {
            return NULL;
        }
        return cmd->AP_FLAG(&parms, NULL, strcasecmp(argv[0], "on") == 0);
    case RAW_ARGS:
        return cmd->AP_RAW_ARGS(&parms, NULL, raw);
    default:
        FUZZ_ASSERT(!"a directive kind this target does not know");
    }
    return NULL;
}

/* ap_walk_config's work for a section's body. */
static const char *walk_one(ap_directive_t *dir, cmd_parms *parms)
{
    char *argv[ARGS_MAX];
    const command_rec *cmd = find_command(dir->directive);
    int argc = split_words(apr_pstrdup(parms->pool, dir->args), argv, parms->pool);

    if (!cmd) {
        return NULL; /* another module's directive */
    }
    return run_directive(parms, cmd, argc, argv, dir->args);
}

static const char *case_flip(const char *s, apr_pool_t *p)
{
    char *out = apr_pstrdup(p, s), *c;

    for (c = out; *c; c++) {
        *c = (char)(islower((unsigned char)*c) ? toupper((unsigned char)*c)
                                               : tolower((unsigned char)*c));
    }
    return out;
}

static void check_names(const acme_conf_t *c, apr_pool_t *p)
{
    int i, j;

    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        FUZZ_ASSERT(d->names->nelts >= 1 && d->name && d->set_name);
        /* Only "auto" adds names, never past what a CA puts in one certificate. */
        FUZZ_ASSERT(d->auto_names || d->names->nelts == d->n_configured);
        FUZZ_ASSERT(d->names->nelts <= ACME_ORDER_IDENTIFIERS_MAX);
        /* The store keeps each unit under its set name. */
        FUZZ_ASSERT(acme_store_name_ok(d->set_name));
        for (j = 0; j < d->names->nelts; j++) {
            const char *n = APR_ARRAY_IDX(d->names, j, const char *), *c2;
            const acme_domain_t *found;
            unsigned char addr[16];
            char buf[INET6_ADDRSTRLEN];

            FUZZ_ASSERT(acme_name_is_dns(n) || acme_name_is_ip(n));
            for (c2 = n; *c2; c2++) {
                FUZZ_ASSERT(!(*c2 >= 'A' && *c2 <= 'Z'));
            }
            if (inet_pton(AF_INET6, n, addr) == 1) {
                FUZZ_ASSERT(strcmp(inet_ntop(AF_INET6, addr, buf, sizeof(buf)), n) == 0);
            }
            /* Requests find the ACMEDomain (its first key type's unit) in any letter case. */
            found = acme_domain_for_host(c, case_flip(n, p));
            FUZZ_ASSERT(found && found->primary);
            FUZZ_ASSERT(found == d || !d->primary);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    server_rec *s = fuzz_httpd_server("example.org", p), *v;
    acme_conf_t *c, *vc;
    fuzz_input_t in;
    int line = 0, i;

    fuzz_input_init(&in, data, size);
    fuzz_httpd_set_walker(walk_one);
    while (in.pos < in.len && line < LINES_MAX) {
        char *text = fuzz_part(&in, "\n", NULL, p), *argv[ARGS_MAX];
        const command_rec *cmd;
        ap_directive_t *dir = apr_pcalloc(p, sizeof(*dir)), **tail = &dir->first_child;
        cmd_parms parms;
        const char *err, *raw;
        int argc;

        line++;
        argc = split_words(apr_pstrdup(p, text), argv, p);
        if (argc < 1 || !(cmd = find_command(argv[0]))) {
            continue;
        }
        raw = text + strspn(text, " \t\r");
        raw += strlen(argv[0]);
        dir->directive = cmd->name;
        dir->args = raw;
        dir->filename = "fuzz.conf";
        dir->line_num = line;
        /* A section: its lines become the directive's children. */
        while (cmd->args_how == RAW_ARGS && in.pos < in.len && line < LINES_MAX) {
            char *body = fuzz_part(&in, "\n", NULL, p), *bargv[ARGS_MAX];
            ap_directive_t *child;
            int bargc = split_words(apr_pstrdup(p, body), bargv, p);
            line++;
            if (bargc >= 1 && strncasecmp(bargv[0], "</", 2) == 0) {
                break;
            }
            if (bargc < 1) {
                continue;
            }
            child = apr_pcalloc(p, sizeof(*child));
            child->directive = bargv[0];
            child->args = body + strspn(body, " \t\r") + strlen(bargv[0]);
            child->filename = "fuzz.conf";
            child->line_num = line;
            child->parent = dir;
            *tail = child;
            tail = &child->next;
        }
        memset(&parms, 0, sizeof(parms));
        parms.server = s;
        parms.pool = p;
        parms.temp_pool = p;
        parms.directive = dir;
        err = run_directive(&parms, cmd, argc - 1, argv + 1, raw);
        if (err) {
            /* configtest names the directive in every message (in a section, the one inside
             * that failed). */
            FUZZ_ASSERT(strstr(err, cmd->args_how == RAW_ARGS ? "ACME" : cmd->name) != NULL);
        }
    }

    /* A virtual host inherits by the merge; check_config then runs over both. */
    c = acme_conf_get(s);
    v = fuzz_httpd_server("www.example.org", p);
    APR_ARRAY_PUSH(v->names, const char *) = "alias.example.org";
    /* What "ACMEDomain ... auto" gathers: a name, one it leaves out, an IP, a wildcard. */
    APR_ARRAY_PUSH(v->names, const char *) = "localhost";
    APR_ARRAY_PUSH(v->names, const char *) = "127.0.0.1";
    APR_ARRAY_PUSH(v->wild_names, const char *) = "*.Example.org";
    ap_set_module_config(v->module_config, &acme_module, acme_conf_merge(p, c, acme_conf_get(v)));
    s->next = v;
    vc = acme_conf_get(v);
    FUZZ_ASSERT(vc->domains == c->domains);
    if (acme_conf_auto_names(p, p, p, s) != OK || acme_conf_check(p, p, p, s) != OK ||
        !c->domains->nelts) {
        goto out;
    }
    FUZZ_ASSERT(c->n_key_types >= 1 && c->n_key_types <= 5);
    for (i = 0; i < c->n_key_types; i++) {
        FUZZ_ASSERT(strcmp(acme_key_type_name(c->key_types[i]), "unknown") != 0);
    }
    FUZZ_ASSERT(!c->renew_window_set ||
                (c->renew_window.percent >= 1 && c->renew_window.percent <= 99) ||
                (!c->renew_window.percent && c->renew_window.left > 0));
    check_names(c, p);
    /* Every unit has the configuration it is obtained with, its key type among its own; a
     * binding passes check_config only with its key read; a profile is a plain token. */
    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        int k, found = 0;
        FUZZ_ASSERT(d->conf && d->conf->n_key_types >= 1 && d->conf->n_key_types <= 5);
        for (k = 0; k < d->conf->n_key_types; k++) {
            found |= d->conf->key_types[k] == d->key_type;
        }
        FUZZ_ASSERT(found);
        FUZZ_ASSERT(!d->conf->eab_kid ||
                    (d->conf->eab_key && *d->conf->eab_key && d->conf->eab_file));
        FUZZ_ASSERT(!d->conf->profile ||
                    (*d->conf->profile && strlen(d->conf->profile) <= ACME_PROFILE_NAME_MAX &&
                     strspn(d->conf->profile, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
                                              "XYZ0123456789._-") == strlen(d->conf->profile)));
    }
out:
    apr_pool_destroy(p);
    return 0;
}
