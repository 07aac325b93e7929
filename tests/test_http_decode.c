/*
 * test_http_decode.c: Content-Type -> body format (spec 6.1, edge case 12) and Content-Encoding decoding (gzip
 * members with Go's error texts, snappy framing with CRC-32C, the decoded-size cap).
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../src/common/crc32c.c"
#include "../src/http/decode.c"

static void test_format(void **state)
{
    (void)state;
    static const struct {
        const char *ct;
        fy_body_format_t want;
        const char *note;
    } t[] = {
        {"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", FY_FMT_PROTOBUF,
         "canonical"},
        {"application/vnd.google.protobuf;encoding=delimited;proto=io.prometheus.client.MetricFamily", FY_FMT_PROTOBUF,
         "order free"},
        {"APPLICATION/VND.GOOGLE.PROTOBUF; PROTO=io.prometheus.client.MetricFamily; Encoding=delimited", FY_FMT_PROTOBUF,
         "type and names case-insensitive"},
        {"application/vnd.google.protobuf; proto=\"io.prometheus.client.MetricFamily\"; encoding=\"delimited\"", FY_FMT_PROTOBUF,
         "quoted values"},
        {"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited;", FY_FMT_PROTOBUF,
         "trailing semicolon tolerated"},
        {"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=DELIMITED", FY_FMT_TEXT,
         "values case-sensitive (E19)"},
        {"application/vnd.google.protobuf", FY_FMT_TEXT, "no parameters (Corrections 6)"},
        {"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily", FY_FMT_TEXT, "no encoding"},
        {"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; encoding=delimited",
         FY_FMT_TEXT, "duplicate parameter: ParseMediaType fails"},
        {"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding", FY_FMT_TEXT,
         "parameter without value: fails"},
        {"application/vnd.google.protobuf; proto=\"io.prometheus.client.MetricFamily; encoding=delimited", FY_FMT_TEXT,
         "unterminated quote"},
        {"text/plain; version=0.0.4", FY_FMT_TEXT, "text"},
        {"application/openmetrics-text; version=1.0.0; charset=utf-8", FY_FMT_OPENMETRICS, "OpenMetrics (Ferry)"},
        {"", FY_FMT_TEXT, "empty header"},
        {"garbage/", FY_FMT_TEXT, "bad media type"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const char *g = fy_guarded(t[i].ct, strlen(t[i].ct));
        if (fy_decode_format(g, strlen(t[i].ct)) != t[i].want)
            fail_msg("%s: %s", t[i].note, t[i].ct);
    }
    assert_int_equal(fy_decode_format(NULL, 0), FY_FMT_TEXT);
}

static void test_encoding(void **state)
{
    (void)state;
    assert_int_equal(fy_decode_encoding("gzip", 4), FY_ENC_GZIP);
    assert_int_equal(fy_decode_encoding("GZIP", 4), FY_ENC_GZIP); /* Ferry accepts it, like Pushgateway >= 1.6 */
    assert_int_equal(fy_decode_encoding("snappy", 6), FY_ENC_SNAPPY);
    assert_int_equal(fy_decode_encoding("deflate", 7), FY_ENC_IDENTITY);
    assert_int_equal(fy_decode_encoding("gzip, br", 8), FY_ENC_IDENTITY);
}

static size_t gzip_of(const char *in, size_t len, unsigned char *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    return n;
}

static int decode(fy_encoding_t enc, const void *in, size_t len, size_t max, char *got, size_t *got_len, char *err)
{
    const char *out;
    char *owned;
    const char *g = fy_guarded(in, len);
    int rc = fy_decode_body(enc, g, len, max, &out, got_len, &owned, err);
    if (rc == 0 && *got_len != 0)
        memcpy(got, out, *got_len);
    free(owned);
    return rc;
}

static void test_gzip(void **state)
{
    (void)state;
    static const char body[] = "gz_metric 7\nother 2\n";
    unsigned char gz[256], two[512];
    char got[1024], err[FY_DECODE_ERR_MAX];
    size_t n = gzip_of(body, sizeof(body) - 1, gz, sizeof(gz)), gl;

    assert_int_equal(decode(FY_ENC_GZIP, gz, n, 1 << 20, got, &gl, err), 0);
    assert_int_equal(gl, sizeof(body) - 1);
    assert_memory_equal(got, body, gl);

    /* concatenated members are one body, as Go's multistream reader reads them */
    memcpy(two, gz, n);
    memcpy(two + n, gz, n);
    assert_int_equal(decode(FY_ENC_GZIP, two, 2 * n, 1 << 20, got, &gl, err), 0);
    assert_int_equal(gl, 2 * (sizeof(body) - 1));

    static const struct {
        size_t len;
        const char *err;
        const char *note;
    } hdr[] = {{0, "EOF", "empty body"}, {5, "unexpected EOF", "short header"}, {12, "unexpected EOF", "truncated deflate"}};
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
        assert_int_equal(decode(FY_ENC_GZIP, gz, hdr[i].len, 1 << 20, got, &gl, err), 400);
        assert_string_equal(err, hdr[i].err);
    }
    assert_int_equal(fy_decode_gzip_header("", 0, err), -1);
    assert_string_equal(err, "EOF");
    assert_int_equal(fy_decode_gzip_header("garbage", 7, err), -1);
    assert_string_equal(err, "unexpected EOF");
    assert_int_equal(fy_decode_gzip_header("some_metric 3.14\n", 17, err), -1);
    assert_string_equal(err, "gzip: invalid header");
    assert_int_equal(fy_decode_gzip_header((const char *)gz, n, err), 0);

    /* a flipped CRC byte: 1.5.1 swallows it, Ferry rejects it */
    memcpy(two, gz, n);
    two[n - 8] ^= 1;
    assert_int_equal(decode(FY_ENC_GZIP, two, n, 1 << 20, got, &gl, err), 400);
    assert_string_equal(err, "gzip: invalid checksum");

    /* corrupt deflate data */
    memcpy(two, gz, n);
    two[10] = 0xff;
    two[11] = 0xff;
    assert_int_equal(decode(FY_ENC_GZIP, two, n, 1 << 20, got, &gl, err), 400);
    assert_true(strncmp(err, "flate: corrupt input before offset ", 35) == 0);

    /* trailing garbage after a member is a bad header of the next one */
    memcpy(two, gz, n);
    memcpy(two + n, "0123456789ab", 12);
    assert_int_equal(decode(FY_ENC_GZIP, two, n + 12, 1 << 20, got, &gl, err), 400);
    assert_string_equal(err, "gzip: invalid header");

    /* decoded size cap: exactly max is fine, one byte less is 413 */
    assert_int_equal(decode(FY_ENC_GZIP, gz, n, sizeof(body) - 1, got, &gl, err), 0);
    assert_int_equal(decode(FY_ENC_GZIP, gz, n, sizeof(body) - 2, got, &gl, err), 413);
    assert_string_equal(err, "decoded request body exceeds --push.max-body-bytes=19");
    assert_int_equal(decode(FY_ENC_IDENTITY, body, sizeof(body) - 1, 4, got, &gl, err), 413);
}

/* Builds a snappy framed stream: stream identifier, then one chunk of the given type. */
static size_t snappy_stream(const char *data, size_t len, int compressed, int bad_crc, unsigned char *out)
{
    size_t n = 0, clen;
    memcpy(out, "\xff\x06\x00\x00sNaPpY", 10);
    n = 10;
    uint32_t crc = snappy_masked_crc(data, len) ^ (bad_crc ? 1u : 0u);
    unsigned char *hdr = out + n;
    n += 4;
    out[n++] = (unsigned char)crc;
    out[n++] = (unsigned char)(crc >> 8);
    out[n++] = (unsigned char)(crc >> 16);
    out[n++] = (unsigned char)(crc >> 24);
    if (compressed) {
        clen = snappy_max_compressed_length(len);
        assert_int_equal(snappy_compress(data, len, (char *)out + n, &clen), SNAPPY_OK);
    } else {
        memcpy(out + n, data, len);
        clen = len;
    }
    n += clen;
    size_t chunk = clen + 4;
    hdr[0] = compressed ? 0x00 : 0x01;
    hdr[1] = (unsigned char)chunk;
    hdr[2] = (unsigned char)(chunk >> 8);
    hdr[3] = (unsigned char)(chunk >> 16);
    return n;
}

static void test_snappy(void **state)
{
    (void)state;
    static const char body[] = "sn_metric 1\nsn_metric2 2\nsn_metric3 3\nsn_metric4 4\n";
    unsigned char s[512];
    char got[512], err[FY_DECODE_ERR_MAX];
    size_t gl;

    /* CRC-32C check value from RFC 3720 */
    assert_int_equal(fy_crc32c(0, "123456789", 9), 0xe3069283u);

    for (int compressed = 0; compressed <= 1; compressed++) {
        size_t n = snappy_stream(body, sizeof(body) - 1, compressed, 0, s);
        assert_int_equal(decode(FY_ENC_SNAPPY, s, n, 1 << 20, got, &gl, err), 0);
        assert_int_equal(gl, sizeof(body) - 1);
        assert_memory_equal(got, body, gl);
        assert_int_equal(decode(FY_ENC_SNAPPY, s, n - 1, 1 << 20, got, &gl, err), 400);
        assert_string_equal(err, "unexpected EOF");
        n = snappy_stream(body, sizeof(body) - 1, compressed, 1, s);
        assert_int_equal(decode(FY_ENC_SNAPPY, s, n, 1 << 20, got, &gl, err), 400);
        assert_string_equal(err, "snappy: corrupt input");
    }
    assert_int_equal(decode(FY_ENC_SNAPPY, "", 0, 1 << 20, got, &gl, err), 0);
    assert_int_equal(gl, 0);
    /* data before the stream identifier */
    assert_int_equal(decode(FY_ENC_SNAPPY, "\x01\x05\x00\x00\x00\x00\x00\x00x", 9, 1 << 20, got, &gl, err), 400);
    assert_string_equal(err, "snappy: corrupt input");
    /* reserved unskippable chunk */
    memcpy(s, "\xff\x06\x00\x00sNaPpY\x02\x00\x00\x00", 14);
    assert_int_equal(decode(FY_ENC_SNAPPY, s, 14, 1 << 20, got, &gl, err), 400);
    assert_string_equal(err, "snappy: unsupported input");
    /* padding is skipped */
    memcpy(s, "\xff\x06\x00\x00sNaPpY\xfe\x02\x00\x00\x00\x00", 16);
    assert_int_equal(decode(FY_ENC_SNAPPY, s, 16, 1 << 20, got, &gl, err), 0);
    /* an empty uncompressed chunk first, before any output buffer exists (fuzz_decode found pointer arithmetic on
     * NULL there, undefined behaviour that UBSan reports): decodes to nothing, its CRC checked */
    for (int compressed = 0; compressed <= 1; compressed++) {
        size_t n = snappy_stream("", 0, compressed, 0, s);
        assert_int_equal(decode(FY_ENC_SNAPPY, s, n, 1 << 20, got, &gl, err), 0);
        assert_int_equal(gl, 0);
        n = snappy_stream("", 0, compressed, 1, s);
        assert_int_equal(decode(FY_ENC_SNAPPY, s, n, 1 << 20, got, &gl, err), 400);
    }
    /* size cap */
    size_t n = snappy_stream(body, sizeof(body) - 1, 1, 0, s);
    assert_int_equal(decode(FY_ENC_SNAPPY, s, n, 10, got, &gl, err), 413);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_snappy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
