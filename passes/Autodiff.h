//===- Autodiff.h - Reverse-mode differentiation of kiln IR -----*- C++ -*-===//

#ifndef KILN_PASSES_AUTODIFF_H
#define KILN_PASSES_AUTODIFF_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Value.h"

namespace kiln {

/// Appends, at `builder`'s insertion point (after the ops computing `loss`, in
/// the same block), ops computing d`loss`/d`wrt[i]` for each value of `wrt` (a
/// zero tensor when the loss does not depend on it). `loss` must be a rank-0
/// float tensor. Fails with a diagnostic on an op without a gradient rule on
/// the path from `wrt` to `loss`. `numGradientOps`, when given, counts the ops
/// built.
mlir::FailureOr<llvm::SmallVector<mlir::Value>>
differentiate(mlir::OpBuilder &builder, mlir::Value loss,
              llvm::ArrayRef<mlir::Value> wrt,
              uint64_t *numGradientOps = nullptr);

/// The outcome of checking one function's gradients against finite differences.
struct GradientCheckResult {
  /// Largest |analytic - numeric| / max(1, |analytic|, |numeric|).
  double maxError = 0;
  int64_t components = 0;
  int64_t worstArgument = -1, worstElement = -1;
  double worstAnalytic = 0, worstNumeric = 0;
};

/// Checks the gradient that `differentiate` builds for `func` (through a random
/// linear functional of all its float results, with respect to all its float
/// arguments) against central finite differences, evaluating both in f64 with
/// the reference evaluator on random inputs drawn with `seed` (in [-1, 1], or
/// the range of a `kiln.check_range = [lo, hi]` argument attribute). `func` is
/// left unchanged. Fails with a diagnostic if it cannot be differentiated or
/// evaluated.
mlir::FailureOr<GradientCheckResult> checkGradients(mlir::func::FuncOp func,
                                                    unsigned seed = 1);

} // namespace kiln

#endif // KILN_PASSES_AUTODIFF_H
