/*
 * decode.c: request-body decoding (gzip members, snappy framing with CRC-32C) and body-format selection.
 *
 * Error texts are Go's (compress/gzip, compress/flate, github.com/golang/snappy) because clients and tests match
 * on them. Divergences from 1.5.1, on purpose: a bad gzip CRC or length trailer is a 400 "gzip: invalid checksum"
 * (the reference swallows it at a line start and stores the data), and the decoded size is capped (413).
 */
#include "decode.h"
#include "crc32c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>

#include <snappy-c.h>
#include <zlib.h>

fy_encoding_t fy_decode_encoding(const char *value, size_t len)
{
    if (len == 4 && strncasecmp(value, "gzip", 4) == 0)
        return FY_ENC_GZIP;
    if (len == 6 && strncasecmp(value, "snappy", 6) == 0)
        return FY_ENC_SNAPPY;
    return FY_ENC_IDENTITY;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Content-Type: a port of the behaviour of Go's mime.ParseMediaType, reduced to what the decision needs. */

static int is_tspecial(char c)
{
    return c != '\0' && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static int is_token_char(char c)
{
    return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f && !is_tspecial(c);
}

/* unicode.IsSpace restricted to what can appear in a header value (ASCII; 0x85 and 0xA0 are not UTF-8 here). */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

typedef struct st_cursor_t {
    const char *p, *end;
} cursor_t;

static void skip_space(cursor_t *c)
{
    while (c->p < c->end && is_space(*c->p))
        c->p++;
}

static size_t take_token(cursor_t *c, const char **tok)
{
    *tok = c->p;
    while (c->p < c->end && is_token_char(*c->p))
        c->p++;
    return (size_t)(c->p - *tok);
}

/* A parameter value: a token, or a quoted string whose content is copied to buf (unescaped the way Go does,
 * keeping "\x" for non-special x). Returns the value length, or -1 when there is none. */
static long take_value(cursor_t *c, char *buf, size_t cap)
{
    const char *tok;
    if (c->p < c->end && *c->p != '"') {
        size_t n = take_token(c, &tok);
        if (n == 0)
            return -1;
        if (n > cap)
            n = cap;
        memcpy(buf, tok, n);
        return (long)n;
    }
    size_t n = 0;
    for (const char *p = c->p + 1; p < c->end; p++) {
        char ch = *p;
        if (ch == '"') {
            c->p = p + 1;
            return (long)n;
        }
        if (ch == '\\' && p + 1 < c->end && is_tspecial(p[1]))
            ch = *++p;
        else if (ch == '\r' || ch == '\n')
            return -1;
        if (n < cap)
            buf[n++] = ch;
    }
    return -1;
}

static int lower_eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

fy_body_format_t fy_decode_format(const char *value, size_t len)
{
    static const char pb_type[] = "application/vnd.google.protobuf", om_type[] = "application/openmetrics-text";
    if (value == NULL)
        return FY_FMT_TEXT;
    const char *semi = memchr(value, ';', len), *end = value + len;
    cursor_t c = {value, semi != NULL ? semi : end};

    /* media type: trimmed, lower-cased, token ["/" token] */
    skip_space(&c);
    const char *type = c.p, *tok;
    size_t type_len;
    if (take_token(&c, &tok) == 0)
        return FY_FMT_TEXT;
    if (c.p < c.end && *c.p == '/') {
        c.p++;
        if (take_token(&c, &tok) == 0)
            return FY_FMT_TEXT;
    }
    type_len = (size_t)(c.p - type);
    skip_space(&c);
    if (c.p != c.end)
        return FY_FMT_TEXT;
    int is_pb = lower_eq(type, type_len, pb_type);
    if (!is_pb)
        return lower_eq(type, type_len, om_type) ? FY_FMT_OPENMETRICS : FY_FMT_TEXT;

    /* parameters: ParseMediaType fails (and push.go falls back to text) on a syntax error or a repeated name */
    char enc[32], proto[64];
    long enc_len = -1, proto_len = -1;
    c.p = semi != NULL ? semi : end;
    c.end = end;
    for (;;) {
        skip_space(&c);
        if (c.p == c.end)
            break;
        cursor_t save = c;
        if (*c.p != ';')
            return FY_FMT_TEXT;
        c.p++;
        skip_space(&c);
        const char *name;
        size_t name_len = take_token(&c, &name);
        skip_space(&c);
        if (name_len == 0 || c.p == c.end || *c.p != '=') {
            /* "; " at the very end is tolerated, anything else is ErrInvalidMediaParameter */
            cursor_t rest = save;
            rest.p++;
            skip_space(&rest);
            if (rest.p == rest.end)
                break;
            return FY_FMT_TEXT;
        }
        c.p++;
        skip_space(&c);
        char vbuf[64];
        long vlen = take_value(&c, vbuf, sizeof(vbuf));
        if (vlen < 0)
            return FY_FMT_TEXT;
        if (lower_eq(name, name_len, "encoding")) {
            if (enc_len >= 0)
                return FY_FMT_TEXT;
            enc_len = vlen < (long)sizeof(enc) ? vlen : (long)sizeof(enc);
            memcpy(enc, vbuf, (size_t)enc_len);
        } else if (lower_eq(name, name_len, "proto")) {
            if (proto_len >= 0)
                return FY_FMT_TEXT;
            proto_len = vlen < (long)sizeof(proto) ? vlen : (long)sizeof(proto);
            memcpy(proto, vbuf, (size_t)proto_len);
        }
    }
    if (enc_len == 9 && memcmp(enc, "delimited", 9) == 0 && proto_len == 33 &&
        memcmp(proto, "io.prometheus.client.MetricFamily", 33) == 0)
        return FY_FMT_PROTOBUF;
    return FY_FMT_TEXT;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Output buffer capped at max. */

typedef struct st_obuf_t {
    char *base;
    size_t len, cap, max;
} obuf_t;

/* Makes room for at least want more bytes (fewer if max is near); returns 0, or -1 once max is reached. */
static int obuf_reserve(obuf_t *b, size_t want)
{
    if (b->cap - b->len >= want)
        return 0;
    if (b->len >= b->max + 1)
        return -1;
    size_t ncap = b->cap < 4096 ? 4096 : b->cap * 2;
    while (ncap - b->len < want)
        ncap *= 2;
    /* one byte beyond max, so that "exactly max" and "more than max" can be told apart */
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    if (ncap <= b->cap)
        return -1;
    char *nb = realloc(b->base, ncap);
    if (nb == NULL)
        abort();
    b->base = nb;
    b->cap = ncap;
    return 0;
}

static int too_large(size_t max, char *err)
{
    snprintf(err, FY_DECODE_ERR_MAX, "decoded request body exceeds --push.max-body-bytes=%zu", max);
    return 413;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* gzip (RFC 1952) members, each a raw deflate stream between a header and a CRC-32/ISIZE trailer. */

#define GZ_FTEXT 0x01
#define GZ_FHCRC 0x02
#define GZ_FEXTRA 0x04
#define GZ_FNAME 0x08
#define GZ_FCOMMENT 0x10

/* Returns the header length, or -1 with err as compress/gzip words it ("EOF" for no input at all). */
static long gzip_header(const unsigned char *p, size_t len, char *err)
{
    size_t off = 10;
    if (len == 0) {
        snprintf(err, FY_DECODE_ERR_MAX, "EOF");
        return -1;
    }
    if (len < 10)
        goto Truncated;
    if (p[0] != 0x1f || p[1] != 0x8b || p[2] != 8)
        goto Invalid;
    unsigned flg = p[3];
    if (flg & GZ_FEXTRA) {
        if (len < off + 2)
            goto Truncated;
        size_t xlen = p[off] | (size_t)p[off + 1] << 8;
        off += 2 + xlen;
        if (len < off)
            goto Truncated;
    }
    for (unsigned f = GZ_FNAME; f <= GZ_FCOMMENT; f <<= 1) {
        if (flg & f) {
            const unsigned char *z = memchr(p + off, 0, len - off);
            if (z == NULL)
                goto Truncated;
            off = (size_t)(z - p) + 1;
        }
    }
    if (flg & GZ_FHCRC) {
        if (len < off + 2)
            goto Truncated;
        unsigned want = p[off] | (unsigned)p[off + 1] << 8;
        if ((crc32(0, p, (uInt)off) & 0xffff) != want)
            goto Invalid;
        off += 2;
    }
    return (long)off;
Truncated:
    snprintf(err, FY_DECODE_ERR_MAX, "unexpected EOF");
    return -1;
Invalid:
    snprintf(err, FY_DECODE_ERR_MAX, "gzip: invalid header");
    return -1;
}

int fy_decode_gzip_header(const char *body, size_t len, char *err)
{
    return gzip_header((const unsigned char *)body, len, err) < 0 ? -1 : 0;
}

static int gunzip(const unsigned char *in, size_t len, obuf_t *out, char *err)
{
    size_t pos = 0;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
        abort();
    int rc = 400;
    do {
        long hl = gzip_header(in + pos, len - pos, err);
        if (hl < 0)
            goto Exit;
        pos += (size_t)hl;
        size_t member_start = out->len;
        inflateReset(&zs);
        zs.next_in = (Bytef *)(in + pos);
        zs.avail_in = (uInt)(len - pos);
        int zr;
        do {
            if (obuf_reserve(out, 16384) != 0) {
                rc = too_large(out->max, err);
                goto Exit;
            }
            zs.next_out = (Bytef *)out->base + out->len;
            zs.avail_out = (uInt)(out->cap - out->len);
            zr = inflate(&zs, Z_NO_FLUSH);
            out->len = out->cap - zs.avail_out;
            if (out->len > out->max) {
                rc = too_large(out->max, err);
                goto Exit;
            }
            if (zr == Z_DATA_ERROR) {
                snprintf(err, FY_DECODE_ERR_MAX, "flate: corrupt input before offset %lu", (unsigned long)zs.total_in);
                goto Exit;
            }
            if (zr == Z_BUF_ERROR && zs.avail_in == 0) {
                snprintf(err, FY_DECODE_ERR_MAX, "unexpected EOF");
                goto Exit;
            }
        } while (zr != Z_STREAM_END);
        pos = len - zs.avail_in;
        if (len - pos < 8) {
            snprintf(err, FY_DECODE_ERR_MAX, "unexpected EOF");
            goto Exit;
        }
        const unsigned char *t = in + pos;
        uint32_t want_crc = t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
        uint32_t want_len = t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
        size_t mlen = out->len - member_start;
        uint32_t crc = (uint32_t)crc32(0, (const Bytef *)out->base + member_start, (uInt)mlen);
        if (crc != want_crc || (uint32_t)mlen != want_len) {
            snprintf(err, FY_DECODE_ERR_MAX, "gzip: invalid checksum");
            goto Exit;
        }
        pos += 8;
    } while (pos < len); /* concatenated members, as Go's multistream reader accepts them */
    rc = 0;
Exit:
    inflateEnd(&zs);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* snappy framing format (github.com/google/snappy framing_format.txt), as github.com/golang/snappy's Reader. */

static uint32_t snappy_masked_crc(const void *data, size_t len)
{
    uint32_t c = fy_crc32c(0, data, len);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

#define SNAPPY_MAX_BLOCK 65536

static int unsnappy(const unsigned char *in, size_t len, obuf_t *out, char *err)
{
    static const char magic[] = "sNaPpY";
    size_t pos = 0;
    int seen_header = 0;
    while (pos < len) {
        if (len - pos < 4)
            goto Truncated;
        unsigned type = in[pos];
        size_t clen = in[pos + 1] | (size_t)in[pos + 2] << 8 | (size_t)in[pos + 3] << 16;
        pos += 4;
        if (len - pos < clen)
            goto Truncated;
        const unsigned char *chunk = in + pos;
        pos += clen;
        if (!seen_header && type != 0xff)
            goto Corrupt;
        if (type == 0xff) {
            if (clen != 6 || memcmp(chunk, magic, 6) != 0)
                goto Corrupt;
            seen_header = 1;
        } else if (type == 0x00 || type == 0x01) {
            if (clen < 4)
                goto Corrupt;
            uint32_t want = chunk[0] | (uint32_t)chunk[1] << 8 | (uint32_t)chunk[2] << 16 | (uint32_t)chunk[3] << 24;
            const char *data = (const char *)chunk + 4;
            size_t dlen = clen - 4, n = dlen;
            if (type == 0x00 && snappy_uncompressed_length(data, dlen, &n) != SNAPPY_OK)
                goto Corrupt;
            if (n > SNAPPY_MAX_BLOCK)
                goto Corrupt;
            if (out->len + n > out->max || obuf_reserve(out, n) != 0)
                return too_large(out->max, err);
            char empty[1]; /* an empty chunk with no buffer yet: no arithmetic on a null pointer */
            char *dst = n != 0 ? out->base + out->len : empty;
            if (type == 0x00) {
                size_t got = n;
                if (snappy_uncompress(data, dlen, dst, &got) != SNAPPY_OK || got != n)
                    goto Corrupt;
            } else {
                memcpy(dst, data, n);
            }
            if (snappy_masked_crc(dst, n) != want)
                goto Corrupt;
            out->len += n;
        } else if (type < 0x80) {
            snprintf(err, FY_DECODE_ERR_MAX, "snappy: unsupported input");
            return 400;
        }
        /* 0x80..0xfe: skippable (padding and reserved) */
    }
    return 0;
Truncated:
    snprintf(err, FY_DECODE_ERR_MAX, "unexpected EOF");
    return 400;
Corrupt:
    snprintf(err, FY_DECODE_ERR_MAX, "snappy: corrupt input");
    return 400;
}

int fy_decode_body(fy_encoding_t enc, const char *body, size_t len, size_t max, const char **out, size_t *out_len, char **owned,
                   char *err)
{
    obuf_t b = {NULL, 0, 0, max};
    int rc = 0;
    err[0] = '\0';
    *out = NULL;
    *out_len = 0;
    *owned = NULL;
    if (enc == FY_ENC_IDENTITY) {
        /* the hot path: no copy, the parsers read the request's own buffer */
        if (len > max)
            return too_large(max, err);
        *out = body;
        *out_len = len;
        return 0;
    }
    rc = enc == FY_ENC_GZIP ? gunzip((const unsigned char *)body, len, &b, err)
                            : unsnappy((const unsigned char *)body, len, &b, err);
    if (rc != 0) {
        free(b.base);
        return rc;
    }
    *out = b.base;
    *out_len = b.len;
    *owned = b.base;
    return 0;
}
