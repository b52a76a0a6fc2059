//===- Image.cpp - Image grids as PNG files -------------------------------===//

#include "runtime/Image.h"

#include "runtime/Files.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>

namespace kiln::rt {

Expected<ImageShape> imageShapeOf(const Shape &row, const std::string &what) {
  ImageShape s;
  if (row.size() == 1) {
    auto side = int64_t(std::llround(std::sqrt(double(row[0]))));
    if (side > 0 && side * side == row[0]) {
      s.height = s.width = side;
      return s;
    }
  } else if (row.size() == 2) {
    s.height = row[0];
    s.width = row[1];
    return s;
  } else if (row.size() == 3 && (row[0] == 1 || row[0] == 3)) {
    s.channels = row[0];
    s.height = row[1];
    s.width = row[2];
    return s;
  }
  return makeError("{} ({} values an example) is not an image: its rows must "
                   "be [H, W], [C, H, W] with 1 or 3 channels, or a square "
                   "number of values (28x28 = 784)",
                   what, formatShape(row));
}

Error ImageGrid::checkSize(ImageShape image, int64_t count, int64_t columns,
                           int64_t scale, int64_t gap) {
  // Every factor is at most 10,000 x 16 x a tensor's side: no overflow in
  // doubles.
  columns = std::max<int64_t>(1, columns);
  double rows = double((count + columns - 1) / columns);
  double width = double(columns) * double(image.width * scale + gap) + gap;
  double height = rows * double(image.height * scale + gap) + gap;
  double bytes = width * height * double(image.channels);
  if (bytes > double(kMaxBytes))
    return makeError("the image grid would be {:.0f}x{:.0f} pixels ({:.0f} "
                     "MiB, more than {} MiB); ask for fewer examples or a "
                     "smaller --scale",
                     width, height, bytes / (1 << 20), kMaxBytes >> 20);
  return Error::success();
}

ImageGrid::ImageGrid(ImageShape image, int64_t count, int64_t columns,
                     int64_t scale, int64_t gap)
    : image_(image), columns_(std::max<int64_t>(1, columns)),
      scale_(std::max<int64_t>(1, scale)), gap_(gap) {
  int64_t rows = (count + columns_ - 1) / columns_;
  width_ = columns_ * (image.width * scale_ + gap) + gap;
  height_ = rows * (image.height * scale_ + gap) + gap;
  // The border is mid-gray, so that black and white pictures stand apart.
  pixels_.assign(size_t(width_ * height_ * image.channels), 128);
}

void ImageGrid::draw(int64_t index, const float *values) {
  int64_t x0 = gap_ + (index % columns_) * (image_.width * scale_ + gap_);
  int64_t y0 = gap_ + (index / columns_) * (image_.height * scale_ + gap_);
  int64_t plane = image_.height * image_.width;
  for (int64_t y = 0; y < image_.height * scale_; ++y)
    for (int64_t x = 0; x < image_.width * scale_; ++x)
      for (int64_t c = 0; c < image_.channels; ++c) {
        float v = values[c * plane + (y / scale_) * image_.width + x / scale_];
        // NaN draws black.
        float clamped = v > 0 ? std::min(v, 1.0f) : 0.0f;
        pixels_[size_t(((y0 + y) * width_ + x0 + x) * image_.channels + c)] =
            uint8_t(std::lround(clamped * 255.0f));
      }
}

Error ImageGrid::writePng(const std::string &path) const {
  Expected<std::string> png =
      encodePng(pixels_.data(), width_, height_, image_.channels);
  if (!png)
    return makeError("'{}': {}", path, png.error().message());
  return writeFileAtomic(path, *png);
}

namespace {

void appendU32(std::string &out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(char((v >> shift) & 0xff));
}

/// Appends a chunk: length, type, data, CRC of type and data.
void appendChunk(std::string &out, const char type[4],
                 const std::string &data) {
  appendU32(out, uint32_t(data.size()));
  size_t start = out.size();
  out.append(type, 4);
  out += data;
  uLong crc = crc32(0, reinterpret_cast<const Bytef *>(out.data() + start),
                    uInt(out.size() - start));
  appendU32(out, uint32_t(crc));
}

} // namespace

Expected<std::string> encodePng(const uint8_t *pixels, int64_t width,
                                int64_t height, int64_t channels) {
  // Each scanline starts with filter type 0 (none).
  size_t stride = size_t(width * channels);
  std::string raw;
  raw.reserve(size_t(height) * (stride + 1));
  for (int64_t y = 0; y < height; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char *>(pixels) + size_t(y) * stride,
               stride);
  }
  uLongf deflatedSize = compressBound(uLong(raw.size()));
  std::string deflated(deflatedSize, '\0');
  int status =
      compress2(reinterpret_cast<Bytef *>(deflated.data()), &deflatedSize,
                reinterpret_cast<const Bytef *>(raw.data()), uLong(raw.size()),
                Z_BEST_COMPRESSION);
  if (status != Z_OK)
    return makeError("cannot compress the image (zlib error {})", status);
  deflated.resize(deflatedSize);

  std::string header;
  appendU32(header, uint32_t(width));
  appendU32(header, uint32_t(height));
  header.push_back(8);                     // bit depth
  header.push_back(channels == 3 ? 2 : 0); // color type: RGB or gray
  header.append(3, '\0'); // deflate, adaptive filtering, no interlace
  std::string png("\x89PNG\r\n\x1a\n", 8);
  appendChunk(png, "IHDR", header);
  appendChunk(png, "IDAT", deflated);
  appendChunk(png, "IEND", std::string());
  return png;
}

} // namespace kiln::rt
