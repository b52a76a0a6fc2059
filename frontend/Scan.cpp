//===- Scan.cpp - scan(cell, xs, init = ...): a recurrence as one loop op -===//
//
// `hs, h, c = scan(lstm_cell, xs, init = (h0, c0))` elaborates the cell once,
// into the body of one kiln.scan: the IR does not grow with the sequence, and
// the cell's params are created once (one set of weights for every step).
// The cell is called as `cell(x_t..., carries...)` and returns the new
// carries (a tensor, or a tuple of them); scan returns the first carry of
// every step stacked along `axis`, then the final carries.
//
//===----------------------------------------------------------------------===//

#include "frontend/Builtins.h"

#include "ir/ShapeRules.h"

#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

#include <memory>

using namespace kiln;
using namespace kiln::sema;

namespace {

/// The tensors of `value`: itself, or the elements of a tuple of tensors.
std::optional<llvm::SmallVector<mlir::Value>>
tensorsOf(Elaborator &e, const Value &value, llvm::SMLoc loc,
          const llvm::Twine &what) {
  if (value.isPoison())
    return std::nullopt;
  llvm::SmallVector<mlir::Value> tensors;
  if (value.kind == Value::Kind::Tensor)
    tensors.push_back(value.tensor);
  for (const Value &element : value.elements) {
    if (element.kind != Value::Kind::Tensor)
      break;
    tensors.push_back(element.tensor);
  }
  if (tensors.empty() || (value.kind == Value::Kind::Tuple &&
                          tensors.size() != value.elements.size())) {
    e.error(loc, what + " must be a tensor or a tuple of tensors, got " +
                     e.describe(value));
    return std::nullopt;
  }
  return tensors;
}

std::string typesStr(mlir::TypeRange types) {
  std::string s;
  for (auto [i, t] : llvm::enumerate(types))
    s += (i ? ", " : "") + typeStr(t);
  return s;
}

} // namespace

Value sema::elaborateScan(BuiltinCall &c) {
  Elaborator &e = c.e;
  Value cell = e.eval(*c.arg(0), c.frame);
  if (cell.isPoison())
    return cell;
  if (cell.kind != Value::Kind::Function || !cell.fn) {
    e.error(c.arg(0)->getLoc(), "the cell of 'scan' must be a function "
                                "declared with 'fn', got " +
                                    e.describe(cell));
    return Value::poison();
  }
  const ast::FnDecl &fn = *cell.fn;
  auto xs = tensorsOf(e, e.eval(*c.arg(1), c.frame), c.arg(1)->getLoc(),
                      "the sequence of 'scan'");
  if (!xs)
    return Value::poison();
  auto init = tensorsOf(e, e.eval(*c.arg(2), c.frame), c.arg(2)->getLoc(),
                        "the initial carries of 'scan'");
  if (!init)
    return Value::poison();
  std::optional<int64_t> axis =
      e.evalAxis(c.arg(3), c.loc(), c.frame, xs->front(), 1);
  if (!axis)
    return Value::poison();
  std::optional<bool> reverse = c.boolArg(4, false),
                      stateful = c.boolArg(5, false);
  if (!reverse || !stateful)
    return Value::poison();
  // A stateful scan of the model continues from the carries the previous
  // batch left (Keras' `stateful = True`): they are carry arguments of
  // @forward, and its final carries are returned into them. In a generate
  // or translate block every scan is stateful.
  bool carried = e.inStepBlock() || *stateful;
  if (carried && e.builder.getInsertionBlock()->getParentOp() != e.current) {
    e.error(c.loc(), "a stateful scan cannot be inside another scan's cell");
    return Value::poison();
  }

  // Every sequence has the same number of steps along `axis`.
  int64_t length = typeOf(xs->front()).getDimSize(*axis);
  llvm::SmallVector<mlir::Type> sliceTypes;
  for (mlir::Value x : *xs) {
    mlir::RankedTensorType type = typeOf(x);
    if (type.getRank() <= *axis || type.getDimSize(*axis) != length) {
      e.error(c.arg(1)->getLoc(),
              "the sequences of 'scan' must all have " +
                  std::to_string(length) + " steps along axis " +
                  std::to_string(*axis) + ", got " + typeStr(type));
      return Value::poison();
    }
    std::string why;
    shape::Shape slice = *shape::dropAxis(type.getShape(), *axis, why);
    sliceTypes.push_back(
        mlir::RankedTensorType::get(slice, type.getElementType()));
  }
  llvm::SmallVector<mlir::Type> carryTypes;
  for (mlir::Value h : *init) {
    if (!typeOf(h).getElementType().isF32()) {
      e.error(c.arg(2)->getLoc(),
              "the carries of 'scan' must be float tensors, got " +
                  typeStr(h.getType()));
      return Value::poison();
    }
    carryTypes.push_back(h.getType());
  }
  // The first carry of every step, stacked along `axis`.
  mlir::RankedTensorType first = typeOf(init->front());
  if (first.getRank() < *axis) {
    e.error(c.arg(2)->getLoc(), "cannot stack the steps of the first carry " +
                                    typeStr(first) + " along axis " +
                                    std::to_string(*axis));
    return Value::poison();
  }
  shape::Shape stacked(first.getShape());
  stacked.insert(stacked.begin() + *axis, length);
  auto stackedType =
      mlir::RankedTensorType::get(stacked, first.getElementType());

  size_t given = xs->size() + init->size();
  size_t required = llvm::count_if(
      fn.params, [](const ast::FnParam &p) { return !p.defaultValue; });
  if (given < required || given > fn.params.size()) {
    e.error(c.loc(), "the cell '" + fn.name.name + "' is called with " +
                         std::to_string(xs->size()) + " sequence slice" +
                         (xs->size() == 1 ? "" : "s") + " and " +
                         std::to_string(init->size()) + " carr" +
                         (init->size() == 1 ? "y" : "ies") + ", but it takes " +
                         std::to_string(fn.params.size()) + " parameter" +
                         (fn.params.size() == 1 ? "" : "s"));
    return Value::poison();
  }

  // A carried recurrence starts from carry arguments of the function being
  // built (the step's, or @forward's, whose carries are named `batch:...`: the
  // state of each row of the batch, a buffer apart from a generate step's);
  // its final carries are returned into them. The initial carries given only
  // fix their types: the runtime zeroes the carries.
  std::string scope = e.uniqueScopeName(c.frame, fn.name.name);
  size_t firstCarry = e.carries.size();
  if (carried) {
    for (auto [i, h] : llvm::enumerate(*init)) {
      mlir::BlockArgument arg = e.current.getBody().addArgument(
          h.getType(), e.locOf(c.arg(2)->getLoc(), c.frame));
      e.carries.push_back({(e.inStepBlock() ? "" : "batch:") + c.frame.prefix +
                               scope + "." + std::to_string(i),
                           arg,
                           {}});
      h = arg;
    }
  }

  // The body: one step of the cell on block arguments, the carries first.
  mlir::Location loc = e.locOf(c.loc(), c.frame);
  auto body = std::make_unique<mlir::Block>();
  std::vector<std::optional<Value>> args(fn.params.size());
  for (mlir::Type t : carryTypes)
    body->addArgument(t, loc);
  for (auto [i, t] : llvm::enumerate(sliceTypes))
    args[i] = Value::tensorOf(body->addArgument(t, loc));
  for (size_t i = 0; i < init->size(); ++i)
    args[xs->size() + i] = Value::tensorOf(body->getArgument(i));
  std::vector<llvm::SMLoc> locs(fn.params.size(), c.loc());
  locs[0] = c.arg(1)->getLoc();
  for (size_t i = xs->size(); i < given; ++i)
    locs[i] = c.arg(2)->getLoc();

  llvm::SmallVector<mlir::Value> next;
  {
    mlir::OpBuilder::InsertionGuard guard(e.builder);
    e.builder.setInsertionPointToStart(body.get());
    Value out = e.invoke(fn, args, locs, c.loc(), c.frame, scope);
    if (out.isPoison())
      return out;
    auto carries = tensorsOf(e, out, c.loc(), "the result of the cell");
    if (!carries)
      return Value::poison();
    llvm::SmallVector<mlir::Type> types;
    for (mlir::Value v : *carries)
      types.push_back(v.getType());
    if (types != carryTypes) {
      e.error(c.loc(), "the cell '" + fn.name.name +
                           "' must return the new carries (" +
                           typesStr(carryTypes) + "), got " + typesStr(types));
      return Value::poison();
    }
    next = *carries;
    next.push_back(next.front());
    e.builder.create<YieldOp>(loc, next);
  }

  // Random numbers, warm-up ramps and attention dropout read the hyper
  // vector, which reaches a loop body only for dropout (below).
  auto readsHyper = [](mlir::Operation &op) {
    if (auto a = llvm::dyn_cast<AttentionOp>(op))
      return a.getDropout().convertToDouble() > 0;
    return llvm::isa<RandomUniformOp, RandomNormalOp, WarmupOp>(op);
  };
  for (mlir::Operation &op : *body)
    if (readsHyper(op)) {
      e.error(c.loc(), "the cell '" + fn.name.name + "' uses '" +
                           op.getName().stripDialect().str() +
                           "', which a recurrence cannot hold yet; compute it "
                           "outside the scan and pass it in (as a sequence "
                           "of xs, or as a value the cell reads)");
      return Value::poison();
    }

  // A dropout in the cell draws a new mask at each step: it reads the step's
  // number, a slice of the sequence 0, 1, ..., T - 1 (an i32 tensor with the
  // steps along `axis`) given to the scan after the other sequences.
  llvm::SmallVector<mlir::Value> sequences(*xs);
  llvm::SmallVector<DropoutOp> dropouts;
  for (mlir::Operation &op : *body)
    if (auto d = llvm::dyn_cast<DropoutOp>(op); d && !d.getStep())
      dropouts.push_back(d);
  if (!dropouts.empty()) {
    llvm::SmallVector<int64_t> shape(*axis, 1);
    shape.push_back(length);
    auto i32 = e.builder.getI32Type();
    auto type = mlir::RankedTensorType::get(shape, i32);
    llvm::SmallVector<int32_t> steps(length);
    for (int64_t t = 0; t < length; ++t)
      steps[t] = int32_t(t);
    sequences.push_back(e.create<ConstantOp>(
        c.loc(), c.frame,
        mlir::DenseElementsAttr::get(type, llvm::ArrayRef(steps))));
    mlir::BlockArgument step = body->insertArgument(
        unsigned(carryTypes.size() + xs->size()),
        mlir::RankedTensorType::get(llvm::SmallVector<int64_t>(*axis, 1), i32),
        loc);
    for (DropoutOp d : dropouts)
      d.getStepMutable().assign(step);
  }

  // Weights are read once, before the loop; like every other value the body
  // captures, they become its consts (the gradient accumulates theirs).
  for (mlir::Operation &op : llvm::make_early_inc_range(*body))
    if (llvm::isa<LoadParamOp>(op))
      op.moveBefore(e.builder.getInsertionBlock(),
                    e.builder.getInsertionPoint());
  llvm::SmallVector<mlir::Type> resultTypes(carryTypes);
  resultTypes.push_back(stackedType);
  auto scan = e.create<ScanOp>(
      c.loc(), c.frame, resultTypes, *init, sequences, mlir::ValueRange(),
      e.builder.getI64IntegerAttr(length), e.builder.getI64IntegerAttr(*axis),
      *reverse ? e.builder.getUnitAttr() : mlir::UnitAttr());
  mlir::Region &region = scan.getBody();
  region.push_back(body.release());
  llvm::SetVector<mlir::Value> captured;
  mlir::getUsedValuesDefinedAbove(region, captured);
  for (mlir::Value v : captured) {
    mlir::BlockArgument arg = region.addArgument(v.getType(), v.getLoc());
    mlir::replaceAllUsesInRegionWith(v, arg, region);
  }
  scan.getConstsMutable().assign(captured.getArrayRef());

  if (carried)
    for (auto [i, h] : llvm::enumerate(scan.getFinalCarries()))
      e.carries[firstCarry + i].final = h;
  std::vector<Value> results{Value::tensorOf(scan.getStacked().front())};
  for (mlir::Value h : scan.getFinalCarries())
    results.push_back(Value::tensorOf(h));
  return Value::tuple(std::move(results));
}
