//===- kiln-opt.cpp - Runs Kiln's passes on textual IR --------------------===//
//
// The pass runner for lit tests and experiments: MlirOptMain with the kiln
// dialect, Kiln's passes and the upstream dialects and passes Kiln's pipeline
// uses.
//
//===----------------------------------------------------------------------===//

#include "tools/Registration.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  kiln::registerAllDialects(registry);
  kiln::registerAllPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Kiln optimizer driver\n", registry));
}
