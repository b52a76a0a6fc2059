//===- Sample.cpp - The sample and reconstruct commands -------------------===//

#include "runtime/Sample.h"

#include "runtime/Checkpoint.h"
#include "runtime/Data.h"
#include "runtime/Files.h"
#include "runtime/Image.h"
#include "runtime/Text.h"
#include "runtime/Train.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

namespace kiln::rt {

namespace {

enum class OutputFormat { Png, Npy, Text };

/// The format `--output` names by its extension; no --output writes text to
/// the console.
Expected<OutputFormat> outputFormat(const std::string &path) {
  if (path.empty() || endsWith(path, ".txt"))
    return OutputFormat::Text;
  if (endsWith(path, ".png"))
    return OutputFormat::Png;
  if (endsWith(path, ".npy"))
    return OutputFormat::Npy;
  return Error::usage(fmt::format("--output '{}': write an image grid "
                                  "(FILE.png), an array (FILE.npy) or text "
                                  "(FILE.txt)",
                                  path));
}

/// The examples of one tensor (f32 or i32), collected batch by batch.
struct Collected {
  const Tensor *tensor;
  int64_t rowSize;
  std::vector<char> bytes;

  explicit Collected(const Tensor *t)
      : tensor(t), rowSize(t->numElements() / t->shape[0]) {}
  void append(int64_t rows) {
    const char *data = static_cast<const char *>(tensor->data());
    size_t rowBytes = tensor->numBytes() / size_t(tensor->shape[0]);
    bytes.insert(bytes.end(), data, data + size_t(rows) * rowBytes);
  }
  Shape rowShape() const {
    return Shape(tensor->shape.begin() + 1, tensor->shape.end());
  }
  const float *floats(int64_t row) const {
    return reinterpret_cast<const float *>(bytes.data()) + row * rowSize;
  }
  const int32_t *ints(int64_t row) const {
    return reinterpret_cast<const int32_t *>(bytes.data()) + row * rowSize;
  }
};

Error checkCount(int64_t count) {
  if (count < 1 || count > kMaxSampleCount)
    return Error::usage(fmt::format("--count must be in [1, {}], got {}",
                                    kMaxSampleCount, count));
  return Error::success();
}

/// Writes `rows` examples of `c` as an array.
Error writeArray(const std::string &path, const Collected &c, int64_t rows,
                 const Console &console) {
  Shape shape = c.tensor->shape;
  shape[0] = rows;
  if (Error e = writeNpy(path, c.tensor->type, shape, c.bytes.data()))
    return e;
  console.print("wrote {} ({} {})\n", path, dtypeName(c.tensor->type),
                formatShape(shape));
  return Error::success();
}

/// Row `row` of character ids as text, from id `first` up to the first line
/// boundary or padding (runtime/Text.h); an id outside the vocabulary is
/// U+FFFD.
std::string decodeLine(const Collected &c, int64_t row, const Vocabulary &vocab,
                       int64_t first = 0) {
  std::u32string text;
  const int32_t *ids = c.ints(row);
  for (int64_t i = first; i < c.rowSize; ++i) {
    if (ids[i] == kBoundaryId || ids[i] == kPaddingId)
      break;
    text.push_back(ids[i] >= 0 && size_t(ids[i]) < vocab.size()
                       ? vocab.chars[size_t(ids[i])]
                       : char32_t(0xFFFD));
  }
  return encodeUtf8(text);
}

/// The sources of `entry`'s inputs: --input, else the model's test data.
Expected<std::vector<DataSource>>
entrySources(const Manifest &m, const EntrySpec &entry,
             const std::vector<DataSource> &inputs) {
  Expected<std::vector<DataSource>> sources = selectSources(m, "test", inputs);
  if (!sources)
    return sources.takeError();
  std::vector<DataSource> chosen;
  for (const DataSource &s : *sources)
    if (entry.takes(contract::Role::Input, s.input))
      chosen.push_back(s);
  if (chosen.size() != entry.inputNames().size())
    return Error::usage(fmt::format("reconstruct needs --input {}=FILE (the "
                                    "model names no test data for it)",
                                    entry.inputNames().front()));
  return chosen;
}

/// Runs `entry` on the first `n` examples of `data`, batch by batch (keyed
/// as predict is), calling `collect(rows)` after each call.
void runOnExamples(Model &model, const std::string &entry, const Dataset &data,
                   int64_t n, int64_t batch,
                   const std::function<void(int64_t)> &collect) {
  std::vector<void *> dest;
  for (const InputData &d : data.inputs)
    dest.push_back(model.findInput(d.spec->name)->data());
  std::vector<int64_t> indices(static_cast<size_t>(batch));
  for (int64_t start = 0; start < n; start += batch) {
    int64_t rows = std::min(batch, n - start);
    std::iota(indices.begin(), indices.begin() + rows, start);
    data.gather(indices.data(), rows, dest);
    // The same random numbers as predict's for these examples.
    model.setNoise(uint64_t(start / batch) + 1, model.manifest().seed);
    model.run(entry);
    collect(rows);
  }
}

} // namespace

Expected<CheckpointInfo> loadParameters(Model &model,
                                        const std::string &checkpoint) {
  Expected<CheckpointInfo> info = loadCheckpoint(
      checkpoint, model.manifest(), model.params, model.state, false);
  if (!info)
    return info.takeError();
  if (Error e = checkFinite(model, checkpoint))
    return e;
  return info;
}

Expected<TextParameters> loadTextParameters(Model &model,
                                            const std::string &checkpoint) {
  Expected<CheckpointInfo> info = loadParameters(model, checkpoint);
  if (!info)
    return info.takeError();
  Expected<Vocabulary> vocab = checkpointVocabulary(checkpoint, *info);
  if (!vocab)
    return vocab.takeError();
  return TextParameters{std::move(*info), std::move(*vocab)};
}

Error runSample(Model &model, const SampleOptions &options,
                const Console &console) {
  const Manifest &m = model.manifest();
  const EntrySpec *entry = m.findEntry(contract::kSampleEntry);
  if (!entry)
    return makeError("model '{}' has no sample entry: add a 'sample {} {{ ... "
                     "}}' block to its .kiln file",
                     m.model, m.model);
  if (Error e = checkCount(options.count))
    return e;
  Expected<OutputFormat> format = outputFormat(options.output);
  if (!format)
    return format.takeError();
  // The examples: the entry's first output with a leading batch; pictures
  // are f32, lines of text i32 character ids.
  const Tensor *out = nullptr;
  for (const EntryArg &arg : entry->args)
    if (const Tensor *t = arg.role == contract::Role::Output
                              ? model.findOutput(arg.name)
                              : nullptr;
        t && !out && !t->shape.empty())
      out = t;
  if (!out)
    return makeError("the sample entry of model '{}' returns no tensor of "
                     "examples",
                     m.model);
  bool text = *format == OutputFormat::Text;
  bool png = *format == OutputFormat::Png;
  if ((text && (out->type != DType::I32 || out->shape.size() != 2)) ||
      (png && out->type != DType::F32))
    return Error::usage(fmt::format(
        "sample output '{}' is {} {}: {}", out->name, dtypeName(out->type),
        formatShape(out->shape),
        text ? "text needs rows of character ids (i32 [N, length]); write "
               "--output FILE.png or FILE.npy"
        : out->type == DType::I32
            ? "character ids; write text (--output FILE.txt, or no --output "
              "for the console) or FILE.npy"
            : "write FILE.png or FILE.npy"));
  Collected examples(out);
  std::optional<ImageShape> image;
  if (*format == OutputFormat::Png) {
    Expected<ImageShape> shape = imageShapeOf(
        examples.rowShape(), fmt::format("sample output '{}'", out->name));
    if (!shape)
      return shape.takeError();
    image = *shape;
  }
  if (!options.output.empty())
    if (Error e = checkWritableLocation(options.output, "--output"))
      return e;
  Expected<CheckpointInfo> info = loadParameters(model, options.checkpoint);
  if (!info)
    return info.takeError();
  Vocabulary vocab;
  if (text) {
    Expected<Vocabulary> saved =
        checkpointVocabulary(options.checkpoint, *info);
    if (!saved)
      return saved.takeError();
    vocab = std::move(*saved);
  }

  // Call c draws the random numbers of step c + 1 under the seed.
  int64_t perCall = out->shape[0];
  for (int64_t c = 0; c * perCall < options.count; ++c) {
    model.setNoise(uint64_t(c) + 1, options.seed);
    model.run(contract::kSampleEntry);
    examples.append(std::min(perCall, options.count - c * perCall));
  }
  if (*format == OutputFormat::Npy)
    return writeArray(options.output, examples, options.count, console);
  if (text) {
    std::string lines;
    for (int64_t i = 0; i < options.count; ++i)
      lines += decodeLine(examples, i, vocab) + "\n";
    if (options.output.empty()) {
      std::fputs(lines.c_str(), console.out);
      std::fflush(console.out);
      return Error::success();
    }
    if (Error e = writeFileAtomic(options.output, lines))
      return e;
    console.print("wrote {} ({} lines of '{}', seed {})\n", options.output,
                  options.count, out->name, options.seed);
    return Error::success();
  }
  auto columns = int64_t(std::ceil(std::sqrt(double(options.count))));
  if (Error e =
          ImageGrid::checkSize(*image, options.count, columns, options.scale))
    return e;
  ImageGrid grid(*image, options.count, columns, options.scale);
  for (int64_t i = 0; i < options.count; ++i)
    grid.draw(i, examples.floats(i));
  if (Error e = grid.writePng(options.output))
    return e;
  console.print("wrote {} ({} samples of '{}', {}x{} pixels, seed {})\n",
                options.output, options.count, out->name, grid.width(),
                grid.height(), options.seed);
  return Error::success();
}

namespace {

/// reconstruct for a model whose reconstruct entry reads lines and returns
/// lines (i32 character ids): each input line, then what the model made of
/// it.
Error reconstructLines(Model &model, const EntrySpec &entry,
                       const Tensor &input, const Tensor &output,
                       const ReconstructOptions &options, OutputFormat format,
                       const Console &console) {
  const Manifest &m = model.manifest();
  if (format == OutputFormat::Png)
    return Error::usage(fmt::format(
        "reconstruct output '{}' is lines of text: write them to the console "
        "(no --output), FILE.txt or FILE.npy",
        output.name));
  if (!options.output.empty())
    if (Error e = checkWritableLocation(options.output, "--output"))
      return e;
  Expected<std::vector<DataSource>> sources =
      entrySources(m, entry, options.inputs);
  if (!sources)
    return sources.takeError();
  Expected<TextParameters> loaded =
      loadTextParameters(model, options.checkpoint);
  if (!loaded)
    return loaded.takeError();
  const Vocabulary &vocab = loaded->vocab;
  // The test split: of a lines or text file, its held-out part.
  Expected<Dataset> data = loadDataset(m, *sources, "test", &vocab);
  if (!data)
    return data.takeError();
  for (const std::string &note : data->notes)
    console.note("{}", note);
  int64_t n = std::min(options.count, data->examples);
  if (n == 0)
    return makeError("the reconstruct inputs hold no examples");

  Collected lines(&input), decoded(&output);
  runOnExamples(model, entry.name, *data, n, input.shape[0], [&](int64_t rows) {
    lines.append(rows);
    decoded.append(rows);
  });
  if (format == OutputFormat::Npy)
    return writeArray(options.output, decoded, n, console);
  std::string text;
  for (int64_t i = 0; i < n; ++i)
    text += fmt::format("  {}\n> {}\n", decodeLine(lines, i, vocab, 1),
                        decodeLine(decoded, i, vocab));
  if (options.output.empty()) {
    std::fputs(text.c_str(), console.out);
    std::fflush(console.out);
    return Error::success();
  }
  if (Error e = writeFileAtomic(options.output, text))
    return e;
  console.print("wrote {} ({} lines, each with its reconstruction)\n",
                options.output, n);
  return Error::success();
}

} // namespace

Error runReconstruct(Model &model, const ReconstructOptions &options,
                     const Console &console) {
  const Manifest &m = model.manifest();
  if (Error e = checkCount(options.count))
    return e;
  // A reconstruct block of lines: text in, text out.
  if (const EntrySpec *block = m.findEntry(contract::kReconstructEntry)) {
    const Tensor *in = nullptr, *out = nullptr;
    for (const EntryArg &arg : block->args) {
      if (arg.role == contract::Role::Input && !in)
        in = model.findInput(arg.name);
      if (arg.role == contract::Role::Output && !out)
        out = model.findOutput(arg.name);
    }
    if (in && out && in->type == DType::I32 && out->type == DType::I32 &&
        in->shape.size() == 2 && out->shape.size() == 2 &&
        in->shape[0] == out->shape[0]) {
      Expected<OutputFormat> format = outputFormat(options.output);
      if (!format)
        return format.takeError();
      return reconstructLines(model, *block, *in, *out, options, *format,
                              console);
    }
  }
  if (Error e = model.requireEntry(contract::kPredictEntry))
    return e;
  if (options.output.empty())
    return Error::usage("reconstruct needs --output FILE.png (or FILE.npy)");
  Expected<OutputFormat> format = outputFormat(options.output);
  if (!format)
    return format.takeError();
  const EntrySpec *entry = m.findEntry(contract::kPredictEntry);
  int64_t batch = model.batchSize();

  // The pictures: the predict entry's f32 image inputs, then its f32 outputs
  // of the same picture size, all with a leading batch.
  std::vector<Collected> images;
  std::optional<ImageShape> image;
  auto consider = [&](const Tensor *t) {
    if (t->type != DType::F32 || t->shape.empty() || t->shape[0] != batch)
      return;
    Shape row(t->shape.begin() + 1, t->shape.end());
    Expected<ImageShape> shape = imageShapeOf(row, t->name);
    if (!shape || (image && shape->size() != image->size()))
      return;
    image = *shape;
    images.emplace_back(t);
  };
  for (const EntryArg &arg : entry->args)
    if (arg.role == contract::Role::Input)
      consider(model.findInput(arg.name));
  size_t numInputs = images.size();
  for (const EntryArg &arg : entry->args)
    if (arg.role == contract::Role::Output)
      consider(model.findOutput(arg.name));
  if (!numInputs || images.size() == numInputs)
    return makeError("model '{}' does not reconstruct images: its predict "
                     "entry needs an f32 image input and an f32 output of the "
                     "same size",
                     m.model);
  if (Error e = checkWritableLocation(options.output, "--output"))
    return e;

  Expected<std::vector<DataSource>> sources =
      entrySources(m, *entry, options.inputs);
  if (!sources)
    return sources.takeError();
  Expected<CheckpointInfo> info = loadParameters(model, options.checkpoint);
  if (!info)
    return info.takeError();
  Expected<Dataset> data = loadDataset(m, *sources, "test");
  if (!data)
    return data.takeError();
  int64_t n = std::min(options.count, data->examples);
  if (n == 0)
    return makeError("the reconstruct inputs hold no examples");
  runOnExamples(model, entry->name, *data, n, batch, [&](int64_t rows) {
    for (Collected &c : images)
      c.append(rows);
  });
  if (*format == OutputFormat::Npy)
    return writeArray(options.output, images[numInputs], n, console);

  // Each example's pictures side by side, up to 8 examples a row.
  auto perExample = int64_t(images.size());
  int64_t perRow = std::min<int64_t>(8, n);
  int64_t gridRows = (n + perRow - 1) / perRow;
  if (Error e = ImageGrid::checkSize(*image, gridRows * perRow * perExample,
                                     perRow * perExample, options.scale))
    return e;
  ImageGrid grid(*image, gridRows * perRow * perExample, perRow * perExample,
                 options.scale);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < perExample; ++k)
      grid.draw((i / perRow) * perRow * perExample + (i % perRow) * perExample +
                    k,
                images[size_t(k)].floats(i));
  if (Error e = grid.writePng(options.output))
    return e;
  std::vector<std::string> names;
  for (const Collected &c : images)
    names.push_back(c.tensor->name);
  console.print("wrote {} ({} examples, each as {}; {}x{} pixels)\n",
                options.output, n, fmt::join(names, " | "), grid.width(),
                grid.height());
  return Error::success();
}

} // namespace kiln::rt
