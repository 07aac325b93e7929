// bench_persist.cc: registers the write-ahead-log group-commit benchmark (bench/persist_bench.c) with Google Benchmark.
// Each run is one timed closed-loop session of N appenders of 700-byte records (the size of a typical push record);
// the counters are the session's rates, the mean batch (appends per fdatasync) and the append latency percentiles.
#include <benchmark/benchmark.h>

#include "persist_bench.h"

static void run(benchmark::State &st, int writer)
{
    unsigned n = static_cast<unsigned>(st.range(0));
    fy_bench_persist_result_t r{};
    for (auto _ : st) {
        if (fy_bench_persist_run(n, writer, 700, 1.5, &r) != 0) {
            st.SkipWithError("log could not be created or an append failed");
            return;
        }
        st.SetIterationTime(r.seconds);
    }
    st.counters["appends_per_s"] = static_cast<double>(r.appends) / r.seconds;
    st.counters["fsyncs_per_s"] = static_cast<double>(r.syncs) / r.seconds;
    st.counters["batch_mean"] = r.syncs ? static_cast<double>(r.appends) / static_cast<double>(r.syncs) : 0.0;
    st.counters["batch_max"] = static_cast<double>(r.max_batch);
    st.counters["p50_us"] = r.p50_us;
    st.counters["p99_us"] = r.p99_us;
}

// Appenders wait in fy_log_append (leader/follower).
static void BM_WalAppend(benchmark::State &st)
{
    run(st, 0);
}

// The writer thread syncs and notifies (with its commit delay); appenders submit and wait for the notification.
static void BM_WalWriterThread(benchmark::State &st)
{
    run(st, 1);
}
BENCHMARK(BM_WalAppend)
    ->ArgName("appenders")
    ->Arg(1)
    ->Arg(2)
    ->Arg(8)
    ->Arg(32)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WalWriterThread)
    ->ArgName("appenders")
    ->Arg(1)
    ->Arg(2)
    ->Arg(8)
    ->Arg(32)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
