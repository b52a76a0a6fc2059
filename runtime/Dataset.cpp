//===- Dataset.cpp - Model inputs loaded from data files ---------------===//

#include "runtime/Dataset.h"

#include "runtime/Files.h"
#include "runtime/Wav.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln::rt {

contract::DataFormat formatFromPath(const std::string &path) {
  using contract::DataFormat;
  std::string p = path;
  if (endsWith(p, ".gz"))
    p.resize(p.size() - 3);
  if (endsWith(p, ".npy"))
    return DataFormat::Npy;
  if (endsWith(path, ".npz"))
    return DataFormat::Npz;
  if (endsWith(p, ".csv"))
    return DataFormat::Csv;
  if (endsWith(p, ".txt"))
    return DataFormat::Text;
  if (endsWith(p, ".tsv"))
    return DataFormat::Pairs;
  if (endsWith(path, ".wav"))
    return DataFormat::Wav;
  return DataFormat::Idx;
}

namespace {

/// Splits `file.npz:key` into the path and the key.
void splitNpzKey(std::string &path, std::string &key) {
  size_t colon = path.rfind(':');
  if (colon != std::string::npos &&
      endsWith(std::string_view(path).substr(0, colon), ".npz")) {
    key = path.substr(colon + 1);
    path.resize(colon);
  }
}

} // namespace

DataSource sourceFromPath(const std::string &input, const std::string &path) {
  DataSource s;
  s.input = input;
  s.path = path;
  splitNpzKey(s.path, s.key);
  s.format = formatFromPath(s.path);
  return s;
}

DataSource sourceFromSpec(const DataSpec &spec) {
  DataSource s;
  s.input = spec.input;
  s.path = spec.path;
  s.format = spec.format;
  s.options = spec.options;
  splitNpzKey(s.path, s.key);
  if (s.format == contract::DataFormat::Npy && endsWith(s.path, ".npz"))
    s.format = contract::DataFormat::Npz;
  return s;
}

void adoptSpec(DataSource &source, const DataSpec &spec) {
  using contract::DataFormat;
  if ((spec.format == DataFormat::Lines && source.format == DataFormat::Text) ||
      (spec.format == DataFormat::Wav && source.format == DataFormat::Pairs))
    source.format = spec.format;
  if (sourceFromSpec(spec).format == source.format)
    source.options = spec.options;
}

Expected<InputData> convertArray(const Array &array, const TensorSpec &input,
                                 const std::string &file,
                                 std::optional<double> scale) {
  InputData d;
  d.spec = &input;
  d.file = file;
  Shape exampleShape(input.shape.begin() + 1, input.shape.end());
  d.exampleElements = numElements(exampleShape);
  d.exampleBytes = size_t(d.exampleElements) * dtypeSize(input.type);
  if (array.shape.empty())
    return makeError("'{}' holds a single value; expected one example per "
                     "row for input '{}' ({})",
                     file, input.name, input.describe());
  Shape fileExample(array.shape.begin() + 1, array.shape.end());
  int64_t fileElements = numElements(fileExample);
  if (fileElements != d.exampleElements) {
    auto describe = [](const Shape &shape) {
      int64_t n = numElements(shape);
      if (shape.empty())
        return std::string("single values");
      if (shape.size() == 1)
        return fmt::format("{} values", n);
      return fmt::format("{} ({} values)", formatShape(shape), n);
    };
    return makeError("'{}' does not fit input '{}' ({}): its examples are {}, "
                     "the input's are {}",
                     file, input.name, input.describe(), describe(fileExample),
                     describe(exampleShape));
  }
  int64_t n = array.numElements();
  if (scale && input.type == DType::I32)
    return makeError("scale={} is given for input '{}', which is i32 (scale "
                     "applies to float inputs)",
                     *scale, input.name);
  d.bytes.resize(size_t(n) * dtypeSize(input.type));
  auto where = [&](int64_t i) {
    return fmt::format("example {}{}", i / std::max<int64_t>(fileElements, 1),
                       fileElements > 1
                           ? fmt::format(", value {}", i % fileElements)
                           : std::string());
  };
  if (input.type == DType::I32) {
    auto *out = reinterpret_cast<int32_t *>(d.bytes.data());
    bool floatSource = isFloatElem(array.type);
    for (int64_t i = 0; i < n; ++i) {
      if (floatSource) {
        double v = array.get(i);
        if (!(v == std::floor(v)) || v < INT32_MIN || v > INT32_MAX)
          return makeError("'{}' {}: {} is not an integer that fits i32 "
                           "(input '{}' is {})",
                           file, where(i), v, input.name, input.describe());
        out[i] = int32_t(v);
      } else {
        int64_t v = array.getInt(i);
        if (v < INT32_MIN || v > INT32_MAX)
          return makeError("'{}' {}: {} does not fit i32 (input '{}' is {})",
                           file, where(i), v, input.name, input.describe());
        out[i] = int32_t(v);
      }
    }
  } else {
    double s = scale.value_or(1.0);
    for (int64_t i = 0; i < n; ++i) {
      double v = array.get(i) * s;
      if (!std::isfinite(v) ||
          (input.type == DType::F32 && !std::isfinite(float(v))))
        return makeError("'{}' {}: value {} is not a finite {} number (input "
                         "'{}')",
                         file, where(i), v, dtypeName(input.type), input.name);
      if (input.type == DType::F32)
        reinterpret_cast<float *>(d.bytes.data())[i] = float(v);
      else
        reinterpret_cast<double *>(d.bytes.data())[i] = v;
    }
  }
  return d;
}

namespace {

/// A text or lines source's held_out option (default 0.05).
Expected<double> heldOutOption(const DataSource &source,
                               const std::string &what) {
  double heldOut = 0.05;
  for (const auto &[key, value] : source.options) {
    if (key != "held_out")
      continue;
    std::optional<double> h = parseDouble(value);
    if (!h)
      return makeError("{}: held_out={} is not a number", what, value);
    heldOut = *h;
  }
  return heldOut;
}

/// An error if `input` holds class indices (a `labels` record) too few for
/// `vocab`: `source` names where the vocabulary comes from, `aside` what it
/// holds besides the text's characters.
Error checkClasses(const Manifest &manifest, const TensorSpec &input,
                   const Vocabulary &vocab, const std::string &what,
                   const char *source, const char *aside) {
  for (const LabelSpec &label : manifest.labels)
    if (label.input == input.name && int64_t(vocab.size()) > label.classes)
      return makeError("{}: the {} has {} distinct characters{}, more than "
                       "the {} classes of input '{}'",
                       what, source, vocab.size(), aside, label.classes,
                       input.name);
  return Error::success();
}

/// An empty InputData for an i32 input [B, L] of token ids read from `path`.
InputData idRows(const TensorSpec &input, const std::string &path) {
  InputData d;
  d.spec = &input;
  d.file = path;
  d.exampleElements = input.shape[1];
  d.exampleBytes = size_t(input.shape[1]) * sizeof(int32_t);
  d.characterIds = true;
  return d;
}

/// A text source for an i32 input [B, L]: windows of L character ids.
Expected<InputData> loadText(const Manifest &manifest, const DataSource &source,
                             const TensorSpec &input, const std::string &path,
                             const std::string &split, const std::string &what,
                             const Vocabulary *known, Vocabulary &vocab) {
  if (input.type != DType::I32 || input.shape.size() != 2 || input.shape[1] < 2)
    return makeError("{}: a text feeds an i32 input [batch, length >= 2] of "
                     "character ids, but '{}' is {}",
                     what, input.name, input.describe());
  Expected<double> heldOut = heldOutOption(source, what);
  if (!heldOut)
    return heldOut.takeError();
  Expected<TextSplit> text = readTextSplit(path, *heldOut);
  if (!text)
    return makeError("{}: {}", what, text.error().message());
  if (known)
    text->vocab = *known;
  if (Error e =
          checkClasses(manifest, input, text->vocab, what,
                       known ? "checkpoint's vocabulary" : "training text", ""))
    return e;
  bool test = split == "test";
  Expected<std::vector<int32_t>> ids = encodeText(
      test ? text->test : text->train, text->vocab,
      fmt::format("'{}' ({} part)", path, test ? "held-out" : "training"));
  if (!ids)
    return makeError("{}: {}", what, ids.error().message());
  int64_t length = input.shape[1];
  int64_t windows = (int64_t(ids->size()) - 1) / (length - 1);
  if (windows < 1)
    return makeError("{}: the {} part of '{}' has {} characters, fewer than "
                     "one window of {} (input '{}' is {})",
                     what, test ? "held-out" : "training", path, ids->size(),
                     length, input.name, input.describe());
  InputData d = idRows(input, path);
  d.bytes.resize(size_t(windows) * d.exampleBytes);
  auto *out = reinterpret_cast<int32_t *>(d.bytes.data());
  for (int64_t w = 0; w < windows; ++w)
    std::memcpy(out + w * length, ids->data() + w * (length - 1),
                d.exampleBytes);
  vocab = std::move(text->vocab);
  return d;
}

/// A `lines` source for an i32 input [B, L]: one line an example,
/// `boundary ids... boundary padding...` (runtime/Text.h).
Expected<InputData> loadLines(const Manifest &manifest,
                              const DataSource &source, const TensorSpec &input,
                              const std::string &path, const std::string &split,
                              const std::string &what, const Vocabulary *known,
                              Dataset &ds) {
  if (input.type != DType::I32 || input.shape.size() != 2 || input.shape[1] < 3)
    return makeError("{}: lines feed an i32 input [batch, length >= 3] of "
                     "character ids, but '{}' is {}",
                     what, input.name, input.describe());
  Expected<double> heldOut = heldOutOption(source, what);
  if (!heldOut)
    return heldOut.takeError();
  Expected<LineSplit> lines = readLineSplit(path, *heldOut);
  if (!lines)
    return makeError("{}: {}", what, lines.error().message());
  if (known)
    lines->vocab = *known;
  if (Error e =
          checkClasses(manifest, input, lines->vocab, what,
                       known ? "checkpoint's vocabulary" : "training lines",
                       " (with padding and the line boundary)"))
    return e;
  bool test = split == "test";
  const std::vector<std::u32string> &part = test ? lines->test : lines->train;
  int64_t length = input.shape[1];
  InputData d = idRows(input, path);
  std::vector<int32_t> row(static_cast<size_t>(length));
  size_t kept = 0;
  for (size_t i = 0; i < part.size(); ++i) {
    Expected<bool> fits =
        encodeLine(part[i], lines->vocab,
                   fmt::format("'{}' ({} line {})", path,
                               test ? "held-out" : "training", i + 1),
                   row.data(), length);
    if (!fits)
      return makeError("{}: {}", what, fits.error().message());
    if (!*fits)
      continue;
    d.bytes.append(reinterpret_cast<const char *>(row.data()), d.exampleBytes);
    ++kept;
  }
  if (kept == 0)
    return makeError("{}: no {} line of '{}' fits in {} characters (input "
                     "'{}' is {})",
                     what, test ? "held-out" : "training", path, length - 2,
                     input.name, input.describe());
  if (kept < part.size())
    ds.notes.push_back(fmt::format(
        "{}: {} of the {} {} lines fit in {} characters (input '{}' is {}); "
        "the longer ones are left out",
        what, kept, part.size(), test ? "held-out" : "training", length - 2,
        input.name, input.describe()));
  ds.vocab = std::move(lines->vocab);
  return d;
}

/// A pairs source's column option (default 0).
Expected<size_t> columnOption(const DataSource &source,
                              const std::string &what) {
  size_t column = 0;
  for (const auto &[key, value] : source.options) {
    if (key != "column")
      continue;
    std::optional<double> c = parseDouble(value);
    if (!c || *c < 0 || *c != std::floor(*c) || *c > 1e6)
      return makeError("{}: column={} is not a column number (0, 1, ...)", what,
                       value);
    column = size_t(*c);
  }
  return column;
}

/// A `pairs` source: one column of a tab-separated file, a row an example
/// (runtime/Text.h), for an i32 input [B, L] (the column's text) or an i32
/// input [B] (its class names, numbered as `classes` or the file's classes
/// when not given). A row is left out when any text column that SOURCES read
/// from the same file does not fit its input, so that the inputs stay aligned
/// row for row.
Expected<InputData> loadPairs(const Manifest &manifest,
                              const DataSource &source, const TensorSpec &input,
                              const std::vector<DataSource> &sources,
                              const std::string &path, const std::string &split,
                              const std::string &what, const Vocabulary *known,
                              const ClassNames *knownClasses, Dataset &ds) {
  bool labels = input.shape.size() == 1;
  if (input.type != DType::I32 ||
      (!labels && (input.shape.size() != 2 || input.shape[1] < 3)))
    return makeError("{}: pairs feed an i32 input [batch, length >= 3] of "
                     "character ids or an i32 input [batch] of class labels, "
                     "but '{}' is {}",
                     what, input.name, input.describe());
  Expected<size_t> column = columnOption(source, what);
  if (!column)
    return column.takeError();
  Expected<PairsFile> file = readPairs(path);
  if (!file)
    return makeError("{}: {}", what, file.error().message());
  // The text columns read from this file and the characters each input holds.
  std::vector<std::pair<size_t, int64_t>> read;
  for (const DataSource &other : sources) {
    const TensorSpec *in = manifest.findInput(other.input);
    if (other.format != contract::DataFormat::Pairs ||
        other.path != source.path || !in || in->shape.empty() ||
        in->shape.size() > 2)
      continue;
    Expected<size_t> c = columnOption(other, what);
    if (!c)
      return c.takeError();
    if (*c >= file->columns)
      return makeError("{} data for input '{}': '{}' has {} columns; there "
                       "is no column {} (they count from 0)",
                       split, other.input, path, file->columns, *c);
    if (in->shape.size() == 2)
      read.emplace_back(*c, in->shape[1] - 2);
  }
  auto fits = [&](const std::vector<std::u32string> &cells) {
    return std::all_of(read.begin(), read.end(), [&](const auto &r) {
      return int64_t(cells[r.first].size()) <= r.second;
    });
  };
  auto where = [&](size_t i) {
    return fmt::format("'{}' line {}", path, i + 1);
  };

  InputData d;
  size_t kept = 0;
  if (labels) {
    ClassNames classes =
        knownClasses ? *knownClasses : ClassNames::of(*file, *column);
    for (const LabelSpec &label : manifest.labels)
      if (label.input == input.name && int64_t(classes.size()) > label.classes)
        return makeError("{}: column {} of the {} names {} classes, more "
                         "than the {} of input '{}'",
                         what, *column,
                         knownClasses ? "checkpoint's data" : "pairs file",
                         classes.size(), label.classes, input.name);
    d.spec = &input;
    d.file = path;
    d.exampleElements = 1;
    d.exampleBytes = sizeof(int32_t);
    for (size_t i = 0; i < file->rows.size(); ++i) {
      const std::vector<std::u32string> &cells = file->rows[i];
      if (!fits(cells))
        continue;
      int32_t id = classes.id(cells[*column]);
      if (id < 0)
        return makeError("{}: {}: class '{}' is not one of the {} classes "
                         "the model was trained on ({})",
                         what, where(i), encodeUtf8(cells[*column]),
                         classes.size(), classes.list());
      d.bytes.append(reinterpret_cast<const char *>(&id), sizeof id);
      ++kept;
    }
    ds.classes = std::move(classes);
  } else {
    std::vector<size_t> textColumns;
    for (const auto &r : read)
      textColumns.push_back(r.first);
    Vocabulary vocab = known ? *known : file->vocab(textColumns);
    if (Error e = checkClasses(manifest, input, vocab, what,
                               known ? "checkpoint's vocabulary" : "pairs file",
                               " (with padding and the sentence boundary)"))
      return e;
    int64_t length = input.shape[1];
    d = idRows(input, path);
    std::vector<int32_t> row(static_cast<size_t>(length));
    for (size_t i = 0; i < file->rows.size(); ++i) {
      const std::vector<std::u32string> &cells = file->rows[i];
      if (!fits(cells))
        continue;
      Expected<bool> encoded =
          encodeLine(cells[*column], vocab, where(i), row.data(), length);
      if (!encoded)
        return makeError("{}: {}", what, encoded.error().message());
      d.bytes.append(reinterpret_cast<const char *>(row.data()),
                     d.exampleBytes);
      ++kept;
    }
    ds.vocab = std::move(vocab);
  }
  if (kept == 0)
    return makeError("{}: no row of '{}' fits the inputs it feeds (input "
                     "'{}' is {})",
                     what, path, input.name, input.describe());
  // One note for the file, given with its first text column.
  if (kept < file->rows.size() && !labels && read.front().first == *column)
    ds.notes.push_back(fmt::format(
        "{} data: {} of the {} rows of '{}' fit the inputs they feed; the "
        "longer ones are left out",
        split, kept, file->rows.size(), path));
  return d;
}

/// A `wav` source for a float input [B, N]: one WAV file (a .wav path), or
/// the files column `column` of a tab-separated list names (relative to the
/// list's directory), each an example: its first N samples, zeros after a
/// shorter clip. Option rate=R: clips of another rate are resampled to R.
Expected<InputData> loadWav(const DataSource &source, const TensorSpec &input,
                            const std::string &path, const std::string &split,
                            const std::string &what, Dataset &ds) {
  if (input.type == DType::I32 || input.shape.size() != 2)
    return makeError("{}: WAV audio feeds a float input [batch, samples], "
                     "but '{}' is {}",
                     what, input.name, input.describe());
  std::optional<int64_t> rate;
  for (const auto &[key, value] : source.options)
    if (key == "rate") {
      std::optional<double> r = parseDouble(value);
      if (!r || *r < 1 || *r != std::floor(*r) || *r > 1e7)
        return makeError("{}: rate={} is not a number of samples a second",
                         what, value);
      rate = int64_t(*r);
    }
  std::vector<std::string> files;
  if (endsWith(path, ".wav")) {
    files.push_back(path);
  } else {
    Expected<size_t> column = columnOption(source, what);
    if (!column)
      return column.takeError();
    Expected<PairsFile> list = readPairs(path);
    if (!list)
      return makeError("{}: {}", what, list.error().message());
    if (*column >= list->columns)
      return makeError("{}: '{}' has {} columns; there is no column {} (they "
                       "count from 0)",
                       what, path, list->columns, *column);
    size_t slash = path.rfind('/');
    std::string dir =
        slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
    for (const std::vector<std::u32string> &row : list->rows) {
      std::string file = encodeUtf8(row[*column]);
      files.push_back(!file.empty() && file[0] == '/' ? file : dir + file);
    }
  }
  int64_t length = input.shape[1];
  InputData d;
  d.spec = &input;
  d.file = path;
  d.exampleElements = length;
  d.exampleBytes = size_t(length) * dtypeSize(input.type);
  d.bytes.resize(files.size() * d.exampleBytes);
  size_t cropped = 0, resampled = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    Expected<Audio> audio = readWav(files[i]);
    if (!audio)
      return makeError("{}: {}", what, audio.error().message());
    if (rate && audio->rate != *rate) {
      if (resampled++ == 0)
        ds.notes.push_back(fmt::format(
            "{} data: '{}' has {} samples a second; the model reads {}, so "
            "it is resampled{}",
            split, files[i], audio->rate, *rate,
            files.size() > 1 ? " (and any other clip of another rate)" : ""));
      audio->samples =
          resample(audio->samples, audio->rate, *rate, size_t(length));
    }
    size_t n = std::min(audio->samples.size(), size_t(length));
    cropped += audio->samples.size() > size_t(length);
    char *out = d.bytes.data() + i * d.exampleBytes;
    for (size_t k = 0; k < n; ++k) {
      if (input.type == DType::F32)
        reinterpret_cast<float *>(out)[k] = audio->samples[k];
      else
        reinterpret_cast<double *>(out)[k] = audio->samples[k];
    }
  }
  if (cropped)
    ds.notes.push_back(fmt::format(
        "{} data: {} of the {} clips are longer than the {} samples input "
        "'{}' reads; their first {} are read",
        split, cropped, files.size(), length, input.name, length));
  return d;
}

/// An array file (IDX, .npy, .npz, CSV) for `input`, with its options.
Expected<InputData> loadArray(const DataSource &source, const TensorSpec &input,
                              const std::string &path,
                              const std::string &what) {
  std::optional<double> scale;
  std::optional<bool> header;
  for (const auto &[key, value] : source.options) {
    if (key == "scale") {
      scale = parseDouble(value);
      if (!scale || !std::isfinite(*scale))
        return makeError("{}: scale={} is not a number", what, value);
    } else if (key == "header") {
      if (value == "true" || value == "1")
        header = true;
      else if (value == "false" || value == "0")
        header = false;
      else
        return makeError("{}: header={} is not true or false", what, value);
    }
    // Other options are for other formats or later runtimes.
  }
  Expected<Array> array = Error::failure("unreachable");
  if (source.format == contract::DataFormat::Idx)
    array = readIdx(path);
  else if (source.format == contract::DataFormat::Npy)
    array = readNpy(path);
  else if (source.format == contract::DataFormat::Npz)
    array = readNpz(path, source.key);
  else if (source.format == contract::DataFormat::Csv)
    array = readCsv(path, header);
  else
    return makeError("{}: {} is not an array format", what,
                     contract::info(source.format).name);
  if (!array)
    return array.takeError();
  return convertArray(*array, input, path, scale);
}

} // namespace

Expected<Dataset> loadDataset(const Manifest &manifest,
                              const std::vector<DataSource> &sources,
                              const std::string &split, const Vocabulary *vocab,
                              const ClassNames *classes) {
  Dataset ds;
  const InputData *first = nullptr;
  for (const DataSource &source : sources) {
    const TensorSpec *input = manifest.findInput(source.input);
    if (!input)
      return makeError("{} data: the model has no input '{}'", split,
                       source.input);
    std::string what =
        fmt::format("{} data for input '{}'", split, source.input);
    Expected<std::string> path = resolveDataPath(
        source.path, source.format != contract::DataFormat::Npz, what);
    if (!path)
      return path.takeError();

    Expected<InputData> data =
        source.format == contract::DataFormat::Text
            ? loadText(manifest, source, *input, *path, split, what, vocab,
                       ds.vocab)
        : source.format == contract::DataFormat::Lines
            ? loadLines(manifest, source, *input, *path, split, what, vocab, ds)
        : source.format == contract::DataFormat::Pairs
            ? loadPairs(manifest, source, *input, sources, *path, split, what,
                        vocab, classes, ds)
        : source.format == contract::DataFormat::Wav
            ? loadWav(source, *input, *path, split, what, ds)
            : loadArray(source, *input, *path, what);
    if (!data)
      return data.takeError();
    int64_t examples = int64_t(data->bytes.size() / data->exampleBytes);
    if (first && examples != ds.examples)
      return makeError("{} data: '{}' has {} examples (input '{}') but '{}' "
                       "has {} (input '{}'); every input needs the same "
                       "number",
                       split, first->file, ds.examples, first->spec->name,
                       data->file, examples, source.input);
    ds.examples = examples;
    ds.inputs.push_back(std::move(*data));
    first = &ds.inputs.front();
  }
  // Class labels must be valid indices: the compiled step reads logits[label].
  for (const LabelSpec &label : manifest.labels) {
    for (const InputData &d : ds.inputs) {
      if (d.spec->name != label.input || d.spec->type != DType::I32)
        continue;
      const auto *labels = reinterpret_cast<const int32_t *>(d.bytes.data());
      size_t n = d.bytes.size() / sizeof(int32_t);
      for (size_t i = 0; i < n; ++i)
        if (!label.accepts(labels[i]))
          return makeError(
              "'{}' example {}: label {} is out of range; input '{}' holds "
              "class indices in [0, {}){}",
              d.file, i / size_t(std::max<int64_t>(d.exampleElements, 1)),
              labels[i], d.spec->name, label.classes,
              label.ignore
                  ? fmt::format(" or the ignored label {}", *label.ignore)
                  : std::string());
    }
  }
  return ds;
}

bool Dataset::predictsCharacters(const Manifest &manifest) const {
  for (const LabelSpec &label : manifest.labels)
    for (const InputData &d : inputs)
      if (label.target && d.spec->name == label.input && d.characterIds)
        return true;
  return false;
}

void Dataset::gather(const int64_t *indices, int64_t n,
                     const std::vector<void *> &dest) const {
  for (size_t k = 0; k < inputs.size(); ++k) {
    const InputData &d = inputs[k];
    char *out = static_cast<char *>(dest[k]);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(out + size_t(i) * d.exampleBytes,
                  d.bytes.data() + size_t(indices[i]) * d.exampleBytes,
                  d.exampleBytes);
    size_t batch = size_t(d.spec->shape[0]);
    if (size_t(n) < batch)
      std::memset(out + size_t(n) * d.exampleBytes, 0,
                  (batch - size_t(n)) * d.exampleBytes);
  }
}

} // namespace kiln::rt
