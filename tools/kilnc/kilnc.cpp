//===- kilnc.cpp - The Kiln compiler driver -------------------------------===//
//
// Compiles a .kiln model: parse -> sema -> kiln IR -> Kiln's passes -> linalg
// -> LLVM
// -> object -> executable (linked with libkiln_runtime).
// `--emit=STAGE` stops after a stage and prints it; every error is a diagnostic
// with a source location and a non-zero exit, and outputs are written
// atomically.
//
//===----------------------------------------------------------------------===//

#include "codegen/ObjectEmitter.h"
#include "codegen/Pipeline.h"
#include "frontend/Diagnostics.h"
#include "frontend/Parser.h"
#include "frontend/Sema.h"
#include "passes/Passes.h"
#include "tools/Registration.h"
#include "tools/kilnc/CHeader.h"
#include "tools/kilnc/Link.h"

#include "mlir/Dialect/LLVMIR/Transforms/Passes.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/LocationSnapshot.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace kiln;

namespace {

/// The stages of compilation, in order; --emit stops after one.
enum class Emit {
  Ast,
  Kiln,
  KilnOpt,
  Header,
  Linalg,
  LLVMDialect,
  LLVM,
  Asm,
  Obj,
  Lib,
  Exe
};

cl::OptionCategory kilncCategory("kilnc options");

cl::opt<std::string> inputFilename(cl::Positional, cl::desc("<model.kiln>"),
                                   cl::Required, cl::cat(kilncCategory));

cl::opt<std::string>
    outputFilename("o", cl::desc("Output file (default: stdout for text)"),
                   cl::value_desc("file"), cl::init("-"),
                   cl::cat(kilncCategory));

cl::opt<Emit> emitAction(
    "emit",
    cl::desc("The stage to stop after (default: exe with -o, else kiln)"),
    cl::values(
        clEnumValN(Emit::Ast, "ast", "the syntax tree"),
        clEnumValN(Emit::Kiln, "kiln", "kiln IR, as built from the source"),
        clEnumValN(Emit::KilnOpt, "kiln-opt",
                   "kiln IR after Kiln's passes (autodiff, entry points, "
                   "cleanups)"),
        clEnumValN(Emit::Header, "header",
                   "a C header for the compiled functions' ABI"),
        clEnumValN(Emit::Linalg, "linalg",
                   "linalg/tensor IR, entries in destination-passing style"),
        clEnumValN(Emit::LLVMDialect, "llvm-dialect", "the LLVM dialect"),
        clEnumValN(Emit::LLVM, "llvm", "LLVM IR, optimized for the host"),
        clEnumValN(Emit::Asm, "asm", "assembly for the host"),
        clEnumValN(Emit::Obj, "obj", "an object file"),
        clEnumValN(Emit::Lib, "lib",
                   "a static library (-o libNAME.a) and its header "
                   "(libNAME.h)"),
        clEnumValN(Emit::Exe, "exe",
                   "an executable that trains, evaluates and runs the model")),
    cl::cat(kilncCategory));

cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check the diagnostics against 'expected-error {{...}}' "
             "comments in the input (for tests)"),
    cl::init(false), cl::cat(kilncCategory));

cl::opt<bool> fastMatmul("fast-matmul",
                         cl::desc("Tile and vectorize matrix products "
                                  "(default: on)"),
                         cl::init(true), cl::cat(kilncCategory));

cl::opt<bool> parallel(
    "parallel",
    cl::desc("Run large matrix products on all cores through OpenMP "
             "(OMP_NUM_THREADS at run time; a --emit=lib library then needs "
             "-lomp; default: on)"),
    cl::init(true), cl::cat(kilncCategory));

cl::opt<bool> fuse("fuse",
                   cl::desc("Fuse conv2d/matmul with their epilogues "
                            "(kiln-fuse-conv; default: on)"),
                   cl::init(true), cl::cat(kilncCategory));

cl::opt<bool>
    mpi("mpi",
        cl::desc("Data-parallel training with MPI: the train step averages its "
                 "gradients over the processes `mpirun -np N` starts, and the "
                 "executable links MPI (default: off)"),
        cl::init(false), cl::cat(kilncCategory));

cl::opt<bool>
    stats("print-stats",
          cl::desc("Report what the optimizations did (fusions, memory "
                   "plan, vectorized and parallel loops)"),
          cl::init(false), cl::cat(kilncCategory));

cl::opt<bool>
    remarksMissed("remarks-missed",
                  cl::desc("Explain every fusion candidate that was not fused"),
                  cl::init(false), cl::cat(kilncCategory));

/// What the line table of the generated code points at (for profilers and
/// debuggers).
enum class LineInfo { None, Source, KilnOpt, Linalg };

cl::opt<LineInfo> lineInfo(
    "line-info",
    cl::desc("Give the generated code a DWARF line table, so that a profiler "
             "(perf report --sort srcline) charges time to an op"),
    cl::values(
        clEnumValN(LineInfo::None, "none", "no line table (default)"),
        clEnumValN(LineInfo::Source, "source", "lines of the .kiln file"),
        clEnumValN(LineInfo::KilnOpt, "kiln-opt",
                   "lines of OUTPUT.kiln-opt.mlir, kiln IR after Kiln's "
                   "passes (one line per forward and gradient op)"),
        clEnumValN(LineInfo::Linalg, "linalg",
                   "lines of OUTPUT.linalg.mlir, bufferized linalg IR (one "
                   "line per loop nest)")),
    cl::init(LineInfo::None), cl::cat(kilncCategory));

cl::opt<bool> verbose("v", cl::desc("Print the link command"), cl::init(false),
                      cl::cat(kilncCategory));

cl::opt<std::string> runtimeDir(
    "runtime-dir",
    cl::desc("Directory of libkiln_runtime.a (default: ../lib beside kilnc, "
             "or $KILN_RUNTIME_DIR)"),
    cl::value_desc("dir"), cl::cat(kilncCategory));

std::string argv0;

/// Writes `print`'s output to `-o` atomically (a temporary file renamed into
/// place), so a failed run never leaves a partial or clobbered file.
LogicalResult writeOutput(function_ref<void(raw_ostream &)> print) {
  // What is at -o stays what it is (kiln::resolveOutput).
  Expected<kiln::OutputTarget> target =
      outputFilename == "-" ? kiln::OutputTarget{"-", false, std::nullopt}
                            : kiln::resolveOutput(outputFilename);
  Error err = target.takeError();
  if (!err && target->inPlace) {
    std::error_code ec;
    raw_fd_ostream os(target->path, ec, sys::fs::OF_Append);
    if (!ec) {
      print(os);
      os.close();
      ec = os.error();
      os.clear_error(); // else the stream's destructor aborts on it
    }
    if (ec)
      err = errorCodeToError(ec);
  } else if (!err) {
    err = writeToOutput(target->path, [&](raw_ostream &os) {
      print(os);
      return Error::success();
    });
    if (!err && target->mode)
      if (std::error_code ec = sys::fs::setPermissions(
              target->path, static_cast<sys::fs::perms>(*target->mode)))
        err = errorCodeToError(ec);
  }
  if (err) {
    WithColor::error(errs(), "kilnc")
        << "cannot write '" << outputFilename
        << "': " << toString(std::move(err)) << "\n";
    return failure();
  }
  return success();
}

/// Writes `bytes` to `-o` atomically.
LogicalResult writeBytes(StringRef bytes) {
  return writeOutput([&](raw_ostream &os) { os << bytes; });
}

/// Writes an object file for `module` (LLVM dialect) to a new temporary file.
FailureOr<std::string> emitTemporaryObject(llvm::Module &llvmModule,
                                           mlir::Location loc) {
  SmallString<128> path;
  int fd;
  if (std::error_code ec =
          sys::fs::createTemporaryFile("kiln-model", "o", fd, path)) {
    WithColor::error(errs(), "kilnc")
        << "cannot create a temporary file: " << ec.message() << "\n";
    return failure();
  }
  raw_fd_ostream os(fd, /*shouldClose=*/true);
  if (failed(emitObject(llvmModule, os, /*assembly=*/false, loc))) {
    os.close();
    sys::fs::remove(path);
    return failure();
  }
  os.close();
  return std::string(path);
}

/// The IR file a line table points at: OUTPUT.STAGE.mlir.
std::string lineTableFile(StringRef stage) {
  StringRef base = outputFilename == "-" ? StringRef("kiln") : outputFilename;
  return (base + "." + stage + ".mlir").str();
}

/// Runs the frontend, Kiln's passes and codegen up to the requested stage, and
/// writes that stage's product. Diagnostics go through the context's handler;
/// returns failure if any error was reported.
LogicalResult compile(SourceMgr &srcMgr, mlir::MLIRContext &ctx, Emit emit) {
  DiagnosticReporter reporter(srcMgr, &ctx);
  // The AST is the file as written; the program adds what it imports.
  if (emit == Emit::Ast) {
    std::unique_ptr<ast::Module> file =
        parseModule(srcMgr.getMainFileID(), reporter);
    if (reporter.hadError() || !file)
      return failure();
    return writeOutput([&](raw_ostream &os) { ast::dump(*file, os, &srcMgr); });
  }
  std::unique_ptr<ast::Module> syntax = parseProgram(srcMgr, reporter);
  if (reporter.hadError() || !syntax)
    return failure();

  mlir::OwningOpRef<mlir::ModuleOp> module = analyze(*syntax, reporter);
  if (!module)
    return failure();
  auto printModule = [&] {
    return writeOutput([&](raw_ostream &os) {
      module->print(os);
      os << "\n";
    });
  };
  if (emit == Emit::Kiln)
    return printModule();

  auto runPipeline = [&](auto build) -> LogicalResult {
    mlir::PassManager pm(&ctx, mlir::ModuleOp::getOperationName());
    if (failed(mlir::applyPassManagerCLOptions(pm)))
      return failure();
    build(pm);
    return pm.run(*module);
  };
  KilnPipelineOptions kilnOptions;
  kilnOptions.fuse = fuse;
  kilnOptions.reportStats = stats;
  kilnOptions.reportMissedFusions = remarksMissed;
  kilnOptions.dataParallel = mpi;
  if (failed(runPipeline([&](mlir::OpPassManager &pm) {
        buildKilnPipeline(pm, kilnOptions);
        if (lineInfo == LineInfo::KilnOpt)
          pm.addPass(
              mlir::createLocationSnapshotPass({}, lineTableFile("kiln-opt")));
      })))
    return failure();
  if (emit == Emit::KilnOpt)
    return printModule();

  std::string header;
  if (emit == Emit::Header || emit == Emit::Lib) {
    raw_string_ostream os(header);
    if (failed(emitCHeader(*module, sys::path::filename(inputFilename), os)))
      return failure();
    if (emit == Emit::Header)
      return writeBytes(header);
  }

  LoweringOptions lowering;
  lowering.fastMatmul = fastMatmul;
  lowering.parallel = parallel;
  lowering.reportStats = stats;
  if (lineInfo == LineInfo::Linalg)
    lowering.snapshotBufferized = lineTableFile("linalg");
  Stage stopAfter = emit == Emit::Linalg ? Stage::Linalg : Stage::LLVMDialect;
  if (failed(runPipeline([&](mlir::OpPassManager &pm) {
        buildLoweringPipeline(pm, lowering, stopAfter);
        if (lineInfo != LineInfo::None)
          pm.addPass(mlir::LLVM::createDIScopeForLLVMFuncOpPass());
      })))
    return failure();
  if (emit == Emit::Linalg || emit == Emit::LLVMDialect)
    return printModule();

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateToLLVMIR(*module, llvmContext);
  if (!llvmModule)
    return failure();
  mlir::Location loc = module->getLoc();
  if (emit == Emit::LLVM)
    return writeOutput(
        [&](raw_ostream &os) { llvmModule->print(os, nullptr); });
  if (emit == Emit::Asm || emit == Emit::Obj) {
    SmallString<0> bytes;
    raw_svector_ostream os(bytes);
    if (failed(emitObject(*llvmModule, os, emit == Emit::Asm, loc)))
      return failure();
    return writeBytes(bytes);
  }

  FailureOr<std::string> object = emitTemporaryObject(*llvmModule, loc);
  if (failed(object))
    return failure();
  auto removeObject = llvm::make_scope_exit([&] { sys::fs::remove(*object); });
  if (emit == Emit::Lib) {
    SmallString<256> headerPath(outputFilename);
    sys::path::replace_extension(headerPath, "h");
    if (failed(writeStaticLibrary(*object, outputFilename)))
      return failure();
    Error err = writeToOutput(headerPath, [&](raw_ostream &os) {
      os << header;
      return Error::success();
    });
    if (err) {
      WithColor::error(errs(), "kilnc")
          << "cannot write '" << headerPath << "': " << toString(std::move(err))
          << "\n";
      return failure();
    }
    return success();
  }
  LinkOptions link;
  link.argv0 = argv0;
  link.runtimeDir = runtimeDir;
  link.verbose = verbose;
  link.mpi = mpi;
  return linkExecutable(*object, outputFilename, link);
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  argv0 = argv[0];
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  mlir::registerPassManagerCLOptions();
  cl::HideUnrelatedOptions({&kilncCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "kilnc: the Kiln compiler\n\n"
      "Compiles a .kiln model into a native executable that trains it:\n"
      "  kilnc model.kiln -o model && ./model train\n"
      "--emit=STAGE stops after a stage and writes it (see --help for the\n"
      "list); the MLIR --mlir-print-ir-* flags show every pass.\n");

  ErrorOr<std::unique_ptr<MemoryBuffer>> file =
      MemoryBuffer::getFileOrSTDIN(inputFilename, /*IsText=*/true);
  if (std::error_code ec = file.getError()) {
    WithColor::error(errs(), "kilnc")
        << "cannot read '" << inputFilename << "': " << ec.message() << "\n";
    return 1;
  }

  mlir::DialectRegistry registry;
  kiln::registerAllDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();

  SourceMgr srcMgr;
  srcMgr.AddNewSourceBuffer(std::move(*file), SMLoc());

  Emit emit = emitAction.getNumOccurrences()
                  ? emitAction.getValue()
                  : (outputFilename == "-" ? Emit::Kiln : Emit::Exe);
  bool binary = emit == Emit::Obj || emit == Emit::Lib || emit == Emit::Exe;
  if (binary && outputFilename == "-") {
    WithColor::error(errs(), "kilnc") << "--emit="
                                      << (emit == Emit::Obj   ? "obj"
                                          : emit == Emit::Lib ? "lib"
                                                              : "exe")
                                      << " needs an output file: -o FILE\n";
    return 2;
  }

  if (verifyDiagnostics) {
    mlir::SourceMgrDiagnosticVerifierHandler handler(srcMgr, &ctx);
    (void)compile(srcMgr, ctx, emit);
    return failed(handler.verify()) ? 1 : 0;
  }
  mlir::SourceMgrDiagnosticHandler handler(srcMgr, &ctx);
  return failed(compile(srcMgr, ctx, emit)) ? 1 : 0;
}
