//===- Passes.cpp - Registration and the graph-level pipeline -------------===//

#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

void kiln::buildKilnPipeline(mlir::OpPassManager &pm) {
  pm.addPass(createKilnAutodiff());
  pm.addPass(createKilnEntryPoints());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
}
