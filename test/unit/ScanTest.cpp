//===- ScanTest.cpp - kiln.scan is the loop it stands for -----------------===//
//
// The reference evaluator runs a scan's body once per step; the result must
// equal the same cell written out step by step, forwards and in reverse, and
// stay the same when kiln-scan-precompute and the scan's canonicalizations
// move work out of the loop.
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

#include <random>

using namespace mlir;
using kiln::RefTensor;

namespace {

/// An RNN cell h' = tanh(x_t wx + h wh) carrying h and the running sum
/// s' = s + h', stacking h' along axis 1, as a scan named NAME (with the
/// `reverse` keyword in REVERSE).
std::string scanFunction(const std::string &name, const std::string &reverse) {
  std::string text = R"(
func.func @NAME(%x: tensor<2x3x5xf64>, %h0: tensor<2x4xf64>, %s0: tensor<2x4xf64>,
                %wx: tensor<5x4xf64>, %wh: tensor<4x4xf64>)
    -> (tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x3x4xf64>) {
  %h, %s, %hs = kiln.scan length = 3 axis = 1 REVERSE
      carries(%h0, %s0 : tensor<2x4xf64>, tensor<2x4xf64>) xs(%x : tensor<2x3x5xf64>)
      consts(%wx, %wh : tensor<5x4xf64>, tensor<4x4xf64>) {
  ^bb0(%hp: tensor<2x4xf64>, %sp: tensor<2x4xf64>, %xt: tensor<2x5xf64>, %a: tensor<5x4xf64>, %b: tensor<4x4xf64>):
    %0 = kiln.matmul %xt, %a : (tensor<2x5xf64>, tensor<5x4xf64>) -> tensor<2x4xf64>
    %1 = kiln.matmul %hp, %b : (tensor<2x4xf64>, tensor<4x4xf64>) -> tensor<2x4xf64>
    %2 = kiln.add %0, %1 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
    %3 = kiln.tanh %2 : tensor<2x4xf64>
    %4 = kiln.add %sp, %3 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
    kiln.yield %3, %4, %3 : tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x4xf64>
  } -> (tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x3x4xf64>)
  return %h, %s, %hs : tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x3x4xf64>
}

)";
  text.replace(text.find("NAME"), 4, name);
  text.replace(text.find("REVERSE"), 7, reverse);
  return text;
}

/// The same cell unrolled over three steps.
const char *kUnrolled = R"(
func.func @unrolled(%x0: tensor<2x5xf64>, %x1: tensor<2x5xf64>, %x2: tensor<2x5xf64>,
                    %h0: tensor<2x4xf64>, %s0: tensor<2x4xf64>,
                    %wx: tensor<5x4xf64>, %wh: tensor<4x4xf64>)
    -> (tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x4xf64>) {
  %a0 = kiln.matmul %x0, %wx : (tensor<2x5xf64>, tensor<5x4xf64>) -> tensor<2x4xf64>
  %b0 = kiln.matmul %h0, %wh : (tensor<2x4xf64>, tensor<4x4xf64>) -> tensor<2x4xf64>
  %c0 = kiln.add %a0, %b0 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
  %h1 = kiln.tanh %c0 : tensor<2x4xf64>
  %s1 = kiln.add %s0, %h1 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
  %a1 = kiln.matmul %x1, %wx : (tensor<2x5xf64>, tensor<5x4xf64>) -> tensor<2x4xf64>
  %b1 = kiln.matmul %h1, %wh : (tensor<2x4xf64>, tensor<4x4xf64>) -> tensor<2x4xf64>
  %c1 = kiln.add %a1, %b1 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
  %h2 = kiln.tanh %c1 : tensor<2x4xf64>
  %s2 = kiln.add %s1, %h2 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
  %a2 = kiln.matmul %x2, %wx : (tensor<2x5xf64>, tensor<5x4xf64>) -> tensor<2x4xf64>
  %b2 = kiln.matmul %h2, %wh : (tensor<2x4xf64>, tensor<4x4xf64>) -> tensor<2x4xf64>
  %c2 = kiln.add %a2, %b2 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
  %h3 = kiln.tanh %c2 : tensor<2x4xf64>
  %s3 = kiln.add %s2, %h3 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<2x4xf64>
  return %h3, %s3, %h1, %h2, %h3 : tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x4xf64>, tensor<2x4xf64>
}
)";

RefTensor random(std::mt19937 &rng, llvm::ArrayRef<int64_t> shape) {
  std::uniform_real_distribution<double> dist(-1, 1);
  RefTensor t(shape);
  for (double &v : t.data)
    v = dist(rng);
  return t;
}

/// Step t of x: [2, 3, 5] -> [2, 5].
RefTensor step(const RefTensor &x, int64_t t) {
  RefTensor r(llvm::ArrayRef<int64_t>{2, 5});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t f = 0; f < 5; ++f)
      r.data[b * 5 + f] = x.data[(b * 3 + t) * 5 + f];
  return r;
}

/// Expects that step t of hs ([2, 3, 4]) is h ([2, 4]).
void expectStep(const RefTensor &hs, int64_t t, const RefTensor &h) {
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_EQ(hs.data[(b * 3 + t) * 4 + j], h.data[b * 4 + j])
          << "step " << t << " [" << b << ", " << j << "]";
}

class ScanTest : public ::testing::Test {
protected:
  void SetUp() override {
    ctx.loadDialect<kiln::KilnDialect, func::FuncDialect>();
    std::string text = scanFunction("scan", "") +
                       scanFunction("scan_reverse", "reverse") + kUnrolled;
    module = parseSourceString<ModuleOp>(text, &ctx);
    ASSERT_TRUE(module);
    x = random(rng, {2, 3, 5});
    h0 = random(rng, {2, 4});
    s0 = random(rng, {2, 4});
    wx = random(rng, {5, 4});
    wh = random(rng, {4, 4});
  }
  SmallVector<RefTensor> run(StringRef name, ArrayRef<RefTensor> args) {
    auto func = module->lookupSymbol<func::FuncOp>(name);
    FailureOr<SmallVector<RefTensor>> r = kiln::evaluate(func, args);
    EXPECT_TRUE(succeeded(r));
    return succeeded(r) ? *r : SmallVector<RefTensor>();
  }

  MLIRContext ctx;
  OwningOpRef<ModuleOp> module;
  std::mt19937 rng{7};
  RefTensor x, h0, s0, wx, wh;
};

} // namespace

TEST_F(ScanTest, EqualsTheUnrolledLoop) {
  SmallVector<RefTensor> scan = run("scan", {x, h0, s0, wx, wh});
  SmallVector<RefTensor> loop =
      run("unrolled", {step(x, 0), step(x, 1), step(x, 2), h0, s0, wx, wh});
  ASSERT_EQ(scan.size(), 3u);
  ASSERT_EQ(loop.size(), 5u);
  EXPECT_EQ(scan[0].data, loop[0].data) << "final h";
  EXPECT_EQ(scan[1].data, loop[1].data) << "final running sum";
  for (int64_t t = 0; t < 3; ++t)
    expectStep(scan[2], t, loop[2 + t]);
}

TEST_F(ScanTest, ReverseRunsTheStepsBackwards) {
  SmallVector<RefTensor> scan = run("scan_reverse", {x, h0, s0, wx, wh});
  // Steps t = 2, 1, 0; each output lands at its own t.
  SmallVector<RefTensor> loop =
      run("unrolled", {step(x, 2), step(x, 1), step(x, 0), h0, s0, wx, wh});
  ASSERT_EQ(scan.size(), 3u);
  EXPECT_EQ(scan[0].data, loop[0].data) << "final h";
  EXPECT_EQ(scan[1].data, loop[1].data) << "final running sum";
  expectStep(scan[2], 2, loop[2]);
  expectStep(scan[2], 1, loop[3]);
  expectStep(scan[2], 0, loop[4]);
}

TEST_F(ScanTest, PrecomputeKeepsTheValues) {
  SmallVector<RefTensor> before = run("scan", {x, h0, s0, wx, wh});
  SmallVector<RefTensor> beforeReverse =
      run("scan_reverse", {x, h0, s0, wx, wh});
  PassManager pm(&ctx, ModuleOp::getOperationName());
  pm.addPass(kiln::createKilnScanPrecompute());
  pm.addPass(createCanonicalizerPass());
  ASSERT_TRUE(succeeded(pm.run(*module)));
  // x_t @ wx left the loop: one matmul over all steps, before each scan.
  for (StringRef name : {"scan", "scan_reverse"}) {
    auto func = module->lookupSymbol<func::FuncOp>(name);
    auto scanOp = *func.getOps<kiln::ScanOp>().begin();
    EXPECT_EQ(llvm::count_if(func.getOps<kiln::MatmulOp>(),
                             [](kiln::MatmulOp) { return true; }),
              1)
        << name.str();
    int inLoop = 0;
    scanOp.getBody().walk([&](kiln::MatmulOp) { ++inLoop; });
    EXPECT_EQ(inLoop, 1) << name.str() << ": only h @ wh stays in the loop";
  }
  SmallVector<RefTensor> after = run("scan", {x, h0, s0, wx, wh});
  SmallVector<RefTensor> afterReverse =
      run("scan_reverse", {x, h0, s0, wx, wh});
  for (auto [b, a] : llvm::zip(llvm::concat<RefTensor>(before, beforeReverse),
                               llvm::concat<RefTensor>(after, afterReverse))) {
    ASSERT_EQ(a.data.size(), b.data.size());
    for (size_t i = 0; i < a.data.size(); ++i)
      EXPECT_NEAR(a.data[i], b.data[i], 1e-12);
  }
}
