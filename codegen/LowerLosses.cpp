//===- LowerLosses.cpp - Loss functions to linalg -------------------------===//
//
// cross_entropy, mse and bce_with_logits in their numerically stable forms,
// each reduced to a rank-0 mean.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Transforms/DialectConversion.h"

#include <limits>

using namespace mlir;
using namespace kiln::lowering;

namespace {

/// cross_entropy: mean over rows of logsumexp(row) - row[label].
struct CrossEntropyLowering : OpConversionPattern<kiln::CrossEntropyOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::CrossEntropyOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value logits = adaptor.getLhs(), labels = adaptor.getRhs();
    RankedTensorType type = tensorType(logits);
    Type element = type.getElementType();
    int64_t rows = type.getDimSize(0);
    SmallVector<bool> reduced = {false, true};
    Value max = buildReduction(
        rewriter, loc, logits, reduced,
        -std::numeric_limits<double>::infinity(),
        [](Scalar &s, Value acc, Value v) { return s.max(acc, v); });

    // One pass over each row: sum of exp(x - max) and the label's logit.
    AffineMap identity = rewriter.getMultiDimIdentityMap(2);
    AffineMap rowMap = AffineMap::get(2, 0, rewriter.getAffineDimExpr(0), ctx);
    auto zeros = [&](ArrayRef<int64_t> shape) {
      return filled(rewriter, loc, shape, rewriter.getFloatAttr(element, 0.0));
    };
    SmallVector<Value> rowSums = buildGeneric(
        rewriter, loc, {{logits, identity}, {max, rowMap}, {labels, rowMap}},
        {{zeros({rows}), rowMap}, {zeros({rows}), rowMap}},
        reductionIterators(reduced),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          Value e = s.exp(s.sub(args[0], args[1]));
          Value cls = b.create<arith::IndexCastOp>(
              l, args[2].getType(), b.create<linalg::IndexOp>(l, 1));
          Value hit = b.create<arith::CmpIOp>(l, arith::CmpIPredicate::eq,
                                              args[2], cls);
          Value picked = s.select(hit, args[0], s.cst(element, 0.0));
          return SmallVector<Value>{s.add(args[3], e), s.add(args[4], picked)};
        });

    AffineMap vecMap = rewriter.getMultiDimIdentityMap(1);
    AffineMap scalarMap = AffineMap::get(1, 0, {}, ctx);
    auto ignore = op.getIgnoreIndexAttr();
    if (!ignore) {
      Value total =
          buildGeneric(
              rewriter, loc,
              {{max, vecMap}, {rowSums[0], vecMap}, {rowSums[1], vecMap}},
              Operand{zeros({}), scalarMap}, utils::IteratorType::reduction,
              [](OpBuilder &b, Location l, ValueRange args) {
                Scalar s{b, l};
                Value lse = s.add(args[0], s.log(args[1]));
                return SmallVector<Value>{s.add(args[3], s.sub(lse, args[2]))};
              })
              .front();
      rewriter.replaceOp(
          op, scaleBy(rewriter, loc, total, 1.0 / static_cast<double>(rows)));
      return success();
    }
    // With an ignored label: the sum over the other rows and their count,
    // then their mean (0 without any).
    SmallVector<Value> sums = buildGeneric(
        rewriter, loc,
        {{max, vecMap},
         {rowSums[0], vecMap},
         {rowSums[1], vecMap},
         {labels, vecMap}},
        {{zeros({}), scalarMap}, {zeros({}), scalarMap}},
        utils::IteratorType::reduction,
        [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          Value ignored = b.create<arith::CmpIOp>(
              l, arith::CmpIPredicate::eq, args[3],
              b.create<arith::ConstantOp>(
                  l, b.getIntegerAttr(args[3].getType(), ignore.getInt())));
          Value lse = s.add(args[0], s.log(args[1]));
          Value term =
              s.select(ignored, s.cst(element, 0.0), s.sub(lse, args[2]));
          Value one =
              s.select(ignored, s.cst(element, 0.0), s.cst(element, 1.0));
          return SmallVector<Value>{s.add(args[4], term), s.add(args[5], one)};
        });
    AffineMap none = AffineMap::get(0, 0, {}, ctx);
    Value mean =
        buildGeneric(rewriter, loc, {{sums[0], none}, {sums[1], none}},
                     Operand{zeros({}), none}, {},
                     [&](OpBuilder &b, Location l, ValueRange args) {
                       Scalar s{b, l};
                       Value count = s.max(args[1], s.cst(element, 1.0));
                       return SmallVector<Value>{s.div(args[0], count)};
                     })
            .front();
    rewriter.replaceOp(op, mean);
    return success();
  }
};

struct MseLowering : OpConversionPattern<kiln::MseOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::MseOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value result = buildMeanOf(rewriter, op.getLoc(),
                               ValueRange{adaptor.getLhs(), adaptor.getRhs()},
                               [](Scalar &s, ValueRange args) {
                                 Value d = s.sub(args[0], args[1]);
                                 return s.mul(d, d);
                               });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// bce_with_logits: max(x, 0) - x t + log(1 + exp(-|x|)), never overflows.
struct BceWithLogitsLowering : OpConversionPattern<kiln::BceWithLogitsOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::BceWithLogitsOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value result = buildMeanOf(
        rewriter, op.getLoc(), ValueRange{adaptor.getLhs(), adaptor.getRhs()},
        [](Scalar &s, ValueRange args) {
          Value x = args[0], t = args[1];
          Value relu = s.max(x, s.cst(x.getType(), 0.0));
          Value softplus = s.log1p(s.exp(s.neg(s.abs(x))));
          return s.add(s.sub(relu, s.mul(x, t)), softplus);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void kiln::lowering::populateLossPatterns(RewritePatternSet &patterns) {
  patterns.add<CrossEntropyLowering, MseLowering, BceWithLogitsLowering>(
      patterns.getContext());
}
