// Random test columns with the hard cases of exact statistics mixed in.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <hetpipe/dtype.hpp>

namespace hetpipe::test {

constexpr dtype all_dtypes[] = {dtype::u8,  dtype::i8,  dtype::u16, dtype::i16, dtype::u32,
                                dtype::i32, dtype::u64, dtype::i64, dtype::f32, dtype::f64};

enum class shape {
  mixed,         // floats: any finite exponent and hard values; ints: uniform over the type
  typical,       // a narrow, normal-looking distribution
  cancellation,  // huge values that cancel, around small ones
  specials,      // floats: ±inf and NaN among mixed values; ints: the extremes only
  constant,      // all equal (variance exactly 0)
  tiny,          // floats: subnormals and values near them; ints: 0, ±1
};
constexpr shape all_shapes[] = {shape::mixed,    shape::typical,  shape::cancellation,
                                shape::specials, shape::constant, shape::tiny};

template <class T>
void put(std::vector<std::byte>& out, T v) {
  const auto at = out.size();
  out.resize(at + sizeof v);
  std::memcpy(out.data() + at, &v, sizeof v);
}

template <class F>
F random_finite(std::mt19937_64& rng) {
  using B = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;
  constexpr int fbits = std::numeric_limits<F>::digits - 1;
  constexpr B emax = B((sizeof(F) == 4 ? 0xff : 0x7ff));
  const B e = B(rng() % emax);  // never all ones
  const B f = B(rng()) & ((B(1) << fbits) - 1);
  const B s = B(rng() & 1) << (8 * sizeof(F) - 1);
  return std::bit_cast<F>(B(s | (e << fbits) | f));
}

template <class F>
F float_value(shape sh, std::mt19937_64& rng, F constant) {
  using lim = std::numeric_limits<F>;
  const F hard[] = {F(0),
                    -F(0),
                    F(1),
                    F(-1),
                    lim::max(),
                    -lim::max(),
                    lim::min(),
                    -lim::denorm_min(),
                    lim::denorm_min(),
                    F(1e16),
                    F(-1e16),
                    F(sizeof(F) == 8 ? 1e300 : 1e30),
                    F(sizeof(F) == 8 ? 1e-300 : 1e-30),
                    F(0.1),
                    F(1) + lim::epsilon()};
  std::normal_distribution<double> normal(1000.0, 10.0);
  switch (sh) {
    case shape::mixed:
      if (rng() % 8 == 0) return hard[rng() % std::size(hard)];
      return random_finite<F>(rng);
    case shape::typical:
      return F(normal(rng));
    case shape::cancellation: {
      const F big = sizeof(F) == 8 ? F(1e16) : F(1e7);
      switch (rng() % 4) {
        case 0:
          return big;
        case 1:
          return -big;
        case 2:
          return F(std::ldexp(double(rng() % 7) - 3, -int(rng() % 40)));
        default:
          return F(rng() % 2 ? 1 : -1);
      }
    }
    case shape::specials:
      switch (rng() % 8) {
        case 0:
          return lim::quiet_NaN();
        case 1:
          return rng() % 2 ? lim::infinity() : -lim::infinity();
        case 2:
          return -lim::quiet_NaN();
        default:
          return random_finite<F>(rng);
      }
    case shape::constant:
      return constant;
    case shape::tiny: {
      const F d = lim::denorm_min();
      if (rng() % 4 == 0) return rng() % 2 ? F(0) : -F(0);
      return F(double(d) * double(std::int64_t(rng() % 2001) - 1000));
    }
  }
  return 0;
}

template <class T>
T int_value(shape sh, std::mt19937_64& rng, T constant) {
  using lim = std::numeric_limits<T>;
  const T hard[] = {lim::min(), lim::max(), T(0), T(1), T(lim::min() + 1), T(lim::max() - 1)};
  switch (sh) {
    case shape::mixed:
      if (rng() % 8 == 0) return hard[rng() % std::size(hard)];
      return T(rng());
    case shape::typical:
      return T(std::int64_t(rng() % 200) + (lim::is_signed ? -100 : 27));
    case shape::cancellation:
    case shape::specials:
      return hard[rng() % std::size(hard)];
    case shape::constant:
      return constant;
    case shape::tiny:
      return T(lim::is_signed ? std::int64_t(rng() % 3) - 1 : std::int64_t(rng() % 2));
  }
  return 0;
}

template <class T>
T any_value(shape sh, std::mt19937_64& rng, T constant) {
  if constexpr (std::is_floating_point_v<T>)
    return float_value<T>(sh, rng, constant);
  else
    return int_value<T>(sh, rng, constant);
}

template <class T>
void append_values(std::vector<std::byte>& out, shape sh, std::size_t n, std::mt19937_64& rng) {
  // The constant of shape::constant: an extreme for integers (Σx² past 128 bits for u64/i64), a
  // random finite value for floats.
  T constant;
  if constexpr (std::is_floating_point_v<T>)
    constant = random_finite<T>(rng);
  else
    constant = rng() % 2 ? std::numeric_limits<T>::max() : std::numeric_limits<T>::min();
  for (std::size_t i = 0; i < n; ++i) put(out, any_value<T>(sh, rng, constant));
}

// n elements of type t, shape sh, appended as raw bytes.
inline void append_column(std::vector<std::byte>& out, dtype t, shape sh, std::size_t n,
                          std::mt19937_64& rng) {
  switch (t) {
    case dtype::u8:
      return append_values<std::uint8_t>(out, sh, n, rng);
    case dtype::i8:
      return append_values<std::int8_t>(out, sh, n, rng);
    case dtype::u16:
      return append_values<std::uint16_t>(out, sh, n, rng);
    case dtype::i16:
      return append_values<std::int16_t>(out, sh, n, rng);
    case dtype::u32:
      return append_values<std::uint32_t>(out, sh, n, rng);
    case dtype::i32:
      return append_values<std::int32_t>(out, sh, n, rng);
    case dtype::u64:
      return append_values<std::uint64_t>(out, sh, n, rng);
    case dtype::i64:
      return append_values<std::int64_t>(out, sh, n, rng);
    case dtype::f32:
      return append_values<float>(out, sh, n, rng);
    case dtype::f64:
      return append_values<double>(out, sh, n, rng);
  }
}

inline std::vector<std::byte> make_column(dtype t, shape sh, std::size_t n, std::mt19937_64& rng) {
  std::vector<std::byte> out;
  out.reserve(n * dtype_size(t));
  append_column(out, t, sh, n, rng);
  return out;
}

}  // namespace hetpipe::test
