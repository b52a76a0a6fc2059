//===- kilnc.cpp - The Kiln compiler driver -------------------------------===//
//
// Compiles a .kiln model: parse -> semantic analysis -> kiln IR -> (later stages).
// `--emit=STAGE` stops after a stage and prints it; every error is a diagnostic with
// a source location and a non-zero exit, and outputs are written atomically.
//
//===----------------------------------------------------------------------===//

#include "frontend/Diagnostics.h"
#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "frontend/Sema.h"
#include "tools/Registration.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {

enum class Emit { Ast, Kiln };

cl::OptionCategory kilncCategory("kilnc options");

cl::opt<std::string> inputFilename(cl::Positional, cl::desc("<model.kiln>"),
                                   cl::Required, cl::cat(kilncCategory));

cl::opt<std::string> outputFilename("o", cl::desc("Output file (default: stdout)"),
                                    cl::value_desc("file"), cl::init("-"),
                                    cl::cat(kilncCategory));

cl::opt<Emit> emitAction(
    "emit", cl::desc("The stage to stop after and print"),
    cl::values(clEnumValN(Emit::Ast, "ast", "the syntax tree"),
               clEnumValN(Emit::Kiln, "kiln",
                          "kiln IR, as built from the source")),
    cl::init(Emit::Kiln), cl::cat(kilncCategory));

cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check the diagnostics against 'expected-error {{...}}' "
             "comments in the input (for tests)"),
    cl::init(false), cl::cat(kilncCategory));

/// Writes `print`'s output to `-o` atomically (a temporary file renamed into
/// place), so a failed run never leaves a partial or clobbered file.
LogicalResult writeOutput(function_ref<void(raw_ostream &)> print) {
  Error err = writeToOutput(outputFilename, [&](raw_ostream &os) {
    print(os);
    return Error::success();
  });
  if (err) {
    WithColor::error(errs(), "kilnc")
        << "cannot write '" << outputFilename << "': " << toString(std::move(err))
        << "\n";
    return failure();
  }
  return success();
}

/// Runs the frontend and prints the requested stage. Diagnostics go through the
/// context's handler; returns failure if any error was reported.
LogicalResult compile(SourceMgr &srcMgr, mlir::MLIRContext &ctx) {
  DiagnosticReporter reporter(srcMgr, &ctx);
  std::unique_ptr<ast::Module> ast =
      parseModule(srcMgr.getMainFileID(), reporter);
  if (reporter.hadError() || !ast)
    return failure();
  if (emitAction == Emit::Ast)
    return writeOutput([&](raw_ostream &os) { ast::dump(*ast, os, &srcMgr); });

  std::optional<graph::Model> model = analyze(*ast, reporter);
  if (!model)
    return failure();
  mlir::OwningOpRef<mlir::ModuleOp> module = mlirGen(ctx, *model);
  if (!module)
    return failure();
  return writeOutput([&](raw_ostream &os) {
    module->print(os, mlir::OpPrintingFlags().enableDebugInfo(
                          /*enable=*/false));
    os << "\n";
  });
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  mlir::registerPassManagerCLOptions();
  cl::HideUnrelatedOptions({&kilncCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "kilnc: the Kiln compiler\n\n"
      "Compiles a .kiln model. --emit=ast prints the syntax tree; --emit=kiln\n"
      "prints the model's kiln IR (parameters and the @forward function).\n");

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

  if (verifyDiagnostics) {
    mlir::SourceMgrDiagnosticVerifierHandler handler(srcMgr, &ctx);
    (void)compile(srcMgr, ctx);
    return failed(handler.verify()) ? 1 : 0;
  }
  mlir::SourceMgrDiagnosticHandler handler(srcMgr, &ctx);
  return failed(compile(srcMgr, ctx)) ? 1 : 0;
}
