//===- ShapeRules.cpp - Static shape rules shared by sema and the IR ------===//

#include "ir/ShapeRules.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/ADT/StringRef.h"

#include <algorithm>

using llvm::ArrayRef;
using llvm::failure;
using llvm::FailureOr;
using llvm::LogicalResult;
using llvm::success;

namespace kiln::shape {

std::string str(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape)) {
    if (i)
      s += ", ";
    s += std::to_string(d);
  }
  return s + "]";
}

int64_t numElements(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

LogicalResult checkSize(ArrayRef<int64_t> shape, int64_t elementBytes,
                        std::string &error) {
  int64_t bytes = elementBytes;
  for (int64_t d : shape) {
    if (d > 0 && bytes > kMaxTensorBytes / d) {
      error = str(shape) + " is too large: more than 2^48 bytes (256 TiB)";
      return failure();
    }
    bytes *= d;
  }
  return success();
}

FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank,
                                 std::string &error) {
  if (axis < -rank || axis >= rank) {
    error = "axis " + std::to_string(axis) +
            " is out of range for a tensor of rank " + std::to_string(rank);
    return failure();
  }
  return axis < 0 ? axis + rank : axis;
}

FailureOr<Shape> broadcast(ArrayRef<int64_t> lhs, ArrayRef<int64_t> rhs,
                           std::string &error) {
  size_t rank = std::max(lhs.size(), rhs.size());
  Shape result(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t a = i < lhs.size() ? lhs[lhs.size() - 1 - i] : 1;
    int64_t b = i < rhs.size() ? rhs[rhs.size() - 1 - i] : 1;
    if (a != b && a != 1 && b != 1) {
      error = "shapes " + str(lhs) + " and " + str(rhs) +
              " cannot be broadcast together";
      return failure();
    }
    result[rank - 1 - i] = a == 1 ? b : a;
  }
  return result;
}

bool broadcastsTo(ArrayRef<int64_t> from, ArrayRef<int64_t> to) {
  if (from.size() > to.size())
    return false;
  for (size_t i = 0; i < from.size(); ++i) {
    int64_t a = from[from.size() - 1 - i], b = to[to.size() - 1 - i];
    if (a != b && a != 1)
      return false;
  }
  return true;
}

FailureOr<Shape> matmul(ArrayRef<int64_t> lhs, ArrayRef<int64_t> rhs,
                        std::string &error) {
  if (lhs.size() < 2 || rhs.size() < 2) {
    error = "matmul needs operands of rank >= 2, got " + str(lhs) + " @ " +
            str(rhs);
    return failure();
  }
  int64_t k1 = lhs.back(), k2 = rhs[rhs.size() - 2];
  if (k1 != k2) {
    error = "matmul inner dimensions differ: " + str(lhs) + " @ " + str(rhs) +
            " (" + std::to_string(k1) + " vs " + std::to_string(k2) + ")";
    return failure();
  }
  std::string batchError;
  FailureOr<Shape> batch =
      broadcast(lhs.drop_back(2), rhs.drop_back(2), batchError);
  if (failed(batch)) {
    error = "matmul batch dimensions of " + str(lhs) + " @ " + str(rhs) +
            " cannot be broadcast together";
    return failure();
  }
  Shape result = *batch;
  result.push_back(lhs[lhs.size() - 2]);
  result.push_back(rhs.back());
  return result;
}

FailureOr<Shape> attention(ArrayRef<int64_t> q, ArrayRef<int64_t> k,
                           ArrayRef<int64_t> v, bool causal,
                           std::string &error) {
  std::string shapes = "q " + str(q) + ", k " + str(k) + " and v " + str(v);
  if (q.size() < 2 || k.size() != q.size() || v.size() != q.size()) {
    error = "attention needs q, k and v of one rank >= 2 ([..., T, D]), got " +
            shapes;
    return failure();
  }
  if (q.drop_back(2) != k.drop_back(2) || q.drop_back(2) != v.drop_back(2)) {
    error = "attention needs equal batch dimensions, got " + shapes;
    return failure();
  }
  if (q.back() != k.back()) {
    error = "attention needs queries and keys of one size (the last "
            "dimension), got " +
            shapes;
    return failure();
  }
  if (k[k.size() - 2] != v[v.size() - 2]) {
    error = "attention needs as many values as keys, got " + shapes;
    return failure();
  }
  if (causal && q[q.size() - 2] > k[k.size() - 2]) {
    error = "causal attention needs no more queries than keys, got " + shapes;
    return failure();
  }
  Shape result(q.drop_back());
  result.push_back(v.back());
  return result;
}

LogicalResult attentionMask(ArrayRef<int64_t> q, ArrayRef<int64_t> k,
                            ArrayRef<int64_t> mask, std::string &error) {
  Shape keys(q.drop_back(2));
  keys.push_back(k[k.size() - 2]);
  if (mask.empty() || !broadcastsTo(mask, keys)) {
    error = "the key mask of attention must broadcast to " + str(keys) +
            " (the batch dimensions, then one entry per key), got " + str(mask);
    return failure();
  }
  return success();
}

FailureOr<Shape> reduce(ArrayRef<int64_t> input, ArrayRef<int64_t> axes,
                        bool keepDims, std::string &error) {
  llvm::SmallBitVector reduced(input.size());
  for (int64_t axis : axes) {
    if (axis < 0 || axis >= static_cast<int64_t>(input.size())) {
      error = "axis " + std::to_string(axis) +
              " is out of range for a tensor of rank " +
              std::to_string(input.size());
      return failure();
    }
    if (reduced.test(axis)) {
      error = "axis " + std::to_string(axis) + " is reduced twice";
      return failure();
    }
    reduced.set(axis);
  }
  Shape result;
  for (auto [i, d] : llvm::enumerate(input)) {
    if (!reduced.test(i))
      result.push_back(d);
    else if (keepDims)
      result.push_back(1);
  }
  return result;
}

FailureOr<Shape> transpose(ArrayRef<int64_t> input, ArrayRef<int64_t> perm,
                           std::string &error) {
  if (perm.size() != input.size()) {
    error = "permutation of " + std::to_string(perm.size()) +
            " axes for a tensor of rank " + std::to_string(input.size());
    return failure();
  }
  llvm::SmallBitVector seen(input.size());
  Shape result;
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(input.size()) || seen.test(p)) {
      error = "permutation " + str(perm) + " is not a permutation of the " +
              std::to_string(input.size()) + " axes";
      return failure();
    }
    seen.set(p);
    result.push_back(input[p]);
  }
  return result;
}

FailureOr<Shape> reshape(ArrayRef<int64_t> input, ArrayRef<int64_t> target,
                         std::string &error) {
  Shape result(target.begin(), target.end());
  int64_t known = 1;
  int inferred = -1;
  for (auto [i, d] : llvm::enumerate(target)) {
    if (d == -1 && inferred < 0) {
      inferred = static_cast<int>(i);
      continue;
    }
    if (d <= 0) {
      error = "reshape target " + str(target) +
              " must have positive dimensions (and at most one -1)";
      return failure();
    }
    known *= d;
  }
  int64_t total = numElements(input);
  if (inferred >= 0) {
    if (known == 0 || total % known != 0) {
      error = "cannot reshape " + str(input) + " (" + std::to_string(total) +
              " elements) to " + str(target);
      return failure();
    }
    result[inferred] = total / known;
  } else if (known != total) {
    error = "cannot reshape " + str(input) + " (" + std::to_string(total) +
            " elements) to " + str(target) + " (" + std::to_string(known) +
            " elements)";
    return failure();
  }
  return result;
}

FailureOr<Shape> dropAxis(ArrayRef<int64_t> input, int64_t axis,
                          std::string &error) {
  FailureOr<int64_t> a = normalizeAxis(axis, input.size(), error);
  if (failed(a))
    return failure();
  Shape result(input.begin(), input.end());
  result.erase(result.begin() + *a);
  return result;
}

FailureOr<llvm::SmallVector<Shape>> split(ArrayRef<int64_t> input, int64_t axis,
                                          ArrayRef<int64_t> sizes,
                                          std::string &error) {
  if (axis < 0 || axis >= static_cast<int64_t>(input.size())) {
    error = "axis " + std::to_string(axis) + " is out of range for shape " +
            str(input);
    return failure();
  }
  if (sizes.empty()) {
    error = "split needs at least one piece";
    return failure();
  }
  int64_t total = 0;
  llvm::SmallVector<Shape> pieces;
  for (int64_t size : sizes) {
    if (size <= 0 || size > input[axis] - total) {
      error = "cannot split dimension " + std::to_string(axis) + " (" +
              std::to_string(input[axis]) + ") of " + str(input) +
              " into pieces of " + str(sizes);
      return failure();
    }
    total += size;
    Shape piece(input.begin(), input.end());
    piece[axis] = size;
    pieces.push_back(std::move(piece));
  }
  if (total != input[axis]) {
    error = "the pieces " + str(sizes) + " add up to " + std::to_string(total) +
            ", not to dimension " + std::to_string(axis) + " (" +
            std::to_string(input[axis]) + ") of " + str(input);
    return failure();
  }
  return pieces;
}

FailureOr<Shape> concat(ArrayRef<Shape> inputs, int64_t axis,
                        std::string &error) {
  if (inputs.empty()) {
    error = "concat needs at least one tensor";
    return failure();
  }
  Shape result = inputs.front();
  if (axis < 0 || axis >= static_cast<int64_t>(result.size())) {
    error = "axis " + std::to_string(axis) + " is out of range for shape " +
            str(result);
    return failure();
  }
  for (const Shape &s : inputs.drop_front()) {
    bool match = s.size() == result.size();
    for (size_t d = 0; match && d < s.size(); ++d)
      match = static_cast<int64_t>(d) == axis || s[d] == result[d];
    if (!match) {
      error = "cannot concatenate " + str(inputs.front()) + " and " + str(s) +
              " along axis " + std::to_string(axis) +
              ": the other dimensions must be equal";
      return failure();
    }
    if (__builtin_add_overflow(result[axis], s[axis], &result[axis])) {
      error = "concatenation along axis " + std::to_string(axis) + " overflows";
      return failure();
    }
  }
  return result;
}

LogicalResult crossEntropy(ArrayRef<int64_t> logits, ArrayRef<int64_t> labels,
                           std::string &error) {
  if (logits.size() != 2) {
    error = "cross_entropy expects logits of shape [N, C], got " + str(logits);
    return failure();
  }
  if (labels.size() != 1 || labels[0] != logits[0]) {
    error = "cross_entropy expects labels of shape [" +
            std::to_string(logits[0]) + "] for logits " + str(logits) +
            ", got " + str(labels);
    return failure();
  }
  return success();
}

LogicalResult sameShapeLoss(ArrayRef<int64_t> lhs, ArrayRef<int64_t> rhs,
                            std::string &error) {
  if (lhs != rhs) {
    error = "loss operands must have the same shape, got " + str(lhs) +
            " and " + str(rhs);
    return failure();
  }
  return success();
}

/// Checks that `values` is an [h, w] pair of numbers >= `min`.
static LogicalResult checkPair(llvm::StringRef what, ArrayRef<int64_t> values,
                               int64_t min, std::string &error) {
  if (values.size() != 2) {
    error = what.str() + " must give 2 values (height, width), got " +
            std::to_string(values.size());
    return failure();
  }
  for (int64_t v : values)
    if (v < min) {
      error = what.str() + " must be " +
              (min > 0 ? "positive" : "non-negative") + ", got " + str(values);
      return failure();
    }
  return success();
}

FailureOr<Shape> conv2d(ArrayRef<int64_t> input, ArrayRef<int64_t> filter,
                        ArrayRef<int64_t> strides, ArrayRef<int64_t> padding,
                        ArrayRef<int64_t> dilation, std::string &error) {
  if (input.size() != 4) {
    error = "conv2d expects an input of shape [N, C, H, W], got " + str(input);
    return failure();
  }
  if (filter.size() != 4) {
    error =
        "conv2d expects a filter of shape [O, C, KH, KW], got " + str(filter);
    return failure();
  }
  if (filter[1] != input[1]) {
    error = "conv2d input " + str(input) + " has " + std::to_string(input[1]) +
            " channels but the filter " + str(filter) + " expects " +
            std::to_string(filter[1]);
    return failure();
  }
  if (failed(checkPair("strides", strides, 1, error)) ||
      failed(checkPair("padding", padding, 0, error)) ||
      failed(checkPair("dilation", dilation, 1, error)))
    return failure();
  Shape result{input[0], filter[0], 0, 0};
  for (int i = 0; i < 2; ++i) {
    int64_t extent = dilation[i] * (filter[2 + i] - 1) + 1;
    int64_t padded = input[2 + i] + 2 * padding[i];
    if (extent > padded) {
      error = "conv2d kernel " + str(filter.drop_front(2)) +
              " (dilated extent " + std::to_string(extent) +
              ") is larger than the padded input " +
              str({input[2] + 2 * padding[0], input[3] + 2 * padding[1]});
      return failure();
    }
    result[2 + i] = (padded - extent) / strides[i] + 1;
  }
  return result;
}

FailureOr<Shape> pool2d(ArrayRef<int64_t> input, ArrayRef<int64_t> kernel,
                        ArrayRef<int64_t> strides, ArrayRef<int64_t> padding,
                        std::string &error) {
  if (input.size() != 4) {
    error = "pooling expects an input of shape [N, C, H, W], got " + str(input);
    return failure();
  }
  if (failed(checkPair("kernel", kernel, 1, error)) ||
      failed(checkPair("strides", strides, 1, error)) ||
      failed(checkPair("padding", padding, 0, error)))
    return failure();
  Shape result{input[0], input[1], 0, 0};
  for (int i = 0; i < 2; ++i) {
    if (2 * padding[i] > kernel[i]) {
      error = "pooling padding " + str(padding) +
              " must be at most half the kernel " + str(kernel);
      return failure();
    }
    int64_t padded = input[2 + i] + 2 * padding[i];
    if (kernel[i] > padded) {
      error =
          "pooling kernel " + str(kernel) + " is larger than the padded input";
      return failure();
    }
    result[2 + i] = (padded - kernel[i]) / strides[i] + 1;
  }
  return result;
}

} // namespace kiln::shape
