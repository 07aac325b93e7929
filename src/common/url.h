/*
 * url.h: percent-decoding as Go's net/url does it (PathUnescape, QueryUnescape).
 */
#ifndef FY_URL_H
#define FY_URL_H

#include <stddef.h>

/**
 * Go's url.PathUnescape (plus_is_space 0: '+' kept) or url.QueryUnescape (1: '+' is a space): "%XX" decoded into out
 * (len bytes are enough). Returns the decoded length, or -1 on a malformed escape.
 */
long fy_url_unescape(const char *in, size_t len, char *out, int plus_is_space);

/** A hex digit's value, or -1. */
int fy_url_unhex(char c);

#endif
