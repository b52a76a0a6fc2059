//===- LoweringUtils.h - Builders shared by kiln-to-linalg ------*- C++ -*-===//
//
// What the lowering patterns of kiln-to-linalg (one Lower*.cpp per op family)
// share: scalar and index arithmetic for generic bodies, linalg.generic
// builders with broadcasting and reductions, the matmul builder, and the
// functions that add each family's patterns. Every generic they build has
// projected-permutation indexing maps: operand dimensions of size 1 that
// broadcast are collapsed away instead of being indexed with a constant 0.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_LOWERINGUTILS_H
#define KILN_CODEGEN_LOWERINGUTILS_H

#include "ir/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln::lowering {

//===----------------------------------------------------------------------===//
// Scalar and index arithmetic inside generic bodies
//===----------------------------------------------------------------------===//

/// Builds scalar float arithmetic with the `contract` fast-math flag.
struct Scalar {
  mlir::OpBuilder &b;
  mlir::Location loc;

  static constexpr mlir::arith::FastMathFlags fm =
      mlir::arith::FastMathFlags::contract;

  mlir::Value cst(mlir::Type type, double v) {
    return b.create<mlir::arith::ConstantOp>(loc, b.getFloatAttr(type, v));
  }
  mlir::Value add(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::AddFOp>(loc, x, y, fm);
  }
  /// acc + v in a sum over a reduction loop: reassociable, so that LLVM
  /// vectorizes the loop with several partial sums (a chain of scalar adds
  /// runs at one add per 3-4 cycles). The order then depends on the vector
  /// width chosen at compile time, never on the thread count.
  mlir::Value accumulate(mlir::Value acc, mlir::Value v) {
    return b.create<mlir::arith::AddFOp>(
        loc, acc, v, fm | mlir::arith::FastMathFlags::reassoc);
  }
  mlir::Value sub(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::SubFOp>(loc, x, y, fm);
  }
  mlir::Value mul(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::MulFOp>(loc, x, y, fm);
  }
  mlir::Value div(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::DivFOp>(loc, x, y, fm);
  }
  mlir::Value neg(mlir::Value x) {
    return b.create<mlir::arith::NegFOp>(loc, x, fm);
  }
  mlir::Value max(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::MaximumFOp>(loc, x, y, fm);
  }
  mlir::Value min(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::MinimumFOp>(loc, x, y, fm);
  }
  mlir::Value exp(mlir::Value x) {
    return b.create<mlir::math::ExpOp>(loc, x, fm);
  }
  mlir::Value log(mlir::Value x) {
    return b.create<mlir::math::LogOp>(loc, x, fm);
  }
  mlir::Value log1p(mlir::Value x) {
    return b.create<mlir::math::Log1pOp>(loc, x, fm);
  }
  mlir::Value sqrt(mlir::Value x) {
    return b.create<mlir::math::SqrtOp>(loc, x, fm);
  }
  mlir::Value abs(mlir::Value x) {
    return b.create<mlir::math::AbsFOp>(loc, x, fm);
  }
  mlir::Value tanh(mlir::Value x) {
    return b.create<mlir::math::TanhOp>(loc, x, fm);
  }
  mlir::Value erf(mlir::Value x) {
    return b.create<mlir::math::ErfOp>(loc, x, fm);
  }
  mlir::Value gt(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::CmpFOp>(loc, mlir::arith::CmpFPredicate::OGT,
                                         x, y);
  }
  mlir::Value select(mlir::Value c, mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::SelectOp>(loc, c, x, y);
  }
  /// 1.0 where `c` holds, else 0.0, of type `type`.
  mlir::Value mask(mlir::Value c, mlir::Type type) {
    return select(c, cst(type, 1.0), cst(type, 0.0));
  }
};

/// Index arithmetic inside generic bodies.
struct Index {
  mlir::OpBuilder &b;
  mlir::Location loc;

  mlir::Value cst(int64_t v) {
    return b.create<mlir::arith::ConstantIndexOp>(loc, v);
  }
  mlir::Value dim(int64_t d) { return b.create<mlir::linalg::IndexOp>(loc, d); }
  mlir::Value add(mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::AddIOp>(loc, x, y);
  }
  mlir::Value sub(mlir::Value x, int64_t c) {
    return c == 0 ? x : b.create<mlir::arith::SubIOp>(loc, x, cst(c));
  }
  mlir::Value addc(mlir::Value x, int64_t c) {
    return c == 0 ? x : b.create<mlir::arith::AddIOp>(loc, x, cst(c));
  }
  mlir::Value mul(mlir::Value x, int64_t c) {
    return c == 1 ? x : b.create<mlir::arith::MulIOp>(loc, x, cst(c));
  }
  mlir::Value div(mlir::Value x, int64_t c) {
    return c == 1 ? x : b.create<mlir::arith::DivSIOp>(loc, x, cst(c));
  }
  mlir::Value cmp(mlir::arith::CmpIPredicate p, mlir::Value x, mlir::Value y) {
    return b.create<mlir::arith::CmpIOp>(loc, p, x, y);
  }
  mlir::Value both(mlir::Value x, mlir::Value y) {
    if (!x)
      return y;
    return y ? b.create<mlir::arith::AndIOp>(loc, x, y) : x;
  }
  mlir::Value select(mlir::Value c, mlir::Value x, mlir::Value y) {
    return c ? b.create<mlir::arith::SelectOp>(loc, c, x, y) : x;
  }
  /// 0 <= x < n.
  mlir::Value inRange(mlir::Value x, int64_t n) {
    return both(cmp(mlir::arith::CmpIPredicate::sge, x, cst(0)),
                cmp(mlir::arith::CmpIPredicate::slt, x, cst(n)));
  }
};

/// Applies the epilogue activation of a fused op to `v`, with the scalar code
/// of the activation op of that kind (LowerElementwise.cpp).
mlir::Value activate(Scalar &s, kiln::ActivationKind activation, mlir::Value v);

//===----------------------------------------------------------------------===//
// Building generics
//===----------------------------------------------------------------------===//

/// A generic operand with its indexing map.
struct Operand {
  mlir::Value value;
  mlir::AffineMap map;
};

using BodyFn = llvm::function_ref<llvm::SmallVector<mlir::Value>(
    mlir::OpBuilder &, mlir::Location, mlir::ValueRange)>;

mlir::RankedTensorType tensorType(mlir::Value v);

mlir::Value emptyLike(mlir::OpBuilder &b, mlir::Location loc,
                      llvm::ArrayRef<int64_t> shape, mlir::Type elementType);

/// The offsets, sizes and unit strides of the slice [start, start + size)
/// along `axis` of a tensor of `shape` (whole along the other dimensions), for
/// tensor.extract_slice / insert_slice.
struct AxisSlice {
  llvm::SmallVector<mlir::OpFoldResult> offsets, sizes, strides;
  AxisSlice(mlir::OpBuilder &b, llvm::ArrayRef<int64_t> shape, int64_t axis,
            mlir::OpFoldResult start, int64_t size);
};

/// A tensor of `shape` filled with `value`.
mlir::Value filled(mlir::OpBuilder &b, mlir::Location loc,
                   llvm::ArrayRef<int64_t> shape, mlir::TypedAttr value);

/// Creates a linalg.generic and returns its results.
llvm::SmallVector<mlir::Value>
buildGeneric(mlir::OpBuilder &b, mlir::Location loc,
             llvm::ArrayRef<Operand> ins, llvm::ArrayRef<Operand> outs,
             llvm::ArrayRef<mlir::utils::IteratorType> iterators, BodyFn body);

/// Inserts dimensions of size 1 into `value` to give it type `type`; `added`
/// marks them in `type`.
mlir::Value addUnitDims(mlir::OpBuilder &b, mlir::Location loc,
                        mlir::Value value, mlir::RankedTensorType type,
                        llvm::ArrayRef<bool> added);

/// Prepares `value` to be read by a generic with loops of extents `loopShape`,
/// operand dimension i being indexed by loop `loopDims[i]`. Dimensions of size
/// 1 whose loop is longer broadcast: they are collapsed away and not indexed.
Operand broadcastOperand(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value value, llvm::ArrayRef<int64_t> loopDims,
                         llvm::ArrayRef<int64_t> loopShape);

/// Reads `value` in a generic over `resultShape` with NumPy broadcasting
/// (trailing dimensions aligned).
Operand broadcastTo(mlir::OpBuilder &b, mlir::Location loc, mlir::Value value,
                    llvm::ArrayRef<int64_t> resultShape);

/// An elementwise generic producing a tensor of `resultType` from `operands`
/// (broadcast to its shape); `body` maps the operand scalars to the result.
mlir::Value buildElementwise(
    mlir::OpBuilder &b, mlir::Location loc, mlir::RankedTensorType resultType,
    mlir::ValueRange operands,
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                   mlir::ValueRange)>
        body);

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// Maps of a reduction of a rank-`rank` input over `reduced`: the identity for
/// the input and the kept loops for the result.
mlir::AffineMap reducedMap(mlir::OpBuilder &b, int64_t rank,
                           llvm::ArrayRef<bool> reduced);

llvm::SmallVector<int64_t> keptShape(llvm::ArrayRef<int64_t> shape,
                                     llvm::ArrayRef<bool> reduced);

llvm::SmallVector<bool> axesMask(int64_t rank, llvm::ArrayRef<int64_t> axes);

llvm::SmallVector<mlir::utils::IteratorType>
reductionIterators(llvm::ArrayRef<bool> reduced);

/// Reduces `input` over the dimensions marked in `reduced` with
/// `combine(accumulator, element)` starting from `init`; the reduced
/// dimensions are dropped.
mlir::Value buildReduction(
    mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
    llvm::ArrayRef<bool> reduced, double init,
    llvm::function_ref<mlir::Value(Scalar &, mlir::Value, mlir::Value)>
        combine);

/// `value` (any shape) times the constant `factor`.
mlir::Value scaleBy(mlir::OpBuilder &b, mlir::Location loc, mlir::Value value,
                    double factor);

/// Sums `f(elements...)` over every element of equally shaped `inputs` into a
/// rank-0 tensor and divides by the element count: the mean losses.
mlir::Value
buildMeanOf(mlir::OpBuilder &b, mlir::Location loc, mlir::ValueRange inputs,
            llvm::function_ref<mlir::Value(Scalar &, mlir::ValueRange)> f);

/// lhs [..., M, K] x rhs [..., K, N] with broadcast batch dimensions. Rank 2
/// with `named`: a zero-filled linalg.matmul (kiln-vectorize-matmul's input).
/// Otherwise a generic over (batch..., m, k, n): with n innermost, the loop
/// nest that convert-linalg-to-loops emits updates a row of C with a row of B,
/// which LLVM vectorizes; the (m, n, k) order would be a scalar dot product.
mlir::Value buildMatmul(mlir::OpBuilder &b, mlir::Location loc, mlir::Value lhs,
                        mlir::Value rhs, mlir::RankedTensorType resultType,
                        bool named);

//===----------------------------------------------------------------------===//
// Random numbers (ir/Random.h), on i32 scalars or vectors of i32
//===----------------------------------------------------------------------===//

/// An i32 constant holding the bits of `v`, shaped like `like` (a scalar, or
/// a splat vector).
mlir::Value constU32(mlir::OpBuilder &b, mlir::Location loc, uint32_t v,
                     mlir::Value like = mlir::Value());

/// MurmurHash3's 32-bit finalizer (randomMix).
mlir::Value mix32(mlir::OpBuilder &b, mlir::Location loc, mlir::Value h);

/// The key of a random op (randomKey): the step and seed of the tensor
/// `hyper`, the op's `salt`, and inside a scan the time step of `stepTensor`
/// (randomStepKey); an i32 scalar.
mlir::Value buildRandomKey(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Value hyper, int64_t salt,
                           mlir::Value stepTensor);

/// The first counter of a random op over a tensor of `numElements` in this
/// process's part of a data-parallel job's global batch: the hyper vector's
/// shard times `numElements` (KILN_HYPER_SHARD; 0 alone), an i32 scalar that
/// the op adds to each element's row-major index.
mlir::Value buildShardBase(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Value hyper, int64_t numElements);

/// The bound under which randomBits24 drops an element with probability
/// `rate` (dropped when bits / 2^24 < rate, compared exactly in integers):
/// ceil(rate * 2^24).
uint32_t dropThreshold(double rate);

/// randomBits24(key, counter); `counter` an i32 scalar or vector (`key` is
/// broadcast to it).
mlir::Value randomBits24(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value key, mlir::Value counter);

//===----------------------------------------------------------------------===//
// The patterns, by op family
//===----------------------------------------------------------------------===//

/// Unary and binary elementwise ops (LowerElementwise.cpp).
void populateElementwisePatterns(mlir::RewritePatternSet &patterns);
/// matmul, softmax, log_softmax, the reductions and argmax
/// (LowerReductions.cpp); `namedMatmul` as kiln-to-linalg's option.
void populateReductionPatterns(mlir::RewritePatternSet &patterns,
                               bool namedMatmul);
/// reshape, transpose, broadcast_to, one_hot, constant (LowerShapes.cpp).
void populateShapePatterns(mlir::RewritePatternSet &patterns);
/// The losses (LowerLosses.cpp).
void populateLossPatterns(mlir::RewritePatternSet &patterns);
/// Convolution, pooling, their gradients and the fused ops (LowerConv.cpp).
void populateConvPatterns(mlir::RewritePatternSet &patterns, bool namedMatmul);
/// Dropout and the optimizer updates, which read the hyper vector
/// (LowerOptimizers.cpp).
void populateOptimizerPatterns(mlir::RewritePatternSet &patterns);
/// kiln.scan as scf.for (LowerScan.cpp).
void populateScanPatterns(mlir::RewritePatternSet &patterns);

/// kiln.attention and its backward op (LowerAttention.cpp).
void populateAttentionPatterns(mlir::RewritePatternSet &patterns);

} // namespace kiln::lowering

#endif // KILN_CODEGEN_LOWERINGUTILS_H
