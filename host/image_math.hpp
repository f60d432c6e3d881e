// The integer arithmetic of the image filters, shared by the CPU (host/image_ops.cpp) and the GPU
// (cuda/image_kernels.cu) so that both give the same bytes. Every function here is a pure function
// of integers; the definitions they implement are written out in host/image_ops.hpp.
//
// Compiled as C++17 by nvcc (cuda/ is built with CUDA_STANDARD 17): nothing newer here.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define HETPIPE_HD __host__ __device__
#else
#define HETPIPE_HD
#endif

namespace hetpipe::host::img {

// Blur weights are integers that sum to exactly blur_one (2^24): fine enough that a 16-bit
// image's blur is within a fraction of a level of the real-valued one. The horizontal sums fit in
// 32 bits for samples <= 255 (255 * 2^24 < 2^32) and take 64 bits above; the vertical sums
// (< 65536 * 2^48) fit in 64 bits.
constexpr unsigned blur_shift = 24;
constexpr std::uint32_t blur_one = 1u << blur_shift;
// r = ceil(3 sigma) is capped by sigma <= max_blur_sigma; the half kernel travels by value as a
// kernel parameter (4 * 193 bytes), so no device memory is needed for it.
constexpr double max_blur_sigma = 64.0;
constexpr int max_blur_radius = 192;
// Whether the horizontal sums of an image with this maxval need 64 bits.
constexpr bool blur_wide_sums(std::uint32_t maxval) {
  return maxval > 255;
}

// The half kernel q[0..radius]: q[k] weighs the samples at offset -k and +k.
struct blur_kernel {
  int radius = 0;
  std::uint32_t q[max_blur_radius + 1] = {};
};

// ITU-R BT.601 luma, rounded half up: (299 R + 587 G + 114 B + 500) / 1000 (floor division).
HETPIPE_HD inline std::uint32_t luma(std::uint32_t r, std::uint32_t g, std::uint32_t b) {
  return (299u * r + 587u * g + 114u * b + 500u) / 1000u;
}

HETPIPE_HD inline std::int64_t clamp_index(std::int64_t i, std::int64_t n) {
  return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

// The vertical blur accumulator sum_k q_k H_k (H = horizontal sums, both passes weigh by 2^-24)
// as a sample: round half up at 2^48, clamp to maxval.
HETPIPE_HD inline std::uint32_t blur_finish(std::uint64_t acc, std::uint32_t maxval) {
  const std::uint64_t v = (acc + (std::uint64_t{1} << (2 * blur_shift - 1))) >> (2 * blur_shift);
  return v > maxval ? maxval : static_cast<std::uint32_t>(v);
}

// round(sqrt(s)) exactly, for s < 2^52 (Sobel's s stays below 2^38). The floating-point square
// root is only a first guess: IEEE sqrt is correctly rounded on the CPU and the GPU, which puts
// the guess within one of floor(sqrt(s)) in this range, and the two integer corrections make the
// floor exact; then sqrt(s) >= m + 1/2 <=> s >= m^2 + m + 1/4 <=> s > m^2 + m for integers (a tie
// cannot happen). Branch-free, so the CPU loops stay simple.
HETPIPE_HD inline std::uint64_t isqrt_round(std::uint64_t s) {
  std::uint64_t m = static_cast<std::uint64_t>(sqrt(static_cast<double>(s)));
  m -= m * m > s;
  m += (m + 1) * (m + 1) <= s;
  return m + (s > m * m + m);
}

// round(sqrt(s)) for s < round_sqrt_small_end, from one float square root: sqrtf(s) + 1/2,
// truncated. IEEE sqrt is correctly rounded, and in this range that float never lands on the wrong
// side of an integer: test_image checks every such s against isqrt_round (the first s where the two
// differ is 4 196 352). 8-bit Sobel sums stay below 2 * 1020^2 = 2 080 800. The CPU's AVX-512
// Sobel evaluates the same three float operations on 16 lanes.
constexpr std::uint32_t round_sqrt_small_end = 1u << 22;
HETPIPE_HD inline std::uint32_t round_sqrt_small(std::uint32_t s) {
  return static_cast<std::uint32_t>(sqrtf(static_cast<float>(s)) + 0.5f);
}

// Sobel gradient magnitude from the 3x3 neighbourhood p[row][col] (borders already replicated):
// gx = (p02 + 2 p12 + p22) - (p00 + 2 p10 + p20), gy = (p20 + 2 p21 + p22) - (p00 + 2 p01 + p02),
// magnitude round(sqrt(gx^2 + gy^2)) clamped to maxval.
HETPIPE_HD inline std::uint32_t sobel_magnitude(std::int32_t gx, std::int32_t gy,
                                                std::uint32_t maxval) {
  const std::uint64_t s = static_cast<std::uint64_t>(std::int64_t{gx} * gx + std::int64_t{gy} * gy);
  const std::uint64_t m = isqrt_round(s);
  return m > maxval ? maxval : static_cast<std::uint32_t>(m);
}

// floor(num / den + 1/2) for den > 0: the quotient rounded half up.
HETPIPE_HD inline std::uint64_t div_round(std::uint64_t num, std::uint64_t den) {
  return (2 * num + den) / (2 * den);
}

// --- 1-D resampling of n source samples to m output samples (one axis) ---

// Downscale (m < n), exact area average. In units of 1/m source pixel, output i covers
// [i n, (i + 1) n) and source j covers [j m, (j + 1) m): the coverage of j is the length of the
// overlap, an integer, and the coverages sum to n. Sources first..last (inclusive) overlap i.
HETPIPE_HD inline void area_span(std::uint64_t i, std::uint64_t n, std::uint64_t m,
                                 std::uint64_t* first, std::uint64_t* last) {
  *first = i * n / m;
  *last = ((i + 1) * n - 1) / m;
}
HETPIPE_HD inline std::uint64_t area_coverage(std::uint64_t i, std::uint64_t j, std::uint64_t n,
                                              std::uint64_t m) {
  const std::uint64_t lo = i * n > j * m ? i * n : j * m;
  const std::uint64_t hi = (i + 1) * n < (j + 1) * m ? (i + 1) * n : (j + 1) * m;
  return hi - lo;
}

// Upscale (m > n), bilinear with pixel centres: output i samples the source at
// s = (i + 1/2) n / m - 1/2 = ((2i + 1) n - m) / (2m), exactly. s < 0 reads source 0; otherwise
// j0 = floor(s), frac = t / (2m) with t = ((2i + 1) n - m) mod 2m, and the value is
// (v[j0] (2m - t) + v[min(j0 + 1, n - 1)] t) / (2m), rounded half up.
struct bilinear_tap {
  std::uint64_t j0, j1;  // source indices
  std::uint64_t t;       // weight of j1 out of den = 2m; j0 weighs den - t
};
HETPIPE_HD inline bilinear_tap bilinear_at(std::uint64_t i, std::uint64_t n, std::uint64_t m) {
  const std::uint64_t num = (2 * i + 1) * n;
  if (num <= m) return {0, 0, 0};
  const std::uint64_t s = num - m;
  const std::uint64_t j0 = s / (2 * m);
  const std::uint64_t t = s % (2 * m);
  return {j0, j0 + 1 < n ? j0 + 1 : n - 1, t};
}

}  // namespace hetpipe::host::img
