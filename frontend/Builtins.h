//===- Builtins.h - The DSL's builtin functions -----------------*- C++ -*-===//
//
// Private to frontend/: the table of builtins (tensor ops, initializers,
// optimizers, data formats). A tensor op's entry binds the call's arguments
// and builds its kiln op; most entries are one line that names the op's
// category and the op class (`unary<ReluOp>("relu")`), see Builtins.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_BUILTINS_H
#define KILN_FRONTEND_BUILTINS_H

#include "frontend/Elaborator.h"

#include "runtime/Contract.h"

#include <functional>

namespace kiln::sema {

/// Where a builtin may be used.
enum class BuiltinKind : uint8_t {
  Op,          // a tensor operation, in expressions
  Initializer, // after '=' in a param declaration
  Optimizer,   // `optimizer NAME(...)` in a train block
  DataFormat,  // `data INPUT = NAME(...)` in a train block
};

/// A call of a tensor-op builtin whose arguments are bound to its parameters.
struct BuiltinCall {
  Elaborator &e;
  const Builtin &builtin;
  const ast::CallExpr &call;
  Frame &frame;
  BoundArgs bound;

  llvm::SMLoc loc() const { return call.getLoc(); }
  /// The expression given for parameter `i`; null when it was not given.
  const ast::Expr *arg(unsigned i) const { return bound.exprs[i]; }
  /// Evaluates parameter `i` as a tensor (a float tensor if `floatOnly`):
  /// "argument 'x' of 'relu' must be a tensor, got ..."; null after an error.
  mlir::Value tensorArg(unsigned i, bool floatOnly = true);
  /// Evaluates parameter `i` as a number; `defaultValue` when not given.
  std::optional<double> numberArg(unsigned i, double defaultValue);
  /// Evaluates parameter `i` as a finite number > 0 ("the NAME of 'BUILTIN'
  /// must be a positive number"); `defaultValue` when not given.
  std::optional<double> positiveArg(unsigned i, double defaultValue);
  /// Evaluates parameter `i` as true or false; `defaultValue` when not given.
  std::optional<bool> boolArg(unsigned i, bool defaultValue);
  /// Builds an OpTy at the call's location.
  template <typename OpTy, typename... Args> OpTy create(Args &&...args) {
    return e.create<OpTy>(loc(), frame, std::forward<Args>(args)...);
  }
  /// Reports an error at the call.
  mlir::InFlightDiagnostic error(const llvm::Twine &msg) {
    return e.error(loc(), msg);
  }
};

struct Builtin {
  llvm::StringRef name;
  BuiltinKind kind;
  /// Parameter names, and whether each may be omitted.
  llvm::SmallVector<llvm::StringRef, 4> params;
  llvm::SmallVector<bool, 4> optional;
  /// Accepts extra positional arguments after the listed parameters.
  bool variadic = false;
  /// Elaborates a call (BuiltinKind::Op only).
  std::function<Value(BuiltinCall &)> elaborate;
  /// What an initializer (or its alias: xavier_* for glorot_*, kaiming_* for
  /// he_*) stands for, in the contract's table.
  contract::InitKind init = contract::InitKind::Zeros;
};

/// Every builtin, in the order that suggestions consider them.
const std::vector<Builtin> &getBuiltins();
const Builtin *lookupBuiltin(llvm::StringRef name);

/// batch_norm(x, gamma, beta, running_mean, running_var, momentum, eps), in
/// BatchNorm.cpp.
Value elaborateBatchNorm(BuiltinCall &call);

/// scan(cell, xs, init, axis = 1, reverse = false), in Scan.cpp.
Value elaborateScan(BuiltinCall &call);

} // namespace kiln::sema

#endif // KILN_FRONTEND_BUILTINS_H
