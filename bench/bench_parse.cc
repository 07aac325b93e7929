// bench_parse.cc: registers the parser benchmark bodies (parse_bench.c) with Google Benchmark.
// Bytes/s is the input size; items/s is series/s.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "parse_bench.h"

namespace
{

void run_text(benchmark::State &st, fy_bench_payload_t which)
{
    fy_bench_parse_t *b = fy_bench_parse_new(which);
    if (b == nullptr) {
        st.SkipWithError("payload missing or not parseable");
        return;
    }
    for (auto _ : st)
        benchmark::DoNotOptimize(fy_bench_parse_text(b));
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * fy_bench_parse_len(b)));
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * fy_bench_parse_nseries(b)));
    fy_bench_parse_free(b);
}

// (d): the same families as (b), as a delimited protobuf body. Bytes/s counts the protobuf bytes, which are fewer
// than the text's, so compare series/s (items) between (b) and (d).
void BM_ProtobufNodeExporter10M(benchmark::State &st)
{
    fy_bench_parse_t *b = fy_bench_parse_new(FY_BENCH_PB_NODE_10M);
    if (b == nullptr) {
        st.SkipWithError("payload not encodable or not parseable");
        return;
    }
    for (auto _ : st)
        benchmark::DoNotOptimize(fy_bench_parse_protobuf(b));
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * fy_bench_parse_len(b)));
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * fy_bench_parse_nseries(b)));
    fy_bench_parse_free(b);
}

void BM_TextPush646(benchmark::State &st)
{
    run_text(st, FY_BENCH_PUSH646);
}
void BM_TextNodeExporter10M(benchmark::State &st)
{
    run_text(st, FY_BENCH_NODE_10M);
}
void BM_TextLabels20(benchmark::State &st)
{
    run_text(st, FY_BENCH_LABELS_20);
}

void BM_MemchrFloorNodeExporter10M(benchmark::State &st)
{
    fy_bench_parse_t *b = fy_bench_parse_new(FY_BENCH_NODE_10M);
    if (b == nullptr) {
        st.SkipWithError("payload not parseable");
        return;
    }
    for (auto _ : st)
        benchmark::DoNotOptimize(fy_bench_memchr_lines(b));
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * fy_bench_parse_len(b)));
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * fy_bench_parse_nseries(b)));
    fy_bench_parse_free(b);
}

} // namespace

BENCHMARK(BM_TextPush646);
BENCHMARK(BM_TextNodeExporter10M)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TextLabels20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MemchrFloorNodeExporter10M)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ProtobufNodeExporter10M)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
