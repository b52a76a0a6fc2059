//===- Autodiff.h - Reverse-mode differentiation of kiln IR -----*- C++ -*-===//

#ifndef KILN_PASSES_AUTODIFF_H
#define KILN_PASSES_AUTODIFF_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/Value.h"

namespace kiln {

/// Appends, at `builder`'s insertion point (after the ops computing `loss`, in the
/// same block), ops computing d`loss`/d`wrt[i]` for each value of `wrt` (a zero
/// tensor when the loss does not depend on it). `loss` must be a rank-0 float
/// tensor. Fails with a diagnostic on an op without a gradient rule on the path
/// from `wrt` to `loss`. `numGradientOps`, when given, counts the ops built.
mlir::FailureOr<llvm::SmallVector<mlir::Value>>
differentiate(mlir::OpBuilder &builder, mlir::Value loss,
              llvm::ArrayRef<mlir::Value> wrt,
              uint64_t *numGradientOps = nullptr);

} // namespace kiln

#endif // KILN_PASSES_AUTODIFF_H
