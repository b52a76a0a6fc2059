//===- ObjectEmitter.h - LLVM dialect to an object file ---------*- C++ -*-===//
//
// The end of codegen: translates the LLVM-dialect module that the lowering
// pipeline produces to LLVM IR, optimizes it at O3 for the host CPU (its name
// and features from llvm::sys, so AVX2/FMA where present), and emits an object
// file or assembly through a TargetMachine. Failures are MLIR diagnostics.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_OBJECTEMITTER_H
#define KILN_CODEGEN_OBJECTEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

#include <memory>

namespace llvm {
class LLVMContext;
class Module;
class TargetMachine;
class raw_pwrite_stream;
} // namespace llvm

namespace kiln {

/// A TargetMachine for the host (PIC, aggressive optimization); emits a
/// diagnostic at `loc` and returns null when the host target is unavailable.
std::unique_ptr<llvm::TargetMachine>
createHostTargetMachine(mlir::Location loc);

/// Translates `module` (LLVM dialect only) to LLVM IR for the host's triple
/// and data layout and runs the O3 pipeline on it (`optimize`). Registers the
/// builtin and LLVM dialect translations on the module's context. Returns
/// null after emitting a diagnostic on failure.
std::unique_ptr<llvm::Module> translateToLLVMIR(mlir::ModuleOp module,
                                                llvm::LLVMContext &llvmContext,
                                                bool optimize = true);

/// Writes `module` as an object file (or assembly text when `assembly`) for
/// the host to `os`. Diagnostics are reported at `loc`.
mlir::LogicalResult emitObject(llvm::Module &module,
                               llvm::raw_pwrite_stream &os, bool assembly,
                               mlir::Location loc);

} // namespace kiln

#endif // KILN_CODEGEN_OBJECTEMITTER_H
