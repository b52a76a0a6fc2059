//===- LoweringTest.cpp - Compiled kiln ops against C++ references --------===//
//
// Every kiln op is compiled through the whole lowering pipeline (kiln ->
// linalg -> LLVM -> O3 for the host), run through the C ABI (kiln_predict,
// kiln_train_step, ... with the buffer order the compiled manifest gives) by
// MLIR's ExecutionEngine on random inputs, and compared with the reference
// evaluator of ir/Reference.h (double precision) run on the same IR. Each case
// runs under two pipeline configurations: fast matmul + elementwise fusion +
// polynomial math + static buffers, and none of them.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/ObjectEmitter.h"
#include "codegen/Pipeline.h"
#include "ir/KilnOps.h"
#include "ir/Reference.h"
#include "ir/ShapeRules.h"
#include "passes/Passes.h"
#include "runtime/Manifest.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Object/ObjectFile.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace mlir;

namespace {

//===----------------------------------------------------------------------===//
// Host tensors and the reference
//===----------------------------------------------------------------------===//

using Shape = std::vector<int64_t>;

int64_t numElements(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// A dense row-major tensor; values are held as doubles whatever the dtype.
struct HostTensor {
  std::string dtype = "f32"; // f32, f64 or i32
  Shape shape;
  std::vector<double> values;

  HostTensor() = default;
  HostTensor(std::string dtype, Shape shape, double fill = 0)
      : dtype(std::move(dtype)), shape(std::move(shape)),
        values(numElements(this->shape), fill) {}
  int64_t size() const { return values.size(); }
};

/// Rounds `v` to what a buffer of `dtype` holds.
double roundTo(const std::string &dtype, double v) {
  if (dtype == "f32")
    return static_cast<float>(v);
  if (dtype == "i32")
    return static_cast<int32_t>(v);
  return v;
}

HostTensor random(std::mt19937 &rng, std::string dtype, Shape shape,
                  double lo = -2.0, double hi = 2.0) {
  std::uniform_real_distribution<double> dist(lo, hi);
  HostTensor t(dtype, shape);
  for (double &v : t.values)
    v = roundTo(dtype, dist(rng));
  return t;
}

HostTensor randomLabels(std::mt19937 &rng, Shape shape, int64_t classes) {
  std::uniform_int_distribution<int64_t> dist(0, classes - 1);
  HostTensor t("i32", shape);
  for (double &v : t.values)
    v = dist(rng);
  return t;
}

void expectNear(const HostTensor &got, const HostTensor &want, double rtol,
                double atol, const std::string &what) {
  ASSERT_EQ(got.shape, want.shape) << what;
  ASSERT_EQ(got.dtype, want.dtype) << what;
  ASSERT_EQ(got.values.size(), want.values.size()) << what;
  for (int64_t i = 0; i < want.size(); ++i) {
    double g = got.values[i], w = want.values[i];
    if (std::isnan(w)) {
      EXPECT_TRUE(std::isnan(g)) << what << " element " << i;
      continue;
    }
    if (std::isinf(w)) {
      EXPECT_EQ(g, w) << what << " element " << i;
      continue;
    }
    ASSERT_LE(std::abs(g - w), atol + rtol * std::abs(w))
        << what << ": element " << i << " is " << g << ", expected " << w;
  }
}

/// The ABI name of an entry argument or result with attributes `attrs`: its
/// kiln.input, kiln.output, kiln.param or kiln.state name, "hyper" or "loss".
std::string abiName(DictionaryAttr attrs) {
  if (!attrs)
    return "";
  for (const kiln::contract::RoleInfo &role : kiln::contract::kRoles) {
    if (!attrs.contains(role.attr))
      continue;
    if (auto name = attrs.getAs<StringAttr>(role.attr))
      return name.str();
    return role.name; // hyper, loss
  }
  return "";
}

std::string dtypeOf(Type type) {
  Type element = cast<RankedTensorType>(type).getElementType();
  return element.isF64() ? "f64" : element.isF32() ? "f32" : "i32";
}

/// What the reference evaluator (ir/Reference.h) computes for the entry
/// function `entry` of `ir` from `tensors` (by ABI name; missing ones are
/// zero): every result by ABI name, updated params and state under their
/// own.
std::map<std::string, HostTensor>
reference(const std::string &ir, const std::string &entry,
          const std::map<std::string, HostTensor> &tensors) {
  DialectRegistry registry;
  registry.insert<kiln::KilnDialect, func::FuncDialect>();
  MLIRContext ctx(registry);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(ir, &ctx);
  EXPECT_TRUE(module) << ir;
  auto func = module ? module->lookupSymbol<func::FuncOp>(entry) : nullptr;
  EXPECT_TRUE(func) << "no @" << entry;
  if (!func)
    return {};
  SmallVector<kiln::RefTensor> args;
  for (BlockArgument arg : func.getArguments()) {
    std::string name = abiName(func.getArgAttrDict(arg.getArgNumber()));
    kiln::RefTensor value(cast<RankedTensorType>(arg.getType()).getShape());
    auto it = tensors.find(name);
    if (it != tensors.end()) {
      EXPECT_EQ(ArrayRef<int64_t>(it->second.shape),
                ArrayRef<int64_t>(value.shape))
          << "argument " << name;
      value.data = it->second.values;
    }
    args.push_back(std::move(value));
  }
  FailureOr<SmallVector<kiln::RefTensor>> results = kiln::evaluate(func, args);
  EXPECT_TRUE(succeeded(results)) << "reference evaluation of @" << entry;
  if (failed(results))
    return {};
  std::map<std::string, HostTensor> named;
  for (auto [i, result] : llvm::enumerate(*results)) {
    HostTensor t(dtypeOf(func.getResultTypes()[i]),
                 Shape(result.shape.begin(), result.shape.end()));
    t.values = result.data;
    named[abiName(func.getResultAttrDict(i))] = t;
  }
  return named;
}

//===----------------------------------------------------------------------===//
// Compiling and running through the C ABI
//===----------------------------------------------------------------------===//

/// The two pipeline configurations every case runs under.
std::vector<kiln::LoweringOptions> configs() {
  kiln::LoweringOptions fast, plain;
  fast.fastMatmul = true;
  fast.fuseElementwise = true;
  plain.fastMatmul = false;
  plain.fuseElementwise = false;
  plain.approximateMath = false;
  plain.staticBuffers = false;
  return {fast, plain};
}

std::string describe(const kiln::LoweringOptions &o) {
  return std::string("fast-matmul=") + (o.fastMatmul ? "1" : "0") +
         " fuse-elementwise=" + (o.fuseElementwise ? "1" : "0") +
         " approximate-math=" + (o.approximateMath ? "1" : "0") +
         " static-buffers=" + (o.staticBuffers ? "1" : "0");
}

using Tensors = std::map<std::string, HostTensor>;

/// A module compiled by the lowering pipeline and JIT-compiled at O3.
class Compiled {
public:
  /// Compiles `ir`; on failure returns null and sets `error` to the
  /// diagnostics.
  static std::unique_ptr<Compiled> compile(const std::string &ir,
                                           const kiln::LoweringOptions &opts,
                                           std::string &error) {
    auto compiled = std::unique_ptr<Compiled>(new Compiled());
    MLIRContext &ctx = compiled->ctx;
    llvm::raw_string_ostream errors(error);
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
      errors << diag.getLocation() << ": " << diag << "\n";
      return success();
    });
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(ir, &ctx);
    if (!module)
      return nullptr;
    FailureOr<kiln::AbiLayout> layout = kiln::computeAbiLayout(*module);
    if (failed(layout))
      return nullptr;
    compiled->lossType =
        layout->lossType.getElementType().isF64() ? "f64" : "f32";
    PassManager pm(&ctx, ModuleOp::getOperationName());
    kiln::buildLoweringPipeline(pm, opts);
    if (failed(pm.run(*module)))
      return nullptr;

    ExecutionEngineOptions engineOptions;
    engineOptions.llvmModuleBuilder = [](Operation *op,
                                         llvm::LLVMContext &llvmCtx) {
      return kiln::translateToLLVMIR(cast<ModuleOp>(op), llvmCtx);
    };
    engineOptions.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
    auto engine = ExecutionEngine::create(*module, engineOptions);
    if (!engine) {
      errors << "JIT: " << llvm::toString(engine.takeError());
      return nullptr;
    }
    compiled->engine = std::move(*engine);
    auto manifest = compiled->lookup("kiln_manifest");
    if (!manifest) {
      errors << "no kiln_manifest";
      return nullptr;
    }
    compiled->manifestText = reinterpret_cast<const char *(*)()>(manifest)();
    if (!compiled->parseManifest(errors))
      return nullptr;
    return compiled;
  }

  const std::string &manifest() const { return manifestText; }

  /// Runs `kiln_<entry>` with the params, state, inputs and hyper of
  /// `tensors` (by name; missing ones are zero), updating params and state in
  /// `tensors`. Returns the loss (as "loss") and the outputs.
  Tensors run(const std::string &entry, Tensors &tensors) {
    // The entry's buffers, in the order its manifest records give.
    std::vector<std::pair<std::string, HostTensor>> slots; // name, template
    size_t numUpdated = 0; // leading params and state, updated in place
    const kiln::rt::EntrySpec *spec = manifestSpec.findEntry(entry);
    EXPECT_NE(spec, nullptr) << "no entry " << entry;
    if (!spec)
      return {};
    auto tensorOf = [](const kiln::rt::TensorSpec *t) {
      return HostTensor(kiln::rt::dtypeName(t->type),
                        Shape(t->shape.begin(), t->shape.end()));
    };
    auto find = [](const auto &specs, const std::string &name) {
      const kiln::rt::TensorSpec *found = nullptr;
      for (const auto &t : specs)
        if (t.name == name)
          found = &t;
      return found;
    };
    for (const kiln::rt::EntryArg &arg : spec->args) {
      using kiln::contract::Role;
      switch (arg.role) {
      case Role::Param:
        slots.push_back(
            {arg.name, tensorOf(find(manifestSpec.params, arg.name))});
        ++numUpdated;
        break;
      case Role::State:
        slots.push_back(
            {arg.name, tensorOf(find(manifestSpec.state, arg.name))});
        ++numUpdated;
        break;
      case Role::Input:
        slots.push_back({arg.name, tensorOf(manifestSpec.findInput(arg.name))});
        break;
      case Role::Output:
        slots.push_back(
            {arg.name, tensorOf(manifestSpec.findOutput(arg.name))});
        break;
      case Role::Carry:
        slots.push_back(
            {arg.name, tensorOf(find(manifestSpec.carries, arg.name))});
        break;
      case Role::Term:
        slots.push_back(
            {arg.name, tensorOf(find(manifestSpec.terms, arg.name))});
        break;
      case Role::Hyper:
        slots.push_back(
            {"hyper", HostTensor("f32", {kiln::contract::kHyperCount})});
        break;
      case Role::Loss:
        slots.push_back({"loss", HostTensor(lossType, {})});
        break;
      }
    }
    std::vector<std::vector<char>> storage;
    std::vector<void *> buffers;
    for (auto &[name, tmpl] : slots) {
      auto it = tensors.find(name);
      const HostTensor &t = it != tensors.end() ? it->second : tmpl;
      EXPECT_EQ(t.shape, tmpl.shape) << "buffer " << name;
      storage.push_back(toBytes(t.dtype, t.values));
    }
    for (auto &bytes : storage)
      buffers.push_back(bytes.data());
    auto fn = reinterpret_cast<void (*)(void **)>(lookup("kiln_" + entry));
    EXPECT_NE(fn, nullptr);
    if (!fn)
      return {};
    fn(buffers.data());

    Tensors results;
    for (size_t i = 0; i < slots.size(); ++i) {
      auto &[name, tmpl] = slots[i];
      HostTensor t = tmpl;
      t.values = fromBytes(t.dtype, storage[i], t.size());
      if (i < numUpdated)
        tensors[name] = t;
      else
        results[name] = t;
    }
    return results;
  }

private:
  Compiled() : ctx(makeRegistry()) { ctx.loadAllAvailableDialects(); }

  static DialectRegistry makeRegistry() {
    DialectRegistry registry;
    registry.insert<kiln::KilnDialect>();
    kiln::registerCodegenDialects(registry);
    return registry;
  }

  void *lookup(const std::string &name) {
    auto sym = engine->lookup(name);
    if (!sym) {
      llvm::consumeError(sym.takeError());
      return nullptr;
    }
    return *sym;
  }

  /// Parses the manifest with the runtime's own parser: what the compiler
  /// writes is what the runtime reads.
  bool parseManifest(llvm::raw_ostream &errors) {
    kiln::rt::Expected<kiln::rt::Manifest> m =
        kiln::rt::parseManifest(manifestText);
    if (!m) {
      errors << "the runtime rejects the manifest: " << m.error().message();
      return false;
    }
    manifestSpec = std::move(*m);
    return true;
  }

  static std::vector<char> toBytes(const std::string &dtype,
                                   const std::vector<double> &values) {
    size_t width = dtype == "f64" ? 8 : 4;
    std::vector<char> bytes(std::max<size_t>(1, values.size()) * width);
    for (size_t i = 0; i < values.size(); ++i) {
      if (dtype == "f64") {
        double v = values[i];
        std::memcpy(&bytes[i * 8], &v, 8);
      } else if (dtype == "f32") {
        float v = static_cast<float>(values[i]);
        std::memcpy(&bytes[i * 4], &v, 4);
      } else {
        int32_t v = static_cast<int32_t>(values[i]);
        std::memcpy(&bytes[i * 4], &v, 4);
      }
    }
    return bytes;
  }

  static std::vector<double> fromBytes(const std::string &dtype,
                                       const std::vector<char> &bytes,
                                       int64_t n) {
    std::vector<double> values(n);
    for (int64_t i = 0; i < n; ++i) {
      if (dtype == "f64") {
        double v;
        std::memcpy(&v, &bytes[i * 8], 8);
        values[i] = v;
      } else if (dtype == "f32") {
        float v;
        std::memcpy(&v, &bytes[i * 4], 4);
        values[i] = v;
      } else {
        int32_t v;
        std::memcpy(&v, &bytes[i * 4], 4);
        values[i] = v;
      }
    }
    return values;
  }

  MLIRContext ctx;
  std::unique_ptr<ExecutionEngine> engine;
  std::string manifestText, lossType = "f32";
  kiln::rt::Manifest manifestSpec;
};

class LoweringTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    // Large matmuls become OpenMP loops: the JIT resolves their __kmpc_*
    // calls in LLVM's libomp, as the executables kilnc links do.
    std::string error;
    ASSERT_FALSE(llvm::sys::DynamicLibrary::LoadLibraryPermanently(
        "/usr/lib/llvm-19/lib/libomp.so", &error))
        << error;
  }

  /// Compiles `ir` under every configuration and calls `check` with each.
  void forEachConfig(const std::string &ir,
                     const std::function<void(Compiled &)> &check) {
    for (const kiln::LoweringOptions &opts : configs()) {
      SCOPED_TRACE(describe(opts));
      std::string error;
      std::unique_ptr<Compiled> compiled = Compiled::compile(ir, opts, error);
      ASSERT_TRUE(compiled) << "compilation failed:\n" << error << "\n" << ir;
      check(*compiled);
    }
  }

  /// Runs @predict on `inputs` and compares its output "r" with what the
  /// reference computes from the same IR.
  void checkPredict(const std::string &ir, Tensors inputs, double rtol = 1e-5,
                    double atol = 1e-6) {
    HostTensor expected = reference(ir, "predict", inputs)["r"];
    if (expected.dtype == "f64") {
      rtol = std::min(rtol, 1e-12);
      atol = std::min(atol, 1e-12);
    }
    forEachConfig(ir, [&](Compiled &c) {
      Tensors outputs = c.run("predict", inputs);
      ASSERT_TRUE(outputs.count("r")) << c.manifest();
      expectNear(outputs["r"], expected, rtol, atol, "output r");
    });
  }

  std::mt19937 rng{1234};

  void checkRnnTrainStep(const std::string &ir, std::vector<double> hyper);
};

std::string tensorType(const Shape &shape, const std::string &dtype) {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + dtype + ">";
}

/// A module whose @predict takes the named inputs and returns `%r` (of type
/// `result`) as output "r", computed by `body`.
std::string
predictIR(const std::vector<std::pair<std::string, std::string>> &inputs,
          const std::string &body, const std::string &result) {
  std::string args;
  for (const auto &[name, type] : inputs) {
    if (!args.empty())
      args += ", ";
    args += "%" + name + ": " + type + " {kiln.input = \"" + name + "\"}";
  }
  return "func.func @predict(" + args + ") -> (" + result +
         " {kiln.output = \"r\"}) {\n" + body + "\n  return %r : " + result +
         "\n}\n";
}

/// The result shape that an op's shape rule (ir/ShapeRules.h) gives, or
/// failed with `error`.
Shape ruleShape(const FailureOr<kiln::shape::Shape> &shape,
                const std::string &error) {
  EXPECT_TRUE(succeeded(shape)) << error;
  return succeeded(shape) ? Shape(shape->begin(), shape->end()) : Shape();
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

const char *const kBinary[] = {"add",     "sub",     "mul",    "div",
                               "maximum", "minimum", "greater"};

TEST_F(LoweringTest, BinaryOpsBroadcast) {
  const std::vector<std::pair<Shape, Shape>> shapes = {{{3, 4}, {3, 4}},
                                                       {{3, 4}, {4}},
                                                       {{3, 1}, {1, 4}},
                                                       {{}, {2, 3}},
                                                       {{2, 1, 3}, {4, 1}}};
  // One module per shape pair, one output per op.
  for (const auto &[sa, sb] : shapes) {
    HostTensor a = random(rng, "f32", sa), b = random(rng, "f32", sb, 0.5, 2);
    a.values[0] = b.values[0]; // a tie for greater/maximum/minimum
    std::string ta = tensorType(sa, "f32"), tb = tensorType(sb, "f32");
    SCOPED_TRACE(ta + " and " + tb);
    std::string error;
    std::string tr = tensorType(
        ruleShape(kiln::shape::broadcast(sa, sb, error), error), "f32");
    std::string results, body, returned, types;
    for (const char *op : kBinary) {
      std::string name = std::string("r_") + op;
      results += (results.empty() ? "" : ", ") + tr + " {kiln.output = \"" +
                 name + "\"}";
      body += "  %" + name + " = kiln." + op + " %a, %b : (" + ta + ", " + tb +
              ") -> " + tr + "\n";
      returned += (returned.empty() ? "%" : ", %") + name;
      types += (types.empty() ? "" : ", ") + tr;
    }
    std::string ir = "func.func @predict(%a: " + ta +
                     " {kiln.input = \"a\"}, %b: " + tb +
                     " {kiln.input = \"b\"}) -> (" + results + ") {\n" + body +
                     "  return " + returned + " : " + types + "\n}\n";
    Tensors in = {{"a", a}, {"b", b}};
    Tensors expected = reference(ir, "predict", in);
    forEachConfig(ir, [&](Compiled &c) {
      Tensors out = c.run("predict", in);
      for (const auto &[name, want] : expected)
        expectNear(out[name], want, 1e-6, 1e-7, name);
    });
  }
}

TEST_F(LoweringTest, BinaryOpsF64) {
  for (const char *op : kBinary) {
    SCOPED_TRACE(std::string(op));
    HostTensor a = random(rng, "f64", {3, 4}), b = random(rng, "f64", {4}, 0.5);
    std::string body = "  %r = kiln." + std::string(op) +
                       " %a, %b : (tensor<3x4xf64>, tensor<4xf64>) -> "
                       "tensor<3x4xf64>";
    checkPredict(predictIR({{"a", "tensor<3x4xf64>"}, {"b", "tensor<4xf64>"}},
                           body, "tensor<3x4xf64>"),
                 {{"a", a}, {"b", b}});
  }
}

/// An op and the range its inputs are drawn from.
struct UnaryCase {
  const char *op;
  double lo, hi;
};

const UnaryCase kUnary[] = {
    {"neg", -3, 3},
    {"relu", -3, 3},
    {"sigmoid", -8, 8},
    {"tanh", -4, 4},
    {"exp", -4, 4},
    {"log", 0.01, 10},
    {"sqrt", 0, 10},
    {"abs", -3, 3},
    {"gelu", -4, 4},
    {"gelu_derivative", -4, 4},
    {"leaky_relu", -3, 3},
    // Wide enough that a naive log(1 + exp(x)) would overflow in f32.
    {"softplus", -100, 100},
};

TEST_F(LoweringTest, UnaryOps) {
  for (const char *dtype : {"f32", "f64"}) {
    for (const UnaryCase &c : kUnary) {
      SCOPED_TRACE(std::string(c.op) + " " + dtype);
      HostTensor x = random(rng, dtype, {3, 17}, c.lo, c.hi);
      std::string type = tensorType({3, 17}, dtype);
      std::string body = "  %r = kiln." + std::string(c.op) + " %x : " + type;
      checkPredict(predictIR({{"x", type}}, body, type), {{"x", x}});
    }
  }
}

TEST_F(LoweringTest, UnaryOpsWithAttributes) {
  for (const char *dtype : {"f32", "f64"}) {
    for (const char *slope : {"0.2", "-0.5", "1.5"}) {
      SCOPED_TRACE(std::string("leaky_relu slope ") + slope + " " + dtype);
      HostTensor x = random(rng, dtype, {3, 17}, -3, 3);
      std::string type = tensorType({3, 17}, dtype);
      std::string body =
          "  %r = kiln.leaky_relu %x {slope = " + std::string(slope) +
          " : f64} : " + type;
      checkPredict(predictIR({{"x", type}}, body, type), {{"x", x}});
    }
  }
}

//===----------------------------------------------------------------------===//
// Scan
//===----------------------------------------------------------------------===//

/// An RNN over 6 steps (forwards and in reverse, along axis 1 and 0) whose
/// output r stacks the states plus the final state broadcast over the steps.
std::string rnnIR(const std::string &dtype, bool reverse, int64_t axis) {
  auto t = [&](const std::string &shape) {
    return "tensor<" + shape + "x" + dtype + ">";
  };
  std::string xs = axis == 1 ? t("3x6x5") : t("6x3x5");
  std::string hs = axis == 1 ? t("3x6x4") : t("6x3x4");
  std::string h = t("3x4");
  return "func.func @predict(%x: " + xs + " {kiln.input = \"x\"}, %h0: " + h +
         " {kiln.input = \"h0\"}, %wx: " + t("5x4") +
         " {kiln.input = \"wx\"}, %wh: " + t("4x4") +
         " {kiln.input = \"wh\"}) -> (" + hs +
         " {kiln.output = \"r\"}) {\n"
         "  %h, %hs = kiln.scan length = 6 axis = " +
         std::to_string(axis) + (reverse ? " reverse" : "") +
         " carries(%h0 : " + h + ") xs(%x : " + xs +
         ") consts(%wx, %wh : " + t("5x4") + ", " + t("4x4") +
         ") {\n"
         "  ^bb0(%hp: " +
         h + ", %xt: " + t("3x5") + ", %a: " + t("5x4") + ", %b: " + t("4x4") +
         "):\n"
         "    %0 = kiln.matmul %xt, %a : (" +
         t("3x5") + ", " + t("5x4") + ") -> " + h +
         "\n"
         "    %1 = kiln.matmul %hp, %b : (" +
         h + ", " + t("4x4") + ") -> " + h +
         "\n"
         "    %2 = kiln.add %0, %1 : (" +
         h + ", " + h + ") -> " + h +
         "\n"
         "    %3 = kiln.tanh %2 : " +
         h +
         "\n"
         "    kiln.yield %3, %3 : " +
         h + ", " + h +
         "\n"
         "  } -> (" +
         h + ", " + hs +
         ")\n"
         "  %hb = kiln.reshape %h : " +
         h + " -> " + (axis == 1 ? t("3x1x4") : t("1x3x4")) +
         "\n"
         "  %r = kiln.add %hs, %hb : (" +
         hs + ", " + (axis == 1 ? t("3x1x4") : t("1x3x4")) + ") -> " + hs +
         "\n"
         "  return %r : " +
         hs + "\n}\n";
}

TEST_F(LoweringTest, ScanIsALoop) {
  for (const char *dtype : {"f32", "f64"})
    for (bool reverse : {false, true})
      for (int64_t axis : {1, 0}) {
        SCOPED_TRACE(std::string(dtype) + (reverse ? " reverse" : "") +
                     " axis " + std::to_string(axis));
        Shape xs = axis == 1 ? Shape{3, 6, 5} : Shape{6, 3, 5};
        checkPredict(rnnIR(dtype, reverse, axis),
                     {{"x", random(rng, dtype, xs)},
                      {"h0", random(rng, dtype, {3, 4})},
                      {"wx", random(rng, dtype, {5, 4})},
                      {"wh", random(rng, dtype, {4, 4})}});
      }
}

/// An RNN regressor over 8 steps: @forward only; kiln's passes build its
/// training step (backpropagation through time: three scans).
const char *kRnnModel = R"(
module attributes {kiln.model = "rnn", kiln.train = {optimizer = {name = "sgd", lr = 1.0e-01 : f64}}} {
  kiln.param @wx : tensor<3x4xf32> = glorot_uniform(3.0, 4.0)
  kiln.param @wh : tensor<4x4xf32> = glorot_uniform(4.0, 4.0)
  func.func @forward(%x: tensor<2x8x3xf32> {kiln.input = "x"}, %y: tensor<2x4xf32> {kiln.input = "y"}) -> (tensor<f32> {kiln.loss}) {
    %wx = kiln.load_param @wx : tensor<3x4xf32>
    %wh = kiln.load_param @wh : tensor<4x4xf32>
    %h0 = kiln.constant dense<0.0> : tensor<2x4xf32>
    %h, %hs = kiln.scan length = 8 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x8x3xf32>) consts(%wx, %wh : tensor<3x4xf32>, tensor<4x4xf32>) {
    ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x3xf32>, %a: tensor<3x4xf32>, %b: tensor<4x4xf32>):
      %0 = kiln.matmul %xt, %a : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
      %1 = kiln.matmul %hp, %b : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %2 = kiln.add %0, %1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      %3 = kiln.tanh %2 : tensor<2x4xf32>
      kiln.yield %3, %3 : tensor<2x4xf32>, tensor<2x4xf32>
    } -> (tensor<2x4xf32>, tensor<2x8x4xf32>)
    %l = kiln.mse %h, %y : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
)";

/// `ir` after kiln's passes (autodiff, entry points), as text.
std::string afterKilnPasses(const char *ir) {
  DialectRegistry registry;
  registry.insert<kiln::KilnDialect>();
  kiln::registerCodegenDialects(registry);
  MLIRContext ctx(registry);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(ir, &ctx);
  EXPECT_TRUE(module);
  if (!module)
    return {};
  PassManager pm(&ctx, ModuleOp::getOperationName());
  kiln::buildKilnPipeline(pm);
  EXPECT_TRUE(succeeded(pm.run(*module)));
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  return text;
}

/// One training step of an RNN model (kRnnModel's parameters and inputs)
/// compiled in every configuration agrees with the reference, which runs the
/// same step (its scans) in f64: the loss and the updated weights.
void LoweringTest::checkRnnTrainStep(const std::string &ir,
                                     std::vector<double> hyper) {
  ASSERT_FALSE(ir.empty());
  Tensors t;
  t["wx"] = random(rng, "f32", {3, 4});
  t["wh"] = random(rng, "f32", {4, 4});
  t["x"] = random(rng, "f32", {2, 8, 3});
  t["y"] = random(rng, "f32", {2, 4});
  t["hyper"] = HostTensor("f32", {4});
  t["hyper"].values = std::move(hyper);
  Tensors want = reference(ir, "train_step", t);
  ASSERT_TRUE(want.count("loss") && want.count("wx") && want.count("wh"));
  forEachConfig(ir, [&](Compiled &c) {
    Tensors state = t;
    Tensors out = c.run("train_step", state);
    expectNear(out["loss"], want["loss"], 1e-5, 1e-6, "loss");
    expectNear(state["wx"], want["wx"], 1e-5, 1e-6, "updated wx");
    expectNear(state["wh"], want["wh"], 1e-5, 1e-6, "updated wh");
  });
}

TEST_F(LoweringTest, ScanTrainStep) {
  checkRnnTrainStep(afterKilnPasses(kRnnModel), {0.1, 1, 0, 0});
}

/// The RNN regressor with dropout on each step's pre-activation: @forward's
/// dropout reads the step number (a slice of the constant steps, as kilnc
/// builds it); kiln-autodiff gives it the hyper vector as a const of the
/// scan, kiln-entry-points removes it from eval_step.
const char *kRnnDropoutModel = R"(
module attributes {kiln.model = "rnn", kiln.train = {optimizer = {name = "sgd", lr = 1.0e-01 : f64}}} {
  kiln.param @wx : tensor<3x4xf32> = glorot_uniform(3.0, 4.0)
  kiln.param @wh : tensor<4x4xf32> = glorot_uniform(4.0, 4.0)
  func.func @forward(%x: tensor<2x8x3xf32> {kiln.input = "x"}, %y: tensor<2x4xf32> {kiln.input = "y"}) -> (tensor<f32> {kiln.loss}, tensor<2x8x4xf32> {kiln.output = "hs"}) {
    %wx = kiln.load_param @wx : tensor<3x4xf32>
    %wh = kiln.load_param @wh : tensor<4x4xf32>
    %h0 = kiln.constant dense<0.0> : tensor<2x4xf32>
    %steps = kiln.constant dense<[[0, 1, 2, 3, 4, 5, 6, 7]]> : tensor<1x8xi32>
    %h, %hs = kiln.scan length = 8 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x, %steps : tensor<2x8x3xf32>, tensor<1x8xi32>) consts(%wx, %wh : tensor<3x4xf32>, tensor<4x4xf32>) {
    ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x3xf32>, %t: tensor<1xi32>, %a: tensor<3x4xf32>, %b: tensor<4x4xf32>):
      %0 = kiln.matmul %xt, %a : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
      %1 = kiln.matmul %hp, %b : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %2 = kiln.add %0, %1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      %d = kiln.dropout %2 step %t : tensor<1xi32> {rate = 0.4 : f64, salt = 1 : i64} : tensor<2x4xf32>
      %3 = kiln.tanh %d : tensor<2x4xf32>
      kiln.yield %3, %3 : tensor<2x4xf32>, tensor<2x4xf32>
    } -> (tensor<2x4xf32>, tensor<2x8x4xf32>)
    %l = kiln.mse %h, %y : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<f32>
    return %l, %hs : tensor<f32>, tensor<2x8x4xf32>
  }
}
)";

TEST_F(LoweringTest, DropoutInAScanDrawsAMaskPerStep) {
  std::string ir = afterKilnPasses(kRnnDropoutModel);
  ASSERT_FALSE(ir.empty());
  // Training: the scan body's dropout has the hyper vector and the step;
  // evaluation has none.
  size_t train = ir.find("func.func @train_step"),
         eval = ir.find("func.func @eval_step");
  ASSERT_NE(train, std::string::npos);
  ASSERT_NE(eval, std::string::npos);
  EXPECT_NE(ir.find("kiln.dropout", train), std::string::npos) << ir;
  size_t evalEnd = ir.find("func.func", eval + 1);
  EXPECT_EQ(ir.substr(eval, evalEnd - eval).find("kiln.dropout"),
            std::string::npos)
      << ir;

  checkRnnTrainStep(ir, {0.1, 3, 5, 0});

  // Each step's mask is its own: a scan that drops out the same x at every
  // step stacks different zero patterns (and the compiled masks are the
  // reference's).
  const char *perStep = R"(
func.func @predict(%x: tensor<3x16xf32> {kiln.input = "x"}, %h: tensor<4xf32> {kiln.input = "h"}) -> (tensor<3x4x16xf32> {kiln.output = "ys"}) {
  %steps = kiln.constant dense<[[0, 1, 2, 3]]> : tensor<1x4xi32>
  %c, %ys = kiln.scan length = 4 axis = 1 carries(%x : tensor<3x16xf32>) xs(%steps : tensor<1x4xi32>) consts(%h : tensor<4xf32>) {
  ^bb0(%xp: tensor<3x16xf32>, %t: tensor<1xi32>, %k: tensor<4xf32>):
    %d = kiln.dropout %xp, %k : tensor<4xf32> step %t : tensor<1xi32> {rate = 0.5 : f64, salt = 2 : i64} : tensor<3x16xf32>
    kiln.yield %xp, %d : tensor<3x16xf32>, tensor<3x16xf32>
  } -> (tensor<3x16xf32>, tensor<3x4x16xf32>)
  return %ys : tensor<3x4x16xf32>
}
)";
  HostTensor x("f32", {3, 16});
  std::fill(x.values.begin(), x.values.end(), 1.0);
  HostTensor h("f32", {4});
  h.values = {0.1, 9, 4, 0};
  Tensors in = {{"x", x}, {"h", h}};
  Tensors masks = reference(perStep, "predict", in);
  const std::vector<double> &ys = masks["ys"].values;
  // ys[b][t][j]: compare step 0's zero pattern with steps 1..3'.
  auto pattern = [&](int t) {
    std::vector<bool> zero;
    for (int b = 0; b < 3; ++b)
      for (int j = 0; j < 16; ++j)
        zero.push_back(ys[(b * 4 + t) * 16 + j] == 0);
    return zero;
  };
  for (int t = 1; t < 4; ++t)
    EXPECT_NE(pattern(t), pattern(0)) << "step " << t;
  forEachConfig(perStep, [&](Compiled &c) {
    Tensors out = c.run("predict", in);
    expectNear(out["ys"], masks["ys"], 0, 0, "per-step masks");
  });
}

//===----------------------------------------------------------------------===//
// Matmul
//===----------------------------------------------------------------------===//

TEST_F(LoweringTest, Matmul) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{5, 7}, {7, 3}},
      {{1, 1}, {1, 1}},
      {{13, 70}, {70, 37}},
      {{64, 33}, {33, 48}},
      {{9, 300}, {300, 20}},
      {{2, 5, 7}, {7, 3}},
      {{2, 1, 5, 7}, {3, 7, 4}},
      {{4, 6}, {2, 6, 5}},
      // Batched products (linalg.batch_matmul) and rows sharing a matrix.
      {{2, 3, 5, 7}, {2, 3, 7, 4}},
      {{6, 33, 40}, {6, 40, 20}},
      {{8, 64, 64}, {8, 64, 64}},
      {{3, 130, 17}, {17, 9}}};
  for (const char *dtype : {"f32", "f64"}) {
    for (const auto &[sa, sb] : shapes) {
      SCOPED_TRACE(tensorType(sa, dtype) + " x " + tensorType(sb, dtype));
      HostTensor a = random(rng, dtype, sa, -1, 1),
                 b = random(rng, dtype, sb, -1, 1);
      std::string error;
      std::string ta = tensorType(sa, dtype), tb = tensorType(sb, dtype),
                  tr = tensorType(
                      ruleShape(kiln::shape::matmul(sa, sb, error), error),
                      dtype);
      std::string body =
          "  %r = kiln.matmul %a, %b : (" + ta + ", " + tb + ") -> " + tr;
      checkPredict(predictIR({{"a", ta}, {"b", tb}}, body, tr),
                   {{"a", a}, {"b", b}}, 1e-5, 1e-4);
    }
  }
}

// cast: ids to numbers, and between f32 and f64 (both ways).
TEST_F(LoweringTest, Cast) {
  HostTensor ids("i32", {3, 4});
  for (size_t i = 0; i < ids.values.size(); ++i)
    ids.values[i] = static_cast<double>(i * 37 % 11) - 5;
  HostTensor x = random(rng, "f64", {3, 4}, -3, 3);
  std::string ir =
      R"(func.func @predict(%ids: tensor<3x4xi32> {kiln.input = "ids"}, %x: tensor<3x4xf64> {kiln.input = "x"}) -> (tensor<3x4xf32> {kiln.output = "a"}, tensor<3x4xf32> {kiln.output = "b"}, tensor<3x4xf64> {kiln.output = "c"}) {
  %a = kiln.cast %ids : tensor<3x4xi32> -> tensor<3x4xf32>
  %b = kiln.cast %x : tensor<3x4xf64> -> tensor<3x4xf32>
  %c = kiln.cast %b : tensor<3x4xf32> -> tensor<3x4xf64>
  return %a, %b, %c : tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf64>
})";
  Tensors inputs = {{"ids", ids}, {"x", x}};
  Tensors expected = reference(ir, "predict", inputs);
  forEachConfig(ir, [&](Compiled &compiled) {
    Tensors outputs = compiled.run("predict", inputs);
    for (const char *name : {"a", "b", "c"})
      expectNear(outputs[name], expected[name], 0, 0, name);
  });
}

// layer_norm and its backward op against the reference; one row is offset
// by 1000 (the two-pass variance keeps it accurate).
TEST_F(LoweringTest, LayerNorm) {
  for (const char *dtype : {"f32", "f64"}) {
    for (const Shape &shape : std::vector<Shape>{{7}, {3, 10}, {2, 5, 33}}) {
      std::string t = tensorType(shape, dtype);
      SCOPED_TRACE(t);
      std::string ir =
          "func.func @predict(%x: " + t + " {kiln.input = \"x\"}, %g: " + t +
          " {kiln.input = \"g\"}) -> (" + t + " {kiln.output = \"y\"}, " + t +
          " {kiln.output = \"dx\"}) {\n  %y = kiln.layer_norm %x eps = "
          "1.0e-5 : " +
          t + "\n  %dx = kiln.layer_norm_backward %x, %g eps = 1.0e-5 : " + t +
          "\n  return %y, %dx : " + t + ", " + t + "\n}\n";
      HostTensor x = random(rng, dtype, shape, -2, 2);
      for (int64_t i = 0; i < shape.back(); ++i)
        x.values[i] += 1000;
      Tensors inputs = {{"x", x}, {"g", random(rng, dtype, shape, -1, 1)}};
      Tensors expected = reference(ir, "predict", inputs);
      bool f64 = std::string(dtype) == "f64";
      forEachConfig(ir, [&](Compiled &compiled) {
        Tensors outputs = compiled.run("predict", inputs);
        for (const char *name : {"y", "dx"}) {
          ASSERT_TRUE(outputs.count(name)) << compiled.manifest();
          expectNear(outputs[name], expected[name], f64 ? 1e-11 : 2e-4,
                     f64 ? 1e-11 : 2e-4, name);
        }
      });
    }
  }
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

// The tiled kernels (forward: out and log-sum-exp; backward: dq, dk, dv)
// against the reference, which forms the whole score matrix: sequence
// lengths below, at and across the 64-wide tiles (with partial last tiles),
// causal with as many and with fewer queries than keys, one and several
// heads, no batch dimension at all.
TEST_F(LoweringTest, Attention) {
  struct Case {
    Shape q, k, v;
    bool causal;
    /// The key mask's shape (none when empty): 0 hides a key.
    Shape mask = {};
    /// Dropout on the probabilities (with a hyper vector) when > 0.
    double dropout = 0;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4}, {2, 5, 4}, {2, 5, 3}, false},
      {{2, 5, 4}, {2, 5, 4}, {2, 5, 3}, true},
      {{1, 2, 100, 16}, {1, 2, 130, 16}, {1, 2, 130, 8}, false},
      {{2, 1, 130, 8}, {2, 1, 130, 8}, {2, 1, 130, 8}, true},
      {{3, 70, 8}, {3, 150, 8}, {3, 150, 5}, true},
      {{64, 16}, {128, 16}, {128, 16}, true},
      {{40, 2, 17, 4}, {40, 2, 17, 4}, {40, 2, 17, 4}, false},
      // Key masks broadcast over heads (and over batch), one batch element
      // hiding every key (its queries give 0), causal with padding.
      {{3, 2, 70, 8}, {3, 2, 90, 8}, {3, 2, 90, 8}, false, {3, 1, 90}},
      {{2, 2, 100, 8}, {2, 2, 100, 8}, {2, 2, 100, 4}, true, {2, 1, 100}},
      {{2, 5, 8}, {2, 5, 8}, {2, 5, 8}, false, {5}},
      // Dropout on the probabilities, across tiles, causal and masked.
      {{2, 2, 100, 8}, {2, 2, 90, 8}, {2, 2, 90, 8}, false, {}, 0.3},
      {{2, 2, 70, 8}, {2, 2, 70, 8}, {2, 2, 70, 4}, true, {2, 1, 70}, 0.5}};
  for (const char *dtype : {"f32", "f64"}) {
    for (const Case &c : cases) {
      // f64 (tight tolerances, slower to compile) on the tile edges only.
      if (std::string(dtype) == "f64" &&
          (c.q.size() != 4 || !c.mask.empty() || c.dropout > 0))
        continue;
      std::string tq = tensorType(c.q, dtype), tk = tensorType(c.k, dtype),
                  tv = tensorType(c.v, dtype);
      std::string error;
      Shape outShape = ruleShape(
          kiln::shape::attention(c.q, c.k, c.v, c.causal, error), error);
      Shape lseShape(c.q.begin(), c.q.end() - 1);
      std::string to = tensorType(outShape, dtype),
                  tl = tensorType(lseShape, dtype);
      SCOPED_TRACE(
          tq + " " + tk + " " + tv + (c.causal ? " causal" : "") +
          (c.mask.empty() ? "" : " mask " + tensorType(c.mask, dtype)) +
          (c.dropout > 0 ? " dropout" : ""));
      std::string tm = c.mask.empty() ? "" : tensorType(c.mask, dtype);
      std::string maskArg =
          c.mask.empty() ? "" : ", %m: " + tm + " {kiln.input = \"m\"}";
      std::string dropout = c.dropout > 0 ? "hyper %h " : "";
      std::string attrs =
          std::string(c.mask.empty() ? "" : "mask %m ") + dropout +
          (c.causal ? "causal " : "") + "scale = 0.35" +
          (c.dropout > 0 ? " {dropout = " + std::to_string(c.dropout) +
                               " : f64, salt = 9 : i64}"
                         : "");
      std::string maskType = (c.mask.empty() ? "" : ", " + tm) +
                             (c.dropout > 0 ? ", tensor<4xf32>" : "");
      if (c.dropout > 0)
        maskArg += ", %h: tensor<4xf32> {kiln.input = \"h\"}";
      std::string ir =
          "func.func @predict(%q: " + tq + " {kiln.input = \"q\"}, %k: " + tk +
          " {kiln.input = \"k\"}, %v: " + tv +
          " {kiln.input = \"v\"}, %g: " + to +
          " {kiln.input = \"g\"}, %gl: " + tl + " {kiln.input = \"gl\"}" +
          maskArg + ") -> (" + to + " {kiln.output = \"o\"}, " + tl +
          " {kiln.output = \"lse\"}, " + tq + " {kiln.output = \"dq\"}, " + tk +
          " {kiln.output = \"dk\"}, " + tv + " {kiln.output = \"dv\"}) {\n" +
          "  %o, %lse = kiln.attention %q, %k, %v " + attrs + " : (" + tq +
          ", " + tk + ", " + tv + maskType + ") -> (" + to + ", " + tl + ")\n" +
          "  %dq, %dk, %dv = kiln.attention_backward %q, %k, %v, %o, %lse, "
          "%g, %gl " +
          attrs + " : (" + tq + ", " + tk + ", " + tv + ", " + to + ", " + tl +
          ", " + to + ", " + tl + maskType + ") -> (" + tq + ", " + tk + ", " +
          tv + ")\n" + "  return %o, %lse, %dq, %dk, %dv : " + to + ", " + tl +
          ", " + tq + ", " + tk + ", " + tv + "\n}\n";
      Tensors inputs = {{"q", random(rng, dtype, c.q, -1.5, 1.5)},
                        {"k", random(rng, dtype, c.k, -1.5, 1.5)},
                        {"v", random(rng, dtype, c.v, -1, 1)},
                        {"g", random(rng, dtype, outShape, -1, 1)},
                        {"gl", random(rng, dtype, lseShape, -1, 1)}};
      if (c.dropout > 0) {
        HostTensor h("f32", {4});
        h.values = {0.01, 12, 345, 0}; // step 12, seed 345
        inputs["h"] = h;
      }
      if (!c.mask.empty()) {
        // About a third of the keys hidden; all of them for batch element 0
        // when the mask has a batch dimension.
        HostTensor m = random(rng, dtype, c.mask, 0, 1);
        for (double &x : m.values)
          x = x < 0.35 ? 0.0 : 1.0;
        if (c.mask.size() > 1)
          for (int64_t j = 0; j < c.mask.back(); ++j)
            m.values[j] = 0.0;
        inputs["m"] = m;
      }
      Tensors expected = reference(ir, "predict", inputs);
      bool f64 = std::string(dtype) == "f64";
      forEachConfig(ir, [&](Compiled &compiled) {
        Tensors outputs = compiled.run("predict", inputs);
        for (const char *name : {"o", "lse", "dq", "dk", "dv"}) {
          ASSERT_TRUE(outputs.count(name)) << compiled.manifest();
          expectNear(outputs[name], expected[name], f64 ? 1e-11 : 1e-4,
                     f64 ? 1e-11 : 2e-5, name);
        }
      });
    }
  }
}

//===----------------------------------------------------------------------===//
// Normalizations and reductions
//===----------------------------------------------------------------------===//

TEST_F(LoweringTest, Softmax) {
  for (const char *dtype : {"f32", "f64"}) {
    for (bool log : {false, true}) {
      for (int64_t axis : {0, 1, 2}) {
        SCOPED_TRACE(std::string(log ? "log_softmax" : "softmax") + " axis " +
                     std::to_string(axis) + " " + dtype);
        Shape shape = {3, 5, 4};
        HostTensor x = random(rng, dtype, shape, -5, 5);
        x.values[7] = roundTo(dtype, 80.0); // exp overflows without the max
        std::string type = tensorType(shape, dtype);
        std::string body = std::string("  %r = kiln.") +
                           (log ? "log_softmax" : "softmax") +
                           " %x axis = " + std::to_string(axis) + " : " + type;
        checkPredict(predictIR({{"x", type}}, body, type), {{"x", x}});
      }
    }
  }
}

TEST_F(LoweringTest, Reductions) {
  const char *const ops[] = {"reduce_sum", "reduce_mean", "reduce_max"};
  const std::vector<std::vector<int64_t>> axesList = {
      {0}, {1}, {2}, {0, 2}, {0, 1, 2}};
  Shape shape = {3, 4, 5};
  for (const char *dtype : {"f32", "f64"}) {
    for (const char *op : ops) {
      for (const auto &axes : axesList) {
        // f64 takes the same code path; a few cases suffice.
        if (std::string(dtype) == "f64" &&
            (std::string(op) == "reduce_max" || axes.size() != 2))
          continue;
        for (bool keep : {false, true}) {
          HostTensor x = random(rng, dtype, shape);
          std::string axesText;
          for (int64_t a : axes)
            axesText += (axesText.empty() ? "" : ", ") + std::to_string(a);
          SCOPED_TRACE(std::string(op) + " [" + axesText +
                       "] keepdims=" + (keep ? "1" : "0") + " " + dtype);
          std::string error;
          std::string tin = tensorType(shape, dtype),
                      tout = tensorType(ruleShape(kiln::shape::reduce(
                                                      shape, axes, keep, error),
                                                  error),
                                        dtype);
          std::string body = "  %r = kiln." + std::string(op) + " %x axes = [" +
                             axesText + "] " +
                             (keep ? "{keepdims = true} " : "") + ": " + tin +
                             " -> " + tout;
          checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, 1e-5,
                       1e-5);
        }
      }
    }
  }
}

TEST_F(LoweringTest, ArgmaxFirstOnTies) {
  Shape shape = {4, 6};
  for (int64_t axis : {0, 1}) {
    HostTensor x = random(rng, "f32", shape);
    // Ties: row 1 all equal, row 2 has its maximum twice.
    for (int64_t j = 0; j < 6; ++j)
      x.values[6 + j] = 0.5;
    x.values[12 + 1] = x.values[12 + 4] = 3.0;
    std::string error;
    std::string tin = tensorType(shape, "f32"),
                tout = tensorType(
                    ruleShape(kiln::shape::dropAxis(shape, axis, error), error),
                    "i32");
    std::string body = "  %r = kiln.argmax %x axis = " + std::to_string(axis) +
                       " : " + tin + " -> " + tout;
    checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, 0, 0);
  }
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

TEST_F(LoweringTest, Reshape) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 6}, {3, 4}}, {{24}, {2, 3, 4}}, {{2, 3, 4}, {24}},
      {{}, {1, 1}},     {{1}, {}},         {{4, 1, 3}, {2, 6}}};
  for (const char *dtype : {"f32", "i32"}) {
    for (const auto &[from, to] : cases) {
      HostTensor x = random(rng, "f32", from, -100, 100);
      x.dtype = dtype;
      for (double &v : x.values)
        v = roundTo(dtype, v);
      std::string tin = tensorType(from, dtype), tout = tensorType(to, dtype);
      SCOPED_TRACE(tin + " -> " + tout);
      std::string body = "  %r = kiln.reshape %x : " + tin + " -> " + tout;
      checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, 0, 0);
    }
  }
}

TEST_F(LoweringTest, Transpose) {
  // Small shapes; then shapes for kiln-vectorize-transpose's register tiles
  // (16 x 16 with AVX-512, 8 x 8 with AVX2) with partial tiles at both
  // edges, an exact tile, NCHW -> NHWC, and two above its parallel size
  // (batched, and a plain 2-D transpose split by column tiles).
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 5}, {1, 0}},           {{2, 3, 4}, {2, 0, 1}},
      {{2, 3, 4}, {0, 2, 1}},     {{37, 21}, {1, 0}},
      {{16, 16}, {1, 0}},         {{2, 18, 5, 7}, {0, 2, 3, 1}},
      {{3, 33, 40}, {0, 2, 1}},   {{2, 3, 4, 5}, {0, 1, 3, 2}},
      {{4, 64, 1100}, {0, 2, 1}}, {{530, 520}, {1, 0}}};
  for (const auto &[shape, perm] : cases) {
    HostTensor x = random(rng, "f32", shape);
    std::string permText;
    for (int64_t p : perm)
      permText += (permText.empty() ? "" : ", ") + std::to_string(p);
    std::string error;
    std::string tin = tensorType(shape, "f32"),
                tout = tensorType(
                    ruleShape(kiln::shape::transpose(shape, perm, error),
                              error),
                    "f32");
    std::string body = "  %r = kiln.transpose %x perm = [" + permText +
                       "] : " + tin + " -> " + tout;
    checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, 0, 0);
  }
}

TEST_F(LoweringTest, SplitAndConcat) {
  // Pieces of every axis, one through an elementwise op (a strided view),
  // joined again in another order.
  const Shape shape = {3, 6, 4};
  for (int64_t axis = 0; axis < 3; ++axis) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    Shape a = shape, b = shape, c = shape;
    a[axis] = 1;
    b[axis] = shape[axis] - 2;
    c[axis] = 1;
    HostTensor x = random(rng, "f32", shape);
    std::string tx = tensorType(shape, "f32"), ta = tensorType(a, "f32"),
                tb = tensorType(b, "f32"), tc = tensorType(c, "f32");
    std::string ax = std::to_string(axis);
    std::string body = "  %a, %b, %c = kiln.split %x axis = " + ax +
                       " sizes = [1, " + std::to_string(b[axis]) +
                       ", 1] : " + tx + " -> (" + ta + ", " + tb + ", " + tc +
                       ")\n  %t = kiln.tanh %b : " + tb +
                       "\n  %r = kiln.concat %c, %t, %a axis = " + ax + " : (" +
                       tc + ", " + tb + ", " + ta + ") -> " + tx;
    checkPredict(predictIR({{"x", tx}}, body, tx), {{"x", x}});
  }
}

TEST_F(LoweringTest, BroadcastTo) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 1}, {2, 3, 4}}, {{}, {2, 2}}, {{4}, {3, 4}}, {{1, 4}, {1, 4}}};
  for (const auto &[from, to] : cases) {
    HostTensor x = random(rng, "f32", from);
    std::string tin = tensorType(from, "f32"), tout = tensorType(to, "f32");
    std::string body = "  %r = kiln.broadcast_to %x : " + tin + " -> " + tout;
    checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, 0, 0);
  }
}

TEST_F(LoweringTest, OneHot) {
  HostTensor labels("i32", {6});
  labels.values = {0, 3, 4, -1, 5, 2}; // -1 and 5 are out of range
  std::string body =
      "  %r = kiln.one_hot %l : tensor<6xi32> -> tensor<6x5xf32>";
  checkPredict(predictIR({{"l", "tensor<6xi32>"}}, body, "tensor<6x5xf32>"),
               {{"l", labels}}, 0, 0);
}

TEST_F(LoweringTest, Constant) {
  HostTensor x = random(rng, "f32", {2, 3});
  std::string body = R"(
  %c = kiln.constant dense<[[1.5, -2.0, 0.25], [4.0, 8.0, -0.5]]> : tensor<2x3xf32>
  %s = kiln.constant dense<3.0> : tensor<f32>
  %m = kiln.mul %x, %c : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %r = kiln.add %m, %s : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>)";
  checkPredict(predictIR({{"x", "tensor<2x3xf32>"}}, body, "tensor<2x3xf32>"),
               {{"x", x}});
}

//===----------------------------------------------------------------------===//
// Convolution, pooling, dropout
//===----------------------------------------------------------------------===//

/// Geometry of a 2-D window op over NCHW.
struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;

  std::vector<int64_t> strides() const { return {sh, sw}; }
  std::vector<int64_t> padding() const { return {ph, pw}; }
  std::string attrs(bool dilation) const {
    std::string s = "strides = [" + std::to_string(sh) + ", " +
                    std::to_string(sw) + "] padding = [" + std::to_string(ph) +
                    ", " + std::to_string(pw) + "]";
    if (dilation)
      s += " dilation = [" + std::to_string(dh) + ", " + std::to_string(dw) +
           "]";
    return s;
  }
};

TEST_F(LoweringTest, Conv2dAndGradients) {
  struct Case {
    Shape x;
    int64_t o;
    Geometry g;
  };
  const Case cases[] = {
      {{2, 3, 7, 6}, 4, {3, 2, 2, 2, 1, 0, 1, 2}},
      {{1, 1, 5, 5}, 2, {3, 3, 1, 1, 1, 1}},
      {{3, 2, 12, 12}, 6, {5, 5, 1, 1, 2, 2}},
      {{2, 4, 9, 8}, 3, {3, 3, 2, 3, 0, 1}},
  };
  for (const char *dtype : {"f32", "f64"}) {
    for (const Case &c : cases) {
      const Geometry &g = c.g;
      Shape ws = {c.o, c.x[1], g.kh, g.kw};
      std::string error;
      Shape ys =
          ruleShape(kiln::shape::conv2d(c.x, ws, g.strides(), g.padding(),
                                        {g.dh, g.dw}, error),
                    error);
      std::string tx = tensorType(c.x, dtype), tw = tensorType(ws, dtype),
                  ty = tensorType(ys, dtype);
      SCOPED_TRACE(tx + " * " + tw + " " + g.attrs(true));
      HostTensor x = random(rng, dtype, c.x), w = random(rng, dtype, ws),
                 dy = random(rng, dtype, ys);
      std::string attrs = g.attrs(true);
      std::string ir =
          "func.func @predict(%x: " + tx + " {kiln.input = \"x\"}, %w: " + tw +
          " {kiln.input = \"w\"}, %g: " + ty + " {kiln.input = \"g\"}) -> (" +
          ty + " {kiln.output = \"y\"}, " + tx + " {kiln.output = \"dx\"}, " +
          tw +
          " {kiln.output = \"dw\"}) {\n"
          "  %y = kiln.conv2d %x, %w " +
          attrs + " : (" + tx + ", " + tw + ") -> " + ty +
          "\n  %dx = kiln.conv2d_backward_input %g, %w " + attrs + " : (" + ty +
          ", " + tw + ") -> " + tx +
          "\n  %dw = kiln.conv2d_backward_filter %x, %g " + attrs + " : (" +
          tx + ", " + ty + ") -> " + tw + "\n  return %y, %dx, %dw : " + ty +
          ", " + tx + ", " + tw + "\n}\n";
      double tol = std::string(dtype) == "f64" ? 1e-12 : 1e-5;
      Tensors in = {{"x", x}, {"w", w}, {"g", dy}};
      Tensors want = reference(ir, "predict", in);
      forEachConfig(ir, [&](Compiled &compiled) {
        Tensors out = compiled.run("predict", in);
        expectNear(out["y"], want["y"], tol, tol, "conv2d");
        expectNear(out["dx"], want["dx"], tol, tol, "conv2d_backward_input");
        expectNear(out["dw"], want["dw"], tol, 10 * tol,
                   "conv2d_backward_filter");
      });
    }
  }
}

TEST_F(LoweringTest, PoolingAndGradients) {
  const Geometry geometries[] = {
      {2, 2, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1}, {3, 2, 1, 2, 1, 0}};
  // 9 x 8: 2x2 windows leave a row over (the general window gradient);
  // 8 x 6: they tile the input (the elementwise floordiv gradient).
  for (const Shape &xs : {Shape{2, 3, 9, 8}, Shape{2, 3, 8, 6}})
    for (const Geometry &g : geometries) {
      for (bool isMax : {true, false}) {
        std::string error;
        Shape ys = ruleShape(kiln::shape::pool2d(xs, {g.kh, g.kw}, g.strides(),
                                                 g.padding(), error),
                             error);
        std::string tx = tensorType(xs, "f32"), ty = tensorType(ys, "f32");
        std::string op = isMax ? "max_pool2d" : "avg_pool2d";
        std::string attrs = "kernel = [" + std::to_string(g.kh) + ", " +
                            std::to_string(g.kw) + "] " + g.attrs(false);
        SCOPED_TRACE(op + " " + attrs);
        HostTensor x = random(rng, "f32", xs);
        // Ties inside windows: max routes the gradient to every maximum.
        for (int64_t i = 0; i < x.size(); i += 5)
          x.values[i] = 1.5;
        HostTensor dy = random(rng, "f32", ys);
        std::string forward = predictIR({{"x", tx}},
                                        "  %r = kiln." + op + " %x " + attrs +
                                            " : " + tx + " -> " + ty,
                                        ty);
        checkPredict(forward, {{"x", x}});
        // The gradient of max pooling reads the pooled output.
        HostTensor y = reference(forward, "predict", {{"x", x}})["r"];
        if (isMax)
          checkPredict(predictIR({{"x", tx}, {"y", ty}, {"g", ty}},
                                 "  %r = kiln.max_pool2d_backward %x, %y, %g " +
                                     attrs + " : (" + tx + ", " + ty + ", " +
                                     ty + ") -> " + tx,
                                 tx),
                       {{"x", x}, {"y", y}, {"g", dy}});
        else
          checkPredict(predictIR({{"g", ty}},
                                 "  %r = kiln.avg_pool2d_backward %g " + attrs +
                                     " : " + ty + " -> " + tx,
                                 tx),
                       {{"g", dy}});
      }
    }
}

TEST_F(LoweringTest, DropoutMatchesTheReferenceMask) {
  for (const char *dtype : {"f32", "f64"}) {
    for (double rate : {0.0, 0.3, 0.75}) {
      SCOPED_TRACE(std::string(dtype) + " rate " + std::to_string(rate));
      Shape shape = {4, 33};
      std::string t = tensorType(shape, dtype);
      std::string ir =
          "func.func @predict(%x: " + t +
          " {kiln.input = \"x\"}, %h: tensor<4xf32> {kiln.input = \"h\"}) -> "
          "(" +
          t + " {kiln.output = \"r\"}, " + t +
          " {kiln.output = \"same\"}) {\n"
          "  %r = kiln.dropout %x, %h : tensor<4xf32> {rate = " +
          std::to_string(rate) + " : f64, salt = 3 : i64} : " + t +
          "\n  %s = kiln.dropout %x {rate = 0.5 : f64, salt = 3 : i64} : " + t +
          "\n  return %r, %s : " + t + ", " + t + "\n}\n";
      HostTensor x = random(rng, dtype, shape);
      HostTensor h("f32", {4});
      h.values = {0.01, 5, 77, 0};
      Tensors in = {{"x", x}, {"h", h}};
      Tensors want = reference(ir, "predict", in);
      if (rate == 0.3)
        EXPECT_GT(
            std::count(want["r"].values.begin(), want["r"].values.end(), 0.0),
            10);
      forEachConfig(ir, [&](Compiled &c) {
        Tensors out = c.run("predict", in);
        expectNear(out["r"], want["r"], 1e-6, 1e-7, "dropout");
        expectNear(out["same"], x, 0, 0, "dropout without hyper");
      });
    }
  }
}

// The generated code draws the numbers of ir/Random.h: uniforms exactly
// (24-bit multiples of 2^-24), normals through f32 Box-Muller within its
// rounding and the polynomial log and cos.
TEST_F(LoweringTest, RandomOpsMatchTheReference) {
  for (const char *dtype : {"f32", "f64"}) {
    SCOPED_TRACE(dtype);
    Shape shape = {3, 5, 7};
    std::string t = tensorType(shape, dtype);
    std::string ir =
        "func.func @predict(%h: tensor<4xf32> {kiln.input = \"h\"}) -> (" + t +
        " {kiln.output = \"u\"}, " + t + " {kiln.output = \"n\"}, " + t +
        " {kiln.output = \"n2\"}) {\n"
        "  %u = kiln.random_uniform %h : tensor<4xf32> {salt = 3 : i64} : " +
        t +
        "\n  %n = kiln.random_normal %h : tensor<4xf32> {salt = 4 : i64} : " +
        t +
        "\n  %n2 = kiln.random_normal %h : tensor<4xf32> {salt = 5 : i64} : " +
        t + "\n  return %u, %n, %n2 : " + t + ", " + t + ", " + t + "\n}\n";
    HostTensor h("f32", {4});
    h.values = {0.01, 12, 77, 0};
    Tensors in = {{"h", h}};
    Tensors want = reference(ir, "predict", in);
    EXPECT_NE(want["n"].values, want["n2"].values) << "salts draw apart";
    forEachConfig(ir, [&](Compiled &c) {
      Tensors out = c.run("predict", in);
      expectNear(out["u"], want["u"], 0, 0, "random_uniform");
      expectNear(out["n"], want["n"], 1e-5, 1e-5, "random_normal");
      expectNear(out["n2"], want["n2"], 1e-5, 1e-5, "random_normal");
    });
  }
}

// kiln.warmup: min(1, step / steps) from the hyper vector; 1 without one.
TEST_F(LoweringTest, WarmupRampsWithTheStep) {
  std::string ir =
      "func.func @predict(%h: tensor<4xf32> {kiln.input = \"h\"}) -> "
      "(tensor<f32> {kiln.output = \"w\"}, tensor<f64> {kiln.output = "
      "\"w64\"}, tensor<f32> {kiln.output = \"one\"}) {\n"
      "  %w = kiln.warmup %h : tensor<4xf32> {steps = 8 : i64} : tensor<f32>\n"
      "  %d = kiln.warmup %h : tensor<4xf32> {steps = 8 : i64} : tensor<f64>\n"
      "  %o = kiln.warmup {steps = 8 : i64} : tensor<f32>\n"
      "  return %w, %d, %o : tensor<f32>, tensor<f64>, tensor<f32>\n}\n";
  for (double step : {1.0, 6.0, 8.0, 100.0}) {
    SCOPED_TRACE(step);
    HostTensor h("f32", {4});
    h.values = {0.01, step, 3, 0};
    Tensors in = {{"h", h}};
    Tensors want = reference(ir, "predict", in);
    EXPECT_DOUBLE_EQ(want["w"].values[0], std::min(1.0, step / 8));
    EXPECT_DOUBLE_EQ(want["one"].values[0], 1.0);
    forEachConfig(ir, [&](Compiled &c) {
      Tensors out = c.run("predict", in);
      expectNear(out["w"], want["w"], 1e-7, 0, "warmup");
      expectNear(out["w64"], want["w64"], 1e-12, 0, "warmup f64");
      expectNear(out["one"], want["one"], 0, 0, "warmup without hyper");
    });
  }
}

TEST_F(LoweringTest, GatherAndScatterAddMatchTheReference) {
  // Repeated ids accumulate; out-of-range ids read zeros and add nothing.
  for (const char *dtype : {"f32", "f64"}) {
    SCOPED_TRACE(dtype);
    std::string table = tensorType({7, 5}, dtype),
                rows = tensorType({9, 5}, dtype);
    std::string ir =
        "func.func @predict(%t: " + table +
        " {kiln.input = \"t\"}, %u: " + rows +
        " {kiln.input = \"u\"}, %ids: tensor<9xi32> {kiln.input = " +
        "\"ids\"}) -> (" + rows + " {kiln.output = \"g\"}, " + table +
        " {kiln.output = \"s\"}) {\n"
        "  %g = kiln.gather %t[%ids] : (" +
        table + ", tensor<9xi32>) -> " + rows +
        "\n  %s = kiln.scatter_add %u[%ids] : (tensor<9xi32>, " + rows +
        ") -> " + table + "\n  return %g, %s : " + rows + ", " + table +
        "\n}\n";
    HostTensor ids("i32", {9});
    ids.values = {3, 0, 6, 3, 7, -2, 1, 3, 6};
    Tensors in = {{"t", random(rng, dtype, {7, 5})},
                  {"u", random(rng, dtype, {9, 5})},
                  {"ids", ids}};
    Tensors want = reference(ir, "predict", in);
    for (int j = 0; j < 5; ++j)
      EXPECT_EQ(want["g"].values[4 * 5 + j], 0.0) << "an out-of-range id";
    forEachConfig(ir, [&](Compiled &c) {
      Tensors out = c.run("predict", in);
      expectNear(out["g"], want["g"], 0, 0, "gather");
      expectNear(out["s"], want["s"], 1e-6, 1e-7, "scatter_add");
    });
  }
}

std::string i64Array(std::initializer_list<int64_t> values) {
  std::string s = "array<i64";
  const char *sep = ": ";
  for (int64_t v : values) {
    s += sep + std::to_string(v);
    sep = ", ";
  }
  return s + ">";
}

TEST_F(LoweringTest, FusedDense) {
  for (const char *act : {"none", "relu", "sigmoid", "tanh", "gelu"}) {
    SCOPED_TRACE(act);
    HostTensor x = random(rng, "f32", {5, 20}),
               w = random(rng, "f32", {20, 13}), b = random(rng, "f32", {13});
    std::string body =
        std::string("  %r = kiln.fused_dense %x, %w, %b activation = ") + act +
        " : (tensor<5x20xf32>, tensor<20x13xf32>, "
        "tensor<13xf32>) -> tensor<5x13xf32>";
    checkPredict(predictIR({{"x", "tensor<5x20xf32>"},
                            {"w", "tensor<20x13xf32>"},
                            {"b", "tensor<13xf32>"}},
                           body, "tensor<5x13xf32>"),
                 {{"x", x}, {"w", w}, {"b", b}}, 1e-5, 1e-5);
  }
}

TEST_F(LoweringTest, FusedConv2d) {
  // conv 3x3 pad 1 + bias + activation, then max or avg pooling 2x2; the max
  // variant also returns the activation before pooling.
  Shape xs = {2, 3, 8, 6}, ws = {4, 3, 3, 3}, ys = {2, 4, 8, 6},
        ps = {2, 4, 4, 3};
  for (const char *poolKind : {"none", "max", "avg"}) {
    for (const char *act : {"relu", "gelu"}) {
      SCOPED_TRACE(std::string(poolKind) + " " + act);
      HostTensor x = random(rng, "f32", xs), w = random(rng, "f32", ws),
                 b = random(rng, "f32", {4});
      bool pooled = std::string(poolKind) != "none";
      bool both = std::string(poolKind) == "max";
      std::string tx = tensorType(xs, "f32"), tw = tensorType(ws, "f32"),
                  ty = tensorType(ys, "f32"), tp = tensorType(ps, "f32");
      std::string results = !pooled ? ty
                            : both  ? "(" + tp + ", " + ty + ")"
                                    : tp;
      std::string ir =
          "func.func @predict(%x: " + tx + " {kiln.input = \"x\"}, %w: " + tw +
          " {kiln.input = \"w\"}, %b: tensor<4xf32> {kiln.input = \"b\"}) -> "
          "(" +
          (pooled ? tp : ty) + " {kiln.output = \"r\"}" +
          (both ? ", " + ty + " {kiln.output = \"act\"}" : std::string()) +
          ") {\n  %r" + (both ? ", %a" : "") +
          " = kiln.fused_conv2d %x, %w, %b activation = " + act +
          " pool = " + poolKind + " {strides = " + i64Array({1, 1}) +
          ", padding = " + i64Array({1, 1}) +
          ", dilation = " + i64Array({1, 1}) +
          ", pool_kernel = " + i64Array({2, 2}) +
          ", pool_strides = " + i64Array({2, 2}) +
          ", pool_padding = " + i64Array({0, 0}) + "} : (" + tx + ", " + tw +
          ", tensor<4xf32>) -> " + results + "\n  return %r" +
          (both ? ", %a" : "") + " : " + (pooled ? tp : ty) +
          (both ? ", " + ty : std::string()) + "\n}\n";
      Tensors in = {{"x", x}, {"w", w}, {"b", b}};
      Tensors want = reference(ir, "predict", in);
      forEachConfig(ir, [&](Compiled &c) {
        Tensors out = c.run("predict", in);
        expectNear(out["r"], want["r"], 1e-5, 1e-5, "result");
        if (both)
          expectNear(out["act"], want["act"], 1e-5, 1e-5, "activation");
      });
    }
  }
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

TEST_F(LoweringTest, CrossEntropy) {
  for (const char *dtype : {"f32", "f64"}) {
    HostTensor logits = random(rng, dtype, {8, 10}, -4, 4);
    logits.values[3] = roundTo(dtype, 95.0); // overflows a naive exp
    HostTensor labels = randomLabels(rng, {8}, 10);
    std::string tl = tensorType({8, 10}, dtype), tr = tensorType({}, dtype);
    std::string body = "  %r = kiln.cross_entropy %x, %l : (" + tl +
                       ", tensor<8xi32>) -> " + tr;
    checkPredict(predictIR({{"x", tl}, {"l", "tensor<8xi32>"}}, body, tr),
                 {{"x", logits}, {"l", labels}});
  }
}

TEST_F(LoweringTest, CrossEntropyIgnoresALabel) {
  // ignore_index outside the classes (PyTorch's -100) and one of them (a
  // padding class); a batch of nothing but ignored labels has loss 0.
  for (const char *dtype : {"f32", "f64"}) {
    for (int ignore : {-100, 3}) {
      SCOPED_TRACE(std::string(dtype) + " ignore " + std::to_string(ignore));
      HostTensor logits = random(rng, dtype, {8, 10}, -4, 4);
      HostTensor labels = randomLabels(rng, {8}, 10);
      labels.values[1] = labels.values[5] = labels.values[6] = ignore;
      labels.values[2] = ignore == 3 ? 4 : 3;
      std::string tl = tensorType({8, 10}, dtype), tr = tensorType({}, dtype);
      std::string body = "  %r = kiln.cross_entropy %x, %l {ignore_index = " +
                         std::to_string(ignore) + " : i64} : (" + tl +
                         ", tensor<8xi32>) -> " + tr;
      std::string ir = predictIR({{"x", tl}, {"l", "tensor<8xi32>"}}, body, tr);
      checkPredict(ir, {{"x", logits}, {"l", labels}});
      // The mean over the 5 others: differs from the plain mean over 8.
      Tensors kept = reference(ir, "predict", {{"x", logits}, {"l", labels}});
      std::fill(labels.values.begin(), labels.values.end(), ignore);
      checkPredict(ir, {{"x", logits}, {"l", labels}});
      Tensors none = reference(ir, "predict", {{"x", logits}, {"l", labels}});
      EXPECT_EQ(none["r"].values[0], 0.0);
      EXPECT_GT(kept["r"].values[0], 0.0);
    }
  }
}

TEST_F(LoweringTest, MseAndBce) {
  for (const char *dtype : {"f32", "f64"}) {
    Shape shape = {4, 7};
    HostTensor x = random(rng, dtype, shape, -30, 30);
    HostTensor t = random(rng, dtype, shape, 0, 1);
    std::string type = tensorType(shape, dtype), tr = tensorType({}, dtype);
    checkPredict(predictIR({{"x", type}, {"t", type}},
                           "  %r = kiln.mse %x, %t : (" + type + ", " + type +
                               ") -> " + tr,
                           tr),
                 {{"x", x}, {"t", t}});
    checkPredict(predictIR({{"x", type}, {"t", type}},
                           "  %r = kiln.bce_with_logits %x, %t : (" + type +
                               ", " + type + ") -> " + tr,
                           tr),
                 {{"x", x}, {"t", t}});
  }
}

//===----------------------------------------------------------------------===//
// Optimizer updates, in place through @train_step
//===----------------------------------------------------------------------===//

/// A train step updating param "p" from input gradient "g" with `update`
/// (the kiln op text, results %np[, %ns1[, %ns2]]); the loss is mse(p, g),
/// read from p *before* the update, which the in-place update must not clobber.
std::string optimizerIR(const std::string &dtype, int numStates,
                        const std::string &update) {
  std::string t = tensorType({3, 5}, dtype), s = tensorType({}, dtype);
  std::string ir = "module attributes {kiln.model = \"opt\"} {\n"
                   "kiln.param @p : " +
                   t +
                   " = uniform(-1.0, 1.0)\n"
                   "func.func @train_step(%p: " +
                   t + " {kiln.param = \"p\"}";
  for (int i = 1; i <= numStates; ++i)
    ir += ", %s" + std::to_string(i) + ": " + t + " {kiln.state = \"p.s" +
          std::to_string(i) + "\"}";
  ir += ", %g: " + t +
        " {kiln.input = \"g\"}, %hyper: tensor<4xf32> "
        "{kiln.hyper}) -> (" +
        t + " {kiln.param = \"p\"}";
  for (int i = 1; i <= numStates; ++i)
    ir += ", " + t + " {kiln.state = \"p.s" + std::to_string(i) + "\"}";
  ir += ", " + s + " {kiln.loss}) {\n" + update + "\n";
  ir += "  %loss = kiln.mse %p, %g : (" + t + ", " + t + ") -> " + s + "\n";
  ir += "  return %np";
  for (int i = 1; i <= numStates; ++i)
    ir += ", %ns" + std::to_string(i);
  ir += ", %loss : " + t;
  for (int i = 1; i <= numStates; ++i)
    ir += ", " + t;
  ir += ", " + s + "\n}\n}\n";
  return ir;
}

TEST_F(LoweringTest, OptimizerUpdatesInPlace) {
  struct Case {
    int numStates;
    std::string op; // with %T standing for the tensor type
  };
  std::vector<Case> cases = {
      {0, "%np = kiln.sgd_update %p, %g, %hyper {weight_decay = 0.0 : f64} : "
          "%T, tensor<4xf32>"},
      {0, "%np = kiln.sgd_update %p, %g, %hyper {weight_decay = 0.01 : f64} : "
          "%T, tensor<4xf32>"},
      {1,
       "%np, %ns1 = kiln.momentum_update %p, %g, %s1, %hyper {momentum = 0.9 "
       ": f64, weight_decay = 0.01 : f64, nesterov = false} : %T, "
       "tensor<4xf32>"},
      {1,
       "%np, %ns1 = kiln.momentum_update %p, %g, %s1, %hyper {momentum = 0.8 "
       ": f64, weight_decay = 0.0 : f64, nesterov = true} : %T, "
       "tensor<4xf32>"},
      {2,
       "%np, %ns1, %ns2 = kiln.adam_update %p, %g, %s1, %s2, %hyper {beta1 = "
       "0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 "
       ": f64, decoupled = false} : %T, tensor<4xf32>"},
      {2,
       "%np, %ns1, %ns2 = kiln.adam_update %p, %g, %s1, %s2, %hyper {beta1 = "
       "0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.1 "
       ": f64, decoupled = false} : %T, tensor<4xf32>"},
      {2,
       "%np, %ns1, %ns2 = kiln.adam_update %p, %g, %s1, %s2, %hyper {beta1 = "
       "0.8 : f64, beta2 = 0.99 : f64, eps = 1.0e-6 : f64, weight_decay = 0.1 "
       ": f64, decoupled = true} : %T, tensor<4xf32>"},
  };
  for (const char *dtype : {"f32", "f64"}) {
    for (const Case &c : cases) {
      SCOPED_TRACE(c.op + " " + dtype);
      std::string op = c.op;
      std::string t = tensorType({3, 5}, dtype);
      for (size_t pos; (pos = op.find("%T")) != std::string::npos;)
        op.replace(pos, 2, t);
      std::string ir = optimizerIR(dtype, c.numStates, "  " + op);
      forEachConfig(ir, [&](Compiled &compiled) {
        Tensors tensors;
        tensors["p"] = random(rng, dtype, {3, 5}, -1, 1);
        // The reference's own param and state, carried from step to step in
        // double precision.
        Tensors ref = tensors;
        for (int step = 1; step <= 3; ++step) {
          HostTensor g = random(rng, dtype, {3, 5}, -1, 1);
          tensors["g"] = ref["g"] = g;
          HostTensor hyper("f32", {4});
          hyper.values = {roundTo("f32", 0.05), double(step), 0, 0};
          tensors["hyper"] = ref["hyper"] = hyper;
          Tensors want = reference(ir, "train_step", ref);

          Tensors out = compiled.run("train_step", tensors);
          double tol = std::string(dtype) == "f64" ? 1e-12 : 1e-5;
          expectNear(tensors["p"], want["p"], tol, tol, "param p");
          if (c.numStates >= 1)
            expectNear(tensors["p.s1"], want["p.s1"], tol, tol, "state p.s1");
          if (c.numStates >= 2)
            expectNear(tensors["p.s2"], want["p.s2"], tol, tol, "state p.s2");
          expectNear(out["loss"], want["loss"], tol, tol,
                     "loss before the update");
          for (const char *name : {"p", "p.s1", "p.s2"})
            if (want.count(name))
              ref[name] = want[name];
        }
      });
    }
  }
}

//===----------------------------------------------------------------------===//
// Whole entry points and the object file
//===----------------------------------------------------------------------===//

/// A linear model y = x w + b with a hand-written MSE gradient and SGD, plus
/// eval and predict; params, state, inputs and outputs in the three layouts.
const char *kLinearModel = R"(
module attributes {kiln.model = "linear",
    kiln.train = {optimizer = {name = "sgd", lr = 0.1 : f64}, batch = 4 : i64,
                  epochs = 2 : i64, seed = 7 : i64,
                  data = {x = {format = "csv", path = "my data/x 100%.csv", scale = 0.5 : f64}},
                  test = {}}} {
  kiln.param @w : tensor<3x2xf32> = glorot_uniform(3.0, 2.0)
  kiln.param @b : tensor<2xf32> = zeros
  func.func @train_step(%w: tensor<3x2xf32> {kiln.param = "w"}, %b: tensor<2xf32> {kiln.param = "b"},
                        %x: tensor<4x3xf32> {kiln.input = "x"}, %y: tensor<4x2xf32> {kiln.input = "y"},
                        %hyper: tensor<4xf32> {kiln.hyper})
      -> (tensor<3x2xf32> {kiln.param = "w"}, tensor<2xf32> {kiln.param = "b"}, tensor<f32> {kiln.loss}) {
    %xw = kiln.matmul %x, %w : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %p = kiln.add %xw, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    %loss = kiln.mse %p, %y : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<f32>
    %d = kiln.sub %p, %y : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
    %c = kiln.constant dense<0.25> : tensor<f32>
    %dp = kiln.mul %d, %c : (tensor<4x2xf32>, tensor<f32>) -> tensor<4x2xf32>
    %xt = kiln.transpose %x perm = [1, 0] : tensor<4x3xf32> -> tensor<3x4xf32>
    %gw = kiln.matmul %xt, %dp : (tensor<3x4xf32>, tensor<4x2xf32>) -> tensor<3x2xf32>
    %gb = kiln.reduce_sum %dp axes = [0] : tensor<4x2xf32> -> tensor<2xf32>
    %nw = kiln.sgd_update %w, %gw, %hyper {weight_decay = 0.0 : f64} : tensor<3x2xf32>, tensor<4xf32>
    %nb = kiln.sgd_update %b, %gb, %hyper {weight_decay = 0.0 : f64} : tensor<2xf32>, tensor<4xf32>
    return %nw, %nb, %loss : tensor<3x2xf32>, tensor<2xf32>, tensor<f32>
  }
  func.func @eval_step(%w: tensor<3x2xf32> {kiln.param = "w"}, %b: tensor<2xf32> {kiln.param = "b"},
                       %x: tensor<4x3xf32> {kiln.input = "x"}, %y: tensor<4x2xf32> {kiln.input = "y"})
      -> (tensor<f32> {kiln.loss}, tensor<4x2xf32> {kiln.output = "pred"}, tensor<4xi32> {kiln.output = "cls"}) {
    %xw = kiln.matmul %x, %w : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %p = kiln.add %xw, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    %loss = kiln.mse %p, %y : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<f32>
    %cls = kiln.argmax %p axis = 1 : tensor<4x2xf32> -> tensor<4xi32>
    return %loss, %p, %cls : tensor<f32>, tensor<4x2xf32>, tensor<4xi32>
  }
  func.func @predict(%b: tensor<2xf32> {kiln.param = "b"}, %w: tensor<3x2xf32> {kiln.param = "w"},
                     %x: tensor<4x3xf32> {kiln.input = "x"})
      -> (tensor<4xi32> {kiln.output = "cls"}) {
    %xw = kiln.matmul %x, %w : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %p = kiln.add %xw, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    %cls = kiln.argmax %p axis = 1 : tensor<4x2xf32> -> tensor<4xi32>
    return %cls : tensor<4xi32>
  }
}
)";

TEST_F(LoweringTest, Manifest) {
  std::string error;
  std::unique_ptr<Compiled> c =
      Compiled::compile(kLinearModel, configs().front(), error);
  ASSERT_TRUE(c) << error;
  // The entry table lists every entry's buffers in ABI order: all params in
  // module order (whatever order the function takes them in), then inputs,
  // hyper, loss and outputs.
  EXPECT_EQ(c->manifest(), "kiln-manifest 2\n"
                           "model linear\n"
                           "param w f32 3x2 glorot_uniform 3 2\n"
                           "param b f32 2 zeros\n"
                           "input x f32 4x3\n"
                           "input y f32 4x2\n"
                           "output pred f32 4x2\n"
                           "output cls i32 4\n"
                           "optimizer sgd lr=0.1\n"
                           "train batch=4 epochs=2 seed=7\n"
                           "data train x csv my%20data/x%20100%25.csv "
                           "scale=0.5\n"
                           "entry train_step train\n"
                           "arg param w\narg param b\n"
                           "arg input x\narg input y\n"
                           "arg hyper\narg loss\n"
                           "entry eval_step eval\n"
                           "arg param w\narg param b\n"
                           "arg input x\narg input y\n"
                           "arg loss\narg output pred\narg output cls\n"
                           "entry predict infer\n"
                           "arg param w\narg param b\n"
                           "arg input x\narg output cls\n");
}

TEST_F(LoweringTest, LinearModelEntries) {
  forEachConfig(kLinearModel, [&](Compiled &c) {
    Tensors t;
    t["w"] = random(rng, "f32", {3, 2});
    t["b"] = random(rng, "f32", {2});
    t["x"] = random(rng, "f32", {4, 3});
    t["y"] = random(rng, "f32", {4, 2});
    t["hyper"] = HostTensor("f32", {4});
    t["hyper"].values = {0.5, 1, 0, 0};

    Tensors evalRef = reference(kLinearModel, "eval_step", t);
    Tensors eval = c.run("eval_step", t);
    expectNear(eval["loss"], evalRef["loss"], 1e-5, 1e-6, "eval loss");
    expectNear(eval["pred"], evalRef["pred"], 1e-5, 1e-6, "eval pred");
    expectNear(eval["cls"], evalRef["cls"], 0, 0, "eval cls");
    Tensors pred = c.run("predict", t);
    expectNear(pred["cls"], reference(kLinearModel, "predict", t)["cls"], 0, 0,
               "predict cls");

    // One SGD step on the hand-written gradient.
    Tensors trainRef = reference(kLinearModel, "train_step", t);
    Tensors train = c.run("train_step", t);
    expectNear(train["loss"], trainRef["loss"], 1e-5, 1e-6, "train loss");
    expectNear(t["w"], trainRef["w"], 1e-5, 1e-6, "updated w");
    expectNear(t["b"], trainRef["b"], 1e-5, 1e-6, "updated b");
  });
}

TEST_F(LoweringTest, ObjectFileExportsOnlyTheABI) {
  MLIRContext ctx([] {
    DialectRegistry registry;
    registry.insert<kiln::KilnDialect>();
    kiln::registerCodegenDialects(registry);
    return registry;
  }());
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(kLinearModel, &ctx);
  ASSERT_TRUE(module);
  PassManager pm(&ctx, ModuleOp::getOperationName());
  kiln::buildLoweringPipeline(pm);
  ASSERT_TRUE(succeeded(pm.run(*module)));
  llvm::LLVMContext llvmCtx;
  std::unique_ptr<llvm::Module> llvmModule =
      kiln::translateToLLVMIR(*module, llvmCtx);
  ASSERT_TRUE(llvmModule);
  llvm::SmallString<0> object;
  llvm::raw_svector_ostream os(object);
  ASSERT_TRUE(
      succeeded(kiln::emitObject(*llvmModule, os, false, module->getLoc())));
  auto file = llvm::object::ObjectFile::createObjectFile(
      llvm::MemoryBufferRef(object.str(), "kiln.o"));
  ASSERT_TRUE(!!file) << llvm::toString(file.takeError());
  std::set<std::string> defined, undefined;
  for (const llvm::object::SymbolRef &sym : (*file)->symbols()) {
    auto name = sym.getName();
    auto flags = sym.getFlags();
    ASSERT_TRUE(name && flags);
    if (!(*flags & llvm::object::SymbolRef::SF_Global))
      continue;
    if (*flags & llvm::object::SymbolRef::SF_Undefined)
      undefined.insert(name->str());
    else
      defined.insert(name->str());
  }
  EXPECT_EQ(defined, (std::set<std::string>{"kiln_entries", "kiln_eval_step",
                                            "kiln_manifest", "kiln_predict",
                                            "kiln_train_step"}));
  for (const std::string &name : undefined)
    EXPECT_TRUE(name == "malloc" || name == "free" || name == "memcpy" ||
                name == "memset" || name == "memmove")
        << "unexpected external symbol " << name;

  llvm::SmallString<0> assembly;
  llvm::raw_svector_ostream asmStream(assembly);
  ASSERT_TRUE(succeeded(
      kiln::emitObject(*llvmModule, asmStream, true, module->getLoc())));
  EXPECT_NE(assembly.str().find("kiln_train_step:"), llvm::StringRef::npos);
}

TEST_F(LoweringTest, DiagnosesBadEntries) {
  const std::pair<const char *, const char *> cases[] = {
      {R"(func.func @predict(%x: tensor<2xf32>) -> (tensor<2xf32> {kiln.output = "y"}) {
            return %x : tensor<2xf32> })",
       "has no ABI role"},
      {R"(func.func @predict(%w: tensor<2xf32> {kiln.param = "w"}) -> (tensor<2xf32> {kiln.output = "y"}) {
            return %w : tensor<2xf32> })",
       "no kiln.param op declares 'w'"},
      {R"(func.func @predict(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<2xf32> {kiln.param = "x"}) {
            return %x : tensor<2xf32> })",
       "kiln.param is not allowed here"},
      {R"(kiln.param @w : tensor<2xf32> = zeros
          func.func @predict(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<2xf32> {kiln.output = "y"}) {
            %w = kiln.load_param @w : tensor<2xf32>
            return %w : tensor<2xf32> })",
       "parameters must be entry-function arguments"},
  };
  for (const auto &[ir, message] : cases) {
    std::string error;
    std::unique_ptr<Compiled> c =
        Compiled::compile(ir, configs().front(), error);
    EXPECT_FALSE(c);
    EXPECT_NE(error.find(message), std::string::npos)
        << "expected '" << message << "' in:\n"
        << error;
  }
}

} // namespace
