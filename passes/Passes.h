//===- Passes.h - Kiln's passes on the kiln dialect -------------*- C++ -*-===//

#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "ir/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace kiln {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// registerKilnPasses() registers every pass of passes/Passes.td.
#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Knobs of Kiln's graph-level pipeline.
struct KilnPipelineOptions {
  /// Run kiln-fuse-attention and kiln-fuse-conv (attention; conv2d/matmul
  /// epilogues).
  bool fuse = true;
  /// Remarks for fusion candidates that were refused.
  bool reportMissedFusions = false;
  /// One remark with the fusion counts.
  bool reportStats = false;
  /// Average the training step's gradients over a data-parallel job's
  /// processes (kiln-autodiff{data-parallel}; kilnc --mpi).
  bool dataParallel = false;
};

/// Adds Kiln's graph-level pipeline (autodiff, entry points, cleanups, fusion)
/// to `pm`.
void buildKilnPipeline(mlir::OpPassManager &pm,
                       const KilnPipelineOptions &options = {});

} // namespace kiln

#endif // KILN_PASSES_PASSES_H
