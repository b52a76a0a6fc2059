//===- LowerShapes.cpp - Shape ops and constants to linalg ----------------===//
//
// reshape (as views), split (as slices), concat, transpose, broadcast_to,
// one_hot and constants.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace kiln::lowering;

namespace {

/// reshape: collapse to rank 1, expand to the result (views, no copy).
struct ReshapeLowering : OpConversionPattern<kiln::ReshapeOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::ReshapeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput();
    RankedTensorType in = tensorType(x), out = op.getType();
    if (in == out) {
      rewriter.replaceOp(op, x);
      return success();
    }
    auto allDims = [](int64_t rank) {
      ReassociationIndices all;
      for (int64_t i = 0; i < rank; ++i)
        all.push_back(i);
      return SmallVector<ReassociationIndices>{all};
    };
    auto flatType =
        RankedTensorType::get({in.getNumElements()}, in.getElementType());
    Value flat = x;
    if (in.getRank() == 0)
      flat = rewriter.create<tensor::ExpandShapeOp>(
          loc, flatType, x, SmallVector<ReassociationIndices>{});
    else if (in.getRank() > 1)
      flat = rewriter.create<tensor::CollapseShapeOp>(loc, flatType, x,
                                                      allDims(in.getRank()));
    Value result = flat;
    if (out.getRank() == 0)
      result = rewriter.create<tensor::CollapseShapeOp>(
          loc, out, flat, SmallVector<ReassociationIndices>{});
    else if (out.getRank() > 1)
      result = rewriter.create<tensor::ExpandShapeOp>(loc, out, flat,
                                                      allDims(out.getRank()));
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct TransposeLowering : OpConversionPattern<kiln::TransposeOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::TransposeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Value init =
        emptyLike(rewriter, loc, type.getShape(), type.getElementType());
    rewriter.replaceOp(op, rewriter
                               .create<linalg::TransposeOp>(
                                   loc, adaptor.getInput(), init, op.getPerm())
                               .getResult());
    return success();
  }
};

/// split: one extract_slice per piece (a view once bufferized).
struct SplitLowering : OpConversionPattern<kiln::SplitOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::SplitOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    SmallVector<Value> pieces;
    int64_t start = 0;
    ArrayRef<int64_t> shape = tensorType(adaptor.getInput()).getShape();
    for (auto [piece, size] : llvm::zip(op.getResults(), op.getSizes())) {
      AxisSlice s(rewriter, shape, op.getAxis(), rewriter.getIndexAttr(start),
                  size);
      pieces.push_back(rewriter.create<tensor::ExtractSliceOp>(
          op.getLoc(), cast<RankedTensorType>(piece.getType()),
          adaptor.getInput(), s.offsets, s.sizes, s.strides));
      start += size;
    }
    rewriter.replaceOp(op, pieces);
    return success();
  }
};

/// concat: each input inserted at its offset into one new tensor.
struct ConcatLowering : OpConversionPattern<kiln::ConcatOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::ConcatOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Value result =
        emptyLike(rewriter, loc, type.getShape(), type.getElementType());
    int64_t start = 0;
    for (Value input : adaptor.getInputs()) {
      int64_t size = tensorType(input).getDimSize(op.getAxis());
      AxisSlice s(rewriter, type.getShape(), op.getAxis(),
                  rewriter.getIndexAttr(start), size);
      result = rewriter.create<tensor::InsertSliceOp>(
          loc, input, result, s.offsets, s.sizes, s.strides);
      start += size;
    }
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct BroadcastToLowering : OpConversionPattern<kiln::BroadcastToOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::BroadcastToOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value result = buildElementwise(
        rewriter, op.getLoc(), op.getType(), adaptor.getInput(),
        [](OpBuilder &, Location, ValueRange args) { return args[0]; });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct OneHotLowering : OpConversionPattern<kiln::OneHotOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::OneHotOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    MLIRContext *ctx = rewriter.getContext();
    Operand labels{adaptor.getLabels(),
                   AffineMap::get(2, 0, rewriter.getAffineDimExpr(0), ctx)};
    Operand out{emptyLike(rewriter, loc, type.getShape(), element),
                rewriter.getMultiDimIdentityMap(2)};
    SmallVector<utils::IteratorType> parallel(2, utils::IteratorType::parallel);
    Value result =
        buildGeneric(rewriter, loc, labels, out, parallel,
                     [&](OpBuilder &b, Location l, ValueRange args) {
                       Scalar s{b, l};
                       Value cls = b.create<arith::IndexCastOp>(
                           l, args[0].getType(),
                           b.create<linalg::IndexOp>(l, 1));
                       Value eq = b.create<arith::CmpIOp>(
                           l, arith::CmpIPredicate::eq, args[0], cls);
                       return SmallVector<Value>{s.mask(eq, element)};
                     })
            .front();
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct ConstantLowering : OpConversionPattern<kiln::ConstantOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::ConstantOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto value = dyn_cast<TypedAttr>(op.getValue());
    if (!value)
      return rewriter.notifyMatchFailure(op, "value is not a typed attribute");
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, value);
    return success();
  }
};

} // namespace

void kiln::lowering::populateShapePatterns(RewritePatternSet &patterns) {
  patterns
      .add<ReshapeLowering, SplitLowering, ConcatLowering, TransposeLowering,
           BroadcastToLowering, OneHotLowering, ConstantLowering>(
          patterns.getContext());
}
