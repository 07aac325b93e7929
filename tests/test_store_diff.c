/*
 * test_store_diff.c: differential test (sqlite's bitvec style): random PUT/POST/DELETE sequences against the store
 * and against a deliberately simple model (arrays, full sort at render), comparing the rendered text after every
 * step. The generated pushes are always consistent (each family name has one type; series carry their job), so
 * every push must succeed; labels use values that exercise byte order ("10" < "9" < "B" < "a"). Some steps re-push
 * a group's own content with new values, which the store applies by the blind path from the second push on.
 */
#include "store_int.h"
#include "store_testlib.h"

#define OK FY_OK

#define NJOBS 6
#define NFAMS 5
#define NVALS 5

static const char *jobs[NJOBS] = {"j1", "j10", "j9", "jB", "ja", "j"};
static const char *vals[NVALS] = {"10", "9", "B", "a", "a\"b"};
static const char *fnames[NFAMS] = {"fa", "fb_total", "Fc", "_fd", "fe"};
static const char *ftypes[NFAMS] = {"counter", "gauge", "untyped", "gauge", "counter"};

/* model: value of (job, family, label value), or -1 when absent; present[job] says whether the group exists */
static int model[NJOBS][NFAMS][NVALS];
static int fam_present[NJOBS][NFAMS];
static int present[NJOBS];

static unsigned rnd(unsigned *st)
{
    *st = *st * 1103515245u + 12345u;
    return (*st >> 16) & 0x7fff;
}

static void model_render(sbuf_t *out)
{
    sbuf_writer(out, "", 0);
    /* families in byte order */
    int order[NFAMS];
    for (int i = 0; i < NFAMS; i++)
        order[i] = i;
    for (int i = 0; i < NFAMS; i++)
        for (int k = i + 1; k < NFAMS; k++)
            if (strcmp(fnames[order[k]], fnames[order[i]]) < 0) {
                int t = order[i];
                order[i] = order[k];
                order[k] = t;
            }
    for (int oi = 0; oi < NFAMS; oi++) {
        int f = order[oi];
        /* series: labels instance="", job, l: order by job then l, bytewise */
        char lines[NJOBS * NVALS][128];
        int n = 0;
        for (int j = 0; j < NJOBS; j++)
            for (int v = 0; v < NVALS; v++)
                if (present[j] && fam_present[j][f] && model[j][f][v] >= 0) {
                    char esc[16];
                    const char *src = vals[v];
                    char *w = esc;
                    for (; *src; src++) {
                        if (*src == '"' || *src == '\\')
                            *w++ = '\\';
                        *w++ = *src;
                    }
                    *w = 0;
                    snprintf(lines[n++], sizeof(lines[0]), "%s\x01%s\x01%s{instance=\"\",job=\"%s\",l=\"%s\"} %d\n", jobs[j],
                             vals[v], fnames[f], jobs[j], esc, model[j][f][v]);
                }
        if (n == 0)
            continue;
        qsort(lines, (size_t)n, sizeof(lines[0]), (int (*)(const void *, const void *))strcmp);
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "# HELP %s help of %s\n# TYPE %s %s\n", fnames[f], fnames[f], fnames[f], ftypes[f]);
        sbuf_writer(out, hdr, strlen(hdr));
        for (int i = 0; i < n; i++) {
            const char *l = strchr(strchr(lines[i], 1) + 1, 1) + 1;
            sbuf_writer(out, l, strlen(l));
        }
    }
}

/* Bulk-delete predicate: ctx is a bit mask of job indexes. */
static int pred_jobs(void *ctx, const fy_store_group_view_t *g)
{
    unsigned mask = *(const unsigned *)ctx;
    for (int j = 0; j < NJOBS; j++)
        if ((mask >> j) & 1)
            for (uint32_t i = 0; i < g->nlabels; i++)
                if (fy_str_eq(g->labels[i].name, fy_str("job", 3)) &&
                    fy_str_eq(g->labels[i].value, fy_str(jobs[j], strlen(jobs[j]))))
                    return 1;
    return 0;
}

static void test_differential(void **state)
{
    (void)state;
    uint64_t blind = 0;
    for (unsigned seed = 1; seed <= 20; seed++) {
        unsigned st = seed;
        fy_store_config_t cfg = {0};
        cfg.nshards = 2;
        cfg.nstripes = 2;
        fy_store_t *s = fy_store_create(&cfg);
        memset(model, 0xff, sizeof(model));
        memset(fam_present, 0, sizeof(fam_present));
        memset(present, 0, sizeof(present));
        for (int step = 0; step < 300; step++) {
            int j = (int)(rnd(&st) % NJOBS);
            int op = (int)(rnd(&st) % 10);
            char gk[32];
            snprintf(gk, sizeof(gk), "job=%s", jobs[j]);
            if (op == 0 && rnd(&st) % 3 == 0) {
                /* bulk delete of a random set of jobs (the batched removal path), checked by a render */
                unsigned mask = rnd(&st) & ((1u << NJOBS) - 1);
                uint64_t want_n = 0;
                for (int k = 0; k < NJOBS; k++)
                    if ((mask >> k) & 1) {
                        want_n += (uint64_t)present[k];
                        present[k] = 0;
                        memset(fam_present[k], 0, sizeof(fam_present[k]));
                        memset(model[k], 0xff, sizeof(model[k]));
                    }
                assert_int_equal(fy_store_delete_where(s, pred_jobs, &mask), want_n);
                goto Compare;
            }
            if (op == 0) {
                assert_int_equal(delete_gk(s, gk), OK);
                present[j] = 0;
                memset(fam_present[j], 0, sizeof(fam_present[j]));
                memset(model[j], 0xff, sizeof(model[j]));
                continue;
            }
            if (op == 9 && present[j]) {
                /* the group's own content again, new values, twice: the second PUT (at least) has the shape the
                 * first left, so it takes the blind path (push.c push_blind) */
                for (int rep = 0; rep < 2; rep++) {
                    char body[4096];
                    size_t bl = 0;
                    for (int f = 0; f < NFAMS; f++) {
                        if (!fam_present[j][f])
                            continue;
                        bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "# HELP %s help of %s\n# TYPE %s %s\n", fnames[f],
                                               fnames[f], fnames[f], ftypes[f]);
                        for (int v = 0; v < NVALS; v++)
                            if (model[j][f][v] >= 0) {
                                model[j][f][v] = (int)(rnd(&st) % 100);
                                bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "%s{l=\"%s\"} %d\n", fnames[f],
                                                       v == 4 ? "a\\\"b" : vals[v], model[j][f][v]);
                            }
                    }
                    body[bl] = 0;
                    char msg[4096];
                    if (push_text(s, gk, FY_STORE_PUT, body, 1000 + step, msg, sizeof(msg)) != OK)
                        fail_msg("seed %u step %d: re-push: %s", seed, step, msg);
                }
                goto Compare;
            }
            int put = op < 5;
            char body[4096];
            size_t bl = 0;
            int pushed[NFAMS] = {0};
            int newv[NFAMS][NVALS];
            memset(newv, 0xff, sizeof(newv));
            int nf = (int)(rnd(&st) % 3);
            for (int k = 0; k < nf; k++) {
                int f = (int)(rnd(&st) % NFAMS);
                if (pushed[f])
                    continue;
                int ns = 1 + (int)(rnd(&st) % 3);
                int any = 0;
                for (int q = 0; q < ns; q++) {
                    int v = (int)(rnd(&st) % NVALS);
                    if (newv[f][v] >= 0)
                        continue;
                    if (!any)
                        bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "# HELP %s help of %s\n# TYPE %s %s\n", fnames[f],
                                               fnames[f], fnames[f], ftypes[f]);
                    any = 1;
                    newv[f][v] = (int)(rnd(&st) % 100);
                    bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "%s{l=\"%s\"} %d\n", fnames[f],
                                           v == 4 ? "a\\\"b" : vals[v], newv[f][v]);
                }
                pushed[f] = any;
            }
            body[bl] = 0;
            char msg[4096];
            int rc = push_text(s, gk, put ? FY_STORE_PUT : FY_STORE_POST, body, 1000 + step, msg, sizeof(msg));
            if (rc != OK)
                fail_msg("seed %u step %d: %s", seed, step, msg);
            present[j] = 1;
            for (int f = 0; f < NFAMS; f++) {
                if (pushed[f]) {
                    fam_present[j][f] = 1;
                    memcpy(model[j][f], newv[f], sizeof(newv[f]));
                } else if (put) {
                    fam_present[j][f] = 0;
                    memset(model[j][f], 0xff, sizeof(model[j][f]));
                }
            }
        Compare:;
            sbuf_t want = {0};
            model_render(&want);
            char note[48];
            snprintf(note, sizeof(note), "seed %u step %d", seed, step);
            check_scrape(s, want.p, note);
            free(want.p);
        }
        fy_store_stats_t stt;
        fy_store_stats(s, &stt);
        uint64_t g = 0;
        for (int j = 0; j < NJOBS; j++)
            g += (uint64_t)present[j];
        assert_int_equal(stt.groups, g);
        blind += fy__store_nblind(s);
        fy_store_destroy(s);
    }
    assert_true(blind > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_differential)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
