/*
 * url.c: percent-decoding (url.h).
 */
#include "url.h"

#include <string.h>

int fy_url_unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long fy_url_unescape(const char *in, size_t len, char *out, int plus_is_space)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = fy_url_unhex(in[i + 1])) < 0 || (lo = fy_url_unhex(in[i + 2])) < 0)
                return -1;
            out[w++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[w++] = plus_is_space && in[i] == '+' ? ' ' : in[i];
        }
    }
    return (long)w;
}
