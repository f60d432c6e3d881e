// Exact column statistics on the GPU (CUDA-free declarations). The kernel's output is folded on
// the host into exact big integers; the result is bit-identical to host::accumulate.
//
// Contract (shared with the CPU path). Element x of dtype code t (hetpipe::dtype):
//   integers: position p = 0, magnitude M = |x| (INT64_MIN -> 2^63), sign;
//   floats:   NaN -> nan_count only; +-inf -> count, posinf/neginf, min/max, not the sums;
//             finite -> M = F | (E ? implicit bit : 0), p = max(E, 1) - 1.
//   S = sum of +-M * 2^p, Q = sum of M^2 * 2^(2p) (exact integers).
//   order key (compare unsigned): unsigned x; signed (uint64)(int64)x ^ 2^63;
//   floats (raw bits b) sign ? ~b : b | signbit, within the width, zero-extended.
//
// Result layout, one block of column_bytes per column (uint64 words, little-endian):
//   header[8] = {count, nan_count, posinf, neginf, min_key (~0 when empty), max_key, 0, 0}
//   s_bins x (lo, hi): two's-complement 128-bit B_s[i]; S = sum B_s[i] * 2^i
//   q_bins x (lo, hi): unsigned 128-bit B_q[i];          Q = sum B_q[i] * 2^i
//
//   auto bytes = hetpipe::cuda::stats_result_bytes(t, cols);          // f32, 1 column: 12,656
//   hetpipe::cuda::stats_launch(t, d_data, rows, cols, d_result, s.handle());
//   // copy d_result back, then stats_fold(t, h_result, cols, accs) after the stream synchronised
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace hetpipe::cuda {

struct stats_layout {
  std::size_t s_bins = 0, q_bins = 0, column_bytes = 0;
};

enum stats_header_word : std::size_t {
  stats_count = 0,
  stats_nan_count = 1,
  stats_posinf = 2,
  stats_neginf = 3,
  stats_min_key = 4,
  stats_max_key = 5,
  stats_header_words = 8,
};

// Throws hetpipe::gpu_error for a dtype code outside 0..9.
// f32: 254 S bins, 533 Q bins; f64: 2098, 4195 (100,752 bytes per column); u8: 1, 1.
stats_layout stats_result_layout(int dtype);
std::size_t stats_result_bytes(int dtype, std::size_t cols);

// Statistics of a row-major rows x cols array of dtype code `dtype` at d_data (device memory,
// aligned to the element size; cols >= 1) into d_result (stats_result_bytes(dtype, cols) bytes
// of device memory, 8-byte aligned). Everything, the initialisation of d_result included, is
// queued on `stream` (a cudaStream_t; nullptr = legacy default stream) on the current device; the
// call does not wait. Throws hetpipe::gpu_error for bad arguments or a failed launch.
// stats_launch = stats_init + stats_accumulate.
void stats_launch(int dtype, const void* d_data, std::size_t rows, std::size_t cols, void* d_result,
                  void* stream);

// The two halves of stats_launch, for a lane that keeps one device-side result across chunks and
// copies it back once: the 128-bit bins and 64-bit counts cannot wrap for any realistic input
// (a bin grows by < 2^26 per element), and every addition commutes, so the result is exact.
void stats_init(int dtype, std::size_t cols, void* d_result, void* stream);
void stats_accumulate(int dtype, const void* d_data, std::size_t rows, std::size_t cols,
                      void* d_result, void* stream);
// stats_accumulate of *d_rows rows (device memory, 8-byte aligned, read when the kernel runs:
// a count an earlier kernel on the stream wrote), at most max_rows: the grid is sized for max_rows.
void stats_accumulate_counted(int dtype, const void* d_data, std::size_t max_rows,
                              const std::uint64_t* d_rows, std::size_t cols, void* d_result,
                              void* stream);

// Adds a copied-back result into cols accumulators that have count, nan_count, posinf, neginf,
// min_key, max_key and add_s_bin(int, __int128), add_q_bin(int, unsigned __int128), such as
// hetpipe::host::column_acc. Zero bins are skipped. Header-only so cuda/ needs no host/ header.
template <class ColumnAcc>
void stats_fold(int dtype, const void* h_result, std::size_t cols, ColumnAcc* acc) {
  const stats_layout layout = stats_result_layout(dtype);
  const auto* base = static_cast<const unsigned char*>(h_result);
  for (std::size_t c = 0; c < cols; ++c) {
    const auto* w = reinterpret_cast<const std::uint64_t*>(base + c * layout.column_bytes);
    ColumnAcc& a = acc[c];
    a.count += w[stats_count];
    a.nan_count += w[stats_nan_count];
    a.posinf += w[stats_posinf];
    a.neginf += w[stats_neginf];
    a.min_key = std::min<std::uint64_t>(a.min_key, w[stats_min_key]);
    a.max_key = std::max<std::uint64_t>(a.max_key, w[stats_max_key]);
    const std::uint64_t* s = w + stats_header_words;
    for (std::size_t i = 0; i < layout.s_bins; ++i) {
      const std::uint64_t lo = s[2 * i], hi = s[2 * i + 1];
      if ((lo | hi) != 0)
        a.add_s_bin(static_cast<int>(i),
                    static_cast<__int128>((static_cast<unsigned __int128>(hi) << 64) | lo));
    }
    const std::uint64_t* q = s + 2 * layout.s_bins;
    for (std::size_t i = 0; i < layout.q_bins; ++i) {
      const std::uint64_t lo = q[2 * i], hi = q[2 * i + 1];
      if ((lo | hi) != 0)
        a.add_q_bin(static_cast<int>(i), (static_cast<unsigned __int128>(hi) << 64) | lo);
    }
  }
}

}  // namespace hetpipe::cuda
