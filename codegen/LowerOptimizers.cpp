//===- LowerOptimizers.cpp - Random numbers and optimizer updates ---------===//
//
// The ops that read the step's hyper vector (runtime/KilnABI.h): dropout and
// the random ops, which hash its step and seed (ir/Random.h), and the SGD,
// momentum and Adam updates, one elementwise generic with a result per
// updated tensor.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Transforms/DialectConversion.h"

#include "runtime/KilnABI.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

using namespace mlir;
using namespace kiln::lowering;

namespace {

//===----------------------------------------------------------------------===//
// Dropout
//===----------------------------------------------------------------------===//

/// The counter of the current element of a generic over `shape`: `base`
/// (buildShardBase) plus its row-major index, as an i32 (ir/Random.h numbers
/// elements modulo 2^32).
Value flatCounter(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                  Value base) {
  Index ix{b, loc};
  Value flat = ix.cst(0);
  int64_t stride = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    flat = ix.add(flat, ix.mul(ix.dim(d), stride));
    stride *= shape[d];
  }
  return b.create<arith::AddIOp>(
      loc, b.create<arith::IndexCastOp>(loc, b.getI32Type(), flat), base);
}

/// Inverted dropout with the counter-based mask of ir/Random.h: element
/// i is dropped when randomBits24(key, i) / 2^24 < rate, which is compared
/// exactly in integers against ceil(rate * 2^24).
struct DropoutLowering : OpConversionPattern<kiln::DropoutOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::DropoutOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value x = adaptor.getInput();
    if (!adaptor.getHyper()) {
      rewriter.replaceOp(op, x);
      return success();
    }
    Location loc = op.getLoc();
    Value key = buildRandomKey(rewriter, loc, adaptor.getHyper(), op.getSalt(),
                               adaptor.getStep());
    double rate = op.getRate().convertToDouble();
    uint32_t threshold = dropThreshold(rate);
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    Value base = buildShardBase(rewriter, loc, adaptor.getHyper(),
                                type.getNumElements());
    Value result = buildElementwise(
        rewriter, loc, type, x, [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          Value u =
              randomBits24(b, l, key, flatCounter(b, l, type.getShape(), base));
          Value drop = b.create<arith::CmpIOp>(l, arith::CmpIPredicate::ult, u,
                                               constU32(b, l, threshold));
          Value kept = s.div(args[0], s.cst(element, 1.0 - rate));
          return s.select(drop, s.cst(element, 0.0), kept);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Random numbers
//===----------------------------------------------------------------------===//

/// kiln.random_uniform and kiln.random_normal: one generic computing
/// ir/Random.h's randomUniform or randomNormal of each element's index. The
/// normal's Box-Muller transform runs in f32 (log and cos become polynomials
/// in kiln-approximate-math) and is widened to f64 results.
template <typename OpTy> struct RandomLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  static constexpr bool kNormal = std::is_same_v<OpTy, kiln::RandomNormalOp>;

  LogicalResult
  matchAndRewrite(OpTy op, typename OpTy::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    if (!adaptor.getHyper())
      return rewriter.notifyMatchFailure(
          op, "a random op outside an entry point has no hyper vector");
    Value key = buildRandomKey(rewriter, loc, adaptor.getHyper(), op.getSalt(),
                               Value());
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    Type f32 = rewriter.getF32Type();
    Value base = buildShardBase(rewriter, loc, adaptor.getHyper(),
                                type.getNumElements());
    Value result = buildElementwise(
        rewriter, loc, type, ValueRange(),
        [&](OpBuilder &b, Location l, ValueRange) -> Value {
          Scalar s{b, l};
          // bits * 2^-24 (exact in f32).
          auto unit = [&](Value bits) {
            return s.mul(b.create<arith::UIToFPOp>(l, f32, bits),
                         s.cst(f32, 1.0 / 16777216.0));
          };
          Value counter = flatCounter(b, l, type.getShape(), base);
          Value v;
          if constexpr (kNormal) {
            Value two = constU32(b, l, 2);
            Value c1 = b.create<arith::MulIOp>(l, counter, two);
            Value c2 = b.create<arith::AddIOp>(l, c1, constU32(b, l, 1));
            Value u1 = unit(b.create<arith::AddIOp>(
                l, randomBits24(b, l, key, c1), constU32(b, l, 1)));
            Value u2 = unit(randomBits24(b, l, key, c2));
            Value radius = s.sqrt(s.mul(s.cst(f32, -2.0), s.log(u1)));
            Value angle = b.create<math::CosOp>(
                l, s.mul(s.cst(f32, 6.283185307179586), u2));
            v = s.mul(radius, angle);
          } else {
            v = unit(randomBits24(b, l, key, counter));
          }
          return element == f32 ? v : b.create<arith::ExtFOp>(l, element, v);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// kiln.warmup: min(1, step / steps) from the hyper vector, else 1.
struct WarmupLowering : OpConversionPattern<kiln::WarmupOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::WarmupOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    Scalar s{rewriter, loc};
    Value v = s.cst(element, 1.0);
    if (Value hyper = adaptor.getHyper()) {
      Value i = rewriter.create<arith::ConstantIndexOp>(loc, KILN_HYPER_STEP);
      Value step = rewriter.create<tensor::ExtractOp>(loc, hyper, i);
      if (step.getType() != element)
        step = rewriter.create<arith::ExtFOp>(loc, element, step);
      v = s.min(v, s.div(step, s.cst(element, double(op.getSteps()))));
    }
    rewriter.replaceOpWithNewOp<tensor::FromElementsOp>(op, type, v);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Optimizer updates
//===----------------------------------------------------------------------===//

/// Reads hyper[index] (f32; `index` is a KILN_HYPER_* of runtime/KilnABI.h)
/// as a scalar of type `element`.
Value readHyper(OpBuilder &b, Location loc, Value hyper, int64_t index,
                Type element) {
  Value i = b.create<arith::ConstantIndexOp>(loc, index);
  Value v = b.create<tensor::ExtractOp>(loc, hyper, i);
  if (v.getType() != element)
    v = b.create<arith::ExtFOp>(loc, element, v);
  return v;
}

/// An elementwise generic over equally shaped `ins` with one result per
/// `numResults`, all of the type of the first input.
SmallVector<Value> buildUpdate(OpBuilder &b, Location loc, ValueRange ins,
                               unsigned numResults, BodyFn body) {
  RankedTensorType type = tensorType(ins.front());
  int64_t rank = type.getRank();
  AffineMap identity = b.getMultiDimIdentityMap(rank);
  SmallVector<Operand> inputs, outputs;
  for (Value v : ins)
    inputs.push_back({v, identity});
  for (unsigned i = 0; i < numResults; ++i)
    outputs.push_back(
        {emptyLike(b, loc, type.getShape(), type.getElementType()), identity});
  SmallVector<utils::IteratorType> parallel(rank,
                                            utils::IteratorType::parallel);
  return buildGeneric(b, loc, inputs, outputs, parallel, body);
}

/// p - lr * (g + wd * p).
struct SgdLowering : OpConversionPattern<kiln::SgdUpdateOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::SgdUpdateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type element = op.getType().getElementType();
    double wd = op.getWeightDecay().convertToDouble();
    Value lr =
        readHyper(rewriter, loc, adaptor.getHyper(), KILN_HYPER_LR, element);
    SmallVector<Value> results = buildUpdate(
        rewriter, loc, ValueRange{adaptor.getParam(), adaptor.getGrad()}, 1,
        [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          Value p = args[0], g = args[1];
          if (wd != 0.0)
            g = s.add(g, s.mul(s.cst(element, wd), p));
          return SmallVector<Value>{s.sub(p, s.mul(lr, g))};
        });
    rewriter.replaceOp(op, results);
    return success();
  }
};

/// PyTorch's SGD with momentum (dampening 0), optionally Nesterov.
struct MomentumLowering : OpConversionPattern<kiln::MomentumUpdateOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::MomentumUpdateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type element = op.getParam().getType().getElementType();
    double wd = op.getWeightDecay().convertToDouble();
    double mu = op.getMomentum().convertToDouble();
    bool nesterov = op.getNesterov();
    Value lr =
        readHyper(rewriter, loc, adaptor.getHyper(), KILN_HYPER_LR, element);
    SmallVector<Value> results =
        buildUpdate(rewriter, loc,
                    ValueRange{adaptor.getParam(), adaptor.getGrad(),
                               adaptor.getVelocity()},
                    2, [&](OpBuilder &b, Location l, ValueRange args) {
                      Scalar s{b, l};
                      Value p = args[0], g = args[1], v = args[2];
                      if (wd != 0.0)
                        g = s.add(g, s.mul(s.cst(element, wd), p));
                      Value momentum = s.cst(element, mu);
                      Value newV = s.add(s.mul(momentum, v), g);
                      Value d =
                          nesterov ? s.add(g, s.mul(momentum, newV)) : newV;
                      return SmallVector<Value>{s.sub(p, s.mul(lr, d)), newV};
                    });
    rewriter.replaceOp(op, results);
    return success();
  }
};

/// PyTorch's Adam and AdamW (bias-corrected, eps outside the square root).
struct AdamLowering : OpConversionPattern<kiln::AdamUpdateOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::AdamUpdateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type element = op.getParam().getType().getElementType();
    double b1 = op.getBeta1().convertToDouble();
    double b2 = op.getBeta2().convertToDouble();
    double eps = op.getEps().convertToDouble();
    double wd = op.getWeightDecay().convertToDouble();
    bool decoupled = op.getDecoupled();

    // Per-step scalars: step size lr / (1 - b1^t) and sqrt(1 - b2^t).
    Scalar s{rewriter, loc};
    Value lr =
        readHyper(rewriter, loc, adaptor.getHyper(), KILN_HYPER_LR, element);
    Value t =
        readHyper(rewriter, loc, adaptor.getHyper(), KILN_HYPER_STEP, element);
    Value one = s.cst(element, 1.0);
    auto correction = [&](double beta) {
      Value pow = rewriter.create<math::PowFOp>(loc, s.cst(element, beta), t);
      return s.sub(one, pow);
    };
    Value stepSize = s.div(lr, correction(b1));
    Value correction2Sqrt = s.sqrt(correction(b2));
    Value decay;
    if (decoupled && wd != 0.0)
      decay = s.sub(one, s.mul(lr, s.cst(element, wd)));

    SmallVector<Value> results = buildUpdate(
        rewriter, loc,
        ValueRange{adaptor.getParam(), adaptor.getGrad(), adaptor.getM(),
                   adaptor.getV()},
        3, [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          Value p = args[0], g = args[1], m = args[2], v = args[3];
          if (decay)
            p = s.mul(p, decay);
          else if (wd != 0.0)
            g = s.add(g, s.mul(s.cst(element, wd), p));
          Value newM = s.add(s.mul(s.cst(element, b1), m),
                             s.mul(s.cst(element, 1.0 - b1), g));
          Value newV = s.add(s.mul(s.cst(element, b2), v),
                             s.mul(s.cst(element, 1.0 - b2), s.mul(g, g)));
          Value denom =
              s.add(s.div(s.sqrt(newV), correction2Sqrt), s.cst(element, eps));
          Value newP = s.sub(p, s.mul(stepSize, s.div(newM, denom)));
          return SmallVector<Value>{newP, newM, newV};
        });
    rewriter.replaceOp(op, results);
    return success();
  }
};

} // namespace

void kiln::lowering::populateOptimizerPatterns(RewritePatternSet &patterns) {
  patterns.add<DropoutLowering, WarmupLowering,
               RandomLowering<kiln::RandomUniformOp>,
               RandomLowering<kiln::RandomNormalOp>, SgdLowering,
               MomentumLowering, AdamLowering>(patterns.getContext());
}
