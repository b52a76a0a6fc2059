//===- Elaborator.h - The elaborator's shared declarations ------*- C++ -*-===//
//
// Private to frontend/: the compile-time values and frames of semantic
// analysis, and the Elaborator that Sema.cpp (frames, expressions,
// statements, functions), Builtins.cpp (the builtin table), BatchNorm.cpp and
// TrainBlock.cpp implement together. The elaborator builds kiln ops into the
// module's @forward function as it goes, as the Toy tutorial's MLIRGen does:
// every tensor value of the program is an mlir::Value.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_ELABORATOR_H
#define KILN_FRONTEND_ELABORATOR_H

#include "frontend/AST.h"
#include "frontend/Diagnostics.h"
#include "ir/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <optional>
#include <string>
#include <vector>

namespace kiln::sema {

struct Builtin;
enum class BuiltinKind : uint8_t;

//===----------------------------------------------------------------------===//
// Compile-time values
//===----------------------------------------------------------------------===//

/// What an expression evaluates to: a tensor (an SSA value of @forward), a
/// compile-time int, float, bool, string or function, or a tuple of values.
/// Poison stands for an expression that was already reported as erroneous.
struct Value {
  enum class Kind { Poison, Tensor, Int, Float, Bool, String, Function, Tuple };
  Kind kind = Kind::Poison;
  mlir::Value tensor;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  const ast::FnDecl *fn = nullptr;
  const Builtin *builtin = nullptr;
  std::vector<Value> elements; // of a tuple

  static Value poison() { return {}; }
  static Value tensorOf(mlir::Value tensor) {
    Value v;
    v.kind = Kind::Tensor;
    v.tensor = tensor;
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
  static Value function(const ast::FnDecl *fn) {
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

  static Value tuple(std::vector<Value> elements) {
    Value v;
    v.kind = Kind::Tuple;
    v.elements = std::move(elements);
    return v;
  }

  bool isPoison() const { return kind == Kind::Poison; }
  bool isNumber() const { return kind == Kind::Int || kind == Kind::Float; }
  double asDouble() const { return kind == Kind::Int ? double(i) : f; }
};

/// The type of a tensor value.
inline mlir::RankedTensorType typeOf(mlir::Value v) {
  return llvm::cast<mlir::RankedTensorType>(v.getType());
}
/// The DSL spelling of a tensor type: `f32[64, 784]`.
std::string typeStr(mlir::Type type);
/// A float the way the source would write it: 0.001 and 2.5, not 0.00 and
/// 2.50.
std::string floatStr(double value);

/// One activation of a model body or an inlined function.
struct Frame {
  const ast::FnDecl *fn = nullptr; // null for the model body
  llvm::StringMap<Value> vars;
  /// Prefix of the parameters declared in this frame: `fc1.` (empty for the
  /// model).
  std::string prefix;
  /// The location of the call that created this frame (with its own callers).
  std::optional<mlir::Location> callerLoc;
  /// Names of the sub-scopes (call sites) created so far, to keep them unique.
  llvm::StringSet<> scopeNames;
  /// Params declared in this frame, for redefinition errors.
  llvm::StringMap<llvm::SMLoc> params;
  /// Indices of the enclosing `for` iterations, for naming call sites.
  std::vector<int64_t> loopIndices;
  std::optional<Value> returned;
};

/// A param's initializer, resolved: the kiln.param's `init` and `init_args`.
struct Initializer {
  InitKind kind;
  llvm::SmallVector<double, 2> args;
};

/// The arguments of a call, matched to the callee's parameters.
struct BoundArgs {
  std::vector<const ast::Expr *> exprs; // per parameter; null = default
  std::vector<llvm::SMLoc> locs; // per parameter; the call's loc if defaulted
  std::vector<const ast::Expr *> extra; // variadic positional arguments
};

//===----------------------------------------------------------------------===//
// Elaborator
//===----------------------------------------------------------------------===//

/// A tree-walking elaborator: compile-time values are evaluated, function
/// calls are inlined with their own parameter scope, and tensor expressions
/// become kiln ops. Errors are reported at the offending token; an erroneous
/// expression yields poison, which is silently propagated, so that one
/// mistake produces one diagnostic.
class Elaborator {
public:
  Elaborator(const ast::Module &module, DiagnosticReporter &reporter);

  /// Elaborates the module's model; null after reporting an error.
  mlir::OwningOpRef<mlir::ModuleOp> run();

  //===--------------------------------------------------------------------===//
  // Declarations (Sema.cpp; the train block in TrainBlock.cpp)

  bool collectFunctions();
  void elaborateModel(const ast::ModelDecl &decl);
  void elaborateTrain(const ast::TrainDecl &decl);
  /// `cosine(warmup = 100)`: the train block's `schedule` as {name, params...}
  /// with every default filled; null after an error.
  mlir::Attribute elaborateSchedule(const ast::Expr &value, Frame &frame);
  /// Builds the entry point of a generate or sample block (EntryBlock.cpp).
  void elaborateEntryBlock(const ast::EntryDecl &decl);
  /// A train block's `metric KIND(OUTPUT, INPUT)` (TrainBlock.cpp), appended
  /// to `metrics` as [kind, output, input].
  void elaborateMetric(const ast::TrainItem &item,
                       llvm::SmallVectorImpl<mlir::Attribute> &metrics);
  /// Gives @forward its signature, return and attributes; verifies the module.
  mlir::LogicalResult finishModule();

  //===--------------------------------------------------------------------===//
  // Statements (Sema.cpp)

  void elaborateBlock(const ast::Block &block, Frame &frame);
  void elaborateStmt(const ast::Stmt &stmt, Frame &frame);
  void elaborateInput(const ast::InputStmt &stmt, Frame &frame);
  void elaborateOutput(const ast::OutputStmt &stmt, Frame &frame);
  void elaborateLoss(const ast::LossStmt &stmt, Frame &frame);
  void elaborateParam(const ast::ParamStmt &stmt, Frame &frame);
  /// Resolves the initializer of a param of `type` (Builtins.cpp).
  std::optional<Initializer> evalInitializer(const ast::Expr &init,
                                             mlir::RankedTensorType type,
                                             Frame &frame);
  void elaborateFor(const ast::ForStmt &stmt, Frame &frame);

  //===--------------------------------------------------------------------===//
  // Expressions (Sema.cpp; builtin calls in Builtins.cpp)

  Value eval(const ast::Expr &expr, Frame &frame,
             llvm::StringRef nameHint = {});
  Value evalName(const ast::NameExpr &expr, Frame &frame);
  Value evalUnary(const ast::UnaryExpr &expr, Frame &frame);
  Value evalBinary(ast::BinaryExpr::Op op, llvm::SMLoc loc, Value lhs,
                   Value rhs, Frame &frame);
  Value evalCall(const ast::CallExpr &expr, Frame &frame,
                 llvm::StringRef nameHint);
  Value callFunction(const ast::FnDecl &fn, const ast::CallExpr &call,
                     Frame &frame, llvm::StringRef nameHint);
  /// Elaborates the body of `fn` in a new frame named `scope` (under the
  /// caller's prefix) with one value per parameter: `args[i]`, or the
  /// parameter's default where it is empty. `locs` are where the arguments
  /// were written (for type errors), `callLoc` the call's.
  Value invoke(const ast::FnDecl &fn, llvm::ArrayRef<std::optional<Value>> args,
               llvm::ArrayRef<llvm::SMLoc> locs, llvm::SMLoc callLoc,
               Frame &frame, const std::string &scope);
  Value callBuiltin(const Builtin &builtin, const ast::CallExpr &call,
                    Frame &frame);

  //===--------------------------------------------------------------------===//
  // Typed evaluation and checking helpers (Sema.cpp)

  std::optional<BoundArgs> bindArgs(const ast::CallExpr &call,
                                    llvm::StringRef callee,
                                    llvm::ArrayRef<llvm::StringRef> params,
                                    llvm::ArrayRef<bool> optional,
                                    bool variadic);
  std::optional<int64_t> evalInt(const ast::Expr &expr, Frame &frame,
                                 const llvm::Twine &what);
  std::optional<double> evalNumber(const ast::Expr &expr, Frame &frame,
                                   const llvm::Twine &what);
  /// Evaluates a tensor (a float tensor if `floatOnly`); null after an error.
  mlir::Value evalTensor(const ast::Expr &expr, Frame &frame,
                         const llvm::Twine &what, bool floatOnly = true);
  /// The tensor of `value` (written at `loc`), checked as evalTensor does.
  mlir::Value asTensor(const Value &value, llvm::SMLoc loc,
                       const llvm::Twine &what, bool floatOnly = true);
  /// Evaluates an axis of `x` (`defaultAxis` when `expr` is null) into
  /// [0, rank).
  std::optional<int64_t> evalAxis(const ast::Expr *expr, llvm::SMLoc loc,
                                  Frame &frame, mlir::Value x,
                                  int64_t defaultAxis);
  mlir::RankedTensorType evalTensorType(const ast::TypeExpr &type, Frame &frame,
                                        llvm::StringRef what);
  bool matchType(const ast::TypeExpr &type, const Value &value, Frame &frame,
                 llvm::SMLoc loc, const llvm::Twine &what);
  /// The element type `f32` or `i32`; null after an error.
  mlir::Type parseDType(const ast::TypeExpr &type);
  std::string describe(const Value &value) const;
  std::string uniqueScopeName(Frame &frame, std::string hint);
  /// Appends "; did you mean 'x'?" for a close match among the frame's
  /// variables, the functions and the builtins, or only among the builtins of
  /// kind `only`.
  bool suggest(mlir::InFlightDiagnostic &diag, llvm::StringRef name,
               const Frame *frame,
               std::optional<BuiltinKind> only = std::nullopt);

  //===--------------------------------------------------------------------===//
  // Building IR

  /// The location of `loc` in `frame`: a CallSiteLoc chain inside inlined
  /// functions.
  mlir::Location locOf(llvm::SMLoc loc, const Frame &frame) const;

  /// Builds an OpTy into @forward at `loc`. Operands were checked with the
  /// shape rules, so ops that infer their result type cannot fail to.
  template <typename OpTy, typename... Args>
  OpTy create(llvm::SMLoc loc, const Frame &frame, Args &&...args) {
    ++numOps;
    return builder.create<OpTy>(locOf(loc, frame), std::forward<Args>(args)...);
  }
  /// The elementwise op of arithmetic operator `op` (not `@`).
  mlir::Value createArith(ast::BinaryExpr::Op op, mlir::Value lhs,
                          mlir::Value rhs, llvm::SMLoc loc, Frame &frame);
  /// A rank-0 constant of `elementType` that broadcasts against any tensor.
  mlir::Value createScalar(double value, mlir::Type elementType,
                           llvm::SMLoc loc, Frame &frame);

  //===--------------------------------------------------------------------===//
  // Diagnostics

  /// Reports an error at `loc`; inside an inlined function, at a CallSiteLoc
  /// so that the diagnostic also shows where the function was called from.
  mlir::InFlightDiagnostic error(llvm::SMLoc loc, const llvm::Twine &msg) {
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
  void fatal(llvm::SMLoc loc, const llvm::Twine &msg) {
    error(loc, msg);
    stopped = true;
  }
  bool shouldStop() const { return stopped || reporter.tooManyErrors(); }
  /// Enters one level of recursion (an expression or a loop body, each of
  /// which may inline calls); reports and stops past kMaxNestingDepth. The
  /// caller decrements nestingDepth when it returns true.
  bool enterNesting(llvm::SMLoc loc);

  //===--------------------------------------------------------------------===//
  // State

  const ast::Module &module;
  DiagnosticReporter &reporter;
  mlir::MLIRContext *ctx;
  /// Builds into @forward's body.
  mlir::OpBuilder builder;
  /// Builds the kiln.param ops, in declaration order, before @forward.
  mlir::OpBuilder paramBuilder;
  mlir::OwningOpRef<mlir::ModuleOp> moduleOp;
  mlir::func::FuncOp forward;
  /// The function whose body is being built: @forward, or an entry block's.
  mlir::func::FuncOp current;

  /// Inside an entry block (generate, sample): params are the model's (looked
  /// up, not declared), and there is no loss. In a generate or translate
  /// block each scan continues from a carry argument and returns its final
  /// carries (Scan.cpp).
  const ast::EntryDecl *entryBlock = nullptr;
  bool inGenerate() const {
    return entryBlock && entryBlock->kind == ast::EntryBlockKind::Generate;
  }
  /// Whether every scan continues from the last call: in a generate block,
  /// and in a translate block (whose cached layers make it one step).
  bool inStepBlock() const {
    return inGenerate() ||
           (entryBlock && entryBlock->kind == ast::EntryBlockKind::Translate);
  }
  struct Carry {
    std::string name;
    mlir::BlockArgument initial;
    mlir::Value final;
  };
  std::vector<Carry> carries;

  struct Input {
    std::string name;
    mlir::BlockArgument value;
    mlir::Location loc;
  };
  struct Output {
    std::string name;
    mlir::Value value;
  };
  std::string modelName;
  std::vector<Input> inputs;
  std::vector<Output> outputs;
  mlir::Value loss;
  /// The named parts of the loss, when it is a sum of named scalars
  /// (`loss reconstruction + kl`): the runtime reports each.
  std::vector<std::pair<std::string, mlir::Value>> lossTerms;
  llvm::StringMap<ParamOp> params;
  /// The train block's settings (the module's `kiln.train`), if any.
  mlir::DictionaryAttr train;

  llvm::StringMap<const ast::FnDecl *> functions;
  std::vector<const ast::FnDecl *> callStack;
  std::optional<llvm::SMLoc> lossLoc;
  llvm::StringMap<llvm::SMLoc> inputLocs, outputLocs;
  size_t loopIterations = 0;
  /// Salts handed out to dropouts and random ops (each draws its own numbers).
  unsigned numSalts = 0;
  /// Inputs and ops built so far.
  size_t numOps = 0;
  /// Calls of user functions so far, and the current nesting of eval() and
  /// loop bodies (see enterNesting()).
  size_t numCalls = 0;
  unsigned nestingDepth = 0;
  /// The call site of the frame being elaborated (see error()).
  std::optional<mlir::Location> callerLoc;
  /// Set by fatal().
  bool stopped = false;
};

} // namespace kiln::sema

#endif // KILN_FRONTEND_ELABORATOR_H
