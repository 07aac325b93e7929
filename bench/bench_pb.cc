// bench_pb.cc: registers the protobuf decoder workloads of pb_bench.c with Google Benchmark.
#include <benchmark/benchmark.h>

#include "pb_bench.h"

// Items are series as the text exposition counts them (each bucket, _sum and _count is one), so that series/s is
// comparable with the text parser's numbers.
static void run(benchmark::State &state, int which)
{
    size_t len;
    uint32_t nseries;
    const char *body = fy_pb_bench_body(which, &len, &nseries);
    for (auto _ : state) {
        uint32_t n = fy_pb_bench_decode(body, len);
        benchmark::DoNotOptimize(n);
        if (n == 0)
            state.SkipWithError("decode failed");
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * nseries));
    state.counters["body_bytes"] = static_cast<double>(len);
}

static void BM_PbDecode_Push646(benchmark::State &state)
{
    run(state, FY_PB_BENCH_PUSH646);
}
BENCHMARK(BM_PbDecode_Push646);

static void BM_PbDecode_Node10MB(benchmark::State &state)
{
    run(state, FY_PB_BENCH_NODE);
}
BENCHMARK(BM_PbDecode_Node10MB)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
