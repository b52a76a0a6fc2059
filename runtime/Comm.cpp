//===- Comm.cpp - The processes of a data-parallel job --------------------===//

#include "runtime/Comm.h"

#include "runtime/KilnABI.h"

#include <chrono>
#include <cstdlib>

namespace kiln::rt {

/// Defined by libkiln_mpi (runtime/Mpi.cpp) when the executable links it
/// (`kilnc --mpi`): MPI's world, started. A weak reference: null otherwise.
Communicator *startMpi(int *argc, char ***argv) __attribute__((weak));
void stopMpi() __attribute__((weak));

namespace {

Communicator gAlone;
Communicator *gCurrent = &gAlone;

std::optional<int> positiveEnv(const char *name) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return std::nullopt;
  char *end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end || n <= 0 || n > (1 << 24))
    return std::nullopt;
  return int(n);
}

AllReduceStats gAllReduce;

template <typename T> void averageInPlace(T *data, int64_t count) {
  Communicator &comm = communicator();
  if (comm.size() == 1)
    return;
  auto start = std::chrono::steady_clock::now();
  comm.sum(data, count);
  gAllReduce.seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ++gAllReduce.calls;
  gAllReduce.bytes += count * int64_t(sizeof(T));
  T scale = T(1) / T(comm.size());
  for (int64_t i = 0; i < count; ++i)
    data[i] *= scale;
}

} // namespace

Communicator &communicator() { return *gCurrent; }

const AllReduceStats &allReduceStats() { return gAllReduce; }

Communicator *replaceCommunicator(Communicator *comm) {
  Communicator *previous = gCurrent == &gAlone ? nullptr : gCurrent;
  gCurrent = comm ? comm : &gAlone;
  return previous;
}

Error agree(Error error) {
  Communicator &comm = communicator();
  if (comm.size() == 1)
    return error;
  // Whether any failed, whether process 0 did, the largest exit code.
  int64_t flags[3] = {error ? 1 : 0, error && comm.rank() == 0 ? 1 : 0,
                      error ? error.exitCode() : 0};
  comm.max(flags, 3);
  if (!flags[0])
    return Error::success();
  int exitCode = int(flags[2]);
  if (comm.rank() == 0)
    return error ? std::move(error)
                 : Error::failure("another process of the job failed (its "
                                  "error is above)",
                                  exitCode);
  if (flags[1] || !error)
    return Error::silent(exitCode);
  return error;
}

std::optional<int> launcherWorldSize() {
  // Open MPI's mpirun; MPICH's (Hydra) and Slurm's PMI; Slurm's PMIx.
  for (const char *name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (std::optional<int> n = positiveEnv(name))
      return n;
  if (std::getenv("PMIX_RANK"))
    return positiveEnv("SLURM_NTASKS");
  return std::nullopt;
}

std::optional<int> launcherLocalSize() {
  for (const char *name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                           "SLURM_NTASKS_PER_NODE"})
    if (std::optional<int> n = positiveEnv(name))
      return n;
  return std::nullopt;
}

Error startCommunicator(int *argc, char ***argv) {
  std::optional<int> world = launcherWorldSize();
  if (!world)
    return Error::success();
  if (!startMpi) {
    if (*world > 1)
      return Error::usage(fmt::format(
          "started as one of {} processes by an MPI launcher, but this "
          "executable was compiled without --mpi: each process would train "
          "alone (compile the model with `kilnc --mpi`)",
          *world));
    return Error::success();
  }
  gCurrent = startMpi(argc, argv);
  return Error::success();
}

void stopCommunicator() {
  if (gCurrent != &gAlone && stopMpi)
    stopMpi();
  gCurrent = &gAlone;
}

} // namespace kiln::rt

extern "C" void kiln_all_reduce_f32(float *data, int64_t count) {
  kiln::rt::averageInPlace(data, count);
}

extern "C" void kiln_all_reduce_f64(double *data, int64_t count) {
  kiln::rt::averageInPlace(data, count);
}
