//===- Sema.cpp - Semantic analysis and elaboration of .kiln models -------===//
//
// A tree-walking elaborator: compile-time values (ints, floats, functions) are
// evaluated, function calls are inlined with their own parameter scope, and
// tensor expressions become typed graph nodes. Errors are reported at the
// offending token; an erroneous expression yields a poison value that is
// silently propagated, so one mistake produces one diagnostic.
//
//===----------------------------------------------------------------------===//

#include "frontend/Sema.h"

#include "ir/ShapeRules.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <functional>
#include <limits>

using namespace kiln;
using namespace kiln::ast;
using graph::DType;
using graph::OpKind;
using graph::TensorType;
using llvm::SMLoc;
using llvm::StringRef;

//===----------------------------------------------------------------------===//
// graph helpers
//===----------------------------------------------------------------------===//

StringRef graph::str(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::I32:
    return "i32";
  }
  llvm_unreachable("unknown dtype");
}

std::string TensorType::str() const {
  return graph::str(dtype).str() + shape::str(shape);
}

namespace {

//===----------------------------------------------------------------------===//
// Builtins
//===----------------------------------------------------------------------===//

enum class BuiltinKind {
  Identity,
  Unary,     // f(x)
  Binary,    // f(a, b)
  Matmul,    // matmul(a, b)
  AxisNorm,  // softmax(x, axis = -1)
  Reduce,    // sum(x, axis = all, keepdims = false)
  Argmax,    // argmax(x, axis = -1)
  Reshape,   // reshape(x, d0, d1, ...)
  Flatten,   // flatten(x)
  Transpose, // transpose(x, p0, p1, ...)
  ClassLoss, // cross_entropy(logits, labels)
  PairLoss,  // mse(pred, target), bce_with_logits(logits, target)
  Conv,      // conv2d(x, w, b?, stride, padding, dilation)
  Pool,      // max_pool2d(x, kernel, stride = kernel, padding = 0)
  Dropout,   // dropout(x, rate)
  BatchNorm, // batch_norm(x, gamma, beta, running_mean, running_var, ...)
  Initializer,
  Optimizer,
  DataFormat,
};

struct Builtin {
  StringRef name;
  BuiltinKind kind;
  OpKind op;
  /// Parameter names; a name ending in '?' is optional (has a default).
  std::vector<StringRef> params;
  /// Accepts extra positional integers after the listed parameters.
  bool variadic = false;
};

const std::vector<Builtin> &getBuiltins() {
  static const std::vector<Builtin> builtins = [] {
    std::vector<Builtin> b;
    auto add = [&](StringRef name, BuiltinKind kind, OpKind op,
                   std::vector<StringRef> params, bool variadic = false) {
      b.push_back({name, kind, op, std::move(params), variadic});
    };
    add("identity", BuiltinKind::Identity, OpKind::Neg, {"x"});
    add("relu", BuiltinKind::Unary, OpKind::Relu, {"x"});
    add("sigmoid", BuiltinKind::Unary, OpKind::Sigmoid, {"x"});
    add("tanh", BuiltinKind::Unary, OpKind::Tanh, {"x"});
    add("exp", BuiltinKind::Unary, OpKind::Exp, {"x"});
    add("log", BuiltinKind::Unary, OpKind::Log, {"x"});
    add("sqrt", BuiltinKind::Unary, OpKind::Sqrt, {"x"});
    add("abs", BuiltinKind::Unary, OpKind::Abs, {"x"});
    add("gelu", BuiltinKind::Unary, OpKind::Gelu, {"x"});
    add("conv2d", BuiltinKind::Conv, OpKind::Conv2d,
        {"x", "filter", "bias?", "stride?", "padding?", "dilation?"});
    add("max_pool2d", BuiltinKind::Pool, OpKind::MaxPool2d,
        {"x", "kernel", "stride?", "padding?"});
    add("avg_pool2d", BuiltinKind::Pool, OpKind::AvgPool2d,
        {"x", "kernel", "stride?", "padding?"});
    add("dropout", BuiltinKind::Dropout, OpKind::Dropout, {"x", "rate"});
    add("batch_norm", BuiltinKind::BatchNorm, OpKind::Neg,
        {"x", "gamma", "beta", "running_mean", "running_var", "momentum?",
         "eps?"});
    add("neg", BuiltinKind::Unary, OpKind::Neg, {"x"});
    add("add", BuiltinKind::Binary, OpKind::Add, {"a", "b"});
    add("sub", BuiltinKind::Binary, OpKind::Sub, {"a", "b"});
    add("mul", BuiltinKind::Binary, OpKind::Mul, {"a", "b"});
    add("div", BuiltinKind::Binary, OpKind::Div, {"a", "b"});
    add("maximum", BuiltinKind::Binary, OpKind::Maximum, {"a", "b"});
    add("minimum", BuiltinKind::Binary, OpKind::Minimum, {"a", "b"});
    add("matmul", BuiltinKind::Matmul, OpKind::Matmul, {"a", "b"});
    add("softmax", BuiltinKind::AxisNorm, OpKind::Softmax, {"x", "axis?"});
    add("log_softmax", BuiltinKind::AxisNorm, OpKind::LogSoftmax,
        {"x", "axis?"});
    add("sum", BuiltinKind::Reduce, OpKind::ReduceSum,
        {"x", "axis?", "keepdims?"});
    add("mean", BuiltinKind::Reduce, OpKind::ReduceMean,
        {"x", "axis?", "keepdims?"});
    add("max", BuiltinKind::Reduce, OpKind::ReduceMax,
        {"x", "axis?", "keepdims?"});
    add("argmax", BuiltinKind::Argmax, OpKind::Argmax, {"x", "axis?"});
    add("reshape", BuiltinKind::Reshape, OpKind::Reshape, {"x"},
        /*variadic=*/true);
    add("flatten", BuiltinKind::Flatten, OpKind::Reshape, {"x"});
    add("transpose", BuiltinKind::Transpose, OpKind::Transpose, {"x"},
        /*variadic=*/true);
    add("cross_entropy", BuiltinKind::ClassLoss, OpKind::CrossEntropy,
        {"logits", "labels"});
    add("mse", BuiltinKind::PairLoss, OpKind::Mse, {"prediction", "target"});
    add("bce_with_logits", BuiltinKind::PairLoss, OpKind::BceWithLogits,
        {"logits", "target"});
    // Initializers (only as a param's initializer). `op` is unused.
    add("zeros", BuiltinKind::Initializer, OpKind::Neg, {});
    add("ones", BuiltinKind::Initializer, OpKind::Neg, {});
    add("constant", BuiltinKind::Initializer, OpKind::Neg, {"value"});
    add("uniform", BuiltinKind::Initializer, OpKind::Neg, {"low", "high"});
    add("normal", BuiltinKind::Initializer, OpKind::Neg, {"std?", "mean?"});
    for (StringRef name :
         {"glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal",
          "he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal"})
      add(name, BuiltinKind::Initializer, OpKind::Neg, {});
    // Optimizers (only in a train block).
    add("sgd", BuiltinKind::Optimizer, OpKind::Neg,
        {"lr?", "weight_decay?", "clip_norm?"});
    add("momentum", BuiltinKind::Optimizer, OpKind::Neg,
        {"lr?", "momentum?", "nesterov?", "weight_decay?", "clip_norm?"});
    add("adam", BuiltinKind::Optimizer, OpKind::Neg,
        {"lr?", "beta1?", "beta2?", "eps?", "weight_decay?", "clip_norm?"});
    add("adamw", BuiltinKind::Optimizer, OpKind::Neg,
        {"lr?", "beta1?", "beta2?", "eps?", "weight_decay?", "clip_norm?"});
    // Data formats (only in a train block).
    add("idx", BuiltinKind::DataFormat, OpKind::Neg, {"path", "scale?"});
    add("npy", BuiltinKind::DataFormat, OpKind::Neg, {"path", "scale?"});
    add("csv", BuiltinKind::DataFormat, OpKind::Neg,
        {"path", "scale?", "header?"});
    return b;
  }();
  return builtins;
}

const Builtin *lookupBuiltin(StringRef name) {
  for (const Builtin &b : getBuiltins())
    if (b.name == name)
      return &b;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Compile-time values
//===----------------------------------------------------------------------===//

struct Value {
  enum class Kind { Poison, Tensor, Int, Float, Bool, String, Function };
  Kind kind = Kind::Poison;
  unsigned node = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  const FnDecl *fn = nullptr;
  const Builtin *builtin = nullptr;

  static Value poison() { return {}; }
  static Value tensor(unsigned node) {
    Value v;
    v.kind = Kind::Tensor;
    v.node = node;
    return v;
  }
  static Value integer(int64_t i) {
    Value v;
    v.kind = Kind::Int;
    v.i = i;
    return v;
  }
  static Value real(double f) {
    Value v;
    v.kind = Kind::Float;
    v.f = f;
    return v;
  }
  static Value boolean(bool b) {
    Value v;
    v.kind = Kind::Bool;
    v.b = b;
    return v;
  }
  static Value string(std::string s) {
    Value v;
    v.kind = Kind::String;
    v.s = std::move(s);
    return v;
  }
  static Value function(const FnDecl *fn) {
    Value v;
    v.kind = Kind::Function;
    v.fn = fn;
    return v;
  }
  static Value function(const Builtin *builtin) {
    Value v;
    v.kind = Kind::Function;
    v.builtin = builtin;
    return v;
  }

  bool isPoison() const { return kind == Kind::Poison; }
  bool isNumber() const { return kind == Kind::Int || kind == Kind::Float; }
  double asDouble() const { return kind == Kind::Int ? double(i) : f; }
};

/// One activation of a model body or an inlined function.
struct Frame {
  const FnDecl *fn = nullptr; // null for the model body
  llvm::StringMap<Value> vars;
  /// Prefix of the parameters declared in this frame: `fc1.` (empty for the
  /// model).
  std::string prefix;
  /// The location of the call that created this frame (with its own callers).
  std::optional<mlir::Location> callerLoc;
  /// Names of the sub-scopes (call sites) created so far, to keep them unique.
  llvm::StringSet<> scopeNames;
  /// Params declared in this frame, for redefinition errors.
  llvm::StringMap<SMLoc> params;
  /// Indices of the enclosing `for` iterations, for naming call sites.
  std::vector<int64_t> loopIndices;
  std::optional<Value> returned;
};

/// Values of a call's parameters after binding its arguments.
struct BoundArgs {
  std::vector<const Expr *> exprs; // per parameter; null = default
  std::vector<SMLoc> locs; // per parameter; the call's loc when defaulted
  std::vector<const Expr *> extra; // variadic positional arguments
};

//===----------------------------------------------------------------------===//
// Elaborator
//===----------------------------------------------------------------------===//

class Elaborator {
public:
  Elaborator(const Module &module, DiagnosticReporter &reporter)
      : module(module), reporter(reporter), ctx(reporter.getContext()) {}

  std::optional<graph::Model> run();

private:
  // Declarations.
  bool collectFunctions();
  void elaborateModel(const ModelDecl &decl);
  void elaborateTrain(const TrainDecl &decl);

  // Statements.
  void elaborateBlock(const Block &block, Frame &frame);
  void elaborateStmt(const Stmt &stmt, Frame &frame);
  void elaborateParam(const ParamStmt &stmt, Frame &frame);
  void elaborateFor(const ForStmt &stmt, Frame &frame);

  // Expressions.
  Value eval(const Expr &expr, Frame &frame, StringRef nameHint = {});
  Value evalName(const NameExpr &expr, Frame &frame);
  Value evalUnary(const UnaryExpr &expr, Frame &frame);
  Value evalBinary(BinaryExpr::Op op, SMLoc loc, Value lhs, Value rhs,
                   Frame &frame);
  Value evalCall(const CallExpr &expr, Frame &frame, StringRef nameHint);
  Value callFunction(const FnDecl &fn, const CallExpr &call, Frame &frame,
                     StringRef nameHint);
  Value callBuiltin(const Builtin &builtin, const CallExpr &call, Frame &frame);
  Value callConv(const Builtin &builtin, const BoundArgs &bound, SMLoc loc,
                 Frame &frame);
  Value callPool(const Builtin &builtin, const BoundArgs &bound, SMLoc loc,
                 Frame &frame);
  Value callBatchNorm(const Builtin &builtin, const BoundArgs &bound, SMLoc loc,
                      Frame &frame);
  std::optional<llvm::SmallVector<int64_t, 2>> evalPair(const Expr *expr,
                                                        Frame &frame,
                                                        const llvm::Twine &what,
                                                        int64_t defaultValue);

  // Helpers.
  std::optional<BoundArgs> bindArgs(const CallExpr &call, StringRef callee,
                                    llvm::ArrayRef<StringRef> params,
                                    const std::vector<bool> &optional,
                                    bool variadic);
  std::optional<int64_t> evalInt(const Expr &expr, Frame &frame,
                                 const llvm::Twine &what);
  std::optional<double> evalNumber(const Expr &expr, Frame &frame,
                                   const llvm::Twine &what);
  std::optional<unsigned> evalTensor(const Expr &expr, Frame &frame,
                                     const llvm::Twine &what,
                                     bool floatOnly = true);
  std::optional<int64_t> evalAxis(const Expr *expr, SMLoc loc, Frame &frame,
                                  unsigned node, int64_t defaultAxis);
  std::optional<TensorType> evalTensorType(const TypeExpr &type, Frame &frame,
                                           StringRef what);
  bool matchType(const TypeExpr &type, const Value &value, Frame &frame,
                 SMLoc loc, const llvm::Twine &what);
  std::optional<DType> parseDType(const TypeExpr &type);
  unsigned addNode(OpKind kind, TensorType type,
                   llvm::ArrayRef<unsigned> operands, SMLoc loc, Frame &frame);
  unsigned constantLike(double value, const TensorType &like, SMLoc loc,
                        Frame &frame);
  mlir::Location locOf(SMLoc loc, const Frame &frame) const;
  std::string describe(const Value &value) const;
  std::string uniqueScopeName(Frame &frame, std::string hint);
  /// Appends "; did you mean 'x'?" for a close match among the frame's
  /// variables, the functions and the builtins, or only among the builtins of
  /// kind `only`.
  bool suggest(mlir::InFlightDiagnostic &diag, StringRef name,
               const Frame *frame,
               std::optional<BuiltinKind> only = std::nullopt);
  const graph::Node &node(unsigned id) const { return model.nodes[id]; }

  /// Reports an error at `loc`; inside an inlined function, at a CallSiteLoc
  /// so that the diagnostic also shows where the function was called from.
  mlir::InFlightDiagnostic error(SMLoc loc, const llvm::Twine &msg) {
    if (callerLoc)
      return reporter.emitError(
          mlir::CallSiteLoc::get(reporter.getLoc(loc), *callerLoc), msg);
    return reporter.emitError(loc, msg);
  }

  /// Makes error() attribute the errors to `frame` (with its call site) for as
  /// long as it lives.
  class FrameScope {
  public:
    FrameScope(Elaborator &e, const Frame &frame) : e(e), saved(e.callerLoc) {
      e.callerLoc = frame.callerLoc;
    }
    ~FrameScope() { e.callerLoc = saved; }

  private:
    Elaborator &e;
    std::optional<mlir::Location> saved;
  };

  /// Reports an error that ends elaboration (a size limit): nothing that
  /// follows would be meaningful, nor quick to compute.
  void fatal(SMLoc loc, const llvm::Twine &msg) {
    error(loc, msg);
    stopped = true;
  }
  bool shouldStop() const { return stopped || reporter.tooManyErrors(); }
  /// Enters one level of recursion (an expression or a loop body, each of
  /// which may inline calls); reports and stops past kMaxNestingDepth. The
  /// caller decrements nestingDepth when it returns true.
  bool enterNesting(SMLoc loc);

  const Module &module;
  DiagnosticReporter &reporter;
  mlir::MLIRContext *ctx;
  graph::Model model;
  llvm::StringMap<const FnDecl *> functions;
  std::vector<const FnDecl *> callStack;
  std::optional<SMLoc> lossLoc;
  llvm::StringMap<SMLoc> inputLocs, outputLocs;
  size_t loopIterations = 0;
  unsigned numDropouts = 0;
  /// Calls of user functions so far, and the current nesting of eval() and
  /// loop bodies (see enterNesting()).
  size_t numCalls = 0;
  unsigned nestingDepth = 0;
  /// The call site of the frame being elaborated (see error()).
  std::optional<mlir::Location> callerLoc;
  /// Set by fatal().
  bool stopped = false;
};

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

/// A float the way the source would write it: 0.001 and 2.5, not 0.00 and 2.50.
static std::string floatStr(double value) {
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
    return "a tensor " + node(value.node).type.str();
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
  }
  llvm_unreachable("unknown value kind");
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

unsigned Elaborator::addNode(OpKind kind, TensorType type,
                             llvm::ArrayRef<unsigned> operands, SMLoc loc,
                             Frame &frame) {
  graph::Node n(kind, std::move(type), locOf(loc, frame));
  n.operands.assign(operands.begin(), operands.end());
  model.nodes.push_back(std::move(n));
  return model.nodes.size() - 1;
}

unsigned Elaborator::constantLike(double value, const TensorType &like,
                                  SMLoc loc, Frame &frame) {
  unsigned id =
      addNode(OpKind::Constant, TensorType{like.dtype, {}}, {}, loc, frame);
  model.nodes[id].value = value;
  return id;
}

std::optional<DType> Elaborator::parseDType(const TypeExpr &type) {
  if (type.name == "f32")
    return DType::F32;
  if (type.name == "i32")
    return DType::I32;
  error(type.loc,
        "unknown element type '" + type.name + "'; expected 'f32' or 'i32'");
  return std::nullopt;
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

static std::string typeStr(const TypeExpr &type) {
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
                                              const std::vector<bool> &optional,
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
      if (positional < params.size()) {
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

std::optional<unsigned> Elaborator::evalTensor(const Expr &expr, Frame &frame,
                                               const llvm::Twine &what,
                                               bool floatOnly) {
  Value v = eval(expr, frame);
  if (v.isPoison())
    return std::nullopt;
  if (v.kind != Value::Kind::Tensor) {
    error(expr.getLoc(), what + " must be a tensor, got " + describe(v));
    return std::nullopt;
  }
  if (floatOnly && node(v.node).type.dtype != DType::F32) {
    error(expr.getLoc(),
          what + " must be a float tensor, got " + node(v.node).type.str());
    return std::nullopt;
  }
  return v.node;
}

std::optional<int64_t> Elaborator::evalAxis(const Expr *expr, SMLoc loc,
                                            Frame &frame, unsigned id,
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
      shape::normalizeAxis(axis, node(id).type.shape.size(), why);
  if (failed(normalized)) {
    error(loc, why + " " + node(id).type.str());
    return std::nullopt;
  }
  return *normalized;
}

std::optional<TensorType>
Elaborator::evalTensorType(const TypeExpr &type, Frame &frame, StringRef what) {
  if (!type.isTensor) {
    error(type.loc, what +
                        " must have a tensor type such as 'f32[64, 784]', "
                        "got '" +
                        type.name + "'");
    return std::nullopt;
  }
  std::optional<DType> dtype = parseDType(type);
  if (!dtype)
    return std::nullopt;
  TensorType t{*dtype, {}};
  for (const ExprPtr &d : type.dims) {
    std::optional<int64_t> dim = evalInt(*d, frame, "a dimension");
    if (!dim)
      return std::nullopt;
    if (*dim <= 0) {
      error(d->getLoc(),
            "dimension must be positive, got " + std::to_string(*dim));
      return std::nullopt;
    }
    t.shape.push_back(*dim);
  }
  return t;
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
  std::optional<DType> dtype = parseDType(type);
  if (!dtype)
    return false;
  if (value.kind != Value::Kind::Tensor) {
    error(loc, what + " must be a tensor " + typeStr(type) + ", got " +
                   describe(value));
    return false;
  }
  const TensorType &actual = node(value.node).type;
  auto mismatch = [&](const llvm::Twine &detail) {
    error(loc, what + " has type " + actual.str() + " but " + typeStr(type) +
                   " was expected" + detail);
    return false;
  };
  if (actual.dtype != *dtype)
    return mismatch("");
  if (actual.shape.size() != type.dims.size())
    return mismatch(" (rank " + std::to_string(actual.shape.size()) + " vs " +
                    std::to_string(type.dims.size()) + ")");
  for (auto [i, d] : llvm::enumerate(type.dims)) {
    int64_t dim = actual.shape[i];
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
    if (node(v.node).type.dtype != DType::F32)
      break;
    return Value::tensor(addNode(OpKind::Neg, node(v.node).type, {v.node},
                                 expr.getLoc(), frame));
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
        node(v->node).type.dtype != DType::F32) {
      error(loc, std::string("operator '") + opName +
                     "' needs float tensors, got " + node(v->node).type.str() +
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
    llvm::FailureOr<shape::Shape> s = shape::matmul(
        node(lhs.node).type.shape, node(rhs.node).type.shape, why);
    if (failed(s)) {
      error(loc, why);
      return Value::poison();
    }
    return Value::tensor(addNode(OpKind::Matmul, TensorType{DType::F32, *s},
                                 {lhs.node, rhs.node}, loc, frame));
  }
  // Scalars become rank-0 constants that broadcast.
  const TensorType &like =
      node(lhs.kind == Value::Kind::Tensor ? lhs.node : rhs.node).type;
  unsigned a = lhs.kind == Value::Kind::Tensor
                   ? lhs.node
                   : constantLike(lhs.asDouble(), like, loc, frame);
  unsigned b = rhs.kind == Value::Kind::Tensor
                   ? rhs.node
                   : constantLike(rhs.asDouble(), like, loc, frame);
  std::string why;
  llvm::FailureOr<shape::Shape> s =
      shape::broadcast(node(a).type.shape, node(b).type.shape, why);
  if (failed(s)) {
    error(loc, std::string("operator '") + opName + "': " + why);
    return Value::poison();
  }
  OpKind kind = op == BinaryExpr::Op::Add   ? OpKind::Add
                : op == BinaryExpr::Op::Sub ? OpKind::Sub
                : op == BinaryExpr::Op::Mul ? OpKind::Mul
                                            : OpKind::Div;
  return Value::tensor(
      addNode(kind, TensorType{DType::F32, *s}, {a, b}, loc, frame));
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
  if (model.nodes.size() > kMaxNodes) {
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
  if (llvm::is_contained(callStack, &fn)) {
    error(call.getLoc(),
          "recursive call to '" + fn.name.name + "' is not supported");
    return Value::poison();
  }
  if (callStack.size() >= kMaxCallDepth) {
    error(call.getLoc(), "calls are nested too deeply (limit " +
                             std::to_string(kMaxCallDepth) + ")");
    return Value::poison();
  }
  std::vector<StringRef> names;
  std::vector<bool> optional;
  for (const FnParam &p : fn.params) {
    names.push_back(p.name.name);
    optional.push_back(p.defaultValue != nullptr);
  }
  std::optional<BoundArgs> bound =
      bindArgs(call, fn.name.name, names, optional, /*variadic=*/false);
  if (!bound)
    return Value::poison();

  Frame callee;
  callee.fn = &fn;
  callee.callerLoc = locOf(call.getLoc(), frame);
  std::string scope =
      uniqueScopeName(frame, nameHint.empty() ? fn.name.name : nameHint.str());
  callee.prefix = frame.prefix + scope + ".";

  // Arguments are evaluated in the caller, defaults in the callee (so that they
  // may refer to earlier parameters and shape variables).
  for (auto [i, p] : llvm::enumerate(fn.params)) {
    Value v = bound->exprs[i] ? eval(*bound->exprs[i], frame)
                              : eval(*p.defaultValue, callee);
    if (v.isPoison())
      return v;
    if (p.type &&
        !matchType(*p.type, v, callee, bound->locs[i],
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

Value Elaborator::callBuiltin(const Builtin &builtin, const CallExpr &call,
                              Frame &frame) {
  std::vector<StringRef> names;
  std::vector<bool> optional;
  for (StringRef p : builtin.params) {
    optional.push_back(p.consume_back("?"));
    names.push_back(p);
  }
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
  default:
    break;
  }

  std::optional<BoundArgs> bound =
      bindArgs(call, builtin.name, names, optional, builtin.variadic);
  if (!bound)
    return Value::poison();
  auto arg = [&](unsigned i) { return bound->exprs[i]; };
  auto tensorArg = [&](unsigned i, bool floatOnly = true) {
    return evalTensor(*arg(i), frame,
                      "argument '" + names[i].str() + "' of '" +
                          builtin.name.str() + "'",
                      floatOnly);
  };

  switch (builtin.kind) {
  case BuiltinKind::Identity:
    return eval(*arg(0), frame);
  case BuiltinKind::Unary: {
    std::optional<unsigned> x = tensorArg(0);
    if (!x)
      return Value::poison();
    return Value::tensor(addNode(builtin.op, node(*x).type, {*x}, loc, frame));
  }
  case BuiltinKind::Binary:
  case BuiltinKind::Matmul: {
    Value a = eval(*arg(0), frame), b = eval(*arg(1), frame);
    BinaryExpr::Op op;
    switch (builtin.op) {
    case OpKind::Add:
      op = BinaryExpr::Op::Add;
      break;
    case OpKind::Sub:
      op = BinaryExpr::Op::Sub;
      break;
    case OpKind::Mul:
      op = BinaryExpr::Op::Mul;
      break;
    case OpKind::Div:
      op = BinaryExpr::Op::Div;
      break;
    case OpKind::Matmul:
      op = BinaryExpr::Op::MatMul;
      break;
    default: { // maximum, minimum: tensors with broadcasting
      std::optional<unsigned> x = tensorArg(0), y = tensorArg(1);
      if (!x || !y)
        return Value::poison();
      std::string why;
      llvm::FailureOr<shape::Shape> s =
          shape::broadcast(node(*x).type.shape, node(*y).type.shape, why);
      if (failed(s)) {
        error(loc, "'" + builtin.name + "': " + why);
        return Value::poison();
      }
      return Value::tensor(addNode(builtin.op, TensorType{DType::F32, *s},
                                   {*x, *y}, loc, frame));
    }
    }
    return evalBinary(op, loc, a, b, frame);
  }
  case BuiltinKind::AxisNorm: {
    std::optional<unsigned> x = tensorArg(0);
    if (!x)
      return Value::poison();
    std::optional<int64_t> axis = evalAxis(arg(1), loc, frame, *x, -1);
    if (!axis)
      return Value::poison();
    unsigned id = addNode(builtin.op, node(*x).type, {*x}, loc, frame);
    model.nodes[id].axis = *axis;
    return Value::tensor(id);
  }
  case BuiltinKind::Reduce: {
    std::optional<unsigned> x = tensorArg(0);
    if (!x)
      return Value::poison();
    llvm::SmallVector<int64_t, 4> axes;
    if (arg(1)) {
      std::optional<int64_t> axis = evalAxis(arg(1), loc, frame, *x, 0);
      if (!axis)
        return Value::poison();
      axes.push_back(*axis);
    } else {
      for (size_t i = 0; i < node(*x).type.shape.size(); ++i)
        axes.push_back(i);
    }
    bool keepDims = false;
    if (arg(2)) {
      Value k = eval(*arg(2), frame);
      if (k.isPoison())
        return k;
      if (k.kind != Value::Kind::Bool) {
        error(arg(2)->getLoc(),
              "'keepdims' must be true or false, got " + describe(k));
        return Value::poison();
      }
      keepDims = k.b;
    }
    std::string why;
    llvm::FailureOr<shape::Shape> s =
        shape::reduce(node(*x).type.shape, axes, keepDims, why);
    if (failed(s)) {
      error(loc, why);
      return Value::poison();
    }
    unsigned id =
        addNode(builtin.op, TensorType{DType::F32, *s}, {*x}, loc, frame);
    model.nodes[id].axes = axes;
    model.nodes[id].keepDims = keepDims;
    return Value::tensor(id);
  }
  case BuiltinKind::Argmax: {
    std::optional<unsigned> x = tensorArg(0);
    if (!x)
      return Value::poison();
    std::optional<int64_t> axis = evalAxis(arg(1), loc, frame, *x, -1);
    if (!axis)
      return Value::poison();
    std::string why;
    llvm::FailureOr<shape::Shape> s =
        shape::dropAxis(node(*x).type.shape, *axis, why);
    if (failed(s)) {
      error(loc, why);
      return Value::poison();
    }
    unsigned id =
        addNode(OpKind::Argmax, TensorType{DType::I32, *s}, {*x}, loc, frame);
    model.nodes[id].axis = *axis;
    return Value::tensor(id);
  }
  case BuiltinKind::Reshape:
  case BuiltinKind::Flatten: {
    std::optional<unsigned> x = tensorArg(0, /*floatOnly=*/false);
    if (!x)
      return Value::poison();
    llvm::SmallVector<int64_t, 4> target;
    const TensorType &in = node(*x).type;
    if (builtin.kind == BuiltinKind::Flatten) {
      if (in.shape.empty()) {
        error(loc, "flatten needs a tensor of rank >= 1, got " + in.str());
        return Value::poison();
      }
      target = {in.shape[0], -1};
    } else {
      if (bound->extra.empty()) {
        error(loc, "reshape needs the new dimensions: reshape(x, 64, -1)");
        return Value::poison();
      }
      for (const Expr *e : bound->extra) {
        std::optional<int64_t> d = evalInt(*e, frame, "a reshape dimension");
        if (!d)
          return Value::poison();
        target.push_back(*d);
      }
    }
    std::string why;
    llvm::FailureOr<shape::Shape> s = shape::reshape(in.shape, target, why);
    if (failed(s)) {
      error(loc, why);
      return Value::poison();
    }
    return Value::tensor(
        addNode(OpKind::Reshape, TensorType{in.dtype, *s}, {*x}, loc, frame));
  }
  case BuiltinKind::Transpose: {
    std::optional<unsigned> x = tensorArg(0, /*floatOnly=*/false);
    if (!x)
      return Value::poison();
    const TensorType &in = node(*x).type;
    llvm::SmallVector<int64_t, 4> perm;
    if (bound->extra.empty()) {
      if (in.shape.size() < 2) {
        error(loc, "transpose without a permutation swaps the last two "
                   "dimensions and needs rank >= 2, got " +
                       in.str());
        return Value::poison();
      }
      for (size_t i = 0; i < in.shape.size(); ++i)
        perm.push_back(i);
      std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
    } else {
      for (const Expr *e : bound->extra) {
        std::optional<int64_t> p = evalInt(*e, frame, "a permutation entry");
        if (!p)
          return Value::poison();
        std::string why;
        llvm::FailureOr<int64_t> a =
            shape::normalizeAxis(*p, in.shape.size(), why);
        if (failed(a)) {
          error(e->getLoc(), why);
          return Value::poison();
        }
        perm.push_back(*a);
      }
    }
    std::string why;
    llvm::FailureOr<shape::Shape> s = shape::transpose(in.shape, perm, why);
    if (failed(s)) {
      error(loc, why);
      return Value::poison();
    }
    unsigned id =
        addNode(OpKind::Transpose, TensorType{in.dtype, *s}, {*x}, loc, frame);
    model.nodes[id].axes = perm;
    return Value::tensor(id);
  }
  case BuiltinKind::ClassLoss: {
    std::optional<unsigned> logits = tensorArg(0);
    if (!logits)
      return Value::poison();
    std::optional<unsigned> labels = tensorArg(1, /*floatOnly=*/false);
    if (!labels)
      return Value::poison();
    if (node(*labels).type.dtype != DType::I32) {
      error(arg(1)->getLoc(), "the labels of 'cross_entropy' must be an i32 "
                              "tensor of class indices, got " +
                                  node(*labels).type.str());
      return Value::poison();
    }
    std::string why;
    if (failed(shape::crossEntropy(node(*logits).type.shape,
                                   node(*labels).type.shape, why))) {
      error(loc, why);
      return Value::poison();
    }
    return Value::tensor(addNode(OpKind::CrossEntropy,
                                 TensorType{DType::F32, {}}, {*logits, *labels},
                                 loc, frame));
  }
  case BuiltinKind::Conv:
    return callConv(builtin, *bound, loc, frame);
  case BuiltinKind::Pool:
    return callPool(builtin, *bound, loc, frame);
  case BuiltinKind::Dropout: {
    std::optional<unsigned> x = tensorArg(0);
    std::optional<double> rate = evalNumber(*arg(1), frame, "the dropout rate");
    if (!x || !rate)
      return Value::poison();
    if (!(*rate >= 0 && *rate < 1)) {
      error(arg(1)->getLoc(),
            llvm::formatv("the dropout rate must be in [0, 1), got {0}", *rate)
                .str());
      return Value::poison();
    }
    unsigned id = addNode(OpKind::Dropout, node(*x).type, {*x}, loc, frame);
    model.nodes[id].value = *rate;
    model.nodes[id].index = ++numDropouts; // the mask's salt
    return Value::tensor(id);
  }
  case BuiltinKind::BatchNorm:
    return callBatchNorm(builtin, *bound, loc, frame);
  case BuiltinKind::PairLoss: {
    std::optional<unsigned> a = tensorArg(0), b = tensorArg(1);
    if (!a || !b)
      return Value::poison();
    std::string why;
    if (failed(shape::sameShapeLoss(node(*a).type.shape, node(*b).type.shape,
                                    why))) {
      error(loc, "'" + builtin.name + "': " + why);
      return Value::poison();
    }
    return Value::tensor(
        addNode(builtin.op, TensorType{DType::F32, {}}, {*a, *b}, loc, frame));
  }
  default:
    break;
  }
  llvm_unreachable("unhandled builtin kind");
}

std::optional<llvm::SmallVector<int64_t, 2>>
Elaborator::evalPair(const Expr *expr, Frame &frame, const llvm::Twine &what,
                     int64_t defaultValue) {
  if (!expr)
    return llvm::SmallVector<int64_t, 2>{defaultValue, defaultValue};
  std::optional<int64_t> v = evalInt(*expr, frame, what);
  if (!v)
    return std::nullopt;
  return llvm::SmallVector<int64_t, 2>{*v, *v};
}

Value Elaborator::callConv(const Builtin &builtin, const BoundArgs &bound,
                           SMLoc loc, Frame &frame) {
  auto what = [&](unsigned i) {
    return "argument '" + builtin.params[i].rtrim('?').str() + "' of 'conv2d'";
  };
  std::optional<unsigned> x = evalTensor(*bound.exprs[0], frame, what(0));
  std::optional<unsigned> w = evalTensor(*bound.exprs[1], frame, what(1));
  if (!x || !w)
    return Value::poison();
  std::optional<unsigned> b;
  if (bound.exprs[2] && !(b = evalTensor(*bound.exprs[2], frame, what(2))))
    return Value::poison();
  auto strides = evalPair(bound.exprs[3], frame, "the stride", 1);
  auto padding = evalPair(bound.exprs[4], frame, "the padding", 0);
  auto dilation = evalPair(bound.exprs[5], frame, "the dilation", 1);
  if (!strides || !padding || !dilation)
    return Value::poison();
  std::string why;
  llvm::FailureOr<shape::Shape> s =
      shape::conv2d(node(*x).type.shape, node(*w).type.shape, *strides,
                    *padding, *dilation, why);
  if (failed(s)) {
    error(loc, why);
    return Value::poison();
  }
  unsigned id =
      addNode(OpKind::Conv2d, TensorType{DType::F32, *s}, {*x, *w}, loc, frame);
  model.nodes[id].strides = *strides;
  model.nodes[id].padding = *padding;
  model.nodes[id].dilation = *dilation;
  if (!b)
    return Value::tensor(id);
  // The bias is per output channel: [O], broadcast as [O, 1, 1].
  int64_t channels = (*s)[1];
  if (node(*b).type.shape != shape::Shape{channels}) {
    error(bound.exprs[2]->getLoc(),
          "the bias of 'conv2d' must have shape [" + std::to_string(channels) +
              "] (one value per output channel), got " + node(*b).type.str());
    return Value::poison();
  }
  unsigned b3 =
      addNode(OpKind::Reshape, TensorType{DType::F32, {channels, 1, 1}}, {*b},
              loc, frame);
  return Value::tensor(
      addNode(OpKind::Add, TensorType{DType::F32, *s}, {id, b3}, loc, frame));
}

Value Elaborator::callPool(const Builtin &builtin, const BoundArgs &bound,
                           SMLoc loc, Frame &frame) {
  std::optional<unsigned> x = evalTensor(
      *bound.exprs[0], frame, "argument 'x' of '" + builtin.name + "'");
  auto kernel = evalPair(bound.exprs[1], frame, "the pooling kernel", 1);
  if (!x || !kernel)
    return Value::poison();
  auto strides = evalPair(bound.exprs[2], frame, "the stride", (*kernel)[0]);
  auto padding = evalPair(bound.exprs[3], frame, "the padding", 0);
  if (!strides || !padding)
    return Value::poison();
  std::string why;
  llvm::FailureOr<shape::Shape> s =
      shape::pool2d(node(*x).type.shape, *kernel, *strides, *padding, why);
  if (failed(s)) {
    error(loc, "'" + builtin.name + "': " + why);
    return Value::poison();
  }
  unsigned id =
      addNode(builtin.op, TensorType{DType::F32, *s}, {*x}, loc, frame);
  model.nodes[id].kernel = *kernel;
  model.nodes[id].strides = *strides;
  model.nodes[id].padding = *padding;
  return Value::tensor(id);
}

Value Elaborator::callBatchNorm(const Builtin &builtin, const BoundArgs &bound,
                                SMLoc loc, Frame &frame) {
  const char *names[] = {"x", "gamma", "beta", "running_mean", "running_var"};
  unsigned ops[5];
  for (unsigned i = 0; i < 5; ++i) {
    std::optional<unsigned> t =
        evalTensor(*bound.exprs[i], frame,
                   llvm::Twine("argument '") + names[i] + "' of 'batch_norm'");
    if (!t)
      return Value::poison();
    ops[i] = *t;
  }
  double momentum = 0.1, eps = 1e-5;
  if (bound.exprs[5]) {
    std::optional<double> m = evalNumber(*bound.exprs[5], frame, "'momentum'");
    if (!m)
      return Value::poison();
    momentum = *m;
  }
  if (bound.exprs[6]) {
    std::optional<double> e = evalNumber(*bound.exprs[6], frame, "'eps'");
    if (!e)
      return Value::poison();
    eps = *e;
  }
  if (!(momentum > 0 && momentum <= 1) || !(eps > 0)) {
    error(loc, "batch_norm needs momentum in (0, 1] and eps > 0");
    return Value::poison();
  }
  const TensorType &xt = node(ops[0]).type;
  if (xt.shape.size() != 2 && xt.shape.size() != 4) {
    error(bound.exprs[0]->getLoc(),
          "batch_norm normalizes [N, C] or [N, C, H, W] tensors, got " +
              xt.str());
    return Value::poison();
  }
  int64_t channels = xt.shape[1];
  for (unsigned i = 1; i < 5; ++i) {
    if (node(ops[i]).type.shape != shape::Shape{channels}) {
      error(bound.exprs[i]->getLoc(),
            llvm::Twine("'") + names[i] +
                "' of 'batch_norm' must have shape [" +
                std::to_string(channels) + "], got " + node(ops[i]).type.str());
      return Value::poison();
    }
  }
  // The running statistics are buffers: parameters set by the step itself.
  for (unsigned i = 3; i < 5; ++i) {
    const graph::Node &n = node(ops[i]);
    if (n.kind != OpKind::Param) {
      error(bound.exprs[i]->getLoc(),
            llvm::Twine("'") + names[i] +
                "' of 'batch_norm' must be a param (it holds a running "
                "statistic that training updates)");
      return Value::poison();
    }
    model.params[n.index].buffer = true;
  }

  // y = gamma * (x - mean) / sqrt(var + eps) + beta, with the batch's
  // statistics in training and the running ones in evaluation.
  llvm::SmallVector<int64_t, 4> axes, keepShape(xt.shape.size(), 1);
  keepShape[1] = channels;
  for (size_t a = 0; a < xt.shape.size(); ++a)
    if (a != 1)
      axes.push_back(a);
  TensorType keep{DType::F32, keepShape}, vec{DType::F32, {channels}};
  int64_t count = shape::numElements(xt.shape) / channels;
  auto reduceMean = [&](unsigned v) {
    unsigned id = addNode(OpKind::ReduceMean, keep, {v}, loc, frame);
    model.nodes[id].axes = axes;
    model.nodes[id].keepDims = true;
    return id;
  };
  auto binary = [&](OpKind kind, unsigned a, unsigned b) {
    std::string ignored;
    shape::Shape s =
        *shape::broadcast(node(a).type.shape, node(b).type.shape, ignored);
    return addNode(kind, TensorType{DType::F32, s}, {a, b}, loc, frame);
  };
  auto scalar = [&](double v) {
    return constantLike(v, TensorType{DType::F32, {}}, loc, frame);
  };
  auto reshape = [&](unsigned v, const TensorType &t) {
    return addNode(OpKind::Reshape, t, {v}, loc, frame);
  };
  auto normalize = [&](unsigned centered, unsigned var) {
    unsigned denom =
        addNode(OpKind::Sqrt, keep, {binary(OpKind::Add, var, scalar(eps))},
                loc, frame);
    return binary(OpKind::Div, centered, denom);
  };
  unsigned mean = reduceMean(ops[0]);
  unsigned centered = binary(OpKind::Sub, ops[0], mean);
  unsigned var = reduceMean(binary(OpKind::Mul, centered, centered));
  unsigned trainValue = normalize(centered, var);
  unsigned runMean = reshape(ops[3], keep), runVar = reshape(ops[4], keep);
  unsigned evalValue = normalize(binary(OpKind::Sub, ops[0], runMean), runVar);
  unsigned xhat =
      addNode(OpKind::IfTraining, xt, {trainValue, evalValue}, loc, frame);
  unsigned y =
      binary(OpKind::Add, binary(OpKind::Mul, xhat, reshape(ops[1], keep)),
             reshape(ops[2], keep));
  // Running statistics as PyTorch keeps them (the variance unbiased).
  auto update = [&](unsigned running, unsigned batchStat, double scale) {
    unsigned stat = reshape(batchStat, vec);
    unsigned mixed =
        binary(OpKind::Add, binary(OpKind::Mul, running, scalar(1 - momentum)),
               binary(OpKind::Mul, stat, scalar(momentum * scale)));
    unsigned id = addNode(OpKind::AssignParam, vec, {mixed}, loc, frame);
    model.nodes[id].index = node(running).index;
  };
  update(ops[3], mean, 1.0);
  update(ops[4], var, count > 1 ? double(count) / double(count - 1) : 1.0);
  return Value::tensor(y);
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
    StringRef hint =
        let.targets.size() == 1 ? StringRef(let.targets[0].name) : StringRef();
    Value v = eval(*let.value, frame, hint);
    if (let.targets.size() != 1 && !v.isPoison()) {
      error(let.targets[1].loc,
            llvm::formatv("{0} names are bound but the expression produces "
                          "one value",
                          let.targets.size()));
      v = Value::poison();
    }
    for (const Ident &target : let.targets) {
      if (functions.count(target.name) || lookupBuiltin(target.name)) {
        error(target.loc, "'" + target.name +
                              "' is a function; choose another name for the "
                              "variable");
        continue;
      }
      frame.vars[target.name] = v;
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
  case Stmt::Kind::Input: {
    auto &in = llvm::cast<InputStmt>(stmt);
    if (!inModel) {
      error(stmt.getLoc(), "'input' is only allowed in a model; a function "
                           "receives its inputs as parameters");
      return;
    }
    if (!frame.loopIndices.empty()) {
      error(stmt.getLoc(), "'input' cannot appear inside a loop");
      return;
    }
    if (auto it = inputLocs.find(in.name.name); it != inputLocs.end()) {
      error(in.name.loc, "redefinition of input '" + in.name.name + "'")
              .attachNote(reporter.getLoc(it->second))
          << "previous definition is here";
      return;
    }
    std::optional<TensorType> type =
        evalTensorType(in.type, frame, "input '" + in.name.name + "'");
    if (!type) {
      frame.vars[in.name.name] = Value::poison();
      return;
    }
    inputLocs[in.name.name] = in.name.loc;
    unsigned id = addNode(OpKind::Input, *type, {}, in.name.loc, frame);
    model.nodes[id].index = model.inputs.size();
    model.inputs.push_back({in.name.name, *type, locOf(in.name.loc, frame)});
    frame.vars[in.name.name] = Value::tensor(id);
    return;
  }
  case Stmt::Kind::Output: {
    auto &out = llvm::cast<OutputStmt>(stmt);
    if (!inModel) {
      error(stmt.getLoc(), "'output' is only allowed in a model");
      return;
    }
    if (auto it = outputLocs.find(out.name.name); it != outputLocs.end()) {
      error(out.name.loc, "redefinition of output '" + out.name.name + "'")
              .attachNote(reporter.getLoc(it->second))
          << "previous definition is here";
      return;
    }
    outputLocs[out.name.name] = out.name.loc;
    std::optional<unsigned> id =
        evalTensor(*out.value, frame, "output '" + out.name.name + "'",
                   /*floatOnly=*/false);
    frame.vars[out.name.name] = id ? Value::tensor(*id) : Value::poison();
    if (id)
      model.outputs.push_back({out.name.name, *id, locOf(out.name.loc, frame)});
    return;
  }
  case Stmt::Kind::Loss: {
    auto &loss = llvm::cast<LossStmt>(stmt);
    if (!inModel) {
      error(stmt.getLoc(), "'loss' is only allowed in a model; return the "
                           "value from the function instead");
      return;
    }
    if (lossLoc) {
      error(stmt.getLoc(), "the model already has a loss")
              .attachNote(reporter.getLoc(*lossLoc))
          << "the loss is defined here";
      return;
    }
    lossLoc = stmt.getLoc();
    std::optional<unsigned> id = evalTensor(*loss.value, frame, "the loss");
    if (!id)
      return;
    if (!node(*id).type.shape.empty()) {
      error(loss.value->getLoc(), "the loss must be a scalar (f32[]), got " +
                                      node(*id).type.str() +
                                      "; reduce it with mean(...) or sum(...)");
      return;
    }
    model.loss = *id;
    return;
  }
  }
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
  std::optional<TensorType> type =
      evalTensorType(stmt.type, frame, "param '" + name + "'");
  if (!type)
    return;
  if (type->dtype != DType::F32) {
    error(stmt.type.loc, "param '" + name +
                             "' must be a float tensor (f32), "
                             "got " +
                             type->str());
    return;
  }

  // The initializer: `zeros`, `zeros()`, `normal(0.01)`, ...
  const Expr *init = stmt.init.get();
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
        return;
    }
    diag << "; expected zeros, ones, constant(v), uniform(low, high), "
            "normal(std, mean), glorot_uniform, glorot_normal, he_uniform or "
            "he_normal";
    return;
  }
  std::vector<StringRef> names;
  std::vector<bool> optional;
  for (StringRef p : builtin->params) {
    optional.push_back(p.consume_back("?"));
    names.push_back(p);
  }
  BoundArgs bound;
  bound.exprs.assign(names.size(), nullptr);
  if (call) {
    std::optional<BoundArgs> b =
        bindArgs(*call, builtin->name, names, optional, false);
    if (!b)
      return;
    bound = std::move(*b);
  } else if (llvm::count(optional, false)) {
    error(init->getLoc(), "initializer '" + builtin->name +
                              "' needs arguments: " + builtin->name + "(" +
                              llvm::join(names, ", ") + ")");
    return;
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
      return;
    args.push_back(*v);
  }

  // Fan-in/fan-out: dense weights are [in, out]; convolution filters are
  // [out, in, kh, kw...]; vectors use their length for both.
  const auto &s = type->shape;
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
  StringRef kindName = builtin->name;
  InitKind kind;
  if (kindName == "zeros") {
    kind = InitKind::zeros;
  } else if (kindName == "ones") {
    kind = InitKind::ones;
  } else if (kindName == "constant") {
    kind = InitKind::constant;
  } else if (kindName == "uniform") {
    kind = InitKind::uniform;
    if (!(args[0] < args[1])) {
      error(init->getLoc(), "uniform(low, high) needs low < high");
      return;
    }
  } else if (kindName == "normal") {
    kind = InitKind::normal;
    std::swap(args[0], args[1]); // stored as (mean, std)
    if (!(args[1] > 0)) {
      error(init->getLoc(), "normal(std) needs std > 0");
      return;
    }
  } else if (kindName.ends_with("uniform") &&
             (kindName.starts_with("glorot") ||
              kindName.starts_with("xavier"))) {
    kind = InitKind::glorot_uniform;
    args = {fanIn, fanOut};
  } else if (kindName.starts_with("glorot") || kindName.starts_with("xavier")) {
    kind = InitKind::glorot_normal;
    args = {fanIn, fanOut};
  } else if (kindName.ends_with("uniform")) {
    kind = InitKind::he_uniform;
    args = {fanIn};
  } else {
    kind = InitKind::he_normal;
    args = {fanIn};
  }

  unsigned index = model.params.size();
  model.params.push_back(
      {frame.prefix + name, *type, kind, args, locOf(stmt.name.loc, frame)});
  unsigned id = addNode(OpKind::Param, *type, {}, stmt.name.loc, frame);
  model.nodes[id].index = index;
  frame.vars[name] = Value::tensor(id);
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
  model.name = decl.name.name;
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
  if (model.inputs.empty())
    error(decl.name.loc, "model '" + decl.name.name +
                             "' has no inputs; add 'input NAME: "
                             "f32[...]'");
}

/// Reads a setting value (number, bool or string) for the train block.
static std::optional<graph::Setting> toSetting(const Value &v) {
  switch (v.kind) {
  case Value::Kind::Int:
    return graph::Setting(v.i);
  case Value::Kind::Float:
    return graph::Setting(v.f);
  case Value::Kind::Bool:
    return graph::Setting(v.b);
  case Value::Kind::String:
    return graph::Setting(v.s);
  default:
    return std::nullopt;
  }
}

void Elaborator::elaborateTrain(const TrainDecl &decl) {
  if (decl.model.name != model.name) {
    error(decl.model.loc, "train block names unknown model '" +
                              decl.model.name + "'; the model is '" +
                              model.name + "'");
    return;
  }
  graph::TrainConfig config;
  config.optimizer = "adam";
  config.hyper = {{"lr", 1e-3},  {"beta1", 0.9},        {"beta2", 0.999},
                  {"eps", 1e-8}, {"weight_decay", 0.0}, {"clip_norm", 0.0}};
  config.batch = model.inputs.empty() || model.inputs[0].type.shape.empty()
                     ? 1
                     : model.inputs[0].type.shape[0];
  Frame frame; // settings see only constants, functions and builtins
  llvm::StringMap<SMLoc> seen;
  for (const TrainItem &item : decl.items) {
    if (reporter.tooManyErrors())
      return;
    StringRef key = item.key.name;
    bool isData = key == "data" || key == "test";
    std::string seenKey = isData && item.target
                              ? (key + "." + item.target->name).str()
                              : key.str();
    if (auto it = seen.find(seenKey); it != seen.end()) {
      error(item.key.loc, "'" + seenKey + "' is set twice")
              .attachNote(reporter.getLoc(it->second))
          << "first set here";
      continue;
    }
    seen[seenKey] = item.key.loc;

    if (key == "batch" || key == "epochs" || key == "seed") {
      if (item.target) {
        error(item.target->loc, "'" + key + "' takes a value, not a name");
        continue;
      }
      std::optional<int64_t> v = evalInt(*item.value, frame, "'" + key + "'");
      if (!v)
        continue;
      if (*v < (key == "seed" ? 0 : 1)) {
        error(item.value->getLoc(),
              "'" + key + "' must be " +
                  (key == "seed" ? "non-negative" : "positive") + ", got " +
                  std::to_string(*v));
        continue;
      }
      if (key == "batch") {
        for (const graph::Input &in : model.inputs) {
          if (in.type.shape.empty() || in.type.shape[0] != *v) {
            auto diag = error(item.value->getLoc(),
                              "batch " + std::to_string(*v) +
                                  " does not match input '" + in.name +
                                  "' of type " + in.type.str() +
                                  " (its first dimension is the batch)");
            diag.attachNote(in.loc) << "input declared here";
            break;
          }
        }
        config.batch = *v;
      } else if (key == "epochs") {
        config.epochs = *v;
      } else {
        config.seed = *v;
      }
      continue;
    }

    // The rest are calls: optimizer NAME(...), data INPUT = FORMAT(...).
    if (key != "optimizer" && !isData) {
      error(item.key.loc, "unknown training setting '" + key +
                              "'; expected optimizer, batch, epochs, seed, "
                              "data or test");
      continue;
    }
    const CallExpr *call = llvm::dyn_cast<CallExpr>(item.value.get());
    const Expr *calleeExpr = call ? call->callee.get() : item.value.get();
    auto *name = llvm::dyn_cast<NameExpr>(calleeExpr);
    const Builtin *builtin = name ? lookupBuiltin(name->name) : nullptr;
    BuiltinKind wanted =
        isData ? BuiltinKind::DataFormat : BuiltinKind::Optimizer;
    if (!builtin || builtin->kind != wanted) {
      auto diag = error(calleeExpr->getLoc(),
                        isData ? "unknown data format" : "unknown optimizer");
      if (name)
        diag << " '" << name->name << "'";
      diag << (isData ? "; expected idx(\"path\"), npy(\"path\") or "
                        "csv(\"path\")"
                      : "; expected sgd, momentum, adam or adamw");
      continue;
    }
    if (isData && !item.target) {
      error(item.key.loc, "'" + key + "' needs the input it feeds: '" + key +
                              " image = idx(\"...\")'");
      continue;
    }
    if (isData && !inputLocs.count(item.target->name)) {
      auto diag = error(item.target->loc, "'" + item.target->name +
                                              "' is not an input of model '" +
                                              model.name + "'");
      continue;
    }
    if (!isData && item.target) {
      error(item.target->loc, "'optimizer' takes a value, not a name");
      continue;
    }
    std::vector<StringRef> names;
    std::vector<bool> optional;
    for (StringRef p : builtin->params) {
      optional.push_back(p.consume_back("?"));
      names.push_back(p);
    }
    BoundArgs bound;
    bound.exprs.assign(names.size(), nullptr);
    bound.locs.assign(names.size(), item.value->getLoc());
    if (call) {
      std::optional<BoundArgs> b =
          bindArgs(*call, builtin->name, names, optional, false);
      if (!b)
        continue;
      bound = std::move(*b);
    } else if (llvm::count(optional, false)) {
      error(item.value->getLoc(), "'" + builtin->name + "' needs arguments");
      continue;
    }
    std::map<std::string, graph::Setting> values;
    bool ok = true;
    for (auto [i, e] : llvm::enumerate(bound.exprs)) {
      if (!e)
        continue;
      Value v = eval(*e, frame);
      std::optional<graph::Setting> s = toSetting(v);
      if (!s) {
        if (!v.isPoison())
          error(e->getLoc(), "argument '" + names[i] + "' of '" +
                                 builtin->name +
                                 "' must be a number, bool "
                                 "or string, got " +
                                 describe(v));
        ok = false;
        continue;
      }
      values[names[i].str()] = *s;
    }
    if (!ok)
      continue;

    auto number = [&](StringRef n) -> std::optional<double> {
      auto it = values.find(n.str());
      if (it == values.end())
        return std::nullopt;
      if (auto *i = std::get_if<int64_t>(&it->second))
        return double(*i);
      if (auto *d = std::get_if<double>(&it->second))
        return *d;
      return std::nullopt;
    };
    auto argLoc = [&](StringRef n) {
      size_t i = llvm::find(names, n) - names.begin();
      return bound.locs[i];
    };

    if (isData) {
      graph::DataSource source;
      source.format = builtin->name.str();
      auto path = values.find("path");
      if (!std::holds_alternative<std::string>(path->second)) {
        error(argLoc("path"), "the path must be a string");
        continue;
      }
      source.path = std::get<std::string>(path->second);
      if (source.path.empty()) {
        error(argLoc("path"), "the path is empty");
        continue;
      }
      for (auto &[k, v] : values)
        if (k != "path")
          source.options[k] = v;
      if (values.count("scale") && !number("scale")) {
        error(argLoc("scale"), "'scale' must be a number");
        continue;
      }
      (key == "data" ? config.data : config.test)[item.target->name] = source;
      continue;
    }

    // Optimizer: defaults, then validation of every hyper-parameter.
    std::string opt = builtin->name.str();
    std::map<std::string, graph::Setting> hyper;
    if (opt == "sgd") {
      hyper = {{"lr", 0.01}, {"weight_decay", 0.0}, {"clip_norm", 0.0}};
    } else if (opt == "momentum") {
      hyper = {{"lr", 0.01},
               {"momentum", 0.9},
               {"nesterov", false},
               {"weight_decay", 0.0},
               {"clip_norm", 0.0}};
    } else {
      hyper = {{"lr", 1e-3},
               {"beta1", 0.9},
               {"beta2", 0.999},
               {"eps", 1e-8},
               {"weight_decay", opt == "adamw" ? 0.01 : 0.0},
               {"clip_norm", 0.0}};
    }
    for (auto &[k, v] : values) {
      if (k == "nesterov") {
        if (!std::holds_alternative<bool>(v)) {
          error(argLoc(k), "'nesterov' must be true or false");
          ok = false;
          continue;
        }
        hyper[k] = v;
        continue;
      }
      std::optional<double> d = number(k);
      if (!d) {
        error(argLoc(k), "'" + k + "' must be a number");
        ok = false;
        continue;
      }
      struct Range {
        StringRef name;
        double lo, hi;
        bool loOpen, hiOpen;
        StringRef text;
      };
      static const Range ranges[] = {
          {"lr", 0, INFINITY, true, true, "> 0"},
          {"beta1", 0, 1, false, true, "in [0, 1)"},
          {"beta2", 0, 1, false, true, "in [0, 1)"},
          {"momentum", 0, 1, false, true, "in [0, 1)"},
          {"eps", 0, INFINITY, true, true, "> 0"},
          {"weight_decay", 0, INFINITY, false, true, ">= 0"},
          {"clip_norm", 0, INFINITY, false, true, ">= 0 (0 disables it)"},
      };
      for (const Range &r : ranges) {
        if (r.name != k)
          continue;
        bool below = r.loOpen ? !(*d > r.lo) : !(*d >= r.lo);
        bool above = r.hiOpen ? !(*d < r.hi) : !(*d <= r.hi);
        if (below || above || std::isnan(*d)) {
          error(argLoc(k), llvm::formatv("bad hyper-parameter: '{0}' must be "
                                         "{1}, got {2}",
                                         k, r.text, floatStr(*d)));
          ok = false;
        }
      }
      hyper[k] = *d;
    }
    if (!ok)
      continue;
    config.optimizer = opt;
    config.hyper = std::move(hyper);
  }
  model.train = std::move(config);
}

std::optional<graph::Model> Elaborator::run() {
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
    return std::nullopt;
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
    return std::nullopt;
  elaborateModel(module.models[0]);
  if (reporter.hadError())
    return std::nullopt;
  for (size_t i = 1; i < module.trainings.size(); ++i) {
    error(module.trainings[i].loc, "more than one train block")
            .attachNote(reporter.getLoc(module.trainings[0].loc))
        << "first train block is here";
    return std::nullopt;
  }
  if (!module.trainings.empty())
    elaborateTrain(module.trainings[0]);
  if (reporter.hadError())
    return std::nullopt;
  return std::move(model);
}

} // namespace

std::optional<graph::Model> kiln::analyze(const Module &module,
                                          DiagnosticReporter &reporter) {
  return Elaborator(module, reporter).run();
}
