//===- Bench.cpp - The bench command ------------------------------------===//

#include "runtime/Bench.h"
#include "runtime/Comm.h"

#include "runtime/Init.h"
#include "runtime/Json.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <sys/resource.h>

namespace kiln::rt {

namespace {

using Clock = std::chrono::steady_clock;

/// The number of classes of INPUT if a `labels` record names it, else 0.
int64_t labelClasses(const Manifest &m, const std::string &input) {
  for (const LabelSpec &l : m.labels)
    if (l.input == input)
      return l.classes;
  return 0;
}

int64_t peakRssKb() {
  struct rusage usage;
  std::memset(&usage, 0, sizeof usage);
  if (getrusage(RUSAGE_SELF, &usage) != 0)
    return 0;
  return int64_t(usage.ru_maxrss); // kilobytes on Linux
}

} // namespace

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  size_t n = values.size();
  std::sort(values.begin(), values.end());
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void fillSyntheticBatch(Model &model, uint64_t seed) {
  const Manifest &m = model.manifest();
  for (Tensor &t : model.inputs) {
    Rng rng(seed, "bench:" + t.name);
    int64_t n = t.numElements();
    switch (t.type) {
    case DType::F32: {
      float *p = t.buffer.as<float>();
      for (int64_t i = 0; i < n; ++i)
        p[i] = float(rng.uniform());
      break;
    }
    case DType::F64: {
      double *p = t.buffer.as<double>();
      for (int64_t i = 0; i < n; ++i)
        p[i] = rng.uniform();
      break;
    }
    case DType::I32: {
      int32_t *p = t.buffer.as<int32_t>();
      int64_t classes = labelClasses(m, t.name);
      for (int64_t i = 0; i < n; ++i)
        p[i] = classes > 0 ? int32_t(rng.below(uint64_t(classes))) : 0;
      break;
    }
    }
  }
}

BenchResult benchmarkTrainStep(Model &model, const BenchOptions &options) {
  const Manifest &m = model.manifest();
  uint64_t seed = options.seed.value_or(m.seed);
  double lr = m.learningRate();
  model.initialize(seed);
  fillSyntheticBatch(model, seed);

  BenchResult r;
  uint64_t step = 0;
  for (int64_t i = 0; i < options.warmup; ++i)
    r.lastLoss = model.trainStep(lr, ++step, seed);
  r.stepMs.reserve(size_t(std::max<int64_t>(options.steps, 0)));
  AllReduceStats before = allReduceStats();
  for (int64_t i = 0; i < options.steps; ++i) {
    Clock::time_point start = Clock::now();
    r.lastLoss = model.trainStep(lr, ++step, seed);
    r.stepMs.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - start)
            .count());
  }
  if (!r.stepMs.empty()) {
    double total = std::accumulate(r.stepMs.begin(), r.stepMs.end(), 0.0);
    r.minMs = *std::min_element(r.stepMs.begin(), r.stepMs.end());
    r.maxMs = *std::max_element(r.stepMs.begin(), r.stepMs.end());
    r.meanMs = total / double(r.stepMs.size());
    r.medianMs = median(r.stepMs);
    r.stepsPerSecond = total > 0 ? 1000.0 * double(r.stepMs.size()) / total : 0;
    const AllReduceStats &after = allReduceStats();
    if (after.calls > before.calls) {
      r.allReduceMs =
          1e3 * (after.seconds - before.seconds) / double(r.stepMs.size());
      r.allReduceBytes =
          (after.bytes - before.bytes) / (after.calls - before.calls);
      r.allReduceShare =
          total > 0 ? r.allReduceMs * double(r.stepMs.size()) / total : 0;
    }
  }
  r.maxRssKb = peakRssKb();
  return r;
}

Error runBench(Model &model, const BenchOptions &options,
               const Console &console) {
  if (Error e = model.requireEntry(contract::kTrainStepEntry))
    return e;
  if (options.steps < 1)
    return Error::usage(
        fmt::format("--steps must be at least 1, got {}", options.steps));
  if (options.warmup < 0)
    return Error::usage(
        fmt::format("--warmup must be at least 0, got {}", options.warmup));
  const Manifest &m = model.manifest();
  BenchResult r = benchmarkTrainStep(model, options);
  // In a data-parallel job every process runs the steps (each its part of
  // the global batch); process 0 reports its timings.
  Communicator &comm = communicator();
  if (comm.rank() != 0)
    return Error::success();
  int64_t batch = m.batch * comm.size();
  if (options.json) {
    fmt::print(console.out,
               "{{\"model\":{},\"batch\":{},\"warmup\":{},\"steps\":{},"
               "\"min_ms\":{},\"median_ms\":{},\"mean_ms\":{},\"max_ms\":{},"
               "\"steps_per_s\":{},\"max_rss_kb\":{},\"loss\":{},"
               "\"processes\":{},\"allreduce_ms\":{},\"allreduce_bytes\":{},"
               "\"allreduce_share\":{}}}\n",
               jsonQuote(m.model), batch, options.warmup, options.steps,
               jsonNumber(r.minMs), jsonNumber(r.medianMs),
               jsonNumber(r.meanMs), jsonNumber(r.maxMs),
               jsonNumber(r.stepsPerSecond), r.maxRssKb, jsonNumber(r.lastLoss),
               comm.size(), jsonNumber(r.allReduceMs), r.allReduceBytes,
               jsonNumber(r.allReduceShare));
  } else {
    fmt::print(console.out,
               "model {}: {} timed train steps after {} warm-up (batch {}, "
               "one synthetic batch)\n",
               m.model, options.steps, options.warmup,
               comm.size() == 1 ? fmt::format("{}", batch)
                                : fmt::format("{} = {} processes x {}", batch,
                                              comm.size(), m.batch));
    fmt::print(console.out,
               "step time: min {:.3f} ms  median {:.3f} ms  mean {:.3f} ms  "
               "max {:.3f} ms\n",
               r.minMs, r.medianMs, r.meanMs, r.maxMs);
    fmt::print(console.out, "throughput: {:.1f} steps/s ({:.0f} examples/s)\n",
               r.stepsPerSecond, r.stepsPerSecond * double(batch));
    if (comm.size() > 1)
      fmt::print(console.out,
                 "all-reduce ({}): {:.3f} ms a step ({:.1f}% of it), {:.2f} "
                 "MB\n",
                 comm.transport(), r.allReduceMs, 100 * r.allReduceShare,
                 double(r.allReduceBytes) / 1e6);
    fmt::print(console.out, "peak RSS: {} KiB\n", groupDigits(r.maxRssKb));
  }
  if (!std::isfinite(r.lastLoss))
    console.warning("the loss of the last step is {} (the timings stand; the "
                    "synthetic data may not suit the model)",
                    std::isnan(r.lastLoss) ? "NaN" : "Inf");
  std::fflush(console.out);
  return Error::success();
}

} // namespace kiln::rt
