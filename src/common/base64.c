/*
 * base64.c: Go's base64 decoder (base64.h), quantum by quantum as encoding/base64's decodeQuantum reads them.
 */
#include "base64.h"

#include <stdint.h>

static int value(fy_base64_t enc, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (enc == FY_BASE64_STD ? '+' : '-'))
        return 62;
    if (c == (enc == FY_BASE64_STD ? '/' : '_'))
        return 63;
    return -1;
}

static int newline(char c)
{
    return c == '\n' || c == '\r';
}

int fy_base64_decode(fy_base64_t enc, const char *s, size_t len, char *out, size_t *out_len, size_t *bad_at)
{
    int padded = enc == FY_BASE64_STD;
    size_t si = 0, n = 0;
    *out_len = 0;
    *bad_at = 0;
    while (si < len) {
        uint32_t q[4] = {0, 0, 0, 0};
        size_t j = 0, dlen = 4;
        int end = 0;
        while (j < 4) {
            if (si == len) {
                if (j == 0)
                    goto Done;
                if (j == 1 || padded) {
                    *bad_at = si - j;
                    goto Error;
                }
                dlen = j;
                break;
            }
            unsigned char c = (unsigned char)s[si++];
            int v = value(enc, c);
            if (v >= 0) {
                q[j++] = (uint32_t)v;
                continue;
            }
            if (newline((char)c))
                continue;
            if (!padded || c != '=' || j < 2) { /* not a character of the encoding, or padding too early */
                *bad_at = si - 1;
                goto Error;
            }
            if (j == 2) { /* "==" expected: the second '=' after any newlines */
                while (si < len && newline(s[si]))
                    si++;
                if (si == len) {
                    *bad_at = len;
                    goto Error;
                }
                if (s[si] != '=') {
                    *bad_at = si - 1;
                    goto Error;
                }
                si++;
            }
            while (si < len && newline(s[si]))
                si++;
            dlen = j;
            end = 1;
            break;
        }
        uint32_t val = q[0] << 18 | q[1] << 12 | q[2] << 6 | q[3];
        out[n++] = (char)(val >> 16);
        if (dlen >= 3)
            out[n++] = (char)(val >> 8);
        if (dlen == 4)
            out[n++] = (char)val;
        if (end) {
            if (si < len) { /* trailing garbage after the padding */
                *bad_at = si;
                goto Error;
            }
            break;
        }
    }
Done:
    *out_len = n;
    return 0;
Error:
    *out_len = n;
    return -1;
}
