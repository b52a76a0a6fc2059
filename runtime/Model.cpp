//===- Model.cpp - A compiled model: its manifest, entry points, tensors -===//

#include "runtime/Model.h"

#include "runtime/Init.h"
#include "runtime/KilnABI.h"

#include <cmath>
#include <cstring>

namespace kiln::rt {

Expected<Model> Model::create(const ModelAbi &abi) {
  if (!abi.manifest)
    return makeError("the model object has no manifest");
  Expected<Manifest> manifest = parseManifest(abi.manifest);
  if (!manifest)
    return makeError("the compiled model's manifest is invalid (rebuild the "
                     "model with a kilnc matching this runtime): {}",
                     manifest.error().message());
  Model m;
  m.abi_ = abi;
  m.manifest_ = std::move(*manifest);
  for (const ParamSpec &p : m.manifest_.params)
    m.params.emplace_back(p.name, p.type, p.shape);
  for (const TensorSpec &s : m.manifest_.state)
    m.state.emplace_back(s.name, s.type, s.shape);
  for (const TensorSpec &s : m.manifest_.inputs)
    m.inputs.emplace_back(s.name, s.type, s.shape);
  for (const TensorSpec &s : m.manifest_.outputs)
    m.outputs.emplace_back(s.name, s.type, s.shape);
  m.hyper_ = Buffer(KILN_HYPER_COUNT * sizeof(float));
  // The loss is a scalar f32; room for an f64 costs nothing.
  m.loss_ = Buffer(16);
  return m;
}

void Model::initialize(uint64_t seed) {
  for (size_t i = 0; i < params.size(); ++i) {
    Rng rng(seed, "init:" + params[i].name);
    initializeParam(manifest_.params[i], params[i], rng);
  }
  for (Tensor &s : state)
    std::memset(s.data(), 0, s.numBytes());
}

std::string Model::firstNonFinite() const {
  for (const auto *group : {&params, &state})
    for (const Tensor &t : *group) {
      if (!isFloat(t.type))
        continue;
      int64_t n = t.numElements();
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(t.at(i)))
          return t.name;
    }
  return {};
}

Tensor *Model::findInput(const std::string &name) {
  for (Tensor &t : inputs)
    if (t.name == name)
      return &t;
  return nullptr;
}

Tensor *Model::findOutput(const std::string &name) {
  for (Tensor &t : outputs)
    if (t.name == name)
      return &t;
  return nullptr;
}

double Model::readLoss() const { return double(loss_.as<float>()[0]); }

double Model::trainStep(double lr, uint64_t step, uint64_t seed) {
  float *hyper = hyper_.as<float>();
  std::memset(hyper, 0, KILN_HYPER_COUNT * sizeof(float));
  hyper[KILN_HYPER_LR] = float(lr);
  hyper[KILN_HYPER_STEP] = float(step);
  hyper[KILN_HYPER_SEED] = float(seed % (uint64_t(1) << 24));
  std::vector<void *> buffers;
  for (Tensor &t : params)
    buffers.push_back(t.data());
  for (Tensor &t : state)
    buffers.push_back(t.data());
  for (Tensor &t : inputs)
    buffers.push_back(t.data());
  buffers.push_back(hyper_.data());
  buffers.push_back(loss_.data());
  abi_.trainStep(buffers.data());
  return readLoss();
}

double Model::evalStep() {
  std::vector<void *> buffers;
  for (Tensor &t : params)
    buffers.push_back(t.data());
  for (Tensor &t : inputs)
    buffers.push_back(t.data());
  buffers.push_back(loss_.data());
  for (Tensor &t : outputs)
    buffers.push_back(t.data());
  abi_.evalStep(buffers.data());
  return readLoss();
}

void Model::predict() {
  std::vector<void *> buffers;
  for (Tensor &t : params)
    buffers.push_back(t.data());
  for (const std::string &name : manifest_.predictInputs)
    buffers.push_back(findInput(name)->data());
  for (Tensor &t : outputs)
    buffers.push_back(t.data());
  abi_.predict(buffers.data());
}

} // namespace kiln::rt
