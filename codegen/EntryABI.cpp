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
//  - Params and state that are updated: `to_tensor %m restrict writable`, and
//    the new value is written back with the tensor form of
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
#include "llvm/ADT/StringMap.h"

namespace kiln {
#define GEN_PASS_DEF_KILNENTRYABI
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// One buffer of an entry function's new signature.
struct Slot {
  StringRef role; // kiln.param, kiln.state, kiln.input, ...
  std::string name;
  RankedTensorType type;
};

std::string slotKey(StringRef role, StringRef name) {
  return (role + ":" + name).str();
}

/// The role attribute (name, or empty for kiln.hyper / kiln.loss) of an
/// argument or result; computeAbiLayout has checked that there is one.
std::pair<StringRef, StringRef> roleOf(DictionaryAttr attrs) {
  for (StringRef kind : {"kiln.param", "kiln.state", "kiln.input", "kiln.hyper",
                         "kiln.loss", "kiln.output"})
    if (Attribute a = attrs ? attrs.get(kind) : Attribute()) {
      auto name = dyn_cast<StringAttr>(a);
      return {kind, name ? name.getValue() : StringRef()};
    }
  return {};
}

SmallVector<Slot> buildSlots(EntryKind kind, const AbiLayout &layout,
                             MLIRContext *ctx) {
  SmallVector<Slot> slots;
  for (const AbiParam &p : layout.params)
    slots.push_back({"kiln.param", p.name, p.type});
  if (kind == EntryKind::TrainStep)
    for (const AbiTensor &s : layout.states)
      slots.push_back({"kiln.state", s.name, s.type});
  if (kind == EntryKind::Predict) {
    for (const std::string &name : layout.predictInputs)
      for (const AbiTensor &in : layout.inputs)
        if (in.name == name)
          slots.push_back({"kiln.input", in.name, in.type});
  } else {
    for (const AbiTensor &in : layout.inputs)
      slots.push_back({"kiln.input", in.name, in.type});
  }
  if (kind == EntryKind::TrainStep)
    slots.push_back(
        {"kiln.hyper", "", RankedTensorType::get({4}, Float32Type::get(ctx))});
  if (kind != EntryKind::Predict)
    slots.push_back({"kiln.loss", "", layout.lossType});
  if (kind != EntryKind::TrainStep)
    for (const AbiTensor &out : layout.outputs)
      slots.push_back({"kiln.output", out.name, out.type});
  return slots;
}

struct KilnEntryAbiPass : kiln::impl::KilnEntryAbiBase<KilnEntryAbiPass> {
  void runOnOperation() override;
  LogicalResult rewriteEntry(EntryKind kind, func::FuncOp func,
                             const AbiLayout &layout);
};

LogicalResult KilnEntryAbiPass::rewriteEntry(EntryKind kind, func::FuncOp func,
                                             const AbiLayout &layout) {
  if (!func.getBody().hasOneBlock())
    return func.emitError() << "entry function @" << func.getName()
                            << " must have a single block";
  MLIRContext *ctx = func.getContext();
  Block &oldBody = func.getBody().front();
  auto oldReturn = dyn_cast<func::ReturnOp>(oldBody.getTerminator());
  if (!oldReturn)
    return func.emitError("entry function does not end in func.return");

  SmallVector<Slot> slots = buildSlots(kind, layout, ctx);
  llvm::StringMap<unsigned> slotIndex;
  for (auto [i, slot] : llvm::enumerate(slots))
    slotIndex[slotKey(slot.role, slot.name)] = i;
  auto slotOf = [&](DictionaryAttr attrs) {
    auto [role, name] = roleOf(attrs);
    return slotIndex.lookup(slotKey(role, name));
  };

  SmallVector<int> argSlot; // old argument -> slot
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    argSlot.push_back(slotOf(func.getArgAttrDict(i)));

  // Which params/state are written: those returned with a new value.
  SmallVector<bool> written(slots.size(), false);
  SmallVector<unsigned> resultSlot;
  for (unsigned i = 0; i < func.getNumResults(); ++i) {
    unsigned slot = slotOf(func.getResultAttrDict(i));
    resultSlot.push_back(slot);
    StringRef role = slots[slot].role;
    if (role != "kiln.param" && role != "kiln.state")
      continue;
    auto arg = dyn_cast<BlockArgument>(oldReturn.getOperand(i));
    bool unchanged = arg && arg.getOwner() == &oldBody &&
                     argSlot[arg.getArgNumber()] == static_cast<int>(slot);
    written[slot] = !unchanged;
  }

  // The new function.
  OpBuilder b(func);
  SmallVector<Type> argTypes;
  for (const Slot &slot : slots)
    argTypes.push_back(
        MemRefType::get(slot.type.getShape(), slot.type.getElementType()));
  auto newFunc = b.create<func::FuncOp>(func.getLoc(), func.getName(),
                                        FunctionType::get(ctx, argTypes, {}));
  newFunc.setVisibility(func.getVisibility());
  for (auto [i, slot] : llvm::enumerate(slots)) {
    Attribute value = slot.name.empty()
                          ? Attribute(UnitAttr::get(ctx))
                          : Attribute(StringAttr::get(ctx, slot.name));
    newFunc.setArgAttr(i, slot.role, value);
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
    StringRef role = slots[slot].role;
    if (role == "kiln.param" || role == "kiln.state") {
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

  for (auto [kind, func] : layout->entries)
    if (failed(rewriteEntry(kind, func, *layout)))
      return signalPassFailure();

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
  for (auto func : module.getOps<func::FuncOp>()) {
    StringRef name = func.getName();
    if (name != "train_step" && name != "eval_step" && name != "predict")
      others.push_back(func);
  }
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
