//===- LowerConv.cpp - Convolution and pooling to linalg ------------------===//
//
// conv2d and its gradients as matmuls on im2col columns, pooling and its
// gradients as window generics, and the fused convolution and dense ops of
// kiln-fuse-conv.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"
#include "codegen/Passes.h"

#include "mlir/Transforms/DialectConversion.h"

#include <limits>

using namespace mlir;
using namespace kiln::lowering;

namespace {

//===----------------------------------------------------------------------===//
// Convolution and pooling (NCHW)
//
// Convolutions are matmuls on an im2col matrix, so that they take the
// vectorized matmul path: the forward pass multiplies the filter [O, C*KH*KW]
// by the columns [C*KH*KW, N*OH*OW] (many columns: full vector tiles), the
// filter gradient the output gradient by the transposed columns, and the
// input gradient gathers (col2im) from the filter-transposed product. Every
// window op gathers with tensor.extract and a bounds mask instead of padding
// the input (tensor.pad would bufferize to a strided copy).
//===----------------------------------------------------------------------===//

/// The geometry of a 2-D window op over NCHW.
struct Window {
  int64_t kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;

  bool padded() const { return ph != 0 || pw != 0; }
};

Window convWindow(ArrayRef<int64_t> filterShape, ArrayRef<int64_t> strides,
                  ArrayRef<int64_t> padding, ArrayRef<int64_t> dilation) {
  return {filterShape[2], filterShape[3], strides[0],  strides[1],
          padding[0],     padding[1],     dilation[0], dilation[1]};
}

Window poolWindow(ArrayRef<int64_t> kernel, ArrayRef<int64_t> strides,
                  ArrayRef<int64_t> padding) {
  return {kernel[0], kernel[1], strides[0], strides[1], padding[0], padding[1]};
}

/// Along one axis: the input position that output position `o` reads through
/// tap `k`, and (when it can fall in the padding) whether it is inside [0, n).
std::pair<Value, Value> tapInput(Index &ix, Value o, Value k, int64_t stride,
                                 int64_t dilation, int64_t pad, int64_t n) {
  Value i = ix.sub(ix.add(ix.mul(o, stride), ix.mul(k, dilation)), pad);
  return {i, pad == 0 ? Value() : ix.inRange(i, n)};
}

/// Along one axis, the inverse: the output position whose tap `k` reads input
/// position `i`, and whether there is one in [0, n).
std::pair<Value, Value> tapOutput(Index &ix, Value i, Value k, int64_t stride,
                                  int64_t dilation, int64_t pad, int64_t n) {
  Value t =
      ix.b.create<arith::SubIOp>(ix.loc, ix.addc(i, pad), ix.mul(k, dilation));
  Value valid = ix.cmp(arith::CmpIPredicate::sge, t, ix.cst(0));
  if (stride != 1) {
    Value rem = ix.b.create<arith::RemSIOp>(ix.loc, t, ix.cst(stride));
    valid = ix.both(valid, ix.cmp(arith::CmpIPredicate::eq, rem, ix.cst(0)));
  }
  Value o = ix.div(t, stride);
  valid = ix.both(valid, ix.cmp(arith::CmpIPredicate::slt, o, ix.cst(n)));
  return {o, valid};
}

/// Reads x[indices] where `valid` holds, else `fill`. Only the last two
/// (spatial) indices can be out of bounds; they are clamped to 0 where `valid`
/// fails, so that the load stays in bounds.
Value gather(Index &ix, Value x, ArrayRef<Value> indices, Value valid,
             Value fill) {
  SmallVector<Value> safe(indices);
  for (Value &i : MutableArrayRef<Value>(safe).take_back(2))
    i = ix.select(valid, i, ix.cst(0));
  Value v = ix.b.create<tensor::ExtractOp>(ix.loc, x, safe);
  return ix.select(valid, v, fill);
}

/// The im2col matrix of x [N, C, H, W]: [C*KH*KW, N*OH*OW], so that the
/// innermost loop runs along an output row (and, at stride 1, an input row);
/// taps in the padding read 0.
Value buildColumns(OpBuilder &b, Location loc, Value x, const Window &w,
                   int64_t oh, int64_t ow) {
  ArrayRef<int64_t> xs = tensorType(x).getShape();
  Type element = tensorType(x).getElementType();
  // Loop positions of n, oh, ow, c, kh, kw.
  SmallVector<int64_t> pos = {3, 4, 5, 0, 1, 2};
  SmallVector<int64_t> extents = {xs[0], oh, ow, xs[1], w.kh, w.kw};
  SmallVector<int64_t> shape(6);
  for (int64_t i = 0; i < 6; ++i)
    shape[pos[i]] = extents[i];
  Operand out{emptyLike(b, loc, shape, element), b.getMultiDimIdentityMap(6)};
  SmallVector<utils::IteratorType> parallel(6, utils::IteratorType::parallel);
  Value columns =
      buildGeneric(
          b, loc, {}, out, parallel,
          [&](OpBuilder &nb, Location l, ValueRange) {
            Index ix{nb, l};
            Value n = ix.dim(pos[0]), o1 = ix.dim(pos[1]), o2 = ix.dim(pos[2]),
                  c = ix.dim(pos[3]), k1 = ix.dim(pos[4]), k2 = ix.dim(pos[5]);
            auto [ih, inH] = tapInput(ix, o1, k1, w.sh, w.dh, w.ph, xs[2]);
            auto [iw, inW] = tapInput(ix, o2, k2, w.sw, w.dw, w.pw, xs[3]);
            Scalar s{nb, l};
            return SmallVector<Value>{gather(
                ix, x, {n, c, ih, iw}, ix.both(inH, inW), s.cst(element, 0.0))};
          })
          .front();
  // kiln-share-im2col gives a convolution's forward pass and filter gradient
  // one gather.
  columns.getDefiningOp()->setAttr(kiln::kIm2colAttrName, b.getUnitAttr());
  auto flatType = RankedTensorType::get(
      {shape[0] * shape[1] * shape[2], shape[3] * shape[4] * shape[5]},
      element);
  return b.create<tensor::CollapseShapeOp>(
      loc, flatType, columns,
      SmallVector<ReassociationIndices>{{0, 1, 2}, {3, 4, 5}});
}

Value transposeTensor(OpBuilder &b, Location loc, Value x,
                      ArrayRef<int64_t> perm) {
  RankedTensorType type = tensorType(x);
  SmallVector<int64_t> shape;
  for (int64_t p : perm)
    shape.push_back(type.getDimSize(p));
  Value init = emptyLike(b, loc, shape, type.getElementType());
  return b.create<linalg::TransposeOp>(loc, x, init, perm).getResult()[0];
}

/// [A, B, C, D] -> [A, B*C*D].
Value flattenTrailing(OpBuilder &b, Location loc, Value x) {
  RankedTensorType type = tensorType(x);
  ArrayRef<int64_t> s = type.getShape();
  auto flat =
      RankedTensorType::get({s[0], s[1] * s[2] * s[3]}, type.getElementType());
  return b.create<tensor::CollapseShapeOp>(
      loc, flat, x, SmallVector<ReassociationIndices>{{0}, {1, 2, 3}});
}

/// The output gradient [N, O, OH, OW] as [O, N*OH*OW].
Value gradientRows(OpBuilder &b, Location loc, Value grad) {
  return flattenTrailing(b, loc, transposeTensor(b, loc, grad, {1, 0, 2, 3}));
}

RankedTensorType matrixType(int64_t rows, int64_t cols, Type element) {
  return RankedTensorType::get({rows, cols}, element);
}

/// act(conv2d(x, filter) + bias) in NCHW `type` (bias [O] optional).
/// y[o, (n, oh, ow)] = filter[o, (c, kh, kw)] x columns[(c, kh, kw), ...];
/// the bias and the activation are applied in the pass that transposes the
/// product to NCHW.
Value buildConv2d(OpBuilder &b, Location loc, Value x, Value filter, Value bias,
                  const Window &w, RankedTensorType type,
                  kiln::ActivationKind activation, bool namedMatmul) {
  ArrayRef<int64_t> fs = tensorType(filter).getShape();
  ArrayRef<int64_t> ys = type.getShape();
  Type element = type.getElementType();
  Value columns = buildColumns(b, loc, x, w, ys[2], ys[3]);
  Value product = buildMatmul(b, loc, flattenTrailing(b, loc, filter), columns,
                              matrixType(fs[0], ys[0] * ys[2] * ys[3], element),
                              namedMatmul);
  auto onType = RankedTensorType::get({ys[1], ys[0], ys[2], ys[3]}, element);
  Value on = b.create<tensor::ExpandShapeOp>(
      loc, onType, product, SmallVector<ReassociationIndices>{{0}, {1, 2, 3}});
  MLIRContext *ctx = b.getContext();
  auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
  SmallVector<Operand> ins = {
      {on, AffineMap::get(4, 0, {d(1), d(0), d(2), d(3)}, ctx)}};
  if (bias)
    ins.push_back({bias, AffineMap::get(4, 0, {d(1)}, ctx)});
  Operand out{emptyLike(b, loc, ys, element), b.getMultiDimIdentityMap(4)};
  SmallVector<utils::IteratorType> parallel(4, utils::IteratorType::parallel);
  return buildGeneric(b, loc, ins, out, parallel,
                      [&](OpBuilder &nb, Location l, ValueRange args) {
                        Scalar s{nb, l};
                        Value v = args[0];
                        if (bias)
                          v = s.add(v, args[1]);
                        return SmallVector<Value>{activate(s, activation, v)};
                      })
      .front();
}

struct Conv2dLowering : OpConversionPattern<kiln::Conv2dOp> {
  Conv2dLowering(MLIRContext *ctx, bool namedMatmul)
      : OpConversionPattern(ctx), namedMatmul(namedMatmul) {}

  LogicalResult
  matchAndRewrite(kiln::Conv2dOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value filter = adaptor.getFilter();
    Window w = convWindow(tensorType(filter).getShape(), op.getStrides(),
                          op.getPadding(), op.getDilation());
    rewriter.replaceOp(op,
                       buildConv2d(rewriter, op.getLoc(), adaptor.getInput(),
                                   filter, Value(), w, op.getType(),
                                   kiln::ActivationKind::none, namedMatmul));
    return success();
  }

  bool namedMatmul;
};

struct Conv2dBackwardFilterLowering
    : OpConversionPattern<kiln::Conv2dBackwardFilterOp> {
  Conv2dBackwardFilterLowering(MLIRContext *ctx, bool namedMatmul)
      : OpConversionPattern(ctx), namedMatmul(namedMatmul) {}

  LogicalResult
  matchAndRewrite(kiln::Conv2dBackwardFilterOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput(), grad = adaptor.getGrad();
    RankedTensorType type = op.getType();
    ArrayRef<int64_t> fs = type.getShape(), gs = tensorType(grad).getShape();
    Type element = type.getElementType();
    Window w =
        convWindow(fs, op.getStrides(), op.getPadding(), op.getDilation());
    // dfilter^T[(c, kh, kw), o] = columns[(c, kh, kw), (n, oh, ow)] x
    // grad[(n, oh, ow), o]: the forward pass's column layout, whose gather
    // runs along output rows and vectorizes (the transposed layout would
    // gather along a filter row of kw taps), times the output gradient in
    // NHWC order, whose rows (o) are the product's vector dimension.
    Value columns = buildColumns(rewriter, loc, x, w, gs[2], gs[3]);
    Value gradNHWC = transposeTensor(rewriter, loc, grad, {0, 2, 3, 1});
    Value gradMatrix = rewriter.create<tensor::CollapseShapeOp>(
        loc, matrixType(gs[0] * gs[2] * gs[3], gs[1], element), gradNHWC,
        SmallVector<ReassociationIndices>{{0, 1, 2}, {3}});
    Value productT = buildMatmul(
        rewriter, loc, columns, gradMatrix,
        matrixType(fs[1] * fs[2] * fs[3], fs[0], element), namedMatmul);
    Value product = transposeTensor(rewriter, loc, productT, {1, 0});
    rewriter.replaceOpWithNewOp<tensor::ExpandShapeOp>(
        op, type, product, SmallVector<ReassociationIndices>{{0}, {1, 2, 3}});
    return success();
  }

  bool namedMatmul;
};

/// Window ops are generics over (n, c, p, kh, kw, q): the window loops sit
/// between the result's rows and its columns, so that the innermost loop runs
/// along a row of the result (and, at stride 1, of the input) and vectorizes,
/// while the row it updates once per tap stays in L1.
enum WindowDim : unsigned { kN = 0, kC, kP, kKh, kKw, kQ };

/// The result, indexed by (n, c, p, q).
AffineMap windowResultMap(OpBuilder &b) {
  return AffineMap::get(6, 0,
                        {b.getAffineDimExpr(kN), b.getAffineDimExpr(kC),
                         b.getAffineDimExpr(kP), b.getAffineDimExpr(kQ)},
                        b.getContext());
}

/// An operand of shape [kh, kw] that only gives the window loops their
/// extents (linalg infers loop ranges from operand shapes, as its pooling
/// ops' window operand); its values are never read.
Operand windowOperand(OpBuilder &b, Location loc, const Window &w,
                      Type element) {
  return {emptyLike(b, loc, {w.kh, w.kw}, element),
          AffineMap::get(6, 0,
                         {b.getAffineDimExpr(kKh), b.getAffineDimExpr(kKw)},
                         b.getContext())};
}

SmallVector<utils::IteratorType> windowIterators() {
  SmallVector<utils::IteratorType> iterators(6, utils::IteratorType::parallel);
  iterators[kKh] = iterators[kKw] = utils::IteratorType::reduction;
  return iterators;
}

struct Conv2dBackwardInputLowering
    : OpConversionPattern<kiln::Conv2dBackwardInputOp> {
  Conv2dBackwardInputLowering(MLIRContext *ctx, bool namedMatmul)
      : OpConversionPattern(ctx), namedMatmul(namedMatmul) {}

  LogicalResult
  matchAndRewrite(kiln::Conv2dBackwardInputOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value grad = adaptor.getGrad(), filter = adaptor.getFilter();
    RankedTensorType type = op.getType();
    ArrayRef<int64_t> xs = type.getShape(), gs = tensorType(grad).getShape(),
                      fs = tensorType(filter).getShape();
    Type element = type.getElementType();
    Window w =
        convWindow(fs, op.getStrides(), op.getPadding(), op.getDilation());
    // dcolumns[(c, kh, kw), (n, oh, ow)] = filter^T x grad rows.
    Value filterT = transposeTensor(
        rewriter, loc, flattenTrailing(rewriter, loc, filter), {1, 0});
    Value dcolumns = buildMatmul(
        rewriter, loc, filterT, gradientRows(rewriter, loc, grad),
        matrixType(fs[1] * fs[2] * fs[3], gs[0] * gs[2] * gs[3], element),
        namedMatmul);
    auto sixType = RankedTensorType::get(
        {fs[1], fs[2], fs[3], gs[0], gs[2], gs[3]}, element);
    Value six = rewriter.create<tensor::ExpandShapeOp>(
        loc, sixType, dcolumns,
        SmallVector<ReassociationIndices>{{0, 1, 2}, {3, 4, 5}});

    // col2im as a scatter-add with affine indices into dx, zero-padded when
    // the convolution pads: dx[n, c, oh*sh + kh*dh, ow*sw + kw*dw] +=
    // dcolumns[c, kh, kw, n, oh, ow], in loop order (n, c, oh, kh, kw, ow)
    // so that the innermost loop runs along a row of both (contiguous at
    // stride 1, no bounds masks) and a row of dx stays in L1 while the taps
    // add into it. kh and kw are reductions (several taps add into one
    // element), n, c, oh and ow are not: no two iterations of those write
    // the same element, so they may be split over threads.
    SmallVector<int64_t> paddedShape = {xs[0], xs[1], xs[2] + 2 * w.ph,
                                        xs[3] + 2 * w.pw};
    Operand out{
        filled(rewriter, loc, paddedShape, rewriter.getFloatAttr(element, 0.0)),
        AffineMap()};
    MLIRContext *ctx = rewriter.getContext();
    auto d = [&](unsigned i) { return rewriter.getAffineDimExpr(i); };
    // Loops: n, c, oh, kh, kw, ow.
    out.map = AffineMap::get(
        6, 0,
        {d(0), d(1), d(2) * w.sh + d(3) * w.dh, d(5) * w.sw + d(4) * w.dw},
        ctx);
    Operand in{six,
               AffineMap::get(6, 0, {d(1), d(3), d(4), d(0), d(2), d(5)}, ctx)};
    SmallVector<utils::IteratorType> iterators(6,
                                               utils::IteratorType::parallel);
    iterators[3] = iterators[4] = utils::IteratorType::reduction;
    Value result =
        buildGeneric(rewriter, loc, in, out, iterators,
                     [&](OpBuilder &nb, Location l, ValueRange args) {
                       Scalar s{nb, l};
                       return SmallVector<Value>{s.add(args[1], args[0])};
                     })
            .front();
    if (w.padded()) {
      SmallVector<OpFoldResult> offsets = {
          rewriter.getIndexAttr(0), rewriter.getIndexAttr(0),
          rewriter.getIndexAttr(w.ph), rewriter.getIndexAttr(w.pw)};
      SmallVector<OpFoldResult> sizes, strides(4, rewriter.getIndexAttr(1));
      for (int64_t size : xs)
        sizes.push_back(rewriter.getIndexAttr(size));
      // The interior, copied by a linalg op: a strided buffer reaching a
      // function result would otherwise need MLIR's memrefCopy helper.
      Value interior = rewriter.create<tensor::ExtractSliceOp>(
          loc, type, result, offsets, sizes, strides);
      result = rewriter
                   .create<linalg::CopyOp>(
                       loc, interior, emptyLike(rewriter, loc, xs, element))
                   .getResult(0);
    }
    rewriter.replaceOp(op, result);
    return success();
  }

  bool namedMatmul;
};

/// max_pool2d (padding reads -inf) or avg_pool2d (padding reads 0 and counts
/// in the divisor, as PyTorch's count_include_pad) of x into `type`.
Value buildPool(OpBuilder &b, Location loc, Value x, bool isMax,
                const Window &w, RankedTensorType type) {
  ArrayRef<int64_t> xs = tensorType(x).getShape();
  Type element = type.getElementType();
  // Small strided windows without padding: one parallel generic over the
  // result with an operand per tap (x through an affine map), combined in the
  // body; no fill, no reduction loops, and LLVM vectorizes the strided row
  // reads. (At stride 1 the first tap's map would be a plain dimension, from
  // which linalg would take the loop's extent: the input's, not the result's.)
  if (!w.padded() && w.sh > 1 && w.sw > 1 && w.kh * w.kw <= 9) {
    MLIRContext *ctx = b.getContext();
    auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
    SmallVector<Operand> taps;
    for (int64_t i = 0; i < w.kh; ++i)
      for (int64_t j = 0; j < w.kw; ++j)
        taps.push_back(
            {x, AffineMap::get(4, 0,
                               {d(0), d(1), d(2) * w.sh + i, d(3) * w.sw + j},
                               ctx)});
    Operand out{emptyLike(b, loc, type.getShape(), element),
                b.getMultiDimIdentityMap(4)};
    SmallVector<utils::IteratorType> parallel(4, utils::IteratorType::parallel);
    return buildGeneric(b, loc, taps, out, parallel,
                        [&](OpBuilder &nb, Location l, ValueRange args) {
                          Scalar s{nb, l};
                          Value v = args[0];
                          for (Value tap : args.drop_front().drop_back())
                            v = isMax ? s.max(v, tap) : s.add(v, tap);
                          if (!isMax)
                            v = s.mul(
                                v, s.cst(element, 1.0 / double(w.kh * w.kw)));
                          return SmallVector<Value>{v};
                        })
        .front();
  }
  double init = isMax ? -std::numeric_limits<double>::infinity() : 0.0;
  Operand out{filled(b, loc, type.getShape(), b.getFloatAttr(element, init)),
              windowResultMap(b)};
  Value result =
      buildGeneric(
          b, loc, windowOperand(b, loc, w, element), out, windowIterators(),
          [&](OpBuilder &nb, Location l, ValueRange args) {
            Index ix{nb, l};
            Scalar s{nb, l};
            Value n = ix.dim(kN), c = ix.dim(kC), o1 = ix.dim(kP),
                  o2 = ix.dim(kQ), k1 = ix.dim(kKh), k2 = ix.dim(kKw);
            auto [ih, inH] = tapInput(ix, o1, k1, w.sh, 1, w.ph, xs[2]);
            auto [iw, inW] = tapInput(ix, o2, k2, w.sw, 1, w.pw, xs[3]);
            Value v = gather(ix, x, {n, c, ih, iw}, ix.both(inH, inW),
                             s.cst(element, init));
            return SmallVector<Value>{isMax ? s.max(args.back(), v)
                                            : s.add(args.back(), v)};
          })
          .front();
  if (!isMax)
    result = scaleBy(b, loc, result, 1.0 / double(w.kh * w.kw));
  return result;
}

template <typename OpTy> struct PoolLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  using OpAdaptor = typename OpTy::Adaptor;

  LogicalResult
  matchAndRewrite(OpTy op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Window w = poolWindow(op.getKernel(), op.getStrides(), op.getPadding());
    rewriter.replaceOp(op, buildPool(rewriter, op.getLoc(), adaptor.getInput(),
                                     std::is_same_v<OpTy, kiln::MaxPool2dOp>, w,
                                     op.getType()));
    return success();
  }
};

/// Both pooling gradients gather, for each input element, over the windows
/// that contain it: max routes a window's gradient to every element equal to
/// the window's maximum, avg spreads it evenly.
template <typename OpTy>
struct PoolBackwardLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  using OpAdaptor = typename OpTy::Adaptor;
  static constexpr bool isMax = std::is_same_v<OpTy, kiln::MaxPool2dBackwardOp>;

  /// Windows that tile the input exactly (kernel = stride, no padding, no
  /// rows or columns left over): each input element lies in one window,
  /// (h floordiv s, w floordiv s), so the gradient is an elementwise generic
  /// over the input with floordiv maps, no bounds masks and no reduction;
  /// it vectorizes along rows and fuses with an elementwise consumer (the
  /// relu mask of a fused convolution).
  static Value buildTiledPoolBackward(OpBuilder &b, Location loc,
                                      OpAdaptor adaptor, const Window &w,
                                      RankedTensorType type) {
    MLIRContext *ctx = b.getContext();
    auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
    AffineMap identity = b.getMultiDimIdentityMap(4);
    AffineMap window = AffineMap::get(
        4, 0, {d(0), d(1), d(2).floorDiv(w.sh), d(3).floorDiv(w.sw)}, ctx);
    SmallVector<Operand> ins = {{adaptor.getGrad(), window}};
    if constexpr (isMax) {
      ins.push_back({adaptor.getInput(), identity});
      ins.push_back({adaptor.getOutput(), window});
    }
    Type element = type.getElementType();
    Operand out{emptyLike(b, loc, type.getShape(), element), identity};
    SmallVector<utils::IteratorType> parallel(4, utils::IteratorType::parallel);
    return buildGeneric(b, loc, ins, out, parallel,
                        [&](OpBuilder &nb, Location l, ValueRange args) {
                          Scalar s{nb, l};
                          Value g = args[0];
                          if (isMax) {
                            Value hit = nb.create<arith::CmpFOp>(
                                l, arith::CmpFPredicate::OEQ, args[1], args[2]);
                            g = s.select(hit, g, s.cst(element, 0.0));
                          } else {
                            g = s.mul(
                                g, s.cst(element, 1.0 / double(w.kh * w.kw)));
                          }
                          return SmallVector<Value>{g};
                        })
        .front();
  }

  LogicalResult
  matchAndRewrite(OpTy op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value grad = adaptor.getGrad();
    ArrayRef<int64_t> gs = tensorType(grad).getShape();
    RankedTensorType type = op.getType();
    Type element = type.getElementType();
    Window w = poolWindow(op.getKernel(), op.getStrides(), op.getPadding());
    ArrayRef<int64_t> xs = type.getShape();
    if (w.kh == w.sh && w.kw == w.sw && !w.padded() && xs[2] == gs[2] * w.sh &&
        xs[3] == gs[3] * w.sw) {
      rewriter.replaceOp(
          op, buildTiledPoolBackward(rewriter, loc, adaptor, w, type));
      return success();
    }
    SmallVector<Operand> ins;
    Value maxima;
    if constexpr (isMax) {
      ins.push_back({adaptor.getInput(), windowResultMap(rewriter)});
      maxima = adaptor.getOutput();
    }
    ins.push_back(windowOperand(rewriter, loc, w, element));
    Operand out{filled(rewriter, loc, type.getShape(),
                       rewriter.getFloatAttr(element, 0.0)),
                windowResultMap(rewriter)};
    Value result =
        buildGeneric(
            rewriter, loc, ins, out, windowIterators(),
            [&](OpBuilder &nb, Location l, ValueRange args) {
              Index ix{nb, l};
              Scalar s{nb, l};
              Value n = ix.dim(kN), c = ix.dim(kC), h = ix.dim(kP),
                    wi = ix.dim(kQ), k1 = ix.dim(kKh), k2 = ix.dim(kKw);
              auto [oh, vh] = tapOutput(ix, h, k1, w.sh, 1, w.ph, gs[2]);
              auto [ow, vw] = tapOutput(ix, wi, k2, w.sw, 1, w.pw, gs[3]);
              Value valid = ix.both(vh, vw);
              Value zero = s.cst(element, 0.0);
              Value g = gather(ix, grad, {n, c, oh, ow}, valid, zero);
              if (isMax) {
                Value m = gather(ix, maxima, {n, c, oh, ow}, valid, zero);
                Value hit = nb.create<arith::CmpFOp>(
                    l, arith::CmpFPredicate::OEQ, args[0], m);
                g = s.select(hit, g, zero);
              }
              return SmallVector<Value>{s.add(args.back(), g)};
            })
            .front();
    if (!isMax)
      result = scaleBy(rewriter, loc, result, 1.0 / double(w.kh * w.kw));
    rewriter.replaceOp(op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Fused ops (kiln-fuse-conv)
//===----------------------------------------------------------------------===//

/// act(input @ weight + bias): the matmul, then bias and activation in one
/// elementwise pass.
struct FusedDenseLowering : OpConversionPattern<kiln::FusedDenseOp> {
  FusedDenseLowering(MLIRContext *ctx, bool namedMatmul)
      : OpConversionPattern(ctx), namedMatmul(namedMatmul) {}

  LogicalResult
  matchAndRewrite(kiln::FusedDenseOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    kiln::ActivationKind activation = op.getActivation();
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Value product = buildMatmul(rewriter, loc, adaptor.getInput(),
                                adaptor.getWeight(), type, namedMatmul);
    Value result = buildElementwise(
        rewriter, loc, type, ValueRange{product, adaptor.getBias()},
        [&](OpBuilder &b, Location l, ValueRange args) {
          Scalar s{b, l};
          return activate(s, activation, s.add(args[0], args[1]));
        });
    rewriter.replaceOp(op, result);
    return success();
  }

  bool namedMatmul;
};

/// pool(act(conv2d + bias)), and the activation before pooling when the op
/// returns it.
struct FusedConv2dLowering : OpConversionPattern<kiln::FusedConv2dOp> {
  FusedConv2dLowering(MLIRContext *ctx, bool namedMatmul)
      : OpConversionPattern(ctx), namedMatmul(namedMatmul) {}

  LogicalResult
  matchAndRewrite(kiln::FusedConv2dOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = adaptor.getInput(), filter = adaptor.getFilter();
    ArrayRef<int64_t> xs = tensorType(x).getShape(),
                      fs = tensorType(filter).getShape();
    Window w =
        convWindow(fs, op.getStrides(), op.getPadding(), op.getDilation());
    auto resultType = cast<RankedTensorType>(op.getResult().getType());
    Type element = resultType.getElementType();
    auto convType = RankedTensorType::get(
        {xs[0], fs[0], (xs[2] + 2 * w.ph - w.dh * (w.kh - 1) - 1) / w.sh + 1,
         (xs[3] + 2 * w.pw - w.dw * (w.kw - 1) - 1) / w.sw + 1},
        element);
    Value activated = buildConv2d(rewriter, loc, x, filter, adaptor.getBias(),
                                  w, convType, op.getActivation(), namedMatmul);
    bool isMax = false;
    switch (op.getPool()) {
    case kiln::PoolKind::none:
      rewriter.replaceOp(op, activated);
      return success();
    case kiln::PoolKind::max:
      isMax = true;
      break;
    case kiln::PoolKind::avg:
      break;
    }
    Window pw = poolWindow(op.getPoolKernel(), op.getPoolStrides(),
                           op.getPoolPadding());
    Value pooled = buildPool(rewriter, loc, activated, isMax, pw, resultType);
    SmallVector<Value> results = {pooled};
    if (op.getActivationOut())
      results.push_back(activated);
    rewriter.replaceOp(op, results);
    return success();
  }

  bool namedMatmul;
};

} // namespace

void kiln::lowering::populateConvPatterns(RewritePatternSet &patterns,
                                          bool namedMatmul) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<PoolLowering<kiln::MaxPool2dOp>, PoolLowering<kiln::AvgPool2dOp>,
               PoolBackwardLowering<kiln::MaxPool2dBackwardOp>,
               PoolBackwardLowering<kiln::AvgPool2dBackwardOp>>(ctx);
  patterns.add<Conv2dLowering, Conv2dBackwardFilterLowering,
               Conv2dBackwardInputLowering, FusedDenseLowering,
               FusedConv2dLowering>(ctx, namedMatmul);
}
