//===- GradientRules.h - Helpers shared by gradient rules and autodiff -*- C++
//-*-===//

#ifndef KILN_IR_GRADIENTRULES_H
#define KILN_IR_GRADIENTRULES_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"

namespace kiln {

/// A rank-0 constant of `elementType` holding `value`.
mlir::Value buildScalar(mlir::OpBuilder &b, mlir::Location loc, double value,
                        mlir::Type elementType);

/// Sums `grad` (which has the broadcast shape of an op's result) over the
/// dimensions that broadcasting added or expanded, so that it has `type`.
mlir::Value reduceToType(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value grad, mlir::RankedTensorType type);

/// Zeros of `v`'s (float tensor) type.
mlir::Value zerosLike(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v);

/// Reverse mode over `ops` (in program order, in one block), building at `b`:
/// given the gradients of some values (`seeds`), returns the gradient of each
/// of `wrt`, or null where none reaches it. Asks each op's gradient rule
/// (DifferentiableOpInterface) for its operands' gradients, reduces broadcast
/// gradients to the operands' shapes and adds up fan-out. An op between `wrt`
/// and a seed without a rule, or with regions that could capture values, is
/// an error at its location.
mlir::FailureOr<llvm::SmallVector<mlir::Value>>
backpropagate(mlir::OpBuilder &b, llvm::ArrayRef<mlir::Operation *> ops,
              const llvm::DenseMap<mlir::Value, mlir::Value> &seeds,
              llvm::ArrayRef<mlir::Value> wrt);

} // namespace kiln

#endif // KILN_IR_GRADIENTRULES_H
