//===- Manifest.h - The buffer layout and manifest of the C ABI -*- C++ -*-===//
//
// runtime/KilnABI.h defines the contract between a compiled model and the
// runtime: which buffers each step function takes, in which order, and the
// manifest text that describes them. This file derives both from a module of
// entry functions (@train_step, @eval_step, @predict), in one place, so that
// the code kiln-entry-abi generates and the manifest it records always agree.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_MANIFEST_H
#define KILN_CODEGEN_MANIFEST_H

#include "ir/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace kiln {

/// The kinds of entry functions, named as in runtime/KilnABI.h.
enum class EntryKind { TrainStep, EvalStep, Predict };

/// `train_step`, `eval_step` or `predict`.
llvm::StringRef getEntryName(EntryKind kind);

/// One named buffer of the ABI.
struct AbiTensor {
  std::string name;
  mlir::RankedTensorType type;
};

/// A parameter: a buffer plus the initializer the runtime applies.
struct AbiParam : AbiTensor {
  InitKind init;
  llvm::SmallVector<double> initArgs;
};

/// The buffers of every step function, in ABI order. Every entry function
/// takes all `params` and all `outputs` (the manifest lists one set for all);
/// the train and eval steps take all `inputs`, predict its `predictInputs`.
struct AbiLayout {
  /// In the order of the module's kiln.param ops.
  llvm::SmallVector<AbiParam> params;
  /// Optimizer state, in the order @train_step first names it.
  llvm::SmallVector<AbiTensor> states;
  /// Inputs in the order the entries (train, eval, predict) first name them.
  llvm::SmallVector<AbiTensor> inputs;
  /// Names of the inputs of @predict, in its argument order.
  llvm::SmallVector<std::string> predictInputs;
  /// Named outputs in the order @eval_step, then @predict, first name them.
  llvm::SmallVector<AbiTensor> outputs;
  /// The type of the train/eval loss (tensor<f32> when neither returns one).
  mlir::RankedTensorType lossType;
  /// The entry functions present, in kind order.
  llvm::SmallVector<std::pair<EntryKind, mlir::func::FuncOp>> entries;
};

/// Derives the layout from the module's kiln.param ops and the argument and
/// result attributes (kiln.param, kiln.state, kiln.input, kiln.hyper,
/// kiln.loss, kiln.output) of its entry functions. Emits a diagnostic and
/// fails on anything the ABI cannot express (an unknown parameter, a name
/// with two types, an argument without a role, ...).
mlir::FailureOr<AbiLayout> computeAbiLayout(mlir::ModuleOp module);

/// Renders the manifest of runtime/KilnABI.h: the layout plus the module
/// attributes kiln.model, kiln.metrics, kiln.labels and kiln.train. Besides the
/// records KilnABI.h lists, it writes one `entry NAME` record per step function
/// present (runtimes ignore unknown records).
std::string renderManifest(mlir::ModuleOp module, const AbiLayout &layout);

/// The module attribute in which kiln-entry-abi stores the manifest text.
inline constexpr llvm::StringLiteral kManifestAttrName = "kiln.manifest";

} // namespace kiln

#endif // KILN_CODEGEN_MANIFEST_H
