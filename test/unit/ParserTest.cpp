//===- ParserTest.cpp - Unit tests of the .kiln parser and AST dump -------===//

#include "frontend/Parser.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

using namespace kiln;
using namespace kiln::ast;
using llvm::cast;
using llvm::dyn_cast;
using llvm::isa;

namespace {

/// One reported diagnostic, flattened.
struct Message {
  std::string text;
  unsigned line = 0;
  unsigned col = 0;
  std::vector<std::string> notes;
};

/// Parses a string and records the diagnostics.
class ParseHarness {
public:
  explicit ParseHarness(llvm::StringRef src)
      : ctx(mlir::MLIRContext::Threading::DISABLED), reporter(srcMgr, &ctx),
        handler(&ctx, [this](mlir::Diagnostic &diag) {
          Message message;
          message.text = diag.str();
          if (auto loc =
                  llvm::dyn_cast<mlir::FileLineColLoc>(diag.getLocation())) {
            message.line = loc.getLine();
            message.col = loc.getColumn();
          }
          for (mlir::Diagnostic &note : diag.getNotes())
            message.notes.push_back(note.str());
          messages.push_back(message);
          return mlir::success();
        }) {
    bufferId = srcMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(src, "test.kiln"), llvm::SMLoc());
    module = parseModule(bufferId, reporter);
  }

  std::pair<unsigned, unsigned> lineCol(llvm::SMLoc loc) const {
    return srcMgr.getLineAndColumn(loc, bufferId);
  }

  std::string dump() const {
    std::string out;
    llvm::raw_string_ostream os(out);
    ast::dump(*module, os, &srcMgr);
    return out;
  }

  /// The messages' texts.
  std::vector<std::string> texts() const {
    std::vector<std::string> result;
    for (const Message &message : messages)
      result.push_back(message.text);
    return result;
  }

  mlir::MLIRContext ctx;
  llvm::SourceMgr srcMgr;
  DiagnosticReporter reporter;
  std::vector<Message> messages;
  mlir::ScopedDiagnosticHandler handler;
  unsigned bufferId = 0;
  std::unique_ptr<Module> module;
};

/// Parses `model m { <body> }` and returns its statements.
const Block &modelBody(const ParseHarness &h) {
  EXPECT_TRUE(h.messages.empty());
  EXPECT_EQ(h.module->models.size(), 1u);
  static const Block empty;
  if (h.module->models.empty())
    return empty;
  return h.module->models[0].body;
}

std::string inModel(llvm::StringRef body) {
  return ("model m {\n" + body + "\n}\n").str();
}

/// The value of the single `x = ...` statement of a model.
const Expr &valueOf(const ParseHarness &h) {
  const Block &body = modelBody(h);
  EXPECT_EQ(body.size(), 1u);
  return *cast<LetStmt>(*body.at(0)).value;
}

const char *const kExample =
    R"(# A layer is a function; each call site owns its own weights.
fn dense(x: f32[B, I], units: int, act = identity) -> f32[B, units] {
  param w: f32[I, units] = glorot_uniform()
  param b: f32[units] = zeros()
  return act(x @ w + b)
}

model mlp {
  input image: f32[64, 784]
  input label: i32[64]
  fc1 = dense(image, 256, act = relu)
  fc2 = dense(fc1, 128, act = relu)
  logits = dense(fc2, 10)
  loss cross_entropy(logits, label)
  output prediction = argmax(logits, axis = 1)
}

train mlp {
  optimizer adam(lr = 1e-3)
  batch 64
  epochs 5
  seed 42
  data image = idx("data/mnist/train-images-idx3-ubyte", scale = 1/255)
  data label = idx("data/mnist/train-labels-idx1-ubyte")
}
)";

} // namespace

//===----------------------------------------------------------------------===//
// Well-formed input
//===----------------------------------------------------------------------===//

TEST(ParserTest, ParsesExample) {
  ParseHarness h(kExample);
  ASSERT_TRUE(h.messages.empty());
  const Module &m = *h.module;
  ASSERT_EQ(m.functions.size(), 1u);
  ASSERT_EQ(m.models.size(), 1u);
  ASSERT_EQ(m.trainings.size(), 1u);

  const FnDecl &fn = m.functions[0];
  EXPECT_EQ(fn.name.name, "dense");
  EXPECT_EQ(h.lineCol(fn.name.loc), std::make_pair(2u, 4u));
  ASSERT_EQ(fn.params.size(), 3u);
  EXPECT_EQ(fn.params[0].name.name, "x");
  ASSERT_TRUE(fn.params[0].type);
  EXPECT_EQ(fn.params[0].type->name, "f32");
  EXPECT_TRUE(fn.params[0].type->isTensor);
  ASSERT_EQ(fn.params[0].type->dims.size(), 2u);
  EXPECT_EQ(cast<NameExpr>(*fn.params[0].type->dims[1]).name, "I");
  EXPECT_FALSE(fn.params[0].defaultValue);
  EXPECT_EQ(fn.params[1].type->name, "int");
  EXPECT_FALSE(fn.params[1].type->isTensor);
  EXPECT_FALSE(fn.params[2].type);
  ASSERT_TRUE(fn.params[2].defaultValue);
  EXPECT_EQ(cast<NameExpr>(*fn.params[2].defaultValue).name, "identity");
  ASSERT_TRUE(fn.resultType);
  EXPECT_EQ(cast<NameExpr>(*fn.resultType->dims[1]).name, "units");

  ASSERT_EQ(fn.body.size(), 3u);
  const auto &w = cast<ParamStmt>(*fn.body[0]);
  EXPECT_EQ(w.name.name, "w");
  EXPECT_EQ(h.lineCol(w.getLoc()), std::make_pair(3u, 3u));
  EXPECT_EQ(w.type.dims.size(), 2u);
  const auto &init = cast<CallExpr>(*w.init);
  EXPECT_EQ(cast<NameExpr>(*init.callee).name, "glorot_uniform");
  EXPECT_TRUE(init.args.empty());
  const auto &ret = cast<ReturnStmt>(*fn.body[2]);
  const auto &actCall = cast<CallExpr>(*ret.value);
  ASSERT_EQ(actCall.args.size(), 1u);
  const auto &add = cast<BinaryExpr>(*actCall.args[0].value);
  EXPECT_EQ(add.op, BinaryExpr::Op::Add);
  EXPECT_EQ(cast<BinaryExpr>(*add.lhs).op, BinaryExpr::Op::MatMul);

  const ModelDecl &model = m.models[0];
  EXPECT_EQ(model.name.name, "mlp");
  ASSERT_EQ(model.body.size(), 7u);
  EXPECT_TRUE(isa<InputStmt>(*model.body[0]));
  EXPECT_EQ(cast<InputStmt>(*model.body[1]).type.name, "i32");
  const auto &fc1 = cast<LetStmt>(*model.body[2]);
  ASSERT_EQ(fc1.targets.size(), 1u);
  EXPECT_EQ(fc1.targets[0].name, "fc1");
  const auto &denseCall = cast<CallExpr>(*fc1.value);
  ASSERT_EQ(denseCall.args.size(), 3u);
  EXPECT_TRUE(denseCall.args[0].keyword.empty());
  EXPECT_EQ(cast<IntExpr>(*denseCall.args[1].value).value, 256);
  EXPECT_EQ(denseCall.args[2].keyword, "act");
  EXPECT_EQ(h.lineCol(denseCall.args[2].keywordLoc), std::make_pair(11u, 27u));
  EXPECT_EQ(cast<NameExpr>(*denseCall.args[2].value).name, "relu");
  EXPECT_TRUE(isa<LossStmt>(*model.body[5]));
  const auto &output = cast<OutputStmt>(*model.body[6]);
  EXPECT_EQ(output.name.name, "prediction");

  const TrainDecl &train = m.trainings[0];
  EXPECT_EQ(train.model.name, "mlp");
  EXPECT_EQ(h.lineCol(train.loc), std::make_pair(18u, 1u));
  ASSERT_EQ(train.items.size(), 6u);
  EXPECT_EQ(train.items[0].key.name, "optimizer");
  EXPECT_FALSE(train.items[0].target);
  const auto &adam = cast<CallExpr>(*train.items[0].value);
  EXPECT_EQ(adam.args[0].keyword, "lr");
  EXPECT_DOUBLE_EQ(cast<FloatExpr>(*adam.args[0].value).value, 1e-3);
  EXPECT_EQ(cast<IntExpr>(*train.items[1].value).value, 64);
  EXPECT_EQ(train.items[4].key.name, "data");
  ASSERT_TRUE(train.items[4].target);
  EXPECT_EQ(train.items[4].target->name, "image");
  const auto &idx = cast<CallExpr>(*train.items[4].value);
  EXPECT_EQ(cast<StringExpr>(*idx.args[0].value).value,
            "data/mnist/train-images-idx3-ubyte");
  EXPECT_EQ(cast<BinaryExpr>(*idx.args[1].value).op, BinaryExpr::Op::Div);
}

TEST(ParserTest, BinaryPrecedence) {
  ParseHarness h(inModel("x = a + b * c @ d"));
  // a + ((b * c) @ d)
  const auto &add = cast<BinaryExpr>(valueOf(h));
  EXPECT_EQ(add.op, BinaryExpr::Op::Add);
  EXPECT_EQ(cast<NameExpr>(*add.lhs).name, "a");
  const auto &matmul = cast<BinaryExpr>(*add.rhs);
  EXPECT_EQ(matmul.op, BinaryExpr::Op::MatMul);
  EXPECT_EQ(cast<NameExpr>(*matmul.rhs).name, "d");
  const auto &mul = cast<BinaryExpr>(*matmul.lhs);
  EXPECT_EQ(mul.op, BinaryExpr::Op::Mul);
  EXPECT_EQ(cast<NameExpr>(*mul.lhs).name, "b");
  EXPECT_EQ(cast<NameExpr>(*mul.rhs).name, "c");
  // The location of a binary expression is its operator's.
  EXPECT_EQ(h.lineCol(add.getLoc()), std::make_pair(2u, 7u));
  EXPECT_EQ(h.lineCol(matmul.getLoc()), std::make_pair(2u, 15u));
}

TEST(ParserTest, BinaryOperatorsAreLeftAssociative) {
  ParseHarness h(inModel("x = a - b - c / d / e"));
  const auto &sub = cast<BinaryExpr>(valueOf(h));
  EXPECT_EQ(sub.op, BinaryExpr::Op::Sub);
  const auto &inner = cast<BinaryExpr>(*sub.lhs);
  EXPECT_EQ(inner.op, BinaryExpr::Op::Sub);
  EXPECT_EQ(cast<NameExpr>(*inner.lhs).name, "a");
  const auto &div = cast<BinaryExpr>(*sub.rhs);
  EXPECT_EQ(div.op, BinaryExpr::Op::Div);
  EXPECT_EQ(cast<NameExpr>(*div.rhs).name, "e");
  EXPECT_EQ(cast<BinaryExpr>(*div.lhs).op, BinaryExpr::Op::Div);
}

TEST(ParserTest, ParenthesesOverridePrecedence) {
  ParseHarness h(inModel("x = (a + b) * c"));
  const auto &mul = cast<BinaryExpr>(valueOf(h));
  EXPECT_EQ(mul.op, BinaryExpr::Op::Mul);
  EXPECT_EQ(cast<BinaryExpr>(*mul.lhs).op, BinaryExpr::Op::Add);
}

TEST(ParserTest, UnaryMinus) {
  ParseHarness h(inModel("x = -a * - -b"));
  // (-a) * (-(-b))
  const auto &mul = cast<BinaryExpr>(valueOf(h));
  EXPECT_EQ(mul.op, BinaryExpr::Op::Mul);
  const auto &negA = cast<UnaryExpr>(*mul.lhs);
  EXPECT_EQ(negA.op, UnaryExpr::Op::Neg);
  EXPECT_EQ(h.lineCol(negA.getLoc()), std::make_pair(2u, 5u));
  EXPECT_EQ(cast<NameExpr>(*negA.operand).name, "a");
  const auto &negNegB = cast<UnaryExpr>(*mul.rhs);
  EXPECT_EQ(cast<NameExpr>(*cast<UnaryExpr>(*negNegB.operand).operand).name,
            "b");
}

TEST(ParserTest, UnaryMinusBindsTighterThanCallResult) {
  ParseHarness h(inModel("x = -f(y) - 1"));
  const auto &sub = cast<BinaryExpr>(valueOf(h));
  EXPECT_EQ(sub.op, BinaryExpr::Op::Sub);
  const auto &neg = cast<UnaryExpr>(*sub.lhs);
  EXPECT_TRUE(isa<CallExpr>(*neg.operand));
}

TEST(ParserTest, CallsAndKeywordArguments) {
  ParseHarness h(inModel("x = f(a, k = 1 + 2, s = \"t\",)(z)"));
  // f(...)(z): a call of a call.
  const auto &outer = cast<CallExpr>(valueOf(h));
  ASSERT_EQ(outer.args.size(), 1u);
  const auto &inner = cast<CallExpr>(*outer.callee);
  EXPECT_EQ(h.lineCol(inner.getLoc()), std::make_pair(2u, 5u));
  ASSERT_EQ(inner.args.size(), 3u);
  EXPECT_TRUE(inner.args[0].keyword.empty());
  EXPECT_EQ(inner.args[1].keyword, "k");
  EXPECT_EQ(h.lineCol(inner.args[1].keywordLoc), std::make_pair(2u, 10u));
  EXPECT_EQ(cast<BinaryExpr>(*inner.args[1].value).op, BinaryExpr::Op::Add);
  EXPECT_EQ(inner.args[2].keyword, "s");
  EXPECT_EQ(cast<StringExpr>(*inner.args[2].value).value, "t");
}

TEST(ParserTest, ContextualKeywordsCanBeNames) {
  ParseHarness h(inModel("loss = mse(a, b)\n"
                         "param = 1\n"
                         "input, output = split(x)\n"
                         "return = for + let\n"
                         "loss loss\n"
                         "output in = in"));
  const Block &body = modelBody(h);
  ASSERT_EQ(body.size(), 6u);
  const auto &lossBinding = cast<LetStmt>(*body[0]);
  EXPECT_EQ(lossBinding.targets[0].name, "loss");
  EXPECT_TRUE(isa<CallExpr>(*lossBinding.value));
  EXPECT_EQ(cast<LetStmt>(*body[1]).targets[0].name, "param");
  const auto &pair = cast<LetStmt>(*body[2]);
  ASSERT_EQ(pair.targets.size(), 2u);
  EXPECT_EQ(pair.targets[0].name, "input");
  EXPECT_EQ(pair.targets[1].name, "output");
  EXPECT_EQ(cast<LetStmt>(*body[3]).targets[0].name, "return");
  EXPECT_EQ(cast<NameExpr>(*cast<LossStmt>(*body[4]).value).name, "loss");
  EXPECT_EQ(cast<OutputStmt>(*body[5]).name.name, "in");
}

TEST(ParserTest, LetAndMultipleTargets) {
  ParseHarness h(inModel("let y = 1\na, b, c = split(x, 3)\nlet p, q = g()"));
  const Block &body = modelBody(h);
  ASSERT_EQ(body.size(), 3u);
  const auto &y = cast<LetStmt>(*body[0]);
  EXPECT_EQ(y.targets[0].name, "y");
  EXPECT_EQ(h.lineCol(y.getLoc()), std::make_pair(2u, 1u));
  EXPECT_EQ(h.lineCol(y.targets[0].loc), std::make_pair(2u, 5u));
  const auto &abc = cast<LetStmt>(*body[1]);
  ASSERT_EQ(abc.targets.size(), 3u);
  EXPECT_EQ(abc.targets[2].name, "c");
  EXPECT_EQ(h.lineCol(abc.targets[2].loc), std::make_pair(3u, 7u));
  EXPECT_EQ(cast<LetStmt>(*body[2]).targets.size(), 2u);
}

TEST(ParserTest, ForLoop) {
  ParseHarness h(inModel("for i in 0..6 {\n  x = f(x)\n  for j in i+1..2*n { "
                         "y = j }\n}"));
  const Block &body = modelBody(h);
  ASSERT_EQ(body.size(), 1u);
  const auto &loop = cast<ForStmt>(*body[0]);
  EXPECT_EQ(loop.var.name, "i");
  EXPECT_EQ(cast<IntExpr>(*loop.lo).value, 0);
  EXPECT_EQ(cast<IntExpr>(*loop.hi).value, 6);
  ASSERT_EQ(loop.body.size(), 2u);
  const auto &inner = cast<ForStmt>(*loop.body[1]);
  EXPECT_EQ(cast<BinaryExpr>(*inner.lo).op, BinaryExpr::Op::Add);
  EXPECT_EQ(cast<BinaryExpr>(*inner.hi).op, BinaryExpr::Op::Mul);
  EXPECT_EQ(inner.body.size(), 1u);
}

TEST(ParserTest, TypeForms) {
  ParseHarness h(inModel("input a: f32[]\ninput b: int\ninput c: f32[B, 2 * H, "
                         "(n + 1) / 2]"));
  const Block &body = modelBody(h);
  ASSERT_EQ(body.size(), 3u);
  const TypeExpr &a = cast<InputStmt>(*body[0]).type;
  EXPECT_TRUE(a.isTensor);
  EXPECT_TRUE(a.dims.empty());
  const TypeExpr &b = cast<InputStmt>(*body[1]).type;
  EXPECT_EQ(b.name, "int");
  EXPECT_FALSE(b.isTensor);
  const TypeExpr &c = cast<InputStmt>(*body[2]).type;
  EXPECT_EQ(h.lineCol(c.loc), std::make_pair(4u, 10u));
  ASSERT_EQ(c.dims.size(), 3u);
  EXPECT_EQ(cast<BinaryExpr>(*c.dims[1]).op, BinaryExpr::Op::Mul);
  EXPECT_EQ(cast<BinaryExpr>(*c.dims[2]).op, BinaryExpr::Op::Div);
}

TEST(ParserTest, SemicolonsAndNewlineInsensitivity) {
  ParseHarness h("model m { a = 1; b = 2 c = f(\n  a,\n  b\n);\n"
                 "loss\n  c; }\ntrain m { batch 1; epochs 2 }");
  const Block &body = modelBody(h);
  ASSERT_EQ(body.size(), 4u);
  EXPECT_TRUE(isa<LossStmt>(*body[3]));
  ASSERT_EQ(h.module->trainings.size(), 1u);
  EXPECT_EQ(h.module->trainings[0].items.size(), 2u);
}

TEST(ParserTest, FunctionForms) {
  ParseHarness h("fn f() { return 1 }\n"
                 "fn g(a, b: int = 3,) -> f32[] { return a }\n"
                 "fn h(x: f32[N]) { y = x\n return y }");
  ASSERT_TRUE(h.messages.empty());
  ASSERT_EQ(h.module->functions.size(), 3u);
  EXPECT_TRUE(h.module->functions[0].params.empty());
  EXPECT_FALSE(h.module->functions[0].resultType);
  const FnDecl &g = h.module->functions[1];
  ASSERT_EQ(g.params.size(), 2u);
  EXPECT_EQ(g.params[1].type->name, "int");
  EXPECT_EQ(cast<IntExpr>(*g.params[1].defaultValue).value, 3);
  EXPECT_TRUE(g.resultType->isTensor);
  EXPECT_EQ(h.module->functions[2].body.size(), 2u);
}

TEST(ParserTest, EmptyAndCommentOnlyInputs) {
  for (llvm::StringRef src :
       {"", "\n\n", "# nothing here\n", "/* block */ # line"}) {
    ParseHarness h(src);
    EXPECT_TRUE(h.messages.empty()) << src.str();
    EXPECT_TRUE(h.module->functions.empty());
    EXPECT_TRUE(h.module->models.empty());
    EXPECT_TRUE(h.module->trainings.empty());
  }
}

TEST(ParserTest, EmptyBodies) {
  ParseHarness h("model m {}\ntrain m {}\nfn f() {}");
  EXPECT_TRUE(h.messages.empty());
  EXPECT_EQ(h.module->models.size(), 1u);
  EXPECT_EQ(h.module->trainings.size(), 1u);
  EXPECT_EQ(h.module->functions.size(), 1u);
}

//===----------------------------------------------------------------------===//
// Syntax errors
//===----------------------------------------------------------------------===//

namespace {
struct ErrorCase {
  const char *src;
  const char *message;
  unsigned line;
  unsigned col;
};
} // namespace

TEST(ParserTest, ErrorMessages) {
  const ErrorCase cases[] = {
      {"x = 1",
       "expected 'import', 'fn', 'model' or 'train' at top level, found 'x'", 1,
       1},
      {"model { }", "expected a model name after 'model', found '{'", 1, 7},
      {"model mlp\n  x = 1", "expected '{' to start the body of model 'mlp'", 2,
       3},
      {"train mlp batch 1", "expected '{' to start the body of train 'mlp'", 1,
       11},
      {"train 3 {}", "expected a model name after 'train', found '3'", 1, 7},
      {"fn (x) {}", "expected a function name after 'fn', found '('", 1, 4},
      {"fn f x {}", "expected '(' after function name 'f'", 1, 6},
      {"fn f(1) {}",
       "expected a parameter name in the parameter list of 'f', found '1'", 1,
       6},
      {"fn f(x y) {}",
       "expected ',' or ')' after parameter 'x' of function 'f'", 1, 8},
      {"fn f(x) -> { }", "expected a type, found '{'", 1, 12},
      {"fn f(x) return x", "expected '{' to start the body of function 'f'", 1,
       9},
      {"model m {\n  param w f32[3] = zeros()\n}",
       "expected ':' and a type after parameter name 'w'", 2, 11},
      {"model m {\n  param : f32[3] = zeros()\n}",
       "expected a parameter name after 'param', found ':'", 2, 9},
      {"model m {\n  param w: f32[3] zeros()\n}",
       "expected '=' and an initializer after the type of parameter 'w'", 2,
       19},
      {"model m {\n  input x f32[3]\n}",
       "expected ':' and a type after input name 'x'", 2, 11},
      {"model m {\n  input 3: f32[3]\n}",
       "expected an input name after 'input', found '3'", 2, 9},
      {"model m {\n  output y: f(x)\n}", "expected '=' after output name 'y'",
       2, 11},
      {"model m {\n  output (y) = x\n}",
       "expected an output name after 'output', found '('", 2, 10},
      {"model m {\n  x = dense(a, b\n}",
       "expected ')' to close the call to 'dense'", 3, 1},
      {"model m {\n  x = f(a)(b c)\n}", "expected ')' to close the call", 2,
       14},
      {"model m {\n  x = (a + b\n  y = 2\n}",
       "expected ')' to close the parenthesized expression", 3, 3},
      {"model m {\n  x = \n}", "expected an expression, found '}'", 3, 1},
      {"model m {\n  x = a +\n", "expected an expression, found end of file", 3,
       1},
      {"model m {\n  x = \"s\" + )\n}", "expected an expression, found ')'", 2,
       13},
      {"model m {\n  + x\n}", "expected a statement, found '+'", 2, 3},
      {"model m {\n  \"str\" x\n}",
       "expected a statement, found string literal", 2, 3},
      {"model m {\n  dense(x)\n}", "expected '=' after 'dense', found '('", 2,
       8},
      {"model m {\n  a, 3 = f()\n}",
       "expected a name after ',' in the targets of an assignment, found '3'",
       2, 6},
      {"model m {\n  let (a) = 1\n}", "expected a name after 'let', found '('",
       2, 7},
      {"model m {\n  for 1 in 0..3 {}\n}",
       "expected a loop variable name after 'for', found '1'", 2, 7},
      {"model m {\n  for i 0..3 {}\n}", "expected 'in' after loop variable 'i'",
       2, 9},
      {"model m {\n  for i in 0, 3 {}\n}",
       "expected '..' after the start of the range of loop variable 'i'", 2,
       13},
      {"model m {\n  for i in 0..3\n  x = 1\n}",
       "expected '{' to start the body of the loop over 'i'", 3, 3},
      {"model m {\n  input x: f32[3 4]\n}",
       "expected ',' or ']' in the shape of type 'f32', found '4'", 2, 18},
      {"model m {\n  input x: [3]\n}", "expected a type, found '['", 2, 12},
      {"model m {\n  x = 1\n", "expected '}' at end of block", 3, 1},
      {"model m {\n  x = 1\nfn f() {}", "unexpected 'fn' inside a block", 3, 1},
      {"model m {\n  x = train\n}", "expected an expression, found 'train'", 2,
       7},
      {"model m {\n  model = 1\n}", "unexpected 'model' inside a block", 2, 3},
      {"train m {\n  64\n}",
       "expected a setting name in the train block, found '64'", 2, 3},
      {"train m {\n  batch\n}", "expected an expression, found '}'", 3, 1},
      {"train m {\n  data x = \n}", "expected an expression, found '}'", 3, 1},
  };
  for (const ErrorCase &c : cases) {
    ParseHarness h(c.src);
    ASSERT_EQ(h.messages.size(), 1u)
        << "source:\n"
        << c.src << "\nfirst message: "
        << (h.messages.empty() ? "" : h.messages[0].text);
    EXPECT_EQ(h.messages[0].text, c.message) << "source:\n" << c.src;
    EXPECT_EQ(h.messages[0].line, c.line) << "source:\n" << c.src;
    EXPECT_EQ(h.messages[0].col, c.col) << "source:\n" << c.src;
  }
}

TEST(ParserTest, MissingBraceNotePointsAtBlock) {
  ParseHarness h("model m {\n  for i in 0..2 {\n    x = 1\n");
  ASSERT_EQ(h.messages.size(), 1u);
  EXPECT_EQ(h.messages[0].text, "expected '}' at end of block");
  ASSERT_EQ(h.messages[0].notes.size(), 1u);
  EXPECT_EQ(h.messages[0].notes[0], "block opened here");
}

TEST(ParserTest, UnexpectedDeclarationEndsBlock) {
  // The model body ends at `fn`, which is then parsed as a function.
  ParseHarness h("model m {\n  x = 1\n\nfn f(a) { return a }\n"
                 "train m { batch 1 }");
  ASSERT_EQ(h.messages.size(), 1u);
  EXPECT_EQ(h.messages[0].text, "unexpected 'fn' inside a block");
  ASSERT_EQ(h.module->models.size(), 1u);
  EXPECT_EQ(h.module->models[0].body.size(), 1u);
  EXPECT_EQ(h.module->functions.size(), 1u);
  EXPECT_EQ(h.module->trainings.size(), 1u);
}

TEST(ParserTest, StrayKeywordsDoNotStartDeclarations) {
  // `model` without a name is skipped as part of the broken function.
  ParseHarness h("fn f(model) { }\nmodel m { x = train + 1 }\ntrain m {}");
  ASSERT_EQ(h.messages.size(), 2u);
  EXPECT_EQ(h.messages[0].text, "expected a parameter name in the parameter "
                                "list of 'f', found 'model'");
  EXPECT_EQ(h.messages[1].text, "expected an expression, found 'train'");
  EXPECT_TRUE(h.module->functions.empty());
  ASSERT_EQ(h.module->models.size(), 1u);
  EXPECT_EQ(h.module->trainings.size(), 1u);
}

TEST(ParserTest, BrokenHeaderSkipsToNextDeclaration) {
  ParseHarness h("fn f(x: f32[B,, y) {\n  return x\n}\nmodel m {\n  y = 1\n}");
  ASSERT_EQ(h.messages.size(), 1u);
  EXPECT_EQ(h.messages[0].text, "expected an expression, found ','");
  EXPECT_TRUE(h.module->functions.empty());
  ASSERT_EQ(h.module->models.size(), 1u);
  EXPECT_EQ(h.module->models[0].body.size(), 1u);
}

TEST(ParserTest, RecoveryReportsSeveralErrors) {
  ParseHarness h("fn f(x) {\n"
                 "  y = x +\n" // error 1 (at the next line's `}`)
                 "}\n"
                 "model m {\n"
                 "  a = 1\n"
                 "  b = (a\n" // error 2
                 "  c = a * 2\n"
                 "  param w f32[2] = zeros()\n" // error 3
                 "  d = c; e = ) ; f = 1\n"     // error 4
                 "  for i in 0..2 {\n"
                 "    g = \n" // error 5
                 "  }\n"
                 "  h = 3\n"
                 "}\n"
                 "bogus\n" // error 6
                 "train m {\n"
                 "  10 epochs\n" // error 7
                 "  batch 32\n"
                 "}\n");
  std::vector<std::string> expected = {
      "expected an expression, found '}'",
      "expected ')' to close the parenthesized expression",
      "expected ':' and a type after parameter name 'w'",
      "expected an expression, found ')'",
      "expected an expression, found '}'",
      "expected 'import', 'fn', 'model' or 'train' at top level, found 'bogus'",
      "expected a setting name in the train block, found '10'"};
  EXPECT_EQ(h.texts(), expected);
  std::vector<std::pair<unsigned, unsigned>> locs;
  for (const Message &m : h.messages)
    locs.push_back({m.line, m.col});
  std::vector<std::pair<unsigned, unsigned>> expectedLocs = {
      {3, 1}, {7, 3}, {8, 11}, {9, 14}, {12, 3}, {15, 1}, {17, 3}};
  EXPECT_EQ(locs, expectedLocs);

  // Everything that parsed is kept.
  ASSERT_EQ(h.module->functions.size(), 1u);
  ASSERT_EQ(h.module->models.size(), 1u);
  const Block &body = h.module->models[0].body;
  ASSERT_EQ(body.size(), 6u); // a, c, d, f, for, h
  EXPECT_EQ(cast<LetStmt>(*body[3]).targets[0].name, "f");
  EXPECT_TRUE(cast<ForStmt>(*body[4]).body.empty());
  ASSERT_EQ(h.module->trainings.size(), 1u);
  EXPECT_EQ(h.module->trainings[0].items.size(), 1u);
}

TEST(ParserTest, AtMostOneErrorPerStatement) {
  // The lexer's error already covers the line; the parser adds nothing.
  ParseHarness h(inModel("x = a $ b c d\ny = 1"));
  ASSERT_EQ(h.messages.size(), 1u);
  EXPECT_EQ(h.messages[0].text, "invalid character '$'");
  EXPECT_EQ(h.module->models[0].body.size(), 2u);

  ParseHarness h2(inModel("x = f(a b c d e)\ny = (((\nz = 1"));
  EXPECT_EQ(h2.messages.size(), 2u);
}

TEST(ParserTest, UnterminatedAtEndReportedOnce) {
  ParseHarness h("model m {\n  x = 1 /* oops\n}\n");
  ASSERT_EQ(h.messages.size(), 1u);
  EXPECT_EQ(h.messages[0].text, "unterminated block comment");
  for (const char *src :
       {"model m {\n  x = f(\"oops)\n}", "model m {\n  x = f(\"oops) }"}) {
    ParseHarness h2(src);
    ASSERT_EQ(h2.messages.size(), 1u) << src;
    EXPECT_EQ(h2.messages[0].text, "unterminated string literal");
  }
}

TEST(ParserTest, LexerErrorsInsideLiteralsDoNotCascade) {
  ParseHarness h(inModel("x = \"abc\ny = 1e+\nz = 99999999999999999999"));
  std::vector<std::string> expected = {"unterminated string literal",
                                       "malformed float literal",
                                       "integer literal is too large"};
  EXPECT_EQ(h.texts(), expected);
  EXPECT_EQ(h.module->models[0].body.size(), 3u);

  // A malformed token where the parser expected something else: the lexer's
  // error is enough.
  ParseHarness h2(inModel("\"abc\nx = 1e"));
  std::vector<std::string> expected2 = {"unterminated string literal",
                                        "malformed float literal"};
  EXPECT_EQ(h2.texts(), expected2);
}

TEST(ParserTest, DeepParenthesesNesting) {
  std::string src = "model m {\n  x = " + std::string(10000, '(') + "a" +
                    std::string(10000, ')') + "\n}\n";
  ParseHarness h(src);
  ASSERT_EQ(h.messages.size(), 1u);
  EXPECT_EQ(h.messages[0].text, "expression is nested too deeply (limit 256)");
  EXPECT_EQ(h.messages[0].line, 2u);
  // The 257th '(' (the first at column 7) is one too many.
  EXPECT_EQ(h.messages[0].col, 7u + 256u);
}

TEST(ParserTest, DeepNestingOfOtherKinds) {
  struct Case {
    std::string src;
  };
  std::string calls;
  for (int i = 0; i < 5000; ++i)
    calls += "f(";
  std::string loops;
  for (int i = 0; i < 1000; ++i)
    loops += "for i in 0..1 {\n";
  std::vector<std::string> sources = {
      inModel("x = " + std::string(10000, '-') + "a"), inModel("x = " + calls),
      inModel(loops), inModel("input x: f32[" + std::string(10000, '(')),
      "fn f(a = " + std::string(10000, '(') + ") {}"};
  for (const std::string &src : sources) {
    ParseHarness h(src);
    ASSERT_EQ(h.messages.size(), 1u) << src.substr(0, 40);
    EXPECT_EQ(h.messages[0].text,
              "expression is nested too deeply (limit 256)");
  }
}

TEST(ParserTest, LongChainsAreLimitedToo) {
  // Chains build deep trees without recursion in the parser; the limit keeps
  // every later recursive walk over the AST safe.
  std::string sum = "a", calls = "f", mixed = "a";
  for (int i = 0; i < 100000; ++i) {
    sum += " + a";
    calls += "()";
    mixed += i % 2 ? " * a" : " - a";
  }
  for (const std::string &expr : {sum, calls, mixed}) {
    ParseHarness h(inModel("x = " + expr));
    ASSERT_EQ(h.messages.size(), 1u) << expr.substr(0, 20);
    EXPECT_EQ(h.messages[0].text,
              "expression is nested too deeply (limit 256)");
  }
  // 256 levels are fine: 255 additions plus the leaves.
  std::string ok = "a";
  for (int i = 0; i < 255; ++i)
    ok += " + a";
  ParseHarness good(inModel("x = " + ok));
  EXPECT_TRUE(good.messages.empty());
  ParseHarness bad(inModel("x = " + ok + " + a"));
  ASSERT_EQ(bad.messages.size(), 1u);
  // Reported at the operator that makes the tree too tall.
  EXPECT_EQ(bad.messages[0].col, 7u + 4u * 255u);
}

TEST(ParserTest, NestingWithinLimitIsFine) {
  std::string src = "model m {\n  x = " + std::string(256, '(') + "a" +
                    std::string(256, ')') + "\n}\n";
  ParseHarness h(src);
  EXPECT_TRUE(h.messages.empty());
  ParseHarness h2("model m {\n  x = " + std::string(257, '(') + "a" +
                  std::string(257, ')') + "\n}\n");
  EXPECT_EQ(h2.messages.size(), 1u);
}

TEST(ParserTest, TooManyErrorsStops) {
  std::string body;
  for (int i = 0; i < 50; ++i)
    body += "x = )\n";
  ParseHarness h(inModel(body));
  ASSERT_EQ(h.messages.size(), DiagnosticReporter::kMaxErrors + 1);
  EXPECT_EQ(h.messages.back().text, "too many errors, stopping");
  for (unsigned i = 0; i < DiagnosticReporter::kMaxErrors; ++i)
    EXPECT_EQ(h.messages[i].text, "expected an expression, found ')'");

  // Lexer errors count too, and the stop message comes once.
  ParseHarness h2(std::string(1000, '$'));
  ASSERT_EQ(h2.messages.size(), DiagnosticReporter::kMaxErrors + 1);
  EXPECT_EQ(h2.messages.back().text, "too many errors, stopping");
}

TEST(ParserTest, RandomBytesDoNotCrash) {
  std::mt19937 rng(42);
  for (int round = 0; round < 8; ++round) {
    std::string src(64 * 1024, '\0');
    for (char &c : src)
      c = static_cast<char>(rng() & 0xff);
    ParseHarness h(src);
    EXPECT_FALSE(h.messages.empty());
    EXPECT_LE(h.messages.size(), DiagnosticReporter::kMaxErrors + 1);
  }
}

TEST(ParserTest, RandomTokensDoNotCrash) {
  // Streams of valid tokens reach much deeper into the grammar than bytes.
  const char *pieces[] = {
      "fn ",  "model ", "train ", "x ", "param ", "input ", "for ",
      "in ",  "let ",   "loss ",  "(",  ")",      "[",      "]",
      "{",    "}",      ",",      ":",  ";",      "=",      "->",
      "..",   "+",      "-",      "*",  "/",      "@",      "1 ",
      "2.5 ", "\"s\" ", "\n",     "\n", "f32",    "output "};
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string src;
    for (int i = 0; i < 400; ++i)
      src += pieces[rng() % std::size(pieces)];
    ParseHarness h(src);
    EXPECT_LE(h.messages.size(), DiagnosticReporter::kMaxErrors + 1);
  }
}

TEST(ParserTest, LargeGarbageIsLinear) {
  auto start = std::chrono::steady_clock::now();
  // Tokens that keep the parser recovering inside a block, and plain junk at
  // the top level.
  std::string inBlock = "model m {\n";
  while (inBlock.size() < 8 * 1024 * 1024)
    inBlock += "x x { ( ] y\n";
  ParseHarness h(inBlock);
  EXPECT_FALSE(h.messages.empty());
  std::string topLevel(16 * 1024 * 1024, 'a');
  for (size_t i = 0; i < topLevel.size(); i += 7)
    topLevel[i] = ' ';
  ParseHarness h2(topLevel);
  EXPECT_EQ(h2.messages.size(), 1u);
  // One broken statement followed by a very long line, with braces, that
  // recovery has to skip.
  std::string longLine = "model m {\n  x = ) ";
  while (longLine.size() < 8 * 1024 * 1024)
    longLine += "a { b ( } ";
  ParseHarness h3(longLine + "\n}\n");
  EXPECT_EQ(h3.messages.size(), 1u);
  ParseHarness h4("model m {\n  x = ) " + std::string(4 * 1024 * 1024, '{'));
  EXPECT_EQ(h4.messages.size(), 2u); // and "expected '}' at end of block"
  auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_LT(seconds, 20.0);
}

//===----------------------------------------------------------------------===//
// AST dump
//===----------------------------------------------------------------------===//

TEST(ParserTest, DumpPrintsTree) {
  ParseHarness h(kExample);
  ASSERT_TRUE(h.messages.empty());
  const char *expected = R"(Module
  FnDecl dense @2:4
    Param x : f32[B, I] @2:10
    Param units : int @2:24
    Param act @2:36
      Default
        Name identity @2:42
    Result f32[B, units] @2:55
    ParamStmt w : f32[I, units] @3:3
      Call glorot_uniform @3:28
    ParamStmt b : f32[units] @4:3
      Call zeros @4:25
    Return @5:3
      Call act @5:10
        Binary Add @5:20
          Binary MatMul @5:16
            Name x @5:14
            Name w @5:18
          Name b @5:22
  ModelDecl mlp @8:7
    Input image : f32[64, 784] @9:3
    Input label : i32[64] @10:3
    Let fc1 @11:3
      Call dense @11:9
        Name image @11:15
        Int 256 @11:22
        Kwarg act @11:27
          Name relu @11:33
    Let fc2 @12:3
      Call dense @12:9
        Name fc1 @12:15
        Int 128 @12:20
        Kwarg act @12:25
          Name relu @12:31
    Let logits @13:3
      Call dense @13:12
        Name fc2 @13:18
        Int 10 @13:23
    Loss @14:3
      Call cross_entropy @14:8
        Name logits @14:22
        Name label @14:30
    Output prediction @15:3
      Call argmax @15:23
        Name logits @15:30
        Kwarg axis @15:38
          Int 1 @15:45
  TrainDecl mlp @18:7
    Item optimizer @19:3
      Call adam @19:13
        Kwarg lr @19:18
          Float 0.001 @19:23
    Item batch @20:3
      Int 64 @20:9
    Item epochs @21:3
      Int 5 @21:10
    Item seed @22:3
      Int 42 @22:8
    Item data -> image @23:3
      Call idx @23:16
        String "data/mnist/train-images-idx3-ubyte" @23:20
        Kwarg scale @23:58
          Binary Div @23:67
            Int 1 @23:66
            Int 255 @23:68
    Item data -> label @24:3
      Call idx @24:16
        String "data/mnist/train-labels-idx1-ubyte" @24:20
)";
  EXPECT_EQ(h.dump(), expected);
}

TEST(ParserTest, DumpStatementsAndInlineTypes) {
  ParseHarness h("fn f(x: f32[(B + 1) * 2, B - (C - D), -N, g(k = 2)]) {\n"
                 "  let a, b = split(x)\n"
                 "  for i in 0..n { y = -a(b)(c) }\n"
                 "  return \"q\\\"\\n\" + 2.5\n"
                 "}");
  ASSERT_TRUE(h.messages.empty());
  std::string out;
  llvm::raw_string_ostream os(out);
  ast::dump(*h.module, os); // No SourceMgr: no locations.
  const char *expected = R"(Module
  FnDecl f
    Param x : f32[(B + 1) * 2, B - (C - D), -N, g(k = 2)]
    Let a, b
      Call split
        Name x
    For i
      Lo
        Int 0
      Hi
        Name n
      Body
        Let y
          Unary Neg
            Call
              Callee
                Call a
                  Name b
              Name c
    Return
      Binary Add
        String "q\"\n"
        Float 2.5
)";
  EXPECT_EQ(out, expected);
}
