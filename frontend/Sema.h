//===- Sema.h - Semantic analysis and elaboration of .kiln models -*- C++
//-*-===//
//
// Resolves names, evaluates compile-time integers (shape variables, layer
// widths), inlines every function call (each call site owns its own
// parameters), checks types and shapes with ir/ShapeRules.h, and resolves the
// training block. The result is a graph::Model that is known to be valid before
// any IR is built.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_SEMA_H
#define KILN_FRONTEND_SEMA_H

#include "frontend/AST.h"
#include "frontend/Diagnostics.h"
#include "frontend/Graph.h"

#include <optional>

namespace kiln {

/// Elaborates the (single) model of `module`. Returns std::nullopt after
/// reporting at least one error through `reporter`.
std::optional<graph::Model> analyze(const ast::Module &module,
                                    DiagnosticReporter &reporter);

} // namespace kiln

#endif // KILN_FRONTEND_SEMA_H
