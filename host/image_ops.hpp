// The filters of `hetpipe image` on the CPU, their exact integer definitions, and the parser of an
// ops list. cuda/image_kernels.hpp runs the same chain on the GPU with the same arithmetic
// (host/image_math.hpp), so both give the same bytes. CUDA-free; C++17.
//
//   namespace img = hetpipe::host::img;
//   auto ops = img::parse_ops("gray,blur:sigma=1.5,sobel,resize:0.5");
//   img::image out = img::apply(in, ops);          // one thread
//   img::image out4 = img::apply(in, ops, 4);      // OpenMP over rows
//
// Definitions (v: a sample, maxval: the image's largest value; "round" is round half up; every
// operation keeps maxval):
//
// gray      Y = (299 R + 587 G + 114 B + 500) / 1000, floor division (BT.601 luma rounded half
//           up). A gray image is unchanged; alpha is dropped (gray + alpha -> gray, RGBA -> gray).
// blur:sigma=S (or blur:S), 0 < S <= 64
//           Separable Gaussian of radius r = ceil(3 S). Weights w_k = exp(-k^2 / (2 S^2)),
//           |k| <= r, in double on the host, then integers q_k = q_-k summing to exactly
//           N = 2^24 by largest remainders: e_k = N w_k / sum(w), q_k = floor(e_k); of the
//           leftover L = N - sum(q), an odd unit goes to q_0 and the rest, one unit per side, to
//           the L/2 pairs +-k with the largest e_k - q_k (ties: smaller k). Horizontal pass
//           H(x, y) = sum_k q_k v(x + k, y) (no rounding: uint32 when maxval <= 255, else uint64),
//           vertical pass A = sum_k q_k H(x, y + k) (uint64, no rounding), result
//           round(A / 2^48) clamped to maxval. (2^24 weight units keep 16-bit results within a
//           fraction of a level of the real-valued filter; 2^16 units did not.) Coordinates outside
//           the image are clamped to the edge (replicated border). Every channel, alpha included
//           (not premultiplied).
// sobel     Per colour channel, replicated border: gx = [-1 0 1; -2 0 2; -1 0 1],
//           gy = [-1 -2 -1; 0 0 0; 1 2 1] (rows top to bottom), result round(sqrt(gx^2 + gy^2))
//           computed exactly in integers, clamped to maxval. Alpha is copied.
// resize:F (F > 0) or resize:WxH
//           Target W' = max(1, floor(W F + 1/2)) and likewise H' (or W x H as given). Two 1-D
//           passes, horizontal then vertical, each rounding its result half up to an integer
//           sample. Per axis, n source samples to m: m < n is an exact area average (output i
//           covers [i n/m, (i+1) n/m) of the source; sum of coverage * v over n), m > n is bilinear
//           with pixel centres at source coordinate (i + 1/2) n/m - 1/2 (clamped to the edge), all
//           weights exact rationals with denominator 2m; m == n copies. The scale is n/m, not 1/F,
//           so the image's edges map onto each other. Every channel, alpha included.
// invert    maxval - v on colour channels; alpha is copied.
// threshold:T (0 <= T <= 65535)
//           maxval if v >= T else 0, on colour channels; alpha is copied.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <hetpipe/error.hpp>

#include "host/image.hpp"
#include "host/image_math.hpp"

namespace hetpipe::host::img {

enum class op_kind { gray, blur, sobel, resize, invert, threshold };

struct op {
  op_kind kind = op_kind::gray;
  double sigma = 0;         // blur
  double factor = 0;        // resize by a factor (> 0), or 0 with width and height set
  std::uint32_t width = 0;  // resize to width x height
  std::uint32_t height = 0;
  std::uint32_t threshold = 0;  // threshold
};

// "gray,blur:sigma=1.5,sobel,resize:0.5,resize:640x480,invert,threshold:128" -> ops, in order.
// Names and keys are lower case; spaces around items are allowed. Throws hetpipe::usage_error
// naming the item and what is wrong (unknown op, missing or bad argument, out of range). An empty
// string is an empty list.
std::vector<op> parse_ops(std::string_view list);

// The builds of the CPU filters' row kernels this CPU runs, best first (of "avx512", "avx2",
// "loops"); the filters use the first unless use_kernels picks another. For tests and benchmarks:
// not to be called while another thread filters. All give the same bytes.
std::vector<std::string_view> kernel_builds();
bool use_kernels(std::string_view name);  // false when this CPU cannot run it

// The canonical text of one op ("blur:sigma=1.5"), as parse_ops reads it back.
std::string to_string(const op& o);

// The shape after `o`. Throws input_error (empty file name) when a resize gives an image beyond
// the limits of host/image.hpp. Inline (below), like make_blur_kernel: the GPU launcher uses both
// and hetpipe_cuda does not link hetpipe_host.
inline image_shape output_shape(const image_shape& in, const op& o);

// The integer half kernel of blur:sigma (definition above). Throws usage_error for a sigma out of
// (0, max_blur_sigma].
inline blur_kernel make_blur_kernel(double sigma);

// The chain `ops` applied to `in` on the CPU, row by row: each op makes its rows from the rows of
// the one before as they are needed, so no op has an image-sized buffer of its own. threads > 1
// cuts the output rows into bands run by that many OpenMP threads; 1 runs everything on the
// calling thread (what a pipeline that already runs one image per thread wants).
//
// progress, when given, is told of output rows as they are made: rows_per_progress at a time
// (fewer for a band's last ones), from the thread of the band that made them, so concurrently
// when threads > 1. A caller that runs one long image (0.1 s of a core for 8192^2) learns its
// rate from it before the image is done, and can stop it there by throwing (the first band's
// exception is rethrown, once every band has ended).
image apply(const image& in, const std::vector<op>& ops, int threads = 1,
            const row_progress& progress = {});
image apply(const image& in, const op& o, int threads = 1);

// The shape `ops` make of `in` (output_shape op by op; the same exceptions). Inline, like
// output_shape.
inline image_shape chain_shape(const image_shape& in, const std::vector<op>& ops) {
  image_shape s = in;
  for (const op& o : ops) s = output_shape(s, o);
  return s;
}

// A raster in memory: shape.samples() samples in `layout` at data (u16: host-order uint16_t,
// 2-byte aligned), e.g. a PNM file's pixel data where it lies.
struct raster_view {
  image_shape shape;
  const void* data = nullptr;
  sample_layout layout = sample_layout::u16;
};
// The chain applied to `in`, written as the raster of chain_shape(in.shape, ops) in out_layout
// at dst (u8 keeps each sample's low byte) with no image of samples in between: a PNM input goes
// from its file's bytes to the output file's bytes. A u8 or u16be sample above in.shape.maxval
// is an input_error with pnm_bad_sample's reason for the raster's first such sample (what
// decode_pnm says), for any thread count; dst is then partly written. progress: as above.
void apply(const raster_view& in, const std::vector<op>& ops, int threads, void* dst,
           sample_layout out_layout, const row_progress& progress = {});
// The same into an image of samples (from take_samples).
image apply(const raster_view& in, const std::vector<op>& ops, int threads = 1,
            const row_progress& progress = {});

// --- inline definitions ---

// A resize factor as the user would write it ("2", "0.5", "100000"), for messages.
inline std::string factor_text(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int digits = 1; digits <= 17; ++digits) {  // the fewest digits that read back to v
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

inline image_shape output_shape(const image_shape& in, const op& o) {
  image_shape out = in;
  if (o.kind == op_kind::gray) {
    out.channels = 1;
  } else if (o.kind == op_kind::resize) {
    if (o.factor > 0) {
      const auto scaled = [&](std::uint32_t n) {
        const double v = std::floor(static_cast<double>(n) * o.factor + 0.5);
        return v < 1 ? 1.0 : v;
      };
      const double w = scaled(in.width), h = scaled(in.height);
      if (w > max_dimension || h > max_dimension || w * h > static_cast<double>(max_pixels))
        throw input_error("", "resize:" + factor_text(o.factor) + " of a " +
                                  std::to_string(in.width) + "x" + std::to_string(in.height) +
                                  " image is larger than the limit of " +
                                  std::to_string(max_dimension) + " pixels a side and " +
                                  std::to_string(max_pixels) + " pixels");
      out.width = static_cast<std::uint32_t>(w);
      out.height = static_cast<std::uint32_t>(h);
    } else {
      out.width = o.width;
      out.height = o.height;
    }
  }
  return out;
}

inline blur_kernel make_blur_kernel(double sigma) {
  if (!(sigma > 0 && sigma <= max_blur_sigma))
    throw usage_error("blur: sigma must be in (0, " + std::to_string(max_blur_sigma) + "], not " +
                      std::to_string(sigma));
  blur_kernel k;
  k.radius = static_cast<int>(std::ceil(3 * sigma));
  if (k.radius > max_blur_radius) k.radius = max_blur_radius;
  double w[max_blur_radius + 1];
  double sum = 0;
  for (int i = 0; i <= k.radius; ++i) {
    // w[0] is 1 by definition: for sigma below about 1e-162, 2 sigma^2 is 0 and 0 / 0 a NaN (the
    // others are then exp(-inf) = 0: the identity, as the limit is).
    w[i] = i == 0 ? 1.0 : std::exp(-static_cast<double>(i) * i / (2 * sigma * sigma));
    sum += i == 0 ? w[i] : 2 * w[i];
  }
  // Largest remainders, kept symmetric: floors first, an odd leftover unit to the centre, then one
  // unit to each side of the pairs with the largest fractions (ties: smaller |k| first). The
  // leftover is < 2r + 1 units, so every q_k is its exact value rounded down or up.
  double frac[max_blur_radius + 1];
  std::uint32_t total = 0;
  for (int i = 0; i <= k.radius; ++i) {
    const double exact = blur_one * w[i] / sum;
    k.q[i] = static_cast<std::uint32_t>(std::floor(exact));
    frac[i] = exact - k.q[i];
    total += i == 0 ? k.q[i] : 2 * k.q[i];
  }
  std::uint32_t left = blur_one - total;
  if (left % 2 == 1) ++k.q[0], --left;
  int order[max_blur_radius];
  for (int i = 0; i < k.radius; ++i) order[i] = i + 1;
  std::stable_sort(order, order + k.radius, [&](int a, int b) { return frac[a] > frac[b]; });
  for (std::uint32_t i = 0; i < left / 2; ++i) ++k.q[order[i]];
  return k;
}

}  // namespace hetpipe::host::img
