// Element decomposition for the exact-statistics kernel, as __host__ __device__ functions so that
// host code (and g++, where HETPIPE_HD expands to plain `inline`) can check them against the CPU
// contract. See stats_kernels.hpp for the contract and the result layout.
#pragma once

#include <cstdint>

#include "cuda/hd.cuh"

namespace hetpipe::cuda::stats_detail {

// Magnitudes and squares are cut into 26-bit pieces: a warp sums at most 32 of them, which fits
// the 32-bit warp reductions (32 * (2^26 - 1) < 2^31, signed too).
constexpr int piece_bits = 26;
constexpr std::uint64_t piece_mask = (std::uint64_t{1} << piece_bits) - 1;

enum kind : int { k_unsigned, k_signed, k_f32, k_f64 };

// Per dtype code (hetpipe/dtype.hpp): the raw load type, the bits of the largest magnitude M and
// the largest position p.
template <int Code>
struct traits;
// clang-format off
template <> struct traits<0> { using raw = std::uint8_t;  static constexpr int kind = k_unsigned, mant_bits = 8,  max_p = 0; };
template <> struct traits<1> { using raw = std::int8_t;   static constexpr int kind = k_signed,   mant_bits = 8,  max_p = 0; };
template <> struct traits<2> { using raw = std::uint16_t; static constexpr int kind = k_unsigned, mant_bits = 16, max_p = 0; };
template <> struct traits<3> { using raw = std::int16_t;  static constexpr int kind = k_signed,   mant_bits = 16, max_p = 0; };
template <> struct traits<4> { using raw = std::uint32_t; static constexpr int kind = k_unsigned, mant_bits = 32, max_p = 0; };
template <> struct traits<5> { using raw = std::int32_t;  static constexpr int kind = k_signed,   mant_bits = 32, max_p = 0; };
template <> struct traits<6> { using raw = std::uint64_t; static constexpr int kind = k_unsigned, mant_bits = 64, max_p = 0; };
template <> struct traits<7> { using raw = std::int64_t;  static constexpr int kind = k_signed,   mant_bits = 64, max_p = 0; };
// Floats are loaded as their bits. f32: M < 2^24, p <= 253; f64: M < 2^53, p <= 2045.
template <> struct traits<8> { using raw = std::uint32_t; static constexpr int kind = k_f32,      mant_bits = 24, max_p = 253; };
template <> struct traits<9> { using raw = std::uint64_t; static constexpr int kind = k_f64,      mant_bits = 53, max_p = 2045; };
// clang-format on

constexpr int num_codes = 10;

template <int Code>
constexpr int s_pieces = (traits<Code>::mant_bits + piece_bits - 1) / piece_bits;
template <int Code>
constexpr int q_pieces = (2 * traits<Code>::mant_bits + piece_bits - 1) / piece_bits;
// S piece k of an element at position p goes to bin p + 26k; Q piece k to bin 2p + 26k.
template <int Code>
constexpr int s_bins = traits<Code>::max_p + piece_bits*(s_pieces<Code> - 1) + 1;
template <int Code>
constexpr int q_bins = 2 * traits<Code>::max_p + piece_bits*(q_pieces<Code> - 1) + 1;

constexpr int header_words = 8;
// A column's block in 64-bit words: header, then (lo, hi) per S bin, then per Q bin.
template <int Code>
constexpr int column_words = header_words + 2 * (s_bins<Code> + q_bins<Code>);

enum elem_class : std::uint32_t { c_finite = 0, c_nan = 1, c_posinf = 2, c_neginf = 3 };

struct element {
  std::uint64_t m = 0;    // magnitude |x| (floats: the integer significand)
  std::uint64_t key = 0;  // order key: compare unsigned
  int p = 0;              // x = +-m * 2^(p - L)   (L = 0 for integers)
  bool neg = false;
  std::uint32_t cls = c_finite;
};

template <int Code>
HETPIPE_HD element decompose(typename traits<Code>::raw r) {
  element e;
  constexpr int kind = traits<Code>::kind;
  if constexpr (kind == k_unsigned) {
    e.m = r;
    e.key = r;
  } else if constexpr (kind == k_signed) {
    const std::int64_t v = r;
    e.neg = v < 0;
    const std::uint64_t u = static_cast<std::uint64_t>(v);
    e.m = e.neg ? std::uint64_t{0} - u : u;  // INT64_MIN -> 2^63
    e.key = u ^ (std::uint64_t{1} << 63);
  } else {
    constexpr int width = kind == k_f32 ? 32 : 64;
    constexpr int fbits = kind == k_f32 ? 23 : 52;
    constexpr std::uint64_t emax = kind == k_f32 ? 0xFF : 0x7FF;
    constexpr std::uint64_t wmask = kind == k_f32 ? 0xFFFFFFFFull : ~std::uint64_t{0};
    constexpr std::uint64_t sbit = std::uint64_t{1} << (width - 1);
    constexpr std::uint64_t fmask = (std::uint64_t{1} << fbits) - 1;
    const std::uint64_t b = r;
    const bool sign = (b & sbit) != 0;
    const std::uint64_t E = (b >> fbits) & emax;
    const std::uint64_t F = b & fmask;
    e.neg = sign;
    e.key = sign ? (~b & wmask) : (b | sbit);
    if (E == emax) {
      e.cls = F != 0 ? c_nan : (sign ? c_neginf : c_posinf);
    } else {
      e.m = E != 0 ? (F | (fmask + 1)) : F;
      e.p = E != 0 ? static_cast<int>(E) - 1 : 0;
    }
  }
  return e;
}

struct u128 {
  std::uint64_t lo = 0, hi = 0;
};

template <int Code>
HETPIPE_HD u128 square(std::uint64_t m) {
  if constexpr (traits<Code>::mant_bits <= 32) {
    return {m * m, 0};
  } else {
#if defined(__CUDA_ARCH__)
    return {m * m, __umul64hi(m, m)};
#else
    const unsigned __int128 x = static_cast<unsigned __int128>(m) * m;
    return {static_cast<std::uint64_t>(x), static_cast<std::uint64_t>(x >> 64)};
#endif
  }
}

// Piece k (bits 26k .. 26k+25) of a magnitude below 2^64; k <= 2.
HETPIPE_HD std::uint32_t s_piece(std::uint64_t m, int k) {
  return static_cast<std::uint32_t>((m >> (piece_bits * k)) & piece_mask);
}

// Piece k of a 128-bit square; k <= 4.
HETPIPE_HD std::uint32_t q_piece(u128 sq, int k) {
  const int s = piece_bits * k;
  std::uint64_t v;
  if (s == 0)
    v = sq.lo;
  else if (s < 64)
    v = (sq.lo >> s) | (sq.hi << (64 - s));
  else
    v = sq.hi >> (s - 64);
  return static_cast<std::uint32_t>(v & piece_mask);
}

}  // namespace hetpipe::cuda::stats_detail
