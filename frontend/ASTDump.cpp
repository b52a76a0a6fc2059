//===- ASTDump.cpp - Prints the AST as an indented tree -------------------===//
//
// The output of `kilnc --emit=ast`: one node per line, two spaces of
// indentation per level, `@line:col` locations when a SourceMgr is given.
// Types are printed inline the way the DSL writes them (`f32[B, 2 * H]`).
//
//===----------------------------------------------------------------------===//

#include "frontend/AST.h"
#include "frontend/Diagnostics.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/SourceMgr.h"

using namespace kiln::ast;
using llvm::raw_ostream;

//===----------------------------------------------------------------------===//
// Inline (source-like) printing, used for type dimensions
//===----------------------------------------------------------------------===//

/// Binding strength of an expression: 1 additive, 2 multiplicative, 3 unary,
/// 4 call and primary.
static unsigned getPrecedence(const Expr &expr) {
  if (const auto *binary = llvm::dyn_cast<BinaryExpr>(&expr)) {
    switch (binary->op) {
    case BinaryExpr::Op::Add:
    case BinaryExpr::Op::Sub:
      return 1;
    case BinaryExpr::Op::Mul:
    case BinaryExpr::Op::Div:
    case BinaryExpr::Op::MatMul:
      return 2;
    }
  }
  if (llvm::isa<UnaryExpr>(expr))
    return 3;
  return 4;
}

static llvm::StringRef getOpSpelling(BinaryExpr::Op op) {
  switch (op) {
  case BinaryExpr::Op::Add:
    return "+";
  case BinaryExpr::Op::Sub:
    return "-";
  case BinaryExpr::Op::Mul:
    return "*";
  case BinaryExpr::Op::Div:
    return "/";
  case BinaryExpr::Op::MatMul:
    return "@";
  }
  llvm_unreachable("unknown binary operator");
}

static llvm::StringRef getOpName(BinaryExpr::Op op) {
  switch (op) {
  case BinaryExpr::Op::Add:
    return "Add";
  case BinaryExpr::Op::Sub:
    return "Sub";
  case BinaryExpr::Op::Mul:
    return "Mul";
  case BinaryExpr::Op::Div:
    return "Div";
  case BinaryExpr::Op::MatMul:
    return "MatMul";
  }
  llvm_unreachable("unknown binary operator");
}

static void printFloat(double value, raw_ostream &os) {
  os << llvm::format("%g", value);
}

/// Prints a string literal with the DSL's escapes (\\ \" \n \t) and `\xNN`
/// for other unprintable bytes.
static void printString(llvm::StringRef value, raw_ostream &os) {
  os << '"';
  for (char c : value) {
    switch (c) {
    case '\\':
      os << "\\\\";
      break;
    case '"':
      os << "\\\"";
      break;
    case '\n':
      os << "\\n";
      break;
    case '\t':
      os << "\\t";
      break;
    default:
      if (llvm::isPrint(c))
        os << c;
      else
        os << "\\x"
           << llvm::format_hex_no_prefix(static_cast<unsigned char>(c), 2,
                                         /*Upper=*/true);
      break;
    }
  }
  os << '"';
}

static void printInline(const Expr &expr, raw_ostream &os);

/// Prints `expr`, in parentheses if it binds less tightly than `minPrec`.
static void printOperand(const Expr &expr, unsigned minPrec, raw_ostream &os) {
  bool parens = getPrecedence(expr) < minPrec;
  if (parens)
    os << '(';
  printInline(expr, os);
  if (parens)
    os << ')';
}

static void printInline(const Expr &expr, raw_ostream &os) {
  switch (expr.getKind()) {
  case Expr::Kind::Int:
    os << llvm::cast<IntExpr>(expr).value;
    return;
  case Expr::Kind::Float:
    printFloat(llvm::cast<FloatExpr>(expr).value, os);
    return;
  case Expr::Kind::String:
    printString(llvm::cast<StringExpr>(expr).value, os);
    return;
  case Expr::Kind::Name:
    os << llvm::cast<NameExpr>(expr).name;
    return;
  case Expr::Kind::Unary:
    os << '-';
    printOperand(*llvm::cast<UnaryExpr>(expr).operand, 3, os);
    return;
  case Expr::Kind::Binary: {
    const auto &binary = llvm::cast<BinaryExpr>(expr);
    unsigned prec = getPrecedence(binary);
    // Left-associative: only the right operand needs parentheses at equal
    // precedence.
    printOperand(*binary.lhs, prec, os);
    os << ' ' << getOpSpelling(binary.op) << ' ';
    printOperand(*binary.rhs, prec + 1, os);
    return;
  }
  case Expr::Kind::Call: {
    const auto &call = llvm::cast<CallExpr>(expr);
    printOperand(*call.callee, 4, os);
    os << '(';
    llvm::interleaveComma(call.args, os, [&](const Arg &arg) {
      if (!arg.keyword.empty())
        os << arg.keyword << " = ";
      printInline(*arg.value, os);
    });
    os << ')';
    return;
  }
  case Expr::Kind::Tuple:
    os << '(';
    llvm::interleaveComma(llvm::cast<TupleExpr>(expr).elements, os,
                          [&](const ExprPtr &e) { printInline(*e, os); });
    os << ')';
    return;
  }
}

static void printType(const TypeExpr &type, raw_ostream &os) {
  os << type.name;
  if (!type.isTensor)
    return;
  os << '[';
  llvm::interleaveComma(type.dims, os,
                        [&](const ExprPtr &dim) { printInline(*dim, os); });
  os << ']';
}

//===----------------------------------------------------------------------===//
// Tree printing
//===----------------------------------------------------------------------===//

namespace {

class Dumper {
public:
  Dumper(raw_ostream &os, const llvm::SourceMgr *srcMgr)
      : os(os), srcMgr(srcMgr) {}

  void dumpModule(const Module &module);

private:
  /// Starts a line at the current depth.
  raw_ostream &line() { return os.indent(2 * level); }
  /// Prints ` @line:col` (if locations are available) and ends the line.
  void endLine(llvm::SMLoc loc);

  void dumpFn(const FnDecl &fn);
  void dumpModel(const ModelDecl &model);
  void dumpTrain(const TrainDecl &train);
  void dumpBlock(const Block &block);
  void dumpStmt(const Stmt &stmt);
  void dumpExpr(const Expr &expr);
  /// Prints `label` on its own line with `expr` nested under it.
  void dumpLabeled(llvm::StringRef label, const Expr &expr);

  /// Increases the depth for as long as it lives.
  struct Nested {
    explicit Nested(Dumper &dumper) : dumper(dumper) { ++dumper.level; }
    ~Nested() { --dumper.level; }
    Dumper &dumper;
  };

  raw_ostream &os;
  const llvm::SourceMgr *srcMgr;
  unsigned level = 0;
};

} // namespace

void Dumper::endLine(llvm::SMLoc loc) {
  if (srcMgr && loc.isValid()) {
    if (unsigned bufferId = srcMgr->FindBufferContainingLoc(loc)) {
      auto [lineNo, col] = kiln::getLineAndColumn(*srcMgr, loc, bufferId);
      os << " @" << lineNo << ':' << col;
    }
  }
  os << '\n';
}

void Dumper::dumpModule(const Module &module) {
  line() << "Module\n";
  Nested nested(*this);
  for (const Ident &import : module.imports) {
    line() << "Import " << import.name;
    endLine(import.loc);
  }
  for (const FnDecl &fn : module.functions)
    dumpFn(fn);
  for (const ModelDecl &model : module.models)
    dumpModel(model);
  for (const TrainDecl &train : module.trainings)
    dumpTrain(train);
  for (const EntryDecl &decl : module.entries) {
    line() << "EntryDecl " << keyword(decl.kind) << " " << decl.model.name;
    endLine(decl.loc);
    Nested nestedEntry(*this);
    dumpBlock(decl.body);
  }
}

void Dumper::dumpFn(const FnDecl &fn) {
  line() << "FnDecl " << fn.name.name;
  endLine(fn.name.loc);
  Nested nested(*this);
  for (const FnParam &param : fn.params) {
    line() << "Param " << param.name.name;
    if (param.type) {
      os << " : ";
      printType(*param.type, os);
    }
    endLine(param.name.loc);
    if (param.defaultValue) {
      Nested nestedParam(*this);
      dumpLabeled("Default", *param.defaultValue);
    }
  }
  if (fn.resultType) {
    line() << "Result ";
    printType(*fn.resultType, os);
    endLine(fn.resultType->loc);
  }
  dumpBlock(fn.body);
}

void Dumper::dumpModel(const ModelDecl &model) {
  line() << "ModelDecl " << model.name.name;
  endLine(model.name.loc);
  Nested nested(*this);
  dumpBlock(model.body);
}

void Dumper::dumpTrain(const TrainDecl &train) {
  line() << "TrainDecl " << train.model.name;
  endLine(train.model.loc);
  Nested nested(*this);
  for (const TrainItem &item : train.items) {
    line() << "Item " << item.key.name;
    if (item.target)
      os << " -> " << item.target->name;
    endLine(item.key.loc);
    Nested nestedItem(*this);
    if (item.value)
      dumpExpr(*item.value);
  }
}

void Dumper::dumpBlock(const Block &block) {
  for (const StmtPtr &stmt : block)
    if (stmt)
      dumpStmt(*stmt);
}

void Dumper::dumpStmt(const Stmt &stmt) {
  switch (stmt.getKind()) {
  case Stmt::Kind::Let: {
    const auto &let = llvm::cast<LetStmt>(stmt);
    line() << "Let ";
    llvm::interleaveComma(let.targets, os,
                          [&](const Ident &target) { os << target.name; });
    endLine(let.getLoc());
    Nested nested(*this);
    dumpExpr(*let.value);
    return;
  }
  case Stmt::Kind::Param: {
    const auto &param = llvm::cast<ParamStmt>(stmt);
    line() << "ParamStmt " << param.name.name << " : ";
    printType(param.type, os);
    endLine(param.getLoc());
    Nested nested(*this);
    dumpExpr(*param.init);
    return;
  }
  case Stmt::Kind::Return: {
    line() << "Return";
    endLine(stmt.getLoc());
    Nested nested(*this);
    dumpExpr(*llvm::cast<ReturnStmt>(stmt).value);
    return;
  }
  case Stmt::Kind::For: {
    const auto &loop = llvm::cast<ForStmt>(stmt);
    line() << "For " << loop.var.name;
    endLine(loop.getLoc());
    Nested nested(*this);
    dumpLabeled("Lo", *loop.lo);
    dumpLabeled("Hi", *loop.hi);
    line() << "Body\n";
    Nested nestedBody(*this);
    dumpBlock(loop.body);
    return;
  }
  case Stmt::Kind::Input: {
    const auto &input = llvm::cast<InputStmt>(stmt);
    line() << "Input " << input.name.name << " : ";
    printType(input.type, os);
    endLine(input.getLoc());
    return;
  }
  case Stmt::Kind::Output: {
    const auto &output = llvm::cast<OutputStmt>(stmt);
    line() << "Output " << output.name.name;
    endLine(output.getLoc());
    Nested nested(*this);
    dumpExpr(*output.value);
    return;
  }
  case Stmt::Kind::Loss: {
    line() << "Loss";
    endLine(stmt.getLoc());
    Nested nested(*this);
    dumpExpr(*llvm::cast<LossStmt>(stmt).value);
    return;
  }
  }
}

void Dumper::dumpLabeled(llvm::StringRef label, const Expr &expr) {
  line() << label << '\n';
  Nested nested(*this);
  dumpExpr(expr);
}

void Dumper::dumpExpr(const Expr &expr) {
  switch (expr.getKind()) {
  case Expr::Kind::Int:
    line() << "Int " << llvm::cast<IntExpr>(expr).value;
    endLine(expr.getLoc());
    return;
  case Expr::Kind::Float:
    line() << "Float ";
    printFloat(llvm::cast<FloatExpr>(expr).value, os);
    endLine(expr.getLoc());
    return;
  case Expr::Kind::String:
    line() << "String ";
    printString(llvm::cast<StringExpr>(expr).value, os);
    endLine(expr.getLoc());
    return;
  case Expr::Kind::Name:
    line() << "Name " << llvm::cast<NameExpr>(expr).name;
    endLine(expr.getLoc());
    return;
  case Expr::Kind::Unary: {
    line() << "Unary Neg";
    endLine(expr.getLoc());
    Nested nested(*this);
    dumpExpr(*llvm::cast<UnaryExpr>(expr).operand);
    return;
  }
  case Expr::Kind::Binary: {
    const auto &binary = llvm::cast<BinaryExpr>(expr);
    line() << "Binary " << getOpName(binary.op);
    endLine(expr.getLoc());
    Nested nested(*this);
    dumpExpr(*binary.lhs);
    dumpExpr(*binary.rhs);
    return;
  }
  case Expr::Kind::Call: {
    const auto &call = llvm::cast<CallExpr>(expr);
    const auto *calleeName = llvm::dyn_cast<NameExpr>(call.callee.get());
    line() << "Call";
    if (calleeName)
      os << ' ' << calleeName->name;
    endLine(expr.getLoc());
    Nested nested(*this);
    if (!calleeName)
      dumpLabeled("Callee", *call.callee);
    for (const Arg &arg : call.args) {
      if (arg.keyword.empty()) {
        dumpExpr(*arg.value);
        continue;
      }
      line() << "Kwarg " << arg.keyword;
      endLine(arg.keywordLoc);
      Nested nestedArg(*this);
      dumpExpr(*arg.value);
    }
    return;
  }
  case Expr::Kind::Tuple: {
    line() << "Tuple";
    endLine(expr.getLoc());
    Nested nested(*this);
    for (const ExprPtr &e : llvm::cast<TupleExpr>(expr).elements)
      dumpExpr(*e);
    return;
  }
  }
}

void kiln::ast::dump(const Module &module, raw_ostream &os,
                     const llvm::SourceMgr *srcMgr) {
  Dumper(os, srcMgr).dumpModule(module);
}
