//===- Model.cpp - A compiled model: its manifest, entry points, tensors -===//

#include "runtime/Model.h"

#include "runtime/Init.h"
#include "runtime/KilnABI.h"

#include <cassert>
#include <cmath>
#include <cstring>

namespace kiln::rt {

/// The tensor of `tensors` named `name`, or nullptr.
static Tensor *findTensor(std::vector<Tensor> &tensors,
                          const std::string &name) {
  for (Tensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

Expected<Manifest> Model::readManifest(const ModelAbi &abi) {
  if (!abi.manifest)
    return makeError("the model object has no manifest");
  Expected<Manifest> manifest = parseManifest(abi.manifest);
  if (!manifest)
    return makeError("the compiled model's manifest is invalid (rebuild the "
                     "model with a kilnc matching this runtime): {}",
                     manifest.error().message());
  return manifest;
}

Expected<Model> Model::create(const ModelAbi &abi) {
  Expected<Manifest> manifest = readManifest(abi);
  if (!manifest)
    return manifest.takeError();
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
  for (const TensorSpec &s : m.manifest_.carries)
    m.carries.emplace_back(s.name, s.type, s.shape);
  for (const TensorSpec &s : m.manifest_.terms)
    m.terms.emplace_back(s.name, s.type, s.shape);
  m.hyper_ = Buffer(contract::kHyperCount * sizeof(float));
  // The loss is a scalar f32; room for an f64 costs nothing.
  m.loss_ = Buffer(16);

  // Bind every entry's buffers once; the tensors never move.
  if (!abi.entries)
    return makeError("the model object has no entry table");
  const std::vector<EntrySpec> &entries = m.manifest_.entries;
  for (size_t i = 0; i < entries.size(); ++i)
    if (!abi.entries[i])
      return makeError("the model object's entry table has {} entries, its "
                       "manifest {} (rebuild the model)",
                       i, entries.size());
  if (abi.entries[entries.size()])
    return makeError("the model object's entry table has more entries than "
                     "its manifest's {} (rebuild the model)",
                     entries.size());
  auto find = [](std::vector<Tensor> &ts, const std::string &name) {
    return findTensor(ts, name)->data(); // the parser checked every name
  };
  for (const EntrySpec &entry : entries) {
    std::vector<void *> buffers;
    for (const EntryArg &arg : entry.args) {
      switch (arg.role) {
      case contract::Role::Param:
        buffers.push_back(find(m.params, arg.name));
        break;
      case contract::Role::State:
        buffers.push_back(find(m.state, arg.name));
        break;
      case contract::Role::Input:
        buffers.push_back(find(m.inputs, arg.name));
        break;
      case contract::Role::Output:
        buffers.push_back(find(m.outputs, arg.name));
        break;
      case contract::Role::Carry:
        buffers.push_back(find(m.carries, arg.name));
        break;
      case contract::Role::Term:
        buffers.push_back(find(m.terms, arg.name));
        break;
      case contract::Role::Hyper:
        buffers.push_back(m.hyper_.data());
        break;
      case contract::Role::Loss:
        buffers.push_back(m.loss_.data());
        break;
      }
    }
    m.buffers_.push_back(std::move(buffers));
  }
  return m;
}

void Model::resetCarries() {
  for (Tensor &c : carries)
    std::memset(c.data(), 0, c.numBytes());
}

void Model::initialize(uint64_t seed) {
  for (size_t i = 0; i < params.size(); ++i) {
    Rng rng(seed, "init:" + params[i].name);
    initializeParam(manifest_.params[i], params[i], rng);
  }
  for (Tensor &s : state)
    std::memset(s.data(), 0, s.numBytes());
  resetCarries();
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
  return findTensor(inputs, name);
}

Tensor *Model::findOutput(const std::string &name) {
  return findTensor(outputs, name);
}

double Model::readLoss() const { return double(loss_.as<float>()[0]); }

Error Model::requireEntry(std::string_view name) const {
  if (manifest_.findEntryIndex(name) >= 0)
    return Error::success();
  return makeError("model '{}' has no {} entry", manifest_.model, name);
}

void Model::call(size_t entry) { abi_.entries[entry](buffers_[entry].data()); }

void Model::run(std::string_view name) {
  int entry = manifest_.findEntryIndex(name);
  assert(entry >= 0 && "no such entry");
  call(size_t(entry));
}

void Model::setHyper(double lr, uint64_t step, uint64_t seed, uint64_t shard) {
  float *hyper = hyper_.as<float>();
  std::memset(hyper, 0, contract::kHyperCount * sizeof(float));
  hyper[KILN_HYPER_LR] = float(lr);
  hyper[KILN_HYPER_STEP] = float(step);
  hyper[KILN_HYPER_SEED] = float(seed % (uint64_t(1) << 24));
  hyper[KILN_HYPER_SHARD] = float(shard);
}

void Model::setNoise(uint64_t call, uint64_t seed) { setHyper(0, call, seed); }

double Model::trainStep(double lr, uint64_t step, uint64_t seed,
                        uint64_t shard) {
  setHyper(lr, step, seed, shard);
  run(contract::kTrainStepEntry);
  return readLoss();
}

double Model::evalStep() {
  run(contract::kEvalStepEntry);
  return readLoss();
}

void Model::predict() { run(contract::kPredictEntry); }

} // namespace kiln::rt
