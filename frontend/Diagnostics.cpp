//===- Diagnostics.cpp - Frontend diagnostics through MLIR's engine -------===//

#include "frontend/Diagnostics.h"

#include "mlir/IR/MLIRContext.h"

using namespace kiln;

mlir::Location DiagnosticReporter::getLoc(llvm::SMLoc loc) const {
  unsigned bufferId = srcMgr.FindBufferContainingLoc(loc);
  if (!bufferId)
    return mlir::UnknownLoc::get(ctx);
  auto [line, col] = srcMgr.getLineAndColumn(loc, bufferId);
  llvm::StringRef file =
      srcMgr.getMemoryBuffer(bufferId)->getBufferIdentifier();
  return mlir::FileLineColLoc::get(ctx, file, line, col);
}

mlir::InFlightDiagnostic DiagnosticReporter::emitError(llvm::SMLoc loc,
                                                       const llvm::Twine &msg) {
  ++numErrors;
  return mlir::emitError(getLoc(loc), msg);
}
