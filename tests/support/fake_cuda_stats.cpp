// The stats kernels (cuda/stats_kernels.hpp) on the fake CUDA runtime, for test_fake_gpu: linked
// instead of stats_kernels.cu's object. The result follows the header's contract (a header of
// counts and order keys per column, then S bins and Q bins with S = sum B_s[i] 2^i and
// Q = sum B_q[i] 2^i), computed on the host element by element; its bins are split differently
// from the kernel's (any split that cannot overflow folds to the same exact sums), so only what
// stats lanes depend on is faked: the layout they allocate, the init/accumulate/fold cycle.
#include <algorithm>
#include <cstring>
#include <string>

#include <hetpipe/error.hpp>

#include "cuda/stats_kernels.hpp"
#include "support/fake_cuda.hpp"

namespace hetpipe::cuda {

namespace fc = fake_cuda;
using u64 = std::uint64_t;
using u128 = unsigned __int128;

namespace {

// Integers: M = hi 2^32 + lo; S gets +-lo at 0 and +-hi at 32; Q gets lo^2 at 0, 2 hi lo at 32
// (as hi lo at 33) and hi^2 at 64: every addition < 2^64. f32: M < 2^24, S bin p, Q bin 2p.
// f64: M = hi 2^27 + lo; Q gets lo^2 at 2p, hi lo at 2p + 28, hi^2 at 2p + 54: < 2^54 each.
stats_layout layout_for(int dtype) {
  stats_layout l;
  if (dtype < 0 || dtype > 9) throw gpu_error("stats: unknown dtype code " + std::to_string(dtype));
  if (dtype == 8)
    l.s_bins = 254, l.q_bins = 533;
  else if (dtype == 9)
    l.s_bins = 2098, l.q_bins = 4195;
  else
    l.s_bins = 33, l.q_bins = 65;
  l.column_bytes = (stats_header_words + 2 * l.s_bins + 2 * l.q_bins) * sizeof(u64);
  return l;
}

struct column_view {
  u64* w;
  std::size_t s_bins;
  void add_s(int bin, bool negative, u64 m) {
    u64* b = w + stats_header_words + 2 * bin;
    const u128 old = (u128(b[1]) << 64) | b[0];
    const u128 now = negative ? old - m : old + m;  // two's complement 128-bit
    b[0] = u64(now), b[1] = u64(now >> 64);
  }
  void add_q(int bin, u64 v) {
    u64* b = w + stats_header_words + 2 * s_bins + 2 * bin;
    const u128 now = ((u128(b[1]) << 64) | b[0]) + v;
    b[0] = u64(now), b[1] = u64(now >> 64);
  }
  void key(u64 k) {
    w[stats_min_key] = std::min(w[stats_min_key], k);
    w[stats_max_key] = std::max(w[stats_max_key], k);
  }
};

template <class T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void add_element(int dtype, const unsigned char* p, column_view& c) {
  if (dtype <= 7) {  // integers
    u64 m, key;
    bool neg = false;
    switch (dtype) {
      case 0:
        m = key = load<std::uint8_t>(p);
        break;
      case 2:
        m = key = load<std::uint16_t>(p);
        break;
      case 4:
        m = key = load<std::uint32_t>(p);
        break;
      case 6:
        m = key = load<std::uint64_t>(p);
        break;
      default: {
        const std::int64_t x = dtype == 1   ? load<std::int8_t>(p)
                               : dtype == 3 ? load<std::int16_t>(p)
                               : dtype == 5 ? load<std::int32_t>(p)
                                            : load<std::int64_t>(p);
        neg = x < 0;
        m = neg ? u64(0) - u64(x) : u64(x);
        key = u64(x) ^ (u64(1) << 63);
      }
    }
    c.w[stats_count]++;
    c.key(key);
    const u64 lo = m & 0xFFFFFFFFu, hi = m >> 32;
    c.add_s(0, neg, lo);
    c.add_s(32, neg, hi);
    c.add_q(0, lo * lo);
    c.add_q(33, hi * lo);
    c.add_q(64, hi * hi);
    return;
  }
  const bool f32 = dtype == 8;
  const int fbits = f32 ? 23 : 52, ebits = f32 ? 8 : 11;
  const u64 b = f32 ? load<std::uint32_t>(p) : load<std::uint64_t>(p);
  const u64 sign = b >> (fbits + ebits), e = (b >> fbits) & ((u64(1) << ebits) - 1);
  const u64 frac = b & ((u64(1) << fbits) - 1);
  if (e == (u64(1) << ebits) - 1 && frac != 0) {
    c.w[stats_nan_count]++;
    return;
  }
  const u64 width_mask = f32 ? 0xFFFFFFFFull : ~u64(0);
  const u64 signbit = u64(1) << (fbits + ebits);
  c.w[stats_count]++;
  c.key(sign ? (~b & width_mask) : (b | signbit));
  if (e == (u64(1) << ebits) - 1) {
    c.w[sign ? stats_neginf : stats_posinf]++;
    return;
  }
  const u64 m = frac | (e ? u64(1) << fbits : 0);
  const int pos = static_cast<int>(std::max<u64>(e, 1) - 1);
  c.add_s(pos, sign != 0, m);
  if (f32) {
    c.add_q(2 * pos, m * m);
  } else {
    const u64 lo = m & ((u64(1) << 27) - 1), hi = m >> 27;
    c.add_q(2 * pos, lo * lo);
    c.add_q(2 * pos + 28, hi * lo);
    c.add_q(2 * pos + 54, hi * hi);
  }
}

std::size_t element_size(int dtype) {
  static constexpr std::size_t sizes[] = {1, 1, 2, 2, 4, 4, 8, 8, 4, 8};
  return sizes[dtype];
}

}  // namespace

stats_layout stats_result_layout(int dtype) {
  return layout_for(dtype);
}

std::size_t stats_result_bytes(int dtype, std::size_t cols) {
  return layout_for(dtype).column_bytes * cols;
}

void stats_init(int dtype, std::size_t cols, void* d_result, void* stream) {
  const stats_layout l = layout_for(dtype);
  if (cols == 0) return;
  if (reinterpret_cast<std::uintptr_t>(d_result) % sizeof(u64) != 0)
    throw gpu_error("stats: d_result is not 8-byte aligned");
  fc::launch(stream, [l, cols, d_result] {
    fc::check_device(d_result, l.column_bytes * cols);
    std::memset(d_result, 0, l.column_bytes * cols);
    for (std::size_t c = 0; c < cols; ++c)
      reinterpret_cast<u64*>(static_cast<unsigned char*>(d_result) +
                             c * l.column_bytes)[stats_min_key] = ~u64(0);
  });
}

void stats_accumulate(int dtype, const void* d_data, std::size_t rows, std::size_t cols,
                      void* d_result, void* stream) {
  stats_accumulate_counted(dtype, d_data, rows, nullptr, cols, d_result, stream);
}

void stats_accumulate_counted(int dtype, const void* d_data, std::size_t max_rows,
                              const std::uint64_t* d_rows, std::size_t cols, void* d_result,
                              void* stream) {
  const stats_layout l = layout_for(dtype);
  if (max_rows == 0 || cols == 0) return;
  if (d_data == nullptr || d_result == nullptr) throw gpu_error("stats: null pointer");
  fc::launch(stream, [=] {
    std::size_t rows = max_rows;
    if (d_rows) {  // read when the kernel runs, as on a GPU
      fc::check_device(d_rows, sizeof *d_rows);
      rows = std::min<std::size_t>(rows, *d_rows);
    }
    const std::size_t size = element_size(dtype);
    const auto* data = static_cast<const unsigned char*>(d_data);
    fc::check_device(data, rows * cols * size);
    fc::check_device(d_result, l.column_bytes * cols);
    for (std::size_t c = 0; c < cols; ++c) {
      column_view v{
          reinterpret_cast<u64*>(static_cast<unsigned char*>(d_result) + c * l.column_bytes),
          l.s_bins};
      for (std::size_t r = 0; r < rows; ++r) add_element(dtype, data + (r * cols + c) * size, v);
    }
  });
}

void stats_launch(int dtype, const void* d_data, std::size_t rows, std::size_t cols, void* d_result,
                  void* stream) {
  stats_init(dtype, cols, d_result, stream);
  stats_accumulate(dtype, d_data, rows, cols, d_result, stream);
}

}  // namespace hetpipe::cuda
