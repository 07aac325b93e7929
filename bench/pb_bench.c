/*
 * pb_bench.c: protobuf decoder workloads. PUSH646 is bench/payloads/push-646.txt (10 series: two counters, a gauge,
 * a 5-bucket histogram) encoded as client_golang's push does; NODE is a ~10 MB node-exporter-like body (many
 * counter and gauge families with 2-4 labels, some histograms and summaries).
 */
#include "pb_bench.h"

#include "fy_parse.h"
#include "fy_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_str(fy_pb_writer_t *w, uint32_t field, const char *s)
{
    fy_pb_put_bytes(w, field, s, strlen(s));
}

static void label(fy_pb_writer_t *w, const char *name, const char *value)
{
    size_t m = fy_pb_begin(w, 1);
    put_str(w, 1, name);
    put_str(w, 2, value);
    fy_pb_end(w, m);
}

static size_t family(fy_pb_writer_t *w, const char *name, const char *help, int type)
{
    size_t m = fy_pb_begin(w, 0);
    put_str(w, 1, name);
    put_str(w, 2, help);
    fy_pb_put_uint64(w, 3, (uint64_t)type);
    return m;
}

static void value(fy_pb_writer_t *w, uint32_t field, double v)
{
    size_t m = fy_pb_begin(w, field);
    fy_pb_put_double(w, 1, v);
    fy_pb_end(w, m);
}

static void histogram(fy_pb_writer_t *w, int nb, uint64_t count, double sum)
{
    size_t h = fy_pb_begin(w, 7);
    fy_pb_put_uint64(w, 1, count);
    fy_pb_put_double(w, 2, sum);
    for (int i = 0; i < nb; i++) {
        size_t b = fy_pb_begin(w, 3);
        fy_pb_put_uint64(w, 1, count * (uint64_t)(i + 1) / (uint64_t)(nb + 1));
        fy_pb_put_double(w, 2, 0.005 * (1 << i));
        fy_pb_end(w, b);
    }
    fy_pb_end(w, h);
}

static uint32_t build_push646(fy_pb_writer_t *w)
{
    size_t f = family(w, "job_items_total", "Items processed by the job.", FY_TYPE_COUNTER);
    const char *q[] = {"high", "low"};
    double v[] = {1234567, 678};
    for (int i = 0; i < 2; i++) {
        size_t m = fy_pb_begin(w, 4);
        label(w, "queue", q[i]);
        value(w, 3, v[i]);
        fy_pb_end(w, m);
    }
    fy_pb_end(w, f);
    f = family(w, "job_last_success_seconds", "Unix time of the last success.", FY_TYPE_GAUGE);
    size_t m = fy_pb_begin(w, 4);
    value(w, 2, 1.7956077351921391e+09);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
    f = family(w, "job_duration_seconds", "Job duration in s.", FY_TYPE_HISTOGRAM);
    m = fy_pb_begin(w, 4);
    size_t h = fy_pb_begin(w, 7);
    fy_pb_put_uint64(w, 1, 12);
    fy_pb_put_double(w, 2, 47.25);
    static const double ub[] = {0.5, 1, 5, 10};
    static const uint64_t cum[] = {2, 5, 9, 11};
    for (int i = 0; i < 4; i++) {
        size_t b = fy_pb_begin(w, 3);
        fy_pb_put_uint64(w, 1, cum[i]);
        fy_pb_put_double(w, 2, ub[i]);
        fy_pb_end(w, b);
    }
    fy_pb_end(w, h);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
    return 10; /* as the text exposition counts them: 2 + 1 + 5 buckets + sum + count */
}

static uint32_t build_node(fy_pb_writer_t *w, size_t target)
{
    static const char *modes[] = {"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"};
    static const char *fstypes[] = {"ext4", "tmpfs", "xfs", "overlay"};
    uint32_t nseries = 0;
    char name[96], a[64], b[64];
    for (int fam = 0; w->len < target; fam++) {
        int kind = fam % 10;
        snprintf(name, sizeof(name), "node_subsystem%d_%s", fam, kind < 5 ? "total" : kind < 9 ? "bytes" : "seconds");
        int type = kind < 5 ? FY_TYPE_COUNTER : kind < 9 ? FY_TYPE_GAUGE : (fam % 20 == 9 ? FY_TYPE_HISTOGRAM : FY_TYPE_SUMMARY);
        size_t f = family(w, name, "Node exporter style metric family, with a help text of typical length.", type);
        for (int s = 0; s < 64; s++) {
            size_t m = fy_pb_begin(w, 4);
            snprintf(a, sizeof(a), "%d", s / 8);
            label(w, "cpu", a);
            label(w, "mode", modes[s % 8]);
            if (kind >= 5) {
                snprintf(b, sizeof(b), "/var/lib/docker/overlay2/%08x/merged", (unsigned)(fam * 64 + s));
                label(w, "mountpoint", b);
                label(w, "fstype", fstypes[s % 4]);
            }
            if (type == FY_TYPE_HISTOGRAM) {
                histogram(w, 10, 1000 + (uint64_t)s, 12.5 * s);
                nseries += 13;
            } else if (type == FY_TYPE_SUMMARY) {
                size_t sm = fy_pb_begin(w, 4);
                fy_pb_put_uint64(w, 1, 77);
                fy_pb_put_double(w, 2, 3.25);
                for (int q = 0; q < 3; q++) {
                    size_t qm = fy_pb_begin(w, 3);
                    fy_pb_put_double(w, 1, q == 0 ? 0.5 : q == 1 ? 0.9 : 0.99);
                    fy_pb_put_double(w, 2, 0.001 * q);
                    fy_pb_end(w, qm);
                }
                fy_pb_end(w, sm);
                nseries += 5;
            } else {
                value(w, type == FY_TYPE_COUNTER ? 3 : 2, 123456.789 * s + fam);
                nseries++;
            }
            fy_pb_end(w, m);
        }
        fy_pb_end(w, f);
    }
    return nseries;
}

const char *fy_pb_bench_body(int which, size_t *len, uint32_t *nseries)
{
    static char *bodies[2];
    static size_t lens[2];
    static uint32_t counts[2];
    if (bodies[which] == NULL) {
        size_t cap = which == FY_PB_BENCH_NODE ? (11u << 20) : 4096;
        fy_pb_writer_t w;
        char *buf = malloc(cap);
        if (buf == NULL)
            abort();
        fy_pb_writer_init(&w, buf, cap);
        counts[which] = which == FY_PB_BENCH_NODE ? build_node(&w, 10u << 20) : build_push646(&w);
        if (w.overflow)
            abort();
        bodies[which] = buf;
        lens[which] = w.len;
    }
    *len = lens[which];
    *nseries = counts[which];
    return bodies[which];
}

uint32_t fy_pb_bench_decode(const char *buf, size_t len)
{
    static fy_arena_t arena;
    static void *mem;
    static fy_parse_error_t err;
    size_t need = fy_parse_arena_hint(len);
    if (arena.cap < need) {
        free(mem);
        if ((mem = malloc(need)) == NULL)
            abort();
        fy_arena_init(&arena, mem, need);
    }
    fy_arena_reset(&arena);
    fy_body_t body;
    if (fy_parse_protobuf(buf, len, &arena, &body, &err) != FY_OK)
        return 0;
    return body.nseries;
}
