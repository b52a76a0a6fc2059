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
      ReduceLowering<kiln::ReduceMaxOp>, ArgmaxLowering>(ctx);
  patterns.add<MatmulLowering>(ctx, namedMatmul);
}
