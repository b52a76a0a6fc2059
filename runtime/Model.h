//===- Model.h - A compiled model: its manifest, entry points and tensors -===//
//
// Model binds the four ABI functions of a compiled model object to the tensors
// the runtime owns for it (parameters, optimizer state, one batch of inputs and
// outputs, the hyper-parameter and loss buffers) and calls the step functions
// with the buffer arrays in the order KilnABI.h specifies.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_MODEL_H
#define KILN_RUNTIME_MODEL_H

#include "runtime/Error.h"
#include "runtime/Manifest.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt {

/// The entry points of a compiled model (KilnABI.h).
struct ModelAbi {
  const char *manifest = nullptr;
  void (*trainStep)(void **buffers) = nullptr;
  void (*evalStep)(void **buffers) = nullptr;
  void (*predict)(void **buffers) = nullptr;
};

class Model {
public:
  /// Parses the manifest and allocates every tensor (zeroed).
  static Expected<Model> create(const ModelAbi &abi);

  const Manifest &manifest() const { return manifest_; }
  int64_t batchSize() const { return manifest_.batch; }

  /// Initializes the parameters per the manifest (stream "init:NAME" of
  /// SEED) and zeroes the optimizer state.
  void initialize(uint64_t seed);
  /// The name of the first parameter or state tensor holding a NaN or an
  /// infinity, or empty.
  std::string firstNonFinite() const;

  /// Runs kiln_train_step on the current input batch; returns the loss.
  double trainStep(double lr, uint64_t step, uint64_t seed);
  /// Runs kiln_eval_step on the current input batch; returns the loss and
  /// fills the outputs.
  double evalStep();
  /// Runs kiln_predict on the current predict-input batch.
  void predict();

  std::vector<Tensor> params, state;
  /// One batch of each input and output, in manifest order.
  std::vector<Tensor> inputs, outputs;

  Tensor *findInput(const std::string &name);
  Tensor *findOutput(const std::string &name);

private:
  Model() = default;
  double readLoss() const;

  ModelAbi abi_;
  Manifest manifest_;
  Buffer hyper_, loss_;
};

} // namespace kiln::rt

#endif // KILN_RUNTIME_MODEL_H
