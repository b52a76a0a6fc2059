//===- Link.cpp - From an object file to an executable or a library -------===//

#include "tools/kilnc/Link.h"

#include "llvm/Object/ArchiveWriter.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
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

Expected<kiln::OutputTarget> kiln::resolveOutput(StringRef path) {
  OutputTarget target;
  target.path = path.str();
  sys::fs::file_status link;
  if (!sys::fs::status(path, link, /*Follow=*/false) &&
      link.type() == sys::fs::file_type::symlink_file) {
    SmallString<256> real;
    if (sys::fs::real_path(path, real))
      return createStringError(std::errc::no_such_file_or_directory,
                               "it is a symbolic link to a missing file");
    target.path = real.str().str();
  }
  sys::fs::file_status st;
  if (sys::fs::status(target.path, st))
    return target; // a new file
  if (st.type() == sys::fs::file_type::directory_file)
    return createStringError(std::errc::is_a_directory, "it is a directory");
  if (st.type() != sys::fs::file_type::regular_file)
    target.inPlace = true;
  else
    target.mode = st.permissions();
  return target;
}

std::error_code kiln::commitOutput(StringRef temp, const OutputTarget &target) {
  if (!target.inPlace) {
    if (target.mode)
      if (std::error_code ec = sys::fs::setPermissions(
              temp, static_cast<sys::fs::perms>(*target.mode)))
        return ec;
    return sys::fs::rename(temp, target.path);
  }
  auto bytes = MemoryBuffer::getFile(temp, /*IsText=*/false,
                                     /*RequiresNullTerminator=*/false);
  if (!bytes)
    return bytes.getError();
  std::error_code ec;
  raw_fd_ostream os(target.path, ec, sys::fs::OF_Append);
  if (ec)
    return ec;
  os << (*bytes)->getBuffer();
  os.close();
  // Cleared, or the stream's destructor aborts on it.
  ec = os.error();
  os.clear_error();
  if (ec)
    return ec;
  return sys::fs::remove(temp);
}

static LogicalResult fail(const Twine &message) {
  WithColor::error(errs(), "kilnc") << message << "\n";
  return failure();
}

/// Resolves `-o outputPath` (resolveOutput) into `target` and creates the
/// temporary file the output is written to before commitOutput puts it in
/// place: beside the target, or in the temporary folder for a device.
static LogicalResult beginOutput(StringRef outputPath,
                                 kiln::OutputTarget &target,
                                 SmallString<256> &temp) {
  Expected<kiln::OutputTarget> resolved = kiln::resolveOutput(outputPath);
  if (!resolved)
    return fail("cannot write '" + outputPath +
                "': " + toString(resolved.takeError()));
  target = std::move(*resolved);
  if (std::error_code ec =
          target.inPlace
              ? sys::fs::createTemporaryFile("kilnc-output", "", temp)
              : sys::fs::createUniqueFile(target.path + ".tmp-%%%%%%", temp))
    return fail("cannot create a file beside '" + outputPath +
                "': " + ec.message());
  return success();
}

/// Where LLVM's libomp lies (libomp-19-dev, installed by scripts/setup).
#ifndef KILN_OPENMP_LIB_DIR
#define KILN_OPENMP_LIB_DIR "/usr/lib/llvm-19/lib"
#endif

#ifndef KILN_MPI_LINK_LIBRARIES
#define KILN_MPI_LINK_LIBRARIES ""
#endif

bool kiln::canLinkMpi() { return StringRef(KILN_MPI_LINK_LIBRARIES) != ""; }

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

  // libkiln_mpi whole: libkiln_runtime refers to its startMpi weakly, which
  // would not pull it out of the archive.
  std::vector<std::string> mpiArgs, mpiLibraries;
  if (options.mpi) {
    if (!canLinkMpi())
      return fail("--mpi: this Kiln was built without MPI (install "
                  "libopenmpi-dev, then configure and build Kiln again)");
    SmallString<256> mpiRuntime(sys::path::parent_path(runtime));
    sys::path::append(mpiRuntime, "libkiln_mpi.a");
    if (!sys::fs::exists(mpiRuntime))
      return fail("cannot find the Kiln MPI runtime library '" + mpiRuntime +
                  "'; build Kiln first or set KILN_RUNTIME_DIR");
    mpiArgs = {"-Wl,--whole-archive", mpiRuntime.str().str(),
               "-Wl,--no-whole-archive"};
    SmallVector<StringRef> libraries;
    StringRef(KILN_MPI_LINK_LIBRARIES)
        .split(libraries, ';', -1, /*KeepEmpty=*/false);
    for (StringRef library : libraries)
      mpiLibraries.push_back(library.str());
  }

  // Link to a temporary file, then rename (or copy) it into place.
  OutputTarget target;
  SmallString<256> temp;
  if (failed(beginOutput(outputPath, target, temp)))
    return failure();
  // LLVM's OpenMP runtime for the parallel matmul loops (the __kmpc_* entry
  // points; GCC's libgomp lacks some of them). Debian ships no static libomp:
  // the rpath finds the shared one at run time.
  std::vector<std::string> args = {cxx, objectPath.str()};
  llvm::append_range(args, mpiArgs);
  args.push_back(runtime.str().str());
  llvm::append_range(args, mpiLibraries);
#ifdef KILN_SANITIZE_LINK_FLAGS
  args.push_back(KILN_SANITIZE_LINK_FLAGS);
#endif
  args.insert(args.end(),
              {"-lfmt", "-lz", "-lm", "-L" KILN_OPENMP_LIB_DIR, "-lomp",
               "-Wl,-rpath," KILN_OPENMP_LIB_DIR, "-o", temp.str().str()});
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
  if (std::error_code ec = commitOutput(temp, target)) {
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
  OutputTarget target;
  SmallString<256> temp;
  if (failed(beginOutput(outputPath, target, temp)))
    return failure();
  if (Error err = writeArchive(temp, {std::move(*member)},
                               SymtabWritingMode::NormalSymtab,
                               object::Archive::K_GNU, /*Deterministic=*/true,
                               /*Thin=*/false)) {
    sys::fs::remove(temp);
    return fail("cannot write '" + outputPath +
                "': " + toString(std::move(err)));
  }
  if (std::error_code ec = commitOutput(temp, target)) {
    sys::fs::remove(temp);
    return fail("cannot write '" + outputPath + "': " + ec.message());
  }
  return success();
}
