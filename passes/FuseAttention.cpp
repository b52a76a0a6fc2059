//===- FuseAttention.cpp - softmax(q k^T * scale) v -> kiln.attention -----===//
//
// Matches attention written out as ops, from each last-axis softmax:
//
//   s = matmul(q, kt)          kt = transpose(k) of the last two dimensions,
//   s = mul(s, c) | div(s, c)  or any tensor (k is then its transpose);
//   s = add(s, causal mask)    c a positive scalar constant; the mask a
//   p = softmax(s, axis = -1)  constant, 0 on and below the diagonal and
//   o = matmul(p, v)           -inf (or below -1e9) above it
//
// and replaces it with one kiln.attention (q, k, v, scale, causal). It runs
// before kiln-autodiff, so the fused op's gradient rule builds the fused
// backward op. Every intermediate must be read by the next op of the chain
// only: a fused attention never forms the scores or the probabilities.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/KilnOps.h"
#include "ir/ShapeRules.h"

#include "mlir/IR/Matchers.h"

namespace kiln {
#define GEN_PASS_DEF_KILNFUSEATTENTION
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The value of a scalar constant (any shape of one element, or a splat).
std::optional<double> scalarConstant(Value v) {
  DenseElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)) || !attr.isSplat() ||
      !isa<FloatType>(attr.getElementType()))
    return std::nullopt;
  return attr.getSplatValue<APFloat>().convertToDouble();
}

/// Whether `v` is a constant causal mask for scores of `scoreType`: shape
/// [..., Tq, Tk] (leading dimensions 1), 0 where key <= query, at most -1e9
/// (or -inf) where key > query.
bool isCausalMask(Value v, RankedTensorType scoreType) {
  DenseElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)))
    return false;
  auto type = cast<RankedTensorType>(v.getType());
  int64_t rank = type.getRank();
  if (rank < 2)
    return false;
  for (int64_t i = 0; i < rank - 2; ++i)
    if (type.getDimSize(i) != 1)
      return false;
  int64_t tq = type.getDimSize(rank - 2), tk = type.getDimSize(rank - 1);
  ArrayRef<int64_t> scores = scoreType.getShape();
  if (tq != scores[scores.size() - 2] || tk != scores.back())
    return false;
  int64_t i = 0;
  for (APFloat value : attr.getValues<APFloat>()) {
    int64_t query = i / tk, key = i % tk;
    ++i;
    double x = value.convertToDouble();
    if (key <= query ? x != 0 : !(x <= -1e9))
      return false;
  }
  return true;
}

/// True when the last two dimensions of `perm` are swapped and the others
/// stay.
bool swapsLastTwo(ArrayRef<int64_t> perm) {
  int64_t rank = perm.size();
  if (rank < 2)
    return false;
  for (int64_t i = 0; i < rank - 2; ++i)
    if (perm[i] != i)
      return false;
  return perm[rank - 2] == rank - 1 && perm[rank - 1] == rank - 2;
}

struct KilnFuseAttentionPass
    : public kiln::impl::KilnFuseAttentionBase<KilnFuseAttentionPass> {
  using KilnFuseAttentionBase::KilnFuseAttentionBase;

  /// Counted here too: release builds of LLVM compile Pass::Statistic out.
  unsigned fused = 0, causal = 0, refused = 0;

  void runOnOperation() override {
    fused = causal = refused = 0;
    SmallVector<SoftmaxOp> softmaxes;
    getOperation().walk([&](SoftmaxOp op) { softmaxes.push_back(op); });
    for (SoftmaxOp op : softmaxes)
      fuse(op);
    numFused += fused;
    numCausal += causal;
    numRefused += refused;
    if (reportStats)
      emitRemark(getOperation().getLoc())
          << "kiln-fuse-attention: " << fused << " fused-attention (" << causal
          << " causal), " << refused << " refused";
  }

  void missed(Operation *op, const Twine &why) {
    ++refused;
    if (reportMissed)
      op->emitRemark() << "attention not fused: " << why;
  }

  void fuse(SoftmaxOp softmax) {
    RankedTensorType type = softmax.getType();
    if (type.getRank() < 2 ||
        static_cast<int64_t>(softmax.getAxis()) != type.getRank() - 1)
      return missed(softmax, "the softmax is not over the last axis of "
                             "[..., queries, keys] scores");
    // softmax -> matmul with the values, its only reader.
    Value probabilities = softmax.getResult();
    auto output = probabilities.hasOneUse()
                      ? dyn_cast<MatmulOp>(*probabilities.getUsers().begin())
                      : MatmulOp();
    if (!output || output.getLhs() != probabilities)
      return missed(softmax, "the probabilities are not read by exactly one "
                             "matmul with the values (p @ v)");
    // Back from the softmax: an optional causal mask, an optional scale, the
    // scores' matmul; each read by the next op only.
    SmallVector<Operation *> chain = {softmax};
    Value x = softmax.getInput();
    bool isCausal = false;
    double scale = 1.0;
    auto single = [&](Value v) { return v.hasOneUse(); };
    if (auto add = x.getDefiningOp<AddOp>()) {
      Value mask = isCausalMask(add.getRhs(), type)   ? add.getRhs()
                   : isCausalMask(add.getLhs(), type) ? add.getLhs()
                                                      : Value();
      if (!mask)
        return missed(softmax, "the scores get an addition that is not a "
                               "constant causal mask");
      if (!single(x))
        return missed(softmax, "the masked scores are read elsewhere");
      isCausal = true;
      chain.push_back(add);
      x = mask == add.getRhs() ? add.getLhs() : add.getRhs();
    }
    if (auto mul = x.getDefiningOp<MulOp>()) {
      std::optional<double> c = scalarConstant(mul.getRhs());
      Value other = mul.getLhs();
      if (!c) {
        c = scalarConstant(mul.getLhs());
        other = mul.getRhs();
      }
      if (!c || !(*c > 0) || !std::isfinite(*c))
        return missed(softmax, "the scores are multiplied by something other "
                               "than a positive scalar constant");
      if (!single(x))
        return missed(softmax, "the scaled scores are read elsewhere");
      scale = *c;
      chain.push_back(mul);
      x = other;
    } else if (auto div = x.getDefiningOp<DivOp>()) {
      std::optional<double> c = scalarConstant(div.getRhs());
      if (!c || !(*c > 0) || !std::isfinite(*c))
        return missed(softmax, "the scores are divided by something other "
                               "than a positive scalar constant");
      if (!single(x))
        return missed(softmax, "the scaled scores are read elsewhere");
      scale = 1.0 / *c;
      chain.push_back(div);
      x = div.getLhs();
    }
    auto scores = x.getDefiningOp<MatmulOp>();
    if (!scores)
      return missed(softmax, "the scores are not a matmul (q @ k^T)");
    if (!single(x))
      return missed(softmax, "the scores are read elsewhere");
    // The scale must not change the scores' shape (a broadcast constant).
    if (scores.getType() != type)
      return missed(softmax, "the scale or mask broadcasts the scores to "
                             "another shape");
    chain.push_back(scores);

    OpBuilder b(output);
    Value q = scores.getLhs(), kt = scores.getRhs(), v = output.getRhs();
    Value k;
    auto transpose = kt.getDefiningOp<TransposeOp>();
    if (transpose && swapsLastTwo(transpose.getPerm())) {
      k = transpose.getInput();
    } else {
      int64_t rank = cast<RankedTensorType>(kt.getType()).getRank();
      SmallVector<int64_t> perm;
      for (int64_t i = 0; i < rank; ++i)
        perm.push_back(i);
      std::swap(perm[rank - 2], perm[rank - 1]);
      k = b.create<TransposeOp>(scores.getLoc(), kt, perm);
    }
    auto shapeOf = [](Value value) {
      return cast<RankedTensorType>(value.getType()).getShape();
    };
    std::string error;
    if (failed(shape::attention(shapeOf(q), shapeOf(k), shapeOf(v), isCausal,
                                error))) {
      if (k.getDefiningOp() && k.getDefiningOp() != transpose && k.use_empty())
        k.getDefiningOp()->erase();
      return missed(softmax, error);
    }
    auto attention = b.create<AttentionOp>(
        output.getLoc(), q, k, v, /*key_mask=*/Value(), /*hyper=*/Value(),
        b.getF64FloatAttr(scale), isCausal ? b.getUnitAttr() : UnitAttr(),
        b.getF64FloatAttr(0.0), b.getI64IntegerAttr(0));
    output.getResult().replaceAllUsesWith(attention.getOut());
    output.erase();
    for (Operation *op : chain)
      op->erase();
    if (transpose && transpose->use_empty())
      transpose.erase();
    ++fused;
    causal += isCausal;
  }
};

} // namespace
