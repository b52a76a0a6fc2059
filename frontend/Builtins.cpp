//===- Builtins.cpp - The builtin table and builtin calls -----------------===//
//
// Each builtin is one entry of getBuiltins(). A tensor op's entry is made by a
// category template that knows how to bind the category's arguments, check
// them with ir/ShapeRules.h (so that users see the same rule as the op's
// verifier, phrased for the DSL) and build the op:
//
//   unary<ReluOp>("relu")                      f(x), elementwise
//   unary<LeakyReluOp>("leaky_relu", {{"slope", 0.01}})
//                                              f(x, slope = 0.01): each named
//                                              float argument becomes the op's
//                                              F64 attribute of the same name
//   broadcasting<MaximumOp>("maximum")         f(a, b), NumPy broadcasting
//   axisOp<SoftmaxOp>("softmax")               f(x, axis = -1)
//   reduction<ReduceSumOp>("sum")              f(x, axis = all, keepdims)
//   pairLoss<MseOp>("mse", "prediction, target")
//   pool<MaxPool2dOp>("max_pool2d")            f(x, kernel, stride, padding)
//
// Builtins with a shape of their own (conv2d, reshape, batch_norm, ...) are
// entries with a signature and a function. Initializers and optimizers are
// the contract's (runtime/Contract.h); evalInitializer resolves a param's.
//
//===----------------------------------------------------------------------===//

#include "frontend/Builtins.h"

#include "ir/ShapeRules.h"
#include "runtime/Contract.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <sstream>

using namespace kiln;
using namespace kiln::ast;
using namespace kiln::sema;
using llvm::SMLoc;
using llvm::StringRef;

//===----------------------------------------------------------------------===//
// BuiltinCall
//===----------------------------------------------------------------------===//

mlir::Value BuiltinCall::tensorArg(unsigned i, bool floatOnly) {
  return e.evalTensor(*arg(i), frame,
                      "argument '" + builtin.params[i] + "' of '" +
                          builtin.name + "'",
                      floatOnly);
}

std::optional<double> BuiltinCall::numberArg(unsigned i, double defaultValue) {
  if (!arg(i))
    return defaultValue;
  return e.evalNumber(*arg(i), frame,
                      "argument '" + builtin.params[i] + "' of '" +
                          builtin.name + "'");
}

std::optional<double> BuiltinCall::positiveArg(unsigned i,
                                               double defaultValue) {
  std::optional<double> value = numberArg(i, defaultValue);
  if (value && !(*value > 0 && std::isfinite(*value))) {
    e.error(arg(i)->getLoc(),
            llvm::formatv("the {0} of '{1}' must be a positive number, got "
                          "{2}",
                          builtin.params[i], builtin.name, *value)
                .str());
    return std::nullopt;
  }
  return value;
}

std::optional<bool> BuiltinCall::boolArg(unsigned i, bool defaultValue) {
  if (!arg(i))
    return defaultValue;
  Value r = e.eval(*arg(i), frame);
  if (r.isPoison())
    return std::nullopt;
  if (r.kind != Value::Kind::Bool) {
    e.error(arg(i)->getLoc(), "'" + builtin.params[i] +
                                  "' must be true or false, got " +
                                  e.describe(r));
    return std::nullopt;
  }
  return r.b;
}

//===----------------------------------------------------------------------===//
// Builtins with a shape of their own
//===----------------------------------------------------------------------===//

namespace {

using ElaborateFn = std::function<Value(BuiltinCall &)>;

/// A builtin with `signature` "x, filter, bias?": parameter names, '?' marking
/// those that may be omitted.
Builtin makeBuiltin(StringRef name, BuiltinKind kind, StringRef signature,
                    ElaborateFn elaborate = {}, bool variadic = false) {
  Builtin b{name, kind, {}, {}, variadic, std::move(elaborate)};
  llvm::SmallVector<StringRef, 8> params;
  signature.split(params, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  for (StringRef p : params) {
    p = p.trim();
    b.optional.push_back(p.consume_back("?"));
    b.params.push_back(p);
  }
  return b;
}

Builtin op(StringRef name, StringRef signature, ElaborateFn elaborate) {
  return makeBuiltin(name, BuiltinKind::Op, signature, std::move(elaborate));
}

/// Takes extra positional arguments (reshape's dimensions, transpose's
/// permutation).
Builtin variadicOp(StringRef name, StringRef signature, ElaborateFn elaborate) {
  return makeBuiltin(name, BuiltinKind::Op, signature, std::move(elaborate),
                     /*variadic=*/true);
}

/// An int argument that sets both dimensions of a 2-D window (`stride = 2`).
std::optional<llvm::SmallVector<int64_t, 2>> evalPair(BuiltinCall &c,
                                                      const Expr *expr,
                                                      const llvm::Twine &what,
                                                      int64_t defaultValue) {
  if (!expr)
    return llvm::SmallVector<int64_t, 2>{defaultValue, defaultValue};
  std::optional<int64_t> v = c.e.evalInt(*expr, c.frame, what);
  if (!v)
    return std::nullopt;
  return llvm::SmallVector<int64_t, 2>{*v, *v};
}

Value elaborateIdentity(BuiltinCall &c) { return c.e.eval(*c.arg(0), c.frame); }

Value elaborateArgmax(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0);
  if (!x)
    return Value::poison();
  std::optional<int64_t> axis = c.e.evalAxis(c.arg(1), c.loc(), c.frame, x, -1);
  if (!axis)
    return Value::poison();
  std::string why;
  if (failed(shape::dropAxis(typeOf(x).getShape(), *axis, why))) {
    c.error(why);
    return Value::poison();
  }
  return Value::tensorOf(
      c.create<ArgmaxOp>(x, c.e.builder.getI64IntegerAttr(*axis)));
}

/// reshape(x, d0, d1, ...) and flatten(x) = reshape(x, N, -1).
Value elaborateReshape(BuiltinCall &c, bool flatten) {
  mlir::Value x = c.tensorArg(0, /*floatOnly=*/false);
  if (!x)
    return Value::poison();
  mlir::RankedTensorType in = typeOf(x);
  llvm::SmallVector<int64_t, 4> target;
  if (flatten) {
    if (in.getShape().empty()) {
      c.error("flatten needs a tensor of rank >= 1, got " + typeStr(in));
      return Value::poison();
    }
    target = {in.getShape()[0], -1};
  } else {
    if (c.bound.extra.empty()) {
      c.error("reshape needs the new dimensions: reshape(x, 64, -1)");
      return Value::poison();
    }
    for (const Expr *e : c.bound.extra) {
      std::optional<int64_t> d =
          c.e.evalInt(*e, c.frame, "a reshape dimension");
      if (!d)
        return Value::poison();
      target.push_back(*d);
    }
  }
  std::string why;
  llvm::FailureOr<shape::Shape> s = shape::reshape(in.getShape(), target, why);
  if (failed(s)) {
    c.error(why);
    return Value::poison();
  }
  return Value::tensorOf(c.create<ReshapeOp>(
      mlir::RankedTensorType::get(*s, in.getElementType()), x));
}

/// transpose(x) swaps the last two dimensions; transpose(x, p0, p1, ...)
/// permutes them.
Value elaborateTranspose(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0, /*floatOnly=*/false);
  if (!x)
    return Value::poison();
  mlir::RankedTensorType in = typeOf(x);
  int64_t rank = in.getRank();
  llvm::SmallVector<int64_t, 4> perm;
  if (c.bound.extra.empty()) {
    if (rank < 2) {
      c.error("transpose without a permutation swaps the last two "
              "dimensions and needs rank >= 2, got " +
              typeStr(in));
      return Value::poison();
    }
    for (int64_t i = 0; i < rank; ++i)
      perm.push_back(i);
    std::swap(perm[rank - 1], perm[rank - 2]);
  } else {
    for (const Expr *e : c.bound.extra) {
      std::optional<int64_t> p =
          c.e.evalInt(*e, c.frame, "a permutation entry");
      if (!p)
        return Value::poison();
      std::string why;
      llvm::FailureOr<int64_t> a = shape::normalizeAxis(*p, rank, why);
      if (failed(a)) {
        c.e.error(e->getLoc(), why);
        return Value::poison();
      }
      perm.push_back(*a);
    }
  }
  std::string why;
  if (failed(shape::transpose(in.getShape(), perm, why))) {
    c.error(why);
    return Value::poison();
  }
  return Value::tensorOf(
      c.create<TransposeOp>(x, c.e.builder.getDenseI64ArrayAttr(perm)));
}

Value elaborateCrossEntropy(BuiltinCall &c) {
  mlir::Value logits = c.tensorArg(0);
  if (!logits)
    return Value::poison();
  mlir::Value labels = c.tensorArg(1, /*floatOnly=*/false);
  if (!labels)
    return Value::poison();
  if (!typeOf(labels).getElementType().isInteger(32)) {
    c.e.error(c.arg(1)->getLoc(), "the labels of 'cross_entropy' must be an "
                                  "i32 tensor of class indices, got " +
                                      typeStr(labels.getType()));
    return Value::poison();
  }
  std::string why;
  if (failed(shape::crossEntropy(typeOf(logits).getShape(),
                                 typeOf(labels).getShape(), why))) {
    c.error(why);
    return Value::poison();
  }
  mlir::IntegerAttr ignore;
  if (c.arg(2)) {
    std::optional<int64_t> v =
        c.e.evalInt(*c.arg(2), c.frame, "'ignore_index'");
    if (!v)
      return Value::poison();
    if (*v < INT32_MIN || *v > INT32_MAX) {
      c.e.error(c.arg(2)->getLoc(),
                "'ignore_index' must be an i32 label value, got " +
                    std::to_string(*v));
      return Value::poison();
    }
    ignore = c.e.builder.getI64IntegerAttr(*v);
  }
  return Value::tensorOf(c.create<CrossEntropyOp>(logits, labels, ignore));
}

/// conv2d(x, filter, bias?, stride = 1, padding = 0, dilation = 1); the bias
/// is per output channel.
Value elaborateConv2d(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0), w = c.tensorArg(1);
  if (!x || !w)
    return Value::poison();
  mlir::Value bias;
  if (c.arg(2) && !(bias = c.tensorArg(2)))
    return Value::poison();
  auto strides = evalPair(c, c.arg(3), "the stride", 1);
  auto padding = evalPair(c, c.arg(4), "the padding", 0);
  auto dilation = evalPair(c, c.arg(5), "the dilation", 1);
  if (!strides || !padding || !dilation)
    return Value::poison();
  std::string why;
  llvm::FailureOr<shape::Shape> s =
      shape::conv2d(typeOf(x).getShape(), typeOf(w).getShape(), *strides,
                    *padding, *dilation, why);
  if (failed(s)) {
    c.error(why);
    return Value::poison();
  }
  mlir::OpBuilder &b = c.e.builder;
  mlir::Value conv = c.create<Conv2dOp>(x, w, b.getDenseI64ArrayAttr(*strides),
                                        b.getDenseI64ArrayAttr(*padding),
                                        b.getDenseI64ArrayAttr(*dilation));
  if (!bias)
    return Value::tensorOf(conv);
  // The bias is per output channel: [O], broadcast as [O, 1, 1].
  int64_t channels = (*s)[1];
  if (typeOf(bias).getShape() != llvm::ArrayRef<int64_t>{channels}) {
    c.e.error(c.arg(2)->getLoc(), "the bias of 'conv2d' must have shape [" +
                                      std::to_string(channels) +
                                      "] (one value per output channel), got " +
                                      typeStr(bias.getType()));
    return Value::poison();
  }
  mlir::Value bias3 = c.create<ReshapeOp>(
      mlir::RankedTensorType::get({channels, 1, 1}, b.getF32Type()), bias);
  return Value::tensorOf(c.create<AddOp>(conv, bias3));
}

/// `warmup(steps)`: 0 to 1 over the first `steps` training steps, 1 in
/// evaluation (KL annealing).
Value elaborateWarmup(BuiltinCall &c) {
  std::optional<int64_t> steps =
      c.e.evalInt(*c.arg(0), c.frame, "the number of warm-up steps");
  if (!steps)
    return Value::poison();
  if (*steps < 1) {
    c.e.error(c.arg(0)->getLoc(),
              "warmup needs at least 1 step, got " + std::to_string(*steps));
    return Value::poison();
  }
  mlir::OpBuilder &b = c.e.builder;
  return Value::tensorOf(
      c.create<WarmupOp>(mlir::RankedTensorType::get({}, b.getF32Type()),
                         mlir::Value(), b.getI64IntegerAttr(*steps)));
}

Value elaborateDropout(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0);
  std::optional<double> rate =
      c.e.evalNumber(*c.arg(1), c.frame, "the dropout rate");
  if (!x || !rate)
    return Value::poison();
  if (!(*rate >= 0 && *rate < 1)) {
    c.e.error(
        c.arg(1)->getLoc(),
        llvm::formatv("the dropout rate must be in [0, 1), got {0}", *rate)
            .str());
    return Value::poison();
  }
  // Dropout with rate 0 (a layer's default) is the identity.
  if (*rate == 0)
    return Value::tensorOf(x);
  mlir::OpBuilder &b = c.e.builder;
  // Each dropout draws its own mask: the salt tells them apart.
  return Value::tensorOf(c.create<DropoutOp>(
      x, mlir::Value(), mlir::Value(), b.getF64FloatAttr(*rate),
      b.getI64IntegerAttr(++c.e.numSalts)));
}

/// attention(q, k, v, causal = false, scale = 1 / sqrt(D), mask = none,
/// dropout = 0): softmax(q k^T * scale) v over [..., T, D] tensors, as one
/// fused kiln.attention; `mask` [..., Tk] hides the keys where it is 0;
/// `dropout` drops probabilities in training.
Value elaborateAttention(BuiltinCall &c) {
  mlir::Value q = c.tensorArg(0), k = c.tensorArg(1), v = c.tensorArg(2);
  if (!q || !k || !v)
    return Value::poison();
  std::optional<bool> causal = c.boolArg(3, false);
  int64_t width = typeOf(q).getRank() ? typeOf(q).getShape().back() : 1;
  std::optional<double> scale = c.positiveArg(
      4, 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(width, 1))));
  if (!causal || !scale)
    return Value::poison();
  if (typeOf(q).getElementType() != typeOf(k).getElementType() ||
      typeOf(q).getElementType() != typeOf(v).getElementType()) {
    c.error("'attention' needs q, k and v of one element type, got " +
            typeStr(q.getType()) + ", " + typeStr(k.getType()) + " and " +
            typeStr(v.getType()));
    return Value::poison();
  }
  std::string error;
  if (failed(shape::attention(typeOf(q).getShape(), typeOf(k).getShape(),
                              typeOf(v).getShape(), *causal, error))) {
    c.error(error);
    return Value::poison();
  }
  mlir::Value mask;
  if (c.arg(5)) {
    mask = c.tensorArg(5);
    if (!mask)
      return Value::poison();
    if (typeOf(mask).getElementType() != typeOf(q).getElementType() ||
        failed(shape::attentionMask(typeOf(q).getShape(), typeOf(k).getShape(),
                                    typeOf(mask).getShape(), error))) {
      c.e.error(c.arg(5)->getLoc(),
                error.empty() ? "the key mask of attention must have q's "
                                "element type, got " +
                                    typeStr(mask.getType())
                              : error);
      return Value::poison();
    }
  }
  std::optional<double> rate = c.numberArg(6, 0.0);
  if (!rate)
    return Value::poison();
  if (!(*rate >= 0 && *rate < 1)) {
    c.e.error(c.arg(6)->getLoc(),
              llvm::formatv("the dropout rate of 'attention' must be in [0, "
                            "1), got {0}",
                            *rate)
                  .str());
    return Value::poison();
  }
  mlir::OpBuilder &b = c.e.builder;
  // A dropout draws its own mask: the salt tells it apart from the others.
  auto op = c.create<AttentionOp>(
      q, k, v, mask, /*hyper=*/mlir::Value(), b.getF64FloatAttr(*scale),
      *causal ? b.getUnitAttr() : mlir::UnitAttr(), b.getF64FloatAttr(*rate),
      b.getI64IntegerAttr(*rate > 0 ? ++c.e.numSalts : 0));
  return Value::tensorOf(op.getOut());
}

/// float(x): the elements of an i32 (or f64) tensor as f32.
Value elaborateFloat(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0, /*floatOnly=*/false);
  if (!x)
    return Value::poison();
  mlir::RankedTensorType type = typeOf(x);
  auto f32 =
      mlir::RankedTensorType::get(type.getShape(), c.e.builder.getF32Type());
  if (type == f32)
    return Value::tensorOf(x);
  return Value::tensorOf(c.create<CastOp>(f32, x));
}

/// layer_norm(x, eps = 1e-5): the last dimension normalized to mean 0 and
/// variance 1 (no weight or bias: `nn.layernorm` adds those).
Value elaborateLayerNorm(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0);
  std::optional<double> eps = c.positiveArg(1, 1e-5);
  if (!x || !eps)
    return Value::poison();
  if (typeOf(x).getRank() < 1) {
    c.error("'layer_norm' needs a tensor of rank >= 1, got " +
            typeStr(x.getType()));
    return Value::poison();
  }
  return Value::tensorOf(
      c.create<LayerNormOp>(x, c.e.builder.getF64FloatAttr(*eps)));
}

/// split(x, pieces, axis = -1): a tuple of `pieces` equal parts.
Value elaborateSplit(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0, /*floatOnly=*/false);
  if (!x)
    return Value::poison();
  std::optional<int64_t> pieces =
      c.e.evalInt(*c.arg(1), c.frame, "the number of pieces");
  std::optional<int64_t> axis =
      pieces ? c.e.evalAxis(c.arg(2), c.loc(), c.frame, x, -1) : std::nullopt;
  if (!axis)
    return Value::poison();
  int64_t dim = typeOf(x).getDimSize(*axis);
  if (*pieces <= 0 || dim % *pieces) {
    c.e.error(c.arg(1)->getLoc(),
              llvm::formatv("cannot split dimension {0} ({1}) of {2} into {3} "
                            "equal pieces",
                            *axis, dim, typeStr(x.getType()), *pieces)
                  .str());
    return Value::poison();
  }
  llvm::SmallVector<int64_t> sizes(*pieces, dim / *pieces);
  auto split = c.create<SplitOp>(x, *axis, sizes);
  std::vector<Value> results;
  for (mlir::Value piece : split.getResults())
    results.push_back(Value::tensorOf(piece));
  return Value::tuple(std::move(results));
}

/// concat(x, ..., axis = -1).
Value elaborateConcat(BuiltinCall &c) {
  llvm::SmallVector<mlir::Value> inputs;
  llvm::SmallVector<shape::Shape> shapes;
  llvm::SmallVector<const Expr *> exprs{c.arg(0)};
  llvm::append_range(exprs, c.bound.extra);
  for (const Expr *expr : exprs) {
    mlir::Value x = c.e.evalTensor(*expr, c.frame, "an argument of 'concat'",
                                   /*floatOnly=*/false);
    if (!x)
      return Value::poison();
    if (!inputs.empty() &&
        typeOf(x).getElementType() != typeOf(inputs.front()).getElementType()) {
      c.e.error(expr->getLoc(), "cannot concatenate " + typeStr(x.getType()) +
                                    " to " + typeStr(inputs.front().getType()));
      return Value::poison();
    }
    inputs.push_back(x);
    shapes.emplace_back(typeOf(x).getShape());
  }
  std::optional<int64_t> axis =
      c.e.evalAxis(c.arg(1), c.loc(), c.frame, inputs.front(), -1);
  if (!axis)
    return Value::poison();
  std::string why;
  if (failed(shape::concat(shapes, *axis, why))) {
    c.error(why);
    return Value::poison();
  }
  return Value::tensorOf(c.create<ConcatOp>(mlir::ValueRange(inputs), *axis));
}

/// slice(x, start, size, axis = -1): `size` steps of `x` from `start`.
Value elaborateSlice(BuiltinCall &c) {
  mlir::Value x = c.tensorArg(0, /*floatOnly=*/false);
  if (!x)
    return Value::poison();
  std::optional<int64_t> start = c.e.evalInt(*c.arg(1), c.frame, "the start");
  std::optional<int64_t> size =
      start ? c.e.evalInt(*c.arg(2), c.frame, "the size") : std::nullopt;
  std::optional<int64_t> axis =
      size ? c.e.evalAxis(c.arg(3), c.loc(), c.frame, x, -1) : std::nullopt;
  if (!axis)
    return Value::poison();
  int64_t dim = typeOf(x).getDimSize(*axis);
  if (*start < 0 || *size <= 0 || *start > dim - *size) {
    c.error(llvm::formatv("cannot take {0} steps from {1} of dimension {2} "
                          "({3}) of {4}",
                          *size, *start, *axis, dim, typeStr(x.getType()))
                .str());
    return Value::poison();
  }
  if (*size == dim)
    return Value::tensorOf(x);
  // A split whose other pieces are left unused.
  llvm::SmallVector<int64_t> sizes;
  if (*start)
    sizes.push_back(*start);
  sizes.push_back(*size);
  if (*start + *size < dim)
    sizes.push_back(dim - *start - *size);
  auto split = c.create<SplitOp>(x, *axis, sizes);
  return Value::tensorOf(split.getResult(*start ? 1 : 0));
}

/// one_hot(ids, classes): i32 [N] to f32 [N, classes].
Value elaborateOneHot(BuiltinCall &c) {
  mlir::Value ids = c.tensorArg(0, /*floatOnly=*/false);
  if (!ids)
    return Value::poison();
  std::optional<int64_t> classes =
      c.e.evalInt(*c.arg(1), c.frame, "the number of classes");
  if (!classes)
    return Value::poison();
  mlir::RankedTensorType type = typeOf(ids);
  if (!type.getElementType().isInteger(32) || type.getRank() != 1) {
    c.e.error(c.arg(0)->getLoc(),
              "the ids of 'one_hot' must be an i32 vector [N], got " +
                  typeStr(type));
    return Value::poison();
  }
  if (*classes <= 0) {
    c.e.error(c.arg(1)->getLoc(), "the number of classes must be positive, "
                                  "got " +
                                      std::to_string(*classes));
    return Value::poison();
  }
  return Value::tensorOf(c.create<OneHotOp>(
      mlir::RankedTensorType::get({type.getDimSize(0), *classes},
                                  c.e.builder.getF32Type()),
      ids));
}

/// take(table, ids): the rows of table [V, D] at i32 ids of any shape S, as
/// [S..., D] (an embedding lookup: kiln.gather on the flattened ids).
Value elaborateTake(BuiltinCall &c) {
  mlir::Value table = c.tensorArg(0);
  mlir::Value ids = c.tensorArg(1, /*floatOnly=*/false);
  if (!table || !ids)
    return Value::poison();
  mlir::RankedTensorType tableType = typeOf(table), idsType = typeOf(ids);
  if (tableType.getRank() != 2) {
    c.e.error(c.arg(0)->getLoc(),
              "the table of 'take' must be a matrix [rows, width], got " +
                  typeStr(tableType));
    return Value::poison();
  }
  if (!idsType.getElementType().isInteger(32)) {
    c.e.error(c.arg(1)->getLoc(),
              "the ids of 'take' must be an i32 tensor of row indices, got " +
                  typeStr(idsType));
    return Value::poison();
  }
  int64_t n = idsType.getNumElements(), width = tableType.getDimSize(1);
  mlir::Type element = tableType.getElementType();
  mlir::Value flat = ids;
  if (idsType.getRank() != 1)
    flat = c.create<ReshapeOp>(
        mlir::RankedTensorType::get({n}, idsType.getElementType()), ids);
  mlir::Value rows = c.create<GatherOp>(
      mlir::RankedTensorType::get({n, width}, element), table, flat);
  if (idsType.getRank() == 1)
    return Value::tensorOf(rows);
  llvm::SmallVector<int64_t> shape(idsType.getShape());
  shape.push_back(width);
  return Value::tensorOf(
      c.create<ReshapeOp>(mlir::RankedTensorType::get(shape, element), rows));
}

/// full(dims..., value = 0): a float tensor of one value (a recurrence's
/// initial state).
/// The dimensions of `full(...)`, `random_normal(...)`: the extra positional
/// arguments, each a positive integer, the whole of a size shape rules allow.
std::optional<shape::Shape> evalDims(BuiltinCall &c) {
  shape::Shape dims;
  for (const Expr *e : c.bound.extra) {
    std::optional<int64_t> d = c.e.evalInt(*e, c.frame, "a dimension");
    if (!d)
      return std::nullopt;
    if (*d <= 0) {
      c.e.error(e->getLoc(),
                "dimension must be positive, got " + std::to_string(*d));
      return std::nullopt;
    }
    dims.push_back(*d);
  }
  std::string why;
  if (failed(shape::checkSize(dims, 4, why))) {
    c.error(why);
    return std::nullopt;
  }
  return dims;
}

Value elaborateFull(BuiltinCall &c) {
  std::optional<shape::Shape> dims = evalDims(c);
  if (!dims)
    return Value::poison();
  std::optional<double> value = c.numberArg(0, 0.0);
  if (!value)
    return Value::poison();
  mlir::OpBuilder &b = c.e.builder;
  auto type = mlir::RankedTensorType::get(*dims, b.getF32Type());
  return Value::tensorOf(c.create<ConstantOp>(mlir::DenseElementsAttr::get(
      type, b.getF32FloatAttr(static_cast<float>(*value)))));
}

/// sinusoidal(positions, width): the Transformer's fixed position encodings,
/// f32[positions, width]: sin(p / 10000^(2i / width)) in column 2i and cos in
/// column 2i + 1 (as PyTorch's tutorial builds them).
Value elaborateSinusoidal(BuiltinCall &c) {
  std::optional<int64_t> positions =
      c.e.evalInt(*c.arg(0), c.frame, "the number of positions");
  std::optional<int64_t> width =
      positions ? c.e.evalInt(*c.arg(1), c.frame, "the width") : std::nullopt;
  if (!width)
    return Value::poison();
  // The table is a constant in the IR and the executable: keep it modest.
  constexpr int64_t kMaxElements = int64_t(1) << 24;
  if (*positions < 1 || *width < 1 || *positions > kMaxElements / *width) {
    c.error(llvm::formatv("'sinusoidal' needs 1 <= positions x width <= {0}, "
                          "got {1} x {2}",
                          kMaxElements, *positions, *width)
                .str());
    return Value::poison();
  }
  std::vector<float> table(*positions * *width);
  for (int64_t p = 0; p < *positions; ++p)
    for (int64_t i = 0; i < *width; ++i) {
      double rate =
          std::exp(-std::log(10000.0) * static_cast<double>(i - i % 2) /
                   static_cast<double>(*width));
      double angle = static_cast<double>(p) * rate;
      table[p * *width + i] =
          static_cast<float>(i % 2 ? std::cos(angle) : std::sin(angle));
    }
  mlir::OpBuilder &b = c.e.builder;
  auto type = mlir::RankedTensorType::get({*positions, *width}, b.getF32Type());
  return Value::tensorOf(c.create<ConstantOp>(
      mlir::DenseElementsAttr::get(type, llvm::ArrayRef<float>(table))));
}

/// A constant f32 table of `dims` (computed at compile time) with at most
/// 2^24 elements, or an error naming `what` and the sizes.
std::optional<std::vector<float>> constantTable(BuiltinCall &c,
                                                llvm::StringRef what,
                                                llvm::ArrayRef<int64_t> dims) {
  constexpr int64_t kMaxElements = int64_t(1) << 24;
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 1 || d > kMaxElements / n) {
      c.error(llvm::formatv("'{0}' needs sizes of at least 1 and a table of "
                            "at most {1} values",
                            what, kMaxElements)
                  .str());
      return std::nullopt;
    }
    n *= d;
  }
  return std::vector<float>(size_t(n));
}

Value constantOf(BuiltinCall &c, llvm::ArrayRef<int64_t> dims,
                 const std::vector<float> &table) {
  mlir::OpBuilder &b = c.e.builder;
  auto type = mlir::RankedTensorType::get(dims, b.getF32Type());
  return Value::tensorOf(c.create<ConstantOp>(
      mlir::DenseElementsAttr::get(type, llvm::ArrayRef<float>(table))));
}

/// hann(n): the periodic Hann window, f32[n]: 0.5 - 0.5 cos(2 pi t / n)
/// (torch.hann_window(n)), for framing audio.
Value elaborateHann(BuiltinCall &c) {
  std::optional<int64_t> n = c.e.evalInt(*c.arg(0), c.frame, "the length");
  if (!n)
    return Value::poison();
  std::optional<std::vector<float>> w = constantTable(c, "hann", {*n});
  if (!w)
    return Value::poison();
  for (int64_t t = 0; t < *n; ++t)
    (*w)[t] = float(0.5 - 0.5 * std::cos(2 * M_PI * double(t) / double(*n)));
  return constantOf(c, {*n}, *w);
}

/// fourier(n, bins): the real DFT of a frame of n samples as a matrix,
/// f32[2 * bins, n]: row k < bins is cos(2 pi k t / n), row bins + k is
/// -sin(2 pi k t / n), so rows k and bins + k of W @ frame are the real and
/// imaginary parts of frequency bin k (n / 2 + 1 bins hold a whole
/// spectrum).
Value elaborateFourier(BuiltinCall &c) {
  std::optional<int64_t> n = c.e.evalInt(*c.arg(0), c.frame, "the length");
  std::optional<int64_t> bins =
      n ? c.e.evalInt(*c.arg(1), c.frame, "the number of bins") : std::nullopt;
  if (!bins)
    return Value::poison();
  std::optional<std::vector<float>> w =
      constantTable(c, "fourier", {2 * *bins, *n});
  if (!w)
    return Value::poison();
  for (int64_t k = 0; k < *bins; ++k)
    for (int64_t t = 0; t < *n; ++t) {
      // The angle's multiple of 2 pi reduced exactly, so large k * t keep
      // their precision.
      double angle = 2 * M_PI * double((k * t) % *n) / double(*n);
      (*w)[k * *n + t] = float(std::cos(angle));
      (*w)[(*bins + k) * *n + t] = float(-std::sin(angle));
    }
  return constantOf(c, {2 * *bins, *n}, *w);
}

/// mel_filterbank(bins, mels, rate, low = 0, high = rate / 2): triangular
/// filters on the mel scale (HTK's: 2595 log10(1 + f / 700)), f32[bins,
/// mels], for a power spectrum of `bins` frequencies evenly spaced from 0 to
/// rate / 2 (an n-point DFT's n / 2 + 1): column m rises from mel point m to
/// m + 1 and falls to m + 2 of mels + 2 points evenly spaced from `low` to
/// `high` (torchaudio's melscale_fbanks, norm None).
Value elaborateMelFilterbank(BuiltinCall &c) {
  std::optional<int64_t> bins =
      c.e.evalInt(*c.arg(0), c.frame, "the number of frequency bins");
  std::optional<int64_t> mels =
      bins ? c.e.evalInt(*c.arg(1), c.frame, "the number of mel filters")
           : std::nullopt;
  std::optional<double> rate = mels ? c.numberArg(2, 0) : std::nullopt;
  std::optional<double> low = rate ? c.numberArg(3, 0) : std::nullopt;
  std::optional<double> high = low ? c.numberArg(4, *rate / 2) : std::nullopt;
  if (!high)
    return Value::poison();
  if (!(*rate > 0) || !(*low >= 0) || !(*low < *high) ||
      !(*high <= *rate / 2) || *bins < 2) {
    auto number = [](double v) {
      std::ostringstream os;
      os << v;
      return os.str();
    };
    c.error(llvm::formatv("'mel_filterbank' needs at least 2 bins, a positive "
                          "rate and 0 <= low < high <= rate / 2, got {0} bins, "
                          "rate {1}, low {2}, high {3}",
                          *bins, number(*rate), number(*low), number(*high))
                .str());
    return Value::poison();
  }
  std::optional<std::vector<float>> fb =
      constantTable(c, "mel_filterbank", {*bins, *mels});
  if (!fb)
    return Value::poison();
  auto toMel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
  auto toHz = [](double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1); };
  std::vector<double> points(size_t(*mels + 2));
  for (int64_t p = 0; p < *mels + 2; ++p)
    points[p] = toHz(toMel(*low) + (toMel(*high) - toMel(*low)) * double(p) /
                                       double(*mels + 1));
  for (int64_t f = 0; f < *bins; ++f) {
    double hz = *rate / 2 * double(f) / double(*bins - 1);
    for (int64_t m = 0; m < *mels; ++m) {
      double up = (hz - points[m]) / (points[m + 1] - points[m]);
      double down = (points[m + 2] - hz) / (points[m + 2] - points[m + 1]);
      (*fb)[f * *mels + m] = float(std::max(0.0, std::min(up, down)));
    }
  }
  return constantOf(c, {*bins, *mels}, *fb);
}

/// context(n) in a generate or translate block: the step reads at most n
/// positions (a Transformer's, whose caches and position table hold n):
/// `generate` refuses a prompt and length that need more, `translate` stops
/// a translation there. Returns n.
Value elaborateContext(BuiltinCall &c) {
  std::optional<int64_t> n =
      c.e.evalInt(*c.arg(0), c.frame, "the number of positions");
  if (!n)
    return Value::poison();
  if (!c.e.inStepBlock()) {
    c.error("'context' is only allowed in a generate or translate block");
    return Value::poison();
  }
  std::string block = keyword(c.e.entryBlock->kind);
  if (*n < 1) {
    c.error("the context of a " + block +
            " block must be at least 1 position, got " + std::to_string(*n));
    return Value::poison();
  }
  mlir::ModuleOp module = *c.e.moduleOp;
  if (module->hasAttr(contract::kGenerateContextAttr)) {
    c.error("the " + block +
            " block declares its context twice (or the model's generate and "
            "translate blocks both do)");
    return Value::poison();
  }
  module->setAttr(contract::kGenerateContextAttr,
                  c.e.builder.getI64IntegerAttr(*n));
  return Value::integer(*n);
}

/// range(n): the constant f32[n] 0, 1, ..., n - 1 (torch.arange): positions
/// to compare with, e.g. a one-hot row of a position `p` [B, 1] is
/// greater(p + 0.5, range(n)) * greater(range(n), p - 0.5).
Value elaborateRange(BuiltinCall &c) {
  std::optional<int64_t> n =
      c.e.evalInt(*c.arg(0), c.frame, "the number of values");
  if (!n)
    return Value::poison();
  constexpr int64_t kMaxElements = int64_t(1) << 24;
  if (*n < 1 || *n > kMaxElements) {
    c.error(
        llvm::formatv("'range' needs 1 <= n <= {0}, got {1}", kMaxElements, *n)
            .str());
    return Value::poison();
  }
  std::vector<float> values(*n);
  for (int64_t i = 0; i < *n; ++i)
    values[i] = static_cast<float>(i);
  auto type = mlir::RankedTensorType::get({*n}, c.e.builder.getF32Type());
  return Value::tensorOf(c.create<ConstantOp>(
      mlir::DenseElementsAttr::get(type, llvm::ArrayRef<float>(values))));
}

/// `random_normal(64, 20)`, `random_uniform(...)`: a tensor of random numbers
/// (ir/Random.h), new ones at every training step and evaluation batch.
template <typename OpTy> Value elaborateRandom(BuiltinCall &c) {
  std::optional<shape::Shape> dims = evalDims(c);
  if (!dims)
    return Value::poison();
  if (dims->empty()) {
    c.error("'" + c.builtin.name + "' needs the tensor's dimensions, e.g. " +
            c.builtin.name + "(64, 20)");
    return Value::poison();
  }
  mlir::OpBuilder &b = c.e.builder;
  auto type = mlir::RankedTensorType::get(*dims, b.getF32Type());
  // Each random op draws its own numbers: the salt tells them apart (and
  // from the dropouts' masks).
  return Value::tensorOf(
      c.create<OpTy>(type, mlir::Value(), b.getI64IntegerAttr(++c.e.numSalts)));
}

//===----------------------------------------------------------------------===//
// Categories of tensor ops
//===----------------------------------------------------------------------===//

/// A float argument that becomes an F64 attribute of the op: `slope = 0.01`.
struct FloatAttrArg {
  StringRef name;
  double defaultValue;
};

/// f(x, attr = default, ...): an elementwise op on a float tensor (its result
/// has the input's type). Each named float argument sets the op's F64
/// attribute of the same name, so an op with scalar attributes needs no code.
/// A unary math function that also applies to compile-time numbers
/// (`k = 1 / sqrt(H)` in an initializer).
using Fold = double (*)(double);

template <typename OpTy>
Builtin unary(StringRef name, std::initializer_list<FloatAttrArg> attrs = {},
              Fold fold = nullptr) {
  llvm::ArrayRef<StringRef> opAttrs = OpTy::getAttributeNames();
  for (const FloatAttrArg &a : attrs)
    if (!llvm::is_contained(opAttrs, a.name))
      llvm::report_fatal_error("builtin '" + name + "' sets attribute '" +
                               a.name + "', which " + OpTy::getOperationName() +
                               " does not have");
  Builtin b = op(name, "x", {});
  for (const FloatAttrArg &a : attrs) {
    b.params.push_back(a.name);
    b.optional.push_back(true);
  }
  b.elaborate = [attrs = llvm::SmallVector<FloatAttrArg, 2>(attrs),
                 fold](BuiltinCall &c) -> Value {
    Value v = c.e.eval(*c.arg(0), c.frame);
    if (fold && v.isNumber()) {
      double r = fold(v.asDouble());
      if (!std::isfinite(r)) {
        c.error(c.builtin.name + "(" + floatStr(v.asDouble()) +
                ") is not a finite number");
        return Value::poison();
      }
      return Value::real(r);
    }
    mlir::Value x = c.e.asTensor(v, c.arg(0)->getLoc(),
                                 "argument 'x' of '" + c.builtin.name + "'");
    if (!x)
      return Value::poison();
    llvm::SmallVector<mlir::NamedAttribute, 2> named;
    for (auto [i, a] : llvm::enumerate(attrs)) {
      std::optional<double> v = c.numberArg(i + 1, a.defaultValue);
      if (!v)
        return Value::poison();
      named.push_back(
          c.e.builder.getNamedAttr(a.name, c.e.builder.getF64FloatAttr(*v)));
    }
    return Value::tensorOf(c.create<OpTy>(mlir::TypeRange{x.getType()},
                                          mlir::ValueRange{x}, named));
  };
  return b;
}

/// f(a, b): an elementwise op on float tensors with NumPy broadcasting.
template <typename OpTy> Builtin broadcasting(StringRef name) {
  return op(name, "a, b", [](BuiltinCall &c) -> Value {
    // Either operand may be a number (`maximum(x, 0.5)`): an f32 scalar.
    auto operand = [&](unsigned i) -> mlir::Value {
      Value v = c.e.eval(*c.arg(i), c.frame);
      if (v.isNumber())
        return c.e.createScalar(v.asDouble(), c.e.builder.getF32Type(),
                                c.arg(i)->getLoc(), c.frame);
      return c.e.asTensor(v, c.arg(i)->getLoc(),
                          "argument '" + c.builtin.params[i] + "' of '" +
                              c.builtin.name + "'");
    };
    mlir::Value a = operand(0), b = operand(1);
    if (!a || !b)
      return Value::poison();
    std::string why;
    if (failed(shape::broadcast(typeOf(a).getShape(), typeOf(b).getShape(),
                                why))) {
      c.error("'" + c.builtin.name + "': " + why);
      return Value::poison();
    }
    return Value::tensorOf(c.create<OpTy>(a, b));
  });
}

/// f(x, axis = -1): a normalization along one axis.
template <typename OpTy> Builtin axisOp(StringRef name) {
  return op(name, "x, axis?", [](BuiltinCall &c) -> Value {
    mlir::Value x = c.tensorArg(0);
    if (!x)
      return Value::poison();
    std::optional<int64_t> axis =
        c.e.evalAxis(c.arg(1), c.loc(), c.frame, x, -1);
    if (!axis)
      return Value::poison();
    return Value::tensorOf(
        c.create<OpTy>(x, c.e.builder.getI64IntegerAttr(*axis)));
  });
}

/// f(x, axis = all, keepdims = false): a reduction over one or all axes.
template <typename OpTy> Builtin reduction(StringRef name) {
  return op(name, "x, axis?, keepdims?", [](BuiltinCall &c) -> Value {
    mlir::Value x = c.tensorArg(0);
    if (!x)
      return Value::poison();
    llvm::SmallVector<int64_t, 4> axes;
    if (c.arg(1)) {
      std::optional<int64_t> axis =
          c.e.evalAxis(c.arg(1), c.loc(), c.frame, x, 0);
      if (!axis)
        return Value::poison();
      axes.push_back(*axis);
    } else {
      for (int64_t i = 0, e = typeOf(x).getRank(); i < e; ++i)
        axes.push_back(i);
    }
    bool keepDims = false;
    if (c.arg(2)) {
      Value k = c.e.eval(*c.arg(2), c.frame);
      if (k.isPoison())
        return k;
      if (k.kind != Value::Kind::Bool) {
        c.e.error(c.arg(2)->getLoc(),
                  "'keepdims' must be true or false, got " + c.e.describe(k));
        return Value::poison();
      }
      keepDims = k.b;
    }
    std::string why;
    if (failed(shape::reduce(typeOf(x).getShape(), axes, keepDims, why))) {
      c.error(why);
      return Value::poison();
    }
    mlir::OpBuilder &b = c.e.builder;
    return Value::tensorOf(c.create<OpTy>(x, b.getDenseI64ArrayAttr(axes),
                                          b.getBoolAttr(keepDims)));
  });
}

/// f(a, b) -> f32[]: a loss over two float tensors of the same shape.
template <typename OpTy> Builtin pairLoss(StringRef name, StringRef signature) {
  return op(name, signature, [](BuiltinCall &c) -> Value {
    mlir::Value a = c.tensorArg(0), b = c.tensorArg(1);
    if (!a || !b)
      return Value::poison();
    std::string why;
    if (failed(shape::sameShapeLoss(typeOf(a).getShape(), typeOf(b).getShape(),
                                    why))) {
      c.error("'" + c.builtin.name + "': " + why);
      return Value::poison();
    }
    return Value::tensorOf(c.create<OpTy>(a, b));
  });
}

/// f(x, kernel, stride = kernel, padding = 0): 2-D pooling.
template <typename OpTy> Builtin pool(StringRef name) {
  return op(name, "x, kernel, stride?, padding?", [](BuiltinCall &c) -> Value {
    mlir::Value x = c.tensorArg(0);
    auto kernel = evalPair(c, c.arg(1), "the pooling kernel", 1);
    if (!x || !kernel)
      return Value::poison();
    auto strides = evalPair(c, c.arg(2), "the stride", (*kernel)[0]);
    auto padding = evalPair(c, c.arg(3), "the padding", 0);
    if (!strides || !padding)
      return Value::poison();
    std::string why;
    if (failed(shape::pool2d(typeOf(x).getShape(), *kernel, *strides, *padding,
                             why))) {
      c.error("'" + c.builtin.name + "': " + why);
      return Value::poison();
    }
    mlir::OpBuilder &b = c.e.builder;
    return Value::tensorOf(c.create<OpTy>(x, b.getDenseI64ArrayAttr(*kernel),
                                          b.getDenseI64ArrayAttr(*strides),
                                          b.getDenseI64ArrayAttr(*padding)));
  });
}

/// The operator `op` as a function: add(a, b) is a + b, matmul(a, b) is a @ b
/// (scalars broadcast; the diagnostics name the operator).
Builtin binaryOperator(StringRef name, BinaryExpr::Op op) {
  return makeBuiltin(name, BuiltinKind::Op, "a, b", [op](BuiltinCall &c) {
    Value a = c.e.eval(*c.arg(0), c.frame), b = c.e.eval(*c.arg(1), c.frame);
    return c.e.evalBinary(op, c.loc(), a, b, c.frame);
  });
}

/// An initializer of the contract's table (or an alias of one), with the
/// arguments the DSL gives it.
Builtin initializer(StringRef name, contract::InitKind kind,
                    StringRef signature = "") {
  Builtin b = makeBuiltin(name, BuiltinKind::Initializer, signature);
  b.init = kind;
  return b;
}

/// An optimizer of the contract's table: its hyper-parameters, each optional.
Builtin optimizer(const contract::OptimizerInfo &info) {
  Builtin b = makeBuiltin(info.name, BuiltinKind::Optimizer, "");
  for (unsigned i = 0; i < info.numHyper; ++i) {
    b.params.push_back(info.hyper[i].name);
    b.optional.push_back(true);
  }
  return b;
}

/// A data source of the contract's table (the runtime reads it by name).
Builtin dataFormat(StringRef name, StringRef signature) {
  assert(contract::parseDataFormat(name) && "a data format the runtime lacks");
  return makeBuiltin(name, BuiltinKind::DataFormat, signature);
}

} // namespace

//===----------------------------------------------------------------------===//
// The table
//===----------------------------------------------------------------------===//

const std::vector<Builtin> &sema::getBuiltins() {
  using Op = BinaryExpr::Op;
  using Init = contract::InitKind;
  static const std::vector<Builtin> builtins = [] {
    std::vector<Builtin> b = {
        op("identity", "x", elaborateIdentity),
        unary<ReluOp>("relu"),
        unary<LeakyReluOp>("leaky_relu", {{"slope", 0.01}}),
        unary<SigmoidOp>("sigmoid"),
        unary<TanhOp>("tanh", {}, [](double x) { return std::tanh(x); }),
        unary<SoftplusOp>("softplus"),
        unary<ExpOp>("exp", {}, [](double x) { return std::exp(x); }),
        unary<LogOp>("log", {}, [](double x) { return std::log(x); }),
        unary<SqrtOp>("sqrt", {}, [](double x) { return std::sqrt(x); }),
        unary<AbsOp>("abs", {}, [](double x) { return std::fabs(x); }),
        unary<GeluOp>("gelu"),
        op("conv2d", "x, filter, bias?, stride?, padding?, dilation?",
           elaborateConv2d),
        pool<MaxPool2dOp>("max_pool2d"),
        pool<AvgPool2dOp>("avg_pool2d"),
        op("dropout", "x, rate", elaborateDropout),
        op("warmup", "steps", elaborateWarmup),
        op("batch_norm",
           "x, gamma, beta, running_mean, running_var, momentum?, eps?",
           elaborateBatchNorm),
        unary<NegOp>("neg"),
        binaryOperator("add", Op::Add),
        binaryOperator("sub", Op::Sub),
        binaryOperator("mul", Op::Mul),
        binaryOperator("div", Op::Div),
        broadcasting<MaximumOp>("maximum"),
        broadcasting<MinimumOp>("minimum"),
        broadcasting<GreaterOp>("greater"),
        binaryOperator("matmul", Op::MatMul),
        axisOp<SoftmaxOp>("softmax"),
        axisOp<LogSoftmaxOp>("log_softmax"),
        reduction<ReduceSumOp>("sum"),
        reduction<ReduceMeanOp>("mean"),
        reduction<ReduceMaxOp>("max"),
        op("argmax", "x, axis?", elaborateArgmax),
        variadicOp("reshape", "x",
                   [](BuiltinCall &c) { return elaborateReshape(c, false); }),
        op("flatten", "x",
           [](BuiltinCall &c) { return elaborateReshape(c, true); }),
        variadicOp("transpose", "x", elaborateTranspose),
        op("attention", "q, k, v, causal?, scale?, mask?, dropout?",
           elaborateAttention),
        op("layer_norm", "x, eps?", elaborateLayerNorm),
        op("float", "x", elaborateFloat),
        op("split", "x, pieces, axis?", elaborateSplit),
        op("slice", "x, start, size, axis?", elaborateSlice),
        op("one_hot", "ids, classes", elaborateOneHot),
        op("take", "table, ids", elaborateTake),
        variadicOp("concat", "x, axis?", elaborateConcat),
        variadicOp("full", "value?", elaborateFull),
        op("sinusoidal", "positions, width", elaborateSinusoidal),
        op("hann", "n", elaborateHann),
        op("fourier", "n, bins", elaborateFourier),
        op("mel_filterbank", "bins, mels, rate, low?, high?",
           elaborateMelFilterbank),
        op("range", "n", elaborateRange),
        op("context", "n", elaborateContext),
        variadicOp("random_normal", "", elaborateRandom<RandomNormalOp>),
        variadicOp("random_uniform", "", elaborateRandom<RandomUniformOp>),
        op("scan", "cell, xs, init, axis?, reverse?, stateful?", elaborateScan),
        op("cross_entropy", "logits, labels, ignore_index?",
           elaborateCrossEntropy),
        pairLoss<MseOp>("mse", "prediction, target"),
        pairLoss<BceWithLogitsOp>("bce_with_logits", "logits, target"),
        // Initializers (only as a param's initializer).
        initializer("zeros", Init::Zeros),
        initializer("ones", Init::Ones),
        initializer("constant", Init::Constant, "value"),
        initializer("uniform", Init::Uniform, "low, high"),
        initializer("normal", Init::Normal, "std?, mean?"),
        initializer("glorot_uniform", Init::GlorotUniform),
        initializer("glorot_normal", Init::GlorotNormal),
        initializer("xavier_uniform", Init::GlorotUniform),
        initializer("xavier_normal", Init::GlorotNormal),
        initializer("he_uniform", Init::HeUniform),
        initializer("he_normal", Init::HeNormal),
        initializer("kaiming_uniform", Init::HeUniform),
        initializer("kaiming_normal", Init::HeNormal),
    };
    // Optimizers (only in a train block), as the contract defines them.
    for (const contract::OptimizerInfo &info : contract::kOptimizers)
      b.push_back(optimizer(info));
    // Data formats (only in a train block).
    b.push_back(dataFormat("idx", "path, scale?"));
    b.push_back(dataFormat("npy", "path, scale?"));
    b.push_back(dataFormat("csv", "path, scale?, header?"));
    b.push_back(dataFormat("text", "path, held_out?"));
    b.push_back(dataFormat("lines", "path, held_out?"));
    b.push_back(dataFormat("pairs", "path, column?"));
    b.push_back(dataFormat("wav", "path, column?, rate?"));
    return b;
  }();
  return builtins;
}

const Builtin *sema::lookupBuiltin(StringRef name) {
  for (const Builtin &b : getBuiltins())
    if (b.name == name)
      return &b;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Calls
//===----------------------------------------------------------------------===//

std::optional<Initializer>
Elaborator::evalInitializer(const Expr &initExpr, mlir::RankedTensorType type,
                            Frame &frame) {
  // `zeros`, `zeros()`, `normal(0.01)`, ...
  const Expr *init = &initExpr;
  const CallExpr *call = llvm::dyn_cast<CallExpr>(init);
  const Expr *calleeExpr = call ? call->callee.get() : init;
  auto *calleeName = llvm::dyn_cast<NameExpr>(calleeExpr);
  const Builtin *builtin =
      calleeName ? lookupBuiltin(calleeName->name) : nullptr;
  if (!builtin || builtin->kind != BuiltinKind::Initializer) {
    auto diag = error(init->getLoc(), "unknown initializer");
    if (calleeName) {
      diag << " '" << calleeName->name << "'";
      if (suggest(diag, calleeName->name, nullptr, BuiltinKind::Initializer))
        return std::nullopt;
    }
    diag << "; expected zeros, ones, constant(v), uniform(low, high), "
            "normal(std, mean), glorot_uniform, glorot_normal, he_uniform or "
            "he_normal";
    return std::nullopt;
  }
  llvm::ArrayRef<StringRef> names = builtin->params;
  BoundArgs bound;
  bound.exprs.assign(names.size(), nullptr);
  if (call) {
    std::optional<BoundArgs> b =
        bindArgs(*call, builtin->name, names, builtin->optional, false);
    if (!b)
      return std::nullopt;
    bound = std::move(*b);
  } else if (llvm::count(builtin->optional, false)) {
    error(init->getLoc(), "initializer '" + builtin->name +
                              "' needs arguments: " + builtin->name + "(" +
                              llvm::join(names, ", ") + ")");
    return std::nullopt;
  }
  llvm::SmallVector<double, 2> args;
  for (auto [i, e] : llvm::enumerate(bound.exprs)) {
    if (!e) {
      args.push_back(names[i] == "std" ? 1.0 : 0.0); // normal(std=1, mean=0)
      continue;
    }
    std::optional<double> v = evalNumber(
        *e, frame,
        "argument '" + names[i].str() + "' of '" + builtin->name.str() + "'");
    if (!v)
      return std::nullopt;
    args.push_back(*v);
  }

  // Fan-in/fan-out: dense weights are [in, out]; convolution filters are
  // [out, in, kh, kw...]; vectors use their length for both.
  llvm::ArrayRef<int64_t> s = type.getShape();
  double fanIn = 1, fanOut = 1;
  if (s.size() == 1) {
    fanIn = fanOut = s[0];
  } else if (s.size() == 2) {
    fanIn = s[0];
    fanOut = s[1];
  } else if (s.size() > 2) {
    double receptive = 1;
    for (size_t i = 2; i < s.size(); ++i)
      receptive *= s[i];
    fanIn = s[1] * receptive;
    fanOut = s[0] * receptive;
  }
  switch (builtin->init) {
  case contract::InitKind::Zeros:
  case contract::InitKind::Ones:
  case contract::InitKind::Constant:
    break;
  case contract::InitKind::Uniform:
    if (!(args[0] < args[1])) {
      error(init->getLoc(), "uniform(low, high) needs low < high");
      return std::nullopt;
    }
    break;
  case contract::InitKind::Normal:
    std::swap(args[0], args[1]); // stored as (mean, std)
    if (!(args[1] > 0)) {
      error(init->getLoc(), "normal(std) needs std > 0");
      return std::nullopt;
    }
    break;
  case contract::InitKind::GlorotUniform:
  case contract::InitKind::GlorotNormal:
    args = {fanIn, fanOut};
    break;
  case contract::InitKind::HeUniform:
  case contract::InitKind::HeNormal:
    args = {fanIn};
    break;
  }
  // The op's InitKind spells the contract's names.
  std::optional<InitKind> kind =
      symbolizeInitKind(contract::info(builtin->init).name);
  assert(kind && "kiln.param's InitKind differs from the contract's");
  return Initializer{*kind, args};
}

Value Elaborator::callBuiltin(const Builtin &builtin, const CallExpr &call,
                              Frame &frame) {
  SMLoc loc = call.getLoc();
  switch (builtin.kind) {
  case BuiltinKind::Initializer:
    error(loc, "'" + builtin.name +
                   "' is an initializer; use it after '=' in a 'param' "
                   "declaration");
    return Value::poison();
  case BuiltinKind::Optimizer:
    error(loc, "'" + builtin.name +
                   "' is an optimizer; use it in a train block: 'optimizer " +
                   builtin.name + "(...)'");
    return Value::poison();
  case BuiltinKind::DataFormat:
    error(loc, "'" + builtin.name +
                   "' reads a data file; use it in a train block: 'data "
                   "NAME = " +
                   builtin.name + "(\"path\")'");
    return Value::poison();
  case BuiltinKind::Op:
    break;
  }
  std::optional<BoundArgs> bound = bindArgs(call, builtin.name, builtin.params,
                                            builtin.optional, builtin.variadic);
  if (!bound)
    return Value::poison();
  BuiltinCall c{*this, builtin, call, frame, std::move(*bound)};
  return builtin.elaborate(c);
}
