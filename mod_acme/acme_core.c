/* acme_core.c - status texts, log and clock seams, JSON and base64url helpers. */
#include <string.h>

#include <apr_encode.h>
#include <apr_strings.h>

#include "acme_core.h"

static const char *const err_texts[] = {
    [ACME_EPROTO - ACME_ERR_BASE] = "the CA's answer could not be used",
    [ACME_ETOOLARGE - ACME_ERR_BASE] = "input exceeds its size limit",
    [ACME_ETRANSPORT - ACME_ERR_BASE] = "the CA could not be reached",
    [ACME_ETIMEOUT - ACME_ERR_BASE] = "gave up waiting for the CA",
    [ACME_EBADNONCE - ACME_ERR_BASE] = "the CA rejected the request nonce",
    [ACME_ERATELIMITED - ACME_ERR_BASE] = "rate limited by the CA",
    [ACME_EUNAUTHORIZED - ACME_ERR_BASE] = "not authorized by the CA",
    [ACME_EMALFORMED - ACME_ERR_BASE] = "the CA called the request malformed",
    [ACME_EBADCSR - ACME_ERR_BASE] = "the CA refused the certificate request",
    [ACME_EREJECTED - ACME_ERR_BASE] = "the CA will not issue for this name",
    [ACME_ENOTREADY - ACME_ERR_BASE] = "the order is not ready",
    [ACME_ENOACCOUNT - ACME_ERR_BASE] = "the account does not exist at the CA",
    [ACME_EEAB - ACME_ERR_BASE] = "the CA requires external account binding",
    [ACME_EUSERACTION - ACME_ERR_BASE] = "the CA requires an action of the operator",
    [ACME_ESERVER - ACME_ERR_BASE] = "the CA had an internal error",
    [ACME_EVALIDATION - ACME_ERR_BASE] = "the CA could not validate the challenge",
    [ACME_EINVALID - ACME_ERR_BASE] = "the CA marked the order invalid",
    [ACME_EBADKEY - ACME_ERR_BASE] = "the CA refused the key or algorithm",
    [ACME_ECONFIG - ACME_ERR_BASE] = "the configuration asks for something impossible",
    [ACME_ECRYPTO - ACME_ERR_BASE] = "a cryptographic operation failed",
    [ACME_EBADSTORE - ACME_ERR_BASE] = "a file in the store is not valid",
    [ACME_ECANCELLED - ACME_ERR_BASE] = "stopped because the server is stopping",
    [ACME_EDNS - ACME_ERR_BASE] = "the dns-01 TXT record could not be set or seen",
};

const char *acme_strerror(apr_status_t rv, apr_pool_t *p)
{
    char buf[256];

    if (rv > ACME_ERR_BASE && rv < ACME_ERR_END && err_texts[rv - ACME_ERR_BASE]) {
        return err_texts[rv - ACME_ERR_BASE];
    }
    return apr_pstrdup(p, apr_strerror(rv, buf, sizeof(buf)));
}

int acme_log_is_on(const acme_log_t *log, acme_log_level_e level)
{
    return log && log->fn && level <= log->max_level;
}

/* How many bytes at s are one character to escape: C0 controls, DEL, backslash (so that an
 * escape in the input cannot pass for one of ours) and C1 controls in UTF-8 (C2 80..C2 9F,
 * which terminals obey as well). Other bytes pass: UTF-8 text stays readable. */
static int escape_len(const unsigned char *s)
{
    if (s[0] < 0x20 || s[0] == 0x7f || s[0] == '\\') {
        return 1;
    }
    return s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f ? 2 : 0;
}

char *acme_log_escape(char *out, apr_size_t outlen, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    apr_size_t o = 0;

    if (outlen == 0) {
        return out;
    }
    while (*s) {
        int n = escape_len(s);
        if (n) {
            if (o + 4 * (apr_size_t)n >= outlen) {
                break;
            }
            while (n--) {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[*s >> 4];
                out[o++] = hex[*s & 0xf];
                s++;
            }
            continue;
        }
        if (o + 1 >= outlen) {
            break;
        }
        out[o++] = (char)*s++;
    }
    out[o] = '\0';
    return out;
}

const char *acme_log_safe(const char *in, apr_size_t max, apr_pool_t *p)
{
    apr_size_t n;
    const char *src = in;
    char *out;

    if (!in) {
        return "";
    }
    n = strlen(in);
    if (max && n > max) {
        src = apr_pstrmemdup(p, in, max);
        n = max;
    }
    out = apr_palloc(p, 4 * n + 1);
    return acme_log_escape(out, 4 * n + 1, src);
}

void acme_log(const acme_log_t *log, acme_log_level_e level, apr_status_t rv, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    if (!acme_log_is_on(log, level)) {
        return;
    }
    va_start(ap, fmt);
    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log->fn(log->baton, level, rv, buf);
}

static apr_time_t system_now(void *baton)
{
    (void)baton;
    return apr_time_now();
}

static void system_sleep(void *baton, apr_interval_time_t t)
{
    (void)baton;
    apr_sleep(t);
}

const acme_clock_t *acme_clock_system(void)
{
    static const acme_clock_t clock = {system_now, system_sleep, NULL};
    return &clock;
}

static apr_status_t json_cleanup(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *acme_json_pool(apr_pool_t *p, json_t *j)
{
    if (j) {
        apr_pool_cleanup_register(p, j, json_cleanup, apr_pool_cleanup_null);
    }
    return j;
}

const char *acme_json_str(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *acme_b64u_encode(apr_pool_t *p, const void *data, apr_size_t len)
{
    if (len == 0) {
        return "";
    }
    return apr_pencode_base64_binary(p, data, len, APR_ENCODE_BASE64URL, NULL);
}

apr_status_t acme_b64u_decode(const unsigned char **pout, apr_size_t *plen, const char *s,
                              apr_size_t slen, apr_pool_t *p)
{
    const unsigned char *out;
    apr_size_t i, len = 0;

    for (i = 0; i < slen; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return APR_EINVAL;
        }
    }
    /* A length of 1 mod 4 cannot come from any byte string. */
    if (slen % 4 == 1) {
        return APR_EINVAL;
    }
    if (slen == 0) {
        *pout = (const unsigned char *)"";
        *plen = 0;
        return APR_SUCCESS;
    }
    out = apr_pdecode_base64_binary(p, s, slen, APR_ENCODE_BASE64URL, &len);
    if (!out) {
        return APR_EINVAL;
    }
    *pout = out;
    *plen = len;
    return APR_SUCCESS;
}
