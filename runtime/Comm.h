//===- Comm.h - The processes of a data-parallel job ----------------------===//
//
// A compiled model trains alone, or as one of the N processes of a
// data-parallel job (`mpirun -np N ./model train`, docs/scaling.md). Each
// process (rank) trains on its own part of every global batch of N x the
// model's batch; the train step of a model compiled with `kilnc --mpi`
// averages its gradients over the processes through kiln_all_reduce_*
// (runtime/KilnABI.h, defined here), and the runtime uses the communicator for
// the rest: evaluation's sums, agreeing on errors and on when to stop,
// checking that the parameters stay identical.
//
// Executables compiled with `kilnc --mpi` link libkiln_mpi (runtime/Mpi.cpp),
// which talks MPI when an MPI launcher started the process. Without it, or
// without a launcher, the process is alone: size 1, and every operation below
// leaves its values as they are.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_COMM_H
#define KILN_RUNTIME_COMM_H

#include "runtime/Error.h"

#include <cstdint>
#include <optional>
#include <string>

namespace kiln::rt {

class Communicator {
public:
  virtual ~Communicator() = default;
  /// This process's index in [0, size()); 0 prints, writes checkpoints and
  /// metrics.
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  /// Replace each of the COUNT values at DATA by its sum (or maximum) over
  /// the processes. Every process must call them, in the same order.
  virtual void sum(float *data, int64_t count) { (void)data, (void)count; }
  virtual void sum(double *data, int64_t count) { (void)data, (void)count; }
  virtual void max(int64_t *data, int64_t count) { (void)data, (void)count; }
  /// What carries the messages, for the training header: `Open MPI v4.1.4`.
  virtual std::string transport() const { return "none"; }
};

/// The process's communicator (alone until startCommunicator picks MPI's).
Communicator &communicator();

/// Makes COMM (null: none, alone) the process's communicator and returns the
/// previous one: for tests, which stand in for the other processes.
Communicator *replaceCommunicator(Communicator *comm);

/// Called first by main: joins the job of the MPI launcher that started this
/// process, if one did and the executable links libkiln_mpi. An error if a
/// launcher started several processes of an executable without it: each would
/// train alone.
Error startCommunicator(int *argc, char ***argv);
/// Called last by main: leaves the job (MPI_Finalize).
void stopCommunicator();

/// What this process's kiln_all_reduce_* calls (the train step's averaging
/// of its gradients) cost so far: their number, bytes and wall time, which
/// includes waiting for the slowest process to get there.
struct AllReduceStats {
  int64_t calls = 0, bytes = 0;
  double seconds = 0;
};
const AllReduceStats &allReduceStats();

/// Makes the processes of a data-parallel job agree on the outcome of a
/// phase they all went through (ERROR: this process's), so that none goes on
/// while another has stopped: success if all succeeded. Process 0 returns its
/// own error, or one saying that another process failed; the others return
/// their own errors (printed naming the process) unless process 0 failed too,
/// which then speaks for all (Error::silent). Alone: ERROR.
Error agree(Error error);

/// How many processes an MPI launcher (mpirun, mpiexec, srun) started with
/// this one, read from its environment; nullopt if none started it.
std::optional<int> launcherWorldSize();
/// How many of them run on this machine, if the launcher says.
std::optional<int> launcherLocalSize();

} // namespace kiln::rt

#endif // KILN_RUNTIME_COMM_H
