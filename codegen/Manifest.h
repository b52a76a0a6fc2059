//===- Manifest.h - The buffer layout and manifest of the C ABI -*- C++ -*-===//
//
// runtime/KilnABI.h defines the contract between a compiled model and the
// runtime: which buffers each step function takes, in which order, and the
// manifest text that describes them. This file derives both from a module of
// entry functions (any number, each marked with its kind: train, eval or
// infer), in one place, so that the code kiln-entry-abi generates and the
// manifest it records always agree.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_MANIFEST_H
#define KILN_CODEGEN_MANIFEST_H

#include "ir/Entry.h"
#include "ir/KilnOps.h"
#include "runtime/Contract.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace kiln {

using contract::Role;

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

/// One buffer of an entry point: its role and, for named roles, the name of
/// the param, state, input or output record it binds.
struct AbiBuffer {
  Role role;
  std::string name;
  mlir::RankedTensorType type;
};

/// A row of the entry table: an entry function and its buffers in ABI order
/// (params, state, inputs, hyper, loss, outputs; each group in the order the
/// function names them, params and state in module order).
struct AbiEntry {
  std::string name;
  EntryKind kind;
  mlir::func::FuncOp func;
  llvm::SmallVector<AbiBuffer> buffers;
  /// The index in `buffers` of each argument of `func`, and of each result
  /// (a param or state result is the buffer it updates).
  llvm::SmallVector<unsigned> argSlots, resultSlots;
};

/// The buffers of every entry point. Buffers with the same role and name are
/// one tensor of the runtime, shared by the entries that take it.
struct AbiLayout {
  /// In the order of the module's kiln.param ops.
  llvm::SmallVector<AbiParam> params;
  /// Optimizer state, in the order the train entry first names it.
  llvm::SmallVector<AbiTensor> states;
  /// Inputs, named outputs and carries in the order the entries first name
  /// them.
  llvm::SmallVector<AbiTensor> inputs, outputs, carries;
  /// The named parts of the loss (scalars), in the order first returned.
  llvm::SmallVector<AbiTensor> terms;
  /// The type of the loss (tensor<f32> when no entry returns one).
  mlir::RankedTensorType lossType;
  /// The entry functions (those with a kiln.entry attribute), in module
  /// order.
  llvm::SmallVector<AbiEntry> entries;
};

/// Derives the layout from the module's kiln.param ops and the argument and
/// result role attributes (runtime/Contract.h) of its entry functions. Emits
/// a diagnostic and fails on anything the ABI cannot express (an unknown
/// parameter, a name with two types, an argument without a role or with one
/// its entry kind does not allow, ...).
mlir::FailureOr<AbiLayout> computeAbiLayout(mlir::ModuleOp module);

/// Renders the manifest of runtime/KilnABI.h: the layout plus the module
/// attributes kiln.model, kiln.metrics, kiln.labels and kiln.train, and the
/// optimizer kiln-autodiff recorded on the train entry.
std::string renderManifest(mlir::ModuleOp module, const AbiLayout &layout);

/// The module attribute in which kiln-entry-abi stores the manifest text.
inline constexpr llvm::StringLiteral kManifestAttrName =
    contract::kManifestAttr;
/// The module attribute in which kiln-entry-abi lists the entry names in
/// manifest order (an array of strings), for kiln-abi-wrappers' table.
inline constexpr llvm::StringLiteral kEntriesAttrName = "kiln.entries";

} // namespace kiln

#endif // KILN_CODEGEN_MANIFEST_H
