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
  // Large loops run on all cores through libomp, whose threads by default
  // spin for 200 ms after each parallel loop waiting for the next. With
  // another process busy on a core, a spinning thread steals that core.
  // Sleeping at once (KMP_BLOCKTIME=0) costs a wake-up per loop, and a
  // training step runs dozens of loops: LeNet's step was slower on 2 threads
  // than on 1. Unless the user chose, threads spin for 200 us, about the gap
  // between two loops of a step, then sleep; the loops are scheduled
  // dynamically (kiln-dynamic-schedule), so a thread the OS does not run
  // delays no one. libomp reads this when it starts, at the first loop.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("KMP_BLOCKTIME"))
    setenv("KMP_BLOCKTIME", "200us", /*overwrite=*/0);
  kiln::rt::ModelAbi abi;
  abi.manifest = kiln_manifest();
  abi.entries = kiln_entries();
  return kiln::rt::runMain(std::vector<std::string>(argv, argv + argc), abi);
}
