//===- EntryPoints.cpp - @eval_step and @predict from @forward ------------===//

#include "passes/Forward.h"
#include "passes/Passes.h"

#include "ir/Entry.h"
#include "ir/KilnOps.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace kiln {
#define GEN_PASS_DEF_KILNENTRYPOINTS
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct KilnEntryPointsPass
    : public kiln::impl::KilnEntryPointsBase<KilnEntryPointsPass> {
  void runOnOperation() override;
};

/// Erases pure ops whose results are unused, last to first.
void eraseDeadOps(Block &block) {
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
    if (op.use_empty() && !op.hasTrait<OpTrait::IsTerminator>() && isPure(&op))
      op.erase();
}

/// Clones `forward` (a function in the form of @forward: parameters read with
/// kiln.load_param) into an entry point `name` of `kind` with the parameters
/// as leading arguments, returning the results selected by `results`; inputs
/// that the selected results do not use are dropped when `pruneInputs`.
FailureOr<func::FuncOp> buildEntry(OpBuilder &b, func::FuncOp forward,
                                   MutableArrayRef<ParamOp> params,
                                   StringRef name, EntryKind kind,
                                   ArrayRef<unsigned> results,
                                   bool pruneInputs) {
  // A source that draws random numbers takes a hyper vector (last) to key
  // them: the runtime fills it per call.
  bool random = drawsRandomNumbers(forward);
  SmallVector<Type> argTypes, resultTypes;
  for (ParamOp p : params)
    argTypes.push_back(p.getType());
  llvm::append_range(argTypes, forward.getArgumentTypes());
  if (random)
    argTypes.push_back(
        RankedTensorType::get({contract::kHyperCount}, b.getF32Type()));
  for (unsigned r : results)
    resultTypes.push_back(forward.getResultTypes()[r]);
  auto func = b.create<func::FuncOp>(forward.getLoc(), name,
                                     b.getFunctionType(argTypes, resultTypes));
  setEntryKind(func, kind);
  for (auto [i, p] : llvm::enumerate(params))
    func.setArgAttr(i, contract::info(contract::Role::Param).attr,
                    b.getStringAttr(p.getSymName()));
  for (unsigned i = 0; i < forward.getNumArguments(); ++i)
    func.setArgAttrs(params.size() + i, forward.getArgAttrDict(i));
  if (random)
    func.setArgAttr(argTypes.size() - 1,
                    contract::info(contract::Role::Hyper).attr,
                    b.getUnitAttr());
  for (auto [i, r] : llvm::enumerate(results))
    func.setResultAttrs(i, forward.getResultAttrDict(r));

  Block *entry = func.addEntryBlock();
  Value hyper = random ? entry->getArguments().back() : Value();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(entry);
  // Evaluation mode: running statistics, no dropout, no buffer updates;
  // random numbers keyed by the entry's own hyper vector.
  FailureOr<SmallVector<Value>> returned = cloneForward(
      b, forward, params, func.getArguments().take_front(params.size()),
      func.getArguments().slice(params.size(), forward.getNumArguments()),
      /*training=*/false, hyper);
  if (failed(returned)) {
    func.erase();
    return failure();
  }
  SmallVector<Value> values;
  for (unsigned r : results)
    values.push_back((*returned)[r]);
  b.create<func::ReturnOp>(forward.getLoc(), values);
  eraseDeadOps(*entry);
  if (pruneInputs) {
    llvm::BitVector unused(func.getNumArguments());
    for (unsigned i = params.size(); i < func.getNumArguments(); ++i)
      if (func.getArgument(i).use_empty())
        unused.set(i);
    (void)func.eraseArguments(unused);
  }
  return func;
}

} // namespace

void KilnEntryPointsPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward) {
    module.emitError("kiln-entry-points: the module has no @forward function");
    return signalPassFailure();
  }
  SmallVector<ParamOp> params(module.getOps<ParamOp>());
  OpBuilder b(&getContext());
  b.setInsertionPointAfter(forward);

  // Further entry points the model declares (a decoder's `sample`, a
  // generate block's step, ...) are written like @forward, reading parameters
  // with kiln.load_param; they become entries that take every parameter, in
  // evaluation mode. Entries already built (they take parameters, or the
  // hyper vector as kiln-autodiff's train step does) are not sources.
  SmallVector<func::FuncOp> declared;
  for (auto func : module.getOps<func::FuncOp>())
    if (func != forward && getEntryKind(func) &&
        llvm::none_of(func.getArguments(), [&](BlockArgument arg) {
          unsigned i = arg.getArgNumber();
          return func.getArgAttr(i,
                                 contract::info(contract::Role::Param).attr) ||
                 func.getArgAttr(i, contract::info(contract::Role::Hyper).attr);
        }))
      declared.push_back(func);

  SmallVector<unsigned> all, outputs;
  for (unsigned r = 0; r < forward.getNumResults(); ++r) {
    all.push_back(r);
    if (forward.getResultAttr(r, KilnDialect::kOutputAttrName))
      outputs.push_back(r);
  }
  if (failed(buildEntry(b, forward, params, contract::kEvalStepEntry,
                        EntryKind::Eval, all, /*pruneInputs=*/false)))
    return signalPassFailure();
  if (!outputs.empty() &&
      failed(buildEntry(b, forward, params, contract::kPredictEntry,
                        EntryKind::Infer, outputs, /*pruneInputs=*/true)))
    return signalPassFailure();

  for (func::FuncOp source : declared) {
    EntryKind kind = *getEntryKind(source);
    if (kind == EntryKind::Train) {
      source.emitError("kiln-entry-points: @")
          << source.getName()
          << " is marked as a train entry; kiln-autodiff builds the one "
             "train entry from @forward";
      return signalPassFailure();
    }
    std::string name = source.getName().str();
    source.setName(name + ".source");
    SmallVector<unsigned> results;
    for (unsigned r = 0; r < source.getNumResults(); ++r)
      results.push_back(r);
    b.setInsertionPointAfter(source);
    if (failed(buildEntry(b, source, params, name, kind, results,
                          /*pruneInputs=*/false)))
      return signalPassFailure();
    source.erase();
  }
  b.setInsertionPointAfter(forward);

  // Inputs that hold class indices (cross_entropy labels, one_hot and gather
  // ids, also
  // through reshapes and slices) record their number of classes, the smallest
  // over their uses, for data validation.
  // A cross_entropy's ignore_index is a value its labels may hold too; its
  // labels are targets, which the runtime tells from table indices.
  llvm::MapVector<StringRef, int64_t> classes, ignored;
  llvm::SetVector<StringRef> targets;
  auto recordIndices = [&](Value v, int64_t count,
                           std::optional<int64_t> ignore = std::nullopt,
                           bool target = false) {
    while (Operation *def = v.getDefiningOp()) {
      if (!isa<ReshapeOp, SplitOp, TransposeOp>(def))
        return;
      v = def->getOperand(0);
    }
    auto arg = dyn_cast<BlockArgument>(v);
    auto name = arg ? forward.getArgAttrOfType<StringAttr>(
                          arg.getArgNumber(), KilnDialect::kInputAttrName)
                    : StringAttr();
    if (!name)
      return;
    auto [it, inserted] = classes.try_emplace(name.getValue(), count);
    if (!inserted)
      it->second = std::min(it->second, count);
    if (ignore)
      ignored.try_emplace(name.getValue(), *ignore);
    if (target)
      targets.insert(name.getValue());
  };
  forward.walk([&](Operation *op) {
    if (auto ce = dyn_cast<CrossEntropyOp>(op))
      recordIndices(ce.getRhs(), ce.getLhs().getType().getDimSize(1),
                    ce.getIgnoreIndex(), /*target=*/true);
    else if (auto oneHot = dyn_cast<OneHotOp>(op))
      recordIndices(oneHot.getLabels(), oneHot.getType().getDimSize(1));
    else if (auto gather = dyn_cast<GatherOp>(op))
      recordIndices(gather.getIds(), gather.getTable().getType().getDimSize(0));
  });
  SmallVector<NamedAttribute> labelClasses;
  for (auto [name, count] : classes)
    labelClasses.push_back(b.getNamedAttr(name, b.getI64IntegerAttr(count)));

  // Accuracy: an i32 output shaped like the labels of a cross_entropy loss.
  // The metrics the train block declares come first.
  SmallVector<Attribute> metrics;
  if (auto declared = module->getAttrOfType<ArrayAttr>(contract::kMetricsAttr))
    llvm::append_range(metrics, declared);
  llvm::SetVector<std::pair<StringRef, StringRef>> seen;
  forward.walk([&](CrossEntropyOp ce) {
    auto labels = dyn_cast<BlockArgument>(ce.getRhs());
    if (!labels)
      return;
    auto labelName = forward.getArgAttrOfType<StringAttr>(
        labels.getArgNumber(), KilnDialect::kInputAttrName);
    if (!labelName)
      return;
    for (unsigned r : outputs) {
      auto outName = forward.getResultAttrOfType<StringAttr>(
          r, KilnDialect::kOutputAttrName);
      if (forward.getResultTypes()[r] != labels.getType() ||
          !seen.insert({outName.getValue(), labelName.getValue()}))
        continue;
      Attribute metric = b.getStrArrayAttr(
          {contract::info(contract::MetricKind::Accuracy).name,
           outName.getValue(), labelName.getValue()});
      if (!llvm::is_contained(metrics, metric))
        metrics.push_back(metric);
    }
  });
  if (!metrics.empty())
    module->setAttr(contract::kMetricsAttr, b.getArrayAttr(metrics));
  if (!labelClasses.empty())
    module->setAttr(contract::kLabelsAttr, b.getDictionaryAttr(labelClasses));
  SmallVector<NamedAttribute> ignoredLabels;
  for (auto [name, value] : ignored)
    ignoredLabels.push_back(b.getNamedAttr(name, b.getI64IntegerAttr(value)));
  if (!ignoredLabels.empty())
    module->setAttr(contract::kIgnoredLabelAttr,
                    b.getDictionaryAttr(ignoredLabels));
  if (!targets.empty())
    module->setAttr(contract::kTargetLabelsAttr,
                    b.getStrArrayAttr(targets.getArrayRef()));
  forward.erase();
}
