//===- Tensor.h - Element types, shapes and aligned tensor buffers -------===//
//
// The runtime's view of a tensor: an element type (the manifest's f32, f64,
// i32), a static row-major shape, and a 64-byte aligned, zero-initialized
// buffer that the runtime owns and hands to the compiled step functions.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TENSOR_H
#define KILN_RUNTIME_TENSOR_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::rt {

/// Element types of model tensors.
enum class DType { F32, F64, I32 };

using Shape = std::vector<int64_t>;

/// `f32`, `f64`, `i32`.
const char *dtypeName(DType type);
/// The safetensors name: `F32`, `F64`, `I32`.
const char *safetensorsName(DType type);
std::optional<DType> parseDType(std::string_view name);
std::optional<DType> parseSafetensorsDType(std::string_view name);
size_t dtypeSize(DType type);
bool isFloat(DType type);

/// The product of the dimensions (1 for a scalar).
int64_t numElements(const Shape &shape);
/// `64x784`, `scalar` for rank 0 (the manifest's notation).
std::string formatShape(const Shape &shape);
/// Parses the manifest's notation; nullopt for anything else.
std::optional<Shape> parseShape(std::string_view text);

/// Multiplies non-negative sizes; false on overflow of int64_t.
bool checkedMul(int64_t a, int64_t b, int64_t &result);

/// An owned, zero-initialized block of memory aligned to 64 bytes.
class Buffer {
public:
  Buffer() = default;
  explicit Buffer(size_t bytes);

  void *data() { return data_.get(); }
  const void *data() const { return data_.get(); }
  size_t size() const { return size_; }
  template <typename T> T *as() { return static_cast<T *>(data()); }
  template <typename T> const T *as() const {
    return static_cast<const T *>(data());
  }

private:
  struct Free {
    void operator()(void *p) const;
  };
  std::unique_ptr<void, Free> data_;
  size_t size_ = 0;
};

/// A named tensor the runtime owns (a parameter, optimizer state, a batch).
struct Tensor {
  std::string name;
  DType type = DType::F32;
  Shape shape;
  Buffer buffer;

  Tensor() = default;
  Tensor(std::string name, DType type, Shape shape);
  int64_t numElements() const { return rt::numElements(shape); }
  size_t numBytes() const { return buffer.size(); }
  void *data() { return buffer.data(); }
  const void *data() const { return buffer.data(); }
  /// Element I as a double (any dtype).
  double at(int64_t i) const;
};

} // namespace kiln::rt

#endif // KILN_RUNTIME_TENSOR_H
