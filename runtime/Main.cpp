//===- Main.cpp - The entry point of a compiled model executable --------===//
//
// libkiln_runtime provides `main`; the compiled model object provides the
// functions of KilnABI.h that it calls.
//
//===----------------------------------------------------------------------===//

#include "runtime/Cli.h"
#include "runtime/KilnABI.h"

int main(int argc, char **argv) {
  kiln::rt::ModelAbi abi;
  abi.manifest = kiln_manifest();
  abi.trainStep = kiln_train_step;
  abi.evalStep = kiln_eval_step;
  abi.predict = kiln_predict;
  return kiln::rt::runMain(std::vector<std::string>(argv, argv + argc), abi);
}
