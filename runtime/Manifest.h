//===- Manifest.h - The model manifest: parsed and validated -------------===//
//
// The text `kiln_manifest()` returns (see KilnABI.h) describes everything the
// runtime needs to drive a compiled model: its parameters and their
// initializers, optimizer state, inputs and outputs, metrics, the optimizer's
// hyper-parameters, training defaults and data sources.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_MANIFEST_H
#define KILN_RUNTIME_MANIFEST_H

#include "runtime/Contract.h"
#include "runtime/Error.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::rt {

/// Parameter initializers (the table in Contract.h).
using contract::InitKind;

const char *initKindName(InitKind kind);
std::optional<InitKind> parseInitKind(std::string_view name);
/// The number of arguments the initializer takes.
unsigned numInitArgs(InitKind kind);

/// KEY=VALUE options, in the order written.
using Options = std::vector<std::pair<std::string, std::string>>;
/// The value of KEY, or nullptr.
const std::string *findOption(const Options &options, std::string_view key);

/// A named tensor with a static shape: param, state, input or output.
struct TensorSpec {
  std::string name;
  DType type = DType::F32;
  Shape shape;
  int64_t numElements() const { return rt::numElements(shape); }
  size_t numBytes() const { return size_t(numElements()) * dtypeSize(type); }
  /// `f32 64x784`.
  std::string describe() const;
};

struct ParamSpec : TensorSpec {
  InitKind init = InitKind::Zeros;
  std::vector<double> initArgs;
  /// `glorot_uniform(784, 10)`.
  std::string describeInit() const;
};

/// `metric accuracy OUTPUT INPUT`.
struct MetricSpec {
  contract::MetricKind kind;
  std::string output;
  std::string input;
};

/// `labels INPUT CLASSES [ignore=V] [target]`: INPUT holds class indices in
/// [0, CLASSES).
struct LabelSpec {
  std::string input;
  int64_t classes = 0;
  /// A value the input may hold beside [0, classes): the label
  /// cross_entropy ignores (`labels INPUT CLASSES ignore=V`).
  std::optional<int32_t> ignore;
  /// Whether a loss predicts the input (cross_entropy's labels), not only a
  /// table lookup reads it (`target`).
  bool target = false;

  bool accepts(int32_t label) const {
    return (label >= 0 && label < classes) || (ignore && label == *ignore);
  }
};

/// `optimizer NAME KEY=VALUE...`.
struct OptimizerSpec {
  std::string name;
  Options options;
};

/// `data SPLIT INPUT FORMAT PATH [KEY=VALUE...]`; the path percent-decoded.
struct DataSpec {
  std::string split;
  std::string input;
  contract::DataFormat format = contract::DataFormat::Idx;
  std::string path;
  Options options;
};

/// `arg ROLE [NAME]`: one buffer of an entry point.
struct EntryArg {
  contract::Role role;
  /// The param, state, input or output record it binds; empty for hyper and
  /// loss.
  std::string name;
};

/// `entry NAME KIND` and the `arg` records that follow it: an entry point
/// and its buffers in ABI order.
struct EntrySpec {
  std::string name;
  contract::EntryKind kind = contract::EntryKind::Infer;
  std::vector<EntryArg> args;
  /// The leading dimension of its first input (0 if it takes none); the
  /// inputs of train and eval entries all have it.
  int64_t batch = 0;

  /// The names of the inputs it takes, in order.
  std::vector<std::string> inputNames() const;
  bool takes(contract::Role role, std::string_view name) const;
  /// Whether it takes any buffer of `role`.
  bool takes(contract::Role role) const;
};

struct Manifest {
  int version = 0;
  std::string model;
  std::vector<ParamSpec> params;
  std::vector<TensorSpec> state;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  /// State a step entry carries from call to call (zeros to start).
  std::vector<TensorSpec> carries;
  /// The named parts of the loss (`term` records: f32 scalars) the train and
  /// eval entries return beside it.
  std::vector<TensorSpec> terms;
  std::vector<MetricSpec> metrics;
  std::vector<LabelSpec> labels;
  /// The most positions the generate step reads (`context` record), or 0.
  int64_t generateContext = 0;
  /// The train entry averages its gradients over a data-parallel job's
  /// processes (`parallel data`; kilnc --mpi).
  bool dataParallel = false;
  std::optional<OptimizerSpec> optimizer;
  /// The `train` record's batch: the batch of the train entry (else of the
  /// eval entry, else of the first entry that takes inputs).
  int64_t batch = 0;
  int64_t epochs = 1;
  uint64_t seed = 0;
  /// The learning-rate schedule (none: the rate is constant).
  std::optional<contract::Schedule> schedule;
  std::vector<DataSpec> data;
  /// The entry table, in the order of the compiled object's kiln_entries().
  std::vector<EntrySpec> entries;

  /// The entry named NAME, or nullptr.
  const EntrySpec *findEntry(std::string_view name) const;
  /// The index of the entry named NAME in `entries`, or -1.
  int findEntryIndex(std::string_view name) const;
  const TensorSpec *findInput(std::string_view name) const;
  const TensorSpec *findOutput(std::string_view name) const;
  /// The data record for SPLIT and INPUT, or nullptr.
  const DataSpec *findData(std::string_view split,
                           std::string_view input) const;
  /// The optimizer's learning rate: the manifest's, else the default of its
  /// optimizer in Contract.h's table.
  double learningRate() const;
  int64_t numParamElements() const;
};

/// Parses and validates a manifest. Errors name the line:
/// `manifest line 4: ...`.
Expected<Manifest> parseManifest(std::string_view text);

/// Decodes %XX escapes (the manifest writes spaces as %20, '%' as %25).
std::optional<std::string> percentDecode(std::string_view text);

/// Parses a floating-point number (the whole string); nullopt otherwise.
std::optional<double> parseDouble(std::string_view text);
/// Parses a decimal integer (the whole string); nullopt otherwise.
std::optional<int64_t> parseInt(std::string_view text);
std::optional<uint64_t> parseUInt(std::string_view text);

} // namespace kiln::rt

#endif // KILN_RUNTIME_MANIFEST_H
