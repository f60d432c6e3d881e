// BLAKE3 batch kernels and their launcher (contract: blake3_kernels.hpp).
//
// Every piece gets a slot range [first, first + chunks) in two CV arrays A and B of the scratch.
//   chunk_kernel: one thread per chunk of the batch compresses its chunk into A[slot]; the chunk
//     of a one-chunk root piece instead leaves its last block as the piece's root node.
//   level_kernel(L), L = 0, 1, ...: one thread per slot; slot i < pairs of a piece that still has
//     n_L = ceil(chunks / 2^L) > target nodes (target 1, or 2 for a root piece) computes the
//     parent of nodes 2i and 2i+1 of level L into level L+1 (A -> B on even L, B -> A on odd L);
//     the odd last node is carried up unchanged. Pairing neighbours level by level is the left-
//     balanced tree of the specification.
//   result_kernel: one thread per piece reads its last level: the CV, or the root parent node of
//     the two remaining CVs.
// A piece that is done early keeps its nodes in the array of its last level; later levels leave
// its slots alone, and result_kernel recomputes which array that is.
#include "cuda/blake3_kernels.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include <hetpipe/error.hpp>

#include "cuda/check.cuh"

namespace hetpipe::cuda {
namespace {

using ull = unsigned long long;

constexpr std::uint32_t flag_chunk_start = 1, flag_chunk_end = 2, flag_parent = 4;
constexpr ull chunk_bytes = 1024;
constexpr int block_threads = 128;

// The launcher's copy of a piece (48 bytes, device).
struct piece_desc {
  ull offset, len, counter;
  ull first;   // first slot in A and B
  ull chunks;  // >= 1
  std::uint32_t is_root, pad;
};
static_assert(sizeof(piece_desc) == 48, "");

struct key_arg {
  std::uint32_t w[8];
};

__constant__ std::uint32_t d_iv[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                                      0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

__device__ __forceinline__ std::uint32_t rotr(std::uint32_t x, int n) {
  return __funnelshift_r(x, x, n);
}

__device__ __forceinline__ void g(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c,
                                  std::uint32_t& d, std::uint32_t x, std::uint32_t y) {
  a = a + b + x;
  d = rotr(d ^ a, 16);
  c = c + d;
  b = rotr(b ^ c, 12);
  a = a + b + y;
  d = rotr(d ^ a, 8);
  c = c + d;
  b = rotr(b ^ c, 7);
}

// The message permutation of the specification, m'[i] = m[perm[i]].
__device__ __forceinline__ void permute(std::uint32_t m[16]) {
  const std::uint32_t t[16] = {m[2], m[6],  m[3],  m[10], m[7], m[0],  m[4],  m[13],
                               m[1], m[11], m[12], m[5],  m[9], m[14], m[15], m[8]};
#pragma unroll
  for (int i = 0; i < 16; ++i) m[i] = t[i];
}

// h <- first 8 words of compress(h, m, counter, blen, flags). m is consumed (permuted).
__device__ __forceinline__ void compress_cv(std::uint32_t h[8], std::uint32_t m[16], ull counter,
                                            std::uint32_t blen, std::uint32_t flags) {
  std::uint32_t v[16] = {h[0],
                         h[1],
                         h[2],
                         h[3],
                         h[4],
                         h[5],
                         h[6],
                         h[7],
                         d_iv[0],
                         d_iv[1],
                         d_iv[2],
                         d_iv[3],
                         static_cast<std::uint32_t>(counter),
                         static_cast<std::uint32_t>(counter >> 32),
                         blen,
                         flags};
#pragma unroll
  for (int r = 0; r < 7; ++r) {
    g(v[0], v[4], v[8], v[12], m[0], m[1]);
    g(v[1], v[5], v[9], v[13], m[2], m[3]);
    g(v[2], v[6], v[10], v[14], m[4], m[5]);
    g(v[3], v[7], v[11], v[15], m[6], m[7]);
    g(v[0], v[5], v[10], v[15], m[8], m[9]);
    g(v[1], v[6], v[11], v[12], m[10], m[11]);
    g(v[2], v[7], v[8], v[13], m[12], m[13]);
    g(v[3], v[4], v[9], v[14], m[14], m[15]);
    if (r < 6) permute(m);
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) h[i] = v[i] ^ v[i + 8];
}

// Message words of the n <= 64 bytes at p, zero-padded.
__device__ __forceinline__ void load_block(const unsigned char* p, std::uint32_t n,
                                           std::uint32_t m[16]) {
  if (n == 64 && (reinterpret_cast<std::uintptr_t>(p) & 15) == 0) {
    const uint4* q = reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint4 x = __ldg(q + i);
      m[4 * i] = x.x, m[4 * i + 1] = x.y, m[4 * i + 2] = x.z, m[4 * i + 3] = x.w;
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    std::uint32_t w = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const std::uint32_t j = 4 * i + k;
      if (j < n) w |= static_cast<std::uint32_t>(p[j]) << (8 * k);
    }
    m[i] = w;
  }
}

// The piece holding slot s: the last piece whose first slot is <= s.
__device__ __forceinline__ unsigned find_piece(const piece_desc* pieces, unsigned count, ull s) {
  unsigned lo = 0, hi = count - 1;
  while (lo < hi) {
    const unsigned mid = lo + (hi - lo + 1) / 2;
    if (pieces[mid].first <= s)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ void store_cv(std::uint32_t* dst, const std::uint32_t h[8]) {
  uint4* q = reinterpret_cast<uint4*>(dst);  // slots are 32-byte aligned
  q[0] = make_uint4(h[0], h[1], h[2], h[3]);
  q[1] = make_uint4(h[4], h[5], h[6], h[7]);
}

__device__ __forceinline__ void load_cv(const std::uint32_t* src, std::uint32_t* h) {
  const uint4* q = reinterpret_cast<const uint4*>(src);
  const uint4 a = q[0], b = q[1];
  h[0] = a.x, h[1] = a.y, h[2] = a.z, h[3] = a.w, h[4] = b.x, h[5] = b.y, h[6] = b.z, h[7] = b.w;
}

__global__ void __launch_bounds__(block_threads)
    chunk_kernel(const unsigned char* __restrict__ data, const piece_desc* __restrict__ pieces,
                 unsigned count, ull total, key_arg key, std::uint32_t flags,
                 std::uint32_t* __restrict__ cv_a, blake3_result* __restrict__ results) {
  const ull s = static_cast<ull>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= total) return;
  const unsigned p = find_piece(pieces, count, s);
  const piece_desc pc = pieces[p];
  const ull j = s - pc.first;
  const ull start = j * chunk_bytes;
  const std::uint32_t len =
      static_cast<std::uint32_t>(pc.len - start < chunk_bytes ? pc.len - start : chunk_bytes);
  const unsigned char* src = data + pc.offset + start;
  const ull counter = pc.counter + j;
  const std::uint32_t blocks = len == 0 ? 1 : (len + 63) / 64;
  const bool root = pc.is_root && pc.chunks == 1;

  std::uint32_t h[8], m[16];
#pragma unroll
  for (int i = 0; i < 8; ++i) h[i] = key.w[i];
  for (std::uint32_t b = 0; b < blocks; ++b) {
    const bool last = b + 1 == blocks;
    const std::uint32_t blen = last ? len - 64 * b : 64;
    load_block(src + 64 * b, blen, m);
    const std::uint32_t f = flags | (b == 0 ? flag_chunk_start : 0) | (last ? flag_chunk_end : 0);
    if (last && root) {
      blake3_result& r = results[p];
#pragma unroll
      for (int i = 0; i < 8; ++i) r.cv[i] = h[i];
#pragma unroll
      for (int i = 0; i < 16; ++i) r.block[i] = m[i];
      r.counter = counter;
      r.block_len = blen;
      r.flags = f;
      return;
    }
    compress_cv(h, m, counter, blen, f);
  }
  store_cv(cv_a + 8 * s, h);
}

__device__ __forceinline__ ull nodes_at(ull chunks, int level) {
  return ((chunks - 1) >> level) + 1;
}

__global__ void __launch_bounds__(block_threads)
    level_kernel(const piece_desc* __restrict__ pieces, unsigned count, ull total, int level,
                 key_arg key, std::uint32_t flags, const std::uint32_t* __restrict__ src,
                 std::uint32_t* __restrict__ dst) {
  const ull s = static_cast<ull>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= total) return;
  const piece_desc pc = pieces[find_piece(pieces, count, s)];
  const ull n = nodes_at(pc.chunks, level);
  const ull target = pc.is_root ? 2 : 1;
  if (n <= target) return;
  const ull i = s - pc.first, pairs = n / 2;
  if (i < pairs) {
    std::uint32_t h[8], m[16];
#pragma unroll
    for (int w = 0; w < 8; ++w) h[w] = key.w[w];
    load_cv(src + 8 * (pc.first + 2 * i), m);
    load_cv(src + 8 * (pc.first + 2 * i + 1), m + 8);
    compress_cv(h, m, 0, 64, flags | flag_parent);
    store_cv(dst + 8 * s, h);
  } else if (i == pairs && (n & 1)) {
    std::uint32_t h[8];
    load_cv(src + 8 * (pc.first + n - 1), h);
    store_cv(dst + 8 * s, h);
  }
}

__global__ void __launch_bounds__(block_threads)
    result_kernel(const piece_desc* __restrict__ pieces, unsigned count, key_arg key,
                  std::uint32_t flags, const std::uint32_t* __restrict__ cv_a,
                  const std::uint32_t* __restrict__ cv_b, blake3_result* __restrict__ results) {
  const unsigned p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= count) return;
  const piece_desc pc = pieces[p];
  if (pc.is_root && pc.chunks == 1) return;  // chunk_kernel wrote the root node
  const ull target = pc.is_root ? 2 : 1;
  int level = 0;
  while (nodes_at(pc.chunks, level) > target) ++level;
  const std::uint32_t* src = (level & 1 ? cv_b : cv_a) + 8 * pc.first;
  blake3_result& r = results[p];
  if (!pc.is_root) {
    std::uint32_t h[8];
    load_cv(src, h);
#pragma unroll
    for (int i = 0; i < 8; ++i) r.cv[i] = h[i];
#pragma unroll
    for (int i = 0; i < 16; ++i) r.block[i] = 0;
    r.counter = 0;
    r.block_len = 0;
    r.flags = 0;
    return;
  }
  std::uint32_t m[16];
  load_cv(src, m);
  load_cv(src + 8, m + 8);
#pragma unroll
  for (int i = 0; i < 8; ++i) r.cv[i] = key.w[i];
#pragma unroll
  for (int i = 0; i < 16; ++i) r.block[i] = m[i];
  r.counter = 0;
  r.block_len = 64;
  r.flags = flags | flag_parent;
}

ull piece_chunks(const blake3_piece& p) {
  return p.len == 0 ? 1 : (p.len + chunk_bytes - 1) / chunk_bytes;
}

unsigned grid_for(ull threads) {
  return static_cast<unsigned>((threads + block_threads - 1) / block_threads);
}

}  // namespace

std::size_t blake3_scratch_bytes(const blake3_piece* h_pieces, std::size_t count) {
  ull chunks = 0;
  for (std::size_t i = 0; i < count; ++i) chunks += piece_chunks(h_pieces[i]);
  return static_cast<std::size_t>(2 * 32 * chunks + sizeof(piece_desc) * count);
}

void blake3_workspace::launch(const void* d_data, const blake3_piece* h_pieces, std::size_t count,
                              const std::uint32_t key[8], std::uint32_t flags,
                              blake3_result* d_results, void* stream) {
  if (count == 0) return;
  if (count > 0xFFFFFFFFu) throw gpu_error("blake3: more than 2^32 - 1 pieces in one launch");
  ull total = 0;
  int levels = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const blake3_piece& p = h_pieces[i];
    if (p.len == 0 && !p.is_root)
      throw gpu_error("blake3: piece " + std::to_string(i) + " is empty but not a whole input");
    const ull n = piece_chunks(p), target = p.is_root ? 2 : 1;
    int l = 0;
    while (((n - 1) >> l) + 1 > target) ++l;
    levels = std::max(levels, l);
    total += n;
  }
  if (total > (ull{1} << 40)) throw gpu_error("blake3: batch too large");
  const auto s = static_cast<cudaStream_t>(stream);
  if (!copied_) {
    copied_.emplace(false);
    done_.emplace(false);
  }
  const auto copied = static_cast<cudaEvent_t>(copied_->handle());
  const auto done = static_cast<cudaEvent_t>(done_->handle());

  const std::size_t desc_bytes = sizeof(piece_desc) * count;
  const std::size_t scratch_bytes = static_cast<std::size_t>(2 * 32 * total);
  HETPIPE_CUDA_CHECK(cudaEventSynchronize(copied));  // h_desc_ is free again
  if (h_desc_.size() < desc_bytes)
    h_desc_ = pinned_buffer(std::max(desc_bytes, 2 * h_desc_.size()));
  if (d_desc_.size() < desc_bytes || d_scratch_.size() < scratch_bytes) {
    HETPIPE_CUDA_CHECK(cudaEventSynchronize(done));  // the previous launch still reads them
    if (d_desc_.size() < desc_bytes)
      d_desc_ = device_buffer(std::max(desc_bytes, 2 * d_desc_.size()));
    if (d_scratch_.size() < scratch_bytes)
      d_scratch_ =
          device_buffer(std::max(scratch_bytes, d_scratch_.size() + d_scratch_.size() / 2));
  }

  auto* h_desc = static_cast<piece_desc*>(h_desc_.get());
  ull first = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const blake3_piece& p = h_pieces[i];
    piece_desc d{};
    d.offset = p.offset;
    d.len = p.len;
    d.counter = p.chunk_counter;
    d.first = first;
    d.chunks = piece_chunks(p);
    d.is_root = p.is_root ? 1u : 0u;
    h_desc[i] = d;
    first += d.chunks;
  }
  key_arg k;
  std::memcpy(k.w, key, sizeof k.w);
  auto* d_desc = static_cast<piece_desc*>(d_desc_.get());
  auto* cv_a = static_cast<std::uint32_t*>(d_scratch_.get());
  auto* cv_b = cv_a + 8 * total;
  const auto n = static_cast<unsigned>(count);

  // Another stream's launch through this workspace may still use d_desc_ and the scratch.
  HETPIPE_CUDA_CHECK(cudaStreamWaitEvent(s, done, 0));
  HETPIPE_CUDA_CHECK(cudaMemcpyAsync(d_desc, h_desc, desc_bytes, cudaMemcpyHostToDevice, s));
  HETPIPE_CUDA_CHECK(cudaEventRecord(copied, s));
  chunk_kernel<<<grid_for(total), block_threads, 0, s>>>(
      static_cast<const unsigned char*>(d_data), d_desc, n, total, k, flags, cv_a, d_results);
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
  for (int level = 0; level < levels; ++level) {
    const std::uint32_t* src = level & 1 ? cv_b : cv_a;
    std::uint32_t* dst = level & 1 ? cv_a : cv_b;
    level_kernel<<<grid_for(total), block_threads, 0, s>>>(d_desc, n, total, level, k, flags, src,
                                                           dst);
    HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
  }
  result_kernel<<<grid_for(count), block_threads, 0, s>>>(d_desc, n, k, flags, cv_a, cv_b,
                                                          d_results);
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
  HETPIPE_CUDA_CHECK(cudaEventRecord(done, s));
}

}  // namespace hetpipe::cuda
