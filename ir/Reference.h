//===- Reference.h - Reference semantics of the kiln ops in f64 -*- C++ -*-===//
//
// A direct, unoptimized evaluator of kiln-dialect functions in double
// precision. It is a test oracle, never part of compilation: the gradient
// checker runs the IR that autodiff builds on it, and tests compare compiled
// code against it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_REFERENCE_H
#define KILN_IR_REFERENCE_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"

#include <vector>

namespace kiln {

/// A dense row-major tensor of doubles (integer tensors hold whole numbers).
struct RefTensor {
  llvm::SmallVector<int64_t, 4> shape;
  std::vector<double> data;

  RefTensor() = default;
  RefTensor(llvm::ArrayRef<int64_t> shape, double fill = 0)
      : shape(shape.begin(), shape.end()), data(numElements(shape), fill) {}
  static int64_t numElements(llvm::ArrayRef<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  int64_t size() const { return data.size(); }
};

/// Evaluates `func` on `args` (one per argument, shapes as declared).
/// Parameters read with kiln.load_param come from `params` by name. Fails with
/// a diagnostic on an op it does not know or arguments of the wrong shape.
mlir::FailureOr<llvm::SmallVector<RefTensor>>
evaluate(mlir::func::FuncOp func, llvm::ArrayRef<RefTensor> args,
         const llvm::StringMap<RefTensor> *params = nullptr);

} // namespace kiln

#endif // KILN_IR_REFERENCE_H
