//===- Main.cpp - The entry point of a compiled model executable --------===//
//
// libkiln_runtime provides `main`; the compiled model object provides the
// functions of KilnABI.h that it calls.
//
//===----------------------------------------------------------------------===//

#include "runtime/Cli.h"
#include "runtime/Comm.h"
#include "runtime/KilnABI.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

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
  // Several processes of a data-parallel job on one machine share its cores:
  // unless the user chose, each runs cores / processes threads.
  if (std::optional<int> local = kiln::rt::launcherLocalSize();
      local && *local > 1 && !std::getenv("OMP_NUM_THREADS")) {
    int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    setenv("OMP_NUM_THREADS",
           std::to_string(std::max(1, cores / *local)).c_str(),
           /*overwrite=*/0);
  }
  if (kiln::rt::Error e = kiln::rt::startCommunicator(&argc, &argv)) {
    fmt::print(stderr, "error: {}\n", e.message());
    return e.exitCode();
  }
  kiln::rt::ModelAbi abi;
  abi.manifest = kiln_manifest();
  abi.entries = kiln_entries();
  int code =
      kiln::rt::runMain(std::vector<std::string>(argv, argv + argc), abi);
  kiln::rt::stopCommunicator();
  return code;
}
