//===- MnistSoftmax.cpp - The hand-written MNIST model as a model object -===//
//
// Defines the KilnABI.h symbols as kilnc would for softmax regression on MNIST
// (batch 64, 784 features, 10 classes, Adam lr=0.001); linked with
// kiln_runtime (which provides main) it is the `kiln-softmax-mnist`
// executable used for end-to-end checks on the real data (scripts/setup-data;
// run with KILN_DATA_DIR=<repo>/data).
//
//===----------------------------------------------------------------------===//

#include "SoftmaxModel.h"

namespace {

struct MnistConfig {
  static constexpr int batch = 64;
  static constexpr int features = 784;
  static constexpr int classes = 10;
  static const char *name() { return "softmax_mnist"; }
  static const char *lr() { return "0.001"; }
  static const char *epochs() { return "1"; }
  static const char *dataRecords() {
    return "data train image idx mnist/train-images-idx3-ubyte "
           "scale=0.00392156862745098\n"
           "data train label idx mnist/train-labels-idx1-ubyte\n"
           "data test image idx mnist/t10k-images-idx3-ubyte "
           "scale=0.00392156862745098\n"
           "data test label idx mnist/t10k-labels-idx1-ubyte\n";
  }
};

using Model = kiln::rt::test::SoftmaxModel<MnistConfig>;

} // namespace

extern "C" {
const char *kiln_manifest(void) { return Model::manifest(); }
void kiln_train_step(void **buffers) { Model::trainStep(buffers); }
void kiln_eval_step(void **buffers) { Model::evalStep(buffers); }
void kiln_predict(void **buffers) { Model::predict(buffers); }
const kiln_entry_fn *kiln_entries(void) { return Model::entries(); }
}
