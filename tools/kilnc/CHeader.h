//===- CHeader.h - The C header of a compiled model's ABI -------*- C++ -*-===//

#ifndef KILN_TOOLS_KILNC_CHEADER_H
#define KILN_TOOLS_KILNC_CHEADER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/Support/raw_ostream.h"

namespace kiln {

/// Writes a C header declaring the model's entry points (runtime/KilnABI.h) and
/// documenting, for each, the order, role, element type and shape of its
/// buffers. `module` is the kiln IR after Kiln's passes (entry functions with
/// their kiln.* argument and result attributes).
/// Writes the C header of `module`'s entry table (a module of entry
/// functions, after kiln's passes); fails with a diagnostic where the ABI
/// layout cannot be computed.
mlir::LogicalResult emitCHeader(mlir::ModuleOp module,
                                llvm::StringRef sourceName,
                                llvm::raw_ostream &os);

} // namespace kiln

#endif // KILN_TOOLS_KILNC_CHEADER_H
