//===- Passes.h - Kiln's code generation passes -----------------*- C++ -*-===//
//
// Lowering from the kiln dialect to the LLVM dialect and the C ABI of
// runtime/KilnABI.h. See Passes.td for what each pass does, and Pipeline.h for
// the order in which they run.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_PASSES_H
#define KILN_CODEGEN_PASSES_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace kiln {

#define GEN_PASS_DECL
#include "codegen/Passes.h.inc"

/// The unit attribute with which kiln-to-linalg marks each linalg.generic
/// that gathers im2col columns, for kiln-share-im2col (which removes it).
constexpr llvm::StringLiteral kIm2colAttrName = "kiln.im2col";

/// Registers the passes above with the global registry, so that kiln-opt and
/// pipeline strings can name them.
void registerCodegenPasses();

/// The widest vectors the host's FMA units take: 512 bits with AVX-512, 256
/// with AVX (and elsewhere: LLVM splits wider vectors as needed).
int64_t hostVectorBits();

/// Bytes of a statically shaped memref with byte-sized elements and the
/// identity layout, or -1 (kiln-static-buffers' sizes, the byte ranges
/// kiln-noalias-kernels compares).
int64_t byteSize(mlir::MemRefType type);

/// A loop over [lo, hi) step `step` with constant bounds whose body `body`
/// builds from the induction variable: scf.parallel when `parallel`, else
/// scf.for. Nothing when the range is empty.
void buildConstantLoop(
    mlir::OpBuilder &builder, mlir::Location loc, int64_t lo, int64_t hi,
    int64_t step, bool parallel,
    llvm::function_ref<void(mlir::OpBuilder &, mlir::Value)> body);

} // namespace kiln

#endif // KILN_CODEGEN_PASSES_H
