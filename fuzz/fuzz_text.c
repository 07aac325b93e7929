/*
 * fuzz_text.c: libFuzzer target for fy_parse_text. Checks what must hold for every input: no crash or over-read
 * (the input is copied to an exact-size heap block), the arena hint always suffices, errors carry a well-formed
 * message, and a success yields a consistent model whose strings lie inside the input. Every input is parsed a
 * second time with FY_PARSE_UTF8_NAMES (quoted names): the same must hold, names may also lie in the arena (the
 * unescaped copies), and whatever the classic parse accepts it accepts with the same families and series.
 */
#include "fy_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not CHECK(): the fuzz build may define NDEBUG. */
#define CHECK(x)                                                                                                                   \
    do {                                                                                                                           \
        if (!(x)) {                                                                                                                \
            fprintf(stderr, "check failed: %s\n", #x);                                                                             \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return n == 0 || (p >= buf && p + n <= buf + len);
}

/* One parse; returns rc and fills nfam/nser for the comparison of the two modes. */
static int parse_check(const char *buf, size_t size, unsigned opts, uint32_t *nfam, uint32_t *nser)
{
    size_t cap = fy_parse_arena_hint(size);
    void *mem = malloc(cap);
    fy_arena_t a;
    fy_body_t body;
    fy_parse_error_t err;
    fy_arena_init(&a, mem, cap);
    int rc = fy_parse_text_opts(buf, size, &a, &body, &err, opts);
    CHECK(rc != FY_PERR_NOMEM && rc != FY_PERR_INTERNAL);
    CHECK(a.used <= cap);
    *nfam = body.nfamilies;
    *nser = body.nseries;
    if (rc != FY_OK) {
        CHECK(err.code == rc && err.msg_len > 0 && err.msg_len < FY_ERRMSG_MAX && err.offset <= size);
        CHECK(memcmp(err.msg, "text format parsing error in line ", 34) == 0);
        CHECK(body.nfamilies == 0);
    } else {
        uint32_t total = 0;
        for (uint32_t i = 0; i < body.nfamilies; i++) {
            const fy_family_t *f = &body.families[i];
            CHECK(f->nseries > 0 && f->type <= FY_TYPE_MAX && f->name.len > 0);
            CHECK(inside(f->name.ptr, f->name.len, buf, size) || (opts && inside(f->name.ptr, f->name.len, mem, cap)));
            CHECK(!opts || fy_utf8_valid(f->name.ptr, f->name.len));
            CHECK(inside(f->help.ptr, f->help.len, buf, size));
            for (uint32_t j = 0; j < f->nseries; j++) {
                const fy_series_t *s = &f->series[j];
                for (uint32_t k = 0; k < s->nlabels; k++) {
                    fy_str_t n = s->labels[k].name;
                    CHECK(n.len > 0 && (inside(n.ptr, n.len, buf, size) || (opts && inside(n.ptr, n.len, mem, cap))));
                    CHECK(inside(s->labels[k].value.ptr, s->labels[k].value.len, buf, size));
                }
                for (uint32_t k = 0; k < s->npoints; k++)
                    (void)s->points[k].key;
                total++;
            }
        }
        CHECK(total == body.nseries);
    }
    free(mem);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    uint32_t nf0, ns0, nf1, ns1;
    int rc0 = parse_check(buf, size, 0, &nf0, &ns0);
    int rc1 = parse_check(buf, size, FY_PARSE_UTF8_NAMES, &nf1, &ns1);
    /* the option only adds syntax: a classic success is the same success with it */
    CHECK(rc0 != FY_OK || (rc1 == FY_OK && nf0 == nf1 && ns0 == ns1));
    free(buf);
    return 0;
}
