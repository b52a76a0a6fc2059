//===- Mpi.cpp - The communicator of a job started by an MPI launcher -----===//
//
// libkiln_mpi: linked (whole) into executables compiled with `kilnc --mpi`,
// beside libkiln_runtime, whose startCommunicator finds startMpi through a
// weak reference. MPI's default error handler (MPI_ERRORS_ARE_FATAL) stays:
// a process that dies, or a failed message, ends the whole job instead of
// leaving the others waiting. A process that hangs (or is stopped) leaves the
// others waiting in a collective, where MPI has no timeout: a watchdog thread
// ends this process when one has waited KILN_MPI_TIMEOUT seconds (default
// 600; 0: forever), and the launcher then ends the job.
//
//===----------------------------------------------------------------------===//

#include "runtime/Comm.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace kiln::rt {

namespace {

using Clock = std::chrono::steady_clock;

/// When this process entered the collective it waits in (ticks of Clock's
/// epoch), or 0.
std::atomic<int64_t> gWaitingSince{0};

/// Ends the process once a collective has waited TIMEOUT seconds.
void watch(int rank, double timeout) {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    int64_t since = gWaitingSince.load(std::memory_order_relaxed);
    if (!since)
      continue;
    double waited =
        std::chrono::duration<double>(Clock::now().time_since_epoch() -
                                      Clock::duration(since))
            .count();
    if (waited < timeout)
      continue;
    std::fprintf(stderr,
                 "process %d: error: no word from the other processes of the "
                 "job for %.0f s (KILN_MPI_TIMEOUT): one of them hangs or "
                 "died; ending the job\n",
                 rank, waited);
    std::fflush(stderr);
    // MPI may not be called from this thread (MPI_THREAD_FUNNELED): the
    // launcher ends the others when this process exits.
    std::_Exit(1);
  }
}

/// KILN_MPI_TIMEOUT in seconds: 600 unless set; 0 (or less) waits forever.
double collectiveTimeout() {
  const char *v = std::getenv("KILN_MPI_TIMEOUT");
  if (!v || !*v)
    return 600;
  char *end = nullptr;
  double t = std::strtod(v, &end);
  return *end ? 600 : t;
}

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(float *data, int64_t count) override {
    reduce(data, count, MPI_FLOAT, MPI_SUM);
  }
  void sum(double *data, int64_t count) override {
    reduce(data, count, MPI_DOUBLE, MPI_SUM);
  }
  void max(int64_t *data, int64_t count) override {
    reduce(data, count, MPI_INT64_T, MPI_MAX);
  }
  std::string transport() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    std::string text(version, size_t(std::max(length, 0)));
    // The first line, up to its first comma: `Open MPI v4.1.4`.
    return text.substr(0, std::min(text.find(','), text.find('\n')));
  }

private:
  /// In place, in pieces of at most INT_MAX elements (MPI's count is an int).
  template <typename T>
  void reduce(T *data, int64_t count, MPI_Datatype type, MPI_Op op) {
    gWaitingSince.store(
        std::max<int64_t>(1, Clock::now().time_since_epoch().count()),
        std::memory_order_relaxed);
    for (int64_t done = 0; done < count;) {
      int n = int(std::min<int64_t>(count - done, INT_MAX));
      MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, op, MPI_COMM_WORLD);
      done += n;
    }
    gWaitingSince.store(0, std::memory_order_relaxed);
  }

  int rank_ = 0, size_ = 1;
};

} // namespace

Communicator *startMpi(int *argc, char ***argv) {
  // The generated code's threads (OpenMP) never call MPI.
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  static MpiCommunicator world;
  if (double timeout = collectiveTimeout(); timeout > 0 && world.size() > 1)
    std::thread(watch, world.rank(), timeout).detach();
  return &world;
}

void stopMpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
}

} // namespace kiln::rt
