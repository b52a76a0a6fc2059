//===- LoweringTest.cpp - Compiled kiln ops against C++ references --------===//
//
// Every kiln op is compiled through the whole lowering pipeline (kiln ->
// linalg -> LLVM -> O3 for the host), run through the C ABI (kiln_predict,
// kiln_train_step, ... with the buffer order the compiled manifest gives) by
// MLIR's ExecutionEngine on random inputs, and compared with a direct C++
// reference in double precision. Each case runs under two pipeline
// configurations: fast matmul + elementwise fusion + polynomial math + static
// buffers, and none of them.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/ObjectEmitter.h"
#include "codegen/Pipeline.h"
#include "ir/DropoutMask.h"
#include "ir/KilnOps.h"
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
// Host tensors and references
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

Shape stridesOf(const Shape &shape) {
  Shape strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

Shape unravel(int64_t flat, const Shape &shape) {
  Shape index(shape.size());
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    index[i] = flat % shape[i];
    flat /= shape[i];
  }
  return index;
}

/// The element of `t` that NumPy broadcasting reads at `index` of a larger
/// result.
double broadcastRead(const HostTensor &t, const Shape &index) {
  Shape strides = stridesOf(t.shape);
  size_t offset = index.size() - t.shape.size();
  int64_t flat = 0;
  for (size_t i = 0; i < t.shape.size(); ++i)
    flat += (t.shape[i] == 1 ? 0 : index[i + offset]) * strides[i];
  return t.values[flat];
}

Shape broadcastShape(const Shape &a, const Shape &b) {
  Shape r(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < r.size(); ++i) {
    int64_t da = i < r.size() - a.size() ? 1 : a[i - (r.size() - a.size())];
    int64_t db = i < r.size() - b.size() ? 1 : b[i - (r.size() - b.size())];
    r[i] = std::max(da, db);
  }
  return r;
}

/// Rounds `v` to what a buffer of `dtype` holds.
double roundTo(const std::string &dtype, double v) {
  if (dtype == "f32")
    return static_cast<float>(v);
  if (dtype == "i32")
    return static_cast<int32_t>(v);
  return v;
}

HostTensor mapRef(const HostTensor &a, const std::function<double(double)> &f) {
  HostTensor r(a.dtype, a.shape);
  for (int64_t i = 0; i < a.size(); ++i)
    r.values[i] = f(a.values[i]);
  return r;
}

HostTensor zipRef(const HostTensor &a, const HostTensor &b,
                  const std::function<double(double, double)> &f) {
  HostTensor r(a.dtype, broadcastShape(a.shape, b.shape));
  for (int64_t i = 0; i < r.size(); ++i) {
    Shape index = unravel(i, r.shape);
    r.values[i] = f(broadcastRead(a, index), broadcastRead(b, index));
  }
  return r;
}

HostTensor matmulRef(const HostTensor &a, const HostTensor &b) {
  Shape batchA(a.shape.begin(), a.shape.end() - 2);
  Shape batchB(b.shape.begin(), b.shape.end() - 2);
  Shape batch = broadcastShape(batchA, batchB);
  int64_t m = a.shape[a.shape.size() - 2], k = a.shape.back(),
          n = b.shape.back();
  Shape shape = batch;
  shape.push_back(m);
  shape.push_back(n);
  HostTensor r(a.dtype, shape);
  for (int64_t i = 0; i < r.size(); ++i) {
    Shape index = unravel(i, shape);
    Shape ia(index.begin(), index.end() - 2), ib = ia;
    int64_t row = index[index.size() - 2], col = index.back();
    double sum = 0;
    for (int64_t kk = 0; kk < k; ++kk) {
      Shape x = ia, y = ib;
      x.push_back(row);
      x.push_back(kk);
      y.push_back(kk);
      y.push_back(col);
      sum += broadcastRead(a, x) * broadcastRead(b, y);
    }
    r.values[i] = sum;
  }
  return r;
}

enum class Reduce { Sum, Mean, Max };

HostTensor reduceRef(const HostTensor &a, const std::vector<int64_t> &axes,
                     bool keepDims, Reduce kind) {
  std::vector<bool> reduced(a.shape.size(), false);
  for (int64_t ax : axes)
    reduced[ax] = true;
  Shape kept, out;
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (!reduced[i])
      kept.push_back(a.shape[i]);
    out.push_back(reduced[i] ? 1 : a.shape[i]);
  }
  HostTensor r(a.dtype, kept,
               kind == Reduce::Max ? -std::numeric_limits<double>::infinity()
                                   : 0.0);
  int64_t count = a.size() / std::max<int64_t>(1, numElements(kept));
  for (int64_t i = 0; i < a.size(); ++i) {
    Shape index = unravel(i, a.shape), keptIndex;
    for (size_t d = 0; d < index.size(); ++d)
      if (!reduced[d])
        keptIndex.push_back(index[d]);
    Shape strides = stridesOf(kept);
    int64_t flat = 0;
    for (size_t d = 0; d < keptIndex.size(); ++d)
      flat += keptIndex[d] * strides[d];
    double &acc = r.values[flat];
    acc = kind == Reduce::Max ? std::max(acc, a.values[i]) : acc + a.values[i];
  }
  if (kind == Reduce::Mean)
    for (double &v : r.values)
      v /= count;
  if (keepDims)
    r.shape = out;
  return r;
}

HostTensor softmaxRef(const HostTensor &a, int64_t axis, bool log) {
  HostTensor max = reduceRef(a, {axis}, true, Reduce::Max);
  HostTensor e =
      zipRef(a, max, [](double x, double m) { return std::exp(x - m); });
  HostTensor sum = reduceRef(e, {axis}, true, Reduce::Sum);
  if (!log)
    return zipRef(e, sum, [](double x, double s) { return x / s; });
  HostTensor shifted = zipRef(a, max, [](double x, double m) { return x - m; });
  return zipRef(shifted, sum,
                [](double x, double s) { return x - std::log(s); });
}

HostTensor argmaxRef(const HostTensor &a, int64_t axis) {
  Shape kept;
  for (size_t i = 0; i < a.shape.size(); ++i)
    if (static_cast<int64_t>(i) != axis)
      kept.push_back(a.shape[i]);
  HostTensor r("i32", kept);
  std::vector<double> best(r.size(), -std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < a.size(); ++i) {
    Shape index = unravel(i, a.shape);
    int64_t along = index[axis];
    index.erase(index.begin() + axis);
    Shape strides = stridesOf(kept);
    int64_t flat = 0;
    for (size_t d = 0; d < index.size(); ++d)
      flat += index[d] * strides[d];
    if (a.values[i] > best[flat]) {
      best[flat] = a.values[i];
      r.values[flat] = along;
    }
  }
  return r;
}

HostTensor transposeRef(const HostTensor &a, const Shape &perm) {
  Shape shape;
  for (int64_t p : perm)
    shape.push_back(a.shape[p]);
  HostTensor r(a.dtype, shape);
  Shape strides = stridesOf(a.shape);
  for (int64_t i = 0; i < r.size(); ++i) {
    Shape index = unravel(i, shape);
    int64_t flat = 0;
    for (size_t d = 0; d < perm.size(); ++d)
      flat += index[d] * strides[perm[d]];
    r.values[i] = a.values[flat];
  }
  return r;
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

HostTensor scalar(std::string dtype, double v) {
  HostTensor t(dtype, {});
  t.values[0] = roundTo(t.dtype, v);
  return t;
}

void expectNear(const HostTensor &got, const HostTensor &want, double rtol,
                double atol, const std::string &what) {
  ASSERT_EQ(got.shape, want.shape) << what;
  ASSERT_EQ(got.dtype, want.dtype) << what;
  for (int64_t i = 0; i < want.size(); ++i) {
    double g = got.values[i], w = want.values[i];
    if (std::isnan(w)) {
      EXPECT_TRUE(std::isnan(g)) << what << " element " << i;
      continue;
    }
    ASSERT_LE(std::abs(g - w), atol + rtol * std::abs(w))
        << what << ": element " << i << " is " << g << ", expected " << w;
  }
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

  /// Runs @predict on `inputs` and compares its output "r" with `expected`.
  void checkPredict(const std::string &ir, Tensors inputs,
                    const HostTensor &expected, double rtol = 1e-5,
                    double atol = 1e-6) {
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

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

struct BinaryCase {
  const char *op;
  std::function<double(double, double)> ref;
};

const BinaryCase kBinary[] = {
    {"add", [](double a, double b) { return a + b; }},
    {"sub", [](double a, double b) { return a - b; }},
    {"mul", [](double a, double b) { return a * b; }},
    {"div", [](double a, double b) { return a / b; }},
    {"maximum", [](double a, double b) { return std::max(a, b); }},
    {"minimum", [](double a, double b) { return std::min(a, b); }},
    {"greater", [](double a, double b) { return a > b ? 1.0 : 0.0; }},
};

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
    Tensors expected;
    std::string results, body, returned, types;
    for (const BinaryCase &c : kBinary) {
      HostTensor r = zipRef(a, b, c.ref);
      std::string tr = tensorType(r.shape, "f32");
      std::string name = std::string("r_") + c.op;
      expected[name] = r;
      results += (results.empty() ? "" : ", ") + tr + " {kiln.output = \"" +
                 name + "\"}";
      body += "  %" + name + " = kiln." + c.op + " %a, %b : (" + ta + ", " +
              tb + ") -> " + tr + "\n";
      returned += (returned.empty() ? "%" : ", %") + name;
      types += (types.empty() ? "" : ", ") + tr;
    }
    std::string ir = "func.func @predict(%a: " + ta +
                     " {kiln.input = \"a\"}, %b: " + tb +
                     " {kiln.input = \"b\"}) -> (" + results + ") {\n" + body +
                     "  return " + returned + " : " + types + "\n}\n";
    forEachConfig(ir, [&](Compiled &c) {
      Tensors in = {{"a", a}, {"b", b}};
      Tensors out = c.run("predict", in);
      for (const auto &[name, want] : expected)
        expectNear(out[name], want, 1e-6, 1e-7, name);
    });
  }
}

TEST_F(LoweringTest, BinaryOpsF64) {
  for (const BinaryCase &c : kBinary) {
    SCOPED_TRACE(std::string(c.op));
    HostTensor a = random(rng, "f64", {3, 4}), b = random(rng, "f64", {4}, 0.5);
    HostTensor r = zipRef(a, b, c.ref);
    std::string body = "  %r = kiln." + std::string(c.op) +
                       " %a, %b : (tensor<3x4xf64>, tensor<4xf64>) -> "
                       "tensor<3x4xf64>";
    checkPredict(predictIR({{"a", "tensor<3x4xf64>"}, {"b", "tensor<4xf64>"}},
                           body, "tensor<3x4xf64>"),
                 {{"a", a}, {"b", b}}, r);
  }
}

struct UnaryCase {
  const char *op;
  std::function<double(double)> ref;
  double lo, hi;
};

const UnaryCase kUnary[] = {
    {"neg", [](double x) { return -x; }, -3, 3},
    {"relu", [](double x) { return std::max(x, 0.0); }, -3, 3},
    {"sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }, -8, 8},
    {"tanh", [](double x) { return std::tanh(x); }, -4, 4},
    {"exp", [](double x) { return std::exp(x); }, -4, 4},
    {"log", [](double x) { return std::log(x); }, 0.01, 10},
    {"sqrt", [](double x) { return std::sqrt(x); }, 0, 10},
    {"abs", [](double x) { return std::abs(x); }, -3, 3},
    {"gelu",
     [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -4,
     4},
    {"gelu_derivative",
     [](double x) {
       return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) +
              x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
     },
     -4, 4},
};

TEST_F(LoweringTest, UnaryOps) {
  for (const char *dtype : {"f32", "f64"}) {
    for (const UnaryCase &c : kUnary) {
      SCOPED_TRACE(std::string(c.op) + " " + dtype);
      HostTensor x = random(rng, dtype, {3, 17}, c.lo, c.hi);
      HostTensor r = mapRef(x, c.ref);
      std::string type = tensorType({3, 17}, dtype);
      std::string body = "  %r = kiln." + std::string(c.op) + " %x : " + type;
      checkPredict(predictIR({{"x", type}}, body, type), {{"x", x}}, r);
    }
  }
}

//===----------------------------------------------------------------------===//
// Matmul
//===----------------------------------------------------------------------===//

TEST_F(LoweringTest, Matmul) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{5, 7}, {7, 3}},          {{1, 1}, {1, 1}},      {{13, 70}, {70, 37}},
      {{64, 33}, {33, 48}},      {{9, 300}, {300, 20}}, {{2, 5, 7}, {7, 3}},
      {{2, 1, 5, 7}, {3, 7, 4}}, {{4, 6}, {2, 6, 5}}};
  for (const char *dtype : {"f32", "f64"}) {
    for (const auto &[sa, sb] : shapes) {
      SCOPED_TRACE(tensorType(sa, dtype) + " x " + tensorType(sb, dtype));
      HostTensor a = random(rng, dtype, sa, -1, 1),
                 b = random(rng, dtype, sb, -1, 1);
      HostTensor r = matmulRef(a, b);
      std::string ta = tensorType(sa, dtype), tb = tensorType(sb, dtype),
                  tr = tensorType(r.shape, dtype);
      std::string body =
          "  %r = kiln.matmul %a, %b : (" + ta + ", " + tb + ") -> " + tr;
      checkPredict(predictIR({{"a", ta}, {"b", tb}}, body, tr),
                   {{"a", a}, {"b", b}}, r, 1e-5, 1e-4);
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
        HostTensor r = softmaxRef(x, axis, log);
        std::string type = tensorType(shape, dtype);
        std::string body = std::string("  %r = kiln.") +
                           (log ? "log_softmax" : "softmax") +
                           " %x axis = " + std::to_string(axis) + " : " + type;
        checkPredict(predictIR({{"x", type}}, body, type), {{"x", x}}, r);
      }
    }
  }
}

TEST_F(LoweringTest, Reductions) {
  struct Case {
    const char *op;
    Reduce kind;
  };
  const Case kinds[] = {{"reduce_sum", Reduce::Sum},
                        {"reduce_mean", Reduce::Mean},
                        {"reduce_max", Reduce::Max}};
  const std::vector<std::vector<int64_t>> axesList = {
      {0}, {1}, {2}, {0, 2}, {0, 1, 2}};
  Shape shape = {3, 4, 5};
  for (const char *dtype : {"f32", "f64"}) {
    for (const Case &c : kinds) {
      for (const auto &axes : axesList) {
        // f64 takes the same code path; a few cases suffice.
        if (std::string(dtype) == "f64" &&
            (c.kind == Reduce::Max || axes.size() != 2))
          continue;
        for (bool keep : {false, true}) {
          HostTensor x = random(rng, dtype, shape);
          HostTensor r = reduceRef(x, axes, keep, c.kind);
          std::string axesText;
          for (int64_t a : axes)
            axesText += (axesText.empty() ? "" : ", ") + std::to_string(a);
          SCOPED_TRACE(std::string(c.op) + " [" + axesText +
                       "] keepdims=" + (keep ? "1" : "0") + " " + dtype);
          std::string tin = tensorType(shape, dtype),
                      tout = tensorType(r.shape, dtype);
          std::string body = "  %r = kiln." + std::string(c.op) +
                             " %x axes = [" + axesText + "] " +
                             (keep ? "{keepdims = true} " : "") + ": " + tin +
                             " -> " + tout;
          checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, r, 1e-5,
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
    HostTensor r = argmaxRef(x, axis);
    std::string tin = tensorType(shape, "f32"),
                tout = tensorType(r.shape, "i32");
    std::string body = "  %r = kiln.argmax %x axis = " + std::to_string(axis) +
                       " : " + tin + " -> " + tout;
    checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, r, 0, 0);
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
      HostTensor r = x;
      r.shape = to;
      std::string tin = tensorType(from, dtype), tout = tensorType(to, dtype);
      SCOPED_TRACE(tin + " -> " + tout);
      std::string body = "  %r = kiln.reshape %x : " + tin + " -> " + tout;
      checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, r, 0, 0);
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
    HostTensor r = transposeRef(x, perm);
    std::string permText;
    for (int64_t p : perm)
      permText += (permText.empty() ? "" : ", ") + std::to_string(p);
    std::string tin = tensorType(shape, "f32"),
                tout = tensorType(r.shape, "f32");
    std::string body = "  %r = kiln.transpose %x perm = [" + permText +
                       "] : " + tin + " -> " + tout;
    checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, r, 0, 0);
  }
}

TEST_F(LoweringTest, BroadcastTo) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 1}, {2, 3, 4}}, {{}, {2, 2}}, {{4}, {3, 4}}, {{1, 4}, {1, 4}}};
  for (const auto &[from, to] : cases) {
    HostTensor x = random(rng, "f32", from);
    HostTensor r =
        zipRef(HostTensor("f32", to), x, [](double, double v) { return v; });
    std::string tin = tensorType(from, "f32"), tout = tensorType(to, "f32");
    std::string body = "  %r = kiln.broadcast_to %x : " + tin + " -> " + tout;
    checkPredict(predictIR({{"x", tin}}, body, tout), {{"x", x}}, r, 0, 0);
  }
}

TEST_F(LoweringTest, OneHot) {
  HostTensor labels("i32", {6});
  labels.values = {0, 3, 4, -1, 5, 2}; // -1 and 5 are out of range
  HostTensor r("f32", {6, 5});
  for (int64_t n = 0; n < 6; ++n)
    if (labels.values[n] >= 0 && labels.values[n] < 5)
      r.values[n * 5 + static_cast<int64_t>(labels.values[n])] = 1;
  std::string body =
      "  %r = kiln.one_hot %l : tensor<6xi32> -> tensor<6x5xf32>";
  checkPredict(predictIR({{"l", "tensor<6xi32>"}}, body, "tensor<6x5xf32>"),
               {{"l", labels}}, r, 0, 0);
}

TEST_F(LoweringTest, Constant) {
  HostTensor x = random(rng, "f32", {2, 3});
  const double c[] = {1.5, -2, 0.25, 4, 8, -0.5};
  HostTensor r = x;
  for (int64_t i = 0; i < 6; ++i)
    r.values[i] = x.values[i] * c[i] + 3.0;
  std::string body = R"(
  %c = kiln.constant dense<[[1.5, -2.0, 0.25], [4.0, 8.0, -0.5]]> : tensor<2x3xf32>
  %s = kiln.constant dense<3.0> : tensor<f32>
  %m = kiln.mul %x, %c : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %r = kiln.add %m, %s : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>)";
  checkPredict(predictIR({{"x", "tensor<2x3xf32>"}}, body, "tensor<2x3xf32>"),
               {{"x", x}}, r);
}

//===----------------------------------------------------------------------===//
// Convolution, pooling, dropout
//===----------------------------------------------------------------------===//

/// Geometry of a 2-D window op over NCHW.
struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;

  int64_t outH(int64_t h) const {
    return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
  }
  int64_t outW(int64_t w) const {
    return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
  }
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

int64_t at4(const Shape &s, int64_t a, int64_t b, int64_t c, int64_t d) {
  return ((a * s[1] + b) * s[2] + c) * s[3] + d;
}

/// mode 0: y = conv(x, w); 1: x += conv^T(y, w); 2: w += corr(x, y).
void convolveRef(int mode, HostTensor &x, HostTensor &w, HostTensor &y,
                 const Geometry &g) {
  for (int64_t n = 0; n < x.shape[0]; ++n)
    for (int64_t o = 0; o < w.shape[0]; ++o)
      for (int64_t i = 0; i < y.shape[2]; ++i)
        for (int64_t j = 0; j < y.shape[3]; ++j)
          for (int64_t c = 0; c < x.shape[1]; ++c)
            for (int64_t a = 0; a < g.kh; ++a)
              for (int64_t b = 0; b < g.kw; ++b) {
                int64_t ih = i * g.sh + a * g.dh - g.ph,
                        iw = j * g.sw + b * g.dw - g.pw;
                if (ih < 0 || ih >= x.shape[2] || iw < 0 || iw >= x.shape[3])
                  continue;
                double &xv = x.values[at4(x.shape, n, c, ih, iw)];
                double &wv = w.values[at4(w.shape, o, c, a, b)];
                double &yv = y.values[at4(y.shape, n, o, i, j)];
                if (mode == 0)
                  yv += xv * wv;
                else if (mode == 1)
                  xv += yv * wv;
                else
                  wv += yv * xv;
              }
}

/// Pooling forward (y), or its gradient into dx from dy.
void poolRef(bool isMax, const HostTensor &x, HostTensor &y, HostTensor *dx,
             const HostTensor *dy, const Geometry &g) {
  for (int64_t n = 0; n < y.shape[0]; ++n)
    for (int64_t c = 0; c < y.shape[1]; ++c)
      for (int64_t i = 0; i < y.shape[2]; ++i)
        for (int64_t j = 0; j < y.shape[3]; ++j) {
          auto taps = [&](auto fn) {
            for (int64_t a = 0; a < g.kh; ++a)
              for (int64_t b = 0; b < g.kw; ++b) {
                int64_t ih = i * g.sh + a - g.ph, iw = j * g.sw + b - g.pw;
                if (ih >= 0 && ih < x.shape[2] && iw >= 0 && iw < x.shape[3])
                  fn(at4(x.shape, n, c, ih, iw));
              }
          };
          double acc = isMax ? -INFINITY : 0;
          taps([&](int64_t k) {
            acc = isMax ? std::max(acc, x.values[k]) : acc + x.values[k];
          });
          if (!isMax)
            acc /= double(g.kh * g.kw);
          y.values[at4(y.shape, n, c, i, j)] = acc;
          if (!dx)
            continue;
          double grad = dy->values[at4(y.shape, n, c, i, j)];
          taps([&](int64_t k) {
            if (!isMax)
              dx->values[k] += grad / double(g.kh * g.kw);
            else if (x.values[k] == acc)
              dx->values[k] += grad;
          });
        }
}

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
      Shape ys = {c.x[0], c.o, g.outH(c.x[2]), g.outW(c.x[3])};
      std::string tx = tensorType(c.x, dtype), tw = tensorType(ws, dtype),
                  ty = tensorType(ys, dtype);
      SCOPED_TRACE(tx + " * " + tw + " " + g.attrs(true));
      HostTensor x = random(rng, dtype, c.x), w = random(rng, dtype, ws),
                 dy = random(rng, dtype, ys);
      HostTensor y(dtype, ys), dx(dtype, c.x), dw(dtype, ws);
      convolveRef(0, x, w, y, g);
      convolveRef(1, dx, w, dy, g);
      convolveRef(2, x, dw, dy, g);
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
      forEachConfig(ir, [&](Compiled &compiled) {
        Tensors in = {{"x", x}, {"w", w}, {"g", dy}};
        Tensors out = compiled.run("predict", in);
        expectNear(out["y"], y, tol, tol, "conv2d");
        expectNear(out["dx"], dx, tol, tol, "conv2d_backward_input");
        expectNear(out["dw"], dw, tol, 10 * tol, "conv2d_backward_filter");
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
        Shape ys = {xs[0], xs[1], (xs[2] + 2 * g.ph - g.kh) / g.sh + 1,
                    (xs[3] + 2 * g.pw - g.kw) / g.sw + 1};
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
        HostTensor y("f32", ys), dx("f32", xs), y2("f32", ys);
        poolRef(isMax, x, y, nullptr, nullptr, g);
        poolRef(isMax, x, y2, &dx, &dy, g);
        checkPredict(predictIR({{"x", tx}},
                               "  %r = kiln." + op + " %x " + attrs + " : " +
                                   tx + " -> " + ty,
                               ty),
                     {{"x", x}}, y);
        if (isMax)
          checkPredict(predictIR({{"x", tx}, {"y", ty}, {"g", ty}},
                                 "  %r = kiln.max_pool2d_backward %x, %y, %g " +
                                     attrs + " : (" + tx + ", " + ty + ", " +
                                     ty + ") -> " + tx,
                                 tx),
                       {{"x", x}, {"y", y}, {"g", dy}}, dx);
        else
          checkPredict(predictIR({{"g", ty}},
                                 "  %r = kiln.avg_pool2d_backward %g " + attrs +
                                     " : " + ty + " -> " + tx,
                                 tx),
                       {{"g", dy}}, dx);
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
      HostTensor r = x;
      uint32_t key = kiln::dropoutKey(5, 77, 3);
      int dropped = 0;
      for (int64_t i = 0; i < r.size(); ++i) {
        bool drop = kiln::dropoutUniform(key, uint32_t(i)) < rate;
        dropped += drop;
        r.values[i] = drop ? 0.0 : r.values[i] / (1 - rate);
      }
      if (rate == 0.3)
        EXPECT_GT(dropped, 10);
      forEachConfig(ir, [&](Compiled &c) {
        Tensors in = {{"x", x}, {"h", h}};
        Tensors out = c.run("predict", in);
        expectNear(out["r"], r, 1e-6, 1e-7, "dropout");
        expectNear(out["same"], x, 0, 0, "dropout without hyper");
      });
    }
  }
}

double activateRef(const std::string &act, double v) {
  if (act == "relu")
    return v > 0 ? v : 0;
  if (act == "sigmoid")
    return 1 / (1 + std::exp(-v));
  if (act == "tanh")
    return std::tanh(v);
  if (act == "gelu")
    return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  return v;
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
    HostTensor r = zipRef(matmulRef(x, w), b, [&](double m, double bias) {
      return activateRef(act, m + bias);
    });
    std::string body =
        std::string("  %r = kiln.fused_dense %x, %w, %b activation = ") + act +
        " : (tensor<5x20xf32>, tensor<20x13xf32>, "
        "tensor<13xf32>) -> tensor<5x13xf32>";
    checkPredict(predictIR({{"x", "tensor<5x20xf32>"},
                            {"w", "tensor<20x13xf32>"},
                            {"b", "tensor<13xf32>"}},
                           body, "tensor<5x13xf32>"),
                 {{"x", x}, {"w", w}, {"b", b}}, r, 1e-5, 1e-5);
  }
}

TEST_F(LoweringTest, FusedConv2d) {
  // conv 3x3 pad 1 + bias + activation, then max or avg pooling 2x2; the max
  // variant also returns the activation before pooling.
  Shape xs = {2, 3, 8, 6}, ws = {4, 3, 3, 3}, ys = {2, 4, 8, 6},
        ps = {2, 4, 4, 3};
  Geometry conv{3, 3, 1, 1, 1, 1};
  Geometry pool{2, 2, 2, 2, 0, 0};
  for (const char *poolKind : {"none", "max", "avg"}) {
    for (const char *act : {"relu", "gelu"}) {
      SCOPED_TRACE(std::string(poolKind) + " " + act);
      HostTensor x = random(rng, "f32", xs), w = random(rng, "f32", ws),
                 b = random(rng, "f32", {4});
      HostTensor y("f32", ys);
      convolveRef(0, x, w, y, conv);
      for (int64_t i = 0; i < y.size(); ++i)
        y.values[i] = activateRef(act, y.values[i] + b.values[(i / 48) % 4]);
      bool pooled = std::string(poolKind) != "none";
      HostTensor p("f32", ps);
      if (pooled)
        poolRef(std::string(poolKind) == "max", y, p, nullptr, nullptr, pool);
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
      forEachConfig(ir, [&](Compiled &c) {
        Tensors in = {{"x", x}, {"w", w}, {"b", b}};
        Tensors out = c.run("predict", in);
        expectNear(out["r"], pooled ? p : y, 1e-5, 1e-5, "result");
        if (both)
          expectNear(out["act"], y, 1e-5, 1e-5, "activation");
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
    HostTensor logp = softmaxRef(logits, 1, /*log=*/true);
    double loss = 0;
    for (int64_t n = 0; n < 8; ++n)
      loss -= logp.values[n * 10 + static_cast<int64_t>(labels.values[n])];
    HostTensor r = scalar(dtype, loss / 8);
    r.values[0] = loss / 8;
    std::string tl = tensorType({8, 10}, dtype), tr = tensorType({}, dtype);
    std::string body = "  %r = kiln.cross_entropy %x, %l : (" + tl +
                       ", tensor<8xi32>) -> " + tr;
    checkPredict(predictIR({{"x", tl}, {"l", "tensor<8xi32>"}}, body, tr),
                 {{"x", logits}, {"l", labels}}, r);
  }
}

TEST_F(LoweringTest, MseAndBce) {
  for (const char *dtype : {"f32", "f64"}) {
    Shape shape = {4, 7};
    HostTensor x = random(rng, dtype, shape, -30, 30);
    HostTensor t = random(rng, dtype, shape, 0, 1);
    std::string type = tensorType(shape, dtype), tr = tensorType({}, dtype);
    double mse = 0, bce = 0;
    for (int64_t i = 0; i < x.size(); ++i) {
      double d = x.values[i] - t.values[i], v = x.values[i];
      mse += d * d;
      bce += std::max(v, 0.0) - v * t.values[i] +
             std::log1p(std::exp(-std::abs(v)));
    }
    HostTensor rMse(dtype, {}), rBce(dtype, {});
    rMse.values[0] = mse / x.size();
    rBce.values[0] = bce / x.size();
    checkPredict(predictIR({{"x", type}, {"t", type}},
                           "  %r = kiln.mse %x, %t : (" + type + ", " + type +
                               ") -> " + tr,
                           tr),
                 {{"x", x}, {"t", t}}, rMse);
    checkPredict(predictIR({{"x", type}, {"t", type}},
                           "  %r = kiln.bce_with_logits %x, %t : (" + type +
                               ", " + type + ") -> " + tr,
                           tr),
                 {{"x", x}, {"t", t}}, rBce);
  }
}

//===----------------------------------------------------------------------===//
// Optimizer updates, in place through @train_step
//===----------------------------------------------------------------------===//

/// PyTorch's update rules, in double.
struct OptimizerRef {
  std::string kind; // sgd, momentum, adam
  double wd = 0, momentum = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool nesterov = false, decoupled = false;

  void step(std::vector<double> &p, const std::vector<double> &g,
            std::vector<double> &s1, std::vector<double> &s2, double lr,
            double t) const {
    for (size_t i = 0; i < p.size(); ++i) {
      double gi = g[i];
      if (kind == "sgd") {
        p[i] -= lr * (gi + wd * p[i]);
      } else if (kind == "momentum") {
        gi += wd * p[i];
        s1[i] = momentum * s1[i] + gi;
        double d = nesterov ? gi + momentum * s1[i] : s1[i];
        p[i] -= lr * d;
      } else {
        if (decoupled)
          p[i] *= 1 - lr * wd;
        else
          gi += wd * p[i];
        s1[i] = beta1 * s1[i] + (1 - beta1) * gi;
        s2[i] = beta2 * s2[i] + (1 - beta2) * gi * gi;
        double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
        p[i] -= lr / bc1 * s1[i] / (std::sqrt(s2[i]) / std::sqrt(bc2) + eps);
      }
    }
  }
};

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
    OptimizerRef ref;
    int numStates;
    std::string op; // with %T standing for the tensor type
  };
  std::vector<Case> cases = {
      {{"sgd"},
       0,
       "%np = kiln.sgd_update %p, %g, %hyper {weight_decay = 0.0 : f64} : "
       "%T, tensor<4xf32>"},
      {{"sgd", 0.01},
       0,
       "%np = kiln.sgd_update %p, %g, %hyper {weight_decay = 0.01 : f64} : "
       "%T, tensor<4xf32>"},
      {{"momentum", 0.01, 0.9},
       1,
       "%np, %ns1 = kiln.momentum_update %p, %g, %s1, %hyper {momentum = 0.9 "
       ": f64, weight_decay = 0.01 : f64, nesterov = false} : %T, "
       "tensor<4xf32>"},
      {{"momentum", 0, 0.8, 0.9, 0.999, 1e-8, /*nesterov=*/true},
       1,
       "%np, %ns1 = kiln.momentum_update %p, %g, %s1, %hyper {momentum = 0.8 "
       ": f64, weight_decay = 0.0 : f64, nesterov = true} : %T, "
       "tensor<4xf32>"},
      {{"adam", 0.0},
       2,
       "%np, %ns1, %ns2 = kiln.adam_update %p, %g, %s1, %s2, %hyper {beta1 = "
       "0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 "
       ": f64, decoupled = false} : %T, tensor<4xf32>"},
      {{"adam", 0.1},
       2,
       "%np, %ns1, %ns2 = kiln.adam_update %p, %g, %s1, %s2, %hyper {beta1 = "
       "0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.1 "
       ": f64, decoupled = false} : %T, tensor<4xf32>"},
      {{"adam", 0.1, 0, 0.8, 0.99, 1e-6, false, /*decoupled=*/true},
       2,
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
        std::vector<double> p = tensors["p"].values, s1(15), s2(15);
        for (int step = 1; step <= 3; ++step) {
          HostTensor g = random(rng, dtype, {3, 5}, -1, 1);
          tensors["g"] = g;
          HostTensor hyper("f32", {4});
          hyper.values = {roundTo("f32", 0.05), double(step), 0, 0};
          tensors["hyper"] = hyper;
          double mse = 0;
          for (int i = 0; i < 15; ++i)
            mse += (p[i] - g.values[i]) * (p[i] - g.values[i]);
          c.ref.step(p, g.values, s1, s2, hyper.values[0], step);

          Tensors out = compiled.run("train_step", tensors);
          double tol = std::string(dtype) == "f64" ? 1e-12 : 1e-5;
          HostTensor want(dtype, {3, 5});
          want.values = p;
          expectNear(tensors["p"], want, tol, tol, "param p");
          if (c.numStates >= 1) {
            want.values = s1;
            expectNear(tensors["p.s1"], want, tol, tol, "state p.s1");
          }
          if (c.numStates >= 2) {
            want.values = s2;
            expectNear(tensors["p.s2"], want, tol, tol, "state p.s2");
          }
          HostTensor loss(dtype, {});
          loss.values[0] = mse / 15;
          expectNear(out["loss"], loss, tol, tol, "loss before the update");
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

    auto forward = [&] {
      return zipRef(matmulRef(t["x"], t["w"]), t["b"],
                    [](double a, double b) { return a + b; });
    };
    HostTensor p = forward();
    double mse = 0;
    HostTensor d = zipRef(p, t["y"], [](double a, double b) { return a - b; });
    for (double v : d.values)
      mse += v * v;
    mse /= 8;
    Tensors eval = c.run("eval_step", t);
    expectNear(eval["loss"], scalar("f32", mse), 1e-5, 1e-6, "eval loss");
    expectNear(eval["pred"], p, 1e-5, 1e-6, "eval pred");
    expectNear(eval["cls"], argmaxRef(p, 1), 0, 0, "eval cls");
    Tensors pred = c.run("predict", t);
    expectNear(pred["cls"], argmaxRef(p, 1), 0, 0, "predict cls");

    // One SGD step on the hand-written gradient.
    HostTensor dp = mapRef(d, [](double v) { return v * 0.25; });
    HostTensor gw = matmulRef(transposeRef(t["x"], {1, 0}), dp);
    HostTensor gb = reduceRef(dp, {0}, false, Reduce::Sum);
    HostTensor w = t["w"], b = t["b"];
    for (int64_t i = 0; i < w.size(); ++i)
      w.values[i] -= 0.5 * gw.values[i];
    for (int64_t i = 0; i < b.size(); ++i)
      b.values[i] -= 0.5 * gb.values[i];
    Tensors train = c.run("train_step", t);
    expectNear(train["loss"], scalar("f32", mse), 1e-5, 1e-6, "train loss");
    expectNear(t["w"], w, 1e-5, 1e-6, "updated w");
    expectNear(t["b"], b, 1e-5, 1e-6, "updated b");
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
