//===- FuseConv.cpp - conv2d / matmul epilogue fusion ---------------------===//
//
// Matches `conv2d -> add(bias) -> activation -> pool` and
// `matmul -> add(bias) -> activation` chains and replaces each with one fused
// op whose lowering applies the epilogue while the result is in registers. The
// pass runs on @train_step, so legality includes the backward pass: an
// intermediate is absorbed only when nothing else reads it.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/KilnOps.h"

#include "mlir/IR/Matchers.h"
#include "llvm/ADT/TypeSwitch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNFUSECONV
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The epilogue activation `op` computes, if it is one.
std::optional<ActivationKind> activationOf(Operation *op) {
  if (!op)
    return std::nullopt;
  return llvm::TypeSwitch<Operation *, std::optional<ActivationKind>>(op)
      .Case([](ReluOp) { return ActivationKind::relu; })
      .Case([](SigmoidOp) { return ActivationKind::sigmoid; })
      .Case([](TanhOp) { return ActivationKind::tanh; })
      .Case([](GeluOp) { return ActivationKind::gelu; })
      .Default([](Operation *) { return std::nullopt; });
}

/// The activation attribute of a fused op whose epilogue ends with `act`.
ActivationKindAttr activationAttr(OpBuilder &b, Operation *act) {
  return ActivationKindAttr::get(b.getContext(), act ? *activationOf(act)
                                                     : ActivationKind::none);
}

Operation *soleUser(Value v) {
  return v.hasOneUse() ? *v.getUsers().begin() : nullptr;
}

bool isZeroSplat(Value v) {
  DenseElementsAttr attr;
  return matchPattern(v, m_Constant(&attr)) && attr.isSplat() &&
         attr.getSplatValue<APFloat>().isZero();
}

/// A per-channel bias: `v` has one non-unit dimension, of size `n`, at `dim`
/// counted from the end (`[O, 1, 1]` or `[1, O, 1, 1]` for conv: dim 3; `[N]`
/// or `[1, N]` for dense: dim 1).
bool isChannelBias(Value v, int64_t n, int64_t dimFromEnd) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getRank() < dimFromEnd)
    return false;
  for (int64_t i = 0; i < type.getRank(); ++i) {
    int64_t fromEnd = type.getRank() - i;
    int64_t expected = fromEnd == dimFromEnd ? n : 1;
    if (type.getDimSize(i) != expected)
      return false;
  }
  return true;
}

struct KilnFuseConvPass
    : public kiln::impl::KilnFuseConvBase<KilnFuseConvPass> {
  using KilnFuseConvBase::KilnFuseConvBase;

  /// The statistics, counted here too: release builds of LLVM compile
  /// Pass::Statistic out.
  struct Counts {
    unsigned conv = 0, convBias = 0, convActivation = 0, convPool = 0,
             dense = 0, maskRewrites = 0, refused = 0;
  } counts;

  void runOnOperation() override {
    counts = {};
    getOperation().walk([&](GreaterOp op) { rewriteReluMask(op); });
    SmallVector<Conv2dOp> convs;
    getOperation().walk([&](Conv2dOp op) { convs.push_back(op); });
    for (Conv2dOp conv : convs)
      fuseConv(conv);
    SmallVector<MatmulOp> matmuls;
    getOperation().walk([&](MatmulOp op) { matmuls.push_back(op); });
    for (MatmulOp matmul : matmuls)
      fuseDense(matmul);
    numConv += counts.conv;
    numConvBias += counts.convBias;
    numConvActivation += counts.convActivation;
    numConvPool += counts.convPool;
    numDense += counts.dense;
    numMaskRewrites += counts.maskRewrites;
    numRefused += counts.refused;
    if (reportStats)
      emitRemark(getOperation().getLoc())
          << "kiln-fuse-conv: " << counts.conv << " fused-conv ("
          << counts.convBias << " with bias, " << counts.convActivation
          << " with activation, " << counts.convPool << " with pool), "
          << counts.dense << " fused-dense, " << counts.maskRewrites
          << " relu-mask-rewrites, " << counts.refused << " refused";
  }

  void missed(Operation *op, const Twine &why) {
    ++counts.refused;
    if (reportMissed)
      op->emitRemark() << "not fused: " << why;
  }

  /// greater(z, 0) where relu(z) exists -> greater(relu(z), 0): same mask, and
  /// z is then read by the relu only.
  void rewriteReluMask(GreaterOp op) {
    if (!isZeroSplat(op.getRhs()))
      return;
    Value z = op.getLhs();
    for (Operation *user : z.getUsers()) {
      auto relu = dyn_cast<ReluOp>(user);
      if (!relu || relu == op.getOperation())
        continue;
      // The relu must dominate the mask: both in one block, relu first.
      if (relu->getBlock() != op->getBlock() || !relu->isBeforeInBlock(op))
        continue;
      op.getLhsMutable().assign(relu.getResult());
      ++counts.maskRewrites;
      return;
    }
  }

  /// Bias: the add's other operand reshaped to [n] (folded when it already is).
  Value biasVector(OpBuilder &b, Location loc, Value bias, int64_t n) {
    auto type = RankedTensorType::get(
        {n}, cast<RankedTensorType>(bias.getType()).getElementType());
    if (bias.getType() == type)
      return bias;
    if (auto reshape = bias.getDefiningOp<ReshapeOp>())
      if (reshape.getInput().getType() == type)
        return reshape.getInput();
    return b.create<ReshapeOp>(loc, type, bias);
  }

  void fuseConv(Conv2dOp conv) {
    int64_t channels = conv.getFilter().getType().getDimSize(0);
    SmallVector<Operation *> chain{conv};
    Value current = conv.getResult();
    Value bias;
    AddOp biasAdd;
    if (auto add = dyn_cast_or_null<AddOp>(soleUser(current))) {
      Value other = add.getLhs() == current ? add.getRhs() : add.getLhs();
      if (add.getType() == conv.getType() &&
          isChannelBias(other, channels, 3)) {
        bias = other;
        biasAdd = add;
        chain.push_back(add);
        current = add.getResult();
      } else {
        missed(add, "the add's other operand is not a per-channel bias of "
                    "shape [" +
                        Twine(channels) + ", 1, 1]");
      }
    } else if (!current.hasOneUse()) {
      missed(conv, "the convolution's result has other users");
    }
    Operation *act = nullptr;
    if (Operation *user = soleUser(current); activationOf(user)) {
      act = user;
      chain.push_back(user);
      current = user->getResult(0);
    } else if (chain.size() > 1 && !current.hasOneUse()) {
      missed(chain.back(), "the biased result has other users (the backward "
                           "pass reads it)");
    }
    // A pool of the result; other readers of the pooled input (the backward
    // pass) get it as a second result.
    Operation *pool = nullptr;
    for (Operation *user : current.getUsers())
      if (isa<MaxPool2dOp, AvgPool2dOp>(user) &&
          user->getOperand(0) == current) {
        if (pool) {
          missed(user, "the activation is pooled twice");
          pool = nullptr;
          break;
        }
        pool = user;
      }
    if (chain.size() == 1 && !pool)
      return; // a bare convolution
    if (pool)
      chain.push_back(pool);
    bool saveActivation = pool && !current.hasOneUse();

    Operation *last = chain.back();
    OpBuilder b(last);
    Location loc = b.getFusedLoc(
        llvm::map_to_vector(chain, [](Operation *op) { return op->getLoc(); }));
    Value biasVec = bias ? biasVector(b, loc, bias, channels) : Value();
    SmallVector<Type> resultTypes{last->getResult(0).getType()};
    if (saveActivation)
      resultTypes.push_back(current.getType());
    auto empty = b.getDenseI64ArrayAttr({});
    auto fused = b.create<FusedConv2dOp>(
        loc, resultTypes, conv.getInput(), conv.getFilter(), biasVec,
        conv.getStridesAttr(), conv.getPaddingAttr(), conv.getDilationAttr(),
        activationAttr(b, act),
        PoolKindAttr::get(b.getContext(), !pool ? PoolKind::none
                                          : isa<MaxPool2dOp>(pool)
                                              ? PoolKind::max
                                              : PoolKind::avg),
        pool ? pool->getAttrOfType<DenseI64ArrayAttr>("kernel") : empty,
        pool ? pool->getAttrOfType<DenseI64ArrayAttr>("strides") : empty,
        pool ? pool->getAttrOfType<DenseI64ArrayAttr>("padding") : empty);
    last->getResult(0).replaceAllUsesWith(fused.getResult());
    if (saveActivation)
      current.replaceAllUsesWith(fused.getActivationOut());
    for (Operation *op : llvm::reverse(chain))
      op->erase();
    ++counts.conv;
    counts.convBias += biasAdd ? 1 : 0;
    counts.convActivation += act ? 1 : 0;
    counts.convPool += pool ? 1 : 0;
  }

  void fuseDense(MatmulOp matmul) {
    if (matmul.getLhs().getType().getRank() != 2 ||
        matmul.getRhs().getType().getRank() != 2)
      return;
    int64_t n = matmul.getType().getDimSize(1);
    auto add = dyn_cast_or_null<AddOp>(soleUser(matmul.getResult()));
    if (!add) {
      if (!matmul.getResult().hasOneUse())
        missed(matmul, "the product has other users");
      return;
    }
    Value other =
        add.getLhs() == matmul.getResult() ? add.getRhs() : add.getLhs();
    if (add.getType() != matmul.getType() || !isChannelBias(other, n, 1)) {
      missed(add, "the add's other operand is not a bias of shape [" +
                      Twine(n) + "]");
      return;
    }
    SmallVector<Operation *> chain{matmul, add};
    Operation *act = soleUser(add.getResult());
    if (!activationOf(act))
      act = nullptr;
    else
      chain.push_back(act);
    Operation *last = chain.back();
    OpBuilder b(last);
    Location loc = b.getFusedLoc(
        llvm::map_to_vector(chain, [](Operation *op) { return op->getLoc(); }));
    auto fused = b.create<FusedDenseOp>(
        loc, last->getResult(0).getType(), matmul.getLhs(), matmul.getRhs(),
        biasVector(b, loc, other, n), activationAttr(b, act));
    last->getResult(0).replaceAllUsesWith(fused.getResult());
    for (Operation *op : llvm::reverse(chain))
      op->erase();
    ++counts.dense;
  }
};

} // namespace
