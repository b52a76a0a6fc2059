//===- Data.h - Readers for IDX, .npy, .npz and CSV files; .npy writer ---===//
//
// Each reader returns an Array: the file's element type, shape and row-major
// values in host byte order, after checking the file's structure (magic
// numbers, headers, that the data is as long as the header says). Errors name
// the file and what is wrong with it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_DATA_H
#define KILN_RUNTIME_DATA_H

#include "runtime/Error.h"
#include "runtime/Tensor.h"

#include <optional>
#include <string>
#include <string_view>

namespace kiln::rt {

/// Element types found in data files.
enum class ElemType { Bool, U8, I8, U16, I16, U32, I32, U64, I64, F32, F64 };

const char *elemTypeName(ElemType type);
size_t elemTypeSize(ElemType type);
bool isFloatElem(ElemType type);

/// A dense array read from a data file.
struct Array {
  ElemType type = ElemType::F32;
  Shape shape; ///< dimensions may be 0
  std::string bytes;

  int64_t numElements() const { return rt::numElements(shape); }
  /// Element I as a double.
  double get(int64_t i) const;
  /// Element I as an int64 (exact for the integer types).
  int64_t getInt(int64_t i) const;
};

/// IDX (as MNIST): magic 00 00 TYPE RANK, big-endian u32 dims, big-endian
/// data. A `.gz` path is decompressed first.
Expected<Array> readIdx(const std::string &path);
Expected<Array> parseIdx(std::string_view bytes, std::string_view name);

/// NumPy .npy, format versions 1 to 3, C order, bool/int/uint/float types of
/// either byte order. A `.gz` path is decompressed first.
Expected<Array> readNpy(const std::string &path);
Expected<Array> parseNpy(std::string_view bytes, std::string_view name);

/// NumPy .npz (a zip archive of .npy files, stored or deflated, zip64 too): the
/// array named KEY (with or without `.npy`), or the first one if KEY is empty.
Expected<Array> readNpz(const std::string &path, const std::string &key);

/// CSV: one example a line, numbers separated by commas. HEADER: whether the
/// first line is a header to skip; unset: a first line that is not all numbers
/// is taken as a header. The result is f64, rows x columns.
Expected<Array> readCsv(const std::string &path, std::optional<bool> header);
Expected<Array> parseCsv(std::string_view text, std::string_view name,
                         std::optional<bool> header);

/// Writes a C-order .npy file (format 1.0) atomically.
Error writeNpy(const std::string &path, DType type, const Shape &shape,
               const void *data);
/// The .npy bytes up to the data (magic, version, padded header).
std::string npyHeader(DType type, const Shape &shape);

} // namespace kiln::rt

#endif // KILN_RUNTIME_DATA_H
