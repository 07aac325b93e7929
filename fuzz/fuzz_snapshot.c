/*
 * fuzz_snapshot.c: libFuzzer target for one group record of Ferry's snapshot (src/persist.c, load_group), restored
 * through the change path into an empty store, as start-up does. Any input is either restored (the store then holds
 * that one group), refused by the store (logged; at most that group is left), or refused as malformed with a message
 * and nothing stored; the store renders afterwards; nothing reads outside the record (ASan).
 */
#define _GNU_SOURCE
#include "../src/core/life.c"
#include "../src/core/bulk.c"
#include "../src/core/reaper.c"
#include "../src/common/grow.c"
#include "../src/common/url.c"
#include "../src/core/change.c"
#include "../src/common/crc32c.c"
#include "../src/common/cpus.c"
#include "../src/common/flags.c"
#include "../src/persist/gobimport.c"
#include "../src/common/log.c"
#include "../src/persist/grouprec.c"
#include "../src/persist/persist.c"
#include "../src/persist/persist_log.c"
#include "../src/persist/persist_snap.c"
#include "../src/core/push.c"
#include "../src/http/router.c"
#include "../src/core/selfmetrics.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_group(void *ctx, const fy_store_group_view_t *g)
{
    (void)g;
    (*(int *)ctx)++;
    return 0;
}

static int sink(void *ctx, const char *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        fy_log_setup("error", "logfmt");
        quiet = 1;
    }
    fy_store_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    fy_store_t *store = fy_store_create(&cfg);
    fy_core_t core;
    fy_push_limits_t lim = {0, 0, 0};
    fy_core_init(&core, store, &lim, NULL);
    fy_persist_t p;
    memset(&p, 0, sizeof(p));
    p.core = &core;
    p.store = store;
    p.path = "fuzz.snapshot";
    char err[512] = "";
    load_t L = {&p, 0, 0, err, sizeof(err)};
    uint8_t *rec = malloc(size ? size : 1);
    memcpy(rec, data, size);
    int rc = load_group(&L, rec, size);
    int groups = 0;
    fy_store_foreach_group(store, count_group, &groups);
    /* a record the store refuses may still leave its group behind with a failure time, as a refused push does */
    if (rc == 0)
        CHECK(groups <= 1 && (L.groups == 0 || groups == 1));
    else
        CHECK(err[0] != '\0' && groups == 0);
    fy_body_t own;
    memset(&own, 0, sizeof(own));
    CHECK(fy_store_render_text(store, &own, 1 << 16, sink, NULL) == 0);
    free(rec);
    fy_core_dispose(&core);
    fy_store_destroy(store);
    return 0;
}
