//===- Data.cpp - Readers for IDX, .npy, .npz and CSV files; .npy writer -===//

#include "runtime/Data.h"

#include "runtime/Files.h"
#include "runtime/Manifest.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace kiln::rt {

const char *elemTypeName(ElemType type) {
  switch (type) {
  case ElemType::Bool:
    return "bool";
  case ElemType::U8:
    return "u8";
  case ElemType::I8:
    return "i8";
  case ElemType::U16:
    return "u16";
  case ElemType::I16:
    return "i16";
  case ElemType::U32:
    return "u32";
  case ElemType::I32:
    return "i32";
  case ElemType::U64:
    return "u64";
  case ElemType::I64:
    return "i64";
  case ElemType::F32:
    return "f32";
  case ElemType::F64:
    return "f64";
  }
  return "?";
}

size_t elemTypeSize(ElemType type) {
  switch (type) {
  case ElemType::Bool:
  case ElemType::U8:
  case ElemType::I8:
    return 1;
  case ElemType::U16:
  case ElemType::I16:
    return 2;
  case ElemType::U32:
  case ElemType::I32:
  case ElemType::F32:
    return 4;
  case ElemType::U64:
  case ElemType::I64:
  case ElemType::F64:
    return 8;
  }
  return 1;
}

bool isFloatElem(ElemType type) {
  return type == ElemType::F32 || type == ElemType::F64;
}

namespace {

template <typename T> T load(const char *p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

uint32_t loadBE32(const char *p) {
  const auto *u = reinterpret_cast<const unsigned char *>(p);
  return uint32_t(u[0]) << 24 | uint32_t(u[1]) << 16 | uint32_t(u[2]) << 8 |
         uint32_t(u[3]);
}

uint16_t loadLE16(const char *p) {
  const auto *u = reinterpret_cast<const unsigned char *>(p);
  return uint16_t(u[0] | u[1] << 8);
}

uint32_t loadLE32(const char *p) {
  const auto *u = reinterpret_cast<const unsigned char *>(p);
  return uint32_t(u[0]) | uint32_t(u[1]) << 8 | uint32_t(u[2]) << 16 |
         uint32_t(u[3]) << 24;
}

uint64_t loadLE64(const char *p) {
  return uint64_t(loadLE32(p)) | uint64_t(loadLE32(p + 4)) << 32;
}

bool hostIsLittleEndian() {
  uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// Reverses the bytes of each element in place.
void swapBytes(std::string &bytes, size_t elemSize) {
  if (elemSize == 1)
    return;
  for (size_t i = 0; i + elemSize <= bytes.size(); i += elemSize)
    std::reverse(bytes.begin() + i, bytes.begin() + i + elemSize);
}

/// The byte count of NUMEL elements of SIZE bytes, or nullopt on overflow.
std::optional<size_t> byteCount(const Shape &shape, size_t size) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || !checkedMul(n, d, n))
      return std::nullopt;
  int64_t bytes;
  if (!checkedMul(n, int64_t(size), bytes))
    return std::nullopt;
  return size_t(bytes);
}

std::string formatDims(const Shape &shape) {
  if (shape.empty())
    return "()";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i)
    s += fmt::format("{}{}", i ? "x" : "", shape[i]);
  return s;
}

} // namespace

double Array::get(int64_t i) const {
  const char *p = bytes.data() + size_t(i) * elemTypeSize(type);
  switch (type) {
  case ElemType::Bool:
    return load<uint8_t>(p) != 0;
  case ElemType::U8:
    return load<uint8_t>(p);
  case ElemType::I8:
    return load<int8_t>(p);
  case ElemType::U16:
    return load<uint16_t>(p);
  case ElemType::I16:
    return load<int16_t>(p);
  case ElemType::U32:
    return load<uint32_t>(p);
  case ElemType::I32:
    return load<int32_t>(p);
  case ElemType::U64:
    return double(load<uint64_t>(p));
  case ElemType::I64:
    return double(load<int64_t>(p));
  case ElemType::F32:
    return load<float>(p);
  case ElemType::F64:
    return load<double>(p);
  }
  return 0;
}

int64_t Array::getInt(int64_t i) const {
  const char *p = bytes.data() + size_t(i) * elemTypeSize(type);
  switch (type) {
  case ElemType::U64: {
    uint64_t v = load<uint64_t>(p);
    return v > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v);
  }
  case ElemType::I64:
    return load<int64_t>(p);
  default:
    return int64_t(get(i));
  }
}

//===----------------------------------------------------------------------===//
// IDX
//===----------------------------------------------------------------------===//

/// The element type of IDX type code `code` (the magic number's third
/// byte), if it is one.
static std::optional<ElemType> idxElemType(unsigned char code) {
  switch (code) {
  case 0x08:
    return ElemType::U8;
  case 0x09:
    return ElemType::I8;
  case 0x0B:
    return ElemType::I16;
  case 0x0C:
    return ElemType::I32;
  case 0x0D:
    return ElemType::F32;
  case 0x0E:
    return ElemType::F64;
  default:
    return std::nullopt;
  }
}

namespace {

/// An IDX header: element type, dimensions, and the sizes of the header and
/// of the data it announces.
struct IdxHeader {
  ElemType type;
  Shape shape;
  size_t headerSize = 0, dataSize = 0;
};

Expected<IdxHeader> parseIdxHeader(std::string_view bytes,
                                   std::string_view name) {
  if (bytes.size() < 4)
    return makeError("'{}' is not an IDX file: only {} bytes", name,
                     bytes.size());
  const auto *u = reinterpret_cast<const unsigned char *>(bytes.data());
  if (u[0] != 0 || u[1] != 0)
    return makeError(
        "'{}' is not an IDX file (wrong magic number {:02x} {:02x} "
        "{:02x} {:02x}; expected 00 00 TYPE RANK)",
        name, u[0], u[1], u[2], u[3]);
  IdxHeader h;
  std::optional<ElemType> type = idxElemType(u[2]);
  if (!type)
    return makeError("'{}' is not an IDX file (unknown element type 0x{:02x} "
                     "in the magic number)",
                     name, u[2]);
  h.type = *type;
  unsigned rank = u[3];
  if (rank == 0)
    return makeError("'{}': IDX rank 0 is not supported", name);
  h.headerSize = 4 + 4 * size_t(rank);
  if (bytes.size() < h.headerSize)
    return makeError("'{}' is truncated: the IDX header needs {} bytes, the "
                     "file has {}",
                     name, h.headerSize, bytes.size());
  for (unsigned i = 0; i < rank; ++i)
    h.shape.push_back(int64_t(loadBE32(bytes.data() + 4 + 4 * i)));
  std::optional<size_t> dataSize = byteCount(h.shape, elemTypeSize(h.type));
  if (!dataSize)
    return makeError("'{}': IDX dimensions {} are too large", name,
                     formatDims(h.shape));
  h.dataSize = *dataSize;
  return h;
}

} // namespace

Expected<Array> parseIdx(std::string_view bytes, std::string_view name) {
  Expected<IdxHeader> h = parseIdxHeader(bytes, name);
  if (!h)
    return h.takeError();
  Array a;
  a.type = h->type;
  a.shape = h->shape;
  size_t have = bytes.size() - h->headerSize;
  if (have < h->dataSize)
    return makeError("'{}' is truncated: IDX header says {} {} values ({} "
                     "bytes), the file has {} bytes of data",
                     name, formatDims(a.shape), elemTypeName(a.type),
                     h->dataSize, have);
  if (have > h->dataSize)
    return makeError("'{}' has {} bytes after the {} {} values its IDX header "
                     "announces (not an IDX file, or a wrong header)",
                     name, have - h->dataSize, formatDims(a.shape),
                     elemTypeName(a.type));
  a.bytes.assign(bytes.data() + h->headerSize, h->dataSize);
  // IDX data is big-endian.
  if (hostIsLittleEndian())
    swapBytes(a.bytes, elemTypeSize(a.type));
  return a;
}

Expected<Array> readIdx(const std::string &path) {
  if (!endsWith(path, ".gz")) {
    Expected<std::string> bytes = readFile(path);
    if (!bytes)
      return bytes.takeError();
    return parseIdx(*bytes, path);
  }
  // Compressed: inflate the header first (rank 255 at most: 1,024 bytes),
  // then no more than the data it announces, so that a gzip bomb is refused
  // before it fills memory.
  Expected<std::string> head = readFileMaybeGzip(path, 4 + 4 * 255, true);
  if (!head)
    return head.takeError();
  Expected<IdxHeader> h = parseIdxHeader(*head, path);
  if (!h)
    return h.takeError();
  size_t needed = h->headerSize + h->dataSize;
  Expected<std::string> bytes = readFileMaybeGzip(path, needed, false);
  if (!bytes)
    return makeError("{} (its IDX header announces {} bytes: not an IDX "
                     "file, or a wrong header)",
                     bytes.error().message(), needed);
  return parseIdx(*bytes, path);
}

//===----------------------------------------------------------------------===//
// NPY
//===----------------------------------------------------------------------===//

namespace {

/// The header dictionary of a .npy file, a Python literal such as
/// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
struct NpyHeader {
  std::string descr;
  bool fortranOrder = false;
  Shape shape;
};

class NpyHeaderParser {
public:
  explicit NpyHeaderParser(std::string_view text) : text(text) {}

  std::optional<std::string> parse(NpyHeader &h) {
    bool sawDescr = false, sawOrder = false, sawShape = false;
    if (!consume('{'))
      return "expected '{'";
    while (!consume('}')) {
      std::optional<std::string> key = quoted();
      if (!key)
        return "expected a quoted key";
      if (!consume(':'))
        return "expected ':'";
      if (*key == "descr") {
        std::optional<std::string> v = quoted();
        if (!v)
          return "'descr' is not a string (structured dtypes are not "
                 "supported)";
        h.descr = *v;
        sawDescr = true;
      } else if (*key == "fortran_order") {
        skipSpace();
        if (text.substr(pos, 4) == "True") {
          h.fortranOrder = true;
          pos += 4;
        } else if (text.substr(pos, 5) == "False") {
          pos += 5;
        } else {
          return "'fortran_order' is not True or False";
        }
        sawOrder = true;
      } else if (*key == "shape") {
        if (!consume('('))
          return "'shape' is not a tuple";
        while (!consume(')')) {
          skipSpace();
          size_t start = pos;
          while (pos < text.size() && std::isdigit((unsigned char)text[pos]))
            ++pos;
          std::optional<int64_t> d = parseInt(text.substr(start, pos - start));
          if (!d)
            return "bad dimension in 'shape'";
          if (pos < text.size() && text[pos] == 'L')
            ++pos; // Python 2 long
          h.shape.push_back(*d);
          if (!consume(',')) {
            if (!consume(')'))
              return "expected ',' or ')' in 'shape'";
            break;
          }
        }
        sawShape = true;
      } else {
        return "unknown key '" + *key + "'";
      }
      if (!consume(',')) {
        if (!consume('}'))
          return "expected ',' or '}'";
        break;
      }
    }
    if (!sawDescr || !sawOrder || !sawShape)
      return "missing 'descr', 'fortran_order' or 'shape'";
    return std::nullopt;
  }

private:
  void skipSpace() {
    while (pos < text.size() && std::isspace((unsigned char)text[pos]))
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
  std::optional<std::string> quoted() {
    skipSpace();
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"'))
      return std::nullopt;
    char q = text[pos++];
    size_t end = text.find(q, pos);
    if (end == std::string_view::npos)
      return std::nullopt;
    std::string s(text.substr(pos, end - pos));
    pos = end + 1;
    return s;
  }

  std::string_view text;
  size_t pos = 0;
};

} // namespace

Expected<Array> parseNpy(std::string_view bytes, std::string_view name) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != "\x93NUMPY")
    return makeError("'{}' is not a .npy file (wrong magic; expected "
                     "\\x93NUMPY)",
                     name);
  unsigned major = (unsigned char)bytes[6];
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen = loadLE16(bytes.data() + 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12)
      return makeError("'{}' is truncated (in the .npy header)", name);
    headerLen = loadLE32(bytes.data() + 8);
    headerStart = 12;
  } else {
    return makeError("'{}': .npy format version {} is not supported", name,
                     major);
  }
  if (bytes.size() - headerStart < headerLen)
    return makeError("'{}' is truncated (the .npy header says {} bytes, the "
                     "file has {})",
                     name, headerLen, bytes.size() - headerStart);
  NpyHeader h;
  std::string_view headerText = bytes.substr(headerStart, headerLen);
  if (std::optional<std::string> err = NpyHeaderParser(headerText).parse(h)) {
    // On one line: the header's closing newline and any other control byte
    // shown escaped.
    std::string shown;
    for (char c : headerText.substr(0, 120))
      shown += c == '\n' ? std::string("\\n")
               : static_cast<unsigned char>(c) < 0x20
                   ? fmt::format("\\x{:02x}", c)
                   : std::string(1, c);
    return makeError("'{}': bad .npy header ({}): {}", name, *err, shown);
  }
  if (h.fortranOrder)
    return makeError("'{}' is stored in Fortran order; save a C-order array "
                     "(numpy.ascontiguousarray)",
                     name);
  Array a;
  // descr: byte order ('<', '>', '|', '='), kind, item size.
  std::string_view d = h.descr;
  char order = '=';
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '='))
    order = d[0], d.remove_prefix(1);
  static const struct {
    const char *code;
    ElemType type;
  } codes[] = {
      {"b1", ElemType::Bool}, {"u1", ElemType::U8},  {"i1", ElemType::I8},
      {"u2", ElemType::U16},  {"i2", ElemType::I16}, {"u4", ElemType::U32},
      {"i4", ElemType::I32},  {"u8", ElemType::U64}, {"i8", ElemType::I64},
      {"f4", ElemType::F32},  {"f8", ElemType::F64}};
  bool known = false;
  for (const auto &c : codes)
    if (d == c.code) {
      a.type = c.type;
      known = true;
    }
  if (!known)
    return makeError("'{}': unsupported .npy dtype '{}' (supported: bool, "
                     "u8..u64, i8..i64, f32, f64)",
                     name, h.descr);
  a.shape = h.shape;
  std::optional<size_t> dataSize = byteCount(a.shape, elemTypeSize(a.type));
  if (!dataSize)
    return makeError("'{}': .npy shape {} is too large", name,
                     formatDims(a.shape));
  size_t dataStart = headerStart + headerLen;
  size_t have = bytes.size() - dataStart;
  if (have < *dataSize)
    return makeError("'{}' is truncated: shape {} of {} needs {} bytes of "
                     "data, the file has {}",
                     name, formatDims(a.shape), elemTypeName(a.type), *dataSize,
                     have);
  a.bytes.assign(bytes.data() + dataStart, *dataSize);
  bool bigEndian = order == '>' || (order == '=' && !hostIsLittleEndian());
  if (bigEndian == hostIsLittleEndian())
    swapBytes(a.bytes, elemTypeSize(a.type));
  return a;
}

Expected<Array> readNpy(const std::string &path) {
  Expected<std::string> bytes = readFileMaybeGzip(path);
  if (!bytes)
    return bytes.takeError();
  return parseNpy(*bytes, path);
}

//===----------------------------------------------------------------------===//
// NPZ (zip)
//===----------------------------------------------------------------------===//

namespace {

struct ZipEntry {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t compressedSize = 0, size = 0, localOffset = 0;
};

Expected<std::vector<ZipEntry>> readZipDirectory(std::string_view z,
                                                 const std::string &name) {
  auto bad = [&](const char *what) {
    return makeError("'{}' is not a valid .npz (zip) file: {}", name, what);
  };
  if (z.size() < 22)
    return bad("too short");
  // The end of central directory record: the last "PK\5\6" within the final
  // 64 KiB + 22 bytes (a comment may follow it).
  size_t eocd = std::string_view::npos;
  size_t lowest = z.size() > 65557 ? z.size() - 65557 : 0;
  for (size_t i = z.size() - 22 + 1; i-- > lowest;)
    if (loadLE32(z.data() + i) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string_view::npos)
    return bad(z.substr(0, 2) == "PK"
                   ? "no end of central directory (truncated?)"
                   : "no zip signature");
  uint64_t count = loadLE16(z.data() + eocd + 10);
  uint64_t cdSize = loadLE32(z.data() + eocd + 12);
  uint64_t cdOffset = loadLE32(z.data() + eocd + 16);
  if (count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF) {
    // zip64: a locator just before the record points at the zip64 record.
    if (eocd < 20 || loadLE32(z.data() + eocd - 20) != 0x07064b50)
      return bad("zip64 locator missing");
    uint64_t rec = loadLE64(z.data() + eocd - 20 + 8);
    if (rec > z.size() || z.size() - rec < 56 ||
        loadLE32(z.data() + rec) != 0x06064b50)
      return bad("bad zip64 end of central directory");
    count = loadLE64(z.data() + rec + 32);
    cdSize = loadLE64(z.data() + rec + 40);
    cdOffset = loadLE64(z.data() + rec + 48);
  }
  if (cdOffset > z.size() || cdSize > z.size() - cdOffset)
    return bad("central directory out of range (truncated?)");
  std::vector<ZipEntry> entries;
  size_t p = cdOffset, end = cdOffset + cdSize;
  for (uint64_t i = 0; i < count; ++i) {
    if (end - p < 46 || loadLE32(z.data() + p) != 0x02014b50)
      return bad("corrupt central directory");
    ZipEntry e;
    e.flags = loadLE16(z.data() + p + 8);
    e.method = loadLE16(z.data() + p + 10);
    e.crc = loadLE32(z.data() + p + 16);
    e.compressedSize = loadLE32(z.data() + p + 20);
    e.size = loadLE32(z.data() + p + 24);
    size_t nameLen = loadLE16(z.data() + p + 28);
    size_t extraLen = loadLE16(z.data() + p + 30);
    size_t commentLen = loadLE16(z.data() + p + 32);
    e.localOffset = loadLE32(z.data() + p + 42);
    if (end - p - 46 < nameLen + extraLen + commentLen)
      return bad("corrupt central directory");
    e.name = std::string(z.substr(p + 46, nameLen));
    // The zip64 extra field holds the sizes and offset that did not fit.
    std::string_view extra = z.substr(p + 46 + nameLen, extraLen);
    while (extra.size() >= 4) {
      uint16_t id = loadLE16(extra.data());
      uint16_t len = loadLE16(extra.data() + 2);
      if (size_t(len) + 4 > extra.size())
        break;
      if (id == 0x0001) {
        std::string_view f = extra.substr(4, len);
        auto next = [&](uint64_t &v) {
          if (f.size() >= 8) {
            v = loadLE64(f.data());
            f.remove_prefix(8);
          }
        };
        if (e.size == 0xFFFFFFFF)
          next(e.size);
        if (e.compressedSize == 0xFFFFFFFF)
          next(e.compressedSize);
        if (e.localOffset == 0xFFFFFFFF)
          next(e.localOffset);
      }
      extra.remove_prefix(4 + len);
    }
    entries.push_back(std::move(e));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

Expected<std::string> extractZipEntry(std::string_view z, const ZipEntry &e,
                                      const std::string &name) {
  auto bad = [&](const std::string &what) {
    return makeError("'{}': entry '{}': {}", name, e.name, what);
  };
  if (e.flags & 1)
    return bad("encrypted entries are not supported");
  if (e.localOffset > z.size() || z.size() - e.localOffset < 30 ||
      loadLE32(z.data() + e.localOffset) != 0x04034b50)
    return bad("bad local header (truncated or corrupt file)");
  size_t dataStart = e.localOffset + 30 +
                     loadLE16(z.data() + e.localOffset + 26) +
                     loadLE16(z.data() + e.localOffset + 28);
  if (dataStart > z.size() || e.compressedSize > z.size() - dataStart)
    return bad("data runs past the end of the file (truncated?)");
  std::string_view raw = z.substr(dataStart, e.compressedSize);
  std::string out;
  if (e.method == 0) {
    if (e.compressedSize != e.size)
      return bad("stored entry with mismatched sizes");
    out.assign(raw);
  } else if (e.method == 8) {
    // Deflate bombs: the output may not exceed the announced size, and a
    // deflate stream expands at most ~1032:1.
    if (e.size / 1032 > e.compressedSize + 1)
      return bad("announced size is impossible for its compressed size");
    if (e.size > UINT32_MAX || e.compressedSize > UINT32_MAX)
      return bad("deflated entries over 4 GiB are not supported");
    out.resize(e.size);
    z_stream zs;
    std::memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
      return bad("zlib init failed");
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(raw.data()));
    zs.avail_in = uInt(raw.size());
    zs.next_out = reinterpret_cast<Bytef *>(out.data());
    zs.avail_out = uInt(out.size());
    int ret = inflate(&zs, Z_FINISH);
    uint64_t produced = zs.total_out;
    inflateEnd(&zs);
    if (ret != Z_STREAM_END || produced != e.size)
      return bad(ret == Z_DATA_ERROR ? "corrupt deflate data"
                                     : "deflate data ends early or is longer "
                                       "than announced");
  } else {
    return bad(fmt::format("compression method {} is not supported (only "
                           "stored and deflate)",
                           e.method));
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef *data = reinterpret_cast<const Bytef *>(out.data());
  for (size_t left = out.size(), off = 0; left > 0;) {
    uInt chunk = uInt(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, data + off, chunk);
    off += chunk;
    left -= chunk;
  }
  if (uint32_t(crc) != e.crc)
    return bad("CRC mismatch (corrupt file)");
  return out;
}

} // namespace

Expected<Array> readNpz(const std::string &path, const std::string &key) {
  Expected<std::string> z = readFile(path);
  if (!z)
    return z.takeError();
  Expected<std::vector<ZipEntry>> entries = readZipDirectory(*z, path);
  if (!entries)
    return entries.takeError();
  if (entries->empty())
    return makeError("'{}' holds no arrays", path);
  const ZipEntry *entry = nullptr;
  if (key.empty()) {
    entry = &entries->front();
  } else {
    for (const ZipEntry &e : *entries)
      if (e.name == key || e.name == key + ".npy")
        entry = &e;
  }
  if (!entry) {
    std::vector<std::string> names;
    for (const ZipEntry &e : *entries)
      names.push_back(endsWith(e.name, ".npy")
                          ? e.name.substr(0, e.name.size() - 4)
                          : e.name);
    return makeError("'{}' has no array '{}' (it has: {})", path, key,
                     fmt::join(names, ", "));
  }
  Expected<std::string> npy = extractZipEntry(*z, *entry, path);
  if (!npy)
    return npy.takeError();
  return parseNpy(*npy, path + ":" + entry->name);
}

//===----------------------------------------------------------------------===//
// CSV
//===----------------------------------------------------------------------===//

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"')
    s = s.substr(1, s.size() - 2);
  return s;
}

std::vector<std::string_view> splitCsvLine(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    size_t comma = line.find(',');
    fields.push_back(trim(line.substr(0, comma)));
    if (comma == std::string_view::npos)
      break;
    line.remove_prefix(comma + 1);
  }
  return fields;
}

} // namespace

Expected<Array> parseCsv(std::string_view text, std::string_view name,
                         std::optional<bool> header) {
  Array a;
  a.type = ElemType::F64;
  std::vector<double> values;
  size_t columns = 0, rows = 0, lineNo = 0, firstDataLine = 0;
  bool first = true;
  // A UTF-8 byte-order mark (spreadsheets write one) is not part of the first
  // field: left there, it would make a data row look like a header.
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    text.remove_prefix(3);
  while (!text.empty()) {
    ++lineNo;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (trim(line).empty())
      continue;
    std::vector<std::string_view> fields = splitCsvLine(line);
    if (first) {
      first = false;
      bool skip;
      if (header) {
        skip = *header;
      } else {
        skip = false;
        for (std::string_view f : fields)
          if (!parseDouble(f))
            skip = true;
      }
      if (skip)
        continue;
    }
    if (!columns) {
      columns = fields.size();
      firstDataLine = lineNo;
    } else if (fields.size() != columns) {
      return makeError("'{}' line {}: {} values, but line {} has {}", name,
                       lineNo, fields.size(), firstDataLine, columns);
    }
    for (size_t i = 0; i < fields.size(); ++i) {
      std::optional<double> v = parseDouble(fields[i]);
      if (!v)
        return makeError("'{}' line {}, column {}: '{}' is not a number", name,
                         lineNo, i + 1, std::string(fields[i]));
      values.push_back(*v);
    }
    ++rows;
  }
  if (rows == 0)
    return makeError("'{}' has no data rows", name);
  a.shape = {int64_t(rows), int64_t(columns)};
  a.bytes.assign(reinterpret_cast<const char *>(values.data()),
                 values.size() * sizeof(double));
  return a;
}

Expected<Array> readCsv(const std::string &path, std::optional<bool> header) {
  Expected<std::string> text = readFileMaybeGzip(path);
  if (!text)
    return text.takeError();
  return parseCsv(*text, path, header);
}

//===----------------------------------------------------------------------===//
// NPY writer
//===----------------------------------------------------------------------===//

std::string npyHeader(DType type, const Shape &shape) {
  const char *descr = type == DType::F32   ? "<f4"
                      : type == DType::F64 ? "<f8"
                                           : "<i4";
  std::string dims;
  for (int64_t d : shape)
    dims += fmt::format("{}, ", d);
  if (shape.size() > 1)
    dims.resize(dims.size() - 2);
  else if (shape.size() == 1)
    dims.resize(dims.size() - 1);
  std::string dict =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}",
                  descr, dims);
  // Pad with spaces so that the data starts at a multiple of 64 bytes.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(dict.size() & 0xFF);
  out += char(dict.size() >> 8);
  return out + dict;
}

Error writeNpy(const std::string &path, DType type, const Shape &shape,
               const void *data) {
  if (!hostIsLittleEndian())
    return makeError("cannot write '{}': big-endian hosts are not supported",
                     path);
  AtomicFile file;
  if (Error e = file.open(path))
    return e;
  if (Error e = file.write(npyHeader(type, shape)))
    return e;
  if (Error e = file.write(data, size_t(numElements(shape)) * dtypeSize(type)))
    return e;
  return file.commit();
}

} // namespace kiln::rt
