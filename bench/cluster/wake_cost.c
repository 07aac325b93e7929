/*
 * wake_cost.c: the machine's price of one sleep/wake-up between two threads, the unit the replication benchmark's
 * CPU per acknowledged push is made of (scripts/bench-cluster.sh prints it beside its tables).
 *
 * Two threads ping-pong over a pair of eventfds, each blocking in read(2) until the other writes: every round trip is
 * two sleeps, two wake-ups and four system calls. Measured twice: threads left to the scheduler (each wake-up usually
 * lands on the other, idle, core: the case of a replication thread woken by a peer's frame) and both pinned to one
 * core (a wake-up that finds its core busy costs only the switch). On bare metal the two are a few microseconds
 * apart; on a VM, waking an idle virtual CPU exits to the host, and the first figure can be ten times the second.
 * Then the same with two processes (fork) instead of two threads: a switch between processes also switches address
 * spaces, which is what a wake-up between two replicas on one core costs (the benchmark's three replicas are three
 * processes).
 *
 * Usage: wake_cost [ROUND_TRIPS]   (default 100000). Prints one line per case: wall and CPU (utime+stime of both
 * threads or processes, getrusage) per round trip, in microseconds.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int ping, pong;
    long rounds;
} pair_t;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void signal_fd(int fd)
{
    uint64_t v = 1;
    if (write(fd, &v, sizeof(v)) != sizeof(v))
        die("write");
}

static void wait_fd(int fd)
{
    uint64_t v;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        die("read");
}

static void *answer(void *arg)
{
    pair_t *p = arg;
    for (long i = 0; i < p->rounds; i++) {
        wait_fd(p->ping);
        signal_fd(p->pong);
    }
    return NULL;
}

static double usec(struct timeval tv)
{
    return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

/* This process's CPU, and its waited-for children's */
static double cpu_usec(void)
{
    struct rusage ru, ch;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || getrusage(RUSAGE_CHILDREN, &ch) != 0)
        die("getrusage");
    return usec(ru.ru_utime) + usec(ru.ru_stime) + usec(ch.ru_utime) + usec(ch.ru_stime);
}

static double now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One case: the answering thread (procs: process) inherits the caller's affinity, so pinning the caller first pins
 * both. */
static void measure(const char *name, long rounds, int procs)
{
    pair_t p = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC), rounds};
    if (p.ping < 0 || p.pong < 0)
        die("eventfd");
    pthread_t t;
    pid_t child = -1;
    double cpu0 = cpu_usec(), wall0 = now_usec();
    if (procs) {
        if ((child = fork()) < 0)
            die("fork");
        if (child == 0) {
            answer(&p);
            _exit(0);
        }
    } else if (pthread_create(&t, NULL, answer, &p) != 0) {
        die("pthread_create");
    }
    for (long i = 0; i < rounds; i++) {
        signal_fd(p.ping);
        wait_fd(p.pong);
    }
    if (procs && waitpid(child, NULL, 0) != child)
        die("waitpid");
    if (!procs)
        pthread_join(t, NULL);
    double wall = now_usec() - wall0, cpu = cpu_usec() - cpu0;
    printf("wake_cost %-12s round trips %ld: wall %.2f us, cpu %.2f us per round trip (2 sleeps, 2 wake-ups)\n", name, rounds,
           wall / (double)rounds, cpu / (double)rounds);
    close(p.ping);
    close(p.pong);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 100000;
    if (rounds <= 0) {
        fprintf(stderr, "usage: wake_cost [ROUND_TRIPS > 0]\n");
        return 2;
    }
    measure("unpinned", rounds, 0);
    measure("processes", rounds, 1);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0)
        die("sched_setaffinity");
    measure("one-core", rounds, 0);
    measure("proc-1-core", rounds, 1);
    return 0;
}
