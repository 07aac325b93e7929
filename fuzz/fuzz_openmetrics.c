/*
 * fuzz_openmetrics.c: libFuzzer target for fy_parse_openmetrics. Beyond memory safety (ASan, UBSan) it checks the
 * contract: success or a negative code with a message, never NOMEM with the hinted arena, never NOMEM after the
 * arena's end; on success every slice lies inside the input and the model's invariants hold.
 */
#include "fy_parse.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(fy_str_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.len <= len && s.ptr + s.len <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy so that ASan flags any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    if (size)
        memcpy(buf, data, size);
    size_t cap = fy_parse_arena_hint(size);
    char *mem = malloc(cap);
    if (mem == NULL) {
        free(buf);
        return 0;
    }
    fy_arena_t a;
    fy_arena_init(&a, mem, cap);
    fy_body_t body;
    fy_parse_error_t err;
    int rc = fy_parse_openmetrics(buf, size, &a, &body, &err);
    if (rc != FY_OK) {
        if (rc != FY_PERR_OM_ERROR || err.code != rc || err.msg_len == 0 || err.msg_len != strlen(err.msg) || err.offset > size)
            abort();
    } else {
        if (a.used > cap)
            abort();
        uint32_t total = 0;
        for (uint32_t i = 0; i < body.nfamilies; i++) {
            const fy_family_t *f = &body.families[i];
            if (f->nseries == 0 || f->type > FY_TYPE_MAX || !inside(f->name, buf, size) || f->name.len == 0 ||
                !inside(f->help, buf, size) || !inside(f->unit, buf, size))
                abort();
            char *tmp = malloc(f->help.len + 1);
            if (tmp == NULL || fy_unescape(f->help, (fy_esc_t)f->help_esc, tmp) != fy_unescaped_len(f->help, (fy_esc_t)f->help_esc))
                abort();
            free(tmp);
            total += f->nseries;
            for (uint32_t j = 0; j < f->nseries; j++) {
                const fy_series_t *s = &f->series[j];
                if (s->pb_histogram.len != 0)
                    abort();
                for (uint32_t k = 0; k < s->nlabels; k++) {
                    const fy_label_t *l = &s->labels[k];
                    if (!inside(l->name, buf, size) || !inside(l->value, buf, size) || l->name.len == 0 ||
                        (fy_str_eq_mem(l->name, "le", 2) && f->type == FY_TYPE_HISTOGRAM))
                        abort();
                }
                for (uint32_t k = 1; k < s->npoints && f->type == FY_TYPE_HISTOGRAM; k++) {
                    if (!(s->points[k].key > s->points[k - 1].key) || s->points[k].count < s->points[k - 1].count)
                        abort();
                }
                if ((f->type == FY_TYPE_HISTOGRAM || f->type == FY_TYPE_GAUGE_HISTOGRAM) &&
                    (s->npoints == 0 || !isinf(s->points[s->npoints - 1].key) || s->points[s->npoints - 1].count != s->count))
                    abort();
            }
        }
        if (total != body.nseries)
            abort();
    }
    free(mem);
    free(buf);
    return 0;
}
