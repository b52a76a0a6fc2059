//===- ScanPrecompute.cpp - Step work on the sequence alone leaves the loop
//===//
//
// A recurrent cell's input projection, x_t @ w_ih + b_ih, does not depend on
// the carries: it can be computed for every step at once, before the loop, as
// one matmul of [B*T, I] x [I, G] (what cuDNN and PyTorch's CPU LSTM do). The
// loop then reads the projected sequence instead of x. Running before
// kiln-autodiff, the gradient sees the same split: the weight gradient of the
// projection becomes one matmul over the whole sequence instead of T small
// ones accumulated in the backward loop, and the backward loop no longer
// recomputes the projection.
//
// Hoisted: a matmul whose left operand is step-independent (rank 2 per step,
// the time axis 0 or 1) and whose right operand is a const; elementwise ops
// whose operands are step-independent or consts.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/KilnOps.h"

#include "llvm/ADT/DenseMap.h"

namespace kiln {
#define GEN_PASS_DEF_KILNSCANPRECOMPUTE
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

RankedTensorType withSteps(Type stepType, int64_t axis, int64_t length) {
  auto type = cast<RankedTensorType>(stepType);
  SmallVector<int64_t> shape(type.getShape());
  shape.insert(shape.begin() + axis, length);
  return RankedTensorType::get(shape, type.getElementType());
}

class Precompute {
public:
  Precompute(ScanOp scan) : scan(scan), body(scan.getBody().front()) {}

  /// Hoists what it can; returns the number of ops hoisted.
  unsigned run();

private:
  /// The value outside the loop of a const block argument, or null.
  Value outerConst(Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    unsigned first = scan.getCarries().size() + scan.getXs().size();
    if (!arg || arg.getOwner() != &body || arg.getArgNumber() < first)
      return {};
    return scan.getConsts()[arg.getArgNumber() - first];
  }

  /// The sequence version of `op`, built before the scan; null if `op` is not
  /// one that this pass hoists.
  Value hoist(Operation *op, OpBuilder &b);

  ScanOp scan;
  Block &body;
  /// Step-independent values of the body -> the same values for every step,
  /// stacked along the scan's axis (built before the scan).
  llvm::DenseMap<Value, Value> sequence;
};

Value Precompute::hoist(Operation *op, OpBuilder &b) {
  int64_t axis = scan.getAxis(), length = scan.getLength();
  Location loc = op->getLoc();
  if (auto matmul = dyn_cast<MatmulOp>(op)) {
    Value lhs = sequence.lookup(matmul.getLhs());
    Value rhs = outerConst(matmul.getRhs());
    auto stepType = cast<RankedTensorType>(matmul.getLhs().getType());
    if (!lhs || !rhs || stepType.getRank() != 2 || axis > 1 ||
        cast<RankedTensorType>(rhs.getType()).getRank() != 2)
      return {};
    // [T, M, K] or [M, T, K] -> [T*M, K] or [M*T, K], one matmul, and back.
    auto seqType = cast<RankedTensorType>(lhs.getType());
    int64_t rows = seqType.getDimSize(0) * seqType.getDimSize(1);
    auto flatType = RankedTensorType::get({rows, seqType.getDimSize(2)},
                                          seqType.getElementType());
    Value flat = b.create<ReshapeOp>(loc, flatType, lhs);
    Value product = b.create<MatmulOp>(loc, flat, rhs);
    return b.create<ReshapeOp>(loc, withSteps(matmul.getType(), axis, length),
                               product);
  }
  // Elementwise ops: binary ones broadcast, unary ones keep their type.
  bool binary = isa<AddOp, SubOp, MulOp, DivOp, MaximumOp, MinimumOp>(op);
  bool unary = op->getNumOperands() == 1 && op->getNumResults() == 1 &&
               op->hasTrait<OpTrait::SameOperandsAndResultType>() &&
               isa<DifferentiableOpInterface>(op);
  if (!binary && !unary)
    return {};
  auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
  int64_t rank = resultType.getRank();
  SmallVector<Value> operands;
  for (Value v : op->getOperands()) {
    if (Value s = sequence.lookup(v)) {
      // A step value broadcast against a larger one would need its steps
      // moved; keep to the common case.
      if (cast<RankedTensorType>(v.getType()).getShape() !=
          resultType.getShape())
        return {};
      operands.push_back(s);
      continue;
    }
    Value c = outerConst(v);
    if (!c)
      return {};
    // A const that reaches the time axis (right-aligned) gets a unit
    // dimension there.
    auto type = cast<RankedTensorType>(c.getType());
    int64_t covered = type.getRank() - (rank - axis);
    if (covered >= 0) {
      SmallVector<int64_t> shape(type.getShape());
      shape.insert(shape.begin() + covered, 1);
      c = b.create<ReshapeOp>(
          loc, RankedTensorType::get(shape, type.getElementType()), c);
    }
    operands.push_back(c);
  }
  OperationState state(loc, op->getName());
  state.addOperands(operands);
  state.addTypes(withSteps(resultType, axis, length));
  state.addAttributes(op->getAttrs());
  return b.create(state)->getResult(0);
}

unsigned Precompute::run() {
  unsigned numCarries = scan.getCarries().size();
  for (auto [i, x] : llvm::enumerate(scan.getXs()))
    sequence[body.getArgument(numCarries + i)] = x;

  OpBuilder b(scan);
  SmallVector<Operation *> hoisted;
  for (Operation &op : body.without_terminator()) {
    if (op.getNumResults() != 1 || op.getNumRegions() ||
        llvm::none_of(op.getOperands(),
                      [&](Value v) { return sequence.count(v); }))
      continue;
    if (Value s = hoist(&op, b)) {
      sequence[op.getResult(0)] = s;
      hoisted.push_back(&op);
    }
  }
  if (hoisted.empty())
    return 0;

  // Hoisted values still read in the loop become sequences of the scan (the
  // last ones are what the loop reads; the others die below).
  unsigned insertAt = numCarries + scan.getXs().size();
  SmallVector<Value> xs(scan.getXs());
  for (Operation *op : hoisted) {
    Value step = op->getResult(0);
    bool readInLoop = llvm::any_of(step.getUsers(), [&](Operation *user) {
      return !llvm::is_contained(hoisted, user);
    });
    if (!readInLoop)
      continue;
    BlockArgument arg =
        body.insertArgument(insertAt++, step.getType(), step.getLoc());
    step.replaceUsesWithIf(arg, [&](OpOperand &use) {
      return !llvm::is_contained(hoisted, use.getOwner());
    });
    xs.push_back(sequence.lookup(step));
  }
  for (Operation *op : llvm::reverse(hoisted))
    op->erase();
  // Sequences that only the hoisted ops read are no longer passed in.
  for (int64_t i = numCarries + xs.size() - 1; i >= int64_t(numCarries); --i) {
    if (!body.getArgument(i).use_empty())
      continue;
    body.eraseArgument(i);
    xs.erase(xs.begin() + (i - numCarries));
  }
  scan.getXsMutable().assign(xs);
  return hoisted.size();
}

struct KilnScanPrecomputePass
    : kiln::impl::KilnScanPrecomputeBase<KilnScanPrecomputePass> {
  void runOnOperation() override {
    SmallVector<ScanOp> scans;
    getOperation().walk([&](ScanOp scan) { scans.push_back(scan); });
    for (ScanOp scan : scans)
      numHoisted += Precompute(scan).run();
  }
};

} // namespace
