// Exact Σx and Σx² of float blocks whose nonzero elements span few binades, computed with
// ordinary double additions that provably never round (no bins, vectorised). Used by the stats
// accumulator (host/accumulate.cpp) for most blocks of real data; wider blocks, and blocks with
// an inf or a NaN, go to its bins. The proofs are in narrow_sums.cpp.
//
// A block's exponent window: with E_lo the smallest exponent field of its nonzero elements, E_hi
// the largest, p0 = max(E_lo, 1) − 1 and D = E_hi − p0, every element is a multiple of the unit
// u = 2^(p0 − 149) (f32) or 2^(p0 − 1074) (f64), and D is the window the sums must allow.
//
//   narrow::light32 l;
//   narrow::scan(p, n, l);               // then: no inf/NaN, D ≤ narrow::window_f32(n)
//   std::int64_t s; __int128 q;
//   narrow::sum_f32(p, n, 0, p0, e_hi, s, q);   // Σx = s·u, Σx² = q·u²
#pragma once

#include <cstddef>
#include <cstdint>

namespace hetpipe::host::narrow {

using i128 = __int128;
using u128 = unsigned __int128;

// What the accumulator needs to know of a block before summing it: its smallest and largest value
// (meaningless when it holds a NaN), its largest |bits| (inf or NaN: at least the exponent mask)
// and its smallest nonzero |bits| less one (all ones when every element is ±0).
template <class F, class B>
struct light {
  F lo, hi;
  B amax, anz1;
};
using light32 = light<float, std::uint32_t>;
using light64 = light<double, std::uint64_t>;
void scan(const std::byte* p, std::size_t n, light32& r);
void scan(const std::byte* p, std::size_t n, light64& r);

// Blocks of up to 4096 (f32) or 2048 (f64) elements; a block too wide may be retried on its first
// `retry` elements, where the window is wider.
constexpr std::size_t retry_f32 = 1024, retry_f64 = 512;
// The widest window D the sums allow for a block of n elements.
int window_f32(std::size_t n);
int window_f64(std::size_t n);
// Whether sum_f64 is worth calling here: it needs a fused multiply-add (AVX2 + FMA, or a target
// where std::fma is an instruction; the portable test build uses it regardless).
bool f64_enabled();
// f64 also needs p0 ≥ min_p0_f64 (no subnormal square, no product error below the subnormal range)
// and E_hi ≤ max_e_f64 (no overflow): |x| within about [2^−474, 2^478).
constexpr int min_p0_f64 = 600, max_e_f64 = 1500;

// Two's complement 256-bit integer (Σx² of an f64 block, in units u², needs up to 183 bits).
struct u256 {
  u128 lo = 0, hi = 0;
  void add(const u256& o) {
    lo += o.lo;
    hi += o.hi + (lo < o.lo);
  }
  void add_shifted(std::int64_t v, int shift);  // += v·2^shift; v·2^shift exact for shift < 0
};

// The next block's lines, fetched while this block is summed, go to L2 (prefetcht1), not L1:
// the block in hand (16 KiB) and the next fill a 32 KiB L1. Zen 4 box, `stats` of 1 GiB f32 on
// ext4, hot, whole process: one lane 89 -> 81 ms, two 51-55 -> 48-50 ms (medians of runs).
[[gnu::always_inline]] inline void prefetch_next(const std::byte* p) {
  __builtin_prefetch(p, 0, 2);
}

// Σx = s·u and Σx² = q·u² of n finite elements at p, within the window (D = e_hi − p0 ≤
// window_*(n)). `ahead` bytes after the block are prefetched meanwhile.
void sum_f32(const std::byte* p, std::size_t n, std::size_t ahead, int p0, int e_hi,
             std::int64_t& s, i128& q);
void sum_f64(const std::byte* p, std::size_t n, std::size_t ahead, int p0, int e_hi, i128& s,
             u256& q);

}  // namespace hetpipe::host::narrow
