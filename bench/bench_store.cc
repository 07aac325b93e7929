// bench_store.cc: registers the store benchmark bodies (bench/store_bench.c) with Google Benchmark.
#include <benchmark/benchmark.h>

#include "bench_rand.h"
#include "store_bench.h"

#include <cstdlib>

static fy_bench_store_t *g_store[2];

// Where the store of range(0) groups (84 or 84,000) is, built once by thread 0 and kept for the other benchmarks.
// Other threads read it inside the timed loop, which starts after all threads have passed this (a barrier).
static fy_bench_store_t *const *store_of(benchmark::State &st)
{
    size_t ngroups = (size_t)st.range(0);
    int which = ngroups > 1000 ? 1 : 0;
    if (st.thread_index() == 0 && g_store[which] == nullptr)
        g_store[which] = fy_bench_store_new(ngroups);
    return &g_store[which];
}

// Pushes groups 0..cycle-1 round-robin, thread t taking t, t+n, t+2n, ... of n threads.
static void push_round_robin(benchmark::State &st, size_t cycle)
{
    fy_bench_store_t *const *b = store_of(st);
    size_t i = (size_t)st.thread_index();
    int64_t now = 2;
    for (auto _ : st) {
        benchmark::DoNotOptimize(fy_bench_store_push(*b, i % cycle, now++));
        i += (size_t)st.threads();
    }
    st.SetItemsProcessed(st.iterations());
}

// Re-pushing existing groups of a store holding 1k or 1M exposition lines' worth of groups; threads push disjoint
// groups (goal: the same cost at 1k and 1M, and >= 1.7x throughput with 2 threads).
static void BM_StorePush(benchmark::State &st)
{
    push_round_robin(st, (size_t)st.range(0));
}
BENCHMARK(BM_StorePush)->Arg(84)->Arg(84000)->Threads(1)->Threads(2)->UseRealTime();

// The same creation order, but each thread cycles over its own contiguous part of the groups (thread t of n takes
// groups [t*N/n, (t+1)*N/n)). BM_StorePush interleaves the threads on neighbouring groups, which are neighbours in
// memory (likely cause of its poorer 2-thread scaling, not observed directly as this VM has no cache counters: each
// core's prefetchers pull in lines of the other core's groups, which that core then writes). This variant separates
// that effect of the benchmark's order from the store's own scaling.
static void BM_StorePushSplit(benchmark::State &st)
{
    fy_bench_store_t *const *b = store_of(st);
    size_t part = (size_t)st.range(0) / (size_t)st.threads(), base = part * (size_t)st.thread_index(), i = 0;
    int64_t now = 2;
    for (auto _ : st) {
        benchmark::DoNotOptimize(fy_bench_store_push(*b, base + i, now++));
        if (++i == part)
            i = 0;
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_StorePushSplit)->Arg(84000)->Threads(1)->Threads(2)->UseRealTime();

// The same in a random order (as a fleet pushes): creation order, as above, walks memory sequentially, which the
// hardware prefetcher and the TLB favour.
static void BM_StorePushRandom(benchmark::State &st)
{
    fy_bench_store_t *const *b = store_of(st);
    size_t ngroups = (size_t)st.range(0);
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(st.thread_index() + 1);
    int64_t now = 2;
    for (auto _ : st)
        benchmark::DoNotOptimize(fy_bench_store_push(*b, (size_t)(fy_bench_rand(&x) % ngroups), now++));
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_StorePushRandom)->Arg(84)->Arg(84000)->Threads(1)->Threads(2)->UseRealTime();

// The same 84 groups (1k series) pushed round-robin, whether the store holds only them or 84,000 groups (1M series):
// what a push costs for the size of the store alone, with the pushed groups' working set the same in both. (The
// benchmarks above spread the pushes over every stored group, so at 1M they also measure the cache misses of a
// working set 1,000 times larger; docs/store.md reports both.)
static void BM_StorePushHot(benchmark::State &st)
{
    push_round_robin(st, 84);
}
BENCHMARK(BM_StorePushHot)->Arg(84)->Arg(84000)->Threads(1)->Threads(2)->UseRealTime();

// Rendering ~1M exposition lines (84 000 groups); second argument: 0 text, 1 delimited protobuf, 2 OpenMetrics,
// 3 the /api/v1/metrics JSON.
static void BM_StoreRender(benchmark::State &st)
{
    fy_bench_store_t *b = fy_bench_store_new((size_t)st.range(0));
    size_t bytes = 0;
    for (auto _ : st)
        bytes += fy_bench_store_render(b, (int)st.range(1));
    st.SetBytesProcessed((int64_t)bytes);
    fy_bench_store_free(b);
}
BENCHMARK(BM_StoreRender)->Args({84000, 0})->Args({84000, 1})->Args({84000, 2})->Args({84000, 3})->Unit(benchmark::kMillisecond);

// Bulk delete (issue #7) of all N groups of two families each, by a predicate on a grouping label; the store is
// filled again (untimed) before each iteration.
static void BM_StoreDeleteWhere(benchmark::State &st)
{
    size_t n = (size_t)st.range(0);
    for (auto _ : st) {
        st.PauseTiming();
        fy_bench_store_t *b = fy_bench_store_new_bulk(n);
        st.ResumeTiming();
        if (fy_bench_store_delete_where(b) != n)
            abort();
        st.PauseTiming();
        fy_bench_store_free(b);
        st.ResumeTiming();
    }
    st.SetItemsProcessed(st.iterations() * (int64_t)n);
}
BENCHMARK(BM_StoreDeleteWhere)->Arg(100000)->Iterations(3)->Unit(benchmark::kMillisecond);

// RSS per pushed series at 84,000 groups of push-646. Second argument 0: grouped by job="job<N>" alone; 1: by two
// labels as a server usually is, {job="node-exporter-<k>", instance="10.a.b.c:9100"} (keys of 40-41 bytes). Run each
// alone (--benchmark_filter=RssPerSeries/84000/0): after another one it reuses that one's freed pages.
static void BM_StoreRssPerSeries(benchmark::State &st)
{
    double per = 0;
    for (auto _ : st)
        per = fy_bench_store_rss_per_group((size_t)st.range(0), (int)st.range(1));
    /* the reference's ~740 B counts the pushed lines; the gateway's two timestamp lines per group are extra */
    st.counters["bytes_per_pushed_series"] = per / 10;
    st.counters["bytes_per_line_incl_timestamps"] = per / 12;
}
BENCHMARK(BM_StoreRssPerSeries)->Args({84000, 0})->Args({84000, 1})->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
