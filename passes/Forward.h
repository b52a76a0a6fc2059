//===- Forward.h - Clones @forward into an entry point in one mode -*- C++
//-*-===//

#ifndef KILN_PASSES_FORWARD_H
#define KILN_PASSES_FORWARD_H

#include "ir/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

namespace kiln {

/// Clones the body of `forward` at `b`'s insertion point, with each
/// kiln.load_param replaced by the matching value of `paramArgs` (one per
/// `params`, same order) and the forward arguments by `inputArgs`, and returns
/// the values it returned (nothing is returned from the clone).
///
/// In `training` mode, kiln.if_training takes its training value, kiln.dropout
/// is keyed by `hyper` (the step's), kiln.warmup reads its step from it, and
/// each kiln.assign_param's value is
/// recorded in `*assigned` by parameter name; in evaluation mode,
/// kiln.if_training takes its evaluation value and dropout and assignments
/// vanish. In both modes the random ops (kiln.random_normal, ...) are keyed
/// by `hyper`, which may be null in evaluation mode only if `forward` draws
/// no random numbers (drawsRandomNumbers).
///
/// Ops with regions are cloned whole; one that holds a mode-dependent op
/// (kiln.load_param, kiln.dropout, ...) inside is an error.
mlir::FailureOr<llvm::SmallVector<mlir::Value>>
cloneForward(mlir::OpBuilder &b, mlir::func::FuncOp forward,
             llvm::ArrayRef<ParamOp> params, mlir::ValueRange paramArgs,
             mlir::ValueRange inputArgs, bool training, mlir::Value hyper,
             llvm::StringMap<mlir::Value> *assigned = nullptr);

/// Whether `func` holds a random op (kiln.random_normal, ...): an entry built
/// from it takes a hyper vector to key them, in any mode.
bool drawsRandomNumbers(mlir::func::FuncOp func);

} // namespace kiln

#endif // KILN_PASSES_FORWARD_H
