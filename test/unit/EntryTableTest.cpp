//===- EntryTableTest.cpp - The compiler's manifest through the runtime ---===//
//
// What kilnc writes and what the runtime reads must agree: every model in
// models/ is compiled to its manifest and parsed by the runtime's own parser,
// and a model with a fourth entry point is compiled, JIT-linked and driven
// through the runtime's entry table.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/ObjectEmitter.h"
#include "codegen/Pipeline.h"
#include "frontend/Diagnostics.h"
#include "frontend/Parser.h"
#include "frontend/Sema.h"
#include "ir/KilnOps.h"
#include "passes/Passes.h"
#include "runtime/Manifest.h"
#include "runtime/Model.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace mlir;

namespace {

DialectRegistry makeRegistry() {
  DialectRegistry registry;
  registry.insert<kiln::KilnDialect>();
  kiln::registerCodegenDialects(registry);
  return registry;
}

/// Collects diagnostics as text for test messages.
struct Diagnostics {
  explicit Diagnostics(MLIRContext &ctx)
      : handler(&ctx, [this](Diagnostic &d) {
          text += d.str() + "\n";
          return success();
        }) {}
  std::string text;
  ScopedDiagnosticHandler handler;
};

/// The models/*.kiln files, sorted.
std::vector<std::string> modelFiles() {
  std::vector<std::string> files;
  std::error_code ec;
  llvm::SmallString<256> dir(KILN_SOURCE_DIR);
  llvm::sys::path::append(dir, "models");
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec))
    if (llvm::sys::path::extension(it->path()) == ".kiln")
      files.push_back(it->path());
  llvm::sort(files);
  return files;
}

} // namespace

TEST(EntryTableTest, EveryModelsManifestParsesInTheRuntime) {
  std::vector<std::string> files = modelFiles();
  ASSERT_GE(files.size(), 3u) << "models/ not found under " << KILN_SOURCE_DIR;
  for (const std::string &file : files) {
    SCOPED_TRACE(file);
    MLIRContext ctx(makeRegistry());
    ctx.loadAllAvailableDialects();
    Diagnostics diags(ctx);
    auto buffer = llvm::MemoryBuffer::getFile(file);
    ASSERT_TRUE(bool(buffer));
    llvm::SourceMgr srcMgr;
    srcMgr.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
    kiln::DiagnosticReporter reporter(srcMgr, &ctx);
    std::unique_ptr<kiln::ast::Module> syntax =
        kiln::parseProgram(srcMgr, reporter);
    ASSERT_TRUE(syntax && !reporter.hadError()) << diags.text;
    OwningOpRef<ModuleOp> module = kiln::analyze(*syntax, reporter);
    ASSERT_TRUE(module) << diags.text;
    PassManager pm(&ctx, ModuleOp::getOperationName());
    kiln::buildKilnPipeline(pm, kiln::KilnPipelineOptions());
    ASSERT_TRUE(succeeded(pm.run(*module))) << diags.text;

    FailureOr<kiln::AbiLayout> layout = kiln::computeAbiLayout(*module);
    ASSERT_TRUE(succeeded(layout)) << diags.text;
    std::string text = kiln::renderManifest(*module, *layout);
    kiln::rt::Expected<kiln::rt::Manifest> m = kiln::rt::parseManifest(text);
    ASSERT_TRUE(m) << m.error().message() << "\n" << text;

    // The three standard entries, each a row of the table (predict for a
    // model whose body has outputs, which eval_step returns too).
    using kiln::contract::EntryKind;
    const kiln::rt::EntrySpec *eval = m->findEntry("eval_step");
    for (auto [name, kind] : {std::pair{"train_step", EntryKind::Train},
                              std::pair{"eval_step", EntryKind::Eval},
                              std::pair{"predict", EntryKind::Infer}}) {
      if (kind == EntryKind::Infer &&
          !(eval && eval->takes(kiln::contract::Role::Output)))
        continue;
      const kiln::rt::EntrySpec *entry = m->findEntry(name);
      ASSERT_NE(entry, nullptr) << name << "\n" << text;
      EXPECT_EQ(entry->kind, kind) << name;
      EXPECT_EQ(entry->batch, m->batch) << name;
    }
    // The learning rate the train step was compiled with is recorded.
    ASSERT_TRUE(m->optimizer) << text;
    EXPECT_TRUE(kiln::rt::findOption(m->optimizer->options, "lr")) << text;
    EXPECT_GT(m->learningRate(), 0);
    EXPECT_TRUE(m->findData("train", m->inputs[0].name)) << text;
    EXPECT_EQ(m->params.size(), layout->params.size());
  }
}

namespace {

/// A model with a fourth entry: `decode` maps latent vectors through the
/// decoder's parameters, with its own input and output and its own batch.
const char *kDecoderModel = R"(
module attributes {kiln.model = "ae",
    kiln.train = {optimizer = {name = "sgd", lr = 0.1 : f64}, batch = 4 : i64}} {
  kiln.param @enc.w : tensor<6x2xf32> = glorot_uniform(6.0, 2.0)
  kiln.param @dec.w : tensor<2x6xf32> = glorot_uniform(2.0, 6.0)
  kiln.param @dec.b : tensor<6xf32> = uniform(-1.0, 1.0)
  func.func @forward(%x: tensor<4x6xf32> {kiln.input = "x"})
      -> (tensor<f32> {kiln.loss}, tensor<4x6xf32> {kiln.output = "reconstruction"}) {
    %ew = kiln.load_param @enc.w : tensor<6x2xf32>
    %dw = kiln.load_param @dec.w : tensor<2x6xf32>
    %db = kiln.load_param @dec.b : tensor<6xf32>
    %z = kiln.matmul %x, %ew : (tensor<4x6xf32>, tensor<6x2xf32>) -> tensor<4x2xf32>
    %h = kiln.matmul %z, %dw : (tensor<4x2xf32>, tensor<2x6xf32>) -> tensor<4x6xf32>
    %y = kiln.add %h, %db : (tensor<4x6xf32>, tensor<6xf32>) -> tensor<4x6xf32>
    %l = kiln.mse %y, %x : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<f32>
    return %l, %y : tensor<f32>, tensor<4x6xf32>
  }
  func.func @decode(%z: tensor<3x2xf32> {kiln.input = "z"})
      -> (tensor<3x6xf32> {kiln.output = "image"}) attributes {kiln.entry = "infer"} {
    %dw = kiln.load_param @dec.w : tensor<2x6xf32>
    %db = kiln.load_param @dec.b : tensor<6xf32>
    %h = kiln.matmul %z, %dw : (tensor<3x2xf32>, tensor<2x6xf32>) -> tensor<3x6xf32>
    %y = kiln.add %h, %db : (tensor<3x6xf32>, tensor<6xf32>) -> tensor<3x6xf32>
    %s = kiln.sigmoid %y : tensor<3x6xf32>
    return %s : tensor<3x6xf32>
  }
}
)";

} // namespace

TEST(EntryTableTest, RuntimeDispatchesAFourthEntry) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  MLIRContext ctx(makeRegistry());
  ctx.loadAllAvailableDialects();
  Diagnostics diags(ctx);
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(kDecoderModel, &ctx);
  ASSERT_TRUE(module) << diags.text;
  PassManager pm(&ctx, ModuleOp::getOperationName());
  kiln::buildKilnPipeline(pm, kiln::KilnPipelineOptions());
  kiln::buildLoweringPipeline(pm);
  ASSERT_TRUE(succeeded(pm.run(*module))) << diags.text;

  ExecutionEngineOptions options;
  options.llvmModuleBuilder = [](Operation *op, llvm::LLVMContext &llvmCtx) {
    return kiln::translateToLLVMIR(cast<ModuleOp>(op), llvmCtx);
  };
  auto engine = ExecutionEngine::create(*module, options);
  ASSERT_TRUE(bool(engine)) << llvm::toString(engine.takeError());
  auto lookup = [&](StringRef name) -> void * {
    auto sym = (*engine)->lookup(name);
    if (!sym) {
      llvm::consumeError(sym.takeError());
      return nullptr;
    }
    return *sym;
  };
  kiln::rt::ModelAbi abi;
  abi.manifest = reinterpret_cast<const char *(*)()>(lookup("kiln_manifest"))();
  abi.entries =
      reinterpret_cast<const kiln_entry_fn *(*)()>(lookup("kiln_entries"))();
  ASSERT_NE(lookup("kiln_decode"), nullptr);

  kiln::rt::Expected<kiln::rt::Model> model = kiln::rt::Model::create(abi);
  ASSERT_TRUE(model) << model.error().message() << "\n" << abi.manifest;
  ASSERT_EQ(model->manifest().entries.size(), 4u) << abi.manifest;
  const kiln::rt::EntrySpec *decode = model->manifest().findEntry("decode");
  ASSERT_NE(decode, nullptr);
  EXPECT_EQ(decode->kind, kiln::contract::EntryKind::Infer);
  EXPECT_EQ(decode->batch, 3);
  EXPECT_EQ(decode->inputNames(), (std::vector<std::string>{"z"}));
  EXPECT_EQ(model->batchSize(), 4);

  model->initialize(7);
  kiln::rt::Tensor *z = model->findInput("z");
  ASSERT_NE(z, nullptr);
  auto *zv = static_cast<float *>(z->data());
  for (int i = 0; i < 6; ++i)
    zv[i] = 0.25f * float(i) - 0.6f;
  model->run("decode");

  // sigmoid(z @ dec.w + dec.b), with the parameters the runtime initialized.
  auto param = [&](const std::string &name) {
    for (kiln::rt::Tensor &t : model->params)
      if (t.name == name)
        return static_cast<const float *>(t.data());
    return static_cast<const float *>(nullptr);
  };
  const float *w = param("dec.w"), *b = param("dec.b");
  ASSERT_TRUE(w && b);
  const auto *image =
      static_cast<const float *>(model->findOutput("image")->data());
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 6; ++j) {
      double v = b[j];
      for (int k = 0; k < 2; ++k)
        v += double(zv[i * 2 + k]) * w[k * 6 + j];
      EXPECT_NEAR(image[i * 6 + j], 1 / (1 + std::exp(-v)), 1e-5)
          << "image[" << i << ", " << j << "]";
    }

  // The standard entries still run: a training step lowers the loss.
  kiln::rt::Tensor *x = model->findInput("x");
  auto *xv = static_cast<float *>(x->data());
  for (int i = 0; i < 24; ++i)
    xv[i] = float((i * 7) % 5) * 0.2f;
  double first = model->trainStep(0.1, 1, 0);
  double later = first;
  for (int step = 2; step <= 20; ++step)
    later = model->trainStep(0.1, step, 0);
  EXPECT_LT(later, first);
}

// The kiln.param op's InitKind (ODS) and the runtime's initializer table are
// one list: same names, same values (the op takes its argument counts from
// the table, through the value).
TEST(EntryTableTest, InitializerKindsMatchTheContract) {
  for (const kiln::contract::InitInfo &init : kiln::contract::kInits) {
    std::optional<kiln::InitKind> kind = kiln::symbolizeInitKind(init.name);
    ASSERT_TRUE(kind) << init.name;
    EXPECT_EQ(static_cast<int>(*kind), static_cast<int>(init.kind))
        << init.name;
    EXPECT_EQ(kiln::ParamOp::getNumInitArgs(*kind), init.numArgs) << init.name;
  }
  EXPECT_FALSE(kiln::symbolizeInitKind(
      std::string(kiln::stringifyInitKind(kiln::InitKind::he_normal)) + "x"));
}
