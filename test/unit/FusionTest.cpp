//===- FusionTest.cpp - Fused and unfused graphs compute the same values --===//
//
// Builds @train_step (forward, gradients, optimizer) for a small CNN and a
// dense layer, fuses a copy with kiln-fuse-conv, and evaluates both with the
// f64 reference evaluator on the same random inputs: the losses, updated
// parameters and optimizer state (hence forward values and gradients) must
// agree.
//
//===----------------------------------------------------------------------===//

#include "ir/KilnOps.h"
#include "ir/Reference.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace mlir;

namespace {

const char *kCnn = R"(
module attributes {kiln.train = {optimizer = {name = "sgd", lr = 0.1 : f64, weight_decay = 0.0 : f64, clip_norm = 0.0 : f64}}} {
  kiln.param @conv.w : tensor<4x1x3x3xf32> = he_normal(9.0)
  kiln.param @conv.b : tensor<4xf32> = zeros
  kiln.param @fc.w : tensor<36x3xf32> = glorot_uniform(36.0, 3.0)
  kiln.param @fc.b : tensor<3xf32> = zeros
  func.func @forward(%x: tensor<2x1x6x6xf32> {kiln.input = "x"}, %y: tensor<2xi32> {kiln.input = "y"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @conv.w : tensor<4x1x3x3xf32>
    %b = kiln.load_param @conv.b : tensor<4xf32>
    %c = kiln.conv2d %x, %w strides = [1, 1] padding = [1, 1] dilation = [1, 1] : (tensor<2x1x6x6xf32>, tensor<4x1x3x3xf32>) -> tensor<2x4x6x6xf32>
    %b3 = kiln.reshape %b : tensor<4xf32> -> tensor<4x1x1xf32>
    %a = kiln.add %c, %b3 : (tensor<2x4x6x6xf32>, tensor<4x1x1xf32>) -> tensor<2x4x6x6xf32>
    %r = kiln.relu %a : tensor<2x4x6x6xf32>
    %p = kiln.max_pool2d %r kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<2x4x6x6xf32> -> tensor<2x4x3x3xf32>
    %f = kiln.reshape %p : tensor<2x4x3x3xf32> -> tensor<2x36xf32>
    %fw = kiln.load_param @fc.w : tensor<36x3xf32>
    %fb = kiln.load_param @fc.b : tensor<3xf32>
    %m = kiln.matmul %f, %fw : (tensor<2x36xf32>, tensor<36x3xf32>) -> tensor<2x3xf32>
    %z = kiln.add %m, %fb : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %t = kiln.tanh %z : tensor<2x3xf32>
    %l = kiln.cross_entropy %t, %y : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
)";

OwningOpRef<ModuleOp> trainStep(MLIRContext &ctx, bool fuse) {
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(kCnn, &ctx);
  EXPECT_TRUE(module);
  PassManager pm(&ctx, ModuleOp::getOperationName());
  kiln::KilnPipelineOptions options;
  options.fuse = fuse;
  kiln::buildKilnPipeline(pm, options);
  EXPECT_TRUE(succeeded(pm.run(*module)));
  return module;
}

TEST(FusionTest, FusedTrainStepComputesTheSameValues) {
  MLIRContext ctx;
  ctx.loadDialect<kiln::KilnDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> plain = trainStep(ctx, false);
  OwningOpRef<ModuleOp> fused = trainStep(ctx, true);
  ASSERT_TRUE(plain && fused);

  // The fused module really is fused.
  unsigned convs = 0, dense = 0;
  fused->walk([&](kiln::FusedConv2dOp) { ++convs; });
  fused->walk([&](kiln::FusedDenseOp) { ++dense; });
  EXPECT_GE(convs, 1u);
  EXPECT_GE(dense, 1u);
  unsigned plainConvs = 0;
  fused->walk([&](kiln::Conv2dOp) { ++plainConvs; });
  EXPECT_EQ(plainConvs, 0u);

  auto stepOf = [](ModuleOp m) {
    return m.lookupSymbol<func::FuncOp>("train_step");
  };
  func::FuncOp a = stepOf(*plain), b = stepOf(*fused);
  ASSERT_TRUE(a && b);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> dist(-1, 1);
  SmallVector<kiln::RefTensor> args;
  for (BlockArgument arg : a.getArguments()) {
    auto type = cast<RankedTensorType>(arg.getType());
    kiln::RefTensor t(type.getShape());
    bool labels = type.getElementType().isInteger(32);
    bool hyper = a.getArgAttr(arg.getArgNumber(), "kiln.hyper") != nullptr;
    for (auto [i, x] : llvm::enumerate(t.data))
      x = labels ? double(i % 3) : hyper ? (i == 0 ? 0.1 : 1.0) : dist(rng);
    args.push_back(std::move(t));
  }
  FailureOr<SmallVector<kiln::RefTensor>> ra = kiln::evaluate(a, args);
  FailureOr<SmallVector<kiln::RefTensor>> rb = kiln::evaluate(b, args);
  ASSERT_TRUE(succeeded(ra) && succeeded(rb));
  ASSERT_EQ(ra->size(), rb->size());
  for (size_t r = 0; r < ra->size(); ++r) {
    ASSERT_EQ((*ra)[r].size(), (*rb)[r].size());
    double worst = 0;
    for (int64_t i = 0; i < (*ra)[r].size(); ++i)
      worst = std::max(worst, std::fabs((*ra)[r].data[i] - (*rb)[r].data[i]));
    EXPECT_LT(worst, 1e-12) << "result " << r;
  }
  // The step did something: the parameters moved.
  double moved = 0;
  for (int64_t i = 0; i < args[0].size(); ++i)
    moved += std::fabs((*rb)[0].data[i] - args[0].data[i]);
  EXPECT_GT(moved, 1e-6);
}

} // namespace
