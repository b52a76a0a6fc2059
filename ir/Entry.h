//===- Entry.h - Which functions are entry points, and of what kind -*- C++
//-*-===//
//
// An entry point of a compiled model is a func.func carrying the kiln.entry
// attribute (runtime/Contract.h), whose value is its kind: "train", "eval" or
// "infer". kiln-autodiff and kiln-entry-points create them; the ABI passes
// turn each into one row of the entry table.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_ENTRY_H
#define KILN_IR_ENTRY_H

#include "runtime/Contract.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <optional>

namespace kiln {

using contract::EntryKind;

/// The kind of an entry function, or nullopt if `func` is not one (or its
/// kiln.entry attribute names no kind). The standard entries (train_step,
/// eval_step, predict) need no attribute.
inline std::optional<EntryKind> getEntryKind(mlir::func::FuncOp func) {
  if (auto kind = func->getAttrOfType<mlir::StringAttr>(contract::kEntryAttr))
    return contract::parseEntryKind(kind.getValue().str());
  if (func->hasAttr(contract::kEntryAttr))
    return std::nullopt;
  if (const contract::StandardEntry *standard = contract::findByName(
          contract::kStandardEntries, func.getName().str()))
    return standard->kind;
  return std::nullopt;
}

/// Marks `func` as an entry point of `kind`.
inline void setEntryKind(mlir::func::FuncOp func, EntryKind kind) {
  func->setAttr(
      contract::kEntryAttr,
      mlir::StringAttr::get(func.getContext(), contract::info(kind).name));
}

} // namespace kiln

#endif // KILN_IR_ENTRY_H
