//===- Link.h - From an object file to an executable or a library -*- C++
//-*-===//

#ifndef KILN_TOOLS_KILNC_LINK_H
#define KILN_TOOLS_KILNC_LINK_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/LogicalResult.h"

#include <optional>
#include <string>
#include <system_error>

namespace kiln {

/// Where an output written to `-o PATH` goes, so that what is at PATH stays
/// what it is: a symbolic link's target (the link stays), a device or pipe
/// written in place (`-o /dev/null`), an existing file's permissions kept.
struct OutputTarget {
  /// The file to replace, or the device or pipe to write.
  std::string path;
  /// A device or pipe: written directly, never renamed over.
  bool inPlace = false;
  /// The permissions of the file replaced, if there was one.
  std::optional<unsigned> mode;
};
/// A dangling link and a directory are errors.
llvm::Expected<OutputTarget> resolveOutput(llvm::StringRef path);
/// Puts the finished temporary file `temp` at `target`: renamed over a file
/// (with its permissions), or copied into a device or pipe and removed.
std::error_code commitOutput(llvm::StringRef temp, const OutputTarget &target);

struct LinkOptions {
  /// The C++ compiler driver; empty: $KILN_CXX, else clang++-19, clang++, c++.
  std::string cxx;
  /// Where libkiln_runtime.a is; empty: $KILN_RUNTIME_DIR, else ../lib next to
  /// kilnc's own binary.
  std::string runtimeDir;
  /// `argv0` of kilnc, to find its own directory.
  std::string argv0;
  bool verbose = false;
  /// Link libkiln_mpi and MPI (kilnc --mpi): the executable joins the job of
  /// the MPI launcher that starts it (runtime/Comm.h).
  bool mpi = false;
};

/// Whether this kilnc can link --mpi executables (Kiln was built with MPI).
bool canLinkMpi();

/// Links `objectPath` with libkiln_runtime into the executable `outputPath`,
/// through the system's compiler driver. The executable appears atomically (it
/// is linked to a temporary name, then renamed); on failure nothing at
/// `outputPath` changes. Errors are printed to stderr.
llvm::LogicalResult linkExecutable(llvm::StringRef objectPath,
                                   llvm::StringRef outputPath,
                                   const LinkOptions &options);

/// Writes a static library (ar archive) holding `objectPath` to `outputPath`.
llvm::LogicalResult writeStaticLibrary(llvm::StringRef objectPath,
                                       llvm::StringRef outputPath);

} // namespace kiln

#endif // KILN_TOOLS_KILNC_LINK_H
