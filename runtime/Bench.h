//===- Bench.h - The bench command: timed train steps on a resident batch -===//
//
// `./model bench [--steps N] [--warmup W] [--seed S] [--json]` measures the
// compiled train step alone: the model is allocated and initialized (seeded),
// every input buffer is filled once with a synthetic batch (uniform floats in
// [0, 1) for f32/f64 inputs; class indices in [0, CLASSES) for an i32 input
// named by a `labels` manifest record, else zeros), then W warm-up steps and N
// timed steps run on that same batch. No data is loaded or copied between
// steps, so the times are those of kiln_train_step itself.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_BENCH_H
#define KILN_RUNTIME_BENCH_H

#include "runtime/Console.h"
#include "runtime/Error.h"
#include "runtime/Model.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace kiln::rt {

struct BenchOptions {
  int64_t steps = 50;           ///< timed steps (>= 1)
  int64_t warmup = 5;           ///< untimed steps before them (>= 0)
  std::optional<uint64_t> seed; ///< default: the manifest's seed
  bool json = false;
};

struct BenchResult {
  std::vector<double> stepMs; ///< each timed step, in order
  double minMs = 0, medianMs = 0, meanMs = 0, maxMs = 0;
  double stepsPerSecond = 0; ///< steps / total timed seconds
  double lastLoss = 0;       ///< the loss of the last step
  int64_t maxRssKb = 0;      ///< peak resident set size (getrusage)
  /// In a data-parallel job: the gradients' all-reduce per timed step (wall
  /// time, including waiting for the slowest process), its share of the
  /// step time, and the bytes it averages.
  double allReduceMs = 0, allReduceShare = 0;
  int64_t allReduceBytes = 0;
};

/// Fills the model's input buffers with the synthetic batch described above,
/// from streams "bench:INPUT" of SEED.
void fillSyntheticBatch(Model &model, uint64_t seed);

/// Initializes MODEL, fills the batch and runs the warm-up and timed steps.
BenchResult benchmarkTrainStep(Model &model, const BenchOptions &options);

/// The bench command: runs benchmarkTrainStep and prints a summary, or one
/// JSON object with --json.
Error runBench(Model &model, const BenchOptions &options,
               const Console &console);

/// The median of VALUES (the mean of the two middle ones for an even count);
/// 0 for none.
double median(std::vector<double> values);

} // namespace kiln::rt

#endif // KILN_RUNTIME_BENCH_H
