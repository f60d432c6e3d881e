// Exact-statistics kernel and its launcher (contract and layout: stats_kernels.hpp).
//
// Threads walk "virtual threads" vt in [0, V), V a multiple of cols, and element e = vt + k*V, so
// every element a thread sees in one vt round belongs to column vt % cols: count, NaN, infinities,
// min and max stay in registers and are flushed once per round. For the sums each warp groups its
// 32 elements by (column, position) with __match_any_sync, adds the 26-bit pieces of +-M and M^2
// with __reduce_add_sync (a group sum fits 32 bits) and the group leader adds them to 64-bit
// per-block shared bins (global 128-bit bins when cols x bins do not fit). Every addition is exact
// modulo 2^128 and commutes, so the result does not depend on the order of the atomics.
#include "cuda/stats_kernels.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include <hetpipe/error.hpp>

#include "cuda/check.cuh"
#include "cuda/stats_device.cuh"

namespace hetpipe::cuda {
namespace {

using namespace stats_detail;
using ull = unsigned long long;

constexpr int block_threads = 256;
constexpr int loads_in_flight = 4;  // elements a thread loads before it processes them
// Shared-bin budget per block; two such blocks still fit an H100 SM (228 KiB).
constexpr std::size_t shared_limit_bytes = 100 * 1024;
// 64-bit shared bins add at most 2^26 per element and piece: 2^30 elements per block keep
// |sum| < 2^56, far from wrapping.
constexpr ull max_elements_per_block = ull{1} << 30;
constexpr ull no_group = ~ull{0};
constexpr int position_bits = 12;  // p < 4096: group key = column << 12 | p

struct stats_args {
  const void* d_data;
  ull n;  // rows * cols
  ull cols;
  ull v_threads;  // V: a multiple of cols, >= the number of threads
  ull* d_result;
  const ull* d_rows;  // or nullptr: the rows, read on the device (n is then their bound)
};

__device__ __forceinline__ void add_u128(ull* bin, ull v) {
  const ull old = atomicAdd(bin, v);
  if (old + v < old) atomicAdd(bin + 1, ull{1});
}

// v as a signed 128-bit value: the carry of the low word plus the sign extension (-1) go high.
__device__ __forceinline__ void add_s128(ull* bin, long long v) {
  const ull u = static_cast<ull>(v);
  const ull old = atomicAdd(bin, u);
  ull hi = old + u < old ? 1 : 0;
  if (v < 0) hi += ~ull{0};
  if (hi != 0) atomicAdd(bin + 1, hi);
}

// Exact 64-bit sum over the lanes in `mask` with 32-bit reductions on 26-bit pieces.
__device__ __forceinline__ ull group_sum_u64(unsigned mask, ull v) {
  const unsigned a = __reduce_add_sync(mask, static_cast<unsigned>(v & piece_mask));
  const unsigned b = __reduce_add_sync(mask, static_cast<unsigned>((v >> 26) & piece_mask));
  const unsigned c = __reduce_add_sync(mask, static_cast<unsigned>(v >> 52));
  return a + (static_cast<ull>(b) << 26) + (static_cast<ull>(c) << 52);
}

__device__ __forceinline__ ull group_min_u64(unsigned mask, ull v) {
  const unsigned vh = static_cast<unsigned>(v >> 32);
  const unsigned hi = __reduce_min_sync(mask, vh);
  const unsigned lo = __reduce_min_sync(mask, vh == hi ? static_cast<unsigned>(v) : ~0u);
  return (static_cast<ull>(hi) << 32) | lo;
}

__device__ __forceinline__ ull group_max_u64(unsigned mask, ull v) {
  const unsigned vh = static_cast<unsigned>(v >> 32);
  const unsigned hi = __reduce_max_sync(mask, vh);
  const unsigned lo = __reduce_max_sync(mask, vh == hi ? static_cast<unsigned>(v) : 0u);
  return (static_cast<ull>(hi) << 32) | lo;
}

__global__ void stats_init_kernel(ull* d_result, ull cols, int column_words) {
  const ull c = blockIdx.x * static_cast<ull>(blockDim.x) + threadIdx.x;
  if (c < cols) d_result[c * column_words + stats_min_key] = ~ull{0};
}

// Requires blockDim.x == block_threads and, with Shared, cols * (s_bins + q_bins) * 8 bytes of
// dynamic shared memory. Every lane of a warp runs every warp-wide intrinsic (full mask): the
// loops below are warp-uniform and lanes without an element take part with "no group".
template <int Code, bool Shared>
__global__ void __launch_bounds__(block_threads) stats_kernel(const stats_args a) {
  using raw_t = typename traits<Code>::raw;
  constexpr int sb = s_bins<Code>, qb = q_bins<Code>, sp = s_pieces<Code>, qp = q_pieces<Code>;
  constexpr int cw = column_words<Code>;
  extern __shared__ ull sh_bins[];  // Shared: per column sb S bins then qb Q bins

  const raw_t* __restrict__ data = static_cast<const raw_t*>(a.d_data);
  const unsigned lane = threadIdx.x & 31u;
  const ull n = a.d_rows && *a.d_rows * a.cols < a.n ? *a.d_rows * a.cols : a.n;

  if constexpr (Shared) {
    for (ull i = threadIdx.x; i < a.cols * (sb + qb); i += blockDim.x) sh_bins[i] = 0;
    __syncthreads();
  }

  const ull total_threads = static_cast<ull>(gridDim.x) * blockDim.x;
  const ull first_warp_vt = static_cast<ull>(blockIdx.x) * blockDim.x + (threadIdx.x & ~31u);
  for (ull vbase = first_warp_vt; vbase < a.v_threads; vbase += total_threads) {
    const ull vt = vbase + lane;
    const bool v_ok = vt < a.v_threads;
    const ull col = v_ok ? vt % a.cols : 0;
    ull* const d_col = a.d_result + col * cw;
    ull count = 0, nan_count = 0, posinf = 0, neginf = 0, min_key = ~ull{0}, max_key = 0;

    const ull step = a.v_threads * loads_in_flight;
    for (ull e0 = vbase; e0 < n; e0 += step) {
      raw_t raw[loads_in_flight];
      bool ok[loads_in_flight];
#pragma unroll
      for (int j = 0; j < loads_in_flight; ++j) {
        const ull e = e0 + j * a.v_threads + lane;
        ok[j] = v_ok && e < n;
        raw[j] = ok[j] ? data[e] : raw_t{0};
      }
#pragma unroll
      for (int j = 0; j < loads_in_flight; ++j) {
        const element x = decompose<Code>(raw[j]);
        const bool finite = ok[j] && x.cls == c_finite;
        if (ok[j]) {
          if (x.cls == c_nan) {
            ++nan_count;
          } else {
            ++count;
            min_key = x.key < min_key ? x.key : min_key;
            max_key = x.key > max_key ? x.key : max_key;
            posinf += x.cls == c_posinf;
            neginf += x.cls == c_neginf;
          }
        }

        const ull gkey = finite ? (col << position_bits) | static_cast<ull>(x.p) : no_group;
        const unsigned peers = __match_any_sync(0xffffffffu, gkey);
        const bool leader = gkey != no_group && static_cast<int>(lane) == __ffs(peers) - 1;
#pragma unroll
        for (int k = 0; k < sp; ++k) {
          const int piece = finite ? static_cast<int>(s_piece(x.m, k)) : 0;
          const int sum = __reduce_add_sync(peers, x.neg ? -piece : piece);
          if (leader && sum != 0) {
            const int pos = x.p + piece_bits * k;
            if constexpr (Shared)
              atomicAdd(&sh_bins[col * (sb + qb) + pos],
                        static_cast<ull>(static_cast<long long>(sum)));
            else
              add_s128(d_col + header_words + 2 * pos, sum);
          }
        }
        const u128 sq = square<Code>(finite ? x.m : 0);
#pragma unroll
        for (int k = 0; k < qp; ++k) {
          const unsigned sum = __reduce_add_sync(peers, q_piece(sq, k));
          if (leader && sum != 0) {
            const int pos = 2 * x.p + piece_bits * k;
            if constexpr (Shared)
              atomicAdd(&sh_bins[col * (sb + qb) + sb + pos], static_cast<ull>(sum));
            else
              add_u128(d_col + header_words + 2 * sb + 2 * pos, sum);
          }
        }
      }
    }

    // Flush this round's header registers: one atomic per column and field per warp.
    const unsigned peers = __match_any_sync(0xffffffffu, v_ok ? col : no_group);
    count = group_sum_u64(peers, count);
    nan_count = group_sum_u64(peers, nan_count);
    posinf = group_sum_u64(peers, posinf);
    neginf = group_sum_u64(peers, neginf);
    min_key = group_min_u64(peers, min_key);
    max_key = group_max_u64(peers, max_key);
    if (v_ok && static_cast<int>(lane) == __ffs(peers) - 1) {
      if (count != 0) {
        atomicAdd(d_col + stats_count, count);
        atomicMin(d_col + stats_min_key, min_key);
        atomicMax(d_col + stats_max_key, max_key);
      }
      if (nan_count != 0) atomicAdd(d_col + stats_nan_count, nan_count);
      if (posinf != 0) atomicAdd(d_col + stats_posinf, posinf);
      if (neginf != 0) atomicAdd(d_col + stats_neginf, neginf);
    }
  }

  if constexpr (Shared) {
    __syncthreads();
    for (ull i = threadIdx.x; i < a.cols * (sb + qb); i += blockDim.x) {
      const ull v = sh_bins[i];
      if (v == 0) continue;
      const ull c = i / (sb + qb);
      const ull j = i % (sb + qb);
      ull* const d_c = a.d_result + c * cw + header_words;
      if (j < sb)
        add_s128(d_c + 2 * j, static_cast<long long>(v));
      else
        add_u128(d_c + 2 * sb + 2 * (j - sb), v);
    }
  }
}

template <int Code>
stats_layout layout_of() {
  return {static_cast<std::size_t>(s_bins<Code>), static_cast<std::size_t>(q_bins<Code>),
          static_cast<std::size_t>(column_words<Code>) * sizeof(ull)};
}

template <int Code>
void launch_typed(const void* d_data, std::size_t rows, const ull* d_rows, std::size_t cols,
                  ull* d_result, cudaStream_t s) {
  const ull n = static_cast<ull>(rows) * cols;
  if (n == 0) return;

  int device = 0, sms = 0, optin = 0;
  HETPIPE_CUDA_CHECK(cudaGetDevice(&device));
  HETPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  HETPIPE_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));

  const std::size_t shared_bytes =
      static_cast<std::size_t>(cols) * (s_bins<Code> + q_bins<Code>)*sizeof(ull);
  bool shared = shared_bytes <= std::min<std::size_t>(shared_limit_bytes, optin);
  int per_sm = 0;
  if (shared) {
    if (shared_bytes > 48 * 1024)
      HETPIPE_CUDA_CHECK(cudaFuncSetAttribute(stats_kernel<Code, true>,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(shared_bytes)));
    HETPIPE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, stats_kernel<Code, true>, block_threads, shared_bytes));
    shared = per_sm > 0;
  }
  if (!shared)
    HETPIPE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, stats_kernel<Code, false>, block_threads, 0));
  per_sm = std::max(per_sm, 1);

  // Enough elements per thread to amortise a block's shared-bin setup and flush, no more blocks
  // than stay resident, and a bound on the elements per block for the 64-bit shared bins.
  const ull per_block_target = ull{block_threads} * 16;
  ull blocks =
      std::min<ull>((n + per_block_target - 1) / per_block_target, static_cast<ull>(sms) * per_sm);
  blocks = std::max<ull>(blocks, (n + max_elements_per_block - 1) / max_elements_per_block);
  blocks = std::clamp<ull>(blocks, 1, 0x7fffffff);
  const ull threads = blocks * block_threads;
  const stats_args args{d_data, n, cols, (threads + cols - 1) / cols * cols, d_result, d_rows};

  if (shared)
    stats_kernel<Code, true>
        <<<static_cast<unsigned>(blocks), block_threads, shared_bytes, s>>>(args);
  else
    stats_kernel<Code, false><<<static_cast<unsigned>(blocks), block_threads, 0, s>>>(args);
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

[[noreturn]] void bad_dtype(int dtype) {
  throw gpu_error("stats: unknown dtype code " + std::to_string(dtype));
}

// f(std::integral_constant<int, D>{}) for the dtype code D == dtype; bad_dtype past the codes.
template <int D = 0, class F>
auto with_dtype(int dtype, F&& f) -> decltype(f(std::integral_constant<int, 0>{})) {
  if constexpr (D == num_codes) {
    bad_dtype(dtype);
  } else {
    if (dtype == D) return f(std::integral_constant<int, D>{});
    return with_dtype<D + 1>(dtype, f);
  }
}

void check_arguments(int dtype, const void* d_data, std::size_t cols, const void* d_result) {
  if (dtype < 0 || dtype >= num_codes) bad_dtype(dtype);
  if (cols == 0) throw gpu_error("stats: cols must be at least 1");
  static constexpr std::size_t elem_size[num_codes] = {1, 1, 2, 2, 4, 4, 8, 8, 4, 8};
  if (reinterpret_cast<std::uintptr_t>(d_data) % elem_size[dtype] != 0)
    throw gpu_error("stats: d_data is not aligned to the element size");
  if (reinterpret_cast<std::uintptr_t>(d_result) % sizeof(ull) != 0)
    throw gpu_error("stats: d_result is not 8-byte aligned");
}

}  // namespace

stats_layout stats_result_layout(int dtype) {
  return with_dtype(dtype, [](auto code) { return layout_of<decltype(code)::value>(); });
}

std::size_t stats_result_bytes(int dtype, std::size_t cols) {
  return stats_result_layout(dtype).column_bytes * cols;
}

void stats_init(int dtype, std::size_t cols, void* d_result, void* stream) {
  const stats_layout layout = stats_result_layout(dtype);  // validates dtype
  if (cols == 0) return;
  if (reinterpret_cast<std::uintptr_t>(d_result) % sizeof(ull) != 0)
    throw gpu_error("stats: d_result is not 8-byte aligned");
  const auto s = static_cast<cudaStream_t>(stream);
  auto* const d_res = static_cast<ull*>(d_result);
  HETPIPE_CUDA_CHECK(cudaMemsetAsync(d_res, 0, layout.column_bytes * cols, s));
  const unsigned init_blocks = static_cast<unsigned>((cols + block_threads - 1) / block_threads);
  stats_init_kernel<<<init_blocks, block_threads, 0, s>>>(
      d_res, cols, static_cast<int>(layout.column_bytes / sizeof(ull)));
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

void stats_accumulate(int dtype, const void* d_data, std::size_t rows, std::size_t cols,
                      void* d_result, void* stream) {
  stats_accumulate_counted(dtype, d_data, rows, nullptr, cols, d_result, stream);
}

void stats_accumulate_counted(int dtype, const void* d_data, std::size_t max_rows,
                              const std::uint64_t* d_rows, std::size_t cols, void* d_result,
                              void* stream) {
  check_arguments(dtype, d_data, cols, d_result);
  if (reinterpret_cast<std::uintptr_t>(d_rows) % sizeof(ull) != 0)
    throw gpu_error("stats: d_rows is not 8-byte aligned");

  const auto s = static_cast<cudaStream_t>(stream);
  auto* const d_res = static_cast<ull*>(d_result);
  const auto* const rows = reinterpret_cast<const ull*>(d_rows);
  with_dtype(dtype, [&](auto code) {
    launch_typed<decltype(code)::value>(d_data, max_rows, rows, cols, d_res, s);
  });
}

void stats_launch(int dtype, const void* d_data, std::size_t rows, std::size_t cols, void* d_result,
                  void* stream) {
  check_arguments(dtype, d_data, cols, d_result);  // before anything is queued
  stats_init(dtype, cols, d_result, stream);
  stats_accumulate(dtype, d_data, rows, cols, d_result, stream);
}

}  // namespace hetpipe::cuda
