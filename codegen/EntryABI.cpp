//===- EntryABI.cpp - Entry functions in destination-passing style --------===//
//
// Design. The C ABI (runtime/KilnABI.h) passes one array of buffer pointers;
// the caller owns all memory and parameters and optimizer state are updated in
// place. This pass expresses that contract at tensor level, before
// bufferization: each entry function takes one identity-layout memref per ABI
// buffer (all of them, in ABI order, computed by computeAbiLayout so that the
// manifest agrees) and returns nothing.
//
//  - Inputs, hyper and params that are only read: `to_tensor %m restrict`.
//  - Params, state and carries that are updated: `to_tensor %m restrict
//    writable`, and the new value is written back with the tensor form of
//    `materialize_in_destination %new in %t`: one-shot-bufferize computes it in
//    the argument's buffer when no later read conflicts (after
//    eliminate-empty-tensors), and copies otherwise, never silently wrong.
//  - Loss and outputs: `materialize_in_destination %v in restrict writable %m`
//    (memref form); empty-tensor elimination then computes them in place.
//
// After bufferization with bare-pointer memrefs, kiln-abi-wrappers only has to
// unpack the `void **` array.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/Passes.h"

#include "mlir/IR/IRMapping.h"

namespace kiln {
#define GEN_PASS_DEF_KILNENTRYABI
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct KilnEntryAbiPass : kiln::impl::KilnEntryAbiBase<KilnEntryAbiPass> {
  void runOnOperation() override;
  LogicalResult rewriteEntry(const AbiEntry &entry);
};

LogicalResult KilnEntryAbiPass::rewriteEntry(const AbiEntry &abiEntry) {
  func::FuncOp func = abiEntry.func;
  if (!func.getBody().hasOneBlock())
    return func.emitError() << "entry function @" << func.getName()
                            << " must have a single block";
  MLIRContext *ctx = func.getContext();
  Block &oldBody = func.getBody().front();
  auto oldReturn = dyn_cast<func::ReturnOp>(oldBody.getTerminator());
  if (!oldReturn)
    return func.emitError("entry function does not end in func.return");

  ArrayRef<AbiBuffer> slots = abiEntry.buffers;
  ArrayRef<unsigned> argSlot = abiEntry.argSlots;
  ArrayRef<unsigned> resultSlot = abiEntry.resultSlots;

  // Which params/state are written: those returned with a new value.
  SmallVector<bool> written(slots.size(), false);
  for (auto [i, slot] : llvm::enumerate(resultSlot)) {
    Role role = slots[slot].role;
    if (role != Role::Param && role != Role::State && role != Role::Carry)
      continue;
    auto arg = dyn_cast<BlockArgument>(oldReturn.getOperand(i));
    bool unchanged = arg && arg.getOwner() == &oldBody &&
                     argSlot[arg.getArgNumber()] == slot;
    written[slot] = !unchanged;
  }

  // The new function.
  OpBuilder b(func);
  SmallVector<Type> argTypes;
  for (const AbiBuffer &slot : slots)
    argTypes.push_back(
        MemRefType::get(slot.type.getShape(), slot.type.getElementType()));
  auto newFunc = b.create<func::FuncOp>(func.getLoc(), func.getName(),
                                        FunctionType::get(ctx, argTypes, {}));
  newFunc.setVisibility(func.getVisibility());
  setEntryKind(newFunc, abiEntry.kind);
  for (auto [i, slot] : llvm::enumerate(slots)) {
    Attribute value = slot.name.empty()
                          ? Attribute(UnitAttr::get(ctx))
                          : Attribute(StringAttr::get(ctx, slot.name));
    newFunc.setArgAttr(i, contract::info(slot.role).attr, value);
  }
  Block *entry = newFunc.addEntryBlock();
  b.setInsertionPointToStart(entry);

  // Tensors of the buffers the body reads or updates.
  SmallVector<Value> tensors(slots.size());
  SmallVector<bool> read(slots.size(), false);
  for (auto [i, slot] : llvm::enumerate(argSlot))
    if (!oldBody.getArgument(i).use_empty())
      read[slot] = true;
  for (auto [i, slot] : llvm::enumerate(slots)) {
    if (!read[i] && !written[i])
      continue;
    tensors[i] = b.create<bufferization::ToTensorOp>(
        func.getLoc(), slot.type, entry->getArgument(i), /*restrict=*/true,
        /*writable=*/written[i]);
  }
  for (auto [i, slot] : llvm::enumerate(argSlot))
    oldBody.getArgument(i).replaceAllUsesWith(tensors[slot]);
  entry->getOperations().splice(entry->end(), oldBody.getOperations());

  // Results into their buffers.
  b.setInsertionPoint(oldReturn);
  for (auto [i, slot] : llvm::enumerate(resultSlot)) {
    Value value = oldReturn.getOperand(i);
    Location loc = oldReturn.getLoc();
    Role role = slots[slot].role;
    if (role == Role::Param || role == Role::State || role == Role::Carry) {
      if (!written[slot])
        continue;
      b.create<bufferization::MaterializeInDestinationOp>(
          loc, tensors[slot].getType(), value, tensors[slot]);
      ++numInPlace;
      continue;
    }
    b.create<bufferization::MaterializeInDestinationOp>(
        loc, TypeRange{}, value, entry->getArgument(slot), /*restrict=*/true,
        /*writable=*/true);
  }
  b.create<func::ReturnOp>(oldReturn.getLoc());
  oldReturn.erase();
  func.erase();
  ++numEntries;
  return success();
}

void KilnEntryAbiPass::runOnOperation() {
  ModuleOp module = getOperation();
  FailureOr<AbiLayout> layout = computeAbiLayout(module);
  if (failed(layout))
    return signalPassFailure();
  std::string manifest = renderManifest(module, *layout);

  SmallVector<Attribute> entryNames;
  for (const AbiEntry &entry : layout->entries) {
    if (failed(rewriteEntry(entry)))
      return signalPassFailure();
    entryNames.push_back(StringAttr::get(&getContext(), entry.name));
  }
  module->setAttr(kEntriesAttrName, ArrayAttr::get(&getContext(), entryNames));

  // Give every destination operand its own init: CSE merges identical
  // tensor.empty and linalg.fill ops, and a shared init makes
  // one-shot-bufferize copy (two results cannot be computed in one buffer), or
  // makes empty-tensor elimination put several results into the destination of
  // one of them.
  module.walk([](DestinationStyleOpInterface op) {
    for (OpOperand &init : op.getDpsInitsMutable()) {
      Value value = init.get();
      if (value.hasOneUse())
        continue;
      Operation *def = value.getDefiningOp();
      auto fill = dyn_cast_or_null<linalg::FillOp>(def);
      if (fill && !fill.getDpsInits()[0].getDefiningOp<tensor::EmptyOp>())
        continue;
      if (!fill && !isa_and_nonnull<tensor::EmptyOp>(def))
        continue;
      OpBuilder b(op);
      IRMapping mapping;
      if (fill)
        b.clone(*fill.getDpsInits()[0].getDefiningOp(), mapping);
      init.set(b.clone(*def, mapping)->getResult(0));
    }
  });
  module.walk([](tensor::EmptyOp empty) {
    SmallVector<OpOperand *> uses;
    for (OpOperand &use : empty.getResult().getUses())
      uses.push_back(&use);
    OpBuilder b(empty);
    for (OpOperand *use : llvm::drop_begin(uses))
      use->set(b.clone(*empty)->getResult(0));
  });

  for (ParamOp p : llvm::make_early_inc_range(module.getOps<ParamOp>()))
    p.erase();
  module->setAttr(kManifestAttrName, StringAttr::get(&getContext(), manifest));

  // Other functions survive only as private helpers of the entries.
  SmallVector<func::FuncOp> others;
  for (auto func : module.getOps<func::FuncOp>())
    if (!getEntryKind(func))
      others.push_back(func);
  bool changed = true;
  while (changed) {
    changed = false;
    for (func::FuncOp &func : others) {
      if (!func || !SymbolTable::symbolKnownUseEmpty(func, module))
        continue;
      func.erase();
      func = nullptr;
      changed = true;
    }
  }
  for (func::FuncOp func : others)
    if (func)
      func.setPrivate();
}

} // namespace
