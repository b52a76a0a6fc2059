//===- Tensor.cpp - Element types, shapes and aligned tensor buffers -----===//

#include "runtime/Tensor.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace kiln::rt {

const char *dtypeName(DType type) {
  switch (type) {
  case DType::F32:
    return "f32";
  case DType::F64:
    return "f64";
  case DType::I32:
    return "i32";
  }
  return "?";
}

const char *safetensorsName(DType type) {
  switch (type) {
  case DType::F32:
    return "F32";
  case DType::F64:
    return "F64";
  case DType::I32:
    return "I32";
  }
  return "?";
}

std::optional<DType> parseDType(std::string_view name) {
  if (name == "f32")
    return DType::F32;
  if (name == "f64")
    return DType::F64;
  if (name == "i32")
    return DType::I32;
  return std::nullopt;
}

std::optional<DType> parseSafetensorsDType(std::string_view name) {
  if (name == "F32")
    return DType::F32;
  if (name == "F64")
    return DType::F64;
  if (name == "I32")
    return DType::I32;
  return std::nullopt;
}

size_t dtypeSize(DType type) {
  switch (type) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F64:
    return 8;
  }
  return 0;
}

bool isFloat(DType type) { return type != DType::I32; }

int64_t numElements(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string formatShape(const Shape &shape) {
  if (shape.empty())
    return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i)
    s += fmt::format("{}{}", i ? "x" : "", shape[i]);
  return s;
}

std::optional<Shape> parseShape(std::string_view text) {
  if (text == "scalar")
    return Shape{};
  Shape shape;
  int64_t elements = 1;
  while (true) {
    size_t x = text.find('x');
    std::string_view dim = text.substr(0, x);
    int64_t d = 0;
    auto [end, ec] = std::from_chars(dim.data(), dim.data() + dim.size(), d);
    if (dim.empty() || ec != std::errc() || end != dim.data() + dim.size() ||
        d <= 0 || !checkedMul(elements, d, elements))
      return std::nullopt;
    shape.push_back(d);
    if (x == std::string_view::npos)
      break;
    text.remove_prefix(x + 1);
  }
  // Byte sizes (up to 8 bytes an element) must fit as well.
  if (elements > (int64_t(1) << 59))
    return std::nullopt;
  return shape;
}

bool checkedMul(int64_t a, int64_t b, int64_t &result) {
  return !__builtin_mul_overflow(a, b, &result);
}

void Buffer::Free::operator()(void *p) const { std::free(p); }

Buffer::Buffer(size_t bytes) : size_(bytes) {
  // aligned_alloc wants a multiple of the alignment; never allocate 0 bytes.
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0)
    rounded = 64;
  void *p = std::aligned_alloc(64, rounded);
  if (!p) {
    // Without exceptions there is no way to unwind; sizes come from the
    // manifest or from files already validated against their length.
    fmt::print(stderr, "error: out of memory allocating {} bytes\n", bytes);
    std::exit(1);
  }
  std::memset(p, 0, rounded);
  data_.reset(p);
}

Tensor::Tensor(std::string name, DType type, Shape shape)
    : name(std::move(name)), type(type), shape(std::move(shape)),
      buffer(size_t(rt::numElements(this->shape)) * dtypeSize(type)) {}

double Tensor::at(int64_t i) const {
  switch (type) {
  case DType::F32:
    return buffer.as<float>()[i];
  case DType::F64:
    return buffer.as<double>()[i];
  case DType::I32:
    return buffer.as<int32_t>()[i];
  }
  return 0;
}

} // namespace kiln::rt
