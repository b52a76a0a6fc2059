//===- Sema.h - Semantic analysis: .kiln models to kiln IR ------*- C++ -*-===//
//
// Resolves names, evaluates compile-time integers (shape variables, layer
// widths), inlines every function call (each call site owns its own
// parameters), checks types and shapes with ir/ShapeRules.h, and resolves the
// training block, building the model's kiln IR as it goes: one kiln.param per
// parameter and the function @forward (see the kiln dialect's description for
// its conventions), at the source locations of the DSL (a CallSiteLoc chain
// for code inlined from functions).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_SEMA_H
#define KILN_FRONTEND_SEMA_H

#include "frontend/AST.h"
#include "frontend/Diagnostics.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln {

/// Elaborates the (single) model of `module` into a verified module in the
/// reporter's context. Returns null after reporting at least one error
/// through `reporter`.
mlir::OwningOpRef<mlir::ModuleOp> analyze(const ast::Module &module,
                                          DiagnosticReporter &reporter);

} // namespace kiln

#endif // KILN_FRONTEND_SEMA_H
