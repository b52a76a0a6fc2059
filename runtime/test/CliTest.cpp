//===- CliTest.cpp - Tests of the command line and the training loop ----===//
//
// Runs the command line in-process on the tiny hand-written model with data
// written to a temporary directory (KILN_DATA_DIR points there).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"
#include "runtime/Data.h"
#include "runtime/Files.h"
#include "runtime/Json.h"

#include <gtest/gtest.h>

#include <limits>

using namespace kiln::rt;
using namespace kiln::rt::test;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

/// A temporary directory holding the tiny data set, set as KILN_DATA_DIR.
class TinyData {
public:
  TinyData(int train = 24, int test = 12) : env("KILN_DATA_DIR", dir.path()) {
    writeTinyData(dir.path(), train, test);
  }
  std::string file(const std::string &name) const { return dir.file(name); }
  TempDir dir;
  ScopedEnv env;
};

/// The metrics rows without the (timing) last column.
std::string metricsWithoutSeconds(const std::string &csv) {
  std::string out;
  size_t start = 0;
  while (start < csv.size()) {
    size_t nl = csv.find('\n', start);
    std::string line = csv.substr(start, nl - start);
    out += line.substr(0, line.rfind(',')) + "\n";
    start = nl + 1;
  }
  return out;
}

#define EXPECT_USAGE_ERROR(result, text)                                       \
  do {                                                                         \
    CliResult r_ = (result);                                                   \
    EXPECT_EQ(r_.code, 2) << r_.err;                                           \
    EXPECT_TRUE(contains(r_.err, "error: ")) << r_.err;                        \
    EXPECT_TRUE(contains(r_.err, text)) << r_.err;                             \
  } while (0)

} // namespace

//===----------------------------------------------------------------------===//
// Command line
//===----------------------------------------------------------------------===//

TEST(CliTest, HelpListsCommands) {
  CliResult r = runCli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(contains(r.out, "usage: ./model <command>"));
  for (const char *c : {"train", "eval", "predict", "info"})
    EXPECT_TRUE(contains(r.out, c)) << c;
  CliResult t = runCli({"train", "--help"});
  EXPECT_EQ(t.code, 0);
  for (const char *f :
       {"--epochs", "--lr", "--seed", "--data", "--test", "--checkpoint",
        "--resume", "--metrics", "--steps", "--log-every", "--quiet"})
    EXPECT_TRUE(contains(t.out, f)) << f;
  EXPECT_TRUE(contains(runCli({"eval", "-h"}).out, "--json"));
  EXPECT_TRUE(contains(runCli({"predict", "--help"}).out, "--output DIR"));
}

TEST(CliTest, NoCommandIsAUsageError) {
  CliResult r = runCli({});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "usage:"));
  EXPECT_TRUE(contains(r.err, "error: no command given"));
}

TEST(CliTest, RejectsUnknownCommandsAndFlags) {
  EXPECT_USAGE_ERROR(runCli({"fit"}), "unknown command 'fit'");
  EXPECT_USAGE_ERROR(runCli({"train", "--epoch", "3"}),
                     "unknown flag '--epoch' for 'train'");
  EXPECT_USAGE_ERROR(runCli({"eval", "--lr", "3"}),
                     "unknown flag '--lr' for 'eval'");
  EXPECT_USAGE_ERROR(runCli({"train", "extra"}), "unexpected argument 'extra'");
  EXPECT_USAGE_ERROR(runCli({"train", "--quiet=yes"}), "takes no value");
}

TEST(CliTest, RejectsMalformedValues) {
  EXPECT_USAGE_ERROR(runCli({"train", "--epochs", "abc"}),
                     "--epochs: 'abc' is not a positive integer");
  EXPECT_USAGE_ERROR(runCli({"train", "--epochs", "0"}),
                     "--epochs must be at least 1, got 0");
  EXPECT_USAGE_ERROR(runCli({"train", "--epochs=1.5"}), "'1.5'");
  EXPECT_USAGE_ERROR(runCli({"train", "--lr", "-1"}),
                     "--lr must be a positive number, got '-1'");
  EXPECT_USAGE_ERROR(runCli({"train", "--lr", "nan"}), "--lr");
  EXPECT_USAGE_ERROR(runCli({"train", "--seed", "x"}), "--seed");
  EXPECT_USAGE_ERROR(runCli({"train", "--steps", "-5"}), "--steps");
  EXPECT_USAGE_ERROR(runCli({"train", "--threads", "100000"}),
                     "--threads must be at most 1024, got 100000");
  EXPECT_USAGE_ERROR(runCli({"train", "--lr"}), "--lr needs a value");
  EXPECT_USAGE_ERROR(runCli({"train", "--data", "image"}),
                     "--data expects INPUT=PATH, got 'image'");
  EXPECT_USAGE_ERROR(runCli({"train", "--data", "pixels=x.npy"}),
                     "--data: the model has no input 'pixels' (inputs: image, "
                     "label)");
}

TEST(CliTest, RequiredFlags) {
  EXPECT_USAGE_ERROR(runCli({"eval"}), "eval needs --checkpoint FILE");
  EXPECT_USAGE_ERROR(runCli({"predict", "--checkpoint", "c", "--output", "o"}),
                     "predict needs --input image=FILE.npy");
  EXPECT_USAGE_ERROR(runCli({"predict", "--checkpoint", "c"}),
                     "predict needs --input image=FILE.npy");
  EXPECT_USAGE_ERROR(
      runCli({"predict", "--checkpoint", "c", "--text", "a", "--input", "x"}),
      "predict takes --text or --input, not both");
  // A model without data records needs them on the command line (without an
  // lr it trains with its optimizer's default).
  EXPECT_USAGE_ERROR(runCli({"train"}, noDataAbi()),
                     "no training data for input 'image'");
}

TEST(CliTest, InfoDescribesTheModel) {
  CliResult r = runCli({"info"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "model tiny"));
  EXPECT_TRUE(contains(r.out, "glorot_uniform(3, 3)"));
  EXPECT_TRUE(contains(r.out, "total: 12 parameters in 2 tensors"));
  EXPECT_TRUE(contains(r.out, "image  f32 4x3"));
  EXPECT_TRUE(contains(r.out, "optimizer: adam lr=0.1"));
}

TEST(CliTest, InvalidManifestIsReported) {
  ModelAbi abi = tinyAbi();
  abi.manifest = "kiln-manifest 2\nmodel broken\ninput x f32 4x\n";
  CliResult r = runCli({"info"}, abi);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "error: the compiled model's manifest is "
                              "invalid"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "line 3")) << r.err;
}

// A model that exports only `predict` (an inference library, say): the
// commands that need another entry say which, before doing anything.
TEST(CliTest, CommandsNeedTheirEntries) {
  static const std::string text = [] {
    std::string t = tinyManifest();
    t.erase(t.find("entry train_step"),
            t.find("entry predict") - t.find("entry train_step"));
    return t;
  }();
  static const kiln_entry_fn table[] = {tinyAbi().entries[2], nullptr};
  ModelAbi abi;
  abi.manifest = text.c_str();
  abi.entries = table;
  for (auto [command, entry] :
       {std::pair{"train", "train_step"}, std::pair{"bench", "train_step"}}) {
    CliResult r = runCli({command}, abi);
    EXPECT_EQ(r.code, 1) << command;
    EXPECT_TRUE(
        contains(r.err, std::string("model 'tiny' has no ") + entry + " entry"))
        << r.err;
  }
  CliResult r = runCli({"eval", "--checkpoint", "c.safetensors"}, abi);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "model 'tiny' has no eval_step entry")) << r.err;
  EXPECT_EQ(runCli({"info"}, abi).code, 0);
}

//===----------------------------------------------------------------------===//
// Data errors
//===----------------------------------------------------------------------===//

TEST(TrainTest, MissingDataFileIsAnError) {
  TinyData data;
  CliResult r = runCli({"train", "--data", "image=nowhere/x.npy"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "error: train data for input 'image': file "
                              "'nowhere/x.npy' not found"))
      << r.err;
  ScopedEnv unset("KILN_DATA_DIR", "/nonexistent-kiln-data");
  CliResult m = runCli({"train"});
  EXPECT_EQ(m.code, 1);
  EXPECT_TRUE(contains(m.err, "'tiny/train-x.npy' not found")) << m.err;
  EXPECT_TRUE(contains(m.err, "KILN_DATA_DIR=/nonexistent-kiln-data")) << m.err;
}

TEST(TrainTest, MismatchedDataNamesFileAndShapes) {
  TinyData data;
  writeBytes(data.file("wide.npy"),
             f32Npy(std::vector<float>(24 * 4), "(24, 4)"));
  CliResult r = runCli({"train", "--data", "image=" + data.file("wide.npy")});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "wide.npy' does not fit input 'image' (f32 4x3): "
                              "its examples are 4 values, the input's are 3 "
                              "values"))
      << r.err;
  writeBytes(data.file("bad.idx"), "\x01\x02\x03\x04rest");
  r = runCli({"train", "--data", "label=" + data.file("bad.idx")});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "bad.idx' is not an IDX file")) << r.err;
}

TEST(TrainTest, TooFewExamplesForOneBatch) {
  TinyData data(3, 12);
  CliResult r = runCli({"train"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "3 examples, fewer than one batch of 4"))
      << r.err;
}

TEST(TrainTest, PartialTestDataIsAnError) {
  TinyData data;
  CliResult r = runCli({"train", "--lr", "0.1", "--test",
                        "image=" + data.file("tiny/test-x.npy")},
                       noDataAbi());
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "no training data")) << r.err;
  r = runCli({"train", "--lr", "0.1", "--data",
              "image=" + data.file("tiny/train-x.npy"), "--data",
              "label=" + data.file("tiny/train-y.npy"), "--test",
              "image=" + data.file("tiny/test-x.npy")},
             noDataAbi());
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "test data is given for input 'image' but not "
                              "for 'label'"))
      << r.err;
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

TEST(TrainTest, TrainsAndWritesCheckpointAndMetrics) {
  TinyData data;
  CliResult r =
      runCli({"train", "--epochs", "5", "--checkpoint", data.file("c.st"),
              "--metrics", data.file("m.csv"), "--log-every", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "epoch 1/5  step 2/6  loss ")) << r.out;
  EXPECT_TRUE(contains(r.out, "samples/s  ETA ")) << r.out;
  EXPECT_TRUE(contains(r.out, "epoch 5/5  train loss ")) << r.out;
  EXPECT_TRUE(contains(r.out, "test accuracy 100.00%")) << r.out;
  EXPECT_TRUE(contains(r.out, "final test accuracy 100.00%")) << r.out;
  std::string csv = readBytes(data.file("m.csv"));
  EXPECT_EQ(csv.find("epoch,step,train_loss,test_loss,test_accuracy,seconds\n"
                     "1,6,"),
            0u)
      << csv;
  EXPECT_TRUE(contains(csv, "\n5,30,")) << csv;
  EXPECT_TRUE(contains(readBytes(data.file("c.st")), "\"kiln.step\":\"30\""));

  CliResult e = runCli({"eval", "--checkpoint", data.file("c.st"), "--json"});
  ASSERT_EQ(e.code, 0) << e.err;
  Expected<JsonValue> json = parseJson(e.out);
  ASSERT_TRUE(json) << e.out;
  EXPECT_EQ(json->find("accuracy")->asDouble(), 1.0);
  EXPECT_EQ(json->find("examples")->asUInt(), 12u);
  EXPECT_LT(*json->find("loss")->asDouble(), 0.5);
  EXPECT_EQ(e.err, ""); // --json: nothing but the object

  CliResult text = runCli({"eval", "--checkpoint", data.file("c.st")});
  EXPECT_EQ(text.code, 0);
  EXPECT_TRUE(contains(text.out, "accuracy 100.00%  (12 examples")) << text.out;
}

TEST(TrainTest, SameSeedSameRun) {
  TinyData data;
  auto run = [&](const std::string &name, const std::string &seed) {
    CliResult r = runCli({"train", "--quiet", "--seed", seed, "--checkpoint",
                          data.file(name + ".st"), "--metrics",
                          data.file(name + ".csv")});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, ""); // --quiet
  };
  run("a", "7");
  run("b", "7");
  run("c", "8");
  EXPECT_EQ(readBytes(data.file("a.st")), readBytes(data.file("b.st")));
  EXPECT_EQ(metricsWithoutSeconds(readBytes(data.file("a.csv"))),
            metricsWithoutSeconds(readBytes(data.file("b.csv"))));
  EXPECT_NE(readBytes(data.file("a.st")), readBytes(data.file("c.st")));
}

TEST(TrainTest, ResumeContinuesExactly) {
  TinyData data;
  ASSERT_EQ(
      runCli({"train", "--quiet", "--checkpoint", data.file("full.st")}).code,
      0);
  // Stop mid-epoch 2 (6 steps an epoch), then resume to the end.
  CliResult part = runCli({"train", "--quiet", "--steps", "8", "--checkpoint",
                           data.file("part.st")});
  ASSERT_EQ(part.code, 0) << part.err;
  EXPECT_TRUE(contains(readBytes(data.file("part.st")), "\"kiln.step\":\"8\""));
  CliResult resumed = runCli({"train", "--resume", data.file("part.st"),
                              "--checkpoint", data.file("resumed.st")});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(contains(resumed.out, "resuming at step 8")) << resumed.out;
  EXPECT_EQ(readBytes(data.file("resumed.st")),
            readBytes(data.file("full.st")));

  CliResult done = runCli({"train", "--resume", data.file("full.st")});
  EXPECT_EQ(done.code, 0);
  EXPECT_TRUE(contains(done.out, "nothing to train")) << done.out;
}

TEST(TrainTest, ResumeRejectsAnotherModelsCheckpoint) {
  TinyData data;
  // The other model has 4 features; give it data of that shape.
  writeBytes(data.file("x4.npy"),
             f32Npy(std::vector<float>(24 * 4, 1), "(24, 4)"));
  writeBytes(data.file("t4.npy"),
             f32Npy(std::vector<float>(12 * 4, 1), "(12, 4)"));
  CliResult o = runCli({"train", "--quiet", "--steps", "1", "--data",
                        "image=" + data.file("x4.npy"), "--test",
                        "image=" + data.file("t4.npy"), "--checkpoint",
                        data.file("other.st")},
                       otherAbi());
  ASSERT_EQ(o.code, 0) << o.err;
  for (const char *command : {"train", "eval"}) {
    CliResult r = runCli(
        {command, command == std::string("train") ? "--resume" : "--checkpoint",
         data.file("other.st")});
    EXPECT_EQ(r.code, 1) << command;
    EXPECT_TRUE(contains(r.err, "tensor 'w' is f32 4x3, but parameter 'w' of "
                                "model 'tiny' is f32 3x3"))
        << r.err;
  }
  writeBytes(data.file("junk.st"), "this is not a checkpoint at all");
  CliResult j = runCli({"eval", "--checkpoint", data.file("junk.st")});
  EXPECT_EQ(j.code, 1);
  EXPECT_TRUE(contains(j.err, "junk.st' is not a checkpoint")) << j.err;
}

namespace {

/// Images with one huge (finite) pixel, which overflows the logits: the loss
/// becomes NaN. Written to DATA's bad-x.npy.
void writeOverflowingImages(TinyData &data) {
  std::vector<float> images(24 * 3, 0.5f);
  images[17 * 3 + 1] = std::numeric_limits<float>::max();
  writeBytes(data.file("bad-x.npy"), f32Npy(images, "(24, 3)"));
}

} // namespace

TEST(TrainTest, NanLossStopsWithoutOverwritingTheCheckpoint) {
  TinyData data;
  ASSERT_EQ(
      runCli({"train", "--quiet", "--checkpoint", data.file("c.st")}).code, 0);
  std::string good = readBytes(data.file("c.st"));
  writeOverflowingImages(data);
  CliResult r = runCli({"train", "--data", "image=" + data.file("bad-x.npy"),
                        "--checkpoint", data.file("c.st"), "--metrics",
                        data.file("m.csv")});
  EXPECT_EQ(r.code, 1);
  // The overflow shows as a NaN loss or as non-finite parameters (after Adam's
  // update), whichever the step reaches first.
  EXPECT_TRUE(contains(r.err, "error: loss became NaN at epoch 1 step ") ||
              contains(r.err, "error: parameters became NaN or infinite"))
      << r.err;
  EXPECT_EQ(readBytes(data.file("c.st")), good);
  EXPECT_FALSE(fileExists(data.file("m.csv")));
}

TEST(TrainTest, CheckNumericsNamesTheFirstNonFiniteTensor) {
  TinyData data;
  ASSERT_EQ(
      runCli({"train", "--quiet", "--checkpoint", data.file("c.st")}).code, 0);
  std::string good = readBytes(data.file("c.st"));
  writeOverflowingImages(data);
  CliResult r = runCli({"train", "--data", "image=" + data.file("bad-x.npy"),
                        "--checkpoint", data.file("c.st"), "--check-numerics"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "(epoch 1) made tensor '")) << r.err;
  EXPECT_TRUE(contains(r.err, "NaN or infinite (the step's loss: ")) << r.err;
  EXPECT_EQ(readBytes(data.file("c.st")), good);
}

TEST(TrainTest, StepsLrAndUnwritableCheckpoint) {
  TinyData data;
  CliResult r = runCli({"train", "--steps", "3", "--lr", "0.5", "--checkpoint",
                        data.file("c.st")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "lr 0.5")) << r.out;
  EXPECT_TRUE(contains(r.out, "stopped at step 3/6")) << r.out;
  EXPECT_TRUE(contains(readBytes(data.file("c.st")), "\"kiln.step\":\"3\""));
  CliResult w =
      runCli({"train", "--checkpoint", data.file("no/such/dir/c.st")});
  EXPECT_EQ(w.code, 1);
  EXPECT_TRUE(contains(w.err, "folder")) << w.err;
}

TEST(TrainTest, DropsThePartialBatchAndSaysSo) {
  TinyData data(26, 12);
  CliResult r = runCli({"train", "--epochs", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err,
                       "note: train data: 26 examples; each epoch's last 2 "
                       "do not fill a batch of 4"))
      << r.err;
}

//===----------------------------------------------------------------------===//
// Predict
//===----------------------------------------------------------------------===//

TEST(PredictTest, WritesOutputsDroppingThePadding) {
  TinyData data;
  ASSERT_EQ(
      runCli({"train", "--quiet", "--checkpoint", data.file("c.st")}).code, 0);
  // 6 examples: a full batch of 4 and a padded one of 2.
  std::vector<float> x = {2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 2};
  writeBytes(data.file("x.npy"), f32Npy(x, "(6, 3)"));
  CliResult r =
      runCli({"predict", "--checkpoint", data.file("c.st"), "--input",
              "image=" + data.file("x.npy"), "--output", data.file("out")});
  ASSERT_EQ(r.code, 0) << r.err;
  Expected<Array> p = readNpy(data.file("out/prediction.npy"));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->type, ElemType::I32);
  ASSERT_EQ(p->shape, (Shape{6}));
  std::vector<int64_t> got;
  for (int i = 0; i < 6; ++i)
    got.push_back(p->getInt(i));
  EXPECT_EQ(got, (std::vector<int64_t>{0, 1, 2, 1, 0, 2}));

  CliResult bad =
      runCli({"predict", "--checkpoint", data.file("c.st"), "--input",
              "label=" + data.file("x.npy"), "--output", data.file("out")});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, "'label' is not a predict input")) << bad.err;
}

TEST(CliTest, HelpAndInfoDoNotAllocateTheModel) {
  // A model of 10^15 parameters (4 PB) cannot be allocated here, but it can
  // describe itself: only the commands that run it allocate it.
  std::string manifest = test::tinyManifest();
  size_t at = manifest.find("param b f32 ");
  ASSERT_NE(at, std::string::npos);
  manifest.insert(at, "param huge f32 1000000x1000000x1000 zeros\n");
  ModelAbi abi = test::tinyAbi();
  abi.manifest = manifest.c_str();
  CliResult info = runCli({"info"}, abi);
  EXPECT_EQ(info.code, 0) << info.err;
  EXPECT_TRUE(contains(info.out, "huge")) << info.out;
  EXPECT_TRUE(contains(info.out, "1,000,000,000,000,000")) << info.out;
  CliResult help = runCli({"--help"}, abi);
  EXPECT_EQ(help.code, 0) << help.err;
}
