// bench_num.cc: registers the parser/num.c benchmark bodies (bench/num_bench.c) with Google Benchmark.
#include <benchmark/benchmark.h>

#include "num_bench.h"

static void format_g(benchmark::State &state)
{
    int set = (int)state.range(0), fast = (int)state.range(1);
    size_t items = 0;
    for (auto _ : state)
        items += fy_bench_num_format_g(set, fast);
    state.SetItemsProcessed((int64_t)items);
}

static void parse_float(benchmark::State &state)
{
    int set = (int)state.range(0), fast = (int)state.range(1);
    size_t items = 0;
    for (auto _ : state)
        items += fy_bench_num_parse(set, fast);
    state.SetItemsProcessed((int64_t)items);
}

// Args: {set (0 typical, 1 random), fast (1 new, 0 old printf/strtod code)}.
BENCHMARK(format_g)->ArgNames({"random", "fast"})->Args({0, 1})->Args({0, 0})->Args({1, 1})->Args({1, 0});
BENCHMARK(parse_float)->ArgNames({"random", "fast"})->Args({0, 1})->Args({0, 0})->Args({1, 1})->Args({1, 0});

BENCHMARK_MAIN();
