//===- Image.h - Image grids as PNG files ---------------------*- C++ -*-===//
//
// What the `sample` and `reconstruct` commands write: examples laid out as
// images (a row of 784 values is a 28x28 picture; [C, H, W] rows with one or
// three channels are pictures of that size), tiled into a grid and written as
// an 8-bit grayscale or RGB PNG (deflated with zlib), atomically.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_IMAGE_H
#define KILN_RUNTIME_IMAGE_H

#include "runtime/Error.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt {

/// How one example (a row of a batch) is drawn.
struct ImageShape {
  int64_t channels = 1, height = 0, width = 0;
  int64_t size() const { return channels * height * width; }
};

/// The picture a row of shape `row` (a batch's shape without its leading
/// dimension) holds: [H, W], [C, H, W] with C 1 or 3, or [N] with N a square
/// (a flattened grayscale image). An error names `what` otherwise.
Expected<ImageShape> imageShapeOf(const Shape &row, const std::string &what);

/// A grid of pictures: `columns` per row of the grid, each pixel drawn as a
/// `scale` x `scale` square, separated and framed by a border of `gap`
/// pixels. Values in [0, 1] map to 0..255 (clamped).
class ImageGrid {
public:
  /// The most bytes of pixels a grid may hold (256 MiB).
  static constexpr int64_t kMaxBytes = int64_t(1) << 28;
  /// An error unless the grid of these arguments fits in kMaxBytes.
  static Error checkSize(ImageShape image, int64_t count, int64_t columns,
                         int64_t scale = 1, int64_t gap = 2);

  ImageGrid(ImageShape image, int64_t count, int64_t columns, int64_t scale = 1,
            int64_t gap = 2);

  /// Draws `values` (image.size() floats, channel-major) as picture `index`
  /// (row-major in the grid).
  void draw(int64_t index, const float *values);

  int64_t width() const { return width_; }
  int64_t height() const { return height_; }
  /// The pixels, row-major, `channels` bytes each.
  const std::vector<uint8_t> &pixels() const { return pixels_; }

  /// Writes the grid to PATH as a PNG, atomically.
  Error writePng(const std::string &path) const;

private:
  ImageShape image_;
  int64_t columns_, scale_, gap_, width_, height_;
  std::vector<uint8_t> pixels_;
};

/// The PNG encoding of 8-bit pixels (`channels` 1: grayscale, 3: RGB).
Expected<std::string> encodePng(const uint8_t *pixels, int64_t width,
                                int64_t height, int64_t channels);

} // namespace kiln::rt

#endif // KILN_RUNTIME_IMAGE_H
