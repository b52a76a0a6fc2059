//===- Json.cpp - A small JSON reader and string escaping -----------------===//

#include "runtime/Json.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <unordered_set>

namespace kiln::rt {

namespace {

constexpr int maxDepth = 64;

class JsonParser {
public:
  explicit JsonParser(std::string_view text) : text(text) {}

  Expected<JsonValue> parseDocument() {
    JsonValue v;
    if (Error e = parseValue(v, 0))
      return e;
    skipSpace();
    if (pos != text.size())
      return fail("unexpected text after the JSON value");
    return v;
  }

private:
  Error fail(const std::string &what) const {
    return makeError("at byte {}: {}", pos, what);
  }
  void skipSpace() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' ||
                                 text[pos] == '\n' || text[pos] == '\r'))
      ++pos;
  }
  bool consume(char c) {
    skipSpace();
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  bool consumeWord(std::string_view word) {
    if (text.substr(pos, word.size()) != word)
      return false;
    pos += word.size();
    return true;
  }

  Error parseValue(JsonValue &v, int depth);
  Error parseString(std::string &out);
  Error parseNumber(JsonValue &v);

  std::string_view text;
  size_t pos = 0;
};

Error JsonParser::parseValue(JsonValue &v, int depth) {
  if (depth > maxDepth)
    return fail("nested too deeply");
  skipSpace();
  if (pos >= text.size())
    return fail("unexpected end of the JSON text");
  char c = text[pos];
  if (c == '{') {
    ++pos;
    v.kind = JsonValue::Object;
    if (consume('}'))
      return Error::success();
    // The keys so far, hashed: a linear search per key would make an object
    // of N keys (a checkpoint's metadata) cost O(N^2).
    std::unordered_set<std::string> keys;
    do {
      skipSpace();
      if (pos >= text.size() || text[pos] != '"')
        return fail("expected a string key");
      std::string key;
      if (Error e = parseString(key))
        return e;
      if (!keys.insert(key).second)
        return fail("duplicate key \"" + key + "\"");
      if (!consume(':'))
        return fail("expected ':'");
      JsonValue member;
      if (Error e = parseValue(member, depth + 1))
        return e;
      v.members.emplace_back(std::move(key), std::move(member));
    } while (consume(','));
    if (!consume('}'))
      return fail("expected ',' or '}'");
    return Error::success();
  }
  if (c == '[') {
    ++pos;
    v.kind = JsonValue::Array;
    if (consume(']'))
      return Error::success();
    do {
      JsonValue element;
      if (Error e = parseValue(element, depth + 1))
        return e;
      v.elements.push_back(std::move(element));
    } while (consume(','));
    if (!consume(']'))
      return fail("expected ',' or ']'");
    return Error::success();
  }
  if (c == '"') {
    v.kind = JsonValue::String;
    return parseString(v.text);
  }
  if (consumeWord("true") || consumeWord("false")) {
    v.kind = JsonValue::Bool;
    v.boolean = c == 't';
    return Error::success();
  }
  if (consumeWord("null")) {
    v.kind = JsonValue::Null;
    return Error::success();
  }
  if (c == '-' || (c >= '0' && c <= '9'))
    return parseNumber(v);
  return fail(fmt::format("unexpected character '{}'", c));
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

Error JsonParser::parseString(std::string &out) {
  ++pos; // the opening quote
  while (true) {
    if (pos >= text.size())
      return fail("unterminated string");
    unsigned char c = text[pos++];
    if (c == '"')
      return Error::success();
    if (c < 0x20)
      return fail("control character in a string");
    if (c != '\\') {
      out += char(c);
      continue;
    }
    if (pos >= text.size())
      return fail("unterminated string");
    char esc = text[pos++];
    switch (esc) {
    case '"':
    case '\\':
    case '/':
      out += esc;
      break;
    case 'b':
      out += '\b';
      break;
    case 'f':
      out += '\f';
      break;
    case 'n':
      out += '\n';
      break;
    case 'r':
      out += '\r';
      break;
    case 't':
      out += '\t';
      break;
    case 'u': {
      auto hex4 = [&](uint32_t &cp) {
        if (pos + 4 > text.size())
          return false;
        auto [end, ec] =
            std::from_chars(text.data() + pos, text.data() + pos + 4, cp, 16);
        if (ec != std::errc() || end != text.data() + pos + 4)
          return false;
        pos += 4;
        return true;
      };
      uint32_t cp = 0;
      if (!hex4(cp))
        return fail("bad \\u escape");
      if (cp >= 0xD800 && cp < 0xDC00) {
        uint32_t low = 0;
        if (!consumeWord("\\u") || !hex4(low) || low < 0xDC00 || low >= 0xE000)
          return fail("unpaired surrogate in a \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else if (cp >= 0xDC00 && cp < 0xE000) {
        return fail("unpaired surrogate in a \\u escape");
      }
      appendUtf8(out, cp);
      break;
    }
    default:
      return fail(fmt::format("bad escape '\\{}'", esc));
    }
  }
}

Error JsonParser::parseNumber(JsonValue &v) {
  size_t start = pos;
  auto digits = [&] {
    size_t s = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
      ++pos;
    return pos - s;
  };
  if (text[pos] == '-')
    ++pos;
  size_t intStart = pos;
  size_t n = digits();
  if (n == 0)
    return fail("bad number");
  if (n > 1 && text[intStart] == '0')
    return fail("bad number (leading zero)");
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    if (digits() == 0)
      return fail("bad number");
  }
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-'))
      ++pos;
    if (digits() == 0)
      return fail("bad number");
  }
  v.kind = JsonValue::Number;
  v.text = std::string(text.substr(start, pos - start));
  return Error::success();
}

} // namespace

const JsonValue *JsonValue::find(std::string_view key) const {
  for (const auto &[k, v] : members)
    if (k == key)
      return &v;
  return nullptr;
}

std::optional<uint64_t> JsonValue::asUInt() const {
  if (kind != Number)
    return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

std::optional<double> JsonValue::asDouble() const {
  if (kind != Number)
    return std::nullopt;
  return std::strtod(text.c_str(), nullptr);
}

Expected<JsonValue> parseJson(std::string_view text) {
  return JsonParser(text).parseDocument();
}

std::string jsonQuote(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    unsigned char c = ch;
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20)
        out += fmt::format("\\u{:04x}", unsigned(c));
      else
        out += ch;
    }
  }
  return out + "\"";
}

std::string jsonNumber(double value) {
  if (!std::isfinite(value))
    return "null";
  return fmt::format("{}", value);
}

} // namespace kiln::rt
