//===- LowerShapes.cpp - Shape ops and constants to linalg ----------------===//
//
// reshape (as views), split (as slices), concat, transpose, broadcast_to,
// one_hot, gather and scatter_add (embedding lookups) and constants.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
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

/// A [N, C] result computed element by element from a [N] vector (one_hot's
/// labels, gather's ids): `body` gets the row's value (args[0]); the column
/// is linalg.index 1.
Value buildPerRow(OpBuilder &b, Location loc, Value rowValues,
                  RankedTensorType type, BodyFn body) {
  Operand in{rowValues,
             AffineMap::get(2, 0, b.getAffineDimExpr(0), b.getContext())};
  Operand out{emptyLike(b, loc, type.getShape(), type.getElementType()),
              b.getMultiDimIdentityMap(2)};
  SmallVector<utils::IteratorType> parallel(2, utils::IteratorType::parallel);
  return buildGeneric(b, loc, in, out, parallel, body).front();
}

struct OneHotLowering : OpConversionPattern<kiln::OneHotOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::OneHotOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    Value result = buildPerRow(rewriter, op.getLoc(), adaptor.getLabels(), type,
                               [&](OpBuilder &b, Location l, ValueRange args) {
                                 Scalar s{b, l};
                                 Value cls = b.create<arith::IndexCastOp>(
                                     l, args[0].getType(),
                                     b.create<linalg::IndexOp>(l, 1));
                                 Value eq = b.create<arith::CmpIOp>(
                                     l, arith::CmpIPredicate::eq, args[0], cls);
                                 return SmallVector<Value>{s.mask(eq, element)};
                               });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Whether the i32 `id` indexes one of `rows` rows.
Value idInRange(OpBuilder &b, Location loc, Value id, int64_t rows) {
  Type i32 = id.getType();
  Value zero = b.create<arith::ConstantOp>(loc, b.getIntegerAttr(i32, 0));
  Value end = b.create<arith::ConstantOp>(loc, b.getIntegerAttr(i32, rows));
  return b.create<arith::AndIOp>(
      loc, b.create<arith::CmpIOp>(loc, arith::CmpIPredicate::sge, id, zero),
      b.create<arith::CmpIOp>(loc, arith::CmpIPredicate::slt, id, end));
}

/// gather: out[n, d] = table[ids[n], d] (zero for an out-of-range id), one
/// generic over the rows read.
struct GatherLowering : OpConversionPattern<kiln::GatherOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::GatherOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    Value table = adaptor.getTable();
    int64_t rows = tensorType(table).getDimSize(0);
    Value result = buildPerRow(
        rewriter, op.getLoc(), adaptor.getIds(), type,
        [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          Value id = args[0];
          Value valid = idInRange(b, l, id, rows);
          Value safe = b.create<arith::SelectOp>(
              l, valid, id,
              b.create<arith::ConstantOp>(l,
                                          b.getIntegerAttr(id.getType(), 0)));
          Value row = b.create<arith::IndexCastOp>(l, b.getIndexType(), safe);
          Value v = b.create<tensor::ExtractOp>(
              l, table, ValueRange{row, b.create<linalg::IndexOp>(l, 1)});
          return SmallVector<Value>{s.select(valid, v, s.cst(element, 0.0))};
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// scatter_add: a zero table, then for each n with an id in range, row
/// ids[n] += updates[n] (loops over the rows and their elements, updating the
/// table in place).
struct ScatterAddLowering : OpConversionPattern<kiln::ScatterAddOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::ScatterAddOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    Value ids = adaptor.getIds(), updates = adaptor.getUpdates();
    int64_t rows = type.getDimSize(0), width = type.getDimSize(1);
    int64_t count = tensorType(updates).getDimSize(0);
    Value zero = filled(rewriter, loc, type.getShape(),
                        rewriter.getFloatAttr(element, 0.0));
    auto index = [&](OpBuilder &b, int64_t v) -> Value {
      return b.create<arith::ConstantIndexOp>(loc, v);
    };
    auto loop = rewriter.create<scf::ForOp>(
        loc, index(rewriter, 0), index(rewriter, count), index(rewriter, 1),
        ValueRange{zero},
        [&](OpBuilder &b, Location l, Value n, ValueRange acc) {
          Value id = b.create<tensor::ExtractOp>(l, ids, ValueRange{n});
          auto add = b.create<scf::IfOp>(
              l, idInRange(b, l, id, rows),
              [&](OpBuilder &bt, Location lt) {
                Value row =
                    bt.create<arith::IndexCastOp>(lt, bt.getIndexType(), id);
                auto inner = bt.create<scf::ForOp>(
                    lt, index(bt, 0), index(bt, width), index(bt, 1), acc,
                    [&](OpBuilder &bi, Location li, Value d, ValueRange t) {
                      Scalar s{bi, li};
                      Value old = bi.create<tensor::ExtractOp>(
                          li, t[0], ValueRange{row, d});
                      Value u = bi.create<tensor::ExtractOp>(li, updates,
                                                             ValueRange{n, d});
                      Value sum = bi.create<tensor::InsertOp>(
                          li, s.add(old, u), t[0], ValueRange{row, d});
                      bi.create<scf::YieldOp>(li, sum);
                    });
                bt.create<scf::YieldOp>(lt, inner.getResults());
              },
              [&](OpBuilder &be, Location le) {
                be.create<scf::YieldOp>(le, acc);
              });
          b.create<scf::YieldOp>(l, add.getResults());
        });
    rewriter.replaceOp(op, loop.getResults());
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
  patterns.add<ReshapeLowering, SplitLowering, ConcatLowering,
               TransposeLowering, BroadcastToLowering, OneHotLowering,
               GatherLowering, ScatterAddLowering, ConstantLowering>(
      patterns.getContext());
}
