//===- Model.h - A compiled model: its manifest, entry points and tensors -===//
//
// Model binds the entry table of a compiled model object to the tensors the
// runtime owns for it (parameters, optimizer state, one batch of each input and
// output, the hyper-parameter and loss buffers) and calls each entry with its
// buffers in the order its manifest `entry` and `arg` records give.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_MODEL_H
#define KILN_RUNTIME_MODEL_H

#include "runtime/Error.h"
#include "runtime/KilnABI.h"
#include "runtime/Manifest.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::rt {

/// What a compiled model object exports (KilnABI.h).
struct ModelAbi {
  const char *manifest = nullptr;
  /// kiln_entries(): one function per manifest `entry` record, in order,
  /// then a null pointer.
  const kiln_entry_fn *entries = nullptr;
};

class Model {
public:
  /// Parses the manifest and allocates every tensor (zeroed).
  static Expected<Model> create(const ModelAbi &abi);
  /// The compiled model's manifest alone, nothing allocated (help and info).
  static Expected<Manifest> readManifest(const ModelAbi &abi);

  const Manifest &manifest() const { return manifest_; }
  int64_t batchSize() const { return manifest_.batch; }

  /// Initializes the parameters per the manifest (stream "init:NAME" of
  /// SEED) and zeroes the optimizer state.
  void initialize(uint64_t seed);
  /// The name of the first parameter or state tensor holding a NaN or an
  /// infinity, or empty.
  std::string firstNonFinite() const;

  /// An error unless the model exports an entry named NAME (a command checks
  /// the entries it runs before it starts).
  Error requireEntry(std::string_view name) const;
  /// Runs entry NAME (which must exist) on the current inputs, filling its
  /// outputs (and loss).
  void run(std::string_view name);

  /// Keys the random numbers of the next non-train entry calls (a model that
  /// draws them takes the hyper vector in every entry, runtime/KilnABI.h):
  /// `call` (1-based) and `seed` are the vector's step and seed.
  void setNoise(uint64_t call, uint64_t seed);

  /// Runs the train_step entry on the current input batch; returns the loss.
  /// SHARD is the batch's part of a data-parallel job's global batch (the
  /// process's rank; KILN_HYPER_SHARD).
  double trainStep(double lr, uint64_t step, uint64_t seed, uint64_t shard = 0);
  /// Runs the eval_step entry on the current input batch; returns the loss
  /// and fills the outputs.
  double evalStep();
  /// Runs the predict entry on the current batch of its inputs.
  void predict();

  std::vector<Tensor> params, state;
  /// One batch of each input and output, in manifest order.
  std::vector<Tensor> inputs, outputs;
  /// The step entries' carried state; zeroed by resetCarries().
  std::vector<Tensor> carries;
  /// The named parts of the loss, written by the train and eval entries.
  std::vector<Tensor> terms;
  /// Term `i` of the last train or eval call.
  double term(size_t i) const { return terms[i].at(0); }
  void resetCarries();

  Tensor *findInput(const std::string &name);
  Tensor *findOutput(const std::string &name);

private:
  Model() = default;
  double readLoss() const;
  void call(size_t entry);
  /// Fills the hyper vector (KILN_HYPER_*; the seed mod 2^24, which f32
  /// holds exactly).
  void setHyper(double lr, uint64_t step, uint64_t seed, uint64_t shard = 0);

  ModelAbi abi_;
  /// Per entry, its buffers in ABI order.
  std::vector<std::vector<void *>> buffers_;
  Manifest manifest_;
  Buffer hyper_, loss_;
};

} // namespace kiln::rt

#endif // KILN_RUNTIME_MODEL_H
