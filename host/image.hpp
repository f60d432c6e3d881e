// The image model of `hetpipe image` and its codecs: binary PNM (P5 graymap, P6 pixmap) written
// here from the Netpbm format description, and PNG through libspng. CUDA-free; C++17 (nvcc reads
// it through cuda/image_kernels.hpp).
//
//   namespace img = hetpipe::host::img;
//   img::image a = img::decode_image(bytes.data(), bytes.size());   // PNM or PNG, by magic
//   // a.shape: {width, height, channels, maxval}; a.samples: interleaved, row-major uint16
//   std::vector<std::uint8_t> png = img::encode_png(a);
//
// Samples are kept as uint16 for both depths (exact for 8 and 16 bits, one code path). Codec
// errors are hetpipe::input_error with an empty file name: the caller knows the file and rethrows
// with it (input_error(name, e.reason())).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hetpipe::host::img {

// Limits on every image decoded or produced: width and height in 1..max_dimension, at most
// max_pixels pixels (16384 x 16384 = 2^28 fits; the caps keep every index and every sum of the
// filters within 64 bits).
constexpr std::uint32_t max_dimension = 1u << 20;
constexpr std::uint64_t max_pixels = std::uint64_t{1} << 31;

struct image_shape {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  std::uint32_t channels = 0;  // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
  std::uint32_t maxval = 255;  // the largest sample value, 1..65535 (PNG: 255 or 65535)

  // Bits per sample on output: 8 when maxval <= 255 (one byte per sample), else 16.
  std::uint32_t depth() const { return maxval <= 255 ? 8 : 16; }
  std::uint64_t pixels() const { return std::uint64_t{width} * height; }
  std::size_t samples() const { return static_cast<std::size_t>(pixels()) * channels; }
  bool has_alpha() const { return channels == 2 || channels == 4; }
  std::uint32_t color_channels() const { return has_alpha() ? channels - 1 : channels; }
  bool operator==(const image_shape& o) const {
    return width == o.width && height == o.height && channels == o.channels && maxval == o.maxval;
  }
  bool operator!=(const image_shape& o) const { return !(*this == o); }
};

// Throws input_error when the shape breaks a limit above (or has channels not in 1..4, maxval
// not in 1..65535).
void check_shape(const image_shape& s);

// "1920x1080 RGB 8-bit" (for messages).
std::string describe(const image_shape& s);

struct image {
  image_shape shape;
  // Interleaved samples, row-major: pixel (x, y) channel c at (y * width + x) * channels + c,
  // every value <= shape.maxval.
  std::vector<std::uint16_t> samples;
};

// How the samples of a raster lie in memory. The GPU path moves rasters (a PNM file's pixel data
// as it is, a decoded PNG's samples), not images; image::samples is the u16 layout.
enum class sample_layout : std::uint8_t {
  u8,     // one byte per sample (maxval <= 255)
  u16be,  // two bytes per sample, most significant first (PNM with maxval > 255)
  u16,    // host-order uint16
};
constexpr std::size_t bytes_per_sample(sample_layout l) {
  return l == sample_layout::u8 ? 1 : 2;
}
// n samples into a raster of `layout` at dst (u8 keeps the low byte), and back; any alignment.
// (The GPU path does the same on the device: cuda/image_kernels.hpp pack_samples.)
void pack_raster(const std::uint16_t* samples, std::size_t n, sample_layout layout, void* dst);
void unpack_raster(const void* src, std::size_t n, sample_layout layout, std::uint16_t* samples);

// Sample buffers of large images are reused per thread instead of being mapped and zeroed afresh
// (an 8192 x 8192 16-bit image is 128 MiB; page faults were a third of the CPU time of such
// jobs). take_samples gives n samples whose values are unspecified (every producer overwrites
// all of them); recycle_samples keeps a buffer for the calling thread's next take.
std::vector<std::uint16_t> take_samples(std::size_t n);
void recycle_samples(std::vector<std::uint16_t>&& v) noexcept;

// --- PNM (binary P5 / P6) ---
//
// Header: the magic, then width, height and maxval as decimal numbers separated by whitespace
// (space, \t, \n, \v, \f, \r) and comments ('#' to the end of the line), then exactly one
// whitespace character, then the raster: width * height * channels samples, one byte each when
// maxval <= 255, else two bytes, most significant first.
// Strict: every sample must be <= maxval, and nothing may follow the raster (multi-image PNM
// streams are refused, so a file is one image). P1-P4 (plain and bitmap) and P7 (PAM) are refused.
image decode_pnm(const void* data, std::size_t size);
// A PNM file without its samples: the shape and where the raster starts, after every check of
// decode_pnm but the sample values (the raster is exactly shape.samples() samples of
// pnm_layout(shape)). The GPU path copies the raster as it is and checks the values there.
struct pnm_header {
  image_shape shape;
  std::size_t raster_offset = 0;
};
pnm_header read_pnm_header(const void* data, std::size_t size);
constexpr sample_layout pnm_layout(const image_shape& s) {
  return s.maxval > 255 ? sample_layout::u16be : sample_layout::u8;
}
// The header encode_pnm writes ("P5\n<w> <h>\n<maxval>\n", or P6); input_error for an image with
// alpha (P5/P6 hold gray or RGB only).
std::string pnm_header_text(const image_shape& s);
// The reason decode_pnm gives for sample `index` (of the raster) holding `value` > maxval.
std::string pnm_bad_sample(const image_shape& s, std::size_t index, std::uint32_t value);
// Whether a raster of `layout` can hold a sample above s.maxval (one byte can pass a maxval below
// 255, two bytes one below 65535).
constexpr bool can_exceed_maxval(const image_shape& s, sample_layout layout) {
  return s.maxval < (layout == sample_layout::u8 ? 255u : 65535u);
}
// input_error with pnm_bad_sample's reason for the raster's first sample above s.maxval (the
// raster: s.samples() samples of `layout` at `raster`); returns when there is none.
void check_raster(const image_shape& s, const void* raster, sample_layout layout);
// P5 for 1 channel, P6 for 3 channels ("P5\n<w> <h>\n<maxval>\n" then the raster); an image with
// alpha cannot be written as PNM (input_error).
std::vector<std::uint8_t> encode_pnm(const image& im);
// Bytes encode_pnm writes; writes them to dst (pnm_size(s) bytes) without a vector of its own.
std::size_t pnm_size(const image_shape& s);
void encode_pnm(const image& im, void* dst);

// Work over an image's rows (the filter chain's, the PNG codec's) tells of rows done this many
// at a time, to a row_progress: a caller learns the rate of one long image before it is done,
// and may stop it by throwing from the call.
inline constexpr std::size_t rows_per_progress = 64;
using row_progress = std::function<void(std::size_t rows)>;

// A loop over rows [first, ...) that tells a row_progress (which may be empty) as it goes:
// before(y) ahead of each row y, done(end) once rows up to end are made.
class row_teller {
 public:
  explicit row_teller(const row_progress& progress, std::size_t first = 0)
      : progress_(progress), told_(first) {}
  void before(std::size_t y) {
    if (progress_ && y - told_ == rows_per_progress) {
      progress_(rows_per_progress);
      told_ = y;
    }
  }
  void done(std::size_t end) {
    if (progress_ && end > told_) progress_(end - told_);
    told_ = end;
  }

 private:
  const row_progress& progress_;
  std::size_t told_;
};

// --- PNG (libspng) ---
//
// Decodes gray, gray + alpha, RGB and RGBA at 8 and 16 bits. Gray at 1, 2 or 4 bits is scaled to
// 8 bits (v * 255 / (2^d - 1), exact); a palette image becomes RGB, or RGBA when it has a tRNS
// chunk. The tRNS colour key of a gray or RGB image is ignored (no alpha channel is made), and so
// are gamma and colour-space chunks: samples are taken as stored. A header declaring more pixel
// data than the file can inflate to (over 1032 bytes per byte of file, deflate's limit) is
// refused before anything is allocated, and so is a file whose ancillary chunks (text, ICC
// profile...) inflate to more than 16 MiB each or 64 MiB together (libspng reads them all). The
// file is read to its IEND: a bad CRC in any chunk, or a file cut after its pixel data, is an
// input_error; bytes after the IEND are not read.
// progress, when given, is told of rows as they are decoded (rows_per_progress at a time; an
// interlaced image's all at its end).
image decode_png(const void* data, std::size_t size, const row_progress& progress = {});
// The same into out, which holds n samples: n must be the image's sample count (read_png_shape;
// std::invalid_argument otherwise). Returns the shape.
image_shape decode_png(const void* data, std::size_t size, std::uint16_t* out, std::size_t n,
                       const row_progress& progress = {});
// The shape decode_png would give, from the header alone (cheap); input_error as decode_png.
image_shape read_png_shape(const void* data, std::size_t size);
// Gray, gray + alpha, RGB or RGBA at 8 bits (maxval <= 255) or 16 bits. A maxval other than 255 or
// 65535 is rescaled to the full range (v * full / maxval, rounded half up) since PNG has no
// maxval. compression_level: zlib's 0..9. progress, when given, is told of rows as they are
// compressed (the same bytes: libspng's row by row encoding; an 8192^2 gray image at level 6
// takes seconds).
std::vector<std::uint8_t> encode_png(const image& im, int compression_level = 6,
                                     const row_progress& progress = {});
// The same from shape.samples() samples at `samples` in layout u8 (maxval <= 255) or u16, as the
// GPU path copies them back.
std::vector<std::uint8_t> encode_png(const image_shape& shape, const void* samples,
                                     sample_layout layout, int compression_level = 6,
                                     const row_progress& progress = {});

enum class image_format { unknown, pnm, png };
// By magic: "P1".."P7" is pnm (decode_pnm refuses all but P5/P6 with a clear reason), the 8-byte
// PNG signature is png.
image_format sniff_format(const void* data, std::size_t size);
// decode_pnm or decode_png by sniff_format; input_error for anything else.
image decode_image(const void* data, std::size_t size);

}  // namespace hetpipe::host::img
