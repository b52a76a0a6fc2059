//===- Reference.cpp - Reference semantics of the kiln ops in f64 ---------===//

#include "ir/Reference.h"

#include "ir/KilnOps.h"
#include "ir/Random.h"
#include "ir/ShapeRules.h"
#include "runtime/KilnABI.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <type_traits>

using namespace mlir;
using namespace kiln;

namespace {

using Shape = llvm::SmallVector<int64_t, 4>;

Shape shapeOf(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  return Shape(type.getShape().begin(), type.getShape().end());
}

Shape stridesOf(ArrayRef<int64_t> shape) {
  Shape strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/// Offset into a tensor of `shape` (right-aligned with `index`, size-1 dims
/// broadcast) for the multi-index `index` of a larger result.
int64_t broadcastOffset(ArrayRef<int64_t> index, ArrayRef<int64_t> shape) {
  Shape strides = stridesOf(shape);
  int64_t lead = index.size() - shape.size(), offset = 0;
  for (size_t i = 0; i < shape.size(); ++i)
    offset += (shape[i] == 1 ? 0 : index[i + lead]) * strides[i];
  return offset;
}

/// Calls `fn(multiIndex, linear)` for every element of `shape`.
template <typename Fn> void forEachIndex(ArrayRef<int64_t> shape, Fn fn) {
  Shape index(shape.size(), 0);
  int64_t n = RefTensor::numElements(shape);
  for (int64_t linear = 0; linear < n; ++linear) {
    fn(ArrayRef<int64_t>(index), linear);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++index[d] < shape[d])
        break;
      index[d] = 0;
    }
  }
}

RefTensor binary(const RefTensor &a, const RefTensor &b, ArrayRef<int64_t> out,
                 double (*fn)(double, double)) {
  RefTensor r(out);
  forEachIndex(out, [&](ArrayRef<int64_t> idx, int64_t i) {
    r.data[i] = fn(a.data[broadcastOffset(idx, a.shape)],
                   b.data[broadcastOffset(idx, b.shape)]);
  });
  return r;
}

/// Scaled dot-product attention on [N..., T, D] tensors, one query at a
/// time: its probabilities over the keys (0 where causally masked) and the
/// log-sum-exp of its scaled scores.
struct AttentionRef {
  const RefTensor &query, &key, &value;
  /// The key mask (0 hides a key), or null.
  const RefTensor *mask;
  double scale;
  bool causal;
  int64_t batch, tq, tk, d, dv;
  Shape batchShape;

  AttentionRef(const RefTensor &q, const RefTensor &k, const RefTensor &v,
               const RefTensor *mask, double scale, bool causal)
      : query(q), key(k), value(v), mask(mask), scale(scale), causal(causal) {
    size_t rank = q.shape.size();
    tq = q.shape[rank - 2];
    tk = k.shape[rank - 2];
    d = q.shape.back();
    dv = v.shape.back();
    batch = RefTensor::numElements(q.shape) / std::max<int64_t>(tq * d, 1);
    batchShape.assign(q.shape.begin(), q.shape.end() - 2);
  }
  /// With dropout: the key of the mask and the rate (ir/Random.h).
  bool dropping = false;
  uint32_t dropKey = 0, dropBase = 0;
  double rate = 0;

  void setDropout(const RefTensor *hyper, double dropout, int64_t salt) {
    if (!hyper || dropout <= 0)
      return;
    dropping = true;
    rate = dropout;
    dropKey = randomKey(uint32_t(hyper->data[KILN_HYPER_STEP]),
                        uint32_t(hyper->data[KILN_HYPER_SEED]), uint32_t(salt));
    dropBase = randomShardBase(uint32_t(hyper->data[KILN_HYPER_SHARD]),
                               batch * tq * tk);
  }
  /// The factor dropout puts on probability (n, i, j): 0 or 1 / (1 - rate).
  double keep(int64_t n, int64_t i, int64_t j) const {
    if (!dropping)
      return 1.0;
    uint32_t index = dropBase + uint32_t(((n * tq + i) * tk + j) & 0xffffffffu);
    return randomUniform(dropKey, index) < rate ? 0.0 : 1.0 / (1.0 - rate);
  }
  /// Whether query i of batch element n sees key j.
  bool sees(int64_t n, int64_t i, int64_t j) const {
    if (causal && j > i)
      return false;
    if (!mask)
      return true;
    Shape index(batchShape.size() + 1);
    for (int64_t a = batchShape.size() - 1, rest = n; a >= 0; --a) {
      index[a] = rest % batchShape[a];
      rest /= batchShape[a];
    }
    index.back() = j;
    return mask->data[broadcastOffset(index, mask->shape)] != 0;
  }
  double q(int64_t n, int64_t i, int64_t c) const {
    return query.data[(n * tq + i) * d + c];
  }
  double k(int64_t n, int64_t j, int64_t c) const {
    return key.data[(n * tk + j) * d + c];
  }
  double v(int64_t n, int64_t j, int64_t c) const {
    return value.data[(n * tk + j) * dv + c];
  }

  template <typename Fn> void forEachQuery(Fn fn) const {
    std::vector<double> s(tk);
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < tq; ++i) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < tk; ++j) {
          s[j] = -INFINITY;
          if (!sees(n, i, j))
            continue;
          double dot = 0;
          for (int64_t c = 0; c < d; ++c)
            dot += q(n, i, c) * k(n, j, c);
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) {
          // No key to see: output 0, log-sum-exp +inf.
          std::fill(s.begin(), s.end(), 0.0);
          fn(n, i, ArrayRef<double>(s), INFINITY);
          continue;
        }
        for (int64_t j = 0; j < tk; ++j)
          sum += std::exp(s[j] - mx);
        for (int64_t j = 0; j < tk; ++j)
          s[j] = std::exp(s[j] - mx) / sum;
        fn(n, i, ArrayRef<double>(s), mx + std::log(sum));
      }
  }
};

/// The mean and 1 / sqrt(biased variance + eps) of one lane of `x`.
std::pair<double, double> laneStats(const RefTensor &x, ArrayRef<int64_t> lane,
                                    double eps) {
  double mean = 0, var = 0;
  for (int64_t o : lane)
    mean += x.data[o];
  mean /= lane.size();
  for (int64_t o : lane)
    var += (x.data[o] - mean) * (x.data[o] - mean);
  var /= lane.size();
  return {mean, 1 / std::sqrt(var + eps)};
}

RefTensor unary(const RefTensor &a, llvm::function_ref<double(double)> fn) {
  RefTensor r = a;
  for (double &x : r.data)
    x = fn(x);
  return r;
}

/// Applies `fn(offsets of one lane)` along `axis`: every (outer, inner) lane.
template <typename Fn>
void forEachLane(ArrayRef<int64_t> shape, int64_t axis, Fn fn) {
  int64_t outer = 1, inner = 1, n = shape[axis];
  for (int64_t i = 0; i < axis; ++i)
    outer *= shape[i];
  for (size_t i = axis + 1; i < shape.size(); ++i)
    inner *= shape[i];
  std::vector<int64_t> lane(n);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      for (int64_t k = 0; k < n; ++k)
        lane[k] = (o * n + k) * inner + in;
      fn(lane);
    }
}

RefTensor reduce(const RefTensor &x, ArrayRef<int64_t> axes,
                 ArrayRef<int64_t> out, double init,
                 double (*fn)(double, double)) {
  // Reduce into the keepdims shape, then reinterpret as `out`.
  Shape keep(x.shape);
  for (int64_t a : axes)
    keep[a] = 1;
  RefTensor r(keep, init);
  forEachIndex(x.shape, [&](ArrayRef<int64_t> idx, int64_t i) {
    double &acc = r.data[broadcastOffset(idx, keep)];
    acc = fn(acc, x.data[i]);
  });
  r.shape.assign(out.begin(), out.end());
  return r;
}

double scalarOf(const RefTensor &t, int64_t i) { return t.data[i]; }

/// The epilogue activation of the fused ops.
double activate(ActivationKind activation, double v) {
  switch (activation) {
  case ActivationKind::none:
    return v;
  case ActivationKind::relu:
    return v > 0 ? v : 0;
  case ActivationKind::sigmoid:
    return 1 / (1 + std::exp(-v));
  case ActivationKind::tanh:
    return std::tanh(v);
  case ActivationKind::gelu:
    return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  }
  llvm_unreachable("unknown ActivationKind");
}

/// Geometry of a 2-D window op over NCHW.
struct Window {
  int64_t kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;
};

/// Calls fn(n, c?, oh, ow, ih, iw) for every input position a window of output
/// position (oh, ow) reads (inside the unpadded input).
template <typename Fn>
void forEachWindowTap(int64_t oh, int64_t ow, const Window &w, int64_t h,
                      int64_t wd, Fn fn) {
  for (int64_t i = 0; i < w.kh; ++i)
    for (int64_t j = 0; j < w.kw; ++j) {
      int64_t ih = oh * w.sh + i * w.dh - w.ph,
              iw = ow * w.sw + j * w.dw - w.pw;
      if (ih >= 0 && ih < h && iw >= 0 && iw < wd)
        fn(i, j, ih, iw);
    }
}

/// conv2d forward (mode 0), or its gradients: input (1), filter (2). All three
/// loop over the same (n, o, oh, ow, c, kh, kw) nest.
void convolve(int mode, RefTensor &x, RefTensor &w, RefTensor &y,
              ArrayRef<int64_t> s, ArrayRef<int64_t> p, ArrayRef<int64_t> d) {
  int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  int64_t o = w.shape[0], kh = w.shape[2], kw = w.shape[3];
  int64_t oh = y.shape[2], ow = y.shape[3];
  Window win{kh, kw, s[0], s[1], p[0], p[1], d[0], d[1]};
  for (int64_t b = 0; b < n; ++b)
    for (int64_t f = 0; f < o; ++f)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double &out = y.data[((b * o + f) * oh + i) * ow + j];
          for (int64_t ch = 0; ch < c; ++ch)
            forEachWindowTap(i, j, win, h, wd,
                             [&](int64_t a, int64_t e, int64_t ih, int64_t iw) {
                               double &xv =
                                   x.data[((b * c + ch) * h + ih) * wd + iw];
                               double &wv =
                                   w.data[((f * c + ch) * kh + a) * kw + e];
                               if (mode == 0)
                                 out += xv * wv;
                               else if (mode == 1)
                                 xv += out * wv;
                               else
                                 wv += out * xv;
                             });
        }
}

/// max_pool2d (y = output) or its gradient (dx from dy), and avg_pool2d's.
void pool(bool isMax, bool backward, const RefTensor &x, RefTensor &y,
          RefTensor *dx, const RefTensor *dy, ArrayRef<int64_t> k,
          ArrayRef<int64_t> s, ArrayRef<int64_t> p) {
  int64_t nc = y.shape[0] * y.shape[1], oh = y.shape[2], ow = y.shape[3];
  int64_t h = x.shape[2], wd = x.shape[3];
  Window win{k[0], k[1], s[0], s[1], p[0], p[1]};
  for (int64_t b = 0; b < nc; ++b)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        int64_t o = (b * oh + i) * ow + j;
        double acc = isMax ? -INFINITY : 0;
        forEachWindowTap(i, j, win, h, wd,
                         [&](int64_t, int64_t, int64_t ih, int64_t iw) {
                           double v = x.data[(b * h + ih) * wd + iw];
                           acc = isMax ? std::max(acc, v) : acc + v;
                         });
        if (!isMax)
          acc /= double(k[0] * k[1]);
        if (!backward) {
          y.data[o] = acc;
          continue;
        }
        forEachWindowTap(i, j, win, h, wd,
                         [&](int64_t, int64_t, int64_t ih, int64_t iw) {
                           int64_t at = (b * h + ih) * wd + iw;
                           if (!isMax)
                             dx->data[at] += dy->data[o] / double(k[0] * k[1]);
                           else if (x.data[at] == acc)
                             dx->data[at] += dy->data[o];
                         });
      }
}

} // namespace

/// Step `t` of `x` along `axis` (the axis removed).
static RefTensor sliceAt(const RefTensor &x, int64_t axis, int64_t t) {
  int64_t outer = RefTensor::numElements(ArrayRef(x.shape).take_front(axis));
  int64_t inner =
      RefTensor::numElements(ArrayRef(x.shape).drop_front(axis + 1));
  int64_t steps = x.shape[axis];
  SmallVector<int64_t> shape(x.shape.begin(), x.shape.end());
  shape.erase(shape.begin() + axis);
  RefTensor r(shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      r.data[o * inner + i] = x.data[(o * steps + t) * inner + i];
  return r;
}

/// Writes `slice` as step `t` of `y` along `axis`.
static void placeAt(RefTensor &y, const RefTensor &slice, int64_t axis,
                    int64_t t) {
  int64_t outer = RefTensor::numElements(ArrayRef(y.shape).take_front(axis));
  int64_t inner =
      RefTensor::numElements(ArrayRef(y.shape).drop_front(axis + 1));
  int64_t steps = y.shape[axis];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      y.data[(o * steps + t) * inner + i] = slice.data[o * inner + i];
}

/// Copies `size` steps along `axis` from `x` (starting at `from`) into `y`
/// (starting at `to`); the other dimensions of `x` and `y` are equal.
static void copySteps(const RefTensor &x, int64_t from, RefTensor &y,
                      int64_t to, int64_t size, int64_t axis) {
  int64_t outer = RefTensor::numElements(ArrayRef(x.shape).take_front(axis));
  int64_t inner =
      RefTensor::numElements(ArrayRef(x.shape).drop_front(axis + 1));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t t = 0; t < size; ++t)
      for (int64_t i = 0; i < inner; ++i)
        y.data[(o * y.shape[axis] + to + t) * inner + i] =
            x.data[(o * x.shape[axis] + from + t) * inner + i];
}

/// Runs the ops of `block` on `args` (one per block argument) and returns
/// what its terminator (func.return, or kiln.yield in a scan body) returns.
static FailureOr<SmallVector<RefTensor>>
evaluateBlock(Block &block, ArrayRef<RefTensor> args,
              const llvm::StringMap<RefTensor> *params) {
  llvm::DenseMap<Value, RefTensor> env;
  for (auto [arg, value] : llvm::zip(block.getArguments(), args))
    env[arg] = value;

  for (Operation &op : block) {
    auto in = [&](unsigned i) -> const RefTensor & {
      return env[op.getOperand(i)];
    };
    // An attention (or its backward op) on q, k, v (operands 0-2), whose
    // optional key mask and hyper vector follow from operand `optional`.
    auto attentionRef = [&](auto a, unsigned optional) {
      unsigned hyper = optional + (a.getKeyMask() ? 1 : 0);
      AttentionRef ref(in(0), in(1), in(2),
                       a.getKeyMask() ? &in(optional) : nullptr,
                       a.getScale().convertToDouble(), a.getCausal());
      ref.setDropout(a.getHyper() ? &in(hyper) : nullptr,
                     a.getDropout().convertToDouble(), a.getSalt());
      return ref;
    };
    Shape out = op.getNumResults() ? shapeOf(op.getResult(0)) : Shape();
    LogicalResult ok = success();
    SmallVector<RefTensor> results;
    llvm::TypeSwitch<Operation *>(&op)
        .Case<func::ReturnOp, YieldOp>([&](Operation *terminator) {
          for (Value v : terminator->getOperands())
            results.push_back(env[v]);
        })
        .Case([&](ScanOp scan) {
          // The body once per step, carries threaded through, slices of the
          // sequences in and of the stacked outputs out.
          int64_t axis = scan.getAxis(), length = scan.getLength();
          size_t numCarries = scan.getCarries().size();
          SmallVector<RefTensor> carries, stacked;
          for (Value c : scan.getCarries())
            carries.push_back(env[c]);
          for (Value y : scan.getStacked())
            stacked.emplace_back(shapeOf(y));
          for (int64_t s = 0; s < length; ++s) {
            int64_t t = scan.getReverse() ? length - 1 - s : s;
            SmallVector<RefTensor> stepArgs(carries);
            for (Value x : scan.getXs())
              stepArgs.push_back(sliceAt(env[x], axis, t));
            for (Value c : scan.getConsts())
              stepArgs.push_back(env[c]);
            FailureOr<SmallVector<RefTensor>> step =
                evaluateBlock(scan.getBody().front(), stepArgs, params);
            if (failed(step)) {
              ok = failure();
              return;
            }
            for (size_t i = 0; i < numCarries; ++i)
              carries[i] = std::move((*step)[i]);
            for (size_t i = 0; i < stacked.size(); ++i)
              placeAt(stacked[i], (*step)[numCarries + i], axis, t);
          }
          results = std::move(carries);
          llvm::append_range(results, stacked);
        })
        .Case([&](ConstantOp c) {
          RefTensor r(out);
          auto attr = cast<DenseElementsAttr>(c.getValue());
          int64_t i = 0;
          if (isa<FloatType>(attr.getElementType())) {
            for (APFloat v : attr.getValues<APFloat>())
              r.data[i++] = v.convertToDouble();
          } else {
            for (APInt v : attr.getValues<APInt>())
              r.data[i++] = static_cast<double>(v.getSExtValue());
          }
          if (attr.isSplat())
            std::fill(r.data.begin(), r.data.end(), r.data[0]);
          results.push_back(std::move(r));
        })
        .Case([&](LoadParamOp p) {
          if (!params || !params->count(p.getParam())) {
            ok = p.emitError("reference evaluation: no value for parameter ")
                 << p.getParam();
            return;
          }
          results.push_back(params->lookup(p.getParam()));
        })
        .Case([&](AddOp) {
          results.push_back(binary(in(0), in(1), out,
                                   [](double a, double b) { return a + b; }));
        })
        .Case([&](SubOp) {
          results.push_back(binary(in(0), in(1), out,
                                   [](double a, double b) { return a - b; }));
        })
        .Case([&](MulOp) {
          results.push_back(binary(in(0), in(1), out,
                                   [](double a, double b) { return a * b; }));
        })
        .Case([&](DivOp) {
          results.push_back(binary(in(0), in(1), out,
                                   [](double a, double b) { return a / b; }));
        })
        .Case([&](MaximumOp) {
          results.push_back(binary(in(0), in(1), out, [](double a, double b) {
            return std::max(a, b);
          }));
        })
        .Case([&](MinimumOp) {
          results.push_back(binary(in(0), in(1), out, [](double a, double b) {
            return std::min(a, b);
          }));
        })
        .Case([&](GreaterOp) {
          results.push_back(binary(in(0), in(1), out, [](double a, double b) {
            return a > b ? 1.0 : 0.0;
          }));
        })
        .Case([&](NegOp) {
          results.push_back(unary(in(0), [](double x) { return -x; }));
        })
        .Case([&](ReluOp) {
          results.push_back(
              unary(in(0), [](double x) { return x > 0 ? x : 0.0; }));
        })
        .Case([&](LeakyReluOp op) {
          double slope = op.getSlope().convertToDouble();
          results.push_back(unary(
              in(0), [slope](double x) { return x > 0 ? x : slope * x; }));
        })
        .Case([&](SigmoidOp) {
          results.push_back(
              unary(in(0), [](double x) { return 1 / (1 + std::exp(-x)); }));
        })
        .Case([&](SoftplusOp) {
          results.push_back(unary(in(0), [](double x) {
            return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
          }));
        })
        .Case([&](TanhOp) {
          results.push_back(
              unary(in(0), [](double x) { return std::tanh(x); }));
        })
        .Case([&](ExpOp) {
          results.push_back(unary(in(0), [](double x) { return std::exp(x); }));
        })
        .Case([&](LogOp) {
          results.push_back(unary(in(0), [](double x) { return std::log(x); }));
        })
        .Case([&](SqrtOp) {
          results.push_back(
              unary(in(0), [](double x) { return std::sqrt(x); }));
        })
        .Case([&](AbsOp) {
          results.push_back(
              unary(in(0), [](double x) { return std::fabs(x); }));
        })
        .Case([&](CastOp c) {
          // Values are doubles here: only a narrowing to f32 changes them.
          RefTensor r = in(0);
          if (c.getType().getElementType().isF32())
            for (double &x : r.data)
              x = static_cast<float>(x);
          results.push_back(std::move(r));
        })
        .Case([&](GeluOp) {
          results.push_back(unary(in(0), [](double x) {
            return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
          }));
        })
        .Case([&](GeluDerivativeOp) {
          results.push_back(unary(in(0), [](double x) {
            return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) +
                   x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
          }));
        })
        .Case([&](MatmulOp) {
          const RefTensor &a = in(0), &b = in(1);
          int64_t m = a.shape[a.shape.size() - 2], k = a.shape.back(),
                  n = b.shape.back();
          RefTensor r(out);
          Shape batch(out.begin(), out.end() - 2);
          Shape aBatch(a.shape.begin(), a.shape.end() - 2),
              bBatch(b.shape.begin(), b.shape.end() - 2);
          forEachIndex(batch, [&](ArrayRef<int64_t> idx, int64_t bi) {
            int64_t ao = broadcastOffset(idx, aBatch) * m * k;
            int64_t bo = broadcastOffset(idx, bBatch) * k * n;
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) {
                double acc = 0;
                for (int64_t p = 0; p < k; ++p)
                  acc += a.data[ao + i * k + p] * b.data[bo + p * n + j];
                r.data[bi * m * n + i * n + j] = acc;
              }
          });
          results.push_back(std::move(r));
        })
        .Case([&](AttentionOp a) {
          AttentionRef ref = attentionRef(a, 3);
          RefTensor o(shapeOf(a.getOut())), lse(shapeOf(a.getLse()));
          ref.forEachQuery([&](int64_t n, int64_t i,
                               ArrayRef<double> probabilities, double logSum) {
            lse.data[n * ref.tq + i] = logSum;
            double *row = &o.data[(n * ref.tq + i) * ref.dv];
            for (int64_t j = 0; j < ref.tk; ++j) {
              double p = probabilities[j] * ref.keep(n, i, j);
              for (int64_t c = 0; c < ref.dv; ++c)
                row[c] += p * ref.v(n, j, c);
            }
          });
          results.push_back(std::move(o));
          results.push_back(std::move(lse));
        })
        .Case([&](AttentionBackwardOp a) {
          AttentionRef ref = attentionRef(a, 7);
          const RefTensor &o = in(3), &dout = in(5), &dlse = in(6);
          RefTensor dq(in(0).shape), dk(in(1).shape), dv(in(2).shape);
          ref.forEachQuery([&](int64_t n, int64_t i,
                               ArrayRef<double> probabilities, double) {
            int64_t row = n * ref.tq + i;
            const double *g = &dout.data[row * ref.dv];
            // D_i = dout_i . out_i - dlse_i; ds_ij = p_ij (dout_i . v_j - D_i)
            double delta = -dlse.data[row];
            for (int64_t c = 0; c < ref.dv; ++c)
              delta += g[c] * o.data[row * ref.dv + c];
            for (int64_t j = 0; j < ref.tk; ++j) {
              double p = probabilities[j], dp = 0;
              if (p == 0)
                continue;
              // dropout: out reads p * keep; the gradient of p is keep * dp.
              double keep = ref.keep(n, i, j);
              for (int64_t c = 0; c < ref.dv; ++c) {
                dp += g[c] * ref.v(n, j, c);
                dv.data[(n * ref.tk + j) * ref.dv + c] += p * keep * g[c];
              }
              double ds = p * (keep * dp - delta) * ref.scale;
              for (int64_t c = 0; c < ref.d; ++c) {
                dq.data[row * ref.d + c] += ds * ref.k(n, j, c);
                dk.data[(n * ref.tk + j) * ref.d + c] += ds * ref.q(n, i, c);
              }
            }
          });
          results.push_back(std::move(dq));
          results.push_back(std::move(dk));
          results.push_back(std::move(dv));
        })
        .Case([&](LayerNormOp op) {
          RefTensor y = in(0);
          double eps = op.getEps().convertToDouble();
          forEachLane(y.shape, y.shape.size() - 1, [&](ArrayRef<int64_t> lane) {
            auto [mean, rstd] = laneStats(y, lane, eps);
            for (int64_t o : lane)
              y.data[o] = (y.data[o] - mean) * rstd;
          });
          results.push_back(std::move(y));
        })
        .Case([&](LayerNormBackwardOp op) {
          const RefTensor &x = in(0), &g = in(1);
          RefTensor dx(x.shape);
          double eps = op.getEps().convertToDouble();
          forEachLane(x.shape, x.shape.size() - 1, [&](ArrayRef<int64_t> lane) {
            auto [mean, rstd] = laneStats(x, lane, eps);
            double sumG = 0, sumGY = 0, n = lane.size();
            for (int64_t o : lane) {
              sumG += g.data[o];
              sumGY += g.data[o] * (x.data[o] - mean) * rstd;
            }
            for (int64_t o : lane) {
              double y = (x.data[o] - mean) * rstd;
              dx.data[o] = rstd * (g.data[o] - sumG / n - y * sumGY / n);
            }
          });
          results.push_back(std::move(dx));
        })
        .Case<SoftmaxOp, LogSoftmaxOp>([&](auto s) {
          bool isLog = isa<LogSoftmaxOp>(s.getOperation());
          RefTensor r = in(0);
          forEachLane(r.shape, s.getAxis(), [&](ArrayRef<int64_t> lane) {
            double mx = -INFINITY, sum = 0;
            for (int64_t o : lane)
              mx = std::max(mx, r.data[o]);
            for (int64_t o : lane)
              sum += std::exp(r.data[o] - mx);
            for (int64_t o : lane)
              r.data[o] = isLog ? r.data[o] - mx - std::log(sum)
                                : std::exp(r.data[o] - mx) / sum;
          });
          results.push_back(std::move(r));
        })
        .Case([&](ReduceSumOp s) {
          results.push_back(reduce(in(0), s.getAxes(), out, 0,
                                   [](double a, double b) { return a + b; }));
        })
        .Case([&](ReduceMeanOp s) {
          RefTensor r = reduce(in(0), s.getAxes(), out, 0,
                               [](double a, double b) { return a + b; });
          double count = double(in(0).size()) / std::max<int64_t>(r.size(), 1);
          for (double &x : r.data)
            x /= count;
          results.push_back(std::move(r));
        })
        .Case([&](ReduceMaxOp s) {
          results.push_back(
              reduce(in(0), s.getAxes(), out, -INFINITY,
                     [](double a, double b) { return std::max(a, b); }));
        })
        .Case([&](ArgmaxOp s) {
          const RefTensor &x = in(0);
          RefTensor r(out);
          int64_t next = 0;
          // Lanes are visited in row-major order of the remaining dims.
          std::vector<std::pair<int64_t, double>> best;
          Shape keep(x.shape);
          keep[s.getAxis()] = 1;
          RefTensor idx(keep, -1), val(keep, -INFINITY);
          forEachIndex(x.shape, [&](ArrayRef<int64_t> i, int64_t lin) {
            int64_t o = broadcastOffset(i, keep);
            if (x.data[lin] > val.data[o]) {
              val.data[o] = x.data[lin];
              idx.data[o] = static_cast<double>(i[s.getAxis()]);
            }
          });
          (void)next;
          r.data = idx.data;
          results.push_back(std::move(r));
        })
        .Case([&](ReshapeOp) {
          RefTensor r = in(0);
          r.shape = out;
          results.push_back(std::move(r));
        })
        .Case([&](TransposeOp t) {
          const RefTensor &x = in(0);
          RefTensor r(out);
          Shape xs = stridesOf(x.shape);
          ArrayRef<int64_t> perm = t.getPerm();
          forEachIndex(out, [&](ArrayRef<int64_t> idx, int64_t i) {
            int64_t o = 0;
            for (size_t d = 0; d < perm.size(); ++d)
              o += idx[d] * xs[perm[d]];
            r.data[i] = x.data[o];
          });
          results.push_back(std::move(r));
        })
        .Case([&](SplitOp s) {
          int64_t offset = 0;
          for (auto [piece, size] : llvm::zip(s.getResults(), s.getSizes())) {
            RefTensor r(shapeOf(piece));
            copySteps(in(0), offset, r, 0, size, s.getAxis());
            offset += size;
            results.push_back(std::move(r));
          }
        })
        .Case([&](ConcatOp c) {
          RefTensor r(out);
          int64_t offset = 0;
          for (unsigned i = 0; i < c.getInputs().size(); ++i) {
            int64_t size = in(i).shape[c.getAxis()];
            copySteps(in(i), 0, r, offset, size, c.getAxis());
            offset += size;
          }
          results.push_back(std::move(r));
        })
        .Case([&](BroadcastToOp) {
          const RefTensor &x = in(0);
          RefTensor r(out);
          forEachIndex(out, [&](ArrayRef<int64_t> idx, int64_t i) {
            r.data[i] = x.data[broadcastOffset(idx, x.shape)];
          });
          results.push_back(std::move(r));
        })
        .Case([&](GatherOp) {
          const RefTensor &table = in(0), &ids = in(1);
          RefTensor r(out);
          int64_t v = table.shape[0], d = table.shape[1];
          for (int64_t n = 0; n < out[0]; ++n) {
            int64_t id = static_cast<int64_t>(ids.data[n]);
            if (id >= 0 && id < v)
              for (int64_t j = 0; j < d; ++j)
                r.data[n * d + j] = table.data[id * d + j];
          }
          results.push_back(std::move(r));
        })
        .Case([&](ScatterAddOp) {
          const RefTensor &ids = in(0), &updates = in(1);
          RefTensor r(out);
          int64_t v = out[0], d = out[1];
          for (int64_t n = 0; n < updates.shape[0]; ++n) {
            int64_t id = static_cast<int64_t>(ids.data[n]);
            if (id >= 0 && id < v)
              for (int64_t j = 0; j < d; ++j)
                r.data[id * d + j] += updates.data[n * d + j];
          }
          results.push_back(std::move(r));
        })
        .Case([&](OneHotOp) {
          const RefTensor &labels = in(0);
          RefTensor r(out);
          int64_t c = out[1];
          for (int64_t n = 0; n < out[0]; ++n) {
            int64_t l = static_cast<int64_t>(labels.data[n]);
            if (l >= 0 && l < c)
              r.data[n * c + l] = 1;
          }
          results.push_back(std::move(r));
        })
        .Case([&](CrossEntropyOp ce) {
          const RefTensor &x = in(0), &labels = in(1);
          int64_t n = x.shape[0], c = x.shape[1];
          std::optional<int64_t> ignore;
          if (auto attr = ce.getIgnoreIndexAttr())
            ignore = attr.getInt();
          double total = 0;
          int64_t counted = 0;
          for (int64_t i = 0; i < n; ++i) {
            if (ignore && static_cast<int64_t>(labels.data[i]) == *ignore)
              continue;
            ++counted;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < c; ++j)
              mx = std::max(mx, x.data[i * c + j]);
            for (int64_t j = 0; j < c; ++j)
              sum += std::exp(x.data[i * c + j] - mx);
            int64_t l = static_cast<int64_t>(labels.data[i]);
            total += mx + std::log(sum) - x.data[i * c + l];
          }
          RefTensor r(out);
          r.data[0] = ignore ? total / double(std::max<int64_t>(counted, 1))
                             : total / double(n);
          results.push_back(std::move(r));
        })
        .Case([&](MseOp) {
          const RefTensor &a = in(0), &b = in(1);
          double total = 0;
          for (int64_t i = 0; i < a.size(); ++i)
            total += (a.data[i] - b.data[i]) * (a.data[i] - b.data[i]);
          RefTensor r(out);
          r.data[0] = total / a.size();
          results.push_back(std::move(r));
        })
        .Case([&](BceWithLogitsOp) {
          const RefTensor &x = in(0), &t = in(1);
          double total = 0;
          for (int64_t i = 0; i < x.size(); ++i) {
            double v = x.data[i];
            total += std::max(v, 0.0) - v * t.data[i] +
                     std::log1p(std::exp(-std::fabs(v)));
          }
          RefTensor r(out);
          r.data[0] = total / x.size();
          results.push_back(std::move(r));
        })
        .Case([&](Conv2dOp c) {
          RefTensor x = in(0), w = in(1), y(out);
          convolve(0, x, w, y, c.getStrides(), c.getPadding(), c.getDilation());
          results.push_back(std::move(y));
        })
        .Case([&](Conv2dBackwardInputOp c) {
          RefTensor dx(out), w = in(1), g = in(0);
          convolve(1, dx, w, g, c.getStrides(), c.getPadding(),
                   c.getDilation());
          results.push_back(std::move(dx));
        })
        .Case([&](Conv2dBackwardFilterOp c) {
          RefTensor x = in(0), dw(out), g = in(1);
          convolve(2, x, dw, g, c.getStrides(), c.getPadding(),
                   c.getDilation());
          results.push_back(std::move(dw));
        })
        .Case<MaxPool2dOp, AvgPool2dOp>([&](auto p) {
          RefTensor y(out);
          pool(isa<MaxPool2dOp>(p.getOperation()), false, in(0), y, nullptr,
               nullptr, p.getKernel(), p.getStrides(), p.getPadding());
          results.push_back(std::move(y));
        })
        .Case([&](MaxPool2dBackwardOp p) {
          RefTensor y = in(1), dx(out);
          pool(true, true, in(0), y, &dx, &in(2), p.getKernel(), p.getStrides(),
               p.getPadding());
          results.push_back(std::move(dx));
        })
        .Case([&](AvgPool2dBackwardOp p) {
          RefTensor x(out), y = in(0), dx(out);
          pool(false, true, x, y, &dx, &in(0), p.getKernel(), p.getStrides(),
               p.getPadding());
          results.push_back(std::move(dx));
        })
        .Case([&](FusedConv2dOp f) {
          RefTensor x = in(0), w = in(1);
          // The convolution's shape (before any pooling).
          std::string error;
          Shape convShape =
              *shape::conv2d(x.shape, w.shape, f.getStrides(), f.getPadding(),
                             f.getDilation(), error);
          RefTensor y(convShape);
          convolve(0, x, w, y, f.getStrides(), f.getPadding(), f.getDilation());
          int64_t plane = convShape[2] * convShape[3];
          for (int64_t i = 0; i < y.size(); ++i) {
            double v = y.data[i];
            if (f.getBias())
              v += in(2).data[(i / plane) % convShape[1]];
            y.data[i] = activate(f.getActivation(), v);
          }
          bool isMax = false;
          switch (f.getPool()) {
          case PoolKind::none:
            results.push_back(std::move(y));
            return;
          case PoolKind::max:
            isMax = true;
            break;
          case PoolKind::avg:
            break;
          }
          RefTensor pooled(out);
          pool(isMax, false, y, pooled, nullptr, nullptr, f.getPoolKernel(),
               f.getPoolStrides(), f.getPoolPadding());
          results.push_back(std::move(pooled));
          if (f.getActivationOut())
            results.push_back(std::move(y));
        })
        .Case([&](FusedDenseOp f) {
          const RefTensor &x = in(0), &w = in(1), &bias = in(2);
          int64_t m = x.shape[0], k = x.shape[1], n = w.shape[1];
          RefTensor r(out);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double v = bias.data[j];
              for (int64_t p = 0; p < k; ++p)
                v += x.data[i * k + p] * w.data[p * n + j];
              r.data[i * n + j] = activate(f.getActivation(), v);
            }
          results.push_back(std::move(r));
        })
        .Case([&](DropoutOp d) {
          RefTensor r = in(0);
          if (d.getHyper()) {
            const RefTensor &h = in(1);
            double rate = d.getRate().convertToDouble();
            uint32_t key = randomKey(uint32_t(h.data[KILN_HYPER_STEP]),
                                     uint32_t(h.data[KILN_HYPER_SEED]),
                                     uint32_t(d.getSalt()));
            if (d.getStep())
              key = randomStepKey(key,
                                  uint32_t(int32_t(env[d.getStep()].data[0])));
            uint32_t base =
                randomShardBase(uint32_t(h.data[KILN_HYPER_SHARD]), r.size());
            for (int64_t i = 0; i < r.size(); ++i)
              r.data[i] = randomUniform(key, base + uint32_t(i)) < rate
                              ? 0.0
                              : r.data[i] / (1 - rate);
          }
          results.push_back(std::move(r));
        })
        .Case<RandomUniformOp, RandomNormalOp>([&](auto op) {
          // Without a hyper vector (in @forward), step and seed are 0.
          uint32_t step = 0, seed = 0, shard = 0;
          if (op.getHyper()) {
            const RefTensor &h = in(0);
            step = uint32_t(h.data[KILN_HYPER_STEP]);
            seed = uint32_t(h.data[KILN_HYPER_SEED]);
            shard = uint32_t(h.data[KILN_HYPER_SHARD]);
          }
          uint32_t key = randomKey(step, seed, uint32_t(op.getSalt()));
          RefTensor r(op.getType().getShape());
          uint32_t base = randomShardBase(shard, r.size());
          constexpr bool normal = std::is_same_v<decltype(op), RandomNormalOp>;
          for (int64_t i = 0; i < r.size(); ++i)
            r.data[i] = normal ? randomNormal(key, base + uint32_t(i))
                               : double(randomUniform(key, base + uint32_t(i)));
          results.push_back(std::move(r));
        })
        .Case([&](WarmupOp w) {
          double v = 1;
          if (w.getHyper())
            v = std::min(1.0, double(in(0).data[KILN_HYPER_STEP]) /
                                  double(w.getSteps()));
          results.push_back(RefTensor({}, v));
        })
        .Case([&](IfTrainingOp) { results.push_back(in(0)); })
        .Case([&](AssignParamOp) {})
        .Case([&](SgdUpdateOp u) {
          const RefTensor &p = in(0), &g = in(1), &h = in(2);
          double lr = scalarOf(h, KILN_HYPER_LR),
                 wd = u.getWeightDecay().convertToDouble();
          RefTensor r = p;
          for (int64_t i = 0; i < p.size(); ++i)
            r.data[i] = p.data[i] - lr * (g.data[i] + wd * p.data[i]);
          results.push_back(std::move(r));
        })
        .Case([&](MomentumUpdateOp u) {
          const RefTensor &p = in(0), &g = in(1), &v = in(2), &h = in(3);
          double lr = scalarOf(h, KILN_HYPER_LR),
                 mu = u.getMomentum().convertToDouble(),
                 wd = u.getWeightDecay().convertToDouble();
          RefTensor np = p, nv = v;
          for (int64_t i = 0; i < p.size(); ++i) {
            double gi = g.data[i] + wd * p.data[i];
            nv.data[i] = mu * v.data[i] + gi;
            double d = u.getNesterov() ? gi + mu * nv.data[i] : nv.data[i];
            np.data[i] = p.data[i] - lr * d;
          }
          results.push_back(std::move(np));
          results.push_back(std::move(nv));
        })
        .Case([&](AdamUpdateOp u) {
          const RefTensor &p = in(0), &g = in(1), &m = in(2), &v = in(3),
                          &h = in(4);
          double lr = scalarOf(h, KILN_HYPER_LR),
                 t = scalarOf(h, KILN_HYPER_STEP);
          double b1 = u.getBeta1().convertToDouble(),
                 b2 = u.getBeta2().convertToDouble(),
                 eps = u.getEps().convertToDouble(),
                 wd = u.getWeightDecay().convertToDouble();
          RefTensor np = p, nm = m, nv = v;
          for (int64_t i = 0; i < p.size(); ++i) {
            double pi = p.data[i], gi = g.data[i];
            if (u.getDecoupled())
              pi *= 1 - lr * wd;
            else
              gi += wd * pi;
            nm.data[i] = b1 * m.data[i] + (1 - b1) * gi;
            nv.data[i] = b2 * v.data[i] + (1 - b2) * gi * gi;
            double mhat = nm.data[i] / (1 - std::pow(b1, t));
            double vhat = nv.data[i] / (1 - std::pow(b2, t));
            np.data[i] = pi - lr * mhat / (std::sqrt(vhat) + eps);
          }
          results.push_back(std::move(np));
          results.push_back(std::move(nm));
          results.push_back(std::move(nv));
        })
        .Default([&](Operation *other) {
          // Ops with regions are evaluated only once they have a case here
          // (as kiln.scan); anything else is refused, never skipped.
          ok = other->emitError("reference evaluation: unsupported op '")
               << other->getName() << "'"
               << (other->getNumRegions() ? " (an op with regions)" : "");
        });
    if (failed(ok))
      return failure();
    if (op.hasTrait<OpTrait::IsTerminator>())
      return results;
    for (auto [res, value] : llvm::zip(op.getResults(), results))
      env[res] = std::move(value);
  }
  return block.getParentOp()->emitError(
      "reference evaluation: a block without a terminator");
}

FailureOr<SmallVector<RefTensor>>
kiln::evaluate(func::FuncOp func, ArrayRef<RefTensor> args,
               const llvm::StringMap<RefTensor> *params) {
  if (args.size() != func.getNumArguments())
    return func.emitError("reference evaluation: expected ")
           << func.getNumArguments() << " arguments, got " << args.size();
  for (auto [arg, value] : llvm::zip(func.getArguments(), args))
    if (ArrayRef<int64_t>(value.shape) != ArrayRef<int64_t>(shapeOf(arg)))
      return func.emitError("reference evaluation: argument shape mismatch");
  return evaluateBlock(func.getBody().front(), args, params);
}
