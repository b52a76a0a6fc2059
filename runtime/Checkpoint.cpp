//===- Checkpoint.cpp - Parameters and optimizer state as safetensors ---===//

#include "runtime/Checkpoint.h"

#include "runtime/Files.h"
#include "runtime/Json.h"

#include <algorithm>
#include <cstring>

namespace kiln::rt {

namespace {

/// safetensors caps headers at 100 MB; so do we.
constexpr uint64_t maxHeaderSize = 100'000'000;

size_t safetensorsDTypeSize(const std::string &dtype) {
  static const std::pair<const char *, size_t> sizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8},
  };
  for (const auto &[name, size] : sizes)
    if (dtype == name)
      return size;
  return 0;
}

bool hostIsLittleEndian() {
  uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

std::string describeEntry(const SafetensorsEntry &e) {
  std::optional<DType> t = parseSafetensorsDType(e.dtype);
  return fmt::format("{} {}", t ? dtypeName(*t) : e.dtype.c_str(),
                     formatShape(e.shape));
}

} // namespace

const SafetensorsEntry *SafetensorsFile::find(const std::string &name) const {
  for (const SafetensorsEntry &e : entries)
    if (e.name == name)
      return &e;
  return nullptr;
}

const std::string *SafetensorsFile::findMetadata(const std::string &key) const {
  for (const auto &[k, v] : metadata)
    if (k == key)
      return &v;
  return nullptr;
}

Expected<SafetensorsFile> readSafetensors(const std::string &path) {
  SafetensorsFile f;
  Expected<std::string> bytes = readFile(path);
  if (!bytes)
    return bytes.takeError();
  f.bytes = std::move(*bytes);
  const std::string &b = f.bytes;
  if (b.size() < 8)
    return makeError("'{}' is not a checkpoint (safetensors) file: only {} "
                     "bytes",
                     path, b.size());
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = headerSize << 8 | (unsigned char)b[size_t(i)];
  if (headerSize > maxHeaderSize)
    return makeError("'{}' is not a checkpoint (safetensors) file: header "
                     "length {} is implausible",
                     path, headerSize);
  if (headerSize > b.size() - 8)
    return makeError("'{}' is truncated or not a checkpoint: its header "
                     "length is {} bytes, the file has {} after it",
                     path, headerSize, b.size() - 8);
  f.dataStart = 8 + size_t(headerSize);
  std::string_view headerText(b.data() + 8, size_t(headerSize));
  Expected<JsonValue> header = parseJson(headerText);
  if (!header)
    return makeError("'{}' is not a valid checkpoint: bad header JSON ({})",
                     path, header.error().message());
  if (header->kind != JsonValue::Object)
    return makeError("'{}' is not a valid checkpoint: the header is not a "
                     "JSON object",
                     path);
  uint64_t dataSize = b.size() - f.dataStart;
  for (const auto &member : header->members) {
    const std::string &name = member.first;
    const JsonValue &info = member.second;
    if (name == "__metadata__") {
      if (info.kind != JsonValue::Object)
        return makeError("'{}': __metadata__ is not an object", path);
      for (const auto &[k, v] : info.members) {
        if (v.kind != JsonValue::String)
          return makeError("'{}': __metadata__ value '{}' is not a string",
                           path, k);
        f.metadata.emplace_back(k, v.text);
      }
      continue;
    }
    auto bad = [&](const char *what) {
      return makeError("'{}' is not a valid checkpoint: tensor '{}' {}", path,
                       name, what);
    };
    if (info.kind != JsonValue::Object)
      return bad("is not described by an object");
    const JsonValue *dtype = info.find("dtype");
    const JsonValue *shape = info.find("shape");
    const JsonValue *offsets = info.find("data_offsets");
    if (!dtype || dtype->kind != JsonValue::String)
      return bad("has no string 'dtype'");
    if (!shape || shape->kind != JsonValue::Array)
      return bad("has no 'shape' array");
    if (!offsets || offsets->kind != JsonValue::Array ||
        offsets->elements.size() != 2)
      return bad("has no 'data_offsets' pair");
    SafetensorsEntry e;
    e.name = name;
    e.dtype = dtype->text;
    size_t elemSize = safetensorsDTypeSize(e.dtype);
    if (!elemSize)
      return makeError("'{}': tensor '{}' has unknown dtype '{}'", path, name,
                       e.dtype);
    int64_t bytesNeeded = int64_t(elemSize);
    for (const JsonValue &d : shape->elements) {
      std::optional<uint64_t> v = d.asUInt();
      if (!v || *v > uint64_t(INT64_MAX) ||
          !checkedMul(bytesNeeded, int64_t(*v), bytesNeeded))
        return bad("has a bad shape");
      e.shape.push_back(int64_t(*v));
    }
    std::optional<uint64_t> begin = offsets->elements[0].asUInt();
    std::optional<uint64_t> end = offsets->elements[1].asUInt();
    if (!begin || !end || *begin > *end)
      return bad("has bad data_offsets");
    e.begin = *begin;
    e.end = *end;
    if (e.end - e.begin != uint64_t(bytesNeeded))
      return makeError("'{}' is not a valid checkpoint: tensor '{}' ({} {}) "
                       "needs {} bytes, its data_offsets [{}, {}) hold {}",
                       path, name, e.dtype, formatShape(e.shape), bytesNeeded,
                       e.begin, e.end, e.end - e.begin);
    if (e.end > dataSize)
      return makeError("'{}' is truncated: tensor '{}' needs bytes [{}, {}) "
                       "of data, the file has {}",
                       path, name, e.begin, e.end, dataSize);
    f.entries.push_back(std::move(e));
  }
  std::vector<const SafetensorsEntry *> sorted;
  for (const SafetensorsEntry &e : f.entries)
    sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const SafetensorsEntry *a, const SafetensorsEntry *b) {
              return a->begin < b->begin;
            });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end)
      return makeError("'{}' is not a valid checkpoint: the data of tensors "
                       "'{}' and '{}' overlap",
                       path, sorted[i - 1]->name, sorted[i]->name);
  return f;
}

Error writeSafetensors(
    const std::string &path, const std::vector<const Tensor *> &tensors,
    const std::vector<std::pair<std::string, std::string>> &metadata) {
  if (!hostIsLittleEndian())
    return makeError("cannot write '{}': big-endian hosts are not supported",
                     path);
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i)
      header +=
          fmt::format("{}{}:{}", i ? "," : "", jsonQuote(metadata[i].first),
                      jsonQuote(metadata[i].second));
    header += "}";
  }
  uint64_t offset = 0;
  for (const Tensor *t : tensors) {
    std::string dims;
    for (size_t i = 0; i < t->shape.size(); ++i)
      dims += fmt::format("{}{}", i ? "," : "", t->shape[i]);
    header += fmt::format(
        "{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
        header.size() > 1 ? "," : "", jsonQuote(t->name),
        safetensorsName(t->type), dims, offset, offset + t->numBytes());
    offset += t->numBytes();
  }
  header += "}";
  // Pad with spaces so that the data starts 8-byte aligned.
  header.append((8 - header.size() % 8) % 8, ' ');
  char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = char((uint64_t(header.size()) >> (8 * i)) & 0xFF);

  AtomicFile file;
  if (Error e = file.open(path))
    return e;
  if (Error e = file.write(length, 8))
    return e;
  if (Error e = file.write(header))
    return e;
  for (const Tensor *t : tensors)
    if (Error e = file.write(t->data(), t->numBytes()))
      return e;
  return file.commit();
}

Error writeCheckpoint(const std::string &path, const Manifest &manifest,
                      const std::vector<Tensor> &params,
                      const std::vector<Tensor> &state, uint64_t step,
                      const std::string &vocab, const std::string &classes,
                      uint64_t batch) {
  std::vector<const Tensor *> tensors;
  for (const Tensor &t : params)
    tensors.push_back(&t);
  for (const Tensor &t : state)
    tensors.push_back(&t);
  std::vector<std::pair<std::string, std::string>> metadata = {
      {"kiln.format", "1"},
      {"kiln.model", manifest.model},
      {"kiln.step", fmt::format("{}", step)}};
  if (batch)
    metadata.push_back({"kiln.batch", fmt::format("{}", batch)});
  if (!vocab.empty())
    metadata.push_back({"kiln.vocab", vocab});
  if (!classes.empty())
    metadata.push_back({"kiln.classes", classes});
  return writeSafetensors(path, tensors, metadata);
}

Expected<CheckpointInfo> loadCheckpoint(const std::string &path,
                                        const Manifest &manifest,
                                        std::vector<Tensor> &params,
                                        std::vector<Tensor> &state,
                                        bool requireState) {
  Expected<SafetensorsFile> file = readSafetensors(path);
  if (!file)
    return file.takeError();
  CheckpointInfo info;
  if (const std::string *format = file->findMetadata("kiln.format"))
    if (*format != "1")
      return makeError("'{}' has checkpoint format {}; this runtime reads "
                       "format 1",
                       path, *format);
  if (const std::string *model = file->findMetadata("kiln.model"))
    info.model = *model;
  if (const std::string *vocab = file->findMetadata("kiln.vocab"))
    info.vocab = *vocab;
  if (const std::string *classes = file->findMetadata("kiln.classes"))
    info.classes = *classes;
  if (const std::string *step = file->findMetadata("kiln.step")) {
    std::optional<uint64_t> s = parseUInt(*step);
    if (!s || *s > uint64_t(INT64_MAX))
      return makeError("'{}': bad kiln.step '{}' in the metadata", path, *step);
    info.step = *s;
  }
  if (const std::string *batch = file->findMetadata("kiln.batch")) {
    std::optional<uint64_t> b = parseUInt(*batch);
    if (!b || *b == 0 || *b > uint64_t(INT32_MAX))
      return makeError("'{}': bad kiln.batch '{}' in the metadata", path,
                       *batch);
    info.batch = *b;
  }
  std::string origin =
      info.model.empty()
          ? std::string()
          : fmt::format(" (it was written by model '{}')", info.model);

  auto match = [&](const TensorSpec &spec, const char *kind,
                   bool required) -> Expected<const SafetensorsEntry *> {
    const SafetensorsEntry *e = file->find(spec.name);
    if (!e) {
      if (!required)
        return nullptr;
      return makeError("'{}' has no tensor '{}' ({} {} of model '{}'){}", path,
                       spec.name, kind, spec.describe(), manifest.model,
                       origin);
    }
    std::optional<DType> type = parseSafetensorsDType(e->dtype);
    if (!type || *type != spec.type || e->shape != spec.shape)
      return makeError("'{}': tensor '{}' is {}, but {} '{}' of model '{}' is "
                       "{}{}",
                       path, spec.name, describeEntry(*e), kind, spec.name,
                       manifest.model, spec.describe(), origin);
    return e;
  };

  std::vector<std::pair<const SafetensorsEntry *, Tensor *>> copies;
  for (size_t i = 0; i < manifest.params.size(); ++i) {
    Expected<const SafetensorsEntry *> e =
        match(manifest.params[i], "parameter", true);
    if (!e)
      return e.takeError();
    copies.emplace_back(*e, &params[i]);
  }
  size_t stateFound = 0;
  for (const TensorSpec &spec : manifest.state)
    if (file->find(spec.name))
      ++stateFound;
  // A checkpoint has all of the optimizer state or none of it (a params-only
  // file exported by another tool is fine for eval and predict).
  bool needState = requireState || stateFound > 0;
  for (size_t i = 0; i < manifest.state.size(); ++i) {
    Expected<const SafetensorsEntry *> e =
        match(manifest.state[i], "optimizer state", needState);
    if (!e)
      return e.takeError();
    if (*e)
      copies.emplace_back(*e, &state[i]);
  }
  info.hasState = !manifest.state.empty() && stateFound > 0;
  for (const SafetensorsEntry &e : file->entries) {
    bool known = false;
    for (const auto &c : copies)
      known |= c.first == &e;
    if (!known)
      return makeError("'{}' has tensor '{}' ({}), which model '{}' does not "
                       "have; is it a checkpoint of another model?{}",
                       path, e.name, describeEntry(e), manifest.model, origin);
  }
  // Validated: only now overwrite the tensors.
  for (const auto &[entry, tensor] : copies)
    std::memcpy(tensor->data(), file->data(*entry), tensor->numBytes());
  return info;
}

Expected<Vocabulary> checkpointVocabulary(const std::string &checkpoint,
                                          const CheckpointInfo &info) {
  Expected<Vocabulary> saved = Vocabulary::fromUtf8(info.vocab);
  if (!saved)
    return makeError("'{}': {}", checkpoint, saved.error().message());
  if (saved->chars.empty())
    return makeError("'{}' holds no vocabulary (kiln.vocab): it was not "
                     "written by training on text, so its ids mean no "
                     "characters",
                     checkpoint);
  return saved;
}

Expected<ClassNames> checkpointClasses(const std::string &checkpoint,
                                       const CheckpointInfo &info) {
  Expected<ClassNames> saved = ClassNames::fromUtf8(info.classes);
  if (!saved)
    return makeError("'{}': {}", checkpoint, saved.error().message());
  return saved;
}

} // namespace kiln::rt
