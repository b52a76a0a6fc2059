//===- Json.h - A small JSON reader and string escaping -------------------===//
//
// Enough JSON for safetensors headers: a strict parser (RFC 8259, nesting
// depth limited) into a tree of values, numbers kept as their source text so
// that 64-bit offsets are read exactly, and escaping for the JSON we write.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_JSON_H
#define KILN_RUNTIME_JSON_H

#include "runtime/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::rt {

struct JsonValue {
  enum Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Null;
  bool boolean = false;
  /// The string's decoded value, or a number's source text.
  std::string text;
  std::vector<JsonValue> elements;
  /// Members in document order (duplicates are rejected by the parser).
  std::vector<std::pair<std::string, JsonValue>> members;

  const JsonValue *find(std::string_view key) const;
  /// A non-negative integer number that fits uint64_t, else nullopt.
  std::optional<uint64_t> asUInt() const;
  std::optional<double> asDouble() const;
};

/// Parses one JSON document (surrounding whitespace allowed). Errors say
/// where: `at byte 17: expected ':'`.
Expected<JsonValue> parseJson(std::string_view text);

/// `"text"` with JSON escapes.
std::string jsonQuote(std::string_view text);
/// A number, or null for NaN and infinities (JSON has no such numbers).
std::string jsonNumber(double value);

} // namespace kiln::rt

#endif // KILN_RUNTIME_JSON_H
