//===- LowerElementwise.cpp - Elementwise kiln ops to linalg --------------===//
//
// Unary and binary elementwise ops (with NumPy broadcasting) as one
// linalg.generic each, and the scalar code of the fused ops' activations.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Transforms/DialectConversion.h"

#include <cmath>

using namespace mlir;
using namespace kiln::lowering;

namespace {

template <typename OpTy> Value binaryScalar(Scalar &s, Value x, Value y);
template <> Value binaryScalar<kiln::AddOp>(Scalar &s, Value x, Value y) {
  return s.add(x, y);
}
template <> Value binaryScalar<kiln::SubOp>(Scalar &s, Value x, Value y) {
  return s.sub(x, y);
}
template <> Value binaryScalar<kiln::MulOp>(Scalar &s, Value x, Value y) {
  return s.mul(x, y);
}
template <> Value binaryScalar<kiln::DivOp>(Scalar &s, Value x, Value y) {
  return s.div(x, y);
}
template <> Value binaryScalar<kiln::MaximumOp>(Scalar &s, Value x, Value y) {
  return s.max(x, y);
}
template <> Value binaryScalar<kiln::MinimumOp>(Scalar &s, Value x, Value y) {
  return s.min(x, y);
}
template <> Value binaryScalar<kiln::GreaterOp>(Scalar &s, Value x, Value y) {
  return s.mask(s.gt(x, y), x.getType());
}

/// add, sub, mul, div, maximum, minimum, greater: one broadcasting generic.
template <typename OpTy> struct BinaryLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  using OpAdaptor = typename OpTy::Adaptor;

  LogicalResult
  matchAndRewrite(OpTy op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value result =
        buildElementwise(rewriter, op.getLoc(), op.getType(),
                         ValueRange{adaptor.getLhs(), adaptor.getRhs()},
                         [](OpBuilder &b, Location loc, ValueRange args) {
                           Scalar s{b, loc};
                           return binaryScalar<OpTy>(s, args[0], args[1]);
                         });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// The scalar code of unary op OpTy on element `x`; `op` gives its attributes
/// (it is null for the fused ops' activations, which have none).
template <typename OpTy> Value unaryScalar(Scalar &s, OpTy op, Value x);
template <> Value unaryScalar<kiln::NegOp>(Scalar &s, kiln::NegOp, Value x) {
  return s.neg(x);
}
template <> Value unaryScalar<kiln::ReluOp>(Scalar &s, kiln::ReluOp, Value x) {
  return s.max(x, s.cst(x.getType(), 0.0));
}
template <>
Value unaryScalar<kiln::LeakyReluOp>(Scalar &s, kiln::LeakyReluOp op, Value x) {
  Value zero = s.cst(x.getType(), 0.0);
  Value slope = s.cst(x.getType(), op.getSlope().convertToDouble());
  return s.select(s.gt(x, zero), x, s.mul(slope, x));
}
template <>
Value unaryScalar<kiln::SigmoidOp>(Scalar &s, kiln::SigmoidOp, Value x) {
  Value one = s.cst(x.getType(), 1.0);
  return s.div(one, s.add(one, s.exp(s.neg(x))));
}
/// max(x, 0) + log1p(exp(-|x|)): no overflow for large x, no loss of the
/// small values for very negative x.
template <>
Value unaryScalar<kiln::SoftplusOp>(Scalar &s, kiln::SoftplusOp, Value x) {
  Value zero = s.cst(x.getType(), 0.0);
  return s.add(s.max(x, zero), s.log1p(s.exp(s.neg(s.abs(x)))));
}
template <> Value unaryScalar<kiln::TanhOp>(Scalar &s, kiln::TanhOp, Value x) {
  return s.tanh(x);
}
template <> Value unaryScalar<kiln::ExpOp>(Scalar &s, kiln::ExpOp, Value x) {
  return s.exp(x);
}
template <> Value unaryScalar<kiln::LogOp>(Scalar &s, kiln::LogOp, Value x) {
  return s.log(x);
}
template <> Value unaryScalar<kiln::SqrtOp>(Scalar &s, kiln::SqrtOp, Value x) {
  return s.sqrt(x);
}
/// x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, exact as PyTorch's default.
template <> Value unaryScalar<kiln::GeluOp>(Scalar &s, kiln::GeluOp, Value x) {
  Type t = x.getType();
  Value phi = s.mul(s.cst(t, 0.5),
                    s.add(s.cst(t, 1.0), s.erf(s.mul(x, s.cst(t, M_SQRT1_2)))));
  return s.mul(x, phi);
}
/// Phi(x) + x phi(x).
template <>
Value unaryScalar<kiln::GeluDerivativeOp>(Scalar &s, kiln::GeluDerivativeOp,
                                          Value x) {
  Type t = x.getType();
  Value cdf = s.mul(s.cst(t, 0.5),
                    s.add(s.cst(t, 1.0), s.erf(s.mul(x, s.cst(t, M_SQRT1_2)))));
  Value pdf = s.mul(s.cst(t, 0.5 * M_2_SQRTPI * M_SQRT1_2),
                    s.exp(s.mul(s.cst(t, -0.5), s.mul(x, x))));
  return s.add(cdf, s.mul(x, pdf));
}
template <> Value unaryScalar<kiln::AbsOp>(Scalar &s, kiln::AbsOp, Value x) {
  return s.abs(x);
}

/// neg, relu, sigmoid, tanh, exp, log, sqrt, abs.
template <typename OpTy> struct UnaryLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  using OpAdaptor = typename OpTy::Adaptor;

  LogicalResult
  matchAndRewrite(OpTy op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value result = buildElementwise(
        rewriter, op.getLoc(), op.getType(), adaptor.getInput(),
        [op](OpBuilder &b, Location loc, ValueRange args) {
          Scalar s{b, loc};
          return unaryScalar<OpTy>(s, op, args[0]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// cast: sitofp from i32, extf / truncf between floats.
struct CastLowering : OpConversionPattern<kiln::CastOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::CastOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Type to = op.getType().getElementType();
    Value result = buildElementwise(
        rewriter, op.getLoc(), op.getType(), adaptor.getInput(),
        [to](OpBuilder &b, Location loc, ValueRange args) -> Value {
          Type from = args[0].getType();
          if (isa<IntegerType>(from))
            return b.create<arith::SIToFPOp>(loc, to, args[0]);
          if (from.getIntOrFloatBitWidth() < to.getIntOrFloatBitWidth())
            return b.create<arith::ExtFOp>(loc, to, args[0]);
          if (from.getIntOrFloatBitWidth() > to.getIntOrFloatBitWidth())
            return b.create<arith::TruncFOp>(loc, to, args[0]);
          return args[0];
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void kiln::lowering::populateElementwisePatterns(RewritePatternSet &patterns) {
  patterns.add<CastLowering>(patterns.getContext());
  patterns.add<BinaryLowering<kiln::AddOp>, BinaryLowering<kiln::SubOp>,
               BinaryLowering<kiln::MulOp>, BinaryLowering<kiln::DivOp>,
               BinaryLowering<kiln::MaximumOp>, BinaryLowering<kiln::MinimumOp>,
               BinaryLowering<kiln::GreaterOp>, UnaryLowering<kiln::NegOp>,
               UnaryLowering<kiln::ReluOp>, UnaryLowering<kiln::LeakyReluOp>,
               UnaryLowering<kiln::SigmoidOp>, UnaryLowering<kiln::SoftplusOp>,
               UnaryLowering<kiln::TanhOp>, UnaryLowering<kiln::ExpOp>,
               UnaryLowering<kiln::LogOp>, UnaryLowering<kiln::SqrtOp>,
               UnaryLowering<kiln::AbsOp>, UnaryLowering<kiln::GeluOp>,
               UnaryLowering<kiln::GeluDerivativeOp>>(patterns.getContext());
}

Value kiln::lowering::activate(Scalar &s, kiln::ActivationKind activation,
                               Value v) {
  switch (activation) {
  case kiln::ActivationKind::none:
    return v;
  case kiln::ActivationKind::relu:
    return unaryScalar<kiln::ReluOp>(s, {}, v);
  case kiln::ActivationKind::sigmoid:
    return unaryScalar<kiln::SigmoidOp>(s, {}, v);
  case kiln::ActivationKind::tanh:
    return unaryScalar<kiln::TanhOp>(s, {}, v);
  case kiln::ActivationKind::gelu:
    return unaryScalar<kiln::GeluOp>(s, {}, v);
  }
  llvm_unreachable("unknown ActivationKind");
}
