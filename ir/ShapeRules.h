//===- ShapeRules.h - Static shape rules shared by sema and the IR -*- C++
//-*-===//
//
// The one place that says which shapes an op accepts and what it produces. The
// frontend reports failures as DSL diagnostics; the kiln ops use the same rules
// for result-type inference and verification.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_SHAPERULES_H
#define KILN_IR_SHAPERULES_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/LogicalResult.h"

#include <string>

namespace kiln::shape {

using Shape = llvm::SmallVector<int64_t, 4>;

/// Renders a shape the way the DSL writes it: `[64, 784]`.
std::string str(llvm::ArrayRef<int64_t> shape);

/// Number of elements of a static shape.
int64_t numElements(llvm::ArrayRef<int64_t> shape);

/// The largest tensor, in bytes, that a shape may describe (2^48, 256 TiB):
/// element counts and byte sizes below it cannot overflow anywhere in the
/// compiler, the generated code or the runtime.
inline constexpr int64_t kMaxTensorBytes = int64_t(1) << 48;

/// Fails (with `error` set) when a tensor of `shape` with elements of
/// `elementBytes` bytes would hold more than kMaxTensorBytes (or its element
/// count overflows).
llvm::LogicalResult checkSize(llvm::ArrayRef<int64_t> shape,
                              int64_t elementBytes, std::string &error);

/// Maps a possibly negative axis into [0, rank); fails (with `error` set) when
/// it is out of range.
llvm::FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank,
                                       std::string &error);

/// NumPy broadcasting of two shapes.
llvm::FailureOr<Shape> broadcast(llvm::ArrayRef<int64_t> lhs,
                                 llvm::ArrayRef<int64_t> rhs,
                                 std::string &error);

/// True if `from` broadcasts to exactly `to`.
bool broadcastsTo(llvm::ArrayRef<int64_t> from, llvm::ArrayRef<int64_t> to);

/// `[..., M, K] x [..., K, N] -> [..., M, N]` with broadcast batch dimensions.
llvm::FailureOr<Shape> matmul(llvm::ArrayRef<int64_t> lhs,
                              llvm::ArrayRef<int64_t> rhs, std::string &error);

/// Scaled dot-product attention: q `[..., Tq, D]`, k `[..., Tk, D]`, v
/// `[..., Tk, Dv]` with equal batch dimensions -> `[..., Tq, Dv]`. With
/// `causal`, query i attends to keys 0..i, so Tq <= Tk.
llvm::FailureOr<Shape> attention(llvm::ArrayRef<int64_t> q,
                                 llvm::ArrayRef<int64_t> k,
                                 llvm::ArrayRef<int64_t> v, bool causal,
                                 std::string &error);

/// An attention's key mask: `[..., Tk]` that broadcasts (NumPy rules) to the
/// batch dimensions of `q` followed by Tk.
llvm::LogicalResult attentionMask(llvm::ArrayRef<int64_t> q,
                                  llvm::ArrayRef<int64_t> k,
                                  llvm::ArrayRef<int64_t> mask,
                                  std::string &error);

/// Reduction over `axes` (already normalized; must be distinct).
llvm::FailureOr<Shape> reduce(llvm::ArrayRef<int64_t> input,
                              llvm::ArrayRef<int64_t> axes, bool keepDims,
                              std::string &error);

/// Permutation of dimensions: result dim i is input dim perm[i].
llvm::FailureOr<Shape> transpose(llvm::ArrayRef<int64_t> input,
                                 llvm::ArrayRef<int64_t> perm,
                                 std::string &error);

/// Reshape; at most one -1 in `target` is inferred from the element count.
llvm::FailureOr<Shape> reshape(llvm::ArrayRef<int64_t> input,
                               llvm::ArrayRef<int64_t> target,
                               std::string &error);

/// Drops dimension `axis` (argmax).
llvm::FailureOr<Shape> dropAxis(llvm::ArrayRef<int64_t> input, int64_t axis,
                                std::string &error);

/// Splits dimension `axis` (normalized) into pieces of `sizes`, which must be
/// positive and add up to the dimension: one shape per piece.
llvm::FailureOr<llvm::SmallVector<Shape>> split(llvm::ArrayRef<int64_t> input,
                                                int64_t axis,
                                                llvm::ArrayRef<int64_t> sizes,
                                                std::string &error);

/// Joins `inputs` along `axis` (normalized): equal ranks, equal dimensions
/// except `axis`.
llvm::FailureOr<Shape> concat(llvm::ArrayRef<Shape> inputs, int64_t axis,
                              std::string &error);

/// Checks a classification loss: logits `[N, C]`, labels `[N]`.
llvm::LogicalResult crossEntropy(llvm::ArrayRef<int64_t> logits,
                                 llvm::ArrayRef<int64_t> labels,
                                 std::string &error);

/// Checks an elementwise loss: both operands have the same shape.
llvm::LogicalResult sameShapeLoss(llvm::ArrayRef<int64_t> lhs,
                                  llvm::ArrayRef<int64_t> rhs,
                                  std::string &error);

/// 2-D convolution, NCHW: input [N, C, H, W], filter [O, C, KH, KW]; strides,
/// padding and dilation are [h, w] pairs.
llvm::FailureOr<Shape>
conv2d(llvm::ArrayRef<int64_t> input, llvm::ArrayRef<int64_t> filter,
       llvm::ArrayRef<int64_t> strides, llvm::ArrayRef<int64_t> padding,
       llvm::ArrayRef<int64_t> dilation, std::string &error);

/// 2-D pooling over [N, C, H, W] with kernel, strides and padding [h, w] pairs.
llvm::FailureOr<Shape> pool2d(llvm::ArrayRef<int64_t> input,
                              llvm::ArrayRef<int64_t> kernel,
                              llvm::ArrayRef<int64_t> strides,
                              llvm::ArrayRef<int64_t> padding,
                              std::string &error);

} // namespace kiln::shape

#endif // KILN_IR_SHAPERULES_H
