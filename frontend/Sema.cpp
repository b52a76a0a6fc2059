//===- Sema.cpp - Semantic analysis and elaboration of .kiln models -------===//
//
// The elaborator's core: frames, expressions, statements, function calls and
// the model declaration, building the module's @forward function as it goes.
// Builtin calls are in Builtins.cpp, batch_norm in BatchNorm.cpp and the train
// block in TrainBlock.cpp.
//
//===----------------------------------------------------------------------===//

#include "frontend/Sema.h"
#include "frontend/Builtins.h"

#include "ir/ShapeRules.h"
#include "runtime/Contract.h"

#include "mlir/IR/Verifier.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <functional>

#include <cmath>
#include <limits>

using namespace kiln;
using namespace kiln::ast;
using namespace kiln::sema;
using llvm::SMLoc;
using llvm::StringRef;

namespace {

/// Limits that keep pathological programs from hanging the compiler.
constexpr unsigned kMaxCallDepth = 64;
constexpr size_t kMaxLoopIterations = 100000;
constexpr size_t kMaxNodes = 1000000;
/// Calls that create no operations still take time: without this, a chain of
/// functions that each call the next twice would run for 2^64 calls.
constexpr size_t kMaxCalls = 100000;
/// Nested expressions and loops times nested calls: elaboration recurses once
/// per level, with frames of several KB, so this bounds the stack (the parser
/// bounds each expression's height and each loop nest, and kMaxCallDepth the
/// calls, but not their product).
constexpr unsigned kMaxNestingDepth = 512;

} // namespace

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

bool Elaborator::enterNesting(SMLoc loc) {
  if (nestingDepth >= kMaxNestingDepth) {
    fatal(loc, "expressions, loops and calls are nested too deeply (limit " +
                   std::to_string(kMaxNestingDepth) + ")");
    return false;
  }
  ++nestingDepth;
  return true;
}

mlir::Location Elaborator::locOf(SMLoc loc, const Frame &frame) const {
  mlir::Location l = reporter.getLoc(loc);
  if (frame.callerLoc)
    return mlir::CallSiteLoc::get(l, *frame.callerLoc);
  return l;
}

std::string sema::floatStr(double value) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%g", value);
  return s;
}

std::string Elaborator::describe(const Value &value) const {
  switch (value.kind) {
  case Value::Kind::Poison:
    return "an invalid value";
  case Value::Kind::Tensor:
    return "a tensor " + typeStr(value.tensor.getType());
  case Value::Kind::Int:
    return "the int " + std::to_string(value.i);
  case Value::Kind::Float:
    return "the float " + floatStr(value.f);
  case Value::Kind::Bool:
    return value.b ? "the bool true" : "the bool false";
  case Value::Kind::String:
    return "a string";
  case Value::Kind::Function:
    return "the function '" +
           (value.fn ? value.fn->name.name : value.builtin->name.str()) + "'";
  case Value::Kind::Tuple:
    return "a tuple of " + std::to_string(value.elements.size()) + " values";
  }
  llvm_unreachable("unknown value kind");
}

std::string sema::typeStr(mlir::Type type) {
  auto tensor = llvm::cast<mlir::RankedTensorType>(type);
  mlir::Type element = tensor.getElementType();
  std::string dtype = element.isF32()         ? "f32"
                      : element.isInteger(32) ? "i32"
                                              : "f64";
  return dtype + shape::str(tensor.getShape());
}

std::string Elaborator::uniqueScopeName(Frame &frame, std::string hint) {
  for (int64_t i : frame.loopIndices)
    hint += "." + std::to_string(i);
  std::string name = hint;
  for (unsigned n = 1; !frame.scopeNames.insert(name).second; ++n)
    name = hint + "_" + std::to_string(n);
  return name;
}

bool Elaborator::suggest(mlir::InFlightDiagnostic &diag, StringRef name,
                         const Frame *frame, std::optional<BuiltinKind> only) {
  std::string best;
  unsigned bestDistance = 3; // suggest only close matches
  auto consider = [&](StringRef candidate) {
    unsigned d =
        name.edit_distance(candidate, /*AllowReplacements=*/true, bestDistance);
    if (d < bestDistance && candidate != name) {
      bestDistance = d;
      best = candidate.str();
    }
  };
  if (frame)
    for (const auto &entry : frame->vars)
      consider(entry.getKey());
  if (!only)
    for (const auto &entry : functions)
      consider(entry.getKey());
  for (const Builtin &b : getBuiltins())
    if (!only || b.kind == *only)
      consider(b.name);
  if (best.empty())
    return false;
  diag << "; did you mean '" << best << "'?";
  return true;
}

mlir::Value Elaborator::createScalar(double value, mlir::Type elementType,
                                     SMLoc loc, Frame &frame) {
  auto type = mlir::RankedTensorType::get({}, elementType);
  mlir::Attribute element =
      elementType.isF32() ? mlir::Attribute(builder.getF32FloatAttr(value))
                          : mlir::Attribute(builder.getI32IntegerAttr(
                                static_cast<int32_t>(value)));
  return create<ConstantOp>(loc, frame,
                            mlir::DenseElementsAttr::get(type, element));
}

mlir::Value Elaborator::createArith(BinaryExpr::Op op, mlir::Value lhs,
                                    mlir::Value rhs, SMLoc loc, Frame &frame) {
  switch (op) {
  case BinaryExpr::Op::Add:
    return create<AddOp>(loc, frame, lhs, rhs);
  case BinaryExpr::Op::Sub:
    return create<SubOp>(loc, frame, lhs, rhs);
  case BinaryExpr::Op::Mul:
    return create<MulOp>(loc, frame, lhs, rhs);
  case BinaryExpr::Op::Div:
    return create<DivOp>(loc, frame, lhs, rhs);
  case BinaryExpr::Op::MatMul:
    break;
  }
  llvm_unreachable("'@' is not elementwise");
}

mlir::Type Elaborator::parseDType(const TypeExpr &type) {
  if (type.name == "f32")
    return builder.getF32Type();
  if (type.name == "i32")
    return builder.getI32Type();
  error(type.loc,
        "unknown element type '" + type.name + "'; expected 'f32' or 'i32'");
  return {};
}

/// Renders a dimension expression the way it was written.
static std::string dimStr(const Expr &e) {
  if (auto *i = llvm::dyn_cast<IntExpr>(&e))
    return std::to_string(i->value);
  if (auto *n = llvm::dyn_cast<NameExpr>(&e))
    return n->name;
  if (auto *u = llvm::dyn_cast<UnaryExpr>(&e))
    return "-" + dimStr(*u->operand);
  if (auto *b = llvm::dyn_cast<BinaryExpr>(&e)) {
    const char *op = b->op == BinaryExpr::Op::Add   ? " + "
                     : b->op == BinaryExpr::Op::Sub ? " - "
                     : b->op == BinaryExpr::Op::Mul ? " * "
                     : b->op == BinaryExpr::Op::Div ? " / "
                                                    : " @ ";
    return "(" + dimStr(*b->lhs) + op + dimStr(*b->rhs) + ")";
  }
  return "?";
}

static std::string typeExprStr(const TypeExpr &type) {
  if (!type.isTensor)
    return type.name;
  std::string s = type.name + "[";
  for (auto [i, d] : llvm::enumerate(type.dims))
    s += (i ? ", " : "") + dimStr(*d);
  return s + "]";
}

//===----------------------------------------------------------------------===//
// Argument binding
//===----------------------------------------------------------------------===//

std::optional<BoundArgs> Elaborator::bindArgs(const CallExpr &call,
                                              StringRef callee,
                                              llvm::ArrayRef<StringRef> params,
                                              llvm::ArrayRef<bool> optional,
                                              bool variadic) {
  BoundArgs bound;
  bound.exprs.assign(params.size(), nullptr);
  bound.locs.assign(params.size(), call.getLoc());
  bool ok = true;
  size_t positional = 0;
  bool seenKeyword = false;
  for (const Arg &arg : call.args) {
    if (arg.keyword.empty()) {
      if (seenKeyword) {
        error(arg.value->getLoc(),
              "positional argument follows a keyword argument");
        ok = false;
        continue;
      }
      // A variadic builtin's optional parameters are keyword-only:
      // concat(a, b, c, axis = 1).
      if (positional < params.size() && !(variadic && optional[positional])) {
        bound.exprs[positional] = arg.value.get();
        bound.locs[positional] = arg.value->getLoc();
      } else if (variadic) {
        bound.extra.push_back(arg.value.get());
      } else {
        error(arg.value->getLoc(),
              llvm::formatv("'{0}' takes {1} argument{2} but {3} {4} given",
                            callee, params.size(),
                            params.size() == 1 ? "" : "s", call.args.size(),
                            call.args.size() == 1 ? "was" : "were"));
        return std::nullopt;
      }
      ++positional;
      continue;
    }
    seenKeyword = true;
    auto it = llvm::find(params, arg.keyword);
    if (it == params.end()) {
      auto diag =
          error(arg.keywordLoc, "'" + callee + "' has no parameter named '" +
                                    arg.keyword + "'");
      std::string best;
      unsigned bestDistance = 3;
      for (StringRef p : params) {
        unsigned d = StringRef(arg.keyword).edit_distance(p, true, 3);
        if (d < bestDistance) {
          bestDistance = d;
          best = p.str();
        }
      }
      if (!best.empty())
        diag << "; did you mean '" << best << "'?";
      ok = false;
      continue;
    }
    size_t index = it - params.begin();
    if (bound.exprs[index]) {
      error(arg.keywordLoc, "argument '" + arg.keyword + "' of '" + callee +
                                "' is given twice");
      ok = false;
      continue;
    }
    bound.exprs[index] = arg.value.get();
    bound.locs[index] = arg.value->getLoc();
  }
  if (!ok)
    return std::nullopt;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!bound.exprs[i] && !optional[i]) {
      error(call.getLoc(),
            "missing argument '" + params[i] + "' in call to '" + callee + "'");
      return std::nullopt;
    }
  }
  return bound;
}

//===----------------------------------------------------------------------===//
// Typed evaluation helpers
//===----------------------------------------------------------------------===//

std::optional<int64_t> Elaborator::evalInt(const Expr &expr, Frame &frame,
                                           const llvm::Twine &what) {
  Value v = eval(expr, frame);
  if (v.isPoison())
    return std::nullopt;
  if (v.kind == Value::Kind::Float && std::floor(v.f) == v.f &&
      std::fabs(v.f) < 9e15)
    return static_cast<int64_t>(v.f);
  if (v.kind != Value::Kind::Int) {
    error(expr.getLoc(), what + " must be an int, got " + describe(v));
    return std::nullopt;
  }
  return v.i;
}

std::optional<double> Elaborator::evalNumber(const Expr &expr, Frame &frame,
                                             const llvm::Twine &what) {
  Value v = eval(expr, frame);
  if (v.isPoison())
    return std::nullopt;
  if (!v.isNumber()) {
    error(expr.getLoc(), what + " must be a number, got " + describe(v));
    return std::nullopt;
  }
  return v.asDouble();
}

mlir::Value Elaborator::evalTensor(const Expr &expr, Frame &frame,
                                   const llvm::Twine &what, bool floatOnly) {
  return asTensor(eval(expr, frame), expr.getLoc(), what, floatOnly);
}

mlir::Value Elaborator::asTensor(const Value &v, SMLoc loc,
                                 const llvm::Twine &what, bool floatOnly) {
  if (v.isPoison())
    return {};
  if (v.kind != Value::Kind::Tensor) {
    error(loc, what + " must be a tensor, got " + describe(v));
    return {};
  }
  if (floatOnly && !typeOf(v.tensor).getElementType().isF32()) {
    error(loc,
          what + " must be a float tensor, got " + typeStr(v.tensor.getType()));
    return {};
  }
  return v.tensor;
}

std::optional<int64_t> Elaborator::evalAxis(const Expr *expr, SMLoc loc,
                                            Frame &frame, mlir::Value x,
                                            int64_t defaultAxis) {
  int64_t axis = defaultAxis;
  if (expr) {
    std::optional<int64_t> a = evalInt(*expr, frame, "the axis");
    if (!a)
      return std::nullopt;
    axis = *a;
    loc = expr->getLoc();
  }
  std::string why;
  llvm::FailureOr<int64_t> normalized =
      shape::normalizeAxis(axis, typeOf(x).getRank(), why);
  if (failed(normalized)) {
    error(loc, why + " " + typeStr(x.getType()));
    return std::nullopt;
  }
  return *normalized;
}

mlir::RankedTensorType
Elaborator::evalTensorType(const TypeExpr &type, Frame &frame, StringRef what) {
  if (!type.isTensor) {
    error(type.loc, what +
                        " must have a tensor type such as 'f32[64, 784]', "
                        "got '" +
                        type.name + "'");
    return {};
  }
  mlir::Type dtype = parseDType(type);
  if (!dtype)
    return {};
  shape::Shape shape;
  for (const ExprPtr &d : type.dims) {
    std::optional<int64_t> dim = evalInt(*d, frame, "a dimension");
    if (!dim)
      return {};
    if (*dim <= 0) {
      error(d->getLoc(),
            "dimension must be positive, got " + std::to_string(*dim));
      return {};
    }
    shape.push_back(*dim);
  }
  std::string why;
  if (failed(shape::checkSize(shape, dtype.getIntOrFloatBitWidth() / 8, why))) {
    error(type.loc, what + ": " + why);
    return {};
  }
  return mlir::RankedTensorType::get(shape, dtype);
}

bool Elaborator::matchType(const TypeExpr &type, const Value &value,
                           Frame &frame, SMLoc loc, const llvm::Twine &what) {
  if (value.isPoison())
    return false;
  if (!type.isTensor) {
    StringRef name = type.name;
    bool ok = (name == "int" && value.kind == Value::Kind::Int) ||
              (name == "float" && value.isNumber()) ||
              (name == "bool" && value.kind == Value::Kind::Bool) ||
              (name == "str" && value.kind == Value::Kind::String) ||
              (name == "fn" && value.kind == Value::Kind::Function);
    if (name != "int" && name != "float" && name != "bool" && name != "str" &&
        name != "fn") {
      error(type.loc, "unknown type '" + name +
                          "'; expected a tensor type such as 'f32[B, 784]' "
                          "or one of int, float, bool, str, fn");
      return false;
    }
    if (!ok) {
      error(loc, what + " must be " + (name == "int" ? "an " : "a ") + name +
                     ", got " + describe(value));
      return false;
    }
    return true;
  }
  mlir::Type dtype = parseDType(type);
  if (!dtype)
    return false;
  if (value.kind != Value::Kind::Tensor) {
    error(loc, what + " must be a tensor " + typeExprStr(type) + ", got " +
                   describe(value));
    return false;
  }
  mlir::RankedTensorType actual = typeOf(value.tensor);
  auto mismatch = [&](const llvm::Twine &detail) {
    error(loc, what + " has type " + typeStr(actual) + " but " +
                   typeExprStr(type) + " was expected" + detail);
    return false;
  };
  if (actual.getElementType() != dtype)
    return mismatch("");
  if (static_cast<size_t>(actual.getRank()) != type.dims.size())
    return mismatch(" (rank " + std::to_string(actual.getRank()) + " vs " +
                    std::to_string(type.dims.size()) + ")");
  for (auto [i, d] : llvm::enumerate(type.dims)) {
    int64_t dim = actual.getShape()[i];
    // An unbound name binds a shape variable.
    if (auto *name = llvm::dyn_cast<NameExpr>(d.get())) {
      if (!frame.vars.count(name->name) && !functions.count(name->name) &&
          !lookupBuiltin(name->name)) {
        frame.vars[name->name] = Value::integer(dim);
        continue;
      }
    }
    std::optional<int64_t> expected = evalInt(*d, frame, "a dimension");
    if (!expected)
      return false;
    if (*expected != dim)
      return mismatch(
          llvm::formatv(" (dimension {0} is {1}, not {2})", i, dim, *expected)
              .str());
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

Value Elaborator::eval(const Expr &expr, Frame &frame, StringRef nameHint) {
  if (shouldStop())
    return Value::poison();
  FrameScope scope(*this, frame);
  if (!enterNesting(expr.getLoc()))
    return Value::poison();
  auto leave = llvm::make_scope_exit([&] { --nestingDepth; });
  switch (expr.getKind()) {
  case Expr::Kind::Int:
    return Value::integer(llvm::cast<IntExpr>(expr).value);
  case Expr::Kind::Float:
    return Value::real(llvm::cast<FloatExpr>(expr).value);
  case Expr::Kind::String:
    return Value::string(llvm::cast<StringExpr>(expr).value);
  case Expr::Kind::Name:
    return evalName(llvm::cast<NameExpr>(expr), frame);
  case Expr::Kind::Unary:
    return evalUnary(llvm::cast<UnaryExpr>(expr), frame);
  case Expr::Kind::Binary: {
    auto &b = llvm::cast<BinaryExpr>(expr);
    Value lhs = eval(*b.lhs, frame);
    Value rhs = eval(*b.rhs, frame);
    return evalBinary(b.op, b.getLoc(), lhs, rhs, frame);
  }
  case Expr::Kind::Call:
    return evalCall(llvm::cast<CallExpr>(expr), frame, nameHint);
  case Expr::Kind::Tuple: {
    std::vector<Value> elements;
    for (const ExprPtr &e : llvm::cast<TupleExpr>(expr).elements) {
      elements.push_back(eval(*e, frame));
      if (elements.back().isPoison())
        return Value::poison();
    }
    return Value::tuple(std::move(elements));
  }
  }
  llvm_unreachable("unknown expression kind");
}

Value Elaborator::evalName(const NameExpr &expr, Frame &frame) {
  auto it = frame.vars.find(expr.name);
  if (it != frame.vars.end())
    return it->second;
  if (auto fn = functions.find(expr.name); fn != functions.end())
    return Value::function(fn->second);
  if (const Builtin *b = lookupBuiltin(expr.name))
    return Value::function(b);
  if (expr.name == "true" || expr.name == "false")
    return Value::boolean(expr.name == "true");
  auto diag = error(expr.getLoc(), "unknown name '" + expr.name + "'");
  suggest(diag, expr.name, &frame);
  return Value::poison();
}

Value Elaborator::evalUnary(const UnaryExpr &expr, Frame &frame) {
  Value v = eval(*expr.operand, frame);
  switch (v.kind) {
  case Value::Kind::Poison:
    return v;
  case Value::Kind::Int:
    if (v.i == std::numeric_limits<int64_t>::min()) {
      error(expr.getLoc(), "integer overflow in constant expression");
      return Value::poison();
    }
    return Value::integer(-v.i);
  case Value::Kind::Float:
    return Value::real(-v.f);
  case Value::Kind::Tensor:
    if (!typeOf(v.tensor).getElementType().isF32())
      break;
    return Value::tensorOf(create<NegOp>(expr.getLoc(), frame, v.tensor));
  default:
    break;
  }
  error(expr.getLoc(), "cannot negate " + describe(v));
  return Value::poison();
}

Value Elaborator::evalBinary(BinaryExpr::Op op, SMLoc loc, Value lhs, Value rhs,
                             Frame &frame) {
  if (lhs.isPoison() || rhs.isPoison())
    return Value::poison();
  static const char *names[] = {"+", "-", "*", "/", "@"};
  const char *opName = names[static_cast<int>(op)];

  // Compile-time arithmetic on numbers.
  if (lhs.isNumber() && rhs.isNumber()) {
    if (op == BinaryExpr::Op::MatMul) {
      error(loc, "'@' needs tensor operands, got " + describe(lhs) + " and " +
                     describe(rhs));
      return Value::poison();
    }
    if (op == BinaryExpr::Op::Div) {
      if (rhs.asDouble() == 0) {
        error(loc, "division by zero");
        return Value::poison();
      }
      return Value::real(lhs.asDouble() / rhs.asDouble());
    }
    if (lhs.kind == Value::Kind::Int && rhs.kind == Value::Kind::Int) {
      int64_t r;
      bool overflow = op == BinaryExpr::Op::Add
                          ? __builtin_add_overflow(lhs.i, rhs.i, &r)
                      : op == BinaryExpr::Op::Sub
                          ? __builtin_sub_overflow(lhs.i, rhs.i, &r)
                          : __builtin_mul_overflow(lhs.i, rhs.i, &r);
      if (overflow) {
        error(loc, "integer overflow in constant expression");
        return Value::poison();
      }
      return Value::integer(r);
    }
    double a = lhs.asDouble(), b = rhs.asDouble();
    return Value::real(op == BinaryExpr::Op::Add   ? a + b
                       : op == BinaryExpr::Op::Sub ? a - b
                                                   : a * b);
  }

  bool lhsOk = lhs.kind == Value::Kind::Tensor || lhs.isNumber();
  bool rhsOk = rhs.kind == Value::Kind::Tensor || rhs.isNumber();
  if (!lhsOk || !rhsOk) {
    error(loc, std::string("operator '") + opName + "' cannot combine " +
                   describe(lhs) + " and " + describe(rhs));
    return Value::poison();
  }
  // Tensor arithmetic is on float tensors; i32 tensors hold labels.
  for (const Value *v : {&lhs, &rhs}) {
    if (v->kind == Value::Kind::Tensor &&
        !typeOf(v->tensor).getElementType().isF32()) {
      error(loc, std::string("operator '") + opName +
                     "' needs float tensors, got " +
                     typeStr(v->tensor.getType()) +
                     " (i32 tensors hold class labels)");
      return Value::poison();
    }
  }
  if (op == BinaryExpr::Op::MatMul) {
    if (lhs.kind != Value::Kind::Tensor || rhs.kind != Value::Kind::Tensor) {
      error(loc, "'@' needs tensor operands, got " + describe(lhs) + " and " +
                     describe(rhs));
      return Value::poison();
    }
    std::string why;
    if (failed(shape::matmul(typeOf(lhs.tensor).getShape(),
                             typeOf(rhs.tensor).getShape(), why))) {
      error(loc, why);
      return Value::poison();
    }
    return Value::tensorOf(
        create<MatmulOp>(loc, frame, lhs.tensor, rhs.tensor));
  }
  // Scalars become rank-0 constants that broadcast.
  mlir::Type element =
      typeOf(lhs.kind == Value::Kind::Tensor ? lhs.tensor : rhs.tensor)
          .getElementType();
  mlir::Value a = lhs.kind == Value::Kind::Tensor
                      ? lhs.tensor
                      : createScalar(lhs.asDouble(), element, loc, frame);
  mlir::Value b = rhs.kind == Value::Kind::Tensor
                      ? rhs.tensor
                      : createScalar(rhs.asDouble(), element, loc, frame);
  std::string why;
  if (failed(
          shape::broadcast(typeOf(a).getShape(), typeOf(b).getShape(), why))) {
    error(loc, std::string("operator '") + opName + "': " + why);
    return Value::poison();
  }
  return Value::tensorOf(createArith(op, a, b, loc, frame));
}

Value Elaborator::evalCall(const CallExpr &call, Frame &frame,
                           StringRef nameHint) {
  Value callee = eval(*call.callee, frame);
  if (callee.isPoison())
    return callee;
  if (callee.kind != Value::Kind::Function) {
    std::string what = "expression";
    if (auto *n = llvm::dyn_cast<NameExpr>(call.callee.get()))
      what = "'" + n->name + "'";
    error(call.getLoc(),
          what + " is not a function; it is " + describe(callee));
    return Value::poison();
  }
  if (numOps > kMaxNodes) {
    fatal(call.getLoc(), "the model is too large (more than " +
                             std::to_string(kMaxNodes) + " operations)");
    return Value::poison();
  }
  if (callee.fn && ++numCalls > kMaxCalls) {
    fatal(call.getLoc(), "the model is too large (more than " +
                             std::to_string(kMaxCalls) + " function calls)");
    return Value::poison();
  }
  if (callee.fn)
    return callFunction(*callee.fn, call, frame, nameHint);
  return callBuiltin(*callee.builtin, call, frame);
}

Value Elaborator::callFunction(const FnDecl &fn, const CallExpr &call,
                               Frame &frame, StringRef nameHint) {
  llvm::SmallVector<StringRef, 4> names;
  llvm::SmallVector<bool, 4> optional;
  for (const FnParam &p : fn.params) {
    names.push_back(p.name.name);
    optional.push_back(p.defaultValue != nullptr);
  }
  std::optional<BoundArgs> bound =
      bindArgs(call, fn.name.name, names, optional, /*variadic=*/false);
  if (!bound)
    return Value::poison();

  // In an entry block, a layer called inside an expression is named by its
  // order among such calls (`embedding`, `embedding_1`), which matches the
  // model's only if the block makes the same calls in the same order. Where
  // the model makes several, refuse rather than give a layer another's
  // parameters.
  if (entryBlock && nameHint.empty()) {
    std::string hint = frame.prefix + fn.name.name;
    for (int64_t i : frame.loopIndices)
      hint += "." + std::to_string(i);
    std::string second = hint + "_1.";
    for (const auto &entry : params)
      if (entry.getKey().starts_with(second)) {
        error(
            call.getLoc(),
            "'" + fn.name.name + "' is called inside an expression, so its " +
                "parameters are found by the order of such calls, but " +
                "model '" + modelName + "' calls it so more than once; " +
                "bind each call to a name, in the model and here (e.g. 'h = " +
                fn.name.name + "(...)')");
        return Value::poison();
      }
  }

  // The callee's scope is named before its arguments are evaluated, so that
  // calls in the arguments are numbered after it.
  std::string scope =
      uniqueScopeName(frame, nameHint.empty() ? fn.name.name : nameHint.str());
  std::vector<std::optional<Value>> args(fn.params.size());
  for (auto [i, e] : llvm::enumerate(bound->exprs)) {
    if (!e)
      continue;
    args[i] = eval(*e, frame);
    if (args[i]->isPoison())
      return Value::poison();
  }
  return invoke(fn, args, bound->locs, call.getLoc(), frame, scope);
}

Value Elaborator::invoke(const FnDecl &fn,
                         llvm::ArrayRef<std::optional<Value>> args,
                         llvm::ArrayRef<SMLoc> locs, SMLoc callLoc,
                         Frame &frame, const std::string &scope) {
  if (llvm::is_contained(callStack, &fn)) {
    error(callLoc, "recursive call to '" + fn.name.name + "' is not supported");
    return Value::poison();
  }
  if (callStack.size() >= kMaxCallDepth) {
    error(callLoc, "calls are nested too deeply (limit " +
                       std::to_string(kMaxCallDepth) + ")");
    return Value::poison();
  }
  Frame callee;
  callee.fn = &fn;
  callee.callerLoc = locOf(callLoc, frame);
  callee.prefix = frame.prefix + scope + ".";

  // Defaults are evaluated in the callee, so that they may refer to earlier
  // parameters and shape variables.
  for (auto [i, p] : llvm::enumerate(fn.params)) {
    Value v = args[i] ? *args[i] : eval(*p.defaultValue, callee);
    if (v.isPoison())
      return v;
    if (p.type &&
        !matchType(*p.type, v, callee, locs[i],
                   "argument '" + p.name.name + "' of '" + fn.name.name + "'"))
      return Value::poison();
    callee.vars[p.name.name] = v;
  }

  unsigned errorsBefore = reporter.getNumErrors();
  callStack.push_back(&fn);
  elaborateBlock(fn.body, callee);
  callStack.pop_back();
  if (reporter.getNumErrors() != errorsBefore && !callee.returned)
    return Value::poison();
  FrameScope calleeScope(*this, callee);
  if (!callee.returned) {
    error(fn.name.loc, "function '" + fn.name.name +
                           "' does not return a value (add 'return ...')");
    return Value::poison();
  }
  Value result = *callee.returned;
  if (fn.resultType &&
      !matchType(*fn.resultType, result, callee, fn.resultType->loc,
                 "the result of '" + fn.name.name + "'"))
    return Value::poison();
  return result;
}

//===----------------------------------------------------------------------===//
// Statements
//===----------------------------------------------------------------------===//

void Elaborator::elaborateBlock(const Block &block, Frame &frame) {
  FrameScope scope(*this, frame);
  for (const StmtPtr &stmt : block) {
    if (shouldStop())
      return;
    if (frame.returned) {
      error(stmt->getLoc(), "statement after 'return' is never executed");
      return;
    }
    elaborateStmt(*stmt, frame);
  }
}

void Elaborator::elaborateStmt(const Stmt &stmt, Frame &frame) {
  bool inModel = frame.fn == nullptr;
  switch (stmt.getKind()) {
  case Stmt::Kind::Let: {
    auto &let = llvm::cast<LetStmt>(stmt);
    // Call sites are named after the binding (its first name: `hs, h = ...`).
    StringRef hint = let.targets[0].name;
    Value v = eval(*let.value, frame, hint);
    // `a, b = e` takes the tuple `e` apart.
    size_t produced = v.kind == Value::Kind::Tuple ? v.elements.size() : 1;
    if (let.targets.size() != 1 && !v.isPoison() &&
        produced != let.targets.size()) {
      error(let.targets[std::min(produced, let.targets.size() - 1)].loc,
            llvm::formatv("{0} names are bound but the expression produces "
                          "{1}",
                          let.targets.size(),
                          produced == 1
                              ? std::string("one value")
                              : std::to_string(produced) + " values"));
      v = Value::poison();
    }
    for (auto [i, target] : llvm::enumerate(let.targets)) {
      if (functions.count(target.name) || lookupBuiltin(target.name)) {
        error(target.loc, "'" + target.name +
                              "' is a function; choose another name for the "
                              "variable");
        continue;
      }
      frame.vars[target.name] =
          let.targets.size() == 1 || v.isPoison() ? v : v.elements[i];
    }
    return;
  }
  case Stmt::Kind::Param:
    return elaborateParam(llvm::cast<ParamStmt>(stmt), frame);
  case Stmt::Kind::Return: {
    if (inModel) {
      error(stmt.getLoc(), "'return' is only allowed in a function; a model "
                           "declares 'loss' and 'output's");
      return;
    }
    frame.returned = eval(*llvm::cast<ReturnStmt>(stmt).value, frame);
    return;
  }
  case Stmt::Kind::For:
    return elaborateFor(llvm::cast<ForStmt>(stmt), frame);
  case Stmt::Kind::Input:
    if (!inModel) {
      error(stmt.getLoc(), "'input' is only allowed in a model; a function "
                           "receives its inputs as parameters");
      return;
    }
    return elaborateInput(llvm::cast<InputStmt>(stmt), frame);
  case Stmt::Kind::Output:
    if (!inModel) {
      error(stmt.getLoc(), "'output' is only allowed in a model");
      return;
    }
    return elaborateOutput(llvm::cast<OutputStmt>(stmt), frame);
  case Stmt::Kind::Loss:
    if (!inModel) {
      error(stmt.getLoc(), "'loss' is only allowed in a model; return the "
                           "value from the function instead");
      return;
    }
    return elaborateLoss(llvm::cast<LossStmt>(stmt), frame);
  }
}

/// An input is an argument of @forward.
void Elaborator::elaborateInput(const InputStmt &in, Frame &frame) {
  if (!frame.loopIndices.empty()) {
    error(in.getLoc(), "'input' cannot appear inside a loop");
    return;
  }
  if (auto it = inputLocs.find(in.name.name); it != inputLocs.end()) {
    error(in.name.loc, "redefinition of input '" + in.name.name + "'")
            .attachNote(reporter.getLoc(it->second))
        << "previous definition is here";
    return;
  }
  mlir::RankedTensorType type =
      evalTensorType(in.type, frame, "input '" + in.name.name + "'");
  if (!type) {
    frame.vars[in.name.name] = Value::poison();
    return;
  }
  inputLocs[in.name.name] = in.name.loc;
  mlir::Location loc = locOf(in.name.loc, frame);
  mlir::BlockArgument arg = current.getBody().addArgument(type, loc);
  ++numOps;
  inputs.push_back({in.name.name, arg, loc});
  frame.vars[in.name.name] = Value::tensorOf(arg);
}

void Elaborator::elaborateOutput(const OutputStmt &out, Frame &frame) {
  if (auto it = outputLocs.find(out.name.name); it != outputLocs.end()) {
    error(out.name.loc, "redefinition of output '" + out.name.name + "'")
            .attachNote(reporter.getLoc(it->second))
        << "previous definition is here";
    return;
  }
  outputLocs[out.name.name] = out.name.loc;
  mlir::Value value =
      evalTensor(*out.value, frame, "output '" + out.name.name + "'",
                 /*floatOnly=*/false);
  frame.vars[out.name.name] = value ? Value::tensorOf(value) : Value::poison();
  if (value)
    outputs.push_back({out.name.name, value});
}

void Elaborator::elaborateLoss(const LossStmt &stmt, Frame &frame) {
  if (entryBlock) {
    error(stmt.getLoc(), std::string("a ") + keyword(entryBlock->kind) +
                             " block has no loss; it declares 'output's");
    return;
  }
  if (lossLoc) {
    error(stmt.getLoc(), "the model already has a loss")
            .attachNote(reporter.getLoc(*lossLoc))
        << "the loss is defined here";
    return;
  }
  lossLoc = stmt.getLoc();
  mlir::Value value = evalTensor(*stmt.value, frame, "the loss");
  if (!value)
    return;
  if (typeOf(value).getRank() != 0) {
    error(stmt.value->getLoc(), "the loss must be a scalar (f32[]), got " +
                                    typeStr(value.getType()) +
                                    "; reduce it with mean(...) or sum(...)");
    return;
  }
  loss = value;

  // `loss reconstruction + kl`: a sum of two or more distinct names of f32
  // scalars names its terms.
  llvm::SmallVector<const NameExpr *> leaves;
  bool named = true;
  std::function<void(const Expr &)> collect = [&](const Expr &e) {
    if (auto *sum = llvm::dyn_cast<BinaryExpr>(&e);
        sum && sum->op == BinaryExpr::Op::Add) {
      collect(*sum->lhs);
      collect(*sum->rhs);
    } else if (auto *name = llvm::dyn_cast<NameExpr>(&e)) {
      leaves.push_back(name);
    } else {
      named = false;
    }
  };
  collect(*stmt.value);
  if (!named || leaves.size() < 2)
    return;
  std::vector<std::pair<std::string, mlir::Value>> terms;
  for (const NameExpr *leaf : leaves) {
    auto it = frame.vars.find(leaf->name);
    if (it == frame.vars.end() || it->second.kind != Value::Kind::Tensor ||
        typeOf(it->second.tensor).getRank() != 0 ||
        llvm::any_of(terms,
                     [&](const auto &t) { return t.first == leaf->name; }))
      return;
    terms.emplace_back(leaf->name, it->second.tensor);
  }
  lossTerms = std::move(terms);
}

void Elaborator::elaborateParam(const ParamStmt &stmt, Frame &frame) {
  const std::string &name = stmt.name.name;
  if (auto it = frame.params.find(name); it != frame.params.end()) {
    error(stmt.name.loc, "redefinition of param '" + name + "'")
            .attachNote(reporter.getLoc(it->second))
        << "previous definition is here";
    return;
  }
  frame.params[name] = stmt.name.loc;
  frame.vars[name] = Value::poison();
  mlir::RankedTensorType type =
      evalTensorType(stmt.type, frame, "param '" + name + "'");
  if (!type)
    return;
  if (!type.getElementType().isF32()) {
    error(stmt.type.loc, "param '" + name +
                             "' must be a float tensor (f32), "
                             "got " +
                             typeStr(type));
    return;
  }

  std::string fullName = frame.prefix + name;
  if (entryBlock) {
    // The model's parameter of the same name.
    auto it = params.find(fullName);
    if (it == params.end()) {
      error(stmt.name.loc, "'" + fullName + "' is not a parameter of model '" +
                               modelName + "'; a " + keyword(entryBlock->kind) +
                               " block uses the model's parameters: call its "
                               "layers with the names "
                               "the model binds them to");
      return;
    }
    if (it->second.getTensorType() != type) {
      error(stmt.name.loc, "param '" + fullName + "' is " + typeStr(type) +
                               " here but " +
                               typeStr(it->second.getTensorType()) +
                               " in model '" + modelName + "'");
      return;
    }
    frame.vars[name] = Value::tensorOf(
        create<LoadParamOp>(stmt.name.loc, frame, type, fullName));
    return;
  }
  std::optional<Initializer> init = evalInitializer(*stmt.init, type, frame);
  if (!init)
    return;
  params[fullName] = paramBuilder.create<ParamOp>(
      locOf(stmt.name.loc, frame), fullName, type, init->kind, init->args);
  frame.vars[name] = Value::tensorOf(
      create<LoadParamOp>(stmt.name.loc, frame, type, fullName));
}

void Elaborator::elaborateFor(const ForStmt &stmt, Frame &frame) {
  std::optional<int64_t> lo = evalInt(*stmt.lo, frame, "the loop start");
  std::optional<int64_t> hi = evalInt(*stmt.hi, frame, "the loop end");
  if (!lo || !hi)
    return;
  int64_t count;
  if (__builtin_sub_overflow(*hi, *lo, &count) ||
      count > static_cast<int64_t>(kMaxLoopIterations)) {
    error(stmt.getLoc(), "loop has too many iterations (limit " +
                             std::to_string(kMaxLoopIterations) + ")");
    return;
  }
  if (!enterNesting(stmt.getLoc()))
    return;
  auto leave = llvm::make_scope_exit([&] { --nestingDepth; });
  for (int64_t i = *lo; i < *hi; ++i) {
    if (++loopIterations > kMaxLoopIterations) {
      error(stmt.getLoc(), "loops unroll to too many iterations (limit " +
                               std::to_string(kMaxLoopIterations) + ")");
      return;
    }
    frame.vars[stmt.var.name] = Value::integer(i);
    frame.loopIndices.push_back(i);
    unsigned errorsBefore = reporter.getNumErrors();
    elaborateBlock(stmt.body, frame);
    frame.loopIndices.pop_back();
    // Report a mistake in the body once, not once per iteration.
    if (reporter.getNumErrors() != errorsBefore || frame.returned)
      return;
  }
}

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

bool Elaborator::collectFunctions() {
  bool ok = true;
  for (const FnDecl &fn : module.functions) {
    if (lookupBuiltin(fn.name.name)) {
      error(fn.name.loc, "'" + fn.name.name +
                             "' is a builtin; choose another name for the "
                             "function");
      ok = false;
      continue;
    }
    auto [it, inserted] = functions.try_emplace(fn.name.name, &fn);
    if (!inserted) {
      error(fn.name.loc, "redefinition of function '" + fn.name.name + "'")
              .attachNote(reporter.getLoc(it->second->name.loc))
          << "previous definition is here";
      ok = false;
    }
    llvm::StringMap<SMLoc> seen;
    for (const FnParam &p : fn.params) {
      auto [pit, fresh] = seen.try_emplace(p.name.name, p.name.loc);
      if (!fresh) {
        error(p.name.loc, "duplicate parameter '" + p.name.name +
                              "' in function '" + fn.name.name + "'")
                .attachNote(reporter.getLoc(pit->second))
            << "previous definition is here";
        ok = false;
      }
    }
  }
  return ok;
}

void Elaborator::elaborateModel(const ModelDecl &decl) {
  modelName = decl.name.name;
  Frame frame;
  elaborateBlock(decl.body, frame);
  if (reporter.hadError())
    return;
  if (!lossLoc) {
    error(decl.name.loc, "model '" + decl.name.name +
                             "' has no loss; add one such as "
                             "'loss cross_entropy(logits, label)'");
    return;
  }
  if (inputs.empty())
    error(decl.name.loc, "model '" + decl.name.name +
                             "' has no inputs; add 'input NAME: "
                             "f32[...]'");
}

mlir::LogicalResult Elaborator::finishModule() {
  // The module, @forward and its arguments are where the model starts: at its
  // first input.
  mlir::Location fileLoc = inputs.front().loc;
  moduleOp->getOperation()->setLoc(fileLoc);
  forward->setLoc(fileLoc);
  mlir::Operation *module = moduleOp->getOperation();
  module->setAttr(contract::kModelAttr, builder.getStringAttr(modelName));
  if (train)
    module->setAttr(contract::kTrainAttr, train);

  // Results: the loss, the outputs, the final carries of stateful scans
  // (arguments: the inputs and those scans' carries, in the order declared),
  // then the loss's named terms.
  llvm::SmallVector<mlir::Value> results{loss};
  for (const Output &out : outputs)
    results.push_back(out.value);
  for (const Carry &c : carries)
    results.push_back(c.final);
  for (const auto &term : lossTerms)
    results.push_back(term.second);
  builder.create<mlir::func::ReturnOp>(fileLoc, results);
  for (Input &in : inputs)
    in.value.setLoc(fileLoc);
  llvm::SmallVector<mlir::Type> resultTypes;
  for (mlir::Value v : results)
    resultTypes.push_back(v.getType());
  forward.setFunctionType(builder.getFunctionType(
      forward.getBody().getArgumentTypes(), resultTypes));

  using contract::Role;
  for (const Input &in : inputs)
    forward.setArgAttr(in.value.getArgNumber(),
                       contract::info(Role::Input).attr,
                       builder.getStringAttr(in.name));
  forward.setResultAttr(0, contract::info(Role::Loss).attr,
                        builder.getUnitAttr());
  for (auto [i, out] : llvm::enumerate(outputs))
    forward.setResultAttr(i + 1, contract::info(Role::Output).attr,
                          builder.getStringAttr(out.name));
  for (auto [i, c] : llvm::enumerate(carries)) {
    forward.setArgAttr(c.initial.getArgNumber(),
                       contract::info(Role::Carry).attr,
                       builder.getStringAttr(c.name));
    forward.setResultAttr(1 + outputs.size() + i,
                          contract::info(Role::Carry).attr,
                          builder.getStringAttr(c.name));
  }
  for (auto [i, term] : llvm::enumerate(lossTerms))
    forward.setResultAttr(1 + outputs.size() + carries.size() + i,
                          contract::info(Role::Term).attr,
                          builder.getStringAttr(term.first));
  // A generate block has carries of its own.
  carries.clear();

  if (failed(mlir::verify(*moduleOp))) {
    mlir::emitError(fileLoc,
                    "internal error: kilnc built invalid IR for model '")
        << modelName << "'";
    return mlir::failure();
  }
  return mlir::success();
}

Elaborator::Elaborator(const Module &module, DiagnosticReporter &reporter)
    : module(module), reporter(reporter), ctx(reporter.getContext()),
      builder(ctx), paramBuilder(ctx) {
  ctx->loadDialect<KilnDialect, mlir::func::FuncDialect>();
  moduleOp = mlir::ModuleOp::create(builder.getUnknownLoc());
  builder.setInsertionPointToEnd(moduleOp->getBody());
  forward = builder.create<mlir::func::FuncOp>(
      builder.getUnknownLoc(), "forward", builder.getFunctionType({}, {}));
  builder.setInsertionPointToEnd(forward.addEntryBlock());
  paramBuilder.setInsertionPoint(forward);
  current = forward;
}

mlir::OwningOpRef<mlir::ModuleOp> Elaborator::run() {
  bool ok = collectFunctions();
  if (module.models.empty()) {
    mlir::emitError(
        mlir::FileLineColLoc::get(
            ctx,
            reporter.getSourceMgr()
                .getMemoryBuffer(reporter.getSourceMgr().getMainFileID())
                ->getBufferIdentifier(),
            1, 1),
        "no model in this file; declare one with 'model NAME { ... }'");
    return nullptr;
  }
  for (size_t i = 1; i < module.models.size(); ++i) {
    error(module.models[i].name.loc, "only one model per file is supported; '" +
                                         module.models[0].name.name +
                                         "' is already declared")
            .attachNote(reporter.getLoc(module.models[0].name.loc))
        << "first model is here";
    ok = false;
  }
  if (!ok)
    return nullptr;
  elaborateModel(module.models[0]);
  if (reporter.hadError())
    return nullptr;
  for (size_t i = 1; i < module.trainings.size(); ++i) {
    error(module.trainings[i].loc, "more than one train block")
            .attachNote(reporter.getLoc(module.trainings[0].loc))
        << "first train block is here";
    return nullptr;
  }
  if (!module.trainings.empty())
    elaborateTrain(module.trainings[0]);
  if (reporter.hadError() || failed(finishModule()))
    return nullptr;
  // One block of each kind: each builds the entry point of its name.
  for (size_t i = 0; i < module.entries.size(); ++i) {
    const EntryDecl &decl = module.entries[i];
    for (size_t j = 0; j < i; ++j)
      if (module.entries[j].kind == decl.kind) {
        error(decl.loc,
              std::string("more than one ") + keyword(decl.kind) + " block")
                .attachNote(reporter.getLoc(module.entries[j].loc))
            << "first " << keyword(decl.kind) << " block is here";
        return nullptr;
      }
    elaborateEntryBlock(decl);
    if (reporter.hadError())
      return nullptr;
  }
  return std::move(moduleOp);
}

mlir::OwningOpRef<mlir::ModuleOp> kiln::analyze(const Module &module,
                                                DiagnosticReporter &reporter) {
  return Elaborator(module, reporter).run();
}
