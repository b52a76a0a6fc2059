//===- Text.h - UTF-8 text as character ids for language models ----------===//
//
// A `text(...)` data source: a UTF-8 file decoded to code points, its first
// part (1 - held_out of the characters) for training and the rest held out for
// testing, the vocabulary (the sorted distinct characters of the training
// part) mapping characters to ids, and the ids cut into windows of an input's
// length L with stride L - 1 (each window's last character starts the next,
// so every character but the first is predicted once).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TEXT_H
#define KILN_RUNTIME_TEXT_H

#include "runtime/Error.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::rt {

/// Decodes UTF-8 (no overlong forms, surrogates or code points past
/// U+10FFFF); errors name `name` and the byte offset.
Expected<std::u32string> decodeUtf8(std::string_view bytes,
                                    std::string_view name);
std::string encodeUtf8(std::u32string_view text);
/// Decodes UTF-8 as Python's surrogateescape does: a byte that does not start
/// a valid sequence becomes U+DC80..U+DCFF, so nothing is lost and nothing
/// fails (what sacreBLEU sees of arbitrary bytes); encodeUtf8Lenient gives
/// those bytes back.
std::u32string decodeUtf8Lenient(std::string_view bytes);
std::string encodeUtf8Lenient(std::u32string_view text);
/// The lines of `text`: split at each newline, a trailing carriage return
/// dropped, empty lines kept (element k is line k + 1); no line after a final
/// newline.
std::vector<std::u32string_view> splitLines(std::u32string_view text);
/// `U+00E9 'é'`, or `U+000A (a newline)`, for messages.
std::string describeChar(char32_t c);

/// The characters a model knows, sorted; a character's id is its index.
struct Vocabulary {
  std::u32string chars;

  size_t size() const { return chars.size(); }
  /// The id of `c`, or -1.
  int32_t id(char32_t c) const;
  /// Builds the vocabulary of `text`.
  static Vocabulary of(std::u32string_view text);
  /// The text of `ids` (each in [0, size())) as UTF-8.
  std::string decode(const std::vector<int32_t> &ids) const;
  /// Stored as UTF-8 (in checkpoints).
  std::string utf8() const { return encodeUtf8(chars); }
  static Expected<Vocabulary> fromUtf8(std::string_view bytes);
};

/// The training and held-out parts of a text file.
struct TextSplit {
  std::u32string train, test;
  Vocabulary vocab; ///< of `train`
};

/// Reads `path`; `heldOut` in (0, 1) is the fraction of characters at the end
/// kept for testing.
Expected<TextSplit> readTextSplit(const std::string &path, double heldOut);

/// A `lines(...)` data source: each line of a UTF-8 file is an example,
/// written `boundary, its characters, boundary, padding...` in an input of
/// length L (lines longer than L - 2 characters are left out). The
/// vocabulary holds two reserved characters, sorted before every printable
/// one so that their ids are fixed: padding (id 0) and the boundary (id 1).
inline constexpr char32_t kPaddingChar = 0, kBoundaryChar = 3;
inline constexpr int32_t kPaddingId = 0, kBoundaryId = 1;

/// The training lines (all but the last `heldOut` fraction) and the held-out
/// ones of a text file (empty lines skipped; a trailing carriage return
/// dropped), and the vocabulary of the training lines with the reserved
/// characters.
struct LineSplit {
  std::vector<std::u32string> train, test;
  Vocabulary vocab;
};
Expected<LineSplit> readLineSplit(const std::string &path, double heldOut);

/// A `pairs(...)` data source: a UTF-8 file of tab-separated columns, one
/// example a line (sentence pairs: `English<TAB>German`; labelled text:
/// `de<TAB>Datei nicht gefunden`). An input [B, L] reads a column as text,
/// written like a line of `lines` (boundary, characters, boundary, padding);
/// an input [B] reads a column as class names (ClassNames). Rows: the file's
/// non-empty lines (a trailing carriage return dropped), each with the same
/// number of columns.
struct PairsFile {
  std::vector<std::vector<std::u32string>> rows;
  size_t columns = 0;
  /// The characters of COLUMNS with the reserved padding and boundary: one
  /// vocabulary for both languages of sentence pairs.
  Vocabulary vocab(const std::vector<size_t> &columns) const;
};
Expected<PairsFile> readPairs(const std::string &path);

/// The classes of labels read from text (a `pairs` column feeding an i32
/// input [B]): the sorted distinct names the training file's column holds; a
/// class's id is its index.
struct ClassNames {
  std::vector<std::u32string> names;

  size_t size() const { return names.size(); }
  bool empty() const { return names.empty(); }
  /// The id of `name`, or -1.
  int32_t id(std::u32string_view name) const;
  /// The name of class `id` as UTF-8.
  std::string name(size_t id) const { return encodeUtf8(names[id]); }
  /// `cs, da, de, ...`, for messages.
  std::string list() const;
  /// The classes of column `column` of `file`.
  static ClassNames of(const PairsFile &file, size_t column);
  /// Stored as UTF-8 lines (in checkpoints: names hold no newline).
  std::string utf8() const;
  static Expected<ClassNames> fromUtf8(std::string_view bytes);
};

/// `text` written for an input of `length` ids: boundary, its ids, boundary,
/// padding; false (and `row` untouched) if it holds more than length - 2
/// characters. Errors name a character outside `vocab` (`what`: which text).
Expected<bool> encodeLine(std::u32string_view text, const Vocabulary &vocab,
                          std::string_view what, int32_t *row, int64_t length);

/// The ids of `text` in `vocab`; an error names the first character outside
/// it (`what` says which text).
Expected<std::vector<int32_t>> encodeText(std::u32string_view text,
                                          const Vocabulary &vocab,
                                          std::string_view what);

} // namespace kiln::rt

#endif // KILN_RUNTIME_TEXT_H
