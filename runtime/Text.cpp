//===- Text.cpp - UTF-8 text as character ids for language models --------===//

#include "runtime/Text.h"

#include "runtime/Files.h"

#include <algorithm>
#include <cmath>

namespace kiln::rt {

namespace {

/// The code point that starts at bytes[i] and its length in bytes, or a
/// length of 0 and why the bytes there are not UTF-8.
struct Utf8Char {
  char32_t c = 0;
  int length = 0;
  const char *error = nullptr;
};

Utf8Char decodeOne(std::string_view bytes, size_t i) {
  auto b0 = static_cast<unsigned char>(bytes[i]);
  if (b0 < 0x80)
    return {b0, 1};
  int extra = b0 >= 0xF0 ? 3 : b0 >= 0xE0 ? 2 : b0 >= 0xC0 ? 1 : -1;
  if (extra < 0 || b0 > 0xF4)
    return {0, 0, "an invalid leading byte"};
  if (i + extra >= bytes.size())
    return {0, 0, "a truncated sequence"};
  char32_t c = b0 & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    auto b = static_cast<unsigned char>(bytes[i + k]);
    if ((b & 0xC0) != 0x80)
      return {0, 0, "a truncated sequence"};
    c = (c << 6) | (b & 0x3F);
  }
  static const char32_t minimum[] = {0, 0x80, 0x800, 0x10000};
  if (c < minimum[extra])
    return {0, 0, "an overlong encoding"};
  if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
    return {0, 0, "a code point that is not a character"};
  return {c, extra + 1};
}

/// Appends the UTF-8 bytes of `c`.
void appendUtf8(std::string &out, char32_t c) {
  if (c < 0x80) {
    out.push_back(char(c));
  } else if (c < 0x800) {
    out.push_back(char(0xC0 | (c >> 6)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(char(0xE0 | (c >> 12)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (c >> 18)));
    out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  }
}

} // namespace

Expected<std::u32string> decodeUtf8(std::string_view bytes,
                                    std::string_view name) {
  std::u32string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    Utf8Char next = decodeOne(bytes, i);
    if (next.error)
      return makeError("'{}' is not UTF-8 text: {} at byte {}", name,
                       next.error, i);
    out.push_back(next.c);
    i += size_t(next.length);
  }
  return out;
}

std::u32string decodeUtf8Lenient(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    Utf8Char next = decodeOne(bytes, i);
    if (next.error) {
      out.push_back(0xDC00 + static_cast<unsigned char>(bytes[i]));
      ++i;
      continue;
    }
    out.push_back(next.c);
    i += size_t(next.length);
  }
  return out;
}

std::string encodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text)
    appendUtf8(out, c);
  return out;
}

std::string encodeUtf8Lenient(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c >= 0xDC80 && c <= 0xDCFF)
      out.push_back(char(c - 0xDC00));
    else
      appendUtf8(out, c);
  }
  return out;
}

std::string describeChar(char32_t c) {
  std::string code = fmt::format("U+{:04X}", uint32_t(c));
  if (c == '\n')
    return code + " (a newline)";
  if (c == '\t')
    return code + " (a tab)";
  if (c < 0x20 || c == 0x7F)
    return code + " (a control character)";
  return code + " '" + encodeUtf8(std::u32string(1, c)) + "'";
}

std::vector<std::u32string_view> splitLines(std::u32string_view text) {
  std::vector<std::u32string_view> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.find(U'\n', start), text.size());
    std::u32string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == U'\r')
      line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

int32_t Vocabulary::id(char32_t c) const {
  auto it = std::lower_bound(chars.begin(), chars.end(), c);
  return it != chars.end() && *it == c ? int32_t(it - chars.begin()) : -1;
}

std::string Vocabulary::decode(const std::vector<int32_t> &ids) const {
  std::u32string text;
  for (int32_t id : ids)
    text += chars[size_t(id)];
  return encodeUtf8(text);
}

Vocabulary Vocabulary::of(std::u32string_view text) {
  std::vector<bool> seen(0x110000);
  for (char32_t c : text)
    seen[c] = true;
  Vocabulary v;
  for (char32_t c = 0; c < 0x110000; ++c)
    if (seen[c])
      v.chars.push_back(c);
  return v;
}

Expected<Vocabulary> Vocabulary::fromUtf8(std::string_view bytes) {
  Expected<std::u32string> chars = decodeUtf8(bytes, "the vocabulary");
  if (!chars)
    return chars.takeError();
  if (!std::is_sorted(chars->begin(), chars->end()) ||
      std::adjacent_find(chars->begin(), chars->end()) != chars->end())
    return makeError("the vocabulary is not a sorted set of characters");
  return Vocabulary{std::move(*chars)};
}

namespace {

/// The decoded text of `path` (gzip too) for a split at `heldOut`.
Expected<std::u32string> readHeldOutText(const std::string &path,
                                         double heldOut) {
  if (!(heldOut > 0 && heldOut < 1))
    return makeError("held_out={} must be a fraction in (0, 1)", heldOut);
  Expected<std::string> bytes = readFileMaybeGzip(path);
  if (!bytes)
    return bytes.takeError();
  return decodeUtf8(*bytes, path);
}

} // namespace

Expected<TextSplit> readTextSplit(const std::string &path, double heldOut) {
  Expected<std::u32string> text = readHeldOutText(path, heldOut);
  if (!text)
    return text.takeError();
  if (text->size() < 4)
    return makeError("'{}' holds {} characters; a text to learn from needs "
                     "more",
                     path, text->size());
  size_t trainSize = size_t(std::llround(double(text->size()) * (1 - heldOut)));
  trainSize = std::clamp<size_t>(trainSize, 2, text->size() - 2);
  TextSplit split;
  split.train = text->substr(0, trainSize);
  split.test = text->substr(trainSize);
  split.vocab = Vocabulary::of(split.train);
  return split;
}

Expected<LineSplit> readLineSplit(const std::string &path, double heldOut) {
  Expected<std::u32string> text = readHeldOutText(path, heldOut);
  if (!text)
    return text.takeError();
  std::vector<std::u32string> lines;
  std::vector<std::u32string_view> fileLines = splitLines(*text);
  for (size_t i = 0; i < fileLines.size(); ++i) {
    for (char32_t c : fileLines[i])
      if (c == kPaddingChar || c == kBoundaryChar)
        return makeError("'{}' line {}: character {} is reserved (padding "
                         "and line boundaries)",
                         path, i + 1, describeChar(c));
    if (!fileLines[i].empty())
      lines.emplace_back(fileLines[i]);
  }
  if (lines.size() < 2)
    return makeError("'{}' holds {} non-empty lines; lines to learn from "
                     "need more",
                     path, lines.size());
  size_t trainSize = size_t(std::llround(double(lines.size()) * (1 - heldOut)));
  trainSize = std::clamp<size_t>(trainSize, 1, lines.size() - 1);
  LineSplit split;
  split.train.assign(lines.begin(), lines.begin() + trainSize);
  split.test.assign(lines.begin() + trainSize, lines.end());
  std::u32string all{kPaddingChar, kBoundaryChar};
  for (const std::u32string &line : split.train)
    all += line;
  split.vocab = Vocabulary::of(all);
  return split;
}

Vocabulary PairsFile::vocab(const std::vector<size_t> &columns) const {
  std::u32string all{kPaddingChar, kBoundaryChar};
  for (const std::vector<std::u32string> &row : rows)
    for (size_t column : columns)
      all += row[column];
  return Vocabulary::of(all);
}

Expected<PairsFile> readPairs(const std::string &path) {
  Expected<std::string> bytes = readFileMaybeGzip(path);
  if (!bytes)
    return bytes.takeError();
  Expected<std::u32string> text = decodeUtf8(*bytes, path);
  if (!text)
    return text.takeError();
  PairsFile file;
  std::vector<std::u32string_view> lines = splitLines(*text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::u32string_view line = lines[i];
    size_t lineNo = i + 1;
    if (line.empty())
      continue;
    std::vector<std::u32string> row;
    for (size_t from = 0;;) {
      size_t tab = line.find(U'\t', from);
      row.emplace_back(line.substr(from, tab - from));
      if (tab == std::u32string_view::npos)
        break;
      from = tab + 1;
    }
    for (const std::u32string &cell : row)
      for (char32_t c : cell)
        if (c == kPaddingChar || c == kBoundaryChar)
          return makeError("'{}' line {}: character {} is reserved (padding "
                           "and sentence boundaries)",
                           path, lineNo, describeChar(c));
    if (file.rows.empty())
      file.columns = row.size();
    else if (row.size() != file.columns)
      return makeError("'{}' line {}: {} tab-separated columns, but the first "
                       "line has {}",
                       path, lineNo, row.size(), file.columns);
    file.rows.push_back(std::move(row));
  }
  if (file.rows.empty())
    return makeError("'{}' holds no pairs (one a line, separated by a tab)",
                     path);
  return file;
}

int32_t ClassNames::id(std::u32string_view name) const {
  auto it = std::lower_bound(names.begin(), names.end(), name);
  return it != names.end() && *it == name ? int32_t(it - names.begin()) : -1;
}

ClassNames ClassNames::of(const PairsFile &file, size_t column) {
  ClassNames classes;
  for (const std::vector<std::u32string> &row : file.rows)
    classes.names.push_back(row[column]);
  std::sort(classes.names.begin(), classes.names.end());
  classes.names.erase(std::unique(classes.names.begin(), classes.names.end()),
                      classes.names.end());
  return classes;
}

std::string ClassNames::list() const {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i ? ", " : "") + name(i);
  return out;
}

std::string ClassNames::utf8() const {
  std::string out;
  for (const std::u32string &name : names)
    out += encodeUtf8(name) + "\n";
  return out;
}

Expected<ClassNames> ClassNames::fromUtf8(std::string_view bytes) {
  Expected<std::u32string> text = decodeUtf8(bytes, "the class names");
  if (!text)
    return text.takeError();
  ClassNames classes;
  for (size_t start = 0; start < text->size();) {
    size_t end = text->find(U'\n', start);
    if (end == std::u32string::npos)
      return makeError("the class names do not end with a newline");
    classes.names.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  if (!std::is_sorted(classes.names.begin(), classes.names.end()) ||
      std::adjacent_find(classes.names.begin(), classes.names.end()) !=
          classes.names.end())
    return makeError("the class names are not a sorted set");
  return classes;
}

Expected<bool> encodeLine(std::u32string_view text, const Vocabulary &vocab,
                          std::string_view what, int32_t *row, int64_t length) {
  if (int64_t(text.size()) > length - 2)
    return false;
  Expected<std::vector<int32_t>> ids = encodeText(text, vocab, what);
  if (!ids)
    return ids.takeError();
  std::fill(row, row + length, kPaddingId);
  row[0] = kBoundaryId;
  std::copy(ids->begin(), ids->end(), row + 1);
  row[ids->size() + 1] = kBoundaryId;
  return true;
}

Expected<std::vector<int32_t>> encodeText(std::u32string_view text,
                                          const Vocabulary &vocab,
                                          std::string_view what) {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    ids[i] = vocab.id(text[i]);
    if (ids[i] < 0)
      return makeError("{}: character {} at position {} is not in the "
                       "vocabulary of the training text",
                       what, describeChar(text[i]), i);
  }
  return ids;
}

} // namespace kiln::rt
