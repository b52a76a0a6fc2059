"""Decodes a PNG the runtime wrote (8-bit grayscale or RGB, no interlace)
with zlib alone and checks its grid: `read_png.py FILE COLUMNS ROWS SIDE`
expects COLUMNS x ROWS pictures of SIDE x SIDE pixels with a 2-pixel border,
and pictures that are not blank. Prints `png ok`."""

import struct
import sys
import zlib


def main(path, columns, rows, side):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind}"
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {0: 1, 2: 3}[color]
    assert depth == 8
    gap = 2
    assert width == columns * (side + gap) + gap, (width, columns, side)
    assert height == rows * (side + gap) + gap, (height, rows, side)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = width * channels + 1
    assert len(raw) == height * stride
    pixels = [raw[y * stride + 1:(y + 1) * stride] for y in range(height)]
    # The first picture is not blank.
    first = [pixels[gap + y][(gap + x) * channels]
             for y in range(side) for x in range(side)]
    assert max(first) > 100 and min(first) < 50, (min(first), max(first))
    print("png ok")


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:]))
