// bench_mem.cc: registers the memory-latency chase (bench/mem_bench.c) with Google Benchmark.
#include <benchmark/benchmark.h>

#include "mem_bench.h"

// ns per dependent load through a random cycle over a buffer of N bytes: 256 KiB (about the 1k-series store, in
// the cache), 4 MiB (in the L3), 32 MiB (the size of the L3 of this VM) and 160 MiB (about the 1M-series store,
// 5x the L3).
static void BM_MemChase(benchmark::State &st)
{
    fy_bench_chase_t *c = fy_bench_chase_new((size_t)st.range(0), 42);
    fy_bench_chase(c, (size_t)st.range(0) / 64); // one lap: the TLB and the caches settle
    const size_t steps = 1000;
    for (auto _ : st)
        benchmark::DoNotOptimize(fy_bench_chase(c, steps));
    st.SetItemsProcessed(st.iterations() * (int64_t)steps); // items/s = dependent loads per second
    st.counters["ns_per_load"] =
        benchmark::Counter((double)st.iterations() * steps, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    fy_bench_chase_free(c);
}
BENCHMARK(BM_MemChase)->Arg(256 << 10)->Arg(4 << 20)->Arg(32 << 20)->Arg(160 << 20);

// ns per round trip of one cache line between two threads (on the two vCPUs when nothing else runs): the price of a
// line that both of bench_store's pushing threads write.
static void BM_CoreRoundTrip(benchmark::State &st)
{
    double ns = 0;
    for (auto _ : st)
        ns = fy_bench_core_round_trip(1000000);
    st.counters["ns_per_round_trip"] = ns;
}
BENCHMARK(BM_CoreRoundTrip)->Iterations(3)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
