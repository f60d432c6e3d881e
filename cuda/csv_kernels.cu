// CSV parse kernels and their launcher (contract: csv_kernels.hpp).
#include "cuda/csv_kernels.hpp"

#include <cuda_runtime_api.h>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <cstdint>
#include <cub/device/device_select.cuh>
#include <string>

#include <hetpipe/error.hpp>

#include "cuda/check.cuh"
#include "cuda/csv_device.cuh"

namespace hetpipe::cuda {
namespace {

using u64 = unsigned long long;
using namespace csv_detail;

constexpr int block_threads = 256;
constexpr u64 max_blocks = 4096;
constexpr std::size_t align = 256;

std::size_t starts_bytes(std::size_t size) {
  return (((size + 1) / 2 + 1) * sizeof(std::uint32_t) + align - 1) & ~(align - 1);
}

struct starts_record_at {
  const char* text;
  u64 size;
  __device__ bool operator()(std::uint32_t i) const { return starts_record(text, size, i); }
};

std::size_t select_temp_bytes(std::size_t size, cudaStream_t s) {
  std::size_t bytes = 0;
  HETPIPE_CUDA_CHECK(
      cub::DeviceSelect::If(nullptr, bytes, thrust::counting_iterator<std::uint32_t>(0),
                            static_cast<std::uint32_t*>(nullptr), static_cast<u64*>(nullptr),
                            static_cast<std::int64_t>(size), starts_record_at{nullptr, size}, s));
  return bytes;
}

// A thread per record, grid-stride: record r's kept fields to row r of `values`.
__global__ void __launch_bounds__(block_threads)
    parse_kernel(const char* __restrict__ text, u64 size, const std::uint32_t* __restrict__ starts,
                 u64* words, double* __restrict__ values, u64 max_records, const record_layout l) {
  const u64 selected = words[csv_selected];
  const u64 rows = selected < max_records ? selected : max_records;
  const u64 first = static_cast<u64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (first == 0) {
    words[csv_rows] = rows;
    if (selected > max_records) atomicExch(&words[csv_status], u64{1});
  }
  auto* const flags = reinterpret_cast<std::uint64_t*>(words + csv_flags);
  const u64 stride = static_cast<u64>(gridDim.x) * blockDim.x;
  // Once the status is set the chunk goes to the host: a thread parses no further record of it and
  // sets the status only where no one has (a chunk of bad records would otherwise queue an atomic
  // per record on one word). A thread's first record reads no status: the common, good chunk pays
  // no load for it.
  const volatile u64* const status = words + csv_status;
  for (u64 r = first; r < rows; r += stride) {
    if (r != first && *status != 0) break;
    const std::size_t at = starts[r];
    const std::size_t end = record_end(text, size, at);
    if (parse_record(text + at, end - at, l, values + r * l.cols, flags) != record_ok &&
        *status == 0)
      atomicExch(&words[csv_status], u64{1});
  }
}

}  // namespace

std::size_t csv_scratch_bytes(std::size_t max_size) {
  return starts_bytes(max_size) + select_temp_bytes(max_size, nullptr);
}

void csv_parse(const csv_parse_args& a, void* stream) {
  check_csv_parse_args(a);
  const auto s = static_cast<cudaStream_t>(stream);
  // Checked before anything is queued: words zeroed and nothing after would read as a chunk
  // parsed, and empty.
  const std::size_t starts = a.size ? starts_bytes(a.size) : 0;
  std::size_t temp = a.size ? select_temp_bytes(a.size, s) : 0;
  if (starts + temp > a.scratch_bytes)
    throw gpu_error("csv_parse: scratch of " + std::to_string(a.scratch_bytes) +
                    " bytes; a chunk of " + std::to_string(a.size) + " needs " +
                    std::to_string(starts + temp));
  HETPIPE_CUDA_CHECK(cudaMemsetAsync(a.d_words, 0, csv_words(a.cols) * sizeof(u64), s));
  if (a.size == 0) return;
  auto* const d_starts = static_cast<std::uint32_t*>(a.d_scratch);
  HETPIPE_CUDA_CHECK(cub::DeviceSelect::If(
      static_cast<char*>(a.d_scratch) + starts, temp, thrust::counting_iterator<std::uint32_t>(0),
      d_starts, reinterpret_cast<u64*>(a.d_words + csv_selected), static_cast<std::int64_t>(a.size),
      starts_record_at{a.d_text, a.size}, s));

  const record_layout l = record_layout_of(a);
  const u64 blocks =
      std::clamp<u64>((a.max_records + block_threads - 1) / block_threads, 1, max_blocks);
  parse_kernel<<<static_cast<unsigned>(blocks), block_threads, 0, s>>>(
      a.d_text, a.size, d_starts, reinterpret_cast<u64*>(a.d_words), a.d_values, a.max_records, l);
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

}  // namespace hetpipe::cuda
