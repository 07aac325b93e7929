/*
 * test_store_header.c: store/store.h compiles on its own. This file includes nothing else, so the build is the test;
 * the run only uses a few of the header's declarations.
 */
#include "store.h"

int main(void)
{
    fy_store_config_t cfg = {0};
    cfg.nshards = 1;
    fy_store_t *s = fy_store_create(&cfg);
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    fy_store_destroy(s);
    return st.groups == 0 && FY_SERR_INVALID < 0 ? 0 : 1;
}
