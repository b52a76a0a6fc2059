//===- ManifestTest.cpp - Tests of the manifest parser ------------------===//

#include "runtime/Manifest.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace kiln::rt;

namespace {

const char *header = "kiln-manifest 2\nmodel m\n";
/// An entry taking the input `x` that every test manifest declares.
const char *entry = "entry e infer\narg input x\n";

/// Parses HEADER + one input + BODY + ENTRY, expecting an error; returns its
/// message.
std::string manifestError(const std::string &body) {
  Expected<Manifest> m =
      parseManifest(std::string(header) + "input x f32 4x2\n" + body + entry);
  EXPECT_FALSE(m) << "expected an error for:\n" << body;
  return m ? std::string() : m.error().message();
}

} // namespace

TEST(ManifestTest, ParsesSoftmaxManifest) {
  Expected<Manifest> m = parseManifest(test::tinyManifest());
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->version, 2);
  EXPECT_EQ(m->model, "tiny");
  ASSERT_EQ(m->params.size(), 2u);
  EXPECT_EQ(m->params[0].name, "w");
  EXPECT_EQ(m->params[0].type, DType::F32);
  EXPECT_EQ(m->params[0].shape, (Shape{3, 3}));
  EXPECT_EQ(m->params[0].init, InitKind::GlorotUniform);
  EXPECT_EQ(m->params[0].initArgs, (std::vector<double>{3, 3}));
  EXPECT_EQ(m->params[1].init, InitKind::Zeros);
  EXPECT_EQ(m->state.size(), 4u);
  EXPECT_EQ(m->state[0].name, "w.adam_m");
  ASSERT_EQ(m->inputs.size(), 2u);
  EXPECT_EQ(m->inputs[1].name, "label");
  EXPECT_EQ(m->inputs[1].type, DType::I32);
  ASSERT_EQ(m->entries.size(), 3u);
  const EntrySpec *predict = m->findEntry("predict");
  ASSERT_NE(predict, nullptr);
  EXPECT_EQ(predict->kind, kiln::contract::EntryKind::Infer);
  EXPECT_EQ(predict->inputNames(), (std::vector<std::string>{"image"}));
  EXPECT_TRUE(predict->takes(kiln::contract::Role::Output, "prediction"));
  const EntrySpec *train = m->findEntry("train_step");
  ASSERT_NE(train, nullptr);
  ASSERT_EQ(train->args.size(), 10u);
  EXPECT_EQ(train->args[2].role, kiln::contract::Role::State);
  EXPECT_EQ(train->args[8].role, kiln::contract::Role::Hyper);
  EXPECT_EQ(train->batch, 4);
  ASSERT_EQ(m->outputs.size(), 1u);
  EXPECT_EQ(m->outputs[0].describe(), "i32 4");
  ASSERT_EQ(m->metrics.size(), 1u);
  EXPECT_EQ(m->metrics[0].output, "prediction");
  EXPECT_EQ(m->metrics[0].input, "label");
  ASSERT_TRUE(m->optimizer);
  EXPECT_EQ(m->optimizer->name, "adam");
  EXPECT_EQ(m->learningRate(), 0.1);
  // Without an lr, the default of the optimizer from the one table.
  Expected<Manifest> sgd = parseManifest(
      std::string(header) + "input x f32 4x2\noptimizer sgd\n" + entry);
  ASSERT_TRUE(sgd) << sgd.error().message();
  EXPECT_EQ(sgd->learningRate(), 0.01);
  Expected<Manifest> none =
      parseManifest(std::string(header) + "input x f32 4x2\n" + entry);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(none->learningRate(), 1e-3);
  EXPECT_EQ(m->batch, 4);
  EXPECT_EQ(m->epochs, 3);
  EXPECT_EQ(m->seed, 42u);
  ASSERT_EQ(m->data.size(), 4u);
  const DataSpec *d = m->findData("test", "label");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->format, kiln::contract::DataFormat::Npy);
  EXPECT_EQ(d->path, "tiny/test-y.npy");
  EXPECT_EQ(m->numParamElements(), 12);
}

TEST(ManifestTest, IgnoresUnknownRecordsAndMetricKinds) {
  Expected<Manifest> m = parseManifest(
      std::string(header) +
      "input x f32 4x2\nsomething-new a b c\nmetric f1 out x\n\n# comment\n" +
      entry);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_TRUE(m->metrics.empty());
}

TEST(ManifestTest, ParsesDataParallelism) {
  Expected<Manifest> alone =
      parseManifest(std::string(header) + "input x f32 4x2\n" + entry);
  ASSERT_TRUE(alone) << alone.error().message();
  EXPECT_FALSE(alone->dataParallel);
  Expected<Manifest> parallel = parseManifest(
      std::string(header) + "input x f32 4x2\nparallel data\n" + entry);
  ASSERT_TRUE(parallel) << parallel.error().message();
  EXPECT_TRUE(parallel->dataParallel);
  // Another kind of parallelism is a newer compiler's: ignored.
  Expected<Manifest> other = parseManifest(
      std::string(header) + "input x f32 4x2\nparallel pipeline\n" + entry);
  ASSERT_TRUE(other) << other.error().message();
  EXPECT_FALSE(other->dataParallel);
}

TEST(ManifestTest, ParsesOptionsAndScalarShapes) {
  Expected<Manifest> m = parseManifest(
      std::string(header) +
      "param s f64 scalar constant 0.5\ninput x f32 4x2\n"
      "output loss_sum f32 scalar\n"
      "data train x idx my%20data/x%25.idx scale=0.00392156862745098\n" +
      entry);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->params[0].type, DType::F64);
  EXPECT_TRUE(m->params[0].shape.empty());
  EXPECT_EQ(m->params[0].describeInit(), "constant(0.5)");
  EXPECT_TRUE(m->outputs[0].shape.empty());
  EXPECT_EQ(m->data[0].path, "my data/x%.idx");
  const std::string *scale = findOption(m->data[0].options, "scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(*scale, "0.00392156862745098");
  // Without a train record, the batch comes from the entries' inputs.
  EXPECT_EQ(m->batch, 4);
  EXPECT_EQ(m->epochs, 1);
}

TEST(ManifestTest, RejectsMissingHeader) {
  Expected<Manifest> m = parseManifest("model m\ninput x f32 4\n");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("kiln-manifest 2"), std::string::npos);
  EXPECT_FALSE(parseManifest(""));
}

TEST(ManifestTest, RejectsUnsupportedVersion) {
  Expected<Manifest> m = parseManifest("kiln-manifest 1\nmodel m\n");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("version 1"), std::string::npos);
}

TEST(ManifestTest, ErrorsNameTheLine) {
  std::string msg = manifestError("param w f32 4xx2 zeros\n");
  EXPECT_NE(msg.find("manifest line 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4xx2"), std::string::npos) << msg;
}

TEST(ManifestTest, RejectsBadRecords) {
  EXPECT_NE(manifestError("param w f16 4 zeros\n").find("dtype 'f16'"),
            std::string::npos);
  EXPECT_NE(manifestError("param w i32 4 zeros\n").find("f32 or f64"),
            std::string::npos);
  EXPECT_NE(manifestError("param w f32 4 glorot_uniform 4\n")
                .find("takes 2 argument(s), got 1"),
            std::string::npos);
  EXPECT_NE(manifestError("param w f32 4 xavier 1 2\n")
                .find("unknown initializer 'xavier'"),
            std::string::npos);
  EXPECT_NE(manifestError("param w f32 4 uniform 1 0\n").find("low > high"),
            std::string::npos);
  EXPECT_NE(manifestError("param w f32 0x4 zeros\n").find("bad shape"),
            std::string::npos);
  EXPECT_NE(manifestError("input y i32 8\nentry f eval\narg input x\n"
                          "arg input y\narg loss\n")
                .find("different batch sizes"),
            std::string::npos);
  EXPECT_NE(manifestError("train batch=8\n").find("batch=8"),
            std::string::npos);
  EXPECT_NE(manifestError("train epochs=abc\n").find("positive integer"),
            std::string::npos);
  EXPECT_NE(manifestError("entry p infer\narg input y\n")
                .find("takes unknown input 'y'"),
            std::string::npos);
  EXPECT_NE(manifestError("metric accuracy out x\n").find("unknown output"),
            std::string::npos);
  EXPECT_NE(manifestError("param w f32 4 zeros\nstate w f32 4\n")
                .find("two parameters or state tensors named 'w'"),
            std::string::npos);
  EXPECT_NE(manifestError("data valid x idx p\n").find("split 'valid'"),
            std::string::npos);
  EXPECT_NE(manifestError("data train y idx p\n").find("unknown input 'y'"),
            std::string::npos);
  EXPECT_NE(manifestError("data train x hdf5 p\n")
                .find("unknown data format 'hdf5' (expected one of idx, npy, "
                      "npz, csv, text, lines, pairs, wav)"),
            std::string::npos);
  EXPECT_NE(manifestError("optimizer adam lr=-1\n").find("lr=-1"),
            std::string::npos);
  EXPECT_NE(manifestError("input s f32 scalar\nentry v eval\narg input s\n"
                          "arg loss\n")
                .find("'s' of eval entry 'v' is a scalar"),
            std::string::npos);
}

TEST(ManifestTest, RejectsBadEntries) {
  EXPECT_NE(manifestError("arg input x\n").find("before any 'entry'"),
            std::string::npos);
  EXPECT_NE(
      manifestError("entry e2 sample\n").find("unknown entry kind 'sample'"),
      std::string::npos);
  EXPECT_NE(manifestError("entry e infer\n").find("a second entry named 'e'"),
            std::string::npos);
  EXPECT_NE(manifestError("entry t train\narg input x\narg loss\n")
                .find("train entry 't' has no hyper buffer"),
            std::string::npos);
  EXPECT_NE(manifestError("entry v eval\narg input x\n")
                .find("eval entry 'v' has no loss buffer"),
            std::string::npos);
  EXPECT_NE(manifestError("entry i infer\narg loss\n")
                .find("infer entry 'i' takes no loss buffer"),
            std::string::npos);
  EXPECT_NE(manifestError("entry i infer\narg input x\narg input x\n")
                .find("takes input 'x' twice"),
            std::string::npos);
  EXPECT_NE(manifestError("entry i infer\narg output\n").find("needs the"),
            std::string::npos);
  EXPECT_NE(manifestError("entry i infer\narg weights w\n")
                .find("unknown buffer role 'weights'"),
            std::string::npos);
  // A model must export something.
  Expected<Manifest> none =
      parseManifest(std::string(header) + "input x f32 4x2\n");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("no 'entry' records"),
            std::string::npos);
}

TEST(ManifestTest, EntriesHaveTheirOwnBatch) {
  // A decoder's sampling entry takes 16 latent vectors while training takes
  // batches of 64 images.
  Expected<Manifest> m = parseManifest(
      std::string(header) +
      "input image f32 64x4\ninput z f32 16x2\noutput sample f32 16x4\n"
      "entry train_step train\narg input image\narg hyper\narg loss\n"
      "entry sample infer\narg input z\narg output sample\n");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->batch, 64);
  EXPECT_EQ(m->findEntry("sample")->batch, 16);
  EXPECT_EQ(m->findEntryIndex("sample"), 1);
  EXPECT_EQ(m->findEntry("generate"), nullptr);
}

TEST(ManifestTest, RequiresModelAndInputs) {
  EXPECT_FALSE(parseManifest("kiln-manifest 2\ninput x f32 4\n"));
  Expected<Manifest> m = parseManifest("kiln-manifest 2\nmodel m\n");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("no inputs"), std::string::npos);
}

TEST(ManifestTest, PercentDecodes) {
  EXPECT_EQ(percentDecode("a%20b%25c"), std::optional<std::string>("a b%c"));
  EXPECT_EQ(percentDecode("bad%2"), std::nullopt);
  EXPECT_EQ(percentDecode("bad%zz"), std::nullopt);
}

TEST(ManifestTest, ParsesASchedule) {
  Expected<Manifest> m =
      parseManifest(std::string(header) + "input x f32 4x2\n" +
                    "schedule cosine warmup=10 min_lr=0.0001\n" + entry);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE(m->schedule);
  EXPECT_EQ(m->schedule->kind, kiln::contract::ScheduleKind::Cosine);
  EXPECT_EQ(m->schedule->warmup, 10);
  EXPECT_EQ(m->schedule->minLr, 1e-4);
  Expected<Manifest> none = parseManifest(test::tinyManifest());
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_FALSE(none->schedule);
}

TEST(ManifestTest, RejectsBadSchedules) {
  EXPECT_NE(manifestError("schedule\n").find("expected 'schedule NAME"),
            std::string::npos);
  EXPECT_NE(manifestError("schedule wavy\n")
                .find("unknown learning-rate schedule 'wavy'"),
            std::string::npos);
  EXPECT_NE(manifestError("schedule cosine gamma=0.5\n")
                .find("schedule 'cosine' takes no 'gamma'"),
            std::string::npos);
  EXPECT_NE(manifestError("schedule step gamma=0\n")
                .find("'gamma' must be in (0, 1], got '0'"),
            std::string::npos);
  EXPECT_NE(manifestError("schedule linear warmup=2.5\n")
                .find("'warmup' must be a whole number of steps >= 0"),
            std::string::npos);
  EXPECT_NE(manifestError("schedule linear min_lr=nan\n").find("'min_lr'"),
            std::string::npos);
  EXPECT_NE(manifestError("schedule cosine\nschedule step\n")
                .find("a second 'schedule' record"),
            std::string::npos);
}

TEST(ScheduleTest, RatesFollowPyTorchsSchedulers) {
  using kiln::contract::Schedule;
  using kiln::contract::scheduledLr;
  using kiln::contract::ScheduleKind;
  // Cosine from 1 to 0.1 over 100 steps after 10 warm-up steps.
  Schedule cosine{ScheduleKind::Cosine, 10, 0.1};
  EXPECT_DOUBLE_EQ(scheduledLr(cosine, 1, 1, 110, 11), 0.1);
  EXPECT_DOUBLE_EQ(scheduledLr(cosine, 1, 5, 110, 11), 0.5);
  EXPECT_DOUBLE_EQ(scheduledLr(cosine, 1, 10, 110, 11), 1);
  EXPECT_DOUBLE_EQ(scheduledLr(cosine, 1, 60, 110, 11), 0.55);
  EXPECT_DOUBLE_EQ(scheduledLr(cosine, 1, 110, 110, 11), 0.1);
  // Past the end (a run extended with --steps) it stays at min_lr.
  EXPECT_DOUBLE_EQ(scheduledLr(cosine, 1, 200, 110, 11), 0.1);
  Schedule linear{ScheduleKind::Linear, 0, 0};
  EXPECT_DOUBLE_EQ(scheduledLr(linear, 2, 25, 100, 10), 1.5);
  EXPECT_DOUBLE_EQ(scheduledLr(linear, 2, 100, 100, 10), 0);
  // Step: x0.5 every 2 epochs of 10 steps.
  Schedule step{ScheduleKind::Step, 0, 0, 2, 0.5};
  EXPECT_DOUBLE_EQ(scheduledLr(step, 1, 20, 100, 10), 1);
  EXPECT_DOUBLE_EQ(scheduledLr(step, 1, 21, 100, 10), 0.5);
  EXPECT_DOUBLE_EQ(scheduledLr(step, 1, 41, 100, 10), 0.25);
  Schedule constant;
  EXPECT_DOUBLE_EQ(scheduledLr(constant, 3e-3, 7, 10, 5), 3e-3);
}

TEST(ManifestTest, ParsesAnIgnoredLabel) {
  Expected<Manifest> m =
      parseManifest(std::string(header) +
                    "input x f32 4x2\nlabels x 5 ignore=-100\n" + entry);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_EQ(m->labels.size(), 1u);
  ASSERT_TRUE(m->labels[0].ignore);
  EXPECT_EQ(*m->labels[0].ignore, -100);
  EXPECT_TRUE(m->labels[0].accepts(-100));
  EXPECT_TRUE(m->labels[0].accepts(4));
  EXPECT_FALSE(m->labels[0].accepts(5));
  EXPECT_FALSE(m->labels[0].accepts(-1));
  EXPECT_NE(manifestError("labels x 5 skip=3\n").find("expected ignore=VALUE"),
            std::string::npos);
  EXPECT_NE(manifestError("labels x 5 ignore=99999999999\n")
                .find("expected ignore=VALUE (an i32)"),
            std::string::npos);
  EXPECT_NE(manifestError("labels x 5 ignore=1 extra\n")
                .find("expected ignore=VALUE (an i32) or target, got 'extra'"),
            std::string::npos);
  EXPECT_NE(manifestError("labels x 5 target target\n").find("got 'target'"),
            std::string::npos);
  EXPECT_NE(
      manifestError("labels x 5 ignore=1 target x\n")
          .find("expected 'labels INPUT CLASSES [ignore=VALUE] [target]'"),
      std::string::npos);
}

TEST(ManifestTest, ParsesATargetLabel) {
  Expected<Manifest> m = parseManifest(
      std::string(header) +
      "input x f32 4x2\ninput y f32 4x2\nlabels x 5 target\nlabels y 9\n" +
      entry);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_EQ(m->labels.size(), 2u);
  EXPECT_TRUE(m->labels[0].target);
  EXPECT_FALSE(m->labels[0].ignore);
  EXPECT_FALSE(m->labels[1].target);
}

TEST(ManifestTest, ParsesLossTermsAndPsnrMetrics) {
  Expected<Manifest> m = parseManifest(
      std::string(header) +
      "input x f32 4x2\noutput y f32 4x2\nterm kl f32 scalar\n"
      "metric psnr y x\nmetric ssim y x\n"
      "entry v eval\narg input x\narg loss\narg term kl\narg output y\n");
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_EQ(m->terms.size(), 1u);
  EXPECT_EQ(m->terms[0].name, "kl");
  EXPECT_TRUE(m->entries[0].takes(kiln::contract::Role::Term, "kl"));
  // A metric kind of a later version is skipped.
  ASSERT_EQ(m->metrics.size(), 1u);
  EXPECT_EQ(m->metrics[0].kind, kiln::contract::MetricKind::Psnr);
  EXPECT_NE(
      manifestError("entry v eval\narg input x\narg loss\narg term nope\n")
          .find("entry 'v' takes unknown term 'nope'"),
      std::string::npos);
  EXPECT_NE(manifestError("entry i infer\narg term kl\n").find("takes no term"),
            std::string::npos);
}

TEST(ManifestTest, ParsesAGenerateContext) {
  Expected<Manifest> m = parseManifest(
      std::string(header) + "input x f32 4x2\ncontext 128\n" + entry);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->generateContext, 128);
  Expected<Manifest> none =
      parseManifest(std::string(header) + "input x f32 4x2\n" + entry);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(none->generateContext, 0);
  for (const char *bad :
       {"context 0\n", "context -3\n", "context\n", "context 8 9\n"})
    EXPECT_NE(manifestError(bad).find(
                  "expected 'context POSITIONS' (a positive integer)"),
              std::string::npos)
        << bad;
  EXPECT_NE(
      manifestError("context 8\ncontext 8\n").find("a second 'context' record"),
      std::string::npos);
}
