//===- BenchTest.cpp - Tests of the bench command -----------------------===//
//
// Runs `bench` on the hand-written softmax model (SoftmaxModel.h through
// tinyAbi), counting the train steps it makes and checking the synthetic
// batch. Timings are never asserted, only the shape of the report.
//
//===----------------------------------------------------------------------===//

#include "runtime/Bench.h"
#include "TestUtil.h"
#include "runtime/Json.h"
#include "runtime/KilnABI.h"

#include <gtest/gtest.h>

#include <array>

#include <cmath>

using namespace kiln::rt;
using namespace kiln::rt::test;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

/// tinyAbi with a train step that records how it is called.
struct StepLog {
  static inline void (*inner)(void **) = nullptr;
  static inline int calls = 0;
  static inline std::vector<float> steps; // hyper[KILN_HYPER_STEP] per call
  static inline bool labelsInRange = true;

  static void trainStep(void **buffers) {
    ++calls;
    // tiny: w, b, 4 Adam states, image (4x3), label (4), hyper, loss.
    auto *label = static_cast<const int32_t *>(buffers[7]);
    for (int i = 0; i < 4; ++i)
      labelsInRange &= label[i] >= 0 && label[i] < 3;
    steps.push_back(static_cast<const float *>(buffers[8])[KILN_HYPER_STEP]);
    inner(buffers);
  }
  static ModelAbi abi(ModelAbi base = tinyAbi()) {
    // The train entry is the first of the table.
    inner = base.entries[0];
    calls = 0;
    steps.clear();
    labelsInRange = true;
    table = {&StepLog::trainStep, base.entries[1], base.entries[2], nullptr};
    base.entries = table.data();
    return base;
  }
  static inline std::array<kiln_entry_fn, 4> table{};
};

} // namespace

TEST(BenchTest, MedianOfOddAndEvenCounts) {
  EXPECT_EQ(median({}), 0);
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
}

TEST(BenchTest, SyntheticBatchHasValidLabelsAndIsSeeded) {
  Expected<Model> a = Model::create(tinyAbi());
  Expected<Model> b = Model::create(tinyAbi());
  ASSERT_TRUE(a && b);
  fillSyntheticBatch(*a, 7);
  fillSyntheticBatch(*b, 7);
  const Tensor *image = a->findInput("image");
  const Tensor *label = a->findInput("label");
  bool anyNonZero = false;
  for (int64_t i = 0; i < image->numElements(); ++i) {
    EXPECT_GE(image->at(i), 0.0);
    EXPECT_LT(image->at(i), 1.0);
    anyNonZero |= image->at(i) != 0;
    EXPECT_EQ(image->at(i), b->findInput("image")->at(i));
  }
  EXPECT_TRUE(anyNonZero);
  for (int64_t i = 0; i < label->numElements(); ++i) {
    EXPECT_GE(label->at(i), 0.0);
    EXPECT_LT(label->at(i), 3.0);
    EXPECT_EQ(label->at(i), b->findInput("label")->at(i));
  }
}

TEST(BenchTest, RunsWarmupThenTimedSteps) {
  Expected<Model> model = Model::create(StepLog::abi());
  ASSERT_TRUE(model);
  BenchOptions options;
  options.steps = 7;
  options.warmup = 3;
  BenchResult r = benchmarkTrainStep(*model, options);
  EXPECT_EQ(StepLog::calls, 10);
  ASSERT_EQ(StepLog::steps.size(), 10u);
  for (size_t i = 0; i < StepLog::steps.size(); ++i)
    EXPECT_EQ(StepLog::steps[i], float(i + 1)); // Adam's 1-based step
  EXPECT_TRUE(StepLog::labelsInRange);
  EXPECT_EQ(r.stepMs.size(), 7u);
  EXPECT_LE(r.minMs, r.medianMs);
  EXPECT_LE(r.medianMs, r.maxMs);
  EXPECT_LE(r.minMs, r.meanMs);
  EXPECT_GT(r.maxRssKb, 0);
  // The steps trained: the loss of the last step is finite (a label out of
  // range would make it NaN) and the weights moved from their init.
  EXPECT_TRUE(std::isfinite(r.lastLoss));
  Expected<Model> fresh = Model::create(tinyAbi());
  ASSERT_TRUE(fresh);
  fresh->initialize(fresh->manifest().seed);
  EXPECT_NE(model->params[0].at(0), fresh->params[0].at(0));
}

TEST(BenchTest, JsonReport) {
  CliResult r =
      runCli({"bench", "--steps", "4", "--warmup=2", "--json"}, StepLog::abi());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(StepLog::calls, 6);
  EXPECT_EQ(r.err, "");
  Expected<JsonValue> json = parseJson(r.out);
  ASSERT_TRUE(json) << r.out;
  const JsonValue *model = json->find("model");
  ASSERT_TRUE(model);
  EXPECT_EQ(model->text, "tiny");
  ASSERT_TRUE(json->find("steps"));
  EXPECT_EQ(json->find("steps")->asUInt(), 4u);
  EXPECT_EQ(json->find("warmup")->asUInt(), 2u);
  for (const char *key :
       {"min_ms", "median_ms", "mean_ms", "max_ms", "steps_per_s"}) {
    const JsonValue *v = json->find(key);
    ASSERT_TRUE(v) << key;
    ASSERT_TRUE(v->asDouble()) << key;
    EXPECT_GE(*v->asDouble(), 0.0) << key;
  }
  ASSERT_TRUE(json->find("max_rss_kb"));
  EXPECT_GT(json->find("max_rss_kb")->asUInt().value_or(0), 0u);
}

TEST(BenchTest, TextReportAndDefaults) {
  CliResult r = runCli({"bench"}, StepLog::abi());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(StepLog::calls, 55); // 5 warm-up + 50 timed
  EXPECT_TRUE(contains(r.out, "model tiny: 50 timed train steps after 5 "
                              "warm-up"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "median")) << r.out;
  EXPECT_TRUE(contains(r.out, "steps/s")) << r.out;
  EXPECT_TRUE(contains(r.out, "peak RSS")) << r.out;
}

TEST(BenchTest, NeedsNoDataAndNoLearningRate) {
  CliResult r =
      runCli({"bench", "--steps", "2", "--warmup", "0", "--json"}, noDataAbi());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(parseJson(r.out)) << r.out;
}

TEST(BenchTest, FlagsAndHelp) {
  CliResult help = runCli({"--help"});
  EXPECT_TRUE(contains(help.out, "bench")) << help.out;
  CliResult h = runCli({"bench", "--help"});
  EXPECT_EQ(h.code, 0);
  for (const char *f : {"--steps", "--warmup", "--seed", "--json"})
    EXPECT_TRUE(contains(h.out, f)) << f;
  CliResult zero = runCli({"bench", "--steps", "0"});
  EXPECT_EQ(zero.code, 2);
  EXPECT_TRUE(contains(zero.err, "--steps must be at least 1")) << zero.err;
  CliResult neg = runCli({"bench", "--warmup", "-1"});
  EXPECT_EQ(neg.code, 2);
  EXPECT_TRUE(contains(neg.err, "--warmup")) << neg.err;
  CliResult unknown = runCli({"bench", "--epochs", "1"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_TRUE(contains(unknown.err, "unknown flag '--epochs' for 'bench'"))
      << unknown.err;
}
