//===- KilnToLinalg.cpp - Lowers kiln ops to linalg on tensors ------------===//
//
// One conversion pattern per kiln op (or op class). Every pattern builds
// linalg.generic ops (plus a few named ops) whose indexing maps are projected
// permutations: operand dimensions of size 1 that broadcast are collapsed away
// with tensor.collapse_shape instead of being indexed with a constant 0, which
// keeps the generics fusable, tileable and vectorizable. Float arithmetic
// carries the `contract` fast-math flag (FMA formation) and nothing looser.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"
#include "ir/KilnOps.h"
#include "runtime/KilnABI.h"

#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln {
#define GEN_PASS_DEF_KILNTOLINALG
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

//===----------------------------------------------------------------------===//
// Scalar arithmetic inside generic bodies
//===----------------------------------------------------------------------===//

/// Builds scalar float arithmetic with the `contract` fast-math flag.
struct Scalar {
  OpBuilder &b;
  Location loc;

  static constexpr arith::FastMathFlags fm = arith::FastMathFlags::contract;

  Value cst(Type type, double v) {
    return b.create<arith::ConstantOp>(loc, b.getFloatAttr(type, v));
  }
  Value add(Value x, Value y) { return b.create<arith::AddFOp>(loc, x, y, fm); }
  /// acc + v in a sum over a reduction loop: reassociable, so that LLVM
  /// vectorizes the loop with several partial sums (a chain of scalar adds
  /// runs at one add per 3-4 cycles). The order then depends on the vector
  /// width chosen at compile time, never on the thread count.
  Value accumulate(Value acc, Value v) {
    return b.create<arith::AddFOp>(loc, acc, v,
                                   fm | arith::FastMathFlags::reassoc);
  }
  Value sub(Value x, Value y) { return b.create<arith::SubFOp>(loc, x, y, fm); }
  Value mul(Value x, Value y) { return b.create<arith::MulFOp>(loc, x, y, fm); }
  Value div(Value x, Value y) { return b.create<arith::DivFOp>(loc, x, y, fm); }
  Value neg(Value x) { return b.create<arith::NegFOp>(loc, x, fm); }
  Value max(Value x, Value y) {
    return b.create<arith::MaximumFOp>(loc, x, y, fm);
  }
  Value min(Value x, Value y) {
    return b.create<arith::MinimumFOp>(loc, x, y, fm);
  }
  Value exp(Value x) { return b.create<math::ExpOp>(loc, x, fm); }
  Value log(Value x) { return b.create<math::LogOp>(loc, x, fm); }
  Value log1p(Value x) { return b.create<math::Log1pOp>(loc, x, fm); }
  Value sqrt(Value x) { return b.create<math::SqrtOp>(loc, x, fm); }
  Value abs(Value x) { return b.create<math::AbsFOp>(loc, x, fm); }
  Value tanh(Value x) { return b.create<math::TanhOp>(loc, x, fm); }
  Value erf(Value x) { return b.create<math::ErfOp>(loc, x, fm); }
  Value gt(Value x, Value y) {
    return b.create<arith::CmpFOp>(loc, arith::CmpFPredicate::OGT, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return b.create<arith::SelectOp>(loc, c, x, y);
  }
  /// 1.0 where `c` holds, else 0.0, of type `type`.
  Value mask(Value c, Type type) {
    return select(c, cst(type, 1.0), cst(type, 0.0));
  }
};

//===----------------------------------------------------------------------===//
// Building generics
//===----------------------------------------------------------------------===//

/// A generic operand with its indexing map.
struct Operand {
  Value value;
  AffineMap map;
};

using BodyFn =
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange)>;

RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

Value emptyLike(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                Type elementType) {
  return b.create<tensor::EmptyOp>(loc, shape, elementType);
}

/// A tensor of `shape` filled with `value`.
Value filled(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
             TypedAttr value) {
  Value init = emptyLike(b, loc, shape, value.getType());
  Value scalar = b.create<arith::ConstantOp>(loc, value);
  return b.create<linalg::FillOp>(loc, scalar, init).getResult(0);
}

/// Creates a linalg.generic and returns its results.
SmallVector<Value> buildGeneric(OpBuilder &b, Location loc,
                                ArrayRef<Operand> ins, ArrayRef<Operand> outs,
                                ArrayRef<utils::IteratorType> iterators,
                                BodyFn body) {
  SmallVector<Value> inputs, outputs;
  SmallVector<Type> resultTypes;
  SmallVector<AffineMap> maps;
  for (const Operand &in : ins) {
    inputs.push_back(in.value);
    maps.push_back(in.map);
  }
  for (const Operand &out : outs) {
    outputs.push_back(out.value);
    resultTypes.push_back(out.value.getType());
    maps.push_back(out.map);
  }
  auto generic = b.create<linalg::GenericOp>(
      loc, resultTypes, inputs, outputs, maps, iterators,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        nested.create<linalg::YieldOp>(nestedLoc,
                                       body(nested, nestedLoc, args));
      });
  return SmallVector<Value>(generic.getResults());
}

/// The reassociation that collapses the dimensions marked in `dropped` (all of
/// size 1) into their neighbours: each dropped dimension joins the group of the
/// kept dimension before it, or of the first kept one. Empty when none is kept
/// (the collapse to rank 0).
SmallVector<ReassociationIndices> unitDimGroups(ArrayRef<bool> dropped) {
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices leading;
  for (auto [i, drop] : llvm::enumerate(dropped)) {
    if (!drop) {
      ReassociationIndices group = leading;
      leading.clear();
      group.push_back(i);
      groups.push_back(group);
    } else if (groups.empty()) {
      leading.push_back(i);
    } else {
      groups.back().push_back(i);
    }
  }
  return groups;
}

/// Removes the dimensions marked in `dropped` (all of size 1) from `value`.
Value dropUnitDims(OpBuilder &b, Location loc, Value value,
                   ArrayRef<bool> dropped) {
  if (llvm::none_of(dropped, [](bool d) { return d; }))
    return value;
  RankedTensorType type = tensorType(value);
  SmallVector<int64_t> shape;
  for (auto [size, drop] : llvm::zip(type.getShape(), dropped))
    if (!drop)
      shape.push_back(size);
  auto collapsedType = RankedTensorType::get(shape, type.getElementType());
  return b.create<tensor::CollapseShapeOp>(loc, collapsedType, value,
                                           unitDimGroups(dropped));
}

/// Inserts dimensions of size 1 into `value` to give it type `type`; `added`
/// marks them in `type`.
Value addUnitDims(OpBuilder &b, Location loc, Value value,
                  RankedTensorType type, ArrayRef<bool> added) {
  if (tensorType(value) == type)
    return value;
  return b.create<tensor::ExpandShapeOp>(loc, type, value,
                                         unitDimGroups(added));
}

/// Prepares `value` to be read by a generic with loops of extents `loopShape`,
/// operand dimension i being indexed by loop `loopDims[i]`. Dimensions of size
/// 1 whose loop is longer broadcast: they are collapsed away and not indexed.
Operand broadcastOperand(OpBuilder &b, Location loc, Value value,
                         ArrayRef<int64_t> loopDims,
                         ArrayRef<int64_t> loopShape) {
  ArrayRef<int64_t> shape = tensorType(value).getShape();
  SmallVector<bool> dropped;
  SmallVector<AffineExpr> exprs;
  for (auto [size, loop] : llvm::zip(shape, loopDims)) {
    bool drop = size == 1 && loopShape[loop] != 1;
    dropped.push_back(drop);
    if (!drop)
      exprs.push_back(b.getAffineDimExpr(loop));
  }
  return {dropUnitDims(b, loc, value, dropped),
          AffineMap::get(loopShape.size(), 0, exprs, b.getContext())};
}

/// Reads `value` in a generic over `resultShape` with NumPy broadcasting
/// (trailing dimensions aligned).
Operand broadcastTo(OpBuilder &b, Location loc, Value value,
                    ArrayRef<int64_t> resultShape) {
  int64_t rank = tensorType(value).getRank();
  int64_t offset = resultShape.size() - rank;
  SmallVector<int64_t> loopDims;
  for (int64_t i = 0; i < rank; ++i)
    loopDims.push_back(i + offset);
  return broadcastOperand(b, loc, value, loopDims, resultShape);
}

/// An elementwise generic producing a tensor of `resultType` from `operands`
/// (broadcast to its shape); `body` maps the operand scalars to the result.
Value buildElementwise(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    ValueRange operands,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  ArrayRef<int64_t> shape = resultType.getShape();
  SmallVector<Operand> ins;
  for (Value v : operands)
    ins.push_back(broadcastTo(b, loc, v, shape));
  Operand out{emptyLike(b, loc, shape, resultType.getElementType()),
              b.getMultiDimIdentityMap(shape.size())};
  SmallVector<utils::IteratorType> iterators(shape.size(),
                                             utils::IteratorType::parallel);
  return buildGeneric(b, loc, ins, out, iterators,
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        return SmallVector<Value>{
                            body(nb, nl, args.drop_back())};
                      })
      .front();
}

/// Maps of a reduction of a rank-`rank` input over `reduced`: the identity for
/// the input and the kept loops for the result.
AffineMap reducedMap(OpBuilder &b, int64_t rank, ArrayRef<bool> reduced) {
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < rank; ++i)
    if (!reduced[i])
      exprs.push_back(b.getAffineDimExpr(i));
  return AffineMap::get(rank, 0, exprs, b.getContext());
}

SmallVector<int64_t> keptShape(ArrayRef<int64_t> shape,
                               ArrayRef<bool> reduced) {
  SmallVector<int64_t> kept;
  for (auto [size, r] : llvm::zip(shape, reduced))
    if (!r)
      kept.push_back(size);
  return kept;
}

SmallVector<bool> axesMask(int64_t rank, ArrayRef<int64_t> axes) {
  SmallVector<bool> mask(rank, false);
  for (int64_t a : axes)
    mask[a] = true;
  return mask;
}

SmallVector<utils::IteratorType> reductionIterators(ArrayRef<bool> reduced) {
  return llvm::map_to_vector(reduced, [](bool r) {
    return r ? utils::IteratorType::reduction : utils::IteratorType::parallel;
  });
}

/// Reduces `input` over the dimensions marked in `reduced` with
/// `combine(accumulator, element)` starting from `init`; the reduced
/// dimensions are dropped.
Value buildReduction(OpBuilder &b, Location loc, Value input,
                     ArrayRef<bool> reduced, double init,
                     function_ref<Value(Scalar &, Value, Value)> combine) {
  RankedTensorType type = tensorType(input);
  int64_t rank = type.getRank();
  Type element = type.getElementType();
  Operand in{input, b.getMultiDimIdentityMap(rank)};
  Operand out{filled(b, loc, keptShape(type.getShape(), reduced),
                     b.getFloatAttr(element, init)),
              reducedMap(b, rank, reduced)};
  return buildGeneric(b, loc, in, out, reductionIterators(reduced),
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Scalar s{nb, nl};
                        return SmallVector<Value>{combine(s, args[1], args[0])};
                      })
      .front();
}

/// `value` (any shape) times the constant `factor`.
Value scaleBy(OpBuilder &b, Location loc, Value value, double factor) {
  RankedTensorType type = tensorType(value);
  return buildElementwise(
      b, loc, type, value, [&](OpBuilder &nb, Location nl, ValueRange args) {
        Scalar s{nb, nl};
        return s.mul(args[0], s.cst(type.getElementType(), factor));
      });
}

/// Sums `f(elements...)` over every element of equally shaped `inputs` into a
/// rank-0 tensor and divides by the element count: the mean losses.
Value buildMeanOf(OpBuilder &b, Location loc, ValueRange inputs,
                  function_ref<Value(Scalar &, ValueRange)> f) {
  RankedTensorType type = tensorType(inputs.front());
  int64_t rank = type.getRank();
  Type element = type.getElementType();
  SmallVector<Operand> ins;
  for (Value v : inputs)
    ins.push_back({v, b.getMultiDimIdentityMap(rank)});
  Operand out{filled(b, loc, {}, b.getFloatAttr(element, 0.0)),
              AffineMap::get(rank, 0, {}, b.getContext())};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::reduction);
  Value sum =
      buildGeneric(b, loc, ins, out, iterators,
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     Scalar s{nb, nl};
                     Value term = f(s, args.drop_back());
                     return SmallVector<Value>{s.accumulate(args.back(), term)};
                   })
          .front();
  return scaleBy(b, loc, sum, 1.0 / static_cast<double>(type.getNumElements()));
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

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

template <typename OpTy> Value unaryScalar(Scalar &s, Value x);
template <> Value unaryScalar<kiln::NegOp>(Scalar &s, Value x) {
  return s.neg(x);
}
template <> Value unaryScalar<kiln::ReluOp>(Scalar &s, Value x) {
  return s.max(x, s.cst(x.getType(), 0.0));
}
template <> Value unaryScalar<kiln::SigmoidOp>(Scalar &s, Value x) {
  Value one = s.cst(x.getType(), 1.0);
  return s.div(one, s.add(one, s.exp(s.neg(x))));
}
template <> Value unaryScalar<kiln::TanhOp>(Scalar &s, Value x) {
  return s.tanh(x);
}
template <> Value unaryScalar<kiln::ExpOp>(Scalar &s, Value x) {
  return s.exp(x);
}
template <> Value unaryScalar<kiln::LogOp>(Scalar &s, Value x) {
  return s.log(x);
}
template <> Value unaryScalar<kiln::SqrtOp>(Scalar &s, Value x) {
  return s.sqrt(x);
}
/// x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, exact as PyTorch's default.
template <> Value unaryScalar<kiln::GeluOp>(Scalar &s, Value x) {
  Type t = x.getType();
  Value phi = s.mul(s.cst(t, 0.5),
                    s.add(s.cst(t, 1.0), s.erf(s.mul(x, s.cst(t, M_SQRT1_2)))));
  return s.mul(x, phi);
}
/// Phi(x) + x phi(x).
template <> Value unaryScalar<kiln::GeluDerivativeOp>(Scalar &s, Value x) {
  Type t = x.getType();
  Value cdf = s.mul(s.cst(t, 0.5),
                    s.add(s.cst(t, 1.0), s.erf(s.mul(x, s.cst(t, M_SQRT1_2)))));
  Value pdf = s.mul(s.cst(t, 0.5 * M_2_SQRTPI * M_SQRT1_2),
                    s.exp(s.mul(s.cst(t, -0.5), s.mul(x, x))));
  return s.add(cdf, s.mul(x, pdf));
}
template <> Value unaryScalar<kiln::AbsOp>(Scalar &s, Value x) {
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
        [](OpBuilder &b, Location loc, ValueRange args) {
          Scalar s{b, loc};
          return unaryScalar<OpTy>(s, args[0]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Contractions
//===----------------------------------------------------------------------===//

/// lhs [..., M, K] x rhs [..., K, N] with broadcast batch dimensions. Rank 2
/// with `named`: a zero-filled linalg.matmul (kiln-vectorize-matmul's input).
/// Otherwise a generic over (batch..., m, k, n): with n innermost, the loop
/// nest that convert-linalg-to-loops emits updates a row of C with a row of B,
/// which LLVM vectorizes; the (m, n, k) order would be a scalar dot product.
Value buildMatmul(OpBuilder &b, Location loc, Value lhs, Value rhs,
                  RankedTensorType resultType, bool named) {
  Type element = resultType.getElementType();
  Value zero =
      filled(b, loc, resultType.getShape(), b.getFloatAttr(element, 0.0));
  int64_t lhsRank = tensorType(lhs).getRank();
  int64_t rhsRank = tensorType(rhs).getRank();
  if (named && lhsRank == 2 && rhsRank == 2)
    return b
        .create<linalg::MatmulOp>(loc, resultType, ValueRange{lhs, rhs},
                                  ValueRange{zero})
        .getResult(0);

  ArrayRef<int64_t> shape = resultType.getShape();
  int64_t numBatch = resultType.getRank() - 2;
  int64_t m = numBatch, k = numBatch + 1, n = numBatch + 2;
  SmallVector<int64_t> loopShape(shape.take_front(numBatch));
  loopShape.append({shape[numBatch], tensorType(lhs).getShape().back(),
                    shape[numBatch + 1]});
  auto operandLoops = [&](int64_t rank, int64_t row, int64_t col) {
    SmallVector<int64_t> loops;
    for (int64_t i = 0; i < rank - 2; ++i)
      loops.push_back(numBatch - (rank - 2) + i);
    loops.append({row, col});
    return loops;
  };
  Operand a =
      broadcastOperand(b, loc, lhs, operandLoops(lhsRank, m, k), loopShape);
  Operand bOp =
      broadcastOperand(b, loc, rhs, operandLoops(rhsRank, k, n), loopShape);
  SmallVector<AffineExpr> outExprs;
  for (int64_t i = 0; i < numBatch; ++i)
    outExprs.push_back(b.getAffineDimExpr(i));
  outExprs.append({b.getAffineDimExpr(m), b.getAffineDimExpr(n)});
  Operand out{zero,
              AffineMap::get(loopShape.size(), 0, outExprs, b.getContext())};
  SmallVector<utils::IteratorType> iterators(loopShape.size(),
                                             utils::IteratorType::parallel);
  iterators[k] = utils::IteratorType::reduction;
  return buildGeneric(b, loc, {a, bOp}, out, iterators,
                      [](OpBuilder &nb, Location l, ValueRange args) {
                        Scalar s{nb, l};
                        return SmallVector<Value>{
                            s.add(args[2], s.mul(args[0], args[1]))};
                      })
      .front();
}

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

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

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

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

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
    Value total =
        buildGeneric(
            rewriter, loc,
            {{max, vecMap}, {rowSums[0], vecMap}, {rowSums[1], vecMap}},
            Operand{zeros({}), AffineMap::get(1, 0, {}, ctx)},
            utils::IteratorType::reduction,
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

/// Index arithmetic inside generic bodies.
struct Index {
  OpBuilder &b;
  Location loc;

  Value cst(int64_t v) { return b.create<arith::ConstantIndexOp>(loc, v); }
  Value dim(int64_t d) { return b.create<linalg::IndexOp>(loc, d); }
  Value add(Value x, Value y) { return b.create<arith::AddIOp>(loc, x, y); }
  Value sub(Value x, int64_t c) {
    return c == 0 ? x : b.create<arith::SubIOp>(loc, x, cst(c));
  }
  Value addc(Value x, int64_t c) {
    return c == 0 ? x : b.create<arith::AddIOp>(loc, x, cst(c));
  }
  Value mul(Value x, int64_t c) {
    return c == 1 ? x : b.create<arith::MulIOp>(loc, x, cst(c));
  }
  Value div(Value x, int64_t c) {
    return c == 1 ? x : b.create<arith::DivSIOp>(loc, x, cst(c));
  }
  Value cmp(arith::CmpIPredicate p, Value x, Value y) {
    return b.create<arith::CmpIOp>(loc, p, x, y);
  }
  Value both(Value x, Value y) {
    if (!x)
      return y;
    return y ? b.create<arith::AndIOp>(loc, x, y) : x;
  }
  Value select(Value c, Value x, Value y) {
    return c ? b.create<arith::SelectOp>(loc, c, x, y) : x;
  }
  /// 0 <= x < n.
  Value inRange(Value x, int64_t n) {
    return both(cmp(arith::CmpIPredicate::sge, x, cst(0)),
                cmp(arith::CmpIPredicate::slt, x, cst(n)));
  }
};

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

/// Marks the im2col generics until shareColumns has run.
constexpr llvm::StringLiteral kColumnsAttr = "kiln.columns";

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
  columns.getDefiningOp()->setAttr(kColumnsAttr, b.getUnitAttr());
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

/// Applies the epilogue activation of a fused op to `v`.
Value activate(Scalar &s, kiln::ActivationKind activation, Value v);

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
// Dropout
//===----------------------------------------------------------------------===//

/// MurmurHash3's 32-bit finalizer on i32 values (ir/DropoutMask.h).
Value mix32(OpBuilder &b, Location loc, Value h) {
  auto c = [&](uint32_t v) -> Value {
    return b.create<arith::ConstantOp>(
        loc, b.getI32IntegerAttr(static_cast<int32_t>(v)));
  };
  auto xorShift = [&](Value x, uint32_t shift) -> Value {
    return b.create<arith::XOrIOp>(loc, x,
                                   b.create<arith::ShRUIOp>(loc, x, c(shift)));
  };
  h = xorShift(h, 16);
  h = b.create<arith::MulIOp>(loc, h, c(0x85ebca6bu));
  h = xorShift(h, 13);
  h = b.create<arith::MulIOp>(loc, h, c(0xc2b2ae35u));
  return xorShift(h, 16);
}

/// Inverted dropout with the counter-based mask of ir/DropoutMask.h: element
/// i is dropped when (mix(key ^ i * 0x27d4eb2f) >> 8) / 2^24 < rate, which
/// is compared exactly in integers against ceil(rate * 2^24).
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
    Type i32 = rewriter.getI32Type();
    auto c = [&](OpBuilder &b, uint32_t v) -> Value {
      return b.create<arith::ConstantOp>(
          loc, b.getI32IntegerAttr(static_cast<int32_t>(v)));
    };
    auto readU32 = [&](int64_t index) -> Value {
      Value i = rewriter.create<arith::ConstantIndexOp>(loc, index);
      Value f = rewriter.create<tensor::ExtractOp>(loc, adaptor.getHyper(), i);
      return rewriter.create<arith::FPToUIOp>(loc, i32, f);
    };
    Value step = readU32(KILN_HYPER_STEP), seed = readU32(KILN_HYPER_SEED);
    uint32_t salt = static_cast<uint32_t>(op.getSalt()) * 0xc2b2ae3du;
    Value key = rewriter.create<arith::XOrIOp>(
        loc,
        rewriter.create<arith::XOrIOp>(
            loc,
            rewriter.create<arith::MulIOp>(loc, step, c(rewriter, 0x9e3779b1u)),
            rewriter.create<arith::MulIOp>(loc, seed,
                                           c(rewriter, 0x85ebca77u))),
        c(rewriter, salt));
    key = mix32(rewriter, loc, key);

    double rate = op.getRate().convertToDouble();
    double scaled = std::ceil(std::clamp(rate, 0.0, 1.0) * 16777216.0);
    uint32_t threshold = static_cast<uint32_t>(scaled);
    RankedTensorType type = op.getType();
    ArrayRef<int64_t> shape = type.getShape();
    Type element = type.getElementType();
    Value result = buildElementwise(
        rewriter, loc, type, x, [&](OpBuilder &b, Location l, ValueRange args) {
          Index ix{b, l};
          Scalar s{b, l};
          // The row-major index of the element.
          Value flat = ix.cst(0);
          int64_t stride = 1;
          for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0;
               --d) {
            flat = ix.add(flat, ix.mul(ix.dim(d), stride));
            stride *= shape[d];
          }
          Value i = b.create<arith::IndexCastOp>(l, i32, flat);
          Value h = b.create<arith::XOrIOp>(
              l, key, b.create<arith::MulIOp>(l, i, c(b, 0x27d4eb2fu)));
          Value u = b.create<arith::ShRUIOp>(l, mix32(b, l, h), c(b, 8));
          Value drop = b.create<arith::CmpIOp>(l, arith::CmpIPredicate::ult, u,
                                               c(b, threshold));
          Value kept = s.div(args[0], s.cst(element, 1.0 - rate));
          return s.select(drop, s.cst(element, 0.0), kept);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Fused ops (kiln-fuse-conv)
//===----------------------------------------------------------------------===//

Value activate(Scalar &s, kiln::ActivationKind activation, Value v) {
  switch (activation) {
  case kiln::ActivationKind::none:
    return v;
  case kiln::ActivationKind::relu:
    return unaryScalar<kiln::ReluOp>(s, v);
  case kiln::ActivationKind::sigmoid:
    return unaryScalar<kiln::SigmoidOp>(s, v);
  case kiln::ActivationKind::tanh:
    return unaryScalar<kiln::TanhOp>(s, v);
  case kiln::ActivationKind::gelu:
    return unaryScalar<kiln::GeluOp>(s, v);
  }
  llvm_unreachable("unknown ActivationKind");
}

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

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

/// A convolution's filter gradient gathers the same im2col columns as its
/// forward pass (same input, same window): the later gather is replaced by
/// the earlier one's result, which then lives until the backward pass (more
/// memory, one gather less per convolution and step). Two gathers are the
/// same when their bodies are (the input is a captured value) and their
/// inits are both tensor.empty of one type.
void shareColumns(func::FuncOp func) {
  SmallVector<linalg::GenericOp> gathers;
  func.walk([&](linalg::GenericOp op) {
    if (op->removeAttr(kColumnsAttr))
      gathers.push_back(op);
  });
  for (size_t i = 0; i < gathers.size(); ++i) {
    if (!gathers[i])
      continue;
    for (size_t j = i + 1; j < gathers.size(); ++j) {
      linalg::GenericOp first = gathers[i], later = gathers[j];
      if (!later || first->getBlock() != later->getBlock() ||
          !first->isBeforeInBlock(later))
        continue;
      // Values of the two bodies that correspond, as the comparison finds
      // them.
      llvm::DenseMap<Value, Value> same;
      auto check = [&](Value a, Value b) -> LogicalResult {
        if (a == b || same.lookup(a) == b)
          return success();
        auto emptyA = a.getDefiningOp<tensor::EmptyOp>();
        auto emptyB = b.getDefiningOp<tensor::EmptyOp>();
        return success(emptyA && emptyB && a.getType() == b.getType());
      };
      auto mark = [&](Value a, Value b) { same[a] = b; };
      if (!OperationEquivalence::isEquivalentTo(
              first, later, check, mark, OperationEquivalence::IgnoreLocations))
        continue;
      later.getResult(0).replaceAllUsesWith(first.getResult(0));
      later.erase();
      gathers[j] = nullptr;
    }
  }
}

struct KilnToLinalgPass : kiln::impl::KilnToLinalgBase<KilnToLinalgPass> {
  using KilnToLinalgBase::KilnToLinalgBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();

    // Parameters must be function arguments by now; say so plainly rather
    // than "failed to legalize".
    WalkResult walk =
        module.walk([](Operation *op) {
          if (isa<kiln::LoadParamOp>(op)) {
            op->emitOpError()
                << "is not supported by codegen: parameters must be "
                   "entry-function arguments (kiln.param argument attribute) "
                   "before kiln-to-linalg";
            return WalkResult::interrupt();
          }
          if (isa<kiln::IfTrainingOp, kiln::AssignParamOp>(op)) {
            op->emitOpError()
                << "is not supported by codegen: kiln-autodiff and "
                   "kiln-entry-points resolve it in the entry "
                   "functions";
            return WalkResult::interrupt();
          }
          return WalkResult::advance();
        });
    if (walk.wasInterrupted())
      return signalPassFailure();

    unsigned count = 0;
    module.walk([&](Operation *op) {
      if (isa<kiln::KilnDialect>(op->getDialect()) && !isa<kiln::ParamOp>(op))
        ++count;
    });

    ConversionTarget target(*ctx);
    target.addLegalDialect<
        arith::ArithDialect, linalg::LinalgDialect, math::MathDialect,
        tensor::TensorDialect, bufferization::BufferizationDialect,
        memref::MemRefDialect, func::FuncDialect, scf::SCFDialect>();
    target.addIllegalDialect<kiln::KilnDialect>();
    target.addLegalOp<kiln::ParamOp>();

    RewritePatternSet patterns(ctx);
    patterns.add<
        BinaryLowering<kiln::AddOp>, BinaryLowering<kiln::SubOp>,
        BinaryLowering<kiln::MulOp>, BinaryLowering<kiln::DivOp>,
        BinaryLowering<kiln::MaximumOp>, BinaryLowering<kiln::MinimumOp>,
        BinaryLowering<kiln::GreaterOp>, UnaryLowering<kiln::NegOp>,
        UnaryLowering<kiln::ReluOp>, UnaryLowering<kiln::SigmoidOp>,
        UnaryLowering<kiln::TanhOp>, UnaryLowering<kiln::ExpOp>,
        UnaryLowering<kiln::LogOp>, UnaryLowering<kiln::SqrtOp>,
        UnaryLowering<kiln::AbsOp>, UnaryLowering<kiln::GeluOp>,
        UnaryLowering<kiln::GeluDerivativeOp>, SoftmaxLowering<kiln::SoftmaxOp>,
        SoftmaxLowering<kiln::LogSoftmaxOp>, ReduceLowering<kiln::ReduceSumOp>,
        ReduceLowering<kiln::ReduceMeanOp>, ReduceLowering<kiln::ReduceMaxOp>,
        ArgmaxLowering, ReshapeLowering, TransposeLowering, BroadcastToLowering,
        OneHotLowering, ConstantLowering, CrossEntropyLowering, MseLowering,
        BceWithLogitsLowering, SgdLowering, MomentumLowering, AdamLowering>(
        ctx);
    patterns
        .add<PoolLowering<kiln::MaxPool2dOp>, PoolLowering<kiln::AvgPool2dOp>,
             PoolBackwardLowering<kiln::MaxPool2dBackwardOp>,
             PoolBackwardLowering<kiln::AvgPool2dBackwardOp>, DropoutLowering>(
            ctx);
    patterns.add<MatmulLowering, Conv2dLowering, Conv2dBackwardFilterLowering,
                 Conv2dBackwardInputLowering, FusedDenseLowering,
                 FusedConv2dLowering>(ctx, namedMatmul);

    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      return signalPassFailure();
    module.walk([](func::FuncOp func) { shareColumns(func); });
    numOpsLowered += count;
  }
};

} // namespace
