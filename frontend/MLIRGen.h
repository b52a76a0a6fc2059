//===- MLIRGen.h - Builds kiln IR from an elaborated model ------*- C++ -*-===//

#ifndef KILN_FRONTEND_MLIRGEN_H
#define KILN_FRONTEND_MLIRGEN_H

#include "frontend/Graph.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln {

/// Translates `model` into a module holding one `kiln.param` per parameter and
/// the function `@forward` (see the kiln dialect's description for the
/// conventions). The graph is already checked, so this cannot fail on user
/// input; the result is verified and a verifier failure is reported as an
/// internal error (null result).
mlir::OwningOpRef<mlir::ModuleOp> mlirGen(mlir::MLIRContext &ctx,
                                          const graph::Model &model);

} // namespace kiln

#endif // KILN_FRONTEND_MLIRGEN_H
