//===- Diagnostics.h - Frontend diagnostics through MLIR's engine -*- C++
//-*-===//
//
// The frontend reports errors through MLIR's DiagnosticEngine at
// FileLineColLocs of the .kiln file, so that DSL errors, IR verifier errors and
// `-verify-diagnostics` share one path and one format (`file:line:col: error:
// ...` with a caret, printed by mlir::SourceMgrDiagnosticHandler).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_DIAGNOSTICS_H
#define KILN_FRONTEND_DIAGNOSTICS_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/SourceMgr.h"

namespace kiln {

/// The line and column (both from 1) of `loc` in buffer `bufferId`, like
/// SourceMgr::getLineAndColumn but in time independent of the column: that one
/// scans back to the start of the line, which is quadratic over the many
/// locations of a very long line. Columns count from the last '\n'.
std::pair<unsigned, unsigned> getLineAndColumn(const llvm::SourceMgr &srcMgr,
                                               llvm::SMLoc loc,
                                               unsigned bufferId);

class DiagnosticReporter {
public:
  /// After this many errors the frontend stops with "too many errors".
  static constexpr unsigned kMaxErrors = 20;

  DiagnosticReporter(const llvm::SourceMgr &srcMgr, mlir::MLIRContext *ctx)
      : srcMgr(srcMgr), ctx(ctx) {}

  /// The MLIR location of a point in the source.
  mlir::Location getLoc(llvm::SMLoc loc) const;

  /// Starts an error at `loc`; attach notes with `.attachNote(getLoc(...))`.
  mlir::InFlightDiagnostic emitError(llvm::SMLoc loc, const llvm::Twine &msg);
  /// Same at an MLIR location, e.g. a CallSiteLoc inside an inlined function
  /// (printed with a "called from" note per caller).
  mlir::InFlightDiagnostic emitError(mlir::Location loc,
                                     const llvm::Twine &msg);

  unsigned getNumErrors() const { return numErrors; }
  bool hadError() const { return numErrors != 0; }
  /// True once kMaxErrors errors were reported; callers stop then.
  bool tooManyErrors() const { return numErrors >= kMaxErrors; }

  mlir::MLIRContext *getContext() const { return ctx; }
  const llvm::SourceMgr &getSourceMgr() const { return srcMgr; }

private:
  const llvm::SourceMgr &srcMgr;
  mlir::MLIRContext *ctx;
  unsigned numErrors = 0;
};

} // namespace kiln

#endif // KILN_FRONTEND_DIAGNOSTICS_H
