/*
 * cpus.h: how many CPUs this process may use, for the default of --web.threads: the CPUs of its affinity mask
 * (taskset, cpusets), lowered to the CPU quota of its cgroup when one is set (a container's "CPU limit"), as Go 1.25
 * and later compute their default GOMAXPROCS. The cgroup part takes a root directory and the file contents as
 * arguments, so that tests can lay out any /proc and /sys/fs/cgroup they like.
 */
#ifndef FY_CPUS_H
#define FY_CPUS_H

#include <stddef.h>

/* cgroup v2 cpu.max ("150000 100000", "max 100000", a period alone is allowed): 1 with *limit = quota / period in
 * CPUs, 0 for no quota ("max"), -1 for anything else (garbage, a zero or negative value). */
int fy_cpu_quota_v2(const char *cpu_max, double *limit);

/* cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us contents: 1 with *limit, 0 for no quota (-1), -1 for garbage. */
int fy_cpu_quota_v1(const char *quota, const char *period, double *limit);

/* The CPU quota of the cgroup this process is in, read under root ("" for the real /proc and /sys): its entry in
 * root/proc/self/cgroup (the v1 "cpu" controller if there is one, else the v2 "0::" entry), that hierarchy's mount
 * in root/proc/self/mountinfo, then cpu.max (v2) or cpu.cfs_quota_us + cpu.cfs_period_us (v1) in the cgroup's
 * directory. Only that cgroup is read, not its parents (as Go: container runtimes put the limit on the leaf).
 * Returns 1 with *limit and the file read in file, 0 when no quota is set or nothing is found (no cgroup file, no
 * mount, a missing limit file), -1 when a file is malformed (why says which and how). */
int fy_cgroup_cpu_limit(const char *root, double *limit, char *file, size_t filecap, char *why, size_t whycap);

/* CPUs in this process's affinity mask (sched_getaffinity), at least 1, at most 1024. */
int fy_cpus_affinity(void);

/* The default loop count: min(affinity, max(2, ceil(limit))) when a quota is set, else the affinity count. A
 * quota below 2 CPUs still gives 2 loops, as Go does: the quota is spent over a period (100 ms), across any number
 * of CPUs, so a second loop costs nothing while one slow handler no longer stalls every other request. how says
 * where the number came from ("affinity mask" or "cgroup CPU quota (<file>: <quota>/<period>)"). */
int fy_cpus_default(const char *root, char *how, size_t howcap);

#endif
