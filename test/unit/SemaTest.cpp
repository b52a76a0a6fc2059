//===- SemaTest.cpp - Unit tests of semantic analysis (elaboration) -------===//

#include "frontend/Sema.h"
#include "frontend/Parser.h"
#include "ir/KilnOps.h"
#include "runtime/Contract.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
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
  /// The kiln.param ops, in declaration order.
  llvm::SmallVector<ParamOp> params() {
    return llvm::to_vector(model->getOps<ParamOp>());
  }
  mlir::func::FuncOp forward() {
    return model->lookupSymbol<mlir::func::FuncOp>("forward");
  }
  /// The values @forward returns: the loss, then the outputs.
  mlir::OperandRange results() {
    return forward().getBody().front().getTerminator()->getOperands();
  }
  /// A field of the `kiln.train` dictionary: train("optimizer", "lr").
  mlir::Attribute train(llvm::StringRef field, llvm::StringRef sub = {}) {
    auto dict =
        (*model)->getAttrOfType<mlir::DictionaryAttr>(contract::kTrainAttr);
    if (!dict)
      return {};
    mlir::Attribute a = dict.get(field);
    if (sub.empty() || !a)
      return a;
    return llvm::cast<mlir::DictionaryAttr>(a).get(sub);
  }
  double trainNumber(llvm::StringRef field, llvm::StringRef sub = {}) {
    mlir::Attribute a = train(field, sub);
    if (auto f = llvm::dyn_cast_or_null<mlir::FloatAttr>(a))
      return f.getValueAsDouble();
    if (auto i = llvm::dyn_cast_or_null<mlir::IntegerAttr>(a))
      return double(i.getInt());
    ADD_FAILURE() << "no number at " << field.str() << " " << sub.str();
    return 0;
  }
  mlir::MLIRContext ctx;
  llvm::SourceMgr srcMgr;
  std::vector<std::string> errors;
  mlir::OwningOpRef<mlir::ModuleOp> model;
};

std::string str(mlir::Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

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
  EXPECT_EQ((*e.model)->getAttrOfType<mlir::StringAttr>(contract::kModelAttr),
            mlir::StringAttr::get(&e.ctx, "mlp"));
  llvm::SmallVector<ParamOp> params = e.params();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].getSymName(), "fc1.w");
  EXPECT_EQ(str(params[0].getType()), "tensor<784x256xf32>");
  EXPECT_EQ(params[0].getInit(), InitKind::glorot_uniform);
  EXPECT_EQ(params[0].getInitArgs(), (llvm::ArrayRef<double>{784, 256}));
  EXPECT_EQ(params[1].getSymName(), "fc1.b");
  EXPECT_EQ(params[2].getSymName(), "logits.w");
  EXPECT_EQ(str(params[3].getType()), "tensor<10xf32>");
  mlir::func::FuncOp forward = e.forward();
  ASSERT_TRUE(forward);
  ASSERT_EQ(forward.getNumArguments(), 2u);
  EXPECT_EQ(str(forward.getArgument(1).getType()), "tensor<64xi32>");
  EXPECT_EQ(forward.getArgAttrOfType<mlir::StringAttr>(1, "kiln.input"),
            mlir::StringAttr::get(&e.ctx, "label"));
  ASSERT_EQ(e.results().size(), 2u);
  EXPECT_TRUE(e.results()[0].getDefiningOp<CrossEntropyOp>());
  EXPECT_EQ(str(e.results()[1].getType()), "tensor<64xi32>");
  EXPECT_EQ(forward.getResultAttrOfType<mlir::StringAttr>(1, "kiln.output"),
            mlir::StringAttr::get(&e.ctx, "prediction"));
  EXPECT_EQ(e.train("optimizer", "name"),
            mlir::StringAttr::get(&e.ctx, "adam"));
  EXPECT_EQ(e.trainNumber("optimizer", "lr"), 1e-3);
  EXPECT_EQ(e.trainNumber("optimizer", "beta2"), 0.999);
  EXPECT_EQ(e.trainNumber("epochs"), 2);
  auto image = llvm::cast<mlir::DictionaryAttr>(e.train("data", "image"));
  EXPECT_DOUBLE_EQ(
      llvm::cast<mlir::FloatAttr>(image.get("scale")).getValueAsDouble(),
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
  llvm::SmallVector<ParamOp> params = e.params();
  ASSERT_EQ(params.size(), 3u);
  EXPECT_EQ(params[0].getSymName(), "h.0.w");
  EXPECT_EQ(params[2].getSymName(), "h.2.w");
  EXPECT_EQ(params[1].getInit(), InitKind::normal);
  EXPECT_EQ(params[1].getInitArgs(), (llvm::ArrayRef<double>{0.0, 0.02}));
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
  EXPECT_EQ(str(e.params()[0].getType()), "tensor<3x6xf32>");
}

TEST(SemaTest, BuiltinArgumentsAreElaboratedOnce) {
  Elaborated e(R"(
fn lin(x: f32[N, D]) -> f32[N, D] {
  param w: f32[D, D] = zeros
  return x @ w
}
model m {
  input x: f32[2, 3]
  loss sum(maximum(lin(x), x))
}
)");
  ASSERT_TRUE(e.model) << (e.errors.empty() ? "" : e.errors[0]);
  ASSERT_EQ(e.params().size(), 1u);
  EXPECT_EQ(e.params()[0].getSymName(), "lin.w");
  EXPECT_EQ(llvm::range_size(e.forward().getOps<MatmulOp>()), 1u);
}

TEST(SemaTest, BatchNormStatisticsAreBuffers) {
  Elaborated e(R"(
model m {
  input x: f32[4, 3]
  param g: f32[3] = ones
  param b: f32[3] = zeros
  param mean: f32[3] = zeros
  param var: f32[3] = ones
  loss sum(batch_norm(x, g, b, mean, var))
}
)");
  ASSERT_TRUE(e.model) << (e.errors.empty() ? "" : e.errors[0]);
  llvm::SmallVector<ParamOp> params = e.params();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_FALSE(params[0].getBuffer());
  EXPECT_FALSE(params[1].getBuffer());
  EXPECT_TRUE(params[2].getBuffer());
  EXPECT_TRUE(params[3].getBuffer());
  llvm::SmallVector<AssignParamOp> assigns =
      llvm::to_vector(e.forward().getOps<AssignParamOp>());
  ASSERT_EQ(assigns.size(), 2u);
  EXPECT_EQ(assigns[0].getParam(), "mean");
  EXPECT_EQ(assigns[1].getParam(), "var");
}

} // namespace
