//===- GradientRules.h - Helpers shared by gradient rules and autodiff -*- C++
//-*-===//

#ifndef KILN_IR_GRADIENTRULES_H
#define KILN_IR_GRADIENTRULES_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/Value.h"

namespace kiln {

/// A rank-0 constant of `elementType` holding `value`.
mlir::Value buildScalar(mlir::OpBuilder &b, mlir::Location loc, double value,
                        mlir::Type elementType);

/// Sums `grad` (which has the broadcast shape of an op's result) over the
/// dimensions that broadcasting added or expanded, so that it has `type`.
mlir::Value reduceToType(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value grad, mlir::RankedTensorType type);

} // namespace kiln

#endif // KILN_IR_GRADIENTRULES_H
