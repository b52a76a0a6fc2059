//===- Contract.h - Facts the compiler and the runtime share --------------===//
//
// Everything kilnc and libkiln_runtime must agree on, written once: the roles
// of ABI buffers and the attributes that mark them in the IR, the kinds of
// entry points, the hyper-parameter vector (KilnABI.h), the initializer and
// optimizer tables (names, arguments, state slots, defaults and valid ranges),
// the module attributes the frontend sets, and the manifest's record names.
//
// This header depends on the C++17 standard library only: the runtime has no
// LLVM or MLIR dependency, and the compiler includes it as is.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CONTRACT_H
#define KILN_RUNTIME_CONTRACT_H

#include "runtime/KilnABI.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln::contract {

/// The `kiln-manifest N` version this compiler writes and this runtime reads.
inline constexpr int kManifestVersion = 2;

/// The length of the hyper-parameter vector (indices: KILN_HYPER_* in
/// KilnABI.h).
inline constexpr int64_t kHyperCount = KILN_HYPER_COUNT;

/// Looks up `name` in a table of entries with a `name` field.
template <typename Table>
constexpr auto findByName(const Table &table, std::string_view name)
    -> decltype(&table[0]) {
  for (const auto &entry : table)
    if (name == entry.name)
      return &entry;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Buffer roles
//===----------------------------------------------------------------------===//

/// What an ABI buffer holds. In the IR, an entry function's argument or result
/// carries exactly one role attribute (`kiln.param = "fc1.w"`); in the
/// manifest, an `arg` record names the role and the buffer.
enum class Role : uint8_t {
  Param,
  State,
  Input,
  Hyper,
  Loss,
  Output,
  Carry,
  Term
};

struct RoleInfo {
  Role role;
  /// The manifest's spelling (`param`).
  const char *name;
  /// The argument/result attribute in the IR (`kiln.param`).
  const char *attr;
  /// Whether the buffer has a name (the attribute's string value); hyper and
  /// loss are unnamed: an entry has at most one of each.
  bool named;
};

/// The role attributes (arrays, so that llvm::StringLiteral can wrap them).
inline constexpr char kParamAttr[] = "kiln.param";
inline constexpr char kStateAttr[] = "kiln.state";
inline constexpr char kInputAttr[] = "kiln.input";
inline constexpr char kHyperAttr[] = "kiln.hyper";
inline constexpr char kLossAttr[] = "kiln.loss";
inline constexpr char kOutputAttr[] = "kiln.output";
inline constexpr char kCarryAttr[] = "kiln.carry";
inline constexpr char kTermAttr[] = "kiln.term";

inline constexpr RoleInfo kRoles[] = {
    {Role::Param, "param", kParamAttr, true},
    {Role::State, "state", kStateAttr, true},
    {Role::Input, "input", kInputAttr, true},
    {Role::Hyper, "hyper", kHyperAttr, false},
    {Role::Loss, "loss", kLossAttr, false},
    {Role::Output, "output", kOutputAttr, true},
    /// A recurrence's state that a step entry reads and overwrites in place,
    /// so that the next call continues where this one stopped.
    {Role::Carry, "carry", kCarryAttr, true},
    /// A named part of the loss (`loss reconstruction + kl`): a scalar the
    /// train and eval entries return beside the loss, which the runtime
    /// averages and reports like it.
    {Role::Term, "term", kTermAttr, true},
};

constexpr const RoleInfo &info(Role role) {
  return kRoles[static_cast<size_t>(role)];
}
inline std::optional<Role> parseRole(std::string_view name) {
  if (const RoleInfo *r = findByName(kRoles, name))
    return r->role;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

/// What an entry point does, which fixes the roles its buffers may have.
enum class EntryKind : uint8_t {
  /// params, state, inputs, hyper -> params, state (in place), loss.
  Train,
  /// params, inputs -> loss, outputs (evaluation mode).
  Eval,
  /// params, inputs -> outputs: prediction, sampling, encoding, ... (any
  /// number of these per model, each with its own inputs and outputs).
  Infer,
  /// params, inputs, carries -> outputs, carries (in place): one step of a
  /// recurrence from carried state (text generation), evaluation mode.
  Step,
};

struct EntryKindInfo {
  EntryKind kind;
  const char *name;
  /// Bit masks over Role of the roles allowed for arguments and results.
  unsigned argRoles, resultRoles;
};

constexpr unsigned roleBit(Role r) { return 1u << static_cast<unsigned>(r); }

// Train and eval entries of a model with stateful scans carry their state
// from batch to batch; an infer entry reads it (zero: each call starts anew).
// Every kind may take the hyper vector: a model that draws random numbers
// (kiln.random_normal, ...) is keyed by its step and seed in every mode.
inline constexpr EntryKindInfo kEntryKinds[] = {
    {EntryKind::Train, "train",
     roleBit(Role::Param) | roleBit(Role::State) | roleBit(Role::Input) |
         roleBit(Role::Hyper) | roleBit(Role::Carry),
     roleBit(Role::Param) | roleBit(Role::State) | roleBit(Role::Loss) |
         roleBit(Role::Carry) | roleBit(Role::Term)},
    {EntryKind::Eval, "eval",
     roleBit(Role::Param) | roleBit(Role::Input) | roleBit(Role::Carry) |
         roleBit(Role::Hyper),
     roleBit(Role::Loss) | roleBit(Role::Output) | roleBit(Role::Carry) |
         roleBit(Role::Term)},
    {EntryKind::Infer, "infer",
     roleBit(Role::Param) | roleBit(Role::Input) | roleBit(Role::Carry) |
         roleBit(Role::Hyper),
     roleBit(Role::Output)},
    {EntryKind::Step, "step",
     roleBit(Role::Param) | roleBit(Role::Input) | roleBit(Role::Carry) |
         roleBit(Role::Hyper),
     roleBit(Role::Output) | roleBit(Role::Carry)},
};

constexpr const EntryKindInfo &info(EntryKind kind) {
  return kEntryKinds[static_cast<size_t>(kind)];
}
inline std::optional<EntryKind> parseEntryKind(std::string_view name) {
  if (const EntryKindInfo *k = findByName(kEntryKinds, name))
    return k->kind;
  return std::nullopt;
}

/// The entry points every trainable model has, by name. A model may export
/// more (`sample`, `encode`, ...): they are Infer entries named by the model.
inline constexpr const char *kTrainStepEntry = "train_step";
inline constexpr const char *kEvalStepEntry = "eval_step";
inline constexpr const char *kPredictEntry = "predict";
/// The step entry of a model's `generate` block.
inline constexpr const char *kGenerateStepEntry = "generate_step";
/// The entry of a model's `sample` block: new examples from the model's own
/// random numbers (a VAE's decoder on latents drawn from the prior).
inline constexpr const char *kSampleEntry = "sample";
/// The entry of a model's `reconstruct` block: what the model makes of its
/// inputs (a recurrent VAE's lines decoded from their latents); without one,
/// the `reconstruct` command runs predict.
inline constexpr const char *kReconstructEntry = "reconstruct";
/// The entry of a model's `translate` block, which the runtime's `translate`
/// command decodes greedily or by beam search, in one of two forms:
/// - an infer entry: given a batch of source sentences and the target
///   sentences so far (both i32 [batch, length] of token ids), the scores of
///   every next target token (f32 [batch, length, vocabulary]); each call
///   recomputes the whole sentence pair;
/// - a step entry (its layers keep key/value caches as carries): given one
///   target token per row (i32 [batch, 1]) and the outputs of the `encode`
///   entry (inputs of the same names), the scores of the next token (f32
///   [batch, vocabulary]); each call computes one position.
inline constexpr const char *kTranslateEntry = "translate";
/// The entry of a model's `encode` block: a translation model's encoder, run
/// once per batch of source sentences (i32 [batch, length]); its outputs
/// feed the step form of the translate entry.
inline constexpr const char *kEncodeEntry = "encode";

struct StandardEntry {
  const char *name;
  EntryKind kind;
};
/// The standard entries' kinds: a function with one of these names is an
/// entry point of that kind even without a kiln.entry attribute.
inline constexpr StandardEntry kStandardEntries[] = {
    {kTrainStepEntry, EntryKind::Train},
    {kEvalStepEntry, EntryKind::Eval},
    {kPredictEntry, EntryKind::Infer},
};

/// The IR attribute on an entry function that gives its kind
/// (`kiln.entry = "infer"`). Functions without it are not entry points,
/// except the standard entries above.
inline constexpr char kEntryAttr[] = "kiln.entry";
/// The C symbol of entry NAME's `void (void **buffers)` function.
inline constexpr const char *kEntrySymbolPrefix = "kiln_";

//===----------------------------------------------------------------------===//
// Initializers
//===----------------------------------------------------------------------===//

/// Parameter initializers; the values match the kiln.param op's InitKind
/// (ir/KilnOps.td), which the compiler checks against this table.
enum class InitKind : uint8_t {
  Zeros,
  Ones,
  Constant,      // (value)
  Uniform,       // (low, high)
  Normal,        // (mean, std)
  GlorotUniform, // (fan_in, fan_out)
  GlorotNormal,  // (fan_in, fan_out)
  HeUniform,     // (fan_in)
  HeNormal,      // (fan_in)
};

struct InitInfo {
  InitKind kind;
  const char *name;
  unsigned numArgs;
};

inline constexpr InitInfo kInits[] = {
    {InitKind::Zeros, "zeros", 0},
    {InitKind::Ones, "ones", 0},
    {InitKind::Constant, "constant", 1},
    {InitKind::Uniform, "uniform", 2},
    {InitKind::Normal, "normal", 2},
    {InitKind::GlorotUniform, "glorot_uniform", 2},
    {InitKind::GlorotNormal, "glorot_normal", 2},
    {InitKind::HeUniform, "he_uniform", 1},
    {InitKind::HeNormal, "he_normal", 1},
};

constexpr const InitInfo &info(InitKind kind) {
  return kInits[static_cast<size_t>(kind)];
}
inline std::optional<InitKind> parseInitKind(std::string_view name) {
  if (const InitInfo *i = findByName(kInits, name))
    return i->kind;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Optimizers
//===----------------------------------------------------------------------===//

enum class OptimizerKind : uint8_t { Sgd, Momentum, Adam, AdamW };

/// A hyper-parameter's valid range: a number in (lo|[lo, hi)|hi], or a bool.
struct HyperRange {
  const char *name;
  double lo, hi;
  bool loOpen, hiOpen;
  bool isBool;
  /// For diagnostics: `> 0`, `in [0, 1)`, ...
  const char *text;

  constexpr bool contains(double v) const {
    if (isBool)
      return v == 0 || v == 1;
    if (v != v) // NaN
      return false;
    bool aboveLo = loOpen ? v > lo : v >= lo;
    bool belowHi = hiOpen ? v < hi : v <= hi;
    return aboveLo && belowHi;
  }
};

inline constexpr double kInf = HUGE_VAL;

/// Every optimizer hyper-parameter and its valid range.
inline constexpr HyperRange kHyperRanges[] = {
    {"lr", 0, kInf, true, true, false, "> 0"},
    {"beta1", 0, 1, false, true, false, "in [0, 1)"},
    {"beta2", 0, 1, false, true, false, "in [0, 1)"},
    {"momentum", 0, 1, false, true, false, "in [0, 1)"},
    {"eps", 0, kInf, true, true, false, "> 0"},
    {"weight_decay", 0, kInf, false, true, false, ">= 0"},
    {"clip_norm", 0, kInf, false, true, false, ">= 0 (0 disables it)"},
    {"nesterov", 0, 1, false, false, true, "true or false"},
};

struct HyperDefault {
  const char *name;
  double value;
};

struct OptimizerInfo {
  OptimizerKind kind;
  const char *name;
  /// Per-parameter state slots (state buffers are named `PARAM:SLOT`).
  const char *slots[2];
  unsigned numSlots;
  /// The hyper-parameters it takes, with their defaults, in DSL order.
  HyperDefault hyper[6];
  unsigned numHyper;
};

inline constexpr OptimizerInfo kOptimizers[] = {
    {OptimizerKind::Sgd,
     "sgd",
     {},
     0,
     {{"lr", 0.01}, {"weight_decay", 0}, {"clip_norm", 0}},
     3},
    {OptimizerKind::Momentum,
     "momentum",
     {"velocity"},
     1,
     {{"lr", 0.01},
      {"momentum", 0.9},
      {"nesterov", 0},
      {"weight_decay", 0},
      {"clip_norm", 0}},
     5},
    {OptimizerKind::Adam,
     "adam",
     {"m", "v"},
     2,
     {{"lr", 1e-3},
      {"beta1", 0.9},
      {"beta2", 0.999},
      {"eps", 1e-8},
      {"weight_decay", 0},
      {"clip_norm", 0}},
     6},
    {OptimizerKind::AdamW,
     "adamw",
     {"m", "v"},
     2,
     {{"lr", 1e-3},
      {"beta1", 0.9},
      {"beta2", 0.999},
      {"eps", 1e-8},
      {"weight_decay", 0.01},
      {"clip_norm", 0}},
     6},
};

/// The optimizer of a model whose source has no `train` block (or no
/// `optimizer` line): Adam with its defaults, lr 1e-3, as Keras.
inline constexpr OptimizerKind kDefaultOptimizer = OptimizerKind::Adam;

constexpr const OptimizerInfo &info(OptimizerKind kind) {
  return kOptimizers[static_cast<size_t>(kind)];
}
inline std::optional<OptimizerKind> parseOptimizer(std::string_view name) {
  if (const OptimizerInfo *o = findByName(kOptimizers, name))
    return o->kind;
  return std::nullopt;
}
inline const HyperRange *findHyperRange(std::string_view name) {
  return findByName(kHyperRanges, name);
}
/// The default of hyper-parameter `name` of `kind`, if it takes one.
inline std::optional<double> hyperDefault(OptimizerKind kind,
                                          std::string_view name) {
  const OptimizerInfo &o = info(kind);
  for (unsigned i = 0; i < o.numHyper; ++i)
    if (name == o.hyper[i].name)
      return o.hyper[i].value;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Learning-rate schedules
//===----------------------------------------------------------------------===//

/// How the learning rate changes over a run (`schedule NAME(...)` in a train
/// block), as PyTorch's schedulers: constant, cosine annealing to `min_lr`
/// (CosineAnnealingLR), a linear ramp to `min_lr` (LinearLR) or a step decay
/// by `gamma` every `every` epochs (StepLR); each after an optional linear
/// warm-up of `warmup` steps from lr / warmup.
enum class ScheduleKind : uint8_t { Constant, Cosine, Linear, Step };

/// A schedule parameter's valid range (the optimizer table's HyperRange).
inline constexpr HyperRange kScheduleRanges[] = {
    {"warmup", 0, kInf, false, true, false, "a whole number of steps >= 0"},
    {"min_lr", 0, kInf, false, true, false, ">= 0"},
    {"every", 0, kInf, true, true, false, "a whole number of epochs > 0"},
    {"gamma", 0, 1, true, false, false, "in (0, 1]"},
};

struct ScheduleInfo {
  ScheduleKind kind;
  const char *name;
  /// Its parameters, with their defaults, in DSL order.
  HyperDefault params[3];
  unsigned numParams;
};

inline constexpr ScheduleInfo kSchedules[] = {
    {ScheduleKind::Constant, "constant", {{"warmup", 0}}, 1},
    {ScheduleKind::Cosine, "cosine", {{"warmup", 0}, {"min_lr", 0}}, 2},
    {ScheduleKind::Linear, "linear", {{"warmup", 0}, {"min_lr", 0}}, 2},
    {ScheduleKind::Step,
     "step",
     {{"warmup", 0}, {"every", 1}, {"gamma", 0.1}},
     3},
};

constexpr const ScheduleInfo &info(ScheduleKind kind) {
  return kSchedules[static_cast<size_t>(kind)];
}
inline std::optional<ScheduleKind> parseSchedule(std::string_view name) {
  if (const ScheduleInfo *s = findByName(kSchedules, name))
    return s->kind;
  return std::nullopt;
}
inline const HyperRange *findScheduleRange(std::string_view name) {
  return findByName(kScheduleRanges, name);
}
/// Whether parameter `name` must be a whole number (warmup, every).
inline bool scheduleParamIsCount(std::string_view name) {
  return name == "warmup" || name == "every";
}

/// A schedule with every parameter resolved.
struct Schedule {
  ScheduleKind kind = ScheduleKind::Constant;
  double warmup = 0, minLr = 0, every = 1, gamma = 0.1;
};

/// The learning rate of 1-based step `step` of a run of `totalSteps` steps
/// (`stepsPerEpoch` to an epoch) whose base rate is `lr`. The decay runs from
/// the end of the warm-up to the last step, which gets `min_lr` exactly.
inline double scheduledLr(const Schedule &s, double lr, int64_t step,
                          int64_t totalSteps, int64_t stepsPerEpoch) {
  double warmup = s.warmup;
  if (warmup > 0 && double(step) <= warmup)
    return lr * double(step) / warmup;
  double span = double(totalSteps) - warmup;
  double progress =
      span > 0 ? std::min(1.0, (double(step) - warmup) / span) : 1.0;
  switch (s.kind) {
  case ScheduleKind::Constant:
    return lr;
  case ScheduleKind::Cosine:
    return s.minLr + (lr - s.minLr) * 0.5 * (1 + std::cos(M_PI * progress));
  case ScheduleKind::Linear:
    return lr + (s.minLr - lr) * progress;
  case ScheduleKind::Step: {
    int64_t epoch = stepsPerEpoch > 0 ? (step - 1) / stepsPerEpoch : 0;
    return lr * std::pow(s.gamma, std::floor(double(epoch) / s.every));
  }
  }
  return lr;
}

//===----------------------------------------------------------------------===//
// IR attributes (module level) and manifest records
//===----------------------------------------------------------------------===//

/// The model's name (a string).
inline constexpr char kModelAttr[] = "kiln.model";
/// The train block: {optimizer = {name, hyper...}, batch, epochs, seed, data,
/// test}.
inline constexpr char kTrainAttr[] = "kiln.train";
/// [[kind, output, input], ...]: metrics the runtime computes.
inline constexpr char kMetricsAttr[] = "kiln.metrics";
/// {input = classes, ...}: label inputs and their class counts.
inline constexpr char kLabelsAttr[] = "kiln.labels";
/// {input = value, ...}: the label value cross_entropy ignores in an input
/// (its ignore_index), which data may hold beside [0, classes).
inline constexpr char kIgnoredLabelAttr[] = "kiln.ignored_label";
/// [input, ...]: the label inputs a loss predicts (cross_entropy's labels),
/// beside those that only index a table (embedding ids).
inline constexpr char kTargetLabelsAttr[] = "kiln.target_labels";
/// The most positions a generate or translate block's step reads (its
/// `context(N)`): the runtime's generate refuses a prompt and length that
/// need more; translate ends a translation there.
inline constexpr char kGenerateContextAttr[] = "kiln.generate_context";
/// The manifest text, set by kiln-entry-abi.
inline constexpr char kManifestAttr[] = "kiln.manifest";
/// On @train_step: the resolved optimizer ({name, hyper...}, every default
/// filled) that kiln-autodiff built, which the manifest records.
inline constexpr char kOptimizerAttr[] = "kiln.optimizer";
/// On @train_step: it averages its gradients over the processes of a
/// data-parallel job (kiln-autodiff{data-parallel}); the manifest says so with
/// `parallel data`.
inline constexpr char kDataParallelAttr[] = "kiln.data_parallel";
/// The runtime functions a data-parallel train step calls
/// (runtime/KilnABI.h), by element type.
inline constexpr char kAllReduceF32[] = "kiln_all_reduce_f32";
inline constexpr char kAllReduceF64[] = "kiln_all_reduce_f64";

/// Manifest record kinds (the first field of a line).
namespace record {
inline constexpr const char *kHeader = "kiln-manifest";
inline constexpr const char *kModel = "model";
inline constexpr const char *kParam = "param";
inline constexpr const char *kState = "state";
inline constexpr const char *kInput = "input";
inline constexpr const char *kOutput = "output";
inline constexpr const char *kCarry = "carry";
inline constexpr const char *kTerm = "term";
inline constexpr const char *kMetric = "metric";
inline constexpr const char *kLabels = "labels";
inline constexpr const char *kOptimizer = "optimizer";
inline constexpr const char *kTrain = "train";
inline constexpr const char *kSchedule = "schedule";
inline constexpr const char *kData = "data";
inline constexpr const char *kEntry = "entry";
inline constexpr const char *kArg = "arg";
inline constexpr const char *kContext = "context";
inline constexpr const char *kParallel = "parallel";
} // namespace record

//===----------------------------------------------------------------------===//
// Data formats
//===----------------------------------------------------------------------===//

/// What a data source reads (`data INPUT = FORMAT(...)` in a train block, the
/// `data` records of the manifest, a command line path's extension).
enum class DataFormat : uint8_t {
  Idx,   ///< IDX arrays (MNIST's), gzip'd or not
  Npy,   ///< a NumPy .npy array
  Npz,   ///< one array of a NumPy .npz archive
  Csv,   ///< comma-separated numbers, one example a line
  Text,  ///< UTF-8 text cut into windows of character ids
  Lines, ///< UTF-8 text, one example a line
  Pairs, ///< tab-separated columns (sentence pairs), one example a line
  Wav,   ///< 16-bit PCM mono WAV audio: one file, or a tab-separated list
};

struct DataFormatInfo {
  DataFormat format;
  const char *name;
};

inline constexpr DataFormatInfo kDataFormats[] = {
    {DataFormat::Idx, "idx"},     {DataFormat::Npy, "npy"},
    {DataFormat::Npz, "npz"},     {DataFormat::Csv, "csv"},
    {DataFormat::Text, "text"},   {DataFormat::Lines, "lines"},
    {DataFormat::Pairs, "pairs"}, {DataFormat::Wav, "wav"},
};

constexpr const DataFormatInfo &info(DataFormat format) {
  return kDataFormats[static_cast<size_t>(format)];
}
inline std::optional<DataFormat> parseDataFormat(std::string_view name) {
  if (const DataFormatInfo *f = findByName(kDataFormats, name))
    return f->format;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Metrics
//===----------------------------------------------------------------------===//

/// What the runtime computes on the test set beside the loss, comparing an
/// output with an input of the same size (`metric KIND OUTPUT INPUT`).
enum class MetricKind : uint8_t {
  /// The fraction of elements equal (class predictions against labels).
  Accuracy,
  /// The peak signal-to-noise ratio of images with values in [0, 1], in dB:
  /// 10 log10(1 / mean squared error) per example, averaged over examples.
  Psnr,
};

struct MetricKindInfo {
  MetricKind kind;
  const char *name;
};

inline constexpr MetricKindInfo kMetricKinds[] = {
    {MetricKind::Accuracy, "accuracy"},
    {MetricKind::Psnr, "psnr"},
};

constexpr const MetricKindInfo &info(MetricKind kind) {
  return kMetricKinds[static_cast<size_t>(kind)];
}
inline std::optional<MetricKind> parseMetricKind(std::string_view name) {
  if (const MetricKindInfo *k = findByName(kMetricKinds, name))
    return k->kind;
  return std::nullopt;
}

/// The PSNR of an example whose reconstruction is exact (its MSE is 0).
inline constexpr double kMaxPsnr = 100.0;

} // namespace kiln::contract

#endif // KILN_RUNTIME_CONTRACT_H
