/* acme_import_parse.c - the parsers of `acmectl import` (acme_import.h): certbot's renewal
 * configuration and account files, mod_md's md.json, store.json and account, keys as JWK or
 * PEM. Everything parsed comes from a folder the operator names (acme_import.c reads it,
 * bounded); a parser refuses what it does not understand and says why, never guesses.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "acme_import.h"
#include "acme_ossl.h"

static void set_why(const char **pwhy, const char *why)
{
    if (pwhy) {
        *pwhy = why;
    }
}

static int is_https_url(const char *s)
{
    return s && strncmp(s, "https://", 8) == 0 && s[8] && strlen(s) <= 2048 &&
           !strpbrk(s, " \t\r\n\"\\");
}

static int is_token(const char *s, apr_size_t max)
{
    apr_size_t n = s ? strlen(s) : 0;

    return n > 0 && n <= max &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) {
        *--end = '\0';
    }
    return s;
}

apr_status_t acme_certbot_conf_parse(acme_certbot_conf_t **pconf, const char *text, apr_size_t len,
                                     const char **pwhy, apr_pool_t *p)
{
    acme_certbot_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    char *copy, *line, *next, *eq, *key, *value;
    const char *section = "";
    apr_size_t lineno = 0;

    if (!text || len > ACME_IMPORT_TEXT_MAX || memchr(text, '\0', len)) {
        set_why(pwhy, "not a text file");
        return ACME_EBADSTORE;
    }
    copy = apr_pstrmemdup(p, text, len);
    for (line = copy; line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        lineno++;
        line = trim(line);
        if (!*line || *line == '#' || *line == ';') {
            continue;
        }
        if (*line == '[') {
            char *close = strchr(line, ']');
            if (!close) {
                set_why(pwhy,
                        apr_psprintf(p, "line %" APR_SIZE_T_FMT ": a section without ]", lineno));
                return ACME_EBADSTORE;
            }
            *close = '\0';
            section = trim(line + 1);
            continue;
        }
        eq = strchr(line, '=');
        if (!eq) {
            set_why(pwhy, apr_psprintf(p, "line %" APR_SIZE_T_FMT " is no 'key = value'", lineno));
            return ACME_EBADSTORE;
        }
        *eq = '\0';
        key = trim(line);
        value = trim(eq + 1);
        /* The renewal parameters are what certbot renews with; nothing else counts. */
        if (strcmp(section, "renewalparams") != 0) {
            continue;
        }
        if (strcmp(key, "server") == 0) {
            conf->server = value;
        } else if (strcmp(key, "account") == 0) {
            conf->account = value;
        } else if (strcmp(key, "key_type") == 0) {
            conf->key_type = value;
        } else if (strcmp(key, "authenticator") == 0) {
            conf->authenticator = value;
        }
    }
    if (!is_https_url(conf->server)) {
        set_why(pwhy, conf->server ? "its server is not an https URL"
                                   : "it names no server (the CA) in [renewalparams]");
        return ACME_EBADSTORE;
    }
    if (!is_token(conf->account, 128)) {
        set_why(pwhy, conf->account ? "its account is not an account folder name"
                                    : "it names no account in [renewalparams]");
        return ACME_EBADSTORE;
    }
    *pconf = conf;
    return APR_SUCCESS;
}

const char *acme_certbot_account_dir(const char *server, apr_pool_t *p)
{
    const char *rest;
    char *copy, *part, *state = NULL;

    if (!is_https_url(server)) {
        return NULL;
    }
    rest = server + 8;
    if (strchr(rest, '?') || strchr(rest, '#')) {
        return NULL;
    }
    /* certbot keeps them under the URL's network location and path, one folder per part. */
    copy = apr_pstrdup(p, rest);
    for (part = apr_strtok(copy, "/", &state); part; part = apr_strtok(NULL, "/", &state)) {
        if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0) {
            return NULL;
        }
    }
    if (strstr(rest, "//") || rest[0] == '/') {
        return NULL;
    }
    return apr_pstrcat(p, "accounts/", rest, NULL);
}

static json_t *parse_object(const char *json, apr_size_t len, const char **pwhy, apr_pool_t *p)
{
    json_error_t err;
    json_t *j;

    if (!json || len > ACME_IMPORT_TEXT_MAX) {
        set_why(pwhy, "larger than a JSON file of its kind can be");
        return NULL;
    }
    j = acme_json_pool(p, json_loadb(json, len, JSON_REJECT_DUPLICATES, &err));
    if (!j || !json_is_object(j)) {
        set_why(pwhy, j ? "not a JSON object"
                        : apr_psprintf(p, "not JSON (line %d: %s)", err.line,
                                       acme_log_safe(err.text, 100, p)));
        return NULL;
    }
    return j;
}

/* A big number from a JWK member (base64url, big-endian), owned by p. */
static BIGNUM *jwk_bn(const json_t *jwk, const char *member, apr_pool_t *p)
{
    const char *s = acme_json_str(jwk, member);
    const unsigned char *bytes;
    apr_size_t n;
    BIGNUM *bn;

    if (!s || strlen(s) > 2048 || acme_b64u_decode(&bytes, &n, s, strlen(s), p) != APR_SUCCESS ||
        n == 0) {
        return NULL;
    }
    bn = BN_bin2bn(bytes, (int)n, NULL);
    if (bn) {
        apr_pool_cleanup_register(p, bn, acme_ossl_bn_free, apr_pool_cleanup_null);
    }
    return bn;
}

static apr_status_t jwk_to_evp(EVP_PKEY **pevp, const json_t *jwk, const char **pwhy, apr_pool_t *p)
{
    static const char *const rsa_members[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *const rsa_params[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    const char *kty = acme_json_str(jwk, "kty"), *crv = acme_json_str(jwk, "crv");
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    EVP_PKEY *evp = NULL;
    const char *why = NULL;
    int ok = bld != NULL, i;
    apr_status_t rv = ACME_EBADSTORE;

    if (kty && strcmp(kty, "RSA") == 0) {
        for (i = 0; ok && i < 8; i++) {
            BIGNUM *bn = jwk_bn(jwk, rsa_members[i], p);
            if (!bn) {
                why = apr_psprintf(p, "its RSA member %s is missing or not base64url",
                                   rsa_members[i]);
                ok = 0;
                break;
            }
            ok = OSSL_PARAM_BLD_push_BN(bld, rsa_params[i], bn);
        }
        ctx = ok ? EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL) : NULL;
    } else if (kty && strcmp(kty, "EC") == 0) {
        const char *group = crv && strcmp(crv, "P-256") == 0   ? "prime256v1"
                            : crv && strcmp(crv, "P-384") == 0 ? "secp384r1"
                                                               : NULL;
        const char *x = acme_json_str(jwk, "x"), *y = acme_json_str(jwk, "y");
        const unsigned char *xb, *yb;
        apr_size_t xn, yn, size = group && group[0] == 'p' ? 32 : 48;
        BIGNUM *d = jwk_bn(jwk, "d", p);
        unsigned char *pub;

        if (!group) {
            why = "an EC key on a curve other than P-256 and P-384";
            rv = APR_ENOTIMPL;
            ok = 0;
        } else if (!x || !y || !d || strlen(x) > 200 || strlen(y) > 200 ||
                   acme_b64u_decode(&xb, &xn, x, strlen(x), p) != APR_SUCCESS ||
                   acme_b64u_decode(&yb, &yn, y, strlen(y), p) != APR_SUCCESS || xn != size ||
                   yn != size) {
            why = "its EC members x, y, d are missing or not of the curve's size";
            ok = 0;
        } else {
            pub = apr_palloc(p, 1 + 2 * size);
            pub[0] = 0x04; /* uncompressed point */
            memcpy(pub + 1, xb, size);
            memcpy(pub + 1 + size, yb, size);
            ok =
                OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
                OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * size) &&
                OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d);
            ctx = ok ? EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL) : NULL;
        }
    } else {
        why = kty ? "a JWK of a key type other than RSA and EC" : "not a JWK (no kty)";
        rv = kty ? APR_ENOTIMPL : ACME_EBADSTORE;
        ok = 0;
    }
    if (ok) {
        params = OSSL_PARAM_BLD_to_param(bld);
        ok = params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, &evp, EVP_PKEY_KEYPAIR, params) == 1;
        if (!ok) {
            why = "OpenSSL does not take it as a key";
        }
    }
    if (ok) {
        /* The halves must belong together: a JWK is just numbers. */
        check = EVP_PKEY_CTX_new_from_pkey(NULL, evp, NULL);
        ok = check && EVP_PKEY_pairwise_check(check) == 1;
        if (!ok) {
            why = "its private and public parts do not belong together";
        }
    }
    if (ok) {
        *pevp = evp;
        evp = NULL;
        rv = APR_SUCCESS;
    } else if (why) {
        set_why(pwhy, why);
    }
    EVP_PKEY_free(evp);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return rv;
}

apr_status_t acme_import_jwk_key(acme_key_t **pkey, const char *json, apr_size_t len,
                                 const char **pwhy, apr_pool_t *p)
{
    EVP_PKEY *evp = NULL;
    json_t *j = parse_object(json, len, pwhy, p);
    apr_status_t rv;

    if (!j) {
        return ACME_EBADSTORE;
    }
    rv = jwk_to_evp(&evp, j, pwhy, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = acme_key_from_evp(pkey, evp, p);
    if (rv == APR_ENOTIMPL) {
        set_why(pwhy, "a key of a size the module does not use (RSA 2048 to 4096, EC P-256 "
                      "and P-384)");
    }
    return rv;
}

apr_status_t acme_certbot_regr_url(const char **purl, const char *json, apr_size_t len,
                                   const char **pwhy, apr_pool_t *p)
{
    json_t *j = parse_object(json, len, pwhy, p);
    const char *uri = j ? acme_json_str(j, "uri") : NULL;

    if (!j) {
        return ACME_EBADSTORE;
    }
    if (!is_https_url(uri)) {
        set_why(pwhy, "its uri (the account URL) is missing or not an https URL");
        return ACME_EBADSTORE;
    }
    *purl = apr_pstrdup(p, uri);
    return APR_SUCCESS;
}

/* The strings of a JSON array, at most max, each at most 1024 bytes; NULL when any member is
 * not a string. */
static apr_array_header_t *str_array(const json_t *arr, int max, apr_pool_t *p)
{
    apr_array_header_t *out = apr_array_make(p, 4, sizeof(const char *));
    size_t i;

    if (!json_is_array(arr) || json_array_size(arr) > (size_t)max) {
        return NULL;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_string(v) || json_string_length(v) > 1024 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            return NULL;
        }
        APR_ARRAY_PUSH(out, const char *) = apr_pstrdup(p, json_string_value(v));
    }
    return out;
}

/* mod_md's key spec ({"type": "RSA", "bits": N} or {"type": "EC", "curve": NAME}) as a type of
 * ours; -1 for one we have none for. */
static int md_key_spec(const json_t *spec)
{
    const char *type = acme_json_str(spec, "type"), *curve = acme_json_str(spec, "curve");
    const json_t *bits = json_object_get(spec, "bits");

    if (type && strcasecmp(type, "RSA") == 0) {
        json_int_t b = json_is_integer(bits) ? json_integer_value(bits) : 2048;
        return b == 2048   ? ACME_KEY_RSA2048
               : b == 3072 ? ACME_KEY_RSA3072
               : b == 4096 ? ACME_KEY_RSA4096
                           : -1;
    }
    if (type && strcasecmp(type, "EC") == 0 && curve) {
        if (strcasecmp(curve, "secp256r1") == 0 || strcasecmp(curve, "P-256") == 0 ||
            strcasecmp(curve, "prime256v1") == 0) {
            return ACME_KEY_EC256;
        }
        if (strcasecmp(curve, "secp384r1") == 0 || strcasecmp(curve, "P-384") == 0) {
            return ACME_KEY_EC384;
        }
    }
    if (type && strcasecmp(type, "Default") == 0) {
        return ACME_KEY_RSA2048;
    }
    return -1;
}

apr_status_t acme_md_parse(acme_md_t **pmd, const char *json, apr_size_t len, const char **pwhy,
                           apr_pool_t *p)
{
    json_t *j = parse_object(json, len, pwhy, p);
    const json_t *ca, *urls, *pk, *contacts;
    acme_md_t *md;
    size_t i;

    if (!j) {
        return ACME_EBADSTORE;
    }
    md = apr_pcalloc(p, sizeof(*md));
    md->name = acme_json_str(j, "name");
    md->domains = str_array(json_object_get(j, "domains"), ACME_IMPORT_NAMES_MAX, p);
    if (!md->name || strlen(md->name) > 253 || !md->domains || md->domains->nelts == 0) {
        set_why(pwhy, "it has no name or no list of domains");
        return ACME_EBADSTORE;
    }
    md->name = apr_pstrdup(p, md->name);
    contacts = json_object_get(j, "contacts");
    md->contacts = contacts ? str_array(contacts, 10, p) : NULL;
    if (!md->contacts) {
        md->contacts = apr_array_make(p, 1, sizeof(const char *));
    }
    /* "ca": {"urls": [...], "url": ..., "account": ...}; older versions: "url" alone. */
    ca = json_object_get(j, "ca");
    urls = json_object_get(ca, "urls");
    if (json_is_array(urls) && json_array_size(urls) > 0) {
        md->ca_url = json_string_value(json_array_get(urls, 0));
    } else {
        md->ca_url = acme_json_str(ca, "url");
    }
    md->ca_url = is_https_url(md->ca_url) ? apr_pstrdup(p, md->ca_url) : NULL;
    md->account = acme_json_str(ca, "account");
    md->account = md->account && strlen(md->account) <= 128 && strchr(md->account, '/') == NULL &&
                          strcmp(md->account, "..") != 0 && strcmp(md->account, ".") != 0
                      ? apr_pstrdup(p, md->account)
                      : NULL;
    /* "privkey": one spec or an array of them, in MDPrivateKeys order. */
    md->key_types = apr_array_make(p, 2, sizeof(acme_key_type_e));
    pk = json_object_get(j, "privkey");
    if (json_is_object(pk)) {
        int t = md_key_spec(pk);
        if (t >= 0) {
            APR_ARRAY_PUSH(md->key_types, acme_key_type_e) = (acme_key_type_e)t;
        } else {
            md->key_types_unknown++;
        }
    } else if (json_is_array(pk)) {
        for (i = 0; i < json_array_size(pk) && i < 8; i++) {
            int t = md_key_spec(json_array_get(pk, i));
            if (t >= 0) {
                APR_ARRAY_PUSH(md->key_types, acme_key_type_e) = (acme_key_type_e)t;
            } else {
                md->key_types_unknown++;
            }
        }
    }
    if (md->key_types->nelts == 0 && md->key_types_unknown == 0) {
        APR_ARRAY_PUSH(md->key_types, acme_key_type_e) = ACME_KEY_RSA2048;
    }
    *pmd = md;
    return APR_SUCCESS;
}

apr_status_t acme_md_store_pass(const unsigned char **ppass, apr_size_t *plen, const char *json,
                                apr_size_t len, const char **pwhy, apr_pool_t *p)
{
    json_t *j = parse_object(json, len, pwhy, p);
    const char *key = j ? acme_json_str(j, "key") : NULL;
    const unsigned char *pass;
    apr_size_t n;

    if (!j) {
        return ACME_EBADSTORE;
    }
    if (!key || strlen(key) > 1024 ||
        acme_b64u_decode(&pass, &n, key, strlen(key), p) != APR_SUCCESS || n == 0) {
        set_why(pwhy, "its key (the pass phrase of the account keys) is missing or not base64url");
        return ACME_EBADSTORE;
    }
    *ppass = pass;
    *plen = n;
    return APR_SUCCESS;
}

apr_status_t acme_md_account_parse(acme_md_account_t **pacct, const char *json, apr_size_t len,
                                   const char **pwhy, apr_pool_t *p)
{
    json_t *j = parse_object(json, len, pwhy, p);
    acme_md_account_t *a;
    const json_t *contacts;

    if (!j) {
        return ACME_EBADSTORE;
    }
    a = apr_pcalloc(p, sizeof(*a));
    a->url = acme_json_str(j, "url");
    if (!is_https_url(a->url)) {
        set_why(pwhy, "its url (the account URL) is missing or not an https URL");
        return ACME_EBADSTORE;
    }
    a->url = apr_pstrdup(p, a->url);
    a->ca_url = acme_json_str(j, "ca-url");
    a->ca_url = is_https_url(a->ca_url) ? apr_pstrdup(p, a->ca_url) : NULL;
    a->status = acme_json_str(j, "status");
    a->status = a->status ? apr_pstrndup(p, a->status, 32) : NULL;
    contacts = json_object_get(j, "contact");
    a->contacts = contacts ? str_array(contacts, 10, p) : NULL;
    if (!a->contacts) {
        a->contacts = apr_array_make(p, 1, sizeof(const char *));
    }
    *pacct = a;
    return APR_SUCCESS;
}

typedef struct pass_t {
    const unsigned char *pass;
    apr_size_t len;
} pass_t;

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    const pass_t *pw = u;

    (void)rwflag;
    if (!pw || !pw->pass || pw->len > (apr_size_t)size) {
        return -1; /* no pass phrase: an encrypted key stays closed */
    }
    memcpy(buf, pw->pass, pw->len);
    return (int)pw->len;
}

apr_status_t acme_import_pem_key(acme_key_t **pkey, const char *pem, apr_size_t len,
                                 const unsigned char *pass, apr_size_t pass_len, const char **pwhy,
                                 apr_pool_t *p)
{
    pass_t pw = {pass, pass_len};
    EVP_PKEY *evp = NULL;
    BIO *bio;
    apr_status_t rv;

    if (!pem || len == 0 || len > ACME_IMPORT_TEXT_MAX || len > INT_MAX) {
        set_why(pwhy, "no PEM private key");
        return ACME_EBADSTORE;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        return APR_ENOMEM;
    }
    evp = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &pw);
    BIO_free(bio);
    if (!evp) {
        int encrypted = strstr(pem, "ENCRYPTED") != NULL;
        set_why(pwhy, encrypted ? (pass ? "an encrypted key that the store's pass phrase does "
                                          "not open"
                                        : "an encrypted key and no pass phrase for it")
                                : "no PEM private key");
        return ACME_EBADSTORE;
    }
    rv = acme_key_from_evp(pkey, evp, p);
    if (rv == APR_ENOTIMPL) {
        set_why(pwhy, "a key of a type or size the module does not use (RSA 2048 to 4096, EC "
                      "P-256 and P-384)");
    } else if (rv != APR_SUCCESS) {
        set_why(pwhy, "no usable private key");
    }
    return rv;
}
