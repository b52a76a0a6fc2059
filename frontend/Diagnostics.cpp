//===- Diagnostics.cpp - Frontend diagnostics through MLIR's engine -------===//

#include "frontend/Diagnostics.h"

#include "mlir/IR/MLIRContext.h"

using namespace kiln;

std::pair<unsigned, unsigned>
kiln::getLineAndColumn(const llvm::SourceMgr &srcMgr, llvm::SMLoc loc,
                       unsigned bufferId) {
  // Both lookups use the buffer's cache of line offsets.
  const auto &buffer = srcMgr.getBufferInfo(bufferId);
  unsigned line = buffer.getLineNumber(loc.getPointer());
  const char *lineStart = buffer.getPointerForLineNumber(line);
  if (!lineStart || lineStart > loc.getPointer())
    return srcMgr.getLineAndColumn(loc, bufferId);
  return {line, static_cast<unsigned>(loc.getPointer() - lineStart) + 1};
}

mlir::Location DiagnosticReporter::getLoc(llvm::SMLoc loc) const {
  unsigned bufferId = srcMgr.FindBufferContainingLoc(loc);
  if (!bufferId)
    return mlir::UnknownLoc::get(ctx);
  auto [line, col] = getLineAndColumn(srcMgr, loc, bufferId);
  llvm::StringRef file =
      srcMgr.getMemoryBuffer(bufferId)->getBufferIdentifier();
  return mlir::FileLineColLoc::get(ctx, file, line, col);
}

mlir::InFlightDiagnostic DiagnosticReporter::emitError(llvm::SMLoc loc,
                                                       const llvm::Twine &msg) {
  ++numErrors;
  return mlir::emitError(getLoc(loc), msg);
}

mlir::InFlightDiagnostic DiagnosticReporter::emitError(mlir::Location loc,
                                                       const llvm::Twine &msg) {
  ++numErrors;
  return mlir::emitError(loc, msg);
}
