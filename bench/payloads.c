/*
 * payloads.c: generators for the benchmark bodies (see payloads.h). A fixed xorshift seed keeps them identical
 * across runs; numbers are formatted the way Go exporters print them (shortest 'g').
 */
#include "payloads.h"

#include "bench_rand.h"

#include "fy_num.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
    uint64_t rng;
} gen_t;

static uint64_t rnd(gen_t *g)
{
    return fy_bench_rand(&g->rng);
}

static void put(gen_t *g, const char *s, size_t n)
{
    if (g->len + n > g->cap) {
        g->cap = (g->len + n) * 2;
        g->buf = realloc(g->buf, g->cap);
        if (g->buf == NULL)
            abort();
    }
    memcpy(g->buf + g->len, s, n);
    g->len += n;
}

static void puts_(gen_t *g, const char *s)
{
    put(g, s, strlen(s));
}

static void putf(gen_t *g, double v)
{
    char b[FY_FLOAT_BUFSZ];
    put(g, b, fy_format_float_text(v, b));
}

static void putu(gen_t *g, uint64_t v)
{
    char b[24];
    put(g, b, fy_format_uint64(v, b));
}

/* A realistic sample value: integers, large counters, small durations, byte counts, the odd special. */
static void put_value(gen_t *g)
{
    uint64_t r = rnd(g);
    switch (r % 8) {
    case 0:
    case 1:
        putu(g, (r >> 8) % 100000);
        break;
    case 2:
        puts_(g, "1.8446744073709552e+19");
        break;
    case 3:
        putf(g, (double)((r >> 8) % 1000000) * 1e-9);
        break;
    case 4:
        putf(g, (double)((r >> 8) % 100000000000ULL) * 1.5);
        break;
    case 5:
        putf(g, (double)((r >> 8) % 10000000) / 100.0);
        break;
    case 6:
        putf(g, (double)((r >> 8) % 1000) / 1000.0);
        break;
    default:
        puts_(g, r & 0x100 ? "0" : "1");
    }
}

static const char *subsystems[] = {"cpu",     "disk",   "filesystem", "network", "memory",
                                   "netstat", "vmstat", "hwmon",      "systemd", "process"};
static const char *words[] = {"seconds", "bytes", "packets", "errors",   "drops", "reads",
                              "writes",  "usage", "time",    "pressure", "queue", "io"};
static const char *lnames[] = {"device", "mode", "cpu", "mountpoint", "fstype", "interface", "state", "name"};
static const char *lvals[] = {"eth0", "idle",   "system", "user", "/dev/nvme0n1p2", "ext4", "/var/lib/docker",
                              "lo",   "iowait", "active", "sda",  "tmpfs"};

static void put_name(gen_t *g, unsigned fam)
{
    char b[128];
    int n = snprintf(b, sizeof(b), "node_%s_%s_%s_%u", subsystems[fam % 10], words[(fam / 10) % 12], words[(fam / 120) % 12], fam);
    put(g, b, (size_t)n);
}

static void put_labels(gen_t *g, unsigned nl, unsigned series, const char *extra, const char *extra_val)
{
    if (nl == 0 && extra == NULL)
        return;
    puts_(g, "{");
    for (unsigned i = 0; i < nl; i++) {
        if (i)
            puts_(g, ",");
        puts_(g, lnames[i % 8]);
        puts_(g, "=\"");
        if (i == 0) {
            putu(g, series);
        } else {
            puts_(g, lvals[(series * 7 + i) % 12]);
        }
        puts_(g, "\"");
    }
    if (extra != NULL) {
        if (nl)
            puts_(g, ",");
        puts_(g, extra);
        puts_(g, "=\"");
        puts_(g, extra_val);
        puts_(g, "\"");
    }
    puts_(g, "}");
}

char *fy_payload_node_exporter(size_t target, size_t *len, size_t *nseries)
{
    gen_t g = {NULL, 0, 0, 0x9E3779B97F4A7C15ULL};
    static const char *les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"};
    static const char *qs[] = {"0", "0.25", "0.5", "0.75", "1"};
    size_t ns = 0;
    for (unsigned fam = 0; g.len < target; fam++) {
        uint64_t r = rnd(&g);
        unsigned kind = (unsigned)(r % 20); /* 0..13 counter/gauge, 14..16 histogram, 17..19 summary */
        const char *type = kind < 14 ? (kind & 1 ? "counter" : "gauge") : kind < 17 ? "histogram" : "summary";
        puts_(&g, "# HELP ");
        put_name(&g, fam);
        puts_(&g, " Node statistic as reported by the kernel, per device.\n# TYPE ");
        put_name(&g, fam);
        puts_(&g, " ");
        puts_(&g, type);
        puts_(&g, "\n");
        unsigned nl = (unsigned)((r >> 8) % 4);
        if (kind < 14) {
            unsigned nser = 1 + (unsigned)((r >> 16) % 24);
            for (unsigned s = 0; s < nser; s++, ns++) {
                put_name(&g, fam);
                put_labels(&g, nl, s, NULL, NULL);
                puts_(&g, " ");
                put_value(&g);
                puts_(&g, "\n");
            }
        } else {
            int hist = kind < 17;
            unsigned nser = 1 + (unsigned)((r >> 16) % 4);
            for (unsigned s = 0; s < nser; s++, ns++) {
                unsigned np = hist ? 12 : 5;
                uint64_t cum = 0;
                for (unsigned i = 0; i < np; i++) {
                    put_name(&g, fam);
                    if (hist)
                        puts_(&g, "_bucket");
                    put_labels(&g, nl, s, hist ? "le" : "quantile", hist ? les[i] : qs[i]);
                    puts_(&g, " ");
                    if (hist) {
                        cum += rnd(&g) % 1000;
                        putu(&g, cum);
                    } else {
                        putf(&g, (double)(rnd(&g) % 100000) * 1e-6);
                    }
                    puts_(&g, "\n");
                }
                put_name(&g, fam);
                puts_(&g, "_sum");
                put_labels(&g, nl, s, NULL, NULL);
                puts_(&g, " ");
                putf(&g, (double)(rnd(&g) % 10000000) * 1e-3);
                puts_(&g, "\n");
                put_name(&g, fam);
                puts_(&g, "_count");
                put_labels(&g, nl, s, NULL, NULL);
                puts_(&g, " ");
                putu(&g, cum + 17);
                puts_(&g, "\n");
            }
        }
    }
    *len = g.len;
    *nseries = ns;
    return g.buf;
}

char *fy_payload_many_labels(size_t target, unsigned nlabels, size_t *len, size_t *nseries)
{
    gen_t g = {NULL, 0, 0, 0xD1B54A32D192ED03ULL};
    size_t ns = 0;
    puts_(&g, "# HELP k8s_pod_info Information about a pod.\n# TYPE k8s_pod_info gauge\n");
    while (g.len < target) {
        puts_(&g, "k8s_pod_info{");
        for (unsigned i = 0; i < nlabels; i++) {
            char b[96];
            int n = snprintf(b, sizeof(b), "%slabel_%02u=\"%s-%llu\"", i ? "," : "", i, lvals[i % 12],
                             (unsigned long long)(rnd(&g) % 100000));
            put(&g, b, (size_t)n);
        }
        puts_(&g, "} ");
        put_value(&g);
        puts_(&g, "\n");
        ns++;
    }
    *len = g.len;
    *nseries = ns;
    return g.buf;
}

char *fy_payload_file(const char *name, size_t *len)
{
    /* __FILE__ is the absolute path CMake compiled us from; the payloads sit next to it. */
    char path[4096];
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof(path), "%.*s/payloads/%s", dir, slash ? __FILE__ : ".", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}
