/*
 * common.c: what the body parsers share: the error table (names and message formatting, with Go-style %q quoting
 * of input), unescaping of text-format strings, and the arena size bound.
 */
#include "fy_parse.h"
#include "fy_parse_internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

const char *fy_perr_name(int code)
{
    switch (code) {
    case FY_OK:
        return "OK";
#define XX(name, fmt)                                                                                                              \
    case FY_PERR_##name:                                                                                                           \
        return #name;
        FY_PERR_MAP(XX)
#undef XX
    }
    return "UNKNOWN";
}

static const char *perr_format(int code)
{
    switch (code) {
#define XX(name, fmt)                                                                                                              \
    case FY_PERR_##name:                                                                                                           \
        return fmt;
        FY_PERR_MAP(XX)
#undef XX
    }
    return "unknown error";
}

size_t fy_parse_arena_hint(size_t len)
{
    /* Worst case is a body of minimal lines ("a 1\n"): one family, one series and their hash slots per 4 bytes,
     * twice over (build, then compact). 128 bytes of arena per input byte covers every parser. */
    return 128 * len + 65536;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Go quoting (strconv.Quote / QuoteRune), as used by %q in expfmt's messages. */

/* Decodes one UTF-8 sequence at s (n > 0 bytes available). Returns its length and the rune, or 0 if invalid
 * (Go's rules: no overlongs, no surrogates, max U+10FFFF). */
size_t fy__utf8_decode(const unsigned char *s, size_t n, uint32_t *rune)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *rune = c;
        return 1;
    }
    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        *rune = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* surrogate */
        *rune = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        return 3;
    }
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
        return 0;
    if (c == 0xF0 && s[1] < 0x90)
        return 0; /* overlong */
    if (c == 0xF4 && s[1] >= 0x90)
        return 0; /* > U+10FFFF */
    *rune = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    return 4;
}

int fy__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        uint32_t r;
        size_t k = fy__utf8_decode(p, (size_t)(end - p), &r);
        if (k == 0)
            return 0;
        p += k;
    }
    return 1;
}

/* unicode.IsPrint for the runes that matter in practice. Go also treats unassigned code points as unprintable;
 * we do not carry Unicode's tables for that (documented in docs/parser.md). */
static int rune_printable(uint32_t r)
{
    if (r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0))
        return 0;
    switch (r) {
    case 0xA0:
    case 0xAD:
    case 0x1680:
    case 0x180E:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF:
    case 0x061C:
    case 0x06DD:
    case 0x070F:
        return 0;
    }
    if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2060 && r <= 0x206F) ||
        (r >= 0x0600 && r <= 0x0605) || (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000 ||
        (r & 0xFFFE) == 0xFFFE)
        return 0;
    return 1;
}

typedef struct {
    char *out;
    size_t cap; /* bytes available in out, including room for the NUL */
    size_t len;
    int full;
} qbuf_t;

static void qput(qbuf_t *q, const char *s, size_t n)
{
    if (q->full)
        return;
    if (q->len + n + 1 > q->cap) {
        q->full = 1;
        return;
    }
    memcpy(q->out + q->len, s, n);
    q->len += n;
}

static void quote_into(qbuf_t *q, const char *s, size_t n, char quote)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = n != 0 ? p + n : p; /* s may be NULL when n is 0 */
    qput(q, &quote, 1);
    while (p < end && !q->full) {
        uint32_t r;
        size_t k = fy__utf8_decode(p, (size_t)(end - p), &r);
        if (k == 0) {
            char e[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
            qput(q, e, 4);
            p++;
            continue;
        }
        if (r == (uint32_t)(unsigned char)quote || r == '\\') {
            char e[2] = {'\\', (char)r};
            qput(q, e, 2);
        } else if (rune_printable(r)) {
            qput(q, (const char *)p, k);
        } else {
            char e[12];
            size_t el = 0;
            switch (r) {
            case '\a':
                el = 2;
                memcpy(e, "\\a", 2);
                break;
            case '\b':
                el = 2;
                memcpy(e, "\\b", 2);
                break;
            case '\f':
                el = 2;
                memcpy(e, "\\f", 2);
                break;
            case '\n':
                el = 2;
                memcpy(e, "\\n", 2);
                break;
            case '\r':
                el = 2;
                memcpy(e, "\\r", 2);
                break;
            case '\t':
                el = 2;
                memcpy(e, "\\t", 2);
                break;
            case '\v':
                el = 2;
                memcpy(e, "\\v", 2);
                break;
            default:
                if (r < 0x20 || r == 0x7F) {
                    el = (size_t)snprintf(e, sizeof(e), "\\x%02x", (unsigned)r);
                } else if (r < 0x10000) {
                    el = (size_t)snprintf(e, sizeof(e), "\\u%04x", (unsigned)r);
                } else {
                    el = (size_t)snprintf(e, sizeof(e), "\\U%08x", (unsigned)r);
                }
            }
            qput(q, e, el);
        }
        p += k;
    }
    if (q->full) {
        /* Cut: close the quote after an ellipsis so the message stays readable. */
        q->full = 0;
        if (q->len + 5 > q->cap)
            q->len = q->cap >= 5 ? q->cap - 5 : 0;
        qput(q, "...", 3);
    }
    qput(q, &quote, 1);
}

size_t fy__go_quote(const char *s, size_t n, char *out, size_t cap)
{
    qbuf_t q = {out, cap, 0, 0};
    quote_into(&q, s, n, '"');
    if (cap)
        out[q.len] = '\0';
    return q.len;
}

/*
 * Fills err with code, line, offset and the message: an optional prefix, then the code's format with each %q
 * replaced by the next argument (a fy_str_t, quoted like Go's %q; a fy_str_t with len SIZE_MAX and ptr pointing to
 * one byte is quoted as a rune, like Go's %q on a byte), each %c by the next int (a byte, written as Go's %c writes
 * rune(b)) and each %s by the next C string. Returns code.
 */
int fy__perr(fy_parse_error_t *err, int code, const char *prefix, uint32_t line, size_t offset, ...)
{
    va_list ap;
    qbuf_t q = {err->msg, sizeof(err->msg), 0, 0};
    err->code = code;
    err->line = line;
    err->offset = offset;
    if (prefix != NULL) {
        char pre[96];
        int n = snprintf(pre, sizeof(pre), prefix, (unsigned)line);
        qput(&q, pre, (size_t)n);
    }
    va_start(ap, offset);
    for (const char *f = perr_format(code); *f != '\0'; f++) {
        if (f[0] == '%' && f[1] == 'q') {
            fy_str_t a = va_arg(ap, fy_str_t);
            size_t before = q.len;
            size_t room = sizeof(err->msg) - q.len;
            /* Leave space for the rest of the format after a long quoted argument. */
            if (room > 64)
                room -= 48;
            qbuf_t sub = {err->msg + q.len, room, 0, 0};
            if (a.len == SIZE_MAX) {
                /* Go's %q on a byte quotes rune(b): bytes >= 0x80 are Latin-1 code points, not raw bytes. */
                unsigned char b = (unsigned char)a.ptr[0];
                char r[2] = {(char)(0xC0 | (b >> 6)), (char)(0x80 | (b & 0x3F))};
                if (b < 0x80)
                    quote_into(&sub, a.ptr, 1, '\'');
                else
                    quote_into(&sub, r, 2, '\'');
            } else
                quote_into(&sub, a.ptr, a.len, '"');
            q.len = before + sub.len;
            f++;
        } else if (f[0] == '%' && f[1] == 'c') {
            /* Go's %c on a byte: the UTF-8 encoding of rune(b), unquoted. */
            unsigned b = (unsigned)va_arg(ap, int) & 0xFFu;
            char r[2] = {(char)b, 0};
            size_t n = 1;
            if (b >= 0x80) {
                r[0] = (char)(0xC0 | (b >> 6));
                r[1] = (char)(0x80 | (b & 0x3F));
                n = 2;
            }
            qput(&q, r, n);
            f++;
        } else if (f[0] == '%' && f[1] == 's') {
            const char *s = va_arg(ap, const char *);
            qput(&q, s, strlen(s));
            f++;
        } else {
            qput(&q, f, 1);
        }
    }
    va_end(ap);
    err->msg[q.len] = '\0';
    err->msg_len = q.len;
    return code;
}

void fy__perr_clear(fy_parse_error_t *err)
{
    err->code = FY_OK;
    err->line = 0;
    err->offset = 0;
    err->msg_len = 0;
    err->msg[0] = '\0';
}

/* ------------------------------------------------------------------------------------------------------------- */

size_t fy_unescaped_len(fy_str_t s, fy_esc_t esc)
{
    if (esc == FY_ESC_NONE)
        return s.len;
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++, n++) {
        if (s.ptr[i] == '\\' && i + 1 < s.len) {
            char c = s.ptr[i + 1];
            if (esc != FY_ESC_OM || c == '\\' || c == '"' || c == 'n')
                i++;
        }
    }
    return n;
}

size_t fy_unescape(fy_str_t s, fy_esc_t esc, char *out)
{
    if (esc == FY_ESC_NONE) {
        if (s.len)
            memcpy(out, s.ptr, s.len);
        return s.len;
    }
    /* The parser has validated the escapes; only \\ \" (labels, OpenMetrics) and \n remain possible, plus literal
     * backslashes before anything else in OpenMetrics strings. */
    size_t n = 0;
    const char *p = s.ptr, *end = s.ptr + s.len;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (bs == NULL || bs + 1 == end) {
            memcpy(out + n, p, (size_t)(end - p));
            n += (size_t)(end - p);
            break;
        }
        memcpy(out + n, p, (size_t)(bs - p));
        n += (size_t)(bs - p);
        if (esc == FY_ESC_OM && bs[1] != '\\' && bs[1] != '"' && bs[1] != 'n') {
            out[n++] = '\\'; /* undefined OpenMetrics escape: the backslash is literal */
            p = bs + 1;
            continue;
        }
        out[n++] = bs[1] == 'n' ? '\n' : bs[1];
        p = bs + 2;
    }
    return n;
}

/* The public names of these helpers (fy_parse.h), for the store and the server. */
size_t fy_go_quote(const char *s, size_t n, char *out, size_t cap)
{
    return fy__go_quote(s, n, out, cap);
}

int fy_utf8_valid(const char *s, size_t n)
{
    return fy__utf8_valid(s, n);
}

size_t fy_utf8_decode(const unsigned char *s, size_t n, uint32_t *rune)
{
    return fy__utf8_decode(s, n, rune);
}
