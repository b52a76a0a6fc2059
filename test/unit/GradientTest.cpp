//===- GradientTest.cpp - Every gradient rule vs. finite differences ------===//

#include "passes/Autodiff.h"

#include "ir/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace mlir;

namespace {

struct Case {
  const char *op; // the kiln op under test
  const char *ir; // a module with one function exercising it
};

// Shapes are chosen to exercise broadcasting and several axes.
const Case kCases[] = {
    {"kiln.add",
     R"(func.func @f(%a: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<3x4xf32> {
      %0 = kiln.add %a, %b : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
      return %0 : tensor<3x4xf32> })"},
    {"kiln.sub",
     R"(func.func @f(%a: tensor<3x1xf32>, %b: tensor<1x4xf32>) -> tensor<3x4xf32> {
      %0 = kiln.sub %a, %b : (tensor<3x1xf32>, tensor<1x4xf32>) -> tensor<3x4xf32>
      return %0 : tensor<3x4xf32> })"},
    {"kiln.mul",
     R"(func.func @f(%a: tensor<2x3xf32>, %b: tensor<f32>) -> tensor<2x3xf32> {
      %0 = kiln.mul %a, %b : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
      return %0 : tensor<2x3xf32> })"},
    {"kiln.div",
     R"(func.func @f(%a: tensor<2x3xf32>, %b: tensor<3xf32> {kiln.check_range = [0.5, 2.0]}) -> tensor<2x3xf32> {
      %0 = kiln.div %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
      return %0 : tensor<2x3xf32> })"},
    {"kiln.maximum",
     R"(func.func @f(%a: tensor<5xf32>, %b: tensor<5xf32>) -> tensor<5xf32> {
      %0 = kiln.maximum %a, %b : (tensor<5xf32>, tensor<5xf32>) -> tensor<5xf32>
      return %0 : tensor<5xf32> })"},
    {"kiln.minimum",
     R"(func.func @f(%a: tensor<5xf32>, %b: tensor<1xf32>) -> tensor<5xf32> {
      %0 = kiln.minimum %a, %b : (tensor<5xf32>, tensor<1xf32>) -> tensor<5xf32>
      return %0 : tensor<5xf32> })"},
    {"kiln.greater",
     R"(func.func @f(%a: tensor<5xf32>, %b: tensor<5xf32>) -> tensor<5xf32> {
      %0 = kiln.greater %a, %b : (tensor<5xf32>, tensor<5xf32>) -> tensor<5xf32>
      %1 = kiln.mul %0, %a : (tensor<5xf32>, tensor<5xf32>) -> tensor<5xf32>
      return %1 : tensor<5xf32> })"},
    {"kiln.neg", R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
      %0 = kiln.neg %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.relu", R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
      %0 = kiln.relu %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.leaky_relu",
     R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
      %0 = kiln.leaky_relu %x {slope = 0.2 : f64} : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.softplus",
     R"(func.func @f(%x: tensor<2x5xf32> {kiln.check_range = [-6.0, 6.0]}) -> tensor<2x5xf32> {
      %0 = kiln.softplus %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.scan",
     R"(func.func @f(%x: tensor<2x4x3xf32>, %h0: tensor<2x5xf32>, %c0: tensor<2x5xf32>, %w: tensor<3x5xf32>, %u: tensor<5x5xf32>) -> (tensor<2x5xf32>, tensor<2x4x5xf32>) {
      %h, %c, %ys = kiln.scan length = 4 axis = 1 reverse carries(%h0, %c0 : tensor<2x5xf32>, tensor<2x5xf32>) xs(%x : tensor<2x4x3xf32>) consts(%w, %u : tensor<3x5xf32>, tensor<5x5xf32>) {
      ^bb0(%hp: tensor<2x5xf32>, %cp: tensor<2x5xf32>, %xt: tensor<2x3xf32>, %a: tensor<3x5xf32>, %b: tensor<5x5xf32>):
        %0 = kiln.matmul %xt, %a : (tensor<2x3xf32>, tensor<3x5xf32>) -> tensor<2x5xf32>
        %1 = kiln.sigmoid %0 : tensor<2x5xf32>
        %2 = kiln.mul %1, %cp : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
        %3 = kiln.matmul %hp, %b : (tensor<2x5xf32>, tensor<5x5xf32>) -> tensor<2x5xf32>
        %4 = kiln.tanh %3 : tensor<2x5xf32>
        %5 = kiln.add %2, %4 : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
        %6 = kiln.tanh %5 : tensor<2x5xf32>
        %7 = kiln.mul %6, %1 : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
        kiln.yield %6, %5, %7 : tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>
      } -> (tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x4x5xf32>)
      return %h, %ys : tensor<2x5xf32>, tensor<2x4x5xf32> })"},
    {"kiln.scan with dropout",
     R"(func.func @f(%x: tensor<2x4x3xf32>, %h0: tensor<2x5xf32>, %w: tensor<3x5xf32>, %k: tensor<4xf32> {kiln.check_range = [3.2, 3.8]}) -> (tensor<2x5xf32>, tensor<2x4x5xf32>) {
      %steps = kiln.constant dense<[[0, 1, 2, 3]]> : tensor<1x4xi32>
      %h, %ys = kiln.scan length = 4 axis = 1 carries(%h0 : tensor<2x5xf32>) xs(%x, %steps : tensor<2x4x3xf32>, tensor<1x4xi32>) consts(%w, %k : tensor<3x5xf32>, tensor<4xf32>) {
      ^bb0(%hp: tensor<2x5xf32>, %xt: tensor<2x3xf32>, %t: tensor<1xi32>, %a: tensor<3x5xf32>, %hyper: tensor<4xf32>):
        %0 = kiln.matmul %xt, %a : (tensor<2x3xf32>, tensor<3x5xf32>) -> tensor<2x5xf32>
        %1 = kiln.add %0, %hp : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
        %2 = kiln.dropout %1, %hyper : tensor<4xf32> step %t : tensor<1xi32> {rate = 0.5 : f64, salt = 7 : i64} : tensor<2x5xf32>
        %3 = kiln.tanh %2 : tensor<2x5xf32>
        kiln.yield %3, %3 : tensor<2x5xf32>, tensor<2x5xf32>
      } -> (tensor<2x5xf32>, tensor<2x4x5xf32>)
      return %h, %ys : tensor<2x5xf32>, tensor<2x4x5xf32> })"},
    {"kiln.sigmoid", R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
      %0 = kiln.sigmoid %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.tanh", R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
      %0 = kiln.tanh %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.exp", R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
      %0 = kiln.exp %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.log",
     R"(func.func @f(%x: tensor<6xf32> {kiln.check_range = [0.5, 2.0]}) -> tensor<6xf32> {
      %0 = kiln.log %x : tensor<6xf32>
      return %0 : tensor<6xf32> })"},
    {"kiln.sqrt",
     R"(func.func @f(%x: tensor<6xf32> {kiln.check_range = [0.5, 2.0]}) -> tensor<6xf32> {
      %0 = kiln.sqrt %x : tensor<6xf32>
      return %0 : tensor<6xf32> })"},
    {"kiln.abs", R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
      %0 = kiln.abs %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.cast",
     R"(func.func @f(%x: tensor<2x5xf32>) -> tensor<2x5xf64> {
      %0 = kiln.cast %x : tensor<2x5xf32> -> tensor<2x5xf64>
      %1 = kiln.mul %0, %0 : (tensor<2x5xf64>, tensor<2x5xf64>) -> tensor<2x5xf64>
      return %1 : tensor<2x5xf64> })"},
    {"kiln.gelu",
     R"(func.func @f(%x: tensor<2x5xf32> {kiln.check_range = [-3.0, 3.0]}) -> tensor<2x5xf32> {
      %0 = kiln.gelu %x : tensor<2x5xf32>
      return %0 : tensor<2x5xf32> })"},
    {"kiln.matmul",
     R"(func.func @f(%a: tensor<2x3x4xf32>, %b: tensor<4x2xf32>) -> tensor<2x3x2xf32> {
      %0 = kiln.matmul %a, %b : (tensor<2x3x4xf32>, tensor<4x2xf32>) -> tensor<2x3x2xf32>
      return %0 : tensor<2x3x2xf32> })"},
    {"kiln.attention",
     R"(func.func @f(%q: tensor<2x3x4xf32>, %k: tensor<2x5x4xf32>, %v: tensor<2x5x3xf32>) -> tensor<2x3x3xf32> {
      %o, %lse = kiln.attention %q, %k, %v causal scale = 0.6 : (tensor<2x3x4xf32>, tensor<2x5x4xf32>, tensor<2x5x3xf32>) -> (tensor<2x3x3xf32>, tensor<2x3xf32>)
      return %o : tensor<2x3x3xf32> })"},
    {"kiln.layer_norm",
     R"(func.func @f(%x: tensor<2x3x5xf32>) -> tensor<2x3x5xf32> {
      %0 = kiln.layer_norm %x eps = 1.0e-3 : tensor<2x3x5xf32>
      return %0 : tensor<2x3x5xf32> })"},
    {"kiln.softmax", R"(func.func @f(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
      %0 = kiln.softmax %x axis = 1 : tensor<3x4xf32>
      return %0 : tensor<3x4xf32> })"},
    {"kiln.log_softmax",
     R"(func.func @f(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
      %0 = kiln.log_softmax %x axis = 0 : tensor<3x4xf32>
      return %0 : tensor<3x4xf32> })"},
    {"kiln.reduce_sum",
     R"(func.func @f(%x: tensor<2x3x4xf32>) -> tensor<2x4xf32> {
      %0 = kiln.reduce_sum %x axes = [1] : tensor<2x3x4xf32> -> tensor<2x4xf32>
      return %0 : tensor<2x4xf32> })"},
    {"kiln.reduce_mean",
     R"(func.func @f(%x: tensor<2x3x4xf32>) -> tensor<1x3x1xf32> {
      %0 = kiln.reduce_mean %x axes = [0, 2] {keepdims = true} : tensor<2x3x4xf32> -> tensor<1x3x1xf32>
      return %0 : tensor<1x3x1xf32> })"},
    {"kiln.reduce_max",
     R"(func.func @f(%x: tensor<2x3x4xf32>) -> tensor<2x3xf32> {
      %0 = kiln.reduce_max %x axes = [2] : tensor<2x3x4xf32> -> tensor<2x3xf32>
      return %0 : tensor<2x3xf32> })"},
    {"kiln.reshape", R"(func.func @f(%x: tensor<2x3x4xf32>) -> tensor<6x4xf32> {
      %0 = kiln.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
      return %0 : tensor<6x4xf32> })"},
    {"kiln.transpose",
     R"(func.func @f(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
      %0 = kiln.transpose %x perm = [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
      return %0 : tensor<4x2x3xf32> })"},
    {"kiln.broadcast_to",
     R"(func.func @f(%y: tensor<3x1xf32>) -> tensor<2x3x5xf32> {
      %0 = kiln.broadcast_to %y : tensor<3x1xf32> -> tensor<2x3x5xf32>
      return %0 : tensor<2x3x5xf32> })"},
    {"kiln.conv2d",
     R"(func.func @f(%x: tensor<2x3x6x5xf32>, %w: tensor<4x3x3x2xf32>) -> tensor<2x4x3x3xf32> {
      %0 = kiln.conv2d %x, %w strides = [2, 1] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x6x5xf32>, tensor<4x3x3x2xf32>) -> tensor<2x4x3x3xf32>
      return %0 : tensor<2x4x3x3xf32> })"},
    {"kiln.max_pool2d",
     R"(func.func @f(%x: tensor<2x2x5x5xf32>) -> (tensor<2x2x2x2xf32>, tensor<2x2x3x3xf32>) {
      %0 = kiln.max_pool2d %x kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<2x2x5x5xf32> -> tensor<2x2x2x2xf32>
      %1 = kiln.max_pool2d %x kernel = [3, 3] strides = [2, 2] padding = [1, 1] : tensor<2x2x5x5xf32> -> tensor<2x2x3x3xf32>
      return %0, %1 : tensor<2x2x2x2xf32>, tensor<2x2x3x3xf32> })"},
    {"kiln.avg_pool2d",
     R"(func.func @f(%x: tensor<2x2x5x5xf32>) -> (tensor<2x2x2x2xf32>, tensor<2x2x3x3xf32>) {
      %0 = kiln.avg_pool2d %x kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<2x2x5x5xf32> -> tensor<2x2x2x2xf32>
      %1 = kiln.avg_pool2d %x kernel = [3, 3] strides = [2, 2] padding = [1, 1] : tensor<2x2x5x5xf32> -> tensor<2x2x3x3xf32>
      return %0, %1 : tensor<2x2x2x2xf32>, tensor<2x2x3x3xf32> })"},
    {"kiln.dropout",
     R"(func.func @f(%x: tensor<4x8xf32>, %h: tensor<4xf32> {kiln.check_range = [3.2, 3.8]}) -> tensor<4x8xf32> {
      %0 = kiln.dropout %x, %h : tensor<4xf32> {rate = 0.5 : f64, salt = 7 : i64} : tensor<4x8xf32>
      return %0 : tensor<4x8xf32> })"},
    {"kiln.gather",
     R"(func.func @f(%t: tensor<5x3xf32>) -> tensor<6x3xf32> {
      %ids = kiln.constant dense<[4, 0, 4, 2, 7, -1]> : tensor<6xi32>
      %0 = kiln.gather %t[%ids] : (tensor<5x3xf32>, tensor<6xi32>) -> tensor<6x3xf32>
      return %0 : tensor<6x3xf32> })"},
    {"kiln.scatter_add",
     R"(func.func @f(%u: tensor<6x3xf32>) -> tensor<5x3xf32> {
      %ids = kiln.constant dense<[4, 0, 4, 2, 7, -1]> : tensor<6xi32>
      %0 = kiln.scatter_add %u[%ids] : (tensor<6xi32>, tensor<6x3xf32>) -> tensor<5x3xf32>
      return %0 : tensor<5x3xf32> })"},
    {"kiln.split",
     R"(func.func @f(%x: tensor<3x7xf32>) -> (tensor<3x2xf32>, tensor<3x4xf32>) {
      %0:3 = kiln.split %x axis = 1 sizes = [2, 1, 4] : tensor<3x7xf32> -> (tensor<3x2xf32>, tensor<3x1xf32>, tensor<3x4xf32>)
      return %0#0, %0#2 : tensor<3x2xf32>, tensor<3x4xf32> })"},
    {"kiln.concat",
     R"(func.func @f(%a: tensor<2x3xf32>, %b: tensor<1x3xf32>) -> tensor<3x3xf32> {
      %0 = kiln.concat %a, %b axis = 0 : (tensor<2x3xf32>, tensor<1x3xf32>) -> tensor<3x3xf32>
      return %0 : tensor<3x3xf32> })"},
    {"kiln.cross_entropy",
     R"(func.func @f(%l: tensor<4x5xf32>, %y: tensor<4xi32> {kiln.check_range = [0.0, 5.0]}) -> tensor<f32> {
      %0 = kiln.cross_entropy %l, %y : (tensor<4x5xf32>, tensor<4xi32>) -> tensor<f32>
      return %0 : tensor<f32> })"},
    {"kiln.cross_entropy ignoring a label outside the classes",
     R"(func.func @f(%l: tensor<5x4xf32>) -> tensor<f32> {
      %y = kiln.constant dense<[2, -100, 0, 3, -100]> : tensor<5xi32>
      %0 = kiln.cross_entropy %l, %y {ignore_index = -100 : i64} : (tensor<5x4xf32>, tensor<5xi32>) -> tensor<f32>
      return %0 : tensor<f32> })"},
    {"kiln.cross_entropy ignoring a class",
     R"(func.func @f(%l: tensor<5x4xf32>) -> tensor<f32> {
      %y = kiln.constant dense<[2, 1, 0, 3, 1]> : tensor<5xi32>
      %0 = kiln.cross_entropy %l, %y {ignore_index = 1 : i64} : (tensor<5x4xf32>, tensor<5xi32>) -> tensor<f32>
      return %0 : tensor<f32> })"},
    {"kiln.mse",
     R"(func.func @f(%a: tensor<3x2xf32>, %b: tensor<3x2xf32>) -> tensor<f32> {
      %0 = kiln.mse %a, %b : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<f32>
      return %0 : tensor<f32> })"},
    {"kiln.bce_with_logits",
     R"(func.func @f(%a: tensor<3x2xf32>, %b: tensor<3x2xf32> {kiln.check_range = [0.0, 1.0]}) -> tensor<f32> {
      %0 = kiln.bce_with_logits %a, %b : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<f32>
      return %0 : tensor<f32> })"},
};

class GradientTest : public ::testing::TestWithParam<Case> {
protected:
  GradientTest() { ctx.loadDialect<kiln::KilnDialect, func::FuncDialect>(); }
  MLIRContext ctx;
};

TEST_P(GradientTest, MatchesFiniteDifferences) {
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(GetParam().ir, &ctx);
  ASSERT_TRUE(module) << "test IR does not parse";
  auto func = *module->getOps<func::FuncOp>().begin();
  for (unsigned seed : {1u, 2u, 3u}) {
    FailureOr<kiln::GradientCheckResult> r = kiln::checkGradients(func, seed);
    ASSERT_TRUE(succeeded(r));
    EXPECT_GT(r->components, 0);
    EXPECT_LT(r->maxError, 1e-6)
        << GetParam().op << ": argument " << r->worstArgument << "["
        << r->worstElement << "] analytic " << r->worstAnalytic
        << " vs numeric " << r->worstNumeric;
  }
}

INSTANTIATE_TEST_SUITE_P(AllOps, GradientTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           std::string name = info.param.op + 5; // "kiln."
                           std::replace(name.begin(), name.end(), ' ', '_');
                           return name;
                         });

// A new differentiable op must come with a case above.
TEST(GradientCoverageTest, EveryDifferentiableOpHasACase) {
  MLIRContext ctx;
  ctx.loadDialect<kiln::KilnDialect>();
  for (RegisteredOperationName name : ctx.getRegisteredOperations()) {
    if (name.getDialectNamespace() != "kiln" ||
        !name.hasInterface<kiln::DifferentiableOpInterface>())
      continue;
    bool covered = llvm::any_of(
        kCases, [&](const Case &c) { return name.getStringRef() == c.op; });
    EXPECT_TRUE(covered) << name.getStringRef().str()
                         << " has a gradient rule but no GradientTest case";
  }
}

// The checker must be able to fail. At the kink of abs, with inputs closer to 0
// than the finite-difference step, the rule's +-1 disagrees with the numeric
// estimate (which straddles the kink), and the checker must say so.
TEST(GradientCheckerTest, DetectsDisagreement) {
  MLIRContext ctx;
  ctx.loadDialect<kiln::KilnDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      R"(func.func @f(%x: tensor<4xf32> {kiln.check_range = [-1.0e-7, 1.0e-7]}) -> tensor<4xf32> {
           %0 = kiln.abs %x : tensor<4xf32>
           return %0 : tensor<4xf32> })",
      &ctx);
  ASSERT_TRUE(module);
  auto func = *module->getOps<func::FuncOp>().begin();
  FailureOr<kiln::GradientCheckResult> r = kiln::checkGradients(func);
  ASSERT_TRUE(succeeded(r));
  EXPECT_GT(r->maxError, 0.5);
}

} // namespace
