// Text count kernel and its launcher (contract: text_kernels.hpp).
#include "cuda/text_kernels.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include <hetpipe/error.hpp>

#include "cuda/check.cuh"

namespace hetpipe::cuda {
namespace {

using u64 = unsigned long long;

constexpr int block_threads = 256;
constexpr u64 max_blocks_x = 1024;

struct piece_set {
  text_piece pieces[text_pieces_per_launch];
};

__device__ __forceinline__ bool is_space(unsigned c) {
  return c == ' ' || c - 9u < 5u;
}

// Adds the newlines, word starts and characters of the bytes of `w` (n of them, n <= 16) after
// `prev`.
__device__ __forceinline__ void tally_word(const uint4& w, unsigned n, unsigned prev, u64& lines,
                                           u64& starts, u64& chars) {
  const unsigned parts[4] = {w.x, w.y, w.z, w.w};
  unsigned l = 0, s = 0, ch = 0;
  bool prev_space = is_space(prev);
#pragma unroll
  for (unsigned i = 0; i < 16; ++i) {
    if (i >= n) break;
    const unsigned c = (parts[i / 4] >> (8 * (i % 4))) & 0xffu;
    const bool space = is_space(c);
    l += c == '\n';
    s += !space && prev_space;
    ch += (c & 0xC0u) != 0x80u;
    prev_space = space;
  }
  lines += l;
  starts += s;
  chars += ch;
}

__device__ __forceinline__ u64 block_sum(u64 v, u64* shared) {
  for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = 0;
  if (threadIdx.x < block_threads / 32) v = shared[threadIdx.x];
  if (warp == 0)
    for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
  __syncthreads();
  return v;
}

__global__ void __launch_bounds__(block_threads)
    text_count_kernel(const unsigned char* d_data, piece_set set, text_piece_counts* d_counts) {
  __shared__ u64 shared[block_threads / 32];
  const text_piece piece = set.pieces[blockIdx.y];
  const unsigned char* d = d_data + piece.offset;
  const u64 n = piece.size, words = (n + 15) / 16;
  u64 lines = 0, starts = 0, chars = 0;
  for (u64 w = blockIdx.x * u64{block_threads} + threadIdx.x; w < words;
       w += u64{gridDim.x} * block_threads) {
    const u64 base = w * 16;
    const unsigned prev = base == 0 ? ' ' : d[base - 1];  // a word at the first byte counts
    const unsigned len = static_cast<unsigned>(min(u64{16}, n - base));
    uint4 v;
    if (len == 16) {
      v = *reinterpret_cast<const uint4*>(d + base);
    } else {
      unsigned char bytes[16] = {};
      for (unsigned i = 0; i < len; ++i) bytes[i] = d[base + i];
      v = make_uint4(bytes[0] | bytes[1] << 8 | bytes[2] << 16 | unsigned{bytes[3]} << 24,
                     bytes[4] | bytes[5] << 8 | bytes[6] << 16 | unsigned{bytes[7]} << 24,
                     bytes[8] | bytes[9] << 8 | bytes[10] << 16 | unsigned{bytes[11]} << 24,
                     bytes[12] | bytes[13] << 8 | bytes[14] << 16 | unsigned{bytes[15]} << 24);
    }
    tally_word(v, len, prev, lines, starts, chars);
  }
  lines = block_sum(lines, shared);
  starts = block_sum(starts, shared);
  chars = block_sum(chars, shared);
  text_piece_counts& out = d_counts[blockIdx.y];
  if (threadIdx.x == 0) {
    if (lines) atomicAdd(reinterpret_cast<u64*>(&out.lines), lines);
    if (starts) atomicAdd(reinterpret_cast<u64*>(&out.words), starts);
    if (chars) atomicAdd(reinterpret_cast<u64*>(&out.chars), chars);
    if (blockIdx.x == 0 && n > 0) {
      out.starts_in_word = !is_space(d[0]);
      out.ends_in_word = !is_space(d[n - 1]);
    }
  }
}

}  // namespace

void text_count_batch(const void* d_data, const text_piece* h_pieces, std::size_t count,
                      text_piece_counts* d_counts, void* stream) {
  if (count == 0) return;
  check_text_count_args(d_data, h_pieces, count, d_counts);
  const auto s = static_cast<cudaStream_t>(stream);
  HETPIPE_CUDA_CHECK(cudaMemsetAsync(d_counts, 0, count * sizeof *d_counts, s));
  for (std::size_t first = 0; first < count; first += text_pieces_per_launch) {
    const std::size_t n = std::min(text_pieces_per_launch, count - first);
    piece_set set{};
    u64 longest = 0;
    for (std::size_t i = 0; i < n; ++i) {
      set.pieces[i] = h_pieces[first + i];
      longest = std::max<u64>(longest, set.pieces[i].size);
    }
    const u64 blocks = std::clamp<u64>(
        (longest + 16 * block_threads * 4 - 1) / (16 * block_threads * 4),  // 4 steps a thread
        1, max_blocks_x);
    text_count_kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(n)),
                        block_threads, 0, s>>>(static_cast<const unsigned char*>(d_data), set,
                                               d_counts + first);
    HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
  }
}

}  // namespace hetpipe::cuda
