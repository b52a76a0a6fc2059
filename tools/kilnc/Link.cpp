//===- Link.cpp - From an object file to an executable or a library -------===//

#include "tools/kilnc/Link.h"

#include "llvm/Object/ArchiveWriter.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

static std::string findCompiler(const kiln::LinkOptions &options) {
  if (!options.cxx.empty())
    return options.cxx;
  if (std::optional<std::string> env = sys::Process::GetEnv("KILN_CXX"))
    return *env;
  for (StringRef name : {"clang++-19", "clang++", "c++", "g++"})
    if (ErrorOr<std::string> path = sys::findProgramByName(name))
      return *path;
  return "";
}

static std::string findRuntimeDir(const kiln::LinkOptions &options) {
  if (!options.runtimeDir.empty())
    return options.runtimeDir;
  if (std::optional<std::string> env = sys::Process::GetEnv("KILN_RUNTIME_DIR"))
    return *env;
  std::string self = sys::fs::getMainExecutable(
      options.argv0.c_str(), reinterpret_cast<void *>(&findRuntimeDir));
  SmallString<256> dir(sys::path::parent_path(sys::path::parent_path(self)));
  sys::path::append(dir, "lib");
  return std::string(dir);
}

static LogicalResult fail(const Twine &message) {
  WithColor::error(errs(), "kilnc") << message << "\n";
  return failure();
}

/// Where LLVM's libomp lies (libomp-19-dev, installed by scripts/setup).
#ifndef KILN_OPENMP_LIB_DIR
#define KILN_OPENMP_LIB_DIR "/usr/lib/llvm-19/lib"
#endif

LogicalResult kiln::linkExecutable(StringRef objectPath, StringRef outputPath,
                                   const LinkOptions &options) {
  std::string cxx = findCompiler(options);
  if (cxx.empty())
    return fail("no C++ compiler driver found to link with (tried clang++-19, "
                "clang++, c++, g++); set KILN_CXX");
  SmallString<256> runtime(findRuntimeDir(options));
  sys::path::append(runtime, "libkiln_runtime.a");
  if (!sys::fs::exists(runtime))
    return fail("cannot find the Kiln runtime library '" + runtime +
                "'; build Kiln first or set KILN_RUNTIME_DIR");

  // Link to a temporary name beside the output, then rename into place.
  SmallString<256> temp;
  if (std::error_code ec =
          sys::fs::createUniqueFile(outputPath + ".tmp-%%%%%%", temp))
    return fail("cannot create a file beside '" + outputPath +
                "': " + ec.message());
  // LLVM's OpenMP runtime for the parallel matmul loops (the __kmpc_* entry
  // points; GCC's libgomp lacks some of them). Debian ships no static libomp:
  // the rpath finds the shared one at run time.
  std::vector<std::string> args = {cxx,
                                   objectPath.str(),
                                   runtime.str().str(),
                                   "-lfmt",
                                   "-lz",
                                   "-lm",
                                   "-L" KILN_OPENMP_LIB_DIR,
                                   "-lomp",
                                   "-Wl,-rpath," KILN_OPENMP_LIB_DIR,
                                   "-o",
                                   temp.str().str()};
  if (options.verbose) {
    errs() << "kilnc: linking:";
    for (const std::string &a : args)
      errs() << " " << a;
    errs() << "\n";
  }
  SmallVector<StringRef> argRefs(args.begin(), args.end());
  std::string error;
  int rc = sys::ExecuteAndWait(cxx, argRefs, /*Env=*/std::nullopt,
                               /*Redirects=*/{}, /*SecondsToWait=*/0,
                               /*MemoryLimit=*/0, &error);
  if (rc != 0) {
    sys::fs::remove(temp);
    return fail("linking '" + outputPath + "' with " + cxx + " failed" +
                (error.empty() ? "" : ": " + error) +
                " (rerun with -v to see the command)");
  }
  if (std::error_code ec = sys::fs::rename(temp, outputPath)) {
    sys::fs::remove(temp);
    return fail("cannot write '" + outputPath + "': " + ec.message());
  }
  return success();
}

LogicalResult kiln::writeStaticLibrary(StringRef objectPath,
                                       StringRef outputPath) {
  Expected<NewArchiveMember> member =
      NewArchiveMember::getFile(objectPath, /*Deterministic=*/true);
  if (!member)
    return fail("cannot read '" + objectPath +
                "': " + toString(member.takeError()));
  // The member is named after the library, not the temporary object file.
  std::string memberName = sys::path::stem(outputPath).str() + ".o";
  member->MemberName = memberName;
  if (Error err = writeArchive(outputPath, {std::move(*member)},
                               SymtabWritingMode::NormalSymtab,
                               object::Archive::K_GNU, /*Deterministic=*/true,
                               /*Thin=*/false))
    return fail("cannot write '" + outputPath +
                "': " + toString(std::move(err)));
  return success();
}
