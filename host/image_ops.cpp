// The image filters on the CPU and the ops-list parser (contract and definitions: image_ops.hpp).
// Each pass works row by row on contiguous memory (vectorisable inner loops over a whole row);
// OpenMP splits the rows when the caller asks for more than one thread.
#include "host/image_ops.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>

#include <hetpipe/error.hpp>

#include "host/clones.hpp"

namespace hetpipe::host::img {
namespace {

using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;
using i64 = std::int64_t;

// --- parser ---

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Appends piecewise: GCC 12 warns (-Wrestrict, a false positive) on "'" + std::string(...).
std::string quoted(std::string_view s) {
  std::string q = "'";
  q.append(s);
  q += '\'';
  return q;
}

[[noreturn]] void bad(std::string_view item, const std::string& why) {
  throw usage_error("ops list: " + quoted(item) + ": " + why);
}

double parse_double(std::string_view item, std::string_view text) {
  // std::from_chars for double is in libstdc++ 11+; strtod would accept "inf", "0x1p3", spaces.
  double v = 0;
  const auto* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end || !std::isfinite(v))
    bad(item, quoted(text) + " is not a number");
  return v;
}

u64 parse_uint(std::string_view item, std::string_view text, u64 max) {
  u64 v = 0;
  const auto* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end)
    bad(item, quoted(text) + " is not a non-negative integer");
  if (v > max) bad(item, std::to_string(v) + " is larger than " + std::to_string(max));
  return v;
}

op parse_one(std::string_view item) {
  const auto colon = item.find(':');
  const std::string_view name = trim(item.substr(0, colon));
  const bool has_arg = colon != std::string_view::npos;
  std::string_view arg = has_arg ? trim(item.substr(colon + 1)) : std::string_view();
  const auto no_arg = [&](op_kind k) {
    if (has_arg) bad(item, std::string(name) + " takes no argument");
    op o;
    o.kind = k;
    return o;
  };
  const auto need_arg = [&](const char* form) {
    if (!has_arg || arg.empty()) bad(item, std::string(name) + " needs an argument: " + form);
  };
  if (name == "gray" || name == "grey") return no_arg(op_kind::gray);
  if (name == "sobel") return no_arg(op_kind::sobel);
  if (name == "invert") return no_arg(op_kind::invert);
  op o;
  if (name == "blur") {
    need_arg("blur:sigma=S");
    if (arg.substr(0, 6) == "sigma=") arg.remove_prefix(6);
    o.kind = op_kind::blur;
    o.sigma = parse_double(item, arg);
    if (!(o.sigma > 0 && o.sigma <= max_blur_sigma))
      bad(item, "sigma must be greater than 0 and at most " +
                    std::to_string(static_cast<int>(max_blur_sigma)));
    return o;
  }
  if (name == "threshold") {
    need_arg("threshold:T (0..65535)");
    if (arg.substr(0, 2) == "t=") arg.remove_prefix(2);
    o.kind = op_kind::threshold;
    o.threshold = static_cast<u32>(parse_uint(item, arg, 65535));
    return o;
  }
  if (name == "resize") {
    need_arg("resize:F (a factor > 0) or resize:WxH");
    o.kind = op_kind::resize;
    const auto x = arg.find('x');
    if (x == std::string_view::npos) {
      o.factor = parse_double(item, arg);
      if (!(o.factor > 0)) bad(item, "the factor must be greater than 0");
      if (o.factor > max_dimension) bad(item, "the factor is too large");
      return o;
    }
    o.width = static_cast<u32>(parse_uint(item, arg.substr(0, x), max_dimension));
    o.height = static_cast<u32>(parse_uint(item, arg.substr(x + 1), max_dimension));
    if (o.width == 0 || o.height == 0) bad(item, "width and height must be at least 1");
    if (u64{o.width} * o.height > max_pixels)
      bad(item, "more than " + std::to_string(max_pixels) + " pixels");
    return o;
  }
  if (name.empty()) bad(item, "empty operation name");
  bad(item, "unknown operation " + quoted(name) +
                " (known: gray, blur:sigma=S, sobel, resize:F, resize:WxH, invert, threshold:T)");
}

// --- passes ---

// Rows [0, rows) split among `threads` OpenMP threads (1: the calling thread alone); body(y,
// scratch) gets a per-thread scratch vector.
template <class Scratch, class Body>
void for_rows(std::size_t rows, int threads, Body body) {
  if (threads <= 1 || rows < 2) {
    Scratch scratch;
    for (std::size_t y = 0; y < rows; ++y) body(y, scratch);
    return;
  }
  // An exception must not leave an OpenMP region (nor skip the loop's barrier): each row catches
  // its own, the first is kept, the other rows are skipped, and it is rethrown after the region.
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(threads)
  {
    Scratch scratch;
#pragma omp for schedule(static)
    for (std::ptrdiff_t y = 0; y < static_cast<std::ptrdiff_t>(rows); ++y) {
      if (failed.load(std::memory_order_relaxed)) continue;
      try {
        body(static_cast<std::size_t>(y), scratch);
      } catch (...) {
#pragma omp critical(hetpipe_for_rows)
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

struct none {};

image make_output(const image_shape& s) {
  image out;
  out.shape = s;
  out.samples = take_samples(s.samples());
  return out;
}

image gray(const image& in, int threads) {
  image out = make_output(output_shape(in.shape, op{op_kind::gray}));
  const u32 ch = in.shape.channels;
  const std::size_t w = in.shape.width;
  for_rows<none>(in.shape.height, threads, [&](std::size_t y, none&) {
    const u16* s = in.samples.data() + y * w * ch;
    u16* d = out.samples.data() + y * w;
    if (ch >= 3) {
      for (std::size_t x = 0; x < w; ++x)
        d[x] = static_cast<u16>(luma(s[x * ch], s[x * ch + 1], s[x * ch + 2]));
    } else {
      for (std::size_t x = 0; x < w; ++x) d[x] = s[x * ch];
    }
  });
  return out;
}

// The two passes of blur over one row, as loops the compiler vectorises; the AVX2 clones
// (host/clones.hpp) matter here: baseline x86-64 has no packed 32-bit multiply.
// Horizontal: c is the row with r replicated pixels before and after it.
template <class H>
[[gnu::always_inline]] inline void blur_h_row(const u16* c, std::size_t row, std::size_t ch,
                                              const blur_kernel& k, H* d) {
  for (std::size_t i = 0; i < row; ++i) d[i] = H{k.q[0]} * c[i];
  for (int t = 1; t <= k.radius; ++t) {
    const H q = k.q[t];
    const u16* lo = c - t * ch;
    const u16* hi = c + t * ch;
    // q (lo + hi) may pass the type's range only if the total did; the total fits.
    for (std::size_t i = 0; i < row; ++i) d[i] += q * (H{lo[i]} + hi[i]);
  }
}
// Vertical: rows[r + t] holds the horizontal sums of image row y + t (clamped), |t| <= r.
template <class H>
[[gnu::always_inline]] inline void blur_v_row(const H* const* rows, std::size_t row,
                                              const blur_kernel& k, u32 maxval, u64* acc, u16* d) {
  const int r = k.radius;
  for (std::size_t i = 0; i < row; ++i) acc[i] = u64{k.q[0]} * rows[r][i];
  for (int t = 1; t <= r; ++t) {
    const u64 q = k.q[t];
    const H* lo = rows[r - t];
    const H* hi = rows[r + t];
    // Two products (32x32->64 pmuludq for u32 sums) rather than one of the wider pair sum.
    for (std::size_t i = 0; i < row; ++i) acc[i] += q * lo[i] + q * hi[i];
  }
  for (std::size_t i = 0; i < row; ++i) d[i] = static_cast<u16>(blur_finish(acc[i], maxval));
}
HETPIPE_CLONES void blur_h_u32(const u16* c, std::size_t row, std::size_t ch, const blur_kernel& k,
                               u32* d) {
  blur_h_row(c, row, ch, k, d);
}
HETPIPE_CLONES void blur_h_u64(const u16* c, std::size_t row, std::size_t ch, const blur_kernel& k,
                               u64* d) {
  blur_h_row(c, row, ch, k, d);
}
HETPIPE_CLONES void blur_v_u32(const u32* const* rows, std::size_t row, const blur_kernel& k,
                               u32 maxval, u64* acc, u16* d) {
  blur_v_row(rows, row, k, maxval, acc, d);
}
HETPIPE_CLONES void blur_v_u64(const u64* const* rows, std::size_t row, const blur_kernel& k,
                               u32 maxval, u64* acc, u16* d) {
  blur_v_row(rows, row, k, maxval, acc, d);
}
inline void blur_h(const u16* c, std::size_t row, std::size_t ch, const blur_kernel& k, u32* d) {
  blur_h_u32(c, row, ch, k, d);
}
inline void blur_h(const u16* c, std::size_t row, std::size_t ch, const blur_kernel& k, u64* d) {
  blur_h_u64(c, row, ch, k, d);
}
inline void blur_v(const u32* const* rows, std::size_t row, const blur_kernel& k, u32 maxval,
                   u64* acc, u16* d) {
  blur_v_u32(rows, row, k, maxval, acc, d);
}
inline void blur_v(const u64* const* rows, std::size_t row, const blur_kernel& k, u32 maxval,
                   u64* acc, u16* d) {
  blur_v_u64(rows, row, k, maxval, acc, d);
}

// A thread's state for blur_with: the horizontal sums of the last 2r + 1 image rows it needed
// (image row j in ring slot j % (2r + 1)), so that neither pass leaves the cache on large images
// and no image-sized buffer of sums exists.
template <class H>
struct blur_ring {
  std::vector<u16> pad;
  std::vector<H> sums;
  std::vector<const H*> rows;
  std::vector<u64> acc;
  i64 lo = 0, hi = -1;  // image rows [lo, hi] whose sums are in the ring
};

// H: the horizontal sums' type, u32 for samples <= 255 and u64 above (image_math.hpp).
template <class H>
image blur_with(const image& in, const blur_kernel& k, int threads) {
  const int r = k.radius;
  const std::size_t ch = in.shape.channels;
  const std::size_t w = in.shape.width, h = in.shape.height, row = w * ch;
  const std::size_t slots = 2 * static_cast<std::size_t>(r) + 1;
  // The row with r replicated pixels on each side, then its horizontal sums into its ring slot.
  const auto horizontal = [&](std::size_t y, blur_ring<H>& st) {
    st.pad.resize((w + 2 * r) * ch);
    const u16* s = in.samples.data() + y * row;
    for (int i = 0; i < r; ++i) {
      std::memcpy(&st.pad[i * ch], s, ch * sizeof(u16));
      std::memcpy(&st.pad[(w + r + i) * ch], s + (w - 1) * ch, ch * sizeof(u16));
    }
    std::memcpy(&st.pad[r * ch], s, row * sizeof(u16));
    blur_h(st.pad.data() + r * ch, row, ch, k, st.sums.data() + (y % slots) * row);
  };
  image out = make_output(in.shape);
  const u32 maxval = in.shape.maxval;
  for_rows<blur_ring<H>>(h, threads, [&](std::size_t y, blur_ring<H>& st) {
    st.sums.resize(slots * row);
    st.acc.resize(row);
    st.rows.resize(slots);
    // The sums of rows y - r .. y + r (clamped) must be in the ring.
    const i64 need_lo = std::max<i64>(0, static_cast<i64>(y) - r);
    const i64 need_hi = std::min<i64>(static_cast<i64>(h) - 1, static_cast<i64>(y) + r);
    if (need_lo < st.lo || need_lo > st.hi + 1) st.lo = need_lo, st.hi = need_lo - 1;
    for (i64 j = st.hi + 1; j <= need_hi; ++j) horizontal(static_cast<std::size_t>(j), st);
    st.hi = std::max(st.hi, need_hi);
    st.lo = std::max(st.lo, st.hi - static_cast<i64>(slots) + 1);
    for (int t = -r; t <= r; ++t)
      st.rows[t + r] = st.sums.data() + (clamp_index(static_cast<i64>(y) + t, h) % slots) * row;
    blur_v(st.rows.data(), row, k, maxval, st.acc.data(), out.samples.data() + y * row);
  });
  return out;
}

image blur(const image& in, double sigma, int threads) {
  const blur_kernel k = make_blur_kernel(sigma);
  return blur_wide_sums(in.shape.maxval) ? blur_with<u64>(in, k, threads)
                                         : blur_with<u32>(in, k, threads);
}

// round(sqrt(s)) for s < 2^24 in 32-bit lanes: float represents s exactly and sqrtf is correctly
// rounded, so the guess is within one of floor(sqrt(s)) and the corrections make it exact (the
// same value isqrt_round gives; 8-bit Sobel sums stay below 2^21).
inline u32 isqrt_round_small(u32 s) {
  u32 m = static_cast<u32>(std::sqrt(static_cast<float>(s)));
  m -= m * m > s;
  m += (m + 1) * (m + 1) <= s;
  return m + (s > m * m + m);
}

// One row of Sobel magnitudes over every sample (alpha too: the caller copies it back). a, b, c
// are the rows above, at and below, each with one replicated pixel before and after it (a[-ch]
// and a[row + ch - 1] are readable). Written so that the compiler vectorises it; `magnitude`
// maps (gx, gy) to the sample.
template <class Magnitude>
[[gnu::always_inline]] inline void sobel_row(const u16* a, const u16* b, const u16* c,
                                             std::size_t row, std::size_t ch, u16* d,
                                             Magnitude magnitude) {
  for (std::size_t i = 0; i < row; ++i) {
    const std::int32_t gx =
        (a[i + ch] + 2 * b[i + ch] + c[i + ch]) - (a[i - ch] + 2 * b[i - ch] + c[i - ch]);
    const std::int32_t gy = (c[i - ch] + 2 * c[i] + c[i + ch]) - (a[i - ch] + 2 * a[i] + a[i + ch]);
    d[i] = static_cast<u16>(magnitude(gx, gy));
  }
}
HETPIPE_CLONES void sobel_row_8(const u16* a, const u16* b, const u16* c, std::size_t row,
                                std::size_t ch, u32 maxval, u16* d) {
  sobel_row(a, b, c, row, ch, d, [maxval](std::int32_t gx, std::int32_t gy) {
    const u32 m = isqrt_round_small(static_cast<u32>(gx * gx + gy * gy));
    return m > maxval ? maxval : m;
  });
}
HETPIPE_CLONES void sobel_row_16(const u16* a, const u16* b, const u16* c, std::size_t row,
                                 std::size_t ch, u32 maxval, u16* d) {
  sobel_row(a, b, c, row, ch, d,
            [maxval](std::int32_t gx, std::int32_t gy) { return sobel_magnitude(gx, gy, maxval); });
}

image sobel(const image& in, int threads) {
  image out = make_output(in.shape);
  const std::size_t ch = in.shape.channels, cc = in.shape.color_channels();
  const std::size_t w = in.shape.width, h = in.shape.height, row = w * ch;
  const u32 maxval = in.shape.maxval;
  const bool narrow = maxval <= 255;  // |gx|, |gy| <= 1020: gx^2 + gy^2 < 2^21
  // Scratch: the three rows, padded with their edge pixels.
  for_rows<std::vector<u16>>(h, threads, [&](std::size_t y, std::vector<u16>& pad) {
    const std::size_t stride = row + 2 * ch;
    pad.resize(3 * stride);
    const std::int64_t ys[3] = {clamp_index(static_cast<i64>(y) - 1, h), static_cast<i64>(y),
                                clamp_index(static_cast<i64>(y) + 1, h)};
    for (int k = 0; k < 3; ++k) {
      const u16* s = in.samples.data() + ys[k] * row;
      u16* p = pad.data() + k * stride;
      std::memcpy(p, s, ch * sizeof(u16));
      std::memcpy(p + ch, s, row * sizeof(u16));
      std::memcpy(p + ch + row, s + row - ch, ch * sizeof(u16));
    }
    const u16* a = pad.data() + ch;
    u16* d = out.samples.data() + y * row;
    if (narrow)
      sobel_row_8(a, a + stride, a + 2 * stride, row, ch, maxval, d);
    else
      sobel_row_16(a, a + stride, a + 2 * stride, row, ch, maxval, d);
    if (cc < ch) {
      const u16* b = in.samples.data() + y * row;
      for (std::size_t x = 0; x < w; ++x) d[x * ch + cc] = b[x * ch + cc];
    }
  });
  return out;
}

// The taps of one axis, n -> m (m != n): output i reads sources first[i] .. first[i] + count[i] - 1
// with integer weights weight[offset[i] ..] over the denominator den.
struct axis_taps {
  std::vector<u32> first, count, offset;
  std::vector<u64> weight;
  u64 den = 1;
};

axis_taps make_taps(u64 n, u64 m) {
  axis_taps t;
  t.first.resize(m);
  t.count.resize(m);
  t.offset.resize(m);
  if (m < n) {
    t.den = n;
    for (u64 i = 0; i < m; ++i) {
      u64 f = 0, l = 0;
      area_span(i, n, m, &f, &l);
      t.first[i] = static_cast<u32>(f);
      t.count[i] = static_cast<u32>(l - f + 1);
      t.offset[i] = static_cast<u32>(t.weight.size());
      for (u64 j = f; j <= l; ++j) t.weight.push_back(area_coverage(i, j, n, m));
    }
  } else {
    t.den = 2 * m;
    for (u64 i = 0; i < m; ++i) {
      const bilinear_tap b = bilinear_at(i, n, m);
      // j1 is j0 or j0 + 1; as two taps (the second may weigh 0) the loops below stay uniform.
      t.first[i] = static_cast<u32>(b.j0);
      t.count[i] = b.j1 == b.j0 ? 1 : 2;
      t.offset[i] = static_cast<u32>(t.weight.size());
      if (b.j1 == b.j0) {
        t.weight.push_back(2 * m);
      } else {
        t.weight.push_back(2 * m - b.t);
        t.weight.push_back(b.t);
      }
    }
  }
  return t;
}

// Width w -> m: each output pixel's channels from the taps of its column.
image resize_x(const image& in, u32 m, int threads) {
  image_shape s = in.shape;
  s.width = m;
  image out = make_output(s);
  const axis_taps t = make_taps(in.shape.width, m);
  const std::size_t ch = s.channels, in_row = std::size_t{in.shape.width} * ch, out_row = m * ch;
  for_rows<none>(s.height, threads, [&](std::size_t y, none&) {
    const u16* src = in.samples.data() + y * in_row;
    u16* d = out.samples.data() + y * out_row;
    for (std::size_t i = 0; i < m; ++i) {
      const u64* wt = t.weight.data() + t.offset[i];
      const u16* p = src + std::size_t{t.first[i]} * ch;
      for (std::size_t c = 0; c < ch; ++c) {
        u64 acc = 0;
        for (u32 j = 0; j < t.count[i]; ++j) acc += wt[j] * p[j * ch + c];
        d[i * ch + c] = static_cast<u16>(div_round(acc, t.den));
      }
    }
  });
  return out;
}

// Height h -> m: whole rows weighed and summed.
image resize_y(const image& in, u32 m, int threads) {
  image_shape s = in.shape;
  s.height = m;
  image out = make_output(s);
  const axis_taps t = make_taps(in.shape.height, m);
  const std::size_t row = std::size_t{s.width} * s.channels;
  for_rows<std::vector<u64>>(m, threads, [&](std::size_t i, std::vector<u64>& acc) {
    acc.assign(row, 0);
    for (u32 j = 0; j < t.count[i]; ++j) {
      const u64 wt = t.weight[t.offset[i] + j];
      const u16* p = in.samples.data() + (std::size_t{t.first[i]} + j) * row;
      for (std::size_t x = 0; x < row; ++x) acc[x] += wt * p[x];
    }
    u16* d = out.samples.data() + i * row;
    for (std::size_t x = 0; x < row; ++x) d[x] = static_cast<u16>(div_round(acc[x], t.den));
  });
  return out;
}

image resize(const image& in, const op& o, int threads) {
  const image_shape s = output_shape(in.shape, o);
  if (s.width == in.shape.width && s.height == in.shape.height) return in;
  if (s.width == in.shape.width) return resize_y(in, s.height, threads);
  image mid = resize_x(in, s.width, threads);
  if (s.height == in.shape.height) return mid;
  return resize_y(mid, s.height, threads);
}

template <class F>
image per_color_sample(const image& in, int threads, F f) {
  image out = make_output(in.shape);
  const std::size_t ch = in.shape.channels, cc = in.shape.color_channels();
  const std::size_t row = std::size_t{in.shape.width} * ch;
  for_rows<none>(in.shape.height, threads, [&](std::size_t y, none&) {
    const u16* s = in.samples.data() + y * row;
    u16* d = out.samples.data() + y * row;
    if (cc == ch) {
      for (std::size_t i = 0; i < row; ++i) d[i] = f(s[i]);
    } else {
      for (std::size_t i = 0; i < row; ++i) d[i] = i % ch < cc ? f(s[i]) : s[i];
    }
  });
  return out;
}

}  // namespace

std::vector<op> parse_ops(std::string_view list) {
  std::vector<op> ops;
  if (trim(list).empty()) return ops;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = list.find(',', start);
    const std::string_view item = trim(list.substr(start, comma - start));
    if (item.empty()) throw usage_error("ops list: empty item in " + quoted(list));
    ops.push_back(parse_one(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return ops;
}

std::string to_string(const op& o) {
  const auto num = [](double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
    return std::string(buf, r.ptr);
  };
  switch (o.kind) {
    case op_kind::gray:
      return "gray";
    case op_kind::blur:
      return "blur:sigma=" + num(o.sigma);
    case op_kind::sobel:
      return "sobel";
    case op_kind::resize:
      return o.factor > 0 ? "resize:" + num(o.factor)
                          : "resize:" + std::to_string(o.width) + "x" + std::to_string(o.height);
    case op_kind::invert:
      return "invert";
    case op_kind::threshold:
      return "threshold:" + std::to_string(o.threshold);
  }
  return "?";
}

image apply(const image& in, const op& o, int threads) {
  check_shape(in.shape);
  if (in.samples.size() != in.shape.samples())
    throw input_error("", "image has " + std::to_string(in.samples.size()) +
                              " samples, its shape says " + std::to_string(in.shape.samples()));
  const u32 maxval = in.shape.maxval;
  switch (o.kind) {
    case op_kind::gray:
      return gray(in, threads);
    case op_kind::blur:
      return blur(in, o.sigma, threads);
    case op_kind::sobel:
      return sobel(in, threads);
    case op_kind::resize:
      return resize(in, o, threads);
    case op_kind::invert:
      return per_color_sample(in, threads,
                              [maxval](u16 v) { return static_cast<u16>(maxval - v); });
    case op_kind::threshold: {
      const u32 t = o.threshold;
      return per_color_sample(in, threads,
                              [maxval, t](u16 v) { return static_cast<u16>(v >= t ? maxval : 0); });
    }
  }
  throw usage_error("unknown image operation");
}

image apply(const image& in, const std::vector<op>& ops, int threads) {
  if (ops.empty()) return in;
  image cur = apply(in, ops[0], threads);
  for (std::size_t i = 1; i < ops.size(); ++i) {
    image next = apply(cur, ops[i], threads);
    recycle_samples(std::move(cur.samples));
    cur = std::move(next);
  }
  return cur;
}

}  // namespace hetpipe::host::img
