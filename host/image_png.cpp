// PNG from and to memory through libspng's documented API (contract: image.hpp).
#include <spng.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include <hetpipe/error.hpp>

#include "host/image.hpp"

namespace hetpipe::host::img {
namespace {

[[noreturn]] void fail(const std::string& reason) {
  throw input_error("", reason);
}

struct ctx_free {
  void operator()(spng_ctx* c) const { spng_ctx_free(c); }
};
using ctx_ptr = std::unique_ptr<spng_ctx, ctx_free>;

// The most a deflate stream expands: a 258-byte match in 2 bits.
constexpr std::uint64_t max_deflate_ratio = 1032;

// Ancillary chunks (text, ICC profiles...) are read, and zTXt, iTXt and iCCP inflated, before
// the pixel data, although hetpipe uses none of them: a few hundred KiB of zTXt inflated to
// hundreds of MiB. One such chunk may hold 16 MiB, all of them together 64 MiB once inflated.
// libspng holds the text of zTXt and iTXt to half the chunk limit once inflated: 8 MiB (an 8 MiB
// text passed, 8 MiB and 92 bytes did not, 2-core box).
constexpr std::size_t max_ancillary_chunk = std::size_t{16} << 20;
constexpr std::size_t max_ancillary_total = std::size_t{64} << 20;

void check(int err, const char* what) {
  if (err == SPNG_ECHUNK_LIMITS)
    fail("bad PNG: its ancillary chunks (text, ICC profile...) pass the limits: " +
         std::to_string(max_ancillary_chunk >> 20) + " MiB a chunk, " +
         std::to_string(max_ancillary_chunk >> 21) + " MiB of compressed text once inflated, " +
         std::to_string(max_ancillary_total >> 20) + " MiB in all (" + what + ")");
  if (err != 0) fail(std::string("bad PNG: ") + spng_strerror(err) + " (" + what + ")");
}

}  // namespace

namespace {

// A decoder over the buffer with its header read: the IHDR and the shape decode_png gives.
ctx_ptr open_png(const void* data, std::size_t size, spng_ihdr& ihdr, image_shape& shape) {
  ctx_ptr ctx(spng_ctx_new(0));
  if (!ctx) throw std::bad_alloc();
  check(spng_set_png_buffer(ctx.get(), data, size), "reading the buffer");
  check(spng_set_image_limits(ctx.get(), max_dimension, max_dimension), "setting limits");
  check(spng_set_chunk_limits(ctx.get(), max_ancillary_chunk, max_ancillary_total),
        "setting limits");
  check(spng_get_ihdr(ctx.get(), &ihdr), "header");
  shape.width = ihdr.width;
  shape.height = ihdr.height;
  switch (ihdr.color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE:
      shape.channels = 1;
      break;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:
      shape.channels = 2;
      break;
    case SPNG_COLOR_TYPE_TRUECOLOR:
      shape.channels = 3;
      break;
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA:
      shape.channels = 4;
      break;
    case SPNG_COLOR_TYPE_INDEXED: {
      // The palette first: without one the decoder's state is lost, and every later call said
      // only "non-recoverable state". A missing tRNS is no error; any other failure is.
      spng_plte plte{};
      const int plte_err = spng_get_plte(ctx.get(), &plte);
      if (plte_err == SPNG_ECHUNKAVAIL || plte_err == SPNG_ENOPLTE)
        fail("bad PNG: a palette image without its palette (no PLTE before the pixel data)");
      check(plte_err, "palette");
      spng_trns trns{};
      const int trns_err = spng_get_trns(ctx.get(), &trns);
      if (trns_err != SPNG_ECHUNKAVAIL) check(trns_err, "transparency");
      shape.channels = trns_err == 0 ? 4 : 3;
      break;
    }
    default:
      fail("bad PNG: colour type " + std::to_string(ihdr.color_type));
  }
  const bool indexed = ihdr.color_type == SPNG_COLOR_TYPE_INDEXED;
  shape.maxval = !indexed && ihdr.bit_depth == 16 ? 65535 : 255;
  check_shape(shape);
  // The samples are allocated from the header before the pixel data is read: a header the file
  // cannot back (a few bytes declaring 60000 x 9000) must not get a gigabyte. The pixel data
  // inflates from at most `size` bytes, and deflate expands at most 1032:1.
  const std::uint64_t png_channels = indexed ? 1 : shape.channels;
  const std::uint64_t pixel_bytes = shape.pixels() * png_channels * ihdr.bit_depth / 8;
  if (pixel_bytes / max_deflate_ratio >= size)
    fail("bad PNG: a " + describe(shape) + " image needs " + std::to_string(pixel_bytes) +
         " bytes of pixel data, more than a file of " + std::to_string(size) +
         " bytes holds (deflate expands at most " + std::to_string(max_deflate_ratio) + ":1)");
  return ctx;
}

}  // namespace

image_shape read_png_shape(const void* data, std::size_t size) {
  spng_ihdr ihdr{};
  image_shape shape;
  open_png(data, size, ihdr, shape);
  return shape;
}

namespace {

// The samples of an opened PNG into out (shape.samples() of them), row by row: each row decoded
// is widened at once, while it is in the cache, and no image-sized buffer of the PNG's own
// samples is made (an 8192^2 gray image's was 64 MiB of fresh pages). An interlaced image's rows
// come pass by pass: it is decoded whole first. progress: told of rows as they are decoded.
void decode_raster(spng_ctx* ctx, const spng_ihdr& ihdr, const image_shape& shape,
                   std::uint16_t* out, const row_progress& progress) {
  const int depth = ihdr.bit_depth;
  const bool indexed = ihdr.color_type == SPNG_COLOR_TYPE_INDEXED;
  const bool wide = !indexed && depth == 16;

  // Native layout (host-endian 16-bit samples, low depths packed), except palettes: expanded by
  // libspng to RGBA8 (tRNS applied) and the alpha dropped below when there is no tRNS.
  const int fmt = indexed ? SPNG_FMT_RGBA8 : SPNG_FMT_PNG;
  const int flags = indexed ? SPNG_DECODE_TRNS : 0;
  std::size_t len = 0;
  check(spng_decoded_image_size(ctx, fmt, &len), "image size");
  const std::size_t width = shape.width, height = shape.height, ch = shape.channels;
  const std::size_t stride = len / height;  // of a decoded row
  const std::size_t want = indexed      ? width * 4
                           : wide       ? width * ch * 2
                           : depth == 8 ? width * ch
                                        : (width * depth + 7) / 8;
  if (len % height != 0 || stride != want) fail("bad PNG: unexpected decoded size");

  // Decoded row `row` (stride bytes) as output row y.
  const auto widen = [&](const std::uint8_t* row, std::size_t y) {
    std::uint16_t* o = out + y * width * ch;
    if (indexed) {
      for (std::size_t px = 0; px < width; ++px)
        for (std::size_t c = 0; c < ch; ++c) o[px * ch + c] = row[px * 4 + c];
    } else if (wide) {
      std::memcpy(o, row, stride);
    } else if (depth == 8) {
      for (std::size_t i = 0; i < stride; ++i) o[i] = row[i];
    } else {
      // Gray at 1, 2 or 4 bits, most significant bits first; scaled to 0..255.
      const unsigned scale = 255u / ((1u << depth) - 1);
      const unsigned mask = (1u << depth) - 1;
      for (std::size_t x = 0; x < width; ++x) {
        const std::size_t bit = x * depth;
        const unsigned v = (row[bit / 8] >> (8 - depth - bit % 8)) & mask;
        o[x] = static_cast<std::uint16_t>(v * scale);
      }
    }
  };
  row_teller tell(progress);

  if (ihdr.interlace_method != 0) {
    if (wide) {
      check(spng_decode_image(ctx, out, len, fmt, flags), "pixel data");
    } else {
      std::vector<std::uint8_t> raw(len);
      check(spng_decode_image(ctx, raw.data(), len, fmt, flags), "pixel data");
      for (std::size_t y = 0; y < height; ++y) widen(raw.data() + y * stride, y);
    }
  } else {
    check(spng_decode_image(ctx, nullptr, 0, fmt, flags | SPNG_DECODE_PROGRESSIVE), "pixel data");
    std::vector<std::uint8_t> row(wide ? 0 : stride);
    for (std::size_t y = 0; y < height; ++y) {
      tell.before(y);
      // A 16-bit row is already the output's: straight into it.
      void* dst = wide ? static_cast<void*>(out + y * width * ch) : row.data();
      const int err = spng_decode_row(ctx, dst, stride);
      if (err != SPNG_EOI || y + 1 != height) check(err, "pixel data");
      if (!wide) widen(row.data(), y);
    }
  }
  // The rest of the file to its IEND: the pixel data's last chunk has its CRC checked only there,
  // so that a byte flipped in it was decoded as if whole, and a file cut after its pixel data
  // passed (bytes after the IEND are not read).
  check(spng_decode_chunks(ctx), "the end of the pixel data and the chunks after it");
  tell.done(height);
}

}  // namespace

image decode_png(const void* data, std::size_t size, const row_progress& progress) {
  spng_ihdr ihdr{};
  image im;
  ctx_ptr ctx = open_png(data, size, ihdr, im.shape);
  im.samples = take_samples(im.shape.samples());
  decode_raster(ctx.get(), ihdr, im.shape, im.samples.data(), progress);
  return im;
}

image_shape decode_png(const void* data, std::size_t size, std::uint16_t* out, std::size_t n,
                       const row_progress& progress) {
  spng_ihdr ihdr{};
  image_shape shape;
  ctx_ptr ctx = open_png(data, size, ihdr, shape);
  if (shape.samples() != n)
    throw std::invalid_argument("decode_png: " + std::to_string(n) + " samples for " +
                                describe(shape));
  decode_raster(ctx.get(), ihdr, shape, out, progress);
  return shape;
}

namespace {

// 8-bit samples (wide false) or host-order 16-bit ones, already scaled to the full range.
std::vector<std::uint8_t> encode_raw(const image_shape& shape, const void* raw, std::size_t bytes,
                                     bool wide, int compression_level,
                                     const row_progress& progress) {
  static const std::uint8_t color_type[] = {
      0, SPNG_COLOR_TYPE_GRAYSCALE, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, SPNG_COLOR_TYPE_TRUECOLOR,
      SPNG_COLOR_TYPE_TRUECOLOR_ALPHA};
  ctx_ptr ctx(spng_ctx_new(SPNG_CTX_ENCODER));
  if (!ctx) throw std::bad_alloc();
  check(spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1), "encoder option");
  check(spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_LEVEL, compression_level),
        "compression level");
  spng_ihdr ihdr{};
  ihdr.width = shape.width;
  ihdr.height = shape.height;
  ihdr.bit_depth = wide ? 16 : 8;
  ihdr.color_type = color_type[shape.channels];
  check(spng_set_ihdr(ctx.get(), &ihdr), "encoding the header");
  if (!progress) {
    // libspng reads the buffer only; its API takes a non-const pointer.
    check(spng_encode_image(ctx.get(), const_cast<void*>(raw), bytes, SPNG_FMT_PNG,
                            SPNG_ENCODE_FINALIZE),
          "encoding the pixels");
  } else {
    check(spng_encode_image(ctx.get(), nullptr, 0, SPNG_FMT_PNG,
                            SPNG_ENCODE_PROGRESSIVE | SPNG_ENCODE_FINALIZE),
          "encoding the pixels");
    const std::size_t stride = bytes / shape.height;
    const auto* row = static_cast<const std::uint8_t*>(raw);
    row_teller tell(progress);
    for (std::size_t y = 0; y < shape.height; ++y) {
      tell.before(y);
      const int err = spng_encode_row(ctx.get(), row + y * stride, stride);
      if (err != SPNG_EOI || y + 1 != shape.height) check(err, "encoding the pixels");
    }
    tell.done(shape.height);
  }
  std::size_t len = 0;
  int err = 0;
  void* buf = spng_get_png_buffer(ctx.get(), &len, &err);
  check(err, "encoded buffer");
  if (!buf) fail("PNG encoder produced no output");
  std::vector<std::uint8_t> out(static_cast<std::uint8_t*>(buf),
                                static_cast<std::uint8_t*>(buf) + len);
  std::free(buf);
  return out;
}

}  // namespace

std::vector<std::uint8_t> encode_png(const image& im, int compression_level,
                                     const row_progress& progress) {
  check_shape(im.shape);
  if (im.samples.size() != im.shape.samples())
    fail("image has " + std::to_string(im.samples.size()) + " samples, its shape says " +
         std::to_string(im.shape.samples()));
  const bool wide = im.shape.maxval > 255;
  const std::uint32_t full = wide ? 65535 : 255;
  const std::uint32_t m = im.shape.maxval;
  if (m == 65535)
    return encode_raw(im.shape, im.samples.data(), im.samples.size() * 2, true, compression_level,
                      progress);
  const std::size_t n = im.samples.size();
  std::vector<std::uint8_t> raw(n * (wide ? 2 : 1));
  if (wide) {
    auto* w = reinterpret_cast<std::uint16_t*>(raw.data());  // vector storage: aligned
    for (std::size_t i = 0; i < n; ++i)
      w[i] = static_cast<std::uint16_t>((2ull * im.samples[i] * full + m) / (2ull * m));
  } else {
    for (std::size_t i = 0; i < n; ++i)
      raw[i] = static_cast<std::uint8_t>(m == full ? im.samples[i]
                                                   : (2u * im.samples[i] * full + m) / (2u * m));
  }
  return encode_raw(im.shape, raw.data(), raw.size(), wide, compression_level, progress);
}

std::vector<std::uint8_t> encode_png(const image_shape& shape, const void* samples,
                                     sample_layout layout, int compression_level,
                                     const row_progress& progress) {
  check_shape(shape);
  const bool full = shape.maxval == 255 || shape.maxval == 65535;
  const bool wide = shape.maxval > 255;
  if (full && layout == (wide ? sample_layout::u16 : sample_layout::u8))
    return encode_raw(shape, samples, shape.samples() * bytes_per_sample(layout), wide,
                      compression_level, progress);
  // Anything else (a maxval to rescale, another layout): through an image.
  image im;
  im.shape = shape;
  im.samples.resize(shape.samples());
  unpack_raster(samples, im.samples.size(), layout, im.samples.data());
  return encode_png(im, compression_level, progress);
}

}  // namespace hetpipe::host::img
