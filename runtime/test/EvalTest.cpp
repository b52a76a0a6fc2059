//===- EvalTest.cpp - Evaluation scores every example ---------------------===//

#include "runtime/Model.h"
#include "runtime/Train.h"

#include "SoftmaxModel.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace kiln::rt;

namespace {

/// The dimensions of test::tinyAbi()'s model.
struct Tiny {
  static constexpr int batch = 4, features = 3, classes = 3;
};
using Reference = test::SoftmaxModel<Tiny>;

/// A data set of `n` examples for the tiny model's image and label inputs.
Dataset makeData(const Model &model, int n) {
  const Manifest &m = model.manifest();
  Dataset d;
  d.examples = n;
  InputData image, label;
  image.spec = m.findInput("image");
  image.exampleElements = Tiny::features;
  image.exampleBytes = Tiny::features * sizeof(float);
  label.spec = m.findInput("label");
  label.exampleElements = 1;
  label.exampleBytes = sizeof(int32_t);
  for (int i = 0; i < n; ++i) {
    for (int f = 0; f < Tiny::features; ++f) {
      float v = float((i * 7 + f * 3) % 5) - 2.0f;
      image.bytes.append(reinterpret_cast<const char *>(&v), sizeof v);
    }
    int32_t y = (i * 5) % Tiny::classes;
    label.bytes.append(reinterpret_cast<const char *>(&y), sizeof y);
  }
  d.inputs = {std::move(image), std::move(label)};
  return d;
}

} // namespace

TEST(EvalTest, ScoresEveryExampleOfAPartialBatch) {
  Expected<Model> model = Model::create(test::tinyAbi());
  ASSERT_TRUE(model) << model.error().message();
  model->initialize(3);
  // 9 examples: two full batches of 4 and one of 1 padded with 3 copies.
  Dataset data = makeData(*model, 9);
  EvalResult r = evaluate(*model, data);
  EXPECT_EQ(r.examples, 9);
  EXPECT_EQ(r.batches, 3);

  // The reference: each example's own loss (a batch of 4 copies of it, whose
  // mean is its loss) and prediction, averaged over the 9.
  const auto *w = static_cast<const float *>(model->params[0].data());
  const auto *b = static_cast<const float *>(model->params[1].data());
  const auto *x = reinterpret_cast<const float *>(data.inputs[0].bytes.data());
  const auto *y =
      reinterpret_cast<const int32_t *>(data.inputs[1].bytes.data());
  double loss = 0;
  int correct = 0;
  for (int i = 0; i < 9; ++i) {
    float xs[Tiny::batch * Tiny::features];
    int32_t ys[Tiny::batch], pred[Tiny::batch];
    for (int k = 0; k < Tiny::batch; ++k) {
      std::memcpy(xs + k * Tiny::features, x + i * Tiny::features,
                  sizeof(float) * Tiny::features);
      ys[k] = y[i];
    }
    loss += Reference::lossAndGrad(w, b, xs, ys, nullptr, pred);
    correct += pred[0] == y[i];
  }
  EXPECT_NEAR(r.loss, loss / 9, 1e-5);
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_DOUBLE_EQ(r.metrics[0], correct / 9.0);
}
