//===- Registration.cpp - The dialects and passes Kiln's tools know -------===//

#include "tools/Registration.h"

#include "ir/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void kiln::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<kiln::KilnDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect>();
}

void kiln::registerAllPasses() {
  // Generic cleanups from mlir/Transforms (canonicalize, cse, inline, ...).
  mlir::registerTransformsPasses();
}
