//===- LowerReductions.cpp - Matmul, softmax, reductions to linalg --------===//
//
// Contractions (kiln.matmul), normalizations (softmax, log_softmax) and
// reductions (reduce_*, argmax) as reduction generics or named matmuls.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Transforms/DialectConversion.h"

#include <limits>

using namespace mlir;
using namespace kiln::lowering;

namespace {

struct MatmulLowering : OpConversionPattern<kiln::MatmulOp> {
  MatmulLowering(MLIRContext *ctx, bool namedMatmul)
      : OpConversionPattern(ctx), namedMatmul(namedMatmul) {}

  LogicalResult
  matchAndRewrite(kiln::MatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    // x^T w (a dense layer's weight gradient) reads x in place:
    // kiln-vectorize-matmul's kernel broadcasts one element of A per row of
    // a tile, and A^T's rows of a tile are consecutive elements of x.
    auto transpose = adaptor.getLhs().getDefiningOp<linalg::TransposeOp>();
    if (namedMatmul && transpose &&
        transpose.getPermutation() == ArrayRef<int64_t>{1, 0} &&
        tensorType(adaptor.getRhs()).getRank() == 2) {
      RankedTensorType type = op.getType();
      Value zero = filled(rewriter, op.getLoc(), type.getShape(),
                          rewriter.getFloatAttr(type.getElementType(), 0.0));
      rewriter.replaceOpWithNewOp<linalg::MatmulTransposeAOp>(
          op, type, ValueRange{transpose.getInput(), adaptor.getRhs()},
          ValueRange{zero});
      return success();
    }
    rewriter.replaceOp(op, buildMatmul(rewriter, op.getLoc(), adaptor.getLhs(),
                                       adaptor.getRhs(), op.getType(),
                                       namedMatmul));
    return success();
  }

  bool namedMatmul;
};

//===----------------------------------------------------------------------===//
// Normalizations and reductions
//===----------------------------------------------------------------------===//

/// softmax and log_softmax: subtract the row maximum, exponentiate, normalize.
template <typename OpTy> struct SoftmaxLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  using OpAdaptor = typename OpTy::Adaptor;
  static constexpr bool isLog = std::is_same_v<OpTy, kiln::LogSoftmaxOp>;

  LogicalResult
  matchAndRewrite(OpTy op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput();
    RankedTensorType type = tensorType(x);
    int64_t rank = type.getRank();
    SmallVector<bool> reduced =
        axesMask(rank, {static_cast<int64_t>(op.getAxis())});
    double negInf = -std::numeric_limits<double>::infinity();
    Value max = buildReduction(
        rewriter, loc, x, reduced, negInf,
        [](Scalar &s, Value acc, Value v) { return s.max(acc, v); });

    AffineMap identity = rewriter.getMultiDimIdentityMap(rank);
    AffineMap rowMap = reducedMap(rewriter, rank, reduced);
    SmallVector<utils::IteratorType> parallel(rank,
                                              utils::IteratorType::parallel);
    // sum[row] = sum(exp(x - max[row])), as one reduction.
    Type element = type.getElementType();
    Operand sumOut{filled(rewriter, loc, keptShape(type.getShape(), reduced),
                          rewriter.getFloatAttr(element, 0.0)),
                   rowMap};
    Value sum =
        buildGeneric(rewriter, loc, {{x, identity}, {max, rowMap}}, sumOut,
                     reductionIterators(reduced),
                     [](OpBuilder &b, Location l, ValueRange args) {
                       Scalar s{b, l};
                       Value e = s.exp(s.sub(args[0], args[1]));
                       return SmallVector<Value>{s.accumulate(args[2], e)};
                     })
            .front();
    Operand out{emptyLike(rewriter, loc, type.getShape(), element), identity};
    Value result =
        buildGeneric(
            rewriter, loc, {{x, identity}, {max, rowMap}, {sum, rowMap}}, out,
            parallel,
            [](OpBuilder &b, Location l, ValueRange args) {
              Scalar s{b, l};
              Value shifted = s.sub(args[0], args[1]);
              if (isLog)
                return SmallVector<Value>{s.sub(shifted, s.log(args[2]))};
              return SmallVector<Value>{s.div(s.exp(shifted), args[2])};
            })
            .front();
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// The mean and 1 / sqrt(biased variance + eps) of each row (the last
/// dimension) of `x`, as two passes: the mean, then the squared deviations
/// from it (no cancellation, unlike sum(x^2) - sum(x)^2).
struct RowStats {
  Value mean, rstd;
  AffineMap identity, rowMap;
  int64_t width;

  RowStats(OpBuilder &b, Location loc, Value x, double eps) {
    RankedTensorType type = tensorType(x);
    int64_t rank = type.getRank();
    width = type.getShape().back();
    SmallVector<bool> reduced = axesMask(rank, {rank - 1});
    identity = b.getMultiDimIdentityMap(rank);
    rowMap = reducedMap(b, rank, reduced);
    Type element = type.getElementType();
    double inverse = 1.0 / static_cast<double>(width);
    mean = scaleBy(b, loc,
                   buildReduction(b, loc, x, reduced, 0.0,
                                  [](Scalar &s, Value acc, Value v) {
                                    return s.accumulate(acc, v);
                                  }),
                   inverse);
    Operand squares{filled(b, loc, keptShape(type.getShape(), reduced),
                           b.getFloatAttr(element, 0.0)),
                    rowMap};
    Value sum = buildGeneric(b, loc, {{x, identity}, {mean, rowMap}}, squares,
                             reductionIterators(reduced),
                             [](OpBuilder &nb, Location l, ValueRange args) {
                               Scalar s{nb, l};
                               Value d = s.sub(args[0], args[1]);
                               return SmallVector<Value>{
                                   s.accumulate(args[2], s.mul(d, d))};
                             })
                    .front();
    rstd = buildElementwise(
        b, loc, tensorType(sum), sum,
        [&](OpBuilder &nb, Location l, ValueRange args) {
          Scalar s{nb, l};
          Value var = s.mul(args[0], s.cst(element, inverse));
          return s.div(s.cst(element, 1.0),
                       s.sqrt(s.add(var, s.cst(element, eps))));
        });
  }
};

/// layer_norm: (x - mean) * rstd per row.
struct LayerNormLowering : OpConversionPattern<kiln::LayerNormOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::LayerNormOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput();
    RankedTensorType type = tensorType(x);
    RowStats stats(rewriter, loc, x, op.getEps().convertToDouble());
    Operand out{
        emptyLike(rewriter, loc, type.getShape(), type.getElementType()),
        stats.identity};
    SmallVector<utils::IteratorType> parallel(type.getRank(),
                                              utils::IteratorType::parallel);
    rewriter.replaceOp(
        op, buildGeneric(rewriter, loc,
                         {{x, stats.identity},
                          {stats.mean, stats.rowMap},
                          {stats.rstd, stats.rowMap}},
                         out, parallel,
                         [](OpBuilder &nb, Location l, ValueRange args) {
                           Scalar s{nb, l};
                           return SmallVector<Value>{
                               s.mul(s.sub(args[0], args[1]), args[2])};
                         }));
    return success();
  }
};

/// layer_norm_backward: rstd * (g - mean(g) - y * mean(g * y)), with the
/// statistics recomputed from x and both sums in one pass.
struct LayerNormBackwardLowering
    : OpConversionPattern<kiln::LayerNormBackwardOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::LayerNormBackwardOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput(), g = adaptor.getGrad();
    RankedTensorType type = tensorType(x);
    Type element = type.getElementType();
    int64_t rank = type.getRank();
    RowStats stats(rewriter, loc, x, op.getEps().convertToDouble());
    SmallVector<bool> reduced = axesMask(rank, {rank - 1});
    auto zeros = [&] {
      return Operand{filled(rewriter, loc, keptShape(type.getShape(), reduced),
                            rewriter.getFloatAttr(element, 0.0)),
                     stats.rowMap};
    };
    SmallVector<Operand> ins = {{x, stats.identity},
                                {g, stats.identity},
                                {stats.mean, stats.rowMap},
                                {stats.rstd, stats.rowMap}};
    SmallVector<Value> sums = buildGeneric(
        rewriter, loc, ins, {zeros(), zeros()}, reductionIterators(reduced),
        [](OpBuilder &nb, Location l, ValueRange args) {
          Scalar s{nb, l};
          Value y = s.mul(s.sub(args[0], args[2]), args[3]);
          return SmallVector<Value>{s.accumulate(args[4], args[1]),
                                    s.accumulate(args[5], s.mul(args[1], y))};
        });
    ins.push_back({sums[0], stats.rowMap});
    ins.push_back({sums[1], stats.rowMap});
    double inverse = 1.0 / static_cast<double>(stats.width);
    Operand out{emptyLike(rewriter, loc, type.getShape(), element),
                stats.identity};
    SmallVector<utils::IteratorType> parallel(rank,
                                              utils::IteratorType::parallel);
    rewriter.replaceOp(
        op, buildGeneric(rewriter, loc, ins, out, parallel,
                         [&](OpBuilder &nb, Location l, ValueRange args) {
                           Scalar s{nb, l};
                           Value n = s.cst(element, inverse);
                           Value y = s.mul(s.sub(args[0], args[2]), args[3]);
                           Value centered =
                               s.sub(s.sub(args[1], s.mul(args[4], n)),
                                     s.mul(y, s.mul(args[5], n)));
                           return SmallVector<Value>{s.mul(args[3], centered)};
                         }));
    return success();
  }
};

/// reduce_sum, reduce_mean, reduce_max.
template <typename OpTy> struct ReduceLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  using OpAdaptor = typename OpTy::Adaptor;

  LogicalResult
  matchAndRewrite(OpTy op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput();
    RankedTensorType type = tensorType(x);
    SmallVector<bool> reduced = axesMask(type.getRank(), op.getAxes());
    Value result;
    if constexpr (std::is_same_v<OpTy, kiln::ReduceMaxOp>) {
      result = buildReduction(
          rewriter, loc, x, reduced, -std::numeric_limits<double>::infinity(),
          [](Scalar &s, Value acc, Value v) { return s.max(acc, v); });
    } else {
      result = buildReduction(
          rewriter, loc, x, reduced, 0.0,
          [](Scalar &s, Value acc, Value v) { return s.accumulate(acc, v); });
      if constexpr (std::is_same_v<OpTy, kiln::ReduceMeanOp>) {
        int64_t count = 1;
        for (auto [size, r] : llvm::zip(type.getShape(), reduced))
          if (r)
            count *= size;
        result =
            scaleBy(rewriter, loc, result, 1.0 / static_cast<double>(count));
      }
    }
    if (op.getKeepdims())
      result = addUnitDims(rewriter, loc, result, op.getType(), reduced);
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// argmax: a reduction carrying (maximum, index); strict `>` keeps the first
/// index on ties.
struct ArgmaxLowering : OpConversionPattern<kiln::ArgmaxOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::ArgmaxOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput();
    RankedTensorType type = tensorType(x);
    int64_t rank = type.getRank();
    int64_t axis = static_cast<int64_t>(op.getAxis());
    SmallVector<bool> reduced = axesMask(rank, {axis});
    SmallVector<int64_t> shape = keptShape(type.getShape(), reduced);
    AffineMap rowMap = reducedMap(rewriter, rank, reduced);
    Type element = type.getElementType();
    Type indexType = op.getType().getElementType();
    Operand maxOut{
        filled(rewriter, loc, shape,
               rewriter.getFloatAttr(element,
                                     -std::numeric_limits<double>::infinity())),
        rowMap};
    Operand indexOut{
        filled(rewriter, loc, shape, rewriter.getIntegerAttr(indexType, 0)),
        rowMap};
    SmallVector<Value> results = buildGeneric(
        rewriter, loc, Operand{x, rewriter.getMultiDimIdentityMap(rank)},
        {maxOut, indexOut}, reductionIterators(reduced),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          Value index = b.create<arith::IndexCastOp>(
              l, indexType, b.create<linalg::IndexOp>(l, axis));
          Value greater = s.gt(args[0], args[1]);
          return SmallVector<Value>{s.select(greater, args[0], args[1]),
                                    s.select(greater, index, args[2])};
        });
    rewriter.replaceOp(op, results[1]);
    return success();
  }
};

} // namespace

void kiln::lowering::populateReductionPatterns(RewritePatternSet &patterns,
                                               bool namedMatmul) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<
      SoftmaxLowering<kiln::SoftmaxOp>, SoftmaxLowering<kiln::LogSoftmaxOp>,
      ReduceLowering<kiln::ReduceSumOp>, ReduceLowering<kiln::ReduceMeanOp>,
      ReduceLowering<kiln::ReduceMaxOp>, ArgmaxLowering, LayerNormLowering,
      LayerNormBackwardLowering>(ctx);
  patterns.add<MatmulLowering>(ctx, namedMatmul);
}
