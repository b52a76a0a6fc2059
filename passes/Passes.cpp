//===- Passes.cpp - Registration and the graph-level pipeline -------------===//

#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

void kiln::buildKilnPipeline(mlir::OpPassManager &pm,
                             const KilnPipelineOptions &options) {
  // Before autodiff: the gradient of work moved out of a scan's loop is out of
  // the backward loop too.
  pm.addPass(createKilnScanPrecompute());
  // Before autodiff: the gradient of a fused attention is one fused backward
  // op; after it, the unfused graph's gradient would already be built.
  if (options.fuse)
    pm.addPass(createKilnFuseAttention(KilnFuseAttentionOptions{
        options.reportMissedFusions, options.reportStats}));
  pm.addPass(createKilnAutodiff(KilnAutodiffOptions{options.dataParallel}));
  pm.addPass(createKilnEntryPoints());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  if (options.fuse) {
    pm.addPass(createKilnFuseConv(
        KilnFuseConvOptions{options.reportMissedFusions, options.reportStats}));
    pm.addPass(mlir::createCanonicalizerPass());
  }
}
