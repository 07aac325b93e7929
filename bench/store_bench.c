/*
 * store_bench.c: benchmark bodies for the store (registered by bench_store.cc): applying the push-646 body (10
 * series) to a store that already holds N groups of that shape, and rendering the whole store as text.
 * Bulk deletes: fy_bench_store_delete_where() removes the groups of a store filled with the two-family body of the
 * integration test (tests/integration/test_beyond.py) by a predicate on a grouping label, as the admin API does.
 * Memory: fy_bench_store_rss_per_group() measures the resident-set growth per group via /proc/self/statm, for
 * one grouping label (job="jobN") or two as a server sees them (job="node-exporter-<k>", instance="10.a.b.c:9100":
 * keys of about 40 bytes).
 */
#include "store_bench.h"

#include "fy_parse.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char push646[] = "# HELP job_items_total Items processed by the job.\n# TYPE job_items_total counter\n"
                              "job_items_total{queue=\"high\"} 1234567\njob_items_total{queue=\"low\"} 678\n"
                              "# HELP job_last_success_seconds Unix time of the last success.\n"
                              "# TYPE job_last_success_seconds gauge\njob_last_success_seconds 1.7956077351921391e+09\n"
                              "# HELP job_duration_seconds Job duration in s.\n# TYPE job_duration_seconds histogram\n"
                              "job_duration_seconds_bucket{le=\"0.5\"} 2\njob_duration_seconds_bucket{le=\"1\"} 5\n"
                              "job_duration_seconds_bucket{le=\"5\"} 9\njob_duration_seconds_bucket{le=\"10\"} 11\n"
                              "job_duration_seconds_bucket{le=\"+Inf\"} 12\njob_duration_seconds_sum 47.25\n"
                              "job_duration_seconds_count 12\n";

struct st_fy_bench_store_t {
    fy_store_t *s;
    fy_body_t body;
    void *arena;
};

/* The server's usual shape: {job="node-exporter-<k>", instance="10.<a>.<b>.<c>:9100"}, 100 instances per job. */
static int push_2l(fy_bench_store_t *b, size_t group, int64_t now)
{
    char job[32], inst[32];
    int nj = snprintf(job, sizeof(job), "node-exporter-%zu", group / 100);
    int ni = snprintf(inst, sizeof(inst), "10.%zu.%zu.%zu:9100", (group >> 16) & 255, (group >> 8) & 255, group & 255);
    fy_store_label_t gk[2] = {{{"job", 3}, {job, (size_t)nj}}, {{"instance", 8}, {inst, (size_t)ni}}};
    return fy_store_push(b->s, gk, 2, FY_STORE_PUT, &b->body, now, 0, NULL);
}

static fy_bench_store_t *store_new(size_t ngroups, int two_labels)
{
    fy_bench_store_t *b = calloc(1, sizeof(*b));
    size_t len = sizeof(push646) - 1, cap = fy_parse_arena_hint(len);
    fy_arena_t a;
    b->arena = malloc(cap);
    fy_arena_init(&a, b->arena, cap);
    fy_parse_error_t err;
    if (fy_parse_text(push646, len, &a, &b->body, &err) != FY_OK)
        abort();
    b->s = fy_store_create(NULL);
    for (size_t g = 0; g < ngroups; g++)
        if ((two_labels ? push_2l(b, g, 1) : fy_bench_store_push(b, g, 1)) != FY_OK)
            abort();
    return b;
}

fy_bench_store_t *fy_bench_store_new(size_t ngroups)
{
    return store_new(ngroups, 0);
}

void fy_bench_store_free(fy_bench_store_t *b)
{
    fy_store_destroy(b->s);
    free(b->arena);
    free(b);
}

int fy_bench_store_push(fy_bench_store_t *b, size_t group, int64_t now)
{
    char job[32];
    int n = snprintf(job, sizeof(job), "job%zu", group);
    fy_store_label_t gk = {{"job", 3}, {job, (size_t)n}};
    return fy_store_push(b->s, &gk, 1, FY_STORE_PUT, &b->body, now, 0, NULL);
}

static const char two_fams[] = "m 1\nn 2\n";

/* Matches the groups whose instance label starts with "i" (all of them): reads the labels as fy_bulk_match does. */
static int match_instance(void *ctx, const fy_store_group_view_t *g)
{
    (void)ctx;
    for (uint32_t i = 0; i < g->nlabels; i++)
        if (fy_str_eq(g->labels[i].name, fy_str("instance", 8)))
            return g->labels[i].value.len > 0 && g->labels[i].value.ptr[0] == 'i';
    return 0;
}

fy_bench_store_t *fy_bench_store_new_bulk(size_t ngroups)
{
    fy_bench_store_t *b = calloc(1, sizeof(*b));
    size_t len = sizeof(two_fams) - 1, cap = fy_parse_arena_hint(len);
    fy_arena_t a;
    b->arena = malloc(cap);
    fy_arena_init(&a, b->arena, cap);
    fy_parse_error_t err;
    if (fy_parse_text(two_fams, len, &a, &b->body, &err) != FY_OK)
        abort();
    b->s = fy_store_create(NULL);
    for (size_t g = 0; g < ngroups; g++) {
        char inst[32];
        int n = snprintf(inst, sizeof(inst), "i%zu", g);
        fy_store_label_t gk[2] = {{{"job", 3}, {"many", 4}}, {{"instance", 8}, {inst, (size_t)n}}};
        if (fy_store_push(b->s, gk, 2, FY_STORE_PUT, &b->body, 1, 0, NULL) != FY_OK)
            abort();
    }
    return b;
}

uint64_t fy_bench_store_delete_where(fy_bench_store_t *b)
{
    return fy_store_delete_where(b->s, match_instance, NULL);
}

static int count_writer(void *ctx, const char *buf, size_t len)
{
    (void)buf;
    *(size_t *)ctx += len;
    return 0;
}

size_t fy_bench_store_render(fy_bench_store_t *b, int format)
{
    size_t n = 0;
    if (format == 1)
        fy_store_render_protobuf(b->s, NULL, 1 << 16, count_writer, &n);
    else if (format == 2)
        fy_store_render_openmetrics(b->s, NULL, 1 << 16, count_writer, &n);
    else if (format == 3)
        fy_store_render_json(b->s, 1 << 16, count_writer, &n);
    else
        fy_store_render_text(b->s, NULL, 1 << 16, count_writer, &n);
    return n;
}

static size_t rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
        res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

double fy_bench_store_rss_per_group(size_t ngroups, int two_labels)
{
    size_t before = rss_bytes();
    fy_bench_store_t *b = store_new(ngroups, two_labels);
    size_t after = rss_bytes();
    double per = (double)(after - before) / (double)ngroups;
    fy_bench_store_free(b);
    return per;
}
