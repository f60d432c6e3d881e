// The image filters on the CPU and the ops-list parser (contract and definitions: image_ops.hpp).
// Each pass works row by row on contiguous memory (vectorisable inner loops over a whole row);
// OpenMP splits the rows when the caller asks for more than one thread.
#include "host/image_ops.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <hetpipe/error.hpp>

#include "host/clones.hpp"
#include "host/parallel.hpp"

// The blur's passes and Sobel over samples <= 255 have AVX-512 and AVX2 builds of their own
// (*_avx512, *_avx2), and gray over 8-bit RGB(A) an AVX2 one, picked at run time (kernel_builds);
// elsewhere the loops' clones run. The AVX2
// build runs the chain gray,blur:sigma=2,sobel 1.7 times as fast as the loops' AVX2 clones on an
// AVX2-only 2-core box (bench/RESULTS.md, seventeenth session). HETPIPE_NO_CLONES (portable
// builds) leaves the loops alone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(HETPIPE_NO_CLONES)
#define HETPIPE_IMG_SIMD 1
#include <immintrin.h>
#else
#define HETPIPE_IMG_SIMD 0
#endif

namespace hetpipe::host::img {
namespace {

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;
using i64 = std::int64_t;

// The row kernels' builds, best last; kernel_builds() lists those this CPU runs.
enum class kernel_build { loops, avx512, avx2 };
constexpr std::string_view kernel_names[] = {"loops", "avx512", "avx2"};
std::vector<kernel_build> runnable_kernels() {
  std::vector<kernel_build> b;
#if HETPIPE_IMG_SIMD
  __builtin_cpu_init();
  // AVX-512 BW as well (Sobel's 16-bit lanes): every AVX-512 CPU but the Xeon Phi has it.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    b.push_back(kernel_build::avx512);
  if (__builtin_cpu_supports("avx2")) b.push_back(kernel_build::avx2);
#endif
  b.push_back(kernel_build::loops);
  return b;
}
std::atomic<int> chosen_kernels{-1};
kernel_build current_kernels() {
  int k = chosen_kernels.load(std::memory_order_relaxed);
  if (k < 0) {
    k = static_cast<int>(runnable_kernels().front());
    chosen_kernels.store(k, std::memory_order_relaxed);
  }
  return static_cast<kernel_build>(k);
}

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

// An argument given as "key=value" (spaces around either) or as the value alone; another key is
// refused by name (blur:s=1 said "'s=1' is not a number").
std::string_view keyed_arg(std::string_view item, std::string_view name, std::string_view arg,
                           std::string_view key) {
  const auto eq = arg.find('=');
  if (eq == std::string_view::npos) return arg;
  const std::string_view given = trim(arg.substr(0, eq));
  if (given != key)
    bad(item, std::string(name) + " takes " + std::string(key) + "=..., not " + quoted(given));
  return trim(arg.substr(eq + 1));
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
    arg = keyed_arg(item, name, arg, "sigma");
    o.kind = op_kind::blur;
    o.sigma = parse_double(item, arg);
    if (!(o.sigma > 0 && o.sigma <= max_blur_sigma))
      bad(item, "sigma must be greater than 0 and at most " +
                    std::to_string(static_cast<int>(max_blur_sigma)));
    return o;
  }
  if (name == "threshold") {
    need_arg("threshold:T (0..65535)");
    arg = keyed_arg(item, name, arg, "t");
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
    o.width = static_cast<u32>(parse_uint(item, trim(arg.substr(0, x)), max_dimension));
    o.height = static_cast<u32>(parse_uint(item, trim(arg.substr(x + 1)), max_dimension));
    if (o.width == 0 || o.height == 0) bad(item, "width and height must be at least 1");
    if (u64{o.width} * o.height > max_pixels)
      bad(item, "more than " + std::to_string(max_pixels) + " pixels");
    return o;
  }
  if (name.empty()) bad(item, "empty operation name");
  bad(item, "unknown operation " + quoted(name) +
                " (known: gray, blur:sigma=S, sobel, resize:F, resize:WxH, invert, threshold:T)");
}

// --- row kernels ---

// BT.601 luma of one row of w pixels of ch = 3 or 4 channels (alpha dropped); the stride is a
// constant so that the loads vectorise. 8-bit samples are read as they lie in the input: widened
// first, the row cost twice the time (the widening pass, then 16-bit deinterleaving).
template <std::size_t ch, class T>
[[gnu::always_inline]] inline void gray_row_t(const T* s, std::size_t w, u16* d) {
  for (std::size_t x = 0; x < w; ++x)
    d[x] = static_cast<u16>(luma(s[x * ch], s[x * ch + 1], s[x * ch + 2]));
}
HETPIPE_CLONES void gray_row_3(const u16* s, std::size_t w, u16* d) {
  gray_row_t<3>(s, w, d);
}
HETPIPE_CLONES void gray_row_4(const u16* s, std::size_t w, u16* d) {
  gray_row_t<4>(s, w, d);
}
HETPIPE_CLONES void gray_row_u8_loops(const u8* s, std::size_t w, std::size_t ch, u16* d) {
  if (ch == 3)
    gray_row_t<3>(s, w, d);
  else
    gray_row_t<4>(s, w, d);
}

#if HETPIPE_IMG_SIMD
// 8 pixels of 8-bit RGB or RGBA a step, 4 in each 128-bit half: the bytes are spread to (R, G) and
// (B, 1) pairs of 16-bit lanes, and pmaddwd by (299, 587) and (114, 500) gives each pixel's
// n = 299 R + 587 G + 114 B + 500 < 2^18, exactly. n / 1000 rounded down is then
// trunc((n + 0.5) * 0.001f): n + 0.5 is exact in a float and lies at least 0.5 from a multiple of
// 1000, so (n + 0.5) / 1000 lies at least 0.0005 from an integer, and the float product is within
// 2^-23 * 262 of it (0.001f's error and the product's rounding). The compiler's build of the loop
// divides in 64-bit lanes and deinterleaves 16-bit samples: 2.3 times as long on AVX2.
template <std::size_t ch>
__attribute__((target("avx2"))) void gray_row_u8_avx2(const u8* s, std::size_t w, u16* d) {
  // Byte k of a half: pixel k / 4's samples at ch * (k / 4) + {0, 1} and + 2 (-1: zero).
  constexpr auto rg = [](int k) { return k % 2 ? -1 : int(ch) * (k / 4) + (k % 4) / 2; };
  constexpr auto b = [](int k) { return k % 4 ? -1 : int(ch) * (k / 4) + 2; };
#define HETPIPE_HALF(f)                                                                          \
  f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12), f(13), f(14), \
      f(15)
  const __m256i rg_at = _mm256_setr_epi8(HETPIPE_HALF(rg), HETPIPE_HALF(rg));
  const __m256i b_at = _mm256_setr_epi8(HETPIPE_HALF(b), HETPIPE_HALF(b));
#undef HETPIPE_HALF
  const __m256i one = _mm256_set1_epi32(1 << 16);
  const __m256i w_rg = _mm256_set1_epi32((587 << 16) | 299);
  const __m256i w_b1 = _mm256_set1_epi32((500 << 16) | 114);
  const __m256 half = _mm256_set1_ps(0.5f), milli = _mm256_set1_ps(0.001f);
  std::size_t x = 0;
  // A step reads 16 bytes at 4 ch past its first pixel: it stays in the row.
  for (; 4 * ch + 16 <= ch * (w - x) && w - x >= 8; x += 8) {
    const u8* p = s + ch * x;
    const __m256i v = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4 * ch)), 1);
    const __m256i n = _mm256_add_epi32(
        _mm256_madd_epi16(_mm256_shuffle_epi8(v, rg_at), w_rg),
        _mm256_madd_epi16(_mm256_or_si256(_mm256_shuffle_epi8(v, b_at), one), w_b1));
    const __m256i q =
        _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(n), half), milli));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + x),
                     _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
  }
  for (; x < w; ++x) d[x] = static_cast<u16>(luma(s[x * ch], s[x * ch + 1], s[x * ch + 2]));
}
#endif

// The luma of w pixels of 8-bit RGB (ch 3) or RGBA (ch 4).
void gray_row_u8(const u8* s, std::size_t w, std::size_t ch, u16* d) {
#if HETPIPE_IMG_SIMD
  if (current_kernels() != kernel_build::loops)  // the AVX2 build serves AVX-512 CPUs too
    return ch == 3 ? gray_row_u8_avx2<3>(s, w, d) : gray_row_u8_avx2<4>(s, w, d);
#endif
  gray_row_u8_loops(s, w, ch, d);
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
HETPIPE_CLONES void blur_h_u32_loops(const u16* c, std::size_t row, std::size_t ch,
                                     const blur_kernel& k, u32* d) {
  blur_h_row(c, row, ch, k, d);
}
HETPIPE_CLONES void blur_h_u64(const u16* c, std::size_t row, std::size_t ch, const blur_kernel& k,
                               u64* d) {
  blur_h_row(c, row, ch, k, d);
}
HETPIPE_CLONES void blur_v_u32_loops(const u32* const* rows, std::size_t row, const blur_kernel& k,
                                     u32 maxval, u64* acc, u16* d) {
  blur_v_row(rows, row, k, maxval, acc, d);
}

// The blur of 8-bit images (sums below 2^32) with AVX-512 or AVX2 (blur_stage) estimates
// each output in float and computes in integers the few whose estimate lies near a rounding
// boundary. The sum V = sum_k q_k H_k (blur_v_row) over the rows' horizontal sums H is estimated
// in single precision (u = 2^-24, every operation rounded to nearest): each H converted (exact
// integer sums made in 32-bit lanes), the pairs H_{-k} + H_{+k} added and each pair's q_k-weighted
// term accumulated with one fused multiply-add. The terms are nonnegative and none passes through
// more than r + 2 roundings, so the estimate S of V / 2^48 <= 255 (an exact scaling) is within
// about (r + 2) u 255 of it, below blur_float_margin(r). blur_finish gives floor(V / 2^48 + 1/2),
// which changes only at half-integers: where S lies farther than the margin from the nearest one
// (|frac(S) - 1/2| > margin, both exact in float), floor(S + 1/2) is the exact output; the others
// (2 margin of uniformly spread outputs: 2.7e-4 at r = 6, 0.6% at r = 192) are summed in integers
// from the rows' exact sums, which the stage keeps beside the floats (the input rows' 2r + 1 taps
// for each of 2r + 1 rows made a 1 x 2^20 image at sigma 64 take 67 s, not 0.2). A tie
// (V / 2^48 = n + 1/2) always lies within the margin. test_image checks the outputs against the
// integer loops, ties and near-ties included.
constexpr float blur_float_margin(int r) {
  return static_cast<float>(r + 3) * 256.0f * 0x1p-24f;
}

// Output sample i exactly, from the exact sums of its 2r + 1 rows (sums[0 .. 2r]).
u16 blur_exact_at(const u32* const* sums, std::size_t i, const blur_kernel& k, u32 maxval) {
  const int r = k.radius;
  u64 acc = u64{k.q[0]} * sums[r][i];
  for (int t = 1; t <= r; ++t) acc += u64{k.q[t]} * (u64{sums[r - t][i]} + sums[r + t][i]);
  return static_cast<u16>(blur_finish(acc, maxval));
}

#if HETPIPE_IMG_SIMD
// GCC 12's AVX-512 headers leave a vector undefined on purpose (the widening and shifting
// intrinsics), which -Wmaybe-uninitialized and -Wuninitialized report once they are inlined here.
#pragma GCC diagnostic push
#if !defined(__clang__)  // clang has no such warning (the fuzz build)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// --- AVX-512 ---

// 16 sums of two samples each, in 16 bits (samples <= 255: at most 510). AVX2 instructions: the
// horizontal passes of both builds widen these instead of each sample.
__attribute__((target("avx2"), always_inline)) inline __m256i pair16(const u16* a, const u16* b) {
  return _mm256_add_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
}
__attribute__((target("avx512f"), always_inline)) inline __m512i widen(const u16* p) {
  return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// Outputs at..at + 15 exactly, in integers: blur_exact_at in 64-bit lanes. An image whose outputs
// lie near rounding boundaries (rows of values built for it) then costs about what the integer
// passes did, not what one output at a time costs.
__attribute__((target("avx512f"))) void blur_exact16_avx512(const u32* const* sums, std::size_t at,
                                                            const blur_kernel& k, u32 maxval,
                                                            u16* d) {
  const int r = k.radius;
  __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
  for (int t = -r; t <= r; ++t) {
    const __m512i q = _mm512_set1_epi64(k.q[std::abs(t)]);
    const u32* p = sums[t + r] + at;
    lo = _mm512_add_epi64(
        lo, _mm512_mul_epu32(
                q, _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))));
    hi = _mm512_add_epi64(hi, _mm512_mul_epu32(q, _mm512_cvtepu32_epi64(_mm256_loadu_si256(
                                                      reinterpret_cast<const __m256i*>(p + 8)))));
  }
  const __m512i half = _mm512_set1_epi64(std::int64_t{1} << (2 * blur_shift - 1));
  const __m512i top = _mm512_set1_epi64(maxval);
  lo = _mm512_min_epu64(_mm512_srli_epi64(_mm512_add_epi64(lo, half), 2 * blur_shift), top);
  hi = _mm512_min_epu64(_mm512_srli_epi64(_mm512_add_epi64(hi, half), 2 * blur_shift), top);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d + at), _mm512_cvtepi64_epi16(lo));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d + at + 8), _mm512_cvtepi64_epi16(hi));
}
// Outputs at..at + 15 from their estimates acc = S 2^48.
__attribute__((target("avx512f"), always_inline)) inline void blur_v_finish16(
    __m512 acc, const u32* const* sums, std::size_t at, const blur_kernel& k, u32 maxval, u16* d) {
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 s = _mm512_mul_ps(acc, _mm512_set1_ps(0x1p-48f));
  const __m512 fl = _mm512_roundscale_ps(s, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(s, fl);
  const __mmask16 near =
      _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(f, half)),
                         _mm512_set1_ps(blur_float_margin(k.radius)), _CMP_LE_OQ);
  const __m512 v =
      _mm512_mask_add_ps(fl, _mm512_cmp_ps_mask(f, half, _CMP_GT_OQ), fl, _mm512_set1_ps(1.0f));
  const __m512i q =
      _mm512_min_epu32(_mm512_cvttps_epu32(v), _mm512_set1_epi32(static_cast<int>(maxval)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + at), _mm512_cvtepi32_epi16(q));
  if (near) blur_exact16_avx512(sums, at, k, maxval, d);
}
__attribute__((target("avx512f"), always_inline)) inline __m512 q16(const blur_kernel& k, int t) {
  return _mm512_set1_ps(static_cast<float>(k.q[t]));
}
// The vertical pass from sample i on: frows[0 .. 2r] are the rows' sums as floats.
__attribute__((target("avx512f"))) void blur_v_f32_avx512(std::size_t i, const float* const* frows,
                                                          const u32* const* sums, std::size_t row,
                                                          const blur_kernel& k, u32 maxval,
                                                          u16* d) {
  const int r = k.radius;
  const float* const* f = frows + r;  // f[m]: the row m away, -r <= m <= r
  constexpr int n = 4;                // registers of sums: the adds of one chain wait on each other
  for (; i + 16 * n <= row; i += 16 * n) {
    __m512 a[n];
    for (int j = 0; j < n; ++j) a[j] = _mm512_mul_ps(q16(k, 0), _mm512_loadu_ps(f[0] + i + 16 * j));
    for (int t = 1; t <= r; ++t) {
      const __m512 q = q16(k, t);
      for (int j = 0; j < n; ++j)
        a[j] = _mm512_fmadd_ps(
            q,
            _mm512_add_ps(_mm512_loadu_ps(f[-t] + i + 16 * j), _mm512_loadu_ps(f[t] + i + 16 * j)),
            a[j]);
    }
    for (int j = 0; j < n; ++j) blur_v_finish16(a[j], sums, i + 16 * j, k, maxval, d);
  }
  for (; i + 16 <= row; i += 16) {
    __m512 a = _mm512_mul_ps(q16(k, 0), _mm512_loadu_ps(f[0] + i));
    for (int t = 1; t <= r; ++t)
      a = _mm512_fmadd_ps(q16(k, t),
                          _mm512_add_ps(_mm512_loadu_ps(f[-t] + i), _mm512_loadu_ps(f[t] + i)), a);
    blur_v_finish16(a, sums, i, k, maxval, d);
  }
  for (; i < row; ++i) d[i] = blur_exact_at(sums, i, k, maxval);
}
// Rows y .. y + 3 at once, from frows[0 .. 2r + 3] = rows y - r .. y + r + 3: each row is loaded
// once for the four outputs that use it, 2r + 4 loads for four rows against 2r + 1 for one (the
// pass is bound by its loads; alone, outside the library, 14 rows of 8192 floats, one thread,
// Zen 4: 3.35 GPix/s two rows at once, 4.78 four). Output c's pair t is (y + c - t, y + c + t): as
// t grows, the lows slide down a row and the highs up one, each taking one new row. Each output's
// sum is formed in the single row's order, so the estimates, and the outputs, are the single rows'.
// Rows y + 1 .. y + 3 go to d[1 .. 3].
__attribute__((target("avx512f"))) void blur_v4_f32_avx512(const float* const* frows,
                                                           const u32* const* sums, std::size_t row,
                                                           const blur_kernel& k, u32 maxval,
                                                           u16* const* d) {
  const int r = k.radius;
  const float* const* f = frows + r;  // f[m]: row y + m, -r <= m <= r + 3
  constexpr int n = 2;                // 16-sample columns at once: 8 chains of adds
  std::size_t i = 0;
  for (; i + 16 * n <= row; i += 16 * n) {
    __m512 lo[n][4], hi[n][4], a[n][4];  // lo[][c], hi[][c]: rows y + c - t, y + c + t
    for (int j = 0; j < n; ++j)
      for (int c = 0; c < 4; ++c) {
        lo[j][c] = hi[j][c] = _mm512_loadu_ps(f[c] + i + 16 * j);
        a[j][c] = _mm512_mul_ps(q16(k, 0), lo[j][c]);
      }
    for (int t = 1; t <= r; ++t) {
      const __m512 q = q16(k, t);
      for (int j = 0; j < n; ++j) {
        lo[j][3] = lo[j][2], lo[j][2] = lo[j][1], lo[j][1] = lo[j][0];
        lo[j][0] = _mm512_loadu_ps(f[-t] + i + 16 * j);
        hi[j][0] = hi[j][1], hi[j][1] = hi[j][2], hi[j][2] = hi[j][3];
        hi[j][3] = _mm512_loadu_ps(f[3 + t] + i + 16 * j);
        for (int c = 0; c < 4; ++c)
          a[j][c] = _mm512_fmadd_ps(q, _mm512_add_ps(lo[j][c], hi[j][c]), a[j][c]);
      }
    }
    for (int j = 0; j < n; ++j)
      for (int c = 0; c < 4; ++c) blur_v_finish16(a[j][c], sums + c, i + 16 * j, k, maxval, d[c]);
  }
  for (int c = 0; c < 4; ++c) blur_v_f32_avx512(i, frows + c, sums + c, row, k, maxval, d[c]);
}
// The horizontal pass, 32 outputs at a time in two registers of 32-bit sums (exact: samples
// <= 255) across every tap, stored as they are and as floats (rounded to nearest).
__attribute__((target("avx512f"))) void blur_h_sums_avx512(const u16* c, std::size_t row,
                                                           std::size_t ch, const blur_kernel& k,
                                                           u32* e, float* d) {
  const int r = k.radius;
  std::size_t i = 0;
  for (; i + 32 <= row; i += 32) {
    const __m512i q0 = _mm512_set1_epi32(static_cast<int>(k.q[0]));
    __m512i a0 = _mm512_mullo_epi32(q0, widen(c + i));
    __m512i a1 = _mm512_mullo_epi32(q0, widen(c + i + 16));
    for (int t = 1; t <= r; ++t) {
      const __m512i q = _mm512_set1_epi32(static_cast<int>(k.q[t]));
      const u16* lo = c + i - t * ch;
      const u16* hi = c + i + t * ch;
      a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(q, _mm512_cvtepu16_epi32(pair16(lo, hi))));
      a1 = _mm512_add_epi32(a1,
                            _mm512_mullo_epi32(q, _mm512_cvtepu16_epi32(pair16(lo + 16, hi + 16))));
    }
    _mm512_storeu_si512(e + i, a0);
    _mm512_storeu_si512(e + i + 16, a1);
    _mm512_storeu_ps(d + i, _mm512_cvtepu32_ps(a0));
    _mm512_storeu_ps(d + i + 16, _mm512_cvtepu32_ps(a1));
  }
  for (; i < row; ++i) {
    u32 acc = k.q[0] * u32{c[i]};
    // Pointers, not c[i - t ch]: that index wraps below zero for the first samples.
    for (int t = 1; t <= r; ++t) acc += k.q[t] * (u32{*(c + i - t * ch)} + c[i + t * ch]);
    e[i] = acc;
    d[i] = static_cast<float>(acc);
  }
}

// --- AVX2: the same, 8 lanes a register ---

__attribute__((target("avx2"), always_inline)) inline __m256i widen8(const u16* p) {
  return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// blur_exact16_avx512 for outputs at..at + 7. AVX2 has no 64-bit multiply: even and odd lanes'
// sums are multiplied in place (vpmuludq reads the low half of each 64-bit lane).
__attribute__((target("avx2"))) void blur_exact8_avx2(const u32* const* sums, std::size_t at,
                                                      const blur_kernel& k, u32 maxval, u16* d) {
  const int r = k.radius;
  __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
  for (int t = -r; t <= r; ++t) {
    const __m256i q = _mm256_set1_epi64x(k.q[std::abs(t)]);
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums[t + r] + at));
    even = _mm256_add_epi64(even, _mm256_mul_epu32(q, h));
    odd = _mm256_add_epi64(odd, _mm256_mul_epu32(q, _mm256_srli_epi64(h, 32)));
  }
  const __m256i half = _mm256_set1_epi64x(std::int64_t{1} << (2 * blur_shift - 1));
  // Each rounded sum is below 2^32 (at most maxval <= 255): even and odd interleave as words.
  const __m256i e = _mm256_srli_epi64(_mm256_add_epi64(even, half), 2 * blur_shift);
  const __m256i o = _mm256_srli_epi64(_mm256_add_epi64(odd, half), 2 * blur_shift);
  const __m256i v = _mm256_min_epu32(_mm256_or_si256(e, _mm256_slli_epi64(o, 32)),
                                     _mm256_set1_epi32(static_cast<int>(maxval)));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d + at), _mm256_castsi256_si128(packed));
}
__attribute__((target("avx2,fma"), always_inline)) inline void blur_v_finish8(
    __m256 acc, const u32* const* sums, std::size_t at, const blur_kernel& k, u32 maxval, u16* d) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 s = _mm256_mul_ps(acc, _mm256_set1_ps(0x1p-48f));
  const __m256 fl = _mm256_round_ps(s, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(s, fl);
  const __m256 dist = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(f, half));
  const int near = _mm256_movemask_ps(
      _mm256_cmp_ps(dist, _mm256_set1_ps(blur_float_margin(k.radius)), _CMP_LE_OQ));
  const __m256 v =
      _mm256_add_ps(fl, _mm256_and_ps(_mm256_cmp_ps(f, half, _CMP_GT_OQ), _mm256_set1_ps(1.0f)));
  const __m256i q =
      _mm256_min_epi32(_mm256_cvttps_epi32(v), _mm256_set1_epi32(static_cast<int>(maxval)));
  // packus works within 128-bit halves: (q lo, q lo, q hi, q hi); keep the first and third.
  const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(q, q), 0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d + at), _mm256_castsi256_si128(p));
  if (near) blur_exact8_avx2(sums, at, k, maxval, d);
}
__attribute__((target("avx2,fma"), always_inline)) inline __m256 q8(const blur_kernel& k, int t) {
  return _mm256_set1_ps(static_cast<float>(k.q[t]));
}
__attribute__((target("avx2,fma"))) void blur_v_f32_avx2(std::size_t i, const float* const* frows,
                                                         const u32* const* sums, std::size_t row,
                                                         const blur_kernel& k, u32 maxval, u16* d) {
  const int r = k.radius;
  const float* const* f = frows + r;
  constexpr int n = 4;
  for (; i + 8 * n <= row; i += 8 * n) {
    __m256 a[n];
    for (int j = 0; j < n; ++j) a[j] = _mm256_mul_ps(q8(k, 0), _mm256_loadu_ps(f[0] + i + 8 * j));
    for (int t = 1; t <= r; ++t) {
      const __m256 q = q8(k, t);
      for (int j = 0; j < n; ++j)
        a[j] = _mm256_fmadd_ps(
            q, _mm256_add_ps(_mm256_loadu_ps(f[-t] + i + 8 * j), _mm256_loadu_ps(f[t] + i + 8 * j)),
            a[j]);
    }
    for (int j = 0; j < n; ++j) blur_v_finish8(a[j], sums, i + 8 * j, k, maxval, d);
  }
  for (; i + 8 <= row; i += 8) {
    __m256 a = _mm256_mul_ps(q8(k, 0), _mm256_loadu_ps(f[0] + i));
    for (int t = 1; t <= r; ++t)
      a = _mm256_fmadd_ps(q8(k, t),
                          _mm256_add_ps(_mm256_loadu_ps(f[-t] + i), _mm256_loadu_ps(f[t] + i)), a);
    blur_v_finish8(a, sums, i, k, maxval, d);
  }
  for (; i < row; ++i) d[i] = blur_exact_at(sums, i, k, maxval);
}
// Four rows at once with AVX2, as blur_v4_f32_avx512 (one 8-sample column: 12 of the 16
// registers hold the rows and sums).
__attribute__((target("avx2,fma"))) void blur_v4_f32_avx2(const float* const* frows,
                                                          const u32* const* sums, std::size_t row,
                                                          const blur_kernel& k, u32 maxval,
                                                          u16* const* d) {
  const int r = k.radius;
  const float* const* f = frows + r;  // f[m]: row y + m, -r <= m <= r + 3
  std::size_t i = 0;
  for (; i + 8 <= row; i += 8) {
    __m256 lo[4], hi[4], a[4];  // lo[c], hi[c]: rows y + c - t, y + c + t
    for (int c = 0; c < 4; ++c) {
      lo[c] = hi[c] = _mm256_loadu_ps(f[c] + i);
      a[c] = _mm256_mul_ps(q8(k, 0), lo[c]);
    }
    for (int t = 1; t <= r; ++t) {
      const __m256 q = q8(k, t);
      lo[3] = lo[2], lo[2] = lo[1], lo[1] = lo[0];
      lo[0] = _mm256_loadu_ps(f[-t] + i);
      hi[0] = hi[1], hi[1] = hi[2], hi[2] = hi[3];
      hi[3] = _mm256_loadu_ps(f[3 + t] + i);
      for (int c = 0; c < 4; ++c) a[c] = _mm256_fmadd_ps(q, _mm256_add_ps(lo[c], hi[c]), a[c]);
    }
    for (int c = 0; c < 4; ++c) blur_v_finish8(a[c], sums + c, i, k, maxval, d[c]);
  }
  for (int c = 0; c < 4; ++c) blur_v_f32_avx2(i, frows + c, sums + c, row, k, maxval, d[c]);
}
// 32-bit sums as floats rounded to nearest: AVX2 converts signed words only, so each sum is split
// in 16-bit halves (both exact as floats), and one fused multiply-add rounds hi 2^16 + lo once.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 u32_to_float8(__m256i v) {
  const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 16));
  const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)));
  return _mm256_fmadd_ps(hi, _mm256_set1_ps(65536.0f), lo);
}
__attribute__((target("avx2,fma"))) void blur_h_sums_avx2(const u16* c, std::size_t row,
                                                          std::size_t ch, const blur_kernel& k,
                                                          u32* e, float* d) {
  const int r = k.radius;
  std::size_t i = 0;
  for (; i + 16 <= row; i += 16) {
    const __m256i q0 = _mm256_set1_epi32(static_cast<int>(k.q[0]));
    __m256i a0 = _mm256_mullo_epi32(q0, widen8(c + i));
    __m256i a1 = _mm256_mullo_epi32(q0, widen8(c + i + 8));
    for (int t = 1; t <= r; ++t) {
      const __m256i q = _mm256_set1_epi32(static_cast<int>(k.q[t]));
      const u16* lo = c + i - t * ch;
      const u16* hi = c + i + t * ch;
      const __m256i pair = pair16(lo, hi);
      a0 = _mm256_add_epi32(
          a0, _mm256_mullo_epi32(q, _mm256_cvtepu16_epi32(_mm256_castsi256_si128(pair))));
      a1 = _mm256_add_epi32(
          a1, _mm256_mullo_epi32(q, _mm256_cvtepu16_epi32(_mm256_extracti128_si256(pair, 1))));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + i), a0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + i + 8), a1);
    _mm256_storeu_ps(d + i, u32_to_float8(a0));
    _mm256_storeu_ps(d + i + 8, u32_to_float8(a1));
  }
  for (; i < row; ++i) {
    u32 acc = k.q[0] * u32{c[i]};
    for (int t = 1; t <= r; ++t) acc += k.q[t] * (u32{*(c + i - t * ch)} + c[i + t * ch]);
    e[i] = acc;
    d[i] = static_cast<float>(acc);
  }
}

#pragma GCC diagnostic pop
#endif

// Whether the blur of 8-bit images estimates in float (blur_stage): the vector builds.
bool blur_float_rows() {
  return current_kernels() != kernel_build::loops;
}
// A row's horizontal sums, exact (e) and as floats (d).
void blur_h_sums([[maybe_unused]] const u16* c, [[maybe_unused]] std::size_t row,
                 [[maybe_unused]] std::size_t ch, [[maybe_unused]] const blur_kernel& k,
                 [[maybe_unused]] u32* e, [[maybe_unused]] float* d) {
  switch (current_kernels()) {
#if HETPIPE_IMG_SIMD
    case kernel_build::avx512:
      return blur_h_sums_avx512(c, row, ch, k, e, d);
    case kernel_build::avx2:
      return blur_h_sums_avx2(c, row, ch, k, e, d);
#endif
    default:
      throw std::logic_error("blur_h_sums in the loops' build");
  }
}
void blur_v_f32([[maybe_unused]] const float* const* frows, [[maybe_unused]] const u32* const* sums,
                [[maybe_unused]] std::size_t row, [[maybe_unused]] const blur_kernel& k,
                [[maybe_unused]] u32 maxval, [[maybe_unused]] u16* d) {
  switch (current_kernels()) {
#if HETPIPE_IMG_SIMD
    case kernel_build::avx512:
      return blur_v_f32_avx512(0, frows, sums, row, k, maxval, d);
    case kernel_build::avx2:
      return blur_v_f32_avx2(0, frows, sums, row, k, maxval, d);
#endif
    default:
      throw std::logic_error("blur_v_f32 in the loops' build");
  }
}
// Rows y .. y + 3 from rows y - r .. y + r + 3 (frows and sums both).
void blur_v4_f32([[maybe_unused]] const float* const* frows,
                 [[maybe_unused]] const u32* const* sums, [[maybe_unused]] std::size_t row,
                 [[maybe_unused]] const blur_kernel& k, [[maybe_unused]] u32 maxval,
                 [[maybe_unused]] u16* const* d) {
#if HETPIPE_IMG_SIMD
  if (current_kernels() == kernel_build::avx512)
    return blur_v4_f32_avx512(frows, sums, row, k, maxval, d);
  if (current_kernels() == kernel_build::avx2)
    return blur_v4_f32_avx2(frows, sums, row, k, maxval, d);
#endif
  throw std::logic_error("blur_v4_f32 in the loops' build");
}
HETPIPE_CLONES void blur_v_u64(const u64* const* rows, std::size_t row, const blur_kernel& k,
                               u32 maxval, u64* acc, u16* d) {
  blur_v_row(rows, row, k, maxval, acc, d);
}
inline void blur_h(const u16* c, std::size_t row, std::size_t ch, const blur_kernel& k, u32* d) {
  blur_h_u32_loops(c, row, ch, k, d);
}
inline void blur_h(const u16* c, std::size_t row, std::size_t ch, const blur_kernel& k, u64* d) {
  blur_h_u64(c, row, ch, k, d);
}
inline void blur_v(const u32* const* rows, std::size_t row, const blur_kernel& k, u32 maxval,
                   u64* acc, u16* d) {
  blur_v_u32_loops(rows, row, k, maxval, acc, d);
}
inline void blur_v(const u64* const* rows, std::size_t row, const blur_kernel& k, u32 maxval,
                   u64* acc, u16* d) {
  blur_v_u64(rows, row, k, maxval, acc, d);
}

// One row of Sobel magnitudes over every sample (alpha too: the caller copies it back). a, b, c
// are the rows above, at and below, each with one replicated pixel before and after it (a[-ch]
// and a[row + ch - 1] are readable). Written so that the compiler vectorises it; `magnitude`
// maps (gx, gy) to the sample.
template <class Out, class Magnitude>
[[gnu::always_inline]] inline void sobel_row(const u16* a, const u16* b, const u16* c,
                                             std::size_t row, std::size_t ch, Out* d,
                                             Magnitude magnitude) {
  // The left neighbours through pointers of their own: a[i - ch] would wrap its unsigned index
  // below zero for the first pixel.
  const u16 *al = a - ch, *ar = a + ch, *bl = b - ch, *br = b + ch, *cl = c - ch, *cr = c + ch;
  for (std::size_t i = 0; i < row; ++i) {
    const std::int32_t gx = (ar[i] + 2 * br[i] + cr[i]) - (al[i] + 2 * bl[i] + cl[i]);
    const std::int32_t gy = (cl[i] + 2 * c[i] + cr[i]) - (al[i] + 2 * a[i] + ar[i]);
    d[i] = static_cast<Out>(magnitude(gx, gy));
  }
}
// Out: u16, or u8 for an 8-bit output written straight into its raster (maxval <= 255).
template <class Out>
[[gnu::always_inline]] inline void sobel_row_8_loops_t(const u16* a, const u16* b, const u16* c,
                                                       std::size_t row, std::size_t ch, u32 maxval,
                                                       Out* d) {
  sobel_row(a, b, c, row, ch, d, [maxval](std::int32_t gx, std::int32_t gy) {
    const u32 m = round_sqrt_small(static_cast<u32>(gx * gx + gy * gy));
    return m > maxval ? maxval : m;
  });
}
HETPIPE_CLONES void sobel_row_8_loops(const u16* a, const u16* b, const u16* c, std::size_t row,
                                      std::size_t ch, u32 maxval, u16* d) {
  sobel_row_8_loops_t(a, b, c, row, ch, maxval, d);
}
HETPIPE_CLONES void sobel_row_8_loops(const u16* a, const u16* b, const u16* c, std::size_t row,
                                      std::size_t ch, u32 maxval, u8* d) {
  sobel_row_8_loops_t(a, b, c, row, ch, maxval, d);
}

#if HETPIPE_IMG_SIMD
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // as for the blur's passes
#endif
// round(sqrt(gx^2 + gy^2)) clamped to top, for 16 (gx, gy) pairs of 16-bit lanes.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i sobel_root16(
    __m512i pairs, __m512 half, __m512i top) {
  const __m512i s = _mm512_madd_epi16(pairs, pairs);  // gx^2 + gy^2
  return _mm512_min_epi32(
      _mm512_cvttps_epi32(_mm512_add_ps(_mm512_sqrt_ps(_mm512_cvtepi32_ps(s)), half)), top);
}
// sobel_row_8 with AVX-512, 32 outputs at a time: gx and gy in 16-bit lanes (|g| <= 4 x 255),
// gx^2 + gy^2 < 2^21 in 32-bit lanes from one multiply-add of each (gx, gy) pair, then
// round_sqrt_small's float operations. The pairs interleave within 128-bit lanes, and the pack
// back to 16 bits undoes that. Against 16 outputs at a time in 32-bit lanes, test_host's
// throughput, one thread, Zen 4: Sobel 1080p 2513-2526 -> 3553-3600 MPix/s, 8192 wide 1404-1553
// -> 1557-1778.
template <class Out>
__attribute__((target("avx512f,avx512bw"))) void sobel_row_8_avx512(const u16* a, const u16* b,
                                                                    const u16* c, std::size_t row,
                                                                    std::size_t ch, u32 maxval,
                                                                    Out* d) {
  const __m512i top = _mm512_set1_epi32(static_cast<int>(maxval));
  const __m512 half = _mm512_set1_ps(0.5f);
  if (row < 32) return sobel_row_8_loops(a, b, c, row, ch, maxval, d);
  // The last block ends at the row's end, overlapping the one before where the row is not a
  // whole number of blocks (its outputs made again, the same): no scalar tail.
  for (std::size_t i = 0;; i += 32) {
    if (i + 32 > row) i = row - 32;
    const __m512i al = _mm512_loadu_si512(a + i - ch), am = _mm512_loadu_si512(a + i),
                  ar = _mm512_loadu_si512(a + i + ch);
    const __m512i bl = _mm512_loadu_si512(b + i - ch), br = _mm512_loadu_si512(b + i + ch);
    const __m512i cl = _mm512_loadu_si512(c + i - ch), cm = _mm512_loadu_si512(c + i),
                  cr = _mm512_loadu_si512(c + i + ch);
    const __m512i gx =
        _mm512_sub_epi16(_mm512_add_epi16(_mm512_add_epi16(ar, cr), _mm512_slli_epi16(br, 1)),
                         _mm512_add_epi16(_mm512_add_epi16(al, cl), _mm512_slli_epi16(bl, 1)));
    const __m512i gy =
        _mm512_sub_epi16(_mm512_add_epi16(_mm512_add_epi16(cl, cr), _mm512_slli_epi16(cm, 1)),
                         _mm512_add_epi16(_mm512_add_epi16(al, ar), _mm512_slli_epi16(am, 1)));
    const __m512i m = _mm512_packus_epi32(sobel_root16(_mm512_unpacklo_epi16(gx, gy), half, top),
                                          sobel_root16(_mm512_unpackhi_epi16(gx, gy), half, top));
    if constexpr (sizeof(Out) == 1)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), _mm512_cvtepi16_epi8(m));
    else
      _mm512_storeu_si512(d + i, m);
    if (i + 32 == row) break;
  }
}

// round(sqrt(gx^2 + gy^2)) clamped to top, for 8 (gx, gy) pairs of 16-bit lanes (AVX2).
__attribute__((target("avx2"), always_inline)) inline __m256i sobel_root8(__m256i pairs,
                                                                          __m256 half,
                                                                          __m256i top) {
  const __m256i s = _mm256_madd_epi16(pairs, pairs);  // gx^2 + gy^2
  return _mm256_min_epi32(
      _mm256_cvttps_epi32(_mm256_add_ps(_mm256_sqrt_ps(_mm256_cvtepi32_ps(s)), half)), top);
}
// The same with AVX2, 16 outputs at a time (the loops' clone computes the square root in doubles
// by way of round_sqrt_small's conversion, which takes it out of 32-bit lanes). In 16-bit lanes
// as AVX-512's: test_host, one thread, Zen 4, Sobel 1080p 1809-1899 -> 2896-2944 MPix/s, 8192 wide
// 1256-1396 -> 1679-1803.
template <class Out>
__attribute__((target("avx2"))) void sobel_row_8_avx2(const u16* a, const u16* b, const u16* c,
                                                      std::size_t row, std::size_t ch, u32 maxval,
                                                      Out* d) {
  const __m256i top = _mm256_set1_epi32(static_cast<int>(maxval));
  const __m256 half = _mm256_set1_ps(0.5f);
  if (row < 16) return sobel_row_8_loops(a, b, c, row, ch, maxval, d);
  const auto ld = [](const u16* p) { return reinterpret_cast<const __m256i*>(p); };
  // The last block ends at the row's end, overlapping the one before (as AVX-512's).
  for (std::size_t i = 0;; i += 16) {
    if (i + 16 > row) i = row - 16;
    const __m256i al = _mm256_loadu_si256(ld(a + i - ch)), am = _mm256_loadu_si256(ld(a + i)),
                  ar = _mm256_loadu_si256(ld(a + i + ch));
    const __m256i bl = _mm256_loadu_si256(ld(b + i - ch)), br = _mm256_loadu_si256(ld(b + i + ch));
    const __m256i cl = _mm256_loadu_si256(ld(c + i - ch)), cm = _mm256_loadu_si256(ld(c + i)),
                  cr = _mm256_loadu_si256(ld(c + i + ch));
    const __m256i gx =
        _mm256_sub_epi16(_mm256_add_epi16(_mm256_add_epi16(ar, cr), _mm256_slli_epi16(br, 1)),
                         _mm256_add_epi16(_mm256_add_epi16(al, cl), _mm256_slli_epi16(bl, 1)));
    const __m256i gy =
        _mm256_sub_epi16(_mm256_add_epi16(_mm256_add_epi16(cl, cr), _mm256_slli_epi16(cm, 1)),
                         _mm256_add_epi16(_mm256_add_epi16(al, ar), _mm256_slli_epi16(am, 1)));
    // In-lane interleave, then an in-lane pack back: the 16 outputs in order, in 16 bits.
    const __m256i m = _mm256_packus_epi32(sobel_root8(_mm256_unpacklo_epi16(gx, gy), half, top),
                                          sobel_root8(_mm256_unpackhi_epi16(gx, gy), half, top));
    if constexpr (sizeof(Out) == 1) {
      const __m128i bytes =
          _mm_packus_epi16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), bytes);
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), m);
    }
    if (i + 16 == row) break;
  }
}
#pragma GCC diagnostic pop
#endif

template <class Out>
void sobel_row_8(const u16* a, const u16* b, const u16* c, std::size_t row, std::size_t ch,
                 u32 maxval, Out* d) {
  switch (current_kernels()) {
#if HETPIPE_IMG_SIMD
    case kernel_build::avx512:
      return sobel_row_8_avx512(a, b, c, row, ch, maxval, d);
    case kernel_build::avx2:
      return sobel_row_8_avx2(a, b, c, row, ch, maxval, d);
#endif
    default:
      return sobel_row_8_loops(a, b, c, row, ch, maxval, d);
  }
}
HETPIPE_CLONES void sobel_row_16(const u16* a, const u16* b, const u16* c, std::size_t row,
                                 std::size_t ch, u32 maxval, u16* d) {
  sobel_row(a, b, c, row, ch, d,
            [maxval](std::int32_t gx, std::int32_t gy) { return sobel_magnitude(gx, gy, maxval); });
}

// acc[x] (+)= wt p[x] over a row: resize's vertical pass, one source row at a time (first: the
// row's first tap, which sets acc).
HETPIPE_CLONES void resize_y_add(const u16* p, std::size_t row, u32 wt, bool first, u64* acc) {
  if (first)
    for (std::size_t x = 0; x < row; ++x) acc[x] = u64{wt} * p[x];
  else
    for (std::size_t x = 0; x < row; ++x) acc[x] += u64{wt} * p[x];
}

// The taps of one axis, n -> m (m != n): output i reads sources first[i] .. first[i] + count[i] - 1
// with integer weights weight[offset[i] ..] over the denominator den.
struct axis_taps {
  std::vector<u32> first, count, offset;
  std::vector<u32> weight;  // at most 2m (bilinear) or m (area), m <= max_dimension: 2^21
  u64 den = 1;
  u32 max_count = 0;
  // Growing (bilinear, at most two taps): output i is w0[i] src[i0[i]] + w1[i] src[i1[i]]
  // (w1 = 0 and i1 = i0 for a single tap), so the loops need no tap count.
  std::vector<u32> i0, i1, w0, w1;
};

// d[x] = div_round(acc[x], den) for n sums acc[x] <= 65535 den (the weights sum to den <= 2^21),
// without an integer division, in doubles where every value is an exact integer: N = 2 acc + den
// < 2^38 (acc enters through its bits, exact below 2^52: no 64-bit conversion needed) and
// D = 2 den <= 2^22. N / D through the reciprocal is off by less than 2^-35 (N / D < 2^17), while
// a quotient that is not an integer is at least 1 / D >= 2^-22 from one: truncating it gives
// floor(N / D), except for an integer quotient k, which may come out as k - 2^-40 and truncate to
// k - 1 (den = 98, acc = 49: N = D). One exact comparison (q D < 2^39) puts q back at k.
// Vectorises in every clone with -fno-trapping-math (a 64-bit division per sample took most of
// resize's time). A contraction into an FMA changes nothing here: 2 a is exact.
HETPIPE_CLONES void finish_row(const u64* acc, std::size_t n, u64 den, u16* d) {
  constexpr double two52 = 4503599627370496.0;
  const double dn = static_cast<double>(den), dd = 2 * dn, inv = 1 / dd;
  for (std::size_t x = 0; x < n; ++x) {
    const double a = std::bit_cast<double>(acc[x] | 0x4330000000000000ull) - two52;
    const double num = 2 * a + dn;
    double q = static_cast<double>(static_cast<std::int32_t>(num * inv));  // >= 0: trunc = floor
    q += static_cast<double>((q + 1) * dd <= num);
    d[x] = static_cast<u16>(static_cast<std::int32_t>(q));
  }
}

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
  for (u32 c : t.count) t.max_count = std::max(t.max_count, c);
  if (m > n) {
    t.i0.resize(m), t.i1.resize(m), t.w0.resize(m), t.w1.resize(m);
    for (u64 i = 0; i < m; ++i) {
      const bool two = t.count[i] > 1;
      t.i0[i] = t.first[i];
      t.i1[i] = t.first[i] + (two ? 1 : 0);
      t.w0[i] = t.weight[t.offset[i]];
      t.w1[i] = two ? t.weight[t.offset[i] + 1] : 0;
    }
  }
  return t;
}

// Growing a row to m pixels of ch channels: the two taps' sum of each output sample.
HETPIPE_CLONES void resize_x_two(const u16* src, std::size_t ch, std::size_t m, const axis_taps& t,
                                 u64* acc) {
  const u32 *i0 = t.i0.data(), *i1 = t.i1.data(), *w0 = t.w0.data(), *w1 = t.w1.data();
  if (ch == 1) {
    for (std::size_t i = 0; i < m; ++i) acc[i] = u64{w0[i]} * src[i0[i]] + u64{w1[i]} * src[i1[i]];
    return;
  }
  for (std::size_t i = 0; i < m; ++i) {
    const u16* a = src + std::size_t{i0[i]} * ch;
    const u16* b = src + std::size_t{i1[i]} * ch;
    for (std::size_t c = 0; c < ch; ++c) acc[i * ch + c] = u64{w0[i]} * a[c] + u64{w1[i]} * b[c];
  }
}

// --- the chain, row by row ---
//
// Each op is a stage that makes its output rows on demand from the rows of the stage before it,
// keeping only the rows still needed (blur keeps the horizontal sums of its 2r + 1 rows). A
// chain over an 8192 x 8192 image holds a few hundred KiB of rows per thread, not an image-sized
// buffer per op that had to be mapped and zeroed afresh and then read back from memory by the next
// op (page faults were 38% of `image --device cpu` on 8192^2 PGMs, 2-core box, perf). The output
// rows are cut into bands, one per thread; each band runs stages of its own and makes again the
// rows around its edges that its ops need (the halo).

// A stage's output rows (shape().width * channels samples each), asked for by the next stage in
// an order where the rows it holds at once are at most `kept` consecutive rows.
class stage {
 public:
  explicit stage(const image_shape& s) : shape_(s), row_len_(std::size_t{s.width} * s.channels) {}
  virtual ~stage() = default;
  stage(const stage&) = delete;
  stage& operator=(const stage&) = delete;

  const image_shape& shape() const { return shape_; }
  std::size_t row_len() const { return row_len_; }
  // The next stage holds up to n consecutive rows at once (or reads them again: kept, they are
  // made once).
  void keep(std::size_t n) { kept_ = std::max(kept_, n); }
  // Row y as the input's own 8-bit samples, where the stage is an input of them that needs no
  // check (maxval 255); nullptr otherwise, and then row(y) is to be read.
  virtual const u8* bytes(i64) { return nullptr; }
  // Row y as 8-bit samples straight into out (the chain's last stage, for an 8-bit output), where
  // the stage makes such rows; false otherwise, and then row(y) is to be packed. Not kept.
  virtual bool make_u8(i64, u8*) { return false; }
  // Row y (0 <= y < height), valid until rows `kept` further on have been asked for.
  virtual const u16* row(i64 y) {
    u16* p = slot(y);
    if (tags_[index(y)] != y) {
      claim(y);  // a make() that throws leaves no row behind
      make(y, p);
      made(y);
    }
    return p;
  }

 protected:
  virtual void make(i64 y, u16* out) = 0;
  // A make() that makes up to n rows after the one asked for as well (blur, four at a time) puts
  // them where row() will look: claim(y) before writing slot(y), made(y) once it is whole. Called
  // before the first row().
  void make_ahead(std::size_t n) { ahead_ = n; }
  u16* slot(i64 y) {
    if (tags_.empty()) {
      rows_.resize((kept_ + ahead_) * row_len_);
      tags_.assign(kept_ + ahead_, -1);
    }
    return rows_.data() + index(y) * row_len_;
  }
  void claim(i64 y) { tags_[index(y)] = -1; }
  void made(i64 y) { tags_[index(y)] = y; }

 private:
  std::size_t index(i64 y) const { return static_cast<std::size_t>(y) % tags_.size(); }
  image_shape shape_;
  std::size_t row_len_;
  std::size_t kept_ = 1;
  std::size_t ahead_ = 0;
  std::vector<u16> rows_;
  std::vector<i64> tags_;
};

// The input raster: host-order uint16 rows are read where they lie; u8 and u16be rows are
// widened into the stage's rows and checked against maxval.
class source_stage final : public stage {
 public:
  explicit source_stage(const raster_view& in) : stage(in.shape), in_(in) {}
  const u8* bytes(i64 y) override {
    if (in_.layout != sample_layout::u8 || can_exceed_maxval(in_.shape, in_.layout)) return nullptr;
    fetch_next(y);
    return static_cast<const u8*>(in_.data) + static_cast<std::size_t>(y) * row_len();
  }
  const u16* row(i64 y) override {
    if (in_.layout == sample_layout::u16) {
      fetch_next(y);
      return static_cast<const u16*>(in_.data) + static_cast<std::size_t>(y) * row_len();
    }
    return stage::row(y);
  }

 private:
  // Row y + 1 into L2 while row y is worked on: the raster comes from memory (a mapped file), the
  // rows are taken in order, and a row is long enough that the next stays unread meanwhile.
  // Widening the 8-bit rows of 8192^2 PGMs was 8% of the chain gray,blur:sigma=2,sobel's samples on
  // one thread (Zen 4 box, perf), 3% with this; 60 HD RGB PPMs, one lane: 309 -> 288 ms (median
  // of 11, whole process; two lanes 196 -> 193; 8192^2 on one lane no faster).
  // Each row once: Sobel asks for rows y - 1, y and y + 1 of every output row.
  void fetch_next(i64 y) {
    if (y + 1 <= fetched_ || y + 1 >= static_cast<i64>(shape().height)) return;
    fetched_ = y + 1;
    const std::size_t bytes = row_len() * bytes_per_sample(in_.layout);
    const u8* next = static_cast<const u8*>(in_.data) + static_cast<std::size_t>(y + 1) * bytes;
    for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(next + o, 0, 2);
  }
  void make(i64 y, u16* out) override {
    const std::size_t n = row_len(), bytes = n * bytes_per_sample(in_.layout);
    fetch_next(y);
    unpack_raster(static_cast<const std::uint8_t*>(in_.data) + static_cast<std::size_t>(y) * bytes,
                  n, in_.layout, out);
    // The error names the raster's first sample above maxval, whichever row found one, so that
    // a file gets the same reason for any thread count (and the one decode_pnm gives).
    if (can_exceed_maxval(in_.shape, in_.layout) &&
        *std::max_element(out, out + n) > in_.shape.maxval) {
      check_raster(in_.shape, in_.data, in_.layout);
      throw std::logic_error("image: a sample above maxval went missing");
    }
  }

  raster_view in_;
  i64 fetched_ = -1;  // the last row fetch_next asked for
};

class gray_stage final : public stage {
 public:
  explicit gray_stage(stage& in) : stage(output_shape(in.shape(), op{op_kind::gray})), in_(in) {}

 private:
  void make(i64 y, u16* d) override {
    const std::size_t ch = in_.shape().channels, w = shape().width;
    if (const u8* b = ch >= 3 ? in_.bytes(y) : nullptr) return gray_row_u8(b, w, ch, d);
    const u16* s = in_.row(y);
    if (ch == 3) {
      gray_row_3(s, w, d);
    } else if (ch == 4) {
      gray_row_4(s, w, d);
    } else {
      for (std::size_t x = 0; x < w; ++x) d[x] = s[x * ch];
    }
  }
  stage& in_;
};

// f on colour samples; alpha copied.
template <class F>
class sample_stage final : public stage {
 public:
  sample_stage(stage& in, F f) : stage(in.shape()), in_(in), f_(f) {}

 private:
  void make(i64 y, u16* d) override {
    const u16* s = in_.row(y);
    const std::size_t ch = shape().channels, cc = shape().color_channels(), n = row_len();
    if (cc == ch) {
      for (std::size_t i = 0; i < n; ++i) d[i] = f_(s[i]);
    } else {
      for (std::size_t i = 0; i < n; ++i) d[i] = i % ch < cc ? f_(s[i]) : s[i];
    }
  }
  stage& in_;
  F f_;
};
template <class F>
std::unique_ptr<stage> make_sample_stage(stage& in, F f) {
  return std::make_unique<sample_stage<F>>(in, f);
}

// n copies of the pixel px (ch samples) from d on, in doubling runs (a pixel at a time cost a
// tall image of width 1 and radius 192 384 calls a row).
void replicate(u16* d, const u16* px, std::size_t ch, int n) {
  if (n == 0) return;
  std::memcpy(d, px, ch * sizeof(u16));
  for (std::size_t done = 1; done < std::size_t(n);) {
    const std::size_t m = std::min(done, std::size_t(n) - done);
    std::memcpy(d + done * ch, d, m * ch * sizeof(u16));
    done += m;
  }
}

// Elements from one row of a ring of rows to the next, for rows of n elements of `elem` bytes that
// a vertical pass reads together, down the same columns: a whole number of 64-byte lines, 3 more
// than a multiple of 64 lines. The L1 caches here have 64 sets of lines (Zen 4 and Intel's cores
// since Skylake): rows a multiple of 4 KiB apart (8192 floats) all fall in the same sets, and the
// 14 rows of blur:sigma=2 thrashed 8 ways. 3 lines apart, each row's two lines in use and the next
// the prefetcher brings stay clear of the others'. A vertical pass over such rows, alone, on the
// Zen 4 box: 0.96 GPix/s with rows 32 KiB apart, 3.35 with 192 bytes more.
std::size_t ring_stride(std::size_t n, std::size_t elem) {
  constexpr std::size_t line = 64, sets = 64;
  std::size_t lines = (n * elem + line - 1) / line;
  if (lines < sets / 4) return n;  // 14 rows of under 1 KiB fit the L1 cache
  lines += (sets + 3 - lines % sets) % sets;
  return lines * (line / elem);
}

// H: the horizontal sums' type, u32 for samples <= 255 and u64 above (image_math.hpp). The sums
// of image row j live in ring slot j % slots; rows [lo_, hi_] are there. In the vector builds the
// 32-bit sums are kept as floats too (blur_h_sums): the vertical pass estimates in float and sums
// in integers only the outputs near a rounding boundary (blur_float_margin), and makes inner rows
// four at a time (blur_v4_f32), the three after the one asked for put where row() finds them
// (make_ahead).
template <class H>
class blur_stage final : public stage {
 public:
  blur_stage(stage& in, const blur_kernel& k) : stage(in.shape()), in_(in), k_(k) {
    if constexpr (std::is_same_v<H, u32>) float_ = blur_float_rows();
    if (float_) make_ahead(3);
  }

 private:
  void make(i64 y, u16* d) override {
    const int r = k_.radius;
    const std::size_t ch = shape().channels, w = shape().width, row = row_len();
    const i64 h = shape().height;
    const std::size_t taps = 2 * static_cast<std::size_t>(r) + 1;
    if (sums_.empty()) {
      // 2r + 1 rows (2r + 4 for four at a time), or all of them where the image has fewer: a wide
      // image of a few rows took 2r + 1 rows of sums all the same (1.6 GB for a row of 2^20
      // pixels and sigma 64).
      slots_ = std::min(taps + (float_ ? 3 : 0), std::size_t(h));
      pad_.resize((w + 2 * r) * ch);
      stride_ = ring_stride(row, sizeof(H));
      sums_.resize(slots_ * stride_);
      acc_.resize(row);
      rows_.resize(taps);
      // Each slot twice over: the rows around an inner row are a run of it.
      ring_.resize(2 * slots_);
      for (std::size_t i = 0; i < ring_.size(); ++i)
        ring_[i] = sums_.data() + (i % slots_) * stride_;
      if (float_) {
        fstride_ = ring_stride(row, sizeof(float));
        fsums_.resize(slots_ * fstride_);
        frows_.resize(taps);
        fring_.resize(ring_.size());
        for (std::size_t i = 0; i < fring_.size(); ++i)
          fring_[i] = fsums_.data() + (i % slots_) * fstride_;
      }
    }
    const std::size_t slots = slots_;
    // An inner row whose next three rows are inner too is made with them, where the floats
    // allow (the rows near the bottom one at a time).
    const bool four = float_ && y >= r && y + r + 3 < h && slots == taps + 3;
    // The sums of rows y - r .. y + r (clamped; y + r + 3 too for four rows) must be in the ring.
    const i64 need_lo = std::max<i64>(0, y - r);
    const i64 need_hi = std::min<i64>(h - 1, y + r + (four ? 3 : 0));
    if (need_lo < lo_ || need_lo > hi_ + 1) lo_ = need_lo, hi_ = need_lo - 1;
    for (i64 j = hi_ + 1; j <= need_hi; ++j) {
      // The row with r replicated pixels on each side, then its sums into its slot. An 8-bit
      // raster is widened straight into the padded row (not widened into the input's row and
      // then copied: 4.3% and part of 3.8% of the chain gray,blur:sigma=2,sobel over 8192^2
      // images, one thread, Zen 4).
      const u16* s = &pad_[r * ch];
      if (const u8* b = in_.bytes(j))
        unpack_raster(b, row, sample_layout::u8, &pad_[r * ch]);
      else
        std::memcpy(&pad_[r * ch], in_.row(j), row * sizeof(u16));
      replicate(&pad_[0], s, ch, r);
      replicate(&pad_[(w + r) * ch], s + (w - 1) * ch, ch, r);
      const std::size_t at = static_cast<std::size_t>(j) % slots;
      if constexpr (std::is_same_v<H, u32>) {
        if (float_) {
          blur_h_sums(pad_.data() + r * ch, row, ch, k_, sums_.data() + at * stride_,
                      fsums_.data() + at * fstride_);
          continue;
        }
      }
      blur_h(pad_.data() + r * ch, row, ch, k_, sums_.data() + at * stride_);
    }
    hi_ = std::max(hi_, need_hi);
    lo_ = std::max(lo_, hi_ - static_cast<i64>(slots) + 1);
    // Rows y - r .. y + r: for an inner row, a run of the doubled ring as it stands; near an
    // edge, clamped, each the one before or the next (a list of 2r + 1 pointers made for every
    // row, with a division each, was most of a tall image's time: 385 a row at sigma 64).
    const H* const* run = rows_.data();
    const float* const* frun = frows_.data();
    if (y >= r && y + r < h) {
      const std::size_t first = static_cast<std::size_t>(y - r) % slots;
      run = ring_.data() + first;
      if (float_) frun = fring_.data() + first;
    } else {
      i64 prev = clamp_index(y - r, h);
      std::size_t slot = static_cast<std::size_t>(prev) % slots;
      for (int t = -r; t <= r; ++t) {
        const i64 j = clamp_index(y + t, h);
        if (j != prev) slot = slot + 1 == slots ? 0 : slot + 1, prev = j;
        rows_[t + r] = sums_.data() + slot * stride_;
        if (float_) frows_[t + r] = fsums_.data() + slot * fstride_;
      }
    }
    if constexpr (std::is_same_v<H, u32>) {
      if (four) {
        // Rows y + 1 .. y + 3 straight into the slots where row() will find them (make_ahead).
        u16* out[4] = {d, nullptr, nullptr, nullptr};
        for (int m = 1; m < 4; ++m) {
          out[m] = slot(y + m);
          claim(y + m);
        }
        blur_v4_f32(frun, run, row, k_, shape().maxval, out);
        for (int m = 1; m < 4; ++m) made(y + m);
        return;
      }
      if (float_) return blur_v_f32(frun, run, row, k_, shape().maxval, d);
    }
    blur_v(run, row, k_, shape().maxval, acc_.data(), d);
  }

  stage& in_;
  blur_kernel k_;
  bool float_ = false;                    // the 32-bit sums are kept as floats too
  std::size_t slots_ = 0;                 // rows of sums in the ring
  std::size_t stride_ = 0, fstride_ = 0;  // elements from a row of sums_, fsums_ to the next
  std::vector<u16> pad_;
  std::vector<H> sums_;
  std::vector<const H*> rows_, ring_;
  std::vector<float> fsums_;
  std::vector<const float*> frows_, fring_;
  std::vector<u64> acc_;
  i64 lo_ = 0, hi_ = -1;
};

class sobel_stage final : public stage {
 public:
  explicit sobel_stage(stage& in) : stage(in.shape()), in_(in) { in.keep(3); }
  // An 8-bit chain's output rows, narrowed in the kernel rather than packed after it (packing
  // was 4.6% of the chain gray,blur:sigma=2,sobel over 8192^2 images, one thread, Zen 4).
  bool make_u8(i64 y, u8* d) override {
    if (shape().maxval > 255) return false;
    make_into(y, d);
    return true;
  }

 private:
  void make(i64 y, u16* d) override { make_into(y, d); }
  template <class Out>
  void make_into(i64 y, Out* d) {
    const std::size_t ch = shape().channels, cc = shape().color_channels(), w = shape().width;
    const std::size_t row = row_len();
    const i64 h = shape().height;
    // The three rows where the stage before holds them (it keeps 3). The inner pixels read their
    // neighbours there; the two edge pixels, from copies with the edge pixel replicated. (Each
    // row copied once into a padded row was 2% of the chain gray,blur:sigma=2,sobel over 8192^2
    // images on two lanes, Zen 4 box, perf.)
    const u16* s[3] = {in_.row(clamp_index(y - 1, h)), in_.row(y), in_.row(clamp_index(y + 1, h))};
    const auto run = [&](const u16* a, const u16* b, const u16* c, std::size_t n, Out* o) {
      if constexpr (std::is_same_v<Out, u16>) {
        if (shape().maxval > 255) return sobel_row_16(a, b, c, n, ch, shape().maxval, o);
      }
      sobel_row_8(a, b, c, n, ch, shape().maxval, o);  // |gx|, |gy| <= 1020: gx^2 + gy^2 < 2^21
    };
    if (w >= 3) run(s[0] + ch, s[1] + ch, s[2] + ch, row - 2 * ch, d + ch);
    for (std::size_t e = 0; e < (w > 1 ? 2u : 1u); ++e) {  // pixels 0 and w - 1
      const std::size_t x = e == 0 ? 0 : w - 1;
      u16 t[3][3 * 4];  // 3 rows of the pixel and its neighbours (<= 4 channels)
      for (int k = 0; k < 3; ++k)
        for (int px = 0; px < 3; ++px) {
          const std::size_t at = static_cast<std::size_t>(
              clamp_index(static_cast<i64>(x) + px - 1, static_cast<i64>(w)));
          std::memcpy(&t[k][px * ch], s[k] + at * ch, ch * sizeof(u16));
        }
      run(&t[0][ch], &t[1][ch], &t[2][ch], ch, d + x * ch);
    }
    if (cc < ch) {
      const u16* b = s[1];
      for (std::size_t x = 0; x < w; ++x) d[x * ch + cc] = static_cast<Out>(b[x * ch + cc]);
    }
  }
  stage& in_;
};

// Width -> m: each output pixel's channels from the taps of its column.
class resize_x_stage final : public stage {
 public:
  resize_x_stage(stage& in, u32 m)
      : stage(with_width(in.shape(), m)), in_(in), t_(make_taps(in.shape().width, m)) {}

 private:
  static image_shape with_width(image_shape s, u32 m) {
    s.width = m;
    return s;
  }
  void make(i64 y, u16* d) override {
    const u16* src = in_.row(y);
    const std::size_t ch = shape().channels, m = shape().width;
    acc_.resize(m * ch);
    if (!t_.i0.empty()) {
      resize_x_two(src, ch, m, t_, acc_.data());
    } else {
      for (std::size_t i = 0; i < m; ++i) {
        const u32* wt = t_.weight.data() + t_.offset[i];
        const u16* p = src + std::size_t{t_.first[i]} * ch;
        for (std::size_t c = 0; c < ch; ++c) {
          u64 acc = 0;
          for (u32 j = 0; j < t_.count[i]; ++j) acc += u64{wt[j]} * p[j * ch + c];
          acc_[i * ch + c] = acc;
        }
      }
    }
    finish_row(acc_.data(), m * ch, t_.den, d);
  }
  stage& in_;
  axis_taps t_;
  std::vector<u64> acc_;
};

// Height -> m: whole rows weighed and summed.
class resize_y_stage final : public stage {
 public:
  resize_y_stage(stage& in, u32 m)
      : stage(with_height(in.shape(), m)), in_(in), t_(make_taps(in.shape().height, m)) {
    in.keep(t_.max_count);  // consecutive outputs share rows: each is made once
  }

 private:
  static image_shape with_height(image_shape s, u32 m) {
    s.height = m;
    return s;
  }
  void make(i64 i, u16* d) override {
    const std::size_t row = row_len();
    acc_.resize(row);
    for (u32 j = 0; j < t_.count[i]; ++j)
      resize_y_add(in_.row(i64{t_.first[i]} + j), row, t_.weight[t_.offset[i] + j], j == 0,
                   acc_.data());
    finish_row(acc_.data(), row, t_.den, d);
  }
  stage& in_;
  axis_taps t_;
  std::vector<u64> acc_;
};

// The stages of `ops` after a source, built for one band.
std::vector<std::unique_ptr<stage>> build_chain(const raster_view& in, const std::vector<op>& ops) {
  std::vector<std::unique_ptr<stage>> c;
  c.push_back(std::make_unique<source_stage>(in));
  for (const op& o : ops) {
    stage& last = *c.back();
    const u32 maxval = last.shape().maxval;
    switch (o.kind) {
      case op_kind::gray:
        if (last.shape().channels > 1) c.push_back(std::make_unique<gray_stage>(last));
        break;  // a gray image is unchanged: no stage, no copy
      case op_kind::blur: {
        const blur_kernel k = make_blur_kernel(o.sigma);
        if (blur_wide_sums(maxval))
          c.push_back(std::make_unique<blur_stage<u64>>(last, k));
        else
          c.push_back(std::make_unique<blur_stage<u32>>(last, k));
        break;
      }
      case op_kind::sobel:
        c.push_back(std::make_unique<sobel_stage>(last));
        break;
      case op_kind::resize: {
        const image_shape s = output_shape(last.shape(), o);
        if (s.width != last.shape().width)
          c.push_back(std::make_unique<resize_x_stage>(*c.back(), s.width));
        if (s.height != c.back()->shape().height)
          c.push_back(std::make_unique<resize_y_stage>(*c.back(), s.height));
        break;
      }
      case op_kind::invert:
        c.push_back(
            make_sample_stage(last, [maxval](u16 v) { return static_cast<u16>(maxval - v); }));
        break;
      case op_kind::threshold: {
        const u32 t = o.threshold;
        c.push_back(make_sample_stage(
            last, [maxval, t](u16 v) { return static_cast<u16>(v >= t ? maxval : 0); }));
        break;
      }
    }
  }
  return c;
}

// A band is at least this many output rows: its halo (the rows its ops make again) stays small.
constexpr std::size_t min_band_rows = 64;

}  // namespace

void apply(const raster_view& in, const std::vector<op>& ops, int threads, void* dst,
           sample_layout out_layout, const row_progress& progress) {
  check_shape(in.shape);
  const image_shape out = chain_shape(in.shape, ops);
  const std::size_t rows = out.height;
  const std::size_t row_bytes =
      std::size_t{out.width} * out.channels * bytes_per_sample(out_layout);
  const auto band = [&](std::size_t y0, std::size_t y1) {
    auto c = build_chain(in, ops);
    stage& last = *c.back();
    row_teller tell(progress, y0);
    for (std::size_t y = y0; y < y1; ++y) {
      tell.before(y);
      auto* o = static_cast<std::uint8_t*>(dst) + y * row_bytes;
      if (out_layout == sample_layout::u8 && last.make_u8(static_cast<i64>(y), o)) continue;
      pack_raster(last.row(static_cast<i64>(y)), last.row_len(), out_layout, o);
    }
    tell.done(y1);
  };
  const std::size_t bands = std::clamp<std::size_t>(rows / min_band_rows, 1,
                                                    static_cast<std::size_t>(std::max(threads, 1)));
  // The first exception is rethrown (the same for any band: a bad sample names the raster's
  // first).
  parallel_for(bands, static_cast<int>(bands),
               [&](std::size_t b) { band(rows * b / bands, rows * (b + 1) / bands); });
}

image apply(const raster_view& in, const std::vector<op>& ops, int threads,
            const row_progress& progress) {
  image out;
  out.shape = chain_shape(in.shape, ops);
  out.samples = take_samples(out.shape.samples());
  apply(in, ops, threads, out.samples.data(), sample_layout::u16, progress);
  return out;
}

image apply(const image& in, const std::vector<op>& ops, int threads,
            const row_progress& progress) {
  check_shape(in.shape);
  if (in.samples.size() != in.shape.samples())
    throw input_error("", "image has " + std::to_string(in.samples.size()) +
                              " samples, its shape says " + std::to_string(in.shape.samples()));
  if (ops.empty()) return in;
  return apply(raster_view{in.shape, in.samples.data(), sample_layout::u16}, ops, threads,
               progress);
}

image apply(const image& in, const op& o, int threads) {
  return apply(in, std::vector<op>{o}, threads);
}

std::vector<std::string_view> kernel_builds() {
  std::vector<std::string_view> names;
  for (const kernel_build k : runnable_kernels())
    names.push_back(kernel_names[static_cast<int>(k)]);
  return names;
}

bool use_kernels(std::string_view name) {
  for (const kernel_build k : runnable_kernels())
    if (kernel_names[static_cast<int>(k)] == name) {
      chosen_kernels.store(static_cast<int>(k), std::memory_order_relaxed);
      return true;
    }
  return false;
}

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

}  // namespace hetpipe::host::img
