// ChaCha20 block function, the age STREAM nonce and exact Poly1305 arithmetic mod 2^130 - 5 (five
// 26-bit limbs), written from RFC 8439 as __host__ __device__ functions: the kernels in
// chacha_kernels.cu use them, and g++ (where HETPIPE_HD expands to plain `inline`) compiles the
// same code into tests/host/test_chacha_reference.cpp, which checks it against an independent
// big-number reference and replays the kernel's parallel Poly1305 schedule on the CPU. Internal to
// cuda/ and the tests; see chacha_kernels.hpp for the contract.
#pragma once

#include <cstdint>

#include "cuda/hd.cuh"

namespace hetpipe::cuda::chacha_detail {

using u32 = std::uint32_t;
using u64 = std::uint64_t;

// ---------------------------------------------------------------------------------------------
// ChaCha20 (RFC 8439 section 2.3)

HETPIPE_HD u32 rotl(u32 x, int n) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_l(x, x, n);
#else
  return (x << n) | (x >> (32 - n));
#endif
}

HETPIPE_HD u32 bswap32(u32 x) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, 0, 0x0123);
#else
  return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
#endif
}

HETPIPE_HD void quarter_round(u32& a, u32& b, u32& c, u32& d) {
  a += b;
  d = rotl(d ^ a, 16);
  c += d;
  b = rotl(b ^ c, 12);
  a += b;
  d = rotl(d ^ a, 8);
  c += d;
  b = rotl(b ^ c, 7);
}

// out = the ChaCha20 block (16 little-endian words, serialised in order) for the key words
// (key bytes read little-endian), block counter and nonce words.
HETPIPE_HD void chacha20_block(const u32 key[8], u32 counter, const u32 nonce[3], u32 out[16]) {
  u32 x[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u, key[0], key[1],
               key[2],      key[3],      key[4],      key[5],      key[6], key[7],
               counter,     nonce[0],    nonce[1],    nonce[2]};
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < 16; ++i) out[i] = x[i];
#if defined(__CUDA_ARCH__)
#pragma unroll 2
#endif
  for (int i = 0; i < 10; ++i) {
    quarter_round(x[0], x[4], x[8], x[12]);
    quarter_round(x[1], x[5], x[9], x[13]);
    quarter_round(x[2], x[6], x[10], x[14]);
    quarter_round(x[3], x[7], x[11], x[15]);
    quarter_round(x[0], x[5], x[10], x[15]);
    quarter_round(x[1], x[6], x[11], x[12]);
    quarter_round(x[2], x[7], x[8], x[13]);
    quarter_round(x[3], x[4], x[9], x[14]);
  }
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < 16; ++i) out[i] += x[i];
}

// The age STREAM nonce of chunk `counter` as ChaCha20 nonce words: the 12 bytes are the 11-byte
// big-endian counter (its top 3 bytes zero here) followed by 0x01 for the final chunk, else 0x00.
HETPIPE_HD void age_nonce_words(u64 counter, bool last, u32 nonce[3]) {
  nonce[0] = static_cast<u32>(counter >> 56) << 24;     // bytes 0..3 = 0, 0, 0, c7
  nonce[1] = bswap32(static_cast<u32>(counter >> 24));  // bytes 4..7 = c6, c5, c4, c3
  nonce[2] = bswap32((static_cast<u32>(counter) << 8) | (last ? 1u : 0u));  // c2, c1, c0, flag
}

// ---------------------------------------------------------------------------------------------
// Poly1305 arithmetic (RFC 8439 section 2.5) mod p = 2^130 - 5.
//
// fe: value = v[0] + v[1] 2^26 + v[2] 2^52 + v[3] 2^78 + v[4] 2^104 (not necessarily < p).
// Bounds (the functions state what they need and give):
//   fe_from_words:  limbs < 2^26 (with the 2^128 bit: v[4] < 2^25).
//   fe_mul:         inputs' limbs < 2^28; output limbs < 2^26 except v[1] < 2^26 + 2^12 (< 2^27).
//   fe_add:         limb-wise sum, no carry (two inputs < 2^27 give < 2^28).
//   fe_carry:       inputs' limbs < 2^31; output limbs < 2^26 except v[1] <= 2^26 (< 2^27).
// So Horner steps h = fe_add(fe_mul(h, R), m) keep h < 2^28 per limb, and sums of two carried
// values may be carried again indefinitely.

constexpr u32 mask26 = 0x3ffffffu;

struct fe {
  u32 v[5];
};

HETPIPE_HD fe fe_zero() {
  fe r;
  r.v[0] = r.v[1] = r.v[2] = r.v[3] = r.v[4] = 0;
  return r;
}

// The 16-byte little-endian block t0..t3 plus hibit (1 << 24 adds 2^128, 0 adds nothing).
HETPIPE_HD fe fe_from_words(u32 t0, u32 t1, u32 t2, u32 t3, u32 hibit) {
  fe r;
  r.v[0] = t0 & mask26;
  r.v[1] = ((t0 >> 26) | (t1 << 6)) & mask26;
  r.v[2] = ((t1 >> 20) | (t2 << 12)) & mask26;
  r.v[3] = ((t2 >> 14) | (t3 << 18)) & mask26;
  r.v[4] = (t3 >> 8) | hibit;
  return r;
}

// r from the first 16 bytes of the one-time key, clamped (RFC 8439 section 2.5.1).
HETPIPE_HD fe fe_clamped_r(u32 k0, u32 k1, u32 k2, u32 k3) {
  return fe_from_words(k0 & 0x0fffffffu, k1 & 0x0ffffffcu, k2 & 0x0ffffffcu, k3 & 0x0ffffffcu, 0);
}

HETPIPE_HD fe fe_add(const fe& a, const fe& b) {
  fe r;
  r.v[0] = a.v[0] + b.v[0];
  r.v[1] = a.v[1] + b.v[1];
  r.v[2] = a.v[2] + b.v[2];
  r.v[3] = a.v[3] + b.v[3];
  r.v[4] = a.v[4] + b.v[4];
  return r;
}

// a * b mod p (partially reduced). Limb products a_i b_j with i + j >= 5 carry 2^130 = 5 (mod p).
// With limbs < 2^28 every d_k < 21 * 2^56 < 2^61, and the carries below stay far from 2^64.
HETPIPE_HD u64 mul_wide(u32 a, u32 b) {
  return static_cast<u64>(a) * b;  // one IMAD.WIDE.U32 on the device
}

HETPIPE_HD fe fe_mul(const fe& a, const fe& b) {
  const u32 a0 = a.v[0], a1 = a.v[1], a2 = a.v[2], a3 = a.v[3], a4 = a.v[4];
  const u32 b0 = b.v[0], b1 = b.v[1], b2 = b.v[2], b3 = b.v[3], b4 = b.v[4];
  const u32 f1 = b1 * 5u, f2 = b2 * 5u, f3 = b3 * 5u, f4 = b4 * 5u;  // < 5 * 2^28 < 2^31
  u64 d0 =
      mul_wide(a0, b0) + mul_wide(a1, f4) + mul_wide(a2, f3) + mul_wide(a3, f2) + mul_wide(a4, f1);
  u64 d1 =
      mul_wide(a0, b1) + mul_wide(a1, b0) + mul_wide(a2, f4) + mul_wide(a3, f3) + mul_wide(a4, f2);
  u64 d2 =
      mul_wide(a0, b2) + mul_wide(a1, b1) + mul_wide(a2, b0) + mul_wide(a3, f4) + mul_wide(a4, f3);
  u64 d3 =
      mul_wide(a0, b3) + mul_wide(a1, b2) + mul_wide(a2, b1) + mul_wide(a3, b0) + mul_wide(a4, f4);
  u64 d4 =
      mul_wide(a0, b4) + mul_wide(a1, b3) + mul_wide(a2, b2) + mul_wide(a3, b1) + mul_wide(a4, b0);
  d1 += d0 >> 26;
  d2 += d1 >> 26;
  d3 += d2 >> 26;
  d4 += d3 >> 26;
  // d4 >> 26 < 2^35: times 5 plus a 26-bit limb < 2^38, whose carry (< 2^12) goes to limb 1.
  const u64 t0 = (d0 & mask26) + (d4 >> 26) * 5u;
  fe r;
  r.v[0] = static_cast<u32>(t0 & mask26);
  r.v[1] = static_cast<u32>((d1 & mask26) + (t0 >> 26));
  r.v[2] = static_cast<u32>(d2 & mask26);
  r.v[3] = static_cast<u32>(d3 & mask26);
  r.v[4] = static_cast<u32>(d4 & mask26);
  return r;
}

// One carry pass (value unchanged mod p).
HETPIPE_HD fe fe_carry(const fe& a) {
  fe r = a;
  r.v[1] += r.v[0] >> 26;
  r.v[0] &= mask26;
  r.v[2] += r.v[1] >> 26;
  r.v[1] &= mask26;
  r.v[3] += r.v[2] >> 26;
  r.v[2] &= mask26;
  r.v[4] += r.v[3] >> 26;
  r.v[3] &= mask26;
  r.v[0] += (r.v[4] >> 26) * 5u;
  r.v[4] &= mask26;
  r.v[1] += r.v[0] >> 26;
  r.v[0] &= mask26;
  return r;
}

// tag = ((h mod p) + s) mod 2^128 as four little-endian words; h's limbs < 2^31.
HETPIPE_HD void fe_tag(const fe& h_in, const u32 s[4], u32 tag[4]) {
  // Two carry passes leave every limb < 2^26, so h < 2^130 < 2p. The first gives limbs < 2^26
  // except v[1] <= 2^26. The second carries at most 1 through limbs 1..4; when a carry leaves limb
  // 4, limbs 1..4 all wrapped to 0, limb 0 (< 2^26) takes 5 and passes at most 1 to limb 1.
  const fe h = fe_carry(fe_carry(h_in));
  // h < 2^130 now; h - p = h + 5 - 2^130 when that is >= 0.
  u32 g0 = h.v[0] + 5u;
  u32 g1 = h.v[1] + (g0 >> 26);
  g0 &= mask26;
  u32 g2 = h.v[2] + (g1 >> 26);
  g1 &= mask26;
  u32 g3 = h.v[3] + (g2 >> 26);
  g2 &= mask26;
  u32 g4 = h.v[4] + (g3 >> 26);
  g3 &= mask26;
  const u32 use_g = 0u - (g4 >> 26);  // all ones when h >= p
  g4 &= mask26;
  const u32 h0 = (g0 & use_g) | (h.v[0] & ~use_g), h1 = (g1 & use_g) | (h.v[1] & ~use_g),
            h2 = (g2 & use_g) | (h.v[2] & ~use_g), h3 = (g3 & use_g) | (h.v[3] & ~use_g),
            h4 = (g4 & use_g) | (h.v[4] & ~use_g);
  const u32 w0 = h0 | (h1 << 26), w1 = (h1 >> 6) | (h2 << 20), w2 = (h2 >> 12) | (h3 << 14),
            w3 = (h3 >> 18) | (h4 << 8);
  u64 f = static_cast<u64>(w0) + s[0];
  tag[0] = static_cast<u32>(f);
  f = static_cast<u64>(w1) + s[1] + (f >> 32);
  tag[1] = static_cast<u32>(f);
  f = static_cast<u64>(w2) + s[2] + (f >> 32);
  tag[2] = static_cast<u32>(f);
  f = static_cast<u64>(w3) + s[3] + (f >> 32);
  tag[3] = static_cast<u32>(f);
}

// r^e for 1 <= e < 2^12 from pow2[k] = r^(2^k), k < 12 (e == 0 gives 0, not 1: callers skip it).
HETPIPE_HD fe fe_pow(const fe* pow2, u32 e) {
  fe r = fe_zero();
  bool any = false;
  for (int k = 0; k < 12; ++k) {
    if ((e >> k) & 1u) {
      r = any ? fe_mul(r, pow2[k]) : pow2[k];
      any = true;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// The batch kernel's schedule for one 64 KiB age chunk (one thread block of 8 warps):
//   warp w owns bytes [8 KiB w, 8 KiB (w + 1)), in 4 rounds of 2 KiB; in round q, lane l computes
//   keystream block 1 + 128 w + 32 q + l (64 bytes), the warp trades the keystream through shared
//   memory so that lane l then XORs the 16-byte units 128 w + 32 q + 32 k + l (k < 4) of the chunk,
//   coalesced. Lane l therefore sees Poly1305 blocks p = l (mod 32) of its warp's 512, in order,
//   and runs Horner with r^32: h = sum m_p r^(p_last - p) over its blocks p < n (n = ceil(len/16),
//   p_last its last). The tag polynomial is sum_{p<n} m_p r^(n + 1 - p) + L r (L the length
//   block), so lane l weighs h by r^(S - p_last) (S = the warp's last block, 0..31 steps away),
//   the warp sums its lanes and weighs the sum by r^(n + 1 - S), and thread 0 adds the warps and
//   L r. Powers come from r^(2^k), k < 12 (exponents stay below 4098).

constexpr u32 chunk_bytes = 65536;
constexpr u32 tag_bytes = 16;
constexpr u32 block_threads = 256;
constexpr u32 chunk_warps = block_threads / 32;
constexpr u32 warp_blocks16 = chunk_bytes / 16 / chunk_warps;  // 512 Poly1305 blocks per warp
constexpr u32 rounds = 4;
constexpr u32 pow_count = 12;
constexpr u32 lane_stride_pow = 5;  // r^32 = pow2[5]

// The shared-memory slot (16-byte units) of quarter q of lane b's keystream block: swizzled so
// that both the writes (a lane's 4 quarters) and the reads (4 consecutive quarters per lane group)
// of 8 lanes hit 8 distinct 16-byte bank groups.
HETPIPE_HD u32 keystream_slot(u32 b, u32 q) {
  return b * 4 + (q ^ ((b >> 1) & 3u));
}

// The last Poly1305 block of warp w, for a chunk of n blocks with n > 512 w.
HETPIPE_HD u32 warp_last_block(u32 w, u32 n) {
  const u32 end = (w + 1) * warp_blocks16;
  return (n < end ? n : end) - 1;
}

}  // namespace hetpipe::cuda::chacha_detail
