//===- GradientRules.cpp - Reverse-mode gradient rules of the kiln ops ----===//
//
// One short rule per op: given dL/dresult (`g`), build dL/doperand for each
// operand. Rules may return gradients in the result's broadcast shape; the
// autodiff driver reduces them with reduceToType. Every rule is checked against
// central finite differences (kiln-opt --kiln-check-gradients,
// test/lit/passes/check-gradients.mlir).
//
//===----------------------------------------------------------------------===//

#include "ir/GradientRules.h"
#include "ir/KilnOps.h"
#include "ir/ShapeRules.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/DenseSet.h"

using namespace mlir;
using namespace kiln;

Value kiln::buildScalar(OpBuilder &b, Location loc, double value,
                        Type elementType) {
  auto type = RankedTensorType::get({}, elementType);
  return b.create<ConstantOp>(
      loc, DenseElementsAttr::get(type, b.getFloatAttr(elementType, value)));
}

Value kiln::reduceToType(OpBuilder &b, Location loc, Value grad,
                         RankedTensorType type) {
  auto gradType = cast<RankedTensorType>(grad.getType());
  if (gradType == type)
    return grad;
  ArrayRef<int64_t> from = gradType.getShape(), to = type.getShape();
  int64_t lead = from.size() - to.size();
  SmallVector<int64_t> axes;
  for (int64_t i = 0; i < static_cast<int64_t>(from.size()); ++i)
    if (i < lead || (to[i - lead] == 1 && from[i] != 1))
      axes.push_back(i);
  Value reduced = grad;
  if (!axes.empty())
    reduced = b.create<ReduceSumOp>(loc, grad, axes, /*keepdims=*/false);
  if (reduced.getType() != type)
    reduced = b.create<ReshapeOp>(loc, type, reduced);
  return reduced;
}

static bool isFloatTensor(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  return type && isa<FloatType>(type.getElementType());
}

Value kiln::zerosLike(OpBuilder &b, Location loc, Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  return b.create<ConstantOp>(
      loc,
      DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
}

FailureOr<SmallVector<Value>>
kiln::backpropagate(OpBuilder &b, ArrayRef<Operation *> ops,
                    const llvm::DenseMap<Value, Value> &seeds,
                    ArrayRef<Value> wrt) {
  // Active values depend on something we differentiate with respect to.
  // An op with regions must take everything it reads as operands
  // (IsolatedFromAbove, as kiln.scan): values its regions capture would be
  // invisible to this analysis and get no gradient.
  // Integer values (argmax's indices) carry no derivative: they are never
  // active, so the ops that read them (one_hot, take's ids) need no rule.
  llvm::DenseSet<Value> active(wrt.begin(), wrt.end());
  for (Operation *op : ops) {
    if (op->getNumRegions() && !op->hasTrait<OpTrait::IsIsolatedFromAbove>())
      return op->emitError("cannot differentiate '")
             << op->getName()
             << "': its regions may capture values from above; ops with "
                "regions must be isolated from above";
    if (llvm::any_of(op->getOperands(),
                     [&](Value v) { return active.contains(v); }))
      for (Value r : op->getResults())
        if (isFloatTensor(r))
          active.insert(r);
  }

  llvm::DenseMap<Value, Value> grads = seeds;
  for (Operation *op : llvm::reverse(ops)) {
    if (llvm::none_of(op->getResults(),
                      [&](Value r) { return grads.count(r); }))
      continue;
    if (llvm::none_of(op->getOperands(),
                      [&](Value v) { return active.contains(v); }))
      continue;
    auto rule = dyn_cast<DifferentiableOpInterface>(op);
    if (!rule)
      return op->emitError("cannot differentiate '")
             << op->getName()
             << "': it has no gradient rule, and it lies between a parameter "
                "and the loss";
    // One gradient per result: zeros for a float result that does not reach
    // the loss (one output of a multi-result op may be unused).
    OpBuilder::InsertionGuard guard(b);
    SmallVector<Value> resultGrads;
    for (Value r : op->getResults()) {
      Value g = grads.lookup(r);
      if (!g && isFloatTensor(r))
        g = zerosLike(b, op->getLoc(), r);
      resultGrads.push_back(g);
    }
    SmallVector<Value> operandGrads = rule.buildGradients(b, resultGrads);
    // A rule that cannot differentiate this instance has said why.
    if (operandGrads.empty() && op->getNumOperands())
      return failure();
    if (operandGrads.size() != op->getNumOperands())
      return op->emitError("internal error: the gradient rule of '")
             << op->getName() << "' returned " << operandGrads.size()
             << " gradients for " << op->getNumOperands() << " operands";
    for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads)) {
      if (!grad || !active.contains(operand) || !isFloatTensor(operand))
        continue;
      Value g = reduceToType(b, op->getLoc(), grad,
                             cast<RankedTensorType>(operand.getType()));
      auto [it, inserted] = grads.try_emplace(operand, g);
      if (!inserted)
        it->second = b.create<AddOp>(op->getLoc(), it->second, g);
    }
  }

  SmallVector<Value> result;
  for (Value w : wrt)
    result.push_back(grads.lookup(w));
  return result;
}

namespace {

/// Terse builders so each rule reads like its formula.
struct Rule {
  OpBuilder &b;
  Location loc;

  Value add(Value x, Value y) { return b.create<AddOp>(loc, x, y); }
  Value sub(Value x, Value y) { return b.create<SubOp>(loc, x, y); }
  Value mul(Value x, Value y) { return b.create<MulOp>(loc, x, y); }
  Value div(Value x, Value y) { return b.create<DivOp>(loc, x, y); }
  Value neg(Value x) { return b.create<NegOp>(loc, x); }
  Value greater(Value x, Value y) { return b.create<GreaterOp>(loc, x, y); }
  Value exp(Value x) { return b.create<ExpOp>(loc, x); }
  Value sigmoid(Value x) { return b.create<SigmoidOp>(loc, x); }
  Value scalar(double v, Value like) {
    return buildScalar(b, loc, v, getElementTypeOrSelf(like.getType()));
  }
  Value sumKeep(Value x, int64_t axis) {
    return b.create<ReduceSumOp>(loc, x, ArrayRef<int64_t>{axis},
                                 /*keepdims=*/true);
  }
  /// Swaps the last two dimensions.
  Value transposeLast2(Value x) {
    int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
    SmallVector<int64_t> perm;
    for (int64_t i = 0; i < rank; ++i)
      perm.push_back(i);
    std::swap(perm[rank - 1], perm[rank - 2]);
    return b.create<TransposeOp>(loc, x, perm);
  }
  /// Brings a reduction's gradient back to the input's shape.
  Value unreduce(Value g, ArrayRef<int64_t> axes, RankedTensorType inputType) {
    SmallVector<int64_t> keepShape(inputType.getShape());
    for (int64_t a : axes)
      keepShape[a] = 1;
    auto keepType =
        RankedTensorType::get(keepShape, inputType.getElementType());
    Value kept = g.getType() == keepType
                     ? g
                     : b.create<ReshapeOp>(loc, keepType, g).getResult();
    return b.create<BroadcastToOp>(loc, inputType, kept);
  }
  static int64_t numElements(Value v) {
    return cast<RankedTensorType>(v.getType()).getNumElements();
  }
};

using Grads = SmallVector<Value>;

} // namespace

/// A rule of a single-result op: `g` is the gradient of its result.
#define KILN_RULE(OP)                                                          \
  Grads OP::buildGradients(OpBuilder &builder, ArrayRef<Value> resultGrads) {  \
    assert(resultGrads.size() == 1 && "one result, one gradient");             \
    Value g = resultGrads.front();                                             \
    (void)g;                                                                   \
    Rule r{builder, getLoc()};                                                 \
    (void)r;
#define KILN_END }

// Elementwise binary ops (results broadcast; the driver reduces).
KILN_RULE(AddOp) return {g, g};
KILN_END
KILN_RULE(SubOp) return {g, r.neg(g)};
KILN_END
KILN_RULE(MulOp) return {r.mul(g, getRhs()), r.mul(g, getLhs())};
KILN_END
KILN_RULE(DivOp)
// d(a/b) = g/b, -g*a/b^2
Value gb = r.div(getResult(), getRhs());
return {r.div(g, getRhs()), r.neg(r.mul(g, gb))};
KILN_END
KILN_RULE(MaximumOp)
Value toLhs = r.greater(getLhs(), getRhs()); // ties go to rhs
return {r.mul(g, toLhs), r.mul(g, r.sub(r.scalar(1, g), toLhs))};
KILN_END
KILN_RULE(MinimumOp)
Value toLhs = r.greater(getRhs(), getLhs());
return {r.mul(g, toLhs), r.mul(g, r.sub(r.scalar(1, g), toLhs))};
KILN_END
KILN_RULE(GreaterOp) return {Value(), Value()};
KILN_END

// Elementwise unary ops.
KILN_RULE(NegOp) return {r.neg(g)};
KILN_END
KILN_RULE(ReluOp)
return {r.mul(g, r.greater(getInput(), r.scalar(0, g)))};
KILN_END
KILN_RULE(LeakyReluOp)
// g where x > 0, slope * g elsewhere.
Value positive = r.greater(getInput(), r.scalar(0, g));
Value slope = r.scalar(getSlope().convertToDouble(), g);
return {r.mul(g, r.add(slope, r.mul(r.sub(r.scalar(1, g), slope), positive)))};
KILN_END
KILN_RULE(SigmoidOp)
Value y = getResult();
return {r.mul(g, r.mul(y, r.sub(r.scalar(1, y), y)))};
KILN_END
KILN_RULE(SoftplusOp) return {r.mul(g, r.sigmoid(getInput()))};
KILN_END
KILN_RULE(TanhOp)
Value y = getResult();
return {r.mul(g, r.sub(r.scalar(1, y), r.mul(y, y)))};
KILN_END
KILN_RULE(ExpOp) return {r.mul(g, getResult())};
KILN_END
KILN_RULE(LogOp) return {r.div(g, getInput())};
KILN_END
KILN_RULE(SqrtOp)
return {r.div(g, r.mul(r.scalar(2, g), getResult()))};
KILN_END
KILN_RULE(CastOp)
// Back to the input's type (an i32 input is never active: no gradient).
auto inputType = cast<RankedTensorType>(getInput().getType());
if (!isa<FloatType>(inputType.getElementType()))
  return {Value()};
return {builder.create<CastOp>(getLoc(), inputType, g)};
KILN_END
KILN_RULE(GeluOp)
return {r.mul(g, builder.create<GeluDerivativeOp>(getLoc(), getInput()))};
KILN_END
KILN_RULE(AbsOp)
Value x = getInput(), zero = r.scalar(0, x);
return {r.mul(g, r.sub(r.greater(x, zero), r.greater(zero, x)))};
KILN_END

// Contractions, normalizations, reductions.
KILN_RULE(MatmulOp)
// [.., M, K] x [.., K, N]: dA = g @ B^T, dB = A^T @ g.
Value lhs = getLhs(), rhs = getRhs();
Value dLhs = builder.create<MatmulOp>(getLoc(), g, r.transposeLast2(rhs));
RankedTensorType lhsType = getLhs().getType(), gType = getType();
if (lhsType.getRank() > 2 && getRhs().getType().getRank() == 2) {
  // A weight shared by every row of [.., M, K]: one [K, rows] x [rows, N]
  // product over the flattened rows instead of a batch of products summed.
  auto flat = [&](Value v, RankedTensorType type) -> Value {
    int64_t columns = type.getShape().back();
    auto flatType = RankedTensorType::get(
        {type.getNumElements() / columns, columns}, type.getElementType());
    return builder.create<ReshapeOp>(getLoc(), flatType, v);
  };
  return {dLhs, builder.create<MatmulOp>(getLoc(),
                                         r.transposeLast2(flat(lhs, lhsType)),
                                         flat(g, gType))};
}
return {dLhs, builder.create<MatmulOp>(getLoc(), r.transposeLast2(lhs), g)};
KILN_END
Grads AttentionOp::buildGradients(OpBuilder &builder,
                                  ArrayRef<Value> resultGrads) {
  // One fused op for all three gradients; the log-sum-exp's gradient (zeros
  // unless something else reads it) enters the same formula. The key mask
  // only selects keys: it gets no gradient.
  // The same dropout mask (the same hyper, rate and salt).
  auto backward = builder.create<AttentionBackwardOp>(
      getLoc(), getQuery(), getKey(), getValue(), getOut(), getLse(),
      resultGrads[0], resultGrads[1], getKeyMask(), getHyper(), getScaleAttr(),
      getCausalAttr(), getDropoutAttr(), getSaltAttr());
  Grads grads = {backward.getDquery(), backward.getDkey(),
                 backward.getDvalue()};
  if (getKeyMask())
    grads.push_back(Value());
  if (getHyper())
    grads.push_back(Value());
  return grads;
}
KILN_RULE(LayerNormOp)
return {
    builder.create<LayerNormBackwardOp>(getLoc(), getInput(), g, getEpsAttr())};
KILN_END
KILN_RULE(SoftmaxOp)
// dx = y * (g - sum(g * y))
Value y = getResult();
int64_t axis = getAxis();
return {r.mul(y, r.sub(g, r.sumKeep(r.mul(g, y), axis)))};
KILN_END
KILN_RULE(LogSoftmaxOp)
// dx = g - softmax(x) * sum(g)
int64_t axis = getAxis();
return {r.sub(g, r.mul(r.exp(getResult()), r.sumKeep(g, axis)))};
KILN_END
KILN_RULE(ReduceSumOp)
return {r.unreduce(g, getAxes(), getInput().getType())};
KILN_END
KILN_RULE(ReduceMeanOp)
int64_t count = 1;
for (int64_t a : getAxes())
  count *= getInput().getType().getDimSize(a);
return {
    r.unreduce(r.div(g, r.scalar(count, g)), getAxes(), getInput().getType())};
KILN_END
KILN_RULE(ReduceMaxOp)
// The gradient flows to the maximal elements.
RankedTensorType inputType = getInput().getType();
Value y = r.unreduce(getResult(), getAxes(), inputType);
Value isMax = r.sub(r.scalar(1, y), r.greater(y, getInput()));
return {r.mul(r.unreduce(g, getAxes(), inputType), isMax)};
KILN_END

// Shape manipulation.
KILN_RULE(ReshapeOp)
return {builder.create<ReshapeOp>(getLoc(), getInput().getType(), g)};
KILN_END
KILN_RULE(TransposeOp)
SmallVector<int64_t> inverse(getPerm().size());
for (auto [i, p] : llvm::enumerate(getPerm()))
  inverse[p] = i;
return {builder.create<TransposeOp>(getLoc(), g, inverse)};
KILN_END
KILN_RULE(ConcatOp)
SmallVector<int64_t> sizes;
for (Value input : getInputs())
  sizes.push_back(
      cast<RankedTensorType>(input.getType()).getDimSize(getAxis()));
auto split = builder.create<SplitOp>(getLoc(), g, getAxis(), sizes);
return Grads(split.getResults());
KILN_END
KILN_RULE(BroadcastToOp)
return {reduceToType(builder, getLoc(), g, getInput().getType())};
KILN_END

/// The pieces' gradients side by side (the driver gives zeros for a piece
/// that does not reach the loss).
Grads SplitOp::buildGradients(OpBuilder &builder, ArrayRef<Value> resultGrads) {
  return {builder.create<ConcatOp>(getLoc(), resultGrads, getAxis())};
}

// Convolution, pooling, dropout.
KILN_RULE(Conv2dOp)
Value dx = builder.create<Conv2dBackwardInputOp>(
    getLoc(), getInput().getType(), g, getFilter(), getStridesAttr(),
    getPaddingAttr(), getDilationAttr());
Value dw = builder.create<Conv2dBackwardFilterOp>(
    getLoc(), getFilter().getType(), getInput(), g, getStridesAttr(),
    getPaddingAttr(), getDilationAttr());
return {dx, dw};
KILN_END
KILN_RULE(MaxPool2dOp)
return {builder.create<MaxPool2dBackwardOp>(
    getLoc(), getInput().getType(), getInput(), getResult(), g, getKernelAttr(),
    getStridesAttr(), getPaddingAttr())};
KILN_END
KILN_RULE(AvgPool2dOp)
return {builder.create<AvgPool2dBackwardOp>(getLoc(), getInput().getType(), g,
                                            getKernelAttr(), getStridesAttr(),
                                            getPaddingAttr())};
KILN_END
KILN_RULE(DropoutOp)
// Linear in its input for a fixed mask: the same op (same key) maps g; the
// hyper vector and the step get none.
Grads grads(getNumOperands());
grads[0] = builder.create<DropoutOp>(getLoc(), g.getType(), g, getHyper(),
                                     getStep(), getRateAttr(), getSaltAttr());
return grads;
KILN_END

// Embedding lookups: each is the other's transpose.
KILN_RULE(GatherOp)
return {
    builder.create<ScatterAddOp>(getLoc(), getTable().getType(), getIds(), g),
    Value()};
KILN_END
KILN_RULE(ScatterAddOp)
return {Value(), builder.create<GatherOp>(getLoc(), getUpdates().getType(), g,
                                          getIds())};
KILN_END

// Losses (means over their elements or rows).
KILN_RULE(CrossEntropyOp)
// d/dlogits = (softmax(logits) - one_hot(labels)) * g / N; with an ignored
// label, rows of it get none and N counts the others (at least 1).
RankedTensorType logitsType = getLhs().getType();
Location loc = getLoc();
Value p = builder.create<SoftmaxOp>(loc, getLhs(), 1);
Value y = builder.create<OneHotOp>(loc, logitsType, getRhs());
Value diff = r.sub(p, y);
auto ignore = getIgnoreIndexAttr();
if (!ignore)
  return {r.mul(diff, r.div(g, r.scalar(logitsType.getDimSize(0), g))),
          Value()};
// valid [N, 1]: 1 - one_hot[:, ignore] for an ignored class, else the row
// sum of one_hot (an id outside [0, C) has an all-zero row).
int64_t c = logitsType.getDimSize(1), ignored = ignore.getInt();
Value valid;
if (ignored >= 0 && ignored < c) {
  SmallVector<int64_t> sizes;
  for (int64_t size : {ignored, int64_t(1), c - ignored - 1})
    if (size)
      sizes.push_back(size);
  auto split = builder.create<SplitOp>(loc, y, 1, sizes);
  Value hit = split.getResult(ignored == 0 ? 0 : 1);
  valid = r.sub(r.scalar(1.0, hit), hit);
} else {
  valid = builder.create<ReduceSumOp>(loc, y, ArrayRef<int64_t>{1},
                                      /*keepdims=*/true);
}
Value count = builder.create<ReduceSumOp>(loc, valid, ArrayRef<int64_t>{0, 1},
                                          /*keepdims=*/false);
Value denom = builder.create<MaximumOp>(loc, count, r.scalar(1.0, count));
return {r.mul(r.mul(diff, valid), r.div(g, denom)), Value()};
KILN_END
KILN_RULE(MseOp)
// d/da = 2 (a - b) g / n, d/db = -d/da
Value scale =
    r.div(r.mul(g, r.scalar(2, g)), r.scalar(Rule::numElements(getLhs()), g));
Value da = r.mul(r.sub(getLhs(), getRhs()), scale);
return {da, r.neg(da)};
KILN_END
KILN_RULE(BceWithLogitsOp)
// d/dx = (sigmoid(x) - t) g / n, d/dt = -x g / n
Value scale = r.div(g, r.scalar(Rule::numElements(getLhs()), g));
return {r.mul(r.sub(r.sigmoid(getLhs()), getRhs()), scale),
        r.mul(r.neg(getLhs()), scale)};
KILN_END

#undef KILN_RULE
#undef KILN_END

//===----------------------------------------------------------------------===//
// Recurrence: backpropagation through time as two more scans
//===----------------------------------------------------------------------===//

/// `type` with `length` inserted at `axis`.
static RankedTensorType stackedType(Type type, int64_t axis, int64_t length) {
  auto t = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(t.getShape());
  shape.insert(shape.begin() + axis, length);
  return RankedTensorType::get(shape, t.getElementType());
}

// 1. The same scan again, also stacking each step's input carries c_t and
//    its matmuls' products, built right after the original and taking its
//    place (its leading results are the original's): the forward recurrence
//    runs once.
// 2. A scan running the other way whose body recomputes the step from c_t,
//    x_t and the consts, and runs reverse mode on it seeded with the
//    gradients of the step's new carries (the reverse scan's own carries)
//    and stacked outputs (slices of the results' gradients). It carries the
//    carries' gradients and the consts' accumulated gradients, and stacks
//    the gradients of the sequence slices.
SmallVector<Value> ScanOp::buildGradients(OpBuilder &b,
                                          ArrayRef<Value> resultGrads) {
  Location loc = getLoc();
  int64_t length = getLength(), axis = getAxis();
  size_t numCarries = getCarries().size(), numXs = getXs().size(),
         numConsts = getConsts().size();
  Block &body = getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  for (auto [i, c] : llvm::enumerate(getCarries()))
    if (cast<RankedTensorType>(c.getType()).getRank() < axis) {
      emitOpError("cannot be differentiated: carry #")
          << i << " has rank " << cast<RankedTensorType>(c.getType()).getRank()
          << ", too low to stack its steps along axis " << axis;
      return {};
    }

  // 1. Forward, saving the carries, and the products of the step's matmuls:
  // the backward step reads them instead of computing them again (the rest
  // of the step is recomputed from the carries: cheap elementwise work).
  SmallVector<Value> products;
  for (Operation &op : body.without_terminator())
    if (isa<MatmulOp>(op))
      products.push_back(op.getResult(0));
  SmallVector<Type> savedTypes(getResultTypes());
  for (Value c : getCarries())
    savedTypes.push_back(stackedType(c.getType(), axis, length));
  for (Value p : products)
    savedTypes.push_back(stackedType(p.getType(), axis, length));
  ScanOp saving;
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointAfter(getOperation());
    saving =
        b.create<ScanOp>(loc, savedTypes, getCarries(), getXs(), getConsts(),
                         getLengthAttr(), getAxisAttr(), getReverseAttr());
  }
  {
    IRMapping map;
    getBody().cloneInto(&saving.getBody(), map);
    Block &clone = saving.getBody().front();
    auto cloneYield = cast<YieldOp>(clone.getTerminator());
    SmallVector<Value> values(cloneYield.getValues());
    for (size_t i = 0; i < numCarries; ++i)
      values.push_back(clone.getArgument(i));
    for (Value p : products)
      values.push_back(map.lookup(p));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(cloneYield);
    b.create<YieldOp>(loc, values);
    cloneYield.erase();
  }
  // The forward ops and the gradients built so far read the saving scan; the
  // original is left without uses (dead code, erased by the cleanups).
  for (auto [original, saved] :
       llvm::zip(getResults(), saving.getResults().take_front(getNumResults())))
    original.replaceAllUsesWith(saved);
  ValueRange savedCarries =
      saving.getResults().slice(getNumResults(), numCarries);
  ValueRange savedProducts =
      saving.getResults().drop_front(getNumResults() + numCarries);

  // 2. Backward. Float carries, consts and sequences get gradients.
  auto floatIndices = [](ValueRange values) {
    SmallVector<unsigned> indices;
    for (auto [i, v] : llvm::enumerate(values))
      if (isFloatTensor(v))
        indices.push_back(i);
    return indices;
  };
  SmallVector<unsigned> gradCarries = floatIndices(getCarries()),
                        gradConsts = floatIndices(getConsts()),
                        gradXs = floatIndices(getXs());
  SmallVector<unsigned> gradYs;
  for (unsigned j = 0; j < getStacked().size(); ++j)
    if (resultGrads[numCarries + j])
      gradYs.push_back(j);

  SmallVector<Value> carries, xs, consts(getConsts());
  for (unsigned i : gradCarries)
    carries.push_back(resultGrads[i]);
  for (unsigned k : gradConsts)
    carries.push_back(zerosLike(b, loc, getConsts()[k]));
  llvm::append_range(xs, savedCarries);
  llvm::append_range(xs, getXs());
  for (unsigned j : gradYs)
    xs.push_back(resultGrads[numCarries + j]);
  llvm::append_range(xs, savedProducts);
  SmallVector<Type> types;
  for (Value c : carries)
    types.push_back(c.getType());
  for (unsigned j : gradXs)
    types.push_back(getXs()[j].getType());
  auto backward = b.create<ScanOp>(loc, types, carries, xs, consts,
                                   getLengthAttr(), getAxisAttr(),
                                   getReverse() ? UnitAttr() : b.getUnitAttr());
  Block *step = new Block();
  backward.getBody().push_back(step);
  SmallVector<Value> args;
  for (Value c : carries)
    args.push_back(step->addArgument(c.getType(), loc));
  for (Value x : xs)
    args.push_back(step->addArgument(backward.getSliceType(x.getType()), loc));
  for (Value k : consts)
    args.push_back(step->addArgument(k.getType(), loc));
  ArrayRef<Value> dCarry = ArrayRef(args).take_front(gradCarries.size());
  ArrayRef<Value> dConstAcc =
      ArrayRef(args).slice(gradCarries.size(), gradConsts.size());
  ArrayRef<Value> slices = ArrayRef(args).slice(carries.size(), xs.size());
  ArrayRef<Value> cT = slices.take_front(numCarries);
  ArrayRef<Value> xT = slices.slice(numCarries, numXs);
  ArrayRef<Value> dyT = slices.slice(numCarries + numXs, gradYs.size());
  ArrayRef<Value> productT = slices.take_back(products.size());
  ArrayRef<Value> kArgs = ArrayRef(args).take_back(numConsts);

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(step);
  // The step again, from the saved carries.
  IRMapping map;
  for (size_t i = 0; i < numCarries; ++i)
    map.map(body.getArgument(i), cT[i]);
  for (size_t j = 0; j < numXs; ++j)
    map.map(body.getArgument(numCarries + j), xT[j]);
  for (size_t k = 0; k < numConsts; ++k)
    map.map(body.getArgument(numCarries + numXs + k), kArgs[k]);
  SmallVector<Operation *> ops;
  for (Operation &op : body.without_terminator())
    ops.push_back(b.clone(op, map));
  // Seeds: the gradients of what the step yields (summed where one value is
  // yielded twice, as a carry and as an output).
  llvm::DenseMap<Value, Value> seeds;
  auto seed = [&](Value v, Value g) {
    auto [it, inserted] = seeds.try_emplace(v, g);
    if (!inserted)
      it->second = b.create<AddOp>(loc, it->second, g);
  };
  for (auto [n, i] : llvm::enumerate(gradCarries))
    seed(map.lookup(yield.getValues()[i]), dCarry[n]);
  for (auto [n, j] : llvm::enumerate(gradYs))
    seed(map.lookup(yield.getValues()[numCarries + j]), dyT[n]);
  SmallVector<Value> wrt;
  for (unsigned i : gradCarries)
    wrt.push_back(cT[i]);
  for (unsigned k : gradConsts)
    wrt.push_back(kArgs[k]);
  for (unsigned j : gradXs)
    wrt.push_back(xT[j]);
  FailureOr<SmallVector<Value>> g = backpropagate(b, ops, seeds, wrt);
  if (failed(g))
    return {};
  // The gradient is built: what read a recomputed product (the step's ops
  // and their gradients) reads the saved one; the recomputation dies.
  for (auto [p, saved] : llvm::zip(products, productT))
    map.lookup(p).replaceAllUsesWith(saved);
  SmallVector<Value> yielded;
  size_t at = 0;
  for (unsigned i : gradCarries) {
    Value gi = (*g)[at++];
    yielded.push_back(gi ? gi : zerosLike(b, loc, cT[i]));
  }
  for (auto [n, k] : llvm::enumerate(gradConsts)) {
    Value gk = (*g)[at++];
    yielded.push_back(gk ? b.create<AddOp>(loc, dConstAcc[n], gk).getResult()
                         : dConstAcc[n]);
  }
  for (unsigned j : gradXs) {
    Value gj = (*g)[at++];
    yielded.push_back(gj ? gj : zerosLike(b, loc, xT[j]));
  }
  b.create<YieldOp>(loc, yielded);

  // Operand gradients: carries, xs, consts (null where not float).
  SmallVector<Value> grads(getNumOperands());
  ResultRange results = backward.getResults();
  for (auto [n, i] : llvm::enumerate(gradCarries))
    grads[i] = results[n];
  for (auto [n, k] : llvm::enumerate(gradConsts))
    grads[numCarries + numXs + k] = results[gradCarries.size() + n];
  for (auto [n, j] : llvm::enumerate(gradXs))
    grads[numCarries + j] = results[carries.size() + n];
  return grads;
}
