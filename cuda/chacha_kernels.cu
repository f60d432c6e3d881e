// ChaCha20-Poly1305 batch kernels for age STREAM chunks and their launchers (contract:
// chacha_kernels.hpp; arithmetic and schedule: chacha_device.cuh).
#include "cuda/chacha_kernels.hpp"

#include <cuda_runtime_api.h>

#include <climits>
#include <cstdint>
#include <string>

#include <hetpipe/error.hpp>

#include "cuda/chacha_device.cuh"
#include "cuda/check.cuh"

namespace hetpipe::cuda {
namespace {

using namespace chacha_detail;
using u8 = std::uint8_t;

struct key_arg {
  u32 w[8];  // key bytes read little-endian
};

struct batch_arg {
  u64 first_counter;
  u32 chunks;
  u32 last_len;
  u32 final_is_last;
};

key_arg make_key(const std::uint8_t key[32]) {
  key_arg k;
  for (int i = 0; i < 8; ++i)
    k.w[i] = u32{key[4 * i]} | (u32{key[4 * i + 1]} << 8) | (u32{key[4 * i + 2]} << 16) |
             (u32{key[4 * i + 3]} << 24);
  return k;
}

__device__ __forceinline__ uint4 xor4(uint4 a, uint4 b) {
  return make_uint4(a.x ^ b.x, a.y ^ b.y, a.z ^ b.z, a.w ^ b.w);
}

__device__ __forceinline__ u32 word_of(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// valid (1..16) bytes at p, zero-filled; Aligned: p is 16-byte aligned.
template <bool Aligned>
__device__ __forceinline__ uint4 load16(const u8* p, u32 valid) {
  if (Aligned && valid == 16) return __ldg(reinterpret_cast<const uint4*>(p));
  u32 w[4] = {0, 0, 0, 0};
#pragma unroll
  for (int i = 0; i < 16; ++i)
    if (static_cast<u32>(i) < valid) w[i / 4] |= u32{__ldg(p + i)} << (8 * (i % 4));
  return make_uint4(w[0], w[1], w[2], w[3]);
}

template <bool Aligned>
__device__ __forceinline__ void store16(u8* p, const uint4& v, u32 valid) {
  if (Aligned && valid == 16) {
    *reinterpret_cast<uint4*>(p) = v;
    return;
  }
#pragma unroll
  for (int i = 0; i < 16; ++i)
    if (static_cast<u32>(i) < valid) p[i] = static_cast<u8>(word_of(v, i / 4) >> (8 * (i % 4)));
}

// Bytes [valid, 16) cleared.
__device__ __forceinline__ uint4 keep_bytes(uint4 v, u32 valid) {
  if (valid >= 16) return v;
  u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const u32 lo = 4u * i;
    w[i] &= valid >= lo + 4 ? 0xffffffffu : valid <= lo ? 0u : (1u << (8 * (valid - lo))) - 1u;
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

__device__ __forceinline__ fe shfl_down(const fe& a, int d) {
  fe r;
#pragma unroll
  for (int i = 0; i < 5; ++i) r.v[i] = __shfl_down_sync(0xffffffffu, a.v[i], d);
  return r;
}

// One thread block per age chunk (schedule: chacha_device.cuh). Seal: in = plaintext, out =
// sealed; open: in = sealed, out = plaintext, ok[chunk] = tag verified.
template <bool Seal, bool Aligned>
__global__ void __launch_bounds__(block_threads, 2)
    aead_chunks_kernel(key_arg key, batch_arg b, const u8* __restrict__ in, u8* __restrict__ out,
                       u32* __restrict__ ok) {
  __shared__ uint4 s_ks[chunk_warps][128];  // one 2 KiB keystream span per warp
  __shared__ fe s_pow[pow_count];           // r^(2^k)
  __shared__ fe s_warp[chunk_warps];
  __shared__ u32 s_s[4];
  __shared__ u32 s_ok;

  const u32 chunk = blockIdx.x;
  const bool last_chunk = chunk + 1 == b.chunks;
  const u32 len = last_chunk ? b.last_len : chunk_bytes;
  const u32 n = (len + 15) / 16;  // Poly1305 blocks of ciphertext
  u32 nonce[3];
  age_nonce_words(b.first_counter + chunk, last_chunk && b.final_is_last != 0, nonce);
  const u64 in_stride = Seal ? chunk_bytes : chunk_bytes + tag_bytes;
  const u64 out_stride = Seal ? chunk_bytes + tag_bytes : chunk_bytes;
  const u8* src = in + chunk * in_stride;
  u8* dst = out + chunk * out_stride;
  const u32 lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  if (threadIdx.x == 0) {  // the one-time key: block 0; the other threads start on their keystream
    u32 k0[16];
    chacha20_block(key.w, 0, nonce, k0);
    fe p = fe_clamped_r(k0[0], k0[1], k0[2], k0[3]);
    s_pow[0] = p;
    for (u32 k = 1; k < pow_count; ++k) {
      p = fe_mul(p, p);
      s_pow[k] = p;
    }
    s_s[0] = k0[4], s_s[1] = k0[5], s_s[2] = k0[6], s_s[3] = k0[7];
  }

  fe h = fe_zero(), R = fe_zero();
  u32 p_last = 0;
  for (u32 round = 0; round < rounds; ++round) {
    const u32 block64 = warp * (warp_blocks16 / 4) + round * 32;  // the warp's first 64-byte block
    const u32 span = block64 * 64;
    const bool active = span < len;  // warp-uniform
    if (active) {
      u32 ks[16];
      chacha20_block(key.w, 1 + block64 + lane, nonce, ks);
#pragma unroll
      for (u32 q = 0; q < 4; ++q)
        s_ks[warp][keystream_slot(lane, q)] =
            make_uint4(ks[4 * q], ks[4 * q + 1], ks[4 * q + 2], ks[4 * q + 3]);
    }
    __syncwarp();
    if (round == 0) {
      __syncthreads();  // s_pow, s_s written
      R = s_pow[lane_stride_pow];
    }
    if (active) {
#pragma unroll
      for (u32 k = 0; k < 4; ++k) {
        const u32 i = k * 32 + lane;  // 16-byte unit within the span
        const u32 off = span + i * 16;
        if (off < len) {
          const u32 valid = len - off < 16 ? len - off : 16;
          const uint4 x = load16<Aligned>(src + off, valid);
          const uint4 y = keep_bytes(xor4(x, s_ks[warp][keystream_slot(i / 4, i % 4)]), valid);
          store16<Aligned>(dst + off, y, valid);
          const uint4 c = Seal ? y : x;
          h = fe_add(fe_mul(h, R), fe_from_words(c.x, c.y, c.z, c.w, 1u << 24));
          p_last = off / 16;
        }
      }
    }
    __syncwarp();  // the span's keystream is consumed before the next round overwrites it
  }
#pragma unroll
  for (u32 q = 0; q < 4; ++q) s_ks[warp][4 * lane + q] = make_uint4(0, 0, 0, 0);

  // Weigh and add (see chacha_device.cuh). Lanes without blocks hold h = 0.
  const bool warp_has = n > warp * warp_blocks16;
  const u32 last = warp_has ? warp_last_block(warp, n) : 0;
  if (warp_has && lane < n - warp * warp_blocks16 && last != p_last)
    h = fe_mul(h, fe_pow(s_pow, last - p_last));
#pragma unroll
  for (int d = 16; d > 0; d /= 2) h = fe_carry(fe_add(h, shfl_down(h, d)));
  if (lane == 0) s_warp[warp] = warp_has ? fe_mul(h, fe_pow(s_pow, n + 1 - last)) : fe_zero();
  __syncthreads();

  if (threadIdx.x == 0) {
    fe acc = s_warp[0];
    for (u32 w = 1; w < chunk_warps; ++w) acc = fe_add(acc, s_warp[w]);  // limbs < 2^30
    // The length block: le64(aad_len = 0) || le64(len), plus 2^128; weight r.
    acc = fe_add(acc, fe_mul(fe_from_words(0, 0, len, 0, 1u << 24), s_pow[0]));
    u32 tag[4];
    fe_tag(acc, s_s, tag);
    if (Seal) {
      for (int i = 0; i < 16; ++i) dst[len + i] = static_cast<u8>(tag[i / 4] >> (8 * (i % 4)));
    } else {
      u32 diff = 0;
      for (int i = 0; i < 16; ++i) diff |= (src[len + i] ^ (tag[i / 4] >> (8 * (i % 4)))) & 0xffu;
      s_ok = diff == 0 ? 1u : 0u;
      ok[chunk] = s_ok;
    }
    for (u32 k = 0; k < pow_count; ++k) s_pow[k] = fe_zero();
    s_s[0] = s_s[1] = s_s[2] = s_s[3] = 0;
  }
  if (!Seal) {
    __syncthreads();
    if (s_ok == 0) {  // block-uniform: wipe the unauthentic plaintext this thread wrote
      for (u32 round = 0; round < rounds; ++round) {
        const u32 span = (warp * (warp_blocks16 / 4) + round * 32) * 64;
        for (u32 k = 0; k < 4; ++k) {
          const u32 off = span + (k * 32 + lane) * 16;
          if (off < len)
            store16<Aligned>(dst + off, make_uint4(0, 0, 0, 0), len - off < 16 ? len - off : 16);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Single-message kernels (tests, RFC vectors).

// out[0, len) = in ^ keystream from block `counter` on; one thread per 64 bytes.
__global__ void xor_stream_kernel(key_arg key, u32 n0, u32 n1, u32 n2, u32 counter,
                                  const u8* __restrict__ in, u64 len, u8* __restrict__ out) {
  const u64 j = static_cast<u64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j * 64 >= len) return;
  const u32 nonce[3] = {n0, n1, n2};
  u32 ks[16];
  chacha20_block(key.w, counter + static_cast<u32>(j), nonce, ks);
  for (u32 i = 0; i < 64 && j * 64 + i < len; ++i)
    out[j * 64 + i] = in[j * 64 + i] ^ static_cast<u8>(ks[i / 4] >> (8 * (i % 4)));
}

// h <- Poly1305 Horner over p[0, len). pad16: a short last block is zero-padded and still gets
// 2^128 (the AEAD's pad16); otherwise it gets the 0x01 byte after its end (plain Poly1305).
__device__ void poly_bytes(fe& h, const fe& r, const u8* p, u64 len, bool pad16) {
  for (u64 off = 0; off < len; off += 16) {
    const u64 m = len - off < 16 ? len - off : 16;
    u32 w[4] = {0, 0, 0, 0};
    for (u32 i = 0; i < m; ++i) w[i / 4] |= u32{p[off + i]} << (8 * (i % 4));
    u32 hibit = 1u << 24;
    if (m < 16 && !pad16) {
      w[m / 4] |= 1u << (8 * (m % 4));
      hibit = 0;
    }
    h = fe_add(fe_mul(h, r), fe_from_words(w[0], w[1], w[2], w[3], 0));
    h.v[4] += hibit;
    h = fe_carry(h);
  }
}

__global__ void aead_tag_kernel(key_arg key, u32 n0, u32 n1, u32 n2, const u8* __restrict__ aad,
                                u64 aad_len, u8* __restrict__ sealed, u64 len) {
  const u32 nonce[3] = {n0, n1, n2};
  u32 k0[16];
  chacha20_block(key.w, 0, nonce, k0);
  const fe r = fe_clamped_r(k0[0], k0[1], k0[2], k0[3]);
  fe h = fe_zero();
  poly_bytes(h, r, aad, aad_len, true);
  poly_bytes(h, r, sealed, len, true);
  h = fe_add(fe_mul(h, r), fe_from_words(static_cast<u32>(aad_len), static_cast<u32>(aad_len >> 32),
                                         static_cast<u32>(len), static_cast<u32>(len >> 32), 0));
  h.v[4] += 1u << 24;
  h = fe_mul(h, r);
  u32 tag[4];
  fe_tag(h, k0 + 4, tag);
  for (int i = 0; i < 16; ++i) sealed[len + i] = static_cast<u8>(tag[i / 4] >> (8 * (i % 4)));
}

__global__ void poly1305_kernel(key_arg key, const u8* __restrict__ msg, u64 len,
                                u8* __restrict__ out) {
  const fe r = fe_clamped_r(key.w[0], key.w[1], key.w[2], key.w[3]);
  fe h = fe_zero();
  poly_bytes(h, r, msg, len, false);
  h = fe_mul(h, r);
  u32 tag[4];
  fe_tag(h, key.w + 4, tag);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<u8>(tag[i / 4] >> (8 * (i % 4)));
}

template <bool Seal>
void launch_chunks(const std::uint8_t key[32], const aead_batch& b, const void* d_in, void* d_out,
                   u32* d_ok, void* stream) {
  const batch_arg arg{b.first_counter, b.chunks, b.last_len, b.final_is_last ? 1u : 0u};
  const auto s = static_cast<cudaStream_t>(stream);
  const bool aligned =
      ((reinterpret_cast<std::uintptr_t>(d_in) | reinterpret_cast<std::uintptr_t>(d_out)) % 16) ==
      0;
  const auto* in = static_cast<const u8*>(d_in);
  auto* out = static_cast<u8*>(d_out);
  key_arg k = make_key(key);
  if (aligned)
    aead_chunks_kernel<Seal, true><<<b.chunks, block_threads, 0, s>>>(k, arg, in, out, d_ok);
  else
    aead_chunks_kernel<Seal, false><<<b.chunks, block_threads, 0, s>>>(k, arg, in, out, d_ok);
  volatile u32* wipe = k.w;  // the host copy of the key words
  for (int i = 0; i < 8; ++i) wipe[i] = 0;
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

}  // namespace

void aead_workspace::seal(const std::uint8_t key[32], const aead_batch& b, const void* d_plain,
                          void* d_sealed, void* stream) {
  if (b.chunks == 0) return;
  check_aead_args(b, d_plain, d_sealed, nullptr, false);
  launch_chunks<true>(key, b, d_plain, d_sealed, nullptr, stream);
}

void aead_workspace::open(const std::uint8_t key[32], const aead_batch& b, const void* d_sealed,
                          void* d_plain, std::uint32_t* d_ok, void* stream) {
  if (b.chunks == 0) return;
  check_aead_args(b, d_sealed, d_plain, d_ok, true);
  launch_chunks<false>(key, b, d_sealed, d_plain, d_ok, stream);
}

void aead_seal_one(const std::uint8_t key[32], const std::uint8_t nonce[12], const void* d_aad,
                   std::size_t aad_len, const void* d_plain, std::size_t len, void* d_sealed,
                   void* stream) {
  if (d_sealed == nullptr || (len != 0 && d_plain == nullptr) || (aad_len != 0 && d_aad == nullptr))
    throw gpu_error("aead_seal_one: null buffer");
  const auto s = static_cast<cudaStream_t>(stream);
  const key_arg k = make_key(key);
  u32 n[3];
  for (int i = 0; i < 3; ++i)
    n[i] = u32{nonce[4 * i]} | (u32{nonce[4 * i + 1]} << 8) | (u32{nonce[4 * i + 2]} << 16) |
           (u32{nonce[4 * i + 3]} << 24);
  auto* out = static_cast<u8*>(d_sealed);
  if (len != 0) {
    const u64 threads = (len + 63) / 64;
    xor_stream_kernel<<<static_cast<unsigned>((threads + 127) / 128), 128, 0, s>>>(
        k, n[0], n[1], n[2], 1, static_cast<const u8*>(d_plain), len, out);
    HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
  }
  aead_tag_kernel<<<1, 1, 0, s>>>(k, n[0], n[1], n[2], static_cast<const u8*>(d_aad), aad_len, out,
                                  len);
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

void poly1305_one(const std::uint8_t key[32], const void* d_msg, std::size_t len, void* d_tag,
                  void* stream) {
  if (d_tag == nullptr || (len != 0 && d_msg == nullptr)) throw gpu_error("poly1305_one: null");
  poly1305_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(
      make_key(key), static_cast<const u8*>(d_msg), len, static_cast<u8*>(d_tag));
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

}  // namespace hetpipe::cuda
