/*
 * cpus.c: the CPUs this process may use: its affinity mask and its cgroup's CPU quota (cpus.h). Nothing here fails
 * start-up: a cgroup file that cannot be read or understood means "no quota", and the caller logs why.
 */
#define _GNU_SOURCE /* CPU_ALLOC and sched_getaffinity */
#include "cpus.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 1024

int fy_cpus_affinity(void)
{
    for (int ncpu = 1024; ncpu <= 1 << 16; ncpu *= 2) { /* a mask too small for the machine fails with EINVAL */
        size_t size = CPU_ALLOC_SIZE(ncpu);
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (set == NULL)
            break;
        int ok = sched_getaffinity(0, size, set) == 0, n = ok ? CPU_COUNT_S(size, set) : 0, again = !ok && errno == EINVAL;
        CPU_FREE(set);
        if (n > 0)
            return n > MAX_THREADS ? MAX_THREADS : n;
        if (!again)
            break;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > MAX_THREADS ? MAX_THREADS : n > 0 ? (int)n : 1;
}

/* A positive decimal integer followed only by white space up to end (or NUL): 0 with *v, else -1. */
static int parse_pos(const char *s, const char *end, long long *v)
{
    char buf[32];
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    *v = strtoll(buf, NULL, 10);
    return errno == 0 && *v > 0 ? 0 : -1;
}

int fy_cpu_quota_v2(const char *cpu_max, double *limit)
{
    /* "$MAX $PERIOD\n"; the kernel writes both, a writer may give $MAX alone (the period is then 100000) */
    const char *s = cpu_max, *end = s + strlen(s);
    while (end > s && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    const char *qend = sp != NULL ? sp : end;
    long long quota, period = 100000;
    if (sp != NULL && parse_pos(sp + 1, end, &period) != 0)
        return -1;
    if ((size_t)(qend - s) == 3 && memcmp(s, "max", 3) == 0)
        return 0;
    if (parse_pos(s, qend, &quota) != 0)
        return -1;
    *limit = (double)quota / (double)period;
    return 1;
}

int fy_cpu_quota_v1(const char *quota, const char *period, double *limit)
{
    long long q, p;
    const char *qe = quota + strlen(quota);
    while (qe > quota && (qe[-1] == '\n' || qe[-1] == ' '))
        qe--;
    if ((size_t)(qe - quota) == 2 && memcmp(quota, "-1", 2) == 0)
        return 0;
    if (parse_pos(quota, qe, &q) != 0 || parse_pos(period, period + strlen(period), &p) != 0)
        return -1;
    *limit = (double)q / (double)p;
    return 1;
}

/* Reads a small file into buf (NUL-terminated); -1 if it cannot be opened or read. */
static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0';) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Is name one of the comma-separated items of list? */
static int in_list(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = list; *p != '\0';) {
        const char *c = strchr(p, ',');
        size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
        if (len == nl && memcmp(p, name, nl) == 0)
            return 1;
        if (c == NULL)
            break;
        p = c + 1;
    }
    return 0;
}

/* Finds the mount of the hierarchy: v2 (fstype cgroup2) or v1 (fstype cgroup with "cpu" among its super options).
 * Writes its mount root and mount point; 0 if found. */
static int find_mount(const char *mountinfo, int v1, char *mroot, size_t mrcap, char *mpoint, size_t mpcap)
{
    for (const char *line = mountinfo; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        char buf[4096];
        if (len < sizeof(buf)) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            /* id parent major:minor root mountpoint options [optional...] - fstype source superoptions */
            char *fields[8], *save = NULL, *dash = strstr(buf, " - ");
            int nf = 0;
            if (dash != NULL) {
                *dash = '\0';
                for (char *t = strtok_r(buf, " ", &save); t != NULL && nf < 5; t = strtok_r(NULL, " ", &save))
                    fields[nf++] = t;
                char *fstype = strtok_r(dash + 3, " ", &save), *source = strtok_r(NULL, " ", &save);
                char *superopts = source != NULL ? strtok_r(NULL, " ", &save) : NULL;
                int match = fstype != NULL && (v1 ? strcmp(fstype, "cgroup") == 0 && superopts != NULL && in_list(superopts, "cpu")
                                                  : strcmp(fstype, "cgroup2") == 0);
                if (nf == 5 && match) {
                    unescape_octal(fields[3]);
                    unescape_octal(fields[4]);
                    snprintf(mroot, mrcap, "%s", fields[3]);
                    snprintf(mpoint, mpcap, "%s", fields[4]);
                    return 0;
                }
            }
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return -1;
}

int fy_cgroup_cpu_limit(const char *root, double *limit, char *file, size_t filecap, char *why, size_t whycap)
{
    static char text[262144];                                      /* start-up only, one thread */
    char path[4608], cgpath[2048] = "", mroot[2048], mpoint[2048]; /* path: dir + a file name */
    int v1 = 0, found = 0;
    snprintf(why, whycap, "%s", "");
    snprintf(file, filecap, "%s", "");

    /* /proc/self/cgroup: "hierarchy-ID:controllers:path"; the v1 cpu controller wins over the v2 entry (hybrid
     * systems mount v2 without controllers) */
    snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
    if (read_small(path, text, sizeof(text)) != 0)
        return 0;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        if (in_list(c1 + 1, "cpu")) {
            snprintf(cgpath, sizeof(cgpath), "%s", c2 + 1);
            v1 = found = 1;
            break;
        }
        if (c1 - line == 1 && line[0] == '0' && c1[1] == '\0') {
            snprintf(cgpath, sizeof(cgpath), "%s", c2 + 1);
            found = 1;
        }
    }
    if (!found)
        return 0;

    snprintf(path, sizeof(path), "%s/proc/self/mountinfo", root);
    if (read_small(path, text, sizeof(text)) != 0 || find_mount(text, v1, mroot, sizeof(mroot), mpoint, sizeof(mpoint)) != 0)
        return 0;
    /* the cgroup's directory: its path relative to the mount's root, under the mount point (inside a cgroup
     * namespace the mount's root is "/" and the path is already relative to it) */
    const char *rel = cgpath;
    size_t rl = strlen(mroot);
    if (strcmp(mroot, "/") != 0) {
        if (strncmp(cgpath, mroot, rl) != 0 || (cgpath[rl] != '/' && cgpath[rl] != '\0'))
            return 0; /* the cgroup is outside what is mounted: nothing to read */
        rel = cgpath + rl;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s%s%s", root, mpoint, strcmp(rel, "/") == 0 ? "" : rel);

    char a[256], b[256];
    if (!v1) {
        snprintf(file, filecap, "%s%s/cpu.max", mpoint, strcmp(rel, "/") == 0 ? "" : rel);
        snprintf(path, sizeof(path), "%s/cpu.max", dir);
        if (read_small(path, a, sizeof(a)) != 0)
            return 0; /* the root cgroup has no cpu.max, nor a cgroup without the cpu controller */
        int r = fy_cpu_quota_v2(a, limit);
        if (r < 0)
            snprintf(why, whycap, "%s: not \"max PERIOD\" or \"QUOTA PERIOD\": %.40s", file, a);
        return r;
    }
    snprintf(file, filecap, "%s%s/cpu.cfs_quota_us", mpoint, strcmp(rel, "/") == 0 ? "" : rel);
    snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
    if (read_small(path, a, sizeof(a)) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
    if (read_small(path, b, sizeof(b)) != 0)
        return 0;
    int r = fy_cpu_quota_v1(a, b, limit);
    if (r < 0)
        snprintf(why, whycap, "%s, cpu.cfs_period_us: not -1 or two positive integers: %.40s / %.40s", file, a, b);
    return r;
}

int fy_cpus_default(const char *root, char *how, size_t howcap)
{
    int n = fy_cpus_affinity();
    double limit = 0;
    char file[512], why[256];
    int r = fy_cgroup_cpu_limit(root, &limit, file, sizeof(file), why, sizeof(why));
    if (r == 1) {
        double c = ceil(limit);
        int q = c < 2 ? 2 : c > MAX_THREADS ? MAX_THREADS : (int)c;
        if (q < n) {
            snprintf(how, howcap, "cgroup CPU quota of %g CPUs (%s), rounded up, at least 2", limit, file);
            return q;
        }
    }
    if (r < 0)
        snprintf(how, howcap, "affinity mask (cgroup CPU quota ignored: %s)", why);
    else
        snprintf(how, howcap, "affinity mask");
    return n;
}
