// Exact column statistics on the CPU: the accumulator that chunks fold into, the hot loop that
// fills it, and the correctly rounded finalisation. The GPU lanes fill the same accumulator
// (through add_s_bin / add_q_bin), so a job's result does not depend on which lane read which
// chunk.
//
//   column_acc acc;
//   float v[] = {1.f, 2.f, 4.f};
//   accumulate(dtype::f32, reinterpret_cast<const std::byte*>(v), 3, 1, &acc);
//   column_stats s = finalize(dtype::f32, acc);   // s.sum == 7.0, s.mean == 7.0 / 3 (rounded once)
#pragma once

#include <cstddef>
#include <cstdint>
#include <variant>

#include <gmpxx.h>

#include <hetpipe/dtype.hpp>
#include <hetpipe/stats.hpp>

namespace hetpipe::host {

// Every element is ±M·2^(p − L): integers have p = 0, L = 0; floats have their integer mantissa M,
// p = max(E, 1) − 1 and L = 149 (f32) or 1074 (f64). s = Σ ±M·2^p and q = Σ M²·2^(2p) are integers,
// so the real sums are s·2^−L and q·2^−2L, exactly. NaNs only count in nan_count; infinities count
// in count, posinf/neginf and min/max, never in s or q.
struct column_acc {
  std::uint64_t count = 0, nan_count = 0, posinf = 0, neginf = 0;
  std::uint64_t min_key = ~0ull, max_key = 0;  // see order_key()
  mpz_class s, q;

  void add_s_bin(int position, __int128 value);           // s += value · 2^position
  void add_q_bin(int position, unsigned __int128 value);  // q += value · 2^position
  void merge(const column_acc& other);                    // exact; associative and commutative
};

// The exponent shift L of a dtype (0 for integers).
constexpr int scale_shift(dtype t) noexcept {
  return t == dtype::f32 ? 149 : t == dtype::f64 ? 1074 : 0;
}

// Adds a row-major block of rows × cols elements of type t (native byte order, any alignment) into
// acc[0..cols). Thread-safe for distinct acc (scratch bins are thread_local).
void accumulate(dtype t, const std::byte* data, std::size_t rows, std::size_t cols,
                column_acc* acc);

// Correctly rounded statistics (round to nearest, ties to even, subnormal results and overflow to
// ±inf included). An exact zero is +0.
column_stats finalize(dtype t, const column_acc& acc);

// An unsigned key that orders values like numbers: unsigned ints as is, signed ints with the sign
// bit flipped, floats as sign ? ~bits : bits | signbit (−inf smallest, −0 below +0). NaN has a key
// but must never be compared with it.
std::uint64_t order_key(dtype t, const std::byte* element);

// The value a key stands for: double for floats, int64 for signed ints, uint64 for unsigned ints.
std::variant<double, std::int64_t, std::uint64_t> key_value(dtype t, std::uint64_t key);

}  // namespace hetpipe::host
