//===- Main.cpp - The entry point of a compiled model executable --------===//
//
// libkiln_runtime provides `main`; the compiled model object provides the
// functions of KilnABI.h that it calls.
//
//===----------------------------------------------------------------------===//

#include "runtime/Cli.h"
#include "runtime/KilnABI.h"

#include <cstdlib>

int main(int argc, char **argv) {
  // Large matmuls run on all cores through libomp, whose threads by default
  // spin for 200 ms after each parallel loop waiting for the next. With
  // another process busy on a core, a spinning thread steals that core and
  // the descheduled one stalls the next loop: measured on 2 loaded cores, 2
  // threads were slower than 1. Passive waiting (threads sleep at once)
  // keeps 2 threads at least as fast as 1 under load, at some cost of the
  // speedup on an idle machine. Unless the user chose a policy, passive
  // (in libomp the same as KMP_BLOCKTIME=0, which it reports as PASSIVE);
  // libomp reads these when it starts, at the first parallel loop.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("KMP_BLOCKTIME"))
    setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0);
  kiln::rt::ModelAbi abi;
  abi.manifest = kiln_manifest();
  abi.trainStep = kiln_train_step;
  abi.evalStep = kiln_eval_step;
  abi.predict = kiln_predict;
  return kiln::rt::runMain(std::vector<std::string>(argv, argv + argc), abi);
}
