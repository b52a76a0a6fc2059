//===- AST.h - The abstract syntax tree of .kiln files ----------*- C++ -*-===//
//
// The parser's output and the input of semantic analysis. Nodes own their
// children through std::unique_ptr and carry the source location (an
// llvm::SMLoc into the file's buffer in the llvm::SourceMgr) of their first
// token. Expressions use LLVM RTTI (isa/cast/dyn_cast) on their kind.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_AST_H
#define KILN_FRONTEND_AST_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Casting.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace kiln::ast {

using llvm::SMLoc;

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

class Expr {
public:
  enum class Kind { Int, Float, String, Name, Unary, Binary, Call, Tuple };

  virtual ~Expr() = default;
  Kind getKind() const { return kind; }
  SMLoc getLoc() const { return loc; }

protected:
  Expr(Kind kind, SMLoc loc) : kind(kind), loc(loc) {}

private:
  Kind kind;
  SMLoc loc;
};

using ExprPtr = std::unique_ptr<Expr>;

/// `42`
class IntExpr : public Expr {
public:
  IntExpr(SMLoc loc, int64_t value) : Expr(Kind::Int, loc), value(value) {}
  int64_t value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Int; }
};

/// `1e-3`, `0.5`
class FloatExpr : public Expr {
public:
  FloatExpr(SMLoc loc, double value) : Expr(Kind::Float, loc), value(value) {}
  double value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Float; }
};

/// `"mnist/train-images-idx3-ubyte"` (escapes already decoded)
class StringExpr : public Expr {
public:
  StringExpr(SMLoc loc, std::string value)
      : Expr(Kind::String, loc), value(std::move(value)) {}
  std::string value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::String; }
};

/// A reference to a binding, a function, a builtin, or `true`/`false`.
class NameExpr : public Expr {
public:
  NameExpr(SMLoc loc, std::string name)
      : Expr(Kind::Name, loc), name(std::move(name)) {}
  std::string name;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Name; }
};

/// `-x`
class UnaryExpr : public Expr {
public:
  enum class Op { Neg };
  UnaryExpr(SMLoc loc, Op op, ExprPtr operand)
      : Expr(Kind::Unary, loc), op(op), operand(std::move(operand)) {}
  Op op;
  ExprPtr operand;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Unary; }
};

/// `a + b`, `a - b`, `a * b`, `a / b`, `a @ b`. The location is the operator's.
class BinaryExpr : public Expr {
public:
  enum class Op { Add, Sub, Mul, Div, MatMul };
  BinaryExpr(SMLoc loc, Op op, ExprPtr lhs, ExprPtr rhs)
      : Expr(Kind::Binary, loc), op(op), lhs(std::move(lhs)),
        rhs(std::move(rhs)) {}
  Op op;
  ExprPtr lhs, rhs;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Binary; }
};

/// One argument of a call: positional (`keyword` empty) or `keyword = value`.
struct Arg {
  std::string keyword;
  SMLoc keywordLoc; // valid only when keyword is set
  ExprPtr value;
};

/// `callee(args...)`. The callee is any expression (in practice a NameExpr).
class CallExpr : public Expr {
public:
  CallExpr(SMLoc loc, ExprPtr callee, std::vector<Arg> args)
      : Expr(Kind::Call, loc), callee(std::move(callee)),
        args(std::move(args)) {}
  ExprPtr callee;
  std::vector<Arg> args;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Call; }
};

/// `(h, c)`, or the values of `return h, c`: several values as one (the
/// carries of a recurrence, the results of a function). `a, b = e` takes a
/// tuple apart.
class TupleExpr : public Expr {
public:
  TupleExpr(SMLoc loc, std::vector<ExprPtr> elements)
      : Expr(Kind::Tuple, loc), elements(std::move(elements)) {}
  std::vector<ExprPtr> elements;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Tuple; }
};

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

/// A type annotation: a tensor type `f32[B, 784]` (`dims` holds one expression
/// per dimension: an IntExpr, a NameExpr naming a shape variable, or an
/// arithmetic expression of those), a rank-0 tensor `f32[]`, or a scalar
/// compile-time type such as `int` or `float` (`isTensor` false, `dims` empty).
struct TypeExpr {
  SMLoc loc;
  std::string name; // element type (f32, i32, ...) or scalar type (int, float)
  bool isTensor = false;
  std::vector<ExprPtr> dims;
};

//===----------------------------------------------------------------------===//
// Statements
//===----------------------------------------------------------------------===//

class Stmt {
public:
  enum class Kind { Let, Param, Return, For, Input, Output, Loss };

  virtual ~Stmt() = default;
  Kind getKind() const { return kind; }
  SMLoc getLoc() const { return loc; }

protected:
  Stmt(Kind kind, SMLoc loc) : kind(kind), loc(loc) {}

private:
  Kind kind;
  SMLoc loc;
};

using StmtPtr = std::unique_ptr<Stmt>;
using Block = std::vector<StmtPtr>;

/// A name and where it was written.
struct Ident {
  std::string name;
  SMLoc loc;
};

/// `x = e`, `let x = e`, `a, b = e`.
class LetStmt : public Stmt {
public:
  LetStmt(SMLoc loc, std::vector<Ident> targets, ExprPtr value)
      : Stmt(Kind::Let, loc), targets(std::move(targets)),
        value(std::move(value)) {}
  std::vector<Ident> targets;
  ExprPtr value;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Let; }
};

/// `param w: f32[I, units] = glorot_uniform()`. `init` is a CallExpr or a
/// NameExpr.
class ParamStmt : public Stmt {
public:
  ParamStmt(SMLoc loc, Ident name, TypeExpr type, ExprPtr init)
      : Stmt(Kind::Param, loc), name(std::move(name)), type(std::move(type)),
        init(std::move(init)) {}
  Ident name;
  TypeExpr type;
  ExprPtr init;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Param; }
};

/// `return e`
class ReturnStmt : public Stmt {
public:
  ReturnStmt(SMLoc loc, ExprPtr value)
      : Stmt(Kind::Return, loc), value(std::move(value)) {}
  ExprPtr value;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Return; }
};

/// `for i in lo..hi { body }`: repeats the body with `i` bound to lo, ...,
/// hi-1.
class ForStmt : public Stmt {
public:
  ForStmt(SMLoc loc, Ident var, ExprPtr lo, ExprPtr hi, Block body)
      : Stmt(Kind::For, loc), var(std::move(var)), lo(std::move(lo)),
        hi(std::move(hi)), body(std::move(body)) {}
  Ident var;
  ExprPtr lo, hi;
  Block body;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::For; }
};

/// `input image: f32[64, 784]` (models only)
class InputStmt : public Stmt {
public:
  InputStmt(SMLoc loc, Ident name, TypeExpr type)
      : Stmt(Kind::Input, loc), name(std::move(name)), type(std::move(type)) {}
  Ident name;
  TypeExpr type;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Input; }
};

/// `output prediction = argmax(logits, axis = 1)` (models only)
class OutputStmt : public Stmt {
public:
  OutputStmt(SMLoc loc, Ident name, ExprPtr value)
      : Stmt(Kind::Output, loc), name(std::move(name)),
        value(std::move(value)) {}
  Ident name;
  ExprPtr value;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Output; }
};

/// `loss cross_entropy(logits, label)` (models only)
class LossStmt : public Stmt {
public:
  LossStmt(SMLoc loc, ExprPtr value)
      : Stmt(Kind::Loss, loc), value(std::move(value)) {}
  ExprPtr value;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Loss; }
};

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

/// A parameter of a function: `x: f32[B, I]`, `units: int`, `act = identity`.
struct FnParam {
  Ident name;
  std::optional<TypeExpr> type;
  ExprPtr defaultValue; // may be null
};

/// `fn dense(x: f32[B, I], units: int, act = identity) -> f32[B, units] { ...
/// }`
struct FnDecl {
  Ident name;
  std::vector<FnParam> params;
  std::optional<TypeExpr> resultType;
  Block body;
};

/// `model mlp { ... }`
struct ModelDecl {
  Ident name;
  Block body;
};

/// The blocks that declare an entry point beside the model's own.
enum class EntryBlockKind : uint8_t {
  /// `generate charlm { ... }`: one step of text generation; its recurrences
  /// continue from the state the previous step left (see Scan.cpp).
  Generate,
  /// `sample vae { ... }`: new examples from random numbers the block draws.
  Sample,
  /// `reconstruct rvae { input ... }`: what the model makes of its inputs.
  Reconstruct,
  /// `translate translate { input source ... input target ... }`: the scores
  /// of each next target token given a source and a target so far (or, with
  /// cached layers, of the next token given the last one and the encoder's
  /// outputs).
  Translate,
  /// `encode translate { input sentence ... }`: a translation model's
  /// encoder, whose outputs feed the cached form of the translate block.
  Encode,
};

/// The keyword that opens a block of `kind`, and the kind a keyword opens.
inline const char *keyword(EntryBlockKind kind) {
  switch (kind) {
  case EntryBlockKind::Generate:
    return "generate";
  case EntryBlockKind::Sample:
    return "sample";
  case EntryBlockKind::Reconstruct:
    return "reconstruct";
  case EntryBlockKind::Translate:
    return "translate";
  case EntryBlockKind::Encode:
    return "encode";
  }
  return "";
}
inline std::optional<EntryBlockKind>
parseEntryBlockKeyword(llvm::StringRef word) {
  for (EntryBlockKind k : {EntryBlockKind::Generate, EntryBlockKind::Sample,
                           EntryBlockKind::Reconstruct,
                           EntryBlockKind::Translate, EntryBlockKind::Encode})
    if (word == keyword(k))
      return k;
  return std::nullopt;
}

/// `generate charlm { ... }`, `sample vae { ... }`: an entry point written like
/// a model body with the model's layers (the same call-site names, so the
/// same parameters) and outputs of its own.
struct EntryDecl {
  EntryBlockKind kind;
  Ident model;
  SMLoc loc;
  Block body;
};

/// One line of a training block: `KEY VALUE` or `KEY TARGET = VALUE`, e.g.
/// `optimizer adam(lr = 1e-3)`, `batch 64`, `data image = idx("...", scale =
/// 1/255)`.
struct TrainItem {
  Ident key;
  std::optional<Ident> target;
  ExprPtr value;
};

/// `train mlp { ... }`
struct TrainDecl {
  Ident model;
  SMLoc loc;
  std::vector<TrainItem> items;
};

/// A whole .kiln file, declarations in source order per kind.
struct Module {
  /// `import nn`: libraries whose functions the file uses.
  std::vector<Ident> imports;
  std::vector<FnDecl> functions;
  std::vector<ModelDecl> models;
  std::vector<TrainDecl> trainings;
  std::vector<EntryDecl> entries;
};

/// Prints `module` as an indented tree (kilnc --emit=ast). Locations are
/// printed as
/// `@line:col` using `srcMgr` when given.
void dump(const Module &module, llvm::raw_ostream &os,
          const llvm::SourceMgr *srcMgr = nullptr);

} // namespace kiln::ast

#endif // KILN_FRONTEND_AST_H
