/*
 * fuzz_decode.c: libFuzzer target for request-body decoding (src/decode.c): gzip (every member, CRC and length
 * trailers) and snappy, picked by the first byte. The decoded size never passes the limit (1 MiB here: a decompression
 * bomb is a 413, not an allocation), a failure is a 400 or 413 with a message, and gzip's header check agrees with
 * the full decode on what is a header error.
 */
#include "../src/common/crc32c.c"
#include "../src/http/decode.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fy_encoding_t enc = (data[0] & 1) ? FY_ENC_SNAPPY : FY_ENC_GZIP;
    char *body = malloc(size - 1 ? size - 1 : 1);
    memcpy(body, data + 1, size - 1);
    const char *out = NULL;
    size_t out_len = 0;
    char *owned = NULL, err[FY_DECODE_ERR_MAX];
    err[0] = '\0';
    int rc = fy_decode_body(enc, body, size - 1, 1 << 20, &out, &out_len, &owned, err);
    if (rc == 0) {
        CHECK(out_len <= (1 << 20));
        CHECK(out_len == 0 || out != NULL);
        if (out_len)
            CHECK(((const volatile char *)out)[out_len - 1] == out[out_len - 1]); /* readable to its end (ASan) */
    } else {
        CHECK((rc == 400 || rc == 413) && err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
    }
    free(owned);
    if (enc == FY_ENC_GZIP) {
        char herr[FY_DECODE_ERR_MAX];
        if (rc == 0)
            CHECK(fy_decode_gzip_header(body, size - 1, herr) == 0);
    }
    free(body);
    return 0;
}
