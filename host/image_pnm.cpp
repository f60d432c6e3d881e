// Binary PNM (P5/P6) from and to memory, written from the Netpbm format description, plus the
// shape checks and format sniffing shared by the codecs (contract: image.hpp).
#include <algorithm>
#include <cstring>
#include <string>

#include <hetpipe/error.hpp>

#include "host/clones.hpp"
#include "host/image.hpp"

namespace hetpipe::host::img {
namespace {

[[noreturn]] void fail(const std::string& reason) {
  throw input_error("", reason);
}

bool is_space(std::uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Reads the header fields one by one from p[0..n).
class header_reader {
 public:
  header_reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}

  // Whitespace and comments, then a decimal number.
  std::uint64_t number(const char* what) {
    skip_space_and_comments();
    if (i_ == n_) fail(std::string("PNM header ends before the ") + what);
    if (p_[i_] < '0' || p_[i_] > '9')
      fail(std::string("malformed PNM header: expected the ") + what +
           " (a decimal number), found " + shown(p_[i_]));
    std::uint64_t v = 0;
    while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') {
      v = v * 10 + (p_[i_++] - '0');
      if (v > 0xFFFFFFFFu) fail(std::string("malformed PNM header: the ") + what + " is too large");
    }
    if (i_ < n_ && !is_space(p_[i_]) && p_[i_] != '#')
      fail(std::string("malformed PNM header: ") + shown(p_[i_]) + " after the " + what);
    return v;
  }

  // The single whitespace character after maxval (a comment there runs to its line end, which
  // is then the delimiter). Returns the offset of the raster.
  std::size_t raster_start() {
    if (i_ < n_ && p_[i_] == '#') {
      while (i_ < n_ && p_[i_] != '\n' && p_[i_] != '\r') ++i_;
    }
    if (i_ == n_) fail("PNM header ends before the pixel data (no whitespace after maxval)");
    return i_ + 1;  // number() left us on whitespace
  }

 private:
  void skip_space_and_comments() {
    while (i_ < n_) {
      if (is_space(p_[i_])) {
        ++i_;
      } else if (p_[i_] == '#') {
        while (i_ < n_ && p_[i_] != '\n' && p_[i_] != '\r') ++i_;
      } else {
        break;
      }
    }
  }
  static std::string shown(std::uint8_t c) {
    if (c >= 0x21 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    return "byte " + std::to_string(c);
  }

  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 2;  // after the magic
};

}  // namespace

namespace {

// Buffers under 1 MiB are cheap to allocate; at most 4 are kept per thread.
constexpr std::size_t recycle_min_samples = std::size_t{1} << 19;
constexpr std::size_t recycle_max_buffers = 4;
thread_local std::vector<std::vector<std::uint16_t>> recycled;

}  // namespace

std::vector<std::uint16_t> take_samples(std::size_t n) {
  if (n >= recycle_min_samples) {
    // The smallest kept buffer that holds n samples without growing.
    auto best = recycled.end();
    for (auto it = recycled.begin(); it != recycled.end(); ++it)
      if (it->capacity() >= n && (best == recycled.end() || it->capacity() < best->capacity()))
        best = it;
    if (best != recycled.end()) {
      std::vector<std::uint16_t> v = std::move(*best);
      recycled.erase(best);
      v.resize(n);  // within capacity: no allocation; new elements zeroed, kept ones as they are
      return v;
    }
  }
  return std::vector<std::uint16_t>(n);
}

void recycle_samples(std::vector<std::uint16_t>&& v) noexcept {
  if (v.capacity() < recycle_min_samples) return;
  try {
    if (recycled.size() == recycle_max_buffers) {
      // Replace the smallest kept buffer if this one is larger.
      auto small = std::min_element(
          recycled.begin(), recycled.end(),
          [](const auto& a, const auto& b) { return a.capacity() < b.capacity(); });
      if (small->capacity() < v.capacity()) *small = std::move(v);
      return;
    }
    recycled.push_back(std::move(v));
  } catch (...) {
  }
}

void check_shape(const image_shape& s) {
  if (s.channels < 1 || s.channels > 4)
    fail(std::to_string(s.channels) + " channels per pixel (1 to 4 are supported)");
  if (s.maxval < 1 || s.maxval > 65535)
    fail("maxval " + std::to_string(s.maxval) + " is not in 1..65535");
  if (s.width == 0 || s.height == 0)
    fail("empty image (" + std::to_string(s.width) + "x" + std::to_string(s.height) + ")");
  if (s.width > max_dimension || s.height > max_dimension || s.pixels() > max_pixels)
    fail("image of " + std::to_string(s.width) + "x" + std::to_string(s.height) +
         " is larger than the limit of " + std::to_string(max_dimension) + " pixels a side and " +
         std::to_string(max_pixels) + " pixels");
}

std::string describe(const image_shape& s) {
  static const char* const kinds[] = {"", "gray", "gray+alpha", "RGB", "RGBA"};
  std::string r = std::to_string(s.width) + "x" + std::to_string(s.height) + " " +
                  (s.channels <= 4 ? kinds[s.channels] : "?") + " " + std::to_string(s.depth()) +
                  "-bit";
  if (s.maxval != 255 && s.maxval != 65535) r += " (maxval " + std::to_string(s.maxval) + ")";
  return r;
}

pnm_header read_pnm_header(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  if (size < 2 || p[0] != 'P') fail("not a PNM file (no 'P' magic)");
  if (p[1] < '1' || p[1] > '7') fail("not a PNM file (unknown magic)");
  if (p[1] != '5' && p[1] != '6') {
    static const char* const names[] = {"plain PBM", "plain PGM", "plain PPM", "PBM bitmap",
                                        "",          "",          "PAM"};
    fail(std::string("unsupported PNM format P") + static_cast<char>(p[1]) + " (" +
         names[p[1] - '1'] + "); only binary P5 (gray) and P6 (RGB) are supported");
  }
  if (size > 2 && !is_space(p[2]) && p[2] != '#')
    fail("malformed PNM header: no whitespace after the magic");
  header_reader h(p, size);
  pnm_header r;
  r.shape.channels = p[1] == '5' ? 1 : 3;
  const std::uint64_t w = h.number("width");
  const std::uint64_t hh = h.number("height");
  const std::uint64_t maxval = h.number("maxval");
  if (maxval == 0 || maxval > 65535)
    fail("PNM maxval " + std::to_string(maxval) + " is not in 1..65535");
  if (w == 0 || hh == 0) fail("empty image (" + std::to_string(w) + "x" + std::to_string(hh) + ")");
  r.shape.width = static_cast<std::uint32_t>(w);
  r.shape.height = static_cast<std::uint32_t>(hh);
  r.shape.maxval = static_cast<std::uint32_t>(maxval);
  check_shape(r.shape);
  r.raster_offset = h.raster_start();
  const std::size_t need = r.shape.samples() * bytes_per_sample(pnm_layout(r.shape));
  const std::size_t have = size - r.raster_offset;
  const auto bytes = [](std::size_t n) {
    return std::to_string(n) + (n == 1 ? " byte" : " bytes");
  };
  if (have < need)
    fail("PNM pixel data truncated: " + bytes(need - have) + " missing (" + std::to_string(need) +
         " expected for " + describe(r.shape) + ", " + std::to_string(have) + " present)");
  if (have > need)
    fail(bytes(have - need) +
         " after the PNM pixel data (multi-image PNM streams are not supported)");
  return r;
}

std::string pnm_bad_sample(const image_shape& s, std::size_t index, std::uint32_t value) {
  const std::size_t px = index / s.channels;
  return "PNM sample value " + std::to_string(value) + " exceeds maxval " +
         std::to_string(s.maxval) + " at pixel (" + std::to_string(px % s.width) + ", " +
         std::to_string(px / s.width) + ")";
}

HETPIPE_CLONES void pack_raster(const std::uint16_t* s, std::size_t n, sample_layout layout,
                                void* dst) {
  auto* w = static_cast<std::uint8_t*>(dst);
  switch (layout) {
    case sample_layout::u8:
      for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<std::uint8_t>(s[i]);
      break;
    case sample_layout::u16be:
      for (std::size_t i = 0; i < n; ++i) {
        w[2 * i] = static_cast<std::uint8_t>(s[i] >> 8);
        w[2 * i + 1] = static_cast<std::uint8_t>(s[i]);
      }
      break;
    case sample_layout::u16:
      std::memcpy(dst, s, 2 * n);
      break;
  }
}

HETPIPE_CLONES void unpack_raster(const void* src, std::size_t n, sample_layout layout,
                                  std::uint16_t* out) {
  const auto* r = static_cast<const std::uint8_t*>(src);
  switch (layout) {
    case sample_layout::u8:
      for (std::size_t i = 0; i < n; ++i) out[i] = r[i];
      break;
    case sample_layout::u16be:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::uint16_t>((std::uint32_t{r[2 * i]} << 8) | r[2 * i + 1]);
      break;
    case sample_layout::u16:
      std::memcpy(out, src, 2 * n);
      break;
  }
}

image decode_pnm(const void* data, std::size_t size) {
  const pnm_header h = read_pnm_header(data, size);
  image im;
  im.shape = h.shape;
  const std::size_t n = im.shape.samples();
  im.samples = take_samples(n);
  unpack_raster(static_cast<const std::uint8_t*>(data) + h.raster_offset, n, pnm_layout(h.shape),
                im.samples.data());
  const std::uint16_t* out = im.samples.data();
  if (can_exceed_maxval(im.shape, pnm_layout(h.shape)) &&
      *std::max_element(out, out + n) > im.shape.maxval)
    check_raster(h.shape, static_cast<const std::uint8_t*>(data) + h.raster_offset,
                 pnm_layout(h.shape));
  return im;
}

void check_raster(const image_shape& s, const void* raster, sample_layout layout) {
  if (!can_exceed_maxval(s, layout)) return;
  const auto* p = static_cast<const std::uint8_t*>(raster);
  const std::size_t n = s.samples(), step = 4096;
  std::uint16_t v[step];
  for (std::size_t i = 0; i < n; i += step) {
    const std::size_t k = std::min(step, n - i);
    unpack_raster(p + i * bytes_per_sample(layout), k, layout, v);
    for (std::size_t j = 0; j < k; ++j)
      if (v[j] > s.maxval) fail(pnm_bad_sample(s, i + j, v[j]));
  }
}

std::string pnm_header_text(const image_shape& s) {
  check_shape(s);
  if (s.channels != 1 && s.channels != 3)
    fail("a " + describe(s) +
         " image cannot be written as PNM (P5/P6 hold gray or RGB without alpha); write PNG");
  return std::string(s.channels == 1 ? "P5" : "P6") + "\n" + std::to_string(s.width) + " " +
         std::to_string(s.height) + "\n" + std::to_string(s.maxval) + "\n";
}

std::size_t pnm_size(const image_shape& s) {
  return pnm_header_text(s).size() + s.samples() * bytes_per_sample(pnm_layout(s));
}

void encode_pnm(const image& im, void* dst) {
  const std::string header = pnm_header_text(im.shape);
  if (im.samples.size() != im.shape.samples())
    fail("image has " + std::to_string(im.samples.size()) + " samples, its shape says " +
         std::to_string(im.shape.samples()));
  std::memcpy(dst, header.data(), header.size());
  pack_raster(im.samples.data(), im.samples.size(), pnm_layout(im.shape),
              static_cast<std::uint8_t*>(dst) + header.size());
}

std::vector<std::uint8_t> encode_pnm(const image& im) {
  std::vector<std::uint8_t> out(pnm_size(im.shape));
  encode_pnm(im, out.data());
  return out;
}

image_format sniff_format(const void* data, std::size_t size) {
  static const std::uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const auto* p = static_cast<const std::uint8_t*>(data);
  if (size >= 8 && std::memcmp(p, png_sig, 8) == 0) return image_format::png;
  if (size >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '7') return image_format::pnm;
  return image_format::unknown;
}

image decode_image(const void* data, std::size_t size) {
  switch (sniff_format(data, size)) {
    case image_format::pnm:
      return decode_pnm(data, size);
    case image_format::png:
      return decode_png(data, size);
    default:
      break;
  }
  const auto* p = static_cast<const char*>(data);
  if (size >= 2 && p[0] == 'P' && (p[1] == 'F' || p[1] == 'f'))
    fail("unsupported format PFM (floating-point samples; PNM and PNG are read)");
  fail("not a PNM or PNG image (unknown magic)");
}

}  // namespace hetpipe::host::img
