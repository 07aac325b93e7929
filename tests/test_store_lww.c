/*
 * test_store_lww.c: the store's last-writer-wins mode (fy_store_config_t.lww; docs/store.md, "LWW mode"): a table of
 * histories with their text scrape, and the merge laws as a property: random histories delivered in random orders
 * with duplicates (and partly as state transfer) give byte-identical scrapes, and a conflict-free history gives what
 * a store without lww gives when fed in stamp order.
 *
 * FY_LWW_HISTORIES=n sets the number of random histories (default 2000); FY_LWW_SEED=s replays one history.
 */
#include "store_testlib.h"

#include "fy_parse.h"

#include <time.h>

#define SEC 1000000000LL

/* ------------------------------------------------------------------------------------------------------------- */
/* Operations. */

typedef enum { O_PUT, O_POST, O_DEL, O_FAIL, O_WIPE, O_KILL } opk_t;

typedef struct {
    opk_t k;
    int g; /* group job=g<g> */
    int64_t stamp;
    const char *text; /* PUT/POST body */
    fy_store_life_t life;
    char fam[16]; /* KILL */
    fy_body_t body;
    void *arena;
} op_t;

static void op_parse(op_t *o)
{
    memset(&o->body, 0, sizeof(o->body));
    o->arena = NULL;
    size_t len = o->text ? strlen(o->text) : 0;
    if (len == 0)
        return;
    fy_parse_error_t perr;
    fy_arena_t a;
    o->arena = malloc(fy_parse_arena_hint(len));
    fy_arena_init(&a, o->arena, fy_parse_arena_hint(len));
    if (fy_parse_text(o->text, len, &a, &o->body, &perr) != FY_OK)
        fail_msg("parse error: %s in %s", perr.msg, o->text);
}

static void gk_of(int g, fy_store_label_t *l, char *buf)
{
    snprintf(buf, 16, "g%d", g);
    l->name = fy_str("job", 3);
    l->value = fy_str(buf, strlen(buf));
}

/* The kills that merges reported (group, family, stamp), deduplicated. */
typedef struct {
    op_t *v;
    size_t n, cap;
} kills_t;

typedef struct {
    kills_t *ks;
    int g;
    int64_t stamp;
} drop_ctx_t;

static void on_drop(void *ctx, fy_str_t family)
{
    drop_ctx_t *d = ctx;
    for (size_t i = 0; i < d->ks->n; i++)
        if (d->ks->v[i].g == d->g && d->ks->v[i].stamp == d->stamp && strlen(d->ks->v[i].fam) == family.len &&
            memcmp(d->ks->v[i].fam, family.ptr, family.len) == 0)
            return;
    if (d->ks->n == d->ks->cap) {
        d->ks->cap = d->ks->cap ? 2 * d->ks->cap : 16;
        d->ks->v = realloc(d->ks->v, d->ks->cap * sizeof(op_t));
    }
    op_t *o = &d->ks->v[d->ks->n++];
    memset(o, 0, sizeof(*o));
    o->k = O_KILL;
    o->g = d->g;
    o->stamp = d->stamp;
    snprintf(o->fam, sizeof(o->fam), "%.*s", (int)family.len, family.ptr);
}

/* Applies one change to an lww store, as the replication layer would deliver it. */
static void apply_lww(fy_store_t *s, const op_t *o, kills_t *ks)
{
    fy_store_label_t l;
    char buf[16];
    gk_of(o->g, &l, buf);
    drop_ctx_t d = {ks, o->g, o->stamp};
    int rc = FY_OK;
    switch (o->k) {
    case O_PUT:
    case O_POST:
        rc = fy_store_merge_push(s, &l, 1, o->k == O_PUT ? FY_STORE_PUT : FY_STORE_POST, &o->body, &o->life, o->stamp, 1, on_drop,
                                 &d);
        break;
    case O_DEL:
        rc = fy_store_delete(s, &l, 1, o->stamp);
        break;
    case O_FAIL:
        rc = fy_store_fail(s, &l, 1, o->stamp);
        break;
    case O_WIPE:
        rc = fy_store_wipe(s, o->stamp);
        break;
    case O_KILL:
        rc = fy_store_kill(s, &l, 1, fy_str(o->fam, strlen(o->fam)), o->stamp);
        break;
    }
    assert_int_equal(rc, FY_OK);
}

static int wipe_all(void *ctx, const fy_store_group_view_t *g)
{
    (void)ctx;
    (void)g;
    return 1;
}

/* Applies one change to a store without lww, as a single Pushgateway would take it (a failure is a rejected push). */
static void apply_plain(fy_store_t *s, const op_t *o)
{
    fy_store_label_t l;
    char buf[16];
    gk_of(o->g, &l, buf);
    switch (o->k) {
    case O_PUT:
    case O_POST:
        fy_store_push_life(s, &l, 1, o->k == O_PUT ? FY_STORE_PUT : FY_STORE_POST, &o->body, &o->life, o->stamp, 0, NULL);
        break;
    case O_DEL:
        fy_store_delete(s, &l, 1, o->stamp);
        break;
    case O_FAIL: {
        static op_t bad = {.text = "bad 1 1000\n"}; /* a timestamp: rejected before anything else */
        if (bad.arena == NULL)
            op_parse(&bad);
        assert_int_equal(fy_store_push(s, &l, 1, FY_STORE_POST, &bad.body, o->stamp, 0, NULL), FY_SERR_INVALID);
        break;
    }
    case O_WIPE:
        fy_store_delete_where(s, wipe_all, NULL);
        break;
    case O_KILL:
        fail_msg("no kills without lww");
    }
}

static fy_store_t *lww_store(void)
{
    fy_store_config_t cfg = {0};
    cfg.nshards = 4;
    cfg.nstripes = 16;
    cfg.lww = 1;
    return fy_store_create(&cfg);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The table. Stamps are whole seconds, so push_time_seconds shows them as they are written. */

#define OP(kind, grp, sec, txt)                                                                                                    \
    {                                                                                                                              \
        .k = (kind), .g = (grp), .stamp = (sec)*SEC, .text = (txt)                                                                 \
    }
#define KILL(grp, sec, name)                                                                                                       \
    {                                                                                                                              \
        .k = O_KILL, .g = (grp), .stamp = (sec)*SEC, .fam = name                                                                   \
    }
#define TS(g, push, fail)                                                                                                          \
    "# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n"                        \
    "# TYPE push_failure_time_seconds gauge\n"                                                                                     \
    "push_failure_time_seconds{instance=\"\",job=\"g" #g "\"} " #fail "\n"                                                         \
    "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n"                             \
    "# TYPE push_time_seconds gauge\n"                                                                                             \
    "push_time_seconds{instance=\"\",job=\"g" #g "\"} " #push "\n"

typedef struct {
    op_t ops[8];
    size_t nops;
    const char *want; /* text scrape */
    const char *note;
} lww_case_t;

static const char *const A1 = "# TYPE a counter\na 1\n", *const B1 = "# TYPE b counter\nb 1\n",
                         *const B2 = "# TYPE b counter\nb 2\n", *const C2 = "# TYPE c counter\nc 2\n";

/* Applies ops to a fresh store, then the kills (those every order reported: as the replication layer delivers them
 * to every replica), and compares the scrape; with want NULL only collects the kills the ops report. */
static void check_case(const lww_case_t *c, const op_t *ops, size_t nops, const char *how, kills_t *ks)
{
    fy_store_t *s = lww_store();
    kills_t mine = {0};
    for (size_t i = 0; i < nops; i++)
        apply_lww(s, &ops[i], c ? &mine : ks);
    if (c) {
        for (size_t i = 0; i < ks->n; i++)
            apply_lww(s, &ks->v[i], &mine);
        char *t = render_text(s, NULL);
        if (strcmp(t, c->want) != 0)
            fail_msg("%s (%s):\n got:\n%s\nwant:\n%s", c->note, how, t, c->want);
        free(t);
    }
    free(mine.v);
    fy_store_destroy(s);
}

static void test_table(void **state)
{
    (void)state;
    /* clang-format off */
    static lww_case_t cases[] = {
        {{OP(O_PUT, 0, 1, "# TYPE a counter\na 1\n# TYPE b counter\nb 1\n"), OP(O_POST, 0, 2, "# TYPE b counter\nb 2\n# TYPE c counter\nc 2\n")}, 2,
         "# TYPE a counter\na{instance=\"\",job=\"g0\"} 1\n# TYPE b counter\nb{instance=\"\",job=\"g0\"} 2\n# TYPE c counter\nc{instance=\"\",job=\"g0\"} 2\n" TS(0, 2, 0),
         "PUT a,b then POST b',c: a, b', c (E15)"},
        {{OP(O_POST, 0, 1, "# TYPE b counter\nb 2\n# TYPE c counter\nc 2\n"), OP(O_PUT, 0, 2, "# TYPE a counter\na 1\n# TYPE b counter\nb 1\n")}, 2,
         "# TYPE a counter\na{instance=\"\",job=\"g0\"} 1\n# TYPE b counter\nb{instance=\"\",job=\"g0\"} 1\n" TS(0, 2, 0),
         "POST then a newer PUT: the PUT's families only"},
        {{OP(O_PUT, 0, 2, "# TYPE a counter\na 1\n"), OP(O_POST, 0, 1, "# TYPE a counter\na 9\n# TYPE c counter\nc 2\n")}, 2,
         "# TYPE a counter\na{instance=\"\",job=\"g0\"} 1\n" TS(0, 2, 0),
         "an older POST arriving after a PUT is cleared by it"},
        {{OP(O_PUT, 0, 1, "# TYPE a counter\na 1\n"), OP(O_DEL, 0, 2, NULL)}, 2, "", "DELETE after a push: gone"},
        {{OP(O_DEL, 0, 2, NULL), OP(O_PUT, 0, 1, "# TYPE a counter\na 1\n")}, 2, "", "an older push after DELETE: the tombstone keeps it out"},
        {{OP(O_DEL, 0, 1, NULL), OP(O_PUT, 0, 2, "# TYPE a counter\na 1\n")}, 2,
         "# TYPE a counter\na{instance=\"\",job=\"g0\"} 1\n" TS(0, 2, 0), "a newer push after DELETE"},
        {{OP(O_PUT, 0, 1, A1), OP(O_POST, 0, 3, C2), OP(O_DEL, 0, 2, NULL)}, 3,
         "# TYPE c counter\nc{instance=\"\",job=\"g0\"} 2\n" TS(0, 3, 0), "a POST after DELETE only has its own families"},
        {{OP(O_FAIL, 0, 1, NULL)}, 1, TS(0, 0, 1), "FAIL creates the group with push time 0"},
        {{OP(O_FAIL, 0, 1, NULL), OP(O_DEL, 0, 2, NULL)}, 2, "", "FAIL then DELETE: gone"},
        {{OP(O_DEL, 0, 2, NULL), OP(O_FAIL, 0, 1, NULL)}, 2, "", "an older FAIL after DELETE: nothing"},
        {{OP(O_FAIL, 0, 1, NULL), OP(O_PUT, 0, 2, A1)}, 2,
         "# TYPE a counter\na{instance=\"\",job=\"g0\"} 1\n" TS(0, 2, 1), "a PUT keeps the failure time"},
        {{OP(O_PUT, 0, 2, A1), OP(O_FAIL, 0, 1, NULL)}, 2,
         "# TYPE a counter\na{instance=\"\",job=\"g0\"} 1\n" TS(0, 2, 1), "an older FAIL after a PUT: still recorded"},
        {{OP(O_PUT, 0, 1, A1), KILL(0, 2, "a")}, 2, TS(0, 1, 2), "a kill after the instance removes it and records a failure"},
        {{KILL(0, 2, "a"), OP(O_PUT, 0, 1, "# TYPE a counter\na 1\n# TYPE b counter\nb 1\n")}, 2,
         "# TYPE b counter\nb{instance=\"\",job=\"g0\"} 1\n" TS(0, 1, 2), "a kill before the instance: the family is skipped"},
        {{KILL(0, 1, "a"), OP(O_POST, 0, 2, A1)}, 2,
         "# TYPE a counter\na{instance=\"\",job=\"g0\"} 1\n" TS(0, 2, 1), "a newer instance survives an older kill"},
        {{OP(O_PUT, 0, 1, A1), OP(O_PUT, 1, 3, B1), {.k = O_WIPE, .stamp = 2 * SEC}}, 3,
         "# TYPE b counter\nb{instance=\"\",job=\"g1\"} 1\n" TS(1, 3, 0), "wipe removes what is older"},
        {{{.k = O_WIPE, .stamp = 2 * SEC}, OP(O_PUT, 0, 1, A1), OP(O_FAIL, 1, 1, NULL)}, 3, "", "an older push or failure after a wipe: nothing"},
        {{OP(O_PUT, 0, 1, A1), OP(O_POST, 0, 2, B2), OP(O_PUT, 0, 1, A1), OP(O_POST, 0, 2, B2), OP(O_DEL, 0, 3, NULL), OP(O_DEL, 0, 3, NULL)}, 6,
         "", "duplicates change nothing"},
        {{OP(O_PUT, 0, 1, "# TYPE x counter\nx 1\n"), OP(O_PUT, 1, 2, "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n")}, 2,
         "# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n"
         "# TYPE push_failure_time_seconds gauge\n"
         "push_failure_time_seconds{instance=\"\",job=\"g0\"} 1\npush_failure_time_seconds{instance=\"\",job=\"g1\"} 2\n"
         "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n"
         "# TYPE push_time_seconds gauge\n"
         "push_time_seconds{instance=\"\",job=\"g0\"} 1\npush_time_seconds{instance=\"\",job=\"g1\"} 2\n"
         "# TYPE y gauge\ny{instance=\"\",job=\"g1\"} 1\n",
         "a type clash: whichever arrives second is dropped, and the kills delivered then remove both instances"},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lww_case_t *c = &cases[i];
        for (size_t k = 0; k < c->nops; k++)
            op_parse(&c->ops[k]);
        op_t rev[8], dup[16];
        for (size_t k = 0; k < c->nops; k++)
            rev[k] = c->ops[c->nops - 1 - k];
        for (size_t k = 0; k < c->nops; k++)
            dup[2 * k] = dup[2 * k + 1] = c->ops[k];
        kills_t ks = {0};
        check_case(NULL, c->ops, c->nops, NULL, &ks);
        check_case(NULL, rev, c->nops, NULL, &ks);
        check_case(c, c->ops, c->nops, "as listed", &ks);
        check_case(c, rev, c->nops, "reversed", &ks);
        check_case(c, dup, 2 * c->nops, "each twice", &ks);
        free(ks.v);
        for (size_t k = 0; k < c->nops; k++)
            free(c->ops[k].arena);
    }
}

typedef struct {
    fy_store_life_t l;
    int64_t ts, is;
} life_got_t;

static int life_cb(void *ctx, const fy_store_group_view_t *v)
{
    life_got_t *got = ctx;
    if (v->is_tombstone)
        return 0;
    got->l = v->life;
    got->ts = v->ttl_stamp_ns;
    got->is = v->interval_stamp_ns;
    return 0;
}

/* The life registers: each field its own LWW register, in any order; a DELETE hides older declarations. */
static void test_life_registers(void **state)
{
    (void)state;
    op_t ops[] = {
        {.k = O_PUT, .stamp = 1 * SEC, .text = "a 1\n", .life = {100 * SEC, 10 * SEC}},
        {.k = O_POST, .stamp = 2 * SEC, .text = "", .life = {200 * SEC, 0}},
        {.k = O_POST, .stamp = 3 * SEC, .text = "", .life = {0, FY_LIFE_NONE}},
    };
    for (int order = 0; order < 6; order++) {
        static const int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        fy_store_t *s = lww_store();
        kills_t ks = {0};
        for (int i = 0; i < 3; i++) {
            op_parse(&ops[perm[order][i]]);
            apply_lww(s, &ops[perm[order][i]], &ks);
            free(ops[perm[order][i]].arena);
        }
        life_got_t got = {{0, 0}, 0, 0};
        fy_store_foreach_changed_since(s, 0, life_cb, &got);
        if (got.l.ttl_ns != 200 * SEC || got.l.interval_ns != FY_LIFE_NONE || got.ts != 2 * SEC || got.is != 3 * SEC)
            fail_msg("order %d: ttl %lld@%lld interval %lld@%lld", order, (long long)got.l.ttl_ns, (long long)got.ts,
                     (long long)got.l.interval_ns, (long long)got.is);
        fy_store_label_t l;
        char buf[16];
        gk_of(0, &l, buf);
        fy_store_delete(s, &l, 1, 4 * SEC);
        op_t late = {.k = O_POST, .stamp = 5 * SEC, .text = "", .life = {0, 0}};
        op_parse(&late);
        apply_lww(s, &late, &ks);
        got.l.ttl_ns = -5;
        fy_store_foreach_changed_since(s, 0, life_cb, &got);
        if (got.l.ttl_ns != 0 || got.l.interval_ns != 0)
            fail_msg("order %d: after DELETE ttl %lld interval %lld", order, (long long)got.l.ttl_ns, (long long)got.l.interval_ns);
        free(ks.v);
        fy_store_destroy(s);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The merge laws, as a property over random histories. */

static uint64_t rnd_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rnd(uint64_t *x, uint32_t n)
{
    return (uint32_t)(rnd_next(x) % n);
}

static void shuffle(op_t *v, size_t n, uint64_t *x)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd(x, (uint32_t)i);
        op_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* A permutation of ops with random duplicates. */
static size_t deliveries(const op_t *ops, size_t n, op_t *out, uint64_t *x)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        out[m++] = ops[i];
        if (rnd(x, 4) == 0)
            out[m++] = ops[i];
    }
    shuffle(out, m, x);
    return m;
}

/* A group's state as fy_store_foreach_changed_since shows it, copied out of the callback. */
typedef struct {
    int g;
    fy_store_merge_group_t m;
    fy_store_kill_t kills[8];
    char killnames[8][16];
    char text[4096];
    size_t tlen;
    char famnames[8][16];
    int64_t famstamps[8];
    uint32_t nfams;
    fy_body_t body;
    int64_t stamps[8];
    void *arena;
    fy_store_label_t label;
    char gbuf[16];
} gstate_t;

typedef struct {
    gstate_t v[64];
    size_t n;
} transfer_t;

static int collect_cb(void *ctx, const fy_store_group_view_t *v)
{
    transfer_t *t = ctx;
    assert_true(t->n < 64);
    gstate_t *s = &t->v[t->n++];
    memset(s, 0, sizeof(*s));
    assert_int_equal(v->nlabels, 1);
    char num[16]; /* the value is not NUL-terminated */
    snprintf(num, sizeof(num), "%.*s", (int)v->labels[0].value.len - 1, v->labels[0].value.ptr + 1);
    s->g = atoi(num);
    s->m.is_tombstone = v->is_tombstone;
    s->m.clear_ns = v->clear_ns;
    s->m.del_ns = v->del_ns;
    s->m.push_ns = v->push_ns;
    s->m.fail_ns = v->fail_ns;
    s->m.life = v->life;
    s->m.ttl_stamp_ns = v->ttl_stamp_ns;
    s->m.interval_stamp_ns = v->interval_stamp_ns;
    assert_true(v->nkills <= 8);
    for (uint32_t i = 0; i < v->nkills; i++) {
        snprintf(s->killnames[i], 16, "%.*s", (int)v->kills[i].name.len, v->kills[i].name.ptr);
        s->kills[i].name = fy_str(s->killnames[i], strlen(s->killnames[i]));
        s->kills[i].stamp = v->kills[i].stamp;
    }
    s->m.nkills = v->nkills;
    s->m.kills = s->kills;
    /* the families as text, to be parsed again */
    assert_true(v->nfamilies <= 8);
    for (uint32_t i = 0; i < v->nfamilies; i++) {
        const fy_store_family_view_t *f = &v->families[i];
        char fam[16]; /* a local copy: GCC cannot tell that famnames and text do not overlap (-Werror=restrict) */
        snprintf(fam, sizeof(fam), "%.*s", (int)f->name.len, f->name.ptr);
        memcpy(s->famnames[i], fam, sizeof(fam));
        s->famstamps[i] = f->stamp_ns;
        s->tlen += (size_t)snprintf(s->text + s->tlen, sizeof(s->text) - s->tlen, "# TYPE %s %s\n", fam,
                                    f->type == FY_TYPE_COUNTER ? "counter" : "gauge");
        for (uint32_t k = 0; k < f->nseries; k++) {
            const fy_store_series_view_t *se = &f->series[k];
            s->tlen += (size_t)snprintf(s->text + s->tlen, sizeof(s->text) - s->tlen, "%s{", fam);
            for (uint32_t j = 0; j < se->nlabels; j++)
                s->tlen += (size_t)snprintf(s->text + s->tlen, sizeof(s->text) - s->tlen, "%s%.*s=\"%.*s\"", j ? "," : "",
                                            (int)se->labels[j].name.len, se->labels[j].name.ptr, (int)se->labels[j].value.len,
                                            se->labels[j].value.ptr);
            s->tlen += (size_t)snprintf(s->text + s->tlen, sizeof(s->text) - s->tlen, "} %.17g\n", se->value);
        }
        assert_true(s->tlen < sizeof(s->text) - 1);
    }
    s->nfams = v->nfamilies;
    return 0;
}

static void transfer_apply(fy_store_t *dst, transfer_t *t, kills_t *ks)
{
    for (size_t i = 0; i < t->n; i++) {
        gstate_t *s = &t->v[i];
        op_t o = {.text = s->text};
        op_parse(&o);
        s->body = o.body;
        for (uint32_t k = 0; k < s->body.nfamilies; k++) {
            s->stamps[k] = 0;
            for (uint32_t j = 0; j < s->nfams; j++)
                if (fy_str_eq(s->body.families[k].name, fy_str(s->famnames[j], strlen(s->famnames[j]))))
                    s->stamps[k] = s->famstamps[j];
            assert_true(s->stamps[k] != 0);
        }
        gk_of(s->g, &s->label, s->gbuf);
        s->m.labels = &s->label;
        s->m.nlabels = 1;
        s->m.body = &s->body;
        s->m.family_stamps = s->stamps;
        /* a dropped family here is reported at no single stamp: kill it at each family's own */
        for (uint32_t k = 0; k < s->body.nfamilies; k++) {
            fy_body_t one = {&s->body.families[k], 1, s->body.families[k].nseries};
            drop_ctx_t d = {ks, s->g, s->stamps[k]};
            fy_store_merge_group_t m1 = s->m;
            m1.body = &one;
            m1.family_stamps = &s->stamps[k];
            assert_int_equal(fy_store_merge_group(dst, &m1, on_drop, &d), FY_OK);
        }
        fy_store_merge_group_t m0 = s->m;
        m0.body = NULL;
        drop_ctx_t d0 = {ks, s->g, 0};
        assert_int_equal(fy_store_merge_group(dst, &m0, on_drop, &d0), FY_OK);
        free(o.arena);
    }
}

static int any_clash(const op_t *ops, size_t n)
{
    int type[4] = {-1, -1, -1, -1};
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < ops[i].body.nfamilies; k++) {
            const fy_family_t *f = &ops[i].body.families[k];
            int m = f->name.ptr[1] - '0';
            if (type[m] >= 0 && type[m] != f->type)
                return 1;
            type[m] = f->type;
        }
    return 0;
}

/* One history: returns 1 if it had no type clash and no kills (and was compared with a store without lww). */
static int run_history(uint64_t seed)
{
    uint64_t x = seed;
    op_t ops[64];
    char bodies[64][512];
    size_t n = 1 + rnd(&x, 64);
    int ngroups = 1 + (int)rnd(&x, 8);
    int fixed_types = rnd(&x, 2) == 0;
    int ftype[4];
    for (int m = 0; m < 4; m++)
        ftype[m] = rnd(&x, 2) ? FY_TYPE_COUNTER : FY_TYPE_GAUGE;
    int64_t stamp = 1000;
    for (size_t i = 0; i < n; i++) {
        op_t *o = &ops[i];
        memset(o, 0, sizeof(*o));
        stamp += 16 + (int64_t)rnd(&x, 64); /* unique, increasing; the low bits as a replica's slot */
        o->stamp = stamp;
        o->g = (int)rnd(&x, (uint32_t)ngroups);
        uint32_t r = rnd(&x, 100);
        o->k = r < 35 ? O_PUT : r < 70 ? O_POST : r < 82 ? O_DEL : r < 95 ? O_FAIL : O_WIPE;
        if (o->k == O_PUT || o->k == O_POST) {
            size_t bl = 0;
            unsigned mask = rnd(&x, 16);
            for (int m = 0; m < 4; m++) {
                if (!(mask & (1u << m)))
                    continue;
                int t = fixed_types ? ftype[m] : rnd(&x, 2) ? FY_TYPE_COUNTER : FY_TYPE_GAUGE;
                bl += (size_t)snprintf(bodies[i] + bl, sizeof(bodies[i]) - bl, "# TYPE m%d %s\n", m,
                                       t == FY_TYPE_COUNTER ? "counter" : "gauge");
                int ns = 1 + (int)rnd(&x, 2);
                for (int k = 0; k < ns; k++)
                    bl += (size_t)snprintf(bodies[i] + bl, sizeof(bodies[i]) - bl, "m%d{a=\"%d\"} %u\n", m, k, rnd(&x, 100));
            }
            bodies[i][bl] = 0;
            o->text = bodies[i];
            /* declarations far beyond the history's stamps: nothing expires (expiry is not order-independent) */
            uint32_t lr = rnd(&x, 8);
            if (lr == 1)
                o->life.ttl_ns = 1000 * SEC + rnd(&x, 3);
            if (lr == 2)
                o->life.interval_ns = rnd(&x, 2) ? FY_LIFE_NONE : 1000 * SEC + rnd(&x, 3);
            if (lr == 3)
                o->life.ttl_ns = FY_LIFE_NONE, o->life.interval_ns = 2000 * SEC;
        }
        op_parse(o);
    }
    kills_t ks = {0};
    fy_store_t *st[4];
    for (int i = 0; i < 4; i++)
        st[i] = lww_store();
    size_t nd[3];
    op_t *perm[3];
    for (int i = 0; i < 3; i++) {
        perm[i] = malloc(2 * n * sizeof(op_t));
        nd[i] = deliveries(ops, n, perm[i], &x);
    }
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < nd[i]; k++)
            apply_lww(st[i], &perm[i][k], &ks);
    /* store 2: a prefix of its deliveries goes to store 3, whose state arrives by transfer; then the rest */
    size_t cut = rnd(&x, (uint32_t)nd[2] + 1);
    for (size_t k = 0; k < cut; k++)
        apply_lww(st[3], &perm[2][k], &ks);
    static transfer_t tr;
    tr.n = 0;
    assert_int_equal(fy_store_foreach_changed_since(st[3], 0, collect_cb, &tr), 0);
    if (fy_store_wipe_stamp(st[3]))
        fy_store_wipe(st[2], fy_store_wipe_stamp(st[3]));
    transfer_apply(st[2], &tr, &ks);
    for (size_t k = cut; k < nd[2]; k++)
        apply_lww(st[2], &perm[2][k], &ks);
    /* every kill any store reported reaches every store, in any order, maybe twice */
    size_t nk = ks.n;
    op_t *kl = malloc((2 * nk + 1) * sizeof(op_t));
    for (int i = 0; i < 3; i++) {
        size_t m = deliveries(ks.v, nk, kl, &x);
        for (size_t k = 0; k < m; k++)
            apply_lww(st[i], &kl[k], &ks);
    }
    assert_int_equal(ks.n, nk); /* kills drop nothing */
    char *t0 = render_text(st[0], NULL), *j0 = render_json(st[0]);
    for (int i = 1; i < 3; i++) {
        char *t = render_text(st[i], NULL), *j = render_json(st[i]);
        if (strcmp(t, t0) != 0 || strcmp(j, j0) != 0) {
            if (getenv("FY_LWW_DUMP")) { /* the whole renders, for a diff (cmocka cuts long messages) */
                FILE *f = fopen(getenv("FY_LWW_DUMP"), "w");
                fprintf(f, "--- text 0\n%s\n--- text %d\n%s\n--- json 0\n%s\n--- json %d\n%s\n", t0, i, t, j0, i, j);
                fclose(f);
            }
            fail_msg(
                "history seed %llu (replay: FY_LWW_SEED=%llu): store %d differs from store 0\n--- store 0:\n%s\n--- store %d:\n%s\n"
                "--- json 0:\n%s\n--- json %d:\n%s",
                (unsigned long long)seed, (unsigned long long)seed, i, t0, i, t, j0, i, j);
        }
        free(t);
        free(j);
    }
    int plain = !any_clash(ops, n) && nk == 0;
    if (plain) {
        fy_store_config_t cfg = {0};
        cfg.nshards = 4;
        cfg.nstripes = 16;
        fy_store_t *p = fy_store_create(&cfg);
        for (size_t i = 0; i < n; i++)
            apply_plain(p, &ops[i]);
        char *t = render_text(p, NULL);
        if (strcmp(t, t0) != 0)
            fail_msg("history seed %llu (replay: FY_LWW_SEED=%llu): differs from the store without lww\n--- lww:\n%s\n--- "
                     "without:\n%s",
                     (unsigned long long)seed, (unsigned long long)seed, t0, t);
        free(t);
        fy_store_destroy(p);
    }
    free(t0);
    free(j0);
    for (int i = 0; i < 4; i++)
        fy_store_destroy(st[i]);
    for (int i = 0; i < 3; i++)
        free(perm[i]);
    free(kl);
    free(ks.v);
    for (size_t i = 0; i < n; i++)
        free(ops[i].arena);
    return plain;
}

static void test_merge_laws(void **state)
{
    (void)state;
    const char *e = getenv("FY_LWW_SEED");
    if (e) {
        run_history(strtoull(e, NULL, 10));
        return;
    }
    e = getenv("FY_LWW_HISTORIES");
    uint64_t n = e ? strtoull(e, NULL, 10) : 2000, plain = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < n; i++)
        plain += (uint64_t)run_history(0x5eed0000ull + i);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%llu histories (%llu also against the store without lww) in %.2f s\n", (unsigned long long)n, (unsigned long long)plain,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_life_registers),
        cmocka_unit_test(test_merge_laws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
