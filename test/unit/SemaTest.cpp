//===- SemaTest.cpp - Unit tests of semantic analysis (elaboration) -------===//

#include "frontend/Sema.h"
#include "frontend/Parser.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

using namespace kiln;

namespace {

/// Parses and elaborates `source`, collecting error messages.
struct Elaborated {
  explicit Elaborated(llvm::StringRef source) {
    srcMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(source, "test.kiln"),
        llvm::SMLoc());
    mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
      errors.push_back(d.str());
      return mlir::success();
    });
    DiagnosticReporter reporter(srcMgr, &ctx);
    std::unique_ptr<ast::Module> module =
        parseModule(srcMgr.getMainFileID(), reporter);
    if (module && !reporter.hadError())
      model = analyze(*module, reporter);
  }
  bool hasError(llvm::StringRef text) const {
    return llvm::any_of(errors, [&](const std::string &e) {
      return llvm::StringRef(e).contains(text);
    });
  }
  mlir::MLIRContext ctx;
  llvm::SourceMgr srcMgr;
  std::vector<std::string> errors;
  std::optional<graph::Model> model;
};

const char *kMlp = R"(
fn dense(x: f32[B, I], units: int, act = identity) -> f32[B, units] {
  param w: f32[I, units] = glorot_uniform
  param b: f32[units] = zeros
  return act(x @ w + b)
}
model mlp {
  input image: f32[64, 784]
  input label: i32[64]
  fc1 = dense(image, 256, act = relu)
  logits = dense(fc1, 10)
  loss cross_entropy(logits, label)
  output prediction = argmax(logits, axis = 1)
}
train mlp {
  optimizer adam(lr = 1e-3)
  batch 64
  epochs 2
  data image = idx("train-images", scale = 1/255)
}
)";

TEST(SemaTest, ElaboratesTheMlp) {
  Elaborated e(kMlp);
  ASSERT_TRUE(e.model) << (e.errors.empty() ? "" : e.errors[0]);
  const graph::Model &m = *e.model;
  EXPECT_EQ(m.name, "mlp");
  ASSERT_EQ(m.params.size(), 4u);
  EXPECT_EQ(m.params[0].name, "fc1.w");
  EXPECT_EQ(m.params[0].type.str(), "f32[784, 256]");
  EXPECT_EQ(m.params[0].init, InitKind::glorot_uniform);
  EXPECT_EQ(m.params[0].initArgs, (llvm::SmallVector<double, 2>{784, 256}));
  EXPECT_EQ(m.params[1].name, "fc1.b");
  EXPECT_EQ(m.params[2].name, "logits.w");
  EXPECT_EQ(m.params[3].type.str(), "f32[10]");
  ASSERT_EQ(m.inputs.size(), 2u);
  EXPECT_EQ(m.inputs[1].type.str(), "i32[64]");
  EXPECT_EQ(m.nodes[m.loss].kind, graph::OpKind::CrossEntropy);
  ASSERT_EQ(m.outputs.size(), 1u);
  EXPECT_EQ(m.nodes[m.outputs[0].node].type.str(), "i32[64]");
  ASSERT_TRUE(m.train);
  EXPECT_EQ(m.train->optimizer, "adam");
  EXPECT_EQ(std::get<double>(m.train->hyper.at("lr")), 1e-3);
  EXPECT_EQ(std::get<double>(m.train->hyper.at("beta2")), 0.999);
  EXPECT_EQ(m.train->epochs, 2);
  EXPECT_DOUBLE_EQ(
      std::get<double>(m.train->data.at("image").options.at("scale")),
      1.0 / 255);
}

TEST(SemaTest, LoopsGiveEachIterationItsOwnParameters) {
  Elaborated e(R"(
fn block(x: f32[N, D]) -> f32[N, D] {
  param w: f32[D, D] = normal(0.02)
  return tanh(x @ w)
}
model deep {
  input x: f32[8, 16]
  h = x
  for i in 0..3 { h = block(h) }
  loss mean(h * h)
}
)");
  ASSERT_TRUE(e.model) << (e.errors.empty() ? "" : e.errors[0]);
  ASSERT_EQ(e.model->params.size(), 3u);
  EXPECT_EQ(e.model->params[0].name, "h.0.w");
  EXPECT_EQ(e.model->params[2].name, "h.2.w");
  EXPECT_EQ(e.model->params[1].init, InitKind::normal);
  EXPECT_EQ(e.model->params[1].initArgs,
            (llvm::SmallVector<double, 2>{0.0, 0.02}));
}

TEST(SemaTest, ShapeVariablesMustAgree) {
  Elaborated e(R"(
fn f(a: f32[N, K], b: f32[K, M]) -> f32[N, M] { return a @ b }
model m {
  input x: f32[4, 3]
  input y: f32[5, 2]
  loss sum(f(x, y))
}
)");
  EXPECT_FALSE(e.model);
  EXPECT_TRUE(e.hasError("argument 'b' of 'f' has type f32[5, 2] but "
                         "f32[K, M] was expected (dimension 0 is 5, not 3)"));
}

TEST(SemaTest, MatmulShapeMismatch) {
  Elaborated e(R"(
model m {
  input x: f32[64, 784]
  input w: f32[700, 256]
  loss sum(x @ w)
}
)");
  EXPECT_TRUE(e.hasError("matmul inner dimensions differ: [64, 784] @ "
                         "[700, 256] (784 vs 700)"));
}

TEST(SemaTest, UnknownNameSuggestsACloseOne) {
  Elaborated e(R"(
model m {
  input image: f32[2, 3]
  loss sum(imgae)
}
)");
  EXPECT_TRUE(e.hasError("unknown name 'imgae'; did you mean 'image'?"));
}

TEST(SemaTest, RecursionIsAnError) {
  Elaborated e(R"(
fn f(x: f32[2]) -> f32[2] { return f(x) }
model m {
  input x: f32[2]
  loss sum(f(x))
}
)");
  EXPECT_TRUE(e.hasError("recursive call to 'f' is not supported"));
}

TEST(SemaTest, LossMustBeScalar) {
  Elaborated e(R"(
model m {
  input x: f32[2, 3]
  loss x * 2
}
)");
  EXPECT_TRUE(e.hasError("the loss must be a scalar (f32[]), got f32[2, 3]"));
}

TEST(SemaTest, BadHyperParameter) {
  Elaborated e(R"(
model m {
  input x: f32[2, 3]
  loss sum(x)
}
train m { optimizer adam(lr = -1) }
)");
  EXPECT_TRUE(e.hasError("bad hyper-parameter: 'lr' must be > 0, got -1"));
}

TEST(SemaTest, ConstantFoldingOfInts) {
  Elaborated e(R"(
fn widen(x: f32[B, D]) -> f32[B, 2 * D] {
  param w: f32[D, D * 2] = zeros
  return x @ w
}
model m {
  input x: f32[2, 3]
  loss sum(widen(x))
}
)");
  ASSERT_TRUE(e.model) << (e.errors.empty() ? "" : e.errors[0]);
  EXPECT_EQ(e.model->params[0].type.str(), "f32[3, 6]");
}

} // namespace
