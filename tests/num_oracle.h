/*
 * num_oracle.h: the slow reference implementations that tests/test_num.c and bench/num_bench.c compare
 * parser/num.c against (see num_oracle.c).
 */
#ifndef FY_NUM_ORACLE_H
#define FY_NUM_ORACLE_H

#include <stddef.h>
#include <stdint.h>

/* fy_parse_float's contract, via a hand-written syntax check and strtod. */
int fy_oracle_parse_float(const char *s, size_t n, double *out);

/* fy_format_float_g / _f's contract, via printf precisions 1..17 checked with strtod. */
size_t fy_oracle_format_float_g(double v, char *out);
size_t fy_oracle_format_float_f(double v, char *out);

/* 5^j (j may be negative) normalised to [2^127, 2^128) and truncated, computed exactly with a bignum. */
void fy_oracle_pow5(int j, uint64_t *hi, uint64_t *lo);

#endif
