//===- Link.h - From an object file to an executable or a library -*- C++
//-*-===//

#ifndef KILN_TOOLS_KILNC_LINK_H
#define KILN_TOOLS_KILNC_LINK_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/LogicalResult.h"

#include <string>

namespace kiln {

struct LinkOptions {
  /// The C++ compiler driver; empty: $KILN_CXX, else clang++-19, clang++, c++.
  std::string cxx;
  /// Where libkiln_runtime.a is; empty: $KILN_RUNTIME_DIR, else ../lib next to
  /// kilnc's own binary.
  std::string runtimeDir;
  /// `argv0` of kilnc, to find its own directory.
  std::string argv0;
  bool verbose = false;
};

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
