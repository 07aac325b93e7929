/*
 * test_common_cpus.c: the default of --web.threads (src/common/cpus.c): cgroup v2 cpu.max and v1 cfs quota
 * parsing, finding the process's cgroup under a fake root (/proc/self/cgroup, /proc/self/mountinfo, the limit
 * files), and how quota and affinity combine.
 */
#define _GNU_SOURCE /* the included cpus.c uses CPU_ALLOC; it must come before any system header */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#include "../src/common/cpus.c"

/* cpu.max as the kernel (or a careless writer) leaves it */
static void test_quota_v2(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        double limit;
        const char *note;
    } cases[] = {
        {"150000 100000\n", 1, 1.5, "1.5 CPUs"},
        {"200000 100000\n", 1, 2, "2 CPUs exactly"},
        {"50000 100000\n", 1, 0.5, "half a CPU"},
        {"100000 50000", 1, 2, "no newline, short period"},
        {"max 100000\n", 0, 0, "no quota"},
        {"max\n", 0, 0, "max alone"},
        {"300000\n", 1, 3, "a quota alone: the default period (100 ms)"},
        {"", -1, 0, "empty"},
        {"\n", -1, 0, "a blank line"},
        {"0 100000\n", -1, 0, "zero quota"},
        {"100000 0\n", -1, 0, "zero period"},
        {"-1 100000\n", -1, 0, "v1's no-quota value is garbage here"},
        {"1.5 100000\n", -1, 0, "not an integer"},
        {"max max\n", -1, 0, "period max"},
        {"abc 100000\n", -1, 0, "garbage quota"},
        {"100000 100000 7\n", -1, 0, "a third field"},
        {"99999999999999999999999 100000", -1, 0, "overflow"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double limit = -7;
        int rc = fy_cpu_quota_v2(cases[i].in, &limit);
        if (rc != cases[i].rc || (rc == 1 && limit != cases[i].limit))
            fail_msg("cpu.max %s: got %d %g, want %d %g", cases[i].note, rc, limit, cases[i].rc, cases[i].limit);
    }
}

static void test_quota_v1(void **state)
{
    (void)state;
    static const struct {
        const char *quota, *period;
        int rc;
        double limit;
        const char *note;
    } cases[] = {
        {"150000\n", "100000\n", 1, 1.5, "1.5 CPUs"}, {"400000\n", "100000\n", 1, 4, "4 CPUs"},
        {"-1\n", "100000\n", 0, 0, "no quota"},       {"-1\n", "garbage", 0, 0, "no quota: the period does not matter"},
        {"0\n", "100000\n", -1, 0, "zero quota"},     {"150000\n", "0\n", -1, 0, "zero period"},
        {"x\n", "100000\n", -1, 0, "garbage quota"},  {"150000\n", "", -1, 0, "empty period"},
        {"", "100000\n", -1, 0, "empty quota"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double limit = -7;
        int rc = fy_cpu_quota_v1(cases[i].quota, cases[i].period, &limit);
        if (rc != cases[i].rc || (rc == 1 && limit != cases[i].limit))
            fail_msg("cfs %s: got %d %g, want %d %g", cases[i].note, rc, limit, cases[i].rc, cases[i].limit);
    }
}

/* Writes root/rel (creating its directories). */
static void put(const char *root, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define MI_V2 "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
#define MI_V1                                                                                                                      \
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"                                                          \
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"                                \
    "33 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
#define MI_HYBRID MI_V1 "34 31 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"

/* A whole layout under a temporary root: which file is found and what it gives. */
static void test_cgroup_layouts(void **state)
{
    (void)state;
    static const struct {
        const char *cgroup, *mountinfo;
        const char *files[3][2]; /* path under root, contents */
        int rc;
        double limit;
        const char *file; /* what is reported as read */
        const char *note;
    } cases[] = {
        {"0::/kubepods/pod1/c1\n",
         MI_V2,
         {{"sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "150000 100000\n"}},
         1,
         1.5,
         "/sys/fs/cgroup/kubepods/pod1/c1/cpu.max",
         "v2, a container's limit"},
        {"0::/\n",
         MI_V2,
         {{"sys/fs/cgroup/cpu.max", "250000 100000\n"}},
         1,
         2.5,
         "/sys/fs/cgroup/cpu.max",
         "v2 inside a cgroup namespace: the path is /"},
        {"0::/a\n", MI_V2, {{"sys/fs/cgroup/a/cpu.max", "max 100000\n"}}, 0, 0, "/sys/fs/cgroup/a/cpu.max", "v2, no quota"},
        {"0::/a\n",
         MI_V2,
         {{"sys/fs/cgroup/a/cpu.weight", "100\n"}},
         0,
         0,
         "/sys/fs/cgroup/a/cpu.max",
         "v2, no cpu.max (the cpu controller is off there)"},
        {"0::/a\n", MI_V2, {{"sys/fs/cgroup/a/cpu.max", "lots\n"}}, -1, 0, "/sys/fs/cgroup/a/cpu.max", "v2, garbage"},
        {"0::/a\n", "", {{"sys/fs/cgroup/a/cpu.max", "100000 100000\n"}}, 0, 0, "", "v2, not mounted"},
        {"0::/a/b\n",
         "30 23 0:26 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
         {{"sys/fs/cgroup/b/cpu.max", "300000 100000\n"}},
         1,
         3,
         "/sys/fs/cgroup/b/cpu.max",
         "v2 mounted from a sub-tree: the path is relative to the mount's root"},
        {"0::/elsewhere\n",
         "30 23 0:26 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
         {{NULL, NULL}},
         0,
         0,
         "",
         "v2, the cgroup is outside the mounted sub-tree"},
        {"0::/a\n",
         "30 23 0:26 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n",
         {{"sys/fs/my cgroup/a/cpu.max", "100000 100000\n"}},
         1,
         1,
         "/sys/fs/my cgroup/a/cpu.max",
         "v2, an escaped space in the mount point"},
        {"4:cpu,cpuacct:/docker/abc\n0::/init.scope\n",
         MI_HYBRID,
         {{"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n"},
          {"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n"}},
         1,
         1.5,
         "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
         "v1 (hybrid): the cpu controller's hierarchy wins over the unified one"},
        {"1:cpu:/\n",
         MI_V1,
         {{"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"}, {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"}},
         0,
         0,
         "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
         "v1, no quota (this machine's case)"},
        {"4:cpu,cpuacct:/x\n",
         MI_V1,
         {{"sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "5O000\n"},
          {"sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n"}},
         -1,
         0,
         "/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us",
         "v1, garbage quota"},
        {"4:cpuacct:/x\n3:cpuset:/x\n", MI_V1, {{NULL, NULL}}, 0, 0, "", "v1 without the cpu controller: no quota"},
        {"garbage\n", MI_V2, {{NULL, NULL}}, 0, 0, "", "a /proc/self/cgroup without any usable line"},
        {NULL, MI_V2, {{NULL, NULL}}, 0, 0, "", "no /proc/self/cgroup at all (not Linux, no cgroups)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char root[] = "/tmp/fy_cpus_XXXXXX";
        assert_non_null(mkdtemp(root));
        if (cases[i].cgroup != NULL)
            put(root, "proc/self/cgroup", cases[i].cgroup);
        put(root, "proc/self/mountinfo", cases[i].mountinfo);
        for (size_t k = 0; k < 3 && cases[i].files[k][0] != NULL; k++)
            put(root, cases[i].files[k][0], cases[i].files[k][1]);
        double limit = -7;
        char file[512], why[256];
        int rc = fy_cgroup_cpu_limit(root, &limit, file, sizeof(file), why, sizeof(why));
        if (rc != cases[i].rc || (rc == 1 && limit != cases[i].limit) || strcmp(file, cases[i].file) != 0)
            fail_msg("%s: got %d %g %s, want %d %g %s", cases[i].note, rc, limit, file, cases[i].rc, cases[i].limit, cases[i].file);
        if (rc < 0 && strstr(why, cases[i].file) == NULL)
            fail_msg("%s: the reason names no file: %s", cases[i].note, why);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        assert_int_equal(system(cmd), 0);
    }
}

/* The default: min(affinity, max(2, ceil(quota))). Affinity is this process's own, so each row is checked against
 * it: a quota above it changes nothing. */
static void test_default_combines(void **state)
{
    (void)state;
    int affinity = fy_cpus_affinity();
    static const struct {
        const char *cpu_max;
        int want; /* before the affinity cap */
        int from_quota;
        const char *note;
    } cases[] = {
        {"150000 100000\n", 2, 1, "1.5 rounds up to 2"},
        {"50000 100000\n", 2, 1, "below 2 CPUs: 2 loops, as Go"},
        {"300000 100000\n", 3, 1, "3"},
        {"310000 100000\n", 4, 1, "3.1 rounds up"},
        {"100000000 100000\n", 1000, 1, "far above the machine"},
        {"max 100000\n", 1 << 30, 0, "no quota: the affinity mask"},
        {"junk\n", 1 << 30, 0, "garbage: the affinity mask, and the reason"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char root[] = "/tmp/fy_cpus_XXXXXX";
        assert_non_null(mkdtemp(root));
        put(root, "proc/self/cgroup", "0::/c\n");
        put(root, "proc/self/mountinfo", MI_V2);
        put(root, "sys/fs/cgroup/c/cpu.max", cases[i].cpu_max);
        char how[512];
        int n = fy_cpus_default(root, how, sizeof(how));
        int want = cases[i].want < affinity ? cases[i].want : affinity;
        if (n != want)
            fail_msg("%s: got %d, want %d (affinity %d)", cases[i].note, n, want, affinity);
        int said_quota = strstr(how, "cgroup CPU quota of") != NULL;
        if (said_quota != (cases[i].from_quota && cases[i].want < affinity))
            fail_msg("%s: how %s", cases[i].note, how);
        if (strcmp(cases[i].cpu_max, "junk\n") == 0 && strstr(how, "ignored") == NULL)
            fail_msg("%s: a garbage file is not reported: %s", cases[i].note, how);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        assert_int_equal(system(cmd), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_v2),
        cmocka_unit_test(test_quota_v1),
        cmocka_unit_test(test_cgroup_layouts),
        cmocka_unit_test(test_default_combines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
