/*
 * test_http_gen.c: the generations a reload publishes (src/http/gen.c): which generation a holder sees after each
 * step, when each one is destroyed (only after its last holder let go, exactly once), and the same under threads:
 * readers that refresh at their quiescent points and keep some generations longer (as a password check does) while
 * a writer publishes, never see a destroyed object. Runs under TSan (make test-tsan) and ASan.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "../src/http/gen.c"

#define LIVE 0x5AFEC0DEu
#define DEAD 0xDEADDEADu

typedef struct {
    unsigned canary; /* LIVE until destroyed */
    unsigned value;  /* what the generation was published with */
} obj_t;

static atomic_uint destroyed;

static void destroy_obj(void *p)
{
    obj_t *o = p;
    assert_int_equal(o->canary, LIVE); /* destroyed once */
    o->canary = DEAD;
    atomic_fetch_add(&destroyed, 1);
    free(o);
}

static obj_t *new_obj(unsigned value)
{
    obj_t *o = malloc(sizeof(*o));
    assert_non_null(o);
    o->canary = LIVE;
    o->value = value;
    return o;
}

static unsigned value_of(const fy_gen_t *g)
{
    return g == NULL ? 0 : ((const obj_t *)g->obj)->value;
}

/* One slot, two loops (a, b) and a password check (c), step by step. */
static void test_steps(void **state)
{
    (void)state;
    enum { PUBLISH, REFRESH_A, REFRESH_B, TAKE_C, DROP_C, DISPOSE };
    static const struct {
        int op;
        unsigned arg;       /* PUBLISH: the new object's value */
        int changed;        /* REFRESH_*: what fy_gen_refresh returns */
        unsigned a, b, c;   /* the values the holders see afterwards (0: holds nothing) */
        unsigned destroyed; /* objects destroyed so far */
        const char *note;
    } steps[] = {
        {REFRESH_A, 0, 0, 0, 0, 0, 0, "nothing published: a loop holds nothing"},
        {PUBLISH, 1, 0, 0, 0, 0, 0, "start-up configuration"},
        {REFRESH_A, 0, 1, 1, 0, 0, 0, "loop a picks it up"},
        {REFRESH_A, 0, 0, 1, 0, 0, 0, "again: nothing new"},
        {REFRESH_B, 0, 1, 1, 1, 0, 0, "loop b picks it up"},
        {TAKE_C, 0, 0, 1, 1, 1, 0, "a password check on loop a takes a reference"},
        {PUBLISH, 2, 0, 1, 1, 1, 0, "reload: the slot lets go of 1, the loops still hold it"},
        {REFRESH_A, 0, 1, 2, 1, 1, 0, "loop a moves on"},
        {REFRESH_B, 0, 1, 2, 2, 1, 0, "loop b moves on; the check still holds 1"},
        {DROP_C, 0, 0, 2, 2, 0, 1, "the check is done: 1 is destroyed"},
        {PUBLISH, 3, 0, 2, 2, 0, 1, "second reload"},
        {PUBLISH, 4, 0, 2, 2, 0, 2, "third reload before any loop refreshed: 3 had no holder but the slot"},
        {REFRESH_A, 0, 1, 4, 2, 0, 2, "loop a skips to 4"},
        {REFRESH_B, 0, 1, 4, 4, 0, 3, "loop b too: 2 is destroyed"},
        {DISPOSE, 0, 0, 4, 4, 0, 3, "shutdown: the slot lets go; the loops still hold 4"},
        {REFRESH_A, 0, 1, 0, 4, 0, 3, "a loop refreshing after the slot is gone lets go too"},
        {REFRESH_B, 0, 1, 0, 0, 0, 4, "the last holder: 4 is destroyed"},
    };
    fy_gen_slot_t slot;
    fy_gen_t *a = NULL, *b = NULL, *c = NULL;
    atomic_store(&destroyed, 0);
    fy_gen_slot_init(&slot);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int changed = 0;
        switch (steps[i].op) {
        case PUBLISH:
            assert_int_equal(fy_gen_publish(&slot, new_obj(steps[i].arg), destroy_obj), steps[i].arg);
            assert_int_equal(fy_gen_current_id(&slot), steps[i].arg);
            break;
        case REFRESH_A:
            changed = fy_gen_refresh(&slot, &a);
            break;
        case REFRESH_B:
            changed = fy_gen_refresh(&slot, &b);
            break;
        case TAKE_C:
            c = fy_gen_ref(a);
            break;
        case DROP_C:
            fy_gen_unref(c);
            c = NULL;
            break;
        case DISPOSE:
            fy_gen_slot_dispose(&slot);
            fy_gen_slot_init(&slot); /* an empty slot again, for the refreshes after it */
            break;
        }
        if (changed != steps[i].changed || value_of(a) != steps[i].a || value_of(b) != steps[i].b || value_of(c) != steps[i].c ||
            atomic_load(&destroyed) != steps[i].destroyed)
            fail_msg("step %zu (%s): changed %d a %u b %u c %u destroyed %u", i, steps[i].note, changed, value_of(a), value_of(b),
                     value_of(c), atomic_load(&destroyed));
    }
    assert_int_equal(fy_gen_current(&slot), NULL);
    fy_gen_slot_dispose(&slot);
}

/* A writer publishes for as long as readers refresh between "requests", read the object during each, and keep one
 * generation in three for a few more requests (a check in the auth pool). TSan sees every access; the canary
 * catches a use after destruction in any build. */
#define READERS 3
#define REQUESTS 100000 /* per reader */
#define KEEP 4

/* cmocka's assertions may only fail on the thread that runs the test */
#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "%s:%d: reader: %s\n", __FILE__, __LINE__, #cond);                                                     \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

static fy_gen_slot_t shared;
static atomic_int readers_done;
static atomic_uint changes_seen; /* refreshes that took up a newer generation, over all readers */

static void *reader(void *arg)
{
    (void)arg;
    fy_gen_t *held = NULL, *kept[KEEP] = {NULL};
    unsigned last = 0, seen = 0;
    for (unsigned n = 0; n < REQUESTS; n++) {
        seen += (unsigned)fy_gen_refresh(&shared, &held); /* the quiescent point */
        CHECK(held != NULL);
        const obj_t *o = held->obj; /* a request's use */
        CHECK(o->canary == LIVE);
        CHECK(o->value >= last); /* generations only go forward */
        CHECK(o->value == held->id);
        last = o->value;
        if (n % 3 == 0) {
            fy_gen_unref(kept[n % KEEP]); /* the oldest long use ends */
            kept[n % KEEP] = fy_gen_ref(held);
        }
        for (int k = 0; k < KEEP; k++)
            if (kept[k] != NULL)
                CHECK(((const obj_t *)kept[k]->obj)->canary == LIVE);
        if (n % 256 == 0)
            sched_yield(); /* spread the requests over many time slices, so that they interleave with publications */
    }
    for (int k = 0; k < KEEP; k++)
        fy_gen_unref(kept[k]);
    fy_gen_unref(held);
    atomic_fetch_add(&changes_seen, seen);
    atomic_fetch_add(&readers_done, 1);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    atomic_store(&destroyed, 0);
    atomic_store(&readers_done, 0);
    atomic_store(&changes_seen, 0);
    fy_gen_slot_init(&shared);
    assert_int_equal(fy_gen_publish(&shared, new_obj(1), destroy_obj), 1);
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
    unsigned v = 1;
    while (atomic_load(&readers_done) < READERS) { /* publishing throughout the readers' lifetime */
        v++;
        assert_int_equal(fy_gen_publish(&shared, new_obj(v), destroy_obj), v);
    }
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&destroyed), v - 1); /* every one but the current */
    fy_gen_slot_dispose(&shared);
    assert_int_equal(atomic_load(&destroyed), v);
    /* the readers did move between generations while the writer published (else the test proved nothing) */
    assert_true(atomic_load(&changes_seen) >= 10 * READERS);
    print_message("%u publications, %u generation changes seen by %d readers\n", v, atomic_load(&changes_seen), READERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
