// Batched CRC32 / CRC32C kernels and their launchers (contract: crc_kernels.hpp).
//
// Algebra (reflected: bit 31 of a word is the coefficient of x^0). R(s, m) is the CRC register
// after message m from state s; R(s, m) = s * x^(8|m|) + R(0, m) mod P, R(0, m) is linear in m and
// ignores leading zero bytes, and CRC(m) = ~R(~0, m) = ~R(0, m') with m' = m whose first 4 bytes
// are complemented. T_k[b] = R(0, b followed by k zero bytes) = T_0[b] * x^(8k).
//
// A piece [a, b) (absolute byte addresses) is read as 16-byte words [a/16, b/16) plus a tail of
// b % 16 bytes; bytes before a in the first word are zeros (leading zeros: no effect). The words
// are cut into segments of 2048 words counted from the end, segment s = 0 being the last. In a
// segment, lane l of a warp reads words l, l + 32, ... (one coalesced 512-byte load per step) and
// keeps acc = R(0, its words with the other lanes' words zeroed), up to the end of its last word:
//   acc' = acc * x^(8 * 512) + R(0, w) = sum_i T_{511-i}[acc byte i] + sum_i T_{15-i}[w byte i],
// 20 shared-memory lookups per 16 bytes. The segment's R(0, .) is sum_l acc_l * x^(8 * 16(31-l));
// the piece's R(~0, words) is sum_s seg_s * x^(8 * 32 KiB * s); the tail continues it byte by
// byte. Each warp XORs its segment's share (times x^(8 * tail)) into the piece's result, so the
// order in which warps finish does not matter and the result is exact.
#include "cuda/crc_kernels.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include <hetpipe/error.hpp>

#include "cuda/check.cuh"

namespace hetpipe::cuda {
namespace {

using u32 = std::uint32_t;
using u64 = unsigned long long;

constexpr int warp_size = 32;
constexpr int block_threads = 256;
constexpr int warps_per_block = block_threads / warp_size;
constexpr int plan_threads = 1024;
constexpr u64 word_bytes = 16;
constexpr u64 segment_words = 2048;  // 32 KiB per warp task: 64 steps per lane
constexpr u64 segment_bytes = segment_words * word_bytes;
constexpr int steps = static_cast<int>(segment_words / warp_size);
constexpr u64 small_piece = 32;       // shorter pieces: one lane, byte by byte
constexpr int segment_powers = 1024;  // x^(8 * 32 KiB * s) tabulated for s < 1024 (32 MiB)
constexpr int slices = 20;            // T_0..T_15 for the word, T_508..T_511 for acc
constexpr u32 one = 0x80000000u;

constexpr u32 poly_of[2] = {0xEDB88320u, 0x82F63B78u};  // 0x04C11DB7, 0x1EDC6F41 reflected

struct crc_tables {
  u32 slice[slices][256];             // slice[i] = T_i (i < 16), slice[16 + i] = T_{508+i}
  u32 lane_shift[warp_size];          // x^(8 * 16 * (31 - l))
  u32 segment_shift[segment_powers];  // x^(8 * segment_bytes * s)
  u32 xpow[64];                       // x^(8 * 2^k)
};

// a * b mod P, branch-free: a's coefficients from x^0 (bit 31) up, b running through b * x^i.
__host__ __device__ constexpr u32 mulmod(u32 a, u32 b, u32 poly) {
  u32 p = 0;
  for (int i = 0; i < 32; ++i) {
    p ^= b & (0u - (a >> 31));
    a <<= 1;
    b = (b >> 1) ^ (poly & (0u - (b & 1u)));
  }
  return p;
}

// x^(8 * n) mod P from the table of x^(8 * 2^k).
__host__ __device__ constexpr u32 xpow8(u64 n, const u32* xpow, u32 poly) {
  u32 p = one;
  for (int k = 0; n != 0; ++k, n >>= 1)
    if (n & 1u) p = mulmod(p, xpow[k], poly);
  return p;
}

// Evaluated by the compiler: the tables are constant data of the device image (no upload, no
// per-device state).
constexpr crc_tables make_tables(u32 poly) {
  crc_tables t{};
  for (u32 b = 0; b < 256; ++b) {
    u32 c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? poly : 0u);
    t.slice[0][b] = c;
  }
  for (int k = 1; k < 16; ++k)
    for (u32 b = 0; b < 256; ++b) {
      const u32 c = t.slice[k - 1][b];
      t.slice[k][b] = t.slice[0][c & 0xffu] ^ (c >> 8);  // one more zero byte
    }
  t.xpow[0] = one >> 8;
  for (int k = 1; k < 64; ++k) t.xpow[k] = mulmod(t.xpow[k - 1], t.xpow[k - 1], poly);
  for (int i = 0; i < 4; ++i) {
    const u32 m = xpow8(508 + i, t.xpow, poly);
    for (u32 b = 0; b < 256; ++b) t.slice[16 + i][b] = mulmod(t.slice[0][b], m, poly);
  }
  for (int l = 0; l < warp_size; ++l)
    t.lane_shift[l] = xpow8(word_bytes * (warp_size - 1 - l), t.xpow, poly);
  const u32 seg = xpow8(segment_bytes, t.xpow, poly);
  t.segment_shift[0] = one;
  for (int s = 1; s < segment_powers; ++s)
    t.segment_shift[s] = mulmod(t.segment_shift[s - 1], seg, poly);
  return t;
}

__device__ const crc_tables d_tables[2] = {make_tables(poly_of[0]), make_tables(poly_of[1])};

// Segments (warp tasks) of a piece: none when empty, one lane's work when short.
__host__ __device__ inline u64 piece_segments(u64 base, const crc_piece& p) {
  if (p.len == 0) return 0;
  if (p.len < small_piece) return 1;
  const u64 a = base + p.offset, b = a + p.len;
  return ((b / word_bytes) - (a / word_bytes) + segment_words - 1) / segment_words;
}

// One block: prefix[i] = segments of pieces before i, prefix[count] = total; zeroes d_crc, which
// the segments then XOR into.
__global__ void __launch_bounds__(plan_threads)
    crc_plan_kernel(u64 base, const crc_piece* __restrict__ pieces, u64 count,
                    u64* __restrict__ prefix, u32* __restrict__ d_crc) {
  __shared__ u64 warp_sums[plan_threads / warp_size];
  const int lane = threadIdx.x % warp_size, warp = threadIdx.x / warp_size;
  const u64 per = (count + plan_threads - 1) / plan_threads;
  const u64 begin = min(count, threadIdx.x * per), end = min(count, begin + per);
  u64 sum = 0;
  for (u64 i = begin; i < end; ++i) sum += piece_segments(base, pieces[i]);
  u64 incl = sum;
  for (int d = 1; d < warp_size; d <<= 1) {
    const u64 y = __shfl_up_sync(0xffffffffu, incl, d);
    if (lane >= d) incl += y;
  }
  if (lane == warp_size - 1) warp_sums[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    u64 v = warp_sums[lane];
    for (int d = 1; d < warp_size; d <<= 1) {
      const u64 y = __shfl_up_sync(0xffffffffu, v, d);
      if (lane >= d) v += y;
    }
    warp_sums[lane] = v;
  }
  __syncthreads();
  u64 run = incl - sum + (warp > 0 ? warp_sums[warp - 1] : 0);
  for (u64 i = begin; i < end; ++i) {
    prefix[i] = run;
    d_crc[i] = 0;
    run += piece_segments(base, pieces[i]);
  }
  if (threadIdx.x == plan_threads - 1) prefix[count] = run;
}

__device__ __forceinline__ u32 byte_of(u32 v, int i) {
  return (v >> (8 * i)) & 0xffu;
}

// acc' = acc * x^(8 * 512) + R(0, w) (see the top of the file).
__device__ __forceinline__ u32 step(u32 acc, const uint4& w, const u32 (*t)[256]) {
  u32 r = t[19][byte_of(acc, 0)] ^ t[18][byte_of(acc, 1)] ^ t[17][byte_of(acc, 2)] ^
          t[16][byte_of(acc, 3)];
  r ^= t[15][byte_of(w.x, 0)] ^ t[14][byte_of(w.x, 1)] ^ t[13][byte_of(w.x, 2)] ^
       t[12][byte_of(w.x, 3)];
  r ^= t[11][byte_of(w.y, 0)] ^ t[10][byte_of(w.y, 1)] ^ t[9][byte_of(w.y, 2)] ^
       t[8][byte_of(w.y, 3)];
  r ^=
      t[7][byte_of(w.z, 0)] ^ t[6][byte_of(w.z, 1)] ^ t[5][byte_of(w.z, 2)] ^ t[4][byte_of(w.z, 3)];
  r ^=
      t[3][byte_of(w.w, 0)] ^ t[2][byte_of(w.w, 1)] ^ t[1][byte_of(w.w, 2)] ^ t[0][byte_of(w.w, 3)];
  return r;
}

__device__ __forceinline__ uint4 load_word(u64 w) {
  return __ldg(reinterpret_cast<const uint4*>(w * word_bytes));
}

// A word at the start of a piece: zero below the piece, bytes before `a` zero, bytes [a, a + 4)
// complemented (the initial ~0 of the register). Read byte by byte: no access outside the piece.
__device__ uint4 edge_word(u64 w, u64 a) {
  u32 x[4] = {0, 0, 0, 0};
  const u64 start = w * word_bytes;
  if (start + word_bytes > a) {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const u64 addr = start + i;
      if (addr >= a) {
        u32 v = *reinterpret_cast<const unsigned char*>(addr);
        if (addr < a + 4) v ^= 0xffu;
        x[i / 4] |= v << (8 * (i % 4));
      }
    }
  }
  return make_uint4(x[0], x[1], x[2], x[3]);
}

template <int Kind>
__global__ void __launch_bounds__(block_threads)
    crc_segments_kernel(u64 base, const crc_piece* __restrict__ pieces, u64 count,
                        const u64* __restrict__ prefix, u32* __restrict__ d_crc) {
  __shared__ __align__(16) u32 s_tab[slices][256];
  const u64 total = __ldg(prefix + count);
  const u64 first = static_cast<u64>(blockIdx.x) * warps_per_block;
  if (first >= total) return;  // an idle block of a launch sized for the whole device

  const crc_tables& tab = d_tables[Kind];
  constexpr u32 poly = poly_of[Kind];
  {
    const auto* src = reinterpret_cast<const uint4*>(&tab.slice[0][0]);
    auto* dst = reinterpret_cast<uint4*>(&s_tab[0][0]);
    for (int i = threadIdx.x; i < slices * 256 / 4; i += block_threads) dst[i] = __ldg(src + i);
  }
  __syncthreads();

  const int lane = threadIdx.x % warp_size;
  const u32 lane_shift = __ldg(&tab.lane_shift[lane]);
  const u64 stride = static_cast<u64>(gridDim.x) * warps_per_block;
  u64 piece = 0;  // prefix[piece] <= g for every later g: the search only moves forward
  for (u64 g = first + threadIdx.x / warp_size; g < total; g += stride) {
    u64 lo = piece, hi = count;  // prefix[lo] <= g < prefix[hi]
    while (hi - lo > 1) {
      const u64 mid = lo + (hi - lo) / 2;
      if (__ldg(prefix + mid) <= g)
        lo = mid;
      else
        hi = mid;
    }
    piece = lo;
    const u64 s = g - __ldg(prefix + piece);
    const u64 off = __ldg(&pieces[piece].offset), len = __ldg(&pieces[piece].len);
    const u64 a = base + off, b = a + len;

    if (len < small_piece) {
      if (lane == 0) {
        u32 c = ~0u;
        for (u64 i = a; i < b; ++i)
          c = s_tab[0][(c ^ *reinterpret_cast<const unsigned char*>(i)) & 0xffu] ^ (c >> 8);
        d_crc[piece] = ~c;
      }
      continue;
    }

    // Segment s: words [end - 2048, end); words below first_word are zeros, words below
    // first_fast (those holding bytes before a + 4) are built byte by byte.
    const u64 first_word = a / word_bytes, last_word = b / word_bytes;
    const u64 first_fast = (a + 4 + word_bytes - 1) / word_bytes;
    const u64 end = last_word - s * segment_words;
    const u64 begin = end - segment_words;  // device addresses are far above 32 KiB: no wrap
    const int j0 = first_word > begin ? static_cast<int>((first_word - begin) / warp_size) : 0;
    const u64 jf_words = first_fast > begin ? first_fast - begin + warp_size - 1 : 0;
    const int jf = jf_words / warp_size < steps ? static_cast<int>(jf_words / warp_size) : steps;
    u32 acc = 0;
    int j = j0;
    for (; j < jf; ++j) {
      const u64 w = begin + static_cast<u64>(j) * warp_size + lane;
      acc = step(acc, w >= first_fast ? load_word(w) : edge_word(w, a), s_tab);
    }
    for (; j + 4 <= steps; j += 4) {  // four loads in flight per lane
      const u64 w = begin + static_cast<u64>(j) * warp_size + lane;
      const uint4 v0 = load_word(w), v1 = load_word(w + warp_size),
                  v2 = load_word(w + 2 * warp_size), v3 = load_word(w + 3 * warp_size);
      acc = step(acc, v0, s_tab);
      acc = step(acc, v1, s_tab);
      acc = step(acc, v2, s_tab);
      acc = step(acc, v3, s_tab);
    }
    for (; j < steps; ++j)
      acc = step(acc, load_word(begin + static_cast<u64>(j) * warp_size + lane), s_tab);

    u32 r = __reduce_xor_sync(0xffffffffu, mulmod(acc, lane_shift, poly));
    if (s != 0)
      r = mulmod(r,
                 s < segment_powers ? __ldg(&tab.segment_shift[s])
                                    : xpow8(s * segment_bytes, tab.xpow, poly),
                 poly);
    if (lane == 0) {
      // The tail: segment 0 runs the register through its bytes, the others through as many
      // zero bytes (x^(8 * tail)); segment 0 also applies the final complement.
      const u64 tail = last_word * word_bytes;
      for (u64 i = tail; i < b; ++i) {
        const u32 v = s == 0 ? *reinterpret_cast<const unsigned char*>(i) : 0u;
        r = s_tab[0][(r ^ v) & 0xffu] ^ (r >> 8);
      }
      if (s == 0) r = ~r;
      atomicXor(d_crc + piece, r);
    }
  }
}

struct plan_region {
  crc_piece* pieces;
  u64* prefix;
};

constexpr std::size_t pieces_bytes(std::size_t count) {
  return (count * sizeof(crc_piece) + 15) / 16 * 16;
}

plan_region split_workspace(void* d_workspace, std::size_t count) {
  auto* p = static_cast<unsigned char*>(d_workspace);
  return {reinterpret_cast<crc_piece*>(p), reinterpret_cast<u64*>(p + pieces_bytes(count))};
}

void check_arguments(crc_kind kind, const void* d_data, const void* pieces, std::size_t count,
                     const u32* d_crc) {
  if (kind != crc_kind::crc32 && kind != crc_kind::crc32c)
    throw gpu_error("crc: unknown kind " + std::to_string(static_cast<int>(kind)));
  if (count == 0) return;
  if (d_data == nullptr || pieces == nullptr || d_crc == nullptr)
    throw gpu_error("crc: null pointer argument");
  if (reinterpret_cast<std::uintptr_t>(pieces) % alignof(crc_piece) != 0)
    throw gpu_error("crc: pieces are not 8-byte aligned");
  if (reinterpret_cast<std::uintptr_t>(d_crc) % sizeof(u32) != 0)
    throw gpu_error("crc: d_crc is not 4-byte aligned");
}

void check_workspace(std::size_t count, const void* d_workspace, std::size_t workspace_bytes) {
  if (count == 0) return;
  if (d_workspace == nullptr) throw gpu_error("crc: null workspace");
  if (workspace_bytes < crc_workspace_bytes(count))
    throw gpu_error("crc: workspace of " + std::to_string(workspace_bytes) + " bytes, " +
                    std::to_string(crc_workspace_bytes(count)) + " needed");
  if (reinterpret_cast<std::uintptr_t>(d_workspace) % 16 != 0)
    throw gpu_error("crc: d_workspace is not 16-byte aligned");
}

// max_blocks: an upper bound from the batch (host descriptors), or 0 for "fill the device".
template <int Kind>
void launch(u64 base, const crc_piece* d_pieces, std::size_t count, u64* d_prefix, u32* d_crc,
            u64 max_blocks, cudaStream_t s) {
  int device = 0, sms = 0, per_sm = 0;
  HETPIPE_CUDA_CHECK(cudaGetDevice(&device));
  HETPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  HETPIPE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_sm, crc_segments_kernel<Kind>, block_threads, 0));
  u64 blocks = static_cast<u64>(std::max(sms, 1)) * std::max(per_sm, 1);
  if (max_blocks != 0) blocks = std::min(blocks, max_blocks);
  crc_plan_kernel<<<1, plan_threads, 0, s>>>(base, d_pieces, count, d_prefix, d_crc);
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
  crc_segments_kernel<Kind><<<static_cast<unsigned>(blocks), block_threads, 0, s>>>(
      base, d_pieces, count, d_prefix, d_crc);
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

void dispatch(crc_kind kind, const void* d_data, const crc_piece* d_pieces, std::size_t count,
              u64* d_prefix, u32* d_crc, u64 max_blocks, void* stream) {
  const u64 base = reinterpret_cast<std::uintptr_t>(d_data);
  const auto s = static_cast<cudaStream_t>(stream);
  if (kind == crc_kind::crc32)
    launch<0>(base, d_pieces, count, d_prefix, d_crc, max_blocks, s);
  else
    launch<1>(base, d_pieces, count, d_prefix, d_crc, max_blocks, s);
}

}  // namespace

std::size_t crc_workspace_bytes(std::size_t count) {
  return pieces_bytes(count) + (count + 1) * sizeof(u64);
}

void crc_batch(crc_kind kind, const void* d_data, const crc_piece* d_pieces, std::size_t count,
               void* d_workspace, std::size_t workspace_bytes, std::uint32_t* d_crc, void* stream) {
  check_arguments(kind, d_data, d_pieces, count, d_crc);
  check_workspace(count, d_workspace, workspace_bytes);
  if (count == 0) return;
  const plan_region ws = split_workspace(d_workspace, count);
  dispatch(kind, d_data, d_pieces, count, ws.prefix, d_crc, 0, stream);
}

namespace {

// Copies the descriptors into the workspace and launches; `copied` (or nullptr) is recorded
// after the copy, `done` (or nullptr) after the kernels.
void queue_from_host(crc_kind kind, const void* d_data, const crc_piece* h_pieces,
                     std::size_t count, void* d_workspace, std::uint32_t* d_crc, void* stream,
                     cudaEvent_t copied, cudaEvent_t done) {
  const plan_region ws = split_workspace(d_workspace, count);
  const auto s = static_cast<cudaStream_t>(stream);
  const u64 base = reinterpret_cast<std::uintptr_t>(d_data);
  u64 segments = 0;
  for (std::size_t i = 0; i < count; ++i) segments += piece_segments(base, h_pieces[i]);
  HETPIPE_CUDA_CHECK(
      cudaMemcpyAsync(ws.pieces, h_pieces, count * sizeof(crc_piece), cudaMemcpyHostToDevice, s));
  if (copied != nullptr) HETPIPE_CUDA_CHECK(cudaEventRecord(copied, s));
  const u64 max_blocks = std::max<u64>(1, (segments + warps_per_block - 1) / warps_per_block);
  dispatch(kind, d_data, ws.pieces, count, ws.prefix, d_crc, max_blocks, stream);
  if (done != nullptr) HETPIPE_CUDA_CHECK(cudaEventRecord(done, s));
}

}  // namespace

void crc_batch_from_host(crc_kind kind, const void* d_data, const crc_piece* h_pieces,
                         std::size_t count, void* d_workspace, std::size_t workspace_bytes,
                         std::uint32_t* d_crc, void* stream) {
  check_arguments(kind, d_data, h_pieces, count, d_crc);
  check_workspace(count, d_workspace, workspace_bytes);
  if (count == 0) return;
  queue_from_host(kind, d_data, h_pieces, count, d_workspace, d_crc, stream, nullptr, nullptr);
}

void crc_workspace::launch(crc_kind kind, const void* d_data, const crc_piece* h_pieces,
                           std::size_t count, std::uint32_t* d_crc, void* stream) {
  check_arguments(kind, d_data, h_pieces, count, d_crc);
  if (count == 0) return;
  const std::size_t desc_bytes = count * sizeof(crc_piece);
  const std::size_t ws_bytes = crc_workspace_bytes(count);
  if (!copied_) {
    copied_.emplace(false);
    done_.emplace(false);
  }
  // Never-recorded events count as complete.
  copied_->synchronize();
  if (h_desc_.size() < desc_bytes)
    h_desc_ = pinned_buffer(std::max(desc_bytes, 2 * h_desc_.size()));
  if (d_ws_.size() < ws_bytes) {
    done_->synchronize();
    d_ws_ = device_buffer(std::max(ws_bytes, 2 * d_ws_.size()));
  }
  const auto s = static_cast<cudaStream_t>(stream);
  HETPIPE_CUDA_CHECK(cudaStreamWaitEvent(s, static_cast<cudaEvent_t>(done_->handle()), 0));
  std::memcpy(h_desc_.get(), h_pieces, desc_bytes);
  queue_from_host(kind, d_data, static_cast<const crc_piece*>(h_desc_.get()), count, d_ws_.get(),
                  d_crc, stream, static_cast<cudaEvent_t>(copied_->handle()),
                  static_cast<cudaEvent_t>(done_->handle()));
}

}  // namespace hetpipe::cuda
